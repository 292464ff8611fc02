//! TCP connection events per container: connects (ok and failed), accepts, retransmits and the
//! number of open connections, from `sock:inet_sock_set_state` and `tcp:tcp_retransmit_skb`.
//!
//! Which cgroup to charge: both tracepoints often run in softirq context (a SYN-ACK or RST
//! arriving, a retransmit timer), where the current task is unrelated to the socket. The socket
//! itself knows its cgroup (`sk->sk_cgrp_data`, set when the socket is created; an accepted
//! socket inherits its listener's), and the loader passes the offsets to it from the kernel's
//! BTF. The answer is cached per socket address in an LRU map ([`TCP_SOCKETS`]), so the three
//! pointer reads happen once per socket, and the entry is dropped when the socket closes.
//!
//! Without BTF the offsets are absent: a socket is then attributed only when it is seen in task
//! context, at `CLOSE` → `SYN_SENT` (the `connect()` call) or `CLOSE` → `LISTEN`. Accepted
//! sockets and sockets opened before the probe attached stay unattributed; so do sockets whose
//! entry the LRU evicted. Such events are counted in the `TCP_UNATTRIBUTED` overflow slot.

use aya_ebpf::{
    bindings::{BPF_F_NO_PREALLOC, BPF_NOEXIST},
    helpers::{bpf_get_current_cgroup_id, bpf_probe_read_kernel},
    macros::{map, tracepoint},
    maps::{LruHashMap, PerCpuHashMap},
    programs::TracePointContext,
};
use nodemeter_ebpf_common::{
    DEFAULT_INET_SOCK_OLDSTATE_OFFSET, DEFAULT_INET_SOCK_PROTOCOL_OFFSET,
    DEFAULT_INET_SOCK_SKADDR_OFFSET, DEFAULT_TCP_RETRANSMIT_SKADDR_OFFSET, FIELD_ABSENT,
    IPPROTO_TCP, MAX_CGROUPS, TCP_MAX_SOCKETS, TcpCounters, TcpSocket, overflow, tcp_state,
};

use crate::sched_switch::record_overflow;

const EEXIST: i32 = -17;

#[map]
static TCP_COUNTERS: PerCpuHashMap<u64, TcpCounters> =
    PerCpuHashMap::with_max_entries(MAX_CGROUPS, BPF_F_NO_PREALLOC);

#[map]
static TCP_SOCKETS: LruHashMap<u64, TcpSocket> = LruHashMap::with_max_entries(TCP_MAX_SOCKETS, 0);

#[unsafe(no_mangle)]
static INET_SOCK_SET_STATE_SKADDR_OFFSET: u32 = DEFAULT_INET_SOCK_SKADDR_OFFSET;
#[unsafe(no_mangle)]
static INET_SOCK_SET_STATE_OLDSTATE_OFFSET: u32 = DEFAULT_INET_SOCK_OLDSTATE_OFFSET;
#[unsafe(no_mangle)]
static INET_SOCK_SET_STATE_PROTOCOL_OFFSET: u32 = DEFAULT_INET_SOCK_PROTOCOL_OFFSET;
#[unsafe(no_mangle)]
static TCP_RETRANSMIT_SKADDR_OFFSET: u32 = DEFAULT_TCP_RETRANSMIT_SKADDR_OFFSET;
#[unsafe(no_mangle)]
static SOCK_CGROUP_OFFSET: u32 = FIELD_ABSENT;
#[unsafe(no_mangle)]
static CGROUP_KN_OFFSET: u32 = FIELD_ABSENT;
#[unsafe(no_mangle)]
static KERNFS_NODE_ID_OFFSET: u32 = FIELD_ABSENT;

#[derive(Clone, Copy)]
enum Event {
    Connect,
    ConnectFailure,
    Accept,
    Closed,
    Retransmit,
}

#[tracepoint(category = "sock", name = "inet_sock_set_state")]
pub fn tcp_state(ctx: TracePointContext) -> u32 {
    // SAFETY: plain integer globals, rewritten by the loader (volatile: not folded).
    let (skaddr_offset, state_offset, protocol_offset) = unsafe {
        (
            core::ptr::read_volatile(&INET_SOCK_SET_STATE_SKADDR_OFFSET),
            core::ptr::read_volatile(&INET_SOCK_SET_STATE_OLDSTATE_OFFSET),
            core::ptr::read_volatile(&INET_SOCK_SET_STATE_PROTOCOL_OFFSET),
        )
    };
    // SAFETY: bpf_probe_read_kernel tolerates bad addresses; tracefs gave the offsets.
    let protocol = unsafe { ctx.read_at::<u16>(protocol_offset as usize) }.unwrap_or(0);
    if protocol != IPPROTO_TCP {
        return 0;
    }
    // SAFETY: as above; `newstate` directly follows `oldstate` (the loader checks it).
    let (sk, states) = unsafe {
        (
            ctx.read_at::<u64>(skaddr_offset as usize).unwrap_or(0),
            ctx.read_at::<[u32; 2]>(state_offset as usize)
                .unwrap_or([0, 0]),
        )
    };
    let [old, new] = states;
    if sk == 0 {
        return 0;
    }
    let event = match (old, new) {
        (tcp_state::SYN_SENT, tcp_state::ESTABLISHED) => Some(Event::Connect),
        (tcp_state::SYN_SENT, tcp_state::CLOSE) => Some(Event::ConnectFailure),
        (tcp_state::SYN_RECV, tcp_state::ESTABLISHED) => Some(Event::Accept),
        (tcp_state::ESTABLISHED, _) => Some(Event::Closed),
        _ => None,
    };
    // `connect()` and `listen()` run in the socket owner's task: the one moment the current
    // cgroup is the socket's, whatever the offsets say.
    let task_context =
        old == tcp_state::CLOSE && (new == tcp_state::SYN_SENT || new == tcp_state::LISTEN);
    if event.is_some() || task_context {
        match socket(sk, task_context) {
            Some(socket) => {
                if let Some(event) = event {
                    // SAFETY: a live LRU value; only this socket's events (serialised by the
                    // socket lock) write it.
                    let socket = unsafe { &mut *socket };
                    match event {
                        Event::Connect | Event::Accept => socket.established = 1,
                        // A connection established before the probe attached was never
                        // counted as open, so it must not be counted as closed either.
                        Event::Closed if socket.established == 0 => return 0,
                        _ => socket.established = 0,
                    }
                    count(socket.cgroup_id, event);
                }
            }
            None => {
                if event.is_some() {
                    record_overflow(overflow::TCP_UNATTRIBUTED);
                }
            }
        }
    }
    if new == tcp_state::CLOSE {
        let _ = TCP_SOCKETS.remove(sk);
    }
    0
}

