//! Per-event cost of the kernel programs, from the kernel's own BPF run-time stats, and the
//! slowdown they cause, under a context-switch-heavy load: `perf bench sched pipe`
//! (linux-perf).
//!
//! ```sh
//! sudo cargo run -p nodemeter-tests --example ebpf_overhead -- [LOOPS] [ROUNDS]
//! ```
//!
//! 1. ns per run of each program: ROUNDS runs of `perf bench sched pipe -l LOOPS` with every
//!    probe attached; per program the median over rounds of (run time / run count) for that
//!    round.
//! 2. slowdown: ROUNDS pairs of runs, probes off and on, in alternating order (so drift of
//!    the machine's load hits both sides); medians of `usecs/op`, and their ratio.
//!
//! The ns figure includes what the stats themselves cost (two clock reads per run) and the
//! cache misses of a busy machine: a program that returns at once measured about 55 ns on a
//! loaded 2-vCPU VM, and 62 ns at load average 15 (same VM, shared with other builds).
#![allow(
    clippy::print_stdout,
    reason = "a measuring tool that reports on stdout"
)]

use std::collections::BTreeMap;
use std::process::Command;

use anyhow::{Context as _, bail};
use nodemeter::sources::ebpf::{KernelProbes, ProbeSelection};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let loops = args.next().unwrap_or_else(|| "200000".to_owned());
    let rounds: usize = args
        .next()
        .map(|r| r.parse())
        .transpose()
        .context("ROUNDS must be a number")?
        .unwrap_or(7);

    let probes = KernelProbes::load(&ProbeSelection::all())?;
    for s in probes.statuses() {
        println!(
            "probe {}: attached={} {}",
            s.name,
            s.attached,
            s.reason.as_deref().unwrap_or("")
        );
    }
    let mut per_program: BTreeMap<(&str, &str), Vec<f64>> = BTreeMap::new();
    let mut runs_per_round: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for _ in 0..rounds {
        let before = probes.program_stats();
        perf_bench(&loops)?;
        for after in probes.program_stats() {
            let Some(b) = before
                .iter()
                .find(|b| b.name == after.name && b.program == after.program)
            else {
                continue;
            };
            let runs = after.run_count - b.run_count;
            let ns = after.run_time_ns - b.run_time_ns;
            if runs == 0 {
                continue;
            }
            #[allow(clippy::cast_precision_loss, reason = "a ratio for display")]
            per_program
                .entry((after.name, after.program))
                .or_default()
                .push(ns as f64 / runs as f64);
            runs_per_round.insert((after.name, after.program), runs);
        }
    }
    for ((probe, program), mut samples) in per_program {
        println!(
            "{probe}/{program}: median {:.1} ns/run over {rounds} rounds (~{} runs a round)",
            median(&mut samples),
            runs_per_round.get(&(probe, program)).copied().unwrap_or(0)
        );
    }
    println!("map overflows: {}", probes.map_overflows());
    drop(probes);

    let mut off = Vec::with_capacity(rounds);
    let mut on = Vec::with_capacity(rounds);
    for round in 0..rounds {
        for probes_on in if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        } {
            let loaded = if probes_on {
                Some(KernelProbes::load(&ProbeSelection::all())?)
            } else {
                None
            };
            let usecs = perf_bench(&loops)?;
            drop(loaded);
            if probes_on { &mut on } else { &mut off }.push(usecs);
        }
    }
    let (off, on) = (median(&mut off), median(&mut on));
    println!(
        "perf bench sched pipe: median {off:.3} usecs/op probes off, {on:.3} probes on: {:+.2} %",
        (on / off - 1.0) * 100.0
    );
    Ok(())
}

/// Runs the benchmark and returns its `usecs/op`.
fn perf_bench(loops: &str) -> anyhow::Result<f64> {
    let output = Command::new("perf")
        .args(["bench", "sched", "pipe", "-l", loops])
        .output()
        .context("running `perf bench sched pipe` (Debian package linux-perf)")?;
    if !output.status.success() {
        bail!("perf bench failed: {}", output.status);
    }
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|l| l.trim().strip_suffix("usecs/op")?.trim().parse().ok())
        .with_context(|| format!("no usecs/op in perf's output: {text}"))
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN)
}
