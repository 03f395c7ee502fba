//! The writer's side of the story logs (`store/story_log.rs`): in the transaction that changes
//! items and stories, every story that change touched is looked at in every feed, and its slot
//! in that feed's story log opens, moves to the end or closes so the log says what the feed's
//! readers can see of it. Only the touched stories are read, never all of them.
//!
//! A story is touched when an item in it entered, changed in or left a feed, when an item joined
//! or left it, when it split, or when it ended in a merge. What a feed's readers see of a story
//! is its members with an open slot in the feed's `feed_log` (the visibility rule); the story
//! log signs that coverage (members, their `updated`, dates and quality, which picks the lead),
//! so any change to the item standing for the story gives it a new slot, and its `updated`
//! moves. That coverage is read from the sums the store keeps with every change
//! (`store/story_cover.rs`), and the stories a change touched are named by the change itself,
//! so a change costs the same whether its story has ten members or ten thousand. A feed whose story log changed is marked changed, which renders it and bumps its
//! generation: every cached grouped view of it is stale at once, wherever the clipping that
//! caused the change is.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use chrono::{DateTime, Utc};
use tracing::info;

use super::Ingest;
use crate::feed::FeedKey;
use crate::store::{Batch, Coverage};
use crate::story::Features;

/// The meta key set once the story logs of an older store are filled.
const MIGRATED: &str = "migrated_story_log";

/// What a feed's readers see of a story: its signature and its newest member's date.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    sig: String,
    newest: i64,
}

/// What one feed shows of one story, signed: any member joining, leaving or being edited
/// (which moves its `updated`), any date or quality (which picks the lead) changes the sums.
fn seen(c: &Coverage) -> Seen {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for n in [c.members, c.updated_sum, c.updated_max, c.published_sum, c.published_max, c.quality_sum, c.rated] {
        h.update(&n.to_le_bytes());
    }
    for id in [&c.first_item, &c.last_item] {
        h.update(id.as_bytes());
        h.update(&[0]);
    }
    Seen { sig: format!("{:032x}", h.digest128()), newest: c.published_max }
}

/// The coverage of stories by (feed, story).
fn by_feed(rows: &[Coverage]) -> BTreeMap<(String, String), Seen> {
    rows.iter().map(|c| ((c.feed.clone(), c.story.clone()), seen(c))).collect()
}

/// A new slot to hand out: the oldest stories first, so a batch of old clippings fills the
/// story logs (and their archive pages) in date order.
type Entry = (i64, String, String, String);

/// Notes the stories a put of item `id` touched: the story it is in now, and the stories its
/// merge retired into it (`retired`, as the put gives them). Not the stories that redirect to
/// it since the same second: a cold build puts every item at one time, so a story grown by
/// many merges named each of them again at every later put (a read per merge and a coverage
/// per story, for nothing: each was brought up to date when it ended).
fn note(b: &Batch<'_>, id: &str, retired: Vec<String>, touched: &mut BTreeSet<String>) -> Result<()> {
    if let Some(s) = b.story_of(id)? {
        touched.extend(retired);
        touched.insert(s);
    }
    Ok(())
}

/// `ingest/stories`' `put`, noting in `touched` the stories it changed. An item whose features
/// changed leaves its story first (`remove`, which names the stories its old story's members
/// are in now), so nothing here reads a story's members.
pub(super) fn put(
    b: &Batch<'_>,
    id: &str,
    f: Features,
    t: DateTime<Utc>,
    touched: &mut BTreeSet<String>,
) -> Result<()> {
    if b.story_row(id)?.is_some_and(|row| f.to_blob() != row.blob) {
        remove(b, id, t, touched)?;
    }
    if let Some(retired) = super::stories::put_retiring(b, id, f, t)? {
        note(b, id, retired, touched)?;
    }
    Ok(())
}

/// `ingest/stories`' `remove`, noting in `touched` the stories it changed: its old story and
/// the stories that story's other members are in now.
pub(super) fn remove(b: &Batch<'_>, id: &str, t: DateTime<Utc>, touched: &mut BTreeSet<String>) -> Result<()> {
    touched.extend(super::stories::remove(b, id, t)?.into_iter().flatten());
    Ok(())
}

