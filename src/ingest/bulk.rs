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

/// Item keys, oldest first (then by key, so the order is stable).
pub(super) fn by_date(keys: HashMap<String, DateTime<Utc>>) -> Vec<String> {
    let mut v: Vec<(DateTime<Utc>, String)> = keys.into_iter().map(|(k, at)| (at, k)).collect();
    v.sort();
    v.into_iter().map(|(_, k)| k).collect()
}
