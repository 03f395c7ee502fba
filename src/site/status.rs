//! `/api/status`: what the writer has done and what it holds, as a typed document.

use bytes::Bytes;
use serde::Serialize;

/// `/api/status`: what the writer has done and what it holds. Fields are in alphabetical
/// order, the order they are written in.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Live clippings (items in the feed of everything).
    pub(crate) clippings: u64,
    /// The store has never been reconciled with the roots (a first start): until it has, a feed
    /// with no items yet answers 503 with `Retry-After` rather than an empty or missing feed.
    pub(crate) cold_start: bool,
    /// The store's file is being rewritten compactly after a cold build (seconds at 100,000
    /// clippings): the feeds are served meanwhile, and the writer is busy: changes on disk wait,
    /// uncounted in `files_waiting`, until it ends.
    pub(crate) compacting: bool,
    /// Feeds served.
    pub(crate) feeds: usize,
    /// Clipping files changed on disk but not yet in the store (while it cannot be written) or
    /// not yet stable enough to read.
    pub(crate) files_waiting: u64,
    /// The large batch under way (a first start, a rescan that found many files), or null.
    pub(crate) indexing: Option<Indexing>,
    /// Public provider feeds listed on the index.
    pub(crate) providers: usize,
    /// Store opened and first reconcile finished.
    pub(crate) ready: bool,
    /// Rejected files (at most the first thousand).
    pub(crate) rejected: Vec<StatusRejection>,
    pub(crate) rejected_total: usize,
    /// The topic remap under way (topics, aliases, keywords or private feeds changed), or null.
    pub(crate) remap: Option<Remap>,
    /// Feed renders and reconciles since start.
    pub(crate) renders: u64,
    pub(crate) rescans: u64,
    /// Why the store cannot be written, naming its file (`null` while it can): the feeds keep
    /// their last content meanwhile.
    pub(crate) store_error: Option<String>,
    /// Whether the last write to the store committed and its file is the one opened.
    pub(crate) store_ok: bool,
    /// Each configured root as the last reconcile found it.
    pub(crate) roots: Vec<RootStatus>,
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

/// How far a large batch is: files read of those found, then the items they name brought
/// into their feeds. Counts only grow within one batch.
#[derive(Debug, Clone, Serialize)]
pub struct Indexing {
    pub(crate) files_found: u64,
    /// Files read per second since the batch began.
    pub(crate) files_per_second: f64,
    pub(crate) files_read: u64,
    pub(crate) items_done: u64,
    pub(crate) items_found: u64,
    /// `reading`, then `refreshing`.
    pub(crate) phase: &'static str,
    /// Since the batch began.
    pub(crate) seconds: f64,
}

/// A topic remap under way: every live item's feeds are worked out again under the new
/// configuration. The feeds keep serving their old documents until every new one is rendered,
/// then all switch at once; clippings that turned private leave the public feeds first.
#[derive(Debug, Clone, Serialize)]
pub struct Remap {
    /// Items whose feeds or topics change (known once `computing` is done).
    pub(crate) changed: u64,
    /// Live items looked at.
    pub(crate) items: u64,
    /// Feeds the remap brings into being: they answer 503 with `Retry-After` until it is done.
    pub(crate) new_feeds: usize,
    /// `computing` (the new topics worked out; the writer writes the stories and topics of those
    /// already worked out meanwhile, unseen until the remap commits), `private first` (clippings
    /// made private leave the public feeds; the items planned again when that stopped the
    /// writes), `writing` (the rest: feed logs, story logs, the search index), then `rendering`.
    pub(crate) phase: &'static str,
    /// Since the remap began.
    pub(crate) seconds: f64,
}

/// A configured clippings root in `/api/status`.
#[derive(Debug, Clone, Serialize)]
pub struct RootStatus {
    /// Clipping files found under it at the last reconcile (0 unless its state is `ok`).
    pub(crate) files: u64,
    pub(crate) path: String,
    /// `ok`, `missing`, `not a folder` or `unreadable` (see `ingest::RootState`).
    pub(crate) state: &'static str,
    /// Why, when it is not `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) problem: Option<String>,
}

impl Status {
    /// The document served, as pretty-printed JSON.
    pub(crate) fn to_json(&self) -> Bytes {
        Bytes::from(serde_json::to_vec_pretty(self).expect("status serialises"))
    }
}
