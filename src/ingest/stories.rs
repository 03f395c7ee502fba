//! The writer's side of stories: a new or changed clipping joins, starts or merges stories, and
//! a removed one may split its story, in the transaction that changes the item. The decisions
//! are `story`'s ([`decide`], [`split`]); this file reads the candidates from the store, applies
//! the decision to the rows, and records the ids that ended. Nothing is recomputed over the
//! store: only the candidates sharing a key with the clipping, and the members of its story.
//! A clipping is grouped within its visibility class, which `config::Visibility::class` gives
//! for the feeds it belongs to; whatever changes that class puts it again ([`reclassed`]).

use std::collections::BTreeSet;

use anyhow::Result;
use chrono::{DateTime, Utc};
use tracing::info;

use super::{Core, Ingest, now};
use crate::clip::Clipping;
use crate::config::Config;
use crate::feed::FeedKey;
use crate::store::{Batch, KeyRange, StoryRow};
use crate::story::{Candidate, Decision, Features, Founder, Member, Params, decide, judge, split, window_days};

/// The thresholds the daemon groups by.
const PARAMS: Params = Params::DEFAULT;

/// Items put in stories per transaction by the backfill of a store written before stories.
const BACKFILL_CHUNK: usize = 2000;

fn founder_of(r: &StoryRow) -> Founder {
    Founder::new(&r.founder, r.founder_published)
}

/// A stored row's features; a damaged or older blob reads as empty features, which match nothing
/// but the same URL.
fn features_of(r: &StoryRow) -> Features {
    Features::from_blob(&r.blob).unwrap_or_default()
}

/// The meta key set once every item of the store is in a story.
const MIGRATED: &str = "migrated_stories";

/// The most candidates read per key range (see `Batch::story_candidates`).
const HOT_KEY: usize = 16;

/// The most candidates judged per new clipping: those sharing the most keys with it.
const MAX_JUDGED: usize = 24;

/// The largest story regrouped when a member leaves it (see `remove`).
const MAX_SPLIT: usize = 200;

/// How many stories the index lists.
const LATEST_STORIES: usize = 8;

impl Core {
    /// The index's latest stories, from the all-feed's log (never a private clipping). A story
    /// whose fingerprint is the one it had at the last call keeps its listing; the others are
    /// read again, whole (so the counts are exact).
    pub(super) fn latest_stories(&mut self, b: &Batch<'_>) -> Result<Vec<crate::pages::StoryListing>> {
        let mut kept = std::mem::take(&mut self.story_listings);
        let mut out = Vec::new();
        for (id, print) in b.latest_stories(LATEST_STORIES)? {
            let listing = match kept.remove(&id) {
                Some((old, listing)) if old == print => listing,
                _ => crate::pages::story_listing(&id, &b.public_story_members(&id)?, b.public_story_size(&id)?),
            };
            out.extend(listing.clone());
            self.story_listings.insert(id, (print, listing));
        }
        Ok(out)
    }
}

/// The candidates that match `f`, one per story: those sharing the most keys with it are judged
/// first, at most [`MAX_JUDGED`] of them, and once a member of a story matches, the story's
/// other members are not judged.
fn matching(b: &Batch<'_>, f: &Features, ranges: &[KeyRange]) -> Result<Vec<StoryRow>> {
    // Each candidate's hits, and its number (the same for every hit: one row per item).
    let mut hits: std::collections::HashMap<String, (usize, i64)> = std::collections::HashMap::new();
    for (item, n) in b.story_candidates_numbered(ranges, HOT_KEY)? {
        hits.entry(item).or_insert((0, n)).0 += 1;
    }
    let mut ranked: Vec<(usize, String, i64)> = hits.into_iter().map(|(item, (hits, n))| (hits, item, n)).collect();
    ranked.sort_unstable_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let mut matched: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut rows = Vec::new();
    for (_, item, n) in ranked.into_iter().take(MAX_JUDGED) {
        let Some(row) = b.story_row_numbered(&item, n)? else { continue };
        if !matched.contains(&row.story) && judge(&PARAMS, f, &features_of(&row)).is_some() {
            matched.insert(row.story.clone());
            rows.push(row);
        }
    }
    Ok(rows)
}

/// What story grouping knows of a clipping in visibility class `class` (the class
/// `config::Visibility::class` gives for the feeds it belongs to): it is grouped only with
/// clippings of that class.
pub(super) fn features(clip: &Clipping, class: &str) -> Features {
    Features::of(clip).in_class(class)
}

