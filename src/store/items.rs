//! Items: one row per identity ever seen (a tombstone once its files are gone), their topic
//! memberships and their text in the search index (`fts`), and the topics and providers ever
//! seen with their display names.

use anyhow::Result;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Batch, from_ts, ts};
use crate::item::Item;

/// What [`Batch::put_item_encoded`] writes of an item that takes CPU to make (so it can be made
/// off the writer thread): its record (`records::encode` of its data) and its clipping's JSON
/// (what its files' records are compared with, `Batch::share_sources`).
#[derive(Debug, Clone)]
pub struct Encoded {
    pub(crate) record: Vec<u8>,
    pub(crate) clip: String,
}

impl Encoded {
    /// What [`Batch::put_item`] would make of `data`.
    pub(crate) fn of(data: &crate::item::ItemData) -> Result<Encoded> {
        Ok(Encoded { record: super::records::encode(data)?, clip: serde_json::to_string(&data.clip)? })
    }
}

/// What the store remembers of an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemState {
    pub(crate) id: String,
    pub(crate) first_seen: DateTime<Utc>,
    pub(crate) updated: DateTime<Utc>,
    /// Hash of everything stored of the item.
    pub(crate) hash: String,
    /// Hash of what feeds show of it: when only this changes does the item count as edited.
    pub(crate) shown: String,
    pub(crate) deleted: bool,
    pub(crate) topics: Vec<String>,
    pub(crate) provider: Option<String>,
}

