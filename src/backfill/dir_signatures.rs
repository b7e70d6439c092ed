//! The directory walk of the reconcile: which rollout directories changed since their
//! signatures were recorded, and which rollout files the changed ones hold.
//!
//! It owns the cost every listing pays, so it is written for it: a directory is `stat`ed
//! relative to its parent's descriptor (`fstatat` on an `O_PATH` fd: one name resolved, not
//! the whole path from `/`), only directories with sub-directories are opened, paths are
//! built only for the directories actually listed, and "did anything change" is decided
//! during the walk instead of comparing two maps afterwards. It only reads.

use std::ffi::OsStr;
use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rustc_hash::FxHashMap;
use rustix::fs::{openat, statat, AtFlags, FileType, Mode, OFlags, CWD};

use super::dir_watch::DirWatch;
use crate::rollout::layout::{is_rollout_file_name, root_of, Root};

/// Directory signature: `(mtime_ns, ctime_ns)`; `None` when it must be listed next time.
pub type Signature = Option<(i128, i128)>;

/// The recorded directories, keyed relative to the home. A fast non-keyed hash: the keys
/// are the home's own directory names, and every listing hashes each of them twice.
pub type SeenDirs = FxHashMap<String, DirRecord>;

/// A directory as recorded: its parent's key and its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirRecord {
    pub parent: Option<String>,
    pub sig: Signature,
}

/// How the walk treats what it finds.
#[derive(Debug, Clone, Copy)]
pub struct WalkPolicy {
    /// Trust no recorded signature: list every directory.
    pub list_everything: bool,
    /// Collect rollout files of a listed directory whose recorded signature was `None`
    /// (racy). Startup leaves those files to the listing.
    pub files_of_racy_dirs: bool,
    /// Collect no files at all (startup's first run only records signatures).
    pub no_files: bool,
    /// When the walk started (ns since the epoch): a directory changed less than
    /// `racy_window_ns` before it is recorded as untrusted.
    pub started_ns: i128,
    pub racy_window_ns: i128,
}

/// What the walk saw.
#[derive(Debug, Default)]
pub struct Walked {
    /// Every directory found, keyed relative to the home, with its new record.
    pub dirs: Vec<(String, DirRecord)>,
    /// Rollout files of the listed directories.
    pub candidates: Vec<(PathBuf, Root)>,
    pub dirs_checked: usize,
    pub dirs_listed: usize,
    /// The new records differ from the stored ones (a directory added, gone, re-signed or
    /// moved under another parent).
    pub changed: bool,
    /// A directory could not be watched (only when a watch was passed): the watch must not
    /// be trusted.
    pub watch_incomplete: bool,
}

/// One directory still to visit.
struct Pending {
    /// Its parent, open as an `O_PATH` descriptor (the home for a root).
    parent_fd: Rc<OwnedFd>,
    /// Its key relative to the home (`sessions/2026/01/27`).
    key: String,
    parent: Option<String>,
    root: Root,
}

impl Pending {
    /// The last component of the key: the name to resolve under `parent_fd`.
    fn name(&self) -> &OsStr {
        let name = self.key.rsplit('/').next().unwrap_or(&self.key);
        OsStr::from_bytes(name.as_bytes())
    }
}

/// `(mtime, ctime)` in ns.
fn signature_of(st: &rustix::fs::Stat) -> (i128, i128) {
    let ns = |s: i128, n: i128| s * 1_000_000_000 + n;
    (
        ns(i128::from(st.st_mtime), i128::from(st.st_mtime_nsec)),
        ns(i128::from(st.st_ctime), i128::from(st.st_ctime_nsec)),
    )
}

fn open_path(dirfd: impl AsFd, name: &OsStr) -> Option<OwnedFd> {
    openat(
        dirfd,
        name,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()
}

/// Walks both rollout roots of `home` against the `stored` records; with `watch`, every
/// directory is watched before it is `stat`ed.
pub fn walk(
    home: &Path,
    stored: &SeenDirs,
    policy: WalkPolicy,
    mut watch: Option<&mut DirWatch>,
) -> Walked {
    let mut out = Walked::default();
    let Some(home_fd) = open_path(CWD, home.as_os_str()).map(Rc::new) else {
        out.changed = !stored.is_empty();
        return out;
    };
    let mut children: FxHashMap<&str, Vec<&str>> = FxHashMap::default();
    for (dir, rec) in stored {
        if let Some(p) = rec.parent.as_deref() {
            children.entry(p).or_default().push(dir.as_str());
        }
    }
    let mut stack: Vec<Pending> = Root::ALL
        .iter()
        .filter_map(|&root| {
            let key = root.dir(Path::new("")).to_str()?.to_owned();
            Some(Pending {
                parent_fd: Rc::clone(&home_fd),
                key,
                parent: None,
                root,
            })
        })
        .collect();
    let mut matched = 0usize;
    while let Some(dir) = stack.pop() {
        let watched = watch
            .as_deref_mut()
            .map(|w| w.add(&home.join(&dir.key), &dir.key));
        let Ok(st) = statat(&*dir.parent_fd, dir.name(), AtFlags::SYMLINK_NOFOLLOW) else {
            continue;
        };
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            continue;
        }
        out.watch_incomplete |= watched == Some(false);
        out.dirs_checked += 1;
        let sig = signature_of(&st);
        let known = stored.get(&dir.key);
        let unchanged = !policy.list_everything && known.is_some_and(|r| r.sig == Some(sig));
        if unchanged {
            if let Some(kids) = children.get(dir.key.as_str()) {
                if let Some(fd) = open_path(&*dir.parent_fd, dir.name()).map(Rc::new) {
                    stack.extend(kids.iter().map(|kid| Pending {
                        parent_fd: Rc::clone(&fd),
                        key: (*kid).to_owned(),
                        parent: Some(dir.key.clone()),
                        root: dir.root,
                    }));
                }
            }
        } else {
            out.dirs_listed += 1;
            let take_files = !policy.no_files
                && (policy.files_of_racy_dirs || known.is_none_or(|r| r.sig.is_some()));
            list_dir(home, &dir, take_files, &mut stack, &mut out.candidates);
        }
        let record = DirRecord {
            parent: dir.parent,
            sig: trusted(sig, policy),
        };
        if known == Some(&record) {
            matched += 1;
        } else {
            out.changed = true;
        }
        out.dirs.push((dir.key, record));
    }
    out.changed |= matched != stored.len();
    out
}

