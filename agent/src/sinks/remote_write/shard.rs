//! One shard: buffers its series' samples, cuts a request at `max_samples_per_send` or when
//! `batch_send_deadline` passes, and sends it until the receiver takes it, rejects it for
//! good, or the queue is stopped. One request in flight per shard, so a series (always on the
//! same shard) reaches the receiver in order.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until};
use tracing::{debug, error, info, warn};

use super::client::Outcome;
use super::config::ProtobufMessage;
use super::encode;
use super::queue::QueueShared;
use crate::model::Sample;

/// Samples handed to a shard, with the WAL record (tracker sequence) each came from.
#[derive(Default)]
pub struct Chunk {
    pub samples: Vec<Sample>,
    pub seqs: Vec<u64>,
}

impl Chunk {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            samples: Vec::with_capacity(n),
            seqs: Vec::with_capacity(n),
        }
    }
    pub fn len(&self) -> usize {
        self.samples.len()
    }
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
    pub fn push(&mut self, s: Sample, seq: u64) {
        self.samples.push(s);
        self.seqs.push(seq);
    }
}

pub struct ShardHandle {
    pub tx: mpsc::Sender<Chunk>,
    pub join: JoinHandle<()>,
}

/// Starts shard `index` of a queue.
pub fn spawn(shared: Arc<QueueShared>, index: usize) -> ShardHandle {
    let q = &shared.config.queue_config;
    // Prometheus's sizing: capacity / max_samples_per_send full batches in the channel.
    let chunks = (q.capacity / q.max_samples_per_send).max(1);
    let (tx, rx) = mpsc::channel(chunks);
    let join = tokio::spawn(run(shared, index, rx));
    ShardHandle { tx, join }
}

async fn run(shared: Arc<QueueShared>, index: usize, mut rx: mpsc::Receiver<Chunk>) {
    let max = shared.config.queue_config.max_samples_per_send;
    let period = shared.config.queue_config.batch_send_deadline.as_std();
    let mut buf = Chunk::with_capacity(max);
    let mut encoder = encode::Encoder::default();
    let mut deadline = Instant::now() + period;
    loop {
        tokio::select! {
            biased;
            _ = shared.hard_stop.cancelled() => return,
            chunk = rx.recv() => match chunk {
                Some(mut chunk) => {
                    // The queue cuts chunks at the request size: take one whole instead of
                    // copying it sample by sample.
                    if buf.is_empty() {
                        std::mem::swap(&mut buf, &mut chunk);
                    }
                    for (s, seq) in chunk.samples.into_iter().zip(chunk.seqs) {
                        buf.push(s, seq);
                        if buf.len() >= max {
                            let full = std::mem::replace(&mut buf, Chunk::with_capacity(max));
                            if !send(&shared, &mut encoder, full).await {
                                return;
                            }
                            deadline = Instant::now() + period;
                        }
                    }
                    if buf.len() >= max {
                        let full = std::mem::replace(&mut buf, Chunk::with_capacity(max));
                        if !send(&shared, &mut encoder, full).await {
                            return;
                        }
                        deadline = Instant::now() + period;
                    }
                }
                None => {
                    // The queue closed this shard (shutdown or resharding): send everything.
                    if !buf.is_empty() {
                        send(&shared, &mut encoder, buf).await;
                    }
                    debug!(queue = %shared.metrics.name, shard = index, "shard finished");
                    return;
                }
            },
            _ = sleep_until(deadline) => {
                if !buf.is_empty() {
                    let part = std::mem::replace(&mut buf, Chunk::with_capacity(max));
                    if !send(&shared, &mut encoder, part).await {
                        return;
                    }
                }
                deadline = Instant::now() + period;
            }
        }
    }
}

