//! The watches of the clippings roots: one non-recursive inotify watch per folder, set up by
//! ourselves, and the thread that reads their events and turns them into notify events for the
//! coalescing step.
//!
//! notify's recursive watch finds the folders to watch by a stat of every entry below a root,
//! which at a million files costs seconds at every start. Here a folder's subfolders are taken
//! from its listing's file types, and a folder that the file system says has none (a link count
//! of 2 on ext4, XFS or tmpfs, which count each subfolder's `..`) is not listed at all. A folder
//! is always watched before it is looked into, so a folder created meanwhile is seen either by
//! the look or by an event. New folders (created, or moved in) are watched, with everything
//! below them, before their event is passed on: the writer walks a new folder when it hears of
//! it, after the watch, so files written into it at once are found by that walk or by their own
//! events. A folder moved away loses its watches (their paths would be wrong), and one moved in
//! gets new ones. A folder the system would not let us watch or list (`EACCES`) is watched once
//! its mode changes (`IN_ATTRIB`, reported by its parent's watch), with what is below it. An
//! event queue overflow is passed on as a rescan.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask, Watches};
use notify::event::{
    AccessKind, AccessMode, CreateKind, DataChange, Flag, MetadataKind, ModifyKind, RemoveKind, RenameMode,
};
use notify::{Event, EventKind};
use tracing::warn;

use super::Msg;

/// Why a root could not be watched whole.
#[derive(Debug)]
pub(super) enum Refused {
    /// The system's limit on inotify watches is reached.
    Limit,
    Other(std::io::Error),
}

/// The folders watched, both ways, and the handle that adds and removes watches.
struct Folders {
    watches: Watches,
    by_wd: HashMap<WatchDescriptor, PathBuf>,
    by_path: BTreeMap<PathBuf, WatchDescriptor>,
    /// The roots watched (each with everything below it).
    roots: Vec<PathBuf>,
    /// Folders the system would not let us watch or list (`EACCES` and the like): the only ones
    /// a change of mode is looked at for, each warned about once until it is watched.
    refused: BTreeSet<PathBuf>,
}

/// Every kind of change a folder's watch reports.
fn mask() -> WatchMask {
    WatchMask::ATTRIB
        | WatchMask::CREATE
        | WatchMask::DELETE
        | WatchMask::CLOSE_WRITE
        | WatchMask::MODIFY
        | WatchMask::MOVED_FROM
        | WatchMask::MOVED_TO
        | WatchMask::DELETE_SELF
        | WatchMask::MOVE_SELF
        | WatchMask::ONLYDIR
}

impl Folders {
    fn new(watches: Watches) -> Folders {
        Folders {
            watches,
            by_wd: HashMap::new(),
            by_path: BTreeMap::new(),
            roots: Vec::new(),
            refused: BTreeSet::new(),
        }
    }

