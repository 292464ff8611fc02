//! Prometheus relabel regexes: Go RE2 syntax, compiled with the `regex` crate.
//!
//! Prometheus compiles every relabel regex as `^(?s:<regex>)$` with Go's `regexp` package. The
//! two dialects agree on most syntax but not all of it, so the pattern is rewritten token by
//! token before it reaches the `regex` crate:
//!
//! * `\d \w \s \b` (and their negations) are ASCII in Go and Unicode in Rust; they become
//!   explicit ASCII classes. Go's `\s` is `[\t\n\f\r ]` (no `\v`), unlike Rust's ASCII `\s`.
//! * Go-only syntax is translated: `\Q…\E` quoting, octal escapes, capture names starting with
//!   a digit or used twice (named groups become plain groups; names are resolved here), `(?)`.
//! * Literal characters are re-escaped, so characters that are literal in Go but special in
//!   Rust (`[`, `&&`, `--`, `~~` inside classes, a `{` that does not start a repetition) stay
//!   literal.
//! * Go errors Rust would not raise are raised here: stacked repetitions (`a**`), repeat
//!   counts above 1000, unknown escapes, Rust-only flags (`x`, `u`, `R`).
//!
//! Known remaining differences: Rust's compiled-size limit may reject huge patterns that Go
//! compiles, and Unicode tables differ by version.

use std::fmt::Write as _;

/// A relabel regex compiled the way Prometheus compiles it.
#[derive(Debug)]
pub(crate) struct GoRegex {
    pub(crate) regex: regex::Regex,
    /// Number of capture groups in the user's pattern (group 0, the whole match, excluded).
    pub(crate) group_count: usize,
    /// Go capture-group names and their group index, in pattern order.
    pub(crate) names: Vec<(String, usize)>,
}

/// Why a pattern was rejected; the text mirrors Go's `regexp/syntax` messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("error parsing regexp: {0}")]
pub struct PatternError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, PatternError> {
    Err(PatternError(msg.into()))
}

/// Compiles `pattern` as Prometheus does: fully anchored, `.` matching newlines.
pub(crate) fn compile(pattern: &str) -> Result<GoRegex, PatternError> {
    let translated = translate(pattern)?;
    let regex = regex::Regex::new(&translated.pattern).map_err(|e| match e {
        regex::Error::Syntax(s) => PatternError(s),
        regex::Error::CompiledTooBig(limit) => PatternError(format!(
            "expression too large (compiled form exceeds {limit} bytes)"
        )),
        other => PatternError(other.to_string()),
    })?;
    Ok(GoRegex {
        regex,
        group_count: translated.group_count,
        names: translated.names,
    })
}

#[derive(Debug)]
pub(crate) struct Translated {
    pub(crate) pattern: String,
    pub(crate) group_count: usize,
    pub(crate) names: Vec<(String, usize)>,
}

/// Rewrites a Go pattern into an equivalent anchored pattern for the `regex` crate.
pub(crate) fn translate(go: &str) -> Result<Translated, PatternError> {
    let mut t = Translator {
        src: go.chars().collect(),
        pos: 0,
        out: String::with_capacity(go.len() + 16),
        group_count: 0,
        names: Vec::new(),
        last_repeat: None,
    };
    t.out.push_str("^(?s:");
    t.run()?;
    t.out.push_str(")$");
    Ok(Translated {
        pattern: t.out,
        group_count: t.group_count,
        names: t.names,
    })
}

struct Translator {
    src: Vec<char>,
    pos: usize,
    out: String,
    group_count: usize,
    names: Vec<(String, usize)>,
    /// The repetition operator just emitted, if the previous token was one.
    last_repeat: Option<String>,
}

const MAX_REPEAT: u32 = 1000;

/// A parsed `{n}`, `{n,}` or `{n,m}`.
struct RepeatBraces {
    original: String,
    canonical: String,
    min: u32,
    max: Option<u32>,
}

