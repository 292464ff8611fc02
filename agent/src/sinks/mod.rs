//! Sinks consume the pipeline's batches: the local exposition (`/metrics`) and remote write.

pub mod exposition;
pub mod remote_write;
