//! Front matter: the YAML fields a clipping may have, the types accepted for each (text fields
//! take any scalar), and what is kept of them: plain text, canonical http(s) URLs, dates, topic
//! names that make slugs. What cannot be used is dropped with a warning, not a rejection.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::plain::{first_heading, markdown_to_html, remove_range};
use super::{Clipping, Error, Image, Provider, Related, from_yaml, parse_date};
use crate::text;

/// Front matter as written. Unknown fields are ignored; known fields with the wrong shape are an
/// error. Text fields accept any YAML scalar (`title: 1984` is a title).
#[derive(Deserialize, Default)]
struct RawFront {
    title: Option<Scalar>,
    excerpt: Option<Scalar>,
    #[serde(rename = "publishedDateTime")]
    published_at: Option<Scalar>,
    #[serde(rename = "webUrl")]
    web_url: Option<Scalar>,
    #[serde(rename = "originalUrl")]
    original_url: Option<Scalar>,
    #[serde(rename = "type")]
    kind: Option<Scalar>,
    quality: Option<i64>,
    published: Option<bool>,
    provider: Option<RawProvider>,
    topics: Option<Vec<Option<Scalar>>>,
    images: Option<Vec<RawImage>>,
    related: Option<Vec<RawRelated>>,
}

#[derive(Deserialize, Default)]
struct RawProvider {
    name: Option<Scalar>,
    domain: Option<Scalar>,
    images: Option<Vec<RawImage>>,
}

#[derive(Deserialize)]
struct RawImage {
    url: Option<Scalar>,
    width: Option<u32>,
    height: Option<u32>,
}

#[derive(Deserialize)]
struct RawRelated {
    title: Option<Scalar>,
    #[serde(rename = "webUrl")]
    web_url: Option<Scalar>,
    #[serde(rename = "publishedDateTime")]
    published: Option<Scalar>,
    provider: Option<RawProvider>,
}

/// A YAML scalar read as text: strings, numbers and booleans all count.
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(String::new()))
            }
        }
        d.deserialize_any(V)
    }
}

fn nonempty(s: Option<Scalar>) -> Option<String> {
    s.map(|Scalar(v)| v).filter(|v| !v.trim().is_empty())
}

/// The clipping a front matter block and the body after it describe.
pub(super) fn from_front_matter(yaml: &str, body: &str, warnings: &mut Vec<String>) -> Result<Clipping, Error> {
    // An empty front matter block, or one holding only comments, is a document with no fields.
    let raw: RawFront = if yaml.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
        RawFront::default()
    } else {
        from_yaml::<Option<RawFront>>(yaml).map_err(Error::Yaml)?.unwrap_or_default()
    };

    let body_md = body.trim();
    let mut title = nonempty(raw.title).map(|t| text::plain_text(&t)).filter(|t| !t.is_empty());
    let mut body_for_html = body_md.to_string();
    if title.is_none() {
        // Front matter without a title: the body's first heading can name it.
        if let Some((heading, range)) = first_heading(body_md) {
            title = Some(heading);
            body_for_html = remove_range(body_md, range);
        }
    }
    let title = title.ok_or(Error::NoTitle)?;
    let published = published_from(raw.published_at, warnings);
    let url = url_from([("webUrl", raw.web_url), ("originalUrl", raw.original_url)], warnings);
    let provider = raw.provider.and_then(|p| provider_from_raw(p, warnings));
    let topics = topics_from(raw.topics.unwrap_or_default(), warnings);
    let images = images_from_raw(raw.images.unwrap_or_default(), "images", warnings);
    let related = raw.related.unwrap_or_default().into_iter().filter_map(|r| related_from(r, warnings)).collect();
    let content_html = markdown_to_html(&body_for_html);
    let excerpt = nonempty(raw.excerpt).map(|e| text::plain_text(&e)).filter(|e| !e.is_empty());

    Ok(Clipping {
        title,
        excerpt,
        published,
        url,
        provider,
        topics,
        images,
        related,
        quality: raw.quality,
        unpublished: raw.published == Some(false),
        kind: nonempty(raw.kind).map(|k| text::plain_text(&k)).filter(|k| !k.is_empty()),
        content_html,
    })
}

/// `publishedDateTime`; one that is not a date is a warning, and the clipping has no date.
fn published_from(raw: Option<Scalar>, warnings: &mut Vec<String>) -> Option<DateTime<Utc>> {
    let s = nonempty(raw)?;
    let date = parse_date(&s);
    if date.is_none() {
        warnings
            .push(format!("publishedDateTime {:?} is not a date; using the time the file was first seen", s.trim()));
    }
    date
}

/// The first of the URL fields that is an absolute http(s) URL, canonical.
fn url_from(fields: [(&str, Option<Scalar>); 2], warnings: &mut Vec<String>) -> Option<String> {
    let mut url = None;
    for (field, value) in fields {
        if let Some(v) = nonempty(value) {
            match text::canonical_url(&v) {
                Some(u) if url.is_none() => url = Some(u),
                Some(_) => {}
                None => {
                    warnings.push(format!("{field} {:?} is not an absolute http(s) URL; ignored", clip_for_message(&v)))
                }
            }
        }
    }
    url
}

/// Topic names as plain text, without duplicates; a name that makes no slug is dropped.
fn topics_from(raw: Vec<Option<Scalar>>, warnings: &mut Vec<String>) -> Vec<String> {
    let mut topics: Vec<String> = Vec::new();
    for name in raw.into_iter().flatten() {
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

/// A related article, when it has a title and an absolute http(s) URL.
fn related_from(r: RawRelated, warnings: &mut Vec<String>) -> Option<Related> {
    let title = nonempty(r.title).map(|t| text::plain_text(&t)).filter(|t| !t.is_empty())?;
    let raw_url = nonempty(r.web_url)?;
    let Some(url) = text::canonical_url(&raw_url) else {
        let shown = clip_for_message(&raw_url);
        warnings.push(format!("related: {shown:?} is not an absolute http(s) URL; the related article is dropped"));
        return None;
    };
    let provider = r.provider.and_then(|p| nonempty(p.name)).map(|n| text::plain_text(&n)).filter(|n| !n.is_empty());
    let published = nonempty(r.published).and_then(|d| parse_date(&d));
    Some(Related { title, url, provider, published })
}

fn provider_from_raw(p: RawProvider, warnings: &mut Vec<String>) -> Option<Provider> {
    let name = nonempty(p.name).map(|n| text::plain_text(&n)).filter(|n| !n.is_empty());
    let domain = match nonempty(p.domain) {
        None => None,
        Some(d) => {
            let norm = text::normalize_domain(&d);
            if norm.is_none() {
                warnings.push(format!(
                    "provider domain {:?} is not a host name; no provider feed for it",
                    clip_for_message(&d)
                ));
            }
            norm
        }
    };
    let images = images_from_raw(p.images.unwrap_or_default(), "provider.images", warnings);
    let name = name.or_else(|| domain.clone())?;
    Some(Provider { name, domain, images })
}

fn images_from_raw(raw: Vec<RawImage>, field: &str, warnings: &mut Vec<String>) -> Vec<Image> {
    let mut out = Vec::new();
    for img in raw {
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
