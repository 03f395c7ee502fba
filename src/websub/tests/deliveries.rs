//! Deliveries, pings and TLS against callback servers on 127.0.0.1 (the harness is the
//! parent module's).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::*;

fn verify_signature(secret: &str, body: &[u8], header: &str) -> bool {
    let hex = header.strip_prefix("sha256=").expect("sha256= prefix");
    let tag: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    ring::hmac::verify(&key, body, &tag).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_is_verified_then_deliveries_are_signed() {
    let cb = Callback::start().await;
    let f = Fixture::start(test_settings());
    let callback = cb.url("/cb?id=7");
    let a = f.post(&[
        ("hub.mode", "subscribe"),
        ("hub.topic", TOPIC),
        ("hub.callback", &callback),
        ("hub.lease_seconds", "3600"),
        ("hub.secret", "s3cret"),
    ]);
    assert_eq!(a.status, 202, "{a:?}");
    until("verified", || f.hub.subscriptions().len() == 1).await;
    let get = &cb.gets()[0];
    assert_eq!(get.path, "/cb");
    assert_eq!(get.query[0], ("id".to_string(), "7".to_string()), "the callback's own query comes first");
    assert_eq!(get.param("hub.mode"), Some("subscribe"));
    assert_eq!(get.param("hub.topic"), Some(TOPIC));
    assert_eq!(get.param("hub.lease_seconds"), Some("3600"));
    assert_eq!(get.param("hub.challenge").map(str::len), Some(64));
    assert_eq!(get.headers["host"], cb.addr.to_string());
    let sub = &f.hub.subscriptions()[0];
    assert_eq!((sub.callback.as_str(), sub.secret.as_deref()), (callback.as_str(), Some("s3cret")));
    let lease_end = sub.expires.abs_diff(unix_now() + 3600);
    assert!(lease_end <= 5, "lease ends in an hour: {lease_end}");
    assert_eq!(f.changes.lock().unwrap().clone(), [Change::Put(sub.clone())]);

    f.publish("<feed>one</feed>");
    until("delivered", || cb.posts().len() == 1).await;
    let post = &cb.posts()[0];
    assert_eq!(post.path, "/cb");
    assert_eq!(post.param("id"), Some("7"));
    assert_eq!(post.param("hub.mode"), None, "a delivery carries no hub parameters");
    assert_eq!(&post.body[..], b"<feed>one</feed>");
    assert_eq!(post.headers["content-type"], ATOM);
    assert_eq!(
        post.headers["link"],
        "<http://feeds.example/websub>; rel=\"hub\", <http://feeds.example/topics/climate.atom>; rel=\"self\""
    );
    let signature = post.headers["x-hub-signature"].to_str().unwrap();
    assert!(verify_signature("s3cret", &post.body, signature), "{signature}");
    assert!(!verify_signature("other", &post.body, signature));
    until("counted, and the document let go", || {
        let stats = f.hub.stats();
        (stats.delivered, stats.queued_bytes) == (1, 0)
    })
    .await;
}

#[tokio::test]
async fn no_secret_no_signature_and_a_renewal_replaces_the_secret() {
    let cb = Callback::start().await;
    let f = Fixture::start(test_settings());
    let callback = cb.url("/c");
    f.subscribed(&callback, Some("first")).await;
    assert_eq!(f.subscribe(&callback, None).status, 202);
    until("renewed without a secret", || f.changes.lock().unwrap().len() == 2).await;
    assert_eq!(f.hub.subscriptions().len(), 1);
    assert_eq!(f.hub.subscriptions()[0].secret, None);
    f.publish("<feed/>");
    until("delivered", || cb.posts().len() == 1).await;
    assert!(!cb.posts()[0].headers.contains_key("x-hub-signature"));
}

#[tokio::test]
async fn changes_within_the_window_are_coalesced_into_the_latest() {
    let cb = Callback::start().await;
    let mut settings = test_settings();
    settings.coalesce = Duration::from_millis(300);
    let f = Fixture::start(settings);
    f.subscribed(&cb.url("/c"), None).await;
    // Handed over before the dispatcher runs: only the latest is kept.
    f.publish("<feed>0</feed>");
    f.publish("<feed>1</feed>");
    until("the first delivery", || cb.posts().len() == 1).await;
    // Inside the window that delivery opened: held, and sent together when it ends.
    for n in 2..=4 {
        f.publish(&format!("<feed>{n}</feed>"));
    }
    until("the window's delivery", || cb.posts().len() == 2).await;
    f.publish("<feed>5</feed>");
    until("a third delivery", || cb.posts().len() == 3).await;
    let posts = cb.posts();
    let bodies: Vec<Bytes> = posts.iter().map(|p| p.body.clone()).collect();
    assert_eq!(
        bodies,
        ["<feed>1</feed>", "<feed>4</feed>", "<feed>5</feed>"].map(|s| Bytes::from_static(s.as_bytes()))
    );
    let gap = posts[1].at.duration_since(posts[0].at);
    assert!(gap >= Duration::from_millis(100), "the held document waited for the window's end: {gap:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_are_retried_then_the_subscription_dropped() {
    let cb = Callback::start().await;
    let f = Fixture::start(test_settings());
    let callback = cb.url("/c");
    f.subscribed(&callback, None).await;
    cb.set(|b| b.failing_posts = usize::MAX);
    f.publish("<feed/>");
    until("dropped", || f.hub.subscriptions().is_empty()).await;
    assert_eq!(cb.posts().len(), 3, "one attempt and two retries");
    let stats = f.hub.stats();
    assert_eq!((stats.verified, stats.failed, stats.dropped, stats.subscriptions), (1, 3, 1, 0), "{stats:?}");
    let last = f.changes.lock().unwrap().last().cloned();
    assert_eq!(last, Some(Change::Remove { topic: TOPIC.into(), callback }));
}

#[tokio::test]
async fn a_retry_that_succeeds_keeps_the_subscription_and_gone_ends_it() {
    let cb = Callback::start().await;
    let f = Fixture::start(test_settings());
    f.subscribed(&cb.url("/c"), None).await;
    cb.set(|b| b.failing_posts = 1);
    f.publish("<feed>a</feed>");
    until("delivered on the retry", || cb.posts().len() == 2).await;
    assert_eq!(cb.posts()[1].body, "<feed>a</feed>");
    assert_eq!(f.hub.subscriptions().len(), 1);
    cb.set(|b| (b.failing_posts, b.fail_status) = (1, 410));
    f.publish("<feed>b</feed>");
    until("ended by 410", || f.hub.subscriptions().is_empty()).await;
    assert_eq!(cb.posts().len(), 3, "no retry after 410 Gone");
}

#[tokio::test]
async fn subscriptions_survive_a_restart_through_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let cb = Callback::start().await;
    {
        let f = Fixture::start(test_settings());
        f.subscribed(&cb.url("/c"), Some("k")).await;
        let mut store = crate::store::Store::open(&path).unwrap();
        let batch = store.batch().unwrap();
        for change in f.changes.lock().unwrap().iter() {
            batch.websub_apply(change).unwrap();
        }
        batch.commit().unwrap();
    }
    let saved = {
        let mut store = crate::store::Store::open(&path).unwrap();
        let batch = store.batch().unwrap();
        batch.websub_subscriptions(unix_now()).unwrap()
    };
    assert_eq!(saved.len(), 1);
    let f = Fixture::start_saved(test_settings(), saved);
    // The writer is a plain thread: publishing needs no runtime, and returns at once.
    let hub = f.hub.clone();
    let doc = Publication {
        topic: "HTTP://feeds.example:80/topics/climate.atom".into(),
        content_type: ATOM.into(),
        body: Bytes::from_static(b"<feed>after</feed>"),
        links: String::new(),
        public: false,
    };
    std::thread::spawn(move || hub.publish(vec![doc])).join().unwrap();
    until("delivered after the restart", || cb.posts().len() == 1).await;
    assert!(verify_signature("k", &cb.posts()[0].body, cb.posts()[0].headers["x-hub-signature"].to_str().unwrap()));
    assert_eq!(cb.gets().len(), 1, "no new verification");
}

#[tokio::test]
async fn external_hubs_are_pinged_batched_or_per_topic() {
    let (batch, single) = (Callback::start().await, Callback::start().await);
    batch.set(|b| b.failing_posts = 1);
    let mut settings = test_settings();
    settings.hubs = vec![
        ExternalHub { url: batch.url("/hub").parse().unwrap(), per_topic: false },
        ExternalHub { url: single.url("/hub").parse().unwrap(), per_topic: true },
    ];
    // Operator-configured hubs pass no callback policy.
    settings.allow_callbacks.clear();
    let f = Fixture::start(settings);
    let doc = |topic: &str, public: bool| Publication {
        topic: topic.into(),
        content_type: ATOM.into(),
        body: Bytes::from_static(b"<feed/>"),
        links: String::new(),
        public,
    };
    f.hub.publish(vec![
        doc("http://f/a.atom", true),
        doc("http://f/b.rss", true),
        doc("http://f/p.atom?token=t", false),
    ]);
    until("the batch was retried", || batch.posts().len() == 2).await;
    until("one ping per topic", || single.posts().len() == 2).await;
    let form = |s: &Seen| -> Vec<(String, String)> { url::form_urlencoded::parse(&s.body).into_owned().collect() };
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    };
    let expected = pairs(&[("hub.mode", "publish"), ("hub.url", "http://f/a.atom"), ("hub.url", "http://f/b.rss")]);
    assert_eq!(form(&batch.posts()[1]), expected);
    assert_eq!(batch.posts()[1].headers["content-type"], "application/x-www-form-urlencoded");
    let mut singles: Vec<_> = single.posts().iter().map(form).collect();
    singles.sort();
    assert_eq!(
        singles,
        [
            pairs(&[("hub.mode", "publish"), ("hub.topic", "http://f/a.atom")]),
            pairs(&[("hub.mode", "publish"), ("hub.topic", "http://f/b.rss")])
        ]
    );
}

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    use tokio_rustls::rustls::{self, pki_types::pem::PemObject, pki_types::*};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/websub");
    let certs = vec![CertificateDer::from_pem_file(dir.join("server.pem")).unwrap()];
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    #[allow(deprecated)] // see client.rs: ring, not aws-lc-rs
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

#[tokio::test]
async fn https_callbacks_with_the_extra_ca_and_not_without() {
    let cb = Callback::start_with(Some(tls_acceptor())).await;
    let callback = format!("https://{}/secure", cb.addr);
    let untrusted = Fixture::start(test_settings());
    assert_eq!(untrusted.subscribe(&callback, None).status, 202);
    until("the TLS handshake failed", || untrusted.idle()).await;
    assert!(untrusted.hub.subscriptions().is_empty());
    assert!(cb.seen().is_empty(), "no request went through an unverified connection");

    let mut settings = test_settings();
    settings.ca_file = Some(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/websub/ca.pem"));
    let f = Fixture::start(settings);
    f.subscribed(&callback, Some("tls")).await;
    f.publish("<feed>secure</feed>");
    until("delivered over TLS", || cb.posts().len() == 1).await;
    assert_eq!(cb.posts()[0].body, "<feed>secure</feed>");
}

#[test]
fn link_header_names_hubs_then_self() {
    assert_eq!(
        link_header(&["https://h/1", "https://h/2"], "https://f/a"),
        "<https://h/1>; rel=\"hub\", <https://h/2>; rel=\"hub\", <https://f/a>; rel=\"self\""
    );
}
