//! A cold build with its per-row upkeep set aside (`store/bulk.rs`) leaves the store the
//! per-row path leaves: the same items, feed logs in the same order, stories and their ids,
//! redirects, story logs, coverage, story keys and search answers, compared row by row. On the
//! seeds and the corpus (`../shared`, read in place) in one transaction, and on generated
//! clippings that tell related events in a few wordings, with a private topic and a private
//! news site, large enough for the chunked path; then a cold build cut short by a panic, which
//! the next start completes to the same store.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::Ingest;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::site::Site;
use crate::store::{COLD_OFF, Store, dump_for_test};
use crate::systemd::Heartbeat;

const PRIVATE: &str =
    "topics:\n  - name: Internal\n    private: true\nproviders:\n  - domain: secret.example\n    private: true\n";

/// Words the search answers are compared on.
const WORDS: [&str; 9] = ["police", "facial", "amazon", "model", "chip", "robot", "ban", "internal", "now"];

fn config(roots: &[PathBuf], store: &Path, extra: &str) -> Arc<Config> {
    let roots: Vec<String> = roots.iter().map(|r| format!("{:?}", r.display().to_string())).collect();
    let text = format!(
        "listen: 127.0.0.1:0\nbase_url: http://feeds.test/\nclippings: [{}]\nstore: {:?}\n{extra}",
        roots.join(", "),
        store.display().to_string()
    );
    Arc::new(Config::parse(&text, Path::new("/")).expect("test config"))
}

fn start(cfg: &Arc<Config>, store: &Path) -> Ingest {
    let site = Arc::new(ArcSwap::from_pointee(Site::empty()));
    let store = Store::open(store).unwrap();
    Ingest::start(cfg.clone(), store, site, Arc::new(Metrics::default()), Heartbeat::new("writer")).unwrap()
}

/// A cold build of `roots` into a fresh store, with the cold path or (`off`) without; what it
/// leaves, row by row.
fn built(roots: &[PathBuf], extra: &str, off: bool) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    COLD_OFF.set(off);
    super::TEST_NOW.set(chrono::DateTime::from_timestamp(1_767_000_000, 0));
    let mut ingest = start(&config(roots, &path, extra), &path);
    ingest.reconcile().unwrap();
    COLD_OFF.set(false);
    super::TEST_NOW.set(None);
    assert!(!ingest.store.in_cold(), "the build ended");
    dump_for_test(&mut ingest.store, &WORDS)
}

/// The rows of the dump's query containing `from`.
fn section<'a>(rows: &'a [String], from: &str) -> Vec<&'a String> {
    let start = rows.iter().position(|l| l.starts_with("-- ") && l.contains(from)).expect("section") + 1;
    rows[start..].iter().take_while(|l| !l.starts_with("-- ")).collect()
}

/// The rows of both builds, with the first line that differs named.
fn same(cold: &[String], per_row: &[String]) {
    if let Some(i) = (0..cold.len().max(per_row.len())).find(|&i| cold.get(i) != per_row.get(i)) {
        let context: Vec<&String> = cold[..i.min(cold.len())].iter().rev().take(3).collect();
        panic!("row {i} differs: cold {:?} against per-row {:?} (after {context:?})", cold.get(i), per_row.get(i));
    }
}

#[test]
fn a_cold_build_of_the_seeds_and_corpus_is_the_per_row_build() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
    if !shared.join("seeds").is_dir() || !shared.join("corpus").is_dir() {
        eprintln!("NOTICE: {} has no seeds or corpus; skipping", shared.display());
        return;
    }
    let roots = [shared.join("seeds"), shared.join("corpus")];
    let cold = built(&roots, PRIVATE, false);
    let per_row = built(&roots, PRIVATE, true);
    assert!(cold.len() > 2000, "the build wrote rows: {}", cold.len());
    same(&cold, &per_row);
}

/// `n` clippings telling a few dozen events, each in several wordings by several sites over a
/// few days; some in a private topic, some from a private site; a few without a date.
fn generate(root: &Path, n: usize) {
    generate_edited(root, n, |t| t.to_string());
}

