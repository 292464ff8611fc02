//! `cargo xtask ci`: every check CI runs, in order, each step named; the first failure stops
//! the run and is reported with its step.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};

use crate::workspace::Workspace;
use crate::{build_ebpf, cmd, toolchain};

/// Debian packages the integration tests run (receivers, targets, load generators).
const APT_PACKAGES: &[&str] = &[
    "prometheus",
    "victoria-metrics",
    "nginx-light",
    "prometheus-node-exporter",
    "linux-perf",
    "python3",
    "kubectl",
];

/// Process names (`/proc/PID/comm`, at most 15 bytes) of the daemons those packages may start
/// on install; the tests start their own instances, so any the install started are stopped.
const PACKAGE_DAEMONS: &[&str] = &["prometheus", "victoria-metric", "nginx", "prometheus-node"];

#[derive(Args)]
pub struct CiArgs {
    /// Skip a step (repeatable). Nothing is skipped unless named here.
    #[arg(long = "skip", value_enum)]
    skip: Vec<Step>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum, Debug)]
enum Step {
    /// Install missing apt packages the tests need.
    Apt,
    /// `rustup component add rust-src --toolchain nightly` when missing.
    RustSrc,
    /// Install the pinned bpf-linker when missing.
    BpfLinker,
    /// `cargo fmt --all --check`.
    Fmt,
    /// `cargo clippy --workspace --all-targets -- -D warnings`.
    Clippy,
    /// `cargo xtask build-ebpf --check`: the committed object matches its sources.
    EbpfCheck,
    /// `cargo build --workspace`.
    Build,
    /// `cargo test --workspace` (unit and integration tests).
    Test,
    /// `deploy/validate.sh`: render the kustomizations, validate them against the Kubernetes
    /// schemas offline.
    Deploy,
}

const ORDER: &[Step] = &[
    Step::Apt,
    Step::RustSrc,
    Step::BpfLinker,
    Step::Fmt,
    Step::Clippy,
    Step::EbpfCheck,
    Step::Build,
    Step::Test,
    Step::Deploy,
];

pub fn run(args: &CiArgs) -> anyhow::Result<()> {
    let ws = Workspace::locate()?;
    let skip: BTreeSet<Step> = args.skip.iter().copied().collect();
    let started = Instant::now();
    for &step in ORDER {
        let name = step_name(step);
        if skip.contains(&step) {
            println!("==> ci step {name}: SKIPPED (--skip {name})");
            continue;
        }
        println!("==> ci step {name}");
        let step_started = Instant::now();
        run_step(step, &ws).with_context(|| format!("ci step `{name}` failed"))?;
        println!(
            "==> ci step {name}: ok ({:.1} s)",
            step_started.elapsed().as_secs_f64()
        );
    }
    println!(
        "==> ci: all steps passed in {:.1} s{}",
        started.elapsed().as_secs_f64(),
        if skip.is_empty() {
            String::new()
        } else {
            format!(" (skipped: {skip:?})")
        }
    );
    Ok(())
}

fn step_name(step: Step) -> String {
    step.to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_else(|| format!("{step:?}"))
}

fn run_step(step: Step, ws: &Workspace) -> anyhow::Result<()> {
    match step {
        Step::Apt => install_apt_packages(),
        Step::RustSrc => toolchain::ensure_rust_src(),
        Step::BpfLinker => toolchain::ensure_bpf_linker(ws, &toolchain::Nightly::probe()?),
        Step::Fmt => cmd::run(cmd::cargo(ws).args(["fmt", "--all", "--check"])),
        Step::Clippy => cmd::run(cmd::cargo(ws).args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])),
        Step::EbpfCheck => build_ebpf::run(true),
        Step::Build => cmd::run(cmd::cargo(ws).args(["build", "--workspace"])),
        Step::Test => cmd::run(cmd::cargo(ws).args(["test", "--workspace"])),
        Step::Deploy => cmd::run(Command::new("bash").arg(ws.root.join("deploy/validate.sh"))),
    }
}

fn install_apt_packages() -> anyhow::Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|p| !dpkg_installed(p))
        .collect();
    if missing.is_empty() {
        println!("xtask: apt packages present: {}", APT_PACKAGES.join(" "));
        return Ok(());
    }
    if !cmd::is_root()? {
        bail!(
            "apt packages missing ({}) and not root: install them, or pass --skip apt",
            missing.join(" ")
        );
    }
    println!("xtask: installing apt packages: {}", missing.join(" "));
    let before = daemon_pids()?;
    cmd::run(
        Command::new("apt-get")
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    cmd::run(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    for (pid, name) in daemon_pids()? {
        if before.iter().any(|(p, _)| *p == pid) {
            continue;
        }
        println!("xtask: stopping {name} (pid {pid}), started by the package install");
        cmd::run(Command::new("kill").arg("-TERM").arg(pid.to_string()))?;
    }
    Ok(())
}

fn dpkg_installed(package: &str) -> bool {
    cmd::output(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]))
        .is_some_and(|s| s.trim() == "install ok installed")
}

/// PIDs of running processes whose name is one of [`PACKAGE_DAEMONS`].
fn daemon_pids() -> anyhow::Result<Vec<(u32, String)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").context("listing /proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        // Processes exit while we look: a missing comm is not an error.
        let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) else {
            continue;
        };
        let comm = comm.trim();
        if PACKAGE_DAEMONS.contains(&comm) {
            found.push((pid, comm.to_owned()));
        }
    }
    Ok(found)
}
