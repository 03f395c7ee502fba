//! The store: SQLite through rusqlite, in WAL mode. The only module that speaks SQL.
//!
//! It keeps, per source file, its stat (size, mtime) and last good parse; per item (keyed by URL
//! or path), its id, first-seen and updated times and content; which topics and provider each item
//! belongs to; known topics and providers; rejected files; and per feed the signature and time of
//! its last content change. Everything a restart needs to produce byte-identical feeds.
//!
//! The interface is narrow and speaks in domain terms ([`Batch`] methods), so another backend
//! (PostgreSQL, for several nodes) can implement the same calls. One writer owns the [`Store`];
//! every change happens inside a [`Batch`], one transaction. [`Reader`] holds separate read-only
//! connections for the views rendered on request, each query within its request's budget.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

mod websub;

use crate::budget::Budget;
use crate::clip::Clipping;
use crate::feed::FeedKey;
use crate::item::{Item, ItemData};

pub mod fts;

/// The version of the tables below; a store with a higher one is refused, a lower one rebuilt.
pub const SCHEMA_VERSION: i64 = 7;

/// The schema version recorded in the store at `path` (`None`: none yet), read without locking or
/// writing anything, so a check run by another user leaves no journal file behind.
pub fn recorded_schema(path: &Path) -> Result<Option<i64>> {
    let uri = url::Url::from_file_path(std::path::absolute(path)?)
        .map_err(|()| anyhow::anyhow!("{} is not a file path", path.display()))?;
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(format!("{uri}?immutable=1"), flags)?;
    let has_meta: bool =
        conn.query_row("SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE name='meta')", [], |r| r.get(0))?;
    if !has_meta {
        return Ok(None);
    }
    let version: Option<String> =
        conn.query_row("SELECT value FROM meta WHERE key='schema'", [], |r| r.get(0)).optional()?;
    version.map(|v| v.parse().with_context(|| format!("schema version {v:?} is not a number"))).transpose()
}

