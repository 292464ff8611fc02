//! Reading small kernel files (cgroupfs, procfs, sysfs) into one reused buffer, and parsing
//! the formats they use.
//!
//! Files vanish all the time (a container exits between listing and reading): ENOENT, ENODEV
//! and ESRCH are normal and only counted; other errors are counted apart and logged at debug.

use std::io::Read as _;
use std::os::fd::{BorrowedFd, FromRawFd as _};
use std::path::{Path, PathBuf};

use super::dirs::CgroupDir;

/// A directory files are read from: by path, or relative to an open descriptor.
pub trait FileDir {
    fn path(&self) -> &Path;
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
}

impl FileDir for Path {
    fn path(&self) -> &Path {
        self
    }
}

impl FileDir for PathBuf {
    fn path(&self) -> &Path {
        self
    }
}

impl FileDir for CgroupDir {
    fn path(&self) -> &Path {
        CgroupDir::path(self)
    }
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        CgroupDir::fd(self)
    }
}

/// A read shorter than this (into a buffer with at least [`MIN_SPARE`] free) reached the end of
/// the file. Kernel text files come from seq_file, which fills the reader's buffer until the
/// next record would overflow its own page-sized buffer or the records end; cgroup and /proc
/// records are far shorter than a page, so a short read well below a page is the end, and the
/// read that would return 0 can be skipped.
const SHORT_READ: usize = 2048;
const MIN_SPARE: usize = 8192;

/// Longest file name opened relative to a directory descriptor (cgroup file names are short;
/// longer ones go by path).
const MAX_NAME: usize = 96;

/// A file reader with a reused buffer and path scratch space: the hot path allocates nothing.
#[derive(Default)]
pub struct FileReader {
    buf: Vec<u8>,
    path: PathBuf,
    /// Reads that found the file gone this cycle.
    pub vanished: u64,
    /// Reads that failed otherwise this cycle.
    pub failed: u64,
    /// Files read, when recording (the benchmark's floor replays them): the directory and
    /// the name, the directory's descriptor duplicated when the read went through one.
    record: Option<Vec<RecordedRead>>,
}

/// One file the reader read.
pub struct RecordedRead {
    pub dir: PathBuf,
    pub name: String,
    pub dir_fd: Option<std::os::fd::OwnedFd>,
}

impl FileReader {
    pub fn new() -> Self {
        Self {
            buf: vec![0; MIN_SPARE * 2],
            path: PathBuf::with_capacity(256),
            vanished: 0,
            failed: 0,
            record: None,
        }
    }

    /// Starts (or stops, returning them) recording the files this reader opens.
    pub fn record(&mut self, on: bool) -> Vec<RecordedRead> {
        let previous = std::mem::replace(&mut self.record, on.then(Vec::new));
        previous.unwrap_or_default()
    }

    /// Contents of `dir/name` as text, or None if it cannot be read.
    pub fn read<D: FileDir + ?Sized>(&mut self, dir: &D, name: &str) -> Option<&str> {
        if let Some(r) = &mut self.record {
            r.push(RecordedRead {
                dir: dir.path().to_path_buf(),
                name: name.to_string(),
                dir_fd: dir.fd().and_then(|fd| fd.try_clone_to_owned().ok()),
            });
        }
        self.path.clear();
        self.path.push(dir.path());
        self.path.push(name);
        let file = match dir.fd() {
            Some(fd) if name.len() < MAX_NAME => open_at(fd, name),
            _ => std::fs::File::open(&self.path),
        };
        let result = file.and_then(|mut f| read_all(&mut f, &mut self.buf));
        match result {
            Ok(len) => std::str::from_utf8(&self.buf[..len]).ok(),
            Err(e) => {
                self.note_error(&e);
                None
            }
        }
    }

    /// Contents of an absolute path.
    pub fn read_path(&mut self, path: &Path) -> Option<&str> {
        if let Some(r) = &mut self.record {
            r.push(RecordedRead {
                dir: path.parent().unwrap_or(Path::new("/")).to_path_buf(),
                name: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                dir_fd: None,
            });
        }
        let result = std::fs::File::open(path).and_then(|mut f| read_all(&mut f, &mut self.buf));
        match result {
            Ok(len) => std::str::from_utf8(&self.buf[..len]).ok(),
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

/// Opens `name` below the directory `dir` for reading.
pub fn open_at(dir: BorrowedFd<'_>, name: &str) -> std::io::Result<std::fs::File> {
    use std::os::fd::AsRawFd as _;
    let mut c = [0u8; MAX_NAME];
    let Some(slot) = c.get_mut(..name.len()) else {
        return Err(std::io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    };
    slot.copy_from_slice(name.as_bytes());
    if name.as_bytes().contains(&0) {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: `c` holds `name` followed by NUL bytes; the descriptor returned is owned below.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c.as_ptr().cast(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and nothing else owns it.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// Reads a whole kernel text file into `buf`, returning its length. `buf` keeps its length
/// (its bytes are scratch) and grows when a file does not fit, so steady reads neither
/// allocate nor zero memory. The final empty read after a short one is skipped (see
/// [`SHORT_READ`]).
pub fn read_all(f: &mut std::fs::File, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    if buf.len() < 2 * MIN_SPARE {
        buf.resize(2 * MIN_SPARE, 0);
    }
    let mut len = 0;
    loop {
        if buf.len() - len < MIN_SPARE {
            buf.resize(buf.len() * 2, 0);
        }
        let spare = buf.len() - len;
        let n = match f.read(&mut buf[len..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        len += n;
        if n == 0 || (n < SHORT_READ && spare >= MIN_SPARE) {
            return Ok(len);
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
