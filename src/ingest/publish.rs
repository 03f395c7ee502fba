//! Publishing: the [`Site`] the HTTP layer serves, built from the catalog after each change and
//! swapped in whole. The index page and the OPML list are made on their first request
//! ([`Deferred`]); the status document is a typed [`Status`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use anyhow::Result;
use chrono::DateTime;
use tracing::warn;

use super::Core;
use crate::clip;
use crate::feed::{self, FeedKey, Links, Outline};
use crate::metrics::Metrics;
use crate::pages::{self, Listing};
use crate::site::{Deferred, Indexing, Rendered, Site, Status, StatusRejection};
use crate::store::{Batch, Rejection};

/// At most this many rejections (and key warnings) are listed in `/api/status` (the total of
/// rejections is always given).
const STATUS_REJECTIONS: usize = 1000;

/// At most this many new key warnings are logged at once (all are in `/api/status`).
const LOGGED_KEY_WARNINGS: usize = 20;

/// The public feeds listed on the index and in the OPML list: topics, then providers, by name.
struct Listed {
    topics: Vec<Listing>,
    providers: Vec<Listing>,
}

impl Core {
    /// Builds and swaps in a new site snapshot from the catalog.
    pub(super) fn publish(&self, rejections: &[Rejection]) {
        let mut feeds = HashMap::with_capacity(self.catalog.len());
        let mut newest = DateTime::UNIX_EPOCH;
        let visibility = self.cfg.visibility();
        for (key, entry) in self.catalog.iter() {
            let Some(feed) = &entry.feed else { continue };
            // The index and the OPML list show public feeds only: a private change must not date them.
            if !visibility.is_private(key) {
                newest = newest.max(feed.rss.last_modified);
            }
            feeds.insert(key.path_stem(), feed.clone());
        }
        let listed = self.listed();
        let total = self.catalog.get(&FeedKey::All).map_or(0, |e| e.count);
        let indexing = self.progress.as_ref().map(|p| p.indexing());
        let status = Status {
            clippings: total,
            cold_start: self.cold,
            compacting: self.compacting,
            feeds: feeds.len(),
            files_waiting: self.waiting + self.recheck.len() as u64,
            indexing: indexing.clone(),
            providers: listed.providers.len(),
            ready: self.ready,
            rejected: rejections.iter().take(STATUS_REJECTIONS).map(|r| self.status_rejection(r)).collect(),
            rejected_total: rejections.len(),
            remap: self.remap.as_ref().map(|r| r.status()),
            renders: self.renders,
            rescans: self.rescans,
            store_error: self.store_problem(),
            store_ok: self.store_problem().is_none(),
            roots: self.roots.clone(),
            topics: listed.topics.len(),
            warnings: self.key_warnings.iter().take(STATUS_REJECTIONS).cloned().collect(),
        };
        let listed = Arc::new(listed);
        let site = Site {
            feeds,
            index: self.index(
                listed.clone(),
                total,
                newest,
                self.indexing_note(indexing.as_ref()),
                self.latest_stories.clone().unwrap_or_default(),
            ),
            opml: self.opml(listed, newest),
            status: status.to_json(),
            ready: self.ready,
            cold: self.cold,
            private: self.tokens.clone(),
            coming: self.remap.as_ref().map(|r| r.coming.clone()).unwrap_or_default(),
        };
        Metrics::set(&self.metrics.clippings_live, total);
        Metrics::set(&self.metrics.files_rejected_now, rejections.len() as u64);
        Metrics::set(&self.metrics.files_pending, self.waiting + self.recheck.len() as u64);
        Metrics::set(&self.metrics.store_ok, u64::from(self.store_problem().is_none()));
        Metrics::set(&self.metrics.feeds, site.feeds.len() as u64);
        self.site.store(Arc::new(site));
    }

    /// What is wrong with the store, if anything: its file gone or replaced, a write that failed.
    fn store_problem(&self) -> Option<String> {
        match (&self.store_gone, &self.store_error) {
            (None, None) => None,
            (Some(one), None) | (None, Some(one)) => Some(one.clone()),
            (Some(gone), Some(failed)) => Some(format!("{gone}; {failed}")),
        }
    }