impl Translator {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.src.get(self.pos + ahead).copied()
    }

    fn rest_starts_with(&self, s: &str) -> bool {
        let mut expected = s.chars();
        let mut actual = self.src[self.pos.min(self.src.len())..].iter();
        expected.all(|c| actual.next() == Some(&c))
    }

    fn run(&mut self) -> Result<(), PatternError> {
        while let Some(c) = self.peek(0) {
            let mut repeat = None;
            match c {
                '(' => self.group_open()?,
                ')' | '|' | '.' | '^' | '$' => {
                    self.out.push(c);
                    self.pos += 1;
                }
                '*' | '+' | '?' => {
                    self.pos += 1;
                    repeat = Some(self.repeat_op(&c.to_string(), &c.to_string())?);
                }
                '{' => match self.parse_repeat_braces() {
                    Some(braces) => {
                        let (min, max) = (braces.min, braces.max);
                        if min > MAX_REPEAT || max.is_some_and(|m| m > MAX_REPEAT || m < min) {
                            return err(format!("invalid repeat count: `{}`", braces.original));
                        }
                        repeat = Some(self.repeat_op(&braces.original, &braces.canonical)?);
                    }
                    None => {
                        push_literal(&mut self.out, '{');
                        self.pos += 1;
                    }
                },
                '[' => self.class()?,
                '\\' => self.escape_outside_class()?,
                other => {
                    push_literal(&mut self.out, other);
                    self.pos += 1;
                }
            }
            self.last_repeat = repeat;
        }
        Ok(())
    }

    /// Emits a repetition operator (already consumed), plus a following non-greedy `?`.
    /// Returns the operator as written, for error messages.
    fn repeat_op(&mut self, original: &str, canonical: &str) -> Result<String, PatternError> {
        let mut written = original.to_string();
        let mut emitted = canonical.to_string();
        if self.peek(0) == Some('?') {
            self.pos += 1;
            written.push('?');
            emitted.push('?');
        }
        if let Some(previous) = &self.last_repeat {
            // Go (Perl mode) refuses stacked operators such as `a**` or `a+{2}`.
            return err(format!(
                "invalid nested repetition operator: `{previous}{written}`"
            ));
        }
        self.out.push_str(&emitted);
        Ok(written)
    }

    /// Parses `{n}`, `{n,}` or `{n,m}` at the cursor (Go rules: no leading zeros). Returns
    /// `None`, without consuming anything, when the brace is a literal.
    fn parse_repeat_braces(&mut self) -> Option<RepeatBraces> {
        let start = self.pos;
        let mut i = self.pos + 1;
        let min = parse_go_int(&self.src, &mut i)?;
        let max = if self.src.get(i) == Some(&',') {
            i += 1;
            if self.src.get(i) == Some(&'}') {
                None
            } else {
                Some(parse_go_int(&self.src, &mut i)?)
            }
        } else {
            Some(min)
        };
        if self.src.get(i) != Some(&'}') {
            return None;
        }
        i += 1;
        self.pos = i;
        let original: String = self.src[start..i].iter().collect();
        let canonical = match max {
            Some(m) if m == min && !original.contains(',') => format!("{{{min}}}"),
            Some(m) => format!("{{{min},{m}}}"),
            None => format!("{{{min},}}"),
        };
        Some(RepeatBraces {
            original,
            canonical,
            min,
            max,
        })
    }

    fn group_open(&mut self) -> Result<(), PatternError> {
        if self.peek(1) != Some('?') {
            self.pos += 1;
            self.group_count += 1;
            self.out.push('(');
            return Ok(());
        }
        // Named capture: (?P<name>re) or (?<name>re).
        let name_start = if self.rest_starts_with("(?P<") {
            Some(self.pos + 4)
        } else if self.rest_starts_with("(?<") {
            Some(self.pos + 3)
        } else {
            None
        };
        if let Some(start) = name_start {
            let Some(end) = (start..self.src.len()).find(|&i| self.src[i] == '>') else {
                let rest: String = self.src[self.pos..].iter().collect();
                return err(format!("invalid named capture: `{rest}`"));
            };
            let name: String = self.src[start..end].iter().collect();
            let shown: String = self.src[self.pos..=end].iter().collect();
            if name.is_empty() || !name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric()) {
                return err(format!("invalid named capture: `{shown}`"));
            }
            // Go accepts duplicate names; `$name` then takes the first such group that matched.
            self.group_count += 1;
            self.names.push((name, self.group_count));
            self.pos = end + 1;
            self.out.push('(');
            return Ok(());
        }
        if self.peek(2) == Some('P') {
            let rest: String = self.src[self.pos..].iter().collect();
            return err(format!("invalid or unsupported Perl syntax: `{rest}`"));
        }
        // Flags: (?flags) or (?flags:re), flags from i, m, s, U with at most one `-`.
        let start = self.pos;
        let mut i = self.pos + 2;
        let mut negated = false;
        let mut saw_flag = false;
        let mut flags = String::new();
        loop {
            let Some(c) = self.src.get(i).copied() else {
                return err(format!(
                    "missing closing ): `{}`",
                    self.src[start..].iter().collect::<String>()
                ));
            };
            match c {
                'i' | 'm' | 's' | 'U' => {
                    saw_flag = true;
                    flags.push(c);
                }
                '-' if !negated => {
                    negated = true;
                    saw_flag = false;
                    flags.push(c);
                }
                ':' | ')' => {
                    if negated && !saw_flag {
                        let shown: String = self.src[start..=i].iter().collect();
                        return err(format!("invalid or unsupported Perl syntax: `{shown}`"));
                    }
                    self.pos = i + 1;
                    if c == ':' {
                        let _ = write!(self.out, "(?{flags}:");
                    } else if !flags.is_empty() {
                        let _ = write!(self.out, "(?{flags})");
                    }
                    return Ok(());
                }
                _ => {
                    let shown: String = self.src[start..=i].iter().collect();
                    return err(format!("invalid or unsupported Perl syntax: `{shown}`"));
                }
            }
            i += 1;
        }
    }

    fn escape_outside_class(&mut self) -> Result<(), PatternError> {
        let Some(c) = self.peek(1) else {
            return err("trailing backslash at end of expression: ``");
        };
        match c {
            'Q' => {
                // \Q…\E: everything up to \E (or the end) is literal.
                self.pos += 2;
                while self.pos < self.src.len() {
                    if self.rest_starts_with("\\E") {
                        self.pos += 2;
                        return Ok(());
                    }
                    push_literal(&mut self.out, self.src[self.pos]);
                    self.pos += 1;
                }
                // Without `\E` Go quotes the rest of `^(?s:…)$` too, so the group never closes.
                err(format!(
                    "missing closing ): `^(?s:{})$`",
                    self.src.iter().collect::<String>()
                ))
            }
            'A' | 'z' => {
                self.out.push('\\');
                self.out.push(c);
                self.pos += 2;
                Ok(())
            }
            'b' => {
                self.out.push_str(r"(?-u:\b)");
                self.pos += 2;
                Ok(())
            }
            'B' => {
                self.out.push_str(r"(?-u:\B)");
                self.pos += 2;
                Ok(())
            }
            'p' | 'P' => {
                let class = self.unicode_class()?;
                self.out.push_str(&class);
                Ok(())
            }
            'd' | 'D' | 's' | 'S' | 'w' | 'W' => {
                self.out.push_str(perl_class(c, false));
                self.pos += 2;
                Ok(())
            }
            _ => {
                let ch = self.escape_char()?;
                push_literal(&mut self.out, ch);
                Ok(())
            }
        }
    }

    /// Parses `\pN`, `\p{Name}`, `\p{^Name}` (and `\P…`) at the cursor into Rust syntax.
    fn unicode_class(&mut self) -> Result<String, PatternError> {
        let start = self.pos;
        let mut negate = self.peek(1) == Some('P');
        let Some(first) = self.peek(2) else {
            return err("invalid character class range: `\\p`");
        };
        let name: String = if first == '{' {
            let Some(end) = (self.pos + 3..self.src.len()).find(|&i| self.src[i] == '}') else {
                let rest: String = self.src[start..].iter().collect();
                return err(format!("invalid character class range: `{rest}`"));
            };
            let name: String = self.src[self.pos + 3..end].iter().collect();
            self.pos = end + 1;
            name
        } else {
            self.pos += 3;
            first.to_string()
        };
        let name = match name.strip_prefix('^') {
            Some(n) => {
                negate = !negate;
                n.to_string()
            }
            None => name,
        };
        // Go matches table names exactly (Rust would also take `greek` or `Letter`).
        if name != "Any"
            && !UNICODE_CATEGORIES.contains(&name.as_str())
            && !UNICODE_SCRIPTS.contains(&name.as_str())
        {
            let shown: String = self.src[start..self.pos].iter().collect();
            return err(format!("invalid character class range: `{shown}`"));
        }
        Ok(format!("\\{}{{{name}}}", if negate { 'P' } else { 'p' }))
    }

    /// Parses a single-character escape (`\n`, `\x41`, `\101`, `\.`, …) at the cursor.
    fn escape_char(&mut self) -> Result<char, PatternError> {
        let start = self.pos;
        let Some(c) = self.peek(1) else {
            return err("trailing backslash at end of expression: ``");
        };
        self.pos += 2;
        let shown = |t: &Self| -> String { t.src[start..t.pos.min(t.src.len())].iter().collect() };
        match c {
            '1'..='7' if !matches!(self.peek(0), Some('0'..='7')) => {
                // A lone non-zero digit would be a backreference, which RE2 does not support.
                err(format!("invalid escape sequence: `{}`", shown(self)))
            }
            '0'..='7' => {
                let mut v = c as u32 - '0' as u32;
                for _ in 0..2 {
                    match self.peek(0) {
                        Some(d @ '0'..='7') => {
                            v = v * 8 + (d as u32 - '0' as u32);
                            self.pos += 1;
                        }
                        _ => break,
                    }
                }
                char::from_u32(v).map_or_else(
                    || err(format!("invalid escape sequence: `{}`", shown(self))),
                    Ok,
                )
            }
            'x' => {
                if self.peek(0) == Some('{') {
                    let Some(end) = (self.pos + 1..self.src.len()).find(|&i| self.src[i] == '}')
                    else {
                        return err(format!("invalid escape sequence: `{}`", shown(self)));
                    };
                    let hex: String = self.src[self.pos + 1..end].iter().collect();
                    self.pos = end + 1;
                    if hex.is_empty() || !hex.chars().all(|h| h.is_ascii_hexdigit()) {
                        return err(format!("invalid escape sequence: `{}`", shown(self)));
                    }
                    u32::from_str_radix(&hex, 16)
                        .ok()
                        .and_then(char::from_u32)
                        .map_or_else(
                            || err(format!("invalid escape sequence: `{}`", shown(self))),
                            Ok,
                        )
                } else {
                    let (Some(h1), Some(h2)) = (self.peek(0), self.peek(1)) else {
                        self.pos = self.src.len();
                        return err(format!("invalid escape sequence: `{}`", shown(self)));
                    };
                    self.pos += 2;
                    match (h1.to_digit(16), h2.to_digit(16)) {
                        (Some(a), Some(b)) => char::from_u32(a * 16 + b).map_or_else(
                            || err(format!("invalid escape sequence: `{}`", shown(self))),
                            Ok,
                        ),
                        _ => err(format!("invalid escape sequence: `{}`", shown(self))),
                    }
                }
            }
            'a' => Ok('\x07'),
            'f' => Ok('\x0c'),
            'n' => Ok('\n'),
            'r' => Ok('\r'),
            't' => Ok('\t'),
            'v' => Ok('\x0b'),
            c if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok(c),
            _ => err(format!("invalid escape sequence: `{}`", shown(self))),
        }
    }

    /// Translates a bracket class; the cursor is on `[`.
    fn class(&mut self) -> Result<(), PatternError> {
        let start = self.pos;
        self.pos += 1;
        self.out.push('[');
        if self.peek(0) == Some('^') {
            self.out.push('^');
            self.pos += 1;
        }
        let mut first = true;
        loop {
            let Some(c) = self.peek(0) else {
                let shown: String = self.src[start..].iter().collect();
                return err(format!("missing closing ]: `{shown}`"));
            };
            if c == ']' && !first {
                self.pos += 1;
                break;
            }
            first = false;
            if c == '['
                && self.peek(1) == Some(':')
                && let Some(end) = (self.pos + 2..self.src.len().saturating_sub(1))
                    .find(|&i| self.src[i] == ':' && self.src[i + 1] == ']')
            {
                let name: String = self.src[self.pos + 2..end].iter().collect();
                let bare = name.strip_prefix('^').unwrap_or(&name);
                if !POSIX_CLASSES.contains(&bare) {
                    let shown: String = self.src[self.pos..end + 2].iter().collect();
                    return err(format!("invalid character class range: `{shown}`"));
                }
                let _ = write!(self.out, "[:{name}:]");
                self.pos = end + 2;
                continue;
            }
            if c == '\\' {
                match self.peek(1) {
                    Some('p' | 'P') => {
                        let class = self.unicode_class()?;
                        self.out.push_str(&class);
                        continue;
                    }
                    Some(p @ ('d' | 'D' | 's' | 'S' | 'w' | 'W')) => {
                        self.out.push_str(perl_class(p, true));
                        self.pos += 2;
                        continue;
                    }
                    _ => {}
                }
            }
            let range_start = self.pos;
            let lo = self.class_char()?;
            let mut hi = lo;
            if self.peek(0) == Some('-') && self.peek(1).is_some_and(|n| n != ']') {
                self.pos += 1;
                hi = self.class_char()?;
                if hi < lo {
                    let shown: String = self.src[range_start..self.pos].iter().collect();
                    return err(format!("invalid character class range: `{shown}`"));
                }
            }
            push_literal(&mut self.out, lo);
            if hi != lo {
                self.out.push('-');
                push_literal(&mut self.out, hi);
            }
        }
        self.out.push(']');
        Ok(())
    }

    fn class_char(&mut self) -> Result<char, PatternError> {
        match self.peek(0) {
            Some('\\') => self.escape_char(),
            Some(c) => {
                self.pos += 1;
                Ok(c)
            }
            None => err("missing closing ]"),
        }
    }
}

