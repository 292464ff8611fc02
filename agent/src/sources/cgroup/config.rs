use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::Duration;
use crate::relabel::{RelabelConfig, deserialize_rule_list};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CgroupConfig {
    /// Collect cgroup metrics at all.
    pub enabled: bool,
    /// How often to read every tracked cgroup (kubelet's cAdvisor housekeeping is 10s).
    pub interval: Duration,
    /// The cgroup (relative to each hierarchy's mount) that plays the node root: `kubepods`
    /// and `extra_cgroups` are looked up below it. `/` on a node; tests put a fake node below
    /// their own cgroup. Series ids stay relative to the mounts.
    pub root: String,
    /// With the `cgroup_events` probe attached the inventory walks cgroupfs when the kernel
    /// reports a cgroup created or removed, and otherwise only this often (a safety net for
    /// dropped events). Without it, every cycle walks.
    pub rescan_interval: Duration,
    /// Mount point of each hierarchy by controller name (`cpu`, `memory`, ..., and `unified`
    /// for cgroup v2). Empty: detected from /proc/self/mountinfo.
    pub mounts: BTreeMap<String, PathBuf>,
    /// Subtrees tracked besides the root and `/kubepods[.slice]` (kubelet's own cgroup and
    /// the runtime's, as kubelet's `--kubelet-cgroups`/`--runtime-cgroups` would add).
    pub extra_cgroups: Vec<String>,
    /// Metric sets, by cAdvisor's `--enable_metrics` keyword; defaults are what kubelet serves.
    pub metrics: MetricSets,
    /// Per-set collection intervals longer than `interval` (keys are metric-set keywords, e.g.
    /// `process: 30s`); a set not due keeps its last values alive.
    pub intervals: BTreeMap<String, Duration>,
    /// Bounds on the /proc work of the `process` set.
    pub process_limits: ProcessLimits,
    /// Labels added to every series of this source unless the series has its own label of
    /// that name (as a scrape with `honor_labels: true`). `$(NODE_NAME)` is the node name and
    /// `$(NODE_IP)` the `NODE_IP` environment variable (downward API `status.hostIP`; the
    /// node name when unset). The defaults are what kube-prometheus-stack's kubelet
    /// ServiceMonitor gives cAdvisor series, so its dashboards and alerts match unchanged.
    pub target_labels: BTreeMap<String, String>,
    /// Drop rules applied to this source's series: `none`, or `kube-prometheus-stack` (the
    /// chart's default `cAdvisorMetricRelabelings`: drops the families its dashboards do not
    /// use, hierarchy-scope memory failures, CNI interfaces, `container_spec_*`, and series of
    /// cgroups outside pods).
    pub relabel_preset: RelabelPreset,
    /// Prometheus `metric_relabel_configs` applied to this source's series after the preset
    /// (the place for a chart's custom `cAdvisorMetricRelabelings`).
    #[serde(deserialize_with = "deserialize_rule_list")]
    pub metric_relabel_configs: Vec<RelabelConfig>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RelabelPreset {
    /// Every series is kept, as kubelet serves them.
    #[default]
    None,
    /// kube-prometheus-stack's `kubelet.serviceMonitor.cAdvisorMetricRelabelings` default.
    KubePrometheusStack,
}

/// Metric sets by cAdvisor keyword. Defaults: what kubelet's `/metrics/cadvisor` serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricSets {
    /// CPU usage, user/system time, CFS periods and throttling.
    pub cpu: bool,
    /// Per-CPU usage (`cpu="cpu00"`...; cgroup v1 only). kubelet leaves it off.
    pub percpu: bool,
    /// Load averages and task states; kubelet serves them as constant zeros.
    #[serde(rename = "cpuLoad")]
    pub cpu_load: bool,
    /// Memory usage, working set, RSS, cache, swap, failures.
    pub memory: bool,
    /// cAdvisor 0.57's `memory.events` high/max counters (cgroup v2).
    pub memory_events: bool,
    /// cAdvisor 0.60's reclaim families: pgscan, pgsteal, refaults, dirty, writeback.
    pub memory_reclaim: bool,
    /// Per-NUMA-node page counts (cgroup v1 `memory.numa_stat`).
    pub memory_numa: bool,
    /// Block I/O per device.
    #[serde(rename = "diskIO")]
    pub disk_io: bool,
    /// Filesystem usage of the node root's block-device filesystems, by statfs (never a
    /// directory walk).
    pub disk: bool,
    /// Pod network interfaces, read once per network namespace.
    pub network: bool,
    /// Processes, threads, file descriptors, sockets, ulimits.
    pub process: bool,
    /// OOM kills.
    pub oom_event: bool,
    /// PSI pressure totals (where the kernel and hierarchy have them).
    pub pressure: bool,
    /// Hugepage usage.
    pub hugetlb: bool,
    /// `cpuset.memory_migrate`.
    pub cpuset: bool,
    /// cAdvisor 0.57's `container_creation_time_seconds`.
    pub creation_time: bool,
    /// `machine_*` families.
    pub machine: bool,
    /// NUMA topology of the machine (`machine_node_*`).
    pub cpu_topology: bool,
}

