//! Front matter: what is kept of each field once read (`raw`): plain text, canonical http(s)
//! URLs, dates, topic names that make slugs. When several keys give one field, the strongest
//! spelling with a usable value wins (clipfeed's key before an alias). What cannot be used is
//! dropped with a warning, not a rejection.
//!
//! Identity: only `webUrl` or `originalUrl` spelt exactly gives the clipping's URL identity. A
//! link from any other key (`url`, `link`, `webURL`) is the item's link and nothing more
//! ([`Clipping::link_only`]), so reading a new alias never changes the id of a stored item.

use chrono::{DateTime, Utc};

use super::keys::KeyNote;
use super::plain::{first_heading, markdown_to_html, remove_range};
use super::raw::{Entry, Given, Names, OneOrMany, RawFront, RawImage, RawProvider, RawRelated, Scalar, Slot, ignored};
use super::reader::from_yaml;
use super::{Clipping, Error, Image, Provider, Related, parse_date};
use crate::text;

fn nonempty(s: Option<Scalar>) -> Option<String> {
    s.map(|Scalar(v)| v).filter(|v| !v.trim().is_empty())
}

/// Plain text of the strongest value given, when it is not empty.
fn text_of(slot: Slot<Scalar>, warnings: &mut Vec<String>) -> Option<String> {
    let Scalar(v) = slot.best(warnings)?.value.ok()?;
    Some(text::plain_text(&v)).filter(|t| !t.is_empty())
}

/// The strongest list given for a field, with the key that gave it.
fn list<T>(slot: Slot<OneOrMany<T>>, warnings: &mut Vec<String>) -> (String, Vec<T>) {
    match slot.best(warnings) {
        Some(Given { key, value: Ok(OneOrMany(items)), .. }) => (key, items),
        _ => (String::new(), Vec::new()),
    }
}

/// The clipping a front matter block (starting on line `first_line` of the file) and the body
/// after it describe, with the keys spelt close to known ones.
pub(super) fn from_front_matter(
    yaml: &str,
    first_line: usize,
    body: &str,
    warnings: &mut Vec<String>,
) -> Result<(Clipping, Vec<KeyNote>), Error> {
    // An empty front matter block, or one holding only comments, is a document with no fields.
    let raw: RawFront = if yaml.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
        RawFront::default()
    } else {
        from_yaml::<Option<RawFront>>(yaml, first_line).map_err(Error::Yaml)?.unwrap_or_default()
    };

    let body_md = body.trim();
    let mut title = text_of(raw.title, warnings);
    let mut body_for_html = body_md.to_string();
    if title.is_none() {
        // Front matter without a title: the body's first heading can name it.
        if let Some((heading, range)) = first_heading(body_md) {
            title = Some(heading);
            body_for_html = remove_range(body_md, range);
        }
    }
    let title = title.ok_or(Error::NoTitle)?;
    let published = published_from(raw.date, warnings);
    let (url, link_only) = url_from(raw.web_url, raw.original_url, warnings);
    let provider = match raw.provider.best(warnings) {
        Some(p) => match p.value {
            Ok(raw) => provider_from_raw(raw, p.rank == 0, warnings)?,
            Err(_) => None,
        },
        None => provider_from_author(raw.author, warnings),
    };
    let topics = topics_from(raw.topics, warnings);
    let (key, images) = list(raw.images, warnings);
    let images = images_from_raw(images, &key, warnings);
    let related = list(raw.related, warnings).1.into_iter().filter_map(|Entry(r)| related_from(r, warnings)).collect();
    let content_html = markdown_to_html(&body_for_html);
    let excerpt = text_of(raw.excerpt, warnings);
    let quality = raw.quality.best(warnings).and_then(|g| g.value.ok()).map(|q| q.0);
    let unpublished = raw.published.best(warnings).and_then(|g| g.value.ok()).is_some_and(|f| !f.0);
    let clipping = Clipping {
        title,
        excerpt,
        published,
        url,
        link_only,
        provider,
        topics,
        images,
        related,
        quality,
        unpublished,
        kind: text_of(raw.kind, warnings),
        content_html,
    };
    Ok((clipping, raw.notes))
}

/// The date of the strongest date key whose value is a date; the others given before it are
/// warnings.
fn published_from(slot: Slot<Scalar>, warnings: &mut Vec<String>) -> Option<DateTime<Utc>> {
    for g in slot.ranked() {
        let s = match g.value {
            Ok(Scalar(s)) if s.trim().is_empty() => continue,
            Ok(Scalar(s)) => s,
            Err(e) => {
                warnings.push(ignored(&g.key, &e));
                continue;
            }
        };
        match parse_date(&s) {
            Some(date) => return Some(date),
            None => warnings.push(format!("{} {:?} is not a date; ignored", g.key, clip_for_message(s.trim()))),
        }
    }
    None
}

/// The link: the first absolute http(s) URL, canonical, among `webUrl` and `originalUrl` spelt
/// exactly, then the other keys read for them by rank. Whether it came from one of those others
/// (and so is a link only, never an identity).
fn url_from(web: Slot<Scalar>, original: Slot<Scalar>, warnings: &mut Vec<String>) -> (Option<String>, bool) {
    let mut given: Vec<Given<Scalar>> = web.ranked();
    given.extend(original.ranked());
    given.sort_by_key(|g| (g.rank != 0, g.rank));
    let mut found: Option<(String, bool)> = None;
    for g in given {
        let v = match g.value {
            Ok(Scalar(v)) if v.trim().is_empty() => continue,
            Ok(Scalar(v)) => v,
            Err(e) if found.is_none() => {
                warnings.push(ignored(&g.key, &e));
                continue;
            }
            Err(_) => continue,
        };
        match text::canonical_url(&v) {
            Some(u) if found.is_none() => found = Some((u, g.rank != 0)),
            Some(_) => {}
            // clipfeed's own keys are always checked; another key only until a link is found.
            None if found.is_none() || g.rank == 0 => {
                warnings.push(format!("{} {:?} is not an absolute http(s) URL; ignored", g.key, clip_for_message(&v)))
            }
            None => {}
        }
    }
    found.map_or((None, false), |(u, link_only)| (Some(u), link_only))
}

