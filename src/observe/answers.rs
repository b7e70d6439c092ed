//! Answers judged by the files they name: a lookup's path must not belong to another
//! thread, and a listing must hold every rollout of its scope exactly once, each with a
//! path of its own scope whose head claims it. Labels (`source`, `unverified_db`, ...)
//! play no part: the head is read whatever the answer says about itself.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::census::{Census, ObservedScope};
use super::head::claimed_id;

/// "Never a foreign file": `None` when the head at `path` claims `asked` or nothing (an
/// unverifiable file is not another thread's); else the violation. A path that does not
/// exist is no answer either: nothing can be read at it.
pub fn check_answer_path(asked: &str, path: &Path, home: &Path) -> Option<String> {
    if !path.is_file() {
        return Some(format!(
            "answers name real files: the answer for {asked} is {}, which does not exist",
            rel(path, home)
        ));
    }
    match claimed_id(path) {
        Some(claimed) if claimed != asked => Some(format!(
            "never a foreign file: the answer for {asked} is {} whose head claims {claimed}",
            rel(path, home)
        )),
        _ => None,
    }
}

/// "Answers are what they say": an answer labelled as verified (the target says it read
/// the head) must name a file whose head claims `asked`; the head is read here.
pub fn check_verified_label(asked: &str, path: &Path, label: &str, home: &Path) -> Option<String> {
    match claimed_id(path) {
        Some(c) if c == asked => None,
        Some(_) => None, // a foreign head is reported by `check_answer_path`
        None if path.is_file() => Some(format!(
            "answers are what they say: the answer for {asked} returned {} as verified, but its head is unreadable (labelled {label})",
            rel(path, home)
        )),
        None => None, // a missing file is reported by `check_answer_path`
    }
}

/// One listed thread as the target returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub id: String,
    pub path: Option<PathBuf>,
}

/// "Every rollout listed exactly once with its own path": no id twice; every path exists
/// in `scope`'s root and its head does not claim another thread; and, when the listing is
/// meant to be complete, every id of `complete` claimed by a `rollout-*.jsonl` file of the
/// scope is listed (the ids the scenario knows: files a concurrent writer adds meanwhile
/// are not owed to a listing that started before them).
pub fn check_listing(
    items: &[Listed],
    census: &Census,
    scope: ObservedScope,
    home: &Path,
    complete: Option<&BTreeSet<String>>,
) -> Vec<String> {
    let mut f = Vec::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for it in items {
        *counts.entry(it.id.as_str()).or_default() += 1;
    }
    for (id, n) in &counts {
        if *n > 1 {
            f.push(format!(
                "listed once: {id} appears {n} times in the {scope:?} listing"
            ));
        }
    }
    let root = home.join(scope.dir_name());
    for it in items {
        let Some(p) = &it.path else {
            f.push(format!("listed with its own path: {} has no path", it.id));
            continue;
        };
        if !p.is_file() {
            f.push(format!(
                "listed with its own path: {} is listed at {}, which does not exist",
                it.id,
                rel(p, home)
            ));
        } else if !p.starts_with(&root) {
            f.push(format!(
                "listed with its own path: {} is listed at {}, outside {}/",
                it.id,
                rel(p, home),
                scope.dir_name()
            ));
        } else if let Some(claimed) = claimed_id(p).filter(|c| *c != it.id) {
            f.push(format!(
                "listed with its own path: {} is listed at {}, whose head claims {claimed}",
                it.id,
                rel(p, home)
            ));
        }
    }
    let Some(known) = complete else {
        return f;
    };
    for (id, paths) in census
        .ids(scope)
        .into_iter()
        .filter(|(id, _)| known.contains(id))
    {
        let named_as_rollout = paths.iter().any(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("rollout-") && n.ends_with(".jsonl"))
        });
        if named_as_rollout && !counts.contains_key(id.as_str()) {
            f.push(format!(
                "every rollout listed: {id} ({}) is missing from the {scope:?} listing",
                rel(&paths[0], home)
            ));
        }
    }
    f
}

fn rel(p: &Path, home: &Path) -> String {
    p.strip_prefix(home).unwrap_or(p).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(home: &Path, rel: &str, id: &str) -> PathBuf {
        let p = home.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(
            &p,
            format!("{{\"type\":\"session_meta\",\"payload\":{{\"id\":\"{id}\"}}}}\n"),
        )
        .unwrap();
        p
    }

    #[test]
    fn a_foreign_answer_fails_whatever_its_label() {
        let dir = tempfile::tempdir().unwrap();
        let b = write(dir.path(), "sessions/rollout-b.jsonl", "b");
        let v = check_answer_path("a", &b, dir.path()).expect("foreign");
        assert!(v.contains("claims b"), "{v}");
        assert!(check_answer_path("b", &b, dir.path()).is_none());
        std::fs::write(&b, "garbled").unwrap();
        assert!(
            check_answer_path("a", &b, dir.path()).is_none(),
            "unverifiable is not foreign"
        );
    }

    #[test]
    fn a_verified_label_on_an_unreadable_head_fails() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "sessions/rollout-a.jsonl", "a");
        assert!(check_verified_label("a", &a, "db", dir.path()).is_none());
        std::fs::write(&a, "").unwrap();
        let v = check_verified_label("a", &a, "db", dir.path()).expect("unreadable");
        assert!(
            v.contains("as verified, but its head is unreadable (labelled db)"),
            "{v}"
        );
    }

    #[test]
    fn a_wrong_listing_fails_each_way() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "sessions/rollout-a.jsonl", "a");
        let b = write(dir.path(), "sessions/rollout-b.jsonl", "b");
        let arch = write(dir.path(), "archived_sessions/rollout-c.jsonl", "c");
        let census = Census::take(dir.path());
        let known: BTreeSet<String> = ["a", "b", "c"].map(String::from).into();
        let known = Some(&known);
        let l = |id: &str, p: &Path| Listed {
            id: id.into(),
            path: Some(p.to_path_buf()),
        };
        let good = [l("a", &a), l("b", &b)];
        assert!(check_listing(&good, &census, ObservedScope::Active, dir.path(), known).is_empty());
        let cases: [(Vec<Listed>, &str); 5] = [
            (vec![l("a", &a), l("a", &a), l("b", &b)], "appears 2 times"),
            (vec![l("a", &a)], "b (sessions/rollout-b.jsonl) is missing"),
            (vec![l("a", &b), l("b", &b)], "head claims b"),
            (
                vec![l("a", &a), l("b", &dir.path().join("sessions/gone.jsonl"))],
                "does not exist",
            ),
            (
                vec![l("a", &a), l("b", &b), l("c", &arch)],
                "outside sessions/",
            ),
        ];
        for (items, want) in cases {
            let f =
                check_listing(&items, &census, ObservedScope::Active, dir.path(), known).join("\n");
            assert!(f.contains(want), "{want}: {f}");
        }
    }
}
