//! The relabel engine: Prometheus `relabel_configs` semantics, used everywhere rules apply
//! (target relabeling, metric relabeling, the local source's rules, remote-write
//! `write_relabel_configs`).
//!
//! Rules are validated and compiled once ([`Rules::compile`]) and then applied to a
//! [`LabelsBuilder`](crate::model::LabelsBuilder) ([`Rules::apply`]). Results match Prometheus 3:
//! regexes are Go RE2 compiled as `^(?s:…)$`, templates follow Go's `regexp.Expand`, hashmod
//! uses the low 8 bytes of the MD5 sum, lowercase/uppercase use Go's simple case mapping.

mod case;
mod config;
mod pattern;
mod rules;
mod template;

#[cfg(test)]
mod tests;

pub use config::{
    Action, DEFAULT_REGEX, DEFAULT_REPLACEMENT, DEFAULT_SEPARATOR, MonitorRelabelConfig,
    RelabelConfig, UnknownAction, deserialize_rule_list,
};
pub use pattern::PatternError;
pub use rules::{NameValidation, RelabelError, RuleError, Rules};
