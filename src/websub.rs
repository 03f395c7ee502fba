//! The WebSub hub (W3C WebSub Recommendation): subscribers POST to `/websub`, the hub verifies
//! their intent with a GET to their callback, and after each publish it POSTs every changed
//! feed's new document to that feed's subscribers, signed with their secret. It also pings the
//! operator's external hubs. It owns the `websub:` configuration section, the subscription
//! rules, the callback address policy and every outbound request; it never renders a feed, reads
//! the clock of a feed, or touches the store (the caller persists what it reports).
//!
//! # Wiring (for the daemon, the HTTP layer and the writer)
//!
//! - Configuration: `RawConfig` gets `#[serde(default)] websub: websub::RawWebSub`, `Config`
//!   gets `websub: websub::Settings` from [`Settings::from_raw`]`(raw, base_dir)`. Off by
//!   default; when off, nothing here is started.
//! - Start: [`Hub::start`]`(settings, saved, topics, persist, runtime)` on the daemon's tokio
//!   runtime, with `saved` = the store's live subscriptions (`Batch::websub_subscriptions`),
//!   `topics` = a predicate saying whether a URL is the self URL of a feed that may be subscribed
//!   (public feeds; a private feed's only with its current `?token=`), and `persist` = a hook that
//!   hands each [`Change`] to whoever writes the store (`Batch::websub_apply`). The hook is called
//!   with the hub's table locked, in order: it must only pass the change on (a channel send).
//! - `/websub`: `POST` with the body read up to [`MAX_FORM_BYTES`] (413 beyond); answer with
//!   [`Hub::request`]`(content_type, body)`'s status and plain-text body. Other methods: 405.
//! - Advertising: every feed's `Link` header and its feed-level links name
//!   [`Settings::advertised_hubs`]`(own_url, private)` and the feed's self URL; [`link_header`]
//!   formats the header, the same one deliveries carry.
//! - Publish: after the writer publishes, it calls [`Hub::publish`] with one [`Publication`] per
//!   changed feed document (every format is its own topic). It returns at once.
//! - A private feed's token rotated: [`Hub::recheck`] ends the subscriptions whose topic the
//!   predicate now refuses, sending each `hub.mode=denied`.
//!
//! # Decisions
//!
//! - Subscriptions live in memory (`subs::Table`), loaded at start and reported as changes: the
//!   hub is testable without SQLite, and the store keeps its single writer.
//! - A request is checked at once (form, topic, limits, an address literal in the callback) and
//!   answered 202 or 4xx/5xx with a plain-text reason; the verification follows on the runtime.
//!   An unsubscribe for no subscription is answered 202 and verifies nothing, so strangers can
//!   not make the hub call arbitrary URLs with it.
//! - After its retries a failing subscription is dropped (so is one answering 410 Gone, or whose
//!   callback now resolves to a refused address). WebSub §7 would keep it until its lease ends;
//!   we drop it so that a dead callback costs nothing at each later change. The subscriber can
//!   subscribe again.
//! - Outbound requests: see `client` (no redirects, no second lookup, bounded) and `policy`.
//!
//! # Bounds (defaults in `settings`), and why
//!
//! - A request body: 16 KiB ([`MAX_FORM_BYTES`]); URLs 2 KiB each; `hub.secret` < 200 bytes.
//! - Leases 300 s to 30 days, 10 days when none is asked (the Recommendation's suggestion);
//!   every lease ends, and a subscriber renews by subscribing again.
//! - 10,000 subscriptions (a few MiB), at most 1,000 per callback host: a feed reader service
//!   subscribing to every feed of a large site (three formats each) fits; one host cannot take
//!   the whole hub. 256 requests waiting for verification, 32 per host, 8 verifications at once:
//!   each is a GET to a URL a stranger chose, so a burst of requests cannot turn the hub into a
//!   flood aimed at one host.
//! - 16 deliveries at once (sockets and memory stay small on a small machine; a fan-out to
//!   10,000 subscribers still takes seconds, not minutes); 10 s per request, lookup to last
//!   byte; responses read: the challenge's length (verification) or nothing (the status only);
//!   hyper's read buffer 16 KiB per connection.
//! - Retries: 6, after 5 s doubling (5 s to 160 s, about 5 minutes in all): a subscriber's
//!   restart is ridden out, a dead callback is dropped within minutes.
//! - Coalescing: 250 ms per topic, first change at once (so a lone change goes out in
//!   milliseconds), later ones in the window as one delivery of the latest document.
//! - Queue: per topic only the latest document and per subscription one job (drop-oldest), and
//!   32 MiB of documents held at most; only topics with subscribers are queued at all.

