//! The `cpu` metric set: usage, user and system time.
//!
//! v1: `cpuacct.usage` (ns) and `cpuacct.stat` (USER_HZ ticks). v2: `cpu.stat` `usage_usec`,
//! `user_usec`, `system_usec`. A cgroup present in the v1 cpuacct hierarchy is read there (as
//! cAdvisor does on v1 and hybrid hosts); otherwise from the unified tree.

use crate::identity::{CgroupEntry, Hierarchies};
use crate::model::MetricType;

use super::Emitter;

/// The kernel reports `cpuacct.stat` in USER_HZ, which is 100 on every Linux ABI.
const USER_HZ: f64 = 100.0;

pub const USAGE: &str = "container_cpu_usage_seconds_total";
pub const USER: &str = "container_cpu_user_seconds_total";
pub const SYSTEM: &str = "container_cpu_system_seconds_total";

#[derive(Debug, Default, PartialEq)]
pub struct CpuTimes {
    pub usage_seconds: f64,
    pub user_seconds: f64,
    pub system_seconds: f64,
}

pub fn read(h: &Hierarchies, path: &str) -> Option<CpuTimes> {
    if let Some(dir) = h.v1_dir("cpuacct", path)
        && dir.is_dir()
    {
        let usage_ns: u64 = std::fs::read_to_string(dir.join("cpuacct.usage"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let stat = std::fs::read_to_string(dir.join("cpuacct.stat")).ok()?;
        return Some(CpuTimes {
            usage_seconds: usage_ns as f64 / 1e9,
            user_seconds: field(&stat, "user").unwrap_or(0) as f64 / USER_HZ,
            system_seconds: field(&stat, "system").unwrap_or(0) as f64 / USER_HZ,
        });
    }
    let dir = h.unified_dir(path)?;
    let stat = std::fs::read_to_string(dir.join("cpu.stat")).ok()?;
    Some(CpuTimes {
        usage_seconds: field(&stat, "usage_usec")? as f64 / 1e6,
        user_seconds: field(&stat, "user_usec").unwrap_or(0) as f64 / 1e6,
        system_seconds: field(&stat, "system_usec").unwrap_or(0) as f64 / 1e6,
    })
}

/// Value of `key` in a flat-keyed cgroup file (`key value` per line).
pub fn field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

pub fn collect(h: &Hierarchies, entry: &CgroupEntry, out: &mut Emitter<'_>) {
    // A cgroup removed since the inventory scan simply yields nothing this cycle.
    let Some(t) = read(h, &entry.path) else {
        return;
    };
    // cAdvisor omits the usage series while the total is 0.
    if t.usage_seconds > 0.0 {
        out.emit(
            USAGE,
            MetricType::Counter,
            "Cumulative cpu time consumed in seconds.",
            &entry.labels,
            &[("cpu", "total")],
            t.usage_seconds,
        );
    }
    out.emit(
        USER,
        MetricType::Counter,
        "Cumulative user cpu time consumed in seconds.",
        &entry.labels,
        &[],
        t.user_seconds,
    );
    out.emit(
        SYSTEM,
        MetricType::Counter,
        "Cumulative system cpu time consumed in seconds.",
        &entry.labels,
        &[],
        t.system_seconds,
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn v2_cpu_stat_is_read_in_seconds() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("pod");
        std::fs::create_dir_all(&dir).unwrap();
        // Format of a real v2 cpu.stat.
        std::fs::write(dir.join("cpu.stat"), "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n").unwrap();
        let h = Hierarchies {
            unified: Some(tmp.path().into()),
            v1: BTreeMap::new(),
        };
        let t = read(&h, "/pod").unwrap();
        assert_eq!(
            t,
            CpuTimes {
                usage_seconds: 2.5,
                user_seconds: 2.0,
                system_seconds: 0.5
            }
        );
    }

    #[test]
    fn v1_cpuacct_is_preferred_when_the_cgroup_exists_there() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cpuacct/pod");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cpuacct.usage"), "1500000000\n").unwrap();
        std::fs::write(dir.join("cpuacct.stat"), "user 120\nsystem 30\n").unwrap();
        let h = Hierarchies {
            unified: Some(tmp.path().join("unified")),
            v1: BTreeMap::from([("cpuacct".to_string(), tmp.path().join("cpuacct"))]),
        };
        let t = read(&h, "/pod").unwrap();
        assert_eq!(
            t,
            CpuTimes {
                usage_seconds: 1.5,
                user_seconds: 1.2,
                system_seconds: 0.3
            }
        );
    }
}
