//! The eBPF source task: reads the probes' kernel maps once per cycle and turns per-cgroup-id
//! counters into container series, resolving ids through the container inventory. No
//! per-event wake-ups: the kernel aggregates, the agent polls.
//!
//! Families (all with the container identity labels of the cgroup source):
//!
//! | family | type | unit | probe | labels, notes |
//! | --- | --- | --- | --- | --- |
//! | `nodemeter_container_context_switches_total` | counter | switches | `sched_switch` | `kind` = `voluntary` / `involuntary` |
//! | `nodemeter_container_runqueue_latency_seconds` | histogram | seconds | `runqueue_latency` | time from runnable (woken, or switched out while runnable) to running; buckets `le` = 2^k µs for k = 0..25 (1 µs … 33.55 s) and `+Inf`; `_sum` has ns resolution |
//! | `nodemeter_container_process_forks_total` | counter | processes | `process_events` | new processes (clones without `CLONE_THREAD`) created by the container's tasks |
//! | `nodemeter_container_process_execs_total` | counter | execs | `process_events` | successful `execve`s |
//! | `nodemeter_container_oom_kills_total` | counter | kills | `oom_kills` | processes of the container killed by the OOM killer (global or memcg), counted when the victim exits, in the victim's own cgroup |
//! | `nodemeter_container_process_exits_total` | counter | processes | `process_events` | processes whose last thread exited (every thread exit on kernels without `group_dead`) |
//! | `nodemeter_container_network_receive_bytes_total` | counter | bytes | `network` | IP bytes (network header included) received by sockets the container created, whatever network namespace |
//! | `nodemeter_container_network_receive_packets_total` | counter | packets | `network` | packets received; a GRO/GSO packet counts as its segments |
//! | `nodemeter_container_network_transmit_bytes_total` | counter | bytes | `network` | IP bytes sent by the container's sockets |
//! | `nodemeter_container_network_transmit_packets_total` | counter | packets | `network` | packets sent; a TSO/GSO packet counts as its segments |
//! | `nodemeter_container_tcp_connects_total` | counter | connections | `tcp` | active opens that reached ESTABLISHED |
//! | `nodemeter_container_tcp_connect_failures_total` | counter | connections | `tcp` | active opens that failed (SYN_SENT → CLOSE: refused, reset, timed out) |
//! | `nodemeter_container_tcp_accepts_total` | counter | connections | `tcp` | passive opens that reached ESTABLISHED (ready for `accept()`), charged to the listener's container |
//! | `nodemeter_container_tcp_retransmits_total` | counter | segments | `tcp` | TCP segments retransmitted |
//! | `nodemeter_container_tcp_open_connections` | gauge | connections | `tcp` | connections in ESTABLISHED opened since the probe attached |
//!
//! OOM kills have two families. cAdvisor's `container_oom_events_total` stays with the cgroup
//! source, which reads the kernel's own per-cgroup count: `oom_kill` of `memory.events` on
//! cgroup v2, of `memory.oom_control` on v1 (`/proc/vmstat` for the root). It is exact and
//! survives agent restarts, so it wins wherever a memory controller is mounted.
//! `nodemeter_container_oom_kills_total` is the eBPF count, keyed by the victim's cgroup v2 id:
//! it exists where the cgroup files do not (a hybrid host whose memory controller is on v1
//! while containers are found through their v2 cgroup) and does not depend on which memory
//! hierarchy the limit was set in. It counts from the agent's start, so after a restart it is
//! lower than the cgroup count.
//!
//! Network and TCP counts belong to the cgroup of the socket (the cgroup of the task that
//! created it; an accepted socket inherits its listener's), not to the task running when the
//! packet passes. Not counted: packets of request and time-wait sockets (SYN-ACKs, RSTs the
//! kernel sends for no socket), and on hosts without a cgroup v2 mount, everything (the network
//! probe then fails to attach and says so).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::{debug, info, info_span, warn};

