//! Applying changes: recording what reading files gave (a good parse, a rejection, a removal),
//! bringing every item those files name up to date, and writing the feed-log deltas (an item
//! entering, changing in, or leaving each feed). A small batch is one transaction; a large one
//! is recorded a chunk at a time and its items refreshed oldest first.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use tracing::{debug, info, warn};

use super::bulk::{Loaded, by_date, json_of, with_json};
pub(super) use super::membership::{feeds_for, feeds_of, put_names};
use super::scan::{self, Change};
use super::to_read::ToRead;
use super::{Core, Ingest, now, window};
use crate::feed::FeedKey;
use crate::item::{self, Item, Source};
use crate::metrics::Metrics;
use crate::store::{Batch, FileId};

/// A file modified less than this long ago that does not parse is looked at again after this
/// long before it is rejected: it may still be being written.
const RECENT: Duration = Duration::from_secs(2);

/// How many item refreshes (or removals) go into one transaction.
pub(super) const CHUNK: usize = 2000;
/// How many files a large batch reads and parses (in parallel) and records per transaction: the
/// bound on parsed clippings held in memory at once.
pub(super) const PARSE_CHUNK: usize = 512;

/// At most this many files read in one batch are named in the log at info; the rest are named
/// at debug, and the batch ends with a summary. Rejections and warnings are each named at warn.
const NAMED_PER_BATCH: u64 = 20;

/// The files of the current batch read and rejected so far, for naming and the summary.
#[derive(Debug, Default)]
pub(super) struct Named {
    read: std::cell::Cell<u64>,
    rejected: std::cell::Cell<u64>,
}

impl Named {
    fn reset(&self) {
        self.read.set(0);
        self.rejected.set(0);
    }

    /// Counts one file; whether it is still named at its own level.
    fn next(counter: &std::cell::Cell<u64>) -> bool {
        counter.set(counter.get() + 1);
        counter.get() <= NAMED_PER_BATCH
    }

    /// One line for what was not named file by file.
    fn summarise(&self) {
        let (read, rejected) = (self.read.get(), self.rejected.get());
        if read > NAMED_PER_BATCH {
            info!(
                read,
                rejected,
                "{read} clipping files read, {rejected} rejected (the first {NAMED_PER_BATCH} read named above, the rest at debug level; each rejection above and in /api/status)"
            );
        }
    }
}

/// What one transaction changes in the writer's memory besides the store, applied only once it
/// has committed: a transaction that fails or panics leaves the writer as it was.
#[derive(Debug, Default)]
pub(super) struct Effects {
    /// Feeds in which an item entered, changed or left: to render, and their history changed.
    pub(super) feeds: BTreeSet<FeedKey>,
    /// The change in each feed's live count.
    pub(super) counts: BTreeMap<FeedKey, i64>,
    /// Display names of topics and providers, as the clippings give them.
    pub(super) names: BTreeMap<FeedKey, String>,
    /// Files rejected while they may still be being written, to look at again (when, path).
    recheck: Vec<(Instant, PathBuf)>,
    /// Whether a file's notes on front-matter keys changed (the summary is made again).
    notes_changed: bool,
    tally: Tally,
    /// Stories this transaction changed, whose story logs it brings up to date (`log_deltas`).
    pub(super) stories: BTreeSet<String>,
}

impl Effects {
    pub(super) fn apply(self, core: &mut Core) {
        for (key, name) in self.names {
            core.catalog.entry(key).name = name;
        }
        for (key, change) in self.counts {
            let entry = core.catalog.entry(key);
            entry.count = entry.count.saturating_add_signed(change);
        }
        core.dirty.extend(self.feeds.iter().cloned());
        core.history.extend(self.feeds);
        core.recheck.extend(self.recheck);
        core.notes_changed |= self.notes_changed;
        self.tally.count(&core.metrics);
    }
}

/// The files one transaction recorded, added to the counters once it has committed.
#[derive(Debug, Default)]
struct Tally {
    /// Read and parsed, accepted or rejected.
    parsed: u64,
    rejected: u64,
    /// Files the store knew that are gone.
    removed: u64,
}

