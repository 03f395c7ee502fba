//! A rendered document and what HTTP needs to serve it: its bytes (held gzipped once packed,
//! inflated on demand into a small shared cache), its strong entity tag per content coding, its
//! date, and the compressed forms, each made once.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::sealed::{Cell, POOL, Sealed};
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
    pub(crate) fn header(self) -> Option<&'static str> {
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
    pub(super) plain: ArcSwapOption<Bytes>,
    /// Its length in bytes.
    pub(super) len: usize,
    /// Hash of the body, hex. The strong entity tag of each coding is derived from it.
    pub(crate) hash: String,
    pub(super) id: u128,
    /// Second precision.
    pub(crate) last_modified: DateTime<Utc>,
    /// The document changed more than once within `last_modified`'s second, so a client holding
    /// that date may have the older version: `If-Modified-Since` equal to it must not give 304.
    pub(crate) ambiguous: bool,
    /// Whether `last_modified` means anything. Views whose content moves with the clock (a
    /// `since=7d` window) have no date; they are revalidated by entity tag only.
    pub(crate) dated: bool,
    pub(crate) content_type: &'static str,
    pub(super) gzip: OnceLock<Bytes>,
    pub(super) brotli: OnceLock<Bytes>,
    /// The `ETag` of each coding and the `Last-Modified` value, made at the first request, so
    /// answering one formats nothing.
    pub(super) validators: OnceLock<Validators>,
    /// The heads HTTP's fast path answers with, one per coding and freshness (see
    /// [`Rendered::head`]), made at the first request for each.
    pub(super) heads: OnceLock<Box<Heads>>,
    /// The body in each coding (identity, gzip, brotli) in a sealed file for `sendfile` (see
    /// [`Rendered::sealed`]): the cell the pool may empty, made at the first request that wants
    /// one; never made for a coding whose body is not of the lengths asked for.
    pub(super) sealed: [OnceLock<Option<Arc<Cell>>>; 3],
    /// Requests that asked for a sealed file and found none.
    pub(super) asked: AtomicU32,
}

/// Prebuilt response heads, by slot, each with the place in it where the fields made per
/// request go.
type Heads = [OnceLock<(Bytes, usize)>; 6];

/// The values of the headers a document is served with (visible ASCII), made once, for HTTP to
/// turn into header values without formatting anything.
#[derive(Debug, Clone)]
pub struct Validators {
    /// Identity, gzip, brotli.
    pub(crate) etags: [Bytes; 3],
    pub(crate) last_modified: Bytes,
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
            heads: OnceLock::new(),
            sealed: Default::default(),
            asked: AtomicU32::new(0),
        }
    }
}

