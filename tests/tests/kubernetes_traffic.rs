//! What one agent costs the API server, measured against the test API server with objects
//! shaped like a real cluster's (managed fields included, since the server sends them and
//! the client strips them only after receiving). Prints the per-object costs the deploy
//! README's arithmetic uses; asserts only that the agent relists nothing it need not.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::time::Duration;

use nodemeter::discovery::kubernetes::{AgentPlacement, KubernetesConfig, KubernetesDiscovery};
use nodemeter_tests::apiserver::{Kind, TestApiServer, TrafficSnapshot};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const NODE: &str = "ip-10-0-12-34.eu-west-1.compute.internal";

/// A pod as a Deployment creates it and kubelet reports it, with managed fields.
fn realistic_pod(i: usize) -> Value {
    let name = format!("checkout-api-7d9f8c6b5d-{i:05}");
    let fields = |manager: &str, op: &str, sub: Option<&str>, v: Value| {
        let mut m = json!({"manager": manager, "operation": op, "apiVersion": "v1",
                           "time": "2026-11-20T08:14:02Z", "fieldsType": "FieldsV1", "fieldsV1": v});
        if let Some(s) = sub {
            m["subresource"] = json!(s);
        }
        m
    };
    json!({
        "metadata": {
            "name": name, "generateName": "checkout-api-7d9f8c6b5d-", "namespace": "checkout",
            "uid": format!("6f1c2d3e-4b5a-4c6d-8e9f-{i:012}"),
            "creationTimestamp": "2026-11-20T08:14:02Z",
            "labels": {"app.kubernetes.io/name": "checkout-api", "app.kubernetes.io/instance": "checkout",
                       "app.kubernetes.io/version": "2.14.1", "pod-template-hash": "7d9f8c6b5d"},
            "annotations": {"prometheus.io/scrape": "true", "kubectl.kubernetes.io/restartedAt": "2026-11-20T08:13:55Z"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "checkout-api-7d9f8c6b5d",
                                 "uid": "0b9a8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d", "controller": true, "blockOwnerDeletion": true}],
            "managedFields": [
                fields("kube-controller-manager", "Update", None, json!({"f:metadata": {"f:generateName": {}, "f:labels": {".": {},
                    "f:app.kubernetes.io/instance": {}, "f:app.kubernetes.io/name": {}, "f:app.kubernetes.io/version": {},
                    "f:pod-template-hash": {}}, "f:ownerReferences": {".": {}, "k:{\"uid\":\"0b9a8c7d\"}": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"checkout-api\"}": {".": {}, "f:env": {".": {},
                    "k:{\"name\":\"LOG_LEVEL\"}": {".": {}, "f:name": {}, "f:value": {}}}, "f:image": {}, "f:imagePullPolicy": {},
                    "f:name": {}, "f:ports": {".": {}, "k:{\"containerPort\":8080,\"protocol\":\"TCP\"}": {".": {},
                    "f:containerPort": {}, "f:name": {}, "f:protocol": {}}}, "f:resources": {".": {}, "f:limits": {},
                    "f:requests": {}}}}, "f:dnsPolicy": {}, "f:restartPolicy": {}, "f:schedulerName": {},
                    "f:securityContext": {}, "f:terminationGracePeriodSeconds": {}}})),
                fields("kubelet", "Update", Some("status"), json!({"f:status": {"f:conditions": {
                    "k:{\"type\":\"ContainersReady\"}": {".": {}, "f:lastProbeTime": {}, "f:lastTransitionTime": {}, "f:status": {}, "f:type": {}},
                    "k:{\"type\":\"Initialized\"}": {".": {}, "f:lastProbeTime": {}, "f:lastTransitionTime": {}, "f:status": {}, "f:type": {}},
                    "k:{\"type\":\"PodReadyToStartContainers\"}": {".": {}, "f:lastProbeTime": {}, "f:lastTransitionTime": {}, "f:status": {}, "f:type": {}},
                    "k:{\"type\":\"Ready\"}": {".": {}, "f:lastProbeTime": {}, "f:lastTransitionTime": {}, "f:status": {}, "f:type": {}}},
                    "f:containerStatuses": {}, "f:hostIP": {}, "f:hostIPs": {}, "f:phase": {}, "f:podIP": {}, "f:podIPs": {
                    ".": {}, "k:{\"ip\":\"10.42.3.17\"}": {".": {}, "f:ip": {}}}, "f:startTime": {}}}))
            ]
        },
        "spec": {
            "nodeName": NODE, "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler",
            "serviceAccountName": "checkout-api", "serviceAccount": "checkout-api", "terminationGracePeriodSeconds": 30,
            "enableServiceLinks": true, "preemptionPolicy": "PreemptLowerPriority", "priority": 0, "securityContext": {},
            "containers": [{
                "name": "checkout-api", "image": "registry.example.com/shop/checkout-api:2.14.1", "imagePullPolicy": "IfNotPresent",
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}, {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}],
                "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}],
                "resources": {"limits": {"memory": "512Mi"}, "requests": {"cpu": "250m", "memory": "256Mi"}},
                "readinessProbe": {"httpGet": {"path": "/ready", "port": "http", "scheme": "HTTP"}, "periodSeconds": 10,
                                   "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
                "volumeMounts": [{"name": "kube-api-access-x7k2p", "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}],
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
            "volumes": [{"name": "kube-api-access-x7k2p", "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}]
        },
        "status": {
            "phase": "Running", "qosClass": "Burstable", "hostIP": "10.0.12.34", "hostIPs": [{"ip": "10.0.12.34"}],
            "podIP": format!("10.42.3.{}", i % 250), "podIPs": [{"ip": format!("10.42.3.{}", i % 250)}], "startTime": "2026-11-20T08:14:02Z",
            "conditions": [
                {"type": "PodReadyToStartContainers", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2026-11-20T08:14:04Z"},
                {"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2026-11-20T08:14:02Z"},
                {"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2026-11-20T08:14:11Z"},
                {"type": "ContainersReady", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2026-11-20T08:14:11Z"},
                {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2026-11-20T08:14:02Z"}],
            "containerStatuses": [{"name": "checkout-api", "ready": true, "started": true, "restartCount": 0,
                "image": "registry.example.com/shop/checkout-api:2.14.1",
                "imageID": "registry.example.com/shop/checkout-api@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                "containerID": format!("containerd://{:064x}", i),
                "state": {"running": {"startedAt": "2026-11-20T08:14:04Z"}}, "lastState": {},
                "volumeMounts": [{"name": "kube-api-access-x7k2p", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true, "recursiveReadOnly": "Disabled"}]}]
        }
    })
}

fn realistic_service(i: usize) -> Value {
    json!({
        "metadata": {"name": format!("svc-{i:05}"), "namespace": format!("team-{}", i % 500),
                     "uid": format!("5e4d3c2b-1a09-4f8e-9d7c-{i:012}"), "creationTimestamp": "2026-10-01T10:00:00Z",
                     "labels": {"app.kubernetes.io/name": format!("svc-{i:05}"), "app.kubernetes.io/instance": "prod",
                                "app.kubernetes.io/managed-by": "Helm", "helm.sh/chart": "app-1.4.2"},
                     "annotations": {"meta.helm.sh/release-name": "prod", "meta.helm.sh/release-namespace": format!("team-{}", i % 500)},
                     "managedFields": [{"manager": "helm", "operation": "Update", "apiVersion": "v1", "time": "2026-10-01T10:00:00Z",
                        "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:meta.helm.sh/release-name": {},
                        "f:meta.helm.sh/release-namespace": {}}, "f:labels": {".": {}, "f:app.kubernetes.io/instance": {},
                        "f:app.kubernetes.io/managed-by": {}, "f:app.kubernetes.io/name": {}, "f:helm.sh/chart": {}}},
                        "f:spec": {"f:internalTrafficPolicy": {}, "f:ports": {".": {}, "k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {},
                        "f:name": {}, "f:port": {}, "f:protocol": {}, "f:targetPort": {}}}, "f:selector": {}, "f:sessionAffinity": {}, "f:type": {}}}}]},
        "spec": {"type": "ClusterIP", "clusterIP": format!("10.96.{}.{}", i / 250, i % 250), "clusterIPs": [format!("10.96.{}.{}", i / 250, i % 250)],
                 "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster", "sessionAffinity": "None",
                 "selector": {"app.kubernetes.io/name": format!("svc-{i:05}"), "app.kubernetes.io/instance": "prod"},
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"},
                           {"name": "metrics", "port": 9090, "protocol": "TCP", "targetPort": "metrics"}]},
        "status": {"loadBalancer": {}}
    })
}

fn realistic_namespace(i: usize) -> Value {
    json!({"metadata": {"name": format!("team-{i}"), "uid": format!("7a6b5c4d-3e2f-4a1b-9c8d-{i:012}"),
           "creationTimestamp": "2026-09-01T00:00:00Z",
           "labels": {"kubernetes.io/metadata.name": format!("team-{i}"), "team": format!("team-{i}")},
           "managedFields": [{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1",
                              "time": "2026-09-01T00:00:00Z", "fieldsType": "FieldsV1",
                              "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:kubernetes.io/metadata.name": {}, "f:team": {}}}}}]},
           "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
}

fn realistic_service_monitor(i: usize) -> Value {
    json!({"metadata": {"name": format!("svc-{i:05}"), "namespace": format!("team-{}", i % 500),
           "labels": {"release": "kube-prometheus-stack", "app.kubernetes.io/managed-by": "Helm"},
           "annotations": {"meta.helm.sh/release-name": "prod"}},
           "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": format!("svc-{i:05}")}},
                    "endpoints": [{"port": "metrics", "interval": "30s", "path": "/metrics",
                                   "metricRelabelings": [{"action": "drop", "sourceLabels": ["__name__"], "regex": "go_gc_.*"}]}]}})
}