impl Tally {
    fn count(&self, metrics: &Metrics) {
        Metrics::add(&metrics.files_parsed, self.parsed);
        Metrics::add(&metrics.files_rejected, self.rejected);
        Metrics::add(&metrics.files_removed, self.removed);
    }
}

/// An item whose merged content differs from what the store holds, to be written.
#[derive(Debug)]
pub(super) struct Changed {
    pub(super) key: String,
    pub(super) id: String,
    pub(super) data: crate::item::ItemData,
    /// [`crate::item::ItemData::hash`] of `data`.
    pub(super) hash: String,
    pub(super) first_seen: DateTime<Utc>,
    /// The stored item's `updated` time and shown hash; `None` when it is new or back.
    pub(super) live: Option<(DateTime<Utc>, String)>,
    /// The feeds it is in.
    pub(super) before: BTreeSet<FeedKey>,
}

/// How an item changed: which feeds it was in, which it is in now, whether its content changed.
#[derive(Debug)]
pub(super) struct Delta {
    pub(super) id: String,
    pub(super) published: DateTime<Utc>,
    pub(super) before: BTreeSet<FeedKey>,
    pub(super) after: BTreeSet<FeedKey>,
    pub(super) changed: bool,
}

impl Ingest {
    /// Looks at files afresh: records each one's parse (or its removal) and brings every item
    /// they name up to date. A small batch is one transaction. A large one (a cold start, a
    /// folder moved in) is parsed and recorded a chunk at a time, so memory stays bounded
    /// whatever its size, and its items are then refreshed oldest first, so the feed logs (and
    /// the archive pages) fill in date order. The `pending` table carries the items from the
    /// first phase to the second across a crash, or a stop: a large batch ends at the chunk
    /// after the stop is raised. With `sweep` (a reconcile), items an interrupted batch left
    /// pending are refreshed with this batch, taken as a large one whatever its size, in one
    /// date order with its own (the watcher's batches leave them to the next reconcile). The
    /// feeds whose content may have changed are added to `core.dirty` as each refresh commits.
    pub(super) fn apply(&mut self, removed: Vec<FileId>, to_load: ToRead, sweep: bool) -> Result<()> {
        self.core.named.reset();
        let t = now();
        let left = if sweep { self.store.batch()?.pending_count()? } else { 0 };
        if left > 0 {
            info!(items = left, "the items an interrupted batch recorded are refreshed with this one, in date order");
        }
        // A cold store is built with its per-row upkeep set aside (`store/bulk.rs`).
        // (One whose end failed is ended by the next batch.)
        let work = !removed.is_empty() || !to_load.is_empty() || left > 0;
        let cold = ((self.core.cold && work) || self.store.in_cold()) && self.store.begin_cold()?;
        let outcome = if left == 0 && removed.len() + to_load.len() <= PARSE_CHUNK {
            let mut changes: Vec<Loaded> = removed.into_iter().map(|id| (Change::Removed(id), None)).collect();
            changes.extend(with_json(scan::load_all(to_load.to_pairs(), self.core.limits, &self.core.heartbeat)));
            let outcome = self.refresh_and_commit(t, |core, b, fx| {
                let mut keys = HashMap::new();
                core.record(b, changes, t, &mut keys, fx)?;
                Ok(by_date(keys))
            });
            if cold { outcome.and(self.store.end_cold()) } else { outcome }
        } else {
            self.progress_begin(to_load.len());
            let mut outcome = self.store.begin_bulk().and_then(|()| self.apply_large(removed, to_load, t));
            // Cut short by a stop: the coverage is filled at the next open, as after a crash
            // (filling it now would hold the stop for seconds at 100,000 items).
            let stopped = outcome.as_ref().is_err_and(crate::job::is_stopped);
            if cold && !stopped {
                outcome = outcome.and(self.store.end_cold());
            }
            let ended = self.store.end_bulk();
            if self.core.cold && outcome.is_ok() {
                // The compaction takes seconds at 100,000 items: done by the reconcile once the
                // build's feeds are published, or, after a stop, by the next start's (which
                // also publishes the build: the store stays cold till then).
                outcome = self
                    .store
                    .batch()
                    .and_then(|b| b.set_meta(super::large::COMPACT_DUE, "1").and_then(|()| b.commit()));
                if self.core.stop.raised() {
                    outcome = outcome.and(Err(crate::job::Stopped.into()));
                }
            }
            self.progress_end();
            outcome.and(ended)
        };
        self.core.named.summarise();
        outcome
    }

