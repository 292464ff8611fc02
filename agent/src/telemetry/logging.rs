use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LoggingConfig};

/// Installs the global tracing subscriber. `NODEMETER_LOG` overrides the configured filter.
/// Logs go to stderr so stdout stays free for command output.
pub fn init_logging(cfg: &LoggingConfig) -> anyhow::Result<()> {
    let filter = match std::env::var("NODEMETER_LOG") {
        Ok(s) if !s.is_empty() => {
            EnvFilter::try_new(&s).map_err(|e| anyhow::anyhow!("NODEMETER_LOG={s:?}: {e}"))?
        }
        _ => EnvFilter::try_new(&cfg.level)
            .map_err(|e| anyhow::anyhow!("logging.level={:?}: {e}", cfg.level))?,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let result = match cfg.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // A second initialisation (tests running several agents in one process) keeps the first.
    let _ = result;
    Ok(())
}
