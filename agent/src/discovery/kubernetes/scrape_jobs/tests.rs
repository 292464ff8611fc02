use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::discovery::kubernetes::targets::{ClusterState, Environment, discover};
use crate::discovery::kubernetes::validation::{BasicAuthValues, NoSecrets, SecretValue};
use crate::discovery::kubernetes::{KubernetesConfig, PodMonitor, ServiceMonitor};
use crate::model::Labels;
use crate::relabel::RelabelConfig;

fn obj<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Arc<T> {
    Arc::new(serde_json::from_value(v).unwrap())
}

fn cluster(service_monitor: serde_json::Value) -> ClusterState {
    ClusterState {
        namespaces: vec![obj(json!({"metadata": {"name": "shop"}}))],
        pods: vec![obj(json!({
            "metadata": {"name": "web-1", "namespace": "shop", "uid": "u1", "labels": {"app": "web"}},
            "spec": {"nodeName": "node-a", "containers": [
                {"name": "web", "image": "web:1", "ports": [{"name": "metrics", "containerPort": 9090}]}]},
            "status": {"phase": "Running", "podIP": "10.0.0.1"}
        }))],
        services: vec![obj(json!({
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http-metrics", "port": 80, "targetPort": "metrics"}]}
        }))],
        service_monitors: vec![obj::<ServiceMonitor>(service_monitor)],
        pod_monitors: vec![obj::<PodMonitor>(json!({
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "podMetricsEndpoints": [{"port": "metrics"}]}
        }))],
        ..ClusterState::default()
    }
}

fn web_monitor() -> serde_json::Value {
    json!({
        "metadata": {"name": "web", "namespace": "shop", "labels": {"release": "kube-prometheus-stack"}},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "sampleLimit": 500, "bodySizeLimit": "2MiB",
                 "endpoints": [
                    {"port": "http-metrics", "interval": "15s", "scrapeTimeout": "5s", "path": "/stats",
                     "params": {"format": ["prometheus"]}, "honorLabels": true,
                     "metricRelabelings": [
                        {"action": "keep", "sourceLabels": ["__name__"], "regex": "http_.*"},
                        {"action": "labeldrop", "regex": "pod_template_hash"}]},
                    {"port": "http-metrics", "path": "/other"}]}
    })
}

fn groups(state: &ClusterState) -> Vec<DiscoveredGroup> {
    let config = KubernetesConfig::default();
    let env = Environment {
        config: &config,
        node_name: "node-a",
        own_namespace: "shop",
        secrets: &NoSecrets,
    };
    let d = discover(state, &env);
    assert!(d.rejected.is_empty(), "{:?}", d.rejected);
    d.groups
}

fn builder() -> JobBuilder {
    JobBuilder::new(GlobalConfig::default(), 10 << 20)
}

fn job<'a>(c: &'a Converted, name: &str) -> &'a ScrapeGroup {
    c.groups
        .iter()
        .find(|g| g.job.name == name)
        .unwrap_or_else(|| panic!("no job {name}"))
}

#[test]
fn a_service_monitor_endpoint_becomes_the_scrape_config_the_operator_generates() {
    let c = builder().convert(&groups(&cluster(web_monitor())));
    assert!(c.rejected.is_empty(), "{:?}", c.rejected);
    let g = job(&c, "serviceMonitor/shop/web/0");
    let j = &g.job;
    assert_eq!(j.interval, Duration::from_secs(15));
    assert_eq!(j.timeout, Duration::from_secs(5));
    assert_eq!(j.config.metrics_path, "/stats");
    assert_eq!(j.config.scheme, Scheme::Http);
    assert_eq!(j.config.params["format"], vec!["prometheus".to_string()]);
    assert!(j.config.honor_labels);
    assert!(j.config.honor_timestamps);
    assert_eq!(j.limits.sample_limit, 500);
    assert_eq!(j.limits.body_size_limit, 2 << 20);
    assert_eq!(g.targets.len(), 1, "{:?}", g.targets);
    // metric_relabel_configs are compiled: keep on __name__, then labeldrop.
    let sample = |name: &str| {
        Labels::from_pairs([
            ("__name__", name),
            ("pod_template_hash", "abc"),
            ("code", "200"),
        ])
    };
    assert_eq!(
        j.metric_rules.process(&sample("http_requests_total")),
        Some(Labels::from_pairs([
            ("__name__", "http_requests_total"),
            ("code", "200")
        ]))
    );
    assert_eq!(j.metric_rules.process(&sample("go_goroutines")), None);
    // relabel_configs are the generated rules: the target keeps the operator's labels.
    assert_eq!(j.target_rules.len(), g.job.config.relabel_configs.len());
    let second = job(&c, "serviceMonitor/shop/web/1");
    assert_eq!(second.job.interval, Duration::from_secs(30), "CR default");
    assert_eq!(second.job.timeout, Duration::from_secs(10));
    assert!(!second.job.config.honor_labels);
    assert_eq!(job(&c, "podMonitor/shop/web/0").targets.len(), 1);
}