    /// In one transaction: `prepare` writes what it must and names the items to refresh, which
    /// are then brought up to date with their feed logs, and the whole commits. Only then does
    /// the writer's memory (dirty feeds, counts, names) change.
    pub(super) fn refresh_and_commit(
        &mut self,
        t: DateTime<Utc>,
        prepare: impl FnOnce(&Core, &Batch<'_>, &mut Effects) -> Result<Vec<String>>,
    ) -> Result<()> {
        let core = &self.core;
        let mut fx = Effects::default();
        let b = self.store.batch()?;
        let keys = prepare(core, &b, &mut fx)?;
        let mut deltas = Vec::new();
        if super::cold::side_by_side(keys.len()) {
            deltas = core.refresh_side_by_side(&b, &keys, t, &mut fx)?;
        } else {
            for key in &keys {
                core.heartbeat.beat();
                deltas.extend(core.refresh_item(&b, key, t, &mut fx)?);
            }
        }
        core.log_deltas(&b, deltas, t, &mut fx)?;
        injected_panic(&keys);
        b.commit()?;
        fx.apply(&mut self.core);
        Ok(())
    }

    /// Merges again, once (meta `migrated_merged_also`), the items of a store written before an
    /// item kept what its other files bring to its privacy (`ItemData::also`): every item more
    /// than one file names, refreshed from its files in one transaction, so that an article
    /// filed by a private news site or with a private keyword in its second file is private from
    /// this start on. Items of one file are as they were, and are not read.
    pub(super) fn merge_several_files_once(&mut self) -> Result<()> {
        let b = self.store.batch()?;
        if b.meta(MERGED_ALSO)?.is_some() {
            return Ok(());
        }
        let (t, mut fx, mut deltas) = (now(), Effects::default(), Vec::new());
        let keys = b.keys_of_several_files()?;
        for key in &keys {
            self.core.heartbeat.beat();
            deltas.extend(self.core.refresh_item(&b, key, t, &mut fx)?);
        }
        let moved = deltas.iter().filter(|d| d.before != d.after).count();
        self.core.log_deltas(&b, deltas, t, &mut fx)?;
        b.set_meta(MERGED_ALSO, "1")?;
        b.commit()?;
        fx.apply(&mut self.core);
        if !keys.is_empty() {
            info!(items = keys.len(), moved, "articles filed in several files merged again");
        }
        Ok(())
    }
}

/// The meta key set once the items of several files are merged again with what their other
/// files bring (`Ingest::merge_several_files_once`).
pub(super) const MERGED_ALSO: &str = "migrated_merged_also";

impl Core {
    /// Records what reading files gave: a good parse, a rejection, or a removal. Notes in `keys`
    /// every item key involved, with the earliest clipping date seen for it (the order in which
    /// items are then refreshed), and in `fx` the files recorded and those to look at again.
    pub(super) fn record(
        &self,
        b: &Batch<'_>,
        mut changes: Vec<Loaded>,
        t: DateTime<Utc>,
        keys: &mut HashMap<String, DateTime<Utc>>,
        fx: &mut Effects,
    ) -> Result<()> {
        let tally = &mut fx.tally;
        let mut note = |key: String, at: Option<DateTime<Utc>>| {
            let at = at.unwrap_or(DateTime::<Utc>::MAX_UTC);
            let e = keys.entry(key).or_insert(at);
            *e = (*e).min(at);
        };
        // Removals first: a file renamed within the batch leaves before it arrives.
        changes.sort_by_key(|(c, _)| !matches!(c, Change::Removed(_)));
        for (change, json) in changes {
            self.heartbeat.beat();
            match change {
                Change::Parsed { id, stat, result: Ok(parsed) } => {
                    let key = item::key_for(&parsed.clipping, &id.path);
                    // A clipping without a URL is its path; the same path under two roots
                    // would silently make two files one item.
                    if key.starts_with("path:")
                        && let Some(other) = b.files_with_key(&key)?.into_iter().find(|f| f.root != id.root)
                    {
                        let reason = format!(
                            "{} under root {} has the same path and no webUrl either; give one of them a webUrl or another name",
                            other.path,
                            self.cfg.root_name(&other.root)
                        );
                        if b.put_file_rejected(&id, stat, &reason, t)? {
                            self.log_rejected(&id, &reason);
                        }
                        tally.parsed += 1;
                        tally.rejected += 1;
                        continue;
                    }
                    if let Some(old) = b.file(&id)?.and_then(|r| r.item_key)
                        && old != key
                    {
                        self.recheck_twins(b, &id, &old, &mut fx.recheck)?;
                        note(old, None);
                    }
                    for w in &parsed.warnings {
                        warn!(root = %id.root, path = %id.path, "{w}");
                    }
                    if Named::next(&self.named.read) {
                        info!(root = %id.root, path = %id.path, "clipping read");
                    } else {
                        debug!(root = %id.root, path = %id.path, warnings = parsed.warnings.len(), "clipping read");
                    }
                    b.put_file_ok_json(&id, stat, &key, &json_of(json, &parsed.clipping)?)?;
                    // Keys spelt close to known ones: logged summarised, once per key (publish).
                    fx.notes_changed |= b.put_key_notes(&id, &parsed.key_notes)?;
                    tally.parsed += 1;
                    note(key, parsed.clipping.published);
                }
                Change::Parsed { id, stat, result: Err(reason) } => {
                    // A file modified a moment ago may still be being written (a writer that
                    // appends in several opens): it gets RECENT to finish before a rejection
                    // is recorded, and its last good version keeps serving meanwhile.
                    let age_ns = t.timestamp_nanos_opt().unwrap_or(i64::MAX).saturating_sub(stat.mtime_ns);
                    if age_ns < RECENT.as_nanos() as i64 {
                        debug!(path = %id.path, %reason, "not yet a clipping; looking again shortly");
                        let abs = Path::new(&id.root).join(&id.path);
                        fx.recheck.push((Instant::now() + RECENT, abs));
                        continue;
                    }
                    // Logged once: a file read again, unchanged (a second event), is not news.
                    if b.put_file_rejected(&id, stat, &reason, t)? {
                        self.log_rejected(&id, &reason);
                    } else {
                        debug!(root = %id.root, path = %id.path, "read again unchanged, refused as before");
                    }
                    tally.parsed += 1;
                    tally.rejected += 1;
                }
                Change::Removed(id) => {
                    debug!(path = %id.path, "clipping file removed");
                    let (known, old) = b.remove_file(&id)?;
                    fx.notes_changed |= b.drop_key_notes(&id)?;
                    tally.removed += u64::from(known);
                    if let Some(old) = old {
                        self.recheck_twins(b, &id, &old, &mut fx.recheck)?;
                        note(old, None);
                    }
                }
            }
        }
        Ok(())
    }