    /// Re-reads the key notes when a change touched them, and logs each near-miss key once: when
    /// it first appears (at start-up, every key the store holds).
    pub(super) fn refresh_key_warnings(&mut self, b: &Batch<'_>) -> Result<()> {
        if !self.notes_changed {
            return Ok(());
        }
        let rows = b.key_notes()?;
        let warnings = clip::summarise_key_notes(rows.iter().map(|(path, note)| (path.as_str(), note)));
        let known: HashSet<(&str, &str)> =
            self.key_warnings.iter().map(|w| (w.key.as_str(), w.suggestion.as_str())).collect();
        let new: Vec<&clip::KeyWarning> =
            warnings.iter().filter(|w| !known.contains(&(w.key.as_str(), w.suggestion.as_str()))).collect();
        for w in new.iter().take(LOGGED_KEY_WARNINGS) {
            warn!("{w}");
        }
        if new.len() > LOGGED_KEY_WARNINGS {
            warn!(
                "{} more front-matter keys spelt close to known ones; see /api/status",
                new.len() - LOGGED_KEY_WARNINGS
            );
        }
        self.key_warnings = warnings;
        self.notes_changed = false;
        Ok(())
    }

    /// The public feeds that have documents: topics with clippings or configured (empty ones keep
    /// serving, and configured ones are listed), providers with clippings.
    fn listed(&self) -> Listed {
        let mut listed = Listed { topics: Vec::new(), providers: Vec::new() };
        let visibility = self.cfg.visibility();
        for (key, entry) in self.catalog.iter() {
            if entry.feed.is_none() || visibility.is_private(key) {
                continue;
            }
            let listing = Listing { key: key.clone(), name: entry.name.clone(), count: entry.count };
            match key {
                FeedKey::All => {}
                FeedKey::Topic(slug) if entry.count > 0 || self.cfg.topics.get(slug).is_some() => {
                    listed.topics.push(listing)
                }
                FeedKey::Provider(_) if entry.count > 0 => listed.providers.push(listing),
                _ => {}
            }
        }
        let by_name = |l: &Listing| (l.name.to_lowercase(), l.key.clone());
        listed.topics.sort_by_cached_key(by_name);
        listed.providers.sort_by_cached_key(by_name);
        listed
    }

    /// What the index says of work under way: the first reconcile of a new store (its feeds are
    /// not all there yet) or a large batch, with how far along it is; `None` otherwise.
    fn indexing_note(&self, indexing: Option<&Indexing>) -> Option<String> {
        match (indexing, self.cold) {
            (Some(i), _) if i.files_read < i.files_found => Some(format!(
                "Indexing: {} of {} clipping files read ({:.0} files/s). Feeds fill in when it is done.",
                i.files_read, i.files_found, i.files_per_second
            )),
            (Some(i), _) => Some(format!(
                "Indexing: {} files read; {} of {} clippings placed in their feeds.",
                i.files_found, i.items_done, i.items_found
            )),
            (None, true) => Some("Indexing: looking for clipping files. Feeds fill in when it is done.".into()),
            (None, false) => None,
        }
    }

    /// The HTML index, made on its first request.
    fn index(
        &self,
        listed: Arc<Listed>,
        total: u64,
        newest: DateTime<chrono::Utc>,
        note: Option<String>,
        stories: Arc<Vec<pages::StoryListing>>,
    ) -> Deferred {
        let (title, description, links) = (self.cfg.title.clone(), self.cfg.description.clone(), self.links.clone());
        Deferred::new(move || {
            let lists = pages::Lists { topics: &listed.topics, providers: &listed.providers, stories: &stories };
            let page = pages::index(&title, &description, &links, total, lists, note.as_deref());
            Rendered::new(page.into_bytes(), newest, "text/html; charset=utf-8")
        })
    }

    /// The OPML list of the public feeds, made on its first request.
    fn opml(&self, listed: Arc<Listed>, newest: DateTime<chrono::Utc>) -> Deferred {
        let (title, links): (String, Links) = (self.cfg.title.clone(), self.links.clone());
        Deferred::new(move || {
            let outline = |l: &Listing| Outline { key: l.key.clone(), title: l.name.clone() };
            let topics: Vec<Outline> = listed.topics.iter().map(outline).collect();
            let providers: Vec<Outline> = listed.providers.iter().map(outline).collect();
            Rendered::new(feed::opml(&title, newest, &topics, &providers, &links), newest, "text/x-opml; charset=utf-8")
        })
    }
}

impl Core {
    /// A rejection as `/api/status` shows it: its path relative to its root, and the root named
    /// as the configuration writes it (never where the configuration's folder is).
    fn status_rejection(&self, r: &Rejection) -> StatusRejection {
        StatusRejection {
            path: r.file.path.clone(),
            reason: r.reason.clone(),
            root: self.cfg.root_name(&r.file.root).to_string(),
            since: r.at.to_rfc3339(),
        }
    }
}
