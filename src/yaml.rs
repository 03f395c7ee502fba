//! A fast reader for the plain block YAML that clipping front matter is written in: block
//! mappings with simple keys, block sequences, and single-line plain, single-quoted and
//! double-quoted scalars. It gives up (`None`) on everything else (flow collections, anchors and
//! aliases, tags, block and multi-line scalars, tabs, complex or duplicate keys, floats and
//! other number forms, characters YAML does not allow) and the caller then uses serde_yaml,
//! which also produces the error messages. On every text it accepts it yields exactly the value
//! serde_yaml gives (the tests compare the two over the corpus and over mutated documents).
//!
//! Why: libyaml through serde_yaml reads front matter at about 30 MB/s; this reads the common
//! case several times faster, and front matter is most of the work of a cold start.

use serde_json::{Map, Number, Value};

/// Nesting deeper than this is left to serde_yaml.
const MAX_DEPTH: usize = 64;

/// Reads `text` as a YAML document, if it stays inside the subset.
pub fn parse(text: &str) -> Option<Value> {
    if !plain_characters(text.as_bytes()) {
        return None;
    }
    let mut lines: Vec<Line<'_>> = Vec::new();
    for raw in text.split('\n') {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let content = raw.trim_start_matches(' ');
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let content = content.trim_end_matches(' ');
        lines.push(Line { indent: raw.len() - raw.trim_start_matches(' ').len(), text: content });
    }
    let Some(indent) = lines.first().map(|l| l.indent) else { return Some(Value::Null) };
    let mut r = Reader { lines, pos: 0 };
    let value = r.block(indent, 0)?;
    (r.pos == r.lines.len()).then_some(value)
}

/// Whether every character is one YAML allows in a document, with no tab (tabs are legal in
/// places, but never needed here), no byte order mark and no line break but LF and CRLF.
fn plain_characters(b: &[u8]) -> bool {
    let mut i = 0;
    while i < b.len() {
        // Printable ASCII is nearly everything: skip it in one pass.
        match b[i..].iter().position(|&c| !(0x20..0x7f).contains(&c)) {
            Some(n) => i += n,
            None => return true,
        }
        let c = b[i];
        match c {
            b'\n' => {}
            // A lone CR is a line break of its own.
            b'\r' if b.get(i + 1) == Some(&b'\n') => {}
            0..=0x1f | 0x7f => return false,
            // U+0080..U+009F: C1 controls, and NEL, which libyaml reads as a line break.
            0xc2 if matches!(b.get(i + 1), Some(0x80..=0x9f)) => return false,
            // U+2028, U+2029: line and paragraph separators, line breaks to libyaml.
            0xe2 if matches!((b.get(i + 1), b.get(i + 2)), (Some(0x80), Some(0xa8 | 0xa9))) => return false,
            // U+FEFF, U+FFFE, U+FFFF.
            0xef if matches!(
                (b.get(i + 1), b.get(i + 2)),
                (Some(0xbb), Some(0xbf)) | (Some(0xbf), Some(0xbe | 0xbf))
            ) =>
            {
                return false;
            }
            _ => {}
        }
        i += 1;
    }
    true
}

struct Line<'a> {
    indent: usize,
    text: &'a str,
}

struct Reader<'a> {
    lines: Vec<Line<'a>>,
    pos: usize,
}

impl<'a> Reader<'a> {
    /// The node whose first line is the current one, at `indent`.
    fn block(&mut self, indent: usize, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        let line = self.lines.get(self.pos)?;
        if line.indent != indent {
            return None;
        }
        if is_item(line.text) { self.sequence(indent, depth) } else { self.mapping(indent, depth) }
    }

    fn sequence(&mut self, indent: usize, depth: usize) -> Option<Value> {
        let mut items = Vec::new();
        while let Some(line) = self.lines.get(self.pos) {
            if line.indent < indent {
                break;
            }
            if line.indent > indent {
                return None;
            }
            if !is_item(line.text) {
                // The end of a sequence that sits at its key's indentation.
                break;
            }
            let rest = &line.text[1..];
            let after = rest.trim_start_matches(' ');
            if after.is_empty() {
                // `-` alone: the item is the block below, or null.
                self.pos += 1;
                match self.lines.get(self.pos) {
                    Some(next) if next.indent > indent => {
                        let ni = next.indent;
                        items.push(self.block(ni, depth + 1)?);
                    }
                    _ => items.push(Value::Null),
                }
            } else if is_item(after) {
                return None;
            } else if key_of(after).is_some() {
                // `- key: value` opens a mapping whose keys line up with this first one.
                let column = indent + 1 + (rest.len() - after.len());
                self.lines[self.pos] = Line { indent: column, text: after };
                items.push(self.mapping(column, depth + 1)?);
            } else {
                items.push(scalar(after)?);
                self.pos += 1;
                if self.lines.get(self.pos).is_some_and(|n| n.indent > indent) {
                    return None;
                }
            }
        }
        Some(Value::Array(items))
    }

