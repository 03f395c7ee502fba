//! The sums the triggers keep against the full computation, over random sequences of the
//! writer's own calls: items joining, leaving and changing stories, entering and leaving feeds,
//! edited (times, quality), deleted and revived; stories merged and renamed.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use proptest::prelude::*;

use super::super::{Batch, Store, StoryRow};
use super::*;
use crate::feed::FeedKey;
use crate::item::{Item, ItemData};

fn at(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
}

/// The coverage of `story` summed over its visible members: what the writer signed stories by
/// before the sums were kept.
fn full(b: &Batch<'_>, story: &str) -> Vec<Coverage> {
    let sql = super::super::story_log::coverage_sql(
        "FROM story_items s JOIN items i ON i.id = s.item
         JOIN feed_log l ON l.id = i.id AND l.left_at IS NULL
         WHERE s.story=?1 AND i.deleted_at IS NULL GROUP BY l.feed",
        "ORDER BY feed",
    );
    let mut stmt = b.tx.prepare(&sql).unwrap();
    let rows = stmt.query_map([story], super::super::story_log::coverage_row).unwrap();
    rows.collect::<rusqlite::Result<_>>().unwrap()
}

const FEEDS: [&str; 3] = ["feed", "topics/a", "providers/b.example"];
const STORIES: [&str; 3] = ["s0", "s1", "s2"];

fn feed(n: u8) -> FeedKey {
    FeedKey::from_stem(FEEDS[n as usize % FEEDS.len()]).unwrap()
}

