//! Arbitrary bytes through both exposition parsers (and strict OpenMetrics): no panic, no
//! endless loop, errors point inside the body, and whatever parses survives a round trip
//! through a re-encoding in the same format with the same meaning.

#![no_main]

use std::fmt::Write as _;

use libfuzzer_sys::fuzz_target;
use nodemeter::exposition::parse::{Entry, Format, ParseOptions, Parser};
use nodemeter::model::MetricType;

#[derive(Debug, PartialEq)]
enum Item {
    Help(String, String),
    Type(String, MetricType),
    Unit(String, String),
    Series {
        name: String,
        labels: Vec<(String, String)>,
        value: u64,
        ts: Option<i64>,
        exemplar: Option<(Vec<(String, String)>, u64, Option<i64>)>,
    },
}

fn pairs(l: &nodemeter::exposition::parse::LabelSet<'_>) -> Vec<(String, String)> {
    l.iter()
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect()
}

fn collect(body: &[u8], format: Format, options: ParseOptions) -> Option<Vec<Item>> {
    let mut parser = Parser::with_options(body, format, options);
    let mut out = Vec::new();
    let mut steps = 0usize;
    for entry in parser.by_ref() {
        steps += 1;
        assert!(steps <= body.len() + 2, "parser did not advance");
        match entry {
            Err(e) => {
                let lines = body.iter().filter(|&&b| b == b'\n').count() + 1;
                assert!(
                    e.line >= 1 && (e.line as usize) <= lines,
                    "{e} outside the body"
                );
                assert!(e.column >= 1);
                let _ = e.to_string();
                return None;
            }
            Ok(Entry::Eof) => break,
            Ok(Entry::Help { name, text }) => {
                out.push(Item::Help(name.into_owned(), text.into_owned()))
            }
            Ok(Entry::Type { name, kind }) => out.push(Item::Type(name.into_owned(), kind)),
            Ok(Entry::Unit { name, unit }) => {
                out.push(Item::Unit(name.into_owned(), unit.to_owned()))
            }
            Ok(Entry::Series(s)) => {
                assert!(
                    !s.value.is_nan()
                        || s.value.to_bits() == nodemeter::exposition::parse::NORMAL_NAN_BITS
                );
                let _ = s.to_builder().build();
                out.push(Item::Series {
                    name: s.name.into_owned(),
                    labels: pairs(&s.labels),
                    value: s.value.to_bits(),
                    ts: s.timestamp_ms,
                    exemplar: s
                        .exemplar
                        .map(|e| (pairs(&e.labels), e.value.to_bits(), e.timestamp_ms)),
                });
            }
        }
    }
    assert!(
        parser.next().is_none(),
        "parser yields nothing after the end"
    );
    Some(out)
}

fn legacy(name: &str, colon: bool) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
}

fn quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn metric_name(out: &mut String, s: &str) {
    if legacy(s, true) {
        out.push_str(s);
    } else {
        quote(out, s);
    }
}

fn float(v: u64) -> String {
    let f = f64::from_bits(v);
    if f.is_nan() {
        "NaN".into()
    } else if f == f64::INFINITY {
        "+Inf".into()
    } else if f == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{f:e}")
    }
}

fn labels(out: &mut String, name: Option<&str>, l: &[(String, String)]) {
    let quoted_name = name.filter(|n| !legacy(n, true));
    if let Some(n) = name.filter(|n| legacy(n, true)) {
        out.push_str(n);
    }
    if l.is_empty() && quoted_name.is_none() {
        if name.is_none() {
            out.push_str("{}");
        }
        return;
    }
    out.push('{');
    let mut first = true;
    if let Some(n) = quoted_name {
        quote(out, n);
        first = false;
    }
    for (k, v) in l {
        if !first {
            out.push(',');
        }
        first = false;
        if legacy(k, false) {
            out.push_str(k);
        } else {
            quote(out, k);
        }
        out.push('=');
        quote(out, v);
    }
    out.push('}');
}

