//! One target's loop: wait for its phase, then every interval fetch, process and send one
//! batch; when the target goes away, mark its series stale the way Prometheus does.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::header;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use super::append::{Counts, TargetState};
use super::job::{ScrapeError, TargetClient};
use super::target::{Target, first_scrape_delay};
use crate::exposition::parse::{Format, negotiate};
use crate::model::{Batch, SourceId};
use crate::pipeline::BatchSender;
use crate::telemetry;

/// Bodies larger than this are parsed off the async workers.
const BLOCKING_PARSE_BYTES: usize = 1 << 20;

/// What a loop needs besides its target.
#[derive(Clone)]
pub struct LoopContext {
    pub out: BatchSender,
    pub source: SourceId,
    /// Agent shutdown: stop at once, no end-of-target staleness.
    pub shutdown: CancellationToken,
    /// The target was removed: stop and write end-of-target stale markers.
    pub stop: CancellationToken,
    /// The target came back before the end-of-target markers were written: skip them.
    pub suppress: CancellationToken,
    /// Active targets of the job (for `target_limit`).
    pub job_targets: Arc<AtomicUsize>,
    pub seed: u64,
}

/// The target's client, rebuilt when the job's TLS files changed since it was built (a
/// connection pool holds on to the old certificates otherwise).
fn client<'a>(
    target: &Target,
    slot: &'a mut Option<TargetClient>,
) -> Result<&'a TargetClient, ScrapeError> {
    let generation = target.job.tls.current().generation;
    if slot.as_ref().is_none_or(|c| c.generation != generation) {
        let built = target.job.client_for(&target.url).map_err(|e| {
            ScrapeError::Connection(format!("cannot build the HTTP client: {}", error_chain(&e)))
        })?;
        *slot = Some(built);
    }
    slot.as_ref()
        .ok_or_else(|| ScrapeError::Connection("no HTTP client".into()))
}

