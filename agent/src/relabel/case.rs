//! Go's `strings.ToLower` / `strings.ToUpper`: one rune to one rune (simple case mapping).
//!
//! Rust's `str::to_lowercase`/`to_uppercase` use the full mapping (`ß` → `SS`, `İ` → `i̇`,
//! final sigma), which would give different label values than Prometheus. A character whose
//! full mapping is a single character has the same simple mapping; the few whose full mapping
//! expands are listed here with their simple mapping (from the Unicode
//! `Simple_Uppercase_Mapping` / `Simple_Lowercase_Mapping` properties); any other expanding
//! character has no simple mapping and stays as it is.

/// Appends `s` lowercased as Go does.
pub(crate) fn push_lower(out: &mut String, s: &str) {
    for c in s.chars() {
        let mut m = c.to_lowercase();
        match (m.next(), m.next()) {
            (Some(single), None) => out.push(single),
            // U+0130 LATIN CAPITAL LETTER I WITH DOT ABOVE is the only expanding lowercase.
            _ if c == '\u{130}' => out.push('i'),
            _ => out.push(c),
        }
    }
}

/// Appends `s` uppercased as Go does.
pub(crate) fn push_upper(out: &mut String, s: &str) {
    for c in s.chars() {
        let mut m = c.to_uppercase();
        match (m.next(), m.next()) {
            (Some(single), None) => out.push(single),
            _ => out.push(simple_upper_of_expanding(c).unwrap_or(c)),
        }
    }
}

/// Greek letters with ypogegrammeni: full uppercase expands (`ᾳ` → `ΑΙ`) but the simple
/// mapping is the prosgegrammeni capital.
fn simple_upper_of_expanding(c: char) -> Option<char> {
    let cp = c as u32;
    let mapped = match cp {
        0x1F80..=0x1F87 | 0x1F90..=0x1F97 | 0x1FA0..=0x1FA7 => cp + 8,
        0x1FB3 => 0x1FBC,
        0x1FC3 => 0x1FCC,
        0x1FF3 => 0x1FFC,
        _ => return None,
    };
    char::from_u32(mapped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lower(s: &str) -> String {
        let mut o = String::new();
        push_lower(&mut o, s);
        o
    }
    fn upper(s: &str) -> String {
        let mut o = String::new();
        push_upper(&mut o, s);
        o
    }

    #[test]
    fn matches_go_simple_case_mapping() {
        assert_eq!(lower("FooBAR-9"), "foobar-9");
        assert_eq!(upper("FooBar-9"), "FOOBAR-9");
        // Go keeps ß (no simple uppercase); Rust's full mapping would give "SS".
        assert_eq!(upper("straße"), "STRAßE");
        // Go maps İ to plain i; Rust's full mapping adds U+0307.
        assert_eq!(lower("İ"), "i");
        // No final-sigma rule in Go.
        assert_eq!(lower("ΟΔΟΣ"), "οδοσ");
        assert_eq!(upper("ﬁ"), "ﬁ");
        assert_eq!(upper("ᾳ"), "ᾼ");
        assert_eq!(upper("ᾈ"), "ᾈ");
        assert_eq!(upper("ǅ"), "Ǆ");
    }
}
