//! The hub's shared state and its subscription side: answering a request (202 or a refusal),
//! verifying intent with the callback (WebSub §5.3), applying what was verified, denying
//! (§5.2), revoking topics the caller no longer accepts, and expiring leases.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hyper::Method;
use tokio::sync::{Notify, Semaphore};
use url::Url;

use super::client::{Client, Outbound};
use super::form::{self, Mode, SubRequest};
use super::policy::Policy;
use super::subs::{Change, Full, Subscription, Table, host_of};
use super::{Answer, Persist, TopicCheck, deliver, ping, settings::Settings, sign, unix_now};

/// Everything the hub's tasks share.
pub(super) struct Inner {
    pub settings: Settings,
    pub policy: Policy,
    pub client: Client,
    pub topics: TopicCheck,
    pub persist: Persist,
    pub table: Mutex<Table>,
    /// Requests accepted and not yet verified: in all, and per callback host.
    pub pending: Mutex<HashMap<String, usize>>,
    pub verify_slots: Arc<Semaphore>,
    /// Wakes the expiry task when a lease may have become the next to end.
    pub expiry_wake: Notify,
    pub queue: deliver::Queue,
    pub pingers: Vec<Arc<ping::Pinger>>,
    pub rt: tokio::runtime::Handle,
    pub counters: Counters,
}

/// Running totals since the start, for metrics.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub verified: AtomicU64,
    pub unverified: AtomicU64,
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
    pub skipped: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

fn answer(status: u16, text: impl Into<String>) -> Answer {
    let mut text = text.into();
    text.push('\n');
    Answer { status, text }
}

/// Holds a request's place among the pending ones until its verification ends.
struct PendingPlace {
    inner: Arc<Inner>,
    host: String,
}

impl Drop for PendingPlace {
    fn drop(&mut self) {
        let mut pending = self.inner.pending.lock().expect("pending lock");
        if let Some(n) = pending.get_mut(&self.host) {
            *n -= 1;
            if *n == 0 {
                pending.remove(&self.host);
            }
        }
    }
}

impl Inner {
    /// Calls the persist hook; callers hold the table's lock (`_locked`), so that changes reach
    /// the hook in the order the table made them.
    fn record(&self, _locked: &Table, change: Change) {
        (self.persist)(change);
    }

    /// Answers a subscription request; verification, if any, follows on the runtime.
    pub fn request(self: &Arc<Self>, content_type: Option<&str>, body: &[u8]) -> Answer {
        let req = match form::parse(content_type, body) {
            Ok(r) => r,
            Err(refusal) => return answer(refusal.status, refusal.reason),
        };
        if !(self.topics)(&req.topic) {
            return answer(400, "hub.topic is not a feed of this hub (a private feed's topic carries its token)");
        }
        if let Some(ip) = literal_ip(&req.callback)
            && let Err(why) = self.policy.check(ip)
        {
            return answer(400, format!("hub.callback refused: {why}"));
        }
        let host = host_of(req.callback.as_str());
        {
            let table = self.table.lock().expect("table lock");
            let (max, per_host) = (self.settings.max_subscriptions, self.settings.max_per_host);
            match (req.mode, table.room(&req.topic, req.callback.as_str(), max, per_host)) {
                (Mode::Subscribe, Err(Full::Hub)) => return answer(503, "this hub has all the subscriptions it takes"),
                (Mode::Subscribe, Err(Full::Host)) => {
                    return answer(429, format!("the callback host {host} has all the subscriptions it may have"));
                }
                // Nothing to undo, so nothing to verify: no request for a stranger to trigger.
                (Mode::Unsubscribe, _) if table.get(&req.topic, req.callback.as_str()).is_none() => {
                    return answer(202, "accepted: verification of intent follows");
                }
                _ => {}
            }
        }
        let place = {
            let mut pending = self.pending.lock().expect("pending lock");
            if pending.values().sum::<usize>() >= self.settings.max_pending {
                return answer(503, "too many requests are waiting for verification; try again later");
            }
            let n = pending.entry(host.clone()).or_default();
            if *n >= self.settings.max_pending_per_host {
                return answer(429, format!("too many requests for {host} are waiting for verification"));
            }
            *n += 1;
            PendingPlace { inner: self.clone(), host }
        };
        let inner = self.clone();
        self.rt.spawn(async move { inner.verify(req, place).await });
        answer(202, "accepted: verification of intent follows")
    }

    /// Verifies intent: GET the callback with a fresh challenge; success is a 2xx whose body
    /// is exactly the challenge.
    async fn verify(self: Arc<Self>, req: SubRequest, _place: PendingPlace) {
        let Ok(_slot) = self.verify_slots.clone().acquire_owned().await else { return };
        let challenge = sign::challenge();
        let lease = self.settings.lease_for(req.lease_seconds);
        let mut params =
            vec![("hub.mode", req.mode.as_str()), ("hub.topic", &req.topic), ("hub.challenge", &challenge)];
        let lease_text = lease.as_secs().to_string();
        if req.mode == Mode::Subscribe {
            params.push(("hub.lease_seconds", &lease_text));
        }
        // The lease runs from the moment the verification request is made (§5.3).
        let started = unix_now();
        let reply = self.get(&req.callback, &params, challenge.len()).await;
        let callback = req.callback.as_str();
        match reply {
            Ok(r) if (200..300).contains(&r.status) && !r.truncated && r.body == challenge.as_bytes() => {
                tracing::info!(topic = %req.topic, callback, mode = req.mode.as_str(), "websub: intent verified");
                bump(&self.counters.verified);
                self.apply(req, started + lease.as_secs());
            }
            Ok(r) => {
                tracing::info!(topic = %req.topic, callback, status = r.status, "websub: intent not confirmed");
                bump(&self.counters.unverified);
            }
            Err(e) => {
                tracing::info!(topic = %req.topic, callback, "websub: verification {e}");
                bump(&self.counters.unverified);
            }
        }
    }

