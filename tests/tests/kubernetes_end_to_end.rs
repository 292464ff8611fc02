//! The agent binary in a (test double) Kubernetes cluster, end to end: monitors served by the
//! test API server choose real HTTP targets; the agent scrapes only the ones on its node, with
//! exactly prometheus-operator's target labels and the monitors' metric relabelings; deleting
//! a monitor or a pod ends its targets within seconds; and a real cgroup named like a
//! containerd container of a pod carries that pod's `pod`, `namespace`, `container` and
//! `image` labels.
#![allow(clippy::unwrap_used, clippy::print_stdout, reason = "tests")]

use std::collections::BTreeMap;
use std::time::Duration;

use nodemeter_tests::agent::AgentProcess;
use nodemeter_tests::apiserver::{Kind, TestApiServer};
use nodemeter_tests::cgroups::{Layout, TestNode, container_id, is_root};
use nodemeter_tests::metrics::Exposition;
use nodemeter_tests::target::{Reply, TestTarget};
use serde_json::{Value, json};

const NODE: &str = "node-a";
const WEB_UID: &str = "3c1d5e7f-9a0b-4c2d-8e4f-6a7b8c9d0e1f";
const IMAGE: &str = "docker.io/shop/web:1.2";

const WEB_BODY: &str = "# TYPE http_requests_total counter
http_requests_total{code=\"200\",pod_template_hash=\"5c9f7d\"} 7
# TYPE go_goroutines gauge
go_goroutines 12
";

const EXPORTER_BODY: &str = "# TYPE node_load1 gauge
node_load1 0.5
";

fn pod(
    name: &str,
    node: &str,
    app: &str,
    container: &str,
    port: u16,
    uid: &str,
    cid: &str,
) -> Value {
    json!({
        "metadata": {"name": name, "namespace": "shop", "uid": uid,
                     "labels": {"app": app, "pod-template-hash": "5c9f7d"}},
        "spec": {"nodeName": node, "containers": [
            {"name": container, "image": "shop/web:1.2",
             "ports": [{"name": "metrics", "containerPort": port, "protocol": "TCP"}]}]},
        "status": {"phase": "Running", "podIP": "127.0.0.1", "hostIP": "127.0.0.1",
                   "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [{"name": container, "image": IMAGE, "imageID": "",
                        "ready": true, "restartCount": 0, "containerID": format!("containerd://{cid}")}]}
    })
}

fn seed(server: &TestApiServer, web_port: u16, exporter_port: u16, web_cid: &str) {
    for ns in ["shop", "monitoring"] {
        server.apply(Kind::Namespace, json!({"metadata": {"name": ns}}));
    }
    server.apply(
        Kind::Pod,
        pod("web-1", NODE, "web", "web", web_port, WEB_UID, web_cid),
    );
    // Same address, other node: the agent must never see it.
    server.apply(
        Kind::Pod,
        pod(
            "web-2",
            "node-b",
            "web",
            "web",
            web_port,
            "uid-web-2",
            &container_id(9),
        ),
    );
    server.apply(
        Kind::Pod,
        pod(
            "exporter-a",
            NODE,
            "exporter",
            "exporter",
            exporter_port,
            "uid-exporter-a",
            &container_id(8),
        ),
    );
    server.apply(
        Kind::Service,
        json!({"metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
               "spec": {"selector": {"app": "web"},
                        "ports": [{"name": "http-metrics", "port": 80, "targetPort": "metrics"}]}}),
    );
    // kube-prometheus-stack's convention: `additionalLabels: {release: kube-prometheus-stack}`.
    server.apply(
        Kind::ServiceMonitor,
        json!({"metadata": {"name": "web", "namespace": "monitoring",
                            "labels": {"release": "kube-prometheus-stack"}},
               "spec": {"selector": {"matchLabels": {"app": "web"}},
                        "namespaceSelector": {"matchNames": ["shop"]},
                        "endpoints": [{"port": "http-metrics", "interval": "1s", "scrapeTimeout": "500ms",
                                       "metricRelabelings": [
                                           {"action": "keep", "sourceLabels": ["__name__"], "regex": "http_.*"},
                                           {"action": "labeldrop", "regex": "pod_template_hash"}]}]}}),
    );
    // A PodMonitor for a DaemonSet's pods, in another namespace than its pods.
    server.apply(
        Kind::PodMonitor,
        json!({"metadata": {"name": "node-exporter", "namespace": "monitoring",
                            "labels": {"release": "kube-prometheus-stack"}},
               "spec": {"selector": {"matchLabels": {"app": "exporter"}},
                        "namespaceSelector": {"any": true},
                        "podMetricsEndpoints": [{"port": "metrics", "interval": "1s", "scrapeTimeout": "500ms"}]}}),
    );
    // Valid for the operator, but asks for native histograms, which this scraper cannot
    // honour: rejected whole, never scraped without them.
    server.apply(
        Kind::PodMonitor,
        json!({"metadata": {"name": "native", "namespace": "monitoring",
                            "labels": {"release": "kube-prometheus-stack"}},
               "spec": {"selector": {"matchLabels": {"app": "exporter"}},
                        "namespaceSelector": {"any": true}, "scrapeNativeHistograms": true,
                        "podMetricsEndpoints": [{"port": "metrics", "interval": "1s"}]}}),
    );
    // Not selected: no release label.
    server.apply(
        Kind::PodMonitor,
        json!({"metadata": {"name": "unselected", "namespace": "monitoring"},
               "spec": {"selector": {"matchLabels": {"app": "web"}}, "namespaceSelector": {"any": true},
                        "podMetricsEndpoints": [{"port": "metrics", "interval": "1s"}]}}),
    );
}