    fn mapping(&mut self, indent: usize, depth: usize) -> Option<Value> {
        let mut map = Map::new();
        while let Some(line) = self.lines.get(self.pos) {
            if line.indent < indent {
                break;
            }
            if line.indent > indent {
                return None;
            }
            let (key, rest) = key_of(line.text)?;
            if map.contains_key(key) {
                return None;
            }
            self.pos += 1;
            let value = if rest.is_empty() || rest.starts_with('#') {
                match self.lines.get(self.pos) {
                    Some(next) if next.indent > indent => {
                        let ni = next.indent;
                        self.block(ni, depth + 1)?
                    }
                    // A sequence may sit at its key's own indentation.
                    Some(next) if next.indent == indent && is_item(next.text) => self.sequence(indent, depth + 1)?,
                    _ => Value::Null,
                }
            } else {
                let v = scalar(rest)?;
                if self.lines.get(self.pos).is_some_and(|n| n.indent > indent) {
                    return None;
                }
                v
            };
            map.insert(key.to_string(), value);
        }
        Some(Value::Object(map))
    }
}

/// Whether a line is a sequence item: `-` alone or followed by a space.
fn is_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

/// `key: rest` with a simple key (a letter or `_`, then letters, digits, `_` and `-`), and the
/// rest with its leading spaces removed.
fn key_of(text: &str) -> Option<(&str, &str)> {
    let b = text.as_bytes();
    if !b.first().is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_') {
        return None;
    }
    let end = b.iter().position(|c| !(c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-'))?;
    if b[end] != b':' || !matches!(b.get(end + 1), None | Some(b' ')) {
        return None;
    }
    let key = &text[..end];
    // Keys that YAML reads as null or booleans are not strings.
    if matches!(key, "null" | "Null" | "NULL" | "true" | "True" | "TRUE" | "false" | "False" | "FALSE") {
        return None;
    }
    Some((key, text[end + 1..].trim_start_matches(' ')))
}

/// A scalar that is the whole rest of its line, after an optional comment is removed.
fn scalar(text: &str) -> Option<Value> {
    let (value, after) = match text.as_bytes()[0] {
        b'"' => double_quoted(&text[1..])?,
        b'\'' => single_quoted(&text[1..])?,
        _ => return plain(text),
    };
    // After the closing quote: nothing, or a comment after a space.
    let ends_well = after.is_empty() || (after.starts_with(' ') && after.trim_start_matches(' ').starts_with('#'));
    ends_well.then_some(Value::String(value))
}

/// `"…"` on one line: the text and what follows the closing quote.
fn double_quoted(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut rest = s;
    loop {
        // Copy up to the next quote or backslash in one go.
        let i = rest.bytes().position(|b| b == b'"' || b == b'\\')?;
        out.push_str(&rest[..i]);
        if rest.as_bytes()[i] == b'"' {
            return Some((out, &rest[i + 1..]));
        }
        let mut chars = rest[i + 1..].chars();
        let hex = |n: usize, chars: &mut std::str::Chars<'_>| -> Option<char> {
            let mut v = 0u32;
            for _ in 0..n {
                v = v * 16 + chars.next()?.to_digit(16)?;
            }
            char::from_u32(v)
        };
        out.push(match chars.next()? {
            '0' => '\0',
            'a' => '\u{7}',
            'b' => '\u{8}',
            't' => '\t',
            'n' => '\n',
            'v' => '\u{b}',
            'f' => '\u{c}',
            'r' => '\r',
            'e' => '\u{1b}',
            ' ' => ' ',
            '"' => '"',
            '/' => '/',
            '\\' => '\\',
            'N' => '\u{85}',
            '_' => '\u{a0}',
            'L' => '\u{2028}',
            'P' => '\u{2029}',
            'x' => hex(2, &mut chars)?,
            'u' => hex(4, &mut chars)?,
            'U' => hex(8, &mut chars)?,
            _ => return None,
        });
        rest = chars.as_str();
    }
}

