//! Feed URLs for feed readers and for browsers, over HTTP: with the `Accept` header each real
//! client sends, readers get the feed's bytes (exactly those of a request without `Accept`) and
//! browsers its HTML page, at subscription documents, archive pages and filtered views in every
//! format; private feeds' pages are stored nowhere, send no `Referer` and hold no token.

use std::process::Command;

use crate::support::*;

/// `Accept` of feed readers (where each comes from: `src/http/negotiate.rs`).
const READERS: &[(&str, Option<&str>)] = &[
    ("newsboat, NetNewsWire, curl", Some("*/*")),
    (
        "feedparser",
        Some(
            "application/atom+xml,application/rdf+xml,application/rss+xml,application/x-netcdf,application/xml;q=0.9,text/xml;q=0.2,*/*;q=0.1",
        ),
    ),
    (
        "SimplePie (FreshRSS)",
        Some(
            "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, application/xml;q=0.8, text/xml;q=0.8, text/html;q=0.7, unknown/unknown;q=0.1, application/unknown;q=0.1, */*;q=0.1",
        ),
    ),
    (
        "Miniflux",
        Some(
            "application/xml, application/atom+xml, application/rss+xml, application/rdf+xml, application/feed+json, text/html, */*;q=0.9",
        ),
    ),
    (
        "Thunderbird",
        Some(
            "application/atom+xml,application/rss+xml;q=0.9,application/rdf+xml;q=0.8,application/xml;q=0.7,text/xml;q=0.7,*/*;q=0.1",
        ),
    ),
    ("no Accept at all", None),
];

