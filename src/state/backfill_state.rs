//! The `backfill_state` singleton row and the fenced backfill lease.
//!
//! Codex's lease is just (`status = 'running'`, `updated_at`): whoever's UPDATE matched owns
//! it, and later writes are unconditional. Ours keeps that meaning for compatibility (a
//! `running` row whose `updated_at` is within the lease is live, `complete` is never
//! claimed) and adds an owner token: every later write of the backfill — heartbeat,
//! checkpoint, completion, release — only succeeds while the row still names that owner.
//! Reads never write (a missing row reads as the default `pending` state).

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::error::StateError;
use super::runtime::StateRuntime;
use super::schema::{FAILURES_TABLE, LEASE_TABLE};
use crate::events::kinds;
use crate::variant::Variant;

/// Codex's status strings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum BackfillStatus {
    Pending,
    Running,
    Complete,
    /// A value neither Codex nor we write. Treated like `pending` (claimable), so the next
    /// backfill repairs it instead of wedging startup.
    Unknown(String),
}

impl BackfillStatus {
    pub fn parse(text: &str) -> Self {
        match text {
            "pending" => BackfillStatus::Pending,
            "running" => BackfillStatus::Running,
            "complete" => BackfillStatus::Complete,
            other => BackfillStatus::Unknown(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            BackfillStatus::Pending => "pending",
            BackfillStatus::Running => "running",
            BackfillStatus::Complete => "complete",
            BackfillStatus::Unknown(s) => s,
        }
    }
}

impl std::fmt::Display for BackfillStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who holds (or last held) the lease.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeaseOwnerInfo {
    pub owner_id: String,
    pub pid: Option<i64>,
    pub host: Option<String>,
    pub claimed_at_ms: Option<i64>,
    pub heartbeat_at_ms: Option<i64>,
    pub lease_expires_at_ms: Option<i64>,
}

/// The singleton row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackfillState {
    pub status: BackfillStatus,
    pub last_watermark: Option<String>,
    pub last_success_at: Option<i64>,
    pub updated_at: i64,
    pub owner: Option<LeaseOwnerInfo>,
    /// False when the row was missing and this is the default.
    pub row_present: bool,
}

impl Default for BackfillState {
    fn default() -> Self {
        BackfillState {
            status: BackfillStatus::Pending,
            last_watermark: None,
            last_success_at: None,
            updated_at: 0,
            owner: None,
            row_present: false,
        }
    }
}

impl BackfillState {
    /// Whether a live owner holds the lease at `now_ms` (by either Codex's `updated_at`
    /// rule or our `lease_expires_at_ms`; the later of the two wins).
    pub fn lease_is_live(&self, now_ms: i64, lease_ms: i64) -> bool {
        if self.status != BackfillStatus::Running {
            return false;
        }
        let by_updated_at = self.updated_at * 1000 > now_ms - lease_ms;
        let by_expiry = self
            .owner
            .as_ref()
            .and_then(|o| o.lease_expires_at_ms)
            .is_some_and(|exp| exp > now_ms);
        by_updated_at || by_expiry
    }
}

/// Identity a claimer writes into the row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseClaimant {
    pub owner_id: String,
    pub pid: i64,
    pub host: String,
}

