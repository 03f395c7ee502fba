//! The file watcher: an inotify watch on every folder of every root ([`tree`]: our own, one per
//! folder, not notify's recursive watch), and a coalescing step that turns their fine-grained
//! events into writer jobs: "these paths changed" or "rescan".
//!
//! Events are carried as notify's event type; their kinds are collapsed by one pure function, [`classify`], into three signals.
//! Paths that were written to are held until the writer closes them (`IN_CLOSE_WRITE`) or a
//! settle time passes, so a file being written is not read half-way. Everything else (renames,
//! deletions, new folders, attribute changes) is passed on after a few quiet milliseconds, but a
//! file moved in whole while nothing else is gathered goes at once (see [`moved_in`]). The
//! writer re-reads what it is told about and decides from the file system, not from event kinds,
//! what happened, so a lost or odd event costs at most a rescan.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RenameMode};
use tracing::{error, info, warn};

use crate::config::WatchMode;
use crate::job::Job;
use crate::systemd::{Heartbeat, beat_every};

mod tree;

/// How long the event stream must be quiet before a batch of ready paths is handed on.
const QUIET: Duration = Duration::from_millis(3);
/// A batch is handed on after this long even if events keep coming.
const MAX_BATCH: Duration = Duration::from_millis(100);
/// A file that was created but not (yet) written is read after this long without events. Covers
/// hard links and writers that never close.
const SETTLE_CREATED: Duration = Duration::from_millis(200);
/// A file that is being written is read after this long without events if no close arrives.
const SETTLE_WRITING: Duration = Duration::from_millis(2000);

/// What an event means for the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// Look at this path now.
    Ready(PathBuf),
    /// This path is being created or written; look once it settles.
    Created(PathBuf),
    Writing(PathBuf),
    /// Events were lost; compare everything.
    Rescan,
}

/// Collapses one notify event into signals. Reads and opens are dropped.
pub(crate) fn classify(event: &notify::Event) -> Vec<Signal> {
    if event.need_rescan() {
        return vec![Signal::Rescan];
    }
    let each = |f: fn(PathBuf) -> Signal| event.paths.iter().cloned().map(f).collect();
    match &event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => each(Signal::Ready),
        EventKind::Access(_) => Vec::new(),
        EventKind::Create(CreateKind::Folder) => each(Signal::Ready),
        EventKind::Create(_) => each(Signal::Created),
        EventKind::Modify(ModifyKind::Data(_)) => each(Signal::Writing),
        EventKind::Modify(_) | EventKind::Remove(_) | EventKind::Any | EventKind::Other => each(Signal::Ready),
    }
}

/// What the coalescing thread receives: events (in notify's type), or the order to stop.
enum Msg {
    Event(notify::Result<notify::Event>),
    Stop,
}

