//! The one definition of everything the kernel side and the agent exchange through maps:
//! map names, key and value layouts, load-time globals. Both `agent-ebpf` (no_std, bpfel) and
//! `agent` (std, with the `user` feature) compile this file, so a layout change cannot drift
//! between them.
#![no_std]

/// Names of the maps the programs declare, as the loader looks them up.
pub mod maps {
    /// Per-cgroup scheduler counters: per-CPU hash keyed by cgroup v2 id (`u64`), value
    /// [`super::SchedCounters`].
    pub const SCHED_COUNTERS: &str = "SCHED_COUNTERS";
    /// Per-CPU array of `u64`: how many times a program could not insert a new key into one of
    /// the bounded maps (map full). Indexed by [`super::overflow`] slots.
    pub const MAP_OVERFLOWS: &str = "MAP_OVERFLOWS";
}

/// Names of the programs in the object, as the loader looks them up.
pub mod programs {
    /// `sched:sched_switch` tracepoint counting context switches per cgroup.
    pub const SCHED_SWITCH: &str = "sched_switch";
}

/// Slots of [`maps::MAP_OVERFLOWS`], one per bounded map whose inserts can fail.
pub mod overflow {
    /// Inserts into [`super::maps::SCHED_COUNTERS`] that failed.
    pub const SCHED_COUNTERS: u32 = 0;
    /// Number of slots (the array's size).
    pub const SLOTS: u32 = 4;
}

/// Names of the load-time globals (read-only data the loader overrides before loading).
///
/// eBPF programs written in Rust cannot emit CO-RE relocations, so anything that depends on the
/// running kernel's layout is discovered by the agent (tracefs `format` files, BTF) and passed in
/// here.
pub mod globals {
    /// Byte offset of `prev_pid` (a 4-byte `pid_t`) in the `sched:sched_switch` record (`u32`).
    pub const SCHED_SWITCH_PREV_PID_OFFSET: &str = "SCHED_SWITCH_PREV_PID_OFFSET";
    /// Byte offset of `prev_state` in the `sched:sched_switch` tracepoint record (`u32`).
    pub const SCHED_SWITCH_PREV_STATE_OFFSET: &str = "SCHED_SWITCH_PREV_STATE_OFFSET";
    /// Size in bytes of that field, 4 or 8 (`u32`).
    pub const SCHED_SWITCH_PREV_STATE_SIZE: &str = "SCHED_SWITCH_PREV_STATE_SIZE";
    /// The `prev_state` value the kernel reports for a preempted task: `TASK_REPORT_MAX` (`u64`).
    pub const SCHED_SWITCH_PREEMPTED_STATE: &str = "SCHED_SWITCH_PREEMPTED_STATE";
}

/// `prev_pid` offset in `sched:sched_switch` on 64-bit kernels since 4.x (see below).
pub const DEFAULT_PREV_PID_OFFSET: u32 = 24;
/// `prev_state` offset in `sched:sched_switch` on 64-bit kernels since 4.x; only the compiled-in
/// default, the loader always overrides it with what tracefs says.
pub const DEFAULT_PREV_STATE_OFFSET: u32 = 32;
/// `TASK_REPORT_MAX` since Linux 4.14 (`TASK_REPORT_IDLE << 1`).
pub const DEFAULT_PREEMPTED_STATE: u64 = 0x100;

/// Upper bound of distinct cgroups tracked by per-cgroup maps. A node with 110 pods has a few
/// hundred cgroups; the margin covers churn between two collection cycles.
pub const MAX_CGROUPS: u32 = 16_384;

/// Context-switch counters of one cgroup, per CPU (the map is a per-CPU hash, so the agent sums
/// the CPUs when it reads). The split follows the kernel's `nvcsw`/`nivcsw` (the
/// `voluntary_ctxt_switches`/`nonvoluntary_ctxt_switches` lines of `/proc/PID/status`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedCounters {
    /// Times a task of this cgroup was switched out while still runnable: preempted, or it
    /// called into the scheduler without blocking (`sched_yield`, rescheduling on return to
    /// user space).
    pub involuntary: u64,
    /// Times a task of this cgroup was switched out because it blocked or slept.
    pub voluntary: u64,
}

impl SchedCounters {
    /// Adds another CPU's (or snapshot's) counters to these.
    #[inline]
    pub fn accumulate(&mut self, other: &Self) {
        self.involuntary = self.involuntary.wrapping_add(other.involuntary);
        self.voluntary = self.voluntary.wrapping_add(other.voluntary);
    }
}

#[cfg(feature = "user")]
// SAFETY: plain-old-data, `repr(C)`, every bit pattern valid, no padding.
unsafe impl aya::Pod for SchedCounters {}
