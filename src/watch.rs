//! The file watcher: notify (inotify on Linux) on every root, recursively, and a coalescing step
//! that turns its fine-grained events into writer jobs: "these paths changed" or "rescan".
//!
//! notify's event kinds are collapsed by one pure function, [`classify`], into three signals.
//! Paths that were written to are held until the writer closes them (`IN_CLOSE_WRITE`) or a
//! settle time passes, so a file being written is not read half-way. Everything else (renames,
//! deletions, new folders, attribute changes) is passed on after a few quiet milliseconds. The
//! writer re-reads what it is told about and decides from the file system, not from event kinds,
//! what happened, so a lost or odd event costs at most a rescan.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind};
use notify::{RecursiveMode, Watcher as _};
use tracing::{error, info, warn};

use crate::ingest::Job;

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
pub fn classify(event: &notify::Event) -> Vec<Signal> {
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

/// Keeps the notify watcher and the coalescing thread alive; dropping it stops both.
pub struct Watcher {
    watcher: Option<notify::RecommendedWatcher>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // Dropping the notify watcher closes the event channel, which ends the thread.
        drop(self.watcher.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts watching `roots` recursively; jobs go to `jobs`. A root that does not exist is logged
/// and skipped.
pub fn spawn(roots: &[PathBuf], jobs: Sender<Job>) -> Result<Watcher> {
    let (tx, rx) = mpsc::channel::<notify::Result<notify::Event>>();
    let config = notify::Config::default().with_follow_symlinks(false);
    let mut watcher = notify::RecommendedWatcher::new(tx, config).context("cannot start the file watcher")?;
    for root in roots {
        match watcher.watch(root, RecursiveMode::Recursive) {
            Ok(()) => info!(root = %root.display(), "watching"),
            Err(e) => match e.kind {
                notify::ErrorKind::MaxFilesWatch => error!(
                    root = %root.display(),
                    "the system refused more inotify watches; raise fs.inotify.max_user_watches (sysctl) — changes under this root may be missed until a restart"
                ),
                _ => warn!(root = %root.display(), "cannot watch: {e}"),
            },
        }
    }
    let thread = std::thread::Builder::new()
        .name("clipfeed-watch".into())
        .spawn(move || coalesce(rx, jobs))
        .context("cannot start the watcher thread")?;
    Ok(Watcher { watcher: Some(watcher), thread: Some(thread) })
}

/// The coalescing loop: gathers ready paths until the stream is quiet (or a batch is old), holds
/// written paths until they settle, and sends jobs.
fn coalesce(rx: mpsc::Receiver<notify::Result<notify::Event>>, jobs: Sender<Job>) {
    let mut ready: BTreeSet<PathBuf> = BTreeSet::new();
    let mut pending: HashMap<PathBuf, Instant> = HashMap::new();
    let mut rescan = false;
    let mut batch_start: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let mut wait: Option<Duration> = None;
        if !ready.is_empty() || rescan {
            let age = batch_start.map_or(Duration::ZERO, |s| now - s);
            wait = Some(QUIET.min(MAX_BATCH.saturating_sub(age)));
        }
        if let Some(deadline) = pending.values().min() {
            let until = deadline.saturating_duration_since(now);
            wait = Some(wait.map_or(until, |w| w.min(until)));
        }
        let received = match wait {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(w) => rx.recv_timeout(w),
        };
        let mut quiet = false;
        match received {
            Ok(Ok(event)) => {
                for signal in classify(&event) {
                    let now = Instant::now();
                    match signal {
                        Signal::Ready(p) => {
                            pending.remove(&p);
                            ready.insert(p);
                        }
                        Signal::Created(p) => {
                            let d = pending.entry(p).or_insert(now + SETTLE_CREATED);
                            *d = (*d).max(now + SETTLE_CREATED);
                        }
                        Signal::Writing(p) => {
                            pending.insert(p, now + SETTLE_WRITING);
                        }
                        Signal::Rescan => rescan = true,
                    }
                }
            }
            Ok(Err(e)) => {
                warn!("file watcher error, rescanning: {e}");
                rescan = true;
            }
            Err(RecvTimeoutError::Timeout) => quiet = true,
            Err(RecvTimeoutError::Disconnected) => {
                flush(&jobs, &mut ready, &mut rescan);
                return;
            }
        }
        let now = Instant::now();
        pending.retain(|p, deadline| {
            if *deadline <= now {
                ready.insert(p.clone());
                false
            } else {
                true
            }
        });
        if (!ready.is_empty() || rescan) && batch_start.is_none() {
            batch_start = Some(now);
        }
        let old = batch_start.is_some_and(|s| now - s >= MAX_BATCH);
        if (quiet || old) && (!ready.is_empty() || rescan) {
            if !flush(&jobs, &mut ready, &mut rescan) {
                return;
            }
            batch_start = None;
        }
    }
}

/// Sends what is gathered. False when the writer is gone.
fn flush(jobs: &Sender<Job>, ready: &mut BTreeSet<PathBuf>, rescan: &mut bool) -> bool {
    let mut ok = true;
    if std::mem::take(rescan) {
        ok &= jobs.send(Job::Rescan).is_ok();
    }
    if !ready.is_empty() {
        ok &= jobs.send(Job::Touched(std::mem::take(ready).into_iter().collect())).is_ok();
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{DataChange, Flag, MetadataKind, RemoveKind, RenameMode};

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

    #[test]
    fn coalescing_batches_and_settles() {
        let (tx, rx) = mpsc::channel();
        let (jobs_tx, jobs_rx) = mpsc::channel();
        let t = std::thread::spawn(move || coalesce(rx, jobs_tx));
        tx.send(Ok(ev(EventKind::Modify(ModifyKind::Data(DataChange::Any)), &["/r/w.md"]))).unwrap();
        tx.send(Ok(ev(EventKind::Remove(RemoveKind::File), &["/r/a.md"]))).unwrap();
        tx.send(Ok(ev(EventKind::Remove(RemoveKind::File), &["/r/a.md"]))).unwrap();
        tx.send(Ok(ev(EventKind::Remove(RemoveKind::File), &["/r/b.md"]))).unwrap();
        match jobs_rx.recv_timeout(Duration::from_secs(5)).unwrap() {
            Job::Touched(paths) => assert_eq!(paths, [PathBuf::from("/r/a.md"), PathBuf::from("/r/b.md")]),
            other => panic!("{other:?}"),
        }
        // The written file is held until it is closed.
        tx.send(Ok(ev(EventKind::Access(AccessKind::Close(AccessMode::Write)), &["/r/w.md"]))).unwrap();
        match jobs_rx.recv_timeout(Duration::from_secs(5)).unwrap() {
            Job::Touched(paths) => assert_eq!(paths, [PathBuf::from("/r/w.md")]),
            other => panic!("{other:?}"),
        }
        tx.send(Ok(notify::Event::new(EventKind::Other).set_flag(Flag::Rescan))).unwrap();
        assert!(matches!(jobs_rx.recv_timeout(Duration::from_secs(5)).unwrap(), Job::Rescan));
        drop(tx);
        t.join().unwrap();
    }
}
