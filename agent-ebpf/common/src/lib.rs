//! The one definition of everything the kernel side and the agent exchange through maps:
//! map names, key and value layouts. Both `agent-ebpf` (no_std, bpfel) and `agent` (std, with
//! the `user` feature) compile this file, so a layout change cannot drift between them.
#![no_std]

/// Names of the maps the programs declare, as the loader looks them up.
pub mod maps {
    /// Per-cgroup scheduler counters, keyed by cgroup v2 id (`u64`), value [`super::SchedCounters`].
    pub const SCHED_COUNTERS: &str = "SCHED_COUNTERS";
}

/// Names of the programs in the object, as the loader looks them up.
pub mod programs {
    /// `sched:sched_switch` tracepoint counting context switches per cgroup.
    pub const SCHED_SWITCH: &str = "sched_switch";
}

/// Upper bound of distinct cgroups tracked by per-cgroup maps. A node with 110 pods has a few
/// hundred cgroups; the margin covers churn between two collection cycles.
pub const MAX_CGROUPS: u32 = 16_384;

/// Context-switch counters of one cgroup, per CPU (the map is a per-CPU hash, so the agent sums
/// the CPUs when it reads).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedCounters {
    /// Times a task of this cgroup was switched out while still runnable (preempted).
    pub involuntary: u64,
    /// Times a task of this cgroup was switched out because it blocked or slept.
    pub voluntary: u64,
}

#[cfg(feature = "user")]
// SAFETY: plain-old-data, `repr(C)`, every bit pattern valid, no padding.
unsafe impl aya::Pod for SchedCounters {}
