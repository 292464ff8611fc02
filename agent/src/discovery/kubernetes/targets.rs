//! Monitors → scrape groups: for each selected, valid monitor endpoint the scrape settings,
//! the candidate targets on this node with their full pre-relabel label sets, and the relabel
//! rules prometheus-operator would generate. Pure functions of the cluster state.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Endpoints, Namespace, Node, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::config::KubernetesConfig;
use super::crd::{EndpointCommon, MonitorKind, MonitorSpecCommon, PodMonitor, ServiceMonitor};
use super::meta::{
    endpoints_object_targets, endpoints_targets, is_selectorless, pod_targets, with_node_labels,
};
use super::reuse::{Chunk, Decoration, DiscoveryCache, NodeRef};
use super::rules::{metric_rules, pod_monitor_rules, service_monitor_rules};
use super::selector::matches;
use super::validation::{
    HttpSettings, RejectReason, Rejection, SecretSource, ValidationContext, interval_and_timeout,
    parse_byte_size, resolve_http, validate_relabel, validate_selector,
};
use crate::config::Duration;
use crate::model::Labels;
use crate::relabel::RelabelConfig;

/// The objects discovery works from: pods of this node, and cluster-wide services,
/// namespaces and monitors.
#[derive(Clone, Debug, Default)]
pub struct ClusterState {
    pub pods: Vec<Arc<Pod>>,
    pub services: Vec<Arc<Service>>,
    /// Endpoints of selectorless Services that selected ServiceMonitors may use (see
    /// [`wanted_endpoints`]).
    pub endpoints: Vec<Arc<Endpoints>>,
    pub namespaces: Vec<Arc<Namespace>>,
    pub service_monitors: Vec<Arc<ServiceMonitor>>,
    pub pod_monitors: Vec<Arc<PodMonitor>>,
    /// This node's Node object, watched only while a selected monitor sets
    /// `attachMetadata.node` (see [`wants_node`]).
    pub node: Option<Arc<Node>>,
}

/// Which monitor a group or rejection comes from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MonitorRef {
    pub kind: MonitorKind,
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for MonitorRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.kind.as_str(), self.namespace, self.name)
    }
}

/// Per-scrape limits; `None` means no limit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScrapeLimits {
    pub sample_limit: Option<u64>,
    pub target_limit: Option<u64>,
    pub label_limit: Option<u64>,
    pub label_name_length_limit: Option<u64>,
    pub label_value_length_limit: Option<u64>,
    /// Bytes.
    pub body_size_limit: Option<u64>,
    pub keep_dropped_targets: Option<u64>,
    pub native_histogram_bucket_limit: Option<u64>,
}

/// One Prometheus scrape job: one endpoint of one monitor.
#[derive(Clone, Debug, PartialEq)]
pub struct ScrapeGroup {
    /// `serviceMonitor/<ns>/<name>/<i>` or `podMonitor/<ns>/<name>/<i>`.
    pub job_name: String,
    pub monitor: MonitorRef,
    pub scrape_interval: Duration,
    pub scrape_timeout: Duration,
    pub metrics_path: String,
    /// `http` or `https`.
    pub scheme: String,
    pub params: BTreeMap<String, Vec<String>>,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub track_timestamps_staleness: bool,
    pub http: HttpSettings,
    pub limits: ScrapeLimits,
    pub scrape_protocols: Vec<String>,
    pub fallback_scrape_protocol: Option<String>,
    pub scrape_native_histograms: Option<bool>,
    pub scrape_classic_histograms: Option<bool>,
    pub convert_classic_histograms_to_nhcb: Option<bool>,
    /// `relabel_configs`, to apply to each target.
    pub relabel_configs: Vec<RelabelConfig>,
    /// `metric_relabel_configs`, to apply to each scraped sample.
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// Candidate targets on this node, labels before relabeling (`__address__`,
    /// `__meta_kubernetes_*`, `__scheme__`, `__metrics_path__`, `__param_*`,
    /// `__scrape_interval__`, `__scrape_timeout__`, `job`).
    pub targets: Vec<Labels>,
}

/// A monitor that is not used, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedMonitor {
    pub monitor: MonitorRef,
    pub rejection: Rejection,
}