use super::{
    EbpfConfig, KernelProbes, ProbeSelection, ProbeStatus, ProgramStats, RunqHistogram,
    check_privileges, runq_bucket_upper_seconds,
};
use crate::identity::Inventory;
use crate::model::{Batch, FamilyMetadata, Labels, MetricType, SourceId, StalenessTracker};
use crate::sources::SourceContext;
use crate::sources::cgroup::Emitter;
use crate::telemetry::{self, registry};

pub const SOURCE_NAME: &str = "ebpf";

/// `sched_switch`: context switches of the container's tasks.
pub const CONTEXT_SWITCHES: &str = "nodemeter_container_context_switches_total";
const CONTEXT_SWITCHES_HELP: &str = "Context switches of the container's tasks by kind: voluntary (the task blocked or slept) or involuntary (it was preempted while runnable).";

/// `runqueue_latency`: time the container's runnable tasks waited for a CPU.
pub const RUNQUEUE_LATENCY: &str = "nodemeter_container_runqueue_latency_seconds";
const RUNQUEUE_LATENCY_HELP: &str = "Time the container's tasks spent runnable but waiting for a CPU, from wakeup or preemption to running.";
/// `process_events`: processes created by the container's tasks.
pub const PROCESS_FORKS: &str = "nodemeter_container_process_forks_total";
const PROCESS_FORKS_HELP: &str = "New processes (not threads) created by the container's tasks.";
/// `process_events`: successful execs.
pub const PROCESS_EXECS: &str = "nodemeter_container_process_execs_total";
const PROCESS_EXECS_HELP: &str = "Successful execve calls of the container's tasks.";
/// `process_events`: processes that exited.
pub const PROCESS_EXITS: &str = "nodemeter_container_process_exits_total";
const PROCESS_EXITS_HELP: &str = "Processes of the container whose last thread exited.";

/// `oom_kills`: OOM kills of the container's processes.
pub const OOM_KILLS: &str = "nodemeter_container_oom_kills_total";
const OOM_KILLS_HELP: &str =
    "Processes of the container killed by the OOM killer (counted in the victim's container).";

/// `network`: bytes received by the container's sockets.
pub const NETWORK_RECEIVE_BYTES: &str = "nodemeter_container_network_receive_bytes_total";
const NETWORK_RECEIVE_BYTES_HELP: &str = "Bytes received by sockets the container created, counted as IP packet lengths (network header included), in any network namespace.";
/// `network`: packets received by the container's sockets.
pub const NETWORK_RECEIVE_PACKETS: &str = "nodemeter_container_network_receive_packets_total";
const NETWORK_RECEIVE_PACKETS_HELP: &str =
    "Packets received by sockets the container created (a GRO packet counts as its segments).";
/// `network`: bytes sent by the container's sockets.
pub const NETWORK_TRANSMIT_BYTES: &str = "nodemeter_container_network_transmit_bytes_total";
const NETWORK_TRANSMIT_BYTES_HELP: &str = "Bytes sent by sockets the container created, counted as IP packet lengths (network header included), in any network namespace.";
/// `network`: packets sent by the container's sockets.
pub const NETWORK_TRANSMIT_PACKETS: &str = "nodemeter_container_network_transmit_packets_total";
const NETWORK_TRANSMIT_PACKETS_HELP: &str =
    "Packets sent by sockets the container created (a TSO/GSO packet counts as its segments).";

/// `tcp`: successful active opens.
pub const TCP_CONNECTS: &str = "nodemeter_container_tcp_connects_total";
const TCP_CONNECTS_HELP: &str =
    "TCP connections the container opened that reached ESTABLISHED (SYN_SENT to ESTABLISHED).";
