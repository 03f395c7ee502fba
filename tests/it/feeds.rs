//! Subscriber features over the real daemon: query filters, RFC 5005 archive paging, RFC 6721
//! tombstones, compression, conditional requests, JSON Feed, per-topic settings.
//!
//! Feeds are read with feed-rs, XML extension elements (`fh:archive`, `at:deleted-entry`,
//! `media:*`) with quick-xml's namespace-aware reader, JSON with serde_json, compressed bodies
//! with flate2 and brotli: never with clipfeed's own code.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, Utc};
use feed_rs::model::Feed;
use serde_json::Value;

use crate::support::*;

/// The `base_url` that `Site::write_config` sets: every absolute URL in our documents starts so.
const BASE: &str = "http://feeds.test/cf/";
const FORMATS: [&str; 3] = ["rss", "atom", "json"];
const ATOM_NS: &str = "http://www.w3.org/2005/Atom";
const HISTORY_NS: &str = "http://purl.org/syndication/history/1.0";
const TOMBSTONE_NS: &str = "http://purl.org/atompub/tombstones/1.0";
const MEDIA_NS: &str = "http://search.yahoo.com/mrss/";
/// `Cache-Control` of archive pages: a week, less than the default tombstone period.
const ARCHIVE_CACHE: &str = "public, max-age=604800";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A clipping file whose `webUrl` (and so its id) comes from `key`, so an edit keeps the id.
/// `more` holds further YAML lines, each ending in a newline.
fn clip(key: &str, title: &str, date: &str, more: &str) -> String {
    format!("---\ntitle: \"{title}\"\npublishedDateTime: {date}\nwebUrl: https://news.example/{key}\n{more}---\n")
}

/// An RFC 3339 time `hours` before now (for `since` durations).
fn hours_ago(hours: i64) -> String {
    (Utc::now() - chrono::Duration::hours(hours)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The daemon's own URL for an absolute URL from one of our documents (they use `base_url`).
#[track_caller]
fn local(d: &Daemon, public: &str) -> String {
    d.url(public.strip_prefix(BASE).unwrap_or_else(|| panic!("{public} does not start with {BASE}")))
}

/// GET with request headers. Unlike `support::get`, repeated response headers are joined with
/// ", " (RSS and Atom responses carry `Vary` twice).
fn fetch(url: &str, headers: &[(&str, &str)]) -> Reply {
    let agent =
        ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(DEADLINE)).build().new_agent();
    let mut req = ureq::http::Request::builder().method("GET").uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut res = agent.run(req.body(()).unwrap()).unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let mut joined: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in res.headers() {
        let v = v.to_str().unwrap_or("").to_string();
        joined.entry(k.as_str().to_ascii_lowercase()).and_modify(|old| *old = format!("{old}, {v}")).or_insert(v);
    }
    Reply { status: res.status().as_u16(), headers: joined, body: res.body_mut().read_to_vec().unwrap() }
}

#[track_caller]
fn parse(url: &str, body: &[u8]) -> Feed {
    feed_rs::parser::parse(body)
        .unwrap_or_else(|e| panic!("feed-rs cannot parse {url}: {e}\n{}", String::from_utf8_lossy(body)))
}

/// Titles of the entries of the document at `path` (a 200 that feed-rs parses).
#[track_caller]
fn titles_at(d: &Daemon, path: &str) -> Vec<String> {
    titles(&feed(&d.url(path)))
}

#[track_caller]
fn json_at(d: &Daemon, path: &str) -> Value {
    let r = get(&d.url(path), &[]);
    assert_eq!(r.status, 200, "GET {path}");
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

/// The href of a feed-level link with this `rel`.
fn link(f: &Feed, rel: &str) -> Option<String> {
    f.links.iter().find(|l| l.rel.as_deref() == Some(rel)).map(|l| l.href.clone())
}

fn ids(f: &Feed) -> Vec<String> {
    f.entries.iter().map(|e| e.id.clone()).collect()
}

/// An XML element as a namespace-aware parser sees it.
#[derive(Debug, Clone)]
struct El {
    ns: String,
    name: String,
    attrs: BTreeMap<String, String>,
}

/// Every element of an XML document, in document order, with its namespace and attributes.
#[track_caller]
fn elements(xml: &[u8]) -> Vec<El> {
    use quick_xml::events::Event;
    use quick_xml::name::ResolveResult;
    let text = std::str::from_utf8(xml).expect("UTF-8 XML");
    let mut reader = quick_xml::NsReader::from_str(text);
    let mut out = Vec::new();
    loop {
        let (ns, event) = reader.read_resolved_event().unwrap_or_else(|e| panic!("XML error: {e}\n{text}"));
        let ns = match ns {
            ResolveResult::Bound(n) => String::from_utf8_lossy(n.as_ref()).into_owned(),
            _ => String::new(),
        };
        match event {
            Event::Start(e) | Event::Empty(e) => {
                let attrs = e
                    .attributes()
                    .map(|a| {
                        let a = a.expect("attribute");
                        let key = String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned();
                        let value = a.decoded_and_normalized_value(quick_xml::XmlVersion::Implicit1_0, e.decoder());
                        (key, value.expect("attribute value").into_owned())
                    })
                    .collect();
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                out.push(El { ns, name, attrs });
            }
            Event::Eof => return out,
            _ => {}
        }
    }
}

/// RFC 6721 tombstones of an Atom document as (ref, when), checking they come before any entry.
#[track_caller]
fn tombstones(atom: &[u8]) -> Vec<(String, String)> {
    let els = elements(atom);
    let first_entry = els.iter().position(|e| e.ns == ATOM_NS && e.name == "entry").unwrap_or(els.len());
    let mut out = Vec::new();
    for (i, e) in els.iter().enumerate() {
        if e.ns == TOMBSTONE_NS && e.name == "deleted-entry" {
            assert!(i < first_entry, "at:deleted-entry after an entry");
            out.push((e.attrs["ref"].clone(), e.attrs["when"].clone()));
        }
    }
    out
}

/// Whether an XML document carries the RFC 5005 `fh:archive` mark.
fn has_archive_mark(xml: &[u8]) -> bool {
    elements(xml).iter().any(|e| e.ns == HISTORY_NS && e.name == "archive")
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).expect("valid gzip");
    out
}

fn unbrotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::BrotliDecompress(&mut &bytes[..], &mut out).expect("valid brotli");
    out
}

/// Asserts a 400 whose plain-text message names `param` in quotes.
#[track_caller]
fn assert_bad_param(d: &Daemon, path_and_query: &str, param: &str) {
    let r = get(&d.url(path_and_query), &[]);
    assert_eq!(r.status, 400, "{path_and_query}: {}", r.text());
    assert!(r.header("content-type").unwrap_or("").starts_with("text/plain"), "{path_and_query}");
    let msg = r.text();
    assert!(msg.contains(&format!("'{param}'")), "{path_and_query}: message does not name '{param}': {msg}");
}

/// One document met while walking a feed's history.
#[derive(Debug)]
struct Page {
    /// Its public URL.
    url: String,
    /// (id, title) of its entries, in document order.
    entries: Vec<(String, String)>,
}

