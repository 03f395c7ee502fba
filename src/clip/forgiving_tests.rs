//! The forgiving rules, one table each: near-miss keys, aliases and their precedence, identity,
//! dates from file names, single values for lists, YAML error positions and tabs. Plus a
//! property test that no input, however keyed, makes the parser panic.

use super::*;

fn ok_named(name: &str, input: &str) -> Parsed {
    parse_file(input.as_bytes(), name, Limits::default()).unwrap_or_else(|e| panic!("rejected {input:?}: {e}"))
}

fn ok(input: &str) -> Parsed {
    ok_named("", input)
}

fn front(yaml: &str) -> Parsed {
    ok(&format!("---\n{yaml}\n---\n"))
}

fn rejected(input: &str) -> String {
    parse(input.as_bytes(), Limits::default()).expect_err("should be rejected").to_string()
}

fn notes(p: &Parsed) -> Vec<(String, String, bool)> {
    p.key_notes.iter().map(|n| (n.key.clone(), n.suggestion.clone(), n.read)).collect()
}

#[test]
fn near_miss_keys_are_noted_and_not_read() {
    // (front matter, notes as (key, suggestion, read), what must hold of the clipping)
    type Check = fn(&Clipping) -> bool;
    type Notes = &'static [(&'static str, &'static str, bool)];
    let cases: &[(&str, Notes, Check)] = &[
        ("title: T\ntopic: [Robotics]", &[("topic", "topics", false)], |c| c.topics.is_empty()),
        ("title: T\npublishDateTime: 2020-01-02", &[("publishDateTime", "publishedDateTime", false)], |c| {
            c.published.is_none()
        }),
        ("title: T\npublishedDatetime: 2020-01-02", &[("publishedDatetime", "publishedDateTime", true)], |c| {
            c.published.is_some_and(|d| d.to_rfc3339() == "2020-01-02T00:00:00+00:00")
        }),
        ("title: T\nwebURL: https://a.example/x", &[("webURL", "webUrl", true)], |c| {
            c.url.as_deref() == Some("https://a.example/x") && c.link_only
        }),
        ("Title: T\nTags: [A]", &[("Tags", "tags", true), ("Title", "title", true)], |c| {
            c.title == "T" && c.topics == ["A"]
        }),
        ("title: T\nimgaes: https://i.example/a.jpg", &[("imgaes", "images", false)], |c| c.images.is_empty()),
        // Keys the format carries, and other tools' own keys: silent.
        (
            "title: T\ncategory: news\nsecured: \"a;b\"\nheat: -1\nampWebUrl: https://amp.example/\ncdnAmpWebUrl: https://c.example/\nfeaturedContent: \"<iframe>\"\nlayout: post\npermalink: /x/",
            &[],
            |c| c.topics.is_empty() && c.url.is_none(),
        ),
        ("title: T\n1: one\n? [a, b]\n: complex\n~: null key", &[], |c| c.title == "T"),
    ];
    for (yaml, want, check) in cases {
        let p = front(yaml);
        let mut got = notes(&p);
        got.sort();
        let want: Vec<(String, String, bool)> =
            want.iter().map(|(k, s, r)| (k.to_string(), s.to_string(), *r)).collect();
        assert_eq!(got, want, "{yaml}");
        assert!(check(&p.clipping), "{yaml}: {:?}", p.clipping);
        assert!(p.warnings.is_empty(), "{yaml}: {:?}", p.warnings);
    }
}

