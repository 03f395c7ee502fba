//! Small text rules shared by the parser and the renderers: what a slug is, which characters XML
//! 1.0 allows, how an HTML-ish string becomes plain text, how a provider domain is normalised.
//!
//! Everything here is a pure function over `&str`. None of it knows about clippings or feeds.

use std::borrow::Cow;

/// Longest slug we produce, in bytes. Longer names are cut at a word boundary.
pub const MAX_SLUG_LEN: usize = 80;

/// Whether XML 1.0 allows `c` in character data (the `Char` production of XML 1.0, 2.2).
pub fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\u{9}' | '\u{A}' | '\u{D}'
        | '\u{20}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}'
        | '\u{10000}'..='\u{10FFFF}')
}

/// Removes every character XML 1.0 forbids (C0 controls other than tab/LF/CR, U+FFFE, U+FFFF;
/// surrogates cannot occur in a Rust string). Borrows when there is nothing to remove.
pub(crate) fn xml_clean(s: &str) -> Cow<'_, str> {
    if s.chars().all(is_xml_char) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.chars().filter(|&c| is_xml_char(c)).collect())
    }
}

/// Collapses runs of white space (including newlines) to one space and trims the ends.
pub(crate) fn squash_ws(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Turns a string that may hold HTML tags and entities into one line of plain text: tags are
/// dropped (with the contents of `script` and `style`), entities decoded, characters XML forbids
/// removed, white space collapsed. Used for titles, excerpts and names, which we publish as text.
pub(crate) fn plain_text(s: &str) -> String {
    let mut current = squash_ws(&xml_clean(s));
    // Decoding can reveal new markup (`&lt;img onerror=…&gt;`); repeat until nothing changes, so
    // the result never holds a tag, whatever a reader does with it.
    for _ in 0..4 {
        let next = plain_text_once(&current);
        if next == current {
            return current;
        }
        current = next;
    }
    if plain_text_once(&current) == current {
        return current;
    }
    // Entities nested deeper than any real text: one more decoding could reveal one more tag
    // (`&amp;amp;amp;amp;lt;script&amp;…`), and decoding to the end costs a pass per layer. Strip
    // the tags and leave the rest encoded instead, so no `<` remains.
    let stripped = ammonia::Builder::empty().clean(&shallow(&current)).to_string();
    squash_ws(&xml_clean(&stripped))
}

/// How deep elements may nest in markup handed to the HTML parser (html5ever, under ammonia).
/// Its tree builder looks through the open elements at every tag, so markup nested N deep costs
/// it N² steps: a clipping of 100,000 `>` (Markdown quotes) or `<div>` held the writer for
/// minutes. No article nests a tenth as deep.
pub(crate) const MAX_DEPTH: usize = 256;

/// Elements that close themselves (void) or are closed by their next sibling in practice
/// (`<p>`, `<li>`, table cells…): not counted as nesting, so loose real-world markup keeps them.
const NOT_NESTING: [&str; 26] = [
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr", "p", "li",
    "dt", "dd", "tr", "td", "th", "option", "optgroup", "tbody", "thead", "tfoot", "colgroup",
];

/// `html` with every start tag that would nest elements deeper than [`MAX_DEPTH`] left out (its
/// text and the tags within kept), in one pass: what the HTML parser is then handed costs it
/// at most `MAX_DEPTH` steps a tag. A rough reading of tags (no quotes, no comments) is enough:
/// the output still goes through the sanitiser, so a misread tag can only lose markup, not
/// let any through. `html` itself when nothing is that deep.
pub(crate) fn shallow(html: &str) -> Cow<'_, str> {
    let bytes = html.as_bytes();
    // The elements open, by name, as the parser would hold them: an end tag closes the nearest of
    // its name and everything opened after it, and one that names nothing open is ignored (as
    // the parser does; counting it would let `<div></span>` nest unseen).
    let mut open: Vec<&str> = Vec::new();
    let (mut out, mut copied, mut i) = (String::new(), 0usize, 0usize);
    while let Some(lt) = memchr(b'<', &bytes[i..]).map(|p| p + i) {
        let Some(gt) = memchr(b'>', &bytes[lt..]).map(|p| p + lt) else { break };
        let tag = &html[lt + 1..gt];
        i = gt + 1;
        let closing = tag.starts_with('/');
        let name_of = tag.trim_start_matches('/');
        let end = name_of.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(name_of.len());
        let name = &name_of[..end];
        if name.is_empty() || !name.as_bytes()[0].is_ascii_alphabetic() {
            continue;
        }
        if NOT_NESTING.iter().any(|n| n.eq_ignore_ascii_case(name)) || (!closing && tag.ends_with('/')) {
            continue;
        }
        if closing {
            if let Some(at) = open.iter().rposition(|n| n.eq_ignore_ascii_case(name)) {
                open.truncate(at);
            }
        } else if open.len() < MAX_DEPTH {
            open.push(name);
        } else {
            out.push_str(&html[copied..lt]);
            copied = gt + 1;
        }
    }
    if copied == 0 {
        return Cow::Borrowed(html);
    }
    out.push_str(&html[copied..]);
    Cow::Owned(out)
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

fn plain_text_once(s: &str) -> String {
    let decoded: Cow<'_, str> = if s.contains('<') {
        // A real HTML parser decides what is a tag; a stray `<` that opens no tag stays text.
        let text_only = ammonia::Builder::empty().clean(&shallow(s)).to_string();
        Cow::Owned(html_escape::decode_html_entities(&text_only).into_owned())
    } else if s.contains('&') {
        html_escape::decode_html_entities(s)
    } else {
        Cow::Borrowed(s)
    };
    // Decoding can produce characters XML forbids (`&#1;`), so clean again.
    squash_ws(&xml_clean(&decoded))
}

