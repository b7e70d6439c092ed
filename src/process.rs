//! `ProcessContext`: everything one (real or simulated) process owns — its name, clock,
//! failpoints, event sink, implementation variant, and the registry of the state-DB
//! handles it has open.
//!
//! One context per process. The registry is what turns "one handle per process" from a
//! convention into a checked rule: a second open of the same DB file while the first
//! handle lives is refused with a typed error and reported as a `duplicate_open` event.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::clock::Clock;
use crate::events::{kinds, EventSink};
use crate::failpoints::{FailpointError, FailpointSet};
use crate::variant::Variant;

/// A second handle on the same DB file was requested in one process.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("process {process} already holds a state db handle for {path}; pass the existing handle instead of opening another")]
pub struct DuplicateHandle {
    pub process: String,
    pub path: PathBuf,
}

#[derive(Debug, Default)]
struct Registry {
    live: HashMap<PathBuf, u32>,
    opens: HashMap<PathBuf, u32>,
    refused: u32,
}

/// One process's context. Shared as `Arc<ProcessContext>`.
#[derive(Debug)]
pub struct ProcessContext {
    name: String,
    clock: Clock,
    failpoints: FailpointSet,
    events: EventSink,
    variant: Variant,
    registry: Mutex<Registry>,
}

/// Builder for a [`ProcessContext`]; everything defaults to "off".
#[derive(Debug, Default)]
pub struct ProcessContextBuilder {
    name: Option<String>,
    clock: Clock,
    failpoints: FailpointSet,
    events: EventSink,
    variant: Variant,
}

impl ProcessContextBuilder {
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }
    pub fn failpoints(mut self, failpoints: FailpointSet) -> Self {
        self.failpoints = failpoints;
        self
    }
    pub fn events(mut self, events: EventSink) -> Self {
        self.events = events;
        self
    }
    pub fn variant(mut self, variant: Variant) -> Self {
        self.variant = variant;
        self
    }
    pub fn build(self) -> Arc<ProcessContext> {
        Arc::new(ProcessContext {
            name: self
                .name
                .unwrap_or_else(|| format!("pid{}", std::process::id())),
            clock: self.clock,
            failpoints: self.failpoints,
            events: self.events,
            variant: self.variant,
            registry: Mutex::new(Registry::default()),
        })
    }
}

/// Proof that a handle is registered; dropping it frees the slot.
#[derive(Debug)]
pub struct HandleRegistration {
    ctx: Arc<ProcessContext>,
    key: PathBuf,
}

impl Drop for HandleRegistration {
    fn drop(&mut self) {
        let mut reg = self.ctx.lock_registry();
        if let Some(n) = reg.live.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                reg.live.remove(&self.key);
            }
        }
    }
}

impl ProcessContext {
    pub fn builder() -> ProcessContextBuilder {
        ProcessContextBuilder::default()
    }

    /// A context with defaults (system clock, no failpoints, no events, reference variant).
    pub fn plain(name: &str) -> Arc<ProcessContext> {
        Self::builder().name(name).build()
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn clock(&self) -> Clock {
        self.clock
    }
    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// The decision points this process runs with (the reference's, unless a seeded-bug
    /// variant overrides one).
    pub fn decisions(&self) -> &'static dyn crate::defects::Decisions {
        self.variant.decisions()
    }
    pub fn failpoints(&self) -> &FailpointSet {
        &self.failpoints
    }
    pub fn events(&self) -> &EventSink {
        &self.events
    }

    /// Emits an event under this process's name.
    pub fn emit(&self, kind: &str, data: Value) {
        self.events.emit(&self.name, kind, data);
    }

    /// Evaluates a failpoint of this process.
    pub fn failpoint(&self, name: crate::failpoints::Failpoint) -> Result<(), FailpointError> {
        self.failpoints.hit(name, &self.events, &self.name)
    }

    fn lock_registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        match self.registry.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Registers a handle on `db_path`, refusing a second live one.
    pub fn register_handle(
        self: &Arc<Self>,
        db_path: &Path,
    ) -> Result<HandleRegistration, DuplicateHandle> {
        let key = registry_key(db_path);
        let mut reg = self.lock_registry();
        if reg.live.get(&key).copied().unwrap_or(0) > 0 {
            reg.refused += 1;
            drop(reg);
            self.emit(
                kinds::DUPLICATE_OPEN,
                json!({"db": key.display().to_string()}),
            );
            return Err(DuplicateHandle {
                process: self.name.clone(),
                path: key,
            });
        }
        *reg.live.entry(key.clone()).or_insert(0) += 1;
        *reg.opens.entry(key.clone()).or_insert(0) += 1;
        drop(reg);
        self.emit(
            kinds::HANDLE_OPENED,
            json!({"db": key.display().to_string()}),
        );
        Ok(HandleRegistration {
            ctx: self.clone(),
            key,
        })
    }

    /// How many handles this process has opened on `db_path` over its life.
    pub fn open_count(&self, db_path: &Path) -> u32 {
        let key = registry_key(db_path);
        self.lock_registry().opens.get(&key).copied().unwrap_or(0)
    }

    /// How many second opens were refused in this process.
    pub fn refused_opens(&self) -> u32 {
        self.lock_registry().refused
    }
}

/// Canonical form of a DB path so `a/../b/state_5.sqlite` and `b/state_5.sqlite` collide.
fn registry_key(db_path: &Path) -> PathBuf {
    if let Ok(p) = db_path.canonicalize() {
        return p;
    }
    match (db_path.parent(), db_path.file_name()) {
        (Some(parent), Some(file)) => parent
            .canonicalize()
            .map(|p| p.join(file))
            .unwrap_or_else(|_| db_path.to_path_buf()),
        _ => db_path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_live_handle_on_same_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = ProcessContext::plain("p");
        let db = dir.path().join("state_5.sqlite");
        let first = ctx.register_handle(&db).unwrap();
        let dotted = dir.path().join(".").join("state_5.sqlite");
        let err = ctx.register_handle(&dotted).unwrap_err();
        assert_eq!(err.process, "p");
        assert_eq!(ctx.refused_opens(), 1);
        drop(first);
        let _again = ctx.register_handle(&db).unwrap();
        assert_eq!(ctx.open_count(&db), 2);
    }

    #[test]
    fn separate_contexts_each_get_their_own_handle() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state_5.sqlite");
        let a = ProcessContext::plain("a");
        let b = ProcessContext::plain("b");
        let _ha = a.register_handle(&db).unwrap();
        let _hb = b.register_handle(&db).unwrap();
    }
}
