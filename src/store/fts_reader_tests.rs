//! The index as the views use it, through a real store and its [`Reader`]: `q` and `exclude`
//! answered from the index give exactly what the scan of the items gave (the same items, in the
//! same order) on a varied set, with every other filter and on every kind of feed; the feed log
//! decides what a search on a feed may find; and the backfill of a store made before the index
//! fills it in chunks, answers the same, and marks it complete.

use super::*;
use crate::budget::Budget;
use crate::config::FeedLog;
use crate::filter::Filter;
use crate::store::{Reader, Store};

/// Words with accents, case, digits and symbols; separators of every kind the tokenizer and
/// `text::words` might disagree on.
const VOCAB: [&str; 16] = [
    "robot", "Robots", "café", "Cafe", "CAFÉ", "machine", "learning", "été", "ete", "x²", "naïve", "NEAR", "re",
    "invent", "web3", "Zürich",
];
const SEPARATORS: [&str; 12] = [" ", ", ", "-", "'", ": ", "’s ", " — ", " “", "…", "\u{A0}", "/", ". "];
const TOPICS: [&str; 3] = ["ai", "machine-learning", "robotics"];
const SITES: [(&str, &str); 3] = [("Robot News", "robot.example"), ("Café Daily", "cafe.example"), ("S", "s.example")];

/// A small deterministic generator (xorshift), so the set is the same on every run.
struct Gen(u64);

impl Gen {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn text(&mut self, words: usize) -> String {
        (0..words)
            .map(|_| format!("{}{}", VOCAB[self.below(VOCAB.len())], SEPARATORS[self.below(SEPARATORS.len())]))
            .collect()
    }
}

/// `n` items: titles and excerpts from the vocabulary, some published in the same second (ties
/// are ordered by id), qualities on some, one to two topics, one of three news sites.
fn varied(n: usize) -> Vec<Item> {
    let mut g = Gen(0x5eed_1234_abcd_0001);
    let base: DateTime<Utc> = "2021-03-04T05:06:07Z".parse().unwrap();
    (0..n)
        .map(|i| {
            let mut clip =
                crate::clip::parse(b"---\ntitle: x\n---\n", crate::clip::Limits::default()).unwrap().clipping;
            let words = 1 + g.below(6);
            clip.title = g.text(words);
            clip.excerpt = if g.below(4) > 0 {
                let words = g.below(8);
                Some(g.text(words))
            } else {
                None
            };
            clip.content_html = Some(format!("<p>{}</p>", html_escape::encode_text(&g.text(3))));
            clip.quality = (g.below(3) > 0).then(|| g.below(100) as i64);
            let (name, domain) = SITES[g.below(SITES.len())];
            clip.provider =
                Some(crate::clip::Provider { name: name.into(), domain: Some(domain.into()), images: vec![] });
            let topics = TOPICS
                .iter()
                .filter(|_| g.below(2) == 0)
                .map(|t| crate::item::TopicRef { slug: t.to_string(), name: t.to_string() })
                .collect();
            let published = base + chrono::Duration::seconds((i / 3) as i64 * 3600);
            let data = crate::item::ItemData { clip, topics, published, dated: true, also: Vec::new() };
            Item { id: format!("item-{:03}", (i * 37) % n), updated: published, data }
        })
        .collect()
}

/// A store at `path` holding `items`, each with a slot in every feed it belongs to.
fn store_with(path: &std::path::Path, items: &[Item]) -> Store {
    let mut store = Store::open(path).unwrap();
    let b = store.batch().unwrap();
    for it in items {
        b.put_item(&it.id, it, it.updated, "h", "h").unwrap();
        let mut feeds = vec![FeedKey::All];
        feeds.extend(it.data.topics.iter().map(|t| FeedKey::Topic(t.slug.clone())));
        feeds.extend(it.data.provider_domain().map(|d| FeedKey::Provider(d.to_string())));
        for f in feeds {
            b.log_enter(&f, &it.id, it.updated).unwrap();
        }
    }
    b.commit().unwrap();
    store
}