/// The outcome of one computation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Discovered {
    /// PodMonitor groups first, then ServiceMonitor groups, each sorted by monitor
    /// namespace/name and endpoint index.
    pub groups: Vec<ScrapeGroup>,
    pub rejected: Vec<RejectedMonitor>,
}

/// Inputs besides the cluster objects.
pub struct Environment<'a> {
    pub config: &'a KubernetesConfig,
    /// This node's name: only its pods are targets.
    pub node_name: &'a str,
    /// The agent's own namespace (what a `null` namespace selector means).
    pub own_namespace: &'a str,
    pub secrets: &'a dyn SecretSource,
}

const SCRAPE_PROTOCOLS: [&str; 5] = [
    "PrometheusProto",
    "OpenMetricsText0.0.1",
    "OpenMetricsText1.0.0",
    "PrometheusText0.0.4",
    "PrometheusText1.0.0",
];

/// Computes every scrape group of this node from scratch.
pub fn discover(state: &ClusterState, env: &Environment<'_>) -> Discovered {
    discover_with(state, env, &mut DiscoveryCache::new())
}

/// Computes every scrape group of this node, reusing from `cache` what the objects it was
/// computed from still give: after one pod or Service event only that object's candidates,
/// and their decoration in the groups that see them, are recomputed.
pub fn discover_with(
    state: &ClusterState,
    env: &Environment<'_>,
    cache: &mut DiscoveryCache,
) -> Discovered {
    cache.begin();
    let out = discover_inner(state, env, cache);
    cache.finish();
    out
}

fn discover_inner(
    state: &ClusterState,
    env: &Environment<'_>,
    cache: &mut DiscoveryCache,
) -> Discovered {
    let ns_labels = namespace_labels(state);
    let local_pods: Vec<&Arc<Pod>> = state
        .pods
        .iter()
        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(env.node_name))
        .collect();
    let cfg = env.config;
    let mut out = Discovered::default();
    let candidates = Candidates::new(state, &local_pods, env.node_name, cache);

    let mut pms: Vec<&PodMonitor> = state
        .pod_monitors
        .iter()
        .map(|m| m.as_ref())
        .filter(|m| {
            selected(
                &m.metadata,
                cfg.pod_monitor_selector
                    .as_ref()
                    .map(|s| s.to_label_selector()),
                cfg.pod_monitor_namespace_selector
                    .as_ref()
                    .map(|s| s.to_label_selector()),
                &ns_labels,
                env.own_namespace,
            )
        })
        .collect();
    pms.sort_by_key(|m| (m.metadata.namespace.clone(), m.metadata.name.clone()));
    for m in pms {
        match pod_monitor_groups(m, state, &candidates, env, cache) {
            Ok(groups) => out.groups.extend(groups),
            Err(rejected) => out.rejected.push(rejected),
        }
    }

    for m in selected_service_monitors(state, env, &ns_labels) {
        match service_monitor_groups(m, state, &candidates, env, cache) {
            Ok(groups) => out.groups.extend(groups),
            Err(rejected) => out.rejected.push(rejected),
        }
    }
    out
}

