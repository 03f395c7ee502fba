//! A topic remap: when the topics, their aliases or keywords, or the private feeds change (at a
//! reload, or at a start under a new configuration), every live item's topics and feeds are
//! worked out again. It never stalls or mixes the feeds readers get:
//!
//! 1. Computing, from what the store holds (each live item's record, the merge of its files'
//!    last good parses; no file is read or merged again): every open slot is read in one pass,
//!    then the live items a chunk at a time (each table in its own order), and their topics
//!    resolved under the new rules side by side (rayon); only a plan of what differs is kept.
//!    Meanwhile the writer writes the chunks already planned: the stories of items whose
//!    visibility class changed (`Core::regroup_if_reclassed`) and the new topics of the items
//!    whose topics change (record, hashes, topic rows; their new record and search columns
//!    made on the pool; each table in its own order: `Batch::retopic_all`), in the one
//!    transaction of step 3, which commits at its end (`/api/status` says `computing`
//!    meanwhile). A written chunk's new records are let go, so a remap that writes as it plans
//!    holds them a chunk at a time (its items' search columns are held to the end, for step 3).
//!    Feeds the remap brings into being are published as `coming` (503 with `Retry-After`
//!    until it is done); the rest keep serving.
//! 2. Privacy first: a clipping that the new rules make private leaves every public feed, and
//!    every public story (it is grouped again in its new visibility class), in a transaction of
//!    its own, and those feeds are rendered and published at once, before anything else
//!    changes. The tokens of feeds made private are in force before that. The first plan that
//!    makes a clipping private stops the writes of step 1 (so does the first refresh of an
//!    item no file names, which keeps the refreshes' order among the regroups): they are rolled
//!    back, and made in step 3 instead, in a new transaction (every item planned again first,
//!    from the store as it is then, when a written chunk let go of a record; that time is
//!    counted in the log line's `private` step).
//! 3. Writing, in step 1's transaction or that new one: the stories and topics (unless step 1
//!    wrote them), the feed-log deltas of every item that moves, in date order (set-based:
//!    `Batch::move_slots`), the story logs, then the search index: every changed item one
//!    after the other in the index's rowid order (so it takes them in a few large segments),
//!    its merging held off (`fts::merges_held`). A remap is no edit: an item keeps its time
//!    and its slot in every feed it stays in; it enters its new feeds and leaves the others.
//! 4. The caller renders the feeds off to the side and publishes them all in one swap; until
//!    then every feed serves its old document.
//!
//! `/api/status` shows the remap (`remap`: phase, items, changed, new feeds) while it runs.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use rayon::prelude::*;
use tracing::{debug, info};

use super::apply::{Delta, Effects, feeds_for, feeds_of};
use super::{Core, Ingest, now};
use crate::config::Config;
use crate::feed::FeedKey;
use crate::item::{Item, ItemData, TopicInputs};
use crate::store::{Batch, RemapRow, Retopic};

/// Live items read and planned at a time: bounds the stored records held in memory at once.
const CHUNK: usize = 4096;

/// [`CHUNK`]; in debug builds (the tests') `CLIPFEED_TEST_REMAP_CHUNK` if set, so that a remap
/// of a few hundred items spans many chunks, as one of 100,000 does.
fn chunk_size() -> usize {
    let test = cfg!(debug_assertions).then(|| std::env::var("CLIPFEED_TEST_REMAP_CHUNK").ok()).flatten();
    test.and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or(CHUNK)
}

/// The remap under way, as `/api/status` shows it.
#[derive(Debug)]
pub(super) struct Remapping {
    started: Instant,
    phase: &'static str,
    items: u64,
    changed: u64,
    /// Feeds (path stems) the remap brings into being: 503 until it is done.
    pub(super) coming: Arc<HashSet<String>>,
}

impl Remapping {
    pub(super) fn status(&self) -> crate::site::Remap {
        crate::site::Remap {
            changed: self.changed,
            items: self.items,
            new_feeds: self.coming.len(),
            phase: self.phase,
            seconds: self.started.elapsed().as_secs_f64(),
        }
    }
}

/// The wall-clock seconds of a remap's steps, one after the other, for its log line: where
/// the time of a remap goes, without a profiler.
#[derive(Debug)]
struct Phases {
    last: Instant,
    done: Vec<(&'static str, f64)>,
}

impl Phases {
    fn new() -> Phases {
        Phases { last: Instant::now(), done: Vec::new() }
    }

