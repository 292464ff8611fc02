//! The HTTP side of one endpoint: TLS, authentication, headers, one POST, and what its outcome
//! means for the batch (done, retry, or give up).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::tls::{AcceptAnyCertificate, VerifyAs};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::config::{ProtobufMessage, RemoteWriteConfig, TlsConfig};
use super::encode;

/// Bytes of an error response kept for the log (Prometheus keeps 1024).
const ERROR_BODY_LIMIT: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("tls_config.{key}: {path}: {message}")]
    TlsFile {
        key: &'static str,
        path: String,
        message: String,
    },
    #[error("tls_config: {0}")]
    Tls(#[from] rustls::Error),
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
    http: reqwest::Client,
    url: reqwest::Url,
    headers: HeaderMap,
    config: Arc<RemoteWriteConfig>,
}

impl Client {
    pub fn new(config: Arc<RemoteWriteConfig>) -> Result<Self, ClientError> {
        let url = reqwest::Url::parse(&config.url).map_err(|e| ClientError::Url {
            url: config.url.clone(),
            message: e.to_string(),
        })?;
        let build = |source| ClientError::Build {
            url: config.url.clone(),
            source,
        };
        let mut builder = reqwest::Client::builder()
            .use_preconfigured_tls(tls_client_config(&config.tls_config)?)
            .timeout(config.remote_timeout.as_std())
            .user_agent(encode::USER_AGENT)
            .redirect(if config.follow_redirects {
                reqwest::redirect::Policy::limited(10)
            } else {
                reqwest::redirect::Policy::none()
            })
            .pool_idle_timeout(Duration::from_secs(90));
        // Prometheus ignores the proxy environment variables unless told otherwise; so do we.
        builder = if config.proxy_url.is_empty() {
            builder.no_proxy()
        } else {
            builder.proxy(reqwest::Proxy::all(&config.proxy_url).map_err(build)?)
        };
        let http = builder.build().map_err(build)?;
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
        Ok(Self {
            http,
            url,
            headers,
            config,
        })
    }

    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// The `Authorization` header, re-reading credential files at every request so that
    /// rotated secrets are picked up without a restart.
    fn authorization(&self) -> Result<Option<String>, String> {
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .map(|s| s.trim().to_string())
                .map_err(|e| format!("{path}: {e}"))
        };
        let c = &self.config;
        if let Some(b) = &c.basic_auth {
            let password = if b.password_file.is_empty() {
                b.password.clone()
            } else {
                read(&b.password_file)?
            };
            let raw = format!("{}:{password}", b.username);
            return Ok(Some(format!("Basic {}", base64(raw.as_bytes()))));
        }
        if let Some(a) = &c.authorization {
            let cred = if a.credentials_file.is_empty() {
                a.credentials.clone()
            } else {
                read(&a.credentials_file)?
            };
            return Ok(Some(format!("{} {cred}", a.kind)));
        }
        if !c.bearer_token_file.is_empty() {
            return Ok(Some(format!("Bearer {}", read(&c.bearer_token_file)?)));
        }
        if !c.bearer_token.is_empty() {
            return Ok(Some(format!("Bearer {}", c.bearer_token)));
        }
        Ok(None)
    }

    /// POSTs one compressed body. `attempt` counts from 0; retries carry `Retry-Attempt`.
    pub async fn send(&self, message: ProtobufMessage, body: Vec<u8>, attempt: u32) -> Outcome {
        let mut req = self
            .http
            .post(self.url.clone())
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

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls client config for `tls`: roots from `ca_file` (else the system's), optional
/// client certificate, minimum version, server-name override and skip-verify.
pub fn tls_client_config(tls: &TlsConfig) -> Result<rustls::ClientConfig, ClientError> {
    let file_err = |key: &'static str, path: &str| {
        let path = path.to_string();
        move |e: rustls::pki_types::pem::Error| ClientError::TlsFile {
            key,
            path,
            message: e.to_string(),
        }
    };
    let mut roots = rustls::RootCertStore::empty();
    if tls.ca_file.is_empty() {
        let native = rustls_native_certs::load_native_certs();
        for c in native.certs {
            let _ = roots.add(c);
        }
    } else {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.ca_file)
            .map_err(file_err("ca_file", &tls.ca_file))?
            .collect::<Result<_, _>>()
            .map_err(file_err("ca_file", &tls.ca_file))?;
        if certs.is_empty() {
            return Err(ClientError::TlsFile {
                key: "ca_file",
                path: tls.ca_file.clone(),
                message: "no PEM certificate in the file".into(),
            });
        }
        for c in certs {
            roots.add(c)?;
        }
    }
    let versions: &[&rustls::SupportedProtocolVersion] = if tls.min_version == "TLS13" {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = if tls.insecure_skip_verify {
        Arc::new(AcceptAnyCertificate(Arc::clone(&provider)))
    } else {
        let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::clone(&provider),
        )
        .build()
        .map_err(|e| ClientError::TlsFile {
            key: "ca_file",
            path: tls.ca_file.clone(),
            message: e.to_string(),
        })?;
        if tls.server_name.is_empty() {
            webpki
        } else {
            let name = ServerName::try_from(tls.server_name.clone()).map_err(|e| {
                ClientError::TlsFile {
                    key: "server_name",
                    path: tls.server_name.clone(),
                    message: e.to_string(),
                }
            })?;
            Arc::new(VerifyAs {
                inner: webpki,
                name,
            })
        }
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = if tls.cert_file.is_empty() {
        builder.with_no_client_auth()
    } else {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert_file)
            .map_err(file_err("cert_file", &tls.cert_file))?
            .collect::<Result<_, _>>()
            .map_err(file_err("cert_file", &tls.cert_file))?;
        let key = PrivateKeyDer::from_pem_file(&tls.key_file)
            .map_err(file_err("key_file", &tls.key_file))?;
        builder.with_client_auth_cert(certs, key)?
    };
    Ok(config)
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
