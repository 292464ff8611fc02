//! A scrape job compiled from its config: relabel rules, limits, the HTTP client (TLS, proxy,
//! redirects) and the request every target of the job sends.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{self, HeaderMap, HeaderValue};

use crate::file_cache::CachedText;
use crate::tls::{ReloadingTls, ServerNameRoute, TlsError, TlsSettings, TlsVersion};

use super::config::{ScrapeConfig, ScrapeProtocol};
use crate::config::GlobalConfig;
use crate::exposition::parse::Format;
use crate::relabel::{RelabelError, Rules};

/// Why a job cannot be built from its config.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("job {job:?}: {which}: {source}")]
    Relabel {
        job: String,
        which: &'static str,
        #[source]
        source: RelabelError,
    },
    #[error("job {job:?}: {source}")]
    Tls {
        job: String,
        #[source]
        source: TlsError,
    },
    #[error("job {job:?}: HTTP client: {source}")]
    Client {
        job: String,
        #[source]
        source: reqwest::Error,
    },
}

/// What a `up=0` scrape failed of. Also the `reason` label of the failure counter.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScrapeError {
    #[error("target_limit exceeded ({targets} targets, limit {limit})")]
    TargetLimit { targets: usize, limit: u64 },
    #[error("scrape timed out after {0:?}")]
    Timeout(Duration),
    #[error("request failed: {0}")]
    Connection(String),
    #[error("server returned HTTP status {0}")]
    HttpStatus(String),
    #[error("body size limit exceeded: the body reached the limit of {0} bytes")]
    BodySizeLimit(u64),
    #[error("reading the body failed: {0}")]
    Body(String),
    #[error("cannot read credentials: {0}")]
    Credentials(String),
    #[error("{0}")]
    ContentType(String),
    #[error("invalid exposition: {0}")]
    Parse(String),
    #[error("sample_limit exceeded: {samples} samples after metric relabeling, limit {limit}")]
    SampleLimit { samples: u64, limit: u64 },
    #[error("label_limit exceeded: series {series} has {labels} labels, limit {limit}")]
    LabelLimit {
        series: String,
        labels: usize,
        limit: u64,
    },
    #[error(
        "label_name_length_limit exceeded: series {series} has a label name of {len} bytes, limit {limit}"
    )]
    LabelNameLength {
        series: String,
        len: usize,
        limit: u64,
    },
    #[error(
        "label_value_length_limit exceeded: series {series} has a label value of {len} bytes, limit {limit}"
    )]
    LabelValueLength {
        series: String,
        len: usize,
        limit: u64,
    },
    #[error("series {0} has no metric name after metric relabeling")]
    NoMetricName(String),
}

impl ScrapeError {
    /// Short stable name for the self-metric label and for "same failure as last time".
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TargetLimit { .. } => "target_limit",
            Self::Timeout(_) => "timeout",
            Self::Connection(_) => "connection",
            Self::HttpStatus(_) => "http_status",
            Self::BodySizeLimit(_) => "body_size_limit",
            Self::Body(_) => "body",
            Self::Credentials(_) => "credentials",
            Self::ContentType(_) => "content_type",
            Self::Parse(_) => "parse",
            Self::SampleLimit { .. } => "sample_limit",
            Self::LabelLimit { .. } => "label_limit",
            Self::LabelNameLength { .. } => "label_name_length_limit",
            Self::LabelValueLength { .. } => "label_value_length_limit",
            Self::NoMetricName(_) => "no_metric_name",
        }
    }
}

/// Limits applied to every scrape of a job (0 = none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub sample_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    pub target_limit: u64,
    /// Effective body limit in bytes (never 0: the agent's ceiling applies when unset).
    pub body_size_limit: u64,
}

/// Where credentials come from; files are re-read when they change, as Prometheus re-reads
/// them, so a rotated service-account token is picked up without a restart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    None,
    Basic { username: Source, password: Source },
    Header { kind: String, credentials: Source },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Inline(String),
    File(Arc<CachedText>),
}

impl Source {
    fn pick(inline: &str, file: &str) -> Self {
        if file.is_empty() {
            Self::Inline(inline.to_string())
        } else {
            Self::File(Arc::new(CachedText::new(file)))
        }
    }

    fn read(&self) -> Result<String, ScrapeError> {
        match self {
            Self::Inline(s) => Ok(s.clone()),
            Self::File(f) => f.read().map_err(ScrapeError::Credentials),
        }
    }
}