fn delta(a: TrafficSnapshot, b: TrafficSnapshot) -> TrafficSnapshot {
    TrafficSnapshot {
        list_requests: b.list_requests - a.list_requests,
        list_bytes: b.list_bytes - a.list_bytes,
        watch_requests: b.watch_requests - a.watch_requests,
        watch_events: b.watch_events - a.watch_events,
        watch_bytes: b.watch_bytes - a.watch_bytes,
        bookmarks: b.bookmarks - a.bookmarks,
        expired: b.expired - a.expired,
    }
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

#[tokio::test]
async fn per_object_costs_of_one_agent() {
    let server = TestApiServer::start_with_bookmarks(Duration::from_secs(3600))
        .await
        .unwrap();
    const PODS: usize = 110;
    // Only the pods of this node are measured: the field selector keeps other nodes' pods
    // off the wire entirely (the server filters them).
    for i in 0..PODS {
        server.apply(Kind::Pod, realistic_pod(i));
    }
    let other = realistic_pod(999);
    let mut other = other;
    other["spec"]["nodeName"] = json!("another-node");
    server.apply(Kind::Pod, other);
    const SERVICES: usize = 1000;
    for i in 0..SERVICES {
        server.apply(Kind::Service, realistic_service(i));
    }
    const NAMESPACES: usize = 500;
    for i in 0..NAMESPACES {
        server.apply(Kind::Namespace, realistic_namespace(i));
    }
    const MONITORS: usize = 200;
    for i in 0..MONITORS {
        server.apply(Kind::ServiceMonitor, realistic_service_monitor(i));
    }

    let t0 = server.traffic();
    let shutdown = CancellationToken::new();
    let cfg: KubernetesConfig = serde_yaml::from_str("enabled: true\ndebounce: 50ms\n").unwrap();
    let d = KubernetesDiscovery::start(
        server.client(),
        cfg,
        AgentPlacement {
            node_name: NODE.into(),
            namespace: "nodemeter".into(),
        },
        shutdown.clone(),
    )
    .await;
    settle().await;
    let t1 = server.traffic();
    let initial = delta(t0, t1);
    // One list per watched resource, services in two pages of 500 (the client's page size).
    assert_eq!(initial.list_requests, 6, "{initial:?}");

    // Per-kind list sizes.
    let pod_bytes = serde_json::to_string(&realistic_pod(0)).unwrap().len();
    let svc_bytes = serde_json::to_string(&realistic_service(0)).unwrap().len();
    let ns_bytes = serde_json::to_string(&realistic_namespace(0))
        .unwrap()
        .len();
    let sm_bytes = serde_json::to_string(&realistic_service_monitor(0))
        .unwrap()
        .len();

    // One pod status update → one MODIFIED event.
    let mut p = realistic_pod(7);
    p["status"]["conditions"][2]["status"] = json!("False");
    server.apply(Kind::Pod, p);
    settle().await;
    let t2 = server.traffic();
    let pod_event = delta(t1, t2);
    assert_eq!(pod_event.watch_events, 1, "{pod_event:?}");

    // A pod of another node changes: nothing reaches this agent.
    let mut other = realistic_pod(999);
    other["spec"]["nodeName"] = json!("another-node");
    other["status"]["phase"] = json!("Succeeded");
    server.apply(Kind::Pod, other);
    settle().await;
    let t3 = server.traffic();
    assert_eq!(delta(t2, t3).watch_events, 0);

    // Relist of everything after a restart with compacted history.
    server.compact();
    server.restart();
    // Each watch reconnects after its own jittered backoff, gets 410 and relists.
    let mut t4 = server.traffic();
    for _ in 0..300 {
        if delta(t3, t4).list_requests >= initial.list_requests {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        t4 = server.traffic();
    }
    settle().await;
    let t4 = server.traffic();
    let relist = delta(t3, t4);

    eprintln!(
        "per-object JSON bytes: pod {pod_bytes}, service {svc_bytes}, namespace {ns_bytes}, servicemonitor {sm_bytes}"
    );
    eprintln!(
        "initial lists: {} requests, {} bytes ({} pods, {} services, {} namespaces, {} monitors)",
        initial.list_requests, initial.list_bytes, PODS, SERVICES, NAMESPACES, MONITORS
    );
    eprintln!(
        "one pod MODIFIED watch event: {} bytes",
        pod_event.watch_bytes
    );
    eprintln!(
        "relist after 410: {} list requests, {} bytes, {} watch requests, {} expired",
        relist.list_requests, relist.list_bytes, relist.watch_requests, relist.expired
    );
    assert!(
        relist.expired >= 5 && relist.list_requests >= initial.list_requests,
        "{relist:?}"
    );
    assert_eq!(d.metadata().container_count(), PODS);
    shutdown.cancel();
    d.wait().await;
}
