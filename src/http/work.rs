//! Views made on request (archive pages, filtered views, clipping pages): off the async workers,
//! a few at a time, within a time budget, and only while someone waits for them.
//!
//! - A cached view never comes here: the handlers look in the cache first and answer a hit at
//!   once, so a flood of costly requests cannot delay a view already made.
//! - Each [`Lane`] has its own turns (as many as it has read connections): filtered views, which
//!   can read a feed's whole history, never queue ahead of archive pages and clipping pages.
//! - A request has `http.view_timeout` from its arrival, its wait for a turn included. Past it,
//!   the wait or the work stops (the store's progress handler interrupts the query) and the
//!   client gets 503 with `Retry-After`. So does a search while the writer is still filling the
//!   index of a store made before it existed.
//! - When the client goes away, hyper drops the request: the wait for a turn ends with it, and a
//!   drop guard cancels the [`Budget`], so work already started stops at its next check.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Response;
use tokio::sync::Semaphore;

use super::AppState;
use super::respond::{internal, not_found, unavailable};
use crate::budget::{Budget, Stopped};
use crate::search::NotReady;
use crate::views::{Lane, Views};

/// When to come back for a search while the index of an older store is being filled.
const INDEX_RETRY_SECS: u64 = 30;

/// The turns of each lane.
pub struct Lanes {
    pages: Arc<Semaphore>,
    filters: Arc<Semaphore>,
}

impl Default for Lanes {
    fn default() -> Lanes {
        Lanes {
            pages: Arc::new(Semaphore::new(Lane::Pages.width())),
            filters: Arc::new(Semaphore::new(Lane::Filters.width())),
        }
    }
}

impl Lanes {
    fn of(&self, lane: Lane) -> &Arc<Semaphore> {
        match lane {
            Lane::Pages => &self.pages,
            Lane::Filters => &self.filters,
        }
    }
}

/// Cancels the budget when the request is dropped (its client went away) or done.
struct CancelOnDrop(Budget);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Makes a view with `make` on a blocking thread, once `lane` has a turn free, within the
/// request's time budget. `Err` is the response to send instead: 404 without a store, 503 past
/// the budget, 500 on an error.
pub async fn make<T: Send + 'static>(
    state: &AppState,
    lane: Lane,
    make: impl FnOnce(&Views, &Budget) -> anyhow::Result<T> + Send + 'static,
) -> Result<T, Response<Body>> {
    let Some(views) = state.views.clone() else { return Err(not_found()) };
    let timeout = state.config.load().http.view_timeout;
    let deadline = tokio::time::Instant::now() + timeout;
    let budget = Budget::until(deadline.into_std());
    let _cancel = CancelOnDrop(budget.clone());
    let busy = || {
        let msg = format!("busy: this could not be made within {} s; try again later\n", timeout.as_secs());
        unavailable(msg, timeout.as_secs())
    };
    let turn = match tokio::time::timeout_at(deadline, state.lanes.of(lane).clone().acquire_owned()).await {
        Ok(turn) => turn.expect("the semaphore is never closed"),
        Err(_) => return Err(busy()),
    };
    // The turn goes with the work, so it is held until the blocking thread is done with the
    // connection, even when this request is dropped first.
    let work = tokio::task::spawn_blocking(move || {
        let _turn = turn;
        budget.check()?;
        make(&views, &budget)
    });
    match work.await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) if e.downcast_ref::<Stopped>().is_some() => {
            tracing::debug!(?lane, "view abandoned: {e}");
            Err(busy())
        }
        Ok(Err(e)) if e.downcast_ref::<NotReady>().is_some() => Err(unavailable(format!("{e}\n"), INDEX_RETRY_SECS)),
        Ok(Err(e)) => Err(internal(e)),
        Err(e) => Err(internal(e)),
    }
}
