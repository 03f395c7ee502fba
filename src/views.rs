//! Documents rendered on demand rather than on write: archive pages (RFC 5005), feeds narrowed by
//! query filters, the HTML page of each of those and of subscription documents (what browsers are
//! shown at a feed's URL), and the page of one clipping. They are read from the store through read-only
//! connections, rendered by `feed`/`pages`, and kept in a bounded cache. An entry is valid for one
//! generation of its feed: any change in the feed's history makes it stale.
//!
//! A view is looked up first ([`Views::lookup_archive`], [`Views::lookup_filtered`]: no IO, no
//! waiting), and made only when it is not cached, within the request's [`Budget`]. Making one
//! uses a connection of its [`Lane`]: filters, which can read a feed's whole history, have
//! connections of their own, so they never hold up archive pages and clipping pages.

mod story;
mod story_log;

use std::sync::{Arc, Mutex};

use anyhow::Result;
use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};

use crate::budget::Budget;
use crate::config::{Config, FeedLog};
use crate::feed::{self, Doc, Format, Links, Page};
use crate::filter::Filter;
use crate::lru::Lru;
use crate::pages;
use crate::site::{FeedEntry, Rendered};
use crate::store::Reader;

pub use story::StoryAnswer;

/// Cache bounds: entries, and bytes of bodies (compressed forms, made on demand, count double).
const CACHE_ENTRIES: usize = 1024;
const CACHE_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    stem: String,
    shape: Shape,
    /// `archive:N`, the filter's canonical form, or `current:` and the document's hash.
    view: String,
    generation: u64,
}

/// What a view is made as: a feed document, or the HTML page of it that browsers are shown at
/// its URL (made by [`pages::feed_page`] from the same items).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    Feed(Format),
    /// The page at the URL of the document in `format`; `private` when the feed needs a token.
    Page {
        format: Format,
        private: bool,
    },
}

/// The media type of feed pages.
const HTML: &str = "text/html; charset=utf-8";

/// A small LRU cache of views.
type Cache = Lru<CacheKey, Arc<Rendered>>;

fn new_cache() -> Cache {
    Lru::new(CACHE_ENTRIES, CACHE_BYTES)
}

/// What a view is counted as in the cache: the document and, once served compressed, its gzip
/// form.
fn cache_size(doc: &Rendered) -> usize {
    doc.len() * 2
}

/// The kinds of view that are made on separate read connections, so that one kind cannot take
/// every connection from the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Archive pages and clipping pages: a few rows by index, milliseconds each.
    Pages,
    /// Filtered views: a feed's whole history narrowed by its filters, searches answered by
    /// the full-text index (milliseconds; tens for the widest prefixes at 100,000 clippings).
    Filters,
}

impl Lane {
    /// How many views of this lane are made at once (its read connections). Filters get half
    /// the cores, at least one, so a flood of them leaves the other half to everything else.
    pub fn width(self) -> usize {
        match self {
            Lane::Pages => 2,
            Lane::Filters => std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
        }
    }
}

/// What the cache knows of a view.
#[derive(Debug)]
pub enum Lookup {
    /// There is no such view (an archive page past the end): 404, nothing to make.
    Missing,
    Cached(Arc<Rendered>),
    /// It has to be made.
    Uncached,
}

/// Renders archive pages, filtered feeds and clipping pages from the store.
pub struct Views {
    pages: Reader,
    filters: Reader,
    /// The configuration in force (its base URL, title and private feeds).
    config: Arc<ArcSwap<Config>>,
    cache: Mutex<Cache>,
}

/// Which archive page a request names, once it is known to exist.
struct ArchivePage {
    key: CacheKey,
    has_next: bool,
}

impl Views {
    /// Opens the store's read connections for both lanes.
    pub fn open(store: &std::path::Path, config: Arc<ArcSwap<Config>>) -> Result<Views> {
        let pages = Reader::open(store, Lane::Pages.width())?;
        let filters = Reader::open(store, Lane::Filters.width())?;
        Ok(Views { pages, filters, config, cache: Mutex::new(new_cache()) })
    }

    fn links(&self) -> Links {
        Links::new(&self.config.load().base_url)
    }

    /// The links of a document of the feed `key`: a private feed's items link to no page here.
    fn links_of(&self, key: &crate::feed::FeedKey) -> Links {
        self.links().for_private(self.config.load().visibility().is_private(key))
    }

    /// A document of the feed in `shape`, dated `updated`.
    fn render(&self, shape: Shape, doc: &Doc<'_>, updated: DateTime<Utc>) -> Rendered {
        self.render_with(&self.links(), shape, doc, updated)
    }

