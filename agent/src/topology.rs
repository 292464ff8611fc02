//! Assembles the running agent: sources -> pipeline -> sinks, the HTTP server, and an orderly
//! shutdown (stop sources, drain the pipeline, flush sinks, detach probes).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::discovery::kubernetes::{JobBuilder, KubernetesDiscovery, scrape_jobs};
use crate::identity::{Hierarchies, Inventory};
use crate::model::SourceId;
use crate::pipeline::Pipeline;
use crate::sinks::exposition::{self, SeriesStore, ServerState};
use crate::sinks::remote_write::RemoteWrite;
use crate::sources::SourceContext;
use crate::sources::cgroup::{self, CgroupSource};
use crate::sources::ebpf::{self, EbpfSource};
use crate::sources::scrape::{self, GroupsReceiver, ScrapeSource};
use crate::telemetry::Readiness;

/// How long shutdown may take before the agent gives up waiting for tasks.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A started agent.
pub struct Agent {
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    server: tokio::task::JoinHandle<()>,
    pipeline: tokio::task::JoinHandle<()>,
    sinks: Vec<tokio::task::JoinHandle<()>>,
    pub listen: SocketAddr,
    pub store: Arc<SeriesStore>,
}

impl Agent {
    /// Starts every enabled component. Fails only for what makes the agent useless (the listen
    /// address is taken, no cgroup hierarchy); optional parts that fail are logged and counted.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        let shutdown = CancellationToken::new();
        let readiness = Readiness::new();
        let (mut pipeline, tx) = Pipeline::new(config.pipeline.channel_capacity);

        let store = Arc::new(SeriesStore::new(Some(
            config.exposition.series_ttl.as_std(),
        )));
        let exposition_rx = pipeline.add_sink("exposition");
        let mut skip = Vec::new();
        if !config
            .exposition
            .scraped_series
            .served(!config.remote_write.is_empty())
        {
            skip.push(SourceId::new(scrape::SOURCE_NAME));
        }
        let mut sinks = vec![tokio::spawn(exposition::run(
            Arc::clone(&store),
            exposition_rx,
            skip,
        ))];
        // One sink for every endpoint: they share one WAL on disk, each with its own cursor.
        if !config.remote_write.is_empty() {
            let remote_write = RemoteWrite::start(
                &config.remote_write,
                &config.remote_write_wal,
                &config.global.external_labels,
            )
            .context("remote write")?;
            let rx = pipeline.add_sink("remote_write");
            sinks.push(tokio::spawn(remote_write.run(rx)));
        }

        let ctx = SourceContext {
            out: tx,
            shutdown: shutdown.clone(),
            readiness: readiness.clone(),
        };
        let mut tasks = JoinSet::new();
        let inventory = Inventory::new();
        let node_name = config.node.resolved_name();
        // Every local series (cgroupfs and eBPF) carries the same target labels.
        let local_target_labels = cgroup::target_labels(
            config
                .cgroup
                .resolved_target_labels(&node_name)
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );

        // Before the local sources, so their first cycle already names pods.
        let monitor_groups = start_kubernetes(&config, &inventory, &shutdown, &mut tasks).await;

