//! Cgroup creations and removals as the kernel reports them (`cgroup:cgroup_mkdir`,
//! `cgroup_rmdir`), delivered on a channel: the hook through which the container inventory
//! can discover containers as they appear instead of at its next rescan. The inventory keeps
//! its periodic rescan as the safety net: a full ring buffer drops events (the kernel side
//! cannot block), and paths longer than [`CGROUP_PATH_MAX`] bytes arrive cut.

use std::os::fd::AsRawFd;

use aya::maps::{MapData, RingBuf};
use nodemeter_ebpf_common::{CGROUP_PATH_MAX, CgroupEvent as RawEvent, cgroup_event};
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;

/// What happened to the cgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupChange {
    Created,
    Removed,
}

/// One cgroup created or removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupEvent {
    pub change: CgroupChange,
    /// The cgroup id; on cgroup v2 the id the probes key their maps by.
    pub id: u64,
    /// The hierarchy: 0 for cgroup v2, the v1 hierarchy's id otherwise.
    pub hierarchy: u32,
    /// Path relative to the hierarchy's root, starting with `/`.
    pub path: String,
}

impl CgroupEvent {
    /// Decodes one ring buffer record; `None` for a record of another size or kind.
    fn parse(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < size_of::<RawEvent>() {
            return None;
        }
        // SAFETY: the length was checked; `RawEvent` is plain old data, read unaligned.
        let raw: RawEvent = unsafe { bytes.as_ptr().cast::<RawEvent>().read_unaligned() };
        let change = match raw.kind {
            cgroup_event::MKDIR => CgroupChange::Created,
            cgroup_event::RMDIR => CgroupChange::Removed,
            _ => return None,
        };
        let used = (raw.path_len as usize).min(CGROUP_PATH_MAX);
        let path = raw.path.get(..used).unwrap_or_default();
        let path = path.split(|b| *b == 0).next().unwrap_or_default();
        Some(Self {
            change,
            id: raw.id,
            hierarchy: raw.hierarchy,
            path: String::from_utf8_lossy(path).into_owned(),
        })
    }
}

/// Forwards the ring buffer's events to a channel of `capacity` from a task of the current
/// tokio runtime, which ends when the receiver is dropped. When the channel is full the task
/// waits (the kernel side then drops events once its buffer fills).
pub fn spawn(ring: RingBuf<MapData>, capacity: usize) -> mpsc::Receiver<CgroupEvent> {
    let (tx, rx) = mpsc::channel(capacity);
    tokio::spawn(async move {
        if let Err(e) = forward(ring, &tx).await {
            tracing::warn!(error = %e, "cgroup events stopped; the inventory's rescan still finds cgroups");
        }
    });
    rx
}

async fn forward(ring: RingBuf<MapData>, tx: &mpsc::Sender<CgroupEvent>) -> std::io::Result<()> {
    debug_assert!(ring.as_raw_fd() >= 0);
    // SAFETY: the ring buffer owns its map fd, which stays open and the same for as long as
    // the `RingBuf` lives, and the `AsyncFd` owns the `RingBuf`.
    let mut ring = unsafe { AsyncFd::register(ring) }.map_err(std::io::Error::from)?;
    loop {
        let mut guard = tokio::select! {
            () = tx.closed() => return Ok(()),
            guard = ring.readable_mut() => guard?,
        };
        let mut batch = Vec::new();
        while let Some(item) = guard.get_inner_mut().next() {
            if let Some(event) = CgroupEvent::parse(&item) {
                batch.push(event);
            }
        }
        guard.clear_ready();
        for event in batch {
            if tx.send(event).await.is_err() {
                return Ok(());
            }
        }
    }
}