/// Go's `unicode.Categories` names.
const UNICODE_CATEGORIES: &[&str] = &[
    "C", "Cc", "Cf", "Co", "Cs", "L", "Ll", "Lm", "Lo", "Lt", "Lu", "M", "Mc", "Me", "Mn", "N",
    "Nd", "Nl", "No", "P", "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "S", "Sc", "Sk", "Sm", "So",
    "Z", "Zl", "Zp", "Zs",
];

/// Go's `unicode.Scripts` names (Unicode 15, as in the Go releases Prometheus 3 is built with).
const UNICODE_SCRIPTS: &[&str] = &[
    "Adlam",
    "Ahom",
    "Anatolian_Hieroglyphs",
    "Arabic",
    "Armenian",
    "Avestan",
    "Balinese",
    "Bamum",
    "Bassa_Vah",
    "Batak",
    "Bengali",
    "Bhaiksuki",
    "Bopomofo",
    "Brahmi",
    "Braille",
    "Buginese",
    "Buhid",
    "Canadian_Aboriginal",
    "Carian",
    "Caucasian_Albanian",
    "Chakma",
    "Cham",
    "Cherokee",
    "Chorasmian",
    "Common",
    "Coptic",
    "Cuneiform",
    "Cypriot",
    "Cypro_Minoan",
    "Cyrillic",
    "Deseret",
    "Devanagari",
    "Dives_Akuru",
    "Dogra",
    "Duployan",
    "Egyptian_Hieroglyphs",
    "Elbasan",
    "Elymaic",
    "Ethiopic",
    "Georgian",
    "Glagolitic",
    "Gothic",
    "Grantha",
    "Greek",
    "Gujarati",
    "Gunjala_Gondi",
    "Gurmukhi",
    "Han",
    "Hangul",
    "Hanifi_Rohingya",
    "Hanunoo",
    "Hatran",
    "Hebrew",
    "Hiragana",
    "Imperial_Aramaic",
    "Inherited",
    "Inscriptional_Pahlavi",
    "Inscriptional_Parthian",
    "Javanese",
    "Kaithi",
    "Kannada",
    "Katakana",
    "Kawi",
    "Kayah_Li",
    "Kharoshthi",
    "Khitan_Small_Script",
    "Khmer",
    "Khojki",
    "Khudawadi",
    "Lao",
    "Latin",
    "Lepcha",
    "Limbu",
    "Linear_A",
    "Linear_B",
    "Lisu",
    "Lycian",
    "Lydian",
    "Mahajani",
    "Makasar",
    "Malayalam",
    "Mandaic",
    "Manichaean",
    "Marchen",
    "Masaram_Gondi",
    "Medefaidrin",
    "Meetei_Mayek",
    "Mende_Kikakui",
    "Meroitic_Cursive",
    "Meroitic_Hieroglyphs",
    "Miao",
    "Modi",
    "Mongolian",
    "Mro",
    "Multani",
    "Myanmar",
    "Nabataean",
    "Nag_Mundari",
    "Nandinagari",
    "New_Tai_Lue",
    "Newa",
    "Nko",
    "Nushu",
    "Nyiakeng_Puachue_Hmong",
    "Ogham",
    "Ol_Chiki",
    "Old_Hungarian",
    "Old_Italic",
    "Old_North_Arabian",
    "Old_Permic",
    "Old_Persian",
    "Old_Sogdian",
    "Old_South_Arabian",
    "Old_Turkic",
    "Old_Uyghur",
    "Oriya",
    "Osage",
    "Osmanya",
    "Pahawh_Hmong",
    "Palmyrene",
    "Pau_Cin_Hau",
    "Phags_Pa",
    "Phoenician",
    "Psalter_Pahlavi",
    "Rejang",
    "Runic",
    "Samaritan",
    "Saurashtra",
    "Sharada",
    "Shavian",
    "Siddham",
    "SignWriting",
    "Sinhala",
    "Sogdian",
    "Sora_Sompeng",
    "Soyombo",
    "Sundanese",
    "Syloti_Nagri",
    "Syriac",
    "Tagalog",
    "Tagbanwa",
    "Tai_Le",
    "Tai_Tham",
    "Tai_Viet",
    "Takri",
    "Tamil",
    "Tangsa",
    "Tangut",
    "Telugu",
    "Thaana",
    "Thai",
    "Tibetan",
    "Tifinagh",
    "Tirhuta",
    "Toto",
    "Ugaritic",
    "Vai",
    "Vithkuqi",
    "Wancho",
    "Warang_Citi",
    "Yezidi",
    "Yi",
    "Zanabazar_Square",
];

