//! On-disk layout of rollout files: the two roots under `codex_home`, file names, the
//! dated directory scheme, and the backfill watermark string derived from a path.
//!
//! Pure path and string arithmetic: nothing here touches the filesystem.
//!
//! Live rollouts sit at `sessions/YYYY/MM/DD/rollout-YYYY-MM-DDThh-mm-ss-<uuid>.jsonl`, where
//! the date parts and the name's timestamp are the *local* time at session creation (`:`
//! replaced by `-`). Archived rollouts sit flat at `archived_sessions/<same name>`.

use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDateTime};
use uuid::Uuid;

/// Directory under `codex_home` holding live rollouts (dated sub-directories).
pub const SESSIONS_SUBDIR: &str = "sessions";
/// Directory under `codex_home` holding archived rollouts (flat).
pub const ARCHIVED_SESSIONS_SUBDIR: &str = "archived_sessions";

const FILE_PREFIX: &str = "rollout-";
const FILE_SUFFIX: &str = ".jsonl";
/// Suffix Codex adds to a rollout it compressed (`….jsonl.zst`).
const COMPRESSED_SUFFIX: &str = ".zst";
/// `chrono` format of the timestamp inside a rollout file name.
const NAME_TIME_FORMAT: &str = "%Y-%m-%dT%H-%M-%S";
/// Length of a hyphenated UUID.
const UUID_TEXT_LEN: usize = 36;

/// One of the two rollout roots under `codex_home`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Root {
    /// `sessions/`: live threads, dated layout.
    Active,
    /// `archived_sessions/`: archived threads, flat layout.
    Archived,
}

impl Root {
    /// Both roots, active first (the order the backfill scans them in).
    pub const ALL: [Root; 2] = [Root::Active, Root::Archived];

    /// The directory name under `codex_home`.
    pub fn subdir(self) -> &'static str {
        match self {
            Root::Active => SESSIONS_SUBDIR,
            Root::Archived => ARCHIVED_SESSIONS_SUBDIR,
        }
    }

    /// The root directory for `codex_home`.
    pub fn dir(self, codex_home: &Path) -> PathBuf {
        codex_home.join(self.subdir())
    }

    pub fn is_archived(self) -> bool {
        matches!(self, Root::Archived)
    }
}

/// `rollout-YYYY-MM-DDThh-mm-ss-<uuid>.jsonl` for a session created at `created_local`.
pub fn rollout_file_name(created_local: NaiveDateTime, id: Uuid) -> String {
    format!(
        "{FILE_PREFIX}{}-{}{FILE_SUFFIX}",
        created_local.format(NAME_TIME_FORMAT),
        id.hyphenated()
    )
}

/// `<codex_home>/sessions/YYYY/MM/DD/<name>`, date parts from the local creation time.
pub fn active_rollout_path(codex_home: &Path, created_local: NaiveDateTime, id: Uuid) -> PathBuf {
    Root::Active
        .dir(codex_home)
        .join(format!("{:04}", created_local.year()))
        .join(format!("{:02}", created_local.month()))
        .join(format!("{:02}", created_local.day()))
        .join(rollout_file_name(created_local, id))
}

/// `<codex_home>/archived_sessions/<name>` (flat).
pub fn archived_rollout_path(codex_home: &Path, created_local: NaiveDateTime, id: Uuid) -> PathBuf {
    Root::Archived
        .dir(codex_home)
        .join(rollout_file_name(created_local, id))
}

/// What a well-formed rollout file name encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedRolloutName {
    /// The name's timestamp (local time of creation on the writing machine; callers that
    /// need an instant treat it as UTC, as Codex does).
    pub timestamp: NaiveDateTime,
    pub id: Uuid,
}

/// Parses `rollout-YYYY-MM-DDThh-mm-ss-<uuid>.jsonl` (or the same with `.zst`).
///
/// The last 36 characters before `.jsonl` must be a hyphenated UUID preceded by `-`, and what
/// remains must be exactly `YYYY-MM-DDThh-mm-ss` (fixed-width digits, valid date and time).
/// Anything else, including a bare-prefix or substring of a UUID, yields `None`.
pub fn parse_rollout_file_name(name: &str) -> Option<ParsedRolloutName> {
    let name = name.strip_suffix(COMPRESSED_SUFFIX).unwrap_or(name);
    let core = name.strip_prefix(FILE_PREFIX)?.strip_suffix(FILE_SUFFIX)?;
    let split = core.len().checked_sub(UUID_TEXT_LEN)?;
    // `get` rather than indexing: a non-ASCII name must not panic on a char boundary.
    let uuid_text = core.get(split..)?;
    let head = core.get(..split)?;
    let time_text = head.strip_suffix('-')?;
    if !is_hyphenated_uuid_shape(uuid_text) || !is_name_time_shape(time_text) {
        return None;
    }
    let id = Uuid::parse_str(uuid_text).ok()?;
    let timestamp = NaiveDateTime::parse_from_str(time_text, NAME_TIME_FORMAT).ok()?;
    Some(ParsedRolloutName { timestamp, id })
}

