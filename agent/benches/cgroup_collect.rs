//! Cost of one cgroup collection cycle at 100 and 1000 real container cgroups, each with a
//! real sleeping process, against a floor that only does the kernel work of the same cycle:
//! list the same cgroup tree, open, read and close exactly the files the collector read
//! (recorded from one of its cycles), and list and readlink the same /proc/<pid>/fd entries.
//! The floor opens the files the way the collector does (relative to the same cgroup
//! directory descriptors); a second, by-path floor opens them by full path, as a reader that
//! keeps no descriptors would.
//!
//! Figures (printed, one line per size):
//! * CPU time per cycle of the calling thread (`CLOCK_THREAD_CPUTIME_ID`, user + kernel),
//!   median of `CYCLES` cycles, collector and floor interleaved in the same run, and their
//!   ratio. Acceptance: ratio ≤ 1.5 at 1000 containers, under 10 ms per 100 containers.
//! * Memory of the collector's state: a child process (this binary re-executed) collects the
//!   node for `RSS_CYCLES` cycles and reports its RSS and live heap; the figure is the
//!   difference between a node of n containers and an empty node, scaled to 1000 containers.
//!   Acceptance: RSS growth under 5 MiB per 1000 containers.
//!
//! Criterion's wall-clock groups (`cgroup_cycle/collect/N`, `cgroup_cycle/floor/N`) follow;
//! `NODEMETER_BENCH_SKIP_CRITERION=1` leaves them out.
//!
//! Needs root and this host's cgroups (v1 controllers plus the unified tree, or v2 only). The
//! fake node is created below the benchmark's own cgroup in each hierarchy and removed when
//! the benchmark ends or panics; its processes die with the benchmark (parent-death signal),
//! and nodes left by a benchmark that was killed are removed by the next run.
//!
//! `sudo -E cargo bench -p nodemeter --bench cgroup_collect`
#![allow(clippy::unwrap_used, clippy::print_stdout, reason = "benchmark")]

use std::collections::BTreeMap;
use std::ffi::CString;
use std::io::Read as _;
use std::os::fd::AsFd as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use nodemeter::identity::{Hierarchies, Inventory};
use nodemeter::sources::cgroup::{CgroupConfig, Collector, RecordedRead, open_at, read_all};

/// Containers per pod.
const PER_POD: usize = 10;
/// Cycles per median.
const CYCLES: usize = 31;
/// Cycles the memory child runs before it measures (caches settle after the second).
const RSS_CYCLES: usize = 6;
/// Prefix of the fake node roots (`<prefix><pid>-<n>`), below the bench's own cgroups.
const NODE_PREFIX: &str = "nm-bench-";
/// Set in the memory child: the node root to collect.
const CHILD_ENV: &str = "NODEMETER_BENCH_RSS_ROOT";

/// A fake node of `n` containers (`n / PER_POD` pods), one sleeping process each.
struct BenchNode {
    root: String,
    mounts: BTreeMap<String, PathBuf>,
    created: Vec<PathBuf>,
    children: Vec<Child>,
    pids: Vec<u32>,
}

fn own_cgroups() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
        if ctrls.is_empty() {
            out.insert("unified".to_string(), path.to_string());
        }
        for c in ctrls.split(',').filter(|c| !c.is_empty()) {
            out.insert(c.to_string(), path.to_string());
        }
    }
    out
}

fn join(m: &Path, p: &str) -> PathBuf {
    let p = p.trim_start_matches('/');
    if p.is_empty() {
        m.to_path_buf()
    } else {
        m.join(p)
    }
}

/// The directory of this process's own cgroup in each hierarchy the collector reads.
fn bench_mounts() -> BTreeMap<String, PathBuf> {
    let detected = Hierarchies::detect(&BTreeMap::new()).unwrap();
    let own = own_cgroups();
    let mut mounts = BTreeMap::new();
    for c in ["cpu", "cpuacct", "memory", "blkio", "pids"] {
        if let Some(m) = detected.v1.get(c) {
            mounts.insert(
                c.to_string(),
                join(m, own.get(c).map_or("/", String::as_str)),
            );
        }
    }
    if let Some(u) = &detected.unified {
        mounts.insert(
            "unified".to_string(),
            join(u, own.get("unified").map_or("/", String::as_str)),
        );
    }
    mounts
}

