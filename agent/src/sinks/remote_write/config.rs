//! The `remote_write` entries (Prometheus's keys and defaults, so a block pasted from a
//! Prometheus config works) and nodemeter's own `remote_write_wal` section.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::Duration;
use crate::relabel::{RelabelConfig, Rules};

/// One remote-write endpoint: a queue of its own with shards, retries and a WAL cursor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteWriteConfig {
    /// Where to POST (`http://` or `https://`), e.g. `http://mimir/api/v1/push`.
    pub url: String,
    /// Name of this queue in self-metrics, logs and the WAL cursor file; empty: derived from
    /// the URL (first 6 hex digits of its hash), so the cursor survives restarts.
    pub name: String,
    /// Timeout of one HTTP attempt.
    pub remote_timeout: Duration,
    /// Extra request headers (`X-Scope-OrgID`, `THANOS-TENANT`); the protocol's own headers and
    /// `Authorization` cannot be set here.
    pub headers: BTreeMap<String, String>,
    /// HTTP basic authentication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// `Authorization: <type> <credentials>` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    /// Legacy form of `authorization` with type Bearer.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub bearer_token: String,
    /// Legacy form of `authorization.credentials_file` with type Bearer.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub bearer_token_file: String,
    /// TLS settings for `https://` URLs.
    pub tls_config: TlsConfig,
    /// HTTP proxy to send through, e.g. `http://proxy:3128`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub proxy_url: String,
    /// Follow HTTP 3xx redirects.
    pub follow_redirects: bool,
    /// Accepted for compatibility; connections use the resolver's first address.
    pub round_robin_dns: bool,
    /// Sharding, batching and retries.
    pub queue_config: QueueConfig,
    /// Periodic metadata requests (remote write 1.0 only; 2.0 carries metadata per series).
    pub metadata_config: MetadataConfig,
    /// Relabel rules applied to every series (after external labels) before it is sent to
    /// this endpoint; `drop`/`keep` decide whether it is sent at all.
    #[serde(deserialize_with = "crate::relabel::deserialize_rule_list")]
    pub write_relabel_configs: Vec<RelabelConfig>,
    /// Wire message: `prometheus.WriteRequest` (remote write 1.0) or
    /// `io.prometheus.write.v2.Request` (2.0).
    pub protobuf_message: ProtobufMessage,
    /// nodemeter: with 2.0 selected, a receiver answering 415 (or 2xx without the written-count
    /// headers) is a 1.0 receiver: log it, re-send the batch as 1.0 and stay on 1.0.
    pub fallback_to_v1: bool,
    /// Accepted for compatibility; no source produces exemplars yet.
    pub send_exemplars: bool,
    /// Accepted for compatibility; no source produces native histograms yet.
    pub send_native_histograms: bool,
}

impl Default for RemoteWriteConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            name: String::new(),
            remote_timeout: Duration::from_secs(30),
            headers: BTreeMap::new(),
            basic_auth: None,
            authorization: None,
            bearer_token: String::new(),
            bearer_token_file: String::new(),
            tls_config: TlsConfig::default(),
            proxy_url: String::new(),
            follow_redirects: true,
            round_robin_dns: false,
            queue_config: QueueConfig::default(),
            metadata_config: MetadataConfig::default(),
            write_relabel_configs: Vec::new(),
            protobuf_message: ProtobufMessage::V1,
            fallback_to_v1: true,
            send_exemplars: false,
            send_native_histograms: false,
        }
    }
}

/// Which protobuf message an endpoint receives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProtobufMessage {
    /// Remote write 1.0.
    #[default]
    #[serde(rename = "prometheus.WriteRequest")]
    V1,
    /// Remote write 2.0 (symbols table, metadata per series).
    #[serde(rename = "io.prometheus.write.v2.Request")]
    V2,
}

impl ProtobufMessage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "prometheus.WriteRequest",
            Self::V2 => "io.prometheus.write.v2.Request",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password (prefer `password_file`).
    pub password: String,
    /// File holding the password, read at every request so rotation needs no restart.
    pub password_file: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Authorization {
    /// Scheme written before the credentials.
    #[serde(rename = "type")]
    pub kind: String,
    /// The credentials (prefer `credentials_file`).
    pub credentials: String,
    /// File holding the credentials, read at every request.
    pub credentials_file: String,
}