/// [`generate`], each file's text as `edit` makes it.
fn generate_edited(root: &Path, n: usize, edit: impl Fn(&str) -> String) {
    std::fs::create_dir_all(root).unwrap();
    let subjects = ["robot", "chip", "model", "police ban", "facial scan", "amazon drone", "battery", "satellite"];
    let verbs = ["unveils", "delays", "cuts the price of", "recalls", "tests"];
    let sites = ["alpha.example", "beta.example", "gamma.example", "secret.example", "delta.example"];
    for i in 0..n {
        let event = i % 37;
        let subject = subjects[event % subjects.len()];
        let verb = verbs[(event / subjects.len()) % verbs.len()];
        let site = sites[(i * 7 + event) % sites.len()];
        let day = 1 + (event * 3 + i % 4) % 27;
        let date = if i % 41 == 5 {
            String::new()
        } else {
            format!("publishedDateTime: 2025-03-{day:02}T{:02}:00:00Z\n", i % 24)
        };
        let topics = if i % 11 == 0 { "[Internal, Tech]" } else { "[Tech]" };
        let text = format!(
            "---\ntitle: \"Maker {event} {verb} its {subject} ({})\"\n{date}webUrl: https://{site}/n/{i}\nprovider:\n  name: {site}\n  domain: {site}\ntopics: {topics}\nquality: {}\n---\nThe maker {event} {verb} its {subject}, said the report number {i}.\n",
            ["today", "says report", "again", "after a review"][i % 4],
            40 + i % 50,
        );
        std::fs::write(root.join(format!("c{i:05}.md")), edit(&text)).unwrap();
    }
}

#[test]
fn a_cold_build_in_chunks_is_the_per_row_build() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("clips");
    // Past one transaction's worth of items (`CHUNK`), so the build is chunked: files recorded
    // a chunk at a time, items refreshed in two transactions.
    generate(&root, super::apply::CHUNK + 100);
    let cold = built(std::slice::from_ref(&root), PRIVATE, false);
    let per_row = built(std::slice::from_ref(&root), PRIVATE, true);
    // The set exercises what the build sets aside: stories of several members (in more than
    // one class), story-log slots closed by a later chunk, coverage.
    let stories = section(&cold, "FROM story_items");
    let distinct: std::collections::BTreeSet<&str> = stories.iter().map(|l| l.split(" | ").nth(1).unwrap()).collect();
    assert!(distinct.len() * 4 < stories.len(), "{} stories of {} items", distinct.len(), stories.len());
    assert!(section(&cold, "FROM story_log").iter().any(|l| l.ends_with("Integer(0)")), "a slot closed");
    assert!(section(&cold, "FROM story_cover").len() > 2 * stories.len(), "coverage in several feeds");
    same(&cold, &per_row);
}

/// [`generate`] with the dates spread over half a year, oldest first but for a few: one far
/// after the rest, one far before, a few a month behind their neighbours; and pairs of files
/// naming one article, the second dated months later (an item whose date changes between
/// files).
fn generate_spread(root: &Path, n: usize) {
    generate_edited(root, n, |text| {
        let i: i64 = text.split("report number ").nth(1).and_then(|t| t.split('.').next()).unwrap().parse().unwrap();
        let at =
            |day: i64| chrono::DateTime::from_timestamp(1_735_689_600 + day * 86_400 + (i % 24) * 3600, 0).unwrap();
        let when = match i {
            777 => at(2_400),
            778 => at(-9_000),
            _ if i % 97 == 14 => at(i / 12 + 100),
            _ if i % 150 == 149 => at(i / 12 - 30),
            _ => at(i / 12),
        };
        let mut out = text.to_string();
        if let Some(start) = out.find("publishedDateTime: ") {
            let end = start + out[start..].find('\n').unwrap();
            out.replace_range(start..end, &format!("publishedDateTime: {}", when.format("%Y-%m-%dT%H:%M:%SZ")));
        }
        if i % 97 == 13 || i % 97 == 14 {
            let start = out.find("webUrl: ").unwrap();
            let end = start + out[start..].find('\n').unwrap();
            out.replace_range(start..end, &format!("webUrl: https://alpha.example/shared/{}", i / 97));
        }
        out
    });
}