fn hierarchies_of(mounts: &BTreeMap<String, PathBuf>) -> Hierarchies {
    let mut h = Hierarchies::default();
    for (c, m) in mounts {
        if c == "unified" {
            h.unified = Some(m.clone());
        } else {
            h.v1.insert(c.clone(), m.clone());
        }
    }
    h
}

fn collector_for(root: &str, mounts: &BTreeMap<String, PathBuf>) -> Collector {
    let config = CgroupConfig {
        root: root.to_string(),
        ..Default::default()
    };
    Collector::new(config, hierarchies_of(mounts), Inventory::new(), "bench")
}

/// Removes `dir` and every cgroup below it, deepest first (cgroup directories go with rmdir
/// once their processes are gone).
fn remove_tree(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path());
            }
        }
    }
    for _ in 0..50 {
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes nodes left by earlier runs that were killed before they could clean up.
fn remove_leftovers(mounts: &BTreeMap<String, PathBuf>) {
    for m in mounts.values() {
        let Ok(rd) = std::fs::read_dir(m) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix(NODE_PREFIX))
                .and_then(|rest| rest.split('-').next())
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if !Path::new(&format!("/proc/{pid}")).exists() {
                remove_tree(&e.path());
            }
        }
    }
}

impl BenchNode {
    fn new(n: usize, mounts: BTreeMap<String, PathBuf>) -> Self {
        let mut node = Self {
            root: format!("/{NODE_PREFIX}{}-{n}", std::process::id()),
            mounts,
            created: Vec::new(),
            children: Vec::new(),
            pids: Vec::new(),
        };
        node.mkdir("");
        for i in 0..n {
            let pod = format!(
                "/kubepods/burstable/pod{:08x}-0000-4000-8000-{:012x}",
                i / PER_POD,
                i / PER_POD
            );
            let c = format!("{pod}/{:064x}", i + 1);
            node.mkdir(&c);
            let procs: String = node
                .mounts
                .values()
                .map(|m| {
                    format!(
                        "echo $$ > '{}/cgroup.procs'; ",
                        join(m, &format!("{}{c}", node.root)).display()
                    )
                })
                .collect();
            let mut cmd = Command::new("sh");
            cmd.args(["-c", &format!("{procs}exec sleep 3600")])
                .stdin(Stdio::null());
            // SAFETY: prctl is async-signal-safe; it only sets this child's parent-death
            // signal, so the sleeper dies with the benchmark however the benchmark ends.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let child = cmd.spawn().unwrap();
            node.pids.push(child.id());
            node.children.push(child);
        }
        node.wait_placed();
        node
    }

    /// Waits until every process sits in its container's cgroup.
    fn wait_placed(&self) {
        let Some(m) = self.mounts.values().next() else {
            return;
        };
        for _ in 0..500 {
            let placed = walk_procs(&join(m, &self.root));
            if placed >= self.pids.len() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        println!("cgroup_collect: not every process reached its cgroup");
    }

    fn mkdir(&mut self, path: &str) {
        let full = format!("{}{path}", self.root);
        for m in self.mounts.values() {
            let mut cur = m.clone();
            for part in full.split('/').filter(|p| !p.is_empty()) {
                cur = cur.join(part);
                if !cur.exists() {
                    std::fs::create_dir(&cur).unwrap();
                    self.created.push(cur.clone());
                }
            }
        }
    }

    /// The primary hierarchy's directory of the node root (what the inventory walks).
    fn walk_root(&self) -> PathBuf {
        join(hierarchies_of(&self.mounts).primary().unwrap(), &self.root)
    }
}

impl Drop for BenchNode {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for d in self.created.iter().rev() {
            remove_tree(d);
        }
    }
}

fn walk_procs(dir: &Path) -> usize {
    let mut n = std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|t| t.lines().count())
        .unwrap_or(0);
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                n += walk_procs(&e.path());
            }
        }
    }
    n
}

/// The floor: the same kernel work without parsing, labels or samples. `files` are opened as
/// the collector opened them (relative to the same directory descriptors, reading to the end
/// the same way); `by_path` replays them by full path with std's `read_to_end`, the literal
/// "open, read, close the same files" of a reader that keeps no descriptors.
struct Floor {
    files: Vec<RecordedRead>,
    paths: Vec<PathBuf>,
    walk_root: PathBuf,
    fd_dirs: Vec<CString>,
    buf: Vec<u8>,
    by_path: bool,
}

