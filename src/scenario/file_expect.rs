//! The `expect_files` step, judged the same way on every target: which files the sqlite
//! home holds after the steps before it, from a directory listing and the files' bytes.

use super::model::Scenario;
use crate::faults::HomeModel;

/// Failure lines for `present` / `absent` (names relative to `sqlite_home`). A present
/// file the scenario declared as a `[[home.file]]` in that directory must still hold its
/// declared content (a removal that rewrites instead of deleting, or a wrong file
/// truncated, shows here).
pub fn check_files(
    sc: &Scenario,
    home: &HomeModel,
    present: &[String],
    absent: &[String],
) -> Vec<String> {
    let (codex_home, sqlite_home) = (&home.codex_home, &home.sqlite_home);
    let mut f = Vec::new();
    for name in present {
        let path = sqlite_home.join(name);
        if !path.is_file() {
            f.push(format!(
                "expected file {name} in the sqlite home, it is gone"
            ));
            continue;
        }
        let declared = sc
            .home
            .files
            .iter()
            .find(|x| codex_home.join(&x.path) == path);
        if let Some(declared) = declared {
            match std::fs::read(&path) {
                Ok(bytes) if bytes == declared.content.as_bytes() => {}
                Ok(_) => f.push(format!("file {name} was changed")),
                Err(e) => f.push(format!("cannot read {name}: {e}")),
            }
        }
    }
    for name in absent {
        if std::fs::symlink_metadata(sqlite_home.join(name)).is_ok() {
            f.push(format!(
                "expected no {name} in the sqlite home, it is still there"
            ));
        }
    }
    f
}
