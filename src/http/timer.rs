//! The timer hyper keeps a connection's header deadline with (`http.header_timeout`): the same
//! deadlines as tokio's own sleeps, at less cost per request.
//!
//! hyper asks its timer for a new sleep each time it waits for a request head and drops it once
//! the head is in. With a plain tokio sleep that is an entry put into tokio's timer wheel and
//! taken out again for every request: a boxed sleep, a look-up of the runtime, two passes
//! through the wheel's lock (about 4% of the CPU a 304 costs under load, `perf record`). Here a
//! connection keeps one tokio sleep, its *watchdog*, registered once: a header sleep moves the
//! watchdog only to an earlier deadline than the one it holds (not the usual case, since each
//! request's deadline is later than the last), and when the watchdog goes off before the
//! deadline of the sleep that waits on it, it is set again to that deadline. So while requests
//! come, the watchdog goes off at most once per timeout, and a header sleep still ends only once
//! its own deadline has passed (within the wheel's millisecond, as before).
//!
//! Each connection needs a timer of its own ([`ConnTimer::new`]); its sleeps share the watchdog.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::time::Sleep;

/// The watchdog of one connection: made at its first sleep (within the runtime).
type Watchdog = Arc<Mutex<Option<Pin<Box<Sleep>>>>>;

/// One connection's timer, for hyper.
#[derive(Default)]
pub struct ConnTimer {
    dog: Watchdog,
    /// A deadline the first sleep may not pass: that of a head begun before hyper took the
    /// connection (`fast`), taken by the first sleep.
    first: Mutex<Option<Instant>>,
    /// Whether `first` is still to be taken (so later sleeps do not lock it).
    capped: std::sync::atomic::AtomicBool,
}

impl ConnTimer {
    /// A connection's timer; its first sleep ends by `first` at the latest, when given.
    pub fn new(first: Option<Instant>) -> ConnTimer {
        ConnTimer { capped: first.is_some().into(), first: Mutex::new(first), ..ConnTimer::default() }
    }

    /// `deadline`, or the first deadline when this is the first sleep and that is earlier.
    fn capped(&self, deadline: Instant) -> Instant {
        use std::sync::atomic::Ordering;
        if !self.capped.swap(false, Ordering::Relaxed) {
            return deadline;
        }
        let first = self.first.lock().unwrap_or_else(PoisonError::into_inner).take();
        first.map_or(deadline, |first| first.min(deadline))
    }
}

/// A sleep until `deadline`, kept by the connection's watchdog.
struct HeadSleep {
    deadline: tokio::time::Instant,
    dog: Watchdog,
}

impl hyper::rt::Timer for ConnTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(self.now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HeadSleep { deadline: self.capped(deadline).into(), dog: self.dog.clone() })
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<HeadSleep>() {
            Some(s) => s.get_mut().deadline = new_deadline.into(),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }

    /// tokio's clock, as hyper's own tokio timer reads it.
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self.deadline;
        let mut dog = self.dog.lock().unwrap_or_else(PoisonError::into_inner);
        let dog = dog.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if dog.deadline() > deadline {
            dog.as_mut().reset(deadline);
        }
        loop {
            match dog.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                // The watchdog went off at or after this deadline: it has passed.
                Poll::Ready(()) if dog.deadline() >= deadline => return Poll::Ready(()),
                // It went off for an earlier deadline (a sleep since dropped): wait for this one.
                Poll::Ready(()) => dog.as_mut().reset(deadline),
            }
        }
    }
}

impl hyper::rt::Sleep for HeadSleep {}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Timer;
    use std::future::poll_fn;

    /// Polls once: whether the sleep has ended.
    async fn ended(sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>) -> bool {
        poll_fn(|cx| Poll::Ready(sleep.as_mut().poll(cx).is_ready())).await
    }

    /// Whether the sleep has not ended before `deadline`: pending, or ended with `deadline`
    /// passed. (On a loaded machine any deadline may pass between two lines; what must never
    /// happen is an end before it.)
    async fn not_ended_early(sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, timer: &ConnTimer, deadline: Instant) -> bool {
        !ended(sleep).await || timer.now() >= deadline
    }

    /// Waits for the sleep to end (a guard against hanging, not a measure); when it did.
    async fn end_of(sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, timer: &ConnTimer) -> Instant {
        tokio::time::timeout(Duration::from_secs(30), poll_fn(|cx| sleep.as_mut().poll(cx)))
            .await
            .expect("the sleep ends");
        timer.now()
    }

    #[tokio::test]
    async fn a_sleep_ends_at_its_own_deadline_not_at_the_watchdogs_earlier_one() {
        let timer = ConnTimer::new(None);
        let t0 = timer.now();
        let mut first = timer.sleep_until(t0 + Duration::from_millis(50));
        assert!(not_ended_early(&mut first, &timer, t0 + Duration::from_millis(50)).await);
        // The head came in: hyper drops the sleep; the watchdog stays set for 50 ms.
        drop(first);
        let mut second = timer.sleep_until(t0 + Duration::from_millis(300));
        assert!(not_ended_early(&mut second, &timer, t0 + Duration::from_millis(300)).await);
        let at = end_of(&mut second, &timer).await;
        assert!(at >= t0 + Duration::from_millis(300), "ended {:?} after the start", at - t0);
        // The watchdog is set again for each later sleep of the connection.
        let mut third = timer.sleep_until(at + Duration::from_millis(100));
        assert!(end_of(&mut third, &timer).await >= at + Duration::from_millis(100));
    }

    #[tokio::test]
    async fn an_earlier_deadline_moves_the_watchdog_and_reset_moves_a_sleep() {
        let timer = ConnTimer::new(None);
        let t0 = timer.now();
        let mut late = timer.sleep_until(t0 + Duration::from_secs(3600));
        assert!(!ended(&mut late).await);
        drop(late);
        let mut early = timer.sleep_until(t0 + Duration::from_millis(50));
        let at = end_of(&mut early, &timer).await;
        assert!(at >= t0 + Duration::from_millis(50));
        timer.reset(&mut early, at + Duration::from_millis(200));
        assert!(not_ended_early(&mut early, &timer, at + Duration::from_millis(200)).await, "reset to 200 ms from now");
        assert!(end_of(&mut early, &timer).await >= at + Duration::from_millis(200));
    }
}
