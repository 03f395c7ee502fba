//! Feed documents: RSS 2.0 (through the `rss` crate) and Atom 1.0 (through `atom_syndication`).
//! The only module that builds XML. Takes the feed's description and its items, already chosen and
//! ordered by the store, and returns bytes.
//!
//! Pure and deterministic: the same inputs give the same bytes, so ETags are stable. The feed's
//! time is given by the caller (the time its content last changed), never read from the clock.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::item::{self, Item};
use crate::text;

/// Which feed: everything, one topic, or one provider.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FeedKey {
    All,
    Topic(String),
    Provider(String),
}

impl FeedKey {
    /// The URL path of the feed without its extension: `feed`, `topics/ai`, `providers/vice.com`.
    /// Also the key under which the feed is stored and served.
    pub fn path_stem(&self) -> String {
        match self {
            FeedKey::All => "feed".into(),
            FeedKey::Topic(slug) => format!("topics/{slug}"),
            FeedKey::Provider(domain) => format!("providers/{domain}"),
        }
    }

    /// The feed's Atom id: a v5 UUID URN of its path, independent of `base_url`.
    pub fn urn(&self) -> String {
        item::urn(&item::id_for(&format!("feed:{}", self.path_stem())))
    }
}

/// Feed formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Rss,
    Atom,
}

impl Format {
    pub const ALL: [Format; 2] = [Format::Rss, Format::Atom];

    pub fn extension(self) -> &'static str {
        match self {
            Format::Rss => "rss",
            Format::Atom => "atom",
        }
    }

    pub fn from_extension(ext: &str) -> Option<Format> {
        match ext {
            "rss" => Some(Format::Rss),
            "atom" => Some(Format::Atom),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Rss => "application/rss+xml; charset=utf-8",
            Format::Atom => "application/atom+xml; charset=utf-8",
        }
    }
}

/// Everything about a feed that is not its items.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedMeta {
    pub key: FeedKey,
    pub title: String,
    pub description: String,
    /// Name of the site, the feed-level Atom author.
    pub site_title: String,
    /// The HTML page for the feed.
    pub html_url: String,
    /// Absolute URL of the feed in each format (`rel="self"`).
    pub rss_url: String,
    pub atom_url: String,
    /// When the feed's content last changed.
    pub updated: DateTime<Utc>,
}

/// How the renderer makes absolute URLs: all of them start with `base_url`.
#[derive(Debug, Clone)]
pub struct Links {
    base: String,
}

