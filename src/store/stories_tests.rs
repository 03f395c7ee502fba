//! The compact story tables answer as the first form did: candidates (with their per-range
//! limit), rows and members, before and after the move.

use super::*;
use crate::store::Store;

/// The story tables' first form (schema 9 before the compact form).
const FIRST_FORM: &str = "
DROP TABLE story_keys; DROP TABLE story_items;
CREATE TABLE story_items(item TEXT PRIMARY KEY, story TEXT NOT NULL, founder TEXT NOT NULL,
    founder_published INTEGER, blob BLOB NOT NULL) WITHOUT ROWID;
CREATE INDEX story_items_by_story ON story_items(story);
CREATE TABLE story_keys(key INTEGER NOT NULL, day INTEGER NOT NULL, item TEXT NOT NULL,
    PRIMARY KEY(key, day, item)) WITHOUT ROWID;
";

/// The first form's candidate query, as it was.
const FIRST_CANDIDATES: &str =
    "SELECT item FROM story_keys WHERE key=?1 AND day BETWEEN ?2 AND ?3 ORDER BY day DESC, item LIMIT ?4";

/// A small deterministic generator (xorshift), so the rows are many and varied but the same
/// every run (the cold build's tests draw theirs from it too).
pub(in crate::store) struct Rng(pub(in crate::store) u64);
impl Rng {
    pub(in crate::store) fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

/// Items (ids in no particular order against their insertion) with a few keys each, drawn from
/// a small key space and a few days, so ranges hold more items than the per-range limit and
/// days hold several items; one key is the extreme `u64::MAX` and one day `i32::MIN`.
fn rows() -> Vec<(StoryRow, Vec<(u64, i32)>)> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..300)
        .map(|i| {
            let item = format!("{:08x}-item-{i}", rng.next(1 << 32));
            let story = format!("story-{}", rng.next(40));
            let keys: Vec<(u64, i32)> = (0..1 + rng.next(6))
                .map(|_| {
                    let key = match rng.next(12) {
                        0 => u64::MAX,
                        k => k * 0x0123_4567_89ab_cdef,
                    };
                    let day = if rng.next(50) == 0 { i32::MIN } else { 20_000 + rng.next(9) as i32 };
                    (key, day)
                })
                .collect();
            let founder_published = (i % 3 != 0).then_some(i64::from(i));
            let row =
                StoryRow { item, story: story.clone(), founder: story, founder_published, blob: vec![i as u8; 5] };
            (row, keys)
        })
        .collect()
}

fn ranges() -> Vec<KeyRange> {
    let mut out = Vec::new();
    for k in 0..12u64 {
        let key = if k == 0 { u64::MAX } else { k * 0x0123_4567_89ab_cdef };
        for (lo, hi) in [(i32::MIN, i32::MAX), (20_000, 20_008), (20_002, 20_004), (20_005, 20_005), (30_000, 30_001)] {
            out.push(KeyRange { key, lo, hi });
        }
    }
    out
}

/// Candidates as the forms can be compared: every candidate of each range (no limit) in
/// sorted order, and how many a limited read returns. Which of a hot key's rows a limited read
/// returns depends on the order of the key table (by item then, by number now, read backwards
/// so the limit stops the read).
fn comparable(mut cands: Vec<Vec<String>>) -> Vec<Vec<String>> {
    let last = cands.len() - 1;
    for (i, c) in cands.iter_mut().enumerate() {
        if i == last {
            c.sort();
        } else {
            *c = vec![c.len().to_string()];
        }
    }
    cands
}

/// Every answer the writer asks the story tables for, through the batch's own functions.
fn answers(b: &Batch<'_>, items: &[String]) -> (Vec<Vec<String>>, Vec<String>, Vec<Vec<String>>) {
    let cands = [1, 3, 16, 1000].iter().map(|&per| b.story_candidates(&ranges(), per).unwrap()).collect();
    let cands = comparable(cands);
    let rows = items
        .iter()
        .map(|i| {
            b.story_row(i).unwrap().map(|r| format!("{} {} {:?} {:?}", r.story, r.founder, r.founder_published, r.blob))
        })
        .map(Option::unwrap_or_default)
        .collect();
    let members = (0..40)
        .map(|s| b.story_members(&format!("story-{s}"), usize::MAX).unwrap().into_iter().map(|r| r.item).collect())
        .collect();
    (cands, rows, members)
}

