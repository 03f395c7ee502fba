//! The checks shared by the property tests (`props.rs`) and the cargo-fuzz targets (`fuzz/`,
//! which include this file by path): what must hold for any input to the clipping parser, the
//! feed renderers and the fast YAML reader. Each check panics with a message naming the broken
//! rule, which is what both proptest and libFuzzer report.
//!
//! Output is read back with parsers we did not write: feed-rs for RSS, Atom and JSON Feed,
//! quick-xml for XML well-formedness, serde_json for JSON, serde_yaml as the YAML reference.

use chrono::{DateTime, Utc};
use clipfeed::Topics;
use clipfeed::{Clipping, Image, Limits, parse_clipping};
use clipfeed::{Doc, FeedKey, FeedMeta, Format, Links, Page, render_feed};
use clipfeed::{Item, Source, item_id, item_key, merge_item};
use serde_json::Value;

/// Parses `bytes` as a clipping file. A rejection must be a one-line reason; an accepted
/// clipping goes through [`check_clipping`]. Returns whether the file was accepted.
pub fn check_file(bytes: &[u8]) -> bool {
    match parse_clipping(bytes, Limits::default()) {
        Ok(parsed) => {
            for w in &parsed.warnings {
                assert!(!w.contains('\n'), "a warning spans lines: {w:?}");
            }
            check_clipping(&parsed.clipping);
            true
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.contains('\n') && !msg.is_empty(), "a rejection reason must be one line: {msg:?}");
            false
        }
    }
}

/// Renders an accepted clipping into every feed it belongs to (all clippings, its topics, its
/// provider), in every format and kind of page, and checks each document.
pub fn check_clipping(clip: &Clipping) {
    check_plain("title", &clip.title);
    assert!(!clip.title.is_empty(), "an accepted clipping has a title");
    for (what, s) in [("excerpt", clip.excerpt.as_deref()), ("type", clip.kind.as_deref())] {
        if let Some(s) = s {
            check_plain(what, s);
        }
    }
    for t in &clip.topics {
        check_plain("topic", t);
    }
    if let Some(html) = &clip.content_html {
        check_html(html);
    }
    let urls = clip.url.iter().chain(clip.images.iter().map(|i| &i.url)).chain(clip.related.iter().map(|r| &r.url));
    for u in urls {
        check_link(u);
    }

    let first_seen: DateTime<Utc> = "2024-05-01T10:00:00Z".parse().unwrap();
    let data = merge_item(&[Source { rel_path: "fuzz/clip.md", clipping: clip }], first_seen, &Topics::default())
        .expect("one source makes an item");
    let key = item_key(clip, "fuzz/clip.md");
    let plain = parse_clipping(b"---\ntitle: A plain neighbour\n---\nBody.\n", Limits::default()).unwrap().clipping;
    let neighbour = merge_item(&[Source { rel_path: "n.md", clipping: &plain }], first_seen, &Topics::default())
        .expect("one source makes an item");
    let items = [
        Item { id: item_id(&key), updated: first_seen, data: data.clone() },
        Item { id: item_id("path:n.md"), updated: first_seen, data: neighbour },
    ];
    let links = Links::new(&url::Url::parse("http://feeds.test/base/").unwrap());
    let tombstones = [(item_id("gone"), first_seen)];

    let mut feeds = vec![meta(FeedKey::All, "Clippings", None)];
    for t in &data.topics {
        feeds.push(meta(FeedKey::Topic(t.slug.clone()), &t.name, None));
    }
    if let (Some(p), Some(domain)) = (&clip.provider, data.provider_domain()) {
        check_plain("provider name", &p.name);
        feeds.push(meta(FeedKey::Provider(domain.to_string()), &p.name, p.images.first().cloned()));
    }
    let pages = [
        Page::Current { newest_archive: Some(2), page_size: 5 },
        Page::Archive { index: 1, page_size: 5, has_next: true },
        Page::Filtered { query: "q=x&limit=2".into() },
    ];
    for m in &feeds {
        for page in &pages {
            let doc = Doc { meta: m, page, items: &items, tombstones: &tombstones };
            for format in Format::ALL {
                let bytes = render_feed(format, &doc, &links);
                let what = format!("{format:?} {} {page:?}", m.key.path_stem());
                check_document(format, &bytes, items.len(), &what);
            }
        }
    }
}

