//! The kernel interface of the eBPF source: loads the embedded object, attaches each probe on
//! its own, and reads the per-cgroup maps. No pipeline logic lives here; the source turns what
//! [`KernelProbes`] reads into samples.
//!
//! The object is built by `cargo xtask build-ebpf` and committed beside this file (like
//! bpf2go output), so the agent builds with stable cargo alone.

pub mod btf;
pub mod cgroup_events;
pub mod config;
mod privileges;
mod source;
pub mod tracefs;

use std::collections::BTreeSet;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use aya::maps::{HashMap, MapData, MapError, PerCpuArray, PerCpuHashMap, RingBuf};
use aya::programs::{CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, ProgramError, TracePoint};
use aya::{Ebpf, EbpfLoader};
use nodemeter_ebpf_common::{globals, maps, overflow, programs};

pub use self::config::EbpfConfig;
pub use self::privileges::check_privileges;
pub use self::source::{
    CONTEXT_SWITCHES, EbpfSource, NETWORK_RECEIVE_BYTES, NETWORK_RECEIVE_PACKETS,
    NETWORK_TRANSMIT_BYTES, NETWORK_TRANSMIT_PACKETS, OOM_KILLS, PROCESS_EXECS, PROCESS_EXITS,
    PROCESS_FORKS, RUNQUEUE_LATENCY, SOURCE_NAME, TCP_ACCEPTS, TCP_CONNECT_FAILURES, TCP_CONNECTS,
    TCP_OPEN_CONNECTIONS, TCP_RETRANSMITS, load_probes,
};
pub use nodemeter_ebpf_common::{
    MAX_CGROUPS, NetCounters, ProcessCounters, RUNQ_BUCKETS, RunqHistogram, SchedCgroup,
    SchedCounters, TcpCounters, runq_bucket_upper_seconds,
};

/// The object built from `agent-ebpf` (8-byte aligned: the ELF parser needs aligned headers).
static OBJECT: &[u8] = aya::include_bytes_aligned!("nodemeter.bpf.o");

/// Environment variable naming probes (comma-separated, e.g. `sched_switch`) that must fail to
/// attach, to exercise degradation end to end. The failure is real: the probe is attached to a
/// tracepoint that does not exist.
pub const FORCE_FAIL_ENV: &str = "NODEMETER_EBPF_FORCE_FAIL";
/// Tracepoint category used for forced failures; no kernel has it.
const FORCED_FAILURE_CATEGORY: &str = "nodemeter_forced_failure";

/// Errors of the kernel interface.
#[derive(Debug, thiserror::Error)]
pub enum EbpfError {
    #[error("eBPF needs more privileges: missing {missing}")]
    MissingCapability { missing: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: expected {expected}", path.display())]
    ProcStatus {
        path: PathBuf,
        expected: &'static str,
    },
    #[error("{}:{line}: expected {expected}", path.display())]
    TracefsFormat {
        path: PathBuf,
        line: usize,
        expected: &'static str,
    },
    #[error("{}: the tracepoint record has no field `{field}`", path.display())]
    TracefsField { path: PathBuf, field: &'static str },
    #[error("{}: field `{field}` has size {size}, expected {expected}", path.display())]
    TracefsFieldSize {
        path: PathBuf,
        field: &'static str,
        size: u32,
        expected: &'static str,
    },
    #[error("mounting {fstype} at {}: {source}", path.display())]
    Mount {
        fstype: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("loading the eBPF object (maps, BTF): {0}")]
    Load(#[source] aya::EbpfError),
    #[error(
        "the embedded eBPF object has no map `{0}`: it was built from other sources than this agent; run `cargo xtask build-ebpf`"
    )]
    MissingMap(&'static str),
    #[error("eBPF map `{name}`: {source}")]
    Map {
        name: &'static str,
        source: MapError,
    },
}

/// A probe: one or more programs attached to kernel hooks, enabled and reported as one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Probe {
    /// `sched:sched_switch` context-switch counters per cgroup.
    SchedSwitch,
    /// Run-queue latency histogram per cgroup (`sched_wakeup`, `sched_wakeup_new`,
    /// `sched_switch`).
    RunqueueLatency,
    /// Process forks, execs and exits per cgroup (`task_newtask`, `sched_process_exec`,
    /// `sched_process_exit`).
    ProcessEvents,
    /// OOM kills per cgroup of the victim (`oom:mark_victim`, `sched_process_exit`).
    OomKills,
    /// Bytes and packets per cgroup of the socket (`cgroup_skb` ingress and egress on the
    /// cgroup v2 root).
    Network,
    /// TCP connects, accepts, retransmits and open connections per cgroup of the socket
    /// (`sock:inet_sock_set_state`, `tcp:tcp_retransmit_skb`).
    Tcp,
    /// Cgroup creations and removals for the inventory (`cgroup:cgroup_mkdir`,
    /// `cgroup_rmdir`); see [`KernelProbes::take_cgroup_events`].
    CgroupEvents,
}

impl Probe {
    pub const ALL: &'static [Probe] = &[
        Probe::SchedSwitch,
        Probe::RunqueueLatency,
        Probe::ProcessEvents,
        Probe::OomKills,
        Probe::Network,
        Probe::Tcp,
        Probe::CgroupEvents,
    ];

