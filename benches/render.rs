//! Rendering one 50-item feed document (`clipfeed::render_feed`) in RSS, Atom and JSON Feed,
//! from generated clippings: the 50 newest items of the largest topic (AI), as the daemon renders
//! a topic's subscription document. Also the gzip of the RSS body, which the server makes the
//! first time a client asks for it (`Rendered::body_in`).
//!
//!     cargo bench --bench render

mod support;

use std::hint::black_box;

use clipfeed::{Doc, FeedKey, FeedMeta, Format, Links, Page, render_feed};
use clipfeed::{Encoding, Rendered};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn benches(c: &mut Criterion) {
    let (files, source) = support::generated(2000);
    let clippings = support::parse_all(&files);
    let items: Vec<_> = support::items(&clippings)
        .into_iter()
        .filter(|i| i.data.topics.iter().any(|t| t.slug == "ai"))
        .take(50)
        .collect();
    assert_eq!(items.len(), 50, "the corpus has fewer than 50 AI clippings");
    let meta = FeedMeta {
        key: FeedKey::Topic("ai".into()),
        title: "Clippings: AI".into(),
        description: "Clippings about AI".into(),
        site_title: "Clippings".into(),
        updated: "2024-05-01T10:00:00Z".parse().expect("date"),
        icon: None,
    };
    let page = Page::Current { newest_archive: Some(40), page_size: 50 };
    let doc = Doc { meta: &meta, page: &page, items: &items, tombstones: &[] };
    let links = Links::new(&url::Url::parse("http://127.0.0.1:8080/").expect("url"));

    let mut g = c.benchmark_group("render 50 items");
    for format in Format::ALL {
        let size = render_feed(format, &doc, &links).len();
        eprintln!("render/{format:?}: {size} bytes from {source} clippings");
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("{format:?}"), |b| b.iter(|| black_box(render_feed(format, black_box(&doc), &links))));
    }
    g.finish();

    let rss = render_feed(Format::Rss, &doc, &links);
    let mut g = c.benchmark_group("compress 50-item RSS");
    g.throughput(Throughput::Bytes(rss.len() as u64));
    g.bench_function("gzip (first request)", |b| {
        b.iter(|| {
            let r = Rendered::new(rss.clone(), meta.updated, Format::Rss.content_type());
            black_box(r.body_in(Encoding::Gzip).len())
        })
    });
    g.finish();
}

criterion_group!(render_benches, benches);
criterion_main!(render_benches);
