//! HTTP behaviour of the real daemon over a socket: validators and 304s, HEAD, 405, 404, content
//! types, the index, the status document and the page of a clipping without a URL.

use crate::support::*;

const A: &str = "---\ntitle: \"Alpha <b>story</b> & more\"\nexcerpt: An excerpt with <script>alert(1)</script> inside\npublishedDateTime: 2024-03-01T10:00:00Z\nwebUrl: https://News.Example.com/alpha#top\nprovider:\n  name: Example News\n  domain: News.Example.com\ntopics: [Space Flight, Données Ouvertes]\n---\nBody with **bold** and <img src=x onerror=alert(1)> and [a link](javascript:alert(2)).\n";
const B: &str = "---\ntitle: Beta without a URL\npublishedDateTime: 2024-03-02\ntopics: [Space Flight]\n---\n# Heading\n\nText of beta.\n";

fn started() -> (Site, Daemon) {
    let site = Site::new();
    site.put("a.md", A);
    site.put("nested/b.markdown", B);
    site.put(".hidden.md", "---\ntitle: Hidden dotfile\n---\n");
    site.put("notes.json", "{}");
    site.put("a.md~", A.replace("Alpha", "Backup"));
    let d = Daemon::start(&site);
    (site, d)
}

#[test]
fn conditional_get_head_and_errors() {
    let (_site, d) = started();
    let url = d.url("topics/space-flight.atom");
    let r = get(&url, &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/atom+xml; charset=utf-8"));
    let etag = r.header("etag").expect("ETag").to_string();
    let lm = r.header("last-modified").expect("Last-Modified").to_string();
    assert!(etag.starts_with('"') && !etag.starts_with("W/"), "strong ETag: {etag}");

    let r304 = get(&url, &[("If-None-Match", &etag)]);
    assert_eq!(r304.status, 304);
    assert!(r304.body.is_empty());
    assert_eq!(r304.header("etag"), Some(etag.as_str()));
    assert_eq!(get(&url, &[("If-Modified-Since", &lm)]).status, 304);
    assert_eq!(get(&url, &[("If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT")]).status, 200);
    assert_eq!(get(&url, &[("If-None-Match", "\"something-else\"")]).status, 200);

    let head = request("HEAD", &url, &[]);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length").map(|v| v.parse::<usize>().unwrap()), Some(r.body.len()));
    assert_eq!(head.header("etag"), Some(etag.as_str()));
    // A 304 carries no length, to `HEAD` as to `GET` (only the 200's length could be true), on
    // the fast path and through the router (an unknown field sends the request there).
    for extra in [vec![], vec![("X-Unknown-Field", "1")]] {
        for method in ["GET", "HEAD"] {
            let mut headers = extra.clone();
            headers.push(("If-None-Match", &etag));
            let r = request(method, &url, &headers);
            assert_eq!((r.status, r.header("content-length")), (304, None), "{method} {extra:?}");
        }
    }

    for m in ["POST", "PUT", "DELETE", "PATCH"] {
        assert_eq!(request(m, &url, &[]).status, 405, "{m}");
    }
    for p in ["topics/nope.rss", "providers/nope.example.atom", "topics/space-flight.xml", "nope", "clippings/zzz"] {
        assert_eq!(get(&d.url(p), &[]).status, 404, "{p}");
    }
    let rss = get(&d.url("providers/news.example.com.rss"), &[]);
    assert_eq!(rss.status, 200);
    assert_eq!(rss.header("content-type"), Some("application/rss+xml; charset=utf-8"));
    assert_eq!(get(&d.url("healthz"), &[]).status, 200);
}

#[test]
fn content_is_sanitised_and_ignored_files_stay_out() {
    let (_site, d) = started();
    for ext in ["rss", "atom"] {
        let r = get(&d.url(&format!("feed.{ext}")), &[]);
        let text = r.text();
        for bad in ["<script", "onerror", "javascript:"] {
            assert!(!text.to_ascii_lowercase().contains(bad), "{ext} contains {bad}:\n{text}");
        }
        let f = feed_rs::parser::parse(&r.body[..]).unwrap();
        let t = titles(&f);
        assert_eq!(t.len(), 2, "{ext}: dotfiles, backups and other extensions are ignored: {t:?}");
        let alpha = entry_titled(&f, "Alpha story & more").expect("title as plain text");
        assert_eq!(alpha.links[0].href, "https://news.example.com/alpha", "canonical URL");
    }
    // Non-ASCII topic names are transliterated into the slug.
    assert_eq!(feed(&d.url("topics/donnees-ouvertes.rss")).entries.len(), 1);
}

#[test]
fn pages_status_and_item_without_url() {
    let (_site, d) = started();
    let index = get(&d.url("/"), &[]);
    assert_eq!(index.status, 200);
    assert!(index.header("content-type").unwrap().starts_with("text/html"));
    let html = index.text();
    assert!(html.contains("Space Flight") && html.contains("Example News"), "{html}");
    assert!(html.contains("<link rel=\"alternate\" type=\"application/atom+xml\""));

    let f = feed(&d.url("feed.rss"));
    let beta = entry_titled(&f, "Beta without a URL").unwrap();
    let link = &beta.links[0].href;
    assert!(link.starts_with("http://feeds.test/cf/clippings/"), "{link}");
    // The base URL is the public one; ask the daemon directly for the same path.
    let path = link.trim_start_matches("http://feeds.test/cf/");
    let page = get(&d.url(path), &[]);
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("Beta without a URL") && html.contains("Text of beta."), "{html}");
    assert!(page.header("content-security-policy").is_some());

    let status = d.status();
    assert_eq!(status["clippings"], 2);
    assert_eq!(status["topics"], 2);
    assert_eq!(status["providers"], 1);
    assert!(status["rejected"].as_array().unwrap().is_empty());
}