/// Escapes text for use inside HTML element content or a double-quoted attribute.
pub(crate) fn html_escape(s: &str) -> Cow<'_, str> {
    if !s.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Why a name could not become a slug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlugError {
    /// The name holds `/`, `\`, `..`, or a control character: it looks like a path trick.
    PathTrick,
    /// Nothing of `[a-z0-9]` is left after transliteration.
    Empty,
}

impl std::fmt::Display for SlugError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SlugError::PathTrick => f.write_str("looks like a path (contains '/', '\\', '..' or a control character)"),
            SlugError::Empty => f.write_str("has no letters or digits to make a slug from"),
        }
    }
}

/// Maps a display name to a slug of `[a-z0-9-]`: non-ASCII letters are transliterated
/// ("Données" → "donnees"), `+` and `&` are spelt out, every other run of non-alphanumerics
/// becomes one hyphen. "AWS AI" → `aws-ai`, "Computer Vision" → `computer-vision`.
pub(crate) fn slugify(name: &str) -> Result<String, SlugError> {
    if name.contains(['/', '\\']) || name.contains("..") || name.chars().any(char::is_control) {
        return Err(SlugError::PathTrick);
    }
    let ascii = deunicode::deunicode(name);
    let mut slug = String::with_capacity(ascii.len());
    // Whether a separator is owed before the next letter or digit.
    let mut dash = false;
    let word = |slug: &mut String, dash: &mut bool, w: &str| {
        if *dash && !slug.is_empty() {
            slug.push('-');
        }
        *dash = false;
        slug.push_str(w);
    };
    for c in ascii.chars() {
        match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' => {
                word(&mut slug, &mut dash, c.to_ascii_lowercase().encode_utf8(&mut [0; 4]))
            }
            '+' | '&' => {
                dash = true;
                word(&mut slug, &mut dash, if c == '+' { "plus" } else { "and" });
                dash = true;
            }
            // Apostrophes join rather than split: "Women's Health" → "womens-health".
            '\'' | '\u{2019}' => {}
            _ => dash = true,
        }
    }
    if slug.len() > MAX_SLUG_LEN {
        let cut = slug[..MAX_SLUG_LEN].rfind('-').unwrap_or(MAX_SLUG_LEN);
        slug.truncate(cut);
    }
    let slug = slug.trim_matches('-').to_string();
    if slug.is_empty() { Err(SlugError::Empty) } else { Ok(slug) }
}

/// Whether `s` is already a slug as [`slugify`] makes them (used to validate configured slugs).
pub(crate) fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SLUG_LEN
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

