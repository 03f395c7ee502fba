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
//! connections for the views rendered on request, each query within its request's budget. One
//! file per part: [`schema`], [`files`], [`items`], the feed [`log`], the [`notes`] on front-matter
//! keys, what is [`saved`] beyond the clippings, the search index ([`fts`]), the bulk reads of a
//! topic [`remap`], and the [`reader`].

mod bulk;
mod files;
mod health;
mod items;
mod key_filter;
mod log;
mod notes;
mod reader;
mod records;
mod remap;
mod saved;
mod schema;
mod stories;
mod story_cover;
mod story_log;
mod websub;

pub(crate) mod fts;

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension};

use crate::item::{Item, ItemData};

#[cfg(test)]
pub(crate) use bulk::{OFF as COLD_OFF, dump as dump_for_test};
pub use files::{FileId, FileIndex, FileStat, Rejection};
pub(crate) use files::{FileKey, FileKeys, StoredSource};
pub(crate) use health::rebuild;
pub(crate) use health::{corrupt_hint, is_store_failure};
pub(crate) use items::{Encoded, ItemState};
pub use log::{FeedState, SlotHead};
pub use reader::Reader;
#[cfg(test)]
pub(crate) use remap::record_of;
pub use remap::{RemapRow, Retopic};
pub use schema::{SCHEMA_VERSION, recorded_schema};
pub use stories::{KeyRange, StoryPrint, StoryRow};
pub use story_log::Coverage;

/// The writer's handle on the database.
pub struct Store {
    conn: Connection,
    /// The checkpoint thread, stopped and waited for when the store goes. Declared after
    /// `conn`, so the writer's connection closes first and the checkpoint thread's is the
    /// last (see [`Checkpointer`]).
    _checkpointer: Option<Checkpointer>,
    /// The store's file and its (device, inode) when opened (see `health`).
    path: Option<std::path::PathBuf>,
    identity: Option<(u64, u64)>,
    /// The test hook's page-limit file (see `health::TEST_PAGES_VAR`).
    pages_file: Option<std::path::PathBuf>,
    /// What a cold build has set aside while it runs (`store/bulk.rs`).
    cold: std::cell::RefCell<bulk::Cold>,
    /// The page cache set for a large batch, in KiB (0 outside one; see `Store::begin_bulk`).
    bulk_cache: std::cell::Cell<i64>,
    /// Told every [`BEAT_STEPS`] virtual-machine steps of any statement (see [`Store::beat_while_working`]).
    beat: Option<Beat>,
}

/// What a statement that runs long tells while it works: the writer's heartbeat.
type Beat = std::sync::Arc<dyn Fn() + Send + Sync>;

/// How many SQLite virtual-machine steps run between two beats (a few hundred microseconds).
const BEAT_STEPS: i32 = 10_000;

/// Prepared statements kept per connection (see `open_file`).
pub(crate) const STATEMENT_CACHE: usize = 256;

/// How often the WAL is checkpointed into the database, off the writer's thread, while it moves.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(25);
/// How often the WAL is checkpointed once it has stopped moving.
const CHECKPOINT_IDLE: Duration = Duration::from_millis(500);
/// Checkpoints that found the log as it was before the checkpoint thread slows down.
const IDLE_TURNS: u32 = 8;
/// WAL pages after which a commit checkpoints by itself: only a backstop, for when the
/// checkpoint thread cannot keep up.
const WAL_BACKSTOP_PAGES: u32 = 16384;
/// The page cache of a large batch, in KiB (see `Store::begin_bulk`); SQLite's default is 2 MiB.
const BULK_CACHE_KIB: i64 = 16 * 1024;
/// The page cache of a cold build once its story keys are no longer mirrored in memory (the
/// mirror full, past about 32,000 clippings, or a build resumed on a store holding keys), in
/// KiB: from then on every clipping looks its candidates up and writes its keys in the key
/// table, at random, and the memory the mirror held goes to the cache instead. Measured at
/// 100,000 (bench/README.md, "Branch bulk5"): past 30,000 items, 16 MiB read about 340 KiB and
/// wrote 200 KiB a clipping (pages read back, and pages spilled before their commit and
/// written again); 64 MiB, 140 and 107 KiB.
const COLD_CACHE_KIB: i64 = 64 * 1024;
const DEFAULT_CACHE_KIB: i64 = 2000;
/// How long the WAL's truncation after a large batch waits for readers.
const TRUNCATE_WAIT: Duration = Duration::from_millis(200);
/// How long the WAL's truncation after a compaction (and at a clean stop) waits for the checkpoint thread and readers
/// (the writer waits meanwhile; past it, the checkpoint thread and `journal_size_limit` cut the
/// WAL later). 30 s made the crash test's cold restarts miss their deadline.
const COMPACT_TRUNCATE_WAIT: Duration = Duration::from_secs(2);
/// How many SQLite virtual-machine steps a compaction runs between two looks at its stop.
const COMPACT_CHECK_STEPS: i32 = 1_000;
/// The size a WAL file is cut back to once a checkpoint has reset it: as large as the backstop
/// lets it grow, so that while changes come the log starts over in place. Cutting it at each
/// reset (it was 4 MiB) made the first commit after the reset truncate the file (freeing its
/// pages and blocks, in the writer, several milliseconds for tens of megabytes) and the commits
/// after it allocate the blocks again. The file is cut to nothing once changes stop (see
/// [`spawn_checkpointer`]).
const WAL_KEEP_BYTES: i64 = WAL_BACKSTOP_PAGES as i64 * 4096;

fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

fn from_ts(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
}

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    // Without the query planner stability guarantee, SQLite plans some statements around the
    // values bound to them (a `LIMIT ?`, a parameter compared with a partial index's condition)
    // and marks them to be prepared again when a value is bound. rusqlite clears the bindings of
    // every statement it puts back in its cache, so each of those statements was parsed and
    // planned afresh at every use: a tenth of the writer's time per change at 10,000 stored.
    // Our statements take no benefit from value-dependent plans.
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

/// The checkpoint thread of an open store, with its own connection.
///
/// Dropping it stops the thread and waits for it, so that its connection is closed before the
/// process can exit. The last connection to close copies the whole WAL into the database and
/// deletes the WAL: a store at rest is its database alone. A thread left sleeping (it was only
/// told to stop by a token it looked at on waking) outlived the store: a command (`render`,
/// `token`, `export`) exited with the WAL still there, or in the middle of a checkpoint, its
/// database file half copied. SQLite reads such a store right (through the WAL), but a reader
/// of the file alone (`check`, which opens it `immutable` when there is no WAL) did not:
/// "malformed database schema (pending_by_date) - index pending_by_date already exists".
struct Checkpointer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::warn!("the checkpoint thread panicked");
        }
    }
}

/// Starts the thread that checkpoints the WAL on its own connection, until the returned
/// [`Checkpointer`] is dropped. A passive checkpoint never blocks the writer.
///
/// While changes come, it runs every [`CHECKPOINT_EVERY`], so that each copies only the frames of
/// the last few changes. Run every half second, each had tens of megabytes to copy while the
/// writer went on adding frames; the log never started over, reached the backstop
/// ([`WAL_BACKSTOP_PAGES`]) in about 170 changes, and the change that crossed it copied what was
/// left itself: 130–230 ms, at 10,000 and 100,000 stored alike. Once the log has not moved for
/// a few turns, the thread slows to [`CHECKPOINT_IDLE`] and cuts the WAL file to nothing, so
/// that a store at rest is its database alone; that cut never waits (for the writer or a
/// reader), it is tried again at the next idle turn instead.
fn spawn_checkpointer(path: &Path) -> Result<Checkpointer> {
    let conn = Connection::open(path).with_context(|| format!("cannot open store {}", path.display()))?;
    configure(&conn)?;
    // A passive checkpoint never waits; the cut below must not either.
    conn.busy_timeout(Duration::ZERO)?;
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::Builder::new().name("clipfeed-checkpoint".into()).spawn(move || {
        let (mut last, mut still, mut cut) = (-1i64, 0u32, false);
        // Woken at once when the store goes (the sender dropped).
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            stopped.recv_timeout(if still > IDLE_TURNS { CHECKPOINT_IDLE } else { CHECKPOINT_EVERY })
        {
            match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1)) {
                Ok(frames) if frames == last => still = still.saturating_add(1),
                Ok(frames) => (last, still, cut) = (frames, 0, false),
                Err(e) => tracing::debug!("checkpoint skipped: {e}"),
            }
            if still > IDLE_TURNS && !cut && last > 0 {
                cut = matches!(conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get::<_, i64>(0)), Ok(0));
            }
        }
        // Its connection closes here, after the writer's: the WAL is copied in and deleted.
        drop(conn);
    })?;
    Ok(Checkpointer { stop: Some(stop), thread: Some(thread) })
}