fn kubeconfig(dir: &std::path::Path, url: &str) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1
kind: Config
clusters: [{{name: test, cluster: {{server: '{url}'}}}}]
users: [{{name: test, user: {{}}}}]
contexts: [{{name: test, context: {{cluster: test, user: test}}}}]
current-context: test
"
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn visible(labels: &BTreeMap<String, String>) -> BTreeMap<&str, &str> {
    labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

fn expect(pairs: &[(&'static str, &str)]) -> BTreeMap<&'static str, String> {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

fn same(actual: &BTreeMap<String, String>, expected: &BTreeMap<&str, String>) -> bool {
    let a = visible(actual);
    a.len() == expected.len()
        && expected
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|x| *x == v.as_str()))
}

#[test]
fn monitors_in_the_cluster_drive_scraping_and_pods_name_container_series() {
    if !is_root() {
        println!("skipped: needs root (real cgroups)");
        return;
    }
    let web = TestTarget::start();
    web.route("/metrics", Reply::text(WEB_BODY));
    let exporter = TestTarget::start();
    exporter.route("/metrics", Reply::text(EXPORTER_BODY));

    // A real cgroup where containerd (cgroupfs driver) would put web-1's container.
    let web_cid = container_id(7);
    let mut node = TestNode::new("nm-k8s-e2e", Layout::UnifiedOnly);
    let pod_cgroup = format!("/kubepods/besteffort/pod{WEB_UID}");
    let container_cgroup = format!("{pod_cgroup}/{web_cid}");
    node.mkdir(&container_cgroup);
    node.spawn(&container_cgroup, None, "exec sleep 300");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(TestApiServer::start()).unwrap();
    seed(&server, web.addr.port(), exporter.addr.port(), &web_cid);

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig(dir.path(), &server.url());
    let config = format!(
        "node:
  name: {NODE}
cgroup:
  interval: 1s
  root: {root}
  mounts:
    unified: {unified}
  extra_cgroups: []
ebpf:
  enabled: false
exposition:
  timestamps: false
kubernetes:
  enabled: true
  debounce: 100ms
  service_monitor_selector: {{match_labels: {{release: kube-prometheus-stack}}}}
  pod_monitor_selector: {{match_labels: {{release: kube-prometheus-stack}}}}
",
        root = node.root,
        unified = node.mounts["unified"].display(),
    );
    let agent = AgentProcess::start_with(&config, |cmd| {
        cmd.env("KUBECONFIG", &kubeconfig)
            .env("POD_NAMESPACE", "monitoring")
            .env_remove("NODE_NAME");
    });

    let web_addr = web.address();
    let exporter_addr = exporter.address();
    let service_target = expect(&[
        ("job", "web"),
        ("instance", &web_addr),
        ("namespace", "shop"),
        ("pod", "web-1"),
        ("container", "web"),
        ("service", "web"),
        ("endpoint", "http-metrics"),
    ]);
    let pod_target = expect(&[
        ("job", "monitoring/node-exporter"),
        ("instance", &exporter_addr),
        ("namespace", "shop"),
        ("pod", "exporter-a"),
        ("container", "exporter"),
        ("endpoint", "metrics"),
    ]);

    // ServiceMonitor: the kept series with the target labels, labeldrop applied.
    agent.wait_for(Duration::from_secs(20), |m| {
        let lines = m.find("http_requests_total", &[]);
        let [line] = lines.as_slice() else {
            return None;
        };
        let mut expected = service_target.clone();
        expected.insert("code", "200".into());
        same(&line.labels, &expected).then_some(())
    });
    // PodMonitor: job is `<monitor namespace>/<monitor name>`, no service.
    agent.wait_for(Duration::from_secs(20), |m| {
        let lines = m.find("node_load1", &[]);
        let [line] = lines.as_slice() else {
            return None;
        };
        same(&line.labels, &pod_target).then_some(())
    });
    let m = agent.scrape();
    // The report series carry exactly the target labels.
    let ups: Vec<_> = m.find("up", &[]);
    assert_eq!(ups.len(), 2, "one up per on-node target: {ups:#?}");
    assert!(
        ups.iter().any(|l| same(&l.labels, &service_target)),
        "{ups:#?}"
    );
    assert!(ups.iter().any(|l| same(&l.labels, &pod_target)), "{ups:#?}");
    assert!(ups.iter().all(|l| l.value == 1.0), "{ups:#?}");
    // metricRelabelings keep only http_.*; the other node's pod is never a target.
    assert!(m.find("go_goroutines", &[]).is_empty(), "{}", m.text);
    assert!(m.find("up", &[("pod", "web-2")]).is_empty());
    assert!(
        web.requests().iter().all(|r| r.path == "/metrics"),
        "only the metrics path is requested"
    );
    // The native-histogram monitor is rejected, and says so.
    assert_eq!(
        m.value(
            "nodemeter_monitors_rejected",
            &[("kind", "PodMonitor"), ("reason", "unsupported_setting")]
        ),
        Some(1.0),
        "{}",
        agent.log_text()
    );
    assert!(
        agent
            .log_text()
            .contains("monitor not scraped, none of its endpoints is used"),
        "{}",
        agent.log_text()
    );

    // Container series of web-1's cgroup carry its pod metadata, the pod row its pod.
    let container_id_label = node.id(&container_cgroup);
    let pod_id_label = node.id(&pod_cgroup);
    agent.wait_for(Duration::from_secs(20), |m| {
        let c = m.find(
            "container_cpu_usage_seconds_total",
            &[("id", &container_id_label)],
        );
        let p = m.find(
            "container_cpu_usage_seconds_total",
            &[("id", &pod_id_label)],
        );
        let (Some(c), Some(p)) = (c.first(), p.first()) else {
            return None;
        };
        let get = |l: &BTreeMap<String, String>, k: &str| l.get(k).cloned().unwrap_or_default();
        let container_ok = get(&c.labels, "pod") == "web-1"
            && get(&c.labels, "namespace") == "shop"
            && get(&c.labels, "container") == "web"
            && get(&c.labels, "image") == IMAGE
            && get(&c.labels, "name") == web_cid;
        let pod_ok = get(&p.labels, "pod") == "web-1"
            && get(&p.labels, "namespace") == "shop"
            && get(&p.labels, "container").is_empty();
        (container_ok && pod_ok).then_some(())
    });

    // Deleting the ServiceMonitor ends its target: its series go stale within seconds.
    assert!(server.delete(Kind::ServiceMonitor, "monitoring", "web"));
    agent.wait_for(Duration::from_secs(10), |m: &Exposition| {
        (m.find("up", &[("job", "web")]).is_empty()
            && m.find("http_requests_total", &[]).is_empty())
        .then_some(())
    });
    assert_eq!(agent.scrape().find("up", &[("pod", "exporter-a")]).len(), 1);
    // Deleting the pod ends the PodMonitor's target.
    assert!(server.delete(Kind::Pod, "shop", "exporter-a"));
    agent.wait_for(Duration::from_secs(10), |m: &Exposition| {
        (m.find("up", &[]).is_empty() && m.find("node_load1", &[]).is_empty()).then_some(())
    });
    drop(agent);
    drop(server);
    drop(rt);
}
