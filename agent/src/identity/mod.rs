//! Which cgroups exist, which hierarchy holds each controller, and who each cgroup belongs to.
//!
//! Collectors (cgroupfs readers, eBPF map readers) look containers up here by cgroup path or
//! by cgroup v2 id; enrichment (pod metadata from the Kubernetes API) writes here. Neither side
//! knows the other.

mod hierarchy;
mod inventory;
mod metadata;

pub use hierarchy::{CgroupMode, Hierarchies, HierarchyError};
pub use inventory::{CgroupEntry, Inventory, container_labels};
pub use metadata::{ContainerMetadata, MetadataProvider};