/// Keeps the watches and the coalescing thread alive; dropping it stops both.
pub struct Watcher {
    tx: Sender<Msg>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts watching `roots` recursively; jobs go to `jobs`. A root that is missing, or that is
/// deleted or replaced later, is watched again as soon as it (re)appears, and a rescan follows.
pub(crate) fn spawn(
    roots: &[PathBuf],
    mode: WatchMode,
    poll_interval: Duration,
    jobs: Sender<Job>,
    heartbeat: Heartbeat,
) -> Result<Watcher> {
    let (tx, rx) = mpsc::channel::<Msg>();
    let watcher = tree::Tree::start(tx.clone()).context("cannot start the file watcher")?;
    let parents = Parents::start(tx.clone()).context("cannot start the file watcher")?;
    let mut roots = Roots {
        watcher,
        parents,
        mode,
        poll_interval,
        next_poll: Instant::now() + poll_interval,
        roots: roots
            .iter()
            .map(|p| RootState {
                path: p.clone(),
                identity: None,
                parent_watched: false,
                polled: false,
                complaint: None,
            })
            .collect(),
    };
    roots.check();
    let thread = std::thread::Builder::new()
        .name("clipfeed-watch".into())
        .spawn(move || coalesce(rx, jobs, Some(roots), Some(heartbeat)))
        .context("cannot start the watcher thread")?;
    Ok(Watcher { tx, thread: Some(thread) })
}

/// Watches of the roots' parent folders, to see a root appear, vanish or be replaced. They are
/// inotify watches of their own, for names coming and going only: a folder's watch in [`tree`]
/// reports every kind of event, and a busy sibling of a root (the store, often) would wake the watcher at each
/// write. Each event reaches the coalescing thread as a notify event naming the path.
struct Parents {
    watches: inotify::Watches,
    folders: Arc<Mutex<HashMap<inotify::WatchDescriptor, PathBuf>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Parents {
    fn drop(&mut self) {
        // The reading thread notices within one poll period and ends.
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Parents {
    /// How long the reading thread waits for events before it looks at `stop`.
    const POLL: Duration = Duration::from_millis(500);

    fn start(tx: Sender<Msg>) -> std::io::Result<Parents> {
        let mut inotify = inotify::Inotify::init()?;
        let folders: Arc<Mutex<HashMap<inotify::WatchDescriptor, PathBuf>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let parents = Parents { watches: inotify.watches(), folders: folders.clone(), stop: stop.clone() };
        std::thread::Builder::new().name("clipfeed-parents".into()).spawn(move || {
            use std::os::fd::AsRawFd;
            let mut buffer = [0u8; 4096];
            while !stop.load(Ordering::Relaxed) {
                let mut fd = libc::pollfd { fd: inotify.as_raw_fd(), events: libc::POLLIN, revents: 0 };
                // SAFETY: one valid pollfd, owned by this frame, for the duration of the call.
                if unsafe { libc::poll(&mut fd, 1, Self::POLL.as_millis() as libc::c_int) } <= 0 {
                    continue;
                }
                let Ok(events) = inotify.read_events(&mut buffer) else { continue };
                let folders = folders.lock().expect("parent watch lock");
                for event in events {
                    let Some(folder) = folders.get(&event.wd) else { continue };
                    let path = event.name.map_or_else(|| folder.clone(), |name| folder.join(name));
                    let event = notify::Event::new(EventKind::Any).add_path(path);
                    if tx.send(Msg::Event(Ok(event))).is_err() {
                        return;
                    }
                }
            }
        })?;
        Ok(parents)
    }

    fn watch(&mut self, folder: &std::path::Path) -> bool {
        use inotify::WatchMask as M;
        let mask = M::CREATE | M::DELETE | M::MOVED_FROM | M::MOVED_TO | M::DELETE_SELF | M::MOVE_SELF | M::ONLYDIR;
        match self.watches.add(folder, mask) {
            Ok(wd) => {
                self.folders.lock().expect("parent watch lock").insert(wd, folder.to_path_buf());
                true
            }
            Err(_) => false,
        }
    }
}

/// How often roots that are missing (or whose parent is) are looked for.
const ROOT_RETRY: Duration = Duration::from_secs(1);

/// The roots and their watches.
struct Roots {
    watcher: tree::Tree,
    parents: Parents,
    mode: WatchMode,
    poll_interval: Duration,
    next_poll: Instant,
    roots: Vec<RootState>,
}

struct RootState {
    path: PathBuf,
    /// (device, inode) of the folder being watched; `None` while not watched.
    identity: Option<(u64, u64)>,
    /// Whether the parent folder is watched (non-recursively) to see the root come and go.
    parent_watched: bool,
    /// Scanned every `poll_interval` instead of (or as well as) watched: `watch: poll`, or the
    /// system refused a watch. Until a restart.
    polled: bool,
    /// The last problem logged, so a missing root is not reported every second.
    complaint: Option<String>,
}

impl Roots {
    /// Whether an event path is the root itself or a folder above one.
    fn concerns(&self, p: &std::path::Path) -> bool {
        self.roots.iter().any(|r| r.path.starts_with(p))
    }

    /// Whether an event path matters at all: inside a root, or a root or one of its ancestors.
    fn relevant(&self, p: &std::path::Path) -> bool {
        self.roots.iter().any(|r| p.starts_with(&r.path) || r.path.starts_with(p))
    }

    fn needs_retry(&self) -> bool {
        self.roots.iter().any(|r| !r.polled && (r.identity.is_none() || !r.parent_watched))
    }

    /// Whether any root is scanned on a timer.
    fn polling(&self) -> bool {
        self.roots.iter().any(|r| r.polled)
    }

    /// The system refused a watch somewhere below a root (the watches' reading thread reports it as an event, when a
    /// new folder could not be watched): every watched root may now miss changes, so all are
    /// scanned on the timer as well.
    fn watch_limit_reached(&mut self) {
        let secs = self.poll_interval.as_secs();
        for r in &mut self.roots {
            if !r.polled {
                r.polled = true;
                complain(r, watch_limit_message(secs), true);
            }
        }
    }

    /// Brings every root's watch in line with what is on disk: watches roots that appeared,
    /// re-watches roots that were replaced (a new folder at the same path), drops the watch of
    /// roots that went. Returns whether anything changed (the caller then asks for a rescan).
    fn check(&mut self) -> bool {
        use std::os::unix::fs::MetadataExt;
        let mut changed = false;
        let secs = self.poll_interval.as_secs();
        for r in &mut self.roots {
            if r.polled {
                continue;
            }
            if self.mode == WatchMode::Poll {
                r.polled = true;
                info!(root = %r.path.display(), seconds = secs, "scanning for changes on a timer (watch: poll)");
                continue;
            }
            if !r.parent_watched
                && let Some(parent) = r.path.parent().filter(|p| p.is_dir())
            {
                r.parent_watched = self.parents.watch(parent);
            }
            let now = std::fs::metadata(&r.path).ok().filter(|m| m.is_dir()).map(|m| (m.dev(), m.ino()));
            // The same folder, still watched. (A root deleted and made again can get the old
            // inode number back; the system dropped its watch all the same.)
            if now == r.identity && (now.is_none() || self.watcher.is_watched(&r.path)) {
                continue;
            }
            if r.identity.is_some() {
                // Gone or replaced: the old watch follows the old folder, wherever it went.
                self.watcher.unwatch_root(&r.path);
                r.identity = None;
                changed = true;
            }
            let Some(id) = now else {
                complain(r, "clippings root is missing; its clippings keep serving until it returns".into(), false);
                continue;
            };
            match self.watcher.watch_root(&r.path) {
                Ok(()) => {
                    info!(root = %r.path.display(), "watching");
                    r.identity = Some(id);
                    r.complaint = None;
                    changed = true;
                }
                Err(tree::Refused::Limit) => {
                    r.polled = true;
                    complain(r, watch_limit_message(secs), true);
                    changed = true;
                }
                Err(tree::Refused::Other(e)) => complain(r, format!("cannot watch: {e}"), false),
            }
        }
        changed
    }
}

/// The one error logged when the system refuses a watch: which limit, how to raise it, and what
/// clipfeed does meanwhile.
pub(crate) fn watch_limit_message(poll_secs: u64) -> String {
    format!(
        "the system refused more inotify watches: the limit fs.inotify.max_user_watches is reached. \
         Raise it (sysctl -w fs.inotify.max_user_watches=524288, and a file in /etc/sysctl.d/ to keep it) \
         and restart clipfeed; until then this root is scanned for changes every {poll_secs} s"
    )
}

fn complain(r: &mut RootState, msg: String, severe: bool) {
    if r.complaint.as_deref() != Some(msg.as_str()) {
        if severe {
            error!(root = %r.path.display(), "{msg}");
        } else {
            warn!(root = %r.path.display(), "{msg}");
        }
        r.complaint = Some(msg);
    }
}

/// What the coalescing loop holds between events.
#[derive(Default)]
struct Gathered {
    /// Paths to hand on.
    ready: BTreeSet<PathBuf>,
    /// Paths being created or written, with the time they count as settled.
    pending: HashMap<PathBuf, Instant>,
    rescan: bool,
    /// When the first event of the batch being gathered came.
    batch_start: Option<Instant>,
}

impl Gathered {
    /// How long to wait for the next event (`None`: until one comes): until the batch is quiet
    /// or old, a written path settles, a missing root is looked for, a polled root is due, or
    /// the heartbeat is due.
    fn wait(&self, now: Instant, roots: Option<&Roots>, next_root_check: Instant, beat: bool) -> Option<Duration> {
        let mut wait: Option<Duration> = None;
        let mut until = |d: Duration| wait = Some(wait.map_or(d, |w: Duration| w.min(d)));
        if !self.ready.is_empty() || self.rescan {
            let age = self.batch_start.map_or(Duration::ZERO, |s| now - s);
            until(QUIET.min(MAX_BATCH.saturating_sub(age)));
        }
        if let Some(deadline) = self.pending.values().min() {
            until(deadline.saturating_duration_since(now));
        }
        if roots.is_some_and(Roots::needs_retry) {
            until(next_root_check.saturating_duration_since(now));
        }
        if let Some(r) = roots.filter(|r| r.polling()) {
            until(r.next_poll.saturating_duration_since(now));
        }
        if beat {
            until(beat_every());
        }
        wait
    }

    /// Takes in the signals of one event. Returns whether it concerned a root itself.
    fn take(&mut self, event: &notify::Event, roots: Option<&Roots>) -> bool {
        let mut root_event = false;
        for signal in classify(event) {
            let now = Instant::now();
            let path = match &signal {
                Signal::Ready(p) | Signal::Created(p) | Signal::Writing(p) => Some(p),
                Signal::Rescan => None,
            };
            if let (Some(r), Some(p)) = (roots, path) {
                if !r.relevant(p) {
                    continue;
                }
                root_event |= r.concerns(p);
            }
            match signal {
                Signal::Ready(p) => {
                    self.pending.remove(&p);
                    self.ready.insert(p);
                }
                // A path being (re)written is read when it settles, even if an earlier event
                // (say, the remove of a remove-then-create save) made it ready.
                Signal::Created(p) => {
                    self.ready.remove(&p);
                    let d = self.pending.entry(p).or_insert(now + SETTLE_CREATED);
                    *d = (*d).max(now + SETTLE_CREATED);
                }
                Signal::Writing(p) => {
                    self.ready.remove(&p);
                    self.pending.insert(p, now + SETTLE_WRITING);
                }
                Signal::Rescan => {
                    warn!("the file event queue overflowed: events were lost; rescanning every root");
                    self.rescan = true;
                }
            }
        }
        root_event
    }

    /// Written paths whose settle time has passed become ready; a batch starts with the first
    /// thing gathered.
    fn settle(&mut self, now: Instant) {
        let ready = &mut self.ready;
        self.pending.retain(|p, deadline| {
            if *deadline <= now {
                ready.insert(p.clone());
                false
            } else {
                true
            }
        });
        if (!self.ready.is_empty() || self.rescan) && self.batch_start.is_none() {
            self.batch_start = Some(now);
        }
    }
}

/// The coalescing loop: gathers ready paths until the stream is quiet (or a batch is old), holds
/// written paths until they settle, keeps the roots watched, and sends jobs.
fn coalesce(rx: mpsc::Receiver<Msg>, jobs: Sender<Job>, mut roots: Option<Roots>, heartbeat: Option<Heartbeat>) {
    let mut g = Gathered::default();
    let mut next_root_check = Instant::now() + ROOT_RETRY;
    loop {
        // Wake at least every beat_every(), so the watchdog knows this thread is alive.
        if let Some(hb) = &heartbeat {
            hb.beat();
        }
        let received = match g.wait(Instant::now(), roots.as_ref(), next_root_check, heartbeat.is_some()) {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(w) => rx.recv_timeout(w),
        };
        let mut quiet = false;
        let mut root_event = false;
        // A file renamed into place is complete: when nothing else is gathered, it goes at once
        // instead of after `QUIET` (the writer merges whatever jobs queued while it was busy).
        let mut at_once = false;
        match received {
            Ok(Msg::Event(Ok(event))) => {
                let idle = g.ready.is_empty() && !g.rescan;
                root_event = g.take(&event, roots.as_ref());
                at_once = idle && moved_in(&event);
            }
            Ok(Msg::Event(Err(e))) => {
                if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) {
                    if let Some(r) = roots.as_mut() {
                        r.watch_limit_reached();
                    }
                } else {
                    warn!("file watcher error, rescanning: {e}");
                }
                g.rescan = true;
                root_event = true;
            }
            Err(RecvTimeoutError::Timeout) => quiet = true,
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => {
                flush(&jobs, &mut g.ready, &mut g.rescan, g.batch_start.unwrap_or_else(Instant::now));
                return;
            }
        }
        let now = Instant::now();
        if let Some(r) = roots.as_mut()
            && (root_event || (r.needs_retry() && now >= next_root_check))
        {
            g.rescan |= r.check();
            next_root_check = now + ROOT_RETRY;
        }
        if let Some(r) = roots.as_mut().filter(|r| r.polling() && now >= r.next_poll) {
            g.rescan = true;
            r.next_poll = now + r.poll_interval;
        }
        g.settle(now);
        let old = g.batch_start.is_some_and(|s| now - s >= MAX_BATCH);
        if (quiet || old || at_once) && (!g.ready.is_empty() || g.rescan) {
            if !flush(&jobs, &mut g.ready, &mut g.rescan, g.batch_start.unwrap_or(now)) {
                return;
            }
            g.batch_start = None;
        }
    }
}

/// Whether an event is the second half of a rename whose first half, if any, was not seen: a
/// file (or folder) moved in whole. A rename within the roots reports the name it left first,
/// so its second half never finds the batch empty and both names go together.
fn moved_in(event: &notify::Event) -> bool {
    matches!(event.kind, EventKind::Modify(ModifyKind::Name(RenameMode::To)))
}

/// Sends what is gathered (the first event of the batch came at `since`). False when the writer
/// is gone.
fn flush(jobs: &Sender<Job>, ready: &mut BTreeSet<PathBuf>, rescan: &mut bool, since: Instant) -> bool {
    let mut ok = true;
    if std::mem::take(rescan) {
        ok &= jobs.send(Job::Rescan).is_ok();
    }
    if !ready.is_empty() {
        ok &= jobs.send(Job::Touched { paths: std::mem::take(ready).into_iter().collect(), since }).is_ok();
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{DataChange, Flag, MetadataKind, RemoveKind};

    /// How long a test waits for a job: a guard against hanging, far beyond what a loaded
    /// machine takes.
    const WAIT: Duration = Duration::from_secs(60);

    fn ev(kind: EventKind, paths: &[&str]) -> notify::Event {
        let mut e = notify::Event::new(kind);
        for p in paths {
            e = e.add_path(PathBuf::from(p));
        }
        e
    }

    #[test]
    fn classification() {
        let p = || PathBuf::from("/r/a.md");
        assert_eq!(
            classify(&ev(EventKind::Access(AccessKind::Close(AccessMode::Write)), &["/r/a.md"])),
            [Signal::Ready(p())]
        );
        assert!(classify(&ev(EventKind::Access(AccessKind::Close(AccessMode::Read)), &["/r/a.md"])).is_empty());
        assert!(classify(&ev(EventKind::Access(AccessKind::Open(AccessMode::Any)), &["/r/a.md"])).is_empty());
        assert_eq!(classify(&ev(EventKind::Create(CreateKind::File), &["/r/a.md"])), [Signal::Created(p())]);
        assert_eq!(classify(&ev(EventKind::Create(CreateKind::Folder), &["/r/a.md"])), [Signal::Ready(p())]);
        assert_eq!(
            classify(&ev(EventKind::Modify(ModifyKind::Data(DataChange::Any)), &["/r/a.md"])),
            [Signal::Writing(p())]
        );
        assert_eq!(
            classify(&ev(EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)), &["/r/a.md"])),
            [Signal::Ready(p())]
        );
        assert_eq!(
            classify(&ev(EventKind::Modify(ModifyKind::Name(RenameMode::Both)), &["/r/a.md", "/r/b.md"])),
            [Signal::Ready(p()), Signal::Ready(PathBuf::from("/r/b.md"))]
        );
        assert_eq!(classify(&ev(EventKind::Remove(RemoveKind::File), &["/r/a.md"])), [Signal::Ready(p())]);
        assert_eq!(classify(&notify::Event::new(EventKind::Other).set_flag(Flag::Rescan)), [Signal::Rescan]);
    }

    /// A coalescing thread that finds `first` already queued when it starts (so that events
    /// meant to come within `QUIET` of each other do, however loaded the machine), the sender
    /// for what follows, and the jobs.
    fn coalescing(first: Vec<notify::Event>) -> (Sender<Msg>, mpsc::Receiver<Job>, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel();
        for e in first {
            tx.send(Msg::Event(Ok(e))).unwrap();
        }
        let (jobs_tx, jobs_rx) = mpsc::channel();
        let t = std::thread::spawn(move || coalesce(rx, jobs_tx, None, None));
        (tx, jobs_rx, t)
    }

    fn touched(jobs: &mpsc::Receiver<Job>) -> Vec<PathBuf> {
        match jobs.recv_timeout(WAIT).unwrap() {
            Job::Touched { paths, .. } => paths,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_file_moved_in_goes_at_once_and_a_rename_within_goes_whole() {
        let moved = |p: &str| ev(EventKind::Modify(ModifyKind::Name(RenameMode::To)), &[p]);
        // Two files moved in back to back: each is handed on by itself as it comes, since
        // nothing else is gathered (the writer takes whatever queued meanwhile at once).
        let (tx, jobs, t) = coalescing(vec![moved("/r/a.md"), moved("/r/b.md")]);
        for want in ["/r/a.md", "/r/b.md"] {
            assert_eq!(touched(&jobs), [PathBuf::from(want)]);
        }
        drop(tx);
        t.join().unwrap();
        // A rename within the roots: the name it left comes first, so both names go together.
        let (tx, jobs, t) =
            coalescing(vec![ev(EventKind::Modify(ModifyKind::Name(RenameMode::From)), &["/r/c.md"]), moved("/r/d.md")]);
        assert_eq!(touched(&jobs), [PathBuf::from("/r/c.md"), PathBuf::from("/r/d.md")]);
        drop(tx);
        t.join().unwrap();
    }

    #[test]
    fn the_watch_limit_message_says_what_to_do() {
        let m = watch_limit_message(5);
        assert!(m.contains("fs.inotify.max_user_watches"), "{m}");
        assert!(m.contains("sysctl"), "{m}");
        assert!(m.contains("every 5 s"), "{m}");
    }

    #[test]
    fn coalescing_batches_and_settles() {
        let (tx, jobs, t) = coalescing(vec![
            ev(EventKind::Modify(ModifyKind::Data(DataChange::Any)), &["/r/w.md"]),
            ev(EventKind::Remove(RemoveKind::File), &["/r/a.md"]),
            ev(EventKind::Remove(RemoveKind::File), &["/r/a.md"]),
            ev(EventKind::Remove(RemoveKind::File), &["/r/b.md"]),
        ]);
        assert_eq!(touched(&jobs), [PathBuf::from("/r/a.md"), PathBuf::from("/r/b.md")]);
        // The written file is held until it is closed.
        let close = |p: &str| ev(EventKind::Access(AccessKind::Close(AccessMode::Write)), &[p]);
        tx.send(Msg::Event(Ok(close("/r/w.md")))).unwrap();
        assert_eq!(touched(&jobs), [PathBuf::from("/r/w.md")]);
        drop(tx);
        t.join().unwrap();
        // Remove-then-create (an editor's save): the new file is held until its writer closes it,
        // even though the remove alone would have made the path ready.
        let written = Instant::now();
        let (tx, jobs, t) = coalescing(vec![
            ev(EventKind::Remove(RemoveKind::File), &["/r/v.md"]),
            ev(EventKind::Create(CreateKind::File), &["/r/v.md"]),
            ev(EventKind::Modify(ModifyKind::Data(DataChange::Any)), &["/r/v.md"]),
        ]);
        // Bounded wait for something that must not happen: well past QUIET, well before
        // SETTLE_WRITING, after which (a loaded machine may get there) the path may go.
        if let Ok(job) = jobs.recv_timeout(Duration::from_millis(300)) {
            assert!(written.elapsed() >= SETTLE_WRITING, "a file being written was handed on: {job:?}");
        }
        tx.send(Msg::Event(Ok(close("/r/v.md")))).unwrap();
        assert_eq!(touched(&jobs), [PathBuf::from("/r/v.md")]);
        tx.send(Msg::Event(Ok(notify::Event::new(EventKind::Other).set_flag(Flag::Rescan)))).unwrap();
        assert!(matches!(jobs.recv_timeout(WAIT).unwrap(), Job::Rescan));
        drop(tx);
        t.join().unwrap();
    }
}
