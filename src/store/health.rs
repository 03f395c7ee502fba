//! The store's health: what a failed write was (a full disk, an I/O error, a corrupt file),
//! whether the file the writer has open is still the one at the store's path, the message a
//! corrupt store gives at start, and `clipfeed store rebuild`, which moves a store aside and
//! rebuilds it keeping what the clippings cannot give back. Also the test hook that simulates a
//! full disk without privileges (`CLIPFEED_TEST_STORE_PAGES`).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rusqlite::{Connection, ErrorCode};

use super::Store;

/// Names a file holding a page count: while the variable is set, each batch first sets SQLite's
/// `max_page_count` to the number in that file (no limit when the file is absent or empty), so
/// tests can fill the store up, and free it again, as a full disk would.
const TEST_PAGES_VAR: &str = "CLIPFEED_TEST_STORE_PAGES";

/// SQLite's largest `max_page_count`: no limit.
const NO_PAGE_LIMIT: i64 = 4_294_967_294;

/// Tables holding what the clippings cannot give back, with the columns a rebuild carries over:
/// the private-feed tokens (subscribers' URLs), the verified WebSub subscriptions, the RFC 6721
/// tombstones of clippings deleted before (an item the clippings bring back leaves its
/// tombstone as it enters, as always), and the topics and news sites known, by name: a feed
/// whose last clipping went keeps answering, empty, after a rebuild as before it (the names of
/// feeds with clippings are written again from them).
const KEPT: [(&str, &str); 5] = [
    ("tokens", "feed, token, created"),
    ("websub_subscriptions", "topic, callback, secret, expires"),
    ("tombstones", "feed, id, at"),
    ("topics", "slug, name"),
    ("providers", "domain, name"),
];

/// The (device, inode) of the file at `path`.
fn identity(path: &Path) -> std::io::Result<(u64, u64)> {
    let m = std::fs::metadata(path)?;
    Ok((m.dev(), m.ino()))
}

/// The SQLite error in a chain of errors, if there is one.
fn sqlite_code(e: &anyhow::Error) -> Option<ErrorCode> {
    e.chain().find_map(|c| c.downcast_ref::<rusqlite::Error>()).and_then(rusqlite::Error::sqlite_error_code)
}

/// Whether a failure was the store's own (it could not be read or written), as opposed to, say,
/// a clipping folder that could not be walked.
pub(crate) fn is_store_failure(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<rusqlite::Error>().is_some())
}

/// Whether a failure says the store file is damaged or is not a store at all.
pub(crate) fn is_corrupt(e: &anyhow::Error) -> bool {
    matches!(sqlite_code(e), Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase))
}

/// `e`, with what to do about it when it says the store at `path` is corrupt.
pub(crate) fn corrupt_hint(path: &Path, e: anyhow::Error) -> anyhow::Error {
    if !is_corrupt(&e) {
        return e;
    }
    e.context(format!(
        "the store {} is corrupt; rebuild it from the clippings with `clipfeed store rebuild` (it moves the damaged file aside and keeps the private-feed tokens when it can still read them)",
        path.display()
    ))
}

impl Store {
    /// Remembers which file the store is, so [`Store::check_file`] can tell when it is deleted
    /// or replaced; reads the test hook's variable.
    pub(super) fn watch_file(&mut self, path: &Path) {
        self.path = Some(path.to_path_buf());
        self.identity = identity(path).ok();
        self.pages_file = std::env::var_os(TEST_PAGES_VAR).filter(|v| !v.is_empty()).map(PathBuf::from);
    }

    /// `Err` with what happened when the file at the store's path is no longer the one the
    /// writer has open (deleted, or replaced by another), `Ok` while it is.
    pub(crate) fn check_file(&self) -> std::result::Result<(), String> {
        let (Some(path), Some(was)) = (&self.path, self.identity) else { return Ok(()) };
        match identity(path) {
            Ok(now) if now == was => Ok(()),
            Ok(_) => Err(format!(
                "the store file {} was replaced while clipfeed was running; changes go to the file it opened, which is no longer at that path: restart clipfeed",
                path.display()
            )),
            Err(e) => Err(format!(
                "the store file {} is gone ({e}); changes go to a deleted file and are lost at the next start: restart clipfeed, which rebuilds the store from the clippings",
                path.display()
            )),
        }
    }

    /// The store's file, as configured (`:memory:` in tests).
    pub(crate) fn file_name(&self) -> String {
        self.path.as_ref().map_or(":memory:".into(), |p| p.display().to_string())
    }