/// Cheap name filter used by directory scans: `rollout-*.jsonl` or `rollout-*.jsonl.zst`.
pub fn is_rollout_file_name(name: &str) -> bool {
    let name = name.strip_suffix(COMPRESSED_SUFFIX).unwrap_or(name);
    name.starts_with(FILE_PREFIX) && name.ends_with(FILE_SUFFIX)
}

/// Whether `path` names a compressed rollout (`….jsonl.zst`).
pub fn is_compressed_rollout(path: &Path) -> bool {
    path.to_str()
        .is_some_and(|p| p.ends_with(&format!("{FILE_SUFFIX}{COMPRESSED_SUFFIX}")))
}

/// The plain sibling of a compressed rollout (`….jsonl` for `….jsonl.zst`).
pub fn plain_sibling(path: &Path) -> Option<PathBuf> {
    is_compressed_rollout(path).then(|| path.with_extension(""))
}

/// The Unix-epoch milliseconds embedded in a UUIDv7; `None` for any other version.
pub fn uuid_v7_unix_ms(id: &Uuid) -> Option<i64> {
    if id.get_version_num() != 7 {
        return None;
    }
    let bytes = id.as_bytes();
    // The first 48 bits are the big-endian millisecond timestamp.
    let mut ms_bytes = [0u8; 8];
    ms_bytes[2..].copy_from_slice(&bytes[..6]);
    i64::try_from(u64::from_be_bytes(ms_bytes)).ok()
}

/// The backfill watermark for `path`: relative to `codex_home` when under it (else the full
/// path), lossily converted to UTF-8, with `\` replaced by `/`.
pub fn watermark_for(codex_home: &Path, path: &Path) -> String {
    let shown = path.strip_prefix(codex_home).unwrap_or(path);
    shown.to_string_lossy().replace('\\', "/")
}

