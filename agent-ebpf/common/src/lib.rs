//! The one definition of everything the kernel side and the agent exchange through maps:
//! map names, key and value layouts, load-time globals. Both `agent-ebpf` (no_std, bpfel) and
//! `agent` (std, with the `user` feature) compile this file, so a layout change cannot drift
//! between them.
#![no_std]

/// Names of the maps the programs declare, as the loader looks them up.
pub mod maps {
    /// Per-cgroup scheduler data, context switches and run-queue latency in one value so that
    /// a context switch costs one lookup: per-CPU hash (not preallocated) keyed by cgroup v2 id
    /// (`u64`), value [`super::SchedCgroup`].
    pub const SCHED_CGROUPS: &str = "SCHED_CGROUPS";
    /// Per-CPU array of `u64`: how many times a program could not insert a new key into one of
    /// the bounded maps (map full). Indexed by [`super::overflow`] slots.
    pub const MAP_OVERFLOWS: &str = "MAP_OVERFLOWS";
    /// When each task became runnable: array of [`super::RunqStamp`] indexed by the pid's
    /// (thread id's) low bits ([`super::RUNQ_MAX_TASKS`] slots).
    pub const RUNQ_ENQUEUED: &str = "RUNQ_ENQUEUED";
    /// Per-CPU array of one [`super::RunqPending`]: the latency of the task that got this CPU
    /// last, charged to its cgroup when it leaves the CPU (then it is "current").
    pub const RUNQ_PENDING: &str = "RUNQ_PENDING";
    /// Process lifecycle counters: per-CPU hash keyed by cgroup v2 id (`u64`), value
    /// [`super::ProcessCounters`].
    pub const PROCESS_COUNTERS: &str = "PROCESS_COUNTERS";
    /// Tasks chosen as OOM victims that have not exited yet: hash keyed by pid (`u32`), value
    /// unused (`u8`).
    pub const OOM_VICTIMS: &str = "OOM_VICTIMS";
    /// OOM kills per cgroup of the victim: hash keyed by cgroup v2 id (`u64`), value `u64`.
    pub const OOM_KILLS: &str = "OOM_KILLS";
    /// Network traffic per cgroup of the socket: per-CPU hash (not preallocated) keyed by
    /// cgroup v2 id (`u64`), value [`super::NetCounters`].
    pub const NET_COUNTERS: &str = "NET_COUNTERS";
    /// TCP connection events per cgroup of the socket: per-CPU hash (not preallocated) keyed by
    /// cgroup v2 id (`u64`), value [`super::TcpCounters`].
    pub const TCP_COUNTERS: &str = "TCP_COUNTERS";
    /// Which cgroup a TCP socket belongs to: LRU hash keyed by the kernel's `struct sock`
    /// address (`u64`), value [`super::TcpSocket`]. Filled when the socket is first seen,
    /// removed when it reaches `TCP_CLOSE`.
    pub const TCP_SOCKETS: &str = "TCP_SOCKETS";
    /// Cgroup creations and removals: ring buffer of [`super::CgroupEvent`].
    pub const CGROUP_EVENTS: &str = "CGROUP_EVENTS";
}

