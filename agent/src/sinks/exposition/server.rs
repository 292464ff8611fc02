use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::SeriesStore;
use crate::exposition::encode::Format;
use crate::telemetry::{self, Readiness};

#[derive(Clone)]
pub struct ServerState {
    pub store: Arc<SeriesStore>,
    pub readiness: Readiness,
    /// Write sample timestamps on `/metrics`.
    pub timestamps: bool,
}

/// Binds `listen` and serves until `shutdown` is cancelled. Binding errors are returned before
/// anything is served, so a taken port stops start-up with a clear message.
pub async fn serve(
    listen: SocketAddr,
    state: ServerState,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let local = listener.local_addr()?;
    info!(address = %local, "serving /metrics, /healthz, /readyz");
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(state);
    Ok(tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
    }))
}

async fn metrics(State(state): State<ServerState>, headers: HeaderMap) -> Response {
    let format = Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let body = tokio::task::spawn_blocking(move || {
        let own = telemetry::registry().snapshot(telemetry::now_ms());
        state.store.render(format, state.timestamps, &own)
    })
    .await
    .unwrap_or_default();
    ([(header::CONTENT_TYPE, format.content_type())], body).into_response()
}

async fn readyz(State(state): State<ServerState>) -> Response {
    let pending = state.readiness.pending();
    if pending.is_empty() {
        (StatusCode::OK, "ready\n".to_string()).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("waiting for: {}\n", pending.join(", ")),
        )
            .into_response()
    }
}