    /// The probe's name in config, logs, self-metrics and statuses.
    pub fn name(self) -> &'static str {
        match self {
            Probe::SchedSwitch => "sched_switch",
            Probe::RunqueueLatency => "runqueue_latency",
            Probe::ProcessEvents => "process_events",
            Probe::OomKills => "oom_kills",
            Probe::Network => "network",
            Probe::Tcp => "tcp",
            Probe::CgroupEvents => "cgroup_events",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|p| p.name() == name)
    }

    /// The programs of the probe.
    fn programs(self) -> &'static [&'static str] {
        match self {
            // The sched_switch program is shared with RunqueueLatency: see `SharedSchedSwitch`.
            Probe::SchedSwitch => &[],
            Probe::RunqueueLatency => &[programs::RUNQ_WAKEUP],
            Probe::ProcessEvents => &[
                programs::PROCESS_FORK,
                programs::PROCESS_EXEC,
                programs::PROCESS_EXIT,
            ],
            Probe::OomKills => &[programs::OOM_MARK_VICTIM, programs::OOM_VICTIM_EXIT],
            Probe::Network => &[programs::NET_INGRESS, programs::NET_EGRESS],
            Probe::Tcp => &[programs::TCP_STATE, programs::TCP_RETRANSMIT],
            Probe::CgroupEvents => &[programs::CGROUP_MKDIR, programs::CGROUP_RMDIR],
        }
    }

    /// Whether the probe needs the shared `sched_switch` program attached.
    fn uses_sched_switch(self) -> bool {
        matches!(self, Probe::SchedSwitch | Probe::RunqueueLatency)
    }

    /// (program, tracepoint category, tracepoint name) of each attachment.
    fn attachments(self) -> &'static [(&'static str, &'static str, &'static str)] {
        match self {
            Probe::SchedSwitch => &[],
            Probe::RunqueueLatency => &[
                (programs::RUNQ_WAKEUP, "sched", "sched_wakeup"),
                (programs::RUNQ_WAKEUP, "sched", "sched_wakeup_new"),
            ],
            Probe::ProcessEvents => &[
                (programs::PROCESS_FORK, "task", "task_newtask"),
                (programs::PROCESS_EXEC, "sched", "sched_process_exec"),
                (programs::PROCESS_EXIT, "sched", "sched_process_exit"),
            ],
            Probe::OomKills => &[
                (programs::OOM_MARK_VICTIM, "oom", "mark_victim"),
                (programs::OOM_VICTIM_EXIT, "sched", "sched_process_exit"),
            ],
            // cgroup_skb programs attach to a cgroup, not a tracepoint: see `attach_network`.
            Probe::Network => &[],
            Probe::Tcp => &[
                (programs::TCP_STATE, "sock", "inet_sock_set_state"),
                (programs::TCP_RETRANSMIT, "tcp", "tcp_retransmit_skb"),
            ],
            Probe::CgroupEvents => &[
                (programs::CGROUP_MKDIR, "cgroup", "cgroup_mkdir"),
                (programs::CGROUP_RMDIR, "cgroup", "cgroup_rmdir"),
            ],
        }
    }
}

/// Which probes to load, and which to fail on purpose.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeSelection {
    enabled: BTreeSet<Probe>,
    forced_failures: BTreeSet<Probe>,
    /// Entries of the per-cgroup maps; `None` keeps the object's [`MAX_CGROUPS`].
    cgroup_capacity: Option<u32>,
    /// The cgroup v2 directory the network programs attach to; `None` finds the root.
    network_cgroup: Option<PathBuf>,
}

impl ProbeSelection {
    /// Every probe.
    pub fn all() -> Self {
        Self {
            enabled: Probe::ALL.iter().copied().collect(),
            ..Self::default()
        }
    }

    /// The probes the config enables, plus the forced failures named in [`FORCE_FAIL_ENV`]
    /// (unknown names there are logged and ignored). A disabled section selects nothing.
    pub fn from_config(config: &EbpfConfig) -> Self {
        let mut selection = Self::default();
        if !config.enabled {
            return selection;
        }
        for (on, probe) in [
            (config.probes.sched_switch, Probe::SchedSwitch),
            (config.probes.runqueue_latency, Probe::RunqueueLatency),
            (config.probes.process_events, Probe::ProcessEvents),
            (config.probes.oom_kills, Probe::OomKills),
            (config.probes.network, Probe::Network),
            (config.probes.tcp, Probe::Tcp),
            (config.probes.cgroup_events, Probe::CgroupEvents),
        ] {
            if on {
                selection.enabled.insert(probe);
            }
        }
        if !config.network_cgroup.as_os_str().is_empty() {
            selection.network_cgroup = Some(config.network_cgroup.clone());
        }
        selection.with_forced_failures_from_env()
    }

    /// Attaches the network programs to `dir` (a cgroup v2 directory) instead of the root, so
    /// only sockets of cgroups below it are counted.
    #[must_use]
    pub fn with_network_cgroup(mut self, dir: impl Into<PathBuf>) -> Self {
        self.network_cgroup = Some(dir.into());
        self
    }

    /// Adds the forced failures named in [`FORCE_FAIL_ENV`]; unknown names there are logged
    /// and ignored.
    #[must_use]
    pub fn with_forced_failures_from_env(mut self) -> Self {
        if let Ok(names) = std::env::var(FORCE_FAIL_ENV) {
            for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                match Probe::from_name(name) {
                    Some(p) => {
                        self.forced_failures.insert(p);
                    }
                    None => tracing::warn!(probe = name, "{FORCE_FAIL_ENV} names an unknown probe"),
                }
            }
        }
        self
    }

    /// Makes `probe` fail at attach time (it stays enabled), for degradation tests.
    #[must_use]
    pub fn force_failure(mut self, probe: Probe) -> Self {
        self.forced_failures.insert(probe);
        self
    }

    /// Bounds the per-cgroup maps to `entries` cgroups instead of [`MAX_CGROUPS`]; inserts past
    /// that count in [`KernelProbes::map_overflows`].
    #[must_use]
    pub fn with_cgroup_capacity(mut self, entries: u32) -> Self {
        self.cgroup_capacity = Some(entries);
        self
    }

    pub fn is_enabled(&self, probe: Probe) -> bool {
        self.enabled.contains(&probe)
    }

    pub fn is_empty(&self) -> bool {
        self.enabled.is_empty()
    }
}

/// Whether a probe runs, and why not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeStatus {
    pub name: &'static str,
    pub attached: bool,
    /// Why it is not attached (disabled, or the error); `None` when attached.
    pub reason: Option<String>,
}

/// Kernel run-time statistics of one attached program (BPF_ENABLE_STATS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramStats {
    /// The probe the program belongs to.
    pub name: &'static str,
    /// The program (a probe may have several).
    pub program: &'static str,
    pub run_count: u64,
    pub run_time_ns: u64,
}

/// The loaded object, its attached probes and its maps. Dropping it detaches everything.
pub struct KernelProbes {
    ebpf: Ebpf,
    statuses: Vec<ProbeStatus>,
    /// Context switches and run-queue latency per cgroup, one entry for both.
    sched_cgroups: PerCpuHashMap<MapData, u64, SchedCgroup>,
    process_counters: PerCpuHashMap<MapData, u64, ProcessCounters>,
    oom_kills: HashMap<MapData, u64, u64>,
    net_counters: PerCpuHashMap<MapData, u64, NetCounters>,
    tcp_counters: PerCpuHashMap<MapData, u64, TcpCounters>,
    /// Until [`take_cgroup_events`](Self::take_cgroup_events) hands it out.
    cgroup_events: Option<RingBuf<MapData>>,
    overflows: PerCpuArray<MapData, u64>,
    /// Kernel run-time stats stay on while this fd is open.
    _stats: Option<OwnedFd>,
}

