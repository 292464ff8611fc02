//! One endpoint's queue: reads the WAL from its cursor, turns each series into the labels this
//! endpoint gets (external labels, then write relabelling), spreads samples over shards by
//! series, commits the cursor as records finish, and adjusts the number of shards to the
//! throughput.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior, interval};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::client::{Client, Outcome};
use super::config::{ProtobufMessage, RemoteWriteConfig};
use super::encode::{self, MetadataIndex};
use super::metrics::QueueMetrics;
use super::shard::{self, Chunk, ShardHandle};
use super::tracker::Tracker;
use super::wal::{READ_BATCH_SAMPLES, ReadRecord, Wal, WalReader};
use crate::model::{IdentityBuildHasher, Labels, Sample, intern};
use crate::relabel::Rules;

/// How often shards are reconsidered (Prometheus: 10 s).
const RESHARD_PERIOD: Duration = Duration::from_secs(10);
/// How often the cursor is committed.
const COMMIT_PERIOD: Duration = Duration::from_secs(1);
/// The series cache is rebuilt this often so that series that went away do not pile up.
const SERIES_CACHE_TTL: Duration = Duration::from_secs(600);

/// What a queue's shards share.
pub struct QueueShared {
    pub config: Arc<RemoteWriteConfig>,
    pub client: Client,
    pub metrics: QueueMetrics,
    pub tracker: Tracker,
    pub metadata: RwLock<MetadataIndex>,
    /// Cancelled when the queue must stop now, sent or not.
    pub hard_stop: CancellationToken,
    /// Shards currently waiting out a backoff (resharding waits for them).
    pub retrying: AtomicUsize,
    v2: AtomicBool,
    sent_samples: AtomicU64,
    send_nanos: AtomicU64,
    highest_sent_ms: AtomicI64,
}

impl QueueShared {
    pub fn message(&self) -> ProtobufMessage {
        if self.v2.load(Ordering::Relaxed) {
            ProtobufMessage::V2
        } else {
            ProtobufMessage::V1
        }
    }

    /// This receiver only speaks 1.0: stay on 1.0 for the life of the process.
    pub fn downgrade(&self) {
        self.v2.store(false, Ordering::Relaxed);
    }

    pub fn record_send_time(&self, d: Duration, samples: usize) {
        self.send_nanos
            .fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
        self.sent_samples
            .fetch_add(samples as u64, Ordering::Relaxed);
    }

    pub fn note_sent(&self, newest_ms: i64) {
        let prev = self.highest_sent_ms.fetch_max(newest_ms, Ordering::Relaxed);
        let v = prev.max(newest_ms);
        self.metrics.highest_sent_seconds.set(v as f64 / 1000.0);
    }
}

/// Series labels as this endpoint sends them, and the shard hash, by source labels.
type SeriesCache = HashMap<Labels, Option<(Labels, u64)>, IdentityBuildHasher>;

pub struct Queue {
    shared: Arc<QueueShared>,
    wal: Wal,
    reader: WalReader,
    external: Vec<(String, String)>,
    relabel: Rules,
    cache: SeriesCache,
    cache_built: Instant,
    shards: Vec<ShardHandle>,
    pending: Vec<Chunk>,
    highest_read_ms: i64,
    rates: Rates,
}

impl Queue {
    /// A queue for `config` reading `wal` from the cursor stored under its name.
    pub fn new(
        config: Arc<RemoteWriteConfig>,
        wal: Wal,
        external_labels: &std::collections::BTreeMap<String, String>,
        hard_stop: CancellationToken,
    ) -> Result<Self, super::RemoteWriteError> {
        let name = config.queue_name();
        let client = Client::new(Arc::clone(&config))?;
        let relabel = Rules::compile(&config.write_relabel_configs).map_err(|e| {
            super::RemoteWriteError::Relabel {
                queue: name.clone(),
                source: e,
            }
        })?;
        let start = wal.register(&name)?;
        let reader = wal.reader(&name, start);
        let metrics = QueueMetrics::new(&name, client.url().as_str());
        let shared = Arc::new(QueueShared {
            v2: AtomicBool::new(config.protobuf_message == ProtobufMessage::V2),
            config,
            client,
            metrics,
            tracker: Tracker::new(start),
            metadata: RwLock::new(MetadataIndex::default()),
            hard_stop,
            retrying: AtomicUsize::new(0),
            sent_samples: AtomicU64::new(0),
            send_nanos: AtomicU64::new(0),
            highest_sent_ms: AtomicI64::new(0),
        });
        info!(queue = %name, url = %shared.metrics.url(), message = shared.message().as_str(), resume = ?start, "remote-write queue ready");
        Ok(Self {
            shared,
            wal,
            reader,
            external: external_labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            relabel,
            cache: SeriesCache::default(),
            cache_built: Instant::now(),
            shards: Vec::new(),
            pending: Vec::new(),
            highest_read_ms: 0,
            rates: Rates::default(),
        })
    }

