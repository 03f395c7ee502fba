//! The story logs through the real daemon: the story-grouped subscription documents
//! (`?group=story` alone) link RFC 5005 archive pages, and following them to the end gives every
//! story exactly once, in RSS, Atom and JSON Feed, through the validators; newsboat sees nothing
//! new in them after a restart, a rescan and a reload; and a story change made by a clipping in
//! another feed shows at once in every grouped view and story page.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::support::*;

const BASE: &str = "http://feeds.test/cf/";

/// A made-up word, different for every (event, n).
fn word(event: usize, n: usize) -> String {
    const SYL: [&str; 16] =
        ["ka", "lo", "mi", "ru", "te", "zo", "bi", "na", "fe", "gu", "sho", "wa", "pi", "do", "ve", "xu"];
    let k = event * 64 + n;
    format!("{}{}{}an", SYL[k % 16], SYL[(k / 16) % 16], SYL[(k / 256) % 16])
}

/// A clipping of made-up event `event`, which shares no word with any other event: each is a
/// story of its own. `site` names its news site and link.
fn event(event: usize, site: &str, title_extra: &str) -> String {
    let words: Vec<String> = (0..40).map(|n| word(event, n)).collect();
    format!(
        "---\ntitle: \"{} {} {}{title_extra}\"\npublishedDateTime: 2024-01-{:02}T10:00:00Z\nwebUrl: https://{site}.example/{}\nprovider: {{name: {site}, domain: {site}.example}}\ntopics: [Paging]\n---\n{}.\n",
        words[0],
        words[1],
        words[2],
        10 + event,
        words[3],
        words.join(" ")
    )
}

/// Nine stories; the first gets a reprint by another site (a second member: a new slot), the
/// fourth an edited title (a new slot).
fn put_stories(site: &Site, d: &Daemon) {
    for i in 0..9 {
        site.put(&format!("e{i}.md"), event(i, &format!("site{i}"), ""));
    }
    wait_count(d, "feed.json?limit=50", 9);
    site.put("reprint.md", event(0, "reprinter", ""));
    wait_count(d, "feed.json?limit=50", 10);
    site.put("e3.md", event(3, "site3", " revised"));
    poll("the revised title", || get(&d.url("feed.json?limit=50"), &[]).text().contains(" revised").then_some(()));
}

fn wait_count(d: &Daemon, path: &str, n: usize) {
    poll(&format!("{n} items in {path}"), || (items(d, path).len() == n).then_some(()));
}

fn items(d: &Daemon, path: &str) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_slice(&answered(d, path).body).unwrap();
    v["items"].as_array().cloned().unwrap_or_default()
}

/// `path`'s answer, once it is not 503 (a view made on request may be refused while the
/// machine is loaded): the first answer served is the one checked, and it must be 200.
#[track_caller]
fn answered(d: &Daemon, path: &str) -> Reply {
    let r = poll(&format!("{path} served"), || Some(get(&d.url(path), &[])).filter(|r| r.status != 503));
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r
}

fn story(id: &str) -> String {
    id.trim_start_matches("urn:uuid:").to_string()
}

/// One document of a walk: its path, bytes and story ids.
struct Walked {
    path: String,
    body: Vec<u8>,
    ids: Vec<String>,
}

