//! A large batch's item refreshes made side by side (a cold build, a folder moved in): what
//! each item becomes is made on the thread pool from what the writer read of it, while the
//! writer writes the items made just before. Only the store's part stays on the writer.
//!
//! The writer reads a step of items (their files' clippings as stored, their stored state, the
//! feeds they are in), hands it to a planner thread, and writes the step before it. The planner
//! makes each item of its step in parallel (rayon): its files' clippings decoded, the merge of
//! its files, its hashes, its feeds and visibility class, its story features, its record
//! deflated, its clipping's JSON and its
//! search-index columns, all functions of what was read. An item's refresh reads only its own
//! rows (its files, its item row, its slots, none of which another item's refresh writes), so
//! reading a step before the last one is written reads what the one-by-one path
//! (`Core::refresh_item`) would: the writes are the same, in the same order. The search-index
//! rows of a step are written together once its other rows are (before a tombstone, which
//! takes a document out of the index, they are written first), so the index takes a step in
//! one segment instead of an item at a time; each row is the one `fts::put` would write.

use std::collections::BTreeSet;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use anyhow::{Context, Result, anyhow};
use chrono::{DateTime, Utc};
use rayon::prelude::*;

use super::Core;
use super::apply::{Delta, Effects, feeds_of, put_names};
use crate::config::Config;
use crate::feed::FeedKey;
use crate::item::{self, Item, Source};
use crate::search::IndexDoc;
use crate::store::{Batch, Encoded, ItemState, StoredSource};
use crate::story::Features;

/// Items read, made and written per step. At most about four steps are held at once (one
/// written, one made, one waiting on each side), a few kilobytes an item.
const STEP: usize = 64;

/// Fewer items than this are refreshed one by one, on the writer (a watcher's change has one
/// or two: no handing over between threads).
const SIDE_BY_SIDE_FROM: usize = 2 * STEP;

/// Whether `items` refreshes are made side by side.
pub(super) fn side_by_side(items: usize) -> bool {
    #[cfg(test)]
    if crate::store::COLD_OFF.get() {
        return false;
    }
    items >= SIDE_BY_SIDE_FROM
}

/// What the writer reads of an item before it is made.
struct Read {
    key: String,
    id: String,
    /// Its files' clippings as stored, by path (decoded on the pool).
    sources: Vec<StoredSource>,
    state: Option<ItemState>,
    /// The feeds it has an open slot in.
    before: BTreeSet<FeedKey>,
}

impl Read {
    fn of(b: &Batch<'_>, key: &str) -> Result<Read> {
        let id = item::id_for(key);
        let before = b.open_feeds(&id)?.iter().filter_map(|s| FeedKey::from_stem(s)).collect();
        Ok(Read { key: key.to_string(), sources: b.sources_stored(key)?, state: b.item_state(key)?, id, before })
    }

    /// The stored item, when it is live.
    fn live(&self) -> Option<&ItemState> {
        self.state.as_ref().filter(|s| !s.deleted)
    }
}

/// What an item with files becomes (`None` for one without: it is tombstoned).
struct Made {
    /// Its `updated` is the one to store when its content changed.
    item: Item,
    hash: String,
    /// The feeds it appears in.
    after: BTreeSet<FeedKey>,
    /// Its clipping's JSON.
    clip: String,
    /// `None` when its content is what the store holds.
    changed: Option<Changed>,
}

/// The writes of an item whose content changed.
struct Changed {
    first_seen: DateTime<Utc>,
    shown: String,
    /// Whether subscribers see the change.
    edited: bool,
    features: Features,
    record: Vec<u8>,
    doc: IndexDoc,
}

impl Made {
    /// As `Core::refresh_item` and `Core::store_changed` make it, from `r` alone.
    fn of(cfg: &Config, r: &Read, t: DateTime<Utc>) -> Result<Option<Made>> {
        if r.sources.is_empty() {
            return Ok(None);
        }
        let first_seen = r.state.as_ref().map_or(t, |s| s.first_seen);
        let sources = r.sources.iter().map(StoredSource::decode).collect::<Result<Vec<_>>>()?;
        let refs: Vec<Source<'_>> = sources.iter().map(|(p, c)| Source { rel_path: p, clipping: c }).collect();
        let data = item::merge(&refs, first_seen, &cfg.topics).context("merging the files of an item")?;
        let hash = data.hash();
        let after = feeds_of(cfg, &data);
        let clip = serde_json::to_string(&data.clip)?;
        let live = r.live();
        if live.is_some_and(|s| s.hash == hash) {
            let item = Item { id: r.id.clone(), updated: t, data };
            return Ok(Some(Made { item, hash, after, clip, changed: None }));
        }
        let shown = data.shown_hash();
        let edited = live.is_none_or(|s| s.shown != shown);
        let updated = match live {
            Some(s) if !edited => s.updated,
            Some(s) => s.updated.max(t),
            None => data.published,
        };
        let class = cfg.visibility().class(&after);
        let features = super::stories::features(&data.clip, &class);
        let item = Item { id: r.id.clone(), updated, data };
        let Encoded { record, .. } = Encoded::of(&item.data)?;
        let doc = IndexDoc::of(&item);
        let changed = Changed { first_seen, shown, edited, features, record, doc };
        Ok(Some(Made { item, hash, after, clip, changed: Some(changed) }))
    }
}

