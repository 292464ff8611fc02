//! nodemeter: a node agent for Kubernetes.
//!
//! Data flows through a pipeline: sources (cgroup, ebpf, scrape) produce [`model::Batch`]es,
//! the [`pipeline`] relabels them and fans them out to sinks (remote write, local exposition).

pub mod config;
pub mod diag;
pub mod discovery;
pub mod exposition;
pub mod file_cache;
pub mod identity;
pub mod model;
pub mod pipeline;
pub mod relabel;
pub mod sinks;
pub mod sources;
pub mod telemetry;
pub mod tls;
pub mod topology;