/// Every document from `{stem}.{ext}?group=story` back through `prev-archive` (JSON Feed:
/// `next_url`), read with feed-rs or serde_json.
fn walk(d: &Daemon, stem: &str, ext: &str) -> Vec<Walked> {
    let mut out: Vec<Walked> = Vec::new();
    let mut path = format!("{stem}.{ext}?group=story");
    loop {
        assert!(out.len() < 50, "{stem}.{ext}: runaway archive chain");
        assert!(out.iter().all(|w| w.path != path), "{path} visited twice");
        let r = answered(d, &path);
        let (ids, older) = if ext == "json" {
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(v["feed_url"].as_str(), Some(format!("{BASE}{path}").as_str()), "{path}");
            let ids = v["items"].as_array().unwrap().iter().map(|i| story(i["id"].as_str().unwrap())).collect();
            (ids, v["next_url"].as_str().map(String::from))
        } else {
            let f = feed_rs::parser::parse(&r.body[..]).unwrap_or_else(|e| panic!("{path}: {e}"));
            let link = |rel: &str| f.links.iter().find(|l| l.rel.as_deref() == Some(rel)).map(|l| l.href.clone());
            assert_eq!(link("self"), Some(format!("{BASE}{path}")), "{path}");
            if !out.is_empty() {
                assert_eq!(link("current"), Some(format!("{BASE}{stem}.{ext}?group=story")), "{path}");
            }
            (f.entries.iter().map(|e| story(&e.id)).collect(), link("prev-archive"))
        };
        out.push(Walked { path: path.clone(), body: r.body.clone(), ids });
        match older {
            Some(url) => {
                path = url.strip_prefix(BASE).unwrap_or_else(|| panic!("{url}")).to_string();
                assert!(path.ends_with(&format!(".{ext}?group=story")) && path.contains("/archive/"), "{path}");
            }
            None => return out,
        }
    }
}

#[test]
fn grouped_archives_followed_to_the_end_give_every_story_once() {
    let site = Site::new();
    site.write_config("items_per_feed: 4\n");
    let d = Daemon::start(&site);
    put_stories(&site, &d);
    // The reference: the grouped view made on request over the whole history.
    let all: BTreeSet<String> =
        items(&d, "feed.json?group=story&limit=500").iter().map(|i| story(i["id"].as_str().unwrap())).collect();
    assert_eq!(all.len(), 9, "nine stories: {all:?}");
    let out = tempfile::tempdir().unwrap();
    let mut files: Vec<(PathBuf, &str)> = Vec::new();
    for stem in ["feed", "topics/paging"] {
        for ext in ["rss", "atom", "json"] {
            let pages = walk(&d, stem, ext);
            assert!(pages.len() >= 3, "{stem}.{ext}: archive pages: {}", pages.len());
            let ids: Vec<&String> = pages.iter().flat_map(|p| &p.ids).collect();
            let unique: BTreeSet<String> = ids.iter().map(|s| s.to_string()).collect();
            assert_eq!(ids.len(), unique.len(), "{stem}.{ext}: a story twice: {ids:?}");
            assert_eq!(unique, all, "{stem}.{ext}: every story once");
            for (n, p) in pages.iter().enumerate() {
                let path = out.path().join(format!("{}-{ext}-{n}.{ext}", stem.replace('/', "_")));
                std::fs::write(&path, &p.body).unwrap();
                files.push((path, ext));
            }
        }
    }
    // The first story shows both its reports, wherever its slot now is.
    let both = items(&d, "feed.json?group=story&limit=500")
        .into_iter()
        .find(|i| i["content_html"].as_str().unwrap_or("").contains("reprinter"))
        .expect("the reprinted story");
    assert!(both["content_html"].as_str().unwrap().starts_with("<p>2 clippings from 2 news sites"), "{both}");
    // Archive pages of another page size, past the end, or with other filters are not served.
    assert_eq!(get(&d.url("feed/archive/3-0.atom?group=story"), &[]).status, 404);
    assert_eq!(get(&d.url("feed/archive/2-40.atom?group=story"), &[]).status, 404);
    assert_eq!(get(&d.url("feed/archive/2-0.atom?group=story&limit=2"), &[]).status, 400);
    // A filtered grouped view has no archives.
    let filtered = get(&d.url("feed.atom?group=story&limit=3"), &[]).text();
    assert!(!filtered.contains("prev-archive"), "{filtered}");
    validate(&files);
}

