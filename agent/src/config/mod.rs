//! The agent's configuration: one YAML file.
//!
//! Prometheus's own sections (`global`, `scrape_configs`, `remote_write`) use Prometheus's
//! names and defaults so an existing Prometheus agent config runs unchanged; nodemeter's own
//! sections sit beside them. Every key has a default (an empty file is a valid config) and
//! a doc comment. Unknown keys and bad values are errors that name file, line and key.

mod duration;
mod error;
mod prometheus_keys;
mod source_map;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use duration::Duration;
pub use error::{ConfigError, Located};
pub use source_map::{Position, SourceMap};

use crate::discovery::kubernetes::KubernetesConfig;
use crate::sinks::remote_write::{RemoteWriteConfig, WalConfig};
use crate::sources::cgroup::CgroupConfig;
use crate::sources::ebpf::EbpfConfig;
use crate::sources::scrape::config::ScrapeProtocol;
use crate::sources::scrape::{ByteSize, ScrapeConfig};

/// The configuration `nodemeter run` uses when no `--config` is given. It is also the
/// reference documentation of every key.
pub const DEFAULT_CONFIG_YAML: &str = include_str!("default.yaml");

/// Name under which the embedded default config appears in error messages.
pub const EMBEDDED_NAME: &str = "<embedded default config>";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Prometheus `global` section: defaults for scraping and labels added to everything sent.
    pub global: GlobalConfig,
    /// Prometheus `scrape_configs`: jobs of HTTP targets to scrape.
    pub scrape_configs: Vec<ScrapeConfig>,
    /// Prometheus `remote_write`: endpoints to send everything collected to.
    pub remote_write: Vec<RemoteWriteConfig>,
    /// The write-ahead log in front of remote write (nodemeter's own section).
    pub remote_write_wal: WalConfig,
    /// The HTTP server for `/metrics`, `/healthz` and `/readyz`.
    pub server: ServerConfig,
    /// Log output of the agent itself.
    pub logging: LoggingConfig,
    /// Facts about the node the agent runs on.
    pub node: NodeConfig,
    /// nodemeter's own scraping settings (beside Prometheus's `scrape_configs`).
    pub scrape: ScrapeAgentConfig,
    /// Container metrics read from cgroupfs and /proc.
    pub cgroup: CgroupConfig,
    /// Kernel probes.
    pub ebpf: EbpfConfig,
    /// Buffers between sources, the pipeline and sinks.
    pub pipeline: PipelineConfig,
    /// The local `/metrics` view of everything collected.
    pub exposition: ExpositionConfig,
    /// Kubernetes API: pod metadata and PodMonitor/ServiceMonitor targets on this node.
    pub kubernetes: KubernetesConfig,
}

/// Prometheus's `global` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "GlobalConfigInput")]
pub struct GlobalConfig {
    /// How often to scrape targets by default (Prometheus default 1m).
    pub scrape_interval: Duration,
    /// How long a scrape may take by default (Prometheus default 10s).
    pub scrape_timeout: Duration,
    /// Media types asked for by jobs that set none (default: OpenMetrics then text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_protocols: Option<Vec<ScrapeProtocol>>,
    /// Accepted for compatibility with Prometheus configs; the agent evaluates no rules.
    pub evaluation_interval: Duration,
    /// Labels added to every series sent to remote storage; a series' own label of the same
    /// name wins.
    pub external_labels: BTreeMap<String, String>,
    /// The scrape limits of jobs that leave theirs at 0 (Prometheus's precedence: a job's
    /// non-zero limit wins, 0 inherits this one).
    #[serde(flatten)]
    pub limits: GlobalLimits,
    /// Prometheus `global` keys set in the file that nodemeter does not implement.
    #[serde(skip)]
    pub unsupported: Vec<&'static str>,
}

/// The scrape limits `global` can set for every job; 0 means none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GlobalLimits {
    /// Largest accepted (decompressed) body per scrape (`0`: none beyond
    /// `scrape.max_body_size`).
    pub body_size_limit: ByteSize,
    /// Samples per scrape after metric relabeling above which the scrape fails.
    pub sample_limit: u64,
    /// Targets per job after relabeling above which every target of the job fails.
    pub target_limit: u64,
    /// Labels per series above which the scrape fails.
    pub label_limit: u64,
    /// Label name length in bytes above which the scrape fails.
    pub label_name_length_limit: u64,
    /// Label value length in bytes above which the scrape fails.
    pub label_value_length_limit: u64,
    /// Dropped targets kept for display; accepted for compatibility (no effect on data).
    pub keep_dropped_targets: u64,
}

