//! Per-event cost of the kernel programs, from the kernel's own BPF run-time stats, under a
//! context-switch-heavy load: `perf bench sched pipe` (linux-perf).
//!
//! ```sh
//! sudo cargo run -p nodemeter-tests --release --example ebpf_overhead -- [LOOPS]
//! ```
//!
//! The figure includes what the stats themselves cost (two clock reads per run): an empty
//! program measures about 55 ns that way on a loaded 2-vCPU VM.
#![allow(
    clippy::print_stdout,
    reason = "a measuring tool that reports on stdout"
)]

use std::process::Command;

use anyhow::{Context as _, bail};
use nodemeter::sources::ebpf::{KernelProbes, ProbeSelection};

fn main() -> anyhow::Result<()> {
    let loops = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "500000".to_owned());
    let probes = KernelProbes::load(&ProbeSelection::all())?;
    for s in probes.statuses() {
        println!(
            "probe {}: attached={} {}",
            s.name,
            s.attached,
            s.reason.as_deref().unwrap_or("")
        );
    }
    let before = probes.program_stats();
    let status = Command::new("perf")
        .args(["bench", "sched", "pipe", "-l", &loops])
        .status()
        .context("running `perf bench sched pipe` (Debian package linux-perf)")?;
    if !status.success() {
        bail!("perf bench failed: {status}");
    }
    for after in probes.program_stats() {
        let Some(b) = before.iter().find(|b| b.name == after.name) else {
            continue;
        };
        let runs = after.run_count - b.run_count;
        let ns = after.run_time_ns - b.run_time_ns;
        #[allow(clippy::cast_precision_loss, reason = "a ratio for display")]
        let per_event = ns as f64 / runs.max(1) as f64;
        println!(
            "{}: {runs} runs, {ns} ns, {per_event:.1} ns/run",
            after.name
        );
    }
    println!("map overflows: {}", probes.map_overflows());
    Ok(())
}
