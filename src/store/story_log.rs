//! The story log: per feed, an append-only log of the stories its readers can see, the story
//! counterpart of `feed_log` (see `store/log.rs`). A story gets a slot in feed F's log when it
//! first has a member with an open slot in F's `feed_log`, a new slot when what F's readers see
//! of it changes (the slot's `sig`), and the slot closes when it has no such member any more or
//! the story ended in a merge. Archive pages of the story-grouped subscription document
//! (`?group=story`) are fixed ranges of positions, as a feed's are of its `feed_log`.
//!
//! In `TABLES` (dropped by a rebuild): a cache of the clippings. The log holds story ids and
//! their coverage, both of which the clippings give back: a story's id is its founder's item
//! id (from the clipping's URL or path), the same clippings group the same way whatever order
//! they arrive in, and visibility comes from the configuration. A rebuild refills it as the
//! writer reads the clippings back. Only the positions, like `feed_log`'s, are history; the
//! merge redirects (`story_redirects`), which the clippings cannot give back, stay out of it.

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Batch, from_ts, ts};
use crate::budget::Budget;
use crate::config::FeedLog;

/// The table and its indexes, created in place on older stores.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS story_log(
    feed TEXT NOT NULL,
    pos INTEGER NOT NULL,
    story TEXT NOT NULL,
    sig TEXT NOT NULL,
    entered_at INTEGER NOT NULL,
    left_at INTEGER,
    PRIMARY KEY(feed, pos)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS story_log_by_story ON story_log(story, feed);
-- (story_log_open, the open slots alone in the same order, went: a story's few slots are read
-- through story_log_by_story and their rows. 10 MB at 100,000, and one index less to write.)
DROP INDEX IF EXISTS story_log_open;
";

/// What one feed's readers see of one story, in sums over its visible members: the writer
/// signs a story's coverage by it. The writer reads it from the sums the store keeps
/// (`store/story_cover.rs`), in a few lookups whatever the story's size; the one-off fill of a
/// feed's story log sums it over the feed's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    pub(crate) feed: String,
    pub(crate) story: String,
    pub(crate) members: i64,
    pub(crate) updated_sum: i64,
    pub(crate) updated_max: i64,
    pub(crate) published_sum: i64,
    pub(crate) published_max: i64,
    pub(crate) quality_sum: i64,
    pub(crate) rated: i64,
    pub(crate) first_item: String,
    pub(crate) last_item: String,
}

/// A query for [`Coverage`] rows summed over the rows `body` selects (`FROM ... GROUP BY`, with
/// `l` a feed's log, `s` story items and `i` items), in `order`: the sums, and the first and last
/// members by number (`story_items.n`, the order `story_cover` keeps them in).
pub(super) fn coverage_sql(body: &str, order: &str) -> String {
    format!(
        "SELECT feed, story, members, us, um, ps, pm, qs, rated,
           (SELECT item FROM story_items WHERE n = lo), (SELECT item FROM story_items WHERE n = hi)
         FROM (SELECT l.feed AS feed, s.story AS story, COUNT(*) AS members, SUM(i.updated) AS us,
           MAX(i.updated) AS um, SUM(i.published) AS ps, MAX(i.published) AS pm, COALESCE(SUM(i.quality), 0) AS qs,
           COUNT(i.quality) AS rated, MIN(s.n) AS lo, MAX(s.n) AS hi {body}) {order}"
    )
}

pub(super) fn coverage_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Coverage> {
    Ok(Coverage {
        feed: r.get(0)?,
        story: r.get(1)?,
        members: r.get(2)?,
        updated_sum: r.get(3)?,
        updated_max: r.get(4)?,
        published_sum: r.get(5)?,
        published_max: r.get(6)?,
        quality_sum: r.get(7)?,
        rated: r.get(8)?,
        first_item: r.get(9)?,
        last_item: r.get(10)?,
    })
}

