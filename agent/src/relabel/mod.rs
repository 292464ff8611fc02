//! The relabel engine: Prometheus `relabel_configs` semantics, used everywhere rules apply
//! (target relabeling, metric relabeling, the local source's rules, remote-write
//! `write_relabel_configs`).
//!
//! Rules are validated and compiled once ([`Rules::compile`]) and then applied to a
//! [`LabelsBuilder`](crate::model::LabelsBuilder) ([`Rules::apply`]). Results match Prometheus 3:
//! regexes are Go RE2 compiled as `^(?s:…)$`, templates follow Go's `regexp.Expand`, hashmod
//! uses the low 8 bytes of the MD5 sum, lowercase/uppercase use Go's simple case mapping.
//!
//! What the caller does around [`Rules::apply`] (Prometheus order):
//! * target relabeling: the input is the discovery labels plus `job`, `__scrape_interval__`,
//!   `__scrape_timeout__`, `__metrics_path__`, `__scheme__`, `__param_*` set if absent; after
//!   it, drop `__meta_*`, default `instance` to `__address__`, keep other `__*` labels for the
//!   scrape only.
//! * metric relabeling: the input is the scraped series with the target labels already
//!   attached (honor_labels applied); a result without `__name__` fails the scrape, and label
//!   names must be re-validated (labelmap writes whatever name it computes, as Prometheus
//!   does). Never applied to the report series (`up`, `scrape_*`).
//! * remote-write `write_relabel_configs`: after external labels are added to series lacking
//!   them; a drop means the series is not sent.
//!
//! Rules written in prometheus-operator CRDs convert with [`MonitorRelabelConfig::to_prometheus`].

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
