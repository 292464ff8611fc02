//! Pod metadata for container metrics: [`MetadataProvider`] over the pods of this node.
//!
//! Kubelet labels a container's series from the runtime's labels: `namespace`, `pod`,
//! `container` and the runtime's image reference. The API gives the same facts through
//! `status.containerStatuses[]`: `containerID` (`containerd://<64 hex>`, `cri-o://<64 hex>`),
//! `name`, and `image` as the runtime reported it (`docker.io/library/nginx:1.25`, not the
//! spec's `nginx:1.25`), which is what cAdvisor's `image` label carries.
//!
//! Pod sandboxes (pause containers) never appear in the pod status. Kubelet still labels
//! them (pod and namespace set, `container=""`, the pause image) because it reads the
//! runtime's labels. From the API we can only say which pod a sandbox cgroup belongs to: the
//! cgroup path carries the pod UID, so the caller asks [`MetadataProvider::pod`] and takes
//! the image from the runtime (or leaves it empty).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use k8s_openapi::api::core::v1::Pod;
use tokio::sync::watch;

use tokio_util::sync::CancellationToken;

use crate::identity::{ContainerMetadata, Inventory, MetadataProvider};

/// An index of the pods on this node by container id and pod UID, rebuilt on pod changes.
#[derive(Clone)]
pub struct PodMetadata {
    index: Arc<RwLock<PodIndex>>,
    /// Counts the rebuilds that changed an answer, so the inventory relabels only then.
    generation: Arc<watch::Sender<u64>>,
}

impl Default for PodMetadata {
    fn default() -> Self {
        Self {
            index: Arc::default(),
            generation: Arc::new(watch::Sender::new(0)),
        }
    }
}

#[derive(Default, PartialEq)]
struct PodIndex {
    containers: HashMap<String, ContainerMetadata>,
    pods: HashMap<String, ContainerMetadata>,
}

/// The runtime id inside `<runtime>://<id>`.
pub fn runtime_container_id(status_id: &str) -> &str {
    status_id.split_once("://").map_or(status_id, |(_, id)| id)
}

impl PodMetadata {
    pub fn new() -> Self {
        Self::default()
    }

    /// Changes whenever a rebuild changed an answer (a container or pod appeared, went or
    /// was renamed): the cue to relabel what is already tracked.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Replaces the index with one built from `pods`; true when any answer changed.
    pub fn rebuild<'a>(&self, pods: impl IntoIterator<Item = &'a Pod>) -> bool {
        let mut index = PodIndex::default();
        for pod in pods {
            let namespace = pod.metadata.namespace.clone().unwrap_or_default();
            let name = pod.metadata.name.clone().unwrap_or_default();
            if let Some(uid) = &pod.metadata.uid {
                index.pods.insert(
                    uid.clone(),
                    ContainerMetadata {
                        namespace: namespace.clone(),
                        pod: name.clone(),
                        ..ContainerMetadata::default()
                    },
                );
            }
            let Some(status) = &pod.status else { continue };
            let statuses = status
                .container_statuses
                .iter()
                .chain(&status.init_container_statuses)
                .chain(&status.ephemeral_container_statuses)
                .flatten();
            for cs in statuses {
                let Some(id) = cs.container_id.as_deref().map(runtime_container_id) else {
                    continue;
                };
                if id.is_empty() {
                    continue;
                }
                let image = if cs.image.is_empty() {
                    spec_image(pod, &cs.name).unwrap_or_default()
                } else {
                    cs.image.clone()
                };
                index.containers.insert(
                    id.to_string(),
                    ContainerMetadata {
                        namespace: namespace.clone(),
                        pod: name.clone(),
                        container: cs.name.clone(),
                        image,
                        name: id.to_string(),
                    },
                );
            }
        }
        let Ok(mut guard) = self.index.write() else {
            return false;
        };
        if *guard == index {
            return false;
        }
        *guard = index;
        drop(guard);
        self.generation.send_modify(|g| *g += 1);
        true
    }

    /// Makes `inventory` name containers and pods from this index, and relabels what it
    /// already tracks after every change, until `shutdown`: cgroup and eBPF series then
    /// carry `pod`, `namespace`, `container` and `image` from their next cycle on.
    pub async fn label_inventory(self, inventory: Inventory, shutdown: CancellationToken) {
        let mut changes = self.subscribe();
        inventory.set_metadata_provider(Arc::new(self));
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = changes.changed() => if changed.is_err() { return },
            }
            inventory.metadata_changed();
        }
    }

    /// Number of containers indexed.
    pub fn container_count(&self) -> usize {
        self.index.read().map(|i| i.containers.len()).unwrap_or(0)
    }
}

fn spec_image(pod: &Pod, container: &str) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == container)
        .and_then(|c| c.image.clone())
}

impl MetadataProvider for PodMetadata {
    fn container(&self, container_id: &str) -> Option<ContainerMetadata> {
        self.index
            .read()
            .ok()?
            .containers
            .get(container_id)
            .cloned()
    }

    fn pod(&self, pod_uid: &str) -> Option<ContainerMetadata> {
        self.index.read().ok()?.pods.get(pod_uid).cloned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn containers_are_found_by_runtime_id_and_pods_by_uid() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-1", "namespace": "shop", "uid": "1f2e-33"},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}, {"name": "log", "image": "busybox"}],
                     "initContainers": [{"name": "init", "image": "alpine:3"}]},
            "status": {
                "containerStatuses": [
                    {"name": "web", "image": "docker.io/library/nginx:1.25", "imageID": "", "ready": true,
                     "restartCount": 0, "containerID": "containerd://abc123"},
                    {"name": "log", "image": "", "imageID": "", "ready": false, "restartCount": 0,
                     "containerID": "cri-o://def456"}],
                "initContainerStatuses": [
                    {"name": "init", "image": "docker.io/library/alpine:3", "imageID": "", "ready": false,
                     "restartCount": 0, "containerID": "containerd://0099"}]}
        }))
        .unwrap();
        let p = PodMetadata::new();
        let mut changes = p.subscribe();
        assert!(p.rebuild([&pod]));
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();
        assert!(!p.rebuild([&pod]), "same pods, same answers");
        assert!(!changes.has_changed().unwrap());
        assert_eq!(
            p.container("abc123").unwrap(),
            ContainerMetadata {
                namespace: "shop".into(),
                pod: "web-1".into(),
                container: "web".into(),
                image: "docker.io/library/nginx:1.25".into(),
                name: "abc123".into(),
            }
        );
        // No image in the status (not yet reported): the spec's image.
        assert_eq!(p.container("def456").unwrap().image, "busybox");
        assert_eq!(p.container("0099").unwrap().container, "init");
        let pod_row = p.pod("1f2e-33").unwrap();
        assert_eq!(
            (
                pod_row.namespace.as_str(),
                pod_row.pod.as_str(),
                pod_row.container.as_str()
            ),
            ("shop", "web-1", "")
        );
        assert!(p.container("zzz").is_none());
        assert!(p.rebuild([]));
        assert!(p.container("abc123").is_none());
    }
}
