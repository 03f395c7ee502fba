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

/// The tables and their indexes. `story_sums` numbers its (story, feed) rows (`m`), and each
/// `story_cover` row is two numbers and three values: (m, n) names the story, the feed and the
/// item (`story_items.n`) in a few bytes, where the first form spelt out two 36-character ids
/// and a feed in it and in each of three indexes.
const TABLES: &str = "
CREATE TABLE IF NOT EXISTS story_sums(
    m INTEGER PRIMARY KEY,
    story TEXT NOT NULL,
    feed TEXT NOT NULL,
    members INTEGER NOT NULL,
    updated_sum INTEGER NOT NULL,
    updated_max INTEGER NOT NULL,
    published_sum INTEGER NOT NULL,
    published_max INTEGER NOT NULL,
    quality_sum INTEGER NOT NULL,
    rated INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS story_sums_by_story ON story_sums(story, feed);
CREATE TABLE IF NOT EXISTS story_cover(
    m INTEGER NOT NULL,
    n INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    published INTEGER NOT NULL,
    quality INTEGER,
    PRIMARY KEY(m, n)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS story_cover_by_item ON story_cover(n);

CREATE TRIGGER IF NOT EXISTS story_cover_added AFTER INSERT ON story_cover BEGIN
    UPDATE story_sums SET members = members + 1, updated_sum = updated_sum + NEW.updated,
        updated_max = CASE WHEN members = 0 THEN NEW.updated ELSE max(updated_max, NEW.updated) END,
        published_sum = published_sum + NEW.published,
        published_max = CASE WHEN members = 0 THEN NEW.published ELSE max(published_max, NEW.published) END,
        quality_sum = quality_sum + COALESCE(NEW.quality, 0), rated = rated + (NEW.quality IS NOT NULL)
    WHERE m = NEW.m;
END;
CREATE TRIGGER IF NOT EXISTS story_cover_taken AFTER DELETE ON story_cover BEGIN
    UPDATE story_sums SET members = members - 1, updated_sum = updated_sum - OLD.updated,
        published_sum = published_sum - OLD.published, quality_sum = quality_sum - COALESCE(OLD.quality, 0),
        rated = rated - (OLD.quality IS NOT NULL)
    WHERE m = OLD.m;
    DELETE FROM story_sums WHERE m = OLD.m AND members <= 0;
    UPDATE story_sums SET updated_max = (SELECT MAX(c.updated) FROM story_cover c WHERE c.m = OLD.m)
    WHERE m = OLD.m AND updated_max = OLD.updated;
    UPDATE story_sums SET published_max = (SELECT MAX(c.published) FROM story_cover c WHERE c.m = OLD.m)
    WHERE m = OLD.m AND published_max = OLD.published;
END;
";

/// The rows of the items `filter` picks (over `s` story items, `i` items, `l` open slots), made
/// again: the (story, feed) rows of `story_sums` they need, then the `story_cover` rows, whose
/// trigger adds them to the sums. A (story, feed) row is made only where a cover row follows.
fn cover(filter: &str) -> String {
    let from =
        "FROM story_items s JOIN items i ON i.id = s.item JOIN feed_log l ON l.id = s.item AND l.left_at IS NULL";
    format!(
        "INSERT INTO story_sums(story, feed, members, updated_sum, updated_max, published_sum, published_max,
             quality_sum, rated)
         SELECT s.story, l.feed, 0, 0, 0, 0, 0, 0, 0 {from} WHERE ({filter}) AND i.deleted_at IS NULL
         ON CONFLICT(story, feed) DO NOTHING;
         INSERT OR IGNORE INTO story_cover(m, n, updated, published, quality)
         SELECT x.m, s.n, i.updated, i.published, i.quality {from}
         JOIN story_sums x ON x.story = s.story AND x.feed = l.feed
         WHERE ({filter}) AND i.deleted_at IS NULL;"
    )
}

/// Deletes the cover rows of item `n` (an SQL expression) in feed `feed`.
fn uncover(n: &str, feed: &str) -> String {
    format!(
        "DELETE FROM story_cover WHERE n = {n} AND (SELECT x.feed FROM story_sums x WHERE x.m = story_cover.m) = {feed};"
    )
}

/// The number of the item with id `id` (an SQL expression).
fn number(id: &str) -> String {
    format!("(SELECT n FROM story_items WHERE item = {id})")
}

/// The tables, their indexes and the triggers that keep them.
fn schema() -> String {
    let (new_n, old_n) = (number("NEW.id"), number("OLD.id"));
    let on_items = format!(
        "CREATE TRIGGER IF NOT EXISTS story_cover_item_in AFTER INSERT ON items BEGIN
             DELETE FROM story_cover WHERE n = {new_n};
             {}
         END;
         CREATE TRIGGER IF NOT EXISTS story_cover_item_changed
         AFTER UPDATE OF id, updated, published, quality, deleted_at ON items
         WHEN OLD.id IS NOT NEW.id OR OLD.updated IS NOT NEW.updated OR OLD.published IS NOT NEW.published
             OR OLD.quality IS NOT NEW.quality OR OLD.deleted_at IS NOT NEW.deleted_at BEGIN
             DELETE FROM story_cover WHERE n = {old_n};
             DELETE FROM story_cover WHERE n = {new_n};
             {}
         END;
         CREATE TRIGGER IF NOT EXISTS story_cover_item_out AFTER DELETE ON items BEGIN
             DELETE FROM story_cover WHERE n = {old_n};
         END;",
        cover("s.item = NEW.id"),
        cover("s.item IN (OLD.id, NEW.id)"),
    );
    let on_stories = format!(
        "CREATE TRIGGER IF NOT EXISTS story_cover_story_in AFTER INSERT ON story_items BEGIN
             DELETE FROM story_cover WHERE n = NEW.n;
             {}
         END;
         CREATE TRIGGER IF NOT EXISTS story_cover_story_moved AFTER UPDATE OF n, item, story ON story_items
         WHEN OLD.n IS NOT NEW.n OR OLD.item IS NOT NEW.item OR OLD.story IS NOT NEW.story BEGIN
             DELETE FROM story_cover WHERE n = OLD.n;
             DELETE FROM story_cover WHERE n = NEW.n;
             {}
         END;
         CREATE TRIGGER IF NOT EXISTS story_cover_story_out AFTER DELETE ON story_items BEGIN
             DELETE FROM story_cover WHERE n = OLD.n;
         END;",
        cover("s.n = NEW.n"),
        cover("s.n IN (OLD.n, NEW.n)"),
    );
    let on_slots = format!(
        "CREATE TRIGGER IF NOT EXISTS story_cover_slot_in AFTER INSERT ON feed_log WHEN NEW.left_at IS NULL BEGIN
             {}
             {}
         END;
         CREATE TRIGGER IF NOT EXISTS story_cover_slot_moved AFTER UPDATE OF left_at, id, feed ON feed_log BEGIN
             {}
             {}
             {}
         END;
         CREATE TRIGGER IF NOT EXISTS story_cover_slot_out AFTER DELETE ON feed_log WHEN OLD.left_at IS NULL BEGIN
             {}
             {}
         END;",
        uncover(&new_n, "NEW.feed"),
        cover("s.item = NEW.id AND l.feed = NEW.feed"),
        uncover(&old_n, "OLD.feed"),
        uncover(&new_n, "NEW.feed"),
        cover("s.item IN (OLD.id, NEW.id) AND l.feed IN (OLD.feed, NEW.feed)"),
        uncover(&old_n, "OLD.feed"),
        cover("s.item = OLD.id AND l.feed = OLD.feed"),
    );
    format!("{TABLES}\n{on_slots}\n{on_items}\n{on_stories}")
}

/// Every trigger of [`schema`], by name: the move from the first form drops them, as they
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

/// Makes the tables and their triggers, and fills them once (a store written before them, or
/// with their first form, which is dropped first: both are caches). Later writes keep them.
/// Idempotent: it starts from empty tables, and the meta key marks it done.
pub(super) fn migrate_story_cover(conn: &Connection) -> Result<()> {
    if super::schema::migrated(conn, MIGRATED)? {
        conn.execute_batch(&schema())?;
        return Ok(());
    }
    let started = std::time::Instant::now();
    // Outside a transaction, the write lock is taken first (`BEGIN IMMEDIATE` waits for it under
    // the busy timeout): a savepoint alone begins a deferred transaction, whose first write,
    // after the schema is read, fails at once with "database is locked" when the checkpoint
    // thread holds the lock for the truncation it tries once changes stop, which is just when
    // a cold build ends.
    // (As `schema::begin_migration` does; here by hand, since a cold build's end calls this
    // inside its own transaction too.) Its guard read again inside: another process that held
    // the lock may have filled the tables meanwhile.
    let own = conn.is_autocommit();
    if own {
        conn.execute_batch("BEGIN IMMEDIATE;")?;
        let done = super::schema::migrated(conn, MIGRATED).and_then(|done| {
            if done {
                conn.execute_batch(&schema())?;
            }
            Ok(done)
        });
        if !matches!(done, Ok(false)) {
            let ended = conn.execute_batch(if done.is_ok() { "COMMIT;" } else { "ROLLBACK;" });
            return done.and(ended.map_err(Into::into)).map(|_| ());
        }
    }
    // Every row, the full computation: the same statements as a trigger's, for every item.
    let filled = conn.execute_batch("SAVEPOINT story_cover_fill;").map_err(anyhow::Error::from).and_then(|()| {
        drop_story_cover(conn)?;
        conn.execute_batch(&format!(
            "{}
             {}
             DELETE FROM meta WHERE key='migrated_story_cover';
             INSERT OR REPLACE INTO meta(key, value) VALUES('{MIGRATED}', '1');
             RELEASE story_cover_fill;",
            schema(),
            cover("1")
        ))?;
        Ok(())
    });
    if let Err(e) = filled {
        // Undone and ended (a store busy with another connection, a full disk): left open, the
        // savepoint would hold every later transaction off for good ("cannot start a
        // transaction within a transaction"). Where SQLite rolled it back itself, there is no
        // savepoint left to end.
        let _ = conn.execute_batch("ROLLBACK TO story_cover_fill; RELEASE story_cover_fill;");
        if own && !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK;");
        }
        return Err(e);
    }
    if own && let Err(e) = conn.execute_batch("COMMIT;") {
        let _ = conn.execute_batch("ROLLBACK;");
        return Err(e.into());
    }
    tracing::debug!(ms = started.elapsed().as_millis() as u64, "story coverage filled");
    Ok(())
}