#[test]
fn files_with_the_same_url_are_one_item() {
    let site = Site::new();
    let one = "---\ntitle: Shared story\npublishedDateTime: 2024-05-01T00:00:00Z\nwebUrl: https://dup.example/story\ntopics: [Oceans]\n---\n";
    let two = "---\ntitle: Shared story, later copy\npublishedDateTime: 2024-05-02T00:00:00Z\nwebUrl: https://DUP.example/story#again\ntopics: [Rivers]\n---\n";
    site.put("one.md", one);
    site.put("two.md", two);
    let d = Daemon::start(&site);
    let all = feed(&d.url("feed.atom"));
    assert_eq!(titles(&all), ["Shared story"], "one item, titled from the earliest file");
    let id = all.entries[0].id.clone();
    for topic in ["oceans", "rivers"] {
        let f = feed(&d.url(&format!("topics/{topic}.atom")));
        assert_eq!(f.entries.len(), 1, "{topic}");
        assert_eq!(f.entries[0].id, id, "{topic}");
    }
    // Removing one file keeps the item (now from the other file), with the same id.
    std::fs::remove_file(site.root().join("one.md")).unwrap();
    let f = poll("the item to come from the remaining file", || {
        let f = feed(&d.url("feed.atom"));
        (titles(&f) == ["Shared story, later copy"]).then_some(f)
    });
    assert_eq!(f.entries[0].id, id);
    assert!(feed(&d.url("topics/oceans.atom")).entries.is_empty());
    std::fs::remove_file(site.root().join("two.md")).unwrap();
    poll("the item to go with its last file", || feed(&d.url("feed.atom")).entries.is_empty().then_some(()));
}

#[test]
fn characters_xml_forbids_never_reach_a_feed() {
    let site = Site::new();
    site.put(
        "ctl.md",
        "---\ntitle: \"bell\\a vt\\v nul-ish\\x01 ffff\\uFFFF\"\nexcerpt: \"esc\\e here\"\nprovider:\n  name: \"Prov\\x02ider\"\n  domain: ctl.example\ntopics: [\"Top\\x03ic\"]\n---\nbody \u{1}\u{8} text\n",
    );
    let d = Daemon::start(&site);
    for p in ["feed.rss", "feed.atom", "providers/ctl.example.rss", "/"] {
        let body = get(&d.url(p), &[]).text();
        let bad: Vec<char> = body.chars().filter(|&c| !clipfeed::is_xml_char(c)).collect();
        assert!(bad.is_empty(), "{p} holds {bad:?}");
    }
    let f = feed(&d.url("feed.rss"));
    assert_eq!(titles(&f), ["bell vt nul-ish ffff"]);
}

#[test]
fn escaped_markup_in_text_fields_never_becomes_markup() {
    let site = Site::new();
    site.put(
        "x.md",
        "---\ntitle: \"&lt;img src=x onerror=alert(1)&gt;Hello\"\nexcerpt: \"&amp;lt;script&amp;gt;alert(2)&amp;lt;/script&amp;gt;Fine\"\nprovider:\n  name: \"&lt;b onmouseover=alert(3)&gt;Prov&lt;/b&gt;\"\n  domain: prov.example\ntopics: [\"&lt;i&gt;Topic&lt;/i&gt;\"]\n---\n",
    );
    let d = Daemon::start(&site);
    for p in ["feed.rss", "feed.atom", "topics/topic.rss", "providers/prov.example.atom", "/"] {
        let r = get(&d.url(p), &[]);
        assert_eq!(r.status, 200, "{p}");
        let text = r.text().to_ascii_lowercase();
        for bad in ["onerror", "onmouseover", "alert(", "&lt;img", "&lt;script", "&lt;b "] {
            assert!(!text.contains(bad), "{p} contains {bad}:\n{text}");
        }
    }
    let f = feed(&d.url("feed.rss"));
    assert_eq!(titles(&f), ["Hello"]);
}
