//! Stories through the real daemon: story-grouped feeds (`?group=story`), a story's page and
//! feeds (`/stories/{id}`), ids that stay as coverage joins, 301 from a merged story, every story
//! document through the validators, and newsboat seeing nothing new after a restart, a rescan
//! and a reload.

use std::path::{Path, PathBuf};

use crate::support::*;

const VICE: &str = "000_d6dade89e6185639.txt";
const WIRED: &str = "001_5e3cbeb72eb48121.txt";
const USNEWS: &str = "002_9b0c7d64d6b1f023.txt";
const DAILYDOT: &str = "003_0107e865e703d7d5.txt";
const SIFY: &str = "004_2d675ed3af0c2ab1.txt";

/// A sixth report of the June 2020 moratorium, written here (not taken from anywhere).
const SIXTH: &str = "---
title: \"Amazon pauses police use of its Rekognition facial recognition software for one year\"
publishedDateTime: 2020-06-11T09:30:00Z
webUrl: https://sixth.example/2020/06/amazon-rekognition-police-moratorium
provider:
  name: Sixth Example News
  domain: sixth.example
excerpt: \"Amazon announced a one-year moratorium on police use of Rekognition, its facial recognition technology.\"
topics: [Facial Recognition]
---
Amazon said on Wednesday it is implementing a one-year moratorium on police use of Rekognition,
its facial recognition technology, after weeks of protests against police brutality. The company
said it hoped Congress would use the year to put in place stronger regulations governing the
ethical use of facial recognition technology by police and law enforcement. Civil liberties groups
had long criticised the software as biased against people of colour. The announcement came days
after IBM said it would no longer offer general purpose facial recognition software. Amazon said
organisations such as Thorn and the International Center for Missing and Exploited Children could
keep using Rekognition to help rescue victims of human trafficking and reunite missing children
with their families.
";

fn copy(site: &Site, seeds: &Path, files: &[&str]) {
    for f in files {
        site.put(f, std::fs::read(seeds.join(f)).unwrap());
    }
}

/// The story-grouped JSON Feed of a feed URL.
fn grouped(d: &Daemon, path: &str) -> serde_json::Value {
    let r = get(&d.url(path), &[]);
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    serde_json::from_slice(&r.body).unwrap()
}

fn items(v: &serde_json::Value) -> &Vec<serde_json::Value> {
    v["items"].as_array().unwrap()
}

/// The story id in a grouped item's id (`urn:uuid:{story}`).
fn story_id(item: &serde_json::Value) -> String {
    item["id"].as_str().unwrap().strip_prefix("urn:uuid:").unwrap().to_string()
}

fn content(item: &serde_json::Value) -> &str {
    item["content_html"].as_str().unwrap_or("")
}

/// The title of a seed as the all-feed shows it.
fn title_of(d: &Daemon, url: &str) -> String {
    let f = feed(&d.url("feed.atom"));
    let e = f.entries.iter().find(|e| e.links.iter().any(|l| l.href == url)).expect(url);
    e.title.as_ref().unwrap().content.clone()
}

fn wait_items(d: &Daemon, n: usize) {
    poll(&format!("{n} clippings"), || (feed(&d.url("feed.atom")).entries.len() == n).then_some(()));
}

/// A GET that does not follow redirects: (status, Location).
fn get_unfollowed(url: &str) -> (u16, Option<String>) {
    let agent = ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().new_agent();
    let res = agent.get(url).call().unwrap();
    let loc = res.headers().get("location").map(|v| v.to_str().unwrap().to_string());
    (res.status().as_u16(), loc)
}

