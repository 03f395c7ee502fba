//! The router driven without a socket (`tower::ServiceExt::oneshot`): content types, conditional
//! requests, negotiation, methods, unknown names and bad filters.

use super::*;
use crate::feed::Format;
use crate::feed::{FeedKey, FeedMeta};
use crate::site::{FeedEntry, Rendered};
use axum::body::Body;
use axum::http::StatusCode;
use axum::http::header;
use axum::http::{Request, Response};
use http_body_util::BodyExt;
use std::collections::HashMap;
use tower::ServiceExt;

fn entry(key: FeedKey, ambiguous: bool) -> FeedEntry {
    let t: chrono::DateTime<chrono::Utc> = "2024-05-01T10:00:00Z".parse().unwrap();
    let doc = |body: &str, f: Format| {
        let mut r = Rendered::new(body.as_bytes().to_vec(), t, f.content_type());
        r.ambiguous = ambiguous;
        r
    };
    let long = format!("<rss>{}</rss>", "<item>words</item>".repeat(100));
    FeedEntry {
        meta: FeedMeta {
            key: key.clone(),
            title: "t".into(),
            description: "d".into(),
            site_title: "s".into(),
            updated: t,
            icon: None,
        },
        key,
        rss: doc(&long, Format::Rss),
        atom: doc("<feed/>", Format::Atom),
        json: doc("{}", Format::Json),
        items_per_feed: 50,
        page_size: 25,
        archive_pages: 0,
        window_start: 0,
        log_len: 0,
        meta_at: t,
        retired_pages: Default::default(),
        generation: 0,
        history_at: t,
        history_ambiguous: false,
    }
}

fn config() -> Config {
    Config::for_test(std::path::Path::new("/nonexistent"), std::path::Path::new("/nonexistent.db"))
}

fn state() -> AppState {
    state_with(config())
}

fn state_with(config: Config) -> AppState {
    let mut site = Site::empty();
    site.feeds = HashMap::from([
        ("topics/ai".to_string(), Arc::new(entry(FeedKey::Topic("ai".into()), false))),
        ("feed".to_string(), Arc::new(entry(FeedKey::All, true))),
    ]);
    AppState::new(
        Arc::new(ArcSwap::from_pointee(site)),
        None,
        Arc::new(ArcSwap::from_pointee(config)),
        Arc::new(Metrics::default()),
    )
}

async fn call(method: &str, uri: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(uri).header("host", "feeds.test");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = router(state()).oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, headers, body)
}

