//! The same-work backfill baseline: an honest limit for the reference backfill.
//!
//! It builds the same index (every rollout, every column, the migrated schema with its
//! indexes, whole-file extraction with `extract_metadata`, archived rows stamped as the
//! reference stamps them) as fast as this machine allows: files are extracted on every
//! core, one writer upserts them in transactions of one batch each (the reference's batch
//! size), and nothing else happens — no lease, no heartbeat, no checkpoints, no ordering by
//! watermark, no failure bookkeeping.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::sync_channel;

use crate::process::ProcessContext;
use crate::rollout::layout::Root;
use crate::rollout::metadata::extract_metadata;
use crate::state::{threads, OpenMode, RuntimeOptions, StateRuntime};
use crate::thread::ThreadMetadata;

/// Builds the index of `codex_home` into a fresh DB under `sqlite_home`; returns the rows.
pub fn same_work_index(
    codex_home: &Path,
    sqlite_home: &Path,
    batch_size: usize,
) -> Result<usize, String> {
    let mut files: Vec<(PathBuf, Root)> = Vec::new();
    for root in Root::ALL {
        let mut found = Vec::new();
        super::backfill::walk(&root.dir(codex_home), &mut found);
        files.extend(found.into_iter().map(|p| (p, root)));
    }
    let mut opts = RuntimeOptions::new(codex_home);
    opts.sqlite_home = sqlite_home.to_path_buf();
    let ctx = ProcessContext::plain("bench-same-work");
    let rt = StateRuntime::open(&ctx, opts, OpenMode::CreateAndMigrate)
        .map_err(|e| format!("same-work baseline: {e}"))?;
    let provider = rt.default_provider().to_string();
    let batches: Vec<&[(PathBuf, Root)]> = files.chunks(batch_size.max(1)).collect();
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (tx, rx) = sync_channel::<Result<Vec<ThreadMetadata>, String>>(workers * 2);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let tx = tx.clone();
            let (batches, next, provider) = (&batches, &next, &provider);
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(batch) = batches.get(i) else { return };
                let rows = batch
                    .iter()
                    .map(|(path, root)| {
                        let mut meta = extract_metadata(path, provider)
                            .map_err(|e| e.to_string())?
                            .metadata;
                        if root.is_archived() && meta.archived_at_ms.is_none() {
                            meta.archived_at_ms = Some(meta.updated_at_ms);
                        }
                        Ok(meta)
                    })
                    .collect();
                if tx.send(rows).is_err() {
                    return;
                }
            });
        }
        drop(tx);
        let mut written = 0usize;
        for rows in rx {
            let rows = rows?;
            rt.write("same-work batch", |t| {
                for meta in &rows {
                    threads::upsert(t, meta).map_err(rt.err("same-work upsert"))?;
                }
                Ok(())
            })
            .map_err(|e| format!("same-work baseline: {e}"))?;
            written += rows.len();
        }
        Ok(written)
    })
}