#[test]
fn the_move_to_the_compact_form_keeps_every_answer() {
    let mut store = Store::open_in_memory().unwrap();
    let rows = rows();
    let items: Vec<String> = rows.iter().map(|(r, _)| r.item.clone()).collect();
    // The compact form filled by the writer's own function.
    let fresh = {
        let b = store.batch().unwrap();
        for (r, keys) in &rows {
            b.put_story_item(r, keys).unwrap();
        }
        let a = answers(&b, &items);
        b.tx.execute("DELETE FROM story_items", []).unwrap();
        b.tx.execute("DELETE FROM story_keys", []).unwrap();
        b.commit().unwrap();
        a
    };
    // The first form, filled as the writer filled it then, and asked with its own query.
    store.conn.execute_batch(FIRST_FORM).unwrap();
    store.conn.execute("DELETE FROM meta WHERE key=?1", [COMPACT]).unwrap();
    let mut first_cands = Vec::new();
    {
        let b = store.batch().unwrap();
        for (r, keys) in &rows {
            b.tx.execute(
                "INSERT INTO story_items(item, story, founder, founder_published, blob) VALUES(?1, ?2, ?3, ?4, ?5)",
                params![r.item, r.story, r.founder, r.founder_published, r.blob],
            )
            .unwrap();
            for (key, day) in keys {
                b.tx.execute(
                    "INSERT OR IGNORE INTO story_keys(key, day, item) VALUES(?1, ?2, ?3)",
                    params![*key as i64, day, r.item],
                )
                .unwrap();
            }
        }
        for per in [1i64, 3, 16, 1000] {
            let mut all = Vec::new();
            for r in ranges() {
                let mut stmt = b.tx.prepare(FIRST_CANDIDATES).unwrap();
                let found =
                    stmt.query_map(params![r.key as i64, r.lo, r.hi, per], |row| row.get::<_, String>(0)).unwrap();
                all.extend(found.map(Result::unwrap));
            }
            first_cands.push(all);
        }
        b.commit().unwrap();
    }
    assert!(first_cands[0].len() < first_cands[1].len() && first_cands[2].len() < first_cands[3].len());
    assert_eq!(fresh.0, comparable(first_cands), "a fresh compact store finds the candidates the first form found");

    migrate_story_keys_compact(&store.conn).unwrap();
    let moved = {
        let b = store.batch().unwrap();
        answers(&b, &items)
    };
    assert_eq!(moved, fresh, "after the move: the same candidates, rows and members");
    let key_rows: i64 = store.conn.query_row("SELECT count(*) FROM story_keys", [], |r| r.get(0)).unwrap();
    let distinct: usize = rows
        .iter()
        .flat_map(|(r, ks)| ks.iter().map(move |k| (k, &r.item)))
        .collect::<std::collections::HashSet<_>>()
        .len();
    assert_eq!(key_rows as usize, distinct, "every key row moved, once");

    // Once only: a second call changes nothing, and the writer keeps working on the result.
    migrate_story_keys_compact(&store.conn).unwrap();
    let b = store.batch().unwrap();
    assert_eq!(answers(&b, &items), fresh);
    let (gone, keys) = &rows[7];
    b.delete_story_item(&gone.item, keys).unwrap();
    assert!(b.story_row(&gone.item).unwrap().is_none());
    assert!(!b.story_candidates(&ranges(), 1000).unwrap().contains(&gone.item), "its keys went with it");
    b.put_story_item(gone, keys).unwrap();
    assert_eq!(answers(&b, &items), fresh, "put back, it is found as before");
}
