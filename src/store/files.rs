//! Files: one row per clipping file seen under a root, with its stat and its last good parse,
//! the rejections of files whose current content is bad, and the items a large batch has
//! recorded but not yet refreshed (`pending`).

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::records::Record;
use super::{Batch, Store, from_ts, ts};
use crate::clip::Clipping;
use crate::item::ItemData;

/// A file's last good parse as stored: its own record (its clipping's JSON), or none when it is
/// its item's (the item's record, which holds the clipping).
#[derive(Debug)]
pub(crate) struct StoredSource {
    path: String,
    own: Option<String>,
    shared: Option<Record>,
}

impl StoredSource {
    /// The file's path and its clipping.
    pub(crate) fn decode(&self) -> Result<(String, Clipping)> {
        let StoredSource { path, own, shared } = self;
        let clip: Clipping = match (own, shared) {
            (Some(json), _) => serde_json::from_str(json).with_context(|| format!("corrupt record for {path}"))?,
            (None, Some(item)) => item.decode::<ItemData>().with_context(|| format!("corrupt item for {path}"))?.clip,
            (None, None) => anyhow::bail!("{path} has no record and its item none either"),
        };
        Ok((path.clone(), clip))
    }
}

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

/// The key a file is compared by in a reconcile: a 128-bit hash of its path relative to its
/// root, seeded by the root ([`FileKeys::of`]). Two files collide with a probability near
/// 2^-128 per pair; a collision could only make a file look changed, or unchanged until its next
/// change is reported. Two halves rather than a `u128`, so that a file's entry is 8-byte aligned
/// (40 bytes, not 48).
pub(crate) type FileKey = (u64, u64);

/// Makes the [`FileKey`]s of one root's files.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FileKeys {
    seed: u64,
}

impl FileKeys {
    pub(crate) fn new(root: &str) -> FileKeys {
        FileKeys { seed: xxhash_rust::xxh3::xxh3_64(root.as_bytes()) }
    }

    /// The key of the file at `path` (relative to the root, `/`-separated, as in [`FileId`]).
    pub(crate) fn of(&self, path: &[u8]) -> FileKey {
        let h = xxhash_rust::xxh3::xxh3_128_with_seed(path, self.seed);
        ((h >> 64) as u64, h as u64)
    }
}

/// What the store knows of one file, for a reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Known {
    pub(crate) key: FileKey,
    pub(crate) stat: FileStat,
    /// Its root: an index into [`FileIndex::roots`].
    pub(crate) root: u32,
    /// Whether its current content is rejected.
    pub(crate) rejected: bool,
}

/// Every file the store knows, compact (40 bytes a file, no string per file), sorted by key for a
/// merge with the files found on disk: what a reconcile compares the roots with.
#[derive(Debug, Default)]
pub struct FileIndex {
    /// The roots the files are under.
    pub(crate) roots: Vec<String>,
    /// Sorted by key.
    pub(crate) files: Vec<Known>,
}