impl Batch<'_> {
    pub(crate) fn item_state(&self, key: &str) -> Result<Option<ItemState>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT id, first_seen, updated, hash, deleted_at IS NOT NULL, topics, provider, shown FROM items WHERE key=?1",
        )?;
        Ok(stmt
            .query_row([key], |r| {
                let topics: String = r.get(5)?;
                Ok(ItemState {
                    id: r.get(0)?,
                    first_seen: from_ts(r.get(1)?),
                    updated: from_ts(r.get(2)?),
                    hash: r.get(3)?,
                    shown: r.get(7)?,
                    deleted: r.get(4)?,
                    topics: topics.split_whitespace().map(String::from).collect(),
                    provider: r.get(6)?,
                })
            })
            .optional()?)
    }

    /// Writes a live item and its topic memberships.
    pub(crate) fn put_item(
        &self,
        key: &str,
        item: &Item,
        first_seen: DateTime<Utc>,
        hash: &str,
        shown: &str,
    ) -> Result<()> {
        self.put_item_encoded(key, item, first_seen, hash, shown, &Encoded::of(&item.data)?)?;
        // The search index follows the item in the same transaction.
        super::fts::put(&self.tx, item)
    }

    /// [`Batch::put_item`] with its record and its clipping's JSON made beforehand (`made`, of
    /// `item.data`), and without its search-index row: the caller indexes it
    /// ([`Batch::index_docs`]) in the same transaction, before anything else touches the index.
    pub(crate) fn put_item_encoded(
        &self,
        key: &str,
        item: &Item,
        first_seen: DateTime<Utc>,
        hash: &str,
        shown: &str,
        made: &Encoded,
    ) -> Result<()> {
        self.unshare_sources(key, &item.data.clip)?;
        let rec = super::records::put_item_record(&self.tx, key, &made.record)?;
        let topics: Vec<&str> = item.data.topics.iter().map(|t| t.slug.as_str()).collect();
        let published = ts(item.data.published);
        // `words` (the title's and excerpt's words, for `q` before the search index) is left
        // empty: the reader that needs them makes them from the record (`Reader::filtered`).
        // The topic rows it had, by their primary key (an index by item id cost every change a
        // few pages and the store 13 MB at 100,000).
        let before: Option<(String, i64)> = self
            .tx
            .prepare_cached("SELECT topics, published FROM items WHERE key=?1 AND deleted_at IS NULL")?
            .query_row([key], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        self.tx
            .prepare_cached(
                "INSERT INTO items(key, id, first_seen, published, updated, deleted_at, hash, provider, topics, quality, words, record, rec, shown)
                 VALUES(?1, ?2, ?3, ?4, ?5, NULL, ?6, ?7, ?8, ?9, '', '', ?10, ?11)
                 ON CONFLICT(key) DO UPDATE SET first_seen=excluded.first_seen, published=excluded.published,
                   updated=excluded.updated, deleted_at=NULL, hash=excluded.hash, provider=excluded.provider,
                   topics=excluded.topics, quality=excluded.quality, words='', record='', rec=excluded.rec,
                   shown=excluded.shown",
            )?
            .execute(params![
                key,
                item.id,
                ts(first_seen),
                published,
                ts(item.updated),
                hash,
                item.data.provider_domain(),
                topics.join(" "),
                item.data.clip.quality,
                rec,
                shown
            ])?;
        if let Some((slugs, at)) = before {
            self.drop_topic_rows(&item.id, &slugs, at)?;
        }
        let mut ins =
            self.tx.prepare_cached("INSERT OR IGNORE INTO item_topics(slug, published, id) VALUES(?1, ?2, ?3)")?;
        for slug in topics {
            ins.execute(params![slug, published, item.id])?;
        }
        self.share_sources_json(key, &made.clip)
    }

    /// Marks an item deleted: it leaves every feed, its row stays as a tombstone.
    pub(crate) fn tombstone_item(&self, key: &str, at: DateTime<Utc>) -> Result<()> {
        let gone: Option<(String, String, i64)> = self
            .tx
            .prepare_cached(
                "UPDATE items SET deleted_at=?2 WHERE key=?1 AND deleted_at IS NULL RETURNING id, topics, published",
            )?
            .query_row(params![key, ts(at)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        if let Some((id, slugs, published)) = gone {
            self.drop_topic_rows(&id, &slugs, published)?;
            super::fts::delete(&self.tx, &id)?;
        }
        Ok(())
    }

    /// Removes an item's topic rows, named by what its `items` row says (its topics, space
    /// separated, and its date): the rows `put_item` wrote with them.
    pub(super) fn drop_topic_rows(&self, id: &str, slugs: &str, published: i64) -> Result<()> {
        let mut del = self.tx.prepare_cached("DELETE FROM item_topics WHERE slug=?1 AND published=?2 AND id=?3")?;
        for slug in slugs.split(' ').filter(|s| !s.is_empty()) {
            del.execute(params![slug, published, id])?;
        }
        Ok(())
    }

    /// Records a topic's display name (creating the topic when new).
    pub(crate) fn put_topic(&self, slug: &str, name: &str) -> Result<()> {
        self.tx
            .prepare_cached("INSERT INTO topics(slug, name) VALUES(?1, ?2) ON CONFLICT(slug) DO UPDATE SET name=excluded.name WHERE name<>excluded.name")?
            .execute([slug, name])?;
        Ok(())
    }

    /// Records a provider's display name (creating the provider when new).
    pub(crate) fn put_provider(&self, domain: &str, name: &str) -> Result<()> {
        self.tx
            .prepare_cached("INSERT INTO providers(domain, name) VALUES(?1, ?2) ON CONFLICT(domain) DO UPDATE SET name=excluded.name WHERE name<>excluded.name")?
            .execute([domain, name])?;
        Ok(())
    }

    /// Every topic ever seen: (slug, name).
    pub(crate) fn topics(&self) -> Result<Vec<(String, String)>> {
        let mut stmt = self.tx.prepare_cached("SELECT slug, name FROM topics ORDER BY slug")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every provider ever seen: (domain, name).
    pub(crate) fn providers(&self) -> Result<Vec<(String, String)>> {
        let mut stmt = self.tx.prepare_cached("SELECT domain, name FROM providers ORDER BY domain")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
