//! The published site: an immutable snapshot of every rendered feed and page, swapped in whole by
//! the writer after each change and read by the HTTP layer without locks. Holding bytes, ETags and
//! times, it is what makes serving a lookup: no SQL, parsing or rendering per request.
//!
//! A published feed document is kept gzipped: the writer packs it (makes the gzip form and drops
//! the original) right after publishing it, since feed readers ask for gzip and the packed form
//! is about a fifth of the size. A client that wants the original gets it inflated, and the
//! most recently asked-for originals are kept in a small shared cache ([`PLAIN_CACHE_BYTES`]).
//! Brotli is made the first time a client asks for it and kept. Pages (views, the index) are
//! not packed: they are few, small, or held in a bounded cache already.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use anyhow::{Context, Result};
use arc_swap::ArcSwapOption;
use axum::http::HeaderValue;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::clip::Image;
use crate::feed::{FeedKey, FeedMeta, Format};
use crate::lru::Lru;

/// Bodies smaller than this are never compressed: the saving would not pay for the headers.
const MIN_COMPRESS: usize = 512;

/// How many bytes of inflated originals of packed documents are kept for clients that do not
/// take gzip (a few dozen feeds).
pub const PLAIN_CACHE_BYTES: usize = 8 << 20;

/// Originals of packed documents, by the documents' hash, least recently used dropped first.
static PLAIN_CACHE: LazyLock<Mutex<Lru<u128, Bytes>>> =
    LazyLock::new(|| Mutex::new(Lru::new(usize::MAX, PLAIN_CACHE_BYTES)));

/// gzip at level 6: within a percent of the best level's size at about half its time, which
/// the writer pays once per document it publishes.
fn gzip(body: &[u8]) -> Bytes {
    let mut z = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::new(6));
    z.write_all(body).expect("compressing to memory");
    Bytes::from(z.finish().expect("compressing to memory"))
}

/// A content coding we can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Brotli,
}

impl Encoding {
    /// The `Content-Encoding` value, `None` for identity.
    pub fn header(self) -> Option<&'static str> {
        match self {
            Encoding::Identity => None,
            Encoding::Gzip => Some("gzip"),
            Encoding::Brotli => Some("br"),
        }
    }
}

/// A rendered document with what HTTP needs to serve it.
#[derive(Debug)]
pub struct Rendered {
    /// The document as rendered; `None` once it is packed (see [`Rendered::pack`]).
    plain: ArcSwapOption<Bytes>,
    /// Its length in bytes.
    len: usize,
    /// Hash of the body, hex. The strong entity tag of each coding is derived from it.
    pub hash: String,
    id: u128,
    /// Second precision.
    pub last_modified: DateTime<Utc>,
    /// The document changed more than once within `last_modified`'s second, so a client holding
    /// that date may have the older version: `If-Modified-Since` equal to it must not give 304.
    pub ambiguous: bool,
    /// Whether `last_modified` means anything. Views whose content moves with the clock (a
    /// `since=7d` window) have no date; they are revalidated by entity tag only.
    pub dated: bool,
    pub content_type: &'static str,
    gzip: OnceLock<Bytes>,
    brotli: OnceLock<Bytes>,
    /// The `ETag` of each coding and the `Last-Modified` value, made at the first request, so
    /// answering one formats nothing.
    validators: OnceLock<Validators>,
}

/// Header values a document is served with, ready to copy into a response.
#[derive(Debug, Clone)]
pub struct Validators {
    /// Identity, gzip, brotli.
    pub etags: [HeaderValue; 3],
    pub last_modified: HeaderValue,
}

impl Clone for Rendered {
    fn clone(&self) -> Rendered {
        Rendered {
            plain: ArcSwapOption::new(self.plain.load_full()),
            len: self.len,
            hash: self.hash.clone(),
            id: self.id,
            last_modified: self.last_modified,
            ambiguous: self.ambiguous,
            dated: self.dated,
            content_type: self.content_type,
            gzip: self.gzip.clone(),
            brotli: self.brotli.clone(),
            validators: self.validators.clone(),
        }
    }
}

