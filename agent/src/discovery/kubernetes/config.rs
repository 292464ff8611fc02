//! The `kubernetes` config section: whether to talk to an API server, and which monitors to
//! use, the way a Prometheus (or PrometheusAgent) resource selects them (spec §1.8).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::Duration;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesConfig {
    /// Watch the Kubernetes API (pods on this node, services, namespaces, monitors). Off by
    /// default so a host outside a cluster never tries to reach an API server.
    pub enabled: bool,
    /// Which ServiceMonitors to use, by the monitors' labels (a Prometheus CR's
    /// `serviceMonitorSelector`). `null` selects none; `{}` selects all.
    pub service_monitor_selector: Option<LabelSelectorConfig>,
    /// Which namespaces ServiceMonitors are read from, by namespace labels. `null`: only the
    /// agent's own namespace (`POD_NAMESPACE`); `{}`: all namespaces.
    pub service_monitor_namespace_selector: Option<LabelSelectorConfig>,
    /// Which PodMonitors to use, by the monitors' labels (`podMonitorSelector`).
    pub pod_monitor_selector: Option<LabelSelectorConfig>,
    /// Which namespaces PodMonitors are read from (`podMonitorNamespaceSelector`).
    pub pod_monitor_namespace_selector: Option<LabelSelectorConfig>,
    /// Ignore every monitor's own `namespaceSelector`: each monitor then only sees its own
    /// namespace (`ignoreNamespaceSelectors`).
    pub ignore_namespace_selectors: bool,
    /// Scrape interval of endpoints without one (the Prometheus CR's `scrapeInterval`, whose
    /// CRD default is 30s).
    pub scrape_interval: Duration,
    /// Scrape timeout of endpoints without one, capped at the interval (Prometheus's 10s).
    pub scrape_timeout: Duration,
    /// Pod labels copied to every target of every monitor, after the monitors' own
    /// `podTargetLabels`.
    pub pod_target_labels: Vec<String>,
    /// If set, every target and sample gets this label with the monitor's namespace
    /// (`enforcedNamespaceLabel`).
    pub enforced_namespace_label: String,
    /// Force `honor_labels: false` on every monitor (`overrideHonorLabels`).
    pub override_honor_labels: bool,
    /// Force `honor_timestamps: false` on every monitor (`overrideHonorTimestamps`).
    pub override_honor_timestamps: bool,
    /// Reject monitors that read files in the agent's container (bearerTokenFile, caFile,
    /// certFile, keyFile), as `arbitraryFSAccessThroughSMs.deny` does.
    pub deny_file_access: bool,
    /// Per-scrape sample limit for monitors without their own (`sampleLimit`); 0 = none.
    pub sample_limit: u64,
    /// Target limit per job for monitors without their own (`targetLimit`); 0 = none.
    pub target_limit: u64,
    /// Label-count limit per series for monitors without their own (`labelLimit`); 0 = none.
    pub label_limit: u64,
    /// Label-name length limit for monitors without their own; 0 = none.
    pub label_name_length_limit: u64,
    /// Label-value length limit for monitors without their own; 0 = none.
    pub label_value_length_limit: u64,
    /// After a change in the cluster, wait this long for more changes before recomputing
    /// targets, so a rollout causes one recomputation, not hundreds.
    pub debounce: Duration,
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            service_monitor_selector: Some(LabelSelectorConfig::default()),
            service_monitor_namespace_selector: Some(LabelSelectorConfig::default()),
            pod_monitor_selector: Some(LabelSelectorConfig::default()),
            pod_monitor_namespace_selector: Some(LabelSelectorConfig::default()),
            ignore_namespace_selectors: false,
            scrape_interval: Duration::from_secs(30),
            scrape_timeout: Duration::from_secs(10),
            pod_target_labels: Vec::new(),
            enforced_namespace_label: String::new(),
            override_honor_labels: false,
            override_honor_timestamps: false,
            deny_file_access: false,
            sample_limit: 0,
            target_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            debounce: Duration::from_secs(1),
        }
    }
}

/// A Kubernetes label selector in config form.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LabelSelectorConfig {
    /// Labels that must have exactly these values, e.g. `release: kube-prometheus-stack`.
    pub match_labels: BTreeMap<String, String>,
    /// Set-based requirements, all of which must hold.
    pub match_expressions: Vec<LabelSelectorRequirementConfig>,
}

/// One set-based requirement of a [`LabelSelectorConfig`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelSelectorRequirementConfig {
    /// Label name.
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    /// Values for `In`/`NotIn`; empty for `Exists`/`DoesNotExist`.
    #[serde(default)]
    pub values: Vec<String>,
}

impl LabelSelectorConfig {
    /// The same selector in API form.
    pub fn to_label_selector(
        &self,
    ) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
            LabelSelector, LabelSelectorRequirement,
        };
        LabelSelector {
            match_labels: (!self.match_labels.is_empty()).then(|| self.match_labels.clone()),
            match_expressions: (!self.match_expressions.is_empty()).then(|| {
                self.match_expressions
                    .iter()
                    .map(|e| LabelSelectorRequirement {
                        key: e.key.clone(),
                        operator: e.operator.clone(),
                        values: (!e.values.is_empty()).then(|| e.values.clone()),
                    })
                    .collect()
            }),
        }
    }
}

impl KubernetesConfig {
    /// Problems types cannot express, as `(key path, message)`.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (name, sel) in [
            ("service_monitor_selector", &self.service_monitor_selector),
            (
                "service_monitor_namespace_selector",
                &self.service_monitor_namespace_selector,
            ),
            ("pod_monitor_selector", &self.pod_monitor_selector),
            (
                "pod_monitor_namespace_selector",
                &self.pod_monitor_namespace_selector,
            ),
        ] {
            let Some(sel) = sel else { continue };
            for (i, e) in sel.match_expressions.iter().enumerate() {
                let ok = match e.operator.as_str() {
                    "In" | "NotIn" => !e.values.is_empty(),
                    "Exists" | "DoesNotExist" => e.values.is_empty(),
                    _ => false,
                };
                if !ok {
                    out.push((
                        format!("kubernetes.{name}.match_expressions[{i}]"),
                        format!(
                            "operator {:?} with {} value(s): In/NotIn need values, Exists/DoesNotExist take none",
                            e.operator,
                            e.values.len()
                        ),
                    ));
                }
            }
        }
        if self.scrape_timeout > self.scrape_interval {
            out.push((
                "kubernetes.scrape_timeout".into(),
                format!(
                    "{} is greater than scrape_interval {}",
                    self.scrape_timeout, self.scrape_interval
                ),
            ));
        }
        out
    }
}
