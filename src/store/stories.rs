//! Stories in the store: each live item's story features (their stored form), the story it is in
//! and that story's founder; the candidate keys the writer looks new clippings up by; and the
//! redirects of story ids that ended in a merge. What the rows mean is `story`'s business; this
//! file only keeps and reads them.
//!
//! `story_items` and `story_keys` are caches of the clippings (in `TABLES`: a rebuild drops them
//! and the writer fills them again as it reads the clippings back; a story's id is made from its
//! founder's item id, which comes from the clipping's URL or path, so the same clippings give the
//! same ids). `story_redirects` is not: which ids were merged into which is history the
//! clippings cannot give back, so a rebuild keeps it.

use anyhow::Result;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Batch, from_ts, row_item, ts};
use crate::budget::Budget;
use crate::config::FeedLog;
use crate::feed::FeedKey;
use crate::item::{Item, ItemData};

/// One item's row: its story, that story's founder, and its stored features.
#[derive(Debug, Clone)]
pub struct StoryRow {
    pub(crate) item: String,
    pub(crate) story: String,
    pub(crate) founder: String,
    pub(crate) founder_published: Option<i64>,
    pub(crate) blob: Vec<u8>,
}

/// A key range to look candidates up in: `key`, and days `lo..=hi`.
#[derive(Debug, Clone, Copy)]
pub struct KeyRange {
    pub(crate) key: u64,
    pub(crate) lo: i32,
    pub(crate) hi: i32,
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoryRow> {
    Ok(StoryRow {
        item: r.get(0)?,
        story: r.get(1)?,
        founder: r.get(2)?,
        founder_published: r.get(3)?,
        blob: r.get(4)?,
    })
}

const COLUMNS: &str = "item, story, founder, founder_published, blob";

impl Batch<'_> {
    /// The row of one item, if it is in a story.
    pub(crate) fn story_row(&self, item: &str) -> Result<Option<StoryRow>> {
        let sql = format!("SELECT {COLUMNS} FROM story_items WHERE item=?1");
        Ok(self.tx.prepare_cached(&sql)?.query_row([item], row).optional()?)
    }

