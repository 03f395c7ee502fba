//! Hostile input files against the real daemon: YAML bombs, deep nesting, a 100 MB file,
//! binary data, NUL bytes, invalid UTF-8, control characters, markup and script in every text
//! field, dangerous URLs, names built to escape paths, symlink loops, unreadable files and files
//! that vanish before they are read.
//!
//! Each must be refused with a reason (in `/api/status` and the log) or neutralised, while memory
//! stays bounded and every good clipping beside it keeps serving. Feeds are read with feed-rs,
//! JSON with serde_json, HTML tags and attributes with quick-xml's lenient tokenizer, and
//! forbidden characters with the test's own rule: never with clipfeed's code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::support::*;

/// The `base_url` that `Site::write_config` sets.
const BASE: &str = "http://feeds.test/cf/";
const FORMATS: [&str; 3] = ["rss", "atom", "json"];
/// Peak memory the daemon may reach while hostile files are present, in KiB.
const MEMORY_BOUND_KIB: u64 = 200 * 1024;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A good clipping, with a URL from `key`.
fn good(key: &str, title: &str) -> String {
    format!(
        "---\ntitle: \"{title}\"\npublishedDateTime: 2025-01-02T03:04:05Z\nwebUrl: https://good.example/{key}\nprovider:\n  name: Good News\n  domain: good.example\ntopics: [Safe Topic]\n---\nA good body.\n"
    )
}

/// Writes a file under the root as raw bytes and dates it an hour back, so the daemon treats a
/// bad one as finished (not as a file still being written) and refuses it at once.
fn put_old(site: &Site, rel: &str, bytes: impl AsRef<[u8]>) -> std::path::PathBuf {
    let path = site.put(rel, bytes);
    let f = std::fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(3600)).unwrap();
    path
}

/// The rejections `/api/status` lists now, by path.
fn rejected(d: &Daemon) -> BTreeMap<String, String> {
    let status = d.status();
    status["rejected"]
        .as_array()
        .expect("rejected is a list")
        .iter()
        .map(|r| (r["path"].as_str().unwrap().to_string(), r["reason"].as_str().unwrap().to_string()))
        .collect()
}

/// Waits until every path is listed as rejected; returns the reasons.
#[track_caller]
fn wait_rejected(d: &Daemon, paths: &[&str]) -> BTreeMap<String, String> {
    poll(&format!("{paths:?} to be listed as rejected"), || {
        let r = rejected(d);
        paths.iter().all(|p| r.contains_key(*p)).then_some(r)
    })
}

/// Checks that the log has a rejection line naming the path and holding the reason.
#[track_caller]
fn assert_logged(d: &Daemon, path: &str, reason: &str) {
    let log = d.log();
    let found = log
        .lines()
        .any(|l| l.contains("clipping rejected") && l.contains(&format!("path={path}")) && l.contains(reason));
    assert!(found, "no log line rejects {path} with {reason:?}:\n{log}");
}

/// Titles of the all-feed (Atom, whole subscription document).
fn all_titles(d: &Daemon) -> Vec<String> {
    titles(&feed(&d.url("feed.atom")))
}

#[track_caller]
fn wait_title(d: &Daemon, title: &str) {
    poll(&format!("{title:?} in the all-feed"), || all_titles(d).iter().any(|t| t == title).then_some(()));
}

/// The path on the daemon of one of our absolute URLs (they all start with `BASE`).
#[track_caller]
fn local(d: &Daemon, public: &str) -> String {
    let path = public.strip_prefix(BASE).unwrap_or_else(|| panic!("{public} is not under {BASE}"));
    d.url(path)
}

/// A start tag as a lenient tokenizer sees it: lowercased name, attributes with entities decoded.
#[derive(Debug)]
struct Tag {
    name: String,
    attrs: Vec<(String, String)>,
}

/// Every start tag of an HTML (or XML) text, through quick-xml with end-name checks off and
/// HTML attribute syntax (unquoted values, bare names) on.
#[track_caller]
fn tags(html: &str) -> Vec<Tag> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(html);
    reader.config_mut().check_end_names = false;
    reader.config_mut().allow_unmatched_ends = true;
    let mut out = Vec::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) => {
                let attrs = e
                    .html_attributes()
                    .with_checks(false)
                    .filter_map(Result::ok)
                    .map(|a| {
                        let key = String::from_utf8_lossy(a.key.as_ref()).to_ascii_lowercase();
                        let raw = String::from_utf8_lossy(&a.value).into_owned();
                        (key, html_escape::decode_html_entities(&raw).into_owned())
                    })
                    .collect();
                out.push(Tag { name: String::from_utf8_lossy(e.name().as_ref()).to_ascii_lowercase(), attrs });
            }
            Ok(Event::Eof) => return out,
            Ok(_) => {}
            Err(e) => panic!("cannot tokenize: {e}\n{html}"),
        }
    }
}

/// Whether a URL attribute value would do something other than open a web or mail address: a
/// scheme other than http, https and mailto, once the characters browsers ignore are dropped.
fn dangerous_url(value: &str) -> bool {
    let squeezed: String =
        value.chars().filter(|c| !c.is_whitespace() && !c.is_control()).collect::<String>().to_ascii_lowercase();
    match squeezed.split_once(':') {
        Some((scheme, _)) if !scheme.contains(['/', '?', '#']) => !matches!(scheme, "http" | "https" | "mailto"),
        _ => false,
    }
}

const URL_ATTRS: [&str; 9] =
    ["href", "src", "action", "formaction", "xlink:href", "poster", "background", "data", "srcset"];

/// Whether a tag is the pages' own search box: a GET form to one of this site's feeds.
fn our_search_form(t: &Tag) -> bool {
    let attr = |k: &str| t.attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    t.name == "form"
        && attr("class") == Some("search")
        && attr("role") == Some("search")
        && attr("method") == Some("get")
        && attr("action").is_some_and(|a| a.starts_with("http://feeds.test/cf/") && !a.contains(['?', '#']))
}

/// Every piece of active markup in an HTML text: elements that run script or embed documents,
/// event-handler attributes, URLs with a dangerous scheme. `page` allows what our own pages use
/// (`style`, `meta`, `link`, and one search box, see [`our_search_form`]).
fn active_markup(html: &str, page: bool) -> Vec<String> {
    let mut found = Vec::new();
    let mut search_forms = 0;
    for t in tags(html) {
        let always = ["script", "iframe", "frame", "object", "embed", "svg", "math", "base", "form", "applet"];
        let content_only = ["style", "meta", "link"];
        let ours = page && our_search_form(&t) && search_forms == 0;
        search_forms += usize::from(ours);
        if (always.contains(&t.name.as_str()) && !ours) || (!page && content_only.contains(&t.name.as_str())) {
            found.push(format!("<{}> element", t.name));
        }
        for (k, v) in &t.attrs {
            if k.starts_with("on") {
                found.push(format!("{k}= on <{}>", t.name));
            }
            if (URL_ATTRS.contains(&k.as_str()) || k == "style")
                && (dangerous_url(v) || v.to_ascii_lowercase().contains("javascript:"))
            {
                found.push(format!("{k}={v:?} on <{}>", t.name));
            }
        }
    }
    found
}

