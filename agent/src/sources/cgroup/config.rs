use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::Duration;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CgroupConfig {
    /// Collect cgroup metrics at all.
    pub enabled: bool,
    /// How often to read every tracked cgroup (kubelet's cAdvisor housekeeping is 10s).
    pub interval: Duration,
    /// Only cgroups at or below this path (relative to each hierarchy's mount) are tracked.
    pub root: String,
    /// Mount point of each hierarchy by controller name (`cpu`, `memory`, ..., and `unified`
    /// for cgroup v2). Empty: detected from /proc/self/mountinfo.
    pub mounts: BTreeMap<String, PathBuf>,
}

impl Default for CgroupConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Duration::from_secs(10),
            root: "/".into(),
            mounts: BTreeMap::new(),
        }
    }
}

impl CgroupConfig {
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.interval.as_std().is_zero() {
            problems.push(("interval".into(), "must be greater than 0".into()));
        }
        if !self.root.starts_with('/') {
            problems.push((
                "root".into(),
                format!("must be an absolute cgroup path, got {:?}", self.root),
            ));
        }
        problems
    }
}