#[tokio::test]
async fn feeds_and_content_types() {
    let (s, h, b) = call("GET", "/topics/ai.atom", &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h[header::CONTENT_TYPE], "application/atom+xml; charset=utf-8");
    assert_eq!(b, b"<feed/>");
    assert_eq!(h[header::LAST_MODIFIED], "Wed, 01 May 2024 10:00:00 GMT");
    assert_eq!(h[header::CACHE_CONTROL], "public, max-age=60");
    let (s, h, _) = call("GET", "/feed.json", &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h[header::CONTENT_TYPE], "application/feed+json; charset=utf-8");
    let (s, h, _) = call("GET", "/feed.xsl", &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(h[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/xsl"));
}

#[tokio::test]
async fn conditional_requests() {
    let (_, h, _) = call("GET", "/topics/ai.atom", &[]).await;
    let etag = h[header::ETAG].to_str().unwrap().to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'));
    let (s, h2, b) = call("GET", "/topics/ai.atom", &[("if-none-match", &etag)]).await;
    assert_eq!(s, StatusCode::NOT_MODIFIED);
    assert!(b.is_empty());
    assert_eq!(h2[header::ETAG], etag.as_str());
    let weak = format!("\"x\", W/{etag}");
    assert_eq!(call("GET", "/topics/ai.atom", &[("if-none-match", &weak)]).await.0, StatusCode::NOT_MODIFIED);
    assert_eq!(call("GET", "/topics/ai.atom", &[("if-none-match", "\"other\"")]).await.0, StatusCode::OK);
    let lm = "Wed, 01 May 2024 10:00:00 GMT";
    assert_eq!(call("GET", "/topics/ai.atom", &[("if-modified-since", lm)]).await.0, StatusCode::NOT_MODIFIED);
    assert_eq!(
        call("GET", "/topics/ai.atom", &[("if-modified-since", "Wed, 01 May 2024 09:59:59 GMT")]).await.0,
        StatusCode::OK
    );
    assert_eq!(call("GET", "/topics/ai.atom", &[("if-modified-since", "garbage")]).await.0, StatusCode::OK);
    assert_eq!(
        call("GET", "/feed.rss", &[("if-modified-since", lm)]).await.0,
        StatusCode::OK,
        "two versions within the second of Last-Modified: the date cannot tell them apart"
    );
    // If-None-Match wins over If-Modified-Since.
    assert_eq!(
        call("GET", "/topics/ai.atom", &[("if-none-match", "\"other\""), ("if-modified-since", lm)]).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn compression_is_negotiated() {
    let (_, plain_h, plain_b) = call("GET", "/topics/ai.rss", &[]).await;
    assert!(plain_h.get(header::CONTENT_ENCODING).is_none());
    assert_eq!(plain_h[header::VARY], "Accept-Encoding");
    for (accept, coding) in [
        ("gzip, deflate, br", Some("br")),
        ("gzip", Some("gzip")),
        ("br;q=0.5, gzip;q=0.8", Some("gzip")),
        ("br;q=0, gzip;q=0", None),
        ("*", Some("br")),
        ("identity", None),
        ("deflate", None),
    ] {
        let (s, h, b) = call("GET", "/topics/ai.rss", &[("accept-encoding", accept)]).await;
        assert_eq!(s, StatusCode::OK, "{accept}");
        assert_eq!(h.get(header::CONTENT_ENCODING).map(|v| v.to_str().unwrap()), coding, "{accept}");
        assert_eq!(h[header::VARY], "Accept-Encoding");
        if coding.is_some() {
            assert!(b.len() < plain_b.len());
            assert_ne!(h[header::ETAG], plain_h[header::ETAG], "each coding is its own representation");
            let (s, _, _) = call(
                "GET",
                "/topics/ai.rss",
                &[("accept-encoding", accept), ("if-none-match", h[header::ETAG].to_str().unwrap())],
            )
            .await;
            assert_eq!(s, StatusCode::NOT_MODIFIED);
        }
    }
    // Browsers get the feed's page, made from the store; without one (here) the feed itself.
    // Either way the answer depends on Accept.
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let (_, h, _) = call("GET", "/topics/ai.rss", &[("accept", browser)]).await;
    assert_eq!(h[header::CONTENT_TYPE], "application/rss+xml; charset=utf-8");
    assert!(h.get_all(header::VARY).iter().any(|v| v == "Accept"));
    let reader = "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.8";
    let (_, h, _) = call("GET", "/topics/ai.rss", &[("accept", reader)]).await;
    assert_eq!(h[header::CONTENT_TYPE], "application/rss+xml; charset=utf-8");
    let (_, h, _) = call("GET", "/topics/ai.rss", &[("accept", "text/html;q=0, */*")]).await;
    assert_eq!(h[header::CONTENT_TYPE], "application/rss+xml; charset=utf-8");
    // Tiny documents are not compressed.
    let (_, h, _) = call("GET", "/topics/ai.atom", &[("accept-encoding", "br")]).await;
    assert!(h.get(header::CONTENT_ENCODING).is_none());
}

#[tokio::test]
async fn methods_unknowns_and_bad_filters() {
    let (s, h, b) = call("HEAD", "/topics/ai.atom", &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(b.is_empty());
    assert_eq!(h[header::CONTENT_LENGTH], "7");
    let (s, h, _) = call("POST", "/topics/ai.rss", &[]).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert!(h.contains_key(header::ALLOW));
    assert_eq!(call("DELETE", "/feed.rss", &[]).await.0, StatusCode::METHOD_NOT_ALLOWED);
    // CONNECT (authority form) and OPTIONS * name no route, and are refused like other methods.
    for (method, target) in [("CONNECT", "feeds.test:443"), ("OPTIONS", "*")] {
        let (s, h, _) = call(method, target, &[]).await;
        assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{method} {target}");
        assert_eq!(h[header::ALLOW], "GET,HEAD", "{method} {target}");
    }
    for uri in [
        "/topics/nope.rss",
        "/topics/ai.xml",
        "/topics/ai",
        "/providers/x.rss",
        "/nope",
        "/topics/.rss",
        "/clippings/1",
        "/other/ai.rss",
        "/topics/ai/archive/25-0.rss",
        "/feed/archive/25-00.rss",
        "/feed/archive/0.rss",
    ] {
        assert_eq!(call("GET", uri, &[]).await.0, StatusCode::NOT_FOUND, "{uri}");
    }
    let (s, _, b) = call("GET", "/topics/ai.rss?limit=0", &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8(b).unwrap().contains("'limit'"));
    let (s, _, b) = call("GET", "/topics/ai.rss?topic=x", &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8(b).unwrap().contains("'topic'"));
    assert_eq!(call("GET", "/healthz", &[]).await.0, StatusCode::OK);
    // The status is the operators': a client whose address is not in `metrics.allow` (here: no
    // address at all) is refused like at `/metrics`; health and readiness stay public.
    for operator_only in ["/api/status", "/metrics"] {
        let (s, _, b) = call("GET", operator_only, &[]).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{operator_only}");
        assert!(!String::from_utf8(b).unwrap().contains("rejected"), "{operator_only}");
    }
}

#[tokio::test]
async fn a_client_behind_a_proxy_is_held_to_its_share_of_requests() {
    use crate::config::Network;
    use axum::extract::ConnectInfo;
    use std::net::SocketAddr;
    let mut cfg = config();
    cfg.http.trusted_proxies = vec![Network::parse("10.0.0.0/8").unwrap()];
    cfg.http.max_connections_per_address = 2;
    let state = state_with(cfg);
    // Two requests of 203.0.113.9 are in flight (through the proxy).
    let key = client::AddrKey::of("203.0.113.9".parse().unwrap());
    let _in_flight = [state.proxied.enter(key, 2).unwrap(), state.proxied.enter(key, 2).unwrap()];
    let status = |peer: [u8; 4], forwarded: Option<&str>| {
        let mut req = Request::builder().uri("/healthz").header("host", "feeds.test");
        if let Some(f) = forwarded {
            req = req.header("x-forwarded-for", f);
        }
        let req = req.extension(ConnectInfo(SocketAddr::from((peer, 4000)))).body(Body::empty()).unwrap();
        let app = router(state.clone());
        async move {
            let res = app.oneshot(req).await.unwrap();
            (res.status(), res.headers().get(header::RETRY_AFTER).cloned())
        }
    };
    let (s, retry) = status([10, 0, 0, 2], Some("203.0.113.9")).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert!(retry.is_some());
    assert_eq!(status([10, 0, 0, 2], Some("203.0.113.10")).await.0, StatusCode::OK, "another client");
    assert_eq!(status([10, 0, 0, 2], None).await.0, StatusCode::OK, "the proxy's own request");
    // Directly connected, a client is held per connection (by `conns`), not here.
    assert_eq!(status([203, 0, 113, 9], None).await.0, StatusCode::OK);
}

/// A first start: feeds without items, and feeds not known yet, answer 503 with `Retry-After`
/// until the store's first reconcile; once it has been reconciled, unknown feeds are 404s.
#[tokio::test]
async fn a_cold_store_answers_503_for_feeds_without_items() {
    let st = state();
    let mut site = (**st.site.load()).clone();
    let mut ai = entry(FeedKey::Topic("ai".into()), false);
    ai.log_len = 3;
    site.feeds.insert("topics/ai".into(), Arc::new(ai));
    let fetch = |site: Site, uri: &'static str| {
        let st = state();
        st.site.store(Arc::new(site));
        async move {
            let req = Request::builder().uri(uri).header("host", "feeds.test").body(Body::empty()).unwrap();
            let res = router(st).oneshot(req).await.unwrap();
            (res.status(), res.headers().get(header::RETRY_AFTER).cloned())
        }
    };
    let cold = Site { cold: true, ..site.clone() };
    for uri in ["/feed.rss", "/topics/robotics.atom", "/providers/news.example.json", "/feed/archive/25-0.rss"] {
        let (status, retry) = fetch(cold.clone(), uri).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        assert_eq!(retry.unwrap(), "5", "{uri}");
    }
    assert_eq!(fetch(cold.clone(), "/topics/ai.rss").await.0, StatusCode::OK, "a feed with items serves");
    assert_eq!(fetch(cold.clone(), "/elsewhere/x.rss").await.0, StatusCode::NOT_FOUND, "not a feed address");
    assert_eq!(fetch(cold, "/topics/ai.txt").await.0, StatusCode::NOT_FOUND, "not a feed format");
    let warm = Site { cold: false, ..site };
    assert_eq!(fetch(warm.clone(), "/topics/robotics.atom").await.0, StatusCode::NOT_FOUND);
    assert_eq!(fetch(warm, "/feed.rss").await.0, StatusCode::OK, "an empty feed, once reconciled");
}

/// A request in a test's list: method, target, header lines.
type Sent<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);

/// Requests as a test sends them: method, target, header lines (an HTTP/1.1 request with one
/// `Host` unless `host` says otherwise).
fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(Body::empty()).unwrap()
}

/// An answer as bytes to compare: status, every header line in order of name (the values of one
/// name in the order sent), body.
async fn answered(res: Response<Body>) -> (StatusCode, Vec<(String, Vec<u8>)>, Vec<u8>) {
    let status = res.status();
    let mut lines: Vec<(String, Vec<u8>)> =
        res.headers().iter().map(|(k, v)| (k.as_str().to_string(), v.as_bytes().to_vec())).collect();
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    (status, lines, res.into_body().collect().await.unwrap().to_bytes().to_vec())
}

/// The request lines of a metrics text.
fn request_counts(state: &AppState) -> Vec<String> {
    let text = state.metrics.render(&crate::process::sample());
    text.lines().filter(|l| l.starts_with("clipfeed_http_re") && !l.ends_with(" 0")).map(str::to_string).collect()
}

/// The hot path answers what it takes exactly as the router does (status, every header with its
/// values, body) and counts it the same way; everything else it leaves to the router.
#[tokio::test]
async fn the_hot_path_answers_as_the_router_does() {
    let with_private = || {
        let st = state();
        let mut site = (**st.site.load()).clone();
        site.feeds.insert("topics/secret".into(), Arc::new(entry(FeedKey::Topic("secret".into()), false)));
        site.private.insert("topics/secret".into(), "tok".into());
        st.site.store(Arc::new(site));
        st
    };
    let (hot_state, routed_state) = (with_private(), with_private());
    let peer: std::net::IpAddr = "192.0.2.7".parse().unwrap();
    let host = ("host", "feeds.test");
    let (_, gz, _) = call("GET", "/topics/ai.rss", &[("accept-encoding", "gzip")]).await;
    let gzip_tag = gz[header::ETAG].to_str().unwrap().to_string();
    let lm = "Wed, 01 May 2024 10:00:00 GMT";
    let reader = "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.8";
    let taken: Vec<Sent> = vec![
        ("GET", "/topics/ai.rss", vec![host]),
        ("GET", "/topics/ai.rss", vec![host, ("accept-encoding", "gzip")]),
        ("GET", "/topics/ai.rss", vec![host, ("accept-encoding", "gzip, deflate, br")]),
        ("HEAD", "/topics/ai.rss", vec![host, ("accept-encoding", "gzip")]),
        ("GET", "/topics/ai.rss", vec![host, ("accept-encoding", "gzip"), ("if-none-match", gzip_tag.as_str())]),
        ("HEAD", "/topics/ai.rss", vec![host, ("if-none-match", "\"other\", W/\"x\"")]),
        ("GET", "/topics/ai.atom", vec![host, ("if-modified-since", lm)]),
        ("GET", "/feed.rss", vec![host, ("if-modified-since", lm), ("accept", reader)]),
        ("GET", "/feed.json", vec![host, ("accept", "*/*")]),
    ];
    for (method, uri, headers) in &taken {
        let hot = super::hot::answer(&hot_state, &request(method, uri, headers), peer);
        let hot = answered(hot.unwrap_or_else(|| panic!("{method} {uri} {headers:?} not taken"))).await;
        let routed = router(routed_state.clone()).oneshot(request(method, uri, headers)).await.unwrap();
        assert_eq!(hot, answered(routed).await, "{method} {uri} {headers:?}");
    }
    assert_eq!(request_counts(&hot_state), request_counts(&routed_state));
    assert!(request_counts(&hot_state).iter().any(|l| l.contains("route=\"feed\",status=\"304\"} 2")));
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let left: Vec<Sent> = vec![
        ("GET", "/topics/ai.rss?limit=5", vec![host]),
        ("GET", "/topics/ai.rss?", vec![host]),
        ("GET", "/topics/a%69.rss", vec![host]),
        ("GET", "/topics/secret.rss", vec![host]),
        ("GET", "/topics/secret.rss", vec![host, ("authorization", "Bearer tok")]),
        ("GET", "/topics/nope.rss", vec![host]),
        ("GET", "/topics/ai.xml", vec![host]),
        ("GET", "/feed.xsl", vec![host]),
        ("GET", "/other/ai.rss", vec![host]),
        ("GET", "/topics/ai/x.rss", vec![host]),
        ("GET", "/topics/...rss", vec![host]),
        ("GET", "/feed/archive/25-0.rss", vec![host]),
        ("POST", "/topics/ai.rss", vec![host]),
        ("GET", "/topics/ai.rss", vec![host, ("accept", browser)]),
        ("GET", "/topics/ai.rss", vec![]),
        ("GET", "/topics/ai.rss", vec![host, host]),
    ];
    for (method, uri, headers) in &left {
        let req = request(method, uri, headers);
        assert!(super::hot::answer(&hot_state, &req, peer).is_none(), "{method} {uri} {headers:?}");
    }
    // A client behind a trusted proxy is the router's (its limits are kept there).
    let mut cfg = config();
    cfg.http.trusted_proxies = vec![crate::config::Network::parse("192.0.2.0/24").unwrap()];
    let proxied = state_with(cfg);
    assert!(super::hot::answer(&proxied, &request("GET", "/feed.rss", &[host]), peer).is_none());
    let other: std::net::IpAddr = "198.51.100.1".parse().unwrap();
    assert!(super::hot::answer(&proxied, &request("GET", "/feed.rss", &[host]), other).is_some());
}

/// A test server on a port of its own: `server`'s connections accepted on `rt`.
fn listen(rt: &tokio::runtime::Runtime, server: super::Server) -> std::net::SocketAddr {
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let conns = super::Connections::new(&config().http, 1000);
    let (tx, phase) = tokio::sync::watch::channel(super::Phase::Serving);
    rt.spawn(async move {
        let _tx = tx;
        while let Ok((stream, peer)) = listener.accept().await {
            let (server, phase, ticket) = (server.clone(), phase.clone(), conns.admit(peer.ip()).unwrap());
            tokio::spawn(async move { server.serve(stream, peer, phase, ticket).await });
        }
    });
    addr
}

/// A response as read off the wire: status, every header line but `date` (sorted by name, values
/// of one name in order), and the body (its length from the answer, none for `HEAD` and 304).
type Wire = (u16, Vec<(String, Vec<u8>)>, Vec<u8>);

/// Sends `raw` (one or more requests) on a new connection and reads `heads.len()` answers, one
/// per method in `heads` (whether it answers `HEAD`).
fn exchange(addr: std::net::SocketAddr, raw: &[u8], heads: &[bool]) -> Vec<Wire> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    s.write_all(raw).unwrap();
    let mut got = Vec::new();
    let mut answers = Vec::new();
    for &head in heads {
        loop {
            let mut fields = [httparse::EMPTY_HEADER; 64];
            let mut res = httparse::Response::new(&mut fields);
            if let httparse::Status::Complete(n) = res.parse(&got).unwrap() {
                let status = res.code.unwrap();
                let mut lines: Vec<(String, Vec<u8>)> = res
                    .headers
                    .iter()
                    .filter(|h| !h.name.eq_ignore_ascii_case("date"))
                    .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
                    .collect();
                lines.sort_by(|a, b| a.0.cmp(&b.0));
                assert!(res.headers.iter().any(|h| h.name == "date"), "a date");
                let len = lines.iter().find(|l| l.0 == "content-length");
                let len = match len {
                    Some((_, v)) if !head && status != 304 => std::str::from_utf8(v).unwrap().parse().unwrap(),
                    _ => 0,
                };
                while got.len() < n + len {
                    let mut chunk = [0u8; 65536];
                    let k = s.read(&mut chunk).unwrap();
                    assert!(k > 0, "closed mid-body");
                    got.extend_from_slice(&chunk[..k]);
                }
                answers.push((status, lines, got[n..n + len].to_vec()));
                got.drain(..n + len);
                break;
            }
            let mut chunk = [0u8; 65536];
            let k = s.read(&mut chunk).unwrap();
            assert!(k > 0, "closed before an answer: {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&chunk[..k]);
        }
    }
    answers
}

/// The fast path (`fast`) answers on the wire exactly as hyper and the router do: the same
/// status, header lines with their values (the date aside) and body, for requests it takes,
/// for those it leaves to hyper at once or after answering some, and for pipelined ones; and
/// each server counts the same requests.
#[test]
fn the_fast_path_answers_on_the_wire_as_hyper_does() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (fast_state, hyper_state) = (state(), state());
    let limits = config().http;
    let fast = listen(&rt, super::Server::new(fast_state.clone(), &limits));
    let hyper = listen(&rt, super::Server::new(hyper_state.clone(), &limits).without_fast_path());
    let (_, gz, _) = rt.block_on(call("GET", "/topics/ai.rss", &[("accept-encoding", "gzip")]));
    let tag = gz[header::ETAG].to_str().unwrap().to_string();
    let get = |path: &str, extra: &str| format!("GET {path} HTTP/1.1\r\nHost: feeds.test\r\n{extra}\r\n");
    let head = |path: &str, extra: &str| format!("HEAD {path} HTTP/1.1\r\nhost: feeds.test\r\n{extra}\r\n");
    let cases: Vec<(String, Vec<bool>)> = vec![
        (get("/topics/ai.rss", ""), vec![false]),
        (get("/topics/ai.rss", "Accept-Encoding: gzip\r\n"), vec![false]),
        (get("/topics/ai.rss", "accept-encoding: br;q=0.5, gzip\r\nUser-Agent: r/1\r\n"), vec![false]),
        (get("/topics/ai.rss", &format!("Accept-Encoding: gzip\r\nIf-None-Match: {tag}\r\n")), vec![false]),
        (head("/topics/ai.rss", &format!("If-None-Match: {tag}\r\nAccept-Encoding: gzip\r\n")), vec![true]),
        (head("/topics/ai.rss", "Accept-Encoding: gzip\r\n"), vec![true]),
        (
            get("/feed.rss", "If-Modified-Since: Wed, 01 May 2024 10:00:00 GMT\r\nConnection: keep-alive\r\n"),
            vec![false],
        ),
        (get("/feed.json", "Accept: */*\r\n"), vec![false]),
        (get("/topics/ai.atom", "Accept: application/atom+xml\r\n"), vec![false]),
        // Pipelined, all taken; then one taken and the rest left to hyper.
        (get("/topics/ai.rss", "") + &head("/feed.rss", "") + &get("/feed.json", ""), vec![false, true, false]),
        (get("/feed.json", "") + &get("/feed.json?limit=1", "") + &get("/feed.rss", ""), vec![false, false, false]),
        // Left to hyper from the first request.
        (get("/topics/ai.rss", "Content-Length: 0\r\n"), vec![false]),
        (get("/topics/ai.rss", "Cookie: a=b\r\n"), vec![false]),
        (get("/topics/ai.rss", "Accept: text/html\r\n"), vec![false]),
        (get("/topics/nope.rss", ""), vec![false]),
        (get("/topics/a%69.rss", ""), vec![false]),
        (get("/", ""), vec![false]),
        ("GET /feed.rss HTTP/1.1\r\n\r\n".into(), vec![false]),
        ("GET /feed.rss HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".into(), vec![false]),
        ("GET /feed.rss HTTP/1.0\r\nHost: a\r\n\r\n".into(), vec![false]),
        ("POST /feed.rss HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nab".into(), vec![false]),
        (get("/feed.rss", "Connection: close\r\n"), vec![false]),
        (get("/feed.rss", "X-Thing: \u{7f}\r\n"), vec![false]),
    ];
    for (raw, heads) in &cases {
        let ours = exchange(fast, raw.as_bytes(), heads);
        assert_eq!(ours, exchange(hyper, raw.as_bytes(), heads), "{raw:?}");
        assert!(ours.iter().all(|a| a.0 != 500), "{raw:?}");
    }
    let taken = request_counts(&fast_state);
    assert_eq!(taken, request_counts(&hyper_state));
    assert!(taken.iter().any(|l| l.contains("route=\"feed\",status=\"304\"} 2")), "{taken:?}");
}

/// Bodies sent by `sendfile` from sealed files (`fast::SENDFILE`, `site::Sealed`).
#[cfg(test)]
mod tests_sendfile {
    use super::*;

    /// A state whose `/topics/ai.rss` is `body` (the rest as in [`state`]).
    fn state_serving(body: Vec<u8>) -> AppState {
        let state = state();
        publish(&state, body);
        state
    }

    /// Publishes `body` as `/topics/ai.rss`, as the writer swaps in a new snapshot.
    fn publish(state: &AppState, body: Vec<u8>) {
        let mut site = Site::empty();
        let mut ai = entry(FeedKey::Topic("ai".into()), false);
        ai.rss = Rendered::new(body, ai.meta.updated, Format::Rss.content_type());
        site.feeds = HashMap::from([
            ("topics/ai".to_string(), Arc::new(ai)),
            ("feed".to_string(), Arc::new(entry(FeedKey::All, true))),
        ]);
        state.site.store(Arc::new(site));
    }

    /// `len` bytes of text that gzip cannot shrink much (hex digits of an xorshift sequence).
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed.max(1);
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b"0123456789abcdef"[(x & 15) as usize]
            })
            .collect()
    }

    /// Bodies of the lengths sent by `sendfile` (`fast::SENDFILE`), identity and gzip, go on the wire
    /// exactly as hyper sends them from memory, alone, after `HEAD` and 304 answers and pipelined;
    /// and they went from sealed files.
    #[test]
    fn long_bodies_sent_from_sealed_files_are_the_same_on_the_wire() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let body = noise(7, 48 * 1024);
        let (fast_state, hyper_state) = (state_serving(body.clone()), state_serving(body.clone()));
        let limits = config().http;
        let fast = listen(&rt, super::Server::new(fast_state.clone(), &limits));
        let hyper = listen(&rt, super::Server::new(hyper_state.clone(), &limits).without_fast_path());
        let get = |extra: &str| format!("GET /topics/ai.rss HTTP/1.1\r\nHost: feeds.test\r\n{extra}\r\n");
        // A document gets its files once it has been asked for often enough.
        let head = "HEAD /topics/ai.rss HTTP/1.1\r\nHost: a\r\n\r\n".repeat(crate::site::SEALED_ASKED as usize);
        for addr in [fast, hyper] {
            exchange(addr, head.as_bytes(), &vec![true; crate::site::SEALED_ASKED as usize]);
        }
        let plain = exchange(fast, get("").as_bytes(), &[false]);
        assert_eq!(plain[0].2, body, "the document itself");
        let gz = exchange(fast, get("Accept-Encoding: gzip\r\n").as_bytes(), &[false]);
        // The same requests to hyper, so that both count the same.
        assert_eq!(exchange(hyper, get("").as_bytes(), &[false]), plain);
        assert_eq!(exchange(hyper, get("Accept-Encoding: gzip\r\n").as_bytes(), &[false]), gz);
        let tag = &gz[0].1.iter().find(|l| l.0 == "etag").unwrap().1;
        let tag = String::from_utf8(tag.clone()).unwrap();
        let mut inflated = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[0].2[..]), &mut inflated).unwrap();
        assert_eq!(inflated, body, "the gzip form inflates to the document");
        assert!(gz[0].2.len() >= 8 * 1024, "long enough for sendfile: {}", gz[0].2.len());
        let cases: Vec<(String, Vec<bool>)> = vec![
            (get(""), vec![false]),
            (get("Accept-Encoding: gzip\r\n"), vec![false]),
            ("HEAD /topics/ai.rss HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n".into(), vec![true]),
            (
                get("Accept-Encoding: gzip\r\n")
                    + &get("")
                    + &get(&format!("Accept-Encoding: gzip\r\nIf-None-Match: {tag}\r\n"))
                    + &get("Accept-Encoding: gzip\r\n"),
                vec![false, false, false, false],
            ),
        ];
        for (raw, heads) in &cases {
            let ours = exchange(fast, raw.as_bytes(), heads);
            assert_eq!(ours, exchange(hyper, raw.as_bytes(), heads), "{raw:?}");
        }
        assert_eq!(request_counts(&fast_state), request_counts(&hyper_state));
        let site = fast_state.site.load();
        let doc = &site.feeds["topics/ai"].rss;
        let held = |enc| doc.sealed_now(enc).map(|f| f.len());
        let gz_len = gz[0].2.len();
        assert_eq!(
            (held(crate::site::Encoding::Identity), held(crate::site::Encoding::Gzip)),
            (Some(body.len()), Some(gz_len))
        );
    }

    /// A connection to `addr` whose receive buffer is as small as the kernel allows (set before
    /// connecting, so the window it opens is small too): what it does not read stalls the sender.
    fn connect_small(addr: std::net::SocketAddr) -> std::net::TcpStream {
        use std::os::fd::FromRawFd;
        let std::net::SocketAddr::V4(v4) = addr else { panic!("a v4 test server") };
        // SAFETY: plain socket calls on a descriptor this function opens and hands to `TcpStream`;
        // the pointers are to locals that outlive each call.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0);
            let small: libc::c_int = 1024;
            let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, (&small as *const libc::c_int).cast(), len);
            let sa = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from(*v4.ip()).to_be() },
                sin_zero: [0; 8],
            };
            let sa_len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            assert_eq!(libc::connect(fd, (&sa as *const libc::sockaddr_in).cast(), sa_len), 0);
            std::net::TcpStream::from_raw_fd(fd)
        }
    }

    /// Reads `n` answers off `s` (after the bytes `got` already read), giving their bodies.
    fn bodies(s: &mut std::net::TcpStream, mut got: Vec<u8>, n: usize) -> Vec<Vec<u8>> {
        use std::io::Read;
        let mut out = Vec::new();
        while out.len() < n {
            let mut fields = [httparse::EMPTY_HEADER; 32];
            let mut res = httparse::Response::new(&mut fields);
            if let httparse::Status::Complete(h) = res.parse(&got).unwrap() {
                let len = res.headers.iter().find(|f| f.name == "content-length").unwrap().value;
                let len: usize = std::str::from_utf8(len).unwrap().parse().unwrap();
                while got.len() < h + len {
                    let mut chunk = vec![0u8; 1 << 20];
                    let k = s.read(&mut chunk).unwrap();
                    assert!(k > 0, "closed mid-body");
                    got.extend_from_slice(&chunk[..k]);
                }
                out.push(got[h..h + len].to_vec());
                got.drain(..h + len);
                continue;
            }
            let mut chunk = [0u8; 4096];
            let k = s.read(&mut chunk).unwrap();
            assert!(k > 0, "closed before an answer");
            got.extend_from_slice(&chunk[..k]);
        }
        out
    }

    /// A document replaced by a publish while its body is on its way is sent whole as it was when
    /// the answer began, from its sealed file (`sendfile`) or from memory (a body too long for a
    /// file), and the next request on the same connection gets the new one whole.
    #[test]
    fn a_publish_during_a_long_send_never_mixes_two_documents() {
        use std::io::{Read, Write};
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let asks = crate::site::SEALED_ASKED as usize;
        // One body sent from a file, one longer than any file, each longer than the client takes
        // while it reads nothing.
        for (len, sealed) in [(60 * 1024, true), (12 << 20, false)] {
            let (old, new) = (noise(11, len), noise(13, len));
            let state = state_serving(old.clone());
            let addr = listen(&rt, super::Server::new(state.clone(), &config().http));
            // Asked for often enough to be sent from its sealed file (`HEAD`s send no body).
            let heads = "HEAD /topics/ai.rss HTTP/1.1\r\nHost: a\r\n\r\n".repeat(asks);
            assert!(exchange(addr, heads.as_bytes(), &vec![true; asks]).iter().all(|a| a.0 == 200));
            let mut s = connect_small(addr);
            s.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
            let get = b"GET /topics/ai.rss HTTP/1.1\r\nHost: feeds.test\r\n\r\n";
            s.write_all(get).unwrap();
            let mut first = vec![0u8; 1024];
            s.read_exact(&mut first).unwrap();
            let site = state.site.load_full();
            let file = site.feeds["topics/ai"].rss.sealed_now(crate::site::Encoding::Identity);
            assert_eq!(file.map(|f| f.len()), sealed.then_some(len), "sent from a sealed file: {sealed}");
            drop(site);
            publish(&state, new.clone());
            s.write_all(get).unwrap();
            let answers = bodies(&mut s, first, 2);
            assert!(answers[0] == old, "the first answer is the old document whole ({len} bytes)");
            assert!(answers[1] == new, "the second is the new one whole ({len} bytes)");
        }
    }
}

