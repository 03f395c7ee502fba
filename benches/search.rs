//! The full-text index at scale: query cost (p50/p99) of a fixed list of searches, including the
//! worst cases (a word in about half of all clippings, the most common word, 20 terms, the
//! widest three-letter prefixes, a small feed's scope), the cost of indexing one more item in
//! its own transaction, and the index's size on disk per item.
//!
//!     cargo bench --bench search
//!
//! `CLIPFEED_BENCH_SEARCH_N` sets how many clippings are indexed (default 100000, from
//! `../shared/bench/gen_clippings.py` when it runs, else the built-in generator);
//! `CLIPFEED_BENCH_SEARCH_ITERS` how often each query runs (default 200). The words are chosen
//! from the index's own vocabulary by their document frequency, so the list keeps its meaning
//! whatever the generator writes. Its own timing loop, not criterion: the figures wanted are
//! percentiles over single queries.

mod support;

use std::time::{Duration, Instant};

use clipfeed::searching::fts;
use clipfeed::searching::{Filter, Match, Search, words_match};
use clipfeed::{FeedKey, Item};
use rusqlite::Connection;

const LIMIT: usize = 50;
/// Items indexed one by one, each in its own transaction, after the bulk.
const ONE_BY_ONE: usize = 500;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn open(path: &std::path::Path) -> Connection {
    let c = Connection::open(path).expect("open");
    let _: String = c.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).expect("wal");
    c.pragma_update(None, "synchronous", "NORMAL").expect("pragma");
    c
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn micros(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

/// Gives an item an open slot in the log of each feed it is in (the all-feed, its topics, its
/// news site), as the writer does for a public clipping: a search reads only what a feed's log
/// holds.
fn enter(tx: &Connection, it: &Item) {
    let mut feeds = vec![FeedKey::All];
    feeds.extend(it.data.topics.iter().map(|t| FeedKey::Topic(t.slug.clone())));
    feeds.extend(it.data.provider_domain().map(|d| FeedKey::Provider(d.to_string())));
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO feed_log(feed, pos, id, entered_at)
             SELECT ?1, (SELECT COALESCE(MAX(pos) + 1, 0) FROM feed_log WHERE feed = ?1), ?2, 0",
        )
        .expect("log");
    for f in feeds {
        stmt.execute(rusqlite::params![f.path_stem(), it.id]).expect("log");
    }
}

/// Builds the index: all but the last [`ONE_BY_ONE`] items in transactions of 1000, then those
/// one per transaction, as the writer does for a new file. Prints both costs (the feed log's
/// rows are written with the index, as the writer does).
fn build(conn: &mut Connection, items: &[Item]) {
    let (bulk, single) = items.split_at(items.len().saturating_sub(ONE_BY_ONE));
    let started = Instant::now();
    for chunk in bulk.chunks(1000) {
        let tx = conn.transaction().expect("tx");
        for it in chunk {
            fts::put(&tx, it).expect("put");
            enter(&tx, it);
        }
        tx.commit().expect("commit");
    }
    println!("bulk: {} items indexed in {:.1} s", bulk.len(), started.elapsed().as_secs_f64());
    // The store checkpoints on a thread of its own, not in a commit.
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA wal_autocheckpoint=0").expect("checkpoint");
    let mut times: Vec<Duration> = single
        .iter()
        .map(|it| {
            let t = Instant::now();
            let tx = conn.transaction().expect("tx");
            fts::put(&tx, it).expect("put");
            enter(&tx, it);
            tx.commit().expect("commit");
            t.elapsed()
        })
        .collect();
    times.sort();
    if !times.is_empty() {
        println!(
            "one more item (put + commit, {} times): p50 {} us, p99 {} us",
            times.len(),
            micros(percentile(&times, 0.5)),
            micros(percentile(&times, 0.99))
        );
    }
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").expect("checkpoint");
}

