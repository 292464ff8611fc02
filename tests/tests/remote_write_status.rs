//! How the sender treats the receiver's answers, asserted from the receiver's side: 400 is
//! never retried, 5xx is retried with growing delays until it succeeds, 429 honours
//! Retry-After when retrying it is on and is dropped when it is off, and a series arrives in
//! order without duplicates whatever the failures in between.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::collections::HashMap;
use std::time::Duration;

use nodemeter::model::Labels;
use nodemeter::telemetry::registry;
use nodemeter_tests::receivers::{FakeReceiver, Reply};
use nodemeter_tests::sink::{Sink, batch, batch_of, now_ms};

fn config(url: &str, queue: &str) -> String {
    format!(
        "remote_write:\n  - url: {url}\n    name: status-test-{}\n    queue_config:\n      batch_send_deadline: 50ms\n      min_backoff: 200ms\n      max_backoff: 800ms\n{queue}",
        url.len() + queue.len() // distinct self-metric labels per test
    )
}

fn counter(name: &str, queue: &str, url: &str) -> u64 {
    registry()
        .counter(name, "", &[("remote_name", queue), ("url", url)])
        .get()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_400_is_not_retried_and_the_receivers_message_is_kept() {
    let rx = FakeReceiver::start(|_, _| Reply::status(400).body("out of order sample"));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&rx.url(), "");
    let sink = Sink::start(&cfg, dir.path());
    let t = now_ms();
    sink.send(batch(&[(&[("__name__", "x")], t, 1.0)])).await;
    rx.wait_for(1, Duration::from_secs(10));
    tokio::time::sleep(Duration::from_secs(2)).await;
    sink.finish().await;
    assert_eq!(rx.received().len(), 1, "a 400 must not be retried");
    let name = format!("status-test-{}", rx.url().len());
    assert_eq!(
        counter(
            "nodemeter_remote_storage_samples_failed_total",
            &name,
            &rx.url()
        ),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_is_retried_with_backoff_until_it_succeeds() {
    let rx = FakeReceiver::start(|i, _| {
        if i < 3 {
            Reply::status(503).body("overloaded")
        } else {
            Reply::status(204)
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start(&config(&rx.url(), ""), dir.path());
    let t = now_ms();
    sink.send(batch(&[(&[("__name__", "x")], t, 42.0)])).await;
    let got = rx.wait_for(4, Duration::from_secs(20));
    sink.finish().await;
    assert_eq!(rx.received().len(), 4, "nothing after the success");
    // The same batch every time; retries are numbered.
    for r in &got {
        assert_eq!(r.samples(), got[0].samples());
    }
    assert_eq!(got[0].header("retry-attempt"), None);
    assert_eq!(got[1].header("retry-attempt"), Some("1"));
    assert_eq!(got[3].header("retry-attempt"), Some("3"));
    // Delays: 200 ms, 400 ms, 800 ms (capped), each with at most 15 % jitter below.
    let gaps: Vec<Duration> = got.windows(2).map(|w| w[1].at - w[0].at).collect();
    for (gap, nominal) in gaps.iter().zip([200u64, 400, 800]) {
        let nominal = Duration::from_millis(nominal);
        assert!(
            *gap >= nominal.mul_f64(0.84) && *gap < nominal + Duration::from_millis(400),
            "gaps {gaps:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_waits_for_retry_after_when_retrying_429_is_on() {
    let rx = FakeReceiver::start(|i, _| {
        if i == 0 {
            Reply::status(429)
                .header("Retry-After", "2")
                .body("slow down")
        } else {
            Reply::status(204)
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start(
        &config(&rx.url(), "      retry_on_http_429: true\n"),
        dir.path(),
    );
    sink.send(batch(&[(&[("__name__", "x")], now_ms(), 1.0)]))
        .await;
    let got = rx.wait_for(2, Duration::from_secs(10));
    sink.finish().await;
    let gap = got[1].at - got[0].at;
    assert!(
        gap >= Duration::from_secs(2) && gap < Duration::from_millis(2800),
        "Retry-After: 2 honoured, not min_backoff: {gap:?}"
    );
    assert_eq!(got[1].samples(), got[0].samples());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_dropped_by_default_like_prometheus() {
    let rx = FakeReceiver::start(|_, _| Reply::status(429).header("Retry-After", "1"));
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start(&config(&rx.url(), ""), dir.path());
    sink.send(batch(&[(&[("__name__", "x")], now_ms(), 1.0)]))
        .await;
    rx.wait_for(1, Duration::from_secs(10));
    tokio::time::sleep(Duration::from_secs(2)).await;
    sink.finish().await;
    assert_eq!(rx.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_series_arrives_in_order_without_duplicates_through_failures() {
    // Every third request fails with a 5xx; 4 shards at once, many series.
    let rx = FakeReceiver::start(|i, _| {
        if i % 3 == 1 {
            Reply::status(502)
        } else {
            Reply::status(204)
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start(
        &config(
            &rx.url(),
            "      min_shards: 4\n      max_shards: 4\n      max_samples_per_send: 50\n",
        ),
        dir.path(),
    );
    let base = now_ms() - 600_000;
    let names: Vec<String> = (0..40).map(|i| format!("s{i}")).collect();
    for step in 0..30i64 {
        let rows = names.iter().map(|n| {
            (
                Labels::from_pairs([("__name__", "ordered"), ("series", n.as_str())]),
                base + step * 1000,
                step as f64,
            )
        });
        sink.send(batch_of(rows)).await;
    }
    sink.finish().await;
    let mut per_series: HashMap<Vec<(String, String)>, Vec<i64>> = HashMap::new();
    let mut failed = 0;
    for (i, r) in rx.received().iter().enumerate() {
        if i % 3 == 1 {
            failed += 1;
            continue; // answered 502: not stored
        }
        for (labels, t, _) in r.samples() {
            per_series.entry(labels).or_default().push(t);
        }
    }
    assert!(failed > 0);
    assert_eq!(per_series.len(), 40);
    for (series, ts) in per_series {
        let want: Vec<i64> = (0..30).map(|s| base + s * 1000).collect();
        assert_eq!(ts, want, "series {series:?}: in order, each exactly once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_relabel_configs_run_after_external_labels_and_can_drop_series() {
    let rx = FakeReceiver::start(|_, _| Reply::status(204));
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"global:
  external_labels: {{cluster: eu-1}}
remote_write:
  - url: {}
    queue_config: {{batch_send_deadline: 50ms}}
    write_relabel_configs:
      - source_labels: [cluster]
        regex: eu-(.*)
        target_label: region
        replacement: europe-$1
      - source_labels: [__name__]
        regex: drop_me
        action: drop
"#,
        rx.url()
    );
    let sink = Sink::start(&yaml, dir.path());
    let t = now_ms();
    sink.send(batch(&[
        (&[("__name__", "keep_me")], t, 1.0),
        (&[("__name__", "drop_me")], t, 2.0),
    ]))
    .await;
    rx.wait_for(1, Duration::from_secs(10));
    sink.finish().await;
    let all: Vec<_> = rx.received().iter().flat_map(|r| r.samples()).collect();
    let labels: Vec<(String, String)> = [
        ("__name__", "keep_me"),
        ("cluster", "eu-1"),
        ("region", "europe-1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(all, vec![(labels, t, 1.0f64.to_bits())]);
}