    /// Watches `top` and every folder below it (dot-folders and symlinked folders left out).
    /// `top` itself is followed when it is a symlink (a root may be one); nothing below it is.
    /// A folder below `top` that vanishes meanwhile is skipped; `top` itself must be watched.
    fn add_tree(&mut self, top: &Path, follow_top: bool) -> Result<(), Refused> {
        let mut stack = vec![top.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let is_top = dir == top;
            let mask = if is_top && follow_top { mask() } else { mask() | WatchMask::DONT_FOLLOW };
            match self.watches.add(&dir, mask) {
                Ok(wd) => {
                    if let Some(old) = self.by_wd.insert(wd.clone(), dir.clone())
                        && self.by_path.get(&old) == Some(&wd)
                    {
                        self.by_path.remove(&old);
                    }
                    self.by_path.insert(dir.clone(), wd);
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => return Err(Refused::Limit),
                Err(e) if is_top => return Err(Refused::Other(e)),
                Err(e) => {
                    if !matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR))
                        && self.refused.insert(dir.clone())
                    {
                        warn!(folder = %dir.display(), "cannot watch: {e}");
                    }
                    continue;
                }
            }
            match subfolders(&dir, is_top && follow_top) {
                Ok(subs) => {
                    self.refused.remove(&dir);
                    stack.extend(subs);
                }
                Err(e) => {
                    if !matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR))
                        && self.refused.insert(dir.clone())
                    {
                        warn!(folder = %dir.display(), "cannot list: {e}");
                    }
                }
            }
        }
        Ok(())
    }

    /// A folder's mode or owner changed (`IN_ATTRIB`): one the system would not let us watch or
    /// list (`EACCES`) may be readable now. A folder not watched is watched with everything below
    /// it; a watched one has those of its subfolders that are not watched looked at (one
    /// listing: a folder that could be watched but not searched, now searchable), but only when
    /// it or one of its subfolders was refused: a `touch` or a backup tool's times on a folder
    /// watched whole cost nothing. Still refused: nothing changes until its next change of mode.
    fn permissions_changed(&mut self, dir: &Path) -> Result<(), Refused> {
        if !self.by_path.contains_key(dir) {
            return self.add_tree(dir, false);
        }
        let refused_here = self
            .refused
            .range(dir.to_path_buf()..)
            .take_while(|p| p.starts_with(dir))
            .any(|p| p == dir || p.parent() == Some(dir));
        if !refused_here {
            return Ok(());
        }
        let Ok(subs) = subfolders(dir, false) else { return Ok(()) };
        self.refused.remove(dir);
        for sub in subs {
            if !self.by_path.contains_key(&sub) {
                match self.add_tree(&sub, false) {
                    Err(Refused::Limit) => return Err(Refused::Limit),
                    Ok(()) | Err(Refused::Other(_)) => {}
                }
            }
        }
        Ok(())
    }

    /// Drops the watches of `top` and of every folder below it.
    fn remove_tree(&mut self, top: &Path) {
        let refused: Vec<PathBuf> =
            self.refused.range(top.to_path_buf()..).take_while(|p| p.starts_with(top)).cloned().collect();
        for path in refused {
            self.refused.remove(&path);
        }
        let below: Vec<PathBuf> = self
            .by_path
            .range(top.to_path_buf()..)
            .take_while(|(p, _)| p.starts_with(top))
            .map(|(p, _)| p.clone())
            .collect();
        for path in below {
            if let Some(wd) = self.by_path.remove(&path) {
                self.by_wd.remove(&wd);
                let _ = self.watches.remove(wd);
            }
        }
    }

    /// After lost events: every root's watches set up afresh, since folders may have come (not
    /// watched yet) or moved (watched under their old path) unseen. Whether the limit on
    /// watches was reached.
    fn rewatch(&mut self) -> bool {
        let mut limit = false;
        for root in self.roots.clone() {
            self.remove_tree(&root);
            if let Err(e) = self.add_tree(&root, true) {
                limit |= matches!(e, Refused::Limit);
                // A root that is gone is the roots' check's to handle.
                self.roots.retain(|r| *r != root);
            }
        }
        limit
    }

    /// The system dropped a watch (its folder was deleted, or unmounted).
    fn forget(&mut self, wd: &WatchDescriptor) {
        if let Some(path) = self.by_wd.remove(wd)
            && self.by_path.get(&path) == Some(wd)
        {
            self.by_path.remove(&path);
        }
    }
}

/// File systems whose folders' link count is 2 + their number of subfolders.
const COUNTS_SUBFOLDERS: [i64; 3] =
    [0xEF53 /* ext2/3/4 */, 0x5846_5342 /* XFS */, 0x0102_1994 /* tmpfs */];

/// Whether the file system says `dir` has no subfolder, without listing it.
fn has_no_subfolder(dir: &Path, follow: bool) -> bool {
    let meta = if follow { std::fs::metadata(dir) } else { std::fs::symlink_metadata(dir) };
    if meta.map_or(true, |m| m.nlink() != 2) {
        return false;
    }
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else { return false };
    let mut fs = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `c` is NUL-terminated and `fs` is written by the call before it is read (only
    // when the call succeeds).
    unsafe {
        if libc::statfs(c.as_ptr(), fs.as_mut_ptr()) != 0 {
            return false;
        }
        // The field's type differs between targets.
        #[allow(clippy::unnecessary_cast)]
        let kind = fs.assume_init().f_type as i64;
        COUNTS_SUBFOLDERS.contains(&kind)
    }
}

/// The subfolders of `dir` to watch, from its listing's file types (no stat per entry where the
/// file system gives the type): not symlinks to folders. Dot-folders are watched too, as
/// notify's recursive watch did: no clipping lives in one, but a symlinked clipping's target
/// may, and an edit there must reach the link (`ingest/sync`'s `links_to`).
fn subfolders(dir: &Path, follow: bool) -> std::io::Result<Vec<PathBuf>> {
    if has_no_subfolder(dir, follow) {
        return Ok(Vec::new());
    }
    #[cfg(test)]
    tests::LISTINGS.with(|n| n.set(n.get() + 1));
    let listing = std::fs::read_dir(dir)?;
    Ok(listing.filter_map(Result::ok).filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()).collect())
}

