//! The outside checks fail on deliberately wrong implementations: small broken layers that
//! wrap the reference and misbehave in one way each (a foreign or missing path whatever
//! its label, a thread listed twice or with another thread's file, a rollout overwritten).
//! The runner must report each from the files alone.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use statedb_harness::layer::{Capabilities, InitSummary, LayerError, ReferenceLayer, StateLayer};
use statedb_harness::lookup::{ListPage, ListRequest, LookupResult, LookupSource};
use statedb_harness::process::ProcessContext;
use statedb_harness::scenario::model::Scenario;
use statedb_harness::scenario::runner::{run_scenario, RunOptions, ScenarioOutcome};
use statedb_harness::state::StateDbHandle;
use statedb_harness::state_db::StateDbConfig;
use statedb_harness::thread::Scope;

/// How a broken layer misbehaves.
#[derive(Clone, Copy)]
enum Breakage {
    None,
    /// Answers every lookup with the first other rollout it finds, labelled `db`.
    ForeignPathLabelledDb,
    /// Answers with a path that does not exist.
    MissingPath,
    /// Lists the first item twice.
    ListsTwice,
    /// Lists the first item with the second item's path.
    ListsForeignPath,
    /// Rewrites the rollout it answers (bytes lost).
    OverwritesRollout,
}

struct Broken(Breakage);

impl StateLayer for Broken {
    type Handle = StateDbHandle;
    fn name(&self) -> String {
        "broken".into()
    }
    fn capabilities(&self) -> Capabilities {
        ReferenceLayer.capabilities()
    }
    fn init(
        &self,
        ctx: &Arc<ProcessContext>,
        cfg: &StateDbConfig,
    ) -> Result<(StateDbHandle, InitSummary), LayerError> {
        ReferenceLayer.init(ctx, cfg)
    }
    fn open_existing(
        &self,
        ctx: &Arc<ProcessContext>,
        cfg: &StateDbConfig,
    ) -> Result<Option<StateDbHandle>, LayerError> {
        ReferenceLayer.open_existing(ctx, cfg)
    }
    fn backfill(
        &self,
        ctx: &Arc<ProcessContext>,
        cfg: &StateDbConfig,
    ) -> Result<InitSummary, LayerError> {
        ReferenceLayer.backfill(ctx, cfg)
    }
    fn lookup(
        &self,
        ctx: &Arc<ProcessContext>,
        handle: Option<&StateDbHandle>,
        home: &Path,
        id: &str,
        scope: Scope,
    ) -> LookupResult {
        let mut r = ReferenceLayer.lookup(ctx, handle, home, id, scope);
        match self.0 {
            Breakage::ForeignPathLabelledDb => {
                r.path = other_rollout(home, id);
                r.source = Some(LookupSource::Db);
            }
            Breakage::MissingPath => {
                r.path = Some(home.join("sessions/2099/01/01/rollout-gone.jsonl"))
            }
            Breakage::OverwritesRollout => {
                if let Some(p) = &r.path {
                    std::fs::write(p, b"{\"lost\":true}\n").unwrap();
                }
            }
            _ => {}
        }
        r
    }
    fn list(
        &self,
        ctx: &Arc<ProcessContext>,
        handle: Option<&StateDbHandle>,
        home: &Path,
        req: &ListRequest,
    ) -> Result<ListPage, LayerError> {
        let mut page = ReferenceLayer.list(ctx, handle, home, req)?;
        match self.0 {
            Breakage::ListsTwice if !page.items.is_empty() => {
                let first = page.items[0].clone();
                page.items.push(first);
            }
            Breakage::ListsForeignPath if page.items.len() > 1 => {
                page.items[0].path = page.items[1].path.clone();
            }
            _ => {}
        }
        Ok(page)
    }
    fn index_rollout(&self, handle: &StateDbHandle, path: &Path) -> Result<(), LayerError> {
        ReferenceLayer.index_rollout(handle, path)
    }
}

fn other_rollout(home: &Path, id: &str) -> Option<PathBuf> {
    let mut stack = vec![home.join("sessions")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if !p.to_string_lossy().contains(id) {
                return Some(p);
            }
        }
    }
    None
}

const SCENARIO: &str = r#"
name = "lookups and a whole listing on an indexed home"
[home]
threads = 3
[[step]]
do = "lookup"
thread = "t0"
expect = { ok = true }
[[step]]
do = "list"
page_size = 10
expect = { ok = true }
"#;

fn run(b: Breakage) -> (ScenarioOutcome, tempfile::TempDir) {
    let file = Path::new("inline.toml");
    let sc = Scenario::parse(file, SCENARIO).unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        seed: 5,
        work_dir: Some(work.path().to_path_buf()),
        ..RunOptions::default()
    };
    let out = rt.block_on(run_scenario(Arc::new(Broken(b)), &sc, file, &opts));
    rt.shutdown_timeout(Duration::from_secs(2));
    (out, work)
}

fn assert_fails_with(b: Breakage, text: &str) -> (ScenarioOutcome, tempfile::TempDir) {
    let (out, work) = run(b);
    assert!(
        out.failures.iter().any(|f| f.contains(text)),
        "expected a failure containing {text:?}, got {:?}",
        out.failures
    );
    (out, work)
}

#[test]
fn the_unbroken_wrapper_passes() {
    let (out, _work) = run(Breakage::None);
    assert!(out.failures.is_empty(), "{:?}", out.failures);
}

#[test]
fn a_foreign_path_fails_whatever_its_label() {
    assert_fails_with(Breakage::ForeignPathLabelledDb, "never a foreign file");
}

#[test]
fn a_path_that_does_not_exist_fails() {
    assert_fails_with(Breakage::MissingPath, "which does not exist");
}

#[test]
fn a_thread_listed_twice_fails() {
    assert_fails_with(Breakage::ListsTwice, "appears 2 times");
}

#[test]
fn a_thread_listed_with_another_threads_file_fails() {
    assert_fails_with(Breakage::ListsForeignPath, "whose head claims");
}

#[test]
fn an_overwritten_rollout_fails_and_the_bundle_keeps_both_versions() {
    let (out, _work) = assert_fails_with(Breakage::OverwritesRollout, "files are the truth");
    let bundle = out.bundle.expect("a failing run keeps its bundle");
    let kept: Vec<_> = std::fs::read_dir(bundle.join("lost-rollouts"))
        .expect("lost-rollouts in the bundle")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(kept.iter().any(|n| n.ends_with(".before")), "{kept:?}");
    assert!(kept.iter().any(|n| n.ends_with(".after")), "{kept:?}");
}
