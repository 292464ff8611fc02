//! Kubernetes discovery against the test API server, through the real `kube` client: which
//! targets exist on this node, how fast changes arrive, and that a server restart with
//! compacted history (410, relist) loses nothing.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use nodemeter::discovery::kubernetes::{
    AgentPlacement, KubernetesConfig, KubernetesDiscovery, ScrapeGroup,
};
use nodemeter::identity::MetadataProvider;
use nodemeter_tests::apiserver::{Kind, TestApiServer};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const NODE: &str = "node-a";

fn pod(name: &str, node: &str, ip: &str, app: &str) -> Value {
    json!({
        "metadata": {"name": name, "namespace": "shop", "labels": {"app": app},
                     "uid": format!("uid-{name}")},
        "spec": {"nodeName": node, "containers": [
            {"name": "main", "image": format!("{app}:1"),
             "ports": [{"name": "metrics", "containerPort": 9090, "protocol": "TCP"}]}]},
        "status": {"phase": "Running", "podIP": ip, "hostIP": "192.168.0.1",
                   "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [{"name": "main", "image": format!("docker.io/library/{app}:1"),
                        "imageID": "", "ready": true, "restartCount": 0,
                        "containerID": format!("containerd://{name}-cid")}]}
    })
}

fn service(name: &str, app: &str) -> Value {
    json!({
        "metadata": {"name": name, "namespace": "shop", "labels": {"app": app}},
        "spec": {"selector": {"app": app}, "ports": [{"name": "http-metrics", "port": 80, "targetPort": "metrics"}]}
    })
}

fn seed(server: &TestApiServer) {
    for ns in ["shop", "monitoring"] {
        server.apply(Kind::Namespace, json!({"metadata": {"name": ns}}));
    }
    server.apply(Kind::Pod, pod("web-1", NODE, "10.0.0.11", "web"));
    server.apply(Kind::Pod, pod("web-2", "node-b", "10.0.1.12", "web"));
    server.apply(Kind::Pod, pod("db-1", NODE, "10.0.0.13", "db"));
    server.apply(Kind::Service, service("web", "web"));
    server.apply(
        Kind::ServiceMonitor,
        json!({"metadata": {"name": "web", "namespace": "monitoring", "labels": {"release": "kube-prometheus-stack"}},
               "spec": {"selector": {"matchLabels": {"app": "web"}}, "namespaceSelector": {"any": true},
                        "endpoints": [{"port": "http-metrics"}]}}),
    );
    server.apply(
        Kind::PodMonitor,
        json!({"metadata": {"name": "db", "namespace": "shop", "labels": {"release": "kube-prometheus-stack"}},
               "spec": {"selector": {"matchLabels": {"app": "db"}}, "podMetricsEndpoints": [{"port": "metrics"}]}}),
    );
}

fn config() -> KubernetesConfig {
    let yaml = "
enabled: true
debounce: 100ms
service_monitor_selector: {match_labels: {release: kube-prometheus-stack}}
pod_monitor_selector: {match_labels: {release: kube-prometheus-stack}}
";
    serde_yaml::from_str(yaml).unwrap()
}

async fn start(server: &TestApiServer) -> (KubernetesDiscovery, CancellationToken) {
    let shutdown = CancellationToken::new();
    let d = KubernetesDiscovery::start(
        server.client(),
        config(),
        AgentPlacement {
            node_name: NODE.into(),
            namespace: "monitoring".into(),
        },
        shutdown.clone(),
    )
    .await;
    (d, shutdown)
}

/// `(job, address, pod)` of every candidate target the group's own keep rules would not
/// obviously drop: selected by the service/pod selector through the meta labels.
fn targets(groups: &[ScrapeGroup]) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for g in groups {
        for t in &g.targets {
            let port_name = t
                .get("__meta_kubernetes_endpoint_port_name")
                .or(t.get("__meta_kubernetes_pod_container_port_name"));
            let wanted_app = if g.job_name.starts_with("serviceMonitor") {
                "web"
            } else {
                "db"
            };
            let app = t
                .get("__meta_kubernetes_service_label_app")
                .or(t.get("__meta_kubernetes_pod_label_app"));
            let wanted_port = if g.job_name.starts_with("serviceMonitor") {
                "http-metrics"
            } else {
                "metrics"
            };
            if app == Some(wanted_app) && port_name == Some(wanted_port) {
                out.insert((
                    g.job_name.clone(),
                    t.get("__address__").unwrap().to_string(),
                    t.get("__meta_kubernetes_pod_name")
                        .unwrap_or_default()
                        .to_string(),
                ));
            }
        }
    }
    out
}

async fn wait_for(
    rx: &mut watch::Receiver<Arc<Vec<ScrapeGroup>>>,
    want: &BTreeSet<(String, String, String)>,
) -> Duration {
    let start = std::time::Instant::now();
    let deadline = Duration::from_secs(10);
    loop {
        if &targets(&rx.borrow_and_update()) == want {
            return start.elapsed();
        }
        let left = deadline.saturating_sub(start.elapsed());
        if tokio::time::timeout(left, rx.changed()).await.is_err() {
            panic!(
                "targets did not become {want:?} within {deadline:?}; now {:?}",
                targets(&rx.borrow())
            );
        }
    }
}

