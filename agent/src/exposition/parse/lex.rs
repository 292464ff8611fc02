//! Scanning primitives both formats share: names, quoted strings, label sets, floats.
//!
//! Everything works on byte offsets into the body and hands out `&'a str` slices of it; nothing
//! here allocates unless an escape sequence has to be resolved.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::error::{Expected, Found, ParseError, ParseErrorKind};

/// Prometheus' canonical NaN (`value.NormalNaN`): every parsed NaN gets these bits, so an
/// exposed NaN can never be mistaken for a staleness marker.
pub const NORMAL_NAN_BITS: u64 = 0x7ff8_0000_0000_0001;

const fn class_table(start: bool, colon: bool) -> [bool; 256] {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphabetic()
            || b == b'_'
            || (colon && b == b':')
            || (!start && b.is_ascii_digit());
        c += 1;
    }
    t
}

static METRIC_START: [bool; 256] = class_table(true, true);
static METRIC_CONT: [bool; 256] = class_table(false, true);
static LABEL_START: [bool; 256] = class_table(true, false);
static LABEL_CONT: [bool; 256] = class_table(false, false);

pub(crate) fn is_metric_start(c: u8) -> bool {
    METRIC_START[c as usize]
}

/// End of the unquoted metric name starting at `i` (`i` itself when there is none).
pub(crate) fn scan_metric_name(b: &[u8], i: usize) -> usize {
    if i >= b.len() || !METRIC_START[b[i] as usize] {
        return i;
    }
    let mut j = i + 1;
    while j < b.len() && METRIC_CONT[b[j] as usize] {
        j += 1;
    }
    j
}

fn scan_label_name(b: &[u8], i: usize) -> usize {
    if i >= b.len() || !LABEL_START[b[i] as usize] {
        return i;
    }
    let mut j = i + 1;
    while j < b.len() && LABEL_CONT[b[j] as usize] {
        j += 1;
    }
    j
}

/// The two dialects differ in whitespace (0.0.4 skips blanks and tabs between tokens,
/// OpenMetrics allows none inside a label set) and in raw newlines inside label values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Text,
    OpenMetrics,
}

