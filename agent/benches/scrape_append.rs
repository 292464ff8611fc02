//! Cost of processing one scrape body (parse -> target labels -> metric relabeling -> limits
//! -> staleness -> samples), steady state against a baseline:
//!
//! * `steady_state`: the same target scraped again, as every scrape after the first is: the
//!   per-target cache maps each exposed series to its final labels, so nothing is re-interned
//!   or re-relabeled.
//! * `first_scrape` (baseline): a fresh target every time, i.e. what every scrape would cost
//!   without the cache: every series interned, labelled and relabeled.
//!
//! Input: a target of the scrape benchmark harness (`gen_targets.py`, 200 series, text 0.0.4)
//! with the harness's metric relabeling (keep 25 families, labeldrop, replace).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nodemeter::config::GlobalConfig;
use nodemeter::exposition::parse::Format;
use nodemeter::model::Labels;
use nodemeter::sources::scrape::append::TargetState;
use nodemeter::sources::scrape::{Job, ScrapeConfig};

const BODY: &str = include_str!("../src/sources/scrape/testdata/bench-target.prom");
const CONFIG: &str = include_str!("../src/sources/scrape/testdata/prom-agent.yml");

fn job() -> Job {
    let config: nodemeter::config::Config = serde_yaml::from_str(CONFIG).expect("bench config");
    let sc: &ScrapeConfig = &config.scrape_configs[0];
    Job::new(sc, &GlobalConfig::default(), 64 << 20).expect("bench job")
}

fn scrape(state: &mut TargetState, job: &Job, target: &Labels, ts: i64) -> usize {
    let mut samples = Vec::with_capacity(256);
    let mut metadata = Vec::new();
    let (_, r) = state.append(
        job,
        target,
        BODY.as_bytes(),
        Format::PrometheusText,
        ts,
        &mut samples,
        &mut metadata,
    );
    assert!(r.is_ok());
    samples.len()
}

fn bench(c: &mut Criterion) {
    let job = job();
    let target = Labels::from_pairs([("job", "bench"), ("instance", "127.0.0.1:19100")]);
    let series = BODY
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count() as u64;
    let mut g = c.benchmark_group("scrape_append");
    g.throughput(Throughput::Elements(series));
    let mut state = TargetState::new();
    let mut ts = 0;
    scrape(&mut state, &job, &target, ts);
    g.bench_function("steady_state", |b| {
        b.iter(|| {
            ts += 1000;
            black_box(scrape(&mut state, &job, &target, ts))
        })
    });
    g.bench_function("first_scrape", |b| {
        b.iter(|| black_box(scrape(&mut TargetState::new(), &job, &target, 1000)))
    });
    g.finish();
    let mut g = c.benchmark_group("scrape_append_bytes");
    g.throughput(Throughput::Bytes(BODY.len() as u64));
    let mut state = TargetState::new();
    scrape(&mut state, &job, &target, 0);
    g.bench_function("steady_state", |b| {
        b.iter(|| {
            ts += 1000;
            black_box(scrape(&mut state, &job, &target, ts))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
