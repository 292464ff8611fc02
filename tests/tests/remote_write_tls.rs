//! TLS to the receiver with certificates made by the test: a CA, a server certificate with the
//! right subject alternative names, mutual TLS with a client certificate, `server_name`, and a
//! clear error for a server certificate issued for another name.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rcgen::ExtendedKeyUsagePurpose;

use nodemeter::config::Config;
use nodemeter::sinks::remote_write::ProtobufMessage;
use nodemeter::sinks::remote_write::client::{Client, Outcome};
use nodemeter_tests::pki::Pki;
use nodemeter_tests::receivers::{FakeReceiver, Reply};
use nodemeter_tests::sink::{Sink, batch, now_ms};

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn client(yaml: &str) -> Client {
    let c = Config::from_yaml(yaml, "test.yaml").unwrap();
    Client::new(Arc::new(c.remote_write[0].clone())).unwrap()
}

fn body() -> Vec<u8> {
    let samples = batch(&[(&[("__name__", "tls_test")], now_ms(), 1.0)]).samples;
    nodemeter::sinks::remote_write::encode::body(ProtobufMessage::V1, &samples, &Default::default())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_a_client_certificate_delivers() {
    let pki = Pki::new("nodemeter test CA");
    let server = pki.issue(&["localhost"], true, ExtendedKeyUsagePurpose::ServerAuth);
    let client_cert = pki.issue(&["nodemeter"], false, ExtendedKeyUsagePurpose::ClientAuth);
    let rx = FakeReceiver::start_with(
        |_, _| Reply::status(204),
        Some(pki.server_config(&server, true)),
    );
    let dir = tempfile::tempdir().unwrap();
    let ca = write(dir.path(), "ca.pem", &pki.ca.pem());
    let cert = write(dir.path(), "client.pem", &client_cert.cert_pem);
    let key = write(dir.path(), "client.key", &client_cert.key_pem);
    let yaml = format!(
        "remote_write:\n  - url: https://localhost:{}/api/v1/write\n    tls_config:\n      ca_file: {ca}\n      cert_file: {cert}\n      key_file: {key}\n    queue_config:\n      batch_send_deadline: 50ms\n",
        rx.addr.port()
    );
    let wal = tempfile::tempdir().unwrap();
    let sink = Sink::start(&yaml, wal.path());
    let t = now_ms();
    sink.send(batch(&[(&[("__name__", "tls_test")], t, 3.0)]))
        .await;
    let got = rx.wait_for(1, Duration::from_secs(10));
    sink.finish().await;
    assert_eq!(got[0].samples()[0].1, t);

    // The same server refuses a client without a certificate.
    let no_cert = client(&format!(
        "remote_write:\n  - url: https://localhost:{}/api/v1/write\n    tls_config:\n      ca_file: {ca}\n",
        rx.addr.port()
    ));
    match no_cert.send(ProtobufMessage::V1, body(), 0).await {
        Outcome::Retry { error, .. } => assert!(!error.is_empty()),
        other => panic!("expected a TLS failure, got {other:?}"),
    }
    assert_eq!(rx.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_name_is_refused_with_a_clear_error() {
    let pki = Pki::new("nodemeter test CA");
    let server = pki.issue(&["rw.internal"], false, ExtendedKeyUsagePurpose::ServerAuth);
    let rx = FakeReceiver::start_with(
        |_, _| Reply::status(204),
        Some(pki.server_config(&server, false)),
    );
    let dir = tempfile::tempdir().unwrap();
    let ca = write(dir.path(), "ca.pem", &pki.ca.pem());
    let url = format!("https://127.0.0.1:{}/api/v1/write", rx.addr.port());

    let wrong = client(&format!(
        "remote_write:\n  - url: {url}\n    tls_config:\n      ca_file: {ca}\n"
    ));
    match wrong.send(ProtobufMessage::V1, body(), 0).await {
        Outcome::Retry { error, .. } => {
            assert!(error.contains("not valid for name"), "{error}");
            assert!(
                error.contains("127.0.0.1"),
                "names what was expected: {error}"
            );
        }
        other => panic!("expected a certificate error, got {other:?}"),
    }

    // tls_config.server_name says which name to verify instead of the URL's host.
    let named = client(&format!(
        "remote_write:\n  - url: {url}\n    tls_config:\n      ca_file: {ca}\n      server_name: rw.internal\n"
    ));
    assert!(matches!(
        named.send(ProtobufMessage::V1, body(), 0).await,
        Outcome::Delivered { status: 204, .. }
    ));

    // A CA that did not sign the server's certificate is refused too.
    let other = Pki::new("another CA");
    let other_ca = write(dir.path(), "other.pem", &other.ca.pem());
    let untrusted = client(&format!(
        "remote_write:\n  - url: {url}\n    tls_config:\n      ca_file: {other_ca}\n      server_name: rw.internal\n"
    ));
    match untrusted.send(ProtobufMessage::V1, body(), 0).await {
        Outcome::Retry { error, .. } => assert!(error.contains("UnknownIssuer"), "{error}"),
        other => panic!("expected an unknown issuer, got {other:?}"),
    }
    assert_eq!(rx.received().len(), 1);
}
