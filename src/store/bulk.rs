//! The store's side of a cold build (a first start, a rebuild: a store that has never finished a
//! reconcile): the per-row work that only serves later small changes is set aside while the
//! writer fills the store, and done once, set-based, at the end.
//!
//! - **Story coverage.** The triggers that keep `story_cover` and `story_sums` on every change
//!   to `items`, `story_items` and `feed_log` (`store/story_cover.rs`) are dropped for the build,
//!   with the meta key that says the tables are filled. Meanwhile a story's coverage is summed
//!   from its rows (`Batch::story_coverage`: the same definition, one story at a time); at the
//!   end the tables and triggers are made again and filled in one `INSERT … SELECT` each
//!   (`migrate_story_cover`). A crash in between leaves the meta key absent, so the next open
//!   fills them the same way before anything reads them.
//! - **Story keys** ([`KeyMirror`]). When `story_keys` is empty as the build begins, its rows
//!   are mirrored in memory: new clippings find their candidates there (the same answer, in the
//!   same order, as the table's query), and each transaction's keys are written at its commit,
//!   sorted, instead of one B-tree insert per key per clipping. The table holds at every commit
//!   what the per-key path would have left. The mirror is bounded by the grouping's window: a
//!   build refreshes its items oldest first, and a lookup reaches only so many days back, so at
//!   each commit the dated entries of the days its lookups have left behind are let go; the
//!   undated ones (looked up at any date, nearly every one a key of its own) are let go by item
//!   number, the older half once too many are held. The keys of entries let go are noted in
//!   Bloom filters that grow with the build ([`KeyFilter`], each bounded: a full one names
//!   every key, so the table answers what was let go). Whatever the order, the answers
//!   stay the table's: a range that may reach an entry let go, under a key the filter names,
//!   is answered by the held entries only when they settle it (a full answer above what was
//!   let go), else by the table with the entries put since. A transaction that never commits
//!   leaves the mirror out of step, so the next one drops it and the table answers; so does a
//!   mirror grown past [`MAX_ENTRIES`], which bounds its memory. A large batch's build without
//!   the mirror takes a larger page cache (`store`'s `COLD_CACHE_KIB`), the key table's pages
//!   being read and written at random from then on.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use anyhow::Result;
use rusqlite::{Connection, params};

use super::key_filter::KeyFilter;
use super::story_log::{Coverage, coverage_row, coverage_sql};
use super::{Batch, KeyRange, Store};

/// The most (key, day, item number) entries mirrored: 16 bytes each, 32 MiB (more while a commit
/// sorts them in). Entries of days the build has left behind are let go at each commit
/// ([`KeyMirror::let_go_behind`]), and the undated ones of the oldest items past
/// [`UNDATED_HELD`] ([`KeyMirror::let_go_undated`]), so what counts against this is the days of
/// the grouping's window; past it (a flood of clippings in a few days) the table (complete at
/// every commit) answers.
const MAX_ENTRIES: usize = 2_000_000;

/// The undated entries held (a clipping's URL, related URLs and min-hash bands, about 12 of the
/// generator's ~30 keys a clipping, looked up at any date, nearly every one a key of its own):
/// past this many, those of the older half of the items are let go, their keys noted in
/// [`KeyMirror::undated_let_go`]. 6.4 MiB, about 33,000 clippings' worth.
const UNDATED_HELD: usize = 400_000;

/// The day the key table gives undated entries (`story::group`'s), below every real day: looked
/// up at any date.
const UNDATED: i32 = i32::MIN;

