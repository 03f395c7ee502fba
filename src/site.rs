//! The published site: an immutable snapshot of every rendered feed and page, swapped in whole by
//! the writer after each change and read by the HTTP layer without locks. Holding bytes, ETags and
//! times, it is what makes serving a lookup: no SQL, parsing or rendering per request.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::feed::Format;

/// A rendered document with what HTTP needs to serve it.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub body: Bytes,
    /// Strong entity tag, quoted: a hash of the body.
    pub etag: String,
    /// Second precision.
    pub last_modified: DateTime<Utc>,
    /// The document changed more than once within `last_modified`'s second, so a client holding
    /// that date may have the older version: `If-Modified-Since` equal to it must not give 304.
    pub ambiguous: bool,
    pub content_type: &'static str,
}

impl Rendered {
    pub fn new(body: Vec<u8>, last_modified: DateTime<Utc>, content_type: &'static str) -> Rendered {
        let hash = xxhash_rust::xxh3::xxh3_128(&body);
        Rendered {
            body: Bytes::from(body),
            etag: format!("\"{hash:032x}\""),
            last_modified: chrono::DateTime::from_timestamp(last_modified.timestamp(), 0).unwrap_or_default(),
            ambiguous: false,
            content_type,
        }
    }
}

/// One feed in every format.
#[derive(Debug, Clone)]
pub struct FeedFiles {
    pub rss: Rendered,
    pub atom: Rendered,
}

impl FeedFiles {
    pub fn get(&self, format: Format) -> &Rendered {
        match format {
            Format::Rss => &self.rss,
            Format::Atom => &self.atom,
        }
    }
}

/// Everything the HTTP layer serves.
#[derive(Debug, Clone)]
pub struct Site {
    /// By URL path stem: `feed`, `topics/ai`, `providers/vice.com`.
    pub feeds: HashMap<String, Arc<FeedFiles>>,
    pub index: Arc<Rendered>,
    /// `/api/status` as JSON.
    pub status: Bytes,
    /// Store opened and first reconcile finished.
    pub ready: bool,
}

impl Site {
    /// What is served before anything is rendered.
    pub fn empty() -> Site {
        Site {
            feeds: HashMap::new(),
            index: Arc::new(Rendered::new(
                b"<!doctype html><title>clipfeed</title><p>Starting.</p>".to_vec(),
                DateTime::UNIX_EPOCH,
                "text/html; charset=utf-8",
            )),
            status: Bytes::from_static(b"{\"ready\":false}"),
            ready: false,
        }
    }

    pub fn feed(&self, stem: &str, format: Format) -> Option<&Rendered> {
        self.feeds.get(stem).map(|f| f.get(format))
    }
}
