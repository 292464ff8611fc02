//! Kubernetes discovery: PodMonitor/ServiceMonitor → node-local scrape groups with
//! prometheus-operator's labels and rules, and pod metadata for container metrics.

pub mod config;
pub mod crd;
pub mod meta;
pub mod pod_metadata;
pub mod reuse;
pub mod rules;
pub mod scrape_jobs;
pub mod selector;
pub mod targets;
pub mod validation;
pub mod watch;

pub use config::KubernetesConfig;
pub use crd::{PodMonitor, ServiceMonitor};
pub use pod_metadata::PodMetadata;
pub use reuse::DiscoveryCache;
pub use scrape_jobs::JobBuilder;
pub use targets::{ClusterState, Discovered, Environment, ScrapeGroup, discover, discover_with};
pub use watch::{AgentPlacement, DiscoveryError, KubernetesDiscovery};
