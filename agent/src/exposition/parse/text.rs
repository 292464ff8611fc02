//! Prometheus text format 0.0.4 (and 1.0.0, which adds quoted UTF-8 names).
//!
//! Lenient where Prometheus' lexer is: blanks and tabs between tokens, blank lines, any
//! comment, a last line without `\n`, labels without separating commas, a trailing comma.

use std::borrow::Cow;

use super::error::{Expected, ParseError, ParseErrorKind};
use super::lex::{self, Cursor, Dialect, Escapes, NameSpan};
use super::{Entry, LabelSet, Series};
use crate::model::MetricType;

pub(crate) struct TextParser<'a> {
    c: Cursor<'a>,
    /// The type of the last `# TYPE` line. Prometheus applies it to whatever series follow
    /// (for `le`/`quantile` canonicalisation) without checking they belong to that family.
    kind: MetricType,
    names: Vec<NameSpan>,
}

impl<'a> TextParser<'a> {
    pub fn new(body: &'a [u8]) -> Self {
        Self {
            c: Cursor::new(body),
            kind: MetricType::Unknown,
            names: Vec::new(),
        }
    }

    pub fn next_entry(&mut self) -> Result<Entry<'a>, ParseError> {
        loop {
            let i = self.c.skip_blanks(self.c.pos);
            let Some(first) = self.c.peek(i) else {
                self.c.pos = i;
                return Ok(Entry::Eof);
            };
            match first {
                b'\n' => self.c.pos = i + 1,
                b'#' => {
                    if let Some(entry) = self.comment(i)? {
                        return Ok(entry);
                    }
                }
                b'{' => return self.series(i, None),
                c if lex::is_metric_start(c) => {
                    let end = lex::scan_metric_name(self.c.b, i);
                    let name = NameSpan {
                        start: i,
                        end,
                        escaped: false,
                        quoted: false,
                    };
                    return self.series(end, Some(name));
                }
                _ => return Err(self.c.unexpected(i, Expected::LineStart)),
            }
        }
    }

    /// A `#` line: HELP or TYPE metadata, or a comment to skip (then `None`).
    fn comment(&mut self, hash: usize) -> Result<Option<Entry<'a>>, ParseError> {
        let c = &self.c;
        let after = c.skip_blanks(hash + 1);
        let line_end = c.line_end(hash);
        let keyword = if after == hash + 1 {
            None
        } else {
            match c.b.get(after..after + 4) {
                Some(b"HELP") => Some("HELP"),
                Some(b"TYPE") => Some("TYPE"),
                _ => None,
            }
        };
        let Some(keyword) = keyword.filter(|_| matches!(c.peek(after + 4), Some(b' ' | b'\t')))
        else {
            self.c.pos = (line_end + 1).min(c.b.len());
            return Ok(None);
        };
        let name_at = c.skip_blanks(after + 4);
        let name = c.metadata_name(name_at, keyword)?;
        let name_end = name.end + usize::from(name.quoted);
        let line_end = c.line_end(name_end);
        // Prometheus takes the rest of the line and drops its first character (the separator).
        let text_start = (name_end + 1).min(line_end);
        let text = c.str(text_start, line_end, "HELP text")?;
        let name = c.name(&name)?;
        self.c.pos = (line_end + 1).min(c.b.len());
        if keyword == "HELP" {
            let text = lex::unescape(text, Escapes::Help);
            return Ok(Some(Entry::Help { name, text }));
        }
        let kind = match text {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "summary" => MetricType::Summary,
            "untyped" => MetricType::Unknown,
            _ => {
                return Err(self.c.err(
                    text_start,
                    ParseErrorKind::InvalidMetricType(text.to_owned()),
                ));
            }
        };
        self.kind = kind;
        Ok(Some(Entry::Type { name, kind }))
    }

    /// A sample line; `i` is just after the metric name, or at `{` when the name is quoted
    /// inside the braces.
    fn series(&mut self, i: usize, mut name: Option<NameSpan>) -> Result<Entry<'a>, ParseError> {
        let c = &self.c;
        let line_start = name.map_or(i, |n| n.start);
        let mut i = c.skip_blanks(i);
        let mut labels = LabelSet::EMPTY;
        if c.peek(i) == Some(b'{') {
            let (span, end) = c.label_set(i, Dialect::Text, false, &mut name, &mut self.names)?;
            labels = LabelSet {
                raw: c.str(span.start, span.end, "label set")?,
                escaped: span.escaped,
                count: span.count,
                canonical_float: canonical_float_label(self.kind),
            };
            i = c.skip_blanks(end);
        }
        let Some(name) = name else {
            return Err(c.err(line_start, ParseErrorKind::MetricNameMissing));
        };
        let value_end = c.b[i..]
            .iter()
            .position(|&b| matches!(b, b' ' | b'\t' | b'\n' | b'{'))
            .map_or(c.b.len(), |k| i + k);
        if value_end == i {
            return Err(c.unexpected(i, Expected::SampleValue));
        }
        let value = lex::parse_float(&c.b[i..value_end]).ok_or_else(|| {
            c.err(
                i,
                ParseErrorKind::InvalidValue(
                    String::from_utf8_lossy(&c.b[i..value_end]).into_owned(),
                ),
            )
        })?;
        let mut i = c.skip_blanks(value_end);
        let mut timestamp_ms = None;
        if c.peek(i).is_some_and(|b| b.is_ascii_digit()) {
            let ts_end = c.b[i..]
                .iter()
                .position(|b| !b.is_ascii_digit())
                .map_or(c.b.len(), |k| i + k);
            let digits = &c.b[i..ts_end];
            let ts = digits
                .iter()
                .try_fold(0i64, |acc, d| {
                    acc.checked_mul(10)?.checked_add(i64::from(d - b'0'))
                })
                .ok_or_else(|| {
                    c.err(
                        i,
                        ParseErrorKind::InvalidTimestamp(
                            String::from_utf8_lossy(digits).into_owned(),
                        ),
                    )
                })?;
            timestamp_ms = Some(ts);
            i = c.skip_blanks(ts_end);
            if !matches!(c.peek(i), None | Some(b'\n')) {
                return Err(c.unexpected(i, Expected::EndOfLineAfterTimestamp));
            }
        } else if !matches!(c.peek(i), None | Some(b'\n')) {
            return Err(c.unexpected(i, Expected::TimestampOrEndOfLine));
        }
        let name: Cow<'a, str> = c.name(&name)?;
        self.c.pos = (i + 1).min(self.c.b.len());
        Ok(Entry::Series(Series {
            name,
            labels,
            value,
            timestamp_ms,
            exemplar: None,
        }))
    }
}

/// The label whose value Prometheus rewrites in canonical float form for a family type.
pub(crate) fn canonical_float_label(kind: MetricType) -> Option<&'static str> {
    match kind {
        MetricType::Histogram => Some("le"),
        MetricType::Summary => Some("quantile"),
        _ => None,
    }
}