    /// A GET to `callback` with `params` appended to its query (kept as given, §5.1.1).
    async fn get(
        &self,
        callback: &Url,
        params: &[(&str, &str)],
        max_body: usize,
    ) -> Result<super::client::Reply, super::client::Failure> {
        let mut url = callback.clone();
        url.query_pairs_mut().extend_pairs(params);
        let out = Outbound { method: Method::GET, url: &url, headers: Vec::new(), body: Bytes::new(), max_body };
        self.client.send(out, Some(&self.policy)).await
    }

    /// Carries out a verified request; the state changes only now (§5.1).
    fn apply(self: &Arc<Self>, req: SubRequest, expires: u64) {
        let callback = req.callback.to_string();
        let mut table = self.table.lock().expect("table lock");
        match req.mode {
            Mode::Subscribe => {
                if !(self.topics)(&req.topic) {
                    drop(table);
                    self.spawn_denial(req.topic, callback, "the topic is no longer offered".into());
                    return;
                }
                if table
                    .room(&req.topic, &callback, self.settings.max_subscriptions, self.settings.max_per_host)
                    .is_err()
                {
                    drop(table);
                    self.spawn_denial(req.topic, callback, "subscription limit reached".into());
                    return;
                }
                let change = table.put(Subscription { topic: req.topic, callback, secret: req.secret, expires });
                self.record(&table, change);
                self.expiry_wake.notify_one();
            }
            Mode::Unsubscribe => {
                if let Some((_, change)) = table.remove(&req.topic, &callback) {
                    self.record(&table, change);
                }
            }
        }
    }

    /// Tells a subscriber its subscription is refused or ended (`hub.mode=denied`), once,
    /// through the same policy as any other callback request.
    pub fn spawn_denial(self: &Arc<Self>, topic: String, callback: String, reason: String) {
        let inner = self.clone();
        self.rt.spawn(async move {
            let Ok(_slot) = inner.verify_slots.clone().acquire_owned().await else { return };
            let Ok(url) = Url::parse(&callback) else { return };
            let params = [("hub.mode", "denied"), ("hub.topic", topic.as_str()), ("hub.reason", reason.as_str())];
            match inner.get(&url, &params, 0).await {
                Ok(r) => {
                    tracing::info!(topic, callback, status = r.status, reason, "websub: subscriber told of denial")
                }
                Err(e) => tracing::info!(topic, callback, reason, "websub: denial {e}"),
            }
        });
    }

    /// Ends every subscription whose topic the caller no longer accepts, with a denial.
    pub fn recheck(self: &Arc<Self>, reason: &str) {
        let removed = {
            let mut table = self.table.lock().expect("table lock");
            let removed = table.remove_topics(|t| (self.topics)(t));
            for (_, change) in &removed {
                self.record(&table, change.clone());
            }
            removed
        };
        for (sub, _) in removed {
            tracing::info!(topic = %sub.topic, callback = %sub.callback, reason, "websub: subscription revoked");
            self.spawn_denial(sub.topic, sub.callback, reason.to_string());
        }
    }

    pub fn count_delivery(&self, ok: bool) {
        bump(if ok { &self.counters.delivered } else { &self.counters.failed });
    }

    /// Drops a subscription whose callback failed or asked to stop; no denial is sent.
    pub fn drop_subscription(&self, topic: &str, callback: &str, why: &str) {
        let mut table = self.table.lock().expect("table lock");
        if let Some((_, change)) = table.remove(topic, callback) {
            tracing::warn!(topic, callback, why, "websub: subscription dropped");
            bump(&self.counters.dropped);
            self.record(&table, change);
        }
    }

    /// Ends leases as they run out, for as long as the hub runs.
    pub async fn expire_leases(self: Arc<Self>) {
        loop {
            let next = {
                let mut table = self.table.lock().expect("table lock");
                for change in table.expire(unix_now()) {
                    tracing::info!(?change, "websub: lease ended");
                    self.record(&table, change);
                }
                table.next_expiry()
            };
            let wait = next.map_or(Duration::from_secs(3600), |at| {
                let at = SystemTime::UNIX_EPOCH + Duration::from_secs(at);
                at.duration_since(SystemTime::now()).unwrap_or_default().min(Duration::from_secs(3600))
            });
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.expiry_wake.notified() => {}
            }
        }
    }
}

/// The callback's address when its host is an address rather than a name.
fn literal_ip(url: &Url) -> Option<std::net::IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(ip.into()),
        url::Host::Ipv6(ip) => Some(ip.into()),
        url::Host::Domain(_) => None,
    }
}
