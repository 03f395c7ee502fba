//! The WebSub hub through the real binary: subscribers are tiny HTTP servers on 127.0.0.1 made
//! here, signatures are checked with ring's HMAC (not clipfeed's code), feeds are read with the
//! test support's HTTP client.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::support::*;

/// One request a callback received.
#[derive(Debug, Clone)]
pub struct Got {
    pub method: String,
    pub target: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Got {
    /// A query parameter of the request target.
    pub fn param(&self, name: &str) -> Option<String> {
        let query = self.target.split_once('?')?.1;
        url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }
}

/// A subscriber's callback: echoes every challenge, answers every delivery 204, records both,
/// and counts connections (so a test can prove none was made).
pub struct Callback {
    pub url: String,
    pub got: Arc<Mutex<Vec<Got>>>,
    pub connections: Arc<AtomicUsize>,
}

impl Callback {
    pub fn start(host: &str) -> Callback {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (got, connections) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicUsize::new(0)));
        let (g, c) = (got.clone(), connections.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                c.fetch_add(1, Ordering::SeqCst);
                let g = g.clone();
                std::thread::spawn(move || serve_one(stream, &g));
            }
        });
        Callback { url: format!("http://{host}:{port}/cb"), got, connections }
    }

    pub fn requests(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// Waits for a request `pick` accepts and returns it.
    #[track_caller]
    pub fn wait(&self, what: &str, pick: impl Fn(&Got) -> bool) -> Got {
        poll(what, || self.requests().into_iter().find(|g| pick(g)))
    }
}

fn serve_one(stream: std::net::TcpStream, got: &Mutex<Vec<Got>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    let _ = reader.read_exact(&mut body);
    let req = Got { method, target, headers, body };
    let answer = match req.param("hub.challenge") {
        Some(c) if req.method == "GET" => c,
        _ => String::new(),
    };
    got.lock().unwrap().push(req);
    let status = if answer.is_empty() { "204 No Content" } else { "200 OK" };
    let mut out = stream;
    let _ = write!(out, "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}", answer.len());
}

