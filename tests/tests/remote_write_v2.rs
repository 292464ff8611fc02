//! Remote write 2.0: the message on the wire, the written-count response headers, and the
//! fallback to 1.0 when a receiver answers 415 or turns out to be a 1.0 receiver.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::time::Duration;

use nodemeter::model::{FamilyMetadata, MetricType};
use nodemeter_tests::receivers::{FakeReceiver, Prometheus, Received, Reply};
use nodemeter_tests::sink::{Sink, batch, now_ms};

fn config(url: &str, extra: &str) -> String {
    format!(
        "remote_write:\n  - url: {url}\n    protobuf_message: io.prometheus.write.v2.Request\n    queue_config:\n      batch_send_deadline: 50ms\n{extra}"
    )
}

fn written(r: &Received) -> Reply {
    let n = r.samples().len().to_string();
    Reply::status(204)
        .header("X-Prometheus-Remote-Write-Samples-Written", &n)
        .header("X-Prometheus-Remote-Write-Histograms-Written", "0")
        .header("X-Prometheus-Remote-Write-Exemplars-Written", "0")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v2_request_has_the_spec_headers_symbols_and_metadata_per_series() {
    let rx = FakeReceiver::start(|_, r| written(r));
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start(&config(&rx.url(), ""), dir.path());
    let t = now_ms();
    let mut b = batch(&[
        (
            &[("__name__", "http_requests_total"), ("code", "200")],
            t,
            5.0,
        ),
        (
            &[("__name__", "http_requests_total"), ("code", "500")],
            t,
            1.0,
        ),
    ]);
    b.metadata.push(FamilyMetadata::new(
        "http_requests",
        MetricType::Counter,
        "HTTP requests served.",
    ));
    sink.send(b).await;
    let got = rx.wait_for(1, Duration::from_secs(10));
    sink.finish().await;
    let r = &got[0];
    assert_eq!(
        r.header("content-type"),
        Some("application/x-protobuf;proto=io.prometheus.write.v2.Request")
    );
    assert_eq!(r.header("content-encoding"), Some("snappy"));
    assert_eq!(r.header("x-prometheus-remote-write-version"), Some("2.0.0"));
    assert!(r.header("user-agent").unwrap().starts_with("nodemeter/"));
    let req = r.v2();
    assert_eq!(req.symbols[0], "");
    let mut seen = std::collections::HashSet::new();
    assert!(
        req.symbols.iter().all(|s| seen.insert(s)),
        "no symbol twice"
    );
    assert_eq!(req.timeseries.len(), 2);
    for ts in &req.timeseries {
        let m = ts.metadata.clone().unwrap();
        assert_eq!(m.r#type, 1, "COUNTER");
        assert_eq!(req.symbols[m.help_ref as usize], "HTTP requests served.");
        let names: Vec<&str> = ts
            .labels_refs
            .chunks(2)
            .map(|p| req.symbols[p[0] as usize].as_str())
            .collect();
        assert_eq!(names, ["__name__", "code"]);
    }
    assert_eq!(rx.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_415_switches_the_queue_to_v1_and_resends_the_batch() {
    let rx = FakeReceiver::start(|_, r| {
        if r.is_v2() {
            Reply::status(415).body("unsupported proto")
        } else {
            Reply::status(204)
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start(&config(&rx.url(), ""), dir.path());
    let t = now_ms();
    sink.send(batch(&[(&[("__name__", "m")], t, 1.0)])).await;
    rx.wait_for(2, Duration::from_secs(10));
    sink.send(batch(&[(&[("__name__", "m")], t + 1000, 2.0)]))
        .await;
    let got = rx.wait_for(3, Duration::from_secs(10));
    sink.finish().await;
    assert!(got[0].is_v2());
    assert!(!got[1].is_v2() && !got[2].is_v2(), "stays on 1.0");
    assert_eq!(
        got[1].header("x-prometheus-remote-write-version"),
        Some("0.1.0")
    );
    assert_eq!(got[1].samples(), got[0].samples(), "the same batch re-sent");
    assert_eq!(got[2].samples()[0].1, t + 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_fallback_a_415_drops_the_batch() {
    let rx = FakeReceiver::start(|_, _| Reply::status(415));
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start(
        &config(&rx.url(), "    fallback_to_v1: false\n"),
        dir.path(),
    );
    sink.send(batch(&[(&[("__name__", "m")], now_ms(), 1.0)]))
        .await;
    rx.wait_for(1, Duration::from_secs(10));
    tokio::time::sleep(Duration::from_secs(1)).await;
    sink.finish().await;
    assert_eq!(rx.received().len(), 1);
}

/// Prometheus 2.42 (Debian 12) predates remote write 2.0: it decodes the 2.0 body as an empty
/// 1.0 request and answers 204 without written counts. The queue notices, falls back to 1.0,
/// and the samples land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1_only_prometheus_gets_the_data_through_the_fallback() {
    let Some(prom) = Prometheus::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start(&config(&prom.write_url(), ""), dir.path());
    let t = now_ms() - 60_000;
    sink.send(batch(&[(
        &[("__name__", "rw2_fallback"), ("k", "v")],
        t,
        7.5,
    )]))
    .await;
    sink.finish().await;
    let r = prom.query("rw2_fallback", (t + 1000) as f64 / 1000.0);
    let r = r.as_array().unwrap();
    // Prometheus 2.54+ would take the 2.0 request directly; either way the sample is there.
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["value"][1], "7.5");
    assert_eq!(r[0]["metric"]["k"], "v");
}
