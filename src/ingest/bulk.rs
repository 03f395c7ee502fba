//! The writer's side of a cold build (a first start, a rebuild): `ingest/apply` sets the
//! store's per-row upkeep aside for the batch that fills a store never reconciled
//! (`Store::begin_cold`, `Store::end_cold`; what is set aside and how it is done again is
//! `store/bulk`'s), and the test hook that cuts such a build short as a crash would.

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
