//! Self-metrics of one queue, named like Prometheus's `prometheus_remote_storage_*`.

use crate::telemetry::{Counter, Gauge, registry};

/// Counter and gauge handles of one queue (labels `remote_name`, `url`).
#[derive(Clone)]
pub struct QueueMetrics {
    pub name: String,
    url: String,
    pub samples_in: Counter,
    pub samples_sent: Counter,
    pub samples_retried: Counter,
    pub samples_failed: Counter,
    pub bytes_sent: Counter,
    pub metadata_sent: Counter,
    pub metadata_failed: Counter,
    pub requests_failed: Counter,
    pub shards: Gauge,
    pub shards_desired: Gauge,
    pub highest_sent_seconds: Gauge,
    pub highest_read_seconds: Gauge,
    pub lag_seconds: Gauge,
    pub wal_unread_bytes: Gauge,
}

impl QueueMetrics {
    pub fn new(name: &str, url: &str) -> Self {
        let r = registry();
        let l = [("remote_name", name), ("url", url)];
        Self {
            name: name.to_string(),
            url: url.to_string(),
            samples_in: r.counter(
                "nodemeter_remote_storage_samples_in_total",
                "Samples read from the WAL into the queue.",
                &l,
            ),
            samples_sent: r.counter(
                "nodemeter_remote_storage_samples_total",
                "Samples delivered to remote storage.",
                &l,
            ),
            samples_retried: r.counter(
                "nodemeter_remote_storage_samples_retried_total",
                "Samples in requests that failed recoverably and were sent again.",
                &l,
            ),
            samples_failed: r.counter(
                "nodemeter_remote_storage_samples_failed_total",
                "Samples the receiver rejected for good (4xx other than retried 429).",
                &l,
            ),
            bytes_sent: r.counter(
                "nodemeter_remote_storage_bytes_total",
                "Compressed request bytes delivered, metadata included.",
                &l,
            ),
            metadata_sent: r.counter(
                "nodemeter_remote_storage_metadata_total",
                "Family metadata entries delivered.",
                &l,
            ),
            metadata_failed: r.counter(
                "nodemeter_remote_storage_metadata_failed_total",
                "Family metadata entries that could not be delivered.",
                &l,
            ),
            requests_failed: r.counter(
                "nodemeter_remote_storage_failed_requests_total",
                "Requests that did not succeed, retried or not.",
                &l,
            ),
            shards: r.gauge(
                "nodemeter_remote_storage_shards",
                "Shards sending in parallel.",
                &l,
            ),
            shards_desired: r.gauge(
                "nodemeter_remote_storage_shards_desired",
                "Shards the throughput calls for.",
                &l,
            ),
            highest_sent_seconds: r.gauge(
                "nodemeter_remote_storage_queue_highest_sent_timestamp_seconds",
                "Newest sample timestamp delivered.",
                &l,
            ),
            highest_read_seconds: r.gauge(
                "nodemeter_remote_storage_queue_highest_read_timestamp_seconds",
                "Newest sample timestamp read from the WAL.",
                &l,
            ),
            lag_seconds: r.gauge(
                "nodemeter_remote_storage_queue_lag_seconds",
                "Newest sample read minus newest sample delivered.",
                &l,
            ),
            wal_unread_bytes: r.gauge(
                "nodemeter_remote_storage_wal_unread_bytes",
                "WAL bytes this queue has not read yet.",
                &l,
            ),
        }
    }

    /// Samples dropped instead of sent, by reason (`too_old`, `dropped_series`, ...).
    pub fn dropped(&self, reason: &str) -> Counter {
        registry().counter(
            "nodemeter_remote_storage_samples_dropped_total",
            "Samples dropped instead of sent, by queue and reason.",
            &[("remote_name", &self.name), ("reason", reason)],
        )
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}