/// Sends one batch to completion. Returns false when the queue was stopped first (the batch
/// stays unacknowledged and is re-read from the WAL after a restart).
async fn send(shared: &QueueShared, encoder: &mut encode::Encoder, mut batch: Chunk) -> bool {
    let q = &shared.config.queue_config;
    let m = &shared.metrics;
    let mut backoff = q.min_backoff.as_std();
    let mut attempt: u32 = 0;
    loop {
        drop_too_old(shared, &mut batch);
        if batch.is_empty() {
            return true;
        }
        let n = batch.len();
        let message = shared.message();
        let body = {
            let meta = shared
                .metadata
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            encoder.body(message, &batch.samples, &meta)
        };
        let body = match body {
            Ok(b) => b,
            Err(e) => {
                error!(queue = %m.name, error = %e, samples = n, "cannot compress a request; dropping it");
                m.samples_failed.add(n as u64);
                shared.tracker.done_all(&batch.seqs);
                return true;
            }
        };
        let bytes = body.len() as u64;
        let started = Instant::now();
        let outcome = tokio::select! {
            o = shared.client.send(message, body, attempt) => o,
            _ = shared.hard_stop.cancelled() => return false,
        };
        shared.record_send_time(started.elapsed(), n);
        match outcome {
            Outcome::Delivered { status, written } => {
                if message == ProtobufMessage::V2 && !written.any() {
                    // A 1.x receiver decodes a 2.0 body as an empty 1.0 request and says 2xx.
                    if shared.config.fallback_to_v1 {
                        warn!(queue = %m.name, url = %m.url(), status, "2xx to a remote write 2.0 request without written-count headers: the receiver only speaks 1.0; switching this queue to 1.0 and re-sending");
                        shared.downgrade();
                        attempt += 1;
                        continue;
                    }
                    error!(queue = %m.name, url = %m.url(), status, samples = n, "2xx to a remote write 2.0 request without written-count headers: the receiver only speaks 1.0 (set protobuf_message: prometheus.WriteRequest); batch lost");
                    m.samples_failed.add(n as u64);
                } else {
                    if message == ProtobufMessage::V2
                        && let Some(w) = written.samples
                        && (w as usize) < n
                    {
                        warn!(queue = %m.name, sent = n, written = w, "receiver wrote fewer samples than sent");
                        m.samples_failed
                            .add((n as u64).saturating_sub(w.max(0) as u64));
                    }
                    m.samples_sent.add(n as u64);
                    m.bytes_sent.add(bytes);
                    let newest = batch
                        .samples
                        .iter()
                        .map(|s| s.timestamp_ms)
                        .max()
                        .unwrap_or(0);
                    shared.note_sent(newest);
                }
                shared.tracker.done_all(&batch.seqs);
                return true;
            }
            Outcome::Retry {
                status,
                retry_after,
                error,
            } => {
                m.samples_retried.add(n as u64);
                m.requests_failed.inc();
                let wait = retry_after.unwrap_or_else(|| jitter(backoff));
                if attempt == 0 || attempt.is_power_of_two() {
                    warn!(queue = %m.name, url = %m.url(), status, attempt, retry_in = ?wait, error = %error, "remote write failed; retrying");
                } else {
                    debug!(queue = %m.name, status, attempt, retry_in = ?wait, error = %error, "remote write failed; retrying");
                }
                shared.retrying.fetch_add(1, Ordering::Relaxed);
                let stopped = tokio::select! {
                    _ = sleep(wait) => false,
                    _ = shared.hard_stop.cancelled() => true,
                };
                shared.retrying.fetch_sub(1, Ordering::Relaxed);
                if stopped {
                    return false;
                }
                backoff = (backoff * 2).min(q.max_backoff.as_std());
                attempt += 1;
            }
            Outcome::Rejected { status, body } => {
                if status == 415 && message == ProtobufMessage::V2 && shared.config.fallback_to_v1 {
                    warn!(queue = %m.name, url = %m.url(), body = %body, "415 Unsupported Media Type to remote write 2.0: switching this queue to 1.0 and re-sending");
                    shared.downgrade();
                    attempt += 1;
                    continue;
                }
                m.requests_failed.inc();
                m.samples_failed.add(n as u64);
                error!(queue = %m.name, url = %m.url(), status, samples = n, receiver_says = %body, "remote write rejected by the receiver; dropping the batch (not retried)");
                shared.tracker.done_all(&batch.seqs);
                return true;
            }
        }
    }
}

/// Removes samples older than `sample_age_limit` (checked before every attempt, so a long
/// outage does not end with a flood of data the receiver would refuse anyway).
fn drop_too_old(shared: &QueueShared, batch: &mut Chunk) {
    let limit = shared.config.queue_config.sample_age_limit.as_std();
    if limit.is_zero() {
        return;
    }
    let oldest = now_ms() - limit.as_millis() as i64;
    if batch.samples.iter().all(|s| s.timestamp_ms >= oldest) {
        return;
    }
    let mut keep = Chunk::with_capacity(batch.len());
    let mut dropped = Vec::new();
    for (s, seq) in std::mem::take(&mut batch.samples)
        .into_iter()
        .zip(std::mem::take(&mut batch.seqs))
    {
        if s.timestamp_ms >= oldest {
            keep.push(s, seq);
        } else {
            dropped.push(seq);
        }
    }
    info!(queue = %shared.metrics.name, samples = dropped.len(), "dropping samples older than sample_age_limit");
    shared.metrics.dropped("too_old").add(dropped.len() as u64);
    shared.tracker.done_all(&dropped);
    *batch = keep;
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// 85-100 % of the delay: shards that failed together do not retry in lockstep, and each
/// delay stays above 0.8 of the previous one.
fn jitter(d: Duration) -> Duration {
    d.mul_f64(0.85 + 0.15 * fastrand::f64())
}
