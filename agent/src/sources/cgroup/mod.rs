//! Container metrics read from cgroupfs (v1, v2 and hybrid) and /proc, with cAdvisor's names,
//! types, labels and value semantics, as kubelet serves them at `/metrics/cadvisor`.
//!
//! One cycle: rescan the inventory (new cgroups appear within one interval), then per tracked
//! cgroup read each enabled set's files into a reused buffer and emit through the per-cgroup
//! label cache; removed cgroups' series get one stale marker each (see [`SeriesCache`]).

mod blkio;
mod config;
mod cpu;
mod dirs;
mod emit;
pub mod families;
mod machine;
mod memory;
mod network;
mod preset;
mod process;
mod read;
mod rescan;
mod sample_emitter;

pub use rescan::{CGROUP_EVENT_BACKLOG, RescanTrigger};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{Instrument, debug, info, info_span, warn};

pub use config::{CgroupConfig, MetricSets, ProcessLimits, RelabelPreset};
pub use dirs::{CgroupDir, CgroupDirs, raise_open_files_limit};
pub use emit::{Group, RelabelFn, SeriesCache, SeriesEmitter, target_labels};
pub use preset::{KUBE_PROMETHEUS_STACK_YAML, PresetError, preset_configs};
pub use read::{RecordedRead, open_at, read_all};
pub use sample_emitter::Emitter;

use crate::identity::{CgroupEntry, CgroupKind, Hierarchies, Inventory, Tracking};
use crate::model::{Batch, Labels, SourceId};
use crate::sources::SourceContext;

pub const SOURCE_NAME: &str = "cgroup";

/// Machine facts are re-read this often (cAdvisor: `--update_machine_info_interval=5m`).
const MACHINE_REFRESH: Duration = Duration::from_secs(300);

/// Cached series not emitted for this many cycles are forgotten.
const SERIES_MAX_AGE: u64 = 32;

/// Per-cgroup state kept between cycles.
struct Tracked {
    entry: Arc<CgroupEntry>,
    dirs: CgroupDirs,
    cache: SeriesCache,
    start_time: Option<f64>,
    /// Last complete fd/socket count (kept when the PID budget runs out).
    fds: Option<(u64, u64)>,
    /// Whether the cgroup's first process is `pause` (sandbox detection without metadata).
    pause: Option<bool>,
    /// The init process's soft open-files limit, by PID (read once per init process).
    ulimit: Option<(u32, Option<f64>)>,
    /// Cycle in which `dirs` were resolved (re-resolved once on the next cycle, since a
    /// runtime creates a container's directories in each hierarchy one after the other).
    resolved: u64,
}

/// Everything one collection cycle needs, owned by the blocking reader thread during a cycle.
pub struct Collector {
    config: CgroupConfig,
    hierarchies: Hierarchies,
    tracking: Tracking,
    inventory: Inventory,
    target: Labels,
    relabel: Option<RelabelFn>,
    tracked: HashMap<String, Tracked>,
    /// Caches of cgroups gone since the last cycle, whose series get stale markers.
    retired: Vec<SeriesCache>,
    reader: read::FileReader,
    devices: blkio::Devices,
    netns: network::NetworkNamespaces,
    machine: Option<(machine::MachineInfo, Vec<machine::Filesystem>, Instant)>,
    machine_cache: SeriesCache,
    info_cache: SeriesCache,
    hugepage_sizes: Vec<String>,
    boot_time: f64,
    cycle: u64,
    last_run: HashMap<&'static str, Instant>,
    pids: Vec<u32>,
    io: Vec<blkio::DeviceIo>,
    proc_cursor: usize,
    /// Samples of the last cycle, to size the next batch.
    last_samples: usize,
    /// Says when the inventory must walk cgroupfs again.
    rescan: RescanTrigger,
    last_walk: Option<Instant>,
}

/// Which sets run this cycle.
#[derive(Clone, Copy)]
struct Due {
    cpu: bool,
    memory: bool,
    disk_io: bool,
    disk: bool,
    network: bool,
    process: bool,
    pressure: bool,
    machine: bool,
}