/// Whether a text published as plain text holds something a reader could take for a tag.
fn holds_tag(text: &str) -> bool {
    text.char_indices().any(|(i, c)| {
        c == '<'
            && text[i + 1..].chars().next().is_some_and(|n| n.is_ascii_alphabetic() || matches!(n, '/' | '!' | '?'))
    })
}

/// Every string value in a JSON document, with its path.
fn json_strings(v: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) => out.push((path.to_string(), s.clone())),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| json_strings(x, &format!("{path}[{i}]"), out)),
        Value::Object(o) => o.iter().for_each(|(k, x)| json_strings(x, &format!("{path}.{k}"), out)),
        _ => {}
    }
}

/// Fetches one of our feeds in every format and checks it as a reader would see it: it parses
/// (feed-rs), holds no character XML forbids, and no text field holds a tag, no HTML field holds
/// active markup and no link has a dangerous scheme. Returns the parsed Atom form.
#[track_caller]
fn check_feed(d: &Daemon, stem: &str) -> feed_rs::model::Feed {
    let mut atom = None;
    for ext in FORMATS {
        let url = d.url(&format!("{stem}.{ext}"));
        let r = get(&url, &[]);
        assert_eq!(r.status, 200, "GET {url}");
        let text = r.text();
        let bad = xml_forbidden(&text);
        assert!(bad.is_empty(), "{stem}.{ext} holds characters XML forbids: {bad:?}");
        let f =
            feed_rs::parser::parse(&r.body[..]).unwrap_or_else(|e| panic!("feed-rs cannot parse {url}: {e}\n{text}"));
        let lower = text.to_ascii_lowercase();
        for needle in ["<script", "javascript:", "vbscript:", "data:text", "data:image"] {
            assert!(!lower.contains(needle), "{stem}.{ext} contains {needle}:\n{text}");
        }
        for e in &f.entries {
            let title = e.title.as_ref().map(|t| t.content.clone()).unwrap_or_default();
            assert!(!holds_tag(&title), "{stem}.{ext}: title holds a tag: {title:?}");
            assert!(!title.to_ascii_lowercase().contains("alert("), "{stem}.{ext}: title keeps script text: {title:?}");
            if let Some(s) = &e.summary {
                assert!(active_markup(&s.content, false).is_empty(), "{stem}.{ext}: summary {:?}", s.content);
                assert!(!holds_tag(&s.content), "{stem}.{ext}: summary holds a tag: {:?}", s.content);
            }
            if let Some(body) = e.content.as_ref().and_then(|c| c.body.as_ref()) {
                let found = active_markup(body, false);
                assert!(found.is_empty(), "{stem}.{ext}: content holds {found:?}:\n{body}");
            }
            for c in &e.categories {
                assert!(!holds_tag(&c.term) && !holds_tag(c.label.as_deref().unwrap_or("")), "{stem}.{ext}: {c:?}");
            }
            for a in &e.authors {
                assert!(!holds_tag(a.name.as_deref().unwrap_or("")), "{stem}.{ext}: author {:?}", a.name);
            }
            let links = e.links.iter().map(|l| l.href.clone());
            let media =
                e.media.iter().flat_map(|m| m.content.iter().filter_map(|c| c.url.as_ref().map(|u| u.to_string())));
            for href in links.chain(media) {
                assert!(href.starts_with("http://") || href.starts_with("https://"), "{stem}.{ext}: link {href:?}");
            }
        }
        if ext == "json" {
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            let mut strings = Vec::new();
            json_strings(&v, "", &mut strings);
            for (path, s) in strings {
                let bad = xml_forbidden(&s);
                assert!(bad.is_empty(), "{stem}.json {path} holds {bad:?}");
                if path.ends_with(".content_html") {
                    let found = active_markup(&s, false);
                    assert!(found.is_empty(), "{stem}.json {path} holds {found:?}:\n{s}");
                } else if !path.ends_with("url") && !path.ends_with(".image") && !path.ends_with(".icon") {
                    assert!(!holds_tag(&s), "{stem}.json {path} holds a tag: {s:?}");
                } else {
                    assert!(s.starts_with("http://") || s.starts_with("https://"), "{stem}.json {path}: {s:?}");
                }
            }
        }
        if ext == "atom" {
            atom = Some(f);
        }
    }
    atom.unwrap()
}

/// Fetches an HTML page of ours and checks it: no forbidden characters, exactly one `<title>`,
/// no active markup. Returns its text.
#[track_caller]
fn check_page(d: &Daemon, path: &str) -> String {
    let r = get(&d.url(path), &[]);
    assert_eq!(r.status, 200, "GET {path}");
    let html = r.text();
    let bad = xml_forbidden(&html);
    assert!(bad.is_empty(), "{path} holds characters XML forbids: {bad:?}");
    let found = active_markup(&html, true);
    assert!(found.is_empty(), "{path} holds {found:?}:\n{html}");
    let lower = html.to_ascii_lowercase();
    for needle in ["<script", "javascript:", "vbscript:"] {
        assert!(!lower.contains(needle), "{path} contains {needle}:\n{html}");
    }
    assert_eq!(lower.matches("<title>").count(), 1, "{path}: one <title>:\n{html}");
    assert_eq!(lower.matches("</title>").count(), 1, "{path}: one </title>:\n{html}");
    html
}

/// The path of each item's page here: `/clippings/{uuid}`.
fn clipping_pages(f: &feed_rs::model::Feed) -> Vec<String> {
    f.entries.iter().map(|e| format!("clippings/{}", e.id.trim_start_matches("urn:uuid:"))).collect()
}

// ---------------------------------------------------------------------------------------------
// YAML bombs, deep nesting, a huge file
// ---------------------------------------------------------------------------------------------

/// Billion laughs: nine levels of nine aliases to the level below, 9^9 strings if expanded.
fn alias_bomb(use_it: &str) -> String {
    let mut y =
        String::from("---\nlol0: &l0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    for n in 1..=9 {
        let refs = vec![format!("*l{}", n - 1); 9].join(",");
        y.push_str(&format!("lol{n}: &l{n} [{refs}]\n"));
    }
    y.push_str(use_it);
    y.push_str("---\n");
    y
}

const DEPTH: usize = 10_000;

