//! The page browsers are shown at a feed's URL instead of the feed (the HTTP layer decides who is
//! a browser): the same items as the document, read from the same [`Doc`], with the address to
//! subscribe to, links to the document in every format, and to older and newer pages.
//!
//! A private feed's page never holds its token: its links and the address to copy are the
//! token-less URLs, and the page says that the address the reader opened, token included, is
//! the one to subscribe to. The page also tells the browser to send no `Referer`, so following
//! one of its links does not hand that address to another site.

use super::{esc, head, time};
use crate::feed::{Doc, FeedKey, Format, Links, Page};
use crate::item::Item;

/// What the page of a private feed says of its address.
const PRIVATE_NOTE: &str = "<p>This feed is private: subscribe with the address you opened this page with, which \
     carries its token (<code>?token=…</code>), and keep that address to yourself. The links \
     on this page carry no token.</p>\n";

/// The name of a format as people know it.
fn format_name(format: Format) -> &'static str {
    match format {
        Format::Rss => "RSS",
        Format::Atom => "Atom",
        Format::Json => "JSON Feed",
    }
}

/// The page of one feed document (`doc`) served at its URL in `format`.
pub fn feed_page(doc: &Doc<'_>, format: Format, links: &Links, private: bool) -> String {
    let meta = doc.meta;
    let body: usize = doc.items.iter().map(|i| 600 + i.data.clip.content_html.as_ref().map_or(0, String::len)).sum();
    let mut out = String::with_capacity(4096 + body);
    head(&mut out, &meta.title);
    if private {
        out.push_str("<meta name=\"referrer\" content=\"no-referrer\">\n");
    } else {
        for f in Format::ALL {
            out.push_str(&format!(
                "<link rel=\"alternate\" type=\"{}\" title=\"{} ({})\" href=\"{}\">\n",
                f.media_type(),
                esc(&meta.title),
                format_name(f),
                esc(&links.feed(&meta.key, f))
            ));
        }
    }
    out.push_str("</head>\n<body>\n");
    out.push_str(&format!("<p class=\"meta\"><a href=\"{}\">{}</a></p>\n", esc(links.base()), esc(&meta.site_title)));
    out.push_str(&format!("<h1>{}</h1>\n<p>{}</p>\n", esc(&meta.title), esc(&meta.description)));
    about(&mut out, doc, format, links, private);
    if doc.items.is_empty() {
        out.push_str("<p class=\"meta\">No clippings here yet.</p>\n");
    } else {
        out.push_str("<ol class=\"items\">\n");
        for item in doc.items {
            entry(&mut out, item, links, format);
        }
        out.push_str("</ol>\n");
    }
    nav(&mut out, doc, format, links);
    out.push_str("</body>\n</html>\n");
    out
}

/// The box that says what this is: a feed to subscribe to (the address to copy), which document
/// of it, the document in every format, and when it last changed.
fn about(out: &mut String, doc: &Doc<'_>, format: Format, links: &Links, private: bool) {
    let key = &doc.meta.key;
    let (what, subscribe) = match doc.page {
        Page::Filtered { .. } => return about_filtered(out, doc, format, links, private),
        Page::Current { .. } => (String::new(), links.feed(key, format)),
        Page::Archive { index, .. } => (
            format!(
                "<p>This is archive page {index} of the feed: older clippings, kept as they were. \
                 <a href=\"{}\">The latest clippings</a> are in the feed itself.</p>\n",
                esc(&links.feed(key, format))
            ),
            links.feed(key, format),
        ),
        Page::Story { id } => (
            format!(
                "<p>The coverage of one story: <a href=\"{}\">its page</a>. Subscribe to get new coverage as it arrives.</p>\n",
                esc(&links.story_page(id))
            ),
            links.self_url(doc, format),
        ),
    };
    out.push_str("<div class=\"about\">\n");
    out.push_str(&format!(
        "<p><strong>This is a feed.</strong> To subscribe, copy its address into your feed reader:</p>\n\
         <p><code class=\"url\">{}</code></p>\n",
        esc(&subscribe)
    ));
    if private {
        out.push_str(PRIVATE_NOTE);
    }
    out.push_str(&what);
    other_formats(out, doc, format, links);
}

/// The box of a filtered view (a search, say): a feed of its own, whose address in every format
/// is given to copy, and, on a public feed's page, the search box again to change the search.
fn about_filtered(out: &mut String, doc: &Doc<'_>, format: Format, links: &Links, private: bool) {
    let Page::Filtered { query } = doc.page else { return };
    out.push_str("<div class=\"about\">\n");
    out.push_str(
        "<p><strong>This is a feed.</strong> These results are a feed of their own: to subscribe, \
         copy its address in any format into your feed reader:</p>\n<ul class=\"subscribe\">\n",
    );
    for f in Format::ALL {
        out.push_str(&format!(
            "<li>{}: <code class=\"url\">{}</code></li>\n",
            format_name(f),
            esc(&links.self_url(doc, f))
        ));
    }
    out.push_str("</ul>\n");
    if private {
        out.push_str(PRIVATE_NOTE);
    }
    out.push_str(&format!("<p>Filtered by <code>{}</code>.</p>\n", esc(query)));
    if !private {
        search_again(out, &links.feed(&doc.meta.key, format), query);
    }
    other_formats(out, doc, format, links);
}

