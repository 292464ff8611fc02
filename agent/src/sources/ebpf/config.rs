use serde::{Deserialize, Serialize};

use crate::config::Duration;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EbpfConfig {
    /// Load probes at all.
    pub enabled: bool,
    /// How often to read the probes' kernel maps.
    pub interval: Duration,
    /// Per-probe switches.
    pub probes: ProbeSelection,
}

impl Default for EbpfConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Duration::from_secs(10),
            probes: ProbeSelection::default(),
        }
    }
}

/// Which probes to load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeSelection {
    /// Context switches per container (sched:sched_switch tracepoint).
    pub sched_switch: bool,
}

impl Default for ProbeSelection {
    fn default() -> Self {
        Self { sched_switch: true }
    }
}

impl EbpfConfig {
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.interval.as_std().is_zero() {
            problems.push(("interval".into(), "must be greater than 0".into()));
        }
        problems
    }
}
