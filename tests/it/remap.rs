//! A topic remap (a reload that changes topics, aliases, keywords or privacy) over a few thousand
//! clippings, watched by a client that reads feeds one after the other the whole time: every
//! answer is the complete old document or the complete new one, and once any feed has switched,
//! none answers with the old one again; a feed the remap brings into being answers 503 (or 404)
//! until then; what turns private leaves the public feeds before anything else. The expected
//! memberships are worked out here from the clippings as written, not by clipfeed's code.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::privacy::tokens;
use crate::support::{Daemon, Site, get, poll, serve_command};

/// The daemon on `site`, its remap reading `chunk` live items at a time (a test build's
/// `CLIPFEED_TEST_REMAP_CHUNK`), so that a remap of these few thousand spans many chunks, as one
/// of 100,000 does.
fn start_chunked(site: &Site, chunk: usize) -> Daemon {
    let mut cmd = serve_command(&[] as &[&str], &site.config());
    cmd.env("CLIPFEED_TEST_REMAP_CHUNK", chunk.to_string());
    Daemon::spawn(cmd)
}

/// The topic names a generated clipping writes, and whether its title has the keyword.
fn names(i: usize) -> (Vec<&'static str>, bool) {
    let first = ["Robots", "Machines", "Vision", "Gardening"][i % 4];
    let mut names = vec![first];
    if i.is_multiple_of(7) && first != "Vision" {
        names.push("Vision");
    }
    (names, i.is_multiple_of(5))
}

fn title(i: usize) -> String {
    let (_, humanoid) = names(i);
    format!("Item {i}{}", if humanoid { " about a humanoid" } else { "" })
}

/// Writes `n` clippings (distinct dates, three news sites) before the daemon starts.
fn corpus(site: &Site, n: usize) {
    for i in 0..n {
        let (topics, _) = names(i);
        let text = format!(
            "---\ntitle: \"{}\"\npublishedDateTime: 2025-01-01T{:02}:{:02}:00Z\nwebUrl: https://news.example/{i}\nprovider: {{name: Site {s}, domain: s{s}.example}}\ntopics: [{}]\n---\n",
            title(i),
            i / 60 % 24,
            i % 60,
            topics.join(", "),
            s = i % 3,
        );
        let path = site.root().join(format!("d{}/c{i}.md", i % 10));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// How a configuration maps names: (the topic name each written name gives, the topic the
/// keyword gives).
struct Rules {
    map: fn(&str) -> &'static str,
    keyword: Option<&'static str>,
}

const OLD_CONFIG: &str = "items_per_feed: 5000\ntopics:\n  - name: Robotics\n    aliases: [Robots]\n  - name: Computer Vision\n    aliases: [Vision]\n";
const OLD: Rules = Rules {
    map: |n| match n {
        "Robots" => "Robotics",
        "Vision" => "Computer Vision",
        "Machines" => "Machines",
        _ => "Gardening",
    },
    keyword: None,
};
/// Machines joins Robotics, the keyword too; Computer Vision goes, so "Vision" is a topic of its own.
const NEW_CONFIG: &str =
    "items_per_feed: 5000\ntopics:\n  - name: Robotics\n    aliases: [Robots, Machines]\n    keywords: [humanoid]\n";
const NEW: Rules = Rules {
    map: |n| match n {
        "Robots" | "Machines" => "Robotics",
        "Vision" => "Vision",
        _ => "Gardening",
    },
    keyword: Some("Robotics"),
};

impl Rules {
    /// The topics item `i` is in, in the order clipfeed lists them: names as written, then keywords.
    fn topics(&self, i: usize) -> Vec<&'static str> {
        let (names, humanoid) = names(i);
        let mut out: Vec<&'static str> = Vec::new();
        let extra = self.keyword.filter(|_| humanoid);
        for t in names.iter().map(|n| (self.map)(n)).chain(extra) {
            if !out.contains(&t) {
                out.push(t);
            }
        }
        out
    }

    /// Title → topics of every item in the feed `stem` (`feed` or `topics/<slug>`).
    fn expected(&self, n: usize, stem: &str, private: Option<&str>) -> BTreeMap<String, BTreeSet<String>> {
        let slug = |t: &str| t.to_lowercase().replace(' ', "-");
        (0..n)
            .filter(|&i| {
                let topics = self.topics(i);
                let hidden = private.is_some_and(|p| topics.contains(&p) && stem != format!("topics/{}", slug(p)));
                !hidden && (stem == "feed" || topics.iter().any(|t| stem == format!("topics/{}", slug(t))))
            })
            .map(|i| (title(i), self.topics(i).into_iter().map(String::from).collect()))
            .collect()
    }
}

/// One answer, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Old,
    New,
    /// 503 with Retry-After, or 404: a feed not there yet.
    NotYet,
    /// The old document less the clippings that turned private (privacy goes first).
    PrivateGone,
}