impl Store {
    /// Opens (creating if needed) the store at `path`, in WAL mode. A corrupt store gives an
    /// error naming the file and the command that rebuilds it.
    pub fn open(path: &Path) -> Result<Store> {
        let mut store = Store::open_file(path).map_err(|e| corrupt_hint(path, e))?;
        store.watch_file(path);
        Ok(store)
    }

    fn open_file(path: &Path) -> Result<Store> {
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
        // One change runs a few dozen distinct statements (items, feed logs, the search index,
        // stories, rendering): rusqlite's default cache of 16 made the writer prepare them again
        // and again (a fifth of its time per change at 10,000 stored).
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // Checkpoints copy the WAL into the database with an fsync: tens of milliseconds that a
        // commit would otherwise pay now and then, delaying whichever change made it. They run
        // on a thread of their own instead, and a commit checkpoints only past the backstop.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_BACKSTOP_PAGES)?;
        // A large batch can grow the WAL file far past the backstop before a checkpoint gets to
        // reset it; once reset, it is cut back to this size instead of keeping its largest (the
        // WAL counts in the store's size on disk).
        conn.pragma_update(None, "journal_size_limit", WAL_KEEP_BYTES)?;
        let mut store = Store::init(conn).with_context(|| format!("cannot initialise store {}", path.display()))?;
        store._checkpointer = Some(spawn_checkpointer(path)?);
        Ok(store)
    }

    /// A store that lives in memory only (tests).
    #[cfg(test)]
    pub(crate) fn open_in_memory() -> Result<Store> {
        Store::init(Connection::open_in_memory()?)
    }

    /// For the length of a large batch (a cold start, a rebuild, a folder moved in): a larger
    /// page cache, since every item touches a dozen indexes whose pages the default cache of
    /// 2 MiB reads again and again from the file. Then, at its end ([`Store::end_bulk`]), the
    /// default again.
    pub fn begin_bulk(&self) -> Result<()> {
        self.set_bulk_cache(BULK_CACHE_KIB)
    }

    fn set_bulk_cache(&self, kib: i64) -> Result<()> {
        self.conn.pragma_update(None, "cache_size", -kib)?;
        self.bulk_cache.set(kib);
        Ok(())
    }

    /// Ends what [`Store::begin_bulk`] began: the cache back to its default (its pages freed),
    /// and the WAL, grown by the batch, copied into the database and cut to nothing, so the
    /// store on disk is its database alone. The checkpoint waits for readers at most
    /// `TRUNCATE_WAIT`; past that it is left to the checkpoint thread (and
    /// `journal_size_limit`).
    pub fn end_bulk(&self) -> Result<()> {
        self.end_bulk_cache()?;
        self.cut_wal()
    }

    /// The first half of [`Store::end_bulk`]: the cache back to its default, the WAL left for
    /// [`Store::end_remap`] (a remap's, once its feeds are published: the cut waits for readers,
    /// and readers then wait for the new feeds).
    pub fn end_bulk_cache(&self) -> Result<()> {
        self.conn.pragma_update(None, "cache_size", -DEFAULT_CACHE_KIB)?;
        self.bulk_cache.set(0);
        Ok(())
    }

    /// Holds off the checkpoint a commit makes by itself past the backstop
    /// (`WAL_BACKSTOP_PAGES`) until [`Store::end_remap`]: a remap's one transaction leaves
    /// hundreds of megabytes of frames, and its commit, then its render's, copied them into the
    /// database before the new feeds could be published (about half a second at 100,000). The
    /// checkpoint thread copies them meanwhile, as it does after any commit.
    pub fn hold_checkpoints(&self) -> Result<()> {
        self.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        Ok(())
    }