/// The triggers that follow `feed_log` (the first two of [`TRIGGERS`] follow `story_cover`).
const SLOT_TRIGGERS: [&str; 3] = ["story_cover_slot_in", "story_cover_slot_moved", "story_cover_slot_out"];

/// The slot moves of [`slots_held`], as the writes fill it: each (feed, item id) pair whose
/// open slot the writes may change, and whether the pair has an open slot once they are done
/// (`open`): what the coverage pass reads instead of a seek into the feed log for each pair.
pub(super) const MOVES: &str = "CREATE TEMP TABLE IF NOT EXISTS slot_moves(id TEXT NOT NULL, feed TEXT NOT NULL,
         open INTEGER NOT NULL, PRIMARY KEY(id, feed)) WITHOUT ROWID;
     DELETE FROM temp.slot_moves;";

/// The triggers that keep the sums of `story_cover` (the first two of [`TRIGGERS`]).
const SUM_TRIGGERS: [&str; 2] = ["story_cover_added", "story_cover_taken"];

/// Runs `write`, which changes the open slots in `feed_log` of the (feed, item) pairs it puts in
/// `temp.slot_moves` (see [`MOVES`]; each with whether it ends with an open slot) and nothing
/// else, with the triggers on `feed_log` held off;
/// then works the coverage of those pairs out again once ([`cover_moved`]): their rows taken
/// out and made again from the slots open now. That is what the triggers do row by row (each
/// slot change takes the item's rows in that feed out and makes them again from the open
/// slots), done once for every pair, in the same transaction. Exactly the triggers it dropped
/// are made again (from their own text), whatever happens: none while a cold build has set the
/// coverage aside (`suspend`; its end fills the tables), and then the coverage is not worked
/// out either.
pub(super) fn slots_held<T>(conn: &Connection, write: impl FnOnce() -> Result<T>) -> Result<T> {
    triggers_held(conn, &SLOT_TRIGGERS, |kept| {
        let out = write()?;
        if kept {
            triggers_held(conn, &SUM_TRIGGERS, |_| cover_moved(conn))?;
        }
        conn.execute_batch("DELETE FROM temp.slot_moves;")?;
        Ok(out)
    })
}