/// The discovery targets of both roles, computed once per computation and shared by every
/// monitor: a cluster has far more monitors × services than this node has targets.
struct Candidates<'a> {
    /// This node's pods with their role `pod` targets.
    pods: Vec<(&'a Pod, Chunk)>,
    /// Services with role `endpoints` targets on this node, in store order; Services with no
    /// target here are absent.
    services: Vec<(&'a Service, Chunk)>,
    /// Indices into `services` by namespace, so a monitor looking in a few namespaces never
    /// walks the cluster's Services.
    services_by_namespace: HashMap<&'a str, Vec<usize>>,
}

impl<'a> Candidates<'a> {
    fn new(
        state: &'a ClusterState,
        local_pods: &[&'a Arc<Pod>],
        node_name: &str,
        cache: &mut DiscoveryCache,
    ) -> Self {
        let pods = local_pods
            .iter()
            .copied()
            .map(|p| (p.as_ref(), cache.pod_targets(p, || pod_targets(p))))
            .collect();
        let plain_pods: Vec<&Pod> = local_pods.iter().map(|p| p.as_ref()).collect();
        let mut by_namespace: HashMap<&str, Vec<&Arc<Pod>>> = HashMap::new();
        for p in local_pods {
            by_namespace
                .entry(p.metadata.namespace.as_deref().unwrap_or_default())
                .or_default()
                .push(p);
        }
        let endpoints: HashMap<(&str, &str), &Arc<Endpoints>> = state
            .endpoints
            .iter()
            .filter_map(|e| {
                Some((
                    (
                        e.metadata.namespace.as_deref()?,
                        e.metadata.name.as_deref()?,
                    ),
                    e,
                ))
            })
            .collect();
        let mut services = Vec::new();
        let mut services_by_namespace: HashMap<&str, Vec<usize>> = HashMap::new();
        for s in &state.services {
            let (Some(ns), Some(name)) =
                (s.metadata.namespace.as_deref(), s.metadata.name.as_deref())
            else {
                continue;
            };
            let targets = if is_selectorless(s) {
                let Some(e) = endpoints.get(&(ns, name)) else {
                    continue;
                };
                cache.service_targets(s, local_pods, Some(e), || {
                    endpoints_object_targets(s, e, &plain_pods, node_name)
                })
            } else {
                let Some(pods) = by_namespace.get(ns) else {
                    continue;
                };
                cache.service_targets(s, pods, None, || {
                    endpoints_targets(s, pods.iter().map(|p| p.as_ref()))
                })
            };
            if !targets.is_empty() {
                services_by_namespace
                    .entry(ns)
                    .or_default()
                    .push(services.len());
                services.push((s.as_ref(), targets));
            }
        }
        Self {
            pods,
            services,
            services_by_namespace,
        }
    }

    /// The Services with targets here in `namespaces` (`None`: all), in store order.
    fn services_in(&self, namespaces: &Option<BTreeSet<String>>) -> Vec<&(&'a Service, Chunk)> {
        match namespaces {
            None => self.services.iter().collect(),
            Some(set) => {
                let mut idx: Vec<usize> = set
                    .iter()
                    .filter_map(|ns| self.services_by_namespace.get(ns.as_str()))
                    .flatten()
                    .copied()
                    .collect();
                idx.sort_unstable();
                idx.into_iter().map(|i| &self.services[i]).collect()
            }
        }
    }
}

fn namespace_labels(state: &ClusterState) -> BTreeMap<&str, Option<&BTreeMap<String, String>>> {
    state
        .namespaces
        .iter()
        .filter_map(|n| Some((n.metadata.name.as_deref()?, n.metadata.labels.as_ref())))
        .collect()
}

fn selected_service_monitors<'a>(
    state: &'a ClusterState,
    env: &Environment<'_>,
    ns_labels: &BTreeMap<&str, Option<&BTreeMap<String, String>>>,
) -> Vec<&'a ServiceMonitor> {
    let cfg = env.config;
    let mut sms: Vec<&ServiceMonitor> = state
        .service_monitors
        .iter()
        .map(|m| m.as_ref())
        .filter(|m| {
            selected(
                &m.metadata,
                cfg.service_monitor_selector
                    .as_ref()
                    .map(|s| s.to_label_selector()),
                cfg.service_monitor_namespace_selector
                    .as_ref()
                    .map(|s| s.to_label_selector()),
                ns_labels,
                env.own_namespace,
            )
        })
        .collect();
    sms.sort_by_key(|m| (m.metadata.namespace.clone(), m.metadata.name.clone()));
    sms
}

/// `(namespace, name)` of the selectorless Services whose Endpoints objects a selected
/// ServiceMonitor would read: in its namespaces and matching its selector. Only these are
/// watched, each by name.
pub fn wanted_endpoints(state: &ClusterState, env: &Environment<'_>) -> BTreeSet<(String, String)> {
    let ns_labels = namespace_labels(state);
    let selectorless: Vec<&Service> = state
        .services
        .iter()
        .map(|s| s.as_ref())
        .filter(|s| is_selectorless(s))
        .collect();
    let mut out = BTreeSet::new();
    if selectorless.is_empty() {
        return out;
    }
    for m in selected_service_monitors(state, env, &ns_labels) {
        let Some(sel) = &m.spec.common.selector else {
            continue;
        };
        let namespaces = target_namespaces(
            &m.spec.common,
            m.metadata.namespace.as_deref().unwrap_or_default(),
            env.config,
        );
        for s in &selectorless {
            if in_namespaces(s.metadata.namespace.as_deref(), &namespaces)
                && matches(sel, s.metadata.labels.as_ref())
                && let (Some(ns), Some(name)) = (&s.metadata.namespace, &s.metadata.name)
            {
                out.insert((ns.clone(), name.clone()));
            }
        }
    }
    out
}

