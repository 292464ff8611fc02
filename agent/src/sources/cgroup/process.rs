//! The `process` set: processes, threads, file descriptors, sockets, ulimits.
//!
//! Processes are the PIDs in the cgroup's own `cgroup.procs` (v1: the cpu controller's; not
//! recursive, as cAdvisor). Threads from `pids.current`/`pids.max`. File descriptors and
//! sockets from /proc/<pid>/fd: one directory listing per process and, for sockets, one
//! readlink per descriptor — the cost kubelet is known for, so it is bounded by a per-cycle
//! PID budget (cgroups past the budget keep their last counts).

use std::ffi::CStr;
use std::path::Path;

use super::CgroupDirs;
use super::emit::{Group, SeriesCache, SeriesEmitter};
use super::families::*;
use super::read::{FileReader, Limit, parse_limit};

/// Reads the PIDs of a cgroup into `pids` (cleared first); false when the file is gone.
pub fn read_pids(r: &mut FileReader, dirs: &CgroupDirs, pids: &mut Vec<u32>) -> bool {
    pids.clear();
    let dir = dirs.cpu.as_ref().or(dirs.unified.as_ref());
    let Some(text) = dir.and_then(|d| r.read(d, "cgroup.procs")) else {
        return false;
    };
    pids.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
    true
}

/// `pids.current` and `pids.max` (`max` → 0, cAdvisor's "unlimited").
pub fn read_threads(r: &mut FileReader, dirs: &CgroupDirs) -> (Option<u64>, u64) {
    let dir = match (&dirs.pids, &dirs.unified) {
        (Some(d), _) => Some(d),
        (None, Some(u)) => Some(u),
        _ => None,
    };
    let Some(dir) = dir else { return (None, 0) };
    let current = r.u64(dir, "pids.current");
    let max = r
        .read(dir, "pids.max")
        .and_then(parse_limit)
        .map_or(0, |l| match l {
            Limit::Max => 0,
            Limit::Value(v) => v,
        });
    let current = current.or_else(|| {
        // No pids controller: count the cgroup's threads instead.
        let file = if dirs.cpu.is_some() {
            "tasks"
        } else {
            "cgroup.threads"
        };
        let d = dirs.cpu.as_ref().or(dirs.unified.as_ref())?;
        r.read(d, file).map(|t| t.lines().count() as u64)
    });
    (current, max)
}

/// Counts the open file descriptors of `pid`, and those that are sockets when `sockets`.
/// None when the process is gone (or not ours to read).
pub fn count_fds(pid: u32, sockets: bool) -> Option<(u64, u64)> {
    let mut path = [0u8; 32];
    let s = format_into(&mut path, pid)?;
    // SAFETY: `s` is a NUL-terminated path in `path`; the returned DIR is closed below.
    let dir = unsafe { libc::opendir(s.as_ptr()) };
    if dir.is_null() {
        return None;
    }
    // SAFETY: `dir` is a valid open DIR.
    let dfd = unsafe { libc::dirfd(dir) };
    let mut fds = 0u64;
    let mut socks = 0u64;
    let mut link = [0u8; 16];
    loop {
        // SAFETY: `dir` is valid; readdir returns null at the end or on error.
        let ent = unsafe { libc::readdir(dir) };
        if ent.is_null() {
            break;
        }
        // SAFETY: `ent` points at a dirent valid until the next readdir on `dir`.
        let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) };
        if name.to_bytes().first() == Some(&b'.') {
            continue;
        }
        fds += 1;
        if sockets {
            // SAFETY: `name` is NUL-terminated, `link` is writable for its length; a
            // truncated target is fine because only the prefix matters.
            let n = unsafe {
                libc::readlinkat(dfd, name.as_ptr(), link.as_mut_ptr().cast(), link.len())
            };
            if n >= 7 && link.starts_with(b"socket:") {
                socks += 1;
            }
        }
    }
    // SAFETY: `dir` came from opendir and is closed once.
    unsafe { libc::closedir(dir) };
    Some((fds, socks))
}

/// Writes `/proc/<pid>/fd\0` into `buf`.
fn format_into(buf: &mut [u8; 32], pid: u32) -> Option<&CStr> {
    use std::io::Write as _;
    let mut cur = std::io::Cursor::new(&mut buf[..]);
    write!(cur, "/proc/{pid}/fd\0").ok()?;
    let len = cur.position() as usize;
    CStr::from_bytes_with_nul(&buf[..len]).ok()
}

/// Soft "Max open files" of `pid` from /proc/<pid>/limits; `unlimited` is -1.
pub fn max_open_files(r: &mut FileReader, pid: u32) -> Option<f64> {
    let mut p = [0u8; 32];
    let path = {
        use std::io::Write as _;
        let mut cur = std::io::Cursor::new(&mut p[..]);
        write!(cur, "/proc/{pid}/limits").ok()?;
        let len = cur.position() as usize;
        std::str::from_utf8(&p[..len]).ok()?.to_string()
    };
    let text = r.read_path(Path::new(&path))?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..]
        .split_ascii_whitespace()
        .next()?;
    if soft == "unlimited" {
        Some(-1.0)
    } else {
        soft.parse::<f64>().ok()
    }
}

/// Whether `pid` runs the pause binary (a sandbox, when no metadata says so).
pub fn is_pause(r: &mut FileReader, pid: u32) -> bool {
    r.read_path(Path::new(&format!("/proc/{pid}/comm")))
        .is_some_and(|c| c.trim_end() == "pause")
}

/// What one cycle learned about a cgroup's processes.
pub struct ProcessReading {
    pub processes: u64,
    pub threads: Option<u64>,
    pub threads_max: u64,
    pub fds: Option<(u64, u64)>,
    pub max_open_files: Option<f64>,
}

pub fn emit(p: &ProcessReading, sockets: bool, cache: &mut SeriesCache, e: &mut SeriesEmitter<'_>) {
    let g = Group::Process;
    e.emit(cache, g, &PROCESSES, &[], p.processes as f64);
    if let Some(t) = p.threads {
        e.emit(cache, g, &THREADS, &[], t as f64);
    }
    e.emit(cache, g, &THREADS_MAX, &[], p.threads_max as f64);
    if let Some((fds, socks)) = p.fds {
        e.emit(cache, g, &FILE_DESCRIPTORS, &[], fds as f64);
        if sockets {
            e.emit(cache, g, &SOCKETS, &[], socks as f64);
        }
    }
    if let Some(v) = p.max_open_files {
        e.emit(cache, g, &ULIMITS_SOFT, &[("ulimit", "max_open_files")], v);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn own_fds_and_limits_are_counted() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (fds, socks) = count_fds(std::process::id(), true).unwrap();
        assert!(fds >= 4, "stdin/out/err and the socket: {fds}");
        assert!(socks >= 1);
        drop(listener);
        let mut r = FileReader::new();
        let soft = max_open_files(&mut r, std::process::id()).unwrap();
        assert!(soft == -1.0 || soft >= 1.0);
        assert_eq!(count_fds(u32::MAX, true), None);
    }
}