/// `tcp`: failed active opens.
pub const TCP_CONNECT_FAILURES: &str = "nodemeter_container_tcp_connect_failures_total";
const TCP_CONNECT_FAILURES_HELP: &str = "TCP connections the container tried to open that failed (SYN_SENT to CLOSE: refused, reset or timed out).";
/// `tcp`: passive opens.
pub const TCP_ACCEPTS: &str = "nodemeter_container_tcp_accepts_total";
const TCP_ACCEPTS_HELP: &str = "TCP connections to the container's listening sockets that reached ESTABLISHED (SYN_RECV to ESTABLISHED), ready to be accepted.";
/// `tcp`: retransmitted segments.
pub const TCP_RETRANSMITS: &str = "nodemeter_container_tcp_retransmits_total";
const TCP_RETRANSMITS_HELP: &str = "TCP segments the container's sockets retransmitted.";
/// `tcp`: connections in ESTABLISHED.
pub const TCP_OPEN_CONNECTIONS: &str = "nodemeter_container_tcp_open_connections";
const TCP_OPEN_CONNECTIONS_HELP: &str =
    "TCP connections of the container in ESTABLISHED, among those opened since the probe attached.";

/// Cycles a map entry's cgroup id may stay unknown to the inventory before the entry is
/// deleted. The inventory can lag a new cgroup by a cycle; ids outside the tracked root are
/// also deleted this way, which only resets counts nobody reports.
const FORGET_AFTER_MISSES: u32 = 3;