#[test]
fn yaml_bombs_deep_nesting_and_a_huge_file_are_refused_in_bounded_memory() {
    let site = Site::new();
    site.put("good.md", good("good", "Good neighbour"));
    // Bombs: in fields we ignore they are never expanded; in fields we read they are the wrong type.
    put_old(&site, "bomb-ignored.md", alias_bomb("title: Bomb in an ignored field\n"));
    put_old(&site, "bomb-title.md", alias_bomb("title: *l9\n"));
    put_old(&site, "bomb-topics.md", alias_bomb("title: Bomb in topics\ntopics: *l9\n"));
    let mut merge = String::from("---\ntitle: Merge-key bomb\nm0: &m0 {a: lol, b: lol}\n");
    for n in 1..=24 {
        merge.push_str(&format!("m{n}: &m{n} {{<<: *m{}, k{n}: *m{}}}\n", n - 1, n - 1));
    }
    put_old(&site, "bomb-merge.md", merge + "---\n");
    // Ten thousand levels, flow and block, in an ignored field and in a field we read.
    let flow = format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH));
    put_old(&site, "deep-flow.md", format!("---\ntitle: Deep flow sequence\nx: {flow}\n---\n"));
    put_old(&site, "deep-flow-topics.md", format!("---\ntitle: Deep flow topics\ntopics: {flow}\n---\n"));
    let map = format!("{}b{}", "{a: ".repeat(DEPTH), "}".repeat(DEPTH));
    put_old(&site, "deep-flow-map.md", format!("---\ntitle: Deep flow mapping\nx: {map}\n---\n"));
    put_old(
        &site,
        "deep-block.md",
        format!("---\ntitle: Deep block sequence\nx:\n  {}leaf\n---\n", "- ".repeat(DEPTH)),
    );
    put_old(
        &site,
        "deep-block-topics.md",
        format!("---\ntitle: Deep block topics\ntopics:\n  {}leaf\n---\n", "- ".repeat(DEPTH)),
    );
    put_old(&site, "deep-unclosed.md", format!("---\ntitle: Deep and unclosed\nx: {}\n---\n", "[".repeat(DEPTH)));
    // 100 MB (sparse: the size is what matters) behind valid front matter.
    let huge = site.root().join("huge.md");
    std::fs::write(&huge, good("huge", "Huge file")).unwrap();
    std::fs::File::options().write(true).open(&huge).unwrap().set_len(100 * 1024 * 1024).unwrap();
    let f = std::fs::File::options().write(true).open(&huge).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(3600)).unwrap();

    let d = Daemon::start(&site);
    let refused = [
        "bomb-title.md",
        "bomb-topics.md",
        "deep-flow-topics.md",
        "deep-block-topics.md",
        "deep-unclosed.md",
        "huge.md",
    ];
    let reasons = wait_rejected(&d, &refused);
    let expect = [
        ("bomb-title.md", "title"),
        ("bomb-topics.md", "topics"),
        ("deep-flow-topics.md", "topics"),
        ("deep-block-topics.md", "topics"),
        ("deep-unclosed.md", "front matter"),
        ("huge.md", "104857600 bytes, larger than max_file_bytes (1048576)"),
    ];
    for (path, says) in expect {
        let reason = &reasons[path];
        assert!(reason.contains(says), "{path}: {reason}");
        assert!(!reason.contains('\n') && reason.len() < 300, "{path}: one short line: {reason:?}");
        assert_logged(&d, path, reason);
    }
    assert_eq!(reasons.len(), refused.len(), "nothing else is refused: {reasons:?}");
    // What the ignored fields held was ignored, not expanded.
    let mut t = all_titles(&d);
    t.sort();
    let mut want = vec![
        "Bomb in an ignored field",
        "Deep block sequence",
        "Deep flow mapping",
        "Deep flow sequence",
        "Good neighbour",
        "Merge-key bomb",
    ];
    want.sort();
    assert_eq!(t, want);
    check_feed(&d, "feed");
    let peak = d.peak_rss_kib();
    assert!(peak < MEMORY_BOUND_KIB, "peak memory {peak} KiB");

    // A rescan reads them all again; still bounded, and a clipping added afterwards is served.
    let rescans = d.counter("rescans");
    d.signal(libc::SIGUSR1);
    poll("the rescan", || (d.counter("rescans") > rescans).then_some(()));
    site.put("after.md", good("after", "Added after the bombs"));
    wait_title(&d, "Added after the bombs");
    assert_eq!(rejected(&d).len(), refused.len());
    let peak = d.peak_rss_kib();
    eprintln!("peak memory after the rescan: {peak} KiB");
    assert!(peak < MEMORY_BOUND_KIB, "peak memory {peak} KiB");
}

// ---------------------------------------------------------------------------------------------
// Binary data, NUL bytes, invalid UTF-8, empty files
// ---------------------------------------------------------------------------------------------

#[test]
fn binary_nul_and_invalid_utf8_are_refused_naming_the_byte() {
    let site = Site::new();
    site.put("good.md", good("good", "Good neighbour"));
    site.put("turncoat.md", good("turncoat", "Good until overwritten"));
    let d = Daemon::start(&site);

    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend((0..=255u8).cycle().take(4096));
    let utf16: Vec<u8> = "---\ntitle: UTF-16\n---\n".encode_utf16().flat_map(u16::to_le_bytes).collect();
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("image.md", png),
        ("nul-front.md", b"---\ntitle: Nul\0here\n---\n".to_vec()),
        ("nul-body.md", b"---\ntitle: Nul in the body\n---\nbody\0more\n".to_vec()),
        ("latin1-front.md", b"---\ntitle: Caf\xe9 au lait\n---\n".to_vec()),
        ("latin1-body.md", b"---\ntitle: Latin-1 body\n---\nna\xefve\n".to_vec()),
        ("surrogate.md", b"---\ntitle: Lone \xed\xa0\x80 surrogate\n---\n".to_vec()),
        ("overlong.md", b"---\ntitle: Overlong \xc0\xaf slash\n---\n".to_vec()),
        ("cut.md", b"---\ntitle: Cut short \xe2\x82".to_vec()),
        ("utf16.md", utf16.clone()),
        ("utf16-bom.md", [&[0xff, 0xfe][..], &utf16].concat()),
        ("empty.md", Vec::new()),
        ("blank.md", b" \r\n\t\n".to_vec()),
        ("bom-only.md", b"\xef\xbb\xbf".to_vec()),
    ];
    // The reason each must give, from the test's own reading of the bytes.
    let cases: Vec<(&str, Vec<u8>, String)> = files
        .into_iter()
        .map(|(path, bytes)| {
            let want = match std::str::from_utf8(&bytes) {
                Err(e) => format!("not UTF-8 text (invalid byte sequence at byte {})", e.valid_up_to()),
                Ok(s) if s.contains('\0') => format!("binary data (NUL byte at byte {})", s.find('\0').unwrap()),
                Ok(_) => "empty file".to_string(),
            };
            (path, bytes, want)
        })
        .collect();
    for (path, bytes, _) in &cases {
        put_old(&site, path, bytes);
    }
    // A good file overwritten with binary keeps its last good version serving.
    put_old(&site, "turncoat.md", b"\x00\x01\x02 now binary");
    let paths: Vec<&str> = cases.iter().map(|c| c.0).chain(["turncoat.md"]).collect();
    let reasons = wait_rejected(&d, &paths);
    for (path, _, want) in &cases {
        assert_eq!(&reasons[*path], want, "{path}");
        assert_logged(&d, path, &reasons[*path]);
    }
    assert_eq!(reasons["turncoat.md"], "binary data (NUL byte at byte 0)");
    let mut t = all_titles(&d);
    t.sort();
    assert_eq!(t, ["Good neighbour", "Good until overwritten"], "only the good files, and the last good version");
    check_feed(&d, "feed");

    // Fixed, it serves its new content and leaves the list.
    site.put("turncoat.md", good("turncoat", "Good again"));
    wait_title(&d, "Good again");
    poll("turncoat.md to leave the rejections", || (!rejected(&d).contains_key("turncoat.md")).then_some(()));
    assert_eq!(d.status()["rejected_total"], cases.len());
}