/// Monitor selection as a Prometheus CR does it: `None` selector selects nothing; `None`
/// namespace selector means the agent's own namespace.
fn selected(
    md: &ObjectMeta,
    selector: Option<LabelSelector>,
    namespace_selector: Option<LabelSelector>,
    ns_labels: &BTreeMap<&str, Option<&BTreeMap<String, String>>>,
    own_namespace: &str,
) -> bool {
    let Some(selector) = selector else {
        return false;
    };
    if !matches(&selector, md.labels.as_ref()) {
        return false;
    }
    let ns = md.namespace.as_deref().unwrap_or_default();
    match namespace_selector {
        None => ns == own_namespace,
        Some(s) if s.match_labels.is_none() && s.match_expressions.is_none() => true,
        Some(s) => ns_labels.get(ns).is_some_and(|labels| matches(&s, *labels)),
    }
}

/// The namespaces a monitor looks in; `None` means all.
fn target_namespaces(
    common: &MonitorSpecCommon,
    monitor_ns: &str,
    cfg: &KubernetesConfig,
) -> Option<BTreeSet<String>> {
    let own = || Some(BTreeSet::from([monitor_ns.to_string()]));
    if cfg.ignore_namespace_selectors {
        return own();
    }
    let sel = &common.namespace_selector;
    if sel.any {
        None
    } else if sel.match_names.is_empty() {
        own()
    } else {
        Some(sel.match_names.iter().cloned().collect())
    }
}

fn in_namespaces(ns: Option<&str>, set: &Option<BTreeSet<String>>) -> bool {
    set.as_ref()
        .is_none_or(|s| ns.is_some_and(|ns| s.contains(ns)))
}

fn monitor_ref(kind: MonitorKind, md: &ObjectMeta) -> MonitorRef {
    MonitorRef {
        kind,
        namespace: md.namespace.clone().unwrap_or_default(),
        name: md.name.clone().unwrap_or_default(),
    }
}

/// Checks shared by both kinds that do not depend on an endpoint.
fn validate_common(
    common: &MonitorSpecCommon,
    decode_error: Option<&String>,
) -> Result<(), Rejection> {
    if let Some(e) = decode_error {
        return Err(Rejection::new(RejectReason::InvalidSpec, e.clone()));
    }
    validate_selector(common.selector.as_ref(), "selector")?;
    match common.selector_mechanism.as_deref() {
        None | Some("RelabelConfig") | Some("RoleSelector") => {}
        Some(other) => {
            return Err(Rejection::new(
                RejectReason::InvalidField,
                format!("selectorMechanism: {other:?} is not RelabelConfig or RoleSelector"),
            ));
        }
    }
    if let Some(class) = &common.scrape_class {
        // The agent has no scrape classes, so every class name is unknown to it.
        return Err(Rejection::new(
            RejectReason::UnknownScrapeClass,
            format!("scrapeClass {class:?} is not configured"),
        ));
    }
    for p in common
        .scrape_protocols
        .iter()
        .chain(common.fallback_scrape_protocol.as_ref())
    {
        if !SCRAPE_PROTOCOLS.contains(&p.as_str()) {
            return Err(Rejection::new(
                RejectReason::InvalidField,
                format!("scrape protocol {p:?} is not one of {SCRAPE_PROTOCOLS:?}"),
            ));
        }
    }
    if let Some(b) = &common.body_size_limit
        && parse_byte_size(b).is_none()
    {
        return Err(Rejection::new(
            RejectReason::InvalidField,
            format!("bodySizeLimit: {b:?} is not a byte size like 10MiB"),
        ));
    }
    Ok(())
}

/// Scrape settings of one endpoint, before its targets are attached.
struct EndpointSettings {
    interval: Duration,
    timeout: Duration,
    http: HttpSettings,
}

