//! cgroup hierarchies: where v1 controllers and the v2 unified tree are mounted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How the host mounts cgroups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupMode {
    /// Only v1 controller hierarchies.
    V1,
    /// v1 controllers plus a v2 tree (usually empty of controllers, at `/sys/fs/cgroup/unified`).
    Hybrid,
    /// Only the v2 unified tree.
    V2,
}

impl CgroupMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::Hybrid => "hybrid",
            Self::V2 => "v2",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HierarchyError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no cgroup hierarchy is mounted (checked {0})")]
    NoneMounted(String),
}

/// Mount points of the cgroup hierarchies this agent reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hierarchies {
    /// The cgroup v2 mount, if any.
    pub unified: Option<PathBuf>,
    /// v1 mounts by controller name (`cpu`, `cpuacct`, `memory`, `blkio`, `pids`, ...). Named
    /// hierarchies (`name=systemd`) are not controllers and are left out.
    pub v1: BTreeMap<String, PathBuf>,
}

impl Hierarchies {
    /// Detects mounts from `/proc/self/mountinfo`, then applies `overrides` (controller name,
    /// or `unified`, to mount path), which is how tests point the agent at fixture trees.
    pub fn detect(overrides: &BTreeMap<String, PathBuf>) -> Result<Self, HierarchyError> {
        let mountinfo = "/proc/self/mountinfo";
        let text = std::fs::read_to_string(mountinfo).map_err(|source| HierarchyError::Read {
            path: mountinfo.into(),
            source,
        })?;
        let mut h = Self::from_mountinfo(&text);
        for (name, path) in overrides {
            if name == "unified" {
                h.unified = Some(path.clone());
            } else {
                h.v1.insert(name.clone(), path.clone());
            }
        }
        if h.unified.is_none() && h.v1.is_empty() {
            return Err(HierarchyError::NoneMounted(mountinfo.into()));
        }
        Ok(h)
    }

    /// Parses mountinfo text (proc(5)): field 5 is the mount point; after the ` - ` separator
    /// come the filesystem type, the source and the super options, which list v1 controllers.
    pub fn from_mountinfo(text: &str) -> Self {
        let mut h = Self::default();
        for line in text.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let Some(mount_point) = left.split(' ').nth(4) else {
                continue;
            };
            let mut right = right.split(' ');
            let fstype = right.next().unwrap_or_default();
            let super_opts = right.nth(1).unwrap_or_default();
            let mount_point = PathBuf::from(unescape_mountinfo(mount_point));
            match fstype {
                "cgroup2" => {
                    h.unified.get_or_insert(mount_point);
                }
                "cgroup" => {
                    for opt in super_opts.split(',') {
                        if is_v1_controller(opt) {
                            h.v1.entry(opt.to_string())
                                .or_insert_with(|| mount_point.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        h
    }

    pub fn mode(&self) -> CgroupMode {
        match (self.unified.is_some(), self.v1.is_empty()) {
            (true, true) => CgroupMode::V2,
            (true, false) => CgroupMode::Hybrid,
            (false, _) => CgroupMode::V1,
        }
    }

    /// Directory of cgroup `path` (a cAdvisor `id` such as `/kubepods/pod1`) in the hierarchy of
    /// `controller`, if that controller is mounted as v1.
    pub fn v1_dir(&self, controller: &str, path: &str) -> Option<PathBuf> {
        self.v1.get(controller).map(|m| join(m, path))
    }

    /// Directory of cgroup `path` in the unified tree, if one is mounted.
    pub fn unified_dir(&self, path: &str) -> Option<PathBuf> {
        self.unified.as_deref().map(|m| join(m, path))
    }

    /// The hierarchy whose directory tree defines which cgroups exist: the unified tree on a
    /// pure v2 host, else the first mounted of the v1 controllers cAdvisor reads (a hybrid
    /// host's unified tree is systemd's bookkeeping, not where containers are accounted).
    pub fn primary(&self) -> Option<&Path> {
        if self.mode() == CgroupMode::V2 {
            return self.unified.as_deref();
        }
        ["cpu", "cpuacct", "memory", "pids", "blkio"]
            .iter()
            .find_map(|c| self.v1.get(*c))
            .map(PathBuf::as_path)
            .or(self.unified.as_deref())
    }

    /// Every hierarchy's mount point (unified first), for directory walks.
    pub fn mounts(&self) -> Vec<&Path> {
        let mut v: Vec<&Path> = self.unified.iter().map(PathBuf::as_path).collect();
        for m in self.v1.values() {
            if !v.contains(&m.as_path()) {
                v.push(m);
            }
        }
        v
    }
}

/// `mount` joined with a cgroup path that starts with `/`.
pub fn join(mount: &Path, path: &str) -> PathBuf {
    let rel = path.trim_start_matches('/');
    if rel.is_empty() {
        mount.to_path_buf()
    } else {
        mount.join(rel)
    }
}

fn is_v1_controller(opt: &str) -> bool {
    matches!(
        opt,
        "cpu"
            | "cpuacct"
            | "cpuset"
            | "memory"
            | "blkio"
            | "io"
            | "pids"
            | "devices"
            | "freezer"
            | "net_cls"
            | "net_prio"
            | "perf_event"
            | "hugetlb"
            | "rdma"
            | "misc"
    )
}

/// mountinfo escapes space, tab, newline and backslash as octal `\040` etc.
fn unescape_mountinfo(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shapes taken from real hosts: a hybrid systemd host and a pure v2 host.
    const HYBRID: &str = "\
25 30 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:24 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
31 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
32 25 0:29 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,memory
33 25 0:30 / /sys/fs/cgroup/blkio rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,blkio
";
    const V2: &str = "\
35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    #[test]
    fn hybrid_host_has_v1_controllers_and_a_unified_tree() {
        let h = Hierarchies::from_mountinfo(HYBRID);
        assert_eq!(h.mode(), CgroupMode::Hybrid);
        assert_eq!(
            h.unified.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
        assert_eq!(h.v1.get("cpu"), h.v1.get("cpuacct"));
        assert_eq!(
            h.v1_dir("memory", "/kubepods/pod1"),
            Some(PathBuf::from("/sys/fs/cgroup/memory/kubepods/pod1"))
        );
        assert!(!h.v1.contains_key("name=systemd"));
    }

    #[test]
    fn v2_host_has_only_the_unified_tree() {
        let h = Hierarchies::from_mountinfo(V2);
        assert_eq!(h.mode(), CgroupMode::V2);
        assert_eq!(h.unified_dir("/"), Some(PathBuf::from("/sys/fs/cgroup")));
    }

    #[test]
    fn escaped_mount_points_are_decoded() {
        assert_eq!(unescape_mountinfo(r"/mnt/a\040b"), "/mnt/a b");
    }
}