// ---------------------------------------------------------------------------------------------
// Control characters, markup and script, dangerous URLs in every text field
// ---------------------------------------------------------------------------------------------

/// `s` as a reader should see it: the characters XML forbids gone, white space collapsed.
fn cleaned(s: &str) -> String {
    let kept: String = s.chars().filter(|c| xml_forbidden(&c.to_string()).is_empty()).collect();
    kept.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn control_characters_never_reach_a_document() {
    let site = Site::new();
    site.put("good.md", good("good", "Good neighbour"));
    // YAML escapes put every C0 control, DEL and the non-characters U+FFFE/U+FFFF in every field.
    let every_c0: String =
        (1u8..0x20).filter(|b| ![b'\t', b'\n', b'\r'].contains(b)).map(|b| format!("\\x{b:02x}")).collect();
    let title_yaml = format!("Bell\\a vt\\v esc\\e all{every_c0}end del\\x7f non\\uFFFE\\uFFFFchar");
    let title_text = format!(
        "Bell\u{7} vt\u{b} esc\u{1b} all{}end del\u{7f} non\u{FFFE}\u{FFFF}char",
        (1u8..0x20).filter(|b| ![9, 10, 13].contains(b)).map(char::from).collect::<String>()
    );
    let mut raw_body = b"Body with raw controls: ".to_vec();
    raw_body.extend((1u8..0x20).filter(|b| ![b'\t', b'\n', b'\r'].contains(b)));
    raw_body.extend("\u{7f} and non\u{FFFE}\u{FFFF}chars, then the end.\n".as_bytes());
    let mut ctl = format!(
        "---\ntitle: \"{title_yaml}\"\nexcerpt: \"Excerpt\\x01 with\\x08 controls\\e[31m red{every_c0}\"\npublishedDateTime: 2025-02-03T04:05:06Z\nwebUrl: \"https://ctl.example/story\\x01\"\ntype: \"arti\\x01cle\"\nprovider:\n  name: \"Control\\x02 News\\x7f{every_c0}\"\n  domain: \"ctl.example\"\n  images: [{{url: \"https://ctl.example/logo\\x03.png\"}}]\ntopics: [\"Con\\x03trol Topic{every_c0}\", \"\\x04\\x05\"]\nimages:\n  - url: \"https://ctl.example/pic\\x0b.jpg\"\n    title: \"Image\\x06 title\"\nrelated:\n  - title: \"Related\\x07 story{every_c0}\"\n    webUrl: https://other.example/r\n    provider: {{name: \"Other\\x0e News\", domain: other.example}}\n---\n"
    )
    .into_bytes();
    ctl.extend(&raw_body);
    put_old(&site, "ctl.md", &ctl);
    // Plain text without front matter (its own page is its link), controls raw.
    let mut plain = b"A plain\x01 text clipping\x02 with\x1f controls\n\n".to_vec();
    plain.extend(&raw_body);
    put_old(&site, "plain.txt", &plain);
    // Raw controls inside front matter: YAML forbids them, so the file is refused, with a reason.
    put_old(&site, "raw-in-yaml.md", b"---\ntitle: Raw \x07 bell in YAML\n---\n");

    let d = Daemon::start(&site);
    let reasons = wait_rejected(&d, &["raw-in-yaml.md"]);
    assert!(reasons["raw-in-yaml.md"].contains("control characters"), "{reasons:?}");
    assert_logged(&d, "raw-in-yaml.md", &reasons["raw-in-yaml.md"]);
    assert_eq!(reasons.len(), 1, "{reasons:?}");

    let all = check_feed(&d, "feed");
    let mut t = titles(&all);
    t.sort();
    let mut want = vec![cleaned(&title_text), "A plain text clipping with controls".into(), "Good neighbour".into()];
    want.sort();
    assert_eq!(t, want);
    let ctl_entry = entry_titled(&all, &cleaned(&title_text)).unwrap();
    let body = ctl_entry.content.as_ref().and_then(|c| c.body.clone()).expect("content");
    assert!(body.contains("Body with raw controls:") && body.contains("then the end."), "{body}");
    let topic =
        ctl_entry.categories.iter().find(|c| c.label.as_deref().is_some_and(|l| l.starts_with("Control Topic")));
    let topic = topic.unwrap_or_else(|| panic!("the topic, cleaned: {:?}", ctl_entry.categories));
    assert_eq!(ctl_entry.categories.len(), 1, "a name of controls only makes no topic: {:?}", ctl_entry.categories);
    check_feed(&d, &format!("topics/{}", topic.term));
    let p = check_feed(&d, "providers/ctl.example");
    assert_eq!(p.entries.len(), 1);
    assert!(
        p.entries[0].authors.iter().any(|a| a.name.as_deref().is_some_and(|n| n.starts_with("Control News"))),
        "{:?}",
        p.entries[0].authors
    );
    for page in std::iter::once("/".to_string()).chain(clipping_pages(&all)) {
        check_page(&d, &page);
    }
    let opml = get(&d.url("feeds.opml"), &[]).text();
    assert!(xml_forbidden(&opml).is_empty(), "OPML: {opml}");
    assert!(tags(&opml).iter().any(|t| t.name == "outline"), "{opml}");
}

#[test]
fn markup_and_script_in_every_text_field_stay_text() {
    let site = Site::new();
    site.put("good.md", good("good", "Good neighbour"));
    let x = r#"---
title: "<script>alert('title')</script><b onmouseover=alert(1)>Markup</b> in the <i>title</i> ]]> --> </title>"
excerpt: "<img src=x onerror=alert('excerpt')>Excerpt &lt;script&gt;alert(2)&lt;/script&gt; <a href=\"javascript:alert(3)\">link</a> \"><svg onload=alert(4)>"
publishedDateTime: 2025-03-04T05:06:07Z
webUrl: https://markup.example/story
type: "<script>alert(5)</script>video"
provider:
  name: "<script>alert('provider')</script>Markup \"News\" & <Co> <img src=x onerror=alert(6)>"
  domain: markup.example
topics:
  - "<script>alert('topic')</script>Scripted Topic"
  - "<b onmouseover=alert(1)>Bold</b> Topic"
  - "&lt;img src=x onerror=alert(1)&gt;Encoded Topic"
  - "&amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt;Double Encoded Topic"
  - "\"><svg onload=alert(1)>Broken Out Topic"
  - "</title><script>alert(1)</script>Title Breaker"
  - "<<script>script>alert(1)<</script>/script>Nested Topic"
images:
  - url: https://markup.example/pic.jpg
    title: "<script>alert('image')</script>Image title"
related:
  - title: "<script>alert('related')</script>Related <b>story</b>"
    webUrl: https://other.example/story
    provider: {name: "<img src=x onerror=alert(1)>Other", domain: other.example}
---
# Body heading <script>alert('heading')</script>

<script>alert('body')</script>
<img src=x onerror="alert('body')">
<svg onload=alert(1)><circle/></svg>
<iframe src="https://evil.example/"></iframe>
<a href="https://ok.example/" onclick="alert(1)">ok link</a>
<style>body{background:red}</style>
<div style="background:url(https://evil.example/x)">styled</div>
<math><maction actiontype="statusline">x</maction></math>
<form action="https://evil.example/"><button>b</button></form>
<object data="https://evil.example/x"></object><embed src="https://evil.example/x">
<base href="https://evil.example/">
<meta http-equiv="refresh" content="0;url=https://evil.example/">
]]> --> <!-- comment --> <![CDATA[ <script>alert(1)</script> ]]>
<scr<script>ipt>alert(1)</scr</script>ipt>
"#;
    put_old(&site, "markup.md", x);
    // Without a URL: its page here is its link.
    put_old(
        &site,
        "nolink.md",
        "---\ntitle: \"<svg/onload=alert(1)>No link <script>alert(1)</script>here\"\nexcerpt: \"</p><script>alert(1)</script>\"\n---\n<script>alert('page')</script>Body of the page.\n",
    );

    let d = Daemon::start(&site);
    assert_eq!(d.status()["rejected_total"], 0);
    let all = check_feed(&d, "feed");
    let mut t = titles(&all);
    t.sort();
    assert_eq!(t, ["Good neighbour", "Markup in the title ]]> -->", "No link here"]);
    // Every topic and provider feed, as listed by the OPML.
    let opml = get(&d.url("feeds.opml"), &[]).text();
    let feeds: BTreeSet<String> = tags(&opml)
        .iter()
        .filter_map(|t| t.attrs.iter().find(|(k, _)| k == "xmlurl").map(|(_, v)| v.clone()))
        .map(|u| u.strip_prefix(BASE).unwrap_or_else(|| panic!("{u}")).rsplit_once('.').unwrap().0.to_string())
        .collect();
    for stem in ["topics/scripted-topic", "topics/bold-topic", "topics/encoded-topic", "providers/markup.example"] {
        assert!(feeds.contains(stem), "{stem} in {feeds:?}");
    }
    for stem in &feeds {
        let f = check_feed(&d, stem);
        assert!(f.title.as_ref().is_some_and(|t| !holds_tag(&t.content)), "{stem}: {:?}", f.title);
    }
    for page in std::iter::once("/".to_string()).chain(clipping_pages(&all)) {
        // Text such as "alert(1)" left over from broken tags may stay, as text: no markup.
        check_page(&d, &page);
    }
}

