//! Seeded bug `handle-home-unchecked`: lookup and listing use a handle opened for another codex home (Codex only warns).

use super::{Decisions, Defect, ExpectedKill};

pub struct HandleHomeUnchecked;

impl Decisions for HandleHomeUnchecked {
    fn handle_home_checked(&self) -> bool {
        false
    }
}

pub const DEFECT: Defect = Defect {
    description: "lookup and listing use a handle opened for another codex home (Codex only warns)",
    decisions: &HandleHomeUnchecked,
    killed_by: &[ExpectedKill {
        scenario: "handle_for_another_home_answers_nothing",
        failure: "step 1 (list): expected items = 0, got 4",
    }],
};
