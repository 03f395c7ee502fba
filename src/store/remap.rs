//! The read of a topic remap: every open slot in one pass ([`OpenSlots`]), then the live items, a
//! chunk at a time in key order, each with what is stored of it, the feeds it has an open slot
//! in, and its record (its merged data: all its topics depend on), each table read in its own
//! order (no seek into an index per item). The remap works out the new memberships in
//! memory from these and writes back only what differs: the items whose topics change
//! (`retopic_all`, each table in its order), their feed-log moves set-based (`move_slots`), and
//! their search columns in the index's rowid order, the index's merging held off.

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use std::collections::{HashMap, HashSet};

use super::records::Record;
use super::{Batch, from_ts, ts};
use crate::feed::FeedKey;
use crate::item::{Item, ItemData, TopicRef};
use crate::search::IndexDoc;

/// A live item as a remap needs it: what is stored of it, the feeds it is in, and whether any
/// file still names it.
#[derive(Debug, Clone)]
pub struct RemapRow {
    pub(crate) key: String,
    pub(crate) id: String,
    pub(crate) first_seen: DateTime<Utc>,
    pub(crate) updated: DateTime<Utc>,
    /// Hash of everything stored of the item.
    pub(crate) hash: String,
    /// The feeds (path stems) in which it has an open slot: the feeds it is in.
    pub(crate) feeds: Vec<String>,
    /// The item's record (its merged data, `ItemData`); `None` when no file names it any more.
    pub(crate) record: Option<Record>,
}

/// An item whose topics a remap changes, all its writes worked out (off the writer thread):
/// nothing else of it changes (its clipping, its times, its news site and its quality are as
/// they were), so only its topics, hashes, record, topic rows and search columns are written.
#[derive(Debug, Clone)]
pub struct Retopic {
    pub(crate) key: String,
    pub(crate) id: String,
    pub(crate) published: DateTime<Utc>,
    /// Its new topics, and the hashes of everything stored and of what feeds show with them.
    pub(crate) topics: Vec<TopicRef>,
    pub(crate) hash: String,
    pub(crate) shown: String,
    /// Its record with the new topics, encoded (`records::encode`).
    pub(crate) record: Vec<u8>,
    /// Its search-index columns with the new topics.
    pub(crate) doc: IndexDoc,
}

/// Every open slot of the store, as (item, feed) pairs, read once at the start of a remap's plan
/// in one pass over the feed log in its own order, instead of a seek into the index of open
/// slots for each of the live items: an item's id is held as the 128 bits of its
/// UUID (every id `item::id_for` makes is one; anything else by a 128-bit hash) and each feed as
/// its number in `feeds`, 32 bytes a slot.
#[derive(Debug, Default)]
pub struct OpenSlots {
    /// (the item's id as 128 bits, number of the feed), sorted.
    pairs: Vec<(u128, u32)>,
    /// The feeds' path stems, by number.
    feeds: Vec<String>,
}

impl OpenSlots {
    /// The feeds (path stems) in which the item `id` has an open slot, in the order of their
    /// numbers.
    pub(crate) fn of(&self, id: &str) -> Vec<String> {
        let h = id_bits(id);
        let start = self.pairs.partition_point(|p| p.0 < h);
        self.pairs[start..].iter().take_while(|p| p.0 == h).map(|p| self.feeds[p.1 as usize].clone()).collect()
    }
}

/// An item's id as 128 bits: its UUID's own, so that two ids never meet; an id that is no UUID
/// (none the daemon makes) by its hash.
fn id_bits(id: &str) -> u128 {
    uuid::Uuid::try_parse(id).map_or_else(|_| xxhash_rust::xxh3::xxh3_128(id.as_bytes()), |u| u.as_u128())
}

