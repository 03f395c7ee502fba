//! Feed documents: RSS 2.0 (through the `rss` crate), Atom 1.0 (through `atom_syndication`), JSON
//! Feed 1.1 (through serde_json), and the OPML list of every feed. The only module that writes
//! XML or feed JSON. It takes a [`Doc`] (the feed's description, which page of it, and its items,
//! already chosen and ordered by the store) and returns bytes.
//!
//! Pure and deterministic: the same inputs give the same bytes, so ETags are stable. The feed's
//! time is given by the caller (the time its content last changed), never read from the clock.
//! Every absolute URL comes from [`Links`], that is, from `base_url`; ids never do.

mod atom;
mod json;
mod rss;

use chrono::{DateTime, Utc};

use crate::clip::Image;
use crate::item::{self, Item};
use crate::text;

pub use crate::feed_key::FeedKey;

impl FeedKey {
    /// The feed's Atom id: a v5 UUID URN of its path, independent of `base_url`.
    pub(crate) fn urn(&self) -> String {
        item::urn(&item::id_for(&format!("feed:{}", self.path_stem())))
    }
}

/// Feed formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    Rss,
    Atom,
    Json,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Rss, Format::Atom, Format::Json];

    pub(crate) fn extension(self) -> &'static str {
        match self {
            Format::Rss => "rss",
            Format::Atom => "atom",
            Format::Json => "json",
        }
    }

    pub(crate) fn from_extension(ext: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.extension() == ext)
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Rss => "application/rss+xml; charset=utf-8",
            Format::Atom => "application/atom+xml; charset=utf-8",
            Format::Json => "application/feed+json; charset=utf-8",
        }
    }

    /// The media type alone, for `type` attributes.
    pub(crate) fn media_type(self) -> &'static str {
        self.content_type().split(';').next().unwrap_or("")
    }
}

/// Everything about a feed that is not its items or its page.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedMeta {
    pub key: FeedKey,
    pub title: String,
    pub description: String,
    /// Name of the site, the feed-level author.
    pub site_title: String,
    /// When the document's content last changed.
    pub updated: DateTime<Utc>,
    /// The provider's logo, on provider feeds.
    pub icon: Option<Image>,
}

/// Which document of a feed: the subscription document, one archive page (RFC 5005), or a view
/// narrowed by query filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    /// The subscription document; links to the newest archive page (of `page_size` slots) when
    /// there is one.
    Current { newest_archive: Option<u64>, page_size: u64 },
    /// Archive page `index` (0 is the oldest) of `page_size` slots; `has_next` when a newer full
    /// page follows it.
    Archive { index: u64, page_size: u64, has_next: bool },
    /// The feed filtered by a query string (kept, normalised, for the self link).
    Filtered { query: String },
    /// The feed of one story (`/stories/{id}`): its member clippings.
    Story { id: String },
}

/// One document to render.
#[derive(Debug, Clone, Copy)]
pub struct Doc<'a> {
    pub meta: &'a FeedMeta,
    pub page: &'a Page,
    pub items: &'a [Item],
    /// Items that left the feed recently, for RFC 6721 tombstones: (id, when).
    pub tombstones: &'a [(String, DateTime<Utc>)],
}

/// How absolute URLs are made: all of them start with `base_url`. A feed's subscription
/// document also names the WebSub hubs it is advertised to (`rel="hub"`), when the writer gives
/// them (`Links::with_hubs`); archive pages and filtered views never do (they are no topics).
#[derive(Debug, Clone)]
pub struct Links {
    base: String,
    hubs: Vec<String>,
    /// The links of a feed's story-grouped documents: the subscription document and its
    /// archive pages keep `?group=story` (the story log's pages, see `views/story_log`).
    grouped: bool,
    /// The links of a private feed's documents: its clippings' pages here are public pages,
    /// which its clippings do not have, so an item links to its article or to nothing.
    private: bool,
}

impl Links {
    pub fn new(base_url: &url::Url) -> Links {
        Links { base: base_url.to_string(), hubs: Vec::new(), grouped: false, private: false }
    }

