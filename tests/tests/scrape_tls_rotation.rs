//! `tls_config.server_name` travels as SNI (not only as the name verified), and rotated CA and
//! server certificates are picked up by a running agent. The target is an HTTPS server made by
//! the test that answers only handshakes naming `metrics.internal`, the only name its
//! certificate carries, while the agent connects to 127.0.0.1.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::ExtendedKeyUsagePurpose;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use nodemeter_tests::agent::AgentProcess;
use nodemeter_tests::receivers::{FakeReceiver, Reply};

const SERVER_NAME: &str = "metrics.internal";

/// A CA and a server certificate it signed for [`SERVER_NAME`] only.
struct Pki {
    ca_pem: String,
    server: Arc<CertifiedKey>,
}

fn pki(generation: usize) -> Pki {
    let ca = nodemeter_tests::pki::Pki::new(&format!("test CA {generation}"));
    let server = ca.issue(&[SERVER_NAME], false, ExtendedKeyUsagePurpose::ServerAuth);
    let signing = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(server.key)
        .unwrap();
    Pki {
        ca_pem: ca.ca.pem(),
        server: Arc::new(CertifiedKey::new(vec![server.cert], signing)),
    }
}

/// Serves the current certificate to handshakes that name [`SERVER_NAME`]; a handshake
/// without SNI (or with another name) gets no certificate and fails.
#[derive(Debug)]
struct SniOnly(Mutex<Arc<CertifiedKey>>);

impl ResolvesServerCert for SniOnly {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        (hello.server_name() == Some(SERVER_NAME)).then(|| Arc::clone(&self.0.lock().unwrap()))
    }
}

fn replace_file(path: &std::path::Path, text: &str) {
    // As a Secret volume or cert-manager does: a new file renamed over the old one.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn server_name_is_sent_as_sni_and_rotated_certificates_are_picked_up() {
    let first = pki(1);
    let resolver = Arc::new(SniOnly(Mutex::new(Arc::clone(&first.server))));
    let mut server_config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_cert_resolver(Arc::clone(&resolver) as Arc<dyn ResolvesServerCert>);
    // No session resumption: every handshake presents (and the agent verifies) the current
    // certificate.
    server_config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    server_config.send_tls13_tickets = 0;
    let server_config = Arc::new(server_config);
    let generation = Arc::new(AtomicUsize::new(1));
    let hosts = Arc::new(Mutex::new(Vec::<String>::new()));
    let (g, h) = (Arc::clone(&generation), Arc::clone(&hosts));
    // `Connection: close`: every scrape makes a new handshake, so a kept-alive connection from
    // before the rotation cannot hide a client that still trusts the old CA.
    let target = FakeReceiver::start_with(
        move |_, req| {
            h.lock()
                .unwrap()
                .push(req.header("host").unwrap_or("").to_string());
            Reply::status(200)
                .header("Content-Type", "text/plain; version=0.0.4")
                .header("Connection", "close")
                .body(&format!(
                    "tls_metric{{ca=\"{}\"}} 1\n",
                    g.load(Ordering::SeqCst)
                ))
        },
        Some(server_config),
    );
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &first.ca_pem).unwrap();
    let job = |name: &str, tls: &str| {
        format!(
            "  - job_name: {name}\n    scheme: https\n    scrape_interval: 500ms\n    scrape_timeout: 400ms\n    tls_config:\n{tls}    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            target.addr.port()
        )
    };
    let config = format!(
        "cgroup:\n  enabled: false\nebpf:\n  enabled: false\nscrape_configs:\n{}{}",
        job(
            "sni",
            &format!(
                "      ca_file: {}\n      server_name: {SERVER_NAME}\n",
                ca_file.display()
            )
        ),
        // Verification off: only the missing SNI can make this job fail.
        job("no_sni", "      insecure_skip_verify: true\n"),
    );
    let agent = AgentProcess::start(&config);
    let up = |m: &nodemeter_tests::metrics::Exposition, j: &str| m.value("up", &[("job", j)]);
    agent.wait_for(Duration::from_secs(20), |m| {
        (up(m, "sni") == Some(1.0)
            && up(m, "no_sni") == Some(0.0)
            && m.value("tls_metric", &[("job", "sni"), ("ca", "1")]) == Some(1.0))
        .then_some(())
    });
    let port = target.addr.port();
    assert!(
        hosts
            .lock()
            .unwrap()
            .iter()
            .all(|h| *h == format!("127.0.0.1:{port}")),
        "the Host header names the target's address, not server_name: {:?}",
        hosts.lock().unwrap()
    );

    // The server rotates to a certificate of a new CA: the agent, trusting the old CA, fails...
    let second = pki(2);
    *resolver.0.lock().unwrap() = Arc::clone(&second.server);
    generation.store(2, Ordering::SeqCst);
    agent.wait_for(Duration::from_secs(10), |m| {
        (up(m, "sni") == Some(0.0)).then_some(())
    });
    // ...until the CA file is rotated too; then it recovers without a restart.
    replace_file(&ca_file, &second.ca_pem);
    agent.wait_for(Duration::from_secs(10), |m| {
        (up(m, "sni") == Some(1.0)
            && m.value("tls_metric", &[("job", "sni"), ("ca", "2")]) == Some(1.0))
        .then_some(())
    });
    let log = agent.log_text();
    assert!(log.contains("TLS files changed"), "{log}");
}
