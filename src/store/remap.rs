//! The read of a topic remap: the live items, a chunk at a time in key order, each with what is
//! stored of it, the feeds it has an open slot in, and its record (its merged data: all its
//! topics depend on), in one statement per chunk. The remap works out the new memberships in
//! memory from these and writes back only what differs.

use anyhow::Result;
use chrono::{DateTime, Utc};
use rusqlite::params;

use super::records::{ITEM_RECORD, Record};
use super::{Batch, from_ts, ts};
use crate::item::{Item, TopicRef};
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

impl Batch<'_> {
    /// The next `limit` live items after the key `after` (from the first with `""`), by key,
    /// each with its record when a file still names it. An item's topics depend on its merged
    /// clipping alone (`item::resolve_topics`), which its record holds, so its files' parses
    /// are not read.
    pub(crate) fn remap_rows(&self, after: &str, limit: usize) -> Result<Vec<RemapRow>> {
        let sql = format!(
            "SELECT i.key, i.id, i.first_seen, i.updated, i.hash,
                    (SELECT group_concat(l.feed, char(10)) FROM feed_log l INDEXED BY feed_log_open_by_id
                     WHERE l.id = i.id AND l.left_at IS NULL),
                    CASE WHEN EXISTS(SELECT 1 FROM files f WHERE f.item_key = i.key) THEN {ITEM_RECORD} END
             FROM items i WHERE i.deleted_at IS NULL AND i.key > ?1 ORDER BY i.key LIMIT ?2"
        );
        let mut stmt = self.tx.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![after, limit as i64], |r| {
            Ok(RemapRow {
                key: r.get(0)?,
                id: r.get(1)?,
                first_seen: from_ts(r.get(2)?),
                updated: from_ts(r.get(3)?),
                hash: r.get(4)?,
                feeds: r.get::<_, Option<String>>(5)?.map_or(Vec::new(), |f| f.split('\n').map(String::from).collect()),
                record: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// A record holding `data`, for tests that make rows by hand.
impl Retopic {
    /// The writes of `item`, stored under `key`, once its topics are the new ones; `hash` is
    /// its data's (`ItemData::hash`).
    pub(crate) fn of(key: String, item: Item, hash: String) -> Result<Retopic> {
        Ok(Retopic {
            record: super::records::encode(&item.data)?,
            doc: IndexDoc::of(&item),
            shown: item.data.shown_hash(),
            topics: item.data.topics,
            published: item.data.published,
            id: item.id,
            key,
            hash,
        })
    }
}

impl Batch<'_> {
    /// Writes a remapped item's new topics: its record, `items` row (topics and hashes; its
    /// times stay, so no story-coverage trigger fires) and topic rows. Its search columns are
    /// left to [`Batch::index_retopics`], after every other write of the remap.
    pub(crate) fn retopic(&self, r: &Retopic) -> Result<()> {
        let slugs: Vec<&str> = r.topics.iter().map(|t| t.slug.as_str()).collect();
        let (old, rec): (String, Option<i64>) = self
            .tx
            .prepare_cached("SELECT topics, rec FROM items WHERE key=?1 AND deleted_at IS NULL")?
            .query_row([&r.key], |row| Ok((row.get(0)?, row.get(1)?)))?;
        self.tx.prepare_cached("UPDATE items SET topics=?2, hash=?3, shown=?4 WHERE key=?1")?.execute(params![
            r.key,
            slugs.join(" "),
            r.hash,
            r.shown
        ])?;
        let written = match rec {
            Some(rec) => self
                .tx
                .prepare_cached("UPDATE item_records SET data=?2 WHERE rowid=?1")?
                .execute(params![rec, r.record])?,
            None => 0,
        };
        anyhow::ensure!(written == 1, "item {} has no record to rewrite", r.key);
        let published = ts(r.published);
        self.drop_topic_rows(&r.id, &old, published)?;
        let mut ins =
            self.tx.prepare_cached("INSERT OR IGNORE INTO item_topics(slug, published, id) VALUES(?1, ?2, ?3)")?;
        for slug in slugs {
            ins.execute(params![slug, published, r.id])?;
        }
        Ok(())
    }

    /// Indexes the remapped items' new search columns, one after the other with nothing in
    /// between, so the index takes them in a few large segments (see `fts::put_doc`).
    pub(crate) fn index_retopics(&self, items: &[Retopic]) -> Result<()> {
        for r in items {
            super::fts::put_doc(&self.tx, &r.id, r.published, &r.doc)?;
        }
        Ok(())
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
        let rows = b.remap_rows("", 10).unwrap();
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
        let first = b.remap_rows("", 1).unwrap();
        assert_eq!(first.len(), 1);
        let next = b.remap_rows(&first[0].key, 1).unwrap();
        assert_eq!(next.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["k2"]);
        assert!(b.remap_rows("k4", 10).unwrap().is_empty());
    }
}
