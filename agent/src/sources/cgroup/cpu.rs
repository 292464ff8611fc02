//! The `cpu` and `cpuLoad` sets, and the CPU spec gauges.
//!
//! v1: `cpuacct.usage` (ns), `cpuacct.stat` (USER_HZ ticks), `cpuacct.usage_percpu`; CFS from
//! the cpu controller's `cpu.cfs_quota_us`, `cpu.cfs_period_us`, `cpu.shares`, `cpu.stat`.
//! v2: `cpu.stat` (`usage_usec`, `user_usec`, `system_usec`, `nr_periods`, `nr_throttled`,
//! `throttled_usec`, `nr_bursts`, `burst_usec`), `cpu.max`, `cpu.weight`.

use std::sync::LazyLock;

use super::emit::{Group, SeriesCache, SeriesEmitter};
use super::families::*;
use super::read::{FileReader, for_each_kv};
use super::{CgroupDirs, MetricSets};

/// The kernel reports `cpuacct.stat` in USER_HZ, which is 100 on every Linux ABI.
const USER_HZ: f64 = 100.0;

/// `cpu="cpu00"`, `cpu01`...: cAdvisor's two-digit per-CPU label values.
static CPU_NAMES: LazyLock<Vec<String>> =
    LazyLock::new(|| (0..1024).map(|i| format!("cpu{i:02}")).collect());

const TASK_STATES: [&str; 5] = [
    "sleeping",
    "running",
    "stopped",
    "uninterruptible",
    "iowaiting",
];

#[derive(Debug, Default, PartialEq)]
pub struct CpuReading {
    pub usage_seconds: Option<f64>,
    pub user_seconds: f64,
    pub system_seconds: f64,
    pub percpu_seconds: Vec<f64>,
    /// CFS quota in µs; None when unlimited.
    pub quota_us: Option<u64>,
    pub period_us: Option<u64>,
    pub shares: Option<u64>,
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_seconds: f64,
    pub burst_periods: u64,
    pub burst_seconds: f64,
    /// Whether the cgroup has a cpu controller directory (cAdvisor's `HasCpu`).
    pub has_cpu: bool,
}

/// cgroup v2 `cpu.weight` back on the v1 shares scale, with cAdvisor's integer formula.
pub fn weight_to_shares(weight: u64) -> u64 {
    if weight == 0 {
        return 0;
    }
    2 + (weight - 1) * 262_142 / 9_999
}

pub fn read(r: &mut FileReader, dirs: &CgroupDirs, percpu: bool) -> CpuReading {
    let mut c = CpuReading::default();
    let mut v2_stat_read = false;
    if let Some(d) = &dirs.cpuacct {
        c.usage_seconds = r.u64(d, "cpuacct.usage").map(|ns| ns as f64 / 1e9);
        if let Some(text) = r.read(d, "cpuacct.stat") {
            for_each_kv(text, |k, v| match k {
                "user" => c.user_seconds = v as f64 / USER_HZ,
                "system" => c.system_seconds = v as f64 / USER_HZ,
                _ => {}
            });
        }
        if percpu && let Some(text) = r.read(d, "cpuacct.usage_percpu") {
            c.percpu_seconds = text
                .split_ascii_whitespace()
                .filter_map(|w| w.parse::<u64>().ok())
                .map(|ns| ns as f64 / 1e9)
                .collect();
        }
    } else if let Some(d) = &dirs.unified
        && let Some(text) = r.read(d, "cpu.stat")
    {
        v2_stat_read = true;
        read_v2_stat(text, &mut c, true);
    }
    if let Some(d) = &dirs.cpu {
        c.has_cpu = true;
        c.period_us = r.u64(d, "cpu.cfs_period_us");
        c.quota_us = r
            .i64(d, "cpu.cfs_quota_us")
            .and_then(|q| u64::try_from(q).ok())
            .filter(|q| *q > 0);
        c.shares = r.u64(d, "cpu.shares");
        if c.quota_us.is_some()
            && let Some(text) = r.read(d, "cpu.stat")
        {
            for_each_kv(text, |k, v| match k {
                "nr_periods" => c.periods = v,
                "nr_throttled" => c.throttled_periods = v,
                "throttled_time" => c.throttled_seconds = v as f64 / 1e9,
                _ => {}
            });
        }
    } else if let Some(d) = &dirs.unified
        && let Some(text) = r.read(d, "cpu.max")
    {
        c.has_cpu = true;
        let mut words = text.split_ascii_whitespace();
        c.quota_us = words.next().and_then(|q| q.parse().ok()).filter(|q| *q > 0);
        c.period_us = words.next().and_then(|p| p.parse().ok());
        c.shares = r.u64(d, "cpu.weight").map(weight_to_shares);
        if c.quota_us.is_some()
            && !v2_stat_read
            && let Some(text) = r.read(d, "cpu.stat")
        {
            read_v2_stat(text, &mut c, false);
        }
    }
    c
}

