//! From discovered label sets to scrape targets: the labels Prometheus adds before target
//! relabeling, `relabel_configs`, the checks and cleanup after it, and the URL.

use std::hash::Hasher;
use std::sync::Arc;
use std::time::Duration;

use super::job::Job;
use crate::config::Duration as PromDuration;
use crate::model::{Labels, LabelsBuilder};

pub const ADDRESS: &str = "__address__";
pub const SCHEME: &str = "__scheme__";
pub const METRICS_PATH: &str = "__metrics_path__";
pub const SCRAPE_INTERVAL: &str = "__scrape_interval__";
pub const SCRAPE_TIMEOUT: &str = "__scrape_timeout__";
pub const PARAM_PREFIX: &str = "__param_";

/// Targets discovered for one job by one provider (static list, file, a Kubernetes monitor):
/// the unit discovery hands to the scrape manager.
#[derive(Clone, Debug)]
pub struct ScrapeGroup {
    pub job: Arc<Job>,
    /// Label sets before relabeling: `__address__`, group labels and `__meta_*` labels.
    pub targets: Vec<Labels>,
}

/// A target dropped or rejected after relabeling, for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("target {labels}: no __address__ after relabeling")]
    NoAddress { labels: String },
    #[error("target {labels}: __address__ {address:?} contains '/'")]
    AddressWithSlash { labels: String, address: String },
    #[error("target {labels}: {label} {value:?}: {problem}")]
    BadDuration {
        labels: String,
        label: &'static str,
        value: String,
        problem: String,
    },
    #[error("target {labels}: scrape timeout {timeout} greater than scrape interval {interval}")]
    TimeoutOverInterval {
        labels: String,
        timeout: String,
        interval: String,
    },
    #[error("target {labels}: invalid URL: {problem}")]
    Url { labels: String, problem: String },
}

/// One endpoint to scrape, after relabeling.
#[derive(Debug)]
pub struct Target {
    pub job: Arc<Job>,
    /// Every label after relabeling, `__` labels included (the target's identity).
    pub labels: Labels,
    /// The labels attached to samples: those without a `__` prefix.
    pub public: Labels,
    pub url: reqwest::Url,
    pub interval: Duration,
    pub timeout: Duration,
    /// Stable hash of labels and URL: the phase of the target's scrapes.
    pub hash: u64,
}

/// FNV-1a: stable across runs and versions, unlike std's randomly keyed hasher.
#[derive(Default)]
pub struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

fn parse_duration(
    b: &LabelsBuilder,
    label: &'static str,
    labels: &dyn Fn() -> String,
) -> Result<Duration, TargetError> {
    let value = b.get(label).unwrap_or("");
    let bad = |problem: String| TargetError::BadDuration {
        labels: labels(),
        label,
        value: value.to_string(),
        problem,
    };
    let d = PromDuration::parse(value).map_err(bad)?;
    if d.as_std().is_zero() {
        return Err(bad("must be greater than 0".into()));
    }
    Ok(d.as_std())
}

/// Applies Prometheus's target pipeline to one discovered label set. `Ok(None)`: dropped by
/// relabeling.
pub fn build(job: &Arc<Job>, discovered: &Labels) -> Result<Option<Target>, TargetError> {
    let cfg = &job.config;
    let mut b = discovered.builder();
    let set_default = |b: &mut LabelsBuilder, name: &str, value: &str| {
        if b.get(name).is_none() {
            b.set(name, value);
        }
    };
    set_default(&mut b, "job", &job.name);
    set_default(
        &mut b,
        SCRAPE_INTERVAL,
        &PromDuration(job.interval).to_string(),
    );
    set_default(
        &mut b,
        SCRAPE_TIMEOUT,
        &PromDuration(job.timeout).to_string(),
    );
    set_default(&mut b, METRICS_PATH, &cfg.metrics_path);
    set_default(&mut b, SCHEME, cfg.scheme.as_str());
    for (k, values) in &cfg.params {
        if let Some(first) = values.first() {
            set_default(&mut b, &format!("{PARAM_PREFIX}{k}"), first);
        }
    }
    if !job.target_rules.apply(&mut b) {
        return Ok(None);
    }
    let text = || b.build().to_string();
    let address = b.get(ADDRESS).unwrap_or("").to_string();
    if address.is_empty() {
        return Err(TargetError::NoAddress { labels: text() });
    }
    if address.contains('/') {
        return Err(TargetError::AddressWithSlash {
            labels: text(),
            address,
        });
    }
    let interval = parse_duration(&b, SCRAPE_INTERVAL, &text)?;
    let timeout = parse_duration(&b, SCRAPE_TIMEOUT, &text)?;
    if timeout > interval {
        return Err(TargetError::TimeoutOverInterval {
            labels: text(),
            timeout: PromDuration(timeout).to_string(),
            interval: PromDuration(interval).to_string(),
        });
    }
    b.retain(|l| !l.name.starts_with("__meta_"));
    if b.get("instance").is_none() {
        b.set("instance", &address);
    }
    let labels = b.build();
    let url = url_of(&labels, cfg).map_err(|problem| TargetError::Url {
        labels: labels.to_string(),
        problem,
    })?;
    let public = Labels::from_pairs(
        labels
            .iter()
            .filter(|l| !l.name.starts_with("__"))
            .map(|l| (l.name.as_str(), l.value.as_str())),
    );
    let mut h = Fnv::default();
    for l in labels.iter() {
        h.write(l.name.as_bytes());
        h.write(&[0xff]);
        h.write(l.value.as_bytes());
        h.write(&[0xff]);
    }
    h.write(url.as_str().as_bytes());
    Ok(Some(Target {
        job: Arc::clone(job),
        hash: h.finish(),
        labels,
        public,
        url,
        interval,
        timeout,
    }))
}