/// Body and content type of a successful response.
async fn fetch(
    target: &Target,
    slot: &mut Option<TargetClient>,
    buf: &mut Vec<u8>,
) -> Result<Option<String>, ScrapeError> {
    let job = &target.job;
    let c = client(target, slot)?;
    let mut req = match &c.route {
        Some(route) => c
            .client
            .get(route.url.clone())
            .header(header::HOST, route.host_header.clone()),
        None => c.client.get(target.url.clone()),
    };
    req = req.headers(job.headers.clone()).header(
        "X-Prometheus-Scrape-Timeout-Seconds",
        format!("{}", target.timeout.as_secs_f64()),
    );
    if let Some(auth) = job.auth.header()? {
        req = req.header(header::AUTHORIZATION, auth);
    }
    let mut resp = req
        .send()
        .await
        .map_err(|e| ScrapeError::Connection(error_chain(&e)))?;
    if resp.status() != reqwest::StatusCode::OK {
        return Err(ScrapeError::HttpStatus(resp.status().to_string()));
    }
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let limit = job.limits.body_size_limit;
    buf.clear();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| ScrapeError::Body(error_chain(&e)))?
    {
        // Prometheus reads at most `limit` bytes and fails when it got that many.
        if (buf.len() + chunk.len()) as u64 >= limit {
            return Err(ScrapeError::BodySizeLimit(limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(content_type)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        src = inner.source();
    }
    s
}

/// Response bodies are read into buffers shared by every target: a target needs one only
/// while it scrapes, and scrapes are spread over the interval, so a few buffers serve a node's
/// targets instead of one per target, each as large as that target's biggest body.
static BODY_BUFFERS: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

/// Buffers kept for the next scrapes; more concurrent scrapes allocate and free their own.
const POOLED_BODY_BUFFERS: usize = 4;

fn take_body_buffer() -> Vec<u8> {
    BODY_BUFFERS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .pop()
        .unwrap_or_default()
}

fn give_body_buffer(mut buf: Vec<u8>) {
    // A body much larger than usual should not pin its buffer forever.
    if buf.capacity() > 4 * buf.len().max(64 << 10) {
        buf = Vec::with_capacity(buf.len());
    }
    buf.clear();
    let mut pool = BODY_BUFFERS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if pool.len() < POOLED_BODY_BUFFERS {
        pool.push(buf);
    }
}

/// The loop's state between scrapes.
struct Scraper {
    target: Arc<Target>,
    state: TargetState,
    /// The body of the scrape in progress (from [`BODY_BUFFERS`], returned after it).
    buf: Vec<u8>,
    client: Option<TargetClient>,
    /// Reason of the last failure, to log once per change rather than every scrape.
    last_failure: Option<&'static str>,
}

impl Scraper {
    async fn scrape_once(&mut self, ctx: &LoopContext, ts: i64) -> Batch {
        let started = Instant::now();
        let target = Arc::clone(&self.target);
        let job = &target.job;
        let mut batch = Batch::new(ctx.source.clone());
        self.buf = take_body_buffer();
        let targets = ctx.job_targets.load(Ordering::Relaxed);
        let fetched = if job.limits.target_limit > 0 && targets as u64 > job.limits.target_limit {
            Err(ScrapeError::TargetLimit {
                targets,
                limit: job.limits.target_limit,
            })
        } else {
            match tokio::time::timeout(
                target.timeout,
                fetch(&target, &mut self.client, &mut self.buf),
            )
            .await
            {
                Ok(r) => r,
                Err(_) => Err(ScrapeError::Timeout(target.timeout)),
            }
        };
        let fetched = fetched.and_then(|ct| {
            negotiate(ct.as_deref(), job.fallback)
                .map(|n| n.format)
                .map_err(|e| ScrapeError::ContentType(e.to_string()))
        });
        let (counts, result) = match fetched {
            Ok(format) => self.process(format, ts, &mut batch),
            Err(e) => {
                self.state.fail(ts, &mut batch.samples);
                (Counts::default(), Err(e))
            }
        };
        let up = result.is_ok();
        self.state.report(
            &target.public,
            up,
            started.elapsed().as_secs_f64(),
            counts,
            ts,
            &mut batch.samples,
        );
        TargetState::report_metadata(&mut batch.metadata);
        self.note_outcome(result, counts);
        give_body_buffer(std::mem::take(&mut self.buf));
        batch
    }

    fn process(
        &mut self,
        format: Format,
        ts: i64,
        batch: &mut Batch,
    ) -> (Counts, Result<(), ScrapeError>) {
        let target = Arc::clone(&self.target);
        let state = &mut self.state;
        let body = &self.buf;
        let mut run = || {
            state.append(
                &target.job,
                &target.public,
                body,
                format,
                ts,
                &mut batch.samples,
                &mut batch.metadata,
            )
        };
        if body.len() > BLOCKING_PARSE_BYTES
            && tokio::runtime::Handle::current().runtime_flavor()
                == tokio::runtime::RuntimeFlavor::MultiThread
        {
            tokio::task::block_in_place(run)
        } else {
            run()
        }
    }

    fn note_outcome(&mut self, result: Result<(), ScrapeError>, counts: Counts) {
        let job = &self.target.job.name;
        let registry = telemetry::registry();
        if counts.duplicates > 0 || counts.out_of_bounds > 0 {
            registry
                .counter(
                    "nodemeter_scrape_samples_rejected_total",
                    "Scraped samples rejected without failing the scrape, by job and reason.",
                    &[("job", job), ("reason", "duplicate")],
                )
                .add(counts.duplicates);
            registry
                .counter(
                    "nodemeter_scrape_samples_rejected_total",
                    "Scraped samples rejected without failing the scrape, by job and reason.",
                    &[("job", job), ("reason", "out_of_bounds")],
                )
                .add(counts.out_of_bounds);
        }
        match result {
            Ok(()) => {
                if let Some(previous) = self.last_failure.take() {
                    info!(job = %job, target = %self.target.url, previous_failure = previous, "scrape recovered");
                }
            }
            Err(e) => {
                let reason = e.reason();
                registry
                    .counter(
                        "nodemeter_scrape_failures_total",
                        "Failed scrapes (up=0), by job and reason.",
                        &[("job", job), ("reason", reason)],
                    )
                    .inc();
                if self.last_failure != Some(reason) {
                    warn!(job = %job, target = %self.target.url, reason, error = %e, "scrape failed; up=0 until it recovers");
                } else {
                    debug!(job = %job, target = %self.target.url, error = %e, "scrape failed again");
                }
                self.last_failure = Some(reason);
            }
        }
    }
}

/// Scrape timestamps snap to the ideal tick when this close to it, so that series stay
/// aligned across targets (Prometheus: min(2ms, 1% of the interval)).
fn snap(ts: i64, ideal: i64, interval: Duration) -> i64 {
    let tolerance = (interval.as_millis() as i64 / 100).min(2);
    if (ts - ideal).abs() < tolerance {
        ideal
    } else {
        ts
    }
}

/// Runs `target` until shutdown or until its `stop` token is cancelled.
pub async fn run(target: Arc<Target>, ctx: LoopContext) {
    let span = info_span!("scrape_target", job = %target.job.name, url = %target.url);
    async move {
        let interval = target.interval;
        let now_nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let delay = first_scrape_delay(target.hash, ctx.seed, interval, now_nanos);
        debug!(?delay, ?interval, "target loop started");
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + delay, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut scraper = Scraper {
            target: Arc::clone(&target),
            state: TargetState::new(),
            buf: Vec::new(),
            client: None,
            last_failure: None,
        };
        let mut ideal: Option<i64> = None;
        let mut last_ts = 0;
        loop {
            tokio::select! {
                biased;
                () = ctx.shutdown.cancelled() => return,
                () = ctx.stop.cancelled() => break,
                _ = ticker.tick() => {}
            }
            let now = telemetry::now_ms();
            let ts = match ideal {
                Some(i) => snap(now, i + interval.as_millis() as i64, interval),
                None => now,
            };
            ideal = Some(ts);
            last_ts = ts;
            let batch = scraper.scrape_once(&ctx, ts).await;
            if ctx.out.send(batch).await.is_err() {
                return;
            }
        }
        if !scraper.state.scraped_once {
            return;
        }
        // Prometheus writes end-of-target markers after the next tick, the one after and 10%
        // of the interval, stamped with the first of those ticks; a target that comes back
        // in the meantime keeps its series.
        let first_tick = last_ts + interval.as_millis() as i64;
        let wait = interval.mul_f64(2.1);
        tokio::select! {
            () = ctx.shutdown.cancelled() => return,
            () = ctx.suppress.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        let mut batch = Batch::new(ctx.source.clone());
        scraper
            .state
            .end(&target.public, first_tick, &mut batch.samples);
        debug!(
            series = batch.samples.len(),
            "target gone; series marked stale"
        );
        let _ = ctx.out.send(batch).await;
    }
    .instrument(span)
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_snap_to_the_ideal_tick_only_when_close() {
        let i = Duration::from_secs(10);
        assert_eq!(snap(10_001, 10_000, i), 10_000);
        assert_eq!(snap(10_003, 10_000, i), 10_003);
        assert_eq!(snap(1_001, 1_000, Duration::from_millis(100)), 1_001);
    }
}
