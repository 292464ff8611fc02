//! One scrape's body to samples, in Prometheus's order: parse -> target labels (honor_labels /
//! `exported_` prefixing) -> metric_relabel_configs -> limits -> timestamps -> batch; then the
//! report series and staleness markers.
//!
//! Each target keeps a cache from the series as exposed to its final label set (or "dropped"),
//! so steady-state scrapes neither re-intern nor re-relabel unchanged series.

use std::collections::{HashMap, HashSet};

use crate::exposition::parse::{Entry, Format, Parser, Series};
use crate::model::{
    FamilyMetadata, IdentityBuildHasher, Labels, LabelsBuilder, METRIC_NAME, MetricType, Sample,
    intern, stale_nan,
};

use super::job::{Job, ScrapeError};

/// Samples stamped further than this into the future are rejected (not fatal).
const MAX_FUTURE_MS: i64 = 10 * 60 * 1000;

/// The report series, in this order everywhere.
pub const REPORT_NAMES: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

const REPORT_HELP: [&str; 5] = [
    "1 if the last scrape of the target succeeded, 0 otherwise.",
    "Duration of the scrape, from its start to the end of processing.",
    "Samples the target exposed.",
    "Samples left after metric relabeling.",
    "Series new to the target in this scrape.",
];

struct CacheEntry {
    /// `None`: dropped by metric relabeling.
    labels: Option<Labels>,
    last_iteration: u64,
}

/// Counts one scrape reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub scraped: u64,
    pub post_relabel: u64,
    pub series_added: u64,
    pub duplicates: u64,
    pub out_of_bounds: u64,
}

/// Per-target state kept between scrapes.
#[derive(Default)]
pub struct TargetState {
    cache: HashMap<Box<str>, CacheEntry>,
    metadata: HashMap<Box<str>, (FamilyMetadata, u64)>,
    iteration: u64,
    /// Series appended by the last scrape and tracked for staleness.
    previous: HashSet<Labels, IdentityBuildHasher>,
    current: HashSet<Labels, IdentityBuildHasher>,
    report: Option<[Labels; 5]>,
    key: String,
    builder: LabelsBuilder,
    /// Whether any scrape happened (end-of-target staleness needs one).
    pub scraped_once: bool,
}