/// The titles and tags of a JSON Feed document, read with serde_json.
fn items_of(body: &[u8]) -> BTreeMap<String, BTreeSet<String>> {
    let doc: serde_json::Value = serde_json::from_slice(body).expect("a JSON document");
    let items = doc["items"].as_array().expect("items");
    let tags = |it: &serde_json::Value| {
        it["tags"].as_array().map_or(BTreeSet::new(), |t| t.iter().map(|x| x.as_str().unwrap().to_string()).collect())
    };
    items.iter().map(|it| (it["title"].as_str().unwrap().to_string(), tags(it))).collect()
}

/// The `date_modified` of every item of a JSON Feed document, by id.
fn modified(body: &[u8]) -> BTreeMap<String, String> {
    let doc: serde_json::Value = serde_json::from_slice(body).expect("a JSON document");
    let items = doc["items"].as_array().expect("items");
    items.iter().map(|it| (it["id"].as_str().unwrap().into(), it["date_modified"].as_str().unwrap().into())).collect()
}

/// What each watched feed is expected to be: (path, old, new, old less the private clippings).
type Expect = (
    String,
    Option<BTreeMap<String, BTreeSet<String>>>,
    BTreeMap<String, BTreeSet<String>>,
    Option<BTreeMap<String, BTreeSet<String>>>,
);

fn classify(reply: &crate::support::Reply, (path, old, new, gone): &Expect) -> Seen {
    if reply.status == 503 {
        assert!(reply.header("retry-after").is_some(), "{path}: 503 without Retry-After");
        return Seen::NotYet;
    }
    if reply.status == 404 && old.is_none() {
        return Seen::NotYet;
    }
    assert_eq!(reply.status, 200, "{path}: {}", String::from_utf8_lossy(&reply.body));
    let got = items_of(&reply.body);
    if &got == new {
        Seen::New
    } else if old.as_ref() == Some(&got) {
        Seen::Old
    } else if gone.as_ref() == Some(&got) {
        Seen::PrivateGone
    } else {
        let diff: Vec<_> = got.iter().filter(|(k, v)| new.get(*k) != Some(v)).take(5).collect();
        panic!("{path} is neither the old nor the new document ({} items; differing from new: {diff:?})", got.len());
    }
}

/// A client reading the feeds one after the other, classifying each answer, until stopped.
struct Watcher {
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicUsize>,
    thread: std::thread::JoinHandle<Vec<(usize, Seen)>>,
}

impl Watcher {
    fn start(d: &Daemon, expect: Arc<Vec<Expect>>) -> Watcher {
        let urls: Vec<String> = expect.iter().map(|e| d.url(&e.0)).collect();
        let (stop, rounds) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let (stop2, rounds2) = (stop.clone(), rounds.clone());
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !stop2.load(Ordering::Relaxed) {
                for (k, url) in urls.iter().enumerate() {
                    seen.push((k, classify(&get(url, &[]), &expect[k])));
                }
                rounds2.fetch_add(1, Ordering::Relaxed);
            }
            seen
        });
        Watcher { stop, rounds, thread }
    }

    /// Waits for two more whole rounds (so one began after now), then stops: every answer.
    fn finish(self) -> Vec<(usize, Seen)> {
        let now = self.rounds.load(Ordering::Relaxed);
        poll("the watcher's next rounds", || (self.rounds.load(Ordering::Relaxed) >= now + 2).then_some(()));
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the watcher")
    }
}

fn count(d: &Daemon, what: &str) -> usize {
    d.log().lines().filter(|l| l.contains(what)).count()
}

/// Writes the configuration, sends SIGHUP and waits until the reload is done.
fn reload(site: &Site, d: &Daemon, extra: &str) {
    let done = count(d, "configuration reloaded");
    site.write_config(extra);
    d.signal(libc::SIGHUP);
    poll("the reload", || (count(d, "configuration reloaded") > done).then_some(()));
}

