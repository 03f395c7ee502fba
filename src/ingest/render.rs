//! Rendering and packing: every dirty feed's subscription document is read from the store (one
//! feed after the other, on the writer's connection), its new state recorded, and its documents
//! made in every format (side by side, with rayon). A large batch reads its next group while the
//! last is rendered and packed; a small change is packed after publication by the packer thread,
//! and so is the render after a topic remap, within a bound on the bytes held unpacked.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use anyhow::Result;
use chrono::{DateTime, Utc};
use rayon::prelude::*;
use tracing::debug;

use super::window::{self, Seen};
use super::{Core, Ingest, now};
use crate::feed::{self, Doc, FeedKey, FeedMeta, Format, Links, Page};
use crate::item::Item;
use crate::lru::Lru;
use crate::metrics::Metrics;
use crate::site::{FeedEntry, Rendered};
use crate::store::{Batch, FeedState, SlotHead};

/// How many feeds are read from the store before their documents are made in parallel.
pub(super) const RENDER_GROUP: usize = 8;

/// Bounds of [`ItemCache`]: items, and bytes counted as three times each item's stored record
/// (about its size once inflated and parsed).
const ITEM_CACHE_ENTRIES: usize = 1024;
/// How long a published version must stay current before the packer gzips it. While changes
/// come in quick succession (a folder synced, a burst of edits), each version of a busy feed is
/// replaced within milliseconds: packing every one of them cost about as much CPU as the
/// writer's own work per change, on the same two cores, for documents no client would fetch.
const PACK_SETTLE: Duration = Duration::from_millis(50);
const ITEM_CACHE_BYTES: usize = 6 << 20;
/// How many bytes of documents the render after a topic remap may publish before packing them
/// (the packer has them gzipped on the thread pool right after): readers wait for the new
/// feeds, not for their gzip form, which was about half of that render's CPU. A client asking
/// for gzip meanwhile gets it made then, once per document. At 100,000 clippings every feed's
/// documents come to about 95 MB, all within the bound: the reload's peak resident size rose
/// from about 270 to 300 MB (bench/README.md, the tenth round). Past the bound, documents are
/// packed as they are rendered, as in any other large batch (a cold build's documents always
/// are, which keeps its memory within its target).
pub(super) const UNPACKED_BYTES: usize = 128 << 20;

/// The items the last small changes' feeds showed, by id, with the slot head they were read
/// under. A feed's window is mostly the same from one change to the next, and reading an item
/// (its record inflated and parsed) was a fifth of the writer's time per change at 100,000
/// stored. An item is taken from here only when its edit time and the hash of everything stored
/// of it are those the store gives now, so what is kept never needs forgetting, even when the
/// transaction that read it is rolled back. Large batches neither use nor fill it.
pub(super) struct ItemCache(Lru<String, (SlotHead, Arc<Item>)>);

impl Default for ItemCache {
    fn default() -> ItemCache {
        ItemCache(Lru::new(ITEM_CACHE_ENTRIES, ITEM_CACHE_BYTES))
    }
}

impl ItemCache {
    /// The items in open slots `from..to` of a feed's log, as `Batch::slot_items` gives them:
    /// those held as the store has them now from here, the others read and kept.
    fn slot_items(&mut self, b: &Batch<'_>, key: &FeedKey, from: u64, to: u64) -> Result<Vec<Item>> {
        let heads = b.slot_heads(key, from, to)?;
        let mut items = Vec::with_capacity(heads.len());
        for head in heads {
            match self.0.get(&head.id) {
                Some((known, item)) if known == head => items.push(Item::clone(&item)),
                _ => {
                    let (item, stored) = b.head_item(&head)?;
                    self.0.insert(head.id.clone(), (head, Arc::new(item.clone())), stored.saturating_mul(3));
                    items.push(item);
                }
            }
        }
        Ok(items)
    }
}

/// What the store says a feed shows, read by [`Core::prepare_feed`]; making its documents needs
/// nothing else, so feeds are rendered side by side.
struct Prepared {
    started: Instant,
    count: u64,
    meta: FeedMeta,
    page: Page,
    items: Vec<Item>,
    tombstones: Vec<(String, DateTime<Utc>)>,
    state: FeedState,
    items_per_feed: usize,
    page_size: u64,
    window: window::Window,
    log_len: u64,
    generation: u64,
    /// Rendered before the first reconcile and never before: no date (see `prepare_feed`).
    provisional: bool,
    /// The feed's links, with the hubs it advertises.
    links: Links,
}

