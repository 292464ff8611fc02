//! OpenMetrics 1.0 text format.
//!
//! Strict where Prometheus' OpenMetrics parser is: exactly one space between a sample's parts,
//! no blank lines, no comments besides HELP/TYPE/UNIT/EOF, no whitespace inside braces, `# EOF`
//! at the end and nothing after it, timestamps in (float) seconds. The family rules Prometheus
//! does not check live in [`super::family`] behind [`super::ParseOptions::openmetrics_strict`].

use super::error::{Expected, ParseError, ParseErrorKind};
use super::family::FamilyValidator;
use super::lex::{self, Cursor, Dialect, Escapes, NameSpan};
use super::text::canonical_float_label;
use super::{Entry, Exemplar, LabelSet, ParseOptions, Series};
use crate::model::MetricType;

/// OpenMetrics: "The combined length of the label names and values of an Exemplar's LabelSet
/// MUST NOT exceed 128 UTF-8 character code points."
pub const EXEMPLAR_MAX_LABEL_RUNES: usize = 128;

pub(crate) struct OpenMetricsParser<'a> {
    c: Cursor<'a>,
    kind: MetricType,
    names: Vec<NameSpan>,
    strict: Option<FamilyValidator>,
    dropped_exemplars: u64,
}

impl<'a> OpenMetricsParser<'a> {
    pub fn new(body: &'a [u8], options: ParseOptions) -> Self {
        Self {
            c: Cursor::new(body),
            kind: MetricType::Unknown,
            names: Vec::new(),
            strict: options.openmetrics_strict.then(FamilyValidator::default),
            dropped_exemplars: 0,
        }
    }

    pub fn dropped_exemplars(&self) -> u64 {
        self.dropped_exemplars
    }