/// Walks a feed's history from its subscription document back through `prev-archive` links
/// (JSON Feed: `next_url`) and returns every document, newest first. Checks each archive page's
/// links, `fh:archive` mark and `Cache-Control` on the way.
#[track_caller]
fn walk(d: &Daemon, stem: &str, ext: &str) -> Vec<Page> {
    let current = format!("{BASE}{stem}.{ext}");
    let mut pages: Vec<Page> = Vec::new();
    let mut url = current.clone();
    loop {
        assert!(pages.len() < 100, "{current}: runaway archive chain");
        assert!(pages.iter().all(|p| p.url != url), "{current}: {url} visited twice");
        let r = get(&local(d, &url), &[]);
        assert_eq!(r.status, 200, "GET {url}");
        let f = parse(&url, &r.body);
        let is_archive = !pages.is_empty();
        // The newest archive page links to the full page after it, the oldest page of the
        // subscription document (a link that never has to change); older pages to the page met
        // before them in the walk.
        let newer = match pages.last().filter(|p| p.url != current) {
            Some(p) => Some(p.url.clone()),
            None => url.rsplit_once('-').and_then(|(head, tail)| {
                let (n, ext) = tail.split_once('.')?;
                Some(format!("{head}-{}.{ext}", n.parse::<u64>().ok()? + 1))
            }),
        };
        let older = if ext == "json" {
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(v["feed_url"], url.as_str(), "feed_url of {url}");
            v["next_url"].as_str().map(String::from)
        } else {
            let self_rel = link(&f, "self");
            assert_eq!(self_rel.as_deref(), Some(url.as_str()), "self link of {url}");
            assert_eq!(has_archive_mark(&r.body), is_archive, "fh:archive on {url}");
            if is_archive {
                assert_eq!(link(&f, "current"), Some(current.clone()), "current link of {url}");
                assert_eq!(link(&f, "next-archive"), newer, "next-archive of {url}");
            }
            link(&f, "prev-archive")
        };
        if is_archive {
            assert_eq!(r.header("cache-control"), Some(ARCHIVE_CACHE), "{url}");
        }
        let entries = f.entries.iter().map(|e| (e.id.clone(), e.title.as_ref().unwrap().content.clone())).collect();
        pages.push(Page { url, entries });
        match older {
            Some(next) => url = next,
            None => break,
        }
    }
    // Archive pages are numbered from the oldest (0) up to the newest.
    let archives = pages.len() - 1;
    // Their names carry the page size: {stem}/archive/{size}-{index}.{ext}.
    for (i, p) in pages.iter().skip(1).enumerate() {
        let name = p.url.strip_prefix(&format!("{BASE}{stem}/archive/")).unwrap_or_else(|| panic!("{}", p.url));
        let index = name.strip_suffix(&format!(".{ext}")).and_then(|n| n.split_once('-')).map(|(_, i)| i);
        assert_eq!(index, Some((archives - 1 - i).to_string().as_str()), "{}", p.url);
    }
    pages
}

/// The (id, title) of every entry met in a walk, newest document first.
fn walked(pages: &[Page]) -> Vec<(String, String)> {
    pages.iter().flat_map(|p| p.entries.iter().cloned()).collect()
}

/// The whole history of a feed as a filtered view (newest first): the reference for a walk.
fn history(d: &Daemon, stem: &str, ext: &str) -> Vec<(String, String)> {
    let f = feed(&d.url(&format!("{stem}.{ext}?limit=500")));
    f.entries.iter().map(|e| (e.id.clone(), e.title.as_ref().unwrap().content.clone())).collect()
}

// ---------------------------------------------------------------------------------------------
// Query filters
// ---------------------------------------------------------------------------------------------

/// Nine clippings: five from March 2024, four dated relative to now (for `since` durations).
fn put_filter_corpus(site: &Site) {
    let p = |name: &str| format!("provider: {{name: {name}, domain: {name}.example}}\n");
    let items = [
        (
            "c1",
            "Robot arm folds laundry",
            "Machine learning meets household chores",
            "2024-03-01T10:00:00Z".to_string(),
            Some(80),
            "alpha",
            "[Robotics, AI]",
        ),
        (
            "c2",
            "Robotics startups raise money",
            "Crypto investors pile in",
            "2024-03-02T10:00:00Z".into(),
            Some(40),
            "beta",
            "[Robotics, Finance]",
        ),
        (
            "c3",
            "Deep learning for robots",
            "A ROBOT that learns machine skills",
            "2024-03-03T10:00:00Z".into(),
            None,
            "alpha",
            "[AI]",
        ),
        ("c4", "Crypto robot scam exposed", "Web3 fraud", "2024-03-04T10:00:00Z".into(), Some(55), "beta", "[Finance]"),
        ("c5", "Quiet news day", "Nothing about machines", "2024-03-05T10:00:00Z".into(), Some(90), "gamma", "[Misc]"),
        ("c6", "Robot dog patrols the park", "City trial", hours_ago(1), Some(70), "gamma", "[Robotics]"),
        ("c7", "Weekly roundup", "Machine learning and more", hours_ago(3 * 24), None, "alpha", "[AI]"),
        ("c8", "Robotic lawn mowers", "Garden tech", hours_ago(10 * 24), Some(30), "beta", "[Robotics]"),
        ("c9", "Learning machines history", "From Turing on", hours_ago(20 * 24), Some(60), "gamma", "[AI]"),
    ];
    for (key, title, excerpt, date, quality, provider, topics) in items {
        let quality = quality.map(|q| format!("quality: {q}\n")).unwrap_or_default();
        let more = format!("excerpt: \"{excerpt}\"\n{quality}{}topics: {topics}\n", p(provider));
        site.put(&format!("{key}.md"), clip(key, title, &date, &more));
    }
}

const C1: &str = "Robot arm folds laundry";
const C2: &str = "Robotics startups raise money";
const C3: &str = "Deep learning for robots";
const C4: &str = "Crypto robot scam exposed";
const C5: &str = "Quiet news day";
const C6: &str = "Robot dog patrols the park";
const C7: &str = "Weekly roundup";
const C8: &str = "Robotic lawn mowers";
const C9: &str = "Learning machines history";

#[test]
fn query_filters_narrow_the_whole_history() {
    let site = Site::new();
    site.write_config("items_per_feed: 4\n");
    put_filter_corpus(&site);
    let d = Daemon::start(&site);

    // The subscription document holds the newest slots only (pages of 2: 9 slots give 3 here).
    assert_eq!(titles_at(&d, "feed.atom"), [C6, C7, C8]);

    let cases: &[(&str, &str, &[&str])] = &[
        ("feed", "limit=500", &[C6, C7, C8, C9, C5, C4, C3, C2, C1]),
        ("feed", "limit=3", &[C6, C7, C8]),
        // Without `limit`, a view holds `items_per_feed` items; items without a quality fail.
        ("feed", "min_quality=0", &[C6, C8, C9, C5]),
        ("feed", "min_quality=55&limit=500", &[C6, C9, C5, C4, C1]),
        ("feed", "since=30m", &[]),
        ("feed", "since=12h", &[C6]),
        ("feed", "since=7d", &[C6, C7]),
        ("feed", "since=2w", &[C6, C7, C8]),
        ("feed", "since=2024-03-03T10:00:00Z&limit=500", &[C6, C7, C8, C9, C5, C4, C3]),
        ("feed", "since=2024-03-03T10:00:01Z&limit=500", &[C6, C7, C8, C9, C5, C4]),
        ("feed", "since=2024-03-03T12:00:00%2B02:00&limit=500", &[C6, C7, C8, C9, C5, C4, C3]),
        ("feed", "since=2024-03-04&limit=500", &[C6, C7, C8, C9, C5, C4]),
        // Whole words, any case, in the title or the excerpt: "Robotics" is not "robot".
        ("feed", "q=robot&limit=500", &[C6, C4, C3, C1]),
        ("feed", "q=ROBOT&limit=500", &[C6, C4, C3, C1]),
        ("feed", "q=robot&q=dog", &[C6]),
        // Spaces separate words (each anywhere), commas separate phrases.
        ("feed", "q=machine+learning&limit=500", &[C7, C3, C1]),
        ("feed", "q=machine+learning,robot&limit=500", &[C1]),
        ("feed", "exclude=crypto&limit=500", &[C6, C7, C8, C9, C5, C3, C1]),
        ("feed", "q=robot&exclude=crypto,web3&limit=500", &[C6, C3, C1]),
        ("feed", "provider=alpha.example&limit=500", &[C7, C3, C1]),
        ("feed", "provider=ALPHA.Example&limit=500", &[C7, C3, C1]),
        ("feed", "topic=robotics&limit=500", &[C6, C8, C2, C1]),
        ("feed", "q=robot&min_quality=60&since=2024-03-01&limit=1", &[C6]),
        ("topics/ai", "limit=500", &[C7, C9, C3, C1]),
        ("topics/ai", "provider=gamma.example", &[C9]),
        ("topics/ai", "provider=alpha.example&min_quality=1", &[C1]),
        ("topics/robotics", "exclude=crypto&limit=500", &[C6, C8, C1]),
        ("providers/beta.example", "topic=finance", &[C4, C2]),
        ("providers/beta.example", "q=crypto", &[C4, C2]),
        ("providers/gamma.example", "since=7d", &[C6]),
    ];
    for (stem, query, expect) in cases {
        for ext in FORMATS {
            let path = format!("{stem}.{ext}?{query}");
            let r = get(&d.url(&path), &[]);
            assert_eq!(r.status, 200, "{path}: {}", r.text());
            assert!(r.header("etag").is_some(), "{path}: ETag");
            // A window relative to now (since=7d) moves with the clock, so it has no date.
            let relative = query.contains("since=")
                && query.split('&').any(|kv| kv.starts_with("since=") && kv.ends_with(['m', 'h', 'd', 'w']));
            assert_eq!(r.header("last-modified").is_some(), !relative, "{path}: Last-Modified");
            assert_eq!(titles(&parse(&path, &r.body)), *expect, "{path}");
        }
    }

    // The view's self link carries the canonical query; JSON names it as feed_url.
    let f = feed(&d.url("feed.atom?q=ROBOT&limit=5"));
    assert_eq!(link(&f, "self").as_deref(), Some("http://feeds.test/cf/feed.atom?limit=5&q=robot"));
    assert_eq!(json_at(&d, "feed.json?q=ROBOT&limit=5")["feed_url"], "http://feeds.test/cf/feed.json?limit=5&q=robot");

    // Views are dated by the feed's history, not by the request, and keep their ETag.
    for stem in ["feed", "topics/ai"] {
        let plain = get(&d.url(&format!("{stem}.atom")), &[]);
        let view = get(&d.url(&format!("{stem}.atom?limit=500")), &[]);
        assert_eq!(view.header("last-modified"), plain.header("last-modified"), "{stem}");
        let again = get(&d.url(&format!("{stem}.atom?limit=500")), &[]);
        assert_eq!(again.header("etag"), view.header("etag"), "{stem}");
        assert_eq!(again.body, view.body, "{stem}");
    }

    // Editing an archived clipping changes the views over the whole history at once.
    let url = d.url("feed.rss?q=laundry");
    let before = get(&url, &[]);
    assert_eq!(titles(&parse(&url, &before.body)), [C1]);
    let c1 = std::fs::read_to_string(site.root().join("c1.md")).unwrap();
    site.put("c1.md", c1.replace(C1, "Robot arm folds laundry faster"));
    let after = poll("the edit to reach the filtered view", || {
        let r = get(&url, &[]);
        (titles(&parse(&url, &r.body)) == ["Robot arm folds laundry faster"]).then_some(r)
    });
    assert_ne!(after.header("etag"), before.header("etag"));
    let lm = |r: &Reply| httpdate::parse_http_date(r.header("last-modified").unwrap()).unwrap();
    assert!(lm(&after) >= lm(&before));
    assert_eq!(after.header("last-modified"), get(&d.url("feed.rss"), &[]).header("last-modified"));
}

