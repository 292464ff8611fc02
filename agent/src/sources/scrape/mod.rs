//! Pulling metrics from HTTP targets with Prometheus's semantics: the same request, timing,
//! per-sample pipeline, honor_labels, limits, report series and staleness markers, so that an
//! exporter (or a PodMonitor/ServiceMonitor target) behaves exactly as under Prometheus.
//!
//! Discovery providers publish [`ScrapeGroup`]s on `watch` channels; the [`ScrapeManager`]
//! runs one loop per target. The config file's `static_configs` and `file_sd_configs` are one
//! provider ([`discovery::ConfigDiscovery`]); Kubernetes monitors plug in as another through
//! [`ScrapeSource::add_provider`].

pub mod append;
pub mod config;
pub mod discovery;
pub mod job;
pub mod manager;
pub mod scrape_loop;
pub mod target;

use std::hash::Hasher;
use std::sync::Arc;

use tracing::info;

pub use config::{ByteSize, ScrapeConfig, validate_all};
pub use job::{Job, JobError, ScrapeError};
pub use manager::{GroupsReceiver, ScrapeManager};
pub use target::{ScrapeGroup, Target};

use crate::config::Config;
use crate::model::SourceId;
use crate::sources::SourceContext;

pub const SOURCE_NAME: &str = "scrape";

/// The scrape source task.
pub struct ScrapeSource {
    jobs: Vec<Arc<Job>>,
    discovery: discovery::ConfigDiscovery,
    providers: Vec<GroupsReceiver>,
    seed: u64,
}

impl ScrapeSource {
    /// Compiles the config's `scrape_configs` (validated with the rest of the file).
    pub fn new(config: &Config) -> Result<Self, JobError> {
        let jobs = config
            .scrape_configs
            .iter()
            .map(|c| Job::new(c, &config.global, config.scrape.max_body_size.0).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let (discovery, rx) = discovery::ConfigDiscovery::new(&jobs);
        // Prometheus seeds target phases with the host name and external labels.
        let mut h = target::Fnv::default();
        h.write(config.node.resolved_name().as_bytes());
        for (k, v) in &config.global.external_labels {
            h.write(k.as_bytes());
            h.write(v.as_bytes());
        }
        Ok(Self {
            jobs,
            discovery,
            providers: vec![rx],
            seed: h.finish(),
        })
    }

    /// The jobs of the config file.
    pub fn jobs(&self) -> &[Arc<Job>] {
        &self.jobs
    }

    /// Adds a discovery provider (Kubernetes monitors): its groups are scraped beside the
    /// config file's.
    pub fn add_provider(&mut self, groups: GroupsReceiver) {
        self.providers.push(groups);
    }

    pub async fn run(self, ctx: SourceContext) -> anyhow::Result<()> {
        info!(jobs = self.jobs.len(), "scrape source started");
        let mut manager =
            ScrapeManager::new(ctx.out.clone(), SourceId::new(SOURCE_NAME), self.seed);
        for p in self.providers {
            manager.add_provider(p);
        }
        let discovery = tokio::spawn(self.discovery.run(ctx.shutdown.clone()));
        ctx.readiness.mark_ready(SOURCE_NAME);
        manager.run(ctx.shutdown.clone()).await;
        let _ = discovery.await;
        info!("scrape source stopped");
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests;