/// Names of the programs in the object, as the loader looks them up.
pub mod programs {
    /// `sched:sched_switch`, the one program on that hook: counts context switches per cgroup
    /// and turns the stamp of the task switched in into a run-queue latency sample, each part
    /// switched on by a load-time global.
    pub const SCHED_SWITCH: &str = "sched_switch";
    /// `sched:sched_wakeup` and `sched:sched_wakeup_new`: stamps when a task became runnable.
    pub const RUNQ_WAKEUP: &str = "runq_wakeup";
    /// `task:task_newtask`: new processes (not threads) per cgroup of the parent.
    pub const PROCESS_FORK: &str = "process_fork";
    /// `sched:sched_process_exec`.
    pub const PROCESS_EXEC: &str = "process_exec";
    /// `sched:sched_process_exit`: processes whose last thread exited.
    pub const PROCESS_EXIT: &str = "process_exit";
    /// `oom:mark_victim`: remembers the victim's pid.
    pub const OOM_MARK_VICTIM: &str = "oom_mark_victim";
    /// `sched:sched_process_exit`: charges the kill to the victim's cgroup as it exits.
    pub const OOM_VICTIM_EXIT: &str = "oom_victim_exit";
    /// `cgroup_skb/ingress` on the root cgroup: bytes and packets received per socket cgroup.
    pub const NET_INGRESS: &str = "net_ingress";
    /// `cgroup_skb/egress` on the root cgroup: bytes and packets sent per socket cgroup.
    pub const NET_EGRESS: &str = "net_egress";
    /// `sock:inet_sock_set_state`: TCP connects, accepts and open connections.
    pub const TCP_STATE: &str = "tcp_state";
    /// `tcp:tcp_retransmit_skb`: TCP segment retransmissions.
    pub const TCP_RETRANSMIT: &str = "tcp_retransmit";
    /// `cgroup:cgroup_mkdir`: sends a [`super::CgroupEvent`].
    pub const CGROUP_MKDIR: &str = "cgroup_mkdir";
    /// `cgroup:cgroup_rmdir`: sends a [`super::CgroupEvent`].
    pub const CGROUP_RMDIR: &str = "cgroup_rmdir";
}

/// Slots of [`maps::MAP_OVERFLOWS`], one per bounded map whose inserts can fail.
pub mod overflow {
    /// Inserts into [`super::maps::SCHED_CGROUPS`] that failed.
    pub const SCHED_CGROUPS: u32 = 0;
    /// Inserts into [`super::maps::PROCESS_COUNTERS`] that failed.
    pub const PROCESS_COUNTERS: u32 = 1;
    /// Inserts into [`super::maps::OOM_VICTIMS`] or [`super::maps::OOM_KILLS`] that failed.
    pub const OOM: u32 = 2;
    /// Inserts into [`super::maps::NET_COUNTERS`] that failed.
    pub const NET_COUNTERS: u32 = 3;
    /// Inserts into [`super::maps::TCP_COUNTERS`] that failed.
    pub const TCP_COUNTERS: u32 = 4;
    /// TCP events whose socket's cgroup could not be found: not in
    /// [`super::maps::TCP_SOCKETS`] (evicted, or opened before the probe attached) and not
    /// readable from the socket (no BTF offsets) nor from the current task (softirq context).
    pub const TCP_UNATTRIBUTED: u32 = 5;
    /// Tasks switched in without their stamp in [`super::maps::RUNQ_ENQUEUED`], so without a
    /// latency sample: another task whose pid shares the slot overwrote it, or the task was
    /// already runnable when the probe attached (a burst right after loading).
    pub const RUNQ_ENQUEUED: u32 = 6;
    /// Number of slots (the array's size).
    pub const SLOTS: u32 = 7;
    /// Slots below this one count failed inserts into full maps; the others count events lost
    /// for other reasons (evictions, unattributable events).
    pub const MAP_FULL_SLOTS: u32 = 5;

