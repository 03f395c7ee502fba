//! What the watcher, the signal handlers and the daemon ask of the writer: the messages on its
//! queue. Kept apart from the writer so that whoever sends work knows nothing of how it is done.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::time::Instant;

use crate::config::Config;

/// Work for the writer.
#[derive(Debug)]
pub enum Job {
    /// These absolute paths (files or folders) may have changed, appeared or gone; the first
    /// event about them came at `since`.
    Touched { paths: Vec<PathBuf>, since: Instant },
    /// Compare every root with the store, as at start-up (after a watcher overflow or error).
    Rescan,
    /// Apply a new configuration (SIGHUP), then say so on `done`.
    Reload(Arc<Config>, Sender<()>),
    /// Keep a change to the WebSub hub's subscriptions in the store.
    Subscription(crate::websub::Change),
    /// Finish what is queued and stop.
    Shutdown,
}

/// The stop the daemon was asked for (SIGTERM, SIGINT), raised as soon as the stop begins: a
/// long batch on the writer (a cold build, a folder of thousands moved in) ends at its next
/// chunk, keeping what it committed, instead of holding the stop until it is done (a service
/// manager kills a stop that takes longer than its timeout). [`Job::Shutdown`] still follows.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    /// Asks every long job to end at its next chunk.
    pub fn raise(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether a stop was asked for.
    pub fn raised(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Stopped)` once a stop was asked for: a long job's check between two chunks.
    pub fn check(&self) -> Result<(), Stopped> {
        if self.raised() { Err(Stopped) } else { Ok(()) }
    }
}

/// A job ended early, at a chunk's end, because the daemon is stopping: what it committed is
/// kept, and the next start finishes the rest (as after a crash). Not a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cut short by the stop")
    }
}

impl std::error::Error for Stopped {}

/// Whether `e` is a job's early end at a stop ([`Stopped`]), not a failure.
pub fn is_stopped(e: &anyhow::Error) -> bool {
    e.downcast_ref::<Stopped>().is_some()
}