    pub fn next_entry(&mut self) -> Result<Entry<'a>, ParseError> {
        let i = self.c.pos;
        let Some(first) = self.c.peek(i) else {
            return Err(self.c.err(i, ParseErrorKind::MissingEof));
        };
        match first {
            b'#' => self.hash_line(i),
            b'{' => self.series(i, None),
            c if lex::is_metric_start(c) => {
                let end = lex::scan_metric_name(self.c.b, i);
                let name = NameSpan {
                    start: i,
                    end,
                    escaped: false,
                    quoted: false,
                };
                self.series(end, Some(name))
            }
            _ => Err(self.c.unexpected(i, Expected::LineStart)),
        }
    }

    fn hash_line(&mut self, hash: usize) -> Result<Entry<'a>, ParseError> {
        let c = &self.c;
        let b = c.b;
        if c.peek(hash + 1) != Some(b' ') {
            return Err(c.unexpected(hash, Expected::LineStart));
        }
        let kw = hash + 2;
        let keyword = match b.get(kw..kw + 5) {
            Some(b"HELP ") => "HELP",
            Some(b"TYPE ") => "TYPE",
            Some(b"UNIT ") => "UNIT",
            _ if b.get(kw..kw + 3) == Some(b"EOF") => {
                let mut end = kw + 3;
                if c.peek(end) == Some(b'\n') {
                    end += 1;
                }
                if end < b.len() {
                    return Err(c.err(end, ParseErrorKind::DataAfterEof));
                }
                if let Some(v) = &mut self.strict {
                    v.finish(c)?;
                }
                self.c.pos = end;
                return Ok(Entry::Eof);
            }
            _ => return Err(c.unexpected(hash, Expected::LineStart)),
        };
        let name = c.metadata_name(kw + 5, keyword)?;
        let name_end = name.end + usize::from(name.quoted);
        let Some(nl) = memchr::memchr(b'\n', &b[name_end..]).map(|k| name_end + k) else {
            return Err(c.err(b.len(), ParseErrorKind::MissingEof));
        };
        if c.peek(name_end) != Some(b' ') {
            return Err(c.unexpected(name_end, Expected::MetadataText(keyword)));
        }
        let text_start = name_end + 1;
        let text = c.str(text_start, nl, "metadata text")?;
        let name_str = c.name(&name)?;
        if let Some(v) = &mut self.strict {
            v.metadata(c, hash, &name_str, keyword)?;
        }
        let entry = match keyword {
            "HELP" => Entry::Help {
                name: name_str,
                text: lex::unescape(text, Escapes::LabelValue),
            },
            "TYPE" => {
                let kind = match text {
                    "counter" => MetricType::Counter,
                    "gauge" => MetricType::Gauge,
                    "histogram" => MetricType::Histogram,
                    "gaugehistogram" => MetricType::GaugeHistogram,
                    "summary" => MetricType::Summary,
                    "info" => MetricType::Info,
                    "stateset" => MetricType::StateSet,
                    "unknown" => MetricType::Unknown,
                    _ => {
                        return Err(c.err(
                            text_start,
                            ParseErrorKind::InvalidMetricType(text.to_owned()),
                        ));
                    }
                };
                self.kind = kind;
                if let Some(v) = &mut self.strict {
                    v.set_kind(kind);
                }
                Entry::Type {
                    name: name_str,
                    kind,
                }
            }
            _ => {
                if !text.is_empty() {
                    let m: &str = &name_str;
                    let is_suffix = m.len() > text.len()
                        && m.ends_with(text)
                        && m.as_bytes()[m.len() - text.len() - 1] == b'_';
                    if !is_suffix {
                        return Err(c.err(
                            text_start,
                            ParseErrorKind::UnitNotSuffix {
                                unit: text.to_owned(),
                                metric: m.to_owned(),
                            },
                        ));
                    }
                }
                Entry::Unit {
                    name: name_str,
                    unit: text,
                }
            }
        };
        self.c.pos = nl + 1;
        Ok(entry)
    }

    fn series(&mut self, i: usize, mut name: Option<NameSpan>) -> Result<Entry<'a>, ParseError> {
        let Self {
            c,
            kind,
            names,
            strict,
            dropped_exemplars,
        } = self;
        let c = &*c;
        let line_start = name.map_or(i, |n| n.start);
        let mut i = i;
        let mut labels = LabelSet::EMPTY;
        if c.peek(i) == Some(b'{') {
            let (span, end) = c.label_set(i, Dialect::OpenMetrics, false, &mut name, names)?;
            labels = LabelSet {
                raw: c.str(span.start, span.end, "label set")?,
                escaped: span.escaped,
                count: span.count,
                canonical_float: canonical_float_label(*kind),
            };
            i = end;
        }
        let Some(name) = name else {
            return Err(c.err(line_start, ParseErrorKind::MetricNameMissing));
        };
        let (value, mut i) = number(c, i, Expected::SampleValue)?;
        let value = lex::parse_float(&c.b[value.0..value.1]).ok_or_else(|| {
            c.err(
                value.0,
                ParseErrorKind::InvalidValue(
                    String::from_utf8_lossy(&c.b[value.0..value.1]).into_owned(),
                ),
            )
        })?;
        let mut timestamp_ms = None;
        let mut exemplar = None;
        let mut expected = Expected::TimestampOrEndOfLine;
        loop {
            match c.peek(i) {
                Some(b'\n') => break,
                None => return Err(c.err(i, ParseErrorKind::MissingEof)),
                Some(b' ') if c.b.get(i + 1..i + 4) == Some(b"# {") => {
                    let (e, end) =
                        parse_exemplar(c, i + 3, names, strict.is_some(), dropped_exemplars)?;
                    exemplar = e;
                    i = end;
                    break;
                }
                Some(b' ') if timestamp_ms.is_none() => {
                    let (ts, end) = number(c, i, Expected::TimestampOrEndOfLine)?;
                    timestamp_ms = Some(timestamp(c, ts, false)?);
                    i = end;
                    expected = Expected::EndOfLineAfterTimestamp;
                }
                _ => return Err(c.unexpected(i, expected)),
            }
        }
        let name = c.name(&name)?;
        let series = Series {
            name,
            labels,
            value,
            timestamp_ms,
            exemplar,
        };
        if let Some(v) = strict {
            v.series(c, line_start, &series)?;
        }
        self.c.pos = i + 1;
        Ok(Entry::Series(series))
    }
}

