//! The translation rules from recorded operations to faults, workers and steps: faults
//! injected by steps in order, a held lock as a `lock_holder` process worker around the next
//! read, a startup as an `init` step.

use super::{RecordedOp, LOCK_HOLD};
use crate::scenario::model::{
    Expect, FaultDecl, FaultTime, HandleMode, OrNone, Role, Step, WorkerKind, WorkerSpec,
};
use crate::thread::Scope;

/// Builds faults, workers and steps from the ops, in order.
#[derive(Default)]
pub(super) struct Writer {
    pub(super) faults: Vec<FaultDecl>,
    pub(super) workers: Vec<WorkerSpec>,
    pub(super) steps: Vec<Step>,
    pub(super) notes: Vec<String>,
    /// `inject` steps (step index, fault index) whose fault id is filled in at the end.
    pub(super) injects: Vec<(usize, usize)>,
    /// A lock is to be held during the next read.
    pub(super) lock_armed: bool,
}

impl Writer {
    pub(super) fn op(&mut self, op: &RecordedOp) {
        match op {
            RecordedOp::Lookup {
                thread,
                scope,
                handle,
                expect_found,
                then_db_hit,
            } => {
                let expect = match expect_found {
                    Some(true) => Expect {
                        ok: Some(true),
                        path: Some(thread.clone()),
                        ..Expect::default()
                    },
                    Some(false) => Expect {
                        ok: Some(false),
                        path: Some("none".into()),
                        ..Expect::default()
                    },
                    None => Expect::default(),
                };
                let lookup = |expect| Step::Lookup {
                    thread: thread.clone(),
                    scope: *scope,
                    ask_other_home: false,
                    handle: *handle,
                    expect,
                };
                self.read(lookup(expect));
                if *then_db_hit {
                    self.steps.push(lookup(Expect {
                        ok: Some(true),
                        source: Some(OrNone::Some(crate::lookup::LookupSource::Db)),
                        path: Some(thread.clone()),
                        ..Expect::default()
                    }));
                }
            }
            RecordedOp::ListAll {
                archived,
                page_size,
                handle,
                expect_all,
            } => self.read(Step::List {
                archived: *archived,
                page_size: Some(*page_size),
                prune: false,
                ask_other_home: false,
                cursor: None,
                sources: Vec::new(),
                providers: Vec::new(),
                handle: *handle,
                expect: Expect {
                    ok: Some(true),
                    all_threads: expect_all.then_some(true),
                    ..Expect::default()
                },
            }),
            RecordedOp::Fault(fault) => {
                self.faults.push(FaultDecl {
                    id: None,
                    at: FaultTime::Step,
                    fault: fault.clone(),
                });
                // The fault's id is known once every fault is declared (`to_scenario`).
                self.injects.push((self.steps.len(), self.faults.len() - 1));
                self.steps.push(Step::Inject {
                    fault: String::new(),
                });
            }
            RecordedOp::HoldWriteLockDuringNext => self.lock_armed = true,
            RecordedOp::Init { expect_timeout } => self.steps.push(Step::Init {
                expect: if *expect_timeout {
                    Expect {
                        ok: Some(false),
                        timed_out: Some(true),
                        ..Expect::default()
                    }
                } else {
                    Expect {
                        ok: Some(true),
                        timed_out: Some(false),
                        ..Expect::default()
                    }
                },
            }),
            RecordedOp::Note(text) => self.notes.push(text.clone()),
        }
    }

    /// A read step, inside a held lock when one is armed.
    pub(super) fn read(&mut self, step: Step) {
        if !std::mem::take(&mut self.lock_armed) {
            self.steps.push(step);
            return;
        }
        let name = format!("lock{}", self.workers.len() + 1);
        self.workers.push(WorkerSpec {
            name: name.clone(),
            kind: WorkerKind::Process,
            role: Role::LockHolder,
            failpoints: Vec::new(),
            clock_skew: None,
            handle: HandleMode::default(),
            threads: Vec::new(),
            scope: Scope::default(),
            repeat: 1,
            hold: Some(LOCK_HOLD),
            count: 1,
            page_size: None,
            entrypoint: None,
            wait_timeout: None,
        });
        self.steps.push(Step::Start {
            worker: name.clone(),
        });
        self.steps.push(Step::WaitFor {
            worker: name.clone(),
            event: "lock_held".into(),
            timeout: None,
        });
        self.steps.push(step);
        self.steps.push(Step::Kill {
            worker: name.clone(),
        });
        self.steps.push(Step::Join {
            worker: name,
            timeout: None,
            expect: Expect {
                killed: Some(true),
                ..Expect::default()
            },
        });
    }
}
