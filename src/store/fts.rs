//! The full-text index's SQL: an FTS5 table over every live item's text, kept by the writer in
//! the same transaction as the item ([`put`], [`delete`]), and the query behind `q`, `exclude`
//! and `search=` ([`matching`]). What goes into the columns and how searches become MATCH
//! expressions is `crate::search`'s; this module only stores and asks.
//!
//! The table is contentless (`content=''`): it holds the index alone, not a second copy of the
//! text, which the items' records already keep, and it never needs to read the text back: a
//! search answers ids. `contentless_delete=1` lets an item's row be deleted or replaced by rowid
//! alone (which needs the per-row column sizes kept, 25 bytes an item). No prefix index: at
//! 100,000 items `prefix='3'` took three-letter prefixes from 25-70 ms to 0.1 ms but the index from
//! 746 to 1,250 bytes an item and doubled the cost of indexing, and did nothing for longer
//! prefixes (`benches/search.rs`); the store is to stay within the clippings' size.
//!
//! Visibility: a search on feed F answers only items with an open slot in F's own log
//! (`feed_log`), the rule every view of a feed follows; the `scope` column only narrows the
//! candidates before that check.
//!
//! A store made before the index existed has its live items indexed once, by the writer, a chunk
//! per transaction ([`backfill`]), between its other jobs; [`MIGRATED`] in `meta` says it is
//! done, and until then searches are not answered from the index ([`ready`]).
//!
//! An item's FTS rowid is its *document number*: its publication time in seconds, shifted left
//! by [`SEQ_BITS`], plus a sequence number among items of the same second. The index's rowid
//! order is then the feeds' order (newest first), so a query walks the index backwards from the
//! newest match and stops once it has enough, whatever the number of matches. `search_docs` maps
//! document numbers to item ids (and back, by its unique index).

use anyhow::{Result, bail};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use crate::item::Item;
use crate::search::IndexDoc;

/// The index's tables, for the store's schema.
pub const SCHEMA: &str = "
-- Full-text index over the live items (see store/fts.rs): contentless, rowid = document number.
CREATE VIRTUAL TABLE IF NOT EXISTS search_index USING fts5(
    title, excerpt, body, site, topics, tw, xw, scope,
    content='', contentless_delete=1,
    tokenize='unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS search_docs(
    doc INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE
);
";

/// The tables [`SCHEMA`] makes, for dropping an older store.
pub const TABLES: [&str; 2] = ["search_index", "search_docs"];

/// Bits of a document number below the publication second.
pub const SEQ_BITS: u32 = 24;
/// Publication seconds are clamped to ±2^38 (about 8,700 years) so every number fits an i64.
const MAX_SECS: i64 = (1 << 38) - 1;

fn second_of(doc: i64) -> i64 {
    doc >> SEQ_BITS
}

/// Indexes an item's text, replacing what the index held for it.
pub fn put(conn: &Connection, item: &Item) -> Result<()> {
    put_doc(conn, &item.id, item.data.published, &IndexDoc::of(item))
}

/// Indexes `d`, the columns of the item `id` published at `published`, replacing what the index
/// held for it.
///
/// FTS5 keeps what it is given in memory until the transaction ends, or until a statement
/// opens a savepoint of its own (one that fires a trigger, such as a feed-log write): then it
/// writes out a segment. Items written one after the other with nothing in between, as a remap
/// does, are therefore indexed in a few large segments instead of one small segment each.
pub fn put_doc(conn: &Connection, id: &str, published: DateTime<Utc>, d: &IndexDoc) -> Result<()> {
    let secs = published.timestamp().clamp(-MAX_SECS, MAX_SECS);
    let old: Option<i64> =
        conn.prepare_cached("SELECT doc FROM search_docs WHERE id=?1")?.query_row([id], |r| r.get(0)).optional()?;
    let doc = match old {
        Some(doc) if second_of(doc) == secs => {
            conn.prepare_cached("DELETE FROM search_index WHERE rowid=?1")?.execute([doc])?;
            doc
        }
        _ => {
            if let Some(doc) = old {
                forget(conn, doc)?;
            }
            let base = secs << SEQ_BITS;
            let top = base | ((1 << SEQ_BITS) - 1);
            let last: Option<i64> = conn
                .prepare_cached("SELECT max(doc) FROM search_docs WHERE doc BETWEEN ?1 AND ?2")?
                .query_row([base, top], |r| r.get(0))?;
            let doc = last.map_or(base, |d| d + 1);
            if doc > top {
                bail!("more than {} items published in the same second", 1u64 << SEQ_BITS);
            }
            conn.prepare_cached("INSERT INTO search_docs(doc, id) VALUES(?1, ?2)")?.execute(params![doc, id])?;
            doc
        }
    };
    conn.prepare_cached(
        "INSERT INTO search_index(rowid, title, excerpt, body, site, topics, tw, xw, scope)
         VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![doc, d.title, d.excerpt, d.body, d.site, d.topics, d.tw, d.xw, d.scope])?;
    Ok(())
}

