//! The remote-write write-ahead log: every batch the sink accepts is appended here before it
//! is acknowledged, and each endpoint's queue reads it back through its own durable cursor.
//!
//! Layout: `<dir>/wal/<20-digit segment index>` files of framed, crc32c-checksummed records
//! ([`record`]), and `<dir>/wal/cursors/<queue name>.cursor`. A segment is closed at
//! `segment_size` (or when it is older than an eighth of `max_age`) and never rewritten. A
//! segment every cursor has passed is deleted.
//!
//! **Durability (fsync policy).** An append is a `write(2)` into the current segment: once it
//! returns, the batch survives the process dying (SIGKILL, OOM kill, panic). Segments are
//! fsynced when they are closed and every `fsync_interval` (default 1 s) while they hold
//! unsynced data; `fsync_interval: 0` fsyncs every append. Cursors are fsynced when a queue
//! commits them (every second and at shutdown). So a power loss or kernel crash can lose at
//! most the last `fsync_interval` of appended batches, and re-send at most about one second of
//! already delivered samples (delivery is at least once).
//!
//! **Bounds (drop policy).** When the WAL outgrows `max_size`, or a closed segment is older
//! than `max_age`, the oldest segment is deleted even if a queue has not sent it. Every such
//! drop is logged at warn level with the queue and the sample count, and counted in
//! `nodemeter_remote_storage_samples_dropped_total{reason="wal_size_limit"|"wal_age_limit"}`.
//! A receiver outage shorter than the bounds loses nothing.
//!
//! **Reading from memory.** The last appended batches stay in memory as the sink handed them
//! over ([`TAIL_RECORDS`]), so a queue that keeps up takes them from there instead of reading
//! and decoding the segment it was just written to; its series are then the very label sets the
//! sources built, which the queue's series cache finds by address. A queue that falls behind
//! (an outage, a restart) reads the segments. Either way the bytes on disk are the same.
//!
//! **Restart.** Opening the WAL starts a new segment after the existing ones. A torn record at
//! the end of an old segment (a crash mid-write) ends that segment for readers; a checksum
//! mismatch elsewhere is logged and counted as corruption and the rest of that segment is
//! skipped.

pub mod cursor;
pub mod record;
pub mod segment;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use tokio::sync::watch;
use tracing::{debug, info, warn};

pub use cursor::Position;
pub use record::Decoded;

use super::config::WalConfig;
use crate::model::Batch;
use crate::telemetry::registry;

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("{path}: {what}: {source}")]
    Io {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> WalError + 'a {
    move |source| WalError::Io {
        path: path.to_path_buf(),
        what,
        source,
    }
}

struct SegmentMeta {
    bytes: u64,
    created: SystemTime,
}

/// Recent records kept in memory for queues that keep up: a queue reads within milliseconds of
/// an append, so a few dozen batches are plenty; one further behind reads the segments. Each
/// kept batch holds its samples (32 bytes each) alive.
pub const TAIL_RECORDS: usize = 64;

/// A record still in memory: where it starts and ends in the log, and the batch itself.
struct TailRecord {
    start: Position,
    end: Position,
    batch: Arc<Batch>,
}

struct State {
    file: File,
    /// The last appended records, oldest first, contiguous in the log.
    tail: VecDeque<TailRecord>,
    head: Position,
    head_created: SystemTime,
    segments: BTreeMap<u64, SegmentMeta>,
    dirty: bool,
    /// Committed position of every registered reader, by queue name.
    cursors: HashMap<String, Position>,
}

struct Shared {
    dir: PathBuf,
    cursor_dir: PathBuf,
    config: WalConfig,
    state: Mutex<State>,
    head_tx: watch::Sender<Position>,
}

/// The write-ahead log (cheap to clone; all clones are the same log).
#[derive(Clone)]
pub struct Wal {
    shared: Arc<Shared>,
}

