//! "Files are the truth", judged from the bytes: the multiset of content digests of every
//! rollout file at setup, updated by exactly what each injected fault changed (taken from
//! censuses just before and after the injection), must still be contained in the files at
//! the end. A file may move (its bytes are found elsewhere); a file whose bytes are gone is
//! lost or overwritten, whoever did it, and its original bytes go into the failure bundle
//! next to what is at its path now.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::census::{Census, CensusEntry};

/// The expected content of the roots.
#[derive(Debug, Clone, Default)]
pub struct FilesLedger {
    expected: BTreeMap<String, Vec<CensusEntry>>,
}

/// One expected file whose bytes are nowhere in the roots any more.
#[derive(Debug, Clone)]
pub struct Loss {
    pub original: CensusEntry,
    /// What is at the original path now (an overwrite), if anything.
    pub now_at_path: Option<CensusEntry>,
}

impl FilesLedger {
    pub fn new(baseline: &Census) -> FilesLedger {
        let mut ledger = FilesLedger::default();
        for e in &baseline.entries {
            ledger
                .expected
                .entry(e.digest.clone())
                .or_default()
                .push(e.clone());
        }
        ledger
    }

    /// Accounts for one injected fault's own changes: what disappeared between `before`
    /// and `after` is no longer expected, what appeared is.
    pub fn account_fault(&mut self, before: &Census, after: &Census) {
        let (removed, added) = difference(before, after);
        for e in removed {
            if let Some(v) = self.expected.get_mut(&e.digest) {
                // Prefer forgetting the entry at the same path.
                let i = v.iter().position(|x| x.path == e.path).unwrap_or(0);
                v.remove(i);
                if v.is_empty() {
                    self.expected.remove(&e.digest);
                }
            }
        }
        for e in added {
            self.expected.entry(e.digest.clone()).or_default().push(e);
        }
    }

    /// The expected files whose bytes `now` no longer holds (as many times as expected).
    pub fn losses(&self, now: &Census) -> Vec<Loss> {
        let mut have: BTreeMap<&str, usize> = BTreeMap::new();
        for e in &now.entries {
            *have.entry(e.digest.as_str()).or_default() += 1;
        }
        let mut lost = Vec::new();
        for (digest, want) in &self.expected {
            let got = have.get(digest.as_str()).copied().unwrap_or(0);
            if got >= want.len() {
                continue;
            }
            // The copies whose path no longer holds these bytes are the lost ones.
            let mut missing: Vec<&CensusEntry> = want
                .iter()
                .filter(|w| {
                    !now.entries
                        .iter()
                        .any(|n| n.path == w.path && n.digest == w.digest)
                })
                .collect();
            missing.truncate(want.len() - got);
            for m in missing {
                lost.push(Loss {
                    original: m.clone(),
                    now_at_path: now.entries.iter().find(|n| n.path == m.path).cloned(),
                });
            }
        }
        lost
    }

    /// One failure line per loss, paths relative to `home`.
    pub fn describe(losses: &[Loss], home: &Path) -> Vec<String> {
        losses
            .iter()
            .map(|l| {
                let rel = relative(&l.original.path, home);
                let now = match &l.now_at_path {
                    Some(n) => format!("overwritten (now {} bytes, digest {})", n.bytes.len(), &n.digest[..12]),
                    None => "gone".to_string(),
                };
                format!(
                    "files are the truth: the bytes of {rel} (claims {}, digest {}) are no longer in any rollout file: {now}",
                    l.original.claimed_id.as_deref().unwrap_or("no id"),
                    &l.original.digest[..12],
                )
            })
            .collect()
    }

    /// The end-of-run verdict: one failure per lost file (paths relative to `home`), the
    /// lost versions kept under `bundle_dir`.
    pub fn judge(&self, home: &Path, bundle_dir: &Path) -> Vec<String> {
        let losses = self.losses(&Census::take(home));
        let mut f = Self::describe(&losses, home);
        if !losses.is_empty() {
            if let Err(e) = Self::keep_versions(&losses, bundle_dir) {
                f.push(format!("cannot keep the lost rollouts: {e}"));
            }
        }
        f
    }

