//! How records are stored: each item's data once, deflated, in `item_records` (a rowid table,
//! so a record of a few kilobytes shares its page with others instead of spilling into an
//! overflow page of its own, as it did as a column of the `WITHOUT ROWID` `items` table), and a
//! file's last good parse only when it differs from its item's clipping (`files.record` is NULL
//! when the file's clipping *is* the item's, which is nearly always: one file per article).
//!
//! The invariant the writer keeps (`Batch::share_sources`): a file row with a NULL record names
//! (`item_key`) a live item whose clipping is that file's last good parse. Before an item's
//! clipping changes, every file leaning on it gets its own record back.
//!
//! Older stores (JSON text in `items.record` and `files.record`) are moved over once at open
//! (`migrate_lean_records`, meta `migrated_lean_records`); a record read as text is JSON, as
//! a blob deflated JSON, so either form reads.

use anyhow::{Context, Result};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Batch;
use crate::clip::Clipping;
use crate::item::ItemData;

/// The SQL expression for the record of the item aliased `i`, in place of a column.
pub const ITEM_RECORD: &str = "(SELECT r.data FROM item_records r WHERE r.rowid = i.rec)";

/// The table of records, for the schema.
pub const SCHEMA: &str = "
-- Each item's data, deflated JSON (see store/records.rs); items.rec is its rowid, declared (id),
-- so that VACUUM keeps it (stores written before have it undeclared: Store::compact skips them).
CREATE TABLE IF NOT EXISTS item_records(
    id INTEGER PRIMARY KEY,
    data BLOB NOT NULL
);
";

/// A record as stored: JSON text (older rows) or deflated JSON.
#[derive(Debug, Clone)]
pub struct Record {
    bytes: Vec<u8>,
    deflated: bool,
}

impl FromSql for Record {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value {
            ValueRef::Text(t) => Ok(Record { bytes: t.to_vec(), deflated: false }),
            ValueRef::Blob(b) => Ok(Record { bytes: b.to_vec(), deflated: true }),
            _ => Err(FromSqlError::InvalidType),
        }
    }
}

impl Record {
    /// `read` given the record's JSON: as stored, or inflated by this thread's decompressor
    /// (see [`INFLATE`]) into this thread's buffer ([`INFLATED`]), so that reading many records
    /// allocates no buffer for each.
    fn with_json<R>(&self, read: impl FnOnce(&[u8]) -> Result<R>) -> Result<R> {
        if !self.deflated {
            return read(&self.bytes);
        }
        INFLATED.with(|held| {
            // A record read while another is (none is) gets a buffer of its own.
            let (mut held, mut own) = (held.try_borrow_mut().ok(), Vec::new());
            let out = held.as_deref_mut().unwrap_or(&mut own);
            out.clear();
            let inflated = INFLATE.with(|z| {
                let mut z = z.borrow_mut();
                z.reset(false);
                let inflated = inflate(&mut z, &self.bytes, out);
                if inflated.is_err() {
                    // An inflater that failed may keep its error through a reset: a new one.
                    *z = flate2::Decompress::new(false);
                }
                inflated
            });
            let value = inflated.and_then(|()| read(out));
            if out.capacity() > KEEP_INFLATED {
                // A rare large record's room is not held by the thread for good.
                *out = Vec::new();
            }
            value
        })
    }

    /// The value the record holds.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T> {
        self.with_json(|json| Ok(serde_json::from_slice(json)?))
    }

    /// A part of the value the record holds (`P`: a type that reads some of its fields and
    /// skips the rest), and the whole value (`T`) only when `whole` says so for that part: the
    /// record is inflated once for both.
    pub fn decode_part<P: DeserializeOwned, T: DeserializeOwned>(
        &self,
        whole: impl FnOnce(&P) -> bool,
    ) -> Result<(P, Option<T>)> {
        self.with_json(|json| {
            let part: P = serde_json::from_slice(json)?;
            let all = if whole(&part) { Some(serde_json::from_slice(json)?) } else { None };
            Ok((part, all))
        })
    }
}

