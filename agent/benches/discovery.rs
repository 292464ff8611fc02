//! Cost of one recomputation of the scrape groups (debounced after every cluster change):
//! a node with 110 pods in a cluster the size of Kubernetes' 5,000-node envelope
//! (10,000 services, 1,000 namespaces), 300 ServiceMonitors and 50 PodMonitors. Measured
//! alone (`discover`) and followed by target relabeling of every candidate with the relabel
//! engine (what the scraper does with the result). Then what the running agent pays per
//! cluster event: a recomputation reusing the previous one after one pod or one Service
//! changed.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use nodemeter::discovery::kubernetes::validation::NoSecrets;
use nodemeter::discovery::kubernetes::{
    ClusterState, DiscoveryCache, Environment, KubernetesConfig, discover, discover_with,
};
use nodemeter::relabel::Rules;
use serde_json::json;

fn obj<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Arc<T> {
    Arc::new(serde_json::from_value(v).unwrap_or_else(|e| panic!("fixture: {e}")))
}

fn cluster() -> ClusterState {
    let mut s = ClusterState::default();
    for i in 0..1000 {
        s.namespaces
            .push(obj(json!({"metadata": {"name": format!("ns-{i}"), "labels": {"team": format!("t{}", i % 20)}}})));
    }
    // 110 pods on this node spread over 50 namespaces, two containers each.
    for i in 0..110 {
        let app = format!("app-{}", i % 60);
        s.pods.push(obj(json!({
            "metadata": {"name": format!("{app}-{i}"), "namespace": format!("ns-{}", i % 50), "uid": format!("uid-{i}"),
                         "labels": {"app.kubernetes.io/name": app, "pod-template-hash": "abc"},
                         "annotations": {"prometheus.io/scrape": "true"}},
            "spec": {"nodeName": "node-a", "containers": [
                {"name": "main", "image": "img:1", "ports": [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9090}]},
                {"name": "proxy", "image": "envoy:1", "ports": [{"name": "admin", "containerPort": 15000}]}]},
            "status": {"phase": "Running", "podIP": format!("10.0.{}.{}", i / 250, i % 250), "hostIP": "192.168.0.1",
                       "conditions": [{"type": "Ready", "status": "True"}]}
        })));
    }
    for i in 0..10_000 {
        let app = format!("app-{}", i % 60);
        s.services.push(obj(json!({
            "metadata": {"name": format!("svc-{i}"), "namespace": format!("ns-{}", i % 1000),
                         "labels": {"app.kubernetes.io/name": app, "release": "prod"}},
            "spec": {"selector": {"app.kubernetes.io/name": app},
                     "ports": [{"name": "http", "port": 80, "targetPort": "http"}, {"name": "metrics", "port": 9090, "targetPort": 9090}]}
        })));
    }
    for i in 0..300 {
        s.service_monitors.push(obj(json!({
            "metadata": {"name": format!("sm-{i}"), "namespace": format!("ns-{}", i % 1000), "labels": {"release": "kps"}},
            "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": format!("app-{}", i % 60)}},
                     "namespaceSelector": if i % 10 == 0 { json!({"any": true}) } else { json!({}) },
                     "endpoints": [{"port": "metrics", "metricRelabelings": [{"action": "drop", "sourceLabels": ["__name__"], "regex": "go_.*"}]}]}
        })));
    }
    for i in 0..50 {
        s.pod_monitors.push(obj(json!({
            "metadata": {"name": format!("pm-{i}"), "namespace": format!("ns-{i}"), "labels": {"release": "kps"}},
            "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": format!("app-{}", i % 60)}},
                     "namespaceSelector": {"any": true}, "podMetricsEndpoints": [{"port": "metrics"}]}
        })));
    }
    s
}

fn bench(c: &mut Criterion) {
    let state = cluster();
    let cfg = KubernetesConfig::default();
    let env = Environment {
        config: &cfg,
        node_name: "node-a",
        own_namespace: "nodemeter",
        secrets: &NoSecrets,
    };
    let d = discover(&state, &env);
    let candidates: usize = d.groups.iter().map(|g| g.targets.len()).sum();
    eprintln!("{} groups, {candidates} candidate targets", d.groups.len());
    let mut g = c.benchmark_group("discovery");
    g.measurement_time(Duration::from_secs(10));
    g.sample_size(20);
    g.bench_function("discover_110_pods_10k_services_350_monitors", |b| {
        b.iter(|| black_box(discover(black_box(&state), &env)))
    });
    g.bench_function("discover_and_relabel_targets", |b| {
        b.iter(|| {
            let d = discover(&state, &env);
            let mut kept = 0usize;
            for group in &d.groups {
                let rules =
                    Rules::compile(&group.relabel_configs).unwrap_or_else(|e| panic!("{e}"));
                kept += group
                    .targets
                    .iter()
                    .filter_map(|t| rules.process(t))
                    .count();
            }
            black_box(kept)
        })
    });
    // One object alternates between two versions, so every iteration is a real change.
    let pod_versions = {
        let mut changed: k8s_openapi::api::core::v1::Pod = (*state.pods[7]).clone();
        changed
            .metadata
            .labels
            .get_or_insert_default()
            .insert("version".into(), "2".into());
        [Arc::clone(&state.pods[7]), Arc::new(changed)]
    };
    let mut cache = DiscoveryCache::new();
    let mut s = state.clone();
    discover_with(&s, &env, &mut cache);
    let mut flip = 0;
    g.bench_function("recompute_after_one_pod_update", |b| {
        b.iter(|| {
            flip ^= 1;
            s.pods[7] = Arc::clone(&pod_versions[flip]);
            black_box(discover_with(&s, &env, &mut cache))
        })
    });
    // svc-7 is in ns-7, where this node has pods.
    let service_versions = {
        let mut changed: k8s_openapi::api::core::v1::Service = (*state.services[7]).clone();
        changed
            .metadata
            .labels
            .get_or_insert_default()
            .insert("version".into(), "2".into());
        [Arc::clone(&state.services[7]), Arc::new(changed)]
    };
    let mut s = state.clone();
    discover_with(&s, &env, &mut cache);
    g.bench_function("recompute_after_one_service_update", |b| {
        b.iter(|| {
            flip ^= 1;
            s.services[7] = Arc::clone(&service_versions[flip]);
            black_box(discover_with(&s, &env, &mut cache))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