fn t(job: &str, addr: &str, pod: &str) -> (String, String, String) {
    (job.into(), addr.into(), pod.into())
}

const SM: &str = "serviceMonitor/monitoring/web/0";
const PM: &str = "podMonitor/shop/db/0";

#[tokio::test]
async fn targets_are_this_nodes_pods_selected_by_monitors() {
    let server = TestApiServer::start().await.unwrap();
    seed(&server);
    let (d, shutdown) = start(&server).await;
    let mut rx = d.groups();
    wait_for(
        &mut rx,
        &BTreeSet::from([
            t(SM, "10.0.0.11:9090", "web-1"),
            t(PM, "10.0.0.13:9090", "db-1"),
        ]),
    )
    .await;
    // No target of another node, in any group, even before relabeling.
    for g in rx.borrow().iter() {
        assert!(
            g.targets
                .iter()
                .all(|t| t.get("__meta_kubernetes_pod_node_name") == Some(NODE))
        );
    }
    // Pod metadata for container metrics comes from the same pod watch.
    let m = d.metadata().container("web-1-cid").unwrap();
    assert_eq!(
        (
            m.namespace.as_str(),
            m.pod.as_str(),
            m.container.as_str(),
            m.image.as_str()
        ),
        ("shop", "web-1", "main", "docker.io/library/web:1")
    );
    assert!(
        d.metadata().container("web-2-cid").is_none(),
        "pods of other nodes are not watched"
    );
    assert_eq!(d.metadata().pod("uid-db-1").unwrap().pod, "db-1");
    shutdown.cancel();
    d.wait().await;
}

#[tokio::test]
async fn pod_service_and_monitor_changes_update_targets_within_seconds() {
    let server = TestApiServer::start().await.unwrap();
    seed(&server);
    let (d, shutdown) = start(&server).await;
    let mut rx = d.groups();
    let mut want = BTreeSet::from([
        t(SM, "10.0.0.11:9090", "web-1"),
        t(PM, "10.0.0.13:9090", "db-1"),
    ]);
    wait_for(&mut rx, &want).await;

    // A new pod on this node.
    server.apply(Kind::Pod, pod("web-3", NODE, "10.0.0.14", "web"));
    want.insert(t(SM, "10.0.0.14:9090", "web-3"));
    let took = wait_for(&mut rx, &want).await;
    assert!(took < Duration::from_secs(3), "{took:?}");

    // Relabeled so the service no longer selects it.
    server.apply(Kind::Pod, pod("web-3", NODE, "10.0.0.14", "other"));
    want.remove(&t(SM, "10.0.0.14:9090", "web-3"));
    wait_for(&mut rx, &want).await;

    // A deleted pod.
    server.delete(Kind::Pod, "shop", "db-1");
    want.remove(&t(PM, "10.0.0.13:9090", "db-1"));
    wait_for(&mut rx, &want).await;

    // A deleted service.
    server.delete(Kind::Service, "shop", "web");
    want.clear();
    wait_for(&mut rx, &want).await;
    server.apply(Kind::Service, service("web", "web"));
    want.insert(t(SM, "10.0.0.11:9090", "web-1"));
    wait_for(&mut rx, &want).await;

    // A monitor whose labels stop matching the selector, then one deleted.
    server.apply(
        Kind::ServiceMonitor,
        json!({"metadata": {"name": "web", "namespace": "monitoring", "labels": {"release": "other"}},
               "spec": {"selector": {"matchLabels": {"app": "web"}}, "namespaceSelector": {"any": true},
                        "endpoints": [{"port": "http-metrics"}]}}),
    );
    want.clear();
    wait_for(&mut rx, &want).await;
    server.apply(Kind::Pod, pod("db-1", NODE, "10.0.0.13", "db"));
    want.insert(t(PM, "10.0.0.13:9090", "db-1"));
    wait_for(&mut rx, &want).await;
    server.delete(Kind::PodMonitor, "shop", "db");
    want.clear();
    wait_for(&mut rx, &want).await;
    assert!(rx.borrow().is_empty());
    shutdown.cancel();
    d.wait().await;
}

#[tokio::test]
async fn a_restart_with_compacted_history_relists_and_loses_nothing() {
    let server = TestApiServer::start().await.unwrap();
    seed(&server);
    let (d, shutdown) = start(&server).await;
    let mut rx = d.groups();
    let mut want = BTreeSet::from([
        t(SM, "10.0.0.11:9090", "web-1"),
        t(PM, "10.0.0.13:9090", "db-1"),
    ]);
    wait_for(&mut rx, &want).await;
    let before = server.traffic();

    // While the server is down, the cluster changes and its history is compacted.
    server.set_down(true);
    server.apply(Kind::Pod, pod("web-4", NODE, "10.0.0.15", "web"));
    server.delete(Kind::Pod, "shop", "db-1");
    server.compact();
    server.set_down(false);
    want.insert(t(SM, "10.0.0.15:9090", "web-4"));
    want.remove(&t(PM, "10.0.0.13:9090", "db-1"));
    wait_for(&mut rx, &want).await;
    let after = server.traffic();
    assert!(
        after.expired > before.expired,
        "watches resumed from a compacted version got 410"
    );
    assert!(after.list_requests > before.list_requests, "and relisted");
    assert!(d.metadata().container("web-4-cid").is_some());
    assert!(d.metadata().container("db-1-cid").is_none());
    shutdown.cancel();
    d.wait().await;
}