impl KernelProbes {
    /// Loads the embedded object and attaches every enabled probe independently; a probe that
    /// fails is recorded in [`statuses`](Self::statuses), never fatal. Errors only when nothing
    /// can load at all (missing capability, the object's maps cannot be created).
    #[tracing::instrument(name = "ebpf_load", skip_all)]
    pub fn load(enabled: &ProbeSelection) -> Result<Self, EbpfError> {
        check_privileges()?;
        privileges::raise_memlock_limit();
        privileges::ensure_bpffs();

        // Failures found before loading (no tracefs, unexpected record layout), per probe.
        let mut early_failures: Vec<(Probe, String)> = Vec::new();
        let mut sched_switch = SchedSwitchGlobals::defaults();
        let mut record = RecordGlobals::defaults();
        let uses_sched_switch =
            enabled.is_enabled(Probe::SchedSwitch) || enabled.is_enabled(Probe::RunqueueLatency);
        if uses_sched_switch {
            match tracefs::ensure_tracefs().and_then(|dir| SchedSwitchGlobals::read(&dir)) {
                Ok(g) => sched_switch = g,
                Err(e) => {
                    for p in [Probe::SchedSwitch, Probe::RunqueueLatency] {
                        early_failures.push((p, e.to_string()));
                    }
                }
            }
        }
        if enabled.is_enabled(Probe::RunqueueLatency) {
            match tracefs::ensure_tracefs().and_then(|dir| record.read_runqueue(&dir)) {
                Ok(()) => {}
                Err(e) => early_failures.push((Probe::RunqueueLatency, e.to_string())),
            }
        }
        if enabled.is_enabled(Probe::OomKills) {
            match tracefs::ensure_tracefs()
                .and_then(|dir| field_offset(&dir, "oom", "mark_victim", "pid", 4))
            {
                Ok(offset) => record.oom_victim_pid_offset = offset,
                Err(e) => early_failures.push((Probe::OomKills, e.to_string())),
            }
        }
        if enabled.is_enabled(Probe::ProcessEvents) {
            match tracefs::ensure_tracefs().and_then(|dir| record.read_process(&dir)) {
                Ok(()) => {}
                Err(e) => early_failures.push((Probe::ProcessEvents, e.to_string())),
            }
        }
        let mut tcp = TcpGlobals::defaults();
        if enabled.is_enabled(Probe::Tcp) {
            match tracefs::ensure_tracefs().and_then(|dir| tcp.read_records(&dir)) {
                Ok(()) => {}
                Err(e) => early_failures.push((Probe::Tcp, e.to_string())),
            }
            tcp.read_btf();
        }
        let mut cgroup_event_offsets = CgroupEventOffsets::defaults();
        if enabled.is_enabled(Probe::CgroupEvents) {
            match tracefs::ensure_tracefs().and_then(|dir| CgroupEventOffsets::read(&dir)) {
                Ok(o) => cgroup_event_offsets = o,
                Err(e) => early_failures.push((Probe::CgroupEvents, e.to_string())),
            }
        }

        let mut loader = EbpfLoader::new();
        if let Some(entries) = enabled.cgroup_capacity {
            loader.set_max_entries(maps::SCHED_CGROUPS, entries);
            loader.set_max_entries(maps::PROCESS_COUNTERS, entries);
            loader.set_max_entries(maps::OOM_KILLS, entries);
            loader.set_max_entries(maps::NET_COUNTERS, entries);
            loader.set_max_entries(maps::TCP_COUNTERS, entries);
        }
        // Which halves of the shared sched_switch program run; fixed before loading so the
        // verifier drops the other half (a probe that fails later to attach its other hooks
        // leaves its half running, uselessly but harmlessly).
        let half_on = |probe: Probe| -> u32 {
            u32::from(
                enabled.is_enabled(probe)
                    && !enabled.forced_failures.contains(&probe)
                    && !early_failures.iter().any(|(p, _)| *p == probe),
            )
        };
        let count_switches = half_on(Probe::SchedSwitch);
        let runqueue = half_on(Probe::RunqueueLatency);
        let mut ebpf = loader
            .set_global(globals::SCHED_SWITCH_COUNT_SWITCHES, &count_switches, true)
            .set_global(globals::SCHED_SWITCH_RUNQUEUE, &runqueue, true)
            .set_global(
                globals::SCHED_SWITCH_PREV_PID_OFFSET,
                &sched_switch.prev_pid_offset,
                true,
            )
            .set_global(
                globals::SCHED_SWITCH_PREV_STATE_OFFSET,
                &sched_switch.prev_state_offset,
                true,
            )
            .set_global(
                globals::SCHED_SWITCH_PREV_STATE_SIZE,
                &sched_switch.prev_state_size,
                true,
            )
            .set_global(
                globals::SCHED_SWITCH_PREEMPTED_STATE,
                &sched_switch.preempted_state,
                true,
            )
            .set_global(
                globals::SCHED_SWITCH_NEXT_PID_OFFSET,
                &record.next_pid_offset,
                true,
            )
            .set_global(
                globals::SCHED_WAKEUP_PID_OFFSET,
                &record.wakeup_pid_offset,
                true,
            )
            .set_global(
                globals::TASK_NEWTASK_CLONE_FLAGS_OFFSET,
                &record.clone_flags_offset,
                true,
            )
            .set_global(
                globals::SCHED_PROCESS_EXIT_GROUP_DEAD_OFFSET,
                &record.group_dead_offset,
                true,
            )
            .set_global(
                globals::OOM_MARK_VICTIM_PID_OFFSET,
                &record.oom_victim_pid_offset,
                true,
            )
            .set_global(
                globals::INET_SOCK_SET_STATE_SKADDR_OFFSET,
                &tcp.skaddr_offset,
                true,
            )
            .set_global(
                globals::INET_SOCK_SET_STATE_OLDSTATE_OFFSET,
                &tcp.oldstate_offset,
                true,
            )
            .set_global(
                globals::INET_SOCK_SET_STATE_PROTOCOL_OFFSET,
                &tcp.protocol_offset,
                true,
            )
            .set_global(
                globals::TCP_RETRANSMIT_SKADDR_OFFSET,
                &tcp.retransmit_skaddr_offset,
                true,
            )
            .set_global(
                globals::CGROUP_EVENT_ROOT_OFFSET,
                &cgroup_event_offsets.root,
                true,
            )
            .set_global(
                globals::CGROUP_EVENT_ID_OFFSET,
                &cgroup_event_offsets.id,
                true,
            )
            .set_global(
                globals::CGROUP_EVENT_PATH_OFFSET,
                &cgroup_event_offsets.path,
                true,
            )
            .set_global(globals::SOCK_CGROUP_OFFSET, &tcp.sock_cgroup_offset, true)
            .set_global(globals::CGROUP_KN_OFFSET, &tcp.cgroup_kn_offset, true)
            .set_global(
                globals::KERNFS_NODE_ID_OFFSET,
                &tcp.kernfs_node_id_offset,
                true,
            )
            .load(OBJECT)
            .map_err(EbpfError::Load)?;

        let sched_cgroups = take_map(&mut ebpf, maps::SCHED_CGROUPS)?;
        let overflows = take_map(&mut ebpf, maps::MAP_OVERFLOWS)?;
        let process_counters = take_map(&mut ebpf, maps::PROCESS_COUNTERS)?;
        let oom_kills = take_map(&mut ebpf, maps::OOM_KILLS)?;
        let net_counters = take_map(&mut ebpf, maps::NET_COUNTERS)?;
        let tcp_counters = take_map(&mut ebpf, maps::TCP_COUNTERS)?;
        let cgroup_events = take_map(&mut ebpf, maps::CGROUP_EVENTS)?;

        let stats = match aya::sys::enable_stats(aya::sys::Stats::RunTime) {
            Ok(fd) => Some(fd),
            Err(e) => {
                tracing::info!(error = %e, "kernel BPF run-time stats unavailable; program_stats will read zero");
                None
            }
        };

        let mut statuses = Vec::with_capacity(Probe::ALL.len());
        let mut shared_sched_switch = SharedSchedSwitch::default();
        for &probe in Probe::ALL {
            let status = if !enabled.is_enabled(probe) {
                ProbeStatus {
                    name: probe.name(),
                    attached: false,
                    reason: Some("disabled in config".to_owned()),
                }
            } else if let Some((_, reason)) = early_failures.iter().find(|(p, _)| *p == probe) {
                failed(probe, reason.clone())
            } else {
                let forced = enabled.forced_failures.contains(&probe);
                let attached = if probe == Probe::Network {
                    attach_network(&mut ebpf, enabled.network_cgroup.as_deref(), forced)
                } else {
                    attach_probe(&mut ebpf, probe, forced).and_then(|()| {
                        if probe.uses_sched_switch() {
                            shared_sched_switch.attach(&mut ebpf, forced)
                        } else {
                            Ok(())
                        }
                    })
                };
                match attached {
                    Ok(()) => {
                        tracing::info!(probe = probe.name(), "probe attached");
                        ProbeStatus {
                            name: probe.name(),
                            attached: true,
                            reason: None,
                        }
                    }
                    Err(e) => failed(probe, e),
                }
            };
            statuses.push(status);
        }

        Ok(Self {
            ebpf,
            statuses,
            sched_cgroups,
            process_counters,
            oom_kills,
            net_counters,
            tcp_counters,
            cgroup_events: Some(cgroup_events),
            overflows,
            _stats: stats,
        })
    }

