//! `sched:sched_switch`: context switches per cgroup, split the way the kernel splits
//! `nvcsw`/`nivcsw`; and the switch-in half of run-queue latency (`crate::runqueue`).
//!
//! One program serves both probes, so the record is read and the cgroup looked up once per
//! switch, the hottest event there is. Each half is switched on by a load-time global the
//! verifier knows, so a disabled half costs nothing.
//!
//! The tracepoint fires inside `__schedule()` before the switch, so "current" is the task being
//! switched out and `bpf_get_current_cgroup_id()` is the cgroup to charge. The kernel reports
//! `prev_state` as:
//! - `TASK_REPORT_MAX` when the switch is a preemption (`__trace_sched_switch_state` with
//!   `preempt`), which the kernel counts in `nivcsw`;
//! - 0 (`R`) when the task entered the scheduler still runnable (`sched_yield`, a reschedule on
//!   return to user space): `switch_count` keeps pointing at `nivcsw`;
//! - one `TASK_REPORT` bit when it blocked: `nvcsw`.
//!
//! One case cannot be told apart from the record: a task that entered `schedule()` to block but
//! had a signal pending is put back to `TASK_RUNNING` and reported as `R`, while the kernel
//! counts it in `nvcsw`. That race is rare; it is counted as involuntary here.

use aya_ebpf::{
    EbpfContext as _,
    bindings::{BPF_F_NO_PREALLOC, BPF_NOEXIST},
    helpers::bpf_get_current_cgroup_id,
    macros::{map, tracepoint},
    maps::{PerCpuArray, PerCpuHashMap},
    programs::TracePointContext,
};
use nodemeter_ebpf_common::{
    DEFAULT_PREEMPTED_STATE, DEFAULT_PREV_PID_OFFSET, DEFAULT_PREV_STATE_OFFSET, MAX_CGROUPS,
    SchedCgroup, overflow, runq_bucket,
};

/// `-EEXIST`: another CPU inserted the same cgroup between our lookup and our insert.
const EEXIST: i32 = -17;

/// Allocated on insert: preallocating MAX_CGROUPS × 240 bytes × CPUs would reserve hundreds of
/// MB on a large node for cgroups that never exist.
#[map]
static SCHED_CGROUPS: PerCpuHashMap<u64, SchedCgroup> =
    PerCpuHashMap::with_max_entries(MAX_CGROUPS, BPF_F_NO_PREALLOC);

#[map]
pub(crate) static MAP_OVERFLOWS: PerCpuArray<u64> =
    PerCpuArray::with_max_entries(overflow::SLOTS, 0);

// Load-time globals (see `nodemeter_ebpf_common::globals`). They live in .rodata, which the
// loader freezes, so the verifier sees constants and removes the branches they rule out.
#[unsafe(no_mangle)]
pub(crate) static SCHED_SWITCH_PREV_PID_OFFSET: u32 = DEFAULT_PREV_PID_OFFSET;
#[unsafe(no_mangle)]
pub(crate) static SCHED_SWITCH_PREV_STATE_OFFSET: u32 = DEFAULT_PREV_STATE_OFFSET;
#[unsafe(no_mangle)]
pub(crate) static SCHED_SWITCH_PREV_STATE_SIZE: u32 = 8;
#[unsafe(no_mangle)]
pub(crate) static SCHED_SWITCH_PREEMPTED_STATE: u64 = DEFAULT_PREEMPTED_STATE;
#[unsafe(no_mangle)]
static SCHED_SWITCH_COUNT_SWITCHES: u32 = 1;
#[unsafe(no_mangle)]
static SCHED_SWITCH_RUNQUEUE: u32 = 1;

#[tracepoint(category = "sched", name = "sched_switch")]
pub fn sched_switch(ctx: TracePointContext) -> u32 {
    let (prev_pid, prev_state) = read_prev(&ctx);
    // SAFETY: the statics are plain integers; the volatile read keeps the compiler from
    // folding the compiled-in default, since the loader rewrites it before loading.
    let (preempted, count_switches, runqueue) = unsafe {
        (
            core::ptr::read_volatile(&SCHED_SWITCH_PREEMPTED_STATE),
            core::ptr::read_volatile(&SCHED_SWITCH_COUNT_SWITCHES),
            core::ptr::read_volatile(&SCHED_SWITCH_RUNQUEUE),
        )
    };
    let still_runnable = prev_state == 0 || prev_state & preempted != 0;
    // The idle task (pid 0) belongs to no container; on a mostly idle node about half of all
    // switches are the idle task's, so skipping it halves the map work.
    let cgroup_id = if prev_pid == 0 {
        0
    } else {
        // SAFETY: the helper takes no arguments and only reads the current task.
        unsafe { bpf_get_current_cgroup_id() }
    };
    let latency_ns = if runqueue != 0 {
        crate::runqueue::switched(&ctx, prev_pid, still_runnable)
    } else {
        0
    };
    if prev_pid == 0 {
        return 0;
    }
    let voluntary = (count_switches != 0).then_some(!still_runnable);
    if voluntary.is_some() || latency_ns != 0 {
        charge(cgroup_id, voluntary, latency_ns);
    }
    0
}