/// The most room a thread's buffer of inflated JSON keeps between records (a record is a few
/// kilobytes; a clipping may be up to a megabyte).
const KEEP_INFLATED: usize = 256 * 1024;

/// `bytes` (raw deflate) inflated by `z`, freshly reset, into `out` (empty, of any capacity).
fn inflate(z: &mut flate2::Decompress, bytes: &[u8], out: &mut Vec<u8>) -> Result<()> {
    out.reserve(bytes.len() * 3 + 64);
    loop {
        let read = usize::try_from(z.total_in()).unwrap_or(usize::MAX).min(bytes.len());
        let (took, made) = (z.total_in(), z.total_out());
        // Not `Finish`: that inflates into the room given at once, and fails when the record
        // outgrows it.
        let status = z
            .decompress_vec(&bytes[read..], out, flate2::FlushDecompress::None)
            .context("a record does not inflate")?;
        if status == flate2::Status::StreamEnd {
            return Ok(());
        }
        if out.len() < out.capacity() && (z.total_in(), z.total_out()) == (took, made) {
            // Room left and nothing read or made: the stream ends short.
            anyhow::bail!("a record does not inflate: it ends short");
        }
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(64));
        }
    }
}

thread_local! {
    /// The JSON of the record a thread reads, inflated: its room kept from one record to the
    /// next (up to [`KEEP_INFLATED`]).
    static INFLATED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    /// One inflater per thread, reset for each record: making a new one allocates and clears
    /// its state and window (tens of kilobytes), which was about a quarter of inflating a
    /// record of a few kilobytes when a remap's plan reads every record.
    static INFLATE: std::cell::RefCell<flate2::Decompress> = std::cell::RefCell::new(flate2::Decompress::new(false));
    /// One deflate compressor per thread, reset for each record. Making a new one allocates and
    /// clears its tables: about 73 µs a 3 KB record, against 8 µs for the compression itself
    /// (measured side by side in one release build), so a cold build of 100,000 spent seconds
    /// of CPU making compressors.
    static DEFLATE: std::cell::RefCell<flate2::Compress> =
        std::cell::RefCell::new(flate2::Compress::new(flate2::Compression::new(DEFLATE_LEVEL), false));
}

/// The deflate level of records. zlib-rs's level 1 (`Compression::fast`) codes with fixed
/// Huffman tables: records of 1,423 bytes on average at 100,000 clippings, of which a 4 KiB page
/// holds only two, so a fifth of `item_records` was the room left at the end of its pages.
/// Level 2 codes with tables made for each record: 1,104 bytes (22 % less) for 28 µs against
/// 13.5 µs a record, on the pool; levels up to 9 save under 2 % more (bench/README.md, "Issue
/// 17's eleventh round"). Any level inflates the same way, so records of either kind read.
const DEFLATE_LEVEL: u32 = 2;

/// `value` as stored: its JSON, deflated (raw deflate, no header).
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    encode_json(&serde_json::to_vec(value)?)
}

/// A value's JSON as stored: deflated (raw deflate, no header). [`encode`] for a caller that
/// has the JSON already.
pub fn encode_json(json: &[u8]) -> Result<Vec<u8>> {
    DEFLATE.with(|z| {
        let mut z = z.borrow_mut();
        z.reset();
        let mut out = Vec::with_capacity(json.len() / 2 + 64);
        loop {
            let read = usize::try_from(z.total_in()).unwrap_or(json.len()).min(json.len());
            if z.compress_vec(&json[read..], &mut out, flate2::FlushCompress::Finish)? == flate2::Status::StreamEnd {
                return Ok(out);
            }
            // The output was full: room for as much again, and on.
            out.reserve(out.capacity().max(64));
        }
    })
}

