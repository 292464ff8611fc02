//! The local exposition: the latest value of every series, served on `/metrics` together with
//! the agent's self-metrics, `/healthz` and `/readyz`.

mod server;
mod store;

pub use server::{ServerState, serve};
pub use store::SeriesStore;

use std::sync::Arc;

use tracing::debug;

use crate::model::SourceId;
use crate::pipeline::SinkReceiver;

/// The sink task: applies every batch to the store until the pipeline closes, except those
/// of the sources in `skip` (see `exposition.scraped_series`).
pub async fn run(store: Arc<SeriesStore>, mut rx: SinkReceiver, skip: Vec<SourceId>) {
    while let Some(batch) = rx.recv().await {
        if skip.contains(&batch.source) {
            continue;
        }
        store.apply(&batch);
    }
    debug!("exposition sink finished");
}