/// What the self-metrics collector reports; refreshed every cycle.
#[derive(Default)]
struct KernelStats {
    statuses: Vec<ProbeStatus>,
    programs: Vec<ProgramStats>,
    overflows: u64,
    /// Events lost per map, whatever the reason (see `map_overflows_by_map`).
    lost: Vec<(&'static str, u64)>,
}

/// Loads the probes the config selects. Never fails the agent: without privileges, or when
/// nothing loads, the reason is logged once and shows in `nodemeter_probe_attached`.
pub fn load_probes(config: &EbpfConfig) -> Option<KernelProbes> {
    let selection = ProbeSelection::from_config(config);
    let stats = Arc::new(Mutex::new(KernelStats::default()));
    register_self_metrics(Arc::clone(&stats));
    let unavailable = |reason: String| {
        let statuses = super::Probe::ALL
            .iter()
            .map(|p| ProbeStatus {
                name: p.name(),
                attached: false,
                reason: Some(reason.clone()),
            })
            .collect();
        lock(&stats).statuses = statuses;
    };
    if selection.is_empty() {
        unavailable("disabled in the config".into());
        return None;
    }
    if let Err(e) = check_privileges() {
        warn!("kernel probes disabled, cgroup metrics continue: {e}");
        unavailable(e.to_string());
        return None;
    }
    match KernelProbes::load(&selection) {
        Ok(probes) => {
            for s in probes.statuses() {
                match (&s.attached, &s.reason) {
                    (true, _) => info!(probe = s.name, "probe attached"),
                    (false, Some(r)) => warn!(probe = s.name, reason = %r, "probe not attached"),
                    (false, None) => warn!(probe = s.name, "probe not attached"),
                }
            }
            lock(&stats).statuses = probes.statuses().to_vec();
            let _ = PROBE_STATS.set(stats);
            Some(probes)
        }
        Err(e) => {
            warn!("kernel probes could not load, cgroup metrics continue: {e}");
            unavailable(e.to_string());
            None
        }
    }
}

/// The stats shared with the self-metrics collector, once probes loaded.
static PROBE_STATS: std::sync::OnceLock<Arc<Mutex<KernelStats>>> = std::sync::OnceLock::new();

fn lock(stats: &Mutex<KernelStats>) -> std::sync::MutexGuard<'_, KernelStats> {
    stats
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn register_self_metrics(stats: Arc<Mutex<KernelStats>>) {
    registry().register_collector(Box::new(move |emit| {
        let s = lock(&stats);
        for st in &s.statuses {
            emit(
                "nodemeter_probe_attached",
                MetricType::Gauge,
                "1 when the kernel probe is loaded and attached, 0 when it is disabled or failed (the log says why).",
                &[("probe", st.name)],
                if st.attached { 1.0 } else { 0.0 },
            );
        }
        for p in &s.programs {
            emit(
                "nodemeter_ebpf_program_runs_total",
                MetricType::Counter,
                "Times the kernel ran the probe's program (kernel BPF stats).",
                &[("probe", p.name), ("program", p.program)],
                p.run_count as f64,
            );
            emit(
                "nodemeter_ebpf_program_run_seconds_total",
                MetricType::Counter,
                "Time the kernel spent running the probe's program (kernel BPF stats).",
                &[("probe", p.name), ("program", p.program)],
                p.run_time_ns as f64 / 1e9,
            );
        }
        if s.statuses.iter().any(|st| st.attached) {
            emit(
                "nodemeter_ebpf_map_overflows_total",
                MetricType::Counter,
                "Events whose cgroup found its bounded kernel map full; non-zero means per-container counts miss events.",
                &[],
                s.overflows as f64,
            );
            for (map, n) in &s.lost {
                emit(
                    "nodemeter_ebpf_lost_events_total",
                    MetricType::Counter,
                    "Events a probe could not record, by the kernel map responsible: map full, a run-queue stamp overwritten by another task's (RUNQ_ENQUEUED), a TCP socket whose cgroup was unknown (TCP_SOCKETS).",
                    &[("map", map)],
                    *n as f64,
                );
            }
        }
    }));
}

struct Reader {
    probes: KernelProbes,
    inventory: Inventory,
    staleness: StalenessTracker,
    misses: HashMap<u64, u32>,
    stats: Arc<Mutex<KernelStats>>,
    /// Target labels of local series; a container's own identity label of the same name wins.
    target: Labels,
}

impl Reader {
    fn cycle(&mut self, timestamp_ms: i64) -> Result<Batch, super::EbpfError> {
        let counters = self.probes.read_sched_counters()?;
        let histograms = self.probes.read_runqueue_latency()?;
        let processes = self.probes.read_process_counters()?;
        let oom_kills = self.probes.read_oom_kills()?;
        let network = self.probes.read_network_counters()?;
        let tcp = self.probes.read_tcp_counters()?;
        let mut emitter = Emitter::new(
            SourceId::new(SOURCE_NAME),
            timestamp_ms,
            &mut self.staleness,
        );
        let mut unknown = Vec::new();
        for (id, c) in counters {
            let Some(labels) = identity(&self.inventory, &self.target, id) else {
                unknown.push(id);
                continue;
            };
            for (kind, value) in [("voluntary", c.voluntary), ("involuntary", c.involuntary)] {
                emitter.emit(
                    CONTEXT_SWITCHES,
                    MetricType::Counter,
                    CONTEXT_SWITCHES_HELP,
                    &labels,
                    &[("kind", kind)],
                    value as f64,
                );
            }
        }
        let mut has_histograms = false;
        for (id, h) in histograms {
            let Some(labels) = identity(&self.inventory, &self.target, id) else {
                unknown.push(id);
                continue;
            };
            has_histograms = true;
            emit_histogram(&mut emitter, &labels, &h);
        }
        for (id, c) in processes {
            let Some(labels) = identity(&self.inventory, &self.target, id) else {
                unknown.push(id);
                continue;
            };
            for (name, help, value) in [
                (PROCESS_FORKS, PROCESS_FORKS_HELP, c.forks),
                (PROCESS_EXECS, PROCESS_EXECS_HELP, c.execs),
                (PROCESS_EXITS, PROCESS_EXITS_HELP, c.exits),
            ] {
                emitter.emit(name, MetricType::Counter, help, &labels, &[], value as f64);
            }
        }
        for (id, kills) in oom_kills {
            let Some(labels) = identity(&self.inventory, &self.target, id) else {
                unknown.push(id);
                continue;
            };
            emitter.emit(
                OOM_KILLS,
                MetricType::Counter,
                OOM_KILLS_HELP,
                &labels,
                &[],
                kills as f64,
            );
        }
        for (id, c) in network {
            let Some(labels) = identity(&self.inventory, &self.target, id) else {
                unknown.push(id);
                continue;
            };
            for (name, help, value) in [
                (
                    NETWORK_RECEIVE_BYTES,
                    NETWORK_RECEIVE_BYTES_HELP,
                    c.rx_bytes,
                ),
                (
                    NETWORK_RECEIVE_PACKETS,
                    NETWORK_RECEIVE_PACKETS_HELP,
                    c.rx_packets,
                ),
                (
                    NETWORK_TRANSMIT_BYTES,
                    NETWORK_TRANSMIT_BYTES_HELP,
                    c.tx_bytes,
                ),
                (
                    NETWORK_TRANSMIT_PACKETS,
                    NETWORK_TRANSMIT_PACKETS_HELP,
                    c.tx_packets,
                ),
            ] {
                emitter.emit(name, MetricType::Counter, help, &labels, &[], value as f64);
            }
        }
        for (id, c) in tcp {
            let Some(labels) = identity(&self.inventory, &self.target, id) else {
                unknown.push(id);
                continue;
            };
            for (name, help, value) in [
                (TCP_CONNECTS, TCP_CONNECTS_HELP, c.connects),
                (
                    TCP_CONNECT_FAILURES,
                    TCP_CONNECT_FAILURES_HELP,
                    c.connect_failures,
                ),
                (TCP_ACCEPTS, TCP_ACCEPTS_HELP, c.accepts),
                (TCP_RETRANSMITS, TCP_RETRANSMITS_HELP, c.retransmits),
            ] {
                emitter.emit(name, MetricType::Counter, help, &labels, &[], value as f64);
            }
            emitter.emit(
                TCP_OPEN_CONNECTIONS,
                MetricType::Gauge,
                TCP_OPEN_CONNECTIONS_HELP,
                &labels,
                &[],
                c.open().max(0) as f64,
            );
        }
        // Ids every map knows about that resolve now; an id missing from only one map (a
        // cgroup that never ran a probe's hook) must not count as a miss.
        let mut forget = Vec::new();
        unknown.sort_unstable();
        unknown.dedup();
        let known: Vec<u64> = self
            .misses
            .keys()
            .copied()
            .filter(|id| unknown.binary_search(id).is_err())
            .collect();
        for id in known {
            self.misses.remove(&id);
        }
        for id in unknown {
            let misses = self.misses.entry(id).or_default();
            *misses += 1;
            if *misses >= FORGET_AFTER_MISSES {
                forget.push(id);
            }
        }
        if !forget.is_empty() {
            for id in &forget {
                self.misses.remove(id);
            }
            match self.probes.forget_cgroups(&forget) {
                Ok(n) => debug!(
                    entries = n,
                    "forgot map entries of cgroups outside the inventory"
                ),
                Err(e) => warn!(error = %e, "cannot delete map entries"),
            }
        }
        let mut s = lock(&self.stats);
        s.programs = self.probes.program_stats();
        s.overflows = self.probes.map_overflows();
        s.lost = self.probes.map_overflows_by_map();
        drop(s);
        let mut batch = emitter.finish();
        if has_histograms {
            histogram_metadata(&mut batch, RUNQUEUE_LATENCY, RUNQUEUE_LATENCY_HELP);
        }
        Ok(batch)
    }
}

/// The container's identity labels plus the target labels it does not set itself; `None` when
/// the inventory does not know the cgroup id.
fn identity(inventory: &Inventory, target: &Labels, cgroup_id: u64) -> Option<Labels> {
    let entry = inventory.by_v2_id(cgroup_id)?;
    let mut labels = entry.labels.builder();
    for l in target.iter() {
        if labels.get(&l.name).is_none() {
            labels.set_symbols(l.name.clone(), l.value.clone());
        }
    }
    Some(labels.build())
}

/// The `_bucket` (cumulative, with `le`), `_sum` and `_count` series of one cgroup's histogram.
fn emit_histogram(emitter: &mut Emitter<'_>, identity: &crate::model::Labels, h: &RunqHistogram) {
    let bucket_name = format!("{RUNQUEUE_LATENCY}_bucket");
    let mut cumulative = 0u64;
    for (k, n) in h.buckets.iter().enumerate() {
        cumulative = cumulative.wrapping_add(*n);
        let upper = runq_bucket_upper_seconds(k);
        let le = if upper.is_infinite() {
            "+Inf".to_owned()
        } else {
            format_le(upper)
        };
        emitter.emit(
            &bucket_name,
            MetricType::Histogram,
            RUNQUEUE_LATENCY_HELP,
            identity,
            &[("le", &le)],
            cumulative as f64,
        );
    }
    emitter.emit(
        &format!("{RUNQUEUE_LATENCY}_sum"),
        MetricType::Histogram,
        RUNQUEUE_LATENCY_HELP,
        identity,
        &[],
        h.sum_ns as f64 / 1e9,
    );
    emitter.emit(
        &format!("{RUNQUEUE_LATENCY}_count"),
        MetricType::Histogram,
        RUNQUEUE_LATENCY_HELP,
        identity,
        &[],
        cumulative as f64,
    );
}

/// `le` values as Prometheus client libraries print them: shortest float that round-trips.
fn format_le(upper: f64) -> String {
    format!("{upper:?}")
}

/// The emitter records metadata per sample name; a histogram has one family named without
/// the `_bucket`/`_sum`/`_count` suffixes.
fn histogram_metadata(batch: &mut Batch, family: &str, help: &str) {
    let suffixed = [
        format!("{family}_bucket"),
        format!("{family}_sum"),
        format!("{family}_count"),
    ];
    batch
        .metadata
        .retain(|m| !suffixed.iter().any(|s| m.name.as_str() == s));
    batch
        .metadata
        .push(FamilyMetadata::new(family, MetricType::Histogram, help));
}

/// The eBPF source task.
pub struct EbpfSource {
    reader: Arc<Mutex<Reader>>,
    interval: Duration,
}

impl EbpfSource {
    /// A source over loaded probes; `inventory` resolves cgroup ids to containers.
    pub fn new(
        probes: KernelProbes,
        inventory: Inventory,
        target: Labels,
        interval: Duration,
    ) -> Self {
        let stats = PROBE_STATS.get().cloned().unwrap_or_default();
        Self {
            reader: Arc::new(Mutex::new(Reader {
                probes,
                inventory,
                staleness: StalenessTracker::new(),
                misses: HashMap::new(),
                stats,
                target,
            })),
            interval,
        }
    }

    pub async fn run(self, ctx: SourceContext) -> anyhow::Result<()> {
        info!(interval = ?self.interval, "ebpf source started");
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut first = true;
        loop {
            tokio::select! {
                () = ctx.shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            let reader = Arc::clone(&self.reader);
            let span = info_span!("ebpf_collect");
            let result = tokio::task::spawn_blocking(move || {
                let _g = span.enter();
                reader
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .cycle(telemetry::now_ms())
            })
            .await;
            match result {
                Ok(Ok(batch)) => {
                    if ctx.out.send(batch).await.is_err() {
                        break;
                    }
                    if first {
                        ctx.readiness.mark_ready(SOURCE_NAME);
                        first = false;
                    }
                }
                Ok(Err(e)) => warn!(error = %e, "reading the probes' maps failed"),
                Err(e) => warn!(error = %e, "ebpf collection cycle panicked"),
            }
        }
        // Dropping the reader (with the last Arc) detaches the probes.
        info!("ebpf source stopped; probes detach");
        Ok(())
    }
}
