#![allow(clippy::unwrap_used, reason = "tests")]

use std::borrow::Cow;

use super::*;

/// Each entry as one line of text, so cases read like the body they come from.
fn render(e: &Entry<'_>) -> String {
    fn labels(l: &LabelSet<'_>) -> String {
        let pairs: Vec<String> = l.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
        format!("{{{}}}", pairs.join(","))
    }
    match e {
        Entry::Help { name, text } => format!("HELP {name} {text:?}"),
        Entry::Type { name, kind } => format!("TYPE {name} {}", kind.openmetrics()),
        Entry::Unit { name, unit } => format!("UNIT {name} {unit}"),
        Entry::Eof => "EOF".into(),
        Entry::Series(s) => {
            let mut out = format!("{}{} {:?}", s.name, labels(&s.labels), s.value);
            if let Some(ts) = s.timestamp_ms {
                out += &format!(" @{ts}");
            }
            if let Some(ex) = &s.exemplar {
                out += &format!(" # {} {:?}", labels(&ex.labels), ex.value);
                if let Some(ts) = ex.timestamp_ms {
                    out += &format!(" @{ts}");
                }
            }
            out
        }
    }
}

fn parse_with(
    body: &[u8],
    format: Format,
    options: ParseOptions,
) -> Result<Vec<String>, ParseError> {
    Parser::with_options(body, format, options)
        .map(|e| e.map(|e| render(&e)))
        .collect()
}