/// Runs `f` with the triggers `names` dropped, and makes again exactly those that were there
/// (from their own text) whatever `f` gives; `f` is told whether any was.
fn triggers_held<T>(conn: &Connection, names: &[&str], f: impl FnOnce(bool) -> Result<T>) -> Result<T> {
    let held: Vec<String> = {
        let list = names.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", ");
        let mut stmt = conn.prepare(&format!(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name IN ({list}) ORDER BY name"
        ))?;
        stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
    };
    let drops: String = names.iter().map(|t| format!("DROP TRIGGER IF EXISTS {t};\n")).collect();
    conn.execute_batch(&drops)?;
    let out = f(!held.is_empty());
    for sql in &held {
        conn.execute_batch(sql)?;
    }
    out
}

/// The values of a cover row: an item's `updated`, `published` and `quality`.
type CoverValues = (i64, i64, Option<i64>);

/// What the rows that came into and went out of one (story, feed) add to its sums.
#[derive(Debug, Default)]
struct SumsDelta {
    members: i64,
    updated_sum: i64,
    published_sum: i64,
    quality_sum: i64,
    rated: i64,
    /// The largest values that came in.
    maxima: Option<(i64, i64)>,
    /// Whether a row went out (its maxima are then read again from the rows left).
    taken: bool,
}