/// Which rollout root `path` lies under (component-wise prefix check; the root directory
/// itself counts as lying under it). `None` for paths outside both roots.
pub fn root_of(codex_home: &Path, path: &Path) -> Option<Root> {
    Root::ALL
        .into_iter()
        .find(|root| path.starts_with(root.dir(codex_home)))
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` with hex digits (`Uuid::parse_str` alone would
/// also accept other encodings of other lengths).
fn is_hyphenated_uuid_shape(text: &str) -> bool {
    text.len() == UUID_TEXT_LEN
        && text.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// `DDDD-DD-DDTDD-DD-DD` (`chrono` alone accepts variable-width and signed fields).
fn is_name_time_shape(text: &str) -> bool {
    text.len() == 19
        && text.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 | 13 | 16 => b == b'-',
            10 => b == b'T',
            _ => b.is_ascii_digit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    const ID: &str = "019bffa1-3c5e-7d20-9a4b-2f6c1e8d0b17";

    fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, s)
            .unwrap()
    }

    fn id() -> Uuid {
        Uuid::parse_str(ID).unwrap()
    }

    #[test]
    fn file_name_uses_hyphenated_local_time() {
        let name = rollout_file_name(local(2026, 1, 27, 13, 34, 56), id());
        assert_eq!(name, format!("rollout-2026-01-27T13-34-56-{ID}.jsonl"));
    }

    #[test]
    fn active_path_is_dated_from_local_time() {
        let home = Path::new("/home/dev/.codex");
        let path = active_rollout_path(home, local(2026, 1, 7, 0, 5, 9), id());
        assert_eq!(
            path,
            home.join(format!(
                "sessions/2026/01/07/rollout-2026-01-07T00-05-09-{ID}.jsonl"
            ))
        );
    }

    #[test]
    fn archived_path_is_flat() {
        let home = Path::new("/h");
        let path = archived_rollout_path(home, local(2026, 1, 7, 0, 5, 9), id());
        assert_eq!(
            path,
            home.join(format!(
                "archived_sessions/rollout-2026-01-07T00-05-09-{ID}.jsonl"
            ))
        );
    }

    #[test]
    fn parse_round_trips_a_generated_name() {
        let ts = local(2025, 12, 31, 23, 59, 58);
        let parsed = parse_rollout_file_name(&rollout_file_name(ts, id())).unwrap();
        assert_eq!(
            parsed,
            ParsedRolloutName {
                timestamp: ts,
                id: id()
            }
        );
    }

    #[test]
    fn parse_rejects_malformed_names() {
        let bad = [
            // missing prefix / suffix
            format!("2026-01-27T13-34-56-{ID}.jsonl"),
            format!("rollout-2026-01-27T13-34-56-{ID}.json"),
            // colon time, short year, missing separator, invalid month
            format!("rollout-2026-01-27T13:34:56-{ID}.jsonl"),
            format!("rollout-226-01-27T13-34-56-{ID}.jsonl"),
            format!("rollout-2026-01-27T13-34-56{ID}.jsonl"),
            format!("rollout-2026-13-27T13-34-56-{ID}.jsonl"),
            // truncated / simple-form uuid
            format!("rollout-2026-01-27T13-34-56-{}.jsonl", &ID[..35]),
            format!("rollout-2026-01-27T13-34-56-{}.jsonl", ID.replace('-', "")),
            // extra text between time and uuid
            format!("rollout-2026-01-27T13-34-56-x-{ID}.jsonl"),
            // non-ASCII must not panic
            "rollout-é2026-01-27T13-34-56-019bffa1-3c5e-7d20-9a4b-2f6c1e8d0b1é.jsonl".to_string(),
            "rollout-.jsonl".to_string(),
        ];
        for name in bad {
            assert_eq!(parse_rollout_file_name(&name), None, "{name}");
        }
    }

    #[test]
    fn is_rollout_file_name_checks_prefix_and_suffix_only() {
        assert!(is_rollout_file_name("rollout-anything.jsonl"));
        assert!(is_rollout_file_name("rollout-x.jsonl.zst"));
        assert!(!is_rollout_file_name("rollout-x.zst"));
        assert!(!is_rollout_file_name("session-x.jsonl"));
    }

    #[test]
    fn uuid_v7_ms_is_decoded_and_other_versions_are_none() {
        let ms = 1_769_517_296_512_u64;
        let v7 = uuid::Builder::from_unix_timestamp_millis(ms, &[7; 10]).into_uuid();
        assert_eq!(uuid_v7_unix_ms(&v7), Some(ms as i64));
        let v4 = Uuid::from_u128(0x1234_5678_9abc_4def_8123_4567_89ab_cdef);
        assert_eq!(v4.get_version_num(), 4);
        assert_eq!(uuid_v7_unix_ms(&v4), None);
    }

    #[test]
    fn watermark_is_home_relative_with_forward_slashes() {
        let home = Path::new("/h/.codex");
        let inside = home.join("sessions/2026/01/27/rollout-a.jsonl");
        assert_eq!(
            watermark_for(home, &inside),
            "sessions/2026/01/27/rollout-a.jsonl"
        );
        let outside = Path::new("/elsewhere/rollout-b.jsonl");
        assert_eq!(watermark_for(home, outside), "/elsewhere/rollout-b.jsonl");
        assert_eq!(
            watermark_for(home, Path::new("/h/.codex/archived_sessions\\x.jsonl")),
            "archived_sessions/x.jsonl"
        );
    }

    #[test]
    fn root_of_is_component_wise() {
        let home = Path::new("/h");
        assert_eq!(
            root_of(home, Path::new("/h/sessions/2026/01/27/r.jsonl")),
            Some(Root::Active)
        );
        assert_eq!(
            root_of(home, Path::new("/h/archived_sessions/r.jsonl")),
            Some(Root::Archived)
        );
        // A sibling whose name merely starts with `sessions` is not under the root.
        assert_eq!(root_of(home, Path::new("/h/sessions_old/r.jsonl")), None);
        assert_eq!(root_of(home, Path::new("/other/sessions/r.jsonl")), None);
    }

    #[test]
    fn root_accessors_match_constants() {
        assert_eq!(Root::Active.subdir(), SESSIONS_SUBDIR);
        assert_eq!(Root::Archived.subdir(), ARCHIVED_SESSIONS_SUBDIR);
        assert!(Root::Archived.is_archived() && !Root::Active.is_archived());
        assert_eq!(Root::Active.dir(Path::new("/h")), Path::new("/h/sessions"));
        assert_eq!(
            serde_json::to_string(&Root::ALL).unwrap(),
            r#"["active","archived"]"#
        );
    }
}
