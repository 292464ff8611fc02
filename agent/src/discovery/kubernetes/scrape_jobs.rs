//! Discovery's scrape groups → the scraper's jobs. Each monitor endpoint becomes the
//! `scrape_configs[]` entry prometheus-operator would generate for it (spec §1.9), compiled by
//! the same [`Job::new`] as the config file's jobs, so a monitor target is scraped exactly like
//! a static one.
//!
//! A monitor whose endpoints cannot all be turned into jobs (a setting the scraper cannot
//! honour, rules that do not compile, an unreadable certificate) is left out whole, with a log
//! line when that starts or stops and the `nodemeter_monitors_rejected` gauge.
//!
//! Jobs are reused (same `Arc`) while an endpoint's settings are unchanged: the scrape manager
//! restarts a target's loop when its job changes, so rebuilding every job on every cluster
//! event would reset every scrape's timing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use super::crd::MonitorKind;
use super::targets::{MonitorRef, ScrapeGroup as DiscoveredGroup};
use crate::config::GlobalConfig;
use crate::sources::scrape::config::{
    Authorization, BasicAuth, ByteSize, Scheme, ScrapeConfig, ScrapeProtocol, Secret, TlsConfig,
};
use crate::sources::scrape::{GroupsReceiver, Job, JobError, ScrapeGroup};
use crate::telemetry::registry;

/// Why a monitor endpoint could not become a scrape job.
#[derive(Debug, thiserror::Error)]
pub enum JobConversionError {
    /// The endpoint asks for something the scraper does not do; scraping it without would
    /// silently change its data.
    #[error("{0} is not supported by this version of nodemeter")]
    Unsupported(&'static str),
    /// The generated scrape config fails the checks a config file's entry must pass.
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
    /// Compiling the job failed (relabel rules, TLS material, HTTP client).
    #[error(transparent)]
    Job(#[from] JobError),
}

impl JobConversionError {
    /// The `reason` label of `nodemeter_monitors_rejected` for this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unsupported(_) => "unsupported_setting",
            Self::Invalid { .. } | Self::Job(_) => "invalid_scrape_config",
        }
    }