/// The class of a live item from the feeds it has an open slot in, as `Visibility` sees them.
fn stored_class(b: &Batch<'_>, cfg: &Config, id: &str) -> Result<String> {
    let feeds: BTreeSet<FeedKey> = b.open_feeds(id)?.iter().filter_map(|s| FeedKey::from_stem(s)).collect();
    Ok(cfg.visibility().class(&feeds))
}

/// An item's stored features moved to visibility class `class`, when the class it is grouped
/// in is another (a topic or news site of it made private or public): to put again, which
/// takes it out of its story and into one of its new class. `None` when the class is the same,
/// or when the item is in no story.
pub(super) fn reclassed(b: &Batch<'_>, id: &str, class: &str) -> Result<Option<Features>> {
    let Some(row) = b.story_row(id)? else { return Ok(None) };
    let f = features_of(&row);
    let moved = f.clone().in_class(class);
    Ok((moved.class != f.class).then_some(moved))
}

/// Puts a live item in its story (after taking it out of the one it was in, when its features,
/// class included, changed). Returns whether any story changed.
pub(super) fn put(b: &Batch<'_>, id: &str, f: Features, t: DateTime<Utc>) -> Result<bool> {
    Ok(put_retiring(b, id, f, t)?.is_some())
}

/// [`put`], returning `None` when no story changed, else the ids of the stories its merge
/// retired (none when it joined or started one).
pub(super) fn put_retiring(b: &Batch<'_>, id: &str, f: Features, t: DateTime<Utc>) -> Result<Option<Vec<String>>> {
    let blob = f.to_blob();
    if let Some(old) = b.story_row(id)? {
        if old.blob == blob {
            return Ok(None);
        }
        remove(b, id, t)?;
    }
    let ranges: Vec<KeyRange> =
        f.lookup_ranges(window_days(&PARAMS)).into_iter().map(|(key, lo, hi)| KeyRange { key, lo, hi }).collect();
    let rows = matching(b, &f, &ranges)?;
    let feats: Vec<Features> = rows.iter().map(features_of).collect();
    let founders: Vec<Founder> = rows.iter().map(founder_of).collect();
    let candidates: Vec<Candidate<'_>> = rows
        .iter()
        .zip(&feats)
        .zip(&founders)
        .map(|((r, features), story)| Candidate { item: &r.item, features, story })
        .collect();
    let decision = decide(&PARAMS, Member { item: id, features: &f }, &candidates);
    let into = decision.founder().clone();
    let story = into.story_id();
    let mut ended = Vec::new();
    if let Decision::Merge { retired, .. } = &decision {
        for old in retired {
            let old_id = old.story_id();
            b.move_story(&old_id, &story, &into.item, into.published())?;
            b.put_story_redirect(&old_id, &story, t)?;
            ended.push(old_id);
        }
    }
    b.drop_story_redirect(&story)?;
    let row =
        StoryRow { item: id.to_string(), story, founder: into.item.clone(), founder_published: into.published(), blob };
    b.put_story_item(&row, &f.stored_keys())?;
    Ok(Some(ended))
}

/// Takes an item out of its story. The rest of the story is grouped again: the part holding
/// the founder keeps the id; the other parts take their own founders' ids; when the founder
/// itself left, the old id redirects to the oldest part. Returns `None` when it was in no story,
/// else the ids its story's other members are in now, with the old id (the stories it changed).
pub(super) fn remove(b: &Batch<'_>, id: &str, t: DateTime<Utc>) -> Result<Option<Vec<String>>> {
    let Some(row) = b.story_row(id)? else { return Ok(None) };
    b.delete_story_item(id, &features_of(&row).stored_keys())?;
    let mut touched = vec![row.story.clone()];
    // Read by index, at most one past the largest story regrouped: what a departure costs does
    // not grow with the story's size.
    let rest = b.story_members(&row.story, MAX_SPLIT + 1)?;
    if rest.is_empty() {
        return Ok(Some(touched));
    }
    // A story this large is not regrouped on every departure (that is a grouping of all its
    // members): it stays one story, under its founder's id while the founder stays; only when
    // the founder leaves are all its members read, for the next founder.
    if rest.len() > MAX_SPLIT {
        if row.founder == id {
            let rest = b.story_members(&row.story, usize::MAX)?;
            let founder = rest
                .iter()
                .zip(rest.iter().map(features_of))
                .map(|(r, f)| Founder::new(&r.item, f.published))
                .min()
                .expect("not empty");
            let new_id = founder.story_id();
            b.move_story(&row.story, &new_id, &founder.item, founder.published())?;
            b.drop_story_redirect(&new_id)?;
            b.put_story_redirect(&row.story, &new_id, t)?;
            touched.push(new_id);
        }
        return Ok(Some(touched));
    }
    let feats: Vec<Features> = rest.iter().map(features_of).collect();
    let members: Vec<Member<'_>> =
        rest.iter().zip(&feats).map(|(r, features)| Member { item: &r.item, features }).collect();
    let parts = split(&PARAMS, &members);
    let old_founder = founder_of(&row);
    let founder_left = old_founder.item == id;
    for (n, (founder, indices)) in parts.iter().enumerate() {
        let new_id = founder.story_id();
        if *founder == old_founder && new_id == row.story {
            continue;
        }
        for &i in indices {
            b.set_item_story(&rest[i].item, &new_id, &founder.item, founder.published())?;
        }
        b.drop_story_redirect(&new_id)?;
        if founder_left && n == 0 {
            b.put_story_redirect(&row.story, &new_id, t)?;
        }
        touched.push(new_id);
    }
    Ok(Some(touched))
}