fn seconds(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let a = ms.unsigned_abs();
    format!("{sign}{}.{:03}", a / 1000, a % 1000)
}

fn encode(items: &[Item], format: Format) -> Option<String> {
    let om = format == Format::OpenMetrics;
    let mut out = String::new();
    for item in items {
        match item {
            Item::Help(n, t) => {
                out.push_str("# HELP ");
                metric_name(&mut out, n);
                out.push(' ');
                for c in t.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        '"' if om => out.push_str("\\\""),
                        c => out.push(c),
                    }
                }
                out.push('\n');
            }
            Item::Type(n, k) => {
                out.push_str("# TYPE ");
                metric_name(&mut out, n);
                let _ = writeln!(
                    out,
                    " {}",
                    if om { k.openmetrics() } else { k.text_0_0_4() }
                );
            }
            Item::Unit(n, u) => {
                out.push_str("# UNIT ");
                metric_name(&mut out, n);
                let _ = writeln!(out, " {u}");
            }
            Item::Series {
                name,
                labels: l,
                value,
                ts,
                exemplar,
            } => {
                labels(&mut out, Some(name), l);
                let _ = write!(out, " {}", float(*value));
                match ts {
                    Some(t) if om => {
                        let _ = write!(out, " {}", seconds(*t));
                    }
                    Some(t) if *t >= 0 => {
                        let _ = write!(out, " {t}");
                    }
                    Some(_) => return None,
                    None => {}
                }
                if let Some((el, ev, ets)) = exemplar {
                    out.push_str(" # ");
                    labels(&mut out, None, el);
                    let _ = write!(out, " {}", float(*ev));
                    if let Some(t) = ets {
                        let _ = write!(out, " {}", seconds(*t));
                    }
                }
                out.push('\n');
            }
        }
    }
    if om {
        out.push_str("# EOF\n");
    }
    Some(out)
}

/// Equal up to OpenMetrics' float-seconds timestamps, which may lose a millisecond when
/// re-read (`x.yyy * 1000` truncated).
fn same(a: &[Item], b: &[Item]) -> bool {
    let close = |x: &Option<i64>, y: &Option<i64>| match (x, y) {
        (Some(x), Some(y)) => x.abs_diff(*y) <= 1,
        (None, None) => true,
        _ => false,
    };
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (
                Item::Series {
                    name: n1,
                    labels: l1,
                    value: v1,
                    ts: t1,
                    exemplar: e1,
                },
                Item::Series {
                    name: n2,
                    labels: l2,
                    value: v2,
                    ts: t2,
                    exemplar: e2,
                },
            ) => {
                n1 == n2
                    && l1 == l2
                    && v1 == v2
                    && close(t1, t2)
                    && match (e1, e2) {
                        (Some((a, b, c)), Some((d, e, f))) => a == d && b == e && close(c, f),
                        (None, None) => true,
                        _ => false,
                    }
            }
            _ => x == y,
        })
}

fuzz_target!(|data: &[u8]| {
    let lenient = ParseOptions::default();
    let strict = ParseOptions {
        openmetrics_strict: true,
    };
    for (format, options) in [
        (Format::PrometheusText, lenient),
        (Format::OpenMetrics, lenient),
        (Format::OpenMetrics, strict),
    ] {
        let Some(items) = collect(data, format, options) else {
            continue;
        };
        let Some(again) = encode(&items, format) else {
            continue;
        };
        // Strict mode may reject a re-encoding whose exemplar the lenient pass dropped; the
        // lenient parser must take back everything it produced.
        let reparsed = collect(again.as_bytes(), format, lenient)
            .unwrap_or_else(|| panic!("re-encoding does not parse:\n{again}"));
        assert!(
            same(&items, &reparsed),
            "round trip changed the meaning:\n{items:?}\n{reparsed:?}\n{again}"
        );
    }
});
