//! The job loop: the writer takes jobs off its queue, merges what is queued (one rescan covers
//! every touched path; touched paths are de-duplicated), and runs them. Its timers: a failed
//! job or reload is followed by a rescan after a growing delay (which re-maps first, so a
//! reload that failed is applied once the store can take it), files rejected while still being written
//! are looked at again, old tombstones are purged hourly, tokens are read again every few
//! seconds, the store's file is checked to still be the one opened, and a feed dated ambiguously
//! is rendered again once the clock has passed that date. A store made before the search index
//! existed has its items indexed here, a chunk whenever no job waits; the index's segments are
//! merged here too, a step at a time once no change or reload has come for a moment (a topic
//! remap re-indexes every item it changes; unmerged, the old entries would stay in the index,
//! marked deleted). A job that fails or panics is contained: the feeds keep their last content.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use anyhow::Result;
use tracing::{debug, error, info};

use super::{Ingest, now};
use crate::config::Config;
use crate::feed::FeedKey;
use crate::job::{Job, Stopped, is_stopped};
use crate::metrics::Metrics;
use crate::store::is_store_failure;
use crate::systemd::beat_every;

/// Delays before a failed update is retried (as a rescan), doubling up to the maximum: short,
/// so that once a full disk has room again the changes waiting are stored within seconds.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// How often the writer checks that the store's file is still the one it opened.
const STORE_FILE_EVERY: Duration = Duration::from_secs(2);
/// How often feed tokens are read again from the store (`clipfeed token rotate` writes them).
const TOKENS_EVERY: Duration = Duration::from_secs(3);
/// How often tombstones older than `tombstone_days` are dropped.
const PURGE_EVERY: Duration = Duration::from_secs(3600);
/// Items indexed per transaction while the search index of an older store is filled: a few tens
/// of milliseconds of work, so a file event waits at most that long behind a chunk.
const BACKFILL_CHUNK: usize = 200;
/// How long the writer must have had no change before it merges the search index's segments
/// (`fts::merge_step`), and how much each step may do: a few milliseconds, so a file event waits
/// at most that long behind one.
const MERGE_IDLE: Duration = Duration::from_millis(200);
const MERGE_PAGES: i64 = 64;

/// The jobs taken off the queue at once, merged.
#[derive(Default)]
struct Work {
    touched: Vec<PathBuf>,
    /// The first file event among them.
    since: Option<Instant>,
    reloads: Vec<(Arc<Config>, Sender<()>)>,
    /// Changes to the WebSub subscriptions, in the order the hub made them.
    subscriptions: Vec<crate::websub::Change>,
    rescan: bool,
    stop: bool,
}

/// When the loop has something to do besides jobs.
struct Timers {
    /// After a failure: when to rescan, and the delay that was waited.
    retry: Option<(Instant, Duration)>,
    next_purge: Instant,
    next_tokens: Instant,
    next_store_file: Instant,
    /// While the search index is being filled: when the next chunk is due.
    backfill: Option<Instant>,
    /// While the search index may have segments to merge: when the next step is due (put off
    /// by every change and reload).
    merge: Option<Instant>,
}