/// Brings the story logs of every feed up to date for the `touched` stories (and the stories
/// of `items`, whose feeds or content changed). Returns the feeds whose story log changed.
pub(super) fn update(
    b: &Batch<'_>,
    mut touched: BTreeSet<String>,
    items: &[String],
    t: DateTime<Utc>,
) -> Result<BTreeSet<FeedKey>> {
    // In id order, so that the lookups one after the other fall on the same pages.
    let mut ids: Vec<&String> = items.iter().collect();
    ids.sort_unstable();
    for id in ids {
        touched.extend(b.story_of(id)?);
    }
    let mut changed = BTreeSet::new();
    let mut enter: Vec<Entry> = Vec::new();
    for story in &touched {
        let now = by_feed(&b.story_coverage(story)?);
        // Its open slots, less those closed here.
        let mut open: BTreeMap<String, String> = BTreeMap::new();
        for (feed, sig) in b.story_log_open(story)? {
            if now.get(&(feed.clone(), story.clone())).is_none_or(|s| s.sig != sig) {
                b.story_log_close(&feed, story, t)?;
                changed.insert(feed);
            } else {
                open.insert(feed, sig);
            }
        }
        for ((feed, _), s) in now {
            if open.get(&feed) != Some(&s.sig) {
                enter.push((s.newest, story.clone(), feed, s.sig));
            }
        }
    }
    Ok(changed.into_iter().chain(write(b, enter, t)?).filter_map(|f| FeedKey::from_stem(&f)).collect())
}

/// [`update`] for the many stories of a topic remap: what each feed's readers see of each
/// story decided for every touched story at once, from what a few passes over the tables in
/// their own order read (`Batch::stories_of_items`, `stories_coverage`, `stories_log_open`),
/// and the slots closed and opened in the story log's key order; the same slots, positions and
/// feeds as [`update`] gives. Its reads cost the tables' size whatever the change, so it is
/// for a remap (which reads every item anyway), not for one clipping's change.
pub(super) fn update_all(
    b: &Batch<'_>,
    mut touched: BTreeSet<String>,
    items: &[String],
    t: DateTime<Utc>,
) -> Result<BTreeSet<FeedKey>> {
    if !items.is_empty() {
        touched.extend(b.stories_of_items(items)?);
    }
    if touched.is_empty() {
        // Nothing to read the tables for.
        return Ok(BTreeSet::new());
    }
    let stories: Vec<String> = touched.into_iter().collect();
    let open = b.stories_log_open(&stories)?;
    let mut slots = open.slots.iter().peekable();
    let (mut changed, mut closes, mut enter) = (BTreeSet::new(), Vec::new(), Vec::<Entry>::new());
    b.stories_coverage(&stories, |i, rows| {
        let now: BTreeMap<&str, Seen> = rows.iter().map(|c| (c.feed.as_str(), seen(c))).collect();
        // Its open slots a feed at a time: as in `update`, a slot that signs other coverage
        // than the feed shows now closes every open slot of the story there.
        let mut kept: BTreeMap<&str, &str> = BTreeMap::new();
        let mine: Vec<_> = std::iter::from_fn(|| slots.next_if(|s| s.0 as usize == i)).collect();
        for pair in mine.chunk_by(|a, b| a.1 == b.1) {
            let feed = open.feeds[pair[0].1 as usize].as_str();
            let mut close = false;
            for (_, _, _, sig) in pair {
                match now.get(feed) {
                    Some(s) if &s.sig == sig => _ = kept.insert(feed, sig),
                    _ => close = true,
                }
            }
            if close {
                changed.insert(feed.to_string());
                closes.extend(pair.iter().map(|s| (feed, s.2)));
            }
        }
        for (feed, s) in now {
            if kept.get(feed) != Some(&s.sig.as_str()) {
                enter.push((s.newest, stories[i].clone(), feed.to_string(), s.sig));
            }
        }
        Ok(())
    })?;
    b.story_log_close_slots(closes, t)?;
    // Oldest story first, as `write` does.
    enter.sort();
    let rows: Vec<(&str, &str, &str)> =
        enter.iter().map(|(_, story, feed, sig)| (feed.as_str(), story.as_str(), sig.as_str())).collect();
    b.story_log_append(&rows, t)?;
    drop(rows);
    changed.extend(enter.into_iter().map(|e| e.2));
    Ok(changed.into_iter().filter_map(|f| FeedKey::from_stem(&f)).collect())
}

/// Writes new slots, oldest story first; returns their feeds.
fn write(b: &Batch<'_>, mut enter: Vec<Entry>, t: DateTime<Utc>) -> Result<BTreeSet<String>> {
    enter.sort();
    let mut feeds = BTreeSet::new();
    for (_, story, feed, sig) in enter {
        b.story_log_enter(&feed, &story, &sig, t)?;
        feeds.insert(feed);
    }
    Ok(feeds)
}