#[test]
fn bad_query_parameters_get_400_naming_them() {
    let site = Site::new();
    site.put(
        "a.md",
        clip("a", "Only clipping", "2024-03-01T10:00:00Z", "provider: {name: X, domain: x.example}\ntopics: [Tee]\n"),
    );
    let d = Daemon::start(&site);
    let cases = [
        ("feed", "limit=0", "limit"),
        ("feed", "limit=501", "limit"),
        ("feed", "limit=ten", "limit"),
        ("feed", "limit=-1", "limit"),
        ("feed", "limit=5&limit=6", "limit"),
        ("feed", "min_quality=high", "min_quality"),
        ("feed", "min_quality=1&min_quality=2", "min_quality"),
        ("feed", "since=yesterday", "since"),
        ("feed", "since=7y", "since"),
        ("feed", "since=2024-13-01", "since"),
        ("feed", "since=1d&since=2d", "since"),
        ("feed", "q=%21%21%21", "q"),
        ("feed", "exclude=---", "exclude"),
        ("feed", "provider=a..b", "provider"),
        ("feed", "provider=a.example&provider=b.example", "provider"),
        ("feed", "topic=Not%20A%20Slug", "topic"),
        ("feed", "colour=red", "colour"),
        ("feed", "LIMIT=5", "LIMIT"),
        ("topics/tee", "topic=tee", "topic"),
        ("topics/tee", "limit=0&q=only", "limit"),
        ("providers/x.example", "provider=x.example", "provider"),
        ("providers/x.example", "since=soon", "since"),
    ];
    for (stem, query, param) in cases {
        for ext in FORMATS {
            assert_bad_param(&d, &format!("{stem}.{ext}?{query}"), param);
        }
    }
    // The limits themselves are fine; an empty query or empty `q` is the subscription document.
    for ext in FORMATS {
        for query in ["limit=1", "limit=500", "q=only&q=clipping&exclude="] {
            let path = format!("feed.{ext}?{query}");
            assert_eq!(titles_at(&d, &path), ["Only clipping"], "{path}");
        }
        let plain = get(&d.url(&format!("feed.{ext}")), &[]);
        for query in ["", "q=", "q=&exclude="] {
            let r = get(&d.url(&format!("feed.{ext}?{query}")), &[]);
            assert_eq!(r.status, 200);
            assert_eq!(r.header("etag"), plain.header("etag"), "feed.{ext}?{query}");
            assert_eq!(r.body, plain.body, "feed.{ext}?{query}");
        }
    }
    // A feed that does not exist is a 404 whatever the query.
    assert_eq!(get(&d.url("topics/nope.rss?limit=0"), &[]).status, 404);
}

// ---------------------------------------------------------------------------------------------
// Archives (RFC 5005)
// ---------------------------------------------------------------------------------------------

/// Fifteen clippings in topic "Paging", dated one day apart; odd ones from pager.example.
fn put_paging_corpus(site: &Site) {
    for n in 1..=15 {
        let domain = if n % 2 == 1 { "pager.example" } else { "other.example" };
        let more = format!(
            "excerpt: Item number {n} of the paging test\nprovider: {{name: Pager, domain: {domain}}}\ntopics: [Paging]\n"
        );
        site.put(
            &format!("p{n:02}.md"),
            clip(&format!("p{n:02}"), &format!("Page item {n:02}"), &format!("2024-01-{n:02}T12:00:00Z"), &more),
        );
    }
}

#[test]
fn archive_pages_hold_every_item_exactly_once() {
    let site = Site::new();
    // items_per_feed 4: archive pages of 2 slots; the subscription document holds 2 or 3 items.
    site.write_config("items_per_feed: 4\n");
    put_paging_corpus(&site);
    let d = Daemon::start(&site);

    let mut ids_by_feed: BTreeMap<&str, Vec<Vec<String>>> = BTreeMap::new();
    for (stem, total) in [("feed", 15), ("topics/paging", 15), ("providers/pager.example", 8)] {
        for ext in FORMATS {
            let pages = walk(&d, stem, ext);
            let what = format!("{stem}.{ext}");
            assert!((2..=3).contains(&pages[0].entries.len()), "{what}: subscription holds {}", pages[0].entries.len());
            for p in &pages[1..] {
                assert_eq!(p.entries.len(), 2, "{what}: full archive page {}", p.url);
            }
            let all = walked(&pages);
            let unique: BTreeSet<&String> = all.iter().map(|(id, _)| id).collect();
            assert_eq!(unique.len(), all.len(), "{what}: an item appears twice: {all:?}");
            assert_eq!(all.len(), total, "{what}: {all:?}");
            // Clippings found at start-up fill the log oldest first, so the walk is newest first.
            assert_eq!(all, history(&d, stem, ext), "{what}: walk and whole history differ");
            ids_by_feed.entry(stem).or_default().push(all.into_iter().map(|(id, _)| id).collect());
        }
    }
    for (stem, per_format) in &ids_by_feed {
        assert!(per_format.windows(2).all(|w| w[0] == w[1]), "{stem}: RSS, Atom and JSON ids differ");
    }

    // Archive URLs: past the end, malformed, or with a query.
    let archives = walk(&d, "feed", "rss").len() - 1;
    assert_eq!(archives, 6);
    assert_eq!(get(&d.url(&format!("feed/archive/2-{}.rss", archives - 1)), &[]).status, 200);
    for path in [
        // Every full page of the log can be fetched (the one after the newest archive page is
        // the oldest page of the subscription document); the page after the last full one cannot.
        format!("feed/archive/2-{}.rss", archives + 1),
        "feed/archive/0.rss".into(),
        "feed/archive/2-00.rss".into(),
        "feed/archive/02-0.rss".into(),
        "feed/archive/2--1.atom".into(),
        "feed/archive/2-0.xml".into(),
        "feed/archive/0-0.rss".into(),
        "feed/archive/3-0.rss".into(),
        "topics/paging/archive/2-99.json".into(),
        "topics/nope/archive/2-0.rss".into(),
        "providers/pager.example/archive/2-4.atom".into(),
    ] {
        assert_eq!(get(&d.url(&path), &[]).status, 404, "{path}");
    }
    for path in
        ["feed/archive/2-0.rss?limit=1", "topics/paging/archive/2-0.atom?q=item", "feed/archive/2-1.json?since=7d"]
    {
        let r = get(&d.url(path), &[]);
        assert_eq!(r.status, 400, "{path}");
        assert!(r.header("content-type").unwrap_or("").starts_with("text/plain"), "{path}");
    }

    // An edited clipping gets a new slot at the head: still exactly once, in its new version.
    let p02 = std::fs::read_to_string(site.root().join("p02.md")).unwrap();
    site.put("p02.md", p02.replace("Page item 02", "Page item 02, revised"));
    poll("the revised clipping at the head of the feed", || {
        titles_at(&d, "feed.atom").contains(&"Page item 02, revised".to_string()).then_some(())
    });
    for ext in FORMATS {
        let pages = walk(&d, "feed", ext);
        let all = walked(&pages);
        let names: Vec<&str> = all.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(all.len(), 15, "feed.{ext}: {names:?}");
        assert_eq!(all.iter().map(|(id, _)| id).collect::<BTreeSet<_>>().len(), 15, "feed.{ext}: {names:?}");
        assert!(pages[0].entries.iter().any(|(_, t)| t == "Page item 02, revised"), "feed.{ext}: {names:?}");
        assert!(!names.contains(&"Page item 02"), "feed.{ext}: the old version is gone: {names:?}");
        assert_eq!(pages.last().unwrap().entries.len(), 1, "feed.{ext}: page 0 lost the edited item");
    }
}