/// Writes the record of the item keyed `key` (replacing its old one, or adding one), returning
/// its rowid for `items.rec`.
pub fn put_item_record(conn: &Connection, key: &str, data: &[u8]) -> Result<i64> {
    let old: Option<i64> =
        conn.prepare_cached("SELECT rec FROM items WHERE key=?1")?.query_row([key], |r| r.get(0)).optional()?.flatten();
    if let Some(rowid) = old {
        let n = conn.prepare_cached("UPDATE item_records SET data=?2 WHERE rowid=?1")?.execute(params![rowid, data])?;
        if n == 1 {
            return Ok(rowid);
        }
    }
    conn.prepare_cached("INSERT INTO item_records(data) VALUES(?1)")?.execute([data])?;
    Ok(conn.last_insert_rowid())
}

impl Batch<'_> {
    /// Before the item keyed `key` takes the clipping `next`: files leaning on its current
    /// clipping (NULL record) get it as their own record, unless it stays the same.
    pub(crate) fn unshare_sources(&self, key: &str, next: &Clipping) -> Result<()> {
        let leaning: bool = self
            .tx
            .prepare_cached("SELECT EXISTS(SELECT 1 FROM files WHERE item_key=?1 AND record IS NULL)")?
            .query_row([key], |r| r.get(0))?;
        if !leaning {
            return Ok(());
        }
        let sql = format!("SELECT {ITEM_RECORD} FROM items i WHERE i.key=?1");
        let current: Option<Record> = self.tx.prepare_cached(&sql)?.query_row([key], |r| r.get(0)).optional()?;
        let current: Clipping =
            current.context("a file leans on a missing item")?.decode::<ItemData>().map(|d| d.clip)?;
        if &current != next {
            let json = serde_json::to_string(&current)?;
            self.tx
                .prepare_cached("UPDATE files SET record=?2 WHERE item_key=?1 AND record IS NULL")?
                .execute(params![key, json])?;
        }
        Ok(())
    }

    /// Once the item keyed `key` holds `clip`: files whose record is that clipping lean on the
    /// item's instead of keeping a copy.
    pub(crate) fn share_sources(&self, key: &str, clip: &Clipping) -> Result<()> {
        self.share_sources_json(key, &serde_json::to_string(clip)?)
    }

    /// [`Batch::share_sources`] with the clipping's JSON made beforehand.
    pub(crate) fn share_sources_json(&self, key: &str, json: &str) -> Result<()> {
        self.tx
            .prepare_cached("UPDATE files SET record=NULL WHERE item_key=?1 AND record=?2")?
            .execute(params![key, json])?;
        Ok(())
    }
}

/// The `meta` key that says the records are stored the lean way.
const MIGRATED: &str = "migrated_lean_records";