    /// A file whose item was its path (`old`, no URL) is gone or has another key now: a file at
    /// the same path under another root, refused as its twin, may be good now; it is read again.
    fn recheck_twins(
        &self,
        b: &Batch<'_>,
        id: &FileId,
        old: &str,
        recheck: &mut Vec<(Instant, PathBuf)>,
    ) -> Result<()> {
        if old.starts_with("path:") {
            let roots: Vec<String> = self.cfg.clippings.iter().map(|r| scan::root_key(r)).collect();
            let twins = b.rejected_twins(id, &roots)?.into_iter();
            recheck.extend(twins.map(|f| (Instant::now(), Path::new(&f.root).join(&f.path))));
        }
        Ok(())
    }

    /// Names a rejected file at warn, and counts it for the batch's summary.
    fn log_rejected(&self, id: &FileId, reason: &str) {
        self.named.rejected.set(self.named.rejected.get() + 1);
        warn!(root = %id.root, path = %id.path, %reason, "clipping rejected");
    }

    /// Recomputes the item for `key` from its files. Writes it when its content changed, or
    /// tombstones it when no file names it any more. Returns what changed, for the feed logs.
    pub(super) fn refresh_item(
        &self,
        b: &Batch<'_>,
        key: &str,
        t: DateTime<Utc>,
        fx: &mut Effects,
    ) -> Result<Option<Delta>> {
        let sources = b.sources(key)?;
        let state = b.item_state(key)?;
        let live = state.as_ref().filter(|s| !s.deleted);
        let id = item::id_for(key);
        // The feeds the item is in are the feeds where it has an open slot.
        let before: BTreeSet<FeedKey> = b.open_feeds(&id)?.iter().filter_map(|s| FeedKey::from_stem(s)).collect();
        if sources.is_empty() {
            if live.is_none() {
                return Ok(None);
            }
            b.tombstone_item(key, t)?;
            super::story_log::remove(b, &id, t, &mut fx.stories)?;
            return Ok(Some(Delta { id, published: t, before, after: BTreeSet::new(), changed: true }));
        }
        let first_seen = state.as_ref().map_or(t, |s| s.first_seen);
        let refs: Vec<Source<'_>> = sources.iter().map(|(p, c)| Source { rel_path: p, clipping: c }).collect();
        let data = item::merge(&refs, first_seen, &self.cfg.topics).context("merging the files of an item")?;
        let hash = data.hash();
        if live.is_some_and(|s| s.hash == hash) {
            // A file written again as it was keeps no copy of the item's clipping.
            b.share_sources(key, &data.clip)?;
            // The clipping is as it was, but the rules may not be (a topic or news site made
            // private or public): its feeds are worked out again all the same.
            let after = self.feeds_of(&data);
            let moved = after != before;
            if moved {
                self.regroup_if_reclassed(b, &id, &self.cfg.visibility().class(&after), t, fx)?;
            }
            return Ok(moved.then_some(Delta { id, published: data.published, before, after, changed: false }));
        }
        let live = live.map(|s| (s.updated, s.shown.clone()));
        let changed = Changed { key: key.to_string(), id, data, hash, first_seen, live, before };
        self.store_changed(b, changed, t, fx, true).map(Some)
    }

