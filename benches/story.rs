//! Story grouping, per new clipping, at 100,000 stored: feature extraction, the candidate-key
//! lookup in SQLite tables laid out as `src/story/mod.rs` proposes (and in the in-memory index),
//! reading and decoding the candidates' features, and the verdicts and decision.
//!
//!     cargo bench --bench story
//!
//! `CLIPFEED_BENCH_STORY_N` sets how many clippings are stored (default 100000); 1,000 more are
//! generated and kept back as the new arrivals. The clippings come from `gen_clippings.py`
//! (about 1.5 GB of temp files at 100,000, removed after reading) or, without it, from the
//! built-in generator. Before the benches it prints the grouping of the stored set (stories,
//! largest story: a check for chaining at scale) and the candidate counts of the arrivals.

mod support;

use std::hint::black_box;
use std::path::Path;

use clipfeed::stories::{Candidate, Features, Founder, Index, Member, Params, decide, group, window_days};
use clipfeed::{Clipping, Limits};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rusqlite::{Connection, params};

const HELD_OUT: usize = 1000;
const UNDATED_DAY: i64 = i32::MIN as i64;

struct Clip {
    item: String,
    parsed: Clipping,
    features: Features,
}

/// Generates, reads and parses the clippings one file at a time (the files are not all held).
fn clippings(n: usize) -> Vec<Clip> {
    let tmp = tempfile::tempdir().expect("temp dir");
    let files = if support::generate_into(n, tmp.path()) { None } else { Some(support::synthetic(n)) };
    let mut out = Vec::with_capacity(n);
    let mut add = |name: &str, bytes: &[u8]| {
        if let Ok(p) = clipfeed::parse_clipping(bytes, Limits::default()) {
            let item = clipfeed::item_id(&clipfeed::item_key(&p.clipping, name));
            let features = Features::of(&p.clipping);
            out.push(Clip { item, parsed: p.clipping, features });
        }
    };
    match files {
        Some(files) => files.iter().for_each(|f| add(&f.name, &f.bytes)),
        None => {
            let mut paths: Vec<_> = walkdir::WalkDir::new(tmp.path())
                .into_iter()
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_file())
                .map(|e| e.into_path())
                .collect();
            paths.sort();
            for p in paths {
                let name = p.strip_prefix(tmp.path()).unwrap_or(&p).display().to_string();
                add(&name, &std::fs::read(&p).expect("reading a generated clipping"));
            }
        }
    }
    out
}

/// The proposed tables, filled with the stored clippings and their stories.
fn store(path: &Path, stored: &[Clip], founders: &[Founder]) -> Connection {
    let mut db = Connection::open(path).expect("db");
    db.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
         CREATE TABLE story_features(item INTEGER PRIMARY KEY, blob BLOB NOT NULL,
             founder_item TEXT NOT NULL, founder_published INTEGER);
         CREATE TABLE story_keys(key INTEGER NOT NULL, day INTEGER NOT NULL, item INTEGER NOT NULL,
             PRIMARY KEY (key, day, item)) WITHOUT ROWID;",
    )
    .expect("schema");
    let tx = db.transaction().expect("tx");
    {
        let mut f = tx.prepare("INSERT INTO story_features VALUES (?1, ?2, ?3, ?4)").expect("insert");
        let mut k = tx.prepare("INSERT OR IGNORE INTO story_keys VALUES (?1, ?2, ?3)").expect("insert");
        for (n, (c, founder)) in stored.iter().zip(founders).enumerate() {
            f.execute(params![n as i64, c.features.to_blob(), founder.item, founder.published()]).expect("row");
            let day = c.features.day().map_or(UNDATED_DAY, i64::from);
            for key in c.features.keys() {
                let d = if key.windowed { day } else { UNDATED_DAY };
                k.execute(params![key.value as i64, d, n as i64]).expect("key row");
            }
        }
    }
    tx.commit().expect("commit");
    db
}

