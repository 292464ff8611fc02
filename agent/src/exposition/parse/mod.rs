//! Parsers for the two text exposition formats a scrape target may answer with: Prometheus
//! text 0.0.4 (and its UTF-8 successor 1.0.0, same grammar) and OpenMetrics 1.0.
//!
//! Both are pull parsers over the response body. Entries borrow from the body: a series line
//! costs no allocation unless it carries escape sequences or a non-canonical `le`/`quantile`
//! value. They accept and reject what Prometheus' own parsers accept and reject, with an error
//! that names line, column, what was expected and what was found; any error fails the whole
//! scrape, as it does in Prometheus.
//!
//! Where Prometheus' lexers have accidents we are stricter rather than silent: a NUL byte at
//! the start of a 0.0.4 line is an error (Prometheus stops reading there), an OpenMetrics
//! sample followed by a stray space is an error (Prometheus skips the rest of that line), and
//! quoted OpenMetrics label names may not contain a raw newline.
//!
//! ```
//! use nodemeter::exposition::parse::{Entry, Format, Parser};
//! let body = b"# TYPE up gauge\nup{job=\"node\"} 1\n";
//! let mut parser = Parser::new(body, Format::PrometheusText);
//! while let Some(entry) = parser.next() {
//!     if let Entry::Series(s) = entry.unwrap() {
//!         assert_eq!(s.to_builder().build().to_string(), r#"up{job="node"}"#);
//!     }
//! }
//! ```

mod error;
mod family;
mod lex;
mod negotiate;
mod openmetrics;
mod text;

#[cfg(test)]
mod tests;

use std::borrow::Cow;

pub use error::{ContentTypeError, Expected, Found, ParseError, ParseErrorKind};
pub use lex::{NORMAL_NAN_BITS, parse_float};
pub use negotiate::{ACCEPT_HEADER, Negotiated, negotiate};
pub use openmetrics::EXEMPLAR_MAX_LABEL_RUNES;

use crate::model::{LabelsBuilder, METRIC_NAME, MetricType};

/// Which grammar a body follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `text/plain; version=0.0.4` (and `version=1.0.0`, which only adds quoted UTF-8 names).
    PrometheusText,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl Format {
    /// The media type Prometheus' `fallback_scrape_protocol` names for this format.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::PrometheusText => "text/plain",
            Self::OpenMetrics => "application/openmetrics-text",
        }
    }
}

/// Knobs of the parser (not user configuration: the scrape source picks them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// Enforce the OpenMetrics family rules Prometheus lets through: families do not
    /// interleave, metadata precedes samples and appears once, sample names carry their
    /// type's suffixes, histogram buckets have `le`, summaries' quantiles have `quantile`,
    /// statesets are 0/1, infos are 1, exemplars stay within 128 characters of labels.
    /// Off by default, because Prometheus scrapes bodies that break them.
    pub openmetrics_strict: bool,
}

/// One entry of an exposition body.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry<'a> {
    Help {
        name: Cow<'a, str>,
        text: Cow<'a, str>,
    },
    Type {
        name: Cow<'a, str>,
        kind: MetricType,
    },
    Unit {
        name: Cow<'a, str>,
        unit: &'a str,
    },
    Series(Series<'a>),
    /// The body ended (after `# EOF` in OpenMetrics). Comes once; the parser is done after it.
    Eof,
}

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Series<'a> {
    /// The metric name as exposed (`http_requests_total`, `rpc_seconds_bucket`).
    pub name: Cow<'a, str>,
    pub labels: LabelSet<'a>,
    /// NaN always has [`NORMAL_NAN_BITS`], never the staleness marker's bits.
    pub value: f64,
    /// Exposed timestamp in milliseconds (OpenMetrics seconds are converted, truncated).
    pub timestamp_ms: Option<i64>,
    pub exemplar: Option<Exemplar<'a>>,
}

impl Series<'_> {
    /// The series' label set with `__name__`, ready for relabeling.
    pub fn to_builder(&self) -> LabelsBuilder {
        let mut b = LabelsBuilder::with_capacity(usize::from(self.labels.len()) + 1);
        self.fill_builder(&mut b);
        b
    }

    /// Like [`to_builder`](Self::to_builder) into a builder the caller reuses across lines.
    pub fn fill_builder(&self, b: &mut LabelsBuilder) {
        b.clear();
        b.set(METRIC_NAME, &self.name);
        for (name, value) in self.labels.iter() {
            b.set(&name, &value);
        }
    }
}

/// An OpenMetrics exemplar (`# {trace_id="abc"} 0.5 1700000000.123`).
#[derive(Clone, Debug, PartialEq)]
pub struct Exemplar<'a> {
    pub labels: LabelSet<'a>,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

/// The labels of a line, kept as the validated text between the braces and decoded on
/// iteration: no allocation unless a value has escapes or needs canonical float form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LabelSet<'a> {
    raw: &'a str,
    escaped: bool,
    count: u16,
    canonical_float: Option<&'static str>,
}

