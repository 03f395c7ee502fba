//! The hub against real sockets on 127.0.0.1: a tiny callback server (tokio + hyper) that
//! records every connection and request, and answers as each test tells it. Subscription tests
//! here; deliveries, pings and TLS in `tests/deliveries.rs`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;

use super::*;
use crate::config::Network;

mod deliveries;

/// What the callback server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    headers: hyper::HeaderMap,
    body: Bytes,
    at: std::time::Instant,
}

impl Seen {
    fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// How the callback server answers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Verify {
    Echo,
    WrongBody,
    NotFound,
}

struct Behaviour {
    verify: Verify,
    /// The first this many POSTs get this status; later ones 204.
    failing_posts: usize,
    fail_status: u16,
    /// Answer every request with a 307 to here.
    redirect: Option<String>,
}

struct Callback {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
    behaviour: Arc<Mutex<Behaviour>>,
}

impl Callback {
    async fn start() -> Callback {
        Callback::start_with(None).await
    }

    /// A callback server; with `tls`, https.
    async fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> Callback {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let cb = Callback {
            addr: listener.local_addr().unwrap(),
            seen: Arc::default(),
            connections: Arc::default(),
            behaviour: Arc::new(Mutex::new(Behaviour {
                verify: Verify::Echo,
                failing_posts: 0,
                fail_status: 500,
                redirect: None,
            })),
        };
        let (seen, connections, behaviour) = (cb.seen.clone(), cb.connections.clone(), cb.behaviour.clone());
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                connections.fetch_add(1, Ordering::SeqCst);
                let (seen, behaviour, tls) = (seen.clone(), behaviour.clone(), tls.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| answer(req, seen.clone(), behaviour.clone()));
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(acceptor) => {
                            let Ok(stream) = acceptor.accept(tcp).await else { return };
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                        None => drop(http.serve_connection(TokioIo::new(tcp), service).await),
                    }
                });
            }
        });
        cb
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn posts(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.method == Method::POST).collect()
    }

    fn gets(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.method == Method::GET).collect()
    }

    fn set(&self, f: impl FnOnce(&mut Behaviour)) {
        f(&mut self.behaviour.lock().unwrap());
    }
}

async fn answer(
    req: Request<Incoming>,
    seen: Arc<Mutex<Vec<Seen>>>,
    behaviour: Arc<Mutex<Behaviour>>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let (method, path, headers, at) = (parts.method, parts.uri.path().into(), parts.headers, std::time::Instant::now());
    let s = Seen { method, path, query, headers, body, at };
    let (status, text, location) = {
        let mut b = behaviour.lock().unwrap();
        let location = b.redirect.clone();
        let challenge = s.param("hub.challenge").unwrap_or("").to_string();
        let (status, text) = match (&s.method, b.verify) {
            (&Method::GET, _) if s.param("hub.mode") == Some("denied") => (200, String::new()),
            (&Method::GET, Verify::Echo) => (200, challenge),
            (&Method::GET, Verify::WrongBody) => (200, format!("{challenge}\n")),
            (&Method::GET, Verify::NotFound) => (404, challenge),
            _ if b.failing_posts > 0 => {
                b.failing_posts -= 1;
                (b.fail_status, String::new())
            }
            _ => (204, String::new()),
        };
        match location {
            Some(to) => (307, String::new(), Some(to)),
            None => (status, text, None),
        }
    };
    seen.lock().unwrap().push(s);
    let mut res = Response::new(Full::new(Bytes::from(text)));
    *res.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    if let Some(to) = location {
        res.headers_mut().insert(hyper::header::LOCATION, to.parse().unwrap());
    }
    Ok(res)
}

/// Polls `cond` until it holds, for at most a minute (a guard against hanging: a loaded machine
/// takes seconds where an idle one takes milliseconds).
async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

const TOPIC: &str = "http://feeds.example/topics/climate.atom";
const ATOM: &str = "application/atom+xml; charset=utf-8";

