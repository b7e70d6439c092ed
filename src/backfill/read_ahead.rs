//! Read-ahead for the backfill: worker threads (one per core) extract the metadata of the
//! next batches of rollouts while the current batch is being written, so file reading and
//! JSON parsing run on every core and overlap SQLite's inserts, commits and checkpoint
//! syncs instead of alternating with them.
//!
//! The workers only read files (`extract_metadata`); every DB write, failpoint and lease
//! check stays on the backfill's thread, which takes the results back in the order it
//! submitted the batches. The backfill submits only a few batches ahead, so what is in
//! flight is bounded by the batch size, not the home. Dropping the [`ReadAhead`] stops the
//! workers (each at its next file) and joins them, so an early return (lost lease,
//! injected failure) leaves nothing running. If no thread can be started, or the one that
//! took a batch dies, that batch is extracted inline: same results, no overlap.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::rollout::metadata::{extract_metadata, ExtractError, Extraction};

/// What extraction produced for each rollout of a batch, in batch order.
pub(super) type Extracted = Vec<Result<Extraction, ExtractError>>;

/// One submitted batch and where its results go.
struct Job {
    paths: Vec<PathBuf>,
    reply: SyncSender<Extracted>,
}

/// Extraction of batches on worker threads, handed back in submission order.
pub(super) struct ReadAhead {
    provider: String,
    jobs: Option<Sender<Job>>,
    /// Result channels of the submitted batches, oldest first.
    pending: VecDeque<Receiver<Extracted>>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl ReadAhead {
    /// No threads: every batch is extracted by [`ReadAhead::next_batch`] itself.
    pub fn inline(provider: &str) -> Self {
        ReadAhead {
            provider: provider.to_string(),
            jobs: None,
            pending: VecDeque::new(),
            stop: Arc::new(AtomicBool::new(false)),
            workers: Vec::new(),
        }
    }

    /// Starts `workers` extraction threads (at least one).
    pub fn start(provider: &str, workers: usize) -> Self {
        let mut ahead = ReadAhead::inline(provider);
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers.max(1) {
            let (rx, stop, provider) = (rx.clone(), ahead.stop.clone(), provider.to_string());
            let spawned = std::thread::Builder::new()
                .name(format!("backfill-read-ahead-{i}"))
                .spawn(move || work(&rx, &stop, &provider));
            match spawned {
                Ok(handle) => ahead.workers.push(handle),
                Err(err) => tracing::debug!("backfill read-ahead thread not started ({err})"),
            }
        }
        if ahead.workers.is_empty() {
            tracing::debug!("no backfill read-ahead thread; extracting inline");
        } else {
            ahead.jobs = Some(tx);
        }
        ahead
    }

    /// Batches submitted and not yet taken back.
    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Queues `paths` for extraction (nothing happens until `next_batch` without workers).
    pub fn submit(&mut self, paths: Vec<PathBuf>) {
        let Some(jobs) = &self.jobs else { return };
        let (reply, rx) = sync_channel(1);
        if jobs.send(Job { paths, reply }).is_ok() {
            self.pending.push_back(rx);
        } else {
            // Every worker is gone: extract inline from now on.
            self.jobs = None;
            self.pending.clear();
        }
    }

    /// The results for the oldest batch not yet taken back, whose rollouts are `paths` —
    /// the same paths, in the same order, as that [`ReadAhead::submit`].
    pub fn next_batch<'p>(&mut self, paths: impl ExactSizeIterator<Item = &'p Path>) -> Extracted {
        let ready = self.pending.pop_front().and_then(|rx| rx.recv().ok());
        match ready {
            Some(extracted) if extracted.len() == paths.len() => extracted,
            _ => paths.map(|p| extract_metadata(p, &self.provider)).collect(),
        }
    }
}

