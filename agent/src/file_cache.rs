//! Files the agent re-reads when they change (credentials and certificates rotated in place by
//! cert-manager or a Secret volume), checked by metadata so that an unchanged file costs one
//! `stat` per use instead of a read.

use std::os::unix::fs::MetadataExt as _;
use std::sync::Mutex;

/// What identifies one version of a file: a rewrite in place changes size or mtime, an atomic
/// rename or a Kubernetes `..data` symlink swap changes the inode (metadata follows symlinks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl FileStamp {
    /// `None` when the file cannot be examined (missing, no permission).
    pub fn of(path: &str) -> Option<Self> {
        let m = std::fs::metadata(path).ok()?;
        Some(Self {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
        })
    }
}

/// A text file's trimmed content (a token, a password), re-read only when its stamp changes.
#[derive(Debug)]
pub struct CachedText {
    path: String,
    cached: Mutex<Option<(FileStamp, String)>>,
}

impl CachedText {
    pub fn new(path: &str) -> Self {
        Self {
            path: path.to_string(),
            cached: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// The content now. Errors name the file.
    pub fn read(&self) -> Result<String, String> {
        let err = |e: std::io::Error| format!("{}: {e}", self.path);
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        let Some(now) = FileStamp::of(&self.path) else {
            *cached = None;
            // Read anyway for the precise error.
            return std::fs::read_to_string(&self.path)
                .map(|s| s.trim().to_string())
                .map_err(err);
        };
        if let Some((stamp, text)) = cached.as_ref()
            && *stamp == now
        {
            return Ok(text.clone());
        }
        let text = std::fs::read_to_string(&self.path)
            .map(|s| s.trim().to_string())
            .map_err(err)?;
        *cached = Some((now, text.clone()));
        Ok(text)
    }
}

impl PartialEq for CachedText {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path
    }
}

impl Eq for CachedText {}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn a_changed_file_is_read_again_and_a_removed_one_fails() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, "one\n").unwrap();
        let t = CachedText::new(&f.display().to_string());
        assert_eq!(t.read().unwrap(), "one");
        assert_eq!(t.read().unwrap(), "one");
        std::fs::write(&f, "second").unwrap();
        assert_eq!(t.read().unwrap(), "second");
        let renamed = dir.path().join("token.new");
        std::fs::write(&renamed, "third").unwrap();
        std::fs::rename(&renamed, &f).unwrap();
        assert_eq!(t.read().unwrap(), "third");
        std::fs::remove_file(&f).unwrap();
        assert!(t.read().unwrap_err().contains("token"));
    }
}