/// `sig` if its last change is older than the racy window, else `None` (list it again).
fn trusted(sig: (i128, i128), policy: WalkPolicy) -> Signature {
    let racy = policy.started_ns - sig.0 < policy.racy_window_ns
        || policy.started_ns - sig.1 < policy.racy_window_ns;
    (!racy).then_some(sig)
}

/// Lists again only the `dirty` directories (and any directory under them not in `seen`,
/// watched before it is listed), for a listing whose `watch` vouches for every other one.
/// `None` when a dirty directory is gone: the caller walks everything instead.
pub fn relist(
    home: &Path,
    seen: &SeenDirs,
    dirty: Vec<String>,
    watch: &mut DirWatch,
    policy: WalkPolicy,
) -> Option<Walked> {
    let mut out = Walked::default();
    let mut queue: Vec<(String, Option<String>, bool)> = dirty
        .into_iter()
        .map(|key| {
            let parent = seen.get(&key).and_then(|r| r.parent.clone());
            (key, parent, false)
        })
        .collect();
    while let Some((key, parent, is_new)) = queue.pop() {
        let path = home.join(&key);
        let root = root_of(home, &path)?;
        if is_new && !watch.add(&path, &key) {
            out.watch_incomplete = true;
        }
        let st = statat(CWD, &path, AtFlags::SYMLINK_NOFOLLOW).ok()?;
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            return None;
        }
        out.dirs_checked += 1;
        out.dirs_listed += 1;
        for entry in fs::read_dir(&path).ok()?.flatten() {
            let (Ok(kind), Some(name)) = (
                entry.file_type(),
                entry.file_name().to_str().map(str::to_owned),
            ) else {
                continue;
            };
            if kind.is_dir() {
                let child = format!("{key}/{name}");
                if !seen.contains_key(&child) {
                    queue.push((child, Some(key.clone()), true));
                }
            } else if kind.is_file() && is_rollout_file_name(&name) {
                out.candidates.push((path.join(&name), root));
            }
        }
        let record = DirRecord {
            parent,
            sig: trusted(signature_of(&st), policy),
        };
        out.changed |= seen.get(&key) != Some(&record);
        out.dirs.push((key, record));
    }
    Some(out)
}

/// Reads one directory: sub-directories go on the stack, rollout files (when `take_files`)
/// into `candidates`.
fn list_dir(
    home: &Path,
    dir: &Pending,
    take_files: bool,
    stack: &mut Vec<Pending>,
    candidates: &mut Vec<(PathBuf, Root)>,
) {
    let path = home.join(&dir.key);
    let Ok(entries) = fs::read_dir(&path) else {
        return;
    };
    let fd = open_path(&*dir.parent_fd, dir.name()).map(Rc::new);
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let name = entry.file_name();
        if kind.is_dir() {
            let (Some(fd), Some(name)) = (&fd, name.to_str()) else {
                continue;
            };
            stack.push(Pending {
                parent_fd: Rc::clone(fd),
                key: format!("{}/{name}", dir.key),
                parent: Some(dir.key.clone()),
                root: dir.root,
            });
        } else if take_files && kind.is_file() && name.to_str().is_some_and(is_rollout_file_name) {
            candidates.push((path.join(&name), dir.root));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> WalkPolicy {
        WalkPolicy {
            list_everything: true,
            files_of_racy_dirs: true,
            no_files: false,
            started_ns: 0,
            racy_window_ns: 0,
        }
    }

    /// A directory the kernel will not watch under its key (here: already watched under
    /// another, which the watch refuses as it would a bind mount) makes the walk's watch
    /// incomplete, however many others were watched; with every one watched it is complete.
    /// Catches a walk that forgets a refused watch and lets the listing trust it.
    #[test]
    fn a_refused_watch_leaves_the_walk_unwatched() {
        let home = tempfile::tempdir().unwrap();
        let day = home.path().join("sessions/2026/01/27");
        fs::create_dir_all(&day).unwrap();
        fs::create_dir_all(home.path().join("sessions/2026/01/28")).unwrap();
        let roots = || Root::ALL.iter().map(|r| r.subdir().to_owned()).collect();

        let mut watch = DirWatch::new(home.path(), roots()).unwrap();
        let walked = walk(
            home.path(),
            &SeenDirs::default(),
            policy(),
            Some(&mut watch),
        );
        assert!(!walked.watch_incomplete);
        assert_eq!(walked.dirs_checked, 5);

        let mut watch = DirWatch::new(home.path(), roots()).unwrap();
        assert!(watch.add(&day, "sessions/elsewhere"));
        let walked = walk(
            home.path(),
            &SeenDirs::default(),
            policy(),
            Some(&mut watch),
        );
        assert!(
            walked.watch_incomplete,
            "the refused day directory was trusted"
        );
    }
}
