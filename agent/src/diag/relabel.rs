//! `nodemeter relabel`: try relabel rules on label sets, one JSON object per line.
//!
//! Input, one per line: `{"rules": [<relabel_config>...], "labels": {"name": "value", ...}}`,
//! rules spelled as in Prometheus YAML (`source_labels`, `target_label`, ...) but in JSON.
//! Output, one line per input line: `{"labels": {...}}` (sorted by name), `{"dropped": true}`,
//! or `{"error": "..."}` for a line that is not valid JSON or has invalid rules. Processing
//! continues after an error; blank lines are skipped.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use serde::Deserialize;
use serde_json::json;

use crate::model::LabelsBuilder;
use crate::relabel::{RelabelConfig, Rules};

/// One input line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    /// The rule list, applied in order.
    #[serde(default)]
    rules: Vec<RelabelConfig>,
    /// The label set to relabel; empty values are absent labels, as in Prometheus.
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Reads requests from `input` until end of input and writes one answer line per request.
/// Returns an error only when reading `input` or writing `output` fails.
pub fn run(input: impl BufRead, mut output: impl Write) -> std::io::Result<()> {
    for (index, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let answer = answer(&line, index + 1);
        serde_json::to_writer(&mut output, &answer)?;
        output.write_all(b"\n")?;
        output.flush()?;
    }
    Ok(())
}

fn answer(line: &str, line_number: usize) -> serde_json::Value {
    let request: Request = match serde_json::from_str(line) {
        Ok(r) => r,
        Err(e) => return json!({ "error": format!("line {line_number}: {e}") }),
    };
    let rules = match Rules::compile(&request.rules) {
        Ok(r) => r,
        Err(e) => return json!({ "error": format!("line {line_number}: {e}") }),
    };
    let mut builder = LabelsBuilder::with_capacity(request.labels.len() + 4);
    for (name, value) in &request.labels {
        builder.set(name, value);
    }
    if !rules.apply(&mut builder) {
        return json!({ "dropped": true });
    }
    let labels: BTreeMap<&str, &str> = builder
        .iter()
        .map(|l| (l.name.as_str(), l.value.as_str()))
        .collect();
    json!({ "labels": labels })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    fn lines(input: &str) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        run(input.as_bytes(), &mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn answers_every_line_and_continues_after_errors() {
        let input = r#"{"rules": [{"source_labels": ["env"], "regex": "prod", "target_label": "env", "replacement": "production"}], "labels": {"env": "prod", "job": "x"}}
not json
{"rules": [{"source_labels": ["__name__"], "regex": "up|go_.*", "action": "Keep"}], "labels": {"__name__": "process_cpu_seconds_total"}}
{"rules": [{"action": "hashmod", "target_label": "t"}], "labels": {"a": "1"}}

{"rules": [{"action": "rewrite"}], "labels": {}}
{"rules": [{"regex": "pod_template_hash", "action": "labeldrop"}, {"source_labels": ["a", "b"], "target_label": "c"}], "labels": {"a": "1", "pod_template_hash": "abc", "z": ""}}
{"labels": {"a": "1"}, "extra": true}
"#;
        let out = lines(input);
        assert_eq!(out.len(), 7, "{out:?}");
        assert_eq!(out[0], json!({"labels": {"env": "production", "job": "x"}}));
        assert!(
            out[1]["error"].as_str().unwrap().starts_with("line 2: "),
            "{}",
            out[1]
        );
        assert_eq!(out[2], json!({"dropped": true}));
        assert!(
            out[3]["error"]
                .as_str()
                .unwrap()
                .contains("relabel rule 0 (action hashmod): relabel configuration for hashmod requires non-zero modulus"),
            "{}",
            out[3]
        );
        assert!(
            out[4]["error"]
                .as_str()
                .unwrap()
                .contains(r#"unknown relabel action "rewrite""#),
            "{}",
            out[4]
        );
        assert!(
            out[4]["error"].as_str().unwrap().starts_with("line 6: "),
            "{}",
            out[4]
        );
        assert_eq!(out[5], json!({"labels": {"a": "1", "c": "1;"}}));
        assert!(
            out[6]["error"]
                .as_str()
                .unwrap()
                .contains("unknown field `extra`"),
            "{}",
            out[6]
        );
    }

    #[test]
    fn no_rules_echoes_the_labels_without_empty_values() {
        let out = lines(r#"{"labels": {"b": "2", "a": "1", "e": ""}}"#);
        assert_eq!(out, vec![json!({"labels": {"a": "1", "b": "2"}})]);
    }

    #[test]
    fn read_errors_are_returned() {
        struct Failing;
        impl std::io::Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("broken pipe"))
            }
        }
        let mut out = Vec::new();
        assert!(run(std::io::BufReader::new(Failing), &mut out).is_err());
    }
}
