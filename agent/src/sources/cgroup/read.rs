//! Reading small kernel files (cgroupfs, procfs, sysfs) into one reused buffer, and parsing
//! the formats they use.
//!
//! Files vanish all the time (a container exits between listing and reading): ENOENT, ENODEV
//! and ESRCH are normal and only counted; other errors are counted apart and logged at debug.

use std::io::Read as _;
use std::path::{Path, PathBuf};

/// A file reader with a reused buffer and path scratch space: the hot path allocates nothing.
#[derive(Default)]
pub struct FileReader {
    buf: Vec<u8>,
    path: PathBuf,
    /// Reads that found the file gone this cycle.
    pub vanished: u64,
    /// Reads that failed otherwise this cycle.
    pub failed: u64,
    /// Paths read, when recording (the benchmark's floor replays them).
    record: Option<Vec<PathBuf>>,
}

impl FileReader {
    pub fn new() -> Self {
        Self {
            buf: Vec::with_capacity(8192),
            path: PathBuf::with_capacity(256),
            vanished: 0,
            failed: 0,
            record: None,
        }
    }

    /// Starts (or stops, returning them) recording the paths this reader opens.
    pub fn record(&mut self, on: bool) -> Vec<PathBuf> {
        let previous = std::mem::replace(&mut self.record, on.then(Vec::new));
        previous.unwrap_or_default()
    }

    /// Contents of `dir/name` as text, or None if it cannot be read.
    pub fn read(&mut self, dir: &Path, name: &str) -> Option<&str> {
        self.path.clear();
        self.path.push(dir);
        self.path.push(name);
        if let Some(r) = &mut self.record {
            r.push(self.path.clone());
        }
        self.buf.clear();
        let result = std::fs::File::open(&self.path).and_then(|mut f| f.read_to_end(&mut self.buf));
        match result {
            Ok(_) => std::str::from_utf8(&self.buf).ok(),
            Err(e) => {
                self.note_error(&e);
                None
            }
        }
    }

    /// Contents of an absolute path.
    pub fn read_path(&mut self, path: &Path) -> Option<&str> {
        if let Some(r) = &mut self.record {
            r.push(path.to_path_buf());
        }
        self.buf.clear();
        let result = std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut self.buf));
        match result {
            Ok(_) => std::str::from_utf8(&self.buf).ok(),
            Err(e) => {
                self.note_error(&e);
                None
            }
        }
    }

    /// A single unsigned number file (`memory.usage_in_bytes`, `cpuacct.usage`).
    pub fn u64(&mut self, dir: &Path, name: &str) -> Option<u64> {
        self.read(dir, name)?.trim().parse().ok()
    }

    /// A single signed number file (`cpu.cfs_quota_us` is -1 when unlimited).
    pub fn i64(&mut self, dir: &Path, name: &str) -> Option<i64> {
        self.read(dir, name)?.trim().parse().ok()
    }

    /// A limit file: a number, or `max` (v2) / a huge number (v1) for unlimited.
    pub fn limit(&mut self, dir: &Path, name: &str) -> Option<Limit> {
        parse_limit(self.read(dir, name)?)
    }

    fn note_error(&mut self, e: &std::io::Error) {
        match e.raw_os_error() {
            Some(libc::ENOENT | libc::ENODEV | libc::ESRCH) => self.vanished += 1,
            _ => {
                self.failed += 1;
                tracing::debug!(path = %self.path.display(), error = %e, "read failed");
            }
        }
    }
}

/// A limit as cgroup files express it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Max,
    Value(u64),
}

impl Limit {
    /// cAdvisor's export rule: values above 2^62 (v1's "unlimited" is near 2^63) and `max`
    /// are 0.
    pub fn exported(self) -> u64 {
        match self {
            Self::Max => 0,
            Self::Value(v) if v > 1 << 62 => 0,
            Self::Value(v) => v,
        }
    }
}

pub fn parse_limit(text: &str) -> Option<Limit> {
    let t = text.trim();
    if t == "max" {
        return Some(Limit::Max);
    }
    t.parse().ok().map(Limit::Value)
}

/// Calls `f(key, value)` for every `key value` line of a flat-keyed file (`memory.stat`,
/// `cpu.stat`, `memory.events`).
pub fn for_each_kv(text: &str, mut f: impl FnMut(&str, u64)) {
    for line in text.lines() {
        if let Some((k, v)) = line.split_once(' ')
            && let Ok(v) = v.trim().parse()
        {
            f(k, v);
        }
    }
}

/// Value of `key` in a flat-keyed file.
pub fn kv(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// `some`/`full` `total=` values (µs) of a PSI file (`cpu.pressure`):
/// `some avg10=0.00 avg60=0.00 avg300=0.00 total=1234`.
pub fn psi_totals(text: &str) -> (Option<u64>, Option<u64>) {
    let mut some = None;
    let mut full = None;
    for line in text.lines() {
        let mut words = line.split_ascii_whitespace();
        let which = words.next();
        let total = words
            .find_map(|w| w.strip_prefix("total="))
            .and_then(|v| v.parse().ok());
        match which {
            Some("some") => some = total,
            Some("full") => full = total,
            _ => {}
        }
    }
    (some, full)
}

/// Parses `MAJ:MIN`.
pub fn major_minor(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn limits_follow_cadvisors_unlimited_rule() {
        assert_eq!(parse_limit("max\n"), Some(Limit::Max));
        assert_eq!(parse_limit("9223372036854771712\n").unwrap().exported(), 0);
        assert_eq!(parse_limit("536870912\n").unwrap().exported(), 536_870_912);
        assert_eq!(parse_limit("garbage"), None);
    }

    #[test]
    fn psi_totals_are_read_from_both_lines() {
        let t = "some avg10=0.00 avg60=0.00 avg300=0.00 total=1500\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=700\n";
        assert_eq!(psi_totals(t), (Some(1500), Some(700)));
        assert_eq!(
            psi_totals("some avg10=0.00 avg60=0.00 avg300=0.00 total=9\n"),
            (Some(9), None)
        );
    }

    #[test]
    fn a_missing_file_counts_as_vanished() {
        let mut r = FileReader::new();
        assert_eq!(r.read(Path::new("/nonexistent-nodemeter"), "x"), None);
        assert_eq!((r.vanished, r.failed), (1, 0));
    }
}
