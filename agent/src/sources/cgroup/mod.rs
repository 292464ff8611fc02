//! Container metrics read from cgroupfs (v1, v2 and hybrid), with cAdvisor's names, types and
//! labels.

mod config;
mod cpu;
mod emit;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::{Instrument, debug, info, info_span, warn};

pub use config::CgroupConfig;
pub use emit::Emitter;

use crate::identity::{Hierarchies, Inventory};
use crate::model::{Batch, SourceId, StalenessTracker};
use crate::sources::SourceContext;

pub const SOURCE_NAME: &str = "cgroup";

/// Everything one collection cycle needs, owned by the blocking reader thread during a cycle.
struct Collector {
    config: CgroupConfig,
    hierarchies: Hierarchies,
    inventory: Inventory,
    staleness: StalenessTracker,
}

impl Collector {
    fn collect(&mut self, timestamp_ms: i64) -> Batch {
        let n = self.inventory.rescan(&self.hierarchies, &self.config.root);
        debug!(cgroups = n, "inventory rescanned");
        let mut emitter = Emitter::new(
            SourceId::new(SOURCE_NAME),
            timestamp_ms,
            &mut self.staleness,
        );
        for entry in self.inventory.entries() {
            cpu::collect(&self.hierarchies, &entry, &mut emitter);
        }
        emitter.finish()
    }
}

/// The cgroup source task.
pub struct CgroupSource {
    collector: Arc<Mutex<Collector>>,
    interval: Duration,
}

impl CgroupSource {
    pub fn new(config: CgroupConfig, hierarchies: Hierarchies, inventory: Inventory) -> Self {
        let interval = config.interval.as_std();
        Self {
            collector: Arc::new(Mutex::new(Collector {
                config,
                hierarchies,
                inventory,
                staleness: StalenessTracker::new(),
            })),
            interval,
        }
    }

    /// Collects once, synchronously (tests and `nodemeter check` use it).
    pub fn collect_now(&self, timestamp_ms: i64) -> Batch {
        self.collector
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .collect(timestamp_ms)
    }

    pub async fn run(self, ctx: SourceContext) -> anyhow::Result<()> {
        info!(interval = ?self.interval, "cgroup source started");
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut first = true;
        loop {
            tokio::select! {
                () = ctx.shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            let collector = Arc::clone(&self.collector);
            let span = info_span!("cgroup_collect");
            let batch = tokio::task::spawn_blocking(move || {
                let _g = span.enter();
                collector
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .collect(crate::telemetry::now_ms())
            })
            .instrument(info_span!("cgroup_cycle"))
            .await;
            match batch {
                Ok(batch) => {
                    if ctx.out.send(batch).await.is_err() {
                        break;
                    }
                    if first {
                        ctx.readiness.mark_ready(SOURCE_NAME);
                        first = false;
                    }
                }
                Err(e) => warn!(error = %e, "cgroup collection cycle failed"),
            }
        }
        info!("cgroup source stopped");
        Ok(())
    }
}