impl Default for Authorization {
    fn default() -> Self {
        Self {
            kind: "Bearer".into(),
            credentials: String::new(),
            credentials_file: String::new(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM CA certificates that sign the server's certificate; empty: the system's roots.
    pub ca_file: String,
    /// PEM client certificate for mutual TLS (needs `key_file`).
    pub cert_file: String,
    /// PEM private key of `cert_file`.
    pub key_file: String,
    /// Name the server certificate must be valid for; empty: the URL's host.
    pub server_name: String,
    /// Accept any server certificate (testing only).
    pub insecure_skip_verify: bool,
    /// Lowest TLS version: `TLS12` or `TLS13`; empty: TLS 1.2.
    pub min_version: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Samples each shard may buffer before reading the WAL pauses.
    pub capacity: usize,
    /// Most concurrent senders.
    pub max_shards: usize,
    /// Fewest concurrent senders (and the number at start).
    pub min_shards: usize,
    /// Most samples in one request.
    pub max_samples_per_send: usize,
    /// A shard sends what it has when no request went out for this long.
    pub batch_send_deadline: Duration,
    /// First retry delay.
    pub min_backoff: Duration,
    /// Cap of the doubling retry delay.
    pub max_backoff: Duration,
    /// Retry a 429 (honouring Retry-After) instead of dropping the batch.
    pub retry_on_http_429: bool,
    /// Drop samples older than this instead of sending them; 0: never.
    pub sample_age_limit: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            capacity: 10_000,
            max_shards: 50,
            min_shards: 1,
            max_samples_per_send: 2000,
            batch_send_deadline: Duration::from_secs(5),
            min_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_secs(5),
            retry_on_http_429: false,
            sample_age_limit: Duration::default(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataConfig {
    /// Send family metadata (type, help, unit) in separate 1.0 requests.
    pub send: bool,
    /// How often to send all known metadata.
    pub send_interval: Duration,
    /// Most metadata entries in one request.
    pub max_samples_per_send: usize,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        Self {
            send: true,
            send_interval: Duration::from_secs(60),
            max_samples_per_send: 2000,
        }
    }
}

/// Headers only the protocol or an auth block may set (Prometheus's list).
const RESERVED_HEADERS: [&str; 17] = [
    "host",
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "accept-encoding",
    "x-prometheus-remote-write-version",
    "x-prometheus-remote-read-version",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
    "authorization",
];

impl RemoteWriteConfig {
    /// The queue's name: `name`, or 6 hex digits of the URL's hash.
    pub fn queue_name(&self) -> String {
        if !self.name.is_empty() {
            return self.name.clone();
        }
        format!("{:06x}", crc32c::crc32c(self.url.as_bytes()) >> 8)
    }

    /// Checks what types cannot express. Returns `(key path, message)` pairs.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = Vec::new();
        match reqwest::Url::parse(&self.url) {
            Err(e) if self.url.is_empty() => p.push(("url".into(), format!("required ({e})"))),
            Err(e) => p.push(("url".into(), format!("invalid URL {:?}: {e}", self.url))),
            Ok(u) if u.scheme() != "http" && u.scheme() != "https" => p.push((
                "url".into(),
                format!("scheme must be http or https, got {:?}", u.scheme()),
            )),
            Ok(_) => {}
        }
        if self.remote_timeout.as_std().is_zero() {
            p.push(("remote_timeout".into(), "must be greater than 0".into()));
        }
        for name in self.headers.keys() {
            if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                p.push((
                    format!("headers.{name}"),
                    "is reserved for the protocol or an auth block".into(),
                ));
            } else if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                p.push((format!("headers.{name}"), "invalid header name".into()));
            }
        }
        let auth_blocks = [
            self.basic_auth.is_some(),
            self.authorization.is_some(),
            !self.bearer_token.is_empty() || !self.bearer_token_file.is_empty(),
        ];
        if auth_blocks.iter().filter(|b| **b).count() > 1 {
            p.push((
                "basic_auth".into(),
                "at most one of basic_auth, authorization and bearer_token(_file) may be set"
                    .into(),
            ));
        }
        if !self.bearer_token.is_empty() && !self.bearer_token_file.is_empty() {
            p.push((
                "bearer_token".into(),
                "at most one of bearer_token and bearer_token_file may be set".into(),
            ));
        }
        if let Some(b) = &self.basic_auth
            && !b.password.is_empty()
            && !b.password_file.is_empty()
        {
            p.push((
                "basic_auth.password".into(),
                "at most one of password and password_file may be set".into(),
            ));
        }
        if let Some(a) = &self.authorization {
            if !a.credentials.is_empty() && !a.credentials_file.is_empty() {
                p.push((
                    "authorization.credentials".into(),
                    "at most one of credentials and credentials_file may be set".into(),
                ));
            }
            if a.kind.eq_ignore_ascii_case("basic") {
                p.push((
                    "authorization.type".into(),
                    "use basic_auth for Basic authorization".into(),
                ));
            }
        }
        let t = &self.tls_config;
        if t.cert_file.is_empty() != t.key_file.is_empty() {
            p.push((
                "tls_config.cert_file".into(),
                "cert_file and key_file must be set together".into(),
            ));
        }
        if !matches!(t.min_version.as_str(), "" | "TLS12" | "TLS13") {
            p.push((
                "tls_config.min_version".into(),
                format!("must be TLS12 or TLS13, got {:?}", t.min_version),
            ));
        }
        if !self.proxy_url.is_empty()
            && let Err(e) = reqwest::Url::parse(&self.proxy_url)
        {
            p.push(("proxy_url".into(), format!("invalid URL: {e}")));
        }
        let q = &self.queue_config;
        for (key, v) in [
            ("capacity", q.capacity),
            ("max_shards", q.max_shards),
            ("min_shards", q.min_shards),
            ("max_samples_per_send", q.max_samples_per_send),
        ] {
            if v == 0 {
                p.push((
                    format!("queue_config.{key}"),
                    "must be greater than 0".into(),
                ));
            }
        }
        if q.min_shards > q.max_shards {
            p.push((
                "queue_config.min_shards".into(),
                format!(
                    "min_shards {} greater than max_shards {}",
                    q.min_shards, q.max_shards
                ),
            ));
        }
        if q.max_backoff < q.min_backoff {
            p.push((
                "queue_config.max_backoff".into(),
                "must not be less than min_backoff".into(),
            ));
        }
        if q.batch_send_deadline.as_std().is_zero() {
            p.push((
                "queue_config.batch_send_deadline".into(),
                "must be greater than 0".into(),
            ));
        }
        if self.metadata_config.send_interval.as_std().is_zero() {
            p.push((
                "metadata_config.send_interval".into(),
                "must be greater than 0".into(),
            ));
        }
        if let Err(e) = Rules::compile(&self.write_relabel_configs) {
            p.push((
                format!("write_relabel_configs[{}]", e.index),
                format!("action {}: {}", e.action, e.kind),
            ));
        }
        p
    }
}

/// Where and how the remote-write WAL keeps data (nodemeter's own section).
///
/// Durability: a batch is acknowledged once it is written to the current segment (page cache).
/// Segments are fsynced when they rotate and every `fsync_interval` while data is unsynced;
/// read cursors are fsynced every second. A killed process (SIGKILL, OOM) loses nothing
/// acknowledged; a power loss or kernel crash can lose what arrived in the last
/// `fsync_interval` and re-send up to one second of already delivered samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WalConfig {
    /// Data directory; the WAL lives in `<dir>/wal`, cursors in `<dir>/wal/cursors`
    /// (`nodemeter run --data-dir` overrides it).
    pub dir: PathBuf,
    /// A segment file is closed and a new one started at this size (bytes).
    pub segment_size: u64,
    /// Oldest segments are deleted, unsent data included (counted and logged), when the WAL
    /// grows past this many bytes.
    pub max_size: u64,
    /// Segments older than this are deleted, unsent data included (counted and logged).
    pub max_age: Duration,
    /// How often unsynced WAL data is fsynced; 0: after every batch.
    pub fsync_interval: Duration,
}

