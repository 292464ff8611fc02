#![allow(clippy::unwrap_used, reason = "tests")]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::discovery::kubernetes::config::LabelSelectorConfig;
use crate::discovery::kubernetes::rules::{compact_yaml, set};
use crate::discovery::kubernetes::validation::NoSecrets;
use crate::relabel::Rules;

/// Target relabeling with the relabel engine, then Prometheus's cleanup (spec §3.7): drop
/// `__meta_*`, default `instance` to `__address__`.
fn relabel(rules: &[RelabelConfig], labels: &Labels) -> Option<Labels> {
    let out = Rules::compile(rules).unwrap().process(labels)?;
    let mut b = out.builder();
    b.retain(|l| !l.name.as_str().starts_with("__meta_"));
    if b.get("instance").is_none() {
        let addr = b.get("__address__").unwrap().to_string();
        b.set("instance", &addr);
    }
    Some(b.build())
}

/// Final target labels of a group, visible ones only, sorted.
fn final_targets(g: &ScrapeGroup) -> Vec<BTreeMap<String, String>> {
    let mut out: Vec<BTreeMap<String, String>> = g
        .targets
        .iter()
        .filter_map(|t| relabel(&g.relabel_configs, t))
        .map(|l| {
            l.iter()
                .filter(|l| !l.name.as_str().starts_with("__"))
                .map(|l| (l.name.as_str().to_string(), l.value.as_str().to_string()))
                .collect()
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn hidden(g: &ScrapeGroup, address: &str) -> BTreeMap<String, String> {
    let t = g
        .targets
        .iter()
        .filter_map(|t| relabel(&g.relabel_configs, t))
        .find(|t| t.get("__address__") == Some(address))
        .unwrap();
    t.iter()
        .filter(|l| l.name.as_str().starts_with("__"))
        .map(|l| (l.name.as_str().to_string(), l.value.as_str().to_string()))
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn obj<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Arc<T> {
    Arc::new(serde_json::from_value(v).unwrap())
}

fn web_pod(name: &str, node: &str, ip: &str, phase: &str) -> Arc<Pod> {
    obj(json!({
        "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}"),
                     "labels": {"app": "web", "pod-template-hash": "5c9f7d"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                        "name": "web-5c9f7d", "uid": "rs", "controller": true}]},
        "spec": {"nodeName": node, "containers": [
            {"name": "web", "image": "shop/web:1.2", "ports": [{"name": "metrics", "containerPort": 9090, "protocol": "TCP"}]},
            {"name": "sidecar", "image": "envoy:1", "ports": [{"name": "http", "containerPort": 8080}]}
        ]},
        "status": {"phase": phase, "podIP": ip, "hostIP": "192.168.1.10",
                   "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [{"name": "web", "image": "docker.io/shop/web:1.2", "imageID": "x",
                        "containerID": "containerd://aaaa", "ready": true, "restartCount": 0}]}
    }))
}

fn web_service() -> Arc<Service> {
    obj(json!({
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {"selector": {"app": "web"},
                 "ports": [{"name": "http-metrics", "port": 80, "targetPort": 9090, "protocol": "TCP"}]}
    }))
}

fn namespaces() -> Vec<Arc<Namespace>> {
    ["shop", "monitoring", "kube-system"]
        .iter()
        .map(|n| {
            obj(json!({"metadata": {"name": n, "labels": {"kubernetes.io/metadata.name": n}}}))
        })
        .collect()
}

fn worked_example_state() -> ClusterState {
    ClusterState {
        pods: vec![web_pod(
            "web-5c9f7d-x2k4q",
            "node-a",
            "10.244.1.17",
            "Running",
        )],
        services: vec![web_service()],
        endpoints: vec![],
        node: None,
        namespaces: namespaces(),
        pod_monitors: vec![obj(json!({
            "metadata": {"name": "web", "namespace": "monitoring"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "namespaceSelector": {"matchNames": ["shop"]},
                     "podMetricsEndpoints": [{"port": "metrics"}]}
        }))],
        service_monitors: vec![obj(json!({
            "metadata": {"name": "web", "namespace": "monitoring"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "namespaceSelector": {"matchNames": ["shop"]},
                     "endpoints": [{"port": "http-metrics"}]}
        }))],
    }
}

