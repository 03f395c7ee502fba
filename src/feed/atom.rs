//! Atom 1.0 (RFC 4287) through `atom_syndication`, with RFC 5005 archive links and `fh:archive`,
//! RFC 6721 `at:deleted-entry` tombstones, enclosure and related links.

use std::collections::BTreeMap;

use atom_syndication::{Category, Content, Entry, Feed, Generator, Link, Person, Text, WriteConfig};

use super::{Doc, Format, Links, Page, content_html, image_mime, picture, x, xml_prolog};
use crate::item::{self, Item};

const TOMBSTONE_NS: &str = "http://purl.org/atompub/tombstones/1.0";
const HISTORY_NS: &str = "http://purl.org/syndication/history/1.0";

fn link(rel: &str, href: String, mime: Option<&str>) -> Link {
    Link { href: x(&href), rel: rel.into(), mime_type: mime.map(String::from), ..Default::default() }
}

fn entry(it: &Item, links: &Links) -> Entry {
    let d = &it.data;
    let mut entry_links: Vec<Link> =
        links.item_link(it).map(|href| link("alternate", href, Some("text/html"))).into_iter().collect();
    let has_alternate = !entry_links.is_empty();
    if let Some(img) = picture(it) {
        entry_links.push(link("enclosure", img.url.clone(), Some(image_mime(&img.url))));
    }
    for r in &d.clip.related {
        entry_links.push(Link { title: Some(x(&r.title)), ..link("related", r.url.clone(), Some("text/html")) });
    }
    Entry {
        id: item::urn(&it.id),
        title: Text::plain(x(&d.clip.title)),
        updated: it.updated.fixed_offset(),
        published: Some(d.published.fixed_offset()),
        links: entry_links,
        summary: d.clip.excerpt.as_deref().map(|e| Text::plain(x(e))),
        content: match content_html(it) {
            Some(html) => {
                Some(Content { value: Some(x(&html)), content_type: Some("html".into()), ..Default::default() })
            }
            // An entry with no alternate link must have content (RFC 4287, 4.1.1): a private
            // feed's item with neither a URL nor a body has its excerpt, else its title, as text.
            None if !has_alternate => Some(Content {
                value: Some(x(d.clip.excerpt.as_deref().unwrap_or(&d.clip.title))),
                content_type: Some("text".into()),
                ..Default::default()
            }),
            None => None,
        },
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
}

/// Escapes an attribute value we write ourselves.
fn attr(s: &str) -> String {
    x(s).replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub(crate) fn render(doc: &Doc<'_>, links: &Links) -> Vec<u8> {
    let meta = doc.meta;
    let key = &meta.key;
    let atom_type = Some(Format::Atom.media_type());
    let mut feed_links = vec![
        link("self", links.self_url(doc, Format::Atom), atom_type),
        link("alternate", links.base().to_string(), Some("text/html")),
    ];
    feed_links.extend(links.hubs(doc.page).iter().map(|hub| link("hub", hub.clone(), None)));
    let mut namespaces = BTreeMap::new();
    // Feed-level extension elements must come before the entries (RFC 4287's schema), which
    // atom_syndication does not do; they are written here and spliced in.
    let mut before_entries = String::new();
    match doc.page {
        Page::Current { .. } | Page::Filtered { .. } | Page::Story { .. } => {
            if let Page::Current { newest_archive: Some(n), page_size } = doc.page {
                feed_links.push(link("prev-archive", links.archive(key, *page_size, *n, Format::Atom), atom_type));
            }
            if !doc.tombstones.is_empty() {
                namespaces.insert("at".to_string(), TOMBSTONE_NS.to_string());
                for (id, when) in doc.tombstones {
                    before_entries.push_str(&format!(
                        "\n  <at:deleted-entry ref=\"{}\" when=\"{}\"/>",
                        attr(&item::urn(id)),
                        when.to_rfc3339()
                    ));
                }
            }
        }
        Page::Archive { index, page_size, has_next } => {
            feed_links.push(link("current", links.feed(key, Format::Atom), atom_type));
            if *index > 0 {
                feed_links.push(link(
                    "prev-archive",
                    links.archive(key, *page_size, index - 1, Format::Atom),
                    atom_type,
                ));
            }
            if *has_next {
                feed_links.push(link(
                    "next-archive",
                    links.archive(key, *page_size, index + 1, Format::Atom),
                    atom_type,
                ));
            }
            namespaces.insert("fh".to_string(), HISTORY_NS.to_string());
            before_entries.push_str("\n  <fh:archive/>");
        }
    }
    let feed = Feed {
        id: match doc.page {
            Page::Story { id } => links.story_page(id),
            _ => key.urn(),
        },
        title: Text::plain(x(&meta.title)),
        subtitle: Some(Text::plain(x(&meta.description))),
        updated: meta.updated.fixed_offset(),
        authors: vec![Person { name: x(&meta.site_title), ..Default::default() }],
        generator: Some(Generator { value: "clipfeed".into(), uri: None, version: None }),
        icon: meta.icon.as_ref().map(|i| x(&i.url)),
        links: feed_links,
        entries: doc.items.iter().map(|it| entry(it, links)).collect(),
        namespaces,
        ..Default::default()
    };
    let mut xml = Vec::with_capacity(4096 + doc.items.len() * 2048);
    let cfg = WriteConfig { write_document_declaration: false, indent_size: Some(2) };
    feed.write_with_config(&mut xml, cfg).expect("writing Atom to memory cannot fail");
    let mut out = xml_prolog(doc).into_bytes();
    if before_entries.is_empty() {
        out.extend_from_slice(&xml);
    } else {
        // Text and attribute values are escaped, so the first "<entry>" (or "</feed>") in the
        // output is the element itself.
        let at = find(&xml, b"\n  <entry>").or_else(|| find(&xml, b"\n</feed>")).unwrap_or(xml.len());
        out.extend_from_slice(&xml[..at]);
        out.extend_from_slice(before_entries.as_bytes());
        out.extend_from_slice(&xml[at..]);
    }
    out.push(b'\n');
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::super::tests::*;
    use super::super::*;

    #[test]
    fn atom_round_trips_through_feed_rs() {
        let m = meta(FeedKey::Topic("ai".into()));
        let items = [hostile()];
        let page = Page::Current { newest_archive: None, page_size: 5 };
        let bytes = render(Format::Atom, &doc(&m, &page, &items), &links());
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
        let rels: Vec<_> = e.links.iter().map(|l| l.rel.clone().unwrap_or_default()).collect();
        assert_eq!(rels, ["alternate", "enclosure", "related"]);
        let s = String::from_utf8(bytes).unwrap();
        assert!(s.contains("rel=\"self\""), "{s}");
        assert!(!s.contains("onclick"), "{s}");
    }

    #[test]
    fn tombstones_and_archive_marks_come_before_entries() {
        let m = meta(FeedKey::All);
        let items = [hostile()];
        let stones = [("0000-id".to_string(), "2024-05-02T00:00:00Z".parse().unwrap())];
        let page = Page::Current { newest_archive: Some(0), page_size: 5 };
        let d = Doc { meta: &m, page: &page, items: &items, tombstones: &stones };
        let s = String::from_utf8(render(Format::Atom, &d, &links())).unwrap();
        let stone =
            s.find("<at:deleted-entry ref=\"urn:uuid:0000-id\" when=\"2024-05-02T00:00:00+00:00\"/>").expect(&s);
        assert!(stone < s.find("<entry>").unwrap(), "{s}");
        assert!(s.contains("xmlns:at=\"http://purl.org/atompub/tombstones/1.0\""), "{s}");
        assert!(s.contains("rel=\"prev-archive\""), "{s}");
        let page = Page::Archive { index: 0, page_size: 5, has_next: false };
        let s = String::from_utf8(render(Format::Atom, &doc(&m, &page, &[]), &links())).unwrap();
        assert!(s.contains("<fh:archive/>\n</feed>"), "{s}");
        assert!(!s.contains("prev-archive") && !s.contains("next-archive"), "{s}");
        feed_rs::parser::parse(s.as_bytes()).unwrap();
    }
}
