//! Parser throughput on the exporter corpus of the benchmark harness.
//!
//! The corpus is generated at bench time by `shared/bench/gen_targets.py` (one target of
//! `NODEMETER_BENCH_SERIES` series, default 2000: a typical exporter). The same body with
//! `# EOF` appended is the OpenMetrics case. Baselines put the numbers in proportion:
//! `naive_split_f64` splits lines and parses the last field with `str::parse::<f64>` (what a
//! parser that validates nothing costs), `memchr_lines` only counts lines (memory bandwidth).
//!
//! Samples/s = series per body / median time (the series count is printed at start).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nodemeter::exposition::parse::{Entry, Format, Parser};

fn generator() -> Option<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let from_env = std::env::var_os("NODEMETER_GEN_TARGETS").map(PathBuf::from);
    let candidates = from_env.into_iter().chain(
        [
            "../shared/bench/gen_targets.py",
            "../../shared/bench/gen_targets.py",
        ]
        .iter()
        .map(|p| manifest.join(p)),
    );
    candidates.into_iter().find(|p| p.is_file())
}

fn corpus() -> Option<Vec<u8>> {
    let Some(script) = generator() else {
        eprintln!(
            "exposition_parse: gen_targets.py not found (set NODEMETER_GEN_TARGETS); skipping"
        );
        return None;
    };
    let series = std::env::var("NODEMETER_BENCH_SERIES").unwrap_or_else(|_| "2000".into());
    let dir = tempfile::tempdir().ok()?;
    let status = Command::new("python3")
        .arg(&script)
        .args([
            "--targets",
            "1",
            "--variants",
            "1",
            "--no-gzip",
            "--series",
            &series,
            "--out",
        ])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => std::fs::read(dir.path().join("v0/t00.prom")).ok(),
        Ok(s) => {
            eprintln!(
                "exposition_parse: {} exited with {s}; skipping",
                script.display()
            );
            None
        }
        Err(e) => {
            eprintln!("exposition_parse: cannot run python3 ({e}); skipping");
            None
        }
    }
}

fn parse(body: &[u8], format: Format, iterate_labels: bool) -> usize {
    let mut n = 0;
    for entry in Parser::new(body, format) {
        if let Ok(Entry::Series(s)) = entry {
            n += 1;
            black_box(s.value);
            if iterate_labels {
                for (name, value) in s.labels.iter() {
                    black_box((name, value));
                }
            }
        } else if entry.is_err() {
            panic!("corpus does not parse: {entry:?}");
        }
    }
    n
}

fn naive_split_f64(body: &[u8]) -> usize {
    let text = std::str::from_utf8(body).unwrap_or_default();
    let mut n = 0;
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let last = line.rsplit_once(' ').map_or(line, |(_, v)| v);
        if let Ok(v) = last.parse::<f64>() {
            black_box(v);
            n += 1;
        }
    }
    n
}

fn bench(c: &mut Criterion) {
    let Some(text) = corpus() else {
        return;
    };
    let mut om = text.clone();
    om.extend_from_slice(b"# EOF\n");
    let series = parse(&text, Format::PrometheusText, false);
    assert_eq!(series, parse(&om, Format::OpenMetrics, false));
    eprintln!(
        "exposition_parse: corpus {} bytes, {series} series",
        text.len()
    );

    let mut g = c.benchmark_group("exposition_parse");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("text_0_0_4", |b| {
        b.iter(|| parse(black_box(&text), Format::PrometheusText, false))
    });
    g.bench_function("text_0_0_4_with_labels", |b| {
        b.iter(|| parse(black_box(&text), Format::PrometheusText, true))
    });
    g.bench_function("openmetrics_1_0", |b| {
        b.iter(|| parse(black_box(&om), Format::OpenMetrics, false))
    });
    g.bench_function("baseline_naive_split_f64", |b| {
        b.iter(|| naive_split_f64(black_box(&text)))
    });
    g.bench_function("baseline_memchr_lines", |b| {
        b.iter(|| memchr::memchr_iter(b'\n', black_box(&text)).count())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