/// POSTs a subscription request to the daemon's hub; returns the status and body.
pub fn hub_post(d: &Daemon, pairs: &[(&str, &str)]) -> (u16, String) {
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
    let mut res = agent
        .post(&d.url("websub"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send(body.as_bytes())
        .unwrap();
    (res.status().as_u16(), res.body_mut().read_to_string().unwrap_or_default())
}

/// `sha256=` and the hex HMAC of `body` under `secret`, by ring.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

pub fn clip(n: usize, title: &str, topic: &str) -> String {
    format!(
        "---\ntitle: \"{title}\"\nexcerpt: Item {n} of the hub test.\npublishedDateTime: 2025-05-{:02}T08:00:00Z\nwebUrl: https://hub.example/{n}\nprovider:\n  name: Hub Daily\n  domain: hub.example\ntopics: [{topic}]\n---\nBody of item {n}.\n",
        n % 28 + 1
    )
}

const HUB_ON: &str = "websub:\n  enabled: true\n  allow_callbacks: [127.0.0.0/8]\n";
const TOPIC: &str = "http://feeds.test/cf/feed.atom";

#[test]
fn off_by_default_the_feeds_name_no_hub_and_there_is_no_endpoint() {
    let site = Site::new();
    site.put("a.md", clip(1, "Quiet item", "Robots"));
    let d = Daemon::start(&site);
    poll("served", || get(&d.url("feed.atom"), &[]).text().contains("Quiet item").then_some(()));
    for f in ["feed.atom", "feed.rss", "feed.json", "topics/robots.atom"] {
        let r = get(&d.url(f), &[]);
        assert_eq!(r.header("link"), None, "{f}");
        assert!(!r.text().contains("rel=\"hub\"") && !r.text().contains("\"hubs\""), "{f}: {}", r.text());
    }
    assert_eq!(hub_post(&d, &[("hub.mode", "subscribe"), ("hub.topic", TOPIC), ("hub.callback", "http://x/")]).0, 404);
}

#[test]
fn subscribe_verify_deliver_signed_restart_and_unsubscribe() {
    let site = Site::new();
    site.write_config(HUB_ON);
    site.put("a.md", clip(1, "First item", "Robots"));
    let d = Daemon::start(&site);
    poll("served", || get(&d.url("feed.atom"), &[]).text().contains("First item").then_some(()));

    // Every format advertises the hub and itself, in the headers and in the document.
    let r = get(&d.url("feed.atom"), &[]);
    assert_eq!(
        r.header("link"),
        Some("<http://feeds.test/cf/websub>; rel=\"hub\", <http://feeds.test/cf/feed.atom>; rel=\"self\"")
    );
    let hub_link =
        |text: &str| text.lines().any(|l| l.contains("rel=\"hub\"") && l.contains("\"http://feeds.test/cf/websub\""));
    assert!(hub_link(&r.text()), "{}", r.text());
    let head = request("HEAD", &d.url("topics/robots.rss"), &[]);
    assert!(head.header("link").unwrap().contains("<http://feeds.test/cf/topics/robots.rss>; rel=\"self\""));
    assert!(hub_link(&get(&d.url("feed.rss"), &[]).text()));
    let json: serde_json::Value = serde_json::from_slice(&get(&d.url("feed.json"), &[]).body).unwrap();
    assert_eq!(json["hubs"][0]["url"], "http://feeds.test/cf/websub");
    assert_eq!(get(&d.url("feed.atom?q=robots"), &[]).header("link"), None, "filtered views are no topics");

    let cb = Callback::start("127.0.0.1");
    let secret = "a-secret-of-the-subscriber";
    let sub = [("hub.mode", "subscribe"), ("hub.topic", TOPIC), ("hub.callback", &cb.url), ("hub.secret", secret)];
    assert_eq!(hub_post(&d, &sub).0, 202);
    let verify = cb.wait("the verification", |g| g.method == "GET");
    assert_eq!(verify.param("hub.mode").as_deref(), Some("subscribe"));
    assert_eq!(verify.param("hub.topic").as_deref(), Some(TOPIC));
    let lease: u64 = verify.param("hub.lease_seconds").unwrap().parse().unwrap();
    assert_eq!(lease, 864_000, "the default lease");
    poll("subscribed", || d.log().contains("websub: intent verified").then_some(()));

    site.put("b.md", clip(2, "Second item", "Robots"));
    let post =
        cb.wait("the delivery", |g| g.method == "POST" && String::from_utf8_lossy(&g.body).contains("Second item"));
    assert_eq!(post.headers.get("x-hub-signature"), Some(&signature(secret, &post.body)));
    assert!(post.headers["content-type"].starts_with("application/atom+xml"));
    assert!(post.headers["link"].contains("<http://feeds.test/cf/feed.atom>; rel=\"self\""));
    assert_eq!(post.body, get(&d.url("feed.atom"), &[]).body, "the delivery is the served document");

    // A restart keeps the subscription.
    assert!(d.stop().success());
    let d = Daemon::start(&site);
    site.put("c.md", clip(3, "Third item", "Energy"));
    let post = cb.wait("a delivery after the restart", |g| {
        g.method == "POST" && String::from_utf8_lossy(&g.body).contains("Third item")
    });
    assert_eq!(post.headers.get("x-hub-signature"), Some(&signature(secret, &post.body)));

    // Unsubscribing is verified and stops deliveries; a second subscriber shows when the next
    // change went out.
    let other = Callback::start("127.0.0.1");
    assert_eq!(hub_post(&d, &[("hub.mode", "subscribe"), ("hub.topic", TOPIC), ("hub.callback", &other.url)]).0, 202);
    other.wait("the other verification", |g| g.method == "GET");
    assert_eq!(hub_post(&d, &[("hub.mode", "unsubscribe"), ("hub.topic", TOPIC), ("hub.callback", &cb.url)]).0, 202);
    cb.wait("the unsubscribe verification", |g| g.param("hub.mode").as_deref() == Some("unsubscribe"));
    poll("unsubscribed", || (d.log().matches("websub: intent verified").count() >= 2).then_some(()));
    let before = cb.requests().len();
    site.put("d.md", clip(4, "Fourth item", "Energy"));
    let post = other.wait("the delivery to the other", |g| String::from_utf8_lossy(&g.body).contains("Fourth item"));
    assert!(!post.headers.contains_key("x-hub-signature"), "no secret, no signature");
    poll("the old callback's connections settle", || (cb.requests().len() == before).then_some(()));
    assert!(cb.requests().iter().all(|g| !String::from_utf8_lossy(&g.body).contains("Fourth item")));
}

#[test]
fn loopback_callbacks_are_refused_without_a_request() {
    let site = Site::new();
    site.write_config("websub:\n  enabled: true\n");
    site.put("a.md", clip(1, "Guarded item", "Robots"));
    let d = Daemon::start(&site);
    poll("served", || get(&d.url("feed.atom"), &[]).text().contains("Guarded item").then_some(()));
    let cb = Callback::start("127.0.0.1");
    let (status, text) = hub_post(&d, &[("hub.mode", "subscribe"), ("hub.topic", TOPIC), ("hub.callback", &cb.url)]);
    assert!((400..500).contains(&status), "{status} {text}");
    // A name that resolves to loopback is accepted for verification, then refused on the
    // address it resolved to: no connection is made.
    let named = cb.url.replace("127.0.0.1", "localhost");
    assert_eq!(hub_post(&d, &[("hub.mode", "subscribe"), ("hub.topic", TOPIC), ("hub.callback", &named)]).0, 202);
    poll("the refusal", || d.log().contains("websub: verification").then_some(()));
    assert_eq!(cb.connections.load(Ordering::SeqCst), 0);
}

#[test]
fn a_private_feed_needs_its_token_and_a_rotation_denies_it() {
    let site = Site::new();
    site.write_config(&format!(
        "{HUB_ON}  hubs: [\"http://127.0.0.1:9/ping\"]\ntopics:\n  - name: Secret\n    private: true\n"
    ));
    site.put("a.md", clip(1, "Hidden item", "Secret"));
    let d = Daemon::start(&site);
    let (_, out, _) = run(std::process::Command::new(env!("CARGO_BIN_EXE_clipfeed")).args([
        "token",
        "list",
        "--config",
        site.config().to_str().unwrap(),
    ]));
    let token = out.lines().find(|l| l.starts_with("topics/secret")).unwrap().split('\t').nth(1).unwrap().to_string();
    let url = d.url(&format!("topics/secret.atom?token={token}"));
    let r = poll("the private feed", || Some(get(&url, &[])).filter(|r| r.text().contains("Hidden item")));
    let link = r.header("link").unwrap();
    assert!(!link.contains("127.0.0.1:9"), "a private feed never names external hubs: {link}");
    assert!(link.contains(&format!("secret.atom?token={token}>; rel=\"self\"")));
    assert!(!r.text().contains("127.0.0.1:9"));
    assert!(get(&d.url("feed.atom"), &[]).text().contains("http://127.0.0.1:9/ping"), "public feeds name it");

    let topic = format!("http://feeds.test/cf/topics/secret.atom?token={token}");
    let cb = Callback::start("127.0.0.1");
    let without = hub_post(
        &d,
        &[("hub.mode", "subscribe"), ("hub.topic", &topic[..topic.find('?').unwrap()]), ("hub.callback", &cb.url)],
    );
    assert!((400..500).contains(&without.0), "{without:?}");
    assert_eq!(hub_post(&d, &[("hub.mode", "subscribe"), ("hub.topic", &topic), ("hub.callback", &cb.url)]).0, 202);
    cb.wait("verified", |g| g.method == "GET");
    poll("subscribed", || d.log().contains("websub: intent verified").then_some(()));

    let (status, _, err) = run(std::process::Command::new(env!("CARGO_BIN_EXE_clipfeed")).args([
        "token",
        "rotate",
        "topics/secret",
        "--config",
        site.config().to_str().unwrap(),
    ]));
    assert!(status.success(), "{err}");
    let denied = cb.wait("the denial", |g| g.param("hub.mode").as_deref() == Some("denied"));
    assert_eq!(denied.param("hub.topic").as_deref(), Some(topic.as_str()));
    assert_eq!(get(&url, &[]).status, 404, "the old token is refused");
    site.put("b.md", clip(2, "Later hidden item", "Secret"));
    let (_, out, _) = run(std::process::Command::new(env!("CARGO_BIN_EXE_clipfeed")).args([
        "token",
        "list",
        "--config",
        site.config().to_str().unwrap(),
    ]));
    let new = out.lines().find(|l| l.starts_with("topics/secret")).unwrap().split('\t').nth(1).unwrap().to_string();
    let new_url = d.url(&format!("topics/secret.atom?token={new}"));
    poll("published", || get(&new_url, &[]).text().contains("Later hidden item").then_some(()));
    assert!(cb.requests().iter().all(|g| g.method == "GET"), "nothing delivered after the denial");
}