/// Bytes on disk per table of the index, and per item.
fn sizes(conn: &Connection, n: usize, clip_bytes: u64) {
    let mut stmt = conn
        .prepare("SELECT name, sum(pgsize) FROM dbstat WHERE name LIKE 'search%' OR name LIKE 'sqlite_autoindex_search%' GROUP BY name ORDER BY name")
        .expect("dbstat");
    let rows: Vec<(String, i64)> =
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).expect("dbstat").map(|r| r.expect("row")).collect();
    let total: i64 = rows.iter().map(|r| r.1).sum();
    for (name, bytes) in &rows {
        println!("size: {name:<40} {:>8.1} MiB {:>6.0} B/item", *bytes as f64 / 1048576.0, *bytes as f64 / n as f64);
    }
    println!(
        "size: total {:.1} MiB, {:.0} B/item; the clippings: {:.1} MiB, {:.0} B/item (index = {:.0}% of them)",
        total as f64 / 1048576.0,
        total as f64 / n as f64,
        clip_bytes as f64 / 1048576.0,
        clip_bytes as f64 / n as f64,
        100.0 * total as f64 / clip_bytes as f64
    );
    let mut stmt =
        conn.prepare("SELECT col, sum(cnt) FROM temp.vocab_col GROUP BY col ORDER BY col").expect("vocab by column");
    let cols: Vec<(String, i64)> =
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).expect("vocab").map(|r| r.expect("row")).collect();
    let tokens: i64 = cols.iter().map(|c| c.1).sum();
    let line: Vec<String> =
        cols.iter().map(|(c, k)| format!("{c} {:.1}%", 100.0 * *k as f64 / tokens as f64)).collect();
    println!("postings by column: {}", line.join(", "));
}