/// A feed's new entry and the time it took from reading to rendered.
struct Made {
    feed: FeedEntry,
    render_took: Duration,
}

/// Feeds rendered by one call, by key, with their live counts.
type RenderedFeeds = BTreeMap<FeedKey, (u64, FeedEntry)>;

impl Ingest {
    /// Renders the feeds whose content changed, records their change times, and publishes. On
    /// failure nothing is forgotten: the same feeds are rendered by the next successful call.
    pub(super) fn render(&mut self) -> Result<()> {
        // What a remap left for its render is this render's alone, whatever becomes of it.
        let unpacked = std::mem::take(&mut self.core.unpacked);
        let rendered = self.render_feeds(unpacked);
        if std::mem::take(&mut self.remap_open) {
            // The remap's WAL copied in and cut once its feeds are out (the cut waits for readers).
            // A failure here is the WAL's upkeep, not the render's: told, not returned.
            if let Err(e) = self.store.end_remap() {
                tracing::warn!("ending the remap's hold on the store's checkpoints failed: {e:#}");
            }
        }
        rendered
    }

    /// [`Ingest::render`], with `unpacked` bytes of documents that may be published before they
    /// are packed.
    fn render_feeds(&mut self, unpacked: usize) -> Result<()> {
        let t0 = Instant::now();
        let t = now();
        let b = self.store.batch()?;
        let dirty: Vec<FeedKey> = self.core.dirty.iter().cloned().collect();
        // A large batch packs as it renders, unless it follows a remap (within a bound); a
        // small change leaves packing to the packer.
        let bulk = dirty.len() > RENDER_GROUP;
        let mut cache = std::mem::take(&mut self.core.items);
        let rendered = self.core.render_groups(&b, &dirty, t, bulk, unpacked, &mut cache);
        self.core.items = cache;
        let rendered = rendered?;
        let feeds_done = Instant::now();
        let rejections = b.rejections()?;
        self.core.refresh_key_warnings(&b)?;
        let latest = match &self.core.latest_stories {
            Some(l) if !dirty.contains(&FeedKey::All) => l.clone(),
            _ => Arc::new(self.core.latest_stories(&b)?),
        };
        b.commit()?;
        self.core.latest_stories = Some(latest);
        self.core.rejections = rejections.clone();
        let committed = Instant::now();
        self.core.dirty.clear();
        self.core.history.clear();
        let rendered_count = rendered.len();
        self.core.renders += rendered_count as u64;
        Metrics::add(&self.core.metrics.renders, rendered_count as u64);
        let to_pack = !bulk || unpacked > 0;
        let mut fresh = Vec::with_capacity(if to_pack { rendered_count } else { 0 });
        let mut changed = Vec::with_capacity(rendered_count);
        for (key, (count, feed)) in rendered {
            self.core.generations.insert(key.clone(), feed.generation);
            let feed = Arc::new(feed);
            self.core.note_unsettled(&feed);
            let name = self.core.feed_name(&key);
            let entry = self.core.catalog.entry(key);
            entry.name = name;
            entry.count = count;
            if to_pack {
                // (Packing a feed packed already does nothing.)
                fresh.push(feed.clone());
            }
            changed.push((entry.feed.replace(feed.clone()), feed));
        }
        self.core.publish(&rejections);
        self.core.push_changes(&changed);
        self.core.pack_later(fresh, bulk);
        debug!(
            feeds = rendered_count,
            feeds_ms = (feeds_done - t0).as_secs_f64() * 1e3,
            commit_ms = (committed - feeds_done).as_secs_f64() * 1e3,
            publish_ms = committed.elapsed().as_secs_f64() * 1e3,
            "rendered"
        );
        Ok(())
    }
}

impl Core {
    /// Remembers when a feed published with an ambiguous date can settle (the second after
    /// that date), or forgets it once its dates are plain.
    pub(super) fn note_unsettled(&mut self, feed: &FeedEntry) {
        let mut dates = Vec::with_capacity(2);
        if feed.rss.ambiguous {
            dates.push(feed.rss.last_modified);
        }
        if feed.history_ambiguous {
            dates.push(feed.history_at);
        }
        match dates.into_iter().max() {
            Some(at) => self.unsettled.insert(feed.key.clone(), at + chrono::Duration::seconds(1)),
            None => self.unsettled.remove(&feed.key),
        };
    }