#[test]
fn dangerous_urls_are_never_links() {
    let site = Site::new();
    site.put("good.md", good("good", "Good neighbour"));
    let links = r#"---
title: Dangerous links everywhere
publishedDateTime: 2025-04-05T06:07:08Z
webUrl: "javascript:alert('webUrl')"
originalUrl: "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="
provider:
  name: Link News
  domain: links.example
  images:
    - url: "javascript:alert('logo')"
    - url: "data:image/svg+xml,<svg onload=alert(1)>"
topics: [Links]
images:
  - url: "data:image/png;base64,iVBORw0KGgo="
  - url: "JaVaScRiPt:alert('image')"
  - url: " javascript:alert('space')"
  - url: "java\tscript:alert('tab')"
  - url: "jav&#x09;ascript:alert('entity')"
  - url: "vbscript:msgbox(1)"
  - url: "file:///etc/passwd"
  - url: "//evil.example/protocol-relative.jpg"
related:
  - title: Related through javascript
    webUrl: "javascript:alert('related')"
  - title: Related through data
    webUrl: "data:text/html,<script>alert(1)</script>"
  - title: Related through an entity
    webUrl: "jav&#x09;ascript:alert(1)"
  - title: A fine related story
    webUrl: https://fine.example/related
---
[md](javascript:alert(1)) [data](data:text/html,x) ![img](data:image/png;base64,AAAA)
<a href="JAVASCRIPT&#58;alert(1)">entity colon</a>
<a href="jav&#x09;ascript:alert(1)">tab entity</a>
<a href=" javascript:alert(1)">leading space</a>
<img src="data:image/svg+xml;base64,PHN2Zz4=">
<a href="vbscript:msgbox(1)">vb</a> <a href="file:///etc/passwd">file</a>
<a href="https://fine.example/">fine</a> <a href="mailto:desk@fine.example">mail</a>
"#;
    put_old(&site, "links.md", links);
    put_old(
        &site,
        "orig.md",
        "---\ntitle: Only a dangerous originalUrl\noriginalUrl: \"vbscript:msgbox(1)\"\nprovider: {name: Orig, domain: orig.example}\n---\n",
    );

    let d = Daemon::start(&site);
    assert_eq!(d.status()["rejected_total"], 0, "dangerous URLs are dropped, the clippings kept");
    let all = check_feed(&d, "feed");
    check_feed(&d, "topics/links");
    check_feed(&d, "providers/links.example");
    check_feed(&d, "providers/orig.example");
    for title in ["Dangerous links everywhere", "Only a dangerous originalUrl"] {
        let e = entry_titled(&all, title).unwrap_or_else(|| panic!("{title} is served"));
        let link = &e.links[0].href;
        assert_eq!(
            link,
            &format!("{BASE}clippings/{}", e.id.trim_start_matches("urn:uuid:")),
            "{title}: its page here"
        );
        assert!(e.media.iter().all(|m| m.content.is_empty()), "{title}: no picture: {:?}", e.media);
        check_page(&d, local(&d, link).trim_start_matches(&d.base));
    }
    let body =
        entry_titled(&all, "Dangerous links everywhere").unwrap().content.as_ref().unwrap().body.clone().unwrap();
    let hrefs: Vec<String> =
        tags(&body).into_iter().flat_map(|t| t.attrs).filter(|(k, _)| k == "href").map(|(_, v)| v).collect();
    assert!(
        hrefs.contains(&"https://fine.example/".to_string()) && hrefs.contains(&"mailto:desk@fine.example".to_string()),
        "{body}"
    );
    assert!(hrefs.contains(&"https://fine.example/related".to_string()), "the good related link stays: {body}");
    // Each dropped field is named in the log.
    let log = d.log();
    for field in ["webUrl", "originalUrl", "images", "provider.images"] {
        assert!(
            log.contains("path=links.md") && log.lines().any(|l| l.contains("links.md") && l.contains(field)),
            "no warning names {field}:\n{log}"
        );
    }
    check_page(&d, "/");
}