    /// One entry per known probe, enabled or not.
    pub fn statuses(&self) -> &[ProbeStatus] {
        &self.statuses
    }

    /// The cgroup creations and removals, once, on a channel of `capacity` (see
    /// [`cgroup_events`]); `None` when the probe is not attached or the channel was taken.
    /// Must be called inside a tokio runtime.
    pub fn take_cgroup_events(
        &mut self,
        capacity: usize,
    ) -> Option<tokio::sync::mpsc::Receiver<cgroup_events::CgroupEvent>> {
        if !self.is_attached(Probe::CgroupEvents) {
            return None;
        }
        self.cgroup_events
            .take()
            .map(|ring| cgroup_events::spawn(ring, capacity))
    }

    fn is_attached(&self, probe: Probe) -> bool {
        self.statuses
            .iter()
            .any(|s| s.name == probe.name() && s.attached)
    }

    /// The per-cgroup scheduler entries, summed over CPUs.
    fn read_sched_cgroups(&mut self) -> Result<Vec<(u64, SchedCgroup)>, EbpfError> {
        let mut out = Vec::new();
        for entry in self.sched_cgroups.iter() {
            let (cgroup_id, per_cpu) = entry.map_err(|source| EbpfError::Map {
                name: maps::SCHED_CGROUPS,
                source,
            })?;
            let mut total = SchedCgroup::default();
            for c in per_cpu.iter() {
                total.switches.accumulate(&c.switches);
                for (t, n) in total.runq.buckets.iter_mut().zip(c.runq.buckets.iter()) {
                    *t = t.wrapping_add(*n);
                }
                total.runq.sum_ns = total.runq.sum_ns.wrapping_add(c.runq.sum_ns);
            }
            out.push((cgroup_id, total));
        }
        Ok(out)
    }

    /// Context-switch counters per cgroup id, summed over CPUs (none unless the
    /// `sched_switch` probe is attached). Counters only grow while the entry exists; an entry
    /// removed by [`forget_cgroups`](Self::forget_cgroups) restarts at 0 if the id shows up
    /// again.
    pub fn read_sched_counters(&mut self) -> Result<Vec<(u64, SchedCounters)>, EbpfError> {
        if !self.is_attached(Probe::SchedSwitch) {
            return Ok(Vec::new());
        }
        Ok(self
            .read_sched_cgroups()?
            .into_iter()
            .map(|(id, e)| (id, e.switches))
            .collect())
    }

    /// Run-queue latency histograms per cgroup id, summed over CPUs (none unless the
    /// `runqueue_latency` probe is attached).
    pub fn read_runqueue_latency(&mut self) -> Result<Vec<(u64, RunqHistogram)>, EbpfError> {
        if !self.is_attached(Probe::RunqueueLatency) {
            return Ok(Vec::new());
        }
        Ok(self
            .read_sched_cgroups()?
            .into_iter()
            .filter(|(_, e)| e.runq.count() > 0)
            .map(|(id, e)| (id, e.runq))
            .collect())
    }

