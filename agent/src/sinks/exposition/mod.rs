//! The local exposition: the latest value of every series, served on `/metrics` together with
//! the agent's self-metrics, `/healthz` and `/readyz`.

mod server;
mod store;

pub use server::{ServerState, serve};
pub use store::SeriesStore;

use std::sync::Arc;

use tracing::debug;

use crate::pipeline::SinkReceiver;

/// The sink task: applies every batch to the store until the pipeline closes.
pub async fn run(store: Arc<SeriesStore>, mut rx: SinkReceiver) {
    while let Some(batch) = rx.recv().await {
        store.apply(&batch);
    }
    debug!("exposition sink finished");
}
