//! The feed log and the state of each feed: every feed's append-only membership log (an item
//! gets a slot when it enters a feed or its content changes; the slot closes when it leaves or
//! gets a newer one), the tombstones of items that left, and per feed the signature and times
//! of its last changes.

use std::collections::HashMap;

use anyhow::Result;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Batch, from_ts, row_item, ts};
use crate::feed::FeedKey;
use crate::item::Item;

/// An item in an open slot of a feed's log, without its record: its id, its edit time and the
/// hash of everything stored of it (`items.hash`), which together say whether an item read
/// before is still the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotHead {
    pub(crate) id: String,
    pub(crate) updated: i64,
    pub(crate) hash: String,
}

/// What the store remembers of a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedState {
    /// Hash of everything the feed shows except its time.
    pub(crate) signature: String,
    /// When that last changed.
    pub(crate) changed_at: DateTime<Utc>,
    /// It changed more than once within `changed_at`'s second.
    pub(crate) ambiguous: bool,
    /// When any item in the feed's whole history last entered, changed or left.
    pub(crate) history_at: DateTime<Utc>,
    /// `history_at` was reached twice within its second.
    pub(crate) history_ambiguous: bool,
    /// Slots per archive page, and how many full pages the log had at the last render.
    pub(crate) page_size: u64,
    pub(crate) full_pages: u64,
    /// Page sizes the feed used before, with the number of full pages it had under each: those
    /// pages stay reachable, unchanged, after `items_per_feed` changes.
    pub(crate) retired: std::collections::BTreeMap<u64, u64>,
    /// Hash of the feed's title, description and links, and when it last changed: archive
    /// pages and filtered views show them too.
    pub(crate) meta: String,
    pub(crate) meta_at: DateTime<Utc>,
}

fn retired_to_text(r: &std::collections::BTreeMap<u64, u64>) -> String {
    r.iter().map(|(size, pages)| format!("{size}:{pages}")).collect::<Vec<_>>().join(",")
}

fn retired_from_text(s: &str) -> std::collections::BTreeMap<u64, u64> {
    s.split(',')
        .filter_map(|kv| {
            let (k, v) = kv.split_once(':')?;
            Some((k.parse().ok()?, v.parse().ok()?))
        })
        .collect()
}

