//! Parsing clipping files (`clipfeed::parse_clipping`): generated clippings (`gen_clippings.py`,
//! median 6.5 KB, many related articles), the real seed and corpus files from `../shared` when
//! present, and built-in seed-like synthetic clippings. Throughput is in files: criterion prints
//! files/s ("elem/s").
//!
//!     cargo bench --bench parse
//!
//! `CLIPFEED_BENCH_PARSE_N` sets how many generated files are parsed per iteration (default 1000).
//!
//! The "front matter" group reads only the YAML blocks of the generated files, once with the
//! fast reader `clipfeed::parse_yaml` (which `clip::parse` tries first) and once with
//! serde_yaml (its fallback), to compare the two on the same text; throughput in bytes.

mod support;

use std::hint::black_box;

use clipfeed::{Limits, parse_clipping as parse, split_front_matter};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn parse_set(c: &mut Criterion, name: &str, files: &[support::File]) {
    if files.is_empty() {
        return;
    }
    let bytes: usize = files.iter().map(|f| f.bytes.len()).sum();
    let ok = files.iter().filter(|f| parse(&f.bytes, Limits::default()).is_ok()).count();
    eprintln!("parse/{name}: {} files, {} KB, {ok} parse", files.len(), bytes / 1024);
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(files.len() as u64));
    g.bench_function(name, |b| {
        b.iter(|| {
            for f in files {
                let _ = black_box(parse(black_box(&f.bytes), Limits::default()));
            }
        })
    });
    g.finish();
}

/// The fast YAML reader against serde_yaml, on the front matter of the same files.
fn front_matter(c: &mut Criterion, files: &[support::File]) {
    let blocks: Vec<&str> = files
        .iter()
        .filter_map(|f| std::str::from_utf8(&f.bytes).ok())
        .filter_map(|text| split_front_matter(text).ok().flatten())
        .map(|(yaml, _)| yaml)
        .collect();
    if blocks.is_empty() {
        return;
    }
    let bytes: usize = blocks.iter().map(|b| b.len()).sum();
    let fast = blocks.iter().filter(|b| clipfeed::parse_yaml(b).is_some()).count();
    eprintln!(
        "front matter: {} blocks, {} KB; the fast reader takes {fast}, serde_yaml the rest",
        blocks.len(),
        bytes / 1024
    );
    let mut g = c.benchmark_group("front matter");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("fast reader (yaml::parse)", |b| {
        b.iter(|| {
            for block in &blocks {
                black_box(clipfeed::parse_yaml(black_box(block)));
            }
        })
    });
    g.bench_function("serde_yaml", |b| {
        b.iter(|| {
            for block in &blocks {
                let _ = black_box(serde_yaml::from_str::<serde_json::Value>(black_box(block)));
            }
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let n = std::env::var("CLIPFEED_BENCH_PARSE_N").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let (generated, source) = support::generated(n);
    parse_set(c, &format!("generated ({source})"), &generated);
    front_matter(c, &generated);
    parse_set(c, "seeds and corpus (real)", &support::real());
    parse_set(c, "seed-like (built-in)", &support::synthetic(n));
}

criterion_group!(parse_benches, benches);
criterion_main!(parse_benches);
