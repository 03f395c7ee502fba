//! Story views, made on request like the other views: a feed grouped by story (`?group=story`
//! with any other filter; `group=story` alone is the story log's document, `views/story_log`),
//! and one story's page and feeds (`/stories/{id}`, `/stories/{id}.{rss,atom,json}`). Every
//! member shown holds an open slot in the log of the feed the view belongs to: the feed's own
//! for a grouped view, the all-feed's (which never holds a private clipping) for a story's page.

use std::sync::Arc;

use anyhow::Result;
use chrono::{DateTime, Utc};

use super::{CacheKey, HTML, Shape, Views};
use crate::budget::Budget;
use crate::config::FeedLog;
use crate::feed::{self, Doc, FeedMeta, Format, Page};
use crate::filter::Filter;
use crate::item::Item;
use crate::pages;
use crate::site::{FeedEntry, Rendered};

/// The most clippings of a feed's history a grouped view reads to find its stories.
const MAX_SCAN: usize = 20_000;

/// Stories merged into those shown: (id, when).
type Tombstones = Vec<(String, DateTime<Utc>)>;

/// What a story's URL answers.
#[derive(Debug)]
pub enum StoryAnswer {
    Found(Arc<Rendered>),
    /// The story ended in a merge: 301 to this story.
    Moved(String),
    /// No such story, or none of its clippings is public.
    Missing,
}

impl Views {
    /// The oldest merge a story-grouped view still shows as a tombstone: the cutoff of the
    /// writer's last purge, which also drops the tombstones of clippings (`tombstone_days`).
    pub(super) fn tombstones_since(&self, budget: &Budget) -> Result<DateTime<Utc>> {
        self.filters.tombstones_before(budget)
    }

    /// The newest `limit` stories of `feed` with a clipping that passes `filter` (its grouping
    /// aside), each as one item; and the stories merged into them, as tombstones.
    pub(super) fn grouped_items(
        &self,
        feed: &FeedEntry,
        filter: &Filter,
        limit: usize,
        budget: &Budget,
    ) -> Result<(Vec<Item>, Tombstones)> {
        let plain = Filter { by_story: false, limit: None, ..filter.clone() };
        let mut want = (limit * 4).max(100);
        let stories = loop {
            let log = FeedLog::of(&feed.key);
            let items = if plain.searches() {
                self.filters.searched(&log, &plain, want, budget)?
            } else {
                self.filters.filtered(&log, &plain, want, budget)?
            };
            let ids: Vec<String> = items.iter().map(|i| i.id.clone()).collect();
            let mut stories: Vec<String> = Vec::new();
            for s in self.filters.stories_of(&ids, budget)? {
                if !stories.contains(&s) {
                    stories.push(s);
                }
            }
            if stories.len() >= limit || items.len() < want || want >= MAX_SCAN {
                break stories;
            }
            want = (want * 4).min(MAX_SCAN);
        };
        let links = self.links_of(&feed.key);
        let mut out = Vec::new();
        for id in stories.iter().take(limit) {
            budget.check()?;
            let log = FeedLog::of(&feed.key);
            let members = self.filters.story_items(id, &log, budget)?;
            let size = self.filters.story_size(id, &log, budget)?;
            let joined = self.filters.story_joined(id, &log, budget)?;
            out.extend(pages::story_item(id, &members, size, joined, &links));
        }
        let shown: Vec<String> = out.iter().map(|i| i.id.clone()).collect();
        // Only stories this feed's readers saw (they were in its story log) are named to them.
        let tombstones =
            self.filters.merged_into_logged(&FeedLog::of(&feed.key), &shown, self.tombstones_since(budget)?, budget)?;
        Ok((out, tombstones))
    }

    /// Story `id`'s page (`format` `None`) or feed, from the all-feed `all`.
    pub fn story(&self, all: &FeedEntry, id: &str, format: Option<Format>, budget: &Budget) -> Result<StoryAnswer> {
        let shape = match format {
            Some(f) => Shape::Feed(f),
            None => Shape::Page { format: Format::Rss, private: false },
        };
        let key = CacheKey { stem: format!("stories/{id}"), shape, view: "story".into(), generation: all.generation };
        if let Some(doc) = self.get(&key) {
            return Ok(StoryAnswer::Found(doc));
        }
        let members = self.pages.story_items(id, &FeedLog::public(), budget)?;
        if members.is_empty() {
            return Ok(match self.pages.story_redirect(id, &FeedLog::public(), budget)? {
                Some(to) => StoryAnswer::Moved(to),
                None => StoryAnswer::Missing,
            });
        }
        let doc = self.cached(key, || {
            let size = self.pages.story_size(id, &FeedLog::public(), budget)?;
            let cfg = self.config.load();
            let links = self.links();
            let updated = members.iter().map(|m| m.updated).max().unwrap_or(all.meta_at).max(all.meta_at);
            let Some(format) = format else {
                let html = pages::story_page(&cfg.title, &links, id, &members, size);
                return Ok(Rendered::new(html.into_bytes(), updated, HTML));
            };
            let lead = members.iter().min_by_key(|m| m.data.published).map(|m| m.data.clip.title.as_str());
            let meta = FeedMeta {
                title: format!("{}: {}", cfg.title, lead.unwrap_or("a story")),
                description: format!("Every clipping of one story: {} from {} news sites", size.clippings, size.sites),
                updated,
                icon: None,
                ..all.meta.clone()
            };
            let page = Page::Story { id: id.to_string() };
            let doc = Doc { meta: &meta, page: &page, items: &members, tombstones: &[] };
            budget.check()?;
            Ok(Rendered::new(feed::render(format, &doc, &links), updated, format.content_type()))
        })?;
        Ok(StoryAnswer::Found(doc))
    }
}
