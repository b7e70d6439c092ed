//! Expectations of a step, a join or a DB row: every field optional, each given one checked
//! by `checks`. Sources, fallback reasons and statuses deserialize into the enums the state
//! layer reports, so an unknown name is a parse error listing the valid ones.

use serde::{Deserialize, Serialize};

use super::timing::{parse_bound, TimingSpec};
use crate::lookup::{FallbackReason, LookupSource};
use crate::state::backfill_state::BackfillStatus;

/// A named value, or `"none"` for its absence (a lookup that found nothing has no source,
/// a DB answer no fallback reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrNone<T> {
    None,
    Some(T),
}

impl<T: PartialEq> OrNone<T> {
    /// Whether `got` is what this expects.
    pub fn matches(&self, got: Option<&T>) -> bool {
        match self {
            OrNone::None => got.is_none(),
            OrNone::Some(want) => got == Some(want),
        }
    }
}

impl<T: Serialize> std::fmt::Display for OrNone<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OrNone::None => f.write_str("none"),
            OrNone::Some(v) => match serde_json::to_value(v) {
                Ok(serde_json::Value::String(s)) => f.write_str(&s),
                _ => f.write_str("?"),
            },
        }
    }
}

impl<T: Serialize> Serialize for OrNone<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            OrNone::None => s.serialize_str("none"),
            OrNone::Some(v) => v.serialize(s),
        }
    }
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for OrNone<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{Error, IntoDeserializer};
        let text = String::deserialize(d)?;
        if text == "none" {
            return Ok(OrNone::None);
        }
        let de: serde::de::value::StringDeserializer<serde::de::value::Error> =
            text.into_deserializer();
        T::deserialize(de)
            .map(OrNone::Some)
            .map_err(|e| D::Error::custom(format!("{e}, or `none`")))
    }
}

/// A backfill status a scenario expects: one of the state layer's own names (`pending`,
/// `running`, `complete`); anything else is a parse error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedStatus(pub BackfillStatus);

impl ExpectedStatus {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl std::fmt::Display for ExpectedStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ExpectedStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ExpectedStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match BackfillStatus::parse(&text) {
            BackfillStatus::Unknown(_) => Err(serde::de::Error::custom(format!(
                "unknown status `{text}`, expected one of `{}`, `{}`, `{}`",
                BackfillStatus::Pending,
                BackfillStatus::Running,
                BackfillStatus::Complete
            ))),
            known => Ok(ExpectedStatus(known)),
        }
    }
}

/// `expect.path` value meaning "the path the looked-up thread's DB row holds".
pub const PATH_OF_ROW: &str = "row";

/// Expectations of a step or join. Every field is optional; each given one is checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The operation succeeded (init ready / lookup found / role finished without error).
    pub ok: Option<bool>,
    /// The error text contains this.
    pub error_contains: Option<String>,
    /// The startup gate timed out.
    pub timed_out: Option<bool>,
    /// A process worker was killed (by a signal or a failpoint) instead of exiting.
    pub killed: Option<bool>,
    /// A process worker's exit code (`exit(CODE)` failpoint: CODE; none after a signal).
    pub exit_code: Option<i32>,
    /// Elapsed time bounds: a duration, or `wait_timeout`, `wait_timeout+slack`, `lease`, `lease+slack`.
    pub elapsed_min: Option<String>,
    pub elapsed_max: Option<String>,
    /// Startup: backfill status after the gate, and whether this worker ran the backfill.
    pub status: Option<ExpectedStatus>,
    pub backfill_ran: Option<bool>,
    pub upserted: Option<u64>,
    pub failed: Option<u64>,
    /// Lookup: `db`, `filesystem`, `unverified_db` or `none`.
    pub source: Option<OrNone<LookupSource>>,
    /// Lookup: a fallback reason or `none`.
    pub fallback_reason: Option<OrNone<FallbackReason>>,
    pub repaired: Option<bool>,
    /// Lookup: a thread alias whose current file must be returned, `none`, `other:<alias>`,
    /// or `row` (the path the thread's DB row holds when the step is checked).
    pub path: Option<String>,
    /// List: number of items over all pages.
    pub items: Option<usize>,
    /// List: every thread of the scope exactly once over all pages.
    pub all_threads: Option<bool>,
    /// List: aliases reported stale.
    pub stale: Option<Vec<String>>,
    /// Entrypoint: DB opens and refused second opens in the process.
    pub db_opens: Option<u32>,
    pub refused_opens: Option<u32>,
    pub consumers_ok: Option<bool>,
}

/// Expectations of a DB row.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowExpect {
    pub exists: Option<bool>,
    /// Alias whose current file the row must point at.
    pub path: Option<String>,
    pub archived: Option<bool>,
    pub tokens_used: Option<i64>,
    pub title: Option<String>,
}

pub(super) fn check_expect(
    e: &Expect,
    at: &str,
    check_alias: &dyn Fn(&str, &str) -> Result<(), String>,
) -> Result<(), String> {
    if let Some(p) = e.path.as_deref().filter(|p| *p != PATH_OF_ROW) {
        check_alias(p, at)?;
    }
    for s in e.stale.iter().flatten() {
        check_alias(s, at)?;
    }
    for bound in [&e.elapsed_min, &e.elapsed_max].into_iter().flatten() {
        parse_bound(bound, &TimingSpec::default()).map_err(|err| format!("{at}: {err}"))?;
    }
    Ok(())
}