/// A step of items as read, each with what it becomes.
type Step = Vec<(Read, Option<Made>)>;

/// Search-index rows waiting to be written: (item id, published, columns).
type Docs = Vec<(String, DateTime<Utc>, IndexDoc)>;

impl Core {
    /// Refreshes the items `keys` in the batch `b`, in that order, as `Core::refresh_item` one
    /// after the other would (see the module header). Returns their moves, for the feed logs.
    pub(super) fn refresh_side_by_side(
        &self,
        b: &Batch<'_>,
        keys: &[String],
        t: DateTime<Utc>,
        fx: &mut Effects,
    ) -> Result<Vec<Delta>> {
        let cfg: &Config = &self.cfg;
        let (to_make, reads) = sync_channel::<Vec<Read>>(1);
        let (to_write, made) = sync_channel::<Result<Step>>(1);
        std::thread::scope(|s| {
            std::thread::Builder::new()
                .name("clipfeed-make".into())
                .spawn_scoped(s, move || make_steps(cfg, t, reads, to_write))
                .context("starting the thread that makes items")?;
            self.write_steps(b, keys, t, fx, to_make, made)
        })
    }

    /// The writer's side of [`Core::refresh_side_by_side`]: reads each step and hands it over,
    /// and writes each step made. Returning drops both ends, which stops the planner.
    fn write_steps(
        &self,
        b: &Batch<'_>,
        keys: &[String],
        t: DateTime<Utc>,
        fx: &mut Effects,
        to_make: SyncSender<Vec<Read>>,
        made: Receiver<Result<Step>>,
    ) -> Result<Vec<Delta>> {
        let stopped = || anyhow!("the thread that makes items stopped");
        let mut deltas = Vec::new();
        let mut docs = Docs::new();
        let mut in_flight = 0usize;
        let mut steps = keys.chunks(STEP);
        loop {
            // The next step is read (and made) while the last one made is written.
            let next = steps.next();
            if let Some(step) = next {
                let read = step.iter().map(|k| Read::of(b, k)).collect::<Result<Vec<_>>>()?;
                to_make.send(read).map_err(|_| stopped())?;
                in_flight += 1;
            }
            if in_flight == 0 {
                break;
            }
            if in_flight == 2 || next.is_none() {
                for (r, m) in made.recv().map_err(|_| stopped())?? {
                    self.heartbeat.beat();
                    deltas.extend(self.write_made(b, r, m, t, fx, &mut docs)?);
                }
                b.index_docs(&std::mem::take(&mut docs))?;
                in_flight -= 1;
            }
        }
        Ok(deltas)
    }

    /// Writes what an item became, as `Core::refresh_item` does; its search-index row goes to
    /// `docs`.
    fn write_made(
        &self,
        b: &Batch<'_>,
        r: Read,
        m: Option<Made>,
        t: DateTime<Utc>,
        fx: &mut Effects,
        docs: &mut Docs,
    ) -> Result<Option<Delta>> {
        let live = r.live().is_some();
        let Read { key, id, before, .. } = r;
        let Some(m) = m else {
            if !live {
                return Ok(None);
            }
            // The rows waiting go in first, as they would have.
            b.index_docs(&std::mem::take(docs))?;
            b.tombstone_item(&key, t)?;
            super::story_log::remove(b, &id, t, &mut fx.stories)?;
            return Ok(Some(Delta { id, published: t, before, after: BTreeSet::new(), changed: true }));
        };
        let Made { item, hash, after, clip, changed } = m;
        let published = item.data.published;
        let Some(c) = changed else {
            // A file written again as it was keeps no copy of the item's clipping; its feeds
            // are worked out again all the same (the rules may have changed).
            b.share_sources_json(&key, &clip)?;
            let moved = after != before;
            if moved {
                self.regroup_if_reclassed(b, &id, &self.cfg.visibility().class(&after), t, fx)?;
            }
            return Ok(moved.then_some(Delta { id, published, before, after, changed: false }));
        };
        b.put_item_encoded(&key, &item, c.first_seen, &hash, &c.shown, &Encoded { record: c.record, clip })?;
        docs.push((id.clone(), published, c.doc));
        super::story_log::put(b, &id, c.features, t, &mut fx.stories)?;
        put_names(b, &item.data, &after, fx)?;
        Ok(Some(Delta { id, published, before, after, changed: c.edited }))
    }
}

/// The planner's side of [`Core::refresh_side_by_side`]: makes each step read, its items side
/// by side, until the writer stops handing them over.
fn make_steps(cfg: &Config, t: DateTime<Utc>, reads: Receiver<Vec<Read>>, to_write: SyncSender<Result<Step>>) {
    for step in reads {
        let made: Result<Step> = step
            .into_par_iter()
            .map(|r| {
                let m = Made::of(cfg, &r, t)?;
                Ok((r, m))
            })
            .collect();
        if to_write.send(made).is_err() {
            return;
        }
    }
}