    /// These links for a private feed's documents (`private`, as `Visibility` says of the feed).
    pub(crate) fn for_private(&self, private: bool) -> Links {
        Links { private, ..self.clone() }
    }

    /// These links for a story-grouped document: feed and archive URLs carry `?group=story`.
    pub(crate) fn grouped(&self) -> Links {
        Links { grouped: true, ..self.clone() }
    }

    /// Whether these are the links of a story-grouped document.
    pub(crate) fn is_grouped(&self) -> bool {
        self.grouped
    }

    /// `?group=story` on the links of a story-grouped document.
    fn group_query(&self) -> &'static str {
        if self.grouped { "?group=story" } else { "" }
    }

    /// These links, with the hubs a feed's subscription document advertises.
    pub(crate) fn with_hubs(&self, hubs: Vec<String>) -> Links {
        Links { base: self.base.clone(), hubs, grouped: self.grouped, private: self.private }
    }

    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// The hubs a document of `page` names: the writer's, on subscription documents only.
    pub(crate) fn hubs(&self, page: &Page) -> &[String] {
        match page {
            Page::Current { .. } => &self.hubs,
            Page::Archive { .. } | Page::Filtered { .. } | Page::Story { .. } => &[],
        }
    }

    /// What a feed's signature covers of its links: the base URL, the hubs when there are any
    /// (so a feed without hubs keeps the signature it had before hubs existed), and whether the
    /// feed is private (its items link to no page here).
    pub(crate) fn identity(&self) -> String {
        let mut id =
            if self.hubs.is_empty() { self.base.clone() } else { format!("{}\0{}", self.base, self.hubs.join("\0")) };
        if self.private {
            id.push_str("\0private");
        }
        id
    }

    pub(crate) fn feed(&self, key: &FeedKey, format: Format) -> String {
        format!("{}{}.{}{}", self.base, key.path_stem(), format.extension(), self.group_query())
    }

    /// Path of an archive page below the base URL: `{stem}/archive/{page_size}-{index}.{ext}`.
    /// The page size is part of the name, so a page's URL always means the same slots of the
    /// feed's log, even after `items_per_feed` changes.
    pub(crate) fn archive_path(key: &FeedKey, page_size: u64, index: u64, format: Format) -> String {
        format!("{}/archive/{page_size}-{index}.{}", key.path_stem(), format.extension())
    }

    pub(crate) fn archive(&self, key: &FeedKey, page_size: u64, index: u64, format: Format) -> String {
        format!("{}{}{}", self.base, Links::archive_path(key, page_size, index, format), self.group_query())
    }

    pub(crate) fn opml(&self) -> String {
        format!("{}feeds.opml", self.base)
    }

    /// The URL of the document itself (`rel="self"`).
    pub(crate) fn self_url(&self, doc: &Doc<'_>, format: Format) -> String {
        match doc.page {
            Page::Current { .. } => self.feed(&doc.meta.key, format),
            Page::Archive { index, page_size, .. } => self.archive(&doc.meta.key, *page_size, *index, format),
            Page::Filtered { query } => format!("{}?{query}", self.feed(&doc.meta.key, format)),
            Page::Story { id } => self.story_feed(id, format),
        }
    }

    /// The HTML page of a story.
    pub(crate) fn story_page(&self, id: &str) -> String {
        format!("{}stories/{id}", self.base)
    }

    /// The feed of a story in `format`.
    pub(crate) fn story_feed(&self, id: &str, format: Format) -> String {
        format!("{}stories/{id}.{}", self.base, format.extension())
    }

    /// The page of a clipping on this site (the link of items without a URL of their own).
    pub(crate) fn clipping_page(&self, id: &str) -> String {
        format!("{}clippings/{id}", self.base)
    }

    /// What an item links to: its article, else its page here (none in a private feed's
    /// documents: the page is public-only, and would answer 404).
    pub(crate) fn item_link(&self, item: &Item) -> Option<String> {
        item.data.clip.url.clone().or_else(|| (!self.private).then(|| self.clipping_page(&item.id)))
    }

    /// Whether items may link to their pages here (a public feed's documents).
    pub(crate) fn has_pages(&self) -> bool {
        !self.private
    }
}