fn meta(key: FeedKey, title: &str, icon: Option<Image>) -> FeedMeta {
    FeedMeta {
        key,
        title: title.to_string(),
        description: format!("Clippings about {title}"),
        site_title: "Clippings".into(),
        updated: "2024-05-01T10:00:00Z".parse().unwrap(),
        icon,
    }
}

/// One rendered document: it parses back with independent parsers, keeps its entries, and
/// carries no script and no link to anything but the web or mail.
pub fn check_document(format: Format, bytes: &[u8], entries: usize, what: &str) {
    let text = std::str::from_utf8(bytes).unwrap_or_else(|e| panic!("{what}: not UTF-8: {e}"));
    assert!(!text.to_ascii_lowercase().contains("<script"), "{what}: <script in the output:\n{text}");
    let parsed =
        feed_rs::parser::parse(bytes).unwrap_or_else(|e| panic!("{what}: feed-rs cannot read it: {e}\n{text}"));
    assert_eq!(parsed.entries.len(), entries, "{what}: entries lost\n{text}");
    for e in &parsed.entries {
        if let Some(t) = &e.title {
            check_plain("entry title (feed-rs)", &t.content);
        }
        for l in &e.links {
            check_link(&l.href);
        }
        if let Some(c) = e.content.as_ref().and_then(|c| c.body.as_deref()) {
            check_html(c);
        }
    }
    match format {
        Format::Rss | Format::Atom => check_xml(text, what),
        Format::Json => check_json(text, entries, what),
    }
}

/// Well-formed XML by quick-xml's reader: every end tag matches, every entity and attribute
/// value decodes; every `href`, `url`, `src` and `xmlUrl` attribute is an http(s) link.
fn check_xml(text: &str, what: &str) {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut depth = 0usize;
    let mut roots = 0usize;
    loop {
        match reader.read_event() {
            Err(e) => panic!("{what}: not well-formed XML at {}: {e}\n{text}", reader.buffer_position()),
            Ok(Event::Eof) => break,
            Ok(Event::Start(s)) => {
                roots += usize::from(depth == 0);
                depth += 1;
                check_attributes(&s, reader.decoder(), text, what);
            }
            Ok(Event::Empty(s)) => {
                roots += usize::from(depth == 0);
                check_attributes(&s, reader.decoder(), text, what);
            }
            Ok(Event::End(_)) => depth -= 1,
            Ok(Event::Text(t)) => {
                t.decode().unwrap_or_else(|e| panic!("{what}: bad text: {e}\n{text}"));
            }
            Ok(_) => {}
        }
    }
    assert_eq!((depth, roots), (0, 1), "{what}: one root element, closed\n{text}");
}

fn check_attributes(
    s: &quick_xml::events::BytesStart<'_>,
    decoder: quick_xml::encoding::Decoder,
    text: &str,
    what: &str,
) {
    for a in s.attributes() {
        let a = a.unwrap_or_else(|e| panic!("{what}: bad attribute: {e}\n{text}"));
        let value = a
            .decoded_and_normalized_value(quick_xml::XmlVersion::Explicit1_0, decoder)
            .unwrap_or_else(|e| panic!("{what}: bad attribute value: {e}\n{text}"));
        if matches!(a.key.as_ref(), b"href" | b"url" | b"src" | b"xmlUrl" | b"uri") {
            check_link(&value);
        }
    }
}

fn check_json(text: &str, entries: usize, what: &str) {
    let v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: serde_json cannot read it: {e}"));
    assert_eq!(v["version"], "https://jsonfeed.org/version/1.1", "{what}");
    let items = v["items"].as_array().unwrap_or_else(|| panic!("{what}: no items array"));
    assert_eq!(items.len(), entries, "{what}: items lost");
    walk_json(&v, what);
}

/// Every URL-valued member is an http(s) link, every HTML member passes [`check_html`], every
/// plain-text member holds no tag.
fn walk_json(v: &Value, what: &str) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("content_html", Value::String(s)) => check_html(s),
                    ("title" | "summary" | "content_text" | "name" | "description", Value::String(s)) => {
                        check_plain(&format!("{what}: {k}"), s)
                    }
                    (k, Value::String(s))
                        if k.ends_with("url") || matches!(k, "image" | "banner_image" | "icon" | "favicon") =>
                    {
                        check_link(s)
                    }
                    _ => walk_json(v, what),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| walk_json(v, what)),
        _ => {}
    }
}