impl Floor {
    fn cycle(&mut self) -> usize {
        let mut n = 0;
        n += walk(&self.walk_root);
        if self.by_path {
            for p in &self.paths {
                if let Ok(mut f) = std::fs::File::open(p) {
                    self.buf.clear();
                    n += f.read_to_end(&mut self.buf).unwrap_or(0);
                }
            }
        } else {
            for r in &self.files {
                let file = match &r.dir_fd {
                    Some(fd) => open_at(fd.as_fd(), &r.name),
                    None => std::fs::File::open(r.dir.join(&r.name)),
                };
                if let Ok(mut f) = file {
                    n += read_all(&mut f, &mut self.buf).unwrap_or(0);
                }
            }
        }
        for d in &self.fd_dirs {
            n += list_and_readlink(d);
        }
        n
    }
}

fn walk(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 1;
    for e in rd.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            n += walk(&e.path());
        }
    }
    n
}

fn list_and_readlink(dir: &CString) -> usize {
    // SAFETY: `dir` is NUL-terminated; the DIR is closed below.
    let d = unsafe { libc::opendir(dir.as_ptr()) };
    if d.is_null() {
        return 0;
    }
    // SAFETY: `d` is a valid DIR.
    let fd = unsafe { libc::dirfd(d) };
    let mut n = 0;
    let mut link = [0u8; 16];
    loop {
        // SAFETY: `d` is valid.
        let ent = unsafe { libc::readdir(d) };
        if ent.is_null() {
            break;
        }
        // SAFETY: `ent` is valid until the next readdir.
        let name = unsafe { (*ent).d_name.as_ptr() };
        // SAFETY: `name` is NUL-terminated, `link` writable.
        n += unsafe { libc::readlinkat(fd, name, link.as_mut_ptr().cast(), link.len()) }.max(0)
            as usize;
    }
    // SAFETY: closed once.
    unsafe { libc::closedir(d) };
    n
}

/// CPU time (user + system) of the calling thread, in seconds.
fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is writable; the clock id is valid on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// (RSS KiB, live heap KiB) of this process.
fn memory_kib() -> (u64, u64) {
    let rss = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0);
    // SAFETY: mallinfo2 only reads allocator statistics.
    let heap = unsafe { libc::mallinfo2() };
    (rss, (heap.uordblks + heap.hblkhd) as u64 / 1024)
}

/// Memory child: collect the node at `root` for a few cycles, then print RSS and live heap.
fn memory_child(root: &str) {
    let mounts = bench_mounts();
    let mut collector = collector_for(root, &mounts);
    let mut ts = 1_700_000_000_000i64;
    for _ in 0..RSS_CYCLES {
        ts += 10_000;
        drop(std::hint::black_box(collector.collect(ts)));
    }
    let (rss, heap) = memory_kib();
    println!("{rss} {heap}");
    drop(collector);
}