/// A cold build whose dates outrun the grouping's window many times over, so its key mirror
/// lets go of the days left behind (`store/bulk.rs`), leaves what the per-row build leaves.
#[test]
fn a_cold_build_over_months_is_the_per_row_build() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("clips");
    generate_spread(&root, super::apply::CHUNK + 100);
    let cold = built(std::slice::from_ref(&root), PRIVATE, false);
    let per_row = built(std::slice::from_ref(&root), PRIVATE, true);
    let stories = section(&cold, "FROM story_items");
    let distinct: std::collections::BTreeSet<&str> = stories.iter().map(|l| l.split(" | ").nth(1).unwrap()).collect();
    assert!(distinct.len() * 2 < stories.len(), "{} stories of {} items", distinct.len(), stories.len());
    let days: std::collections::BTreeSet<&str> =
        section(&cold, "FROM story_keys").iter().filter_map(|l| l.split(" | ").nth(1)).collect();
    assert!(days.len() > 150, "keys over {} days", days.len());
    same(&cold, &per_row);
}

/// The story logs a cold build leaves say what each feed shows: filling every feed's log again
/// from its members (`story_log::fill`, which closes and opens slots where they differ)
/// changes nothing. A cold build puts every item at one time, so each story's merges share it;
/// a put notes the stories its own merge retired, and those alone.
#[test]
fn a_cold_build_leaves_each_story_log_as_its_feed_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("clips");
    generate(&root, super::apply::CHUNK + 100);
    let path = dir.path().join("store.db");
    super::TEST_NOW.set(chrono::DateTime::from_timestamp(1_767_000_000, 0));
    let mut ingest = start(&config(std::slice::from_ref(&root), &path, PRIVATE), &path);
    ingest.reconcile().unwrap();
    super::TEST_NOW.set(None);
    let redirects = section(&dump_for_test(&mut ingest.store, &[]), "FROM story_redirects").len();
    assert!(redirects > 10, "stories merged during the build: {redirects}");
    let b = ingest.store.batch().unwrap();
    let feeds = b.logged_feeds().unwrap();
    assert!(feeds.len() > 5, "{feeds:?}");
    let t = chrono::DateTime::from_timestamp(1_767_000_050, 0).unwrap();
    for feed in &feeds {
        assert!(!super::story_log::fill(&b, feed, t).unwrap(), "the story log of {feed} was out of step");
    }
}

/// A cold build of `root` cut short after its first refresh transaction (a crash: what was
/// committed stays, nothing else runs), then started again and completed; what it leaves.
fn crashed_then_completed(root: &Path, off: bool) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let cfg = config(&[root.to_path_buf()], &path, PRIVATE);
    COLD_OFF.set(off);
    super::TEST_NOW.set(chrono::DateTime::from_timestamp(1_767_000_000, 0));
    {
        let mut ingest = start(&cfg, &path);
        super::bulk::CRASH_AFTER.set(Some(1));
        let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ingest.reconcile()));
        assert!(crashed.is_err(), "the build was cut short");
        super::bulk::CRASH_AFTER.set(None);
    }
    let mut ingest = start(&cfg, &path);
    assert!(ingest.core.cold, "a build cut short leaves the store cold");
    ingest.reconcile().unwrap();
    COLD_OFF.set(false);
    super::TEST_NOW.set(None);
    dump_for_test(&mut ingest.store, &WORDS)
}

#[test]
fn a_cold_build_cut_short_is_completed_by_the_next_start_as_the_per_row_build_is() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("clips");
    generate(&root, super::apply::CHUNK + 100);
    let cold = crashed_then_completed(&root, false);
    let per_row = crashed_then_completed(&root, true);
    assert!(section(&cold, "FROM story_sums").len() > 100, "coverage filled");
    same(&cold, &per_row);
    // And it is the store an uninterrupted build leaves, but for the order the crash changed.
    let whole = built(std::slice::from_ref(&root), PRIVATE, false);
    assert_eq!(section(&cold, "FROM story_items").len(), section(&whole, "FROM story_items").len());
}