/// The fast path's answers byte for byte, and its request counts with many connections at once.
#[cfg(test)]
mod tests_wire {
    use super::*;

    /// The answers to `raw` (one or more requests) on a new connection, one per entry of `heads`
    /// (whether it answers `HEAD`), each as the bytes sent, head and body, with the value of
    /// `date` (the one field that may differ from one second to the next) masked.
    fn raw_answers(addr: std::net::SocketAddr, raw: &[u8], heads: &[bool]) -> Vec<Vec<u8>> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
        s.write_all(raw).unwrap();
        let mut got = Vec::new();
        let mut answers = Vec::new();
        for &head in heads {
            loop {
                let mut fields = [httparse::EMPTY_HEADER; 64];
                let mut res = httparse::Response::new(&mut fields);
                if let httparse::Status::Complete(n) = res.parse(&got).unwrap() {
                    let status = res.code.unwrap();
                    let len = res.headers.iter().find(|h| h.name.eq_ignore_ascii_case("content-length"));
                    let len = match len {
                        Some(h) if !head && status != 304 => std::str::from_utf8(h.value).unwrap().parse().unwrap(),
                        _ => 0,
                    };
                    while got.len() < n + len {
                        let mut chunk = [0u8; 65536];
                        let k = s.read(&mut chunk).unwrap();
                        assert!(k > 0, "closed mid-body");
                        got.extend_from_slice(&chunk[..k]);
                    }
                    let mut answer: Vec<u8> = got.drain(..n + len).collect();
                    let date =
                        answer[..n].windows(8).position(|w| w.eq_ignore_ascii_case(b"\r\ndate: ")).expect("a date");
                    let end = date + 8 + answer[date + 8..].iter().position(|&b| b == b'\r').unwrap();
                    answer.splice(date + 8..end, *b"(masked)");
                    answers.push(answer);
                    break;
                }
                let mut chunk = [0u8; 65536];
                let k = s.read(&mut chunk).unwrap();
                assert!(k > 0, "closed before an answer: {:?}", String::from_utf8_lossy(&got));
                got.extend_from_slice(&chunk[..k]);
            }
        }
        answers
    }

    /// Every answer of the fast path is the very bytes hyper and the router send for the same
    /// request (the `Date` value aside, the order of the fields included): plain, gzip and 304
    /// (by `If-None-Match` in its forms, by `If-Modified-Since`), `HEAD`, a `Range` (left to
    /// hyper), names in any case and fields sent on several lines; alone and pipelined.
    #[test]
    fn the_fast_path_sends_the_bytes_hyper_sends() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let (fast_state, hyper_state) = (state(), state());
        let limits = config().http;
        let fast = listen(&rt, super::Server::new(fast_state.clone(), &limits));
        let hyper = listen(&rt, super::Server::new(hyper_state.clone(), &limits).without_fast_path());
        let (_, plain, _) = rt.block_on(call("GET", "/topics/ai.rss", &[]));
        let (_, gz, _) = rt.block_on(call("GET", "/topics/ai.rss", &[("accept-encoding", "gzip")]));
        assert_eq!(gz[header::CONTENT_ENCODING], "gzip", "the document is sent gzipped when asked");
        let tag = plain[header::ETAG].to_str().unwrap().to_string();
        let gz_tag = gz[header::ETAG].to_str().unwrap().to_string();
        let modified = plain[header::LAST_MODIFIED].to_str().unwrap().to_string();
        let fields: Vec<String> = vec![
            String::new(),
            "Accept-Encoding: gzip\r\n".into(),
            "ACCEPT-ENCODING: GZIP\r\nuser-agent: r/1\r\nDNT: 1\r\n".into(),
            "Accept-Encoding: br;q=0, gzip;q=0.5\r\n".into(),
            "Accept-Encoding: identity\r\nAccept-Encoding: gzip\r\n".into(),
            "Accept-Encoding: gzip;q=0\r\n".into(),
            "Accept-Encoding: \tgzip\t\r\n".into(),
            format!("If-None-Match: {tag}\r\n"),
            format!("Accept-Encoding: gzip\r\nIf-None-Match: {gz_tag}\r\n"),
            format!("Accept-Encoding: gzip\r\nif-none-match: \"other\", W/{gz_tag}\r\n"),
            format!("If-None-Match: \"other\"\r\nIf-None-Match: {tag}\r\n"),
            "If-None-Match: *\r\n".into(),
            "If-None-Match: \"other\"\r\n".into(),
            format!("If-Modified-Since: {modified}\r\n"),
            "If-Modified-Since: Thu, 01 Jan 2099 00:00:00 GMT\r\nAccept-Encoding: gzip\r\n".into(),
            "If-Modified-Since: Mon, 01 Jan 2001 00:00:00 GMT\r\n".into(),
            "If-Modified-Since: yesterday\r\n".into(),
            format!("If-Modified-Since: {modified}\r\nIf-Modified-Since: {modified}\r\n"),
            format!("If-None-Match: \"other\"\r\nIf-Modified-Since: {modified}\r\n"),
            "Accept: application/rss+xml, */*;q=0.1\r\nAccept: text/html;q=0.2\r\n".into(),
            "Accept: text/html\r\n".into(),
            "Range: bytes=0-9\r\n".into(),
            "Accept-Encoding: gzip\r\nRange: bytes=5-\r\n".into(),
            "Cache-Control: no-cache\r\nPragma: no-cache\r\nConnection: keep-alive\r\n".into(),
        ];
        // Pipelined on one connection too: first those the fast path takes, then those it leaves
        // (the first of which hands the connection to hyper).
        let (mut all, mut all_heads, mut left, mut left_heads) = (String::new(), Vec::new(), String::new(), Vec::new());
        for extra in &fields {
            for (method, path) in [("GET", "/topics/ai.rss"), ("HEAD", "/topics/ai.rss"), ("GET", "/feed.json")] {
                let raw = format!("{method} {path} HTTP/1.1\r\nHost: feeds.test\r\n{extra}\r\n");
                let heads = [method == "HEAD"];
                let ours = raw_answers(fast, raw.as_bytes(), &heads);
                assert_eq!(
                    String::from_utf8_lossy(&ours[0]),
                    String::from_utf8_lossy(&raw_answers(hyper, raw.as_bytes(), &heads)[0]),
                    "{raw:?}"
                );
                if extra.contains("Range") || extra.contains("Accept: text/html") {
                    left.push_str(&raw);
                    left_heads.push(method == "HEAD");
                } else {
                    all.push_str(&raw);
                    all_heads.push(method == "HEAD");
                }
            }
        }
        all.push_str(&left);
        all_heads.extend(left_heads);
        let ours = raw_answers(fast, all.as_bytes(), &all_heads);
        let statuses: Vec<String> = ours.iter().map(|a| String::from_utf8_lossy(&a[9..12]).into_owned()).collect();
        assert!(statuses.contains(&"304".to_string()) && statuses.contains(&"200".to_string()), "{statuses:?}");
        assert_eq!(ours, raw_answers(hyper, all.as_bytes(), &all_heads), "pipelined");
        assert_eq!(request_counts(&fast_state), request_counts(&hyper_state));
    }

    /// The request counts in `/metrics` are exact with many connections answered at once on
    /// several threads: each count by status, and the body bytes, are what the clients received.
    #[test]
    fn request_counts_are_exact_under_concurrent_connections() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
        let state = state();
        let addr = listen(&rt, super::Server::new(state.clone(), &config().http));
        let (_, gz, _) = rt.block_on(call("GET", "/topics/ai.rss", &[("accept-encoding", "gzip")]));
        let gz_tag = gz[header::ETAG].to_str().unwrap().to_string();
        let kinds = [
            ("GET", "Accept-Encoding: gzip\r\n".to_string()),
            ("GET", String::new()),
            ("GET", format!("Accept-Encoding: gzip\r\nIf-None-Match: {gz_tag}\r\n")),
            ("HEAD", String::new()),
            // Left to hyper and the router, counted there.
            ("GET", "Cookie: a=b\r\n".to_string()),
        ];
        let (clients, rounds) = (8, 60);
        let received: Vec<Vec<Vec<u8>>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..clients)
                .map(|c| {
                    let kinds = &kinds;
                    s.spawn(move || {
                        // Each client its own order of the kinds, pipelined in batches.
                        let mut raw = String::new();
                        let mut heads = Vec::new();
                        for r in 0..rounds {
                            let (method, extra) = &kinds[(c + r) % kinds.len()];
                            raw.push_str(&format!("{method} /topics/ai.rss HTTP/1.1\r\nHost: a\r\n{extra}\r\n"));
                            heads.push(*method == "HEAD");
                        }
                        raw_answers(addr, raw.as_bytes(), &heads)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut by_status: HashMap<String, u64> = HashMap::new();
        let mut bytes = 0u64;
        for answer in received.iter().flatten() {
            *by_status.entry(String::from_utf8_lossy(&answer[9..12]).into_owned()).or_default() += 1;
            let head_len = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            bytes += (answer.len() - head_len) as u64;
        }
        assert_eq!(by_status.values().sum::<u64>(), (clients * rounds) as u64);
        assert!(by_status["304"] > 0 && by_status["200"] > 0);
        let text = state.metrics.render(&crate::process::sample());
        let value = |line: &str| -> u64 {
            text.lines().find_map(|l| l.strip_prefix(line)?.strip_prefix(' ')).expect(line).parse().unwrap()
        };
        for (status, n) in &by_status {
            assert_eq!(value(&format!("clipfeed_http_requests_total{{route=\"feed\",status=\"{status}\"}}")), *n);
        }
        assert_eq!(value("clipfeed_http_response_bytes_total{route=\"feed\"}"), bytes);
        let counted: u64 = text
            .lines()
            .filter(|l| l.starts_with("clipfeed_http_requests_total{"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum();
        assert_eq!(counted, (clients * rounds) as u64, "nothing else counted");
    }
}