/// Normalises a provider domain: trimmed, lowercased, IDNA to ASCII, and checked to be a plain
/// host name (labels of `[a-z0-9_-]`, no empty label, at most 253 bytes). `None` when it is not.
/// A domain written as a site's address stands for its host, with or without a scheme, port or
/// path (`https://Example.com/`, `//example.com`, `example.com:8080/news`): the one reading of a
/// domain that clippings, the configuration's `providers`, the `provider=` filter and `clipfeed
/// render --provider` share, so a private site cannot be missed because one of them wrote it as
/// an address. (`www.example.com` is a host of its own.)
pub(crate) fn normalize_domain(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.contains(['/', ':', '@', '?', '#']) {
        // An address: read as a URL, an `http://` put before one written without a scheme.
        let lower = raw.get(..8).unwrap_or(raw).to_ascii_lowercase();
        let url = if lower.starts_with("http:") || lower.starts_with("https:") {
            url::Url::parse(raw)
        } else if let Some(rest) = raw.strip_prefix("//") {
            url::Url::parse(&format!("http://{rest}"))
        } else if raw.contains("://") {
            return None;
        } else {
            url::Url::parse(&format!("http://{raw}"))
        };
        return url.ok().and_then(|u| plain_host(u.host_str()?));
    }
    plain_host(raw)
}

/// A host name as [`normalize_domain`] keeps it, from text without scheme, port or path.
fn plain_host(raw: &str) -> Option<String> {
    let trimmed = raw.trim_end_matches('.');
    if trimmed.is_empty() || trimmed.len() > 253 {
        return None;
    }
    let host = match url::Host::parse(trimmed).ok()? {
        url::Host::Domain(d) => d,
        // An address is a valid, if odd, provider key.
        url::Host::Ipv4(a) => a.to_string(),
        url::Host::Ipv6(_) => return None,
    };
    let ok = host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    });
    ok.then_some(host)
}

/// Canonical form of an article URL: absolute `http`/`https` only, host lowercased (and IDNA),
/// default port and fragment dropped, path normalised by the WHATWG rules. `None` for anything
/// else, including `javascript:`, `data:` and `file:` URLs.
pub(crate) fn canonical_url(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return None;
    }
    let mut url = url::Url::parse(trimmed).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return None;
    }
    url.set_fragment(None);
    // Credentials in a link leak secrets to every subscriber; drop them.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Some(url.to_string())
}

/// Text normalised for word matching: lowercase runs of letters and digits, each surrounded by
/// single spaces (" a robot arm "). A phrase matches when its own `words` form is a substring,
/// which respects word boundaries.
pub fn words(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_words(&mut out, s);
    out
}

/// [`words`] of `s`, appended to `out`. An ASCII character is classed and lowercased by its
/// byte (what `char::is_alphanumeric` and `char::to_lowercase` give it: one ASCII letter or
/// digit, lowercased, or none), the rest through Unicode's tables: titles and excerpts are
/// mostly ASCII, and a topic remap makes the words of every item whose rules have keywords.
fn push_words(out: &mut String, s: &str) {
    out.push(' ');
    let mut in_word = false;
    for c in s.chars() {
        let alnum = if c.is_ascii() { c.is_ascii_alphanumeric() } else { c.is_alphanumeric() };
        if alnum {
            if c.is_ascii() {
                out.push(c.to_ascii_lowercase());
            } else {
                out.extend(c.to_lowercase());
            }
            in_word = true;
        } else if in_word {
            out.push(' ');
            in_word = false;
        }
    }
    if in_word {
        out.push(' ');
    }
}

/// [`words`] of several fields, kept apart: a phrase matches within one field, never across the
/// end of one and the start of the next.
pub fn words_of(fields: &[&str]) -> String {
    let mut out = String::with_capacity(fields.iter().map(|f| f.len() + 2).sum());
    for f in fields {
        push_words(&mut out, f);
    }
    out
}

/// Cuts `s` to at most `max` characters at a word boundary, adding "…" when it cut.
pub(crate) fn truncate_words(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let byte_end = s.char_indices().nth(max).map_or(s.len(), |(i, _)| i);
    let head = &s[..byte_end];
    let cut = head.rfind(' ').filter(|&i| i > byte_end / 2).unwrap_or(byte_end);
    format!("{}…", head[..cut].trim_end())
}

#[cfg(test)]
mod tests {
    /// Markup nested past [`MAX_DEPTH`] loses the start tags past it, and nothing else: its
    /// text, and markup of any length that nests less, are as they were; end tags of elements
    /// not open do not count down.
    #[test]
    fn markup_nested_too_deep_is_cut_to_the_depth_the_parser_is_given() {
        let ok = "<div><p>One<p>Two<ul><li>a<li>b</ul><br><img src=x /></div>".repeat(1000);
        assert!(matches!(shallow(&ok), Cow::Borrowed(_)), "loose but shallow markup is kept");
        let deep = format!("{}text{}", "<div class=x>".repeat(1000), "</div>".repeat(1000));
        let cut = shallow(&deep);
        assert_eq!(cut.matches("<div").count(), MAX_DEPTH);
        assert!(cut.contains("text") && cut.matches("</div>").count() == 1000);
        let sneaky = "<div></span>".repeat(1000);
        assert_eq!(shallow(&sneaky).matches("<div>").count(), MAX_DEPTH, "unmatched end tags close nothing");
        let excerpt = format!("{}E", "<div>".repeat(20_000));
        assert_eq!(plain_text(&excerpt), "E");
    }