    /// Ends the step `name`, begun where the last one ended.
    fn lap(&mut self, name: &'static str) {
        let now = Instant::now();
        self.done.push((name, now.duration_since(self.last).as_secs_f64()));
        self.last = now;
    }
}

impl std::fmt::Display for Phases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (name, seconds)) in self.done.iter().enumerate() {
            write!(f, "{}{name} {seconds:.2} s", if i == 0 { "" } else { ", " })?;
        }
        Ok(())
    }
}

/// What the remap does with one item.
#[derive(Debug)]
enum Plan {
    /// Its stored content is what the new rules give, but its feeds change (a feed made private
    /// or public): only the feed logs move.
    Move(Delta),
    /// Its topics change: its record, topic rows and search columns written again (worked out
    /// here), nothing else of it. The delta is its move, for the privacy pass and the feeds to
    /// come; its `before` is the one in force.
    Rewrite(Box<Retopic>, Delta),
    /// No file names it any more: the ordinary refresh makes it a tombstone.
    Refresh(String, Delta),
}

impl Plan {
    fn delta(&self) -> &Delta {
        match self {
            Plan::Move(d) | Plan::Rewrite(_, d) | Plan::Refresh(_, d) => d,
        }
    }

    fn retopic(&self) -> Option<&Retopic> {
        match self {
            Plan::Rewrite(r, _) => Some(r),
            Plan::Move(_) | Plan::Refresh(..) => None,
        }
    }

    fn delta_mut(&mut self) -> &mut Delta {
        match self {
            Plan::Move(d) | Plan::Rewrite(_, d) | Plan::Refresh(_, d) => d,
        }
    }
}

impl Ingest {
    /// Re-maps every live item when the topic configuration differs from the one the store was
    /// written under (meta `topics`); nothing otherwise. Leaves every feed the remap touched
    /// dirty for the caller's render, which publishes them all at once. The store's checkpoints
    /// stay held from its start until that render has published ([`Ingest::remap_open`]; the
    /// render ends it, rendered or not: `Store::end_remap`), so the new feeds do not wait for
    /// the hundreds of megabytes of WAL it wrote to be copied in.
    pub(super) fn remap(&mut self) -> Result<()> {
        let fingerprint = self.core.cfg.topic_fingerprint();
        if self.store.batch()?.meta("topics")?.as_deref() == Some(fingerprint.as_str()) {
            return Ok(());
        }
        let started = Instant::now();
        // A feed made private needs its token before anything else is published.
        self.ensure_tokens()?;
        self.core.remap = Some(Remapping { started, phase: "computing", items: 0, changed: 0, coming: Arc::default() });
        self.core.publish(&self.core.rejections.clone());
        // Its transactions touch pages all over the store: the remap's page cache, which
        // spares reading back the pages a small cache would spill.
        let outcome = self
            .store
            .begin_remap()
            .and_then(|()| self.store.hold_checkpoints())
            .and_then(|()| self.remap_steps(&fingerprint));
        match outcome {
            Ok(()) => {
                // Committed: the page cache's size put back is upkeep, told if it fails.
                if let Err(e) = self.store.end_bulk_cache() {
                    tracing::warn!("putting the store's page cache back after a remap failed: {e:#}");
                }
                self.remap_open = true;
            }
            Err(_) => {
                // The remap's own error is the one told.
                let _ = self.store.end_bulk();
                let _ = self.store.end_remap();
                self.core.unpacked = 0;
                self.core.remap = None;
                self.core.publish(&self.core.rejections.clone());
            }
        }
        outcome
    }