    /// The `wal_autocheckpoint` setting of the writer's connection.
    #[cfg(test)]
    pub(crate) fn wal_autocheckpoint(&self) -> i64 {
        self.conn.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0)).expect("a pragma reads")
    }

    /// Ends a remap once its feeds are published: the commits' own checkpoint past the backstop
    /// back (see [`Store::hold_checkpoints`]), and the WAL copied in and cut ([`Store::cut_wal`]).
    pub fn end_remap(&self) -> Result<()> {
        self.conn.pragma_update(None, "wal_autocheckpoint", WAL_BACKSTOP_PAGES)?;
        self.cut_wal()
    }

    /// Copies the WAL into the database and cuts it to nothing, waiting for readers at most
    /// `TRUNCATE_WAIT` (past that it is left to the checkpoint thread): after a large batch, and
    /// at a clean stop, whose saved feeds would otherwise stay in the WAL (20 MB at 100,000).
    pub fn cut_wal(&self) -> Result<()> {
        self.truncate_wal(TRUNCATE_WAIT)
    }

    /// [`Store::cut_wal`] at a clean stop, when nothing waits on the writer any more: it may wait
    /// for the checkpoint thread and readers as long as after a compaction (on a loaded machine
    /// the checkpoint thread's last pass took longer than `TRUNCATE_WAIT`, and the WAL stayed).
    pub fn cut_wal_at_stop(&self) -> Result<()> {
        self.truncate_wal(COMPACT_TRUNCATE_WAIT)
    }

    /// The one `TRUNCATE` checkpoint of the writer's connection, waiting at most `wait` for the
    /// checkpoint thread and readers; not getting there is no error (the checkpoint thread cuts
    /// the WAL once changes stop).
    fn truncate_wal(&self, wait: Duration) -> Result<()> {
        self.conn.busy_timeout(wait)?;
        let busy = self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get::<_, i64>(0));
        self.conn.busy_timeout(Duration::from_secs(10))?;
        match busy {
            Ok(0) => {}
            Ok(_) => tracing::debug!("the WAL was not truncated: a reader was in the way"),
            Err(e) => tracing::debug!("the WAL was not truncated: {e}"),
        }
        Ok(())
    }

    /// Rewrites the store's file compactly (`VACUUM`): for the end of a cold build (a first
    /// start, a rebuild), whose random and out-of-order inserts leave b-tree pages a fifth to
    /// a half empty, and whose files' records, held until their items are written, leave the
    /// `files` table's pages far emptier. At 100,000 clippings this takes the store from about
    /// 1.07x to 0.96x of the clippings' bytes (bench/README.md, section 1c). Readers keep
    /// reading meanwhile (WAL). Skipped for a store whose `item_records` rowids are not declared
    /// (written before this was done): `VACUUM` may renumber undeclared rowids, which
    /// `items.rec` points at.
    pub fn compact(&mut self, interrupted: impl FnMut() -> bool + Send + 'static) -> Result<()> {
        let declared: bool = self.conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM pragma_table_info('item_records') WHERE pk = 1)",
            [],
            |r| r.get(0),
        )?;
        if !declared {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let before: i64 = self.conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        // Asked every thousand virtual-machine steps whether to give up (a stop): an interrupted
        // VACUUM is a transaction rolled back, the file as it was. Only while the compact copy is
        // built: writing it back (the backup of the copy into the WAL) runs no step, nor does
        // the WAL's truncation; and no beat comes from here meanwhile (`ingest/large` keeps
        // the heartbeat from a thread of its own).
        self.conn.progress_handler(COMPACT_CHECK_STEPS, Some(interrupted))?;
        let vacuumed = self.conn.execute_batch("VACUUM");
        self.install_beat()?;
        vacuumed.context("the compaction (VACUUM) did not finish")?;
        // In WAL mode the rewritten file went into the WAL: copy it back and cut the WAL now,
        // waiting out the checkpoint thread (which starts on it at once) and readers, rather
        // than leave a WAL the size of the store behind.
        self.truncate_wal(COMPACT_TRUNCATE_WAIT)?;
        let after: i64 = self.conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        tracing::info!(
            pages_before = before,
            pages_after = after,
            ms = started.elapsed().as_millis() as u64,
            "store compacted"
        );
        Ok(())
    }

    /// Calls `beat` every few hundred microseconds of work inside any statement on this
    /// connection, so a statement that runs for minutes (a compaction or a coverage fill at a
    /// million clippings) still shows the writer alive to systemd's watchdog. A writer stuck
    /// waiting (for a lock, say) runs no steps, and does not beat.
    pub fn beat_while_working(&mut self, beat: impl Fn() + Send + Sync + 'static) -> Result<()> {
        self.beat = Some(std::sync::Arc::new(beat));
        self.install_beat()
    }

    fn install_beat(&mut self) -> Result<()> {
        match self.beat.clone() {
            Some(beat) => self.conn.progress_handler(
                BEAT_STEPS,
                Some(move || {
                    beat();
                    false
                }),
            )?,
            None => self.conn.progress_handler(0, None::<fn() -> bool>)?,
        }
        Ok(())
    }

    /// Starts a batch: one transaction holding every change until it commits.
    pub fn batch(&mut self) -> Result<Batch<'_>> {
        self.apply_test_limit()?;
        self.cold_batch_begins();
        // A large batch's cold build without its key mirror: the larger cache (`COLD_CACHE_KIB`).
        if self.bulk_cache.get() == BULK_CACHE_KIB && self.cold_unmirrored() {
            self.set_bulk_cache(COLD_CACHE_KIB)?;
            tracing::debug!(kib = COLD_CACHE_KIB, "cold build without its key mirror: a larger page cache");
        }
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        Ok(Batch { tx, cold: &self.cold })
    }
}

