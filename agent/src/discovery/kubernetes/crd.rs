//! `monitoring.coreos.com/v1` PodMonitor and ServiceMonitor as prometheus-operator defines
//! them (spec §1), with the operator-side validation that decides whether a monitor is used.
//!
//! Decoding never fails because of a monitor's `spec`: a spec of the wrong shape is kept as
//! [`ServiceMonitor::decode_error`] so that one broken object is rejected on its own instead
//! of breaking the list/watch of every monitor in the cluster.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{ConfigMapKeySelector, SecretKeySelector};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Deserializer, Serialize};

pub use crate::relabel::MonitorRelabelConfig;

/// API group of the monitor CRDs.
pub const GROUP: &str = "monitoring.coreos.com";
/// API version of the monitor CRDs.
pub const VERSION: &str = "v1";

/// A ServiceMonitor: scrape the endpoints of Services selected by label.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ServiceMonitor {
    pub metadata: ObjectMeta,
    pub spec: ServiceMonitorSpec,
    /// Why `spec` could not be decoded (then `spec` is the default and the monitor is
    /// rejected by validation).
    #[serde(skip)]
    pub decode_error: Option<String>,
}

/// A PodMonitor: scrape Pods selected by label.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PodMonitor {
    pub metadata: ObjectMeta,
    pub spec: PodMonitorSpec,
    /// Why `spec` could not be decoded.
    #[serde(skip)]
    pub decode_error: Option<String>,
}

/// Fields shared by both monitor kinds (spec §1.2/§1.3).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MonitorSpecCommon {
    /// Label of the Service (SM) or Pod (PM) whose value becomes `job`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub job_label: String,
    /// Pod labels copied to every target.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pod_target_labels: Vec<String>,
    /// Selects Services (SM) or Pods (PM) by label. Required.
    pub selector: Option<LabelSelector>,
    /// `RelabelConfig` (default) or `RoleSelector`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector_mechanism: Option<String>,
    /// Namespaces to look in; default: the monitor's own.
    pub namespace_selector: NamespaceSelector,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_name_length_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_value_length_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_dropped_targets: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attach_metadata: Option<AttachMetadata>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scrape_protocols: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_scrape_protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrape_class: Option<String>,
    /// `ByteSize`, e.g. `10MiB`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_size_limit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrape_native_histograms: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrape_classic_histograms: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub native_histogram_bucket_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub native_histogram_min_bucket_factor: Option<Quantity>,
    #[serde(rename = "convertClassicHistogramsToNHCB")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub convert_classic_histograms_to_nhcb: Option<bool>,
}

/// `ServiceMonitor.spec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceMonitorSpec {
    #[serde(flatten)]
    pub common: MonitorSpecCommon,
    /// Service labels copied to every target.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub target_labels: Vec<String>,
    /// One scrape job per element. Required.
    pub endpoints: Vec<Endpoint>,
    /// `Endpoints` or `EndpointSlice`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_discovery_role: Option<String>,
}

/// `PodMonitor.spec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodMonitorSpec {
    #[serde(flatten)]
    pub common: MonitorSpecCommon,
    /// One scrape job per element; empty means no jobs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pod_metrics_endpoints: Vec<PodMetricsEndpoint>,
}

/// `namespaceSelector`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NamespaceSelector {
    /// All namespaces; wins over `matchNames`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub any: bool,
    /// These namespaces; empty (and not `any`) means the monitor's own namespace.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub match_names: Vec<String>,
}

/// `attachMetadata`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AttachMetadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<bool>,
}

/// Endpoint fields shared by ServiceMonitor `endpoints[]` and PodMonitor
/// `podMetricsEndpoints[]` (spec §1.4/§1.5).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EndpointCommon {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, Vec<String>>,
    /// Prometheus duration; empty: the global scrape interval.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub interval: String,
    /// Prometheus duration; empty: the global timeout capped at the interval.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scrape_timeout: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token_secret: Option<SecretKeySelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<SafeAuthorization>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub honor_labels: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub honor_timestamps: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub track_timestamps_staleness: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub relabelings: Vec<MonitorRelabelConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metric_relabelings: Vec<MonitorRelabelConfig>,
    #[serde(flatten)]
    pub proxy: ProxyConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follow_redirects: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_http2: Option<bool>,
    /// Drop pods in phase Failed/Succeeded; default true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter_running: Option<bool>,
}

