//! `target_label` / `replacement` templates with Go `regexp.Expand` rules.
//!
//! A template is parsed once, at rule compile time, into literal text and group references.
//! Go's rules differ from `regex::Captures::expand` in ways that change results:
//! an unbraced name is the longest run of Unicode letters, Unicode decimal digits and `_`
//! (`$1x` is the group named `1x`, `$1é` the group `1é`); a number with a leading zero (`$01`)
//! is a name; a `$` not followed by a valid name or `{name}` is literal text.

use std::sync::LazyLock;

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    /// Capture group by index (0 = the whole match).
    Group(usize),
    /// A name several groups share: the first of them that took part in the match.
    FirstOf(Box<[usize]>),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    pieces: Vec<Piece>,
    /// The raw text contains `$`: Prometheus keys its replace fast path on this, even when
    /// every `$` turns out to be literal (`$$`).
    pub(crate) has_dollar: bool,
}

/// Longest run of letters (`\p{L}`), decimal digits (`\p{Nd}`) and `_`, as Go's `extract` reads.
static NAME_RUN: LazyLock<Option<regex::Regex>> =
    LazyLock::new(|| regex::Regex::new(r"^[\p{L}\p{Nd}_]+").ok());

impl Template {
    /// Parses `text` against a regex with `group_count` groups and the given group names.
    pub(crate) fn parse(text: &str, group_count: usize, names: &[(String, usize)]) -> Self {
        let mut pieces: Vec<Piece> = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(dollar) = rest.find('$') {
            literal.push_str(&rest[..dollar]);
            rest = &rest[dollar + 1..];
            if let Some(after) = rest.strip_prefix('$') {
                literal.push('$');
                rest = after;
                continue;
            }
            let Some((name, after)) = extract(rest) else {
                // Malformed reference: the `$` is plain text.
                literal.push('$');
                continue;
            };
            rest = after;
            if let Some(piece) = resolve(name, group_count, names) {
                if !literal.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                }
                pieces.push(piece);
            }
            // A group that does not exist expands to nothing.
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Template {
            pieces,
            has_dollar: text.contains('$'),
        }
    }

    /// The expansion when it does not depend on the match (no group references).
    pub(crate) fn as_literal(&self) -> Option<&str> {
        match self.pieces.as_slice() {
            [] => Some(""),
            [Piece::Literal(s)] => Some(s),
            _ => None,
        }
    }

    /// The group index when the template is exactly one group reference (`$1`, `${0}`).
    pub(crate) fn as_single_group(&self) -> Option<usize> {
        match self.pieces.as_slice() {
            [Piece::Group(g)] => Some(*g),
            _ => None,
        }
    }

    /// Appends the expansion to `out`; `group(i)` is the text of group `i`, `None` when it did
    /// not participate in the match (which expands to nothing, as in Go).
    pub(crate) fn expand_into<'h>(
        &self,
        out: &mut String,
        group: impl Fn(usize) -> Option<&'h str>,
    ) {
        for piece in &self.pieces {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                Piece::Group(i) => {
                    if let Some(text) = group(*i) {
                        out.push_str(text);
                    }
                }
                Piece::FirstOf(candidates) => {
                    if let Some(text) = candidates.iter().find_map(|&i| group(i)) {
                        out.push_str(text);
                    }
                }
            }
        }
    }
}

/// Go's `extract`: reads `name` or `{name}` after a `$`. Returns the name and the rest.
fn extract(s: &str) -> Option<(&str, &str)> {
    let (braced, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let len = NAME_RUN.as_ref()?.find(body)?.end();
    let name = &body[..len];
    let mut rest = &body[len..];
    if braced {
        rest = rest.strip_prefix('}')?;
    }
    Some((name, rest))
}

/// Maps a reference to a group index: an all-digit name without a leading zero (and below
/// 1e8, as Go) is a number; anything else is looked up among the named groups.
fn resolve(name: &str, group_count: usize, names: &[(String, usize)]) -> Option<Piece> {
    if let Some(n) = go_group_number(name) {
        return (n <= group_count).then_some(Piece::Group(n));
    }
    let groups: Vec<usize> = names
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, i)| *i)
        .collect();
    match groups.as_slice() {
        [] => None,
        [one] => Some(Piece::Group(*one)),
        _ => Some(Piece::FirstOf(groups.into_boxed_slice())),
    }
}

/// Go's number rule in `extract`: decimal digits, no leading zero, and it stops being a
/// number once the value reached 1e8 before the next digit.
fn go_group_number(name: &str) -> Option<usize> {
    if name.len() > 1 && name.starts_with('0') {
        return None;
    }
    let mut n: usize = 0;
    for b in name.bytes() {
        if !b.is_ascii_digit() || n >= 100_000_000 {
            return None;
        }
        n = n * 10 + usize::from(b - b'0');
    }
    Some(n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    fn expand(template: &str, groups: &[Option<&str>], names: &[(String, usize)]) -> String {
        let t = Template::parse(template, groups.len() - 1, names);
        let mut out = String::new();
        t.expand_into(&mut out, |i| groups.get(i).copied().flatten());
        out
    }

    #[test]
    fn go_expand_rules() {
        let g = [Some("whole"), Some("one"), Some("two")];
        assert_eq!(expand("$1", &g, &[]), "one");
        assert_eq!(expand("${1}x", &g, &[]), "onex");
        assert_eq!(expand("$1x", &g, &[]), "", "$1x names the group `1x`");
        assert_eq!(
            expand("$1é", &g, &[]),
            "",
            "Unicode letters extend the name"
        );
        assert_eq!(expand("$1-$2", &g, &[]), "one-two");
        assert_eq!(expand("$$1", &g, &[]), "$1");
        assert_eq!(
            expand("$01", &g, &[]),
            "",
            "leading zero makes a name, not group 1"
        );
        assert_eq!(expand("$0", &g, &[]), "whole");
        assert_eq!(expand("$9", &g, &[]), "", "missing group is empty");
        assert_eq!(expand("a$", &g, &[]), "a$", "trailing $ is literal");
        assert_eq!(
            expand("$-x", &g, &[]),
            "$-x",
            "malformed reference is literal"
        );
        assert_eq!(expand("${1", &g, &[]), "${1", "unclosed brace is literal");
        assert_eq!(expand("${}", &g, &[]), "${}");
        assert_eq!(expand("${a b}", &g, &[]), "${a b}");
        let names = vec![("x".to_string(), 2)];
        assert_eq!(expand("$x/${x}", &g, &names), "two/two");
        assert_eq!(expand("$y", &g, &names), "");
        let unmatched = [Some("whole"), None, Some("two")];
        assert_eq!(expand("[$1]", &unmatched, &[]), "[]");
    }

    #[test]
    fn literal_templates_are_recognised() {
        let t = Template::parse("prod", 1, &[]);
        assert_eq!(t.as_literal(), Some("prod"));
        assert!(!t.has_dollar);
        let t = Template::parse("a$$b", 1, &[]);
        assert_eq!(t.as_literal(), Some("a$b"));
        assert!(t.has_dollar);
        let t = Template::parse("$7", 1, &[]);
        assert_eq!(t.as_literal(), Some(""));
        assert!(Template::parse("$1", 1, &[]).as_literal().is_none());
    }
}
