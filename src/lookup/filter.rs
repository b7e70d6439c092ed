//! Listing filters by source kind and model provider (Codex's `thread/list` `sourceKinds` /
//! `modelProviders`): an empty list means "any".
//!
//! Sources compare in Codex's stored form (a bare string such as `cli`, or the JSON text
//! of an object source); a rollout without a source is Codex's default source `vscode`.
//! A rollout without a provider matches only when the default provider is asked for, the
//! way Codex's file listing treats it (the DB stores the default in that case, so both
//! listings agree).

use rusqlite::types::Value;

use crate::rollout::head::SessionMetaHead;
use crate::rollout::metadata::{serde_text, FALLBACK_SOURCE};
use crate::thread::DEFAULT_PROVIDER;

/// Which threads a listing keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListFilter {
    /// Source kinds to keep (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// Model providers to keep (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<String>,
}

impl ListFilter {
    /// Whether a rollout with this head passes.
    pub fn keeps_head(&self, head: &SessionMetaHead) -> bool {
        let source = head
            .source
            .as_ref()
            .filter(|v| !v.is_null())
            .map_or_else(|| FALLBACK_SOURCE.to_string(), serde_text);
        let provider = head.model_provider.as_deref().unwrap_or(DEFAULT_PROVIDER);
        any_or(&self.sources, &source) && any_or(&self.providers, provider)
    }

    /// The SQL condition (`AND …`, placeholders numbered from `first`) and its values.
    pub fn sql(&self, first: usize) -> (String, Vec<Value>) {
        let mut clause = String::new();
        let mut values = Vec::new();
        for (column, wanted) in [
            ("source", &self.sources),
            ("model_provider", &self.providers),
        ] {
            if wanted.is_empty() {
                continue;
            }
            let marks: Vec<String> = wanted
                .iter()
                .map(|w| {
                    values.push(Value::Text(w.clone()));
                    format!("?{}", first + values.len() - 1)
                })
                .collect();
            // `+column`: Codex's `idx_threads_source` / `idx_threads_provider` would fetch
            // every matching row and sort them all; the listing walks its sort index.
            clause.push_str(&format!(" AND +{column} IN ({})", marks.join(", ")));
        }
        (clause, values)
    }
}

fn any_or(wanted: &[String], value: &str) -> bool {
    wanted.is_empty() || wanted.iter().any(|w| w == value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_numbers_placeholders_after_the_given_ones() {
        let f = ListFilter {
            sources: vec!["cli".into(), "exec".into()],
            providers: vec!["azure".into()],
        };
        let (clause, values) = f.sql(3);
        assert_eq!(
            clause,
            " AND +source IN (?3, ?4) AND +model_provider IN (?5)"
        );
        assert_eq!(values.len(), 3);
        assert_eq!(ListFilter::default().sql(3).0, "");
    }

    #[test]
    fn a_head_without_provider_is_the_default_provider() {
        let head = SessionMetaHead {
            id: "x".into(),
            timestamp: None,
            cwd: None,
            model_provider: None,
            source: None,
            originator: None,
            cli_version: None,
        };
        let only = |p: &str| ListFilter {
            providers: vec![p.into()],
            ..ListFilter::default()
        };
        assert!(only(DEFAULT_PROVIDER).keeps_head(&head));
        assert!(!only("azure").keeps_head(&head));
        let vscode = ListFilter {
            sources: vec!["vscode".into()],
            ..ListFilter::default()
        };
        assert!(vscode.keeps_head(&head), "no source is Codex's default");
    }
}
