//! The agent's own observability: logs (tracing), self-metrics under `nodemeter_`, readiness.

mod logging;
mod process;
mod readiness;
mod registry;

pub use logging::init_logging;
pub use readiness::Readiness;
pub use registry::{Counter, Gauge, Registry, registry};

/// Milliseconds since the Unix epoch, the timestamp unit of every sample.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
