//! The `nodemeter` command.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use nodemeter::config::{Config, DEFAULT_CONFIG_YAML};
use nodemeter::sinks::remote_write::ProtobufMessage;
use nodemeter::telemetry;
use nodemeter::topology::{self, Agent};

#[derive(Parser)]
#[command(
    name = "nodemeter",
    version,
    about = "Node agent for Kubernetes: container metrics from cgroups and eBPF, node-local scraping, remote write"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent (the embedded default config unless --config is given).
    Run {
        /// YAML config file (Prometheus-compatible `global`, plus nodemeter's own sections).
        #[arg(long, short = 'c', env = "NODEMETER_CONFIG")]
        config: Option<PathBuf>,
        /// Override `server.listen`.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Override `remote_write_wal.dir` (where the remote-write WAL lives).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Turn a local source off for this run whatever the config says (repeatable). A
        /// Prometheus config file leaves cgroup and eBPF metrics on, as on a node; this runs it
        /// scrape-only, e.g. beside other agents in a benchmark.
        #[arg(long = "disable-source", value_enum, value_name = "SOURCE")]
        disable_sources: Vec<LocalSource>,
        /// Override `protobuf_message` of every `remote_write` endpoint, e.g. to try remote
        /// write 2.0 with a Prometheus config unchanged.
        #[arg(long, value_enum, value_name = "MESSAGE")]
        remote_write_message: Option<RemoteWriteMessage>,
    },
    /// Work with config files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Try relabel rules: reads JSON lines `{"rules": [...], "labels": {...}}` on stdin (rules
    /// with Prometheus keys) and prints one line each: `{"labels": {...}}`, `{"dropped": true}`
    /// or `{"error": "..."}`.
    Relabel,
    /// Check whether this node supports everything: kernel, BTF, cgroup mode, capabilities,
    /// tracefs, bpffs, and for every kernel probe whether it loads and attaches (and why not).
    /// Exit code 0 only when the node is fully supported, 1 otherwise.
    Check,
}

/// Sources of the node's own metrics, which a config file enables by default.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LocalSource {
    /// Container metrics from cgroupfs and /proc (`cgroup.enabled`).
    Cgroup,
    /// Kernel probes (`ebpf.enabled`).
    Ebpf,
}

/// `protobuf_message` values, by their Prometheus names.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RemoteWriteMessage {
    /// Remote write 1.0.
    #[value(name = "prometheus.WriteRequest", alias = "v1")]
    V1,
    /// Remote write 2.0.
    #[value(name = "io.prometheus.write.v2.Request", alias = "v2")]
    V2,
}

impl From<RemoteWriteMessage> for ProtobufMessage {
    fn from(m: RemoteWriteMessage) -> Self {
        match m {
            RemoteWriteMessage::V1 => ProtobufMessage::V1,
            RemoteWriteMessage::V2 => ProtobufMessage::V2,
        }
    }
}

/// What `nodemeter run` flags change in the loaded config.
struct RunOverrides {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    disable_sources: Vec<LocalSource>,
    remote_write_message: Option<RemoteWriteMessage>,
}

impl RunOverrides {
    fn apply(self, config: &mut Config) {
        if let Some(l) = self.listen {
            config.server.listen = l;
        }
        if let Some(d) = self.data_dir {
            config.remote_write_wal.dir = d;
        }
        for s in self.disable_sources {
            match s {
                LocalSource::Cgroup => config.cgroup.enabled = false,
                LocalSource::Ebpf => config.ebpf.enabled = false,
            }
        }
        if let Some(m) = self.remote_write_message {
            for e in &mut config.remote_write {
                e.protobuf_message = m.into();
            }
        }
    }
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a config file; prints the first problem as file:line:column: key: message.
    Check { file: PathBuf },
    /// Print the embedded default config (every key, its default and what it does).
    Default,
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            config,
            listen,
            data_dir,
            disable_sources,
            remote_write_message,
        } => run(
            config,
            RunOverrides {
                listen,
                data_dir,
                disable_sources,
                remote_write_message,
            },
        ),
        Command::Config(ConfigCommand::Check { file }) => match Config::load(&file) {
            Ok(_) => {
                eprintln!("{}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Command::Relabel => {
            match nodemeter::diag::relabel::run(std::io::stdin().lock(), std::io::stdout().lock()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("nodemeter relabel: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Check => {
            let report = nodemeter::diag::check::run();
            let written = report.write_to(&mut std::io::stdout().lock());
            if written.is_ok() && report.fully_supported() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Config(ConfigCommand::Default) => {
            use std::io::Write as _;
            match std::io::stdout().write_all(DEFAULT_CONFIG_YAML.as_bytes()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::FAILURE,
            }
        }
    }
}

/// glibc gives every thread that allocates its own arena, and each arena keeps what was freed
/// in it: with tokio's workers and blocking threads that multiplied the agent's resident
/// memory. Two arenas are plenty for a process that runs on two worker threads.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable; called first thing, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn run(config_path: Option<PathBuf>, overrides: RunOverrides) -> ExitCode {
    nodemeter::sources::cgroup::raise_open_files_limit();
    let config = match &config_path {
        Some(p) => Config::load(p),
        None => Config::embedded_default(),
    };
    let mut config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("nodemeter: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    overrides.apply(&mut config);
    if let Err(e) = telemetry::init_logging(&config.logging) {
        eprintln!("nodemeter: {e:#}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("nodemeter")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nodemeter: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let agent = match Agent::start(config).await {
            Ok(a) => a,
            Err(e) => {
                tracing::error!("cannot start: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        if let Err(e) = topology::cancel_on_signals(agent.shutdown_token()) {
            tracing::error!("{e:#}");
            return ExitCode::FAILURE;
        }
        agent.wait().await;
        ExitCode::SUCCESS
    })
}
