//! Text without front matter, and Markdown: the plain-text fallback (a title from the first
//! heading or first line of four words), and Markdown rendered to sanitised HTML.

use super::{Clipping, Error, LineIter};
use crate::text;

/// A file without front matter: the title is the first Markdown heading, else the first line of at
/// least four words; the remaining text is the body.
pub(super) fn from_plain_text(text: &str) -> Result<Clipping, Error> {
    let (title, body) = if let Some((heading, range)) = first_heading(text) {
        (heading, remove_range(text, range))
    } else {
        let mut found = None;
        for (start, line) in (LineIter { text, pos: 0 }) {
            if line.split_whitespace().count() >= 4 {
                let title = text::plain_text(line);
                if !title.is_empty() {
                    found = Some((title, start..start + line.len()));
                    break;
                }
            }
        }
        let (title, range) = found.ok_or(Error::NoTitle)?;
        (title, remove_range(text, range))
    };
    let body = body.trim();
    let excerpt = first_paragraph(body).map(|p| text::truncate_words(&p, 300));
    Ok(Clipping {
        title,
        excerpt,
        published: None,
        url: None,
        link_only: false,
        provider: None,
        topics: Vec::new(),
        images: Vec::new(),
        related: Vec::new(),
        quality: None,
        unpublished: false,
        kind: None,
        content_html: markdown_to_html(body),
    })
}

/// Removes the lines covered by `range` (plus their line terminator) from `text`.
pub(super) fn remove_range(text: &str, range: std::ops::Range<usize>) -> String {
    let end = text[range.end..].find('\n').map_or(text.len(), |i| range.end + i + 1);
    let start = text[..range.start].rfind('\n').map_or(0, |i| i + 1);
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..start]);
    out.push_str(&text[end..]);
    out
}

fn markdown_options() -> pulldown_cmark::Options {
    use pulldown_cmark::Options;
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_FOOTNOTES
}

/// The text of the first Markdown heading and the source range it covers.
pub(super) fn first_heading(md: &str) -> Option<(String, std::ops::Range<usize>)> {
    use pulldown_cmark::{Event, Parser, Tag, TagEnd};
    let mut in_heading: Option<(String, std::ops::Range<usize>)> = None;
    for (event, range) in Parser::new_ext(md, markdown_options()).into_offset_iter() {
        match (event, &mut in_heading) {
            (Event::Start(Tag::Heading { .. }), None) => in_heading = Some((String::new(), range)),
            (Event::Text(t) | Event::Code(t), Some((buf, _))) => buf.push_str(&t),
            (Event::SoftBreak | Event::HardBreak, Some((buf, _))) => buf.push(' '),
            (Event::End(TagEnd::Heading(_)), Some(_)) => {
                let (buf, range) = in_heading.take()?;
                let title = text::plain_text(&buf);
                if !title.is_empty() {
                    return Some((title, range));
                }
            }
            _ => {}
        }
    }
    None
}

/// The first paragraph (lines up to a blank line) of at least four words, as plain text.
fn first_paragraph(md: &str) -> Option<String> {
    let mut para = String::new();
    for line in md.lines().chain(std::iter::once("")) {
        if line.trim().is_empty() {
            let text = text::plain_text(&para);
            if text.split_whitespace().count() >= 4 {
                return Some(text);
            }
            para.clear();
        } else {
            para.push_str(line);
            para.push('\n');
        }
    }
    None
}

/// Markdown → HTML → sanitised HTML (no scripts, event handlers, `javascript:` URLs or styles).
/// `None` for an empty body.
pub(crate) fn markdown_to_html(md: &str) -> Option<String> {
    let md = text::xml_clean(md);
    if md.trim().is_empty() {
        return None;
    }
    let mut html = String::with_capacity(md.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, pulldown_cmark::Parser::new_ext(&md, markdown_options()));
    let clean = sanitizer().clean(&text::shallow(&html)).to_string();
    let clean = text::xml_clean(&clean).trim().to_string();
    (!clean.is_empty()).then_some(clean)
}

fn sanitizer() -> &'static ammonia::Builder<'static> {
    static BUILDER: std::sync::OnceLock<ammonia::Builder<'static>> = std::sync::OnceLock::new();
    BUILDER.get_or_init(|| {
        let mut b = ammonia::Builder::default();
        // Only absolute web and mail links survive; relative ones have no base in a feed reader.
        b.url_schemes(["http", "https", "mailto"].into_iter().collect());
        b.url_relative(ammonia::UrlRelative::Deny);
        b
    })
}
