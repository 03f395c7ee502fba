//! The index against a real FTS5 table (SQLite built in by rusqlite's `bundled`): which items each
//! operator finds, `q` and `exclude` agreeing with [`Filter::matches_words`] item for item, feed
//! order, edits and deletions, and property tests that any search is a clean error or an
//! expression FTS5 accepts and whose matches follow the documented meaning.

use super::*;
use crate::clip::{Limits, Provider, parse};
use crate::feed::FeedKey;
use crate::filter::Filter;
use crate::item::{ItemData, TopicRef};
use crate::search::{Match, Search, words_match};
use proptest::prelude::*;

/// An item with the given text, published at `2020-06-10T12:00:00Z` plus `minutes`.
struct Spec<'a> {
    id: &'a str,
    minutes: i64,
    title: &'a str,
    excerpt: &'a str,
    body: &'a str,
    site: (&'a str, &'a str),
    topics: &'a [&'a str],
}

fn item(s: &Spec) -> Item {
    let mut clip = parse(b"---\ntitle: x\n---\n", Limits::default()).unwrap().clipping;
    clip.title = s.title.to_string();
    clip.excerpt = (!s.excerpt.is_empty()).then(|| s.excerpt.to_string());
    clip.content_html = (!s.body.is_empty()).then(|| format!("<p>{}</p>", html_escape::encode_text(s.body)));
    clip.provider = Some(Provider { name: s.site.0.into(), domain: Some(s.site.1.into()), images: vec![] });
    let published = "2020-06-10T12:00:00Z".parse::<DateTime<Utc>>().unwrap() + chrono::Duration::minutes(s.minutes);
    let topics =
        s.topics.iter().map(|t| TopicRef { slug: t.to_string(), name: t.replace('-', " ").to_uppercase() }).collect();
    Item {
        id: s.id.into(),
        updated: published,
        data: ItemData { clip, topics, published, dated: true, also: Vec::new() },
    }
}

/// A store's connection in memory, with every table (the feed log included).
fn index() -> Connection {
    crate::store::Store::open_in_memory().unwrap().conn
}

/// Indexes an item and gives it an open slot in the log of every feed it belongs to (unless it
/// has one), as the writer does for a public clipping.
fn add(c: &Connection, it: &Item) -> Result<()> {
    put(c, it)?;
    let mut feeds = vec![FeedKey::All];
    feeds.extend(it.data.topics.iter().map(|t| FeedKey::Topic(t.slug.clone())));
    feeds.extend(it.data.provider_domain().map(|d| FeedKey::Provider(d.to_string())));
    for f in feeds {
        c.execute(
            "INSERT INTO feed_log(feed, pos, id, entered_at)
             SELECT ?1, (SELECT COALESCE(MAX(pos) + 1, 0) FROM feed_log WHERE feed = ?1), ?2, 0
             WHERE NOT EXISTS(SELECT 1 FROM feed_log WHERE feed = ?1 AND id = ?2 AND left_at IS NULL)",
            params![f.path_stem(), it.id],
        )?;
    }
    Ok(())
}

const ITEMS: [Spec; 7] = [
    Spec {
        id: "vice",
        minutes: 0,
        title: "Amazon pauses police use of Rekognition",
        excerpt: "A one-year moratorium on facial recognition.",
        body: "Civil rights groups welcomed the move.",
        site: ("VICE", "vice.com"),
        topics: &["ai", "facial-recognition"],
    },
    Spec {
        id: "usnews",
        minutes: 60,
        title: "Amazon extends Rekognition moratorium",
        excerpt: "Indefinitely, the company says.",
        body: "Police departments must wait.",
        site: ("U.S. News", "usnews.com"),
        topics: &["ai"],
    },
    Spec {
        id: "wired",
        minutes: 10,
        title: "Robots fold laundry in a Café",
        excerpt: "Machine learning meets chores.",
        body: "The robot arm learns from videos.",
        site: ("Wired", "wired.com"),
        topics: &["robotics"],
    },
    Spec {
        id: "dailydot",
        minutes: 20,
        title: "Robotics startup raises funds",
        excerpt: "Cafe owners invest; machine-learning hype.",
        body: "",
        site: ("The Daily Dot", "dailydot.com"),
        topics: &["robotics", "startups"],
    },
    Spec {
        id: "sify",
        minutes: 30,
        title: "Deep machine",
        excerpt: "Learning machine translation at scale",
        body: "Near the end.",
        site: ("Sify", "sify.com"),
        topics: &["nlp"],
    },
    Spec {
        id: "crypto",
        minutes: 40,
        title: "Crypto robots on web 3",
        excerpt: "Blockchain hype, again.",
        body: "NEAR protocol title:robots",
        site: ("Coin Desk", "coindesk.com"),
        topics: &["crypto"],
    },
    Spec {
        id: "old",
        minutes: -60 * 24 * 365,
        title: "Facial recognition: a primer",
        excerpt: "Police and AI.",
        body: "",
        site: ("VICE", "vice.com"),
        topics: &["ai"],
    },
];

