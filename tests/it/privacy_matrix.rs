//! Every route × every query filter (alone and combined, every format, as feeds and as browser
//! pages, GET and HEAD, archives followed to the end) against a store holding clippings private
//! by topic, by alias, by keyword and by news site: no private title, excerpt, body, link or id
//! appears anywhere without the token, and each appears with it in the feeds it belongs to.

use std::collections::BTreeSet;

use crate::privacy::{PRIVATE_CONFIG, tokens};
use crate::support::{Daemon, Site, get, poll, request};

/// Every private clipping's marker starts with this; nothing public contains it.
const MARK: &str = "zqxpriv";

/// A clipping whose title, excerpt, body and link all carry `marker` (no link when `link` is
/// false: it then has a clipping page of its own).
fn clipping(marker: &str, title: &str, link: bool, more: &str) -> String {
    let url = if link { format!("webUrl: https://news.example/{marker}-link\n") } else { String::new() };
    format!(
        "---\ntitle: \"{title} {marker}title\"\nexcerpt: \"Excerpt {marker}excerpt\"\npublishedDateTime: 2025-04-0{}T10:00:00Z\nquality: 60\n{url}{more}---\nBody {marker}body and more.\n",
        1 + marker.len() % 8
    )
}

/// The public clippings and the four kinds of private one, with the config that makes them so.
fn site() -> Site {
    let site = Site::new();
    let topics = PRIVATE_CONFIG.replace("  - name: Robotics\n", "  - name: Robotics\n  - name: Climate\n");
    site.write_config(&format!("{topics}items_per_feed: 3\n"));
    for i in 0..7 {
        let topic = if i % 2 == 0 { "Robotics" } else { "Climate" };
        let more = format!("topics: [{topic}]\nprovider: {{name: Public, domain: public.example.org}}\n");
        site.put(&format!("pub{i}.md"), clipping(&format!("public{i}"), "Open story", i != 3, &more));
    }
    let private = [
        ("topic", "topics: [Internal, Robotics]\nprovider: {name: Public, domain: public.example.org}\n", true),
        ("alias", "topics: [Staff Only, Climate]\n", true),
        ("keyword", "topics: [Robotics]\n", true),
        ("provider", "topics: [Climate]\nprovider: {name: Hidden, domain: secret.example}\n", true),
        ("nolink", "topics: [Internal]\n", false),
    ];
    for (kind, more, link) in private {
        let title = if kind == "keyword" { "The bluebird plan" } else { "Plan" };
        site.put(&format!("{kind}.md"), clipping(&format!("{MARK}{kind}"), title, link, more));
    }
    site
}

/// Fails when `text` (from `what`) holds a private marker or id. What the request itself said
/// (a filtered view echoes its query in its links) is not held against it.
#[track_caller]
fn clean(what: &str, text: &str, ids: &BTreeSet<String>) {
    let mut lower = text.to_ascii_lowercase();
    let mut said: Vec<&str> = what.split(['?', '&', '=', ' ', '/']).filter(|w| w.len() > 3).collect();
    said.sort_by_key(|w| std::cmp::Reverse(w.len()));
    for said in said {
        lower = lower.replace(&said.to_ascii_lowercase(), "");
    }
    assert!(!lower.contains(MARK), "{what} shows a private clipping:\n{text}");
    for id in ids {
        assert!(!lower.contains(id.as_str()), "{what} shows the private id {id}:\n{text}");
    }
}

/// The query filters tried, alone; pairs of them are tried too.
const FILTERS: &[&str] = &[
    "since=2020-01-01",
    "since=3000d",
    "topic=internal",
    "topic=robotics",
    "topic=staff-only",
    "topic=climate",
    "provider=secret.example",
    "provider=public.example.org",
    "q=zqxprivtopictitle",
    "q=bluebird",
    "q=plan",
    "exclude=open",
    "exclude=zzz",
    "limit=500",
    "limit=1",
    "min_quality=0",
    "min_quality=60",
    "search=plan",
    "search=zqxprivtopictitle",
    "search=bluebird%20OR%20plan",
    "group=story",
];

/// The ids of a document's entries (no `urn:uuid:` prefix), read with feed-rs or serde_json.
fn entry_ids(path: &str, body: &str) -> Vec<String> {
    let bare = |id: &str| id.trim_start_matches("urn:uuid:").to_string();
    if path.contains(".json") {
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        v["items"].as_array().unwrap().iter().map(|i| bare(i["id"].as_str().unwrap())).collect()
    } else {
        let f = feed_rs::parser::parse(body.as_bytes()).unwrap_or_else(|e| panic!("{path}: {e}"));
        f.entries.iter().map(|e| bare(&e.id)).collect()
    }
}

