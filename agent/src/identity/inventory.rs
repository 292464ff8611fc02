//! The container inventory: every tracked cgroup, by path and by cgroup v2 id, with the
//! identity labels its series carry.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::Path;
use std::sync::{Arc, RwLock};

use super::path::{CgroupKind, is_kubepods_root, parse};
use super::{ContainerMetadata, Hierarchies, MetadataProvider};
use crate::model::{Labels, LabelsBuilder};

/// One tracked cgroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupEntry {
    /// cgroup path relative to the hierarchy mounts; cAdvisor's `id` label.
    pub path: String,
    /// The cgroup v2 id (inode of the directory in the unified tree), which is what eBPF
    /// helpers such as `bpf_get_current_cgroup_id` return. None when the unified tree lacks
    /// this cgroup.
    pub v2_id: Option<u64>,
    /// The identity labels every container series carries (`id`, `name`, `image`,
    /// `container`, `pod`, `namespace`; empty ones are absent, which Prometheus treats the same
    /// as present-and-empty).
    pub labels: Labels,
    /// What the path says about the owner.
    pub kind: CgroupKind,
    /// Whether this container cgroup is its pod's sandbox (the pause / infra container, the
    /// one network series belong to): `None` when nothing has said so yet (no metadata).
    pub sandbox: Option<bool>,
}

impl CgroupEntry {
    /// An entry for `path` with labels from the path alone.
    pub fn new(path: &str, v2_id: Option<u64>) -> Self {
        let kind = parse(path);
        let (labels, sandbox) = identity_labels(path, &kind, None);
        Self {
            path: path.to_string(),
            v2_id,
            labels,
            kind,
            sandbox,
        }
    }
}

/// Identity labels of a cgroup known only by its path.
pub fn container_labels(path: &str) -> Labels {
    identity_labels(path, &parse(path), None).0
}

/// Which cgroups are tracked: the node root, the kubepods tree, and extra subtrees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tracking {
    /// The cgroup (relative to each hierarchy mount) that plays the node root: tracked with
    /// the kind `Root`, with `kubepods` and the extra subtrees looked up below it. `/` on a
    /// real node; tests put a fake node below their own cgroup. Ids stay mount-relative.
    pub root: String,
    /// Further subtrees tracked besides `/kubepods[.slice]` (kubelet's `cgroupRoots`: its own
    /// cgroup, the runtime's), as paths relative to the root.
    pub extra: Vec<String>,
}

impl Default for Tracking {
    fn default() -> Self {
        Self {
            root: "/".into(),
            extra: Vec::new(),
        }
    }
}

#[derive(Default)]
struct State {
    by_path: BTreeMap<String, Arc<CgroupEntry>>,
    by_v2_id: HashMap<u64, Arc<CgroupEntry>>,
}

/// Shared, cheaply cloneable handle on the inventory.
#[derive(Clone, Default)]
pub struct Inventory {
    state: Arc<RwLock<State>>,
    provider: Arc<RwLock<Option<Arc<dyn MetadataProvider>>>>,
}