/// Fills the story log of one feed from what it shows now: a slot for every story with a
/// visible member whose open slot is missing or signs other coverage, and no open slot for any
/// other. Idempotent: a log already up to date is left as it is. Returns whether it changed.
pub(super) fn fill(b: &Batch<'_>, feed: &str, t: DateTime<Utc>) -> Result<bool> {
    let now = by_feed(&b.feed_coverage(feed)?);
    let open: BTreeMap<String, String> = b.story_log_open_in(feed)?.into_iter().collect();
    let mut changed = false;
    for (story, sig) in &open {
        if now.get(&(feed.to_string(), story.clone())).is_none_or(|s| &s.sig != sig) {
            b.story_log_close(feed, story, t)?;
            changed = true;
        }
    }
    let enter: Vec<Entry> = now
        .into_iter()
        .filter(|((_, story), s)| open.get(story) != Some(&s.sig))
        .map(|((feed, story), s)| (s.newest, story, feed, s.sig))
        .collect();
    changed |= !enter.is_empty();
    write(b, enter, t)?;
    Ok(changed)
}

impl Ingest {
    /// Whether the stories are about to be made afresh (`backfill_stories` has not marked the
    /// store, meta `migrated_stories`): the story logs must then be filled again after it.
    pub(super) fn story_log_refill_due(&mut self) -> Result<bool> {
        Ok(self.store.batch()?.meta("migrated_stories")?.is_none())
    }