impl Ingest {
    /// Runs jobs until [`Job::Shutdown`] or until every sender is gone. A job that fails (the
    /// store is locked or full, say) is followed by a rescan after a growing delay, so nothing
    /// it should have done is lost; a panic is contained the same way.
    pub(crate) fn run(mut self, jobs: Receiver<Job>) {
        let started = Instant::now();
        let backfill = self.store.batch().and_then(|b| b.search_ready()).map_or(Some(started), |ready| {
            if !ready {
                info!("indexing the clippings for search, a chunk at a time between other work");
            }
            (!ready).then_some(started)
        });
        let mut timers = Timers {
            retry: None,
            next_purge: started + PURGE_EVERY,
            next_tokens: started + TOKENS_EVERY,
            next_store_file: started + STORE_FILE_EVERY,
            backfill,
            merge: Some(started + MERGE_IDLE),
        };
        let mut indexed = 0;
        let mut cut_short = false;
        loop {
            self.core.heartbeat.beat();
            let recheck_at = self.core.recheck.iter().map(|(at, _)| *at).min();
            let wake = [
                Some(timers.next_purge),
                Some(timers.next_tokens),
                Some(timers.next_store_file),
                timers.retry.map(|(at, _)| at),
                recheck_at,
                self.core.settle_at().filter(|_| timers.retry.is_none()),
                timers.backfill,
                timers.merge,
            ]
            .into_iter()
            .flatten()
            .min();
            // Wake at least every beat_every(), so the watchdog knows the writer is alive.
            let wait = wake.map_or(beat_every(), |w| w.saturating_duration_since(Instant::now()).min(beat_every()));
            let Some(mut work) = take(&jobs, wait) else { break };
            self.save_subscriptions(std::mem::take(&mut work.subscriptions));
            if cut_short {
                // The stop cut an update short: until its `Shutdown`, the queue is still taken
                // (WebSub subscription changes kept, reloads answered), nothing else begun.
                for (_, done) in std::mem::take(&mut work.reloads) {
                    let _ = done.send(());
                }
                if work.stop {
                    break;
                }
                continue;
            }
            for (cfg, done) in std::mem::take(&mut work.reloads) {
                match self.reload(cfg) {
                    Ok(needs_rescan) => work.rescan |= needs_rescan,
                    Err(e) => {
                        // The rescan of a retry re-maps first (`contained`), then renders what
                        // is still dirty: the new configuration is applied once the store can be.
                        error!(
                            retry_in_s = RETRY_FIRST.as_secs_f32(),
                            "applying the new configuration failed, tried again: {e:#}"
                        );
                        timers.retry.get_or_insert((Instant::now() + RETRY_FIRST, RETRY_FIRST));
                    }
                }
                // A remap re-indexed what it changed (rendered or not): its segments merged once idle.
                timers.merge = Some(Instant::now() + MERGE_IDLE);
                self.core.access_changed("the feed is no longer offered under this URL");
                let _ = done.send(());
            }
            let now = Instant::now();
            if timers.retry.is_some_and(|(at, _)| at <= now) {
                work.rescan = true;
            }
            // Files that were rejected while still being written are looked at again.
            let (due, later): (Vec<_>, Vec<_>) =
                std::mem::take(&mut self.core.recheck).into_iter().partition(|(at, _)| *at <= now);
            self.core.recheck = later;
            work.touched.extend(due.into_iter().map(|(_, p)| p));
            self.on_timers(now, &mut timers);
            if work.rescan || !work.touched.is_empty() {
                match self.contained(work.rescan, work.touched, work.since, timers.retry) {
                    Ok(retry) => {
                        timers.retry = retry;
                        timers.merge = Some(Instant::now() + MERGE_IDLE);
                    }
                    Err(Stopped) => {
                        // What the batch committed stays; the rest is finished at the next start.
                        info!("stopping: the update under way was cut short at a chunk's end");
                        cut_short = true;
                    }
                }
            }
            if work.stop {
                break;
            }
            if !cut_short && timers.backfill.is_some_and(|at| at <= Instant::now()) {
                timers.backfill = self.backfill_search(&mut indexed, started);
            } else if !cut_short && timers.merge.is_some_and(|at| at <= Instant::now()) {
                timers.merge = self.merge_search();
            }
        }
        // Published feeds are saved only when they are what the store holds.
        if timers.retry.is_none() && !cut_short {
            self.save_snapshot();
        }
        // The store at rest is its database alone (the saved feeds went through the WAL).
        if let Err(e) = self.store.cut_wal_at_stop() {
            debug!("the WAL was not cut at the stop: {e:#}");
        }
        debug!("writer stopped");
    }

