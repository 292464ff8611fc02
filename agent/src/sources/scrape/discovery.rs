//! Discovery from the config file: `static_configs` and `file_sd_configs` (Prometheus's file
//! SD format, JSON or YAML, re-read when a file changes and every `refresh_interval`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::config::FileSdConfig;
use super::job::Job;
use super::target::{ADDRESS, ScrapeGroup};
use crate::model::{Labels, LabelsBuilder};

/// How often file SD checks its files for changes (this stands in for inotify).
const FILE_SD_POLL: Duration = Duration::from_secs(1);

/// The label file SD adds: the file a target came from.
pub const META_FILEPATH: &str = "__meta_filepath";

fn group_labels(
    targets: &[String],
    labels: &BTreeMap<String, String>,
    extra: &[(&str, &str)],
) -> Vec<Labels> {
    targets
        .iter()
        .map(|t| {
            let mut b = LabelsBuilder::with_capacity(labels.len() + 1 + extra.len());
            for (k, v) in labels {
                b.set(k, v);
            }
            for (k, v) in extra {
                b.set(k, v);
            }
            b.set(ADDRESS, t);
            b.build()
        })
        .collect()
}

/// The groups of a job's `static_configs`.
pub fn static_groups(job: &Arc<Job>) -> Vec<ScrapeGroup> {
    job.config
        .static_configs
        .iter()
        .map(|s| ScrapeGroup {
            job: Arc::clone(job),
            targets: group_labels(&s.targets, &s.labels, &[]),
        })
        .collect()
}

/// A target group as file SD files write it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Why a file SD file was not used (the previous targets from it are kept).
#[derive(Debug, thiserror::Error)]
pub enum FileSdError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: not a list of target groups: {message}")]
    Parse { file: String, message: String },
}

fn read_file_groups(path: &Path) -> Result<Vec<FileGroup>, FileSdError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| FileSdError::Read {
        file: file.clone(),
        source,
    })?;
    let parsed: Result<Option<Vec<FileGroup>>, String> = if file.ends_with(".json") {
        serde_json::from_str(&text).map_err(|e| e.to_string())
    } else {
        serde_yaml::from_str(&text).map_err(|e| e.to_string())
    };
    parsed
        .map(Option::unwrap_or_default)
        .map_err(|message| FileSdError::Parse { file, message })
}

/// Files matched by one pattern (the last path element may be a glob).
fn expand(pattern: &str) -> Vec<PathBuf> {
    match glob::glob(pattern) {
        Ok(paths) => paths.filter_map(Result::ok).collect(),
        Err(_) => Vec::new(),
    }
}

struct WatchedFile {
    modified: Option<SystemTime>,
    len: u64,
    groups: Vec<ScrapeGroup>,
}

struct FileSd {
    job: Arc<Job>,
    config: FileSdConfig,
    files: HashMap<PathBuf, WatchedFile>,
    last_full_read: Instant,
}

impl FileSd {
    /// Re-reads what changed; true when the groups changed.
    fn refresh(&mut self, force: bool) -> bool {
        let mut seen = Vec::new();
        let mut changed = false;
        for pattern in &self.config.files {
            for path in expand(pattern) {
                let meta = std::fs::metadata(&path).ok();
                let modified = meta.as_ref().and_then(|m| m.modified().ok());
                let len = meta.as_ref().map_or(0, std::fs::Metadata::len);
                seen.push(path.clone());
                let unchanged = self
                    .files
                    .get(&path)
                    .is_some_and(|w| w.modified == modified && w.len == len);
                if unchanged && !force {
                    continue;
                }
                match read_file_groups(&path) {
                    Ok(groups) => {
                        let name = path.display().to_string();
                        let groups: Vec<ScrapeGroup> = groups
                            .iter()
                            .map(|g| ScrapeGroup {
                                job: Arc::clone(&self.job),
                                targets: group_labels(
                                    &g.targets,
                                    &g.labels,
                                    &[(META_FILEPATH, &name)],
                                ),
                            })
                            .collect();
                        debug!(file = %name, groups = groups.len(), "file SD read");
                        self.files.insert(
                            path,
                            WatchedFile {
                                modified,
                                len,
                                groups,
                            },
                        );
                        changed = true;
                    }
                    Err(e) => {
                        warn!(job = %self.job.name, error = %e, "file SD: keeping the previous targets of this file");
                        // Remember the stamp so a broken file is reported once per change.
                        if let Some(w) = self.files.get_mut(&path) {
                            w.modified = modified;
                            w.len = len;
                        } else {
                            self.files.insert(
                                path,
                                WatchedFile {
                                    modified,
                                    len,
                                    groups: Vec::new(),
                                },
                            );
                        }
                    }
                }
            }
        }
        let before = self.files.len();
        self.files.retain(|p, _| seen.contains(p));
        changed || before != self.files.len()
    }

