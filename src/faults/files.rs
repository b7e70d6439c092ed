//! Injectors that damage files: rollouts (torn, emptied, garbled, moved, duplicated,
//! deleted), the DB file itself, and the sqlite home's permissions. Only paths inside the
//! scenario's home are touched.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::home::HomeModel;
use super::{RootName, Unverifiable};
use crate::rollout::layout::{
    active_rollout_path, archived_rollout_path, parse_rollout_file_name, Root,
};

fn io(path: &Path, e: std::io::Error) -> String {
    format!("{}: {e}", path.display())
}

pub fn write_unverifiable(
    home: &mut HomeModel,
    alias: &str,
    content: Unverifiable,
) -> Result<PathBuf, String> {
    home.thread(alias)?;
    home.counter += 1;
    let path = home
        .codex_home
        .join("sessions/odd")
        .join(format!("custom-rollout-name-{}.jsonl", home.counter));
    std::fs::create_dir_all(path.parent().unwrap_or(&home.codex_home)).map_err(|e| io(&path, e))?;
    let bytes: &[u8] = match content {
        Unverifiable::Empty => b"",
        Unverifiable::Garbled => b"\x00\x01 not json\n{{{{\n",
        Unverifiable::ResponseItemFirst => {
            b"{\"timestamp\":\"2026-01-27T12:00:00.000Z\",\"type\":\"response_item\",\"payload\":{\"type\":\"message\",\"role\":\"assistant\",\"content\":[]}}\n"
        }
    };
    std::fs::write(&path, bytes).map_err(|e| io(&path, e))?;
    Ok(path)
}

pub fn move_rollout(home: &mut HomeModel, alias: &str, to: RootName) -> Result<String, String> {
    let entry = home.thread(alias)?.clone();
    let target_root = match to {
        RootName::Active => Root::Active,
        RootName::Archived => Root::Archived,
    };
    if entry.root == target_root {
        return Err(format!("{alias} is already under {}", target_root.subdir()));
    }
    let name = entry
        .path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{} has no file name", entry.path.display()))?;
    let parsed =
        parse_rollout_file_name(name).ok_or_else(|| format!("{name} is not a rollout name"))?;
    let dest = match target_root {
        Root::Active => active_rollout_path(&home.codex_home, parsed.timestamp, parsed.id),
        Root::Archived => archived_rollout_path(&home.codex_home, parsed.timestamp, parsed.id),
    };
    std::fs::create_dir_all(dest.parent().unwrap_or(&home.codex_home)).map_err(|e| io(&dest, e))?;
    std::fs::rename(&entry.path, &dest).map_err(|e| io(&entry.path, e))?;
    let t = home.threads.get_mut(alias).ok_or("thread vanished")?;
    t.path = dest.clone();
    t.root = target_root;
    Ok(format!("{alias} moved to {}", home.relative(&dest)))
}

pub fn duplicate(home: &mut HomeModel, alias: &str) -> Result<String, String> {
    let entry = home.thread(alias)?.clone();
    let name = entry.path.file_name().ok_or("no file name")?;
    let dest = entry.root.dir(&home.codex_home).join("copies").join(name);
    std::fs::create_dir_all(dest.parent().unwrap_or(&home.codex_home)).map_err(|e| io(&dest, e))?;
    std::fs::copy(&entry.path, &dest).map_err(|e| io(&dest, e))?;
    Ok(format!("{alias} also claimed by {}", home.relative(&dest)))
}

pub fn corrupt_db(home: &mut HomeModel) -> Result<String, String> {
    let db = home.db_path();
    let junk =
        b"this file used to be a database but is now just text; SQLite will say so.\n".repeat(64);
    std::fs::write(&db, &junk).map_err(|e| io(&db, e))?;
    for sidecar in ["-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{sidecar}", db.display()));
        if p.exists() {
            std::fs::remove_file(&p).map_err(|e| io(&p, e))?;
        }
    }
    home.damaged_db = Some(junk);
    Ok(format!(
        "{} overwritten with non-database bytes",
        db.display()
    ))
}

