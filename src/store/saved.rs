//! What the store keeps that the clippings cannot give back: the token of each private feed,
//! and the published feeds saved at a clean stop for the next start.

use std::collections::HashMap;

use anyhow::Result;
use chrono::Utc;
use rusqlite::params;

use super::Batch;

impl Batch<'_> {
    /// Every private feed's token, by path stem.
    pub(crate) fn tokens(&self) -> Result<HashMap<String, String>> {
        let mut stmt = self.tx.prepare_cached("SELECT feed, token FROM tokens")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Sets (or replaces) a feed's token.
    pub(crate) fn set_token(&self, feed: &str, token: &str) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO tokens(feed, token, created) VALUES(?1, ?2, ?3)
                 ON CONFLICT(feed) DO UPDATE SET token=excluded.token, created=excluded.created",
            )?
            .execute(params![feed, token, Utc::now().timestamp()])?;
        Ok(())
    }

    /// Forgets a feed's token (the feed was made public with `private: false`).
    pub(crate) fn delete_token(&self, feed: &str) -> Result<()> {
        self.tx.prepare_cached("DELETE FROM tokens WHERE feed=?1")?.execute([feed])?;
        Ok(())
    }

    /// Replaces the saved feeds with those `feeds` yields (path stem, head, documents), one at a
    /// time, and marks them as rendered under `mark`. Returns how many were saved.
    pub(crate) fn save_snapshot(
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
    pub(crate) fn take_snapshot(&self, mark: &str, mut each: impl FnMut(String, Vec<u8>)) -> Result<()> {
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
}