#[test]
fn five_seeds_make_two_story_items_and_a_sixth_report_joins_the_first() {
    let Some(seeds) = shared("seeds") else { return };
    let site = Site::new();
    let d = Daemon::start(&site);
    copy(&site, &seeds, &[VICE, WIRED, USNEWS, DAILYDOT, SIFY]);
    wait_items(&d, 5);

    let v = grouped(&d, "feed.json?group=story");
    let list = items(&v);
    assert_eq!(list.len(), 2, "two stories: {v:#}");
    let dailydot_title = title_of(
        &d,
        &format!("http://feeds.test/cf/clippings/{}", {
            let f = feed(&d.url("feed.atom"));
            let e = f.entries.iter().find(|e| e.links[0].href.contains("/clippings/")).unwrap();
            e.id.strip_prefix("urn:uuid:").unwrap().to_string()
        }),
    );
    let june = list.iter().find(|i| content(i).contains("Sify")).expect("a story with Sify's coverage");
    let may = list.iter().find(|i| !content(i).contains("Sify")).unwrap();
    for site_name in ["VICE", "Wired", "Sify.com"] {
        assert!(content(june).contains(&format!("{site_name}: ")), "{site_name} named: {}", content(june));
    }
    assert!(content(june).contains(&dailydot_title.replace('\'', "&#x27;")) || content(june).contains(&dailydot_title));
    assert!(!content(june).contains("U.S. News"), "{}", content(june));
    assert!(content(may).contains("U.S. News"), "{}", content(may));
    assert!(content(may).contains("4 clippings") || content(may).contains("1 clipping"));
    assert!(content(june).starts_with("<p>4 clippings from 4 news sites"), "{}", content(june));
    // Newest story first, by its newest member: the undated Daily Dot report is dated when it
    // was first seen (now). Title and link are the lead's (no quality: the earliest, Wired).
    assert_eq!(list[0]["id"], june["id"]);
    assert!(june["date_published"].as_str() > may["date_published"].as_str());
    assert_eq!(june["url"], "https://www.wired.com/story/amazon-facial-recognition-police-one-year-ban-rekognition/");
    let june_id = story_id(june);
    assert!(content(june).contains(&format!("http://feeds.test/cf/stories/{june_id}")));

    // The story's own feed lists its four clippings.
    let atom = feed(&d.url(&format!("stories/{june_id}.atom")));
    assert_eq!(atom.entries.len(), 4, "{:?}", titles(&atom));
    let links: Vec<&str> = atom.entries.iter().map(|e| e.links[0].href.as_str()).collect();
    for needle in ["vice.com", "wired.com", "sify.com", "/clippings/"] {
        assert!(links.iter().any(|l| l.contains(needle)), "{needle} in {links:?}");
    }
    let page = get(&d.url(&format!("stories/{june_id}")), &[]);
    assert_eq!(page.status, 200);
    assert!(page.text().contains("4 clippings from 4 news sites"), "{}", page.text());
    let first_updated = june["date_modified"].as_str().unwrap().to_string();
    // The index lists the latest stories with their number of news sites.
    let index = get(&d.url(""), &[]).text();
    let at = index.find(&format!("http://feeds.test/cf/stories/{june_id}")).expect("the story on the index");
    assert!(index[at..].contains("4 clippings from 4 news sites"), "{index}");
    assert!(index.contains(&format!("http://feeds.test/cf/stories/{}", story_id(may))), "{index}");

    // A sixth report joins the story: same id, one more member, updated moves.
    std::thread::sleep(std::time::Duration::from_millis(1100)); // the clock passes a second: dates have second precision
    site.put("sixth.md", SIXTH);
    wait_items(&d, 6);
    let v = grouped(&d, "feed.json?group=story");
    assert_eq!(items(&v).len(), 2, "{v:#}");
    let june = items(&v).iter().find(|i| content(i).contains("Sify")).unwrap();
    assert_eq!(story_id(june), june_id, "the story keeps its id");
    assert!(content(june).contains("Sixth Example News: "), "{}", content(june));
    assert!(june["date_modified"].as_str().unwrap() > first_updated.as_str());
    assert_eq!(feed(&d.url(&format!("stories/{june_id}.atom"))).entries.len(), 5);
    // The same grouping in RSS and Atom.
    for ext in ["rss", "atom"] {
        let f = feed(&d.url(&format!("feed.{ext}?group=story")));
        assert_eq!(f.entries.len(), 2);
        assert!(f.entries.iter().any(|e| e.id.contains(&june_id)), "{ext}");
    }
    // A topic feed grouped holds only that topic's clippings.
    let topic = grouped(&d, "topics/facial-recognition.json?group=story");
    assert!(!items(&topic).is_empty());
    validate_all(&d, &june_id);
}

fn validate_all(d: &Daemon, story: &str) {
    let Some(validate) = shared("tools/validate") else { return };
    let out = tempfile::tempdir().unwrap();
    let mut files: Vec<(PathBuf, &str)> = Vec::new();
    let urls = [
        ("feed.rss?group=story", "rss"),
        ("feed.atom?group=story", "atom"),
        ("feed.json?group=story", "json"),
        ("topics/ai.atom?group=story", "atom"),
        ("providers/vice.com.rss?group=story&limit=5", "rss"),
    ];
    let story_urls: Vec<(String, &str)> =
        ["rss", "atom", "json"].iter().map(|e| (format!("stories/{story}.{e}"), *e)).collect();
    for (i, (u, ext)) in urls.iter().map(|(u, e)| (u.to_string(), *e)).chain(story_urls).enumerate() {
        let r = get(&d.url(&u), &[]);
        assert_eq!(r.status, 200, "{u}");
        let path = out.path().join(format!("{i:02}.{ext}"));
        std::fs::write(&path, &r.body).unwrap();
        files.push((path, ext));
    }
    let of =
        |exts: &[&str]| -> Vec<&PathBuf> { files.iter().filter(|(_, e)| exts.contains(e)).map(|(p, _)| p).collect() };
    crate::corpus::python_checker(&validate, "feedparser_check.py", "feedparser", &of(&["rss", "atom"]));
    crate::corpus::python_checker(&validate, "jsonfeed_check.py", "json", &of(&["json"]));
    crate::corpus::jing_all(&validate, &of(&["atom"]));
}