const POSIX_CLASSES: &[&str] = &[
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

/// Go's ASCII Perl classes. Inside a bracket class the negated forms are nested classes.
fn perl_class(c: char, in_class: bool) -> &'static str {
    match (c, in_class) {
        ('d', false) => "[0-9]",
        ('d', true) => "0-9",
        ('D', _) => "[^0-9]",
        ('s', false) => r"[\t\n\x0C\r ]",
        ('s', true) => r"\t\n\x0C\r ",
        ('S', _) => r"[^\t\n\x0C\r ]",
        ('w', false) => "[0-9A-Za-z_]",
        ('w', true) => "0-9A-Za-z_",
        _ => "[^0-9A-Za-z_]",
    }
}

/// Go's `parseInt` for repeat counts: digits without a leading zero.
fn parse_go_int(src: &[char], i: &mut usize) -> Option<u32> {
    let start = *i;
    while src.get(*i).is_some_and(char::is_ascii_digit) {
        *i += 1;
    }
    if *i == start {
        return None;
    }
    if *i - start >= 2 && src[start] == '0' {
        return None;
    }
    // Counts above 1000 are rejected later; saturate so that huge ones still report an error.
    let digits: String = src[start..*i].iter().collect();
    Some(digits.parse::<u32>().unwrap_or(u32::MAX))
}

/// Appends `c` so that the `regex` crate reads it as that literal character.
fn push_literal(out: &mut String, c: char) {
    if r"\.+*?()|[]{}^$#&-~".contains(c) {
        out.push('\\');
        out.push(c);
    } else if c.is_whitespace() || c.is_control() {
        let _ = write!(out, "\\x{{{:X}}}", c as u32);
    } else {
        out.push(c);
    }
}
