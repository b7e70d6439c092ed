//! How a waiting startup gate watches someone else's backfill: it tells an owner that makes
//! progress from a wedged one, and it wakes as soon as the DB changes.
//!
//! Progress is what the row shows from outside, so it works for a Codex owner too: a new
//! checkpoint (`last_watermark` advanced), a new owner (a takeover), or a new status.
//! Liveness is the heartbeat (`heartbeat_at_ms`, else Codex's `updated_at`): an owner whose
//! heartbeat advances while its watermark stands still is alive but wedged.
//!
//! Waking: between full reads the gate checks `PRAGMA data_version` every [`WAKE_TICK`]. The
//! value changes when another connection commits, and checking it touches only SQLite's
//! shared-memory index (WAL) or the file's change counter, so a waiter notices the owner's
//! completion within a tick without re-reading rows or taking write locks. The configured
//! poll interval stays as the fallback for changes no commit announces (a lease running out).

use std::time::{Duration, Instant};

use crate::state::backfill_state::{BackfillState, BackfillStatus};
use crate::state::{StateDbHandle, StateError};
use crate::timing::Timings;

/// How often a waiting gate checks whether the DB changed.
pub const WAKE_TICK: Duration = Duration::from_millis(10);

/// What the row says the owner has done so far.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Marker {
    status: BackfillStatus,
    owner: Option<String>,
    watermark: Option<String>,
}

impl Marker {
    fn of(state: &BackfillState) -> Self {
        Marker {
            status: state.status.clone(),
            owner: state.owner.as_ref().map(|o| o.owner_id.clone()),
            watermark: state.last_watermark.clone(),
        }
    }
}

fn heartbeat_of(state: &BackfillState) -> i64 {
    state
        .owner
        .as_ref()
        .and_then(|o| o.heartbeat_at_ms)
        .unwrap_or(state.updated_at * 1000)
}

/// Why a waiting gate gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GiveUp {
    /// No progress for the stall limit; `alive` if the heartbeat still advanced meanwhile.
    NoProgress {
        idle: Duration,
        alive: bool,
        watermark: Option<String>,
    },
    /// The owner was still making progress when the cap ran out.
    CapReached {
        cap: Duration,
        watermark: Option<String>,
    },
}

impl GiveUp {
    /// The limit that applied, for the error's "after {limit}".
    pub fn limit(&self, timings: &Timings) -> Duration {
        match self {
            GiveUp::NoProgress { .. } => timings.stall_limit(),
            GiveUp::CapReached { cap, .. } => *cap,
        }
    }

