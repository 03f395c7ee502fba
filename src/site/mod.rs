//! The published site: an immutable snapshot of every rendered feed and page, swapped in whole by
//! the writer after each change and read by the HTTP layer without locks. Holding bytes, ETags and
//! times, it is what makes serving a lookup: no SQL, parsing or rendering per request.
//!
//! A published feed document is kept gzipped: it is packed (the gzip form made, the original
//! dropped) as it is rendered in a large batch, or by the packer thread right after it is
//! published (see `ingest/render`), since feed readers ask for gzip and the packed form is about
//! a fifth of the size. A client that wants the original gets it inflated, and the
//! most recently asked-for originals are kept in a small shared cache ([`rendered::PLAIN_CACHE_BYTES`]).
//! Brotli is made the first time a client asks for it and kept. Pages (views, the index) are
//! not packed: they are few, small, or held in a bounded cache already.

mod rendered;
mod saved;
mod sealed;
mod status;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::feed::{FeedKey, FeedMeta, Format};

pub use rendered::{Encoding, Rendered};
#[cfg(test)]
pub(crate) use sealed::ASKED as SEALED_ASKED;
pub use sealed::{MAX_FILES as SEALED_MAX_FILES, Sealed, held as sealed_held};
pub use status::{Indexing, Remap, RootStatus, Status, StatusRejection};

/// One feed: its subscription document in every format, and what is needed to render its archive
/// pages and filtered views on demand.
#[derive(Debug, Clone)]
pub struct FeedEntry {
    pub(crate) key: FeedKey,
    pub(crate) meta: FeedMeta,
    pub(crate) rss: Rendered,
    pub(crate) atom: Rendered,
    pub(crate) json: Rendered,
    /// Items per feed; filtered views default to it.
    pub(crate) items_per_feed: usize,
    /// Slots per archive page.
    pub(crate) page_size: u64,
    /// Number of archive pages linked from the subscription document (0 is the oldest).
    pub(crate) archive_pages: u64,
    /// First slot of the subscription document.
    pub(crate) window_start: u64,
    /// Number of slots in the feed's log: pages below it that are full can be served.
    pub(crate) log_len: u64,
    /// When the feed's title, description or links last changed.
    pub(crate) meta_at: DateTime<Utc>,
    /// Earlier page sizes with their number of archive pages, still served.
    pub(crate) retired_pages: std::collections::BTreeMap<u64, u64>,
    /// Bumped whenever anything in the feed's whole history changes; cached views of an older
    /// generation are stale.
    pub(crate) generation: u64,
    /// When anything in the feed's history last changed: the `Last-Modified` of filtered views.
    pub(crate) history_at: DateTime<Utc>,
    pub(crate) history_ambiguous: bool,
}

impl FeedEntry {
    /// Packs its three documents (see [`Rendered::pack`]).
    pub(crate) fn pack(&self) {
        for d in [&self.rss, &self.atom, &self.json] {
            d.pack();
        }
    }

    pub(crate) fn current(&self, format: Format) -> &Rendered {
        match format {
            Format::Rss => &self.rss,
            Format::Atom => &self.atom,
            Format::Json => &self.json,
        }
    }
}

/// A page made when it is first asked for, from what was captured when the site was published:
/// the index and the OPML list change with every new clipping (their counts) but are seldom
/// read, so a change does not wait for them.
#[derive(Clone)]
pub struct Deferred {
    page: Arc<OnceLock<Arc<Rendered>>>,
    make: Arc<dyn Fn() -> Rendered + Send + Sync>,
}

impl Deferred {
    pub(crate) fn new(make: impl Fn() -> Rendered + Send + Sync + 'static) -> Deferred {
        Deferred { page: Arc::new(OnceLock::new()), make: Arc::new(make) }
    }

    /// The page, made now if nobody asked for it before.
    pub(crate) fn get(&self) -> &Arc<Rendered> {
        self.page.get_or_init(|| Arc::new((self.make)()))
    }
}

impl std::fmt::Debug for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deferred").field("made", &self.page.get().is_some()).finish()
    }
}