    /// The steps of [`Ingest::remap`] after its start: compute, privacy first, write.
    fn remap_steps(&mut self, fingerprint: &str) -> Result<()> {
        let t = now();
        let mut phases = Phases::new();
        // One transaction from the plan's first read to the commit, unless clippings turn private.
        let b = self.store.batch()?;
        let mut fx = Effects::default();
        let Planned { items, mut plans, written, let_go } = self.core.plan_remap(&b, t, &mut fx, true)?;
        phases.lap("plan");
        let coming = self.core.coming(&plans);
        let changed = plans.len() as u64;
        if items > 0 {
            info!(items, changed, new_feeds = coming.len(), "topic configuration changed; re-mapping the items");
        }
        self.core.remap_phase("private first", items, changed, coming);
        let private = private_first(&self.core.cfg, &mut plans);
        let b = if written {
            debug_assert!(private.is_empty());
            b
        } else {
            // What the plan wrote is rolled back: everything is written again, in order, after
            // the clippings turning private (if any) have left the public feeds.
            drop(b);
            fx = Effects::default();
            if !private.is_empty() {
                self.leave_public_first(private, &plans, t)?;
            }
            let b = self.store.batch()?;
            if let_go {
                // Chunks written let go of their items' new records: every item planned again
                // (nothing written meanwhile), from the store as it is now, the old plans freed
                // first.
                drop(std::mem::take(&mut plans));
                plans = self.core.plan_remap(&b, t, &mut fx, false)?.plans;
            }
            b
        };
        phases.lap("private");
        self.core.remap_phase_only("writing");
        let (mut deltas, mut retopics) = (Vec::with_capacity(plans.len()), Vec::new());
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        for plan in plans {
            self.core.heartbeat.beat();
            if !written {
                self.core.regroup_planned(&b, &plan, t, &mut fx)?;
            }
            match plan {
                Plan::Move(d) => deltas.push(d),
                Plan::Rewrite(r, d) => {
                    // The last name given to a topic wins, as item by item; only by an item
                    // in that topic's feed (`put_names`).
                    let given = r.topics.iter().filter(|t| d.after.contains(&FeedKey::Topic(t.slug.clone())));
                    names.extend(given.map(|t| (t.slug.clone(), t.name.clone())));
                    deltas.push(d);
                    retopics.push(*r);
                }
                Plan::Refresh(key, _) => deltas.extend(self.core.refresh_item(&b, &key, t, &mut fx)?),
            }
        }
        phases.lap("stories");
        // Their topics, every table in its own order (unless the plan wrote them).
        let refs: Vec<&Retopic> = retopics.iter().collect();
        if !written {
            b.retopic_all(&refs)?;
        }
        for (slug, name) in names {
            b.put_topic(&slug, &name)?;
            fx.names.insert(FeedKey::Topic(slug), name);
        }
        phases.lap("topics");
        self.core.log_moves(&b, deltas, t, &mut fx, &mut phases)?;
        // The search index last, the items one after the other in its rowid order (see
        // `Batch::index_retopics`): written chunk by chunk, it took more of the writer's time.
        b.index_retopics(&refs)?;
        drop(refs);
        // Tens of thousands of search documents freed off the writer's path to the render
        // (render9's profile: half the writer's samples between the remap's end and the
        // render at 100,000); here if no thread can start.
        let _ = std::thread::Builder::new().name("clipfeed-free".into()).spawn(move || drop(retopics));
        phases.lap("search");
        b.set_meta("topics", fingerprint)?;
        b.commit()?;
        phases.lap("commit");
        fx.apply(&mut self.core);
        self.core.remap_phase_only("rendering");
        // Its feeds are published as soon as they are rendered, and packed after.
        self.core.unpacked = if changed > 0 { super::render::UNPACKED_BYTES } else { 0 };
        let took = self.core.remap.take().map_or(0.0, |r| r.started.elapsed().as_secs_f64());
        if items > 0 {
            info!(items, changed, written_in_plan = written, seconds = took, %phases, "items re-mapped; rendering the feeds");
        }
        Ok(())
    }

    /// The clippings the new rules make private (`private`: their moves out of the public
    /// feeds) leave every public feed and story, in a transaction of their own, and those feeds
    /// are rendered and published at once, before anything else of the remap is written.
    fn leave_public_first(&mut self, private: Vec<Delta>, plans: &[Plan], t: DateTime<Utc>) -> Result<()> {
        let n = private.len();
        let b = self.store.batch()?;
        let mut fx = Effects::default();
        // They leave the public stories too, in the same transaction: each goes into a
        // story of the class it ends in.
        let leaving: HashSet<&str> = private.iter().map(|d| d.id.as_str()).collect();
        for d in plans.iter().map(Plan::delta).filter(|d| leaving.contains(d.id.as_str())) {
            self.core.heartbeat.beat();
            let class = self.core.cfg.visibility().class(&d.after);
            self.core.regroup_if_reclassed(&b, &d.id, &class, t, &mut fx)?;
        }
        self.core.log_deltas(&b, private, t, &mut fx)?;
        b.commit()?;
        fx.apply(&mut self.core);
        // Only the feeds those clippings left are dirty here: they switch now, the rest later.
        self.render()?;
        info!(clippings = n, "clippings that turned private left the public feeds");
        Ok(())
    }
}