fn test_settings() -> Settings {
    Settings {
        enabled: true,
        allow_callbacks: vec![Network::parse("127.0.0.0/8").unwrap()],
        retry_initial: Duration::from_millis(20),
        retries: 2,
        coalesce: Duration::from_millis(200),
        timeout: Duration::from_secs(5),
        ..Settings::default()
    }
}

/// A hub over a set of accepted topics, with every change it reports collected.
struct Fixture {
    hub: Hub,
    topics: Arc<Mutex<HashSet<String>>>,
    changes: Arc<Mutex<Vec<Change>>>,
}

impl Fixture {
    fn start(settings: Settings) -> Fixture {
        Fixture::start_saved(settings, Vec::new())
    }

    fn start_saved(settings: Settings, saved: Vec<Subscription>) -> Fixture {
        let topics: Arc<Mutex<HashSet<String>>> = Arc::new(Mutex::new([TOPIC.to_string()].into()));
        let changes: Arc<Mutex<Vec<Change>>> = Arc::default();
        let (t, c) = (topics.clone(), changes.clone());
        let hub = Hub::start(
            settings,
            saved,
            Arc::new(move |topic| t.lock().unwrap().contains(topic)),
            Arc::new(move |change| c.lock().unwrap().push(change)),
            &tokio::runtime::Handle::current(),
        )
        .unwrap();
        Fixture { hub, topics, changes }
    }

    fn post(&self, form: &[(&str, &str)]) -> Answer {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        self.hub.request(Some("application/x-www-form-urlencoded"), body.as_bytes())
    }

    fn subscribe(&self, callback: &str, secret: Option<&str>) -> Answer {
        let mut form = vec![("hub.mode", "subscribe"), ("hub.topic", TOPIC), ("hub.callback", callback)];
        form.extend(secret.map(|s| ("hub.secret", s)));
        self.post(&form)
    }

    /// Subscribes and waits for the verified subscription.
    async fn subscribed(&self, callback: &str, secret: Option<&str>) {
        assert_eq!(self.subscribe(callback, secret).status, 202);
        until("the subscription is verified", || self.hub.subscriptions().iter().any(|s| s.callback == callback)).await;
    }

    fn idle(&self) -> bool {
        self.hub.inner.pending.lock().unwrap().is_empty()
    }

    fn publish(&self, body: &str) {
        let links = link_header(&["http://feeds.example/websub"], TOPIC);
        let doc = Publication {
            topic: TOPIC.into(),
            content_type: ATOM.into(),
            body: Bytes::from(body.to_string()),
            links,
            public: true,
        };
        self.hub.publish(vec![doc]);
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.hub.stop();
    }
}