/// An absolute http(s) link (what the parser keeps and the renderers mint).
pub fn check_link(url: &str) {
    let lower = url.trim_start().to_ascii_lowercase();
    assert!(lower.starts_with("http://") || lower.starts_with("https://"), "not an http(s) link: {url:?}");
}

/// Plain text holds no tag: no `<` that an HTML tokenizer would take as the start of one (a
/// letter, `/` and a letter, `!` or `?` after it).
pub fn check_plain(what: &str, s: &str) {
    let b = s.as_bytes();
    for (i, _) in s.match_indices('<') {
        let opens = match b.get(i + 1) {
            Some(c) if c.is_ascii_alphabetic() => true,
            Some(b'/') => b.get(i + 2).is_some_and(u8::is_ascii_alphabetic),
            Some(b'!' | b'?') => true,
            _ => false,
        };
        assert!(!opens, "{what} holds a tag: {s:?}");
    }
    assert!(s.chars().all(clipfeed::is_xml_char), "{what} holds a character XML forbids: {s:?}");
}

/// Sanitised HTML: no script, style or frame element, no event handler, and every URL
/// attribute an absolute http(s) or mailto link.
pub fn check_html(html: &str) {
    for tag in tags(html) {
        let name = tag.name.to_ascii_lowercase();
        assert!(
            !matches!(name.as_str(), "script" | "style" | "iframe" | "object" | "embed" | "form" | "base" | "meta"),
            "<{name}> survived sanitising: {html:?}"
        );
        for (attr, value) in &tag.attrs {
            let attr = attr.to_ascii_lowercase();
            assert!(!attr.starts_with("on") && attr != "style", "attribute {attr} survived sanitising: {html:?}");
            if matches!(attr.as_str(), "href" | "src" | "cite" | "action" | "srcset" | "poster" | "background") {
                let decoded = html_escape::decode_html_entities(value).to_ascii_lowercase();
                let decoded: String = decoded.chars().filter(|c| !c.is_ascii_whitespace() && !c.is_control()).collect();
                assert!(
                    ["http:", "https:", "mailto:"].iter().any(|p| decoded.starts_with(p)),
                    "{attr}={value:?} is not a web or mail link: {html:?}"
                );
            }
        }
    }
}

struct Tag<'a> {
    name: &'a str,
    attrs: Vec<(&'a str, &'a str)>,
}

/// The start tags of serialised HTML (as html5ever writes it: attribute values quoted with `"`).
fn tags(html: &str) -> Vec<Tag<'_>> {
    let mut out = Vec::new();
    let b = html.as_bytes();
    let mut i = 0;
    while let Some(off) = html[i..].find('<') {
        i += off + 1;
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'-' || b[i] == b':') {
            i += 1;
        }
        if i == start {
            continue;
        }
        let mut tag = Tag { name: &html[start..i], attrs: Vec::new() };
        loop {
            while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
                i += 1;
            }
            if i >= b.len() || b[i] == b'>' {
                break;
            }
            let name_start = i;
            while i < b.len() && !matches!(b[i], b'=' | b'>' | b' ' | b'\t' | b'\n' | b'/') {
                i += 1;
            }
            let name = &html[name_start..i];
            let mut value = "";
            if b.get(i) == Some(&b'=') {
                i += 1;
                if b.get(i) == Some(&b'"') {
                    let end = html[i + 1..].find('"').map_or(b.len(), |e| i + 1 + e);
                    value = &html[i + 1..end];
                    i = (end + 1).min(b.len());
                } else {
                    let vs = i;
                    while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                        i += 1;
                    }
                    value = &html[vs..i];
                }
            }
            tag.attrs.push((name, value));
        }
        out.push(tag);
    }
    out
}

/// The fast YAML reader agrees with serde_yaml wherever it accepts a document. Returns whether
/// it accepted `text`.
pub fn check_yaml(text: &str) -> bool {
    let Some(fast) = clipfeed::parse_yaml(text) else { return false };
    match serde_yaml::from_str::<Value>(text) {
        Ok(slow) => assert_eq!(fast, slow, "the fast reader disagrees with serde_yaml on {text:?}"),
        Err(e) => panic!("the fast reader accepted {text:?} as {fast} but serde_yaml says: {e}"),
    }
    true
}