/// What a remap's plan gives.
struct Planned {
    /// The live items read.
    items: u64,
    /// What changes, item by item.
    plans: Vec<Plan>,
    /// Whether every plan's stories (regrouped where a class changed) and topics (records,
    /// hashes, topic rows) were written already, in the plan's transaction: so when no plan
    /// makes a clipping private and none refreshes an item no file names.
    written: bool,
    /// Whether a chunk written let go of an item's new record (which is then no longer in
    /// `plans`).
    let_go: bool,
}

impl Core {
    /// Reads every live item a chunk at a time and plans what changes for it under the new
    /// rules, side by side: the writer reads the next chunk while the rayon threads plan the
    /// last one (at most one chunk waits between them, so memory stays bounded), and writes the
    /// chunks planned meanwhile (stories regrouped where a class changed, into `fx`; topics:
    /// `Batch::retopic_all`), in `b`, which the remap commits at its end. Those writes stop at
    /// the first plan that makes a clipping private (it must leave the public feeds before
    /// anything else is written) or refreshes an item no file names (the old order of
    /// refreshes and regroups is kept): the caller then rolls `b` back, and every write is made
    /// after, in order, in a new transaction. With
    /// `pipelined` false, nothing is written.
    fn plan_remap(&self, b: &Batch<'_>, t: DateTime<Utc>, fx: &mut Effects, pipelined: bool) -> Result<Planned> {
        let cfg = &*self.cfg;
        let heartbeat = &self.heartbeat;
        // The feeds every item is in, read in one pass rather than looked up item by item.
        let open = b.every_open_slot()?;
        let (mut items, mut after, chunk) = (0u64, String::new(), chunk_size());
        let (mut plans, mut written, mut chunks_written, mut let_go) = (Vec::new(), pipelined, 0, false);
        let mut write = |mut chunk: Vec<Plan>| -> Result<()> {
            let stops = |p: &Plan| matches!(p, Plan::Refresh(..)) || leaves_public(cfg, p.delta());
            if written && chunk.iter().any(stops) {
                written = false;
                debug!(chunks_written, "the remap's writes wait for the plan's end");
            }
            if written {
                for plan in &chunk {
                    self.regroup_planned(b, plan, t, fx)?;
                }
                let retopics: Vec<&Retopic> = chunk.iter().filter_map(Plan::retopic).collect();
                b.retopic_all(&retopics)?;
                chunks_written += 1;
                // Written: their new records are not kept to the end (their search columns
                // are, for the index's one pass in its own order then).
                for plan in &mut chunk {
                    if let Plan::Rewrite(r, _) = plan {
                        r.record = Vec::new();
                        let_go = true;
                    }
                }
            }
            plans.extend(chunk);
            Ok(())
        };
        let (send, chunks) = std::sync::mpsc::sync_channel::<Vec<RemapRow>>(1);
        let (back, planned) = std::sync::mpsc::channel::<Result<Vec<Plan>>>();
        std::thread::scope(|s| -> Result<()> {
            let planner = s.spawn(move || {
                for rows in chunks {
                    let chunk: Result<Vec<Option<Plan>>> = rows.into_par_iter().map(|row| plan(cfg, row)).collect();
                    let failed = chunk.is_err();
                    // A writer that stopped has its error to give.
                    if back.send(chunk.map(|c| c.into_iter().flatten().collect())).is_err() || failed {
                        return;
                    }
                }
            });
            let read = (|| -> Result<()> {
                loop {
                    // The chunks planned meanwhile, written while the pool plans the next.
                    while let Ok(chunk) = planned.try_recv() {
                        write(chunk?)?;
                    }
                    let rows = b.remap_rows(&after, chunk, &open)?;
                    let Some(last) = rows.last() else { return Ok(()) };
                    after = last.key.clone();
                    heartbeat.beat();
                    items += rows.len() as u64;
                    // A planner that stopped has its error to give.
                    if send.send(rows).is_err() {
                        return Ok(());
                    }
                }
            })();
            drop(send);
            let rest = read.and_then(|()| planned.iter().try_for_each(|chunk| write(chunk?)));
            drop(planned);
            planner.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            rest
        })?;
        Ok(Planned { items, plans, written, let_go })
    }

