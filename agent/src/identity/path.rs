//! What a cgroup path says about its owner: the kubelet's cgroup layout (systemd and cgroupfs
//! drivers) and the runtimes' container cgroup names (containerd, CRI-O, docker).
//!
//! Shapes handled (UID dashes become underscores in systemd unit names):
//!
//! | level | systemd driver | cgroupfs driver |
//! |---|---|---|
//! | kubepods root | `/kubepods.slice` | `/kubepods` |
//! | QoS | `/kubepods.slice/kubepods-burstable.slice` | `/kubepods/burstable` |
//! | pod | `…/kubepods-burstable-pod<uid_>.slice`, `/kubepods.slice/kubepods-pod<uid_>.slice` | `…/pod<uid>` |
//! | container | `cri-containerd-<id>.scope`, `crio-<id>.scope`, `docker-<id>.scope` | `<id>`, `crio-<id>` |
//! | CRI-O monitor | `crio-conmon-<id>.scope` | `crio-conmon-<id>` |

/// Kubernetes QoS class of a pod, from the cgroup it sits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QosClass {
    /// Pods directly below the kubepods root.
    Guaranteed,
    Burstable,
    BestEffort,
}

impl QosClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Guaranteed => "guaranteed",
            Self::Burstable => "burstable",
            Self::BestEffort => "besteffort",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "burstable" => Some(Self::Burstable),
            "besteffort" => Some(Self::BestEffort),
            _ => None,
        }
    }
}

/// The container runtime that named a container cgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Runtime {
    /// `cri-containerd-<id>.scope`; also a bare `<id>` under the cgroupfs driver, which docker
    /// (cri-dockerd) uses too: both get the same labels, so the ambiguity costs nothing.
    Containerd,
    Crio,
    Docker,
}

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Containerd => "containerd",
            Self::Crio => "cri-o",
            Self::Docker => "docker",
        }
    }
}

/// What kind of cgroup a path is in the kubelet's layout.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CgroupKind {
    /// The node root, `id="/"`.
    Root,
    /// `/kubepods` or `/kubepods.slice`.
    KubepodsRoot,
    /// A QoS-class cgroup (burstable, besteffort).
    Qos(QosClass),
    /// A pod cgroup; `uid` with dashes, as the API spells it.
    Pod { qos: QosClass, uid: String },
    /// A container cgroup: an app container or the pod sandbox; the path alone cannot tell
    /// which (see [`CgroupEntry::sandbox`](super::CgroupEntry)).
    Container {
        qos: QosClass,
        pod_uid: String,
        runtime: Runtime,
        /// The runtime's container id (64 characters).
        id: String,
    },
    /// CRI-O's per-container monitor (`crio-conmon-<id>`): tracked as a plain cgroup, as
    /// cAdvisor's raw handler does.
    Conmon { pod_uid: String, id: String },
    /// Anything else that is tracked (kubelet and runtime cgroups, nested cgroups).
    Other,
}

impl CgroupKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Root => "root",
            Self::KubepodsRoot => "kubepods",
            Self::Qos(_) => "qos",
            Self::Pod { .. } => "pod",
            Self::Container { .. } => "container",
            Self::Conmon { .. } => "conmon",
            Self::Other => "other",
        }
    }

    /// The runtime container id, for container cgroups.
    pub fn container_id(&self) -> Option<&str> {
        match self {
            Self::Container { id, .. } => Some(id),
            _ => None,
        }
    }

    /// The pod UID (dashes), for pod and container cgroups.
    pub fn pod_uid(&self) -> Option<&str> {
        match self {
            Self::Pod { uid, .. } => Some(uid),
            Self::Container { pod_uid, .. } | Self::Conmon { pod_uid, .. } => Some(pod_uid),
            _ => None,
        }
    }
}

/// Whether `name` is the kubepods root's directory name under either driver.
pub fn is_kubepods_root(name: &str) -> bool {
    name == "kubepods" || name == "kubepods.slice"
}

/// Classifies cgroup `path` (relative to the node root, starting with `/`).
pub fn parse(path: &str) -> CgroupKind {
    let mut parts = path.split('/').filter(|p| !p.is_empty());
    let Some(first) = parts.next() else {
        return CgroupKind::Root;
    };
    if !is_kubepods_root(first) {
        return CgroupKind::Other;
    }
    let systemd = first.ends_with(".slice");
    let Some(second) = parts.next() else {
        return CgroupKind::KubepodsRoot;
    };
    // Level 2: a QoS cgroup, or a Guaranteed pod.
    let (qos, pod_part) = if let Some(q) = qos_of(second, systemd) {
        match parts.next() {
            None => return CgroupKind::Qos(q),
            Some(p) => (q, p),
        }
    } else {
        (QosClass::Guaranteed, second)
    };
    let Some(uid) = pod_uid_of(pod_part, systemd) else {
        return CgroupKind::Other;
    };
    let Some(container) = parts.next() else {
        return CgroupKind::Pod { qos, uid };
    };
    if parts.next().is_some() {
        // Below a container (runtimes sometimes nest): a plain cgroup.
        return CgroupKind::Other;
    }
    match container_of(container, systemd) {
        Some(ContainerName::Container(runtime, id)) => CgroupKind::Container {
            qos,
            pod_uid: uid,
            runtime,
            id: id.to_string(),
        },
        Some(ContainerName::Conmon(id)) => CgroupKind::Conmon {
            pod_uid: uid,
            id: id.to_string(),
        },
        None => CgroupKind::Other,
    }
}

