//! The scrape rules of spec sections 5.3-5.7 on real exposition bodies, and config
//! compatibility with Prometheus agent configs.

use std::sync::Arc;

use super::append::{Counts, TargetState};
use super::config::ScrapeConfig;
use super::job::{Job, Limits, ScrapeError};
use crate::config::{Config, ConfigError, GlobalConfig};
use crate::exposition::parse::{Format, Parser};
use crate::model::{FamilyMetadata, Labels, MetricType, Sample, is_stale_nan};

const BENCH_CONFIG: &str = include_str!("testdata/prom-agent.yml");
const BENCH_TARGET: &str = include_str!("testdata/bench-target.prom");

fn job(yaml: &str) -> Job {
    let cfg: ScrapeConfig = serde_yaml::from_str(yaml).unwrap();
    Job::new(&cfg, &GlobalConfig::default(), 1 << 20).unwrap()
}

fn target() -> Labels {
    Labels::from_pairs([("job", "j"), ("instance", "h:1")])
}

struct Scrape {
    samples: Vec<Sample>,
    metadata: Vec<FamilyMetadata>,
    counts: Counts,
    result: Result<(), ScrapeError>,
}

impl Scrape {
    fn live(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .samples
            .iter()
            .filter(|s| !is_stale_nan(s.value))
            .map(|s| format!("{} {}", s.labels, s.value))
            .collect();
        v.sort();
        v
    }
    fn stale(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .samples
            .iter()
            .filter(|s| is_stale_nan(s.value))
            .map(|s| s.labels.to_string())
            .collect();
        v.sort();
        v
    }
}

fn scrape(state: &mut TargetState, job: &Job, body: &str, ts: i64) -> Scrape {
    let mut samples = Vec::new();
    let mut metadata = Vec::new();
    let (counts, result) = state.append(
        job,
        &target(),
        body.as_bytes(),
        Format::PrometheusText,
        ts,
        &mut samples,
        &mut metadata,
    );
    Scrape {
        samples,
        metadata,
        counts,
        result,
    }
}

// ---- config -------------------------------------------------------------------------------

#[test]
fn a_prometheus_agent_config_from_the_bench_loads_unchanged() {
    let config: Config = serde_yaml::from_str(BENCH_CONFIG).unwrap();
    // remote_write belongs to another module; everything else must be accepted as is.
    let problems: Vec<_> = config
        .validate()
        .into_iter()
        .filter(|(p, _)| !p.starts_with("remote_write"))
        .collect();
    assert!(problems.is_empty(), "{problems:?}");
    let sc = &config.scrape_configs[0];
    assert_eq!(sc.job_name, "bench");
    assert_eq!(sc.interval(&config.global).to_string(), "5s");
    assert_eq!(sc.timeout(&config.global).to_string(), "4s");
    let job = Job::new(sc, &config.global, 1 << 20).unwrap();
    assert_eq!(job.metric_rules.len(), 3);
    assert_eq!(sc.static_configs[0].targets.len(), 3);

    // The bench's relabeling keeps 130 of the 200 series of a target.
    let mut state = TargetState::new();
    let s = scrape(&mut state, &job, BENCH_TARGET, 1000);
    s.result.as_ref().unwrap();
    assert_eq!(s.counts.scraped, 200);
    assert_eq!(s.counts.post_relabel, 130);
    assert!(
        s.samples
            .iter()
            .all(|x| x.labels.get("pod_template_hash").is_none())
    );
    assert!(
        s.samples
            .iter()
            .all(|x| x.labels.get("env") != Some("prod"))
    );
}

