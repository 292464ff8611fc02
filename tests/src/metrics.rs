//! A small reader of the agent's text exposition, enough for assertions.

use std::collections::BTreeMap;

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

/// A parsed `/metrics` body.
#[derive(Debug)]
pub struct Exposition {
    pub text: String,
    pub lines: Vec<Line>,
}

impl Exposition {
    pub fn parse(text: &str) -> Self {
        let lines = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(parse_line)
            .collect();
        Self {
            text: text.to_string(),
            lines,
        }
    }

    /// Samples of metric `name` whose labels include every pair in `matching`.
    pub fn find(&self, name: &str, matching: &[(&str, &str)]) -> Vec<&Line> {
        self.lines
            .iter()
            .filter(|l| {
                l.name == name
                    && matching
                        .iter()
                        .all(|(k, v)| l.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// The value of the single sample of `name` matching `matching`, if exactly one exists.
    pub fn value(&self, name: &str, matching: &[(&str, &str)]) -> Option<f64> {
        match self.find(name, matching).as_slice() {
            [one] => Some(one.value),
            _ => None,
        }
    }

    /// The `# TYPE` of family `name`.
    pub fn type_of(&self, name: &str) -> Option<&str> {
        self.text.lines().find_map(|l| {
            let rest = l.strip_prefix("# TYPE ")?;
            let (n, t) = rest.split_once(' ')?;
            (n == name).then_some(t)
        })
    }
}

fn parse_line(l: &str) -> Option<Line> {
    let (name, rest) = match l.find('{') {
        Some(i) => (&l[..i], &l[i..]),
        None => l.split_once(' ')?,
    };
    let mut labels = BTreeMap::new();
    let rest = if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        let mut end = None;
        let mut key = String::new();
        while let Some((i, c)) = chars.next() {
            match c {
                '}' => {
                    end = Some(i);
                    break;
                }
                ',' => {}
                '=' => {
                    let mut val = String::new();
                    chars.next(); // opening quote
                    while let Some((_, c)) = chars.next() {
                        match c {
                            '\\' => match chars.next().map(|(_, c)| c) {
                                Some('n') => val.push('\n'),
                                Some(o) => val.push(o),
                                None => {}
                            },
                            '"' => break,
                            o => val.push(o),
                        }
                    }
                    labels.insert(std::mem::take(&mut key), val);
                }
                o => key.push(o),
            }
        }
        &body[end? + 1..]
    } else {
        rest
    };
    let mut parts = rest.split_whitespace();
    let value = match parts.next()? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().ok()?,
    };
    let timestamp_ms = parts.next().and_then(|t| t.parse().ok());
    Some(Line {
        name: name.to_string(),
        labels,
        value,
        timestamp_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_labels_values_and_timestamps() {
        let e = Exposition::parse("# TYPE a counter\na{x=\"1\",y=\"q\\\"\"} 2.5 1000\nb 3\n");
        assert_eq!(e.value("a", &[("x", "1")]), Some(2.5));
        assert_eq!(
            e.find("a", &[])[0].labels.get("y").map(String::as_str),
            Some("q\"")
        );
        assert_eq!(e.find("a", &[])[0].timestamp_ms, Some(1000));
        assert_eq!(e.value("b", &[]), Some(3.0));
        assert_eq!(e.type_of("a"), Some("counter"));
    }
}