#[tracepoint(category = "tcp", name = "tcp_retransmit_skb")]
pub fn tcp_retransmit(ctx: TracePointContext) -> u32 {
    // SAFETY: plain integer global (see above).
    let offset = unsafe { core::ptr::read_volatile(&TCP_RETRANSMIT_SKADDR_OFFSET) };
    // SAFETY: bpf_probe_read_kernel tolerates bad addresses.
    let sk = unsafe { ctx.read_at::<u64>(offset as usize) }.unwrap_or(0);
    if sk == 0 {
        return 0;
    }
    match socket(sk, false) {
        // SAFETY: a live LRU value, only read.
        Some(socket) => count(unsafe { (*socket).cgroup_id }, Event::Retransmit),
        None => record_overflow(overflow::TCP_UNATTRIBUTED),
    }
    0
}

/// What is known about socket `sk`: cached, else its cgroup read from the socket, else (in the
/// owner's task context only) the current cgroup. Remembered for the socket's later events.
#[inline(always)]
fn socket(sk: u64, task_context: bool) -> Option<*mut TcpSocket> {
    if let Some(known) = TCP_SOCKETS.get_ptr_mut(sk) {
        return Some(known);
    }
    let cgroup_id = match read_socket_cgroup(sk) {
        Some(id) => id,
        // SAFETY: no arguments.
        None if task_context => unsafe { bpf_get_current_cgroup_id() },
        None => return None,
    };
    let socket = TcpSocket {
        cgroup_id,
        established: 0,
    };
    // An LRU insert cannot fail for lack of room: it evicts the least recently used socket.
    let _ = TCP_SOCKETS.insert(sk, socket, 0);
    TCP_SOCKETS.get_ptr_mut(sk)
}

/// `sk->sk_cgrp_data.cgroup->kn->id` at the offsets the loader found in BTF.
#[inline(always)]
fn read_socket_cgroup(sk: u64) -> Option<u64> {
    // SAFETY: plain integer globals (see above).
    let (sock_cgroup, cgroup_kn, kn_id) = unsafe {
        (
            core::ptr::read_volatile(&SOCK_CGROUP_OFFSET),
            core::ptr::read_volatile(&CGROUP_KN_OFFSET),
            core::ptr::read_volatile(&KERNFS_NODE_ID_OFFSET),
        )
    };
    if sock_cgroup == FIELD_ABSENT || cgroup_kn == FIELD_ABSENT || kn_id == FIELD_ABSENT {
        return None;
    }
    // SAFETY: bpf_probe_read_kernel checks every address; a stale or wrong pointer yields an
    // error, not a fault.
    unsafe {
        let cgroup = bpf_probe_read_kernel((sk + u64::from(sock_cgroup)) as *const u64).ok()?;
        if cgroup == 0 {
            return None;
        }
        let kn = bpf_probe_read_kernel((cgroup + u64::from(cgroup_kn)) as *const u64).ok()?;
        if kn == 0 {
            return None;
        }
        let id = bpf_probe_read_kernel((kn + u64::from(kn_id)) as *const u64).ok()?;
        (id != 0).then_some(id)
    }
}

#[inline(always)]
fn count(cgroup_id: u64, event: Event) {
    if add(cgroup_id, event) {
        return;
    }
    match TCP_COUNTERS.insert(cgroup_id, TcpCounters::default(), u64::from(BPF_NOEXIST)) {
        Ok(()) | Err(EEXIST) => {
            if !add(cgroup_id, event) {
                record_overflow(overflow::TCP_COUNTERS);
            }
        }
        Err(_) => record_overflow(overflow::TCP_COUNTERS),
    }
}

/// Counts on this CPU's copy of an existing entry; false when the cgroup has none yet.
#[inline(always)]
fn add(cgroup_id: u64, event: Event) -> bool {
    let Some(c) = TCP_COUNTERS.get_ptr_mut(cgroup_id) else {
        return false;
    };
    // SAFETY: this CPU's copy of a live per-CPU value (see `network::add` on the rare lost
    // update when a softirq interrupts a task on the same CPU).
    unsafe {
        match event {
            Event::Connect => {
                (*c).connects += 1;
                (*c).open_delta = (*c).open_delta.wrapping_add(1);
            }
            Event::ConnectFailure => (*c).connect_failures += 1,
            Event::Accept => {
                (*c).accepts += 1;
                (*c).open_delta = (*c).open_delta.wrapping_add(1);
            }
            Event::Closed => (*c).open_delta = (*c).open_delta.wrapping_sub(1),
            Event::Retransmit => (*c).retransmits += 1,
        }
    }
    true
}