impl TargetState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Series currently tracked for staleness.
    pub fn tracked(&self) -> usize {
        self.previous.len()
    }

    fn report_labels(&mut self, target: &Labels) -> &[Labels; 5] {
        self.report.get_or_insert_with(|| {
            REPORT_NAMES.map(|name| {
                let mut b = target.builder();
                b.set(METRIC_NAME, name);
                b.build()
            })
        })
    }

    /// Appends the five report series.
    pub fn report(
        &mut self,
        target: &Labels,
        up: bool,
        duration_secs: f64,
        counts: Counts,
        ts: i64,
        out: &mut Vec<Sample>,
    ) {
        let values = [
            if up { 1.0 } else { 0.0 },
            duration_secs,
            counts.scraped as f64,
            counts.post_relabel as f64,
            counts.series_added as f64,
        ];
        for (labels, value) in self.report_labels(target).iter().zip(values) {
            out.push(Sample {
                labels: labels.clone(),
                timestamp_ms: ts,
                value,
            });
        }
    }

    /// Metadata of the report series (once per batch).
    pub fn report_metadata(out: &mut Vec<FamilyMetadata>) {
        for (name, help) in REPORT_NAMES.iter().zip(REPORT_HELP) {
            out.push(FamilyMetadata::new(name, MetricType::Gauge, help));
        }
    }

    /// A scrape that failed before its body was read: every series of the last scrape ends.
    pub fn fail(&mut self, ts: i64, out: &mut Vec<Sample>) {
        self.scraped_once = true;
        for labels in self.previous.drain() {
            out.push(stale(labels, ts));
        }
    }

    /// The target went away: its series and its report series end.
    pub fn end(&mut self, target: &Labels, ts: i64, out: &mut Vec<Sample>) {
        if !self.scraped_once {
            return;
        }
        self.fail(ts, out);
        for labels in self.report_labels(target).clone() {
            out.push(stale(labels, ts));
        }
    }

    /// Parses `body` and appends its samples (and stale markers) to `out`. On an error the
    /// samples of this scrape are withdrawn, as Prometheus rolls back the append; series
    /// accepted before the error stay tracked (spec 5.6).
    #[allow(clippy::too_many_arguments, reason = "one scrape's inputs, all needed")]
    pub fn append(
        &mut self,
        job: &Job,
        target: &Labels,
        body: &[u8],
        format: Format,
        ts: i64,
        out: &mut Vec<Sample>,
        metadata: &mut Vec<FamilyMetadata>,
    ) -> (Counts, Result<(), ScrapeError>) {
        self.scraped_once = true;
        self.iteration += 1;
        self.current.clear();
        let start = out.len();
        // About as many samples as last time (plus the report series).
        out.reserve(self.previous.len() + REPORT_NAMES.len());
        let mut counts = Counts::default();
        let result = self.append_entries(job, target, body, format, ts, out, &mut counts);
        let current = std::mem::take(&mut self.current);
        let mut previous = std::mem::take(&mut self.previous);
        let mut vanished = Vec::new();
        for labels in previous.drain() {
            if !current.contains(&labels) {
                if result.is_ok() {
                    out.push(stale(labels, ts));
                } else {
                    // Emitted after the rollback below.
                    vanished.push(labels);
                }
            }
        }
        self.previous = current;
        // Drained but still sized for a scrape: the next one fills it without rehashing.
        self.current = previous;
        match result {
            Ok(()) => {
                let iteration = self.iteration;
                // Forget series unseen for two scrapes; a flapping series costs one re-relabel.
                self.cache.retain(|_, e| e.last_iteration + 1 >= iteration);
                self.metadata.retain(|_, (_, it)| *it + 1 >= iteration);
                metadata.extend(
                    self.metadata
                        .values()
                        .filter(|(_, it)| *it == iteration)
                        .map(|(m, _)| m.clone()),
                );
                (counts, Ok(()))
            }
            Err(e) => {
                out.truncate(start);
                out.extend(vanished.into_iter().map(|l| stale(l, ts)));
                counts.series_added = 0;
                (counts, Err(e))
            }
        }
    }

    #[allow(clippy::too_many_arguments, reason = "one scrape's inputs, all needed")]
    fn append_entries(
        &mut self,
        job: &Job,
        target: &Labels,
        body: &[u8],
        format: Format,
        ts: i64,
        out: &mut Vec<Sample>,
        counts: &mut Counts,
    ) -> Result<(), ScrapeError> {
        let cfg = &job.config;
        let limit = job.limits.sample_limit;
        let mut over_limit = false;
        let mut parser = Parser::new(body, format);
        loop {
            let entry = parser
                .next_entry()
                .map_err(|e| ScrapeError::Parse(e.to_string()))?;
            let series = match entry {
                Entry::Eof => break,
                Entry::Series(s) => s,
                Entry::Help { name, text } => {
                    self.family(&name).help = intern(&text);
                    continue;
                }
                Entry::Type { name, kind } => {
                    self.family(&name).kind = kind;
                    continue;
                }
                Entry::Unit { name, unit } => {
                    self.family(&name).unit = intern(unit);
                    continue;
                }
            };
            counts.scraped += 1;
            let (labels, added) = self.resolve(job, target, &series)?;
            let Some(labels) = labels else {
                continue;
            };
            counts.post_relabel += 1;
            if limit > 0 && counts.post_relabel > limit {
                // Keep counting: the report shows how far over the limit the target is.
                over_limit = true;
                continue;
            }
            if over_limit {
                continue;
            }
            let explicit = series.timestamp_ms.filter(|_| cfg.honor_timestamps);
            let timestamp_ms = explicit.unwrap_or(ts);
            if timestamp_ms > ts + MAX_FUTURE_MS {
                counts.out_of_bounds += 1;
                continue;
            }
            let tracked = explicit.is_none() || cfg.track_timestamps_staleness;
            if tracked && !self.current.insert(labels.clone()) {
                counts.duplicates += 1;
                continue;
            }
            if added {
                counts.series_added += 1;
            }
            out.push(Sample {
                labels,
                timestamp_ms,
                value: series.value,
            });
        }
        if over_limit {
            return Err(ScrapeError::SampleLimit {
                samples: counts.post_relabel,
                limit,
            });
        }
        Ok(())
    }

    fn family(&mut self, name: &str) -> &mut FamilyMetadata {
        let iteration = self.iteration;
        let entry = self.metadata.entry(Box::from(name)).or_insert_with(|| {
            (
                FamilyMetadata::new(name, MetricType::Unknown, ""),
                iteration,
            )
        });
        entry.1 = iteration;
        &mut entry.0
    }

    /// The final labels of `series` (`None`: dropped) and whether it is new to the cache.
    fn resolve(
        &mut self,
        job: &Job,
        target: &Labels,
        series: &Series<'_>,
    ) -> Result<(Option<Labels>, bool), ScrapeError> {
        self.key.clear();
        self.key.push_str(&series.name);
        for (n, v) in series.labels.iter() {
            self.key.push('\u{1}');
            self.key.push_str(&n);
            self.key.push('\u{2}');
            self.key.push_str(&v);
        }
        if let Some(e) = self.cache.get_mut(self.key.as_str()) {
            e.last_iteration = self.iteration;
            return Ok((e.labels.clone(), false));
        }
        series.fill_builder(&mut self.builder);
        attach_target_labels(&mut self.builder, target, series, job.config.honor_labels);
        let labels = if job.metric_rules.apply(&mut self.builder) {
            let labels = self.builder.build();
            check_limits(job, &labels)?;
            Some(labels)
        } else {
            None
        };
        self.cache.insert(
            Box::from(self.key.as_str()),
            CacheEntry {
                labels: labels.clone(),
                last_iteration: self.iteration,
            },
        );
        Ok((labels, true))
    }
}