    /// The sentence the error adds after Codex's text.
    pub fn explain(&self) -> String {
        let at = |w: &Option<String>| match w {
            Some(w) => format!("watermark {w}"),
            None => "no checkpoint yet".to_string(),
        };
        match self {
            GiveUp::NoProgress {
                idle,
                alive: true,
                watermark,
            } => format!(
                "; the owner is alive (heartbeat advancing) but made no progress for {} ({}): wedged",
                crate::timing::format_duration(round_ms(*idle)),
                at(watermark)
            ),
            GiveUp::NoProgress {
                idle,
                alive: false,
                watermark,
            } => format!(
                "; the owner made no progress and sent no heartbeat for {} ({})",
                crate::timing::format_duration(round_ms(*idle)),
                at(watermark)
            ),
            GiveUp::CapReached { cap, watermark } => format!(
                "; the owner was still making progress ({}) when the {} cap ran out",
                at(watermark),
                crate::timing::format_duration(*cap)
            ),
        }
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

/// The gate's view of the owner over time.
#[derive(Debug)]
pub struct OwnerWatch {
    started: Instant,
    marker: Option<Marker>,
    last_progress: Instant,
    heartbeat: Option<i64>,
    heartbeat_advanced: bool,
}

impl OwnerWatch {
    pub fn new(started: Instant) -> Self {
        OwnerWatch {
            started,
            marker: None,
            last_progress: started,
            heartbeat: None,
            heartbeat_advanced: false,
        }
    }

    /// Records one read of the row. The first read is the baseline, not progress.
    pub fn observe(&mut self, state: &BackfillState, now: Instant) {
        let marker = Marker::of(state);
        if self.marker.as_ref().is_some_and(|m| *m != marker) {
            self.last_progress = now;
            self.heartbeat_advanced = false;
        }
        self.marker = Some(marker);
        let beat = heartbeat_of(state);
        if self.heartbeat.is_some_and(|b| beat > b) {
            self.heartbeat_advanced = true;
        }
        self.heartbeat = Some(beat);
    }

    /// When the gate gives up if nothing changes: `stall` after the last progress, and
    /// never later than the cap after the start.
    pub fn deadline(&self, timings: &Timings) -> Instant {
        (self.last_progress + timings.stall_limit()).min(self.started + timings.wait_cap_limit())
    }

    /// Why the gate gives up at `now` (call once `now` reached the deadline).
    pub fn give_up(&self, now: Instant, timings: &Timings) -> GiveUp {
        let watermark = self.marker.as_ref().and_then(|m| m.watermark.clone());
        let idle = now.saturating_duration_since(self.last_progress);
        if self.last_progress > self.started && idle < timings.stall_limit() {
            GiveUp::CapReached {
                cap: timings.wait_cap_limit(),
                watermark,
            }
        } else {
            GiveUp::NoProgress {
                idle,
                alive: self.heartbeat_advanced,
                watermark,
            }
        }
    }
}

/// Wakes a waiting gate when another connection commits to the DB.
pub struct ChangeWatch {
    version: Option<i64>,
}

impl ChangeWatch {
    pub fn new(rt: &StateDbHandle) -> Self {
        ChangeWatch {
            version: data_version(rt).ok(),
        }
    }

    /// Sleeps until the DB changed or `until` passed, checking every [`WAKE_TICK`].
    /// Returns whether it saw a change. A failing check just falls back to sleeping.
    pub fn wait(&mut self, rt: &StateDbHandle, until: Instant) -> bool {
        loop {
            let now = Instant::now();
            if now >= until {
                return false;
            }
            std::thread::sleep(WAKE_TICK.min(until - now));
            if let Ok(v) = data_version(rt) {
                if self.version.is_some_and(|old| old != v) {
                    self.version = Some(v);
                    return true;
                }
                self.version = Some(v);
            }
        }
    }
}

fn data_version(rt: &StateDbHandle) -> Result<i64, StateError> {
    rt.read("check data_version", |conn| {
        conn.query_row("PRAGMA data_version", [], |r| r.get(0))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::backfill_state::LeaseOwnerInfo;

    fn state(watermark: Option<&str>, beat: i64) -> BackfillState {
        BackfillState {
            status: BackfillStatus::Running,
            last_watermark: watermark.map(str::to_string),
            owner: Some(LeaseOwnerInfo {
                owner_id: "o".into(),
                pid: None,
                host: None,
                claimed_at_ms: None,
                heartbeat_at_ms: Some(beat),
                lease_expires_at_ms: None,
            }),
            row_present: true,
            ..BackfillState::default()
        }
    }

    fn timings() -> Timings {
        Timings {
            wait_timeout: Duration::from_secs(1),
            wait_cap: Duration::from_secs(5),
            ..Timings::short()
        }
    }

    /// The watch wakes on another connection's commit and only then: with no commit it
    /// sleeps to its deadline. Catches waking on every tick (a poll in disguise) and
    /// missing a commit.
    #[test]
    fn the_change_watch_wakes_on_a_commit_and_only_then() {
        let dir = tempfile::tempdir().unwrap();
        crate::fixture::generate_home(dir.path(), &crate::fixture::FixtureOptions::default())
            .unwrap();
        let ctx = crate::process::ProcessContext::plain("watch-test");
        let cfg = crate::state_db::StateDbConfig::new(dir.path(), Timings::short());
        let rt = crate::state_db::try_init(&ctx, &cfg).unwrap().handle;
        let mut watch = ChangeWatch::new(&rt);
        let quiet = Instant::now() + Duration::from_millis(60);
        assert!(!watch.wait(&rt, quiet), "woke with no commit");
        assert!(Instant::now() >= quiet);
        let other = rusqlite::Connection::open(rt.db_path()).unwrap();
        other
            .execute("UPDATE backfill_state SET updated_at = updated_at + 1", [])
            .unwrap();
        let later = Instant::now() + Duration::from_secs(30);
        assert!(watch.wait(&rt, later), "missed another connection's commit");
    }

    /// The give-up sentence says which case it was and for how long, in whole
    /// milliseconds. Catches a wrong or empty idle time in the text users read.
    #[test]
    fn the_give_up_text_names_the_case_and_the_idle_time() {
        let idle = Duration::from_micros(1_234_567);
        let wedged = GiveUp::NoProgress {
            idle,
            alive: true,
            watermark: Some("sessions/2026/01/01".into()),
        };
        assert_eq!(
            wedged.explain(),
            "; the owner is alive (heartbeat advancing) but made no progress for 1s 234ms \
             (watermark sessions/2026/01/01): wedged"
        );
        let silent = GiveUp::NoProgress {
            idle,
            alive: false,
            watermark: None,
        };
        assert!(silent
            .explain()
            .contains("sent no heartbeat for 1s 234ms (no checkpoint yet)"));
    }

    #[test]
    fn a_wedged_owner_ends_the_wait_one_stall_after_the_start() {
        let t0 = Instant::now();
        let mut w = OwnerWatch::new(t0);
        w.observe(&state(Some("a"), 1), t0);
        w.observe(&state(Some("a"), 2), t0 + Duration::from_millis(500));
        assert_eq!(w.deadline(&timings()), t0 + Duration::from_secs(1));
        let why = w.give_up(t0 + Duration::from_secs(1), &timings());
        assert!(
            matches!(why, GiveUp::NoProgress { alive: true, .. }),
            "{why:?}"
        );
        assert!(why.explain().contains("wedged"), "{}", why.explain());
    }

    /// A Codex owner has no owner row: its heartbeat is `backfill_state.updated_at`, in
    /// seconds, so an owner that touches the row once a second is alive. Catches a
    /// heartbeat read in the wrong unit (one that advances once in a thousand seconds).
    #[test]
    fn a_codex_owner_touching_the_row_each_second_is_alive() {
        let codex = |updated_at| BackfillState {
            status: BackfillStatus::Running,
            last_watermark: Some("a".into()),
            updated_at,
            row_present: true,
            ..BackfillState::default()
        };
        let t0 = Instant::now();
        let mut w = OwnerWatch::new(t0);
        w.observe(&codex(1_700_000_000), t0);
        w.observe(&codex(1_700_000_001), t0 + Duration::from_millis(500));
        let why = w.give_up(t0 + Duration::from_secs(1), &timings());
        assert!(
            matches!(why, GiveUp::NoProgress { alive: true, .. }),
            "{why:?}"
        );
    }

    #[test]
    fn a_silent_owner_is_not_called_alive() {
        let t0 = Instant::now();
        let mut w = OwnerWatch::new(t0);
        w.observe(&state(None, 1), t0);
        w.observe(&state(None, 1), t0 + Duration::from_millis(900));
        let why = w.give_up(t0 + Duration::from_secs(1), &timings());
        assert!(
            matches!(why, GiveUp::NoProgress { alive: false, .. }),
            "{why:?}"
        );
    }

    #[test]
    fn progress_moves_the_deadline_up_to_the_cap() {
        let t0 = Instant::now();
        let mut w = OwnerWatch::new(t0);
        w.observe(&state(Some("a"), 1), t0);
        w.observe(&state(Some("b"), 1), t0 + Duration::from_millis(800));
        assert_eq!(w.deadline(&timings()), t0 + Duration::from_millis(1800));
        w.observe(&state(Some("c"), 1), t0 + Duration::from_millis(4500));
        assert_eq!(w.deadline(&timings()), t0 + Duration::from_secs(5));
        let why = w.give_up(t0 + Duration::from_secs(5), &timings());
        assert!(matches!(why, GiveUp::CapReached { .. }), "{why:?}");
        assert!(why.explain().contains("still making progress"));
    }

    /// An owner that made progress and then stalled for a whole stall limit is given up as
    /// stalled, not as still progressing. Catches a verdict that calls any owner that ever
    /// progressed "still making progress".
    #[test]
    fn progress_then_a_full_stall_is_a_stall() {
        let t0 = Instant::now();
        let mut w = OwnerWatch::new(t0);
        w.observe(&state(Some("a"), 1), t0);
        w.observe(&state(Some("b"), 1), t0 + Duration::from_millis(800));
        let at = w.deadline(&timings());
        assert_eq!(at, t0 + Duration::from_millis(1800));
        let why = w.give_up(at, &timings());
        assert!(
            matches!(why, GiveUp::NoProgress { alive: false, .. }),
            "{why:?}"
        );
    }

    #[test]
    fn the_first_read_is_a_baseline_not_progress() {
        let t0 = Instant::now();
        let mut w = OwnerWatch::new(t0);
        w.observe(&state(Some("z"), 1), t0 + Duration::from_millis(300));
        assert_eq!(w.deadline(&timings()), t0 + Duration::from_secs(1));
    }
}