    pub fn name(&self) -> &str {
        &self.shared.metrics.name
    }

    fn start_shards(&mut self, n: usize) {
        let max = self.shared.config.queue_config.max_samples_per_send;
        self.shards = (0..n)
            .map(|i| shard::spawn(Arc::clone(&self.shared), i))
            .collect();
        self.pending = (0..n).map(|_| Chunk::with_capacity(max)).collect();
        self.shared.metrics.shards.set(n as f64);
    }

    /// Stops the shards after they sent what they hold (or the hard stop).
    async fn stop_shards(&mut self) {
        let _ = self.flush_pending().await;
        for s in std::mem::take(&mut self.shards) {
            drop(s.tx);
            let _ = s.join.await;
        }
    }

    /// Runs until `drain` is cancelled and everything in the WAL at that point is sent, or the
    /// hard stop. The cursor is committed on the way out.
    pub async fn run(mut self, drain: CancellationToken) {
        self.start_shards(self.shared.config.queue_config.min_shards);
        let mut commit = interval(COMMIT_PERIOD);
        let mut reshard = interval(RESHARD_PERIOD);
        reshard.reset();
        let meta_cfg = &self.shared.config.metadata_config;
        let send_metadata = meta_cfg.send && self.shared.message() == ProtobufMessage::V1;
        let mut metadata = interval(meta_cfg.send_interval.as_std());
        metadata.reset();
        for t in [&mut commit, &mut reshard, &mut metadata] {
            t.set_missed_tick_behavior(MissedTickBehavior::Delay);
        }
        let mut draining = false;
        loop {
            if self.shared.hard_stop.is_cancelled() {
                break;
            }
            if draining && self.reader.at_head() {
                break;
            }
            tokio::select! {
                biased;
                _ = self.shared.hard_stop.cancelled() => break,
                _ = drain.cancelled(), if !draining => {
                    debug!(queue = %self.name(), "draining: sending what the WAL holds");
                    draining = true;
                }
                _ = commit.tick() => self.commit(),
                _ = reshard.tick() => self.maybe_reshard().await,
                _ = metadata.tick(), if send_metadata => self.send_metadata(),
                _ = self.reader.wait() => {
                    let records = self.reader.read(READ_BATCH_SAMPLES).await;
                    if !self.dispatch(records).await {
                        break;
                    }
                }
            }
        }
        self.stop_shards().await;
        self.commit();
        info!(queue = %self.name(), cursor = ?self.shared.tracker.committed(), "remote-write queue stopped");
    }

    fn commit(&self) {
        let pos = self.shared.tracker.committed();
        if let Err(e) = self.wal.commit(self.name(), pos) {
            error!(queue = %self.name(), error = %e, "cannot store the WAL cursor");
        }
        self.shared
            .metrics
            .wal_unread_bytes
            .set(self.wal.bytes_after(self.reader.position()) as f64);
    }

    /// The labels this endpoint gets for a series, and its shard hash; `None` when write
    /// relabelling drops it.
    fn series(&mut self, labels: &Labels) -> Option<(Labels, u64)> {
        if let Some(v) = self.cache.get(labels) {
            return v.clone();
        }
        let mut b = labels.builder();
        for (k, v) in &self.external {
            // A series' own label wins over an external label of the same name.
            if labels.get(k).is_none() {
                b.set_symbols(intern(k), intern(v));
            }
        }
        // Prometheus's order: external labels first, then write relabelling.
        let v = if self.relabel.apply(&mut b) {
            let out = b.build();
            // Only needs to be stable for the life of the process: a series stays on one shard.
            let hash = out.identity_hash();
            Some((out, hash))
        } else {
            None
        };
        self.cache.insert(labels.clone(), v.clone());
        v
    }