#[tokio::test]
async fn a_rejected_monitor_is_not_used_and_fixing_it_brings_it_back() {
    let server = TestApiServer::start().await.unwrap();
    seed(&server);
    server.apply(
        Kind::PodMonitor,
        json!({"metadata": {"name": "db", "namespace": "shop", "labels": {"release": "kube-prometheus-stack"}},
               "spec": {"selector": {"matchLabels": {"app": "db"}},
                        "podMetricsEndpoints": [{"port": "metrics", "bearerTokenSecret": {"name": "db-token", "key": "token"}}]}}),
    );
    let (d, shutdown) = start(&server).await;
    let mut rx = d.groups();
    let mut want = BTreeSet::from([t(SM, "10.0.0.11:9090", "web-1")]);
    wait_for(&mut rx, &want).await;
    // The referenced secret appears: the monitor is valid now (on-demand secret watch).
    server.apply(
        Kind::Secret,
        json!({"metadata": {"name": "db-token", "namespace": "shop"}, "data": {"token": "czNjcmV0"}}),
    );
    want.insert(t(PM, "10.0.0.13:9090", "db-1"));
    wait_for(&mut rx, &want).await;
    let g = rx
        .borrow()
        .iter()
        .find(|g| g.job_name == PM)
        .cloned()
        .unwrap();
    assert_eq!(g.http.authorization.unwrap().credentials.0, "s3cret");
    shutdown.cancel();
    d.wait().await;
}

#[tokio::test]
async fn a_selectorless_service_uses_its_endpoints_watched_by_name() {
    let server = TestApiServer::start().await.unwrap();
    seed(&server);
    server.apply(
        Kind::Namespace,
        json!({"metadata": {"name": "kube-system"}}),
    );
    let labels = json!({"k8s-app": "kubelet"});
    server.apply(
        Kind::Service,
        json!({"metadata": {"name": "kubelet", "namespace": "kube-system", "labels": labels},
               "spec": {"clusterIP": "None", "ports": [{"name": "https-metrics", "port": 10250}]}}),
    );
    let endpoints = |nodes: &[(&str, &str)]| {
        let addresses: Vec<Value> = nodes
            .iter()
            .map(|(ip, node)| json!({"ip": ip, "nodeName": node, "targetRef": {"kind": "Node", "name": node}}))
            .collect();
        json!({"metadata": {"name": "kubelet", "namespace": "kube-system", "labels": labels},
               "subsets": [{"addresses": addresses, "ports": [{"name": "https-metrics", "port": 10250}]}]})
    };
    server.apply(Kind::Endpoints, endpoints(&[("192.168.0.2", "node-b")]));
    let (d, shutdown) = start(&server).await;
    let mut rx = d.groups();
    let base = BTreeSet::from([
        t(SM, "10.0.0.11:9090", "web-1"),
        t(PM, "10.0.0.13:9090", "db-1"),
    ]);
    wait_for(&mut rx, &base).await;

    server.apply(
        Kind::ServiceMonitor,
        json!({"metadata": {"name": "kubelet", "namespace": "monitoring", "labels": {"release": "kube-prometheus-stack"}},
               "spec": {"selector": {"matchLabels": {"k8s-app": "kubelet"}}, "namespaceSelector": {"matchNames": ["kube-system"]},
                        "jobLabel": "k8s-app", "endpoints": [{"port": "https-metrics", "scheme": "https"}]}}),
    );
    let kubelet_targets = |groups: &[ScrapeGroup]| -> Vec<String> {
        groups
            .iter()
            .filter(|g| g.job_name == "serviceMonitor/monitoring/kubelet/0")
            .flat_map(|g| {
                g.targets
                    .iter()
                    .map(|t| t.get("__address__").unwrap().to_string())
            })
            .collect()
    };
    // Only node-b is in the Endpoints yet: nothing on this node.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(kubelet_targets(&rx.borrow_and_update()).is_empty());
    // This node joins: its kubelet address appears through the by-name Endpoints watch.
    server.apply(
        Kind::Endpoints,
        endpoints(&[("192.168.0.2", "node-b"), ("192.168.0.1", NODE)]),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if kubelet_targets(&rx.borrow_and_update()) == ["192.168.0.1:10250"] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            kubelet_targets(&rx.borrow())
        );
        let _ = tokio::time::timeout(Duration::from_secs(1), rx.changed()).await;
    }
    shutdown.cancel();
    d.wait().await;
}
