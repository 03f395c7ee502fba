//! The budget of one request's work on the store: a deadline and a cancellation flag. `http`
//! makes one for every view it has rendered (an archive page, a filtered view, a clipping's page)
//! and cancels it when the client goes away; the store's progress handler and `views` check it
//! between steps, so work that nobody waits for, or that has run past its time, stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Why work stopped before it was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Stopped {
    #[error("the client went away")]
    Cancelled,
    #[error("the request ran out of time")]
    OutOfTime,
}

/// A deadline and a cancellation flag, shared by the request and the thread doing its work.
#[derive(Debug, Clone)]
pub struct Budget(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    deadline: Option<Instant>,
    cancelled: AtomicBool,
}

impl Budget {
    /// Work that must be done by `deadline`.
    pub fn until(deadline: Instant) -> Budget {
        Budget(Arc::new(Inner { deadline: Some(deadline), cancelled: AtomicBool::new(false) }))
    }

    /// Work with no deadline (tools and tests); it stops only when cancelled.
    pub fn unlimited() -> Budget {
        Budget(Arc::new(Inner { deadline: None, cancelled: AtomicBool::new(false) }))
    }

    /// Nobody waits for the result any more.
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::Relaxed);
    }

    /// `Err` once the work should stop: cancelled, or past its deadline.
    pub fn check(&self) -> Result<(), Stopped> {
        if self.0.cancelled.load(Ordering::Relaxed) {
            Err(Stopped::Cancelled)
        } else if self.0.deadline.is_some_and(|d| Instant::now() >= d) {
            Err(Stopped::OutOfTime)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_budget_stops_when_cancelled_or_past_its_deadline() {
        let b = Budget::until(Instant::now() + Duration::from_secs(3600));
        assert_eq!(b.check(), Ok(()));
        b.clone().cancel();
        assert_eq!(b.check(), Err(Stopped::Cancelled), "clones share the flag");
        let late = Budget::until(Instant::now());
        assert_eq!(late.check(), Err(Stopped::OutOfTime));
        assert_eq!(Budget::unlimited().check(), Ok(()));
    }
}