    /// Fills every feed's story log once, for a store written before story logs existed (meta
    /// `migrated_story_log`), or `again` when the stories were just made afresh; runs after
    /// `backfill_stories`, whose stories it needs (it does not keep the logs). From then on
    /// the writer keeps the logs with each change. The feeds it filled render again, so their
    /// grouped views are dated anew.
    pub(super) fn backfill_story_log(&mut self, again: bool) -> Result<()> {
        let b = self.store.batch()?;
        if b.meta(MIGRATED)?.is_some() && !again {
            return Ok(());
        }
        let t = super::now();
        let mut filled = Vec::new();
        for feed in b.logged_feeds()? {
            self.core.heartbeat.beat();
            if fill(&b, &feed, t)? {
                filled.extend(FeedKey::from_stem(&feed));
            }
        }
        b.set_meta(MIGRATED, "1")?;
        b.commit()?;
        if !filled.is_empty() {
            info!(feeds = filled.len(), "story logs filled");
        }
        self.core.dirty.extend(filled.iter().cloned());
        self.core.history.extend(filled);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::{Item, ItemData};
    use crate::store::{Store, StoryRow};

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    /// A live item `key` in story `story`, with an open slot in each of `feeds`.
    fn put(b: &Batch<'_>, key: &str, story: &str, feeds: &[FeedKey], published: i64) {
        let clip =
            crate::clip::parse(format!("---\ntitle: {key}\n---\n").as_bytes(), Default::default()).unwrap().clipping;
        let data = ItemData { clip, topics: Vec::new(), published: at(published), dated: true, also: Vec::new() };
        let item = Item { id: key.to_string(), updated: at(published), data };
        b.put_item(key, &item, at(published), key, key).unwrap();
        let row = StoryRow {
            item: key.into(),
            story: story.into(),
            founder: story.into(),
            founder_published: None,
            blob: Vec::new(),
        };
        b.put_story_item(&row, &[]).unwrap();
        for f in feeds {
            b.log_enter(f, key, at(published)).unwrap();
        }
    }

    fn set(stories: &[&str]) -> BTreeSet<String> {
        stories.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn each_feed_logs_the_stories_it_can_see_and_a_merge_touches_only_those() {
        let mut store = Store::open_in_memory().unwrap();
        let b = store.batch().unwrap();
        let (all, topic) = (FeedKey::All, FeedKey::Topic("x".into()));
        put(&b, "a", "s", &[all.clone(), topic.clone()], 10);
        put(&b, "b", "s", std::slice::from_ref(&all), 20);
        put(&b, "c", "t", std::slice::from_ref(&all), 30);
        let changed = update(&b, set(&["s", "t"]), &[], at(100)).unwrap();
        assert_eq!(changed, BTreeSet::from([all.clone(), topic.clone()]));
        let slots = |feed: &str| b.story_log_slots(feed).unwrap();
        // Oldest story first; one open slot per story the feed can see.
        assert_eq!(slots("feed"), vec![(0, "s".into(), true), (1, "t".into(), true)]);
        assert_eq!(slots("topics/x"), vec![(0, "s".into(), true)]);
        // Nothing changed: nothing written, no feed touched.
        assert!(update(&b, set(&["s", "t"]), &["a".into()], at(101)).unwrap().is_empty());
        assert_eq!(slots("feed").len(), 2);
        // Story t merges into s: t's slot closes, s moves to the end of the all-feed's log; the
        // topic sees s as it was (c is not in it), so its log and generation stay.
        b.move_story("t", "s", "s", None).unwrap();
        b.put_story_redirect("t", "s", at(102)).unwrap();
        let changed = update(&b, set(&["s", "t"]), &[], at(102)).unwrap();
        assert_eq!(changed, BTreeSet::from([all.clone()]));
        assert_eq!(slots("feed"), vec![(0, "s".into(), false), (1, "t".into(), false), (2, "s".into(), true)]);
        assert_eq!(slots("topics/x"), vec![(0, "s".into(), true)]);
        // The story's last visible member leaves the topic: its slot there closes; the all-feed
        // still sees it as it was.
        b.log_leave(&topic, "a", at(103)).unwrap();
        assert_eq!(update(&b, BTreeSet::new(), &["a".into()], at(103)).unwrap(), BTreeSet::from([topic]));
        assert_eq!(slots("topics/x"), vec![(0, "s".into(), false)]);
        // Filling the logs again from scratch changes nothing (the backfill is idempotent).
        assert!(!fill(&b, "feed", at(104)).unwrap());
        assert!(!fill(&b, "topics/x", at(104)).unwrap());
    }

    /// One of the writer's calls on item `item % 6` (with its feed, story or values), or the
    /// story logs brought up to date for the stories and items whose bits are set.
    #[derive(Debug, Clone)]
    enum Op {
        Put { item: u8, published: i64, updated: i64, quality: Option<i64> },
        Gone { item: u8 },
        Enter { item: u8, feed: u8 },
        Leave { item: u8, feed: u8 },
        Join { item: u8, story: u8 },
        Part { item: u8 },
        Merge { from: u8, to: u8 },
        Update { stories: u8, items: u8 },
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        let item = 0u8..6;
        prop_oneof![
            (item.clone(), 0i64..50, 0i64..80, proptest::option::of(-3i64..9))
                .prop_map(|(item, published, updated, quality)| Op::Put { item, published, updated, quality }),
            item.clone().prop_map(|item| Op::Gone { item }),
            (item.clone(), 0u8..3).prop_map(|(item, feed)| Op::Enter { item, feed }),
            (item.clone(), 0u8..3).prop_map(|(item, feed)| Op::Leave { item, feed }),
            (item.clone(), 0u8..4).prop_map(|(item, story)| Op::Join { item, story }),
            item.prop_map(|item| Op::Part { item }),
            (0u8..4, 0u8..4).prop_map(|(from, to)| Op::Merge { from, to }),
            (any::<u8>(), any::<u8>()).prop_map(|(stories, items)| Op::Update { stories, items }),
        ]
    }

    const FEEDS: [&str; 3] = ["feed", "topics/a", "providers/b.example"];

    /// Applies `op` at time `t`; for an update, `per_story` picks the path: [`update`] or
    /// [`update_all`]. Returns the feeds an update changed.
    fn apply(b: &Batch<'_>, op: &Op, t: i64, per_story: bool) -> BTreeSet<FeedKey> {
        let key = |i: u8| format!("i{i}");
        let feed = |f: u8| FeedKey::from_stem(FEEDS[f as usize]).unwrap();
        let story = |s: u8| format!("s{s}");
        match *op {
            Op::Put { item, published, updated, quality } => {
                let text = match quality {
                    Some(q) => format!("---\ntitle: t{item} {updated}\nquality: {q}\n---\n"),
                    None => format!("---\ntitle: t{item} {updated}\n---\n"),
                };
                let clip = crate::clip::parse(text.as_bytes(), Default::default()).unwrap().clipping;
                let data =
                    ItemData { clip, topics: Vec::new(), published: at(published), dated: true, also: Vec::new() };
                let it = Item { id: key(item), updated: at(updated), data };
                b.put_item(&key(item), &it, at(0), &format!("h{t}"), &format!("s{t}")).unwrap();
            }
            Op::Gone { item } => b.tombstone_item(&key(item), at(t)).unwrap(),
            Op::Enter { item, feed: f } => b.log_enter(&feed(f), &key(item), at(t)).unwrap(),
            Op::Leave { item, feed: f } => b.log_leave(&feed(f), &key(item), at(t)).unwrap(),
            Op::Join { item, story: s } => {
                let row = StoryRow {
                    item: key(item),
                    story: story(s),
                    founder: story(s),
                    founder_published: None,
                    blob: vec![],
                };
                b.put_story_item(&row, &[]).unwrap();
            }
            Op::Part { item } => b.delete_story_item(&key(item), &[]).unwrap(),
            Op::Merge { from, to } if from != to => {
                b.move_story(&story(from), &story(to), &story(to), None).unwrap();
                b.put_story_redirect(&story(from), &story(to), at(t)).unwrap();
            }
            Op::Merge { .. } => {}
            Op::Update { stories, items } => {
                let touched: BTreeSet<String> = (0..4).filter(|s| stories & (1 << s) != 0).map(story).collect();
                let ids: Vec<String> = (0..6).filter(|i| items & (1 << i) != 0).map(key).collect();
                return match per_story {
                    true => update(b, touched, &ids, at(t)).unwrap(),
                    false => update_all(b, touched, &ids, at(t)).unwrap(),
                };
            }
        }
        BTreeSet::new()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 128, ..Default::default() })]

