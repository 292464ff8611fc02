use super::*;

fn located(text: &str) -> Located {
    match Config::from_yaml(text, "agent.yaml") {
        Err(ConfigError::Invalid(l)) => *l,
        other => panic!("expected a located error, got {other:?}"),
    }
}

#[test]
fn the_embedded_default_config_is_the_default() {
    assert_eq!(Config::embedded_default().unwrap(), Config::default());
}

#[test]
fn every_key_of_the_config_is_documented_in_the_embedded_default() {
    // The embedded file doubles as reference documentation: a key added to a struct without
    // being added (with its doc comment) to default.yaml fails here.
    fn keys(v: &serde_yaml::Value, prefix: &str, out: &mut Vec<String>) {
        if let serde_yaml::Value::Mapping(m) = v {
            for (k, v) in m {
                let k = format!("{prefix}{}", k.as_str().unwrap_or("?"));
                out.push(k.clone());
                keys(v, &format!("{k}."), out);
            }
        }
    }
    let mut from_struct = Vec::new();
    keys(
        &serde_yaml::to_value(Config::default()).unwrap(),
        "",
        &mut from_struct,
    );
    let mut from_file = Vec::new();
    keys(
        &serde_yaml::from_str(DEFAULT_CONFIG_YAML).unwrap(),
        "",
        &mut from_file,
    );
    from_struct.sort();
    from_file.sort();
    assert_eq!(from_struct, from_file);
    let lines: Vec<&str> = DEFAULT_CONFIG_YAML.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') || t.starts_with("- ") {
            continue;
        }
        assert!(
            i > 0 && lines[i - 1].trim_start().starts_with('#'),
            "default.yaml line {}: `{t}` has no doc comment above it",
            i + 1
        );
    }
}

#[test]
fn an_empty_file_is_all_defaults() {
    assert_eq!(Config::from_yaml("", "x").unwrap(), Config::default());
    assert_eq!(
        Config::from_yaml("# nothing\n", "x").unwrap(),
        Config::default()
    );
}

#[test]
fn an_unknown_key_names_file_line_and_key() {
    let e = located("server:\n  listen: 127.0.0.1:1\n  colour: blue\n");
    assert_eq!((e.file.as_str(), e.line), ("agent.yaml", Some(3)));
    assert_eq!(e.path, "server.colour");
    assert!(
        e.message.contains("unknown field `colour`"),
        "{}",
        e.message
    );
    assert_eq!(
        e.to_string(),
        format!("agent.yaml:3:3: server.colour: {}", e.message)
    );
}

#[test]
fn a_wrong_type_names_file_line_and_key() {
    let e = located("cgroup:\n  enabled: true\n  interval: often\n");
    assert_eq!(e.line, Some(3));
    assert_eq!(e.path, "cgroup.interval");
    assert!(e.message.contains("not a valid duration"), "{}", e.message);

    let e = located("pipeline:\n  channel_capacity: -3\n");
    assert_eq!(
        (e.line, e.path.as_str()),
        (Some(2), "pipeline.channel_capacity")
    );

    let e = located("server:\n  listen: nowhere\n");
    assert_eq!((e.line, e.path.as_str()), (Some(2), "server.listen"));
}

#[test]
fn semantic_errors_are_located_too() {
    let e = located("global:\n  scrape_interval: 5s\n  scrape_timeout: 10s\n");
    assert_eq!(
        (e.line, e.path.as_str()),
        (Some(3), "global.scrape_timeout")
    );
    let e = located("logging:\n  level: \"nodemeter=loud\"\n");
    assert_eq!((e.line, e.path.as_str()), (Some(2), "logging.level"));
}

#[test]
fn syntax_errors_carry_the_parser_location() {
    let e = located("server:\n  listen: [\n");
    assert!(e.line.is_some(), "{e}");
}

#[test]
fn prometheus_sections_not_yet_supported_are_named() {
    let e = located(
        "scrape_configs:\n  - job_name: x\n    kubernetes_sd_configs:\n      - role: pod\n",
    );
    assert_eq!(e.line, Some(3), "{e}");
    assert!(e.path.contains("kubernetes_sd_configs"), "{e}");
    assert!(e.message.contains("not supported"), "{e}");
}

#[test]
fn unreadable_file_is_a_read_error() {
    let e = Config::load(Path::new("/nonexistent/nodemeter.yaml")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/nodemeter.yaml: cannot read:"),
        "{e}"
    );
}

#[test]
fn remote_write_errors_name_the_entry_and_key() {
    let e = located(
        "remote_write:\n  - url: http://a/\n  - url: http://b/\n    queue_config:\n      max_shards: 0\n",
    );
    assert_eq!(e.path, "remote_write[1].queue_config.max_shards");
    let e = located(
        "remote_write:\n  - url: http://a/\n    write_relabel_configs:\n      - action: keep\n      - action: hashmod\n        target_label: x\n",
    );
    assert_eq!(e.path, "remote_write[0].write_relabel_configs[1]");
    assert!(e.message.contains("modulus"), "{}", e.message);
}

#[test]
fn scraped_series_on_metrics_follow_whether_remote_write_is_configured_unless_forced() {
    use super::ScrapedSeries;
    let parse = |v: &str| {
        Config::from_yaml(&format!("exposition:\n  scraped_series: {v}\n"), "x")
            .map(|c| c.exposition.scraped_series)
    };
    assert_eq!(parse("auto").unwrap(), ScrapedSeries::Auto);
    assert_eq!(parse("true").unwrap(), ScrapedSeries::Always);
    assert_eq!(parse("false").unwrap(), ScrapedSeries::Never);
    let err = parse("sometimes").unwrap_err().to_string();
    assert!(err.contains("exposition.scraped_series"), "{err}");
    assert!(ScrapedSeries::Auto.served(false) && !ScrapedSeries::Auto.served(true));
    assert!(ScrapedSeries::Always.served(true) && !ScrapedSeries::Never.served(false));
}