    use super::*;

    #[track_caller]
    fn slug(name: &str, expect: &str) {
        assert_eq!(slugify(name).as_deref(), Ok(expect), "slug of {name:?}");
    }

    #[test]
    fn slugs() {
        slug("AWS AI", "aws-ai");
        slug("Computer Vision", "computer-vision");
        slug("  Natural   Language Processing ", "natural-language-processing");
        slug("Données Ouvertes", "donnees-ouvertes");
        slug("C++", "c-plus-plus");
        slug("R&D", "r-and-d");
        slug("Women's Health", "womens-health");
        slug("AI in Autos!", "ai-in-autos");
        slug("Ünïcödé—Dash", "unicode-dash");
        slug("東京", "dong-jing");
        slug("--a--b--", "a-b");
        assert_eq!(slugify("../etc/passwd"), Err(SlugError::PathTrick));
        assert_eq!(slugify("a\\b"), Err(SlugError::PathTrick));
        assert_eq!(slugify(".."), Err(SlugError::PathTrick));
        assert_eq!(slugify("tab\there"), Err(SlugError::PathTrick));
        assert_eq!(slugify("!!!"), Err(SlugError::Empty));
        assert_eq!(slugify(""), Err(SlugError::Empty));
        let long = "word ".repeat(40);
        let s = slugify(&long).unwrap();
        assert!(s.len() <= MAX_SLUG_LEN && is_slug(&s), "{s}");
    }

    #[test]
    fn slug_validation() {
        assert!(is_slug("aws-ai"));
        assert!(!is_slug("AWS"));
        assert!(!is_slug("-a"));
        assert!(!is_slug("a--b"));
        assert!(!is_slug(""));
        assert!(!is_slug("a/b"));
    }

