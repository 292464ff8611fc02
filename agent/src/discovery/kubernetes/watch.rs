//! The API-server side: watches (list+watch with backoff, reflected into stores) of exactly
//! what discovery needs, and the loop that turns store changes into scrape groups.
//!
//! Watched: pods with `spec.nodeName=<this node>` (so pod traffic grows with the node, not the
//! cluster), services, namespaces, PodMonitors, ServiceMonitors, and, only while a selected
//! monitor references them, single Secrets and ConfigMaps by name. No cluster-wide Endpoints
//! or EndpointSlice watch: endpoints are derived from services and the local pods; only a
//! selectorless Service that a selected ServiceMonitor uses has its Endpoints watched, by name.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Namespace, Node, Pod, Secret, SecretKeySelector, Service,
};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use super::config::KubernetesConfig;
use super::crd::{EndpointCommon, PodMonitor, SafeTlsConfig, SecretOrConfigMap, ServiceMonitor};
use super::pod_metadata::PodMetadata;
use super::reuse::DiscoveryCache;
use super::targets::{
    ClusterState, Discovered, Environment, RejectedMonitor, ScrapeGroup, discover_with,
    wanted_endpoints, wants_node,
};
use super::validation::{RejectReason, SecretSource};
use crate::discovery::kubernetes::crd::MonitorKind;
use crate::telemetry::registry;

/// How long to wait for the monitor CRDs' first list before computing without them (the
/// CRDs may not be installed; their watch keeps retrying in the background).
const MONITOR_READY_TIMEOUT: StdDuration = StdDuration::from_secs(10);

/// How long to wait for the first list of pods, services and namespaces at start.
const CORE_READY_TIMEOUT: StdDuration = StdDuration::from_secs(30);

/// Where to find this agent in the cluster.
#[derive(Clone, Debug)]
pub struct AgentPlacement {
    /// Node whose pods are targets (`NODE_NAME` from the downward API).
    pub node_name: String,
    /// The agent's own namespace (`POD_NAMESPACE`), for `null` namespace selectors.
    pub namespace: String,
}

/// Why Kubernetes discovery could not start.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// No usable in-cluster service account or kubeconfig.
    #[error("cannot build a Kubernetes client (in-cluster service account or KUBECONFIG): {0}")]
    Client(#[source] kube::Error),
    /// The node name is needed to watch only this node's pods.
    #[error("the node name is unknown: set node.name or the NODE_NAME environment variable")]
    NoNodeName,
}

impl AgentPlacement {
    /// Node from the config (`node.name`, else `NODE_NAME`, else the host name), namespace
    /// from `POD_NAMESPACE` (downward API).
    pub fn from_environment(node: &crate::config::NodeConfig) -> Result<Self, DiscoveryError> {
        let node_name = node.resolved_name();
        if node_name.is_empty() {
            return Err(DiscoveryError::NoNodeName);
        }
        Ok(Self {
            node_name,
            namespace: std::env::var("POD_NAMESPACE").unwrap_or_default(),
        })
    }
}

/// Running Kubernetes discovery.
pub struct KubernetesDiscovery {
    groups: watch::Receiver<Arc<Vec<ScrapeGroup>>>,
    metadata: PodMetadata,
    tasks: Vec<JoinHandle<()>>,
}

impl KubernetesDiscovery {
    /// Starts discovery as configured, or returns `None` when `kubernetes.enabled` is false.
    /// The client comes from the in-cluster service account or `KUBECONFIG`.
    pub async fn start_from_config(
        config: &crate::config::Config,
        shutdown: CancellationToken,
    ) -> Result<Option<Self>, DiscoveryError> {
        if !config.kubernetes.enabled {
            return Ok(None);
        }
        let placement = AgentPlacement::from_environment(&config.node)?;
        let client = Client::try_default()
            .await
            .map_err(DiscoveryError::Client)?;
        info!(node = %placement.node_name, "kubernetes discovery starting");
        Ok(Some(
            Self::start(client, config.kubernetes.clone(), placement, shutdown).await,
        ))
    }

