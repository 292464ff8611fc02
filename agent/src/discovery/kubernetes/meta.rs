//! The `__meta_kubernetes_*` labels of Prometheus's Kubernetes SD for roles `pod` and
//! `endpoints` (spec §3), computed from pods, services and namespaces only.
//!
//! There is no Endpoints watch: for role `endpoints` the Endpoints object a Service would
//! have is derived the way the endpoints controller derives it (the Service's selector
//! against the pods, `targetPort` resolved against container ports, ready pods in
//! `addresses`, the others in `notReadyAddresses`). Only pods on this node are known, so only
//! this node's addresses exist, which is exactly the node filter of spec §3.6. Services
//! without a selector are the exception: their Endpoints object is watched by name and only
//! its addresses on this node are used.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EndpointAddress, Endpoints, Node, ObjectReference, Pod, Service,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::model::{Labels, LabelsBuilder};

const META: &str = "__meta_kubernetes_";

/// Replaces every character outside `[a-zA-Z0-9_]` with `_` (Prometheus's
/// `strutil.SanitizeLabelName`).
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn set_object_meta(
    b: &mut LabelsBuilder,
    role: &str,
    labels: Option<&BTreeMap<String, String>>,
    annotations: Option<&BTreeMap<String, String>>,
) {
    for (k, v) in labels.into_iter().flatten() {
        let k = sanitize(k);
        b.set(&format!("{META}{role}_label_{k}"), v);
        b.set(&format!("{META}{role}_labelpresent_{k}"), "true");
    }
    for (k, v) in annotations.into_iter().flatten() {
        let k = sanitize(k);
        b.set(&format!("{META}{role}_annotation_{k}"), v);
        b.set(&format!("{META}{role}_annotationpresent_{k}"), "true");
    }
}

/// `host:port`, bracketing IPv6 hosts as Go's `net.JoinHostPort` does.
pub fn join_host_port(host: &str, port: i32) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn pod_ip(pod: &Pod) -> Option<&str> {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .filter(|ip| !ip.is_empty())
}

fn pod_phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

/// The pod's labels of the pod role's group (spec §3.2) except `__meta_kubernetes_namespace`.
fn set_pod_labels(b: &mut LabelsBuilder, pod: &Pod) {
    let md = &pod.metadata;
    b.set(
        &format!("{META}pod_name"),
        md.name.as_deref().unwrap_or_default(),
    );
    b.set(&format!("{META}pod_ip"), pod_ip(pod).unwrap_or_default());
    set_object_meta(b, "pod", md.labels.as_ref(), md.annotations.as_ref());
    let ready = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.to_lowercase())
        .unwrap_or_else(|| "unknown".into());
    b.set(&format!("{META}pod_ready"), &ready);
    b.set(&format!("{META}pod_phase"), pod_phase(pod));
    b.set(
        &format!("{META}pod_node_name"),
        pod.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or_default(),
    );
    b.set(
        &format!("{META}pod_host_ip"),
        pod.status
            .as_ref()
            .and_then(|s| s.host_ip.as_deref())
            .unwrap_or_default(),
    );
    b.set(
        &format!("{META}pod_uid"),
        md.uid.as_deref().unwrap_or_default(),
    );
    if let Some(owner) = md
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
    {
        b.set(&format!("{META}pod_controller_kind"), &owner.kind);
        b.set(&format!("{META}pod_controller_name"), &owner.name);
    }
}

/// Regular containers, then init containers (flagged), as Prometheus lists them.
fn containers(pod: &Pod) -> impl Iterator<Item = (&Container, bool)> {
    let spec = pod.spec.as_ref();
    spec.into_iter()
        .flat_map(|s| s.containers.iter().map(|c| (c, false)))
        .chain(
            spec.and_then(|s| s.init_containers.as_ref())
                .into_iter()
                .flatten()
                .map(|c| (c, true)),
        )
}

fn container_id(pod: &Pod, name: &str, init: bool) -> String {
    let status = pod.status.as_ref();
    let statuses = if init {
        status.and_then(|s| s.init_container_statuses.as_ref())
    } else {
        status.and_then(|s| s.container_statuses.as_ref())
    };
    statuses
        .into_iter()
        .flatten()
        .find(|s| s.name == name)
        .and_then(|s| s.container_id.clone())
        .unwrap_or_default()
}