    /// Every reason this module reports, so gauges drop back to zero.
    pub const REASONS: [&'static str; 2] = ["unsupported_setting", "invalid_scrape_config"];
}

/// The `scrape_configs[]` entry of one monitor endpoint, with secrets inlined.
pub fn scrape_config(group: &DiscoveredGroup) -> Result<ScrapeConfig, JobConversionError> {
    use JobConversionError::Unsupported;
    let mut c = ScrapeConfig::new(&group.job_name);
    c.scrape_interval = Some(group.scrape_interval);
    c.scrape_timeout = Some(group.scrape_timeout);
    c.metrics_path = group.metrics_path.clone();
    c.scheme = match group.scheme.as_str() {
        "https" => Scheme::Https,
        _ => Scheme::Http,
    };
    c.params = group.params.clone();
    c.honor_labels = group.honor_labels;
    c.honor_timestamps = group.honor_timestamps;
    c.track_timestamps_staleness = group.track_timestamps_staleness;

    // The scraper has no protobuf parser: leaving PrometheusProto out of `Accept` makes a
    // target answer in text, which carries the same classic series.
    let protocols: Vec<ScrapeProtocol> = group
        .scrape_protocols
        .iter()
        .filter_map(|name| protocol(name))
        .filter(|p| *p != ScrapeProtocol::PrometheusProto)
        .collect();
    c.scrape_protocols = (!protocols.is_empty()).then_some(protocols);
    c.fallback_scrape_protocol = group
        .fallback_scrape_protocol
        .as_deref()
        .and_then(protocol)
        .filter(|p| *p != ScrapeProtocol::PrometheusProto);
    if group.scrape_native_histograms == Some(true) {
        return Err(Unsupported("scrapeNativeHistograms"));
    }
    if group.convert_classic_histograms_to_nhcb == Some(true) {
        return Err(Unsupported("convertClassicHistogramsToNhcb"));
    }
    // `scrapeClassicHistograms` and `nativeHistogramBucketLimit` only matter when native
    // histograms are scraped, which they never are here: classic series always are.

    let l = &group.limits;
    c.sample_limit = l.sample_limit.unwrap_or(0);
    c.target_limit = l.target_limit.unwrap_or(0);
    c.label_limit = l.label_limit.unwrap_or(0);
    c.label_name_length_limit = l.label_name_length_limit.unwrap_or(0);
    c.label_value_length_limit = l.label_value_length_limit.unwrap_or(0);
    c.body_size_limit = ByteSize(l.body_size_limit.unwrap_or(0));
    c.keep_dropped_targets = l.keep_dropped_targets.unwrap_or(0);

    let h = &group.http;
    if h.oauth2.is_some() {
        return Err(Unsupported("oauth2"));
    }
    c.authorization = h.authorization.as_ref().map(|a| Authorization {
        kind: a.type_.clone(),
        credentials: Secret(a.credentials.0.clone()),
        credentials_file: String::new(),
    });
    c.bearer_token_file = h.bearer_token_file.clone();
    c.basic_auth = h.basic_auth.as_ref().map(|b| BasicAuth {
        username: b.username.clone(),
        password: Secret(b.password.0.clone()),
        ..BasicAuth::default()
    });
    let t = &h.tls;
    // A maximum of TLS 1.3 is no restriction; anything lower the client cannot enforce.
    if t.max_version.as_deref().is_some_and(|v| v != "TLS13") {
        return Err(Unsupported("tlsConfig.maxVersion below TLS13"));
    }
    c.tls_config = TlsConfig {
        ca_file: t.ca_file.clone().unwrap_or_default(),
        ca: t.ca.clone().unwrap_or_default(),
        cert_file: t.cert_file.clone().unwrap_or_default(),
        cert: t.cert.clone().unwrap_or_default(),
        key_file: t.key_file.clone().unwrap_or_default(),
        key: Secret(t.key.as_ref().map(|k| k.0.clone()).unwrap_or_default()),
        server_name: t.server_name.clone().unwrap_or_default(),
        insecure_skip_verify: t.insecure_skip_verify,
        min_version: t.min_version.clone().unwrap_or_default(),
    };
    let p = &h.proxy;
    if p.no_proxy.is_some() {
        return Err(Unsupported("noProxy"));
    }
    if p.proxy_from_environment {
        return Err(Unsupported("proxyFromEnvironment"));
    }
    if !p.proxy_connect_header.is_empty() {
        return Err(Unsupported("proxyConnectHeader"));
    }
    c.proxy_url = p.proxy_url.clone();
    c.follow_redirects = h.follow_redirects;
    c.enable_http2 = h.enable_http2;

    c.relabel_configs = group.relabel_configs.clone();
    c.metric_relabel_configs = group.metric_relabel_configs.clone();
    Ok(c)
}

fn protocol(name: &str) -> Option<ScrapeProtocol> {
    ScrapeProtocol::NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, p)| *p)
}

/// A monitor left out, and why.
#[derive(Debug)]
pub struct RejectedMonitor {
    pub monitor: MonitorRef,
    /// The first endpoint that failed.
    pub job_name: String,
    pub error: JobConversionError,
}

/// Turns discovery's groups into scrape groups, keeping each job for as long as its settings
/// do not change.
pub struct JobBuilder {
    global: GlobalConfig,
    max_body_size: u64,
    jobs: HashMap<String, (ScrapeConfig, Arc<Job>)>,
    /// Rejections already logged, by monitor, with their message.
    logged: BTreeMap<MonitorRef, String>,
}

/// The outcome of one conversion.
#[derive(Debug, Default)]
pub struct Converted {
    pub groups: Vec<ScrapeGroup>,
    pub rejected: Vec<RejectedMonitor>,
}

impl JobBuilder {
    /// `global` supplies nothing a monitor leaves unset today (discovery resolves every
    /// default) but keeps the jobs consistent with the config file's; `max_body_size` is the
    /// agent's ceiling for endpoints without `bodySizeLimit`.
    pub fn new(global: GlobalConfig, max_body_size: u64) -> Self {
        Self {
            global,
            max_body_size,
            jobs: HashMap::new(),
            logged: BTreeMap::new(),
        }
    }

