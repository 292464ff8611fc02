//! Relabel presets for the local source.
//!
//! `kube-prometheus-stack`: the chart's default `kubelet.serviceMonitor.cAdvisorMetricRelabelings`
//! (eight `drop` rules), evaluated natively so it costs nothing per sample: the emitter applies
//! it once per series when the series' labels are first built.

use std::sync::Arc;

use super::RelabelPreset;
use super::emit::RelabelFn;
use crate::model::Labels;

/// Rules 1-4 of the chart: exact metric names.
const DROPPED_NAMES: [&str; 16] = [
    "container_cpu_cfs_throttled_seconds_total",
    "container_cpu_load_average_10s",
    "container_cpu_system_seconds_total",
    "container_cpu_user_seconds_total",
    "container_fs_io_current",
    "container_fs_io_time_seconds_total",
    "container_fs_io_time_weighted_seconds_total",
    "container_fs_reads_merged_total",
    "container_fs_sector_reads_total",
    "container_fs_sector_writes_total",
    "container_fs_writes_merged_total",
    "container_memory_mapped_file",
    "container_memory_swap",
    "container_file_descriptors",
    "container_tasks_state",
    "container_threads_max",
];

/// Rule 6: interface name prefixes of host-network CNI devices.
const CNI_INTERFACE_PREFIXES: [&str; 6] = ["cali", "cilium", "cni", "lxc", "nodelocaldns", "tunl"];

/// Whether kube-prometheus-stack's default cAdvisor metric relabelings keep `labels`.
pub fn kube_prometheus_stack_keeps(labels: &Labels) -> bool {
    let name = labels.metric_name().unwrap_or("");
    if DROPPED_NAMES.contains(&name) {
        return false;
    }
    // Rule 5: hierarchy-scope memory failures (the container scope carries the same value).
    if name == "container_memory_failures_total" && labels.get("scope") == Some("hierarchy") {
        return false;
    }
    // Rule 6.
    if name.starts_with("container_network_")
        && let Some(i) = labels.get("interface")
        && CNI_INTERFACE_PREFIXES.iter().any(|p| i.starts_with(p))
    {
        return false;
    }
    // Rule 7: they overlap kube-state-metrics.
    if name.starts_with("container_spec") {
        return false;
    }
    // Rule 8: cgroups outside pods (root, kubepods, QoS, system slices).
    !(labels.get("id").is_some() && labels.get("pod").is_none())
}

/// The relabel function of a preset, if it has one.
pub fn relabel_fn(preset: RelabelPreset) -> Option<RelabelFn> {
    match preset {
        RelabelPreset::None => None,
        RelabelPreset::KubePrometheusStack => Some(Arc::new(|l: &Labels| {
            kube_prometheus_stack_keeps(l).then(|| l.clone())
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keeps(pairs: &[(&str, &str)]) -> bool {
        kube_prometheus_stack_keeps(&Labels::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn the_charts_eight_rules() {
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
}