#[cfg(test)]
thread_local! {
    /// Tests only: no cold build on this thread (the per-row path, to compare the two).
    pub(crate) static OFF: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// What a cold build has set aside, held by the [`Store`] while it runs.
#[derive(Debug, Default)]
pub(crate) struct Cold {
    /// Between [`Store::begin_cold`] and [`Store::end_cold`].
    active: bool,
    keys: Option<KeyMirror>,
}

/// An entry of `story_keys`: (key, day, item number), ordered as the table's primary key (16
/// bytes: a number past `u32::MAX` switches the mirror off).
type Entry = (u64, i32, u32);

/// One candidate as the table's query gives it: (day, number, item id).
pub(super) type TableRow = (i32, i64, String);

/// `story_keys` in memory (see the module header): the entries as of the last commit in one
/// sorted array (16 bytes each; a B-tree of them took twice that, 14 MiB more at the peak of a
/// cold build of 10,000), and those put since in a small B-tree, written at the commit. Dated
/// entries of days before [`KeyMirror::held_from`] may have been let go (their keys noted in
/// [`KeyMirror::dated_let_go`]), and undated ones numbered up to [`KeyMirror::undated_below`]
/// (their keys noted in [`KeyMirror::undated_let_go`]): a range reaching them is answered by
/// the table where the mirror cannot tell.
#[derive(Debug)]
pub(crate) struct KeyMirror {
    settled: Vec<Entry>,
    fresh: BTreeSet<Entry>,
    /// Item ids by number.
    items: HashMap<u32, Box<str>>,
    /// Changed since the last commit.
    dirty: bool,
    /// Every dated entry of a day from this one on is held; `UNDATED` (nothing let go) until
    /// the first commit that lets dated entries go.
    held_from: i32,
    /// The keys with a dated entry let go (a few thousand: words and names, shared by many).
    dated_let_go: KeyFilter,
    /// Every undated entry numbered above this is held.
    undated_below: u32,
    /// The keys with an undated entry let go (about 12 a clipping let go).
    undated_let_go: KeyFilter,
    /// Undated entries held, about (what sets off [`KeyMirror::let_go_undated`]).
    undated_held: usize,
    /// [`UNDATED_HELD`], smaller in tests.
    undated_max: usize,
    /// The first day each lookup of this transaction reached (its dated ranges' least start):
    /// where the build's dates stand, for the next commit to let go what is behind them.
    asked: Vec<i32>,
    /// Tests only: ranges the table answered because the mirror could not tell.
    #[cfg(test)]
    table_answers: usize,
}

impl Default for KeyMirror {
    fn default() -> Self {
        KeyMirror {
            settled: Vec::new(),
            fresh: BTreeSet::new(),
            items: HashMap::new(),
            dirty: false,
            held_from: UNDATED,
            dated_let_go: KeyFilter::default(),
            undated_below: 0,
            undated_let_go: KeyFilter::default(),
            undated_held: 0,
            undated_max: UNDATED_HELD,
            asked: Vec::new(),
            #[cfg(test)]
            table_answers: 0,
        }
    }
}

impl KeyMirror {
    /// The items indexed under any of `ranges`, as `Batch::story_candidates` reads them from the
    /// table: per range, latest day first, then the highest number, at most `per_range`. A range
    /// that may reach entries let go, and whose answer the held ones do not settle (fewer than
    /// `per_range` of them above what was let go), is answered by `table` (that range's rows
    /// as of the last commit, the same order and limit), with the entries put since.
    fn candidates(
        &mut self,
        ranges: &[KeyRange],
        per_range: usize,
        mut table: impl FnMut(&KeyRange) -> Result<Vec<TableRow>>,
    ) -> Result<Vec<(String, i64)>> {
        let mut out = Vec::new();
        if let Some(first) = ranges.iter().filter(|r| r.lo <= r.hi && r.lo != UNDATED).map(|r| r.lo).min() {
            self.asked.push(first);
        }
        for r in ranges.iter().filter(|r| r.lo <= r.hi) {
            let (lo, hi) = ((r.key, r.lo, 0), (r.key, r.hi, u32::MAX));
            // Entries at or below this may be missing: every entry above it is held.
            let hidden = self.hidden_below(r);
            // One search: the range is read downwards from its top until it ends.
            let to = self.settled.partition_point(|e| *e <= hi);
            let mut old = self.settled[..to].iter().rev().take_while(|e| **e >= lo).peekable();
            let mut new = self.fresh.range(lo..=hi).rev().peekable();
            // The two, merged in descending order.
            let merged = std::iter::from_fn(|| match (old.peek(), new.peek()) {
                (Some(a), Some(b)) if a > b => old.next(),
                (Some(_), Some(_)) | (None, Some(_)) => new.next(),
                (Some(_), None) => old.next(),
                (None, None) => None,
            });
            let mut found = Vec::new();
            let mut settled = per_range == 0;
            for e in merged {
                if hidden.is_some_and(|h| *e <= h) {
                    break;
                }
                // As the table's join: a number without an item row is no candidate.
                if let Some(item) = self.items.get(&e.2) {
                    found.push((item.to_string(), i64::from(e.2)));
                    if found.len() == per_range {
                        settled = true;
                        break;
                    }
                }
            }
            if hidden.is_none() || settled {
                out.extend(found);
                continue;
            }
            #[cfg(test)]
            {
                self.table_answers += 1;
            }
            // The table's rows (every entry as of the last commit, whether held or not) and the
            // entries put since, merged in descending order, each once.
            let mut rows = table(r)?.into_iter().peekable();
            let mut new = self
                .fresh
                .range(lo..=hi)
                .rev()
                .filter_map(|&(_, day, n)| self.items.get(&n).map(|item| (day, i64::from(n), item.to_string())))
                .peekable();
            let merged = std::iter::from_fn(|| match (rows.peek(), new.peek()) {
                (Some(a), Some(b)) if (a.0, a.1) == (b.0, b.1) => {
                    new.next();
                    rows.next()
                }
                (Some(a), Some(b)) if (a.0, a.1) > (b.0, b.1) => rows.next(),
                (Some(_), Some(_)) | (None, Some(_)) => new.next(),
                (Some(_), None) => rows.next(),
                (None, None) => None,
            });
            out.extend(merged.take(per_range).map(|(_, n, item)| (item, n)));
        }
        Ok(out)
    }

    /// The greatest entry of range `r` that may have been let go, if any may have been: a dated
    /// one of a day before [`KeyMirror::held_from`], else an undated one numbered up to
    /// [`KeyMirror::undated_below`], under a key the filter of its kind names.
    fn hidden_below(&self, r: &KeyRange) -> Option<Entry> {
        let top = r.hi.min(self.held_from.saturating_sub(1));
        if r.lo.max(UNDATED + 1) <= top && self.dated_let_go.names(r.key) {
            return Some((r.key, top, u32::MAX));
        }
        (r.lo == UNDATED && self.undated_let_go.names(r.key)).then_some((r.key, UNDATED, self.undated_below))
    }

    fn put(&mut self, item: &str, n: u32, keys: &[(u64, i32)]) {
        self.dirty = true;
        // A number can be given again once its row is gone (SQLite hands out the largest plus one).
        self.items.insert(n, item.into());
        for &(key, day) in keys {
            if self.settled.binary_search(&(key, day, n)).is_err() && self.fresh.insert((key, day, n)) && day == UNDATED
            {
                self.undated_held += 1;
            }
        }
    }

    fn delete(&mut self, n: u32, keys: &[(u64, i32)]) {
        self.dirty = true;
        for &(key, day) in keys {
            let mut gone = self.fresh.remove(&(key, day, n));
            if let Ok(i) = self.settled.binary_search(&(key, day, n)) {
                self.settled.remove(i);
                gone = true;
            }
            if gone && day == UNDATED {
                self.undated_held = self.undated_held.saturating_sub(1);
            }
        }
    }

    /// Writes the entries put since the last commit, in key order.
    fn flush(&self, tx: &Connection) -> Result<()> {
        let mut ins = tx.prepare_cached("INSERT OR IGNORE INTO story_keys(key, day, n) VALUES(?1, ?2, ?3)")?;
        for &(key, day, n) in &self.fresh {
            ins.execute(params![key as i64, day, n])?;
        }
        Ok(())
    }

    /// The entries written at a commit that succeeded join the settled ones; then those the
    /// build has left behind are let go, and the undated ones of the oldest items when there
    /// are too many.
    fn settle(&mut self) {
        self.dirty = false;
        if !self.fresh.is_empty() {
            self.settled.reserve_exact(self.fresh.len());
            self.settled.extend(std::mem::take(&mut self.fresh));
            self.settled.sort_unstable();
        }
        self.let_go_behind();
        if self.undated_held > self.undated_max {
            self.let_go_undated();
        }
    }

    /// Lets go the undated entries of the older half of the items that have any (by number: a
    /// build numbers its items as it puts them), their keys noted in the filter; then the item
    /// ids no entry held names any more. A lookup under one of those keys is answered by the
    /// table where the held entries do not settle it (see [`KeyMirror::hidden_below`]), so
    /// which ones go is a matter of speed only: a build's recent items are the likelier to
    /// share a URL with the next.
    fn let_go_undated(&mut self) {
        let mut numbers: Vec<u32> = self.settled.iter().filter(|e| e.1 == UNDATED).map(|e| e.2).collect();
        if numbers.is_empty() {
            self.undated_held = 0;
            return;
        }
        let mid = numbers.len() / 2;
        let cut = (*numbers.select_nth_unstable(mid).1).max(self.undated_below);
        drop(numbers);
        self.undated_below = cut;
        let filter = &mut self.undated_let_go;
        self.settled.retain(|&(key, d, n)| {
            let keep = d != UNDATED || n > cut;
            if !keep {
                filter.put(key);
            }
            keep
        });
        self.undated_held = self.settled.iter().filter(|e| e.1 == UNDATED).count();
        let top = self.settled.iter().map(|e| e.2).max().unwrap_or(0) as usize;
        let mut named = vec![0u64; top / 64 + 1];
        for e in &self.settled {
            named[e.2 as usize / 64] |= 1 << (e.2 % 64);
        }
        self.items.retain(|&n, _| named[n as usize / 64] >> (n % 64) & 1 == 1);
        self.items.shrink_to_fit();
        tracing::debug!(
            below = cut,
            held = self.settled.len(),
            items = self.items.len(),
            filter_kib = (self.undated_let_go.bytes() + self.dated_let_go.bytes()) / 1024,
            "story key mirror: undated entries of the oldest items let go"
        );
    }

    /// Lets go the dated entries of days before the median of the first days this transaction's
    /// lookups reached. A build refreshing its items oldest first (`ingest/bulk`'s `BatchKeys`)
    /// asks for no earlier day again but through an item dated out of that order; such a
    /// lookup (or any other) is answered exactly all the same (see [`KeyMirror::candidates`]),
    /// by the table where need be. The median, not the least or the last: one item far from
    /// the rest moves it little.
    fn let_go_behind(&mut self) {
        if self.asked.is_empty() {
            return;
        }
        let mid = self.asked.len() / 2;
        let day = *self.asked.select_nth_unstable(mid).1;
        self.asked.clear();
        if day <= self.held_from {
            return;
        }
        self.held_from = day;
        let filter = &mut self.dated_let_go;
        self.settled.retain(|&(key, d, _)| {
            let keep = d == UNDATED || d >= day;
            if !keep {
                filter.put(key);
            }
            keep
        });
    }

    fn len(&self) -> usize {
        self.settled.len() + self.fresh.len()
    }
}

impl Store {
    /// Begins a cold build (see the module header): the coverage triggers dropped, in their own
    /// transaction, and the story keys mirrored when the table is empty. Returns whether a
    /// build is under way (one whose end failed goes on, for [`Store::end_cold`] to end).
    pub fn begin_cold(&mut self) -> Result<bool> {
        if self.cold.borrow().active {
            return Ok(true);
        }
        #[cfg(test)]
        if OFF.get() {
            return Ok(false);
        }
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        super::story_cover::suspend(&tx)?;
        let empty: bool = tx.query_row("SELECT NOT EXISTS(SELECT 1 FROM story_keys)", [], |r| r.get(0))?;
        tx.commit()?;
        *self.cold.borrow_mut() = Cold { active: true, keys: empty.then(KeyMirror::default) };
        Ok(true)
    }

    /// Ends a cold build, whether it went well or not: the coverage tables made again and filled
    /// from the rows, with their triggers. Until this succeeds, coverage is summed from the rows
    /// (the build stays in force), so a failure here costs speed, never correctness.
    pub fn end_cold(&mut self) -> Result<()> {
        if !self.cold.borrow().active {
            return Ok(());
        }
        self.cold.borrow_mut().keys = None;
        let started = std::time::Instant::now();
        super::story_cover::migrate_story_cover(&self.conn)?;
        *self.cold.borrow_mut() = Cold::default();
        tracing::debug!(ms = started.elapsed().as_millis() as u64, "cold build: story coverage filled");
        Ok(())
    }

    /// Whether a cold build is under way (begun, not yet ended).
    pub fn in_cold(&self) -> bool {
        self.cold.borrow().active
    }

    /// Whether a cold build is under way without its key mirror (dropped, or never on).
    pub(super) fn cold_unmirrored(&self) -> bool {
        let cold = self.cold.borrow();
        cold.active && cold.keys.is_none()
    }

    /// As a transaction begins: a mirror changed by a transaction that never committed is
    /// dropped.
    pub(super) fn cold_batch_begins(&self) {
        let mut cold = self.cold.borrow_mut();
        if cold.keys.as_ref().is_some_and(|k| k.dirty) {
            cold.keys = None;
        }
    }
}

/// A batch's handle on the cold build's state.
pub(super) type ColdRef<'a> = &'a RefCell<Cold>;

impl Batch<'_> {
    /// Writes the story keys put in this transaction (called just before it commits).
    pub(super) fn cold_flush(&self) -> Result<()> {
        match self.cold.borrow_mut().keys.as_mut() {
            Some(k) => k.flush(&self.tx),
            None => Ok(()),
        }
    }

    /// Called once this transaction has committed: the mirror is in step with the table again;
    /// past [`MAX_ENTRIES`] it is dropped.
    pub(super) fn cold_committed(cold: ColdRef<'_>) {
        let mut cold = cold.borrow_mut();
        if let Some(k) = cold.keys.as_mut() {
            k.settle();
            if k.len() > MAX_ENTRIES {
                tracing::debug!(entries = k.len(), "story key mirror full; the table answers from here on");
                cold.keys = None;
            }
        }
    }

    /// The mirror's candidates, when it is on (see `Batch::story_candidates`).
    pub(super) fn cold_candidates(&self, ranges: &[KeyRange], per_range: usize) -> Result<Option<Vec<(String, i64)>>> {
        let mut cold = self.cold.borrow_mut();
        let Some(k) = cold.keys.as_mut() else { return Ok(None) };
        Ok(Some(k.candidates(ranges, per_range, |r| self.table_candidates(r, per_range))?))
    }

    /// Notes an item's keys in the mirror; `false` when it is off (the caller writes them). A
    /// number too large for it switches it off, once what it holds is written.
    pub(super) fn cold_put_keys(&self, item: &str, n: i64, keys: &[(u64, i32)]) -> Result<bool> {
        let mut cold = self.cold.borrow_mut();
        let Some(k) = cold.keys.as_mut() else { return Ok(false) };
        match u32::try_from(n) {
            Ok(n) => k.put(item, n, keys),
            Err(_) => {
                k.flush(&self.tx)?;
                cold.keys = None;
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Forgets an item's keys in the mirror, when it is on (the caller deletes them from the
    /// table as well: some may have been written at an earlier commit).
    pub(super) fn cold_delete_keys(&self, n: i64, keys: &[(u64, i32)]) {
        if let (Some(k), Ok(n)) = (self.cold.borrow_mut().keys.as_mut(), u32::try_from(n)) {
            k.delete(n, keys);
        }
    }

    /// Whether a cold build has the coverage set aside (it is then summed from the rows).
    pub(super) fn coverage_set_aside(&self) -> bool {
        self.cold.borrow().active
    }

    /// A story's coverage summed from its rows while the coverage tables are set aside; `None`
    /// when they are kept (the sums answer).
    pub(super) fn cold_coverage(&self, story: &str) -> Result<Option<Vec<Coverage>>> {
        if !self.cold.borrow().active {
            return Ok(None);
        }
        let sql = coverage_sql(
            "FROM story_items s JOIN items i ON i.id = s.item JOIN feed_log l ON l.id = s.item AND l.left_at IS NULL
             WHERE s.story = ?1 AND i.deleted_at IS NULL GROUP BY l.feed",
            "ORDER BY feed",
        );
        let mut stmt = self.tx.prepare_cached(&sql)?;
        let rows = stmt.query_map([story], coverage_row)?;
        Ok(Some(rows.collect::<rusqlite::Result<_>>()?))
    }
}

impl Batch<'_> {
    /// Indexes items' search columns (id, published, columns), in the order given, one after
    /// the other with nothing in between, so the index takes them in a few large segments (see
    /// `fts::put_doc`); each as `fts::put` would have.
    pub(crate) fn index_docs(
        &self,
        docs: &[(String, chrono::DateTime<chrono::Utc>, crate::search::IndexDoc)],
    ) -> Result<()> {
        for (id, published, doc) in docs {
            super::fts::put_doc(&self.tx, id, *published, doc)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "bulk_tests.rs"]
mod tests;

/// Tests only: everything a build leaves that readers see, by value, one line a row: feed logs,
/// items and topics, stories, redirects, story logs, coverage, story keys and the search index
/// (document numbers, and what a few words match). Internal numbers (`n`, `m`) are spelt out.
/// The coverage tables spelt out by value (the numbers `m` and `n` replaced by what they stand
/// for): shared by the dumps that compare two ways of keeping them.
#[cfg(test)]
pub(super) const COVER_ROWS: [&str; 2] = [
    "SELECT story, feed, members, updated_sum, updated_max, published_sum, published_max, quality_sum, rated
     FROM story_sums ORDER BY 1, 2",
    "SELECT x.story, x.feed, s.item, c.updated, c.published, c.quality
     FROM story_cover c JOIN story_sums x ON x.m = c.m JOIN story_items s ON s.n = c.n ORDER BY 1, 2, 3",
];

/// Each row a query returns, its cells joined by " | ", for comparing stores by value.
#[cfg(test)]
pub(super) fn rows_of(tx: &Connection, query: &str) -> Vec<String> {
    let mut stmt = tx.prepare(query).unwrap();
    let n = stmt.column_count();
    let rows = stmt.query_map([], |r| {
        (0..n)
            .map(|i| r.get::<_, rusqlite::types::Value>(i).map(|v| format!("{v:?}")))
            .collect::<rusqlite::Result<Vec<_>>>()
    });
    rows.unwrap().map(|r| r.unwrap().join(" | ")).collect()
}

#[cfg(test)]
pub(crate) fn dump(store: &mut Store, words: &[&str]) -> Vec<String> {
    const QUERIES: [&str; 8] = [
        "SELECT feed, pos, id, left_at IS NULL FROM feed_log ORDER BY 1, 2",
        "SELECT key, id, published, updated, hash, shown, provider, topics, quality FROM items ORDER BY 1",
        "SELECT slug, published, id FROM item_topics ORDER BY 1, 2, 3",
        "SELECT item, story, founder, founder_published, hex(blob) FROM story_items ORDER BY 1",
        "SELECT id, into_id FROM story_redirects ORDER BY 1",
        "SELECT feed, pos, story, sig, left_at IS NULL FROM story_log ORDER BY 1, 2",
        "SELECT k.key, k.day, s.item FROM story_keys k JOIN story_items s ON s.n = k.n ORDER BY 1, 2, 3",
        "SELECT doc, id FROM search_docs ORDER BY 1",
    ];
    let b = store.batch().unwrap();
    let mut out = Vec::new();
    for q in QUERIES.iter().chain(&COVER_ROWS) {
        out.push(format!("-- {q}"));
        out.extend(rows_of(&b.tx, q));
    }
    for w in words {
        out.push(format!("-- search {w}"));
        let mut stmt = b
            .tx
            .prepare("SELECT d.id FROM search_index JOIN search_docs d ON d.doc = search_index.rowid WHERE search_index MATCH ?1 ORDER BY search_index.rowid")
            .unwrap();
        out.extend(stmt.query_map([format!("\"{w}\"")], |r| r.get::<_, String>(0)).unwrap().map(Result::unwrap));
    }
    out
}