#[test]
fn resolved_credentials_and_tls_reach_the_job() {
    let mut gs = groups(&cluster(web_monitor()));
    let g = gs
        .iter_mut()
        .find(|g| g.job_name == "serviceMonitor/shop/web/0")
        .unwrap();
    g.scheme = "https".into();
    g.http.basic_auth = Some(BasicAuthValues {
        username: "scraper".into(),
        password: SecretValue("from-a-secret".into()),
    });
    g.http.tls.insecure_skip_verify = true;
    g.http.tls.server_name = Some("web.shop.svc".into());
    let c = builder().convert(&gs);
    let j = &job(&c, "serviceMonitor/shop/web/0").job;
    assert_eq!(j.config.scheme, Scheme::Https);
    assert_eq!(
        j.auth.header().unwrap().unwrap(),
        "Basic c2NyYXBlcjpmcm9tLWEtc2VjcmV0"
    );
    assert!(j.config.tls_config.insecure_skip_verify);
    assert_eq!(j.config.tls_config.server_name, "web.shop.svc");
}

#[test]
fn jobs_are_kept_while_their_settings_do_not_change() {
    let mut b = builder();
    let state = cluster(web_monitor());
    let first = b.convert(&groups(&state));
    let again = b.convert(&groups(&state));
    let name = "serviceMonitor/shop/web/0";
    assert!(Arc::ptr_eq(&job(&first, name).job, &job(&again, name).job));
    let mut changed = web_monitor();
    changed["spec"]["endpoints"][0]["interval"] = json!("20s");
    let after = b.convert(&groups(&cluster(changed)));
    assert!(!Arc::ptr_eq(&job(&first, name).job, &job(&after, name).job));
    assert_eq!(job(&after, name).job.interval, Duration::from_secs(20));
    // The other endpoint did not change.
    let other = "serviceMonitor/shop/web/1";
    assert!(Arc::ptr_eq(
        &job(&first, other).job,
        &job(&after, other).job
    ));
}

#[test]
fn a_monitor_with_one_endpoint_that_does_not_compile_is_left_out_whole() {
    let mut gs = groups(&cluster(web_monitor()));
    let bad: RelabelConfig =
        serde_yaml::from_str("{action: hashmod, source_labels: [a], target_label: b, modulus: 0}")
            .unwrap();
    gs.iter_mut()
        .find(|g| g.job_name == "serviceMonitor/shop/web/1")
        .unwrap()
        .metric_relabel_configs
        .push(bad);
    let c = builder().convert(&gs);
    let names: Vec<&str> = c.groups.iter().map(|g| g.job.name.as_str()).collect();
    assert_eq!(names, ["podMonitor/shop/web/0"]);
    assert_eq!(c.rejected.len(), 1);
    assert_eq!(c.rejected[0].monitor.to_string(), "ServiceMonitor shop/web");
    assert_eq!(c.rejected[0].error.reason(), "invalid_scrape_config");
}

#[test]
fn settings_the_scraper_cannot_honour_reject_the_monitor_instead_of_being_ignored() {
    let mut gs = groups(&cluster(web_monitor()));
    gs.iter_mut()
        .find(|g| g.job_name == "serviceMonitor/shop/web/0")
        .unwrap()
        .scrape_native_histograms = Some(true);
    let c = builder().convert(&gs);
    assert!(
        c.groups
            .iter()
            .all(|g| !g.job.name.starts_with("serviceMonitor/"))
    );
    assert_eq!(c.rejected[0].error.reason(), "unsupported_setting");
    assert!(
        c.rejected[0]
            .error
            .to_string()
            .contains("scrapeNativeHistograms")
    );
}

#[test]
fn protobuf_is_left_out_of_the_protocols_asked_for() {
    let mut monitor = web_monitor();
    monitor["spec"]["scrapeProtocols"] = json!(["PrometheusProto", "PrometheusText0.0.4"]);
    let c = builder().convert(&groups(&cluster(monitor)));
    assert_eq!(
        job(&c, "serviceMonitor/shop/web/0")
            .job
            .config
            .scrape_protocols,
        Some(vec![ScrapeProtocol::PrometheusText0_0_4])
    );
}
