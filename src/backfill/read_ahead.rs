//! Read-ahead for the backfill: a worker thread extracts the metadata of the next batch of
//! rollouts while the current batch is being written, so file reading and JSON parsing
//! overlap SQLite's inserts, commits and checkpoint syncs instead of alternating with them.
//!
//! The worker only reads files (`extract_metadata`); every DB write, failpoint and lease
//! check stays on the backfill's thread, in batch order. It runs at most two batches ahead
//! (one queued, one being built) and stops as soon as the [`ReadAhead`] is dropped, so an
//! early return (lost lease, injected failure) leaves nothing running. If the thread cannot
//! be started or dies, batches are extracted inline: same results, no overlap.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;

use crate::rollout::metadata::{extract_metadata, ExtractError, Extraction};

/// What extraction produced for each rollout of a batch, in batch order.
pub(super) type Extracted = Vec<Result<Extraction, ExtractError>>;

/// Extraction of a fixed sequence of rollouts, batch by batch, ahead of its consumer.
pub(super) struct ReadAhead {
    provider: String,
    ahead: Option<Receiver<Extracted>>,
    worker: Option<JoinHandle<()>>,
}

impl ReadAhead {
    /// Starts extracting `paths` in batches of `batch_size`, in order. A single batch has
    /// nothing to overlap with, so it gets no thread.
    pub fn start(paths: Vec<PathBuf>, batch_size: usize, provider: &str) -> Self {
        let batch_size = batch_size.max(1);
        if paths.len() <= batch_size {
            return ReadAhead {
                provider: provider.to_string(),
                ahead: None,
                worker: None,
            };
        }
        let (tx, rx) = sync_channel::<Extracted>(1);
        let worker_provider = provider.to_string();
        let worker = std::thread::Builder::new()
            .name("backfill-read-ahead".into())
            .spawn(move || {
                for batch in paths.chunks(batch_size) {
                    let extracted = batch
                        .iter()
                        .map(|p| extract_metadata(p, &worker_provider))
                        .collect();
                    if tx.send(extracted).is_err() {
                        // The consumer is gone (finished early or failed): stop reading.
                        return;
                    }
                }
            });
        let worker = match worker {
            Ok(w) => Some(w),
            Err(err) => {
                tracing::debug!(
                    "backfill read-ahead thread not started ({err}); extracting inline"
                );
                None
            }
        };
        ReadAhead {
            provider: provider.to_string(),
            ahead: worker.as_ref().map(|_| rx),
            worker,
        }
    }

    /// The results for the next batch, whose rollouts are `paths` — the same paths, in the
    /// same order, as that batch of [`ReadAhead::start`]'s list.
    pub fn next_batch<'p>(&mut self, paths: impl ExactSizeIterator<Item = &'p Path>) -> Extracted {
        let ready = self.ahead.as_ref().and_then(|rx| rx.recv().ok());
        match ready {
            Some(extracted) if extracted.len() == paths.len() => extracted,
            _ => {
                // No worker, or it stopped: extract this and every later batch here.
                self.ahead = None;
                paths.map(|p| extract_metadata(p, &self.provider)).collect()
            }
        }
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        // Disconnect first so a worker blocked on the full channel wakes up and exits.
        self.ahead = None;
        if let Some(worker) = self.worker.take() {
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

    #[test]
    fn batches_match_inline_extraction_in_order() {
        let (_dir, mut paths) = home(7);
        paths.insert(3, PathBuf::from("/nonexistent/rollout-x.jsonl"));
        let mut read_ahead = ReadAhead::start(paths.clone(), 3, "openai");
        let mut sizes = Vec::new();
        for batch in paths.chunks(3) {
            let got = read_ahead.next_batch(batch.iter().map(PathBuf::as_path));
            sizes.push(got.len());
            for (path, got) in batch.iter().zip(got) {
                match (got, extract_metadata(path, "openai")) {
                    (Ok(a), Ok(b)) => assert_eq!(a, b),
                    (Err(_), Err(_)) => {}
                    (a, b) => panic!("read-ahead {a:?} differs from inline {b:?}"),
                }
            }
        }
        assert_eq!(sizes, [3, 3, 2]);
    }

    #[test]
    fn a_single_batch_is_extracted_inline() {
        let (_dir, paths) = home(3);
        let mut read_ahead = ReadAhead::start(paths.clone(), 3, "openai");
        assert!(read_ahead.worker.is_none());
        let got = read_ahead.next_batch(paths.iter().map(PathBuf::as_path));
        assert!(got.iter().all(Result::is_ok) && got.len() == 3);
    }

    #[test]
    fn dropping_early_stops_the_worker() {
        let (_dir, paths) = home(12);
        let mut read_ahead = ReadAhead::start(paths.clone(), 2, "openai");
        let first = read_ahead.next_batch(paths[..2].iter().map(PathBuf::as_path));
        assert_eq!(first.len(), 2);
        // Returns only once the worker (blocked two batches ahead) has exited.
        drop(read_ahead);
    }

    #[test]
    fn a_batch_that_does_not_line_up_is_extracted_inline() {
        let (_dir, paths) = home(4);
        let mut read_ahead = ReadAhead::start(paths.clone(), 2, "openai");
        let got = read_ahead.next_batch(paths[..1].iter().map(PathBuf::as_path));
        assert_eq!(got.len(), 1);
        assert!(read_ahead.ahead.is_none(), "falls back to inline for good");
        let rest = read_ahead.next_batch(paths[1..].iter().map(PathBuf::as_path));
        assert_eq!(rest.len(), 3);
    }
}
