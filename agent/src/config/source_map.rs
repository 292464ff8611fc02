//! Where each key of a YAML document sits, so every config error can name file, line and key.
//!
//! serde tells *which* key failed (via `serde_path_to_error`) but only sometimes *where*;
//! validation after deserialisation knows neither. This index maps a key path such as
//! `scrape_configs[0].scrape_timeout` to the line and column of that key in the file.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Line and column (both 1-based) of a key or sequence item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Default)]
pub struct SourceMap {
    positions: HashMap<String, Position>,
}

impl SourceMap {
    /// Indexes `text`. A document that does not parse yields an empty map: serde reports the
    /// syntax error with its own location.
    pub fn index(text: &str) -> Self {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut builder, false).is_err() {
            return Self::default();
        }
        Self {
            positions: builder.positions,
        }
    }

    /// The position of `path`, or of its closest ancestor that the document contains (a missing
    /// key is reported at the mapping that should have had it).
    pub fn locate(&self, path: &str) -> Option<Position> {
        let mut p = path;
        loop {
            if let Some(pos) = self.positions.get(p) {
                return Some(*pos);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

enum Frame {
    Map { key: Option<String> },
    Seq { next: usize },
}

#[derive(Default)]
struct Builder {
    frames: Vec<Frame>,
    path: Vec<String>,
    positions: HashMap<String, Position>,
}

impl Builder {
    fn joined(&self, last: &str) -> String {
        let mut s = String::new();
        for seg in self.path.iter().map(String::as_str).chain([last]) {
            if !s.is_empty() && !seg.starts_with('[') {
                s.push('.');
            }
            s.push_str(seg);
        }
        s
    }

    fn record(&mut self, segment: &str, mark: Marker) {
        let path = self.joined(segment);
        self.positions.entry(path).or_insert(Position {
            line: mark.line(),
            column: mark.col() + 1,
        });
    }

    /// Handles the start of a node; returns the path segment under which a collection opens.
    fn node(&mut self, scalar_key: Option<&str>, mark: Marker) -> Option<String> {
        match self.frames.last_mut() {
            Some(Frame::Map { key }) if key.is_none() => {
                // This node is a key.
                let k = scalar_key.unwrap_or("?").to_string();
                *key = Some(k.clone());
                self.record(&k, mark);
                None
            }
            Some(Frame::Map { key }) => key.take(),
            Some(Frame::Seq { next }) => {
                let seg = format!("[{next}]");
                *next += 1;
                self.record(&seg, mark);
                Some(seg)
            }
            None => Some(String::new()),
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(value, ..) => {
                self.node(Some(&value), mark);
            }
            Event::Alias(_) => {
                self.node(None, mark);
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let seg = self.node(None, mark).unwrap_or_else(|| "?".into());
                self.path.push(seg);
                self.frames.push(if matches!(ev, Event::MappingStart(..)) {
                    Frame::Map { key: None }
                } else {
                    Frame::Seq { next: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.frames.pop();
                self.path.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: [x]\n  - job_name: b\n    scrape_timeout: 1m\n";

    #[test]
    fn keys_and_items_have_their_lines() {
        let m = SourceMap::index(DOC);
        assert_eq!(m.locate("global.scrape_interval").map(|p| p.line), Some(2));
        assert_eq!(
            m.locate("scrape_configs[1].scrape_timeout").map(|p| p.line),
            Some(8)
        );
        assert_eq!(
            m.locate("scrape_configs[0].static_configs[0].targets")
                .map(|p| p.line),
            Some(6)
        );
        assert_eq!(
            m.locate("scrape_configs[1].scrape_timeout")
                .map(|p| p.column),
            Some(5)
        );
    }

    #[test]
    fn a_missing_key_is_located_at_its_parent() {
        let m = SourceMap::index(DOC);
        assert_eq!(
            m.locate("scrape_configs[1].metrics_path").map(|p| p.line),
            Some(7)
        );
    }
}
