//! The cold build's stand-ins answer as what they stand for: the key mirror's candidates are
//! the table's, in the same order, whatever the limit; its keys reach the table at each commit;
//! a transaction that never commits drops it; coverage summed from the rows is what the
//! triggers' sums give.

use super::*;
use crate::store::StoryRow;
use crate::store::key_filter::FILTER_FIRST;
use crate::store::stories::tests::Rng;
use crate::store::{BULK_CACHE_KIB, COLD_CACHE_KIB, DEFAULT_CACHE_KIB, WAL_BACKSTOP_PAGES};

/// Rows with keys from a small space over a few days (hot keys hold more than any limit), one
/// key `u64::MAX` (negative in the table) and one day `i32::MIN`.
fn rows() -> Vec<(StoryRow, Vec<(u64, i32)>)> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    (0..240)
        .map(|i| {
            let item = format!("{:08x}-item-{i}", rng.next(1 << 32));
            let keys: Vec<(u64, i32)> = (0..1 + rng.next(5))
                .map(|_| {
                    let key = if rng.next(9) == 0 { u64::MAX } else { rng.next(7) * 0x0123_4567_89ab_cdef };
                    let day = if rng.next(40) == 0 { i32::MIN } else { 20_000 + rng.next(6) as i32 };
                    (key, day)
                })
                .collect();
            let story = format!("story-{}", rng.next(30));
            let row = StoryRow { item, story: story.clone(), founder: story, founder_published: None, blob: vec![1] };
            (row, keys)
        })
        .collect()
}

fn ranges() -> Vec<KeyRange> {
    let mut out = Vec::new();
    for k in 0..8u64 {
        let key = if k == 7 { u64::MAX } else { k * 0x0123_4567_89ab_cdef };
        for (lo, hi) in [(i32::MIN, i32::MAX), (20_001, 20_004), (20_003, 20_003), (20_004, 20_002)] {
            out.push(KeyRange { key, lo, hi });
        }
    }
    out
}

/// Every candidate answer, per limit, with each candidate's number; each candidate's row read
/// by that number is its row read by item id.
fn answers(b: &Batch<'_>) -> Vec<Vec<(String, i64)>> {
    let out: Vec<Vec<(String, i64)>> =
        [1, 2, 5, 16, 1000].iter().map(|&per| b.story_candidates_numbered(&ranges(), per).unwrap()).collect();
    let spelt = |r: Option<StoryRow>| r.map(|r| format!("{} {} {} {:?}", r.item, r.story, r.founder, r.blob));
    for (item, n) in out.iter().flatten() {
        assert_eq!(spelt(b.story_row_numbered(item, *n).unwrap()), spelt(b.story_row(item).unwrap()));
        // A number that names another item (or none) reads the item's own row all the same.
        for other in [n + 1, n - 1, -5] {
            assert_eq!(spelt(b.story_row_numbered(item, other).unwrap()), spelt(b.story_row(item).unwrap()));
        }
    }
    out
}

/// Puts every row (and takes every seventh out again) in `store`, a transaction per 60 rows;
/// the answers after each transaction, read inside it before its commit.
fn fill(store: &mut Store) -> Vec<Vec<Vec<(String, i64)>>> {
    let mut seen = Vec::new();
    for chunk in rows().chunks(60) {
        let b = store.batch().unwrap();
        for (i, (row, keys)) in chunk.iter().enumerate() {
            b.put_story_item(row, keys).unwrap();
            if i % 7 == 3 {
                b.delete_story_item(&row.item, keys).unwrap();
            }
        }
        seen.push(answers(&b));
        b.commit().unwrap();
    }
    seen
}

