//! HTML pages: the index of every feed (with autodiscovery links), the page of one clipping, and
//! the page browsers are shown at a feed's URL (`feed_page`). Pure string building; every value
//! from a clipping or the config is escaped here. Every page carries the one stylesheet below
//! and nothing else inline: no script, no `style` attribute, so the HTTP layer's
//! `Content-Security-Policy` can allow exactly that stylesheet, by its hash.

mod feed_page;
mod story;

use chrono::{DateTime, Utc};

use crate::feed::{FeedKey, Format, Links};
use crate::item::Item;
use crate::text::html_escape as esc;

pub use feed_page::feed_page;
pub(crate) use story::{StoryListing, StorySize, story_item, story_listing, story_page};

/// A feed as listed on the index.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    pub(crate) key: FeedKey,
    pub(crate) name: String,
    pub(crate) count: u64,
}

/// The stylesheet of every page. Narrow screens (phones, 360 px) never scroll sideways: tables
/// become one block per row, addresses wrap where they must (`overflow-wrap: anywhere`, so
/// words elsewhere stay whole), pictures and clipping bodies shrink to the column.
const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:52rem;margin:0 auto;padding:1rem;color:#222;background:#fff}\
h1{font-size:1.6rem;line-height:1.25;margin:.5rem 0;overflow-wrap:anywhere}h2{font-size:1.2rem;margin-top:2rem}\
a{color:#0645ad}.meta{color:#555}.indexing{background:#fff3cd;padding:.5rem}code{font-size:.85em}code.url{user-select:all;overflow-wrap:anywhere}\
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #ddd;vertical-align:top}\
td.n{text-align:right}td.f{white-space:nowrap}\
@media (max-width:40rem){thead{display:none}table,tbody,tr,td{display:block}tr{padding:.5rem 0;border-bottom:1px solid #ddd}\
td{border:0;padding:.1rem 0}td.n{text-align:left}td.n::before{content:\"Clippings: \"}}\
.about{background:#eef4fb;border:1px solid #c8d8ea;border-radius:6px;padding:.5rem 1rem;margin:1rem 0}.about p{margin:.4rem 0}\
ol.items{list-style:none;padding:0;margin:0}ol.items>li{border-bottom:1px solid #ddd;padding:1rem 0}\
ol.items h2{font-size:1.15rem;margin:0 0 .25rem;overflow-wrap:anywhere}.summary{overflow-wrap:anywhere}\
.pic{display:block;max-width:min(100%,32rem);height:auto;margin:.5rem 0;background:#e8ecf1;color:#555;font-size:.85em}\
.pic.nodim{width:100%;aspect-ratio:16/9;object-fit:cover}\
ul.topics{list-style:none;padding:0;margin:.4rem 0;display:flex;flex-wrap:wrap;gap:.3rem}\
ul.topics li{background:#f0f2f4;border-radius:3px;padding:0 .4rem;font-size:.85em}\
nav.pages{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;margin:1rem 0}\
.body{overflow-wrap:anywhere}.body img{max-width:100%;height:auto}.body pre{white-space:pre-wrap}\
.body table{display:block;overflow-x:auto}form.search{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin:1rem 0}form.search input[type=search]{flex:1 1 16rem;min-width:0;font:inherit;padding:.3rem .5rem}form.search button{font:inherit;padding:.3rem .9rem}ul.subscribe{list-style:none;padding:0;margin:.4rem 0}ul.subscribe li{margin:.2rem 0}";

/// The `Content-Security-Policy` source that allows the pages' stylesheet and nothing else:
/// `'sha256-…'` of its text.
pub fn style_source() -> &'static str {
    static SOURCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SOURCE.get_or_init(|| {
        let digest = ring::digest::digest(&ring::digest::SHA256, STYLE.as_bytes());
        format!("'sha256-{}'", base64(digest.as_ref()))
    })
}

/// Standard base64 with padding (RFC 4648, 4), for the stylesheet's hash.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A time as every page writes it, in UTC: `2 March 2026, 12:00 UTC`, in a `<time>` element that
/// carries it in RFC 3339 too.
fn time(t: DateTime<Utc>) -> String {
    format!("<time datetime=\"{}\">{}</time>", t.to_rfc3339(), t.format("%-d %B %Y, %H:%M UTC"))
}

fn head(out: &mut String, title: &str) {
    out.push_str("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str(&format!("<title>{}</title>\n<style>{STYLE}</style>\n", esc(title)));
}

fn alternate(out: &mut String, links: &Links, key: &FeedKey, title: &str) {
    for format in Format::ALL {
        out.push_str(&format!(
            "<link rel=\"alternate\" type=\"{}\" title=\"{} ({})\" href=\"{}\">\n",
            format.media_type(),
            esc(title),
            format.extension().to_uppercase(),
            esc(&links.feed(key, format))
        ));
    }
}

/// Subscribe links in every format.
fn feed_links(links: &Links, key: &FeedKey) -> String {
    Format::ALL
        .map(|f| {
            let url = links.feed(key, f);
            format!("<a href=\"{}\" type=\"{}\">{}</a>", esc(&url), f.media_type(), f.extension().to_uppercase())
        })
        .join(" · ")
}

fn feed_row(out: &mut String, links: &Links, l: &Listing) {
    let anchor = l.key.path_stem().replace('/', "-");
    out.push_str(&format!(
        "<tr id=\"{}\"><td>{}</td><td class=\"n\">{}</td><td class=\"f\">{}</td><td><code class=\"url\">{}</code></td></tr>\n",
        esc(&anchor),
        esc(&l.name),
        l.count,
        feed_links(links, &l.key),
        esc(&links.feed(&l.key, Format::Rss)),
    ));
}

/// What the home page lists: the public topic and provider feeds, and the latest stories.
pub(crate) struct Lists<'a> {
    pub(crate) topics: &'a [Listing],
    pub(crate) providers: &'a [Listing],
    pub(crate) stories: &'a [StoryListing],
}

/// The home page: every topic and provider feed with its item count, subscribe links in every
/// format, the address to copy, the OPML list, the latest stories, and autodiscovery links.
pub(crate) fn index(
    site_title: &str,
    description: &str,
    links: &Links,
    total: u64,
    lists: Lists<'_>,
    indexing: Option<&str>,
) -> String {
    let Lists { topics, providers, stories } = lists;
    let mut out = String::with_capacity(4096 + (topics.len() + providers.len()) * 900);
    head(&mut out, site_title);
    alternate(&mut out, links, &FeedKey::All, &format!("{site_title}: all clippings"));
    for l in topics.iter().chain(providers) {
        alternate(&mut out, links, &l.key, &format!("{site_title}: {}", l.name));
    }
    out.push_str("</head>\n<body>\n");
    out.push_str(&format!("<h1>{}</h1>\n<p>{}</p>\n", esc(site_title), esc(description)));
    if let Some(note) = indexing {
        out.push_str(&format!("<p class=\"indexing\" role=\"status\">{}</p>\n", esc(note)));
    }
    let counted = if indexing.is_some() { format!("clippings ({total} so far)") } else { format!("{total} clippings") };
    out.push_str(&format!(
        "<p>All {counted}: {} <code class=\"url\">{}</code></p>\n",
        feed_links(links, &FeedKey::All),
        esc(&links.feed(&FeedKey::All, Format::Rss)),
    ));
    search_form(&mut out, links);
    out.push_str(&format!(
        "<p>Every feed at once, for your reader's import: <a href=\"{0}\" type=\"text/x-opml\">feeds.opml</a> \
         <code class=\"url\">{0}</code>. To subscribe to one feed, copy its address into your feed reader; \
         open a feed to preview it.</p>\n",
        esc(&links.opml()),
    ));
    story::latest_section(&mut out, links, stories);
    for (heading, list) in [("Topics", topics), ("News sites", providers)] {
        out.push_str(&format!("<h2>{heading}</h2>\n"));
        if list.is_empty() {
            out.push_str("<p class=\"meta\">None yet.</p>\n");
            continue;
        }
        out.push_str("<table>\n<thead><tr><th>Name</th><th class=\"n\">Clippings</th><th>Feeds</th>");
        out.push_str("<th>Address</th></tr></thead>\n<tbody>\n");
        for l in list {
            feed_row(&mut out, links, l);
        }
        out.push_str("</tbody>\n</table>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// The search box: a plain form (no script) that asks for the all-clippings feed with
/// `?search=`, which a browser is shown as the page of that search, with its addresses to
/// subscribe to.
fn search_form(out: &mut String, links: &Links) {
    out.push_str(&format!(
        "<form class=\"search\" action=\"{}\" method=\"get\" role=\"search\">\n\
         <label for=\"search\">Search every clipping</label>\n\
         <input type=\"search\" id=\"search\" name=\"search\" required maxlength=\"{}\" \
         placeholder=\"rekognition OR &quot;facial recognition&quot; -site:vice\">\n\
         <button type=\"submit\">Search</button>\n</form>\n\
         <p class=\"meta\">Words (all must match), <code>\"exact phrases\"</code>, <code>OR</code>, \
         <code>-excluded</code>, <code>prefix*</code>, <code>title:</code>, <code>site:</code>, \
         <code>topic:</code>. Every search is a feed you can subscribe to.</p>\n",
        esc(&links.feed(&FeedKey::All, Format::Rss)),
        crate::search::MAX_SEARCH_CHARS,
    ));
}

/// The page of one clipping (the link of items that have no URL of their own).
pub(crate) fn clipping(site_title: &str, links: &Links, item: &Item) -> String {
    let d = &item.data;
    let mut out = String::with_capacity(2048 + d.clip.content_html.as_ref().map_or(0, String::len));
    head(&mut out, &format!("{} · {site_title}", d.clip.title));
    out.push_str("</head>\n<body>\n");
    out.push_str(&format!("<p class=\"meta\"><a href=\"{}\">{}</a></p>\n", esc(links.base()), esc(site_title)));
    out.push_str(&format!("<article>\n<h1>{}</h1>\n<p class=\"meta\">", esc(&d.clip.title)));
    if let Some(p) = &d.clip.provider {
        out.push_str(&format!("{} · ", esc(&p.name)));
    }
    out.push_str(&format!("{}</p>\n", time(d.published)));
    if let Some(url) = &d.clip.url {
        out.push_str(&format!("<p><a href=\"{}\">Read the article</a></p>\n", esc(url)));
    }
    if let Some(e) = &d.clip.excerpt {
        out.push_str(&format!("<p><em>{}</em></p>\n", esc(e)));
    }
    if let Some(html) = &d.clip.content_html {
        // Sanitised when the clipping was parsed.
        out.push_str(&format!("<div class=\"body\">\n{html}\n</div>\n"));
    }
    if !d.topics.is_empty() {
        out.push_str("<p class=\"meta\">Topics: ");
        let tags: Vec<String> = d
            .topics
            .iter()
            .map(|t| {
                format!(
                    "<a href=\"{}\">{}</a>",
                    esc(&links.feed(&FeedKey::Topic(t.slug.clone()), Format::Rss)),
                    esc(&t.name)
                )
            })
            .collect();
        out.push_str(&tags.join(", "));
        out.push_str("</p>\n");
    }
    out.push_str("</article>\n</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    const NONE: Lists<'static> = Lists { topics: &[], providers: &[], stories: &[] };
    use super::*;

    #[test]
    fn index_escapes_and_links() {
        let links = Links::new(&url::Url::parse("http://h.test/").unwrap());
        let topics = vec![Listing { key: FeedKey::Topic("ai".into()), name: "<AI & co>".into(), count: 3 }];
        let html = index("Site \"x\"", "d", &links, 3, Lists { topics: &topics, providers: &[], stories: &[] }, None);
        assert!(html.contains("&lt;AI &amp; co&gt;"));
        assert!(html.contains("<link rel=\"alternate\" type=\"application/rss+xml\""));
        assert!(html.contains("href=\"http://h.test/topics/ai.atom\""));
        assert!(html.contains("Site &quot;x&quot;"));
        assert!(!html.contains("<AI"));
    }

    #[test]
    fn the_index_says_when_it_is_indexing() {
        let links = Links::new(&url::Url::parse("http://h.test/").unwrap());
        let html = index("S", "d", &links, 7, NONE, Some("Indexing: 512 of 3000 <files>"));
        assert!(html.contains("<p class=\"indexing\" role=\"status\">Indexing: 512 of 3000 &lt;files&gt;</p>"));
        assert!(html.contains("All clippings (7 so far)"), "no final-looking count while indexing");
        let html = index("S", "d", &links, 7, NONE, None);
        assert!(html.contains("All 7 clippings") && !html.contains("Indexing"));
    }

    #[test]
    fn the_style_hash_is_that_of_the_style_every_page_carries() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        let links = Links::new(&url::Url::parse("http://h.test/").unwrap());
        let html = index("S", "d", &links, 0, NONE, None);
        let style = html.split("<style>").nth(1).and_then(|s| s.split("</style>").next()).unwrap();
        let digest = ring::digest::digest(&ring::digest::SHA256, style.as_bytes());
        assert_eq!(style_source(), format!("'sha256-{}'", base64(digest.as_ref())));
        // The SHA-256 of "abc", in base64, as published (FIPS 180-2 test vector).
        let abc = ring::digest::digest(&ring::digest::SHA256, b"abc");
        assert_eq!(base64(abc.as_ref()), "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
        assert!(!html.contains(" style=\""), "no style attribute: the policy allows none");
    }

    mod feed_pages {
        use super::super::*;
        use crate::feed::tests::{doc, hostile, item, links, meta};
        use crate::feed::{FeedKey, Page};

        fn page(p: &Page, items: &[Item], format: Format, private: bool) -> String {
            let m = meta(FeedKey::Topic("ai".into()));
            feed_page(&doc(&m, p, items), format, &links(), private)
        }

        #[test]
        fn every_value_is_escaped_and_nothing_runs() {
            let items = [hostile()];
            let html = page(&Page::Current { newest_archive: None, page_size: 25 }, &items, Format::Rss, false);
            assert!(!html.contains("<script"), "{html}");
            let title = &items[0].data.clip.title;
            assert!(title.contains('&'), "{title}");
            assert!(html.contains(&format!(">{}</a></h2>", esc(title))), "{html}");
            assert!(html.contains("&amp;"), "{html}");
            assert!(html.contains("<span class=\"provider\">P&lt;&amp;&gt;</span>"), "{html}");
            assert!(html.contains("href=\"https://a.example/?q=1&amp;r=2\""), "{html}");
            assert!(!html.contains("onclick"), "{html}");
            assert!(!html.contains(" style=\""), "{html}");
            // The picture: its size reserved, lazy, described.
            assert!(
                html.contains("class=\"pic\" width=\"640\" height=\"480\" loading=\"lazy\" decoding=\"async\">"),
                "{html}"
            );
            assert!(html.contains("alt=\"Picture: "), "{html}");
            assert!(
                html.contains("<time datetime=\"2024-01-02T03:04:05+00:00\">2 January 2024, 03:04 UTC</time>"),
                "{html}"
            );
        }

        #[test]
        fn each_document_offers_its_address_formats_and_neighbours() {
            let items = [item("title: One\npublishedDateTime: 2024-01-01\nwebUrl: https://x.example/1", "")];
            let base = "http://feeds.test/base/";
            let current = page(&Page::Current { newest_archive: Some(3), page_size: 5 }, &items, Format::Atom, false);
            assert!(current.contains(&format!("<code class=\"url\">{base}topics/ai.atom</code>")), "{current}");
            assert!(
                current.contains(&format!(
                    "<a href=\"{base}topics/ai.json\" type=\"application/feed+json\">JSON Feed</a>"
                ))
            );
            assert!(current.contains(&format!(
                "<a href=\"{base}topics/ai.atom\" type=\"application/atom+xml\" aria-current=\"page\">"
            )));
            assert!(
                current.contains(&format!("<a href=\"{base}topics/ai/archive/5-3.atom\" rel=\"prev\">")),
                "{current}"
            );
            assert!(current.contains("<link rel=\"alternate\" type=\"application/rss+xml\""), "{current}");

            let archive = page(&Page::Archive { index: 2, page_size: 5, has_next: true }, &items, Format::Rss, false);
            assert!(archive.contains(&format!("<code class=\"url\">{base}topics/ai.rss</code>")), "{archive}");
            assert!(archive.contains(&format!("<a href=\"{base}topics/ai/archive/5-1.rss\" rel=\"prev\">")));
            assert!(archive.contains(&format!("<a href=\"{base}topics/ai/archive/5-3.rss\" rel=\"next\">")));
            assert!(archive.contains(&format!("<a href=\"{base}topics/ai/archive/5-2.json\" type=")), "{archive}");

            let filtered = page(&Page::Filtered { query: "q=a&limit=2".into() }, &items, Format::Json, true);
            assert!(filtered.contains(&format!("<code class=\"url\">{base}topics/ai.json?q=a&amp;limit=2</code>")));
            assert!(filtered.contains("<meta name=\"referrer\" content=\"no-referrer\">"), "{filtered}");
            assert!(filtered.contains("This feed is private"), "{filtered}");
            assert!(!filtered.contains("<link rel=\"alternate\""), "{filtered}");
            assert!(!filtered.contains("rel=\"prev\""), "{filtered}");
            assert!(!page(&Page::Filtered { query: String::new() }, &[], Format::Rss, false).contains("<article>"));
        }

        #[test]
        fn pictures_without_a_size_or_a_web_address() {
            let unsized_pic = item("title: A\nimages:\n  - url: https://i.example/p", "");
            let script = item("title: B\nimages:\n  - url: \"javascript:alert(1)\"", "");
            let items = [unsized_pic, script];
            let html = page(&Page::Current { newest_archive: None, page_size: 5 }, &items, Format::Rss, false);
            assert!(
                html.contains(
                    "<img src=\"https://i.example/p\" alt=\"Picture: A\" class=\"pic nodim\" loading=\"lazy\""
                ),
                "{html}"
            );
            assert!(!html.contains("javascript:"), "{html}");
        }
    }
}