impl Rendered {
    pub fn new(body: Vec<u8>, last_modified: DateTime<Utc>, content_type: &'static str) -> Rendered {
        let id = xxhash_rust::xxh3::xxh3_128(&body);
        Rendered {
            len: body.len(),
            plain: ArcSwapOption::from_pointee(Bytes::from(body)),
            hash: format!("{id:032x}"),
            id,
            last_modified: DateTime::from_timestamp(last_modified.timestamp(), 0).unwrap_or_default(),
            ambiguous: false,
            dated: true,
            content_type,
            gzip: OnceLock::new(),
            brotli: OnceLock::new(),
            validators: OnceLock::new(),
        }
    }

    /// The length of the document in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the document is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Makes the gzip form and drops the original, when the document is worth compressing.
    /// Readers that hold the original keep it until they are done.
    pub fn pack(&self) {
        if !self.compressible() {
            return;
        }
        if let Some(plain) = self.plain.load_full() {
            self.gzip.get_or_init(|| gzip(&plain));
            self.plain.store(None);
        }
    }

    /// Whether only the gzip form is held.
    pub fn packed(&self) -> bool {
        self.plain.load().is_none()
    }

    /// The document as rendered: held, or inflated from its gzip form (and kept in a small
    /// cache shared by all documents).
    pub fn plain(&self) -> Bytes {
        if let Some(plain) = self.plain.load_full() {
            return Bytes::clone(&plain);
        }
        if let Some(b) = PLAIN_CACHE.lock().expect("plain cache lock").get(&self.id) {
            return b;
        }
        let gz = self.gzip.get().expect("a packed document has its gzip form");
        let mut out = Vec::with_capacity(self.len);
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut out).expect("our own gzip inflates");
        let out = Bytes::from(out);
        PLAIN_CACHE.lock().expect("plain cache lock").insert(self.id, out.clone(), out.len());
        out
    }

    /// The header values this document is served with.
    pub fn validators(&self) -> &Validators {
        self.validators.get_or_init(|| {
            let value = |s: String| HeaderValue::from_str(&s).expect("tags and dates are ASCII");
            Validators {
                etags: [Encoding::Identity, Encoding::Gzip, Encoding::Brotli].map(|e| value(self.etag(e))),
                last_modified: value(httpdate::fmt_http_date(std::time::SystemTime::from(self.last_modified))),
            }
        })
    }

    /// Whether compressing this document is worth it.
    pub fn compressible(&self) -> bool {
        self.len >= MIN_COMPRESS
    }

    /// The strong entity tag of the document in a coding (each coding is its own representation).
    pub fn etag(&self, enc: Encoding) -> String {
        match enc.header() {
            None => format!("\"{}\"", self.hash),
            Some(c) => format!("\"{}-{c}\"", self.hash),
        }
    }

    /// Whether a tag from `If-None-Match` names this document in any coding (weak comparison).
    pub fn matches_tag(&self, tag: &str) -> bool {
        let tag = tag.strip_prefix("W/").unwrap_or(tag);
        let Some(inner) = tag.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else { return false };
        let base = inner.strip_suffix("-gzip").or_else(|| inner.strip_suffix("-br")).unwrap_or(inner);
        base == self.hash
    }

    /// Whether the body in this coding is ready (identity always is: inflating takes well under
    /// a millisecond).
    pub fn has_coding(&self, enc: Encoding) -> bool {
        match enc {
            Encoding::Identity => true,
            Encoding::Gzip => self.gzip.get().is_some(),
            Encoding::Brotli => self.brotli.get().is_some(),
        }
    }

    /// The body in a coding, compressed the first time it is asked for.
    pub fn body_in(&self, enc: Encoding) -> Bytes {
        match enc {
            Encoding::Identity => self.plain(),
            Encoding::Gzip => self.gzip.get_or_init(|| gzip(&self.plain())).clone(),
            Encoding::Brotli => self
                .brotli
                .get_or_init(|| {
                    let plain = self.plain();
                    let mut out = Vec::with_capacity(plain.len() / 4);
                    let params = brotli::enc::BrotliEncoderParams { quality: 9, lgwin: 22, ..Default::default() };
                    brotli::BrotliCompress(&mut &plain[..], &mut out, &params).expect("compressing to memory");
                    Bytes::from(out)
                })
                .clone(),
        }
    }
}

