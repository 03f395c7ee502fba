//! The read of a topic remap: the live items, a chunk at a time in key order, each with what is
//! stored of it, the feeds it has an open slot in, and the last good parse of each of its files,
//! in one statement per chunk. The remap works out the new
//! memberships in memory from these and writes back only what differs (through the ordinary item
//! and feed-log calls).

use anyhow::Result;
use chrono::{DateTime, Utc};
use rusqlite::params;

use super::records::{ITEM_RECORD, Record};
use super::{Batch, from_ts};
use crate::clip::Clipping;
use crate::item::ItemData;

/// A file's last good parse as stored: its own JSON, or (when it is its item's clipping, see
/// `store/records.rs`) its item's record.
#[derive(Debug, Clone)]
pub enum StoredParse {
    Own(String),
    Item(Record),
}

impl StoredParse {
    /// The clipping it holds.
    pub fn clipping(&self) -> Result<Clipping> {
        match self {
            StoredParse::Own(json) => Ok(serde_json::from_str(json)?),
            StoredParse::Item(record) => Ok(record.decode::<ItemData>()?.clip),
        }
    }
}

/// A live item as a remap needs it: what is stored of it, the feeds it is in, and its files'
/// parses (as stored).
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
    /// (path, the clipping's stored parse) of each file naming it, by path then root; empty
    /// when no file names it any more.
    pub(crate) sources: Vec<(String, StoredParse)>,
}

impl Batch<'_> {
    /// The next `limit` live items after the key `after` (from the first with `""`), by key,
    /// each with its files' stored parses.
    pub(crate) fn remap_rows(&self, after: &str, limit: usize) -> Result<Vec<RemapRow>> {
        let sql = format!(
            "SELECT i.key, i.id, i.first_seen, i.updated, i.hash, i.feeds, f.path, f.record,
                    CASE WHEN f.path IS NOT NULL AND f.record IS NULL THEN {ITEM_RECORD} END
             FROM (SELECT key, id, first_seen, updated, hash, rec,
                     (SELECT group_concat(l.feed, char(10)) FROM feed_log l INDEXED BY feed_log_open_by_id
                      WHERE l.id = items.id AND l.left_at IS NULL) AS feeds
                   FROM items WHERE deleted_at IS NULL AND key > ?1 ORDER BY key LIMIT ?2) i
             LEFT JOIN files f ON f.item_key = i.key
             ORDER BY i.key, f.path, f.root"
        );
        let mut stmt = self.tx.prepare_cached(&sql)?;
        let mut rows = stmt.query(params![after, limit as i64])?;
        let mut out: Vec<RemapRow> = Vec::with_capacity(limit);
        while let Some(r) = rows.next()? {
            let key: String = r.get(0)?;
            let path: Option<String> = r.get(6)?;
            let parse = match (r.get::<_, Option<String>>(7)?, r.get::<_, Option<Record>>(8)?) {
                (Some(json), _) => Some(StoredParse::Own(json)),
                (None, Some(record)) => Some(StoredParse::Item(record)),
                (None, None) => None,
            };
            let source = path.zip(parse);
            if let Some(last) = out.last_mut().filter(|l| l.key == key) {
                last.sources.extend(source);
                continue;
            }
            out.push(RemapRow {
                key,
                id: r.get(1)?,
                first_seen: from_ts(r.get(2)?),
                updated: from_ts(r.get(3)?),
                hash: r.get(4)?,
                feeds: r.get::<_, Option<String>>(5)?.map_or(Vec::new(), |f| f.split('\n').map(String::from).collect()),
                sources: source.into_iter().collect(),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clip::{Limits, parse};
    use crate::store::{FileId, FileStat, Store};

    #[test]
    fn rows_carry_every_source_in_chunks_by_key() {
        let mut s = Store::open_in_memory().unwrap();
        let b = s.batch().unwrap();
        let clip = |t: &str| parse(format!("---\ntitle: {t}\n---\n").as_bytes(), Limits::default()).unwrap().clipping;
        let st = FileStat { size: 1, mtime_ns: 1 };
        let fid = |p: &str| FileId { root: "/r".into(), path: p.into() };
        b.put_file_ok(&fid("b.md"), st, "k1", &clip("B")).unwrap();
        b.put_file_ok(&fid("a.md"), st, "k1", &clip("A")).unwrap();
        b.put_file_ok(&fid("c.md"), st, "k2", &clip("C")).unwrap();
        let t = Utc::now();
        for (key, topics) in [("k1", &["ai"][..]), ("k2", &[]), ("k3", &[])] {
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
        assert_eq!(keys, ["k1", "k2"], "live items only");
        let paths: Vec<&str> = rows[0].sources.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["a.md", "b.md"]);
        assert_eq!(rows[0].sources[0].1.clipping().unwrap().title, "A");
        assert_eq!(rows[0].id, k1);
        let mut feeds = rows[0].feeds.clone();
        feeds.sort();
        assert_eq!(feeds, ["feed", "topics/ai"], "the feeds with an open slot");
        assert!(rows[1].feeds.is_empty());
        assert_eq!(rows[1].sources.len(), 1);
        // Chunks follow on by key, whatever the number of files per item.
        let first = b.remap_rows("", 1).unwrap();
        assert_eq!((first.len(), first[0].sources.len()), (1, 2));
        let next = b.remap_rows(&first[0].key, 1).unwrap();
        assert_eq!(next.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["k2"]);
        assert!(b.remap_rows("k2", 10).unwrap().is_empty());
    }

    #[test]
    fn a_file_that_leans_on_its_items_record_still_gives_its_clipping() {
        let mut s = Store::open_in_memory().unwrap();
        let b = s.batch().unwrap();
        let clip = parse(b"---\ntitle: Shared\n---\n", Limits::default()).unwrap().clipping;
        b.put_file_ok(
            &FileId { root: "/r".into(), path: "d.md".into() },
            FileStat { size: 1, mtime_ns: 1 },
            "k4",
            &clip,
        )
        .unwrap();
        let mut it = crate::store::tests::item("k4", "2024-01-01T00:00:00Z", &[]);
        it.data.clip = clip.clone();
        b.put_item("k4", &it, Utc::now(), &it.data.hash(), &it.data.shown_hash()).unwrap();
        b.share_sources("k4", &clip).unwrap();
        let rows = b.remap_rows("", 10).unwrap();
        assert_eq!(rows.len(), 1);
        assert!(matches!(rows[0].sources[..], [(ref p, StoredParse::Item(_))] if p == "d.md"), "{:?}", rows[0].sources);
        assert_eq!(rows[0].sources[0].1.clipping().unwrap(), clip);
    }
}
