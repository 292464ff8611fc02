//! Test cgroups, created only where this machine's rules allow: directly under the cgroup v2
//! mount, or below the test process's own cgroup in a v1 hierarchy. Removed on drop.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Mount point of the unified (v2) hierarchy on this host, if any.
pub fn unified_mount() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        right
            .starts_with("cgroup2 ")
            .then(|| PathBuf::from(left.split(' ').nth(4).unwrap_or_default()))
    })
}

/// A cgroup directory this test created; every process in it is killed and the directory
/// removed on drop.
pub struct TestCgroup {
    /// Absolute directory.
    pub dir: PathBuf,
    /// Path relative to the hierarchy's mount, starting with `/` (cAdvisor's `id`).
    pub path: String,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl TestCgroup {
    /// A fresh cgroup directly under the v2 mount, named after the test.
    pub fn unified(name: &str) -> std::io::Result<Self> {
        let mount = unified_mount().ok_or_else(|| std::io::Error::other("no cgroup2 mount"))?;
        let leaf = format!(
            "nodemeter-test-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = mount.join(&leaf);
        std::fs::create_dir(&dir)?;
        Ok(Self {
            dir,
            path: format!("/{leaf}"),
        })
    }

    /// A cgroup named `name` inside this one (remove it before this one: drop it first).
    pub fn child(&self, name: &str) -> std::io::Result<Self> {
        let dir = self.dir.join(name);
        std::fs::create_dir(&dir)?;
        Ok(Self {
            dir,
            path: format!("{}/{name}", self.path),
        })
    }

    /// The cgroup v2 id: the directory's inode, what `bpf_get_current_cgroup_id` returns.
    pub fn id(&self) -> u64 {
        std::fs::metadata(&self.dir).map(|m| m.ino()).unwrap_or(0)
    }

    pub fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.join(file)).unwrap_or_default()
    }

    /// Value of `key` in a flat-keyed file such as `cpu.stat`.
    pub fn stat(&self, file: &str, key: &str) -> Option<u64> {
        self.read(file).lines().find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse().ok())?
        })
    }

    /// Makes `cmd` start inside this cgroup: the child moves itself in before exec, so every
    /// instruction of the new program is accounted here.
    pub fn spawn_inside(&self, cmd: &mut Command) -> std::io::Result<std::process::Child> {
        let procs = File::options()
            .write(true)
            .open(self.dir.join("cgroup.procs"))?;
        let fd = procs.as_raw_fd();
        // SAFETY: the closure runs between fork and exec and only calls write(2) on an fd
        // opened before the fork, which is async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                let zero = b"0";
                if libc::write(fd, zero.as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn();
        drop(procs);
        child
    }

    fn kill_all(&self) {
        let _ = std::fs::write(self.dir.join("cgroup.kill"), "1");
        for pid in self.read("cgroup.procs").split_whitespace() {
            if let Ok(pid) = pid.parse::<i32>() {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        self.kill_all();
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() || !Path::new(&self.dir).exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        eprintln!(
            "warning: could not remove test cgroup {}",
            self.dir.display()
        );
    }
}