impl LeaseClaimant {
    /// A fresh random owner token for this process.
    pub fn fresh() -> Self {
        LeaseClaimant {
            owner_id: uuid::Uuid::new_v4().to_string(),
            pid: std::process::id() as i64,
            host: hostname(),
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

/// Pure read of the row (and of the harness's lease owner, when its table exists); a
/// missing row reads as the default.
pub fn read(conn: &Connection) -> rusqlite::Result<BackfillState> {
    let row = conn
        .prepare_cached(
            "SELECT status, last_watermark, last_success_at, updated_at
             FROM backfill_state WHERE id = 1",
        )?
        .query_row([], |r| {
            Ok(BackfillState {
                status: BackfillStatus::parse(&r.get::<_, String>(0)?),
                last_watermark: r.get(1)?,
                last_success_at: r.get(2)?,
                updated_at: r.get(3)?,
                owner: None,
                row_present: true,
            })
        })
        .optional()?;
    let Some(mut state) = row else {
        return Ok(BackfillState::default());
    };
    if super::schema::has_harness_tables(conn)? {
        state.owner = read_owner(conn)?;
    }
    Ok(state)
}

fn read_owner(conn: &Connection) -> rusqlite::Result<Option<LeaseOwnerInfo>> {
    let owner = conn
        .prepare_cached(&format!(
            "SELECT owner_id, owner_pid, owner_host, claimed_at_ms, heartbeat_at_ms,
                lease_expires_at_ms FROM {LEASE_TABLE} WHERE id = 1 AND owner_id IS NOT NULL"
        ))?
        .query_row([], |r| {
            Ok(LeaseOwnerInfo {
                owner_id: r.get(0)?,
                pid: r.get(1)?,
                host: r.get(2)?,
                claimed_at_ms: r.get(3)?,
                heartbeat_at_ms: r.get(4)?,
                lease_expires_at_ms: r.get(5)?,
            })
        })
        .optional()?;
    Ok(owner)
}

/// Recreates the singleton row if it is missing (write path only).
pub fn ensure_row(conn: &Connection, now_s: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO backfill_state (id, status, last_watermark, last_success_at, updated_at)
         VALUES (1, 'pending', NULL, NULL, ?1) ON CONFLICT(id) DO NOTHING",
    )?
    .execute([now_s])?;
    Ok(())
}

/// Claims the lease if it is pending, expired or of unknown status; never if complete.
///
/// Codex's half is its own claim statement on `backfill_state` (so a Codex process sees a
/// live `running` lease); ours adds that a harness owner whose lease has not expired keeps
/// it even when `updated_at` looks old, and records the new owner in [`LEASE_TABLE`].
pub fn try_claim(
    tx: &Transaction<'_>,
    who: &LeaseClaimant,
    now_ms: i64,
    lease_ms: i64,
) -> rusqlite::Result<bool> {
    let now_s = now_ms.div_euclid(1000);
    ensure_row(tx, now_s)?;
    let n = tx
        .prepare_cached(&format!(
            "UPDATE backfill_state SET status = 'running', updated_at = ?1
             WHERE id = 1 AND status <> 'complete'
               AND (status <> 'running'
                    OR (updated_at * 1000 <= ?2 - ?3
                        AND NOT EXISTS (SELECT 1 FROM {LEASE_TABLE} l
                            WHERE l.id = 1 AND l.owner_id IS NOT NULL
                              AND l.state_updated_at = backfill_state.updated_at
                              AND l.lease_expires_at_ms > ?2)))"
        ))?
        .execute(params![now_s, now_ms, lease_ms])?;
    if n != 1 {
        return Ok(false);
    }
    tx.prepare_cached(&format!(
        "INSERT INTO {LEASE_TABLE} (id, owner_id, owner_pid, owner_host, claimed_at_ms,
            heartbeat_at_ms, lease_expires_at_ms, state_updated_at)
         VALUES (1, ?1, ?2, ?3, ?4, ?4, ?5, ?6)
         ON CONFLICT(id) DO UPDATE SET owner_id = excluded.owner_id,
            owner_pid = excluded.owner_pid, owner_host = excluded.owner_host,
            claimed_at_ms = excluded.claimed_at_ms, heartbeat_at_ms = excluded.heartbeat_at_ms,
            lease_expires_at_ms = excluded.lease_expires_at_ms,
            state_updated_at = excluded.state_updated_at"
    ))?
    .execute(params![
        who.owner_id,
        who.pid,
        who.host,
        now_ms,
        now_ms + lease_ms,
        now_s
    ])?;
    Ok(true)
}

/// The kinds of fenced write, for events and error texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FencedWrite {
    Heartbeat,
    Checkpoint,
    Complete,
    Release,
}

impl FencedWrite {
    pub fn name(self) -> &'static str {
        match self {
            FencedWrite::Heartbeat => "heartbeat",
            FencedWrite::Checkpoint => "checkpoint",
            FencedWrite::Complete => "complete",
            FencedWrite::Release => "release",
        }
    }
}

/// Outcome of a fenced write: whether it applied, and who the row named as owner when it ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FencedOutcome {
    pub applied: bool,
    pub db_owner: Option<String>,
}