/// Counts the switch (when `voluntary` is `Some`) and one latency sample (when `latency_ns` is
/// not 0) on the cgroup's entry, creating it on first use.
#[inline(always)]
fn charge(cgroup_id: u64, voluntary: Option<bool>, latency_ns: u64) {
    if add(cgroup_id, voluntary, latency_ns) {
        return;
    }
    match SCHED_CGROUPS.insert(cgroup_id, SchedCgroup::default(), u64::from(BPF_NOEXIST)) {
        // EEXIST: lost the insert race to another CPU; our CPU's slot exists now.
        Ok(()) | Err(EEXIST) => {
            if !add(cgroup_id, voluntary, latency_ns) {
                record_overflow(overflow::SCHED_CGROUPS);
            }
        }
        Err(_) => record_overflow(overflow::SCHED_CGROUPS),
    }
}

/// Adds to this CPU's copy of an existing entry; false when the cgroup has none yet.
#[inline(always)]
fn add(cgroup_id: u64, voluntary: Option<bool>, latency_ns: u64) -> bool {
    let Some(entry) = SCHED_CGROUPS.get_ptr_mut(cgroup_id) else {
        return false;
    };
    // SAFETY: the pointer is this CPU's slot of a per-CPU map value; tracepoints run with
    // preemption disabled, so nothing else writes it concurrently. `runq_bucket` is below
    // RUNQ_BUCKETS by construction (the verifier checks the index again).
    unsafe {
        match voluntary {
            Some(true) => (*entry).switches.voluntary += 1,
            Some(false) => (*entry).switches.involuntary += 1,
            None => {}
        }
        if latency_ns != 0 {
            if let Some(n) = (*entry).runq.buckets.get_mut(runq_bucket(latency_ns)) {
                *n += 1;
            }
            (*entry).runq.sum_ns += latency_ns;
        }
    }
    true
}

#[inline(always)]
pub(crate) fn record_overflow(slot: u32) {
    if let Some(n) = MAP_OVERFLOWS.get_ptr_mut(slot) {
        // SAFETY: per-CPU slot, preemption disabled (see `count`).
        unsafe { *n += 1 };
    }
}

/// `prev_pid` and `prev_state` of the record.
#[inline(always)]
pub(crate) fn read_prev(ctx: &TracePointContext) -> (u32, u64) {
    // SAFETY: see `SCHED_SWITCH_PREEMPTED_STATE` in `sched_switch`.
    let (pid_offset, state_offset, state_size) = unsafe {
        (
            core::ptr::read_volatile(&SCHED_SWITCH_PREV_PID_OFFSET),
            core::ptr::read_volatile(&SCHED_SWITCH_PREV_STATE_OFFSET),
            core::ptr::read_volatile(&SCHED_SWITCH_PREV_STATE_SIZE),
        )
    };
    if pid_offset == DEFAULT_PREV_PID_OFFSET
        && state_offset == DEFAULT_PREV_STATE_OFFSET
        && state_size == 8
    {
        // The layout of every 64-bit kernel since 4.x: plain loads. The verifier only accepts
        // ctx loads at constant offsets, hence this branch; it knows the globals (frozen
        // .rodata) and removes whichever branch is dead, so the check costs nothing at run time.
        let record = ctx.as_ptr() as *const u8;
        // SAFETY: tracefs says the record has a 4-byte `prev_pid` and an 8-byte `prev_state` at
        // these offsets; the verifier checks both accesses against the record again.
        return unsafe {
            (
                record
                    .add(DEFAULT_PREV_PID_OFFSET as usize)
                    .cast::<u32>()
                    .read(),
                record
                    .add(DEFAULT_PREV_STATE_OFFSET as usize)
                    .cast::<u64>()
                    .read(),
            )
        };
    }
    // Any other layout: probe reads at the variable offsets (each about as expensive as the
    // rest of the program). A failed read (an offset outside the record, which tracefs rules
    // out) counts the switch as the one of a running, non-idle task: involuntary.
    // SAFETY: `read_at` goes through bpf_probe_read_kernel, which tolerates bad addresses.
    unsafe {
        let pid = ctx.read_at::<u32>(pid_offset as usize).unwrap_or(u32::MAX);
        let state = if state_size == 4 {
            ctx.read_at::<u32>(state_offset as usize).map(u64::from)
        } else {
            ctx.read_at::<u64>(state_offset as usize)
        }
        .unwrap_or(0);
        (pid, state)
    }
}
