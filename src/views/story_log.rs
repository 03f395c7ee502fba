//! The story-grouped subscription documents (`{feed}.{ext}?group=story`, no other filter) and
//! their RFC 5005 archive pages (`{feed}/archive/{page_size}-{index}.{ext}?group=story`), read
//! from the feed's story log (`store/story_log`) as the plain documents are from its feed log:
//! the same page size, the same window arithmetic (`ingest::log_window`), pages that are fixed
//! ranges of positions. Following `prev-archive` from the document visits every story with a
//! member visible in the feed exactly once. Each story is shown by its members with an open
//! slot in the feed's own log; a grouped view with any other filter is made by
//! `views/story` instead, without archives.
//!
//! Archive pages exist for the feed's current page size only: when `items_per_feed` changes,
//! the story log is cut into the new size's pages and the old size's grouped pages answer 404
//! (the plain archives keep theirs; grouped ones are a view of the stories as they are now).

use std::sync::Arc;

use anyhow::Result;
use chrono::{DateTime, Utc};

use super::{CacheKey, Lookup, Shape, Views};
use crate::budget::Budget;
use crate::config::FeedLog;
use crate::feed::{self, Doc, Page};
use crate::item::Item;
use crate::pages;
use crate::site::{FeedEntry, Rendered};
use crate::store::Reader;

impl Views {
    /// The items standing for `stories` in `log`'s feed, newest story first (by its newest
    /// visible member). A story with no visible member (none, as the writer keeps the log) is
    /// left out.
    fn story_log_items(
        &self,
        reader: &Reader,
        stories: &[String],
        log: &FeedLog,
        budget: &Budget,
    ) -> Result<Vec<Item>> {
        let links = self.links_of(log.feed());
        let mut out = Vec::with_capacity(stories.len());
        for id in stories {
            budget.check()?;
            let members = reader.story_items(id, log, budget)?;
            let size = reader.story_size(id, log, budget)?;
            let joined = reader.story_joined(id, log, budget)?;
            out.extend(pages::story_item(id, &members, size, joined, &links));
        }
        out.sort_by(|a, b| b.data.published.cmp(&a.data.published).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// The story-grouped subscription document of `feed`: the stories in its story log's window,
    /// linking the newest archive page; the stories merged into them as tombstones.
    pub(super) fn grouped_current(&self, feed: &FeedEntry, shape: Shape, budget: &Budget) -> Result<Rendered> {
        let log = FeedLog::of(&feed.key);
        let len = self.filters.story_log_len(&log, budget)?;
        let win = crate::ingest::log_window(len, feed.page_size, |from, to| {
            self.filters.story_log_open_slots(&log, from, to, budget)
        })?;
        let stories = self.filters.story_log_stories(&log, win.start, len, budget)?;
        let items = self.story_log_items(&self.filters, &stories, &log, budget)?;
        let shown: Vec<String> = items.iter().map(|i| i.id.clone()).collect();
        let tombstones = self.filters.merged_into_logged(&log, &shown, self.tombstones_since(budget)?, budget)?;
        let updated: DateTime<Utc> = feed.history_at.max(feed.meta_at);
        let meta = feed::FeedMeta { updated, ..feed.meta.clone() };
        let page = Page::Current { newest_archive: win.archive_pages.checked_sub(1), page_size: feed.page_size };
        let doc = Doc { meta: &meta, page: &page, items: &items, tombstones: &tombstones };
        budget.check()?;
        let mut r = self.render_with(&self.links().grouped(), shape, &doc, updated);
        r.ambiguous = feed.history_ambiguous;
        Ok(r)
    }

    fn grouped_archive_key(feed: &FeedEntry, page_size: u64, index: u64, shape: Shape) -> Option<CacheKey> {
        (page_size == feed.page_size).then(|| CacheKey {
            stem: feed.key.path_stem(),
            shape,
            view: format!("story-archive:{page_size}-{index}"),
            generation: feed.generation,
        })
    }

    /// What the cache has of a grouped archive page; no IO. `Missing` for a page size the feed
    /// does not use now; whether the page is full is known only once it is read.
    pub fn lookup_grouped_archive(&self, feed: &FeedEntry, page_size: u64, index: u64, shape: Shape) -> Lookup {
        match Self::grouped_archive_key(feed, page_size, index, shape) {
            None => Lookup::Missing,
            Some(key) => self.get(&key).map_or(Lookup::Uncached, Lookup::Cached),
        }
    }

    /// Archive page `index` of `feed`'s story log; `None` when the page is not full (or of
    /// another page size). It links the page after it when that is full too.
    pub fn grouped_archive(
        &self,
        feed: &FeedEntry,
        page_size: u64,
        index: u64,
        shape: Shape,
        budget: &Budget,
    ) -> Result<Option<Arc<Rendered>>> {
        let Some(key) = Self::grouped_archive_key(feed, page_size, index, shape) else { return Ok(None) };
        if let Some(doc) = self.get(&key) {
            return Ok(Some(doc));
        }
        let log = FeedLog::of(&feed.key);
        let full = self.pages.story_log_len(&log, budget)? / page_size;
        if index >= full {
            return Ok(None);
        }
        let doc = self.cached(key, || {
            let (from, to) = (index * page_size, (index + 1) * page_size);
            let stories = self.pages.story_log_stories(&log, from, to, budget)?;
            let items = self.story_log_items(&self.pages, &stories, &log, budget)?;
            let slots = self.pages.story_slots_changed_at(&log, from, to, budget)?.unwrap_or(DateTime::UNIX_EPOCH);
            let updated = items.iter().map(|i| i.updated).fold(slots.max(feed.meta_at), DateTime::max);
            let meta = feed::FeedMeta { updated, icon: None, ..feed.meta.clone() };
            let page = Page::Archive { index, page_size, has_next: index + 1 < full };
            let doc = Doc { meta: &meta, page: &page, items: &items, tombstones: &[] };
            budget.check()?;
            Ok(self.render_with(&self.links().grouped(), shape, &doc, updated))
        })?;
        Ok(Some(doc))
    }
}