    /// Process fork/exec/exit counters per cgroup id, summed over CPUs.
    pub fn read_process_counters(&mut self) -> Result<Vec<(u64, ProcessCounters)>, EbpfError> {
        let mut out = Vec::new();
        for entry in self.process_counters.iter() {
            let (cgroup_id, per_cpu) = entry.map_err(|source| EbpfError::Map {
                name: maps::PROCESS_COUNTERS,
                source,
            })?;
            let mut total = ProcessCounters::default();
            for c in per_cpu.iter() {
                total.accumulate(c);
            }
            out.push((cgroup_id, total));
        }
        Ok(out)
    }

    /// OOM kills per cgroup id of the victim.
    pub fn read_oom_kills(&self) -> Result<Vec<(u64, u64)>, EbpfError> {
        self.oom_kills
            .iter()
            .map(|entry| {
                entry.map_err(|source| EbpfError::Map {
                    name: maps::OOM_KILLS,
                    source,
                })
            })
            .collect()
    }

    /// Network counters per cgroup id of the socket, summed over CPUs.
    pub fn read_network_counters(&mut self) -> Result<Vec<(u64, NetCounters)>, EbpfError> {
        let mut out = Vec::new();
        for entry in self.net_counters.iter() {
            let (cgroup_id, per_cpu) = entry.map_err(|source| EbpfError::Map {
                name: maps::NET_COUNTERS,
                source,
            })?;
            let mut total = NetCounters::default();
            for c in per_cpu.iter() {
                total.accumulate(c);
            }
            out.push((cgroup_id, total));
        }
        Ok(out)
    }

    /// TCP counters per cgroup id of the socket, summed over CPUs.
    pub fn read_tcp_counters(&mut self) -> Result<Vec<(u64, TcpCounters)>, EbpfError> {
        let mut out = Vec::new();
        for entry in self.tcp_counters.iter() {
            let (cgroup_id, per_cpu) = entry.map_err(|source| EbpfError::Map {
                name: maps::TCP_COUNTERS,
                source,
            })?;
            let mut total = TcpCounters::default();
            for c in per_cpu.iter() {
                total.accumulate(c);
            }
            out.push((cgroup_id, total));
        }
        Ok(out)
    }

    /// Events lost per map (see [`overflow`](nodemeter_ebpf_common::overflow)): the map's name
    /// and how many events could not be recorded because of it, summed over CPUs.
    pub fn map_overflows_by_map(&self) -> Vec<(&'static str, u64)> {
        let mut out = Vec::with_capacity(overflow::SLOTS as usize);
        for (slot, name) in (0..overflow::SLOTS).zip(overflow::NAMES) {
            match self.overflows.get(&slot, 0) {
                Ok(per_cpu) => {
                    out.push((name, per_cpu.iter().fold(0u64, |t, n| t.wrapping_add(*n))))
                }
                Err(e) => {
                    tracing::warn!(map = maps::MAP_OVERFLOWS, slot, error = %e, "cannot read overflow counter");
                }
            }
        }
        out
    }

    /// Inserts the programs could not make because a bounded map was full, over all maps and
    /// CPUs since load. Non-zero means per-cgroup counts are missing events.
    pub fn map_overflows(&self) -> u64 {
        let mut total = 0u64;
        for slot in 0..overflow::MAP_FULL_SLOTS {
            match self.overflows.get(&slot, 0) {
                Ok(per_cpu) => total = per_cpu.iter().fold(total, |t, n| t.wrapping_add(*n)),
                Err(e) => {
                    tracing::warn!(map = maps::MAP_OVERFLOWS, slot, error = %e, "cannot read overflow counter");
                }
            }
        }
        total
    }

    /// Run count and cumulative run time of each attached program, from the kernel's BPF stats.
    pub fn program_stats(&self) -> Vec<ProgramStats> {
        let mut out = Vec::new();
        for &probe in Probe::ALL {
            if !self
                .statuses
                .iter()
                .any(|s| s.name == probe.name() && s.attached)
            {
                continue;
            }
            // The shared sched_switch program is reported once, under the first probe using it.
            let shared = (probe.uses_sched_switch()
                && !out
                    .iter()
                    .any(|p: &ProgramStats| p.program == programs::SCHED_SWITCH))
            .then_some(programs::SCHED_SWITCH);
            for &name in probe.programs().iter().chain(shared.iter()) {
                let Some(program) = self.ebpf.program(name) else {
                    continue;
                };
                match program.info() {
                    Ok(info) => out.push(ProgramStats {
                        name: probe.name(),
                        program: name,
                        run_count: info.run_count(),
                        run_time_ns: u64::try_from(info.run_time().as_nanos()).unwrap_or(u64::MAX),
                    }),
                    Err(e) => {
                        tracing::warn!(probe = probe.name(), program = name, error = %e, "cannot read program info");
                    }
                }
            }
        }
        out
    }

    /// Deletes the map entries of cgroups that no longer exist, so the bounded maps do not fill
    /// up with churn, from every probe's map. Ids without an entry are ignored. Returns how many of
    /// the ids had an entry in at least one map.
    pub fn forget_cgroups(&mut self, cgroup_ids: &[u64]) -> Result<usize, EbpfError> {
        let mut removed = 0;
        for id in cgroup_ids {
            let results = [
                (maps::SCHED_CGROUPS, self.sched_cgroups.remove(id)),
                (maps::PROCESS_COUNTERS, self.process_counters.remove(id)),
                (maps::OOM_KILLS, self.oom_kills.remove(id)),
                (maps::NET_COUNTERS, self.net_counters.remove(id)),
                (maps::TCP_COUNTERS, self.tcp_counters.remove(id)),
            ];
            let mut had_entry = false;
            for (name, result) in results {
                match result {
                    Ok(()) => had_entry = true,
                    Err(MapError::SyscallError(e))
                        if e.io_error.raw_os_error() == Some(libc::ENOENT) => {}
                    Err(source) => return Err(EbpfError::Map { name, source }),
                }
            }
            removed += usize::from(had_entry);
        }
        Ok(removed)
    }
}

/// The id `bpf_get_current_cgroup_id()` reports for tasks in a cgroup v2 directory: its kernfs
/// node id, which is the directory's inode number on 64-bit kernels.
pub fn cgroup_id(dir: &Path) -> Result<u64, EbpfError> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(dir)
        .map(|m| m.ino())
        .map_err(|source| EbpfError::Io {
            path: dir.to_path_buf(),
            source,
        })
}

