//! Errors of the exposition parsers and of content-type negotiation.
//!
//! A parse error fails the whole scrape (Prometheus discards everything it read from a body that
//! does not parse), so the error has to say exactly where and why: line and column (1-based, the
//! column counted in characters) plus what the parser expected and what it found.

use std::fmt;

/// Where in the body an error happened and what went wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {kind}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: u32,
    /// 1-based column, in characters (a multi-byte UTF-8 character counts once).
    pub column: u32,
    pub kind: ParseErrorKind,
}

impl ParseError {
    /// Builds the error for byte offset `at` of `body`. Line and column are only computed here,
    /// on the error path, so that the hot path never counts lines.
    pub(crate) fn at(body: &[u8], at: usize, kind: ParseErrorKind) -> Self {
        let at = at.min(body.len());
        let before = &body[..at];
        let line = memchr::memchr_iter(b'\n', before).count() + 1;
        let line_start = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&body[line_start..at])
            .chars()
            .count()
            + 1;
        Self {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
            kind,
        }
    }
}

/// What the parser was looking for when it met something else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    /// Start of a line: a metric name, `{` or `#`.
    LineStart,
    /// A metric name after `# HELP`, `# TYPE` or `# UNIT`.
    MetricNameAfter(&'static str),
    /// The text of a `# HELP`, `# TYPE` or `# UNIT` line.
    MetadataText(&'static str),
    LabelName,
    Equal,
    LabelValue,
    ClosingQuote,
    CommaOrBraceClose,
    SampleValue,
    ExemplarValue,
    /// After a sample value: a timestamp, an exemplar (OpenMetrics) or the end of the line.
    TimestampOrEndOfLine,
    /// After a timestamp: an exemplar (OpenMetrics) or the end of the line.
    EndOfLineAfterTimestamp,
    EndOfLineAfterExemplar,
    EndOfLineAfterMetadata,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LineStart => f.write_str("metric name, '{' or '#' at start of line"),
            Self::MetricNameAfter(what) => write!(f, "metric name after {what}"),
            Self::MetadataText(what) => write!(f, "text in {what}"),
            Self::LabelName => f.write_str("label name"),
            Self::Equal => f.write_str("'=' after label name"),
            Self::LabelValue => f.write_str("quoted label value"),
            Self::ClosingQuote => f.write_str("closing '\"'"),
            Self::CommaOrBraceClose => f.write_str("',' or '}'"),
            Self::SampleValue => f.write_str("sample value"),
            Self::ExemplarValue => f.write_str("exemplar value"),
            Self::TimestampOrEndOfLine => f.write_str("timestamp or end of line"),
            Self::EndOfLineAfterTimestamp => f.write_str("end of line after timestamp"),
            Self::EndOfLineAfterExemplar => f.write_str("end of line after exemplar"),
            Self::EndOfLineAfterMetadata => f.write_str("end of line after metadata"),
        }
    }
}

/// The offending input, quoted for the message (`"{"`, `"\n"`) or `end of input`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    Text(String),
    EndOfInput,
}

impl Found {
    /// The token starting at `at`: up to the next delimiter, at most a few characters, so the
    /// message points at the problem without echoing a whole line.
    pub(crate) fn token(body: &[u8], at: usize) -> Self {
        if at >= body.len() {
            return Self::EndOfInput;
        }
        let rest = &body[at..];
        let first = rest[0];
        let len = if matches!(
            first,
            b'\n' | b' ' | b'\t' | b'{' | b'}' | b'=' | b',' | b'"' | b'#'
        ) {
            1
        } else {
            rest.iter()
                .take(24)
                .position(|&c| matches!(c, b'\n' | b' ' | b'\t' | b'{' | b'}' | b'=' | b',' | b'"'))
                .unwrap_or(rest.len().min(24))
                .max(1)
        };
        Self::Text(String::from_utf8_lossy(&rest[..len]).into_owned())
    }
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(t) => write!(f, "{t:?}"),
            Self::EndOfInput => f.write_str("end of input"),
        }
    }
}

/// Why a body did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("expected {expected}, found {found}")]
    Unexpected { expected: Expected, found: Found },
    #[error("invalid sample value {0:?}")]
    InvalidValue(String),
    #[error("invalid exemplar value {0:?}")]
    InvalidExemplarValue(String),
    #[error("invalid timestamp {0:?}")]
    InvalidTimestamp(String),
    #[error("invalid exemplar timestamp {0:?}")]
    InvalidExemplarTimestamp(String),
    #[error("invalid metric type {0:?}")]
    InvalidMetricType(String),
    #[error("invalid UTF-8 in {0}")]
    InvalidUtf8(&'static str),
    #[error("empty {0}")]
    EmptyName(&'static str),
    #[error("label name {0:?} is not unique")]
    DuplicateLabel(String),
    #[error("metric name set twice")]
    MetricNameAlreadySet,
    #[error("metric name missing")]
    MetricNameMissing,
    #[error("unit {unit:?} is not a suffix of metric {metric:?}")]
    UnitNotSuffix { unit: String, metric: String },
    #[error("missing \"# EOF\" at end of input")]
    MissingEof,
    #[error("data after \"# EOF\"")]
    DataAfterEof,
    #[error("exemplar labels are {runes} characters long, more than the {max} allowed")]
    ExemplarLabelsTooLong { runes: usize, max: usize },
    #[error("{what} for metric family {family:?} appears more than once")]
    DuplicateMetadata { what: &'static str, family: String },
    #[error("metric family {0:?} is interleaved with another family")]
    InterleavedFamily(String),
    #[error("metadata for family {0:?} after its samples")]
    MetadataAfterSamples(String),
    #[error("sample {name:?} does not belong to {kind} family {family:?}")]
    SampleNotInFamily {
        name: String,
        family: String,
        kind: &'static str,
    },
    #[error("{0}")]
    InvalidFamilySample(String),
}

/// Why a response's `Content-Type` cannot be parsed by us.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ContentTypeError {
    #[error(
        "non-compliant scrape target sending blank Content-Type and no fallback_scrape_protocol specified for target"
    )]
    Missing,
    #[error("cannot parse Content-Type {0:?} and no fallback_scrape_protocol for target")]
    Unparsable(String),
    #[error(
        "received unsupported Content-Type {0:?} and no fallback_scrape_protocol specified for target"
    )]
    Unsupported(String),
}
