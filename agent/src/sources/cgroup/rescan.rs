//! When the container inventory walks cgroupfs again.
//!
//! Without a feed of cgroup creations and removals the walk runs every cycle, which is what
//! keeps "a new cgroup shows up within one interval". With the kernel's `cgroup_mkdir` /
//! `cgroup_rmdir` events the walk runs when something changed (at once, so the eBPF source
//! can name a container's cgroup id before the next cycle) and otherwise only every
//! `rescan_interval`, the safety net for events the kernel dropped from a full ring buffer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::sources::ebpf::cgroup_events::CgroupEvent;

/// Cgroup events that may wait for the inventory; past it the ring buffer drops and the
/// safety-net walk finds what was missed.
pub const CGROUP_EVENT_BACKLOG: usize = 1024;

/// Shared between the event feed (which marks changes) and the collector (which walks).
#[derive(Clone, Default)]
pub struct RescanTrigger {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// A creation or removal arrived since the last walk.
    changed: AtomicBool,
    /// An event feed is attached; until then (or after it ends) every cycle walks.
    live: AtomicBool,
    wake: Notify,
}

impl RescanTrigger {
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks that an event feed now reports every cgroup change (or, with `false`, that it
    /// stopped and walks must run every cycle again).
    pub fn set_live(&self, live: bool) {
        self.inner.live.store(live, Ordering::Release);
        self.inner.changed.store(true, Ordering::Release);
        self.inner.wake.notify_one();
    }

    /// A cgroup below the tracked root was created or removed.
    pub fn cgroup_changed(&self) {
        self.inner.changed.store(true, Ordering::Release);
        self.inner.wake.notify_one();
    }

    /// Resolves after the next [`cgroup_changed`](Self::cgroup_changed).
    pub async fn changed(&self) {
        self.inner.wake.notified().await;
    }

    /// Turns the kernel's cgroup creations and removals below `root` into walks, until
    /// `shutdown`; when the feed ends first, walks go back to every cycle.
    pub async fn follow(
        self,
        mut events: mpsc::Receiver<CgroupEvent>,
        root: String,
        shutdown: CancellationToken,
    ) {
        let root = root.trim_end_matches('/');
        self.set_live(true);
        info!("container inventory follows cgroup events");
        loop {
            let event = tokio::select! {
                () = shutdown.cancelled() => return,
                event = events.recv() => event,
            };
            let Some(event) = event else { break };
            let below_root = event
                .path
                .strip_prefix(root)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
            debug!(path = %event.path, change = ?event.change, below_root, "cgroup event");
            if below_root {
                self.cgroup_changed();
            }
        }
        self.set_live(false);
        warn!("cgroup event feed ended; the container inventory walks cgroupfs every cycle");
    }

    /// Whether a walk is needed now, given when the last one ran; clears the change mark.
    pub fn take_due(&self, last_walk: Option<Instant>, now: Instant, safety: Duration) -> bool {
        let changed = self.inner.changed.swap(false, Ordering::AcqRel);
        if !self.inner.live.load(Ordering::Acquire) {
            return true;
        }
        changed || last_walk.is_none_or(|at| now.duration_since(at) >= safety)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAFETY: Duration = Duration::from_secs(60);

    #[test]
    fn without_an_event_feed_every_cycle_walks() {
        let t = RescanTrigger::new();
        let now = Instant::now();
        assert!(t.take_due(Some(now), now, SAFETY));
        assert!(t.take_due(Some(now), now, SAFETY));
    }

    #[test]
    fn with_a_live_feed_only_changes_and_the_safety_interval_walk() {
        let t = RescanTrigger::new();
        t.set_live(true);
        let start = Instant::now();
        // Going live counts as a change: whatever happened before the feed is picked up.
        assert!(t.take_due(Some(start), start, SAFETY));
        assert!(!t.take_due(Some(start), start + Duration::from_secs(10), SAFETY));
        t.cgroup_changed();
        assert!(t.take_due(Some(start), start + Duration::from_secs(11), SAFETY));
        assert!(!t.take_due(Some(start), start + Duration::from_secs(12), SAFETY));
        assert!(t.take_due(Some(start), start + SAFETY, SAFETY));
    }

    #[test]
    fn a_feed_that_ends_falls_back_to_walking_every_cycle() {
        let t = RescanTrigger::new();
        t.set_live(true);
        let now = Instant::now();
        assert!(t.take_due(None, now, SAFETY));
        t.set_live(false);
        assert!(t.take_due(Some(now), now, SAFETY));
        assert!(t.take_due(Some(now), now, SAFETY));
    }
}
