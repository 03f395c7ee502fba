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
/// number: each key once in one shared buffer, found again by its 128-bit hash (about 100 bytes
/// an item where a map of strings took about 250: a million keys held at once are the largest
/// thing a cold start keeps between reading the files and refreshing the items).
#[derive(Default)]
pub(super) struct BatchKeys {
    /// Each key's hash to its index in `items`.
    index: HashMap<u128, u32>,
    /// Per key: its earliest date (Unix seconds and nanoseconds) and where it ends in `text`.
    items: Vec<(i64, u32, u32)>,
    text: String,
}

impl BatchKeys {
    pub(super) fn len(&self) -> usize {
        self.items.len()
    }

    /// Notes `key` at `at`, keeping the earliest date of a key noted twice.
    pub(super) fn note(&mut self, key: &str, at: DateTime<Utc>) {
        let at = (at.timestamp(), at.timestamp_subsec_nanos());
        let n = u32::try_from(self.items.len()).expect("fewer than 2^32 items in one batch");
        let i = *self.index.entry(xxhash_rust::xxh3::xxh3_128(key.as_bytes())).or_insert(n);
        if i == n {
            self.text.push_str(key);
            let end = u32::try_from(self.text.len()).expect("less than 4 GiB of keys in one batch");
            self.items.push((at.0, at.1, end));
        } else {
            let held = &mut self.items[i as usize];
            if at < (held.0, held.1) {
                (held.0, held.1) = at;
            }
        }
    }

    fn key(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.items[i - 1].2 as usize };
        &self.text[start..self.items[i].2 as usize]
    }

    /// The keys oldest first (then by key, so the order is stable), `n` at a time.
    pub(super) fn by_date(mut self, n: usize) -> impl Iterator<Item = Vec<String>> {
        self.index = HashMap::new();
        let mut order: Vec<u32> = (0..self.items.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| {
            let (a, b) = (a as usize, b as usize);
            let (x, y) = (&self.items[a], &self.items[b]);
            (x.0, x.1).cmp(&(y.0, y.1)).then_with(|| self.key(a).cmp(self.key(b)))
        });
        let n = n.max(1);
        let chunks: Vec<Vec<u32>> = order.chunks(n).map(<[u32]>::to_vec).collect();
        chunks.into_iter().map(move |c| c.into_iter().map(|i| self.key(i as usize).to_string()).collect())
    }
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
            let key = format!("url:https://site{}.example/a/{}", state % 97, (state >> 20) % 1500);
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