fn validate_endpoint(
    common: &EndpointCommon,
    field: &str,
    ctx: &ValidationContext<'_>,
    cfg: &KubernetesConfig,
    http: impl FnOnce(&ValidationContext<'_>) -> Result<HttpSettings, Rejection>,
) -> Result<EndpointSettings, Rejection> {
    let (interval, timeout) =
        interval_and_timeout(common, field, cfg.scrape_interval, cfg.scrape_timeout)?;
    for (i, r) in common.relabelings.iter().enumerate() {
        validate_relabel(r, &format!("{field}.relabelings[{i}]"))?;
    }
    for (i, r) in common.metric_relabelings.iter().enumerate() {
        validate_relabel(r, &format!("{field}.metricRelabelings[{i}]"))?;
    }
    let http = http(ctx)?;
    Ok(EndpointSettings {
        interval,
        timeout,
        http,
    })
}

fn limit(monitor: Option<u64>, global: u64) -> Option<u64> {
    monitor
        .filter(|n| *n != 0)
        .or((global != 0).then_some(global))
}

/// The candidates one monitor sees, and how its groups decorate them.
struct GroupInputs<'c> {
    candidates: Vec<&'c Chunk>,
    /// `attachMetadata.node`: with this node's object, if watched.
    attach_node: Option<Option<&'c Arc<Node>>>,
    /// Role `pod` (PodMonitor) rather than `endpoints`.
    pod_role: bool,
}

#[allow(
    clippy::too_many_arguments,
    reason = "one builder for both monitor kinds"
)]
fn group(
    monitor: MonitorRef,
    index: usize,
    common: &MonitorSpecCommon,
    ep: &EndpointCommon,
    settings: EndpointSettings,
    relabel_configs: Vec<RelabelConfig>,
    inputs: &GroupInputs<'_>,
    cfg: &KubernetesConfig,
    cache: &mut DiscoveryCache,
) -> ScrapeGroup {
    let job_name = format!(
        "{}/{}/{}/{index}",
        monitor.kind.job_prefix(),
        monitor.namespace,
        monitor.name
    );
    let metrics_path = if ep.path.is_empty() {
        "/metrics".to_string()
    } else {
        ep.path.clone()
    };
    let scheme = ep
        .scheme
        .as_deref()
        .map(str::to_ascii_lowercase)
        .unwrap_or_else(|| "http".into());
    let decoration = Decoration {
        interval: settings.interval.to_string(),
        timeout: settings.timeout.to_string(),
        metrics_path: metrics_path.clone(),
        scheme: scheme.clone(),
        params: ep
            .params
            .iter()
            .filter_map(|(k, v)| Some((format!("__param_{k}"), v.first()?.clone())))
            .collect(),
        node: inputs.attach_node.map(|n| NodeRef(n.cloned())),
    };
    let targets = cache.group_targets(&job_name, &decoration, &inputs.candidates, |chunk| {
        let attached;
        let chunk = match inputs.attach_node {
            Some(node) => {
                attached = attach_node(chunk, node.map(|n| n.as_ref()), inputs.pod_role);
                attached.as_slice()
            }
            None => chunk,
        };
        chunk
            .iter()
            .map(|t| {
                let mut b = t.builder();
                let mut set_default = |name: &str, value: &str| {
                    if b.get(name).is_none() {
                        b.set(name, value);
                    }
                };
                set_default("job", &job_name);
                set_default("__scrape_interval__", &decoration.interval);
                set_default("__scrape_timeout__", &decoration.timeout);
                set_default("__metrics_path__", &decoration.metrics_path);
                set_default("__scheme__", &decoration.scheme);
                for (k, v) in &decoration.params {
                    set_default(k, v);
                }
                b.build()
            })
            .collect()
    });
    ScrapeGroup {
        metric_relabel_configs: metric_rules(&ep.metric_relabelings, &monitor.namespace, cfg),
        monitor,
        job_name,
        scrape_interval: settings.interval,
        scrape_timeout: settings.timeout,
        metrics_path,
        scheme,
        params: ep.params.clone(),
        honor_labels: ep.honor_labels && !cfg.override_honor_labels,
        honor_timestamps: !cfg.override_honor_timestamps && ep.honor_timestamps.unwrap_or(true),
        track_timestamps_staleness: ep.track_timestamps_staleness.unwrap_or(false),
        http: settings.http,
        limits: ScrapeLimits {
            sample_limit: limit(common.sample_limit, cfg.sample_limit),
            target_limit: limit(common.target_limit, cfg.target_limit),
            label_limit: limit(common.label_limit, cfg.label_limit),
            label_name_length_limit: limit(
                common.label_name_length_limit,
                cfg.label_name_length_limit,
            ),
            label_value_length_limit: limit(
                common.label_value_length_limit,
                cfg.label_value_length_limit,
            ),
            body_size_limit: common
                .body_size_limit
                .as_deref()
                .and_then(parse_byte_size)
                .filter(|n| *n != 0),
            keep_dropped_targets: limit(common.keep_dropped_targets, 0),
            native_histogram_bucket_limit: limit(common.native_histogram_bucket_limit, 0),
        },
        scrape_protocols: common.scrape_protocols.clone(),
        fallback_scrape_protocol: common.fallback_scrape_protocol.clone(),
        scrape_native_histograms: common.scrape_native_histograms,
        scrape_classic_histograms: common.scrape_classic_histograms,
        convert_classic_histograms_to_nhcb: common.convert_classic_histograms_to_nhcb,
        relabel_configs,
        targets,
    }
}