fn stale(labels: Labels, ts: i64) -> Sample {
    Sample {
        labels,
        timestamp_ms: ts,
        value: stale_nan(),
    }
}

/// Spec 5.4. With `honor_labels` the exposed label wins, even an empty one (the name is
/// present, so the target label is not added; the empty label then vanishes). Otherwise the
/// target label wins and each conflicting exposed value moves to `exported_<name>`, prefixing
/// again until a free name is found, shortest names first.
pub fn attach_target_labels(
    b: &mut LabelsBuilder,
    target: &Labels,
    series: &Series<'_>,
    honor_labels: bool,
) {
    if honor_labels {
        for l in target.iter() {
            if b.get(&l.name).is_none() && series.labels.get(&l.name).is_none() {
                b.set_symbols(l.name.clone(), l.value.clone());
            }
        }
        return;
    }
    let mut conflicts: Vec<(String, String)> = Vec::new();
    for l in target.iter() {
        if let Some(v) = b.get(&l.name) {
            conflicts.push((l.name.to_string(), v.to_string()));
        }
        b.set_symbols(l.name.clone(), l.value.clone());
    }
    conflicts.sort_by_key(|(n, _)| n.len());
    for (name, value) in conflicts {
        let mut n = format!("exported_{name}");
        while b.get(&n).is_some() {
            n.insert_str(0, "exported_");
        }
        b.set(&n, &value);
    }
}

/// Spec 5.3 steps 6-7: a series without a name or over a label limit fails the whole scrape.
fn check_limits(job: &Job, labels: &Labels) -> Result<(), ScrapeError> {
    let lim = &job.limits;
    if labels.metric_name().is_none() {
        return Err(ScrapeError::NoMetricName(labels.to_string()));
    }
    if lim.label_limit > 0 && labels.len() as u64 > lim.label_limit {
        return Err(ScrapeError::LabelLimit {
            series: labels.to_string(),
            labels: labels.len(),
            limit: lim.label_limit,
        });
    }
    if lim.label_name_length_limit > 0 || lim.label_value_length_limit > 0 {
        for l in labels.iter() {
            if lim.label_name_length_limit > 0 && l.name.len() as u64 > lim.label_name_length_limit
            {
                return Err(ScrapeError::LabelNameLength {
                    series: labels.to_string(),
                    len: l.name.len(),
                    limit: lim.label_name_length_limit,
                });
            }
            if lim.label_value_length_limit > 0
                && l.value.len() as u64 > lim.label_value_length_limit
            {
                return Err(ScrapeError::LabelValueLength {
                    series: labels.to_string(),
                    len: l.value.len(),
                    limit: lim.label_value_length_limit,
                });
            }
        }
    }
    Ok(())
}
