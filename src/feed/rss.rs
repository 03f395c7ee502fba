//! RSS 2.0 through the `rss` crate, with `atom:link` (self and RFC 5005 archive links),
//! `content:encoded`, `dc:creator`, `enclosure` and Media RSS for the picture.

use std::collections::BTreeMap;

use rss::extension::Extension;
use rss::extension::atom::{AtomExtension, Link as AtomLink};
use rss::extension::dublincore::DublinCoreExtension;
use rss::{Category, Channel, Enclosure, Guid, Source};

use super::{Doc, FeedKey, Format, Links, Page, content_html, image_mime, picture, text_as_html, x, xml_prolog};
use crate::item::{self, Item};

const MEDIA_NS: &str = "http://search.yahoo.com/mrss/";
const HISTORY_NS: &str = "http://purl.org/syndication/history/1.0";

fn element(name: &str, attrs: &[(&str, String)]) -> Extension {
    Extension {
        name: name.to_string(),
        value: None,
        attrs: attrs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        children: BTreeMap::new(),
    }
}

fn atom_link(rel: &str, href: String) -> AtomLink {
    AtomLink { href: x(&href), rel: rel.into(), mime_type: Some(Format::Rss.media_type().into()), ..Default::default() }
}

fn rss_item(it: &Item, links: &Links) -> rss::Item {
    let d = &it.data;
    let provider = d.clip.provider.as_ref();
    let mut extensions = BTreeMap::new();
    let mut enclosure = None;
    if let Some(img) = picture(it) {
        let mime = image_mime(&img.url);
        // The file size is not known; RSS requires the attribute and readers accept 0.
        enclosure = Some(Enclosure { url: x(&img.url), length: "0".into(), mime_type: mime.into() });
        let mut size = Vec::new();
        size.extend(img.width.map(|w| ("width", w.to_string())));
        size.extend(img.height.map(|h| ("height", h.to_string())));
        let mut content = vec![("url", x(&img.url)), ("medium", "image".to_string()), ("type", mime.to_string())];
        content.extend(size.iter().cloned());
        let mut thumbnail = vec![("url", x(&img.url))];
        thumbnail.extend(size);
        let media = BTreeMap::from([
            ("content".to_string(), vec![element("media:content", &content)]),
            ("thumbnail".to_string(), vec![element("media:thumbnail", &thumbnail)]),
        ]);
        extensions.insert("media".to_string(), media);
    }
    rss::Item {
        title: Some(x(&d.clip.title)),
        link: links.item_link(it).map(|l| x(&l)),
        description: d.clip.excerpt.as_deref().map(|e| x(&text_as_html(e))),
        content: content_html(it).map(|h| x(&h)),
        pub_date: Some(d.published.to_rfc2822()),
        guid: Some(Guid { value: item::urn(&it.id), permalink: false }),
        categories: d.topics.iter().map(|t| Category { name: x(&t.name), domain: None }).collect(),
        source: provider.and_then(|p| {
            let domain = p.domain.as_ref()?;
            Some(Source { url: links.feed(&FeedKey::Provider(domain.clone()), Format::Rss), title: Some(x(&p.name)) })
        }),
        dublin_core_ext: provider.map(|p| DublinCoreExtension { creators: vec![x(&p.name)], ..Default::default() }),
        enclosure,
        extensions,
        ..Default::default()
    }
}