/// Runs one fenced write in `tx`. The reference requires that the harness lease row names
/// `owner`, that `backfill_state` is still `running` and that its `updated_at` is the one
/// this owner last wrote (a Codex process claiming meanwhile changes it); the
/// `lease-no-owner-token` variant writes unconditionally, like Codex.
#[allow(clippy::too_many_arguments)]
pub fn fenced_write(
    tx: &Transaction<'_>,
    kind: FencedWrite,
    owner: &str,
    watermark: Option<&str>,
    now_ms: i64,
    lease_ms: i64,
    variant: Variant,
) -> rusqlite::Result<FencedOutcome> {
    let db_owner: Option<String> = tx
        .prepare_cached(&format!("SELECT owner_id FROM {LEASE_TABLE} WHERE id = 1"))?
        .query_row([], |r| r.get(0))
        .optional()?
        .flatten();
    let fence = if !variant.decisions().lease_writes_fenced() {
        "id = 1".to_string()
    } else {
        format!(
            "id = 1 AND status = 'running' AND EXISTS (SELECT 1 FROM {LEASE_TABLE} l
                WHERE l.id = 1 AND l.owner_id = ?1 AND l.state_updated_at = backfill_state.updated_at)"
        )
    };
    let set = match kind {
        FencedWrite::Heartbeat => "updated_at = ?2 / 1000",
        FencedWrite::Checkpoint => {
            "status = 'running', last_watermark = ?4, updated_at = ?2 / 1000"
        }
        FencedWrite::Complete => {
            "status = 'complete', last_watermark = COALESCE(?4, last_watermark),
             last_success_at = ?2 / 1000, updated_at = ?2 / 1000"
        }
        FencedWrite::Release => "status = 'pending', updated_at = ?2 / 1000",
    };
    let sql = format!("UPDATE backfill_state SET {set} WHERE {fence}");
    let mut stmt = tx.prepare_cached(&sql)?;
    // Each statement uses a subset of ?1..?4; bind the ones up to its highest index.
    let count = stmt.parameter_count();
    if count >= 1 {
        stmt.raw_bind_parameter(1, owner)?;
    }
    if count >= 2 {
        stmt.raw_bind_parameter(2, now_ms)?;
    }
    if count >= 4 {
        stmt.raw_bind_parameter(4, watermark)?;
    }
    let applied = stmt.raw_execute()? == 1;
    if applied {
        let lease_set = match kind {
            FencedWrite::Heartbeat | FencedWrite::Checkpoint => {
                "heartbeat_at_ms = ?1, lease_expires_at_ms = ?1 + ?2"
            }
            FencedWrite::Complete => "heartbeat_at_ms = ?1, lease_expires_at_ms = NULL",
            FencedWrite::Release => "lease_expires_at_ms = NULL, owner_id = NULL",
        };
        let mut stmt = tx.prepare_cached(&format!(
            "UPDATE {LEASE_TABLE} SET {lease_set}, state_updated_at = ?1 / 1000 WHERE id = 1"
        ))?;
        stmt.raw_bind_parameter(1, now_ms)?;
        if stmt.parameter_count() >= 2 {
            stmt.raw_bind_parameter(2, lease_ms)?;
        }
        stmt.raw_execute()?;
    }
    Ok(FencedOutcome { applied, db_owner })
}

/// Records a rollout that could not be indexed (our addition; Codex only counts them).
pub fn record_failure(
    conn: &Connection,
    path: &str,
    error: &str,
    now_ms: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO {FAILURES_TABLE} (path, error, failed_at_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT(path) DO UPDATE SET error = excluded.error, failed_at_ms = excluded.failed_at_ms"
    ))?
    .execute(params![path, error, now_ms])?;
    Ok(())
}

/// Paths recorded as failed by the last backfills (none in a DB the harness never wrote).
pub fn failures(conn: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    if !super::schema::has_harness_tables(conn)? {
        return Ok(Vec::new());
    }
    conn.prepare_cached(&format!(
        "SELECT path, error FROM {FAILURES_TABLE} ORDER BY path"
    ))?
    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
    .collect()
}

impl StateRuntime {
    /// Reads the backfill state without writing anything.
    pub fn backfill_state(&self) -> Result<BackfillState, StateError> {
        self.read("read backfill state", read)
    }

