//! HTML pages: the index of every feed (with autodiscovery links) and the page of one clipping.
//! Pure string building; every value from a clipping or the config is escaped here.

use crate::feed::{FeedKey, Format, Links};
use crate::item::Item;
use crate::text::html_escape as esc;

/// A feed as listed on the index.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    pub(crate) key: FeedKey,
    pub(crate) name: String,
    pub(crate) count: u64,
}

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#222}\
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem}table{border-collapse:collapse;width:100%}\
td,th{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #ddd}td.n{text-align:right}td.f{white-space:nowrap}\
a{color:#0645ad}.meta{color:#555}code{font-size:.85em}code.url{user-select:all;word-break:break-all}";

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

/// The home page: every topic and provider feed with its item count, subscribe links in every
/// format, the address to copy, the OPML list, and autodiscovery links.
pub(crate) fn index(
    site_title: &str,
    description: &str,
    links: &Links,
    total: u64,
    topics: &[Listing],
    providers: &[Listing],
) -> String {
    let mut out = String::with_capacity(4096 + (topics.len() + providers.len()) * 900);
    head(&mut out, site_title);
    alternate(&mut out, links, &FeedKey::All, &format!("{site_title}: all clippings"));
    for l in topics.iter().chain(providers) {
        alternate(&mut out, links, &l.key, &format!("{site_title}: {}", l.name));
    }
    out.push_str("</head>\n<body>\n");
    out.push_str(&format!("<h1>{}</h1>\n<p>{}</p>\n", esc(site_title), esc(description)));
    out.push_str(&format!(
        "<p>All {total} clippings: {} <code class=\"url\">{}</code></p>\n",
        feed_links(links, &FeedKey::All),
        esc(&links.feed(&FeedKey::All, Format::Rss)),
    ));
    out.push_str(&format!(
        "<p>Every feed at once, for your reader's import: <a href=\"{0}\" type=\"text/x-opml\">feeds.opml</a> \
         <code class=\"url\">{0}</code>. To subscribe to one feed, copy its address into your feed reader; \
         open a feed to preview it.</p>\n",
        esc(&links.opml()),
    ));
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
    out.push_str(&format!(
        "<time datetime=\"{}\">{}</time></p>\n",
        d.published.to_rfc3339(),
        d.published.format("%Y-%m-%d %H:%M UTC")
    ));
    if let Some(url) = &d.clip.url {
        out.push_str(&format!("<p><a href=\"{}\">Read the article</a></p>\n", esc(url)));
    }
    if let Some(e) = &d.clip.excerpt {
        out.push_str(&format!("<p><em>{}</em></p>\n", esc(e)));
    }
    if let Some(html) = &d.clip.content_html {
        // Sanitised when the clipping was parsed.
        out.push_str(html);
        out.push('\n');
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
    use super::*;

    #[test]
    fn index_escapes_and_links() {
        let links = Links::new(&url::Url::parse("http://h.test/").unwrap());
        let topics = vec![Listing { key: FeedKey::Topic("ai".into()), name: "<AI & co>".into(), count: 3 }];
        let html = index("Site \"x\"", "d", &links, 3, &topics, &[]);
        assert!(html.contains("&lt;AI &amp; co&gt;"));
        assert!(html.contains("<link rel=\"alternate\" type=\"application/rss+xml\""));
        assert!(html.contains("href=\"http://h.test/topics/ai.atom\""));
        assert!(html.contains("Site &quot;x&quot;"));
        assert!(!html.contains("<AI"));
    }
}