/// The meta key set once the stories of a store written before visibility classes are split by
/// class.
const MIGRATED_CLASS: &str = "migrated_story_class";

/// Puts every private clipping grouped in another class than its own in a story of its own
/// class, and brings the story logs of the stories that touched up to date. Returns how many
/// moved, and the feeds whose story log changed. Idempotent.
fn split_by_class(
    b: &Batch<'_>,
    cfg: &Config,
    t: DateTime<Utc>,
    beat: impl Fn(),
) -> Result<(usize, BTreeSet<FeedKey>)> {
    let (mut touched, mut moved) = (BTreeSet::new(), 0usize);
    for id in b.private_story_items()? {
        beat();
        let class = stored_class(b, cfg, &id)?;
        if let Some(f) = reclassed(b, &id, &class)? {
            super::story_log::put(b, &id, f, t, &mut touched)?;
            moved += 1;
        }
    }
    Ok((moved, super::story_log::update(b, touched, &[], t)?))
}

impl Ingest {
    /// Splits, once, the stories of a store written before visibility classes (meta
    /// `migrated_story_class`): every private clipping is put again in its class, which takes it
    /// out of any story it shared with clippings of another class (the part holding the old
    /// founder keeps the id, as for any departure), and the story logs follow, in one
    /// transaction. Public clippings' stored features are as they were, so only the private ones
    /// are read. Runs after the remap and the story backfills, on the store as they left it.
    pub(super) fn migrate_story_class(&mut self) -> Result<()> {
        let b = self.store.batch()?;
        if b.meta(MIGRATED_CLASS)?.is_some() {
            return Ok(());
        }
        let beat = self.core.heartbeat.clone();
        let (moved, changed) = split_by_class(&b, &self.core.cfg, now(), || beat.beat())?;
        b.set_meta(MIGRATED_CLASS, "1")?;
        b.commit()?;
        if moved > 0 {
            info!(
                clippings = moved,
                feeds = changed.len(),
                "private clippings regrouped in stories of their own class"
            );
        }
        self.core.dirty.extend(changed.iter().cloned());
        self.core.history.extend(changed);
        Ok(())
    }

