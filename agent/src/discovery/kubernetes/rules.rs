//! The relabel rules prometheus-operator generates for each monitor endpoint, in its exact
//! order (spec §2.1, §2.2), as data.
//!
//! [`RelabelRule`] has Prometheus's field names and the operator's emission rules (a field
//! left out takes Prometheus's default), so a group's rules serialize to the YAML the operator
//! would write. The relabel engine compiles them.

use serde::{Deserialize, Serialize};

use super::config::KubernetesConfig;
use super::crd::{Endpoint, MonitorSpecCommon, PodMetricsEndpoint, RelabelConfig};
use super::meta::sanitize;
use super::selector::selector_rules;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// One relabel rule in Prometheus config form. `None` means "not written": Prometheus's
/// default applies (separator `;`, regex `(.*)`, replacement `$1`, action `replace`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelRule {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_labels: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub separator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modulus: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

impl RelabelRule {
    pub fn keep(source_labels: Vec<String>, regex: String) -> Self {
        Self {
            source_labels,
            regex: Some(regex),
            action: Some("keep".into()),
            ..Self::default()
        }
    }

    pub fn drop(source_labels: Vec<String>, regex: String) -> Self {
        Self {
            source_labels,
            regex: Some(regex),
            action: Some("drop".into()),
            ..Self::default()
        }
    }

    /// `replace(src=[source], tgt=target)` with the default regex and replacement.
    pub fn copy(source: &str, target: &str) -> Self {
        Self {
            source_labels: vec![source.into()],
            target_label: Some(target.into()),
            action: Some("replace".into()),
            ..Self::default()
        }
    }

    /// `replace(src=[source], re="(.+)", rep="${1}", tgt=target)`: copy only non-empty values.
    pub fn copy_non_empty(source: &str, target: &str) -> Self {
        Self {
            source_labels: vec![source.into()],
            target_label: Some(target.into()),
            regex: Some("(.+)".into()),
            replacement: Some("${1}".into()),
            action: Some("replace".into()),
            ..Self::default()
        }
    }

    /// `replace(tgt=target, rep=value)` with no sources: always sets `target` to `value`.
    pub fn set(target: &str, value: &str) -> Self {
        Self {
            target_label: Some(target.into()),
            replacement: Some(value.into()),
            action: Some("replace".into()),
            ..Self::default()
        }
    }

    /// A monitor's rule as the operator emits it (spec §1.6).
    pub fn from_crd(r: &RelabelConfig) -> Self {
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        Self {
            source_labels: r.source_labels.clone(),
            separator: r.separator.clone(),
            target_label: non_empty(&r.target_label),
            regex: non_empty(&r.regex),
            modulus: (r.modulus != 0).then_some(r.modulus),
            replacement: r.replacement.clone(),
            action: non_empty(&r.action.to_ascii_lowercase()),
        }
    }
}

fn uses_role_selector(common: &MonitorSpecCommon) -> bool {
    common.selector_mechanism.as_deref() == Some("RoleSelector")
}

fn phase_filter() -> RelabelRule {
    RelabelRule::drop(
        vec!["__meta_kubernetes_pod_phase".into()],
        "(Failed|Succeeded)".into(),
    )
}

