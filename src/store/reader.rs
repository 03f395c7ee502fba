//! The read-only side: a few connections for the requests answered from the store (archive
//! pages, filtered views, clipping pages), separate from the writer's.

use std::path::Path;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::log::slot_items;
use super::{configure, from_ts, row_item, ts};
use crate::feed::FeedKey;
use crate::item::{Item, ItemData};

/// A read-only connection for requests that are answered from the store (a clipping's page).
pub struct Reader {
    conns: Vec<std::sync::Mutex<Connection>>,
    next: std::sync::atomic::AtomicUsize,
}

/// Read connections: a slow filtered view does not hold up archive pages on another.
pub const READERS: usize = 3;

impl Reader {
    pub fn open(path: &Path) -> Result<Reader> {
        let mut conns = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let conn =
                Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                    .with_context(|| format!("cannot open store {} for reading", path.display()))?;
            configure(&conn)?;
            conns.push(std::sync::Mutex::new(conn));
        }
        Ok(Reader { conns, next: std::sync::atomic::AtomicUsize::new(0) })
    }

    /// A free connection if there is one, else the next in turn.
    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        for c in &self.conns {
            if let Ok(guard) = c.try_lock() {
                return guard;
            }
        }
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.conns.len();
        self.conns[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The items in open slots `from..to` of a feed's log (an archive page), newest first.
    pub fn slot_items(&self, feed: &FeedKey, from: u64, to: u64) -> Result<Vec<Item>> {
        slot_items(&self.conn(), feed, from, to)
    }

    /// The last time a slot in `from..to` of a feed's log was opened or closed.
    pub(crate) fn slots_changed_at(&self, feed: &FeedKey, from: u64, to: u64) -> Result<Option<DateTime<Utc>>> {
        let t: Option<i64> = self
            .conn()
            .prepare_cached(
                "SELECT MAX(MAX(entered_at, COALESCE(left_at, 0))) FROM feed_log WHERE feed=?1 AND pos>=?2 AND pos<?3",
            )?
            .query_row(params![feed.path_stem(), from as i64, to as i64], |r| r.get(0))?;
        Ok(t.map(from_ts))
    }

    /// The newest `limit` items of a feed's whole history that pass `filter`, newest first.
    pub(crate) fn filtered(&self, feed: &FeedKey, filter: &crate::filter::Filter, limit: usize) -> Result<Vec<Item>> {
        use rusqlite::types::Value;
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
            sql.push_str(" AND EXISTS(SELECT 1 FROM item_topics x WHERE x.id = i.id AND x.slug = ?)");
            args.push(Value::Text(t.clone()));
        }
        // Topic feeds read the membership index in feed order; the others the items indexes.
        let order = if matches!(feed, FeedKey::Topic(_)) { "t.published DESC, t.id" } else { "i.published DESC, i.id" };
        let mut sql = format!("SELECT i.id, i.updated, i.record, i.words {sql} ORDER BY {order}");
        if filter.q.is_empty() && filter.exclude.is_empty() {
            sql.push_str(" LIMIT ?");
            args.push(Value::Integer(limit as i64));
        }
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        let mut out = Vec::new();
        while out.len() < limit
            && let Some(row) = rows.next()?
        {
            let words: String = row.get(3)?;
            if filter.matches_words(&words) {
                out.push(row_item(row.get(0)?, row.get(1)?, &row.get::<_, String>(2)?)?);
            }
        }
        Ok(out)
    }

    /// A live item by id.
    pub(crate) fn item(&self, id: &str) -> Result<Option<Item>> {
        let conn = self.conn();
        let row: Option<(String, i64, String)> = conn
            .prepare_cached("SELECT id, updated, record FROM items WHERE id=?1 AND deleted_at IS NULL")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        row.map(|(id, updated, record)| {
            let data: ItemData = serde_json::from_str(&record).with_context(|| format!("corrupt item {id}"))?;
            Ok(Item { id, updated: from_ts(updated), data })
        })
        .transpose()
    }
}