/// (RSS KiB, live heap KiB) of a child process that collected the node at `root`.
fn child_memory(root: &str) -> (u64, u64) {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, root)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text
        .lines()
        .last()
        .unwrap_or("")
        .split(' ')
        .map(|v| v.parse::<u64>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

struct Figures {
    n: usize,
    series: usize,
    files: usize,
    collect_ms: f64,
    floor_ms: f64,
    path_floor_ms: f64,
    rss_kib: i64,
    heap_kib: i64,
}

fn measure(node: &BenchNode, empty: &BenchNode, c: &mut Criterion, run_criterion: bool) -> Figures {
    let n = node.pids.len();
    let mut collector = collector_for(&node.root, &node.mounts);
    let mut ts = 1_700_000_000_000i64;
    for _ in 0..3 {
        ts += 10_000;
        drop(std::hint::black_box(collector.collect(ts)));
    }
    collector.record_reads(true);
    ts += 10_000;
    let batch = collector.collect(ts);
    let files = collector.record_reads(false);
    let series = batch.samples.len();
    drop(batch);
    let fd_dirs: Vec<CString> = node
        .pids
        .iter()
        .map(|p| CString::new(format!("/proc/{p}/fd").as_bytes()).unwrap())
        .collect();
    let paths = files.iter().map(|r| r.dir.join(&r.name)).collect();
    let mut floor = Floor {
        files,
        paths,
        walk_root: node.walk_root(),
        fd_dirs,
        buf: Vec::with_capacity(16384),
        by_path: false,
    };
    // Interleaved, so that load from other processes on the host hits both alike.
    let mut collect_cpu = Vec::with_capacity(CYCLES);
    let mut floor_cpu = Vec::with_capacity(CYCLES);
    let mut path_floor_cpu = Vec::with_capacity(CYCLES);
    for _ in 0..CYCLES {
        ts += 10_000;
        let t0 = thread_cpu_seconds();
        let batch = std::hint::black_box(collector.collect(ts));
        collect_cpu.push(thread_cpu_seconds() - t0);
        drop(batch);
        floor.by_path = false;
        let t0 = thread_cpu_seconds();
        std::hint::black_box(floor.cycle());
        floor_cpu.push(thread_cpu_seconds() - t0);
        floor.by_path = true;
        let t0 = thread_cpu_seconds();
        std::hint::black_box(floor.cycle());
        path_floor_cpu.push(thread_cpu_seconds() - t0);
    }
    floor.by_path = false;
    let (rss_n, heap_n) = child_memory(&node.root);
    let (rss_0, heap_0) = child_memory(&empty.root);
    if run_criterion {
        let mut group = c.benchmark_group("cgroup_cycle");
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(5));
        group.bench_with_input(BenchmarkId::new("collect", n), &n, |b, _| {
            b.iter(|| {
                ts += 10_000;
                std::hint::black_box(collector.collect(ts))
            })
        });
        group.bench_with_input(BenchmarkId::new("floor", n), &n, |b, _| {
            b.iter(|| std::hint::black_box(floor.cycle()))
        });
        group.finish();
    }
    Figures {
        n,
        series,
        files: floor.files.len(),
        collect_ms: median(&mut collect_cpu) * 1e3,
        floor_ms: median(&mut floor_cpu) * 1e3,
        path_floor_ms: median(&mut path_floor_cpu) * 1e3,
        rss_kib: rss_n as i64 - rss_0 as i64,
        heap_kib: heap_n as i64 - heap_0 as i64,
    }
}

fn main() {
    if let Ok(root) = std::env::var(CHILD_ENV) {
        memory_child(&root);
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("cgroup_collect: skipped, needs root");
        return;
    }
    let run_criterion = std::env::var_os("NODEMETER_BENCH_SKIP_CRITERION").is_none();
    let mut c = Criterion::default().configure_from_args();
    let mounts = bench_mounts();
    remove_leftovers(&mounts);
    let empty = BenchNode::new(0, mounts.clone());
    let mut all = Vec::new();
    for n in [100usize, 1000] {
        let node = BenchNode::new(n, mounts.clone());
        let f = measure(&node, &empty, &mut c, run_criterion);
        drop(node);
        println!(
            "cgroup_collect n={}: {} samples, {} files read; CPU per cycle (median of {CYCLES}): collect {:.2} ms, floor {:.2} ms (ratio {:.2}x), by-path floor {:.2} ms (ratio {:.2}x), {:.2} ms per 100 containers; memory vs empty node: RSS {:+} KiB ({:.2} MiB per 1000 containers), live heap {:+} KiB ({:.2} MiB per 1000)",
            f.n,
            f.series,
            f.files,
            f.collect_ms,
            f.floor_ms,
            f.collect_ms / f.floor_ms,
            f.path_floor_ms,
            f.collect_ms / f.path_floor_ms,
            f.collect_ms * 100.0 / f.n as f64,
            f.rss_kib,
            f.rss_kib as f64 / 1024.0 * 1000.0 / f.n as f64,
            f.heap_kib,
            f.heap_kib as f64 / 1024.0 * 1000.0 / f.n as f64,
        );
        all.push(f);
    }
    drop(empty);
    if run_criterion {
        c.final_summary();
    }
    println!(
        "| containers | collect CPU ms (median) | floor CPU ms | ratio | by-path floor CPU ms | ratio | ms per 100 | RSS MiB per 1000 | heap MiB per 1000 |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for f in &all {
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            f.n,
            f.collect_ms,
            f.floor_ms,
            f.collect_ms / f.floor_ms,
            f.path_floor_ms,
            f.collect_ms / f.path_floor_ms,
            f.collect_ms * 100.0 / f.n as f64,
            f.rss_kib as f64 / 1024.0 * 1000.0 / f.n as f64,
            f.heap_kib as f64 / 1024.0 * 1000.0 / f.n as f64,
        );
    }
}
