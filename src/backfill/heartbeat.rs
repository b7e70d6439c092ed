//! The lease heartbeat: a thread that refreshes the lease on a timer, on its own
//! connection of the same handle, so the lease stays live however long a batch takes.
//! If a refresh is rejected (someone took the lease over) it raises `lost` and stops.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::failpoints::Failpoint;
use crate::state::backfill_state::{fenced_write, report_fenced, FencedWrite};
use crate::state::{StateDbHandle, StateError};
use crate::timing::Timings;

pub(super) struct Heartbeat {
    pub lost: Arc<AtomicBool>,
    stop: mpsc::Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl Heartbeat {
    pub fn start(rt: StateDbHandle, owner: String, timings: &Timings) -> Result<Self, StateError> {
        let mut conn = rt.extra_connection()?;
        let lost = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = mpsc::channel::<()>();
        let interval = timings.heartbeat_interval();
        let lease_ms = timings.lease.as_millis() as i64;
        let flag = lost.clone();
        let thread = std::thread::Builder::new()
            .name("lease-heartbeat".into())
            .spawn(move || loop {
                match stopped.recv_timeout(interval) {
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                    Err(RecvTimeoutError::Timeout) => {}
                }
                let ctx = rt.context();
                if ctx.failpoint(Failpoint::BackfillHeartbeat).is_err() {
                    // An injected heartbeat failure or death: stop refreshing.
                    return;
                }
                let now_ms = ctx.clock().now_ms();
                let result =
                    crate::state::runtime_write_txn(&mut conn, rt.db_path(), ctx.variant(), |tx| {
                        fenced_write(
                            tx,
                            FencedWrite::Heartbeat,
                            &owner,
                            None,
                            now_ms,
                            lease_ms,
                            ctx.variant(),
                        )
                        .map_err(rt.err("lease heartbeat"))
                    });
                match result {
                    Ok(outcome) => {
                        if report_fenced(&rt, FencedWrite::Heartbeat, &owner, &outcome).is_err() {
                            flag.store(true, Ordering::SeqCst);
                            return;
                        }
                    }
                    Err(err) => {
                        // Busy past the timeout: try again next tick; the lease has slack.
                        tracing::warn!(error = %err, "lease heartbeat failed");
                    }
                }
            })
            .map_err(|source| StateError::Io {
                path: "lease-heartbeat thread".into(),
                source,
            })?;
        Ok(Heartbeat {
            lost,
            stop,
            thread: Some(thread),
        })
    }

    pub fn stop(mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        let _ = self.stop.send(());
    }
}