fn validate(files: &[(PathBuf, &str)]) {
    let Some(validate) = shared("tools/validate") else { return };
    let of =
        |exts: &[&str]| -> Vec<&PathBuf> { files.iter().filter(|(_, e)| exts.contains(e)).map(|(p, _)| p).collect() };
    crate::corpus::python_checker(&validate, "feedparser_check.py", "feedparser", &of(&["rss", "atom"]));
    crate::corpus::python_checker(&validate, "jsonfeed_check.py", "json", &of(&["json"]));
    crate::corpus::jing_all(&validate, &of(&["atom"]));
}

#[test]
fn newsboat_sees_nothing_new_in_grouped_archives_after_restart_rescan_and_reload() {
    if !have("newsboat") {
        assert!(!validators_required(), "newsboat is required but not installed");
        eprintln!("NOTICE: newsboat is not installed; skipping");
        return;
    }
    let site = Site::on_own_port();
    let config = std::fs::read_to_string(site.config()).unwrap();
    std::fs::write(site.config(), format!("{config}items_per_feed: 4\n")).unwrap();
    let d = Daemon::start(&site);
    put_stories(&site, &d);
    let urls: Vec<String> = [
        "feed.rss?group=story",
        "feed.atom?group=story",
        "feed/archive/2-0.rss?group=story",
        "feed/archive/2-1.atom?group=story",
        "topics/paging.rss?group=story",
    ]
    .iter()
    .map(|u| d.url(u))
    .collect();
    // newsboat keeps one row per id: the stories these documents show between them.
    let mut shown = BTreeSet::new();
    for u in &urls {
        shown.extend(feed(u).entries.into_iter().map(|e| e.id));
    }
    let reader = crate::watch::Newsboat::new(&urls);
    let first = reader.reload();
    assert_eq!(first, shown.len() as i64, "{shown:?}");
    assert!(first >= 5, "{shown:?}");
    reader.sees_nothing_new_after_restart_rescan_and_reload(&site, d, first);
}

const VICE: &str = "000_d6dade89e6185639.txt";
const WIRED: &str = "001_5e3cbeb72eb48121.txt";
const SIFY: &str = "004_2d675ed3af0c2ab1.txt";

fn copy(site: &Site, seeds: &Path, f: &str) {
    site.put(f, std::fs::read(seeds.join(f)).unwrap());
}

/// Story ids of a grouped JSON view, and the ids its Atom form tombstones.
fn grouped(d: &Daemon, stem: &str, query: &str) -> (Vec<String>, String) {
    let ids = items(d, &format!("{stem}.json?{query}")).iter().map(|i| story(i["id"].as_str().unwrap())).collect();
    (ids, answered(d, &format!("{stem}.atom?{query}")).text())
}

#[test]
fn a_story_change_made_in_another_feed_shows_at_once_in_every_grouped_view() {
    let Some(seeds) = shared("seeds") else { return };
    let site = Site::new();
    let d = Daemon::start(&site);
    // VICE's and Sify's reports: one story, founded by Sify's (the earlier).
    copy(&site, &seeds, SIFY);
    copy(&site, &seeds, VICE);
    // The published document, not a view: a view reads the store, which commits before the
    // change's feeds (VICE's among them) are published together.
    wait_count(&d, "feed.json", 2);
    let vice = "providers/vice.com";
    let before = grouped(&d, vice, "group=story").0;
    assert_eq!(before.len(), 1, "{before:?}");
    let old = before[0].clone();
    // Every view is now cached: the grouped documents, a filtered grouped view, the story page.
    for q in ["group=story", "group=story&limit=5"] {
        assert_eq!(grouped(&d, vice, q).0, before);
    }
    answered(&d, &format!("stories/{old}.json"));
    // Wired's report is in neither VICE's feed nor any feed VICE's report is in, and is the
    // earliest: the story is Wired's now, under Wired's founder id.
    copy(&site, &seeds, WIRED);
    // The published document, not a view: a view reads the store, which commits before the
    // change's feeds (VICE's among them) are published together.
    wait_count(&d, "feed.json", 3);
    let new = story(items(&d, "feed.json?group=story")[0]["id"].as_str().unwrap());
    assert_ne!(new, old);
    // No waiting: the site that shows three clippings shows the new story everywhere.
    for q in ["group=story", "group=story&limit=5"] {
        let (ids, atom) = grouped(&d, vice, q);
        assert_eq!(ids, vec![new.clone()], "{vice}?{q}");
        assert!(atom.contains(&format!("<at:deleted-entry ref=\"urn:uuid:{old}\"")), "{vice}?{q}: {atom}");
    }
    let (status, _) = unfollowed(&d.url(&format!("stories/{old}.json")));
    assert_eq!(status, 301);
    // VICE's readers still see only VICE's report in it.
    let item = &items(&d, &format!("{vice}.json?group=story"))[0];
    assert!(item["content_html"].as_str().unwrap().starts_with("<p>1 clipping from 1 news site"), "{item}");
}

