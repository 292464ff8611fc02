//! Cgroup creation and removal (`cgroup:cgroup_mkdir`, `cgroup:cgroup_rmdir`), sent to the
//! agent through a ring buffer so the container inventory can react at once instead of at its
//! next rescan. Rare events: one wake-up each is fine.

use aya_ebpf::{
    EbpfContext as _,
    helpers::bpf_probe_read_kernel_str_bytes,
    macros::{map, tracepoint},
    maps::RingBuf,
    programs::TracePointContext,
};
use nodemeter_ebpf_common::{
    CGROUP_EVENTS_BYTES, CgroupEvent, DEFAULT_CGROUP_EVENT_ID_OFFSET,
    DEFAULT_CGROUP_EVENT_PATH_OFFSET, DEFAULT_CGROUP_EVENT_ROOT_OFFSET, cgroup_event,
};

#[map]
static CGROUP_EVENTS: RingBuf = RingBuf::with_byte_size(CGROUP_EVENTS_BYTES, 0);

#[unsafe(no_mangle)]
static CGROUP_EVENT_ROOT_OFFSET: u32 = DEFAULT_CGROUP_EVENT_ROOT_OFFSET;
#[unsafe(no_mangle)]
static CGROUP_EVENT_ID_OFFSET: u32 = DEFAULT_CGROUP_EVENT_ID_OFFSET;
#[unsafe(no_mangle)]
static CGROUP_EVENT_PATH_OFFSET: u32 = DEFAULT_CGROUP_EVENT_PATH_OFFSET;

#[tracepoint(category = "cgroup", name = "cgroup_mkdir")]
pub fn cgroup_mkdir(ctx: TracePointContext) -> u32 {
    send(&ctx, cgroup_event::MKDIR);
    0
}

#[tracepoint(category = "cgroup", name = "cgroup_rmdir")]
pub fn cgroup_rmdir(ctx: TracePointContext) -> u32 {
    send(&ctx, cgroup_event::RMDIR);
    0
}

#[inline(always)]
fn send(ctx: &TracePointContext, kind: u32) {
    // SAFETY: plain integer globals, rewritten by the loader (volatile: not folded).
    let (root_offset, id_offset, path_offset) = unsafe {
        (
            core::ptr::read_volatile(&CGROUP_EVENT_ROOT_OFFSET),
            core::ptr::read_volatile(&CGROUP_EVENT_ID_OFFSET),
            core::ptr::read_volatile(&CGROUP_EVENT_PATH_OFFSET),
        )
    };
    // A full ring buffer drops the event; the inventory's periodic rescan catches up.
    let Some(mut entry) = CGROUP_EVENTS.reserve::<CgroupEvent>(0) else {
        return;
    };
    let event = entry.as_mut_ptr();
    // SAFETY: `event` points to a reserved, exclusively owned entry; every field is written
    // before submit. Record reads go through bpf_probe_read_kernel, which tolerates bad
    // addresses; the path is a `__data_loc` string: its u32 holds offset (low 16 bits) and
    // length in the record.
    unsafe {
        (*event).kind = kind;
        (*event).hierarchy = ctx.read_at::<u32>(root_offset as usize).unwrap_or(u32::MAX);
        (*event).id = ctx.read_at::<u64>(id_offset as usize).unwrap_or(0);
        let loc = ctx.read_at::<u32>(path_offset as usize).unwrap_or(0);
        let src = (ctx.as_ptr() as *const u8).add((loc & 0xffff) as usize);
        (*event).path_len = match bpf_probe_read_kernel_str_bytes(src, &mut (*event).path) {
            Ok(path) => path.len() as u32,
            Err(_) => 0,
        };
    }
    entry.submit(0);
}
