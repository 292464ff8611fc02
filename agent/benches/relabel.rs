//! Cost per series of relabeling, against two baselines:
//!
//! * `naive`: the same rules evaluated the obvious way: labels cloned into a
//!   `BTreeMap<String, String>`, source values joined into a fresh `String`, `Regex::captures`
//!   and `String` results on every rule.
//! * `is_match_only`: just the regex `is_match` calls the rules imply, with no relabel logic
//!   and no label set to update: a floor for any implementation that uses the regex crate.
//!
//! Rule sets: the target relabeling prometheus-operator generates for a PodMonitor (spec
//! §2.2), and the metric relabeling of the scrape benchmark harness (keep on a `__name__`
//! alternation of 25 families, labeldrop, replace).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use nodemeter::model::Labels;
use nodemeter::relabel::{RelabelConfig, Rules};
use regex::Regex;

/// Counts heap allocations, to show what applying rules allocates.
struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Allocations per label set for one `apply` pass over `sets`, after a warm-up pass (which
/// fills the interner, the thread-local scratch space and the regex caches).
fn allocations_per_apply(rules: &Rules, sets: &[Labels]) -> f64 {
    let run = || {
        let mut builders: Vec<_> = sets.iter().map(Labels::builder).collect();
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        for lb in &mut builders {
            black_box(rules.apply(lb));
        }
        let spent = ALLOCATIONS.load(Ordering::Relaxed) - before;
        drop(builders);
        spent
    };
    run();
    run() as f64 / sets.len() as f64
}

/// The same generated rules the relabel conformance tests check.
const PODMONITOR_RULES: &str = include_str!("../src/relabel/testdata/podmonitor_rules.yaml");

/// The harness's `keep` regex (`gen_targets.py --seed 42`: 25 of 36 families).
const KEEP_REGEX: &str = "http_requests_total|http_response_size_bytes_total|grpc_server_handled_total|node_cpu_seconds_total|db_client_queries_total|log_messages_total|app_errors_total|container_cpu_usage_seconds_total|node_filesystem_avail_bytes|node_filesystem_size_bytes|process_resident_memory_bytes|process_open_fds|go_goroutines|kube_pod_status_phase|kube_deployment_status_replicas|container_memory_working_set_bytes|queue_depth|thread_pool_active_threads|hwmon_temp_celsius|jvm_memory_used_bytes|ssl_certificate_expiry_seconds|go_memstats_heap_inuse_bytes|db_query_duration_seconds_(?:bucket|sum|count)|go_gc_duration_seconds(?:_sum|_count)?|rpc_client_latency_seconds(?:_sum|_count)?";

fn metric_rules_yaml() -> String {
    format!(
        "- source_labels: [__name__]\n  regex: '{KEEP_REGEX}'\n  action: keep\n- regex: pod_template_hash\n  action: labeldrop\n- source_labels: [env]\n  regex: prod\n  target_label: env\n  replacement: production\n  action: replace\n"
    )
}

fn pod_target(container: &str, port_name: &str) -> Labels {
    Labels::from_pairs([
        ("__address__", "10.244.1.17:9090"),
        ("__metrics_path__", "/metrics"),
        ("__scheme__", "http"),
        ("__scrape_interval__", "30s"),
        ("__scrape_timeout__", "10s"),
        ("job", "podMonitor/monitoring/web/0"),
        ("__meta_kubernetes_namespace", "shop"),
        ("__meta_kubernetes_pod_name", "web-5c9f7d-x2k4q"),
        ("__meta_kubernetes_pod_ip", "10.244.1.17"),
        ("__meta_kubernetes_pod_phase", "Running"),
        ("__meta_kubernetes_pod_node_name", "node-a"),
        ("__meta_kubernetes_pod_ready", "true"),
        ("__meta_kubernetes_pod_label_app", "web"),
        ("__meta_kubernetes_pod_labelpresent_app", "true"),
        ("__meta_kubernetes_pod_label_pod_template_hash", "5c9f7d"),
        (
            "__meta_kubernetes_pod_labelpresent_pod_template_hash",
            "true",
        ),
        ("__meta_kubernetes_pod_container_name", container),
        ("__meta_kubernetes_pod_container_port_name", port_name),
        ("__meta_kubernetes_pod_container_port_number", "9090"),
        ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
    ])
}

/// Series shaped like the harness's targets: 36 families (25 kept), 3–8 labels, `env` prod on
/// three targets in four, `pod_template_hash` on about half the families.
fn harness_series(n: usize) -> Vec<Labels> {
    let kept = [
        "http_requests_total",
        "http_response_size_bytes_total",
        "grpc_server_handled_total",
        "node_cpu_seconds_total",
        "db_client_queries_total",
        "log_messages_total",
        "app_errors_total",
        "container_cpu_usage_seconds_total",
        "node_filesystem_avail_bytes",
        "node_filesystem_size_bytes",
        "process_resident_memory_bytes",
        "process_open_fds",
        "go_goroutines",
        "kube_pod_status_phase",
        "kube_deployment_status_replicas",
        "container_memory_working_set_bytes",
        "queue_depth",
        "thread_pool_active_threads",
        "hwmon_temp_celsius",
        "jvm_memory_used_bytes",
        "ssl_certificate_expiry_seconds",
        "go_memstats_heap_inuse_bytes",
        "db_query_duration_seconds_bucket",
        "go_gc_duration_seconds_sum",
        "rpc_client_latency_seconds_count",
    ];
    let dropped = [
        "kafka_consumer_records_consumed_total",
        "cache_requests_total",
        "http_request_duration_seconds_bucket",
        "grpc_server_handling_seconds_bucket",
        "http_request_duration_seconds_sum",
        "grpc_server_handling_seconds_count",
        "redis_commands_total",
        "nginx_connections_active",
        "jvm_gc_pause_seconds_count",
        "fs_io_bytes_total",
        "tcp_retransmits_total",
    ];
    (0..n)
        .map(|i| {
            let family = if i % 36 < 25 {
                kept[i % 36]
            } else {
                dropped[i % 36 - 25]
            };
            let env = if (i / 500) % 4 == 3 {
                "staging"
            } else {
                "prod"
            };
            let pod = format!("notifier-api-efd3d8fb1-{:05}", i / 40);
            let handler = format!("/api/internal/account/{}", i % 97);
            let code = ["200", "204", "304", "401", "500"][i % 5];
            let mut pairs = vec![
                ("__name__", family.to_string()),
                ("env", env.to_string()),
                ("namespace", "team-notifier".to_string()),
                ("pod", pod),
                ("handler", handler),
                ("code", code.to_string()),
                ("instance", "127.0.0.1:19100".to_string()),
                ("job", "bench".to_string()),
            ];
            if i % 2 == 0 {
                pairs.push(("pod_template_hash", "f85fd37c79".to_string()));
            }
            Labels::from_pairs(pairs)
        })
        .collect()
}

/// The baseline: the same semantics written the obvious, allocating way.
struct NaiveRule {
    action: String,
    sources: Vec<String>,
    separator: String,
    regex: Regex,
    target: String,
    replacement: String,
}

fn naive_rules(configs: &[RelabelConfig]) -> Vec<NaiveRule> {
    configs
        .iter()
        .map(|c| NaiveRule {
            action: c.action.as_str().to_string(),
            sources: c.source_labels.clone().unwrap_or_default(),
            separator: c.separator.clone(),
            regex: Regex::new(&format!("^(?s:{})$", c.regex.as_deref().unwrap_or("(.*)")))
                .unwrap_or_else(|e| panic!("{e}")),
            target: c.target_label.clone(),
            replacement: c.replacement.clone(),
        })
        .collect()
}

fn naive_apply(rules: &[NaiveRule], labels: &Labels) -> Option<BTreeMap<String, String>> {
    let mut set: BTreeMap<String, String> = labels
        .iter()
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect();
    for r in rules {
        let val = r
            .sources
            .iter()
            .map(|s| set.get(s).cloned().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(&r.separator);
        match r.action.as_str() {
            "keep" if !r.regex.is_match(&val) => return None,
            "drop" if r.regex.is_match(&val) => return None,
            "replace" => {
                if let Some(caps) = r.regex.captures(&val) {
                    let mut out = String::new();
                    caps.expand(&r.replacement, &mut out);
                    if out.is_empty() {
                        set.remove(&r.target);
                    } else {
                        set.insert(r.target.clone(), out);
                    }
                }
            }
            "labeldrop" => set.retain(|k, _| !r.regex.is_match(k)),
            _ => {}
        }
    }
    Some(set)
}

fn is_match_only(rules: &[NaiveRule], labels: &Labels) -> usize {
    let mut hits = 0;
    for r in rules {
        match r.action.as_str() {
            "labeldrop" => hits += labels.iter().filter(|l| r.regex.is_match(&l.name)).count(),
            _ => {
                let v = r.sources.first().and_then(|s| labels.get(s)).unwrap_or("");
                hits += usize::from(r.regex.is_match(v));
            }
        }
    }
    hits
}

fn bench_metric_relabeling(c: &mut Criterion) {
    let configs: Vec<RelabelConfig> =
        serde_yaml::from_str(&metric_rules_yaml()).unwrap_or_else(|e| panic!("{e}"));
    let rules = Rules::compile(&configs).unwrap_or_else(|e| panic!("{e}"));
    let naive = naive_rules(&configs);
    let series = harness_series(2000);
    // The engine and the naive version must agree before timing them.
    for s in &series {
        let ours = rules.process(s).map(|l| {
            l.iter()
                .map(|l| (l.name.to_string(), l.value.to_string()))
                .collect::<BTreeMap<_, _>>()
        });
        assert_eq!(ours, naive_apply(&naive, s), "{s}");
    }

    eprintln!(
        "metric_relabel_harness_rules: {:.3} heap allocations per series in apply",
        allocations_per_apply(&rules, &series)
    );

    let mut g = c.benchmark_group("metric_relabel_harness_rules");
    g.throughput(Throughput::Elements(series.len() as u64));
    g.bench_function("engine_apply_on_builder", |b| {
        b.iter_batched_ref(
            || series.iter().map(Labels::builder).collect::<Vec<_>>(),
            |builders| {
                let mut kept = 0usize;
                for lb in builders.iter_mut() {
                    kept += usize::from(rules.apply(lb));
                }
                black_box(kept)
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("engine_process_to_labels", |b| {
        b.iter(|| {
            let mut kept = 0usize;
            for s in &series {
                kept += usize::from(rules.process(s).is_some());
            }
            black_box(kept)
        })
    });
    g.bench_function("naive_clone_everything", |b| {
        b.iter(|| {
            let mut kept = 0usize;
            for s in &series {
                kept += usize::from(naive_apply(&naive, s).is_some());
            }
            black_box(kept)
        })
    });
    g.bench_function("is_match_only", |b| {
        b.iter(|| {
            let mut hits = 0usize;
            for s in &series {
                hits += is_match_only(&naive, s);
            }
            black_box(hits)
        })
    });
    g.finish();
}

fn bench_target_relabeling(c: &mut Criterion) {
    let configs: Vec<RelabelConfig> =
        serde_yaml::from_str(PODMONITOR_RULES).unwrap_or_else(|e| panic!("{e}"));
    let rules = Rules::compile(&configs).unwrap_or_else(|e| panic!("{e}"));
    let naive = naive_rules(&configs);
    let targets = [pod_target("web", "metrics"), pod_target("sidecar", "http")];

    eprintln!(
        "target_relabel_podmonitor: {:.3} heap allocations per target in apply (growing the builder for 6 added labels)",
        allocations_per_apply(&rules, &targets)
    );

    let mut g = c.benchmark_group("target_relabel_podmonitor");
    g.throughput(Throughput::Elements(targets.len() as u64));
    g.bench_function("engine_apply_on_builder", |b| {
        b.iter_batched_ref(
            || targets.iter().map(Labels::builder).collect::<Vec<_>>(),
            |builders| {
                let mut kept = 0usize;
                for lb in builders.iter_mut() {
                    kept += usize::from(rules.apply(lb));
                }
                black_box(kept)
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("engine_process_to_labels", |b| {
        b.iter(|| {
            targets
                .iter()
                .filter(|t| rules.process(t).is_some())
                .count()
        })
    });
    g.bench_function("naive_clone_everything", |b| {
        b.iter(|| {
            targets
                .iter()
                .filter(|t| naive_apply(&naive, t).is_some())
                .count()
        })
    });
    g.bench_function("is_match_only", |b| {
        b.iter(|| {
            targets
                .iter()
                .map(|t| is_match_only(&naive, t))
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    targets = bench_metric_relabeling, bench_target_relabeling
}
criterion_main!(benches);
