//! The relabel rules prometheus-operator generates for each monitor endpoint, in its exact
//! order (spec §2.1, §2.2), as data.
//!
//! The rules are [`RelabelConfig`]s, the relabel engine's input; a field the operator leaves
//! out has Prometheus's default.

use super::config::KubernetesConfig;
use super::crd::{Endpoint, MonitorRelabelConfig, MonitorSpecCommon, PodMetricsEndpoint};
use super::meta::sanitize;
use super::selector::selector_rules;
use crate::relabel::{Action, RelabelConfig};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// `keep(src, re)`.
pub fn keep(source_labels: Vec<String>, regex: String) -> RelabelConfig {
    RelabelConfig {
        source_labels: Some(source_labels),
        regex: Some(regex),
        action: Action::Keep,
        ..RelabelConfig::default()
    }
}

/// `drop(src, re)`.
pub fn drop(source_labels: Vec<String>, regex: String) -> RelabelConfig {
    RelabelConfig {
        source_labels: Some(source_labels),
        regex: Some(regex),
        action: Action::Drop,
        ..RelabelConfig::default()
    }
}

/// `replace(src=[source], tgt=target)` with the default regex and replacement.
pub fn copy(source: &str, target: &str) -> RelabelConfig {
    RelabelConfig {
        source_labels: Some(vec![source.into()]),
        target_label: target.into(),
        ..RelabelConfig::default()
    }
}

/// `replace(src=[source], re="(.+)", rep="${1}", tgt=target)`: copy only non-empty values.
pub fn copy_non_empty(source: &str, target: &str) -> RelabelConfig {
    RelabelConfig {
        regex: Some("(.+)".into()),
        replacement: "${1}".into(),
        ..copy(source, target)
    }
}

/// `replace(tgt=target, rep=value)` with no sources: always sets `target` to `value`.
pub fn set(target: &str, value: &str) -> RelabelConfig {
    RelabelConfig {
        target_label: target.into(),
        replacement: value.into(),
        ..RelabelConfig::default()
    }
}

/// A monitor's own rules in Prometheus form. Monitors are validated before their rules are
/// generated, so a rule that does not convert cannot occur here; it would be left out.
fn user_rules(rules: &[MonitorRelabelConfig]) -> impl Iterator<Item = RelabelConfig> + '_ {
    rules.iter().filter_map(|r| r.to_prometheus().ok())
}

fn uses_role_selector(common: &MonitorSpecCommon) -> bool {
    common.selector_mechanism.as_deref() == Some("RoleSelector")
}

fn phase_filter() -> RelabelConfig {
    drop(
        vec!["__meta_kubernetes_pod_phase".into()],
        "(Failed|Succeeded)".into(),
    )
}

fn pod_target_label_rules(
    common: &MonitorSpecCommon,
    cfg: &KubernetesConfig,
) -> Vec<RelabelConfig> {
    common
        .pod_target_labels
        .iter()
        .chain(&cfg.pod_target_labels)
        .map(|l| {
            copy_non_empty(
                &format!("__meta_kubernetes_pod_label_{}", sanitize(l)),
                &sanitize(l),
            )
        })
        .collect()
}