/// `{S}[^ \n]+` at `i`: the span of a value or timestamp after exactly one space.
fn number(
    c: &Cursor<'_>,
    i: usize,
    expected: Expected,
) -> Result<((usize, usize), usize), ParseError> {
    if c.peek(i) != Some(b' ') {
        return Err(c.unexpected(i, expected));
    }
    let start = i + 1;
    let end = c.b[start..]
        .iter()
        .position(|&b| b == b' ' || b == b'\n')
        .map_or(c.b.len(), |k| start + k);
    if end == start {
        return Err(c.unexpected(start, expected));
    }
    Ok(((start, end), end))
}

fn timestamp(c: &Cursor<'_>, (s, e): (usize, usize), exemplar: bool) -> Result<i64, ParseError> {
    let text = || String::from_utf8_lossy(&c.b[s..e]).into_owned();
    let kind = |t| {
        if exemplar {
            ParseErrorKind::InvalidExemplarTimestamp(t)
        } else {
            ParseErrorKind::InvalidTimestamp(t)
        }
    };
    let secs = lex::parse_float(&c.b[s..e]).ok_or_else(|| c.err(s, kind(text())))?;
    if !secs.is_finite() {
        return Err(c.err(s, kind(text())));
    }
    // Truncation toward zero, as Prometheus' int64(ts * 1000).
    Ok((secs * 1000.0) as i64)
}

/// The exemplar whose `{` is at `open`; returns it (or `None` when dropped for length) and
/// the offset of the line's `\n`.
fn parse_exemplar<'a>(
    c: &Cursor<'a>,
    open: usize,
    names: &mut Vec<NameSpan>,
    strict: bool,
    dropped: &mut u64,
) -> Result<(Option<Exemplar<'a>>, usize), ParseError> {
    let mut no_name = None;
    let (span, end) = c.label_set(open, Dialect::OpenMetrics, true, &mut no_name, names)?;
    let labels = LabelSet {
        raw: c.str(span.start, span.end, "exemplar labels")?,
        escaped: span.escaped,
        count: span.count,
        canonical_float: None,
    };
    let (v, mut i) = number(c, end, Expected::ExemplarValue)?;
    let value = lex::parse_float(&c.b[v.0..v.1]).ok_or_else(|| {
        c.err(
            v.0,
            ParseErrorKind::InvalidExemplarValue(
                String::from_utf8_lossy(&c.b[v.0..v.1]).into_owned(),
            ),
        )
    })?;
    let mut timestamp_ms = None;
    match c.peek(i) {
        Some(b'\n') => {}
        None => return Err(c.err(i, ParseErrorKind::MissingEof)),
        Some(b' ') => {
            let (ts, end) = number(c, i, Expected::EndOfLineAfterExemplar)?;
            timestamp_ms = Some(timestamp(c, ts, true)?);
            i = end;
            match c.peek(i) {
                Some(b'\n') => {}
                None => return Err(c.err(i, ParseErrorKind::MissingEof)),
                _ => return Err(c.unexpected(i, Expected::EndOfLineAfterExemplar)),
            }
        }
        _ => return Err(c.unexpected(i, Expected::EndOfLineAfterExemplar)),
    }
    let runes = labels.char_len();
    if runes > EXEMPLAR_MAX_LABEL_RUNES {
        if strict {
            return Err(c.err(
                open,
                ParseErrorKind::ExemplarLabelsTooLong {
                    runes,
                    max: EXEMPLAR_MAX_LABEL_RUNES,
                },
            ));
        }
        *dropped += 1;
        return Ok((None, i));
    }
    Ok((
        Some(Exemplar {
            labels,
            value,
            timestamp_ms,
        }),
        i,
    ))
}
