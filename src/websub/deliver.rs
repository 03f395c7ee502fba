//! Content distribution (WebSub §7): documents handed over by the caller are POSTed to every
//! subscriber of their topic, signed when the subscriber gave a secret, with the `Link` header.
//!
//! The caller never waits: [`Queue::offer`] takes a lock held for a map insert and returns. One
//! dispatcher task owns the rest. Per topic only the latest document is kept (an older one not
//! yet sent is replaced: only the latest matters), and a topic goes out at most once per
//! coalescing window: the first change at once, later ones in the window together at its end.
//! Per subscription there is one job: a new document replaces the one waiting (keeping the
//! retry count and time), or follows the one in flight. A failed delivery is retried after
//! `retry_initial`, doubling, `retries` times; then, or on `410 Gone`, or when the callback's
//! address is refused, the subscription is dropped. At most `deliveries` requests are in flight.
//! So memory is bounded by topics (documents) and subscriptions (jobs), plus a byte budget on
//! the documents held.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hyper::Method;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue, LINK};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use super::client::{Failure, Outbound};
use super::hub::Inner;
use super::{Publication, sign};

/// A document waiting for delivery; its bytes count against the queue's budget while it lives.
pub(super) struct Doc {
    topic: String,
    content_type: HeaderValue,
    links: Option<HeaderValue>,
    body: Bytes,
    held: Arc<AtomicUsize>,
}

impl Drop for Doc {
    fn drop(&mut self) {
        self.held.fetch_sub(self.body.len(), Ordering::Relaxed);
    }
}

/// Where the caller drops documents: the latest per topic, and a bell for the dispatcher.
pub(super) struct Queue {
    mailbox: Mutex<HashMap<String, Arc<Doc>>>,
    wake: Notify,
    held: Arc<AtomicUsize>,
    budget: usize,
}

impl Queue {
    pub fn new(budget: usize) -> Queue {
        Queue { mailbox: Mutex::default(), wake: Notify::new(), held: Arc::default(), budget }
    }

    /// Hands a document over; `false` when it is past the byte budget and will not be sent.
    pub fn offer(&self, p: Publication) -> bool {
        let size = p.body.len();
        if self.held.fetch_add(size, Ordering::Relaxed) + size > self.budget {
            self.held.fetch_sub(size, Ordering::Relaxed);
            return false;
        }
        let content_type =
            HeaderValue::from_str(&p.content_type).unwrap_or(HeaderValue::from_static("application/octet-stream"));
        let links = HeaderValue::from_str(&p.links).ok().filter(|_| !p.links.is_empty());
        let doc = Doc { topic: p.topic, content_type, links, body: p.body, held: self.held.clone() };
        self.mailbox.lock().expect("mailbox lock").insert(doc.topic.clone(), Arc::new(doc));
        self.wake.notify_one();
        true
    }

