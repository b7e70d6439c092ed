//! What a process remembers of its home's rollout directories between two listings: an
//! inotify watch on every directory the last full walk visited, and the records that walk
//! left. With it, a listing `stat`s nothing it has no reason to: only directories the kernel
//! reported a change in, and those still inside the racy window, are listed again.
//!
//! A handle's first listing walks without it; the second walks and arms it (see
//! [`Unwatched`]). The watch is only ever a shortcut to the same answer as the full walk. Anything it cannot
//! account for exactly (a lost event queue, a watched directory moved or removed, the
//! home's own roots created or removed, a failed read) makes the caller forget it and walk
//! everything again, re-arming a fresh watch. Watches are added before a directory is
//! `stat`ed and listed, so a change made after its listing always raises an event.

use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustc_hash::{FxHashMap, FxHashSet};
use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use rustix::io::Errno;

use super::dir_signatures::SeenDirs;

/// Changes that make a directory worth listing again: an entry added, removed or renamed,
/// its own permissions. Writes inside files are not (a rollout grows without its
/// directory changing; the racy window covers a head written after its file appeared).
fn dir_mask() -> WatchFlags {
    WatchFlags::CREATE
        | WatchFlags::DELETE
        | WatchFlags::MOVED_FROM
        | WatchFlags::MOVED_TO
        | WatchFlags::ATTRIB
        | WatchFlags::DELETE_SELF
        | WatchFlags::MOVE_SELF
        | WatchFlags::ONLYDIR
        | WatchFlags::DONT_FOLLOW
}

/// The key the home itself is watched under: only its rollout roots matter there.
const HOME_KEY: &str = "";

/// An inotify instance watching directories of one home, each under its key (its path
/// relative to the home, as in the reconcile's records).
#[derive(Debug)]
pub struct DirWatch {
    fd: OwnedFd,
    key_of: FxHashMap<i32, String>,
    /// Names under the home whose creation or removal matters (the rollout roots).
    root_names: Vec<String>,
}

/// What happened since the last drain.
#[derive(Debug, PartialEq, Eq)]
pub enum Drained {
    /// These directories changed (possibly none).
    Changed(FxHashSet<String>),
    /// The watch can no longer say what changed: walk everything.
    Lost(&'static str),
}

impl DirWatch {
    /// A new watch on `home` itself (for its rollout roots `root_names`), or `None` when
    /// the kernel refuses one (inotify unavailable, instance limit).
    pub fn new(home: &Path, root_names: Vec<String>) -> Option<Self> {
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK).ok()?;
        let mut watch = DirWatch {
            fd,
            key_of: FxHashMap::default(),
            root_names,
        };
        let mask = WatchFlags::CREATE
            | WatchFlags::DELETE
            | WatchFlags::MOVED_FROM
            | WatchFlags::MOVED_TO
            | WatchFlags::DELETE_SELF
            | WatchFlags::MOVE_SELF
            | WatchFlags::ONLYDIR;
        let wd = inotify::add_watch(&watch.fd, home, mask).ok()?;
        watch.key_of.insert(wd, HOME_KEY.to_owned());
        Some(watch)
    }

    /// Watches the directory at `path` under `key`; `false` when the kernel refused (the
    /// per-user watch limit, the directory gone): the caller must not rely on this watch.
    pub fn add(&mut self, path: &Path, key: &str) -> bool {
        match inotify::add_watch(&self.fd, path, dir_mask()) {
            Ok(wd) => {
                // The same directory under two keys (a bind mount, a hard-linked dir) would
                // share one descriptor: keep the first key and refuse the ambiguity.
                match self.key_of.get(&wd) {
                    Some(existing) if existing != key => false,
                    _ => {
                        self.key_of.insert(wd, key.to_owned());
                        true
                    }
                }
            }
            Err(_) => false,
        }
    }

