//! Kubernetes label selectors: matching objects (monitor and namespace selection,
//! `RoleSelector`) and the relabel-rule translation prometheus-operator uses (spec §2.3).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::meta::sanitize;
use super::rules::{drop, keep};
use crate::relabel::RelabelConfig;

/// Whether `labels` satisfy `selector` (an empty selector matches everything). Selectors
/// are validated before use; an unknown operator matches nothing.
pub fn matches(selector: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    let get = |k: &str| labels.and_then(|l| l.get(k));
    let by_labels = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| get(k) == Some(v));
    by_labels
        && selector.match_expressions.iter().flatten().all(|e| {
            let values = e.values.as_deref().unwrap_or_default();
            match e.operator.as_str() {
                "In" => get(&e.key).is_some_and(|v| values.contains(v)),
                "NotIn" => get(&e.key).is_none_or(|v| !values.contains(v)),
                "Exists" => get(&e.key).is_some(),
                "DoesNotExist" => get(&e.key).is_none(),
                _ => false,
            }
        })
}

/// The keep/drop rules that implement `selector` on role `role` (`service` or `pod`):
/// matchLabels in key order, then matchExpressions in list order. Values go into the regex
/// unescaped, as the operator writes them.
pub fn selector_rules(selector: &LabelSelector, role: &str) -> Vec<RelabelConfig> {
    let label = |k: &str| format!("__meta_kubernetes_{role}_label_{}", sanitize(k));
    let present = |k: &str| format!("__meta_kubernetes_{role}_labelpresent_{}", sanitize(k));
    let mut out = Vec::new();
    for (k, v) in selector.match_labels.iter().flatten() {
        out.push(keep(vec![label(k), present(k)], format!("({v});true")));
    }
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.as_deref().unwrap_or_default().join("|");
        match e.operator.as_str() {
            "In" => out.push(keep(
                vec![label(&e.key), present(&e.key)],
                format!("({values});true"),
            )),
            "NotIn" => out.push(drop(
                vec![label(&e.key), present(&e.key)],
                format!("({values});true"),
            )),
            "Exists" => out.push(keep(vec![present(&e.key)], "true".into())),
            "DoesNotExist" => out.push(drop(vec![present(&e.key)], "true".into())),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn req(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        }
    }

    #[test]
    fn match_labels_and_expressions_all_have_to_hold() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("release", "kube-prometheus-stack")])),
            match_expressions: Some(vec![
                req("tier", "In", &["a", "b"]),
                req("skip", "DoesNotExist", &[]),
                req("env", "NotIn", &["dev"]),
            ]),
        };
        let ok = labels(&[("release", "kube-prometheus-stack"), ("tier", "a")]);
        assert!(matches(&sel, Some(&ok)));
        let mut dev = ok.clone();
        dev.insert("env".into(), "dev".into());
        assert!(!matches(&sel, Some(&dev)));
        let mut skip = ok.clone();
        skip.insert("skip".into(), String::new());
        assert!(!matches(&sel, Some(&skip)));
        assert!(!matches(&sel, None));
        assert!(matches(&LabelSelector::default(), None));
    }

    #[test]
    fn rules_follow_the_operator_translation() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("b", "2"), ("app.kubernetes.io/name", "web")])),
            match_expressions: Some(vec![
                req("x", "NotIn", &["1", "2"]),
                req("y", "Exists", &[]),
            ]),
        };
        let rules = selector_rules(&sel, "service");
        let yaml = crate::discovery::kubernetes::rules::compact_yaml(&rules);
        assert_eq!(
            yaml,
            "\
- source_labels:
  - __meta_kubernetes_service_label_app_kubernetes_io_name
  - __meta_kubernetes_service_labelpresent_app_kubernetes_io_name
  regex: (web);true
  action: keep
- source_labels:
  - __meta_kubernetes_service_label_b
  - __meta_kubernetes_service_labelpresent_b
  regex: (2);true
  action: keep
- source_labels:
  - __meta_kubernetes_service_label_x
  - __meta_kubernetes_service_labelpresent_x
  regex: (1|2);true
  action: drop
- source_labels:
  - __meta_kubernetes_service_labelpresent_y
  regex: 'true'
  action: keep
"
        );
    }
}