    /// The map each slot counts for, as the agent labels it.
    pub const NAMES: [&str; SLOTS as usize] = [
        super::maps::SCHED_CGROUPS,
        super::maps::PROCESS_COUNTERS,
        super::maps::OOM_KILLS,
        super::maps::NET_COUNTERS,
        super::maps::TCP_COUNTERS,
        super::maps::TCP_SOCKETS,
        super::maps::RUNQ_ENQUEUED,
    ];
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
    /// Non-zero: the `sched_switch` program counts context switches (`u32`).
    pub const SCHED_SWITCH_COUNT_SWITCHES: &str = "SCHED_SWITCH_COUNT_SWITCHES";
    /// Non-zero: the `sched_switch` program measures run-queue latency (`u32`).
    pub const SCHED_SWITCH_RUNQUEUE: &str = "SCHED_SWITCH_RUNQUEUE";
    /// The `prev_state` value the kernel reports for a preempted task: `TASK_REPORT_MAX` (`u64`).
    pub const SCHED_SWITCH_PREEMPTED_STATE: &str = "SCHED_SWITCH_PREEMPTED_STATE";
    /// Byte offset of `next_pid` (4 bytes) in the `sched:sched_switch` record (`u32`).
    pub const SCHED_SWITCH_NEXT_PID_OFFSET: &str = "SCHED_SWITCH_NEXT_PID_OFFSET";
    /// Byte offset of `pid` (4 bytes) in the `sched:sched_wakeup`/`sched_wakeup_new` records
    /// (`u32`; both records have the same layout).
    pub const SCHED_WAKEUP_PID_OFFSET: &str = "SCHED_WAKEUP_PID_OFFSET";
    /// Byte offset of `clone_flags` (8 bytes) in the `task:task_newtask` record (`u32`).
    pub const TASK_NEWTASK_CLONE_FLAGS_OFFSET: &str = "TASK_NEWTASK_CLONE_FLAGS_OFFSET";
    /// Byte offset of `group_dead` (1 byte) in the `sched:sched_process_exit` record (`u32`), or
    /// [`super::FIELD_ABSENT`] on kernels whose record lacks it (then every thread exit counts).
    pub const SCHED_PROCESS_EXIT_GROUP_DEAD_OFFSET: &str = "SCHED_PROCESS_EXIT_GROUP_DEAD_OFFSET";
    /// Byte offset of `pid` (4 bytes) in the `oom:mark_victim` record (`u32`).
    pub const OOM_MARK_VICTIM_PID_OFFSET: &str = "OOM_MARK_VICTIM_PID_OFFSET";
    /// Byte offset of `skaddr` (8 bytes) in the `sock:inet_sock_set_state` record (`u32`).
    pub const INET_SOCK_SET_STATE_SKADDR_OFFSET: &str = "INET_SOCK_SET_STATE_SKADDR_OFFSET";
    /// Byte offset of `oldstate` (4 bytes) in the `sock:inet_sock_set_state` record (`u32`);
    /// `newstate` follows it directly (checked by the loader).
    pub const INET_SOCK_SET_STATE_OLDSTATE_OFFSET: &str = "INET_SOCK_SET_STATE_OLDSTATE_OFFSET";
    /// Byte offset of `protocol` (2 bytes) in the `sock:inet_sock_set_state` record (`u32`).
    pub const INET_SOCK_SET_STATE_PROTOCOL_OFFSET: &str = "INET_SOCK_SET_STATE_PROTOCOL_OFFSET";
    /// Byte offset of `skaddr` (8 bytes) in the `tcp:tcp_retransmit_skb` record (`u32`).
    pub const TCP_RETRANSMIT_SKADDR_OFFSET: &str = "TCP_RETRANSMIT_SKADDR_OFFSET";
    /// Byte offset of `root` in the `cgroup:cgroup_mkdir`/`cgroup_rmdir` records (`u32`).
    pub const CGROUP_EVENT_ROOT_OFFSET: &str = "CGROUP_EVENT_ROOT_OFFSET";
    /// Byte offset of `id` in those records (`u32`).
    pub const CGROUP_EVENT_ID_OFFSET: &str = "CGROUP_EVENT_ID_OFFSET";
    /// Byte offset of the `path` `__data_loc` in those records (`u32`).
    pub const CGROUP_EVENT_PATH_OFFSET: &str = "CGROUP_EVENT_PATH_OFFSET";
    /// Byte offset, in `struct sock`, of the `struct cgroup *` in `sk_cgrp_data` (`u32`), from
    /// the kernel's BTF; [`super::FIELD_ABSENT`] without BTF (then sockets are attributed only
    /// when they connect, from the connecting task).
    pub const SOCK_CGROUP_OFFSET: &str = "SOCK_CGROUP_OFFSET";
    /// Byte offset of `kn` (`struct kernfs_node *`) in `struct cgroup` (`u32`, from BTF).
    pub const CGROUP_KN_OFFSET: &str = "CGROUP_KN_OFFSET";
    /// Byte offset of `id` (`u64`) in `struct kernfs_node` (`u32`, from BTF).
    pub const KERNFS_NODE_ID_OFFSET: &str = "KERNFS_NODE_ID_OFFSET";
}