impl Batch<'_> {
    /// The story an item is in, if any.
    pub(crate) fn story_of(&self, item: &str) -> Result<Option<String>> {
        let mut stmt = self.tx.prepare_cached("SELECT story FROM story_items WHERE item=?1")?;
        Ok(stmt.query_row([item], |r| r.get(0)).optional()?)
    }

    /// What one feed's readers see of every story in it, one row per story: the one-off
    /// backfill's reading.
    pub(crate) fn feed_coverage(&self, feed: &str) -> Result<Vec<Coverage>> {
        let sql = coverage_sql(
            "FROM feed_log l JOIN story_items s ON s.item = l.id JOIN items i ON i.id = l.id
             WHERE l.feed=?1 AND l.left_at IS NULL AND i.deleted_at IS NULL GROUP BY s.story",
            "",
        );
        let mut stmt = self.tx.prepare_cached(&sql)?;
        let rows = stmt.query_map([feed], coverage_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every feed with a log (path stems).
    pub(crate) fn logged_feeds(&self) -> Result<Vec<String>> {
        let mut stmt = self.tx.prepare_cached("SELECT feed FROM feeds UNION SELECT DISTINCT feed FROM feed_log")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The open slots of a story: (feed, sig).
    pub(crate) fn story_log_open(&self, story: &str) -> Result<Vec<(String, String)>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT feed, sig FROM story_log INDEXED BY story_log_by_story WHERE story=?1 AND left_at IS NULL",
        )?;
        let rows = stmt.query_map([story], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The open slots of a feed's story log: (story, sig).
    pub(crate) fn story_log_open_in(&self, feed: &str) -> Result<Vec<(String, String)>> {
        let mut stmt = self.tx.prepare_cached("SELECT story, sig FROM story_log WHERE feed=?1 AND left_at IS NULL")?;
        let rows = stmt.query_map([feed], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Gives a story a new slot at the end of a feed's story log, closing its open one.
    pub(crate) fn story_log_enter(&self, feed: &str, story: &str, sig: &str, at: DateTime<Utc>) -> Result<()> {
        self.story_log_close(feed, story, at)?;
        let pos: i64 = self
            .tx
            .prepare_cached("SELECT COALESCE(MAX(pos) + 1, 0) FROM story_log WHERE feed=?1")?
            .query_row([feed], |r| r.get(0))?;
        self.tx
            .prepare_cached("INSERT INTO story_log(feed, pos, story, sig, entered_at) VALUES(?1, ?2, ?3, ?4, ?5)")?
            .execute(params![feed, pos, story, sig, ts(at)])?;
        Ok(())
    }

    /// Closes a story's open slot in a feed's story log, if it has one.
    pub(crate) fn story_log_close(&self, feed: &str, story: &str, at: DateTime<Utc>) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE story_log INDEXED BY story_log_by_story SET left_at=?3
                 WHERE story=?2 AND feed=?1 AND left_at IS NULL",
            )?
            .execute(params![feed, story, ts(at)])?;
        Ok(())
    }
}

/// The open slots of some stories in every feed's story log, as [`Batch::stories_log_open`]
/// reads them: (the story's place in the list asked for, the feed's number in `feeds`, the
/// slot's position, its signature), by story, feed (by path stem) and position: the order
/// [`Batch::story_log_open`] gives one story's.
#[derive(Debug, Default)]
pub struct StorySlots {
    pub(crate) feeds: Vec<String>,
    pub(crate) slots: Vec<(u32, u32, i64, String)>,
}

/// Feeds numbered in the order first met, for reads that hold many rows of few feeds.
#[derive(Default)]
struct FeedNumbers {
    names: Vec<String>,
    numbers: std::collections::HashMap<String, u32>,
}

impl FeedNumbers {
    /// The number of `feed`, given it now if it has none.
    fn number(&mut self, feed: &str) -> u32 {
        if let Some(&n) = self.numbers.get(feed) {
            return n;
        }
        let n = self.names.len() as u32;
        self.names.push(feed.to_string());
        self.numbers.insert(feed.to_string(), n);
        n
    }
}

impl Batch<'_> {
    /// The stories of the items `ids` (those in one), what [`Batch::story_of`] gives for each:
    /// read in two passes over the story indexes in their own order (the items' numbers by id,
    /// then the stories by number), not a seek into the table for each item.
    pub(crate) fn stories_of_items(&self, ids: &[String]) -> Result<std::collections::BTreeSet<String>> {
        let wanted: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
        let mut numbers: Vec<i64> = Vec::with_capacity(ids.len());
        let mut stmt = self.tx.prepare_cached("SELECT item, n FROM story_items INDEXED BY story_items_by_item")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            if wanted.contains(r.get_ref(0)?.as_str()?) {
                numbers.push(r.get(1)?);
            }
        }
        drop(rows);
        numbers.sort_unstable();
        let mut out = std::collections::BTreeSet::new();
        let mut stmt = self.tx.prepare_cached("SELECT story, n FROM story_items INDEXED BY story_items_by_story")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            if numbers.binary_search(&r.get(1)?).is_ok() {
                let story = r.get_ref(0)?.as_str()?;
                if !out.contains(story) {
                    out.insert(story.to_string());
                }
            }
        }
        Ok(out)
    }

    /// The open slots of every story in `stories` (sorted, distinct) in every feed's story log,
    /// read in one pass over the table in its own order (by feed and position) rather than
    /// through `story_log_by_story` and a seek into the table for each slot.
    pub(crate) fn stories_log_open(&self, stories: &[String]) -> Result<StorySlots> {
        let place: std::collections::HashMap<&str, u32> =
            stories.iter().enumerate().map(|(i, s)| (s.as_str(), i as u32)).collect();
        let (mut feeds, mut slots) = (FeedNumbers::default(), Vec::new());
        let mut stmt =
            self.tx.prepare_cached("SELECT feed, pos, story, sig FROM story_log NOT INDEXED WHERE left_at IS NULL")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let Some(&story) = place.get(r.get_ref(2)?.as_str()?) else { continue };
            let feed = feeds.number(r.get_ref(0)?.as_str()?);
            slots.push((story, feed, r.get(1)?, r.get(3)?));
        }
        drop(rows);
        let feeds = feeds.names;
        slots.sort_unstable_by(|a, b| (a.0, &feeds[a.1 as usize], a.2).cmp(&(b.0, &feeds[b.1 as usize], b.2)));
        Ok(StorySlots { feeds, slots })
    }

    /// Closes the slots `slots` (feed, position), which are open, in the table's order.
    pub(crate) fn story_log_close_slots(&self, mut slots: Vec<(&str, i64)>, at: DateTime<Utc>) -> Result<()> {
        slots.sort_unstable();
        let mut close =
            self.tx.prepare_cached("UPDATE story_log SET left_at=?3 WHERE feed=?1 AND pos=?2 AND left_at IS NULL")?;
        for (feed, pos) in slots {
            close.execute(params![feed, pos, ts(at)])?;
        }
        Ok(())
    }

    /// Gives each (feed, story, sig) of `enter`, in its order, a new slot at the end of its
    /// feed's story log, as [`Batch::story_log_enter`] one after the other would for stories
    /// with no open slot there; the rows written in the table's order.
    pub(crate) fn story_log_append(&self, enter: &[(&str, &str, &str)], at: DateTime<Utc>) -> Result<()> {
        let mut next: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
        let mut len = self.tx.prepare_cached("SELECT COALESCE(MAX(pos) + 1, 0) FROM story_log WHERE feed=?1")?;
        let mut rows = Vec::with_capacity(enter.len());
        for &(feed, story, sig) in enter {
            let pos = match next.get_mut(feed) {
                Some(p) => p,
                None => next.entry(feed).or_insert(len.query_row([feed], |r| r.get(0))?),
            };
            rows.push((feed, *pos, story, sig));
            *pos += 1;
        }
        rows.sort_unstable();
        let mut put = self
            .tx
            .prepare_cached("INSERT INTO story_log(feed, pos, story, sig, entered_at) VALUES(?1, ?2, ?3, ?4, ?5)")?;
        for (feed, pos, story, sig) in rows {
            put.execute(params![feed, pos, story, sig, ts(at)])?;
        }
        Ok(())
    }
}