/// The stylesheet that shows RSS and Atom feeds as a page in browsers (served at `/feed.xsl`,
/// exported as `feed.xsl`).
pub(crate) const FEED_XSL: &str = include_str!("../assets/feed.xsl");

/// The stylesheet browsers use to show XML feeds as a page, relative to the document so it
/// resolves to this server whatever host name or path prefix the browser used.
fn stylesheet_href(doc: &Doc<'_>) -> String {
    let depth = match doc.page {
        Page::Story { .. } => 1,
        Page::Archive { .. } => doc.meta.key.path_stem().matches('/').count() + 2,
        _ => doc.meta.key.path_stem().matches('/').count(),
    };
    format!("{}feed.xsl", "../".repeat(depth))
}

/// The XML declaration and stylesheet instruction every XML feed starts with.
fn xml_prolog(doc: &Doc<'_>) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<?xml-stylesheet type=\"text/xsl\" href=\"{}\"?>\n",
        stylesheet_href(doc)
    )
}

/// Renders one document in one format.
pub fn render(format: Format, doc: &Doc<'_>, links: &Links) -> Vec<u8> {
    match format {
        Format::Rss => rss::render(doc, links),
        Format::Atom => atom::render(doc, links),
        Format::Json => json::render(doc, links),
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

/// The item's full content as HTML: the sanitised body, then a short list of related articles.
/// `None` when there is neither.
fn content_html(item: &Item) -> Option<String> {
    let clip = &item.data.clip;
    if clip.related.is_empty() {
        return clip.content_html.clone();
    }
    let mut html = clip.content_html.clone().unwrap_or_default();
    if !html.is_empty() {
        html.push('\n');
    }
    html.push_str("<h3>Related</h3>\n<ul>\n");
    for r in &clip.related {
        let esc = |s: &str| text::html_escape(s).into_owned();
        html.push_str(&format!("<li><a href=\"{}\">{}</a>", esc(&r.url), esc(&r.title)));
        if let Some(p) = &r.provider {
            html.push_str(&format!(" ({})", esc(p)));
        }
        html.push_str("</li>\n");
    }
    html.push_str("</ul>");
    Some(html)
}

/// The media type of an image, from its URL's extension. Image URLs without a known extension
/// (common: `…/social`, `…/photo?w=800`) are said to be JPEG, the format of most news photos, so
/// readers show them rather than offer a download.
pub(crate) fn image_mime(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).filter(|e| !e.contains('/'));
    match ext.as_deref() {
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("svg") => "image/svg+xml",
        Some("avif") => "image/avif",
        Some("bmp") => "image/bmp",
        Some("ico") => "image/x-icon",
        _ => "image/jpeg",
    }
}

/// The item's picture: its first image.
fn picture(item: &Item) -> Option<&Image> {
    item.data.clip.images.first()
}

/// A listed feed, for OPML.
#[derive(Debug, Clone, PartialEq)]
pub struct Outline {
    pub(crate) key: FeedKey,
    pub(crate) title: String,
}

/// OPML 2.0: the all-clippings feed, then one group of topics and one of providers, each outline
/// `type="rss"` with `xmlUrl` (the RSS feed) and `htmlUrl`.
pub(crate) fn opml(
    site_title: &str,
    updated: DateTime<Utc>,
    topics: &[Outline],
    providers: &[Outline],
    links: &Links,
) -> Vec<u8> {
    use quick_xml::Writer;
    use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

    let mut w = Writer::new_with_indent(Vec::with_capacity(4096 + 300 * (topics.len() + providers.len())), b' ', 2);
    let outline = |w: &mut Writer<Vec<u8>>, o: &Outline| {
        let mut e = BytesStart::new("outline");
        let title = x(&o.title);
        e.push_attribute(("type", "rss"));
        e.push_attribute(("text", title.as_str()));
        e.push_attribute(("title", title.as_str()));
        e.push_attribute(("xmlUrl", links.feed(&o.key, Format::Rss).as_str()));
        e.push_attribute(("htmlUrl", links.base()));
        w.write_event(Event::Empty(e))
    };
    let mut write = || -> std::io::Result<()> {
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))?;
        let mut root = BytesStart::new("opml");
        root.push_attribute(("version", "2.0"));
        w.write_event(Event::Start(root))?;
        w.write_event(Event::Start(BytesStart::new("head")))?;
        for (name, value) in [
            ("title", format!("{}: all feeds", x(site_title))),
            ("dateModified", updated.to_rfc2822()),
            ("docs", "http://opml.org/spec2.opml".to_string()),
        ] {
            w.write_event(Event::Start(BytesStart::new(name)))?;
            w.write_event(Event::Text(BytesText::new(&value)))?;
            w.write_event(Event::End(BytesEnd::new(name)))?;
        }
        w.write_event(Event::End(BytesEnd::new("head")))?;
        w.write_event(Event::Start(BytesStart::new("body")))?;
        outline(&mut w, &Outline { key: FeedKey::All, title: format!("{site_title}: all clippings") })?;
        for (group, list) in [("Topics", topics), ("News sites", providers)] {
            if list.is_empty() {
                continue;
            }
            let mut g = BytesStart::new("outline");
            g.push_attribute(("text", group));
            g.push_attribute(("title", group));
            w.write_event(Event::Start(g))?;
            for o in list {
                outline(&mut w, o)?;
            }
            w.write_event(Event::End(BytesEnd::new("outline")))?;
        }
        w.write_event(Event::End(BytesEnd::new("body")))?;
        w.write_event(Event::End(BytesEnd::new("opml")))?;
        Ok(())
    };
    write().expect("writing OPML to memory cannot fail");
    let mut out = w.into_inner();
    out.push(b'\n');
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::clip::{Limits, parse};
    use crate::item::{ItemData, TopicRef};

    pub(crate) fn links() -> Links {
        Links::new(&url::Url::parse("http://feeds.test/base/").unwrap())
    }

    pub(crate) fn meta(key: FeedKey) -> FeedMeta {
        FeedMeta {
            title: "Clippings: AI".into(),
            description: "About AI".into(),
            site_title: "Clippings".into(),
            updated: "2024-05-01T10:00:00Z".parse().unwrap(),
            icon: None,
            key,
        }
    }

    pub(crate) fn item(front: &str, body: &str) -> Item {
        let clip = parse(format!("---\n{front}\n---\n{body}").as_bytes(), Limits::default()).unwrap().clipping;
        let key = crate::item::key_for(&clip, "x.md");
        Item {
            id: crate::item::id_for(&key),
            updated: "2024-05-01T10:00:00Z".parse().unwrap(),
            data: ItemData {
                published: clip.published.unwrap_or("2024-01-01T00:00:00Z".parse().unwrap()),
                dated: true,
                topics: vec![TopicRef { slug: "ai".into(), name: "AI".into() }],
                clip,
                also: Vec::new(),
            },
        }
    }

    pub(crate) fn hostile() -> Item {
        item(
            "title: \"<script>alert(1)</script>A & B ]]> \\x01\"\nexcerpt: \"x &lt;b&gt; ]]> y\"\npublishedDateTime: 2024-01-02T03:04:05Z\nwebUrl: https://a.example/?q=1&r=2\nprovider: {name: \"P<&>\", domain: p.example}\nimages:\n  - url: https://img.example/photo.PNG?w=1\n    width: 640\n    height: 480\nrelated:\n  - title: \"Other <take>\"\n    webUrl: https://other.example/story\n    provider: {name: Other}",
            "Body ]]> <b onclick=x>bold</b>\n",
        )
    }

    pub(crate) fn doc<'a>(meta: &'a FeedMeta, page: &'a Page, items: &'a [Item]) -> Doc<'a> {
        Doc { meta, page, items, tombstones: &[] }
    }

    #[test]
    fn every_format_is_deterministic_and_parses() {
        let items = [hostile(), item("title: Other\npublishedDateTime: 2024-01-01", "")];
        let m = meta(FeedKey::All);
        for page in [
            Page::Current { newest_archive: Some(3), page_size: 5 },
            Page::Archive { index: 1, page_size: 5, has_next: true },
            Page::Filtered { query: "q=x&limit=2".into() },
        ] {
            for format in Format::ALL {
                let d = doc(&m, &page, &items);
                let bytes = render(format, &d, &links());
                assert_eq!(bytes, render(format, &d, &links()), "{format:?} {page:?}");
                let f = feed_rs::parser::parse(&bytes[..]).unwrap_or_else(|e| panic!("{format:?} {page:?}: {e}"));
                assert_eq!(f.entries.len(), 2);
            }
        }
    }

    #[test]
    fn empty_feeds_are_valid() {
        let m = meta(FeedKey::All);
        for format in Format::ALL {
            let bytes = render(format, &doc(&m, &Page::Current { newest_archive: None, page_size: 5 }, &[]), &links());
            let f = feed_rs::parser::parse(&bytes[..]).expect("parses");
            assert!(f.entries.is_empty());
        }
    }

    #[test]
    fn stems_and_keys() {
        for key in [FeedKey::All, FeedKey::Topic("ai".into()), FeedKey::Provider("vice.com".into())] {
            assert_eq!(FeedKey::from_stem(&key.path_stem()), Some(key));
        }
        assert_eq!(FeedKey::from_stem("topics/Bad Slug"), None);
        assert_eq!(FeedKey::from_stem("nope/x"), None);
        assert_eq!(FeedKey::from_stem("providers/a/b"), None);
        assert_ne!(FeedKey::All.urn(), FeedKey::Topic("ai".into()).urn());
    }

    #[test]
    fn stylesheet_is_relative() {
        let m = meta(FeedKey::Topic("ai".into()));
        let cur = Page::Current { newest_archive: None, page_size: 5 };
        assert_eq!(stylesheet_href(&doc(&m, &cur, &[])), "../feed.xsl");
        let arch = Page::Archive { index: 0, page_size: 5, has_next: false };
        assert_eq!(stylesheet_href(&doc(&m, &arch, &[])), "../../../feed.xsl");
        let all = meta(FeedKey::All);
        assert_eq!(stylesheet_href(&doc(&all, &cur, &[])), "feed.xsl");
    }

    #[test]
    fn image_types() {
        assert_eq!(image_mime("https://a/b.PNG?x=1"), "image/png");
        assert_eq!(image_mime("https://a/b.webp"), "image/webp");
        assert_eq!(image_mime("https://a.example/social"), "image/jpeg");
        assert_eq!(image_mime("https://a.example/dir.v2/photo"), "image/jpeg");
    }

    #[test]
    fn related_articles_become_content() {
        let html = content_html(&hostile()).unwrap();
        assert!(html.contains("<h3>Related</h3>"));
        assert!(html.contains("<a href=\"https://other.example/story\">Other</a> (Other)"), "{html}");
    }

    #[test]
    fn opml_lists_every_feed() {
        let t = [Outline { key: FeedKey::Topic("ai".into()), title: "A & I".into() }];
        let p = [Outline { key: FeedKey::Provider("vice.com".into()), title: "VICE".into() }];
        let bytes = opml("Site", "2024-05-01T10:00:00Z".parse().unwrap(), &t, &p, &links());
        let s = String::from_utf8(bytes).unwrap();
        assert!(s.contains("<opml version=\"2.0\">"), "{s}");
        assert!(s.contains("xmlUrl=\"http://feeds.test/base/topics/ai.rss\""), "{s}");
        assert!(s.contains("text=\"A &amp; I\""), "{s}");
        assert!(s.contains("<outline text=\"News sites\""), "{s}");
    }
}