/// Asserts the answers went from old to new once: never an old one after a new one, whatever
/// the feed, and a feed not there yet only before the switch. Returns the number of answers.
fn switched_once(seen: &[(usize, Seen)], expect: &[Expect]) -> usize {
    let first_new = seen.iter().position(|(_, s)| *s == Seen::New).expect("the new feeds were never seen");
    for (k, s) in &seen[first_new..] {
        assert_eq!(*s, Seen::New, "{} answered {s:?} after another feed had switched", expect[*k].0);
    }
    seen.len()
}

#[test]
fn a_topic_remap_switches_every_feed_from_old_to_new_at_once() {
    const N: usize = 2400;
    let site = Site::new();
    site.write_config(OLD_CONFIG);
    corpus(&site, N);
    let d = start_chunked(&site, 100);
    poll("every clipping", || (d.counter("clippings") == N as u64).then_some(()));
    let watched = ["feed", "topics/robotics", "topics/machines", "topics/computer-vision", "topics/vision"];
    let expect: Vec<Expect> = watched
        .iter()
        .map(|stem| {
            let old = OLD.expected(N, stem, None);
            let old = (stem != &"topics/vision").then_some(old);
            (format!("{stem}.json"), old, NEW.expected(N, stem, None), None)
        })
        .collect();
    let expect = Arc::new(expect);
    for (k, e) in expect.iter().enumerate() {
        let want = if e.1.is_some() { Seen::Old } else { Seen::NotYet };
        assert_eq!(classify(&get(&d.url(&e.0), &[]), &expect[k]), want, "{} before the reload", e.0);
    }
    let modified_before = modified(&get(&d.url("feed.json"), &[]).body);
    let watcher = Watcher::start(&d, expect.clone());
    reload(&site, &d, NEW_CONFIG);
    let seen = watcher.finish();
    let answers = switched_once(&seen, &expect);
    // A remap is no edit: every item keeps its time, those whose tags changed included.
    assert_eq!(modified(&get(&d.url("feed.json"), &[]).body), modified_before);
    assert!(answers >= watched.len(), "{answers} answers");
    for e in expect.iter() {
        assert_eq!(classify(&get(&d.url(&e.0), &[]), e), Seen::New, "{} after the reload", e.0);
    }
    // The log names the items that changed (their topics as listed), counted here independently.
    let changed = (0..N).filter(|&i| OLD.topics(i) != NEW.topics(i)).count();
    let line = format!("items={N} changed={changed} new_feeds=1");
    assert_eq!(count(&d, &line), 1, "no line with {line}:\n{}", d.log());
    // Nothing turned private, so the plan wrote the new topics as it went, chunk by chunk.
    assert_eq!(count(&d, "written_in_plan=true"), 1, "{}", d.log());
    assert!(d.status()["remap"].is_null(), "the remap is over");
}

#[test]
fn a_remap_that_makes_a_topic_private_takes_that_effect_first() {
    const N: usize = 1200;
    let site = Site::new();
    site.write_config(OLD_CONFIG);
    corpus(&site, N);
    let d = start_chunked(&site, 10);
    poll("every clipping", || (d.counter("clippings") == N as u64).then_some(()));
    let private_config =
        NEW_CONFIG.replace("    keywords: [humanoid]\n", "    keywords: [humanoid]\n    private: true\n");
    // Each watched feed: old, then (for those holding clippings that turn private) the old
    // document less those, then new. The topic of its own comes into being with the remap.
    let robotics = NEW.expected(N, "topics/robotics", None);
    let expect: Vec<Expect> = ["feed", "topics/gardening", "topics/vision"]
        .iter()
        .map(|stem| {
            let old = (stem != &"topics/vision").then(|| OLD.expected(N, stem, None));
            let gone = old.as_ref().map(|o| o.iter().filter(|(t, _)| !robotics.contains_key(*t)));
            let gone = gone.map(|g| g.map(|(t, v)| (t.clone(), v.clone())).collect());
            (format!("{stem}.json"), old, NEW.expected(N, stem, Some("Robotics")), gone)
        })
        .collect();
    let expect = Arc::new(expect);
    let watcher = Watcher::start(&d, expect.clone());
    reload(&site, &d, &private_config);
    let seen = watcher.finish();
    // Once the private clippings were out of the feed of everything, they never came back.
    for k in 0..expect.len() {
        let mine: Vec<Seen> = seen.iter().filter(|(j, _)| *j == k).map(|(_, s)| *s).collect();
        if let Some(first) = mine.iter().position(|s| *s != Seen::Old && *s != Seen::NotYet) {
            assert!(mine[first..].iter().all(|s| *s != Seen::Old), "{}: {mine:?}", expect[k].0);
        }
    }
    // Every answer after the first new one is new; before it, the feed of everything may already
    // have lost the private clippings, and nothing else changed yet.
    let first_new = seen.iter().position(|(_, s)| *s == Seen::New).expect("never saw the new feeds");
    assert!(seen[first_new..].iter().all(|(_, s)| *s == Seen::New), "{seen:?}");
    // The writer took them out in a transaction of its own, before re-mapping the rest.
    let log = d.log();
    let private_at = log.find("left the public feeds").unwrap_or_else(|| panic!("no privacy step:\n{log}"));
    let remapped_at = log.find("items re-mapped").expect("the remap's end");
    assert!(private_at < remapped_at, "{log}");
    let line = log[private_at..].lines().next().unwrap();
    assert!(line.contains(&format!("clippings={}", robotics.len())), "{line}");
    assert!(log.contains("written_in_plan=false"), "the plan's writes wait for the privacy step:\n{log}");
    // The private topic answers as missing without its token, and in full with it.
    assert_eq!(get(&d.url("topics/robotics.json"), &[]).status, 404);
    let token = tokens(&site)["topics/robotics"].clone();
    let r = get(&d.url(&format!("topics/robotics.json?token={token}")), &[]);
    assert_eq!(items_of(&r.body), robotics);
}