/// The watches of every root's folders; dropping it ends the reading thread (within a poll
/// period), which closes the inotify instance and with it every watch.
pub(super) struct Tree {
    folders: Arc<Mutex<Folders>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Tree {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Tree {
    /// How long the reading thread waits for events before it looks at `stop`.
    const POLL: Duration = Duration::from_millis(500);

    /// Starts the inotify instance and its reading thread, which sends events to `tx`.
    pub(super) fn start(tx: Sender<Msg>) -> std::io::Result<Tree> {
        let inotify = Inotify::init()?;
        let folders = Arc::new(Mutex::new(Folders::new(inotify.watches())));
        let stop = Arc::new(AtomicBool::new(false));
        let tree = Tree { folders: folders.clone(), stop: stop.clone() };
        std::thread::Builder::new()
            .name("clipfeed-inotify".into())
            .spawn(move || read(inotify, &folders, &stop, &tx))?;
        Ok(tree)
    }

    /// Watches a root and every folder below it. On an error, whatever was watched of it is
    /// dropped again.
    pub(super) fn watch_root(&self, root: &Path) -> Result<(), Refused> {
        let mut folders = self.folders.lock().expect("watch lock");
        let done = folders.add_tree(root, true);
        if done.is_err() {
            folders.remove_tree(root);
        } else if !folders.roots.iter().any(|r| r == root) {
            folders.roots.push(root.to_path_buf());
        }
        done
    }

    /// Whether the root's own folder is watched now: the system drops that watch when the
    /// folder is deleted, even if a new folder then takes the same inode number.
    pub(super) fn is_watched(&self, root: &Path) -> bool {
        self.folders.lock().expect("watch lock").by_path.contains_key(root)
    }

    /// Drops the watches of a root and every folder below it.
    pub(super) fn unwatch_root(&self, root: &Path) {
        let mut folders = self.folders.lock().expect("watch lock");
        folders.remove_tree(root);
        folders.roots.retain(|r| r != root);
    }
}

/// The reading thread: reads events until `stop`, keeps the watches in step with the folders
/// that come and go, and sends each event on as a notify event.
fn read(mut inotify: Inotify, folders: &Mutex<Folders>, stop: &AtomicBool, tx: &Sender<Msg>) {
    use std::os::fd::AsRawFd;
    let mut buffer = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::Relaxed) {
        let mut fd = libc::pollfd { fd: inotify.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd, owned by this frame, for the duration of the call.
        if unsafe { libc::poll(&mut fd, 1, Tree::POLL.as_millis() as libc::c_int) } <= 0 {
            continue;
        }
        let Ok(events) = inotify.read_events(&mut buffer) else { continue };
        let mut out = Vec::new();
        {
            let mut folders = folders.lock().expect("watch lock");
            for event in events {
                translate(&mut folders, &event, &mut out);
            }
        }
        for msg in out {
            if tx.send(msg).is_err() {
                return;
            }
        }
    }
}

/// One inotify event as what the coalescing step reads (none, or one message), with the
/// watches brought in step first when a folder came or went.
fn translate(folders: &mut Folders, event: &inotify::Event<&std::ffi::OsStr>, out: &mut Vec<Msg>) {
    let m = event.mask;
    if m.contains(EventMask::Q_OVERFLOW) {
        // The watches first, so that the rescan the overflow asks for comes after them.
        if folders.rewatch() {
            out.push(Msg::Event(Err(notify::Error::new(notify::ErrorKind::MaxFilesWatch))));
        }
        out.push(Msg::Event(Ok(Event::new(EventKind::Other).set_flag(Flag::Rescan))));
        return;
    }
    if m.contains(EventMask::IGNORED) {
        folders.forget(&event.wd);
        return;
    }
    let Some(dir) = folders.by_wd.get(&event.wd) else { return };
    let path = event.name.map_or_else(|| dir.clone(), |name| dir.join(name));
    let folder = m.contains(EventMask::ISDIR);
    if folder && m.intersects(EventMask::CREATE | EventMask::MOVED_TO) {
        match folders.add_tree(&path, false) {
            Ok(()) => {}
            Err(Refused::Limit) => out.push(Msg::Event(Err(notify::Error::new(notify::ErrorKind::MaxFilesWatch)))),
            // Gone again already: its event tells the writer so.
            Err(Refused::Other(_)) => {}
        }
    }
    if folder
        && m.contains(EventMask::ATTRIB)
        && folders.permissions_changed(&path).is_err_and(|e| matches!(e, Refused::Limit))
    {
        out.push(Msg::Event(Err(notify::Error::new(notify::ErrorKind::MaxFilesWatch))));
    }
    if folder && m.contains(EventMask::MOVED_FROM) {
        folders.remove_tree(&path);
    }
    let kind = if m.contains(EventMask::CLOSE_WRITE) {
        EventKind::Access(AccessKind::Close(AccessMode::Write))
    } else if m.contains(EventMask::CREATE) {
        EventKind::Create(if folder { CreateKind::Folder } else { CreateKind::File })
    } else if m.contains(EventMask::MODIFY) {
        EventKind::Modify(ModifyKind::Data(DataChange::Any))
    } else if m.contains(EventMask::ATTRIB) {
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any))
    } else if m.contains(EventMask::MOVED_FROM) {
        EventKind::Modify(ModifyKind::Name(RenameMode::From))
    } else if m.contains(EventMask::MOVED_TO) {
        EventKind::Modify(ModifyKind::Name(RenameMode::To))
    } else if m.contains(EventMask::DELETE) {
        EventKind::Remove(if folder { RemoveKind::Folder } else { RemoveKind::File })
    } else if m.intersects(EventMask::DELETE_SELF | EventMask::MOVE_SELF | EventMask::UNMOUNT) {
        // A folder went: its parent's watch says so too (or, for a root, its parent's watch);
        // one more look at the path costs nothing.
        EventKind::Any
    } else {
        return;
    };
    out.push(Msg::Event(Ok(Event::new(kind).add_path(path))));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    thread_local! {
        /// Folders listed by this thread (`subfolders`), for the tests that count them.
        pub(super) static LISTINGS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    #[test]
    fn a_change_of_mode_lists_a_folder_again_only_where_something_was_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        for d in ["a/b", "a/c", "d"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let inotify = Inotify::init().unwrap();
        let mut folders = Folders::new(inotify.watches());
        folders.add_tree(&root, true).unwrap();
        assert_eq!(folders.by_path.len(), 5);
        // A thousand touches of watched folders (a backup tool's times): no listing at all.
        LISTINGS.with(|n| n.set(0));
        for _ in 0..500 {
            folders.permissions_changed(&root).unwrap();
            folders.permissions_changed(&root.join("a")).unwrap();
        }
        assert_eq!(LISTINGS.with(std::cell::Cell::get), 0);
        // A subfolder the system refused (as EACCES would have it; root reads everything):
        // the parent's change of mode lists the parent once and watches it.
        std::fs::create_dir_all(root.join("a/e/f")).unwrap();
        folders.refused.insert(root.join("a/e"));
        folders.permissions_changed(&root.join("a")).unwrap();
        assert!(folders.by_path.contains_key(&root.join("a/e")) && folders.by_path.contains_key(&root.join("a/e/f")));
        assert!(folders.refused.is_empty());
        let listed = LISTINGS.with(std::cell::Cell::get);
        assert!((1..=3).contains(&listed), "a, then e (f has no subfolder: listed or not) — {listed}");
        folders.permissions_changed(&root.join("a")).unwrap();
        assert_eq!(LISTINGS.with(std::cell::Cell::get), listed, "nothing refused any more");
        // Refusals below a folder moved away go with it.
        folders.refused.insert(root.join("d/x"));
        folders.remove_tree(&root.join("d"));
        assert!(folders.refused.is_empty());
    }

    /// Collects the paths of events until `want` is among them (or panics after a while).
    fn wait_for(rx: &mpsc::Receiver<Msg>, want: &Path) -> Vec<PathBuf> {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        while !seen.iter().any(|p: &PathBuf| p == want) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(Msg::Event(Ok(e))) => seen.extend(e.paths),
                Ok(_) => {}
                Err(_) => panic!("no event for {} among {seen:?}", want.display()),
            }
        }
        seen
    }

    #[test]
    fn new_folders_are_watched_and_moved_folders_watched_where_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::create_dir_all(root.join(".hidden")).unwrap();
        let (tx, rx) = mpsc::channel();
        let tree = Tree::start(tx).unwrap();
        tree.watch_root(&root).unwrap();
        let watched = |p: &str| tree.folders.lock().unwrap().by_path.contains_key(&root.join(p));
        // Dot-folders too: no clipping lives in one, but a symlinked clipping's target may.
        assert!(watched("") && watched("a") && watched("a/b") && watched(".hidden"));
        // Files in a folder that existed at the start, and in a nested folder made now.
        std::fs::write(root.join("a/b/x.md"), "x").unwrap();
        wait_for(&rx, &root.join("a/b/x.md"));
        std::fs::create_dir_all(root.join("n/m")).unwrap();
        wait_for(&rx, &root.join("n"));
        // `m` may be made after `n` was listed: then its own event, read after `n`'s was passed
        // on, watches it (the daemon's walk of `n` covers that moment; this test has no walk).
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !watched("n/m") {
            assert!(std::time::Instant::now() < deadline, "n/m is never watched");
            std::thread::sleep(Duration::from_millis(5)); // poll interval of a deadline loop
        }
        std::fs::write(root.join("n/m/y.md"), "y").unwrap();
        wait_for(&rx, &root.join("n/m/y.md"));
        // A folder renamed: its files are reported under the new name, never the old.
        std::fs::rename(root.join("a"), root.join("c")).unwrap();
        wait_for(&rx, &root.join("c"));
        std::fs::write(root.join("c/b/z.md"), "z").unwrap();
        let seen = wait_for(&rx, &root.join("c/b/z.md"));
        assert!(!seen.iter().any(|p| p.starts_with(root.join("a"))), "{seen:?}");
        assert!(!watched("a") && !watched("a/b") && watched("c/b"));
        // A folder moved out is no longer watched.
        std::fs::rename(root.join("c"), dir.path().join("out")).unwrap();
        wait_for(&rx, &root.join("c"));
        assert!(!watched("c") && !watched("c/b"));
        tree.unwatch_root(&root);
        assert!(tree.folders.lock().unwrap().by_path.is_empty());
    }

    #[test]
    fn a_deleted_root_is_no_longer_watched() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("a")).unwrap();
        let (tx, rx) = mpsc::channel();
        let tree = Tree::start(tx).unwrap();
        tree.watch_root(&root).unwrap();
        assert!(tree.is_watched(&root));
        std::fs::remove_dir_all(&root).unwrap();
        wait_for(&rx, &root.join("a"));
        // The kernel's IN_IGNORED for the root comes after its children's events.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while tree.is_watched(&root) {
            assert!(std::time::Instant::now() < deadline, "the root's watch is still held");
            std::thread::sleep(Duration::from_millis(5)); // poll interval of a deadline loop
        }
        // A new folder at the path (which may reuse the inode number) is not watched until
        // the roots' check watches it again.
        std::fs::create_dir_all(&root).unwrap();
        assert!(!tree.is_watched(&root));
        tree.watch_root(&root).unwrap();
        assert!(tree.is_watched(&root));
    }

    #[test]
    fn after_lost_events_the_watches_are_set_up_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        let inotify = Inotify::init().unwrap();
        let mut folders = Folders::new(inotify.watches());
        folders.add_tree(&root, true).unwrap();
        folders.roots.push(root.clone());
        // Changes no event was read for (no thread reads this instance): a folder made, one renamed.
        std::fs::create_dir_all(root.join("new/deep")).unwrap();
        std::fs::rename(root.join("a"), root.join("c")).unwrap();
        assert!(!folders.rewatch());
        let watched: Vec<PathBuf> =
            folders.by_path.keys().map(|p| p.strip_prefix(&root).unwrap().to_path_buf()).collect();
        let want: Vec<PathBuf> = ["", "c", "c/b", "new", "new/deep"].iter().map(PathBuf::from).collect();
        assert_eq!(watched, want);
        assert_eq!(folders.by_wd.len(), want.len());
    }
}