impl SumsDelta {
    fn add(&mut self, (updated, published, quality): CoverValues, sign: i64) {
        self.members += sign;
        self.updated_sum += sign * updated;
        self.published_sum += sign * published;
        self.quality_sum += sign * quality.unwrap_or(0);
        self.rated += sign * i64::from(quality.is_some());
        if sign > 0 {
            let (u, p) = self.maxima.unwrap_or((updated, published));
            self.maxima = Some((u.max(updated), p.max(published)));
        } else {
            self.taken = true;
        }
    }
}

/// The coverage of every pair in `temp.slot_moves` made again from the slots open now, with the
/// sums' triggers held off (see [`slots_held`]): what the triggers leave, written once. The
/// pairs are read in the temp table's order (their items by id), each pair's cover row taken
/// out where its story has sums in that feed and put back where the item is live with an open
/// slot there, as the pair's `open` says (no seek into the feed log); the sums looked up in
/// (story, feed) order, the rows written in (m, n) order; and each (story, feed)'s sums changed
/// once by what came and went: its maxima read again from its rows when a row went, a (story,
/// feed) with nothing visible left dropped, one whose first row comes made.
fn cover_moved(conn: &Connection) -> Result<()> {
    // (story, feed, item number, the values when its slot there is open and it is live)
    let mut pairs: Vec<(String, String, i64, Option<CoverValues>)> = conn
        .prepare(
            "SELECT s.story, r.feed, s.n, i.updated, i.published, i.quality,
                 i.key IS NOT NULL AND i.deleted_at IS NULL AND r.open
             FROM temp.slot_moves r CROSS JOIN story_items s ON s.item = r.id LEFT JOIN items i ON i.id = s.item
             ORDER BY r.id, r.feed",
        )?
        .query_map([], |r| {
            let open: bool = r.get(6)?;
            let values = if open { Some((r.get(3)?, r.get(4)?, r.get(5)?)) } else { None };
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, values))
        })?
        .collect::<rusqlite::Result<_>>()?;
    pairs.sort_unstable_by(|a, b| (&a.0, &a.1, a.2).cmp(&(&b.0, &b.1, b.2)));
    let mut find = conn.prepare_cached("SELECT m FROM story_sums WHERE story=?1 AND feed=?2")?;
    let mut make = conn.prepare_cached(
        "INSERT INTO story_sums(story, feed, members, updated_sum, updated_max, published_sum, published_max,
             quality_sum, rated) VALUES(?1, ?2, 0, 0, 0, 0, 0, 0, 0)",
    )?;
    // (m, whether its sums were there before, item number, values)
    let mut rows: Vec<(i64, bool, i64, Option<CoverValues>)> = Vec::with_capacity(pairs.len());
    for group in pairs.chunk_by(|a, b| (&a.0, &a.1) == (&b.0, &b.1)) {
        let (story, feed) = (&group[0].0, &group[0].1);
        let (m, was) = match find.query_row([story, feed], |r| r.get(0)).optional()? {
            Some(m) => (m, true),
            None if group.iter().any(|p| p.3.is_some()) => {
                make.execute([story, feed])?;
                (conn.last_insert_rowid(), false)
            }
            None => continue,
        };
        rows.extend(group.iter().map(|p| (m, was, p.2, p.3)));
    }
    rows.sort_unstable_by_key(|r| (r.0, r.2));
    let mut take =
        conn.prepare_cached("DELETE FROM story_cover WHERE m=?1 AND n=?2 RETURNING updated, published, quality")?;
    let mut put =
        conn.prepare_cached("INSERT INTO story_cover(m, n, updated, published, quality) VALUES(?1, ?2, ?3, ?4, ?5)")?;
    let mut deltas: Vec<(i64, SumsDelta)> = Vec::new();
    for (m, was, n, values) in rows {
        if deltas.last().is_none_or(|d| d.0 != m) {
            deltas.push((m, SumsDelta::default()));
        }
        let delta = &mut deltas.last_mut().expect("pushed above").1;
        if was {
            let gone: Option<CoverValues> =
                take.query_row([m, n], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional()?;
            if let Some(gone) = gone {
                delta.add(gone, -1);
            }
        }
        if let Some(values @ (updated, published, quality)) = values {
            put.execute(rusqlite::params![m, n, updated, published, quality])?;
            delta.add(values, 1);
        }
    }
    let mut read = conn.prepare_cached("SELECT members, updated_max, published_max FROM story_sums WHERE m=?1")?;
    let mut maxima = conn.prepare_cached("SELECT MAX(updated), MAX(published) FROM story_cover WHERE m=?1")?;
    let mut drop = conn.prepare_cached("DELETE FROM story_sums WHERE m=?1")?;
    let mut write = conn.prepare_cached(
        "UPDATE story_sums SET members = members + ?2, updated_sum = updated_sum + ?3, updated_max = ?4,
             published_sum = published_sum + ?5, published_max = ?6, quality_sum = quality_sum + ?7,
             rated = rated + ?8
         WHERE m = ?1",
    )?;
    for (m, d) in deltas {
        let (members, updated_max, published_max): (i64, i64, i64) =
            read.query_row([m], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        if members + d.members <= 0 {
            drop.execute([m])?;
            continue;
        }
        let (updated_max, published_max) = match (d.taken, d.maxima) {
            (true, _) => maxima.query_row([m], |r| Ok((r.get(0)?, r.get(1)?)))?,
            (false, Some((u, p))) if members > 0 => (updated_max.max(u), published_max.max(p)),
            (false, Some(came)) => came,
            (false, None) => (updated_max, published_max),
        };
        write.execute(rusqlite::params![
            m,
            d.members,
            d.updated_sum,
            updated_max,
            d.published_sum,
            published_max,
            d.quality_sum,
            d.rated
        ])?;
    }
    Ok(())
}

/// Sets the coverage aside for a cold build (`store/bulk.rs`): the triggers dropped and the mark
/// that the tables are filled deleted, so that [`migrate_story_cover`] fills them again from the
/// rows at the build's end, or at the next open after a crash. The rows are left to that fill.
pub(super) fn suspend(conn: &Connection) -> Result<()> {
    let drops: String = TRIGGERS.iter().map(|t| format!("DROP TRIGGER IF EXISTS {t};\n")).collect();
    conn.execute_batch(&format!("{drops}\nDELETE FROM meta WHERE key='{MIGRATED}';"))?;
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
const COVERAGE: &str = "SELECT x.feed, x.story, x.members, x.updated_sum, x.updated_max,
    x.published_sum, x.published_max, x.quality_sum, x.rated,
    (SELECT s.item FROM story_items s WHERE s.n = (SELECT MIN(c.n) FROM story_cover c WHERE c.m = x.m)),
    (SELECT s.item FROM story_items s WHERE s.n = (SELECT MAX(c.n) FROM story_cover c WHERE c.m = x.m))
    FROM story_sums x WHERE x.story = ?1 ORDER BY x.feed";

impl Batch<'_> {
    /// What each feed's readers may see of `story` (its live members with an open slot in that
    /// feed's log: the visibility rule), one row per feed, by feed.
    pub(crate) fn story_coverage(&self, story: &str) -> Result<Vec<Coverage>> {
        if let Some(rows) = self.cold_coverage(story)? {
            return Ok(rows);
        }
        let mut stmt = self.tx.prepare_cached(COVERAGE)?;
        let rows = stmt.query_map([story], super::story_log::coverage_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
#[path = "story_cover_tests.rs"]
mod tests;