impl Collector {
    pub fn new(
        config: CgroupConfig,
        hierarchies: Hierarchies,
        inventory: Inventory,
        node_name: &str,
    ) -> Self {
        let target = target_labels(
            config
                .resolved_target_labels(node_name)
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        // The config was validated on load; rules that still fail to compile (a caller that
        // skipped validation) are reported and left out rather than failing the source.
        let relabel = preset::relabel_fn(config.relabel_preset, &config.metric_relabel_configs)
            .unwrap_or_else(|e| {
                warn!(error = %e, "cgroup relabel rules ignored");
                None
            });
        let tracking = Tracking {
            root: config.root.clone(),
            extra: config.extra_cgroups.clone(),
        };
        let hugepage_sizes = if config.metrics.hugetlb {
            memory::hugepage_sizes()
        } else {
            Vec::new()
        };
        Self {
            config,
            hierarchies,
            tracking,
            inventory,
            target,
            relabel,
            tracked: HashMap::new(),
            retired: Vec::new(),
            reader: read::FileReader::new(),
            devices: blkio::Devices::new(),
            netns: network::NetworkNamespaces::new(),
            machine: None,
            machine_cache: SeriesCache::new(),
            info_cache: SeriesCache::new(),
            hugepage_sizes,
            boot_time: boot_time(),
            cycle: 0,
            last_run: HashMap::new(),
            pids: Vec::new(),
            io: Vec::new(),
            proc_cursor: 0,
            last_samples: 0,
            rescan: RescanTrigger::new(),
            last_walk: None,
        }
    }

    /// The trigger an event feed uses to make the inventory walk at once (see [`rescan`]).
    pub fn rescan_trigger(&self) -> RescanTrigger {
        self.rescan.clone()
    }

    /// Walks cgroupfs now when a change or the safety interval asks for it; returns the
    /// number of tracked cgroups.
    fn walk_if_due(&mut self, now: Instant) -> usize {
        let safety = self.config.rescan_interval.as_std();
        if self.rescan.take_due(self.last_walk, now, safety) {
            self.last_walk = Some(now);
            let n = self.inventory.rescan(&self.hierarchies, &self.tracking);
            tracing::debug!(cgroups = n, "container inventory walked cgroupfs");
            n
        } else {
            self.inventory.len()
        }
    }

    /// Replaces the relabel rules applied to this source's series (built once per series).
    pub fn set_relabel(&mut self, relabel: Option<RelabelFn>) {
        self.relabel = relabel;
        for t in self.tracked.values_mut() {
            t.cache = SeriesCache::new();
        }
        self.machine_cache = SeriesCache::new();
        self.info_cache = SeriesCache::new();
    }

    /// Starts recording the files the next cycles read (`on`), or stops and returns them: the
    /// benchmark replays them as its floor.
    pub fn record_reads(&mut self, on: bool) -> Vec<RecordedRead> {
        self.reader.record(on)
    }

    fn due(&mut self, key: &'static str, now: Instant) -> bool {
        let every = self.config.interval_of(key);
        let base = self.config.interval.as_std();
        if every <= base {
            return true;
        }
        let due = self
            .last_run
            .get(key)
            .is_none_or(|last| now.duration_since(*last) + base / 2 >= every);
        if due {
            self.last_run.insert(key, now);
        }
        due
    }

    /// One collection cycle stamped `timestamp_ms` (the time it started, as cAdvisor stamps
    /// a housekeeping sample).
    pub fn collect(&mut self, timestamp_ms: i64) -> Batch {
        self.cycle += 1;
        let cycle = self.cycle;
        let now = Instant::now();
        let n = self.walk_if_due(now);
        let entries = self.inventory.entries();
        self.sync_tracked(&entries);
        let sets = self.config.metrics.clone();
        let due = Due {
            cpu: self.due("cpu", now),
            memory: self.due("memory", now),
            disk_io: sets.disk_io && self.due("diskIO", now),
            disk: sets.disk && self.due("disk", now),
            network: sets.network && self.due("network", now),
            process: sets.process && self.due("process", now),
            pressure: sets.pressure && self.due("pressure", now),
            machine: sets.machine && self.due("machine", now),
        };
        let host_memory = memory::HostMemory::read(&mut self.reader);
        if self
            .machine
            .as_ref()
            .is_none_or(|(_, _, at)| now.duration_since(*at) >= MACHINE_REFRESH)
        {
            self.machine = Some((machine::MachineInfo::read(), machine::filesystems(), now));
        }
        let mut emitter = SeriesEmitter::new(
            SourceId::new(SOURCE_NAME),
            timestamp_ms,
            cycle,
            &self.target,
            self.relabel.as_ref(),
        );
        emitter.reserve(self.last_samples + self.last_samples / 16);
        let now_secs = timestamp_ms as f64 / 1000.0;
        let mut budget = self.config.process_limits.max_pids_per_cycle;
        let mut next_cursor = None;
        let count = entries.len();
        let start = if count == 0 {
            0
        } else {
            self.proc_cursor % count
        };
        let mut ctx = CycleCtx {
            reader: &mut self.reader,
            devices: &mut self.devices,
            netns: &mut self.netns,
            pids: &mut self.pids,
            io: &mut self.io,
            sets: &sets,
            limits: &self.config.process_limits,
            host_memory: &host_memory,
            filesystems: self.machine.as_ref().map(|m| m.1.as_slice()).unwrap_or(&[]),
            hugepage_sizes: &self.hugepage_sizes,
            cycle,
            now_secs,
            due,
        };
        for i in 0..count {
            let idx = (start + i) % count;
            let entry = &entries[idx];
            let Some(t) = self.tracked.get_mut(&entry.path) else {
                continue;
            };
            emitter.bind(&mut t.cache, &entry.labels);
            let fit = collect_cgroup(&mut ctx, t, &mut budget, &mut emitter);
            if !fit && next_cursor.is_none() {
                next_cursor = Some(idx);
            }
            emitter.end_cache(&t.cache);
            if cycle.is_multiple_of(SERIES_MAX_AGE) {
                emitter.prune(&mut t.cache, SERIES_MAX_AGE);
            }
        }
        for cache in self.retired.drain(..) {
            emitter.retire(&cache);
        }
        self.proc_cursor = next_cursor.unwrap_or(0);
        if let Some((m, _, _)) = &self.machine {
            emitter.bind(&mut self.info_cache, &Labels::empty());
            machine::emit_info(m, &mut self.info_cache, &mut emitter);
            if sets.machine {
                emitter.bind(&mut self.machine_cache, &m.labels);
                if due.machine {
                    machine::emit(m, sets.cpu_topology, &mut self.machine_cache, &mut emitter);
                } else {
                    emitter.keep_alive(&mut self.machine_cache, Group::Machine);
                }
                emitter.end_cache(&self.machine_cache);
            }
            emitter.end_cache(&self.info_cache);
        }
        self.netns.end_cycle(cycle);
        if self.reader.vanished > 0 || self.reader.failed > 0 {
            debug!(
                vanished = self.reader.vanished,
                failed = self.reader.failed,
                "cgroup files that could not be read this cycle"
            );
        }
        self.reader.vanished = 0;
        self.reader.failed = 0;
        let batch = emitter.finish();
        self.last_samples = batch.samples.len();
        debug!(
            cgroups = n,
            samples = batch.samples.len(),
            "cgroup cycle done"
        );
        batch
    }

    fn sync_tracked(&mut self, entries: &[Arc<CgroupEntry>]) {
        let cycle = self.cycle;
        if self.tracked.len() != entries.len()
            || entries.iter().any(|e| !self.tracked.contains_key(&e.path))
        {
            let live: std::collections::HashSet<&str> =
                entries.iter().map(|e| e.path.as_str()).collect();
            let gone: Vec<String> = self
                .tracked
                .keys()
                .filter(|p| !live.contains(p.as_str()))
                .cloned()
                .collect();
            for p in gone {
                if let Some(t) = self.tracked.remove(&p) {
                    self.retired.push(t.cache);
                }
            }
        }
        for e in entries {
            match self.tracked.get_mut(&e.path) {
                Some(t) => {
                    if !Arc::ptr_eq(&t.entry, e) {
                        t.entry = Arc::clone(e);
                    }
                    if t.resolved + 1 == cycle {
                        t.dirs = CgroupDirs::resolve(&self.hierarchies, &e.path);
                        t.resolved = 0;
                    }
                }
                None => {
                    let dirs = CgroupDirs::resolve(&self.hierarchies, &e.path);
                    // The root has no creation record of its own: it started at boot.
                    let start_time = dirs
                        .creation_time(self.boot_time)
                        .or((e.kind == CgroupKind::Root).then_some(self.boot_time));
                    self.tracked.insert(
                        e.path.clone(),
                        Tracked {
                            entry: Arc::clone(e),
                            dirs,
                            cache: SeriesCache::new(),
                            start_time,
                            fds: None,
                            pause: None,
                            ulimit: None,
                            resolved: cycle,
                        },
                    );
                }
            }
        }
    }
}

struct CycleCtx<'a> {
    reader: &'a mut read::FileReader,
    devices: &'a mut blkio::Devices,
    netns: &'a mut network::NetworkNamespaces,
    pids: &'a mut Vec<u32>,
    io: &'a mut Vec<blkio::DeviceIo>,
    sets: &'a MetricSets,
    limits: &'a ProcessLimits,
    host_memory: &'a memory::HostMemory,
    filesystems: &'a [machine::Filesystem],
    hugepage_sizes: &'a [String],
    cycle: u64,
    now_secs: f64,
    due: Due,
}