mod client;
mod deliver;
mod form;
mod hub;
mod ping;
mod policy;
mod settings;
mod sign;
mod subs;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::Result;
use bytes::Bytes;

pub use form::{MAX_FORM_BYTES, normalize_topic};
#[cfg(test)]
pub use settings::ExternalHub;
pub use settings::{RawWebSub, Settings};
pub use subs::{Change, Subscription};

/// Whether a URL is the self URL of a feed that may be subscribed to now. It is asked about
/// URLs in the form [`normalize_topic`] gives, sometimes with the hub's table locked: it must
/// not call back into the hub.
pub type TopicCheck = Arc<dyn Fn(&str) -> bool + Send + Sync>;
/// Receives every change to the subscriptions, in order, to persist it.
pub type Persist = Arc<dyn Fn(Change) + Send + Sync>;

/// A changed feed document, handed over after a publish.
#[derive(Debug, Clone)]
pub struct Publication {
    /// The feed's self URL (private feeds: with their token).
    pub topic: String,
    /// The `Content-Type` the feed is served with.
    pub content_type: String,
    /// The whole document, as served.
    pub body: Bytes,
    /// The `Link` header value the feed is served with ([`link_header`]).
    pub links: String,
    /// A public feed: external hubs are pinged for it.
    pub public: bool,
}

/// The answer to a request at `/websub`: a status and a plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub text: String,
}

/// The hub's figures: gauges, then totals since the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Verified subscriptions now.
    pub subscriptions: usize,
    /// Requests waiting for their verification now.
    pub pending: usize,
    /// Bytes of documents held for delivery now.
    pub queued_bytes: usize,
    /// Verifications that succeeded, and that failed (refused, unanswered, not confirmed).
    pub verified: u64,
    pub unverified: u64,
    /// Delivery attempts answered 2xx, and attempts that failed.
    pub delivered: u64,
    pub failed: u64,
    /// Subscriptions dropped after failures, 410 Gone or a refused address.
    pub dropped: u64,
    /// Publications not delivered for the byte budget.
    pub skipped: u64,
}

/// The `Link` header value naming a feed's hubs and its self URL.
pub fn link_header(hubs: &[&str], self_url: &str) -> String {
    let mut parts: Vec<String> = hubs.iter().map(|h| format!("<{h}>; rel=\"hub\"")).collect();
    parts.push(format!("<{self_url}>; rel=\"self\""));
    parts.join(", ")
}