#[test]
fn a_merged_story_answers_301_to_the_survivor_and_is_a_tombstone() {
    let Some(seeds) = shared("seeds") else { return };
    let site = Site::new();
    let d = Daemon::start(&site);
    // Sify's and VICE's reports first: a story founded by Sify's (the earlier).
    copy(&site, &seeds, &[SIFY, VICE]);
    wait_items(&d, 2);
    let v = grouped(&d, "feed.json?group=story");
    assert_eq!(items(&v).len(), 1, "{v:#}");
    let first = story_id(&items(&v)[0]);
    // Wired's report is earlier still: the story is now Wired's, and Sify's id moved.
    copy(&site, &seeds, &[WIRED]);
    wait_items(&d, 3);
    let v = grouped(&d, "feed.json?group=story");
    assert_eq!(items(&v).len(), 1, "{v:#}");
    let second = story_id(&items(&v)[0]);
    assert_ne!(first, second);
    for ext in ["", ".atom", ".json"] {
        let (status, loc) = get_unfollowed(&d.url(&format!("stories/{first}{ext}")));
        assert_eq!(status, 301, "{ext}");
        assert_eq!(loc.as_deref(), Some(format!("http://feeds.test/cf/stories/{second}{ext}").as_str()));
    }
    assert_eq!(feed(&d.url(&format!("stories/{second}.rss"))).entries.len(), 3);
    let atom = get(&d.url("feed.atom?group=story"), &[]).text();
    assert!(atom.contains(&format!("<at:deleted-entry ref=\"urn:uuid:{first}\"")), "{atom}");
    // Unknown and malformed ids.
    assert_eq!(get(&d.url("stories/00000000-0000-0000-0000-000000000000"), &[]).status, 404);
    assert_eq!(get(&d.url("stories/..%2Ffeed.atom"), &[]).status, 404);
    assert_eq!(get(&d.url(&format!("stories/{second}.html")), &[]).status, 404);
}

#[test]
fn a_story_of_private_clippings_only_is_not_found() {
    let site = Site::new();
    site.write_config("topics:\n  - {name: Secret, private: true}\n");
    let body = "The council approved the harbour bridge budget on Monday after a long debate about tolls.";
    site.put(
        "a.md",
        format!("---\ntitle: \"Harbour bridge budget approved\"\npublishedDateTime: 2025-03-01T10:00:00Z\nwebUrl: https://a.example/bridge\ntopics: [Secret]\n---\n{body}\n"),
    );
    site.put(
        "b.md",
        "---\ntitle: \"Open item\"\npublishedDateTime: 2025-03-02T10:00:00Z\nwebUrl: https://b.example/open\n---\nSomething else entirely.\n",
    );
    let d = Daemon::start(&site);
    wait_items(&d, 1);
    let v = grouped(&d, "feed.json?group=story");
    assert_eq!(items(&v).len(), 1, "only the public story: {v:#}");
    assert!(!v.to_string().contains("Harbour"), "{v}");
    let index = get(&d.url(""), &[]).text();
    assert!(!index.contains("Harbour"), "{index}");
}

#[test]
fn newsboat_sees_nothing_new_in_story_feeds_after_restart_rescan_and_reload() {
    let Some(seeds) = shared("seeds") else { return };
    if !have("newsboat") {
        assert!(!validators_required(), "newsboat is required but not installed");
        eprintln!("NOTICE: newsboat is not installed; skipping");
        return;
    }
    let site = Site::on_own_port();
    copy(&site, &seeds, &[VICE, WIRED, USNEWS, DAILYDOT, SIFY]);
    let d = Daemon::start(&site);
    wait_items(&d, 5);
    let v = grouped(&d, "feed.json?group=story");
    let story = story_id(items(&v).iter().find(|i| content(i).contains("Sify")).unwrap());
    let urls: Vec<String> = ["feed.rss?group=story", "feed.atom?group=story", "topics/ai.atom?group=story"]
        .iter()
        .map(|u| d.url(u))
        .chain(["rss", "atom"].iter().map(|e| d.url(&format!("stories/{story}.{e}"))))
        .collect();
    let reader = crate::watch::Newsboat::new(&urls);
    let first = reader.reload();
    // newsboat keeps one row per id: two stories and the four clippings of one.
    assert_eq!(first, 2 + 4, "{first}");

    reader.sees_nothing_new_after_restart_rescan_and_reload(&site, d, first);
}

