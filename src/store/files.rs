//! Files: one row per clipping file seen under a root, with its stat and its last good parse,
//! the rejections of files whose current content is bad, and the items a large batch has
//! recorded but not yet refreshed (`pending`).

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::records::Record;
use super::{Batch, FileIndex, Store, from_ts, ts};
use crate::clip::Clipping;
use crate::item::ItemData;

/// A file's identity: the root it was found under and its `/`-separated path relative to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId {
    pub(crate) root: String,
    pub(crate) path: String,
}

/// What decides whether a file must be read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStat {
    pub(crate) size: u64,
    pub(crate) mtime_ns: i64,
}

/// A file as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    pub(crate) stat: FileStat,
    /// Key of the item its last good parse names.
    pub(crate) item_key: Option<String>,
    /// Whether its current content is rejected.
    pub(crate) rejected: bool,
}

/// A rejected file and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub(crate) file: FileId,
    pub(crate) reason: String,
    pub(crate) at: DateTime<Utc>,
}

impl Store {
    /// Every known file with its stat and whether it is rejected, for the start-up reconcile.
    pub(crate) fn file_index(&self) -> Result<FileIndex> {
        let mut stmt = self.conn.prepare(
            "SELECT f.root, f.path, f.size, f.mtime_ns, r.reason IS NOT NULL
             FROM files f LEFT JOIN rejections r ON r.root = f.root AND r.path = f.path",
        )?;
        let mut out = FileIndex::default();
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let stat = FileStat { size: r.get::<_, i64>(2)? as u64, mtime_ns: r.get(3)? };
            out.insert(FileId { root: r.get(0)?, path: r.get(1)? }, (stat, r.get(4)?));
        }
        Ok(out)
    }
}

