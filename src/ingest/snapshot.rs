//! The restart snapshot: at a clean stop every published feed is saved in the store, bytes and
//! all; the next start serves them instead of rendering every feed, when they were made by the
//! same build and a configuration that renders the same bytes. A snapshot is used at most once.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Result;
use rayon::prelude::*;
use tracing::{info, warn};

use super::Ingest;
use crate::feed::FeedKey;
use crate::site::FeedEntry;

/// Bumped when what [`FeedEntry::save`] writes changes meaning.
const SNAPSHOT_FORMAT: u32 = 2;

/// The `meta` key of the feeds' live counts saved with them.
const SAVED_COUNTS: &str = "snapshot_counts";

impl Ingest {
    /// What the saved feeds must have been rendered under to be served as they are: this build,
    /// the configuration, and the links' base.
    fn snapshot_mark(&self) -> String {
        // The executable's size and time stand for the build: a rebuild with the same version
        // number may render differently.
        let exe = std::env::current_exe()
            .and_then(std::fs::metadata)
            .map(|m| format!("{} {:?}", m.len(), m.modified().ok()))
            .unwrap_or_default();
        // Only the settings that can change a feed's bytes count: a new port behind a fixed
        // `base_url` (or a new log level) must not cost a start its saved feeds.
        let cfg = self.core.cfg.feed_fingerprint();
        let what = format!("{} {exe} {SNAPSHOT_FORMAT} {cfg} {}", env!("CARGO_PKG_VERSION"), self.core.links.base());
        format!("{:032x}", xxhash_rust::xxh3::xxh3_128(what.as_bytes()))
    }

    /// At a clean stop, saves every published feed, so the next start can serve them without
    /// rendering (a restart with 100,000 clippings would otherwise render every feed from the
    /// store before it could answer). Best effort: a failure only costs that start a render.
    pub(super) fn save_snapshot(&mut self) {
        if !self.core.ready || !self.core.dirty.is_empty() {
            return;
        }
        let started = std::time::Instant::now();
        let mark = self.snapshot_mark();
        let catalog = &self.core.catalog;
        // Saved packed: a stop right after a remap's render finds its documents not all packed
        // yet, and what is saved is what the next start holds.
        let published: Vec<&Arc<FeedEntry>> = catalog.iter().filter_map(|(_, e)| e.feed.as_ref()).collect();
        published.par_iter().for_each(|f| f.pack());
        let feeds = catalog
            .iter()
            .filter_map(|(key, e)| e.feed.as_ref().map(|f| (key, f)))
            .map(|(key, f)| f.save().map(|(head, docs)| (key.path_stem(), head, docs)));
        // The live counts too: at the next start they spare a count of every open slot of every
        // feed (a scan of the whole feed log: about a second at 1,000,000 clippings).
        let counts: HashMap<String, u64> = catalog.iter().map(|(key, e)| (key.path_stem(), e.count)).collect();
        let outcome = self.store.batch().and_then(|b| {
            let n = b.save_snapshot(feeds, &mark)?;
            b.set_meta(SAVED_COUNTS, &serde_json::to_string(&counts)?)?;
            b.commit()?;
            Ok(n)
        });
        match outcome {
            Ok(n) => {
                info!(feeds = n, ms = started.elapsed().as_millis() as u64, "published feeds saved for the next start")
            }
            Err(e) => warn!("cannot save the published feeds; the next start renders them: {e:#}"),
        }
    }

    /// The live count of each feed (by path stem) saved with the feeds at the last clean stop,
    /// when those feeds are to be served (the same mark): the store has not changed since, as
    /// any start drops the mark before it writes anything (see [`Ingest::restore_snapshot`]).
    pub(super) fn saved_counts(&mut self) -> Result<Option<HashMap<String, u64>>> {
        let mark = self.snapshot_mark();
        let b = self.store.batch()?;
        if b.meta("snapshot")?.as_deref() != Some(mark.as_str()) {
            return Ok(None);
        }
        let Some(saved) = b.meta(SAVED_COUNTS)? else { return Ok(None) };
        Ok(serde_json::from_str(&saved)
            .map_err(|e| warn!("the saved feed counts do not read back; counting: {e}"))
            .ok())
    }

    /// Serves the feeds saved at the last clean stop, when they were rendered under the same
    /// build and configuration; the others are marked for rendering. The saved feeds are used
    /// once: the mark is dropped whatever happens next.
    pub(super) fn restore_snapshot(&mut self) -> Result<()> {
        let mark = self.snapshot_mark();
        let b = self.store.batch()?;
        let mut saved = Vec::new();
        b.take_snapshot(&mark, |head, docs| match FeedEntry::restore(&head, docs.into()) {
            Ok(entry) => saved.push(entry),
            Err(e) => warn!("a saved feed does not read back; rendering it: {e:#}"),
        })?;
        b.commit()?;
        let mut restored = 0;
        for entry in saved {
            if let Some(e) = self.core.catalog.get_mut(&entry.key) {
                self.core.generations.insert(entry.key.clone(), entry.generation);
                let entry = Arc::new(entry);
                e.feed = Some(entry.clone());
                self.core.note_unsettled(&entry);
                restored += 1;
            }
        }
        let dirty: Vec<FeedKey> =
            self.core.catalog.iter().filter(|(_, e)| e.feed.is_none()).map(|(k, _)| k.clone()).collect();
        if restored > 0 {
            info!(feeds = restored, to_render = dirty.len(), "serving the feeds saved at the last stop");
        }
        self.core.dirty.extend(dirty);
        Ok(())
    }
}