#[test]
fn the_mirror_answers_as_the_table_and_fills_it_at_each_commit() {
    let mut table = Store::open_in_memory().unwrap();
    let mut mirrored = Store::open_in_memory().unwrap();
    assert!(mirrored.begin_cold().unwrap());
    assert!(mirrored.cold.borrow().keys.is_some(), "an empty key table is mirrored");
    let by_table = fill(&mut table);
    let by_mirror = fill(&mut mirrored);
    assert!(by_table.iter().flatten().flatten().count() > 500, "the answers hold candidates");
    assert_eq!(by_mirror, by_table);
    assert!(mirrored.cold.borrow().keys.is_some(), "still on");
    // The table behind the mirror holds the same rows.
    let keys = |s: &Store| -> Vec<(i64, i64, String)> {
        s.conn
            .prepare("SELECT k.key, k.day, s.item FROM story_keys k JOIN story_items s ON s.n = k.n ORDER BY 1, 2, 3")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    assert_eq!(keys(&mirrored), keys(&table));
    mirrored.end_cold().unwrap();
    assert!(!mirrored.in_cold());
    let b = mirrored.batch().unwrap();
    assert_eq!(answers(&b), answers(&table.batch().unwrap()), "the table answers once the build ends");
}

#[test]
fn a_transaction_that_never_commits_drops_the_mirror() {
    let mut store = Store::open_in_memory().unwrap();
    store.begin_cold().unwrap();
    let rows = rows();
    {
        let b = store.batch().unwrap();
        b.put_story_item(&rows[0].0, &rows[0].1).unwrap();
        // Dropped: rolled back.
    }
    let b = store.batch().unwrap();
    assert!(store_mirror_off(&b), "the mirror no longer mirrors the table");
    assert!(b.story_candidates(&ranges(), 100).unwrap().is_empty(), "the rolled-back keys are nowhere");
}

fn store_mirror_off(b: &Batch<'_>) -> bool {
    b.cold.borrow().keys.is_none()
}

#[test]
fn a_store_with_story_keys_is_not_mirrored() {
    let mut store = Store::open_in_memory().unwrap();
    let rows = rows();
    let b = store.batch().unwrap();
    b.put_story_item(&rows[0].0, &rows[0].1).unwrap();
    b.commit().unwrap();
    assert!(store.begin_cold().unwrap());
    assert!(store.cold.borrow().keys.is_none());
}

fn cache_kib(s: &Store) -> i64 {
    -s.conn.query_row("PRAGMA cache_size", [], |r| r.get::<_, i64>(0)).unwrap()
}

/// A large batch's page cache: 16 MiB while a cold build mirrors its keys, 64 MiB once it does
/// not (here: a build resumed on a store holding keys), the default again at the batch's end;
/// a batch that is no cold build keeps 16 MiB.
#[test]
fn a_cold_build_without_its_mirror_takes_the_larger_cache() {
    let mut mirrored = Store::open_in_memory().unwrap();
    mirrored.begin_cold().unwrap();
    mirrored.begin_bulk().unwrap();
    mirrored.batch().unwrap().commit().unwrap();
    assert_eq!(cache_kib(&mirrored), BULK_CACHE_KIB);

    let mut resumed = Store::open_in_memory().unwrap();
    let rows = rows();
    let b = resumed.batch().unwrap();
    b.put_story_item(&rows[0].0, &rows[0].1).unwrap();
    b.commit().unwrap();
    resumed.begin_bulk().unwrap();
    resumed.batch().unwrap().commit().unwrap();
    assert_eq!(cache_kib(&resumed), BULK_CACHE_KIB, "not cold: the batch's cache");
    resumed.begin_cold().unwrap();
    resumed.batch().unwrap().commit().unwrap();
    assert_eq!(cache_kib(&resumed), COLD_CACHE_KIB);
    resumed.end_cold().unwrap();
    resumed.end_bulk().unwrap();
    assert_eq!(cache_kib(&resumed), DEFAULT_CACHE_KIB);
    resumed.batch().unwrap().commit().unwrap();
    assert_eq!(cache_kib(&resumed), DEFAULT_CACHE_KIB, "nothing raises it after the batch");
}

/// One item of the window test: its row, its stored keys, and the ranges it looks its
/// candidates up in before it is put, as `Features::lookup_ranges` makes them (a windowed key
/// of a dated item: around its day, and undated; of an undated one, or a key not windowed: at
/// any date).
type WindowItem = (StoryRow, Vec<(u64, i32)>, Vec<KeyRange>);

/// 600 items over 120 days, oldest first, five a day, with hot windowed keys (more items than
/// any limit within one window) and rarer keys looked up at any date; among them a day far
/// after the rest and one far before, items dated days or weeks behind the build's dates (after
/// those days were let go), and undated ones.
fn window_items() -> Vec<WindowItem> {
    const W: i32 = 9;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut days: Vec<Option<i32>> = (0..600).map(|i| Some(20_000 + i / 5)).collect();
    days[250] = Some(26_000);
    days[251] = Some(9_000);
    for (i, back) in [(400, 70), (401, 40), (402, 12), (480, 95), (560, 3)] {
        days[i] = Some(20_000 + i as i32 / 5 - back);
    }
    for i in [300, 301, 590, 599] {
        days[i] = None;
    }
    days.iter()
        .enumerate()
        .map(|(i, &day)| {
            let item = format!("{:08x}-item-{i}", rng.next(1 << 32));
            let mut keys = Vec::new();
            let mut ranges = Vec::new();
            for _ in 0..1 + rng.next(4) {
                let key = (1 + rng.next(10)) * 0x0123_4567_89ab_cdef;
                keys.push((key, day.unwrap_or(i32::MIN)));
                match day {
                    Some(d) => ranges.extend([(key, d - W, d + W), (key, i32::MIN, i32::MIN)]),
                    None => ranges.push((key, i32::MIN, i32::MAX)),
                }
            }
            for _ in 0..1 + rng.next(2) {
                let key = if rng.next(15) == 0 { u64::MAX } else { 0x7777 + rng.next(150) * 0x0fed_cba9 };
                keys.push((key, i32::MIN));
                ranges.push((key, i32::MIN, i32::MAX));
            }
            let ranges = ranges.into_iter().map(|(key, lo, hi)| KeyRange { key, lo, hi }).collect();
            let story = format!("story-{}", rng.next(50));
            let row = StoryRow { item, story: story.clone(), founder: story, founder_published: None, blob: vec![2] };
            (row, keys, ranges)
        })
        .collect()
}

/// Builds the window test's items in `store`, 40 a transaction (every ninth taken out again
/// at once); each item's candidates, at a few limits, looked up just before it is put.
fn fill_window(store: &mut Store) -> Vec<Vec<(String, i64)>> {
    let mut seen = Vec::new();
    for chunk in window_items().chunks(40) {
        let b = store.batch().unwrap();
        for (i, (row, keys, ranges)) in chunk.iter().enumerate() {
            for per in [2, 16, 1000] {
                seen.push(b.story_candidates_numbered(ranges, per).unwrap());
            }
            b.put_story_item(row, keys).unwrap();
            if i % 9 == 4 {
                b.delete_story_item(&row.item, keys).unwrap();
            }
        }
        b.commit().unwrap();
    }
    seen
}

/// The mirror lets go of the days the build has left behind, and answers as the table all the
/// same: across the window's boundary, for items dated far from the rest or behind the
/// build's dates, undated ones, and keys looked up at any date.
#[test]
fn the_mirror_bounded_by_the_window_answers_as_the_table() {
    let mut table = Store::open_in_memory().unwrap();
    let mut mirrored = Store::open_in_memory().unwrap();
    mirrored.begin_cold().unwrap();
    let by_table = fill_window(&mut table);
    let by_mirror = fill_window(&mut mirrored);
    assert!(by_table.iter().filter(|a| a.len() > 20).count() > 500, "answers past the smaller limits");
    for (i, (m, t)) in by_mirror.iter().zip(&by_table).enumerate() {
        assert_eq!(m, t, "lookup {i} (item {}, limit {})", i / 3, [2, 16, 1000][i % 3]);
    }
    assert_eq!(by_mirror.len(), by_table.len());
    let rows = |s: &Store| {
        rows_of(
            &s.conn,
            "SELECT k.key, k.day, s.item FROM story_keys k JOIN story_items s ON s.n = k.n ORDER BY 1, 2, 3",
        )
    };
    assert_eq!(rows(&mirrored), rows(&table));
    let cold = mirrored.cold.borrow();
    let k = cold.keys.as_ref().expect("still on");
    assert!(k.held_from > 20_090, "days let go: up to {}", k.held_from);
    let dated = |e: &Entry| e.1 != i32::MIN;
    let held = k.settled.iter().filter(|e| dated(e)).count();
    let all: i64 =
        table.conn.query_row("SELECT count(*) FROM story_keys WHERE day > ?1", [i32::MIN], |r| r.get(0)).unwrap();
    assert!(held * 5 < all as usize, "{held} dated entries held of {all}");
    assert!(k.table_answers > 20, "ranges the table answered: {}", k.table_answers);
}

/// The mirror of a store where the undated entries are let go past 40 held, and the filters of
/// keys let go begin with 8 keys (so that they grow through several stages).
fn tighten(store: &Store) {
    let mut cold = store.cold.borrow_mut();
    let k = cold.keys.as_mut().expect("mirrored");
    k.undated_max = 40;
    k.undated_let_go.first = 8;
    k.dated_let_go.first = 8;
}

/// The undated entries held and the undated rows of the table.
fn undated_counts(mirrored: &Store, table: &Store) -> (usize, i64) {
    let cold = mirrored.cold.borrow();
    let held = cold.keys.as_ref().expect("still on").settled.iter().filter(|e| e.1 == i32::MIN).count();
    let all = table.conn.query_row("SELECT count(*) FROM story_keys WHERE day = ?1", [i32::MIN], |r| r.get(0)).unwrap();
    (held, all)
}

/// With the undated entries let go as well (most of them, their keys through filters of
/// several stages), every answer is still the table's.
#[test]
fn the_mirror_letting_undated_entries_go_answers_as_the_table() {
    let mut table = Store::open_in_memory().unwrap();
    let mut mirrored = Store::open_in_memory().unwrap();
    mirrored.begin_cold().unwrap();
    tighten(&mirrored);
    let by_table = fill_window(&mut table);
    let by_mirror = fill_window(&mut mirrored);
    for (i, (m, t)) in by_mirror.iter().zip(&by_table).enumerate() {
        assert_eq!(m, t, "lookup {i} (item {}, limit {})", i / 3, [2, 16, 1000][i % 3]);
    }
    assert_eq!(by_mirror.len(), by_table.len());
    let keys = "SELECT k.key, k.day, s.item FROM story_keys k JOIN story_items s ON s.n = k.n ORDER BY 1, 2, 3";
    assert_eq!(rows_of(&mirrored.conn, keys), rows_of(&table.conn, keys));
    let (held, all) = undated_counts(&mirrored, &table);
    assert!(held <= 80 && all > 400, "{held} undated entries held of {all}");
    let cold = mirrored.cold.borrow();
    let k = cold.keys.as_ref().unwrap();
    assert!(k.undated_let_go.stages.len() >= 3, "stages: {}", k.undated_let_go.stages.len());
    assert!(k.items.len() < 300, "item ids held: {}", k.items.len());
    assert!(k.held_from > 20_090);
    assert!(k.table_answers > 100, "ranges the table answered: {}", k.table_answers);
}

/// Items whose entries, dated and undated, were let go are taken out and put again (some with
/// other keys, some in the transaction after): every lookup before, between and after, and the
/// key table, are the table-only store's.
#[test]
fn an_item_let_go_taken_out_and_put_again_answers_as_the_table() {
    let mut table = Store::open_in_memory().unwrap();
    let mut mirrored = Store::open_in_memory().unwrap();
    mirrored.begin_cold().unwrap();
    tighten(&mirrored);
    fill_window(&mut table);
    fill_window(&mut mirrored);
    let items = window_items();
    // Old items (every entry let go), and a few recent ones (held).
    let chosen: Vec<usize> = (0..420).step_by(23).chain([591, 596]).filter(|i| i % 40 % 9 != 4).collect();
    {
        let cold = mirrored.cold.borrow();
        let k = cold.keys.as_ref().unwrap();
        let held: std::collections::HashSet<u32> = k.settled.iter().map(|e| e.2).collect();
        let let_go = chosen
            .iter()
            .filter(|&&i| {
                let n: u32 = mirrored
                    .conn
                    .query_row("SELECT n FROM story_items WHERE item = ?1", [&items[i].0.item], |r| r.get(0))
                    .unwrap();
                !held.contains(&n)
            })
            .count();
        assert!(let_go >= 15, "{let_go} of {} chosen items wholly let go", chosen.len());
    }
    let run = |store: &mut Store| {
        let mut seen = Vec::new();
        let look = |b: &Batch<'_>, seen: &mut Vec<_>| {
            for &i in &chosen {
                for per in [2, 16, 1000] {
                    seen.push(b.story_candidates_numbered(&items[i].2, per).unwrap());
                }
            }
        };
        let b = store.batch().unwrap();
        look(&b, &mut seen);
        for (j, &i) in chosen.iter().enumerate() {
            let (row, keys, _) = &items[i];
            b.delete_story_item(&row.item, keys).unwrap();
            look(&b, &mut seen);
            if j % 3 == 0 {
                continue;
            }
            // Every other one with its keys on another day (and undated keys of another item).
            let keys: Vec<(u64, i32)> = if j % 3 == 1 {
                keys.clone()
            } else {
                keys.iter()
                    .map(|&(k, d)| (k, if d == i32::MIN { d } else { d + 40 }))
                    .chain(items[i + 1].1.clone())
                    .collect()
            };
            b.put_story_item(row, &keys).unwrap();
            look(&b, &mut seen);
        }
        b.commit().unwrap();
        let b = store.batch().unwrap();
        look(&b, &mut seen);
        for &i in chosen.iter().step_by(3) {
            b.put_story_item(&items[i].0, &items[i].1).unwrap();
        }
        look(&b, &mut seen);
        b.commit().unwrap();
        let b = store.batch().unwrap();
        look(&b, &mut seen);
        b.commit().unwrap();
        seen
    };
    let by_table = run(&mut table);
    let by_mirror = run(&mut mirrored);
    assert!(by_table.iter().filter(|a| !a.is_empty()).count() > by_table.len() / 2);
    for (i, (m, t)) in by_mirror.iter().zip(&by_table).enumerate() {
        assert_eq!(m, t, "lookup {i}");
    }
    assert_eq!(by_mirror.len(), by_table.len());
    let keys = "SELECT k.key, k.day, s.item FROM story_keys k JOIN story_items s ON s.n = k.n ORDER BY 1, 2, 3";
    assert_eq!(rows_of(&mirrored.conn, keys), rows_of(&table.conn, keys));
    assert!(mirrored.cold.borrow().keys.is_some(), "still on");
}