/// `attachMetadata.node`: node labels on every target. All targets here are on this node, so
/// they all get this node's labels. Without the Node object, role `pod` skips its targets (as
/// Prometheus skips pods whose node is not cached) and role `endpoints` keeps them unlabelled.
fn attach_node(candidates: &[Labels], node: Option<&Node>, pod_role: bool) -> Vec<Labels> {
    match node {
        Some(n) => candidates.iter().map(|t| with_node_labels(t, n)).collect(),
        None if pod_role => Vec::new(),
        None => candidates.to_vec(),
    }
}

/// Whether a monitor sets `attachMetadata.node`.
fn attaches_node(common: &MonitorSpecCommon) -> bool {
    common
        .attach_metadata
        .as_ref()
        .and_then(|a| a.node)
        .unwrap_or(false)
}

/// Whether a selected monitor sets `attachMetadata.node`, so this node's Node object must be
/// watched.
pub fn wants_node(state: &ClusterState, env: &Environment<'_>) -> bool {
    let attach =
        |c: &MonitorSpecCommon| c.attach_metadata.as_ref().and_then(|a| a.node) == Some(true);
    let ns_labels = namespace_labels(state);
    let cfg = env.config;
    selected_service_monitors(state, env, &ns_labels)
        .iter()
        .any(|m| attach(&m.spec.common))
        || state.pod_monitors.iter().any(|m| {
            attach(&m.spec.common)
                && selected(
                    &m.metadata,
                    cfg.pod_monitor_selector
                        .as_ref()
                        .map(|s| s.to_label_selector()),
                    cfg.pod_monitor_namespace_selector
                        .as_ref()
                        .map(|s| s.to_label_selector()),
                    &ns_labels,
                    env.own_namespace,
                )
        })
}

fn validation_context<'a>(env: &'a Environment<'a>) -> ValidationContext<'a> {
    ValidationContext {
        scrape_interval: env.config.scrape_interval,
        deny_file_access: env.config.deny_file_access,
        scrape_classes: &[],
        secrets: env.secrets,
    }
}

