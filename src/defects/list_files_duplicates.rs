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
    killed_by: &[
        ExpectedKill {
            scenario: "list_duplicate_id_once_in_every_mode",
            failure: "listed once: 019bff4d-accd-76fe-99cf-a34dff5b9bb8 appears 2 times in the Active listing",
        },
    ],
};