/// Everything the HTTP layer serves.
#[derive(Debug, Clone)]
pub struct Site {
    /// By URL path stem: `feed`, `topics/ai`, `providers/vice.com`.
    pub(crate) feeds: HashMap<String, Arc<FeedEntry>>,
    pub(crate) index: Deferred,
    pub(crate) opml: Deferred,
    /// `/api/status` as JSON.
    pub(crate) status: Bytes,
    /// Store opened and first reconcile finished.
    pub(crate) ready: bool,
    /// The store has never finished a reconcile: a feed with no items yet (or not known yet)
    /// answers 503 with `Retry-After`, since it may be about to fill.
    pub(crate) cold: bool,
    /// Private feeds (those `config::Visibility` names) by path stem, with the token each needs.
    pub(crate) private: HashMap<String, String>,
    /// Feeds (path stems) a topic remap under way will publish when it completes: until then
    /// they answer 503 with `Retry-After`, never a 404 that would later turn into content.
    pub(crate) coming: Arc<std::collections::HashSet<String>>,
}

impl Site {
    /// What is served before anything is rendered.
    pub fn empty() -> Site {
        let page =
            |body: &'static [u8], ct| Deferred::new(move || Rendered::new(body.to_vec(), DateTime::UNIX_EPOCH, ct));
        Site {
            feeds: HashMap::new(),
            index: page(b"<!doctype html><title>clipfeed</title><p>Starting.</p>", "text/html; charset=utf-8"),
            opml: page(
                b"<?xml version=\"1.0\"?><opml version=\"2.0\"><head><title>Starting</title></head><body/></opml>",
                "text/x-opml; charset=utf-8",
            ),
            status: Bytes::from_static(b"{\"ready\":false}"),
            ready: false,
            // Never served by the daemon (connections wait until the writer publishes); a test's
            // site starts warm.
            cold: false,
            private: HashMap::new(),
            coming: Arc::default(),
        }
    }

    pub(crate) fn feed(&self, stem: &str, format: Format) -> Option<&Rendered> {
        self.feeds.get(stem).map(|f| f.current(format))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codings_round_trip_and_tags_differ() {
        let body = "<feed>".to_string() + &"<entry>same words again</entry>".repeat(100) + "</feed>";
        let r = Rendered::new(body.clone().into_bytes(), DateTime::UNIX_EPOCH, "text/xml");
        assert!(r.compressible());
        let gz = r.body_in(Encoding::Gzip).clone();
        assert!(gz.len() < body.len() / 4);
        let mut out = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut out).unwrap();
        assert_eq!(out, body);
        let br = r.body_in(Encoding::Brotli).clone();
        let mut out = Vec::new();
        brotli::BrotliDecompress(&mut &br[..], &mut out).unwrap();
        assert_eq!(out, body.as_bytes());
        // Same bytes the second time: computed once.
        assert_eq!(r.body_in(Encoding::Gzip).as_ptr(), r.body_in(Encoding::Gzip).as_ptr());
        let tags: Vec<String> = [Encoding::Identity, Encoding::Gzip, Encoding::Brotli].map(|e| r.etag(e)).to_vec();
        assert_eq!(tags.iter().collect::<std::collections::HashSet<_>>().len(), 3);
        let codings = [Encoding::Identity, Encoding::Gzip, Encoding::Brotli];
        for (t, enc) in tags.iter().zip(codings) {
            assert!(r.matches_tag(t, enc));
            assert!(r.matches_tag(&format!("W/{t}"), enc));
            // Another coding's tag names another representation.
            for other in codings.into_iter().filter(|o| *o != enc) {
                assert!(!r.matches_tag(t, other), "{t} for {other:?}");
            }
        }
        assert!(!r.matches_tag("\"other\"", Encoding::Identity));
        assert!(!r.matches_tag("unquoted", Encoding::Identity));
    }

