//! Init telemetry: each phase of startup recorded as an `init_phase` event, the way
//! Codex's `StateRuntime::init` records `codex.sqlite.init.count` per phase (tags `phase`,
//! `status`, `error`), so a test or scenario reads from the event log which phase ran,
//! in which order, and where startup stopped.
//!
//! The reference has one DB, so its phases are Codex's state-DB subset: `open_state`,
//! `migrate_state`, `post_init_query` (the damage probe), `remove_legacy_state_dbs`,
//! `backfill_gate` (claim, run or wait), then `ready`.

use serde_json::json;

use super::ErrorClass;
use crate::events::kinds;
use crate::process::ProcessContext;

/// One phase of startup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum InitPhase {
    OpenState,
    MigrateState,
    PostInitQuery,
    RemoveLegacyStateDbs,
    BackfillGate,
    Ready,
}

impl InitPhase {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// How a phase ended: success, or failed with Codex's error class tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseStatus {
    Success,
    Failed(ErrorClass),
}

/// Emits `init_phase` with `phase`, `status` (`success` / `failed`) and `error` (`none` or
/// the class).
pub fn record(ctx: &ProcessContext, phase: InitPhase, status: PhaseStatus) {
    let (status, error) = match status {
        PhaseStatus::Success => ("success", "none".to_string()),
        PhaseStatus::Failed(class) => (
            "failed",
            serde_json::to_value(class)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "unknown".into()),
        ),
    };
    ctx.emit(
        kinds::INIT_PHASE,
        json!({"phase": phase.as_str(), "status": status, "error": error}),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_names_are_codexs_snake_case_tags() {
        assert_eq!(InitPhase::OpenState.as_str(), "open_state");
        assert_eq!(InitPhase::PostInitQuery.as_str(), "post_init_query");
        assert_eq!(InitPhase::BackfillGate.as_str(), "backfill_gate");
    }
}