#[test]
fn a_dropped_related_link_is_logged() {
    let site = Site::new();
    put_old(
        &site,
        "rel.md",
        "---\ntitle: Related dropped\nrelated:\n  - title: Through javascript\n    webUrl: \"javascript:alert(1)\"\n---\n",
    );
    let d = Daemon::start(&site);
    wait_title(&d, "Related dropped");
    let log = d.log();
    assert!(
        log.lines().any(|l| l.contains("rel.md") && l.contains("related")),
        "no warning for the dropped related link:\n{log}"
    );
}

// ---------------------------------------------------------------------------------------------
// Topic and provider names built to escape paths or break markup
// ---------------------------------------------------------------------------------------------

/// Names that try to leave `/topics/` or `/providers/`, break markup, vanish, or swamp.
fn hostile_names() -> Vec<String> {
    let mut names: Vec<String> = [
        "../../etc",
        "a/b",
        "..\\..\\windows",
        "%2e%2e",
        "%2e%2e%2fetc",
        "%2F",
        "..",
        ".",
        "<x>",
        "\"",
        "'",
        "",
        "   ",
        "!!!???",
        "-",
        "\u{202E}evil\u{202C} cod.exe",
        "\u{200B}\u{200B}",
        "zero\u{200B}width",
        "\u{FEFF}bom",
        "שלום",
        "مرحبا",
        "CON",
        "?q=1",
        "#frag",
        "a b",
        "C++ & C#",
        "nul\u{0}byte",
        "💣 bomb",
        "\u{1b}[31m ansi",
        "x\u{301}\u{301}\u{301}\u{301}",
        "ｆｕｌｌｗｉｄｔｈ",
        ".hidden",
        "trailing.",
        "a..b",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    names.push("Long ".repeat(2048)); // 10 KB
    names.push("x".repeat(300));
    names
}

/// Provider domains that try the same.
fn hostile_domains() -> Vec<String> {
    let mut d: Vec<String> = [
        "../../etc",
        "a/b",
        "%2e%2e",
        "..",
        "<x>",
        "\"",
        "",
        "evil.example/../..",
        "EXAMPLE.COM.",
        "xn--",
        "a..b",
        "localhost",
        "127.0.0.1",
        "[::1]",
        "exa mple.com",
        "éxample.com",
        "\u{202E}moc.live",
        "%2F.example",
        "user@host.example",
        "host.example:8080",
        "host.example?x",
        "host.example#x",
        "-lead.example",
        "_under.example",
        "\u{200B}zw.example",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    d.push(format!("{}.example", "a".repeat(70)));
    d.push(format!("{}example", "abc.".repeat(80)));
    d
}

/// A YAML double-quoted scalar holding exactly `s` (control characters as `\xNN` escapes).
fn quoted(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[test]
fn hostile_topic_and_provider_names_make_feeds_inside_their_folders() {
    let site = Site::new();
    site.put("good.md", good("good", "Good neighbour"));
    let topics: Vec<String> = hostile_names().iter().map(|n| format!("  - {}\n", quoted(n))).collect();
    put_old(
        &site,
        "topics.md",
        format!("---\ntitle: Hostile topics\nwebUrl: https://names.example/topics\ntopics:\n{}---\n", topics.concat()),
    );
    for (i, name) in hostile_names().iter().enumerate() {
        put_old(
            &site,
            &format!("name-{i:02}.md"),
            format!(
                "---\ntitle: Provider name {i}\nwebUrl: https://names.example/n{i}\nprovider:\n  name: {}\n  domain: name{i}.example\n---\n",
                quoted(name)
            ),
        );
    }
    for (i, domain) in hostile_domains().iter().enumerate() {
        put_old(
            &site,
            &format!("domain-{i:02}.md"),
            format!(
                "---\ntitle: Provider domain {i}\nwebUrl: https://names.example/d{i}\nprovider:\n  name: Domain {i}\n  domain: {}\n---\n",
                quoted(domain)
            ),
        );
    }
    let d = Daemon::start(&site);
    // A domain that is no host name, nor a site's address, refuses its file (read as no news
    // site, a private site's clipping would be published); every other clipping serves.
    let status = poll("the refusals", || {
        let s = d.status();
        (s["files_waiting"] == 0).then_some(s)
    });
    let rejected = status["rejected"].as_array().unwrap();
    for r in rejected {
        assert!(r["reason"].as_str().unwrap().contains("provider.domain is not a host name"), "{status}");
    }
    // Refused: path segments, escapes, markup, quotes, empty or overlong labels, an IPv6 address,
    // white space and bidirectional controls. Read as a host: an address's host (a/b, a port, a
    // query, user@), a trailing dot, IDN, localhost and an IPv4 address, `-` and `_` labels.
    let refused: Vec<&str> = rejected.iter().map(|r| r["path"].as_str().unwrap()).collect();
    let want: Vec<String> =
        [0, 2, 3, 4, 5, 9, 10, 13, 14, 16, 17, 25, 26].iter().map(|i| format!("domain-{i:02}.md")).collect();
    assert_eq!(refused, want, "{status}");
    let files = 2 + hostile_names().len() + hostile_domains().len() - rejected.len();
    assert_eq!(status["clippings"], files, "every other clipping serves: {status}");

    // Every feed the OPML and the index name is a single file in /topics/ or /providers/.
    let opml = get(&d.url("feeds.opml"), &[]).text();
    assert!(xml_forbidden(&opml).is_empty());
    let index = check_page(&d, "/");
    let mut urls: BTreeSet<String> = tags(&opml)
        .into_iter()
        .flat_map(|t| t.attrs)
        .filter(|(k, _)| k == "xmlurl" || k == "htmlurl")
        .map(|(_, v)| v)
        .collect();
    urls.extend(tags(&index).into_iter().flat_map(|t| t.attrs).filter(|(k, _)| k == "href").map(|(_, v)| v));
    let mut stems = BTreeSet::new();
    for u in &urls {
        let rest = u.strip_prefix(BASE).unwrap_or_else(|| panic!("{u} leaves {BASE}"));
        if rest.is_empty() || rest == "feeds.opml" || rest.starts_with("feed.") {
            continue;
        }
        // The index's latest stories: a story id (a UUID) each.
        if let Some(id) = rest.strip_prefix("stories/") {
            assert!(id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'), "{u}");
            continue;
        }
        let (dir, file) = rest.split_once('/').unwrap_or_else(|| panic!("{u}: not in a folder"));
        assert!(dir == "topics" || dir == "providers", "{u}");
        assert!(!file.is_empty() && !file.starts_with('.') && !file.contains(['/', '\\', '%', '?', '#']), "{u}");
        assert!(file.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b)), "{u}");
        let (name, ext) = file.rsplit_once('.').unwrap();
        assert!(FORMATS.contains(&ext), "{u}");
        if dir == "topics" {
            assert!(name.len() <= 80 && !name.contains(".."), "{u}");
        }
        stems.insert(format!("{dir}/{name}"));
    }
    let topic_count = stems.iter().filter(|s| s.starts_with("topics/")).count() as u64;
    let provider_count = stems.iter().filter(|s| s.starts_with("providers/")).count() as u64;
    assert_eq!(topic_count, status["topics"].as_u64().unwrap(), "{stems:?}");
    assert_eq!(provider_count, status["providers"].as_u64().unwrap(), "{stems:?}");
    // Reachable, valid, and titled with something that is not markup.
    for stem in &stems {
        let f = check_feed(&d, stem);
        assert!(!f.entries.is_empty(), "{stem} is empty");
    }
    // The names that do make a slug keep their text in the feed; the 10 KB one is cut in its slug only.
    let long = stems.iter().find(|s| s.starts_with("topics/long-long")).unwrap_or_else(|| panic!("{stems:?}"));
    let f = feed(&d.url(&format!("{long}.atom")));
    assert!(f.title.unwrap().content.contains(&"Long ".repeat(2047).trim_end().to_string()));
    for want in [
        "topics/2e-2e",
        "topics/evil-cod-exe",
        "topics/zero-width",
        "topics/c-plus-plus-and-c",
        "providers/xn--xample-9ua.com",
    ] {
        assert!(stems.contains(want), "{want} in {stems:?}");
    }
    // Path tricks in requests find nothing.
    for p in [
        "topics/..%2F..%2Fetc%2Fpasswd.rss",
        "topics/%2e%2e.rss",
        "providers/..%2f..%2fclipfeed.yaml.atom",
        "topics/.rss",
        "topics/%00.rss",
        "providers/%2e%2e%2f%2e%2e%2fdata%2fclipfeed.db.json",
        "topics/..%5C..%5Cx.rss",
    ] {
        assert_eq!(get(&d.url(p), &[]).status, 404, "{p}");
    }
    // Names that cannot make a feed are dropped with a warning naming them.
    let log = d.log();
    assert!(
        log.lines().any(|l| l.contains("topics.md") && l.contains("\"../../etc\"") && l.contains("dropped")),
        "{log}"
    );
    assert!(log.lines().any(|l| l.contains("domain-00.md") && l.contains("not a host name")), "{log}");
}

// ---------------------------------------------------------------------------------------------
// Symlink loops, unreadable files, files that vanish or grow while read
// ---------------------------------------------------------------------------------------------

#[test]
fn symlink_loops_are_ignored_and_never_hang_a_scan() {
    use std::os::unix::fs::symlink;
    let site = Site::new();
    let root = site.root();
    site.put("good.md", good("good", "Good neighbour"));
    std::fs::create_dir_all(root.join("sub")).unwrap();
    symlink("loop-b.md", root.join("loop-a.md")).unwrap();
    symlink("loop-a.md", root.join("loop-b.md")).unwrap();
    symlink("self.md", root.join("self.md")).unwrap();
    symlink("..", root.join("sub/up")).unwrap();
    symlink(".", root.join("sub/here")).unwrap();
    symlink("../..", root.join("top")).unwrap();
    symlink("sub", root.join("dir.md")).unwrap();
    symlink("nowhere.md", root.join("dangling.md")).unwrap();
    symlink("/dev/zero", root.join("zero.md")).unwrap();
    // Fifty hops is more than the kernel follows; five is fine (to a target that is no clipping
    // by name, so only the link serves it).
    for i in 0..50 {
        symlink(format!("long-{:02}.md", i + 1), root.join(format!("long-{i:02}.md"))).unwrap();
    }
    symlink("good.md", root.join("long-50.md")).unwrap();
    std::fs::write(root.join("sub/target.md-draft"), good("chain", "Through a short chain")).unwrap();
    symlink("sub/target.md-draft", root.join("short-4.md")).unwrap();
    for i in 0..4 {
        symlink(format!("short-{}.md", i + 1), root.join(format!("short-{i}.md"))).unwrap();
    }
    std::fs::write(root.join("sub/flip.md-draft"), good("flip", "Linked, then looped")).unwrap();
    symlink("sub/flip.md-draft", root.join("flip.md")).unwrap();

    let d = Daemon::start(&site);
    let mut t = all_titles(&d);
    t.sort();
    assert_eq!(t, ["Good neighbour", "Linked, then looped", "Through a short chain"]);
    assert_eq!(d.status()["rejected_total"], 0);

    // Loops made while it runs: files, and a folder that contains itself.
    symlink("loop-d.md", root.join("loop-c.md")).unwrap();
    symlink("loop-c.md", root.join("loop-d.md")).unwrap();
    std::fs::create_dir(root.join("sub2")).unwrap();
    symlink("..", root.join("sub2/up")).unwrap();
    symlink("../sub2", root.join("sub2/again")).unwrap();
    // A followed link turned into a loop: its clipping goes.
    symlink("flip-new.md", root.join("flip-new.md")).unwrap();
    std::fs::rename(root.join("flip-new.md"), root.join("flip.md")).unwrap();
    poll("the looped link's clipping to go", || {
        (!all_titles(&d).iter().any(|t| t == "Linked, then looped")).then_some(())
    });
    let rescans = d.counter("rescans");
    d.signal(libc::SIGUSR1);
    poll("a rescan over the loops to finish", || (d.counter("rescans") > rescans).then_some(()));
    site.put("sub2/after.md", good("after", "Beside the loops"));
    wait_title(&d, "Beside the loops");
    let status = d.status();
    assert_eq!(status["clippings"], 3, "{status}");
    assert_eq!(status["rejected_total"], 0, "{status}");
    check_feed(&d, "feed");
    let peak = d.peak_rss_kib();
    assert!(peak < MEMORY_BOUND_KIB, "peak memory {peak} KiB");
}

#[test]
fn unreadable_files_are_reported_and_served_once_readable() {
    use std::os::unix::fs::PermissionsExt;
    let Some(wrapper) = unprivileged() else { return };
    let site = Site::new();
    let root = site.root();
    let mode = |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    // The unprivileged daemon must reach the config, the root and a store folder of its own.
    mode(site.dir.path(), 0o755);
    let data = site.dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::os::unix::fs::chown(&data, Some(65534), Some(65534)).unwrap();
    site.put("good.md", good("good", "Good neighbour"));
    site.put("secret.md", good("secret", "Secret until readable"));
    site.put("locked/inside.md", good("inside", "Inside a locked folder"));
    site.put("turns.md", good("turns", "Readable, then not"));
    for p in ["good.md", "secret.md", "locked/inside.md", "turns.md"] {
        mode(&root.join(p), 0o644);
    }
    mode(&root.join("secret.md"), 0o000);
    mode(&root.join("locked"), 0o000);
    let args: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let d = Daemon::start_wrapped(&args, &site.config());
    let reasons = wait_rejected(&d, &["secret.md"]);
    assert!(
        reasons["secret.md"].contains("cannot read") && reasons["secret.md"].contains("ermission denied"),
        "{reasons:?}"
    );
    assert_logged(&d, "secret.md", &reasons["secret.md"]);
    let log = d.log();
    assert!(
        log.lines().any(|l| l.contains("cannot list") && l.contains("locked")),
        "the locked folder is logged:\n{log}"
    );
    let mut t = all_titles(&d);
    t.sort();
    assert_eq!(t, ["Good neighbour", "Readable, then not"]);

    // A served file that turns unreadable keeps its last good version, and is reported.
    mode(&root.join("turns.md"), 0o000);
    let reasons = wait_rejected(&d, &["turns.md"]);
    assert!(reasons["turns.md"].contains("ermission denied"), "{reasons:?}");
    assert!(all_titles(&d).iter().any(|t| t == "Readable, then not"));

    // Made readable (a change of mode is an event), each is served and leaves the list.
    mode(&root.join("secret.md"), 0o644);
    mode(&root.join("turns.md"), 0o644);
    mode(&root.join("locked"), 0o755);
    wait_title(&d, "Secret until readable");
    wait_title(&d, "Inside a locked folder");
    poll("no rejections left", || (d.status()["rejected_total"] == 0).then_some(()));
}

#[test]
fn files_that_vanish_before_they_are_read_leave_nothing_behind() {
    let site = Site::new();
    site.write_config("items_per_feed: 1000\n");
    site.put("good.md", good("good", "Good neighbour"));
    let root = site.root();
    let away = site.dir.path().join("away");
    std::fs::create_dir(&away).unwrap();
    // At start-up: half of 600 files go while the first reconcile lists and reads them.
    let kept: Vec<String> = (0..600).filter(|i| i % 2 == 0).map(|i| format!("Early {i}")).collect();
    for i in 0..600 {
        site.put(&format!("early/{i:03}.md"), good(&format!("early{i}"), &format!("Early {i}")));
    }
    let remover = {
        let root = root.clone();
        std::thread::spawn(move || {
            for i in (1..600).step_by(2).rev() {
                std::fs::remove_file(root.join(format!("early/{i:03}.md"))).unwrap();
            }
        })
    };
    let d = Daemon::start(&site);
    remover.join().unwrap();

    // While it runs: files that go right after they arrive, each in another way. Every tenth stays.
    let mut want: BTreeSet<String> = kept.into_iter().chain(["Good neighbour".to_string()]).collect();
    for i in 0..300 {
        let title = format!("Brief {i}");
        let path = site.put(&format!("brief/{i:03}.md"), good(&format!("brief{i}"), &title));
        match i % 10 {
            0 => {
                want.insert(title);
            }
            1..=4 => std::fs::remove_file(&path).unwrap(),
            5 | 6 => std::fs::rename(&path, away.join(format!("{i}.md"))).unwrap(),
            7 => {
                std::fs::remove_file(&path).unwrap();
                std::fs::create_dir(&path).unwrap(); // a folder takes its name
            }
            8 => {
                std::fs::remove_file(&path).unwrap();
                std::os::unix::fs::symlink("gone.md", &path).unwrap(); // dangling
            }
            _ => {
                // Its whole folder goes.
                let dir = root.join(format!("brief-{i}"));
                std::fs::create_dir(&dir).unwrap();
                std::fs::rename(&path, dir.join("x.md")).unwrap();
                std::fs::remove_dir_all(&dir).unwrap();
            }
        }
    }
    let served = || -> BTreeSet<String> { all_titles(&d).into_iter().collect() };
    let mut last = BTreeSet::new();
    let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        poll("exactly the files that stayed to be served", || {
            last = served();
            (last == want).then_some(())
        })
    }));
    assert!(
        ok.is_ok(),
        "served but gone: {:?}\nstayed but not served: {:?}",
        last.difference(&want).collect::<Vec<_>>(),
        want.difference(&last).collect::<Vec<_>>()
    );
    let status = d.status();
    assert_eq!(status["clippings"], want.len(), "{status}");
    assert_eq!(status["rejected_total"], 0, "a vanished file is not a bad file: {status}");
    // A rescan agrees, and a file added afterwards is served.
    let rescans = d.counter("rescans");
    d.signal(libc::SIGUSR1);
    poll("the rescan", || (d.counter("rescans") > rescans).then_some(()));
    assert_eq!(served(), want);
    site.put("after.md", good("after", "Added after"));
    wait_title(&d, "Added after");
    check_feed(&d, "feed");
}

