//! `scrape_configs[]` with Prometheus's key names and defaults, so a Prometheus (agent) config
//! file runs unchanged. Keys Prometheus knows and nodemeter does not support yet are accepted
//! by the parser only to be rejected by [`ScrapeConfig::validate`] with their name: a config
//! never loses meaning silently.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::config::{Duration, GlobalConfig, GlobalLimits};
use crate::relabel::{RelabelConfig, Rules, deserialize_rule_list};

/// `http` or `https`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    #[default]
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

/// One of Prometheus's `scrape_protocols` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScrapeProtocol {
    PrometheusProto,
    OpenMetricsText0_0_1,
    OpenMetricsText1_0_0,
    PrometheusText0_0_4,
    PrometheusText1_0_0,
}

impl ScrapeProtocol {
    pub const NAMES: [(&'static str, ScrapeProtocol); 5] = [
        ("PrometheusProto", Self::PrometheusProto),
        ("OpenMetricsText0.0.1", Self::OpenMetricsText0_0_1),
        ("OpenMetricsText1.0.0", Self::OpenMetricsText1_0_0),
        ("PrometheusText0.0.4", Self::PrometheusText0_0_4),
        ("PrometheusText1.0.0", Self::PrometheusText1_0_0),
    ];

    /// Prometheus 3's default list without native histograms.
    pub const DEFAULT: [ScrapeProtocol; 4] = [
        Self::OpenMetricsText1_0_0,
        Self::OpenMetricsText0_0_1,
        Self::PrometheusText1_0_0,
        Self::PrometheusText0_0_4,
    ];

    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, p)| *p == self)
            .map_or("", |(n, _)| n)
    }

    /// The media type with parameters as it appears in `Accept` (without the weight).
    pub fn media_type(self) -> &'static str {
        match self {
            Self::PrometheusProto => {
                "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
            }
            Self::OpenMetricsText0_0_1 => "application/openmetrics-text;version=0.0.1",
            Self::OpenMetricsText1_0_0 => {
                "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8"
            }
            Self::PrometheusText0_0_4 => "text/plain;version=0.0.4",
            Self::PrometheusText1_0_0 => "text/plain;version=1.0.0;escaping=allow-utf-8",
        }
    }
}

impl Serialize for ScrapeProtocol {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for ScrapeProtocol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, p)| *p)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "unknown scrape protocol {s:?}, supported: {}",
                    Self::NAMES.map(|(n, _)| n).join(", ")
                ))
            })
    }
}

/// A size in Prometheus's base-2 notation (`10MB` = 10 MiB, `512KiB`, `1GB`), or `0` for none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

const BYTE_UNITS: [(&str, u64); 13] = [
    ("B", 1),
    ("KB", 1 << 10),
    ("KiB", 1 << 10),
    ("MB", 1 << 20),
    ("MiB", 1 << 20),
    ("GB", 1 << 30),
    ("GiB", 1 << 30),
    ("TB", 1 << 40),
    ("TiB", 1 << 40),
    ("PB", 1 << 50),
    ("PiB", 1 << 50),
    ("EB", 1 << 60),
    ("EiB", 1 << 60),
];