fn qos_of(name: &str, systemd: bool) -> Option<QosClass> {
    if systemd {
        let inner = name.strip_prefix("kubepods-")?.strip_suffix(".slice")?;
        QosClass::from_name(inner)
    } else {
        QosClass::from_name(name)
    }
}

fn pod_uid_of(name: &str, systemd: bool) -> Option<String> {
    let uid = if systemd {
        let unit = name.strip_suffix(".slice")?;
        // `kubepods-pod<uid>`, `kubepods-burstable-pod<uid>`: the UID follows the last `-pod`.
        let at = unit.rfind("-pod")?;
        unit[at + 4..].replace('_', "-")
    } else {
        name.strip_prefix("pod")?.to_string()
    };
    (!uid.is_empty()).then_some(uid)
}

enum ContainerName<'a> {
    Container(Runtime, &'a str),
    Conmon(&'a str),
}

fn container_of(name: &str, systemd: bool) -> Option<ContainerName<'_>> {
    let base = if systemd {
        name.strip_suffix(".scope")?
    } else {
        name
    };
    if let Some(id) = base.strip_prefix("crio-conmon-") {
        return is_container_id(id).then_some(ContainerName::Conmon(id));
    }
    let (runtime, id) = if let Some(id) = base.strip_prefix("cri-containerd-") {
        (Runtime::Containerd, id)
    } else if let Some(id) = base.strip_prefix("crio-") {
        (Runtime::Crio, id)
    } else if let Some(id) = base.strip_prefix("docker-") {
        (Runtime::Docker, id)
    } else if !systemd {
        (Runtime::Containerd, base)
    } else {
        return None;
    };
    is_container_id(id).then_some(ContainerName::Container(runtime, id))
}

/// cAdvisor's test for a runtime id: 64 characters of `[a-z0-9]`.
fn is_container_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const UID: &str = "8b3c7a1e-52d4-4f0e-9a3b-2c1d0e9f8a7b";
    const UID_: &str = "8b3c7a1e_52d4_4f0e_9a3b_2c1d0e9f8a7b";

    fn container(qos: QosClass, runtime: Runtime) -> CgroupKind {
        CgroupKind::Container {
            qos,
            pod_uid: UID.into(),
            runtime,
            id: ID.into(),
        }
    }

    #[test]
    fn systemd_driver_levels() {
        assert_eq!(parse("/"), CgroupKind::Root);
        assert_eq!(parse("/kubepods.slice"), CgroupKind::KubepodsRoot);
        assert_eq!(
            parse("/kubepods.slice/kubepods-burstable.slice"),
            CgroupKind::Qos(QosClass::Burstable)
        );
        assert_eq!(
            parse("/kubepods.slice/kubepods-besteffort.slice"),
            CgroupKind::Qos(QosClass::BestEffort)
        );
        assert_eq!(
            parse(&format!("/kubepods.slice/kubepods-pod{UID_}.slice")),
            CgroupKind::Pod {
                qos: QosClass::Guaranteed,
                uid: UID.into()
            }
        );
        let pod =
            format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice");
        assert_eq!(
            parse(&pod),
            CgroupKind::Pod {
                qos: QosClass::Burstable,
                uid: UID.into()
            }
        );
        assert_eq!(
            parse(&format!("{pod}/cri-containerd-{ID}.scope")),
            container(QosClass::Burstable, Runtime::Containerd)
        );
        assert_eq!(
            parse(&format!("{pod}/crio-{ID}.scope")),
            container(QosClass::Burstable, Runtime::Crio)
        );
        assert_eq!(
            parse(&format!("{pod}/docker-{ID}.scope")),
            container(QosClass::Burstable, Runtime::Docker)
        );
        assert_eq!(
            parse(&format!("{pod}/crio-conmon-{ID}.scope")),
            CgroupKind::Conmon {
                pod_uid: UID.into(),
                id: ID.into()
            }
        );
    }

    #[test]
    fn cgroupfs_driver_levels() {
        assert_eq!(parse("/kubepods"), CgroupKind::KubepodsRoot);
        assert_eq!(
            parse("/kubepods/besteffort"),
            CgroupKind::Qos(QosClass::BestEffort)
        );
        assert_eq!(
            parse(&format!("/kubepods/pod{UID}")),
            CgroupKind::Pod {
                qos: QosClass::Guaranteed,
                uid: UID.into()
            }
        );
        assert_eq!(
            parse(&format!("/kubepods/pod{UID}/{ID}")),
            container(QosClass::Guaranteed, Runtime::Containerd)
        );
        assert_eq!(
            parse(&format!("/kubepods/besteffort/pod{UID}/crio-{ID}")),
            container(QosClass::BestEffort, Runtime::Crio)
        );
        assert_eq!(
            parse(&format!("/kubepods/burstable/pod{UID}/crio-conmon-{ID}")),
            CgroupKind::Conmon {
                pod_uid: UID.into(),
                id: ID.into()
            }
        );
    }

    #[test]
    fn everything_else_is_other() {
        assert_eq!(parse("/system.slice/kubelet.service"), CgroupKind::Other);
        assert_eq!(parse("/kubepods/burstable/notapod"), CgroupKind::Other);
        assert_eq!(parse("/kubepods/pod1/short-id"), CgroupKind::Other);
        assert_eq!(
            parse(&format!("/kubepods/pod1/{ID}/nested")),
            CgroupKind::Other
        );
        assert_eq!(
            parse(&format!("/kubepods.slice/kubepods-pod1.slice/{ID}")),
            CgroupKind::Other,
            "systemd containers are .scope units"
        );
    }
}
