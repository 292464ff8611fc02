//! The `ebpf:` section of the agent's configuration.

use serde::{Deserialize, Serialize};

use crate::config::Duration;

/// Kernel probes. Every probe is optional: one that cannot load is reported (logs, self-metrics,
/// `nodemeter check`) and the agent carries on with cgroup metrics.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct EbpfConfig {
    /// Load eBPF programs at all. `false` skips the capability check and every probe.
    pub enabled: bool,
    /// How often to read the probes' kernel maps.
    pub interval: Duration,
    /// Per-probe switches.
    pub probes: ProbesConfig,
    /// cgroup v2 directory the network programs attach to (they count sockets of every cgroup
    /// below it). Empty: the root of the cgroup v2 hierarchy.
    pub network_cgroup: std::path::PathBuf,
}

impl Default for EbpfConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Duration::from_secs(10),
            probes: ProbesConfig::default(),
            network_cgroup: std::path::PathBuf::new(),
        }
    }
}

impl EbpfConfig {
    /// Checks what types cannot express: `(key path, message)` pairs.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.interval.as_std().is_zero() {
            problems.push(("interval".into(), "must be greater than 0".into()));
        }
        problems
    }
}

/// One switch per probe, all on by default.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ProbesConfig {
    /// `sched:sched_switch`: voluntary and involuntary context switches per cgroup.
    pub sched_switch: bool,
    /// `sched:sched_wakeup`/`sched_wakeup_new`/`sched_switch`: run-queue latency histogram per
    /// cgroup (time from runnable to running).
    pub runqueue_latency: bool,
    /// `task:task_newtask`, `sched:sched_process_exec`/`sched_process_exit`: process forks,
    /// execs and exits per cgroup.
    pub process_events: bool,
    /// `oom:mark_victim` and `sched:sched_process_exit`: OOM kills per cgroup of the victim.
    pub oom_kills: bool,
    /// `cgroup_skb` ingress/egress on the cgroup v2 root: bytes and packets per cgroup of the
    /// socket.
    pub network: bool,
    /// `sock:inet_sock_set_state` and `tcp:tcp_retransmit_skb`: TCP connects, accepts,
    /// retransmits and open connections per cgroup of the socket.
    pub tcp: bool,
    /// `cgroup:cgroup_mkdir`/`cgroup_rmdir`: cgroup creations and removals, for event-driven
    /// container discovery.
    pub cgroup_events: bool,
}

impl Default for ProbesConfig {
    fn default() -> Self {
        Self {
            sched_switch: true,
            runqueue_latency: true,
            process_events: true,
            oom_kills: true,
            network: true,
            tcp: true,
            cgroup_events: true,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn empty_section_is_all_defaults() {
        let c: EbpfConfig = serde_yaml::from_str("{}").unwrap();
        assert_eq!(c, EbpfConfig::default());
        assert!(c.enabled && c.probes.sched_switch);
    }

    #[test]
    fn probe_can_be_switched_off() {
        let c: EbpfConfig = serde_yaml::from_str("probes:\n  sched_switch: false\n").unwrap();
        assert!(c.enabled);
        assert!(!c.probes.sched_switch);
    }

    #[test]
    fn unknown_probe_is_rejected_with_its_name() {
        let err = serde_yaml::from_str::<EbpfConfig>("probes:\n  sched_swich: true\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("sched_swich"), "{err}");
    }
}
