//! The seam between identity and enrichment: what an orchestrator (the Kubernetes API, a
//! container runtime) knows about a container or pod, looked up by the keys a cgroup path
//! yields. Collectors never see this; the inventory consults it when it builds labels.

/// Labels kubelet puts on a container's series beyond `id`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerMetadata {
    /// `namespace` label.
    pub namespace: String,
    /// `pod` label.
    pub pod: String,
    /// `container` label: the container name from the pod spec; empty for the pod cgroup and
    /// (containerd) the sandbox, `POD` for the CRI-O infra container.
    pub container: String,
    /// `image` label: the image reference; the pause image for a sandbox; empty for the pod.
    pub image: String,
    /// `name` label: for containerd the 64-hex container id.
    pub name: String,
}

/// Something that can name the containers and pods a cgroup belongs to.
pub trait MetadataProvider: Send + Sync {
    /// Metadata of the container (or sandbox) with this runtime container id (64 hex).
    fn container(&self, container_id: &str) -> Option<ContainerMetadata>;
    /// Metadata of the pod with this UID (dashes, as in the API), for pod-level cgroups.
    fn pod(&self, pod_uid: &str) -> Option<ContainerMetadata>;
}