/// Titles of a JSON Feed document's items.
fn titles(body: &[u8]) -> BTreeSet<String> {
    let doc: serde_json::Value = serde_json::from_slice(body).expect("a JSON document");
    doc["items"].as_array().expect("items").iter().map(|it| it["title"].as_str().unwrap().to_string()).collect()
}

#[test]
fn what_the_plan_wrote_before_a_clipping_turning_private_waits_for_it_to_leave_the_public_feeds() {
    let site = Site::new();
    site.write_config("topics:\n  - name: Robotics\n  - name: Embargo\n    private: true\n");
    // In key order (the plan's, a chunk of one item each): a retopic made public, a clipping
    // that turns private, another retopic.
    put_three(&site, ["Droids, Embargo", "Hidden", "Droids"]);
    let d = start_chunked(&site, 1);
    // All three stored (Alpha, private, is in no public count), before the reload.
    poll("every clipping", || (count(&d, "files=3 parsed=3") == 1).then_some(()));
    let before: BTreeSet<String> = ["Bravo", "Charlie"].map(String::from).into();
    poll("the public clippings", || (titles(&get(&d.url("feed.json"), &[]).body) == before).then_some(()));
    reload(
        &site,
        &d,
        "topics:\n  - name: Robotics\n    aliases: [Droids]\n  - name: Embargo\n    private: false\n  - name: Secret\n    aliases: [Hidden]\n    private: true\n",
    );
    let log = d.log();
    // The first chunk was written in the plan's transaction; the second stopped that.
    assert_eq!(count(&d, "chunks_written=1"), 1, "{log}");
    assert_eq!(count(&d, "left the public feeds clippings=1"), 1, "{log}");
    assert_eq!(count(&d, "written_in_plan=false"), 1, "{log}");
    let public: BTreeSet<String> = ["Alpha", "Charlie"].map(String::from).into();
    // Both retopics are in force (written after the privacy step), the clipping made public in
    // the public stories too, the private one in no public answer: documents, the topic's
    // feed, its news site's, a search of every feed.
    assert_eq!(titles(&get(&d.url("feed.json"), &[]).body), public);
    assert_eq!(titles(&get(&d.url("feed.json?group=story"), &[]).body), public);
    assert_eq!(titles(&get(&d.url("topics/robotics.json"), &[]).body), public);
    assert_eq!(titles(&get(&d.url("feed.json?search=topic:robotics"), &[]).body), public);
    assert_eq!(titles(&get(&d.url("feed.json?search=droid"), &[]).body), public);
    for path in ["feed.json?search=bravo", "providers/b.example.json", "feed.rss", "feed.atom", "topics/robotics.rss"] {
        let r = get(&d.url(path), &[]);
        assert!(!String::from_utf8_lossy(&r.body).contains("Bravo"), "{path}: {}", r.status);
    }
    assert_eq!(get(&d.url("topics/secret.json"), &[]).status, 404);
    let token = tokens(&site)["topics/secret"].clone();
    let r = get(&d.url(&format!("topics/secret.json?token={token}")), &[]);
    assert_eq!(titles(&r.body), ["Bravo".to_string()].into());
}