impl Batch<'_> {
    /// Reads every open slot of the store in one pass over the feed log in its own order (by
    /// feed, then position), closed slots skipped. Not through the index of open slots
    /// (`feed_log_open_by_id`): SQLite does not count a partial index's `left_at IS NULL` as
    /// answering the query's own, so the scan read each entry's row from the table, a seek by
    /// (feed, pos) per open slot: 6.5 % of a reload's samples at 100,000, 0.7 % this way.
    pub(crate) fn every_open_slot(&self) -> Result<OpenSlots> {
        let mut stmt = self.tx.prepare_cached("SELECT feed, id FROM feed_log NOT INDEXED WHERE left_at IS NULL")?;
        let mut rows = stmt.query([])?;
        let (mut out, mut numbers) = (OpenSlots::default(), HashMap::<String, u32>::new());
        // The feed of the last row and its number: the rows come a feed at a time.
        let mut last: Option<u32> = None;
        while let Some(r) = rows.next()? {
            let feed = r.get_ref(0)?.as_str()?;
            let n = match last.filter(|n| out.feeds[*n as usize] == feed).or_else(|| numbers.get(feed).copied()) {
                Some(n) => n,
                None => {
                    let n = u32::try_from(out.feeds.len()).context("more than 2^32 feeds")?;
                    out.feeds.push(feed.to_string());
                    numbers.insert(feed.to_string(), n);
                    n
                }
            };
            last = Some(n);
            out.pairs.push((id_bits(r.get_ref(1)?.as_str()?), n));
        }
        out.pairs.sort_unstable();
        Ok(out)
    }

    /// The next `limit` live items after the key `after` (from the first with `""`), by key,
    /// each with its record when a file still names it, and its feeds from `open`. An item's
    /// topics depend on its merged clipping alone (`TopicInputs::resolve`), which its record
    /// holds, so its files' parses are not read. Every read goes through its table or index in
    /// its order: the items and the files naming them by key, the records by their rowid.
    pub(crate) fn remap_rows(&self, after: &str, limit: usize, open: &OpenSlots) -> Result<Vec<RemapRow>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT key, id, first_seen, updated, hash, rec FROM items
             WHERE deleted_at IS NULL AND key > ?1 ORDER BY key LIMIT ?2",
        )?;
        let mut rows: Vec<(RemapRow, Option<i64>)> = stmt
            .query_map(params![after, limit as i64], |r| {
                let row = RemapRow {
                    key: r.get(0)?,
                    feeds: open.of(r.get_ref(1)?.as_str()?),
                    id: r.get(1)?,
                    first_seen: from_ts(r.get(2)?),
                    updated: from_ts(r.get(3)?),
                    hash: r.get(4)?,
                    record: None,
                };
                Ok((row, r.get(5)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let Some(last) = rows.last().map(|(r, _)| r.key.clone()) else { return Ok(Vec::new()) };
        let named: HashSet<String> = self
            .tx
            .prepare_cached(
                "SELECT DISTINCT item_key FROM files INDEXED BY files_by_key WHERE item_key > ?1 AND item_key <= ?2",
            )?
            .query_map([after, last.as_str()], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut wanted: Vec<(i64, usize)> = rows
            .iter()
            .enumerate()
            .filter_map(|(i, (row, rec))| rec.filter(|_| named.contains(&row.key)).map(|rec| (rec, i)))
            .collect();
        wanted.sort_unstable();
        let mut record = self.tx.prepare_cached("SELECT data FROM item_records WHERE rowid=?1")?;
        for (rec, i) in wanted {
            rows[i].0.record = record.query_row([rec], |r| r.get(0)).optional()?;
        }
        Ok(rows.into_iter().map(|(row, _)| row).collect())
    }
}

/// A record holding `data`, for tests that make rows by hand.
/// The shown hash of `data`, whose JSON is `json`: cut from `json` rather than made again from
/// the fields (debug builds check the two agree; a JSON the cut cannot read falls back).
fn shown_hash(data: &ItemData, json: &[u8]) -> String {
    match ItemData::shown_hash_of_json(json) {
        Some(hash) => {
            debug_assert_eq!(hash, data.shown_hash(), "the shown hash cut from an item's JSON");
            hash
        }
        None => {
            debug_assert!(false, "an item's JSON the shown hash cannot be cut from");
            data.shown_hash()
        }
    }
}

impl Retopic {
    /// The writes of `item`, stored under `key`, once its topics are the new ones; `json` is
    /// its data's JSON (`ItemData::json`) and `hash` the hash of that (`ItemData::hash`).
    pub(crate) fn of(key: String, item: Item, json: &[u8], hash: String) -> Result<Retopic> {
        Ok(Retopic {
            record: super::records::encode_json(json)?,
            doc: IndexDoc::of(&item),
            shown: shown_hash(&item.data, json),
            topics: item.data.topics,
            published: item.data.published,
            id: item.id,
            key,
            hash,
        })
    }
}

impl Batch<'_> {
    /// Writes remapped items' new topics: their records, `items` rows (topics and hashes; their
    /// times stay, so no story-coverage trigger fires) and topic rows. Their search columns are
    /// left to [`Batch::index_retopics`], after every other write of the remap (which calls
    /// this for each chunk it has planned, while it plans the next, or once with every item
    /// when it could not).
    ///
    /// Each table is written in its own order (the items by key, the records by rowid, the topic
    /// rows by their key), so that writes one after the other fall on the same pages, and only
    /// the topic rows that change are deleted or added.
    pub(crate) fn retopic_all(&self, items: &[&Retopic]) -> Result<()> {
        let mut by_key: Vec<&Retopic> = items.to_vec();
        by_key.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        let mut read = self.tx.prepare_cached("SELECT topics, rec FROM items WHERE key=?1 AND deleted_at IS NULL")?;
        let mut update = self.tx.prepare_cached("UPDATE items SET topics=?2, hash=?3, shown=?4 WHERE key=?1")?;
        let (mut records, mut drops, mut adds) = (Vec::with_capacity(items.len()), Vec::new(), Vec::new());
        for r in by_key {
            let (old, rec): (String, Option<i64>) = read.query_row([&r.key], |row| Ok((row.get(0)?, row.get(1)?)))?;
            let slugs: Vec<&str> = r.topics.iter().map(|t| t.slug.as_str()).collect();
            update.execute(params![r.key, slugs.join(" "), r.hash, r.shown])?;
            let rec = rec.with_context(|| format!("item {} has no record to rewrite", r.key))?;
            records.push((rec, r));
            let published = ts(r.published);
            let old: Vec<String> = old.split(' ').filter(|s| !s.is_empty()).map(String::from).collect();
            drops.extend(
                old.iter().filter(|o| !slugs.contains(&o.as_str())).map(|o| (o.clone(), published, r.id.as_str())),
            );
            adds.extend(
                slugs
                    .iter()
                    .filter(|n| !old.iter().any(|o| o == *n))
                    .map(|n| (n.to_string(), published, r.id.as_str())),
            );
        }
        records.sort_unstable_by_key(|(rec, _)| *rec);
        let mut record = self.tx.prepare_cached("UPDATE item_records SET data=?2 WHERE rowid=?1")?;
        for (rec, r) in records {
            // A remap lets a record go once written; one let go is never written again.
            debug_assert!(!r.record.is_empty(), "item {}: its record was let go", r.key);
            let written = record.execute(params![rec, r.record])?;
            anyhow::ensure!(written == 1, "item {} has no record to rewrite", r.key);
        }
        // In the table's key order: slug, newest first, id.
        let order = |a: &(String, i64, &str), b: &(String, i64, &str)| (&a.0, b.1, a.2).cmp(&(&b.0, a.1, b.2));
        drops.sort_unstable_by(order);
        adds.sort_unstable_by(order);
        let mut del = self.tx.prepare_cached("DELETE FROM item_topics WHERE slug=?1 AND published=?2 AND id=?3")?;
        for (slug, published, id) in &drops {
            del.execute(params![slug, published, id])?;
        }
        let mut ins =
            self.tx.prepare_cached("INSERT OR IGNORE INTO item_topics(slug, published, id) VALUES(?1, ?2, ?3)")?;
        for (slug, published, id) in &adds {
            ins.execute(params![slug, published, id])?;
        }
        Ok(())
    }

    /// Indexes the remapped items' new search columns, one after the other with nothing in
    /// between, in the order of their documents' numbers (FTS5 rowids). FTS5 holds what it is
    /// given in memory, but writes it out as a segment whenever a document comes with a lower
    /// rowid than the last one: in any other order about every other item was a segment of its
    /// own, and merging those was most of the index's work. In rowid order (an item's delete
    /// and insert share its rowid) it writes a segment only when its memory is full. (Called
    /// for each chunk of a remap instead, the segments and their merging took more of the
    /// writer's time than the one call.)
    pub(crate) fn index_retopics(&self, items: &[&Retopic]) -> Result<()> {
        let mut doc = self.tx.prepare_cached("SELECT doc FROM search_docs WHERE id=?1")?;
        let mut order = Vec::with_capacity(items.len());
        for r in items {
            // An item not indexed yet gets a new number in its second: after the others.
            let n: Option<i64> = doc.query_row([&r.id], |row| row.get(0)).optional()?;
            order.push((n.unwrap_or(i64::MAX), r));
        }
        order.sort_unstable_by(|a, b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));
        super::fts::merges_held(&self.tx, || {
            for (_, r) in order {
                super::fts::put_doc(&self.tx, &r.id, r.published, &r.doc)?;
            }
            Ok(())
        })
    }
}

/// The page cache of a remap, in KiB: its reads and writes go by item all over the store (its
/// records, feed logs, stories and search index), so a larger cache than a cold build's
/// (`Store::begin_bulk`) spares reading back the pages a smaller one spills. Freed at its end.
const REMAP_CACHE_KIB: i64 = 64 * 1024;

impl super::Store {
    /// Begins a remap: [`super::Store::begin_bulk`] with the remap's larger page cache; ended by
    /// `end_bulk_cache` once its transaction is committed (or `end_bulk` if it fails).
    pub fn begin_remap(&self) -> Result<()> {
        self.begin_bulk()?;
        self.set_bulk_cache(REMAP_CACHE_KIB)
    }
}

impl Batch<'_> {
    /// Writes a remap's feed-log changes, as [`Batch::log_leave`] for each of `leaves` and then
    /// [`Batch::log_enter`] for each of `enters` in their order would (each feed's new slots
    /// numbered on from its last, in that order), with the coverage triggers on `feed_log` held
    /// off and the coverage of the moved pairs worked out again once at the end
    /// (`story_cover::slots_held`). Each statement goes through its rows in its index's order.
    pub(crate) fn move_slots(
        &self,
        leaves: &[(FeedKey, &str)],
        enters: &[(FeedKey, &str)],
        at: DateTime<Utc>,
    ) -> Result<()> {
        let stem = |pairs: &[(FeedKey, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(f, id)| (f.path_stem(), id.to_string())).collect()
        };
        let (leaves, enters) = (stem(leaves), stem(enters));
        // Each feed's new slots in the order given, numbered on from its last.
        let mut next: HashMap<&str, i64> = HashMap::new();
        let mut slots = Vec::with_capacity(enters.len());
        for (feed, id) in &enters {
            let pos = match next.get_mut(feed.as_str()) {
                Some(p) => p,
                None => next.entry(feed).or_insert(self.log_len_of(feed)?),
            };
            slots.push((feed.as_str(), *pos, id.as_str()));
            *pos += 1;
        }
        slots.sort_unstable();
        let mut by_id: Vec<(&str, &str)> =
            leaves.iter().chain(&enters).map(|(f, id)| (id.as_str(), f.as_str())).collect();
        by_id.sort_unstable();
        let mut by_feed = by_id.clone();
        by_feed.sort_unstable_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)));
        let entered: HashSet<(&str, &str)> = enters.iter().map(|(f, id)| (f.as_str(), id.as_str())).collect();
        let t = ts(at);
        self.tx.execute_batch(super::story_cover::MOVES)?;
        super::story_cover::slots_held(&self.tx, || {
            let mut mv =
                self.tx.prepare_cached("INSERT OR IGNORE INTO temp.slot_moves(id, feed, open) VALUES(?1, ?2, ?3)")?;
            let mut close = self.tx.prepare_cached(
                "UPDATE feed_log INDEXED BY feed_log_open_by_id SET left_at=?3 WHERE feed=?1 AND id=?2 AND left_at IS NULL",
            )?;
            for (id, feed) in &by_id {
                // Every pair's slot is closed here, and opened again below only if entered.
                mv.execute(params![id, feed, entered.contains(&(*feed, *id))])?;
                close.execute(params![feed, id, t])?;
            }
            let mut open =
                self.tx.prepare_cached("INSERT INTO feed_log(feed, pos, id, entered_at) VALUES(?1, ?2, ?3, ?4)")?;
            for (feed, pos, id) in &slots {
                open.execute(params![feed, pos, id, t])?;
            }
            let mut mark = self.tx.prepare_cached(
                "INSERT INTO tombstones(feed, id, at) VALUES(?1, ?2, ?3) ON CONFLICT(feed, id) DO UPDATE SET at=excluded.at",
            )?;
            let mut unmark = self.tx.prepare_cached("DELETE FROM tombstones WHERE feed=?1 AND id=?2")?;
            for (id, feed) in &by_feed {
                // A pair both left and entered ends entered, as one after the other would.
                match entered.contains(&(*feed, *id)) {
                    true => unmark.execute([feed, id])?,
                    false => mark.execute(params![feed, id, t])?,
                };
            }
            Ok(())
        })
    }

    /// Number of slots in the log of the feed with path stem `feed`.
    fn log_len_of(&self, feed: &str) -> Result<i64> {
        Ok(self
            .tx
            .prepare_cached("SELECT COALESCE(MAX(pos) + 1, 0) FROM feed_log WHERE feed=?1")?
            .query_row([feed], |r| r.get(0))?)
    }
}