        /// The set-based update a remap uses leaves every story log as the story-by-story one
        /// does, slot for slot (positions, signatures, times), and names the same feeds
        /// changed, after any sequence of changes and updates.
        #[test]
        fn the_set_based_update_leaves_the_story_logs_the_per_story_one_does(
            ops in proptest::collection::vec(op(), 1..50),
        ) {
            let (mut one, mut all) = (Store::open_in_memory().unwrap(), Store::open_in_memory().unwrap());
            let (b1, b2) = (one.batch().unwrap(), all.batch().unwrap());
            for (t, op) in ops.iter().enumerate() {
                let t = t as i64 + 100;
                proptest::prop_assert_eq!(apply(&b1, op, t, true), apply(&b2, op, t, false), "{:?}", op);
                proptest::prop_assert_eq!(b1.story_log_rows().unwrap(), b2.story_log_rows().unwrap(), "{:?}", op);
            }
            // Everything touched at the end: the logs say what each feed shows, both ways.
            let last = Op::Update { stories: 0xff, items: 0xff };
            proptest::prop_assert_eq!(apply(&b1, &last, 1000, true), apply(&b2, &last, 1000, false));
            proptest::prop_assert_eq!(b1.story_log_rows().unwrap(), b2.story_log_rows().unwrap());
        }
    }

    fn cov(feed: &str, story: &str, members: &[(&str, i64, Option<i64>)]) -> Coverage {
        let ids = members.iter().map(|m| m.0.to_string());
        Coverage {
            feed: feed.into(),
            story: story.into(),
            members: members.len() as i64,
            updated_sum: members.iter().map(|m| m.1).sum(),
            updated_max: members.iter().map(|m| m.1).max().unwrap_or(0),
            published_sum: members.iter().map(|m| m.1).sum(),
            published_max: members.iter().map(|m| m.1).max().unwrap_or(0),
            quality_sum: members.iter().filter_map(|m| m.2).sum(),
            rated: members.iter().filter(|m| m.2.is_some()).count() as i64,
            first_item: ids.clone().min().unwrap_or_default(),
            last_item: ids.max().unwrap_or_default(),
        }
    }

    #[test]
    fn a_story_is_signed_by_what_each_feed_shows_of_it() {
        let rows =
            vec![cov("feed", "s", &[("a", 10, Some(1)), ("b", 20, None)]), cov("topics/x", "s", &[("a", 10, Some(1))])];
        let m = by_feed(&rows);
        assert_eq!(m.len(), 2);
        let all = &m[&("feed".to_string(), "s".to_string())];
        let topic = &m[&("topics/x".to_string(), "s".to_string())];
        assert_ne!(all.sig, topic.sig, "a member the topic cannot see changes its coverage");
        assert_eq!((all.newest, topic.newest), (20, 10));
        // Each change a reader could see changes the signature: an edit, a quality, another
        // member in place of one, a member more.
        for changed in [
            cov("feed", "s", &[("a", 10, Some(1)), ("b", 21, None)]),
            cov("feed", "s", &[("a", 10, Some(1)), ("b", 20, Some(0))]),
            cov("feed", "s", &[("a", 10, Some(1)), ("c", 20, None)]),
            cov("feed", "s", &[("a", 10, Some(1)), ("b", 20, None), ("c", 5, None)]),
        ] {
            assert_ne!(seen(&changed).sig, all.sig, "{changed:?}");
        }
    }
}