impl Links {
    pub fn new(base_url: &url::Url) -> Links {
        Links { base: base_url.to_string() }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn feed(&self, key: &FeedKey, format: Format) -> String {
        format!("{}{}.{}", self.base, key.path_stem(), format.extension())
    }

    /// The page of a clipping on this site (the link of items without a URL of their own).
    pub fn clipping_page(&self, id: &str) -> String {
        format!("{}clippings/{id}", self.base)
    }

    /// What an item links to: its article, else its page here.
    pub fn item_link(&self, item: &Item) -> String {
        item.data.clip.url.clone().unwrap_or_else(|| self.clipping_page(&item.id))
    }
}

/// Renders one feed in one format.
pub fn render(format: Format, meta: &FeedMeta, items: &[Item], links: &Links) -> Vec<u8> {
    match format {
        Format::Rss => rss(meta, items, links),
        Format::Atom => atom(meta, items, links),
    }
}

/// Text for XML: characters XML 1.0 forbids removed. Inputs are clean already (the parser cleans
/// them); this keeps the guarantee local to the module that writes XML.
fn x(s: &str) -> String {
    text::xml_clean(s).into_owned()
}

/// Plain text as an HTML fragment (RSS descriptions are HTML to every reader).
fn text_as_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

const XML_DECL: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n";

/// RSS 2.0 with `atom:link rel="self"`, `content:encoded` for the body and `dc:creator` for the
/// provider name.
pub fn rss(meta: &FeedMeta, items: &[Item], links: &Links) -> Vec<u8> {
    use rss::extension::atom::{AtomExtension, Link as AtomLink};
    use rss::extension::dublincore::DublinCoreExtension;
    use rss::{Category, Channel, Guid, Source};

    let rss_items: Vec<rss::Item> = items
        .iter()
        .map(|it| {
            let d = &it.data;
            let provider = d.clip.provider.as_ref();
            rss::Item {
                title: Some(x(&d.clip.title)),
                link: Some(x(&links.item_link(it))),
                description: d.clip.excerpt.as_deref().map(|e| x(&text_as_html(e))),
                content: d.clip.content_html.as_deref().map(x),
                pub_date: Some(d.published.to_rfc2822()),
                guid: Some(Guid { value: item::urn(&it.id), permalink: false }),
                categories: d.topics.iter().map(|t| Category { name: x(&t.name), domain: None }).collect(),
                source: provider.and_then(|p| {
                    let domain = p.domain.as_ref()?;
                    Some(Source {
                        url: links.feed(&FeedKey::Provider(domain.clone()), Format::Rss),
                        title: Some(x(&p.name)),
                    })
                }),
                dublin_core_ext: provider
                    .map(|p| DublinCoreExtension { creators: vec![x(&p.name)], ..Default::default() }),
                ..Default::default()
            }
        })
        .collect();

    let channel = Channel {
        title: x(&meta.title),
        link: x(&meta.html_url),
        description: x(&meta.description),
        last_build_date: Some(meta.updated.to_rfc2822()),
        generator: Some("clipfeed".into()),
        docs: Some("https://www.rssboard.org/rss-specification".into()),
        atom_ext: Some(AtomExtension {
            links: vec![AtomLink {
                href: x(&meta.rss_url),
                rel: "self".into(),
                mime_type: Some("application/rss+xml".into()),
                ..Default::default()
            }],
        }),
        items: rss_items,
        namespaces: BTreeMap::new(),
        ..Default::default()
    };
    let mut out = Vec::with_capacity(4096 + items.len() * 2048);
    let out_ref = &mut out;
    channel.pretty_write_to(out_ref, b' ', 2).expect("writing RSS to memory cannot fail");
    out.push(b'\n');
    out
}

/// Atom 1.0 (RFC 4287). Every entry has id, title, updated, published, an alternate link, a
/// summary when there is an excerpt and content when there is a body; the provider is the author.
pub fn atom(meta: &FeedMeta, items: &[Item], links: &Links) -> Vec<u8> {
    use atom_syndication::{Category, Content, Entry, Feed, Generator, Link, Person, Text, WriteConfig};

    let entries: Vec<Entry> = items
        .iter()
        .map(|it| {
            let d = &it.data;
            Entry {
                id: item::urn(&it.id),
                title: Text::plain(x(&d.clip.title)),
                updated: it.updated.fixed_offset(),
                published: Some(d.published.fixed_offset()),
                links: vec![Link {
                    href: x(&links.item_link(it)),
                    rel: "alternate".into(),
                    mime_type: Some("text/html".into()),
                    ..Default::default()
                }],
                summary: d.clip.excerpt.as_deref().map(|e| Text::plain(x(e))),
                content: d.clip.content_html.as_deref().map(|html| Content {
                    value: Some(x(html)),
                    content_type: Some("html".into()),
                    ..Default::default()
                }),
                categories: d
                    .topics
                    .iter()
                    .map(|t| Category { term: t.slug.clone(), scheme: None, label: Some(x(&t.name)) })
                    .collect(),
                authors: d
                    .clip
                    .provider
                    .as_ref()
                    .map(|p| Person {
                        name: x(&p.name),
                        uri: p.domain.as_ref().map(|dom| format!("https://{dom}/")),
                        ..Default::default()
                    })
                    .into_iter()
                    .collect(),
                ..Default::default()
            }
        })
        .collect();

    let feed = Feed {
        id: meta.key.urn(),
        title: Text::plain(x(&meta.title)),
        subtitle: Some(Text::plain(x(&meta.description))),
        updated: meta.updated.fixed_offset(),
        authors: vec![Person { name: x(&meta.site_title), ..Default::default() }],
        generator: Some(Generator { value: "clipfeed".into(), uri: None, version: None }),
        links: vec![
            Link {
                href: x(&meta.atom_url),
                rel: "self".into(),
                mime_type: Some("application/atom+xml".into()),
                ..Default::default()
            },
            Link {
                href: x(&meta.html_url),
                rel: "alternate".into(),
                mime_type: Some("text/html".into()),
                ..Default::default()
            },
        ],
        entries,
        ..Default::default()
    };
    let mut out = Vec::with_capacity(4096 + items.len() * 2048);
    out.extend_from_slice(XML_DECL.as_bytes());
    let cfg = WriteConfig { write_document_declaration: false, indent_size: Some(2) };
    let out_ref = &mut out;
    feed.write_with_config(out_ref, cfg).expect("writing Atom to memory cannot fail");
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clip::{Limits, parse};
    use crate::item::{ItemData, TopicRef};

    fn links() -> Links {
        Links::new(&url::Url::parse("http://feeds.test/base/").unwrap())
    }

    fn meta(key: FeedKey) -> FeedMeta {
        let l = links();
        FeedMeta {
            title: "Clippings: AI".into(),
            description: "About AI".into(),
            site_title: "Clippings".into(),
            html_url: l.base().into(),
            rss_url: l.feed(&key, Format::Rss),
            atom_url: l.feed(&key, Format::Atom),
            updated: "2024-05-01T10:00:00Z".parse().unwrap(),
            key,
        }
    }

    fn item(front: &str, body: &str) -> Item {
        let clip = parse(format!("---\n{front}\n---\n{body}").as_bytes(), Limits::default()).unwrap().clipping;
        let key = crate::item::key_for(&clip, "x.md");
        Item {
            id: crate::item::id_for(&key),
            updated: "2024-05-01T10:00:00Z".parse().unwrap(),
            data: ItemData {
                published: clip.published.unwrap(),
                dated: true,
                topics: vec![TopicRef { slug: "ai".into(), name: "AI".into() }],
                clip,
            },
        }
    }

    fn hostile() -> Item {
        item(
            "title: \"<script>alert(1)</script>A & B ]]> \\x01\"\nexcerpt: \"x &lt;b&gt; ]]> y\"\npublishedDateTime: 2024-01-02T03:04:05Z\nwebUrl: https://a.example/?q=1&r=2\nprovider: {name: \"P<&>\", domain: p.example}",
            "Body ]]> <b onclick=x>bold</b>\n",
        )
    }

    #[test]
    fn rss_round_trips_through_feed_rs() {
        let bytes = rss(&meta(FeedKey::Topic("ai".into())), &[hostile()], &links());
        let s = String::from_utf8(bytes.clone()).unwrap();
        assert!(s.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>"), "{s}");
        assert!(!s.contains("onclick"), "{s}");
        assert!(s.contains("isPermaLink=\"false\""), "{s}");
        let f = feed_rs::parser::parse(&bytes[..]).expect("feed-rs parses RSS");
        let e = &f.entries[0];
        assert_eq!(e.title.as_ref().unwrap().content, "A & B ]]>");
        assert_eq!(e.links[0].href, "https://a.example/?q=1&r=2");
        assert_eq!(e.published.unwrap().to_rfc3339(), "2024-01-02T03:04:05+00:00");
        assert_eq!(e.categories[0].term, "AI");
        assert!(e.id.starts_with("urn:uuid:"));
        let summary = &e.summary.as_ref().unwrap().content;
        assert_eq!(summary, "x ]]&gt; y");
        let content = e.content.as_ref().unwrap().body.as_ref().unwrap();
        assert!(content.contains("<b>bold</b>") && content.contains("]]&gt;"), "{content}");
        assert!(s.contains("<atom:link href=\"http://feeds.test/base/topics/ai.rss\" rel=\"self\""), "{s}");
        assert!(
            s.contains("<source url=\"http://feeds.test/base/providers/p.example.rss\">P&lt;&amp;&gt;</source>"),
            "{s}"
        );
    }

    #[test]
    fn atom_round_trips_through_feed_rs() {
        let bytes = atom(&meta(FeedKey::Topic("ai".into())), &[hostile()], &links());
        let f = feed_rs::parser::parse(&bytes[..]).expect("feed-rs parses Atom");
        assert_eq!(f.id, FeedKey::Topic("ai".into()).urn());
        assert_eq!(f.updated.unwrap().to_rfc3339(), "2024-05-01T10:00:00+00:00");
        let e = &f.entries[0];
        assert_eq!(e.title.as_ref().unwrap().content, "A & B ]]>");
        assert_eq!(e.summary.as_ref().unwrap().content, "x ]]> y");
        assert_eq!(e.authors[0].name.as_deref(), Some("P<&>"));
        assert_eq!(e.authors[0].uri.as_deref(), Some("https://p.example/"));
        assert_eq!(e.categories[0].term, "ai");
        assert_eq!(e.categories[0].label.as_deref(), Some("AI"));
        let s = String::from_utf8(bytes).unwrap();
        assert!(s.contains("rel=\"self\""), "{s}");
        assert!(!s.contains("onclick"), "{s}");
    }

    #[test]
    fn empty_feeds_are_valid() {
        for format in Format::ALL {
            let bytes = render(format, &meta(FeedKey::All), &[], &links());
            let f = feed_rs::parser::parse(&bytes[..]).expect("parses");
            assert!(f.entries.is_empty());
        }
    }

    #[test]
    fn rendering_is_deterministic() {
        let items = [hostile(), item("title: Other\npublishedDateTime: 2024-01-01", "")];
        for format in Format::ALL {
            let m = meta(FeedKey::All);
            assert_eq!(render(format, &m, &items, &links()), render(format, &m, &items, &links()));
        }
    }

    #[test]
    fn feed_ids_do_not_depend_on_base_url() {
        assert_eq!(FeedKey::All.urn(), FeedKey::All.urn());
        assert_ne!(FeedKey::All.urn(), FeedKey::Topic("ai".into()).urn());
        assert_eq!(FeedKey::Provider("vice.com".into()).path_stem(), "providers/vice.com");
    }
}
