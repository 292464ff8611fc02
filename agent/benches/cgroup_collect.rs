//! Cost of one cgroup collection cycle at 100 and 1000 real container cgroups (each with a
//! process), against a floor that only does the kernel work: list the same cgroup tree, open,
//! read and close the same files, and list and readlink the same /proc/<pid>/fd entries.
//!
//! Needs root and this host's cgroups (v1 controllers plus the unified tree, or v2 only); the
//! fake node is created below the benchmark's own cgroup and removed afterwards. Besides
//! criterion's wall-clock figures it prints CPU time per cycle (getrusage) and the RSS growth
//! of the collector's state.
//!
//! `cargo bench -p nodemeter --bench cgroup_collect`
#![allow(clippy::unwrap_used, clippy::print_stdout, reason = "benchmark")]

use std::collections::BTreeMap;
use std::ffi::CString;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use nodemeter::identity::{Hierarchies, Inventory};
use nodemeter::sources::cgroup::{CgroupConfig, Collector};

const PER_POD: usize = 10;

/// A fake node of `n` containers (`n / 10` pods), one sleeping process each.
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

impl BenchNode {
    fn new(n: usize) -> Self {
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
        let mut node = Self {
            root: format!("/nm-bench-{}-{n}", std::process::id()),
            mounts,
            created: Vec::new(),
            children: Vec::new(),
            pids: Vec::new(),
        };
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
            let child = Command::new("sh")
                .args(["-c", &format!("{procs}exec sleep 3600")])
                .stdin(Stdio::null())
                .spawn()
                .unwrap();
            node.pids.push(child.id());
            node.children.push(child);
        }
        // Wait until every process sits in its cgroup (the last one spawned last).
        std::thread::sleep(Duration::from_millis(300));
        node
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

    fn hierarchies(&self) -> Hierarchies {
        let mut h = Hierarchies::default();
        for (c, m) in &self.mounts {
            if c == "unified" {
                h.unified = Some(m.clone());
            } else {
                h.v1.insert(c.clone(), m.clone());
            }
        }
        h
    }

    fn collector(&self) -> Collector {
        let config = CgroupConfig {
            root: self.root.clone(),
            ..Default::default()
        };
        Collector::new(config, self.hierarchies(), Inventory::new(), "bench")
    }

    /// The primary hierarchy's directory of the node root (what the inventory walks).
    fn walk_root(&self) -> PathBuf {
        let h = self.hierarchies();
        join(h.primary().unwrap(), &self.root)
    }
}

impl Drop for BenchNode {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for d in self.created.iter().rev() {
            for _ in 0..50 {
                if std::fs::remove_dir(d).is_ok() || !d.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// The floor: the same kernel work without parsing, labels or samples.
struct Floor {
    files: Vec<PathBuf>,
    walk_root: PathBuf,
    fd_dirs: Vec<CString>,
    buf: Vec<u8>,
}

impl Floor {
    fn cycle(&mut self) -> usize {
        let mut n = 0;
        n += walk(&self.walk_root);
        for p in &self.files {
            if let Ok(mut f) = std::fs::File::open(p) {
                self.buf.clear();
                n += f.read_to_end(&mut self.buf).unwrap_or(0);
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

fn cpu_seconds() -> f64 {
    // SAFETY: an all-zero rusage is valid to be overwritten.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `r` is writable.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut r) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(r.ru_utime) + t(r.ru_stime)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

fn bench(c: &mut Criterion) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("cgroup_collect: skipped, needs root");
        return;
    }
    let mut group = c.benchmark_group("cgroup_cycle");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(8));
    for n in [100usize, 1000] {
        let node = BenchNode::new(n);
        let rss_before = rss_kib();
        let mut collector = node.collector();
        let mut ts = 1_700_000_000_000i64;
        for _ in 0..3 {
            ts += 10_000;
            std::hint::black_box(collector.collect(ts));
        }
        let rss_after = rss_kib();
        collector.record_reads(true);
        ts += 10_000;
        let batch = collector.collect(ts);
        let files = collector.record_reads(false);
        let series = batch.samples.len();
        let mut floor = Floor {
            files,
            walk_root: node.walk_root(),
            fd_dirs: node
                .pids
                .iter()
                .map(|p| CString::new(format!("/proc/{p}/fd").as_bytes()).unwrap())
                .collect(),
            buf: Vec::with_capacity(8192),
        };
        // CPU per cycle, outside criterion's timing loop.
        let cycles = 20;
        let t0 = cpu_seconds();
        for _ in 0..cycles {
            ts += 10_000;
            std::hint::black_box(collector.collect(ts));
        }
        let collect_cpu = (cpu_seconds() - t0) / cycles as f64;
        let t0 = cpu_seconds();
        for _ in 0..cycles {
            std::hint::black_box(floor.cycle());
        }
        let floor_cpu = (cpu_seconds() - t0) / cycles as f64;
        println!(
            "cgroup_collect n={n}: {series} series, {} files; CPU per cycle: collect {:.2} ms, floor {:.2} ms ({:.2}x), {:.2} ms per 100 containers; RSS growth {} KiB ({:.2} MiB per 1000 containers)",
            floor.files.len(),
            collect_cpu * 1e3,
            floor_cpu * 1e3,
            collect_cpu / floor_cpu,
            collect_cpu * 1e3 * 100.0 / n as f64,
            rss_after.saturating_sub(rss_before),
            rss_after.saturating_sub(rss_before) as f64 / 1024.0 * 1000.0 / n as f64,
        );
        group.bench_with_input(BenchmarkId::new("collect", n), &n, |b, _| {
            b.iter(|| {
                ts += 10_000;
                std::hint::black_box(collector.collect(ts))
            })
        });
        group.bench_with_input(BenchmarkId::new("floor", n), &n, |b, _| {
            b.iter(|| std::hint::black_box(floor.cycle()))
        });
        drop(collector);
        drop(node);
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