impl ByteSize {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s == "0" {
            return Ok(Self(0));
        }
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("size {s:?} has no unit (expected e.g. 10MB, 512KiB)"))?;
        let (num, unit) = s.split_at(split);
        let factor = BYTE_UNITS
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, f)| *f)
            .ok_or_else(|| format!("size {s:?} has an unknown unit {unit:?}"))?;
        let n: f64 = num
            .parse()
            .map_err(|_| format!("size {s:?} is not a number followed by a unit"))?;
        let bytes = n * factor as f64;
        if !(0.0..=u64::MAX as f64).contains(&bytes) {
            return Err(format!("size {s:?} out of range"));
        }
        Ok(Self(bytes as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0");
        }
        for (unit, factor) in BYTE_UNITS.iter().rev().step_by(2) {
            if self.0.is_multiple_of(*factor) {
                return write!(f, "{}{unit}", self.0 / factor);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(0) => Ok(Self(0)),
            Raw::Int(n) => Err(serde::de::Error::custom(format!(
                "size {n} has no unit (expected e.g. 10MB, 512KiB)"
            ))),
            Raw::Str(s) => Self::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// A secret given inline in the config. Never printed.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

/// `basic_auth`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// File holding the user name (re-read for every scrape).
    pub username_file: String,
    /// Password.
    pub password: Secret,
    /// File holding the password (re-read for every scrape).
    pub password_file: String,
}

/// `authorization`: an `Authorization: <type> <credentials>` header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Authorization {
    /// The scheme word (`Bearer` unless set).
    #[serde(rename = "type")]
    pub kind: String,
    /// The credentials.
    pub credentials: Secret,
    /// File holding the credentials (re-read for every scrape).
    pub credentials_file: String,
}

impl Default for Authorization {
    fn default() -> Self {
        Self {
            kind: "Bearer".into(),
            credentials: Secret::default(),
            credentials_file: String::new(),
        }
    }
}

/// `tls_config`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM file of the CA certificates that may sign the target's certificate (empty: the
    /// system's roots).
    pub ca_file: String,
    /// The same as inline PEM.
    pub ca: String,
    /// PEM client certificate for mutual TLS.
    pub cert_file: String,
    /// The same as inline PEM.
    pub cert: String,
    /// PEM private key of the client certificate.
    pub key_file: String,
    /// The same as inline PEM.
    pub key: Secret,
    /// Name the target's certificate must be valid for, instead of the host of the URL.
    pub server_name: String,
    /// Accept any certificate (no verification at all).
    pub insecure_skip_verify: bool,
    /// Lowest TLS version (`TLS12` or `TLS13`; empty: TLS 1.2).
    pub min_version: String,
}

/// `static_configs[]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StaticConfig {
    /// `host:port` of each target (the `__address__` label).
    pub targets: Vec<String>,
    /// Labels attached to every target of this group.
    pub labels: BTreeMap<String, String>,
}

/// `file_sd_configs[]`: target groups read from JSON or YAML files in Prometheus's file SD
/// format, re-read when they change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileSdConfig {
    /// File paths; the last path element may be a glob (`targets/*.yml`).
    pub files: Vec<String>,
    /// How often to re-read the files even without a change notification.
    pub refresh_interval: Duration,
}

