//! The pipeline: every source's batches in, per-source and global transforms, every sink out.
//!
//! Channels are bounded end to end: a slow sink slows the pipeline, which slows sources,
//! instead of growing memory without limit. The pipeline ends when every source has dropped
//! its sender; dropping the sink senders then tells each sink to flush and finish.

use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::debug;

use crate::model::Batch;
use crate::telemetry;

/// What sources hold to hand batches to the pipeline.
pub type BatchSender = mpsc::Sender<Batch>;

/// What a sink task receives. Batches are shared: sinks never copy samples they only read.
pub type SinkReceiver = mpsc::Receiver<Arc<Batch>>;

pub struct Pipeline {
    input: mpsc::Receiver<Batch>,
    sinks: Vec<(String, mpsc::Sender<Arc<Batch>>)>,
    capacity: usize,
}

impl Pipeline {
    /// A pipeline whose channels hold `capacity` batches each, and the sender sources clone.
    pub fn new(capacity: usize) -> (Self, BatchSender) {
        let (tx, input) = mpsc::channel(capacity.max(1));
        (
            Self {
                input,
                sinks: Vec::new(),
                capacity: capacity.max(1),
            },
            tx,
        )
    }

    /// Connects a sink; the returned receiver yields every batch that passes the pipeline.
    pub fn add_sink(&mut self, name: &str) -> SinkReceiver {
        let (tx, rx) = mpsc::channel(self.capacity);
        self.sinks.push((name.to_string(), tx));
        rx
    }

    pub async fn run(mut self) {
        let registry = telemetry::registry();
        while let Some(batch) = self.input.recv().await {
            let source = batch.source.to_string();
            registry
                .counter(
                    "nodemeter_pipeline_batches_total",
                    "Batches that entered the pipeline, by source.",
                    &[("source", &source)],
                )
                .inc();
            registry
                .counter(
                    "nodemeter_pipeline_samples_total",
                    "Samples that entered the pipeline, by source.",
                    &[("source", &source)],
                )
                .add(batch.samples.len() as u64);
            let batch = Arc::new(batch);
            for (name, sink) in &self.sinks {
                if sink.send(Arc::clone(&batch)).await.is_err() {
                    debug!(sink = %name, "sink has stopped; batch not delivered to it");
                }
            }
        }
        debug!("all sources finished; closing sinks");
    }
}
