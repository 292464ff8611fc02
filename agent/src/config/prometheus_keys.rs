//! Prometheus configuration keys nodemeter does not implement. A Prometheus config pasted into
//! nodemeter must never lose meaning silently: such a key fails the load with a message that
//! names it as a Prometheus setting not supported yet, rather than as a typo.
//!
//! Keys the sections' own types accept only to reject them in validation (`scrape_configs`'
//! service discoveries, `global`'s histogram settings) are not repeated here; this list
//! covers the sections whose types refuse unknown keys while parsing.

/// Paths with list indices removed (`remote_write.sigv4`, not `remote_write[0].sigv4`).
const NOT_SUPPORTED: &[&str] = &[
    // remote_write: authentication and client settings of Prometheus's HTTP client.
    "remote_write.sigv4",
    "remote_write.azuread",
    "remote_write.google_iam",
    "remote_write.oauth2",
    "remote_write.no_proxy",
    "remote_write.proxy_from_environment",
    "remote_write.proxy_connect_header",
    "remote_write.http_headers",
    "remote_write.enable_http2",
    "remote_write.basic_auth.username_file",
    "remote_write.basic_auth.username_ref",
    "remote_write.basic_auth.password_ref",
    "remote_write.authorization.credentials_ref",
    "remote_write.tls_config.ca",
    "remote_write.tls_config.cert",
    "remote_write.tls_config.key",
    "remote_write.tls_config.ca_ref",
    "remote_write.tls_config.cert_ref",
    "remote_write.tls_config.key_ref",
    "remote_write.tls_config.max_version",
    // scrape_configs: secret references (Prometheus's secret manager).
    "scrape_configs.basic_auth.username_ref",
    "scrape_configs.basic_auth.password_ref",
    "scrape_configs.authorization.credentials_ref",
    "scrape_configs.tls_config.ca_ref",
    "scrape_configs.tls_config.cert_ref",
    "scrape_configs.tls_config.key_ref",
    "scrape_configs.tls_config.max_version",
    // Top-level sections of a Prometheus server config an agent has no use for.
    "rule_files",
    "alerting",
    "remote_read",
    "storage",
    "tracing",
    "otlp",
    "runtime",
];

/// The message for an unknown key at `path` when it is a Prometheus key nodemeter lacks.
pub fn not_supported_message(path: &str) -> Option<String> {
    let mut plain = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => in_index = true,
            ']' => in_index = false,
            c if !in_index => plain.push(c),
            _ => {}
        }
    }
    NOT_SUPPORTED.contains(&plain.as_str()).then(|| {
        let key = plain.rsplit('.').next().unwrap_or(&plain);
        format!(
            "{key:?} is a Prometheus setting that this version of nodemeter does not support yet"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_indices_do_not_matter_and_other_keys_are_not_claimed() {
        assert!(
            not_supported_message("remote_write[2].sigv4")
                .is_some_and(|m| m.starts_with("\"sigv4\" is a Prometheus setting"))
        );
        assert!(not_supported_message("remote_write[0].tls_config.max_version").is_some());
        assert!(not_supported_message("remote_write[0].colour").is_none());
        assert!(not_supported_message("server.sigv4").is_none());
    }
}