    fn groups(&self) -> impl Iterator<Item = &ScrapeGroup> {
        self.files.values().flat_map(|w| w.groups.iter())
    }
}

/// Discovery for the jobs of the config file: publishes static groups and file SD groups on
/// one `watch` channel, re-reading files as they change.
pub struct ConfigDiscovery {
    statics: Vec<ScrapeGroup>,
    files: Vec<FileSd>,
    tx: watch::Sender<Vec<ScrapeGroup>>,
}

impl ConfigDiscovery {
    pub fn new(jobs: &[Arc<Job>]) -> (Self, watch::Receiver<Vec<ScrapeGroup>>) {
        let statics = jobs.iter().flat_map(static_groups).collect();
        let files = jobs
            .iter()
            .flat_map(|job| {
                job.config.file_sd_configs.iter().map(|c| FileSd {
                    job: Arc::clone(job),
                    config: c.clone(),
                    files: HashMap::new(),
                    last_full_read: Instant::now(),
                })
            })
            .collect();
        let (tx, rx) = watch::channel(Vec::new());
        let mut d = Self { statics, files, tx };
        for f in &mut d.files {
            f.refresh(true);
        }
        d.publish();
        (d, rx)
    }

    fn publish(&self) {
        let all: Vec<ScrapeGroup> = self
            .statics
            .iter()
            .cloned()
            .chain(self.files.iter().flat_map(|f| f.groups().cloned()))
            .collect();
        self.tx.send_replace(all);
    }

    /// Watches the files until shutdown (returns at once without file SD).
    pub async fn run(mut self, shutdown: CancellationToken) {
        if self.files.is_empty() {
            // Keep the sender alive so the manager keeps these groups.
            shutdown.cancelled().await;
            return;
        }
        let mut tick = tokio::time::interval(FILE_SD_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let mut changed = false;
            for f in &mut self.files {
                let force = f.last_full_read.elapsed() >= f.config.refresh_interval.as_std();
                if force {
                    f.last_full_read = Instant::now();
                }
                changed |= f.refresh(force);
            }
            if changed {
                self.publish();
            }
        }
    }
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
    fn static_targets_carry_group_labels_and_address() {
        let j =
            job("job_name: a\nstatic_configs:\n  - targets: [h:1, h:2]\n    labels: {env: prod}\n");
        let g = static_groups(&j);
        assert_eq!(g.len(), 1);
        assert_eq!(
            g[0].targets[1].to_string(),
            r#"{__address__="h:2",env="prod"}"#
        );
    }

    #[test]
    fn file_sd_reads_json_and_yaml_globs_and_keeps_targets_of_a_broken_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        std::fs::write(
            dir.path().join("a.json"),
            r#"[{"targets": ["h:1"], "labels": {"team": "x"}}]"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("b.yml"), "- targets: [h:2]\n").unwrap();
        let j = job(&format!(
            "job_name: f\nfile_sd_configs:\n  - files: ['{d}/*.json', '{d}/*.yml']\n"
        ));
        let (mut disc, rx) = ConfigDiscovery::new(&[j]);
        let addresses = |rx: &watch::Receiver<Vec<ScrapeGroup>>| {
            let mut v: Vec<String> = rx
                .borrow()
                .iter()
                .flat_map(|g| {
                    g.targets
                        .iter()
                        .map(|t| t.get(ADDRESS).unwrap_or("").to_string())
                })
                .collect();
            v.sort();
            v
        };
        assert_eq!(addresses(&rx), ["h:1", "h:2"]);
        let first = rx.borrow()[0].targets[0].clone();
        assert!(first.get(META_FILEPATH).is_some());

        std::fs::write(dir.path().join("b.yml"), "- targets: [h:3, h:4]\n").unwrap();
        assert!(disc.files[0].refresh(true));
        disc.publish();
        assert_eq!(addresses(&rx), ["h:1", "h:3", "h:4"]);

        std::fs::write(dir.path().join("b.yml"), "- targets: {broken\n").unwrap();
        disc.files[0].refresh(true);
        disc.publish();
        assert_eq!(
            addresses(&rx),
            ["h:1", "h:3", "h:4"],
            "a broken file keeps its targets"
        );

        std::fs::remove_file(dir.path().join("a.json")).unwrap();
        assert!(disc.files[0].refresh(false));
        disc.publish();
        assert_eq!(addresses(&rx), ["h:3", "h:4"]);
    }
}
