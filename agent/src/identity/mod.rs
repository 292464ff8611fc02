//! Which cgroups exist, which hierarchy holds each controller, and who each cgroup belongs to.
//!
//! Collectors (cgroupfs readers, eBPF map readers) look containers up here by cgroup path or
//! by cgroup v2 id; enrichment (pod metadata from the Kubernetes API) plugs in through
//! [`MetadataProvider`] and [`Inventory::metadata_changed`]. Neither side knows the other.

mod hierarchy;
mod inventory;
mod metadata;
mod path;

pub use hierarchy::{CgroupMode, Hierarchies, HierarchyError, join};
pub use inventory::{CgroupEntry, Inventory, Tracking, container_labels, identity_labels};
pub use metadata::{ContainerMetadata, MetadataProvider};
pub use path::{CgroupKind, QosClass, Runtime, is_kubepods_root, parse as parse_path};
