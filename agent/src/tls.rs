//! Prometheus's `tls_config` on rustls, shared by every HTTPS client of the agent (scrape
//! targets, remote-write receivers):
//!
//! * CA, client certificate and key files are re-read when they change (cert-manager rotates
//!   them in place), checked by file metadata before each request rather than read each time;
//! * `server_name` is both the name verified and the name sent as SNI, while the TCP connection
//!   still goes to the URL's host ([`ServerNameRoute`]);
//! * `insecure_skip_verify` accepts any certificate.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tracing::{info, warn};

use crate::file_cache::FileStamp;

/// The `tls_config` keys both scrape and remote write understand.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsSettings {
    pub ca: String,
    pub ca_file: String,
    pub cert: String,
    pub cert_file: String,
    pub key: String,
    pub key_file: String,
    pub server_name: String,
    pub insecure_skip_verify: bool,
    /// `min_version: TLS13`.
    pub tls13_only: bool,
    /// ALPN protocols offered, in order.
    pub alpn: Vec<Vec<u8>>,
}

/// Why a TLS client config cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    #[error("tls_config.{key}: cannot read {path}: {message}")]
    Read {
        key: &'static str,
        path: String,
        message: String,
    },
    #[error("tls_config.{key}: {message}")]
    Invalid { key: &'static str, message: String },
}

/// The current client config and the generation it belongs to: a client built from
/// generation `n` is stale once [`ReloadingTls::current`] returns another number.
#[derive(Clone, Debug)]
pub struct TlsVersion {
    pub generation: u64,
    pub config: Arc<rustls::ClientConfig>,
}

struct Loaded {
    stamps: Vec<Option<FileStamp>>,
    version: TlsVersion,
    /// The stamps a reload last failed on, so one bad rotation is logged once.
    failed: Option<Vec<Option<FileStamp>>>,
}

/// A rustls client config that follows its files.
pub struct ReloadingTls {
    settings: TlsSettings,
    provider: Arc<rustls::crypto::CryptoProvider>,
    loaded: Mutex<Loaded>,
}

impl std::fmt::Debug for ReloadingTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingTls")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl ReloadingTls {
    /// Loads the files once; failing here fails the config that names them.
    pub fn new(settings: TlsSettings) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let stamps = file_stamps(&settings);
        let config = build(&settings, &provider)?;
        Ok(Self {
            loaded: Mutex::new(Loaded {
                stamps,
                version: TlsVersion {
                    generation: 0,
                    config: Arc::new(config),
                },
                failed: None,
            }),
            settings,
            provider,
        })
    }

    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// The config to connect with now: rebuilt if a file changed since the last call. A
    /// rotation caught half-written (or otherwise unusable) keeps the previous config and is
    /// tried again at the next call.
    pub fn current(&self) -> TlsVersion {
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if self.settings.ca_file.is_empty()
            && self.settings.cert_file.is_empty()
            && self.settings.key_file.is_empty()
        {
            return loaded.version.clone();
        }
        let stamps = file_stamps(&self.settings);
        if stamps == loaded.stamps || loaded.failed.as_ref() == Some(&stamps) {
            return loaded.version.clone();
        }
        match build(&self.settings, &self.provider) {
            Ok(config) => {
                let generation = loaded.version.generation + 1;
                info!(
                    ca_file = %self.settings.ca_file,
                    cert_file = %self.settings.cert_file,
                    generation,
                    "TLS files changed; new connections use them"
                );
                loaded.version = TlsVersion {
                    generation,
                    config: Arc::new(config),
                };
                loaded.stamps = stamps;
                loaded.failed = None;
            }
            Err(e) => {
                warn!(error = %e, "TLS files changed but cannot be used; keeping the previous ones");
                loaded.failed = Some(stamps);
            }
        }
        loaded.version.clone()
    }
}

fn file_stamps(s: &TlsSettings) -> Vec<Option<FileStamp>> {
    [&s.ca_file, &s.cert_file, &s.key_file]
        .into_iter()
        .filter(|f| !f.is_empty())
        .map(|f| FileStamp::of(f))
        .collect()
}