impl Auth {
    fn from_config(c: &ScrapeConfig) -> Self {
        if let Some(b) = &c.basic_auth {
            return Self::Basic {
                username: Source::pick(&b.username, &b.username_file),
                password: Source::pick(&b.password.0, &b.password_file),
            };
        }
        if let Some(a) = &c.authorization {
            return Self::Header {
                kind: if a.kind.is_empty() {
                    "Bearer".into()
                } else {
                    a.kind.clone()
                },
                credentials: Source::pick(&a.credentials.0, &a.credentials_file),
            };
        }
        if let Some(f) = &c.bearer_token_file {
            return Self::Header {
                kind: "Bearer".into(),
                credentials: Source::File(Arc::new(CachedText::new(f))),
            };
        }
        if let Some(t) = &c.bearer_token {
            return Self::Header {
                kind: "Bearer".into(),
                credentials: Source::Inline(t.0.clone()),
            };
        }
        Self::None
    }

    /// The `Authorization` header value for this scrape, if any.
    pub fn header(&self) -> Result<Option<HeaderValue>, ScrapeError> {
        let text = match self {
            Self::None => return Ok(None),
            Self::Basic { username, password } => {
                let raw = format!("{}:{}", username.read()?, password.read()?);
                format!("Basic {}", base64(raw.as_bytes()))
            }
            Self::Header { kind, credentials } => format!("{kind} {}", credentials.read()?),
        };
        let mut v = HeaderValue::from_str(&text).map_err(|_| {
            ScrapeError::Credentials(
                "credentials contain characters not allowed in a header".into(),
            )
        })?;
        v.set_sensitive(true);
        Ok(Some(v))
    }
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Everything the targets of one job share. Built once per config; targets hold an `Arc`.
pub struct Job {
    pub name: String,
    pub config: ScrapeConfig,
    pub interval: Duration,
    pub timeout: Duration,
    pub target_rules: Rules,
    pub metric_rules: Rules,
    pub limits: Limits,
    pub auth: Auth,
    /// TLS settings, following their files; each target builds its client from them.
    pub tls: ReloadingTls,
    /// Headers every request of the job carries (Accept, Accept-Encoding, User-Agent).
    pub headers: HeaderMap,
    pub fallback: Option<Format>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("name", &self.name).finish()
    }
}

/// The `User-Agent` of scrapes.
pub const USER_AGENT: &str = concat!("nodemeter/", env!("CARGO_PKG_VERSION"));

/// `Accept` built from `scrape_protocols` the way Prometheus builds it: weights from
/// q=(known protocols + 1)/10 down by 0.1, `*/*` last.
pub fn accept_header(protocols: &[ScrapeProtocol]) -> String {
    let mut weight = ScrapeProtocol::NAMES.len() as u32 + 1;
    let mut parts = Vec::with_capacity(protocols.len() + 1);
    for p in protocols {
        parts.push(format!("{};q=0.{weight}", p.media_type()));
        weight = weight.saturating_sub(1);
    }
    parts.push(format!("*/*;q=0.{weight}"));
    parts.join(",")
}

fn format_of(p: ScrapeProtocol) -> Option<Format> {
    match p {
        ScrapeProtocol::PrometheusProto => None,
        ScrapeProtocol::OpenMetricsText0_0_1 | ScrapeProtocol::OpenMetricsText1_0_0 => {
            Some(Format::OpenMetrics)
        }
        ScrapeProtocol::PrometheusText0_0_4 | ScrapeProtocol::PrometheusText1_0_0 => {
            Some(Format::PrometheusText)
        }
    }
}

impl Job {
    /// Compiles `config` (already validated with the rest of the file). `max_body_size` is the
    /// agent's ceiling for jobs without `body_size_limit`.
    pub fn new(
        config: &ScrapeConfig,
        global: &GlobalConfig,
        max_body_size: u64,
    ) -> Result<Self, JobError> {
        let job = config.job_name.clone();
        let target_rules =
            Rules::compile(&config.relabel_configs).map_err(|source| JobError::Relabel {
                job: job.clone(),
                which: "relabel_configs",
                source,
            })?;
        let metric_rules =
            Rules::compile(&config.metric_relabel_configs).map_err(|source| JobError::Relabel {
                job: job.clone(),
                which: "metric_relabel_configs",
                source,
            })?;
        let effective = config.limits(global);
        let limits = Limits {
            sample_limit: effective.sample_limit,
            label_limit: effective.label_limit,
            label_name_length_limit: effective.label_name_length_limit,
            label_value_length_limit: effective.label_value_length_limit,
            target_limit: effective.target_limit,
            body_size_limit: match effective.body_size_limit.0 {
                0 => max_body_size.max(1),
                n => n,
            },
        };
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&accept_header(&config.protocols(global))) {
            headers.insert(header::ACCEPT, v);
        }
        // With compression on, reqwest sends `Accept-Encoding: gzip` itself and gunzips only
        // responses that say `Content-Encoding: gzip`, which is Prometheus's behaviour.
        if !config.enable_compression {
            headers.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_static("identity"),
            );
        }
        let tls = ReloadingTls::new(tls_settings(config)).map_err(|source| JobError::Tls {
            job: job.clone(),
            source,
        })?;
        // A config whose client cannot be built fails at load, not at every scrape.
        build_client(config, &tls.current(), None).map_err(|source| JobError::Client {
            job: job.clone(),
            source,
        })?;
        Ok(Self {
            name: job,
            interval: config.interval(global).as_std(),
            timeout: config.timeout(global).as_std(),
            target_rules,
            metric_rules,
            limits,
            auth: Auth::from_config(config),
            tls,
            headers,
            fallback: config.fallback_scrape_protocol.and_then(format_of),
            config: config.clone(),
        })
    }
}