#[test]
fn story_ids_and_redirects_survive_a_store_rebuild() {
    let Some(seeds) = shared("seeds") else { return };
    let site = Site::new();
    copy(&site, &seeds, &[SIFY, VICE]);
    let d = Daemon::start(&site);
    wait_items(&d, 2);
    let merged = story_id(&items(&grouped(&d, "feed.json?group=story"))[0]);
    copy(&site, &seeds, &[WIRED, USNEWS, DAILYDOT]);
    wait_items(&d, 5);
    let ids = |d: &Daemon| -> Vec<String> {
        let mut v: Vec<String> = items(&grouped(d, "feed.json?group=story")).iter().map(story_id).collect();
        v.sort();
        v
    };
    let before = ids(&d);
    assert_eq!(before.len(), 2);
    assert!(!before.contains(&merged));
    assert!(d.stop().success());
    // An older schema version makes the next start rebuild the store from the clippings.
    let db = site.dir.path().join("data/clipfeed.db");
    rusqlite::Connection::open(&db).unwrap().execute("UPDATE meta SET value='5' WHERE key='schema'", []).unwrap();
    let d = Daemon::start(&site);
    wait_items(&d, 5);
    assert!(d.log().contains("rebuilding it from the clippings"), "{}", d.log());
    assert_eq!(ids(&d), before, "the same story ids after a rebuild");
    let (status, _) = get_unfollowed(&d.url(&format!("stories/{merged}.json")));
    assert_eq!(status, 301, "the merged id still redirects");
}

#[test]
fn a_store_written_before_stories_is_grouped_at_the_next_start() {
    let Some(seeds) = shared("seeds") else { return };
    let site = Site::new();
    copy(&site, &seeds, &[VICE, WIRED, USNEWS, DAILYDOT, SIFY]);
    let d = Daemon::start(&site);
    wait_items(&d, 5);
    let mut before: Vec<String> = items(&grouped(&d, "feed.json?group=story")).iter().map(story_id).collect();
    assert!(d.stop().success());
    // What a store of the previous version holds: no story rows, no mark.
    let db = site.dir.path().join("data/clipfeed.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "DELETE FROM story_items; DELETE FROM story_keys; DELETE FROM meta WHERE key='migrated_stories';",
    )
    .unwrap();
    drop(conn);
    let d = Daemon::start(&site);
    wait_items(&d, 5);
    let mut after: Vec<String> = items(&grouped(&d, "feed.json?group=story")).iter().map(story_id).collect();
    before.sort();
    after.sort();
    assert_eq!(before.len(), 2);
    assert_eq!(after, before);
    let marked: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT value FROM meta WHERE key='migrated_stories'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(marked, "1");
}

/// One reprint of a wire report by news site `n` (the same text, its own URL and site).
fn reprint(n: usize) -> String {
    format!(
        "---\ntitle: \"Port authority approves the northern harbour expansion plan\"\npublishedDateTime: 2025-04-0{}T08:{:02}:00Z\nwebUrl: https://site{n}.example/harbour-expansion\nprovider:\n  name: Site {n} News\n  domain: site{n}.example\n---\nThe port authority approved on Tuesday a plan to expand the northern harbour with two new\nberths, a rail link to the container terminal and dredging of the approach channel, after\nthree years of studies and a public consultation that drew more than four thousand responses\nfrom residents, shipping companies and environmental groups worried about the estuary birds.\n",
        1 + n % 3,
        n % 60
    )
}

#[test]
fn the_index_counts_every_clipping_of_a_large_story() {
    let site = Site::new();
    const N: usize = 45;
    for n in 0..N {
        site.put(&format!("r{n}.md"), reprint(n));
    }
    let d = Daemon::start(&site);
    wait_items(&d, N);
    let listed = |d: &Daemon, n: usize| {
        let want = format!("{n} clippings from {n} news sites");
        poll(&want, || get(&d.url(""), &[]).text().contains(&want).then_some(()));
    };
    listed(&d, N);
    // The story page counts the same.
    let v = grouped(&d, "feed.json?group=story");
    assert_eq!(items(&v).len(), 1, "{v:#}");
    assert!(content(&items(&v)[0]).starts_with(&format!("<p>{N} clippings from {N} news sites")));
    // A clipping that leaves, and the count follows.
    std::fs::remove_file(site.root().join("r7.md")).unwrap();
    listed(&d, N - 1);
}