impl Inventory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Names containers and pods from `provider` from now on (Kubernetes enrichment), and
    /// relabels what is already tracked.
    pub fn set_metadata_provider(&self, provider: Arc<dyn MetadataProvider>) {
        *self
            .provider
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(provider);
        self.metadata_changed();
    }

    /// Tells the inventory that the provider's answers may have changed (a pod was added or
    /// updated): labels are recomputed now, and collectors pick them up next cycle.
    pub fn metadata_changed(&self) {
        let provider = self.provider();
        let entries = self.entries();
        let updated = entries.into_iter().map(|e| {
            let (labels, sandbox) = identity_labels(&e.path, &e.kind, provider.as_deref());
            if labels == e.labels && sandbox == e.sandbox {
                e
            } else {
                Arc::new(CgroupEntry {
                    labels,
                    sandbox,
                    ..(*e).clone()
                })
            }
        });
        self.replace_arcs(updated.collect());
    }

    /// Rescans the primary hierarchy for tracked cgroups and replaces the inventory. Entries
    /// whose path is unchanged are kept as they are (same `Arc`), so per-cgroup caches keyed
    /// on them stay valid. A cgroup vanishing during the walk is normal and simply not listed.
    pub fn rescan(&self, hierarchies: &Hierarchies, tracking: &Tracking) -> usize {
        let root = normalize(&tracking.root);
        // The primary hierarchy, or the unified tree when the root exists only there (a
        // hybrid host whose containers live in the v2 tree).
        let candidates = [hierarchies.primary(), hierarchies.unified.as_deref()];
        let Some((mount, root_meta)) = candidates.into_iter().flatten().find_map(|m| {
            let meta = std::fs::metadata(super::hierarchy::join(m, &root)).ok()?;
            Some((m, meta))
        }) else {
            return self.replace_arcs(Vec::new());
        };
        let in_unified = hierarchies.unified.as_deref() == Some(mount);
        let root_dir = super::hierarchy::join(mount, &root);
        let mut found: Vec<(String, Option<u64>)> = Vec::new();
        found.push((root.clone(), in_unified.then(|| root_meta.ino())));
        if let Ok(rd) = std::fs::read_dir(&root_dir) {
            for e in rd.flatten() {
                let name = e.file_name();
                let Some(name) = name.to_str() else { continue };
                if is_kubepods_root(name) && e.file_type().is_ok_and(|t| t.is_dir()) {
                    let path = child_path(&root, name);
                    found.push((path.clone(), in_unified.then(|| e.ino())));
                    walk(&e.path(), &path, in_unified, &mut found);
                }
            }
        }
        for extra in &tracking.extra {
            let path = under(&root, &normalize(extra));
            let dir = super::hierarchy::join(mount, &path);
            if let Ok(m) = std::fs::metadata(&dir) {
                found.push((path.clone(), in_unified.then(|| m.ino())));
                walk(&dir, &path, in_unified, &mut found);
            }
        }
        let provider = self.provider();
        let old = self.read();
        let mut next = Vec::with_capacity(found.len());
        for (path, ino) in found {
            if let Some(e) = old.by_path.get(&path)
                && (ino.is_none() || ino == e.v2_id)
            {
                next.push(Arc::clone(e));
                continue;
            }
            let v2_id = ino.or_else(|| {
                let unified = hierarchies.unified.as_deref()?;
                let dir = super::hierarchy::join(unified, &path);
                std::fs::metadata(dir).ok().map(|m| m.ino())
            });
            let kind = parse(relative_to(&path, &root));
            let (labels, sandbox) = identity_labels(&path, &kind, provider.as_deref());
            next.push(Arc::new(CgroupEntry {
                path,
                v2_id,
                labels,
                kind,
                sandbox,
            }));
        }
        drop(old);
        self.replace_arcs(next)
    }

    /// Replaces the inventory with `entries`; returns how many there are.
    pub fn replace(&self, entries: impl IntoIterator<Item = CgroupEntry>) -> usize {
        self.replace_arcs(entries.into_iter().map(Arc::new).collect())
    }

    fn replace_arcs(&self, entries: Vec<Arc<CgroupEntry>>) -> usize {
        let mut next = State::default();
        for e in entries {
            if let Some(id) = e.v2_id {
                next.by_v2_id.insert(id, Arc::clone(&e));
            }
            next.by_path.insert(e.path.clone(), e);
        }
        let n = next.by_path.len();
        *self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = next;
        n
    }

    pub fn by_v2_id(&self, id: u64) -> Option<Arc<CgroupEntry>> {
        self.read().by_v2_id.get(&id).cloned()
    }

    pub fn by_path(&self, path: &str) -> Option<Arc<CgroupEntry>> {
        self.read().by_path.get(path).cloned()
    }

    /// Every tracked cgroup, in path order.
    pub fn entries(&self) -> Vec<Arc<CgroupEntry>> {
        self.read().by_path.values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.read().by_path.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn provider(&self) -> Option<Arc<dyn MetadataProvider>> {
        self.provider
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The six labels kubelet puts on a cgroup's series, and whether it is a pod sandbox.
///
/// Without metadata a container is named by its runtime id (containerd's `name`), and a pod
/// cgroup by its id alone; with metadata the provider's names win, as kubelet's do.
pub fn identity_labels(
    path: &str,
    kind: &CgroupKind,
    provider: Option<&dyn MetadataProvider>,
) -> (Labels, Option<bool>) {
    let mut b = LabelsBuilder::with_capacity(6);
    b.set("id", path);
    let mut sandbox = None;
    match kind {
        CgroupKind::Container { id, pod_uid, .. } => {
            match provider.and_then(|p| p.container(id)) {
                Some(md) => {
                    sandbox = Some(is_sandbox(&md));
                    apply(&mut b, &md);
                    if md.name.is_empty() {
                        b.set("name", id);
                    }
                }
                None => {
                    b.set("name", id);
                    // The container is not known (yet): its pod still names the series, as
                    // kubelet's pod-cgroup fallback would for the pod row.
                    if let Some(md) = provider.and_then(|p| p.pod(pod_uid)) {
                        b.set("pod", &md.pod);
                        b.set("namespace", &md.namespace);
                    }
                }
            }
        }
        CgroupKind::Pod { uid, .. } => {
            if let Some(md) = provider.and_then(|p| p.pod(uid)) {
                b.set("pod", &md.pod);
                b.set("namespace", &md.namespace);
            }
        }
        _ => {}
    }
    (b.build(), sandbox)
}

fn apply(b: &mut LabelsBuilder, md: &ContainerMetadata) {
    b.set("name", &md.name);
    b.set("image", &md.image);
    b.set("container", &md.container);
    b.set("pod", &md.pod);
    b.set("namespace", &md.namespace);
}

/// containerd's sandbox has no container name; CRI-O's infra container is named `POD`.
fn is_sandbox(md: &ContainerMetadata) -> bool {
    !md.pod.is_empty() && (md.container.is_empty() || md.container == "POD")
}

/// Depth-first walk collecting cgroup paths below `dir`; unreadable or vanished directories
/// are skipped. systemd `.mount` units are not containers (cAdvisor ignores them too).
fn walk(dir: &Path, path: &str, with_ino: bool, out: &mut Vec<(String, Option<u64>)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in rd.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if name.ends_with(".mount") {
            continue;
        }
        let child = child_path(path, name);
        out.push((child.clone(), with_ino.then(|| entry.ino())));
        walk(&entry.path(), &child, with_ino, out);
    }
}

/// `name` below cgroup `parent`.
fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// `path` (relative to the node root) as a path relative to the hierarchy mount.
fn under(root: &str, path: &str) -> String {
    match (root, path) {
        ("/", p) => p.to_string(),
        (r, "/") => r.to_string(),
        (r, p) => format!("{r}{p}"),
    }
}

/// `path` relative to the node `root`, for classification (`/` for the root itself).
fn relative_to<'a>(path: &'a str, root: &str) -> &'a str {
    if root == "/" {
        return path;
    }
    match path.strip_prefix(root) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => path,
    }
}