fn read_pem(key: &'static str, inline: &str, file: &str) -> Result<Option<Vec<u8>>, TlsError> {
    if !file.is_empty() {
        return std::fs::read(file).map(Some).map_err(|e| TlsError::Read {
            key,
            path: file.to_string(),
            message: e.to_string(),
        });
    }
    Ok((!inline.is_empty()).then(|| inline.as_bytes().to_vec()))
}

/// Builds the rustls client config `s` describes, reading its files now.
pub fn build(
    s: &TlsSettings,
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<rustls::ClientConfig, TlsError> {
    let invalid = |key: &'static str| move |e: String| TlsError::Invalid { key, message: e };
    let verifier: Arc<dyn ServerCertVerifier> = if s.insecure_skip_verify {
        Arc::new(AcceptAnyCertificate(Arc::clone(provider)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match read_pem("ca_file", &s.ca, &s.ca_file)? {
            Some(pem) => {
                for cert in CertificateDer::pem_slice_iter(&pem) {
                    let cert = cert.map_err(|e| invalid("ca_file")(e.to_string()))?;
                    roots
                        .add(cert)
                        .map_err(|e| invalid("ca_file")(e.to_string()))?;
                }
                if roots.is_empty() {
                    return Err(invalid("ca_file")("no PEM certificate in the CA".into()));
                }
            }
            None => {
                // An unreadable system store only matters for https URLs; they fail visibly.
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
            }
        }
        let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::clone(provider),
        )
        .build()
        .map_err(|e| invalid("ca_file")(e.to_string()))?;
        if s.server_name.is_empty() {
            webpki
        } else {
            let name = ServerName::try_from(s.server_name.clone())
                .map_err(|e| invalid("server_name")(e.to_string()))?;
            Arc::new(VerifyAs {
                name,
                inner: webpki,
            })
        }
    };
    let versions: &[&rustls::SupportedProtocolVersion] = if s.tls13_only {
        &[&rustls::version::TLS13]
    } else {
        rustls::ALL_VERSIONS
    };
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(provider))
        .with_protocol_versions(versions)
        .map_err(|e| invalid("min_version")(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match (
        read_pem("cert_file", &s.cert, &s.cert_file)?,
        read_pem("key_file", &s.key, &s.key_file)?,
    ) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(&cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| invalid("cert_file")(e.to_string()))?;
            if chain.is_empty() {
                return Err(invalid("cert_file")(
                    "no PEM certificate in the client certificate".into(),
                ));
            }
            let key = PrivateKeyDer::from_pem_slice(&key)
                .map_err(|e| invalid("key_file")(e.to_string()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| invalid("cert_file")(e.to_string()))?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols.clone_from(&s.alpn);
    Ok(config)
}

/// How a request reaches a target whose `tls_config.server_name` is a DNS name: reqwest takes
/// both the TCP peer and the TLS name (SNI, verification) from the URL, so the request URL
/// names `server_name`, a resolver maps that name back to the URL's real host, and the `Host`
/// header keeps the real authority, as Prometheus (Go's `tls.Config.ServerName`) sends it.
#[derive(Clone, Debug)]
pub struct ServerNameRoute {
    /// The URL to request: the original with its host replaced by `server_name`.
    pub url: reqwest::Url,
    /// The original `host[:port]`.
    pub host_header: reqwest::header::HeaderValue,
    /// Resolves `server_name` to the original host; every other name normally.
    pub resolver: Arc<ResolveServerNameTo>,
}

impl ServerNameRoute {
    /// `None` when no rewrite is needed: plain HTTP, no `server_name`, or a `server_name` that
    /// is an IP address (no SNI exists for those; [`VerifyAs`] checks the certificate).
    pub fn new(url: &reqwest::Url, server_name: &str) -> Option<Self> {
        if url.scheme() != "https"
            || server_name.is_empty()
            || server_name.parse::<IpAddr>().is_ok()
            || url.host_str() == Some(server_name)
        {
            return None;
        }
        let host = match url.host()? {
            url::Host::Domain(d) => RealHost::Name(d.to_string()),
            url::Host::Ipv4(ip) => RealHost::Ip(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => RealHost::Ip(IpAddr::V6(ip)),
        };
        let authority = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str()?),
            None => url.host_str()?.to_string(),
        };
        let host_header = reqwest::header::HeaderValue::from_str(&authority).ok()?;
        let mut rewritten = url.clone();
        rewritten.set_host(Some(server_name)).ok()?;
        if rewritten.port().is_none() && url.port_or_known_default() != Some(443) {
            rewritten.set_port(url.port_or_known_default()).ok()?;
        }
        Some(Self {
            url: rewritten,
            host_header,
            resolver: Arc::new(ResolveServerNameTo {
                server_name: server_name.to_ascii_lowercase(),
                host,
            }),
        })
    }
}

#[derive(Debug)]
enum RealHost {
    Ip(IpAddr),
    Name(String),
}

/// The resolver of a [`ServerNameRoute`].
#[derive(Debug)]
pub struct ResolveServerNameTo {
    server_name: String,
    host: RealHost,
}

impl reqwest::dns::Resolve for ResolveServerNameTo {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        // Port 0: the connector puts the URL's port in.
        let target = if name.as_str().eq_ignore_ascii_case(&self.server_name) {
            match &self.host {
                RealHost::Ip(ip) => {
                    let addr = SocketAddr::new(*ip, 0);
                    return Box::pin(async move {
                        Ok(Box::new(std::iter::once(addr)) as reqwest::dns::Addrs)
                    });
                }
                RealHost::Name(n) => n.clone(),
            }
        } else {
            name.as_str().to_string()
        };
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((target.as_str(), 0))
                .await?
                .collect();
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Verifies the server's certificate for the configured `server_name` instead of the URL's
/// host (targets are usually addressed by IP while their certificates name a service).
#[derive(Debug)]
pub struct VerifyAs {
    pub name: ServerName<'static>,
    pub inner: Arc<rustls::client::WebPkiServerVerifier>,
}

impl ServerCertVerifier for VerifyAs {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp, now)
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `insecure_skip_verify`: any certificate is accepted; handshake signatures are still checked
/// so the connection is at least consistent with the presented key.
#[derive(Debug)]
pub struct AcceptAnyCertificate(pub Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn server_name_route_rewrites_host_and_keeps_the_real_authority() {
        let url = reqwest::Url::parse("https://127.0.0.1:8443/metrics?x=1").unwrap();
        let r = ServerNameRoute::new(&url, "metrics.internal").unwrap();
        assert_eq!(r.url.as_str(), "https://metrics.internal:8443/metrics?x=1");
        assert_eq!(r.host_header, "127.0.0.1:8443");
        let default_port = reqwest::Url::parse("https://[::1]/m").unwrap();
        let r = ServerNameRoute::new(&default_port, "a.example").unwrap();
        assert_eq!(r.url.as_str(), "https://a.example/m");
        assert_eq!(r.host_header, "[::1]");
    }

    #[test]
    fn no_route_is_needed_without_sni() {
        let https = reqwest::Url::parse("https://10.0.0.1:443/").unwrap();
        let http = reqwest::Url::parse("http://10.0.0.1:80/").unwrap();
        assert!(ServerNameRoute::new(&https, "").is_none());
        assert!(ServerNameRoute::new(&https, "10.0.0.2").is_none());
        assert!(ServerNameRoute::new(&http, "metrics.internal").is_none());
    }

    #[test]
    fn unchanged_files_keep_the_generation_and_a_bad_rotation_keeps_the_old_config() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let cert = self_signed_pem();
        std::fs::write(&ca, &cert).unwrap();
        let tls = ReloadingTls::new(TlsSettings {
            ca_file: ca.display().to_string(),
            ..TlsSettings::default()
        })
        .unwrap();
        assert_eq!(tls.current().generation, 0);
        assert_eq!(tls.current().generation, 0);
        std::fs::write(&ca, "not a certificate").unwrap();
        assert_eq!(
            tls.current().generation,
            0,
            "unusable rotation is not taken"
        );
        std::fs::write(&ca, format!("{cert}\n")).unwrap();
        assert_eq!(tls.current().generation, 1, "a usable rotation is");
    }

    /// A fixed self-signed certificate (the agent has no certificate generator).
    fn self_signed_pem() -> String {
        include_str!("tls_testdata/self_signed.pem").to_string()
    }
}