fn run(state: &ClusterState, cfg: &KubernetesConfig) -> Discovered {
    discover(
        state,
        &Environment {
            config: cfg,
            node_name: "node-a",
            own_namespace: "monitoring",
            secrets: &NoSecrets,
        },
    )
}

#[test]
fn worked_example_pod_monitor_gives_the_operators_labels() {
    let d = run(&worked_example_state(), &KubernetesConfig::default());
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    let pm = &d.groups[0];
    assert_eq!(pm.job_name, "podMonitor/monitoring/web/0");
    // Pod SD yields web:9090 and sidecar:8080; the port keep rule removes the sidecar.
    assert_eq!(pm.targets.len(), 2);
    assert_eq!(
        final_targets(pm),
        vec![labels(&[
            ("container", "web"),
            ("endpoint", "metrics"),
            ("instance", "10.244.1.17:9090"),
            ("job", "monitoring/web"),
            ("namespace", "shop"),
            ("pod", "web-5c9f7d-x2k4q"),
        ])]
    );
    assert_eq!(
        hidden(pm, "10.244.1.17:9090"),
        labels(&[
            ("__address__", "10.244.1.17:9090"),
            ("__metrics_path__", "/metrics"),
            ("__scheme__", "http"),
            ("__scrape_interval__", "30s"),
            ("__scrape_timeout__", "10s"),
            ("__tmp_prometheus_job_name", "podMonitor/monitoring/web/0"),
        ])
    );
}

#[test]
fn worked_example_service_monitor_gives_the_operators_labels() {
    let d = run(&worked_example_state(), &KubernetesConfig::default());
    let sm = &d.groups[1];
    assert_eq!(sm.job_name, "serviceMonitor/monitoring/web/0");
    // One endpoint target plus the extra target for the sidecar's port, which the port keep drops.
    assert_eq!(sm.targets.len(), 2);
    assert_eq!(
        final_targets(sm),
        vec![labels(&[
            ("container", "web"),
            ("endpoint", "http-metrics"),
            ("instance", "10.244.1.17:9090"),
            ("job", "web"),
            ("namespace", "shop"),
            ("pod", "web-5c9f7d-x2k4q"),
            ("service", "web"),
        ])]
    );
}

#[test]
fn pod_meta_labels_follow_the_pod_role() {
    let d = run(&worked_example_state(), &KubernetesConfig::default());
    let t = d.groups[0]
        .targets
        .iter()
        .find(|t| t.get("__address__") == Some("10.244.1.17:9090"))
        .unwrap();
    let m = |k: &str| t.get(&format!("__meta_kubernetes_{k}"));
    assert_eq!(m("namespace"), Some("shop"));
    assert_eq!(m("pod_name"), Some("web-5c9f7d-x2k4q"));
    assert_eq!(m("pod_ip"), Some("10.244.1.17"));
    assert_eq!(m("pod_label_pod_template_hash"), Some("5c9f7d"));
    assert_eq!(m("pod_labelpresent_pod_template_hash"), Some("true"));
    assert_eq!(m("pod_ready"), Some("true"));
    assert_eq!(m("pod_phase"), Some("Running"));
    assert_eq!(m("pod_node_name"), Some("node-a"));
    assert_eq!(m("pod_host_ip"), Some("192.168.1.10"));
    assert_eq!(m("pod_uid"), Some("uid-web-5c9f7d-x2k4q"));
    assert_eq!(m("pod_controller_kind"), Some("ReplicaSet"));
    assert_eq!(m("pod_controller_name"), Some("web-5c9f7d"));
    assert_eq!(m("pod_container_name"), Some("web"));
    assert_eq!(m("pod_container_image"), Some("shop/web:1.2"));
    assert_eq!(m("pod_container_id"), Some("containerd://aaaa"));
    assert_eq!(m("pod_container_port_name"), Some("metrics"));
    assert_eq!(m("pod_container_port_number"), Some("9090"));
    assert_eq!(m("pod_container_port_protocol"), Some("TCP"));
    assert_eq!(m("pod_container_init"), Some("false"));
    assert_eq!(t.get("job"), Some("podMonitor/monitoring/web/0"));
}

