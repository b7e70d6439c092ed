//! Recovery of a damaged DB in a real Codex home, proven with the real Codex 0.169.0: the
//! damaged file is kept aside, the fresh DB is made by Codex (so Codex still opens it), the
//! index is rebuilt, and what only the DB held — Codex's `name`, `is_pinned`, the thread's
//! section place (how Codex shows a pin) and the sections themselves — is carried over from
//! the rows that are still readable. Missing binaries skip locally, fail under CI.

mod codex_support;
mod common;
mod interop_support;

use std::path::{Path, PathBuf};

use interop_support::*;

/// Codex 0.169.0 seeds this section; a thread in it is pinned.
const PINNED_SECTION: &str = "01984de2-8f74-7c91-a3b2-5c5e937cf318";
const WORK_SECTION: &str = "0193f29c-8b7a-7000-8000-776f726b0000";

fn db(home: &Path) -> PathBuf {
    home.join("state_5.sqlite")
}

/// Tears (zeroes the second half of) one `threads` leaf page that holds none of `keep`'s
/// rows, as a power cut mid-write leaves it. Returns the damaged bytes.
fn tear_a_leaf_page_without(db: &Path, keep: &[String]) -> Vec<u8> {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    let mut bytes = std::fs::read(db).unwrap();
    let size = usize::from(u16::from_be_bytes([bytes[16], bytes[17]]));
    let holds = |page: &[u8], id: &str| page.windows(id.len()).any(|w| w == id.as_bytes());
    let victim = (1..bytes.len() / size)
        .find(|p| {
            let page = &bytes[p * size..(p + 1) * size];
            // A table b-tree leaf holding a thread row (its rollout path) and no kept row.
            page[0] == 0x0d && holds(page, "rollout-") && !keep.iter().any(|id| holds(page, id))
        })
        .expect("a threads leaf page without the kept rows (add threads to the home)");
    for b in &mut bytes[victim * size + size / 2..(victim + 1) * size] {
        *b = 0;
    }
    std::fs::write(db, &bytes).unwrap();
    bytes
}

/// Catches: a rebuild that drops Codex's name / pin / section columns (`recovery-drops-db-only`
/// in Codex's schema), a fresh DB made by the harness in a user's home (Codex then refuses
/// to start: "table threads already exists"), a damaged file deleted or changed, and a
/// rebuild that misses threads.
#[test]
fn recovering_a_damaged_codex_db_keeps_names_pins_and_sections_and_codex_starts_on_it() {
    let Some(bin) = codex_or_skip("recover_codex_db") else {
        return;
    };
    let (home, threads) = user_home(14, 2);
    codex_touch(&bin, home.path()).expect("Codex creates and indexes its DB");
    let pinned = threads[0].id.to_string();
    let filed = threads[1].id.to_string();
    exec(
        &db(home.path()),
        &format!(
            "INSERT INTO thread_sections (id, name) VALUES ('{WORK_SECTION}', 'Work');
             UPDATE threads SET name = 'Release notes', is_pinned = 1,
                 thread_section_id = '{PINNED_SECTION}', section_position = 0,
                 section_entered_at_ms = 1796000000000 WHERE id = '{pinned}';
             UPDATE threads SET name = 'Parser rewrite', thread_section_id = '{WORK_SECTION}',
                 section_position = 3 WHERE id = '{filed}';"
        ),
    );
    let damaged = tear_a_leaf_page_without(&db(home.path()), &[pinned.clone(), filed.clone()]);

    harness_init_with_codex(&bin, home.path());

    // The damaged file is kept, byte for byte, next to the fresh DB.
    let backups: Vec<PathBuf> = std::fs::read_dir(home.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("state_5.sqlite.corrupt-")
                && !name.ends_with("-wal")
                && !name.ends_with("-shm")
        })
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert!(
        std::fs::read(&backups[0]).unwrap() == damaged,
        "the backup was changed"
    );

    // The fresh DB is Codex's own, and every thread is indexed again.
    let fresh = db(home.path());
    assert_eq!(
        query(
            &fresh,
            "SELECT count(*) FROM sqlite_master WHERE name = '_sqlx_migrations'"
        )[0][0],
        "1",
        "the fresh DB was not made by Codex"
    );
    assert_eq!(
        query(&fresh, "SELECT count(*) FROM threads")[0][0],
        threads.len().to_string()
    );
    let row = |id: &str| {
        query(
            &fresh,
            &format!(
                "SELECT COALESCE(name, 'NULL'), is_pinned, COALESCE(thread_section_id, 'NULL'),
                        COALESCE(section_position, 'NULL'), COALESCE(section_entered_at_ms, 'NULL')
                 FROM threads WHERE id = '{id}'"
            ),
        )[0]
        .clone()
    };
    assert_eq!(
        row(&pinned),
        ["Release notes", "1", PINNED_SECTION, "0", "1796000000000"]
    );
    assert_eq!(
        row(&filed),
        ["Parser rewrite", "0", WORK_SECTION, "3", "NULL"]
    );
    assert_eq!(
        query(
            &fresh,
            &format!("SELECT name FROM thread_sections WHERE id = '{WORK_SECTION}'")
        ),
        [["Work".to_string()]]
    );

    // Codex starts on the recovered DB, lists and reads every thread from its own file, and
    // shows the pin and the section, and the thread's name.
    let says = codex_says(&bin, home.path()).expect("Codex starts on the recovered DB");
    assert_codex_agrees(&says, &threads);
    let section = |id: &str| says.read[id]["section"]["name"].as_str().map(str::to_owned);
    assert_eq!(
        section(&pinned).as_deref(),
        Some("Pinned"),
        "{:?}",
        says.read[&pinned]
    );
    assert_eq!(section(&filed).as_deref(), Some("Work"));
    assert_eq!(
        says.read[&pinned]["name"].as_str(),
        Some(threads[0].name.as_str()),
        "Codex shows the thread's name"
    );
}
