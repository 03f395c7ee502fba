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
use crate::story::{Candidate, Decision, Features, Founder, Member, Params, decide, split, window_days};

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

/// How many stories the index lists.
const LATEST_STORIES: usize = 8;

impl Core {
    /// The index's latest stories, from the all-feed's log (never a private clipping).
    pub(super) fn latest_stories(&self, b: &Batch<'_>) -> Result<Vec<crate::pages::StoryListing>> {
        let stories = b.latest_stories(LATEST_STORIES)?;
        Ok(stories.iter().filter_map(|(id, members)| crate::pages::story_listing(id, members)).collect())
    }

    /// Puts a live item in its story (after taking it out of the one it was in, when its
    /// features changed). Returns whether any story changed.
    pub(super) fn story_put(&self, b: &Batch<'_>, id: &str, clip: &Clipping, t: DateTime<Utc>) -> Result<bool> {
        let f = Features::of(clip);
        let blob = f.to_blob();
        if let Some(old) = b.story_row(id)? {
            if old.blob == blob {
                return Ok(false);
            }
            self.story_remove(b, id, t)?;
        }
        let ranges: Vec<KeyRange> =
            f.lookup_ranges(window_days(&PARAMS)).into_iter().map(|(key, lo, hi)| KeyRange { key, lo, hi }).collect();
        let rows = b.story_candidates(&ranges)?;
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
        let row = StoryRow {
            item: id.to_string(),
            story,
            founder: into.item.clone(),
            founder_published: into.published(),
            blob,
        };
        b.put_story_item(&row, &f.stored_keys())?;
        Ok(true)
    }

    /// Takes an item out of its story. The rest of the story is grouped again: the part holding
    /// the founder keeps the id; the other parts take their own founders' ids; when the founder
    /// itself left, the old id redirects to the oldest part. Returns whether it was in a story.
    pub(super) fn story_remove(&self, b: &Batch<'_>, id: &str, t: DateTime<Utc>) -> Result<bool> {
        let Some(row) = b.story_row(id)? else { return Ok(false) };
        b.delete_story_item(id, &features_of(&row).stored_keys())?;
        let rest = b.story_members(&row.story)?;
        if rest.is_empty() {
            return Ok(true);
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
        }
        Ok(true)
    }
}

impl Ingest {
    /// Puts every live item that is in no story yet into one: a store written before stories
    /// existed is brought up to date once, a chunk per transaction (then every item has a row,
    /// and this finds nothing).
    pub(super) fn backfill_stories(&mut self) -> Result<()> {
        let mut done = 0usize;
        loop {
            let b = self.store.batch()?;
            let items = b.items_without_story(BACKFILL_CHUNK)?;
            if items.is_empty() {
                break;
            }
            let t = now();
            for (id, data) in &items {
                self.core.heartbeat.beat();
                self.core.story_put(&b, id, &data.clip, t)?;
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
