//! The `nodemeter-testload` helper: small, predictable workloads for the tests to measure.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// Path of the workload binary; cargo builds it beside the integration tests of this crate.
pub fn binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test> -> target/<profile>/nodemeter-testload
    exe.parent()
        .and_then(std::path::Path::parent)
        .map(|d| d.join("nodemeter-testload"))
        .expect("target dir layout")
}

/// A running workload that reports `done` on stdout when its work is over, then blocks reading
/// stdin until [`Workload::finish`].
pub struct Workload {
    pub child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Workload {
    /// A command for the workload binary with `args`, piped for [`Workload::attach`].
    pub fn command(args: &[&str]) -> Command {
        let mut c = Command::new(binary());
        c.args(args).stdin(Stdio::piped()).stdout(Stdio::piped());
        c
    }

    pub fn attach(mut child: Child) -> Self {
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        Self {
            child,
            stdin,
            stdout,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Blocks until the workload prints `done`.
    pub fn wait_done(&mut self) {
        let mut line = String::new();
        while self.stdout.read_line(&mut line).unwrap_or(0) > 0 {
            if line.trim() == "done" {
                return;
            }
            line.clear();
        }
        panic!("workload exited before reporting done");
    }

    /// Voluntary and involuntary context switches so far, from /proc/PID/status.
    pub fn context_switches(&self) -> (u64, u64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let get = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        (
            get("voluntary_ctxt_switches:"),
            get("nonvoluntary_ctxt_switches:"),
        )
    }

    /// User + system CPU seconds of the process so far, from /proc/PID/stat (10 ms ticks).
    pub fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<f64> = rest
            .split_whitespace()
            .map(|v| v.parse().unwrap_or(0.0))
            .collect();
        (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
    }

    /// Lets the workload exit and reaps it.
    pub fn finish(mut self) {
        if let Some(mut s) = self.stdin.take() {
            let _ = s.write_all(b"\n");
        }
        let _ = self.child.wait();
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
