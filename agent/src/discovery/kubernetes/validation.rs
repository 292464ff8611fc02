//! The operator-side checks that decide whether a monitor is used at all (spec §1.7), and
//! the resolution of each endpoint's HTTP settings (secrets, TLS, proxy) that those checks
//! need anyway. A monitor failing any check is rejected whole, never half-applied.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::SecretKeySelector;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::crd::{
    BasicAuth, EndpointCommon, MonitorRelabelConfig, OAuth2, ProxyConfig, SafeAuthorization,
    SafeTlsConfig, SecretOrConfigMap, TlsConfig,
};
use crate::config::Duration;
use crate::relabel::{RelabelConfig, Rules};

/// Why a monitor was rejected: a small fixed set, used as the `reason` label of
/// `nodemeter_monitors_rejected`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RejectReason {
    /// The spec does not decode (wrong types).
    InvalidSpec,
    /// `selector` is missing or not a valid label selector.
    InvalidSelector,
    /// A duration, scheme, port or limit field has an invalid value.
    InvalidField,
    /// `scrapeTimeout` is greater than the interval.
    TimeoutExceedsInterval,
    /// Auth, TLS or proxy settings that the operator refuses.
    InvalidHttpConfig,
    /// A referenced Secret or ConfigMap key does not exist.
    MissingSecret,
    /// A relabeling or metric relabeling fails Prometheus's relabel validation.
    InvalidRelabeling,
    /// A file path is used while file access through monitors is denied.
    FileAccessDenied,
    /// `scrapeClass` names no configured class.
    UnknownScrapeClass,
}

impl RejectReason {
    /// Every reason, so gauges can be reset for reasons that no longer occur.
    pub const ALL: [RejectReason; 9] = [
        Self::InvalidSpec,
        Self::InvalidSelector,
        Self::InvalidField,
        Self::TimeoutExceedsInterval,
        Self::InvalidHttpConfig,
        Self::MissingSecret,
        Self::InvalidRelabeling,
        Self::FileAccessDenied,
        Self::UnknownScrapeClass,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidSpec => "invalid_spec",
            Self::InvalidSelector => "invalid_selector",
            Self::InvalidField => "invalid_field",
            Self::TimeoutExceedsInterval => "timeout_exceeds_interval",
            Self::InvalidHttpConfig => "invalid_http_config",
            Self::MissingSecret => "missing_secret",
            Self::InvalidRelabeling => "invalid_relabeling",
            Self::FileAccessDenied => "file_access_denied",
            Self::UnknownScrapeClass => "unknown_scrape_class",
        }
    }
}

/// A monitor the agent does not use, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {detail}", reason.as_str())]
pub struct Rejection {
    pub reason: RejectReason,
    /// What was wrong, naming the field (`endpoints[0].scrapeTimeout`).
    pub detail: String,
}

impl Rejection {
    pub fn new(reason: RejectReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

/// Where secret and configmap values come from (the watched stores, or a map in tests).
pub trait SecretSource {
    /// Value of `key` in Secret `namespace/name`.
    fn secret_value(&self, namespace: &str, name: &str, key: &str) -> Option<Vec<u8>>;
    /// Value of `key` in ConfigMap `namespace/name`.
    fn config_map_value(&self, namespace: &str, name: &str, key: &str) -> Option<String>;
}

/// No secrets at all.
pub struct NoSecrets;

impl SecretSource for NoSecrets {
    fn secret_value(&self, _: &str, _: &str, _: &str) -> Option<Vec<u8>> {
        None
    }
    fn config_map_value(&self, _: &str, _: &str, _: &str) -> Option<String> {
        None
    }
}

/// A credential: never printed.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretValue(pub String);

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

/// `authorization` header settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    /// `Bearer` unless set.
    pub type_: String,
    pub credentials: SecretValue,
}

/// Resolved basic auth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BasicAuthValues {
    pub username: String,
    pub password: SecretValue,
}

/// Resolved TLS settings: PEM contents from secrets/configmaps, or file paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsSettings {
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<SecretValue>,
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub server_name: Option<String>,
    pub insecure_skip_verify: bool,
    pub min_version: Option<String>,
    pub max_version: Option<String>,
}

