//! The remote-write sink run in the test process: batches built by the test go straight into
//! its channel, exactly as the pipeline would hand them over.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use nodemeter::config::Config;
use nodemeter::model::{Batch, Labels, Sample, SourceId};
use nodemeter::sinks::remote_write::RemoteWrite;

pub struct Sink {
    tx: Option<mpsc::Sender<Arc<Batch>>>,
    join: JoinHandle<()>,
}

impl Sink {
    /// Starts the sink from a config file's text (its `remote_write`, `remote_write_wal` and
    /// `global.external_labels`), with the WAL under `data_dir`.
    pub fn start(config_yaml: &str, data_dir: &Path) -> Self {
        let mut config = Config::from_yaml(config_yaml, "test.yaml").expect("valid config");
        config.remote_write_wal.dir = data_dir.to_path_buf();
        let rw = RemoteWrite::start(
            &config.remote_write,
            &config.remote_write_wal,
            &config.global.external_labels,
        )
        .expect("remote write starts");
        let (tx, rx) = mpsc::channel(16);
        let join = tokio::spawn(rw.run(rx));
        Self { tx: Some(tx), join }
    }

    pub async fn send(&self, batch: Batch) {
        self.tx
            .as_ref()
            .expect("open")
            .send(Arc::new(batch))
            .await
            .expect("sink running");
    }

    /// Closes the channel (as the pipeline does at shutdown) and waits for the sink to flush.
    pub async fn finish(mut self) {
        self.tx.take();
        self.join.await.expect("sink task");
    }
}

/// One sample as a test writes it: label pairs, timestamp ms, value.
pub type Row<'a> = (&'a [(&'a str, &'a str)], i64, f64);

/// A batch of `(labels, timestamp ms, value)`.
pub fn batch(samples: &[Row<'_>]) -> Batch {
    let mut b = Batch::new(SourceId::new("test"));
    for (labels, ts, v) in samples {
        b.samples.push(Sample {
            labels: Labels::from_pairs(labels.iter().copied()),
            timestamp_ms: *ts,
            value: *v,
        });
    }
    b
}

/// A batch from ready-made label sets.
pub fn batch_of(rows: impl IntoIterator<Item = (Labels, i64, f64)>) -> Batch {
    let mut b = Batch::new(SourceId::new("test"));
    for (labels, timestamp_ms, value) in rows {
        b.samples.push(Sample {
            labels,
            timestamp_ms,
            value,
        });
    }
    b
}

/// Now in milliseconds, rounded down to a whole second (so timestamps are easy to compare).
pub fn now_ms() -> i64 {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    ms - ms % 1000
}
