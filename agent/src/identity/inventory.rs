//! The container inventory: every tracked cgroup, by path and by cgroup v2 id.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, RwLock};

use super::Hierarchies;
use crate::model::Labels;

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
    /// `container`, `pod`, `namespace`; empty ones are absent).
    pub labels: Labels,
}

/// Identity labels of a cgroup known only by its path.
pub fn container_labels(path: &str) -> Labels {
    Labels::from_pairs([("id", path)])
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
}

impl Inventory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rescans the hierarchies for cgroups at or below `root` and replaces the inventory.
    /// A cgroup vanishing during the walk is normal and simply not listed.
    pub fn rescan(&self, hierarchies: &Hierarchies, root: &str) -> usize {
        let mut paths: BTreeMap<String, Option<u64>> = BTreeMap::new();
        for mount in hierarchies.mounts() {
            let start = super::hierarchy::join(mount, root);
            walk(&start, root, &mut paths);
        }
        if let Some(unified) = &hierarchies.unified {
            for (path, id) in paths.iter_mut() {
                *id = std::fs::metadata(super::hierarchy::join(unified, path))
                    .ok()
                    .map(|m| m.ino());
            }
        }
        let entries = paths.into_iter().map(|(path, v2_id)| CgroupEntry {
            labels: container_labels(&path),
            path,
            v2_id,
        });
        self.replace(entries)
    }

    /// Replaces the inventory with `entries`; returns how many there are.
    pub fn replace(&self, entries: impl IntoIterator<Item = CgroupEntry>) -> usize {
        let mut next = State::default();
        for e in entries {
            let e = Arc::new(e);
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

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Depth-first walk collecting cgroup paths; unreadable or vanished directories are skipped.
fn walk(dir: &Path, path: &str, out: &mut BTreeMap<String, Option<u64>>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    out.entry(normalize(path)).or_insert(None);
    for entry in rd.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let child = if path.ends_with('/') {
            format!("{path}{name}")
        } else {
            format!("{path}/{name}")
        };
        walk(&entry.path(), &child, out);
    }
}

fn normalize(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".into()
    } else if trimmed.starts_with('/') {
        trimmed.into()
    } else {
        format!("/{trimmed}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn rescan_lists_every_cgroup_below_the_root_across_hierarchies() {
        let tmp = tempfile::tempdir().unwrap();
        let cpu = tmp.path().join("cpu");
        let unified = tmp.path().join("unified");
        for d in ["kubepods/pod1/c1", "kubepods/pod1/c2", "system.slice"] {
            std::fs::create_dir_all(cpu.join(d)).unwrap();
        }
        std::fs::create_dir_all(unified.join("kubepods/pod2")).unwrap();
        let h = Hierarchies {
            unified: Some(unified.clone()),
            v1: BTreeMap::from([("cpu".to_string(), cpu)]),
        };
        let inv = Inventory::new();
        inv.rescan(&h, "/kubepods");
        let paths: Vec<String> = inv.entries().iter().map(|e| e.path.clone()).collect();
        assert_eq!(
            paths,
            [
                "/kubepods",
                "/kubepods/pod1",
                "/kubepods/pod1/c1",
                "/kubepods/pod1/c2",
                "/kubepods/pod2"
            ]
        );
        let pod2 = inv.by_path("/kubepods/pod2").unwrap();
        let ino = std::fs::metadata(unified.join("kubepods/pod2"))
            .unwrap()
            .ino();
        assert_eq!(pod2.v2_id, Some(ino));
        assert_eq!(inv.by_v2_id(ino).unwrap().path, "/kubepods/pod2");
        assert_eq!(inv.by_path("/kubepods/pod1").unwrap().v2_id, None);
        assert_eq!(pod2.labels.get("id"), Some("/kubepods/pod2"));
    }

    #[test]
    fn rescan_of_a_missing_root_is_empty_not_an_error() {
        let h = Hierarchies {
            unified: Some("/nonexistent-nodemeter".into()),
            v1: BTreeMap::new(),
        };
        let inv = Inventory::new();
        assert_eq!(inv.rescan(&h, "/"), 0);
    }
}
