//! What each feed's readers see of each story, kept up to date by the store itself, so the
//! writer reads a story's [`Coverage`] in a few indexed lookups whatever the story's size.
//!
//! `story_cover` holds one row per (story, feed, item) for every live item of a story with an
//! open slot in that feed's `feed_log` (the visibility rule), with the values a story's coverage
//! is signed by, the item named by its number (`story_items.n`, a few bytes instead of its
//! 36-character id); `story_sums` holds the counts, sums and maxima of those rows per (story,
//! feed). SQLite triggers keep both in the transaction of every change to the tables they come
//! from (`story_items`, `items`, `feed_log`): each such change works the changed item's rows out
//! again from those tables (the same join as the full computation, for one item), and each row
//! in or out of `story_cover` adds to or takes from its sums. So whichever path changes an item,
//! its feeds or its story (a clipping, a remap, a merge, a split, a backfill), the aggregates
//! follow, and a change costs the rows of the item it changes, never those of its story. A
//! maximum is kept as rows come in; a row going out that held it reads the maximum of the rows
//! left (those of its story in that feed, from the primary key). The first and last members by
//! number come from the primary key at read time.
//!
//! Both tables are in `TABLES`: caches of the clippings, dropped by a rebuild with their
//! triggers and made again. A store written before them, or with their first form (items by id,
//! maxima from two more indexes: 193 MB at 100,000), is filled once (`migrate_story_cover`, meta
//! `migrated_story_cover_numbered`).

use anyhow::Result;
use rusqlite::{Connection, OptionalExtension};

use super::Batch;
use super::story_log::Coverage;

