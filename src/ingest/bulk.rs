//! The writer's side of a cold build (a first start, a rebuild): `ingest/apply` sets the
//! store's per-row upkeep aside for the batch that fills a store never reconciled
//! (`Store::begin_cold`, `Store::end_cold`; what is set aside and how it is done again is
//! `store/bulk`'s); the files' JSON made on the thread pool as they are read, so the writer
//! only stores it; and the test hook that cuts such a build short as a crash would.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rayon::prelude::*;

use super::scan::Change;
use crate::clip::Clipping;

#[cfg(test)]
thread_local! {
    /// Tests only: a crash in the middle of a large batch, simulated by a panic once this many
    /// refresh transactions have committed (nothing after it runs, as after a crash).
    pub(super) static CRASH_AFTER: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Called by a large batch once each refresh transaction has committed (see `CRASH_AFTER`, tests only).
pub(super) fn refresh_committed() {
    #[cfg(test)]
    if let Some(n) = CRASH_AFTER.get() {
        let left = n.saturating_sub(1);
        CRASH_AFTER.set((left > 0).then_some(left));
        assert!(left > 0, "simulated crash (ingest::bulk::CRASH_AFTER)");
    }
}

/// A change read from disk, with its clipping's JSON when it is a good parse (`None` also when
/// that JSON failed: the writer makes it again as it records the file, and reports the error).
pub(super) type Loaded = (Change, Option<String>);

/// Each good parse's JSON made on the thread pool, so the writer only stores it; `None` for the
/// rest.
pub(super) fn with_json(changes: Vec<Change>) -> Vec<Loaded> {
    changes
        .into_par_iter()
        .map(|c| {
            let json = match &c {
                Change::Parsed { result: Ok(parsed), .. } => serde_json::to_string(&parsed.clipping).ok(),
                _ => None,
            };
            (c, json)
        })
        .collect()
}

/// A good parse's JSON: the one made on the pool, else made now.
pub(super) fn json_of(json: Option<String>, clipping: &Clipping) -> anyhow::Result<String> {
    Ok(json.map_or_else(|| serde_json::to_string(clipping), Ok)?)
}

/// The items a large batch names, each with its earliest date, held compactly whatever their
/// number: each key's text once, in blocks of `KEY_BLOCK` bytes (no buffer the size of all of
/// them to copy as it grows), and a table of indexes found by the key's hash and compared with
/// the text (about 130 bytes an item where a map of strings and its sorted copy took about 240:
/// a million keys held at once are the largest thing a cold start keeps between reading the files
/// and refreshing the items).
#[derive(Default)]
pub(super) struct BatchKeys {
    /// Indexes into `items`, found by the hash of their key.
    index: hashbrown::HashTable<u32>,
    /// Per key: its earliest date (Unix seconds and nanoseconds), its block, start and length.
    items: Vec<KeyAt>,
    blocks: Vec<String>,
}

/// One key of a [`BatchKeys`].
struct KeyAt {
    secs: i64,
    nanos: u32,
    block: u32,
    start: u32,
    len: u32,
}

/// The size of a block of key text (a longer key has a block of its own).
const KEY_BLOCK: usize = 1 << 20;

fn key_hash(key: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key.as_bytes())
}

impl BatchKeys {
    pub(super) fn len(&self) -> usize {
        self.items.len()
    }

    /// Notes `key` at `at`, keeping the earliest date of a key noted twice.
    pub(super) fn note(&mut self, key: &str, at: DateTime<Utc>) {
        let at = (at.timestamp(), at.timestamp_subsec_nanos());
        let hash = key_hash(key);
        let Self { index, items, blocks } = self;
        let found = index.find(hash, |&i| key_text(blocks, &items[i as usize]) == key).copied();
        if let Some(i) = found {
            let held = &mut items[i as usize];
            if at < (held.secs, held.nanos) {
                (held.secs, held.nanos) = at;
            }
            return;
        }
        if blocks.last().is_none_or(|b| b.len() + key.len() > b.capacity()) {
            blocks.push(String::with_capacity(KEY_BLOCK.max(key.len())));
        }
        let block = blocks.last_mut().expect("a block");
        let start = block.len();
        block.push_str(key);
        let fit = |n: usize| u32::try_from(n).expect("a batch of fewer than 2^32 keys and blocks");
        let n = fit(items.len());
        items.push(KeyAt {
            secs: at.0,
            nanos: at.1,
            block: fit(blocks.len() - 1),
            start: fit(start),
            len: fit(key.len()),
        });
        index.insert_unique(hash, n, |&i| key_hash(key_text(blocks, &items[i as usize])));
    }

