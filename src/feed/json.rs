//! JSON Feed 1.1 (<https://jsonfeed.org/version/1.1>). An item's `url` is its page on this site and
//! `external_url` the article it clips, as the spec suggests for link blogs; `next_url` pages
//! back through the archive.

use serde::Serialize;

use super::{Doc, Format, Links, Page, content_html, picture};
use crate::item;

#[derive(Serialize)]
struct JsonFeed<'a> {
    version: &'static str,
    title: &'a str,
    home_page_url: &'a str,
    feed_url: String,
    description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icon: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    favicon: Option<&'a str>,
    authors: Vec<Author<'a>>,
    /// WebSub hubs (JSON Feed 1.1 `hubs`), on subscription documents when advertised.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hubs: Vec<Hub<'a>>,
    items: Vec<JsonItem<'a>>,
}

#[derive(Serialize)]
struct Hub<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    url: &'a str,
}

#[derive(Serialize)]
struct Author<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
}

#[derive(Serialize)]
struct JsonItem<'a> {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_url: Option<&'a str>,
    title: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_html: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a str>,
    date_published: String,
    date_modified: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    authors: Vec<Author<'a>>,
}

pub(crate) fn render(doc: &Doc<'_>, links: &Links) -> Vec<u8> {
    let meta = doc.meta;
    let next_url = match doc.page {
        Page::Current { newest_archive: Some(n), page_size } => {
            Some(links.archive(&meta.key, *page_size, *n, Format::Json))
        }
        Page::Archive { index, page_size, .. } if *index > 0 => {
            Some(links.archive(&meta.key, *page_size, index - 1, Format::Json))
        }
        _ => None,
    };
    // In a story-grouped view an item stands for a story: its link is its lead's, not a page here.
    let grouped = links.is_grouped()
        || matches!(doc.page, Page::Filtered { query } if query.split('&').any(|p| p == "group=story"));
    let items = doc
        .items
        .iter()
        .map(|it| {
            let c = &it.data.clip;
            let html = content_html(it);
            JsonItem {
                id: item::urn(&it.id),
                // Its page here, as a link blog's item; grouped, its article. A private feed's
                // items have no page here: their article, if any.
                url: match (&c.url, grouped, links.has_pages()) {
                    (url, _, false) => url.clone(),
                    (Some(u), true, true) => Some(u.clone()),
                    _ => Some(links.clipping_page(&it.id)),
                },
                external_url: c.url.as_deref(),
                title: &c.title,
                summary: c.excerpt.as_deref(),
                // Every item needs content; without a body, its excerpt (or title) is the text.
                content_text: if html.is_none() { Some(c.excerpt.as_deref().unwrap_or(&c.title)) } else { None },
                content_html: html,
                image: picture(it).map(|i| i.url.as_str()),
                date_published: it.data.published.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                date_modified: it.updated.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                tags: it.data.topics.iter().map(|t| t.name.as_str()).collect(),
                authors: c
                    .provider
                    .iter()
                    .map(|p| Author { name: &p.name, url: p.domain.as_ref().map(|d| format!("https://{d}/")) })
                    .collect(),
            }
        })
        .collect();
    let feed = JsonFeed {
        version: "https://jsonfeed.org/version/1.1",
        title: &meta.title,
        home_page_url: links.base(),
        feed_url: links.self_url(doc, Format::Json),
        description: &meta.description,
        next_url,
        icon: meta.icon.as_ref().map(|i| i.url.as_str()),
        favicon: meta.icon.as_ref().map(|i| i.url.as_str()),
        authors: vec![Author { name: &meta.site_title, url: None }],
        hubs: links.hubs(doc.page).iter().map(|url| Hub { kind: "WebSub", url }).collect(),
        items,
    };
    let mut out = serde_json::to_vec_pretty(&feed).expect("feed serialises");
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::*;
    use super::super::*;

    #[test]
    fn json_feed_fields() {
        let m = meta(FeedKey::Topic("ai".into()));
        let items = [hostile(), item("title: Bare\nexcerpt: Just an excerpt", "")];
        let page = Page::Current { newest_archive: Some(4), page_size: 5 };
        let bytes = render(Format::Json, &doc(&m, &page, &items), &links());
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["version"], "https://jsonfeed.org/version/1.1");
        assert_eq!(v["feed_url"], "http://feeds.test/base/topics/ai.json");
        assert_eq!(v["next_url"], "http://feeds.test/base/topics/ai/archive/5-4.json");
        let a = &v["items"][0];
        assert!(a["id"].as_str().unwrap().starts_with("urn:uuid:"));
        assert_eq!(a["external_url"], "https://a.example/?q=1&r=2");
        assert!(a["url"].as_str().unwrap().starts_with("http://feeds.test/base/clippings/"));
        assert_eq!(a["image"], "https://img.example/photo.PNG?w=1");
        assert_eq!(a["date_published"], "2024-01-02T03:04:05Z");
        assert_eq!(a["tags"][0], "AI");
        assert_eq!(a["authors"][0]["name"], "P<&>");
        assert!(a["content_html"].as_str().unwrap().contains("Related"));
        assert_eq!(v["items"][1]["content_text"], "Just an excerpt");
        assert!(v["items"][1].get("content_html").is_none());
    }
}
