//! Key notes: per file, the front-matter keys spelt close to a key clipfeed reads (names only,
//! never values), so that `/api/status` and the log can summarise them over every file, across
//! restarts, without reading the files again.

use anyhow::Result;
use rusqlite::params;

use super::{Batch, FileId};
use crate::clip::KeyNote;

impl Batch<'_> {
    /// Replaces a file's notes. Returns whether the store's notes changed.
    pub(crate) fn put_key_notes(&self, id: &FileId, notes: &[KeyNote]) -> Result<bool> {
        let dropped = self.drop_key_notes(id)?;
        let mut insert = self.tx.prepare_cached(
            "INSERT OR REPLACE INTO key_notes(root, path, key, suggestion, read) VALUES(?1, ?2, ?3, ?4, ?5)",
        )?;
        for n in notes {
            insert.execute(params![id.root, id.path, n.key, n.suggestion, n.read])?;
        }
        Ok(dropped || !notes.is_empty())
    }

    /// Forgets a file's notes. Returns whether it had any.
    pub(crate) fn drop_key_notes(&self, id: &FileId) -> Result<bool> {
        let n =
            self.tx.prepare_cached("DELETE FROM key_notes WHERE root=?1 AND path=?2")?.execute([&id.root, &id.path])?;
        Ok(n > 0)
    }

    /// Every file's notes as (path relative to its root, note), by key then path.
    pub(crate) fn key_notes(&self) -> Result<Vec<(String, KeyNote)>> {
        let mut stmt =
            self.tx.prepare_cached("SELECT path, key, suggestion, read FROM key_notes ORDER BY key, path, root")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, KeyNote { key: r.get(1)?, suggestion: r.get(2)?, read: r.get(3)? })))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use crate::clip::KeyNote;
    use crate::store::{FileId, Store};

    #[test]
    fn notes_are_replaced_per_file_and_dropped_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        let b = store.batch().unwrap();
        let note = |k: &str, s: &str| KeyNote { key: k.into(), suggestion: s.into(), read: false };
        let (a, c) =
            (FileId { root: "/r".into(), path: "a.md".into() }, FileId { root: "/r".into(), path: "c.md".into() });
        assert!(b.put_key_notes(&a, &[note("topic", "topics"), note("titel", "title")]).unwrap());
        assert!(b.put_key_notes(&c, &[note("topic", "topics")]).unwrap());
        assert!(!b.put_key_notes(&FileId { root: "/r".into(), path: "clean.md".into() }, &[]).unwrap());
        let paths = |b: &crate::store::Batch<'_>| -> Vec<(String, String)> {
            b.key_notes().unwrap().into_iter().map(|(p, n)| (p, n.key)).collect()
        };
        let want = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter().map(|(p, k)| (p.to_string(), k.to_string())).collect()
        };
        assert_eq!(paths(&b), want(&[("a.md", "titel"), ("a.md", "topic"), ("c.md", "topic")]));
        assert!(b.put_key_notes(&a, &[note("titel", "title")]).unwrap());
        assert_eq!(paths(&b), want(&[("a.md", "titel"), ("c.md", "topic")]));
        assert!(b.drop_key_notes(&c).unwrap());
        assert!(!b.drop_key_notes(&c).unwrap());
        assert_eq!(paths(&b), want(&[("a.md", "titel")]));
    }
}
