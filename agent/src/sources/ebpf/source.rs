//! The eBPF source task: reads the probes' kernel maps once per cycle and turns per-cgroup-id
//! counters into container series, resolving ids through the container inventory. No
//! per-event wake-ups: the kernel aggregates, the agent polls.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::{debug, info, info_span, warn};

use super::{
    EbpfConfig, KernelProbes, ProbeSelection, ProbeStatus, ProgramStats, check_privileges,
};
use crate::identity::Inventory;
use crate::model::{Batch, MetricType, SourceId, StalenessTracker};
use crate::sources::SourceContext;
use crate::sources::cgroup::Emitter;
use crate::telemetry::{self, registry};

pub const SOURCE_NAME: &str = "ebpf";

/// `sched_switch`: context switches of the container's tasks.
pub const CONTEXT_SWITCHES: &str = "nodemeter_container_context_switches_total";
const CONTEXT_SWITCHES_HELP: &str = "Context switches of the container's tasks by kind: voluntary (the task blocked or slept) or involuntary (it was preempted while runnable).";

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
                &[("probe", p.name)],
                p.run_count as f64,
            );
            emit(
                "nodemeter_ebpf_program_run_seconds_total",
                MetricType::Counter,
                "Time the kernel spent running the probe's program (kernel BPF stats).",
                &[("probe", p.name)],
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
        }
    }));
}

struct Reader {
    probes: KernelProbes,
    inventory: Inventory,
    staleness: StalenessTracker,
    misses: HashMap<u64, u32>,
    stats: Arc<Mutex<KernelStats>>,
}

impl Reader {
    fn cycle(&mut self, timestamp_ms: i64) -> Result<Batch, super::EbpfError> {
        let counters = self.probes.read_sched_counters()?;
        let mut emitter = Emitter::new(
            SourceId::new(SOURCE_NAME),
            timestamp_ms,
            &mut self.staleness,
        );
        let mut forget = Vec::new();
        for (id, c) in counters {
            match self.inventory.by_v2_id(id) {
                Some(entry) => {
                    self.misses.remove(&id);
                    for (kind, value) in
                        [("voluntary", c.voluntary), ("involuntary", c.involuntary)]
                    {
                        emitter.emit(
                            CONTEXT_SWITCHES,
                            MetricType::Counter,
                            CONTEXT_SWITCHES_HELP,
                            &entry.labels,
                            &[("kind", kind)],
                            value as f64,
                        );
                    }
                }
                None => {
                    let misses = self.misses.entry(id).or_default();
                    *misses += 1;
                    if *misses >= FORGET_AFTER_MISSES {
                        forget.push(id);
                    }
                }
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
        drop(s);
        Ok(emitter.finish())
    }
}

/// The eBPF source task.
pub struct EbpfSource {
    reader: Arc<Mutex<Reader>>,
    interval: Duration,
}

impl EbpfSource {
    /// A source over loaded probes; `inventory` resolves cgroup ids to containers.
    pub fn new(probes: KernelProbes, inventory: Inventory, interval: Duration) -> Self {
        let stats = PROBE_STATS.get().cloned().unwrap_or_default();
        Self {
            reader: Arc::new(Mutex::new(Reader {
                probes,
                inventory,
                staleness: StalenessTracker::new(),
                misses: HashMap::new(),
                stats,
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