/// `<__scheme__>://<__address__><__metrics_path__>?<params>`, each `__param_<k>` replacing the
/// first value of `k` (or adding it).
fn url_of(labels: &Labels, cfg: &super::config::ScrapeConfig) -> Result<reqwest::Url, String> {
    let scheme = labels.get(SCHEME).unwrap_or("http");
    let address = labels.get(ADDRESS).unwrap_or("");
    let path = labels.get(METRICS_PATH).unwrap_or("");
    let mut url =
        reqwest::Url::parse(&format!("{scheme}://{address}")).map_err(|e| e.to_string())?;
    url.set_path(path);
    let mut params: Vec<(String, Vec<String>)> = cfg
        .params
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for l in labels.iter() {
        if let Some(k) = l.name.strip_prefix(PARAM_PREFIX) {
            match params.iter_mut().find(|(n, _)| n == k) {
                Some((_, values)) => match values.first_mut() {
                    Some(first) => *first = l.value.to_string(),
                    None => values.push(l.value.to_string()),
                },
                None => params.push((k.to_string(), vec![l.value.to_string()])),
            }
        }
    }
    if !params.is_empty() {
        let mut q = url.query_pairs_mut();
        for (k, values) in &params {
            for v in values {
                q.append_pair(k, v);
            }
        }
    }
    Ok(url)
}

/// Delay before a target's first scrape: its phase within the interval is a hash of the target
/// mixed with a per-agent seed, anchored to the wall clock so a restart keeps the phase.
pub fn first_scrape_delay(
    hash: u64,
    seed: u64,
    interval: Duration,
    now_unix_nanos: u128,
) -> Duration {
    let interval_ns = interval.as_nanos().max(1);
    let base = interval_ns - now_unix_nanos % interval_ns;
    let offset = u128::from(hash ^ seed) % interval_ns;
    let mut next = base + offset;
    if next > interval_ns {
        next -= interval_ns;
    }
    Duration::from_nanos(u64::try_from(next).unwrap_or(u64::MAX))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use crate::config::GlobalConfig;
    use crate::sources::scrape::config::ScrapeConfig;

    fn job(yaml: &str) -> Arc<Job> {
        let cfg: ScrapeConfig = serde_yaml::from_str(yaml).unwrap();
        Arc::new(Job::new(&cfg, &GlobalConfig::default(), 1 << 20).unwrap())
    }

    #[test]
    fn defaults_instance_and_url_from_address() {
        let j = job("job_name: node\nscrape_interval: 15s\nparams:\n  module: [a, b]\n");
        let t = build(
            &j,
            &Labels::from_pairs([("__address__", "10.0.0.1:9100"), ("zone", "z1")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            t.public.to_string(),
            r#"{instance="10.0.0.1:9100",job="node",zone="z1"}"#
        );
        assert_eq!(
            t.url.as_str(),
            "http://10.0.0.1:9100/metrics?module=a&module=b"
        );
        assert_eq!(t.interval, Duration::from_secs(15));
        assert_eq!(t.timeout, Duration::from_secs(10));
        assert_eq!(t.labels.get("__param_module"), Some("a"));
    }

    #[test]
    fn relabeling_can_change_scheme_path_params_interval_and_drop_meta() {
        let j = job(r#"
job_name: x
relabel_configs:
  - target_label: __scheme__
    replacement: https
  - target_label: __metrics_path__
    replacement: /probe
  - target_label: __param_module
    replacement: c
  - target_label: __scrape_interval__
    replacement: 30s
  - source_labels: [__meta_pod]
    target_label: pod
"#);
        let t = build(
            &j,
            &Labels::from_pairs([("__address__", "h:1"), ("__meta_pod", "p")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(t.url.as_str(), "https://h:1/probe?module=c");
        assert_eq!(t.interval, Duration::from_secs(30));
        assert_eq!(t.labels.get("__meta_pod"), None);
        assert_eq!(t.public.get("pod"), Some("p"));
    }

    #[test]
    fn drops_and_rejections() {
        let j = job(
            "job_name: x\nrelabel_configs:\n  - source_labels: [keep]\n    regex: yes\n    action: keep\n",
        );
        assert!(
            build(&j, &Labels::from_pairs([("__address__", "h:1")]))
                .unwrap()
                .is_none()
        );
        let j = job("job_name: x\n");
        assert!(matches!(
            build(&j, &Labels::from_pairs([("a", "b")])),
            Err(TargetError::NoAddress { .. })
        ));
        assert!(matches!(
            build(&j, &Labels::from_pairs([("__address__", "http://h:1")])),
            Err(TargetError::AddressWithSlash { .. })
        ));
        assert!(matches!(
            build(
                &j,
                &Labels::from_pairs([("__address__", "h:1"), ("__scrape_timeout__", "2m")])
            ),
            Err(TargetError::TimeoutOverInterval { .. })
        ));
        assert!(matches!(
            build(
                &j,
                &Labels::from_pairs([("__address__", "h:1"), ("__scrape_interval__", "soon")])
            ),
            Err(TargetError::BadDuration { .. })
        ));
    }

    #[test]
    fn first_scrape_delay_is_stable_and_within_the_interval() {
        let i = Duration::from_secs(10);
        for now in [0u128, 3_000_000_000, 9_999_999_999, 123_456_789_012_345] {
            let d = first_scrape_delay(42, 7, i, now);
            assert!(d <= i, "{d:?}");
            // The phase is the same whenever the agent starts.
            let phase = (now + d.as_nanos()) % i.as_nanos();
            assert_eq!(phase, u128::from(42u64 ^ 7) % i.as_nanos());
        }
    }
}