    fn job(&self, group: &DiscoveredGroup) -> Result<Arc<Job>, JobConversionError> {
        let config = scrape_config(group)?;
        if let Some((cached, job)) = self.jobs.get(&group.job_name)
            && *cached == config
        {
            return Ok(Arc::clone(job));
        }
        if let Some((key, message)) = config.validate(&self.global).into_iter().next() {
            return Err(JobConversionError::Invalid { key, message });
        }
        Ok(Arc::new(Job::new(
            &config,
            &self.global,
            self.max_body_size,
        )?))
    }

    /// Converts every group; a monitor with any failing endpoint contributes no group.
    pub fn convert(&mut self, discovered: &[DiscoveredGroup]) -> Converted {
        let mut built = Vec::with_capacity(discovered.len());
        let mut failed: BTreeSet<&MonitorRef> = BTreeSet::new();
        let mut out = Converted::default();
        for g in discovered {
            if failed.contains(&g.monitor) {
                continue;
            }
            match self.job(g) {
                Ok(job) => built.push((g, job)),
                Err(error) => {
                    failed.insert(&g.monitor);
                    out.rejected.push(RejectedMonitor {
                        monitor: g.monitor.clone(),
                        job_name: g.job_name.clone(),
                        error,
                    });
                }
            }
        }
        let mut jobs = HashMap::with_capacity(built.len());
        for (g, job) in built {
            if failed.contains(&g.monitor) {
                continue;
            }
            jobs.insert(g.job_name.clone(), (job.config.clone(), Arc::clone(&job)));
            out.groups.push(ScrapeGroup {
                job,
                targets: g.targets.clone(),
            });
        }
        self.jobs = jobs;
        self.report(&out.rejected);
        out
    }

    fn report(&mut self, rejected: &[RejectedMonitor]) {
        let r = registry();
        for kind in [MonitorKind::PodMonitor, MonitorKind::ServiceMonitor] {
            for reason in JobConversionError::REASONS {
                let n = rejected
                    .iter()
                    .filter(|m| m.monitor.kind == kind && m.error.reason() == reason)
                    .count();
                r.gauge(
                    "nodemeter_monitors_rejected",
                    "Monitors currently not used because prometheus-operator would reject them.",
                    &[("kind", kind.as_str()), ("reason", reason)],
                )
                .set(n as f64);
            }
        }
        // Log a rejection when it appears or changes, not on every cluster event.
        let now: BTreeMap<MonitorRef, String> = rejected
            .iter()
            .map(|m| (m.monitor.clone(), format!("{}: {}", m.job_name, m.error)))
            .collect();
        for (monitor, message) in &now {
            if self.logged.get(monitor) != Some(message) {
                warn!(%monitor, "monitor not scraped, none of its endpoints is used: {message}");
            }
        }
        for monitor in self.logged.keys() {
            if !now.contains_key(monitor) {
                info!(%monitor, "monitor scraped again");
            }
        }
        self.logged = now;
    }
}

/// Runs `builder` on every change of `discovered` until `shutdown`; the returned channel is
/// a provider for [`crate::sources::scrape::ScrapeSource::add_provider`].
pub fn spawn(
    mut discovered: watch::Receiver<Arc<Vec<DiscoveredGroup>>>,
    mut builder: JobBuilder,
    shutdown: CancellationToken,
) -> (GroupsReceiver, JoinHandle<()>) {
    let first = builder.convert(&discovered.borrow_and_update()).groups;
    let (tx, rx) = watch::channel(first);
    let task = tokio::spawn(
        async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    changed = discovered.changed() => if changed.is_err() { return },
                }
                let groups = Arc::clone(&discovered.borrow_and_update());
                let converted = builder.convert(&groups);
                if tx.send(converted.groups).is_err() {
                    return;
                }
            }
        }
        .instrument(info_span!("kubernetes_scrape_jobs")),
    );
    (rx, task)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests;