#[test]
fn aliases_are_read_and_clipfeed_keys_win() {
    type Check = fn(&Clipping) -> bool;
    let cases: &[(&str, Check)] = &[
        ("title: T\ndate: 2021-03-04", |c| c.published.is_some_and(|d| d.to_rfc3339() == "2021-03-04T00:00:00+00:00")),
        ("title: T\npublishDate: 2021-03-04T05:06:07Z", |c| c.published.is_some()),
        ("title: T\ndate: 2021-03-04\npublishedDateTime: 2020-01-01", |c| {
            c.published.is_some_and(|d| d.to_rfc3339().starts_with("2020-01-01"))
        }),
        // A date that is not one gives way to the next date key.
        ("title: T\npublishedDateTime: soon\ndate: 2021-03-04", |c| {
            c.published.is_some_and(|d| d.to_rfc3339().starts_with("2021-03-04"))
        }),
        ("title: T\ntags: [A, B]", |c| c.topics == ["A", "B"]),
        ("title: T\ncategories: [C]\ntags: [A]", |c| c.topics == ["A", "C"]),
        ("title: T\ntags: [A]\ntopics: [Own]", |c| c.topics == ["Own"]),
        ("title: T\nlink: https://l.example/a", |c| c.url.as_deref() == Some("https://l.example/a") && c.link_only),
        ("title: T\nurl: https://u.example/a\nlink: https://l.example/a", |c| {
            c.url.as_deref() == Some("https://l.example/a")
        }),
        ("title: T\nurl: https://u.example/a\nwebUrl: https://w.example/a", |c| {
            c.url.as_deref() == Some("https://w.example/a") && !c.link_only
        }),
        ("title: T\nurl: /2021/03/04/relative/\nlink: https://l.example/", |c| {
            c.url.as_deref() == Some("https://l.example/")
        }),
        ("title: T\nsummary: A <b>short</b> one", |c| c.excerpt.as_deref() == Some("A short one")),
        ("title: T\ndescription: D\nexcerpt: E", |c| c.excerpt.as_deref() == Some("E")),
        ("title: T\nauthor: Ada Lovelace", |c| {
            c.provider.as_ref().is_some_and(|p| p.name == "Ada Lovelace" && p.domain.is_none())
        }),
        ("title: T\nauthors: [A, {name: B}]", |c| c.provider.as_ref().is_some_and(|p| p.name == "A, B")),
        ("title: T\nauthor: Ada\nprovider: {name: P, domain: p.example}", |c| {
            c.provider.as_ref().is_some_and(|p| p.name == "P")
        }),
        ("title: T\nimage: https://i.example/a.jpg", |c| c.images.len() == 1),
        ("title: T\npublished: false", |c| c.unpublished),
    ];
    for (yaml, check) in cases {
        let p = front(yaml);
        assert!(check(&p.clipping), "{yaml}: {:?}", p.clipping);
        assert!(p.key_notes.is_empty(), "{yaml}: {:?}", p.key_notes);
        // The order of the keys in the file does not matter.
        let mut lines: Vec<&str> = yaml.lines().collect();
        lines.reverse();
        assert_eq!(front(&lines.join("\n")).clipping, p.clipping, "{yaml} reversed");
    }
}

#[test]
fn an_alias_of_the_wrong_shape_is_a_warning_and_an_own_key_a_rejection() {
    for (yaml, warning) in [
        ("title: T\ntags: {a: b}", "`tags` ignored"),
        ("title: T\ndate: [2020]", "`date` ignored"),
        ("title: T\nQuality: high", "`Quality` ignored"),
        ("title: T\nurl: {href: x}", "`url` ignored"),
        ("title: T\ndate: someday", "date \"someday\" is not a date"),
    ] {
        let p = front(yaml);
        assert_eq!(p.warnings.len(), 1, "{yaml}: {:?}", p.warnings);
        assert!(p.warnings[0].starts_with(warning), "{yaml}: {:?}", p.warnings);
    }
    for (yaml, named) in
        [("title: T\ntopics: {a: b}", "topics"), ("title: T\nquality: high", "quality"), ("title: [a]", "title")]
    {
        let e = rejected(&format!("---\n{yaml}\n---\n"));
        assert!(e.contains(named), "{yaml}: {e}");
    }
    let e = rejected("---\ntitle: A\ntitle: B\n---\n");
    assert!(e.contains("duplicate") && e.contains("title"), "{e}");
}

#[test]
fn only_web_url_and_original_url_spelt_exactly_make_an_identity() {
    // (front matter, identity key)
    for (yaml, key) in [
        ("title: T\nwebUrl: https://a.example/x", "url:https://a.example/x"),
        ("title: T\noriginalUrl: https://a.example/x", "url:https://a.example/x"),
        ("title: T\nurl: https://a.example/x", "path:n/f.md"),
        ("title: T\nlink: https://a.example/x", "path:n/f.md"),
        ("title: T\nwebURL: https://a.example/x", "path:n/f.md"),
        ("title: T\nwebUrl: javascript:x\nurl: https://a.example/x", "path:n/f.md"),
        ("title: T\nurl: https://a.example/x\noriginalUrl: https://o.example/", "url:https://o.example/"),
        ("title: T", "path:n/f.md"),
    ] {
        let p = front(yaml);
        assert_eq!(crate::item::key_for(&p.clipping, "n/f.md"), key, "{yaml}");
        // The same file as read before the alias existed: the alias removed.
        let without: String =
            yaml.lines().filter(|l| !l.starts_with("url:") && !l.starts_with("link:")).collect::<Vec<_>>().join("\n");
        if !yaml.contains("webURL") {
            assert_eq!(crate::item::key_for(&front(&without).clipping, "n/f.md"), key, "{yaml}");
        }
    }
}