    /// A document of the feed in `shape` with `links`, dated `updated`.
    fn render_with(&self, links: &Links, shape: Shape, doc: &Doc<'_>, updated: DateTime<Utc>) -> Rendered {
        let links = &links.for_private(self.config.load().visibility().is_private(&doc.meta.key));
        match shape {
            Shape::Feed(format) => Rendered::new(feed::render(format, doc, links), updated, format.content_type()),
            Shape::Page { format, private } => {
                Rendered::new(pages::feed_page(doc, format, links, private).into_bytes(), updated, HTML)
            }
        }
    }

    fn get(&self, key: &CacheKey) -> Option<Arc<Rendered>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(key)
    }

    /// The cached document, else one made by `make` (and cached).
    fn cached(&self, key: CacheKey, make: impl FnOnce() -> Result<Rendered>) -> Result<Arc<Rendered>> {
        if let Some(doc) = self.get(&key) {
            return Ok(doc);
        }
        let doc = Arc::new(make()?);
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).insert(key, doc.clone(), cache_size(&doc));
        Ok(doc)
    }

    /// Archive page `index` of `page_size` slots, when the feed has it. Every full page of the
    /// log can be served: the current page size gives the pages the feed links to, and a page
    /// size the feed had before (its `items_per_feed` changed) still serves the pages it had, so
    /// old links keep their content. A page links to the next one when that is full, which never
    /// changes once it is true.
    fn archive_page(feed: &FeedEntry, page_size: u64, index: u64, shape: Shape) -> Option<ArchivePage> {
        let full = if page_size == feed.page_size {
            feed.log_len / page_size
        } else {
            feed.retired_pages.get(&page_size).copied().unwrap_or(0)
        };
        (index < full).then(|| ArchivePage {
            key: CacheKey {
                stem: feed.key.path_stem(),
                shape,
                view: format!("archive:{page_size}-{index}"),
                generation: feed.generation,
            },
            has_next: index + 1 < full,
        })
    }

    /// What the cache has of an archive page; no IO.
    pub fn lookup_archive(&self, feed: &FeedEntry, page_size: u64, index: u64, shape: Shape) -> Lookup {
        match Self::archive_page(feed, page_size, index, shape) {
            None => Lookup::Missing,
            Some(page) => self.get(&page.key).map_or(Lookup::Uncached, Lookup::Cached),
        }
    }

    /// Archive page `index` of `page_size` slots of a feed; `None` when there is no such page.
    pub fn archive(
        &self,
        feed: &FeedEntry,
        page_size: u64,
        index: u64,
        shape: Shape,
        budget: &Budget,
    ) -> Result<Option<Arc<Rendered>>> {
        let Some(ArchivePage { key, has_next }) = Self::archive_page(feed, page_size, index, shape) else {
            return Ok(None);
        };
        let doc = self.cached(key, || {
            let (from, to) = (index * page_size, (index + 1) * page_size);
            let log = FeedLog::of(&feed.key);
            let items = self.pages.slot_items(&log, from, to, budget)?;
            let slots = self.pages.slots_changed_at(&log, from, to, budget)?.unwrap_or(DateTime::UNIX_EPOCH);
            // Everything the page shows: its slots, its items, the feed's title and links.
            let updated = items.iter().map(|i| i.updated).fold(slots.max(feed.meta_at), DateTime::max);
            // No logo: it comes from the newest clippings, which are not on this page.
            let meta = feed::FeedMeta { updated, icon: None, ..feed.meta.clone() };
            let page = Page::Archive { index, page_size, has_next };
            let doc = Doc { meta: &meta, page: &page, items: &items, tombstones: &[] };
            budget.check()?;
            Ok(self.render(shape, &doc, updated))
        })?;
        Ok(Some(doc))
    }

    fn filtered_key(feed: &FeedEntry, filter: &Filter, shape: Shape) -> CacheKey {
        CacheKey { stem: feed.key.path_stem(), shape, view: filter.cache_key(), generation: feed.generation }
    }

    /// What the cache has of a filtered view (never `Missing`); no IO.
    pub fn lookup_filtered(&self, feed: &FeedEntry, filter: &Filter, shape: Shape) -> Lookup {
        self.get(&Self::filtered_key(feed, filter, shape)).map_or(Lookup::Uncached, Lookup::Cached)
    }

    /// A feed narrowed by a filter, over its whole history; for `group=story` alone, the feed's
    /// story-grouped subscription document (from its story log, with archives).
    pub fn filtered(&self, feed: &FeedEntry, filter: &Filter, shape: Shape, budget: &Budget) -> Result<Arc<Rendered>> {
        self.cached(Self::filtered_key(feed, filter, shape), || {
            if filter.is_grouping_only() {
                return self.grouped_current(feed, shape, budget);
            }
            let limit = filter.limit.unwrap_or(feed.items_per_feed);
            let (items, tombstones) = if filter.by_story {
                self.grouped_items(feed, filter, limit, budget)?
            } else if filter.searches() {
                (self.filters.searched(&FeedLog::of(&feed.key), filter, limit, budget)?, Vec::new())
            } else {
                (self.filters.filtered(&FeedLog::of(&feed.key), filter, limit, budget)?, Vec::new())
            };
            let updated: DateTime<Utc> = feed.history_at.max(feed.meta_at);
            let mut meta = feed::FeedMeta { updated, ..feed.meta.clone() };
            // A saved search is told apart from its feed (and other searches) by its title.
            if let Some(search) = &filter.search {
                meta.title = format!("{} · search: {search}", meta.title);
            }
            let page = Page::Filtered { query: filter.to_query() };
            let doc = Doc { meta: &meta, page: &page, items: &items, tombstones: &tombstones };
            budget.check()?;
            let mut r = self.render(shape, &doc, updated);
            r.ambiguous = feed.history_ambiguous;
            // A window relative to now moves by itself: no date can say when it last changed.
            r.dated = filter.since_relative.is_none();
            Ok(r)
        })
    }

    /// The key of the page of a subscription document: its content is that of the document
    /// published in `format`, so the document's hash names it.
    fn current_page_key(feed: &FeedEntry, format: Format, private: bool) -> CacheKey {
        CacheKey {
            stem: feed.key.path_stem(),
            shape: Shape::Page { format, private },
            view: format!("current:{}", feed.current(format).hash),
            generation: feed.generation,
        }
    }

    /// What the cache has of the page of a subscription document (never `Missing`); no IO.
    pub fn lookup_current_page(&self, feed: &FeedEntry, format: Format, private: bool) -> Lookup {
        self.get(&Self::current_page_key(feed, format, private)).map_or(Lookup::Uncached, Lookup::Cached)
    }

    /// The HTML page of a feed's subscription document in `format`: the items of its slots, read
    /// from the store, with the document's dates.
    pub fn current_page(
        &self,
        feed: &FeedEntry,
        format: Format,
        private: bool,
        budget: &Budget,
    ) -> Result<Arc<Rendered>> {
        self.cached(Self::current_page_key(feed, format, private), || {
            let items = self.pages.slot_items(&FeedLog::of(&feed.key), feed.window_start, feed.log_len, budget)?;
            let page = Page::Current { newest_archive: feed.archive_pages.checked_sub(1), page_size: feed.page_size };
            let doc = Doc { meta: &feed.meta, page: &page, items: &items, tombstones: &[] };
            budget.check()?;
            let published = feed.current(format);
            let mut r = self.render(Shape::Page { format, private }, &doc, published.last_modified);
            r.ambiguous = published.ambiguous;
            r.dated = published.dated;
            Ok(r)
        })
    }

    /// The HTML page of a live clipping. A clipping page belongs to no feed: it shows only what
    /// the public log holds (`FeedLog::public`), so clippings in private feeds have no page.
    pub fn clipping_page(&self, id: &str, budget: &Budget) -> Result<Option<String>> {
        let cfg = self.config.load();
        let links = self.links();
        let item = self.pages.item(&FeedLog::public(), id, budget)?;
        Ok(item.map(|item| pages::clipping(&cfg.title, &links, &item)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(n: usize) -> Arc<Rendered> {
        Arc::new(Rendered::new(vec![b'x'; n], DateTime::UNIX_EPOCH, "text/plain"))
    }

    fn key(i: usize) -> CacheKey {
        CacheKey { stem: "feed".into(), shape: Shape::Feed(Format::Rss), view: format!("v{i}"), generation: 0 }
    }

    #[test]
    fn cache_is_bounded_and_keeps_recent_entries() {
        let mut c = new_cache();
        for i in 0..CACHE_ENTRIES + 10 {
            c.insert(key(i), doc(10), 20);
            // Keep the first entry hot.
            assert!(c.get(&key(0)).is_some(), "{i}");
        }
        assert!(c.len() <= CACHE_ENTRIES);
        assert!(c.get(&key(1)).is_none(), "cold entries are evicted first");
        let big = CACHE_BYTES / 16;
        for i in 0..20 {
            c.insert(key(10_000 + i), doc(big), big * 2);
        }
        assert!(c.bytes() <= CACHE_BYTES, "{}", c.bytes());
        let before = c.len();
        c.insert(key(99_999), doc(CACHE_BYTES), CACHE_BYTES * 2);
        assert_eq!(c.len(), before, "a document too large to cache is not cached");
    }
}