fn normalize(path: &str) -> String {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        "/".into()
    } else {
        format!("/{trimmed}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use std::sync::Mutex;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const UID: &str = "8b3c7a1e-52d4-4f0e-9a3b-2c1d0e9f8a7b";

    #[test]
    fn rescan_tracks_root_kubepods_and_extra_subtrees_only() {
        let tmp = tempfile::tempdir().unwrap();
        let cpu = tmp.path().join("cpu");
        let unified = tmp.path().join("unified");
        for d in [
            "node/kubepods/pod1/c1",
            "node/kubepods/pod1/c2",
            "node/system.slice/kubelet.service",
            "node/system.slice/var-lib.mount",
            "node/user.slice",
        ] {
            std::fs::create_dir_all(cpu.join(d)).unwrap();
        }
        std::fs::create_dir_all(unified.join("node/kubepods/pod1")).unwrap();
        let h = Hierarchies {
            unified: Some(unified.clone()),
            v1: BTreeMap::from([("cpu".to_string(), cpu)]),
        };
        let inv = Inventory::new();
        let t = Tracking {
            root: "/node".into(),
            extra: vec!["/system.slice/kubelet.service".into()],
        };
        inv.rescan(&h, &t);
        let paths: Vec<String> = inv.entries().iter().map(|e| e.path.clone()).collect();
        assert_eq!(
            paths,
            [
                "/node",
                "/node/kubepods",
                "/node/kubepods/pod1",
                "/node/kubepods/pod1/c1",
                "/node/kubepods/pod1/c2",
                "/node/system.slice/kubelet.service",
            ]
        );
        let pod1 = inv.by_path("/node/kubepods/pod1").unwrap();
        let ino = std::fs::metadata(unified.join("node/kubepods/pod1"))
            .unwrap()
            .ino();
        assert_eq!(pod1.v2_id, Some(ino));
        assert_eq!(inv.by_v2_id(ino).unwrap().path, "/node/kubepods/pod1");
        assert_eq!(inv.by_path("/node/kubepods/pod1/c1").unwrap().v2_id, None);
        assert_eq!(pod1.labels.get("id"), Some("/node/kubepods/pod1"));
        assert_eq!(inv.by_path("/node").unwrap().kind, CgroupKind::Root);
        // Unchanged paths keep their entry across rescans.
        inv.rescan(&h, &t);
        assert!(Arc::ptr_eq(
            &pod1,
            &inv.by_path("/node/kubepods/pod1").unwrap()
        ));
    }

    #[test]
    fn rescan_of_a_missing_root_is_empty_not_an_error() {
        let h = Hierarchies {
            unified: Some("/nonexistent-nodemeter".into()),
            v1: BTreeMap::new(),
        };
        let inv = Inventory::new();
        assert_eq!(inv.rescan(&h, &Tracking::default()), 0);
    }

    #[test]
    fn standalone_labels_come_from_the_path() {
        let path = format!("/kubepods/pod{UID}/{ID}");
        let l = container_labels(&path);
        assert_eq!(l.get("id"), Some(path.as_str()));
        assert_eq!(l.get("name"), Some(ID));
        assert_eq!(l.get("pod"), None);
        assert_eq!(container_labels("/").get("id"), Some("/"));
        assert_eq!(container_labels("/").len(), 1);
    }

    #[derive(Default)]
    struct FakeProvider {
        containers: Mutex<HashMap<String, ContainerMetadata>>,
        pods: Mutex<HashMap<String, ContainerMetadata>>,
    }

    impl MetadataProvider for FakeProvider {
        fn container(&self, id: &str) -> Option<ContainerMetadata> {
            self.containers.lock().unwrap().get(id).cloned()
        }
        fn pod(&self, uid: &str) -> Option<ContainerMetadata> {
            self.pods.lock().unwrap().get(uid).cloned()
        }
    }

    #[test]
    fn provider_names_win_and_changes_are_picked_up_when_told() {
        let pod_path = format!("/kubepods/pod{UID}");
        let ctr_path = format!("{pod_path}/{ID}");
        let inv = Inventory::new();
        inv.replace([
            CgroupEntry::new(&pod_path, None),
            CgroupEntry::new(&ctr_path, None),
        ]);
        let provider = Arc::new(FakeProvider::default());
        inv.set_metadata_provider(Arc::clone(&provider) as Arc<dyn MetadataProvider>);
        assert_eq!(inv.by_path(&ctr_path).unwrap().sandbox, None);
        provider.pods.lock().unwrap().insert(
            UID.into(),
            ContainerMetadata {
                namespace: "default".into(),
                pod: "web".into(),
                ..Default::default()
            },
        );
        provider.containers.lock().unwrap().insert(
            ID.into(),
            ContainerMetadata {
                namespace: "default".into(),
                pod: "web".into(),
                container: "nginx".into(),
                image: "nginx:1.25".into(),
                name: String::new(),
            },
        );
        inv.metadata_changed();
        let pod = inv.by_path(&pod_path).unwrap();
        assert_eq!(pod.labels.get("pod"), Some("web"));
        assert_eq!(pod.labels.get("namespace"), Some("default"));
        assert_eq!(pod.labels.get("image"), None);
        let c = inv.by_path(&ctr_path).unwrap();
        assert_eq!(c.labels.get("container"), Some("nginx"));
        assert_eq!(c.labels.get("image"), Some("nginx:1.25"));
        assert_eq!(c.labels.get("name"), Some(ID), "containerd names by id");
        assert_eq!(c.sandbox, Some(false));
    }
}