fn set_container_port(
    b: &mut LabelsBuilder,
    c: &Container,
    init: bool,
    port: Option<&ContainerPort>,
    protocol: Option<&str>,
) {
    b.set(&format!("{META}pod_container_name"), &c.name);
    b.set(
        &format!("{META}pod_container_image"),
        c.image.as_deref().unwrap_or_default(),
    );
    b.set(
        &format!("{META}pod_container_init"),
        if init { "true" } else { "false" },
    );
    if let Some(p) = port {
        b.set(
            &format!("{META}pod_container_port_name"),
            p.name.as_deref().unwrap_or_default(),
        );
        b.set(
            &format!("{META}pod_container_port_number"),
            &p.container_port.to_string(),
        );
        let proto = protocol.or(p.protocol.as_deref()).unwrap_or("TCP");
        b.set(&format!("{META}pod_container_port_protocol"), proto);
    }
}

/// Targets of role `pod` for one pod: one per (container × declared port), one without a
/// port for a container that declares none. Nothing for a pod without an IP.
pub fn pod_targets(pod: &Pod) -> Vec<Labels> {
    let Some(ip) = pod_ip(pod) else {
        return Vec::new();
    };
    let mut group = LabelsBuilder::new();
    group.set(
        &format!("{META}namespace"),
        pod.metadata.namespace.as_deref().unwrap_or_default(),
    );
    set_pod_labels(&mut group, pod);
    let mut out = Vec::new();
    for (c, init) in containers(pod) {
        let id = container_id(pod, &c.name, init);
        let ports = c.ports.as_deref().unwrap_or_default();
        if ports.is_empty() {
            let mut b = group.clone();
            b.set("__address__", ip);
            set_container_port(&mut b, c, init, None, None);
            b.set(&format!("{META}pod_container_id"), &id);
            out.push(b.build());
            continue;
        }
        for p in ports {
            let mut b = group.clone();
            b.set("__address__", &join_host_port(ip, p.container_port));
            set_container_port(&mut b, c, init, Some(p), None);
            b.set(&format!("{META}pod_container_id"), &id);
            out.push(b.build());
        }
    }
    out
}

/// Whether the endpoints controller lists this pod at all, and as ready or not.
fn endpoint_state(pod: &Pod, publish_not_ready: bool) -> Option<bool> {
    pod_ip(pod)?;
    if pod.metadata.deletion_timestamp.is_some() && !publish_not_ready {
        return None;
    }
    // Terminal pods never come back, so the controller leaves them out entirely.
    if matches!(pod_phase(pod), "Failed" | "Succeeded") {
        return None;
    }
    let ready = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True");
    Some(ready || publish_not_ready)
}