/// Words picked by document frequency from the index: (closest to `target` documents).
fn word_near(conn: &Connection, target: usize) -> (String, i64) {
    conn.query_row(
        "SELECT term, doc FROM temp.vocab_row WHERE term NOT GLOB '*[^a-z]*' AND length(term) >= 3 AND term <> 'all'
         ORDER BY abs(doc - ?1), term LIMIT 1",
        [target as i64],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .expect("a word")
}

fn top_words(conn: &Connection, k: usize) -> Vec<String> {
    let mut stmt = conn
        .prepare("SELECT term FROM temp.vocab_row WHERE term NOT GLOB '*[^a-z]*' AND length(term) >= 3 AND term <> 'all' ORDER BY doc DESC, term LIMIT ?1")
        .expect("top");
    stmt.query_map([k as i64], |r| r.get(0)).expect("top").map(|r| r.expect("row")).collect()
}

/// The three-letter prefix with the most distinct words, and the one with the most postings.
fn prefixes(conn: &Connection) -> Vec<String> {
    ["count(*)", "sum(doc)"]
        .iter()
        .map(|order| {
            conn.query_row(
                &format!(
                    "SELECT substr(term, 1, 3) p FROM temp.vocab_row WHERE term NOT GLOB '*[^a-z]*' AND length(term) >= 3
                     GROUP BY p ORDER BY {order} DESC, p LIMIT 1"
                ),
                [],
                |r| r.get(0),
            )
            .expect("a prefix")
        })
        .collect()
}

fn search(s: &str) -> Match {
    Search::parse(s).unwrap_or_else(|e| panic!("{s}: {e}")).to_match()
}

/// The fixed list of queries, with the words the vocabulary gives.
fn queries(conn: &Connection, items: &[Item], n: usize) -> Vec<(String, Match, String)> {
    let (half, half_docs) = word_near(conn, n / 2);
    let (rare, rare_docs) = word_near(conn, 10);
    let top = top_words(conn, 20);
    let common = top[0].clone();
    let [many_words, widest_prefix]: [String; 2] = prefixes(conn).try_into().expect("two prefixes");
    let title: Vec<String> = clipfeed::searching::words(&items[items.len() / 2].data.clip.title)
        .split_whitespace()
        .take(2)
        .map(String::from)
        .collect();
    let mut topics: std::collections::HashMap<&str, usize> = Default::default();
    for it in items {
        for t in &it.data.topics {
            *topics.entry(t.slug.as_str()).or_default() += 1;
        }
    }
    let smallest = topics.iter().min_by_key(|(s, c)| (**c, **s)).map(|(s, c)| (s.to_string(), *c)).expect("a topic");
    println!("words: half {half:?} ({half_docs} items), rare {rare:?} ({rare_docs}), most common {common:?}");
    println!(
        "prefixes: most words {many_words}*, most postings {widest_prefix}*; smallest topic {} ({} items)",
        smallest.0, smallest.1
    );
    let filter = |q: &str| Filter::parse(q, &FeedKey::All, chrono::Utc::now()).expect("filter");
    let small = FeedKey::Topic(smallest.0.clone());
    let mut list: Vec<(String, Match, String)> = [
        (format!("rare word {rare}"), search(&rare)),
        (format!("half word {half}"), search(&half)),
        (format!("most common {common}"), search(&common)),
        (format!("phrase \"{}\"", title.join(" ")), search(&format!("\"{}\"", title.join(" ")))),
        (format!("prefix {many_words}*"), search(&format!("{many_words}*"))),
        (format!("prefix {widest_prefix}*"), search(&format!("{widest_prefix}*"))),
        (format!("prefix {widest_prefix}p*"), search(&format!("{widest_prefix}p*"))),
        (format!("prefix {many_words}s*"), search(&format!("{many_words}s*"))),
        ("20 common words (AND)".into(), search(&top.join(" "))),
        ("20 common words (OR)".into(), search(&top.join(" OR "))),
        (format!("{half} -{common}"), search(&format!("{half} -{common}"))),
        (format!("title:{half}"), search(&format!("title:{half}"))),
        (format!("q={half}"), words_match(&filter(&format!("q={half}")))),
        (format!("exclude={common}"), words_match(&filter(&format!("exclude={common}")))),
        (format!("q={rare}&exclude={half}"), words_match(&filter(&format!("q={rare}&exclude={half}")))),
    ]
    .into_iter()
    .map(|(label, m)| (label, m, FeedKey::All.path_stem()))
    .collect();
    list.push((format!("{half} in topic {}", smallest.0), search(&half).within(&small), small.path_stem()));
    list
}

/// `n` generated clippings; with `CLIPFEED_BENCH_SEARCH_DIR`, kept in (and read back from) that
/// folder, so a second run skips the generator.
fn clippings(n: usize) -> (Vec<support::File>, &'static str) {
    let Some(dir) = std::env::var_os("CLIPFEED_BENCH_SEARCH_DIR").map(std::path::PathBuf::from) else {
        return support::generated(n);
    };
    let files = support::read_dir_files(&dir);
    if files.len() == n {
        return (files, "CLIPFEED_BENCH_SEARCH_DIR");
    }
    std::fs::create_dir_all(&dir).expect("clippings folder");
    if support::generate_into(n, &dir) {
        (support::read_dir_files(&dir), "gen_clippings.py")
    } else {
        (support::synthetic(n), "built-in")
    }
}

fn main() {
    let n = env("CLIPFEED_BENCH_SEARCH_N", 100_000);
    let iters = env("CLIPFEED_BENCH_SEARCH_ITERS", 200).max(1);
    let started = Instant::now();
    let (files, source) = clippings(n);
    let clip_bytes: u64 = files.iter().map(|f| f.bytes.len() as u64).sum();
    let items = support::items(&support::parse_all(&files));
    drop(files);
    println!("{} items from {source} in {:.0} s", items.len(), started.elapsed().as_secs_f64());
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = tmp.path().join("search.db");
    // The store's schema (the feed log with it), then a plain connection as a reader has.
    drop(clipfeed::Store::open(&path).expect("store"));
    let mut conn = open(&path);
    // Oldest first, as files arrive.
    let oldest_first: Vec<Item> = items.iter().rev().cloned().collect();
    build(&mut conn, &oldest_first);
    conn.execute_batch(
        "CREATE VIRTUAL TABLE temp.vocab_row USING fts5vocab(main, search_index, row);
         CREATE VIRTUAL TABLE temp.vocab_col USING fts5vocab(main, search_index, col);",
    )
    .expect("vocab");
    sizes(&conn, items.len(), clip_bytes);
    let list = queries(&conn, &items, items.len());
    drop(conn);
    // A fresh connection, as the views' readers have.
    let reader = open(&path);
    println!(
        "\n{:<44} {:>8} {:>8} {:>10} {:>10}",
        format!("query ({} indexed, limit {LIMIT})", items.len()),
        "matches",
        "given",
        "p50 us",
        "p99 us"
    );
    for (label, m, feed) in &list {
        let expr = m.expression();
        let bounds = fts::Bounds::default();
        let found = fts::matching(&reader, &expr, feed, &bounds, LIMIT).expect("query").len();
        let total: i64 = reader
            .query_row("SELECT count(*) FROM search_index WHERE search_index MATCH ?1", [&expr], |r| r.get(0))
            .expect("count");
        let mut times: Vec<Duration> = (0..iters)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(fts::matching(&reader, &expr, feed, &bounds, LIMIT).expect("query"));
                t.elapsed()
            })
            .collect();
        times.sort();
        println!(
            "{label:<44} {total:>8} {found:>8} {:>10} {:>10}",
            micros(percentile(&times, 0.5)),
            micros(percentile(&times, 0.99))
        );
    }
}