    /// The test hook: the page limit the file named by [`TEST_PAGES_VAR`] sets.
    pub(super) fn apply_test_limit(&self) -> Result<()> {
        let Some(file) = &self.pages_file else { return Ok(()) };
        let limit = std::fs::read_to_string(file).ok().and_then(|s| s.trim().parse::<i64>().ok());
        self.conn.pragma_update(None, "max_page_count", limit.unwrap_or(NO_PAGE_LIMIT))?;
        Ok(())
    }
}

/// What `clipfeed store rebuild` did before the clippings are read into the new store.
#[derive(Debug)]
pub(crate) struct Rebuilt {
    /// Where the old store went (`None`: there was none).
    pub(crate) moved_to: Option<PathBuf>,
    /// Whether the old store failed its check (or could not be opened at all).
    pub(crate) corrupt: bool,
    /// Rows carried over, per kept table; tables that could not be read are named in `lost`.
    pub(crate) kept: Vec<(&'static str, usize)>,
    pub(crate) lost: Vec<String>,
}

/// Moves the store at `path` aside (with its WAL) as `<file>.corrupt-<time>` when it fails
/// SQLite's check, else `<file>.old-<time>`, creates an empty store there, and carries over
/// each table the clippings cannot give back, as far as the old file can still be read. The
/// caller then fills the new store from the clippings. The daemon must not be running.
pub(crate) fn rebuild(path: &Path) -> Result<(Store, Rebuilt)> {
    let mut done = Rebuilt { moved_to: None, corrupt: false, kept: Vec::new(), lost: Vec::new() };
    if path.exists() {
        done.corrupt = !passes_check(path);
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        let kind = if done.corrupt { "corrupt" } else { "old" };
        let aside = PathBuf::from(format!("{}.{kind}-{stamp}", path.display()));
        for suffix in ["", "-wal", "-shm"] {
            let from = PathBuf::from(format!("{}{suffix}", path.display()));
            if from.exists() {
                let to = PathBuf::from(format!("{}{suffix}", aside.display()));
                std::fs::rename(&from, &to)
                    .with_context(|| format!("cannot move {} aside to {}", from.display(), to.display()))?;
            }
        }
        done.moved_to = Some(aside);
    }
    let store = Store::open(path)?;
    if let Some(old) = &done.moved_to {
        for (table, columns) in KEPT {
            match store.copy_table(old, table, columns) {
                Ok(n) => done.kept.push((table, n)),
                Err(e) => done.lost.push(format!("{table}: {e:#}")),
            }
        }
    }
    Ok((store, done))
}

/// Whether the store at `path` opens and passes `PRAGMA quick_check`.
fn passes_check(path: &Path) -> bool {
    let check = || -> rusqlite::Result<String> {
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        conn.query_row("PRAGMA quick_check", [], |r| r.get(0))
    };
    check().is_ok_and(|verdict| verdict == "ok")
}

impl Store {
    /// Copies `columns` of `table` from the store file at `old` into this one; the rows copied.
    fn copy_table(&self, old: &Path, table: &str, columns: &str) -> Result<usize> {
        self.conn.execute("ATTACH DATABASE ?1 AS old", [old.display().to_string()])?;
        let copied = self
            .conn
            .execute(&format!("INSERT OR IGNORE INTO main.{table}({columns}) SELECT {columns} FROM old.{table}"), []);
        self.conn.execute("DETACH DATABASE old", [])?;
        Ok(copied?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deleted_or_replaced_store_file_is_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.check_file(), Ok(()));
        std::fs::remove_file(&path).unwrap();
        let gone = store.check_file().unwrap_err();
        assert!(gone.contains("is gone") && gone.contains(&path.display().to_string()), "{gone}");
        std::fs::write(&path, b"another file").unwrap();
        let replaced = store.check_file().unwrap_err();
        assert!(replaced.contains("was replaced") && replaced.contains(&path.display().to_string()), "{replaced}");
    }

    #[test]
    fn a_file_that_is_no_store_names_itself_and_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        std::fs::write(&path, vec![0x5a; 4096]).unwrap();
        let err = format!("{:#}", Store::open(&path).err().expect("not a store"));
        assert!(err.contains(&path.display().to_string()) && err.contains("clipfeed store rebuild"), "{err}");
        let (_, done) = rebuild(&path).unwrap();
        assert!(done.corrupt && done.moved_to.as_ref().is_some_and(|p| p.exists()), "{done:?}");
        assert_eq!(done.lost.len(), KEPT.len(), "{done:?}");
        assert_eq!(Store::open(&path).unwrap().check_file(), Ok(()));
    }

    #[test]
    fn a_store_failure_is_told_from_other_failures() {
        let full = anyhow::Error::from(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        ))
        .context("cannot commit to the store");
        assert!(is_store_failure(&full) && !is_corrupt(&full));
        assert!(!is_store_failure(&anyhow::anyhow!("a folder could not be walked")));
    }
}
