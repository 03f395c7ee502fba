//! Parsing clipping files (`clipfeed::clip::parse`): generated clippings (`gen_clippings.py`,
//! median 6.5 KB, many related articles), the real seed and corpus files from `../shared` when
//! present, and built-in seed-like synthetic clippings. Throughput is in files: criterion prints
//! files/s ("elem/s").
//!
//!     cargo bench --bench parse
//!
//! `CLIPFEED_BENCH_PARSE_N` sets how many generated files are parsed per iteration (default 1000).

mod support;

use std::hint::black_box;

use clipfeed::clip::{Limits, parse};
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

fn benches(c: &mut Criterion) {
    let n = std::env::var("CLIPFEED_BENCH_PARSE_N").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let (generated, source) = support::generated(n);
    parse_set(c, &format!("generated ({source})"), &generated);
    parse_set(c, "seeds and corpus (real)", &support::real());
    parse_set(c, "seed-like (built-in)", &support::synthetic(n));
}

criterion_group!(parse_benches, benches);
criterion_main!(parse_benches);