/// `'…'` on one line (`''` is a quote): the text and what follows the closing quote.
fn single_quoted(s: &str) -> Option<(String, &str)> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    loop {
        let i = rest.find('\'')?;
        out.push_str(&rest[..i]);
        if rest[i + 1..].starts_with('\'') {
            out.push('\'');
            rest = &rest[i + 2..];
        } else {
            return Some((out, &rest[i + 1..]));
        }
    }
}

/// A plain scalar, typed as serde_yaml types it: null, booleans and decimal integers; anything
/// that might be another kind of number is left to serde_yaml.
fn plain(text: &str) -> Option<Value> {
    let first = text.as_bytes()[0];
    if b"?:,[]{}#&*!|>%@`".contains(&first) || is_item(text) {
        return None;
    }
    let text = match text.find(" #") {
        Some(i) => text[..i].trim_end_matches(' '),
        None => text,
    };
    if text.contains(": ") || text.ends_with(':') {
        return None;
    }
    Some(match text {
        "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ => {
            let unsigned = text.strip_prefix('-').unwrap_or(text);
            let digits = !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit());
            if digits && unsigned.len() > 1 && unsigned.starts_with('0') {
                // Leading zeros: YAML 1.2 reads a string.
                Value::String(text.to_string())
            } else if digits && unsigned.len() <= 18 {
                let n: i64 = text.parse().ok()?;
                Value::Number(Number::from(n))
            } else if maybe_number(text) {
                return None;
            } else {
                Value::String(text.to_string())
            }
        }
    })
}