impl Default for WalConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("/var/lib/nodemeter"),
            segment_size: 32 << 20,
            max_size: 1 << 30,
            max_age: Duration::from_secs(24 * 3600),
            fsync_interval: Duration::from_secs(1),
        }
    }
}

impl WalConfig {
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if !self.dir.is_absolute() {
            p.push(("dir".into(), "must be an absolute path".into()));
        }
        if self.segment_size < 4096 {
            p.push(("segment_size".into(), "must be at least 4096".into()));
        }
        if self.max_size < 2 * self.segment_size {
            p.push((
                "max_size".into(),
                "must be at least twice segment_size".into(),
            ));
        }
        if self.max_age.as_std().is_zero() {
            p.push(("max_age".into(), "must be greater than 0".into()));
        }
        p
    }
}

/// Validates every entry: paths are `remote_write[i].key`; names must be unique since they
/// name WAL cursors.
pub fn validate_all(entries: &[RemoteWriteConfig]) -> Vec<(String, String)> {
    let mut p = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (i, e) in entries.iter().enumerate() {
        p.extend(
            e.validate()
                .into_iter()
                .map(|(k, m)| (format!("remote_write[{i}].{k}"), m)),
        );
        let name = e.queue_name();
        if !names.insert(name.clone()) {
            p.push((
                format!("remote_write[{i}].name"),
                format!("duplicate queue name {name:?} (set distinct `name`s)"),
            ));
        }
    }
    p
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn a_prometheus_block_parses_with_prometheus_defaults() {
        let yaml = r#"
url: https://mimir.example/api/v1/push
headers:
  X-Scope-OrgID: team-a
basic_auth:
  username: u
  password_file: /etc/secret/pw
tls_config:
  ca_file: /etc/ca.pem
  server_name: mimir.internal
queue_config:
  max_samples_per_send: 500
protobuf_message: io.prometheus.write.v2.Request
"#;
        let c: RemoteWriteConfig = serde_yaml::from_str(yaml).unwrap();
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert_eq!(c.protobuf_message, ProtobufMessage::V2);
        assert_eq!(c.remote_timeout, Duration::from_secs(30));
        assert_eq!(c.queue_config.capacity, 10_000);
        assert_eq!(c.queue_config.max_shards, 50);
        assert_eq!(c.queue_config.max_samples_per_send, 500);
        assert_eq!(c.queue_config.batch_send_deadline, Duration::from_secs(5));
        assert_eq!(c.queue_config.min_backoff, Duration::from_millis(30));
        assert_eq!(c.queue_config.max_backoff, Duration::from_secs(5));
        assert!(!c.queue_config.retry_on_http_429);
        assert!(c.metadata_config.send);
        assert_eq!(c.metadata_config.send_interval, Duration::from_secs(60));
    }

    #[test]
    fn reserved_headers_and_bad_queue_values_are_named() {
        let yaml = "url: http://x/\nheaders: {Content-Type: text/plain}\nqueue_config: {min_shards: 5, max_shards: 2}\n";
        let c: RemoteWriteConfig = serde_yaml::from_str(yaml).unwrap();
        let keys: Vec<String> = c.validate().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["headers.Content-Type", "queue_config.min_shards"]);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let e = serde_yaml::from_str::<RemoteWriteConfig>("url: http://x/\ncolour: red\n");
        assert!(
            e.unwrap_err()
                .to_string()
                .contains("unknown field `colour`")
        );
    }

    #[test]
    fn queue_names_default_to_a_stable_hash_and_must_be_unique() {
        let a: RemoteWriteConfig = serde_yaml::from_str("url: http://a/").unwrap();
        assert_eq!(a.queue_name(), a.queue_name());
        assert_eq!(a.queue_name().len(), 6);
        let p = validate_all(&[a.clone(), a]);
        assert_eq!(p[0].0, "remote_write[1].name");
    }
}