pub fn make_readonly(home: &mut HomeModel) -> Result<String, String> {
    let dir = home.sqlite_home.clone();
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555))
        .map_err(|e| io(&dir, e))?;
    home.readonly_dirs.push(dir.clone());
    // Root ignores permission bits; the immutable attribute stops root too.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let status = std::process::Command::new("chattr")
            .arg("+i")
            .arg(&dir)
            .status()
            .map_err(|e| {
                format!(
                    "running as root, and `chattr +i {}` failed to start: {e}",
                    dir.display()
                )
            })?;
        if !status.success() {
            return Err(format!(
                "running as root, and `chattr +i {}` failed ({status}); the filesystem may not support it",
                dir.display()
            ));
        }
    }
    let probe = dir.join(".write-probe");
    if std::fs::write(&probe, b"x").is_ok() {
        let _ = std::fs::remove_file(&probe);
        return Err(format!("{} is still writable", dir.display()));
    }
    Ok(format!("{} is read-only", dir.display()))
}

pub fn undo_readonly(dir: &Path) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(dir)
            .status();
    }
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
}

pub fn torn_last_line(home: &HomeModel, alias: &str) -> Result<String, String> {
    let path = home.thread(alias)?.path.clone();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(|e| io(&path, e))?;
    file.write_all(b"{\"timestamp\":\"2026-01-27T12:59:59.000Z\",\"type\":\"event_msg\",\"payload\":{\"type\":\"agent_mes")
        .map_err(|e| io(&path, e))?;
    Ok(format!("{alias}: last line torn"))
}

pub fn delete_file(home: &HomeModel, alias: &str) -> Result<String, String> {
    let path = home.thread(alias)?.path.clone();
    std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
    Ok(format!("{alias}: rollout deleted"))
}

pub fn empty_file(home: &HomeModel, alias: &str) -> Result<String, String> {
    let path = home.thread(alias)?.path.clone();
    std::fs::write(&path, b"").map_err(|e| io(&path, e))?;
    Ok(format!("{alias}: rollout emptied"))
}

pub fn garble_head(home: &HomeModel, alias: &str) -> Result<String, String> {
    let path = home.thread(alias)?.path.clone();
    let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
    let rest = text.split_once('\n').map(|(_, r)| r).unwrap_or("");
    // Keep every later line: only the head record is lost.
    let garbled = format!("<<garbage head>>\n{rest}");
    std::fs::write(&path, garbled).map_err(|e| io(&path, e))?;
    Ok(format!("{alias}: head garbled"))
}

/// Directory (inside the scenario's home, outside its rollout roots) standing for the home
/// this one was copied from.
pub const ORIGINAL_HOME_DIR: &str = "copied-from";

/// The home was copied, DB and all, from another home: every row names the other home's
/// file (a byte-identical copy under [`ORIGINAL_HOME_DIR`], so its head verifies), and the
/// other home is then damaged (each of its rollouts gets a garbled line appended, as a
/// crashed writer there would leave it). Nothing in this home's own roots changes.
pub fn copied_home(home: &HomeModel) -> Result<String, String> {
    let original = home.codex_home.join(ORIGINAL_HOME_DIR);
    let mut moved = 0;
    for (alias, entry) in &home.threads {
        let rel = entry
            .path
            .strip_prefix(&home.codex_home)
            .map_err(|_| format!("{alias}'s rollout is not under the home"))?;
        let there = original.join(rel);
        std::fs::create_dir_all(there.parent().unwrap_or(&original)).map_err(|e| io(&there, e))?;
        std::fs::copy(&entry.path, &there).map_err(|e| io(&there, e))?;
        super::db::set_row_path(home, alias, &there)?;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&there)
            .map_err(|e| io(&there, e))?;
        file.write_all(b"{\"timestamp\":\"2026-01-2")
            .map_err(|e| io(&there, e))?;
        moved += 1;
    }
    if moved == 0 {
        return Err("copied_home: the home has no threads".into());
    }
    Ok(format!(
        "{moved} rows point into the damaged original home {}",
        home.relative(&original)
    ))
}
