//! Run-queue latency per cgroup: how long a runnable task waited for a CPU.
//!
//! A task becomes runnable when it is woken (`sched_wakeup`, `sched_wakeup_new`) or when it is
//! switched out while still runnable (preempted or yielding; `sched_switch` with a running
//! `prev_state`). Both stamp the time in [`RUNQ_ENQUEUED`]. When `sched_switch` switches the task
//! in (the `sched_switch` program calls [`switched`]), the wait is now minus the stamp.
//!
//! The stamps live in a plain array indexed by the pid's low bits, not a hash: an array access
//! is inlined by the verifier, where a hash lookup is a helper call and a walk, and this runs up
//! to three times per context switch. Two runnable tasks whose pids share the low bits evict
//! each other's stamp; the slot keeps the pid, so the loser is noticed at switch-in and counted
//! (`overflow::RUNQ_ENQUEUED`) instead of measured against the wrong stamp.
//!
//! Which cgroup to charge: at switch-in "current" is still the previous task, and at wakeup it
//! is the waker, so neither `bpf_get_current_cgroup_id()` is the waiting task's. Reading the
//! next task's cgroup needs `task_struct` offsets, which Rust programs cannot relocate. Instead
//! the latency is parked in a per-CPU slot ([`RUNQ_PENDING`]) and charged at the next
//! `sched_switch` on the same CPU, whose `prev` is exactly that task: then it is current and
//! the helper returns its cgroup, and the sample goes into the same per-cgroup entry
//! (`SCHED_CGROUPS`) as the context-switch count, one map lookup for both. The sample lands one time slice late, which a collection
//! cycle of seconds does not notice.

use aya_ebpf::{
    EbpfContext as _,
    helpers::bpf_ktime_get_ns,
    macros::{map, tracepoint},
    maps::{Array, PerCpuArray},
    programs::TracePointContext,
};
use nodemeter_ebpf_common::{
    DEFAULT_NEXT_PID_OFFSET, DEFAULT_WAKEUP_PID_OFFSET, RUNQ_MAX_TASKS, RunqPending, RunqStamp,
    overflow,
};

use crate::sched_switch::record_overflow;

#[map]
static RUNQ_ENQUEUED: Array<RunqStamp> = Array::with_max_entries(RUNQ_MAX_TASKS, 0);

#[map]
static RUNQ_PENDING: PerCpuArray<RunqPending> = PerCpuArray::with_max_entries(1, 0);

#[unsafe(no_mangle)]
static SCHED_SWITCH_NEXT_PID_OFFSET: u32 = DEFAULT_NEXT_PID_OFFSET;
#[unsafe(no_mangle)]
static SCHED_WAKEUP_PID_OFFSET: u32 = DEFAULT_WAKEUP_PID_OFFSET;

/// Attached to both `sched:sched_wakeup` and `sched:sched_wakeup_new` (same record layout).
#[tracepoint(category = "sched", name = "sched_wakeup")]
pub fn runq_wakeup(ctx: TracePointContext) -> u32 {
    // SAFETY: plain integer global, rewritten by the loader (volatile: not folded).
    let offset = unsafe { core::ptr::read_volatile(&SCHED_WAKEUP_PID_OFFSET) };
    let pid = if offset == DEFAULT_WAKEUP_PID_OFFSET {
        // Constant ctx offset, as the verifier requires for direct loads; see `read_prev`.
        // SAFETY: tracefs says a 4-byte pid is at this offset; the verifier checks it again.
        unsafe {
            (ctx.as_ptr() as *const u8)
                .add(DEFAULT_WAKEUP_PID_OFFSET as usize)
                .cast::<u32>()
                .read()
        }
    } else {
        // SAFETY: bpf_probe_read_kernel tolerates bad addresses.
        unsafe { ctx.read_at::<u32>(offset as usize) }.unwrap_or(0)
    };
    if pid != 0 {
        // SAFETY: no arguments.
        stamp(pid, unsafe { bpf_ktime_get_ns() });
    }
    0
}

/// The switch-in half, called by the `sched_switch` program with what it already read.
/// Returns the latency parked for `prev` (the current task) to charge to its cgroup, or 0.
#[inline(always)]
pub(crate) fn switched(ctx: &TracePointContext, prev_pid: u32, still_runnable: bool) -> u64 {
    // SAFETY: no arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    let next_pid = read_next_pid(ctx);

    let Some(pending) = RUNQ_PENDING.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: this CPU's slot; tracepoints run with preemption disabled.
    let parked = unsafe { *pending };
    // Current is `prev`: the parked latency is its own when the pids match.
    let to_charge = if parked.pid == prev_pid && prev_pid != 0 {
        parked.latency_ns
    } else {
        0
    };

    if prev_pid != 0 && still_runnable {
        stamp(prev_pid, now);
    }

    let mut latency_ns = 0;
    if next_pid != 0 {
        if let Some(slot) = RUNQ_ENQUEUED.get_ptr_mut(next_pid & (RUNQ_MAX_TASKS - 1)) {
            // SAFETY: an array value pointer; a racing writer on another CPU can only replace
            // the stamp with a newer one (of this task, the right one to use anyway, or of
            // another, which the pid check catches).
            unsafe {
                let stamp = *slot;
                if stamp.pid != next_pid {
                    record_overflow(overflow::RUNQ_ENQUEUED);
                } else if stamp.enqueued_ns != 0 && now > stamp.enqueued_ns {
                    latency_ns = now - stamp.enqueued_ns;
                }
                // Consumed: a later switch-in without a new wakeup must not reuse it.
                (*slot).enqueued_ns = 0;
            }
        }
    }
    // SAFETY: this CPU's slot (see above).
    unsafe {
        *pending = RunqPending {
            latency_ns,
            pid: next_pid,
            _pad: 0,
        };
    }
    to_charge
}

/// Records when `pid` became runnable, in its slot of the stamp table.
#[inline(always)]
fn stamp(pid: u32, now: u64) {
    if let Some(slot) = RUNQ_ENQUEUED.get_ptr_mut(pid & (RUNQ_MAX_TASKS - 1)) {
        // SAFETY: an array value pointer (always valid for an index below the size).
        unsafe {
            *slot = RunqStamp {
                pid,
                _pad: 0,
                enqueued_ns: now,
            };
        }
    }
}

#[inline(always)]
fn read_next_pid(ctx: &TracePointContext) -> u32 {
    // SAFETY: plain integer global (see above).
    let offset = unsafe { core::ptr::read_volatile(&SCHED_SWITCH_NEXT_PID_OFFSET) };
    if offset == DEFAULT_NEXT_PID_OFFSET {
        // SAFETY: tracefs says a 4-byte next_pid is here; the verifier checks it again.
        unsafe {
            (ctx.as_ptr() as *const u8)
                .add(DEFAULT_NEXT_PID_OFFSET as usize)
                .cast::<u32>()
                .read()
        }
    } else {
        // SAFETY: bpf_probe_read_kernel tolerates bad addresses.
        unsafe { ctx.read_at::<u32>(offset as usize) }.unwrap_or(0)
    }
}