#[cfg(test)]
pub(crate) fn record_of(data: &crate::item::ItemData) -> Record {
    use rusqlite::types::{FromSql, ValueRef};
    let json = serde_json::to_string(data).unwrap();
    Record::column_result(ValueRef::Text(json.as_bytes())).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clip::{Limits, parse};
    use crate::item::ItemData;
    use crate::store::{FileId, FileStat, Store};

    #[test]
    fn rows_carry_the_records_of_live_items_in_chunks_by_key() {
        let mut s = Store::open_in_memory().unwrap();
        let b = s.batch().unwrap();
        let clip = |t: &str| parse(format!("---\ntitle: {t}\n---\n").as_bytes(), Limits::default()).unwrap().clipping;
        let st = FileStat { size: 1, mtime_ns: 1 };
        let fid = |p: &str| FileId { root: "/r".into(), path: p.into() };
        b.put_file_ok(&fid("b.md"), st, "k1", &clip("B")).unwrap();
        b.put_file_ok(&fid("a.md"), st, "k1", &clip("A")).unwrap();
        b.put_file_ok(&fid("c.md"), st, "k2", &clip("C")).unwrap();
        let t = Utc::now();
        for (key, topics) in [("k1", &["ai"][..]), ("k2", &[]), ("k3", &[]), ("k4", &[])] {
            let it = crate::store::tests::item(key, "2024-01-01T00:00:00Z", topics);
            b.put_item(key, &it, t, &it.data.hash(), &it.data.shown_hash()).unwrap();
        }
        b.tombstone_item("k3", t).unwrap();
        let k1 = crate::item::id_for("k1");
        for f in ["feed", "topics/ai", "topics/old"] {
            b.log_enter(&crate::feed::FeedKey::from_stem(f).unwrap(), &k1, t).unwrap();
        }
        b.log_leave(&crate::feed::FeedKey::from_stem("topics/old").unwrap(), &k1, t).unwrap();
        let open = b.every_open_slot().unwrap();
        let rows = b.remap_rows("", 10, &open).unwrap();
        let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["k1", "k2", "k4"], "live items only");
        let data: ItemData = rows[0].record.as_ref().unwrap().decode().unwrap();
        assert_eq!(data.topics.iter().map(|t| t.slug.as_str()).collect::<Vec<_>>(), ["ai"]);
        assert_eq!(rows[0].id, k1);
        let mut feeds = rows[0].feeds.clone();
        feeds.sort();
        assert_eq!(feeds, ["feed", "topics/ai"], "the feeds with an open slot");
        assert!(rows[1].feeds.is_empty());
        assert!(rows[1].record.is_some());
        assert!(rows[2].record.is_none(), "no file names k4");
        // Chunks follow on by key.
        let first = b.remap_rows("", 1, &open).unwrap();
        assert_eq!(first.len(), 1);
        let next = b.remap_rows(&first[0].key, 1, &open).unwrap();
        assert_eq!(next.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["k2"]);
        assert!(b.remap_rows("k4", 10, &open).unwrap().is_empty());
    }

    #[test]
    fn open_slots_are_read_past_65536_feeds_and_kept_apart_by_id() {
        let mut s = Store::open_in_memory().unwrap();
        let b = s.batch().unwrap();
        // 70,000 news sites, each with one item in its feed (a feed per provider domain).
        b.tx.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 69999)
             INSERT INTO feed_log(feed, pos, id, entered_at) SELECT 'providers/d' || i, 1, 'id-' || i, 0 FROM n",
        )
        .unwrap();
        let (a, z) = (crate::item::id_for("a"), crate::item::id_for("z"));
        for (feed, id) in [("feed", &a), ("topics/x", &a), ("feed", &z)] {
            b.log_enter(&crate::feed::FeedKey::from_stem(feed).unwrap(), id, Utc::now()).unwrap();
        }
        // A closed slot, and an item that left a feed and came back (a closed and an open slot).
        b.log_leave(&crate::feed::FeedKey::from_stem("providers/d7").unwrap(), "id-7", Utc::now()).unwrap();
        for f in ["topics/x", "feed"] {
            b.log_leave(&crate::feed::FeedKey::from_stem(f).unwrap(), &z, Utc::now()).unwrap();
        }
        b.log_enter(&crate::feed::FeedKey::All, &z, Utc::now()).unwrap();
        let open = b.every_open_slot().unwrap();
        // The pairs the index of open slots holds, exactly.
        let mut indexed: Vec<(u128, String)> =
            b.tx.prepare("SELECT id, feed FROM feed_log INDEXED BY feed_log_open_by_id WHERE left_at IS NULL")
                .unwrap()
                .query_map([], |r| Ok((id_bits(r.get_ref(0)?.as_str()?), r.get(1)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect();
        indexed.sort();
        let read: Vec<(u128, String)> = open.pairs.iter().map(|(h, n)| (*h, open.feeds[*n as usize].clone())).collect();
        assert_eq!(read, indexed);
        assert!(open.of("id-7").is_empty());
        assert_eq!(open.of("id-0"), ["providers/d0"]);
        assert_eq!(open.of("id-69999"), ["providers/d69999"]);
        let mut of_a = open.of(&a);
        of_a.sort();
        assert_eq!(of_a, ["feed", "topics/x"]);
        assert_eq!(open.of(&z), ["feed"]);
        assert!(open.of(&crate::item::id_for("neither")).is_empty());
    }

    /// An item's key, topics, hash, shown hash and its record's topics.
    type HeldItem = (String, String, String, String, Vec<String>);

    /// What a store holds of its items' topics: each item's, and the topic rows.
    fn topics_held(b: &Batch<'_>) -> (Vec<HeldItem>, Vec<(String, i64, String)>) {
        let items = b
            .tx
            .prepare("SELECT key, topics, hash, shown, (SELECT data FROM item_records r WHERE r.rowid = i.rec) FROM items i ORDER BY key")
            .unwrap()
            .query_map([], |r| {
                let rec: Record = r.get(4)?;
                let data: ItemData = rec.decode().unwrap();
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, data.topics.into_iter().map(|t| t.slug).collect()))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let rows =
            b.tx.prepare("SELECT slug, published, id FROM item_topics ORDER BY slug, published, id")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect();
        (items, rows)
    }

    #[test]
    fn retopics_written_together_leave_what_putting_each_item_again_would() {
        let t = Utc::now();
        let before = [("k1", &["ai", "ml"][..]), ("k2", &["ml"]), ("k3", &["ai"]), ("k4", &[])];
        let after = [("k1", &["ml", "vision"][..]), ("k2", &[]), ("k3", &["ai", "robots"]), ("k4", &["vision"])];
        let (mut remapped, mut put) = (Store::open_in_memory().unwrap(), Store::open_in_memory().unwrap());
        let (b, p) = (remapped.batch().unwrap(), put.batch().unwrap());
        let day = |k: &str| format!("2024-01-0{}T00:00:00Z", &k[1..]);
        for (key, topics) in before {
            let it = crate::store::tests::item(key, &day(key), topics);
            b.put_item(key, &it, t, &it.data.hash(), &it.data.shown_hash()).unwrap();
        }
        // Given in an order unlike the tables' own.
        let mut retopics: Vec<Retopic> = after
            .iter()
            .rev()
            .map(|(key, topics)| {
                let it = crate::store::tests::item(key, &day(key), topics);
                let json = it.data.json();
                let hash = crate::item::ItemData::hash_of_json(&json);
                Retopic::of(key.to_string(), it, &json, hash).unwrap()
            })
            .collect();
        b.retopic_all(&retopics.iter().collect::<Vec<_>>()).unwrap();
        for (key, topics) in after {
            let it = crate::store::tests::item(key, &day(key), topics);
            p.put_item(key, &it, t, &it.data.hash(), &it.data.shown_hash()).unwrap();
        }
        let (held, expected) = (topics_held(&b), topics_held(&p));
        assert_eq!(held, expected);
        assert_eq!(held.0[0].1, "ml vision");
        assert_eq!(held.1.iter().filter(|r| r.0 == "vision").count(), 2);
        assert!(held.1.iter().all(|r| r.0 != "ai" || r.2 == crate::item::id_for("k3")));
        // An item with no record is an error, not a silent skip.
        b.tx.execute("UPDATE items SET rec = NULL WHERE key = 'k2'", []).unwrap();
        retopics.retain(|r| r.key == "k2");
        assert!(b.retopic_all(&retopics.iter().collect::<Vec<_>>()).is_err());
    }
}