/// One of the writer's calls, on item `item % 6` (and feed, story, values where it takes them).
#[derive(Debug, Clone)]
enum Op {
    Put { item: u8, published: i64, updated: i64, quality: Option<i64> },
    Tombstone { item: u8 },
    Enter { item: u8, feed: u8 },
    Leave { item: u8, feed: u8 },
    Join { item: u8, story: u8 },
    Part { item: u8 },
    MoveStory { from: u8, to: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    let item = 0u8..6;
    prop_oneof![
        (item.clone(), 0i64..50, 0i64..80, proptest::option::of(-3i64..9))
            .prop_map(|(item, published, updated, quality)| Op::Put { item, published, updated, quality }),
        item.clone().prop_map(|item| Op::Tombstone { item }),
        (item.clone(), 0u8..3).prop_map(|(item, feed)| Op::Enter { item, feed }),
        (item.clone(), 0u8..3).prop_map(|(item, feed)| Op::Leave { item, feed }),
        (item.clone(), 0u8..3).prop_map(|(item, story)| Op::Join { item, story }),
        item.prop_map(|item| Op::Part { item }),
        (0u8..3, 0u8..3).prop_map(|(from, to)| Op::MoveStory { from, to }),
    ]
}

fn key(item: u8) -> String {
    format!("i{item}")
}

fn apply(b: &Batch<'_>, op: &Op, t: i64) {
    match *op {
        Op::Put { item, published, updated, quality } => {
            let text = match quality {
                Some(q) => format!("---\ntitle: t{item} {updated}\nquality: {q}\n---\n"),
                None => format!("---\ntitle: t{item} {updated}\n---\n"),
            };
            let clip = crate::clip::parse(text.as_bytes(), Default::default()).unwrap().clipping;
            assert_eq!(clip.quality, quality);
            let data = ItemData { clip, topics: Vec::new(), published: at(published), dated: true, also: Vec::new() };
            let it = Item { id: key(item), updated: at(updated), data };
            b.put_item(&key(item), &it, at(0), &format!("h{t}"), &format!("s{t}")).unwrap();
        }
        Op::Tombstone { item } => b.tombstone_item(&key(item), at(t)).unwrap(),
        Op::Enter { item, feed: f } => b.log_enter(&feed(f), &key(item), at(t)).unwrap(),
        Op::Leave { item, feed: f } => b.log_leave(&feed(f), &key(item), at(t)).unwrap(),
        Op::Join { item, story } => {
            let s = STORIES[story as usize];
            let row =
                StoryRow { item: key(item), story: s.into(), founder: s.into(), founder_published: None, blob: vec![] };
            b.put_story_item(&row, &[]).unwrap();
        }
        Op::Part { item } => b.delete_story_item(&key(item), &[]).unwrap(),
        Op::MoveStory { from, to } => {
            let (from, to) = (STORIES[from as usize], STORIES[to as usize]);
            if from != to {
                b.move_story(from, to, to, None).unwrap();
            }
        }
    }
}

fn check(b: &Batch<'_>, after: &str) {
    for s in STORIES {
        assert_eq!(b.story_coverage(s).unwrap(), full(b, s), "story {s} after {after}");
    }
    // No sums are left behind for a (story, feed) nothing is visible in.
    let sums: i64 = b.tx.query_row("SELECT COUNT(*) FROM story_sums", [], |r| r.get(0)).unwrap();
    let shown: BTreeSet<(String, String)> =
        STORIES.iter().flat_map(|s| full(b, s)).map(|c| (c.story, c.feed)).collect();
    assert_eq!(sums as usize, shown.len(), "after {after}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn the_kept_sums_are_the_full_computation(ops in proptest::collection::vec(op(), 1..60)) {
        let mut store = Store::open_in_memory().unwrap();
        let b = store.batch().unwrap();
        for (t, op) in ops.iter().enumerate() {
            apply(&b, op, t as i64 + 100);
            check(&b, &format!("step {t}: {op:?}"));
        }
    }
}

/// What the feed logs, tombstones and coverage hold, by value (the coverage's numbers spelt out).
fn slots_and_cover(b: &Batch<'_>) -> Vec<String> {
    let queries = [
        "SELECT feed, pos, id, entered_at, left_at FROM feed_log ORDER BY 1, 2",
        "SELECT feed, id, at FROM tombstones ORDER BY 1, 2",
        "SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY 1",
    ];
    let bulk = super::super::bulk::COVER_ROWS;
    queries.iter().chain(&bulk).flat_map(|q| super::super::bulk::rows_of(&b.tx, q)).collect()
}

/// The pairs as `Batch::move_slots` takes them.
fn refs(pairs: &[(FeedKey, String)]) -> Vec<(FeedKey, &str)> {
    pairs.iter().map(|(f, id)| (f.clone(), id.as_str())).collect()
}

/// Distinct (item, feed) pairs, in the order first given.
fn pairs(raw: &[(u8, u8)]) -> Vec<(FeedKey, String)> {
    let mut out: Vec<(FeedKey, String)> = Vec::new();
    for &(item, f) in raw {
        let pair = (feed(f), key(item));
        if !out.contains(&pair) {
            out.push(pair);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A remap's set-based slot writes, with the triggers on `feed_log` held off, leave what the
    /// same leaves and enters made one by one through the triggers leave: the same slots,
    /// tombstones, coverage rows and sums (the full computation), and the triggers in place.
    #[test]
    fn set_based_slot_moves_leave_what_the_triggers_would(
        ops in proptest::collection::vec(op(), 1..40),
        leaves in proptest::collection::vec((0u8..6, 0u8..3), 0..8),
        enters in proptest::collection::vec((0u8..6, 0u8..3), 0..8),
    ) {
        let (leaves, enters) = (pairs(&leaves), pairs(&enters));
        let mut one = Store::open_in_memory().unwrap();
        let mut set = Store::open_in_memory().unwrap();
        let (b1, b2) = (one.batch().unwrap(), set.batch().unwrap());
        for (t, op) in ops.iter().enumerate() {
            apply(&b1, op, t as i64 + 100);
            apply(&b2, op, t as i64 + 100);
        }
        let t = at(1000);
        for (f, id) in &leaves {
            b1.log_leave(f, id, t).unwrap();
        }
        for (f, id) in &enters {
            b1.log_enter(f, id, t).unwrap();
        }
        b2.move_slots(&refs(&leaves), &refs(&enters), t).unwrap();
        check(&b2, "the set-based moves");
        prop_assert_eq!(slots_and_cover(&b2), slots_and_cover(&b1));
        // The triggers are back: a later change is followed as before.
        for b in [&b1, &b2] {
            b.log_leave(&feed(0), &key(0), at(1001)).unwrap();
            b.log_enter(&feed(1), &key(1), at(1001)).unwrap();
        }
        check(&b2, "a change after the moves");
        prop_assert_eq!(slots_and_cover(&b2), slots_and_cover(&b1));
    }
}

#[test]
fn a_story_s_coverage_reads_its_own_rows_only() {
    let mut store = Store::open_in_memory().unwrap();
    let b = store.batch().unwrap();
    let ops = [
        Op::Put { item: 0, published: 10, updated: 12, quality: Some(3) },
        Op::Put { item: 1, published: 20, updated: 20, quality: None },
        Op::Put { item: 2, published: 30, updated: 31, quality: Some(-1) },
        Op::Join { item: 0, story: 0 },
        Op::Join { item: 1, story: 0 },
        Op::Join { item: 2, story: 1 },
        Op::Enter { item: 0, feed: 0 },
        Op::Enter { item: 1, feed: 0 },
        Op::Enter { item: 1, feed: 1 },
        Op::Enter { item: 2, feed: 0 },
    ];
    for (t, op) in ops.iter().enumerate() {
        apply(&b, op, t as i64);
    }
    let s0 = b.story_coverage("s0").unwrap();
    let (i0, i1) = (key(0), key(1));
    let want = |feed: &str, members, u: (i64, i64), p: (i64, i64), q: (i64, i64), ids: (&str, &str)| Coverage {
        feed: feed.into(),
        story: "s0".into(),
        members,
        updated_sum: u.0,
        updated_max: u.1,
        published_sum: p.0,
        published_max: p.1,
        quality_sum: q.0,
        rated: q.1,
        first_item: ids.0.into(),
        last_item: ids.1.into(),
    };
    let base = 1_700_000_000;
    assert_eq!(
        s0,
        vec![
            want("feed", 2, (2 * base + 32, base + 20), (2 * base + 30, base + 20), (3, 1), (&i0, &i1)),
            want("topics/a", 1, (base + 20, base + 20), (base + 20, base + 20), (0, 0), (&i1, &i1)),
        ]
    );
    // The whole story moves: its sums go with it, nothing is left under the old id.
    apply(&b, &Op::MoveStory { from: 0, to: 1 }, 20);
    assert!(b.story_coverage("s0").unwrap().is_empty());
    assert_eq!(b.story_coverage("s1").unwrap()[0].members, 3);
}

#[test]
fn an_older_store_is_filled_once() {
    let mut store = Store::open_in_memory().unwrap();
    let b = store.batch().unwrap();
    for (t, op) in [
        Op::Put { item: 0, published: 10, updated: 12, quality: Some(3) },
        Op::Join { item: 0, story: 0 },
        Op::Enter { item: 0, feed: 0 },
        Op::Enter { item: 0, feed: 2 },
    ]
    .iter()
    .enumerate()
    {
        apply(&b, op, t as i64);
    }
    // As a store written before the sums: none kept, not marked.
    b.tx.execute_batch(
        "DELETE FROM story_cover; DELETE FROM story_sums; DELETE FROM meta WHERE key='migrated_story_cover_numbered';",
    )
    .unwrap();
    assert!(b.story_coverage("s0").unwrap().is_empty());
    migrate_story_cover(&b.tx).unwrap();
    assert_eq!(b.story_coverage("s0").unwrap(), full(&b, "s0"));
    assert_eq!(full(&b, "s0").len(), 2);
    // Marked: a second call changes nothing, even where the tables were emptied.
    b.tx.execute_batch("DELETE FROM story_cover; DELETE FROM story_sums;").unwrap();
    migrate_story_cover(&b.tx).unwrap();
    assert!(b.story_coverage("s0").unwrap().is_empty());
}

/// The first form of the tables, as a store written before the numbered form has them: items by
/// id, the maxima in two more indexes, a trigger of its own on `items`, and its own mark.
const FIRST_FORM: &str = "
CREATE TABLE story_cover(story TEXT NOT NULL, feed TEXT NOT NULL, item TEXT NOT NULL, updated INTEGER NOT NULL,
    published INTEGER NOT NULL, quality INTEGER, PRIMARY KEY(story, feed, item)) WITHOUT ROWID;
CREATE INDEX story_cover_by_item ON story_cover(item, feed);
CREATE INDEX story_cover_updated ON story_cover(story, feed, updated);
CREATE INDEX story_cover_published ON story_cover(story, feed, published);
CREATE TABLE story_sums(story TEXT NOT NULL, feed TEXT NOT NULL, members INTEGER NOT NULL,
    updated_sum INTEGER NOT NULL, published_sum INTEGER NOT NULL, quality_sum INTEGER NOT NULL,
    rated INTEGER NOT NULL, PRIMARY KEY(story, feed)) WITHOUT ROWID;
CREATE TRIGGER story_cover_item_out AFTER DELETE ON items BEGIN
    DELETE FROM story_cover WHERE item = OLD.id;
END;
INSERT INTO story_cover VALUES('s0', 'feed', 'i0', 1, 1, NULL);
INSERT INTO story_sums VALUES('s0', 'feed', 1, 1, 1, 0, 0);
INSERT INTO meta(key, value) VALUES('migrated_story_cover', '1');
";

#[test]
fn the_first_form_is_dropped_and_filled_again_in_the_numbered_form() {
    let mut store = Store::open_in_memory().unwrap();
    let b = store.batch().unwrap();
    let ops = [
        Op::Put { item: 0, published: 10, updated: 12, quality: Some(3) },
        Op::Put { item: 1, published: 20, updated: 25, quality: None },
        Op::Join { item: 0, story: 0 },
        Op::Join { item: 1, story: 0 },
        Op::Enter { item: 0, feed: 0 },
        Op::Enter { item: 1, feed: 0 },
        Op::Enter { item: 1, feed: 1 },
    ];
    for (t, op) in ops.iter().enumerate() {
        apply(&b, op, t as i64);
    }
    let want = full(&b, "s0");
    assert_eq!(want.len(), 2);
    drop_story_cover(&b.tx).unwrap();
    b.tx.execute_batch(FIRST_FORM).unwrap();
    migrate_story_cover(&b.tx).unwrap();
    assert_eq!(b.story_coverage("s0").unwrap(), want);
    let names = |sql: &str| -> Vec<String> {
        b.tx.prepare(sql).unwrap().query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    };
    assert_eq!(
        names("SELECT name FROM sqlite_master WHERE tbl_name='story_cover' AND type='index' ORDER BY name"),
        ["story_cover_by_item"]
    );
    assert_eq!(
        names("SELECT name FROM pragma_table_info('story_cover') ORDER BY cid"),
        ["m", "n", "updated", "published", "quality"]
    );
    assert_eq!(names("SELECT key FROM meta WHERE key LIKE 'migrated_story_cover%'"), ["migrated_story_cover_numbered"]);
    // The writer keeps the new form: the newest member leaves, the maxima fall back.
    apply(&b, &Op::Leave { item: 1, feed: 0 }, 20);
    check(&b, "the newest member left");
    let feed = &b.story_coverage("s0").unwrap()[0];
    assert_eq!((feed.members, feed.updated_max, feed.published_max), (1, 1_700_000_012, 1_700_000_010));
    apply(&b, &Op::Tombstone { item: 0 }, 21);
    check(&b, "a member deleted");
}

/// The triggers in the store, (name, text), by name.
fn triggers(conn: &Connection) -> Vec<(String, String)> {
    let mut stmt = conn.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<rusqlite::Result<_>>().unwrap()
}

fn names(t: &[(String, String)]) -> Vec<&str> {
    t.iter().map(|(n, _)| n.as_str()).collect()
}

/// `slots_held` drops the three triggers on `feed_log` while the writes run and makes again
/// exactly those it dropped, as they were: all three in a store kept by its triggers, none while
/// a cold build has set every trigger aside (the others are not brought back before the build's
/// end), and a remap's moves in a cold build leave the triggers to the build's end.
#[test]
fn slots_held_makes_again_exactly_the_triggers_it_dropped() {
    let mut store = Store::open_in_memory().unwrap();
    {
        let b = store.batch().unwrap();
        for (t, op) in [Op::Put { item: 0, published: 1, updated: 2, quality: None }, Op::Enter { item: 0, feed: 1 }]
            .iter()
            .enumerate()
        {
            apply(&b, op, t as i64);
        }
        let before = triggers(&b.tx);
        let mut all = TRIGGERS.to_vec();
        all.sort_unstable();
        assert_eq!(names(&before), all);
        b.tx.execute_batch(MOVES).unwrap();
        let inside = slots_held(&b.tx, || Ok(triggers(&b.tx))).unwrap();
        let kept: Vec<&str> = all.iter().copied().filter(|t| !SLOT_TRIGGERS.contains(t)).collect();
        assert_eq!(names(&inside), kept);
        assert_eq!(triggers(&b.tx), before, "the same triggers, the same text");
        // A write that fails: the triggers come back all the same.
        let failed: Result<()> = slots_held(&b.tx, || anyhow::bail!("a failed write"));
        assert!(failed.is_err());
        assert_eq!(triggers(&b.tx), before);
        // Some triggers set aside (the cold build's `suspend` drops them all): none comes back.
        suspend(&b.tx).unwrap();
        assert_eq!(triggers(&b.tx), []);
        let inside = slots_held(&b.tx, || Ok(triggers(&b.tx))).unwrap();
        assert_eq!((names(&inside), names(&triggers(&b.tx))), (vec![], vec![]));
        b.commit().unwrap();
    }
    // Through the remap's moves, in a cold build begun on a store kept by its triggers.
    let mut store = Store::open_in_memory().unwrap();
    let before = triggers(&store.batch().unwrap().tx);
    assert!(store.begin_cold().unwrap());
    {
        let b = store.batch().unwrap();
        apply(&b, &Op::Put { item: 1, published: 1, updated: 2, quality: None }, 0);
        let pairs = pairs(&[(1, 0), (1, 2)]);
        b.move_slots(&[], &refs(&pairs), at(10)).unwrap();
        assert_eq!(names(&triggers(&b.tx)), Vec::<&str>::new(), "brought back inside the cold build");
        b.commit().unwrap();
    }
    store.end_cold().unwrap();
    assert_eq!(triggers(&store.batch().unwrap().tx), before);
}
