//! What an entrypoint run is given (`Workload`) and what it reports
//! (`EntrypointReport`, one `ConsumerResult` per consumer). All serialisable.

use uuid::Uuid;

use super::kind::EntrypointKind;
use crate::fixture::FixtureThread;

/// The threads and names the consumers are driven over.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Workload {
    pub thread_ids: Vec<Uuid>,
    pub names: Vec<String>,
}

impl Workload {
    /// Every generated thread's id, and the names of the active ones (name lookup, like
    /// `codex resume <name>`, resolves active threads).
    pub fn from_fixture(threads: &[FixtureThread]) -> Self {
        Workload {
            thread_ids: threads.iter().map(|t| t.id).collect(),
            names: threads
                .iter()
                .filter(|t| !t.root.is_archived())
                .map(|t| t.name.clone())
                .collect(),
        }
    }
}

/// How one consumer fared.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConsumerResult {
    pub consumer: String,
    pub ok: bool,
    pub detail: String,
}

/// One entrypoint run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EntrypointReport {
    pub kind: EntrypointKind,
    /// Startup produced a handle.
    pub handle_available: bool,
    /// Handles this process opened on the DB over the run (1 when plumbed right).
    pub db_opens: u32,
    /// Second opens the process registry refused (0 when plumbed right).
    pub refused_opens: u32,
    pub consumers: Vec<ConsumerResult>,
}

impl EntrypointReport {
    /// Every consumer reported ok.
    pub fn all_ok(&self) -> bool {
        self.consumers.iter().all(|c| c.ok)
    }

    pub fn consumer(&self, name: &str) -> Option<&ConsumerResult> {
        self.consumers.iter().find(|c| c.consumer == name)
    }
}
