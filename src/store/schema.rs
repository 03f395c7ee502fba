//! The schema: every table and index, its version, and what opening a store written by another
//! version does (migrate in place, or rebuild from the clippings keeping the tokens).

use std::path::Path;

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::{Store, configure};

/// The version of the tables below; a store with a higher one is refused, a lower one rebuilt.
pub const SCHEMA_VERSION: i64 = 9;

/// The schema version recorded in the store at `path` (`None`: none yet), read without writing
/// anything, so a check run by another user leaves no file behind.
///
/// A store with no WAL beside it is at rest (no connection has it open: the last to close
/// copies the WAL in and deletes it) and is read `immutable`, without locks: a read-only
/// connection of a WAL-mode store would create a WAL and its index, and leave them. A store
/// with a WAL (a daemon running, or one that crashed) is read through it, with the locks
/// that keep a checkpoint from changing the file under the read: its database file alone may
/// be behind the WAL, or half way through a checkpoint (a schema with an index in it twice).
/// The WAL is looked for again after an `immutable` read, in case a daemon started meanwhile.
pub fn recorded_schema(path: &Path) -> Result<Option<i64>> {
    let wal = std::path::PathBuf::from(format!("{}-wal", path.display()));
    if !wal.exists() {
        let read = read_recorded_schema(path, true);
        if !wal.exists() {
            return read;
        }
    }
    read_recorded_schema(path, false)
}