fn filled() -> Connection {
    let c = index();
    for s in &ITEMS {
        add(&c, &item(s)).unwrap();
    }
    c
}

#[track_caller]
fn found(c: &Connection, m: &Match) -> Vec<String> {
    matching(c, &m.expression(), "feed", &Bounds::default(), 100).unwrap_or_else(|e| panic!("{}: {e}", m.expression()))
}

#[track_caller]
fn search(c: &Connection, s: &str) -> Vec<String> {
    found(c, &Search::parse(s).unwrap().to_match())
}

#[track_caller]
fn words(c: &Connection, q: &str, exclude: &str) -> Vec<String> {
    let f = Filter::parse(&format!("q={q}&exclude={exclude}"), &FeedKey::All, Utc::now()).unwrap();
    found(c, &words_match(&f))
}

#[test]
fn fts5_is_built_in() {
    let c = index();
    let on: bool = c.query_row("SELECT sqlite_compileoption_used('ENABLE_FTS5')", [], |r| r.get(0)).unwrap();
    assert!(on);
}

#[test]
fn each_operator_finds_exactly_its_items() {
    let c = filled();
    let cases: &[(&str, &[&str])] = &[
        // Words: all must match, anywhere, any case, diacritics folded, newest first.
        ("rekognition", &["usnews", "vice"]),
        ("amazon POLICE", &["usnews", "vice"]),
        ("cafe", &["dailydot", "wired"]),
        ("robot", &["wired"]),
        // Phrases: words next to each other in order, within one column.
        ("\"machine learning\"", &["dailydot", "wired"]),
        ("\"learning machine\"", &["sify"]),
        ("\"deep machine learning\"", &[]),
        ("\"facial recognition\"", &["vice", "old"]),
        // OR.
        ("laundry OR translation", &["sify", "wired"]),
        ("moratorium OR primer police", &["usnews", "vice", "old"]),
        // Exclusions.
        ("amazon -indefinitely", &["vice"]),
        ("robots -\"web 3\"", &["wired"]),
        ("rekognition -site:vice", &["usnews"]),
        // Prefixes.
        ("robo*", &["crypto", "dailydot", "wired"]),
        ("\"machine lear\"*", &["dailydot", "wired"]),
        // Fields.
        ("title:robots", &["crypto", "wired"]),
        ("excerpt:police", &["old"]),
        ("body:police", &["usnews"]),
        ("text:police", &["usnews", "vice", "old"]),
        ("site:vice", &["vice", "old"]),
        ("site:\"daily dot\"", &["dailydot"]),
        ("site:dailydot.com", &["dailydot"]),
        ("topic:robotics", &["dailydot", "wired"]),
        ("topic:\"facial recognition\"", &["vice"]),
        // Topics stay apart: no phrase runs from one topic into the next.
        ("topic:\"robotics startups\"", &[]),
        // Words that are FTS5 syntax are words.
        ("NEAR", &["crypto", "sify"]),
        ("\"title robots\"", &["crypto"]),
        ("AND", &["old"]),
        ("\"and ai\"", &["old"]),
    ];
    for (query, expect) in cases {
        assert_eq!(search(&c, query), *expect, "search={query}");
    }
}

#[test]
fn q_and_exclude_keep_their_meaning() {
    let c = filled();
    // Whole words, any case, within title or within excerpt, never across, never the body.
    assert_eq!(words(&c, "robots", ""), ["crypto", "wired"]);
    assert_eq!(words(&c, "robot", ""), Vec::<String>::new());
    assert_eq!(words(&c, "machine learning,", ""), ["dailydot", "wired"], "a comma makes phrases");
    assert_eq!(words(&c, "machine learning", ""), ["sify", "dailydot", "wired"], "no comma: two words");
    assert_eq!(words(&c, "deep machine learning,", ""), Vec::<String>::new(), "title and excerpt are apart");
    assert_eq!(words(&c, "police", ""), ["vice", "old"], "not the body");
    // Diacritics count, as they do for matches_words.
    assert_eq!(words(&c, "café", ""), ["wired"]);
    assert_eq!(words(&c, "cafe", ""), ["dailydot"]);
    assert_eq!(words(&c, "", "hype"), ["usnews", "sify", "wired", "vice", "old"]);
    assert_eq!(words(&c, "amazon", "web 3,indefinitely"), ["vice"]);
    for s in &ITEMS {
        let it = item(s);
        let w = crate::text::words_of(&[&it.data.clip.title, it.data.clip.excerpt.as_deref().unwrap_or("")]);
        for (q, x) in [("robots", ""), ("machine learning,", ""), ("café", "web"), ("", "amazon,police")] {
            let f = Filter::parse(&format!("q={q}&exclude={x}"), &FeedKey::All, Utc::now()).unwrap();
            assert_eq!(
                found(&c, &words_match(&f)).contains(&s.id.to_string()),
                f.matches_words(&w),
                "{q} {x} {}",
                s.id
            );
        }
    }
}

