//! One handle per process, seen from `/proc`: the number of open descriptors on the DB
//! file in `/proc/<pid>/fd` of each worker process, sampled while it runs. The judge is a
//! bound the target declares (how many connections one handle opens); a process over it
//! has opened a second handle, whatever it reports.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Open descriptors of `pid` on `db` (symlinks in `/proc/<pid>/fd` resolved to `db`).
pub fn db_descriptors(pid: u32, db: &Path) -> std::io::Result<usize> {
    let want = std::fs::canonicalize(db).unwrap_or_else(|_| db.to_path_buf());
    let mut n = 0;
    for e in std::fs::read_dir(format!("/proc/{pid}/fd"))?.flatten() {
        if std::fs::read_link(e.path()).is_ok_and(|t| t == want) {
            n += 1;
        }
    }
    Ok(n)
}

/// Samples the DB descriptors of registered processes until stopped; keeps the maximum
/// seen per process.
pub struct FdSampler {
    pids: Arc<Mutex<Vec<(String, u32)>>>,
    max: Arc<Mutex<BTreeMap<String, usize>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FdSampler {
    pub fn start(db: PathBuf, every: Duration) -> FdSampler {
        let pids: Arc<Mutex<Vec<(String, u32)>>> = Arc::default();
        let max: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
        let (p, m) = (pids.clone(), max.clone());
        let task = tokio::spawn(async move {
            loop {
                let now: Vec<(String, u32)> = p.lock().map(|v| v.clone()).unwrap_or_default();
                for (name, pid) in now {
                    if let Ok(n) = db_descriptors(pid, &db) {
                        if let Ok(mut m) = m.lock() {
                            let e = m.entry(name).or_default();
                            *e = (*e).max(n);
                        }
                    }
                }
                tokio::time::sleep(every).await;
            }
        });
        FdSampler { pids, max, task }
    }

    pub fn watch(&self, name: &str, pid: u32) {
        if let Ok(mut p) = self.pids.lock() {
            p.push((name.to_string(), pid));
        }
    }

    pub fn unwatch(&self, name: &str) {
        if let Ok(mut p) = self.pids.lock() {
            p.retain(|(n, _)| n != name);
        }
    }

    /// The maximum descriptors seen per process name.
    pub fn stop(self) -> BTreeMap<String, usize> {
        self.task.abort();
        self.max.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// Violations of "at most `per_handle` descriptors on the DB file per process".
pub fn judge(max: &BTreeMap<String, usize>, per_handle: usize) -> Vec<String> {
    max.iter()
        .filter(|(_, n)| **n > per_handle)
        .map(|(name, n)| {
            format!("one handle per process: {name} had {n} descriptors open on the DB file (one handle opens at most {per_handle})")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_this_process_descriptors_on_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state_5.sqlite");
        std::fs::write(&db, b"").unwrap();
        let pid = std::process::id();
        assert_eq!(db_descriptors(pid, &db).unwrap(), 0);
        let _a = std::fs::File::open(&db).unwrap();
        let _b = std::fs::File::open(&db).unwrap();
        assert_eq!(db_descriptors(pid, &db).unwrap(), 2);
    }

    #[tokio::test]
    async fn the_sampler_sees_a_process_open_a_second_handle() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state_5.sqlite");
        let first = rusqlite::Connection::open(&db).unwrap();
        first.execute_batch("CREATE TABLE t (x)").unwrap();
        let sampler = FdSampler::start(db.clone(), Duration::from_millis(1));
        sampler.watch("me", std::process::id());
        // A second and third connection (a second handle) while the sampler watches.
        let _second = rusqlite::Connection::open(&db).unwrap();
        let _third = rusqlite::Connection::open(&db).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while sampler.max.lock().unwrap().get("me").copied().unwrap_or(0) < 3
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let max = sampler.stop();
        assert_eq!(max.get("me"), Some(&3));
        assert_eq!(judge(&max, 2).len(), 1);
    }

    #[test]
    fn a_second_handle_fails_the_bound() {
        let mut max = BTreeMap::new();
        max.insert("w1".to_string(), 1);
        assert!(judge(&max, 1).is_empty());
        max.insert("w2".to_string(), 2);
        let v = judge(&max, 1);
        assert_eq!(v.len(), 1);
        assert!(v[0].contains("w2 had 2"), "{v:?}");
    }
}