/// Byte offset of `root` (hierarchy id, 4 bytes) in the `cgroup:cgroup_mkdir`/`cgroup_rmdir`
/// records (both have one layout).
pub const DEFAULT_CGROUP_EVENT_ROOT_OFFSET: u32 = 8;
/// Byte offset of `id` (8 bytes) in those records.
pub const DEFAULT_CGROUP_EVENT_ID_OFFSET: u32 = 16;
/// Byte offset of `path` (a 4-byte `__data_loc`) in those records.
pub const DEFAULT_CGROUP_EVENT_PATH_OFFSET: u32 = 24;
/// Size of [`maps::CGROUP_EVENTS`]: room for about 200 events between two reads.
pub const CGROUP_EVENTS_BYTES: u32 = 64 * 1024;
/// Longest cgroup path an event carries (bytes, including the NUL); longer ones are cut.
pub const CGROUP_PATH_MAX: usize = 256;

/// Kinds of [`CgroupEvent`].
pub mod cgroup_event {
    pub const MKDIR: u32 = 1;
    pub const RMDIR: u32 = 2;
}

/// A cgroup created or removed.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CgroupEvent {
    /// The cgroup id (on cgroup v2, what `bpf_get_current_cgroup_id` returns for its tasks).
    pub id: u64,
    /// [`cgroup_event::MKDIR`] or [`cgroup_event::RMDIR`].
    pub kind: u32,
    /// The hierarchy id (`root` in the record): 0 for cgroup v2, the v1 hierarchy's otherwise.
    pub hierarchy: u32,
    /// Bytes of `path` used, including the NUL.
    pub path_len: u32,
    pub _pad: u32,
    /// The path relative to the hierarchy's root, NUL-terminated.
    pub path: [u8; CGROUP_PATH_MAX],
}

/// Record offsets of `sock:inet_sock_set_state` on 64-bit kernels since 4.16.
pub const DEFAULT_INET_SOCK_SKADDR_OFFSET: u32 = 8;
/// See [`DEFAULT_INET_SOCK_SKADDR_OFFSET`].
pub const DEFAULT_INET_SOCK_OLDSTATE_OFFSET: u32 = 16;
/// See [`DEFAULT_INET_SOCK_SKADDR_OFFSET`].
pub const DEFAULT_INET_SOCK_PROTOCOL_OFFSET: u32 = 30;
/// `skaddr` offset in `tcp:tcp_retransmit_skb` on 64-bit kernels.
pub const DEFAULT_TCP_RETRANSMIT_SKADDR_OFFSET: u32 = 16;
/// `IPPROTO_TCP`.
pub const IPPROTO_TCP: u16 = 6;

/// TCP socket states (`include/net/tcp_states.h`), as `inet_sock_set_state` reports them.
pub mod tcp_state {
    pub const ESTABLISHED: u32 = 1;
    pub const SYN_SENT: u32 = 2;
    pub const SYN_RECV: u32 = 3;
    pub const CLOSE: u32 = 7;
    pub const LISTEN: u32 = 10;
}

/// TCP sockets whose cgroup is remembered at once ([`maps::TCP_SOCKETS`]); the least recently
/// used are evicted beyond this.
pub const TCP_MAX_SOCKETS: u32 = 65_536;

/// What [`maps::TCP_SOCKETS`] remembers about one socket.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpSocket {
    /// The cgroup v2 id its events are charged to.
    pub cgroup_id: u64,
    /// 1 while the socket is counted in its cgroup's open connections.
    pub established: u64,
}

/// Network traffic of one cgroup's sockets, per CPU. Bytes are IP packet lengths (network
/// header included, link-layer header not); packets count GSO segments.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetCounters {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
}

impl NetCounters {
    /// Adds another CPU's counters to these.
    #[inline]
    pub fn accumulate(&mut self, other: &Self) {
        self.rx_bytes = self.rx_bytes.wrapping_add(other.rx_bytes);
        self.rx_packets = self.rx_packets.wrapping_add(other.rx_packets);
        self.tx_bytes = self.tx_bytes.wrapping_add(other.tx_bytes);
        self.tx_packets = self.tx_packets.wrapping_add(other.tx_packets);
    }
}