/// The place of a coding among a document's sealed files.
fn sealed_slot(enc: Encoding) -> usize {
    match enc {
        Encoding::Identity => 0,
        Encoding::Gzip => 1,
        Encoding::Brotli => 2,
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
            heads: OnceLock::new(),
            sealed: Default::default(),
            asked: AtomicU32::new(0),
        }
    }

    /// The length of the document in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Makes the gzip form and drops the original, when the document is worth compressing.
    /// Readers that hold the original keep it until they are done. The gzip form is made
    /// outside its cell's lock: a request that wants it meanwhile makes its own rather than wait
    /// for a packer that may run at a lower priority (both make the same bytes; the first kept).
    pub(crate) fn pack(&self) {
        if !self.compressible() {
            return;
        }
        if let Some(plain) = self.plain.load_full() {
            if self.gzip.get().is_none() {
                let _ = self.gzip.set(gzip(&plain));
            }
            self.plain.store(None);
        }
    }

    /// Whether only the gzip form is held.
    #[cfg(test)]
    pub(crate) fn packed(&self) -> bool {
        self.plain.load().is_none()
    }

    /// The document as rendered: held, or inflated from its gzip form (and kept in a small
    /// cache shared by all documents).
    pub(crate) fn plain(&self) -> Bytes {
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
    pub(crate) fn validators(&self) -> &Validators {
        self.validators.get_or_init(|| {
            let value = Bytes::from;
            Validators {
                etags: [Encoding::Identity, Encoding::Gzip, Encoding::Brotli].map(|e| value(self.etag(e))),
                last_modified: value(httpdate::fmt_http_date(std::time::SystemTime::from(self.last_modified))),
            }
        })
    }

    /// The head kept in `slot` (one of six, numbered by HTTP, which alone knows what a head
    /// holds), made by `make` the first time.
    pub(crate) fn head(&self, slot: usize, make: impl FnOnce() -> (Bytes, usize)) -> &(Bytes, usize) {
        self.heads.get_or_init(Default::default)[slot].get_or_init(make)
    }

    /// The body in `enc` in a sealed file (see `sealed`), when its length is within `sizes` and
    /// the pool has room for it: made from `body` at the document's `sealed::ASKED`th request
    /// (in each coding asked for from then on), and while it has none (the pool found no room,
    /// or gave its place to a hotter document), asked for again at every `ASKED`th request.
    pub(crate) fn sealed(
        &self,
        enc: Encoding,
        sizes: std::ops::Range<usize>,
        body: impl FnOnce() -> Bytes,
    ) -> Option<Arc<Sealed>> {
        if let Some(cell) = self.sealed[sealed_slot(enc)].get() {
            let cell = cell.as_ref()?;
            if let Some(file) = cell.load_full() {
                file.touch();
                return Some(file);
            }
            if !(self.asked.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(super::sealed::ASKED) {
                return None;
            }
            return POOL.fill(cell, &body());
        }
        if self.asked.load(Ordering::Relaxed) < super::sealed::ASKED {
            self.asked.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let mut body = (None, Some(body));
        let mut make = || body.0.get_or_insert_with(|| body.1.take().expect("made once")()).clone();
        let cell = self.sealed[sealed_slot(enc)]
            .get_or_init(|| sizes.contains(&make().len()).then(|| Arc::new(Cell::empty())));
        POOL.fill(cell.as_ref()?, &make())
    }

    /// The body's sealed file in `enc` now, if it has one (for tests: asks for nothing).
    #[cfg(test)]
    pub(crate) fn sealed_now(&self, enc: Encoding) -> Option<Arc<Sealed>> {
        self.sealed[sealed_slot(enc)].get()?.as_ref()?.load_full()
    }

    /// Whether compressing this document is worth it.
    pub(crate) fn compressible(&self) -> bool {
        self.len >= MIN_COMPRESS
    }

    /// The strong entity tag of the document in a coding (each coding is its own representation).
    pub(crate) fn etag(&self, enc: Encoding) -> String {
        match enc.header() {
            None => format!("\"{}\"", self.hash),
            Some(c) => format!("\"{}-{c}\"", self.hash),
        }
    }

    /// Whether a tag from `If-None-Match` names this document in the coding `enc` it would be
    /// sent in (RFC 9110 weak comparison: the opaque tags equal). Another coding's tag does not:
    /// a cache that holds only the gzip form, revalidating for a client that takes no gzip, must
    /// get the identity form, not a 304 it cannot use (RFC 9111, 4.3.4).
    pub(crate) fn matches_tag(&self, tag: &str, enc: Encoding) -> bool {
        let tag = tag.strip_prefix("W/").unwrap_or(tag);
        let Some(inner) = tag.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else { return false };
        let Some(rest) = inner.strip_prefix(self.hash.as_str()) else { return false };
        match enc.header() {
            None => rest.is_empty(),
            Some(c) => rest.strip_prefix('-') == Some(c),
        }
    }

    /// Whether the body in this coding is ready (identity always is: inflating takes well under
    /// a millisecond).
    pub(crate) fn has_coding(&self, enc: Encoding) -> bool {
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