#[tokio::test]
async fn verification_needs_a_2xx_with_exactly_the_challenge() {
    for behaviour in [Verify::WrongBody, Verify::NotFound] {
        let cb = Callback::start().await;
        cb.set(|b| b.verify = behaviour);
        let f = Fixture::start(test_settings());
        assert_eq!(f.subscribe(&cb.url("/c"), None).status, 202);
        until("the verification request was made", || cb.gets().len() == 1).await;
        until("the verification ended", || f.idle()).await;
        assert!(f.hub.subscriptions().is_empty(), "{behaviour:?}");
        assert!(f.changes.lock().unwrap().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_is_verified_and_stops_deliveries() {
    let (gone, stays) = (Callback::start().await, Callback::start().await);
    let f = Fixture::start(test_settings());
    f.subscribed(&gone.url("/c"), None).await;
    f.subscribed(&stays.url("/c"), None).await;
    let a = f.post(&[("hub.mode", "unsubscribe"), ("hub.topic", TOPIC), ("hub.callback", &gone.url("/c"))]);
    assert_eq!(a.status, 202);
    until("unsubscribed", || f.hub.subscriptions().len() == 1).await;
    let get = gone.gets().pop().unwrap();
    assert_eq!(get.param("hub.mode"), Some("unsubscribe"));
    assert!(get.param("hub.challenge").is_some());
    let last = f.changes.lock().unwrap().last().cloned();
    assert_eq!(last, Some(Change::Remove { topic: TOPIC.into(), callback: gone.url("/c") }));
    f.publish("<feed/>");
    until("the remaining subscriber got it", || stays.posts().len() == 1).await;
    // Both jobs would have come from the same fan-out.
    assert!(gone.posts().is_empty());
}

#[tokio::test]
async fn refused_callbacks_get_no_connection_at_all() {
    let cb = Callback::start().await;
    let mut settings = test_settings();
    settings.allow_callbacks.clear();
    let f = Fixture::start(settings);
    let port = cb.addr.port();
    for literal in [
        format!("http://127.0.0.1:{port}/c"),
        format!("http://[::ffff:127.0.0.1]:{port}/c"),
        format!("http://[::ffff:7f00:1]:{port}/c"),
        format!("http://0x7f.1:{port}/c"),
        format!("http://2130706433:{port}/c"),
        format!("http://0177.0.0.1:{port}/c"),
        format!("http://127.1:{port}/c"),
    ] {
        let a = f.subscribe(&literal, None);
        assert_eq!(a.status, 400, "{literal}: {a:?}");
        assert!(a.text.contains("refused") && a.text.contains("not in websub.allow_callbacks"), "{a:?}");
    }
    // A name is resolved after the 202; its address is refused then, before any connection.
    assert_eq!(f.subscribe(&format!("http://localhost:{port}/c"), None).status, 202);
    until("the verification ended", || f.idle()).await;
    assert!(f.hub.subscriptions().is_empty());
    assert_eq!(cb.connections.load(Ordering::SeqCst), 0, "no connection was made");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let (cb, target) = (Callback::start().await, Callback::start().await);
    let to = target.url("/elsewhere?hub.challenge=x");
    cb.set(|b| b.redirect = Some(to.clone()));
    let f = Fixture::start(test_settings());
    assert_eq!(f.subscribe(&cb.url("/c"), None).status, 202);
    until("the verification ended", || f.idle()).await;
    assert_eq!(cb.gets().len(), 1);
    assert!(f.hub.subscriptions().is_empty(), "a 307 is not a verification");
    cb.set(|b| b.redirect = None);
    f.subscribed(&cb.url("/c"), None).await;
    cb.set(|b| b.redirect = Some(to.clone()));
    f.publish("<feed/>");
    until("the delivery was answered 307, retried, and dropped", || f.hub.subscriptions().is_empty()).await;
    assert_eq!(cb.posts().len(), 3);
    assert_eq!(target.connections.load(Ordering::SeqCst), 0, "the redirect target was never contacted");
}

#[tokio::test]
async fn leases_are_bounded_and_expire() {
    let cb = Callback::start().await;
    let mut settings = test_settings();
    settings.lease_min = Duration::from_secs(1);
    let f = Fixture::start(settings);
    let callback = cb.url("/c");
    let a = f.post(&[
        ("hub.mode", "subscribe"),
        ("hub.topic", TOPIC),
        ("hub.callback", &callback),
        ("hub.lease_seconds", "0"),
    ]);
    assert_eq!(a.status, 202);
    // The lease is one second, so a slow machine may see it verified and already expired:
    // wait for the recorded change, which stays, not for the live count, which does not.
    let put = || f.changes.lock().unwrap().iter().any(|c| matches!(c, Change::Put(_)));
    until("verified", put).await;
    assert_eq!(cb.gets()[0].param("hub.lease_seconds"), Some("1"), "clamped to lease_min");
    until("expired", || f.hub.subscriptions().is_empty()).await;
    let last = f.changes.lock().unwrap().last().cloned();
    assert_eq!(last, Some(Change::Remove { topic: TOPIC.into(), callback: callback.clone() }));
    // And the maximum.
    let a = f.post(&[
        ("hub.mode", "subscribe"),
        ("hub.topic", TOPIC),
        ("hub.callback", &callback),
        ("hub.lease_seconds", "999999999"),
    ]);
    assert_eq!(a.status, 202);
    until("verified again", || cb.gets().len() == 2).await;
    assert_eq!(cb.gets()[1].param("hub.lease_seconds"), Some("2592000"));
}

#[tokio::test]
async fn revoked_topics_are_denied_and_get_nothing_more() {
    let cb = Callback::start().await;
    let f = Fixture::start(test_settings());
    let private = "http://feeds.example/providers/x.atom?token=old";
    f.topics.lock().unwrap().insert(private.into());
    let callback = cb.url("/c");
    let a = f.post(&[("hub.mode", "subscribe"), ("hub.topic", private), ("hub.callback", &callback)]);
    assert_eq!(a.status, 202);
    until("verified", || f.hub.subscriptions().len() == 1).await;
    let wrong_token = f.post(&[
        ("hub.mode", "subscribe"),
        ("hub.topic", "http://feeds.example/providers/x.atom?token=bad"),
        ("hub.callback", &callback),
    ]);
    assert_eq!(wrong_token.status, 400);
    f.topics.lock().unwrap().remove(private);
    f.hub.recheck("the feed's token was rotated");
    assert!(f.hub.subscriptions().is_empty());
    until("denied", || cb.gets().len() == 2).await;
    let denial = &cb.gets()[1];
    assert_eq!(denial.param("hub.mode"), Some("denied"));
    assert_eq!(denial.param("hub.topic"), Some(private));
    assert_eq!(denial.param("hub.reason"), Some("the feed's token was rotated"));
    assert_eq!(denial.param("hub.challenge"), None);
}

#[tokio::test]
async fn a_start_drops_ended_leases_and_denies_refused_topics() {
    let cb = Callback::start().await;
    let sub = |topic: &str, path: &str, expires: u64| Subscription {
        topic: topic.into(),
        callback: cb.url(path),
        secret: None,
        expires,
    };
    let later = unix_now() + 3600;
    let saved = vec![
        sub(TOPIC, "/kept", later),
        sub(TOPIC, "/ended", unix_now() - 1),
        sub("http://feeds.example/p.atom?token=rotated", "/revoked", later),
    ];
    let f = Fixture::start_saved(test_settings(), saved);
    until("the ended lease is reported", || f.changes.lock().unwrap().len() == 2).await;
    let mut removed: Vec<String> = f
        .changes
        .lock()
        .unwrap()
        .iter()
        .map(|c| match c {
            Change::Remove { callback, .. } => callback.clone(),
            Change::Put(s) => panic!("nothing is added: {s:?}"),
        })
        .collect();
    removed.sort();
    assert_eq!(removed, [cb.url("/ended"), cb.url("/revoked")]);
    assert_eq!(f.hub.subscriptions(), [sub(TOPIC, "/kept", later)]);
    until("the revoked one is told", || cb.gets().len() == 1).await;
    assert_eq!(cb.gets()[0].path, "/revoked");
    assert_eq!(cb.gets()[0].param("hub.mode"), Some("denied"));
}

#[tokio::test]
async fn unknown_topics_and_limits_are_refused_at_once() {
    let cb = Callback::start().await;
    let mut settings = test_settings();
    settings.max_per_host = 1;
    settings.max_pending_per_host = 1;
    let other_topic = "http://feeds.example/all.atom";
    let f = Fixture::start(settings);
    f.topics.lock().unwrap().insert(other_topic.into());
    let a = f.post(&[
        ("hub.mode", "subscribe"),
        ("hub.topic", "http://feeds.example/nope.atom"),
        ("hub.callback", &cb.url("/c")),
    ]);
    assert_eq!((a.status, a.text.contains("not a feed of this hub")), (400, true), "{a:?}");
    f.subscribed(&cb.url("/c"), None).await;
    let a = f.post(&[("hub.mode", "subscribe"), ("hub.topic", other_topic), ("hub.callback", &cb.url("/d"))]);
    assert_eq!(a.status, 429, "{a:?}");
    assert_eq!(f.subscribe(&cb.url("/c"), None).status, 202, "a renewal fits");
    assert_eq!(f.subscribe(&cb.url("/c"), None).status, 429, "one pending per host");
    until("idle", || f.idle()).await;
    let a = f.post(&[("hub.mode", "unsubscribe"), ("hub.topic", other_topic), ("hub.callback", &cb.url("/zzz"))]);
    assert_eq!(a.status, 202);
    assert!(f.idle(), "an unsubscribe for nothing verifies nothing");
}
