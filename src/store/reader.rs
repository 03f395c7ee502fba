//! The read-only side: a few connections for the requests answered from the store (archive
//! pages, filtered views, clipping pages), separate from the writer's. Every query runs within its
//! request's [`Budget`], and every query is confined to a feed log ([`FeedLog`], from
//! `config/visibility`): it returns only items with an open slot in that log, so a public view
//! cannot read a private item whatever else its query says.

use std::path::Path;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::log::slot_items;
use super::records::{ITEM_RECORD, Record};
use super::{configure, from_ts, row_item, ts};
use crate::budget::Budget;
use crate::config::FeedLog;
use crate::feed::FeedKey;
use crate::item::{Item, ItemData};

/// Read-only connections for requests that are answered from the store (archive pages, filtered
/// views, a clipping's page). Every query runs within a [`Budget`]: SQLite's progress handler
/// interrupts it once the request is cancelled or past its deadline, and the call then fails
/// with `budget::Stopped`.
pub struct Reader {
    conns: Vec<ReadConn>,
    next: std::sync::atomic::AtomicUsize,
}

/// One read-only connection and the budget of the query it runs, which its progress handler
/// reads.
struct ReadConn {
    conn: std::sync::Mutex<Connection>,
    budget: std::sync::Arc<std::sync::Mutex<Option<Budget>>>,
}

/// SQLite virtual-machine steps between two looks at the budget (tens of microseconds).
const PROGRESS_STEPS: std::ffi::c_int = 1000;

/// A connection taken for one query, with its budget in force until it is dropped.
pub(super) struct Session<'a> {
    conn: std::sync::MutexGuard<'a, Connection>,
    slot: &'a std::sync::Mutex<Option<Budget>>,
    budget: &'a Budget,
}