/// An error and its sources, `: `-separated (aya's messages name the syscall, the source
/// says why it failed).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn failed(probe: Probe, reason: String) -> ProbeStatus {
    tracing::warn!(
        probe = probe.name(),
        reason = %reason,
        "probe not attached; its metrics will be missing"
    );
    ProbeStatus {
        name: probe.name(),
        attached: false,
        reason: Some(reason),
    }
}

fn take_map<M>(ebpf: &mut Ebpf, name: &'static str) -> Result<M, EbpfError>
where
    M: TryFrom<aya::maps::Map, Error = MapError>,
{
    let map = ebpf.take_map(name).ok_or(EbpfError::MissingMap(name))?;
    M::try_from(map).map_err(|source| EbpfError::Map { name, source })
}

/// Loads the probe's programs and attaches each of its tracepoints. On any failure the probe's
/// programs are unloaded again (which detaches what did attach), so a probe is all or nothing.
fn attach_probe(ebpf: &mut Ebpf, probe: Probe, forced_failure: bool) -> Result<(), String> {
    let result = try_attach_probe(ebpf, probe, forced_failure);
    if result.is_err() {
        for &name in probe.programs() {
            if let Some(program) = ebpf.program_mut(name) {
                let tracepoint: Result<&mut TracePoint, _> = program.try_into();
                if let Ok(tp) = tracepoint {
                    // Unloading a program that never loaded fails harmlessly.
                    let _ = tp.unload();
                }
            }
        }
    }
    result
}

fn try_attach_probe(ebpf: &mut Ebpf, probe: Probe, forced_failure: bool) -> Result<(), String> {
    for &name in probe.programs() {
        let program = ebpf
            .program_mut(name)
            .ok_or_else(|| format!("the eBPF object has no program `{name}`"))?;
        let tracepoint: &mut TracePoint = program
            .try_into()
            .map_err(|e: ProgramError| format!("program `{name}`: {e}"))?;
        tracepoint
            .load()
            .map_err(|e| format!("loading program `{name}`: {e}"))?;
    }
    for (index, &(name, category, tracepoint_name)) in probe.attachments().iter().enumerate() {
        let (category, tracepoint_name) = if forced_failure && index == 0 {
            (FORCED_FAILURE_CATEGORY, probe.name())
        } else {
            (category, tracepoint_name)
        };
        let tracepoint: &mut TracePoint = ebpf
            .program_mut(name)
            .ok_or_else(|| format!("the eBPF object has no program `{name}`"))?
            .try_into()
            .map_err(|e: ProgramError| format!("program `{name}`: {e}"))?;
        tracepoint.attach(category, tracepoint_name).map_err(|e| {
            let forced = if forced_failure {
                format!(" (failure forced by {FORCE_FAIL_ENV} or ProbeSelection::force_failure)")
            } else {
                String::new()
            };
            format!("attaching to tracepoint {category}:{tracepoint_name}: {e}{forced}")
        })?;
    }
    Ok(())
}

/// The root of the cgroup v2 hierarchy: the `unified` mount of a hybrid host, else
/// `/sys/fs/cgroup` when it is cgroup2 itself.
pub fn cgroup2_root() -> Option<PathBuf> {
    let unified = Path::new("/sys/fs/cgroup/unified");
    if unified.join("cgroup.procs").exists() {
        return Some(unified.to_path_buf());
    }
    let root = Path::new("/sys/fs/cgroup");
    root.join("cgroup.controllers")
        .exists()
        .then(|| root.to_path_buf())
}

/// Loads both network programs and attaches them to `dir` (or the cgroup v2 root) in
/// multi-attach mode, next to whatever systemd or a CNI attached there. All or nothing, like
/// [`attach_probe`].
fn attach_network(ebpf: &mut Ebpf, dir: Option<&Path>, forced_failure: bool) -> Result<(), String> {
    let result = try_attach_network(ebpf, dir, forced_failure);
    if result.is_err() {
        for &name in Probe::Network.programs() {
            if let Some(program) = ebpf.program_mut(name) {
                let skb: Result<&mut CgroupSkb, _> = program.try_into();
                if let Ok(skb) = skb {
                    let _ = skb.unload();
                }
            }
        }
    }
    result
}

fn try_attach_network(
    ebpf: &mut Ebpf,
    dir: Option<&Path>,
    forced_failure: bool,
) -> Result<(), String> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => cgroup2_root().ok_or_else(|| {
            "no cgroup v2 hierarchy mounted (cgroup v1-only host): network counters need one"
                .to_owned()
        })?,
    };
    let dir = if forced_failure {
        dir.join(FORCED_FAILURE_CATEGORY)
    } else {
        dir
    };
    let cgroup = std::fs::File::open(&dir).map_err(|e| {
        let forced = if forced_failure {
            format!(" (failure forced by {FORCE_FAIL_ENV} or ProbeSelection::force_failure)")
        } else {
            String::new()
        };
        format!("opening cgroup {}: {e}{forced}", dir.display())
    })?;
    // aya attaches through a BPF link from Linux 5.7 on: links always coexist with other
    // programs and the kernel rejects any flag. Before that, a legacy attach must ask for
    // multi-attach to sit next to systemd's programs.
    let mode = match aya::util::KernelVersion::current() {
        Ok(v) if v >= aya::util::KernelVersion::new(5, 7, 0) => CgroupAttachMode::Single,
        _ => CgroupAttachMode::AllowMultiple,
    };
    for (name, direction) in [
        (programs::NET_INGRESS, CgroupSkbAttachType::Ingress),
        (programs::NET_EGRESS, CgroupSkbAttachType::Egress),
    ] {
        let program: &mut CgroupSkb = ebpf
            .program_mut(name)
            .ok_or_else(|| format!("the eBPF object has no program `{name}`"))?
            .try_into()
            .map_err(|e: ProgramError| format!("program `{name}`: {e}"))?;
        program
            .load()
            .map_err(|e| format!("loading program `{name}`: {e}"))?;
        program.attach(&cgroup, direction, mode).map_err(|e| {
            format!(
                "attaching `{name}` to cgroup {}: {}",
                dir.display(),
                error_chain(&e)
            )
        })?;
    }
    Ok(())
}

/// The `sched_switch` program, which both [`Probe::SchedSwitch`] and
/// [`Probe::RunqueueLatency`] need: loaded and attached by whichever comes first, once.
#[derive(Default)]
struct SharedSchedSwitch {
    /// The outcome of the one real attach, once tried.
    outcome: Option<Result<(), String>>,
}