fn int_or_string(p: &IntOrString) -> String {
    match p {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

fn target_port_keep(p: &IntOrString) -> Option<RelabelConfig> {
    match p {
        IntOrString::String(s) if !s.is_empty() => Some(keep(
            vec!["__meta_kubernetes_pod_container_port_name".into()],
            s.clone(),
        )),
        IntOrString::Int(n) if *n != 0 => Some(keep(
            vec!["__meta_kubernetes_pod_container_port_number".into()],
            n.to_string(),
        )),
        _ => None,
    }
}

fn enforced_namespace(cfg: &KubernetesConfig, monitor_namespace: &str) -> Option<RelabelConfig> {
    (!cfg.enforced_namespace_label.is_empty())
        .then(|| set(&cfg.enforced_namespace_label, monitor_namespace))
}

/// `relabel_configs` of ServiceMonitor endpoint (role `endpoints`), spec §2.1. The sharding
/// rules are left out: node locality replaces sharding and with one shard they keep all.
pub fn service_monitor_rules(
    common: &MonitorSpecCommon,
    target_labels: &[String],
    ep: &Endpoint,
    monitor_namespace: &str,
    cfg: &KubernetesConfig,
) -> Vec<RelabelConfig> {
    let mut r = vec![copy("job", "__tmp_prometheus_job_name")];
    if !uses_role_selector(common)
        && let Some(sel) = &common.selector
    {
        r.extend(selector_rules(sel, "service"));
    }
    if !ep.port.is_empty() {
        r.push(keep(
            vec!["__meta_kubernetes_endpoint_port_name".into()],
            ep.port.clone(),
        ));
    } else if let Some(rule) = ep.target_port.as_ref().and_then(target_port_keep) {
        r.push(rule);
    }
    let target_ref = || {
        vec![
            "__meta_kubernetes_endpoint_address_target_kind".to_string(),
            "__meta_kubernetes_endpoint_address_target_name".to_string(),
        ]
    };
    for (kind, tgt) in [("Node", "node"), ("Pod", "pod")] {
        r.push(RelabelConfig {
            source_labels: Some(target_ref()),
            separator: ";".into(),
            regex: Some(format!("{kind};(.*)")),
            replacement: "${1}".into(),
            target_label: tgt.into(),
            ..RelabelConfig::default()
        });
    }
    r.push(copy("__meta_kubernetes_namespace", "namespace"));
    r.push(copy("__meta_kubernetes_service_name", "service"));
    r.push(copy("__meta_kubernetes_pod_name", "pod"));
    r.push(copy("__meta_kubernetes_pod_container_name", "container"));
    if ep.common.filter_running.unwrap_or(true) {
        r.push(phase_filter());
    }
    for l in target_labels {
        r.push(copy_non_empty(
            &format!("__meta_kubernetes_service_label_{}", sanitize(l)),
            &sanitize(l),
        ));
    }
    r.extend(pod_target_label_rules(common, cfg));
    r.push(RelabelConfig {
        replacement: "${1}".into(),
        ..copy("__meta_kubernetes_service_name", "job")
    });
    if !common.job_label.is_empty() {
        r.push(copy_non_empty(
            &format!(
                "__meta_kubernetes_service_label_{}",
                sanitize(&common.job_label)
            ),
            "job",
        ));
    }
    if !ep.port.is_empty() {
        r.push(set("endpoint", &ep.port));
    } else if let Some(p) = &ep.target_port {
        let s = int_or_string(p);
        if !s.is_empty() {
            r.push(set("endpoint", &s));
        }
    }
    r.extend(user_rules(&ep.common.relabelings));
    r.extend(enforced_namespace(cfg, monitor_namespace));
    r
}

/// `relabel_configs` of a PodMonitor endpoint (role `pod`), spec §2.2, DaemonSet mode (no
/// sharding rules).
pub fn pod_monitor_rules(
    common: &MonitorSpecCommon,
    ep: &PodMetricsEndpoint,
    monitor_namespace: &str,
    monitor_name: &str,
    cfg: &KubernetesConfig,
) -> Vec<RelabelConfig> {
    let mut r = vec![copy("job", "__tmp_prometheus_job_name")];
    if ep.common.filter_running.unwrap_or(true) {
        r.push(phase_filter());
    }
    if !uses_role_selector(common)
        && let Some(sel) = &common.selector
    {
        r.extend(selector_rules(sel, "pod"));
    }
    let port = ep.port.as_deref().filter(|p| !p.is_empty());
    if let Some(port) = port {
        r.push(keep(
            vec!["__meta_kubernetes_pod_container_port_name".into()],
            port.into(),
        ));
    } else if let Some(n) = ep.port_number.filter(|n| *n != 0) {
        r.push(keep(
            vec!["__meta_kubernetes_pod_container_port_number".into()],
            n.to_string(),
        ));
    } else if let Some(rule) = ep.target_port.as_ref().and_then(target_port_keep) {
        r.push(rule);
    }
    r.push(copy("__meta_kubernetes_namespace", "namespace"));
    r.push(copy("__meta_kubernetes_pod_container_name", "container"));
    r.push(copy("__meta_kubernetes_pod_name", "pod"));
    r.extend(pod_target_label_rules(common, cfg));
    r.push(set("job", &format!("{monitor_namespace}/{monitor_name}")));
    if !common.job_label.is_empty() {
        r.push(copy_non_empty(
            &format!(
                "__meta_kubernetes_pod_label_{}",
                sanitize(&common.job_label)
            ),
            "job",
        ));
    }
    if let Some(port) = port {
        r.push(set("endpoint", port));
    } else if let Some(p) = &ep.target_port {
        let s = int_or_string(p);
        if !s.is_empty() {
            r.push(set("endpoint", &s));
        }
    }
    r.extend(user_rules(&ep.common.relabelings));
    r.extend(enforced_namespace(cfg, monitor_namespace));
    r
}

/// `metric_relabel_configs` (spec §2.5).
pub fn metric_rules(
    ep_metric_relabelings: &[MonitorRelabelConfig],
    monitor_namespace: &str,
    cfg: &KubernetesConfig,
) -> Vec<RelabelConfig> {
    user_rules(ep_metric_relabelings)
        .chain(enforced_namespace(cfg, monitor_namespace))
        .collect()
}

/// Rules as YAML with Prometheus's defaults left out, the way the operator writes them (an
/// explicit `separator: ;` is a default too, so it is left out as well).
#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
pub(crate) fn compact_yaml(rules: &[RelabelConfig]) -> String {
    let mut v = serde_yaml::to_value(rules).unwrap();
    let defaults = [
        ("separator", serde_yaml::Value::from(";")),
        ("target_label", serde_yaml::Value::from("")),
        ("modulus", serde_yaml::Value::from(0)),
        ("replacement", serde_yaml::Value::from("$1")),
    ];
    for rule in v.as_sequence_mut().unwrap() {
        let kept: serde_yaml::Mapping = rule
            .as_mapping()
            .unwrap()
            .iter()
            .filter(|(k, v)| {
                !defaults
                    .iter()
                    .any(|(dk, dv)| k.as_str() == Some(*dk) && *v == dv)
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        *rule = serde_yaml::Value::Mapping(kept);
    }
    serde_yaml::to_string(&v).unwrap()
}