#[test]
fn endpoints_meta_labels_follow_the_endpoints_role() {
    let d = run(&worked_example_state(), &KubernetesConfig::default());
    let sm = &d.groups[1];
    let t = sm
        .targets
        .iter()
        .find(|t| t.get("__address__") == Some("10.244.1.17:9090"))
        .unwrap();
    let m = |k: &str| t.get(&format!("__meta_kubernetes_{k}"));
    assert_eq!(m("endpoints_name"), Some("web"));
    assert_eq!(m("endpoints_label_app"), Some("web"));
    assert_eq!(m("service_name"), Some("web"));
    assert_eq!(m("service_label_app"), Some("web"));
    assert_eq!(m("endpoint_port_name"), Some("http-metrics"));
    assert_eq!(m("endpoint_port_protocol"), Some("TCP"));
    assert_eq!(m("endpoint_ready"), Some("true"));
    assert_eq!(m("endpoint_address_target_kind"), Some("Pod"));
    assert_eq!(m("endpoint_address_target_name"), Some("web-5c9f7d-x2k4q"));
    assert_eq!(m("endpoint_node_name"), Some("node-a"));
    assert_eq!(m("pod_container_name"), Some("web"));
    // No container id in this role.
    assert_eq!(m("pod_container_id"), None);
    let extra = sm
        .targets
        .iter()
        .find(|t| t.get("__address__") == Some("10.244.1.17:8080"))
        .unwrap();
    assert_eq!(extra.get("__meta_kubernetes_endpoint_port_name"), None);
    assert_eq!(
        extra.get("__meta_kubernetes_pod_container_name"),
        Some("sidecar")
    );
}

#[test]
fn only_pods_on_this_node_become_targets() {
    let mut state = worked_example_state();
    state.pods.push(web_pod(
        "web-5c9f7d-other",
        "node-b",
        "10.244.2.3",
        "Running",
    ));
    let d = run(&state, &KubernetesConfig::default());
    for g in &d.groups {
        assert!(
            g.targets
                .iter()
                .all(|t| t.get("__meta_kubernetes_pod_node_name") == Some("node-a")),
            "{}",
            g.job_name
        );
    }
}

#[test]
fn failed_and_succeeded_pods_are_dropped_not_ready_ones_are_scraped() {
    let mut state = worked_example_state();
    state.pods = vec![web_pod("done", "node-a", "10.244.1.20", "Succeeded")];
    let d = run(&state, &KubernetesConfig::default());
    assert!(final_targets(&d.groups[0]).is_empty());
    assert!(final_targets(&d.groups[1]).is_empty());

    let mut not_ready = (*web_pod("starting", "node-a", "10.244.1.21", "Running")).clone();
    not_ready
        .status
        .as_mut()
        .unwrap()
        .conditions
        .as_mut()
        .unwrap()[0]
        .status = "False".into();
    state.pods = vec![Arc::new(not_ready)];
    let d = run(&state, &KubernetesConfig::default());
    assert_eq!(final_targets(&d.groups[0]).len(), 1);
    let sm = &d.groups[1];
    assert_eq!(final_targets(sm).len(), 1);
    assert!(
        sm.targets
            .iter()
            .any(|t| t.get("__meta_kubernetes_endpoint_ready") == Some("false"))
    );
}

fn kps_selector() -> KubernetesConfig {
    let sel = LabelSelectorConfig {
        match_labels: [("release".to_string(), "kube-prometheus-stack".to_string())].into(),
        match_expressions: vec![],
    };
    KubernetesConfig {
        service_monitor_selector: Some(sel.clone()),
        pod_monitor_selector: Some(sel),
        ..KubernetesConfig::default()
    }
}