/// `Accept` of browsers' navigations.
const BROWSERS: &[(&str, &str)] = &[
    (
        "Chromium",
        "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
    ),
    ("Firefox, Safari", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
];

const HARBOUR: &str = "Harbour <Robots> & Piers";
const KELP: &str = "Kelp Farms Store Carbon";
const MEMO: &str = "Internal memo about the budget";

fn site() -> Site {
    let site = Site::new();
    site.write_config("topics:\n  - name: Robotics\n    items_per_feed: 1\n  - name: Internal\n    private: true\n");
    let clip = |title: &str, date: &str, rest: &str| {
        format!("---\ntitle: \"{title}\"\npublishedDateTime: {date}\nexcerpt: About {date}.\n{rest}---\nBody.\n")
    };
    site.put("a.md", clip(HARBOUR, "2026-03-02", "webUrl: https://a.example/h\ntopics: [Robotics]\n"));
    site.put("b.md", clip(KELP, "2026-03-01", "webUrl: https://b.example/k\ntopics: [Robotics, Ocean]\n"));
    site.put("c.md", clip(MEMO, "2026-03-03", "webUrl: https://c.example/m\ntopics: [Internal, Robotics]\n"));
    site
}

fn vary_accept(r: &Reply) -> bool {
    r.header("vary").is_some_and(|v| v.split(',').any(|v| v.trim().eq_ignore_ascii_case("accept")))
}

/// Every value a browser-facing page must carry in its headers.
#[track_caller]
fn assert_page_headers(r: &Reply, what: &str) {
    assert_eq!(r.status, 200, "{what}");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"), "{what}");
    assert!(vary_accept(r), "{what}: Vary {:?}", r.header("vary"));
    let csp = r.header("content-security-policy").unwrap_or_else(|| panic!("{what}: no CSP"));
    assert!(csp.contains("default-src 'none'") && csp.contains("style-src 'sha256-"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("script-src"), "{what}: {csp}");
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{what}");
}

#[test]
fn readers_get_the_feed_and_browsers_its_page() {
    let site = site();
    let d = Daemon::start(&site);
    for path in [
        "feed.rss",
        "feed.atom",
        "feed.json",
        "topics/robotics.atom",
        "topics/robotics/archive/1-0.rss",
        "topics/robotics/archive/1-0.json",
        "topics/robotics.rss?q=kelp",
        "feed.json?limit=1",
    ] {
        let url = d.url(path);
        let reference = get(&url, &[]);
        assert_eq!(reference.status, 200, "{path}");
        assert!(!reference.header("content-type").unwrap().starts_with("text/html"), "{path}");
        for (reader, accept) in READERS {
            let headers: Vec<(&str, &str)> = accept.iter().map(|a| ("Accept", *a)).collect();
            let r = get(&url, &headers);
            assert_eq!(r.status, 200, "{reader} {path}");
            assert_eq!(r.body, reference.body, "{reader} gets other bytes at {path}");
            assert_eq!(r.header("content-type"), reference.header("content-type"), "{reader} {path}");
            assert_eq!(r.header("etag"), reference.header("etag"), "{reader} {path}");
            assert!(vary_accept(&r), "{reader} {path}: Vary {:?}", r.header("vary"));
        }
        let titles: Vec<String> = if path.ends_with("json") || path.contains(".json?") {
            let v: serde_json::Value = serde_json::from_slice(&reference.body).unwrap();
            v["items"].as_array().unwrap().iter().map(|i| i["title"].as_str().unwrap().to_string()).collect()
        } else {
            titles(&feed_rs::parser::parse(&reference.body[..]).unwrap())
        };
        assert!(!titles.is_empty(), "{path}");
        for (browser, accept) in BROWSERS {
            let r = get(&url, &[("Accept", accept)]);
            assert_page_headers(&r, &format!("{browser} {path}"));
            assert_ne!(r.header("etag"), reference.header("etag"), "{path}: the page is its own representation");
            let html = r.text();
            for t in &titles {
                let escaped = t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
                assert!(html.contains(&format!(">{escaped}</a></h2>")), "{browser} {path}: {t:?}:\n{html}");
            }
            assert_eq!(html.matches("<article>").count(), titles.len(), "{path}: the same items");
            assert!(!html.contains(MEMO), "{path}: a private clipping on a public page:\n{html}");
            // Revalidation by the page's own tag.
            let again = get(&url, &[("Accept", accept), ("If-None-Match", r.header("etag").unwrap())]);
            assert_eq!(again.status, 304, "{browser} {path}");
        }
    }
    // A browser gets what anyone gets for what is not a feed: 404, 400.
    let browser = ("Accept", BROWSERS[0].1);
    assert_eq!(get(&d.url("topics/nothing.rss"), &[browser]).status, 404);
    assert_eq!(get(&d.url("topics/robotics/archive/1-9.rss"), &[browser]).status, 404);
    assert_eq!(get(&d.url("feed.rss?limit=0"), &[browser]).status, 400);
}

#[test]
fn private_pages_are_stored_nowhere_and_hold_no_token() {
    let site = site();
    let d = Daemon::start(&site);
    let (status, out, err) =
        run(Command::new(env!("CARGO_BIN_EXE_clipfeed")).arg("token").arg("--config").arg(site.config()).arg("list"));
    assert!(status.success(), "{err}");
    let token = out.lines().find(|l| l.starts_with("topics/internal\t")).expect("a token").split('\t').nth(1).unwrap();
    let token = token.to_string();
    let browser = ("Accept", BROWSERS[0].1);
    poll("the daemon to know the token", || {
        (get(&d.url(&format!("topics/internal.rss?token={token}")), &[]).status == 200).then_some(())
    });
    // Public feeds, filtered any way, hold none of it (filters read what a feed holds, not
    // every clipping that names its topic or site).
    for path in ["feed.rss?q=budget", "feed.json?limit=5", "feed.atom?topic=internal", "topics/robotics.rss?limit=9"] {
        for headers in [vec![], vec![browser]] {
            let r = get(&d.url(path), &headers);
            assert_eq!(r.status, 200, "{path}");
            assert!(!r.text().contains(MEMO), "{path} shows the private clipping:\n{}", r.text());
        }
    }
    // Without the token a browser gets what anyone gets.
    assert_eq!(get(&d.url("topics/internal.rss"), &[browser]).status, 404);
    assert_eq!(get(&d.url("topics/internal.rss?token=nope"), &[browser]).status, 404);
    let bearer = format!("Bearer {token}");
    for (path, headers) in [
        (format!("topics/internal.rss?token={token}"), vec![browser]),
        (format!("topics/internal.atom?q=budget&token={token}"), vec![browser]),
        ("topics/internal.json".to_string(), vec![browser, ("Authorization", bearer.as_str())]),
    ] {
        let r = get(&d.url(&path), &headers);
        assert_page_headers(&r, &path);
        assert_eq!(r.header("cache-control"), Some("private, no-store"), "{path}");
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{path}");
        let html = r.text();
        assert!(html.contains(MEMO), "{path}: {html}");
        assert!(!html.contains(&token), "{path}: the page holds the token:\n{html}");
        assert!(html.contains("<meta name=\"referrer\" content=\"no-referrer\">"), "{path}");
        assert!(html.contains("This feed is private"), "{path}");
        // The feed itself, for a reader, is unchanged: private, revalidated.
        let feed = get(&d.url(&path), &headers[1..]);
        assert_eq!(feed.header("cache-control"), Some("private, no-cache"), "{path}");
    }
}