    /// Hands the samples of `records` to shards. Returns false on the hard stop.
    async fn dispatch(&mut self, records: Vec<ReadRecord>) -> bool {
        if self.cache_built.elapsed() > SERIES_CACHE_TTL {
            self.cache.clear();
            self.cache_built = Instant::now();
        }
        let age_limit = self.shared.config.queue_config.sample_age_limit.as_std();
        let max = self.shared.config.queue_config.max_samples_per_send;
        let m = self.shared.metrics.clone();
        for rec in records {
            if !rec.batch.metadata.is_empty() {
                self.shared
                    .metadata
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .update(&rec.batch.metadata);
            }
            let seq = self.shared.tracker.begin(rec.end);
            let oldest = if age_limit.is_zero() {
                i64::MIN
            } else {
                shard::now_ms() - age_limit.as_millis() as i64
            };
            let mut count = 0usize;
            let mut too_old = 0u64;
            let mut dropped = 0u64;
            m.samples_in.add(rec.batch.samples.len() as u64);
            for s in &rec.batch.samples {
                self.highest_read_ms = self.highest_read_ms.max(s.timestamp_ms);
                if s.timestamp_ms < oldest {
                    too_old += 1;
                    continue;
                }
                let Some((labels, hash)) = self.series(&s.labels) else {
                    dropped += 1;
                    continue;
                };
                let i = (hash % self.shards.len() as u64) as usize;
                self.pending[i].push(
                    Sample {
                        labels,
                        timestamp_ms: s.timestamp_ms,
                        value: s.value,
                    },
                    seq,
                );
                count += 1;
                if self.pending[i].len() >= max {
                    let chunk = std::mem::replace(&mut self.pending[i], Chunk::with_capacity(max));
                    if !self.hand_to_shard(i, chunk).await {
                        return false;
                    }
                }
            }
            if too_old > 0 {
                m.dropped("too_old").add(too_old);
            }
            if dropped > 0 {
                m.dropped("dropped_series").add(dropped);
            }
            self.shared.tracker.seal(seq, count);
        }
        m.highest_read_seconds
            .set(self.highest_read_ms as f64 / 1000.0);
        let sent = self.shared.highest_sent_ms.load(Ordering::Relaxed);
        m.lag_seconds
            .set((self.highest_read_ms - sent).max(0) as f64 / 1000.0);
        self.flush_pending().await
    }

    async fn flush_pending(&mut self) -> bool {
        let max = self.shared.config.queue_config.max_samples_per_send;
        for i in 0..self.pending.len() {
            if self.pending[i].is_empty() {
                continue;
            }
            let chunk = std::mem::replace(&mut self.pending[i], Chunk::with_capacity(max));
            if !self.hand_to_shard(i, chunk).await {
                return false;
            }
        }
        true
    }

    async fn hand_to_shard(&self, i: usize, chunk: Chunk) -> bool {
        tokio::select! {
            r = self.shards[i].tx.send(chunk) => {
                if r.is_err() {
                    // The shard ended on the hard stop.
                    return false;
                }
                true
            }
            _ = self.shared.hard_stop.cancelled() => false,
        }
    }

    /// Prometheus's rule: enough shards to send what comes in plus 5 % of the backlog per
    /// second, changed only beyond ±30 %, never down while more than 10 s behind, never
    /// while a shard is backing off.
    async fn maybe_reshard(&mut self) {
        let q = &self.shared.config.queue_config;
        let sent_samples = self.shared.sent_samples.load(Ordering::Relaxed);
        let send_nanos = self.shared.send_nanos.load(Ordering::Relaxed);
        let samples_in = self.shared.metrics.samples_in.get();
        let current = self.shards.len();
        let desired = self.rates.update(
            samples_in,
            sent_samples,
            send_nanos,
            self.highest_read_ms - self.shared.highest_sent_ms.load(Ordering::Relaxed),
        );
        let Some(desired) = desired else { return };
        let desired = desired.clamp(q.min_shards, q.max_shards);
        self.shared.metrics.shards_desired.set(desired as f64);
        let lag_ms = self.highest_read_ms - self.shared.highest_sent_ms.load(Ordering::Relaxed);
        let within =
            (desired as f64) > 0.7 * current as f64 && (desired as f64) < 1.3 * current as f64;
        if desired == current || within {
            return;
        }
        if desired < current && lag_ms > 10_000 {
            return;
        }
        if self.shared.retrying.load(Ordering::Relaxed) > 0 {
            return;
        }
        info!(queue = %self.name(), from = current, to = desired, "resharding");
        self.stop_shards().await;
        if self.shared.hard_stop.is_cancelled() {
            return;
        }
        self.start_shards(desired);
    }