/// One (story, feed) row of `story_sums` as [`Batch::stories_coverage`] holds it: the story
/// by its place in the list asked for, the feed by its number, the sums, and the first and
/// last member numbers (`story_cover`'s lowest and highest `n` for the row's `m`).
struct HeldSums {
    story: u32,
    feed: u32,
    m: i64,
    sums: [i64; 7],
    ends: Option<(i64, i64)>,
}

impl Batch<'_> {
    /// [`Batch::story_coverage`] of every story in `stories` (sorted, distinct), given to `each`
    /// story by story in that order (with its place in `stories`; no rows for a story nothing
    /// shows): the same rows, read for all of them at once in a few passes over the tables in
    /// their own order (`story_sums` by `m`, `story_cover` by (m, n), the items' numbers through
    /// `story_items_by_item`), instead of a few seeks per story and per feed. For a remap, which
    /// touches most stories: its cost is the tables', whatever the number of stories.
    pub(crate) fn stories_coverage(
        &self,
        stories: &[String],
        mut each: impl FnMut(usize, Vec<Coverage>) -> Result<()>,
    ) -> Result<()> {
        if self.coverage_set_aside() {
            // A cold build sums coverage from the rows (its tables are set aside).
            for (i, story) in stories.iter().enumerate() {
                each(i, self.story_coverage(story)?)?;
            }
            return Ok(());
        }
        let place: std::collections::HashMap<&str, u32> =
            stories.iter().enumerate().map(|(i, s)| (s.as_str(), i as u32)).collect();
        let mut feeds = FeedNumbers::default();
        let mut held: Vec<HeldSums> = Vec::new();
        let mut stmt = self.tx.prepare_cached(
            "SELECT m, story, feed, members, updated_sum, updated_max, published_sum, published_max, quality_sum,
                 rated FROM story_sums NOT INDEXED",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let Some(&story) = place.get(r.get_ref(1)?.as_str()?) else { continue };
            let feed = feeds.number(r.get_ref(2)?.as_str()?);
            let mut sums = [0; 7];
            for (k, v) in sums.iter_mut().enumerate() {
                *v = r.get(3 + k)?;
            }
            held.push(HeldSums { story, feed, m: r.get(0)?, sums, ends: None });
        }
        drop(rows);
        let feeds = feeds.names;
        held.sort_unstable_by_key(|h| h.m);
        // The first and last member of each row: its lowest and highest item number.
        let mut stmt = self.tx.prepare_cached("SELECT m, n FROM story_cover NOT INDEXED")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let (m, n): (i64, i64) = (r.get(0)?, r.get(1)?);
            if let Ok(i) = held.binary_search_by_key(&m, |h| h.m) {
                let (lo, hi) = held[i].ends.unwrap_or((n, n));
                held[i].ends = Some((lo.min(n), hi.max(n)));
            }
        }
        drop(rows);
        let mut wanted: Vec<i64> = held.iter().filter_map(|h| h.ends).flat_map(|(lo, hi)| [lo, hi]).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut items: Vec<Option<String>> = vec![None; wanted.len()];
        let mut stmt = self.tx.prepare_cached("SELECT n, item FROM story_items INDEXED BY story_items_by_item")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            if let Ok(i) = wanted.binary_search(&r.get(0)?) {
                items[i] = Some(r.get(1)?);
            }
        }
        drop(rows);
        let item = |n: i64| -> Result<String> {
            let i = wanted.binary_search(&n).map_err(|_| anyhow::anyhow!("no item numbered {n}"))?;
            items[i].clone().ok_or_else(|| anyhow::anyhow!("no item numbered {n}"))
        };
        held.sort_unstable_by(|a, b| (a.story, &feeds[a.feed as usize]).cmp(&(b.story, &feeds[b.feed as usize])));
        let mut held = held.into_iter().peekable();
        for (i, story) in stories.iter().enumerate() {
            let mut out = Vec::new();
            while let Some(h) = held.next_if(|h| h.story as usize == i) {
                let (lo, hi) = h.ends.with_context(|| format!("story {story}: sums with no cover rows"))?;
                let [members, updated_sum, updated_max, published_sum, published_max, quality_sum, rated] = h.sums;
                out.push(Coverage {
                    feed: feeds[h.feed as usize].clone(),
                    story: story.clone(),
                    members,
                    updated_sum,
                    updated_max,
                    published_sum,
                    published_max,
                    quality_sum,
                    rated,
                    first_item: item(lo)?,
                    last_item: item(hi)?,
                });
            }
            each(i, out)?;
        }
        Ok(())
    }
}