fn pod_monitor_groups(
    m: &PodMonitor,
    state: &ClusterState,
    candidates: &Candidates<'_>,
    env: &Environment<'_>,
    cache: &mut DiscoveryCache,
) -> Result<Vec<ScrapeGroup>, RejectedMonitor> {
    let monitor = monitor_ref(MonitorKind::PodMonitor, &m.metadata);
    let reject = |rejection| RejectedMonitor {
        monitor: monitor.clone(),
        rejection,
    };
    let spec = &m.spec;
    validate_common(&spec.common, m.decode_error.as_ref()).map_err(reject)?;
    let ctx = validation_context(env);
    // Validate every endpoint before building any group: a monitor is used whole or not at all.
    let mut settings = Vec::new();
    for (i, ep) in spec.pod_metrics_endpoints.iter().enumerate() {
        let field = format!("podMetricsEndpoints[{i}]");
        if let Some(n) = ep.port_number
            && !(1..=65535).contains(&n)
        {
            return Err(reject(Rejection::new(
                RejectReason::InvalidField,
                format!("{field}.portNumber: {n} is not in 1..65535"),
            )));
        }
        let s = validate_endpoint(&ep.common, &field, &ctx, env.config, |ctx| {
            resolve_http(
                &monitor.namespace,
                &field,
                &ep.common,
                ep.tls_config.as_ref(),
                None,
                "",
                ctx,
            )
        })
        .map_err(reject)?;
        settings.push(s);
    }
    let namespaces = target_namespaces(&spec.common, &monitor.namespace, env.config);
    let role_selector = (spec.common.selector_mechanism.as_deref() == Some("RoleSelector"))
        .then_some(spec.common.selector.as_ref())
        .flatten();
    let inputs = GroupInputs {
        candidates: candidates
            .pods
            .iter()
            .filter(|(p, _)| in_namespaces(p.metadata.namespace.as_deref(), &namespaces))
            .filter(|(p, _)| role_selector.is_none_or(|s| matches(s, p.metadata.labels.as_ref())))
            .map(|(_, targets)| targets)
            .collect(),
        attach_node: attaches_node(&spec.common).then_some(state.node.as_ref()),
        pod_role: true,
    };
    Ok(spec
        .pod_metrics_endpoints
        .iter()
        .zip(settings)
        .enumerate()
        .map(|(i, (ep, s))| {
            let rules = pod_monitor_rules(
                &spec.common,
                ep,
                &monitor.namespace,
                &monitor.name,
                env.config,
            );
            group(
                monitor.clone(),
                i,
                &spec.common,
                &ep.common,
                s,
                rules,
                &inputs,
                env.config,
                cache,
            )
        })
        .collect())
}

fn service_monitor_groups(
    m: &ServiceMonitor,
    state: &ClusterState,
    candidates: &Candidates<'_>,
    env: &Environment<'_>,
    cache: &mut DiscoveryCache,
) -> Result<Vec<ScrapeGroup>, RejectedMonitor> {
    let monitor = monitor_ref(MonitorKind::ServiceMonitor, &m.metadata);
    let reject = |rejection| RejectedMonitor {
        monitor: monitor.clone(),
        rejection,
    };
    let spec = &m.spec;
    validate_common(&spec.common, m.decode_error.as_ref()).map_err(reject)?;
    if spec.endpoints.is_empty() {
        return Err(reject(Rejection::new(
            RejectReason::InvalidSpec,
            "spec.endpoints is required",
        )));
    }
    match spec.service_discovery_role.as_deref() {
        None | Some("Endpoints") | Some("EndpointSlice") => {}
        Some(other) => {
            return Err(reject(Rejection::new(
                RejectReason::InvalidField,
                format!("serviceDiscoveryRole: {other:?} is not Endpoints or EndpointSlice"),
            )));
        }
    }
    let ctx = validation_context(env);
    let mut settings = Vec::new();
    for (i, ep) in spec.endpoints.iter().enumerate() {
        let field = format!("endpoints[{i}]");
        let s = validate_endpoint(&ep.common, &field, &ctx, env.config, |ctx| {
            resolve_http(
                &monitor.namespace,
                &field,
                &ep.common,
                None,
                ep.tls_config.as_ref(),
                &ep.bearer_token_file,
                ctx,
            )
        })
        .map_err(reject)?;
        settings.push(s);
    }
    let namespaces = target_namespaces(&spec.common, &monitor.namespace, env.config);
    let role_selector = (spec.common.selector_mechanism.as_deref() == Some("RoleSelector"))
        .then_some(spec.common.selector.as_ref())
        .flatten();
    let inputs = GroupInputs {
        candidates: candidates
            .services_in(&namespaces)
            .into_iter()
            .filter(|(s, _)| {
                role_selector.is_none_or(|sel| matches(sel, s.metadata.labels.as_ref()))
            })
            .map(|(_, targets)| targets)
            .collect(),
        attach_node: attaches_node(&spec.common).then_some(state.node.as_ref()),
        pod_role: false,
    };
    Ok(spec
        .endpoints
        .iter()
        .zip(settings)
        .enumerate()
        .map(|(i, (ep, s))| {
            let rules = service_monitor_rules(
                &spec.common,
                &spec.target_labels,
                ep,
                &monitor.namespace,
                env.config,
            );
            group(
                monitor.clone(),
                i,
                &spec.common,
                &ep.common,
                s,
                rules,
                &inputs,
                env.config,
                cache,
            )
        })
        .collect())
}

#[cfg(test)]
mod tests;