fn located(yaml: &str) -> crate::config::Located {
    match Config::from_yaml(yaml, "p.yml") {
        Err(ConfigError::Invalid(l)) => *l,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn unsupported_prometheus_keys_are_named_never_ignored() {
    let e = located(
        "scrape_configs:\n  - job_name: k\n    kubernetes_sd_configs:\n      - role: pod\n",
    );
    assert_eq!(e.path, "scrape_configs[0].kubernetes_sd_configs");
    assert_eq!(e.line, Some(3));
    assert!(e.message.contains("not supported"), "{e}");
    let e = located("scrape_configs:\n  - job_name: k\n    native_histogram_bucket_limit: 10\n");
    assert_eq!(e.path, "scrape_configs[0].native_histogram_bucket_limit");
    let e = located("scrape_configs:\n  - job_name: k\n    scrape_protocols: [PrometheusProto]\n");
    assert_eq!(e.path, "scrape_configs[0].scrape_protocols");
    let e = located("scrape_configs:\n  - job_name: k\n    colour: blue\n");
    assert!(e.message.contains("unknown field `colour`"), "{e}");
}

#[test]
fn unsupported_prometheus_keys_in_global_and_remote_write_are_named() {
    let e = located("global:\n  scrape_interval: 15s\n  query_log_file: q.log\n");
    assert_eq!(e.path, "global.query_log_file");
    assert!(e.message.contains("not supported"), "{e}");
    let e = located("global:\n  scrape_protocols: [PrometheusProto]\n");
    assert_eq!(e.path, "global.scrape_protocols");
    assert!(e.message.contains("PrometheusProto"), "{e}");
    let e = located("remote_write:\n  - url: http://r/api/v1/write\n    sigv4:\n      region: x\n");
    assert_eq!(e.path, "remote_write[0].sigv4");
    assert_eq!(e.line, Some(3));
    assert!(
        e.message.contains("\"sigv4\" is a Prometheus setting"),
        "{e}"
    );
    let e = located(
        "remote_write:\n  - url: http://r/api/v1/write\n    tls_config:\n      max_version: TLS13\n",
    );
    assert!(e.message.contains("not support"), "{e}");
    let e = located("rule_files: [a.yml]\n");
    assert!(
        e.message.contains("\"rule_files\" is a Prometheus setting"),
        "{e}"
    );
    let e = located("global:\n  colour: blue\n");
    assert!(e.message.contains("unknown field `colour`"), "{e}");
}

#[test]
fn global_limits_apply_to_jobs_that_set_none_with_prometheus_precedence() {
    let config = Config::from_yaml(
        "global:\n  sample_limit: 100\n  label_limit: 30\n  label_name_length_limit: 40\n  label_value_length_limit: 50\n  target_limit: 5\n  body_size_limit: 1MB\n  keep_dropped_targets: 7\n  scrape_protocols: [PrometheusText0.0.4]\nscrape_configs:\n  - job_name: inherits\n  - job_name: own\n    sample_limit: 10\n    body_size_limit: 2KB\n    scrape_protocols: [OpenMetricsText1.0.0]\n  - job_name: zero_still_inherits\n    sample_limit: 0\n",
        "p.yml",
    )
    .unwrap();
    let job = |i: usize| Job::new(&config.scrape_configs[i], &config.global, 64 << 20).unwrap();
    let inherits = job(0);
    assert_eq!(
        inherits.limits,
        Limits {
            sample_limit: 100,
            label_limit: 30,
            label_name_length_limit: 40,
            label_value_length_limit: 50,
            target_limit: 5,
            body_size_limit: 1 << 20,
        }
    );
    assert_eq!(
        config.scrape_configs[0]
            .limits(&config.global)
            .keep_dropped_targets,
        7
    );
    assert_eq!(
        inherits.headers[reqwest::header::ACCEPT],
        "text/plain;version=0.0.4;q=0.6,*/*;q=0.5"
    );
    let own = job(1);
    assert_eq!(own.limits.sample_limit, 10);
    assert_eq!(own.limits.body_size_limit, 2 << 10);
    assert_eq!(own.limits.label_limit, 30);
    assert!(
        own.headers[reqwest::header::ACCEPT]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert_eq!(job(2).limits.sample_limit, 100);
    // Without any limit, the agent's own body ceiling applies.
    let none = Config::from_yaml("scrape_configs:\n  - job_name: a\n", "p.yml").unwrap();
    let j = Job::new(&none.scrape_configs[0], &none.global, 64 << 20).unwrap();
    assert_eq!(j.limits.body_size_limit, 64 << 20);
    assert_eq!(j.limits.sample_limit, 0);
}

#[test]
fn validation_matches_prometheus() {
    let e = located("scrape_configs:\n  - job_name: a\n  - job_name: a\n");
    assert_eq!(e.path, "scrape_configs[1].job_name");
    assert!(
        e.message
            .contains("multiple scrape configs with job name \"a\"")
    );

    let e = located(
        "scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 6s\n",
    );
    assert_eq!(e.path, "scrape_configs[0].scrape_timeout");
    assert!(e.message.contains("greater than scrape interval"));

    let e = located(
        "scrape_configs:\n  - job_name: a\n    metric_relabel_configs:\n      - action: hashmod\n        target_label: x\n",
    );
    assert_eq!(e.path, "scrape_configs[0].metric_relabel_configs[0]");
    assert!(e.message.contains("non-zero modulus"), "{e}");

    let e = located(
        "scrape_configs:\n  - job_name: a\n    bearer_token: x\n    basic_auth: {username: u}\n",
    );
    assert!(e.message.contains("at most one of"), "{e}");

    let e = located(
        "scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - files: [targets.txt]\n",
    );
    assert_eq!(e.path, "scrape_configs[0].file_sd_configs[0].files[0]");

    let e = located("scrape_configs:\n  - job_name: a\n    body_size_limit: 10\n");
    assert!(e.message.contains("no unit"), "{e}");
}

#[test]
fn defaults_are_prometheus_defaults() {
    let c = Config::from_yaml(
        "global:\n  scrape_interval: 5s\nscrape_configs:\n  - job_name: a\n  - job_name: b\n    scrape_interval: 1h\n    body_size_limit: 10MB\n",
        "x",
    )
    .unwrap();
    let (a, b) = (&c.scrape_configs[0], &c.scrape_configs[1]);
    assert_eq!(a.interval(&c.global).to_string(), "5s");
    assert_eq!(
        a.timeout(&c.global).to_string(),
        "5s",
        "min(global timeout, interval)"
    );
    // The global timeout follows a short global interval (Prometheus), and jobs inherit it.
    assert_eq!(c.global.scrape_timeout.to_string(), "5s");
    assert_eq!(b.timeout(&c.global).to_string(), "5s");
    assert_eq!(b.body_size_limit.0, 10 << 20);
    assert_eq!(a.metrics_path, "/metrics");
    assert!(a.honor_timestamps && !a.honor_labels && a.follow_redirects && a.enable_http2);
    assert_eq!(ScrapeConfig::new("a"), *a);
}

// ---- honor_labels (spec 5.4 table) ---------------------------------------------------------

fn attach(target: &[(&str, &str)], line: &str, honor: bool) -> String {
    let body = format!("{line} 1\n");
    let mut p = Parser::new(body.as_bytes(), Format::PrometheusText);
    let Some(Ok(crate::exposition::parse::Entry::Series(s))) = p.next() else {
        panic!("not a series: {line}");
    };
    let mut b = s.to_builder();
    super::append::attach_target_labels(
        &mut b,
        &Labels::from_pairs(target.iter().copied()),
        &s,
        honor,
    );
    b.build().to_string()
}

#[test]
fn honor_labels_false_moves_conflicts_to_exported_names() {
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: [Case<'_>; 6] = [
        (&[("n", "2")], r#"m{n="1"}"#, r#"m{exported_n="1",n="2"}"#),
        (
            &[("n", "2"), ("exported_n", "2")],
            r#"m{n="1"}"#,
            r#"m{exported_exported_n="1",exported_n="2",n="2"}"#,
        ),
        (&[], r#"m{n=""}"#, "m{}"),
        (
            &[("foo", "3")],
            r#"m{foo="1",exported_foo="2"}"#,
            r#"m{exported_exported_foo="1",exported_foo="2",foo="3"}"#,
        ),
        (
            &[("exported_foo", "2")],
            r#"m{exported_foo="1"}"#,
            r#"m{exported_exported_foo="1",exported_foo="2"}"#,
        ),
        (
            &[("foo", "3"), ("exported_foo", "4")],
            r#"m{foo="1",exported_foo="2"}"#,
            r#"m{exported_exported_exported_foo="2",exported_exported_foo="1",exported_foo="4",foo="3"}"#,
        ),
    ];
    for (t, line, want) in cases {
        assert_eq!(attach(t, line, false), want, "target {t:?} line {line}");
    }
    let e = "exported_";
    assert_eq!(
        attach(
            &[
                ("foo", "0"),
                ("exported_exported_foo", "1"),
                ("exported_exported_exported_foo", "2")
            ],
            r#"m{foo="3",exported_foo="4",exported_exported_exported_foo="5"}"#,
            false
        ),
        format!(
            r#"m{{{e}{e}{e}{e}{e}foo="5",{e}{e}{e}{e}foo="3",{e}{e}{e}foo="2",{e}{e}foo="1",{e}foo="4",foo="0"}}"#
        )
    );
}

#[test]
fn honor_labels_true_keeps_exposed_labels_even_empty_ones() {
    assert_eq!(attach(&[("n", "2")], r#"m{n="1"}"#, true), r#"m{n="1"}"#);
    assert_eq!(attach(&[("n", "2")], r#"m"#, true), r#"m{n="2"}"#);
    // The exposed `job=""` is present, so the target's job is not added; empty then vanishes.
    assert_eq!(attach(&[("job", "t")], r#"m{job=""}"#, true), "m{}");
}

// ---- per-sample pipeline -------------------------------------------------------------------

#[test]
fn target_labels_come_before_metric_relabeling() {
    let j = job(
        "job_name: j\nmetric_relabel_configs:\n  - source_labels: [job]\n    target_label: origin\n  - regex: instance\n    action: labeldrop\n",
    );
    let mut st = TargetState::new();
    let s = scrape(&mut st, &j, "a 1\n", 1000);
    assert_eq!(s.live(), [r#"a{job="j",origin="j"} 1"#]);
}

#[test]
fn a_vanished_series_gets_one_stale_marker_at_the_next_scrape_time() {
    let j = job("job_name: j\n");
    let mut st = TargetState::new();
    scrape(&mut st, &j, "a 1\nb 2\n", 1000).result.unwrap();
    let s = scrape(&mut st, &j, "a 1\n", 2000);
    assert_eq!(s.stale(), [r#"b{instance="h:1",job="j"}"#]);
    let marker = s.samples.iter().find(|x| is_stale_nan(x.value)).unwrap();
    assert_eq!(marker.timestamp_ms, 2000);
    assert_eq!(marker.value.to_bits(), 0x7ff0_0000_0000_0002);
    assert!(scrape(&mut st, &j, "a 1\n", 3000).stale().is_empty());
    // An empty 200 is a successful empty scrape: everything goes stale.
    let s = scrape(&mut st, &j, "", 4000);
    s.result.as_ref().unwrap();
    assert_eq!(s.stale(), [r#"a{instance="h:1",job="j"}"#]);
}

#[test]
fn exposed_timestamps_are_honored_and_not_tracked_for_staleness() {
    let j = job("job_name: j\n");
    let mut st = TargetState::new();
    let s = scrape(&mut st, &j, "a 1 500\n", 1000);
    assert_eq!(s.samples[0].timestamp_ms, 500);
    assert!(scrape(&mut st, &j, "", 2000).stale().is_empty());

    let j = job("job_name: j\ntrack_timestamps_staleness: true\n");
    let mut st = TargetState::new();
    scrape(&mut st, &j, "a 1 500\n", 1000);
    assert_eq!(scrape(&mut st, &j, "", 2000).stale().len(), 1);

    let j = job("job_name: j\nhonor_timestamps: false\n");
    let mut st = TargetState::new();
    let s = scrape(&mut st, &j, "a 1 500\n", 1000);
    assert_eq!(s.samples[0].timestamp_ms, 1000);
}

#[test]
fn duplicates_and_far_future_samples_are_rejected_but_do_not_fail_the_scrape() {
    let j = job("job_name: j\n");
    let mut st = TargetState::new();
    let far = 1000 + 11 * 60 * 1000;
    let s = scrape(&mut st, &j, &format!("a 1\na 2\nb 1 {far}\n"), 1000);
    s.result.as_ref().unwrap();
    assert_eq!(s.live(), [r#"a{instance="h:1",job="j"} 1"#]);
    assert_eq!((s.counts.duplicates, s.counts.out_of_bounds), (1, 1));
}

#[test]
fn sample_limit_fails_the_whole_scrape_and_keeps_series_accepted_before_it() {
    // Upstream TestScrapeLoopRunCreatesStaleMarkersOnSampleLimit, spec 5.6.
    let j = job("job_name: j\nsample_limit: 4\n");
    let mut st = TargetState::new();
    let s = scrape(&mut st, &j, "a 1\nb 1\nc 1\nd 1\n", 1000);
    s.result.as_ref().unwrap();
    assert_eq!(s.live().len(), 4);
    let s = scrape(&mut st, &j, "a 1\nb 1\nc 1\nd 1\ne 1\n", 2000);
    assert!(matches!(
        s.result,
        Err(ScrapeError::SampleLimit {
            samples: 5,
            limit: 4
        })
    ));
    assert!(
        s.samples.is_empty(),
        "nothing ingested, no stale markers: {:?}",
        s.live()
    );
    assert_eq!((s.counts.scraped, s.counts.post_relabel), (5, 5));
    // A later plain failure stales a..d, which were accepted before the limit tripped.
    let mut out = Vec::new();
    st.fail(3000, &mut out);
    assert_eq!(out.len(), 4);
}

#[test]
fn sample_limit_counts_after_metric_relabeling() {
    let j = job(
        "job_name: j\nsample_limit: 1\nmetric_relabel_configs:\n  - source_labels: [__name__]\n    regex: a\n    action: keep\n",
    );
    let mut st = TargetState::new();
    let s = scrape(&mut st, &j, "a 1\nb 1\nc 1\n", 1000);
    s.result.as_ref().unwrap();
    assert_eq!((s.counts.scraped, s.counts.post_relabel), (3, 1));
}

#[test]
fn label_limits_and_a_missing_name_fail_the_whole_scrape() {
    let cases = [
        ("label_limit: 3", r#"a{x="1",y="2"} 1"#, "label_limit"),
        (
            "label_name_length_limit: 8",
            r#"a{very_long_name="1"} 1"#,
            "label_name_length_limit",
        ),
        (
            "label_value_length_limit: 3",
            r#"a{x="1234"} 1"#,
            "label_value_length_limit",
        ),
    ];
    for (limit, line, reason) in cases {
        let j = job(&format!("job_name: j\n{limit}\n"));
        let mut st = TargetState::new();
        scrape(&mut st, &j, "ok 1\n", 1000).result.unwrap();
        let s = scrape(&mut st, &j, &format!("{line}\n"), 2000);
        assert_eq!(s.result.as_ref().unwrap_err().reason(), reason);
        assert_eq!(s.stale(), [r#"ok{instance="h:1",job="j"}"#], "{reason}");
        assert!(s.live().is_empty());
    }
    let j =
        job("job_name: j\nmetric_relabel_configs:\n  - regex: __name__\n    action: labeldrop\n");
    let mut st = TargetState::new();
    let s = scrape(&mut st, &j, "a 1\n", 1000);
    assert_eq!(s.result.as_ref().unwrap_err().reason(), "no_metric_name");
}

#[test]
fn a_parse_error_withdraws_the_scrape_with_line_and_column() {
    let j = job("job_name: j\n");
    let mut st = TargetState::new();
    scrape(&mut st, &j, "a 1\nb 1\n", 1000).result.unwrap();
    let s = scrape(&mut st, &j, "a 1\nb{ 1\n", 2000);
    let e = s.result.as_ref().unwrap_err();
    assert_eq!(e.reason(), "parse");
    assert!(e.to_string().contains("line 2"), "{e}");
    assert!(s.live().is_empty());
    // `a` was accepted before the error: only `b` ends.
    assert_eq!(s.stale(), [r#"b{instance="h:1",job="j"}"#]);
}

#[test]
fn metric_relabel_drops_are_remembered_and_series_added_counts_new_series_only() {
    let j = job(
        "job_name: j\nmetric_relabel_configs:\n  - source_labels: [__name__]\n    regex: drop_me\n    action: drop\n",
    );
    let mut st = TargetState::new();
    let s = scrape(&mut st, &j, "a 1\ndrop_me 1\n", 1000);
    assert_eq!(
        (
            s.counts.scraped,
            s.counts.post_relabel,
            s.counts.series_added
        ),
        (2, 1, 1)
    );
    let s = scrape(&mut st, &j, "a 2\ndrop_me 1\nb 1\n", 2000);
    assert_eq!(
        (
            s.counts.scraped,
            s.counts.post_relabel,
            s.counts.series_added
        ),
        (3, 2, 1)
    );
    // Cached label sets are shared, not rebuilt.
    let again = scrape(&mut st, &j, "a 3\nb 1\n", 3000);
    assert_eq!(again.counts.series_added, 0);
}

#[test]
fn report_series_carry_target_labels_and_metadata_comes_from_help_and_type() {
    let j = job("job_name: j\n");
    let mut st = TargetState::new();
    let s = scrape(
        &mut st,
        &j,
        "# HELP a Things.\n# TYPE a counter\na_total 1\n",
        1000,
    );
    let meta = s.metadata.iter().find(|m| &*m.name == "a").unwrap();
    assert_eq!((meta.kind, &*meta.help), (MetricType::Counter, "Things."));
    let mut out = Vec::new();
    st.report(&target(), true, 0.5, s.counts, 1000, &mut out);
    let names: Vec<String> = out.iter().map(|x| x.labels.to_string()).collect();
    assert_eq!(names[0], r#"up{instance="h:1",job="j"}"#);
    assert_eq!(out[2].value, 1.0, "scrape_samples_scraped");
    // The end of a target stales its series and its report series.
    let mut out = Vec::new();
    st.end(&target(), 5000, &mut out);
    assert_eq!(out.len(), 6);
    assert!(
        out.iter()
            .all(|x| is_stale_nan(x.value) && x.timestamp_ms == 5000)
    );
}

#[test]
fn a_target_never_scraped_writes_no_end_markers() {
    let mut out = Vec::new();
    TargetState::new().end(&target(), 1, &mut out);
    assert!(out.is_empty());
    let _ = Arc::new(());
}
