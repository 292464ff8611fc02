//! HTTPS targets: a private CA, a client certificate (mutual TLS), `server_name` for a target
//! addressed by IP, and `insecure_skip_verify`. The target is `openssl s_server`, certificates
//! come from the `openssl` command; the test is skipped with a reason if it is missing.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nodemeter_tests::agent::{AgentProcess, free_port};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// CA, server certificate for `metrics.internal` only, client certificate.
fn make_certs(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=test-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:metrics.internal\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for who in ["server", "client"] {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN={who}"),
                "-keyout",
                &format!("{who}.key"),
                "-out",
                &format!("{who}.csr"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{who}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &format!("{who}.ext"),
                "-out",
                &format!("{who}.pem"),
            ],
        );
    }
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn https_targets_with_ca_client_certificate_server_name_and_skip_verify() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("skipped: the openssl command is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_certs(d);
    // With -HTTP, s_server sends the file as the complete response, headers included.
    std::fs::write(
        d.join("metrics"),
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\r\ntls_metric 1\n",
    )
    .unwrap();
    let port = free_port();
    // -HTTP serves files from the working directory; -Verify requires a client certificate.
    let _server = Kill(
        Command::new("openssl")
            .args([
                "s_server",
                "-quiet",
                "-HTTP",
                "-accept",
                &format!("127.0.0.1:{port}"),
                "-cert",
                "server.pem",
                "-key",
                "server.key",
                "-CAfile",
                "ca.pem",
                "-Verify",
                "1",
            ])
            .current_dir(d)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start openssl s_server"),
    );
    let p = d.display();
    let job = |name: &str, tls: &str| {
        format!(
            "  - job_name: {name}\n    scheme: https\n    scrape_interval: 1s\n    tls_config:\n{tls}    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        )
    };
    let client = format!("      cert_file: {p}/client.pem\n      key_file: {p}/client.key\n");
    let config = format!(
        "cgroup:\n  enabled: false\nebpf:\n  enabled: false\nexposition:\n  scraped_series: true\nscrape_configs:\n{}{}{}",
        job(
            "verified",
            &format!("      ca_file: {p}/ca.pem\n      server_name: metrics.internal\n{client}")
        ),
        job(
            "wrong_name",
            &format!("      ca_file: {p}/ca.pem\n{client}")
        ),
        job(
            "skip_verify",
            &format!("      insecure_skip_verify: true\n{client}")
        ),
    );
    let agent = AgentProcess::start(&config);
    agent.wait_for(Duration::from_secs(20), |m| {
        let up = |j: &str| m.value("up", &[("job", j)]);
        (up("verified") == Some(1.0)
            && up("skip_verify") == Some(1.0)
            && up("wrong_name") == Some(0.0)
            && m.value("tls_metric", &[("job", "verified")]) == Some(1.0))
        .then_some(())
    });
    let log = agent.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("job=wrong_name") && l.contains("reason=\"connection\"")),
        "{log}"
    );
}