/// TCP connection events of one cgroup's sockets, per CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpCounters {
    /// Active opens that reached `ESTABLISHED` (`SYN_SENT` → `ESTABLISHED`).
    pub connects: u64,
    /// Active opens that failed (`SYN_SENT` → `CLOSE`: refused, timed out, reset).
    pub connect_failures: u64,
    /// Passive opens that reached `ESTABLISHED` (`SYN_RECV` → `ESTABLISHED`): connections
    /// ready to be accepted.
    pub accepts: u64,
    /// Segments retransmitted.
    pub retransmits: u64,
    /// Connections that entered `ESTABLISHED` minus those that left it, on this CPU; only the
    /// sum over CPUs (wrapping) is meaningful.
    pub open_delta: u64,
}

impl TcpCounters {
    /// Adds another CPU's counters to these.
    #[inline]
    pub fn accumulate(&mut self, other: &Self) {
        self.connects = self.connects.wrapping_add(other.connects);
        self.connect_failures = self.connect_failures.wrapping_add(other.connect_failures);
        self.accepts = self.accepts.wrapping_add(other.accepts);
        self.retransmits = self.retransmits.wrapping_add(other.retransmits);
        self.open_delta = self.open_delta.wrapping_add(other.open_delta);
    }

    /// Open connections: the CPUs' deltas summed, as a signed count.
    pub fn open(&self) -> i64 {
        self.open_delta as i64
    }
}

/// Offset of `pid` (4 bytes) in the `oom:mark_victim` record (`u32`).
pub const DEFAULT_OOM_VICTIM_PID_OFFSET: u32 = 8;
/// OOM victims awaiting their exit at once; far more than a node sees.
pub const OOM_MAX_VICTIMS: u32 = 1024;

/// A record-offset global's value when the field does not exist on this kernel.
pub const FIELD_ABSENT: u32 = u32::MAX;
/// `next_pid` offset in `sched:sched_switch` on 64-bit kernels since 4.x.
pub const DEFAULT_NEXT_PID_OFFSET: u32 = 56;
/// `pid` offset in `sched:sched_wakeup` on 64-bit kernels.
pub const DEFAULT_WAKEUP_PID_OFFSET: u32 = 24;
/// `clone_flags` offset in `task:task_newtask` on 64-bit kernels.
pub const DEFAULT_CLONE_FLAGS_OFFSET: u32 = 32;
/// `group_dead` offset in `sched:sched_process_exit` (Linux 6.x).
pub const DEFAULT_GROUP_DEAD_OFFSET: u32 = 32;
/// `CLONE_THREAD`: the new task is a thread of its parent's process.
pub const CLONE_THREAD: u64 = 0x0001_0000;

/// Slots of the stamp table ([`maps::RUNQ_ENQUEUED`]), a power of two: a task's slot is its
/// pid modulo this. Two tasks runnable at once whose pids share a slot lose a sample.
pub const RUNQ_MAX_TASKS: u32 = 65_536;

/// When a task became runnable.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunqStamp {
    /// The task whose stamp this is (the slot is shared by pids with the same low bits).
    pub pid: u32,
    pub _pad: u32,
    /// `bpf_ktime_get_ns()`; 0 once the task got the CPU.
    pub enqueued_ns: u64,
}

/// Buckets of [`RunqHistogram`]: bucket 0 holds latencies below 1 µs, bucket `k` (1 ≤ k < 26)
/// those in [2^(k-1) µs, 2^k µs), the last one everything from 2^25 µs (33.6 s) up.
pub const RUNQ_BUCKETS: usize = 27;

/// Index into [`RunqHistogram::buckets`] for a latency in nanoseconds: the bit length of the
/// whole microseconds, clamped to the last bucket. No loops, for the verifier.
#[inline(always)]
pub fn runq_bucket(latency_ns: u64) -> usize {
    let mut us = latency_ns / 1000;
    let mut bits = 0usize;
    if us >= 1 << 32 {
        us >>= 32;
        bits += 32;
    }
    if us >= 1 << 16 {
        us >>= 16;
        bits += 16;
    }
    if us >= 1 << 8 {
        us >>= 8;
        bits += 8;
    }
    if us >= 1 << 4 {
        us >>= 4;
        bits += 4;
    }
    if us >= 1 << 2 {
        us >>= 2;
        bits += 2;
    }
    if us >= 1 << 1 {
        us >>= 1;
        bits += 1;
    }
    bits += us as usize;
    if bits >= RUNQ_BUCKETS {
        RUNQ_BUCKETS - 1
    } else {
        bits
    }
}