/// One feed: its subscription document in every format, and what is needed to render its archive
/// pages and filtered views on demand.
#[derive(Debug, Clone)]
pub struct FeedEntry {
    pub key: FeedKey,
    pub meta: FeedMeta,
    pub rss: Rendered,
    pub atom: Rendered,
    pub json: Rendered,
    /// Items per feed; filtered views default to it.
    pub items_per_feed: usize,
    /// Slots per archive page.
    pub page_size: u64,
    /// Number of archive pages linked from the subscription document (0 is the oldest).
    pub archive_pages: u64,
    /// First slot of the subscription document.
    pub window_start: u64,
    /// Number of slots in the feed's log: pages below it that are full can be served.
    pub log_len: u64,
    /// When the feed's title, description or links last changed.
    pub meta_at: DateTime<Utc>,
    /// Earlier page sizes with their number of archive pages, still served.
    pub retired_pages: std::collections::BTreeMap<u64, u64>,
    /// Bumped whenever anything in the feed's whole history changes; cached views of an older
    /// generation are stale.
    pub generation: u64,
    /// When anything in the feed's history last changed: the `Last-Modified` of filtered views.
    pub history_at: DateTime<Utc>,
    pub history_ambiguous: bool,
}

impl FeedEntry {
    /// Packs its three documents (see [`Rendered::pack`]).
    pub fn pack(&self) {
        for d in [&self.rss, &self.atom, &self.json] {
            d.pack();
        }
    }

    pub fn current(&self, format: Format) -> &Rendered {
        match format {
            Format::Rss => &self.rss,
            Format::Atom => &self.atom,
            Format::Json => &self.json,
        }
    }

    /// The entry as saved in the store at a clean shutdown, so that the next start serves it as
    /// it was, byte for byte, without rendering: its fields as JSON, and its documents (with the
    /// compressed forms already made) framed in one blob.
    pub fn save(&self) -> Result<(String, Vec<u8>)> {
        let docs = [&self.rss, &self.atom, &self.json];
        let head = SavedHead {
            key: self.key.path_stem(),
            title: self.meta.title.clone(),
            description: self.meta.description.clone(),
            site_title: self.meta.site_title.clone(),
            updated: self.meta.updated,
            icon: self.meta.icon.clone(),
            items_per_feed: self.items_per_feed,
            page_size: self.page_size,
            archive_pages: self.archive_pages,
            window_start: self.window_start,
            log_len: self.log_len,
            meta_at: self.meta_at,
            retired_pages: self.retired_pages.clone(),
            generation: self.generation,
            history_at: self.history_at,
            history_ambiguous: self.history_ambiguous,
            docs: docs.map(|d| SavedDoc {
                len: d.len,
                hash: d.hash.clone(),
                last_modified: d.last_modified,
                ambiguous: d.ambiguous,
                dated: d.dated,
            }),
        };
        let mut blob = Vec::new();
        for d in docs {
            let plain = d.plain.load_full();
            for part in [plain.as_deref(), d.gzip.get(), d.brotli.get()] {
                match part {
                    Some(bytes) => {
                        blob.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
                        blob.extend_from_slice(bytes);
                    }
                    None => blob.extend_from_slice(&u32::MAX.to_le_bytes()),
                }
            }
        }
        let head = SavedEntry { blob_hash: format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&blob)), head };
        Ok((serde_json::to_string(&head)?, blob))
    }

    /// An entry saved by [`FeedEntry::save`]. Anything that does not read back whole is an error
    /// (the caller then renders the feed afresh).
    pub fn restore(head: &str, blob: Bytes) -> Result<FeedEntry> {
        let SavedEntry { blob_hash, head } = serde_json::from_str(head).context("saved feed head")?;
        anyhow::ensure!(
            format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&blob)) == blob_hash,
            "saved feed documents do not match their hash"
        );
        let key = FeedKey::from_stem(&head.key).with_context(|| format!("saved feed key {:?}", head.key))?;
        // The documents share the blob's memory (no copy).
        let mut at = 0;
        let mut take = || -> Result<Option<Bytes>> {
            let len = blob.get(at..at + 4).context("saved feed documents cut short")?;
            let len = u32::from_le_bytes(len.try_into().expect("four bytes"));
            at += 4;
            if len == u32::MAX {
                return Ok(None);
            }
            let end = at + len as usize;
            anyhow::ensure!(end <= blob.len(), "saved feed documents cut short");
            let part = blob.slice(at..end);
            at = end;
            Ok(Some(part))
        };
        let mut docs = Vec::with_capacity(3);
        for (saved, format) in head.docs.iter().zip([Format::Rss, Format::Atom, Format::Json]) {
            let (plain, gzip, brotli) = (take()?, take()?, take()?);
            anyhow::ensure!(plain.is_some() || gzip.is_some(), "saved feed document missing");
            if let Some(body) = &plain {
                anyhow::ensure!(
                    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(body)) == saved.hash,
                    "saved feed document does not match its hash"
                );
            }
            let id = u128::from_str_radix(&saved.hash, 16).context("saved feed document hash")?;
            let r = Rendered {
                plain: ArcSwapOption::new(plain.map(Arc::new)),
                len: saved.len,
                hash: saved.hash.clone(),
                id,
                last_modified: saved.last_modified,
                ambiguous: saved.ambiguous,
                dated: saved.dated,
                content_type: format.content_type(),
                gzip: OnceLock::new(),
                brotli: OnceLock::new(),
                validators: OnceLock::new(),
            };
            if let Some(g) = gzip {
                let _ = r.gzip.set(g);
            }
            if let Some(b) = brotli {
                let _ = r.brotli.set(b);
            }
            docs.push(r);
        }
        anyhow::ensure!(at == blob.len(), "saved feed documents have trailing bytes");
        let mut docs = docs.into_iter();
        let (rss, atom, json) = (docs.next().unwrap(), docs.next().unwrap(), docs.next().unwrap());
        Ok(FeedEntry {
            meta: FeedMeta {
                key: key.clone(),
                title: head.title,
                description: head.description,
                site_title: head.site_title,
                updated: head.updated,
                icon: head.icon,
            },
            key,
            rss,
            atom,
            json,
            items_per_feed: head.items_per_feed,
            page_size: head.page_size,
            archive_pages: head.archive_pages,
            window_start: head.window_start,
            log_len: head.log_len,
            meta_at: head.meta_at,
            retired_pages: head.retired_pages,
            generation: head.generation,
            history_at: head.history_at,
            history_ambiguous: head.history_ambiguous,
        })
    }
}