/// Reads and emits every enabled set of one cgroup. Returns false when the PID budget ran out
/// before this cgroup's file descriptors could be counted.
fn collect_cgroup(
    c: &mut CycleCtx<'_>,
    t: &mut Tracked,
    budget: &mut usize,
    e: &mut SeriesEmitter<'_>,
) -> bool {
    let sets = c.sets;
    let is_root = t.entry.kind == CgroupKind::Root;
    let cache = &mut t.cache;
    let r = &mut *c.reader;
    // A cgroup whose every directory is gone since the rescan emits nothing; its series go
    // stale next cycle if it stays gone.
    if !t.dirs.any() {
        return true;
    }
    let cpu = c.due.cpu.then(|| cpu::read(r, &t.dirs, sets.percpu));
    let mem = if c.due.memory {
        memory::read(r, &t.dirs, is_root, c.host_memory)
    } else {
        None
    };
    // A cgroup removed since the rescan yields nothing from any controller: it emits nothing
    // (not even last_seen), and its series go stale next cycle if it stays gone.
    let read_something = cpu
        .as_ref()
        .is_some_and(|x| x.usage_seconds.is_some() || x.has_cpu)
        || mem.is_some();
    if !read_something && (c.due.cpu || c.due.memory) {
        // Directories are held open: a cgroup removed and made again under the same path
        // is a new directory, looked up again next cycle.
        t.resolved = c.cycle;
        return true;
    }
    match &cpu {
        Some(cpu) => {
            cpu::emit_spec(cpu, cache, e);
            if sets.cpu {
                cpu::emit(cpu, sets, cache, e);
            }
        }
        None => {
            e.keep_alive(cache, Group::Cpu);
            e.keep_alive(cache, Group::Spec);
        }
    }
    e.emit(cache, Group::Always, &families::LAST_SEEN, &[], c.now_secs);
    e.emit(cache, Group::Always, &families::HEALTH_STATE, &[], -1.0);
    if let Some(st) = t.start_time {
        e.emit(cache, Group::Always, &families::START_TIME, &[], st);
        if sets.creation_time {
            e.emit(cache, Group::Always, &families::CREATION_TIME, &[], st);
        }
    }
    if sets.cpu_load {
        cpu::emit_load(cache, e);
    }
    if c.due.memory {
        if let Some(m) = &mem {
            memory::emit_spec(m, cache, e);
            if sets.memory {
                memory::emit(m, sets, cache, e);
            }
            if sets.oom_event {
                memory::emit_oom(m, cache, e);
            }
        }
        if sets.memory_numa {
            memory::emit_numa(r, &t.dirs, cache, e);
        }
        if sets.cpuset {
            memory::emit_cpuset(r, &t.dirs, cache, e);
        }
        if sets.hugetlb {
            memory::emit_hugetlb(r, &t.dirs, c.hugepage_sizes, cache, e);
        }
    } else {
        for g in [Group::Memory, Group::Oom, Group::Hugetlb] {
            e.keep_alive(cache, g);
        }
    }
    if sets.disk_io {
        if c.due.disk_io {
            blkio::read(r, &t.dirs, c.devices, c.io);
            let v2 = t.dirs.blkio.is_none();
            blkio::emit(c.io, v2, c.devices, cache, e);
            // cAdvisor builds these from its filesystem table: they come with the disk set.
            if is_root && sets.disk {
                machine::emit_diskstats(r, c.filesystems, c.io, c.devices, cache, e);
            }
        } else {
            e.keep_alive(cache, Group::DiskIo);
        }
    }
    if sets.disk && is_root {
        if c.due.disk {
            machine::emit_filesystems(c.filesystems, cache, e);
        } else {
            e.keep_alive(cache, Group::Disk);
        }
    }
    if sets.pressure {
        if c.due.pressure {
            emit_pressure(r, &t.dirs, sets.disk_io, cache, e);
        } else {
            e.keep_alive(cache, Group::Pressure);
        }
    }
    let mut fit = true;
    let needs_pids = c.due.process || (c.due.network && !is_root);
    let have_pids = needs_pids && process::read_pids(r, &t.dirs, c.pids);
    if sets.process {
        if c.due.process {
            if have_pids {
                if c.pids.len() <= *budget {
                    *budget -= c.pids.len();
                    let mut sum = (0, 0);
                    for pid in c.pids.iter() {
                        if let Some((f, s)) = process::count_fds(*pid, c.limits.sockets) {
                            sum.0 += f;
                            sum.1 += s;
                        }
                    }
                    t.fds = Some(sum);
                } else {
                    fit = false;
                }
                let (threads, threads_max) = process::read_threads(r, &t.dirs);
                let init_pid = if is_root {
                    Some(1)
                } else if matches!(t.entry.kind, CgroupKind::Container { .. }) {
                    c.pids.iter().min().copied()
                } else {
                    None
                };
                let max_open_files = match (init_pid, t.ulimit) {
                    (Some(p), Some((cached, v))) if cached == p => v,
                    (Some(p), _) => {
                        let v = process::max_open_files(r, p);
                        t.ulimit = Some((p, v));
                        v
                    }
                    (None, _) => None,
                };
                let reading = process::ProcessReading {
                    processes: c.pids.len() as u64,
                    threads,
                    threads_max,
                    fds: t.fds,
                    max_open_files,
                };
                process::emit(&reading, c.limits.sockets, cache, e);
            }
        } else {
            e.keep_alive(cache, Group::Process);
        }
    }
    if sets.network {
        if c.due.network {
            let pid = if is_root {
                Some(1)
            } else if have_pids && is_sandbox(r, &t.entry, &mut t.pause, c.pids) {
                c.pids.first().copied()
            } else {
                None
            };
            // The root's namespace is PID 1's; when /proc/1 is not ours to read (no hostPID,
            // or a ptrace-restricted sandbox) the agent's own namespace stands in, which is
            // the host's for a hostNetwork DaemonSet.
            let pid = match pid {
                Some(1) if !c.netns.readable(1) => Some(std::process::id()),
                p => p,
            };
            if let Some(pid) = pid
                && let Some(ifaces) = c.netns.interfaces(r, pid, c.cycle)
            {
                network::emit(ifaces, cache, e);
            }
        } else {
            e.keep_alive(cache, Group::Network);
        }
    }
    fit
}

