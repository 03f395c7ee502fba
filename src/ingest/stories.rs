//! The writer's side of stories: a new or changed clipping joins, starts or merges stories, and
//! a removed one may split its story, in the transaction that changes the item. The decisions
//! are `story`'s ([`decide`], [`split`]); this file reads the candidates from the store, applies
//! the decision to the rows, and records the ids that ended. Nothing is recomputed over the
//! store: only the candidates sharing a key with the clipping, and the members of its story.

use anyhow::Result;
use chrono::{DateTime, Utc};
use tracing::info;

use super::{Core, Ingest, now};
use crate::clip::Clipping;
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
                _ => crate::pages::story_listing(&id, &b.public_story_members(&id)?),
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
    let mut hits: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for item in b.story_candidates(ranges, HOT_KEY)? {
        *hits.entry(item).or_insert(0) += 1;
    }
    let mut ranked: Vec<(usize, String)> = hits.into_iter().map(|(item, n)| (n, item)).collect();
    ranked.sort_unstable_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let mut matched: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut rows = Vec::new();
    for (_, item) in ranked.into_iter().take(MAX_JUDGED) {
        let Some(row) = b.story_row(&item)? else { continue };
        if !matched.contains(&row.story) && judge(&PARAMS, f, &features_of(&row)).is_some() {
            matched.insert(row.story.clone());
            rows.push(row);
        }
    }
    Ok(rows)
}

/// Puts a live item in its story (after taking it out of the one it was in, when its features
/// changed). Returns whether any story changed.
pub(super) fn put(b: &Batch<'_>, id: &str, clip: &Clipping, t: DateTime<Utc>) -> Result<bool> {
    put_features(b, id, Features::of(clip), t)
}

fn put_features(b: &Batch<'_>, id: &str, f: Features, t: DateTime<Utc>) -> Result<bool> {
    let blob = f.to_blob();
    if let Some(old) = b.story_row(id)? {
        if old.blob == blob {
            return Ok(false);
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
    if let Decision::Merge { retired, .. } = &decision {
        for old in retired {
            let old_id = old.story_id();
            b.move_story(&old_id, &story, &into.item, into.published())?;
            b.put_story_redirect(&old_id, &story, t)?;
        }
    }
    b.drop_story_redirect(&story)?;
    let row =
        StoryRow { item: id.to_string(), story, founder: into.item.clone(), founder_published: into.published(), blob };
    b.put_story_item(&row, &f.stored_keys())?;
    Ok(true)
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

impl Ingest {
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
                put(&b, id, &data.clip, t)?;
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
            put_features(&b, &set[i].item, set[i].features.clone(), t).unwrap();
            b.commit().unwrap();
        }
        store.batch().unwrap().story_map().unwrap().into_iter().collect()
    }

    #[test]
    fn grouping_and_ids_do_not_depend_on_arrival_order() {
        let Some(set) = shared_set(120) else { return };
        let reference = grouped_in(&set, &(0..set.len()).collect::<Vec<_>>());
        // The same as grouping the whole set at once: connected components named by founder.
        let members: Vec<Member<'_>> = set.iter().map(|n| Member { item: &n.item, features: &n.features }).collect();
        let (story, founders) = crate::story::group(&PARAMS, &members);
        for (n, m) in set.iter().enumerate() {
            assert_eq!(reference[&m.item], founders[story[n]].story_id(), "{}", m.name);
        }
        assert!(founders.len() < set.len(), "some clippings share a story");
        let reversed: Vec<usize> = (0..set.len()).rev().collect();
        assert_eq!(grouped_in(&set, &reversed), reference, "reversed");
        for seed in 1..=3 {
            assert_eq!(grouped_in(&set, &order(set.len(), seed)), reference, "order {seed}");
        }
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
            put_features(&b, &n.item, n.features.clone(), t).unwrap();
        }
        // Remove the earliest member (a founder, often) and every third clipping, then put them back.
        let gone: Vec<usize> = order(set.len(), 7).into_iter().step_by(3).collect();
        for &i in &gone {
            assert!(remove(&b, &set[i].item, t).unwrap().is_some());
        }
        let left: BTreeMap<String, String> = b.story_map().unwrap().into_iter().collect();
        assert_eq!(left.len(), set.len() - gone.len());
        for &i in gone.iter().rev() {
            put_features(&b, &set[i].item, set[i].features.clone(), t).unwrap();
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
}