impl Batch<'_> {
    pub(crate) fn file(&self, id: &FileId) -> Result<Option<FileRow>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT f.size, f.mtime_ns, f.item_key, EXISTS(SELECT 1 FROM rejections r WHERE r.root = f.root AND r.path = f.path)
             FROM files f WHERE f.root=?1 AND f.path=?2",
        )?;
        Ok(stmt
            .query_row([&id.root, &id.path], |r| {
                Ok(FileRow {
                    stat: FileStat { size: r.get::<_, i64>(0)? as u64, mtime_ns: r.get(1)? },
                    item_key: r.get(2)?,
                    rejected: r.get(3)?,
                })
            })
            .optional()?)
    }

    /// Paths of known files inside the folder `dir` (relative, no trailing slash) of `root`.
    pub(crate) fn files_under(&self, root: &str, dir: &str) -> Result<Vec<String>> {
        let mut stmt = if dir.is_empty() {
            self.tx.prepare_cached("SELECT path FROM files WHERE root=?1 AND ?2 = ''")?
        } else {
            // Every path that starts with "dir/": the range ["dir/", "dir0"), as '0' follows '/'.
            self.tx.prepare_cached("SELECT path FROM files WHERE root=?1 AND path >= ?2 || '/' AND path < ?2 || '0'")?
        };
        let rows = stmt.query_map([root, dir], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Records a good parse of a file and clears any rejection.
    pub(crate) fn put_file_ok(&self, id: &FileId, stat: FileStat, key: &str, clipping: &Clipping) -> Result<()> {
        let record = serde_json::to_string(clipping)?;
        self.tx
            .prepare_cached(
                "INSERT INTO files(root, path, size, mtime_ns, item_key, record) VALUES(?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(root, path) DO UPDATE SET size=excluded.size, mtime_ns=excluded.mtime_ns,
                   item_key=excluded.item_key, record=excluded.record",
            )?
            .execute(params![id.root, id.path, stat.size as i64, stat.mtime_ns, key, record])?;
        self.tx.prepare_cached("DELETE FROM rejections WHERE root=?1 AND path=?2")?.execute([&id.root, &id.path])?;
        Ok(())
    }

    /// Makes every file look changed, so that the next reconcile reads each one again: for a
    /// build that reads clipping files differently from the one that stored them.
    pub(crate) fn forget_file_stats(&self) -> Result<usize> {
        Ok(self.tx.execute("UPDATE files SET mtime_ns = -1", [])?)
    }

    /// Records that a file is bad. Its last good parse, if any, stays in force.
    pub(crate) fn put_file_rejected(&self, id: &FileId, stat: FileStat, reason: &str, at: DateTime<Utc>) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO files(root, path, size, mtime_ns) VALUES(?1, ?2, ?3, ?4)
                 ON CONFLICT(root, path) DO UPDATE SET size=excluded.size, mtime_ns=excluded.mtime_ns",
            )?
            .execute(params![id.root, id.path, stat.size as i64, stat.mtime_ns])?;
        self.tx
            .prepare_cached(
                "INSERT INTO rejections(root, path, reason, at) VALUES(?1, ?2, ?3, ?4)
                 ON CONFLICT(root, path) DO UPDATE SET reason=excluded.reason,
                   at=CASE WHEN rejections.reason = excluded.reason THEN rejections.at ELSE excluded.at END",
            )?
            .execute(params![id.root, id.path, reason, ts(at)])?;
        Ok(())
    }

    /// Forgets a file. Returns whether the store knew it, and the key its last good parse named.
    pub(crate) fn remove_file(&self, id: &FileId) -> Result<(bool, Option<String>)> {
        let key: Option<Option<String>> = self
            .tx
            .prepare_cached("DELETE FROM files WHERE root=?1 AND path=?2 RETURNING item_key")?
            .query_row([&id.root, &id.path], |r| r.get(0))
            .optional()?;
        self.tx.prepare_cached("DELETE FROM rejections WHERE root=?1 AND path=?2")?.execute([&id.root, &id.path])?;
        Ok((key.is_some(), key.flatten()))
    }

    /// The files whose last good parse names `key`, with their clippings, ordered by path. A
    /// file with no record of its own has its item's clipping (see `store/records.rs`).
    pub(crate) fn sources(&self, key: &str) -> Result<Vec<(String, Clipping)>> {
        let sql = format!(
            "SELECT path, record, CASE WHEN record IS NULL THEN
               (SELECT {} FROM items i WHERE i.key = f.item_key) END
             FROM files f WHERE item_key=?1 ORDER BY path, root",
            super::records::ITEM_RECORD
        );
        let mut stmt = self.tx.prepare_cached(&sql)?;
        let rows = stmt.query_map([key], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, Option<Record>>(2)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (path, own, shared) = row?;
            let clip: Clipping = match (own, shared) {
                (Some(json), _) => serde_json::from_str(&json).with_context(|| format!("corrupt record for {path}"))?,
                (None, Some(item)) => {
                    item.decode::<ItemData>().with_context(|| format!("corrupt item for {path}"))?.clip
                }
                (None, None) => anyhow::bail!("{path} has no record and its item none either"),
            };
            out.push((path, clip));
        }
        Ok(out)
    }

    /// Every file whose last good parse names `key`.
    pub(crate) fn files_with_key(&self, key: &str) -> Result<Vec<FileId>> {
        let mut stmt = self.tx.prepare_cached("SELECT root, path FROM files WHERE item_key=?1 ORDER BY root, path")?;
        let rows = stmt.query_map([key], |r| Ok(FileId { root: r.get(0)?, path: r.get(1)? }))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub(crate) fn rejections(&self) -> Result<Vec<Rejection>> {
        let mut stmt = self.tx.prepare_cached("SELECT root, path, reason, at FROM rejections ORDER BY root, path")?;
        let rows = stmt.query_map([], |r| {
            Ok(Rejection {
                file: FileId { root: r.get(0)?, path: r.get(1)? },
                reason: r.get(2)?,
                at: from_ts(r.get(3)?),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Notes that an item must be refreshed (see the `pending` table).
    pub(crate) fn add_pending(&self, key: &str) -> Result<()> {
        self.tx.prepare_cached("INSERT OR IGNORE INTO pending(key) VALUES(?1)")?.execute([key])?;
        Ok(())
    }

    pub(crate) fn clear_pending(&self, key: &str) -> Result<()> {
        self.tx.prepare_cached("DELETE FROM pending WHERE key=?1")?.execute([key])?;
        Ok(())
    }

    pub(crate) fn pending(&self) -> Result<Vec<String>> {
        let mut stmt = self.tx.prepare_cached("SELECT key FROM pending")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
