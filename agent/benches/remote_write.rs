//! The remote-write hot path per request of 2000 samples: encode (1.0 and 2.0) + snappy, and
//! the WAL round trip (append, read back, decode). Also prints wire bytes per sample.
//!
//! Input: node_exporter-like series (50 targets x 2000 series, 10 labels each), taken in
//! target order as a scrape produces them.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use nodemeter::model::{Batch, FamilyMetadata, Labels, MetricType, Sample, SourceId};
use nodemeter::sinks::remote_write::config::{ProtobufMessage, WalConfig};
use nodemeter::sinks::remote_write::encode::{self, MetadataIndex};
use nodemeter::sinks::remote_write::wal::Wal;

const FAMILIES: [&str; 8] = [
    "node_cpu_seconds_total",
    "node_memory_MemFree_bytes",
    "node_network_receive_bytes_total",
    "node_disk_io_time_seconds_total",
    "node_filesystem_avail_bytes",
    "node_netstat_Tcp_InSegs",
    "node_vmstat_pgfault",
    "node_load1",
];

fn samples(targets: usize, per_target: usize) -> Vec<Sample> {
    let mut out = Vec::with_capacity(targets * per_target);
    for t in 0..targets {
        let instance = format!("10.0.{}.{}:9100", t / 250, t % 250);
        for s in 0..per_target {
            let family = FAMILIES[s % FAMILIES.len()];
            let labels = Labels::from_pairs([
                ("__name__", family),
                ("instance", instance.as_str()),
                ("job", "node-exporter"),
                ("namespace", "monitoring"),
                ("pod", &format!("node-exporter-{t:05}")),
                ("node", &format!("worker-{t:03}")),
                ("cluster", "eu-west-1"),
                ("device", &format!("dev{}", s / FAMILIES.len() % 16)),
                ("cpu", &(s / 128).to_string()),
                ("mode", ["user", "system", "idle", "iowait"][s % 4]),
            ]);
            out.push(Sample {
                labels,
                timestamp_ms: 1_700_000_000_000 + (t as i64) * 7,
                value: (s * 31 + t) as f64 * 1.25,
            });
        }
    }
    out
}

fn metadata() -> MetadataIndex {
    let mut m = MetadataIndex::default();
    m.update(
        &FAMILIES
            .iter()
            .map(|f| FamilyMetadata::new(f, MetricType::Counter, "A node_exporter metric."))
            .collect::<Vec<_>>(),
    );
    m
}

fn bench(c: &mut Criterion) {
    let all = samples(50, 2000);
    let meta = metadata();
    for (name, msg, m) in [
        ("v1", ProtobufMessage::V1, MetadataIndex::default()),
        (
            "v2 without metadata",
            ProtobufMessage::V2,
            MetadataIndex::default(),
        ),
        ("v2 with metadata", ProtobufMessage::V2, meta.clone()),
    ] {
        let bytes: usize = all
            .chunks(2000)
            .map(|c| encode::body(msg, c, &m).map(|b| b.len()).unwrap_or(0))
            .sum();
        eprintln!(
            "wire bytes per sample, {name}: {:.1}",
            bytes as f64 / all.len() as f64
        );
    }
    let mut g = c.benchmark_group("remote_write");
    g.throughput(Throughput::Elements(2000));
    let request = &all[..2000];
    // The reference path (prost messages of owned strings) beside the direct encoder the
    // shards use, so one run shows what writing the bytes directly saves.
    g.bench_function("encode+snappy v1 via prost messages (2000 samples)", |b| {
        b.iter(|| encode::body_via_messages(ProtobufMessage::V1, black_box(request), &meta))
    });
    g.bench_function("encode+snappy v2 via prost messages (2000 samples)", |b| {
        b.iter(|| encode::body_via_messages(ProtobufMessage::V2, black_box(request), &meta))
    });
    let mut encoder = encode::Encoder::default();
    g.bench_function("encode+snappy v1 (2000 samples)", |b| {
        b.iter(|| encoder.body(ProtobufMessage::V1, black_box(request), &meta))
    });
    g.bench_function("encode+snappy v2 (2000 samples)", |b| {
        b.iter(|| encoder.body(ProtobufMessage::V2, black_box(request), &meta))
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(&WalConfig {
        dir: dir.path().to_path_buf(),
        ..WalConfig::default()
    })
    .expect("wal");
    let start = wal.register("bench").expect("register");
    let mut batch = Batch::new(SourceId::new("bench"));
    batch.samples = request.to_vec();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut reader = wal.reader("bench", start);
    let mut n = 0u64;
    g.bench_function("wal append+read+decode (2000 samples)", |b| {
        b.iter(|| {
            n += 1;
            // Queues commit about once a second, not per request.
            if n.is_multiple_of(64) {
                wal.commit("bench", reader.position()).expect("commit");
            }
            wal.append(black_box(&batch)).expect("append");
            let records = rt.block_on(reader.read(4000));
            black_box(records);
        })
    });
    wal.commit("bench", reader.position()).expect("commit");
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