    /// Posts all known family metadata in 1.0 metadata-only requests (one attempt each:
    /// metadata is re-sent every interval anyway).
    fn send_metadata(&self) {
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            let entries: Vec<_> = shared
                .metadata
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .cloned()
                .collect();
            let per = shared.config.metadata_config.max_samples_per_send.max(1);
            for part in entries.chunks(per) {
                let req = encode::metadata_request_v1(part);
                let body = match encode::compress(&prost::Message::encode_to_vec(&req)) {
                    Ok(b) => b,
                    Err(_) => continue,
                };
                let bytes = body.len() as u64;
                match shared.client.send(ProtobufMessage::V1, body, 0).await {
                    Outcome::Delivered { .. } => {
                        shared.metrics.metadata_sent.add(part.len() as u64);
                        shared.metrics.bytes_sent.add(bytes);
                    }
                    Outcome::Retry { error, .. } => {
                        shared.metrics.metadata_failed.add(part.len() as u64);
                        warn!(queue = %shared.metrics.name, error = %error, "metadata not sent; next interval sends it again");
                    }
                    Outcome::Rejected { status, body } => {
                        shared.metrics.metadata_failed.add(part.len() as u64);
                        warn!(queue = %shared.metrics.name, status, receiver_says = %body, "metadata rejected");
                    }
                }
            }
        });
    }
}

/// Exponentially weighted rates for resharding (weight 0.2 per period, as Prometheus).
#[derive(Default)]
struct Rates {
    last: Option<(u64, u64, u64)>,
    in_rate: Option<f64>,
    out_rate: Option<f64>,
    send_rate: Option<f64>,
}

fn ewma(old: Option<f64>, new: f64) -> f64 {
    match old {
        Some(o) => o + 0.2 * (new - o),
        None => new,
    }
}

impl Rates {
    /// Feeds cumulative counters; returns the desired shard count once rates exist.
    fn update(&mut self, samples_in: u64, sent: u64, nanos: u64, lag_ms: i64) -> Option<usize> {
        let secs = RESHARD_PERIOD.as_secs_f64();
        let prev = self.last.replace((samples_in, sent, nanos))?;
        let i = ewma(self.in_rate, (samples_in - prev.0) as f64 / secs);
        let o = ewma(self.out_rate, (sent - prev.1) as f64 / secs);
        let s = ewma(self.send_rate, (nanos - prev.2) as f64 / 1e9 / secs);
        self.in_rate = Some(i);
        self.out_rate = Some(o);
        self.send_rate = Some(s);
        if o <= 0.0 {
            return None;
        }
        let time_per_sample = s / o;
        let backlog = (lag_ms.max(0) as f64 / 1000.0) * i;
        let desired = time_per_sample * (i + 0.05 * backlog);
        Some(desired.ceil().max(1.0) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_follow_send_time_per_sample_and_backlog() {
        let mut r = Rates::default();
        assert_eq!(r.update(0, 0, 0, 0), None, "no rates before two readings");
        // 10 s: 100 000 samples in and out, 20 s of sending (2 shards busy all the time).
        assert_eq!(r.update(100_000, 100_000, 20_000_000_000, 0), Some(2));
        // The same throughput 60 s behind: 5 % of the backlog per second on top.
        assert_eq!(
            r.update(200_000, 200_000, 40_000_000_000, 60_000),
            Some(8),
            "2 x (1 + 0.05 x 60) = 8"
        );
    }
}