    /// The hourly purge of old tombstones, the re-reading of tokens, and the settling of
    /// ambiguous feed dates once the clock has passed them, when due.
    fn on_timers(&mut self, now: Instant, timers: &mut Timers) {
        if timers.retry.is_none() && self.core.settle_due() {
            // An ambiguous Last-Modified moves to a later second, so If-Modified-Since works again.
            self.core.settling = true;
            let settled = self.render();
            self.core.settling = false;
            if let Err(e) = settled {
                error!("settling ambiguous feed dates failed: {e:#}");
            }
        }
        if now >= timers.next_purge {
            timers.next_purge = now + PURGE_EVERY;
            if let Err(e) = self.purge_tombstones().and_then(|()| self.render()) {
                error!("dropping old tombstones failed: {e:#}");
            }
        }
        if now >= timers.next_store_file {
            timers.next_store_file = now + STORE_FILE_EVERY;
            self.check_store_file();
        }
        if now >= timers.next_tokens {
            timers.next_tokens = now + TOKENS_EVERY;
            // `clipfeed token rotate` writes the store; the new token takes over here.
            match self.refresh_tokens() {
                Ok(true) => {
                    self.core.publish(&self.core.rejections.clone());
                    self.core.access_changed("the feed's token was replaced");
                }
                Ok(false) => {}
                Err(e) => error!("reading feed tokens failed: {e:#}"),
            }
        }
    }