/// ServiceMonitor `spec.endpoints[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Endpoint {
    /// Service port name; wins over `targetPort`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub port: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_port: Option<IntOrString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    /// Deprecated; a path inside the agent's container.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub bearer_token_file: String,
    #[serde(flatten)]
    pub common: EndpointCommon,
}

/// PodMonitor `spec.podMetricsEndpoints[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodMetricsEndpoint {
    /// Container port name; wins over `portNumber` and `targetPort`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_number: Option<i32>,
    /// Deprecated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_port: Option<IntOrString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<SafeTlsConfig>,
    #[serde(flatten)]
    pub common: EndpointCommon,
}

/// A key of a Secret or of a ConfigMap.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SecretOrConfigMap {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretKeySelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapKeySelector>,
}

/// `SafeTLSConfig`: TLS from secrets and configmaps only.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SafeTlsConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca: Option<SecretOrConfigMap>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<SecretOrConfigMap>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_secret: Option<SecretKeySelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verify: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_version: Option<String>,
}

/// `TLSConfig`: [`SafeTlsConfig`] plus file paths (ServiceMonitor only).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TlsConfig {
    #[serde(flatten)]
    pub safe: SafeTlsConfig,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ca_file: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cert_file: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key_file: String,
}

/// `SafeAuthorization`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SafeAuthorization {
    /// Default `Bearer`; `Basic` is rejected.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<SecretKeySelector>,
}

/// `BasicAuth`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BasicAuth {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<SecretKeySelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretKeySelector>,
}

/// `OAuth2` client credentials.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OAuth2 {
    pub client_id: SecretOrConfigMap,
    pub client_secret: Option<SecretKeySelector>,
    pub token_url: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoint_params: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<SafeTlsConfig>,
    #[serde(flatten)]
    pub proxy: ProxyConfig,
}

/// `ProxyConfig`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProxyConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_proxy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_from_environment: Option<bool>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub proxy_connect_header: BTreeMap<String, Vec<SecretKeySelector>>,
}

#[derive(Deserialize)]
struct RawObject {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: serde_json::Value,
}

fn decode_spec<S: serde::de::DeserializeOwned + Default>(
    v: serde_json::Value,
) -> (S, Option<String>) {
    let v = if v.is_null() {
        serde_json::Value::Object(Default::default())
    } else {
        v
    };
    match serde_path_to_error::deserialize::<_, S>(v) {
        Ok(s) => (s, None),
        Err(e) => (
            S::default(),
            Some(format!("spec.{}: {}", e.path(), e.inner())),
        ),
    }
}

impl<'de> Deserialize<'de> for ServiceMonitor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawObject::deserialize(d)?;
        let (spec, decode_error) = decode_spec(raw.spec);
        Ok(Self {
            metadata: raw.metadata,
            spec,
            decode_error,
        })
    }
}

impl<'de> Deserialize<'de> for PodMonitor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawObject::deserialize(d)?;
        let (spec, decode_error) = decode_spec(raw.spec);
        Ok(Self {
            metadata: raw.metadata,
            spec,
            decode_error,
        })
    }
}

macro_rules! monitor_resource {
    ($ty:ty, $kind:literal, $plural:literal) => {
        impl kube::Resource for $ty {
            type DynamicType = ();
            type Scope = NamespaceResourceScope;

            fn kind(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($kind)
            }
            fn group(_: &()) -> Cow<'_, str> {
                Cow::Borrowed(GROUP)
            }
            fn version(_: &()) -> Cow<'_, str> {
                Cow::Borrowed(VERSION)
            }
            fn plural(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($plural)
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

monitor_resource!(ServiceMonitor, "ServiceMonitor", "servicemonitors");
monitor_resource!(PodMonitor, "PodMonitor", "podmonitors");

/// The two monitor kinds, as they appear in job names, logs and self-metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MonitorKind {
    ServiceMonitor,
    PodMonitor,
}

impl MonitorKind {
    /// The kind as in the API (`ServiceMonitor`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServiceMonitor => "ServiceMonitor",
            Self::PodMonitor => "PodMonitor",
        }
    }

    /// The job-name prefix the operator uses (`serviceMonitor`).
    pub fn job_prefix(self) -> &'static str {
        match self {
            Self::ServiceMonitor => "serviceMonitor",
            Self::PodMonitor => "podMonitor",
        }
    }
}