    /// Starts the watches and the recompute loop. Returns once the core stores (pods,
    /// services, namespaces) have completed their first list (or 30 s passed) and the first
    /// groups are published, so the scraper starts from a complete picture.
    pub async fn start(
        client: Client,
        config: KubernetesConfig,
        placement: AgentPlacement,
        shutdown: CancellationToken,
    ) -> Self {
        let changed = Arc::new(Notify::new());
        let node_selector = format!("spec.nodeName={}", placement.node_name);
        let (pods, pods_task) = reflect(
            Api::<Pod>::all(client.clone()),
            watcher::Config::default().fields(&node_selector),
            "pods",
            &changed,
            &shutdown,
        );
        let (services, services_task) = reflect(
            Api::<Service>::all(client.clone()),
            watcher::Config::default(),
            "services",
            &changed,
            &shutdown,
        );
        let (namespaces, namespaces_task) = reflect(
            Api::<Namespace>::all(client.clone()),
            watcher::Config::default(),
            "namespaces",
            &changed,
            &shutdown,
        );
        let (pod_monitors, pm_task) = reflect(
            Api::<PodMonitor>::all(client.clone()),
            watcher::Config::default(),
            "podmonitors",
            &changed,
            &shutdown,
        );
        let (service_monitors, sm_task) = reflect(
            Api::<ServiceMonitor>::all(client.clone()),
            watcher::Config::default(),
            "servicemonitors",
            &changed,
            &shutdown,
        );
        let stores = Stores {
            pods,
            services,
            namespaces,
            pod_monitors,
            service_monitors,
        };
        async {
            // Core stores: wait for their first list, but not forever: an unreachable or
            // forbidden API server must not hold the rest of the agent. Targets follow as soon
            // as the lists arrive.
            for (what, ready) in [
                ("pods", tokio::time::timeout(CORE_READY_TIMEOUT, stores.pods.wait_until_ready()).await),
                ("services", tokio::time::timeout(CORE_READY_TIMEOUT, stores.services.wait_until_ready()).await),
                ("namespaces", tokio::time::timeout(CORE_READY_TIMEOUT, stores.namespaces.wait_until_ready()).await),
            ] {
                if !matches!(ready, Ok(Ok(()))) {
                    warn!(resource = what, "not listed yet; continuing, the watch keeps retrying");
                }
            }
            for (what, store_ready) in [
                ("podmonitors", tokio::time::timeout(MONITOR_READY_TIMEOUT, stores.pod_monitors.wait_until_ready()).await),
                ("servicemonitors", tokio::time::timeout(MONITOR_READY_TIMEOUT, stores.service_monitors.wait_until_ready()).await),
            ] {
                if store_ready.is_err() {
                    warn!(resource = what, "not listed yet (CRD not installed?); continuing without, the watch keeps retrying");
                }
            }
        }
        .instrument(info_span!("kubernetes_initial_list"))
        .await;

        let metadata = PodMetadata::new();
        let mut recompute = Recompute {
            client,
            config,
            placement,
            stores,
            metadata: metadata.clone(),
            secrets: HashMap::new(),
            config_maps: HashMap::new(),
            endpoints: HashMap::new(),
            node: None,
            changed: Arc::clone(&changed),
            shutdown: shutdown.clone(),
            last_rejected: BTreeMap::new(),
            cache: DiscoveryCache::new(),
        };
        let first = recompute.run_once();
        let (tx, groups) = watch::channel(Arc::new(first.groups));
        let loop_task = tokio::spawn(
            async move { recompute.run(tx).await }.instrument(info_span!("kubernetes_discovery")),
        );
        Self {
            groups,
            metadata,
            tasks: vec![
                pods_task,
                services_task,
                namespaces_task,
                pm_task,
                sm_task,
                loop_task,
            ],
        }
    }

    /// The current scrape groups; changes whenever targets change.
    pub fn groups(&self) -> watch::Receiver<Arc<Vec<ScrapeGroup>>> {
        self.groups.clone()
    }

    /// Pod metadata of this node's containers, for identity enrichment.
    pub fn metadata(&self) -> PodMetadata {
        self.metadata.clone()
    }