/// The HTTP client of one target, built from one generation of the job's TLS files.
pub struct TargetClient {
    pub generation: u64,
    pub client: reqwest::Client,
    /// Set when `tls_config.server_name` must travel as SNI.
    pub route: Option<ServerNameRoute>,
}

impl Job {
    /// A client for the target at `url` with the TLS files as they are now.
    pub fn client_for(&self, url: &reqwest::Url) -> Result<TargetClient, reqwest::Error> {
        let tls = self.tls.current();
        let route = ServerNameRoute::new(url, &self.tls.settings().server_name);
        Ok(TargetClient {
            generation: tls.generation,
            client: build_client(&self.config, &tls, route.as_ref())?,
            route,
        })
    }
}

fn tls_settings(config: &ScrapeConfig) -> TlsSettings {
    let t = &config.tls_config;
    TlsSettings {
        ca: t.ca.clone(),
        ca_file: t.ca_file.clone(),
        cert: t.cert.clone(),
        cert_file: t.cert_file.clone(),
        key: t.key.0.clone(),
        key_file: t.key_file.clone(),
        server_name: t.server_name.clone(),
        insecure_skip_verify: t.insecure_skip_verify,
        tls13_only: t.min_version == "TLS13",
        alpn: if config.enable_http2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        },
    }
}

fn build_client(
    config: &ScrapeConfig,
    tls: &TlsVersion,
    route: Option<&ServerNameRoute>,
) -> Result<reqwest::Client, reqwest::Error> {
    let mut b = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .gzip(config.enable_compression)
        .redirect(if config.follow_redirects {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        })
        .pool_max_idle_per_host(2)
        .use_preconfigured_tls(rustls::ClientConfig::clone(&tls.config));
    if let Some(route) = route {
        b = b.dns_resolver(Arc::clone(&route.resolver));
    }
    if !config.enable_http2 {
        b = b.http1_only();
    }
    b = match &config.proxy_url {
        Some(url) => b.proxy(reqwest::Proxy::all(url)?),
        // Prometheus ignores HTTP_PROXY & co unless proxy_from_environment is set.
        None => b.no_proxy(),
    };
    b.build()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn the_default_accept_header_is_prometheus_3s() {
        assert_eq!(
            accept_header(&ScrapeProtocol::DEFAULT),
            crate::exposition::parse::ACCEPT_HEADER
        );
    }

    #[test]
    fn accept_weights_follow_the_configured_order() {
        assert_eq!(
            accept_header(&[ScrapeProtocol::PrometheusText0_0_4]),
            "text/plain;version=0.0.4;q=0.6,*/*;q=0.5"
        );
    }

    #[test]
    fn basic_auth_header_is_base64_of_user_colon_password() {
        let a = Auth::Basic {
            username: Source::Inline("Aladdin".into()),
            password: Source::Inline("open sesame".into()),
        };
        assert_eq!(
            a.header().unwrap().unwrap(),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
    }

    #[test]
    fn credential_files_are_read_again_when_they_change() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, "one\n").unwrap();
        let a = Auth::Header {
            kind: "Bearer".into(),
            credentials: Source::File(Arc::new(CachedText::new(&f.display().to_string()))),
        };
        assert_eq!(a.header().unwrap().unwrap(), "Bearer one");
        std::fs::write(&f, "two").unwrap();
        assert_eq!(a.header().unwrap().unwrap(), "Bearer two");
        std::fs::remove_file(&f).unwrap();
        assert_eq!(a.header().unwrap_err().reason(), "credentials");
    }
}