/// The fields of a [`FeedEntry`] as saved in the store.
#[derive(Serialize, Deserialize)]
struct SavedHead {
    key: String,
    title: String,
    description: String,
    site_title: String,
    updated: DateTime<Utc>,
    icon: Option<Image>,
    items_per_feed: usize,
    page_size: u64,
    archive_pages: u64,
    window_start: u64,
    log_len: u64,
    meta_at: DateTime<Utc>,
    retired_pages: std::collections::BTreeMap<u64, u64>,
    generation: u64,
    history_at: DateTime<Utc>,
    history_ambiguous: bool,
    docs: [SavedDoc; 3],
}

/// A saved entry's head with the hash of its documents' blob, checked before it is used.
#[derive(Serialize, Deserialize)]
struct SavedEntry {
    blob_hash: String,
    head: SavedHead,
}

/// What HTTP needs of a saved document besides its bytes.
#[derive(Serialize, Deserialize)]
struct SavedDoc {
    len: usize,
    hash: String,
    last_modified: DateTime<Utc>,
    ambiguous: bool,
    dated: bool,
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
    pub fn new(make: impl Fn() -> Rendered + Send + Sync + 'static) -> Deferred {
        Deferred { page: Arc::new(OnceLock::new()), make: Arc::new(make) }
    }

    /// The page, made now if nobody asked for it before.
    pub fn get(&self) -> &Arc<Rendered> {
        self.page.get_or_init(|| Arc::new((self.make)()))
    }
}

impl std::fmt::Debug for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deferred").field("made", &self.page.get().is_some()).finish()
    }
}

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

/// Everything the HTTP layer serves.
#[derive(Debug, Clone)]
pub struct Site {
    /// By URL path stem: `feed`, `topics/ai`, `providers/vice.com`.
    pub feeds: HashMap<String, Arc<FeedEntry>>,
    pub index: Deferred,
    pub opml: Deferred,
    /// `/api/status` as JSON.
    pub status: Bytes,
    /// Store opened and first reconcile finished.
    pub ready: bool,
    /// Private feeds by path stem, with the token each needs.
    pub private: HashMap<String, String>,
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
            private: HashMap::new(),
        }
    }

    pub fn feed(&self, stem: &str, format: Format) -> Option<&Rendered> {
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
        for t in &tags {
            assert!(r.matches_tag(t));
            assert!(r.matches_tag(&format!("W/{t}")));
        }
        assert!(!r.matches_tag("\"other\""));
        assert!(!r.matches_tag("unquoted"));
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