#[test]
fn feed_scope_and_bounds() {
    let c = filled();
    let amazon = || Search::parse("amazon OR police OR robots").unwrap().to_match();
    assert_eq!(found(&c, &amazon()), ["usnews", "crypto", "wired", "vice", "old"]);
    assert_eq!(found(&c, &amazon().within(&FeedKey::Topic("ai".into()))), ["usnews", "vice", "old"]);
    assert_eq!(found(&c, &amazon().within(&FeedKey::Provider("vice.com".into()))), ["vice", "old"]);
    let both = amazon().within(&FeedKey::Topic("ai".into())).within(&FeedKey::Provider("vice.com".into()));
    assert_eq!(found(&c, &both), ["vice", "old"]);
    assert_eq!(found(&c, &amazon().within(&FeedKey::Topic("a".into()))), Vec::<String>::new());
    let since = Bounds { since: Some("2020-06-10T12:00:00Z".parse().unwrap()), ..Bounds::default() };
    assert_eq!(
        matching(&c, &amazon().expression(), "feed", &since, 100).unwrap(),
        ["usnews", "crypto", "wired", "vice"]
    );
    assert_eq!(matching(&c, &amazon().expression(), "feed", &since, 2).unwrap(), ["usnews", "crypto"]);
    assert_eq!(count(&c).unwrap(), ITEMS.len() as i64);
}

#[test]
fn min_quality_reads_the_items_table() {
    let mut store = crate::store::Store::open_in_memory().unwrap();
    let b = store.batch().unwrap();
    let conn: &Connection = &b.tx;
    for (n, s) in ITEMS.iter().enumerate() {
        let mut it = item(s);
        it.data.clip.quality = (n % 2 == 0).then_some(n as i64 * 10);
        // Writing the item indexes it.
        b.put_item(s.id, &it, it.updated, "h", "h").unwrap();
        b.log_enter(&FeedKey::All, s.id, it.updated).unwrap();
    }
    let m = Search::parse("amazon OR robots OR primer").unwrap().to_match().expression();
    let bounds = Bounds { min_quality: Some(20), ..Bounds::default() };
    // Qualities by position: vice 0, wired 20, sify 40, old 60; the others have none.
    assert_eq!(matching(conn, &m, "feed", &bounds, 10).unwrap(), ["wired", "old"]);
}

#[test]
fn newest_first_in_the_feeds_order() {
    let c = index();
    // Five items in one second, put in an order unlike their ids, and one a second later.
    for (id, minutes) in [("c", 0), ("a", 0), ("e", 0), ("b", 0), ("d", 0), ("z", 1)] {
        let s = Spec { id, minutes, title: "same", excerpt: "", body: "", site: ("S", "s.example"), topics: &[] };
        add(&c, &item(&s)).unwrap();
    }
    let m = Search::parse("same").unwrap().to_match().expression();
    assert_eq!(matching(&c, &m, "feed", &Bounds::default(), 10).unwrap(), ["z", "a", "b", "c", "d", "e"]);
    assert_eq!(matching(&c, &m, "feed", &Bounds::default(), 3).unwrap(), ["z", "a", "b"]);
    assert_eq!(matching(&c, &m, "feed", &Bounds::default(), 1).unwrap(), ["z"]);
    assert_eq!(matching(&c, &m, "feed", &Bounds::default(), 0).unwrap(), Vec::<String>::new());
}

