//! The HTTP side of one endpoint: TLS, authentication, headers, one POST, and what its outcome
//! means for the batch (done, retry, or give up).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::file_cache::CachedText;
use crate::tls::{ReloadingTls, ServerNameRoute, TlsError, TlsSettings, TlsVersion};

use super::config::{ProtobufMessage, RemoteWriteConfig, TlsConfig};
use super::encode;

/// Bytes of an error response kept for the log (Prometheus keeps 1024).
const ERROR_BODY_LIMIT: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("remote_write {url}: cannot build the HTTP client: {source}")]
    Build {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("remote_write {url}: invalid URL: {message}")]
    Url { url: String, message: String },
}

/// The written-count headers a 2.0 receiver answers with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    pub samples: Option<i64>,
    pub histograms: Option<i64>,
    pub exemplars: Option<i64>,
}

impl Written {
    pub fn any(&self) -> bool {
        self.samples.is_some() || self.histograms.is_some() || self.exemplars.is_some()
    }
}

/// What one attempt means for the batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// 2xx.
    Delivered { status: u16, written: Written },
    /// Network error, timeout, 5xx, or 429 when retrying it is on: try again later.
    Retry {
        status: Option<u16>,
        retry_after: Option<Duration>,
        error: String,
    },
    /// Any other status: the receiver will never take this batch.
    Rejected { status: u16, body: String },
}

/// One endpoint's HTTP client.
pub struct Client {
    /// The client and the generation of the TLS files it was built from.
    http: Mutex<(u64, reqwest::Client)>,
    tls: ReloadingTls,
    /// Set when `tls_config.server_name` must travel as SNI.
    route: Option<ServerNameRoute>,
    url: reqwest::Url,
    headers: HeaderMap,
    /// Credential files, re-read when they change.
    password_file: Option<CachedText>,
    credentials_file: Option<CachedText>,
    config: Arc<RemoteWriteConfig>,
}

fn tls_settings(t: &TlsConfig) -> TlsSettings {
    TlsSettings {
        ca_file: t.ca_file.clone(),
        cert_file: t.cert_file.clone(),
        key_file: t.key_file.clone(),
        server_name: t.server_name.clone(),
        insecure_skip_verify: t.insecure_skip_verify,
        tls13_only: t.min_version == "TLS13",
        ..TlsSettings::default()
    }
}

fn build_http(
    config: &RemoteWriteConfig,
    tls: &TlsVersion,
    route: Option<&ServerNameRoute>,
) -> Result<reqwest::Client, reqwest::Error> {
    let mut builder = reqwest::Client::builder()
        .use_preconfigured_tls(rustls::ClientConfig::clone(&tls.config))
        .timeout(config.remote_timeout.as_std())
        .user_agent(encode::USER_AGENT)
        .redirect(if config.follow_redirects {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        })
        .pool_idle_timeout(Duration::from_secs(90));
    if let Some(route) = route {
        builder = builder.dns_resolver(Arc::clone(&route.resolver));
    }
    // Prometheus ignores the proxy environment variables unless told otherwise; so do we.
    builder = if config.proxy_url.is_empty() {
        builder.no_proxy()
    } else {
        builder.proxy(reqwest::Proxy::all(&config.proxy_url)?)
    };
    builder.build()
}