#[test]
fn a_date_in_the_file_name_dates_an_undated_clipping() {
    // (file name, content, date expected)
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("2026-11-16-a-story.txt", "A plain story with enough words\n\nBody.\n", Some("2026-11-16T00:00:00+00:00")),
        ("news/2026-11-16-a-story.md", "---\ntitle: T\n---\n", Some("2026-11-16T00:00:00+00:00")),
        ("2026-11-16.md", "---\ntitle: T\n---\n", Some("2026-11-16T00:00:00+00:00")),
        ("2026-11-16_x.md", "---\ntitle: T\n---\n", Some("2026-11-16T00:00:00+00:00")),
        (
            "2026-11-16-x.md",
            "---\ntitle: T\npublishedDateTime: 2020-01-02T03:04:05Z\n---\n",
            Some("2020-01-02T03:04:05+00:00"),
        ),
        ("2026-11-16-x.md", "---\ntitle: T\npublishedDateTime: soon\n---\n", Some("2026-11-16T00:00:00+00:00")),
        ("2026-11-16-x.md", "---\ntitle: T\ndate: 2021-01-01\n---\n", Some("2021-01-01T00:00:00+00:00")),
        ("2026-02-30-x.md", "---\ntitle: T\n---\n", None),
        ("2026-11-16x.md", "---\ntitle: T\n---\n", None),
        ("20261116-x.md", "---\ntitle: T\n---\n", None),
        ("x-2026-11-16.md", "---\ntitle: T\n---\n", None),
        ("2026-11-16-x/story.md", "---\ntitle: T\n---\n", None),
        ("", "---\ntitle: T\n---\n", None),
        ("2026-1", "---\ntitle: T\n---\n", None),
        ("2026-11-1é.md", "---\ntitle: T\n---\n", None),
    ];
    for &(name, content, want) in cases {
        let got = ok_named(name, content).clipping.published.map(|d| d.to_rfc3339());
        assert_eq!(got.as_deref(), want, "{name}: {content}");
    }
}

#[test]
fn a_single_value_stands_for_a_list() {
    type Check = fn(&Clipping) -> bool;
    let cases: &[(&str, Check)] = &[
        ("topics: Robotics", |c| c.topics == ["Robotics"]),
        ("topics: 42", |c| c.topics == ["42"]),
        ("tags: Robotics", |c| c.topics == ["Robotics"]),
        ("related: https://r.example/a", |c| {
            c.related.len() == 1
                && c.related[0].url == "https://r.example/a"
                && c.related[0].title == "https://r.example/a"
        }),
        ("related: [https://r.example/a, {title: B, webUrl: https://r.example/b}]", |c| c.related.len() == 2),
        ("related: {title: R, webUrl: https://r.example/}", |c| c.related.len() == 1 && c.related[0].title == "R"),
        ("images: https://i.example/a.jpg", |c| c.images.len() == 1 && c.images[0].url == "https://i.example/a.jpg"),
        ("images: {url: https://i.example/a.jpg, width: 5}", |c| c.images.len() == 1 && c.images[0].width == Some(5)),
        ("provider: {name: P, domain: p.example, images: https://i.example/p.png}", |c| {
            c.provider.as_ref().is_some_and(|p| p.images.len() == 1)
        }),
    ];
    for (yaml, check) in cases {
        let p = front(&format!("title: T\n{yaml}"));
        assert!(check(&p.clipping), "{yaml}: {:?}", p.clipping);
    }
}

#[test]
fn the_fast_reader_and_serde_yaml_agree_on_the_new_shapes() {
    // Each document is read twice: as it is, by the fast reader, and with an anchor on a carried
    // key added, which the fast reader leaves to serde_yaml.
    for yaml in [
        "tags:\n  - A\n  - B",
        "topics: Robotics",
        "related:\n  - https://r.example/a\n  - title: B\n    webUrl: https://r.example/b",
        "webURL: https://a.example/\nurl: https://b.example/",
        "author:\n  name: Ada",
        "date: \"2021-03-04\"\ntopic:\n  - x",
        "Tags: x\ncategories:\n  - y\nimage: https://i.example/a.png",
    ] {
        let plain = format!("title: T\n{yaml}");
        let anchored = format!("{plain}\nheat: &h 1");
        assert!(crate::yaml::parse(&plain).is_some(), "the fast reader takes {yaml:?}");
        assert!(crate::yaml::parse(&anchored).is_none(), "the fast reader leaves {yaml:?} with an anchor");
        assert_eq!(front(&plain), front(&anchored), "{yaml:?}");
    }
}

