//! Discovery: what to scrape. Kubernetes monitors (PodMonitor, ServiceMonitor) resolved
//! against the pods on this node; the identity of those pods for container metrics.

pub mod kubernetes;