impl SharedSchedSwitch {
    fn attach(&mut self, ebpf: &mut Ebpf, forced_failure: bool) -> Result<(), String> {
        if forced_failure {
            // A real failure: an extra attach of the program to a tracepoint no kernel has,
            // which leaves the attachment the other probe may need alone.
            return Err(Self::attach_to(ebpf, FORCED_FAILURE_CATEGORY).map_or_else(
                |e| {
                    format!(
                        "{e} (failure forced by {FORCE_FAIL_ENV} or ProbeSelection::force_failure)"
                    )
                },
                |()| format!("{FORCED_FAILURE_CATEGORY}:sched_switch unexpectedly exists"),
            ));
        }
        if let Some(outcome) = &self.outcome {
            return outcome.clone();
        }
        let outcome = Self::attach_once(ebpf);
        self.outcome = Some(outcome.clone());
        outcome
    }

    fn attach_once(ebpf: &mut Ebpf) -> Result<(), String> {
        Self::attach_to(ebpf, "sched")
    }

    /// Loads the program unless it is, and attaches it to `category:sched_switch`.
    fn attach_to(ebpf: &mut Ebpf, category: &str) -> Result<(), String> {
        let name = programs::SCHED_SWITCH;
        let tracepoint: &mut TracePoint = ebpf
            .program_mut(name)
            .ok_or_else(|| format!("the eBPF object has no program `{name}`"))?
            .try_into()
            .map_err(|e: ProgramError| format!("program `{name}`: {e}"))?;
        if tracepoint.fd().is_err() {
            tracepoint
                .load()
                .map_err(|e| format!("loading program `{name}`: {}", error_chain(&e)))?;
        }
        tracepoint.attach(category, "sched_switch").map_err(|e| {
            format!(
                "attaching to tracepoint {category}:sched_switch: {}",
                error_chain(&e)
            )
        })?;
        Ok(())
    }
}

/// Record offsets of `cgroup:cgroup_mkdir` (and `cgroup_rmdir`, checked to match).
struct CgroupEventOffsets {
    root: u32,
    id: u32,
    path: u32,
}

impl CgroupEventOffsets {
    fn defaults() -> Self {
        use nodemeter_ebpf_common as c;
        Self {
            root: c::DEFAULT_CGROUP_EVENT_ROOT_OFFSET,
            id: c::DEFAULT_CGROUP_EVENT_ID_OFFSET,
            path: c::DEFAULT_CGROUP_EVENT_PATH_OFFSET,
        }
    }

    fn read(tracefs_dir: &Path) -> Result<Self, EbpfError> {
        let read = |name| -> Result<Self, EbpfError> {
            Ok(Self {
                root: field_offset(tracefs_dir, "cgroup", name, "root", 4)?,
                id: field_offset(tracefs_dir, "cgroup", name, "id", 8)?,
                path: field_offset(tracefs_dir, "cgroup", name, "path", 4)?,
            })
        };
        let mkdir = read("cgroup_mkdir")?;
        let rmdir = read("cgroup_rmdir")?;
        if (mkdir.root, mkdir.id, mkdir.path) != (rmdir.root, rmdir.id, rmdir.path) {
            // One function serves both tracepoints; it cannot follow two layouts.
            return Err(EbpfError::TracefsFieldSize {
                path: tracefs_dir.join("events/cgroup/cgroup_rmdir/format"),
                field: "path",
                size: rmdir.path,
                expected: "the layout of cgroup_mkdir",
            });
        }
        Ok(mkdir)
    }
}

/// Record offsets and struct offsets the TCP programs need.
struct TcpGlobals {
    skaddr_offset: u32,
    oldstate_offset: u32,
    protocol_offset: u32,
    retransmit_skaddr_offset: u32,
    sock_cgroup_offset: u32,
    cgroup_kn_offset: u32,
    kernfs_node_id_offset: u32,
}

impl TcpGlobals {
    fn defaults() -> Self {
        use nodemeter_ebpf_common as c;
        Self {
            skaddr_offset: c::DEFAULT_INET_SOCK_SKADDR_OFFSET,
            oldstate_offset: c::DEFAULT_INET_SOCK_OLDSTATE_OFFSET,
            protocol_offset: c::DEFAULT_INET_SOCK_PROTOCOL_OFFSET,
            retransmit_skaddr_offset: c::DEFAULT_TCP_RETRANSMIT_SKADDR_OFFSET,
            sock_cgroup_offset: c::FIELD_ABSENT,
            cgroup_kn_offset: c::FIELD_ABSENT,
            kernfs_node_id_offset: c::FIELD_ABSENT,
        }
    }

    fn read_records(&mut self, tracefs_dir: &Path) -> Result<(), EbpfError> {
        let (category, name) = ("sock", "inet_sock_set_state");
        self.skaddr_offset = field_offset(tracefs_dir, category, name, "skaddr", 8)?;
        self.oldstate_offset = field_offset(tracefs_dir, category, name, "oldstate", 4)?;
        let newstate = field_offset(tracefs_dir, category, name, "newstate", 4)?;
        if newstate != self.oldstate_offset + 4 {
            // The program reads both states with one load.
            return Err(EbpfError::TracefsFieldSize {
                path: tracefs_dir.join("events/sock/inet_sock_set_state/format"),
                field: "newstate",
                size: 4,
                expected: "newstate directly after oldstate",
            });
        }
        self.protocol_offset = field_offset(tracefs_dir, category, name, "protocol", 2)?;
        self.retransmit_skaddr_offset =
            field_offset(tracefs_dir, "tcp", "tcp_retransmit_skb", "skaddr", 8)?;
        Ok(())
    }

    /// The socket → cgroup id path from BTF; without it sockets are attributed only from the
    /// task that connects or listens (see `agent-ebpf/src/tcp.rs`).
    fn read_btf(&mut self) {
        match btf::Btf::vmlinux().and_then(|b| btf::SocketCgroupOffsets::from_btf(&b)) {
            Ok(o) => {
                tracing::debug!(?o, "socket cgroup offsets from BTF");
                self.sock_cgroup_offset = o.sock_cgroup;
                self.cgroup_kn_offset = o.cgroup_kn;
                self.kernfs_node_id_offset = o.kernfs_node_id;
            }
            Err(e) => tracing::warn!(
                error = %e,
                "no socket cgroup offsets from BTF: TCP events of accepted sockets and of sockets \
                 opened before the agent started are not attributed"
            ),
        }
    }
}

