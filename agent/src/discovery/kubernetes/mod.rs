//! Kubernetes discovery: PodMonitor/ServiceMonitor → node-local scrape groups with
//! prometheus-operator's labels and rules, and pod metadata for container metrics.

pub mod config;
pub mod crd;
pub mod meta;
pub mod rules;
pub mod selector;
pub mod targets;
pub mod validation;

pub use config::KubernetesConfig;
pub use crd::{PodMonitor, ServiceMonitor};
pub use rules::RelabelRule;
pub use targets::{ClusterState, Discovered, Environment, ScrapeGroup, discover};