impl Default for FileSdConfig {
    fn default() -> Self {
        Self {
            files: Vec::new(),
            refresh_interval: Duration::from_secs(300),
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_metrics_path() -> String {
    "/metrics".into()
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// One `scrape_configs[]` entry. Keys, meanings and defaults are Prometheus's (start from
/// [`ScrapeConfig::new`]: the derived `Default` has Rust's defaults, not Prometheus's).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// The `job` label of every target; unique among scrape configs.
    pub job_name: String,
    /// How often to scrape (default: `global.scrape_interval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_interval: Option<Duration>,
    /// Per-scrape deadline, covering the whole request and body (default: the smaller of
    /// `global.scrape_timeout` and the interval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_timeout: Option<Duration>,
    /// Media types asked for, in order of preference (default: OpenMetrics then text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_protocols: Option<Vec<ScrapeProtocol>>,
    /// Parser to use when a target sends no usable Content-Type (default: fail the scrape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_scrape_protocol: Option<ScrapeProtocol>,
    /// HTTP path of the metrics.
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    /// `http` or `https`.
    #[serde(default)]
    pub scheme: Scheme,
    /// URL query parameters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, Vec<String>>,
    /// Keep the target's own labels when they conflict with target labels (instead of
    /// renaming them `exported_<name>`).
    #[serde(default)]
    pub honor_labels: bool,
    /// Use timestamps the target exposes (instead of the scrape time).
    #[serde(default = "default_true")]
    pub honor_timestamps: bool,
    /// Mark series with exposed timestamps stale when they disappear, too.
    #[serde(default)]
    pub track_timestamps_staleness: bool,
    /// Ask for gzip (`Accept-Encoding: gzip`).
    #[serde(default = "default_true")]
    pub enable_compression: bool,
    /// Largest accepted (decompressed) body; reaching it fails the scrape (`0`: the agent's
    /// `scrape.max_body_size`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub body_size_limit: ByteSize,
    /// Samples per scrape after metric relabeling above which the scrape fails (0: none).
    #[serde(default, skip_serializing_if = "is_default")]
    pub sample_limit: u64,
    /// Labels per series above which the scrape fails (0: none).
    #[serde(default, skip_serializing_if = "is_default")]
    pub label_limit: u64,
    /// Label name length in bytes above which the scrape fails (0: none).
    #[serde(default, skip_serializing_if = "is_default")]
    pub label_name_length_limit: u64,
    /// Label value length in bytes above which the scrape fails (0: none).
    #[serde(default, skip_serializing_if = "is_default")]
    pub label_value_length_limit: u64,
    /// Targets of this job after relabeling above which every target fails (0: none).
    #[serde(default, skip_serializing_if = "is_default")]
    pub target_limit: u64,
    /// Dropped targets kept for display; accepted for compatibility (no effect on data).
    #[serde(default, skip_serializing_if = "is_default")]
    pub keep_dropped_targets: u64,
    /// Fixed target lists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub static_configs: Vec<StaticConfig>,
    /// Target lists read from files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_sd_configs: Vec<FileSdConfig>,
    /// Rules applied to each discovered target's labels.
    #[serde(
        default,
        deserialize_with = "deserialize_rule_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub relabel_configs: Vec<RelabelConfig>,
    /// Rules applied to each scraped series.
    #[serde(
        default,
        deserialize_with = "deserialize_rule_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub metric_relabel_configs: Vec<RelabelConfig>,

    // HTTP client settings (Prometheus's `HTTPClientConfig`, inlined).
    /// Basic authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// Authorization header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    /// Bearer token (the older spelling of `authorization.credentials`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<Secret>,
    /// File holding a bearer token (re-read for every scrape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<String>,
    /// TLS settings for `https` targets.
    #[serde(default, skip_serializing_if = "is_default")]
    pub tls_config: TlsConfig,
    /// HTTP proxy for every request of this job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
    /// Follow HTTP redirects.
    #[serde(default = "default_true")]
    pub follow_redirects: bool,
    /// Allow HTTP/2 (negotiated by TLS ALPN).
    #[serde(default = "default_true")]
    pub enable_http2: bool,

    // Prometheus keys nodemeter does not implement yet: accepted by the parser only so that
    // validation can name them.
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub oauth2: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub no_proxy: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub proxy_from_environment: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub proxy_connect_header: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub http_headers: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub scrape_native_histograms: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub native_histogram_bucket_limit: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub native_histogram_min_bucket_factor: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub always_scrape_classic_histograms: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub scrape_classic_histograms: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub convert_classic_histograms_to_nhcb: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub metric_name_validation_scheme: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub metric_name_escaping_scheme: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub scrape_failure_log_file: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub kubernetes_sd_configs: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub consul_sd_configs: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub dns_sd_configs: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub http_sd_configs: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub ec2_sd_configs: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub azure_sd_configs: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub gce_sd_configs: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub docker_sd_configs: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub dockerswarm_sd_configs: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub openstack_sd_configs: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub nomad_sd_configs: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub eureka_sd_configs: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub digitalocean_sd_configs: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub hetzner_sd_configs: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub linode_sd_configs: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub marathon_sd_configs: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub serverset_sd_configs: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub triton_sd_configs: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub scaleway_sd_configs: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub puppetdb_sd_configs: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub uyuni_sd_configs: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub vultr_sd_configs: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub ionos_sd_configs: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub lightsail_sd_configs: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub kuma_sd_configs: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub ovhcloud_sd_configs: Option<serde_yaml::Value>,
    /// Not supported yet.
    #[serde(default, skip_serializing)]
    pub stackit_sd_configs: Option<serde_yaml::Value>,
}

impl ScrapeConfig {
    /// A config with every default, for `job_name` (tests and generated configs start here).
    pub fn new(job_name: &str) -> Self {
        Self {
            job_name: job_name.to_string(),
            metrics_path: default_metrics_path(),
            honor_timestamps: true,
            enable_compression: true,
            follow_redirects: true,
            enable_http2: true,
            ..Self::default()
        }
    }

    /// Names and values of the Prometheus keys this version does not implement.
    fn unsupported_keys(&self) -> Vec<&'static str> {
        let keys: [(&'static str, bool); 43] = [
            ("oauth2", self.oauth2.is_some()),
            ("no_proxy", self.no_proxy.is_some()),
            (
                "proxy_from_environment",
                self.proxy_from_environment.is_some(),
            ),
            ("proxy_connect_header", self.proxy_connect_header.is_some()),
            ("http_headers", self.http_headers.is_some()),
            (
                "scrape_native_histograms",
                self.scrape_native_histograms.is_some(),
            ),
            (
                "native_histogram_bucket_limit",
                self.native_histogram_bucket_limit.is_some(),
            ),
            (
                "native_histogram_min_bucket_factor",
                self.native_histogram_min_bucket_factor.is_some(),
            ),
            (
                "always_scrape_classic_histograms",
                self.always_scrape_classic_histograms.is_some(),
            ),
            (
                "scrape_classic_histograms",
                self.scrape_classic_histograms.is_some(),
            ),
            (
                "convert_classic_histograms_to_nhcb",
                self.convert_classic_histograms_to_nhcb.is_some(),
            ),
            (
                "metric_name_validation_scheme",
                self.metric_name_validation_scheme.is_some(),
            ),
            (
                "metric_name_escaping_scheme",
                self.metric_name_escaping_scheme.is_some(),
            ),
            (
                "scrape_failure_log_file",
                self.scrape_failure_log_file.is_some(),
            ),
            (
                "kubernetes_sd_configs",
                self.kubernetes_sd_configs.is_some(),
            ),
            ("consul_sd_configs", self.consul_sd_configs.is_some()),
            ("dns_sd_configs", self.dns_sd_configs.is_some()),
            ("http_sd_configs", self.http_sd_configs.is_some()),
            ("ec2_sd_configs", self.ec2_sd_configs.is_some()),
            ("azure_sd_configs", self.azure_sd_configs.is_some()),
            ("gce_sd_configs", self.gce_sd_configs.is_some()),
            ("docker_sd_configs", self.docker_sd_configs.is_some()),
            (
                "dockerswarm_sd_configs",
                self.dockerswarm_sd_configs.is_some(),
            ),
            ("openstack_sd_configs", self.openstack_sd_configs.is_some()),
            ("nomad_sd_configs", self.nomad_sd_configs.is_some()),
            ("eureka_sd_configs", self.eureka_sd_configs.is_some()),
            (
                "digitalocean_sd_configs",
                self.digitalocean_sd_configs.is_some(),
            ),
            ("hetzner_sd_configs", self.hetzner_sd_configs.is_some()),
            ("linode_sd_configs", self.linode_sd_configs.is_some()),
            ("marathon_sd_configs", self.marathon_sd_configs.is_some()),
            ("serverset_sd_configs", self.serverset_sd_configs.is_some()),
            ("triton_sd_configs", self.triton_sd_configs.is_some()),
            ("scaleway_sd_configs", self.scaleway_sd_configs.is_some()),
            ("puppetdb_sd_configs", self.puppetdb_sd_configs.is_some()),
            ("uyuni_sd_configs", self.uyuni_sd_configs.is_some()),
            ("vultr_sd_configs", self.vultr_sd_configs.is_some()),
            ("ionos_sd_configs", self.ionos_sd_configs.is_some()),
            ("lightsail_sd_configs", self.lightsail_sd_configs.is_some()),
            ("kuma_sd_configs", self.kuma_sd_configs.is_some()),
            ("ovhcloud_sd_configs", self.ovhcloud_sd_configs.is_some()),
            ("stackit_sd_configs", self.stackit_sd_configs.is_some()),
            (
                "fallback_scrape_protocol",
                self.fallback_scrape_protocol == Some(ScrapeProtocol::PrometheusProto),
            ),
            (
                "tls_config.min_version",
                !matches!(self.tls_config.min_version.as_str(), "" | "TLS12" | "TLS13"),
            ),
        ];
        keys.into_iter()
            .filter(|(_, set)| *set)
            .map(|(k, _)| k)
            .collect()
    }

    /// The effective interval, given the global defaults.
    pub fn interval(&self, global: &GlobalConfig) -> Duration {
        match self.scrape_interval {
            Some(d) if !d.as_std().is_zero() => d,
            _ => global.scrape_interval,
        }
    }

    /// The effective timeout: set, or the smaller of the global timeout and the interval.
    pub fn timeout(&self, global: &GlobalConfig) -> Duration {
        match self.scrape_timeout {
            Some(d) if !d.as_std().is_zero() => d,
            _ => global.scrape_timeout.min(self.interval(global)),
        }
    }

    /// The protocols asked for, in order: the job's, else `global`'s, else Prometheus's.
    pub fn protocols(&self, global: &GlobalConfig) -> Vec<ScrapeProtocol> {
        self.scrape_protocols
            .clone()
            .or_else(|| global.scrape_protocols.clone())
            .unwrap_or_else(|| ScrapeProtocol::DEFAULT.to_vec())
    }

    /// The limits in effect with Prometheus's precedence: the job's own unless 0, then
    /// `global`'s (so a job cannot lift a global limit by setting 0).
    pub fn limits(&self, global: &GlobalConfig) -> GlobalLimits {
        let g = &global.limits;
        let inherit = |own: u64, global: u64| if own == 0 { global } else { own };
        GlobalLimits {
            body_size_limit: ByteSize(inherit(self.body_size_limit.0, g.body_size_limit.0)),
            sample_limit: inherit(self.sample_limit, g.sample_limit),
            target_limit: inherit(self.target_limit, g.target_limit),
            label_limit: inherit(self.label_limit, g.label_limit),
            label_name_length_limit: inherit(
                self.label_name_length_limit,
                g.label_name_length_limit,
            ),
            label_value_length_limit: inherit(
                self.label_value_length_limit,
                g.label_value_length_limit,
            ),
            keep_dropped_targets: inherit(self.keep_dropped_targets, g.keep_dropped_targets),
        }
    }

    /// Checks what types cannot express, as Prometheus does at load time. Returns
    /// `(key path relative to this entry, message)` pairs.
    pub fn validate(&self, global: &GlobalConfig) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = Vec::new();
        let mut push = |k: &str, m: String| p.push((k.to_string(), m));
        for key in self.unsupported_keys() {
            push(key, "not supported by this version of nodemeter yet".into());
        }
        if self.job_name.is_empty() {
            push("job_name", "job_name is empty".into());
        }
        let (interval, timeout) = (self.interval(global), self.timeout(global));
        if timeout > interval {
            push(
                "scrape_timeout",
                format!(
                    "scrape timeout {timeout} greater than scrape interval {interval} for scrape config with job name {:?}",
                    self.job_name
                ),
            );
        }
        if !self.metrics_path.starts_with('/') {
            push(
                "metrics_path",
                format!("{:?} must start with '/'", self.metrics_path),
            );
        }
        if let Some(protocols) = &self.scrape_protocols {
            for (k, m) in check_protocols(protocols) {
                push(&k, m);
            }
        }
        for (i, rules) in [
            ("relabel_configs", &self.relabel_configs),
            ("metric_relabel_configs", &self.metric_relabel_configs),
        ] {
            if let Err(e) = Rules::compile(rules) {
                push(&format!("{i}[{}]", e.index), e.to_string());
            }
        }
        for (i, s) in self.static_configs.iter().enumerate() {
            for (j, t) in s.targets.iter().enumerate() {
                if t.is_empty() {
                    push(
                        &format!("static_configs[{i}].targets[{j}]"),
                        "empty target address".into(),
                    );
                }
            }
        }
        for (i, f) in self.file_sd_configs.iter().enumerate() {
            if f.files.is_empty() {
                push(
                    &format!("file_sd_configs[{i}].files"),
                    "no files given".into(),
                );
            }
            for (j, file) in f.files.iter().enumerate() {
                if let Err(m) = check_file_sd_path(file) {
                    push(&format!("file_sd_configs[{i}].files[{j}]"), m);
                }
            }
            if f.refresh_interval.as_std().is_zero() {
                push(
                    &format!("file_sd_configs[{i}].refresh_interval"),
                    "must be greater than 0".into(),
                );
            }
        }
        self.validate_http(&mut push);
        p
    }

    fn validate_http(&self, push: &mut impl FnMut(&str, String)) {
        let bearer = self.bearer_token.is_some() || self.bearer_token_file.is_some();
        if self.bearer_token.is_some() && self.bearer_token_file.is_some() {
            push(
                "bearer_token_file",
                "at most one of bearer_token & bearer_token_file must be configured".into(),
            );
        }
        if self.basic_auth.is_some() && bearer {
            push(
                "basic_auth",
                "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured".into(),
            );
        }
        if let Some(a) = &self.authorization {
            if bearer {
                push(
                    "authorization",
                    "authorization is not compatible with bearer_token & bearer_token_file".into(),
                );
            }
            if self.basic_auth.is_some() {
                push(
                    "authorization",
                    "at most one of basic_auth, oauth2 & authorization must be configured".into(),
                );
            }
            if a.kind.eq_ignore_ascii_case("basic") {
                push(
                    "authorization.type",
                    "authorization type cannot be set to \"basic\", use \"basic_auth\" instead"
                        .into(),
                );
            }
            if !a.credentials.0.is_empty() && !a.credentials_file.is_empty() {
                push(
                    "authorization.credentials_file",
                    "at most one of authorization credentials & credentials_file must be configured".into(),
                );
            }
        }
        if let Some(b) = &self.basic_auth {
            if !b.username.is_empty() && !b.username_file.is_empty() {
                push(
                    "basic_auth.username_file",
                    "at most one of basic_auth username & username_file must be configured".into(),
                );
            }
            if !b.password.0.is_empty() && !b.password_file.is_empty() {
                push(
                    "basic_auth.password_file",
                    "at most one of basic_auth password & password_file must be configured".into(),
                );
            }
        }
        let t = &self.tls_config;
        for (inline, file, name) in [
            (!t.ca.is_empty(), !t.ca_file.is_empty(), "ca"),
            (!t.cert.is_empty(), !t.cert_file.is_empty(), "cert"),
            (!t.key.0.is_empty(), !t.key_file.is_empty(), "key"),
        ] {
            if inline && file {
                push(
                    &format!("tls_config.{name}_file"),
                    format!("at most one of {name} and {name}_file must be configured"),
                );
            }
        }
        let has_cert = !t.cert.is_empty() || !t.cert_file.is_empty();
        let has_key = !t.key.0.is_empty() || !t.key_file.is_empty();
        if has_cert != has_key {
            push(
                "tls_config",
                "exactly one of key or key_file must be configured when a client certificate is configured (and vice versa)".into(),
            );
        }
        if let Some(proxy) = &self.proxy_url
            && reqwest::Url::parse(proxy).is_err()
        {
            push("proxy_url", format!("{proxy:?} is not a valid URL"));
        }
    }
}

/// A `scrape_protocols` list as Prometheus checks it (in `global` or a job). Returns
/// `(key, message)` pairs.
pub fn check_protocols(protocols: &[ScrapeProtocol]) -> Vec<(String, String)> {
    let key = "scrape_protocols".to_string();
    let mut p = Vec::new();
    if protocols.is_empty() {
        p.push((key.clone(), "must not be empty".into()));
    }
    let mut seen = HashSet::new();
    if protocols.iter().any(|proto| !seen.insert(*proto)) {
        p.push((
            key.clone(),
            format!("duplicated protocol in scrape_protocols, got {protocols:?}"),
        ));
    }
    // Protobuf exposition needs a parser nodemeter does not have.
    if protocols.contains(&ScrapeProtocol::PrometheusProto) {
        p.push((
            key,
            "PrometheusProto is not supported by this version of nodemeter yet".into(),
        ));
    }
    p
}

/// Prometheus: file SD paths end in `.json`, `.yml` or `.yaml`, and only the last element may
/// be a glob.
fn check_file_sd_path(path: &str) -> Result<(), String> {
    let (dir, last) = path.rsplit_once('/').unwrap_or(("", path));
    if dir.contains(['*', '?', '[']) {
        return Err(format!(
            "path {path:?} is not valid for file discovery: only the last path element may contain a glob"
        ));
    }
    if !(last.ends_with(".json") || last.ends_with(".yml") || last.ends_with(".yaml")) {
        return Err(format!(
            "path {path:?} is not valid for file discovery: must end in .json, .yml or .yaml"
        ));
    }
    glob::Pattern::new(last).map_err(|e| format!("path {path:?}: invalid glob: {e}"))?;
    Ok(())
}

/// Checks the whole list: every entry, then uniqueness of job names. Paths are relative to
/// `scrape_configs`.
pub fn validate_all(configs: &[ScrapeConfig], global: &GlobalConfig) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let mut names = HashSet::new();
    for (i, c) in configs.iter().enumerate() {
        problems.extend(
            c.validate(global)
                .into_iter()
                .map(|(k, m)| (format!("scrape_configs[{i}].{k}"), m)),
        );
        if !c.job_name.is_empty() && !names.insert(c.job_name.as_str()) {
            problems.push((
                format!("scrape_configs[{i}].job_name"),
                format!(
                    "found multiple scrape configs with job name {:?}",
                    c.job_name
                ),
            ));
        }
    }
    problems
}
