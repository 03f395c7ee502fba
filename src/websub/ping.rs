//! Pings to external hubs: after a change, each configured hub gets `hub.mode=publish` for every
//! public topic that changed, batched (`hub.url` repeated, the form most hubs take, at most
//! [`MAX_BATCH`] per request) or one `hub.topic` per request (the per-hub `per_topic` setting).
//! One task per hub: changes that arrive while it is busy or within the coalescing window are
//! merged into its next round (a set of topics, so bounded by the number of feeds). A failed ping
//! is retried like a delivery, then given up (the next change pings again). The hubs are the
//! operator's choice, so their addresses pass no callback policy.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hyper::Method;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use tokio::sync::Notify;

use super::client::Outbound;
use super::hub::Inner;
use super::settings::ExternalHub;

/// Topics per batched ping.
pub const MAX_BATCH: usize = 100;

pub(super) struct Pinger {
    hub: ExternalHub,
    topics: Mutex<BTreeSet<String>>,
    wake: Notify,
}

impl Pinger {
    pub fn new(hub: ExternalHub) -> Pinger {
        Pinger { hub, topics: Mutex::default(), wake: Notify::new() }
    }

    /// Notes a changed public topic for the next round.
    pub fn add(&self, topic: &str) {
        self.topics.lock().expect("ping lock").insert(topic.to_string());
        self.wake.notify_one();
    }
}

/// The request bodies for one round.
pub(super) fn bodies(topics: &[String], per_topic: bool) -> Vec<String> {
    let form = |key: &str, values: &[String]| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        s.append_pair("hub.mode", "publish");
        for v in values {
            s.append_pair(key, v);
        }
        s.finish()
    };
    if per_topic {
        topics.iter().map(|t| form("hub.topic", std::slice::from_ref(t))).collect()
    } else {
        topics.chunks(MAX_BATCH).map(|chunk| form("hub.url", chunk)).collect()
    }
}

/// Pings one hub, round after round, for as long as the hub runs.
pub(super) async fn run(pinger: Arc<Pinger>, inner: Arc<Inner>) {
    loop {
        pinger.wake.notified().await;
        tokio::time::sleep(inner.settings.coalesce).await;
        let topics: Vec<String> = std::mem::take(&mut *pinger.topics.lock().expect("ping lock")).into_iter().collect();
        for body in bodies(&topics, pinger.hub.per_topic) {
            send(&pinger.hub, &inner, Bytes::from(body)).await;
        }
    }
}

async fn send(hub: &ExternalHub, inner: &Inner, body: Bytes) {
    let s = &inner.settings;
    for attempt in 0..=s.retries {
        if attempt > 0 {
            tokio::time::sleep(s.retry_initial.saturating_mul(1 << (attempt - 1).min(20))).await;
        }
        let headers = vec![(CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"))];
        let out = Outbound { method: Method::POST, url: &hub.url, headers, body: body.clone(), max_body: 0 };
        match inner.client.send(out, None).await {
            Ok(r) if (200..300).contains(&r.status) => return,
            Ok(r) => tracing::info!(hub = %hub.url, status = r.status, attempt, "websub: ping not taken"),
            Err(e) => tracing::info!(hub = %hub.url, attempt, "websub: ping {e}"),
        }
    }
    tracing::warn!(hub = %hub.url, retries = s.retries, "websub: ping given up");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batched_and_per_topic_forms() {
        let topics: Vec<String> = (0..150).map(|i| format!("http://x/f{i}.atom?a=1&b")).collect();
        let batched = bodies(&topics, false);
        assert_eq!(batched.len(), 2);
        assert!(batched[0].starts_with("hub.mode=publish&hub.url=http%3A%2F%2Fx%2Ff0.atom%3Fa%3D1%26b&hub.url="));
        assert_eq!(batched[0].matches("hub.url=").count(), 100);
        assert_eq!(batched[1].matches("hub.url=").count(), 50);
        let single = bodies(&topics[..2], true);
        assert_eq!(
            single,
            [
                "hub.mode=publish&hub.topic=http%3A%2F%2Fx%2Ff0.atom%3Fa%3D1%26b",
                "hub.mode=publish&hub.topic=http%3A%2F%2Fx%2Ff1.atom%3Fa%3D1%26b"
            ]
        );
    }
}