/// Whether a cgroup is its pod's sandbox: metadata says so, or (without metadata) its first
/// process is `pause`.
fn is_sandbox(
    r: &mut read::FileReader,
    entry: &CgroupEntry,
    pause: &mut Option<bool>,
    pids: &[u32],
) -> bool {
    if !matches!(entry.kind, CgroupKind::Container { .. }) {
        return false;
    }
    if let Some(s) = entry.sandbox {
        return s;
    }
    if let Some(p) = *pause {
        return p;
    }
    let Some(first) = pids.iter().min() else {
        return false;
    };
    let p = process::is_pause(r, *first);
    *pause = Some(p);
    p
}

fn emit_pressure(
    r: &mut read::FileReader,
    dirs: &CgroupDirs,
    io: bool,
    cache: &mut SeriesCache,
    e: &mut SeriesEmitter<'_>,
) {
    use families::*;
    let Some(d) = &dirs.unified else { return };
    let files: [(&str, &'static families::Family, &'static families::Family); 3] = [
        ("cpu.pressure", &PSI_CPU_WAITING, &PSI_CPU_STALLED),
        ("memory.pressure", &PSI_MEMORY_WAITING, &PSI_MEMORY_STALLED),
        ("io.pressure", &PSI_IO_WAITING, &PSI_IO_STALLED),
    ];
    for (file, waiting, stalled) in files {
        if file == "io.pressure" && !io {
            continue;
        }
        let Some(text) = r.read(d, file) else {
            continue;
        };
        let (some, full) = read::psi_totals(text);
        if let Some(v) = some {
            e.emit(cache, Group::Pressure, waiting, &[], v as f64 / 1e6);
        }
        if let Some(v) = full {
            e.emit(cache, Group::Pressure, stalled, &[], v as f64 / 1e6);
        }
    }
}