    /// A remap changes topics and privacy only: the files, which stories are made of, are as
    /// they were, so a planned item's story is worked out again only when its visibility class
    /// changed. (An item no file names any more is refreshed, which does that too.)
    fn regroup_planned(&self, b: &Batch<'_>, plan: &Plan, t: DateTime<Utc>, fx: &mut Effects) -> Result<()> {
        match plan {
            Plan::Move(d) | Plan::Rewrite(_, d) => {
                let class = self.cfg.visibility().class(&d.after);
                self.regroup_if_reclassed(b, &d.id, &class, t, fx)
            }
            Plan::Refresh(..) => Ok(()),
        }
    }

    /// Moves the remap to its next phase with its counts, and publishes that.
    fn remap_phase(&mut self, phase: &'static str, items: u64, changed: u64, coming: HashSet<String>) {
        if let Some(r) = self.remap.as_mut() {
            (r.phase, r.items, r.changed, r.coming) = (phase, items, changed, Arc::new(coming));
        }
        self.publish(&self.rejections.clone());
    }

    fn remap_phase_only(&mut self, phase: &'static str) {
        if let Some(r) = self.remap.as_mut() {
            r.phase = phase;
        }
        self.publish(&self.rejections.clone());
    }
}

impl Core {
    /// [`Core::log_deltas`] for the many moves of a remap: the same slots closed, opened and
    /// tombstoned, written set-based (`Batch::move_slots`: the coverage worked out once for every
    /// moved pair, not by a trigger per row), then the story logs of the items that moved.
    fn log_moves(
        &self,
        b: &Batch<'_>,
        mut deltas: Vec<Delta>,
        t: DateTime<Utc>,
        fx: &mut Effects,
        phases: &mut Phases,
    ) -> Result<()> {
        deltas.sort_by(|x, y| x.published.cmp(&y.published).then_with(|| x.id.cmp(&y.id)));
        let (mut leaves, mut enters) = (Vec::new(), Vec::new());
        for d in &deltas {
            for f in d.before.difference(&d.after) {
                leaves.push((f.clone(), d.id.as_str()));
                *fx.counts.entry(f.clone()).or_default() -= 1;
            }
            for f in d.after.difference(&d.before) {
                *fx.counts.entry(f.clone()).or_default() += 1;
            }
        }
        for d in &deltas {
            for f in &d.after {
                // An edited item (a refresh's) may need a new slot where it stays, as in
                // `log_deltas`; a remap's own moves are no edits.
                let enter = !d.before.contains(f)
                    || (d.changed && {
                        let window = self.catalog.get(f).and_then(|e| e.feed.as_ref()).map_or(0, |e| e.window_start);
                        super::window::needs_new_slot(b.open_slot(f, &d.id)?, window)
                    });
                if enter {
                    enters.push((f.clone(), d.id.as_str()));
                }
            }
            fx.feeds.extend(d.before.union(&d.after).cloned());
        }
        b.move_slots(&leaves, &enters, t)?;
        phases.lap("slots");
        let items: Vec<String> = deltas.into_iter().map(|d| d.id).collect();
        fx.feeds.extend(super::story_log::update_all(b, std::mem::take(&mut fx.stories), &items, t)?);
        phases.lap("story logs");
        Ok(())
    }

    /// The feeds (path stems) the plans bring into being: in a plan's new feeds, never published.
    fn coming(&self, plans: &[Plan]) -> HashSet<String> {
        let mut out = HashSet::new();
        for plan in plans {
            for f in &plan.delta().after {
                if self.catalog.get(f).and_then(|e| e.feed.as_ref()).is_none() {
                    out.insert(f.path_stem());
                }
            }
        }
        out
    }
}