/// `global` as written: an unset `scrape_timeout` is the smaller of 10s and the interval,
/// as in Prometheus, so `scrape_interval: 5s` alone is valid.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct GlobalConfigInput {
    /// See [`GlobalConfig::scrape_interval`].
    scrape_interval: Duration,
    /// See [`GlobalConfig::scrape_timeout`].
    scrape_timeout: Option<Duration>,
    /// See [`GlobalConfig::scrape_protocols`].
    scrape_protocols: Option<Vec<ScrapeProtocol>>,
    /// See [`GlobalConfig::evaluation_interval`].
    evaluation_interval: Duration,
    /// See [`GlobalConfig::external_labels`].
    external_labels: BTreeMap<String, String>,
    /// See [`GlobalLimits::body_size_limit`].
    body_size_limit: ByteSize,
    /// See [`GlobalLimits::sample_limit`].
    sample_limit: u64,
    /// See [`GlobalLimits::target_limit`].
    target_limit: u64,
    /// See [`GlobalLimits::label_limit`].
    label_limit: u64,
    /// See [`GlobalLimits::label_name_length_limit`].
    label_name_length_limit: u64,
    /// See [`GlobalLimits::label_value_length_limit`].
    label_value_length_limit: u64,
    /// See [`GlobalLimits::keep_dropped_targets`].
    keep_dropped_targets: u64,
    // Prometheus `global` keys nodemeter does not implement: accepted by the parser only so
    // that validation can name them.
    /// Not supported.
    rule_query_offset: Option<serde_yaml::Value>,
    /// Not supported.
    query_log_file: Option<serde_yaml::Value>,
    /// Not supported.
    scrape_failure_log_file: Option<serde_yaml::Value>,
    /// Not supported.
    metric_name_validation_scheme: Option<serde_yaml::Value>,
    /// Not supported.
    metric_name_escaping_scheme: Option<serde_yaml::Value>,
    /// Not supported.
    always_scrape_classic_histograms: Option<serde_yaml::Value>,
    /// Not supported.
    convert_classic_histograms_to_nhcb: Option<serde_yaml::Value>,
    /// Not supported.
    scrape_native_histograms: Option<serde_yaml::Value>,
}

impl Default for GlobalConfigInput {
    fn default() -> Self {
        let d = GlobalConfig::default();
        Self {
            scrape_interval: d.scrape_interval,
            scrape_timeout: None,
            scrape_protocols: None,
            evaluation_interval: d.evaluation_interval,
            external_labels: d.external_labels,
            body_size_limit: ByteSize(0),
            sample_limit: 0,
            target_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            keep_dropped_targets: 0,
            rule_query_offset: None,
            query_log_file: None,
            scrape_failure_log_file: None,
            metric_name_validation_scheme: None,
            metric_name_escaping_scheme: None,
            always_scrape_classic_histograms: None,
            convert_classic_histograms_to_nhcb: None,
            scrape_native_histograms: None,
        }
    }
}

impl From<GlobalConfigInput> for GlobalConfig {
    fn from(g: GlobalConfigInput) -> Self {
        let default_timeout = GlobalConfig::default().scrape_timeout;
        let unsupported = [
            ("rule_query_offset", g.rule_query_offset.is_some()),
            ("query_log_file", g.query_log_file.is_some()),
            (
                "scrape_failure_log_file",
                g.scrape_failure_log_file.is_some(),
            ),
            (
                "metric_name_validation_scheme",
                g.metric_name_validation_scheme.is_some(),
            ),
            (
                "metric_name_escaping_scheme",
                g.metric_name_escaping_scheme.is_some(),
            ),
            (
                "always_scrape_classic_histograms",
                g.always_scrape_classic_histograms.is_some(),
            ),
            (
                "convert_classic_histograms_to_nhcb",
                g.convert_classic_histograms_to_nhcb.is_some(),
            ),
            (
                "scrape_native_histograms",
                g.scrape_native_histograms.is_some(),
            ),
        ]
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(k, _)| k)
        .collect();
        Self {
            scrape_timeout: g
                .scrape_timeout
                .unwrap_or(default_timeout.min(g.scrape_interval)),
            scrape_interval: g.scrape_interval,
            scrape_protocols: g.scrape_protocols,
            evaluation_interval: g.evaluation_interval,
            external_labels: g.external_labels,
            limits: GlobalLimits {
                body_size_limit: g.body_size_limit,
                sample_limit: g.sample_limit,
                target_limit: g.target_limit,
                label_limit: g.label_limit,
                label_name_length_limit: g.label_name_length_limit,
                label_value_length_limit: g.label_value_length_limit,
                keep_dropped_targets: g.keep_dropped_targets,
            },
            unsupported,
        }
    }
}