/// A rejected file read again unchanged (a second watcher event: opened for writing and closed
/// without a change) is rejected again, and not logged again: one log line per rejection, and
/// a batch summary that counts it once.
#[test]
fn a_rejected_file_read_again_unchanged_is_logged_once() {
    let site = Site::new();
    site.write_config("");
    site.put("ok.md", good("ok", "Fine"));
    let d = Daemon::start(&site);
    let parsed = || -> u64 {
        let text = get(&d.url("metrics"), &[]).text();
        let line = text.lines().find(|l| l.starts_with("clipfeed_files_parsed_total ")).expect("the counter");
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let path = put_old(&site, "bad.md", "---\ntitle: T\nquality: \"high\"\n---\nBody.\n");
    wait_rejected(&d, &["bad.md"]);
    assert_logged(&d, "bad.md", "quality");
    let lines =
        |d: &Daemon| d.log().lines().filter(|l| l.contains("clipping rejected") && l.contains("path=bad.md")).count();
    assert_eq!(lines(&d), 1);
    for round in 1..=2 {
        let before = parsed();
        drop(std::fs::File::options().write(true).open(&path).unwrap());
        poll("the file read again", || (parsed() > before).then_some(()));
        assert_eq!(lines(&d), 1, "after read {round} again");
        assert_eq!(rejected(&d).len(), 1);
    }
    // Changed, and still refused for the same reason: that is news.
    put_old(&site, "bad.md", "---\ntitle: T2\nquality: \"low\"\n---\nBody.\n");
    poll("the new version logged", || (lines(&d) == 2).then_some(()));
}

/// `max_file_bytes` lowered by a reload holds for the files already stored: the next rescan
/// reads the larger ones again and refuses them (in `/api/status`, with the new limit), and
/// raising it again takes them back.
#[test]
fn a_lowered_max_file_bytes_refuses_the_larger_files_already_stored() {
    let site = Site::new();
    let body = "word ".repeat(1000);
    site.put("big.md", format!("---\ntitle: Large one\nwebUrl: https://limits.example/big\n---\n{body}\n"));
    site.put("small.md", "---\ntitle: Small one\nwebUrl: https://limits.example/small\n---\nShort.\n");
    let d = Daemon::start(&site);
    let reasons = |d: &Daemon| -> Vec<(String, String)> {
        let status = d.status();
        status["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["path"].as_str().unwrap().to_string(), r["reason"].as_str().unwrap().to_string()))
            .collect()
    };
    assert!(reasons(&d).is_empty());
    for (limit, want) in [("max_file_bytes: 2000\n", 1), ("", 0)] {
        site.write_config(limit);
        d.signal(libc::SIGHUP);
        let got = poll("the stored files judged by the new limit", || {
            let got = reasons(&d);
            (got.len() == want).then_some(got)
        });
        if want == 1 {
            assert_eq!(got[0].0, "big.md");
            assert!(got[0].1.contains("larger than max_file_bytes (2000)"), "{got:?}");
        }
    }
}
