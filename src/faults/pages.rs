//! Page-level damage to a state DB that stays a SQLite file: the header is intact, but a
//! page is torn (its second half zeroed, as a power cut mid-write leaves it) or overwritten
//! with garbage. Targets: the schema page (page 1 past the 100-byte header: "malformed
//! database schema", a lost schema) or the `threads` table leaf page holding one thread's
//! row ("database disk image is malformed" when a query reaches it).
//!
//! The WAL is checkpointed into the main file first, so the damage is what SQLite reads.
//! The damaged bytes are remembered in the home model (`damaged_db`), so a check can prove
//! that recovery kept them.

use serde::{Deserialize, Serialize};

use super::home::HomeModel;

/// How a page is damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageDamage {
    /// The second half of the page is zeroed (a torn write).
    #[default]
    Torn,
    /// The whole page (past the file header on page 1) is overwritten with a pattern.
    Garbage,
}

/// Page type byte of a table b-tree leaf.
const TABLE_LEAF: u8 = 0x0d;
/// Size of the database file header on page 1.
const FILE_HEADER: usize = 100;

fn checkpoint(home: &HomeModel) -> Result<(), String> {
    let db = home.db_path();
    let conn = rusqlite::Connection::open(&db).map_err(|e| format!("{}: {e}", db.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(|e| format!("cannot checkpoint {}: {e}", db.display()))
}

fn page_size(bytes: &[u8]) -> Result<usize, String> {
    if bytes.len() < FILE_HEADER || !bytes.starts_with(b"SQLite format 3\0") {
        return Err("the state db is not a SQLite file".into());
    }
    Ok(match u16::from_be_bytes([bytes[16], bytes[17]]) {
        1 => 65_536,
        n => usize::from(n),
    })
}

/// Damages the schema page (`thread = None`) or the table leaf page holding `thread`'s row.
pub fn damage_page(
    home: &mut HomeModel,
    thread: Option<&str>,
    how: PageDamage,
) -> Result<String, String> {
    let db = home.db_path();
    if !db.is_file() {
        return Err(format!("no state db at {} to damage", db.display()));
    }
    checkpoint(home)?;
    let mut bytes = std::fs::read(&db).map_err(|e| format!("{}: {e}", db.display()))?;
    let size = page_size(&bytes)?;
    let (page, what) = match thread {
        None => (0, "schema page".to_string()),
        Some(alias) => {
            let id = home.thread(alias)?.id.to_string();
            let page = (0..bytes.len() / size)
                .find(|p| {
                    let start = p * size;
                    let page = &bytes[start..start + size];
                    let header = if *p == 0 { FILE_HEADER } else { 0 };
                    page[header] == TABLE_LEAF && contains(page, id.as_bytes())
                })
                .ok_or_else(|| format!("no table leaf page holds {alias}'s row"))?;
            (
                page,
                format!("threads leaf page {} (holding {alias})", page + 1),
            )
        }
    };
    let start = page * size;
    let from = match how {
        PageDamage::Torn => start + size / 2,
        PageDamage::Garbage if page == 0 => start + FILE_HEADER,
        PageDamage::Garbage => start,
    };
    for (i, b) in bytes[from..start + size].iter_mut().enumerate() {
        *b = match how {
            PageDamage::Torn => 0,
            PageDamage::Garbage => (i as u8).wrapping_mul(37) ^ 0xa5,
        };
    }
    std::fs::write(&db, &bytes).map_err(|e| format!("{}: {e}", db.display()))?;
    home.damaged_db = Some(bytes);
    Ok(format!("{what} of {} {how:?}", db.display()))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