/// What changes for one live item under `cfg`, from its stored record: `None` when nothing does.
/// The merge of its files gave that record, and the files are as they were; what the rules
/// change is its topics alone (`TopicInputs::resolve`, as `item::merge` resolved them), so nothing else is merged again.
fn plan(cfg: &Config, row: RemapRow) -> Result<Option<Plan>> {
    let RemapRow { key, id, first_seen, updated, hash, feeds, record } = row;
    let before: BTreeSet<FeedKey> = feeds.iter().filter_map(|s| FeedKey::from_stem(s)).collect();
    let Some(record) = record else {
        let delta = Delta { id, published: first_seen, before, after: BTreeSet::new(), changed: true };
        return Ok(Some(Plan::Refresh(key, delta)));
    };
    // The fields topics and feeds depend on; the whole record only for an item whose topics
    // change (a third of them in a large remap), the one inflate serving both.
    let mut topics = Vec::new();
    let (inputs, data) = record
        .decode_part::<TopicInputs, ItemData>(|inputs| {
            topics = inputs.resolve(&cfg.topics);
            topics != inputs.topics
        })
        .with_context(|| format!("corrupt record for item {key}"))?;
    let Some(mut data) = data else {
        let after = feeds_for(cfg, &inputs.topics, inputs.provider_domain(), inputs.also_domains());
        let moved = before != after;
        return Ok(moved.then_some(Plan::Move(Delta {
            id,
            published: inputs.published,
            before,
            after,
            changed: false,
        })));
    };
    data.topics = topics;
    let json = data.json();
    let new_hash = ItemData::hash_of_json(&json);
    let after = feeds_of(cfg, &data);
    if new_hash == hash {
        let moved = before != after;
        return Ok(moved.then_some(Plan::Move(Delta { id, published: data.published, before, after, changed: false })));
    }
    // A remap is no edit: the article is as it was, only the topics the site files it under
    // moved. It keeps its time and its slot in every feed it stays in (it enters and leaves
    // feeds as any item does), so a remap neither dates thousands of old articles anew nor fills
    // every subscription document with them; the documents show its new tags from the switch.
    let delta = Delta { id: id.clone(), published: data.published, before, after, changed: false };
    let retopic = Retopic::of(key, Item { id, updated, data }, &json, new_hash)?;
    Ok(Some(Plan::Rewrite(Box::new(retopic), delta)))
}

/// Whether the move `d` takes a clipping private under `cfg` out of a public feed it is in:
/// what must happen before anything else of a remap.
fn leaves_public(cfg: &Config, d: &Delta) -> bool {
    let v = cfg.visibility();
    d.after.iter().any(|f| v.is_private(f)) && d.before.iter().any(|f| !v.is_private(f))
}