/// Every table, so an older store can be dropped and rebuilt from the clippings.
const TABLES: [&str; 13] = [
    "meta",
    "snapshot",
    "files",
    "rejections",
    "items",
    "item_topics",
    "topics",
    "providers",
    "feeds",
    "feed_log",
    "tombstones",
    "tokens",
    "pending",
];

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
-- One row per clipping file seen under a root. item_key/record hold the last good parse and are
-- kept when the file later turns bad, so its last good version keeps serving.
CREATE TABLE IF NOT EXISTS files(
    root TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    item_key TEXT,
    record TEXT,
    PRIMARY KEY(root, path)
) WITHOUT ROWID;
-- The start-up reconcile reads every file's stat: this index lets it do so without reading the
-- records.
CREATE INDEX IF NOT EXISTS files_stat ON files(root, path, size, mtime_ns, item_key);
CREATE INDEX IF NOT EXISTS files_by_key ON files(item_key) WHERE item_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS rejections(
    root TEXT NOT NULL,
    path TEXT NOT NULL,
    reason TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY(root, path)
) WITHOUT ROWID;
-- One row per item key ever seen. deleted_at marks a tombstone: the item is gone from every feed,
-- but its id and first-seen time come back if a file names the key again.
CREATE TABLE IF NOT EXISTS items(
    key TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    first_seen INTEGER NOT NULL,
    published INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    deleted_at INTEGER,
    hash TEXT NOT NULL,
    shown TEXT NOT NULL DEFAULT '',
    provider TEXT,
    topics TEXT NOT NULL,
    quality INTEGER,
    words TEXT NOT NULL DEFAULT '',
    record TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_live ON items(published DESC, id) WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS items_by_provider ON items(provider, published DESC, id) WHERE deleted_at IS NULL;
CREATE TABLE IF NOT EXISTS item_topics(
    slug TEXT NOT NULL,
    published INTEGER NOT NULL,
    id TEXT NOT NULL,
    PRIMARY KEY(slug, published, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS item_topics_ordered ON item_topics(slug, published DESC, id);
CREATE INDEX IF NOT EXISTS item_topics_by_id ON item_topics(id);
CREATE TABLE IF NOT EXISTS topics(
    slug TEXT PRIMARY KEY,
    name TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS providers(
    domain TEXT PRIMARY KEY,
    name TEXT NOT NULL
) WITHOUT ROWID;
-- changed_at has one-second precision, like HTTP dates; ambiguous says the feed changed more
-- than once within that second, so If-Modified-Since cannot tell its versions apart.
CREATE TABLE IF NOT EXISTS feeds(
    feed TEXT PRIMARY KEY,
    signature TEXT NOT NULL,
    changed_at INTEGER NOT NULL,
    ambiguous INTEGER NOT NULL DEFAULT 0,
    history_at INTEGER NOT NULL DEFAULT 0,
    history_ambiguous INTEGER NOT NULL DEFAULT 0,
    page_size INTEGER NOT NULL DEFAULT 0,
    full_pages INTEGER NOT NULL DEFAULT 0,
    retired TEXT NOT NULL DEFAULT '',
    meta TEXT NOT NULL DEFAULT '',
    meta_at INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
-- Each feed's membership log, append-only: an item gets a slot when it enters the feed or its
-- content changes; the slot closes (left_at) when it leaves or gets a newer slot. Archive pages
-- are fixed ranges of positions, so they never shift.
CREATE TABLE IF NOT EXISTS feed_log(
    feed TEXT NOT NULL,
    pos INTEGER NOT NULL,
    id TEXT NOT NULL,
    entered_at INTEGER NOT NULL,
    left_at INTEGER,
    PRIMARY KEY(feed, pos)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS feed_log_open ON feed_log(feed, id) WHERE left_at IS NULL;
CREATE INDEX IF NOT EXISTS feed_log_open_by_id ON feed_log(id) WHERE left_at IS NULL;
-- The token each private feed needs.
CREATE TABLE IF NOT EXISTS tokens(
    feed TEXT PRIMARY KEY,
    token TEXT NOT NULL,
    created INTEGER NOT NULL
) WITHOUT ROWID;
-- Items that left a feed, for RFC 6721 tombstones.
CREATE TABLE IF NOT EXISTS tombstones(
    feed TEXT NOT NULL,
    id TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY(feed, id)
) WITHOUT ROWID;
-- Items whose files were recorded by a large batch but that are not yet brought up to date
-- (a batch records its files first, then refreshes their items in date order). Whatever is
-- left here after a crash is refreshed at the next start.
CREATE TABLE IF NOT EXISTS pending(
    key TEXT PRIMARY KEY
) WITHOUT ROWID;
-- Verified WebSub subscriptions (see store/websub.rs). Not in TABLES: a rebuild keeps them.
CREATE TABLE IF NOT EXISTS websub_subscriptions(
    topic TEXT NOT NULL,
    callback TEXT NOT NULL,
    secret TEXT,
    expires INTEGER NOT NULL,
    PRIMARY KEY(topic, callback)
) WITHOUT ROWID;
-- The published feeds as they were at the last clean shutdown (see Ingest::save_snapshot). They
-- are used only while meta 'snapshot' names the configuration they were rendered with; the first
-- thing a start does is to drop that mark, so a snapshot is never used twice or after a crash.
CREATE TABLE IF NOT EXISTS snapshot(
    feed TEXT PRIMARY KEY,
    head TEXT NOT NULL,
    docs BLOB NOT NULL
);
";

/// A file's identity: the root it was found under and its `/`-separated path relative to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId {
    pub root: String,
    pub path: String,
}

/// What decides whether a file must be read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStat {
    pub size: u64,
    pub mtime_ns: i64,
}

/// A file as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    pub stat: FileStat,
    /// Key of the item its last good parse names.
    pub item_key: Option<String>,
    /// Whether its current content is rejected.
    pub rejected: bool,
}

/// What the store remembers of an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemState {
    pub id: String,
    pub first_seen: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    /// Hash of everything stored of the item.
    pub hash: String,
    /// Hash of what feeds show of it: when only this changes does the item count as edited.
    pub shown: String,
    pub deleted: bool,
    pub topics: Vec<String>,
    pub provider: Option<String>,
}

/// What the store remembers of a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedState {
    /// Hash of everything the feed shows except its time.
    pub signature: String,
    /// When that last changed.
    pub changed_at: DateTime<Utc>,
    /// It changed more than once within `changed_at`'s second.
    pub ambiguous: bool,
    /// When any item in the feed's whole history last entered, changed or left.
    pub history_at: DateTime<Utc>,
    /// `history_at` was reached twice within its second.
    pub history_ambiguous: bool,
    /// Slots per archive page, and how many full pages the log had at the last render.
    pub page_size: u64,
    pub full_pages: u64,
    /// Page sizes the feed used before, with the number of full pages it had under each: those
    /// pages stay reachable, unchanged, after `items_per_feed` changes.
    pub retired: std::collections::BTreeMap<u64, u64>,
    /// Hash of the feed's title, description and links, and when it last changed: archive
    /// pages and filtered views show them too.
    pub meta: String,
    pub meta_at: DateTime<Utc>,
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

/// A rejected file and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub file: FileId,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// The writer's handle on the database.
pub struct Store {
    conn: Connection,
    /// Held while the store is open; the checkpoint thread stops when it goes.
    _alive: Option<std::sync::Arc<()>>,
}

/// How often the WAL is checkpointed into the database, off the writer's thread.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// WAL pages after which a commit checkpoints by itself: only a backstop, for when the
/// checkpoint thread cannot keep up.
const WAL_BACKSTOP_PAGES: u32 = 16384;

fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

fn from_ts(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
}

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    Ok(())
}

/// Starts the thread that checkpoints the WAL every [`CHECKPOINT_EVERY`] on its own connection,
/// for as long as the returned token is held. A passive checkpoint never blocks the writer.
fn spawn_checkpointer(path: &Path) -> Result<std::sync::Arc<()>> {
    let conn = Connection::open(path).with_context(|| format!("cannot open store {}", path.display()))?;
    configure(&conn)?;
    let alive = std::sync::Arc::new(());
    let watch = std::sync::Arc::downgrade(&alive);
    std::thread::Builder::new().name("clipfeed-checkpoint".into()).spawn(move || {
        loop {
            std::thread::sleep(CHECKPOINT_EVERY);
            if watch.upgrade().is_none() {
                break;
            }
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::debug!("checkpoint skipped: {e}");
            }
        }
    })?;
    Ok(alive)
}