    /// Reads every queued event without blocking.
    pub fn drain(&mut self) -> Drained {
        let mut changed = FxHashSet::default();
        let mut buf = [MaybeUninit::<u8>::uninit(); 8192];
        let mut reader = inotify::Reader::new(&self.fd, &mut buf);
        loop {
            let event = match reader.next() {
                Ok(event) => event,
                Err(Errno::AGAIN) => return Drained::Changed(changed),
                Err(Errno::INTR) => continue,
                Err(_) => return Drained::Lost("the watch could not be read"),
            };
            let flags = event.events();
            if flags.contains(ReadFlags::QUEUE_OVERFLOW) {
                return Drained::Lost("the kernel's event queue overflowed");
            }
            if flags.intersects(ReadFlags::DELETE_SELF | ReadFlags::MOVE_SELF | ReadFlags::IGNORED)
            {
                return Drained::Lost("a watched directory was moved or removed");
            }
            let Some(key) = self.key_of.get(&event.wd()) else {
                continue;
            };
            if key == HOME_KEY {
                let name = event.file_name().and_then(|n| n.to_str().ok());
                if name.is_some_and(|n| self.root_names.iter().any(|r| r == n)) {
                    return Drained::Lost("a rollout root was created or removed");
                }
                continue;
            }
            changed.insert(key.clone());
        }
    }
}

/// The listing reconcile's memory in a process that has no watch (yet): watching costs a
/// few µs per directory on top of the walk, which a process that lists once (a CLI call)
/// should not pay, so the watch is armed by a handle's second listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unwatched {
    /// The kernel refused a watch (the per-user limit): walk every time, never try again.
    pub refused: bool,
}

/// The listing reconcile's memory in one process: the watch and what the last walk left.
#[derive(Debug)]
pub struct ListingMemo {
    pub watch: DirWatch,
    /// The records as of the last reconcile (what the DB's bookkeeping table holds).
    pub seen: SeenDirs,
    /// Directories recorded without a trusted signature: listed again every time until
    /// their last change is older than the racy window.
    pub untrusted: FxHashSet<String>,
    /// `threads` rows when the memo was last brought up to date.
    pub rows_seen: i64,
    /// `PRAGMA data_version` of the handle's connection then: unchanged means no other
    /// connection committed since, so no row can have vanished.
    pub data_version: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn changed(keys: &[&str]) -> Drained {
        Drained::Changed(keys.iter().map(|k| (*k).to_owned()).collect())
    }

    #[test]
    fn reports_the_directory_an_entry_appeared_in_and_nothing_when_quiet() {
        let home = tempfile::tempdir().unwrap();
        let day = home.path().join("sessions/2026/01/27");
        fs::create_dir_all(&day).unwrap();
        let mut watch = DirWatch::new(home.path(), vec!["sessions".into()]).unwrap();
        assert!(watch.add(&day, "sessions/2026/01/27"));
        assert!(watch.add(&home.path().join("sessions/2026"), "sessions/2026"));
        assert_eq!(watch.drain(), changed(&[]));
        fs::write(day.join("rollout-x.jsonl"), b"{}\n").unwrap();
        assert_eq!(watch.drain(), changed(&["sessions/2026/01/27"]));
        // Writing inside a file is not a directory change.
        fs::write(day.join("rollout-x.jsonl"), b"{}\n{}\n").unwrap();
        assert_eq!(watch.drain(), changed(&[]));
        fs::create_dir(home.path().join("sessions/2026/02")).unwrap();
        assert_eq!(watch.drain(), changed(&["sessions/2026"]));
    }

    /// One directory under two keys (a bind mount) would credit its changes to one key
    /// only: the second is refused, and the caller does not trust the watch.
    #[test]
    fn one_directory_under_two_keys_is_refused() {
        let home = tempfile::tempdir().unwrap();
        let day = home.path().join("sessions/2026/01/27");
        fs::create_dir_all(&day).unwrap();
        let mut watch = DirWatch::new(home.path(), vec!["sessions".into()]).unwrap();
        assert!(watch.add(&day, "sessions/2026/01/27"));
        assert!(
            watch.add(&day, "sessions/2026/01/27"),
            "the same key again is fine"
        );
        assert!(!watch.add(&day, "sessions/2026/01/28"));
    }

    #[test]
    fn a_removed_directory_or_a_new_root_loses_the_watch() {
        let home = tempfile::tempdir().unwrap();
        let day = home.path().join("sessions/2026/01/27");
        fs::create_dir_all(&day).unwrap();
        let mut watch = DirWatch::new(home.path(), vec!["archived_sessions".into()]).unwrap();
        assert!(watch.add(&day, "sessions/2026/01/27"));
        fs::create_dir(home.path().join("unrelated")).unwrap();
        assert_eq!(watch.drain(), changed(&[]));
        fs::create_dir(home.path().join("archived_sessions")).unwrap();
        assert!(matches!(watch.drain(), Drained::Lost(_)));
        fs::remove_dir(&day).unwrap();
        assert!(matches!(watch.drain(), Drained::Lost(_)));
    }
}