        let mut rescan = None;
        if config.cgroup.enabled {
            let hierarchies =
                Hierarchies::detect(&config.cgroup.mounts).context("cgroup source")?;
            info!(mode = hierarchies.mode().as_str(), unified = ?hierarchies.unified, v1 = ?hierarchies.v1.keys().collect::<Vec<_>>(), "cgroup hierarchies");
            let source = CgroupSource::new(
                config.cgroup.clone(),
                hierarchies,
                inventory.clone(),
                &node_name,
            );
            rescan = Some(source.rescan_trigger());
            readiness.expect(cgroup::SOURCE_NAME);
            let ctx = ctx.clone();
            tasks.spawn(async move {
                if let Err(e) = source.run(ctx).await {
                    error!(error = %e, "cgroup source failed");
                }
            });
        }
        if !config.scrape_configs.is_empty() || monitor_groups.is_some() {
            let mut source = ScrapeSource::new(&config).context("scrape source")?;
            if let Some(groups) = monitor_groups {
                source.add_provider(groups);
            }
            readiness.expect(scrape::SOURCE_NAME);
            let ctx = ctx.clone();
            tasks.spawn(async move {
                if let Err(e) = source.run(ctx).await {
                    error!(error = %e, "scrape source failed");
                }
            });
        }
        // Called even when disabled, so `nodemeter_probe_attached` says why nothing runs.
        if let Some(mut probes) = ebpf::load_probes(&config.ebpf) {
            if let Some(rescan) = rescan.take()
                && let Some(events) = probes.take_cgroup_events(cgroup::CGROUP_EVENT_BACKLOG)
            {
                tasks.spawn(rescan.follow(events, config.cgroup.root.clone(), shutdown.clone()));
            }
            let source = EbpfSource::new(
                probes,
                inventory.clone(),
                local_target_labels,
                config.ebpf.interval.as_std(),
            );
            readiness.expect(ebpf::SOURCE_NAME);
            let ctx = ctx.clone();
            tasks.spawn(async move {
                if let Err(e) = source.run(ctx).await {
                    error!(error = %e, "ebpf source failed");
                }
            });
        }
        // Sources hold the only senders now: the pipeline ends when they all return.
        drop(ctx);

        let pipeline = tokio::spawn(pipeline.run());
        let state = ServerState {
            store: Arc::clone(&store),
            readiness,
            timestamps: config.exposition.timestamps,
        };
        let server_token = CancellationToken::new();
        let server = exposition::serve(config.server.listen, state, server_token.clone()).await?;
        // The server outlives the sources so /metrics stays up while the pipeline drains.
        let server_shutdown = shutdown.clone();
        let server = tokio::spawn(async move {
            server_shutdown.cancelled().await;
            server_token.cancel();
            let _ = server.await;
        });
        Ok(Self {
            shutdown,
            tasks,
            server,
            pipeline,
            sinks,
            listen: config.server.listen,
            store,
        })
    }

    /// A token that stops the agent when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits for the shutdown token, then stops everything in order.
    pub async fn wait(mut self) {
        self.shutdown.cancelled().await;
        info!("shutting down: stopping sources");
        let drain = async {
            while self.tasks.join_next().await.is_some() {}
            let _ = (&mut self.pipeline).await;
            for s in &mut self.sinks {
                let _ = s.await;
            }
            let _ = (&mut self.server).await;
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
            warn!(grace = ?SHUTDOWN_GRACE, "shutdown took too long; exiting anyway");
        }
        info!("stopped");
    }
}

/// Starts Kubernetes discovery when enabled: pod metadata for the inventory, and the
/// monitors' targets as a scrape provider. An unusable API client is logged and leaves the
/// rest of the agent running.
async fn start_kubernetes(
    config: &Config,
    inventory: &Inventory,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<()>,
) -> Option<GroupsReceiver> {
    let discovery = match KubernetesDiscovery::start_from_config(config, shutdown.clone()).await {
        Ok(Some(d)) => d,
        Ok(None) => return None,
        Err(e) => {
            error!(error = %e, "kubernetes discovery not started: no pod metadata, no monitors");
            return None;
        }
    };
    tasks.spawn(
        discovery
            .metadata()
            .label_inventory(inventory.clone(), shutdown.clone()),
    );
    let builder = JobBuilder::new(config.global.clone(), config.scrape.max_body_size.0);
    let (groups, conversion) = scrape_jobs::spawn(discovery.groups(), builder, shutdown.clone());
    tasks.spawn(async move {
        let _ = conversion.await;
        discovery.wait().await;
    });
    Some(groups)
}

/// Cancels `token` on the first SIGTERM or SIGINT.
pub fn cancel_on_signals(token: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM received"),
            _ = int.recv() => info!("SIGINT received"),
        }
        token.cancel();
    });
    Ok(())
}
