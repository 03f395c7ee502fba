//! Clipping files → [`Clipping`] records. Owns the file format: the front matter split, the YAML
//! fields we read (and the types we accept for them), the plain-text fallback for files without
//! front matter, Markdown → sanitised HTML, and the reasons a file is rejected.
//!
//! Pure: [`parse_file`] takes the file's bytes and its name (a value: only a date at its start
//! is read) and returns a value. It never reads the filesystem and never looks at the clock;
//! identity, first-seen dates and topic aliases are decided later, in `item`.

mod front;
mod keys;
mod plain;
mod raw;
mod reader;

use front::from_front_matter;
use plain::from_plain_text;

pub use keys::{KeyNote, KeyWarning, summarise as summarise_key_notes};

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// Changes whenever the same file may parse to a different clipping (or different notes). The
/// writer reads every file again at the next start when the store was filled under another.
/// 3: a leap second read as the second before it, at most [`front::MAX_TOPICS`] topics, markup
/// nested past `text::MAX_DEPTH` cut, a provider domain written as an address read as its host,
/// lone CR line endings read as line breaks, a decimal `quality` rounded and `published: no`
/// (YAML 1.1's words) read (both were refused).
pub(crate) const FORMAT_VERSION: &str = "3";

/// Limits the parser enforces. The IO layer also checks the size before reading.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Files larger than this many bytes are rejected.
    pub(crate) max_file_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_file_bytes: 1024 * 1024 }
    }
}

/// One clipping as read from one file, normalised: every string is plain text free of characters
/// XML forbids, every URL canonical http(s), `content_html` sanitised. Serialised into the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clipping {
    pub title: String,
    /// Plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excerpt: Option<String>,
    /// The clipping's own date; `None` when missing or unparseable (the first-seen time is used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<DateTime<Utc>>,
    /// Canonical article URL (`webUrl`, else `originalUrl`, else another key read for them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `url` came from a key other than `webUrl` or `originalUrl` spelt exactly (an alias such
    /// as `link` or `url`, or `webURL`): it is the item's link, never its identity.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub link_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    /// Topic display names as written (cleaned), in file order, without duplicates. Each one is
    /// known to make a slug.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topics: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<Image>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<Related>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<i64>,
    /// `published: false` in the file (topics can be configured to leave such clippings out).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unpublished: bool,
    /// `type` in the file (`article`, `video`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The Markdown body as sanitised HTML.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_html: Option<String>,
}

/// The news site a clipping comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provider {
    /// Display name; the domain when the file gives none.
    pub name: String,
    /// Lowercased host name, the provider's key. `None` when the file gives no usable domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<Image>,
}

/// An image reference. Only absolute http(s) URLs are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
}

/// A related article listed by the clipping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Related {
    pub title: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<DateTime<Utc>>,
}

/// A successful parse: the clipping, what was dropped on the way (one line each), and the keys
/// spelt close to known ones (summarised over many files by [`summarise_key_notes`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub clipping: Clipping,
    pub warnings: Vec<String>,
    pub key_notes: Vec<KeyNote>,
}

/// Why a file is not a clipping. The message is one line and names the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("file is {size} bytes, larger than max_file_bytes ({max})")]
    TooLarge { size: u64, max: u64 },
    #[error("not UTF-8 text (invalid byte sequence at byte {offset})")]
    NotUtf8 { offset: usize },
    #[error("binary data (NUL byte at byte {offset})")]
    Binary { offset: usize },
    #[error("empty file")]
    Empty,
    #[error("front matter opened with '---' on line 1 is never closed by a '---' line")]
    Unterminated,
    #[error("front matter: {0}")]
    Yaml(String),
    #[error("no title (front matter has no 'title', and the text has no heading or line of four words)")]
    NoTitle,
}

/// Parses one clipping file whose name is not known.
pub fn parse(bytes: &[u8], limits: Limits) -> Result<Parsed, Error> {
    parse_file(bytes, "", limits)
}

