//! Relabel rule configuration, as written in Prometheus YAML and in prometheus-operator CRDs.
//!
//! Field semantics follow Prometheus's YAML loader, including what an explicit `null` does
//! (Go's yaml decoder zeroes the field: `regex: null` is the empty regex, `separator: null`
//! the empty separator, `action: null` an error).

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// What a rule does. Names are case-insensitive on input (Prometheus lowercases them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Action {
    #[default]
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl Action {
    pub const ALL: [Action; 11] = [
        Action::Replace,
        Action::Keep,
        Action::Drop,
        Action::KeepEqual,
        Action::DropEqual,
        Action::HashMod,
        Action::LabelMap,
        Action::LabelDrop,
        Action::LabelKeep,
        Action::Lowercase,
        Action::Uppercase,
    ];

    /// The canonical (lowercase) name Prometheus uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }

    /// Parses a name in any letter case.
    pub fn parse(name: &str) -> Result<Action, UnknownAction> {
        let lower = name.to_lowercase();
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == lower)
            .ok_or_else(|| UnknownAction(name.to_string()))
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An action name Prometheus does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown relabel action {0:?}")]
pub struct UnknownAction(pub String);

impl Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Err(de::Error::custom("relabel action cannot be empty")),
            Some(s) if s.is_empty() => Err(de::Error::custom("relabel action cannot be empty")),
            Some(s) => Action::parse(&s).map_err(de::Error::custom),
        }
    }
}

/// One relabeling rule (`relabel_configs`, `metric_relabel_configs`, `write_relabel_configs`),
/// with Prometheus's keys and defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    /// Labels whose values, joined with `separator`, form the input of the rule; a missing
    /// label contributes "". `None` (the default) and an explicit empty list differ only for
    /// `labeldrop`/`labelkeep`, which reject any `source_labels` key.
    #[serde(
        default,
        deserialize_with = "null_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub source_labels: Option<Vec<String>>,
    /// Joins the source label values. Default `;`.
    #[serde(default = "default_separator", deserialize_with = "string_or_null")]
    pub separator: String,
    /// Label written by replace, hashmod, lowercase, uppercase; compared by keepequal/dropequal.
    /// `$` templates are allowed for replace. Default empty.
    #[serde(default, deserialize_with = "string_or_null")]
    pub target_label: String,
    /// Regex matched against the joined value (label names for labelmap/labeldrop/labelkeep),
    /// always fully anchored. `None` means the default `(.*)`.
    #[serde(
        default,
        deserialize_with = "regex_or_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub regex: Option<String>,
    /// Modulus for hashmod. Default 0 (hashmod requires a non-zero value).
    #[serde(default, deserialize_with = "null_as_default")]
    pub modulus: u64,
    /// Template written by replace (and the new name for labelmap). Default `$1`.
    #[serde(default = "default_replacement", deserialize_with = "string_or_null")]
    pub replacement: String,
    /// What the rule does. Default `replace`; case-insensitive.
    #[serde(default)]
    pub action: Action,
}

impl Default for RelabelConfig {
    fn default() -> Self {
        RelabelConfig {
            source_labels: None,
            separator: default_separator(),
            target_label: String::new(),
            regex: None,
            modulus: 0,
            replacement: default_replacement(),
            action: Action::Replace,
        }
    }
}

/// The default `regex`.
pub const DEFAULT_REGEX: &str = "(.*)";
/// The default `separator`.
pub const DEFAULT_SEPARATOR: &str = ";";
/// The default `replacement`.
pub const DEFAULT_REPLACEMENT: &str = "$1";

fn default_separator() -> String {
    DEFAULT_SEPARATOR.to_string()
}

fn default_replacement() -> String {
    DEFAULT_REPLACEMENT.to_string()
}

/// Accepts a string or any scalar written unquoted in YAML (`regex: 8080`, `replacement: true`),
/// as Go's yaml decoder does; `null` becomes "".
struct ScalarString;

impl<'de> Visitor<'de> for ScalarString {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Ok(String::new())
    }
    fn visit_none<E: de::Error>(self) -> Result<String, E> {
        Ok(String::new())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_str(ScalarString)
    }
}

fn string_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_option(ScalarString)
}

/// `regex: null` (or an empty `regex:`) is the empty regex in Prometheus, not the default.
fn regex_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    string_or_null(d).map(Some)
}

fn null_as_none<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}

fn null_as_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

/// Deserializes a rule list, rejecting `null` entries (Prometheus: "empty or null … relabeling
/// rule"). Use with `#[serde(deserialize_with = "…")]` on config fields holding rule lists.
pub fn deserialize_rule_list<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<RelabelConfig>, D::Error> {
    let rules = Option::<Vec<Option<RelabelConfig>>>::deserialize(d)?.unwrap_or_default();
    rules
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.ok_or_else(|| {
                de::Error::custom(format!("empty or null relabeling rule at index {i}"))
            })
        })
        .collect()
}

/// A relabeling rule as prometheus-operator CRDs spell it (`relabelings`, `metricRelabelings`
/// in ServiceMonitor/PodMonitor, `writeRelabelConfigs`): camelCase keys, and "unset" and
/// "empty" distinguished the way the operator does when it renders Prometheus config.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
// The API server prunes unknown fields and newer CRD versions may add some, so an unknown
// key is ignored rather than failing the whole monitor.
#[serde(rename_all = "camelCase")]
pub struct MonitorRelabelConfig {
    /// `sourceLabels`; an empty list is the same as none.
    #[serde(default)]
    pub source_labels: Vec<String>,
    /// `separator`; unset means `;`, an explicit "" is kept.
    #[serde(default)]
    pub separator: Option<String>,
    /// `targetLabel`.
    #[serde(default)]
    pub target_label: String,
    /// `regex`; an empty string means the default `(.*)` (the operator omits it).
    #[serde(default)]
    pub regex: String,
    /// `modulus`.
    #[serde(default)]
    pub modulus: u64,
    /// `replacement`; unset means `$1`, an explicit "" is kept (empty replacement).
    #[serde(default)]
    pub replacement: Option<String>,
    /// `action`, in either letter case; empty means `replace`.
    #[serde(default)]
    pub action: String,
}

impl MonitorRelabelConfig {
    /// The Prometheus rule the operator would render for this CRD rule.
    pub fn to_prometheus(&self) -> Result<RelabelConfig, UnknownAction> {
        let action = if self.action.is_empty() {
            Action::Replace
        } else {
            Action::parse(&self.action)?
        };
        Ok(RelabelConfig {
            source_labels: (!self.source_labels.is_empty()).then(|| self.source_labels.clone()),
            separator: self.separator.clone().unwrap_or_else(default_separator),
            target_label: self.target_label.clone(),
            regex: (!self.regex.is_empty()).then(|| self.regex.clone()),
            modulus: self.modulus,
            replacement: self.replacement.clone().unwrap_or_else(default_replacement),
            action,
        })
    }
}
