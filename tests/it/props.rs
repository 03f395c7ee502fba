//! Property tests over the sans-IO core: the clipping parser, the feed renderers and the fast
//! YAML reader, driven by arbitrary bytes and by generated front matter full of markup, control
//! characters, Unicode, hostile URLs, odd dates and topic names built to break paths. The checks
//! themselves live in `oracle.rs`, shared with the cargo-fuzz targets in `fuzz/`.
//!
//! 256 cases per property (proptest's default); set `PROPTEST_CASES` for a longer run.

use proptest::prelude::*;

use crate::oracle::{check_file, check_yaml};

/// Pieces hostile text is assembled from: markup, entities (nested ones too), quotes, YAML
/// indicators, control and non-characters, right-to-left and combining marks, emoji.
const PIECES: &[&str] = &[
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//x.example/x.js>",
    "<img src=x onerror=alert(1)>",
    "<a href=\"javascript:alert(1)\">x</a>",
    "&lt;script&gt;",
    "&amp;lt;b&amp;gt;",
    "&amp;amp;lt;i&amp;amp;gt;",
    "&#60;svg onload=x&#62;",
    "&#x3C;/title&#x3E;",
    "]]>",
    "<![CDATA[",
    "<!--",
    "-->",
    "&",
    "&amp",
    "&nbsp;",
    "<",
    ">",
    "\"",
    "'",
    "\\",
    ": ",
    "- ",
    "# ",
    "{",
    "[",
    "*a",
    "&a ",
    "!!str ",
    "|",
    "%",
    "\u{1}",
    "\u{8}",
    "\u{b}",
    "\u{1b}",
    "\u{7f}",
    "\u{85}",
    "\u{a0}",
    "\u{200b}",
    "\u{202e}",
    "\u{2028}",
    "\u{feff}",
    "\u{fffe}",
    "\u{ffff}",
    "\u{1f600}",
    "e\u{301}",
    "日本",
    "Ünïcödé",
    " ",
    "\t",
    "\r",
    "\n",
    "word",
    "Title",
    "AI",
    "..",
    "/",
    "../../etc/passwd",
    "%2e%2e%2f",
    "javascript:",
    "data:text/html,",
];

fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::collection::vec(prop::sample::select(PIECES), 0..8).prop_map(|v| v.concat()),
        1 => any::<String>(),
        1 => "[a-zA-Z0-9 ]{0,30}",
    ]
}

/// A URL: web, script, data, file and malformed ones, with scheme tricks (case, white space,
/// entities, control characters) and hostile hosts and paths.
fn hostile_url() -> impl Strategy<Value = String> {
    let scheme = prop::sample::select(
        &[
            "http://",
            "https://",
            "HTTPS://",
            "javascript:",
            "JaVaScRiPt:",
            " javascript:",
            "java\tscript:",
            "java&#x09;script:",
            "javascript&colon;",
            "data:",
            "data:text/html;base64,",
            "vbscript:",
            "file://",
            "ftp://",
            "//",
            "",
            "mailto:",
            "http:",
            "https:///",
        ][..],
    );
    let host = prop::sample::select(
        &[
            "example.com",
            "EXAMPLE.com",
            "user:pw@example.com",
            "bücher.example",
            "xn--bcher-kva.example",
            "127.0.0.1",
            "[::1]",
            "example.com:8080",
            "",
            "a..b",
            "alert(1)",
        ][..],
    );
    (scheme, host, hostile_text()).prop_map(|(s, h, p)| format!("{s}{h}/{p}"))
}

fn date() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            -20000i64..20000,
            0u32..14,
            0u32..33,
            0u32..25,
            0u32..61,
            0u32..61,
            prop::sample::select(&["Z", "+02:00", "-23:59", "", "+99:99", "z"][..])
        )
            .prop_map(|(y, mo, d, h, mi, s, z)| format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{z}")),
        (0i64..10000, 1u32..13, 1u32..29).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
        Just("Thu, 11 Jun 2020 11:59:00 +0000".to_string()),
        Just("+10000-01-01".to_string()),
        hostile_text(),
    ]
}

/// A YAML scalar holding `s`: double-quoted (JSON escapes, valid YAML), single-quoted, or
/// written plain, which may or may not be valid YAML.
fn yaml_scalar(s: String) -> impl Strategy<Value = String> {
    let dq = serde_json::to_string(&s).unwrap();
    let sq = format!("'{}'", s.replace('\'', "''"));
    prop_oneof![4 => Just(dq), 1 => Just(sq), 1 => Just(s)]
}

fn field(key: &'static str, value: impl Strategy<Value = String>) -> impl Strategy<Value = Option<String>> {
    prop::option::of(value.prop_flat_map(yaml_scalar).prop_map(move |v| format!("{key}: {v}\n")))
}