fn ids(items: Vec<Item>) -> Vec<String> {
    items.into_iter().map(|i| i.id).collect()
}

/// The filters compared: single words and phrases of the vocabulary in `q` and in `exclude`,
/// pairs of them, and each combined with the other filters.
fn queries() -> Vec<String> {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let mut phrases: Vec<String> = VOCAB.iter().map(|w| w.to_string()).collect();
    phrases.extend(
        ["machine learning,", "learning machine,", "robot café", "Robots,cafe", "re:invent", "x²,ete"]
            .map(String::from),
    );
    let mut out = Vec::new();
    for (i, p) in phrases.iter().enumerate() {
        out.push(format!("q={}", enc(p)));
        out.push(format!("exclude={}", enc(p)));
        let other = &phrases[(i * 7 + 3) % phrases.len()];
        out.push(format!("q={}&exclude={}", enc(p), enc(other)));
        out.push(format!("q={}&q={}&limit=7", enc(p), enc(other)));
    }
    let extra = ["limit=3", "min_quality=40", "since=2021-03-10T00:00:00Z", "provider=cafe.example", "topic=robotics"];
    for (i, e) in extra.iter().enumerate() {
        out.push(format!("q={}&{e}", enc(&phrases[i * 3])));
        out.push(format!("exclude={}&{e}", enc(&phrases[i * 3 + 1])));
    }
    out
}

#[test]
fn q_and_exclude_from_the_index_equal_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let items = varied(240);
    let _store = store_with(&path, &items);
    let reader = Reader::open(&path, 1).unwrap();
    let budget = Budget::unlimited();
    let now = Utc::now();
    let feeds = [FeedKey::All, FeedKey::Topic("machine-learning".into()), FeedKey::Provider("cafe.example".into())];
    let (mut compared, mut nonempty) = (0, 0);
    for feed in &feeds {
        for q in queries() {
            let Ok(f) = Filter::parse(&q, feed, now) else { continue };
            let limit = f.limit.unwrap_or(25);
            let scan = ids(reader.filtered(&FeedLog::of(feed), &f, limit, &budget).unwrap());
            let index = ids(reader.searched(&FeedLog::of(feed), &f, limit, &budget).unwrap());
            assert_eq!(index, scan, "{} ?{q}", feed.path_stem());
            compared += 1;
            nonempty += usize::from(!scan.is_empty());
        }
    }
    // The set is varied enough that most filters find something, and not everything.
    assert!(compared > 250 && nonempty * 10 > compared * 6, "{nonempty} of {compared}");
}

#[test]
fn a_search_finds_only_what_the_feeds_log_holds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let items = varied(30);
    let mut store = store_with(&path, &items);
    // A private clipping: indexed like any item, but in the log of its private topic alone.
    let mut secret = items[0].clone();
    secret.id = "secret".into();
    secret.data.clip.title = "Quarterly zebra forecast".into();
    secret.data.topics = vec![crate::item::TopicRef { slug: "private-desk".into(), name: "Private".into() }];
    let b = store.batch().unwrap();
    b.put_item("secret", &secret, secret.updated, "h", "h").unwrap();
    b.log_enter(&FeedKey::Topic("private-desk".into()), "secret", secret.updated).unwrap();
    b.commit().unwrap();
    let reader = Reader::open(&path, 1).unwrap();
    let find = |feed: FeedKey, q: &str| {
        let f = Filter::parse(q, &feed, Utc::now()).unwrap();
        ids(reader.searched(&FeedLog::of(&feed), &f, 10, &Budget::unlimited()).unwrap())
    };
    for q in ["search=zebra", "search=quarterly+zebra", "q=zebra", "search=site:robot.example+zebra"] {
        assert!(find(FeedKey::All, q).is_empty(), "{q}");
        assert!(find(FeedKey::Provider(secret.data.provider_domain().unwrap().into()), q).is_empty(), "{q}");
    }
    assert_eq!(find(FeedKey::Topic("private-desk".into()), "search=zebra"), ["secret"]);
    assert_eq!(find(FeedKey::Topic("private-desk".into()), "q=zebra"), ["secret"]);
    // A closed slot hides it from its own feed too; a tombstone takes it out of the index.
    let b = store.batch().unwrap();
    b.log_leave(&FeedKey::Topic("private-desk".into()), "secret", Utc::now()).unwrap();
    b.commit().unwrap();
    assert!(find(FeedKey::Topic("private-desk".into()), "search=zebra").is_empty());
    let b = store.batch().unwrap();
    b.tombstone_item("secret", Utc::now()).unwrap();
    assert!(
        b.tx.query_row("SELECT count(*) FROM search_docs WHERE id='secret'", [], |r| r.get::<_, i64>(0)).unwrap() == 0
    );
}