/// Boot time in unix seconds (`btime` of /proc/stat).
fn boot_time() -> f64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("btime ")
                    .and_then(|v| v.trim().parse::<f64>().ok())
            })
        })
        .unwrap_or(0.0)
}

/// The cgroup source task.
pub struct CgroupSource {
    collector: Arc<Mutex<Collector>>,
    interval: Duration,
    rescan: RescanTrigger,
}

/// Cgroups of one container start come in a burst (pod, sandbox, containers): one walk after
/// the burst instead of one per directory.
const RESCAN_SETTLE: Duration = Duration::from_millis(100);

impl CgroupSource {
    /// A source for `config`; target labels' `$(NODE_NAME)` becomes `node_name`.
    pub fn new(
        config: CgroupConfig,
        hierarchies: Hierarchies,
        inventory: Inventory,
        node_name: &str,
    ) -> Self {
        let interval = config.interval.as_std();
        let collector = Collector::new(config, hierarchies, inventory, node_name);
        let rescan = collector.rescan_trigger();
        Self {
            collector: Arc::new(Mutex::new(collector)),
            interval,
            rescan,
        }
    }

    /// Where an event feed reports cgroup creations and removals (see [`RescanTrigger`]).
    pub fn rescan_trigger(&self) -> RescanTrigger {
        self.rescan.clone()
    }

