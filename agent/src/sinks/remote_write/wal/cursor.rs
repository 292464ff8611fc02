//! Durable read cursors: one small file per endpoint, replaced atomically.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A place in the WAL: segment index and byte offset of the next record to read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

/// The cursor file of queue `name` (names are sanitised to a portable file name).
pub fn path(dir: &Path, name: &str) -> PathBuf {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{safe}.cursor"))
}

/// Reads a cursor; `Ok(None)` when absent, an error when unreadable or corrupt.
pub fn load(file: &Path) -> io::Result<Option<Position>> {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let corrupt = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: corrupt cursor file", file.display()),
        )
    };
    if bytes.len() != 20 {
        return Err(corrupt());
    }
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[i..i + 8]);
        u64::from_le_bytes(w)
    };
    let crc = u32::from_le_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    if crc32c::crc32c(&bytes[..16]) != crc {
        return Err(corrupt());
    }
    Ok(Some(Position {
        segment: word(0),
        offset: word(8),
    }))
}

/// Writes a cursor durably: temp file, fsync, rename, fsync of the directory.
pub fn store(file: &Path, pos: Position) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(20);
    bytes.extend(pos.segment.to_le_bytes());
    bytes.extend(pos.offset.to_le_bytes());
    bytes.extend(crc32c::crc32c(&bytes).to_le_bytes());
    let tmp = file.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, file)?;
    if let Some(dir) = file.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_corruption_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let f = path(dir.path(), "mimir/eu");
        assert!(f.ends_with("mimir_eu.cursor"));
        assert_eq!(load(&f).unwrap(), None);
        let p = Position {
            segment: 7,
            offset: 4096,
        };
        store(&f, p).unwrap();
        assert_eq!(load(&f).unwrap(), Some(p));
        let mut b = std::fs::read(&f).unwrap();
        b[3] ^= 1;
        std::fs::write(&f, b).unwrap();
        assert!(load(&f).is_err());
    }
}