    /// The keys oldest first (then by key, so the order is stable), `n` at a time.
    pub(super) fn by_date(mut self, n: usize) -> impl Iterator<Item = Vec<String>> {
        self.index = hashbrown::HashTable::new();
        let mut order: Vec<u32> = (0..self.items.len() as u32).collect();
        let (items, blocks) = (&self.items, &self.blocks);
        order.sort_unstable_by(|&a, &b| {
            let (x, y) = (&items[a as usize], &items[b as usize]);
            (x.secs, x.nanos).cmp(&(y.secs, y.nanos)).then_with(|| key_text(blocks, x).cmp(key_text(blocks, y)))
        });
        let n = n.max(1);
        let chunks: Vec<Vec<u32>> = order.chunks(n).map(<[u32]>::to_vec).collect();
        chunks
            .into_iter()
            .map(move |c| c.into_iter().map(|i| key_text(&self.blocks, &self.items[i as usize]).to_string()).collect())
    }
}

fn key_text<'a>(blocks: &'a [String], k: &KeyAt) -> &'a str {
    &blocks[k.block as usize][k.start as usize..(k.start + k.len) as usize]
}

/// Item keys, oldest first (then by key, so the order is stable).
pub(super) fn by_date(keys: HashMap<String, DateTime<Utc>>) -> Vec<String> {
    let mut v: Vec<(DateTime<Utc>, String)> = keys.into_iter().map(|(k, at)| (at, k)).collect();
    v.sort();
    v.into_iter().map(|(_, k)| k).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_keys_come_back_in_the_order_of_a_map_of_strings() {
        let day = |d: i64| DateTime::<Utc>::from_timestamp(1_600_000_000 + d * 86_400, 7).unwrap();
        let mut map: HashMap<String, DateTime<Utc>> = HashMap::new();
        let mut held = BatchKeys::default();
        // Keys noted more than once (the earliest date kept), dates shared by several keys
        // (then ordered by key), a date before 1970 and one past what nanoseconds can hold.
        let mut state = 12345u64;
        for i in 0..5000u64 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            // Long enough that the text spans several blocks; one key longer than a block.
            let (site, page) = (state % 13, (state >> 20) % 1500);
            let pad = if i == 4321 { KEY_BLOCK + 10 } else { 200 + (page % 50) as usize };
            let key = format!("url:https://site{site}.example/a/{page}/{}", "p".repeat(pad));
            let at = match i % 500 {
                0 => DateTime::<Utc>::from_timestamp(-86_400 * 400, 0).unwrap(),
                1 => DateTime::<Utc>::from_timestamp(300_000_000_000, 0).unwrap(),
                _ => day(((state >> 40) % 60) as i64),
            };
            let e = map.entry(key.clone()).or_insert(at);
            *e = (*e).min(at);
            held.note(&key, at);
        }
        assert_eq!(held.len(), map.len());
        assert!(map.len() < 4900, "some keys noted more than once");
        assert!(held.blocks.len() >= 3, "the keys span several blocks");
        let expected = by_date(map);
        for n in [1, 7, 250, 100_000] {
            let mut again = BatchKeys::default();
            for (i, k) in expected.iter().enumerate().rev() {
                again.note(k, day(0)); // noted late, then earlier
                again.note(k, day(-10_000 + i as i64));
            }
            let chunks: Vec<Vec<String>> = again.by_date(n).collect();
            assert!(chunks.iter().all(|c| !c.is_empty() && c.len() <= n));
            assert_eq!(chunks.concat(), expected, "chunks of {n}");
        }
        assert_eq!(held.by_date(64).flatten().collect::<Vec<_>>(), expected);
        assert_eq!(BatchKeys::default().by_date(10).count(), 0);
    }
}
