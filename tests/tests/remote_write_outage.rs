//! Outages: the receiver down for a minute, and the agent killed with SIGKILL. Whatever the WAL
//! accepted reaches the receiver once it is back, in order and exactly once.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nodemeter::model::Labels;
use nodemeter::sinks::remote_write::wal::{record, segment};
use nodemeter::telemetry::registry;
use nodemeter_tests::agent::AgentProcess;
use nodemeter_tests::receivers::{FakeReceiver, Reply, VictoriaMetrics};
use nodemeter_tests::sink::{Sink, batch_of, now_ms};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_a_minute_gets_every_sample_once_it_is_back() {
    let Some(vm) = VictoriaMetrics::start() else {
        return;
    };
    let addr = vm.daemon.addr;
    let data = vm.data.clone();
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "remote_write:\n  - url: {}\n    name: outage\n    queue_config:\n      batch_send_deadline: 200ms\n      max_backoff: 2s\n",
        vm.write_url()
    );
    let sink = Sink::start(&yaml, dir.path());
    let series = ["a", "b", "c"];
    let mut expect: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    let mut n = 0i64;
    let mut feed = async |until: Instant, expect: &mut BTreeMap<String, Vec<(i64, f64)>>| {
        while Instant::now() < until {
            let t = now_ms() - 3_600_000 + n * 100;
            let rows = series.iter().map(|s| {
                (
                    Labels::from_pairs([("__name__", "outage_test"), ("s", *s)]),
                    t,
                    n as f64,
                )
            });
            sink.send(batch_of(rows)).await;
            for s in series {
                expect.entry(s.to_string()).or_default().push((t, n as f64));
            }
            n += 1;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    feed(Instant::now() + Duration::from_secs(5), &mut expect).await;
    let mut vm = vm;
    // Stopped cleanly: VictoriaMetrics loses its in-memory buffer on SIGKILL, which would not
    // be the sender's fault.
    vm.daemon.stop();
    feed(Instant::now() + Duration::from_secs(60), &mut expect).await;
    let vm = VictoriaMetrics::start_at(&data, addr).unwrap();
    feed(Instant::now() + Duration::from_secs(5), &mut expect).await;

    let total: usize = expect.values().map(Vec::len).sum();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = BTreeMap::new();
    while Instant::now() < deadline {
        got = vm.export(r#"{__name__="outage_test"}"#);
        if got.values().map(Vec::len).sum::<usize>() >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    sink.finish().await;
    let got: BTreeMap<String, Vec<(i64, f64)>> =
        got.into_iter().map(|(l, v)| (l["s"].clone(), v)).collect();
    // VictoriaMetrics keeps duplicates, so equality also proves nothing arrived twice.
    assert_eq!(got, expect, "log:\n{}", vm.daemon.log_text());
    let retried = registry()
        .counter(
            "nodemeter_remote_storage_samples_retried_total",
            "",
            &[
                ("remote_name", "outage"),
                ("url", &format!("http://{addr}/api/v1/write")),
            ],
        )
        .get();
    assert!(retried > 0, "the outage was noticed");
}

/// Every sample stored in the WAL directory, as (labels, timestamp).
fn samples_in_wal(data_dir: &Path) -> BTreeSet<(String, i64)> {
    let dir = data_dir.join("wal");
    let mut out = BTreeSet::new();
    for index in segment::list(&dir).unwrap() {
        let mut r = segment::SegmentReader::open(&dir, index, 0).unwrap();
        while let Ok(segment::Next::Record(_, payload)) = r.next(u64::MAX) {
            for s in record::decode(&payload).unwrap().samples {
                out.insert((s.labels.to_string(), s.timestamp_ms));
            }
        }
    }
    out
}

#[test]
fn an_agent_killed_with_sigkill_loses_nothing_its_wal_accepted() {
    nodemeter_tests::require_root!();
    let up = Arc::new(AtomicBool::new(false));
    let accepted: Arc<Mutex<BTreeSet<(String, i64)>>> = Arc::default();
    let (u, a) = (Arc::clone(&up), Arc::clone(&accepted));
    let rx = FakeReceiver::start(move |_, r| {
        if !u.load(Ordering::Relaxed) {
            return Reply::status(503).body("down for maintenance");
        }
        let mut a = a.lock().unwrap();
        for (labels, t, _) in r.samples() {
            let mut name = String::new();
            let mut rest = Vec::new();
            for (k, v) in labels {
                if k == "__name__" {
                    name = v;
                } else {
                    rest.push(format!("{k}={v:?}"));
                }
            }
            a.insert((format!("{name}{{{}}}", rest.join(",")), t));
        }
        Reply::status(204)
    });
    let data = tempfile::tempdir().unwrap();
    let config = format!(
        "cgroup:\n  interval: 1s\nebpf:\n  enabled: false\nremote_write:\n  - url: {}\n    queue_config:\n      batch_send_deadline: 200ms\n      max_backoff: 500ms\n",
        rx.url()
    );
    let with_data_dir = |cmd: &mut std::process::Command| {
        cmd.arg("--data-dir").arg(data.path());
    };
    let agent = AgentProcess::start_with(&config, with_data_dir);
    // The receiver refuses everything while the agent collects for a few cycles.
    std::thread::sleep(Duration::from_secs(4));
    drop(agent); // SIGKILL
    let in_wal = samples_in_wal(data.path());
    assert!(!in_wal.is_empty(), "the WAL holds what was collected");
    assert!(accepted.lock().unwrap().is_empty());

    up.store(true, Ordering::Relaxed);
    let agent = AgentProcess::start_with(&config, with_data_dir);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let missing = in_wal.difference(&accepted.lock().unwrap()).count();
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} samples from before the kill never arrived; log:\n{}",
            in_wal.len(),
            agent.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The queue's self-metrics on the agent's own /metrics.
    let m = agent.scrape();
    let sent = m
        .text
        .lines()
        .find(|l| l.starts_with("nodemeter_remote_storage_samples_total{"));
    assert!(sent.is_some(), "{}", m.text);
    assert!(m.text.contains("nodemeter_remote_storage_wal_size_bytes "));
    assert!(m.text.contains("nodemeter_remote_storage_shards{"));
    let status = agent.terminate();
    assert!(status.success());
}