/// A read position over the body plus the body's `&str` view when the whole body is UTF-8
/// (then slicing needs no validation at all).
pub(crate) struct Cursor<'a> {
    pub b: &'a [u8],
    pub text: Option<&'a str>,
    pub pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Self {
            b,
            text: std::str::from_utf8(b).ok(),
            pos: 0,
        }
    }

    pub fn err(&self, at: usize, kind: ParseErrorKind) -> ParseError {
        ParseError::at(self.b, at, kind)
    }

    pub fn unexpected(&self, at: usize, expected: Expected) -> ParseError {
        self.err(
            at,
            ParseErrorKind::Unexpected {
                expected,
                found: Found::token(self.b, at),
            },
        )
    }

    /// `b[s..e]` as text, or an invalid-UTF-8 error naming `what`.
    pub fn str(&self, s: usize, e: usize, what: &'static str) -> Result<&'a str, ParseError> {
        if let Some(t) = self.text
            && let Some(v) = t.get(s..e)
        {
            return Ok(v);
        }
        let bytes = self.b.get(s..e).unwrap_or_default();
        std::str::from_utf8(bytes)
            .map_err(|err| self.err(s + err.valid_up_to(), ParseErrorKind::InvalidUtf8(what)))
    }

    pub fn peek(&self, i: usize) -> Option<u8> {
        self.b.get(i).copied()
    }

    pub fn skip_blanks(&self, mut i: usize) -> usize {
        while i < self.b.len() && matches!(self.b[i], b' ' | b'\t') {
            i += 1;
        }
        i
    }

    /// End of the line starting at or after `i`: the offset of its `\n` or the body's end.
    pub fn line_end(&self, i: usize) -> usize {
        memchr::memchr(b'\n', self.b.get(i..).unwrap_or_default()).map_or(self.b.len(), |k| i + k)
    }

    /// Scans the quoted string opening at `i` (which holds `"`). Returns the offset after the
    /// closing quote and whether the string holds a backslash escape.
    pub fn scan_quoted(&self, i: usize, allow_newline: bool) -> Result<(usize, bool), ParseError> {
        let b = self.b;
        let mut j = i + 1;
        let mut escaped = false;
        loop {
            let rest = b.get(j..).unwrap_or_default();
            let hit = if allow_newline {
                memchr::memchr2(b'"', b'\\', rest)
            } else {
                memchr::memchr3(b'"', b'\\', b'\n', rest)
            };
            let Some(k) = hit else {
                return Err(self.unexpected(b.len(), Expected::ClosingQuote));
            };
            let at = j + k;
            match b[at] {
                b'"' => return Ok((at + 1, escaped)),
                b'\\' => {
                    // A backslash escapes any one character but a newline (the lexers' `\\.`).
                    match b.get(at + 1) {
                        None => return Err(self.unexpected(b.len(), Expected::ClosingQuote)),
                        Some(b'\n') => return Err(self.unexpected(at + 1, Expected::ClosingQuote)),
                        Some(_) => {}
                    }
                    escaped = true;
                    j = at + 2;
                }
                _ => return Err(self.unexpected(at, Expected::ClosingQuote)),
            }
        }
    }

    /// Parses the label set whose `{` is at `open`; returns its span and the offset after `}`.
    /// A quoted name standing alone (`{"my.metric", a="b"}`) is the metric name: it is stored
    /// in `metric_name` unless the caller already has one.
    pub fn label_set(
        &self,
        open: usize,
        dialect: Dialect,
        exemplar: bool,
        metric_name: &mut Option<NameSpan>,
        names: &mut Vec<NameSpan>,
    ) -> Result<(LabelSpan, usize), ParseError> {
        let b = self.b;
        let text = dialect == Dialect::Text;
        let blanks = |i: usize| if text { self.skip_blanks(i) } else { i };
        let mut i = open + 1;
        let mut span = LabelSpan {
            start: open + 1,
            end: open + 1,
            escaped: false,
            count: 0,
        };
        names.clear();
        loop {
            i = blanks(i);
            let name = match self.peek(i) {
                Some(b'}') => {
                    span.end = i;
                    break;
                }
                Some(b'"') => {
                    let (end, escaped) = self.scan_quoted(i, text)?;
                    NameSpan {
                        start: i + 1,
                        end: end - 1,
                        escaped,
                        quoted: true,
                    }
                }
                _ => {
                    let end = scan_label_name(b, i);
                    if end == i {
                        return Err(self.unexpected(i, Expected::LabelName));
                    }
                    NameSpan {
                        start: i,
                        end,
                        escaped: false,
                        quoted: false,
                    }
                }
            };
            i = blanks(name.end + usize::from(name.quoted));
            if name.quoted && matches!(self.peek(i), Some(b',' | b'}')) {
                if exemplar {
                    return Err(self.unexpected(i, Expected::Equal));
                }
                if metric_name.is_some() {
                    return Err(self.err(name.start - 1, ParseErrorKind::MetricNameAlreadySet));
                }
                check_name(self, &name, "metric name")?;
                span.escaped |= name.escaped;
                *metric_name = Some(name);
                if self.peek(i) == Some(b',') {
                    i += 1;
                }
                continue;
            }
            if self.peek(i) != Some(b'=') {
                return Err(self.unexpected(i, Expected::Equal));
            }
            i = blanks(i + 1);
            if self.peek(i) != Some(b'"') {
                return Err(self.unexpected(i, Expected::LabelValue));
            }
            let (end, escaped) = self.scan_quoted(i, text)?;
            // A body that is UTF-8 as a whole has UTF-8 between any two ASCII quotes.
            if self.text.is_none() {
                self.str(i + 1, end - 1, "label value")?;
            }
            if name.quoted {
                check_name(self, &name, "label name")?;
            }
            span.escaped |= escaped | name.escaped;
            span.count += 1;
            names.push(name);
            i = blanks(end);
            match self.peek(i) {
                Some(b',') => i += 1,
                Some(b'}') => {}
                // 0.0.4 lets the next label follow without a comma (Prometheus' lexer does).
                _ if text => {}
                _ => return Err(self.unexpected(i, Expected::CommaOrBraceClose)),
            }
        }
        self.check_duplicates(names, !exemplar)?;
        Ok((span, i + 1))
    }

    /// Label names must be unique; `__name__` also clashes with the metric name when the caller
    /// set one outside the braces (`foo{__name__="bar"}`).
    fn check_duplicates(
        &self,
        names: &mut [NameSpan],
        reject_name_label: bool,
    ) -> Result<(), ParseError> {
        let b = self.b;
        let dup = |n: &NameSpan| {
            self.err(
                n.start,
                ParseErrorKind::DuplicateLabel(
                    String::from_utf8_lossy(&b[n.start..n.end]).into_owned(),
                ),
            )
        };
        if names.iter().any(|n| n.escaped) {
            let mut seen: Vec<Cow<'_, str>> = Vec::with_capacity(names.len());
            for n in names.iter() {
                let s = unescape(self.str(n.start, n.end, "label name")?, Escapes::LabelValue);
                if seen.contains(&s) || (reject_name_label && s == "__name__") {
                    return Err(dup(n));
                }
                seen.push(s);
            }
            return Ok(());
        }
        for n in names.iter().filter(|_| reject_name_label) {
            if &b[n.start..n.end] == b"__name__" {
                return Err(dup(n));
            }
        }
        if names.len() <= 12 {
            for (k, n) in names.iter().enumerate() {
                let nb = &b[n.start..n.end];
                if names[..k].iter().any(|m| &b[m.start..m.end] == nb) {
                    return Err(dup(n));
                }
            }
            return Ok(());
        }
        names.sort_unstable_by(|x, y| b[x.start..x.end].cmp(&b[y.start..y.end]));
        for w in names.windows(2) {
            if b[w[0].start..w[0].end] == b[w[1].start..w[1].end] {
                return Err(dup(&w[1]));
            }
        }
        Ok(())
    }

    /// The metric name at `i`: unquoted, or quoted (`"my.metric"`, metadata lines only).
    pub fn metadata_name(&self, i: usize, what: &'static str) -> Result<NameSpan, ParseError> {
        if self.peek(i) == Some(b'"') {
            let (end, escaped) = self.scan_quoted(i, true)?;
            let name = NameSpan {
                start: i + 1,
                end: end - 1,
                escaped,
                quoted: true,
            };
            check_name(self, &name, "metric name")?;
            return Ok(name);
        }
        let end = scan_metric_name(self.b, i);
        if end == i {
            return Err(self.unexpected(i, Expected::MetricNameAfter(what)));
        }
        Ok(NameSpan {
            start: i,
            end,
            escaped: false,
            quoted: false,
        })
    }

    pub fn name(&self, n: &NameSpan) -> Result<Cow<'a, str>, ParseError> {
        let s = self.str(n.start, n.end, "metric name")?;
        Ok(if n.escaped {
            unescape(s, Escapes::LabelValue)
        } else {
            Cow::Borrowed(s)
        })
    }
}