#[test]
fn kube_prometheus_stack_release_label_selects_monitors() {
    // A chart's `metrics.serviceMonitor.additionalLabels: {release: kube-prometheus-stack}`.
    let mut state = worked_example_state();
    let sm_for = |name: &str, labels: serde_json::Value| -> Arc<ServiceMonitor> {
        obj(json!({
            "metadata": {"name": name, "namespace": "shop", "labels": labels},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "jobLabel": "app.kubernetes.io/name",
                     "targetLabels": ["app"], "podTargetLabels": ["pod-template-hash"],
                     "endpoints": [{"port": "http-metrics", "interval": "15s", "path": "/stats",
                                    "params": {"format": ["prometheus", "x"]}}]}
        }))
    };
    state.pod_monitors.clear();
    state.service_monitors = vec![
        sm_for("labelled", json!({"release": "kube-prometheus-stack"})),
        sm_for("unlabelled", json!({})),
    ];
    let d = run(&state, &kps_selector());
    assert_eq!(d.groups.len(), 1);
    let g = &d.groups[0];
    assert_eq!(g.job_name, "serviceMonitor/shop/labelled/0");
    assert_eq!(g.scrape_interval, Duration::from_secs(15));
    assert_eq!(g.scrape_timeout, Duration::from_secs(10));
    assert_eq!(
        final_targets(g),
        vec![labels(&[
            ("app", "web"),
            ("container", "web"),
            ("endpoint", "http-metrics"),
            ("instance", "10.244.1.17:9090"),
            // jobLabel names a label the Service lacks: job stays the service name.
            ("job", "web"),
            ("namespace", "shop"),
            ("pod", "web-5c9f7d-x2k4q"),
            ("pod_template_hash", "5c9f7d"),
            ("service", "web"),
        ])]
    );
    let h = hidden(g, "10.244.1.17:9090");
    assert_eq!(h["__metrics_path__"], "/stats");
    assert_eq!(h["__param_format"], "prometheus");
    assert_eq!(h["__scrape_interval__"], "15s");
}

#[test]
fn daemonset_pod_monitor_with_job_label_and_metric_relabelings() {
    let exporter: Arc<Pod> = obj(json!({
        "metadata": {"name": "node-exporter-7xk2p", "namespace": "monitoring", "uid": "u1",
                     "labels": {"app.kubernetes.io/name": "node-exporter", "k8s-app": "node-exporter"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet",
                        "name": "node-exporter", "uid": "ds", "controller": true}]},
        "spec": {"nodeName": "node-a", "hostNetwork": true, "containers": [
            {"name": "node-exporter", "image": "quay.io/prometheus/node-exporter:v1.9.1",
             "ports": [{"name": "http-metrics", "containerPort": 9100, "protocol": "TCP"}]}]},
        "status": {"phase": "Running", "podIP": "192.168.1.10", "hostIP": "192.168.1.10",
                   "conditions": [{"type": "Ready", "status": "True"}]}
    }));
    let state = ClusterState {
        pods: vec![exporter],
        namespaces: namespaces(),
        pod_monitors: vec![obj(json!({
            "metadata": {"name": "node-exporter", "namespace": "monitoring",
                         "labels": {"release": "kube-prometheus-stack"}},
            "spec": {"selector": {"matchExpressions": [
                        {"key": "app.kubernetes.io/name", "operator": "In", "values": ["node-exporter"]}]},
                     "jobLabel": "k8s-app",
                     "podMetricsEndpoints": [{
                        "port": "http-metrics", "scheme": "HTTP",
                        "relabelings": [{"action": "replace", "sourceLabels": ["__meta_kubernetes_pod_node_name"],
                                         "targetLabel": "node"}],
                        "metricRelabelings": [
                            {"action": "keep", "sourceLabels": ["__name__"], "regex": "node_(cpu|memory)_.*"},
                            {"action": "labeldrop", "regex": "pod_template_hash"}]}]}
        }))],
        ..ClusterState::default()
    };
    let d = run(&state, &kps_selector());
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    let g = &d.groups[0];
    assert_eq!(g.scheme, "http");
    assert_eq!(
        final_targets(g),
        vec![labels(&[
            ("container", "node-exporter"),
            ("endpoint", "http-metrics"),
            ("instance", "192.168.1.10:9100"),
            ("job", "node-exporter"),
            ("namespace", "monitoring"),
            ("node", "node-a"),
            ("pod", "node-exporter-7xk2p"),
        ])]
    );
    assert_eq!(
        compact_yaml(&g.metric_relabel_configs),
        "\
- source_labels:
  - __name__
  regex: node_(cpu|memory)_.*
  action: keep
- regex: pod_template_hash
  action: labeldrop
"
    );
    // Applied to scraped series (target labels attached first): keep by name, then labeldrop.
    let metric_rules = Rules::compile(&g.metric_relabel_configs).unwrap();
    let kept = metric_rules
        .process(&Labels::from_pairs([
            ("__name__", "node_cpu_seconds_total"),
            ("cpu", "0"),
            ("pod_template_hash", "5c9f7d"),
            ("job", "node-exporter"),
        ]))
        .unwrap();
    assert_eq!(
        kept,
        Labels::from_pairs([
            ("__name__", "node_cpu_seconds_total"),
            ("cpu", "0"),
            ("job", "node-exporter")
        ])
    );
    assert!(
        metric_rules
            .process(&Labels::from_pairs([("__name__", "go_goroutines")]))
            .is_none()
    );
}