/// One transaction. Dropping it without [`Batch::commit`] rolls everything back.
pub struct Batch<'a> {
    tx: rusqlite::Transaction<'a>,
    cold: bulk::ColdRef<'a>,
}

impl Batch<'_> {
    pub(crate) fn commit(self) -> Result<()> {
        self.cold_flush()?;
        let cold = self.cold;
        self.tx.commit().context("cannot commit to the store")?;
        Batch::cold_committed(cold);
        Ok(())
    }

    pub(crate) fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self.tx.query_row("SELECT value FROM meta WHERE key=?1", [key], |r| r.get(0)).optional()?)
    }

    /// Indexes the next `chunk` live items a store made before the search index has not yet
    /// indexed (see [`fts::backfill`]): how many, and whether the index is now complete.
    pub(crate) fn backfill_search(&self, chunk: usize) -> Result<(usize, bool)> {
        fts::backfill(&self.tx, chunk)
    }

    /// One idle step of the search index's merging (see [`fts::merge_step`]): whether it found
    /// work.
    pub(crate) fn merge_search_step(&self, pages: i64) -> Result<bool> {
        fts::merge_step(&self.tx, pages)
    }

    /// Whether every live item is in the search index.
    pub(crate) fn search_ready(&self) -> Result<bool> {
        fts::ready(&self.tx)
    }

    pub(crate) fn clear_meta(&self, key: &str) -> Result<()> {
        self.tx.execute("DELETE FROM meta WHERE key=?1", [key])?;
        Ok(())
    }

    pub(crate) fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.tx.execute(
            "INSERT INTO meta(key, value) VALUES(?1, ?2) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            [key, value],
        )?;
        Ok(())
    }
}