    /// Runs a rescan or handles touched paths, with any failure or panic contained. Returns when
    /// to retry: `None` after a success; after a failure, a delay that doubles while failures
    /// continue (`retry` is the last one); `Stopped` when the stop cut the work short.
    fn contained(
        &mut self,
        rescan: bool,
        touched: Vec<PathBuf>,
        since: Option<Instant>,
        retry: Option<(Instant, Duration)>,
    ) -> Result<Option<(Instant, Duration)>, Stopped> {
        let started = Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if rescan {
                // A rescan first brings the store's topics to the configuration's: nothing when
                // they are (one read), a remap and its render when a reload's failed.
                self.remap()
                    .and_then(|()| if self.remap_open { self.render() } else { Ok(()) })
                    .and_then(|()| self.reconcile())
            } else {
                self.touched(touched)
            }
        }));
        self.core.metrics.ingest_seconds.observe(started.elapsed());
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) if is_stopped(&e) => return Err(Stopped),
            Ok(Err(e)) => Some((format!("{e:#}"), is_store_failure(&e))),
            Err(panic) => Some((panic_message(&*panic), false)),
        };
        let Some((why, store_failed)) = failure else {
            if let Some(since) = since {
                self.core.metrics.watch_to_publish_seconds.observe(since.elapsed());
            }
            self.store_recovered();
            return Ok(None);
        };
        let delay = retry.map_or(RETRY_FIRST, |(_, d)| (d * 2).min(RETRY_MAX));
        if store_failed {
            let store = self.store.file_name();
            error!(%store, retry_in_s = delay.as_secs_f32(), "update failed, the store cannot be written and feeds keep their last content: {why}");
            self.store_failed(format!("cannot write to the store {store}: {why}"));
        } else {
            error!(retry_in_s = delay.as_secs_f32(), "update failed, feeds keep their last content: {why}");
        }
        Ok(Some((Instant::now() + delay, delay)))
    }

    /// Indexes one chunk of the items a store made before the search index holds, in its own
    /// transaction, with a failure or panic contained. Returns when the next chunk is due:
    /// `None` once the index is complete, a minute later after a failure.
    fn backfill_search(&mut self, indexed: &mut usize, started: Instant) -> Option<Instant> {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let b = self.store.batch()?;
            let step = b.backfill_search(BACKFILL_CHUNK)?;
            b.commit()?;
            anyhow::Ok(step)
        }));
        match outcome {
            Ok(Ok((n, done))) => {
                *indexed += n;
                if !done {
                    return Some(Instant::now());
                }
                info!(items = *indexed, seconds = started.elapsed().as_secs(), "search index complete");
                None
            }
            Ok(Err(e)) => {
                error!(retry_in_s = RETRY_MAX.as_secs(), "indexing clippings for search failed: {e:#}");
                Some(Instant::now() + RETRY_MAX)
            }
            Err(panic) => {
                error!(
                    retry_in_s = RETRY_MAX.as_secs(),
                    "indexing clippings for search failed: {}",
                    panic_message(&*panic)
                );
                Some(Instant::now() + RETRY_MAX)
            }
        }
    }

    /// One step of the search index's merging, in its own transaction, a failure contained (the
    /// index stays as it is: merging changes its layout, not what it answers). Returns when the
    /// next step is due: at once while steps find work, else at the next change.
    fn merge_search(&mut self) -> Option<Instant> {
        let outcome = self.store.batch().and_then(|b| {
            let more = b.merge_search_step(MERGE_PAGES)?;
            b.commit()?;
            Ok(more)
        });
        match outcome {
            Ok(true) => Some(Instant::now()),
            Ok(false) => None,
            Err(e) => {
                debug!("merging the search index's segments failed, tried again at the next change: {e:#}");
                None
            }
        }
    }

    /// A write to the store failed: counted, and shown in `/api/status` and the `store_ok`
    /// gauge until a write succeeds.
    fn store_failed(&mut self, why: String) {
        Metrics::add(&self.core.metrics.store_errors, 1);
        self.core.store_error = Some(why);
        self.core.publish(&self.core.rejections.clone());
    }

    /// A write succeeded: a failure shown before is cleared.
    fn store_recovered(&mut self) {
        if self.core.store_error.take().is_some() {
            info!(store = %self.store.file_name(), "the store takes writes again; the changes that waited are stored");
            self.core.publish(&self.core.rejections.clone());
        }
    }

    /// Notices a store file deleted or replaced under the running daemon (logged once, counted,
    /// shown in `/api/status`), and its return.
    fn check_store_file(&mut self) {
        let now = self.store.check_file().err();
        if now == self.core.store_gone {
            return;
        }
        match &now {
            Some(what) => {
                error!(store = %self.store.file_name(), "{what}");
                Metrics::add(&self.core.metrics.store_errors, 1);
            }
            None => info!(store = %self.store.file_name(), "the store file is back at its path"),
        }
        self.core.store_gone = now;
        self.core.publish(&self.core.rejections.clone());
    }

    /// Drops tombstones older than `tombstone_days` and marks their feeds for rendering.
    pub(super) fn purge_tombstones(&mut self) -> Result<()> {
        let cutoff = now() - chrono::Duration::days(i64::from(self.core.cfg.tombstone_days));
        let b = self.store.batch()?;
        let feeds = b.purge_tombstones(cutoff)?;
        b.commit()?;
        self.core.dirty.extend(feeds.iter().filter_map(|stem| FeedKey::from_stem(stem)));
        Ok(())
    }
}

/// Waits up to `wait` for a job, then takes every job queued, merged. `None` when every sender
/// is gone.
fn take(jobs: &Receiver<Job>, wait: Duration) -> Option<Work> {
    let mut work = Work::default();
    let first = match jobs.recv_timeout(wait) {
        Ok(job) => job,
        Err(RecvTimeoutError::Timeout) => return Some(work),
        Err(RecvTimeoutError::Disconnected) => return None,
    };
    for job in std::iter::once(first).chain(jobs.try_iter()) {
        match job {
            Job::Touched { paths, since } => {
                work.touched.extend(paths);
                work.since = Some(work.since.map_or(since, |s| s.min(since)));
            }
            Job::Reload(cfg, done) => work.reloads.push((cfg, done)),
            Job::Subscription(change) => work.subscriptions.push(change),
            Job::Rescan => work.rescan = true,
            Job::Shutdown => work.stop = true,
        }
    }
    Some(work)
}

/// The text of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let msg = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
    format!("internal error (panic): {}", msg.unwrap_or_else(|| "unknown".into()))
}