#[test]
fn generated_rule_order_for_a_service_monitor_matches_the_operator() {
    let state = worked_example_state();
    let d = run(&state, &KubernetesConfig::default());
    let yaml = compact_yaml(&d.groups[1].relabel_configs);
    assert_eq!(
        yaml,
        "\
- source_labels:
  - job
  target_label: __tmp_prometheus_job_name
  action: replace
- source_labels:
  - __meta_kubernetes_service_label_app
  - __meta_kubernetes_service_labelpresent_app
  regex: (web);true
  action: keep
- source_labels:
  - __meta_kubernetes_endpoint_port_name
  regex: http-metrics
  action: keep
- source_labels:
  - __meta_kubernetes_endpoint_address_target_kind
  - __meta_kubernetes_endpoint_address_target_name
  target_label: node
  regex: Node;(.*)
  replacement: ${1}
  action: replace
- source_labels:
  - __meta_kubernetes_endpoint_address_target_kind
  - __meta_kubernetes_endpoint_address_target_name
  target_label: pod
  regex: Pod;(.*)
  replacement: ${1}
  action: replace
- source_labels:
  - __meta_kubernetes_namespace
  target_label: namespace
  action: replace
- source_labels:
  - __meta_kubernetes_service_name
  target_label: service
  action: replace
- source_labels:
  - __meta_kubernetes_pod_name
  target_label: pod
  action: replace
- source_labels:
  - __meta_kubernetes_pod_container_name
  target_label: container
  action: replace
- source_labels:
  - __meta_kubernetes_pod_phase
  regex: (Failed|Succeeded)
  action: drop
- source_labels:
  - __meta_kubernetes_service_name
  target_label: job
  replacement: ${1}
  action: replace
- target_label: endpoint
  replacement: http-metrics
  action: replace
"
    );
}

