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
use crate::pages::StorySize;

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

/// The candidates of one key range (see `Batch::story_candidates`): the key table read by its
/// primary key in day order (`CROSS JOIN` keeps it the outer loop), each row's item by number.
const CANDIDATES: &str = "SELECT k.day, s.n, s.item FROM story_keys k CROSS JOIN story_items s ON s.n = k.n
     WHERE k.key=?1 AND k.day BETWEEN ?2 AND ?3 ORDER BY k.day DESC, k.n DESC LIMIT ?4";

/// The story tables. `story_items` numbers its rows (`n`, the rowid), and `story_keys` names
/// items by that number: about thirty key rows an item, each 20 bytes or so instead of 60 with
/// the item's id in it (a fifth of the store at 100,000 items, before).
pub(super) const STORY_SCHEMA: &str = "
-- Stories (see store/stories.rs): each live item's story, its founder and its stored features,
-- numbered (n); and the keys new clippings find their candidates by, naming items by number.
CREATE TABLE IF NOT EXISTS story_items(
    n INTEGER PRIMARY KEY,
    item TEXT NOT NULL,
    story TEXT NOT NULL,
    founder TEXT NOT NULL,
    founder_published INTEGER,
    blob BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS story_items_by_item ON story_items(item);
CREATE INDEX IF NOT EXISTS story_items_by_story ON story_items(story);
CREATE TABLE IF NOT EXISTS story_keys(
    key INTEGER NOT NULL,
    day INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY(key, day, n)
) WITHOUT ROWID;
";

/// The `meta` key set once the story tables have their compact form ([`STORY_SCHEMA`]).
const COMPACT: &str = "migrated_story_keys_compact";

/// At schema set-up: makes the story tables, or moves a store's from their first form (items
/// named by their 36-character ids in every key row, `story_items` keyed by item id) to the
/// compact one, in one transaction, copying every row: the same stories, members, features
/// and keys, so candidates and story views answer as before. Guarded by [`COMPACT`] in `meta`.
pub(super) fn migrate_story_keys_compact(conn: &Connection) -> Result<()> {
    if super::schema::migrated(conn, COMPACT)? {
        conn.execute_batch(STORY_SCHEMA)?;
        return Ok(());
    }
    let tx = super::schema::begin_migration(conn)?;
    if super::schema::migrated(&tx, COMPACT)? {
        tx.execute_batch(STORY_SCHEMA)?;
        return Ok(tx.commit()?);
    }
    let old: bool =
        tx.query_row("SELECT EXISTS(SELECT 1 FROM pragma_table_info('story_keys') WHERE name='item')", [], |r| {
            r.get(0)
        })?;
    if old {
        let started = std::time::Instant::now();
        // The coverage triggers name the new form's columns: dropped, and made again (and
        // filled) after this move by `story_cover::migrate_story_cover`.
        super::story_cover::drop_story_cover(&tx)?;
        // Numbered in item order, so the old key order (key, day, item) is the new one (key,
        // day, n): the key rows are appended in order, with no sort, onto full pages. The
        // old rows' pages, freed as each old table goes, take the new ones.
        tx.execute_batch(&format!(
            "PRAGMA cache_size = -{};
             ALTER TABLE story_items RENAME TO story_items_old;
             ALTER TABLE story_keys RENAME TO story_keys_old;
             DROP INDEX IF EXISTS story_items_by_story;",
            super::BULK_CACHE_KIB
        ))?;
        // The new tables, from the one definition a fresh store gets too.
        tx.execute_batch(STORY_SCHEMA)?;
        tx.execute_batch(
            "INSERT INTO story_items(item, story, founder, founder_published, blob)
                 SELECT item, story, founder, founder_published, blob FROM story_items_old ORDER BY item;
             DROP TABLE story_items_old;",
        )?;
        let keys = tx.execute(
            "INSERT INTO story_keys(key, day, n)
             SELECT k.key, k.day, s.n FROM story_keys_old k JOIN story_items s ON s.item = k.item",
            [],
        )?;
        tx.execute_batch(&format!("DROP TABLE story_keys_old; PRAGMA cache_size = -{};", super::DEFAULT_CACHE_KIB))?;
        let items: i64 = tx.query_row("SELECT count(*) FROM story_items", [], |r| r.get(0))?;
        tracing::info!(
            items,
            keys,
            ms = started.elapsed().as_millis() as u64,
            "story keys moved to their compact form"
        );
    } else {
        tx.execute_batch(STORY_SCHEMA)?;
    }
    tx.execute("INSERT INTO meta(key, value) VALUES(?1, ?2)", params![COMPACT, Utc::now().to_rfc3339()])?;
    tx.commit()?;
    Ok(())
}

impl Batch<'_> {
    /// The row of one item, if it is in a story.
    pub(crate) fn story_row(&self, item: &str) -> Result<Option<StoryRow>> {
        let sql = format!("SELECT {COLUMNS} FROM story_items WHERE item=?1");
        Ok(self.tx.prepare_cached(&sql)?.query_row([item], row).optional()?)
    }

    /// [`Batch::story_row`] of a candidate, read by the number its keys name it by: the row is
    /// found by the table's own key (the recent rows a build's candidates mostly are sit on a
    /// few pages) instead of through the index by item id (a page read at random per candidate,
    /// most of a cold build's reads past 30,000 items). The same row: should the number name
    /// another item, the item's own row is read.
    pub(crate) fn story_row_numbered(&self, item: &str, n: i64) -> Result<Option<StoryRow>> {
        let sql = format!("SELECT {COLUMNS} FROM story_items WHERE n=?1");
        match self.tx.prepare_cached(&sql)?.query_row([n], row).optional()? {
            Some(r) if r.item == item => Ok(Some(r)),
            _ => self.story_row(item),
        }
    }

    /// The candidates' item ids alone (tests).
    #[cfg(test)]
    pub(crate) fn story_candidates(&self, ranges: &[KeyRange], per_range: usize) -> Result<Vec<String>> {
        Ok(self.story_candidates_numbered(ranges, per_range)?.into_iter().map(|(item, _)| item).collect())
    }

    /// The items (and their numbers) indexed under any of `ranges`, once per range they are found in. At most
    /// `per_range` items from each range (the latest days first, then the latest numbered): a
    /// key that hundreds of clippings share says little, and reading all of them for every
    /// newcomer would make a flood of look-alike clippings quadratic. The key table's primary
    /// key answers the range read backwards, so the limit stops the read (an order against the
    /// key's, even within one day, would sort every row of that day first); each row's item id
    /// is read by its number. The few candidates judged are read afterwards, by that number
    /// ([`Batch::story_row_numbered`]).
    pub(crate) fn story_candidates_numbered(
        &self,
        ranges: &[KeyRange],
        per_range: usize,
    ) -> Result<Vec<(String, i64)>> {
        if let Some(out) = self.cold_candidates(ranges, per_range)? {
            return Ok(out);
        }
        let mut out = Vec::new();
        for r in ranges {
            out.extend(self.table_candidates(r, per_range)?.into_iter().map(|(_, n, item)| (item, n)));
        }
        Ok(out)
    }

    /// The candidates of one range as the key table holds them, with their days: (day, number,
    /// item), latest first (see [`Batch::story_candidates_numbered`]).
    pub(super) fn table_candidates(&self, r: &KeyRange, per_range: usize) -> Result<Vec<super::bulk::TableRow>> {
        let mut stmt = self.tx.prepare_cached(CANDIDATES)?;
        let rows = stmt
            .query_map(params![r.key as i64, r.lo, r.hi, per_range.min(i64::MAX as usize) as i64], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The members of a story, by item id, at most `limit` of them (read by index: the cost is
    /// that of the rows returned, whatever the story's size).
    pub(crate) fn story_members(&self, story: &str, limit: usize) -> Result<Vec<StoryRow>> {
        let sql = format!("SELECT {COLUMNS} FROM story_items WHERE story=?1 ORDER BY item LIMIT ?2");
        let mut stmt = self.tx.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![story, limit.min(i64::MAX as usize) as i64], row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Writes an item's row and its keys (`(key, day)`). An item already in keeps its number.
    pub(crate) fn put_story_item(&self, r: &StoryRow, keys: &[(u64, i32)]) -> Result<()> {
        let n: i64 = self
            .tx
            .prepare_cached(
                "INSERT INTO story_items(item, story, founder, founder_published, blob) VALUES(?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(item) DO UPDATE SET story=excluded.story, founder=excluded.founder,
                   founder_published=excluded.founder_published, blob=excluded.blob
                 RETURNING n",
            )?
            .query_row(params![r.item, r.story, r.founder, r.founder_published, r.blob], |row| row.get(0))?;
        if self.cold_put_keys(&r.item, n, keys)? {
            return Ok(());
        }
        let mut ins = self.tx.prepare_cached("INSERT OR IGNORE INTO story_keys(key, day, n) VALUES(?1, ?2, ?3)")?;
        for (key, day) in keys {
            ins.execute(params![*key as i64, day, n])?;
        }
        Ok(())
    }

    /// Deletes an item's row and its keys.
    pub(crate) fn delete_story_item(&self, item: &str, keys: &[(u64, i32)]) -> Result<()> {
        let n: Option<i64> = self
            .tx
            .prepare_cached("DELETE FROM story_items WHERE item=?1 RETURNING n")?
            .query_row([item], |r| r.get(0))
            .optional()?;
        let Some(n) = n else { return Ok(()) };
        self.cold_delete_keys(n, keys);
        let mut del = self.tx.prepare_cached("DELETE FROM story_keys WHERE key=?1 AND day=?2 AND n=?3")?;
        for (key, day) in keys {
            del.execute(params![*key as i64, day, n])?;
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

impl Batch<'_> {
    /// The items in a story that have no open slot in the all-feed's log: the private ones (a
    /// live public clipping is always in the feed of everything), by item.
    pub(crate) fn private_story_items(&self) -> Result<Vec<String>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT s.item FROM story_items s WHERE NOT EXISTS(SELECT 1 FROM feed_log l
             WHERE l.feed='feed' AND l.id=s.item AND l.left_at IS NULL) ORDER BY s.item",
        )?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
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

/// How many live members of story `id` hold an open slot in `feed`'s log, and from how many
/// news sites (a provider's domain, `items.provider`; a member with none counts as one site):
/// the same members as [`visible_members`], counted whole, however many that lists. Read by
/// index (the story's members, each item by id, its open slot in the feed), so it costs the
/// story's size, never the store's.
fn visible_size(conn: &Connection, id: &str, feed: &FeedKey) -> Result<StorySize> {
    let (clippings, sites): (i64, i64) = conn
        .prepare_cached(
            "SELECT COUNT(*), COUNT(DISTINCT i.provider) + COALESCE(SUM(i.provider IS NULL), 0)
             FROM story_items s JOIN items i ON i.id = s.item
             WHERE s.story=?1 AND i.deleted_at IS NULL
             AND EXISTS(SELECT 1 FROM feed_log l WHERE l.feed=?2 AND l.id=i.id AND l.left_at IS NULL)",
        )?
        .query_row(params![id, feed.path_stem()], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(StorySize { clippings: clippings as u64, sites: sites as u64 })
}

/// What a reader of the all-feed sees of one story, in brief: how many members, and the sum and
/// the latest of their edit times. Any member joining, leaving or being edited changes it (short
/// of a leave and a join whose edit times cancel out exactly).
pub type StoryPrint = (i64, i64, i64);

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
        // From the sums the store keeps per story and feed (`store/story_cover.rs`): a few
        // lookups, whatever the story's size.
        let mut print = self.tx.prepare_cached(
            "SELECT m.members, m.updated_sum, m.updated_max FROM story_sums m WHERE m.story=?1 AND m.feed='feed'",
        )?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let fp = print.query_row([&id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional()?;
            out.push((id, fp.unwrap_or_default()));
        }
        Ok(out)
    }

    /// The members of story `id` a reader of the all-feed sees (never a private clipping),
    /// newest first, at most as many as a story's page shows.
    pub(crate) fn public_story_members(&self, id: &str) -> Result<Vec<Item>> {
        visible_members(&self.tx, id, &FeedKey::All, MAX_MEMBERS)
    }

    /// The size of story `id` as a reader of the all-feed sees it: every visible member counted.
    pub(crate) fn public_story_size(&self, id: &str) -> Result<StorySize> {
        visible_size(&self.tx, id, &FeedKey::All)
    }
}

impl super::Reader {
    /// The live members of story `id` that hold an open slot in `log` (what a reader of that
    /// feed may see), newest first.
    pub fn story_items(&self, id: &str, log: &FeedLog, budget: &Budget) -> Result<Vec<Item>> {
        let conn = self.conn(budget)?;
        visible_members(&conn, id, log.feed(), MAX_MEMBERS).map_err(|e| conn.stopped(e))
    }

    /// The size of story `id` as a reader of `log` sees it: every member with an open slot in
    /// that log counted, however many [`super::Reader::story_items`] lists.
    pub fn story_size(&self, id: &str, log: &FeedLog, budget: &Budget) -> Result<StorySize> {
        let conn = self.conn(budget)?;
        visible_size(&conn, id, log.feed()).map_err(|e| conn.stopped(e))
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

#[cfg(test)]
#[path = "stories_tests.rs"]
pub(super) mod tests;
