//! What Codex's typed rollout reader accepts, and the forms its backfill stores, as observed
//! with the pinned Codex 0.169.0 (`tests/interop_rows.rs` compares whole rows).
//!
//! - A `turn_context` line is only used when it has `cwd`, `approval_policy`, `model`,
//!   `summary` and a `sandbox_policy` object tagged with `type`; otherwise Codex's parser
//!   rejects the line and the thread gets no model, effort or policy from it.
//! - A `token_count` event only counts when its `total_token_usage` has all five fields.
//! - The sandbox policy is stored as Codex's permission profile: read-only and
//!   danger-full-access have fixed forms; workspace-write depends on the machine (cwd, tmp
//!   directories), so its turn-context JSON is stored as is.
//! - `cwd` is canonicalised (symlinks, `.`, `..`, trailing `/`) when it exists on this
//!   machine, else kept verbatim.

use serde_json::Value;

/// Codex's stored form of a read-only sandbox (also its default when no turn names one).
pub use crate::thread::DEFAULT_SANDBOX_POLICY as READ_ONLY_POLICY;
/// Codex's stored form of danger-full-access.
pub const FULL_ACCESS_POLICY: &str = r#"{"type":"disabled"}"#;

fn is_str(v: &Value, key: &str) -> bool {
    v.get(key).is_some_and(Value::is_string)
}

/// Whether Codex's reader accepts this `turn_context` payload.
pub fn accepts_turn_context(payload: &Value) -> bool {
    ["cwd", "approval_policy", "model", "summary"]
        .iter()
        .all(|k| is_str(payload, k))
        && payload
            .get("sandbox_policy")
            .is_some_and(|p| is_str(p, "type"))
}

/// Whether a `token_count` event's totals are in the shape Codex reads.
pub fn accepts_token_usage(usage: &Value) -> bool {
    [
        "input_tokens",
        "cached_input_tokens",
        "output_tokens",
        "reasoning_output_tokens",
        "total_tokens",
    ]
    .iter()
    .all(|k| usage.get(k).is_some_and(Value::is_number))
}

/// The `threads.sandbox_policy` text for a turn context's policy.
pub fn stored_sandbox_policy(policy: &Value) -> String {
    match policy.get("type").and_then(Value::as_str) {
        Some("read-only") => READ_ONLY_POLICY.to_string(),
        Some("danger-full-access") => FULL_ACCESS_POLICY.to_string(),
        _ => policy.to_string(),
    }
}

/// The `threads.approval_mode` text: `on-failure` is stored as `on-request` (Codex retired it).
pub fn stored_approval(policy: &str) -> String {
    match policy {
        "on-failure" => "on-request".to_string(),
        other => other.to_string(),
    }
}

/// `cwd` as Codex stores it: canonical when the directory exists here, verbatim otherwise.
pub fn normalize_cwd(cwd: &str) -> String {
    match std::fs::canonicalize(cwd) {
        Ok(path) => path.to_string_lossy().into_owned(),
        Err(_) => cwd.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn turn_context_needs_a_typed_policy_and_a_summary() {
        let good = json!({"cwd": "/p", "approval_policy": "never", "model": "m",
            "summary": "auto", "sandbox_policy": {"type": "read-only"}});
        assert!(accepts_turn_context(&good));
        let mut legacy = good.clone();
        legacy["sandbox_policy"] = json!({"mode": "workspace-write"});
        assert!(!accepts_turn_context(&legacy));
        let mut no_summary = good;
        no_summary.as_object_mut().unwrap().remove("summary");
        assert!(!accepts_turn_context(&no_summary));
    }

    #[test]
    fn token_usage_needs_all_five_fields() {
        let full = json!({"input_tokens": 1, "cached_input_tokens": 0, "output_tokens": 2,
            "reasoning_output_tokens": 0, "total_tokens": 3});
        assert!(accepts_token_usage(&full));
        assert!(!accepts_token_usage(
            &json!({"input_tokens": 1, "output_tokens": 2, "total_tokens": 3})
        ));
    }

    #[test]
    fn policies_and_approvals_take_codexs_stored_forms() {
        assert_eq!(
            stored_sandbox_policy(&json!({"type": "read-only"})),
            READ_ONLY_POLICY
        );
        assert_eq!(
            stored_sandbox_policy(&json!({"type": "danger-full-access"})),
            FULL_ACCESS_POLICY
        );
        assert_eq!(stored_approval("on-failure"), "on-request");
        assert_eq!(stored_approval("never"), "never");
    }

    #[test]
    fn cwd_is_canonical_when_it_exists() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("link")).unwrap();
        let messy = format!("{}/link/./", dir.path().display());
        let canonical = std::fs::canonicalize(&real).unwrap();
        assert_eq!(normalize_cwd(&messy), canonical.to_string_lossy());
        assert_eq!(normalize_cwd("/nonexistent/a/../b"), "/nonexistent/a/../b");
    }
}
