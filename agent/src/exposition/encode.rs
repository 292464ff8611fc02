//! Encoding series as Prometheus text 0.0.4 or OpenMetrics 1.0.

use std::fmt::Write as _;

use crate::model::{FamilyMetadata, Labels, METRIC_NAME, MetricType};

/// Which format a scraper asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text004,
    OpenMetrics1,
}

impl Format {
    /// Picks the format from an `Accept` header: OpenMetrics only when asked for, as client
    /// libraries do.
    pub fn negotiate(accept: Option<&str>) -> Self {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Self::OpenMetrics1,
            _ => Self::Text004,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Text004 => "text/plain; version=0.0.4; charset=utf-8",
            Self::OpenMetrics1 => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// One point of one series as the encoder sees it.
pub struct Point<'a> {
    pub labels: &'a Labels,
    pub timestamp_ms: Option<i64>,
    pub value: f64,
}

/// One family: its metadata (if known) and its points, any sample names of the family.
pub struct FamilyView<'a> {
    pub name: &'a str,
    pub metadata: Option<&'a FamilyMetadata>,
    pub points: Vec<Point<'a>>,
}

/// Appends `families` in `format`; the caller orders families. OpenMetrics output ends with
/// `# EOF` only when `last` is set.
pub fn encode(out: &mut String, format: Format, families: &[FamilyView<'_>], last: bool) {
    for fam in families {
        let kind = fam.metadata.map(|m| m.kind).unwrap_or_default();
        let help = fam.metadata.map(|m| m.help.as_str()).unwrap_or("");
        match format {
            Format::Text004 => {
                if !help.is_empty() {
                    let _ = writeln!(out, "# HELP {} {}", fam.name, escape_help(help));
                }
                let _ = writeln!(out, "# TYPE {} {}", fam.name, kind.text_0_0_4());
            }
            Format::OpenMetrics1 => {
                // OpenMetrics counters are named without `_total`; a counter sample without the
                // suffix cannot be expressed as a counter there, so it is `unknown`.
                let (om_name, om_kind) = match kind {
                    MetricType::Counter => match fam.name.strip_suffix("_total") {
                        Some(base) => (base, MetricType::Counter),
                        None => (fam.name, MetricType::Unknown),
                    },
                    k => (fam.name, k),
                };
                let _ = writeln!(out, "# TYPE {om_name} {}", om_kind.openmetrics());
                if let Some(unit) = fam
                    .metadata
                    .map(|m| m.unit.as_str())
                    .filter(|u| !u.is_empty())
                {
                    let _ = writeln!(out, "# UNIT {om_name} {unit}");
                }
                if !help.is_empty() {
                    let _ = writeln!(out, "# HELP {om_name} {}", escape_label_value(help));
                }
            }
        }
        for p in &fam.points {
            write_series(out, p.labels);
            out.push(' ');
            write_value(out, p.value);
            if let Some(ts) = p.timestamp_ms {
                match format {
                    Format::Text004 => {
                        let _ = write!(out, " {ts}");
                    }
                    Format::OpenMetrics1 => {
                        let _ = write!(out, " {}.{:03}", ts.div_euclid(1000), ts.rem_euclid(1000));
                    }
                }
            }
            out.push('\n');
        }
    }
    if last && format == Format::OpenMetrics1 {
        out.push_str("# EOF\n");
    }
}

fn write_series(out: &mut String, labels: &Labels) {
    out.push_str(labels.metric_name().unwrap_or(""));
    let mut first = true;
    for l in labels.iter().filter(|l| l.name.as_str() != METRIC_NAME) {
        out.push(if first { '{' } else { ',' });
        first = false;
        out.push_str(&l.name);
        out.push_str("=\"");
        out.push_str(&escape_label_value(&l.value));
        out.push('"');
    }
    if !first {
        out.push('}');
    }
}

/// Floats the way Prometheus client libraries print them: Go's `strconv.FormatFloat(v, 'g', -1)`,
/// shortest digits, exponent form when the decimal exponent is below -4 or at least 6.
pub fn write_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let sci = format!("{v:e}");
        let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        if !(-4..6).contains(&exp) {
            let _ = write!(
                out,
                "{mantissa}e{}{:02}",
                if exp < 0 { '-' } else { '+' },
                exp.abs()
            );
        } else {
            let _ = write!(out, "{v}");
        }
    }
}

fn escape_label_value(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return v.into();
    }
    let mut s = String::with_capacity(v.len() + 2);
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s.into()
}

fn escape_help(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.contains(['\\', '\n']) {
        return v.into();
    }
    v.replace('\\', "\\\\").replace('\n', "\\n").into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn val(v: f64) -> String {
        let mut s = String::new();
        write_value(&mut s, v);
        s
    }

    #[test]
    fn floats_print_like_prometheus_clients() {
        assert_eq!(val(0.0), "0");
        assert_eq!(val(1.0), "1");
        assert_eq!(val(-2.5), "-2.5");
        assert_eq!(val(123456.0), "123456");
        assert_eq!(val(1234567.0), "1.234567e+06");
        assert_eq!(val(1e6), "1e+06");
        assert_eq!(val(0.0001), "0.0001");
        assert_eq!(val(0.00001), "1e-05");
        assert_eq!(val(f64::INFINITY), "+Inf");
        assert_eq!(val(f64::NAN), "NaN");
    }

    #[test]
    fn text_format_has_help_type_escapes_and_timestamps() {
        let meta = FamilyMetadata::new(
            "container_cpu_usage_seconds_total",
            MetricType::Counter,
            "Cumulative cpu time consumed in seconds.",
        );
        let l = Labels::from_pairs([
            ("__name__", "container_cpu_usage_seconds_total"),
            ("id", "/a\"b"),
            ("cpu", "total"),
        ]);
        let fam = FamilyView {
            name: "container_cpu_usage_seconds_total",
            metadata: Some(&meta),
            points: vec![Point {
                labels: &l,
                timestamp_ms: Some(1700000000123),
                value: 1.5,
            }],
        };
        let mut out = String::new();
        encode(&mut out, Format::Text004, &[fam], true);
        assert_eq!(
            out,
            "# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed in seconds.\n\
             # TYPE container_cpu_usage_seconds_total counter\n\
             container_cpu_usage_seconds_total{cpu=\"total\",id=\"/a\\\"b\"} 1.5 1700000000123\n"
        );
    }

    #[test]
    fn openmetrics_names_counters_without_total_and_ends_with_eof() {
        let meta = FamilyMetadata::new("x_total", MetricType::Counter, "h");
        let l = Labels::from_pairs([("__name__", "x_total")]);
        let fam = FamilyView {
            name: "x_total",
            metadata: Some(&meta),
            points: vec![Point {
                labels: &l,
                timestamp_ms: Some(1500),
                value: 2.0,
            }],
        };
        let mut out = String::new();
        encode(&mut out, Format::OpenMetrics1, &[fam], true);
        assert_eq!(
            out,
            "# TYPE x counter\n# HELP x h\nx_total 2 1.500\n# EOF\n"
        );
    }

    #[test]
    fn negotiation_prefers_openmetrics_only_when_asked() {
        assert_eq!(Format::negotiate(None), Format::Text004);
        assert_eq!(
            Format::negotiate(Some("text/plain;version=0.0.4")),
            Format::Text004
        );
        assert_eq!(
            Format::negotiate(Some(
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
            )),
            Format::OpenMetrics1
        );
    }
}