impl Store {
    /// Every known file with its stat and whether it is rejected, for a reconcile: one scan of
    /// `files` in its own order, then the (few) rejections.
    pub(crate) fn file_index(&self) -> Result<FileIndex> {
        let mut out = FileIndex::default();
        let mut keys: Vec<FileKeys> = Vec::new();
        let mut stmt = self.conn.prepare("SELECT root, path, size, mtime_ns FROM files")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let root = r.get_ref(0)?.as_str()?;
            if out.roots.last().is_none_or(|last| last != root) {
                // Rows come in (root, path) order: each root is met once.
                out.roots.push(root.to_string());
                keys.push(FileKeys::new(root));
            }
            let at = out.roots.len() - 1;
            let stat = FileStat { size: r.get::<_, i64>(2)? as u64, mtime_ns: r.get(3)? };
            let key = keys[at].of(r.get_ref(1)?.as_bytes()?);
            out.files.push(Known { key, stat, root: at as u32, rejected: false });
        }
        out.files.sort_unstable_by_key(|k| k.key);
        let mut stmt = self.conn.prepare("SELECT root, path FROM rejections")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let key = FileKeys::new(r.get_ref(0)?.as_str()?).of(r.get_ref(1)?.as_bytes()?);
            if let Ok(i) = out.files.binary_search_by_key(&key, |k| k.key) {
                out.files[i].rejected = true;
            }
        }
        out.files.shrink_to_fit();
        Ok(out)
    }

    /// The files among `wanted` (by key), named: for the files a reconcile found gone, which its
    /// index knows by key alone. One scan of `files`.
    pub(crate) fn files_by_key(&self, wanted: &std::collections::HashSet<FileKey>) -> Result<Vec<FileId>> {
        let mut out = Vec::with_capacity(wanted.len());
        if wanted.is_empty() {
            return Ok(out);
        }
        let mut stmt = self.conn.prepare("SELECT root, path FROM files")?;
        let mut rows = stmt.query([])?;
        let mut keys: Option<(String, FileKeys)> = None;
        while let Some(r) = rows.next()? {
            let root = r.get_ref(0)?.as_str()?;
            let of = match &keys {
                Some((was, k)) if was == root => *k,
                _ => {
                    let k = FileKeys::new(root);
                    keys = Some((root.to_string(), k));
                    k
                }
            };
            let path = r.get_ref(1)?.as_str()?;
            if wanted.contains(&of.of(path.as_bytes())) {
                out.push(FileId { root: root.to_string(), path: path.to_string() });
            }
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
    #[cfg(test)]
    pub(crate) fn put_file_ok(&self, id: &FileId, stat: FileStat, key: &str, clipping: &Clipping) -> Result<()> {
        self.put_file_ok_json(id, stat, key, &serde_json::to_string(clipping)?)
    }

    /// Records a good parse of a file, its clipping's JSON made beforehand (on the thread pool,
    /// `ingest/bulk`'s `with_json`), and clears any rejection.
    pub(crate) fn put_file_ok_json(&self, id: &FileId, stat: FileStat, key: &str, record: &str) -> Result<()> {
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
    /// Returns whether this is news: the file was not rejected for this reason at this size and
    /// modification time already (a file read again for a second event, unchanged, is not).
    pub(crate) fn put_file_rejected(
        &self,
        id: &FileId,
        stat: FileStat,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let known: bool = self
            .tx
            .prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM rejections r JOIN files f ON f.root = r.root AND f.path = r.path
                 WHERE r.root=?1 AND r.path=?2 AND r.reason=?3 AND f.size=?4 AND f.mtime_ns=?5)",
            )?
            .query_row(params![id.root, id.path, reason, stat.size as i64, stat.mtime_ns], |r| r.get(0))?;
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
        Ok(!known)
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

    /// The keys of the items more than one file names (an article filed twice), by key.
    pub(crate) fn keys_of_several_files(&self) -> Result<Vec<String>> {
        let mut stmt = self.tx.prepare(
            "SELECT item_key FROM files WHERE item_key IS NOT NULL GROUP BY item_key HAVING count(*) > 1 ORDER BY item_key",
        )?;
        let keys = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(keys)
    }

    /// The files whose last good parse names `key`, with their clippings, ordered by path. A
    /// file with no record of its own has its item's clipping (see `store/records.rs`).
    pub(crate) fn sources(&self, key: &str) -> Result<Vec<(String, Clipping)>> {
        self.sources_stored(key)?.iter().map(StoredSource::decode).collect()
    }

    /// [`Batch::sources`] as stored, each decoded by [`StoredSource::decode`]: for a large
    /// batch, whose decoding is done on the thread pool rather than the writer.
    pub(crate) fn sources_stored(&self, key: &str) -> Result<Vec<StoredSource>> {
        let sql = format!(
            "SELECT path, record, CASE WHEN record IS NULL THEN
               (SELECT {} FROM items i WHERE i.key = f.item_key) END
             FROM files f WHERE item_key=?1 ORDER BY path, root",
            super::records::ITEM_RECORD
        );
        let mut stmt = self.tx.prepare_cached(&sql)?;
        let rows =
            stmt.query_map([key], |r| Ok(StoredSource { path: r.get(0)?, own: r.get(1)?, shared: r.get(2)? }))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every file whose last good parse names `key`.
    pub(crate) fn files_with_key(&self, key: &str) -> Result<Vec<FileId>> {
        let mut stmt = self.tx.prepare_cached("SELECT root, path FROM files WHERE item_key=?1 ORDER BY root, path")?;
        let rows = stmt.query_map([key], |r| Ok(FileId { root: r.get(0)?, path: r.get(1)? }))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The files at `id`'s path under the other `roots` that are rejected (for a twin without a
    /// URL, say, which may be good once `id` is gone): one lookup by primary key per root.
    pub(crate) fn rejected_twins(&self, id: &FileId, roots: &[String]) -> Result<Vec<FileId>> {
        let mut stmt = self.tx.prepare_cached("SELECT 1 FROM rejections WHERE root=?1 AND path=?2")?;
        let mut out = Vec::new();
        for root in roots.iter().filter(|r| **r != id.root) {
            if stmt.exists(params![root, id.path])? {
                out.push(FileId { root: root.clone(), path: id.path.clone() });
            }
        }
        Ok(out)
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

    /// Notes that an item must be refreshed (see the `pending` table), with the date of a
    /// clipping that names it: an item noted more than once keeps its earliest date.
    pub(crate) fn add_pending(&self, key: &str, at: DateTime<Utc>) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO pending(key, secs, nanos) VALUES(?1, ?2, ?3)
                 ON CONFLICT(key) DO UPDATE SET secs=excluded.secs, nanos=excluded.nanos
                 WHERE secs IS NULL OR (excluded.secs, excluded.nanos) < (secs, nanos)",
            )?
            .execute(params![key, at.timestamp(), at.timestamp_subsec_nanos()])?;
        Ok(())
    }

    pub(crate) fn clear_pending(&self, key: &str) -> Result<()> {
        self.tx.prepare_cached("DELETE FROM pending WHERE key=?1")?.execute([key])?;
        Ok(())
    }

    /// The `n` oldest items waiting (by their earliest date, then key; those noted by a
    /// clipfeed that kept no date first): a large batch refreshes them in this order, so the
    /// feed logs fill in date order, after a crash or a stop too.
    pub(crate) fn pending_oldest(&self, n: usize) -> Result<Vec<String>> {
        let mut stmt = self.tx.prepare_cached("SELECT key FROM pending ORDER BY secs, nanos, key LIMIT ?1")?;
        let rows = stmt.query_map([n as i64], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// How many items wait to be refreshed.
    pub(crate) fn pending_count(&self) -> Result<u64> {
        let n: i64 = self.tx.prepare_cached("SELECT count(*) FROM pending")?.query_row([], |r| r.get(0))?;
        Ok(n as u64)
    }
}

#[cfg(test)]
impl Batch<'_> {
    /// Records a file's stat alone, with no parse and no item: for a store that measures a
    /// reconcile over many files (`ingest::sync`'s `a_store_of_many_files`).
    pub(crate) fn put_file_stat(&self, id: &FileId, stat: FileStat) -> Result<()> {
        self.tx
            .prepare_cached("INSERT OR REPLACE INTO files(root, path, size, mtime_ns) VALUES(?1, ?2, ?3, ?4)")?
            .execute(params![id.root, id.path, stat.size as i64, stat.mtime_ns])?;
        Ok(())
    }
}