/// Front matter in the shape clippings are written in, with hostile values.
fn front_matter() -> impl Strategy<Value = String> {
    let scalars = (
        hostile_text().prop_flat_map(yaml_scalar).prop_map(|t| Some(format!("title: {t}\n"))),
        field("excerpt", hostile_text()),
        field("publishedDateTime", date()),
        field("webUrl", hostile_url()),
        field("originalUrl", hostile_url()),
        field("type", hostile_text()),
        prop::option::of(any::<i64>().prop_map(|q| format!("quality: {q}\n"))),
        prop::option::of(any::<bool>().prop_map(|b| format!("published: {b}\n"))),
    );
    let topics = prop::option::of(
        prop::collection::vec(hostile_text().prop_flat_map(yaml_scalar), 0..5)
            .prop_map(|ts| format!("topics:\n{}", ts.iter().map(|t| format!("  - {t}\n")).collect::<String>())),
    );
    let provider = prop::option::of(
        (hostile_text().prop_flat_map(yaml_scalar), hostile_text().prop_flat_map(yaml_scalar), hostile_url()).prop_map(
            |(n, d, img)| {
                format!("provider:\n  name: {n}\n  domain: {d}\n  images:\n    - url: {}\n", serde_json::json!(img))
            },
        ),
    );
    let images = prop::collection::vec((hostile_url(), any::<Option<u16>>()), 0..3).prop_map(|v| {
        let mut s = String::from("images:\n");
        for (u, w) in v {
            s.push_str(&format!("  - url: {}\n", serde_json::json!(u)));
            if let Some(w) = w {
                s.push_str(&format!("    width: {w}\n    height: {w}\n"));
            }
        }
        s
    });
    let related = prop::collection::vec((hostile_text(), hostile_url(), date()), 0..3).prop_map(|v| {
        let mut s = String::from("related:\n");
        for (t, u, d) in v {
            let (t, u, d) = (serde_json::json!(t), serde_json::json!(u), serde_json::json!(d));
            s.push_str(&format!(
                "  - title: {t}\n    webUrl: {u}\n    publishedDateTime: {d}\n    provider:\n      name: {t}\n"
            ));
        }
        s
    });
    (scalars, topics, provider, images, related).prop_map(|((a, b, c, d, e, f, g, h), t, p, i, r)| {
        [a, b, c, d, e, f, g, h, t, p, Some(i), Some(r)].into_iter().flatten().collect::<String>()
    })
}

/// A Markdown body: headings, paragraphs, raw HTML, links and images with hostile URLs.
fn body() -> impl Strategy<Value = String> {
    let block = prop_oneof![
        hostile_text(),
        hostile_text().prop_map(|t| format!("# {t}")),
        (hostile_text(), hostile_url()).prop_map(|(t, u)| format!("[{t}]({u})")),
        (hostile_text(), hostile_url()).prop_map(|(t, u)| format!("![{t}]({u})")),
        hostile_url().prop_map(|u| format!("<{u}>")),
        (hostile_url(), hostile_text()).prop_map(|(u, t)| format!("<a href=\"{u}\" onclick=\"x()\">{t}</a>")),
        hostile_url().prop_map(|u| format!("<iframe src=\"{u}\"></iframe><form action=\"{u}\">")),
        hostile_text().prop_map(|t| format!("```\n{t}\n```")),
        hostile_text().prop_map(|t| format!("| a | b |\n|---|---|\n| {t} | x |")),
        hostile_text().prop_map(|t| format!("x[^1]\n\n[^1]: {t}")),
    ];
    prop::collection::vec(block, 0..6).prop_map(|v| v.join("\n\n"))
}

fn clipping_file() -> impl Strategy<Value = String> {
    (front_matter(), body(), prop::sample::select(&["\n", "\r\n"][..]), any::<bool>()).prop_map(
        |(front, body, eol, bom)| {
            let text = format!("{}---\n{front}---\n{body}\n", if bom { "\u{feff}" } else { "" });
            if eol == "\n" { text } else { text.replace('\n', eol) }
        },
    )
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        check_file(&bytes);
    }

    #[test]
    fn arbitrary_text_after_a_front_matter_line_never_panics(text in any::<String>(), body in hostile_text()) {
        check_file(format!("---\n{text}\n---\n{body}").as_bytes());
        check_yaml(&text);
    }

    #[test]
    fn generated_clippings_render_to_valid_feeds(file in clipping_file()) {
        check_file(file.as_bytes());
    }

    #[test]
    fn generated_front_matter_reads_the_same_both_ways(front in front_matter()) {
        check_yaml(&front);
    }

    /// Markup hidden under any number of layers of entities never becomes a tag in a text field.
    #[test]
    fn entity_encoded_markup_never_becomes_a_tag(
        tag in prop::sample::select(&["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "<b>", "</title>"][..]),
        depth in 0usize..8,
        numeric in any::<bool>(),
    ) {
        let mut s = if numeric { tag.replace('<', "&#60;").replace('>', "&#62;") } else { tag.replace('<', "&lt;").replace('>', "&gt;") };
        for _ in 0..depth {
            s = s.replace('&', "&amp;");
        }
        let yaml = serde_json::to_string(&s).unwrap();
        check_file(format!("---\ntitle: {yaml}\nexcerpt: {yaml}\ntopics: [{yaml}]\nprovider:\n  name: {yaml}\n  domain: p.example\n---\n").as_bytes());
    }

    #[test]
    fn plain_body_files_render_to_valid_feeds(body in body()) {
        check_file(body.as_bytes());
    }
}

/// The generator makes files the parser accepts, not only rejections (else the rendering checks
/// above would prove nothing).
#[test]
fn generated_clippings_are_mostly_accepted() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = clipping_file();
    let (mut accepted, mut yaml_fast) = (0, 0);
    for _ in 0..200 {
        let file = strategy.new_tree(&mut runner).unwrap().current();
        accepted += usize::from(check_file(file.as_bytes()));
        if let Ok(Some((yaml, _))) = clipfeed::split_front_matter(file.trim_start_matches('\u{feff}')) {
            yaml_fast += usize::from(check_yaml(yaml));
        }
    }
    eprintln!("generated clippings: {accepted} of 200 accepted, {yaml_fast} read by the fast YAML reader");
    assert!(accepted >= 40, "only {accepted} of 200 generated clippings were accepted");
    assert!(yaml_fast >= 10, "only {yaml_fast} of 200 front matters were inside the fast reader's subset");
}