/// The most topics a clipping is filed under; those past it are dropped with a warning. Each
/// topic is a feed the site keeps (and lists in its index and OPML) for good, so one file of
/// thousands made thousands of feeds, and held the writer and hundreds of megabytes of memory
/// while it did. The real clippings name at most a handful.
pub(crate) const MAX_TOPICS: usize = 50;

/// Topic names as plain text, without duplicates; a name that makes no slug is dropped. From
/// `topics` (any case) alone when it is given, else from every alias given (`tags`, then
/// `categories`).
fn topics_from(slot: Slot<OneOrMany<Scalar>>, warnings: &mut Vec<String>) -> Vec<String> {
    let mut raw: Vec<Scalar> = Vec::new();
    for g in slot.ranked() {
        match g.value {
            Err(e) => warnings.push(ignored(&g.key, &e)),
            Ok(OneOrMany(names)) => {
                raw.extend(names);
                if g.rank < 2 {
                    break;
                }
            }
        }
    }
    let mut topics: Vec<String> = Vec::new();
    let given = raw.len();
    for name in raw {
        if topics.len() == MAX_TOPICS {
            warnings.push(format!("{given} topics given: only the first {MAX_TOPICS} are kept"));
            break;
        }
        let name = text::plain_text(&name.0);
        if name.is_empty() {
            continue;
        }
        match text::slugify(&name) {
            Ok(_) => {
                if !topics.iter().any(|t| t == &name) {
                    topics.push(name);
                }
            }
            Err(why) => warnings.push(format!("topic {:?} dropped: it {why}", clip_for_message(&name))),
        }
    }
    topics
}

/// A provider named after the author (`author`, `authors`) when the file names no `provider`:
/// it gives the item's author in feeds, and no provider feed (it has no domain).
fn provider_from_author(slot: Slot<Names>, warnings: &mut Vec<String>) -> Option<Provider> {
    let Names(names) = slot.best(warnings)?.value.ok()?;
    let names: Vec<String> = names.iter().map(|n| text::plain_text(n)).filter(|n| !n.is_empty()).collect();
    let name = text::truncate_words(&names.join(", "), 200);
    (!name.is_empty()).then(|| Provider { name, domain: None, images: Vec::new() })
}

/// A related article, when it has an absolute http(s) URL.
fn related_from(r: RawRelated, warnings: &mut Vec<String>) -> Option<Related> {
    let raw_url = nonempty(r.web_url)?;
    let Some(url) = text::canonical_url(&raw_url) else {
        let shown = clip_for_message(&raw_url);
        warnings.push(format!("related: {shown:?} is not an absolute http(s) URL; the related article is dropped"));
        return None;
    };
    // A related article given as a bare URL is titled by its URL.
    let title =
        nonempty(r.title).map(|t| text::plain_text(&t)).filter(|t| !t.is_empty()).unwrap_or_else(|| url.clone());
    let provider = r.provider.and_then(|p| nonempty(p.name)).map(|n| text::plain_text(&n)).filter(|n| !n.is_empty());
    let published = nonempty(r.published).and_then(|d| parse_date(&d));
    Some(Related { title, url, provider, published })
}

/// The news site, from `provider` (`strict`: spelt exactly so). A domain given under the exact
/// key that is no host name, nor a site's address, refuses the file: read as no news site, a
/// private site's clipping would be published.
fn provider_from_raw(p: RawProvider, strict: bool, warnings: &mut Vec<String>) -> Result<Option<Provider>, Error> {
    let name = nonempty(p.name).map(|n| text::plain_text(&n)).filter(|n| !n.is_empty());
    let domain = match nonempty(p.domain) {
        None => None,
        Some(d) => {
            let norm = text::normalize_domain(&d);
            if norm.is_none() && strict {
                return Err(Error::Yaml(
                    "provider.domain is not a host name (example.com) nor a site's address (https://example.com/)"
                        .into(),
                ));
            }
            if norm.is_none() {
                warnings.push(format!(
                    "provider domain {:?} is not a host name; no provider feed for it",
                    clip_for_message(&d)
                ));
            }
            norm
        }
    };
    let images = images_from_raw(p.images.map_or_else(Vec::new, |OneOrMany(v)| v), "provider.images", warnings);
    let Some(name) = name.or_else(|| domain.clone()) else { return Ok(None) };
    Ok(Some(Provider { name, domain, images }))
}

fn images_from_raw(raw: Vec<Entry<RawImage>>, field: &str, warnings: &mut Vec<String>) -> Vec<Image> {
    let mut out = Vec::new();
    for Entry(img) in raw {
        let Some(u) = nonempty(img.url) else { continue };
        // Entities such as `&#038;` occur in real files' image URLs.
        let decoded = html_escape::decode_html_entities(u.trim()).into_owned();
        match text::canonical_url(&decoded) {
            Some(url) => out.push(Image { url, width: img.width, height: img.height }),
            None => {
                warnings.push(format!("{field}: {:?} is not an absolute http(s) URL; ignored", clip_for_message(&u)))
            }
        }
    }
    out
}

/// Shortens user text quoted in a message so one bad field cannot make a huge log line.
fn clip_for_message(s: &str) -> String {
    text::truncate_words(&text::squash_ws(&text::xml_clean(s)), 80)
}