impl Client {
    pub fn new(config: Arc<RemoteWriteConfig>) -> Result<Self, ClientError> {
        let url = reqwest::Url::parse(&config.url).map_err(|e| ClientError::Url {
            url: config.url.clone(),
            message: e.to_string(),
        })?;
        let tls = ReloadingTls::new(tls_settings(&config.tls_config))?;
        let route = ServerNameRoute::new(&url, &config.tls_config.server_name);
        let current = tls.current();
        let http =
            build_http(&config, &current, route.as_ref()).map_err(|source| ClientError::Build {
                url: config.url.clone(),
                source,
            })?;
        let mut headers = HeaderMap::new();
        for (k, v) in &config.headers {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| ClientError::Url {
                url: config.url.clone(),
                message: format!("header {k:?}: {e}"),
            })?;
            let value = HeaderValue::from_str(v).map_err(|e| ClientError::Url {
                url: config.url.clone(),
                message: format!("header {k:?}: {e}"),
            })?;
            headers.insert(name, value);
        }
        let cached = |f: &str| (!f.is_empty()).then(|| CachedText::new(f));
        Ok(Self {
            http: Mutex::new((current.generation, http)),
            tls,
            route,
            url,
            headers,
            password_file: config
                .basic_auth
                .as_ref()
                .and_then(|b| cached(&b.password_file)),
            credentials_file: match &config.authorization {
                Some(a) => cached(&a.credentials_file),
                None => cached(&config.bearer_token_file),
            },
            config,
        })
    }

    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// The HTTP client for the TLS files as they are now: rebuilt after a rotation, since its
    /// pooled connections hold on to the old certificates.
    fn http(&self) -> Result<reqwest::Client, String> {
        let tls = self.tls.current();
        let mut slot = self.http.lock().unwrap_or_else(|e| e.into_inner());
        if slot.0 != tls.generation {
            let http = build_http(&self.config, &tls, self.route.as_ref())
                .map_err(|e| format!("cannot build the HTTP client: {}", error_chain(&e)))?;
            *slot = (tls.generation, http);
        }
        Ok(slot.1.clone())
    }

    /// The `Authorization` header; credential files are re-read when they change so that
    /// rotated secrets are picked up without a restart.
    fn authorization(&self) -> Result<Option<String>, String> {
        let c = &self.config;
        if let Some(b) = &c.basic_auth {
            let password = match &self.password_file {
                Some(f) => f.read()?,
                None => b.password.clone(),
            };
            let raw = format!("{}:{password}", b.username);
            return Ok(Some(format!("Basic {}", base64(raw.as_bytes()))));
        }
        if let Some(a) = &c.authorization {
            let cred = match &self.credentials_file {
                Some(f) => f.read()?,
                None => a.credentials.clone(),
            };
            return Ok(Some(format!("{} {cred}", a.kind)));
        }
        if let Some(f) = &self.credentials_file {
            return Ok(Some(format!("Bearer {}", f.read()?)));
        }
        if !c.bearer_token.is_empty() {
            return Ok(Some(format!("Bearer {}", c.bearer_token)));
        }
        Ok(None)
    }

    /// POSTs one compressed body. `attempt` counts from 0; retries carry `Retry-Attempt`.
    pub async fn send(&self, message: ProtobufMessage, body: Vec<u8>, attempt: u32) -> Outcome {
        let http = match self.http() {
            Ok(h) => h,
            Err(error) => {
                return Outcome::Retry {
                    status: None,
                    retry_after: None,
                    error,
                };
            }
        };
        let mut req = match &self.route {
            Some(route) => http
                .post(route.url.clone())
                .header(reqwest::header::HOST, route.host_header.clone()),
            None => http.post(self.url.clone()),
        };
        req = req
            .headers(self.headers.clone())
            .header("Content-Encoding", "snappy")
            .header("Content-Type", encode::content_type(message))
            .header(
                "X-Prometheus-Remote-Write-Version",
                encode::version_header(message),
            )
            .body(body);
        if attempt > 0 {
            req = req.header("Retry-Attempt", attempt.to_string());
        }
        match self.authorization() {
            Ok(Some(a)) => req = req.header("Authorization", a),
            Ok(None) => {}
            Err(e) => {
                return Outcome::Retry {
                    status: None,
                    retry_after: None,
                    error: format!("cannot read credentials: {e}"),
                };
            }
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Retry {
                    status: None,
                    retry_after: None,
                    error: error_chain(&e),
                };
            }
        };
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        if resp.status().is_success() {
            let count = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<i64>().ok())
            };
            // The body of a success is meaningless; read it only to reuse the connection.
            let _ = resp.bytes().await;
            return Outcome::Delivered {
                status,
                written: Written {
                    samples: count("X-Prometheus-Remote-Write-Samples-Written"),
                    histograms: count("X-Prometheus-Remote-Write-Histograms-Written"),
                    exemplars: count("X-Prometheus-Remote-Write-Exemplars-Written"),
                },
            };
        }
        let body = read_truncated(resp).await;
        let retry_after = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        if (500..600).contains(&status)
            || (status == 429 && self.config.queue_config.retry_on_http_429)
        {
            return Outcome::Retry {
                status: Some(status),
                retry_after,
                error: format!("HTTP {status}: {body}"),
            };
        }
        Outcome::Rejected { status, body }
    }
}

async fn read_truncated(mut resp: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = ERROR_BODY_LIMIT.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() >= ERROR_BODY_LIMIT {
            break;
        }
    }
    String::from_utf8_lossy(&buf).trim().to_string()
}

/// `Retry-After`: delay seconds or an HTTP date; `None` for a past date or garbage.
pub fn parse_retry_after(v: &str, now: SystemTime) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return (secs > 0).then(|| Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    when.duration_since(now).ok().filter(|d| !d.is_zero())
}

/// An error and its causes, e.g. "error sending request: client error (Connect): invalid
/// peer certificate: certificate not valid for name ...". reqwest's top-level message alone
/// hides the TLS reason.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(T[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            None
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("0", now), None);
    }

    #[test]
    fn basic_auth_is_base64() {
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
    }
}