/// The filter of keys let go names every key put in it, and few others: measured over 300,000
/// keys put (two stages) and a million others asked.
#[test]
fn the_key_filter_names_few_keys_it_was_not_given() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut f = KeyFilter::default();
    let put: Vec<u64> = (0..300_000).map(|_| rng.next(u64::MAX)).collect();
    for &k in &put {
        f.put(k);
    }
    assert!(put.iter().all(|&k| f.names(k)), "every key put is named");
    assert_eq!(f.stages.len(), 2);
    let named = (0..1_000_000).filter(|_| f.names(rng.next(u64::MAX))).count();
    let one_stage = {
        let mut g = KeyFilter::default();
        put[..FILTER_FIRST].iter().for_each(|&k| g.put(k));
        (0..1_000_000).filter(|_| g.names(rng.next(u64::MAX))).count()
    };
    eprintln!("false positives: one full stage {one_stage} in 1,000,000; two stages {named}");
    assert!(one_stage < 4_500, "one stage: {one_stage}");
    assert!(named < 8_000, "two stages: {named}");
}

#[test]
fn a_full_key_filter_names_every_key_and_holds_nothing() {
    let mut rng = Rng(0x0bad_cafe_f00d_d00d);
    // Stages of 64 and 256 keys (96 and 384 bytes) fit in 600 bytes; a third (1,536) would not.
    let mut f = KeyFilter { first: 64, max_bytes: 600, ..KeyFilter::default() };
    let (mut put, mut most, mut unnamed) = (Vec::new(), 0, 0);
    while put.len() < 10_000 {
        if f.bytes() == 480 {
            unnamed = unnamed.max((0..1_000).filter(|_| !f.names(rng.next(u64::MAX))).count());
        }
        let k = rng.next(u64::MAX);
        f.put(k);
        put.push(k);
        most = most.max(f.bytes());
        if most > 0 && f.bytes() == 0 {
            break;
        }
    }
    assert_eq!(most, 480, "two stages at most");
    assert!(unnamed > 0, "before it was full, some keys were not named");
    assert_eq!(f.bytes(), 0, "full: its stages let go");
    assert!((0..10_000).all(|_| f.names(rng.next(u64::MAX))), "full: every key named (the table answers)");
    assert!(put.iter().all(|&k| f.names(k)));
}

