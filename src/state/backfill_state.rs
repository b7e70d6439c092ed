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

/// Pure read of the row; a missing row reads as the default.
pub fn read(conn: &Connection) -> rusqlite::Result<BackfillState> {
    let has_owner_cols = super::schema::has_column(conn, "backfill_state", "owner_id")?;
    let sql = if has_owner_cols {
        "SELECT status, last_watermark, last_success_at, updated_at, owner_id, owner_pid,
            owner_host, claimed_at_ms, heartbeat_at_ms, lease_expires_at_ms
         FROM backfill_state WHERE id = 1"
    } else {
        "SELECT status, last_watermark, last_success_at, updated_at, NULL, NULL, NULL, NULL,
            NULL, NULL FROM backfill_state WHERE id = 1"
    };
    let row = conn
        .prepare_cached(sql)?
        .query_row([], |r| {
            let owner_id: Option<String> = r.get(4)?;
            Ok(BackfillState {
                status: BackfillStatus::parse(&r.get::<_, String>(0)?),
                last_watermark: r.get(1)?,
                last_success_at: r.get(2)?,
                updated_at: r.get(3)?,
                owner: match owner_id {
                    Some(owner_id) => Some(LeaseOwnerInfo {
                        owner_id,
                        pid: r.get(5)?,
                        host: r.get(6)?,
                        claimed_at_ms: r.get(7)?,
                        heartbeat_at_ms: r.get(8)?,
                        lease_expires_at_ms: r.get(9)?,
                    }),
                    None => None,
                },
                row_present: true,
            })
        })
        .optional()?;
    Ok(row.unwrap_or_default())
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
pub fn try_claim(
    tx: &Transaction<'_>,
    who: &LeaseClaimant,
    now_ms: i64,
    lease_ms: i64,
) -> rusqlite::Result<bool> {
    ensure_row(tx, now_ms.div_euclid(1000))?;
    let n = tx
        .prepare_cached(
            "UPDATE backfill_state SET status = 'running', updated_at = ?1, owner_id = ?2,
                owner_pid = ?3, owner_host = ?4, claimed_at_ms = ?5, heartbeat_at_ms = ?5,
                lease_expires_at_ms = ?6
             WHERE id = 1 AND status <> 'complete'
               AND (status <> 'running'
                    OR (updated_at * 1000 <= ?5 - ?7
                        AND (lease_expires_at_ms IS NULL OR lease_expires_at_ms <= ?5)))",
        )?
        .execute(params![
            now_ms.div_euclid(1000),
            who.owner_id,
            who.pid,
            who.host,
            now_ms,
            now_ms + lease_ms,
            lease_ms,
        ])?;
    Ok(n == 1)
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

/// Runs one fenced write in `tx`. The reference requires `owner_id = owner AND status =
/// 'running'`; the `lease-no-owner-token` variant writes unconditionally, like Codex.
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
        .prepare_cached("SELECT owner_id FROM backfill_state WHERE id = 1")?
        .query_row([], |r| r.get(0))
        .optional()?
        .flatten();
    let fence = if variant.decisions().lease_writes_fenced() {
        "id = 1 AND owner_id = ?1 AND status = 'running'"
    } else {
        "id = 1"
    };
    let set = match kind {
        FencedWrite::Heartbeat => {
            "updated_at = ?2 / 1000, heartbeat_at_ms = ?2, lease_expires_at_ms = ?2 + ?3"
        }
        FencedWrite::Checkpoint => {
            "status = 'running', last_watermark = ?4, updated_at = ?2 / 1000,
             heartbeat_at_ms = ?2, lease_expires_at_ms = ?2 + ?3"
        }
        FencedWrite::Complete => {
            "status = 'complete', last_watermark = COALESCE(?4, last_watermark),
             last_success_at = ?2 / 1000, updated_at = ?2 / 1000, heartbeat_at_ms = ?2,
             lease_expires_at_ms = NULL"
        }
        FencedWrite::Release => {
            "status = 'pending', updated_at = ?2 / 1000, lease_expires_at_ms = NULL, owner_id = NULL"
        }
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
    if count >= 3 {
        stmt.raw_bind_parameter(3, lease_ms)?;
    }
    if count >= 4 {
        stmt.raw_bind_parameter(4, watermark)?;
    }
    let n = stmt.raw_execute()?;
    Ok(FencedOutcome {
        applied: n == 1,
        db_owner,
    })
}

/// Records a rollout that could not be indexed (our addition; Codex only counts them).
pub fn record_failure(
    conn: &Connection,
    path: &str,
    error: &str,
    now_ms: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO backfill_failures (path, error, failed_at_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT(path) DO UPDATE SET error = excluded.error, failed_at_ms = excluded.failed_at_ms",
    )?
    .execute(params![path, error, now_ms])?;
    Ok(())
}

/// Paths recorded as failed by the last backfills.
pub fn failures(conn: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    conn.prepare_cached("SELECT path, error FROM backfill_failures ORDER BY path")?
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