    /// Claims the backfill lease for `who`; emits `lease_claimed` or `lease_claim_refused`.
    pub fn try_claim_backfill(
        &self,
        who: &LeaseClaimant,
        lease_ms: i64,
    ) -> Result<bool, StateError> {
        let now_ms = self.context().clock().now_ms();
        let claimed = self.write("claim backfill lease", |tx| {
            try_claim(tx, who, now_ms, lease_ms).map_err(self.err("claim backfill lease"))
        })?;
        let kind = if claimed {
            kinds::LEASE_CLAIMED
        } else {
            kinds::LEASE_CLAIM_REFUSED
        };
        self.context().emit(
            kind,
            serde_json::json!({"owner": who.owner_id, "now_ms": now_ms, "lease_ms": lease_ms}),
        );
        Ok(claimed)
    }

    /// Runs a fenced write on the main connection; `Err(LeaseLost)` if it did not apply.
    pub fn fenced(
        &self,
        kind: FencedWrite,
        owner: &str,
        watermark: Option<&str>,
        lease_ms: i64,
    ) -> Result<(), StateError> {
        let now_ms = self.context().clock().now_ms();
        let variant = self.context().variant();
        let outcome = self.write("fenced backfill write", |tx| {
            fenced_write(tx, kind, owner, watermark, now_ms, lease_ms, variant)
                .map_err(self.err("fenced backfill write"))
        })?;
        report_fenced(self, kind, owner, &outcome)
    }
}

/// Emits the event for a fenced write and turns a rejected one into `LeaseLost`.
pub fn report_fenced(
    rt: &StateRuntime,
    kind: FencedWrite,
    owner: &str,
    outcome: &FencedOutcome,
) -> Result<(), StateError> {
    let data = serde_json::json!({
        "write": kind.name(),
        "owner": owner,
        "db_owner": outcome.db_owner,
    });
    if outcome.applied {
        rt.context().emit(kinds::FENCED_WRITE, data);
        Ok(())
    } else {
        rt.context().emit(kinds::FENCED_WRITE_REJECTED, data);
        Err(StateError::LeaseLost {
            path: rt.db_path().to_path_buf(),
            owner: owner.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(updated_at_s: i64, expires_at_ms: Option<i64>) -> BackfillState {
        BackfillState {
            status: BackfillStatus::Running,
            updated_at: updated_at_s,
            owner: expires_at_ms.map(|exp| LeaseOwnerInfo {
                owner_id: "owner".into(),
                pid: None,
                host: None,
                claimed_at_ms: None,
                heartbeat_at_ms: None,
                lease_expires_at_ms: Some(exp),
            }),
            row_present: true,
            ..BackfillState::default()
        }
    }

    /// A Codex process holds the lease by `updated_at` alone (seconds, no owner row): live
    /// within the lease length, dead after it. Catches the seconds/milliseconds conversion
    /// going the wrong way (every Codex lease would look dead and be taken over).
    #[test]
    fn a_codex_lease_is_live_by_updated_at_within_its_length() {
        let now_ms = 1_800_000_000_000;
        let lease_ms = 900_000;
        assert!(running(now_ms / 1000 - 10, None).lease_is_live(now_ms, lease_ms));
        assert!(!running(now_ms / 1000 - 901, None).lease_is_live(now_ms, lease_ms));
    }

    /// Our own expiry keeps a lease live past Codex's rule, and only while it lasts.
    #[test]
    fn an_owner_lease_is_live_until_its_expiry() {
        let now_ms = 1_800_000_000_000;
        let old = now_ms / 1000 - 3_600;
        assert!(running(old, Some(now_ms + 1)).lease_is_live(now_ms, 1_000));
        assert!(!running(old, Some(now_ms)).lease_is_live(now_ms, 1_000));
        let mut done = running(now_ms / 1000, Some(now_ms + 1));
        done.status = BackfillStatus::Complete;
        assert!(!done.lease_is_live(now_ms, 1_000));
    }

    /// A claimant names this process and this machine, as `status` shows them to whoever
    /// must decide whether the owner is alive. The host is read back through `uname`, not
    /// the file the claimant reads. Catches an empty or made-up host.
    #[test]
    fn a_claimant_names_this_process_and_host() {
        let me = LeaseClaimant::fresh();
        assert_eq!(me.pid, i64::from(std::process::id()));
        let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::uname(&mut uts) }, 0);
        let node = unsafe { std::ffi::CStr::from_ptr(uts.nodename.as_ptr()) };
        assert_eq!(me.host, node.to_string_lossy());
        assert_ne!(me.owner_id, LeaseClaimant::fresh().owner_id);
    }
}
