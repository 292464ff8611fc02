//! Family metadata over remote write 1.0: separate metadata-only requests every
//! `metadata_config.send_interval`, as Prometheus sends them.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::time::Duration;

use nodemeter::model::{FamilyMetadata, MetricType};
use nodemeter_tests::receivers::{FakeReceiver, Reply};
use nodemeter_tests::sink::{Sink, batch, now_ms};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_goes_out_in_its_own_requests_every_send_interval() {
    let rx = FakeReceiver::start(|_, _| Reply::status(204));
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "remote_write:\n  - url: {}\n    queue_config: {{batch_send_deadline: 50ms}}\n    metadata_config: {{send_interval: 300ms}}\n",
        rx.url()
    );
    let sink = Sink::start(&yaml, dir.path());
    let mut b = batch(&[(
        &[("__name__", "container_cpu_usage_seconds_total")],
        now_ms(),
        1.0,
    )]);
    b.metadata.push(FamilyMetadata::new(
        "container_cpu_usage_seconds_total",
        MetricType::Counter,
        "Cumulative cpu time consumed in seconds.",
    ));
    sink.send(b).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let meta = loop {
        let found = rx
            .received()
            .into_iter()
            .map(|r| r.v1())
            .find(|r| !r.metadata.is_empty());
        if let Some(m) = found {
            break m;
        }
        assert!(std::time::Instant::now() < deadline, "no metadata request");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    sink.finish().await;
    assert!(meta.timeseries.is_empty(), "metadata-only request");
    assert_eq!(meta.metadata.len(), 1);
    let m = &meta.metadata[0];
    assert_eq!(m.metric_family_name, "container_cpu_usage_seconds_total");
    assert_eq!(m.r#type, 1, "COUNTER");
    assert_eq!(m.help, "Cumulative cpu time consumed in seconds.");
}