    /// Waits for every task to end (after the shutdown token is cancelled).
    pub async fn wait(self) {
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

struct Stores {
    pods: Store<Pod>,
    services: Store<Service>,
    namespaces: Store<Namespace>,
    pod_monitors: Store<PodMonitor>,
    service_monitors: Store<ServiceMonitor>,
}

/// A watch of one object by name, aborted when dropped.
struct SingleObjectWatch<K: Resource<DynamicType = ()> + Clone + 'static> {
    store: Store<K>,
    task: JoinHandle<()>,
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> Drop for SingleObjectWatch<K> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type ObjectKey = (String, String);

struct Recompute {
    client: Client,
    config: KubernetesConfig,
    placement: AgentPlacement,
    stores: Stores,
    metadata: PodMetadata,
    secrets: HashMap<ObjectKey, SingleObjectWatch<Secret>>,
    config_maps: HashMap<ObjectKey, SingleObjectWatch<ConfigMap>>,
    endpoints: HashMap<ObjectKey, SingleObjectWatch<Endpoints>>,
    node: Option<SingleObjectWatch<Node>>,
    changed: Arc<Notify>,
    shutdown: CancellationToken,
    last_rejected: BTreeMap<String, RejectedMonitor>,
    /// What the next computation may reuse from the last.
    cache: DiscoveryCache,
}

impl Recompute {
    async fn run(mut self, tx: watch::Sender<Arc<Vec<ScrapeGroup>>>) {
        let debounce = self.config.debounce.as_std();
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = self.changed.notified() => {}
            }
            // Let a burst of changes (a rollout, a relist) settle into one recomputation.
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = tokio::time::sleep(debounce) => {}
            }
            let d = self.run_once();
            tx.send_if_modified(|current| {
                if **current == d.groups {
                    false
                } else {
                    *current = Arc::new(d.groups);
                    true
                }
            });
        }
    }

    fn run_once(&mut self) -> Discovered {
        let mut state = ClusterState {
            pods: self.stores.pods.state(),
            services: self.stores.services.state(),
            endpoints: Vec::new(),
            namespaces: self.stores.namespaces.state(),
            service_monitors: self.stores.service_monitors.state(),
            pod_monitors: self.stores.pod_monitors.state(),
            node: None,
        };
        self.metadata.rebuild(state.pods.iter().map(|p| p.as_ref()));
        self.update_secret_watches(&state);
        let placement = self.placement.clone();
        let (wanted, wants_node) = {
            let secrets = StoreSecrets {
                secrets: &self.secrets,
                config_maps: &self.config_maps,
            };
            let env = Environment {
                config: &self.config,
                node_name: &placement.node_name,
                own_namespace: &placement.namespace,
                secrets: &secrets,
            };
            (wanted_endpoints(&state, &env), wants_node(&state, &env))
        };
        match (&self.node, wants_node) {
            (None, true) => self.node = Some(self.watch_node()),
            (Some(_), false) => self.node = None,
            _ => {}
        }
        state.node = self
            .node
            .as_ref()
            .and_then(|w| w.store.state().into_iter().next());
        self.endpoints.retain(|k, _| wanted.contains(k));
        for key in wanted {
            if !self.endpoints.contains_key(&key) {
                let w = self.watch_one::<Endpoints>(&key, "endpoints");
                self.endpoints.insert(key, w);
            }
        }
        state.endpoints = self
            .endpoints
            .values()
            .flat_map(|w| w.store.state())
            .collect();
        let secrets = StoreSecrets {
            secrets: &self.secrets,
            config_maps: &self.config_maps,
        };
        let d = discover_with(
            &state,
            &Environment {
                config: &self.config,
                node_name: &placement.node_name,
                own_namespace: &placement.namespace,
                secrets: &secrets,
            },
            &mut self.cache,
        );
        self.report(&d);
        d
    }

    fn report(&mut self, d: &Discovered) {
        let r = registry();
        r.counter(
            "nodemeter_kubernetes_recomputations_total",
            "Times the scrape groups were recomputed from the Kubernetes stores.",
            &[],
        )
        .inc();
        r.gauge(
            "nodemeter_kubernetes_scrape_groups",
            "Scrape groups (monitor endpoints) in use on this node.",
            &[],
        )
        .set(d.groups.len() as f64);
        r.gauge(
            "nodemeter_kubernetes_candidate_targets",
            "Targets on this node before relabeling, over all scrape groups.",
            &[],
        )
        .set(d.groups.iter().map(|g| g.targets.len()).sum::<usize>() as f64);
        let mut counts: BTreeMap<(MonitorKind, RejectReason), usize> = BTreeMap::new();
        for rej in &d.rejected {
            *counts
                .entry((rej.monitor.kind, rej.rejection.reason))
                .or_default() += 1;
        }
        for kind in [MonitorKind::PodMonitor, MonitorKind::ServiceMonitor] {
            for reason in RejectReason::ALL {
                r.gauge(
                    "nodemeter_monitors_rejected",
                    "Monitors currently not used because prometheus-operator would reject them.",
                    &[("kind", kind.as_str()), ("reason", reason.as_str())],
                )
                .set(counts.get(&(kind, reason)).copied().unwrap_or(0) as f64);
            }
        }
        // Log a rejection when it appears or changes, not on every recomputation.
        let now: BTreeMap<String, RejectedMonitor> = d
            .rejected
            .iter()
            .map(|r| (r.monitor.to_string(), r.clone()))
            .collect();
        for (key, rej) in &now {
            if self.last_rejected.get(key) != Some(rej) {
                warn!(
                    monitor = %key,
                    reason = rej.rejection.reason.as_str(),
                    "monitor rejected, none of its endpoints is scraped: {}",
                    rej.rejection.detail
                );
            }
        }
        for key in self.last_rejected.keys() {
            if !now.contains_key(key) {
                info!(monitor = %key, "monitor no longer rejected");
            }
        }
        self.last_rejected = now;
    }

    /// Starts watches for the Secrets and ConfigMaps that monitors reference and stops the
    /// ones no longer referenced.
    fn update_secret_watches(&mut self, state: &ClusterState) {
        let mut secrets = BTreeSet::new();
        let mut config_maps = BTreeSet::new();
        for m in &state.service_monitors {
            let ns = m.metadata.namespace.clone().unwrap_or_default();
            let mut refs = Refs::new(&ns, &mut secrets, &mut config_maps);
            for ep in &m.spec.endpoints {
                refs.endpoint(&ep.common);
                if let Some(t) = &ep.tls_config {
                    refs.tls(&t.safe);
                }
            }
        }
        for m in &state.pod_monitors {
            let ns = m.metadata.namespace.clone().unwrap_or_default();
            let mut refs = Refs::new(&ns, &mut secrets, &mut config_maps);
            for ep in &m.spec.pod_metrics_endpoints {
                refs.endpoint(&ep.common);
                if let Some(t) = &ep.tls_config {
                    refs.tls(t);
                }
            }
        }
        self.secrets.retain(|k, _| secrets.contains(k));
        self.config_maps.retain(|k, _| config_maps.contains(k));
        for key in secrets {
            if !self.secrets.contains_key(&key) {
                let w = self.watch_one::<Secret>(&key, "secret");
                self.secrets.insert(key, w);
            }
        }
        for key in config_maps {
            if !self.config_maps.contains_key(&key) {
                let w = self.watch_one::<ConfigMap>(&key, "configmap");
                self.config_maps.insert(key, w);
            }
        }
    }

    /// This node's Node object, for `attachMetadata.node`.
    fn watch_node(&self) -> SingleObjectWatch<Node> {
        let (store, task) = reflect(
            Api::<Node>::all(self.client.clone()),
            watcher::Config::default()
                .fields(&format!("metadata.name={}", self.placement.node_name)),
            "node",
            &self.changed,
            &self.shutdown,
        );
        SingleObjectWatch { store, task }
    }

    fn watch_one<K>(&self, (ns, name): &ObjectKey, what: &'static str) -> SingleObjectWatch<K>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Debug
            + Send
            + Sync
            + 'static,
    {
        let (store, task) = reflect(
            Api::<K>::namespaced(self.client.clone(), ns),
            watcher::Config::default().fields(&format!("metadata.name={name}")),
            what,
            &self.changed,
            &self.shutdown,
        );
        SingleObjectWatch { store, task }
    }
}