fn read_v2_stat(text: &str, c: &mut CpuReading, usage: bool) {
    for_each_kv(text, |k, v| match k {
        "usage_usec" if usage => c.usage_seconds = Some(v as f64 / 1e6),
        "user_usec" if usage => c.user_seconds = v as f64 / 1e6,
        "system_usec" if usage => c.system_seconds = v as f64 / 1e6,
        "nr_periods" => c.periods = v,
        "nr_throttled" => c.throttled_periods = v,
        "throttled_usec" => c.throttled_seconds = v as f64 / 1e6,
        "nr_bursts" => c.burst_periods = v,
        "burst_usec" => c.burst_seconds = v as f64 / 1e6,
        _ => {}
    });
}

/// Spec gauges (always emitted, as cAdvisor's are).
pub fn emit_spec(c: &CpuReading, cache: &mut SeriesCache, e: &mut SeriesEmitter<'_>) {
    if !c.has_cpu {
        return;
    }
    if let Some(p) = c.period_us {
        e.emit(cache, Group::Spec, &SPEC_CPU_PERIOD, &[], p as f64);
    }
    if let Some(q) = c.quota_us {
        e.emit(cache, Group::Spec, &SPEC_CPU_QUOTA, &[], q as f64);
    }
    if let Some(s) = c.shares {
        e.emit(cache, Group::Spec, &SPEC_CPU_SHARES, &[], s as f64);
    }
}

pub fn emit(c: &CpuReading, sets: &MetricSets, cache: &mut SeriesCache, e: &mut SeriesEmitter<'_>) {
    let g = Group::Cpu;
    let Some(usage) = c.usage_seconds else {
        // No accounting for this cgroup (it vanished, or no cpu hierarchy has it).
        return;
    };
    e.emit(cache, g, &CPU_USER, &[], c.user_seconds);
    e.emit(cache, g, &CPU_SYSTEM, &[], c.system_seconds);
    if sets.percpu && !c.percpu_seconds.is_empty() {
        for (i, v) in c.percpu_seconds.iter().enumerate() {
            // cAdvisor skips per-CPU entries that are 0.
            if *v > 0.0
                && let Some(name) = CPU_NAMES.get(i)
            {
                e.emit(cache, g, &CPU_USAGE, &[("cpu", name)], *v);
            }
        }
    } else if usage > 0.0 {
        // cAdvisor omits the usage series while the total is 0.
        e.emit(cache, g, &CPU_USAGE, &[("cpu", "total")], usage);
    }
    if c.quota_us.is_some() {
        e.emit(cache, g, &CFS_PERIODS, &[], c.periods as f64);
        e.emit(
            cache,
            g,
            &CFS_THROTTLED_PERIODS,
            &[],
            c.throttled_periods as f64,
        );
        e.emit(cache, g, &CFS_THROTTLED_SECONDS, &[], c.throttled_seconds);
        // v1 has no burst accounting in cAdvisor: it serves constant zeros there.
        e.emit(cache, g, &CFS_BURST_PERIODS, &[], c.burst_periods as f64);
        e.emit(cache, g, &CFS_BURST_SECONDS, &[], c.burst_seconds);
    }
}