    /// When the earliest ambiguous date can settle, if any feed has one.
    pub(super) fn settle_at(&self) -> Option<Instant> {
        let due = self.unsettled.values().min()?;
        let wait = (*due - Utc::now()).to_std().unwrap_or_default();
        Some(Instant::now() + wait)
    }

    /// Marks for rendering the feeds whose ambiguous date the clock has passed; `true` if any.
    pub(super) fn settle_due(&mut self) -> bool {
        let t = now();
        let due: Vec<FeedKey> = self.unsettled.iter().filter(|(_, at)| **at <= t).map(|(k, _)| k.clone()).collect();
        for key in &due {
            self.unsettled.remove(key);
        }
        self.dirty.extend(due.iter().cloned());
        !due.is_empty()
    }

    /// What a feed shows is read from the store one feed after the other (one connection); the
    /// documents are then made side by side, a group at a time, so that a large batch does not
    /// hold every feed's items at once. In a large batch (`bulk`) the next group is read while
    /// the last one is rendered and packed (gzipped, original dropped), so neither core waits and
    /// no more than two groups' originals exist at once, besides the first `unpacked` bytes of
    /// documents, left for the packer after publication. A small change is one group, rendered
    /// at once.
    fn render_groups(
        &self,
        b: &Batch<'_>,
        dirty: &[FeedKey],
        t: DateTime<Utc>,
        bulk: bool,
        unpacked: usize,
        cache: &mut ItemCache,
    ) -> Result<RenderedFeeds> {
        let mut rendered = BTreeMap::new();
        let room = std::sync::atomic::AtomicUsize::new(unpacked);
        let make = |prepared: Vec<Prepared>| -> Vec<(u64, Made)> {
            let done: Vec<(u64, Made)> = prepared.into_par_iter().map(Prepared::render).collect();
            if bulk {
                done.par_iter().for_each(|(_, made)| {
                    let size = made.feed.rss.len() + made.feed.atom.len() + made.feed.json.len();
                    let held = room.fetch_update(Relaxed, Relaxed, |left| left.checked_sub(size)).is_ok();
                    if !held {
                        made.feed.pack();
                    }
                });
            }
            done
        };
        let metrics = self.metrics.clone();
        let mut keep = |done: Vec<(u64, Made)>| {
            for (count, made) in done {
                metrics.render_seconds.observe(made.render_took);
                rendered.insert(made.feed.key.clone(), (count, made.feed));
            }
        };
        std::thread::scope(|scope| -> Result<()> {
            let mut in_flight: Option<std::thread::ScopedJoinHandle<'_, Vec<(u64, Made)>>> = None;
            for group in dirty.chunks(RENDER_GROUP) {
                let mut prepared = Vec::with_capacity(group.len());
                for key in group {
                    self.heartbeat.beat();
                    prepared.push(self.prepare_feed(b, key, t, (!bulk).then_some(&mut *cache))?);
                }
                if let Some(h) = in_flight.take() {
                    keep(h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
                }
                if bulk {
                    let make = &make;
                    in_flight = Some(scope.spawn(move || make(prepared)));
                } else {
                    keep(make(prepared));
                }
            }
            if let Some(h) = in_flight.take() {
                keep(h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
            }
            Ok(())
        })?;
        Ok(rendered)
    }

    /// Hands newly published feeds to the packer thread (or packs them here without one): a
    /// small change's, to pack once settled; a large batch's (the render after a remap), to pack
    /// at once, side by side. The packer is given weak handles: a version replaced before its
    /// turn is freed at once rather than kept, unpacked, in the queue.
    fn pack_later(&self, fresh: Vec<Arc<FeedEntry>>, batch: bool) {
        if fresh.is_empty() {
            return;
        }
        let unsent = match &self.packer {
            Some(packer) if batch => {
                let weak = fresh.iter().map(Arc::downgrade).collect();
                packer.send(ToPack::Batch(weak)).map_err(|_| fresh).err()
            }
            Some(packer) => {
                let mut left = Vec::new();
                for feed in fresh {
                    if packer.send(ToPack::Settle(Arc::downgrade(&feed), Instant::now())).is_err() {
                        left.push(feed);
                    }
                }
                Some(left)
            }
            None => Some(fresh),
        };
        for feed in unsent.unwrap_or_default() {
            feed.pack();
        }
    }

    /// Title and description of a feed.
    fn describe(&self, key: &FeedKey, name: &str) -> (String, String) {
        let site = &self.cfg.title;
        match key {
            FeedKey::All => (site.clone(), self.cfg.description.clone()),
            FeedKey::Topic(slug) => {
                let desc = self.cfg.topics.get(slug).and_then(|t| t.description.clone());
                (format!("{site}: {name}"), desc.unwrap_or_else(|| format!("News clippings about {name}")))
            }
            FeedKey::Provider(domain) if name == domain => {
                (format!("{site}: {name}"), format!("News clippings from {domain}"))
            }
            FeedKey::Provider(domain) => (format!("{site}: {name}"), format!("News clippings from {name} ({domain})")),
        }
    }

    /// A feed's display name: as known, else its title (the feed of everything), slug or domain.
    fn feed_name(&self, key: &FeedKey) -> String {
        match self.catalog.get(key).map(|e| e.name.as_str()) {
            Some(name) if !name.is_empty() => name.to_string(),
            _ => match key {
                FeedKey::All => self.cfg.title.clone(),
                FeedKey::Topic(s) => s.clone(),
                FeedKey::Provider(d) => d.clone(),
            },
        }
    }

    /// What each known feed's documents take from the configuration (title, description,
    /// page size, links and the hubs they advertise), by feed: a reload renders again only the
    /// feeds whose shape it changed, besides those whose items moved (the remap marks those).
    pub(super) fn feed_shapes(&self) -> BTreeMap<FeedKey, String> {
        let shape = |key: &FeedKey| {
            let name = self.feed_name(key);
            let (describe, per_feed) = (self.describe(key, &name), self.items_per_feed(key));
            format!("{describe:?} {per_feed} {:?} {:?}", self.cfg.title, self.feed_links(key))
        };
        self.catalog.keys().map(|key| (key.clone(), shape(key))).collect()
    }

    /// Items per feed for a feed: its topic's own setting, else the global one.
    fn items_per_feed(&self, key: &FeedKey) -> usize {
        match key {
            FeedKey::Topic(slug) => self.cfg.topics.get(slug).and_then(|t| t.items_per_feed),
            _ => None,
        }
        .unwrap_or(self.cfg.items_per_feed)
    }

    /// Reads what one feed's subscription document shows and records its new state; the
    /// documents are then made by [`Prepared::render`]. Its time moves to `t` only when what it
    /// shows changed; its history time when anything in it changed. Its items come through
    /// `cache` when one is given.
    fn prepare_feed(
        &self,
        b: &Batch<'_>,
        key: &FeedKey,
        t: DateTime<Utc>,
        cache: Option<&mut ItemCache>,
    ) -> Result<Prepared> {
        let started = Instant::now();
        let (name, count) = (self.feed_name(key), self.catalog.get(key).map_or(0, |e| e.count));
        let items_per_feed = self.items_per_feed(key);
        let page_size = window::page_size(items_per_feed);
        let log_len = b.log_len(key)?;
        let win = window::window(log_len, page_size, |from, to| b.open_slots(key, from, to))?;
        let items = match cache {
            Some(cache) => cache.slot_items(b, key, win.start, log_len)?,
            None => b.slot_items(key, win.start, log_len)?,
        };
        let tombstones = b.tombstones(key, DateTime::UNIX_EPOCH)?;
        let (title, description) = self.describe(key, &name);
        let icon = match key {
            FeedKey::Provider(_) => items.iter().find_map(|i| i.data.clip.provider.as_ref()?.images.first().cloned()),
            _ => None,
        };
        let mut meta =
            FeedMeta { site_title: self.cfg.title.clone(), title, description, updated: t, key: key.clone(), icon };
        let page = Page::Current { newest_archive: win.archive_pages.checked_sub(1), page_size };
        let history_changed = self.history.contains(key);
        let links = self.feed_links(key);
        let seen = Seen {
            signature: window::signature(&meta, &page, &items, &tombstones, &links.identity()),
            meta: window::meta_hash(&meta, self.links.base()),
            page_size,
            log_len,
            history_changed,
            newest: items.iter().map(|i| i.updated).max(),
        };
        let mut old = b.feed_state(key)?;
        // A store written before the signature's form: unchanged by the old form is unchanged.
        if let Some(o) = old.as_mut().filter(|o| window::is_legacy(&o.signature))
            && o.signature == window::legacy_signature(&meta, &page, &items, &tombstones, &links.identity())
        {
            o.signature.clone_from(&seen.signature);
        }
        let old_history = old.as_ref().map(|o| (o.history_at, o.history_ambiguous));
        // Before the first reconcile, a feed never rendered is provisional: served without a
        // date (validated by its ETag only) and not recorded, so the first reconcile's version
        // is its first, and a fresh start does not date it twice within one second.
        let provisional = old.is_none() && !self.ready;
        let state = window::next_state(old, seen, t);
        if !provisional {
            b.set_feed_state(key, &state)?;
        }
        meta.updated = state.changed_at;
        // A history date that settled dates cached views anew, as a change does.
        let history_moved = history_changed || old_history != Some((state.history_at, state.history_ambiguous));
        let generation = self.generations.get(key).copied().unwrap_or(0) + u64::from(history_moved);
        Ok(Prepared {
            started,
            count,
            meta,
            page,
            items,
            tombstones,
            state,
            items_per_feed,
            page_size,
            window: win,
            log_len,
            generation,
            provisional,
            links,
        })
    }
}

impl Prepared {
    /// The feed's documents in every format.
    fn render(self) -> (u64, Made) {
        let Prepared { started, count, meta, page, items, tombstones, state, links, .. } = &self;
        let doc = Doc { meta, page, items, tombstones };
        let render = |format: Format| {
            let mut r = Rendered::new(feed::render(format, &doc, links), meta.updated, format.content_type());
            r.ambiguous = state.ambiguous;
            r.dated = !self.provisional;
            r
        };
        let (rss, (atom, json)) =
            rayon::join(|| render(Format::Rss), || rayon::join(|| render(Format::Atom), || render(Format::Json)));
        let (count, render_took) = (*count, started.elapsed());
        let feed = FeedEntry {
            key: self.meta.key.clone(),
            rss,
            atom,
            json,
            items_per_feed: self.items_per_feed,
            page_size: self.page_size,
            archive_pages: self.window.archive_pages,
            window_start: self.window.start,
            log_len: self.log_len,
            meta_at: self.state.meta_at,
            retired_pages: self.state.retired.clone(),
            generation: self.generation,
            history_at: self.state.history_at,
            history_ambiguous: self.state.history_ambiguous,
            meta: self.meta,
        };
        (count, Made { feed, render_took })
    }
}

/// Published feeds for the packer.
pub(super) enum ToPack {
    /// A small change's feed, with when it was published: packed once it has settled.
    Settle(Weak<FeedEntry>, Instant),
    /// The feeds of a large batch published before they were packed (the render after a remap,
    /// see [`UNPACKED_BYTES`]): packed at once, side by side on the thread pool, at its
    /// priority rather than the packer's, since they hold most of a large site's documents.
    Batch(Vec<Weak<FeedEntry>>),
}

/// Starts the thread that packs published feeds (gzip made, original dropped), so that the
/// writer is free for the next change meanwhile. A small change's feed waits its turn until it
/// has been published for [`PACK_SETTLE`]; a feed replaced before then is gone, and skipped. A
/// batch is packed at once. `None` if the thread cannot start: the writer then packs them itself.
pub(super) fn spawn_packer() -> Option<std::sync::mpsc::Sender<ToPack>> {
    let (tx, rx) = std::sync::mpsc::channel::<ToPack>();
    let started = std::thread::Builder::new().name("clipfeed-pack".into()).spawn(move || {
        // Background work: the writer, the watcher and the HTTP workers go first. (Linux keeps
        // a nice value per thread.)
        // SAFETY: gettid and setpriority have no preconditions; a failure only leaves the nice
        // value as it was.
        #[cfg(target_os = "linux")]
        unsafe {
            libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10);
        }
        for job in rx {
            match job {
                ToPack::Settle(feed, published) => {
                    // Feeds come in the order they were published, so waiting for each in turn
                    // waits for none longer than its own settling time.
                    std::thread::sleep(PACK_SETTLE.saturating_sub(published.elapsed()));
                    if let Some(feed) = feed.upgrade() {
                        feed.pack();
                    }
                }
                ToPack::Batch(feeds) => feeds.par_iter().filter_map(Weak::upgrade).for_each(|f| f.pack()),
            }
        }
    });
    started.ok().map(|_| tx)
}