/// Moves a store's records to the lean form once (guarded by [`MIGRATED`]): each item's JSON
/// deflated into `item_records`, and each file's record dropped where it is its item's
/// clipping. Idempotent: rows already moved are skipped.
pub fn migrate_lean_records(conn: &Connection) -> Result<()> {
    let has_rec = |conn: &Connection| -> Result<bool> {
        Ok(conn
            .query_row("SELECT EXISTS(SELECT 1 FROM pragma_table_info('items') WHERE name='rec')", [], |r| r.get(0))?)
    };
    if !has_rec(conn)? {
        let tx = super::schema::begin_migration(conn)?;
        if !has_rec(&tx)? {
            tx.execute_batch("ALTER TABLE items ADD COLUMN rec INTEGER")?;
        }
        tx.commit()?;
    }
    if super::schema::migrated(conn, MIGRATED)? {
        return Ok(());
    }
    let tx = super::schema::begin_migration(conn)?;
    if super::schema::migrated(&tx, MIGRATED)? {
        return Ok(());
    }
    let mut moved = 0;
    loop {
        // A chunk at a time, so a large store is never held in memory whole.
        let rows: Vec<(String, String)> = tx
            .prepare_cached("SELECT key, record FROM items WHERE rec IS NULL LIMIT 512")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        if rows.is_empty() {
            break;
        }
        moved += rows.len();
        for (key, json) in rows {
            let data: ItemData = serde_json::from_str(&json).with_context(|| format!("corrupt item {key}"))?;
            let rowid = put_item_record(&tx, &key, &encode(&data)?)?;
            tx.prepare_cached("UPDATE items SET rec=?2, record='' WHERE key=?1")?.execute(params![key, rowid])?;
            let clip = serde_json::to_string(&data.clip)?;
            tx.prepare_cached("UPDATE files SET record=NULL WHERE item_key=?1 AND record=?2")?
                .execute(params![key, clip])?;
        }
    }
    tx.execute("INSERT INTO meta(key, value) VALUES(?1, ?2)", params![MIGRATED, chrono::Utc::now().to_rfc3339()])?;
    tx.commit()?;
    if moved > 0 {
        tracing::info!(items = moved, "records stored once, deflated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use rusqlite::Connection;

    use super::*;
    use crate::item::Item;
    use crate::store::tests::item;
    use crate::store::{FileId, FileStat, Store};

    fn fid(p: &str) -> FileId {
        FileId { root: "/r".into(), path: p.into() }
    }

    #[test]
    fn records_deflate_and_inflate_back_at_every_size() {
        // Text that does not compress (so the output outgrows its first buffer) and text that
        // does, from nothing to far past the compressor's window; the compressor is reused, so
        // each record must come out as if made by a new one.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut noise = |n: usize| -> String {
            (0..n)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    char::from(b' ' + (seed % 95) as u8)
                })
                .collect()
        };
        for n in [0, 1, 100, 3_000, 70_000, 300_000] {
            for text in [noise(n), "clipfeed ".repeat(n / 9)] {
                let stored = encode(&text).unwrap();
                assert_eq!(stored, encode(&text).unwrap(), "the same bytes twice ({n})");
                // Cut short: an error, and the inflater, which is reused, reads the next whole.
                let cut = Record { bytes: stored[..stored.len() / 2].to_vec(), deflated: true };
                assert!(cut.decode::<String>().is_err(), "half of {n} characters");
                let back: String = Record { bytes: stored, deflated: true }.decode().unwrap();
                assert_eq!(back, text, "{n} characters");
            }
        }
    }

    /// Items made of the real clippings of `../shared` (when there) and of generated ones, from
    /// a few bytes to far past the room a thread's buffer keeps.
    fn items_to_read() -> Vec<ItemData> {
        let mut texts = Vec::new();
        let mut stack = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")];
        while let Some(p) = stack.pop() {
            match std::fs::read_dir(&p) {
                Ok(dir) => stack.extend(dir.filter_map(|e| e.ok().map(|e| e.path()))),
                Err(_) if texts.len() < 400 => texts.extend(std::fs::read(&p).ok()),
                Err(_) => {}
            }
        }
        for n in [0, 10, 3_000, 400_000] {
            let body = "Ünïcode \"quoted\" \\ body ".repeat(n / 25);
            let yaml = format!("title: T{n}\nexcerpt: E \"x\"\ntopics: [AI, Robots]\nquality: {n}\npublished: false");
            texts.push(format!("---\n{yaml}\n---\n{body}\n").into_bytes());
        }
        let limits = crate::clip::Limits { max_file_bytes: 4 << 20 };
        let first_seen = "2024-01-01T00:00:00Z".parse().unwrap();
        let topics = crate::config::Topics::default();
        texts
            .iter()
            .filter_map(|t| crate::clip::parse(t, limits).ok())
            .filter_map(|p| {
                let source = crate::item::Source { rel_path: "a.md", clipping: &p.clipping };
                crate::item::merge(&[source], first_seen, &topics)
            })
            .collect()
    }

    /// Records are deflated with tables made for each (level [`DEFLATE_LEVEL`]); records made
    /// the old way, with fixed tables (`Compression::fast`), still read. The items of the real
    /// clippings (when `../shared` is there) or the generated ones come out at least a sixth
    /// smaller than with fixed tables.
    #[test]
    fn records_are_deflated_with_their_own_tables_and_old_ones_still_read() {
        let items = items_to_read();
        let (mut now, mut fixed) = (0usize, 0usize);
        for data in &items {
            let json = data.json();
            let mut z = flate2::Compress::new(flate2::Compression::fast(), false);
            let mut old = Vec::with_capacity(json.len() + 64);
            while z.compress_vec(&json[z.total_in() as usize..], &mut old, flate2::FlushCompress::Finish).unwrap()
                != flate2::Status::StreamEnd
            {
                old.reserve(old.capacity());
            }
            let back: ItemData = Record { bytes: old.clone(), deflated: true }.decode().unwrap();
            assert_eq!(back.json(), json, "a record deflated with fixed tables reads");
            let stored = encode(data).unwrap();
            assert_eq!(Record { bytes: stored.clone(), deflated: true }.decode::<ItemData>().unwrap().json(), json);
            if json.len() < KEEP_INFLATED {
                (now, fixed) = (now + stored.len(), fixed + old.len());
            }
        }
        assert!(now * 6 <= fixed * 5, "records of {now} bytes against {fixed} with fixed tables");
    }

    #[test]
    fn records_read_through_the_threads_buffer_give_what_their_json_gives() {
        use crate::item::TopicInputs;
        let items = items_to_read();
        assert!(items.len() >= 4);
        let records: Vec<(Record, Vec<u8>)> =
            items.iter().map(|d| (Record { bytes: encode(d).unwrap(), deflated: true }, d.json())).collect();
        // Records past the room the buffer keeps and well under it, both read.
        assert!(records.iter().any(|r| r.1.len() > KEEP_INFLATED), "a record past the room kept");
        assert!(records.iter().any(|r| r.1.len() < 4096), "a small record");
        // One after the other (the buffer reused, large records between small ones), in both
        // orders, a record that does not inflate among them.
        let cut = records[0].0.bytes.len() / 2;
        let broken = Record { bytes: records[0].0.bytes[..cut].to_vec(), deflated: true };
        let order: Vec<usize> = (0..records.len()).chain((0..records.len()).rev()).collect();
        for i in order {
            let (record, json) = &records[i];
            let part: TopicInputs = serde_json::from_slice(json).unwrap();
            let (read, whole) = record.decode_part::<TopicInputs, ItemData>(|_| true).unwrap();
            assert_eq!((&read, whole.as_ref()), (&part, Some(&items[i])));
            let (read, none) = record.decode_part::<TopicInputs, ItemData>(|_| false).unwrap();
            assert_eq!((read, none), (part, None));
            assert_eq!(record.decode::<ItemData>().unwrap(), items[i]);
            assert!(broken.decode_part::<TopicInputs, ItemData>(|_| true).is_err());
        }
        // A record read while another is: each gets its own JSON.
        let (a, b) = (&records[0].0, &records[records.len() - 1].0);
        let mut inner = None;
        let (_, outer) = a
            .decode_part::<TopicInputs, ItemData>(|_| {
                inner = Some(b.decode::<ItemData>().unwrap());
                true
            })
            .unwrap();
        assert_eq!((outer.as_ref(), inner.as_ref()), (Some(&items[0]), items.last()));
    }

    fn own_records(b: &Batch<'_>) -> Vec<(String, bool)> {
        let mut st = b.tx.prepare("SELECT path, record IS NOT NULL FROM files ORDER BY path").unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
    }

    fn put(b: &Batch<'_>, it: &Item) {
        b.put_item("k", it, Utc::now(), &it.data.hash(), &it.data.shown_hash()).unwrap();
    }

    #[test]
    fn records_read_back_deflated_or_as_older_json() {
        let data = item("k", "2024-01-02T00:00:00Z", &["ai"]).data;
        let blob = encode(&data).unwrap();
        let json = serde_json::to_vec(&data).unwrap();
        assert!(blob.len() < json.len(), "{} deflated against {} of JSON", blob.len(), json.len());
        let deflated = Record { bytes: blob, deflated: true };
        let text = Record { bytes: json, deflated: false };
        assert_eq!(deflated.decode::<ItemData>().unwrap(), data);
        assert_eq!(text.decode::<ItemData>().unwrap(), data);
        assert!(Record { bytes: b"not deflate".to_vec(), deflated: true }.decode::<ItemData>().is_err());
    }

    #[test]
    fn a_file_keeps_a_record_only_while_it_differs_from_its_item() {
        let mut s = Store::open_in_memory().unwrap();
        let b = s.batch().unwrap();
        let st = FileStat { size: 1, mtime_ns: 2 };
        let one = item("k", "2024-01-02T00:00:00Z", &["ai"]);
        b.put_file_ok(&fid("a.md"), st, "k", &one.data.clip).unwrap();
        b.put_file_ok(&fid("b.md"), st, "k", &item("other", "2024-01-02T00:00:00Z", &[]).data.clip).unwrap();
        put(&b, &one);
        // a.md is the item's clipping: it leans on the item's record; b.md keeps its own.
        assert_eq!(own_records(&b), [("a.md".into(), false), ("b.md".into(), true)]);
        let sources = b.sources("k").unwrap();
        assert_eq!(sources[0], ("a.md".into(), one.data.clip.clone()));
        assert_eq!(sources[1].1.title, "other");
        // The item takes b.md's clipping: a.md gets its own record back, b.md leans.
        let mut two = one.clone();
        two.data.clip = sources[1].1.clone();
        put(&b, &two);
        assert_eq!(own_records(&b), [("a.md".into(), true), ("b.md".into(), false)]);
        let sources = b.sources("k").unwrap();
        assert_eq!(sources[0], ("a.md".into(), one.data.clip.clone()));
        assert_eq!(sources[1], ("b.md".into(), two.data.clip.clone()));
        // A file that turns bad keeps serving its last good parse, the item's.
        b.put_file_rejected(&fid("b.md"), FileStat { size: 3, mtime_ns: 4 }, "bad", Utc::now()).unwrap();
        assert_eq!(b.sources("k").unwrap()[1], ("b.md".into(), two.data.clip));
    }

    #[test]
    fn an_older_store_is_moved_to_lean_records_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        drop(Store::open(&path).unwrap());
        let it = item("k", "2024-01-02T00:00:00Z", &["ai"]);
        let raw = Connection::open(&path).unwrap();
        // As an older clipfeed left it: JSON in both tables, no record row.
        raw.execute(
            "INSERT INTO items(key, id, first_seen, published, updated, hash, topics, record)
             VALUES('k', ?1, 0, 0, 0, 'h', 'ai', ?2)",
            params![it.id, serde_json::to_string(&it.data).unwrap()],
        )
        .unwrap();
        for (p, clip) in [("a.md", &it.data.clip), ("b.md", &item("x", "2024-01-02T00:00:00Z", &[]).data.clip)] {
            raw.execute(
                "INSERT INTO files(root, path, size, mtime_ns, item_key, record) VALUES('/r', ?1, 1, 1, 'k', ?2)",
                params![p, serde_json::to_string(clip).unwrap()],
            )
            .unwrap();
        }
        raw.execute("DELETE FROM meta WHERE key=?1", [MIGRATED]).unwrap();
        drop(raw);
        for _ in 0..2 {
            let mut s = Store::open(&path).unwrap();
            let b = s.batch().unwrap();
            assert_eq!(own_records(&b), [("a.md".into(), false), ("b.md".into(), true)]);
            assert_eq!(b.sources("k").unwrap()[0].1, it.data.clip);
            let rows: i64 = b.tx.query_row("SELECT count(*) FROM item_records", [], |r| r.get(0)).unwrap();
            assert_eq!(rows, 1, "moved once");
            let left: String = b.tx.query_row("SELECT record FROM items", [], |r| r.get(0)).unwrap();
            assert_eq!(left, "");
        }
    }
}
