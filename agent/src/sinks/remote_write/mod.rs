//! Remote write: the pipeline's batches go to a write-ahead log on disk, and one queue per
//! configured endpoint reads them back and sends them (Prometheus remote write 1.0, or 2.0
//! where selected).
//!
//! ```text
//! pipeline ─► sink (this module) ─► wal (append, fsync policy, bounds)
//!                                    │ one cursor per endpoint
//!                                    ├─► queue "mimir"  ─► shards ─► client ─► POST
//!                                    └─► queue "vector" ─► shards ─► client ─► POST
//! ```
//!
//! A batch counts as accepted once it is in the WAL; from there nothing is lost by a restart
//! or by a receiver outage shorter than the WAL's bounds (see [`wal`] for the fsync policy and
//! what a power loss can cost). Per endpoint: [`config`] (Prometheus's keys), [`queue`] (cursor,
//! external labels, sharding by series, resharding), [`shard`] (batching, retries, backoff),
//! [`client`] (HTTP, TLS, auth, status handling), [`encode`] and [`proto`] (the wire).

pub mod client;
pub mod config;
pub mod encode;
pub mod metrics;
pub mod proto;
pub mod queue;
pub mod shard;
pub mod tracker;
pub mod wal;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

pub use config::{ProtobufMessage, RemoteWriteConfig, WalConfig};

use crate::model::Batch;
use crate::pipeline::SinkReceiver;
use crate::telemetry::registry;
use queue::Queue;
use wal::Wal;

/// How long queues may keep sending at shutdown before they stop; whatever is unsent stays in
/// the WAL for the next start. Below the agent's shutdown grace period.
pub const FLUSH_DEADLINE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum RemoteWriteError {
    #[error("remote-write WAL: {0}")]
    Wal(#[from] wal::WalError),
    #[error(transparent)]
    Client(#[from] client::ClientError),
    #[error("remote_write {queue}: write_relabel_configs: {source}")]
    Relabel {
        queue: String,
        #[source]
        source: crate::relabel::RelabelError,
    },
}

/// The remote-write sink: the WAL and every endpoint's queue.
pub struct RemoteWrite {
    wal: Wal,
    fsync_interval: Duration,
    queues: JoinSet<()>,
    drain: CancellationToken,
    hard_stop: CancellationToken,
}

impl RemoteWrite {
    /// Opens the WAL and starts one queue per endpoint (each resumes at its stored cursor).
    /// Must run inside a tokio runtime.
    pub fn start(
        endpoints: &[RemoteWriteConfig],
        wal_config: &WalConfig,
        external_labels: &BTreeMap<String, String>,
    ) -> Result<Self, RemoteWriteError> {
        let wal = Wal::open(wal_config)?;
        let drain = CancellationToken::new();
        let hard_stop = CancellationToken::new();
        let mut queues = JoinSet::new();
        let mut built = Vec::new();
        for e in endpoints {
            built.push(Queue::new(
                Arc::new(e.clone()),
                wal.clone(),
                external_labels,
                hard_stop.clone(),
            )?);
        }
        for q in built {
            queues.spawn(q.run(drain.clone()));
        }
        Ok(Self {
            wal,
            fsync_interval: wal_config.fsync_interval.as_std(),
            queues,
            drain,
            hard_stop,
        })
    }

    /// Appends every batch from the pipeline to the WAL until the pipeline closes, then lets
    /// the queues send what they can within [`FLUSH_DEADLINE`].
    pub async fn run(mut self, mut rx: SinkReceiver) {
        let appended = registry().counter(
            "nodemeter_remote_storage_wal_samples_appended_total",
            "Samples appended to the remote-write WAL (accepted by the sink).",
            &[],
        );
        let failed = registry().counter(
            "nodemeter_remote_storage_wal_append_failed_samples_total",
            "Samples the WAL could not store (disk full, I/O error): lost.",
            &[],
        );
        let highest = registry().gauge(
            "nodemeter_remote_storage_highest_timestamp_in_seconds",
            "Newest sample timestamp accepted by the remote-write sink.",
            &[],
        );
        let mut fsync = tokio::time::interval(if self.fsync_interval.is_zero() {
            Duration::from_secs(3600)
        } else {
            self.fsync_interval
        });
        fsync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut newest = 0i64;
        loop {
            tokio::select! {
                batch = rx.recv() => {
                    let Some(batch) = batch else { break };
                    if batch.samples.is_empty() && batch.metadata.is_empty() {
                        continue;
                    }
                    let n = batch.samples.len() as u64;
                    newest = batch.samples.iter().map(|s| s.timestamp_ms).fold(newest, i64::max);
                    match self.append(batch).await {
                        Ok(()) => {
                            appended.add(n);
                            highest.set(newest as f64 / 1000.0);
                        }
                        Err(e) => {
                            failed.add(n);
                            error!(error = %e, samples = n, "cannot append to the remote-write WAL; batch lost");
                        }
                    }
                }
                _ = fsync.tick() => self.sync().await,
            }
        }
        self.sync().await;
        info!("pipeline closed: remote-write queues send what the WAL holds");
        self.drain.cancel();
        let drained = tokio::time::timeout(FLUSH_DEADLINE, async {
            while self.queues.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!(deadline = ?FLUSH_DEADLINE, "remote write could not send everything before the deadline; the rest stays in the WAL for the next start");
            self.hard_stop.cancel();
            while self.queues.join_next().await.is_some() {}
        }
        debug!("remote-write sink finished");
    }

    async fn append(&self, batch: Arc<Batch>) -> Result<(), wal::WalError> {
        let wal = self.wal.clone();
        match tokio::task::spawn_blocking(move || wal.append_shared(batch)).await {
            Ok(r) => r,
            Err(e) => Err(wal::WalError::Io {
                path: self.wal.dir().to_path_buf(),
                what: "append task failed",
                source: std::io::Error::other(e.to_string()),
            }),
        }
    }

    async fn sync(&self) {
        let wal = self.wal.clone();
        match tokio::task::spawn_blocking(move || wal.sync()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => error!(error = %e, "WAL fsync failed"),
            Err(e) => error!(error = %e, "WAL fsync task failed"),
        }
    }
}
