//! The sched_switch probe counts a cgroup's context switches the way the kernel counts them in
//! /proc/PID/status (`voluntary_ctxt_switches`, `nonvoluntary_ctxt_switches`), and a probe that
//! cannot attach is reported without failing the load.
//!
//! Needs root (loads eBPF, creates a cgroup under the cgroup2 mount).
#![allow(clippy::unwrap_used, reason = "tests")]

use std::ffi::CString;
use std::io::{BufRead as _, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nodemeter::sources::ebpf::{KernelProbes, Probe, ProbeSelection, SchedCounters, cgroup_id};

/// Switches the child makes between fork and joining the test cgroup (the write to
/// `cgroup.procs` itself may sleep on the cgroup lock) are in /proc's counts but were charged to
/// the parent's cgroup. This bounds them; the probe must never count more than the kernel.
const PRE_JOIN_TOLERANCE: u64 = 2;

/// The cgroup2 mount of this (hybrid) host; on a pure v2 host it is /sys/fs/cgroup.
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
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test loads eBPF programs and creates cgroups: run it as root"
    );
}

/// A cgroup created for the test and a child process inside it; removed on drop, also when an
/// assertion fails.
struct CgroupChild {
    dir: PathBuf,
    child: Option<Child>,
}

impl CgroupChild {
    fn spawn(name: &str) -> Self {
        let dir = cgroup2_root().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let procs = CString::new(
            dir.join("cgroup.procs")
                .into_os_string()
                .into_encoded_bytes(),
        )
        .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_ctxsw_workload"));
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // SAFETY: between fork and exec only async-signal-safe calls (open, write, close) on
        // memory prepared before the fork.
        unsafe {
            command.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // "0" moves the writing process itself.
                let written = libc::write(fd, b"0".as_ptr().cast(), 1);
                let err = std::io::Error::last_os_error();
                libc::close(fd);
                if written != 1 {
                    return Err(err);
                }
                Ok(())
            });
        }
        let child = command.spawn().unwrap();
        Self {
            dir,
            child: Some(child),
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Waits for the `blocked` line: the workload is done and now sleeps on stdin.
    fn wait_until_blocked(&mut self) {
        let stdout = self.child.as_mut().unwrap().stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        assert!(
            line.starts_with("blocked"),
            "unexpected workload output {line:?}"
        );
        // The line is written just before the read(2) that blocks; wait for the task to be
        // asleep so its counters stop moving.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let status = read_status(self.pid());
            if status.state.starts_with('S') {
                return;
            }
            assert!(Instant::now() < deadline, "workload never blocked on stdin");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn finish(&mut self) {
        if let Some(mut child) = self.child.take() {
            drop(child.stdin.take());
            let status = child.wait().unwrap();
            assert!(status.success(), "workload exited with {status}");
        }
    }
}

impl Drop for CgroupChild {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The cgroup is removable once its last task is reaped; that can lag a moment.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("warning: could not remove {}", self.dir.display());
    }
}

struct ProcStatus {
    state: String,
    voluntary: u64,
    involuntary: u64,
}

fn read_status(pid: u32) -> ProcStatus {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    ProcStatus {
        state: field("State:"),
        voluntary: field("voluntary_ctxt_switches:").parse().unwrap(),
        involuntary: field("nonvoluntary_ctxt_switches:").parse().unwrap(),
    }
}

fn counters_for(probes: &mut KernelProbes, id: u64) -> SchedCounters {
    probes
        .read_sched_counters()
        .unwrap()
        .into_iter()
        .find_map(|(cgroup, c)| (cgroup == id).then_some(c))
        .unwrap_or_default()
}

#[test]
fn sched_switch_counts_match_proc_status_per_cgroup() {
    assert_root();
    let mut probes = KernelProbes::load(&ProbeSelection::all()).unwrap();
    let status = probes
        .statuses()
        .iter()
        .find(|s| s.name == "sched_switch")
        .unwrap();
    assert!(
        status.attached,
        "sched_switch not attached: {:?}",
        status.reason
    );

    let mut workload = CgroupChild::spawn("nodemeter-test-sched-switch");
    let id = cgroup_id(&workload.dir).unwrap();
    workload.wait_until_blocked();

    let kernel = read_status(workload.pid());
    let probe = counters_for(&mut probes, id);
    eprintln!(
        "cgroup {id}: /proc voluntary={} involuntary={}; probe voluntary={} involuntary={}",
        kernel.voluntary, kernel.involuntary, probe.voluntary, probe.involuntary
    );
    // The workload sleeps hundreds of times; a probe that counted nothing or only one kind
    // would not pass the tolerance below.
    assert!(
        kernel.voluntary >= 100,
        "workload slept only {} times",
        kernel.voluntary
    );
    for (kind, kernel_n, probe_n) in [
        ("voluntary", kernel.voluntary, probe.voluntary),
        ("involuntary", kernel.involuntary, probe.involuntary),
    ] {
        assert!(
            probe_n <= kernel_n && kernel_n - probe_n <= PRE_JOIN_TOLERANCE,
            "{kind}: probe counted {probe_n}, /proc/PID/status says {kernel_n} \
             (allowed: up to {PRE_JOIN_TOLERANCE} fewer, never more)"
        );
    }
    assert_eq!(probes.map_overflows(), 0);

    let stats = probes.program_stats();
    let sched = stats.iter().find(|s| s.name == "sched_switch").unwrap();
    assert!(sched.run_count > 0 && sched.run_time_ns > 0, "{sched:?}");

    workload.finish();
    // Stale-entry policy: once the cgroup is gone the agent forgets its id.
    drop(workload);
    assert_eq!(probes.forget_cgroups(&[id, u64::MAX]).unwrap(), 1);
    assert!(
        !probes
            .read_sched_counters()
            .unwrap()
            .iter()
            .any(|(cgroup, _)| *cgroup == id)
    );
}

#[test]
fn full_map_is_counted_as_overflow() {
    assert_root();
    // One entry: whichever cgroup switches first takes it (on a busy host, within
    // microseconds); the test cgroup, new, cannot get in.
    let mut probes = KernelProbes::load(&ProbeSelection::all().with_cgroup_capacity(1)).unwrap();
    let mut workload = CgroupChild::spawn("nodemeter-test-sched-overflow");
    let id = cgroup_id(&workload.dir).unwrap();
    workload.wait_until_blocked();
    let tracked = probes.read_sched_counters().unwrap();
    assert!(tracked.len() <= 1, "{tracked:?}");
    assert!(!tracked.iter().any(|(cgroup, _)| *cgroup == id));
    // The workload alone switched out (slept) 300 times without an entry.
    assert!(probes.map_overflows() >= 300, "{}", probes.map_overflows());
    workload.finish();
}

#[test]
fn probe_failure_is_reported_and_load_succeeds() {
    assert_root();
    let probes =
        KernelProbes::load(&ProbeSelection::all().force_failure(Probe::SchedSwitch)).unwrap();
    let status = probes
        .statuses()
        .iter()
        .find(|s| s.name == "sched_switch")
        .unwrap();
    assert!(!status.attached);
    let reason = status.reason.as_deref().unwrap();
    assert!(reason.contains("nodemeter_forced_failure"), "{reason}");
    assert!(probes.program_stats().is_empty());
}

#[test]
fn disabled_probe_is_reported_as_disabled() {
    assert_root();
    let probes = KernelProbes::load(&ProbeSelection::default()).unwrap();
    assert_eq!(probes.statuses().len(), Probe::ALL.len());
    for s in probes.statuses() {
        assert!(!s.attached);
        assert_eq!(s.reason.as_deref(), Some("disabled in config"));
    }
}
