//! Kubernetes discovery: PodMonitor/ServiceMonitor → node-local scrape groups with
//! prometheus-operator's labels and rules, and pod metadata for container metrics.

pub mod config;
pub mod crd;
pub mod meta;
pub mod pod_metadata;
pub mod rules;
pub mod selector;
pub mod targets;
pub mod validation;
pub mod watch;

pub use config::KubernetesConfig;
pub use crd::{PodMonitor, ServiceMonitor};
pub use pod_metadata::PodMetadata;
pub use targets::{ClusterState, Discovered, Environment, ScrapeGroup, discover};
pub use watch::{AgentPlacement, DiscoveryError, KubernetesDiscovery};
