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
}

impl Default for EbpfConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Duration::from_secs(10),
            probes: ProbesConfig::default(),
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
}

impl Default for ProbesConfig {
    fn default() -> Self {
        Self { sched_switch: true }
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