/// The candidates of `f` by the proposed lookup: one index range per key (two for a windowed key
/// of a dated clipping: its window and the undated rows).
fn lookup(db: &Connection, f: &Features, window: i64) -> Vec<i64> {
    let mut any = db.prepare_cached("SELECT item FROM story_keys WHERE key = ?1").expect("q");
    let mut range =
        db.prepare_cached("SELECT item FROM story_keys WHERE key = ?1 AND day BETWEEN ?2 AND ?3").expect("q");
    let mut out = Vec::new();
    for key in f.keys() {
        let k = key.value as i64;
        match (key.windowed, f.day()) {
            (true, Some(d)) => {
                let d = i64::from(d);
                for (lo, hi) in [(UNDATED_DAY, UNDATED_DAY), (d - window - 1, d + window + 1)] {
                    out.extend(
                        range.query_map(params![k, lo, hi], |r| r.get::<_, i64>(0)).expect("q").map(Result::unwrap),
                    );
                }
            }
            _ => out.extend(any.query_map(params![k], |r| r.get::<_, i64>(0)).expect("q").map(Result::unwrap)),
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// What the writer does for one arrival: lookup, read and decode the candidates, decide.
fn arrive(db: &Connection, item: &str, features: &Features, window: i64) -> usize {
    let mut read = db
        .prepare_cached("SELECT blob, founder_item, founder_published FROM story_features WHERE item = ?1")
        .expect("q");
    let found = lookup(db, features, window);
    let rows: Vec<(Features, Founder, String)> = found
        .iter()
        .map(|&n| {
            read.query_row(params![n], |r| {
                let blob: Vec<u8> = r.get(0)?;
                let founder: String = r.get(1)?;
                Ok((Features::from_blob(&blob).expect("blob"), Founder::new(&founder, r.get(2)?), n.to_string()))
            })
            .expect("row")
        })
        .collect();
    let candidates: Vec<Candidate<'_>> =
        rows.iter().map(|(features, story, item)| Candidate { item, features, story }).collect();
    let d = decide(&Params::DEFAULT, Member { item, features }, &candidates);
    black_box(d);
    found.len()
}

fn percentile(sorted: &[usize], q: f64) -> usize {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// The grouping of the stored set, printed: stories, and the largest (a check for chaining).
fn grouped(stored: &[Clip]) -> Vec<Founder> {
    let started = std::time::Instant::now();
    let members: Vec<Member<'_>> = stored.iter().map(|c| Member { item: &c.item, features: &c.features }).collect();
    let (story, founders) = group(&Params::DEFAULT, &members);
    let mut sizes = vec![0usize; founders.len()];
    story.iter().for_each(|&s| sizes[s] += 1);
    sizes.sort_unstable();
    eprintln!(
        "story: grouped in {:.1} s: {} stories, {} of them of 2 or more, largest {}, p99 size {}",
        started.elapsed().as_secs_f64(),
        founders.len(),
        sizes.iter().filter(|&&s| s > 1).count(),
        sizes.last().copied().unwrap_or(0),
        percentile(&sizes, 0.99)
    );
    story.iter().map(|&s| founders[s].clone()).collect()
}

/// Prints the distribution of candidate counts of `arrivals`.
fn candidate_counts(db: &Connection, what: &str, arrivals: &[&Features], window: i64) {
    let mut counts: Vec<usize> = arrivals.iter().map(|f| lookup(db, f, window).len()).collect();
    counts.sort_unstable();
    eprintln!(
        "story: candidates per {what}: median {}, p90 {}, p99 {}, max {}",
        percentile(&counts, 0.5),
        percentile(&counts, 0.9),
        percentile(&counts, 0.99),
        counts.last().copied().unwrap_or(0)
    );
}

fn benches(c: &mut Criterion) {
    let n = std::env::var("CLIPFEED_BENCH_STORY_N").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let started = std::time::Instant::now();
    let mut all = clippings(n + HELD_OUT);
    let arrivals = all.split_off(all.len().saturating_sub(HELD_OUT));
    let stored = all;
    let secs = started.elapsed().as_secs_f64();
    eprintln!("story: {} stored, {} arrivals, parsed in {secs:.1} s", stored.len(), arrivals.len());
    let member_founders = grouped(&stored);

    let tmp = tempfile::tempdir().expect("temp dir");
    let started = std::time::Instant::now();
    let db = store(&tmp.path().join("stories.db"), &stored, &member_founders);
    let rows: i64 = db.query_row("SELECT count(*) FROM story_keys", [], |r| r.get(0)).expect("count");
    let bytes = std::fs::metadata(tmp.path().join("stories.db")).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(tmp.path().join("stories.db-wal")).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "story: tables filled in {:.1} s: {rows} key rows ({:.1} per clipping), {:.0} MB with the features",
        started.elapsed().as_secs_f64(),
        rows as f64 / stored.len() as f64,
        bytes as f64 / 1e6
    );
    let window = i64::from(window_days(&Params::DEFAULT));
    candidate_counts(&db, "arrival", &arrivals.iter().map(|a| &a.features).collect::<Vec<_>>(), window);
    // The same arrivals without a date: matched through headline keys at any date.
    let undated: Vec<(String, Features)> = arrivals
        .iter()
        .map(|a| {
            let mut c = a.parsed.clone();
            c.published = None;
            (a.item.clone(), Features::of(&c))
        })
        .collect();
    candidate_counts(&db, "undated arrival", &undated.iter().map(|(_, f)| f).collect::<Vec<_>>(), window);
    let mut index = Index::default();
    for (i, c) in stored.iter().enumerate() {
        index.insert(i as u32, &c.features);
    }

    let mut g = c.benchmark_group(format!("story ({} stored)", stored.len()));
    g.throughput(Throughput::Elements(1));
    let mut next = arrivals.iter().cycle();
    g.bench_function("features of a clipping", |b| b.iter(|| Features::of(black_box(&next.next().unwrap().parsed))));
    g.bench_function("key lookup (sqlite)", |b| {
        b.iter(|| lookup(&db, black_box(&next.next().unwrap().features), window))
    });
    g.bench_function("key lookup (in-memory index)", |b| {
        b.iter(|| index.candidates(black_box(&next.next().unwrap().features), window as i32))
    });
    g.bench_function("arrival: lookup, read, decide (sqlite)", |b| {
        b.iter(|| {
            let a = next.next().unwrap();
            arrive(&db, &a.item, &a.features, window)
        })
    });
    g.bench_function("arrival with features (sqlite)", |b| {
        b.iter(|| {
            let a = next.next().unwrap();
            arrive(&db, &a.item, &Features::of(&a.parsed), window)
        })
    });
    let mut undated_next = undated.iter().cycle();
    g.bench_function("undated arrival: lookup, read, decide (sqlite)", |b| {
        b.iter(|| {
            let (item, f) = undated_next.next().unwrap();
            arrive(&db, item, f, window)
        })
    });
    g.finish();
}

criterion_group!(story_benches, benches);
criterion_main!(story_benches);