/// Collects the Secret/ConfigMap names a monitor's endpoints reference (always in the
/// monitor's own namespace).
struct Refs<'a> {
    namespace: &'a str,
    secrets: &'a mut BTreeSet<ObjectKey>,
    config_maps: &'a mut BTreeSet<ObjectKey>,
}

impl<'a> Refs<'a> {
    fn new(
        namespace: &'a str,
        secrets: &'a mut BTreeSet<ObjectKey>,
        config_maps: &'a mut BTreeSet<ObjectKey>,
    ) -> Self {
        Self {
            namespace,
            secrets,
            config_maps,
        }
    }

    fn secret(&mut self, s: &SecretKeySelector) {
        self.secrets
            .insert((self.namespace.to_string(), s.name.clone()));
    }

    fn either(&mut self, s: &SecretOrConfigMap) {
        if let Some(sel) = &s.secret {
            self.secret(sel);
        }
        if let Some(cm) = &s.config_map {
            self.config_maps
                .insert((self.namespace.to_string(), cm.name.clone()));
        }
    }

    fn tls(&mut self, t: &SafeTlsConfig) {
        for s in [&t.ca, &t.cert].into_iter().flatten() {
            self.either(s);
        }
        if let Some(k) = &t.key_secret {
            self.secret(k);
        }
    }