/// Parses one clipping file. `name` is its path (or name): a date at the start of its last part
/// (`2026-11-16-a-story.txt`) dates a clipping that has no date of its own.
pub fn parse_file(bytes: &[u8], name: &str, limits: Limits) -> Result<Parsed, Error> {
    let size = bytes.len() as u64;
    if size > limits.max_file_bytes {
        return Err(Error::TooLarge { size, max: limits.max_file_bytes });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| Error::NotUtf8 { offset: e.valid_up_to() })?;
    if let Some(offset) = text.find('\0') {
        return Err(Error::Binary { offset });
    }
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    // Line endings of a lone CR (old Mac files, or mixed ones) read as line breaks, as YAML and
    // CommonMark read them: else front matter written so would be one line of plain text, its
    // every value (`secured` too) published as the title.
    let unified;
    let text = if has_lone_cr(text) {
        unified = text.replace("\r\n", "\n").replace('\r', "\n");
        unified.as_str()
    } else {
        text
    };
    if text.trim().is_empty() {
        return Err(Error::Empty);
    }
    let mut warnings = Vec::new();
    let (mut clipping, key_notes) = match split_front_matter(text)? {
        Some((yaml, body)) => {
            // The block starts on the line after the opening `---`.
            let first_line = text[..yaml.as_ptr() as usize - text.as_ptr() as usize].matches('\n').count() + 1;
            from_front_matter(yaml, first_line, body, &mut warnings)?
        }
        None => (from_plain_text(text)?, Vec::new()),
    };
    if clipping.published.is_none() {
        clipping.published = date_in_name(name);
    }
    Ok(Parsed { clipping, warnings, key_notes })
}

/// Whether `text` has a CR that does not start a CRLF.
fn has_lone_cr(text: &str) -> bool {
    let b = text.as_bytes();
    b.iter().enumerate().any(|(i, &c)| c == b'\r' && b.get(i + 1) != Some(&b'\n'))
}

/// The date a file name starts with (`YYYY-MM-DD`, then the end of the name or a separator such
/// as `-`, `_` or `.`), as midnight UTC. Only the last part of a path counts.
pub(crate) fn date_in_name(name: &str) -> Option<DateTime<Utc>> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let head = base.get(..10)?;
    let shaped = head.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
    let separated = base[10..].chars().next().is_none_or(|c| !c.is_alphanumeric());
    if !shaped || !separated {
        return None;
    }
    parse_date(head)
}

/// Splits `---\n<yaml>\n---\n<body>`. `Ok(None)` when the text does not open with a `---` line.
/// CRLF line endings are accepted; the closing line may also be YAML's `...`.
pub fn split_front_matter(text: &str) -> Result<Option<(&str, &str)>, Error> {
    let mut lines = LineIter { text, pos: 0 };
    match lines.next() {
        Some((_, line)) if line.trim_end() == "---" => {}
        _ => return Ok(None),
    }
    let yaml_start = lines.pos;
    // A `---` line is also a Markdown thematic break. It opens front matter only when what follows
    // looks like YAML: a `key:` line (or the closing line, for an empty block).
    let first =
        LineIter { text, pos: yaml_start }.map(|(_, l)| l.trim()).find(|l| !l.is_empty() && !l.starts_with('#'));
    match first {
        Some("---" | "...") => {}
        Some(l) if looks_like_yaml_key(l) => {}
        _ => return Ok(None),
    }
    for (start, line) in lines.by_ref() {
        let t = line.trim_end();
        if t == "---" || t == "..." {
            let body_start = (start + line.len()).min(text.len());
            let body = text[body_start..].trim_start_matches(['\r', '\n']);
            return Ok(Some((&text[yaml_start..start], body)));
        }
    }
    Err(Error::Unterminated)
}