/// Three clippings from three news sites, in key order Alpha, Bravo, Charlie, with `topics`.
fn put_three(site: &Site, topics: [&str; 3]) {
    for (i, topic) in topics.iter().enumerate() {
        let (n, host, title) = [(1, "a", "Alpha"), (2, "b", "Bravo"), (3, "c", "Charlie")][i];
        let text = format!(
            "---\ntitle: {title}\nexcerpt: A droid story\npublishedDateTime: 2025-03-0{n}T00:00:00Z\nwebUrl: https://{host}.example/{n}\nprovider: {{name: Site {host}, domain: {host}.example}}\ntopics: [{topic}]\n---\n"
        );
        site.put(&format!("c{n}.md"), text);
    }
}

/// Every item of a JSON Feed document as a value, without the fields a cold build dates
/// differently from a remap (none of the items' own dates: those must be equal).
fn items_as_values(body: &[u8]) -> BTreeMap<String, serde_json::Value> {
    let doc: serde_json::Value = serde_json::from_slice(body).expect("a JSON document");
    let items = doc["items"].as_array().expect("items");
    items.iter().map(|it| (it["id"].as_str().unwrap().to_string(), it.clone())).collect()
}

/// Pairs of clippings of the same event from two news sites, under different topic names, so
/// stories of two members cross topic feeds and the remap moves their coverage.
fn story_pairs(site: &Site, n: usize) {
    for j in 0..n {
        for (s, topic) in [(0, "Robots"), (1, "Machines")] {
            let text = format!(
                "---\ntitle: \"Robot arm {j} stacks the crates of warehouse {j} overnight\"\npublishedDateTime: 2025-02-{:02}T0{s}:00:00Z\nwebUrl: https://news.example/pair{j}-{s}\nprovider: {{name: Site {s}, domain: s{s}.example}}\ntopics: [{topic}]\n---\nThe arm {j} stacked crates.\n",
                j % 27 + 1,
            );
            site.put(&format!("pairs/p{j}-{s}.md"), text);
        }
    }
}

#[test]
fn a_remap_gives_the_feeds_stories_and_search_answers_of_a_cold_build_under_the_new_rules() {
    const N: usize = 700;
    let remapped = Site::new();
    remapped.write_config(OLD_CONFIG);
    corpus(&remapped, N);
    story_pairs(&remapped, 12);
    let d = start_chunked(&remapped, 50);
    poll("every clipping", || (d.counter("clippings") == (N + 24) as u64).then_some(()));
    reload(&remapped, &d, NEW_CONFIG);
    let cold = Site::new();
    cold.write_config(NEW_CONFIG);
    corpus(&cold, N);
    story_pairs(&cold, 12);
    let c = Daemon::start(&cold);
    poll("every clipping", || (c.counter("clippings") == (N + 24) as u64).then_some(()));
    c.wait_ready();
    // Feeds that exist under both (topics the remap emptied stay as empty feeds; a cold build
    // never had them).
    let feeds = [
        "feed",
        "topics/robotics",
        "topics/vision",
        "topics/gardening",
        "providers/s0.example",
        "providers/s1.example",
    ];
    let searches = [
        "",
        "?search=topic:robotics",
        "?search=robotics",
        "?search=vision",
        "?search=topic:vision%20-humanoid",
        "?search=gardening%20OR%20robots",
        "?search=crates",
        "?group=story",
        "?group=story&search=arm",
        "?q=humanoid",
    ];
    let mut compared = 0;
    for feed in feeds {
        for query in searches {
            let path = format!("{feed}.json{query}");
            let (a, b) = (get(&d.url(&path), &[]), get(&c.url(&path), &[]));
            assert_eq!((a.status, b.status), (200, 200), "{path}");
            let (a, b) = (items_as_values(&a.body), items_as_values(&b.body));
            if a != b {
                let diff: Vec<_> = a.iter().filter(|(k, v)| b.get(*k) != Some(v)).take(3).collect();
                let missing: Vec<_> = b.keys().filter(|k| !a.contains_key(*k)).take(3).collect();
                panic!("{path}: remapped {} items, cold {}; differing {diff:?}; missing {missing:?}", a.len(), b.len());
            }
            compared += a.len();
        }
    }
    assert!(compared > 4 * N, "{compared} items compared");
    // The new rules are in force, checked independently of the cold build.
    let robotics = items_as_values(&get(&d.url("topics/robotics.json"), &[]).body);
    let pairs = robotics.values().filter(|it| it["title"].as_str().unwrap().starts_with("Robot arm")).count();
    assert_eq!(robotics.len(), NEW.expected(N, "topics/robotics", None).len() + pairs);
    assert_eq!(pairs, 24, "both sides of every pair, Machines now an alias of Robotics");
}