/// Resolved proxy settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxySettings {
    pub proxy_url: Option<String>,
    pub no_proxy: Option<String>,
    pub proxy_from_environment: bool,
    pub proxy_connect_header: BTreeMap<String, Vec<SecretValue>>,
}

/// Resolved OAuth2 client-credentials settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuth2Values {
    pub client_id: String,
    pub client_secret: SecretValue,
    pub token_url: String,
    pub scopes: Vec<String>,
    pub endpoint_params: BTreeMap<String, String>,
    pub tls: TlsSettings,
    pub proxy: ProxySettings,
}

/// Everything the scraper's HTTP client needs for one endpoint, secrets resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpSettings {
    pub authorization: Option<Authorization>,
    pub bearer_token_file: Option<String>,
    pub basic_auth: Option<BasicAuthValues>,
    pub oauth2: Option<OAuth2Values>,
    pub tls: TlsSettings,
    pub proxy: ProxySettings,
    /// Prometheus default true.
    pub follow_redirects: bool,
    /// Prometheus default true.
    pub enable_http2: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            authorization: None,
            bearer_token_file: None,
            basic_auth: None,
            oauth2: None,
            tls: TlsSettings::default(),
            proxy: ProxySettings::default(),
            follow_redirects: true,
            enable_http2: true,
        }
    }
}

/// What validation needs to know beyond the monitor itself: the Prometheus-CR-level values
/// and where secrets come from.
pub struct ValidationContext<'a> {
    /// Global scrape interval (used when an endpoint has none).
    pub scrape_interval: Duration,
    /// `arbitraryFSAccessThroughSMs.deny`.
    pub deny_file_access: bool,
    /// Names of the configured scrape classes.
    pub scrape_classes: &'a [String],
    pub secrets: &'a dyn SecretSource,
}

/// Checks a label selector the way `metav1.LabelSelectorAsSelector` does.
pub fn validate_selector(sel: Option<&LabelSelector>, field: &str) -> Result<(), Rejection> {
    let Some(sel) = sel else {
        return Err(Rejection::new(
            RejectReason::InvalidSelector,
            format!("{field} is required"),
        ));
    };
    for (i, e) in sel.match_expressions.iter().flatten().enumerate() {
        let values = e.values.as_deref().unwrap_or_default();
        let ok = match e.operator.as_str() {
            "In" | "NotIn" => !values.is_empty(),
            "Exists" | "DoesNotExist" => values.is_empty(),
            _ => false,
        };
        if !ok || e.key.is_empty() {
            return Err(Rejection::new(
                RejectReason::InvalidSelector,
                format!(
                    "{field}.matchExpressions[{i}]: operator {:?} with {} value(s) on key {:?}",
                    e.operator,
                    values.len(),
                    e.key
                ),
            ));
        }
    }
    Ok(())
}

/// Parses a Prometheus duration field; empty means unset.
pub fn parse_duration(s: &str, field: &str) -> Result<Option<Duration>, Rejection> {
    if s.is_empty() {
        return Ok(None);
    }
    Duration::parse(s)
        .map(Some)
        .map_err(|e| Rejection::new(RejectReason::InvalidField, format!("{field}: {e}")))
}

/// Parses a `ByteSize` (`1KB` = 1024 bytes).
pub fn parse_byte_size(s: &str) -> Option<u64> {
    if s == "0" {
        return Some(0);
    }
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = s.get(..digits)?.parse().ok()?;
    let exp = match s.get(digits..)? {
        "B" => 0,
        "KB" | "KiB" => 1,
        "MB" | "MiB" => 2,
        "GB" | "GiB" => 3,
        "TB" | "TiB" => 4,
        "PB" | "PiB" => 5,
        "EB" | "EiB" => 6,
        _ => return None,
    };
    n.checked_mul(1u64.checked_shl(10 * exp)?)
}

/// Checks the interval/timeout pair (§1.7 rule 4); returns the effective pair.
pub fn interval_and_timeout(
    common: &EndpointCommon,
    field: &str,
    global_interval: Duration,
    global_timeout: Duration,
) -> Result<(Duration, Duration), Rejection> {
    let interval = parse_duration(&common.interval, &format!("{field}.interval"))?;
    let timeout = parse_duration(&common.scrape_timeout, &format!("{field}.scrapeTimeout"))?;
    let interval = interval.unwrap_or(global_interval);
    match timeout {
        Some(t) if t > interval => Err(Rejection::new(
            RejectReason::TimeoutExceedsInterval,
            format!(
                "{field}.scrapeTimeout {} is greater than the scrape interval {}",
                t, interval
            ),
        )),
        Some(t) => Ok((interval, t)),
        None => Ok((interval, global_timeout.min(interval))),
    }
}

