//! The agent scraping real HTTP targets: the request Prometheus sends, target labels and
//! honor_labels, metric relabeling, report series, staleness, file SD, and targets that fail
//! in every way an exporter can (each gives up=0, a logged reason, and bounded memory).

#![allow(clippy::unwrap_used, reason = "tests")]

use std::time::Duration;

use nodemeter_tests::agent::AgentProcess;
use nodemeter_tests::metrics::Exposition;
use nodemeter_tests::target::{Reply, TestTarget};

/// Scraping only: no cgroup or eBPF series in the way.
const BASE: &str = "cgroup:\n  enabled: false\nebpf:\n  enabled: false\nexposition:\n  timestamps: false\n  scraped_series: true\n";

const APP_BODY: &str = "# HELP app_requests_total Requests served.
# TYPE app_requests_total counter
app_requests_total{code=\"200\",job=\"exported\"} 10
app_requests_total{code=\"500\",job=\"exported\"} 2
# TYPE app_debug gauge
app_debug 1
# TYPE app_temperature gauge
app_temperature{sensor=\"a\"} 21.5
";

fn up(m: &Exposition, job: &str) -> Option<f64> {
    m.value("up", &[("job", job)])
}

#[test]
fn scrapes_a_target_and_serves_its_relabeled_series_with_report_series() {
    let target = TestTarget::start();
    target.route("/metrics", Reply::text(APP_BODY));
    target.route(
        "/gz",
        Reply::Gzip {
            content_type: "text/plain; version=0.0.4".into(),
            body: "gz_metric 42\n".into(),
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let config = format!(
        "{BASE}scrape_configs:
  - job_name: app
    scrape_interval: 1s
    scrape_timeout: 500ms
    params:
      module: [m1]
    bearer_token_file: {token}
    static_configs:
      - targets: ['{addr}']
        labels:
          team: blue
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: app_debug
        action: drop
      - source_labels: [sensor]
        target_label: sensor
        replacement: sensor-$1
  - job_name: gz
    scrape_interval: 1s
    metrics_path: /gz
    static_configs:
      - targets: ['{addr}']
",
        token = token.display(),
        addr = target.address(),
    );
    let agent = AgentProcess::start(&config);
    let instance = target.address();
    let m = agent.wait_for(Duration::from_secs(10), |m| {
        (up(m, "app") == Some(1.0) && up(m, "gz") == Some(1.0)).then(|| m.text.clone())
    });
    let m = Exposition::parse(&m);
    // Target labels win; the exposed `job` moves to `exported_job` (honor_labels: false).
    assert_eq!(
        m.value(
            "app_requests_total",
            &[
                ("code", "200"),
                ("job", "app"),
                ("exported_job", "exported"),
                ("instance", &instance),
                ("team", "blue"),
            ]
        ),
        Some(10.0),
        "{}",
        m.text
    );
    assert_eq!(m.type_of("app_requests_total"), Some("counter"));
    assert_eq!(
        m.find("app_debug", &[]).len(),
        0,
        "dropped by metric relabeling"
    );
    assert_eq!(
        m.value("app_temperature", &[("sensor", "sensor-a")]),
        Some(21.5)
    );
    assert_eq!(m.value("gz_metric", &[("job", "gz")]), Some(42.0));
    assert_eq!(
        m.value("scrape_samples_scraped", &[("job", "app")]),
        Some(4.0)
    );
    assert_eq!(
        m.value("scrape_samples_post_metric_relabeling", &[("job", "app")]),
        Some(3.0)
    );
    assert!(
        m.value("scrape_duration_seconds", &[("job", "app")])
            .is_some()
    );
    assert!(m.value("scrape_series_added", &[("job", "app")]).is_some());

    // The request is the one Prometheus sends.
    let reqs = target.requests();
    let r = reqs
        .iter()
        .find(|r| r.path.starts_with("/metrics"))
        .expect("a scrape of /metrics");
    assert_eq!(r.path, "/metrics?module=m1");
    assert_eq!(
        r.headers.get("accept").map(String::as_str),
        Some(
            "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
        )
    );
    assert_eq!(
        r.headers
            .get("x-prometheus-scrape-timeout-seconds")
            .map(String::as_str),
        Some("0.5")
    );
    assert_eq!(
        r.headers.get("authorization").map(String::as_str),
        Some("Bearer s3cret")
    );
    assert!(
        r.headers
            .get("accept-encoding")
            .is_some_and(|v| v.contains("gzip"))
    );
    assert!(
        r.headers
            .get("user-agent")
            .is_some_and(|v| v.starts_with("nodemeter/"))
    );

    // A rotated token file is used from the next scrape on.
    std::fs::write(&token, "rotated").unwrap();
    agent.wait_for(Duration::from_secs(5), |_| {
        target
            .requests()
            .iter()
            .any(|r| r.headers.get("authorization").map(String::as_str) == Some("Bearer rotated"))
            .then_some(())
    });

    // A series that vanishes from the target vanishes from the agent (stale marker).
    target.route(
        "/metrics",
        Reply::text("app_requests_total{code=\"200\",job=\"exported\"} 11\n"),
    );
    agent.wait_for(Duration::from_secs(10), |m| {
        (m.find("app_requests_total", &[("code", "500")]).is_empty()
            && m.find("app_temperature", &[]).is_empty()
            && m.value("app_requests_total", &[("code", "200")]) == Some(11.0))
        .then_some(())
    });
}

/// Peak resident memory of a process, from /proc.
fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn broken_targets_give_up_0_with_a_logged_reason_and_bounded_memory() {
    let target = TestTarget::start();
    target.route(
        "/slow",
        Reply::Slow {
            delay: Duration::from_secs(5),
            body: "late 1\n".into(),
        },
    );
    target.route("/500", Reply::Status(500));
    target.route("/garbage", Reply::text("this is { not exposition\n"));
    target.route("/limit", Reply::text("a 1\nb 1\nc 1\nd 1\ne 1\n"));
    target.route("/huge", Reply::Huge { size: 1 << 30 });
    target.route(
        "/nocontenttype",
        Reply::Body {
            content_type: None,
            body: "a 1\n".into(),
        },
    );
    let addr = target.address();
    let job = |name: &str, path: &str, extra: &str| {
        format!(
            "  - job_name: {name}\n    scrape_interval: 1s\n    scrape_timeout: 800ms\n    metrics_path: {path}\n{extra}    static_configs:\n      - targets: ['{addr}']\n"
        )
    };
    // Two targets over a limit of one: every target of the job fails, no request is made.
    let target_limit_job = format!(
        "  - job_name: targetlimit\n    scrape_interval: 1s\n    target_limit: 1\n    metrics_path: /never\n    static_configs:\n      - targets: ['{addr}', 'localhost:{}']\n",
        target.addr.port()
    );
    let config = format!(
        "{BASE}scrape:\n  max_body_size: 32MiB\nscrape_configs:\n{}{}{}{}{}{}{}{}",
        job("timeout", "/slow", ""),
        job("http500", "/500", ""),
        job("garbage", "/garbage", ""),
        job("samplelimit", "/limit", "    sample_limit: 4\n"),
        job("huge", "/huge", "    body_size_limit: 10MB\n"),
        job("huge_default_ceiling", "/huge", ""),
        job("nocontenttype", "/nocontenttype", ""),
        target_limit_job,
    );
    let agent = AgentProcess::start(&config);
    let jobs = [
        ("timeout", "timeout", "scrape timed out"),
        ("http500", "http_status", "server returned HTTP status 500"),
        ("garbage", "parse", "invalid exposition: line 1"),
        ("samplelimit", "sample_limit", "sample_limit exceeded"),
        ("huge", "body_size_limit", "body size limit exceeded"),
        (
            "huge_default_ceiling",
            "body_size_limit",
            "body size limit exceeded",
        ),
        ("nocontenttype", "content_type", "nocontenttype"),
    ];
    let m = agent.wait_for(Duration::from_secs(20), |m| {
        let limited = m.find("up", &[("job", "targetlimit")]);
        (limited.len() == 2 && limited.iter().all(|l| l.value == 0.0)).then_some(())?;
        jobs.iter()
            .all(|(j, reason, _)| {
                up(m, j) == Some(0.0)
                    && m.value(
                        "nodemeter_scrape_failures_total",
                        &[("job", j), ("reason", reason)],
                    )
                    .is_some_and(|v| v >= 2.0)
            })
            .then(|| m.text.clone())
    });
    let m = Exposition::parse(&m);
    let limited = m.find("up", &[("job", "targetlimit")]);
    assert_eq!(limited.len(), 2, "{}", m.text);
    assert!(limited.iter().all(|l| l.value == 0.0));
    assert!(target.requests().iter().all(|r| r.path != "/never"));
    // The sample-limit target still reports what it exposed.
    assert_eq!(
        m.value("scrape_samples_scraped", &[("job", "samplelimit")]),
        Some(5.0)
    );
    assert!(m.find("a", &[("job", "samplelimit")]).is_empty());
    assert!(m.find("huge_series", &[]).is_empty());

    let log = agent.log_text();
    for (j, reason, text) in jobs {
        let warnings: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("scrape failed;") && l.contains(&format!("job={j} ")))
            .collect();
        assert_eq!(
            warnings.len(),
            1,
            "job {j}: one warning per state change, not per scrape:\n{log}"
        );
        assert!(
            warnings[0].contains(reason) && warnings[0].contains(text),
            "job {j}: {}",
            warnings[0]
        );
    }
    let hwm_mib = vm_hwm_kib(agent.pid()) / 1024;
    assert!(hwm_mib < 200, "peak RSS {hwm_mib} MiB after 1 GiB bodies");
    eprintln!("agent peak RSS with two 1 GiB targets: {hwm_mib} MiB");

    // The healthy state comes back, and a recovered target logs once.
    target.route("/500", Reply::text("ok 1\n"));
    agent.wait_for(Duration::from_secs(10), |m| {
        (up(m, "http500") == Some(1.0)).then_some(())
    });
}

#[test]
fn file_sd_targets_follow_the_file_and_removed_targets_go_stale() {
    let a = TestTarget::start();
    let b = TestTarget::start();
    a.route("/metrics", Reply::text("from_a 1\n"));
    b.route("/metrics", Reply::text("from_b 1\n"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.yml");
    std::fs::write(
        &file,
        format!("- targets: ['{}']\n  labels: {{side: a}}\n", a.address()),
    )
    .unwrap();
    let config = format!(
        "{BASE}scrape_configs:
  - job_name: files
    scrape_interval: 1s
    file_sd_configs:
      - files: ['{}/*.yml']
    relabel_configs:
      - source_labels: [__meta_filepath]
        regex: '.*/(.*)'
        target_label: source_file
",
        dir.path().display()
    );
    let agent = AgentProcess::start(&config);
    agent.wait_for(Duration::from_secs(10), |m| {
        m.value(
            "from_a",
            &[
                ("side", "a"),
                ("source_file", "targets.yml"),
                ("job", "files"),
            ],
        )
        .map(|_| ())
    });
    std::fs::write(
        &file,
        format!("- targets: ['{}']\n  labels: {{side: b}}\n", b.address()),
    )
    .unwrap();
    // B appears; A's series and report series end about 2.1 intervals after it went away.
    agent.wait_for(Duration::from_secs(15), |m| {
        (m.value("from_b", &[("side", "b")]).is_some()
            && m.find("from_a", &[]).is_empty()
            && m.find("up", &[("instance", &a.address())]).is_empty())
        .then_some(())
    });
}

#[test]
fn scrapes_the_debian_node_exporter() {
    let exporter = std::path::Path::new("/usr/bin/prometheus-node-exporter");
    if !exporter.exists() {
        eprintln!("skipped: prometheus-node-exporter is not installed");
        return;
    }
    let port = nodemeter_tests::agent::free_port();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _exporter = Kill(
        std::process::Command::new(exporter)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start node exporter"),
    );
    let config = format!(
        "{BASE}scrape_configs:
  - job_name: node
    scrape_interval: 1s
    static_configs:
      - targets: ['127.0.0.1:{port}']
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: 'go_.*'
        action: drop
"
    );
    let agent = AgentProcess::start(&config);
    let m = agent.wait_for(Duration::from_secs(15), |m| {
        (up(m, "node") == Some(1.0)).then(|| m.text.clone())
    });
    let m = Exposition::parse(&m);
    let instance = format!("127.0.0.1:{port}");
    assert!(
        !m.find(
            "node_cpu_seconds_total",
            &[("job", "node"), ("instance", &instance)]
        )
        .is_empty(),
        "{}",
        m.text
    );
    assert_eq!(m.type_of("node_cpu_seconds_total"), Some("counter"));
    assert!(m.find("go_goroutines", &[]).is_empty());
    assert!(
        m.value("scrape_samples_scraped", &[("job", "node")])
            .unwrap_or(0.0)
            > 100.0
    );
}