/// Every document reachable from `start` through `prev-archive` (Atom, RSS) or `next_url`
/// (JSON) links, `start` included, as (path, body).
fn with_archives(d: &Daemon, start: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut next = Some(start.to_string());
    while let Some(path) = next.take() {
        assert!(out.len() < 50, "{start}: runaway archive chain");
        let r = get(&d.url(&path), &[]);
        let body = r.text();
        next = ["rel=\"prev-archive\"", "\"next_url\""].iter().find_map(|mark| {
            let at = body.find(mark)?;
            let around = if mark.starts_with("rel") { &body[..at] } else { &body[at..] };
            let href = if mark.starts_with("rel") {
                around.rsplit("href=\"").next()?.split('"').next()?
            } else {
                around.split("http://feeds.test/cf/").nth(1)?.split('"').next()?
            };
            Some(href.trim_start_matches("http://feeds.test/cf/").to_string())
        });
        out.push((path, body));
    }
    out
}

#[test]
fn no_route_or_filter_shows_a_private_clipping_without_its_token() {
    let site = site();
    let d = Daemon::start(&site);
    let tokens = tokens(&site);
    let (internal, secret) = (&tokens["topics/internal"], &tokens["providers/secret.example"]);
    // With the tokens: each private clipping is in the private feeds it belongs to, and its
    // ids are learnt there.
    let private_feed = |stem: &str, token: &str| get(&d.url(&format!("{stem}.json?token={token}&limit=50")), &[]);
    let has = |body: &str, kinds: &[&str]| kinds.iter().all(|k| body.contains(&format!("{MARK}{k}title")));
    poll("every private clipping in its private feed", || {
        let (i, s) =
            (private_feed("topics/internal", internal).text(), private_feed("providers/secret.example", secret).text());
        (has(&i, &["topic", "alias", "keyword", "nolink"]) && has(&s, &["provider"])).then_some(())
    });
    poll("the public clippings", || {
        (get(&d.url("feed.json?limit=50"), &[]).text().matches("Open story").count() == 7).then_some(())
    });
    let mut ids = BTreeSet::new();
    for (stem, token, kind) in
        [("topics/internal", internal, "topic"), ("providers/secret.example", secret, "provider")]
    {
        let feed: serde_json::Value = serde_json::from_slice(&private_feed(stem, token).body).unwrap();
        for item in feed["items"].as_array().unwrap() {
            let id = item["id"].as_str().unwrap().trim_start_matches("urn:uuid:").to_ascii_lowercase();
            ids.insert(id);
        }
        for format in ["rss", "atom", "json"] {
            let body = get(&d.url(&format!("{stem}.{format}?token={token}&limit=50")), &[]).text();
            for part in ["title", "excerpt", "body", "-link"] {
                assert!(body.contains(&format!("{MARK}{kind}{part}")), "{stem}.{format}: no {part}:\n{body}");
            }
            let q = get(&d.url(&format!("{stem}.{format}?q=plan&token={token}")), &[]).text();
            assert!(q.contains(MARK), "{stem}.{format}?q=plan with the token:\n{q}");
        }
    }
    assert_eq!(ids.len(), 5, "{ids:?}");
    let full = get(&d.url(&format!("topics/internal.atom?token={internal}&limit=50")), &[]).text();
    for part in ["topictitle", "topicexcerpt", "topicbody", "topic-link", "aliastitle", "keywordbody", "nolinktitle"] {
        assert!(full.contains(&format!("{MARK}{part}")), "{part} missing with the token:\n{full}");
    }

    // Without a token: nothing, anywhere.
    let feeds = [
        "feed",
        "topics/robotics",
        "topics/climate",
        "providers/public.example.org",
        "topics/internal",
        "providers/secret.example",
        "topics/staff-only",
        "topics/bluebird",
    ];
    let browser = ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8");
    let mut queries: Vec<String> =
        std::iter::once(String::new()).chain(FILTERS.iter().map(|f| f.to_string())).collect();
    for (i, a) in FILTERS.iter().enumerate() {
        for b in &FILTERS[i + 1..] {
            if a.split('=').next() != b.split('=').next()
                && (i % 3 == 0 || b.starts_with("q") || b.starts_with("limit"))
            {
                queries.push(format!("{a}&{b}"));
            }
        }
    }
    queries.push("since=2020-01-01&topic=internal&provider=secret.example&q=plan&limit=500&min_quality=0".into());
    queries.push("token=wrong&q=plan".into());
    let mut requests = 0;
    let mut grouped_walks = Vec::new();
    for stem in feeds {
        for format in ["rss", "atom", "json"] {
            for (path, body) in with_archives(&d, &format!("{stem}.{format}")) {
                clean(&path, &body, &ids);
                requests += 1;
            }
            // The story-grouped document and its archive pages (the story log).
            let grouped = with_archives(&d, &format!("{stem}.{format}?group=story"));
            for (path, body) in &grouped {
                clean(path, body, &ids);
                clean(&format!("{path} (browser)"), &get(&d.url(path), &[browser]).text(), &ids);
                requests += 2;
            }
            if stem == "feed" {
                grouped_walks.push(grouped);
            }
            for q in &queries {
                let path = format!("{stem}.{format}?{q}");
                clean(&path, &get(&d.url(&path), &[]).text(), &ids);
                requests += 1;
            }
            for q in ["", "q=plan", "topic=internal", "provider=secret.example&limit=500"] {
                let path = format!("{stem}.{format}?{q}");
                clean(&format!("{path} (browser)"), &get(&d.url(&path), &[browser]).text(), &ids);
                let head = request("HEAD", &d.url(&path), &[]);
                clean(&format!("HEAD {path}"), &format!("{:?}", head.headers), &ids);
                requests += 2;
            }
        }
        for archive in ["3-0", "3-1", "3-2", "50-0", "2-0", "2-1", "2-2"] {
            for format in ["rss", "atom", "json"] {
                for query in ["", "?group=story"] {
                    let path = format!("{stem}/archive/{archive}.{format}{query}");
                    clean(&path, &get(&d.url(&path), &[]).text(), &ids);
                    clean(&format!("{path} (browser)"), &get(&d.url(&path), &[browser]).text(), &ids);
                    requests += 2;
                }
            }
        }
    }
    for page in ["", "feeds.opml", "healthz", "readyz", "api/status", "metrics", "feed.xsl"] {
        for headers in [vec![], vec![browser]] {
            clean(page, &get(&d.url(page), &headers).text(), &ids);
            requests += 1;
        }
    }
    // Clipping pages: a public clipping without a link has one; no private clipping has.
    let public_pages: Vec<String> = get(&d.url("feed.atom?limit=50"), &[])
        .text()
        .split("http://feeds.test/cf/clippings/")
        .skip(1)
        .filter_map(|s| s.split('"').next().map(String::from))
        .collect();
    assert!(!public_pages.is_empty(), "the public clipping without a link has a page");
    for page in &public_pages {
        assert_eq!(get(&d.url(&format!("clippings/{page}")), &[]).status, 200, "{page}");
    }
    for id in &ids {
        for headers in [vec![], vec![browser], vec![("Authorization", format!("Bearer {internal}").leak() as &str)]] {
            let r = get(&d.url(&format!("clippings/{id}")), &headers);
            assert_eq!(r.status, 404, "clippings/{id}");
            clean(&format!("clippings/{id}"), &r.text(), &ids);
        }
        for missing in ["topics/internal", "feed"] {
            let r = get(&d.url(&format!("{missing}.atom?q={id}")), &[]);
            clean(&format!("{missing}.atom?q={id}"), &r.text(), &ids);
        }
        // A private clipping founds no public story: its id is no story page or feed.
        for ext in ["", ".rss", ".atom", ".json"] {
            let path = format!("stories/{id}{ext}");
            for headers in [vec![], vec![browser]] {
                let r = get(&d.url(&path), &headers);
                assert_eq!(r.status, 404, "{path}");
                clean(&path, &r.text(), &ids);
            }
        }
    }
    // Every public story's page and feeds, as the grouped all-feed names them.
    let grouped = get(&d.url("feed.json?group=story&limit=500"), &[]).text();
    let stories: Vec<String> = grouped
        .split("http://feeds.test/cf/stories/")
        .skip(1)
        .filter_map(|s| s.split(['"', '.', '<', '\\']).next().map(String::from))
        .collect();
    assert!(!stories.is_empty(), "the public clippings make stories: {grouped}");
    let mut served = 0;
    for story in &stories {
        for ext in ["", ".rss", ".atom", ".json"] {
            let path = format!("stories/{story}{ext}");
            let r = get(&d.url(&path), &[]);
            served += usize::from(r.status == 200);
            clean(&path, &r.text(), &ids);
        }
    }
    assert_eq!(served, stories.len() * 4, "every public story is served: {stories:?}");
    // The grouped all-feed's archives, followed to the end, name every public story once.
    let mut want: Vec<String> = stories.clone();
    want.sort();
    want.dedup();
    for walk in &grouped_walks {
        let mut named: Vec<String> = walk.iter().flat_map(|(path, body)| entry_ids(path, body)).collect();
        let pages: Vec<&String> = walk.iter().map(|w| &w.0).collect();
        assert!(want.len() <= 3 || walk.len() > 1, "the grouped all-feed has archive pages: {pages:?}");
        named.sort();
        let count = named.len();
        named.dedup();
        assert_eq!(count, named.len(), "a story twice in {pages:?}");
        assert_eq!(named, want, "{pages:?}");
    }
    eprintln!(
        "{requests} requests checked; {} public stories, {} grouped documents walked",
        want.len(),
        grouped_walks.iter().map(Vec::len).sum::<usize>()
    );
}