// ---------------------------------------------------------------------------------------------
// Tombstones (RFC 6721)
// ---------------------------------------------------------------------------------------------

#[test]
fn deleted_clippings_leave_tombstones_in_atom_feeds() {
    let site = Site::new();
    let started = Utc::now() - chrono::Duration::seconds(1);
    let more = "provider: {name: Stones, domain: stones.example}\ntopics: [Gone Soon, Stays]\n";
    for (key, title, day) in
        [("a", "Alpha stone", 1), ("b", "Beta stone", 2), ("c", "Gamma stone", 3), ("e", "Delta stone", 4)]
    {
        site.put(&format!("{key}.md"), clip(key, title, &format!("2024-02-0{day}T00:00:00Z"), more));
    }
    let d = Daemon::start(&site);
    let feeds = ["feed.atom", "topics/gone-soon.atom", "topics/stays.atom", "providers/stones.example.atom"];
    let id_of = |title: &str| entry_titled(&feed(&d.url("feed.atom")), title).unwrap().id.clone();
    let (alpha, beta, gamma) = (id_of("Alpha stone"), id_of("Beta stone"), id_of("Gamma stone"));
    for path in feeds {
        assert!(tombstones(&get(&d.url(path), &[]).body).is_empty(), "{path}: no tombstones yet");
    }

    // Deleting clippings: a tombstone for each in every Atom feed it was in.
    std::fs::remove_file(site.root().join("a.md")).unwrap();
    std::fs::remove_file(site.root().join("b.md")).unwrap();
    poll("both deletions in every feed", || {
        feeds.iter().all(|p| tombstones(&get(&d.url(p), &[]).body).len() == 2).then_some(())
    });
    for path in feeds {
        let r = get(&d.url(path), &[]);
        let f = parse(path, &r.body);
        assert_eq!(titles(&f).len(), 2, "{path}");
        let stones = tombstones(&r.body);
        let refs: BTreeSet<&str> = stones.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(refs, BTreeSet::from([alpha.as_str(), beta.as_str()]), "{path}: refs are the entries' ids");
        for (_, when) in &stones {
            let when = DateTime::parse_from_rfc3339(when).unwrap_or_else(|e| panic!("{path}: when={when}: {e}"));
            assert!(started <= when && when <= Utc::now() + chrono::Duration::seconds(1), "{path}: when={when}");
        }
    }
    // RSS and JSON Feed have no tombstones; the entries are just gone.
    for path in ["feed.rss", "feed.json"] {
        let f = feed(&d.url(path));
        assert!(!ids(&f).contains(&alpha) && !ids(&f).contains(&beta), "{path}");
    }

    // Leaving a topic tombstones the clipping in that topic only.
    site.put(
        "c.md",
        clip(
            "c",
            "Gamma stone",
            "2024-02-03T00:00:00Z",
            "provider: {name: Stones, domain: stones.example}\ntopics: [Stays]\n",
        ),
    );
    poll("Gamma to leave Gone Soon", || {
        tombstones(&get(&d.url("topics/gone-soon.atom"), &[]).body).iter().any(|(r, _)| *r == gamma).then_some(())
    });
    for path in ["feed.atom", "topics/stays.atom", "providers/stones.example.atom"] {
        let r = get(&d.url(path), &[]);
        assert!(tombstones(&r.body).iter().all(|(r, _)| *r != gamma), "{path}: Gamma did not leave it");
        assert!(ids(&parse(path, &r.body)).contains(&gamma), "{path}");
    }

    // Re-adding a clipping brings it back under the same id and lifts its tombstones.
    site.put("a.md", clip("a", "Alpha stone", "2024-02-01T00:00:00Z", more));
    poll("Alpha to come back", || ids(&feed(&d.url("topics/gone-soon.atom"))).contains(&alpha).then_some(()));
    for path in feeds {
        let r = get(&d.url(path), &[]);
        let refs: Vec<String> = tombstones(&r.body).into_iter().map(|(r, _)| r).collect();
        assert!(!refs.contains(&alpha), "{path}: Alpha is back but still tombstoned");
        assert!(refs.contains(&beta), "{path}: Beta is still deleted");
        assert!(ids(&parse(path, &r.body)).contains(&alpha), "{path}");
    }

    // Tombstones survive a restart (tombstone_days defaults to 30)...
    d.stop();
    let d = Daemon::start(&site);
    let mut newest = 0;
    for path in feeds {
        let stones = tombstones(&get(&d.url(path), &[]).body);
        assert!(stones.iter().any(|(r, _)| *r == beta), "{path}: Beta's tombstone did not survive a restart");
        for (_, when) in stones {
            newest = newest.max(DateTime::parse_from_rfc3339(&when).unwrap().timestamp());
        }
    }
    d.stop();
    // ...and go once older than tombstone_days.
    site.write_config("tombstone_days: 0\n");
    poll("the clock to pass the tombstones' second", || (Utc::now().timestamp() > newest).then_some(()));
    let d = Daemon::start(&site);
    for path in feeds {
        let r = get(&d.url(path), &[]);
        assert_eq!(tombstones(&r.body), [], "{path}: tombstones older than tombstone_days stay");
        assert!(ids(&parse(path, &r.body)).contains(&alpha), "{path}");
    }
}

// ---------------------------------------------------------------------------------------------
// Compression and conditional requests
// ---------------------------------------------------------------------------------------------