impl Session<'_> {
    /// Turns an error into [`Stopped`](crate::budget::Stopped) when the budget is why the query failed.
    pub(super) fn stopped(&self, e: impl Into<anyhow::Error>) -> anyhow::Error {
        match self.budget.check() {
            Err(stop) => stop.into(),
            Ok(()) => e.into(),
        }
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

impl std::ops::Deref for Session<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl Reader {
    /// Opens `connections` read-only connections (at least one).
    pub fn open(path: &Path, connections: usize) -> Result<Reader> {
        let mut conns = Vec::with_capacity(connections.max(1));
        for _ in 0..connections.max(1) {
            let mut conn =
                Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                    .with_context(|| format!("cannot open store {} for reading", path.display()))?;
            configure(&conn)?;
            conn.set_prepared_statement_cache_capacity(super::STATEMENT_CACHE);
            let budget = std::sync::Arc::new(std::sync::Mutex::new(None::<Budget>));
            let watched = budget.clone();
            conn.progress_handler(
                PROGRESS_STEPS,
                Some(move || {
                    watched.lock().unwrap_or_else(|p| p.into_inner()).as_ref().is_some_and(|b| b.check().is_err())
                }),
            )?;
            conns.push(ReadConn { conn: std::sync::Mutex::new(conn), budget });
        }
        Ok(Reader { conns, next: std::sync::atomic::AtomicUsize::new(0) })
    }

    /// A free connection if there is one, else the next in turn, with `budget` in force.
    pub(super) fn conn<'a>(&'a self, budget: &'a Budget) -> Result<Session<'a>> {
        budget.check()?;
        let c = match self.conns.iter().find_map(|c| c.conn.try_lock().ok().map(|g| (c, g))) {
            Some(found) => found,
            None => {
                let c = &self.conns[self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.conns.len()];
                (c, c.conn.lock().unwrap_or_else(|p| p.into_inner()))
            }
        };
        *c.0.budget.lock().unwrap_or_else(|p| p.into_inner()) = Some(budget.clone());
        Ok(Session { conn: c.1, slot: &c.0.budget, budget })
    }

    /// The items in open slots `from..to` of a feed's log (an archive page), newest first.
    pub fn slot_items(&self, log: &FeedLog, from: u64, to: u64, budget: &Budget) -> Result<Vec<Item>> {
        let conn = self.conn(budget)?;
        slot_items(&conn, log.feed(), from, to).map_err(|e| conn.stopped(e))
    }

    /// The last time a slot in `from..to` of a feed's log was opened or closed.
    pub fn slots_changed_at(
        &self,
        log: &FeedLog,
        from: u64,
        to: u64,
        budget: &Budget,
    ) -> Result<Option<DateTime<Utc>>> {
        self.changed_at("feed_log", log, from, to, budget)
    }

    /// The last time a slot in `from..to` of `table` (a log with `feed`, `pos`, `entered_at`
    /// and `left_at`: `feed_log` or `story_log`) for `log`'s feed was opened or closed.
    pub(super) fn changed_at(
        &self,
        table: &'static str,
        log: &FeedLog,
        from: u64,
        to: u64,
        budget: &Budget,
    ) -> Result<Option<DateTime<Utc>>> {
        let conn = self.conn(budget)?;
        let sql = format!(
            "SELECT MAX(MAX(entered_at, COALESCE(left_at, 0))) FROM {table} WHERE feed=?1 AND pos>=?2 AND pos<?3"
        );
        let t: Option<i64> = conn
            .prepare_cached(&sql)?
            .query_row(params![log.feed().path_stem(), from as i64, to as i64], |r| r.get(0))
            .map_err(|e| conn.stopped(e))?;
        Ok(t.map(from_ts))
    }

    /// The newest `limit` items of a feed's whole history that pass `filter`, newest first.
    /// The rows are matched here, so the budget is also checked every 64 rows.
    pub fn filtered(
        &self,
        log: &FeedLog,
        filter: &crate::filter::Filter,
        limit: usize,
        budget: &Budget,
    ) -> Result<Vec<Item>> {
        use rusqlite::types::Value;
        let feed = log.feed();
        let (mut sql, mut args): (String, Vec<Value>) = match feed {
            FeedKey::All => ("FROM items i WHERE i.deleted_at IS NULL".into(), vec![]),
            FeedKey::Topic(slug) => (
                "FROM item_topics t JOIN items i ON i.id = t.id WHERE t.slug = ?".into(),
                vec![Value::Text(slug.clone())],
            ),
            FeedKey::Provider(d) => {
                ("FROM items i WHERE i.provider = ? AND i.deleted_at IS NULL".into(), vec![Value::Text(d.clone())])
            }
        };
        // Only what the feed holds: its open slots. A clipping in a private feed has none in
        // any public feed (nor do those a topic's settings leave out), whatever its topics and
        // news site say.
        sql.push_str(" AND EXISTS(SELECT 1 FROM feed_log l WHERE l.feed = ? AND l.id = i.id AND l.left_at IS NULL)");
        args.push(Value::Text(feed.path_stem()));
        if let Some(since) = filter.since {
            sql.push_str(" AND i.published >= ?");
            args.push(Value::Integer(ts(since)));
        }
        if let Some(q) = filter.min_quality {
            sql.push_str(" AND i.quality >= ?");
            args.push(Value::Integer(q));
        }
        if let Some(p) = &filter.provider {
            sql.push_str(" AND i.provider = ?");
            args.push(Value::Text(p.clone()));
        }
        if let Some(t) = &filter.topic {
            sql.push_str(" AND EXISTS(SELECT 1 FROM item_topics x WHERE x.slug = ? AND x.published = i.published AND x.id = i.id)");
            args.push(Value::Text(t.clone()));
        }
        // Topic feeds read the membership index in feed order; the others the items indexes.
        let order = if matches!(feed, FeedKey::Topic(_)) { "t.published DESC, t.id" } else { "i.published DESC, i.id" };
        let mut sql = format!("SELECT i.id, i.updated, {ITEM_RECORD} {sql} ORDER BY {order}");
        if filter.q.is_empty() && filter.exclude.is_empty() {
            sql.push_str(" LIMIT ?");
            args.push(Value::Integer(limit as i64));
        }
        let conn = self.conn(budget)?;
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args)).map_err(|e| conn.stopped(e))?;
        let mut out = Vec::new();
        let mut seen = 0u32;
        while out.len() < limit
            && let Some(row) = rows.next().map_err(|e| conn.stopped(e))?
        {
            seen = seen.wrapping_add(1);
            if seen.is_multiple_of(64) {
                budget.check()?;
            }
            let item = row_item(row.get(0)?, row.get(1)?, &row.get::<_, Record>(2)?)?;
            if words_pass(filter, &item) {
                out.push(item);
            }
        }
        Ok(out)
    }

    /// The newest `limit` items of a feed's whole history that pass `filter`, newest first,
    /// answered from the search index: the filter's words, search and scopes as one MATCH, the
    /// feed's log as the rule of what it holds (see `fts::matching`). While the index is still
    /// being filled, `q` and `exclude` are answered by [`Reader::filtered`]'s scan, and a
    /// `search=` fails with `search::NotReady`.
    pub fn searched(
        &self,
        log: &FeedLog,
        filter: &crate::filter::Filter,
        limit: usize,
        budget: &Budget,
    ) -> Result<Vec<Item>> {
        let conn = self.conn(budget)?;
        if !super::fts::ready(&conn).map_err(|e| conn.stopped(e))? {
            drop(conn);
            anyhow::ensure!(filter.search.is_none(), crate::search::NotReady);
            return self.filtered(log, filter, limit, budget);
        }
        let feed = log.feed();
        let expression = crate::search::filter_match(filter, feed).expression();
        let bounds = super::fts::Bounds { since: filter.since, min_quality: filter.min_quality };
        let ids =
            super::fts::matching(&conn, &expression, &feed.path_stem(), &bounds, limit).map_err(|e| conn.stopped(e))?;
        let mut stmt = conn.prepare_cached(&format!("SELECT i.updated, {ITEM_RECORD} FROM items i WHERE i.id=?1"))?;
        ids.into_iter()
            .map(|id| {
                let (updated, record): (i64, Record) =
                    stmt.query_row([&id], |r| Ok((r.get(0)?, r.get(1)?))).map_err(|e| conn.stopped(e))?;
                row_item(id, updated, &record)
            })
            .collect()
    }

    /// A live item by id, when it has an open slot in `log`.
    pub fn item(&self, log: &FeedLog, id: &str, budget: &Budget) -> Result<Option<Item>> {
        let conn = self.conn(budget)?;
        let row: Option<(String, i64, Record)> = conn
            .prepare_cached(&format!(
                "SELECT i.id, i.updated, {ITEM_RECORD} FROM items i
                 WHERE i.id=?1 AND i.deleted_at IS NULL
                 AND EXISTS(SELECT 1 FROM feed_log l WHERE l.feed=?2 AND l.id=i.id AND l.left_at IS NULL)"
            ))?
            .query_row(params![id, log.feed().path_stem()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()
            .map_err(|e| conn.stopped(e))?;
        row.map(|(id, updated, record)| {
            let data: ItemData = record.decode().with_context(|| format!("corrupt item {id}"))?;
            Ok(Item { id, updated: from_ts(updated), data })
        })
        .transpose()
    }
}

/// Whether `item` passes `filter`'s `q` and `exclude` word by word (the search index does it
/// once ready): on the words of its title and excerpt, made from its record here rather than
/// stored beside it.
fn words_pass(filter: &crate::filter::Filter, item: &Item) -> bool {
    if filter.q.is_empty() && filter.exclude.is_empty() {
        return true;
    }
    let clip = &item.data.clip;
    filter.matches_words(&crate::text::words_of(&[&clip.title, clip.excerpt.as_deref().unwrap_or("")]))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::Utc;

    use super::*;
    use crate::store::Store;
    use crate::store::tests::item;

    /// Counts to `n` in SQL, for the budget tests: long enough to need interrupting.
    fn count_to(reader: &Reader, n: i64, budget: &Budget) -> Result<i64> {
        let conn = reader.conn(budget)?;
        conn.query_row(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?1) SELECT COUNT(*) FROM c",
            [n],
            |r| r.get(0),
        )
        .map_err(|e| conn.stopped(e))
    }

    #[test]
    fn the_reader_stops_a_query_past_its_budget_and_stays_usable() {
        use crate::budget::Stopped;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut s = Store::open(&path).unwrap();
        let b = s.batch().unwrap();
        let a = item("a", "2024-01-02T00:00:00Z", &["ai"]);
        b.put_item("a", &a, Utc::now(), &a.data.hash(), &a.data.shown_hash()).unwrap();
        b.log_enter(&FeedKey::All, &a.id, Utc::now()).unwrap();
        b.commit().unwrap();
        let reader = Reader::open(&path, 1).unwrap();
        let stopped = |r: Result<i64>| r.unwrap_err().downcast::<Stopped>().unwrap();
        // Billions of steps: only the progress handler can end this within the test.
        let late = Budget::until(std::time::Instant::now() + Duration::from_millis(50));
        assert_eq!(stopped(count_to(&reader, 5_000_000_000, &late)), Stopped::OutOfTime);
        let gone = Budget::unlimited();
        gone.cancel();
        assert_eq!(stopped(count_to(&reader, 10, &gone)), Stopped::Cancelled);
        let err = reader.item(&FeedLog::public(), &a.id, &gone).unwrap_err();
        assert_eq!(err.downcast::<Stopped>().unwrap(), Stopped::Cancelled);
        // The connection serves the next request, whose budget is its own.
        let fresh = Budget::unlimited();
        assert_eq!(count_to(&reader, 1000, &fresh).unwrap(), 1000);
        assert_eq!(reader.item(&FeedLog::public(), &a.id, &fresh).unwrap().unwrap().id, a.id);
        let filter = crate::filter::Filter::default();
        assert_eq!(reader.filtered(&FeedLog::public(), &filter, 10, &fresh).unwrap().len(), 1);
        // Not in a feed's log, not read for that feed: neither by id nor by a filter.
        let other = FeedLog::of(&FeedKey::Topic("ai".into()));
        assert!(reader.item(&other, &a.id, &fresh).unwrap().is_none());
        assert!(reader.filtered(&other, &filter, 10, &fresh).unwrap().is_empty());
    }
}