#[test]
fn pod_monitor_rule_order_puts_the_phase_filter_first_and_port_number_sets_no_endpoint() {
    let mut state = worked_example_state();
    state.pod_monitors = vec![obj(json!({
        "metadata": {"name": "web", "namespace": "monitoring"},
        "spec": {"selector": {}, "namespaceSelector": {"any": true},
                 "podMetricsEndpoints": [{"portNumber": 9090}]}
    }))];
    let d = run(&state, &KubernetesConfig::default());
    let g = &d.groups[0];
    let actions: Vec<_> = g
        .relabel_configs
        .iter()
        .map(|r| {
            format!(
                "{}:{}",
                r.action.as_str(),
                if r.target_label.is_empty() {
                    r.source_labels.as_ref().unwrap()[0].as_str()
                } else {
                    r.target_label.as_str()
                }
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            "replace:__tmp_prometheus_job_name",
            "drop:__meta_kubernetes_pod_phase",
            "keep:__meta_kubernetes_pod_container_port_number",
            "replace:namespace",
            "replace:container",
            "replace:pod",
            "replace:job",
        ]
    );
    let t = final_targets(g);
    assert_eq!(t.len(), 1);
    assert!(!t[0].contains_key("endpoint"));
}

#[test]
fn an_invalid_monitor_is_rejected_whole_with_a_reason() {
    let mut state = worked_example_state();
    state.pod_monitors = vec![obj(json!({
        "metadata": {"name": "half", "namespace": "monitoring"},
        "spec": {"selector": {}, "podMetricsEndpoints": [
            {"port": "metrics"},
            {"port": "metrics", "interval": "5s", "scrapeTimeout": "10s"}]}
    }))];
    state.service_monitors = vec![obj(json!({
        "metadata": {"name": "typo", "namespace": "monitoring"},
        "spec": {"selector": {}, "endpoints": "not-a-list"}
    }))];
    let d = run(&state, &KubernetesConfig::default());
    assert!(
        d.groups.is_empty(),
        "{:?}",
        d.groups.iter().map(|g| &g.job_name).collect::<Vec<_>>()
    );
    let reasons: Vec<_> = d
        .rejected
        .iter()
        .map(|r| (r.monitor.to_string(), r.rejection.reason))
        .collect();
    assert_eq!(
        reasons,
        [
            (
                "PodMonitor monitoring/half".to_string(),
                RejectReason::TimeoutExceedsInterval
            ),
            (
                "ServiceMonitor monitoring/typo".to_string(),
                RejectReason::InvalidSpec
            ),
        ]
    );
    assert!(
        d.rejected[1].rejection.detail.contains("spec.endpoints"),
        "{}",
        d.rejected[1].rejection
    );
}

#[test]
fn selectors_null_selects_nothing_and_namespace_selector_uses_namespace_labels() {
    let state = worked_example_state();
    let cfg = KubernetesConfig {
        service_monitor_selector: None,
        pod_monitor_namespace_selector: Some(LabelSelectorConfig {
            match_labels: [(
                "kubernetes.io/metadata.name".to_string(),
                "kube-system".to_string(),
            )]
            .into(),
            match_expressions: vec![],
        }),
        ..KubernetesConfig::default()
    };
    assert!(run(&state, &cfg).groups.is_empty());
    let cfg = KubernetesConfig {
        pod_monitor_namespace_selector: None,
        service_monitor_namespace_selector: None,
        ..KubernetesConfig::default()
    };
    // null namespace selector: the agent's own namespace (monitoring), where both monitors live.
    assert_eq!(run(&state, &cfg).groups.len(), 2);
}

#[test]
fn match_labels_values_are_regexes_as_the_operator_writes_them() {
    let mut state = worked_example_state();
    let mut svc = (*web_service()).clone();
    svc.metadata.labels = Some(labels(&[("app", "web"), ("version", "v1x0")]));
    state.services = vec![Arc::new(svc)];
    state.service_monitors = vec![obj(json!({
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"selector": {"matchLabels": {"version": "v1.0"}}, "endpoints": [{"port": "http-metrics"}]}
    }))];
    state.pod_monitors.clear();
    let d = run(&state, &KubernetesConfig::default());
    // `v1.0` is inserted unescaped, so it also keeps `v1x0`.
    assert_eq!(final_targets(&d.groups[0]).len(), 1);
}

#[test]
fn enforced_namespace_label_and_honor_overrides() {
    let state = worked_example_state();
    let cfg = KubernetesConfig {
        enforced_namespace_label: "tenant".into(),
        override_honor_timestamps: true,
        ..KubernetesConfig::default()
    };
    let d = run(&state, &cfg);
    let g = &d.groups[0];
    assert!(!g.honor_timestamps);
    assert_eq!(final_targets(g)[0]["tenant"], "monitoring");
    assert_eq!(g.metric_relabel_configs, vec![set("tenant", "monitoring")]);
}

