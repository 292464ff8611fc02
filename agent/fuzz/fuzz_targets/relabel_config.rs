//! Arbitrary bytes as a YAML rule list: parsing, compiling and applying must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nodemeter::model::Labels;
use nodemeter::relabel::{NameValidation, RelabelConfig, Rules};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(configs) = serde_yaml::from_str::<Vec<RelabelConfig>>(text) else {
        return;
    };
    let input = Labels::from_pairs([
        ("__name__", "http_requests_total"),
        ("__address__", "10.244.1.17:9090"),
        ("__meta_kubernetes_pod_label_app", "web"),
        ("__meta_kubernetes_pod_labelpresent_app", "true"),
        ("job", "podMonitor/monitoring/web/0"),
        ("env", "prod"),
        ("path", "/api/v1/ünïcode\nline"),
        ("le", "0.25"),
    ]);
    for scheme in [NameValidation::Utf8, NameValidation::Legacy] {
        if let Ok(rules) = Rules::compile_with(&configs, scheme) {
            let _ = rules.process(&input);
            let _ = rules.process(&Labels::empty());
        }
    }
});