impl Default for GlobalConfig {
    fn default() -> Self {
        Self {
            scrape_interval: Duration::from_secs(60),
            scrape_timeout: Duration::from_secs(10),
            scrape_protocols: None,
            evaluation_interval: Duration::from_secs(60),
            external_labels: BTreeMap::new(),
            limits: GlobalLimits::default(),
            unsupported: Vec::new(),
        }
    }
}

impl GlobalConfig {
    /// Checks what types cannot express. Paths are relative to `global`.
    fn validate(&self) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = self
            .unsupported
            .iter()
            .map(|k| {
                (
                    (*k).to_string(),
                    "not supported by this version of nodemeter yet".to_string(),
                )
            })
            .collect();
        if self.scrape_timeout > self.scrape_interval {
            p.push((
                "scrape_timeout".into(),
                format!(
                    "scrape_timeout {} greater than scrape_interval {}",
                    self.scrape_timeout, self.scrape_interval
                ),
            ));
        }
        if let Some(protocols) = &self.scrape_protocols {
            p.extend(crate::sources::scrape::config::check_protocols(protocols));
        }
        p
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScrapeAgentConfig {
    /// Largest body accepted from a target whose job sets no `body_size_limit` (Prometheus has
    /// no ceiling; an agent on every node needs one).
    pub max_body_size: ByteSize,
}

impl Default for ScrapeAgentConfig {
    fn default() -> Self {
        Self {
            max_body_size: ByteSize(64 << 20),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to serve `/metrics`, `/healthz` and `/readyz` on.
    pub listen: SocketAddr,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 9101)),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// Filter in `tracing` env-filter syntax (`info`, `nodemeter=debug,warn`); the environment
    /// variable `NODEMETER_LOG` overrides it.
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// This node's name. Empty: the `NODE_NAME` environment variable (set from the downward
    /// API in the DaemonSet), else the host name.
    pub name: String,
}

impl NodeConfig {
    /// The effective node name.
    pub fn resolved_name(&self) -> String {
        if !self.name.is_empty() {
            return self.name.clone();
        }
        if let Ok(n) = std::env::var("NODE_NAME")
            && !n.is_empty()
        {
            return n;
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Batches that may wait between sources and the pipeline, and between the pipeline and
    /// each sink, before producers wait (backpressure instead of unbounded memory).
    pub channel_capacity: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            channel_capacity: 16,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExpositionConfig {
    /// Write each sample's collection timestamp on `/metrics`, as kubelet's cAdvisor endpoint does.
    pub timestamps: bool,
    /// A series not updated for this long disappears from `/metrics` even without a staleness
    /// marker (a safety net for sources that stop abruptly).
    pub series_ttl: Duration,
    /// Also serve the series of scrape targets on `/metrics`: `true`, `false`, or `auto`
    /// (only when no remote_write endpoint is configured). Off, they go to remote write only;
    /// `/metrics` holds the node's own container and kernel metrics, so a Prometheus scraping
    /// the agent does not ingest every target twice, and memory does not grow with the series
    /// of every exporter on the node.
    pub scraped_series: ScrapedSeries,
}

/// Whether scraped series are served on `/metrics` (see [`ExpositionConfig::scraped_series`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum ScrapedSeries {
    /// Served only when the agent has no remote_write endpoint (a standalone host, or a
    /// Prometheus that scrapes the agent, still sees them).
    #[default]
    Auto,
    Always,
    Never,
}

impl ScrapedSeries {
    /// Whether to serve them, given whether remote write is configured.
    pub fn served(self, remote_write: bool) -> bool {
        match self {
            Self::Auto => !remote_write,
            Self::Always => true,
            Self::Never => false,
        }
    }
}

impl<'de> Deserialize<'de> for ScrapedSeries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Word(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bool(true) => Ok(Self::Always),
            Raw::Bool(false) => Ok(Self::Never),
            Raw::Word(w) if w == "auto" => Ok(Self::Auto),
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "expected true, false or auto, got {w:?}"
            ))),
        }
    }
}