#[test]
fn kube_prometheus_stack_kubelet_monitor_uses_the_operators_endpoints_for_this_node_only() {
    // The kubelet Service has no selector; prometheus-operator maintains its Endpoints with
    // one address per node and a Node targetRef.
    let kubelet_labels = json!({"app.kubernetes.io/name": "kubelet", "k8s-app": "kubelet",
                                "app.kubernetes.io/managed-by": "prometheus-operator"});
    let address =
        |ip: &str, node: &str| json!({"ip": ip, "targetRef": {"kind": "Node", "name": node}});
    let state = ClusterState {
        namespaces: namespaces(),
        services: vec![obj(json!({
            "metadata": {"name": "kps-kubelet", "namespace": "kube-system", "labels": kubelet_labels},
            "spec": {"clusterIP": "None", "ports": [
                {"name": "https-metrics", "port": 10250}, {"name": "http-metrics", "port": 10255},
                {"name": "cadvisor", "port": 4194}]}
        }))],
        endpoints: vec![obj(json!({
            "metadata": {"name": "kps-kubelet", "namespace": "kube-system", "labels": kubelet_labels},
            "subsets": [{"addresses": [address("192.168.1.10", "node-a"), address("192.168.1.11", "node-b")],
                         "ports": [{"name": "https-metrics", "port": 10250}, {"name": "http-metrics", "port": 10255},
                                   {"name": "cadvisor", "port": 4194}]}]
        }))],
        service_monitors: vec![obj(json!({
            "metadata": {"name": "kps-kubelet", "namespace": "monitoring", "labels": {"release": "kube-prometheus-stack"}},
            "spec": {"jobLabel": "k8s-app", "namespaceSelector": {"matchNames": ["kube-system"]},
                     "selector": {"matchLabels": {"app.kubernetes.io/name": "kubelet", "k8s-app": "kubelet"}},
                     "endpoints": [
                        {"port": "https-metrics", "scheme": "https", "honorLabels": true,
                         "tlsConfig": {"caFile": "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt", "insecureSkipVerify": true},
                         "bearerTokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token",
                         "relabelings": [{"action": "replace", "sourceLabels": ["__metrics_path__"], "targetLabel": "metrics_path"}]},
                        {"port": "https-metrics", "scheme": "https", "path": "/metrics/cadvisor", "honorLabels": true,
                         "honorTimestamps": true, "trackTimestampsStaleness": true,
                         "bearerTokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token",
                         "relabelings": [{"action": "replace", "sourceLabels": ["__metrics_path__"], "targetLabel": "metrics_path"}]}]}
        }))],
        ..ClusterState::default()
    };
    let env = Environment {
        config: &kps_selector(),
        node_name: "node-a",
        own_namespace: "monitoring",
        secrets: &NoSecrets,
    };
    assert_eq!(
        wanted_endpoints(&state, &env),
        BTreeSet::from([("kube-system".to_string(), "kps-kubelet".to_string())])
    );
    let d = discover(&state, &env);
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    let expected = |path: &str| {
        vec![labels(&[
            ("endpoint", "https-metrics"),
            ("instance", "192.168.1.10:10250"),
            ("job", "kubelet"),
            ("metrics_path", path),
            ("namespace", "kube-system"),
            ("node", "node-a"),
            ("service", "kps-kubelet"),
        ])]
    };
    assert_eq!(final_targets(&d.groups[0]), expected("/metrics"));
    assert_eq!(final_targets(&d.groups[1]), expected("/metrics/cadvisor"));
    let g = &d.groups[1];
    assert!(g.honor_labels && g.honor_timestamps && g.track_timestamps_staleness);
    assert_eq!(g.scheme, "https");
    assert_eq!(
        d.groups[0].http.bearer_token_file.as_deref(),
        Some("/var/run/secrets/kubernetes.io/serviceaccount/token")
    );
    assert!(d.groups[0].http.tls.insecure_skip_verify);
}

#[test]
fn attach_metadata_node_adds_this_nodes_labels_or_skips_pods_without_it() {
    let mut state = worked_example_state();
    state.service_monitors.clear();
    state.pod_monitors = vec![obj(json!({
        "metadata": {"name": "web", "namespace": "monitoring"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "namespaceSelector": {"any": true},
                 "attachMetadata": {"node": true},
                 "podMetricsEndpoints": [{"port": "metrics", "relabelings": [
                    {"sourceLabels": ["__meta_kubernetes_node_label_topology_kubernetes_io_zone"], "targetLabel": "zone"}]}]}
    }))];
    let cfg = KubernetesConfig::default();
    let env = Environment {
        config: &cfg,
        node_name: "node-a",
        own_namespace: "monitoring",
        secrets: &NoSecrets,
    };
    assert!(wants_node(&state, &env));
    // Like Prometheus, a pod whose node is not known yet is skipped.
    assert!(final_targets(&discover(&state, &env).groups[0]).is_empty());
    state.node = Some(obj(json!({"metadata": {"name": "node-a",
        "labels": {"topology.kubernetes.io/zone": "eu-west-1a"}}})));
    let d = discover(&state, &env);
    let t = final_targets(&d.groups[0]);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0]["zone"], "eu-west-1a");
    assert_eq!(
        d.groups[0].targets[0].get("__meta_kubernetes_node_name"),
        Some("node-a")
    );
    state.pod_monitors.clear();
    assert!(!wants_node(&state, &env));
}

/// Identity of a label set's storage: equal addresses mean the set was reused, not rebuilt.
fn storage(l: &Labels) -> *const crate::model::Label {
    l.as_slice().as_ptr()
}