/// Seconds since the Unix epoch.
fn unix_now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The running hub. Cheap to clone; every method returns without waiting on the network.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<hub::Inner>,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Hub {
    /// Starts the hub's tasks on `rt` with the subscriptions saved before. Saved subscriptions
    /// whose lease ended are dropped, and those whose topic `topics` refuses now are denied
    /// (both reported to `persist`). Fails only when `ca_file` cannot be read.
    pub fn start(
        settings: Settings,
        saved: Vec<Subscription>,
        topics: TopicCheck,
        persist: Persist,
        rt: &tokio::runtime::Handle,
    ) -> Result<Hub> {
        let client = client::Client::new(settings.ca_file.as_deref(), settings.timeout)?;
        let mut table = subs::Table::default();
        for sub in saved {
            table.put(sub);
        }
        let inner = Arc::new(hub::Inner {
            policy: policy::Policy { allow: settings.allow_callbacks.clone() },
            client,
            topics,
            persist,
            table: Mutex::new(table),
            pending: Mutex::default(),
            verify_slots: Arc::new(tokio::sync::Semaphore::new(settings.verifications)),
            expiry_wake: tokio::sync::Notify::new(),
            queue: deliver::Queue::new(settings.max_queued_bytes),
            pingers: settings.hubs.iter().cloned().map(|h| Arc::new(ping::Pinger::new(h))).collect(),
            rt: rt.clone(),
            counters: hub::Counters::default(),
            settings,
        });
        let mut tasks = vec![rt.spawn(inner.clone().expire_leases()), rt.spawn(deliver::run(inner.clone()))];
        for p in &inner.pingers {
            tasks.push(rt.spawn(ping::run(p.clone(), inner.clone())));
        }
        inner.recheck("the topic is no longer offered");
        Ok(Hub { inner, tasks: Arc::new(Mutex::new(tasks)) })
    }

    /// Answers a POST to `/websub` (body already bounded by [`MAX_FORM_BYTES`]).
    pub fn request(&self, content_type: Option<&str>, body: &[u8]) -> Answer {
        self.inner.request(content_type, body)
    }

    /// Hands over changed feed documents: each goes to its subscribers, and each public topic
    /// to the external hubs. Never waits on the network; callable from any thread.
    pub fn publish(&self, docs: Vec<Publication>) {
        for mut doc in docs {
            let Some(topic) = form::normalize_topic(&doc.topic) else {
                tracing::warn!(topic = doc.topic, "websub: a publication's topic is not a URL");
                continue;
            };
            doc.topic = topic;
            if doc.public {
                for pinger in &self.inner.pingers {
                    pinger.add(&doc.topic);
                }
            }
            // A publication without a body is for the pings only (its topic had no subscribers
            // when it was made).
            if doc.body.is_empty() || !self.inner.table.lock().expect("table lock").has_subscribers(&doc.topic) {
                continue;
            }
            let topic = doc.topic.clone();
            if !self.inner.queue.offer(doc) {
                self.inner.counters.skipped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(
                    topic,
                    "websub: delivery skipped: documents held for delivery are over websub.max_queued_bytes"
                );
            }
        }
    }

    /// Whether a topic has subscribers now (a caller can then skip making a document nobody
    /// gets).
    pub fn has_subscribers(&self, topic: &str) -> bool {
        form::normalize_topic(topic).is_some_and(|t| self.inner.table.lock().expect("table lock").has_subscribers(&t))
    }

    /// Ends, with `hub.mode=denied` and `reason`, every subscription whose topic the topic
    /// predicate refuses now (after a private feed's token changed).
    pub fn recheck(&self, reason: &str) {
        self.inner.recheck(reason);
    }

    /// The current subscriptions, ordered by topic and callback.
    #[cfg(test)]
    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.inner.table.lock().expect("table lock").all()
    }

    /// Figures for metrics and the status page.
    pub fn stats(&self) -> Stats {
        use std::sync::atomic::Ordering::Relaxed;
        let c = &self.inner.counters;
        Stats {
            subscriptions: self.inner.table.lock().expect("table lock").len(),
            pending: self.inner.pending.lock().expect("pending lock").values().sum(),
            queued_bytes: self.inner.queue.held_bytes(),
            verified: c.verified.load(Relaxed),
            unverified: c.unverified.load(Relaxed),
            delivered: c.delivered.load(Relaxed),
            failed: c.failed.load(Relaxed),
            dropped: c.dropped.load(Relaxed),
            skipped: c.skipped.load(Relaxed),
        }
    }

    /// Stops the hub's tasks (requests in flight end with their time limit).
    pub fn stop(&self) {
        for task in self.tasks.lock().expect("tasks lock").drain(..) {
            task.abort();
        }
    }
}
