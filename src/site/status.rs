//! `/api/status`: what the writer has done and what it holds, as a typed document.

use bytes::Bytes;
use serde::Serialize;

/// `/api/status`: what the writer has done and what it holds. Fields are in alphabetical
/// order, the order they are written in.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Live clippings (items in the feed of everything).
    pub clippings: u64,
    /// Feeds served.
    pub feeds: usize,
    /// Public provider feeds listed on the index.
    pub providers: usize,
    /// Store opened and first reconcile finished.
    pub ready: bool,
    /// Rejected files (at most the first thousand).
    pub rejected: Vec<StatusRejection>,
    pub rejected_total: usize,
    /// Feed renders and reconciles since start.
    pub renders: u64,
    pub rescans: u64,
    /// Public topic feeds listed on the index.
    pub topics: usize,
}

/// A rejected file in `/api/status`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusRejection {
    pub path: String,
    pub reason: String,
    pub root: String,
    /// RFC 3339.
    pub since: String,
}

impl Status {
    /// The document served, as pretty-printed JSON.
    pub fn to_json(&self) -> Bytes {
        Bytes::from(serde_json::to_vec_pretty(self).expect("status serialises"))
    }
}
