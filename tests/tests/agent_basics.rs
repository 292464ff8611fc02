//! The agent as a user meets it: start-up on a config, /metrics in both formats, health and
//! readiness, config errors, orderly shutdown.

use std::process::Command;
use std::time::Duration;

use nodemeter_tests::agent::{AgentProcess, binary};

const QUIET_CONFIG: &str = "cgroup:\n  interval: 1s\nebpf:\n  enabled: false\n";

#[test]
fn serves_health_readiness_and_self_metrics_then_stops_cleanly_on_sigterm() {
    let agent = AgentProcess::start(QUIET_CONFIG);
    assert_eq!(agent.get("/healthz").map(|r| r.0), Some(200));
    agent.wait_for(Duration::from_secs(10), |_| {
        (agent.get("/readyz")?.0 == 200).then_some(())
    });
    let m = agent.scrape();
    assert_eq!(m.value("nodemeter_build_info", &[]), Some(1.0));
    assert!(
        m.value("nodemeter_process_resident_memory_bytes", &[])
            .is_some_and(|v| v > 0.0)
    );
    assert_eq!(
        m.type_of("nodemeter_pipeline_batches_total"),
        Some("counter")
    );
    let status = agent.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

#[test]
fn openmetrics_is_served_when_the_scraper_asks_for_it() {
    let agent = AgentProcess::start(QUIET_CONFIG);
    agent.wait_for(Duration::from_secs(10), |_| {
        (agent.get("/readyz")?.0 == 200).then_some(())
    });
    let (status, body) = agent
        .get_with(
            "/metrics",
            &[(
                "Accept",
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
            )],
        )
        .expect("answer");
    assert_eq!(status, 200);
    assert!(body.ends_with("# EOF\n"), "{body}");
    assert!(
        body.contains("# TYPE nodemeter_pipeline_batches counter"),
        "{body}"
    );
}

fn run_with_config(text: &str) -> (i32, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, text).expect("write");
    let out = Command::new(binary())
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .expect("run agent");
    let stderr =
        String::from_utf8_lossy(&out.stderr).replace(&path.display().to_string(), "bad.yaml");
    (out.status.code().unwrap_or(-1), stderr)
}

#[test]
fn an_unknown_key_is_one_clear_error_with_file_line_and_key() {
    let (code, stderr) = run_with_config("cgroup:\n  interval: 5s\n  intreval: 5s\n");
    assert_eq!(code, 2);
    assert!(
        stderr.contains("bad.yaml:3:3: cgroup.intreval: unknown field `intreval`"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn a_wrong_type_is_one_clear_error_with_file_line_and_key() {
    let (code, stderr) =
        run_with_config("server:\n  listen: 127.0.0.1:0\nebpf:\n  enabled: maybe\n");
    assert_eq!(code, 2);
    assert!(stderr.contains("bad.yaml:4:"), "{stderr}");
    assert!(stderr.contains("ebpf.enabled"), "{stderr}");
}

#[test]
fn an_unreadable_config_file_is_one_clear_error() {
    let out = Command::new(binary())
        .args(["run", "--config", "/nonexistent/nodemeter.yaml"])
        .output()
        .expect("run agent");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/nodemeter.yaml: cannot read: No such file or directory"),
        "{stderr}"
    );
}

#[test]
fn config_check_accepts_the_embedded_default() {
    let out = Command::new(binary())
        .args(["config", "default"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("default.yaml");
    std::fs::write(&path, &out.stdout).expect("write");
    let check = Command::new(binary())
        .args(["config", "check"])
        .arg(&path)
        .output()
        .expect("run");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}
