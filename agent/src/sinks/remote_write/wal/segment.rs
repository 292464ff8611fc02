//! Segment files: `<wal dir>/<20-digit index>`, appended in order, never rewritten.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::record::{self, HEADER_LEN, MAX_PAYLOAD};

pub fn path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{index:020}"))
}

/// Indices of the segment files in `dir`, ascending. Other files are ignored.
pub fn list(dir: &Path) -> io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.len() == 20
            && let Ok(i) = name.parse::<u64>()
        {
            out.push(i);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// One step of reading a segment.
pub enum Next {
    /// A record whose checksum matched: (sample count, payload).
    Record(u32, Vec<u8>),
    /// Clean end of the data.
    End,
    /// A short or mismatching record: a torn write (crash) or corruption. Nothing after it in
    /// this segment can be trusted.
    Bad(String),
}

/// Reads records sequentially from an offset.
pub struct SegmentReader {
    file: BufReader<File>,
    pub offset: u64,
}

impl SegmentReader {
    pub fn open(dir: &Path, index: u64, offset: u64) -> io::Result<Self> {
        let mut f = File::open(path(dir, index))?;
        f.seek(SeekFrom::Start(offset))?;
        Ok(Self {
            file: BufReader::with_capacity(256 << 10, f),
            offset,
        })
    }

    /// The next record, reading no further than `limit` (the writer's committed end).
    pub fn next(&mut self, limit: u64) -> io::Result<Next> {
        if self.offset >= limit {
            return Ok(Next::End);
        }
        let mut h = [0u8; HEADER_LEN];
        let mut got = 0;
        while got < HEADER_LEN {
            match self.file.read(&mut h[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // Nothing at all after the last record is the clean end of a closed segment; part of
        // a header is a torn write.
        if got == 0 {
            return Ok(Next::End);
        }
        if got < HEADER_LEN {
            return Ok(Next::Bad(format!("short header at offset {}", self.offset)));
        }
        let (len, count, crc) = record::header(&h);
        if len > MAX_PAYLOAD || self.offset + (HEADER_LEN as u64) + u64::from(len) > limit {
            return Ok(Next::Bad(format!(
                "record at offset {} claims {len} bytes past the end of the data",
                self.offset
            )));
        }
        let mut payload = vec![0u8; len as usize];
        if let Err(e) = self.file.read_exact(&mut payload) {
            return if e.kind() == io::ErrorKind::UnexpectedEof {
                Ok(Next::Bad(format!("short record at offset {}", self.offset)))
            } else {
                Err(e)
            };
        }
        if record::checksum(count, &payload) != crc {
            return Ok(Next::Bad(format!(
                "checksum mismatch at offset {}",
                self.offset
            )));
        }
        self.offset += (HEADER_LEN as u64) + u64::from(len);
        Ok(Next::Record(count, payload))
    }
}

/// Samples stored in a segment from `offset` on (headers only; stops at the first bad record).
pub fn count_samples(dir: &Path, index: u64, offset: u64) -> io::Result<u64> {
    let mut f = BufReader::new(File::open(path(dir, index))?);
    f.seek(SeekFrom::Start(offset))?;
    let mut total = 0u64;
    let mut h = [0u8; HEADER_LEN];
    loop {
        match f.read_exact(&mut h) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(total),
            Err(e) => return Err(e),
        }
        let (len, count, _) = record::header(&h);
        if len > MAX_PAYLOAD {
            return Ok(total);
        }
        total += u64::from(count);
        f.seek_relative(i64::from(len))?;
    }
}