/// Resolves one endpoint's HTTP settings, applying the operator's HTTP-config checks (§1.7
/// rule 3, §1.6). `tls_files` carries the ServiceMonitor-only file variants.
pub fn resolve_http(
    namespace: &str,
    field: &str,
    common: &EndpointCommon,
    tls: Option<&SafeTlsConfig>,
    tls_files: Option<&TlsConfig>,
    bearer_token_file: &str,
    ctx: &ValidationContext<'_>,
) -> Result<HttpSettings, Rejection> {
    let http_err =
        |d: String| Rejection::new(RejectReason::InvalidHttpConfig, format!("{field}: {d}"));
    let methods = [
        common.authorization.is_some(),
        common.basic_auth.is_some(),
        common.oauth2.is_some(),
        common.bearer_token_secret.is_some(),
        !bearer_token_file.is_empty(),
    ];
    if methods.iter().filter(|m| **m).count() > 1 {
        return Err(http_err(
            "at most one of authorization, basicAuth, oauth2, bearerTokenSecret and bearerTokenFile may be set"
                .into(),
        ));
    }
    if let Some(scheme) = &common.scheme
        && !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https")
    {
        return Err(Rejection::new(
            RejectReason::InvalidField,
            format!("{field}.scheme: {scheme:?} is not http or https"),
        ));
    }
    let r = Resolver {
        namespace,
        field,
        secrets: ctx.secrets,
    };
    let mut out = HttpSettings {
        follow_redirects: common.follow_redirects.unwrap_or(true),
        enable_http2: common.enable_http2.unwrap_or(true),
        ..HttpSettings::default()
    };
    if !bearer_token_file.is_empty() {
        if ctx.deny_file_access {
            return Err(Rejection::new(
                RejectReason::FileAccessDenied,
                format!("{field}.bearerTokenFile: file access through monitors is denied"),
            ));
        }
        out.bearer_token_file = Some(bearer_token_file.to_string());
    }
    if let Some(sel) = &common.bearer_token_secret {
        out.authorization = Some(Authorization {
            type_: "Bearer".into(),
            credentials: SecretValue(r.secret_string(sel, "bearerTokenSecret")?),
        });
    }
    if let Some(a) = &common.authorization {
        out.authorization = Some(r.authorization(a)?);
    }
    if let Some(b) = &common.basic_auth {
        out.basic_auth = Some(r.basic_auth(b)?);
    }
    if let Some(o) = &common.oauth2 {
        out.oauth2 = Some(r.oauth2(o)?);
    }
    out.tls = r.tls(tls, tls_files, "tlsConfig", ctx.deny_file_access)?;
    out.proxy = r.proxy(&common.proxy)?;
    Ok(out)
}

struct Resolver<'a> {
    namespace: &'a str,
    field: &'a str,
    secrets: &'a dyn SecretSource,
}

