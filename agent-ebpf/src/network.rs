//! Network traffic per container, from `cgroup_skb` programs attached to the root of the
//! cgroup v2 hierarchy (effective for every cgroup below it).
//!
//! The kernel runs them for packets of full sockets only (`__cgroup_bpf_run_filter_skb` skips
//! request and time-wait sockets), and `bpf_skb_cgroup_id` is the cgroup the socket was created
//! in: traffic is charged to the container whose process opened the socket, not to the pod's
//! network namespace. Both hooks see the packet from its network header on, so bytes are IP
//! lengths. A GSO packet counts as its segments (`gso_segs`), so a 64 KiB TSO send over a
//! 1500-byte MTU counts as about 45 packets, as the wire would.

use aya_ebpf::{
    bindings::{BPF_F_NO_PREALLOC, BPF_NOEXIST},
    helpers::bpf_skb_cgroup_id,
    macros::{cgroup_skb, map},
    maps::PerCpuHashMap,
    programs::SkBuffContext,
};
use nodemeter_ebpf_common::{MAX_CGROUPS, NetCounters, overflow};

use crate::sched_switch::record_overflow;

const EEXIST: i32 = -17;
/// What a `cgroup_skb` program returns to let the packet through.
const ALLOW: i32 = 1;

/// Allocated on insert: 32 bytes × CPUs × MAX_CGROUPS preallocated would reserve tens of MB on
/// a large node for cgroups that never open a socket.
#[map]
static NET_COUNTERS: PerCpuHashMap<u64, NetCounters> =
    PerCpuHashMap::with_max_entries(MAX_CGROUPS, BPF_F_NO_PREALLOC);

#[derive(Clone, Copy)]
enum Direction {
    Receive,
    Transmit,
}

#[cgroup_skb(ingress)]
pub fn net_ingress(ctx: SkBuffContext) -> i32 {
    count(&ctx, Direction::Receive);
    ALLOW
}

#[cgroup_skb(egress)]
pub fn net_egress(ctx: SkBuffContext) -> i32 {
    count(&ctx, Direction::Transmit);
    ALLOW
}

#[inline(always)]
fn count(ctx: &SkBuffContext, direction: Direction) {
    let skb = ctx.skb.skb;
    // SAFETY: `skb` is the context pointer the kernel passed; the helper reads the socket's
    // cgroup and returns 0 when there is none.
    let cgroup_id = unsafe { bpf_skb_cgroup_id(skb) };
    if cgroup_id == 0 {
        return;
    }
    // SAFETY: context field loads the verifier rewrites into kernel skb accesses.
    let (bytes, segments) = unsafe { (u64::from((*skb).len), u64::from((*skb).gso_segs)) };
    let packets = if segments == 0 { 1 } else { segments };
    if add(cgroup_id, direction, bytes, packets) {
        return;
    }
    match NET_COUNTERS.insert(cgroup_id, NetCounters::default(), u64::from(BPF_NOEXIST)) {
        Ok(()) | Err(EEXIST) => {
            if !add(cgroup_id, direction, bytes, packets) {
                record_overflow(overflow::NET_COUNTERS);
            }
        }
        Err(_) => record_overflow(overflow::NET_COUNTERS),
    }
}

/// Adds to this CPU's counters of an existing entry; false when the cgroup has none yet.
#[inline(always)]
fn add(cgroup_id: u64, direction: Direction, bytes: u64, packets: u64) -> bool {
    let Some(c) = NET_COUNTERS.get_ptr_mut(cgroup_id) else {
        return false;
    };
    // SAFETY: this CPU's copy of a live per-CPU value (migration is disabled while the program
    // runs). A softirq sending on the same CPU can interrupt a task's send between load and
    // store and lose one update; rare enough not to pay for atomics.
    unsafe {
        match direction {
            Direction::Receive => {
                (*c).rx_bytes += bytes;
                (*c).rx_packets += packets;
            }
            Direction::Transmit => {
                (*c).tx_bytes += bytes;
                (*c).tx_packets += packets;
            }
        }
    }
    true
}
