//! Seeded bug `list-files-duplicates`: the listing built from the files shows a thread once per file that claims its id.

use super::{Decisions, Defect, ExpectedKill};

pub struct ListFilesDuplicates;

impl Decisions for ListFilesDuplicates {
    fn list_files_one_per_thread(&self) -> bool {
        false
    }
}

pub const DEFECT: Defect = Defect {
    description: "the listing built from the files shows a thread once per file that claims its id",
    decisions: &ListFilesDuplicates,
    killed_by: &[ExpectedKill {
        scenario: "TODO",
        failure: "TODO",
    }],
};
