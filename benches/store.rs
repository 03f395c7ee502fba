//! The store: the feed query behind a render (the subscription window of a feed's log), an
//! archive page read, on a store filled by the daemon's own
//! start-up path from generated clippings; and that start-up path itself (first reconcile of
//! 1,000 files into an empty store: read, parse, write, render).
//!
//!     cargo bench --bench store
//!
//! `CLIPFEED_BENCH_STORE_N` sets how many clippings the queried store holds (default 10000;
//! generating them takes about 15 s, the ingest a few seconds more).

mod support;

use std::hint::black_box;

use clipfeed::{FeedKey, FeedLog};
use clipfeed::{Reader, Store};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

fn queries(c: &mut Criterion) {
    let n = std::env::var("CLIPFEED_BENCH_STORE_N").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("clippings");
    std::fs::create_dir_all(&root).expect("root");
    if !support::generate_into(n, &root) {
        support::write_files(&root, &support::synthetic(n));
    }
    let db = tmp.path().join("store.db");
    let started = std::time::Instant::now();
    support::ingest(&root, &db);
    eprintln!("store: {n} clippings ingested in {:.1} s", started.elapsed().as_secs_f64());

    let mut store = Store::open(&db).expect("store");
    let reader = Reader::open(&db, 1).expect("reader");
    let unlimited = clipfeed::Budget::unlimited();
    let b = store.batch().expect("batch");
    // The most common provider: the feed with the most items after the topics.
    let counts = b.live_counts().expect("counts");
    let provider = counts
        .iter()
        .filter(|(stem, _)| stem.starts_with("providers/"))
        .max_by_key(|(stem, count)| (**count, std::cmp::Reverse((*stem).clone())))
        .map(|(stem, _)| FeedKey::from_stem(stem).expect("stem"))
        .expect("a provider");
    let keys = [FeedKey::All, FeedKey::Topic("ai".into()), provider];
    let mut g = c.benchmark_group(format!("store query ({n} stored)"));
    for key in &keys {
        let stem = key.path_stem();
        let len = b.log_len(key).expect("log length");
        // The subscription document's window, as the writer computes it when nothing was deleted.
        let start = (len / 50).saturating_sub(1) * 50;
        eprintln!("store: {stem} has {} live items, log of {len} slots", counts.get(&stem).copied().unwrap_or(0));
        g.bench_function(format!("window {stem}"), |bch| {
            bch.iter(|| black_box(b.slot_items(key, start, len).expect("query")))
        });
        if len >= 100 {
            g.bench_function(format!("archive page 0 {stem}"), |bch| {
                bch.iter(|| black_box(reader.slot_items(&FeedLog::of(key), 0, 50, &unlimited).expect("query")))
            });
        }
    }
    g.finish();
}

fn ingest(c: &mut Criterion) {
    let (files, source) = support::generated(1000);
    eprintln!("ingest: {} files from {source}", files.len());
    let mut g = c.benchmark_group("ingest");
    g.sample_size(10);
    g.throughput(criterion::Throughput::Elements(files.len() as u64));
    g.bench_function("first reconcile of 1000 files", |b| {
        b.iter_batched(
            || {
                let tmp = tempfile::tempdir().expect("temp dir");
                let root = tmp.path().join("clippings");
                std::fs::create_dir_all(&root).expect("root");
                support::write_files(&root, &files);
                tmp
            },
            |tmp| {
                support::ingest(&tmp.path().join("clippings"), &tmp.path().join("store.db"));
                tmp
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(store_benches, queries, ingest);
criterion_main!(store_benches);