    #[test]
    fn xml_chars() {
        assert_eq!(xml_clean("a\u{0}b\u{B}c\u{FFFE}d\te\n"), "abcd\te\n");
        assert!(matches!(xml_clean("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn plain_text_never_holds_a_tag_however_deep_the_entities() {
        for depth in 0..12 {
            let mut s = "&lt;script&gt;alert(1)&lt;/script&gt; &#60;b&#62;x".to_string();
            for _ in 0..depth {
                s = s.replace('&', "&amp;");
            }
            let plain = plain_text(&s);
            assert!(!plain.contains('<'), "depth {depth}: {plain:?}");
        }
        assert_eq!(plain_text("1 < 2 &amp; 3 > 2"), "1 < 2 & 3 > 2");
    }

    #[test]
    fn plain_text_strips_markup() {
        assert_eq!(plain_text("Tom &amp; Jerry"), "Tom & Jerry");
        // A non-breaking space is white space too.
        assert_eq!(plain_text("a&nbsp;b"), "a b");
        assert_eq!(plain_text("<b>Big</b> news<script>alert(1)</script>"), "Big news");
        assert_eq!(plain_text("x < y and y > z"), "x < y and y > z");
        assert_eq!(plain_text("  two\n\nlines\u{1} "), "two lines");
        assert!(plain_text("&#1;ctl&#x0B;").chars().all(is_xml_char));
        assert_eq!(plain_text("<img src=x onerror=alert(1)>caption"), "caption");
        assert_eq!(plain_text("&lt;img src=x onerror=alert(1)&gt;Hello"), "Hello");
        assert_eq!(plain_text("&amp;lt;script&amp;gt;x"), "");
        assert_eq!(plain_text("AT&amp;T"), "AT&T");
    }

    #[test]
    fn domains() {
        assert_eq!(normalize_domain("TechCrunch.com").as_deref(), Some("techcrunch.com"));
        assert_eq!(normalize_domain(" vice.com. ").as_deref(), Some("vice.com"));
        assert_eq!(normalize_domain("münchen.de").as_deref(), Some("xn--mnchen-3ya.de"));
        assert_eq!(normalize_domain("../etc"), None);
        assert_eq!(normalize_domain("a/b").as_deref(), Some("a"), "a host and a path");
        assert_eq!(normalize_domain("a..b"), None);
        assert_eq!(normalize_domain(""), None);
        assert_eq!(normalize_domain("<script>"), None);
        // A site's address stands for its host.
        assert_eq!(normalize_domain("https://Secret.Example/").as_deref(), Some("secret.example"));
        assert_eq!(normalize_domain(" HTTP://secret.example:8080/news?x=1 ").as_deref(), Some("secret.example"));
        assert_eq!(normalize_domain("https://user:pw@secret.example").as_deref(), Some("secret.example"));
        assert_eq!(normalize_domain("https://münchen.de/").as_deref(), Some("xn--mnchen-3ya.de"));
        assert_eq!(normalize_domain("secret.example/").as_deref(), Some("secret.example"));
        for written in [
            "secret.example/news",
            "//Secret.Example",
            "secret.example:8080",
            "secret.example:8080/news?x=1#y",
            "https:/secret.example",
            "http:secret.example",
            "user@secret.example/",
        ] {
            assert_eq!(normalize_domain(written).as_deref(), Some("secret.example"), "{written}");
        }
        assert_eq!(normalize_domain("https://[::1]/"), None);
        assert_eq!(normalize_domain("https:///"), None);
        assert_eq!(normalize_domain("ftp://secret.example/"), None);
        assert_eq!(normalize_domain("https://secret.example:99999/"), None);
        assert_eq!(normalize_domain("a b/c"), None);
    }

    #[test]
    fn urls() {
        assert_eq!(
            canonical_url("HTTPS://WWW.Example.COM:443/a/../b?q=1#frag").as_deref(),
            Some("https://www.example.com/b?q=1")
        );
        assert_eq!(
            canonical_url("https://apnews.com/Wired Release/x").as_deref(),
            Some("https://apnews.com/Wired%20Release/x")
        );
        assert_eq!(canonical_url("https://user:pw@example.com/").as_deref(), Some("https://example.com/"));
        assert_eq!(canonical_url("javascript:alert(1)"), None);
        assert_eq!(canonical_url("data:text/html,hi"), None);
        assert_eq!(canonical_url("file:///etc/passwd"), None);
        assert_eq!(canonical_url("/relative/path"), None);
        assert_eq!(canonical_url("   "), None);
    }

    #[test]
    fn word_normalisation() {
        assert_eq!(words("Hello, World!"), " hello world ");
        assert_eq!(words("Robot-Arm"), " robot arm ");
        assert_eq!(words("ÉCOLE"), " école ");
        assert_eq!(words(""), " ");
        assert!(words("the AI lab").contains(&words("ai")));
        assert!(!words("said").contains(&words("ai")));
        let both = words_of(&["A better machine", "Learning from data"]);
        assert!(both.contains(&words("machine")) && both.contains(&words("learning")));
        assert!(!both.contains(&words("machine learning")), "{both:?}");
    }

    /// [`words`] as it was written first, every character through Unicode's tables.
    fn words_by_tables(s: &str) -> String {
        let mut out = String::from(" ");
        let mut in_word = false;
        for c in s.chars() {
            if c.is_alphanumeric() {
                out.extend(c.to_lowercase());
                in_word = true;
            } else if in_word {
                out.push(' ');
                in_word = false;
            }
        }
        if in_word {
            out.push(' ');
        }
        out
    }

    #[test]
    fn words_of_ascii_by_byte_are_the_words_by_unicode_tables() {
        // Every character alone and between others (ASCII and not), then mixed text.
        let every: Vec<char> = (0..=0x10FFFFu32).filter_map(char::from_u32).collect();
        for c in &every {
            let s = format!("a{c}B {c}{c}z");
            assert_eq!(words(&s), words_by_tables(&s), "{c:?}");
        }
        let mixed: String = every.iter().step_by(97).chain(every.iter().take(300)).collect();
        assert_eq!(words(&mixed), words_by_tables(&mixed));
        let fields = ["A İstanbul ÉCOLE", "", "x", "Robot-Arm ǅ ß ΣΑΣ"];
        let joined: String = fields.iter().map(|f| words_by_tables(f)).collect();
        assert_eq!(words_of(&fields), joined);
    }

    #[test]
    fn truncation() {
        assert_eq!(truncate_words("short", 10), "short");
        assert_eq!(truncate_words("one two three four", 10), "one two…");
    }
}