#[test]
fn compression_is_negotiated_per_request() {
    let site = Site::new();
    site.write_config("items_per_feed: 4\n");
    for n in 1..=6 {
        let more = format!(
            "excerpt: \"A long enough excerpt so that every document is worth compressing, number {n}\"\nprovider: {{name: Zip, domain: zip.example}}\ntopics: [Zip]\n"
        );
        site.put(
            &format!("z{n}.md"),
            clip(&format!("z{n}"), &format!("Zip item {n}"), &format!("2024-04-0{n}T00:00:00Z"), &more),
        );
    }
    let d = Daemon::start(&site);
    let cases = [
        ("gzip", Some("gzip")),
        ("br", Some("br")),
        ("gzip, deflate, br", Some("br")),
        ("br;q=0.5, gzip;q=0.8", Some("gzip")),
        ("gzip;q=1.0, br;q=0.9", Some("gzip")),
        ("GZIP", Some("gzip")),
        ("*", Some("br")),
        ("br;q=0, *", Some("gzip")),
        ("br;q=0, gzip;q=0", None),
        ("*;q=0", None),
        ("identity", None),
        ("deflate", None),
    ];
    for path in
        ["feed.rss", "topics/zip.atom", "providers/zip.example.json", "feed.json?limit=10", "feed/archive/2-0.atom"]
    {
        let plain = fetch(&d.url(path), &[]);
        assert_eq!(plain.status, 200, "{path}");
        assert!(plain.body.len() >= 512, "{path}: too small to be compressed ({} bytes)", plain.body.len());
        assert_eq!(plain.header("content-encoding"), None, "{path}");
        let plain_tag = plain.header("etag").expect("ETag").to_string();
        let vary = |r: &Reply| {
            r.header("vary").unwrap_or("").split(',').any(|v| v.trim().eq_ignore_ascii_case("accept-encoding"))
        };
        assert!(vary(&plain), "{path}: Vary {:?}", plain.header("vary"));
        for (accept, coding) in cases {
            let what = format!("{path} with Accept-Encoding: {accept}");
            let r = fetch(&d.url(path), &[("Accept-Encoding", accept)]);
            assert_eq!(r.status, 200, "{what}");
            assert_eq!(r.header("content-encoding"), coding, "{what}");
            assert!(vary(&r), "{what}: Vary {:?}", r.header("vary"));
            assert_eq!(r.header("content-type"), plain.header("content-type"), "{what}");
            let tag = r.header("etag").expect("ETag").to_string();
            let Some(coding) = coding else {
                assert_eq!(r.body, plain.body, "{what}");
                assert_eq!(tag, plain_tag, "{what}");
                continue;
            };
            let body = if coding == "gzip" { gunzip(&r.body) } else { unbrotli(&r.body) };
            assert_eq!(body, plain.body, "{what}: decompressed bytes differ");
            assert!(r.body.len() < plain.body.len(), "{what}");
            assert_eq!(tag, format!("{}-{coding}\"", plain_tag.trim_end_matches('"')), "{what}");
            // Each coding's own tag revalidates.
            let r304 = fetch(&d.url(path), &[("Accept-Encoding", accept), ("If-None-Match", &tag)]);
            assert_eq!(r304.status, 304, "{what}, If-None-Match: {tag}");
            assert!(r304.body.is_empty());
            assert_eq!(r304.header("etag"), Some(tag.as_str()), "{what}");
            assert!(vary(&r304), "{what}: 304 Vary");
        }
        let r304 = fetch(&d.url(path), &[("If-None-Match", &plain_tag)]);
        assert_eq!(r304.status, 304, "{path}");
        assert_eq!(r304.header("etag"), Some(plain_tag.as_str()));
    }
}

#[test]
fn conditional_requests_answer_304_for_both_validators() {
    let site = Site::new();
    site.write_config("items_per_feed: 4\n");
    for n in 1..=7 {
        let more = "provider: {name: Cond, domain: cond.example}\ntopics: [Cond]\n";
        site.put(
            &format!("k{n}.md"),
            clip(&format!("k{n}"), &format!("Conditional item {n}"), &format!("2024-05-0{n}T00:00:00Z"), more),
        );
    }
    let d = Daemon::start(&site);
    let earlier = |lm: &str| {
        let t = httpdate::parse_http_date(lm).unwrap() - Duration::from_secs(1);
        httpdate::fmt_http_date(t)
    };
    for path in [
        "topics/cond.rss",
        "topics/cond.atom",
        "topics/cond.json",
        "providers/cond.example.atom",
        "topics/cond.atom?limit=3",
        "providers/cond.example.json?q=item&since=2024-01-01",
        "topics/cond/archive/2-0.atom",
        "feed/archive/2-1.rss",
        "providers/cond.example/archive/2-0.json",
    ] {
        let url = d.url(path);
        let r = get(&url, &[]);
        assert_eq!(r.status, 200, "{path}");
        let etag = r.header("etag").expect("ETag").to_string();
        let lm = r.header("last-modified").expect("Last-Modified").to_string();
        let weak = format!("W/{etag}");
        let list = format!("\"nope\", {etag}");
        let early = earlier(&lm);
        let cases: [(&[(&str, &str)], u16); 10] = [
            (&[("If-None-Match", &etag)], 304),
            (&[("If-None-Match", &weak)], 304),
            (&[("If-None-Match", &list)], 304),
            (&[("If-None-Match", "*")], 304),
            (&[("If-None-Match", "\"nope\"")], 200),
            (&[("If-Modified-Since", &lm)], 304),
            (&[("If-Modified-Since", &early)], 200),
            (&[("If-Modified-Since", "not a date")], 200),
            // If-None-Match decides when both are present.
            (&[("If-None-Match", "\"nope\""), ("If-Modified-Since", &lm)], 200),
            (&[("If-None-Match", &etag), ("If-Modified-Since", &early)], 304),
        ];
        for (headers, status) in cases {
            let c = get(&url, headers);
            assert_eq!(c.status, status, "{path} with {headers:?}");
            if status == 304 {
                assert!(c.body.is_empty(), "{path}: 304 with a body");
                assert_eq!(c.header("etag"), Some(etag.as_str()), "{path}: 304 ETag");
                assert_eq!(c.header("last-modified"), Some(lm.as_str()), "{path}: 304 Last-Modified");
                assert_eq!(c.header("cache-control"), r.header("cache-control"), "{path}: 304 Cache-Control");
            } else {
                assert_eq!(c.body, r.body, "{path} with {headers:?}");
            }
        }
    }
    // The all-clippings feed too (by entity tag).
    let r = get(&d.url("feed.atom"), &[]);
    let etag = r.header("etag").unwrap();
    assert_eq!(get(&d.url("feed.atom"), &[("If-None-Match", etag)]).status, 304);
    // Archive pages are cacheable forever, subscription documents and views for max-age.
    assert_eq!(get(&d.url("topics/cond/archive/2-0.rss"), &[]).header("cache-control"), Some(ARCHIVE_CACHE));
    assert_eq!(get(&d.url("topics/cond.rss?limit=2"), &[]).header("cache-control"), Some("public, max-age=60"));
}

// ---------------------------------------------------------------------------------------------
// JSON Feed
// ---------------------------------------------------------------------------------------------