fn row_item(id: String, updated: i64, record: &records::Record) -> Result<Item> {
    let data: ItemData = record.decode().with_context(|| format!("corrupt item {id}"))?;
    Ok(Item { id, updated: from_ts(updated), data })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::clip::{Clipping, Limits, parse};
    use crate::feed::FeedKey;
    use crate::item::{TopicRef, id_for};

    impl Batch<'_> {
        /// The newest `limit` live items of a feed: newest first, ties broken by id. (What the
        /// store's indexes give in feed order; the daemon reads feeds through their logs.)
        fn feed_items(&self, feed: &FeedKey, limit: usize) -> Result<Vec<Item>> {
            let limit = limit as i64;
            let map = |r: &rusqlite::Row<'_>| -> rusqlite::Result<(String, i64, records::Record)> {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            };
            let rows: Vec<(String, i64, records::Record)> = match feed {
                FeedKey::All => self
                    .tx
                    .prepare_cached(
                        "SELECT i.id, i.updated, (SELECT data FROM item_records r WHERE r.rowid = i.rec) FROM items i
                         WHERE i.deleted_at IS NULL ORDER BY i.published DESC, i.id LIMIT ?1",
                    )?
                    .query_map([limit], map)?
                    .collect::<rusqlite::Result<_>>()?,
                FeedKey::Topic(slug) => self
                    .tx
                    .prepare_cached(
                        "SELECT i.id, i.updated, (SELECT data FROM item_records r WHERE r.rowid = i.rec) FROM item_topics t JOIN items i ON i.id = t.id
                         WHERE t.slug=?1 ORDER BY t.published DESC, t.id LIMIT ?2",
                    )?
                    .query_map(rusqlite::params![slug, limit], map)?
                    .collect::<rusqlite::Result<_>>()?,
                FeedKey::Provider(domain) => self
                    .tx
                    .prepare_cached(
                        "SELECT i.id, i.updated, (SELECT data FROM item_records r WHERE r.rowid = i.rec) FROM items i
                         WHERE i.provider=?1 AND i.deleted_at IS NULL ORDER BY i.published DESC, i.id LIMIT ?2",
                    )?
                    .query_map(rusqlite::params![domain, limit], map)?
                    .collect::<rusqlite::Result<_>>()?,
            };
            rows.into_iter()
                .map(|(id, updated, record)| {
                    let data: ItemData = record.decode().with_context(|| format!("corrupt item {id}"))?;
                    Ok(Item { id, updated: from_ts(updated), data })
                })
                .collect()
        }
    }

    fn clip(title: &str) -> Clipping {
        parse(format!("---\ntitle: {title}\n---\n").as_bytes(), Limits::default()).unwrap().clipping
    }

    fn fid(p: &str) -> FileId {
        FileId { root: "/r".into(), path: p.into() }
    }

    pub(super) fn item(key: &str, published: &str, topics: &[&str]) -> Item {
        Item {
            id: id_for(key),
            updated: "2024-01-01T00:00:00Z".parse().unwrap(),
            data: ItemData {
                clip: clip(key),
                topics: topics.iter().map(|s| TopicRef { slug: s.to_string(), name: s.to_string() }).collect(),
                published: published.parse().unwrap(),
                dated: true,
                also: Vec::new(),
            },
        }
    }

    /// Once a store is dropped, its file alone holds every change: the checkpoint thread is
    /// stopped and waited for, so the last connection closes before the process can exit, and
    /// copies the WAL in (a command that exited with the thread still running left the WAL
    /// behind, and sometimes a database file half way through a checkpoint).
    #[test]
    fn a_dropped_store_is_its_database_alone_with_every_change_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let uri = format!("{}?immutable=1", url::Url::from_file_path(&path).unwrap());
        for round in 0..12u64 {
            let mut s = Store::open(&path).unwrap();
            let b = s.batch().unwrap();
            b.set_meta("round", &round.to_string()).unwrap();
            b.commit().unwrap();
            // Dropped at different points of the checkpoint thread's turn.
            std::thread::sleep(Duration::from_millis(round * 5));
            drop(s);
            assert!(!dir.path().join("s.db-wal").exists(), "round {round}: the WAL was left behind");
            let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI;
            let alone = Connection::open_with_flags(&uri, flags).unwrap();
            let got: String = alone.query_row("SELECT value FROM meta WHERE key='round'", [], |r| r.get(0)).unwrap();
            assert_eq!(got, round.to_string(), "the database file alone");
        }
    }

    #[test]
    fn files_keep_last_good_parse_when_rejected() {
        let mut s = Store::open_in_memory().unwrap();
        let b = s.batch().unwrap();
        let st = FileStat { size: 1, mtime_ns: 2 };
        b.put_file_ok(&fid("a.md"), st, "k", &clip("A")).unwrap();
        let bad = FileStat { size: 3, mtime_ns: 4 };
        assert!(b.put_file_rejected(&fid("a.md"), bad, "bad", Utc::now()).unwrap(), "news");
        // Read again unchanged: the same rejection, not news; another reason or another
        // version of the file is.
        assert!(!b.put_file_rejected(&fid("a.md"), bad, "bad", Utc::now()).unwrap());
        assert!(b.put_file_rejected(&fid("a.md"), bad, "worse", Utc::now()).unwrap());
        assert!(b.put_file_rejected(&fid("a.md"), FileStat { size: 3, mtime_ns: 5 }, "worse", Utc::now()).unwrap());
        assert!(b.put_file_rejected(&fid("a.md"), bad, "bad", Utc::now()).unwrap());
        let row = b.file(&fid("a.md")).unwrap().unwrap();
        assert_eq!(row.stat, FileStat { size: 3, mtime_ns: 4 });
        assert_eq!(row.item_key.as_deref(), Some("k"));
        assert_eq!(b.sources("k").unwrap().len(), 1);
        assert_eq!(b.rejections().unwrap().len(), 1);
        b.put_file_ok(&fid("a.md"), st, "k", &clip("A2")).unwrap();
        assert!(b.rejections().unwrap().is_empty());
        assert_eq!(b.remove_file(&fid("a.md")).unwrap(), (true, Some("k".into())));
        assert_eq!(b.remove_file(&fid("a.md")).unwrap(), (false, None));
        b.commit().unwrap();
    }

    #[test]
    fn the_file_index_holds_each_file_by_key_and_names_the_ones_asked_for() {
        let mut s = Store::open_in_memory().unwrap();
        let b = s.batch().unwrap();
        let other = FileId { root: "/other".into(), path: "a.md".into() };
        b.put_file_ok(&fid("a.md"), FileStat { size: 1, mtime_ns: 2 }, "k", &clip("A")).unwrap();
        b.put_file_ok(&other, FileStat { size: 5, mtime_ns: 6 }, "k", &clip("A")).unwrap();
        b.put_file_rejected(&fid("sub/b.md"), FileStat { size: 3, mtime_ns: 4 }, "bad", Utc::now()).unwrap();
        b.commit().unwrap();
        let index = s.file_index().unwrap();
        assert_eq!(index.roots, ["/other", "/r"]);
        let (r, o) = (FileKeys::new("/r"), FileKeys::new("/other"));
        let find = |key| index.files.iter().find(|k| k.key == key).copied().unwrap();
        let a = find(r.of(b"a.md"));
        assert_eq!(
            (a.stat, a.rejected, index.roots[a.root as usize].as_str()),
            (FileStat { size: 1, mtime_ns: 2 }, false, "/r")
        );
        let b = find(r.of(b"sub/b.md"));
        assert_eq!((b.stat, b.rejected), (FileStat { size: 3, mtime_ns: 4 }, true));
        // The same path under another root is another file.
        let same_path = find(o.of(b"a.md"));
        assert_eq!(
            (same_path.stat, index.roots[same_path.root as usize].as_str()),
            (FileStat { size: 5, mtime_ns: 6 }, "/other")
        );
        assert_eq!(index.files.len(), 3);
        assert!(index.files.windows(2).all(|w| w[0].key < w[1].key));
        let wanted = [r.of(b"sub/b.md"), o.of(b"a.md"), r.of(b"nowhere.md")].into();
        let mut named = s.files_by_key(&wanted).unwrap();
        named.sort();
        assert_eq!(named, [other, fid("sub/b.md")]);
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

    #[test]
    fn topic_rows_follow_an_item_through_edits_redates_and_deletion() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("s.db")).unwrap();
        let t = Utc::now();
        let rows = |b: &Batch<'_>| -> Vec<(String, i64, String)> {
            b.tx.prepare("SELECT slug, published, id FROM item_topics ORDER BY slug, id")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        let b = s.batch().unwrap();
        let other = item("other", "2024-01-05T00:00:00Z", &["ai"]);
        b.put_item("other", &other, t, &other.data.hash(), &other.data.shown_hash()).unwrap();
        let first = item("k", "2024-01-01T00:00:00Z", &["ai", "ml"]);
        b.put_item("k", &first, t, &first.data.hash(), &first.data.shown_hash()).unwrap();
        let (d1, d5) = (ts(first.data.published), ts(other.data.published));
        let (k, o) = (first.id.clone(), other.id.clone());
        assert_eq!(
            rows(&b),
            [("ai".into(), d1, k.clone()), ("ai".into(), d5, o.clone()), ("ml".into(), d1, k.clone())]
        );
        // Edited: another date, one topic gone, one new.
        let edited = item("k", "2024-01-09T00:00:00Z", &["ml", "robots"]);
        b.put_item("k", &edited, t, &edited.data.hash(), &edited.data.shown_hash()).unwrap();
        let d9 = ts(edited.data.published);
        assert_eq!(
            rows(&b),
            [("ai".into(), d5, o.clone()), ("ml".into(), d9, k.clone()), ("robots".into(), d9, k.clone())]
        );
        b.tombstone_item("k", t).unwrap();
        assert_eq!(rows(&b), [("ai".into(), d5, o.clone())]);
        // Back from the dead with its old topics.
        b.put_item("k", &first, t, &first.data.hash(), &first.data.shown_hash()).unwrap();
        assert_eq!(rows(&b), [("ai".into(), d1, k.clone()), ("ai".into(), d5, o), ("ml".into(), d1, k)]);
        b.commit().unwrap();
    }

    #[test]
    fn a_store_at_rest_has_its_wal_cut_to_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("s.db")).unwrap();
        let t = Utc::now();
        let b = s.batch().unwrap();
        for n in 0..200 {
            let key = format!("k{n}");
            let it = item(&key, &format!("2024-01-{:02}T00:00:00Z", 1 + n % 28), &["ai"]);
            b.put_item(&key, &it, t, &it.data.hash(), &it.data.shown_hash()).unwrap();
        }
        b.commit().unwrap();
        let wal = || std::fs::metadata(dir.path().join("s.db-wal")).map_or(0, |m| m.len());
        assert!(wal() > 0, "the batch went through the WAL");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while wal() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(wal(), 0, "once changes stop, the checkpoint thread cuts the WAL");
        // What the WAL held is in the database, and the store goes on as before.
        let b = s.batch().unwrap();
        assert_eq!(b.feed_items(&FeedKey::All, 1000).unwrap().len(), 200);
        let it = item("late", "2024-02-01T00:00:00Z", &["ai"]);
        b.put_item("late", &it, t, &it.data.hash(), &it.data.shown_hash()).unwrap();
        b.commit().unwrap();
        assert_eq!(s.batch().unwrap().feed_items(&FeedKey::All, 1000).unwrap().len(), 201);
    }

    #[test]
    fn a_long_statement_beats_and_again_after_a_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("s.db")).unwrap();
        let beats = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = beats.clone();
        s.beat_while_working(move || {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        })
        .unwrap();
        let beaten = || beats.load(std::sync::atomic::Ordering::SeqCst);
        // One statement of 200,000 rows, counted.
        let long = |s: &Store| -> i64 {
            let sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000) SELECT count(*) FROM c";
            s.conn.query_row(sql, [], |r| r.get(0)).unwrap()
        };
        assert_eq!(long(&s), 200_000);
        let after_query = beaten();
        assert!(after_query >= 10, "{after_query} beats in a statement of 200,000 rows");
        s.conn
            .execute_batch(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000)
                 INSERT INTO meta(key, value) SELECT 'filler' || x, hex(randomblob(400)) FROM c;
                 DELETE FROM meta WHERE key LIKE 'filler%' AND CAST(substr(key, 7) AS INTEGER) % 2 = 0;",
            )
            .unwrap();
        s.compact(|| false).unwrap();
        // The handler is back after it: the same statement beats again.
        let before = beaten();
        assert_eq!(long(&s), 200_000);
        assert!(beaten() >= before + 10);
    }

    #[test]
    fn compacting_keeps_every_item_and_shrinks_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("s.db")).unwrap();
        let t = Utc::now();
        let b = s.batch().unwrap();
        // Records made and dropped before the items', so the items' rowids do not start at 1.
        for _ in 0..50 {
            b.tx.execute("INSERT INTO item_records(data) VALUES(zeroblob(3000))", []).unwrap();
        }
        for n in 0..300 {
            let key = format!("k{n}");
            let it = item(&key, &format!("2024-01-{:02}T00:00:00Z", 1 + n % 28), &["ai"]);
            b.put_item(&key, &it, t, &it.data.hash(), &it.data.shown_hash()).unwrap();
        }
        b.tx.execute("DELETE FROM item_records WHERE id <= 50", []).unwrap();
        let read = |b: &Batch<'_>| -> Vec<(String, String)> {
            b.feed_items(&FeedKey::All, 1000).unwrap().into_iter().map(|i| (i.id, i.data.clip.title)).collect()
        };
        let before = read(&b);
        assert_eq!(before.len(), 300);
        b.commit().unwrap();
        let pages = |s: &Store| -> i64 { s.conn.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap() };
        let (pages_before, free): (i64, i64) =
            (pages(&s), s.conn.query_row("PRAGMA freelist_count", [], |r| r.get(0)).unwrap());
        assert!(free > 0, "the dropped records left free pages");
        // A stop interrupts it: the file as it was, every item readable, the next one finishes.
        let looked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = looked.clone();
        let stopped = s.compact(move || seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 1);
        assert!(format!("{:#}", stopped.expect_err("interrupted")).contains("interrupt"));
        assert!(looked.load(std::sync::atomic::Ordering::SeqCst) >= 2, "the stop was asked while it ran");
        assert!(s.conn.is_autocommit(), "no transaction left open");
        assert_eq!((pages(&s), read(&s.batch().unwrap())), (pages_before, before.clone()), "nothing changed");
        s.compact(|| false).unwrap();
        // The compaction cuts the WAL it went through, waiting `COMPACT_TRUNCATE_WAIT` for the
        // checkpoint thread; on a loaded machine that thread's pass can take longer, and then it
        // cuts the WAL itself at its next idle turn. Either way the WAL is gone soon after.
        let wal = || std::fs::metadata(dir.path().join("s.db-wal")).map_or(0, |m| m.len());
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while wal() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(wal(), 0, "the WAL the rewrite went through is cut");
        assert!(pages(&s) <= pages_before - free, "{} pages, {pages_before} before with {free} free", pages(&s));
        let b = s.batch().unwrap();
        assert_eq!(read(&b), before, "every item reads its own record");
    }
}