fn run_with(
    state: &ClusterState,
    cfg: &KubernetesConfig,
    cache: &mut DiscoveryCache,
) -> Discovered {
    discover_with(
        state,
        &Environment {
            config: cfg,
            node_name: "node-a",
            own_namespace: "monitoring",
            secrets: &NoSecrets,
        },
        cache,
    )
}

#[test]
fn reusing_the_last_computation_gives_the_same_groups_as_computing_from_scratch() {
    let cfg = KubernetesConfig::default();
    let mut cache = DiscoveryCache::new();
    let mut state = worked_example_state();
    state
        .pods
        .push(web_pod("web-2", "node-a", "10.244.1.18", "Running"));
    let check = |state: &ClusterState, cache: &mut DiscoveryCache, step: &str| {
        assert_eq!(run_with(state, &cfg, cache), run(state, &cfg), "{step}");
    };
    check(&state, &mut cache, "first computation");
    check(&state, &mut cache, "nothing changed");
    state.pods[1] = web_pod("web-2", "node-a", "10.244.1.99", "Running");
    check(&state, &mut cache, "a pod changed its IP");
    state.pods[1] = web_pod("web-2", "node-a", "10.244.1.99", "Failed");
    check(&state, &mut cache, "a pod failed");
    state.pods.pop();
    check(&state, &mut cache, "a pod was deleted");
    let mut svc: Service = (*web_service()).clone();
    svc.metadata.labels = Some(BTreeMap::from([("app".into(), "other".into())]));
    state.services[0] = Arc::new(svc);
    check(&state, &mut cache, "the service was relabelled");
    let mut sm: ServiceMonitor = (*state.service_monitors[0]).clone();
    sm.spec.endpoints[0].common.interval = "15s".into();
    state.service_monitors[0] = Arc::new(sm);
    check(&state, &mut cache, "a monitor's interval changed");
    state.service_monitors.clear();
    check(&state, &mut cache, "a monitor was deleted");
}

#[test]
fn one_pod_event_rebuilds_only_that_pods_targets() {
    let cfg = KubernetesConfig::default();
    let mut cache = DiscoveryCache::new();
    let mut state = worked_example_state();
    state
        .pods
        .push(web_pod("web-2", "node-a", "10.244.1.18", "Running"));
    // A Service in another namespace, which the pod event must not touch.
    let mut other: Service = (*web_service()).clone();
    other.metadata.namespace = Some("kube-system".into());
    state.services.push(Arc::new(other));
    state
        .pods
        .push(web_pod("web-ks", "node-a", "10.244.2.1", "Running"));
    Arc::make_mut(&mut state.pods[2]).metadata.namespace = Some("kube-system".into());
    let mut sm: ServiceMonitor = (*state.service_monitors[0]).clone();
    sm.spec.common.namespace_selector.match_names = vec!["shop".into(), "kube-system".into()];
    state.service_monitors[0] = Arc::new(sm);

    let before = run_with(&state, &cfg, &mut cache);
    state.pods[1] = web_pod("web-2", "node-a", "10.244.1.99", "Running");
    let after = run_with(&state, &cfg, &mut cache);
    let of = |d: &Discovered, job: &str, ip: &str| -> Vec<*const crate::model::Label> {
        let g = d.groups.iter().find(|g| g.job_name == job).unwrap();
        g.targets
            .iter()
            .filter(|t| t.get("__address__").is_some_and(|a| a.starts_with(ip)))
            .map(storage)
            .collect()
    };
    // Role pod: candidates are per pod, so only the changed pod's targets are new.
    let pm = "podMonitor/monitoring/web/0";
    assert!(!of(&before, pm, "10.244.1.17:").is_empty());
    assert_eq!(
        of(&before, pm, "10.244.1.17:"),
        of(&after, pm, "10.244.1.17:")
    );
    assert!(of(&after, pm, "10.244.1.18:").is_empty());
    assert!(!of(&after, pm, "10.244.1.99:").is_empty());
    // Role endpoints: candidates are per Service, so Services of other namespaces are kept.
    let sm = "serviceMonitor/monitoring/web/0";
    assert!(!of(&before, sm, "10.244.2.1:").is_empty());
    assert_eq!(
        of(&before, sm, "10.244.2.1:"),
        of(&after, sm, "10.244.2.1:")
    );
    assert!(!of(&after, sm, "10.244.1.99:").is_empty());
}