/// Splits off what must happen before anything else: a clipping private under the new rules
/// leaves every public feed it is in. Returns those deltas; each plan keeps the rest of its move.
fn private_first(cfg: &Config, plans: &mut [Plan]) -> Vec<Delta> {
    let v = cfg.visibility();
    let mut out = Vec::new();
    for plan in plans {
        let d = plan.delta_mut();
        if !leaves_public(cfg, d) {
            continue;
        }
        let kept: BTreeSet<FeedKey> = d.before.iter().filter(|f| v.is_private(f)).cloned().collect();
        let before = std::mem::replace(&mut d.before, kept.clone());
        out.push(Delta { id: d.id.clone(), published: d.published, before, after: kept, changed: false });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clip::{Limits, parse};
    use crate::item::{self, Source};
    use std::path::Path;

    fn cfg(text: &str) -> Config {
        Config::parse(text, Path::new("/")).unwrap()
    }

    /// A stored item as a store written under `old` holds it: one file, its hash under `old`,
    /// in the feeds `before`.
    fn row(old: &Config, topics: &str, before: &BTreeSet<FeedKey>) -> RemapRow {
        let text = format!("---\ntitle: A humanoid walks\nwebUrl: https://n.example/a\ntopics: [{topics}]\n---\n");
        let clip = parse(text.as_bytes(), Limits::default()).unwrap().clipping;
        let first_seen = "2025-01-01T00:00:00Z".parse().unwrap();
        let data = item::merge(&[Source { rel_path: "a.md", clipping: &clip }], first_seen, &old.topics).unwrap();
        RemapRow {
            key: "k".into(),
            id: "id".into(),
            first_seen,
            updated: first_seen,
            hash: data.hash(),
            feeds: before.iter().map(FeedKey::path_stem).collect(),
            record: Some(crate::store::record_of(&data)),
        }
    }

    fn keys(stems: &[&str]) -> BTreeSet<FeedKey> {
        stems.iter().map(|s| FeedKey::from_stem(s).unwrap()).collect()
    }

    #[test]
    fn a_plan_is_made_only_for_what_the_new_rules_change() {
        let old = cfg("topics:\n  - name: Robotics\n");
        let before = keys(&["feed", "topics/robots"]);
        let unchanged = plan(&old, row(&old, "Robots", &before)).unwrap();
        assert!(unchanged.is_none(), "{unchanged:?}");
        let aliased = cfg("topics:\n  - name: Robotics\n    aliases: [Robots]\n");
        let Some(Plan::Rewrite(c, d)) = plan(&aliased, row(&old, "Robots", &before)).unwrap() else {
            panic!("an alias changes the item's topics")
        };
        assert_eq!((c.key.as_str(), &d.before, &d.after), ("k", &before, &keys(&["feed", "topics/robotics"])));
        assert_eq!(c.topics[0].slug, "robotics");
        // What a merge of its file under the new rules gives, which is what a cold build stores.
        let text = "---\ntitle: A humanoid walks\nwebUrl: https://n.example/a\ntopics: [Robots]\n---\n";
        let clip = parse(text.as_bytes(), Limits::default()).unwrap().clipping;
        let merged =
            item::merge(&[Source { rel_path: "a.md", clipping: &clip }], c.published, &aliased.topics).unwrap();
        assert_eq!((&c.topics, &c.hash, &c.shown), (&merged.topics, &merged.hash(), &merged.shown_hash()));
        let item = Item { id: "id".into(), updated: c.published, data: merged };
        assert_eq!(c.doc, crate::search::IndexDoc::of(&item));
        // No edit: its move keeps its slots where it stays (its time is not written at all).
        assert!(!d.changed);
        let keyword = cfg("topics:\n  - name: Walking\n    keywords: [humanoid]\n");
        let Some(Plan::Rewrite(_, d)) = plan(&keyword, row(&old, "Robots", &before)).unwrap() else {
            panic!("a keyword adds a topic")
        };
        assert_eq!(d.after, keys(&["feed", "topics/robots", "topics/walking"]));
        // Made private: the same content, fewer feeds.
        let private = cfg("topics:\n  - name: Robotics\n  - name: Robots\n    private: true\n");
        let stored = row(&private, "Robots", &before);
        let Some(Plan::Move(d)) = plan(&private, stored).unwrap() else { panic!("a move") };
        assert_eq!(d.after, keys(&["topics/robots"]));
        let gone = RemapRow { record: None, ..row(&old, "Robots", &before) };
        assert!(
            matches!(plan(&old, gone).unwrap(), Some(Plan::Refresh(_, d)) if d.before == before && d.after.is_empty())
        );
    }

    #[test]
    fn the_phases_are_told_in_order_each_from_the_end_of_the_last() {
        let mut p = Phases::new();
        let start = p.last;
        p.lap("plan");
        p.lap("write");
        let names: Vec<&str> = p.done.iter().map(|d| d.0).collect();
        assert_eq!(names, ["plan", "write"]);
        let total: f64 = p.done.iter().map(|d| d.1).sum();
        assert!((total - p.last.duration_since(start).as_secs_f64()).abs() < 1e-6, "{p:?}");
        let told = p.to_string();
        assert!(told.starts_with("plan ") && told.contains(" s, write ") && told.ends_with(" s"), "{told}");
    }

    #[test]
    fn clippings_made_private_leave_every_public_feed_first() {
        let rules = cfg("topics:\n  - name: Internal\n    private: true\n");
        let delta = |before: &[&str], after: &[&str]| Delta {
            id: format!("{before:?}"),
            published: chrono::DateTime::UNIX_EPOCH,
            before: keys(before),
            after: keys(after),
            changed: false,
        };
        let mut plans = vec![
            Plan::Move(delta(&["feed", "topics/internal", "providers/a.example"], &["topics/internal"])),
            Plan::Refresh("k".into(), delta(&["feed", "topics/robots"], &["topics/internal"])),
            Plan::Move(delta(&["feed"], &["feed", "topics/robots"])),
            Plan::Move(delta(&["topics/internal"], &["topics/internal"])),
        ];
        let first = private_first(&rules, &mut plans);
        let moved: Vec<(BTreeSet<FeedKey>, BTreeSet<FeedKey>)> =
            first.iter().map(|d| (d.before.clone(), d.after.clone())).collect();
        assert_eq!(
            moved,
            [
                (keys(&["feed", "topics/internal", "providers/a.example"]), keys(&["topics/internal"])),
                (keys(&["feed", "topics/robots"]), keys(&[])),
            ]
        );
        // What remains of each plan starts where the first step left it.
        assert_eq!(plans[0].delta().before, keys(&["topics/internal"]));
        assert_eq!(plans[1].delta().before, keys(&[]));
        assert_eq!(plans[2].delta().before, keys(&["feed"]), "a public clipping waits for the switch");
    }
}