    /// The items indexed under any of `ranges`, once per range they are found in. At most
    /// `per_range` items from each range (the latest days first): a key that hundreds of
    /// clippings share says little, and reading all of them for every newcomer would make a
    /// flood of look-alike clippings quadratic. The key table alone answers (its primary key
    /// covers the query); the few candidates judged are read afterwards, by item.
    pub(crate) fn story_candidates(&self, ranges: &[KeyRange], per_range: usize) -> Result<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        let mut stmt = self.tx.prepare_cached(
            "SELECT item FROM story_keys WHERE key=?1 AND day BETWEEN ?2 AND ?3 ORDER BY day DESC, item LIMIT ?4",
        )?;
        for r in ranges {
            let found = stmt.query_map(params![r.key as i64, r.lo, r.hi, per_range as i64], |row| row.get(0))?;
            for f in found {
                out.push(f?);
            }
        }
        Ok(out)
    }

    /// Every member of a story.
    pub(crate) fn story_members(&self, story: &str) -> Result<Vec<StoryRow>> {
        let sql = format!("SELECT {COLUMNS} FROM story_items WHERE story=?1 ORDER BY item");
        let mut stmt = self.tx.prepare_cached(&sql)?;
        let rows = stmt.query_map([story], row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Writes an item's row and its keys (`(key, day)`).
    pub(crate) fn put_story_item(&self, r: &StoryRow, keys: &[(u64, i32)]) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO story_items(item, story, founder, founder_published, blob) VALUES(?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![r.item, r.story, r.founder, r.founder_published, r.blob])?;
        let mut ins = self.tx.prepare_cached("INSERT OR IGNORE INTO story_keys(key, day, item) VALUES(?1, ?2, ?3)")?;
        for (key, day) in keys {
            ins.execute(params![*key as i64, day, r.item])?;
        }
        Ok(())
    }

    /// Deletes an item's row and its keys.
    pub(crate) fn delete_story_item(&self, item: &str, keys: &[(u64, i32)]) -> Result<()> {
        self.tx.prepare_cached("DELETE FROM story_items WHERE item=?1")?.execute([item])?;
        let mut del = self.tx.prepare_cached("DELETE FROM story_keys WHERE key=?1 AND day=?2 AND item=?3")?;
        for (key, day) in keys {
            del.execute(params![*key as i64, day, item])?;
        }
        Ok(())
    }

    /// Moves every member of story `from` into story `to`, founded by `founder`.
    pub(crate) fn move_story(&self, from: &str, to: &str, founder: &str, founder_published: Option<i64>) -> Result<()> {
        self.tx
            .prepare_cached("UPDATE story_items SET story=?2, founder=?3, founder_published=?4 WHERE story=?1")?
            .execute(params![from, to, founder, founder_published])?;
        Ok(())
    }

    /// Puts one item in story `to`, founded by `founder`.
    pub(crate) fn set_item_story(
        &self,
        item: &str,
        to: &str,
        founder: &str,
        founder_published: Option<i64>,
    ) -> Result<()> {
        self.tx
            .prepare_cached("UPDATE story_items SET story=?2, founder=?3, founder_published=?4 WHERE item=?1")?
            .execute(params![item, to, founder, founder_published])?;
        Ok(())
    }

    /// Story `id` ended: it answers with `into` from now on. Redirects that pointed at `id` now
    /// point at `into`, so a chain is one step.
    pub(crate) fn put_story_redirect(&self, id: &str, into: &str, at: DateTime<Utc>) -> Result<()> {
        if id == into {
            return Ok(());
        }
        self.tx
            .prepare_cached("INSERT OR REPLACE INTO story_redirects(id, into_id, at) VALUES(?1, ?2, ?3)")?
            .execute(params![id, into, ts(at)])?;
        self.tx.prepare_cached("UPDATE story_redirects SET into_id=?2 WHERE into_id=?1")?.execute([id, into])?;
        Ok(())
    }

    /// Story `id` is live (again): it redirects nowhere.
    pub(crate) fn drop_story_redirect(&self, id: &str) -> Result<()> {
        self.tx.prepare_cached("DELETE FROM story_redirects WHERE id=?1")?.execute([id])?;
        Ok(())
    }

    /// Live items not yet in any story (a store written before stories existed), with their
    /// data, at most `limit` of them.
    pub(crate) fn items_without_story(&self, limit: usize) -> Result<Vec<(String, ItemData)>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT i.id, (SELECT data FROM item_records r WHERE r.rowid = i.rec) FROM items i WHERE i.deleted_at IS NULL
             AND NOT EXISTS(SELECT 1 FROM story_items s WHERE s.item = i.id) ORDER BY i.published, i.id LIMIT ?1",
        )?;
        let rows =
            stmt.query_map([limit as i64], |r| Ok((r.get::<_, String>(0)?, r.get::<_, super::records::Record>(1)?)))?;
        let mut out = Vec::new();
        for r in rows {
            let (id, record) = r?;
            out.push((id, record.decode()?));
        }
        Ok(out)
    }
}

/// The most members of one story a view reads: the newest ones.
const MAX_MEMBERS: i64 = 500;

/// The live members of story `id` that hold an open slot in `feed`'s log (what a reader of that
/// feed may see), newest first, at most [`MAX_MEMBERS`].
fn visible_members(conn: &Connection, id: &str, feed: &FeedKey, limit: i64) -> Result<Vec<Item>> {
    let mut stmt = conn.prepare_cached(
        "SELECT i.id, i.updated, (SELECT data FROM item_records r WHERE r.rowid = i.rec) FROM story_items s JOIN items i ON i.id = s.item
         WHERE s.story=?1 AND i.deleted_at IS NULL
         AND EXISTS(SELECT 1 FROM feed_log l WHERE l.feed=?2 AND l.id=i.id AND l.left_at IS NULL)
         ORDER BY i.published DESC, i.id LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![id, feed.path_stem(), limit], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, super::records::Record>(2)?))
    })?;
    let mut out = Vec::new();
    for r in rows {
        let (id, updated, record) = r?;
        out.push(row_item(id, updated, &record)?);
    }
    Ok(out)
}

