//! The `nodemeter` command.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use nodemeter::config::{Config, DEFAULT_CONFIG_YAML};
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

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a config file; prints the first problem as file:line:column: key: message.
    Check { file: PathBuf },
    /// Print the embedded default config (every key, its default and what it does).
    Default,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            config,
            listen,
            data_dir,
        } => run(config, listen, data_dir),
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

fn run(
    config_path: Option<PathBuf>,
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
) -> ExitCode {
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
    if let Some(l) = listen {
        config.server.listen = l;
    }
    if let Some(d) = data_dir {
        config.remote_write_wal.dir = d;
    }
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