    /// Puts every live item that is in no story yet into one: a store written before stories
    /// existed is brought up to date once, a chunk per transaction, and marked (meta
    /// `migrated_stories`) so later starts skip the search. The writer keeps every item in its
    /// story from then on.
    pub(super) fn backfill_stories(&mut self) -> Result<()> {
        let mut done = 0usize;
        loop {
            let b = self.store.batch()?;
            if b.meta(MIGRATED)?.is_some() {
                break;
            }
            let items = b.items_without_story(BACKFILL_CHUNK)?;
            if items.is_empty() {
                b.set_meta(MIGRATED, "1")?;
                b.commit()?;
                break;
            }
            let t = now();
            for (id, data) in &items {
                self.core.heartbeat.beat();
                let class = stored_class(&b, &self.core.cfg, id)?;
                put(&b, id, features(&data.clip, &class), t)?;
            }
            b.commit()?;
            done += items.len();
        }
        if done > 0 {
            info!(items = done, "clippings grouped into stories");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::PUBLIC_CLASS;
    use crate::store::Store;
    use crate::story::Member;
    use crate::story::eval::{Named, read_shared};

    /// The seeds and the first clippings of the corpus, when `../shared` is there.
    fn shared_set(n: usize) -> Option<Vec<Named>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
        if !dir.join("seeds").is_dir() {
            eprintln!("NOTICE: {} has no seeds; skipping", dir.display());
            return None;
        }
        let mut set = read_shared(&dir).unwrap();
        set.truncate(n);
        Some(set)
    }

    /// A permutation of `0..n` from a seed (a small LCG: the same seed, the same order).
    fn order(n: usize, seed: u64) -> Vec<usize> {
        let mut v: Vec<usize> = (0..n).collect();
        let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        for i in (1..n).rev() {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            v.swap(i, (x >> 33) as usize % (i + 1));
        }
        v
    }

    /// Puts the set into a fresh store in `order`, one transaction per clipping as the writer
    /// does; returns each item's story.
    fn grouped_in(set: &[Named], order: &[usize]) -> BTreeMap<String, String> {
        let mut store = Store::open_in_memory().unwrap();
        let t = chrono::DateTime::UNIX_EPOCH;
        for &i in order {
            let b = store.batch().unwrap();
            put(&b, &set[i].item, set[i].features.clone(), t).unwrap();
            b.commit().unwrap();
        }
        store.batch().unwrap().story_map().unwrap().into_iter().collect()
    }

    #[test]
    fn grouping_and_ids_do_not_depend_on_arrival_order() {
        let Some(set) = shared_set(120) else { return };
        order_independent(&set);
    }

    /// Some clippings private, in two private classes: each class is grouped on its own, in any
    /// arrival order, as grouping the whole set at once groups it.
    #[test]
    fn grouping_by_class_does_not_depend_on_arrival_order() {
        let Some(mut set) = shared_set(120) else { return };
        let unclassed = grouped_in(&set, &(0..set.len()).collect::<Vec<_>>());
        for (n, m) in set.iter_mut().enumerate() {
            let class = ["private topics/x", PUBLIC_CLASS, "private topics/y"][n % 3];
            m.features = std::mem::take(&mut m.features).in_class(class);
        }
        let reference = order_independent(&set);
        let class: BTreeMap<&str, u64> = set.iter().map(|m| (m.item.as_str(), m.features.class)).collect();
        let mut classes: BTreeMap<&String, std::collections::BTreeSet<u64>> = BTreeMap::new();
        for (item, story) in &reference {
            classes.entry(story).or_default().insert(class[item.as_str()]);
        }
        assert!(classes.values().all(|c| c.len() == 1), "a story mixes classes: {classes:?}");
        assert_ne!(reference, unclassed, "classes split some story of the set");
    }

    /// Checks that `set` is grouped the same in several arrival orders, and as a whole; returns
    /// each item's story.
    fn order_independent(set: &[Named]) -> BTreeMap<String, String> {
        let reference = grouped_in(set, &(0..set.len()).collect::<Vec<_>>());
        // The same as grouping the whole set at once: connected components named by founder.
        let members: Vec<Member<'_>> = set.iter().map(|n| Member { item: &n.item, features: &n.features }).collect();
        let (story, founders) = crate::story::group(&PARAMS, &members);
        for (n, m) in set.iter().enumerate() {
            assert_eq!(reference[&m.item], founders[story[n]].story_id(), "{}", m.name);
        }
        assert!(founders.len() < set.len(), "some clippings share a story");
        let reversed: Vec<usize> = (0..set.len()).rev().collect();
        assert_eq!(grouped_in(set, &reversed), reference, "reversed");
        for seed in 1..=3 {
            assert_eq!(grouped_in(set, &order(set.len(), seed)), reference, "order {seed}");
        }
        reference
    }

    #[test]
    fn removing_and_adding_back_gives_the_same_stories() {
        let Some(mut set) = shared_set(80) else { return };
        // One row per item: two files of one article are one item.
        set.sort_by(|a, b| a.item.cmp(&b.item));
        set.dedup_by(|a, b| a.item == b.item);
        let all: Vec<usize> = (0..set.len()).collect();
        let reference = grouped_in(&set, &all);
        let mut store = Store::open_in_memory().unwrap();
        let t = chrono::DateTime::UNIX_EPOCH;
        let b = store.batch().unwrap();
        for n in &set {
            put(&b, &n.item, n.features.clone(), t).unwrap();
        }
        // Remove the earliest member (a founder, often) and every third clipping, then put them back.
        let gone: Vec<usize> = order(set.len(), 7).into_iter().step_by(3).collect();
        for &i in &gone {
            assert!(remove(&b, &set[i].item, t).unwrap().is_some());
        }
        let left: BTreeMap<String, String> = b.story_map().unwrap().into_iter().collect();
        assert_eq!(left.len(), set.len() - gone.len());
        for &i in gone.iter().rev() {
            put(&b, &set[i].item, set[i].features.clone(), t).unwrap();
        }
        let back: BTreeMap<String, String> = b.story_map().unwrap().into_iter().collect();
        assert_eq!(back, reference);
        // Every redirect leads to a live story, never to itself.
        let live: std::collections::BTreeSet<&String> = back.values().collect();
        for (id, into) in b.story_redirects().unwrap() {
            assert_ne!(id, into);
            assert!(!live.contains(&id), "a live story {id} also redirects");
            assert!(live.contains(&into) || !back.values().any(|s| *s == into), "{id} → {into}");
        }
    }

    /// A live item `n` of one flood of look-alike reports (they all match), published at minute
    /// `n`, with an open slot in each of `feeds`, put in its story as a store written before
    /// classes put it (public features).
    fn put_flood(b: &Batch<'_>, n: i64, feeds: &[&str]) -> String {
        let text = format!(
            "---\ntitle: Harbour crane collapses at the northern container terminal, report {n}\n\
             publishedDateTime: 2024-03-05T10:{n:02}:00Z\nwebUrl: https://site{n}.example/crane\n\
             provider: {{name: S{n}, domain: site{n}.example}}\n---\nA harbour crane collapsed at the \
             northern container terminal on Tuesday morning, halting loading for the day; dockworkers \
             were evacuated and nobody was hurt, the port authority said.\n"
        );
        let clip = crate::clip::parse(text.as_bytes(), Default::default()).unwrap().clipping;
        let id = format!("item-{n}");
        let t = clip.published.unwrap();
        let data = crate::item::ItemData { clip, topics: Vec::new(), published: t, dated: true, also: Vec::new() };
        b.put_item(&id, &crate::item::Item { id: id.clone(), updated: t, data: data.clone() }, t, &id, &id).unwrap();
        for f in feeds {
            b.log_enter(&FeedKey::from_stem(f).unwrap(), &id, t).unwrap();
        }
        assert!(put(b, &id, Features::of(&data.clip), t).unwrap());
        id
    }

    #[test]
    fn a_store_written_before_classes_is_split_by_class_once() {
        let cfg = Config::parse("topics:\n  - name: Internal\n    private: true\n", std::path::Path::new("/")).unwrap();
        let mut store = Store::open_in_memory().unwrap();
        let b = store.batch().unwrap();
        // The private report is the earliest: it founds the mixed story all three are in.
        let private = put_flood(&b, 1, &["topics/internal"]);
        let public = [put_flood(&b, 2, &["feed", "providers/site2.example"]), put_flood(&b, 3, &["feed"])];
        let mixed = b.story_row(&private).unwrap().unwrap().story;
        let story = |id: &str| b.story_row(id).unwrap().unwrap().story;
        assert!(public.iter().all(|p| story(p) == mixed), "one story before");
        let t = chrono::DateTime::UNIX_EPOCH;
        let (moved, _) = split_by_class(&b, &cfg, t, || ()).unwrap();
        assert_eq!(moved, 1);
        // The part holding the old founder keeps the id; the public part is named after its own
        // earliest member, whose id owes nothing to the private clipping.
        assert_eq!(story(&private), mixed);
        let named = Founder::new(&public[0], b.story_row(&public[0]).unwrap().unwrap().founder_published);
        assert!(public.iter().all(|p| story(p) == named.story_id()), "the public reports stay one story");
        assert_eq!(b.public_story_size(&named.story_id()).unwrap(), crate::pages::StorySize { clippings: 2, sites: 2 });
        assert_eq!(
            b.public_story_size(&mixed).unwrap(),
            crate::pages::StorySize::default(),
            "nothing public is left in it"
        );
        // Idempotent: a second pass finds nothing to move.
        let before = b.story_map().unwrap();
        assert_eq!(split_by_class(&b, &cfg, t, || ()).unwrap().0, 0);
        assert_eq!(b.story_map().unwrap(), before);
    }
}
