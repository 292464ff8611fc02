//! Process lifecycle per cgroup: forks, execs, exits. All three hooks run in the context of the
//! task concerned (the parent for a fork), so `bpf_get_current_cgroup_id()` is the cgroup to
//! charge. Rare events: record fields are read with `bpf_probe_read_kernel` at the offsets
//! tracefs gave, without a fast path.

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::bpf_get_current_cgroup_id,
    macros::{map, tracepoint},
    maps::PerCpuHashMap,
    programs::TracePointContext,
};
use nodemeter_ebpf_common::{
    CLONE_THREAD, DEFAULT_CLONE_FLAGS_OFFSET, DEFAULT_GROUP_DEAD_OFFSET, FIELD_ABSENT, MAX_CGROUPS,
    ProcessCounters, overflow,
};

use crate::sched_switch::record_overflow;

const EEXIST: i32 = -17;

#[map]
static PROCESS_COUNTERS: PerCpuHashMap<u64, ProcessCounters> =
    PerCpuHashMap::with_max_entries(MAX_CGROUPS, 0);

#[unsafe(no_mangle)]
static TASK_NEWTASK_CLONE_FLAGS_OFFSET: u32 = DEFAULT_CLONE_FLAGS_OFFSET;
#[unsafe(no_mangle)]
static SCHED_PROCESS_EXIT_GROUP_DEAD_OFFSET: u32 = DEFAULT_GROUP_DEAD_OFFSET;

#[derive(Clone, Copy)]
enum Event {
    Fork,
    Exec,
    Exit,
}

#[tracepoint(category = "task", name = "task_newtask")]
pub fn process_fork(ctx: TracePointContext) -> u32 {
    // SAFETY: plain integer global, rewritten by the loader (volatile: not folded).
    let offset = unsafe { core::ptr::read_volatile(&TASK_NEWTASK_CLONE_FLAGS_OFFSET) };
    // SAFETY: bpf_probe_read_kernel tolerates bad addresses.
    let flags = unsafe { ctx.read_at::<u64>(offset as usize) }.unwrap_or(0);
    if flags & CLONE_THREAD == 0 {
        count(Event::Fork);
    }
    0
}

#[tracepoint(category = "sched", name = "sched_process_exec")]
pub fn process_exec(_ctx: TracePointContext) -> u32 {
    count(Event::Exec);
    0
}

#[tracepoint(category = "sched", name = "sched_process_exit")]
pub fn process_exit(ctx: TracePointContext) -> u32 {
    // SAFETY: plain integer global (see above).
    let offset = unsafe { core::ptr::read_volatile(&SCHED_PROCESS_EXIT_GROUP_DEAD_OFFSET) };
    if offset != FIELD_ABSENT {
        // SAFETY: bpf_probe_read_kernel tolerates bad addresses.
        let group_dead = unsafe { ctx.read_at::<u8>(offset as usize) }.unwrap_or(1);
        if group_dead == 0 {
            // A thread exited; the process lives on.
            return 0;
        }
    }
    count(Event::Exit);
    0
}

#[inline(always)]
fn count(event: Event) {
    // SAFETY: no arguments; reads the current task.
    let cgroup_id = unsafe { bpf_get_current_cgroup_id() };
    if bump(cgroup_id, event) {
        return;
    }
    match PROCESS_COUNTERS.insert(
        cgroup_id,
        ProcessCounters::default(),
        u64::from(BPF_NOEXIST),
    ) {
        Ok(()) | Err(EEXIST) => {
            if !bump(cgroup_id, event) {
                record_overflow(overflow::PROCESS_COUNTERS);
            }
        }
        Err(_) => record_overflow(overflow::PROCESS_COUNTERS),
    }
}

#[inline(always)]
fn bump(cgroup_id: u64, event: Event) -> bool {
    let Some(c) = PROCESS_COUNTERS.get_ptr_mut(cgroup_id) else {
        return false;
    };
    // SAFETY: this CPU's slot of a per-CPU value; preemption is disabled in tracepoints.
    unsafe {
        match event {
            Event::Fork => (*c).forks += 1,
            Event::Exec => (*c).execs += 1,
            Event::Exit => (*c).exits += 1,
        }
    }
    true
}