impl Wal {
    /// Opens (or creates) the WAL under `<config.dir>/wal` and starts a fresh segment.
    pub fn open(config: &WalConfig) -> Result<Self, WalError> {
        let dir = config.dir.join("wal");
        let cursor_dir = dir.join("cursors");
        std::fs::create_dir_all(&cursor_dir).map_err(io_err(&cursor_dir, "cannot create"))?;
        let mut segments = BTreeMap::new();
        for index in segment::list(&dir).map_err(io_err(&dir, "cannot list"))? {
            let p = segment::path(&dir, index);
            let meta = std::fs::metadata(&p).map_err(io_err(&p, "cannot stat"))?;
            segments.insert(
                index,
                SegmentMeta {
                    bytes: meta.len(),
                    created: meta.modified().unwrap_or_else(|_| SystemTime::now()),
                },
            );
        }
        let next = segments.keys().next_back().map_or(0, |i| i + 1);
        let file = create_segment(&dir, next)?;
        let now = SystemTime::now();
        segments.insert(
            next,
            SegmentMeta {
                bytes: 0,
                created: now,
            },
        );
        let head = Position {
            segment: next,
            offset: 0,
        };
        info!(dir = %dir.display(), segments = segments.len(), head = next, "remote-write WAL opened");
        let (head_tx, _) = watch::channel(head);
        let wal = Self {
            shared: Arc::new(Shared {
                dir,
                cursor_dir,
                config: config.clone(),
                state: Mutex::new(State {
                    file,
                    tail: VecDeque::new(),
                    head,
                    head_created: now,
                    segments,
                    dirty: false,
                    cursors: HashMap::new(),
                }),
                head_tx,
            }),
        };
        wal.publish_size(&wal.lock());
        Ok(wal)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Appends one batch (blocking I/O: call from a blocking context). On error nothing of the
    /// batch is in the log.
    pub fn append(&self, batch: &Batch) -> Result<(), WalError> {
        self.append_record(batch, None)
    }

    /// [`Wal::append`], and keeps the batch in memory for readers that keep up.
    pub fn append_shared(&self, batch: Arc<Batch>) -> Result<(), WalError> {
        self.append_record(&batch, Some(Arc::clone(&batch)))
    }

    fn append_record(&self, batch: &Batch, keep: Option<Arc<Batch>>) -> Result<(), WalError> {
        let rec = record::encode(batch);
        let mut st = self.lock();
        let start = st.head;
        let path = segment::path(&self.shared.dir, st.head.segment);
        if let Err(e) = st.file.write_all(&rec) {
            // Cut a partial write off so the segment stays a sequence of whole records.
            let _ = st.file.set_len(st.head.offset);
            return Err(io_err(&path, "cannot append")(e));
        }
        st.head.offset += rec.len() as u64;
        let head = st.head;
        match keep {
            Some(batch) => {
                if st.tail.len() >= TAIL_RECORDS {
                    st.tail.pop_front();
                }
                st.tail.push_back(TailRecord {
                    start,
                    end: head,
                    batch,
                });
            }
            // A record only on disk breaks the chain: readers must not skip it.
            None => st.tail.clear(),
        }
        if let Some(m) = st.segments.get_mut(&head.segment) {
            m.bytes = head.offset;
        }
        st.dirty = true;
        if self.shared.config.fsync_interval.as_std().is_zero() {
            st.file.sync_data().map_err(io_err(&path, "cannot fsync"))?;
            st.dirty = false;
        }
        let rotate = st.head.offset >= self.shared.config.segment_size
            || st
                .head_created
                .elapsed()
                .is_ok_and(|age| age > self.shared.config.max_age.as_std() / 8);
        if rotate {
            self.rotate(&mut st)?;
        }
        self.enforce_bounds(&mut st);
        self.shared.head_tx.send_replace(st.head);
        self.publish_size(&st);
        Ok(())
    }

    fn rotate(&self, st: &mut State) -> Result<(), WalError> {
        let old = segment::path(&self.shared.dir, st.head.segment);
        st.file.sync_all().map_err(io_err(&old, "cannot fsync"))?;
        let next = st.head.segment + 1;
        st.file = create_segment(&self.shared.dir, next)?;
        let now = SystemTime::now();
        st.segments.insert(
            next,
            SegmentMeta {
                bytes: 0,
                created: now,
            },
        );
        st.head = Position {
            segment: next,
            offset: 0,
        };
        st.head_created = now;
        st.dirty = false;
        debug!(segment = next, "WAL segment rotated");
        Ok(())
    }

    /// fsyncs the current segment if it holds unsynced data.
    pub fn sync(&self) -> Result<(), WalError> {
        let mut st = self.lock();
        if st.dirty {
            let path = segment::path(&self.shared.dir, st.head.segment);
            st.file.sync_data().map_err(io_err(&path, "cannot fsync"))?;
            st.dirty = false;
        }
        // Age applies even when nothing is appended.
        self.enforce_bounds(&mut st);
        self.publish_size(&st);
        Ok(())
    }

    /// The end of the last complete record, and a receiver that sees it move.
    pub fn head(&self) -> watch::Receiver<Position> {
        self.shared.head_tx.subscribe()
    }

    /// Registers queue `name` and returns where it resumes: its stored cursor, or the current
    /// head for a queue never seen before (the cursor is stored right away, so a crash before
    /// its first commit replays from here).
    pub fn register(&self, name: &str) -> Result<Position, WalError> {
        let file = cursor::path(&self.shared.cursor_dir, name);
        let stored = match cursor::load(&file) {
            Ok(p) => p,
            Err(e) => {
                warn!(queue = name, error = %e, "unreadable WAL cursor; resuming from the oldest segment");
                registry()
                    .counter(
                        "nodemeter_remote_storage_wal_corruptions_total",
                        "Corrupt WAL records or cursor files found.",
                        &[],
                    )
                    .inc();
                Some(Position::default())
            }
        };
        let mut st = self.lock();
        let pos = match stored {
            Some(p) => p,
            None => {
                cursor::store(&file, st.head).map_err(io_err(&file, "cannot write cursor"))?;
                info!(queue = name, "new queue starts at the WAL head");
                st.head
            }
        };
        st.cursors.insert(name.to_string(), pos);
        Ok(pos)
    }

    /// Stores queue `name`'s cursor durably, then deletes segments every queue has passed.
    pub fn commit(&self, name: &str, pos: Position) -> Result<(), WalError> {
        let file = cursor::path(&self.shared.cursor_dir, name);
        {
            let st = self.lock();
            if st.cursors.get(name) == Some(&pos) {
                return Ok(());
            }
        }
        cursor::store(&file, pos).map_err(io_err(&file, "cannot write cursor"))?;
        let mut st = self.lock();
        st.cursors.insert(name.to_string(), pos);
        let Some(min) = st.cursors.values().map(|p| p.segment).min() else {
            return Ok(());
        };
        let done: Vec<u64> = st.segments.range(..min).map(|(i, _)| *i).collect();
        for index in done {
            self.delete_segment(&mut st, index);
        }
        self.publish_size(&st);
        Ok(())
    }

    fn delete_segment(&self, st: &mut State, index: u64) {
        let p = segment::path(&self.shared.dir, index);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => warn!(path = %p.display(), error = %e, "cannot delete WAL segment"),
        }
        st.segments.remove(&index);
        // What the bounds deleted is gone for readers in memory too.
        while st.tail.front().is_some_and(|r| r.start.segment <= index) {
            st.tail.pop_front();
        }
    }