impl Resolver<'_> {
    fn missing(&self, what: &str, detail: String) -> Rejection {
        Rejection::new(
            RejectReason::MissingSecret,
            format!("{}.{what}: {detail}", self.field),
        )
    }

    fn invalid(&self, what: &str, detail: &str) -> Rejection {
        Rejection::new(
            RejectReason::InvalidHttpConfig,
            format!("{}.{what}: {detail}", self.field),
        )
    }

    fn secret_string(&self, sel: &SecretKeySelector, what: &str) -> Result<String, Rejection> {
        let v = self
            .secrets
            .secret_value(self.namespace, &sel.name, &sel.key)
            .ok_or_else(|| {
                self.missing(
                    what,
                    format!(
                        "key {:?} of secret {}/{} not found",
                        sel.key, self.namespace, sel.name
                    ),
                )
            })?;
        String::from_utf8(v).map_err(|_| {
            self.missing(
                what,
                format!(
                    "key {:?} of secret {}/{} is not UTF-8",
                    sel.key, self.namespace, sel.name
                ),
            )
        })
    }

    fn secret_or_config_map(&self, s: &SecretOrConfigMap, what: &str) -> Result<String, Rejection> {
        match (&s.secret, &s.config_map) {
            (Some(sel), None) => self.secret_string(sel, what),
            (None, Some(cm)) => self
                .secrets
                .config_map_value(self.namespace, &cm.name, &cm.key)
                .ok_or_else(|| {
                    self.missing(
                        what,
                        format!(
                            "key {:?} of configmap {}/{} not found",
                            cm.key, self.namespace, cm.name
                        ),
                    )
                }),
            _ => Err(self.invalid(what, "exactly one of secret and configMap must be set")),
        }
    }

    fn authorization(&self, a: &SafeAuthorization) -> Result<Authorization, Rejection> {
        let type_ = a
            .type_
            .clone()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "Bearer".into());
        if type_.eq_ignore_ascii_case("basic") {
            return Err(self.invalid(
                "authorization.type",
                "Basic is not allowed, use basicAuth instead",
            ));
        }
        let Some(sel) = &a.credentials else {
            return Err(self.invalid("authorization.credentials", "required"));
        };
        Ok(Authorization {
            type_,
            credentials: SecretValue(self.secret_string(sel, "authorization.credentials")?),
        })
    }

    fn basic_auth(&self, b: &BasicAuth) -> Result<BasicAuthValues, Rejection> {
        let user = b
            .username
            .as_ref()
            .ok_or_else(|| self.invalid("basicAuth.username", "required"))?;
        let pass = b
            .password
            .as_ref()
            .ok_or_else(|| self.invalid("basicAuth.password", "required"))?;
        Ok(BasicAuthValues {
            username: self.secret_string(user, "basicAuth.username")?,
            password: SecretValue(self.secret_string(pass, "basicAuth.password")?),
        })
    }

    fn oauth2(&self, o: &OAuth2) -> Result<OAuth2Values, Rejection> {
        let secret = o
            .client_secret
            .as_ref()
            .ok_or_else(|| self.invalid("oauth2.clientSecret", "required"))?;
        if !(o.token_url.starts_with("http://") || o.token_url.starts_with("https://"))
            || o.token_url.len() <= "https://".len()
        {
            return Err(self.invalid("oauth2.tokenUrl", "must be an http or https URL"));
        }
        Ok(OAuth2Values {
            client_id: self.secret_or_config_map(&o.client_id, "oauth2.clientId")?,
            client_secret: SecretValue(self.secret_string(secret, "oauth2.clientSecret")?),
            token_url: o.token_url.clone(),
            scopes: o.scopes.clone(),
            endpoint_params: o.endpoint_params.clone(),
            tls: self.tls(o.tls_config.as_ref(), None, "oauth2.tlsConfig", false)?,
            proxy: self.proxy(&o.proxy)?,
        })
    }

    fn tls(
        &self,
        safe: Option<&SafeTlsConfig>,
        files: Option<&TlsConfig>,
        what: &str,
        deny_files: bool,
    ) -> Result<TlsSettings, Rejection> {
        let safe = files.map(|f| &f.safe).or(safe);
        let mut out = TlsSettings::default();
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        if let Some(f) = files {
            out.ca_file = non_empty(&f.ca_file);
            out.cert_file = non_empty(&f.cert_file);
            out.key_file = non_empty(&f.key_file);
            if deny_files
                && (out.ca_file.is_some() || out.cert_file.is_some() || out.key_file.is_some())
            {
                return Err(Rejection::new(
                    RejectReason::FileAccessDenied,
                    format!(
                        "{}.{what}: file access through monitors is denied",
                        self.field
                    ),
                ));
            }
        }
        let Some(s) = safe else {
            return Ok(out);
        };
        if s.ca.is_some() && out.ca_file.is_some() {
            return Err(self.invalid(what, "ca and caFile are mutually exclusive"));
        }
        if s.cert.is_some() && out.cert_file.is_some() {
            return Err(self.invalid(what, "cert and certFile are mutually exclusive"));
        }
        if s.key_secret.is_some() && out.key_file.is_some() {
            return Err(self.invalid(what, "keySecret and keyFile are mutually exclusive"));
        }
        let has_cert = s.cert.is_some() || out.cert_file.is_some();
        let has_key = s.key_secret.is_some() || out.key_file.is_some();
        if has_cert != has_key {
            return Err(self.invalid(
                what,
                "a client cert requires a key and a key requires a cert",
            ));
        }
        let version = |v: &Option<String>, name: &str| -> Result<Option<u8>, Rejection> {
            match v.as_deref() {
                None => Ok(None),
                Some("TLS10") => Ok(Some(0)),
                Some("TLS11") => Ok(Some(1)),
                Some("TLS12") => Ok(Some(2)),
                Some("TLS13") => Ok(Some(3)),
                Some(other) => {
                    Err(self.invalid(what, &format!("{name} {other:?} is not TLS10..TLS13")))
                }
            }
        };
        if let (Some(min), Some(max)) = (
            version(&s.min_version, "minVersion")?,
            version(&s.max_version, "maxVersion")?,
        ) && max < min
        {
            return Err(self.invalid(what, "maxVersion is lower than minVersion"));
        }
        if let Some(ca) = &s.ca {
            out.ca = Some(self.secret_or_config_map(ca, &format!("{what}.ca"))?);
        }
        if let Some(cert) = &s.cert {
            out.cert = Some(self.secret_or_config_map(cert, &format!("{what}.cert"))?);
        }
        if let Some(key) = &s.key_secret {
            out.key = Some(SecretValue(
                self.secret_string(key, &format!("{what}.keySecret"))?,
            ));
        }
        out.server_name = s.server_name.clone().filter(|s| !s.is_empty());
        out.insecure_skip_verify = s.insecure_skip_verify.unwrap_or(false);
        out.min_version = s.min_version.clone();
        out.max_version = s.max_version.clone();
        Ok(out)
    }

    fn proxy(&self, p: &ProxyConfig) -> Result<ProxySettings, Rejection> {
        let url = p.proxy_url.as_deref().filter(|u| !u.is_empty());
        if let Some(u) = url {
            let ok = ["http://", "https://", "socks5://"]
                .iter()
                .any(|s| u.strip_prefix(s).is_some_and(|rest| !rest.is_empty()));
            if !ok {
                return Err(self.invalid("proxyUrl", "must match ^(http|https|socks5)://.+$"));
            }
        }
        let no_proxy = p.no_proxy.as_deref().filter(|u| !u.is_empty());
        let from_env = p.proxy_from_environment.unwrap_or(false);
        if no_proxy.is_some() && url.is_none() {
            return Err(self.invalid("noProxy", "requires proxyUrl"));
        }
        if from_env && (url.is_some() || no_proxy.is_some()) {
            return Err(self.invalid("proxyFromEnvironment", "excludes proxyUrl and noProxy"));
        }
        if !p.proxy_connect_header.is_empty() && url.is_none() && !from_env {
            return Err(self.invalid(
                "proxyConnectHeader",
                "requires proxyUrl or proxyFromEnvironment",
            ));
        }
        let mut headers = BTreeMap::new();
        for (name, sels) in &p.proxy_connect_header {
            let mut values = Vec::new();
            for sel in sels {
                values.push(SecretValue(self.secret_string(sel, "proxyConnectHeader")?));
            }
            headers.insert(name.clone(), values);
        }
        Ok(ProxySettings {
            proxy_url: url.map(str::to_string),
            no_proxy: no_proxy.map(str::to_string),
            proxy_from_environment: from_env,
            proxy_connect_header: headers,
        })
    }
}