/// Whether a line starts a YAML mapping entry: `key:` or `key: value`, the key plain (no white
/// space) or quoted.
fn looks_like_yaml_key(line: &str) -> bool {
    let rest = match line.chars().next() {
        Some(q @ ('"' | '\'')) => match line[1..].find(q) {
            Some(i) => &line[i + 2..],
            None => return false,
        },
        Some('-' | '[' | '{' | '&' | '*' | '!' | '|' | '>' | '%' | '@' | '`') | None => return false,
        Some(_) => match line.find(':') {
            Some(i) if !line[..i].contains(char::is_whitespace) => &line[i..],
            _ => return false,
        },
    };
    rest.strip_prefix(':').is_some_and(|after| after.is_empty() || after.starts_with([' ', '\t']))
}

/// Yields `(offset, line)` with the line's terminator (`\n` or `\r\n`) stripped; the offset of the
/// next line is `pos`.
struct LineIter<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Iterator for LineIter<'a> {
    type Item = (usize, &'a str);
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.text.len() {
            return None;
        }
        let start = self.pos;
        let rest = &self.text[start..];
        let (line, advance) = match rest.find('\n') {
            Some(i) => (&rest[..i], i + 1),
            None => (rest, rest.len()),
        };
        self.pos += advance;
        Some((start, line.strip_suffix('\r').unwrap_or(line)))
    }
}

/// Reads a date: RFC 3339 (offset or `Z`), a date-time without zone (taken as UTC, `T` or space
/// separated, optional fraction), or a date alone (midnight UTC). RFC 2822 is accepted too. Years
/// outside 1 to 9999 are refused: RFC 3339 and RFC 2822 cannot write them.
///
/// A leap second (`:60`, which chrono keeps as a 59th second past its billionth nanosecond) is
/// read as the second before it: feed readers' date parsers refuse `:60` (Go's, Python's,
/// JavaScript's, feedparser's), and chrono would write it back as it came.
pub(crate) fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    use chrono::{Datelike, Timelike};
    let d = parse_date_any(s.trim()).filter(|d| (1..=9999).contains(&d.year()))?;
    if d.nanosecond() >= 1_000_000_000 { d.with_nanosecond(0) } else { Some(d) }
}

fn parse_date_any(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    // RFC 3339 with a space instead of `T`, or a lowercase `t`/`z`.
    let alt = s.replacen(' ', "T", 1).to_ascii_uppercase();
    if let Ok(d) = DateTime::parse_from_rfc3339(&alt) {
        return Some(d.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(&alt, fmt) {
            return Some(Utc.from_utc_datetime(&n));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0)?));
    }
    if let Ok(d) = DateTime::parse_from_rfc2822(s) {
        return Some(d.with_timezone(&Utc));
    }
    None
}