    /// The records in memory from `pos` on, up to about `max_samples` samples; empty when the
    /// record at `pos` is no longer (or was never) in memory.
    fn read_tail(&self, pos: Position, max_samples: usize) -> (Vec<ReadRecord>, Position) {
        let st = self.lock();
        let mut out = Vec::new();
        let mut pos = pos;
        let mut samples = 0;
        // The record at `pos`, or the first of the next segment when `pos` ends a segment.
        let Some(first) = st
            .tail
            .iter()
            .enumerate()
            .position(|(i, r)| r.start == pos || (i > 0 && st.tail[i - 1].end == pos))
        else {
            return (out, pos);
        };
        for r in st.tail.range(first..) {
            if samples >= max_samples {
                break;
            }
            samples += r.batch.samples.len();
            pos = r.end;
            out.push(ReadRecord {
                batch: Arc::clone(&r.batch),
                end: r.end,
            });
        }
        (out, pos)
    }

    /// Applies the size and age bounds: deletes the oldest closed segments, counting and
    /// logging what each queue had not sent yet.
    fn enforce_bounds(&self, st: &mut State) {
        let cfg = &self.shared.config;
        loop {
            let Some((&oldest, meta)) = st.segments.iter().next() else {
                return;
            };
            if oldest == st.head.segment {
                return;
            }
            let total: u64 = st.segments.values().map(|m| m.bytes).sum();
            let reason = if total > cfg.max_size {
                "wal_size_limit"
            } else if meta
                .created
                .elapsed()
                .is_ok_and(|age| age > cfg.max_age.as_std())
            {
                "wal_age_limit"
            } else {
                return;
            };
            for (queue, pos) in &st.cursors {
                if pos.segment > oldest {
                    continue;
                }
                let from = if pos.segment == oldest { pos.offset } else { 0 };
                let lost = segment::count_samples(&self.shared.dir, oldest, from).unwrap_or(0);
                if lost > 0 {
                    warn!(queue = %queue, segment = oldest, samples = lost, reason, "WAL bound reached: deleting the oldest segment before this queue sent it");
                    registry()
                        .counter(
                            "nodemeter_remote_storage_samples_dropped_total",
                            "Samples dropped instead of sent, by queue and reason.",
                            &[("remote_name", queue), ("reason", reason)],
                        )
                        .add(lost);
                }
            }
            self.delete_segment(st, oldest);
        }
    }