#[cfg(test)]
impl Batch<'_> {
    /// Every row of every story log, by feed and position, spelt out.
    pub(crate) fn story_log_rows(&self) -> Result<Vec<String>> {
        let mut stmt =
            self.tx.prepare("SELECT feed, pos, story, sig, entered_at, left_at FROM story_log ORDER BY 1, 2")?;
        let rows = stmt.query_map([], |r| {
            let left: Option<i64> = r.get(5)?;
            Ok(format!(
                "{} {} {} {} {} {left:?}",
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every slot of a feed's story log: (pos, story, open), by position.
    pub(crate) fn story_log_slots(&self, feed: &str) -> Result<Vec<(u64, String, bool)>> {
        let mut stmt =
            self.tx.prepare("SELECT pos, story, left_at IS NULL FROM story_log WHERE feed=?1 ORDER BY pos")?;
        let rows = stmt.query_map([feed], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

impl super::Reader {
    /// Number of slots in the story log of `log`'s feed.
    pub fn story_log_len(&self, log: &FeedLog, budget: &Budget) -> Result<u64> {
        let conn = self.conn(budget)?;
        let n: i64 = conn
            .prepare_cached("SELECT COALESCE(MAX(pos) + 1, 0) FROM story_log WHERE feed=?1")?
            .query_row([log.feed().path_stem()], |r| r.get(0))
            .map_err(|e| conn.stopped(e))?;
        Ok(n as u64)
    }

    /// How many slots in `from..to` of the story log of `log`'s feed are open.
    pub fn story_log_open_slots(&self, log: &FeedLog, from: u64, to: u64, budget: &Budget) -> Result<u64> {
        let conn = self.conn(budget)?;
        let n: i64 = conn
            .prepare_cached("SELECT COUNT(*) FROM story_log WHERE feed=?1 AND pos>=?2 AND pos<?3 AND left_at IS NULL")?
            .query_row(params![log.feed().path_stem(), from as i64, to as i64], |r| r.get(0))
            .map_err(|e| conn.stopped(e))?;
        Ok(n as u64)
    }

    /// The stories in open slots `from..to` of the story log of `log`'s feed, by position.
    pub fn story_log_stories(&self, log: &FeedLog, from: u64, to: u64, budget: &Budget) -> Result<Vec<String>> {
        let conn = self.conn(budget)?;
        let mut stmt = conn.prepare_cached(
            "SELECT story FROM story_log WHERE feed=?1 AND pos>=?2 AND pos<?3 AND left_at IS NULL ORDER BY pos",
        )?;
        let rows = stmt
            .query_map(params![log.feed().path_stem(), from as i64, to as i64], |r| r.get(0))
            .map_err(|e| conn.stopped(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| conn.stopped(e))
    }

    /// Stories that ended in a merge into one of `into` and were ever in the story log of
    /// `log`'s feed (so its readers saw them), since `since`: (id, when), for tombstones. A story
    /// its readers never saw is never named to them.
    pub fn merged_into_logged(
        &self,
        log: &FeedLog,
        into: &[String],
        since: DateTime<Utc>,
        budget: &Budget,
    ) -> Result<Vec<(String, DateTime<Utc>)>> {
        let conn = self.conn(budget)?;
        let mut stmt = conn.prepare_cached(
            "SELECT r.id, r.at FROM story_redirects r WHERE r.into_id=?1 AND r.at>=?2
             AND EXISTS(SELECT 1 FROM story_log l INDEXED BY story_log_by_story WHERE l.story=r.id AND l.feed=?3)
             ORDER BY r.at DESC, r.id",
        )?;
        let mut out = Vec::new();
        for id in into {
            let rows = stmt
                .query_map(params![id, ts(since), log.feed().path_stem()], |r| Ok((r.get(0)?, from_ts(r.get(1)?))))
                .map_err(|e| conn.stopped(e))?;
            for r in rows {
                out.push(r.map_err(|e| conn.stopped(e))?);
            }
        }
        Ok(out)
    }

    /// When a slot in `from..to` of the story log of `log`'s feed last opened or closed.
    pub fn story_slots_changed_at(
        &self,
        log: &FeedLog,
        from: u64,
        to: u64,
        budget: &Budget,
    ) -> Result<Option<DateTime<Utc>>> {
        self.changed_at("story_log", log, from, to, budget)
    }
}