/// One worker: take a batch, extract it, send it back; stop when asked or disconnected.
fn work(jobs: &Mutex<Receiver<Job>>, stop: &AtomicBool, provider: &str) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let mut extracted = Vec::with_capacity(job.paths.len());
        for path in &job.paths {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            extracted.push(extract_metadata(path, provider));
        }
        // The backfill may have returned early and dropped the receiver: nothing to do.
        let _ = job.reply.send(extracted);
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Disconnect so idle workers wake up and exit.
        self.jobs = None;
        self.pending.clear();
        for worker in self.workers.drain(..) {
            if worker.join().is_err() {
                tracing::warn!("backfill read-ahead thread panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{generate_home, FixtureOptions};

    fn home(threads: usize) -> (tempfile::TempDir, Vec<PathBuf>) {
        let dir = tempfile::tempdir().unwrap();
        let opts = FixtureOptions {
            threads,
            archived: 0,
            ..FixtureOptions::default()
        };
        let mut paths: Vec<PathBuf> = generate_home(dir.path(), &opts)
            .unwrap()
            .into_iter()
            .map(|t| t.path)
            .collect();
        paths.sort();
        (dir, paths)
    }

    fn same(got: Extracted, batch: &[PathBuf]) {
        assert_eq!(got.len(), batch.len());
        for (path, got) in batch.iter().zip(got) {
            match (got, extract_metadata(path, "openai")) {
                (Ok(a), Ok(b)) => assert_eq!(a, b),
                (Err(_), Err(_)) => {}
                (a, b) => panic!("read-ahead {a:?} differs from inline {b:?}"),
            }
        }
    }

    /// Dropping the read-ahead (a backfill that ends early: lease lost, error) stops and
    /// joins its workers at once, mid-batch: no thread goes on parsing files for a backfill
    /// that is over. Catches a drop that leaves them to run out their queue.
    #[test]
    fn dropping_it_stops_and_joins_every_worker() {
        let (_dir, paths) = home(2);
        let mut read_ahead = ReadAhead::start("openai", 2);
        // Far more work than the drop below leaves time for.
        for _ in 0..4 {
            read_ahead.submit(paths.iter().cycle().take(20_000).cloned().collect());
        }
        let stop = read_ahead.stop.clone();
        drop(read_ahead);
        assert_eq!(Arc::strong_count(&stop), 1, "a worker outlived the drop");
    }

    #[test]
    fn batches_come_back_in_submission_order_on_several_workers() {
        let (_dir, mut paths) = home(13);
        paths.insert(3, PathBuf::from("/nonexistent/rollout-x.jsonl"));
        let mut read_ahead = ReadAhead::start("openai", 3);
        assert_eq!(read_ahead.workers.len(), 3);
        let batches: Vec<&[PathBuf]> = paths.chunks(3).collect();
        for batch in &batches {
            read_ahead.submit(batch.to_vec());
        }
        assert_eq!(read_ahead.in_flight(), 5);
        for batch in &batches {
            same(
                read_ahead.next_batch(batch.iter().map(PathBuf::as_path)),
                batch,
            );
        }
        assert_eq!(read_ahead.in_flight(), 0);
    }

    #[test]
    fn inline_extracts_without_threads() {
        let (_dir, paths) = home(3);
        let mut read_ahead = ReadAhead::inline("openai");
        read_ahead.submit(paths.clone());
        assert!(read_ahead.workers.is_empty() && read_ahead.in_flight() == 0);
        same(
            read_ahead.next_batch(paths.iter().map(PathBuf::as_path)),
            &paths,
        );
    }

    #[test]
    fn dropping_early_stops_the_workers() {
        let (_dir, paths) = home(12);
        let mut read_ahead = ReadAhead::start("openai", 2);
        for batch in paths.chunks(2) {
            read_ahead.submit(batch.to_vec());
        }
        let first = read_ahead.next_batch(paths[..2].iter().map(PathBuf::as_path));
        assert_eq!(first.len(), 2);
        // Returns only once every worker has exited.
        drop(read_ahead);
    }

    /// A batch that lines up is handed back as the workers extracted it, not read again:
    /// asked with other paths of the same length, the answer is still the submitted ones'.
    /// Catches a read-ahead whose work is thrown away (every batch read twice).
    #[test]
    fn a_batch_that_lines_up_is_the_workers_extraction() {
        let (_dir, paths) = home(4);
        let mut read_ahead = ReadAhead::start("openai", 1);
        read_ahead.submit(paths[..2].to_vec());
        let got = read_ahead.next_batch(paths[2..].iter().map(PathBuf::as_path));
        same(got, &paths[..2]);
    }

    #[test]
    fn a_batch_that_does_not_line_up_is_extracted_inline() {
        let (_dir, paths) = home(4);
        let mut read_ahead = ReadAhead::start("openai", 1);
        read_ahead.submit(paths[..2].to_vec());
        let got = read_ahead.next_batch(paths[..1].iter().map(PathBuf::as_path));
        same(got, &paths[..1]);
        // Nothing submitted: inline.
        same(
            read_ahead.next_batch(paths[1..].iter().map(PathBuf::as_path)),
            &paths[1..],
        );
    }
}