/// What a reader of the all-feed sees of one story, in brief: the signature of its open slot in
/// the all-feed's story log (`store/story_log.rs`), which the writer moves in the same
/// transaction whenever a member joins, leaves or is edited there. A story without one (a log
/// not yet filled) is summed instead: how many members, and the sum and the latest of their
/// edit times.
pub type StoryPrint = String;

impl Batch<'_> {
    /// The newest `n` stories of the all-feed (by their newest clipping), each with its
    /// fingerprint: the index's latest stories. Reads the newest clippings by index, not the
    /// store.
    pub(crate) fn latest_stories(&self, n: usize) -> Result<Vec<(String, StoryPrint)>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT s.story FROM items i JOIN story_items s ON s.item = i.id WHERE i.deleted_at IS NULL
             AND EXISTS(SELECT 1 FROM feed_log l WHERE l.feed='feed' AND l.id=i.id AND l.left_at IS NULL)
             ORDER BY i.published DESC, i.id LIMIT ?1",
        )?;
        let rows = stmt.query_map([(n * 20) as i64], |r| r.get::<_, String>(0))?;
        let mut ids: Vec<String> = Vec::new();
        for r in rows {
            let id = r?;
            if !ids.contains(&id) {
                ids.push(id);
                if ids.len() == n {
                    break;
                }
            }
        }
        // One indexed row per story, whatever its size: summing the members of the latest
        // stories at every change cost a large story thousands of reads.
        let mut slot = self.tx.prepare_cached(
            "SELECT sig FROM story_log INDEXED BY story_log_by_story
             WHERE story=?1 AND feed='feed' AND left_at IS NULL",
        )?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let fp = match slot.query_row([&id], |r| r.get::<_, String>(0)).optional()? {
                Some(sig) => sig,
                None => self.summed_print(&id)?,
            };
            out.push((id, fp));
        }
        Ok(out)
    }

    /// A story's print from its members, for a story with no open slot in the all-feed's story
    /// log.
    fn summed_print(&self, id: &str) -> Result<StoryPrint> {
        let (n, sum, max): (i64, i64, i64) = self.tx.query_row(
            "SELECT COUNT(*), COALESCE(SUM(i.updated), 0), COALESCE(MAX(i.updated), 0)
             FROM story_items s JOIN items i ON i.id = s.item
             WHERE s.story=?1 AND i.deleted_at IS NULL
             AND EXISTS(SELECT 1 FROM feed_log l WHERE l.feed='feed' AND l.id=i.id AND l.left_at IS NULL)",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        Ok(format!("summed {n} {sum} {max}"))
    }

    /// The members of story `id` a reader of the all-feed sees (never a private clipping),
    /// newest first, at most as many as a story's page shows.
    pub(crate) fn public_story_members(&self, id: &str) -> Result<Vec<Item>> {
        visible_members(&self.tx, id, &FeedKey::All, MAX_MEMBERS)
    }
}

impl super::Reader {
    /// The live members of story `id` that hold an open slot in `log` (what a reader of that
    /// feed may see), newest first.
    pub fn story_items(&self, id: &str, log: &FeedLog, budget: &Budget) -> Result<Vec<Item>> {
        let conn = self.conn(budget)?;
        visible_members(&conn, id, log.feed(), MAX_MEMBERS).map_err(|e| conn.stopped(e))
    }