    fn publish_size(&self, st: &State) {
        let r = registry();
        r.gauge(
            "nodemeter_remote_storage_wal_size_bytes",
            "Bytes in the remote-write WAL's segments.",
            &[],
        )
        .set(st.segments.values().map(|m| m.bytes).sum::<u64>() as f64);
        r.gauge(
            "nodemeter_remote_storage_wal_segments",
            "Segment files in the remote-write WAL.",
            &[],
        )
        .set(st.segments.len() as f64);
    }

    /// Bytes between `pos` and the head (what a queue has yet to read).
    pub fn bytes_after(&self, pos: Position) -> u64 {
        let st = self.lock();
        st.segments
            .range(pos.segment..)
            .map(|(i, m)| {
                if *i == pos.segment {
                    m.bytes.saturating_sub(pos.offset)
                } else {
                    m.bytes
                }
            })
            .sum()
    }

    /// A reader starting at `pos`.
    pub fn reader(&self, queue: &str, pos: Position) -> WalReader {
        WalReader {
            wal: self.clone(),
            queue: queue.to_string(),
            pos,
            head: self.head(),
        }
    }

    /// The oldest segment index after `index` that still exists.
    fn next_segment_after(&self, index: u64) -> Option<u64> {
        let st = self.lock();
        st.segments.range(index + 1..).next().map(|(i, _)| *i)
    }

    fn oldest_segment(&self) -> Option<u64> {
        self.lock().segments.keys().next().copied()
    }
}

fn create_segment(dir: &Path, index: u64) -> Result<File, WalError> {
    let p = segment::path(dir, index);
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p)
        .map_err(io_err(&p, "cannot create segment"))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir, "cannot fsync"))?;
    Ok(f)
}

/// One record read back: its contents and the position right after it.
pub struct ReadRecord {
    pub batch: Arc<Batch>,
    pub end: Position,
}

/// A queue's reader: follows the log from its position, waiting at the head for more.
pub struct WalReader {
    wal: Wal,
    queue: String,
    pos: Position,
    head: watch::Receiver<Position>,
}

impl WalReader {
    pub fn position(&self) -> Position {
        self.pos
    }

    /// Whether everything appended so far has been read.
    pub fn at_head(&self) -> bool {
        self.pos >= *self.head.borrow()
    }

    /// Waits until there is something after the position (returns at once if there is).
    pub async fn wait(&mut self) {
        while self.at_head() {
            if self.head.changed().await.is_err() {
                return;
            }
        }
    }