impl Default for MetricSets {
    fn default() -> Self {
        Self {
            cpu: true,
            percpu: false,
            cpu_load: true,
            memory: true,
            memory_events: false,
            memory_reclaim: false,
            memory_numa: false,
            disk_io: true,
            disk: true,
            network: true,
            process: true,
            oom_event: true,
            pressure: true,
            hugetlb: false,
            cpuset: false,
            creation_time: false,
            machine: true,
            cpu_topology: false,
        }
    }
}

/// Metric-set keywords that `intervals` accepts.
pub const INTERVAL_KEYS: [&str; 8] = [
    "cpu", "memory", "diskIO", "disk", "network", "process", "pressure", "machine",
];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessLimits {
    /// Processes whose /proc/<pid>/fd is listed per cycle, over all cgroups; cgroups past the
    /// budget keep their last counts and are counted first next cycle.
    pub max_pids_per_cycle: usize,
    /// Count sockets (one readlink per open fd: the expensive part of `process`).
    pub sockets: bool,
}

impl Default for ProcessLimits {
    fn default() -> Self {
        Self {
            max_pids_per_cycle: 20_000,
            sockets: true,
        }
    }
}

impl Default for CgroupConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Duration::from_secs(10),
            root: "/".into(),
            rescan_interval: Duration::from_secs(60),
            mounts: BTreeMap::new(),
            extra_cgroups: vec!["/system.slice/kubelet.service".into()],
            metrics: MetricSets::default(),
            intervals: BTreeMap::new(),
            process_limits: ProcessLimits::default(),
            target_labels: BTreeMap::from(
                [
                    ("job", "kubelet"),
                    ("metrics_path", "/metrics/cadvisor"),
                    ("endpoint", "https-metrics"),
                    ("node", "$(NODE_NAME)"),
                    ("instance", "$(NODE_IP):10250"),
                ]
                .map(|(k, v)| (k.to_string(), v.to_string())),
            ),
            relabel_preset: RelabelPreset::None,
            metric_relabel_configs: Vec::new(),
        }
    }
}

impl CgroupConfig {
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.interval.as_std().is_zero() {
            problems.push(("interval".into(), "must be greater than 0".into()));
        }
        if self.rescan_interval < self.interval {
            problems.push((
                "rescan_interval".into(),
                format!(
                    "{} is shorter than cgroup.interval {}",
                    self.rescan_interval, self.interval
                ),
            ));
        }
        if !self.root.starts_with('/') {
            problems.push((
                "root".into(),
                format!("must be an absolute cgroup path, got {:?}", self.root),
            ));
        }
        for p in &self.extra_cgroups {
            if !p.starts_with('/') {
                problems.push((
                    "extra_cgroups".into(),
                    format!("must be absolute cgroup paths, got {p:?}"),
                ));
            }
        }
        for (k, v) in &self.intervals {
            if !INTERVAL_KEYS.contains(&k.as_str()) {
                problems.push((
                    format!("intervals.{k}"),
                    format!("unknown metric set; expected one of {INTERVAL_KEYS:?}"),
                ));
            } else if *v < self.interval {
                problems.push((
                    format!("intervals.{k}"),
                    format!("{v} is shorter than cgroup.interval {}", self.interval),
                ));
            }
        }
        for k in self.target_labels.keys() {
            let valid = k
                .chars()
                .enumerate()
                .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
            if !valid || k.is_empty() || k.starts_with("__") {
                problems.push((
                    format!("target_labels.{k}"),
                    "not a valid label name".into(),
                ));
            }
        }
        if let Err(e) = super::preset::relabel_fn(self.relabel_preset, &self.metric_relabel_configs)
        {
            problems.push(("metric_relabel_configs".into(), e.to_string()));
        }
        if self.process_limits.max_pids_per_cycle == 0 {
            problems.push((
                "process_limits.max_pids_per_cycle".into(),
                "must be at least 1 (turn the process set off instead)".into(),
            ));
        }
        problems
    }

    /// Target labels with `$(NODE_NAME)` and `$(NODE_IP)` expanded.
    pub fn resolved_target_labels(&self, node_name: &str) -> Vec<(String, String)> {
        let ip = std::env::var("NODE_IP")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| node_name.to_string());
        self.target_labels
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.replace("$(NODE_NAME)", node_name)
                        .replace("$(NODE_IP)", &ip),
                )
            })
            .collect()
    }

    /// The collection interval of metric set `key`.
    pub fn interval_of(&self, key: &str) -> std::time::Duration {
        self.intervals
            .get(key)
            .copied()
            .unwrap_or(self.interval)
            .as_std()
    }
}
