//! Keeps one loop per target: every discovery provider (static and file SD, Kubernetes
//! monitors) publishes its current groups on a `watch` channel; on any change the manager
//! rebuilds the target set and starts and stops loops to match.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::job::Job;
use super::scrape_loop::{self, LoopContext};
use super::target::{self, ScrapeGroup, Target, TargetError};
use crate::model::{Labels, SourceId};
use crate::pipeline::BatchSender;
use crate::telemetry;

/// A provider's current groups. The provider replaces the whole list on every change.
pub type GroupsReceiver = watch::Receiver<Vec<ScrapeGroup>>;

/// A job compared and hashed by identity: jobs are rebuilt, never mutated, when settings change.
#[derive(Clone)]
struct JobKey(Arc<Job>);

impl PartialEq for JobKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for JobKey {}

impl std::hash::Hash for JobKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::ptr::hash(Arc::as_ptr(&self.0), state);
    }
}

type Built = Result<Option<Arc<Target>>, TargetError>;

struct Running {
    target: Arc<Target>,
    stop: CancellationToken,
    suppress: CancellationToken,
}

/// Starts and stops per-target loops as discovery changes.
pub struct ScrapeManager {
    providers: Vec<GroupsReceiver>,
    out: BatchSender,
    source: SourceId,
    seed: u64,
    running: HashMap<(String, Labels), Running>,
    /// Loops that were stopped and may still write end-of-target markers.
    ending: HashMap<(String, Labels), (CancellationToken, Instant)>,
    job_targets: HashMap<String, Arc<AtomicUsize>>,
    /// What each discovered label set of each job became at the last sync. Relabeling is
    /// most of a sync's cost and one discovery event changes few candidates, so only new
    /// ones are relabeled.
    built: HashMap<(JobKey, Labels), Built>,
    tasks: JoinSet<()>,
}

impl ScrapeManager {
    /// `seed` mixes into every target's phase (Prometheus: host name and external labels), so
    /// that two agents scraping the same target do not hit it in the same instant.
    pub fn new(out: BatchSender, source: SourceId, seed: u64) -> Self {
        Self {
            providers: Vec::new(),
            out,
            source,
            seed,
            running: HashMap::new(),
            ending: HashMap::new(),
            job_targets: HashMap::new(),
            built: HashMap::new(),
            tasks: JoinSet::new(),
        }
    }

    /// Adds a discovery provider.
    pub fn add_provider(&mut self, groups: GroupsReceiver) {
        self.providers.push(groups);
    }

    /// Runs until `shutdown`; loops stop with it (no end-of-target markers on shutdown).
    pub async fn run(mut self, shutdown: CancellationToken) {
        let (notify_tx, mut notify_rx) = mpsc::channel::<()>(1);
        let mut forwarders = JoinSet::new();
        for mut rx in self.providers.clone() {
            let tx = notify_tx.clone();
            forwarders.spawn(async move {
                while rx.changed().await.is_ok() {
                    // A full channel already holds a pending resync.
                    let _ = tx.try_send(());
                }
            });
        }
        drop(notify_tx);
        self.sync(&shutdown);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                msg = notify_rx.recv() => match msg {
                    Some(()) => self.sync(&shutdown),
                    // Every provider is gone: keep the last targets until shutdown.
                    None => { shutdown.cancelled().await; break; }
                },
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
            }
        }
        forwarders.abort_all();
        while self.tasks.join_next().await.is_some() {}
        info!("scrape manager stopped");
    }

    /// Targets currently scraped.
    pub fn active(&self) -> usize {
        self.running.len()
    }

    #[allow(
        clippy::mutable_key_type,
        reason = "JobKey hashes and compares the job's address, which its interior mutability cannot change"
    )]
    fn sync(&mut self, shutdown: &CancellationToken) {
        let groups: Vec<ScrapeGroup> = self
            .providers
            .iter()
            .flat_map(|rx| rx.borrow().clone())
            .collect();
        let mut desired: HashMap<(String, Labels), Arc<Target>> = HashMap::new();
        let mut per_job: HashMap<String, usize> = HashMap::new();
        let mut dropped = 0usize;
        let mut built: HashMap<(JobKey, Labels), Built> = HashMap::with_capacity(self.built.len());
        for group in &groups {
            for discovered in &group.targets {
                let key = (JobKey(Arc::clone(&group.job)), discovered.clone());
                let result = match self.built.remove(&key) {
                    Some(r) => r,
                    None => match built.get(&key) {
                        Some(r) => r.clone(),
                        None => target::build(&group.job, discovered).map(|t| t.map(Arc::new)),
                    },
                };
                built.insert(key, result.clone());
                match result {
                    Ok(Some(t)) => {
                        let key = (group.job.name.clone(), t.labels.clone());
                        // Identical label sets within a job are one target.
                        if let std::collections::hash_map::Entry::Vacant(slot) = desired.entry(key)
                        {
                            *per_job.entry(group.job.name.clone()).or_default() += 1;
                            slot.insert(t);
                        }
                    }
                    Ok(None) => dropped += 1,
                    Err(e) => warn!(job = %group.job.name, error = %e, "target discarded"),
                }
            }
        }
        self.built = built;
        for (job, n) in &per_job {
            self.job_targets
                .entry(job.clone())
                .or_default()
                .store(*n, Ordering::Relaxed);
        }
        for (job, counter) in &self.job_targets {
            if !per_job.contains_key(job) {
                counter.store(0, Ordering::Relaxed);
            }
        }
        // Stop loops whose target is gone or whose job settings changed.
        let gone: Vec<(String, Labels)> = self
            .running
            .iter()
            .filter(|(k, r)| {
                desired
                    .get(*k)
                    .is_none_or(|t| !Arc::ptr_eq(&t.job, &r.target.job))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            if let Some(r) = self.running.remove(&key) {
                r.stop.cancel();
                if desired.contains_key(&key) {
                    // Restarted with new settings: its series continue.
                    r.suppress.cancel();
                } else {
                    // The loop writes its markers within ~2.1 intervals; after 3 it is done.
                    let done = Instant::now() + r.target.interval.mul_f64(3.0);
                    self.ending.insert(key, (r.suppress, done));
                }
            }
        }
        let mut started = 0;
        for (key, target) in desired {
            if self.running.contains_key(&key) {
                continue;
            }
            if let Some((suppress, _)) = self.ending.remove(&key) {
                suppress.cancel();
            }
            let stop = CancellationToken::new();
            let suppress = CancellationToken::new();
            let counter = Arc::clone(self.job_targets.entry(key.0.clone()).or_default());
            let ctx = LoopContext {
                out: self.out.clone(),
                source: self.source.clone(),
                shutdown: shutdown.clone(),
                stop: stop.clone(),
                suppress: suppress.clone(),
                job_targets: counter,
                seed: self.seed,
            };
            self.tasks.spawn(scrape_loop::run(Arc::clone(&target), ctx));
            self.running.insert(
                key,
                Running {
                    target,
                    stop,
                    suppress,
                },
            );
            started += 1;
        }
        // Ending loops finish on their own; forget the tokens of those that are done.
        let now = Instant::now();
        self.ending.retain(|_, (_, done)| *done > now);
        telemetry::registry()
            .gauge("nodemeter_scrape_targets", "Targets being scraped.", &[])
            .set(self.running.len() as f64);
        debug!(
            active = self.running.len(),
            started, dropped, "scrape targets synchronised"
        );
    }
}