    /// Reads records up to about `max_samples` samples (at least one record when any is
    /// there), without waiting.
    pub async fn read(&mut self, max_samples: usize) -> Vec<ReadRecord> {
        let (records, pos) = self.wal.read_tail(self.pos, max_samples);
        if !records.is_empty() {
            self.pos = pos;
            return records;
        }
        let head = *self.head.borrow();
        let wal = self.wal.clone();
        let queue = self.queue.clone();
        let pos = self.pos;
        let res = tokio::task::spawn_blocking(move || {
            read_blocking(&wal, &queue, pos, head, max_samples)
        })
        .await;
        match res {
            Ok((records, pos)) => {
                self.pos = pos;
                records
            }
            Err(e) => {
                warn!(queue = %self.queue, error = %e, "WAL read task failed");
                Vec::new()
            }
        }
    }
}

fn corruption(queue: &str, segment: u64, why: &str) {
    warn!(
        queue,
        segment,
        reason = why,
        "WAL segment damaged: skipping the rest of it"
    );
    registry()
        .counter(
            "nodemeter_remote_storage_wal_corruptions_total",
            "Corrupt WAL records or cursor files found.",
            &[],
        )
        .inc();
}

fn read_blocking(
    wal: &Wal,
    queue: &str,
    mut pos: Position,
    head: Position,
    max_samples: usize,
) -> (Vec<ReadRecord>, Position) {
    let dir = wal.dir().to_path_buf();
    let mut out = Vec::new();
    let mut samples = 0usize;
    'segments: while pos < head && samples < max_samples {
        let mut r = match segment::SegmentReader::open(&dir, pos.segment, pos.offset) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Deleted under us by the bounds (already counted there), or never existed.
                let next = wal
                    .next_segment_after(pos.segment)
                    .or_else(|| wal.oldest_segment())
                    .filter(|n| *n > pos.segment);
                match next {
                    Some(n) => {
                        debug!(
                            queue,
                            from = pos.segment,
                            to = n,
                            "WAL segment gone; moving on"
                        );
                        pos = Position {
                            segment: n,
                            offset: 0,
                        };
                        continue;
                    }
                    None => break,
                }
            }
            Err(e) => {
                warn!(queue, segment = pos.segment, error = %e, "cannot open WAL segment");
                break;
            }
        };
        let limit = if pos.segment == head.segment {
            head.offset
        } else {
            u64::MAX
        };
        loop {
            if samples >= max_samples {
                break 'segments;
            }
            match r.next(limit) {
                Ok(segment::Next::Record(count, payload)) => match record::decode(&payload) {
                    Ok(decoded) => {
                        samples += count as usize;
                        pos.offset = r.offset;
                        out.push(ReadRecord {
                            batch: Arc::new(decoded.into_batch()),
                            end: pos,
                        });
                    }
                    Err(e) => {
                        pos.offset = r.offset;
                        corruption(queue, pos.segment, &e.to_string());
                    }
                },
                Ok(segment::Next::End) => {
                    if pos.segment == head.segment {
                        break 'segments;
                    }
                    pos = next_position(wal, pos);
                    continue 'segments;
                }
                Ok(segment::Next::Bad(why)) => {
                    if pos.segment == head.segment {
                        // Cannot happen for data below the head; stop rather than skip.
                        warn!(queue, segment = pos.segment, reason = %why, "unreadable record below the WAL head");
                        break 'segments;
                    }
                    // A short record ends an older segment after a crash mid-write (a torn
                    // tail); a checksum mismatch is corruption.
                    if why.starts_with("short") {
                        info!(queue, segment = pos.segment, reason = %why, "torn record at the end of a WAL segment (crash mid-write)");
                    } else {
                        corruption(queue, pos.segment, &why);
                    }
                    pos = next_position(wal, pos);
                    continue 'segments;
                }
                Err(e) => {
                    warn!(queue, segment = pos.segment, error = %e, "WAL read error");
                    break 'segments;
                }
            }
        }
    }
    (out, pos)
}

fn next_position(wal: &Wal, pos: Position) -> Position {
    Position {
        segment: wal
            .next_segment_after(pos.segment)
            .unwrap_or(pos.segment + 1),
        offset: 0,
    }
}

/// Samples a queue reads from the WAL per step.
pub const READ_BATCH_SAMPLES: usize = 20_000;

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests;