/// The container port a Service's `targetPort` names in this pod (`podutil.FindPort`).
fn resolve_target_port(
    pod: &Pod,
    target: Option<&IntOrString>,
    port: i32,
    protocol: &str,
) -> Option<i32> {
    match target {
        None => Some(port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => containers(pod)
            .filter(|(_, init)| !init)
            .flat_map(|(c, _)| c.ports.iter().flatten())
            .find(|p| {
                p.name.as_deref() == Some(name.as_str())
                    && p.protocol.as_deref().unwrap_or("TCP") == protocol
            })
            .map(|p| p.container_port),
    }
}

/// Whether a Service's selector selects this pod (an absent or empty selector selects none,
/// as for the endpoints controller).
pub fn service_selects(service: &Service, pod: &Pod) -> bool {
    let Some(sel) = service.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return false;
    };
    if sel.is_empty() || service.metadata.namespace != pod.metadata.namespace {
        return false;
    }
    let labels = pod.metadata.labels.as_ref();
    sel.iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// Targets of role `endpoints` for one Service, from the pods it selects among `pods`
/// (spec §3.3), including the extra targets for container ports the Service does not expose.
pub fn endpoints_targets<'a>(
    service: &Service,
    pods: impl IntoIterator<Item = &'a Pod>,
) -> Vec<Labels> {
    let Some(spec) = service.spec.as_ref() else {
        return Vec::new();
    };
    let name = service.metadata.name.as_deref().unwrap_or_default();
    let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
    let mut group = LabelsBuilder::new();
    group.set(
        &format!("{META}namespace"),
        service.metadata.namespace.as_deref().unwrap_or_default(),
    );
    group.set(&format!("{META}endpoints_name"), name);
    // The controller copies the Service's labels to its Endpoints and marks headless ones.
    let mut ep_labels = service.metadata.labels.clone().unwrap_or_default();
    if spec.cluster_ip.as_deref() == Some("None") {
        ep_labels.insert("service.kubernetes.io/headless".into(), String::new());
    }
    set_object_meta(&mut group, "endpoints", Some(&ep_labels), None);
    group.set(&format!("{META}service_name"), name);
    set_object_meta(
        &mut group,
        "service",
        service.metadata.labels.as_ref(),
        service.metadata.annotations.as_ref(),
    );

    let ports = spec.ports.as_deref().unwrap_or_default();
    let mut ready_targets = Vec::new();
    let mut not_ready_targets = Vec::new();
    let mut extra = Vec::new();
    for pod in pods {
        if !service_selects(service, pod) {
            continue;
        }
        let Some(ready) = endpoint_state(pod, publish_not_ready) else {
            continue;
        };
        let Some(ip) = pod_ip(pod) else { continue };
        let mut pod_group = group.clone();
        set_pod_labels(&mut pod_group, pod);
        let mut seen_ports = Vec::new();
        for sp in ports {
            let protocol = sp.protocol.as_deref().unwrap_or("TCP");
            let Some(port) = resolve_target_port(pod, sp.target_port.as_ref(), sp.port, protocol)
            else {
                continue;
            };
            seen_ports.push(port);
            let mut b = pod_group.clone();
            b.set("__address__", &join_host_port(ip, port));
            b.set(
                &format!("{META}endpoint_port_name"),
                sp.name.as_deref().unwrap_or_default(),
            );
            b.set(&format!("{META}endpoint_port_protocol"), protocol);
            b.set(
                &format!("{META}endpoint_ready"),
                if ready { "true" } else { "false" },
            );
            b.set(&format!("{META}endpoint_address_target_kind"), "Pod");
            b.set(
                &format!("{META}endpoint_address_target_name"),
                pod.metadata.name.as_deref().unwrap_or_default(),
            );
            let pod_spec = pod.spec.as_ref();
            b.set(
                &format!("{META}endpoint_node_name"),
                pod_spec
                    .and_then(|s| s.node_name.as_deref())
                    .unwrap_or_default(),
            );
            if let Some(s) = pod_spec
                && s.subdomain.as_deref() == Some(name)
            {
                b.set(
                    &format!("{META}endpoint_hostname"),
                    s.hostname.as_deref().unwrap_or_default(),
                );
            }
            if let Some((c, init, cp)) = containers(pod).find_map(|(c, init)| {
                c.ports
                    .iter()
                    .flatten()
                    .find(|cp| cp.container_port == port)
                    .map(|cp| (c, init, cp))
            }) {
                set_container_port(&mut b, c, init, Some(cp), Some(protocol));
            }
            if ready {
                ready_targets.push(b.build());
            } else {
                not_ready_targets.push(b.build());
            }
        }
        for (c, init) in containers(pod) {
            for cp in c.ports.iter().flatten() {
                if seen_ports.contains(&cp.container_port) {
                    continue;
                }
                let mut b = pod_group.clone();
                b.set("__address__", &join_host_port(ip, cp.container_port));
                set_container_port(&mut b, c, init, Some(cp), None);
                extra.push(b.build());
            }
        }
    }
    ready_targets.extend(not_ready_targets);
    ready_targets.extend(extra);
    ready_targets
}