    /// Replaces the relabel rules applied to this source's series.
    pub fn set_relabel(&self, relabel: Option<RelabelFn>) {
        self.collector
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .set_relabel(relabel);
    }

    /// Collects once, synchronously (tests and `nodemeter check` use it).
    pub fn collect_now(&self, timestamp_ms: i64) -> Batch {
        self.collector
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .collect(timestamp_ms)
    }

    pub async fn run(self, ctx: SourceContext) -> anyhow::Result<()> {
        info!(interval = ?self.interval, "cgroup source started");
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut first = true;
        loop {
            tokio::select! {
                () = ctx.shutdown.cancelled() => break,
                _ = ticker.tick() => {}
                () = self.rescan.changed() => {
                    tokio::time::sleep(RESCAN_SETTLE).await;
                    let collector = Arc::clone(&self.collector);
                    let walked = tokio::task::spawn_blocking(move || {
                        collector
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .walk_if_due(Instant::now())
                    })
                    .instrument(info_span!("cgroup_rescan"))
                    .await;
                    if let Err(e) = walked {
                        warn!(error = %e, "cgroup rescan failed");
                    }
                    continue;
                }
            }
            let collector = Arc::clone(&self.collector);
            let span = info_span!("cgroup_collect");
            let batch = tokio::task::spawn_blocking(move || {
                let _g = span.enter();
                collector
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .collect(crate::telemetry::now_ms())
            })
            .instrument(info_span!("cgroup_cycle"))
            .await;
            match batch {
                Ok(batch) => {
                    if ctx.out.send(batch).await.is_err() {
                        break;
                    }
                    if first {
                        ctx.readiness.mark_ready(SOURCE_NAME);
                        first = false;
                    }
                }
                Err(e) => warn!(error = %e, "cgroup collection cycle failed"),
            }
        }
        info!("cgroup source stopped");
        Ok(())
    }
}