fn check_name(c: &Cursor<'_>, n: &NameSpan, what: &'static str) -> Result<(), ParseError> {
    if n.start == n.end {
        return Err(c.err(n.start, ParseErrorKind::EmptyName(what)));
    }
    c.str(n.start, n.end, what).map(|_| ())
}

/// A name's byte span (without quotes) in the body.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NameSpan {
    pub start: usize,
    pub end: usize,
    pub escaped: bool,
    pub quoted: bool,
}

/// The inside of a validated label set.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LabelSpan {
    pub start: usize,
    pub end: usize,
    pub escaped: bool,
    pub count: u16,
}

/// Which escape sequences a string resolves. Anything else after a backslash stays as it is,
/// backslash included (Prometheus' replacers do the same).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Escapes {
    /// `\\`, `\"`, `\n`: label values, quoted names, OpenMetrics HELP.
    LabelValue,
    /// `\\`, `\n`: 0.0.4 HELP text.
    Help,
}

pub(crate) fn unescape(s: &str, escapes: Escapes) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(k) = rest.find('\\') {
        out.push_str(&rest[..k]);
        let after = &rest[k + 1..];
        match after.as_bytes().first() {
            Some(b'\\') => out.push('\\'),
            Some(b'n') => out.push('\n'),
            Some(b'"') if escapes == Escapes::LabelValue => out.push('"'),
            _ => {
                out.push('\\');
                rest = after;
                continue;
            }
        }
        rest = &after[1..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Parses a sample value the way Prometheus does (Go's `strconv.ParseFloat` minus the hex and
/// underscore forms): decimal and exponent forms, `NaN` (unsigned), `Inf`/`Infinity` with an
/// optional sign, all case-insensitive. A finite literal too large for f64 is an error, not
/// infinity. NaN comes back with Prometheus' canonical bits.
pub fn parse_float(s: &[u8]) -> Option<f64> {
    if let Some(v) = parse_simple_decimal(s) {
        return Some(v);
    }
    let first = *s.first()?;
    if !(first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.' | b'i' | b'I' | b'n' | b'N'))
    {
        return None;
    }
    let s = std::str::from_utf8(s).ok()?;
    let v: f64 = s.parse().ok()?;
    let unsigned = s.trim_start_matches(['+', '-']);
    let spelled_special = unsigned
        .as_bytes()
        .first()
        .is_some_and(|c| matches!(c, b'i' | b'I' | b'n' | b'N'));
    if v.is_nan() {
        if unsigned.len() != s.len() {
            return None;
        }
        return Some(f64::from_bits(NORMAL_NAN_BITS));
    }
    if v.is_infinite() && !spelled_special {
        return None;
    }
    Some(v)
}

/// Exact powers of ten an f64 holds (10^22 is the largest).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The forms exporters write almost always (`12`, `-3.25`, `1.5e-07`), when the result is
/// exact without big-number arithmetic: at most 15 significant digits (so the mantissa is an
/// exact f64) scaled by an exact power of ten, one correctly rounded multiply or divide
/// (Clinger's fast path). `None` sends everything else to the general parser.
fn parse_simple_decimal(s: &[u8]) -> Option<f64> {
    let (negative, digits) = match s.first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let mut mantissa: u64 = 0;
    let mut significant = 0u32;
    let mut exp10: i32 = 0;
    let mut i = 0;
    let mut any_digit = false;
    while let Some(&c) = digits.get(i) {
        if !c.is_ascii_digit() {
            break;
        }
        any_digit = true;
        if mantissa != 0 || c != b'0' {
            significant += 1;
        }
        mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
        i += 1;
    }
    if digits.get(i) == Some(&b'.') {
        i += 1;
        while let Some(&c) = digits.get(i) {
            if !c.is_ascii_digit() {
                break;
            }
            any_digit = true;
            if mantissa != 0 || c != b'0' {
                significant += 1;
            }
            mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
            exp10 -= 1;
            i += 1;
        }
    }
    if !any_digit || significant > 15 {
        return None;
    }
    if matches!(digits.get(i), Some(b'e' | b'E')) {
        i += 1;
        let negative_exp = match digits.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        let mut e: i32 = 0;
        while let Some(&c) = digits.get(i) {
            if !c.is_ascii_digit() || i - start >= 4 {
                break;
            }
            e = e * 10 + i32::from(c - b'0');
            i += 1;
        }
        if i == start {
            return None;
        }
        exp10 += if negative_exp { -e } else { e };
    }
    if i != digits.len() {
        return None;
    }
    let m = mantissa as f64;
    let v = if exp10 == 0 || mantissa == 0 {
        m
    } else if (1..=22).contains(&exp10) {
        m * POW10[exp10 as usize]
    } else if (-22..0).contains(&exp10) {
        m / POW10[exp10.unsigned_abs() as usize]
    } else {
        return None;
    };
    Some(if negative { -v } else { v })
}

/// A float in OpenMetrics' canonical text form, as Prometheus renders `le` and `quantile`
/// values: Go's shortest `%g` plus `.0` when that looks like an integer (`1` -> `1.0`,
/// `1e+06` stays). Lives on the stack: comparing against it costs no allocation.
pub(crate) struct CanonicalFloat {
    buf: [u8; 40],
    len: usize,
}

impl CanonicalFloat {
    pub fn new(f: f64) -> Self {
        let mut c = Self {
            buf: [0; 40],
            len: 0,
        };
        if f.is_nan() {
            c.push_str("NaN");
        } else if f == f64::INFINITY {
            c.push_str("+Inf");
        } else if f == f64::NEG_INFINITY {
            c.push_str("-Inf");
        } else if f == 0.0 {
            c.push_str("0.0");
        } else {
            c.go_g(f);
            if !c.as_str().contains(['e', '.']) {
                c.push_str(".0");
            }
        }
        c
    }

    fn push_str(&mut self, s: &str) {
        let end = (self.len + s.len()).min(self.buf.len());
        self.buf[self.len..end].copy_from_slice(&s.as_bytes()[..end - self.len]);
        self.len = end;
    }

    /// Go's `strconv.FormatFloat(f, 'g', -1, 64)`: shortest round-trip digits, exponent form
    /// when the decimal exponent is below -4 or at least 6 (Go's rule for shortest `%g`).
    fn go_g(&mut self, f: f64) {
        let mut sci = Scratch::default();
        // Rust's `{:e}` yields the same shortest digits: `d[.ddd]e[-]x`.
        let _ = write!(sci, "{:e}", f.abs());
        let s = sci.as_str();
        let (mantissa, exp) = s.split_once('e').unwrap_or((s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let mut digits = Scratch::default();
        for ch in mantissa.chars().filter(char::is_ascii_digit) {
            let _ = digits.write_char(ch);
        }
        let digits = digits.as_str();
        if f < 0.0 {
            self.push_str("-");
        }
        if !(-4..6).contains(&exp) {
            self.push_str(&digits[..1]);
            if digits.len() > 1 {
                self.push_str(".");
                self.push_str(&digits[1..]);
            }
            self.push_str(if exp < 0 { "e-" } else { "e+" });
            let mut e = Scratch::default();
            let _ = write!(e, "{:02}", exp.unsigned_abs());
            self.push_str(e.as_str());
            return;
        }
        // Fixed notation: the decimal point sits after `exp + 1` digits.
        let point = exp + 1;
        if point <= 0 {
            self.push_str("0.");
            for _ in 0..(-point) {
                self.push_str("0");
            }
            self.push_str(digits);
        } else {
            let point = point as usize;
            if digits.len() <= point {
                self.push_str(digits);
                for _ in digits.len()..point {
                    self.push_str("0");
                }
            } else {
                self.push_str(&digits[..point]);
                self.push_str(".");
                self.push_str(&digits[point..]);
            }
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

#[derive(Default)]
struct Scratch {
    buf: [u8; 32],
    len: usize,
}

impl Scratch {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl std::fmt::Write for Scratch {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// `le`/`quantile` values in canonical form; borrowed when they already are (the common case).
pub(crate) fn canonical_float_label(v: Cow<'_, str>) -> Cow<'_, str> {
    let Some(f) = parse_float(v.as_bytes()) else {
        return v;
    };
    let c = CanonicalFloat::new(f);
    if c.as_str() == v.as_ref() {
        v
    } else {
        Cow::Owned(c.as_str().to_owned())
    }
}

#[cfg(test)]
mod fast_float_tests {
    use super::*;

    fn general(s: &str) -> Option<f64> {
        s.parse::<f64>().ok()
    }

    #[test]
    fn the_fast_path_agrees_bit_for_bit_with_the_general_parser() {
        let fixed = [
            "0",
            "-0",
            "+0",
            "1",
            "-1",
            "12345",
            "0.5",
            "-3.25",
            "1.",
            ".5",
            "1e3",
            "1E-7",
            "1.5e-07",
            "123456789012345",
            "0.000000000000000000001",
            "9007199254740993",
            "1e22",
            "1e23",
            "1e-22",
            "1e-23",
            "4.35",
            "1234.5678e+2",
            "00000000000000000000012",
        ];
        for s in fixed {
            if let Some(v) = parse_simple_decimal(s.as_bytes()) {
                assert_eq!(Some(v.to_bits()), general(s).map(f64::to_bits), "{s}");
            }
        }
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..200_000 {
            let magnitude = 10u64.pow(rng.u32(0..10));
            let int = rng.u64(..magnitude);
            let frac_digits = rng.usize(0..8);
            let frac: String = (0..frac_digits)
                .map(|_| char::from(b'0' + rng.u8(0..10)))
                .collect();
            let mut s = format!("{}{int}", if rng.bool() { "-" } else { "" });
            if frac_digits > 0 {
                s.push('.');
                s.push_str(&frac);
            }
            if rng.u8(0..4) == 0 {
                s.push_str(&format!("e{}", rng.i32(-30..30)));
            }
            let fast = parse_simple_decimal(s.as_bytes());
            if let Some(v) = fast {
                assert_eq!(Some(v.to_bits()), general(&s).map(f64::to_bits), "{s}");
            }
            assert_eq!(
                parse_float(s.as_bytes()).map(f64::to_bits),
                general(&s).map(f64::to_bits),
                "{s}"
            );
        }
    }

    #[test]
    fn what_the_fast_path_does_not_take_goes_to_the_general_parser() {
        for s in [
            "", "-", ".", "1e", "1e+", "NaN", "+Inf", "1_0", "0x10", "1.5.5", "1e99999",
        ] {
            assert_eq!(parse_simple_decimal(s.as_bytes()), None, "{s}");
        }
        assert_eq!(parse_float(b"NaN").map(f64::to_bits), Some(NORMAL_NAN_BITS));
        assert_eq!(parse_float(b"1e999"), None);
    }
}