impl Store {
    /// Opens (creating if needed) the store at `path`, in WAL mode.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create store folder {}", dir.display()))?;
        }
        let conn = Connection::open(path).with_context(|| format!("cannot open store {}", path.display()))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .with_context(|| format!("cannot set WAL mode on {}", path.display()))?;
        if !mode.eq_ignore_ascii_case("wal") {
            bail!("store {} refused WAL mode (got {mode})", path.display());
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Checkpoints copy the WAL into the database with an fsync: tens of milliseconds that a
        // commit would otherwise pay now and then, delaying whichever change made it. They run
        // on a thread of their own instead, and a commit checkpoints only past the backstop.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_BACKSTOP_PAGES)?;
        // A large batch can grow the WAL file far past the backstop before a checkpoint gets to
        // reset it; once reset, it is cut back to this size instead of keeping its largest.
        conn.pragma_update(None, "journal_size_limit", WAL_BACKSTOP_PAGES as i64 * 4096)?;
        let mut store = Store::init(conn).with_context(|| format!("cannot initialise store {}", path.display()))?;
        store._alive = Some(spawn_checkpointer(path)?);
        Ok(store)
    }

    /// A store that lives in memory only (tests, `render` without a store).
    pub fn open_in_memory() -> Result<Store> {
        Store::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Store> {
        configure(&conn)?;
        let has_meta: bool =
            conn.query_row("SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE name='meta')", [], |r| r.get(0))?;
        let version: Option<String> = if has_meta {
            conn.query_row("SELECT value FROM meta WHERE key='schema'", [], |r| r.get(0)).optional()?
        } else {
            None
        };
        let mut kept_tokens = Vec::new();
        match version.as_deref().map(str::parse::<i64>) {
            None | Some(Ok(SCHEMA_VERSION)) => {}
            // Version 7 only added the saved feeds and an index: created below, in place.
            Some(Ok(6)) => {
                conn.execute("UPDATE meta SET value=?1 WHERE key='schema'", [SCHEMA_VERSION.to_string()])?;
            }
            Some(Ok(v)) if v < SCHEMA_VERSION => {
                // The store is a cache of the clippings plus first-seen times: rebuilding it keeps
                // every id (they come from URLs and paths) and loses only those times.
                tracing::warn!(
                    from = v,
                    to = SCHEMA_VERSION,
                    "store written by an older clipfeed; rebuilding it from the clippings"
                );
                // Private-feed tokens are not in the clippings: carry them over, so subscribers'
                // URLs keep working. (A store too old to have the table has none to keep.)
                kept_tokens = conn
                    .prepare("SELECT feed, token, created FROM tokens")
                    .and_then(|mut st| {
                        st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))?
                            .collect::<rusqlite::Result<Vec<_>>>()
                    })
                    .unwrap_or_default();
                for t in TABLES {
                    conn.execute_batch(&format!("DROP TABLE IF EXISTS {t}"))?;
                }
            }
            Some(Ok(newer)) => bail!(
                "the store was written by a newer clipfeed (schema version {newer}; this one understands up to {SCHEMA_VERSION}) and is left untouched: run that newer clipfeed again, or delete the store to rebuild it from the clippings"
            ),
            Some(Err(_)) => bail!(
                "the store's schema version {:?} is not a number; delete the store to rebuild it",
                version.as_deref().unwrap_or_default()
            ),
        }
        conn.execute_batch(SCHEMA)?;
        conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES('schema', ?1)", [SCHEMA_VERSION.to_string()])?;
        for (feed, token, created) in kept_tokens {
            conn.execute(
                "INSERT OR IGNORE INTO tokens(feed, token, created) VALUES(?1, ?2, ?3)",
                rusqlite::params![feed, token, created],
            )?;
        }
        Ok(Store { conn, _alive: None })
    }

    /// Starts a batch: one transaction holding every change until [`Batch::commit`].
    pub fn batch(&mut self) -> Result<Batch<'_>> {
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        Ok(Batch { tx })
    }

    /// Every known file with its stat and whether it is rejected, for the start-up reconcile.
    pub fn file_index(&self) -> Result<FileIndex> {
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

/// Every known file: its stat, and whether its current content is rejected.
pub type FileIndex = HashMap<FileId, (FileStat, bool), xxhash_rust::xxh3::Xxh3Builder>;

/// One transaction. Dropping it without [`Batch::commit`] rolls everything back.
pub struct Batch<'a> {
    tx: rusqlite::Transaction<'a>,
}

