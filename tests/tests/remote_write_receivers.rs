//! Remote write 1.0 end to end against real receivers: what the sink sends is queried back
//! from Prometheus and VictoriaMetrics and compared exactly (values, timestamps, labels with
//! external labels, stale markers where the receiver shows them).

#![allow(clippy::unwrap_used, reason = "tests")]

use std::collections::BTreeMap;

use nodemeter::model::stale_nan;
use nodemeter_tests::receivers::{Prometheus, VictoriaMetrics};
use nodemeter_tests::sink::{Sink, batch, now_ms};

type Series = BTreeMap<String, String>;

fn labels(pairs: &[(&str, &str)]) -> Series {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn config(url: &str, extra: &str) -> String {
    format!(
        "global:\n  external_labels:\n    cluster: eu-1\n    replica: a\nremote_write:\n  - url: {url}\n    name: under-test\n    queue_config:\n      batch_send_deadline: 100ms\n      max_samples_per_send: 7\n{extra}"
    )
}

/// What the test writes: two gauges of one family (one ends with a stale marker), a counter
/// that carries its own `cluster` label (which must win over the external one), and
/// values that stress the encoding.
struct Written {
    base: i64,
    /// Expected stored samples by full label set, stale markers excluded.
    expect: BTreeMap<Series, Vec<(i64, f64)>>,
    stale_at: i64,
}

async fn write_known_series(sink: &Sink, values: &[f64]) -> Written {
    let base = now_ms() - 300_000;
    let a: &[(&str, &str)] = &[
        ("__name__", "rwtest_gauge"),
        ("instance", "a"),
        ("job", "j"),
    ];
    let b: &[(&str, &str)] = &[
        ("__name__", "rwtest_gauge"),
        ("instance", "b"),
        ("job", "j"),
    ];
    let c: &[(&str, &str)] = &[
        ("__name__", "rwtest_requests_total"),
        ("cluster", "own"),
        ("job", "j"),
    ];
    let mut expect: BTreeMap<Series, Vec<(i64, f64)>> = BTreeMap::new();
    for (i, v) in values.iter().enumerate() {
        let t = base + i as i64 * 10_000;
        let counter = (i * 10) as f64;
        sink.send(batch(&[(a, t, *v), (b, t, -*v), (c, t, counter)]))
            .await;
        let mut la = labels(a);
        la.extend(labels(&[("cluster", "eu-1"), ("replica", "a")]));
        let mut lb = labels(b);
        lb.extend(labels(&[("cluster", "eu-1"), ("replica", "a")]));
        let mut lc = labels(c);
        lc.insert("replica".into(), "a".into());
        expect.entry(la).or_default().push((t, *v));
        expect.entry(lb).or_default().push((t, -*v));
        expect.entry(lc).or_default().push((t, counter));
    }
    let stale_at = base + values.len() as i64 * 10_000;
    sink.send(batch(&[(b, stale_at, stale_nan())])).await;
    Written {
        base,
        expect,
        stale_at,
    }
}

fn parse_prom_value(v: &serde_json::Value) -> (i64, f64) {
    let t = v[0].as_f64().unwrap();
    let x: f64 = v[1].as_str().unwrap().parse().unwrap();
    ((t * 1000.0).round() as i64, x)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_stores_exactly_what_the_sink_sent() {
    let Some(prom) = Prometheus::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start(&config(&prom.write_url(), ""), dir.path());
    let w = write_known_series(
        &sink,
        &[1.5, -2.25, 0.0, f64::MAX, f64::MIN_POSITIVE, 123.45],
    )
    .await;
    sink.finish().await;

    // A range selector returns the raw samples.
    let at = (w.stale_at + 1000) as f64 / 1000.0;
    let result = prom.query(r#"{__name__=~"rwtest_.*"}[10m]"#, at);
    let mut got: BTreeMap<Series, Vec<(i64, f64)>> = BTreeMap::new();
    for s in result.as_array().unwrap() {
        let l: Series = serde_json::from_value(s["metric"].clone()).unwrap();
        let v = s["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(parse_prom_value)
            .collect();
        got.insert(l, v);
    }
    assert_eq!(got, w.expect, "log:\n{}", prom.daemon.log_text());

    // The stale marker ends instance b: present just before it, gone right after.
    let before = prom.query(
        r#"rwtest_gauge{instance="b"}"#,
        (w.stale_at - 1000) as f64 / 1000.0,
    );
    assert_eq!(before.as_array().unwrap().len(), 1);
    let after = prom.query(
        r#"rwtest_gauge{instance="b"}"#,
        (w.stale_at + 1000) as f64 / 1000.0,
    );
    assert_eq!(after.as_array().unwrap().len(), 0, "{after}");
    let a_after = prom.query(
        r#"rwtest_gauge{instance="a"}"#,
        (w.stale_at + 1000) as f64 / 1000.0,
    );
    assert_eq!(a_after.as_array().unwrap().len(), 1, "only b went stale");
    assert!(w.base > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn victoriametrics_stores_exactly_what_the_sink_sent() {
    let Some(vm) = VictoriaMetrics::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start(&config(&vm.write_url(), ""), dir.path());
    // VictoriaMetrics stores a block's values as decimals with a shared exponent, so extremes
    // next to ordinary values come back rounded: ordinary values only here.
    let w = write_known_series(&sink, &[1.5, -2.25, 0.0, 1e6, 0.001, 123.45]).await;
    sink.finish().await;

    let mut got = BTreeMap::new();
    for _ in 0..50 {
        got = vm.export(r#"{__name__=~"rwtest_.*"}"#);
        if got.values().map(Vec::len).sum::<usize>() >= 19 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // VictoriaMetrics keeps the stale marker as a sample of its own (exported as NaN).
    let b = labels(&[
        ("__name__", "rwtest_gauge"),
        ("instance", "b"),
        ("job", "j"),
        ("cluster", "eu-1"),
        ("replica", "a"),
    ]);
    let stale = got.get_mut(&b).and_then(|v| v.pop());
    assert!(
        stale.is_some_and(|(t, v)| t == w.stale_at && v.is_nan()),
        "{stale:?}"
    );
    assert_eq!(got, w.expect);
}