/// FTS5's own default for `automerge`, the value a store that never set it runs with.
const AUTOMERGE_DEFAULT: i64 = 4;

/// Runs `f`, which re-indexes many items, with the index's incremental merging off, and puts
/// back the store's setting after it (in the same transaction).
///
/// With it on, every segment FTS5 writes out pays for merging work in proportion to its size,
/// and that work reaches into the large segments holding the rest of the index: re-indexing a
/// third of 100,000 items spent two thirds of its time merging. Off, the new segments are
/// left as they are (FTS5 still merges a level once it holds `crisismerge` segments, 16), and
/// the ordinary writes after it merge them a little at a time. What a search answers is the
/// same either way: segments change how the index is laid out, not what it holds.
pub fn merges_held<T>(conn: &Connection, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let setting: Option<i64> = conn
        .prepare_cached("SELECT v FROM search_index_config WHERE k='automerge'")?
        .query_row([], |r| r.get(0))
        .optional()?;
    let set = |v: i64| -> Result<()> {
        conn.prepare_cached("INSERT INTO search_index(search_index, rank) VALUES('automerge', ?1)")?.execute([v])?;
        Ok(())
    };
    // Already off (the store's own setting, `merge_when_idle`): nothing to write. A write of
    // the setting would also make FTS5 write out what it holds in memory as a segment.
    if setting == Some(0) {
        return f();
    }
    set(0)?;
    // Put back on both paths: the caller's transaction rolls back on an error today, but the
    // setting must not hang on that.
    let out = f();
    set(setting.unwrap_or(AUTOMERGE_DEFAULT))?;
    out
}

/// Turns the index's merging on writes off for good (the store's `automerge` setting, 0): each
/// write then only adds its small segment, and the merging is done by [`merge_step`] while the
/// writer is idle. With it on, one write in a few paid for merging a level of the index: at
/// 100,000 items that was the tail of watch-to-publish (a change's transaction p99 24.0 ms,
/// 4.0 ms with it off). FTS5 still merges a level at once when it holds `crisismerge` segments.
pub fn merge_when_idle(conn: &Connection) -> Result<()> {
    let setting: Option<i64> = conn
        .prepare_cached("SELECT v FROM search_index_config WHERE k='automerge'")?
        .query_row([], |r| r.get(0))
        .optional()?;
    if setting != Some(0) {
        conn.execute("INSERT INTO search_index(search_index, rank) VALUES('automerge', 0)", [])?;
    }
    Ok(())
}

/// One step of the index's merging, at most about `pages` pages of work (levels holding
/// `usermerge` segments, 4 by default, merged as `automerge` would have merged them on a
/// write). Returns whether it found work (then more may be left).
pub fn merge_step(conn: &Connection, pages: i64) -> Result<bool> {
    let before = conn.total_changes();
    conn.prepare_cached("INSERT INTO search_index(search_index, rank) VALUES('merge', ?1)")?.execute([pages])?;
    // FTS5's documented signal: fewer than two changes means there was nothing to merge.
    Ok(conn.total_changes() - before >= 2)
}

/// Removes an item from the index (deleted, or no longer live). Nothing happens if it is not in.
pub fn delete(conn: &Connection, id: &str) -> Result<()> {
    let doc: Option<i64> =
        conn.prepare_cached("SELECT doc FROM search_docs WHERE id=?1")?.query_row([id], |r| r.get(0)).optional()?;
    if let Some(doc) = doc {
        forget(conn, doc)?;
    }
    Ok(())
}

fn forget(conn: &Connection, doc: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM search_index WHERE rowid=?1")?.execute([doc])?;
    conn.prepare_cached("DELETE FROM search_docs WHERE doc=?1")?.execute([doc])?;
    Ok(())
}

/// The `meta` key that says every live item is in the index (its value: when that became true).
pub const MIGRATED: &str = "migrated_search";
/// The `meta` key of the backfill's progress: the last item key indexed.
const BACKFILL_AFTER: &str = "search_backfill_after";

fn meta(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn.prepare_cached("SELECT value FROM meta WHERE key=?1")?.query_row([key], |r| r.get(0)).optional()?)
}

fn set_meta(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta(key, value) VALUES(?1, ?2) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
    )?
    .execute([key, value])?;
    Ok(())
}

