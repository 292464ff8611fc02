//! A remote-write 2.0 receiver front for a 1.0-only receiver, for benchmarks: every 2.0 request
//! is decoded, turned into the equivalent 1.0 request and forwarded; the answer carries the
//! 2.0 written-count headers. 1.0 requests are forwarded unchanged.
//!
//! `nodemeter-rw2-relay --listen 127.0.0.1:18429 --forward http://127.0.0.1:18428/api/v1/write`
//!
//! It lets the agent's 2.0 wire be measured against a receiver that predates 2.0 (the bench
//! harness's VictoriaMetrics 1.79), with the receiver-side checks unchanged.
#![allow(clippy::print_stderr, reason = "a CLI that reports its errors")]

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use prost::Message as _;

use nodemeter::sinks::remote_write::encode;
use nodemeter::sinks::remote_write::proto::{v1, v2};

struct Relay {
    forward: String,
    client: reqwest::Client,
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nodemeter-rw2-relay: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let mut listen: Option<SocketAddr> = None;
    let mut forward: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => listen = Some(args.next().context("--listen ADDR")?.parse()?),
            "--forward" => forward = Some(args.next().context("--forward URL")?),
            other => bail!("unknown argument {other}; usage: --listen ADDR --forward URL"),
        }
    }
    let listen = listen.context("--listen ADDR is required")?;
    let forward = forward.context("--forward URL is required")?;
    let relay = Arc::new(Relay {
        forward,
        client: reqwest::Client::new(),
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let app = axum::Router::new()
            .route("/api/v1/write", axum::routing::post(write))
            .with_state(relay);
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        axum::serve(listener, app).await.context("serving")
    })
}

async fn write(State(relay): State<Arc<Relay>>, headers: HeaderMap, body: Bytes) -> Response {
    let is_v2 = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.contains("proto=io.prometheus.write.v2.Request"));
    let (body, written) = if is_v2 {
        match to_v1(&body) {
            Ok((b, n)) => (b, Some(n)),
            Err(e) => return (StatusCode::BAD_REQUEST, format!("{e:#}")).into_response(),
        }
    } else {
        (body.to_vec(), None)
    };
    let sent = relay
        .client
        .post(&relay.forward)
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()
        .await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let text = resp.text().await.unwrap_or_default();
    let mut out = (status, text).into_response();
    if let Some(n) = written.filter(|_| status.is_success()) {
        let h = out.headers_mut();
        h.insert("X-Prometheus-Remote-Write-Samples-Written", n.into());
        h.insert("X-Prometheus-Remote-Write-Histograms-Written", 0.into());
        h.insert("X-Prometheus-Remote-Write-Exemplars-Written", 0.into());
    }
    out
}

/// A compressed 2.0 body as a compressed 1.0 body, and its sample count.
fn to_v1(body: &[u8]) -> anyhow::Result<(Vec<u8>, u64)> {
    let raw = encode::decompress(body).context("snappy")?;
    let req = v2::Request::decode(raw.as_slice()).context("protobuf")?;
    let sym = |r: u32| -> anyhow::Result<String> {
        req.symbols
            .get(r as usize)
            .cloned()
            .with_context(|| format!("symbol {r} beyond the table"))
    };
    let mut samples = 0u64;
    let mut timeseries = Vec::with_capacity(req.timeseries.len());
    for ts in &req.timeseries {
        let mut labels = Vec::with_capacity(ts.labels_refs.len() / 2);
        for pair in ts.labels_refs.chunks_exact(2) {
            labels.push(v1::Label {
                name: sym(pair[0])?,
                value: sym(pair[1])?,
            });
        }
        samples += ts.samples.len() as u64;
        timeseries.push(v1::TimeSeries {
            labels,
            samples: ts
                .samples
                .iter()
                .map(|s| v1::Sample {
                    value: s.value,
                    timestamp: s.timestamp,
                })
                .collect(),
        });
    }
    let v1 = v1::WriteRequest {
        timeseries,
        metadata: Vec::new(),
    };
    Ok((
        encode::compress(&v1.encode_to_vec()).context("snappy")?,
        samples,
    ))
}