    fn endpoint(&mut self, ep: &EndpointCommon) {
        if let Some(s) = &ep.bearer_token_secret {
            self.secret(s);
        }
        if let Some(s) = ep
            .authorization
            .as_ref()
            .and_then(|a| a.credentials.as_ref())
        {
            self.secret(s);
        }
        if let Some(b) = &ep.basic_auth {
            for s in [&b.username, &b.password].into_iter().flatten() {
                self.secret(s);
            }
        }
        if let Some(o) = &ep.oauth2 {
            self.either(&o.client_id);
            if let Some(s) = &o.client_secret {
                self.secret(s);
            }
            if let Some(t) = &o.tls_config {
                self.tls(t);
            }
            for s in o.proxy.proxy_connect_header.values().flatten() {
                self.secret(s);
            }
        }
        for s in ep.proxy.proxy_connect_header.values().flatten() {
            self.secret(s);
        }
    }
}

struct StoreSecrets<'a> {
    secrets: &'a HashMap<ObjectKey, SingleObjectWatch<Secret>>,
    config_maps: &'a HashMap<ObjectKey, SingleObjectWatch<ConfigMap>>,
}

impl SecretSource for StoreSecrets<'_> {
    fn secret_value(&self, namespace: &str, name: &str, key: &str) -> Option<Vec<u8>> {
        let w = self
            .secrets
            .get(&(namespace.to_string(), name.to_string()))?;
        let secret = w.store.state().into_iter().next()?;
        if let Some(v) = secret.data.as_ref().and_then(|d| d.get(key)) {
            return Some(v.0.clone());
        }
        secret
            .string_data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|s| s.as_bytes().to_vec())
    }

    fn config_map_value(&self, namespace: &str, name: &str, key: &str) -> Option<String> {
        let w = self
            .config_maps
            .get(&(namespace.to_string(), name.to_string()))?;
        let cm = w.store.state().into_iter().next()?;
        cm.data.as_ref().and_then(|d| d.get(key)).cloned()
    }
}

/// Runs `watcher → reflector` for one resource in a task: default backoff on errors,
/// managed fields stripped (they are most of an object's bytes and nothing reads them),
/// `changed` notified on every change.
fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
    what: &'static str,
    changed: &Arc<Notify>,
    shutdown: &CancellationToken,
) -> (Store<K>, JoinHandle<()>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    // Lists at resourceVersion=0 are served from the API server's watch cache, not by a
    // quorum read from etcd: thousands of agents relisting after an API-server restart must
    // not all reach etcd.
    let stream = watcher(api, config.any_semantic())
        .default_backoff()
        .modify(|o: &mut K| o.meta_mut().managed_fields = None)
        .reflect(writer);
    let changed = Arc::clone(changed);
    let shutdown = shutdown.clone();
    let errors = registry().counter(
        "nodemeter_kubernetes_watch_errors_total",
        "Failed list or watch requests to the Kubernetes API server (retried with backoff).",
        &[("resource", what)],
    );
    let task = tokio::spawn(
        async move {
            let mut stream = std::pin::pin!(stream);
            loop {
                let event = tokio::select! {
                    () = shutdown.cancelled() => return,
                    e = stream.next() => e,
                };
                match event {
                    None => return,
                    Some(Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone)) => {
                        changed.notify_one();
                    }
                    Some(Ok(watcher::Event::Init | watcher::Event::InitApply(_))) => {}
                    Some(Err(e)) => {
                        errors.inc();
                        warn!(resource = what, error = %e, "kubernetes watch failed; retrying with backoff");
                    }
                }
            }
        }
        .instrument(info_span!("kubernetes_watch", resource = what)),
    );
    (reader, task)
}
