//! Developer and CI tasks: `cargo xtask build-ebpf [--check]`, `cargo xtask run [-- ARGS]`,
//! `cargo xtask ci`, `cargo xtask bench-peers --harness DIR [--rw2]`.
//!
//! This is a terminal tool: it reports progress on stdout.
#![allow(clippy::print_stdout, reason = "xtask is a CLI that reports progress")]

mod bench_peers;
mod build_ebpf;
mod ci;
mod cmd;
mod toolchain;
mod workspace;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "nodemeter developer and CI tasks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the eBPF object with nightly + bpf-linker and copy it to its committed location
    /// (installing rust-src and bpf-linker first when missing).
    BuildEbpf {
        /// Rebuild and fail when the committed object differs, instead of replacing it.
        #[arg(long)]
        check: bool,
    },
    /// Build the eBPF object and the agent (release), then run `nodemeter run ARGS` as root.
    Run {
        /// Arguments passed to `nodemeter run`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Everything CI checks, in order; stops at the first failing step.
    Ci(ci::CiArgs),
    /// Build the release agent and run it beside vmagent (and Prometheus's agent mode) in the
    /// shared bench harness; prints the harness's table of medians.
    BenchPeers(bench_peers::BenchPeersArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::BuildEbpf { check } => build_ebpf::run(check),
        Command::Run { args } => run_agent(&args),
        Command::Ci(args) => ci::run(&args),
        Command::BenchPeers(args) => bench_peers::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_agent(args: &[String]) -> anyhow::Result<()> {
    build_ebpf::run(false)?;
    let ws = workspace::Workspace::locate()?;
    cmd::run(
        cmd::cargo(&ws)
            .args(["build", "--release", "-p", "nodemeter"])
            .current_dir(&ws.root),
    )?;
    let agent = ws.target_dir.join("release").join("nodemeter");
    let mut command = if cmd::is_root()? {
        std::process::Command::new(&agent)
    } else {
        println!("xtask: not root, running through sudo -E");
        let mut c = std::process::Command::new("sudo");
        c.arg("-E").arg(&agent);
        c
    };
    command.arg("run").args(args);
    cmd::run(&mut command)
}
