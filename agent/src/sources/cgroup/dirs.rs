//! Where one cgroup's files are: its directory in each v1 controller hierarchy and in the
//! unified tree, resolved once when the cgroup is first seen.
//!
//! Per controller, a v1 directory wins over the unified one, as cAdvisor reads a hybrid host
//! through its v1 controllers; files only the unified tree has (PSI) come from there.

use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::identity::{Hierarchies, join};

/// One cgroup directory: its path, and a descriptor its files are opened relative to. A
/// cgroup file's full path is ten or more components below the mount; opening it relative to
/// the directory skips that lookup on every read (a third of an open's cost).
#[derive(Debug)]
pub struct CgroupDir {
    path: PathBuf,
    /// `O_PATH` descriptor: no read access is needed or taken, and it holds no kernel buffer.
    /// None when it could not be opened (descriptor limit): reads then go by path.
    fd: Option<OwnedFd>,
}

/// Directory descriptors held now, across every collector.
static HELD: AtomicUsize = AtomicUsize::new(0);

/// At most this many directory descriptors are held: half the open-files limit, so sockets
/// and WAL files never run short (past it, directories are read by path).
static BUDGET: LazyLock<usize> = LazyLock::new(|| {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) } != 0 {
        return 0;
    }
    usize::try_from(l.rlim_cur / 2).unwrap_or(usize::MAX)
});

/// Raises the soft open-files limit to the hard one (as the Go runtime does for every Go
/// program, kubelet's cAdvisor included): a node's cgroups are held open as directories.
/// Best effort; call before the first collection.
pub fn raise_open_files_limit() {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read or write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &l) != 0 {
                tracing::debug!(
                    error = %std::io::Error::last_os_error(),
                    "cannot raise the open-files limit"
                );
            }
        }
    }
}

impl CgroupDir {
    /// The directory at `path` if it is one now.
    pub fn open(path: PathBuf) -> Option<Self> {
        if HELD.fetch_add(1, Ordering::Relaxed) >= *BUDGET {
            HELD.fetch_sub(1, Ordering::Relaxed);
            return path.is_dir().then_some(Self { path, fd: None });
        }
        let mut c = Vec::with_capacity(path.as_os_str().len() + 1);
        c.extend_from_slice(path.as_os_str().as_bytes());
        c.push(0);
        // SAFETY: `c` is NUL-terminated; the descriptor returned is owned below.
        let raw = unsafe {
            libc::open(
                c.as_ptr().cast(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if raw >= 0 {
            // SAFETY: `raw` is a descriptor we just opened and nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            return Some(Self { path, fd: Some(fd) });
        }
        HELD.fetch_sub(1, Ordering::Relaxed);
        // Out of descriptors is not a reason to lose the cgroup: read it by path.
        let errno = std::io::Error::last_os_error().raw_os_error();
        (matches!(errno, Some(libc::EMFILE | libc::ENFILE)) && path.is_dir())
            .then_some(Self { path, fd: None })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.fd.as_ref().map(AsFd::as_fd)
    }
}

impl Drop for CgroupDir {
    fn drop(&mut self) {
        if self.fd.is_some() {
            HELD.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl std::ops::Deref for CgroupDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl PartialEq for CgroupDir {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path
    }
}

impl Eq for CgroupDir {}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct CgroupDirs {
    pub cpu: Option<CgroupDir>,
    pub cpuacct: Option<CgroupDir>,
    pub cpuset: Option<CgroupDir>,
    pub memory: Option<CgroupDir>,
    pub blkio: Option<CgroupDir>,
    pub pids: Option<CgroupDir>,
    pub hugetlb: Option<CgroupDir>,
    pub unified: Option<CgroupDir>,
}

impl CgroupDirs {
    /// Directories of cgroup `path` (relative to the hierarchy mounts) that exist now.
    pub fn resolve(h: &Hierarchies, path: &str) -> Self {
        let v1 = |c: &str| CgroupDir::open(join(h.v1.get(c)?, path));
        let unified = h
            .unified
            .as_ref()
            .and_then(|m| CgroupDir::open(join(m, path)));
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
        let v1: Vec<&CgroupDir> = [
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
                consider(d.to_path_buf());
                consider(d.join("cgroup.clone_children"));
            }
        }
        earliest.map(|t| t.max(boot_time))
    }
}