    /// Writes an item whose content changed, with its topics' and news site's names. With
    /// `regroup`, its story is worked out again from its clipping. Returns its move, for the logs.
    pub(super) fn store_changed(
        &self,
        b: &Batch<'_>,
        c: Changed,
        t: DateTime<Utc>,
        fx: &mut Effects,
        regroup: bool,
    ) -> Result<Delta> {
        let Changed { key, id, data, hash, first_seen, live, before } = c;
        // Only a change subscribers can see makes the item updated; a change to, say, its
        // quality alone is stored (filters use it) without touching its time or its slots.
        let shown = data.shown_hash();
        let edited = live.as_ref().is_none_or(|(_, s)| *s != shown);
        // `updated` means edited: an item new to its feeds is as new as its own date (its first-seen
        // time when it has none), so a store rebuilt from the same files gives the same values.
        let updated = match live {
            Some((u, _)) if !edited => u,
            Some((u, _)) => u.max(t),
            None => data.published,
        };
        let it = Item { id: id.clone(), updated, data };
        b.put_item(&key, &it, first_seen, &hash, &shown)?;
        let after = self.feeds_of(&it.data);
        let class = self.cfg.visibility().class(&after);
        if regroup {
            let f = super::stories::features(&it.data.clip, &class);
            super::story_log::put(b, &id, f, t, &mut fx.stories)?;
        } else {
            self.regroup_if_reclassed(b, &id, &class, t, fx)?;
        }
        put_names(b, &it.data, &after, fx)?;
        Ok(Delta { id, published: it.data.published, before, after, changed: edited })
    }