pub(crate) fn render(doc: &Doc<'_>, links: &Links) -> Vec<u8> {
    let meta = doc.meta;
    let key = &meta.key;
    let mut atom_links = vec![atom_link("self", links.self_url(doc, Format::Rss))];
    atom_links.extend(links.hubs(doc.page).iter().map(|hub| AtomLink {
        href: x(hub),
        rel: "hub".into(),
        ..Default::default()
    }));
    let mut extensions = BTreeMap::new();
    let mut namespaces = BTreeMap::new();
    match doc.page {
        Page::Current { newest_archive: Some(n), page_size } => {
            atom_links.push(atom_link("prev-archive", links.archive(key, *page_size, *n, Format::Rss)))
        }
        Page::Archive { index, page_size, has_next } => {
            atom_links.push(atom_link("current", links.feed(key, Format::Rss)));
            if *index > 0 {
                atom_links.push(atom_link("prev-archive", links.archive(key, *page_size, index - 1, Format::Rss)));
            }
            if *has_next {
                atom_links.push(atom_link("next-archive", links.archive(key, *page_size, index + 1, Format::Rss)));
            }
            namespaces.insert("fh".to_string(), HISTORY_NS.to_string());
            // An empty value keeps the pretty printer from putting white space inside.
            let mark = Extension { value: Some(String::new()), ..element("fh:archive", &[]) };
            extensions.insert("fh".to_string(), BTreeMap::from([("archive".to_string(), vec![mark])]));
        }
        Page::Current { newest_archive: None, .. } | Page::Filtered { .. } | Page::Story { .. } => {}
    }
    let items: Vec<rss::Item> = doc.items.iter().map(|it| rss_item(it, links)).collect();
    if items.iter().any(|i| !i.extensions.is_empty()) {
        namespaces.insert("media".to_string(), MEDIA_NS.to_string());
    }
    let image = meta.icon.as_ref().map(|icon| rss::Image {
        url: x(&icon.url),
        title: x(&meta.title),
        link: x(links.base()),
        // RSS 2.0 caps the image at 144 x 400.
        width: icon.width.filter(|w| *w <= 144).map(|w| w.to_string()),
        height: icon.height.filter(|h| *h <= 400).map(|h| h.to_string()),
        description: None,
    });
    let channel = Channel {
        title: x(&meta.title),
        link: x(links.base()),
        description: x(&meta.description),
        last_build_date: Some(meta.updated.to_rfc2822()),
        generator: Some("clipfeed".into()),
        docs: Some("https://www.rssboard.org/rss-specification".into()),
        atom_ext: Some(AtomExtension { links: atom_links }),
        image,
        items,
        extensions,
        namespaces,
        ..Default::default()
    };
    let mut xml = Vec::with_capacity(4096 + doc.items.len() * 2048);
    channel.pretty_write_to(&mut xml, b' ', 2).expect("writing RSS to memory cannot fail");
    // The crate writes its own declaration; ours adds the stylesheet for browsers.
    let body = match xml.iter().position(|&b| b == b'>') {
        Some(end) if xml.starts_with(b"<?xml") => &xml[end + 1..],
        _ => &xml[..],
    };
    let mut out = xml_prolog(doc).into_bytes();
    out.extend_from_slice(body.strip_prefix(b"\n").unwrap_or(body));
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::*;
    use super::super::*;

    #[test]
    fn rss_round_trips_through_feed_rs() {
        let m = meta(FeedKey::Topic("ai".into()));
        let items = [hostile()];
        let page = Page::Current { newest_archive: Some(2), page_size: 5 };
        let bytes = render(Format::Rss, &doc(&m, &page, &items), &links());
        let s = String::from_utf8(bytes.clone()).unwrap();
        assert!(s.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<?xml-stylesheet type=\"text/xsl\" href=\"../feed.xsl\"?>\n<rss"), "{s}");
        assert!(!s.contains("onclick"), "{s}");
        assert!(s.contains("isPermaLink=\"false\""), "{s}");
        let f = feed_rs::parser::parse(&bytes[..]).expect("feed-rs parses RSS");
        let e = &f.entries[0];
        assert_eq!(e.title.as_ref().unwrap().content, "A & B ]]>");
        assert_eq!(e.links[0].href, "https://a.example/?q=1&r=2");
        assert_eq!(e.published.unwrap().to_rfc3339(), "2024-01-02T03:04:05+00:00");
        assert_eq!(e.categories[0].term, "AI");
        assert!(e.id.starts_with("urn:uuid:"));
        assert_eq!(e.summary.as_ref().unwrap().content, "x ]]&gt; y");
        let content = e.content.as_ref().unwrap().body.as_ref().unwrap();
        assert!(content.contains("<b>bold</b>") && content.contains("Related"), "{content}");
        assert!(s.contains("<atom:link href=\"http://feeds.test/base/topics/ai.rss\" rel=\"self\""), "{s}");
        assert!(s.contains("rel=\"prev-archive\""), "{s}");
        assert!(
            s.contains("<source url=\"http://feeds.test/base/providers/p.example.rss\">P&lt;&amp;&gt;</source>"),
            "{s}"
        );
        assert!(
            s.contains("<enclosure url=\"https://img.example/photo.PNG?w=1\" length=\"0\" type=\"image/png\"/>"),
            "{s}"
        );
        assert!(s.contains("<media:content url=\"https://img.example/photo.PNG?w=1\" medium=\"image\" type=\"image/png\" width=\"640\" height=\"480\"/>") || s.contains("media:content"), "{s}");
        assert!(s.contains("xmlns:media=\"http://search.yahoo.com/mrss/\""), "{s}");
        assert_eq!(e.media[0].content[0].url.as_ref().unwrap().as_str(), "https://img.example/photo.PNG?w=1");
    }

    #[test]
    fn archive_pages_link_both_ways() {
        let m = meta(FeedKey::Topic("ai".into()));
        let page = Page::Archive { index: 1, page_size: 5, has_next: true };
        let s = String::from_utf8(render(Format::Rss, &doc(&m, &page, &[]), &links())).unwrap();
        assert!(s.contains("<fh:archive></fh:archive>"), "{s}");
        assert!(s.contains("href=\"http://feeds.test/base/topics/ai/archive/5-0.rss\" rel=\"prev-archive\""), "{s}");
        assert!(s.contains("href=\"http://feeds.test/base/topics/ai/archive/5-2.rss\" rel=\"next-archive\""), "{s}");
        assert!(s.contains("href=\"http://feeds.test/base/topics/ai.rss\" rel=\"current\""), "{s}");
        assert!(s.contains("href=\"http://feeds.test/base/topics/ai/archive/5-1.rss\" rel=\"self\""), "{s}");
    }
}