fn unfollowed(url: &str) -> (u16, Option<String>) {
    let agent = ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().new_agent();
    let res = agent.get(url).call().unwrap();
    (res.status().as_u16(), res.headers().get("location").map(|v| v.to_str().unwrap().to_string()))
}

/// The story log's rows: (feed, pos, story, open), by feed and position.
fn log_rows(db: &Path) -> Vec<(String, i64, String, bool)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn.prepare("SELECT feed, pos, story, left_at IS NULL FROM story_log ORDER BY feed, pos").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).unwrap().map(Result::unwrap).collect()
}

#[test]
fn a_store_without_story_logs_gets_them_once_at_the_next_start() {
    let site = Site::new();
    site.write_config("items_per_feed: 4\n");
    let d = Daemon::start(&site);
    put_stories(&site, &d);
    let walked = |d: &Daemon| -> BTreeSet<String> { walk(d, "feed", "atom").into_iter().flat_map(|p| p.ids).collect() };
    let before = walked(&d);
    assert_eq!(before.len(), 9);
    assert!(d.stop().success());
    let db = site.dir.path().join("data/clipfeed.db");
    let kept = log_rows(&db);
    // Without its mark, a store whose logs are already full is left as it is (idempotent).
    rusqlite::Connection::open(&db).unwrap().execute("DELETE FROM meta WHERE key='migrated_story_log'", []).unwrap();
    let d = Daemon::start(&site);
    d.wait_ready();
    assert_eq!(walked(&d), before);
    assert!(d.stop().success());
    assert_eq!(log_rows(&db), kept, "a second fill changes nothing");
    // What a store of the previous version holds: no story log, no mark.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("DELETE FROM story_log; DELETE FROM meta WHERE key='migrated_story_log';").unwrap();
    drop(conn);
    let d = Daemon::start(&site);
    d.wait_ready();
    let pages = walk(&d, "feed", "atom");
    assert!(pages.len() >= 3, "archive pages again: {}", pages.len());
    assert_eq!(pages.iter().flat_map(|p| p.ids.clone()).collect::<BTreeSet<_>>(), before);
    let rows = log_rows(&db);
    // One open slot per story and feed, filled oldest story first.
    let open: Vec<&String> = rows.iter().filter(|r| r.0 == "feed" && r.3).map(|r| &r.2).collect();
    assert_eq!(open.len(), 9, "{rows:?}");
    let dated: std::collections::BTreeMap<String, String> = items(&d, "feed.json?group=story&limit=500")
        .iter()
        .map(|i| (story(i["id"].as_str().unwrap()), i["date_published"].as_str().unwrap().to_string()))
        .collect();
    let dates: Vec<&String> = open.iter().map(|s| &dated[*s]).collect();
    assert!(dates.windows(2).all(|w| w[0] <= w[1]), "oldest story first: {dates:?}");
    let marked: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT value FROM meta WHERE key='migrated_story_log'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(marked, "1");
}
