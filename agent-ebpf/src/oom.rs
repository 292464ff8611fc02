//! OOM kills per cgroup of the victim.
//!
//! `oom:mark_victim` names the victim by pid but runs in the context of whichever task hit the
//! limit, so the current cgroup may be another container's (a parent memcg's limit) and reading
//! the victim's cgroup would need `task_struct` offsets. The victim always dies (SIGKILL), and
//! `sched_process_exit` runs in its own context: the pid is remembered at mark time and the
//! kill charged to the current cgroup when that pid exits. One hash lookup per exit, a rare
//! event.

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{bpf_get_current_cgroup_id, bpf_get_current_pid_tgid},
    macros::{map, tracepoint},
    maps::HashMap,
    programs::TracePointContext,
};
use nodemeter_ebpf_common::{
    DEFAULT_OOM_VICTIM_PID_OFFSET, MAX_CGROUPS, OOM_MAX_VICTIMS, overflow,
};

use crate::sched_switch::record_overflow;

const EEXIST: i32 = -17;

#[map]
static OOM_VICTIMS: HashMap<u32, u8> = HashMap::with_max_entries(OOM_MAX_VICTIMS, 0);

#[map]
static OOM_KILLS: HashMap<u64, u64> = HashMap::with_max_entries(MAX_CGROUPS, 0);

#[unsafe(no_mangle)]
static OOM_MARK_VICTIM_PID_OFFSET: u32 = DEFAULT_OOM_VICTIM_PID_OFFSET;

#[tracepoint(category = "oom", name = "mark_victim")]
pub fn oom_mark_victim(ctx: TracePointContext) -> u32 {
    // SAFETY: plain integer global, rewritten by the loader (volatile: not folded).
    let offset = unsafe { core::ptr::read_volatile(&OOM_MARK_VICTIM_PID_OFFSET) };
    // SAFETY: bpf_probe_read_kernel tolerates bad addresses.
    let pid = unsafe { ctx.read_at::<u32>(offset as usize) }.unwrap_or(0);
    if pid != 0 && OOM_VICTIMS.insert(pid, 1u8, 0).is_err() {
        record_overflow(overflow::OOM);
    }
    0
}

#[tracepoint(category = "sched", name = "sched_process_exit")]
pub fn oom_victim_exit(_ctx: TracePointContext) -> u32 {
    // The low half is the thread id, which is what mark_victim reports.
    let pid = bpf_get_current_pid_tgid() as u32;
    // SAFETY: the value is not read, only its presence.
    if unsafe { OOM_VICTIMS.get(pid) }.is_none() {
        return 0;
    }
    let _ = OOM_VICTIMS.remove(pid);
    // SAFETY: no arguments; current is the victim.
    let cgroup_id = unsafe { bpf_get_current_cgroup_id() };
    if let Some(n) = OOM_KILLS.get_ptr_mut(cgroup_id) {
        // SAFETY: a live map value; kills of one cgroup racing on two CPUs are not a concern
        // worth an atomic (which this target lacks): victims of one cgroup exit one by one.
        unsafe { *n += 1 };
        return 0;
    }
    match OOM_KILLS.insert(cgroup_id, 1u64, u64::from(BPF_NOEXIST)) {
        Ok(()) => {}
        Err(EEXIST) => {
            if let Some(n) = OOM_KILLS.get_ptr_mut(cgroup_id) {
                // SAFETY: as above.
                unsafe { *n += 1 };
            }
        }
        Err(_) => record_overflow(overflow::OOM),
    }
    0
}