/// Upper bound, in seconds, of bucket `k` (the `le` label): 2^k µs; the last is +Inf.
pub fn runq_bucket_upper_seconds(k: usize) -> f64 {
    if k + 1 >= RUNQ_BUCKETS {
        f64::INFINITY
    } else {
        (1u64 << k) as f64 * 1e-6
    }
}

/// The run-queue latency histogram of one cgroup: counts per bucket (not cumulative) and the
/// sum of all latencies.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunqHistogram {
    pub buckets: [u64; RUNQ_BUCKETS],
    pub sum_ns: u64,
}

impl Default for RunqHistogram {
    fn default() -> Self {
        Self {
            buckets: [0; RUNQ_BUCKETS],
            sum_ns: 0,
        }
    }
}

impl RunqHistogram {
    /// Samples in the histogram.
    pub fn count(&self) -> u64 {
        self.buckets.iter().fold(0u64, |t, n| t.wrapping_add(*n))
    }
}

/// Scheduler data of one cgroup, per CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedCgroup {
    pub switches: SchedCounters,
    pub runq: RunqHistogram,
}

/// The latency of the task that got a CPU, waiting to be charged to its cgroup.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunqPending {
    /// `bpf_ktime_get_ns()` difference; 0 means nothing pending.
    pub latency_ns: u64,
    pub pid: u32,
    pub _pad: u32,
}

/// Process lifecycle counts of one cgroup, per CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessCounters {
    /// New processes (clone without `CLONE_THREAD`) created by a task of this cgroup.
    pub forks: u64,
    /// Successful `execve`s.
    pub execs: u64,
    /// Processes whose last thread exited.
    pub exits: u64,
}

impl ProcessCounters {
    /// Adds another CPU's counters to these.
    #[inline]
    pub fn accumulate(&mut self, other: &Self) {
        self.forks = self.forks.wrapping_add(other.forks);
        self.execs = self.execs.wrapping_add(other.execs);
        self.exits = self.exits.wrapping_add(other.exits);
    }
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
#[cfg(feature = "user")]
// SAFETY: plain-old-data, `repr(C)`, every bit pattern valid, no padding.
unsafe impl aya::Pod for RunqHistogram {}
#[cfg(feature = "user")]
// SAFETY: plain-old-data, `repr(C)`, every bit pattern valid, no padding.
unsafe impl aya::Pod for SchedCgroup {}
#[cfg(feature = "user")]
// SAFETY: plain-old-data, `repr(C)`, every bit pattern valid, no padding.
unsafe impl aya::Pod for ProcessCounters {}
#[cfg(feature = "user")]
// SAFETY: plain-old-data, `repr(C)`, every bit pattern valid, no padding.
unsafe impl aya::Pod for NetCounters {}
#[cfg(feature = "user")]
// SAFETY: plain-old-data, `repr(C)`, every bit pattern valid, no padding.
unsafe impl aya::Pod for TcpCounters {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_log2_of_microseconds() {
        assert_eq!(runq_bucket(0), 0);
        assert_eq!(runq_bucket(999), 0);
        assert_eq!(runq_bucket(1_000), 1);
        assert_eq!(runq_bucket(1_999), 1);
        assert_eq!(runq_bucket(2_000), 2);
        assert_eq!(runq_bucket(3_999), 2);
        assert_eq!(runq_bucket(4_000), 3);
        // 1 ms = 1000 µs: [512, 1024) µs is bucket 10, whose upper bound is 1.024 ms.
        assert_eq!(runq_bucket(1_000_000), 10);
        assert!(runq_bucket_upper_seconds(10) > 1e-3);
        assert_eq!(runq_bucket(u64::MAX), RUNQ_BUCKETS - 1);
        assert_eq!(runq_bucket_upper_seconds(RUNQ_BUCKETS - 1), f64::INFINITY);
        for k in 0..RUNQ_BUCKETS - 1 {
            let upper_ns = (runq_bucket_upper_seconds(k) * 1e9) as u64;
            assert_eq!(runq_bucket(upper_ns - 1), k, "bucket {k}");
            assert_eq!(runq_bucket(upper_ns), k + 1, "bucket {k}");
        }
    }
}