#[test]
fn json_feed_items_carry_every_field() {
    let site = Site::new();
    site.write_config("items_per_feed: 4\n");
    // Two old fillers end up on archive page 0; the three under test are in the subscription.
    for n in 1..=2 {
        site.put(
            &format!("old{n}.md"),
            clip(
                &format!("old{n}"),
                &format!("Old filler {n}"),
                &format!("2023-01-0{n}T00:00:00Z"),
                "topics: [Feeds]\n",
            ),
        );
    }
    site.put(
        "j1.md",
        "---\ntitle: \"JSON with a body\"\nexcerpt: \"The excerpt of one\"\npublishedDateTime: 2024-06-01T08:30:00+02:00\nwebUrl: https://News.Example/j1#frag\nprovider: {name: Json Daily, domain: json.example}\ntopics: [Feeds, Formats]\nimages:\n  - url: https://img.example/j1.png\n    width: 800\n    height: 600\n---\nSome **bold** text.\n",
    );
    site.put(
        "j2.md",
        clip(
            "j2",
            "JSON with an excerpt only",
            "2024-06-02T00:00:00Z",
            "excerpt: \"Only an excerpt\"\ntopics: [Feeds]\n",
        ),
    );
    site.put("j3.md", "---\ntitle: \"JSON without a URL\"\npublishedDateTime: 2024-06-03T00:00:00Z\n---\n");
    let d = Daemon::start(&site);

    let r = get(&d.url("feed.json"), &[]);
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("application/feed+json"), "{:?}", r.header("content-type"));
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["version"], "https://jsonfeed.org/version/1.1");
    assert_eq!(v["title"], "Test Clippings");
    assert_eq!(v["home_page_url"], BASE);
    assert_eq!(v["feed_url"], format!("{BASE}feed.json"));
    assert_eq!(v["next_url"], format!("{BASE}feed/archive/2-0.json"));
    let items = v["items"].as_array().unwrap();
    let item_titles: Vec<&str> = items.iter().map(|i| i["title"].as_str().unwrap()).collect();
    assert_eq!(item_titles, ["JSON without a URL", "JSON with an excerpt only", "JSON with a body"]);

    // Ids are the Atom ids; feed-rs reads the same entries.
    let atom = feed(&d.url("feed.atom"));
    let by_title = |t: &str| entry_titled(&atom, t).unwrap().id.clone();
    for item in items {
        assert_eq!(item["id"], by_title(item["title"].as_str().unwrap()).as_str());
        assert!(item["id"].as_str().unwrap().starts_with("urn:uuid:"));
        let uuid = &item["id"].as_str().unwrap()["urn:uuid:".len()..];
        assert_eq!(item["url"], format!("{BASE}clippings/{uuid}"));
        let page = get(&d.url(&format!("clippings/{uuid}")), &[]);
        assert_eq!(page.status, 200, "the item's url is served");
        assert!(page.text().contains(item["title"].as_str().unwrap()));
        // Never edited: modified when published (`updated` means edited).
        assert_eq!(item["date_modified"], item["date_published"], "{item}");
        assert!(item.get("content_html").is_some() != item.get("content_text").is_some(), "{item}");
    }
    assert_eq!(ids(&parse("feed.json", &r.body)), ids(&atom));

    let j1 = &items[2];
    assert_eq!(j1["external_url"], "https://news.example/j1");
    assert_eq!(j1["summary"], "The excerpt of one");
    assert!(j1["content_html"].as_str().unwrap().contains("<strong>bold</strong>"), "{j1}");
    assert_eq!(j1["image"], "https://img.example/j1.png");
    assert_eq!(j1["date_published"], "2024-06-01T06:30:00Z");
    assert_eq!(j1["tags"], serde_json::json!(["Feeds", "Formats"]));
    assert_eq!(j1["authors"], serde_json::json!([{"name": "Json Daily", "url": "https://json.example/"}]));
    let j2 = &items[1];
    assert_eq!(j2["content_text"], "Only an excerpt");
    assert!(j2.get("image").is_none() && j2.get("authors").is_none());
    let j3 = &items[0];
    assert!(j3.get("external_url").is_none(), "{j3}");
    assert_eq!(j3["content_text"], "JSON without a URL");

    // The third-party JSON Feed checker, on every kind of document; warnings count as errors.
    let Some(tools) = shared("tools/validate") else { return };
    if !have("python3") {
        assert!(!validators_required(), "python3 is required (CLIPFEED_REQUIRE_VALIDATORS=1)");
        eprintln!("NOTICE: python3 is missing; skipping the JSON Feed checker");
        return;
    }
    for path in [
        "feed.json",
        "topics/feeds.json",
        "providers/json.example.json",
        "feed.json?q=json&limit=2",
        "feed/archive/2-0.json",
        "topics/feeds/archive/2-0.json",
    ] {
        let (status, out, err) = run(Command::new("python3")
            .arg(tools.join("jsonfeed_check.py"))
            .arg(d.url(path))
            .env("JSONFEED_STRICT", "1"));
        assert!(status.success(), "jsonfeed_check {path}: {status:?}\n{out}\n{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// Per-topic configuration
// ---------------------------------------------------------------------------------------------

#[test]
fn topic_settings_from_the_config() {
    let site = Site::new();
    site.write_config(
        "items_per_feed: 10\ntopics:\n  - name: Robots\n    keywords: [humanoid, robot arm]\n    items_per_feed: 4\n  - name: Vetted\n    min_quality: 50\n  - name: Public\n    hide_unpublished: true\n",
    );
    let clippings = [
        ("k1", "A humanoid walks to work", "topics: [Other]\n"),
        ("k2", "Factory upgrade", "excerpt: \"A new ROBOT ARM for the line\"\n"),
        ("k3", "Humanoids everywhere", "excerpt: \"Plural is not the keyword\"\n"),
        ("k4", "Robot arms race", ""),
        ("k5", "Humanoid robots in homes", "topics: [Robots]\n"),
        ("k6", "Another humanoid demo", ""),
        ("k7", "Humanoid at the gym", ""),
        ("v1", "Vetted and good", "quality: 60\ntopics: [Vetted, Other]\n"),
        ("v2", "Vetted but poor", "quality: 40\ntopics: [Vetted, Other]\n"),
        ("v3", "Vetted without quality", "topics: [Vetted]\n"),
        ("u1", "Marked unpublished", "published: false\ntopics: [Public, Other]\n"),
        ("u2", "Marked published", "published: true\ntopics: [Public]\n"),
        ("u3", "Not marked", "topics: [Public]\n"),
    ];
    for (i, (key, title, more)) in clippings.iter().enumerate() {
        site.put(&format!("{key}.md"), clip(key, title, &format!("2024-07-{:02}T00:00:00Z", i + 1), more));
    }
    let d = Daemon::start(&site);

    for ext in FORMATS {
        // Keywords (whole words or phrases, any case, title or excerpt) join a topic.
        let robots_history = titles_at(&d, &format!("topics/robots.{ext}?limit=500"));
        assert_eq!(
            robots_history,
            [
                "Humanoid at the gym",
                "Another humanoid demo",
                "Humanoid robots in homes",
                "Factory upgrade",
                "A humanoid walks to work"
            ],
            "topics/robots.{ext}"
        );
        // Its items_per_feed (4: pages of 2) sizes its subscription document: 5 slots → 3 + 2.
        let robots = feed(&d.url(&format!("topics/robots.{ext}")));
        assert_eq!(titles(&robots), ["Humanoid at the gym", "Another humanoid demo", "Humanoid robots in homes"]);
        if ext != "json" {
            assert_eq!(link(&robots, "prev-archive"), Some(format!("{BASE}topics/robots/archive/2-0.{ext}")));
        }
        // min_quality and hide_unpublished keep clippings out of that topic only.
        assert_eq!(titles_at(&d, &format!("topics/vetted.{ext}")), ["Vetted and good"]);
        assert_eq!(titles_at(&d, &format!("topics/public.{ext}")), ["Not marked", "Marked published"]);
        let other = feed(&d.url(&format!("topics/other.{ext}")));
        assert_eq!(
            titles(&other),
            ["Marked unpublished", "Vetted but poor", "Vetted and good", "A humanoid walks to work"]
        );
        assert!(link(&other, "prev-archive").is_none());
        assert_eq!(titles_at(&d, &format!("feed.{ext}?limit=500")).len(), clippings.len(), "feed.{ext}");
    }
    // The keyword topic is the item's category.
    let all = feed(&d.url("feed.atom?limit=500"));
    let cats = |t: &str| entry_titled(&all, t).unwrap().categories.iter().map(|c| c.term.clone()).collect::<Vec<_>>();
    assert_eq!(cats("A humanoid walks to work"), ["other", "robots"]);
    assert_eq!(cats("Factory upgrade"), ["robots"]);
    assert!(cats("Robot arms race").is_empty());
    assert_eq!(cats("Vetted but poor"), ["other"]);
    assert_eq!(cats("Marked unpublished"), ["other"]);
}

// ---------------------------------------------------------------------------------------------
// Images, provider logos, related articles
// ---------------------------------------------------------------------------------------------

#[test]
fn images_logos_and_related_articles() {
    let site = Site::new();
    site.put(
        "i1.md",
        "---\ntitle: \"Pictured story\"\npublishedDateTime: 2024-08-01T00:00:00Z\nwebUrl: https://news.example/i1\nprovider:\n  name: Pictures Weekly\n  domain: pics.example\n  images:\n    - url: /relative/logo.png\n    - url: https://pics.example/logo.gif\n      width: 120\n      height: 60\nimages:\n  - url: https://img.example/photos/laundry.png\n    width: 640\n    height: 480\n  - url: https://img.example/second.jpg\nrelated:\n  - title: \"Other take\"\n    webUrl: https://other.example/story\n    provider: {name: Other Paper}\n  - title: \"No address\"\n---\nBody text.\n",
    );
    site.put(
        "i2.md",
        clip("i2", "Social image", "2024-08-02T00:00:00Z", "provider: {name: Pictures Weekly, domain: pics.example}\nimages:\n  - url: \"https://img.example/social?w=800\"\n"),
    );
    site.put(
        "i3.md",
        clip("i3", "Webp image", "2024-08-03T00:00:00Z", "images:\n  - url: https://img.example/a.webp\n"),
    );
    let d = Daemon::start(&site);
    const PNG: &str = "https://img.example/photos/laundry.png";
    const SOCIAL: &str = "https://img.example/social?w=800";
    const WEBP: &str = "https://img.example/a.webp";

    // RSS: enclosure (length 0, type from the extension, JPEG when unknown) and Media RSS.
    let rss = get(&d.url("feed.rss"), &[]);
    let els = elements(&rss.body);
    let find = |ns: &str, name: &str, url: &str| {
        els.iter()
            .find(|e| e.ns == ns && e.name == name && e.attrs.get("url").map(String::as_str) == Some(url))
            .unwrap_or_else(|| panic!("no {name} for {url}"))
            .attrs
            .clone()
    };
    for (url, mime) in [(PNG, "image/png"), (SOCIAL, "image/jpeg"), (WEBP, "image/webp")] {
        let enc = find("", "enclosure", url);
        assert_eq!((enc["length"].as_str(), enc["type"].as_str()), ("0", mime), "{url}");
        assert_eq!(find(MEDIA_NS, "content", url)["type"], mime, "{url}");
    }
    let content = find(MEDIA_NS, "content", PNG);
    assert_eq!(
        (content["width"].as_str(), content["height"].as_str(), content["medium"].as_str()),
        ("640", "480", "image")
    );
    let thumb = find(MEDIA_NS, "thumbnail", PNG);
    assert_eq!((thumb["width"].as_str(), thumb["height"].as_str()), ("640", "480"));
    assert!(!find(MEDIA_NS, "content", SOCIAL).contains_key("width"));
    assert!(
        els.iter().all(|e| e.attrs.get("url").map(String::as_str) != Some("https://img.example/second.jpg")),
        "only the first image"
    );
    let f = parse("feed.rss", &rss.body);
    let pictured = entry_titled(&f, "Pictured story").unwrap();
    let media: Vec<_> = pictured.media.iter().flat_map(|m| &m.content).collect();
    assert!(
        media
            .iter()
            .any(|c| c.url.as_ref().map(|u| u.as_str()) == Some(PNG) && c.width == Some(640) && c.height == Some(480)),
        "{media:?}"
    );
    assert!(pictured.content.as_ref().and_then(|c| c.body.as_deref()).unwrap().contains("https://other.example/story"));

    // Atom: enclosure and related links; the content lists the related articles.
    let atom = feed(&d.url("feed.atom"));
    let e = entry_titled(&atom, "Pictured story").unwrap();
    let rel = |r: &str| e.links.iter().filter(|l| l.rel.as_deref() == Some(r)).collect::<Vec<_>>();
    assert_eq!(rel("enclosure").len(), 1);
    assert_eq!(
        (rel("enclosure")[0].href.as_str(), rel("enclosure")[0].media_type.as_deref()),
        (PNG, Some("image/png"))
    );
    assert_eq!(rel("related").len(), 1, "the related article without a URL is left out");
    assert_eq!(
        (rel("related")[0].href.as_str(), rel("related")[0].title.as_deref()),
        ("https://other.example/story", Some("Other take"))
    );
    let html = e.content.as_ref().and_then(|c| c.body.clone()).unwrap();
    assert!(html.contains("Body text.") && html.contains("Related"), "{html}");
    assert!(
        html.contains("href=\"https://other.example/story\"")
            && html.contains("Other take")
            && html.contains("(Other Paper)"),
        "{html}"
    );
    let social = entry_titled(&atom, "Social image").unwrap();
    let enc = social.links.iter().find(|l| l.rel.as_deref() == Some("enclosure")).unwrap();
    assert_eq!((enc.href.as_str(), enc.media_type.as_deref()), (SOCIAL, Some("image/jpeg")));

    // JSON Feed: image, and the related list in content_html.
    let v = json_at(&d, "feed.json");
    let item = |t: &str| v["items"].as_array().unwrap().iter().find(|i| i["title"] == t).unwrap().clone();
    assert_eq!(item("Pictured story")["image"], PNG);
    assert_eq!(item("Social image")["image"], SOCIAL);
    assert!(item("Pictured story")["content_html"].as_str().unwrap().contains("https://other.example/story"));
    assert!(v.get("icon").is_none(), "the all-feed has no logo");

    // The provider's logo (its first absolute image) is the provider feed's image and icon.
    const LOGO: &str = "https://pics.example/logo.gif";
    let rss = feed(&d.url("providers/pics.example.rss"));
    let logo = rss.logo.expect("RSS <image>");
    assert_eq!((logo.uri.as_str(), logo.width, logo.height), (LOGO, Some(120), Some(60)));
    assert_eq!(feed(&d.url("providers/pics.example.atom")).icon.expect("Atom <icon>").uri, LOGO);
    assert_eq!(json_at(&d, "providers/pics.example.json")["icon"], LOGO);
    assert!(feed(&d.url("feed.rss")).logo.is_none());
    assert!(feed(&d.url("feed.atom")).icon.is_none());
}

// ---------------------------------------------------------------------------------------------
// Regressions: bugs these tests found, fixed in the daemon
// ---------------------------------------------------------------------------------------------

/// `q` phrases and topic keywords must appear in the title or in the excerpt. The daemon
/// matches them against title and excerpt joined by a space, so a phrase that starts at the end
/// of the title and ends at the start of the excerpt matches although it is in neither.
#[test]
fn phrases_must_appear_within_the_title_or_the_excerpt() {
    const X1: &str = "Better machine learning for robots";
    let site = Site::new();
    site.write_config("topics:\n  - name: ML\n    keywords: [machine learning]\n");
    site.put("x1.md", clip("x1", X1, "2024-09-01T00:00:00Z", "excerpt: Works well\n"));
    site.put("x2.md", clip("x2", "A better machine", "2024-09-02T00:00:00Z", "excerpt: Learning from data\n"));
    let d = Daemon::start(&site);
    assert_eq!(titles_at(&d, "feed.atom?q=machine+learning"), ["A better machine", X1], "words may be apart");
    // Neither clipping has the phrase "machine learning" in its title or its excerpt but x1.
    let by_filter = titles_at(&d, "feed.atom?q=machine+learning,better");
    let by_keyword = titles_at(&d, "topics/ml.atom");
    assert_eq!(
        (by_filter, by_keyword),
        (vec![X1.to_string()], vec![X1.to_string()]),
        "(q=machine learning,better ; topic ML with keyword \"machine learning\"): \
         a phrase must not span the end of the title and the start of the excerpt"
    );
}

/// Follows a feed's archive chain as a cache would: archive pages served `immutable` are taken
/// from `cache` when present (and stored there when fetched). Returns every title met.
fn walk_through_cache(d: &Daemon, stem: &str, cache: &mut BTreeMap<String, Vec<u8>>) -> Vec<String> {
    let mut url = format!("{BASE}{stem}.atom");
    let mut out = Vec::new();
    for _ in 0..100 {
        let body = match cache.get(&url) {
            Some(body) => body.clone(),
            None => {
                let r = get(&local(d, &url), &[]);
                assert_eq!(r.status, 200, "{url}");
                if r.header("cache-control") == Some(ARCHIVE_CACHE) {
                    cache.insert(url.clone(), r.body.clone());
                }
                r.body
            }
        };
        let f = parse(&url, &body);
        out.extend(titles(&f));
        match link(&f, "prev-archive") {
            Some(prev) => url = prev,
            None => return out,
        }
    }
    panic!("{stem}: runaway archive chain");
}

/// Full archive pages are served as `immutable` for a year, but their slot ranges come from the
/// current `items_per_feed`: after a change of it, the same archive URL holds other items, and a
/// reader that cached the old pages (as it was told it may) never sees some items.
#[test]
fn archive_pages_stay_valid_when_items_per_feed_changes() {
    let site = Site::new();
    site.write_config("items_per_feed: 4\n");
    for n in 1..=6 {
        site.put(
            &format!("s{n}.md"),
            clip(&format!("s{n}"), &format!("Shift item {n}"), &format!("2024-10-0{n}T00:00:00Z"), ""),
        );
    }
    let all: BTreeSet<String> = (1..=6).map(|n| format!("Shift item {n}")).collect();
    let d = Daemon::start(&site);
    let mut cache = BTreeMap::new();
    let before = walk_through_cache(&d, "feed", &mut cache);
    assert_eq!(before.iter().cloned().collect::<BTreeSet<_>>(), all);
    assert_eq!(cache.len(), 2, "two immutable archive pages cached");
    d.stop();

    site.write_config("items_per_feed: 6\n");
    let d = Daemon::start(&site);
    for (url, body) in &cache {
        let now = get(&local(&d, url), &[]);
        assert!(
            now.status == 404 || now.body == *body,
            "{url} was served immutable but now holds {:?}",
            titles(&parse(url, &now.body))
        );
    }
    let after = walk_through_cache(&d, "feed", &mut cache);
    let missing: Vec<&String> = all.iter().filter(|t| !after.contains(t)).collect();
    assert!(missing.is_empty(), "a reader with cached archive pages misses {missing:?} (walked {after:?})");
}

/// A view with a relative `since` (`since=30m`) changes as time passes: its window moves each
/// minute, so items age out while the feed's history stands still. No date can say when such a
/// view last changed, so it carries no `Last-Modified`, ignores `If-Modified-Since`, and is
/// revalidated by its entity tag, which follows its bytes.
#[test]
fn relative_since_views_revalidate_by_entity_tag_only() {
    let recent = (Utc::now() - Duration::from_secs(5 * 60)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let site = Site::new();
    site.put("aging.md", clip("aging", "Aging item", &recent, "topics: [Aging]\n"));
    site.put("old.md", clip("old", "Old item", "2024-01-01T00:00:00Z", "topics: [Aging]\n"));
    let d = Daemon::start(&site);
    let url = d.url("topics/aging.atom?since=30m");
    let first = get(&url, &[]);
    assert_eq!(first.status, 200);
    assert_eq!(titles(&parse(&url, &first.body)), ["Aging item"]);
    assert_eq!(first.header("last-modified"), None, "a moving window has no Last-Modified");
    let etag = first.header("etag").expect("ETag").to_string();
    let future = "Fri, 01 Jan 2100 00:00:00 GMT";
    assert_eq!(get(&url, &[("If-Modified-Since", future)]).status, 200, "If-Modified-Since is not trusted here");
    assert_eq!(get(&url, &[("If-None-Match", &etag)]).status, 304);
    // An absolute window has a date: the feed's history time.
    let fixed = get(&d.url("topics/aging.atom?since=2024-01-01"), &[]);
    assert!(fixed.header("last-modified").is_some());
    assert_eq!(titles(&parse(&url, &fixed.body)), ["Aging item", "Old item"]);
}

/// Saving one clipping over and over (an editor's repeated saves) must not push every other
/// clipping out of the subscription document, and deleting the newest clippings must not leave it
/// empty while older ones exist: readers without archive support see only that document.
#[test]
fn the_subscription_document_keeps_its_size_through_edits_and_deletions() {
    let site = Site::new();
    site.write_config("items_per_feed: 6\n");
    for n in 1..=9 {
        site.put(
            &format!("s{n}.md"),
            clip(&format!("s{n}"), &format!("Steady {n}"), &format!("2024-05-0{n}T00:00:00Z"), ""),
        );
    }
    let d = Daemon::start(&site);
    let before = titles_at(&d, "feed.atom");
    assert!((3..=6).contains(&before.len()), "{before:?}");

    // Twenty saves of the newest clipping, each with another title.
    for v in 1..=20 {
        site.put("s9.md", clip("s9", &format!("Steady 9, take {v}"), "2024-05-09T00:00:00Z", ""));
        poll("the edit to show", || (titles_at(&d, "feed.atom")[0] == format!("Steady 9, take {v}")).then_some(()));
    }
    let after = titles_at(&d, "feed.atom");
    assert_eq!(after.len(), before.len(), "edits in place: {before:?} -> {after:?}");

    // Delete the newest clippings: the document reaches back into older pages.
    for n in [9, 8, 7, 6, 5] {
        std::fs::remove_file(site.root().join(format!("s{n}.md"))).unwrap();
    }
    poll("the deletions", || (d.status()["clippings"] == 4).then_some(()));
    let left = titles_at(&d, "feed.atom");
    // Four clippings are left and pages hold three: the document holds at least a page's worth.
    assert!(left.len() >= 3, "only {left:?} left in the subscription document");
    // And the archive chain still holds every remaining clipping exactly once.
    for ext in FORMATS {
        let all = walked(&walk(&d, "feed", ext));
        let titles: Vec<&str> = all.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(titles, ["Steady 4", "Steady 3", "Steady 2", "Steady 1"], "{ext}");
    }
}

/// A change to a field feeds do not show (quality) is stored for filters but is not an edit:
/// the item keeps its `updated` time and its place.
#[test]
fn a_change_to_an_unshown_field_is_not_an_edit() {
    let site = Site::new();
    site.write_config("items_per_feed: 4\n");
    for n in 1..=6 {
        site.put(
            &format!("q{n}.md"),
            clip(&format!("q{n}"), &format!("Rated {n}"), &format!("2024-06-0{n}T00:00:00Z"), "quality: 10\n"),
        );
    }
    let d = Daemon::start(&site);
    let before = feed(&d.url("feed.atom"));
    let old = entry_titled(&before, "Rated 1").is_none();
    assert!(old, "Rated 1 starts in the archive");
    let etag = get(&d.url("feed.atom"), &[]).header("etag").unwrap().to_string();
    site.put("q1.md", clip("q1", "Rated 1", "2024-06-01T00:00:00Z", "quality: 90\n"));
    poll("the new quality to count in filters", || {
        (titles_at(&d, "feed.atom?min_quality=50") == ["Rated 1"]).then_some(())
    });
    assert_eq!(
        get(&d.url("feed.atom"), &[]).header("etag"),
        Some(etag.as_str()),
        "the subscription document did not change"
    );
    let arch = walked(&walk(&d, "feed", "atom"));
    assert_eq!(arch.last().map(|(_, t)| t.as_str()), Some("Rated 1"), "still the oldest in the archive");
}

/// An archive page's `Last-Modified` moves whenever its bytes do (here: the feed's description
/// changes), and the link to the next page does not appear or vanish as clippings arrive.
#[test]
fn archive_pages_change_only_with_their_date() {
    let site = Site::new();
    site.write_config("items_per_feed: 2\n");
    for n in 1..=5 {
        site.put(
            &format!("a{n}.md"),
            clip(&format!("a{n}"), &format!("Aged {n}"), &format!("2024-07-0{n}T00:00:00Z"), ""),
        );
    }
    let d = Daemon::start(&site);
    let url = d.url("feed/archive/1-1.atom");
    let first = get(&url, &[]);
    assert_eq!(first.status, 200);
    // More clippings arrive: the page is untouched.
    site.put("a6.md", clip("a6", "Aged 6", "2024-07-06T00:00:00Z", ""));
    site.put("a7.md", clip("a7", "Aged 7", "2024-07-07T00:00:00Z", ""));
    poll("the new clippings", || (titles_at(&d, "feed.atom")[0] == "Aged 7").then_some(()));
    let second = get(&url, &[]);
    assert_eq!(second.body, first.body, "new arrivals change no archive page");
    // A new description (a restart with another config) changes the page, and its date.
    d.stop();
    site.write_config("items_per_feed: 2\ndescription: Another description\n");
    let d = Daemon::start(&site);
    let url = d.url("feed/archive/1-1.atom");
    let third = get(&url, &[]);
    assert_ne!(third.header("etag"), first.header("etag"));
    let lm = first.header("last-modified").unwrap();
    assert_ne!(third.header("last-modified"), Some(lm), "the bytes changed, so must the date");
    assert_eq!(get(&url, &[("If-Modified-Since", lm)]).status, 200);
}

/// With `listen` on port 0 and no `base_url`, links use the port actually chosen.
#[test]
fn the_default_base_url_uses_the_bound_port() {
    let site = Site::new();
    std::fs::write(site.config(), "listen: 127.0.0.1:0\nclippings: [clippings]\nstore: data/c.db\n").unwrap();
    site.put("p.md", clip("p", "Ported", "2024-08-01T00:00:00Z", ""));
    let d = Daemon::start(&site);
    let f = feed(&d.url("feed.atom"));
    let self_link = link(&f, "self").unwrap();
    assert_eq!(self_link, d.url("feed.atom"), "self link on the bound address");
}