/// kubelet keeps cAdvisor's load reader off, so these are constant zeros in its output.
pub fn emit_load(cache: &mut SeriesCache, e: &mut SeriesEmitter<'_>) {
    let g = Group::CpuLoad;
    e.emit(cache, g, &LOAD_AVERAGE, &[], 0.0);
    e.emit(cache, g, &LOAD_D_AVERAGE, &[], 0.0);
    for s in TASK_STATES {
        e.emit(cache, g, &TASKS_STATE, &[("state", s)], 0.0);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn weight_converts_back_to_shares_like_cadvisor() {
        assert_eq!(weight_to_shares(1), 2);
        assert_eq!(weight_to_shares(100), 2597);
        assert_eq!(weight_to_shares(10000), 262_144);
    }

    #[test]
    fn v2_cpu_files_are_read_in_seconds_with_cfs_only_under_a_quota() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        // Formats of real v2 files.
        std::fs::write(d.join("cpu.stat"), "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnr_periods 40\nnr_throttled 7\nthrottled_usec 350000\nnr_bursts 2\nburst_usec 1500\n").unwrap();
        std::fs::write(d.join("cpu.max"), "50000 100000\n").unwrap();
        std::fs::write(d.join("cpu.weight"), "100\n").unwrap();
        let dirs = CgroupDirs {
            unified: crate::sources::cgroup::CgroupDir::open(d.to_path_buf()),
            ..Default::default()
        };
        let mut r = FileReader::new();
        let c = read(&mut r, &dirs, false);
        assert_eq!(c.usage_seconds, Some(2.5));
        assert_eq!((c.user_seconds, c.system_seconds), (2.0, 0.5));
        assert_eq!(
            (c.quota_us, c.period_us, c.shares),
            (Some(50000), Some(100000), Some(2597))
        );
        assert_eq!(
            (c.periods, c.throttled_periods, c.throttled_seconds),
            (40, 7, 0.35)
        );
        assert_eq!((c.burst_periods, c.burst_seconds), (2, 0.0015));
        std::fs::write(d.join("cpu.max"), "max 100000\n").unwrap();
        let c = read(&mut r, &dirs, false);
        assert_eq!((c.quota_us, c.period_us), (None, Some(100000)));
    }

    #[test]
    fn v1_cpuacct_and_cfs_files() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::write(d.join("cpuacct.usage"), "1500000000\n").unwrap();
        std::fs::write(d.join("cpuacct.stat"), "user 120\nsystem 30\n").unwrap();
        std::fs::write(d.join("cpuacct.usage_percpu"), "1000000000 500000000 \n").unwrap();
        std::fs::write(d.join("cpu.cfs_quota_us"), "-1\n").unwrap();
        std::fs::write(d.join("cpu.cfs_period_us"), "100000\n").unwrap();
        std::fs::write(d.join("cpu.shares"), "1024\n").unwrap();
        let dirs = CgroupDirs {
            cpu: crate::sources::cgroup::CgroupDir::open(d.to_path_buf()),
            cpuacct: crate::sources::cgroup::CgroupDir::open(d.to_path_buf()),
            ..Default::default()
        };
        let mut r = FileReader::new();
        let c = read(&mut r, &dirs, true);
        assert_eq!(c.usage_seconds, Some(1.5));
        assert_eq!((c.user_seconds, c.system_seconds), (1.2, 0.3));
        assert_eq!(c.percpu_seconds, [1.0, 0.5]);
        assert_eq!(
            (c.quota_us, c.period_us, c.shares),
            (None, Some(100000), Some(1024))
        );
    }
}
