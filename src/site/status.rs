//! `/api/status`: what the writer has done and what it holds, as a typed document.

use bytes::Bytes;
use serde::Serialize;

/// `/api/status`: what the writer has done and what it holds. Fields are in alphabetical
/// order, the order they are written in.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Live clippings (items in the feed of everything).
    pub(crate) clippings: u64,
    /// Feeds served.
    pub(crate) feeds: usize,
    /// Clipping files changed on disk but not yet in the store (while it cannot be written) or
    /// not yet stable enough to read.
    pub(crate) files_waiting: u64,
    /// Public provider feeds listed on the index.
    pub(crate) providers: usize,
    /// Store opened and first reconcile finished.
    pub(crate) ready: bool,
    /// Rejected files (at most the first thousand).
    pub(crate) rejected: Vec<StatusRejection>,
    pub(crate) rejected_total: usize,
    /// Feed renders and reconciles since start.
    pub(crate) renders: u64,
    pub(crate) rescans: u64,
    /// Why the store cannot be written, naming its file (`null` while it can): the feeds keep
    /// their last content meanwhile.
    pub(crate) store_error: Option<String>,
    /// Whether the last write to the store committed and its file is the one opened.
    pub(crate) store_ok: bool,
    /// Public topic feeds listed on the index.
    pub(crate) topics: usize,
    /// Front-matter keys spelt close to a key clipfeed reads, one entry per key over every file
    /// (at most the first thousand, by key).
    pub(crate) warnings: Vec<crate::clip::KeyWarning>,
}

/// A rejected file in `/api/status`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusRejection {
    pub(crate) path: String,
    pub(crate) reason: String,
    pub(crate) root: String,
    /// RFC 3339.
    pub(crate) since: String,
}

impl Status {
    /// The document served, as pretty-printed JSON.
    pub(crate) fn to_json(&self) -> Bytes {
        Bytes::from(serde_json::to_vec_pretty(self).expect("status serialises"))
    }
}