/// The tables, their indexes and the triggers that keep them, created in place on older stores
/// (after the tables they follow).
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS story_cover(
    story TEXT NOT NULL,
    feed TEXT NOT NULL,
    n INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    published INTEGER NOT NULL,
    quality INTEGER,
    PRIMARY KEY(story, feed, n)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS story_cover_by_item ON story_cover(n, feed);
CREATE TABLE IF NOT EXISTS story_sums(
    story TEXT NOT NULL,
    feed TEXT NOT NULL,
    members INTEGER NOT NULL,
    updated_sum INTEGER NOT NULL,
    updated_max INTEGER NOT NULL,
    published_sum INTEGER NOT NULL,
    published_max INTEGER NOT NULL,
    quality_sum INTEGER NOT NULL,
    rated INTEGER NOT NULL,
    PRIMARY KEY(story, feed)
) WITHOUT ROWID;

CREATE TRIGGER IF NOT EXISTS story_cover_added AFTER INSERT ON story_cover BEGIN
    INSERT INTO story_sums(story, feed, members, updated_sum, updated_max, published_sum, published_max,
        quality_sum, rated)
    VALUES(NEW.story, NEW.feed, 1, NEW.updated, NEW.updated, NEW.published, NEW.published,
        COALESCE(NEW.quality, 0), NEW.quality IS NOT NULL)
    ON CONFLICT(story, feed) DO UPDATE SET members = members + 1, updated_sum = updated_sum + NEW.updated,
        updated_max = max(updated_max, NEW.updated), published_sum = published_sum + NEW.published,
        published_max = max(published_max, NEW.published), quality_sum = quality_sum + COALESCE(NEW.quality, 0),
        rated = rated + (NEW.quality IS NOT NULL);
END;
CREATE TRIGGER IF NOT EXISTS story_cover_taken AFTER DELETE ON story_cover BEGIN
    UPDATE story_sums SET members = members - 1, updated_sum = updated_sum - OLD.updated,
        published_sum = published_sum - OLD.published, quality_sum = quality_sum - COALESCE(OLD.quality, 0),
        rated = rated - (OLD.quality IS NOT NULL)
    WHERE story = OLD.story AND feed = OLD.feed;
    DELETE FROM story_sums WHERE story = OLD.story AND feed = OLD.feed AND members <= 0;
    UPDATE story_sums SET updated_max = (SELECT MAX(c.updated) FROM story_cover c
        WHERE c.story = OLD.story AND c.feed = OLD.feed)
    WHERE story = OLD.story AND feed = OLD.feed AND updated_max = OLD.updated;
    UPDATE story_sums SET published_max = (SELECT MAX(c.published) FROM story_cover c
        WHERE c.story = OLD.story AND c.feed = OLD.feed)
    WHERE story = OLD.story AND feed = OLD.feed AND published_max = OLD.published;
END;

CREATE TRIGGER IF NOT EXISTS story_cover_slot_in AFTER INSERT ON feed_log WHEN NEW.left_at IS NULL BEGIN
    DELETE FROM story_cover WHERE n = (SELECT n FROM story_items WHERE item = NEW.id) AND feed = NEW.feed;
    INSERT OR IGNORE INTO story_cover(story, feed, n, updated, published, quality)
    SELECT s.story, l.feed, s.n, i.updated, i.published, i.quality
    FROM story_items s JOIN items i ON i.id = s.item JOIN feed_log l ON l.id = s.item AND l.left_at IS NULL
    WHERE s.item = NEW.id AND l.feed = NEW.feed AND i.deleted_at IS NULL;
END;
CREATE TRIGGER IF NOT EXISTS story_cover_slot_moved AFTER UPDATE OF left_at, id, feed ON feed_log BEGIN
    DELETE FROM story_cover WHERE n = (SELECT n FROM story_items WHERE item = OLD.id) AND feed = OLD.feed;
    DELETE FROM story_cover WHERE n = (SELECT n FROM story_items WHERE item = NEW.id) AND feed = NEW.feed;
    INSERT OR IGNORE INTO story_cover(story, feed, n, updated, published, quality)
    SELECT s.story, l.feed, s.n, i.updated, i.published, i.quality
    FROM story_items s JOIN items i ON i.id = s.item JOIN feed_log l ON l.id = s.item AND l.left_at IS NULL
    WHERE s.item IN (OLD.id, NEW.id) AND l.feed IN (OLD.feed, NEW.feed) AND i.deleted_at IS NULL;
END;
CREATE TRIGGER IF NOT EXISTS story_cover_slot_out AFTER DELETE ON feed_log WHEN OLD.left_at IS NULL BEGIN
    DELETE FROM story_cover WHERE n = (SELECT n FROM story_items WHERE item = OLD.id) AND feed = OLD.feed;
    INSERT OR IGNORE INTO story_cover(story, feed, n, updated, published, quality)
    SELECT s.story, l.feed, s.n, i.updated, i.published, i.quality
    FROM story_items s JOIN items i ON i.id = s.item JOIN feed_log l ON l.id = s.item AND l.left_at IS NULL
    WHERE s.item = OLD.id AND l.feed = OLD.feed AND i.deleted_at IS NULL;
END;

CREATE TRIGGER IF NOT EXISTS story_cover_item_in AFTER INSERT ON items BEGIN
    DELETE FROM story_cover WHERE n = (SELECT n FROM story_items WHERE item = NEW.id);
    INSERT OR IGNORE INTO story_cover(story, feed, n, updated, published, quality)
    SELECT s.story, l.feed, s.n, i.updated, i.published, i.quality
    FROM story_items s JOIN items i ON i.id = s.item JOIN feed_log l ON l.id = s.item AND l.left_at IS NULL
    WHERE s.item = NEW.id AND i.deleted_at IS NULL;
END;
CREATE TRIGGER IF NOT EXISTS story_cover_item_changed AFTER UPDATE OF id, updated, published, quality, deleted_at ON items
WHEN OLD.id IS NOT NEW.id OR OLD.updated IS NOT NEW.updated OR OLD.published IS NOT NEW.published
    OR OLD.quality IS NOT NEW.quality OR OLD.deleted_at IS NOT NEW.deleted_at BEGIN
    DELETE FROM story_cover WHERE n = (SELECT n FROM story_items WHERE item = OLD.id);
    DELETE FROM story_cover WHERE n = (SELECT n FROM story_items WHERE item = NEW.id);
    INSERT OR IGNORE INTO story_cover(story, feed, n, updated, published, quality)
    SELECT s.story, l.feed, s.n, i.updated, i.published, i.quality
    FROM story_items s JOIN items i ON i.id = s.item JOIN feed_log l ON l.id = s.item AND l.left_at IS NULL
    WHERE s.item IN (OLD.id, NEW.id) AND i.deleted_at IS NULL;
END;
CREATE TRIGGER IF NOT EXISTS story_cover_item_out AFTER DELETE ON items BEGIN
    DELETE FROM story_cover WHERE n = (SELECT n FROM story_items WHERE item = OLD.id);
END;

CREATE TRIGGER IF NOT EXISTS story_cover_story_in AFTER INSERT ON story_items BEGIN
    DELETE FROM story_cover WHERE n = NEW.n;
    INSERT OR IGNORE INTO story_cover(story, feed, n, updated, published, quality)
    SELECT s.story, l.feed, s.n, i.updated, i.published, i.quality
    FROM story_items s JOIN items i ON i.id = s.item JOIN feed_log l ON l.id = s.item AND l.left_at IS NULL
    WHERE s.n = NEW.n AND i.deleted_at IS NULL;
END;
CREATE TRIGGER IF NOT EXISTS story_cover_story_moved AFTER UPDATE OF n, item, story ON story_items
WHEN OLD.n IS NOT NEW.n OR OLD.item IS NOT NEW.item OR OLD.story IS NOT NEW.story BEGIN
    DELETE FROM story_cover WHERE n = OLD.n;
    DELETE FROM story_cover WHERE n = NEW.n;
    INSERT OR IGNORE INTO story_cover(story, feed, n, updated, published, quality)
    SELECT s.story, l.feed, s.n, i.updated, i.published, i.quality
    FROM story_items s JOIN items i ON i.id = s.item JOIN feed_log l ON l.id = s.item AND l.left_at IS NULL
    WHERE s.n IN (OLD.n, NEW.n) AND i.deleted_at IS NULL;
END;
CREATE TRIGGER IF NOT EXISTS story_cover_story_out AFTER DELETE ON story_items BEGIN
    DELETE FROM story_cover WHERE n = OLD.n;
END;
";

/// Every trigger of [`SCHEMA`], by name: the move from the first form drops them, as they
/// live on the tables `story_cover` follows and outlive its own drop.
const TRIGGERS: [&str; 11] = [
    "story_cover_added",
    "story_cover_taken",
    "story_cover_slot_in",
    "story_cover_slot_moved",
    "story_cover_slot_out",
    "story_cover_item_in",
    "story_cover_item_changed",
    "story_cover_item_out",
    "story_cover_story_in",
    "story_cover_story_moved",
    "story_cover_story_out",
];

/// The meta key set once `story_cover` and `story_sums` are filled in their numbered form (a
/// store with the first form, which named items by id and kept the maxima in two more
/// indexes, has `migrated_story_cover` instead: both are dropped and filled again).
const MIGRATED: &str = "migrated_story_cover_numbered";

/// Every (story, feed, item) row the triggers keep, from the tables they follow: the full
/// computation, for the one-off fill and for the tests.
const FULL: &str = "SELECT s.story, l.feed, s.n, i.updated, i.published, i.quality
    FROM story_items s JOIN items i ON i.id = s.item JOIN feed_log l ON l.id = s.item AND l.left_at IS NULL
    WHERE i.deleted_at IS NULL";

/// Makes the tables and their triggers, and fills them once (a store written before them, or
/// with their first form, which is dropped first: both are caches). Later writes keep them.
/// Idempotent: it starts from empty tables, and the meta key marks it done.
pub(super) fn migrate_story_cover(conn: &Connection) -> Result<()> {
    let done: Option<String> =
        conn.query_row("SELECT value FROM meta WHERE key=?1", [MIGRATED], |r| r.get(0)).optional()?;
    if done.is_some() {
        conn.execute_batch(SCHEMA)?;
        return Ok(());
    }
    let started = std::time::Instant::now();
    conn.execute_batch("SAVEPOINT story_cover_fill;")?;
    drop_story_cover(conn)?;
    conn.execute_batch(&format!(
        "{SCHEMA}
         INSERT OR IGNORE INTO story_cover(story, feed, n, updated, published, quality) {FULL};
         DELETE FROM meta WHERE key='migrated_story_cover';
         INSERT OR REPLACE INTO meta(key, value) VALUES('{MIGRATED}', '1');
         RELEASE story_cover_fill;"
    ))?;
    tracing::debug!(ms = started.elapsed().as_millis() as u64, "story coverage filled");
    Ok(())
}

/// Drops the tables and their triggers, and the mark that they are filled: for a move of the
/// tables they follow (the triggers name their columns), after which [`migrate_story_cover`]
/// makes and fills them again.
pub(super) fn drop_story_cover(conn: &Connection) -> Result<()> {
    let drops: String = TRIGGERS.iter().map(|t| format!("DROP TRIGGER IF EXISTS {t};\n")).collect();
    conn.execute_batch(&format!(
        "{drops}
         DROP TABLE IF EXISTS story_cover;
         DROP TABLE IF EXISTS story_sums;
         DELETE FROM meta WHERE key='{MIGRATED}';"
    ))?;
    Ok(())
}

/// Reads one story's [`Coverage`] per feed from the sums, with its first and last members (by
/// number) from the primary key: a few lookups per feed, whatever the story's size.
const COVERAGE: &str = "SELECT m.feed, m.story, m.members, m.updated_sum, m.updated_max,
    m.published_sum, m.published_max, m.quality_sum, m.rated,
    (SELECT s.item FROM story_items s WHERE s.n =
        (SELECT MIN(c.n) FROM story_cover c WHERE c.story = m.story AND c.feed = m.feed)),
    (SELECT s.item FROM story_items s WHERE s.n =
        (SELECT MAX(c.n) FROM story_cover c WHERE c.story = m.story AND c.feed = m.feed))
    FROM story_sums m WHERE m.story = ?1 ORDER BY m.feed";

impl Batch<'_> {
    /// What each feed's readers may see of `story` (its live members with an open slot in that
    /// feed's log: the visibility rule), one row per feed, by feed.
    pub(crate) fn story_coverage(&self, story: &str) -> Result<Vec<Coverage>> {
        let mut stmt = self.tx.prepare_cached(COVERAGE)?;
        let rows = stmt.query_map([story], super::story_log::coverage_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
#[path = "story_cover_tests.rs"]
mod tests;