/// The end of a cold build that fails (here: another connection holds the store's write lock)
/// leaves no transaction open: the next batch begins, and the end, tried again, fills the
/// coverage as a build that ended at once does.
#[test]
fn a_cold_end_that_fails_leaves_the_store_writable() {
    let dir = tempfile::tempdir().unwrap();
    let build = |name: &str| {
        let mut store = Store::open(&dir.path().join(name)).unwrap();
        store.begin_cold().unwrap();
        let b = store.batch().unwrap();
        for (row, keys) in rows().iter().take(40) {
            b.put_story_item(row, keys).unwrap();
        }
        b.commit().unwrap();
        store
    };
    let mut first = build("first.db");
    let other = Connection::open(dir.path().join("first.db")).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    first.conn.busy_timeout(std::time::Duration::from_millis(20)).unwrap();
    assert!(first.end_cold().is_err(), "the write lock is held elsewhere");
    other.execute_batch("ROLLBACK").unwrap();
    first.conn.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    first.batch().expect("no transaction left open").commit().unwrap();
    assert!(first.in_cold(), "the build goes on till its end succeeds");
    // A fill that fails inside its transaction (its last write refused) is undone and ended.
    first
        .conn
        .execute_batch(
            "CREATE TEMP TRIGGER refuse BEFORE INSERT ON main.meta WHEN NEW.key LIKE 'migrated_story_cover%'
             BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        .unwrap();
    let failed = first.end_cold().expect_err("the fill's last write is refused");
    assert!(format!("{failed:#}").contains("refused"), "{failed:#}");
    assert!(first.conn.is_autocommit(), "no transaction or savepoint left open");
    first.conn.execute_batch("DROP TRIGGER temp.refuse").unwrap();
    first.batch().expect("no transaction left open").commit().unwrap();
    assert!(first.in_cold());
    first.end_cold().unwrap();
    assert!(!first.in_cold());
    let mut second = build("second.db");
    second.end_cold().unwrap();
    assert_eq!(dump(&mut first, &[]), dump(&mut second, &[]));
}

#[test]
fn a_cold_end_waits_for_a_write_lock_held_a_moment_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("s.db")).unwrap();
    store.begin_cold().unwrap();
    let b = store.batch().unwrap();
    for (row, keys) in rows().iter().take(40) {
        b.put_story_item(row, keys).unwrap();
    }
    b.commit().unwrap();
    // Another connection (as the checkpoint thread's truncation does) holds the write lock
    // until the writer has waited for it.
    static WAITED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    fn wait(tries: i32) -> bool {
        WAITED.store(true, std::sync::atomic::Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(5));
        tries < 12_000
    }
    store.conn.busy_handler(Some(wait)).unwrap();
    let other = Connection::open(dir.path().join("s.db")).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let holder = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !WAITED.load(std::sync::atomic::Ordering::SeqCst) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        other.execute_batch("ROLLBACK").unwrap();
    });
    store.end_cold().expect("the fill waits for the lock instead of failing");
    holder.join().unwrap();
    assert!(WAITED.load(std::sync::atomic::Ordering::SeqCst), "the fill met the lock and waited");
    store.conn.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    assert!(!store.in_cold());
    store.batch().unwrap().commit().unwrap();
}

/// A remap holds the checkpoint its commits would make by themselves past the backstop until it
/// ends, through its render's commit; its end gives the backstop back and cuts the WAL.
#[test]
fn a_remap_holds_the_commits_own_checkpoint_until_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let mut s = Store::open(&path).unwrap();
    let auto = |s: &Store| s.conn.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(auto(&s), i64::from(WAL_BACKSTOP_PAGES));
    s.begin_remap().unwrap();
    s.hold_checkpoints().unwrap();
    assert_eq!(auto(&s), 0);
    let rows = rows();
    let b = s.batch().unwrap();
    b.put_story_item(&rows[0].0, &rows[0].1).unwrap();
    b.commit().unwrap();
    s.end_bulk_cache().unwrap();
    assert_eq!(cache_kib(&s), DEFAULT_CACHE_KIB);
    assert_eq!(auto(&s), 0, "held through the render that follows");
    s.batch().unwrap().commit().unwrap();
    s.end_remap().unwrap();
    assert_eq!(auto(&s), i64::from(WAL_BACKSTOP_PAGES));
    let wal = std::fs::metadata(dir.path().join("store.db-wal")).map_or(0, |m| m.len());
    assert_eq!(wal, 0, "the WAL is cut at the remap's end");
}
