//! `cargo xtask bench-peers`: the release agent beside vmagent and Prometheus's agent mode in
//! the shared scrape -> relabel -> remote-write harness (its `ours` hook), so the figures in
//! BENCHMARKS.md come from one command.
//!
//! The harness hands every peer the same plain Prometheus config. nodemeter reads it as is, but
//! a Prometheus config leaves nodemeter's cgroup and eBPF sources on (what a node wants); for
//! a like-for-like run they are turned off with `--disable-source`, so the agent scrapes,
//! relabels and remote-writes exactly what the peers do.
//!
//! Remote write 2.0: the harness's receiver (VictoriaMetrics 1.79) only speaks 1.0. With
//! `--rw2` the agent sends 2.0 to `nodemeter-rw2-relay` (tests crate), which answers like a 2.0
//! receiver and forwards each request to the harness's receiver as 1.0, so the receiver-side
//! checks still hold while the agent's own byte counter measures the 2.0 wire.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::cmd;
use crate::workspace::Workspace;

/// The agent's counter of compressed remote-write payload bytes.
const BYTES_METRIC: &str = "nodemeter_remote_storage_bytes_total";
/// The harness's defaults for its receiver and peer ports (overridable there by environment).
const DEFAULT_VM_PORT: &str = "18428";
const DEFAULT_PEER_PORT: &str = "18430";
/// Where the 2.0 relay listens unless `RW2_RELAY_PORT` says otherwise.
const DEFAULT_RELAY_PORT: &str = "18429";

#[derive(clap::Args)]
pub struct BenchPeersArgs {
    /// Directory of the shared bench harness (holds compare.sh and run_peer.sh).
    #[arg(long)]
    harness: PathBuf,
    /// Send remote write 2.0 (through the relay; see the module doc).
    #[arg(long)]
    rw2: bool,
    /// Peers to run, alternating (harness names: vmagent, prom-agent, ours).
    #[arg(long, default_value = "vmagent ours")]
    peers: String,
    /// Runs per peer (the harness's REPS).
    #[arg(long, default_value_t = 3)]
    reps: u32,
    /// Measured window per run in seconds (the harness's DURATION).
    #[arg(long, default_value_t = 60)]
    duration: u32,
}

pub fn run(args: &BenchPeersArgs) -> anyhow::Result<()> {
    let harness = args
        .harness
        .canonicalize()
        .with_context(|| format!("harness directory {}", args.harness.display()))?;
    let compare = harness.join("compare.sh");
    if !compare.is_file() {
        bail!("{} has no compare.sh", harness.display());
    }
    let ws = Workspace::locate()?;
    cmd::run(cmd::cargo(&ws).args([
        "build",
        "--release",
        "-p",
        "nodemeter",
        "--bin",
        "nodemeter",
    ]))?;
    if args.rw2 {
        // A debug build: the relay stands in for the receiver, whose speed is not measured,
        // and it spares a release build of the test crate's dependencies.
        cmd::run(cmd::cargo(&ws).args([
            "build",
            "-p",
            "nodemeter-tests",
            "--bin",
            "nodemeter-rw2-relay",
        ]))?;
    }
    let release = ws.target_dir.join("release");
    let agent = release.join("nodemeter");
    let version = agent_version(&ws, &agent, args.rw2);

    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    let vm_port = env("VM_PORT", DEFAULT_VM_PORT);
    let peer_port = env("PEER_PORT", DEFAULT_PEER_PORT);
    let relay_port = env("RW2_RELAY_PORT", DEFAULT_RELAY_PORT);

    let scratch = ScratchDir::new()?;
    let base = "--listen \"$AGENT_LISTEN\" --data-dir \"$AGENT_WORKDIR\" --disable-source cgroup --disable-source ebpf";
    let (agent_cmd, _relay) = if args.rw2 {
        // The wrapper points the config's remote-write URL at the relay, then becomes the agent
        // (exec), so the harness measures the agent process alone.
        let wrapper = scratch.0.join("nodemeter-rw2.sh");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nset -e\nsed 's#127.0.0.1:{vm_port}/#127.0.0.1:{relay_port}/#' \"$1\" >\"$AGENT_WORKDIR/config.yml\"\nexec '{}' run --config \"$AGENT_WORKDIR/config.yml\" {base} --remote-write-message v2\n",
                agent.display()
            ),
        )
        .context("writing the rw2 wrapper")?;
        make_executable(&wrapper)?;
        let relay = Relay::start(
            &ws.target_dir.join("debug").join("nodemeter-rw2-relay"),
            &relay_port,
            &format!("http://127.0.0.1:{vm_port}/api/v1/write"),
            &scratch.0,
        )?;
        (format!("'{}' {{config}}", wrapper.display()), Some(relay))
    } else {
        (
            format!("'{}' run --config {{config}} {base}", agent.display()),
            None,
        )
    };

    let mut c = Command::new("bash");
    c.arg(&compare)
        .current_dir(&harness)
        .env("PEERS", &args.peers)
        .env("REPS", args.reps.to_string())
        .env("DURATION", args.duration.to_string())
        .env("AGENT_CMD", &agent_cmd)
        .env(
            "AGENT_METRICS_URL",
            format!("http://127.0.0.1:{peer_port}/metrics"),
        )
        .env("AGENT_BYTES_METRIC", BYTES_METRIC)
        .env("AGENT_VERSION", &version);
    cmd::clean_env(&mut c);
    cmd::run(&mut c)
}

/// `nodemeter 0.1.0 (commit abc1234[, dirty]), RW 1.0|2.0` for the report's version column.
fn agent_version(ws: &Workspace, agent: &Path, rw2: bool) -> String {
    let version = cmd::output(Command::new(agent).arg("--version"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "nodemeter".into());
    let commit = cmd::output(
        Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .current_dir(&ws.root),
    )
    .map(|s| s.trim().to_string())
    .unwrap_or_else(|| "?".into());
    let dirty = cmd::output(
        Command::new("git")
            .args(["status", "--porcelain", "--untracked-files=no"])
            .current_dir(&ws.root),
    )
    .is_some_and(|s| !s.trim().is_empty());
    format!(
        "{version} (commit {commit}{}), RW {}",
        if dirty { ", dirty" } else { "" },
        if rw2 { "2.0" } else { "1.0" }
    )
}

fn make_executable(p: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod {}", p.display()))
}

/// A temporary directory removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> anyhow::Result<Self> {
        let p = std::env::temp_dir().join(format!("nodemeter-bench-peers.{}", std::process::id()));
        std::fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
        Ok(Self(p))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The relay process, killed (by its own PID) on drop.
struct Relay(Child);

impl Relay {
    fn start(bin: &Path, port: &str, forward: &str, logs: &Path) -> anyhow::Result<Self> {
        let log = std::fs::File::create(logs.join("relay.log")).context("relay log")?;
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(bin)
            .args(["--listen", &listen, "--forward", forward])
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("relay log")?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let relay = Self(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&listen).is_err() {
            if Instant::now() > deadline {
                bail!("the rw2 relay is not listening on {listen}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        println!("xtask: rw2 relay on {listen} -> {forward}");
        Ok(relay)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