    /// Writes each lost file's original bytes (and its overwrite, if any) under `dir`.
    pub fn keep_versions(losses: &[Loss], dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir)?;
        let mut written = Vec::new();
        for (i, l) in losses.iter().enumerate() {
            let name = l
                .original
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "rollout".into());
            let before = dir.join(format!("{i}-{name}.before"));
            std::fs::write(&before, &l.original.bytes)?;
            written.push(before);
            if let Some(now) = &l.now_at_path {
                let after = dir.join(format!("{i}-{name}.after"));
                std::fs::write(&after, &now.bytes)?;
                written.push(after);
            }
        }
        Ok(written)
    }
}

/// Entries of `before` not in `after` and of `after` not in `before`, as multisets of
/// (path, digest).
fn difference(before: &Census, after: &Census) -> (Vec<CensusEntry>, Vec<CensusEntry>) {
    let key = |e: &CensusEntry| (e.path.clone(), e.digest.clone());
    let b: BTreeMap<_, _> = before.entries.iter().map(|e| (key(e), e)).collect();
    let a: BTreeMap<_, _> = after.entries.iter().map(|e| (key(e), e)).collect();
    let removed = b
        .iter()
        .filter(|(k, _)| !a.contains_key(*k))
        .map(|(_, e)| (*e).clone())
        .collect();
    let added = a
        .iter()
        .filter(|(k, _)| !b.contains_key(*k))
        .map(|(_, e)| (*e).clone())
        .collect();
    (removed, added)
}

fn relative(p: &Path, home: &Path) -> String {
    p.strip_prefix(home).unwrap_or(p).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("sessions/2026/01/01/rollout-a.jsonl");
        let b = dir.path().join("sessions/2026/01/01/rollout-b.jsonl");
        std::fs::create_dir_all(a.parent().unwrap()).unwrap();
        std::fs::write(
            &a,
            "{\"type\":\"session_meta\",\"payload\":{\"id\":\"a\"}}\n",
        )
        .unwrap();
        std::fs::write(
            &b,
            "{\"type\":\"session_meta\",\"payload\":{\"id\":\"b\"}}\n",
        )
        .unwrap();
        (dir, a, b)
    }

    #[test]
    fn a_move_is_allowed() {
        let (dir, a, _) = home();
        let ledger = FilesLedger::new(&Census::take(dir.path()));
        let to = dir.path().join("archived_sessions/rollout-a.jsonl");
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::rename(&a, &to).unwrap();
        assert!(ledger.losses(&Census::take(dir.path())).is_empty());
    }

    #[test]
    fn an_overwrite_by_the_code_under_test_fails_and_keeps_both_versions() {
        let (dir, a, _) = home();
        let ledger = FilesLedger::new(&Census::take(dir.path()));
        std::fs::write(&a, "rewritten").unwrap();
        let losses = ledger.losses(&Census::take(dir.path()));
        assert_eq!(losses.len(), 1);
        let text = FilesLedger::describe(&losses, dir.path()).join("\n");
        assert!(
            text.contains("rollout-a.jsonl") && text.contains("overwritten"),
            "{text}"
        );
        let kept = FilesLedger::keep_versions(&losses, &dir.path().join("bundle")).unwrap();
        assert_eq!(kept.len(), 2);
        assert_eq!(std::fs::read(&kept[1]).unwrap(), b"rewritten");
    }

    #[test]
    fn a_faults_own_change_is_forgiven_but_not_an_earlier_one() {
        let (dir, a, b) = home();
        let mut ledger = FilesLedger::new(&Census::take(dir.path()));
        // The code under test deletes b, then a fault garbles a.
        std::fs::remove_file(&b).unwrap();
        let before = Census::take(dir.path());
        std::fs::write(&a, "garbled").unwrap();
        ledger.account_fault(&before, &Census::take(dir.path()));
        let losses = ledger.losses(&Census::take(dir.path()));
        assert_eq!(losses.len(), 1, "{losses:?}");
        assert_eq!(losses[0].original.path, b);
    }

    #[test]
    fn a_lost_duplicate_counts() {
        let (dir, a, _) = home();
        let copy = dir.path().join("sessions/2026/01/01/rollout-a-copy.jsonl");
        std::fs::copy(&a, &copy).unwrap();
        let ledger = FilesLedger::new(&Census::take(dir.path()));
        std::fs::remove_file(&copy).unwrap();
        assert_eq!(ledger.losses(&Census::take(dir.path())).len(), 1);
    }
}