/// The bytes of the store's search index (its FTS5 segments), read beside the running daemon.
fn index_bytes(site: &Site) -> f64 {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let db = rusqlite::Connection::open_with_flags(site.dir.path().join("data/clipfeed.db"), flags).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    db.query_row("SELECT total(length(block)) FROM search_index_data", [], |r| r.get(0)).unwrap()
}

#[test]
fn the_search_index_a_remap_rewrote_is_merged_back_once_the_writer_is_idle() {
    // Each remap re-indexes the third of the items whose topics it changes: the old entries
    // stay in the index's segments, marked deleted, until a merge drops them. Unmerged, four
    // remaps more than double the index (the store grew by 21 MB a remap at 100,000).
    const N: usize = 1200;
    let site = Site::new();
    site.write_config(OLD_CONFIG);
    corpus(&site, N);
    let d = start_chunked(&site, 100);
    poll("every clipping", || (d.counter("clippings") == N as u64).then_some(()));
    let before = index_bytes(&site);
    assert!(before > 0.0);
    for config in [NEW_CONFIG, OLD_CONFIG, NEW_CONFIG, OLD_CONFIG] {
        reload(&site, &d, config);
    }
    assert_eq!(d.counter("clippings"), N as u64);
    // No file changes after the reloads: only the writer's idle merging can shrink it.
    let after = poll("the index merged back", || {
        let now = index_bytes(&site);
        (now <= before * 1.25).then_some(now)
    });
    // What the index answers is the same: a title word finds every item whose title has it,
    // and a topic word the items of that topic.
    let r = get(&d.url("feed.json?search=humanoid"), &[]);
    assert_eq!(r.status, 200);
    let humanoid: BTreeSet<String> = (0..N).map(title).filter(|t| t.contains("humanoid")).collect();
    assert_eq!(titles(&r.body), humanoid, "{after} of {before} bytes");
    let r = get(&d.url("feed.json?search=topic:gardening"), &[]);
    let gardening: BTreeSet<String> = OLD.expected(N, "topics/gardening", None).into_keys().collect();
    assert_eq!(titles(&r.body), gardening);
}

#[test]
fn a_reload_whose_remap_fails_on_a_full_store_is_applied_once_there_is_room() {
    const N: usize = 600;
    let site = Site::new();
    site.write_config(OLD_CONFIG);
    corpus(&site, N);
    let pages = site.dir.path().join("pages");
    let mut cmd = serve_command(&[] as &[&str], &site.config());
    cmd.env("CLIPFEED_TEST_STORE_PAGES", &pages);
    let d = Daemon::spawn(cmd);
    poll("every clipping", || (d.counter("clippings") == N as u64).then_some(()));
    // The disk is full (the store may not grow by a page) when the new topics come.
    std::fs::write(&pages, "1").unwrap();
    let failed = count(&d, "applying the new configuration failed");
    site.write_config(NEW_CONFIG);
    d.signal(libc::SIGHUP);
    poll("the failed reload", || (count(&d, "applying the new configuration failed") > failed).then_some(()));
    // Meanwhile: the old feeds, whole, and no remap shown as under way.
    let r = get(&d.url("topics/computer-vision.json"), &[]);
    assert_eq!(items_of(&r.body), OLD.expected(N, "topics/computer-vision", None));
    assert!(d.status()["remap"].is_null(), "{}", d.status());
    // Room again: the new configuration is applied with no other reload, change or restart.
    std::fs::remove_file(&pages).unwrap();
    let vision = NEW.expected(N, "topics/vision", None);
    poll("the new feeds", || {
        let r = get(&d.url("topics/vision.json"), &[]);
        (r.status == 200 && items_of(&r.body) == vision).then_some(())
    });
    // Every other feed is the new one too (Computer Vision's, no topic now, empty).
    for stem in ["feed", "topics/robotics", "topics/gardening", "topics/computer-vision"] {
        let r = get(&d.url(&format!("{stem}.json")), &[]);
        assert_eq!(r.status, 200, "{stem}");
        assert_eq!(items_of(&r.body), NEW.expected(N, stem, None), "{stem}");
    }
    assert!(d.status()["remap"].is_null(), "{}", d.status());
}