/// Targets of role `endpoints` from a real Endpoints object, for Services without a
/// selector (whose endpoints something else maintains, e.g. prometheus-operator's kubelet
/// Service). Only addresses on `node` are kept: `nodeName`, a Node `targetRef` naming it, or a
/// Pod `targetRef` to one of `local_pods`.
pub fn endpoints_object_targets(
    service: &Service,
    endpoints: &Endpoints,
    local_pods: &[&Pod],
    node: &str,
) -> Vec<Labels> {
    let name = endpoints.metadata.name.as_deref().unwrap_or_default();
    let mut group = LabelsBuilder::new();
    group.set(
        &format!("{META}namespace"),
        endpoints.metadata.namespace.as_deref().unwrap_or_default(),
    );
    group.set(&format!("{META}endpoints_name"), name);
    set_object_meta(
        &mut group,
        "endpoints",
        endpoints.metadata.labels.as_ref(),
        endpoints.metadata.annotations.as_ref(),
    );
    group.set(
        &format!("{META}service_name"),
        service.metadata.name.as_deref().unwrap_or_default(),
    );
    set_object_meta(
        &mut group,
        "service",
        service.metadata.labels.as_ref(),
        service.metadata.annotations.as_ref(),
    );
    let find_pod = |r: &ObjectReference| {
        local_pods.iter().copied().find(|p| {
            p.metadata.name == r.name
                && (r.namespace.is_none() || p.metadata.namespace == r.namespace)
        })
    };
    let mut out = Vec::new();
    let mut seen_pods: Vec<(&Pod, Vec<i32>)> = Vec::new();
    for subset in endpoints.subsets.iter().flatten() {
        let addresses = subset.addresses.iter().flatten().map(|a| (a, true)).chain(
            subset
                .not_ready_addresses
                .iter()
                .flatten()
                .map(|a| (a, false)),
        );
        let addresses: Vec<(&EndpointAddress, bool)> = addresses.collect();
        for port in subset.ports.iter().flatten() {
            for (addr, ready) in &addresses {
                let target_ref = addr.target_ref.as_ref();
                let kind = target_ref.and_then(|r| r.kind.as_deref());
                let pod = target_ref
                    .filter(|_| kind == Some("Pod"))
                    .and_then(find_pod);
                let on_node = addr.node_name.as_deref() == Some(node)
                    || (kind == Some("Node")
                        && target_ref.and_then(|r| r.name.as_deref()) == Some(node))
                    || pod.is_some();
                if !on_node {
                    continue;
                }
                let protocol = port.protocol.as_deref().unwrap_or("TCP");
                let mut b = group.clone();
                b.set("__address__", &join_host_port(&addr.ip, port.port));
                b.set(
                    &format!("{META}endpoint_port_name"),
                    port.name.as_deref().unwrap_or_default(),
                );
                b.set(&format!("{META}endpoint_port_protocol"), protocol);
                b.set(
                    &format!("{META}endpoint_ready"),
                    if *ready { "true" } else { "false" },
                );
                if let Some(r) = target_ref {
                    b.set(
                        &format!("{META}endpoint_address_target_kind"),
                        r.kind.as_deref().unwrap_or_default(),
                    );
                    b.set(
                        &format!("{META}endpoint_address_target_name"),
                        r.name.as_deref().unwrap_or_default(),
                    );
                }
                b.set(
                    &format!("{META}endpoint_node_name"),
                    addr.node_name.as_deref().unwrap_or_default(),
                );
                b.set(
                    &format!("{META}endpoint_hostname"),
                    addr.hostname.as_deref().unwrap_or_default(),
                );
                if let Some(pod) = pod {
                    set_pod_labels(&mut b, pod);
                    if let Some((c, init, cp)) = containers(pod).find_map(|(c, init)| {
                        c.ports
                            .iter()
                            .flatten()
                            .find(|cp| cp.container_port == port.port)
                            .map(|cp| (c, init, cp))
                    }) {
                        set_container_port(&mut b, c, init, Some(cp), Some(protocol));
                    }
                    match seen_pods.iter_mut().find(|(p, _)| std::ptr::eq(*p, pod)) {
                        Some((_, ports)) => ports.push(port.port),
                        None => seen_pods.push((pod, vec![port.port])),
                    }
                }
                out.push(b.build());
            }
        }
    }
    // Container ports of the pods seen that no endpoint port covers.
    for (pod, ports) in seen_pods {
        let Some(ip) = pod_ip(pod) else { continue };
        let mut pod_group = group.clone();
        set_pod_labels(&mut pod_group, pod);
        for (c, init) in containers(pod) {
            for cp in c.ports.iter().flatten() {
                if ports.contains(&cp.container_port) {
                    continue;
                }
                let mut b = pod_group.clone();
                b.set("__address__", &join_host_port(ip, cp.container_port));
                set_container_port(&mut b, c, init, Some(cp), None);
                out.push(b.build());
            }
        }
    }
    out
}

/// Whether the Service has no selector (its endpoints are maintained by someone else).
pub fn is_selectorless(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .is_none_or(BTreeMap::is_empty)
}

/// Adds the node labels of `attach_metadata.node` (spec §3.5) to a target.
pub fn with_node_labels(target: &Labels, node: &Node) -> Labels {
    let mut b = target.builder();
    b.set(
        &format!("{META}node_name"),
        node.metadata.name.as_deref().unwrap_or_default(),
    );
    set_object_meta(
        &mut b,
        "node",
        node.metadata.labels.as_ref(),
        node.metadata.annotations.as_ref(),
    );
    b.build()
}