fn pod_target_label_rules(common: &MonitorSpecCommon, cfg: &KubernetesConfig) -> Vec<RelabelRule> {
    common
        .pod_target_labels
        .iter()
        .chain(&cfg.pod_target_labels)
        .map(|l| {
            RelabelRule::copy_non_empty(
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

fn target_port_keep(p: &IntOrString) -> Option<RelabelRule> {
    match p {
        IntOrString::String(s) if !s.is_empty() => Some(RelabelRule::keep(
            vec!["__meta_kubernetes_pod_container_port_name".into()],
            s.clone(),
        )),
        IntOrString::Int(n) if *n != 0 => Some(RelabelRule::keep(
            vec!["__meta_kubernetes_pod_container_port_number".into()],
            n.to_string(),
        )),
        _ => None,
    }
}

fn enforced_namespace(cfg: &KubernetesConfig, monitor_namespace: &str) -> Option<RelabelRule> {
    (!cfg.enforced_namespace_label.is_empty())
        .then(|| RelabelRule::set(&cfg.enforced_namespace_label, monitor_namespace))
}

/// `relabel_configs` of ServiceMonitor endpoint (role `endpoints`), spec §2.1. The sharding
/// rules are left out: node locality replaces sharding and with one shard they keep all.
pub fn service_monitor_rules(
    common: &MonitorSpecCommon,
    target_labels: &[String],
    ep: &Endpoint,
    monitor_namespace: &str,
    cfg: &KubernetesConfig,
) -> Vec<RelabelRule> {
    let mut r = vec![RelabelRule::copy("job", "__tmp_prometheus_job_name")];
    if !uses_role_selector(common)
        && let Some(sel) = &common.selector
    {
        r.extend(selector_rules(sel, "service"));
    }
    if !ep.port.is_empty() {
        r.push(RelabelRule::keep(
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
        r.push(RelabelRule {
            source_labels: target_ref(),
            separator: Some(";".into()),
            regex: Some(format!("{kind};(.*)")),
            replacement: Some("${1}".into()),
            target_label: Some(tgt.into()),
            action: Some("replace".into()),
            ..RelabelRule::default()
        });
    }
    r.push(RelabelRule::copy(
        "__meta_kubernetes_namespace",
        "namespace",
    ));
    r.push(RelabelRule::copy(
        "__meta_kubernetes_service_name",
        "service",
    ));
    r.push(RelabelRule::copy("__meta_kubernetes_pod_name", "pod"));
    r.push(RelabelRule::copy(
        "__meta_kubernetes_pod_container_name",
        "container",
    ));
    if ep.common.filter_running.unwrap_or(true) {
        r.push(phase_filter());
    }
    for l in target_labels {
        r.push(RelabelRule::copy_non_empty(
            &format!("__meta_kubernetes_service_label_{}", sanitize(l)),
            &sanitize(l),
        ));
    }
    r.extend(pod_target_label_rules(common, cfg));
    r.push(RelabelRule {
        replacement: Some("${1}".into()),
        ..RelabelRule::copy("__meta_kubernetes_service_name", "job")
    });
    if !common.job_label.is_empty() {
        r.push(RelabelRule::copy_non_empty(
            &format!(
                "__meta_kubernetes_service_label_{}",
                sanitize(&common.job_label)
            ),
            "job",
        ));
    }
    if !ep.port.is_empty() {
        r.push(RelabelRule::set("endpoint", &ep.port));
    } else if let Some(p) = &ep.target_port {
        let s = int_or_string(p);
        if !s.is_empty() {
            r.push(RelabelRule::set("endpoint", &s));
        }
    }
    r.extend(ep.common.relabelings.iter().map(RelabelRule::from_crd));
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
) -> Vec<RelabelRule> {
    let mut r = vec![RelabelRule::copy("job", "__tmp_prometheus_job_name")];
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
        r.push(RelabelRule::keep(
            vec!["__meta_kubernetes_pod_container_port_name".into()],
            port.into(),
        ));
    } else if let Some(n) = ep.port_number.filter(|n| *n != 0) {
        r.push(RelabelRule::keep(
            vec!["__meta_kubernetes_pod_container_port_number".into()],
            n.to_string(),
        ));
    } else if let Some(rule) = ep.target_port.as_ref().and_then(target_port_keep) {
        r.push(rule);
    }
    r.push(RelabelRule::copy(
        "__meta_kubernetes_namespace",
        "namespace",
    ));
    r.push(RelabelRule::copy(
        "__meta_kubernetes_pod_container_name",
        "container",
    ));
    r.push(RelabelRule::copy("__meta_kubernetes_pod_name", "pod"));
    r.extend(pod_target_label_rules(common, cfg));
    r.push(RelabelRule::set(
        "job",
        &format!("{monitor_namespace}/{monitor_name}"),
    ));
    if !common.job_label.is_empty() {
        r.push(RelabelRule::copy_non_empty(
            &format!(
                "__meta_kubernetes_pod_label_{}",
                sanitize(&common.job_label)
            ),
            "job",
        ));
    }
    if let Some(port) = port {
        r.push(RelabelRule::set("endpoint", port));
    } else if let Some(p) = &ep.target_port {
        let s = int_or_string(p);
        if !s.is_empty() {
            r.push(RelabelRule::set("endpoint", &s));
        }
    }
    r.extend(ep.common.relabelings.iter().map(RelabelRule::from_crd));
    r.extend(enforced_namespace(cfg, monitor_namespace));
    r
}

/// `metric_relabel_configs` (spec §2.5).
pub fn metric_rules(
    ep_metric_relabelings: &[RelabelConfig],
    monitor_namespace: &str,
    cfg: &KubernetesConfig,
) -> Vec<RelabelRule> {
    ep_metric_relabelings
        .iter()
        .map(RelabelRule::from_crd)
        .chain(enforced_namespace(cfg, monitor_namespace))
        .collect()
}
