//! The run-queue latency and process-event probes, with real workloads in real cgroup v2
//! directories: two spinners sharing one CPU wait milliseconds for it, and a loop of N
//! fork+exec counts exactly N.
//!
//! Needs root (loads eBPF, creates cgroups under the cgroup2 mount).
#![allow(clippy::unwrap_used, reason = "tests")]

use std::ffi::CString;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nodemeter::sources::ebpf::{
    KernelProbes, Probe, ProbeSelection, ProcessCounters, RunqHistogram, cgroup_id,
    runq_bucket_upper_seconds,
};

fn cgroup2_root() -> PathBuf {
    let unified = Path::new("/sys/fs/cgroup/unified");
    if unified.join("cgroup.procs").exists() {
        unified.to_path_buf()
    } else {
        PathBuf::from("/sys/fs/cgroup")
    }
}

fn assert_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "run this test as root");
}

fn load(probe: Probe) -> KernelProbes {
    let probes = KernelProbes::load(&ProbeSelection::all()).unwrap();
    let status = probes
        .statuses()
        .iter()
        .find(|s| s.name == probe.name())
        .unwrap();
    assert!(
        status.attached,
        "{} not attached: {:?}",
        probe.name(),
        status.reason
    );
    probes
}

/// A test cgroup whose processes are killed and which is removed on drop.
struct TestCgroup {
    dir: PathBuf,
    children: Vec<Child>,
}

impl TestCgroup {
    fn new(name: &str) -> Self {
        let dir = cgroup2_root().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        Self {
            dir,
            children: Vec::new(),
        }
    }

    fn id(&self) -> u64 {
        cgroup_id(&self.dir).unwrap()
    }

    /// Runs `sh -c script` inside the cgroup (it joins before exec), optionally pinned to
    /// `cpu`.
    fn spawn_sh(&mut self, script: &str, cpu: Option<usize>) -> &mut Child {
        let procs = CString::new(
            self.dir
                .join("cgroup.procs")
                .into_os_string()
                .into_encoded_bytes(),
        )
        .unwrap();
        let mut command = Command::new("/bin/sh");
        command.arg("-c").arg(script).stdin(Stdio::null());
        // SAFETY: between fork and exec only async-signal-safe calls (sched_setaffinity, open,
        // write, close) on memory prepared before the fork.
        unsafe {
            command.pre_exec(move || {
                if let Some(cpu) = cpu {
                    let mut set: libc::cpu_set_t = std::mem::zeroed();
                    libc::CPU_SET(cpu, &mut set);
                    if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let written = libc::write(fd, b"0".as_ptr().cast(), 1);
                let err = std::io::Error::last_os_error();
                libc::close(fd);
                if written != 1 {
                    return Err(err);
                }
                Ok(())
            });
        }
        self.children.push(command.spawn().unwrap());
        self.children.last_mut().unwrap()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("warning: could not remove {}", self.dir.display());
    }
}

fn histogram_for(probes: &mut KernelProbes, id: u64) -> RunqHistogram {
    probes
        .read_runqueue_latency()
        .unwrap()
        .into_iter()
        .find_map(|(cgroup, h)| (cgroup == id).then_some(h))
        .unwrap_or_default()
}

fn process_counters_for(probes: &mut KernelProbes, id: u64) -> ProcessCounters {
    probes
        .read_process_counters()
        .unwrap()
        .into_iter()
        .find_map(|(cgroup, c)| (cgroup == id).then_some(c))
        .unwrap_or_default()
}

#[test]
fn two_spinners_on_one_cpu_wait_milliseconds_for_it() {
    assert_root();
    let mut probes = load(Probe::RunqueueLatency);
    let mut cgroup = TestCgroup::new("nodemeter-test-runq");
    let id = cgroup.id();
    for _ in 0..2 {
        cgroup.spawn_sh("while :; do :; done", Some(0));
    }
    std::thread::sleep(Duration::from_secs(2));
    for child in &mut cgroup.children {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let h = histogram_for(&mut probes, id);
    let count = h.count();
    let at_least_1ms: u64 = h
        .buckets
        .iter()
        .enumerate()
        .filter(|(k, _)| *k > 0 && runq_bucket_upper_seconds(k - 1) >= 1e-3)
        .map(|(_, n)| *n)
        .sum();
    eprintln!(
        "cgroup {id}: {count} samples, {at_least_1ms} of at least 1 ms, sum {:.3} s, buckets {:?}",
        h.sum_ns as f64 / 1e9,
        h.buckets
    );
    // Each spinner waits while the other one runs out its slice (a few ms): in two seconds
    // there are hundreds of such waits, most of them ≥ 1 ms, and together they add up to
    // about the time each spinner was off the CPU (half of the two seconds each).
    assert!(count >= 50, "only {count} run-queue samples");
    assert!(
        at_least_1ms * 2 >= count,
        "{at_least_1ms} of {count} samples ≥ 1 ms"
    );
    let waited = h.sum_ns as f64 / 1e9;
    assert!((1.0..=4.5).contains(&waited), "waited {waited} s in total");
    assert_eq!(probes.map_overflows(), 0);
}

#[test]
fn a_loop_of_n_fork_exec_counts_exactly_n() {
    const N: u64 = 50;
    assert_root();
    let mut probes = load(Probe::ProcessEvents);
    let mut cgroup = TestCgroup::new("nodemeter-test-process");
    let id = cgroup.id();
    let script = format!("i=0; while [ $i -lt {N} ]; do /bin/true; i=$((i+1)); done");
    let status = cgroup.spawn_sh(&script, None).wait().unwrap();
    assert!(status.success());
    let c = process_counters_for(&mut probes, id);
    eprintln!("cgroup {id}: {c:?}");
    // The shell forks N children, each execs /bin/true and exits. The shell's own exec
    // happens after it joined the cgroup, and it exits there too: one more each. Its fork
    // was charged to this test's cgroup.
    assert_eq!(c.forks, N);
    assert_eq!(c.execs, N + 1);
    assert_eq!(c.exits, N + 1);
    assert_eq!(probes.map_overflows(), 0);
}

#[test]
fn threads_are_not_processes() {
    assert_root();
    let mut probes = load(Probe::ProcessEvents);
    let before = process_counters_for(&mut probes, own_cgroup_id());
    // Threads of this test process, in this test's cgroup: no fork, no exit.
    let handles: Vec<_> = (0..8).map(|_| std::thread::spawn(|| ())).collect();
    for h in handles {
        h.join().unwrap();
    }
    let after = process_counters_for(&mut probes, own_cgroup_id());
    // Other tests of this binary may fork in this cgroup meanwhile; they fork far fewer
    // than 8 processes in this window only by chance, so compare against the thread count.
    assert!(after.forks - before.forks < 8, "{before:?} -> {after:?}");
    assert!(after.exits - before.exits < 8, "{before:?} -> {after:?}");
}

/// The cgroup v2 id of this process (the `0::` line of /proc/self/cgroup).
fn own_cgroup_id() -> u64 {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let rel = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap()
        .trim_start_matches('/');
    cgroup_id(&cgroup2_root().join(rel)).unwrap()
}

/// This process's cgroup path in the v1 hierarchy of `controller`, from /proc/self/cgroup.
fn own_v1_dir(controller: &str) -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let rel = text.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
        controllers
            .split(',')
            .any(|c| c == controller)
            .then(|| path.trim_start_matches('/').to_owned())
    })?;
    let dir = Path::new("/sys/fs/cgroup").join(controller).join(rel);
    dir.is_dir().then_some(dir)
}

