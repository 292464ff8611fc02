//! Sources produce [`Batch`](crate::model::Batch)es and hand them to the pipeline; a source
//! never knows where its samples go.

pub mod cgroup;
pub mod ebpf;
pub mod scrape;

use tokio_util::sync::CancellationToken;

use crate::pipeline::BatchSender;
use crate::telemetry::Readiness;

/// What every source task gets from the topology.
#[derive(Clone)]
pub struct SourceContext {
    /// Where batches go.
    pub out: BatchSender,
    /// Cancelled on SIGTERM/SIGINT: finish the cycle under way, emit nothing more, return.
    pub shutdown: CancellationToken,
    /// Mark the source ready after its first complete cycle.
    pub readiness: Readiness,
}