    /// Bytes of documents held now.
    pub fn held_bytes(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    fn take(&self) -> Vec<Arc<Doc>> {
        self.mailbox.lock().expect("mailbox lock").drain().map(|(_, d)| d).collect()
    }
}

type Key = (String, String);

enum Outcome {
    Delivered,
    /// 410 Gone, or a refused address: the subscription ends.
    Ended(String),
    /// The subscription ended meanwhile.
    Vanished,
    Failed(String),
}

struct Job {
    doc: Arc<Doc>,
    attempt: u32,
    running: bool,
    /// A document that arrived while this job was in flight.
    newer: Option<Arc<Doc>>,
}

#[derive(Default)]
struct State {
    jobs: HashMap<Key, Job>,
    /// The jobs not in flight, by when they are due (then a sequence number): O(log n) for each
    /// step, so a topic with many subscribers costs no scans.
    waiting: BTreeSet<(Instant, u64, Key)>,
    seq: u64,
    /// Documents waiting for their topic's window to end.
    held: HashMap<String, (Arc<Doc>, Instant)>,
    last_sent: HashMap<String, Instant>,
    running: usize,
}

/// The dispatcher: runs for as long as the hub does.
pub(super) async fn run(inner: Arc<Inner>) {
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(Key, Outcome)>();
    let mut st = State::default();
    loop {
        let next = st.next_due();
        tokio::select! {
            _ = inner.queue.wake.notified() => {}
            Some((key, outcome)) = done_rx.recv() => st.finish(&inner, key, outcome),
            _ = sleep_until(next) => {}
        }
        while let Ok((key, outcome)) = done_rx.try_recv() {
            st.finish(&inner, key, outcome);
        }
        let now = Instant::now();
        for doc in inner.queue.take() {
            st.offer(&inner, doc, now);
        }
        st.release_held(&inner, now);
        st.start_due(&inner, now, &done_tx);
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl State {
    fn next_due(&self) -> Option<Instant> {
        let held = self.held.values().map(|(_, at)| *at);
        held.chain(self.waiting.first().map(|(at, _, _)| *at)).min()
    }

    fn schedule(&mut self, key: Key, due: Instant) {
        self.seq += 1;
        self.waiting.insert((due, self.seq, key));
    }

    fn offer(&mut self, inner: &Inner, doc: Arc<Doc>, now: Instant) {
        let window = inner.settings.coalesce;
        if let Some((waiting, _)) = self.held.get_mut(&doc.topic) {
            *waiting = doc;
            return;
        }
        match self.last_sent.get(&doc.topic) {
            Some(&sent) if now < sent + window => {
                self.held.insert(doc.topic.clone(), (doc, sent + window));
            }
            _ => {
                self.last_sent.insert(doc.topic.clone(), now);
                self.fan_out(inner, doc, now);
            }
        }
    }

    fn release_held(&mut self, inner: &Inner, now: Instant) {
        let window = inner.settings.coalesce;
        self.last_sent.retain(|_, sent| now < *sent + window);
        let due: Vec<String> = self.held.iter().filter(|(_, (_, at))| *at <= now).map(|(t, _)| t.clone()).collect();
        for topic in due {
            if let Some((doc, _)) = self.held.remove(&topic) {
                self.last_sent.insert(topic, now);
                self.fan_out(inner, doc, now);
            }
        }
    }

    /// One job per subscriber of the document's topic, or the newer document for its job.
    fn fan_out(&mut self, inner: &Inner, doc: Arc<Doc>, now: Instant) {
        let callbacks = inner.table.lock().expect("table lock").callbacks(&doc.topic);
        for callback in callbacks {
            let key = (doc.topic.clone(), callback);
            match self.jobs.get_mut(&key) {
                Some(job) if job.running => job.newer = Some(doc.clone()),
                Some(job) => job.doc = doc.clone(),
                None => {
                    self.jobs.insert(key.clone(), Job { doc: doc.clone(), attempt: 0, running: false, newer: None });
                    self.schedule(key, now);
                }
            }
        }
    }

    fn start_due(&mut self, inner: &Arc<Inner>, now: Instant, done: &mpsc::UnboundedSender<(Key, Outcome)>) {
        while self.running < inner.settings.deliveries && self.waiting.first().is_some_and(|(at, _, _)| *at <= now) {
            let (_, _, key) = self.waiting.pop_first().expect("a first entry");
            let job = self.jobs.get_mut(&key).expect("a waiting job");
            job.running = true;
            self.running += 1;
            let (inner, doc, done) = (inner.clone(), job.doc.clone(), done.clone());
            inner.rt.clone().spawn(async move {
                let outcome = deliver(&inner, &key, &doc).await;
                let _ = done.send((key, outcome));
            });
        }
    }

    fn finish(&mut self, inner: &Inner, key: Key, outcome: Outcome) {
        self.running -= 1;
        let Some(job) = self.jobs.get_mut(&key) else { return };
        job.running = false;
        let now = Instant::now();
        inner.count_delivery(matches!(outcome, Outcome::Delivered));
        let retry_at = match outcome {
            Outcome::Delivered => match job.newer.take() {
                Some(doc) => {
                    (job.doc, job.attempt) = (doc, 0);
                    Some(now)
                }
                None => None,
            },
            Outcome::Vanished => None,
            Outcome::Ended(why) => {
                inner.drop_subscription(&key.0, &key.1, &why);
                None
            }
            Outcome::Failed(why) => {
                if let Some(doc) = job.newer.take() {
                    job.doc = doc;
                }
                job.attempt += 1;
                if job.attempt > inner.settings.retries {
                    let why = format!("{why}; {} retries failed", inner.settings.retries);
                    inner.drop_subscription(&key.0, &key.1, &why);
                    None
                } else {
                    let (topic, callback, attempt) = (&key.0, &key.1, job.attempt);
                    tracing::info!(topic, callback, attempt, why, "websub: delivery failed; will retry");
                    Some(now + backoff(inner.settings.retry_initial, attempt))
                }
            }
        };
        match retry_at {
            Some(at) => self.schedule(key, at),
            None => drop(self.jobs.remove(&key)),
        }
    }
}

/// The wait before retry number `attempt` (1-based): `initial`, doubling, at most a day.
fn backoff(initial: Duration, attempt: u32) -> Duration {
    initial.saturating_mul(1 << attempt.saturating_sub(1).min(20)).min(Duration::from_secs(86_400))
}

/// One content distribution request.
async fn deliver(inner: &Inner, key: &Key, doc: &Doc) -> Outcome {
    let secret = match inner.table.lock().expect("table lock").get(&key.0, &key.1) {
        Some(sub) => sub.secret.clone(),
        None => return Outcome::Vanished,
    };
    let Ok(url) = url::Url::parse(&key.1) else { return Outcome::Ended("unusable callback URL".into()) };
    let mut headers = vec![(CONTENT_TYPE, doc.content_type.clone())];
    if let Some(links) = &doc.links {
        headers.push((LINK, links.clone()));
    }
    if let Some(secret) = secret
        && let Ok(value) = HeaderValue::from_str(&sign::signature(&secret, &doc.body))
    {
        headers.push((HeaderName::from_static("x-hub-signature"), value));
    }
    let out = Outbound { method: Method::POST, url: &url, headers, body: doc.body.clone(), max_body: 0 };
    match inner.client.send(out, Some(&inner.policy)).await {
        Ok(r) if (200..300).contains(&r.status) => Outcome::Delivered,
        Ok(r) if r.status == 410 => Outcome::Ended("the callback answered 410 Gone".into()),
        Ok(r) => Outcome::Failed(format!("status {}", r.status)),
        Err(Failure::Refused(why)) => Outcome::Ended(why),
        Err(Failure::Failed(why)) => Outcome::Failed(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let s = Duration::from_secs(5);
        let waits: Vec<u64> = (1..=6).map(|a| backoff(s, a).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160]);
        assert_eq!(backoff(s, 40), Duration::from_secs(86_400));
    }

    #[test]
    fn the_queue_keeps_the_latest_per_topic_within_its_budget() {
        let q = Queue::new(10);
        let p = |topic: &str, body: &'static str| Publication {
            topic: topic.into(),
            content_type: "application/atom+xml".into(),
            body: Bytes::from_static(body.as_bytes()),
            links: String::new(),
            public: true,
        };
        assert!(q.offer(p("a", "1234")));
        assert!(q.offer(p("a", "5678")), "the older one is replaced, its bytes freed");
        assert!(q.offer(p("b", "12345")));
        assert!(!q.offer(p("c", "12")), "past the budget");
        let mut docs = q.take();
        docs.sort_by(|x, y| x.topic.cmp(&y.topic));
        assert_eq!(docs.iter().map(|d| &d.body[..]).collect::<Vec<_>>(), [&b"5678"[..], b"12345"]);
        assert!(docs[0].links.is_none());
        drop(docs);
        assert_eq!(q.held.load(Ordering::Relaxed), 0);
    }
}