#[test]
fn edits_and_deletions() {
    let c = filled();
    let wired = ITEMS.iter().find(|s| s.id == "wired").unwrap();
    // An edit replaces the text: old words go, new ones come.
    let edited = Spec { title: "Drones fold laundry", ..*wired };
    add(&c, &item(&edited)).unwrap();
    assert_eq!(search(&c, "drones"), ["wired"]);
    assert_eq!(search(&c, "title:robots"), ["crypto"]);
    assert_eq!(words(&c, "drones", ""), ["wired"]);
    // A new date moves it in the order.
    let moved = Spec { minutes: 120, ..edited };
    add(&c, &item(&moved)).unwrap();
    assert_eq!(search(&c, "laundry OR rekognition"), ["wired", "usnews", "vice"]);
    assert_eq!(count(&c).unwrap(), ITEMS.len() as i64);
    delete(&c, "wired").unwrap();
    delete(&c, "never-there").unwrap();
    assert_eq!(search(&c, "laundry OR rekognition"), ["usnews", "vice"]);
    assert_eq!(words(&c, "", "nothing"), ["usnews", "crypto", "sify", "dailydot", "vice", "old"]);
    assert_eq!(count(&c).unwrap(), ITEMS.len() as i64 - 1);
    // Far dates keep their order.
    for (id, y) in
        [("early", "0001-01-01T00:00:00Z"), ("late", "9999-12-31T23:59:59Z"), ("pre", "1900-01-01T00:00:00Z")]
    {
        let mut it = item(&Spec { id, ..ITEMS[0] });
        it.data.published = y.parse().unwrap();
        add(&c, &it).unwrap();
    }
    assert_eq!(search(&c, "title:pauses"), ["late", "vice", "pre", "early"]);
}

const VOCAB: [&str; 12] =
    ["robot", "Robots", "café", "cafe", "CAFÉ", "machine", "learning", "ZZ", "été", "near", "x1", "x²"];
const SEPARATORS: [&str; 14] =
    [" ", ", ", "-", "'", ": ", "\"", "’", " — ", " “", "…", "\u{A0}", "\u{E000}", "\u{301} ", "\u{200B}"];

