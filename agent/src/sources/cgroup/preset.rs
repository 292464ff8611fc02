//! Relabel rules of the local source: an optional preset followed by the user's
//! `metric_relabel_configs`, compiled by the relabel engine.
//!
//! `kube-prometheus-stack` is the chart's default `cAdvisorMetricRelabelings`, shipped as
//! Prometheus relabel configs (`kps_cadvisor_relabelings.yaml`). The emitter applies the rules
//! once per series when its labels are first built, so they cost nothing per sample.

use std::sync::Arc;

use super::RelabelPreset;
use super::emit::RelabelFn;
use crate::model::Labels;
use crate::relabel::{RelabelConfig, RelabelError, Rules};

/// The chart's eight drop rules as relabel-config YAML.
pub const KUBE_PROMETHEUS_STACK_YAML: &str = include_str!("kps_cadvisor_relabelings.yaml");

#[derive(Debug, thiserror::Error)]
pub enum PresetError {
    #[error("preset {preset}: {source}")]
    Parse {
        preset: &'static str,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("metric_relabel_configs: {0}")]
    Rules(#[from] RelabelError),
}

/// Relabel configs of `preset`.
pub fn preset_configs(preset: RelabelPreset) -> Result<Vec<RelabelConfig>, PresetError> {
    match preset {
        RelabelPreset::None => Ok(Vec::new()),
        RelabelPreset::KubePrometheusStack => serde_yaml::from_str(KUBE_PROMETHEUS_STACK_YAML)
            .map_err(|source| PresetError::Parse {
                preset: "kube-prometheus-stack",
                source,
            }),
    }
}

/// The compiled rules of `preset` followed by `extra`; None when there are none.
pub fn relabel_fn(
    preset: RelabelPreset,
    extra: &[RelabelConfig],
) -> Result<Option<RelabelFn>, PresetError> {
    let mut configs = preset_configs(preset)?;
    configs.extend_from_slice(extra);
    if configs.is_empty() {
        return Ok(None);
    }
    let rules = Arc::new(Rules::compile(&configs)?);
    Ok(Some(Arc::new(move |l: &Labels| rules.process(l))))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn the_charts_eight_rules() {
        let f = relabel_fn(RelabelPreset::KubePrometheusStack, &[])
            .unwrap()
            .unwrap();
        let keeps =
            |pairs: &[(&str, &str)]| f(&Labels::from_pairs(pairs.iter().copied())).is_some();
        let pod = [("id", "/kubepods/pod1/abc"), ("pod", "web")];
        let with = |name: &'static str, extra: &[(&'static str, &'static str)]| {
            let mut v = vec![("__name__", name)];
            v.extend_from_slice(&pod);
            v.extend_from_slice(extra);
            v
        };
        assert!(!keeps(&with("container_cpu_user_seconds_total", &[])));
        assert!(!keeps(&with("container_fs_sector_reads_total", &[])));
        assert!(!keeps(&with("container_memory_swap", &[])));
        assert!(!keeps(&with("container_threads_max", &[])));
        assert!(!keeps(&with(
            "container_memory_failures_total",
            &[("scope", "hierarchy")]
        )));
        assert!(keeps(&with(
            "container_memory_failures_total",
            &[("scope", "container")]
        )));
        assert!(!keeps(&with(
            "container_network_receive_bytes_total",
            &[("interface", "cali123")]
        )));
        assert!(keeps(&with(
            "container_network_receive_bytes_total",
            &[("interface", "eth0")]
        )));
        assert!(!keeps(&with("container_spec_cpu_shares", &[])));
        assert!(keeps(&with(
            "container_cpu_usage_seconds_total",
            &[("cpu", "total")]
        )));
        assert!(!keeps(&[
            ("__name__", "container_cpu_usage_seconds_total"),
            ("id", "/")
        ]));
        assert!(keeps(&[("__name__", "machine_cpu_cores")]));
    }

    #[test]
    fn user_rules_follow_the_preset() {
        let extra: Vec<RelabelConfig> = serde_yaml::from_str(
            "- source_labels: [__name__]\n  regex: container_tasks_state\n  action: keep\n",
        )
        .unwrap();
        assert!(relabel_fn(RelabelPreset::None, &extra).unwrap().is_some());
        assert!(relabel_fn(RelabelPreset::None, &[]).unwrap().is_none());
        let bad: Vec<RelabelConfig> =
            serde_yaml::from_str("- action: hashmod\n  target_label: x\n").unwrap();
        assert!(relabel_fn(RelabelPreset::None, &bad).is_err());
    }
}