/// A store built from `root`, then a large change to it (files removed, edited, written again
/// as they were, added) reconciled, with the items of that change made side by side
/// (`ingest/cold.rs`) or (`off`) one by one; what it leaves.
fn changed_in_bulk(root: &Path, off: bool) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let cfg = config(&[root.to_path_buf()], &path, PRIVATE);
    let n = 600;
    std::fs::remove_dir_all(root).ok();
    generate(root, n);
    super::TEST_NOW.set(chrono::DateTime::from_timestamp(1_767_000_000, 0));
    COLD_OFF.set(off);
    let mut ingest = start(&cfg, &path);
    ingest.reconcile().unwrap();
    let later = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_767_000_100);
    // Every file written again edited, in a folder aside, taken from there for the edited ones.
    let edited = root.with_extension("edited");
    generate_edited(&edited, n, |t| t.replace("title: \"Maker", "title: \"Maker now"));
    for i in 0..n {
        let name = format!("c{i:05}.md");
        let file = root.join(&name);
        match i % 5 {
            0 => std::fs::remove_file(&file).unwrap(),
            1 => std::fs::rename(edited.join(&name), &file).unwrap(),
            2 => std::fs::File::options().write(true).open(&file).unwrap().set_modified(later).unwrap(),
            _ => {}
        }
    }
    std::fs::remove_dir_all(&edited).unwrap();
    // New files naming the first 150 articles again (two files, one item; a removed one back).
    let extra = root.join("more");
    generate(&extra, 150);
    super::TEST_NOW.set(chrono::DateTime::from_timestamp(1_767_000_200, 0));
    ingest.reconcile().unwrap();
    COLD_OFF.set(false);
    super::TEST_NOW.set(None);
    dump_for_test(&mut ingest.store, &WORDS)
}

#[test]
fn a_large_change_made_side_by_side_is_the_one_by_one_change() {
    let dir = tempfile::tempdir().unwrap();
    let side = changed_in_bulk(&dir.path().join("a"), false);
    let one = changed_in_bulk(&dir.path().join("b"), true);
    // The change tombstoned items, edited others and merged others from two files.
    let items = section(&side, "FROM items ORDER BY 1");
    assert_eq!(items.len(), 600, "every item ever seen has a row");
    assert!(section(&side, "FROM feed_log").iter().filter(|l| l.ends_with("Integer(0)")).count() > 100, "slots closed");
    assert!(section(&side, "search now").len() > 50, "edited titles indexed");
    same(&side, &one);
}

/// A store written before items kept what their other files bring (`ItemData::also`): an
/// article filed by a public and by a private news site was public. The first start after merges
/// such items again, once, and the article is private (in the private site's feed only).
#[test]
fn an_article_of_several_files_from_an_older_store_is_merged_again_once() {
    let dir = tempfile::tempdir().unwrap();
    let (root, path) = (dir.path().join("clips"), dir.path().join("store.db"));
    std::fs::create_dir_all(&root).unwrap();
    let file = |name: &str, day: u32, domain: &str| {
        let text = format!(
            "---\ntitle: T {name}\npublishedDateTime: 2025-04-{day:02}T10:00:00Z\nwebUrl: https://news.example/one\ntopics: [Drones]\nprovider: {{name: N, domain: {domain}}}\n---\nBody.\n"
        );
        std::fs::write(root.join(name), text).unwrap();
    };
    file("a.md", 1, "pub.example");
    file("b.md", 2, "secret.example");
    let live = |ingest: &mut Ingest| {
        let b = ingest.store.batch().unwrap();
        let counts = b.live_counts().unwrap();
        let mut feeds: Vec<String> = counts.into_iter().filter(|c| c.1 > 0).map(|c| c.0).collect();
        feeds.sort();
        feeds
    };
    // Written as an older clipfeed did: the item public, its record without `also`.
    let public = config(std::slice::from_ref(&root), &path, "");
    let mut ingest = start(&public, &path);
    ingest.reconcile().unwrap();
    assert_eq!(live(&mut ingest), ["feed", "providers/pub.example", "topics/drones"]);
    {
        let b = ingest.store.batch().unwrap();
        let key = "url:https://news.example/one";
        let state = b.item_state(key).unwrap().unwrap();
        let mut item = b.slot_items(&crate::feed::FeedKey::All, 0, 1).unwrap().remove(0);
        assert_eq!(item.id, state.id);
        assert_eq!(item.data.also_domains().collect::<Vec<_>>(), ["secret.example"]);
        item.data.also.clear();
        b.put_item(key, &item, state.first_seen, &item.data.hash(), &state.shown).unwrap();
        b.clear_meta(super::apply::MERGED_ALSO).unwrap();
        b.commit().unwrap();
    }
    drop(ingest);
    // The private site configured: the remap alone cannot see the second file; the merge can.
    let private = config(std::slice::from_ref(&root), &path, PRIVATE);
    let mut ingest = start(&private, &path);
    assert_eq!(live(&mut ingest), ["providers/secret.example"]);
    let b = ingest.store.batch().unwrap();
    assert_eq!(b.meta(super::apply::MERGED_ALSO).unwrap().as_deref(), Some("1"), "done once");
}