fn text_strategy() -> impl Strategy<Value = String> {
    let sep = proptest::sample::select(&SEPARATORS[..]);
    proptest::collection::vec((proptest::sample::select(&VOCAB[..]), sep), 0..7)
        .prop_map(|v| v.into_iter().map(|(w, s)| format!("{w}{s}")).collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// `q` and `exclude` through the index pick exactly the items `matches_words` passes.
    #[test]
    fn q_and_exclude_agree_with_matches_words(
        docs in proptest::collection::vec((text_strategy(), text_strategy()), 1..8),
        q in proptest::collection::vec(text_strategy(), 0..3),
        x in proptest::collection::vec(text_strategy(), 0..3),
    ) {
        let c = index();
        let items: Vec<Item> = docs.iter().enumerate().map(|(n, (title, excerpt))| {
            let id = format!("i{n}");
            item(&Spec { id: &id, minutes: n as i64, title, excerpt, body: title, site: ("S", "s.example"), topics: &[] })
        }).collect();
        for it in &items {
            add(&c, it).unwrap();
        }
        let enc = |v: &[String]| v.iter().map(|p| url::form_urlencoded::byte_serialize(p.replace(',', " ").as_bytes()).collect::<String>()).collect::<Vec<_>>().join(",");
        let Ok(f) = Filter::parse(&format!("q={}&exclude={}", enc(&q), enc(&x)), &FeedKey::All, Utc::now()) else { return Ok(()) };
        let got = found(&c, &words_match(&f));
        let want: Vec<String> = items.iter().rev().filter(|it| {
            let c = &it.data.clip;
            f.matches_words(&crate::text::words_of(&[&c.title, c.excerpt.as_deref().unwrap_or("")]))
        }).map(|it| it.id.clone()).collect();
        prop_assert_eq!(got, want);
    }
}

#[path = "fts_search_props.rs"]
mod search_props;

#[path = "fts_reader_tests.rs"]
mod reader_tests;

/// The setting of `automerge` in the index's config table (None: never set).
fn automerge(c: &Connection) -> Option<i64> {
    c.query_row("SELECT v FROM search_index_config WHERE k='automerge'", [], |r| r.get(0)).optional().unwrap()
}

#[test]
fn re_indexing_with_merges_held_answers_the_same_and_puts_the_setting_back() {
    // Two stores with the same 400 items, small segments (a 4 KiB pending hash) so that many are
    // written; both re-index every item under new topics, one with merges held.
    let make = |c: &Connection, topic: &'static str| add_stories(c, 400, topic);
    let (held, plain) = (index(), index());
    for c in [&held, &plain] {
        c.execute("INSERT INTO search_index(search_index, rank) VALUES('hashsize', 4096)", []).unwrap();
        make(c, "robots");
    }
    held.execute("INSERT INTO search_index(search_index, rank) VALUES('automerge', 8)", []).unwrap();
    // (A store merges when idle since `merge_when_idle`; this one merges on writes, FTS5's way.)
    plain.execute("INSERT INTO search_index(search_index, rank) VALUES('automerge', ?1)", [AUTOMERGE_DEFAULT]).unwrap();
    assert_eq!((automerge(&held), automerge(&plain)), (Some(8), Some(AUTOMERGE_DEFAULT)));
    let during = merges_held(&held, || {
        make(&held, "vision");
        Ok(automerge(&held))
    })
    .unwrap();
    make(&plain, "vision");
    assert_eq!(during, Some(0), "merging is off while the items are re-indexed");
    assert_eq!(automerge(&held), Some(8), "the store's own setting comes back");
    for q in ["topic:vision", "topic:robots", "common", "word3", "story word5", "\"story 17\""] {
        let (a, b) = (search(&held, q), search(&plain, q));
        assert_eq!(a, b, "{q}");
        assert_eq!(a.is_empty(), q == "topic:robots", "{q}: {a:?}");
    }
    assert_eq!(search(&held, "topic:vision").len(), 100, "the newest 100 of 400");
    // A store merging on writes gets FTS5's default back.
    merges_held(&plain, || Ok(())).unwrap();
    assert_eq!(automerge(&plain), Some(AUTOMERGE_DEFAULT));
    // A re-index that fails puts the setting back too (here outside any transaction, so
    // nothing would roll it back).
    let failed = merges_held(&held, || -> Result<()> { anyhow::bail!("the re-index failed") });
    assert_eq!(failed.unwrap_err().to_string(), "the re-index failed");
    assert_eq!(automerge(&held), Some(8), "the setting is back after a failed re-index");
    // A store whose merging is off already (every store the daemon opens, `merge_when_idle`):
    // nothing is written for the setting, which would make FTS5 write out what it holds.
    held.execute("INSERT INTO search_index(search_index, rank) VALUES('automerge', 0)", []).unwrap();
    let before = held.total_changes();
    let during = merges_held(&held, || Ok(automerge(&held))).unwrap();
    assert_eq!((during, automerge(&held), held.total_changes()), (Some(0), Some(0), before));
}

#[test]
fn merging_when_idle_runs_out_of_work_and_answers_as_merging_on_writes() {
    // The same 400 items in small segments (a 4 KiB pending hash), written with the index's
    // merging on writes (FTS5's default) and with it off, merged afterwards a step at a time.
    let (idle, inline) = (index(), index());
    for c in [&idle, &inline] {
        c.execute("INSERT INTO search_index(search_index, rank) VALUES('hashsize', 4096)", []).unwrap();
    }
    merge_when_idle(&idle).unwrap();
    assert_eq!(automerge(&idle), Some(0), "a store opened merges when idle");
    inline
        .execute("INSERT INTO search_index(search_index, rank) VALUES('automerge', ?1)", [AUTOMERGE_DEFAULT])
        .unwrap();
    for c in [&idle, &inline] {
        add_stories(c, 400, "robots");
    }
    let rows =
        |c: &Connection| -> i64 { c.query_row("SELECT count(*) FROM search_index_data", [], |r| r.get(0)).unwrap() };
    let unmerged = rows(&idle);
    let steps = (0..10_000).take_while(|_| merge_step(&idle, 64).unwrap()).count();
    assert!(steps > 0 && steps < 10_000, "{steps} steps");
    assert!(!merge_step(&idle, 64).unwrap(), "no work left once a step finds none");
    assert!(rows(&idle) < unmerged, "merged: {} rows of segments from {unmerged}", rows(&idle));
    for q in ["topic:robots", "common", "word3", "story word5", "\"story 17\"", "nothing"] {
        let (a, b) = (search(&idle, q), search(&inline, q));
        assert_eq!(a, b, "{q}");
        assert_eq!(a.is_empty(), q == "nothing", "{q}: {a:?}");
    }
}

/// Indexes `n` items "story I wordJ common" under `topic`, a minute apart, ids `item-000`….
fn add_stories(c: &Connection, n: usize, topic: &str) {
    for i in 0..n {
        let (id, title) = (format!("item-{i:03}"), format!("story {i} word{} common", i % 7));
        let s = Spec {
            id: &id,
            minutes: i as i64,
            title: &title,
            excerpt: "",
            body: "",
            site: ("S", "s.example"),
            topics: &[topic],
        };
        add(c, &item(&s)).unwrap();
    }
}