#[test]
fn yaml_errors_give_file_lines() {
    // (file, text the reason must contain)
    for (input, want) in [
        ("---\ntitle: x\n  bad: y\n---\n", "at line 3 column 6"),
        ("---\n\n\ntitle: [a\n---\n", "at line 4"),
        ("---\ntitle: T\nquality: high\n---\n", "quality: invalid type: string, expected a number at line 3 column 10"),
        ("---\ntitle: x\n\ttopics: [a]\n---\n", "tab character in indentation at line 3: YAML allows spaces only"),
        ("---\ntitle: x\ntopics:\n\t- a\n---\n", "tab character in indentation at line 4: YAML allows spaces only"),
        ("---\ntitle: x\ntopics:\n  - a\n \t- b\n---\n", "tab character in indentation at line 5"),
        ("\u{feff}---\r\ntitle: x\r\n  bad: y\r\n---\r\n", "at line 3 column 6"),
    ] {
        let e = rejected(input);
        assert!(e.contains(want), "{input:?}: {e}");
        assert!(!e.contains("line 0"), "{e}");
    }
    // A tab after a colon is not indentation, and is fine.
    assert_eq!(front("title:\tTabbed").clipping.title, "Tabbed");
}

mod props {
    use super::*;
    use proptest::prelude::*;

    /// Keys from the table, changed a little, plus strangers.
    fn key() -> impl Strategy<Value = String> {
        let known = prop::sample::select(vec![
            "title",
            "excerpt",
            "publishedDateTime",
            "webUrl",
            "originalUrl",
            "type",
            "quality",
            "published",
            "provider",
            "topics",
            "images",
            "related",
            "date",
            "publishDate",
            "pubDate",
            "link",
            "url",
            "summary",
            "description",
            "tags",
            "categories",
            "image",
            "author",
            "authors",
            "category",
            "secured",
            "heat",
        ]);
        prop_oneof![
            known.clone().prop_map(String::from),
            (known.clone(), any::<bool>()).prop_map(|(k, up)| if up { k.to_uppercase() } else { k.to_lowercase() }),
            (known, 0usize..20, any::<char>()).prop_map(|(k, at, c)| {
                let mut chars: Vec<char> = k.chars().collect();
                let at = at.min(chars.len());
                if at % 2 == 0 {
                    chars.insert(at, c)
                } else if at < chars.len() {
                    chars.remove(at);
                }
                chars.into_iter().collect()
            }),
            "[a-zA-Z_]{0,12}",
        ]
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("~".to_string()),
            Just("[]".to_string()),
            Just("{}".to_string()),
            Just("2021-03-04".to_string()),
            Just("https://a.example/x".to_string()),
            Just("[https://a.example/x, {url: https://b.example/}]".to_string()),
            Just("{name: N, domain: d.example, images: x}".to_string()),
            Just("\n  - a\n  - {name: b}".to_string()),
            Just("\n\t- tab".to_string()),
            "[ -~]{0,20}",
        ]
    }

    proptest! {
        #[test]
        fn no_front_matter_makes_the_parser_panic(
            entries in prop::collection::vec((key(), value()), 0..8),
            name in "[0-9a-z/._-]{0,24}",
        ) {
            let mut text = String::from("---\n");
            for (k, v) in &entries {
                text.push_str(&format!("{k}: {v}\n"));
            }
            text.push_str("---\n# Heading title\n");
            match parse_file(text.as_bytes(), &name, Limits::default()) {
                Ok(p) => {
                    prop_assert!(!p.clipping.title.is_empty());
                    for w in &p.warnings {
                        prop_assert!(!w.contains('\n'), "{w:?}");
                    }
                    // A link read from anything but webUrl/originalUrl never becomes an identity.
                    if p.clipping.link_only {
                        prop_assert!(crate::item::key_for(&p.clipping, "p.md").starts_with("path:"));
                    }
                }
                Err(e) => prop_assert!(!e.to_string().contains('\n'), "{e}"),
            }
        }
    }
}

#[test]
fn notes_are_capped_per_file() {
    let keys: String = (0..40).map(|i| format!("topics{}: x\n", char::from(b'A' + i))).collect();
    let p = front(&format!("title: T\n{keys}"));
    assert_eq!(p.key_notes.len(), 16);
    assert!(p.key_notes.iter().all(|n| n.suggestion == "topics" && !n.read));
}