#[test]
fn a_process_over_its_memory_limit_is_an_oom_kill_of_its_own_container() {
    assert_root();
    let probes = load(Probe::OomKills);
    let mut cgroup = TestCgroup::new("nodemeter-test-oom");
    let id = cgroup.id();
    // The limit: a v1 memory cgroup below this test's own (this host's memory controller is
    // v1; on a pure v2 host the same limit is memory.max of the unified cgroup).
    let memory_dir = match own_v1_dir("memory") {
        Some(own) => {
            let dir = own.join(format!("nodemeter-test-oom-{}", std::process::id()));
            std::fs::create_dir(&dir).unwrap();
            std::fs::write(dir.join("memory.limit_in_bytes"), "64M").unwrap();
            Some(dir)
        }
        None => {
            std::fs::write(cgroup.dir.join("memory.max"), "64M").unwrap();
            None
        }
    };
    let join_memory = memory_dir
        .as_ref()
        .map(|d| format!("echo $$ > {}/cgroup.procs && ", d.display()))
        .unwrap_or_default();
    // The shell joins the memory cgroup, then becomes python, which writes 512 MiB.
    let script =
        format!("{join_memory}exec /usr/bin/python3 -c 'a = b\"x\" * (512 << 20); print(len(a))'");
    let status = cgroup.spawn_sh(&script, None).wait().unwrap();
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "not OOM-killed: {status}"
    );

    let kills: Vec<(u64, u64)> = probes.read_oom_kills().unwrap();
    eprintln!("cgroup {id}: oom kills {kills:?}");
    let mine = kills.iter().find_map(|(c, n)| (*c == id).then_some(*n));
    assert_eq!(mine, Some(1), "{kills:?}");
    assert_eq!(probes.map_overflows(), 0);
    drop(cgroup);
    if let Some(dir) = memory_dir {
        for _ in 0..50 {
            if std::fs::remove_dir(&dir).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