fn text(body: &str) -> Vec<String> {
    parse_with(
        body.as_bytes(),
        Format::PrometheusText,
        ParseOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn om(body: &str) -> Vec<String> {
    parse_with(
        body.as_bytes(),
        Format::OpenMetrics,
        ParseOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn om_strict(body: &str) -> Result<Vec<String>, String> {
    parse_with(
        body.as_bytes(),
        Format::OpenMetrics,
        ParseOptions {
            openmetrics_strict: true,
        },
    )
    .map_err(|e| e.to_string())
}

fn text_err(body: &[u8]) -> String {
    parse_with(body, Format::PrometheusText, ParseOptions::default())
        .expect_err("body must not parse")
        .to_string()
}

fn om_err(body: &[u8]) -> String {
    parse_with(body, Format::OpenMetrics, ParseOptions::default())
        .expect_err("body must not parse")
        .to_string()
}

fn first_series<'a>(body: &'a [u8], format: Format) -> Series<'a> {
    Parser::new(body, format)
        .find_map(|e| match e.unwrap() {
            Entry::Series(s) => Some(s),
            _ => None,
        })
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Text format 0.0.4: what parses

#[test]
fn text_exposition_with_every_family_type() {
    let body = include_str!("testdata/valid.prom");
    assert_eq!(
        text(body),
        [
            r#"HELP go_gc_duration_seconds "A summary of the GC invocation durations.""#,
            "TYPE go_gc_duration_seconds summary",
            r#"go_gc_duration_seconds{quantile="0.0"} 4.9351e-5"#,
            r#"go_gc_duration_seconds{quantile="0.25"} 7.424100000000001e-5"#,
            r#"go_gc_duration_seconds{quantile="1.0"} 0.001"#,
            "go_gc_duration_seconds_sum{} 1.7560473e-5",
            "go_gc_duration_seconds_count{} 7.0",
            r#"HELP http_request_duration_seconds "Latency.\nSecond line with a \\ backslash.""#,
            "TYPE http_request_duration_seconds histogram",
            r#"http_request_duration_seconds_bucket{le="0.005",code="200"} 1.0"#,
            r#"http_request_duration_seconds_bucket{le="1.0",code="200"} 2.0"#,
            r#"http_request_duration_seconds_bucket{le="1e+06",code="200"} 3.0"#,
            r#"http_request_duration_seconds_bucket{le="+Inf",code="200"} 3.0"#,
            r#"http_request_duration_seconds_sum{code="200"} 1.5"#,
            r#"http_request_duration_seconds_count{code="200"} 3.0"#,
            "TYPE http_requests_total counter",
            r#"http_requests_total{method="post",code="200"} 1027.0 @1395066363000"#,
            r#"http_requests_total{method="post",code="400"} 3.0 @1395066363000"#,
            "TYPE some_untyped unknown",
            r#"some_untyped{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\"",tab="a\\tb"} 1458255915.0"#,
            "metric_without_timestamp_and_labels{} 12.47",
            "EOF",
        ]
    );
}

#[test]
fn text_blanks_tabs_trailing_whitespace_and_optional_commas() {
    let body =
        "  \t\nfoo { a = \"1\" , b=\"2\",}\t 3 \t 42\t \n\nbar{a=\"1\" b=\"2\"} 4\n\t\nbaz{} 5\n";
    assert_eq!(
        text(body),
        [
            r#"foo{a="1",b="2"} 3.0 @42"#,
            r#"bar{a="1",b="2"} 4.0"#,
            "baz{} 5.0",
            "EOF"
        ]
    );
}

#[test]
fn text_last_line_may_lack_its_newline_and_an_empty_body_is_empty() {
    assert_eq!(text("up 1"), ["up{} 1.0", "EOF"]);
    assert_eq!(text(""), ["EOF"]);
    assert_eq!(text("\n\n"), ["EOF"]);
}

#[test]
fn text_comments_that_are_not_help_or_type_are_skipped() {
    let body = "#comment\n# HELPER not metadata\n#\tfree text\n# TYPE\n#\n# HELP\n#TYPE foo counter\nfoo 1\n";
    assert_eq!(text(body), ["foo{} 1.0", "EOF"]);
}

#[test]
fn text_help_without_text_and_help_keeps_other_escapes() {
    assert_eq!(
        text("# HELP a\n# HELP b \n# HELP c q\\\"x\\t\n"),
        [
            r#"HELP a """#,
            r#"HELP b """#,
            r#"HELP c "q\\\"x\\t""#,
            "EOF"
        ]
    );
}

#[test]
fn values_prometheus_accepts() {
    let body = "a NaN\na nan\na +Inf\na -Inf\na Inf\na inf\na +infinity\na -Infinity\na 1e3\na 1E-3\na .5\na 5.\na -0\na +7\na 1e-400\n";
    let values: Vec<f64> = Parser::new(body.as_bytes(), Format::PrometheusText)
        .filter_map(|e| match e.unwrap() {
            Entry::Series(s) => Some(s.value),
            _ => None,
        })
        .collect();
    assert_eq!(values.len(), 15);
    assert!(
        values[..2].iter().all(|v| v.to_bits() == NORMAL_NAN_BITS),
        "NaN gets Prometheus' bits"
    );
    assert_eq!(
        &values[2..],
        &[
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1000.0,
            0.001,
            0.5,
            5.0,
            -0.0,
            7.0,
            0.0
        ]
    );
    assert!(values[12].is_sign_negative());
}

#[test]
fn a_parsed_nan_is_never_a_stale_marker() {
    let s = first_series(b"a NaN\n", Format::PrometheusText);
    assert!(!crate::model::is_stale_nan(s.value));
}

#[test]
fn text_utf8_quoted_names() {
    let body = "# HELP \"my.metric\" Dots.\n# TYPE \"my.metric\" gauge\n{\"my.metric\", \"label.name\"=\"v\", job=\"x\"} 1\n{job=\"y\",\"my.metric\"} 2\n";
    assert_eq!(
        text(body),
        [
            r#"HELP my.metric "Dots.""#,
            "TYPE my.metric gauge",
            r#"my.metric{label.name="v",job="x"} 1.0"#,
            r#"my.metric{job="y"} 2.0"#,
            "EOF"
        ]
    );
}

#[test]
fn text_label_value_may_span_lines_and_later_errors_count_them() {
    assert_eq!(text("a{b=\"x\ny\"} 1\n"), ["a{b=\"x\\ny\"} 1.0", "EOF"]);
    assert_eq!(
        text_err(b"a{b=\"x\ny\"} 1\nc d\n"),
        r#"line 3, column 3: invalid sample value "d""#
    );
}

#[test]
fn le_and_quantile_are_canonicalised_only_in_their_families() {
    let body = "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"10\"} 1\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"1e-5\"} 1\nh_bucket{le=\"123456\"} 1\nh_bucket{le=\"1234567\"} 1\nh_bucket{le=\"Inf\"} 1\nh_bucket{le=\"x\"} 1\n# TYPE g gauge\ng{le=\"1\",quantile=\"1\"} 1\n# TYPE s summary\ns{quantile=\"0\"} 1\ns{le=\"1\"} 1\n";
    assert_eq!(
        text(body),
        [
            "TYPE h histogram",
            r#"h_bucket{le="1.0"} 1.0"#,
            r#"h_bucket{le="10.0"} 1.0"#,
            r#"h_bucket{le="0.1"} 1.0"#,
            r#"h_bucket{le="1e-05"} 1.0"#,
            r#"h_bucket{le="123456.0"} 1.0"#,
            r#"h_bucket{le="1.234567e+06"} 1.0"#,
            r#"h_bucket{le="+Inf"} 1.0"#,
            r#"h_bucket{le="x"} 1.0"#,
            "TYPE g gauge",
            r#"g{le="1",quantile="1"} 1.0"#,
            "TYPE s summary",
            r#"s{quantile="0.0"} 1.0"#,
            r#"s{le="1"} 1.0"#,
            "EOF"
        ]
    );
}

#[test]
fn canonical_values_are_borrowed_from_the_body() {
    let body = b"# TYPE h histogram\nh_bucket{le=\"0.5\",a=\"b\"} 1\n";
    let s = first_series(body, Format::PrometheusText);
    assert!(!s.labels.has_escapes());
    assert!(matches!(s.name, Cow::Borrowed(_)));
    assert!(
        s.labels
            .iter()
            .all(|(n, v)| matches!(n, Cow::Borrowed(_)) && matches!(v, Cow::Borrowed(_)))
    );
}

#[test]
fn series_to_builder_adds_the_name_and_drops_empty_values() {
    let s = first_series(
        b"http_requests_total{code=\"200\",empty=\"\",path=\"/a\\\"b\"} 5\n",
        Format::PrometheusText,
    );
    assert_eq!(s.labels.len(), 3);
    assert!(s.labels.has_escapes());
    assert_eq!(
        s.to_builder().build().to_string(),
        r#"http_requests_total{code="200",path="/a\"b"}"#
    );
    assert_eq!(s.labels.get("path").as_deref(), Some("/a\"b"));
}

// ---------------------------------------------------------------------------------------------
// Text format 0.0.4: what fails, and where

#[test]
fn text_errors_name_line_column_expected_and_found() {
    let cases: &[(&[u8], &str)] = &[
        (
            b"a",
            "line 1, column 2: expected sample value, found end of input",
        ),
        (
            b"a\n",
            r#"line 1, column 2: expected sample value, found "\n""#,
        ),
        (
            b"a{b='c'} 1\n",
            r#"line 1, column 5: expected quoted label value, found "'c'""#,
        ),
        (
            b"a{b=\n",
            r#"line 1, column 5: expected quoted label value, found "\n""#,
        ),
        (
            b"a{\xff=\"foo\"} 1\n",
            "line 1, column 3: expected label name, found \"\u{fffd}\"",
        ),
        (
            b"a{b=\"\xff\"} 1\n",
            "line 1, column 6: invalid UTF-8 in label value",
        ),
        (
            b"a{b=\"c",
            "line 1, column 7: expected closing '\"', found end of input",
        ),
        (
            b"a{b=\"c\",,d=\"e\"} 1\n",
            r#"line 1, column 9: expected label name, found ",""#,
        ),
        (
            b"a{=\"\"} 0\n",
            r#"line 1, column 3: expected label name, found "=""#,
        ),
        (
            b"a{b} 0\n",
            r#"line 1, column 4: expected '=' after label name, found "}""#,
        ),
        (
            b"{A}0\n",
            r#"line 1, column 3: expected '=' after label name, found "}""#,
        ),
        (
            b"a true\n",
            r#"line 1, column 3: invalid sample value "true""#,
        ),
        (
            b"foo 1_2\n",
            r#"line 1, column 5: invalid sample value "1_2""#,
        ),
        (
            b"foo 0x1p-3\n",
            r#"line 1, column 5: invalid sample value "0x1p-3""#,
        ),
        (
            b"foo 1e400\n",
            r#"line 1, column 5: invalid sample value "1e400""#,
        ),
        (
            b"foo +NaN\n",
            r#"line 1, column 5: invalid sample value "+NaN""#,
        ),
        (
            b"foo 0 1_2\n",
            r#"line 1, column 8: expected end of line after timestamp, found "_2""#,
        ),
        (
            b"foo 1 -5\n",
            r#"line 1, column 7: expected timestamp or end of line, found "-5""#,
        ),
        (
            b"foo 1 1.5\n",
            r#"line 1, column 8: expected end of line after timestamp, found ".5""#,
        ),
        (
            b"foo 1 99999999999999999999\n",
            r#"line 1, column 7: invalid timestamp "99999999999999999999""#,
        ),
        (
            b"foo 1 # {a=\"b\"} 1\n",
            r##"line 1, column 7: expected timestamp or end of line, found "#""##,
        ),
        (b"{a=\"ok\"} 1\n", "line 1, column 1: metric name missing"),
        (
            b"{\"a\",\"b\"} 1\n",
            "line 1, column 6: metric name set twice",
        ),
        (b"a{\"b\"} 1\n", "line 1, column 3: metric name set twice"),
        (b"{\"\"} 1\n", "line 1, column 3: empty metric name"),
        (b"a{\"\"=\"x\"} 1\n", "line 1, column 4: empty label name"),
        (
            b"a{b=\"c\",b=\"d\"} 1\n",
            r#"line 1, column 9: label name "b" is not unique"#,
        ),
        (
            b"a{__name__=\"b\"} 1\n",
            r#"line 1, column 3: label name "__name__" is not unique"#,
        ),
        (
            b"9 1\n",
            r#"line 1, column 1: expected metric name, '{' or '#' at start of line, found "9""#,
        ),
        (
            b"up 1\n-1\n",
            r#"line 2, column 1: expected metric name, '{' or '#' at start of line, found "-1""#,
        ),
        (
            b"# TYPE #\n",
            r##"line 1, column 8: expected metric name after TYPE, found "#""##,
        ),
        (
            b"# HELP \n",
            r#"line 1, column 8: expected metric name after HELP, found "\n""#,
        ),
        (
            b"# TYPE foo counters\n",
            r#"line 1, column 12: invalid metric type "counters""#,
        ),
        (
            b"# TYPE foo  counter\n",
            r#"line 1, column 12: invalid metric type " counter""#,
        ),
        (
            b"# TYPE foo gaugehistogram\n",
            r#"line 1, column 12: invalid metric type "gaugehistogram""#,
        ),
        (
            b"# TYPE foo Counter\n",
            r#"line 1, column 12: invalid metric type "Counter""#,
        ),
        (
            b"# HELP foo \xff\n",
            "line 1, column 12: invalid UTF-8 in HELP text",
        ),
        (
            "é{a=\"é\"} x\n".as_bytes(),
            "line 1, column 1: expected metric name, '{' or '#' at start of line, found \"é\"",
        ),
        (
            "a{a=\"é\"} x\n".as_bytes(),
            r#"line 1, column 10: invalid sample value "x""#,
        ),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter(|(body, want)| text_err(body) != *want)
        .map(|(body, want)| {
            format!(
                "{:?}\n  got  {}\n  want {want}",
                String::from_utf8_lossy(body),
                text_err(body)
            )
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn many_labels_still_detect_duplicates() {
    let mut body = String::from("a{");
    for i in 0..40 {
        body += &format!("l{i}=\"v\",");
    }
    body += "l7=\"again\"} 1\n";
    assert_eq!(
        text_err(body.as_bytes()),
        r#"line 1, column 313: label name "l7" is not unique"#
    );
}

#[test]
fn an_error_stops_the_parser() {
    let mut p = Parser::new(b"a 1\nb x\nc 1\n", Format::PrometheusText);
    assert!(matches!(p.next(), Some(Ok(Entry::Series(_)))));
    let err = p.next().unwrap().unwrap_err();
    assert_eq!((err.line, err.column), (2, 3));
    assert!(matches!(err.kind, ParseErrorKind::InvalidValue(ref v) if v == "x"));
    assert!(p.next().is_none());
}

// ---------------------------------------------------------------------------------------------
// OpenMetrics 1.0: what parses

#[test]
fn openmetrics_exposition_with_every_family_type() {
    let body = include_str!("testdata/valid.om");
    let want = [
        "TYPE acme_http_router_request_seconds summary",
        "UNIT acme_http_router_request_seconds seconds",
        r#"HELP acme_http_router_request_seconds "Latency though all of ACME's HTTP request router.""#,
        r#"acme_http_router_request_seconds_sum{path="/api/v1",method="GET"} 9036.32"#,
        r#"acme_http_router_request_seconds_count{path="/api/v1",method="GET"} 807283.0"#,
        r#"acme_http_router_request_seconds_created{path="/api/v1",method="GET"} 1605281325.0"#,
        "TYPE go_goroutines gauge",
        "go_goroutines{} 69.0 @1605281325123",
        "TYPE process_cpu_seconds counter",
        "UNIT process_cpu_seconds seconds",
        r#"HELP process_cpu_seconds "Total user and system CPU time spent in seconds.""#,
        r#"process_cpu_seconds_total{} 4.2 # {trace_id="KOO5S4vxi0o"} 0.67 @1605281324999"#,
        "process_cpu_seconds_created{} 1605281325.0",
        "TYPE rpc_seconds histogram",
        r#"rpc_seconds_bucket{le="0.01"} 1.0 # {trace_id="a"} 0.005"#,
        r#"rpc_seconds_bucket{le="1.0"} 2.0"#,
        r#"rpc_seconds_bucket{le="+Inf"} 3.0"#,
        "rpc_seconds_sum{} 3.5",
        "rpc_seconds_count{} 3.0",
        "TYPE queue_items gaugehistogram",
        r#"queue_items_bucket{le="1"} 4.0"#,
        r#"queue_items_bucket{le="+Inf"} 5.0"#,
        "queue_items_gcount{} 5.0",
        "queue_items_gsum{} 12.0",
        "TYPE build info",
        r#"build_info{version="1.2.3",revision="abc"} 1.0"#,
        "TYPE feature stateset",
        r#"feature{feature="a"} 1.0"#,
        r#"feature{feature="b"} 0.0"#,
        "TYPE mystery unknown",
        r#"HELP mystery "Escapes: \\ \" and \n and \\q""#,
        r#"mystery{path="C:\\",quote="\"",nl="\n"} -1.5 @-1500"#,
        r#"my.dotted{label.name="v"} 1.0"#,
        "EOF",
    ];
    assert_eq!(om(body), want);
    assert_eq!(
        om_strict(body).unwrap(),
        want,
        "the example follows every family rule"
    );
}

#[test]
fn openmetrics_eof_may_lack_its_newline() {
    assert_eq!(om("a 1\n# EOF"), ["a{} 1.0", "EOF"]);
    assert_eq!(om("# EOF\n"), ["EOF"]);
}

#[test]
fn openmetrics_timestamps_are_float_seconds_truncated_to_ms() {
    let body = "a 1 1.0015\na 1 -1.5\na 1 1e3\na 1 0\na 1 1700000000.123456\n# EOF\n";
    let ts: Vec<Option<i64>> = Parser::new(body.as_bytes(), Format::OpenMetrics)
        .filter_map(|e| match e.unwrap() {
            Entry::Series(s) => Some(s.timestamp_ms),
            _ => None,
        })
        .collect();
    assert_eq!(
        ts,
        [
            Some(1001),
            Some(-1500),
            Some(1_000_000),
            Some(0),
            Some(1_700_000_000_123)
        ]
    );
}

#[test]
fn openmetrics_exemplar_over_128_characters_is_dropped_not_fatal() {
    let long = "x".repeat(121);
    let body =
        format!("# TYPE c counter\nc_total 1 # {{trace_id=\"{long}\"}} 1\nc_created 5\n# EOF\n");
    let mut p = Parser::new(body.as_bytes(), Format::OpenMetrics);
    let entries: Vec<String> = p.by_ref().map(|e| render(&e.unwrap())).collect();
    assert_eq!(entries[1], "c_total{} 1.0");
    assert_eq!(p.dropped_exemplars(), 1);
    // Exactly 128 is allowed.
    let fits = "x".repeat(120);
    let body = format!("c_total 1 # {{trace_id={fits:?}}} 1\n# EOF\n");
    assert!(
        first_series(body.as_bytes(), Format::OpenMetrics)
            .exemplar
            .is_some()
    );
    assert_eq!(
        om_strict(&format!("c_total 1 # {{trace_id=\"{long}\"}} 1\n# EOF\n")).unwrap_err(),
        "line 1, column 13: exemplar labels are 129 characters long, more than the 128 allowed"
    );
}

// ---------------------------------------------------------------------------------------------
// OpenMetrics 1.0: what fails, and where

#[test]
fn openmetrics_errors_name_line_column_expected_and_found() {
    let start = "expected metric name, '{' or '#' at start of line";
    let cases: Vec<(&[u8], String)> = vec![
        (
            b"",
            "line 1, column 1: missing \"# EOF\" at end of input".into(),
        ),
        (
            b"metric 1",
            "line 1, column 9: missing \"# EOF\" at end of input".into(),
        ),
        (
            b"metric 1\n",
            "line 2, column 1: missing \"# EOF\" at end of input".into(),
        ),
        (
            b"metric_total 1 # {aa=\"bb\"} 4",
            "line 1, column 29: missing \"# EOF\" at end of input".into(),
        ),
        (
            b"\n# EOF\n",
            format!(r#"line 1, column 1: {start}, found "\n""#),
        ),
        (
            b"a 1\n\nb 1\n# EOF\n",
            format!(r#"line 2, column 1: {start}, found "\n""#),
        ),
        (
            b" a 1\n# EOF\n",
            format!(r#"line 1, column 1: {start}, found " ""#),
        ),
        (
            b"9\n# EOF\n",
            format!(r#"line 1, column 1: {start}, found "9""#),
        ),
        (
            b"# comment\n# EOF\n",
            format!(r##"line 1, column 1: {start}, found "#""##),
        ),
        (
            b"#  TYPE c counter\n# EOF\n",
            format!(r##"line 1, column 1: {start}, found "#""##),
        ),
        (
            b"#\tTYPE c counter\n# EOF\n",
            format!(r##"line 1, column 1: {start}, found "#""##),
        ),
        (
            b"# TYPE u untyped\n# EOF\n",
            r#"line 1, column 10: invalid metric type "untyped""#.into(),
        ),
        (
            b"# TYPE c counter \n# EOF\n",
            r#"line 1, column 10: invalid metric type "counter ""#.into(),
        ),
        (
            b"# TYPE c  counter\n# EOF\n",
            r#"line 1, column 10: invalid metric type " counter""#.into(),
        ),
        (
            b"# TYPE \n# EOF\n",
            r#"line 1, column 8: expected metric name after TYPE, found "\n""#.into(),
        ),
        (
            b"# TYPE m\n# EOF\n",
            r#"line 1, column 9: expected text in TYPE, found "\n""#.into(),
        ),
        (
            b"# HELP m\n# EOF\n",
            r#"line 1, column 9: expected text in HELP, found "\n""#.into(),
        ),
        (
            b"# UNIT m\n# EOF\n",
            r#"line 1, column 9: expected text in UNIT, found "\n""#.into(),
        ),
        (
            b"# HELP m text",
            "line 1, column 14: missing \"# EOF\" at end of input".into(),
        ),
        (
            b"# UNIT metric suffix\n# EOF\n",
            r#"line 1, column 15: unit "suffix" is not a suffix of metric "metric""#.into(),
        ),
        (
            b"# UNIT metricsuffix suffix\n# EOF\n",
            r#"line 1, column 21: unit "suffix" is not a suffix of metric "metricsuffix""#.into(),
        ),
        (
            b"# UNIT m suffix\n# EOF\n",
            r#"line 1, column 10: unit "suffix" is not a suffix of metric "m""#.into(),
        ),
        (
            b"a\t1\n# EOF\n",
            r#"line 1, column 2: expected sample value, found "\t""#.into(),
        ),
        (
            b"a  1\n# EOF\n",
            r#"line 1, column 3: expected sample value, found " ""#.into(),
        ),
        (
            b"a 1\t2\n# EOF\n",
            "line 1, column 3: invalid sample value \"1\\t2\"".into(),
        ),
        (
            b"a 1 \n# EOF\n",
            r#"line 1, column 5: expected timestamp or end of line, found "\n""#.into(),
        ),
        (
            b"a 1 2 \n# EOF\n",
            r#"line 1, column 6: expected end of line after timestamp, found " ""#.into(),
        ),
        (
            b"a 1 2 3\n# EOF\n",
            r#"line 1, column 6: expected end of line after timestamp, found " ""#.into(),
        ),
        (
            b"a 1 1z\n# EOF\n",
            r#"line 1, column 5: invalid timestamp "1z""#.into(),
        ),
        (
            b"a 1 NaN\n# EOF\n",
            r#"line 1, column 5: invalid timestamp "NaN""#.into(),
        ),
        (
            b"a 1 -Inf\n# EOF\n",
            r#"line 1, column 5: invalid timestamp "-Inf""#.into(),
        ),
        (
            b"# EOF\na 1",
            "line 2, column 1: data after \"# EOF\"".into(),
        ),
        (
            b"# EOF\n\n",
            "line 2, column 1: data after \"# EOF\"".into(),
        ),
        (b"# EOFa 1", "line 1, column 6: data after \"# EOF\"".into()),
        (
            b"a{b=\"c\", d=\"e\"} 1\n# EOF\n",
            r#"line 1, column 9: expected label name, found " ""#.into(),
        ),
        (
            b"a{ b=\"c\"} 1\n# EOF\n",
            r#"line 1, column 3: expected label name, found " ""#.into(),
        ),
        (
            b"a{b=\"c\"d=\"e\"} 1\n# EOF\n",
            r#"line 1, column 8: expected ',' or '}', found "d""#.into(),
        ),
        (
            b"a{,b=\"c\"} 1\n# EOF\n",
            r#"line 1, column 3: expected label name, found ",""#.into(),
        ),
        (
            b"a{b=\"x\ny\"} 1\n# EOF\n",
            "line 1, column 7: expected closing '\"', found \"\\n\"".into(),
        ),
        (
            b"a{b=\"\xff\"} 1\n# EOF\n",
            "line 1, column 6: invalid UTF-8 in label value".into(),
        ),
        (
            b"{b=\"c\",} 1\n# EOF\n",
            "line 1, column 1: metric name missing".into(),
        ),
        (
            b"{A}0\n# EOF\n",
            r#"line 1, column 3: expected '=' after label name, found "}""#.into(),
        ),
        (
            b"a{}1\n# EOF\n",
            r#"line 1, column 4: expected sample value, found "1""#.into(),
        ),
        (
            b"c_total 1 # {aa=bb}\n# EOF\n",
            r#"line 1, column 17: expected quoted label value, found "bb""#.into(),
        ),
        (
            b"c_total 1 # {aa=\"bb\"}\n# EOF\n",
            r#"line 1, column 22: expected exemplar value, found "\n""#.into(),
        ),
        (
            b"c_total 1 # {bb}\n# EOF\n",
            r#"line 1, column 16: expected '=' after label name, found "}""#.into(),
        ),
        (
            b"c_total 1 # {\"bb\"} 1\n# EOF\n",
            r#"line 1, column 18: expected '=' after label name, found "}""#.into(),
        ),
        (
            b"c_total 1 # {a=\"b\",,c=\"d\"} 1\n# EOF\n",
            r#"line 1, column 20: expected label name, found ",""#.into(),
        ),
        (
            b"c_total 1 # {a=\"b\"} true\n# EOF\n",
            r#"line 1, column 21: invalid exemplar value "true""#.into(),
        ),
        (
            b"c_total 1 # {a=\"b\"} 1 NaN\n# EOF\n",
            r#"line 1, column 23: invalid exemplar timestamp "NaN""#.into(),
        ),
        (
            b"c_total 1 # {a=\"b\"} 1 2 3\n# EOF\n",
            r#"line 1, column 24: expected end of line after exemplar, found " ""#.into(),
        ),
        (
            b"c_total 1 #{a=\"b\"} 1\n# EOF\n",
            r##"line 1, column 11: invalid timestamp "#{a=\"b\"}""##.into(),
        ),
        (
            b"c_total 1 # {a=\"b\",a=\"c\"} 1\n# EOF\n",
            r#"line 1, column 20: label name "a" is not unique"#.into(),
        ),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter(|(body, want)| om_err(body) != *want)
        .map(|(body, want)| {
            format!(
                "{:?}\n  got  {}\n  want {want}",
                String::from_utf8_lossy(body),
                om_err(body)
            )
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// OpenMetrics strict family rules

#[test]
fn strict_openmetrics_family_rules() {
    let cases: &[(&str, &str)] = &[
        (
            "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n# EOF\n",
            r#"line 5, column 1: metric family "a" is interleaved with another family"#,
        ),
        (
            "# TYPE a gauge\na 1\n# HELP a late\n# EOF\n",
            r#"line 3, column 1: metadata for family "a" after its samples"#,
        ),
        (
            "# TYPE a gauge\n# TYPE a gauge\n# EOF\n",
            r#"line 2, column 1: TYPE for metric family "a" appears more than once"#,
        ),
        (
            "# TYPE c counter\nc 1\n# EOF\n",
            r#"line 2, column 1: sample "c" does not belong to counter family "c""#,
        ),
        (
            "# TYPE h histogram\nh_gcount 1\n# EOF\n",
            r#"line 2, column 1: sample "h_gcount" does not belong to histogram family "h""#,
        ),
        (
            "# TYPE i info\ni 1\n# EOF\n",
            r#"line 2, column 1: sample "i" does not belong to info family "i""#,
        ),
        (
            "# TYPE h histogram\nh_bucket 1\n# EOF\n",
            r#"line 2, column 1: histogram bucket "h_bucket" has no "le" label"#,
        ),
        (
            "# TYPE s summary\ns 1\n# EOF\n",
            r#"line 2, column 1: summary sample "s" has no "quantile" label"#,
        ),
        (
            "# TYPE s stateset\ns{s=\"a\"} 2\n# EOF\n",
            r#"line 2, column 1: stateset sample "s" has value 2, not 0 or 1"#,
        ),
        (
            "# TYPE s stateset\ns{x=\"a\"} 1\n# EOF\n",
            r#"line 2, column 1: stateset sample "s" has no "s" label"#,
        ),
        (
            "# TYPE i info\ni_info 0\n# EOF\n",
            r#"line 2, column 1: info sample "i_info" has value 0, not 1"#,
        ),
        (
            "# TYPE c counter\nc_total -1\n# EOF\n",
            r#"line 2, column 1: counter total "c_total" is -1, not a non-negative number"#,
        ),
    ];
    for (body, want) in cases {
        assert_eq!(om_strict(body).unwrap_err(), *want, "body {body:?}");
        assert!(
            parse_with(
                body.as_bytes(),
                Format::OpenMetrics,
                ParseOptions::default()
            )
            .is_ok(),
            "Prometheus accepts {body:?}"
        );
    }
    // A family whose name extends another's with a non-suffix is a new family, not an error.
    assert!(om_strict("# TYPE go_gc gauge\ngo_gc 1\ngo_gc_duration 2\n# EOF\n").is_ok());
}

// ---------------------------------------------------------------------------------------------
// Content-Type negotiation

#[test]
fn negotiation_by_media_type() {
    let ok = |ct: &str| negotiate(Some(ct), None).map(|n| n.format);
    assert_eq!(
        ok("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        Ok(Format::OpenMetrics)
    );
    assert_eq!(
        ok("application/openmetrics-text;version=0.0.1"),
        Ok(Format::OpenMetrics)
    );
    assert_eq!(
        ok("text/plain; version=0.0.4; charset=utf-8"),
        Ok(Format::PrometheusText)
    );
    assert_eq!(
        ok("text/plain;version=1.0.0;escaping=allow-utf-8"),
        Ok(Format::PrometheusText)
    );
    assert_eq!(ok("Text/Plain"), Ok(Format::PrometheusText));
    assert_eq!(ok("text/plain;"), Ok(Format::PrometheusText));
    assert_eq!(
        ok("application/json").unwrap_err().to_string(),
        "received unsupported Content-Type \"application/json\" and no fallback_scrape_protocol specified for target"
    );
    assert_eq!(
        ok("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"),
        Err(ContentTypeError::Unsupported(
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited".into()
        ))
    );
    assert_eq!(
        ok("garbage"),
        Err(ContentTypeError::Unparsable("garbage".into()))
    );
    assert_eq!(
        ok("text/plain; version"),
        Err(ContentTypeError::Unparsable("text/plain; version".into()))
    );
    assert_eq!(
        negotiate(None, None).unwrap_err().to_string(),
        "non-compliant scrape target sending blank Content-Type and no fallback_scrape_protocol specified for target"
    );
    assert_eq!(negotiate(Some(""), None), Err(ContentTypeError::Missing));
}

#[test]
fn negotiation_falls_back_when_configured() {
    assert_eq!(
        negotiate(None, Some(Format::PrometheusText)),
        Ok(Negotiated {
            format: Format::PrometheusText,
            fallback_reason: Some(ContentTypeError::Missing)
        })
    );
    let n = negotiate(Some("application/json"), Some(Format::OpenMetrics)).unwrap();
    assert_eq!(n.format, Format::OpenMetrics);
    assert!(matches!(
        n.fallback_reason,
        Some(ContentTypeError::Unsupported(_))
    ));
    let n = negotiate(Some("text/plain"), Some(Format::OpenMetrics)).unwrap();
    assert_eq!(
        (n.format, n.fallback_reason),
        (Format::PrometheusText, None)
    );
}

#[test]
fn accept_header_is_prometheus_3_default() {
    assert_eq!(
        ACCEPT_HEADER,
        "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
    );
    assert_eq!(
        Format::OpenMetrics.media_type(),
        "application/openmetrics-text"
    );
}

#[test]
fn canonical_float_form_matches_go() {
    for (f, want) in [
        (1.0, "1.0"),
        (0.0, "0.0"),
        (-1.0, "-1.0"),
        (0.25, "0.25"),
        (2.5, "2.5"),
        (100000.0, "100000.0"),
        (1e6, "1e+06"),
        (1.5e6, "1.5e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (1e-300, "1e-300"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (-0.005, "-0.005"),
        (f64::INFINITY, "+Inf"),
        (f64::NEG_INFINITY, "-Inf"),
        (f64::NAN, "NaN"),
    ] {
        assert_eq!(lex::CanonicalFloat::new(f).as_str(), want, "{f}");
    }
}

#[test]
fn invalid_utf8_in_a_comment_does_not_fail_the_body() {
    let body = b"# \xff\xfe not text\na{b=\"\xc3\xa9\"} 1\n";
    assert_eq!(
        parse_with(body, Format::PrometheusText, ParseOptions::default()).unwrap(),
        ["a{b=\"é\"} 1.0", "EOF"]
    );
}

#[test]
fn a_builder_is_reused_across_lines() {
    let body = b"a{x=\"1\"} 1\nb{y=\"2\"} 2\n";
    let mut b = crate::model::LabelsBuilder::new();
    let mut seen = Vec::new();
    for e in Parser::new(body, Format::PrometheusText) {
        if let Entry::Series(s) = e.unwrap() {
            s.fill_builder(&mut b);
            seen.push(b.build().to_string());
        }
    }
    assert_eq!(seen, [r#"a{x="1"}"#, r#"b{y="2"}"#]);
}

#[test]
fn nul_at_line_start_is_an_error_not_a_silent_end() {
    assert_eq!(
        text_err(b"a 1\n\0b 2\n"),
        "line 2, column 1: expected metric name, '{' or '#' at start of line, found \"\\0b\""
    );
}