/// Whether serde_yaml could read `text` as some number (hexadecimal, octal, binary, a float,
/// infinity, not-a-number, a long integer).
fn maybe_number(text: &str) -> bool {
    let t = text.strip_prefix(['+', '-']).unwrap_or(text);
    let Some(first) = t.bytes().next() else { return text.starts_with('+') };
    if first.is_ascii_digit() || first == b'.' || first == b'+' || first == b'-' {
        // Digits, then anything number-like: leave it alone. Dates and times have a `:` or a
        // `T`, which no number has, except after `0x` (`0xT` is not hexadecimal anyway).
        return t.parse::<f64>().is_ok()
            || t.starts_with("0x")
            || t.starts_with("0o")
            || t.starts_with("0b")
            || t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'+' || b == b'-' || b == b'_');
    }
    let lower = t.to_ascii_lowercase();
    matches!(lower.as_str(), "inf" | "infinity" | "nan")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(yaml: &str) -> (Option<Value>, Result<Value, String>) {
        (parse(yaml), serde_yaml::from_str::<Value>(yaml).map_err(|e| e.to_string()))
    }

    /// The fast reader either gives up or agrees with serde_yaml.
    fn agrees(yaml: &str) -> bool {
        match both(yaml) {
            (None, _) => true,
            (Some(fast), Ok(slow)) => {
                assert_eq!(fast, slow, "on {yaml:?}");
                true
            }
            (Some(fast), Err(e)) => panic!("fast reader accepted {yaml:?} as {fast} but serde_yaml says {e}"),
        }
    }

    #[test]
    fn reads_the_common_shapes() {
        let yaml = "title: \"A \\\"quoted\\\" title \\u00e9\"\nexcerpt: 'it''s'\nquality: 58\nheat: -1\npublished: false\n\
                    date: 2019-01-01T17:06:00Z\nempty:\nnothing: ~\n\nprovider:\n  name: Reason # a comment\n  domain: reason.com\n  images:\n    - url: \"https://x/y.jpg\"\n      width: 50\n\
                    topics:\n- AI\n- Healthcare AI\nrelated:\n  -\n    title: x\n  - title: y\n    provider:\n      name: z\n";
        let v = parse(yaml).expect("inside the subset");
        assert_eq!(v["title"], "A \"quoted\" title é");
        assert_eq!(v["excerpt"], "it's");
        assert_eq!(v["quality"], 58);
        assert_eq!(v["heat"], -1);
        assert_eq!(v["published"], false);
        assert_eq!(v["date"], "2019-01-01T17:06:00Z");
        assert_eq!(v["empty"], Value::Null);
        assert_eq!(v["provider"]["images"][0]["width"], 50);
        assert_eq!(v["topics"][1], "Healthcare AI");
        assert_eq!(v["related"][1]["provider"]["name"], "z");
        assert!(agrees(yaml));
    }

    #[test]
    fn gives_up_outside_the_subset() {
        for yaml in [
            "a: [1, 2]",
            "a: {b: c}",
            "a: &x 1\nb: *x",
            "a: !tag x",
            "a: |\n  text",
            "a: >\n  text",
            "a: plain\n  continued",
            "a: \"open\n  quote\"",
            "a: 1.5",
            "a: 0x1f",
            "a: .inf",
            "a: 1e3",
            "a: 12345678901234567890",
            "a: 1\na: 2",
            "\"quoted key\": 1",
            "? complex\n: key",
            "a:\tb",
            "a: b: c",
            "a: 2019-01-01",
            "a: \u{7f}",
            "a: \u{85}x\u{9f}",
            "- - nested",
            "  a: 1\n b: 2",
        ] {
            assert!(parse(yaml).is_none(), "should give up on {yaml:?}");
        }
    }

    #[test]
    fn agrees_with_serde_yaml_on_edge_cases() {
        for yaml in [
            "",
            "# only a comment",
            "a: 007",
            "a: -0",
            "a: 0",
            "a: -12",
            "a: 'x' # c",
            "a: \"x\"#c",
            "a: 'x'y",
            "a: x#y",
            "a: x #y",
            "a: true\nb: False\nc: NULL\nd: yes",
            "a: \"\\x41\\U0001F600\\N\\_\\L\\P\\e\\0\"",
            "a: \"\\ud800\"",
            "a:\n- 1\n-\n- x\nb: 2",
            "a:\n  - b: 1\n    c: 2\n  - d: 3",
            "a:\n    -   b: 1\n        c: 2",
            "key-with-dash: 1\n_under: 2",
            "a: -x",
            "a: x,y [z] {w}",
            "a: 'unterminated",
            "a: \"bad \\q escape\"",
            "a: 日本経済新聞\nb: Süddeutsche",
            "a: \r\nb: c\r\n",
            "a:   spaced   ",
            "list:\n- a\n-  b\n",
        ] {
            assert!(agrees(yaml));
        }
    }

    /// Every prefix and every single-byte deletion of a realistic document: the reader gives
    /// up or agrees, never disagrees.
    #[test]
    fn agrees_on_mutations() {
        let doc = "title: \"T \\\"x\\\"\"\nexcerpt: 'a ''b'' c'\npublishedDateTime: 2021-03-04T05:06:07Z\nquality: 58\n\
                   provider:\n  name: N\n  domain: n.com\n  images:\n    - url: \"https://n.com/i.png\"\n      width: 50\n      height: 50\n\
                   topics:\n  - AI\n  - Robotics\nrelated:\n  - title: \"R\"\n    webUrl: https://r.com/a\n    provider:\n      name: R\n";
        for end in 0..=doc.len() {
            if doc.is_char_boundary(end) {
                agrees(&doc[..end]);
            }
        }
        for i in 0..doc.len() {
            let mut m = doc.as_bytes().to_vec();
            m.remove(i);
            if let Ok(s) = std::str::from_utf8(&m) {
                agrees(s);
            }
            for insert in [b' ', b'-', b':', b'#', b'"', b'\'', b'\n', b'0'] {
                let mut m = doc.as_bytes().to_vec();
                m.insert(i, insert);
                if let Ok(s) = std::str::from_utf8(&m) {
                    agrees(s);
                }
            }
        }
    }

    /// The real clippings in `../shared` (read, never copied): the reader agrees with serde_yaml
    /// on every front matter it accepts, and accepts most of them.
    #[test]
    fn agrees_on_the_shared_clippings() {
        let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
        let mut files = Vec::new();
        for dir in ["corpus", "seeds"] {
            let Ok(walk) = std::fs::read_dir(shared.join(dir)) else { continue };
            let mut stack: Vec<std::path::PathBuf> = walk.filter_map(|e| e.ok().map(|e| e.path())).collect();
            while let Some(p) = stack.pop() {
                if p.is_dir() {
                    stack.extend(std::fs::read_dir(&p).unwrap().filter_map(|e| e.ok().map(|e| e.path())));
                } else if let Ok(text) = std::fs::read_to_string(&p) {
                    files.push(text);
                }
            }
        }
        if files.is_empty() {
            eprintln!("NOTICE: ../shared is absent; skipping the comparison over real clippings");
            return;
        }
        let (mut fronts, mut accepted) = (0, 0);
        for text in &files {
            if let Ok(Some((yaml, _))) = crate::clip::split_front_matter(text) {
                fronts += 1;
                if parse(yaml).is_some() {
                    accepted += 1;
                }
                assert!(agrees(yaml));
            }
        }
        eprintln!("fast YAML reader: {accepted} of {fronts} real front matters inside the subset");
        assert!(accepted * 10 >= fronts * 9, "only {accepted} of {fronts} inside the subset");
    }
}