/// A search box over the same feed, holding the search of `query` and keeping its other filters
/// (hidden fields). A plain form: no script.
fn search_again(out: &mut String, action: &str, query: &str) {
    let mut search = String::new();
    let mut hidden = String::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if k == "search" {
            search = v.into_owned();
        } else {
            hidden.push_str(&format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">\n", esc(&k), esc(&v)));
        }
    }
    out.push_str(&format!(
        "<form class=\"search\" action=\"{}\" method=\"get\" role=\"search\">\n{hidden}\
         <label for=\"search\">Search this feed</label>\n\
         <input type=\"search\" id=\"search\" name=\"search\" required maxlength=\"{}\" value=\"{}\">\n\
         <button type=\"submit\">Search</button>\n</form>\n",
        esc(action),
        crate::search::MAX_SEARCH_CHARS,
        esc(&search)
    ));
}

/// The line that links the same document in every format, and says when it last changed; it
/// closes the box.
fn other_formats(out: &mut String, doc: &Doc<'_>, format: Format, links: &Links) {
    let formats: Vec<String> = Format::ALL
        .into_iter()
        .map(|f| {
            let current = if f == format { " aria-current=\"page\"" } else { "" };
            format!(
                "<a href=\"{}\" type=\"{}\"{current}>{}</a>",
                esc(&links.self_url(doc, f)),
                f.media_type(),
                format_name(f)
            )
        })
        .collect();
    out.push_str(&format!(
        "<p>This page as {}. Updated {}.</p>\n</div>\n",
        formats.join(" · "),
        time(doc.meta.updated)
    ));
}

/// Whether a URL from a clipping may be a link or a picture on the page: http or https only.
fn web_url(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// One item: its title (a link to the article, or to its page here), news site and date, picture,
/// excerpt, full text (folded) and topics.
fn entry(out: &mut String, item: &Item, links: &Links, format: Format) {
    let d = &item.data;
    out.push_str("<li><article>\n");
    match links.item_link(item) {
        Some(href) => out.push_str(&format!("<h2><a href=\"{}\">{}</a></h2>\n", esc(&href), esc(&d.clip.title))),
        None => out.push_str(&format!("<h2>{}</h2>\n", esc(&d.clip.title))),
    }
    out.push_str("<p class=\"meta\">");
    if let Some(p) = &d.clip.provider {
        out.push_str(&format!("<span class=\"provider\">{}</span> · ", esc(&p.name)));
    }
    out.push_str(&format!("{}</p>\n", time(d.published)));
    if let Some(image) = d.clip.images.first().filter(|i| web_url(&i.url)) {
        // Reserved space (its size when known, else a 16:9 box) keeps the text in place whether
        // the picture loads or not; the alt text stands in for it when it does not.
        let size = match (image.width, image.height) {
            (Some(w), Some(h)) if w > 0 && h > 0 => format!(" class=\"pic\" width=\"{w}\" height=\"{h}\""),
            _ => " class=\"pic nodim\"".to_string(),
        };
        out.push_str(&format!(
            "<img src=\"{}\" alt=\"Picture: {}\"{size} loading=\"lazy\" decoding=\"async\">\n",
            esc(&image.url),
            esc(&d.clip.title)
        ));
    }
    if let Some(excerpt) = &d.clip.excerpt {
        out.push_str(&format!("<p class=\"summary\">{}</p>\n", esc(excerpt)));
    }
    if let Some(html) = &d.clip.content_html {
        // Sanitised when the clipping was parsed.
        out.push_str(&format!("<details><summary>Full text</summary><div class=\"body\">\n{html}\n</div></details>\n"));
    }
    if !d.topics.is_empty() {
        out.push_str("<ul class=\"topics\">");
        for t in &d.topics {
            let url = links.feed(&FeedKey::Topic(t.slug.clone()), format);
            out.push_str(&format!("<li><a href=\"{}\">{}</a></li>", esc(&url), esc(&t.name)));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</article></li>\n");
}

/// Links to the older and newer pages of the feed's history (RFC 5005 archives), in the same
/// format.
fn nav(out: &mut String, doc: &Doc<'_>, format: Format, links: &Links) {
    let key = &doc.meta.key;
    let (older, newer) = match *doc.page {
        Page::Current { newest_archive, page_size } => {
            (newest_archive.map(|n| links.archive(key, page_size, n, format)), None)
        }
        Page::Archive { index, page_size, has_next } => (
            index.checked_sub(1).map(|n| links.archive(key, page_size, n, format)),
            Some(if has_next { links.archive(key, page_size, index + 1, format) } else { links.feed(key, format) }),
        ),
        Page::Filtered { .. } | Page::Story { .. } => (None, None),
    };
    if older.is_none() && newer.is_none() {
        return;
    }
    out.push_str("<nav class=\"pages\">\n");
    if let Some(url) = newer {
        out.push_str(&format!("<a href=\"{}\" rel=\"next\">Newer clippings</a>\n", esc(&url)));
    }
    if let Some(url) = older {
        out.push_str(&format!("<a href=\"{}\" rel=\"prev\">Older clippings</a>\n", esc(&url)));
    }
    out.push_str("</nav>\n");
}