    #[test]
    fn a_packed_document_keeps_its_bytes_tags_and_saved_form() {
        let e = entry();
        let before: Vec<Bytes> = [Format::Rss, Format::Atom, Format::Json].map(|f| e.current(f).plain()).to_vec();
        let tags = e.rss.etag(Encoding::Gzip);
        e.pack();
        for (f, body) in [Format::Rss, Format::Atom, Format::Json].into_iter().zip(&before) {
            let r = e.current(f);
            assert_eq!(&r.plain(), body, "{f:?} inflates to what was rendered");
            assert_eq!(r.len(), body.len());
            if !r.compressible() {
                assert!(!r.packed());
                continue;
            }
            assert!(r.packed() && r.has_coding(Encoding::Gzip), "{f:?} is held gzipped only");
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&r.body_in(Encoding::Gzip)[..]), &mut out)
                .unwrap();
            assert_eq!(&out[..], &body[..]);
        }
        assert_eq!(e.rss.etag(Encoding::Gzip), tags, "packing changes no tag");
        let (head, blob) = e.save().unwrap();
        let r = FeedEntry::restore(&head, blob.clone().into()).unwrap();
        assert!(r.atom.packed());
        assert_eq!(r.atom.plain(), before[1]);
        assert_eq!(r.atom.body_in(Encoding::Gzip), e.atom.body_in(Encoding::Gzip));
        // A blob that was changed is refused, whichever byte it was.
        let mut bad = blob;
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(FeedEntry::restore(&head, bad.into()).is_err());
    }

    #[test]
    fn small_documents_are_not_packed() {
        let r = Rendered::new(b"<rss/>".to_vec(), DateTime::UNIX_EPOCH, "text/xml");
        r.pack();
        assert!(!r.packed() && !r.has_coding(Encoding::Gzip));
        assert_eq!(&r.plain()[..], b"<rss/>");
    }

    fn entry() -> FeedEntry {
        let key = FeedKey::Topic("robots".into());
        let doc = |text: &str, f: Format| {
            let mut r = Rendered::new(text.repeat(200).into_bytes(), DateTime::UNIX_EPOCH, f.content_type());
            r.ambiguous = true;
            r
        };
        FeedEntry {
            meta: FeedMeta {
                key: key.clone(),
                title: "Robots".into(),
                description: "All about <robots>".into(),
                site_title: "Site".into(),
                updated: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
                icon: None,
            },
            key,
            rss: doc("<rss/>", Format::Rss),
            atom: doc("<feed/>", Format::Atom),
            json: doc("{}", Format::Json),
            items_per_feed: 50,
            page_size: 25,
            archive_pages: 3,
            window_start: 75,
            log_len: 101,
            meta_at: DateTime::from_timestamp(1_600_000_000, 0).unwrap(),
            retired_pages: [(10, 4)].into_iter().collect(),
            generation: 7,
            history_at: DateTime::from_timestamp(1_650_000_000, 0).unwrap(),
            history_ambiguous: true,
        }
    }

    #[test]
    fn a_saved_entry_restores_whole_with_its_compressed_forms() {
        let e = entry();
        let gz = e.atom.body_in(Encoding::Gzip).clone();
        let (head, blob) = e.save().unwrap();
        let r = FeedEntry::restore(&head, blob.into()).unwrap();
        assert_eq!(r.key, e.key);
        assert_eq!(r.meta.description, e.meta.description);
        assert_eq!((r.page_size, r.archive_pages, r.window_start, r.log_len), (25, 3, 75, 101));
        assert_eq!((r.generation, r.history_ambiguous, r.retired_pages.clone()), (7, true, e.retired_pages.clone()));
        for f in [Format::Rss, Format::Atom, Format::Json] {
            let (a, b) = (e.current(f), r.current(f));
            assert_eq!(a.plain(), b.plain());
            assert_eq!(a.etag(Encoding::Identity), b.etag(Encoding::Identity));
            assert_eq!((a.last_modified, a.ambiguous, a.dated), (b.last_modified, b.ambiguous, b.dated));
            assert_eq!(a.content_type, b.content_type);
        }
        assert!(r.atom.has_coding(Encoding::Gzip) && !r.atom.has_coding(Encoding::Brotli));
        assert_eq!(r.atom.body_in(Encoding::Gzip), &gz);
    }

    #[test]
    fn a_damaged_saved_entry_is_refused() {
        let (head, blob) = entry().save().unwrap();
        assert!(FeedEntry::restore(&head, Bytes::copy_from_slice(&blob[..blob.len() - 1])).is_err());
        let mut flipped = blob.clone();
        flipped[10] ^= 1;
        assert!(FeedEntry::restore(&head, flipped.into()).is_err());
        let mut longer = blob.clone();
        longer.push(0);
        assert!(FeedEntry::restore(&head, longer.into()).is_err());
        assert!(FeedEntry::restore("{}", blob.into()).is_err());
    }
}