impl<'a> LabelSet<'a> {
    pub(crate) const EMPTY: LabelSet<'static> = LabelSet {
        raw: "",
        escaped: false,
        count: 0,
        canonical_float: None,
    };

    /// Number of name/value pairs (a quoted metric name inside the braces is not one).
    pub fn len(&self) -> u16 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether some name or value holds an escape sequence (then iteration allocates).
    pub fn has_escapes(&self) -> bool {
        self.escaped
    }

    /// Pairs in exposition order, escapes resolved; `le` of histograms and `quantile` of
    /// summaries in OpenMetrics canonical float form (`1` -> `1.0`), as Prometheus stores them.
    pub fn iter(&self) -> LabelIter<'a> {
        LabelIter {
            rest: self.raw,
            escaped: self.escaped,
            canonical_float: self.canonical_float,
        }
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<Cow<'a, str>> {
        self.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Characters in all names and values (the measure of OpenMetrics' exemplar limit).
    pub fn char_len(&self) -> usize {
        self.iter()
            .map(|(n, v)| n.chars().count() + v.chars().count())
            .sum()
    }
}

impl<'a> IntoIterator for &LabelSet<'a> {
    type Item = (Cow<'a, str>, Cow<'a, str>);
    type IntoIter = LabelIter<'a>;
    fn into_iter(self) -> LabelIter<'a> {
        self.iter()
    }
}

/// Iterator over a [`LabelSet`]. The text was validated by the parser, so this only splits it,
/// byte-wise, at the ASCII delimiters.
#[derive(Clone, Debug)]
pub struct LabelIter<'a> {
    rest: &'a str,
    escaped: bool,
    canonical_float: Option<&'static str>,
}

impl<'a> LabelIter<'a> {
    /// The quoted string at `rest[i]` (which holds `"`): its contents and the offset after it.
    fn quoted(&self, i: usize) -> (Cow<'a, str>, usize) {
        let b = self.rest.as_bytes();
        let start = (i + 1).min(b.len());
        let mut j = start;
        if self.escaped {
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
        } else {
            j = memchr::memchr(b'"', &b[start..]).map_or(b.len(), |k| start + k);
        }
        let j = j.min(b.len());
        let inner = self.rest.get(start..j).unwrap_or("");
        let text = if self.escaped {
            lex::unescape(inner, lex::Escapes::LabelValue)
        } else {
            Cow::Borrowed(inner)
        };
        (text, (j + 1).min(b.len()))
    }
}

fn skip(b: &[u8], mut i: usize, set: &[u8]) -> usize {
    while i < b.len() && set.contains(&b[i]) {
        i += 1;
    }
    i
}

impl<'a> Iterator for LabelIter<'a> {
    type Item = (Cow<'a, str>, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let b = self.rest.as_bytes();
            let i = skip(b, 0, b" \t,");
            if i >= b.len() {
                self.rest = "";
                return None;
            }
            let (name, after) = if b[i] == b'"' {
                self.quoted(i)
            } else {
                let mut j = i;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                if j == i {
                    self.rest = "";
                    return None;
                }
                (Cow::Borrowed(self.rest.get(i..j).unwrap_or("")), j)
            };
            let eq = skip(b, after, b" \t");
            if b.get(eq) != Some(&b'=') {
                // A quoted metric name inside the braces: not a label.
                if b[i] != b'"' {
                    self.rest = "";
                    return None;
                }
                self.rest = self.rest.get(after..).unwrap_or("");
                continue;
            }
            let open = skip(b, eq + 1, b" \t");
            if b.get(open) != Some(&b'"') {
                self.rest = "";
                return None;
            }
            let (value, end) = self.quoted(open);
            self.rest = self.rest.get(end..).unwrap_or("");
            let value = match self.canonical_float {
                Some(l) if name == l => lex::canonical_float_label(value),
                _ => value,
            };
            return Some((name, value));
        }
    }
}

enum Inner<'a> {
    Text(text::TextParser<'a>),
    OpenMetrics(openmetrics::OpenMetricsParser<'a>),
}

/// Pull parser over one response body.
///
/// Yields entries until [`Entry::Eof`] or the first error, then `None`. An error means the
/// whole body is invalid: discard what was read.
pub struct Parser<'a> {
    inner: Inner<'a>,
    done: bool,
}

impl<'a> Parser<'a> {
    pub fn new(body: &'a [u8], format: Format) -> Self {
        Self::with_options(body, format, ParseOptions::default())
    }

    pub fn with_options(body: &'a [u8], format: Format, options: ParseOptions) -> Self {
        let inner = match format {
            Format::PrometheusText => Inner::Text(text::TextParser::new(body)),
            Format::OpenMetrics => {
                Inner::OpenMetrics(openmetrics::OpenMetricsParser::new(body, options))
            }
        };
        Self { inner, done: false }
    }

    /// The next entry. After `Eof` or an error it keeps returning `Eof`.
    pub fn next_entry(&mut self) -> Result<Entry<'a>, ParseError> {
        if self.done {
            return Ok(Entry::Eof);
        }
        let r = match &mut self.inner {
            Inner::Text(p) => p.next_entry(),
            Inner::OpenMetrics(p) => p.next_entry(),
        };
        if matches!(r, Ok(Entry::Eof) | Err(_)) {
            self.done = true;
        }
        r
    }

    /// Exemplars dropped for exceeding [`EXEMPLAR_MAX_LABEL_RUNES`] (Prometheus drops them
    /// too, without failing the scrape; strict OpenMetrics mode fails instead).
    pub fn dropped_exemplars(&self) -> u64 {
        match &self.inner {
            Inner::Text(_) => 0,
            Inner::OpenMetrics(p) => p.dropped_exemplars(),
        }
    }
}

impl<'a> Iterator for Parser<'a> {
    type Item = Result<Entry<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        Some(self.next_entry())
    }
}

impl std::iter::FusedIterator for Parser<'_> {}