#[cfg(test)]
mod forgiving_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> Parsed {
        parse(input.as_bytes(), Limits::default()).unwrap_or_else(|e| panic!("rejected: {e}"))
    }

    fn err(input: &[u8]) -> Error {
        parse(input, Limits::default()).expect_err("should be rejected")
    }

    const BASIC: &str = "---\ntitle: \"Hello &amp; welcome\"\nexcerpt: \"An <b>excerpt</b>&nbsp;here\"\npublishedDateTime: 2020-06-11T11:59:00Z\nwebUrl: HTTPS://Example.COM/a#frag\nprovider:\n  name: Example\n  domain: Example.com\ntopics:\n  - AWS AI\n  - AI\n  - AI\nsecured: \"xyz\"\nunknown: [1, 2]\n---\n";

    #[test]
    fn front_matter_fields() {
        let p = ok(BASIC);
        let c = p.clipping;
        assert_eq!(c.title, "Hello & welcome");
        assert_eq!(c.excerpt.as_deref(), Some("An excerpt here"));
        assert_eq!(c.published.unwrap().to_rfc3339(), "2020-06-11T11:59:00+00:00");
        assert_eq!(c.url.as_deref(), Some("https://example.com/a"));
        assert_eq!(c.provider.unwrap().domain.as_deref(), Some("example.com"));
        assert_eq!(c.topics, vec!["AWS AI", "AI"]);
        assert_eq!(c.content_html, None);
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn bom_and_crlf() {
        let crlf = format!("\u{FEFF}{}", BASIC.replace('\n', "\r\n"));
        assert_eq!(ok(&crlf).clipping, ok(BASIC).clipping);
    }

    #[test]
    fn quality_is_any_number_rounded_to_a_whole_one() {
        let q = |v: &str| parse(format!("---\ntitle: T\nquality: {v}\n---\n").as_bytes(), Limits::default());
        assert_eq!(q("72").unwrap().clipping.quality, Some(72));
        assert_eq!(q("72.5").unwrap().clipping.quality, Some(73));
        assert_eq!(q("-0.4").unwrap().clipping.quality, Some(0));
        assert_eq!(q("1e3").unwrap().clipping.quality, Some(1000));
        assert_eq!(q("1e300").unwrap().clipping.quality, Some(i64::MAX));
        assert_eq!(q("~").unwrap().clipping.quality, None);
        for bad in [".nan", ".inf", "high", "true"] {
            let e = q(bad).unwrap_err().to_string();
            assert!(e.contains("quality") && e.contains("a number"), "{bad}: {e}");
        }
    }

    #[test]
    fn published_takes_yaml_1_1_words_for_yes_and_no() {
        let p = |v: &str| parse(format!("---\ntitle: T\npublished: {v}\n---\n").as_bytes(), Limits::default());
        for (v, unpublished) in
            [("false", true), ("no", true), ("Off", true), ("N", true), ("true", false), ("yes", false)]
        {
            assert_eq!(p(v).unwrap().clipping.unpublished, unpublished, "{v}");
        }
        for bad in ["maybe", "0", "[x]"] {
            let e = p(bad).unwrap_err().to_string();
            assert!(e.contains("published") && e.contains("true or false") && !e.contains("maybe"), "{bad}: {e}");
        }
    }

    #[test]
    fn lone_cr_line_endings_are_line_breaks() {
        let with_body = format!("{BASIC}A *body* line\n\nAnother\n");
        let cr = with_body.replace('\n', "\r");
        let (parsed, basic) = (ok(&cr).clipping, ok(&with_body).clipping);
        assert_eq!(parsed, basic);
        assert_eq!(parsed.title, "Hello & welcome");
        // Mixed: CRLF, CR and LF in one file.
        let mixed: String = with_body
            .split_inclusive('\n')
            .enumerate()
            .map(|(i, l)| match i % 3 {
                0 => l.replace('\n', "\r\n"),
                1 => l.replace('\n', "\r"),
                _ => l.to_string(),
            })
            .collect();
        assert_eq!(ok(&mixed).clipping, basic);
        let plain = ok("A headline of several words\r\rFirst paragraph of the text.\r").clipping;
        assert_eq!(plain.title, "A headline of several words");
    }

    #[test]
    fn body_becomes_sanitised_html() {
        let c = ok("---\ntitle: T\n---\n# Head\n\nSome *text* <script>alert(1)</script>\n<img src=x onerror=\"alert(1)\">\n[a](javascript:alert(1)) [b](https://ok.example/)\n").clipping;
        let html = c.content_html.unwrap();
        assert!(html.contains("<em>text</em>"), "{html}");
        assert!(!html.contains("script"), "{html}");
        assert!(!html.contains("onerror"), "{html}");
        assert!(!html.contains("javascript"), "{html}");
        assert!(html.contains("https://ok.example/"), "{html}");
    }

    #[test]
    fn dates() {
        let d = |s: &str| parse_date(s).map(|d| d.to_rfc3339());
        assert_eq!(d("2020-06-11T11:59:00Z").as_deref(), Some("2020-06-11T11:59:00+00:00"));
        assert_eq!(d("2020-06-11T11:59:00+02:00").as_deref(), Some("2020-06-11T09:59:00+00:00"));
        assert_eq!(d("2020-06-11T11:59:00").as_deref(), Some("2020-06-11T11:59:00+00:00"));
        assert_eq!(d("2020-06-11 11:59:00").as_deref(), Some("2020-06-11T11:59:00+00:00"));
        assert_eq!(d("2020-06-11T11:59").as_deref(), Some("2020-06-11T11:59:00+00:00"));
        assert_eq!(d("2020-06-11").as_deref(), Some("2020-06-11T00:00:00+00:00"));
        assert_eq!(d("Thu, 11 Jun 2020 11:59:00 +0000").as_deref(), Some("2020-06-11T11:59:00+00:00"));
        assert_eq!(d("yesterday"), None);
        assert_eq!(d("2020-13-45"), None);
    }

    #[test]
    fn bad_date_is_a_warning_not_a_rejection() {
        let p = ok("---\ntitle: T\npublishedDateTime: soon\n---\n");
        assert_eq!(p.clipping.published, None);
        assert_eq!(p.warnings.len(), 1);
    }

    #[test]
    fn published_flag() {
        assert!(ok("---\ntitle: T\npublished: false\n---\n").clipping.unpublished);
        assert!(!ok("---\ntitle: T\npublished: true\n---\n").clipping.unpublished);
        assert!(!ok("---\ntitle: T\n---\n").clipping.unpublished);
        assert!(err(b"---\ntitle: T\npublished: [x]\n---\n").to_string().contains("published"));
    }

    #[test]
    fn scalar_titles_and_urls() {
        assert_eq!(ok("---\ntitle: 1984\n---\n").clipping.title, "1984");
        let p = ok("---\ntitle: T\nwebUrl: javascript:alert(1)\n---\n");
        assert_eq!(p.clipping.url, None);
        assert_eq!(p.warnings.len(), 1);
        let p = ok("---\ntitle: T\noriginalUrl: https://youtube.example/v\n---\n");
        assert_eq!(p.clipping.url.as_deref(), Some("https://youtube.example/v"));
    }

    #[test]
    fn topics_past_the_most_a_clipping_may_have_are_dropped_with_a_warning() {
        let names: Vec<String> = (0..5000).map(|i| format!("t{i}")).collect();
        let p = ok(&format!("---\ntitle: T\ntopics: [{}]\n---\n", names.join(", ")));
        assert_eq!(p.clipping.topics, names[..front::MAX_TOPICS]);
        assert!(p.warnings.iter().any(|w| w.contains("5000 topics given")), "{:?}", p.warnings);
        let few = ok("---\ntitle: T\ntopics: [a, b, a]\n---\n");
        assert_eq!((few.clipping.topics.len(), few.warnings.len()), (2, 0));
    }

    #[test]
    fn bad_topics_are_dropped_with_warnings() {
        let p = ok("---\ntitle: T\ntopics: [\"../../etc\", \"!!!\", \"Good One\", null]\n---\n");
        assert_eq!(p.clipping.topics, vec!["Good One"]);
        assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
    }

    #[test]
    fn rejections() {
        assert!(matches!(err(b""), Error::Empty));
        assert!(matches!(err(b"  \n\n"), Error::Empty));
        assert!(matches!(err(b"\xff\xfe"), Error::NotUtf8 { .. }));
        assert!(matches!(err(b"---\ntitle: a\0b\n---\n"), Error::Binary { .. }));
        assert!(matches!(err(b"---\ntitle: x\n"), Error::Unterminated));
        assert!(matches!(err(b"---\ntitle: [unclosed\n---\n"), Error::Yaml(_)));
        assert!(matches!(err(b"---\nexcerpt: no title here\n---\n"), Error::NoTitle));
        assert!(matches!(err(b"short\nlines\nonly\n"), Error::NoTitle));
        let e = err(b"---\ntitle: [a, b]\n---\n");
        assert!(e.to_string().contains("title"), "{e}");
        let e = err(b"---\ntitle: T\ntopics: {a: b}\n---\n");
        assert!(e.to_string().contains("topics"), "{e}");
        let e = err(b"---\ntitle: T\nimages:\n  - url: x\n    width: big\n---\n");
        assert!(e.to_string().contains("images[0].width"), "{e}");
        let big = vec![b'a'; 2048];
        assert!(matches!(parse(&big, Limits { max_file_bytes: 1024 }), Err(Error::TooLarge { size: 2048, max: 1024 })));
    }

    #[test]
    fn yaml_bombs_are_rejected() {
        let bomb = "---\na: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\ntitle: T\n---\n";
        // Either rejected or parsed without expanding: it must return quickly and not explode.
        let _ = parse(bomb.as_bytes(), Limits::default());
        // Deep nesting in an ignored field is skipped; in a known field it is a type error.
        let deep = |field: &str| format!("---\ntitle: T\n{field}: {}{}\n---\n", "[".repeat(10_000), "]".repeat(10_000));
        let _ = parse(deep("x").as_bytes(), Limits::default());
        assert!(matches!(err(deep("topics").as_bytes()), Error::Yaml(_)));
    }

    #[test]
    fn plain_text_without_front_matter() {
        let crlf = "Label\r\n\r\nA title of several words\r\n\r\nFirst paragraph has enough words.\r\n";
        assert_eq!(ok(crlf).clipping.excerpt.as_deref(), Some("First paragraph has enough words."));
        let c = ok("Tech\n\nAmazon says it’s halting police use of facial recognition for 1 year\n\nAmazon’s relationships with law enforcement have long been criticized.\n\nMore text.\n").clipping;
        assert_eq!(c.title, "Amazon says it’s halting police use of facial recognition for 1 year");
        assert_eq!(
            c.excerpt.as_deref(),
            Some("Amazon’s relationships with law enforcement have long been criticized.")
        );
        let html = c.content_html.unwrap();
        assert!(html.starts_with("<p>Tech</p>"), "{html}");
        assert!(!html.contains("halting police"), "{html}");
        assert_eq!(c.published, None);
    }

    #[test]
    fn plain_text_heading_wins() {
        let c = ok("Some intro line with many words here\n\n## The *Real* Title\n\nBody.\n").clipping;
        assert_eq!(c.title, "The Real Title");
        let c = ok("Setext Title\n============\n\nBody text goes here.\n").clipping;
        assert_eq!(c.title, "Setext Title");
        assert!(!c.content_html.unwrap().contains("Setext"));
    }

    #[test]
    fn front_matter_without_title_uses_body_heading() {
        let c = ok("---\nwebUrl: https://a.example/\n---\n# From Body\n\nText.\n").clipping;
        assert_eq!(c.title, "From Body");
        assert_eq!(c.content_html.as_deref(), Some("<p>Text.</p>"));
    }

    #[test]
    fn xml_forbidden_characters_are_removed() {
        let c = ok("---\ntitle: \"bell\\a and \\x0B tab\"\nexcerpt: \"x\\uFFFEy\"\n---\nbody \u{1} text\n").clipping;
        assert_eq!(c.title, "bell and tab");
        assert_eq!(c.excerpt.as_deref(), Some("xy"));
        assert_eq!(c.content_html.as_deref(), Some("<p>body  text</p>"));
    }

    #[test]
    fn images_and_related() {
        let c = ok("---\ntitle: T\nimages:\n  - url: \"https://img.example/a.jpg?x=1&#038;y=2\"\n    width: 10\n    height: 20\n  - url: /relative.png\nprovider:\n  name: P\n  domain: p.example\n  images:\n    - url: /assets/p.jpg\nrelated:\n  - title: R\n    webUrl: https://r.example/\n    provider: {name: RP, domain: r.example}\n  - title: no url\n---\n").clipping;
        assert_eq!(
            c.images,
            vec![Image { url: "https://img.example/a.jpg?x=1&y=2".into(), width: Some(10), height: Some(20) }]
        );
        assert_eq!(c.related.len(), 1);
        assert_eq!(c.related[0].provider.as_deref(), Some("RP"));
        assert!(c.provider.unwrap().images.is_empty());
    }

    #[test]
    fn a_related_article_with_a_dangerous_url_is_dropped_with_a_warning() {
        let p = ok("---\ntitle: T\nrelated:\n  - title: R\n    webUrl: \"javascript:alert(1)\"\n---\n");
        assert!(p.clipping.related.is_empty());
        assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
        assert!(p.warnings[0].starts_with("related: \"javascript:alert(1)\""), "{:?}", p.warnings);
    }

    #[test]
    fn a_leading_thematic_break_is_not_front_matter() {
        let c = ok("---\n\nSome plain text after a thematic break here\n\nMore.\n").clipping;
        assert_eq!(c.title, "Some plain text after a thematic break here");
        let c = ok("---\nA line of prose, not YAML at all\n---\nBody.\n").clipping;
        assert_eq!(c.title, "A line of prose, not YAML at all");
        assert!(matches!(err(b"---\ntitle: forgot to close\nwebUrl: https://x.example/\n"), Error::Unterminated));
        assert!(matches!(err(b"---\n\"title\": quoted key\n"), Error::Unterminated));
        assert!(looks_like_yaml_key("title:"));
        assert!(looks_like_yaml_key("'a b': 1"));
        assert!(!looks_like_yaml_key("http://example.com"));
        assert!(!looks_like_yaml_key("- item"));
        assert!(!looks_like_yaml_key("two words: x"));
    }

    #[test]
    fn a_body_nested_deeper_than_the_parser_is_given_keeps_its_text() {
        // 20,000 Markdown quotes and 20,000 `<ul><li>`: quadratic for the HTML parser as they
        // come (seconds), cut to `text::MAX_DEPTH` first.
        let quotes = format!("{}deep words", ">".repeat(20_000));
        let html = plain::markdown_to_html(&quotes).unwrap();
        assert!(html.contains("deep words"), "{html}");
        assert!(html.matches("<blockquote>").count() <= crate::text::MAX_DEPTH);
        let lists = format!("{}item text", "<ul><li>".repeat(20_000));
        let html = plain::markdown_to_html(&lists).unwrap();
        assert!(html.contains("item text") && html.matches("<ul>").count() <= crate::text::MAX_DEPTH);
    }

    #[test]
    fn a_leap_second_is_read_as_the_second_before_it() {
        for (text, want) in [
            ("2026-03-01T12:00:60Z", "2026-03-01T12:00:59Z"),
            ("2016-12-31T23:59:60Z", "2016-12-31T23:59:59Z"),
            ("2016-12-31T23:59:60.5+00:00", "2016-12-31T23:59:59Z"),
            ("2016-12-31 23:59:60", "2016-12-31T23:59:59Z"),
        ] {
            let d = parse_date(text).unwrap();
            assert_eq!(d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true), want, "{text}");
            assert!(!d.to_rfc2822().contains(":60"), "{text}");
        }
        assert_eq!(
            parse_date("2026-03-01T12:00:59.25Z").unwrap().timestamp_subsec_millis(),
            250,
            "no leap: as written"
        );
    }

    #[test]
    fn dates_outside_rfc_years_are_refused() {
        assert_eq!(parse_date("+10000-01-01"), None);
        assert_eq!(parse_date("-0001-01-01"), None);
        assert_eq!(parse_date("0000-01-01T00:00:00Z"), None);
        assert!(parse_date("9999-12-31T23:59:59Z").is_some());
        let p = ok("---\ntitle: T\npublishedDateTime: \"+10000-01-01\"\n---\n");
        assert_eq!(p.clipping.published, None);
        assert_eq!(p.warnings.len(), 1);
    }

    #[test]
    fn empty_front_matter_block() {
        let c = ok("---\n---\n# Only a heading title here\n").clipping;
        assert_eq!(c.title, "Only a heading title here");
    }
}
