//! Conformance tests: relabeling as Prometheus 3 does it (spec "monitors and relabel" §4, §7).
#![allow(clippy::unwrap_used, reason = "tests")]

use std::collections::BTreeMap;

use super::*;
use crate::model::Labels;

fn configs(yaml: &str) -> Vec<RelabelConfig> {
    serde_yaml::from_str(yaml).unwrap()
}

fn rules(yaml: &str) -> Rules {
    Rules::compile(&configs(yaml)).unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn map(l: &Labels) -> BTreeMap<String, String> {
    l.iter()
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect()
}

fn expect(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// Relabels `input` with the YAML rule list; `None` when dropped.
fn relabel(yaml: &str, input: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    rules(yaml).process(&labels(input)).map(|l| map(&l))
}

fn compile_error(yaml: &str) -> RelabelError {
    Rules::compile(&configs(yaml)).unwrap_err()
}

fn compile_error_with(yaml: &str, scheme: NameValidation) -> RelabelError {
    Rules::compile_with(&configs(yaml), scheme).unwrap_err()
}

fn parse_error(yaml: &str) -> String {
    serde_yaml::from_str::<Vec<RelabelConfig>>(yaml)
        .unwrap_err()
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// §4.1 defaults and parsing

#[test]
fn defaults_are_prometheus_defaults() {
    let c = &configs("- target_label: x")[0];
    assert_eq!(c.source_labels, None);
    assert_eq!(c.separator, ";");
    assert_eq!(c.regex, None, "unset regex means the default (.*)");
    assert_eq!(c.modulus, 0);
    assert_eq!(c.replacement, "$1");
    assert_eq!(c.action, Action::Replace);
    assert_eq!(
        c,
        &RelabelConfig {
            target_label: "x".into(),
            ..RelabelConfig::default()
        }
    );
}

#[test]
fn action_names_are_case_insensitive() {
    let c = configs(
        "- action: LabelDrop\n  regex: a\n- action: HASHMOD\n  target_label: t\n  modulus: 2\n- action: KeepEqual\n  target_label: t",
    );
    assert_eq!(c[0].action, Action::LabelDrop);
    assert_eq!(c[1].action, Action::HashMod);
    assert_eq!(c[2].action, Action::KeepEqual);
}

#[test]
fn unknown_or_empty_action_is_rejected() {
    assert!(parse_error("- action: rewrite").contains(r#"unknown relabel action "rewrite""#));
    assert!(parse_error("- action:").contains("relabel action cannot be empty"));
    assert!(parse_error("- action: ''").contains("relabel action cannot be empty"));
}

#[test]
fn unknown_keys_are_rejected() {
    assert!(parse_error("- target_label: x\n  targetLabel: y").contains("unknown field"));
}

#[test]
fn unquoted_scalars_are_strings_like_in_go_yaml() {
    let c =
        &configs("- source_labels: [port]\n  regex: 8080\n  replacement: 9100\n  target_label: p")
            [0];
    assert_eq!(c.regex.as_deref(), Some("8080"));
    assert_eq!(c.replacement, "9100");
}

#[test]
fn explicit_null_zeroes_the_field_like_go_yaml() {
    // `regex:` with no value is the empty regex (matches only ""), not the default.
    let c = &configs("- source_labels: [a]\n  regex:\n  action: keep")[0];
    assert_eq!(c.regex.as_deref(), Some(""));
    assert_eq!(
        relabel(
            "- source_labels: [a]\n  regex:\n  action: keep",
            &[("a", "x")]
        ),
        None
    );
    assert!(
        relabel(
            "- source_labels: [a]\n  regex:\n  action: keep",
            &[("b", "x")]
        )
        .is_some()
    );
    let c = &configs("- separator: null\n  replacement: ~\n  target_label: t")[0];
    assert_eq!(c.separator, "");
    assert_eq!(c.replacement, "");
}

#[test]
fn null_rule_in_a_list_is_rejected() {
    #[derive(serde::Deserialize, Debug)]
    struct Holder {
        #[serde(deserialize_with = "deserialize_rule_list")]
        #[allow(dead_code, reason = "only deserialized")]
        metric_relabel_configs: Vec<RelabelConfig>,
    }
    let err =
        serde_yaml::from_str::<Holder>("metric_relabel_configs:\n- action: keep\n  regex: a\n-\n")
            .unwrap_err()
            .to_string();
    assert!(
        err.contains("empty or null relabeling rule at index 1"),
        "{err}"
    );
    let ok: Holder =
        serde_yaml::from_str("metric_relabel_configs:\n- action: keep\n  regex: a\n").unwrap();
    assert_eq!(ok.metric_relabel_configs.len(), 1);
}

#[test]
fn json_uses_the_same_keys() {
    let c: Vec<RelabelConfig> = serde_json::from_str(
        r#"[{"source_labels":["a"],"regex":"(.*)","target_label":"b","action":"Replace"}]"#,
    )
    .unwrap();
    assert_eq!(c[0].action, Action::Replace);
    assert_eq!(c[0].regex.as_deref(), Some("(.*)"));
}

// ---------------------------------------------------------------------------------------------
// §4.2 evaluation: replace

#[test]
fn replace_expands_groups_into_the_target() {
    let yaml =
        "- source_labels: [a]\n  regex: f(.*)\n  target_label: d\n  replacement: ch${1}-ch${1}";
    assert_eq!(
        relabel(yaml, &[("a", "foo"), ("b", "bar")]),
        expect(&[("a", "foo"), ("b", "bar"), ("d", "choo-choo")])
    );
}

#[test]
fn source_values_are_joined_and_missing_labels_are_empty() {
    let yaml = "- source_labels: [a, b, c]\n  target_label: joined";
    assert_eq!(
        relabel(yaml, &[("a", "A"), ("c", "C")]),
        expect(&[("a", "A"), ("c", "C"), ("joined", "A;;C")])
    );
    let yaml = "- source_labels: [a, c]\n  separator: ''\n  target_label: joined";
    assert_eq!(
        relabel(yaml, &[("a", "A"), ("c", "C")]).unwrap()["joined"],
        "AC"
    );
    let yaml = "- source_labels: [a, c]\n  separator: '://'\n  target_label: joined";
    assert_eq!(
        relabel(yaml, &[("a", "A"), ("c", "C")]).unwrap()["joined"],
        "A://C"
    );
}

#[test]
fn no_match_means_no_change() {
    let yaml =
        "- source_labels: [env]\n  regex: prod\n  target_label: env\n  replacement: production";
    assert_eq!(
        relabel(yaml, &[("env", "prod")]),
        expect(&[("env", "production")])
    );
    assert_eq!(
        relabel(yaml, &[("env", "staging")]),
        expect(&[("env", "staging")])
    );
    assert_eq!(
        relabel(yaml, &[("env", "prod2")]),
        expect(&[("env", "prod2")]),
        "anchored"
    );
    assert_eq!(
        relabel(yaml, &[("x", "1")]),
        expect(&[("x", "1")]),
        "missing source: '' does not match"
    );
}

#[test]
fn regexes_are_fully_anchored() {
    let keep = |re: &str, v: &str| {
        relabel(
            &format!("- source_labels: [a]\n  regex: '{re}'\n  action: keep"),
            &[("a", v)],
        )
        .is_some()
    };
    assert!(!keep("o", "foo"));
    assert!(keep("f.*", "foo"));
    assert!(
        !keep("f|o", "foo"),
        "each alternative is anchored: ^(?:f|o)$"
    );
    assert!(keep("f|foo", "foo"));
    assert!(!keep("oo", "foo"));
}

#[test]
fn dot_matches_newline() {
    // Prometheus 3 compiles ^(?s:…)$.
    let yaml = "- source_labels: [a]\n  regex: 'foo.bar'\n  action: keep";
    assert!(relabel(yaml, &[("a", "foo\nbar")]).is_some());
    let yaml = "- source_labels: [a]\n  regex: '(.*)'\n  target_label: b";
    assert_eq!(
        relabel(yaml, &[("a", "foo\nbar")]).unwrap()["b"],
        "foo\nbar"
    );
    // `(?-s)` inside the pattern turns it off again, as in Go.
    let yaml = "- source_labels: [a]\n  regex: '(?-s)foo.bar'\n  action: keep";
    assert!(relabel(yaml, &[("a", "foo\nbar")]).is_none());
}

#[test]
fn empty_replacement_result_deletes_the_target() {
    let yaml = "- source_labels: [a]\n  regex: '(x)?(.*)'\n  target_label: b\n  replacement: '$1'";
    assert_eq!(
        relabel(yaml, &[("a", "yy"), ("b", "old")]),
        expect(&[("a", "yy")])
    );
    let yaml = "- source_labels: [a]\n  target_label: b\n  replacement: ''";
    assert_eq!(
        relabel(yaml, &[("a", "v"), ("b", "old")]),
        expect(&[("a", "v")])
    );
}

#[test]
fn default_regex_from_a_missing_source_deletes_the_target() {
    // ServiceMonitor rule 9: `pod` from __meta_kubernetes_pod_name, even after rule 6 set it.
    let yaml = "- source_labels: [__meta_kubernetes_pod_name]\n  target_label: pod";
    assert_eq!(
        relabel(yaml, &[("pod", "from-rule-6"), ("x", "1")]),
        expect(&[("x", "1")])
    );
}

#[test]
fn copying_a_label_follows_the_regex() {
    // `(.+)` does not match an empty value: the target is left alone.
    let yaml = "- source_labels: [a]\n  regex: (.+)\n  target_label: b\n  replacement: ${1}";
    assert_eq!(relabel(yaml, &[("b", "old")]), expect(&[("b", "old")]));
    assert_eq!(
        relabel(yaml, &[("a", "v"), ("b", "old")]),
        expect(&[("a", "v"), ("b", "v")])
    );
    // `.*` matches it and `$0` expands to "", which deletes the target.
    let yaml = "- source_labels: [a]\n  regex: .*\n  target_label: b\n  replacement: $0";
    assert_eq!(relabel(yaml, &[("b", "old")]), expect(&[]));
    assert_eq!(
        relabel(yaml, &[("a", "v")]),
        expect(&[("a", "v"), ("b", "v")])
    );
    // A literal regex copies only that value.
    let yaml = "- source_labels: [a]\n  regex: prod\n  target_label: b\n  replacement: $0";
    assert_eq!(
        relabel(yaml, &[("a", "prod")]),
        expect(&[("a", "prod"), ("b", "prod")])
    );
    assert_eq!(relabel(yaml, &[("a", "dev")]), expect(&[("a", "dev")]));
}

#[test]
fn static_replace_without_sources_sets_the_label() {
    let yaml = "- target_label: endpoint\n  replacement: metrics";
    assert_eq!(
        relabel(yaml, &[("a", "1")]),
        expect(&[("a", "1"), ("endpoint", "metrics")])
    );
    // Same with an explicit default regex (no fast path in Prometheus, same result).
    let yaml = "- target_label: endpoint\n  regex: (.*)\n  replacement: metrics";
    assert_eq!(
        relabel(yaml, &[("a", "1")]),
        expect(&[("a", "1"), ("endpoint", "metrics")])
    );
    // A non-matching regex blocks the write even with no sources.
    let yaml = "- target_label: endpoint\n  regex: (.+)\n  replacement: metrics";
    assert_eq!(relabel(yaml, &[("a", "1")]), expect(&[("a", "1")]));
}

#[test]
fn unbraced_group_names_are_the_longest_word_run() {
    let base = "- source_labels: [a]\n  regex: '(.*)'\n  target_label: b\n";
    assert_eq!(
        relabel(&format!("{base}  replacement: '$1x'"), &[("a", "v")]),
        expect(&[("a", "v")]),
        "$1x is group `1x`: empty, deletes b"
    );
    assert_eq!(
        relabel(&format!("{base}  replacement: '${{1}}x'"), &[("a", "v")]).unwrap()["b"],
        "vx"
    );
    assert_eq!(
        relabel(&format!("{base}  replacement: '$1-x'"), &[("a", "v")]).unwrap()["b"],
        "v-x"
    );
    assert_eq!(
        relabel(
            &format!("{base}  replacement: '$1é'"),
            &[("a", "v"), ("b", "old")]
        ),
        expect(&[("a", "v")]),
        "é extends the name"
    );
    assert_eq!(
        relabel(&format!("{base}  replacement: '$$1'"), &[("a", "v")]).unwrap()["b"],
        "$1"
    );
    assert_eq!(
        relabel(&format!("{base}  replacement: 'cost: 5$'"), &[("a", "v")]).unwrap()["b"],
        "cost: 5$"
    );
    assert_eq!(
        relabel(
            &format!("{base}  replacement: '$01'"),
            &[("a", "v"), ("b", "old")]
        ),
        expect(&[("a", "v")]),
        "$01 is a name"
    );
}

#[test]
fn named_groups_including_go_only_names() {
    let yaml = "- source_labels: [a]\n  regex: '(?P<host>[^:]+):(?<port>\\d+)'\n  target_label: hp\n  replacement: '${port}@$host'";
    assert_eq!(
        relabel(yaml, &[("a", "node:9100")]).unwrap()["hp"],
        "9100@node"
    );
    // Go allows a name that starts with a digit; `$1x` then refers to it.
    let yaml = "- source_labels: [a]\n  regex: '(?P<1x>a+)(b+)'\n  target_label: t\n  replacement: '$1x/$2'";
    assert_eq!(relabel(yaml, &[("a", "aab")]).unwrap()["t"], "aa/b");
}

#[test]
fn duplicate_group_names_expand_to_the_first_that_matched() {
    // Go accepts duplicate names; `$v` is the first group named v that took part.
    let yaml = "- source_labels: [a]\n  regex: '(?P<v>x+)|y(?P<v>z+)'\n  target_label: t\n  replacement: '<$v>'";
    assert_eq!(relabel(yaml, &[("a", "xx")]).unwrap()["t"], "<xx>");
    assert_eq!(relabel(yaml, &[("a", "yzz")]).unwrap()["t"], "<zz>");
}

#[test]
fn templated_target_label() {
    let yaml = "- source_labels: [a]\n  regex: 'some-([^-]+)-([^,]+)'\n  target_label: '${1}'\n  replacement: '${2}'";
    assert_eq!(
        relabel(yaml, &[("a", "some-name-value")]),
        expect(&[("a", "some-name-value"), ("name", "value")])
    );
}

#[test]
fn target_label_expanding_to_an_invalid_name_is_skipped() {
    // UTF-8 scheme: accepted at load (§4.6 note), skipped at run time when it expands to "".
    let yaml = "- source_labels: [a]\n  regex: 'some-([^-]+)-([^,]+)'\n  target_label: '${3}'\n  replacement: '${2}'";
    assert_eq!(
        relabel(yaml, &[("a", "some-name-value")]),
        expect(&[("a", "some-name-value")])
    );
    let yaml = "- source_labels: [a]\n  regex: 'some-([^-]+)-([^,]+)'\n  target_label: '0${3}'\n  replacement: '${2}'";
    assert_eq!(
        relabel(yaml, &[("a", "some-name-value")]).unwrap()["0"],
        "value"
    );
    // Legacy scheme: `0` is not a valid name, so nothing is written.
    let r = Rules::compile_with(
        &configs("- source_labels: [a]\n  regex: '(.*)'\n  target_label: '${1}'"),
        NameValidation::Legacy,
    )
    .unwrap();
    assert_eq!(
        map(&r.process(&labels(&[("a", "0x")])).unwrap()),
        expect(&[("a", "0x")]).unwrap()
    );
    assert_eq!(
        map(&r.process(&labels(&[("a", "ok")])).unwrap()),
        expect(&[("a", "ok"), ("ok", "ok")]).unwrap()
    );
}

// ---------------------------------------------------------------------------------------------
// keep / drop and the operator's selector rules (§2, §7.2)

#[test]
fn keep_and_drop() {
    let keep = "- source_labels: [__name__]\n  regex: 'up|scrape_.*'\n  action: keep";
    assert!(relabel(keep, &[("__name__", "up")]).is_some());
    assert!(relabel(keep, &[("__name__", "scrape_duration_seconds")]).is_some());
    assert!(relabel(keep, &[("__name__", "upx")]).is_none());
    assert!(
        relabel(keep, &[("job", "x")]).is_none(),
        "missing source is '' which does not match"
    );
    let drop = "- source_labels: [__meta_kubernetes_pod_phase]\n  regex: '(Failed|Succeeded)'\n  action: drop";
    assert!(relabel(drop, &[("__meta_kubernetes_pod_phase", "Failed")]).is_none());
    assert!(relabel(drop, &[("__meta_kubernetes_pod_phase", "Running")]).is_some());
    assert!(relabel(drop, &[]).is_some());
}

#[test]
fn operator_selector_rules_use_labelpresent_and_unescaped_values() {
    let sel = |v: &str| {
        format!(
            "- source_labels: [__meta_kubernetes_pod_label_app, __meta_kubernetes_pod_labelpresent_app]\n  regex: '({v});true'\n  action: keep"
        )
    };
    fn pod(v: Option<&str>) -> Vec<(&str, &str)> {
        match v {
            Some(v) => vec![
                ("__meta_kubernetes_pod_label_app", v),
                ("__meta_kubernetes_pod_labelpresent_app", "true"),
            ],
            None => vec![],
        }
    }
    assert!(relabel(&sel("web"), &pod(Some("web"))).is_some());
    assert!(relabel(&sel("web"), &pod(Some("web2"))).is_none());
    assert!(relabel(&sel("web"), &pod(None)).is_none());
    // `k: ""` selects pods that have the label with an empty value (value label absent).
    assert!(
        relabel(
            &sel(""),
            &[("__meta_kubernetes_pod_labelpresent_app", "true")]
        )
        .is_some()
    );
    assert!(relabel(&sel(""), &pod(None)).is_none());
    // The value is not escaped: `v1.0` also keeps `v1x0`.
    assert!(relabel(&sel("v1.0"), &pod(Some("v1x0"))).is_some());
}

#[test]
fn first_drop_ends_processing() {
    let yaml = "
- target_label: before
  replacement: yes
- source_labels: [a]
  regex: x
  action: drop
- target_label: after
  replacement: yes
";
    assert_eq!(relabel(yaml, &[("a", "x")]), None);
    assert_eq!(
        relabel(yaml, &[("a", "y")]),
        expect(&[("a", "y"), ("after", "yes"), ("before", "yes")])
    );
}

#[test]
fn rules_see_the_results_of_earlier_rules_in_order() {
    let yaml = "
- source_labels: [job]
  target_label: __tmp_prometheus_job_name
- target_label: job
  replacement: ns/name
- source_labels: [__tmp_prometheus_job_name, job]
  separator: '|'
  target_label: both
- regex: __tmp_.*
  action: labeldrop
";
    assert_eq!(
        relabel(yaml, &[("job", "podMonitor/ns/name/0")]),
        expect(&[("both", "podMonitor/ns/name/0|ns/name"), ("job", "ns/name")])
    );
}

// ---------------------------------------------------------------------------------------------
// keepequal / dropequal

#[test]
fn keepequal_and_dropequal_compare_with_the_target_label() {
    let keep = "- source_labels: [__meta_port]\n  target_label: port\n  action: keepequal";
    assert!(relabel(keep, &[("__meta_port", "80"), ("port", "80")]).is_some());
    assert!(relabel(keep, &[("__meta_port", "80"), ("port", "81")]).is_none());
    assert!(relabel(keep, &[("__meta_port", "80")]).is_none());
    assert!(
        relabel(keep, &[("x", "1")]).is_some(),
        "both missing: '' == ''"
    );
    let drop = "- source_labels: [a, b]\n  target_label: c\n  action: dropequal";
    assert!(relabel(drop, &[("a", "1"), ("b", "2"), ("c", "1;2")]).is_none());
    assert!(relabel(drop, &[("a", "1"), ("b", "2"), ("c", "1")]).is_some());
}

// ---------------------------------------------------------------------------------------------
// hashmod

#[test]
fn hashmod_matches_prometheus() {
    // Expected values computed independently with Python:
    //   int.from_bytes(hashlib.md5(v.encode()).digest()[8:16], "big") % modulus
    // ("baz" % 1000 = 976 is also the value in Prometheus's own relabel tests.)
    let cases: &[(&str, u64, &str)] = &[
        ("baz", 1000, "976"),
        ("foo", 1000, "696"),
        ("10.244.1.17:9090", 1, "0"),
        ("10.244.1.17:9090", 3, "2"),
        ("10.244.1.17:9090", 1000, "456"),
        ("", 7, "1"),
        ("ünïcode", 97, "81"),
        ("foo", 9_223_372_036_854_775_808, "7921661662980252888"),
    ];
    for &(value, modulus, want) in cases {
        let yaml = format!(
            "- source_labels: [a]\n  target_label: h\n  modulus: {modulus}\n  action: hashmod"
        );
        let input: Vec<(&str, &str)> = if value.is_empty() {
            vec![]
        } else {
            vec![("a", value)]
        };
        assert_eq!(
            relabel(&yaml, &input).unwrap()["h"],
            want,
            "md5({value:?}) % {modulus}"
        );
    }
    // Joined sources are hashed: "a;b" % 100 = 74.
    let yaml = "- source_labels: [x, y]\n  target_label: h\n  modulus: 100\n  action: hashmod";
    assert_eq!(relabel(yaml, &[("x", "a"), ("y", "b")]).unwrap()["h"], "74");
}

// ---------------------------------------------------------------------------------------------
// labelmap / labeldrop / labelkeep

#[test]
fn labelmap_copies_matching_names_and_keeps_the_originals() {
    let yaml = "- regex: __meta_kubernetes_pod_label_(.+)\n  action: labelmap";
    assert_eq!(
        relabel(
            yaml,
            &[
                ("__meta_kubernetes_pod_label_app", "web"),
                ("__meta_kubernetes_pod_name", "p"),
                ("a", "1")
            ]
        ),
        expect(&[
            ("__meta_kubernetes_pod_label_app", "web"),
            ("__meta_kubernetes_pod_name", "p"),
            ("a", "1"),
            ("app", "web"),
        ])
    );
}

#[test]
fn labelmap_overwrites_and_sees_labels_from_earlier_rules() {
    let yaml = "
- target_label: __tmp_env
  replacement: prod
- regex: __tmp_(.+)
  replacement: ${1}_copy
  action: labelmap
";
    assert_eq!(
        relabel(yaml, &[("env_copy", "old")]),
        expect(&[("__tmp_env", "prod"), ("env_copy", "prod")])
    );
    // The whole name is replaced (anchored), and a non-matching name is left alone.
    let yaml = "- regex: 'b(.*)'\n  replacement: 'x$1'\n  action: labelmap";
    assert_eq!(
        relabel(yaml, &[("ab", "1"), ("bc", "2")]),
        expect(&[("ab", "1"), ("bc", "2"), ("xc", "2")])
    );
}

#[test]
fn labeldrop_and_labelkeep_match_whole_names() {
    let yaml = "- regex: pod_template_hash\n  action: labeldrop";
    assert_eq!(
        relabel(
            yaml,
            &[
                ("pod", "p"),
                ("pod_template_hash", "abc"),
                ("x_pod_template_hash", "k")
            ]
        ),
        expect(&[("pod", "p"), ("x_pod_template_hash", "k")])
    );
    let yaml = "- regex: 'pod'\n  action: labeldrop";
    assert_eq!(
        relabel(yaml, &[("pod", "p"), ("pods", "q")]),
        expect(&[("pods", "q")])
    );
    // labelkeep removes everything else, __name__ included.
    let yaml = "- regex: 'job|instance'\n  action: labelkeep";
    assert_eq!(
        relabel(
            yaml,
            &[
                ("__name__", "up"),
                ("job", "j"),
                ("instance", "i"),
                ("pod", "p")
            ]
        ),
        expect(&[("instance", "i"), ("job", "j")])
    );
}

// ---------------------------------------------------------------------------------------------
// lowercase / uppercase

#[test]
fn lowercase_and_uppercase() {
    let yaml = "- source_labels: [a, b]\n  target_label: l\n  action: lowercase\n- source_labels: [a]\n  target_label: u\n  action: uppercase";
    assert_eq!(
        relabel(yaml, &[("a", "FooBar"), ("b", "Straße")]),
        expect(&[
            ("a", "FooBar"),
            ("b", "Straße"),
            ("l", "foobar;straße"),
            ("u", "FOOBAR")
        ])
    );
    // Go's simple case mapping: ß has no single-rune uppercase, so it stays.
    let yaml = "- source_labels: [a]\n  target_label: u\n  action: uppercase";
    assert_eq!(relabel(yaml, &[("a", "straße")]).unwrap()["u"], "STRAßE");
    // An empty input deletes the target.
    assert_eq!(relabel(yaml, &[("u", "old")]), expect(&[]));
}

// ---------------------------------------------------------------------------------------------
// §4.4 regex dialect

#[test]
fn perl_classes_are_ascii_as_in_go() {
    let keep = |re: &str, v: &str| {
        relabel(
            &format!("- source_labels: [a]\n  regex: '{re}'\n  action: keep"),
            &[("a", v)],
        )
        .is_some()
    };
    assert!(keep(r"\d+", "0123"));
    assert!(!keep(r"\d+", "٣"), "Arabic-Indic digit is not \\d in Go");
    assert!(keep(r"\w+", "a_1"));
    assert!(!keep(r"\w+", "é"));
    assert!(keep(r"\W", "é"));
    assert!(keep(r"a\sb", "a\tb"));
    assert!(!keep(r"a\sb", "a\u{b}b"), "Go's \\s has no \\v");
    assert!(!keep(r"a\sb", "a\u{a0}b"));
    assert!(keep(r"[\d]+x", "12x"));
    assert!(keep(r"[^\d]+", "ab"));
    assert!(keep(r"[\D]+", "ab"));
    assert!(
        keep(r"x\bé", "xé"),
        "ASCII word boundary between x and é, as in Go"
    );
    assert!(keep(r"(?i)FOO", "foo"));
    assert!(keep(r"[[:alpha:]]+", "abc"));
    assert!(keep(r"\pL+", "héllo"));
    assert!(keep(r"\p{Greek}+", "αβγ"));
    assert!(keep(r"\P{Greek}+", "abc"));
}

#[test]
fn go_only_syntax_is_translated() {
    let keep = |re: &str, v: &str| {
        relabel(
            &format!("- source_labels: [a]\n  regex: '{re}'\n  action: keep"),
            &[("a", v)],
        )
        .is_some()
    };
    assert!(keep(r"\Q1.5*\E", "1.5*"));
    assert!(!keep(r"\Q1.5*\E", "1x5"));
    assert!(
        keep(r"a{", "a{"),
        "a brace that is not a repetition is literal in Go"
    );
    assert!(keep(r"a{,5}", "a{,5}"));
    assert!(keep(r"a{2}", "aa"));
    assert!(keep(r"x{01}", "x{01}"), "leading zero: not a repetition");
    assert!(keep(r"[[]", "["));
    assert!(keep(r"[a&&b]+", "a&b"), "&& is literal inside a Go class");
    assert!(keep(r"[a~~b]+", "~"));
    assert!(keep(r"[a-c-e]+", "b-e"));
    assert!(keep(r"[]a]+", "]a"));
    assert!(keep(r"\101\x42\x{43}", "ABC"));
    assert!(keep(r"a(?)b", "ab"));
    assert!(keep(r"(?U)a+", "a"));
    // A pattern that escapes the anchoring wrapper behaves as Go's concatenation does:
    // ^(?s:a)|(b)$ matches anything starting with "a" or ending with "b".
    assert!(keep(r"a)|(b", "axx"));
    assert!(keep(r"a)|(b", "xxb"));
    assert!(!keep(r"a)|(b", "xx"));
}

#[test]
fn syntax_go_rejects_is_rejected() {
    for bad in [
        "a**",
        "a+*",
        "a{2}{3}",
        "x{1001}",
        "x{2,1}",
        "(?x)abc",
        "(?u)a",
        "a\\1",
        "[a",
        "(",
        "a\\",
        "\\C",
        "\\e",
        "(?P<a-b>x)",
        "(?P=a)",
        "[z-a]",
        "[[:foo:]]",
        "(?i-)a",
        "\\p{1}",
        "\\p{greek}",
        "\\p{Letter}",
        "\\Qa",
    ] {
        let yaml = format!("- source_labels: [a]\n  regex: '{bad}'\n  action: keep");
        let err = compile_error(&yaml);
        assert!(
            matches!(err.kind, RuleError::InvalidRegex { .. }),
            "{bad:?} should be rejected, got {err}"
        );
    }
}

#[test]
fn regex_errors_read_like_go() {
    let err = compile_error("- source_labels: [a]\n  regex: 'a**'\n  action: keep").to_string();
    assert!(
        err.contains("invalid nested repetition operator: `**`"),
        "{err}"
    );
    let err = compile_error("- source_labels: [a]\n  regex: 'x{1001}'\n  action: keep").to_string();
    assert!(err.contains("invalid repeat count: `{1001}`"), "{err}");
    let err = compile_error("- source_labels: [a]\n  regex: 'a\\1'\n  action: keep").to_string();
    assert!(err.contains("invalid escape sequence: `\\1`"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// §4.6 validation errors

#[test]
fn validation_errors_match_prometheus() {
    let cases: &[(&str, &str)] = &[
        (
            "- action: hashmod\n  target_label: t",
            "relabel configuration for hashmod requires non-zero modulus",
        ),
        (
            "- action: replace",
            "relabel configuration for replace action requires 'target_label' value",
        ),
        (
            "- action: hashmod\n  modulus: 2",
            "relabel configuration for hashmod action requires 'target_label' value",
        ),
        (
            "- action: lowercase",
            "relabel configuration for lowercase action requires 'target_label' value",
        ),
        (
            "- action: uppercase",
            "relabel configuration for uppercase action requires 'target_label' value",
        ),
        (
            "- action: keepequal",
            "relabel configuration for keepequal action requires 'target_label' value",
        ),
        (
            "- action: dropequal",
            "relabel configuration for dropequal action requires 'target_label' value",
        ),
        (
            "- action: lowercase\n  target_label: t\n  replacement: x",
            "'replacement' can not be set for lowercase action",
        ),
        (
            "- action: keepequal\n  target_label: t\n  replacement: x",
            "'replacement' can not be set for keepequal action",
        ),
        (
            "- action: labelmap\n  replacement: ''",
            r#""" is invalid 'replacement' for labelmap action"#,
        ),
        (
            "- action: keepequal\n  target_label: t\n  regex: (.*)",
            "keepequal action requires only 'source_labels' and 'target_label', and no other fields",
        ),
        (
            "- action: dropequal\n  target_label: t\n  separator: ','",
            "dropequal action requires only 'source_labels' and 'target_label', and no other fields",
        ),
        (
            "- action: dropequal\n  target_label: t\n  modulus: 3",
            "dropequal action requires only 'source_labels' and 'target_label', and no other fields",
        ),
        (
            "- action: labeldrop\n  source_labels: [a]",
            "labeldrop action requires only 'regex', and no other fields",
        ),
        (
            "- action: labeldrop\n  source_labels: []",
            "labeldrop action requires only 'regex', and no other fields",
        ),
        (
            "- action: labelkeep\n  target_label: t",
            "labelkeep action requires only 'regex', and no other fields",
        ),
        (
            "- action: labelkeep\n  separator: ','",
            "labelkeep action requires only 'regex', and no other fields",
        ),
        (
            "- action: labelkeep\n  replacement: x",
            "labelkeep action requires only 'regex', and no other fields",
        ),
        (
            "- action: labeldrop\n  modulus: 1",
            "labeldrop action requires only 'regex', and no other fields",
        ),
        (
            "- action: keep\n  source_labels: ['']",
            r#""" is not a valid label name"#,
        ),
        ("- action: keep\n  regex: '('", "invalid 'regex'"),
    ];
    for (yaml, want) in cases {
        let err = compile_error(yaml).to_string();
        assert!(err.contains(want), "{yaml}\n  got:  {err}\n  want: {want}");
    }
    // The error names the rule's position.
    let err = compile_error(
        "- action: keep\n  regex: a\n- target_label: x\n- action: hashmod\n  target_label: t",
    );
    assert_eq!(err.index, 2);
    assert_eq!(err.action, Action::HashMod);
    assert_eq!(err.kind, RuleError::HashModZeroModulus);
    assert!(
        err.to_string()
            .starts_with("relabel rule 2 (action hashmod): "),
        "{err}"
    );
}

#[test]
fn target_label_validity_depends_on_the_scheme() {
    // UTF-8 (Prometheus 3): any non-empty name, with or without $ references.
    for ok in ["foo", "0foo", "foo.bar", "${3}", "0${3}", "-${3}", "ünï"] {
        let yaml = format!("- source_labels: [a]\n  target_label: '{ok}'");
        assert!(Rules::compile(&configs(&yaml)).is_ok(), "{ok}");
    }
    // Legacy: the Prometheus 2 charset, and the `$`-template pattern for templated names.
    for bad in ["0foo", "foo.bar", "0${3}", "-${3}", "$", "ünï"] {
        let yaml = format!("- source_labels: [a]\n  target_label: '{bad}'");
        let err = compile_error_with(&yaml, NameValidation::Legacy);
        assert_eq!(
            err.kind,
            RuleError::InvalidTargetLabel {
                target: bad.to_string(),
                action: Action::Replace
            },
            "{bad}"
        );
    }
    for ok in ["foo", "${1}", "${1}_x", "a$1", "_$name"] {
        let yaml = format!("- source_labels: [a]\n  target_label: '{ok}'");
        assert!(
            Rules::compile_with(&configs(&yaml), NameValidation::Legacy).is_ok(),
            "{ok}"
        );
    }
    let err = compile_error_with(
        "- action: hashmod\n  target_label: 'a-b'\n  modulus: 2",
        NameValidation::Legacy,
    );
    assert!(matches!(err.kind, RuleError::InvalidTargetLabel { .. }));
    let err = compile_error_with(
        "- action: uppercase\n  target_label: '${1}'",
        NameValidation::Legacy,
    );
    assert!(matches!(err.kind, RuleError::InvalidTargetLabel { .. }));
    let err = compile_error_with(
        "- action: labelmap\n  replacement: 'a-$1'",
        NameValidation::Legacy,
    );
    assert!(matches!(err.kind, RuleError::InvalidLabelMapReplacement(_)));
}

#[test]
fn keepequal_uses_the_target_label_verbatim() {
    // Under UTF-8 `$1` is a valid name for keepequal and is not expanded.
    let yaml = "- source_labels: [a]\n  target_label: '$1'\n  action: keepequal";
    assert!(relabel(yaml, &[("a", "x"), ("$1", "x")]).is_some());
    assert!(relabel(yaml, &[("a", "x")]).is_none());
}

// ---------------------------------------------------------------------------------------------
// CRD-shaped rules (prometheus-operator)

#[test]
fn monitor_rules_render_like_the_operator() {
    let crd: Vec<MonitorRelabelConfig> = serde_json::from_str(
        r#"[{"sourceLabels":["__meta_kubernetes_pod_node_name"],"targetLabel":"node","action":"Replace"},
            {"regex":"","action":"LabelDrop"},
            {"sourceLabels":["a"],"targetLabel":"b","replacement":""},
            {"targetLabel":"t","separator":"","futureField":1}]"#,
    )
    .unwrap();
    let prom: Vec<RelabelConfig> = crd.iter().map(|c| c.to_prometheus().unwrap()).collect();
    assert_eq!(prom[0].action, Action::Replace);
    assert_eq!(
        prom[0].source_labels.as_deref(),
        Some(&["__meta_kubernetes_pod_node_name".to_string()][..])
    );
    assert_eq!(prom[1].action, Action::LabelDrop);
    assert_eq!(
        prom[1].regex, None,
        "an empty CRD regex is the default (.*), never the empty regex"
    );
    assert_eq!(prom[1].source_labels, None);
    assert_eq!(
        prom[2].replacement, "",
        "explicit empty replacement is kept"
    );
    assert_eq!(prom[0].replacement, "$1");
    assert_eq!(prom[3].separator, "");
    assert_eq!(prom[0].separator, ";");
    let bad = MonitorRelabelConfig {
        action: "Rewrite".into(),
        ..Default::default()
    };
    assert!(bad.to_prometheus().is_err());
    // labeldrop with an empty-regex CRD rule drops every label, as in Prometheus.
    let r = Rules::compile(&prom[1..2]).unwrap();
    assert_eq!(r.process(&labels(&[("a", "1")])).map(|l| l.len()), Some(0));
}

// ---------------------------------------------------------------------------------------------
// §2.2 / §2.7 end to end: the generated PodMonitor target relabeling

/// The rules prometheus-operator generates for PodMonitor `monitoring/web`,
/// `selector.matchLabels {app: web}`, `podMetricsEndpoints: [{port: metrics}]`, DaemonSet mode.
pub(crate) const PODMONITOR_RULES: &str = include_str!("testdata/podmonitor_rules.yaml");

pub(crate) fn pod_target(container: &str, port_name: &str, port: &str) -> Vec<(String, String)> {
    [
        ("__address__", format!("10.244.1.17:{port}")),
        ("__metrics_path__", "/metrics".into()),
        ("__scheme__", "http".into()),
        ("__scrape_interval__", "30s".into()),
        ("__scrape_timeout__", "10s".into()),
        ("job", "podMonitor/monitoring/web/0".into()),
        ("__meta_kubernetes_namespace", "shop".into()),
        ("__meta_kubernetes_pod_name", "web-5c9f7d-x2k4q".into()),
        ("__meta_kubernetes_pod_ip", "10.244.1.17".into()),
        ("__meta_kubernetes_pod_phase", "Running".into()),
        ("__meta_kubernetes_pod_node_name", "node-a".into()),
        ("__meta_kubernetes_pod_ready", "true".into()),
        ("__meta_kubernetes_pod_label_app", "web".into()),
        ("__meta_kubernetes_pod_labelpresent_app", "true".into()),
        (
            "__meta_kubernetes_pod_label_pod_template_hash",
            "5c9f7d".into(),
        ),
        (
            "__meta_kubernetes_pod_labelpresent_pod_template_hash",
            "true".into(),
        ),
        ("__meta_kubernetes_pod_container_name", container.into()),
        (
            "__meta_kubernetes_pod_container_port_name",
            port_name.into(),
        ),
        ("__meta_kubernetes_pod_container_port_number", port.into()),
        (
            "__meta_kubernetes_pod_container_port_protocol",
            "TCP".into(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

#[test]
fn podmonitor_worked_example() {
    let r = rules(PODMONITOR_RULES);
    let sidecar = Labels::from_pairs(pod_target("sidecar", "http", "8080"));
    assert_eq!(
        r.process(&sidecar),
        None,
        "the port keep rule removes the sidecar target"
    );
    let web = r
        .process(&Labels::from_pairs(pod_target("web", "metrics", "9090")))
        .unwrap();
    let public: BTreeMap<String, String> = map(&web)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("__"))
        .collect();
    assert_eq!(
        Some(public),
        expect(&[
            ("container", "web"),
            ("endpoint", "metrics"),
            ("job", "monitoring/web"),
            ("namespace", "shop"),
            ("pod", "web-5c9f7d-x2k4q"),
        ])
    );
    assert_eq!(
        web.get("__tmp_prometheus_job_name"),
        Some("podMonitor/monitoring/web/0")
    );
    assert_eq!(web.get("__address__"), Some("10.244.1.17:9090"));
    let failed: Vec<(String, String)> = pod_target("web", "metrics", "9090")
        .into_iter()
        .map(|(k, v)| {
            if k == "__meta_kubernetes_pod_phase" {
                (k, "Succeeded".into())
            } else {
                (k, v)
            }
        })
        .collect();
    assert_eq!(r.process(&Labels::from_pairs(failed)), None);
}

#[test]
fn builder_api_reports_drops_and_keeps_the_result_in_place() {
    let r = rules(
        "- source_labels: [a]\n  target_label: b\n- source_labels: [c]\n  regex: x\n  action: drop",
    );
    let mut b = labels(&[("a", "1")]).builder();
    assert!(r.apply(&mut b));
    assert_eq!(b.get("b"), Some("1"));
    let mut b = labels(&[("c", "x")]).builder();
    assert!(!r.apply(&mut b));
    assert!(Rules::empty().apply(&mut b));
    assert!(Rules::empty().is_empty());
}

#[test]
fn rules_are_shareable_across_threads() {
    let r = std::sync::Arc::new(rules(
        "- source_labels: [a]\n  regex: '(?P<x>\\w)(\\w*)'\n  target_label: b\n  replacement: '$2-$x'",
    ));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let r = std::sync::Arc::clone(&r);
            std::thread::spawn(move || {
                for j in 0..200 {
                    let v = format!("v{i}x{j}");
                    let out = r.process(&Labels::from_pairs([("a", v.as_str())])).unwrap();
                    assert_eq!(out.get("b"), Some(format!("{}-v", &v[1..]).as_str()));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Differential check against Go itself

/// `testdata/go_regexp_golden.jsonl` was produced by a small Go 1.19 program: for each pattern
/// `regexp.Compile("^(?s:" + p + ")$")`, then for each input `FindStringSubmatchIndex` and
/// `ExpandString(template)` (null = no match, `err` = compile error); and for each `case`
/// string `strings.ToLower`, `strings.ToUpper` and md5 hashmod 1000. Here the same patterns go
/// through a replace rule (`source_labels: [in]`, `target_label: out`, `replacement:
/// <template>`); the template always expands to a non-empty string, so a missing `out` means
/// no match.
#[test]
fn regex_and_templates_agree_with_go() {
    let golden = include_str!("testdata/go_regexp_golden.jsonl");
    let mut lines = golden.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    let inputs: Vec<String> = serde_json::from_value(header["inputs"].clone()).unwrap();
    let template = header["template"].as_str().unwrap();
    let mut mismatches = Vec::new();
    let mut checked = 0;
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(case) = v["case"].as_str() {
            let yaml = "- source_labels: [in]\n  target_label: l\n  action: lowercase\n- source_labels: [in]\n  target_label: u\n  action: uppercase\n- source_labels: [in]\n  target_label: h\n  action: hashmod\n  modulus: 1000";
            let out = relabel(yaml, &[("in", case)]).unwrap();
            for (key, want) in [("l", &v["lower"]), ("u", &v["upper"])] {
                if out.get(key).map(String::as_str) != want.as_str() {
                    mismatches.push(format!(
                        "case {case:?} {key}: got {:?}, Go {want}",
                        out.get(key)
                    ));
                }
            }
            if Some(out["h"].as_str())
                != v["hashmod1000"].as_u64().map(|h| h.to_string()).as_deref()
            {
                mismatches.push(format!(
                    "case {case:?} hashmod: got {}, Go {}",
                    out["h"], v["hashmod1000"]
                ));
            }
            checked += 1;
            continue;
        }
        let pattern = v["p"].as_str().unwrap();
        let cfg = RelabelConfig {
            source_labels: Some(vec!["in".into()]),
            regex: Some(pattern.into()),
            target_label: "out".into(),
            replacement: template.into(),
            ..RelabelConfig::default()
        };
        let compiled = Rules::compile(std::slice::from_ref(&cfg));
        match (&compiled, v.get("err")) {
            (Err(e), None) => {
                mismatches.push(format!("{pattern:?}: rejected ({e}) but Go compiles it"))
            }
            (Ok(_), Some(e)) => mismatches.push(format!("{pattern:?}: accepted but Go says {e}")),
            (Err(_), Some(_)) => checked += 1,
            (Ok(rules), None) => {
                for (input, want) in inputs.iter().zip(v["r"].as_array().unwrap()) {
                    let out = rules.process(&labels(&[("in", input)])).unwrap();
                    let got = out.get("out");
                    if got != want.as_str() {
                        mismatches
                            .push(format!("{pattern:?} on {input:?}: got {got:?}, Go {want}"));
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches with Go:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert!(checked > 5000, "{checked}");
}
