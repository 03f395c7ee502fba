//! Progress of a large batch (a cold start, a rescan that finds many files, a folder moved in):
//! files read of those found, then items refreshed of those to refresh, with the rate. The
//! writer ticks it after each chunk; every [`REPORT_EVERY`] a tick logs one info line and
//! republishes the status and the index, so `/api/status` and the home page say how far along
//! the batch is. Counts only grow within one batch, so what readers see never goes back.

use std::time::{Duration, Instant};

use tracing::info;

use super::Ingest;
use crate::site::Indexing;

/// How often a running batch reports (log line, status and index republished).
pub(super) const REPORT_EVERY: Duration = Duration::from_millis(1500);

/// Where a large batch is.
#[derive(Debug, Clone)]
pub(super) struct Progress {
    /// Files to read (new or changed), and those read and recorded so far.
    pub(super) files_found: u64,
    pub(super) files_read: u64,
    /// Items the read files name, to bring up to date (known once every file is read).
    pub(super) items_found: u64,
    pub(super) items_done: u64,
    started: Instant,
    reported: Instant,
}

impl Progress {
    pub(super) fn new(files_found: u64) -> Progress {
        let now = Instant::now();
        Progress { files_found, files_read: 0, items_found: 0, items_done: 0, started: now, reported: now }
    }

    /// The phase: files are read first, then their items refreshed.
    fn phase(&self) -> &'static str {
        if self.files_read < self.files_found { "reading" } else { "refreshing" }
    }

    /// Files read per second since the batch began.
    fn files_per_second(&self) -> f64 {
        let secs = self.started.elapsed().as_secs_f64();
        if secs > 0.0 { self.files_read as f64 / secs } else { 0.0 }
    }

    /// The form `/api/status` and the index show.
    pub(super) fn indexing(&self) -> Indexing {
        Indexing {
            files_found: self.files_found,
            files_per_second: (self.files_per_second() * 10.0).round() / 10.0,
            files_read: self.files_read,
            items_done: self.items_done,
            items_found: self.items_found,
            phase: self.phase(),
            seconds: (self.started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        }
    }

    /// Whether a report is due, and if so, marks it made.
    fn due(&mut self) -> bool {
        let due = self.reported.elapsed() >= REPORT_EVERY;
        if due {
            self.reported = Instant::now();
        }
        due
    }
}

impl Ingest {
    /// Starts reporting the progress of a batch of `files` to read.
    pub(super) fn progress_begin(&mut self, files: usize) {
        self.core.progress = Some(Progress::new(files as u64));
        self.core.publish(&self.core.rejections);
    }

    /// Counts work done (`files` read, `items` refreshed, `items_found` named for refreshing);
    /// logs and republishes when a report is due.
    pub(super) fn progress_tick(&mut self, files: usize, items: usize, items_found: usize) {
        let Some(p) = self.core.progress.as_mut() else { return };
        p.files_read = (p.files_read + files as u64).min(p.files_found);
        p.items_found += items_found as u64;
        p.items_done = (p.items_done + items as u64).min(p.items_found);
        if !p.due() {
            return;
        }
        let p = p.clone();
        if p.files_read < p.files_found {
            info!(
                done = p.files_read,
                found = p.files_found,
                files_per_s = p.files_per_second().round() as u64,
                "indexing: {} of {} files read",
                p.files_read,
                p.files_found
            );
        } else {
            info!(
                done = p.items_done,
                found = p.items_found,
                "indexing: {} of {} items in their feeds",
                p.items_done,
                p.items_found
            );
        }
        self.core.publish(&self.core.rejections);
    }

    /// Ends the report of a batch (its last state is in the reconcile's own log line).
    pub(super) fn progress_end(&mut self) {
        self.core.progress = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_follow_the_counts() {
        let mut p = Progress::new(10);
        assert_eq!(p.indexing().phase, "reading");
        p.files_read = 10;
        p.items_found = 4;
        let i = p.indexing();
        assert_eq!((i.phase, i.files_read, i.files_found, i.items_found), ("refreshing", 10, 10, 4));
        assert!(i.files_per_second >= 0.0);
    }

    #[test]
    fn a_report_is_due_once_per_period() {
        let mut p = Progress::new(1);
        assert!(!p.due(), "not at once");
        p.reported = Instant::now() - REPORT_EVERY;
        assert!(p.due());
        assert!(!p.due(), "not twice in a row");
    }
}