    /// Puts an item again in a story of its visibility class `class` when it is grouped in
    /// another (its feeds' privacy changed while its clipping did not): clippings are grouped
    /// only with their own class.
    pub(super) fn regroup_if_reclassed(
        &self,
        b: &Batch<'_>,
        id: &str,
        class: &str,
        t: DateTime<Utc>,
        fx: &mut Effects,
    ) -> Result<()> {
        if let Some(f) = super::stories::reclassed(b, id, class)? {
            super::story_log::put(b, id, f, t, &mut fx.stories)?;
        }
        Ok(())
    }

    /// The feeds an item appears in under the rules in force: everything, its topics, its news
    /// site, narrowed by `Visibility` (a clipping in a private feed stays out of every public one).
    fn feeds_of(&self, data: &crate::item::ItemData) -> BTreeSet<FeedKey> {
        feeds_of(&self.cfg, data)
    }

    /// Writes item changes into the feed logs. An item entering a feed gets a slot at its end;
    /// an item leaving closes its slot (with a tombstone). An edited item keeps its slot while
    /// that is in the subscription document, and otherwise gets a new one at the end, so the
    /// edit reaches subscribers. New slots are given in date order, so a batch of old clippings
    /// lands in the archive oldest first. Then the story logs of the stories touched. Marks the
    /// feeds for rendering and their history as changed.
    pub(super) fn log_deltas(
        &self,
        b: &Batch<'_>,
        mut deltas: Vec<Delta>,
        t: DateTime<Utc>,
        fx: &mut Effects,
    ) -> Result<()> {
        deltas.sort_by(|x, y| x.published.cmp(&y.published).then_with(|| x.id.cmp(&y.id)));
        for d in &deltas {
            for f in d.before.difference(&d.after) {
                b.log_leave(f, &d.id, t)?;
                *fx.counts.entry(f.clone()).or_default() -= 1;
            }
            for f in d.after.difference(&d.before) {
                *fx.counts.entry(f.clone()).or_default() += 1;
            }
        }
        for d in &deltas {
            for f in &d.after {
                let enter = if !d.before.contains(f) {
                    true
                } else if d.changed {
                    let window = self.catalog.get(f).and_then(|e| e.feed.as_ref()).map_or(0, |e| e.window_start);
                    window::needs_new_slot(b.open_slot(f, &d.id)?, window)
                } else {
                    false
                };
                if enter {
                    b.log_enter(f, &d.id, t)?;
                }
            }
            fx.feeds.extend(d.before.union(&d.after).cloned());
        }
        // Then the story logs, which follow the feed logs: a story's coverage in a feed is its
        // members with an open slot there.
        let items: Vec<String> = deltas.into_iter().map(|d| d.id).collect();
        fx.feeds.extend(super::story_log::update(b, std::mem::take(&mut fx.stories), &items, t)?);
        Ok(())
    }
}

/// Test builds only: `CLIPFEED_TEST_PANIC_ON=TEXT` makes the first transaction that refreshes an
/// item whose key contains TEXT panic just before it commits, once its feed-log changes are
/// written, so tests can check what a panic in the middle of a job leaves behind.
#[cfg(debug_assertions)]
fn injected_panic(keys: &[String]) {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicBool, Ordering};
    static ON: OnceLock<Option<String>> = OnceLock::new();
    static FIRED: AtomicBool = AtomicBool::new(false);
    let Some(text) = ON.get_or_init(|| std::env::var("CLIPFEED_TEST_PANIC_ON").ok()) else { return };
    if keys.iter().any(|k| k.contains(text.as_str())) && !FIRED.swap(true, Ordering::Relaxed) {
        panic!("injected panic (CLIPFEED_TEST_PANIC_ON) before a commit");
    }
}

#[cfg(not(debug_assertions))]
fn injected_panic(_: &[String]) {}