impl Batch<'_> {
    /// The number of live items of every feed, by path stem: the open slots of its log. One
    /// pass over the logs, for start-up; the writer keeps the counts up to date from there.
    pub fn live_counts(&self) -> Result<HashMap<String, u64>> {
        let mut stmt =
            self.tx.prepare_cached("SELECT feed, COUNT(*) FROM feed_log WHERE left_at IS NULL GROUP BY feed")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// What is recorded for a feed.
    pub(crate) fn feed_state(&self, feed: &FeedKey) -> Result<Option<FeedState>> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT signature, changed_at, ambiguous, history_at, history_ambiguous, page_size, full_pages, retired,
                   meta, meta_at
                 FROM feeds WHERE feed=?1",
            )?
            .query_row([feed.path_stem()], |r| {
                Ok(FeedState {
                    signature: r.get(0)?,
                    changed_at: from_ts(r.get(1)?),
                    ambiguous: r.get(2)?,
                    history_at: from_ts(r.get(3)?),
                    history_ambiguous: r.get(4)?,
                    page_size: r.get::<_, i64>(5)? as u64,
                    full_pages: r.get::<_, i64>(6)? as u64,
                    retired: retired_from_text(&r.get::<_, String>(7)?),
                    meta: r.get(8)?,
                    meta_at: from_ts(r.get(9)?),
                })
            })
            .optional()?)
    }

    pub(crate) fn set_feed_state(&self, feed: &FeedKey, state: &FeedState) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO feeds(feed, signature, changed_at, ambiguous, history_at, history_ambiguous, page_size,
                   full_pages, retired, meta, meta_at)
                 VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT(feed) DO UPDATE SET signature=excluded.signature, changed_at=excluded.changed_at,
                   ambiguous=excluded.ambiguous, history_at=excluded.history_at,
                   history_ambiguous=excluded.history_ambiguous, page_size=excluded.page_size,
                   full_pages=excluded.full_pages, retired=excluded.retired, meta=excluded.meta,
                   meta_at=excluded.meta_at",
            )?
            .execute(params![
                feed.path_stem(),
                state.signature,
                ts(state.changed_at),
                state.ambiguous,
                ts(state.history_at),
                state.history_ambiguous,
                state.page_size as i64,
                state.full_pages as i64,
                retired_to_text(&state.retired),
                state.meta,
                ts(state.meta_at)
            ])?;
        Ok(())
    }

    /// Gives an item a new slot at the end of a feed's log (closing its open slot there, if any)
    /// and clears its tombstone in that feed.
    pub(crate) fn log_enter(&self, feed: &FeedKey, id: &str, at: DateTime<Utc>) -> Result<()> {
        let stem = feed.path_stem();
        self.tx
            .prepare_cached(
                "UPDATE feed_log INDEXED BY feed_log_open_by_id SET left_at=?3 WHERE feed=?1 AND id=?2 AND left_at IS NULL",
            )?
            .execute(params![stem, id, ts(at)])?;
        let pos: i64 = self
            .tx
            .prepare_cached("SELECT COALESCE(MAX(pos) + 1, 0) FROM feed_log WHERE feed=?1")?
            .query_row([&stem], |r| r.get(0))?;
        self.tx
            .prepare_cached("INSERT INTO feed_log(feed, pos, id, entered_at) VALUES(?1, ?2, ?3, ?4)")?
            .execute(params![stem, pos, id, ts(at)])?;
        self.tx.prepare_cached("DELETE FROM tombstones WHERE feed=?1 AND id=?2")?.execute([&stem, id])?;
        Ok(())
    }

    /// Closes an item's slot in a feed and records a tombstone for it.
    pub(crate) fn log_leave(&self, feed: &FeedKey, id: &str, at: DateTime<Utc>) -> Result<()> {
        let stem = feed.path_stem();
        self.tx
            .prepare_cached(
                "UPDATE feed_log INDEXED BY feed_log_open_by_id SET left_at=?3 WHERE feed=?1 AND id=?2 AND left_at IS NULL",
            )?
            .execute(params![stem, id, ts(at)])?;
        self.tx
            .prepare_cached(
                "INSERT INTO tombstones(feed, id, at) VALUES(?1, ?2, ?3) ON CONFLICT(feed, id) DO UPDATE SET at=excluded.at",
            )?
            .execute(params![stem, id, ts(at)])?;
        Ok(())
    }

    /// The position of an item's open slot in a feed's log.
    pub(crate) fn open_slot(&self, feed: &FeedKey, id: &str) -> Result<Option<u64>> {
        let pos: Option<i64> = self
            .tx
            .prepare_cached(
                "SELECT pos FROM feed_log INDEXED BY feed_log_open_by_id WHERE feed=?1 AND id=?2 AND left_at IS NULL",
            )?
            .query_row(params![feed.path_stem(), id], |r| r.get(0))
            .optional()?;
        Ok(pos.map(|p| p as u64))
    }

    /// The feeds (path stems) in which an item has an open slot: the feeds it is in.
    pub(crate) fn open_feeds(&self, id: &str) -> Result<Vec<String>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT feed FROM feed_log INDEXED BY feed_log_open_by_id WHERE id=?1 AND left_at IS NULL",
        )?;
        let rows = stmt.query_map([id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// How many slots in `from..to` of a feed's log are open.
    pub(crate) fn open_slots(&self, feed: &FeedKey, from: u64, to: u64) -> Result<u64> {
        let n: i64 = self
            .tx
            .prepare_cached("SELECT COUNT(*) FROM feed_log WHERE feed=?1 AND pos>=?2 AND pos<?3 AND left_at IS NULL")?
            .query_row(params![feed.path_stem(), from as i64, to as i64], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// Number of slots in a feed's log.
    pub fn log_len(&self, feed: &FeedKey) -> Result<u64> {
        let n: i64 = self
            .tx
            .prepare_cached("SELECT COALESCE(MAX(pos) + 1, 0) FROM feed_log WHERE feed=?1")?
            .query_row([feed.path_stem()], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// The items in open slots `from..to` of a feed's log, newest first (ties by id).
    pub fn slot_items(&self, feed: &FeedKey, from: u64, to: u64) -> Result<Vec<Item>> {
        slot_items(&self.tx, feed, from, to)
    }

    /// The items in open slots `from..to` of a feed's log as [`Batch::slot_items`] orders them,
    /// without their records: for a writer that keeps the items it read last time, and reads
    /// ([`Batch::head_item`]) only those it does not hold as they are.
    pub(crate) fn slot_heads(&self, feed: &FeedKey, from: u64, to: u64) -> Result<Vec<SlotHead>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT i.id, i.updated, i.hash FROM feed_log l JOIN items i ON i.id = l.id
             WHERE l.feed=?1 AND l.pos>=?2 AND l.pos<?3 AND l.left_at IS NULL AND i.deleted_at IS NULL
             ORDER BY i.published DESC, i.id",
        )?;
        let rows = stmt.query_map(params![feed.path_stem(), from as i64, to as i64], |r| {
            Ok(SlotHead { id: r.get(0)?, updated: r.get(1)?, hash: r.get(2)? })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The item a slot head names, with the size of its stored record in bytes.
    pub(crate) fn head_item(&self, head: &SlotHead) -> Result<(Item, usize)> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT r.data, length(r.data) FROM items i JOIN item_records r ON r.rowid = i.rec WHERE i.id=?1",
        )?;
        let (record, len) = stmt
            .query_row([&head.id], |r| Ok((r.get::<_, super::records::Record>(0)?, r.get::<_, i64>(1)?)))
            .optional()?
            .ok_or_else(|| anyhow::anyhow!("item {} has no record", head.id))?;
        Ok((row_item(head.id.clone(), head.updated, &record)?, len.max(0) as usize))
    }

    /// Tombstones of a feed recorded at or after `since`, newest first.
    pub(crate) fn tombstones(&self, feed: &FeedKey, since: DateTime<Utc>) -> Result<Vec<(String, DateTime<Utc>)>> {
        let mut stmt =
            self.tx.prepare_cached("SELECT id, at FROM tombstones WHERE feed=?1 AND at>=?2 ORDER BY at DESC, id")?;
        let rows = stmt.query_map(params![feed.path_stem(), ts(since)], |r| Ok((r.get(0)?, from_ts(r.get(1)?))))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Drops tombstones recorded before `before`, and moves the cutoff of the story-grouped
    /// views' merge tombstones (stories merged away stay redirects, but are no longer named as
    /// tombstones) to the same time, so that both kinds expire together. Returns the feeds that
    /// held any of either.
    pub(crate) fn purge_tombstones(&self, before: DateTime<Utc>) -> Result<Vec<String>> {
        let mut stmt = self.tx.prepare_cached("DELETE FROM tombstones WHERE at<?1 RETURNING feed")?;
        let rows = stmt.query_map([ts(before)], |r| r.get(0))?;
        let mut feeds: Vec<String> = rows.collect::<rusqlite::Result<_>>()?;
        let old = tombstones_before(&self.tx)?;
        if ts(before) > old {
            let mut stmt = self.tx.prepare_cached(
                "SELECT DISTINCT l.feed FROM story_redirects r JOIN story_log l INDEXED BY story_log_by_story
                 ON l.story = r.id WHERE r.at>=?1 AND r.at<?2",
            )?;
            let rows = stmt.query_map(params![old, ts(before)], |r| r.get(0))?;
            feeds.extend(rows.collect::<rusqlite::Result<Vec<String>>>()?);
            self.tx
                .prepare_cached(
                    "INSERT INTO meta(key, value) VALUES(?1, ?2) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                )?
                .execute(params![TOMBSTONES_BEFORE, ts(before).to_string()])?;
        }
        feeds.sort();
        feeds.dedup();
        Ok(feeds)
    }
}

/// The meta key holding the cutoff of the last purge of tombstones (seconds since the epoch).
const TOMBSTONES_BEFORE: &str = "tombstones_before";

/// The cutoff of the last purge: tombstones recorded before it are gone; 0 before any purge.
fn tombstones_before(conn: &Connection) -> Result<i64> {
    let value: Option<String> = conn
        .prepare_cached("SELECT value FROM meta WHERE key=?1")?
        .query_row([TOMBSTONES_BEFORE], |r| r.get(0))
        .optional()?;
    Ok(value.and_then(|v| v.parse().ok()).unwrap_or(0))
}

impl super::Reader {
    /// The oldest merge a story-grouped view still names as a tombstone: the cutoff of the
    /// writer's last purge, the same as the feeds' own tombstones (`tombstone_days`, purged at
    /// start and hourly), so a merge and a deletion of the same age come and go together.
    pub fn tombstones_before(&self, budget: &crate::budget::Budget) -> Result<DateTime<Utc>> {
        let conn = self.conn(budget)?;
        tombstones_before(&conn).map(from_ts).map_err(|e| conn.stopped(e))
    }
}

pub(super) fn slot_items(conn: &Connection, feed: &FeedKey, from: u64, to: u64) -> Result<Vec<Item>> {
    let mut stmt = conn.prepare_cached(
        "SELECT i.id, i.updated, (SELECT data FROM item_records r WHERE r.rowid = i.rec) FROM feed_log l JOIN items i ON i.id = l.id
         WHERE l.feed=?1 AND l.pos>=?2 AND l.pos<?3 AND l.left_at IS NULL AND i.deleted_at IS NULL
         ORDER BY i.published DESC, i.id",
    )?;
    let rows = stmt.query_map(params![feed.path_stem(), from as i64, to as i64], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, super::records::Record>(2)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, updated, record) = row?;
        out.push(row_item(id, updated, &record)?);
    }
    Ok(out)
}
