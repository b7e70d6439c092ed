//! Seeded bug `list-timestamp-cursor`: listing pages with a timestamp-only cursor and loses rows that tie on it.

use super::{Decisions, Defect, ExpectedKill};

pub struct ListTimestampCursor;

impl Decisions for ListTimestampCursor {
    fn list_cursor_breaks_ties(&self) -> bool {
        false
    }
}

pub const DEFECT: Defect = Defect {
    description: "listing pages with a timestamp-only cursor and loses rows that tie on it",
    decisions: &ListTimestampCursor,
    killed_by: &[
        ExpectedKill {
            // The outside listing check (every rollout listed) fails before the item count.
            scenario: "list_cursor_ties",
            failure: "is missing from the Active listing",
        },
        ExpectedKill {
            scenario: "list_cursor_forms_codex_hands_out",
            failure: "is missing from the Active listing",
        },
    ],
};
