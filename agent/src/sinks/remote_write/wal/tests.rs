use super::*;
use crate::config::Duration as ConfigDuration;
use crate::model::{Labels, Sample, SourceId};

fn config(dir: &Path) -> WalConfig {
    WalConfig {
        dir: dir.to_path_buf(),
        segment_size: 4096,
        max_size: 1 << 20,
        max_age: ConfigDuration::from_secs(3600),
        fsync_interval: ConfigDuration::from_secs(1),
    }
}

fn batch(first: i64, n: i64) -> Batch {
    let mut b = Batch::new(SourceId::new("t"));
    for i in first..first + n {
        b.samples.push(Sample {
            labels: Labels::from_pairs([("__name__", "m"), ("k", "v")]),
            timestamp_ms: i,
            value: i as f64,
        });
    }
    b
}

async fn read_all(r: &mut WalReader) -> Vec<i64> {
    let mut out = Vec::new();
    while !r.at_head() {
        for rec in r.read(1000).await {
            out.extend(rec.batch.samples.iter().map(|s| s.timestamp_ms));
        }
    }
    out
}

#[tokio::test]
async fn appended_batches_are_read_back_in_order_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(&config(dir.path())).unwrap();
    let start = wal.register("q").unwrap();
    let mut r = wal.reader("q", start);
    for i in 0..50 {
        wal.append(&batch(i * 10, 10)).unwrap();
    }
    assert!(
        segment::list(wal.dir()).unwrap().len() > 2,
        "segments rotate"
    );
    let got = read_all(&mut r).await;
    assert_eq!(got, (0..500).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_reopened_wal_resumes_each_queue_at_its_committed_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(&config(dir.path())).unwrap();
    let mut r = wal.reader("q", wal.register("q").unwrap());
    wal.append(&batch(0, 10)).unwrap();
    wal.append(&batch(10, 10)).unwrap();
    let recs = r.read(10).await;
    assert_eq!(recs.len(), 1);
    wal.commit("q", recs[0].end).unwrap();
    drop((r, wal));

    let wal = Wal::open(&config(dir.path())).unwrap();
    let mut r = wal.reader("q", wal.register("q").unwrap());
    wal.append(&batch(20, 5)).unwrap();
    assert_eq!(read_all(&mut r).await, (10..25).collect::<Vec<_>>());
}

#[tokio::test]
async fn segments_every_queue_passed_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(&config(dir.path())).unwrap();
    let mut a = wal.reader("a", wal.register("a").unwrap());
    let b_start = wal.register("b").unwrap();
    for i in 0..50 {
        wal.append(&batch(i * 10, 10)).unwrap();
    }
    read_all(&mut a).await;
    wal.commit("a", a.position()).unwrap();
    let before = segment::list(wal.dir()).unwrap().len();
    assert!(before > 2);
    assert_eq!(
        segment::list(wal.dir()).unwrap()[0],
        b_start.segment,
        "b holds them"
    );
    wal.commit("b", a.position()).unwrap();
    assert_eq!(segment::list(wal.dir()).unwrap().len(), 1);
}

#[tokio::test]
async fn the_size_bound_drops_the_oldest_segments_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.max_size = 3 * 4096;
    let wal = Wal::open(&cfg).unwrap();
    let mut r = wal.reader("sizebound", wal.register("sizebound").unwrap());
    for i in 0..200 {
        wal.append(&batch(i * 10, 10)).unwrap();
    }
    let dropped = registry()
        .counter(
            "nodemeter_remote_storage_samples_dropped_total",
            "",
            &[("remote_name", "sizebound"), ("reason", "wal_size_limit")],
        )
        .get();
    let got = read_all(&mut r).await;
    assert!(dropped > 0);
    assert_eq!(
        got.len() as u64 + dropped,
        2000,
        "every sample is read or counted"
    );
    assert_eq!(*got.last().unwrap(), 1999, "the newest data is kept");
    assert!(got.windows(2).all(|w| w[0] < w[1]));
}

#[tokio::test]
async fn a_torn_tail_ends_its_segment_and_later_data_is_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(&config(dir.path())).unwrap();
    let start = wal.register("q").unwrap();
    wal.append(&batch(0, 3)).unwrap();
    let seg = segment::path(wal.dir(), start.segment);
    drop(wal);
    // A crash in the middle of a write: half a record at the end.
    let rec = record::encode(&batch(3, 3));
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&rec[..rec.len() / 2]).unwrap();
    drop(f);
    let wal = Wal::open(&config(dir.path())).unwrap();
    let mut r = wal.reader("q", wal.register("q").unwrap());
    wal.append(&batch(10, 2)).unwrap();
    assert_eq!(read_all(&mut r).await, [0, 1, 2, 10, 11]);
}

#[tokio::test]
async fn a_reader_that_keeps_up_gets_the_appended_batches_from_memory_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(&config(dir.path())).unwrap();
    let mut r = wal.reader("q", wal.register("q").unwrap());
    let mut got = Vec::new();
    let mut from_memory = 0;
    // Enough batches to rotate segments several times, one of them written only to disk.
    for i in 0..60 {
        let b = Arc::new(batch(i * 10, 10));
        if i == 30 {
            wal.append(&b).unwrap();
        } else {
            wal.append_shared(Arc::clone(&b)).unwrap();
        }
        for rec in r.read(1000).await {
            from_memory += usize::from(Arc::ptr_eq(&rec.batch, &b));
            got.extend(rec.batch.samples.iter().map(|s| s.timestamp_ms));
        }
    }
    assert!(
        segment::list(wal.dir()).unwrap().len() > 2,
        "segments rotate"
    );
    assert_eq!(got, (0..600).collect::<Vec<_>>());
    assert_eq!(
        from_memory, 59,
        "all but the disk-only batch come from memory"
    );
    assert!(r.at_head());
}