#[test]
fn an_older_store_is_filled_in_chunks_and_answers_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let items = varied(50);
    let store = store_with(&path, &items);
    let reader = Reader::open(&path, 1).unwrap();
    let f = Filter::parse("search=robot+OR+cafe&limit=40", &FeedKey::All, Utc::now()).unwrap();
    let q = Filter::parse("q=robots&limit=40", &FeedKey::All, Utc::now()).unwrap();
    let want = ids(reader.searched(&FeedLog::of(&FeedKey::All), &f, 40, &Budget::unlimited()).unwrap());
    assert!(want.len() > 10, "{want:?}");
    drop(store);
    // As a store made before the index: its items, no index, no mark.
    let raw = Connection::open(&path).unwrap();
    raw.execute_batch("DROP TABLE search_index; DROP TABLE search_docs; DELETE FROM meta WHERE key LIKE '%search%';")
        .unwrap();
    drop(raw);
    let mut store = Store::open(&path).unwrap();
    let b = store.batch().unwrap();
    assert!(!b.search_ready().unwrap());
    assert_eq!(count(&b.tx).unwrap(), 0);
    drop(b);
    let reader = Reader::open(&path, 1).unwrap();
    // Meanwhile `search=` is refused as not ready, and `q` is answered by the scan.
    let err = reader.searched(&FeedLog::of(&FeedKey::All), &f, 40, &Budget::unlimited()).unwrap_err();
    assert!(err.downcast_ref::<crate::search::NotReady>().is_some(), "{err:#}");
    let scan = ids(reader.filtered(&FeedLog::of(&FeedKey::All), &q, 40, &Budget::unlimited()).unwrap());
    assert_eq!(ids(reader.searched(&FeedLog::of(&FeedKey::All), &q, 40, &Budget::unlimited()).unwrap()), scan);
    let mut rounds = 0;
    loop {
        let b = store.batch().unwrap();
        let (n, done) = b.backfill_search(8).unwrap();
        b.commit().unwrap();
        rounds += 1;
        assert!(n <= 8);
        if done {
            break;
        }
        assert!(rounds < 20, "the backfill ends");
    }
    assert_eq!(rounds, 50 / 8 + 1);
    let b = store.batch().unwrap();
    assert!(b.search_ready().unwrap());
    assert_eq!(count(&b.tx).unwrap(), 50);
    assert_eq!(b.backfill_search(8).unwrap(), (0, true), "once done, nothing more");
    drop(b);
    assert_eq!(ids(reader.searched(&FeedLog::of(&FeedKey::All), &f, 40, &Budget::unlimited()).unwrap()), want);
    assert_eq!(ids(reader.searched(&FeedLog::of(&FeedKey::All), &q, 40, &Budget::unlimited()).unwrap()), scan);
}

#[test]
fn a_new_store_needs_no_backfill() {
    let mut store = Store::open_in_memory().unwrap();
    let b = store.batch().unwrap();
    assert!(b.search_ready().unwrap());
    assert_eq!(b.backfill_search(10).unwrap(), (0, true));
}
