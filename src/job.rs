//! What the watcher, the signal handlers and the daemon ask of the writer: the messages on its
//! queue. Kept apart from the writer so that whoever sends work knows nothing of how it is done.

use std::path::PathBuf;
use std::sync::Arc;
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