impl Default for ExpositionConfig {
    fn default() -> Self {
        Self {
            timestamps: true,
            series_ttl: Duration::from_secs(300),
            scraped_series: ScrapedSeries::Auto,
        }
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&text, &path.display().to_string())
    }

    /// The embedded default configuration.
    pub fn embedded_default() -> Result<Self, ConfigError> {
        Self::from_yaml(DEFAULT_CONFIG_YAML, EMBEDDED_NAME)
    }

    /// Parses and validates `text`; `file` names it in errors.
    pub fn from_yaml(text: &str, file: &str) -> Result<Self, ConfigError> {
        let map = SourceMap::index(text);
        let locate = |path: String, message: String, fallback: Option<Position>| {
            let pos = map.locate(&path).or(fallback);
            ConfigError::Invalid(Box::new(Located {
                file: file.to_string(),
                line: pos.map(|p| p.line),
                column: pos.map(|p| p.column),
                path,
                message,
            }))
        };
        // An empty document (or one holding only comments) is the all-defaults config.
        let config: Config = if text
            .trim()
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            Config::default()
        } else {
            let de = serde_yaml::Deserializer::from_str(text);
            serde_path_to_error::deserialize(de).map_err(|e| {
                let path = e.path().to_string();
                let path = if path == "." { String::new() } else { path };
                let inner = e.into_inner();
                let fallback = inner.location().map(|l| Position {
                    line: l.line(),
                    column: l.column(),
                });
                // serde_yaml appends its own " at line X column Y"; the location is ours to print.
                let msg = inner.to_string();
                let msg = match msg.rfind(" at line ") {
                    Some(i) => msg[..i].to_string(),
                    None => msg,
                };
                // ...and prefixes the path of the enclosing mapping, which ours already names.
                let msg = match msg.split_once(": ") {
                    Some((prefix, rest)) if !prefix.is_empty() && path.starts_with(prefix) => {
                        rest.to_string()
                    }
                    _ => msg,
                };
                let msg = if msg.starts_with("unknown field") {
                    prometheus_keys::not_supported_message(&path).unwrap_or(msg)
                } else {
                    msg
                };
                locate(path, msg, fallback)
            })?
        };
        if let Some((path, message)) = config.validate().into_iter().next() {
            return Err(locate(path, message, None));
        }
        Ok(config)
    }

    /// Checks what types cannot express. Returns `(key path, message)` pairs.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        problems.extend(crate::sources::scrape::validate_all(
            &self.scrape_configs,
            &self.global,
        ));
        if self.scrape.max_body_size.0 == 0 {
            problems.push((
                "scrape.max_body_size".into(),
                "must be greater than 0".into(),
            ));
        }
        problems.extend(crate::sinks::remote_write::config::validate_all(
            &self.remote_write,
        ));
        problems.extend(
            self.remote_write_wal
                .validate()
                .into_iter()
                .map(|(p, m)| (format!("remote_write_wal.{p}"), m)),
        );
        problems.extend(
            self.global
                .validate()
                .into_iter()
                .map(|(p, m)| (format!("global.{p}"), m)),
        );
        if self.pipeline.channel_capacity == 0 {
            problems.push((
                "pipeline.channel_capacity".into(),
                "must be at least 1".into(),
            ));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.logging.level) {
            problems.push(("logging.level".into(), format!("invalid filter: {e}")));
        }
        problems.extend(
            self.cgroup
                .validate()
                .into_iter()
                .map(|(p, m)| (format!("cgroup.{p}"), m)),
        );
        problems.extend(
            self.ebpf
                .validate()
                .into_iter()
                .map(|(p, m)| (format!("ebpf.{p}"), m)),
        );
        // Paths are already prefixed with `kubernetes.`.
        problems.extend(self.kubernetes.validate());
        problems
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests;
