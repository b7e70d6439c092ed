//! Which homes are the harness's own: a marker file that fixture, scenario and test homes
//! carry. Only in such a home may the harness create a `state_5.sqlite` of its own; in any
//! other home (a real user's) the DB is created by the installed Codex or not at all
//! (`cli::db_creation` decides).

use std::io;
use std::path::Path;

/// File at the top of a codex home that marks it as made by the harness.
pub const HOME_MARKER: &str = ".statedb-harness-home";

const MARKER_TEXT: &str =
    "This codex home was made by statedb-harness (fixture, scenario or test home).\n\
A state_5.sqlite that statedb-harness creates here is its own, not one Codex can open.\n";

/// Marks `codex_home` (which must exist) as a harness-own home.
pub fn mark_harness_home(codex_home: &Path) -> io::Result<()> {
    std::fs::write(codex_home.join(HOME_MARKER), MARKER_TEXT)
}

/// Whether `codex_home` carries the marker.
pub fn is_harness_home(codex_home: &Path) -> bool {
    codex_home.join(HOME_MARKER).is_file()
}