/// Record offsets of the tracepoints other than `sched_switch`'s `prev_*` fields.
struct RecordGlobals {
    next_pid_offset: u32,
    wakeup_pid_offset: u32,
    clone_flags_offset: u32,
    group_dead_offset: u32,
    oom_victim_pid_offset: u32,
}

impl RecordGlobals {
    fn defaults() -> Self {
        Self {
            next_pid_offset: nodemeter_ebpf_common::DEFAULT_NEXT_PID_OFFSET,
            wakeup_pid_offset: nodemeter_ebpf_common::DEFAULT_WAKEUP_PID_OFFSET,
            clone_flags_offset: nodemeter_ebpf_common::DEFAULT_CLONE_FLAGS_OFFSET,
            group_dead_offset: nodemeter_ebpf_common::DEFAULT_GROUP_DEAD_OFFSET,
            oom_victim_pid_offset: nodemeter_ebpf_common::DEFAULT_OOM_VICTIM_PID_OFFSET,
        }
    }

    fn read_runqueue(&mut self, tracefs_dir: &Path) -> Result<(), EbpfError> {
        self.next_pid_offset = field_offset(tracefs_dir, "sched", "sched_switch", "next_pid", 4)?;
        let wakeup = field_offset(tracefs_dir, "sched", "sched_wakeup", "pid", 4)?;
        let wakeup_new = field_offset(tracefs_dir, "sched", "sched_wakeup_new", "pid", 4)?;
        if wakeup != wakeup_new {
            // One program serves both tracepoints; it cannot follow two layouts.
            let path = tracefs_dir.join("events/sched/sched_wakeup_new/format");
            return Err(EbpfError::TracefsFieldSize {
                path,
                field: "pid",
                size: wakeup_new,
                expected: "the same offset as in sched_wakeup",
            });
        }
        self.wakeup_pid_offset = wakeup;
        Ok(())
    }

    fn read_process(&mut self, tracefs_dir: &Path) -> Result<(), EbpfError> {
        self.clone_flags_offset =
            field_offset(tracefs_dir, "task", "task_newtask", "clone_flags", 8)?;
        let exit_path = tracefs_dir.join("events/sched/sched_process_exit/format");
        let exit = tracefs::TracepointFormat::read(tracefs_dir, "sched", "sched_process_exit")?;
        self.group_dead_offset = match exit.fields.get("group_dead") {
            Some(f) if f.size == 1 => f.offset,
            Some(f) => {
                return Err(EbpfError::TracefsFieldSize {
                    path: exit_path,
                    field: "group_dead",
                    size: f.size,
                    expected: "1",
                });
            }
            None => {
                tracing::info!(
                    path = %exit_path.display(),
                    "sched_process_exit has no group_dead (kernel before 6.x): every thread exit counts as a process exit"
                );
                nodemeter_ebpf_common::FIELD_ABSENT
            }
        };
        Ok(())
    }
}

/// Offset of `field` in the record of `category:name`, checking its size.
fn field_offset(
    tracefs_dir: &Path,
    category: &str,
    name: &str,
    field: &'static str,
    size: u32,
) -> Result<u32, EbpfError> {
    let path = tracefs_dir
        .join("events")
        .join(category)
        .join(name)
        .join("format");
    let format = tracefs::TracepointFormat::read(tracefs_dir, category, name)?;
    let f = format.field(field, &path)?;
    if f.size != size {
        return Err(EbpfError::TracefsFieldSize {
            path,
            field,
            size: f.size,
            expected: match size {
                2 => "2",
                4 => "4",
                _ => "8",
            },
        });
    }
    Ok(f.offset)
}

/// What the sched_switch program needs to know about this kernel's record layout.
struct SchedSwitchGlobals {
    prev_pid_offset: u32,
    prev_state_offset: u32,
    prev_state_size: u32,
    preempted_state: u64,
}

impl SchedSwitchGlobals {
    fn defaults() -> Self {
        Self {
            prev_pid_offset: nodemeter_ebpf_common::DEFAULT_PREV_PID_OFFSET,
            prev_state_offset: nodemeter_ebpf_common::DEFAULT_PREV_STATE_OFFSET,
            prev_state_size: 8,
            preempted_state: nodemeter_ebpf_common::DEFAULT_PREEMPTED_STATE,
        }
    }

    fn read(tracefs_dir: &Path) -> Result<Self, EbpfError> {
        let path = tracefs_dir.join("events/sched/sched_switch/format");
        let format = tracefs::TracepointFormat::read(tracefs_dir, "sched", "sched_switch")?;
        let prev_pid = format.field("prev_pid", &path)?;
        if prev_pid.size != 4 {
            return Err(EbpfError::TracefsFieldSize {
                path,
                field: "prev_pid",
                size: prev_pid.size,
                expected: "4",
            });
        }
        let prev_state = format.field("prev_state", &path)?;
        if prev_state.size != 4 && prev_state.size != 8 {
            return Err(EbpfError::TracefsFieldSize {
                path,
                field: "prev_state",
                size: prev_state.size,
                expected: "4 or 8",
            });
        }
        let preempted_state = format.sched_switch_preempted_state().unwrap_or_else(|| {
            tracing::warn!(
                path = %path.display(),
                default = nodemeter_ebpf_common::DEFAULT_PREEMPTED_STATE,
                "no prev_state flag table in the print format; assuming TASK_REPORT_MAX"
            );
            nodemeter_ebpf_common::DEFAULT_PREEMPTED_STATE
        });
        tracing::debug!(
            prev_pid_offset = prev_pid.offset,
            prev_state_offset = prev_state.offset,
            prev_state_size = prev_state.size,
            preempted_state,
            "sched_switch record layout"
        );
        Ok(Self {
            prev_pid_offset: prev_pid.offset,
            prev_state_offset: prev_state.offset,
            prev_state_size: prev_state.size,
            preempted_state,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_probes_can_move_to_a_collection_task() {
        fn assert_send<T: Send>() {}
        assert_send::<KernelProbes>();
    }

    #[test]
    fn probe_names_round_trip() {
        for &p in Probe::ALL {
            assert_eq!(Probe::from_name(p.name()), Some(p));
        }
        assert_eq!(Probe::from_name("sched_swich"), None);
    }

    #[test]
    fn disabled_section_selects_nothing() {
        let config = EbpfConfig {
            enabled: false,
            ..EbpfConfig::default()
        };
        assert!(ProbeSelection::from_config(&config).is_empty());
        assert!(ProbeSelection::from_config(&EbpfConfig::default()).is_enabled(Probe::SchedSwitch));
    }
}