impl Batch<'_> {
    pub fn commit(self) -> Result<()> {
        self.tx.commit().context("cannot commit to the store")
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self.tx.query_row("SELECT value FROM meta WHERE key=?1", [key], |r| r.get(0)).optional()?)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.tx.execute(
            "INSERT INTO meta(key, value) VALUES(?1, ?2) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            [key, value],
        )?;
        Ok(())
    }

    pub fn file(&self, id: &FileId) -> Result<Option<FileRow>> {
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
    pub fn files_under(&self, root: &str, dir: &str) -> Result<Vec<String>> {
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
    pub fn put_file_ok(&self, id: &FileId, stat: FileStat, key: &str, clipping: &Clipping) -> Result<()> {
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

    /// Records that a file is bad. Its last good parse, if any, stays in force.
    pub fn put_file_rejected(&self, id: &FileId, stat: FileStat, reason: &str, at: DateTime<Utc>) -> Result<()> {
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

    /// Replaces the saved feeds with those `feeds` yields (path stem, head, documents), one at a
    /// time, and marks them as rendered under `mark`. Returns how many were saved.
    pub fn save_snapshot(
        &self,
        feeds: impl Iterator<Item = Result<(String, String, Vec<u8>)>>,
        mark: &str,
    ) -> Result<usize> {
        self.tx.execute("DELETE FROM snapshot", [])?;
        let mut stmt = self.tx.prepare_cached("INSERT INTO snapshot(feed, head, docs) VALUES(?1, ?2, ?3)")?;
        let mut n = 0;
        for feed in feeds {
            let (feed, head, docs) = feed?;
            stmt.execute(params![feed, head, docs])?;
            n += 1;
        }
        self.set_meta("snapshot", mark)?;
        Ok(n)
    }

    /// Hands each saved feed (head, documents) to `each` when they were marked with `mark`. The
    /// mark is dropped either way: once this batch commits, the snapshot is no longer used.
    pub fn take_snapshot(&self, mark: &str, mut each: impl FnMut(String, Vec<u8>)) -> Result<()> {
        let saved = self.meta("snapshot")?;
        self.tx.execute("DELETE FROM meta WHERE key='snapshot'", [])?;
        if saved.as_deref() != Some(mark) {
            return Ok(());
        }
        let mut stmt = self.tx.prepare("SELECT head, docs FROM snapshot")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            each(r.get(0)?, r.get(1)?);
        }
        Ok(())
    }

    /// Notes that an item must be refreshed (see the `pending` table).
    pub fn add_pending(&self, key: &str) -> Result<()> {
        self.tx.prepare_cached("INSERT OR IGNORE INTO pending(key) VALUES(?1)")?.execute([key])?;
        Ok(())
    }

    pub fn clear_pending(&self, key: &str) -> Result<()> {
        self.tx.prepare_cached("DELETE FROM pending WHERE key=?1")?.execute([key])?;
        Ok(())
    }

    pub fn pending(&self) -> Result<Vec<String>> {
        let mut stmt = self.tx.prepare_cached("SELECT key FROM pending")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Forgets a file; returns the key its last good parse named.
    pub fn remove_file(&self, id: &FileId) -> Result<Option<String>> {
        let key: Option<Option<String>> = self
            .tx
            .prepare_cached("DELETE FROM files WHERE root=?1 AND path=?2 RETURNING item_key")?
            .query_row([&id.root, &id.path], |r| r.get(0))
            .optional()?;
        self.tx.prepare_cached("DELETE FROM rejections WHERE root=?1 AND path=?2")?.execute([&id.root, &id.path])?;
        Ok(key.flatten())
    }

    /// The files whose last good parse names `key`, with their clippings, ordered by path.
    pub fn sources(&self, key: &str) -> Result<Vec<(String, Clipping)>> {
        let mut stmt =
            self.tx.prepare_cached("SELECT path, record FROM files WHERE item_key=?1 ORDER BY path, root")?;
        let rows = stmt.query_map([key], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (path, record) = row?;
            let clip: Clipping = serde_json::from_str(&record).with_context(|| format!("corrupt record for {path}"))?;
            out.push((path, clip));
        }
        Ok(out)
    }

    pub fn item_state(&self, key: &str) -> Result<Option<ItemState>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT id, first_seen, updated, hash, deleted_at IS NOT NULL, topics, provider, shown FROM items WHERE key=?1",
        )?;
        Ok(stmt
            .query_row([key], |r| {
                let topics: String = r.get(5)?;
                Ok(ItemState {
                    id: r.get(0)?,
                    first_seen: from_ts(r.get(1)?),
                    updated: from_ts(r.get(2)?),
                    hash: r.get(3)?,
                    shown: r.get(7)?,
                    deleted: r.get(4)?,
                    topics: topics.split_whitespace().map(String::from).collect(),
                    provider: r.get(6)?,
                })
            })
            .optional()?)
    }

    /// Writes a live item and its topic memberships.
    pub fn put_item(&self, key: &str, item: &Item, first_seen: DateTime<Utc>, hash: &str, shown: &str) -> Result<()> {
        let record = serde_json::to_string(&item.data)?;
        let topics: Vec<&str> = item.data.topics.iter().map(|t| t.slug.as_str()).collect();
        let published = ts(item.data.published);
        let clip = &item.data.clip;
        let words = crate::text::words_of(&[&clip.title, clip.excerpt.as_deref().unwrap_or("")]);
        self.tx
            .prepare_cached(
                "INSERT INTO items(key, id, first_seen, published, updated, deleted_at, hash, provider, topics, quality, words, record, shown)
                 VALUES(?1, ?2, ?3, ?4, ?5, NULL, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT(key) DO UPDATE SET first_seen=excluded.first_seen, published=excluded.published,
                   updated=excluded.updated, deleted_at=NULL, hash=excluded.hash, provider=excluded.provider,
                   topics=excluded.topics, quality=excluded.quality, words=excluded.words, record=excluded.record,
                   shown=excluded.shown",
            )?
            .execute(params![
                key,
                item.id,
                ts(first_seen),
                published,
                ts(item.updated),
                hash,
                item.data.provider_domain(),
                topics.join(" "),
                clip.quality,
                words,
                record,
                shown
            ])?;
        self.tx.prepare_cached("DELETE FROM item_topics WHERE id=?1")?.execute([&item.id])?;
        let mut ins =
            self.tx.prepare_cached("INSERT OR IGNORE INTO item_topics(slug, published, id) VALUES(?1, ?2, ?3)")?;
        for slug in topics {
            ins.execute(params![slug, published, item.id])?;
        }
        Ok(())
    }

    /// Marks an item deleted: it leaves every feed, its row stays as a tombstone.
    pub fn tombstone_item(&self, key: &str, at: DateTime<Utc>) -> Result<()> {
        let id: Option<String> = self
            .tx
            .prepare_cached("UPDATE items SET deleted_at=?2 WHERE key=?1 AND deleted_at IS NULL RETURNING id")?
            .query_row(params![key, ts(at)], |r| r.get(0))
            .optional()?;
        if let Some(id) = id {
            self.tx.prepare_cached("DELETE FROM item_topics WHERE id=?1")?.execute([id])?;
        }
        Ok(())
    }

    /// Records a topic's display name (creating the topic when new).
    pub fn put_topic(&self, slug: &str, name: &str) -> Result<()> {
        self.tx
            .prepare_cached("INSERT INTO topics(slug, name) VALUES(?1, ?2) ON CONFLICT(slug) DO UPDATE SET name=excluded.name WHERE name<>excluded.name")?
            .execute([slug, name])?;
        Ok(())
    }

    /// Records a provider's display name (creating the provider when new).
    pub fn put_provider(&self, domain: &str, name: &str) -> Result<()> {
        self.tx
            .prepare_cached("INSERT INTO providers(domain, name) VALUES(?1, ?2) ON CONFLICT(domain) DO UPDATE SET name=excluded.name WHERE name<>excluded.name")?
            .execute([domain, name])?;
        Ok(())
    }

    /// Every topic ever seen: (slug, name).
    pub fn topics(&self) -> Result<Vec<(String, String)>> {
        let mut stmt = self.tx.prepare_cached("SELECT slug, name FROM topics ORDER BY slug")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every provider ever seen: (domain, name).
    pub fn providers(&self) -> Result<Vec<(String, String)>> {
        let mut stmt = self.tx.prepare_cached("SELECT domain, name FROM providers ORDER BY domain")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The number of live items of every feed, by path stem: the open slots of its log. One
    /// pass over the logs, for start-up; the writer keeps the counts up to date from there.
    pub fn live_counts(&self) -> Result<HashMap<String, u64>> {
        let mut stmt =
            self.tx.prepare_cached("SELECT feed, COUNT(*) FROM feed_log WHERE left_at IS NULL GROUP BY feed")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The newest `limit` live items of a feed: newest first, ties broken by id.
    pub fn feed_items(&self, feed: &FeedKey, limit: usize) -> Result<Vec<Item>> {
        let limit = limit as i64;
        let map = |r: &rusqlite::Row<'_>| -> rusqlite::Result<(String, i64, String)> {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        };
        let rows: Vec<(String, i64, String)> = match feed {
            FeedKey::All => self
                .tx
                .prepare_cached(
                    "SELECT id, updated, record FROM items WHERE deleted_at IS NULL ORDER BY published DESC, id LIMIT ?1",
                )?
                .query_map([limit], map)?
                .collect::<rusqlite::Result<_>>()?,
            FeedKey::Topic(slug) => self
                .tx
                .prepare_cached(
                    "SELECT i.id, i.updated, i.record FROM item_topics t JOIN items i ON i.id = t.id
                     WHERE t.slug=?1 ORDER BY t.published DESC, t.id LIMIT ?2",
                )?
                .query_map(params![slug, limit], map)?
                .collect::<rusqlite::Result<_>>()?,
            FeedKey::Provider(domain) => self
                .tx
                .prepare_cached(
                    "SELECT id, updated, record FROM items WHERE provider=?1 AND deleted_at IS NULL
                     ORDER BY published DESC, id LIMIT ?2",
                )?
                .query_map(params![domain, limit], map)?
                .collect::<rusqlite::Result<_>>()?,
        };
        rows.into_iter()
            .map(|(id, updated, record)| {
                let data: ItemData = serde_json::from_str(&record).with_context(|| format!("corrupt item {id}"))?;
                Ok(Item { id, updated: from_ts(updated), data })
            })
            .collect()
    }

    /// What is recorded for a feed.
    pub fn feed_state(&self, feed: &FeedKey) -> Result<Option<FeedState>> {
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

    pub fn set_feed_state(&self, feed: &FeedKey, state: &FeedState) -> Result<()> {
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

    // The UPDATEs name their index: without statistics SQLite prefers the primary key's range
    // over the whole feed, which made every slot change cost a scan of the feed's log.

    /// Gives an item a new slot at the end of a feed's log (closing its open slot there, if any)
    /// and clears its tombstone in that feed.
    pub fn log_enter(&self, feed: &FeedKey, id: &str, at: DateTime<Utc>) -> Result<()> {
        let stem = feed.path_stem();
        self.tx
            .prepare_cached(
                "UPDATE feed_log INDEXED BY feed_log_open SET left_at=?3 WHERE feed=?1 AND id=?2 AND left_at IS NULL",
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
    pub fn log_leave(&self, feed: &FeedKey, id: &str, at: DateTime<Utc>) -> Result<()> {
        let stem = feed.path_stem();
        self.tx
            .prepare_cached(
                "UPDATE feed_log INDEXED BY feed_log_open SET left_at=?3 WHERE feed=?1 AND id=?2 AND left_at IS NULL",
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
    pub fn open_slot(&self, feed: &FeedKey, id: &str) -> Result<Option<u64>> {
        let pos: Option<i64> = self
            .tx
            .prepare_cached(
                "SELECT pos FROM feed_log INDEXED BY feed_log_open WHERE feed=?1 AND id=?2 AND left_at IS NULL",
            )?
            .query_row(params![feed.path_stem(), id], |r| r.get(0))
            .optional()?;
        Ok(pos.map(|p| p as u64))
    }

    /// The feeds (path stems) in which an item has an open slot: the feeds it is in.
    pub fn open_feeds(&self, id: &str) -> Result<Vec<String>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT feed FROM feed_log INDEXED BY feed_log_open_by_id WHERE id=?1 AND left_at IS NULL",
        )?;
        let rows = stmt.query_map([id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every private feed's token, by path stem.
    pub fn tokens(&self) -> Result<HashMap<String, String>> {
        let mut stmt = self.tx.prepare_cached("SELECT feed, token FROM tokens")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Sets (or replaces) a feed's token.
    pub fn set_token(&self, feed: &str, token: &str) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO tokens(feed, token, created) VALUES(?1, ?2, ?3)
                 ON CONFLICT(feed) DO UPDATE SET token=excluded.token, created=excluded.created",
            )?
            .execute(params![feed, token, Utc::now().timestamp()])?;
        Ok(())
    }

    /// How many slots in `from..to` of a feed's log are open.
    pub fn open_slots(&self, feed: &FeedKey, from: u64, to: u64) -> Result<u64> {
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

    /// Tombstones of a feed recorded at or after `since`, newest first.
    pub fn tombstones(&self, feed: &FeedKey, since: DateTime<Utc>) -> Result<Vec<(String, DateTime<Utc>)>> {
        let mut stmt =
            self.tx.prepare_cached("SELECT id, at FROM tombstones WHERE feed=?1 AND at>=?2 ORDER BY at DESC, id")?;
        let rows = stmt.query_map(params![feed.path_stem(), ts(since)], |r| Ok((r.get(0)?, from_ts(r.get(1)?))))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Drops tombstones recorded before `before`; returns the feeds that held any.
    pub fn purge_tombstones(&self, before: DateTime<Utc>) -> Result<Vec<String>> {
        let mut stmt = self.tx.prepare_cached("DELETE FROM tombstones WHERE at<?1 RETURNING feed")?;
        let rows = stmt.query_map([ts(before)], |r| r.get(0))?;
        let mut feeds: Vec<String> = rows.collect::<rusqlite::Result<_>>()?;
        feeds.sort();
        feeds.dedup();
        Ok(feeds)
    }

    /// Every file whose last good parse names `key`.
    pub fn files_with_key(&self, key: &str) -> Result<Vec<FileId>> {
        let mut stmt = self.tx.prepare_cached("SELECT root, path FROM files WHERE item_key=?1 ORDER BY root, path")?;
        let rows = stmt.query_map([key], |r| Ok(FileId { root: r.get(0)?, path: r.get(1)? }))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn rejections(&self) -> Result<Vec<Rejection>> {
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

    /// Keys of every live item (used when topic configuration changes and items are re-merged).
    pub fn live_item_keys(&self) -> Result<Vec<String>> {
        let mut stmt = self.tx.prepare_cached("SELECT key FROM items WHERE deleted_at IS NULL ORDER BY key")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every root that has files in the store.
    pub fn roots(&self) -> Result<Vec<String>> {
        let mut stmt =
            self.tx.prepare_cached("SELECT DISTINCT root FROM files UNION SELECT DISTINCT root FROM rejections")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

fn row_item(id: String, updated: i64, record: &str) -> Result<Item> {
    let data: ItemData = serde_json::from_str(record).with_context(|| format!("corrupt item {id}"))?;
    Ok(Item { id, updated: from_ts(updated), data })
}

fn slot_items(conn: &Connection, feed: &FeedKey, from: u64, to: u64) -> Result<Vec<Item>> {
    let mut stmt = conn.prepare_cached(
        "SELECT i.id, i.updated, i.record FROM feed_log l JOIN items i ON i.id = l.id
         WHERE l.feed=?1 AND l.pos>=?2 AND l.pos<?3 AND l.left_at IS NULL AND i.deleted_at IS NULL
         ORDER BY i.published DESC, i.id",
    )?;
    let rows = stmt.query_map(params![feed.path_stem(), from as i64, to as i64], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, updated, record) = row?;
        out.push(row_item(id, updated, &record)?);
    }
    Ok(out)
}

/// Read-only connections for requests that are answered from the store (archive pages, filtered
/// views, a clipping's page). Every query runs within a [`Budget`]: SQLite's progress handler
/// interrupts it once the request is cancelled or past its deadline, and the call then fails
/// with [`Stopped`](crate::budget::Stopped).
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
struct Session<'a> {
    conn: std::sync::MutexGuard<'a, Connection>,
    slot: &'a std::sync::Mutex<Option<Budget>>,
    budget: &'a Budget,
}

impl Session<'_> {
    /// Turns an error into [`Stopped`](crate::budget::Stopped) when the budget is why the query failed.
    fn stopped(&self, e: impl Into<anyhow::Error>) -> anyhow::Error {
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
    fn conn<'a>(&'a self, budget: &'a Budget) -> Result<Session<'a>> {
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
    pub fn slot_items(&self, feed: &FeedKey, from: u64, to: u64, budget: &Budget) -> Result<Vec<Item>> {
        let conn = self.conn(budget)?;
        slot_items(&conn, feed, from, to).map_err(|e| conn.stopped(e))
    }

    /// The last time a slot in `from..to` of a feed's log was opened or closed.
    pub fn slots_changed_at(
        &self,
        feed: &FeedKey,
        from: u64,
        to: u64,
        budget: &Budget,
    ) -> Result<Option<DateTime<Utc>>> {
        let conn = self.conn(budget)?;
        let t: Option<i64> = conn
            .prepare_cached(
                "SELECT MAX(MAX(entered_at, COALESCE(left_at, 0))) FROM feed_log WHERE feed=?1 AND pos>=?2 AND pos<?3",
            )?
            .query_row(params![feed.path_stem(), from as i64, to as i64], |r| r.get(0))
            .map_err(|e| conn.stopped(e))?;
        Ok(t.map(from_ts))
    }

    /// The newest `limit` items of a feed's whole history that pass `filter`, newest first.
    /// The rows are matched here, so the budget is also checked every 64 rows.
    pub fn filtered(
        &self,
        feed: &FeedKey,
        filter: &crate::filter::Filter,
        limit: usize,
        budget: &Budget,
    ) -> Result<Vec<Item>> {
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
            let words: String = row.get(3)?;
            if filter.matches_words(&words) {
                out.push(row_item(row.get(0)?, row.get(1)?, &row.get::<_, String>(2)?)?);
            }
        }
        Ok(out)
    }

    /// A live item by id.
    pub fn item(&self, id: &str, budget: &Budget) -> Result<Option<Item>> {
        let conn = self.conn(budget)?;
        let row: Option<(String, i64, String)> = conn
            .prepare_cached("SELECT id, updated, record FROM items WHERE id=?1 AND deleted_at IS NULL")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()
            .map_err(|e| conn.stopped(e))?;
        row.map(|(id, updated, record)| {
            let data: ItemData = serde_json::from_str(&record).with_context(|| format!("corrupt item {id}"))?;
            Ok(Item { id, updated: from_ts(updated), data })
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clip::{Limits, parse};
    use crate::item::{TopicRef, id_for};

    fn clip(title: &str) -> Clipping {
        parse(format!("---\ntitle: {title}\n---\n").as_bytes(), Limits::default()).unwrap().clipping
    }

    fn fid(p: &str) -> FileId {
        FileId { root: "/r".into(), path: p.into() }
    }

    fn item(key: &str, published: &str, topics: &[&str]) -> Item {
        Item {
            id: id_for(key),
            updated: "2024-01-01T00:00:00Z".parse().unwrap(),
            data: ItemData {
                clip: clip(key),
                topics: topics.iter().map(|s| TopicRef { slug: s.to_string(), name: s.to_string() }).collect(),
                published: published.parse().unwrap(),
                dated: true,
            },
        }
    }

    #[test]
    fn files_keep_last_good_parse_when_rejected() {
        let mut s = Store::open_in_memory().unwrap();
        let b = s.batch().unwrap();
        let st = FileStat { size: 1, mtime_ns: 2 };
        b.put_file_ok(&fid("a.md"), st, "k", &clip("A")).unwrap();
        b.put_file_rejected(&fid("a.md"), FileStat { size: 3, mtime_ns: 4 }, "bad", Utc::now()).unwrap();
        let row = b.file(&fid("a.md")).unwrap().unwrap();
        assert_eq!(row.stat, FileStat { size: 3, mtime_ns: 4 });
        assert_eq!(row.item_key.as_deref(), Some("k"));
        assert_eq!(b.sources("k").unwrap().len(), 1);
        assert_eq!(b.rejections().unwrap().len(), 1);
        b.put_file_ok(&fid("a.md"), st, "k", &clip("A2")).unwrap();
        assert!(b.rejections().unwrap().is_empty());
        assert_eq!(b.remove_file(&fid("a.md")).unwrap().as_deref(), Some("k"));
        assert_eq!(b.remove_file(&fid("a.md")).unwrap(), None);
        b.commit().unwrap();
    }

    #[test]
    fn files_under_a_folder() {
        let mut s = Store::open_in_memory().unwrap();
        let b = s.batch().unwrap();
        let st = FileStat { size: 1, mtime_ns: 2 };
        for p in ["d/a.md", "d/e/b.md", "d.md", "d0.md", "dx/c.md"] {
            b.put_file_ok(&fid(p), st, p, &clip("A")).unwrap();
        }
        let mut under = b.files_under("/r", "d").unwrap();
        under.sort();
        assert_eq!(under, ["d/a.md", "d/e/b.md"]);
    }

    #[test]
    fn feed_queries_order_and_tombstones() {
        let mut s = Store::open_in_memory().unwrap();
        let b = s.batch().unwrap();
        let t = Utc::now();
        let a = item("a", "2024-01-02T00:00:00Z", &["ai"]);
        let c = item("c", "2024-01-01T00:00:00Z", &["ai", "ml"]);
        let d = item("d", "2024-01-01T00:00:00Z", &["ai"]);
        for (k, it) in [("a", &a), ("c", &c), ("d", &d)] {
            b.put_item(k, it, t, &it.data.hash(), &it.data.shown_hash()).unwrap();
        }
        let ids = |feed: &FeedKey, n| b.feed_items(feed, n).unwrap().into_iter().map(|i| i.id).collect::<Vec<_>>();
        let mut tied = vec![c.id.clone(), d.id.clone()];
        tied.sort();
        let expect: Vec<String> = std::iter::once(a.id.clone()).chain(tied.clone()).collect();
        assert_eq!(ids(&FeedKey::Topic("ai".into()), 10), expect);
        assert_eq!(ids(&FeedKey::All, 10), expect);
        assert_eq!(ids(&FeedKey::All, 2).len(), 2);
        assert_eq!(ids(&FeedKey::Topic("ml".into()), 10).len(), 1);
        b.tombstone_item("c", t).unwrap();
        assert!(ids(&FeedKey::Topic("ml".into()), 10).is_empty());
        assert_eq!(ids(&FeedKey::All, 10).len(), 2);
        let st = b.item_state("c").unwrap().unwrap();
        assert!(st.deleted);
        assert_eq!(st.topics, ["ai", "ml"]);
    }

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
        let err = reader.item(&a.id, &gone).unwrap_err();
        assert_eq!(err.downcast::<Stopped>().unwrap(), Stopped::Cancelled);
        // The connection serves the next request, whose budget is its own.
        let fresh = Budget::unlimited();
        assert_eq!(count_to(&reader, 1000, &fresh).unwrap(), 1000);
        assert_eq!(reader.item(&a.id, &fresh).unwrap().unwrap().id, a.id);
        let filter = crate::filter::Filter::default();
        assert_eq!(reader.filtered(&FeedKey::All, &filter, 10, &fresh).unwrap().len(), 1);
    }

    #[test]
    fn schema_version_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        drop(Store::open(&path).unwrap());
        drop(Store::open(&path).unwrap());
        Connection::open(&path).unwrap().execute("UPDATE meta SET value='99' WHERE key='schema'", []).unwrap();
        let err = Store::open(&path).err().unwrap();
        assert!(format!("{err:#}").contains("schema version"), "{err:#}");
    }

    #[test]
    fn an_older_store_is_rebuilt_and_keeps_its_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        drop(Store::open(&path).unwrap());
        let raw = Connection::open(&path).unwrap();
        raw.execute("INSERT INTO tokens(feed, token, created) VALUES('topics/x', 'secret', 1)", []).unwrap();
        raw.execute(
            "INSERT INTO items(key, id, first_seen, published, updated, hash, topics, record)
             VALUES('url:x', 'i', 0, 0, 0, 'h', '', '{}')",
            [],
        )
        .unwrap();
        raw.execute("UPDATE meta SET value='4' WHERE key='schema'", []).unwrap();
        drop(raw);
        drop(Store::open(&path).unwrap());
        let raw = Connection::open(&path).unwrap();
        let version: String = raw.query_row("SELECT value FROM meta WHERE key='schema'", [], |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION.to_string());
        let items: i64 = raw.query_row("SELECT count(*) FROM items", [], |r| r.get(0)).unwrap();
        assert_eq!(items, 0, "the cache is rebuilt from the clippings");
        let token: String = raw.query_row("SELECT token FROM tokens WHERE feed='topics/x'", [], |r| r.get(0)).unwrap();
        assert_eq!(token, "secret");
    }
}
