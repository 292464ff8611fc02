//! The kernel interface of the eBPF source: loads the embedded object, attaches each probe on
//! its own, and reads the per-cgroup maps. No pipeline logic lives here; the source turns what
//! [`KernelProbes`] reads into samples.
//!
//! The object is built by `cargo xtask build-ebpf` and committed beside this file (like
//! bpf2go output), so the agent builds with stable cargo alone.

pub mod config;
mod privileges;
mod source;
pub mod tracefs;

use std::collections::BTreeSet;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use aya::maps::{MapData, MapError, PerCpuArray, PerCpuHashMap};
use aya::programs::{ProgramError, TracePoint};
use aya::{Ebpf, EbpfLoader};
use nodemeter_ebpf_common::{globals, maps, overflow, programs};

pub use self::config::EbpfConfig;
pub use self::privileges::check_privileges;
pub use self::source::{CONTEXT_SWITCHES, EbpfSource, SOURCE_NAME, load_probes};
pub use nodemeter_ebpf_common::{MAX_CGROUPS, SchedCounters};

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

/// A probe: one program attached to one kernel hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Probe {
    /// `sched:sched_switch` context-switch counters per cgroup.
    SchedSwitch,
}

impl Probe {
    pub const ALL: &'static [Probe] = &[Probe::SchedSwitch];

    /// The probe's name in config, logs, self-metrics and statuses.
    pub fn name(self) -> &'static str {
        match self {
            Probe::SchedSwitch => "sched_switch",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|p| p.name() == name)
    }

    fn program(self) -> &'static str {
        match self {
            Probe::SchedSwitch => programs::SCHED_SWITCH,
        }
    }

    /// (category, name) of the tracepoint.
    fn tracepoint(self) -> (&'static str, &'static str) {
        match self {
            Probe::SchedSwitch => ("sched", "sched_switch"),
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
        if config.probes.sched_switch {
            selection.enabled.insert(Probe::SchedSwitch);
        }
        if let Ok(names) = std::env::var(FORCE_FAIL_ENV) {
            for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                match Probe::from_name(name) {
                    Some(p) => {
                        selection.forced_failures.insert(p);
                    }
                    None => tracing::warn!(probe = name, "{FORCE_FAIL_ENV} names an unknown probe"),
                }
            }
        }
        selection
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
    pub name: &'static str,
    pub run_count: u64,
    pub run_time_ns: u64,
}

/// The loaded object, its attached probes and its maps. Dropping it detaches everything.
pub struct KernelProbes {
    ebpf: Ebpf,
    statuses: Vec<ProbeStatus>,
    sched_counters: PerCpuHashMap<MapData, u64, SchedCounters>,
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
        if enabled.is_enabled(Probe::SchedSwitch) {
            match tracefs::ensure_tracefs().and_then(|dir| SchedSwitchGlobals::read(&dir)) {
                Ok(g) => sched_switch = g,
                Err(e) => early_failures.push((Probe::SchedSwitch, e.to_string())),
            }
        }

        let mut loader = EbpfLoader::new();
        if let Some(entries) = enabled.cgroup_capacity {
            loader.set_max_entries(maps::SCHED_COUNTERS, entries);
        }
        let mut ebpf = loader
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
            .load(OBJECT)
            .map_err(EbpfError::Load)?;

        let sched_counters = take_map(&mut ebpf, maps::SCHED_COUNTERS)?;
        let overflows = take_map(&mut ebpf, maps::MAP_OVERFLOWS)?;

        let stats = match aya::sys::enable_stats(aya::sys::Stats::RunTime) {
            Ok(fd) => Some(fd),
            Err(e) => {
                tracing::info!(error = %e, "kernel BPF run-time stats unavailable; program_stats will read zero");
                None
            }
        };

        let mut statuses = Vec::with_capacity(Probe::ALL.len());
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
                match attach_tracepoint(&mut ebpf, probe, forced) {
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
            sched_counters,
            overflows,
            _stats: stats,
        })
    }

    /// One entry per known probe, enabled or not.
    pub fn statuses(&self) -> &[ProbeStatus] {
        &self.statuses
    }

    /// Context-switch counters per cgroup id, summed over CPUs. Counters only grow while the
    /// entry exists; an entry removed by [`forget_cgroups`](Self::forget_cgroups) restarts at 0
    /// if the id shows up again.
    pub fn read_sched_counters(&mut self) -> Result<Vec<(u64, SchedCounters)>, EbpfError> {
        let mut out = Vec::new();
        for entry in self.sched_counters.iter() {
            let (cgroup_id, per_cpu) = entry.map_err(|source| EbpfError::Map {
                name: maps::SCHED_COUNTERS,
                source,
            })?;
            let mut total = SchedCounters::default();
            for c in per_cpu.iter() {
                total.accumulate(c);
            }
            out.push((cgroup_id, total));
        }
        Ok(out)
    }

    /// Inserts the programs could not make because a bounded map was full, over all maps and
    /// CPUs since load. Non-zero means per-cgroup counts are missing events.
    pub fn map_overflows(&self) -> u64 {
        let mut total = 0u64;
        for slot in 0..overflow::SLOTS {
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
            let Some(program) = self.ebpf.program(probe.program()) else {
                continue;
            };
            match program.info() {
                Ok(info) => out.push(ProgramStats {
                    name: probe.name(),
                    run_count: info.run_count(),
                    run_time_ns: u64::try_from(info.run_time().as_nanos()).unwrap_or(u64::MAX),
                }),
                Err(e) => {
                    tracing::warn!(probe = probe.name(), error = %e, "cannot read program info");
                }
            }
        }
        out
    }

    /// Deletes the map entries of cgroups that no longer exist, so the bounded maps do not fill
    /// up with churn. Ids without an entry are ignored. Returns how many entries were removed.
    pub fn forget_cgroups(&mut self, cgroup_ids: &[u64]) -> Result<usize, EbpfError> {
        let mut removed = 0;
        for id in cgroup_ids {
            match self.sched_counters.remove(id) {
                Ok(()) => removed += 1,
                Err(MapError::SyscallError(e))
                    if e.io_error.raw_os_error() == Some(libc::ENOENT) => {}
                Err(source) => {
                    return Err(EbpfError::Map {
                        name: maps::SCHED_COUNTERS,
                        source,
                    });
                }
            }
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

fn attach_tracepoint(ebpf: &mut Ebpf, probe: Probe, forced_failure: bool) -> Result<(), String> {
    let program = ebpf
        .program_mut(probe.program())
        .ok_or_else(|| format!("the eBPF object has no program `{}`", probe.program()))?;
    let tracepoint: &mut TracePoint = program
        .try_into()
        .map_err(|e: ProgramError| format!("program `{}`: {e}", probe.program()))?;
    tracepoint
        .load()
        .map_err(|e| format!("loading program `{}`: {e}", probe.program()))?;
    let (category, name) = if forced_failure {
        (FORCED_FAILURE_CATEGORY, probe.name())
    } else {
        probe.tracepoint()
    };
    tracepoint.attach(category, name).map_err(|e| {
        let forced = if forced_failure {
            format!(" (failure forced by {FORCE_FAIL_ENV} or ProbeSelection::force_failure)")
        } else {
            String::new()
        };
        format!("attaching to tracepoint {category}:{name}: {e}{forced}")
    })?;
    Ok(())
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