/// A monitor's rule as the operator renders it, checked with Prometheus's relabel validation
/// (spec §4.6) by the relabel engine itself.
pub fn validate_relabel(r: &MonitorRelabelConfig, field: &str) -> Result<RelabelConfig, Rejection> {
    let err = |d: String| Rejection::new(RejectReason::InvalidRelabeling, format!("{field}: {d}"));
    let rule = r
        .to_prometheus()
        .map_err(|e| err(format!("unknown relabel action {:?}", e.0)))?;
    compiles(&rule).map_err(err)?;
    Ok(rule)
}

/// How many rule outcomes [`compiles`] remembers per thread before starting over.
const COMPILED_MEMO_LIMIT: usize = 10_000;

thread_local! {
    /// Outcomes of compiling single rules, by the rule's text: every recomputation validates
    /// every selected monitor again, and compiling their regexes was most of its cost.
    static COMPILED: std::cell::RefCell<std::collections::HashMap<String, Result<(), String>>> =
        std::cell::RefCell::default();
}

fn compiles(rule: &RelabelConfig) -> Result<(), String> {
    let key = format!("{rule:?}");
    COMPILED.with_borrow_mut(|memo| {
        if let Some(outcome) = memo.get(&key) {
            return outcome.clone();
        }
        let outcome = Rules::compile(std::slice::from_ref(rule))
            .map(|_| ())
            .map_err(|e| e.kind.to_string());
        if memo.len() >= COMPILED_MEMO_LIMIT {
            memo.clear();
        }
        memo.insert(key, outcome.clone());
        outcome
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_are_powers_of_two() {
        assert_eq!(parse_byte_size("1KB"), Some(1024));
        assert_eq!(parse_byte_size("10MiB"), Some(10 << 20));
        assert_eq!(parse_byte_size("0"), Some(0));
        assert_eq!(parse_byte_size("12"), None);
        assert_eq!(parse_byte_size("1kb"), None);
    }

    #[test]
    fn relabel_validation_follows_prometheus() {
        let rc = |action: &str| MonitorRelabelConfig {
            action: action.into(),
            ..MonitorRelabelConfig::default()
        };
        assert!(validate_relabel(&rc("Keep"), "r").is_ok());
        assert!(validate_relabel(&rc("labeldrop"), "r").is_ok());
        let e = validate_relabel(&rc("explode"), "r").unwrap_err();
        assert_eq!(e.reason, RejectReason::InvalidRelabeling);
        assert!(e.detail.contains("unknown relabel action"), "{e}");
        // replace needs a target label.
        assert!(validate_relabel(&rc("replace"), "r").is_err());
        assert!(validate_relabel(&rc(""), "r").is_err());
        assert!(validate_relabel(&rc("hashmod"), "r").is_err());
        let mut bad_regex = rc("keep");
        bad_regex.regex = "(".into();
        assert!(validate_relabel(&bad_regex, "r").is_err());
        let mut labeldrop_with_source = rc("labeldrop");
        labeldrop_with_source.source_labels = vec!["a".into()];
        assert!(validate_relabel(&labeldrop_with_source, "r").is_err());
        let mut lower = rc("lowercase");
        lower.target_label = "x".into();
        assert!(validate_relabel(&lower, "r").is_ok());
        lower.replacement = Some("y".into());
        assert!(validate_relabel(&lower, "r").is_err());
        let mut labelmap = rc("labelmap");
        // Prometheus 3 validates names as UTF-8: any non-empty replacement is a valid name.
        labelmap.replacement = Some("a-b".into());
        assert!(validate_relabel(&labelmap, "r").is_ok());
        labelmap.replacement = Some(String::new());
        assert!(validate_relabel(&labelmap, "r").is_err());
    }

    #[test]
    fn timeout_above_interval_is_rejected_and_missing_timeout_is_capped() {
        let ep = |i: &str, t: &str| EndpointCommon {
            interval: i.into(),
            scrape_timeout: t.into(),
            ..EndpointCommon::default()
        };
        let g = (Duration::from_secs(30), Duration::from_secs(10));
        let e = interval_and_timeout(&ep("5s", "6s"), "endpoints[0]", g.0, g.1).unwrap_err();
        assert_eq!(e.reason, RejectReason::TimeoutExceedsInterval);
        assert_eq!(
            interval_and_timeout(&ep("5s", ""), "e", g.0, g.1).unwrap(),
            (Duration::from_secs(5), Duration::from_secs(5))
        );
        assert_eq!(
            interval_and_timeout(&ep("", ""), "e", g.0, g.1).unwrap(),
            (Duration::from_secs(30), Duration::from_secs(10))
        );
        // An empty interval compares against the global one.
        assert!(interval_and_timeout(&ep("", "31s"), "e", g.0, g.1).is_err());
        assert_eq!(
            interval_and_timeout(&ep("1x", ""), "e", g.0, g.1)
                .unwrap_err()
                .reason,
            RejectReason::InvalidField
        );
    }

    struct OneSecret;
    impl SecretSource for OneSecret {
        fn secret_value(&self, ns: &str, name: &str, key: &str) -> Option<Vec<u8>> {
            (ns == "mon" && name == "creds" && key == "token").then(|| b"s3cret".to_vec())
        }
        fn config_map_value(&self, _: &str, _: &str, _: &str) -> Option<String> {
            None
        }
    }

    fn ctx(secrets: &dyn SecretSource) -> ValidationContext<'_> {
        ValidationContext {
            scrape_interval: Duration::from_secs(30),
            deny_file_access: false,
            scrape_classes: &[],
            secrets,
        }
    }

    fn sel(name: &str, key: &str) -> SecretKeySelector {
        SecretKeySelector {
            name: name.into(),
            key: key.into(),
            optional: None,
        }
    }

    #[test]
    fn secrets_resolve_from_the_monitor_namespace_and_missing_keys_reject() {
        let common = EndpointCommon {
            bearer_token_secret: Some(sel("creds", "token")),
            ..EndpointCommon::default()
        };
        let h = resolve_http("mon", "e", &common, None, None, "", &ctx(&OneSecret)).unwrap();
        let a = h.authorization.unwrap();
        assert_eq!(
            (a.type_.as_str(), a.credentials.0.as_str()),
            ("Bearer", "s3cret")
        );
        assert_eq!(format!("{:?}", a.credentials), "<secret>");
        let e = resolve_http("other", "e", &common, None, None, "", &ctx(&OneSecret)).unwrap_err();
        assert_eq!(e.reason, RejectReason::MissingSecret);
        assert!(e.detail.contains("other/creds"), "{e}");
    }

    #[test]
    fn auth_methods_are_mutually_exclusive_and_basic_authorization_is_refused() {
        let both = EndpointCommon {
            bearer_token_secret: Some(sel("creds", "token")),
            basic_auth: Some(BasicAuth::default()),
            ..EndpointCommon::default()
        };
        let e = resolve_http("mon", "e", &both, None, None, "", &ctx(&OneSecret)).unwrap_err();
        assert_eq!(e.reason, RejectReason::InvalidHttpConfig);
        let basic = EndpointCommon {
            authorization: Some(SafeAuthorization {
                type_: Some("basic".into()),
                credentials: Some(sel("creds", "token")),
            }),
            ..EndpointCommon::default()
        };
        let e = resolve_http("mon", "e", &basic, None, None, "", &ctx(&OneSecret)).unwrap_err();
        assert!(e.detail.contains("Basic is not allowed"), "{e}");
    }

    #[test]
    fn tls_and_proxy_rules() {
        let cert_without_key = SafeTlsConfig {
            cert: Some(SecretOrConfigMap {
                secret: Some(sel("creds", "token")),
                config_map: None,
            }),
            ..SafeTlsConfig::default()
        };
        let common = EndpointCommon::default();
        assert!(
            resolve_http(
                "mon",
                "e",
                &common,
                Some(&cert_without_key),
                None,
                "",
                &ctx(&OneSecret)
            )
            .is_err()
        );
        let versions = SafeTlsConfig {
            min_version: Some("TLS13".into()),
            max_version: Some("TLS12".into()),
            ..SafeTlsConfig::default()
        };
        assert!(
            resolve_http(
                "mon",
                "e",
                &common,
                Some(&versions),
                None,
                "",
                &ctx(&NoSecrets)
            )
            .is_err()
        );
        let no_proxy_alone = EndpointCommon {
            proxy: ProxyConfig {
                no_proxy: Some("10.0.0.0/8".into()),
                ..ProxyConfig::default()
            },
            ..EndpointCommon::default()
        };
        assert!(
            resolve_http(
                "mon",
                "e",
                &no_proxy_alone,
                None,
                None,
                "",
                &ctx(&NoSecrets)
            )
            .is_err()
        );
        let files = TlsConfig {
            ca_file: "/etc/ca.crt".into(),
            ..TlsConfig::default()
        };
        let h = resolve_http(
            "mon",
            "e",
            &common,
            None,
            Some(&files),
            "",
            &ctx(&NoSecrets),
        )
        .unwrap();
        assert_eq!(h.tls.ca_file.as_deref(), Some("/etc/ca.crt"));
        let deny = ValidationContext {
            deny_file_access: true,
            ..ctx(&NoSecrets)
        };
        assert_eq!(
            resolve_http("mon", "e", &common, None, Some(&files), "", &deny)
                .unwrap_err()
                .reason,
            RejectReason::FileAccessDenied
        );
    }
}
