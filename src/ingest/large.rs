//! A large batch (a cold start, a rebuild, a folder of thousands moved in), in two phases: its
//! files read and parsed on the pool a chunk at a time while the writer records the last chunk,
//! each item they name noted in the store's `pending` table with its earliest date; then the
//! items refreshed oldest first, read back from that table a chunk per transaction. Memory stays
//! bounded whatever the batch's size; the table carries the second phase across a crash or a
//! stop (each phase ends at a chunk's end once the stop is raised); and a cold build's
//! compaction, when a stop came first, is left to the next reconcile.

use std::collections::HashMap;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use tracing::{debug, info, warn};

use super::Ingest;
use super::apply::{CHUNK, Effects, PARSE_CHUNK};
use super::bulk::{Loaded, with_json};
use super::scan::{self, Change};
use super::to_read::ToRead;
use crate::store::FileId;

/// The `meta` key set at a cold build's end: its compaction is due, done by the reconcile once
/// the build's feeds are published, or by the next start's after a stop.
pub(super) const COMPACT_DUE: &str = "compact_due";

impl Ingest {
    /// Compacts the store after its cold build (after the batch's page cache is given back: the
    /// compaction needs none of it). Only the file's size is at stake: a failure is told, the
    /// batch stands, and it is not tried again (a disk too full for the copy would fail it at
    /// every reconcile). A stop interrupts it while the compact copy is built, about the first
    /// two thirds of it (the copy written back, and the WAL cut, run to their end): then
    /// [`COMPACT_DUE`] stays, and the next start compacts. The writer's heartbeat is kept by a
    /// thread of its own meanwhile: the copy written back runs no SQLite step to beat from, and
    /// takes minutes at a million clippings (systemd's watchdog would take the writer for hung).
    pub(super) fn compact(&mut self) {
        let stop = self.core.stop.clone();
        let held = held_compaction();
        let heartbeat = self.core.heartbeat.clone();
        let (finished, beating) = std::sync::mpsc::channel::<()>();
        let done = std::thread::scope(|s| {
            s.spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    beating.recv_timeout(crate::systemd::beat_every())
                {
                    heartbeat.beat();
                }
            });
            let compacted = self.store.compact(move || {
                while held && !stop.raised() {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                stop.raised()
            });
            drop(finished);
            compacted
        });
        let stopped = done.is_err() && self.core.stop.raised();
        if let Err(e) = &done {
            match stopped {
                true => info!("the store's compaction is left to the next start: a stop came"),
                false => warn!("the store was not compacted after its cold build (not tried again): {e:#}"),
            }
        }
        if !stopped && let Err(e) = self.store.batch().and_then(|b| b.clear_meta(COMPACT_DUE).and_then(|()| b.commit()))
        {
            warn!("the store's compaction could not be marked done: {e:#}");
        }
    }

    /// [`Ingest::apply`] for a batch too large for one transaction, reporting its progress.
    pub(super) fn apply_large(&mut self, removed: Vec<FileId>, to_load: ToRead, t: DateTime<Utc>) -> Result<()> {
        for chunk in removed.chunks(CHUNK) {
            self.record_pending(chunk.iter().cloned().map(|id| (Change::Removed(id), None)).collect(), t)?;
        }
        // The next chunk is read and parsed (on the pool) while the writer records the last.
        let (limits, heartbeat) = (self.core.limits, self.core.heartbeat.clone());
        let (send, loaded) = std::sync::mpsc::sync_channel::<(usize, Vec<Loaded>)>(1);
        std::thread::scope(|s| -> Result<()> {
            std::thread::Builder::new()
                .name("clipfeed-read".into())
                .spawn_scoped(s, move || {
                    for chunk in to_load.chunks(PARSE_CHUNK) {
                        if send.send((chunk.len(), with_json(scan::load_all(chunk, limits, &heartbeat)))).is_err() {
                            return;
                        }
                    }
                })
                .context("starting the thread that reads files")?;
            // Returning (an error) drops the receiving end, which stops the reader.
            for (n, changes) in loaded {
                self.core.stop.check()?;
                self.record_pending(changes, t)?;
                self.progress_tick(n, 0, 0);
            }
            Ok(())
        })?;
        let items = self.store.batch()?.pending_count()?;
        self.progress_tick(0, 0, items as usize);
        self.refresh_pending(t)
    }

    /// The first phase of a large batch: records one chunk of changes and notes the items they
    /// name in the `pending` table, with their earliest date, in one transaction.
    fn record_pending(&mut self, changes: Vec<Loaded>, t: DateTime<Utc>) -> Result<()> {
        let b = self.store.batch()?;
        let mut chunk_keys = HashMap::new();
        let mut fx = Effects::default();
        self.core.record(&b, changes, t, &mut chunk_keys, &mut fx)?;
        for (key, at) in &chunk_keys {
            b.add_pending(key, *at)?;
        }
        b.commit()?;
        fx.apply(&mut self.core);
        Ok(())
    }

    /// Refreshes the items in the `pending` table a chunk per transaction, oldest first (so the
    /// feed logs, and the archive pages, fill in date order whatever cut the batch before); once
    /// the stop is raised, ends before the next chunk ([`crate::job::Stopped`]: the rest stay
    /// pending).
    fn refresh_pending(&mut self, t: DateTime<Utc>) -> Result<()> {
        loop {
            self.core.stop.check()?;
            let mut n = 0;
            self.refresh_and_commit(t, |_, b, _| {
                let chunk = b.pending_oldest(CHUNK)?;
                for key in &chunk {
                    b.clear_pending(key)?;
                }
                n = chunk.len();
                Ok(chunk)
            })?;
            if n == 0 {
                return Ok(());
            }
            self.progress_tick(0, n, 0);
            debug!(items = n, "a chunk of items refreshed");
            super::bulk::refresh_committed();
            if n < CHUNK {
                // None left: a stop raised now would only cut what follows the batch.
                return Ok(());
            }
        }
    }
}

/// Test builds only: `CLIPFEED_TEST_HOLD_COMPACTION` holds a compaction at its first look at the
/// stop until a stop comes, so tests can see what is served meanwhile and stop it there.
fn held_compaction() -> bool {
    cfg!(debug_assertions) && std::env::var_os("CLIPFEED_TEST_HOLD_COMPACTION").is_some()
}
