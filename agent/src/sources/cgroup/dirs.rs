//! Where one cgroup's files are: its directory in each v1 controller hierarchy and in the
//! unified tree, resolved once when the cgroup is first seen.
//!
//! Per controller, a v1 directory wins over the unified one, as cAdvisor reads a hybrid host
//! through its v1 controllers; files only the unified tree has (PSI) come from there.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::identity::{Hierarchies, join};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CgroupDirs {
    pub cpu: Option<PathBuf>,
    pub cpuacct: Option<PathBuf>,
    pub cpuset: Option<PathBuf>,
    pub memory: Option<PathBuf>,
    pub blkio: Option<PathBuf>,
    pub pids: Option<PathBuf>,
    pub hugetlb: Option<PathBuf>,
    pub unified: Option<PathBuf>,
}

impl CgroupDirs {
    /// Directories of cgroup `path` (relative to the hierarchy mounts) that exist now.
    pub fn resolve(h: &Hierarchies, path: &str) -> Self {
        let v1 = |c: &str| {
            let mount = h.v1.get(c)?;
            let dir = join(mount, path);
            dir.is_dir().then_some(dir)
        };
        let unified = h.unified.as_ref().and_then(|m| {
            let dir = join(m, path);
            dir.is_dir().then_some(dir)
        });
        Self {
            cpu: v1("cpu"),
            cpuacct: v1("cpuacct"),
            cpuset: v1("cpuset"),
            memory: v1("memory"),
            blkio: v1("blkio"),
            pids: v1("pids"),
            hugetlb: v1("hugetlb"),
            unified,
        }
    }

    /// Whether any directory was found.
    pub fn any(&self) -> bool {
        self.cpu.is_some()
            || self.cpuacct.is_some()
            || self.memory.is_some()
            || self.blkio.is_some()
            || self.pids.is_some()
            || self.unified.is_some()
    }

    /// The cgroup's creation time as cAdvisor derives it (unix seconds): the earliest mtime
    /// of its v1 directories and their `cgroup.clone_children`, or on v2 the mtime of
    /// `cgroup.events`; never before boot.
    pub fn creation_time(&self, boot_time: f64) -> Option<f64> {
        let mut earliest: Option<f64> = None;
        let mut consider = |p: PathBuf| {
            if let Ok(m) = std::fs::metadata(&p) {
                let t = m.mtime() as f64 + m.mtime_nsec() as f64 / 1e9;
                earliest = Some(earliest.map_or(t, |e: f64| e.min(t)));
            }
        };
        let v1: Vec<&PathBuf> = [
            &self.cpu,
            &self.cpuacct,
            &self.memory,
            &self.blkio,
            &self.pids,
        ]
        .into_iter()
        .flatten()
        .collect();
        if v1.is_empty() {
            if let Some(u) = &self.unified {
                consider(u.join("cgroup.events"));
            }
        } else {
            for d in v1 {
                consider(d.clone());
                consider(d.join("cgroup.clone_children"));
            }
        }
        earliest.map(|t| t.max(boot_time))
    }
}