    /// When coverage last joined story `id`, as a reader of `log` sees it: the latest first-seen
    /// time of its visible members, when later than the earliest (a story seen whole at once,
    /// or of one clipping, has none). A story's `updated` moves to it, so readers see the story
    /// change when a report joins, whatever that report's own date.
    pub fn story_joined(&self, id: &str, log: &FeedLog, budget: &Budget) -> Result<Option<DateTime<Utc>>> {
        let conn = self.conn(budget)?;
        let (newest, oldest): (Option<i64>, Option<i64>) = conn
            .prepare_cached(
                "SELECT MAX(i.first_seen), MIN(i.first_seen) FROM story_items s JOIN items i ON i.id = s.item
                 WHERE s.story=?1 AND i.deleted_at IS NULL
                 AND EXISTS(SELECT 1 FROM feed_log l WHERE l.feed=?2 AND l.id=i.id AND l.left_at IS NULL)",
            )?
            .query_row(params![id, log.feed().path_stem()], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| conn.stopped(e))?;
        Ok(newest.zip(oldest).filter(|(n, o)| n > o).map(|(n, _)| from_ts(n)))
    }

    /// The story each of `items` is in (an item in none stands alone: its own id).
    pub fn stories_of(&self, items: &[String], budget: &Budget) -> Result<Vec<String>> {
        let conn = self.conn(budget)?;
        let mut stmt = conn.prepare_cached("SELECT story FROM story_items WHERE item=?1")?;
        let mut out = Vec::with_capacity(items.len());
        for id in items {
            let story: Option<String> = stmt.query_row([id], |r| r.get(0)).optional().map_err(|e| conn.stopped(e))?;
            out.push(story.unwrap_or_else(|| id.clone()));
        }
        Ok(out)
    }

    /// Where story `id` went when it ended in a merge, if it did and a reader of `log` may see
    /// the story it went to (a member with an open slot in that feed's log): a story made only
    /// of private clippings is never told of, not even by its redirect.
    pub fn story_redirect(&self, id: &str, log: &FeedLog, budget: &Budget) -> Result<Option<String>> {
        let conn = self.conn(budget)?;
        let mut stmt = conn.prepare_cached(
            "SELECT r.into_id FROM story_redirects r WHERE r.id=?1
             AND EXISTS(SELECT 1 FROM story_items s JOIN items i ON i.id = s.item
                        WHERE s.story = r.into_id AND i.deleted_at IS NULL
                        AND EXISTS(SELECT 1 FROM feed_log l WHERE l.feed=?2 AND l.id=i.id AND l.left_at IS NULL))",
        )?;
        stmt.query_row(params![id, log.feed().path_stem()], |r| r.get(0)).optional().map_err(|e| conn.stopped(e))
    }

    /// Stories that ended in a merge into one of `into`, since `since`: (id, when), for
    /// tombstones in story-grouped feeds.
    pub fn merged_into(
        &self,
        into: &[String],
        since: DateTime<Utc>,
        budget: &Budget,
    ) -> Result<Vec<(String, DateTime<Utc>)>> {
        let conn = self.conn(budget)?;
        let mut stmt =
            conn.prepare_cached("SELECT id, at FROM story_redirects WHERE into_id=?1 AND at>=?2 ORDER BY at DESC, id")?;
        let mut out = Vec::new();
        for id in into {
            let rows = stmt
                .query_map(params![id, ts(since)], |r| Ok((r.get::<_, String>(0)?, from_ts(r.get(1)?))))
                .map_err(|e| conn.stopped(e))?;
            for r in rows {
                out.push(r.map_err(|e| conn.stopped(e))?);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
impl Batch<'_> {
    /// Every item's story: (item, story), by item.
    pub(crate) fn story_map(&self) -> Result<Vec<(String, String)>> {
        let mut stmt = self.tx.prepare("SELECT item, story FROM story_items ORDER BY item")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every redirect: (id, into), by id.
    pub(crate) fn story_redirects(&self) -> Result<Vec<(String, String)>> {
        let mut stmt = self.tx.prepare("SELECT id, into_id FROM story_redirects ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