/// At schema set-up: a store with no live item has nothing to index, so its index is complete
/// from the start; one with live items and no [`MIGRATED`] mark is left for [`backfill`].
/// Idempotent, and cheap: it reads one row.
pub fn migrate_search(conn: &Connection) -> Result<()> {
    if meta(conn, MIGRATED)?.is_some() {
        return Ok(());
    }
    let any: bool = conn.query_row("SELECT EXISTS(SELECT 1 FROM items WHERE deleted_at IS NULL)", [], |r| r.get(0))?;
    if !any {
        set_meta(conn, MIGRATED, "empty store")?;
    }
    Ok(())
}

/// Whether every live item is in the index, so searches can be answered from it.
pub fn ready(conn: &Connection) -> Result<bool> {
    Ok(meta(conn, MIGRATED)?.is_some())
}

/// Indexes the next `chunk` live items (by key) that the backfill has not reached, and records
/// how far it got; marks the index complete once none is left. Items written meanwhile are
/// indexed by the writer as usual, and indexing one again only replaces its row, so a crash or a
/// restart between chunks loses nothing. Returns the number indexed, and whether it is done.
pub fn backfill(conn: &Connection, chunk: usize) -> Result<(usize, bool)> {
    if ready(conn)? {
        return Ok((0, true));
    }
    let after = meta(conn, BACKFILL_AFTER)?.unwrap_or_default();
    let mut stmt = conn.prepare_cached(
        "SELECT i.key, i.id, i.updated, (SELECT data FROM item_records r WHERE r.rowid = i.rec) FROM items i
         WHERE i.deleted_at IS NULL AND i.key > ?1 ORDER BY i.key LIMIT ?2",
    )?;
    let rows: Vec<(String, String, i64, super::records::Record)> = stmt
        .query_map(params![after, chunk as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (_, id, updated, record) in &rows {
        put(conn, &super::row_item(id.clone(), *updated, record)?)?;
    }
    let done = rows.len() < chunk;
    if done {
        set_meta(conn, MIGRATED, &Utc::now().to_rfc3339())?;
        conn.prepare_cached("DELETE FROM meta WHERE key=?1")?.execute([BACKFILL_AFTER])?;
    } else if let Some((key, ..)) = rows.last() {
        set_meta(conn, BACKFILL_AFTER, key)?;
    }
    Ok((rows.len(), done))
}

/// What narrows a search besides its MATCH expression.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bounds {
    /// Only items published at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only items with at least this quality (items without one do not pass).
    pub min_quality: Option<i64>,
}

/// The ids of the newest `limit` items matching `expression` (a [`crate::search::Match`]'s)
/// within `bounds` that hold an open slot in the log of `feed` (a path stem): newest first, in
/// the feeds' order (publication time descending, then id). An expression FTS5 rejects is an
/// error, never a partial answer.
pub fn matching(conn: &Connection, expression: &str, feed: &str, bounds: &Bounds, limit: usize) -> Result<Vec<String>> {
    let quality =
        if bounds.min_quality.is_some() { "JOIN items i ON i.id = d.id AND i.quality >= ?3" } else { "AND ?3 IS NULL" };
    // The feed's own log decides what a reader of it may see (private clippings have no slot in
    // a public feed's log): checked row by row, by the log's index of open slots.
    let sql = format!(
        "SELECT d.id, d.doc FROM search_index s JOIN search_docs d ON d.doc = s.rowid {quality}
         WHERE search_index MATCH ?1 AND s.rowid >= ?2
           AND EXISTS(SELECT 1 FROM feed_log l WHERE l.feed = ?4 AND l.id = d.id AND l.left_at IS NULL)
         ORDER BY s.rowid DESC"
    );
    let since = bounds.since.map_or(i64::MIN, |t| t.timestamp().clamp(-MAX_SECS, MAX_SECS) << SEQ_BITS);
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![expression, since, bounds.min_quality, feed])?;
    // Read in document order until `limit` are in and the next one is from an earlier second:
    // within one second the feeds order by id, which document numbers do not follow.
    let mut found: Vec<(i64, String)> = Vec::new();
    while let Some(row) = rows.next()? {
        let second = second_of(row.get(1)?);
        if found.len() >= limit && found.last().is_some_and(|(s, _)| *s != second) {
            break;
        }
        found.push((second, row.get(0)?));
    }
    found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    found.truncate(limit);
    Ok(found.into_iter().map(|(_, id)| id).collect())
}

/// The number of items in the index.
#[cfg(test)]
pub fn count(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT count(*) FROM search_docs", [], |r| r.get(0))?)
}

#[cfg(test)]
#[path = "fts_tests.rs"]
mod tests;