/// [`recorded_schema`]'s read: `immutable` (the file alone, no locks) or read-only through the WAL.
fn read_recorded_schema(path: &Path, immutable: bool) -> Result<Option<i64>> {
    let uri = url::Url::from_file_path(std::path::absolute(path)?)
        .map_err(|()| anyhow::anyhow!("{} is not a file path", path.display()))?;
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn =
        Connection::open_with_flags(format!("{uri}?{}", if immutable { "immutable=1" } else { "mode=ro" }), flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // One read transaction: a daemon setting the store up meanwhile is seen before or after.
    let tx = conn.unchecked_transaction()?;
    let has_meta: bool =
        tx.query_row("SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE name='meta')", [], |r| r.get(0))?;
    if !has_meta {
        return Ok(None);
    }
    let version: Option<String> =
        tx.query_row("SELECT value FROM meta WHERE key='schema'", [], |r| r.get(0)).optional()?;
    version.map(|v| v.parse().with_context(|| format!("schema version {v:?} is not a number"))).transpose()
}

/// Every table, so an older store can be dropped and rebuilt from the clippings.
const TABLES: [&str; 20] = [
    "meta",
    "snapshot",
    "files",
    "rejections",
    "key_notes",
    "items",
    "item_topics",
    "topics",
    "providers",
    "feeds",
    "feed_log",
    "tombstones",
    "tokens",
    "pending",
    "story_items",
    "story_keys",
    "story_log",
    "story_cover",
    "story_sums",
    "item_records",
];

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
-- One row per clipping file seen under a root. item_key/record hold the last good parse and are
-- kept when the file later turns bad, so its last good version keeps serving; record is NULL
-- when that parse is the item's clipping (store/records.rs).
CREATE TABLE IF NOT EXISTS files(
    root TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    item_key TEXT,
    record TEXT,
    PRIMARY KEY(root, path)
) WITHOUT ROWID;
-- (files_stat, an index of every column but the record, went once records were stored once: the
-- rows are small without them.)
DROP INDEX IF EXISTS files_stat;
CREATE INDEX IF NOT EXISTS files_by_key ON files(item_key) WHERE item_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS rejections(
    root TEXT NOT NULL,
    path TEXT NOT NULL,
    reason TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY(root, path)
) WITHOUT ROWID;
-- Front-matter keys spelt close to a known key, per file (names only, never values), for the
-- summary in /api/status and the log.
CREATE TABLE IF NOT EXISTS key_notes(
    root TEXT NOT NULL,
    path TEXT NOT NULL,
    key TEXT NOT NULL,
    suggestion TEXT NOT NULL,
    read INTEGER NOT NULL,
    PRIMARY KEY(root, path, key)
) WITHOUT ROWID;
-- One row per item key ever seen; its data is in item_records (rowid rec; record is '', JSON in
-- stores written before). deleted_at marks a tombstone: the item is gone from every feed,
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
    record TEXT NOT NULL,
    rec INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_live ON items(published DESC, id) WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS items_by_provider ON items(provider, published DESC, id) WHERE deleted_at IS NULL;
-- Topic membership, its primary key in feed order (stores written before kept it in ascending
-- order with a second index, item_topics_ordered, in feed order: migrate_item_topics_ordered).
CREATE TABLE IF NOT EXISTS item_topics(
    slug TEXT NOT NULL,
    published INTEGER NOT NULL,
    id TEXT NOT NULL,
    PRIMARY KEY(slug, published DESC, id)
) WITHOUT ROWID;
-- (Its index by item id is gone: rows are removed by their primary key, see Batch::put_item.)
DROP INDEX IF EXISTS item_topics_by_id;
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
-- The open slots by item id. Its entries end with the primary key (feed, pos), so it answers
-- item X's open slot in feed F as well as the feeds X is in. (feed_log_open, the same
-- entries again in (feed, id) order, was read by nothing else and went: 26 MB at 100,000.)
CREATE INDEX IF NOT EXISTS feed_log_open_by_id ON feed_log(id) WHERE left_at IS NULL;
DROP INDEX IF EXISTS feed_log_open;
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
-- (a batch records its files first, then refreshes their items in date order: the earliest
-- date of a clipping naming each, in Unix seconds and nanoseconds, read back by the index
-- `pending_by_date` made in `migrate_pending_dated`). Whatever is left here after a crash or a
-- stop is refreshed at the next start, in the same order.
CREATE TABLE IF NOT EXISTS pending(
    key TEXT PRIMARY KEY,
    secs INTEGER,
    nanos INTEGER
) WITHOUT ROWID;
-- Stories (story_items, story_keys): created, and moved to their compact form, by
-- store/stories.rs (`STORY_SCHEMA`, `migrate_story_keys_compact`).
-- Story ids that ended in a merge, answering 301 to the story that took their members. Not in
-- TABLES: the clippings cannot give this history back.
CREATE TABLE IF NOT EXISTS story_redirects(
    id TEXT PRIMARY KEY,
    into_id TEXT NOT NULL,
    at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS story_redirects_into ON story_redirects(into_id);
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

impl Store {
    pub(super) fn init(conn: Connection) -> Result<Store> {
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
            // Version 7 only added the saved feeds and an index, version 8 the key notes: created
            // below, in place. Version 9 stores each record once (`store/records.rs`): older
            // stores are moved over below, in place. The number moved so that an older clipfeed
            // refuses a store whose records it could no longer read, instead of misreading it.
            Some(Ok(6..=8)) => {
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
                for t in TABLES.iter().chain(&super::fts::TABLES) {
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
        // The search index, created in place on older stores; their items are indexed later,
        // by the writer (`fts::backfill`), so opening a store stays quick.
        conn.execute_batch(super::fts::SCHEMA)?;
        // Each feed's story log, created in place on older stores and filled once by the writer
        // (`ingest/story_log`'s backfill, meta `migrated_story_log`): it needs the stories,
        // which the writer itself puts older stores' items in first.
        conn.execute_batch(super::story_log::SCHEMA)?;
        conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES('schema', ?1)", [SCHEMA_VERSION.to_string()])?;
        super::fts::migrate_search(&conn)?;
        super::fts::merge_when_idle(&conn)?;
        conn.execute_batch(super::records::SCHEMA)?;
        super::records::migrate_lean_records(&conn)?;
        super::stories::migrate_story_keys_compact(&conn)?;
        // What each feed shows of each story, kept by triggers on the tables it comes from
        // (`store/story_cover.rs`); made and filled once on older stores (meta
        // `migrated_story_cover_numbered`).
        // After the story tables have their final form: a trigger names `story_items`, which
        // the move above renames and drops.
        super::story_cover::migrate_story_cover(&conn)?;
        for (feed, token, created) in kept_tokens {
            conn.execute(
                "INSERT OR IGNORE INTO tokens(feed, token, created) VALUES(?1, ?2, ?3)",
                rusqlite::params![feed, token, created],
            )?;
        }
        migrate_updated_means_edited(&conn, chrono::Utc::now().timestamp())?;
        migrate_item_topics_ordered(&conn)?;
        migrate_pending_dated(&conn)?;
        Ok(Store {
            conn,
            _checkpointer: None,
            path: None,
            identity: None,
            pages_file: None,
            cold: Default::default(),
            bulk_cache: Default::default(),
            beat: None,
        })
    }
}

/// A migration's transaction, begun `IMMEDIATE`: it takes the write lock first, waiting for it
/// under the busy timeout. A deferred transaction that reads (its guard, the schema) before its
/// first write fails at once with "database is locked" when another connection (another
/// clipfeed, `store rebuild`, the `sqlite3` shell) holds the lock then: SQLite does not wait to
/// upgrade a read transaction. Each migration reads its guard inside it, so of two processes
/// opening one store, the second finds the first's work done.
pub(super) fn begin_migration(conn: &Connection) -> Result<rusqlite::Transaction<'_>> {
    Ok(rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?)
}

/// Whether the `meta` key that guards a migration is there.
pub(super) fn migrated(conn: &Connection, key: &str) -> Result<bool> {
    Ok(conn.query_row("SELECT EXISTS(SELECT 1 FROM meta WHERE key=?1)", [key], |r| r.get(0))?)
}

/// The `pending` table's dates and their index: added in place to a store whose table has only
/// the keys (its rows, undated, are refreshed first). Older clipfeeds still write it (by key).
fn migrate_pending_dated(conn: &Connection) -> Result<()> {
    let dated = |conn: &Connection| -> Result<bool> {
        Ok(conn.query_row("SELECT EXISTS(SELECT 1 FROM pragma_table_info('pending') WHERE name='secs')", [], |r| {
            r.get(0)
        })?)
    };
    if !dated(conn)? {
        let tx = begin_migration(conn)?;
        if !dated(&tx)? {
            tx.execute_batch(
                "ALTER TABLE pending ADD COLUMN secs INTEGER; ALTER TABLE pending ADD COLUMN nanos INTEGER;",
            )?;
        }
        tx.commit()?;
    }
    conn.execute_batch("CREATE INDEX IF NOT EXISTS pending_by_date ON pending(secs, nanos, key)")?;
    Ok(())
}

/// `updated` means edited: an item never edited since it was first seen is updated at its
/// published time (which is its first-seen time when it has no date of its own). Stores written
/// before dated such items at first-seen; this moves them once, guarded by a `meta` key, at `now`
/// (seconds). Every feed then renders again at start (the saved feeds are not used), and the
/// history time of every feed moves to `now`, so archive pages and filtered views date their new
/// content. An item whose `updated` differs from its first-seen time was edited, and keeps it.
fn migrate_updated_means_edited(conn: &Connection, now: i64) -> Result<()> {
    const KEY: &str = "migrated_updated_means_edited";
    if migrated(conn, KEY)? {
        return Ok(());
    }
    let tx = begin_migration(conn)?;
    if migrated(&tx, KEY)? {
        return Ok(());
    }
    let moved = tx.execute("UPDATE items SET updated=published WHERE updated=first_seen AND updated<>published", [])?;
    if moved > 0 {
        tx.execute("DELETE FROM meta WHERE key='snapshot'", [])?;
        tx.execute("UPDATE feeds SET history_ambiguous=(history_at >= ?1), history_at=max(history_at, ?1)", [now])?;
        tracing::info!(items = moved, "items never edited are now dated updated at their published time");
    }
    tx.execute("INSERT INTO meta(key, value) VALUES(?1, ?2)", rusqlite::params![KEY, now.to_string()])?;
    tx.commit()?;
    Ok(())
}

/// Topic membership in one table in feed order: stores written before kept `item_topics` in
/// ascending order and the same rows again in `item_topics_ordered`, in feed order, the only
/// order any query reads them in. Moves the rows once into the table's new form (the same rows,
/// so every topic feed reads the same items in the same order) and drops the index; guarded by
/// a `meta` key.
fn migrate_item_topics_ordered(conn: &Connection) -> Result<()> {
    const KEY: &str = "migrated_item_topics_ordered";
    if migrated(conn, KEY)? {
        return Ok(());
    }
    let tx = begin_migration(conn)?;
    if migrated(&tx, KEY)? {
        return Ok(());
    }
    let old: bool =
        tx.query_row("SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE name='item_topics_ordered')", [], |r| r.get(0))?;
    if old {
        tx.execute_batch(
            "DROP INDEX item_topics_ordered;
             DROP INDEX IF EXISTS item_topics_by_id;
             ALTER TABLE item_topics RENAME TO item_topics_old;
             CREATE TABLE item_topics(
                 slug TEXT NOT NULL,
                 published INTEGER NOT NULL,
                 id TEXT NOT NULL,
                 PRIMARY KEY(slug, published DESC, id)
             ) WITHOUT ROWID;
             INSERT INTO item_topics(slug, published, id)
                 SELECT slug, published, id FROM item_topics_old ORDER BY slug, published DESC, id;
             DROP TABLE item_topics_old;",
        )?;
    }
    tx.execute("INSERT INTO meta(key, value) VALUES(?1, ?2)", rusqlite::params![KEY, chrono::Utc::now().to_rfc3339()])?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

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
    fn the_recorded_schema_is_read_through_a_live_wal_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let files = || {
            let mut names: Vec<String> =
                std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
            names.sort();
            names
        };
        drop(Store::open(&path).unwrap());
        assert_eq!(files(), ["s.db"], "a closed store is its database alone");
        assert_eq!(recorded_schema(&path).unwrap(), Some(SCHEMA_VERSION));
        assert_eq!(files(), ["s.db"], "read without leaving a WAL behind");
        // Another process has the store open, its change still in the WAL only: the database
        // file alone says 9 (or, read half way through a checkpoint, nothing sensible).
        let live = Connection::open(&path).unwrap();
        live.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        live.execute("UPDATE meta SET value='8' WHERE key='schema'", []).unwrap();
        assert_eq!(recorded_schema(&path).unwrap(), Some(8), "read through the WAL");
        drop(live);
        assert_eq!(files(), ["s.db"]);
        assert_eq!(recorded_schema(&path).unwrap(), Some(8));
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

    #[test]
    fn never_edited_items_move_to_their_published_time_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        drop(Store::open(&path).unwrap());
        let raw = Connection::open(&path).unwrap();
        // As an older clipfeed left them: never edited (updated = first seen), edited later, undated.
        for (key, first_seen, published, updated) in
            [("never", 500, 100, 500), ("edited", 500, 100, 700), ("undated", 500, 500, 500)]
        {
            raw.execute(
                "INSERT INTO items(key, id, first_seen, published, updated, hash, topics, record)
                 VALUES(?1, ?1, ?2, ?3, ?4, 'h', '', '{}')",
                rusqlite::params![key, first_seen, published, updated],
            )
            .unwrap();
        }
        raw.execute("INSERT INTO feeds(feed, signature, changed_at, history_at) VALUES('feed', 's', 400, 400)", [])
            .unwrap();
        raw.execute("INSERT INTO meta(key, value) VALUES('snapshot', 'mark')", []).unwrap();
        raw.execute("DELETE FROM meta WHERE key='migrated_updated_means_edited'", []).unwrap();
        let updated = |raw: &Connection| -> Vec<i64> {
            ["never", "edited", "undated"]
                .iter()
                .map(|k| raw.query_row("SELECT updated FROM items WHERE key=?1", [k], |r| r.get(0)).unwrap())
                .collect()
        };
        migrate_updated_means_edited(&raw, 1000).unwrap();
        assert_eq!(updated(&raw), [100, 700, 500]);
        let history: (i64, bool) = raw
            .query_row("SELECT history_at, history_ambiguous FROM feeds", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!(history, (1000, false), "archive pages date their new content");
        let snapshot: i64 = raw.query_row("SELECT count(*) FROM meta WHERE key='snapshot'", [], |r| r.get(0)).unwrap();
        assert_eq!(snapshot, 0, "the saved feeds are rendered again");
        // Guarded: a second run (an item edited since at its first-seen second, say) changes nothing.
        raw.execute("UPDATE items SET updated=500 WHERE key='never'", []).unwrap();
        migrate_updated_means_edited(&raw, 2000).unwrap();
        assert_eq!(updated(&raw), [500, 700, 500]);
    }

    #[test]
    fn topic_membership_moves_to_feed_order_once_and_reads_the_same() {
        let mut store = Store::open_in_memory().unwrap();
        let t = chrono::Utc::now();
        let b = store.batch().unwrap();
        // Ties on the second (ordered by id), several topics, and a tombstone.
        for (n, day) in ["01", "03", "03", "02", "03", "05", "04"].iter().enumerate() {
            let key = format!("k{n}");
            let topics: &[&str] = if n % 2 == 0 { &["ai", "ml"] } else { &["ai"] };
            let it = crate::store::tests::item(&key, &format!("2024-01-{day}T00:00:00Z"), topics);
            b.put_item(&key, &it, t, &it.data.hash(), &it.data.shown_hash()).unwrap();
        }
        b.tombstone_item("k3", t).unwrap();
        let read = |b: &crate::store::Batch<'_>| -> Vec<Vec<String>> {
            ["ai", "ml", "none"]
                .iter()
                .map(|slug| {
                    let mut st =
                        b.tx.prepare(
                            "SELECT t.id FROM item_topics t JOIN items i ON i.id = t.id
                             WHERE t.slug=?1 ORDER BY t.published DESC, t.id LIMIT 100",
                        )
                        .unwrap();
                    st.query_map([slug], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
                })
                .collect()
        };
        let fresh = read(&b);
        assert_eq!(fresh[0].len(), 6, "{fresh:?}");
        // As a store written before left it: ascending primary key, the feed order in an index.
        b.tx.execute_batch(
            "ALTER TABLE item_topics RENAME TO t0;
             CREATE TABLE item_topics(slug TEXT NOT NULL, published INTEGER NOT NULL, id TEXT NOT NULL,
                 PRIMARY KEY(slug, published, id)) WITHOUT ROWID;
             INSERT INTO item_topics SELECT * FROM t0; DROP TABLE t0;
             CREATE INDEX item_topics_ordered ON item_topics(slug, published DESC, id);
             CREATE INDEX item_topics_by_id ON item_topics(id);
             DELETE FROM meta WHERE key='migrated_item_topics_ordered';",
        )
        .unwrap();
        assert_eq!(read(&b), fresh);
        b.commit().unwrap();
        migrate_item_topics_ordered(&store.conn).unwrap();
        migrate_item_topics_ordered(&store.conn).unwrap();
        let b = store.batch().unwrap();
        assert_eq!(read(&b), fresh, "the same items in the same order");
        let names: Vec<String> =
            b.tx.prepare("SELECT name FROM sqlite_master WHERE tbl_name='item_topics' AND type='index' ORDER BY name")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
        assert!(names.is_empty(), "the second copy is gone, and the index by id too: {names:?}");
        // The writer keeps working on the moved table.
        b.tombstone_item("k0", t).unwrap();
        assert_eq!(read(&b)[1].len(), fresh[1].len() - 1);
    }

    #[test]
    fn each_migration_waits_for_a_write_lock_held_elsewhere_and_runs_once() {
        static WAITED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        fn wait(tries: i32) -> bool {
            WAITED.store(true, std::sync::atomic::Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(5));
            tries < 12_000
        }
        type Migration = fn(&Connection) -> Result<()>;
        let migrations: [(&str, Migration); 5] = [
            ("migrated_updated_means_edited", |c| migrate_updated_means_edited(c, 1000)),
            ("migrated_item_topics_ordered", migrate_item_topics_ordered),
            ("migrated_lean_records", crate::store::records::migrate_lean_records),
            ("migrated_story_keys_compact", crate::store::stories::migrate_story_keys_compact),
            ("migrated_story_cover_numbered", crate::store::story_cover::migrate_story_cover),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        drop(Store::open(&path).unwrap());
        let mut conn = Connection::open(&path).unwrap();
        let value = |conn: &Connection, k: &str| -> Option<String> {
            conn.query_row("SELECT value FROM meta WHERE key=?1", [k], |r| r.get(0)).optional().unwrap()
        };
        // Another process holds the write lock, writing `key` as `value`, until this one has
        // waited for it; then `migrate` runs here.
        let held_elsewhere = |conn: &mut Connection, migrate: Migration, key: &'static str, value: &'static str| {
            WAITED.store(false, std::sync::atomic::Ordering::SeqCst);
            conn.busy_handler(Some(wait)).unwrap();
            let other = Connection::open(&path).unwrap();
            other.execute_batch("BEGIN IMMEDIATE").unwrap();
            other.execute("INSERT INTO meta(key, value) VALUES(?1, ?2)", [key, value]).unwrap();
            let holder = std::thread::spawn(move || {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
                while !WAITED.load(std::sync::atomic::Ordering::SeqCst) && std::time::Instant::now() < deadline {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                other.execute_batch("COMMIT").unwrap();
            });
            let result = migrate(conn);
            holder.join().unwrap();
            assert!(WAITED.load(std::sync::atomic::Ordering::SeqCst), "{key}: met the lock and waited");
            assert!(conn.is_autocommit(), "{key}: no transaction left open");
            conn.busy_handler(None::<fn(i32) -> bool>).unwrap();
            result
        };
        for (key, migrate) in migrations {
            // As a store written before the migration: its guard absent. The other process
            // writes something else: this one migrates once it has the lock.
            conn.execute("DELETE FROM meta WHERE key=?1", [key]).unwrap();
            held_elsewhere(&mut conn, migrate, "other", "1").unwrap_or_else(|e| panic!("{key}: {e:#}"));
            assert!(value(&conn, key).is_some() && value(&conn, "other").is_some(), "{key}: both writes kept");
            conn.execute("DELETE FROM meta WHERE key='other'", []).unwrap();
            // The other process migrates first (it writes the guard): this one finds it done
            // once it has the lock, and does nothing (its own guard would differ, or clash).
            conn.execute("DELETE FROM meta WHERE key=?1", [key]).unwrap();
            held_elsewhere(&mut conn, migrate, key, "by the other").unwrap_or_else(|e| panic!("{key}: {e:#}"));
            assert_eq!(value(&conn, key).as_deref(), Some("by the other"), "{key}: done once, by the other");
        }
        drop(conn);
        drop(Store::open(&path).expect("the store opens after every migration"));
    }

    #[test]
    fn pending_items_come_back_oldest_first_then_by_key_an_older_table_s_first() {
        let at = |secs: i64, nanos: u32| chrono::DateTime::from_timestamp(secs, nanos).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        drop(Store::open(&path).unwrap());
        // As an older clipfeed left it: keys alone, two of them waiting.
        let raw = Connection::open(&path).unwrap();
        raw.execute_batch(
            "DROP INDEX pending_by_date; DROP TABLE pending;
             CREATE TABLE pending(key TEXT PRIMARY KEY) WITHOUT ROWID;
             INSERT INTO pending(key) VALUES('old-b'), ('old-a');",
        )
        .unwrap();
        drop(raw);
        let mut store = Store::open(&path).unwrap();
        let b = store.batch().unwrap();
        // Noted twice: the earliest date stays, whichever comes first.
        b.add_pending("k-late-then-early", at(300, 0)).unwrap();
        b.add_pending("k-late-then-early", at(100, 5)).unwrap();
        b.add_pending("k-early-then-late", at(100, 5)).unwrap();
        b.add_pending("k-early-then-late", at(900, 0)).unwrap();
        // The same second: by nanoseconds, then by key; before 1970 first of the dated.
        b.add_pending("k-nanos", at(100, 4)).unwrap();
        b.add_pending("k-before-1970", at(-86_400, 0)).unwrap();
        b.add_pending("k-last", at(1_000, 0)).unwrap();
        // An undated key noted again takes the date.
        b.add_pending("old-b", at(950, 0)).unwrap();
        assert_eq!(b.pending_count().unwrap(), 7);
        let expected =
            ["old-a", "k-before-1970", "k-nanos", "k-early-then-late", "k-late-then-early", "old-b", "k-last"];
        assert_eq!(b.pending_oldest(100).unwrap(), expected);
        assert_eq!(b.pending_oldest(3).unwrap(), expected[..3]);
        for key in &expected[..3] {
            b.clear_pending(key).unwrap();
        }
        assert_eq!(b.pending_oldest(3).unwrap(), expected[3..6]);
        assert_eq!(b.pending_count().unwrap(), 4);
    }
}
