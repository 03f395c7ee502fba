//! `search=` over HTTP, against the real binary: each operator of the syntax finds exactly its
//! clippings in every format, with the other filters and on every kind of feed; bad searches get
//! 400 naming the parameter and hostile ones never a 500; a private clipping's words find nothing
//! without its feed's token; conditional requests; the index page's search box and the results
//! page; the validators on search feeds; and a store made before the index, filled after start.

use std::process::Command;

use crate::support::*;

const REKOGNITION: &str = "Amazon pauses police use of Rekognition";
const EXTENDS: &str = "Amazon extends Rekognition moratorium";
const LAUNDRY: &str = "Robots fold laundry in a Café";
const STARTUP: &str = "Robotics startup raises funds";
const DRONES: &str = "Toy drones take off";
const ZEBRA: &str = "Quarterly zebra forecast";

const BROWSER: (&str, &str) = ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8");

fn clip(title: &str, date: &str, excerpt: &str, body: &str, site: (&str, &str), topics: &str) -> String {
    format!(
        "---\ntitle: \"{title}\"\npublishedDateTime: {date}\nexcerpt: \"{excerpt}\"\n\
         provider: {{name: \"{}\", domain: {}}}\ntopics: [{topics}]\nwebUrl: https://{}/{}\n---\n{body}\n",
        site.0, site.1, site.1, date
    )
}

/// Five public clippings, one private one (topic Internal), written as text of our own.
fn site() -> Site {
    let site = Site::new();
    site.write_config("topics:\n  - name: Internal\n    private: true\n");
    let vice = ("Vice Weekly", "vice.example");
    site.put(
        "1.md",
        clip(
            REKOGNITION,
            "2020-06-10T10:00:00Z",
            "A one-year moratorium on facial recognition.",
            "Civil rights groups welcomed the move.",
            vice,
            "AI, Facial Recognition",
        ),
    );
    site.put(
        "2.md",
        clip(
            EXTENDS,
            "2021-05-18T10:00:00Z",
            "Indefinitely, the company says.",
            "Police departments must wait.",
            ("U.S. Report", "usreport.example"),
            "AI",
        ),
    );
    site.put(
        "3.md",
        clip(
            LAUNDRY,
            "2020-06-11T10:00:00Z",
            "Machine learning meets chores.",
            "The robot arm learns from videos.",
            ("Wired Up", "wiredup.example"),
            "Robotics",
        ),
    );
    site.put(
        "4.md",
        clip(
            STARTUP,
            "2020-06-12T10:00:00Z",
            "Cafe owners invest; machine-learning hype.",
            "Seed round.",
            ("Daily Spot", "dailyspot.example"),
            "Robotics, Startups",
        ),
    );
    site.put(
        "5.md",
        clip(
            DRONES,
            "2020-06-13T10:00:00Z",
            "Drones for children.",
            "Batteries included.",
            ("Toy Times", "toytimes.example"),
            "Robotics",
        ),
    );
    site.put(
        "6.md",
        clip(ZEBRA, "2020-06-14T10:00:00Z", "Amazon numbers, police budget.", "Zebra crossing data.", vice, "Internal"),
    );
    site
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The titles a search gives on a feed (`path` without extension) in every format, which must
/// agree; feed-rs parses each.
#[track_caller]
fn found(d: &Daemon, path: &str, query: &str) -> Vec<String> {
    let mut each = ["rss", "atom", "json"].map(|ext| titles(&feed(&d.url(&format!("{path}.{ext}?{query}")))));
    for other in &each[1..] {
        assert_eq!(other, &each[0], "{path} ?{query}: the formats disagree");
    }
    std::mem::take(&mut each[0])
}

#[test]
fn each_operator_finds_exactly_its_clippings() {
    let site = site();
    let d = Daemon::start(&site);
    let cases: &[(&str, &[&str])] = &[
        // Words: every one, anywhere (title, excerpt, body, news site, topics), any case.
        ("rekognition police", &[EXTENDS, REKOGNITION]),
        ("amazon", &[EXTENDS, REKOGNITION]),
        ("chores", &[LAUNDRY]),
        ("batteries", &[DRONES]),
        // Accents folded.
        ("cafe", &[STARTUP, LAUNDRY]),
        ("CAFÉ", &[STARTUP, LAUNDRY]),
        // Phrases: adjacent, in order; punctuation between words does not part them.
        ("\"machine learning\"", &[STARTUP, LAUNDRY]),
        ("\"learning machine\"", &[]),
        ("\"facial recognition\"", &[REKOGNITION]),
        ("robot-arm", &[LAUNDRY]),
        // OR.
        ("laundry OR drones", &[DRONES, LAUNDRY]),
        ("amazon extends OR funds", &[EXTENDS]),
        // Excluded.
        ("amazon -indefinitely", &[REKOGNITION]),
        ("robotics -\"seed round\"", &[DRONES, LAUNDRY]),
        ("rekognition -site:vice", &[EXTENDS]),
        // Prefixes, three characters at least.
        ("robo*", &[DRONES, STARTUP, LAUNDRY]),
        ("morat*", &[EXTENDS, REKOGNITION]),
        ("\"machine lear\"*", &[STARTUP, LAUNDRY]),
        // Fields.
        ("title:robots", &[LAUNDRY]),
        ("excerpt:drones", &[DRONES]),
        ("body:police", &[EXTENDS]),
        ("text:police", &[EXTENDS, REKOGNITION]),
        ("site:vice", &[REKOGNITION]),
        ("site:\"daily spot\"", &[STARTUP]),
        ("site:usreport.example", &[EXTENDS]),
        ("topic:startups", &[STARTUP]),
        ("topic:\"facial recognition\"", &[REKOGNITION]),
        ("-topic:robotics amazon OR drones", &[EXTENDS, REKOGNITION]),
        // Words that are FTS5 syntax are words.
        ("NEAR", &[]),
        ("AND amazon", &[]),
    ];
    for (search, expect) in cases {
        assert_eq!(found(&d, "feed", &format!("search={}", encode(search))), *expect, "search={search}");
    }
    // With the other filters, and on topic and provider feeds.
    let more: &[(&str, &str, &[&str])] = &[
        ("feed", "search=robo*&limit=1", &[DRONES]),
        ("feed", "search=amazon&since=2021-01-01", &[EXTENDS]),
        ("feed", "search=robo*&provider=dailyspot.example", &[STARTUP]),
        ("feed", "search=amazon&topic=facial-recognition", &[REKOGNITION]),
        ("feed", "search=robo*&q=robots", &[LAUNDRY]),
        ("feed", "search=robo*&exclude=toy", &[STARTUP, LAUNDRY]),
        ("topics/robotics", "search=cafe", &[STARTUP, LAUNDRY]),
        ("topics/ai", "search=police", &[EXTENDS, REKOGNITION]),
        ("providers/vice.example", "search=amazon", &[REKOGNITION]),
        ("providers/vice.example", "search=zebra", &[]),
    ];
    for (path, query, expect) in more {
        assert_eq!(found(&d, path, query), *expect, "{path} ?{query}");
    }
    // `q` and `exclude` keep their meaning: whole words of the title or excerpt, accents count.
    assert_eq!(found(&d, "feed", "q=robots"), [LAUNDRY]);
    assert_eq!(found(&d, "feed", "q=cafe"), [STARTUP]);
    assert_eq!(found(&d, "feed", "q=caf%C3%A9"), [LAUNDRY]);
    assert_eq!(found(&d, "feed", "q=police"), [REKOGNITION], "not the body");
    assert_eq!(found(&d, "feed", "q=machine+learning,&exclude=laundry"), [STARTUP]);
    // A saved search is told apart by its feed title.
    let f = feed(&d.url("feed.atom?search=laundry"));
    assert!(f.title.unwrap().content.ends_with(" · search: laundry"));
}

#[test]
fn bad_searches_get_400_naming_the_parameter() {
    let site = site();
    let d = Daemon::start(&site);
    let many = (0..21).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ");
    let bad = [
        ("\"never closed", "never closed"),
        ("ro*", "at least 3"),
        ("re:Invent", "unknown field 're:'"),
        ("title:", "needs a word"),
        ("OR amazon", "OR needs a term on each side"),
        ("amazon OR", "OR needs a term on each side"),
        ("amazon OR -police", "cannot be a side of OR"),
        ("-amazon", "only excluded terms"),
        ("!!! ???", "no words"),
        (many.as_str(), "more than 20 terms"),
        (&"a".repeat(101), "longer than 100"),
        (&"ab ".repeat(334), "longer than 1000"),
    ];
    for (search, says) in bad {
        for ext in ["rss", "atom", "json"] {
            let r = get(&d.url(&format!("feed.{ext}?search={}", encode(search))), &[]);
            assert_eq!(r.status, 400, "{search}: {}", r.text());
            let text = r.text();
            assert!(text.starts_with("query parameter 'search': "), "{search}: {text}");
            assert!(text.contains(says), "{search}: {text}");
            assert_eq!(text.lines().count(), 1, "{text}");
        }
    }
    let twice = get(&d.url("feed.rss?search=a&search=b"), &[]);
    assert_eq!((twice.status, twice.text()), (400, "query parameter 'search': given more than once\n".into()));
    // An empty search box is no search at all.
    assert_eq!(found(&d, "feed", "search="), found(&d, "feed", ""));
}

#[test]
fn hostile_searches_never_fail_the_server() {
    let site = site();
    let d = Daemon::start(&site);
    let mut inputs: Vec<String> = [
        "NEAR(amazon police, 2)",
        "amazon AND police",
        "amazon NOT police",
        "{title}: amazon",
        "title : amazon",
        "^amazon",
        "amazon^",
        "*",
        "***",
        "a*b",
        "\"\"",
        "\"\"\"",
        "\"a\"\"b\"",
        "( amazon )",
        "amazon)",
        "-",
        "--amazon",
        "- amazon",
        "OR",
        "OR OR",
        "\"OR\"",
        "-\"\"",
        "title:\"\"",
        "title:-x",
        "site:*",
        "topic:topic:x",
        ":",
        "::x",
        "x:",
        "\u{0}",
        "amazon\u{0}police",
        "\u{202E}amazon",
        "ａｍａｚｏｎ",
        "İstanbul*",
        "x\u{301}\u{301}\u{301}",
        "🦓",
        "🦓*",
        "\u{E000}",
        "\u{FFFF}",
        "amazon\tpolice\n",
        "%",
        "%%",
        "+",
        "&",
        "=",
    ]
    .map(String::from)
    .to_vec();
    inputs.push(format!("{}*", "é".repeat(100)));
    inputs.push("\"".repeat(999));
    inputs.push(vec!["abc*"; 20].join(" OR "));
    inputs.push(vec!["\"abc def\""; 20].join(" "));
    let mut rng = Rng::from_env("CLIPFEED_SEARCH_SEED");
    let alphabet: Vec<char> = "aZé \"*-:()^+OR{}\\\u{0}\u{301}🦓titlesite.,".chars().collect();
    for _ in 0..150 {
        let len = rng.below(40) as usize;
        inputs.push((0..len).map(|_| alphabet[rng.below(alphabet.len() as u64) as usize]).collect());
    }
    for search in &inputs {
        for (ext, path) in [("json", "feed"), ("atom", "topics/robotics")] {
            let url = d.url(&format!("{path}.{ext}?search={}", encode(search)));
            let r = get(&url, &[]);
            assert!(
                r.status == 200 || r.status == 400,
                "{search:?}: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
            if r.status == 200 {
                feed_rs::parser::parse(&r.body[..]).unwrap_or_else(|e| panic!("{search:?}: {e}"));
            }
        }
    }
    // Bytes that are not UTF-8 at all.
    for raw in ["%FF%FE", "amazon%C3", "%ED%A0%80"] {
        let r = get(&d.url(&format!("feed.rss?search={raw}")), &[]);
        assert!(r.status == 200 || r.status == 400, "{raw}: {}", r.status);
    }
    assert_eq!(get(&d.url("healthz"), &[]).status, 200);
}

fn token_of(site: &Site, feed: &str) -> String {
    let (status, out, err) =
        run(Command::new(env!("CARGO_BIN_EXE_clipfeed")).arg("token").arg("--config").arg(site.config()).arg("list"));
    assert!(status.success(), "{err}");
    let line = out.lines().find(|l| l.starts_with(&format!("{feed}\t"))).expect("a token");
    line.split('\t').nth(1).unwrap().to_string()
}

#[test]
fn a_private_clippings_words_find_nothing_without_its_token() {
    let site = site();
    let d = Daemon::start(&site);
    let token = token_of(&site, "topics/internal");
    poll("the daemon to know the token", || {
        (get(&d.url(&format!("topics/internal.rss?token={token}")), &[]).status == 200).then_some(())
    });
    // Its title, excerpt, body, news site and topic: nowhere on public feeds, in any format or
    // shape, through search, q or any field.
    let searches =
        ["zebra", "quarterly", "\"zebra forecast\"", "zeb*", "topic:internal", "title:zebra", "body:crossing"];
    for path in ["feed", "topics/ai", "providers/vice.example"] {
        for s in searches {
            assert!(found(&d, path, &format!("search={}", encode(s))).is_empty(), "{path} search={s}");
            let page = get(&d.url(&format!("{path}.rss?search={}", encode(s))), &[BROWSER]);
            assert_eq!(page.status, 200);
            assert!(
                !page.text().contains(ZEBRA) && !page.text().contains("Zebra crossing"),
                "{path} {s}: {}",
                page.text()
            );
        }
        assert!(found(&d, path, "q=zebra").is_empty(), "{path} q=zebra");
    }
    // Words it shares with public clippings find those alone.
    assert_eq!(found(&d, "feed", "search=amazon+police"), [EXTENDS, REKOGNITION]);
    assert_eq!(found(&d, "providers/vice.example", "search=vice"), [REKOGNITION]);
    // Its own feed: only with the token.
    assert_eq!(get(&d.url("topics/internal.rss?search=zebra"), &[]).status, 404);
    assert_eq!(get(&d.url("topics/internal.rss?search=zebra&token=wrong"), &[]).status, 404);
    for ext in ["rss", "atom", "json"] {
        let f = feed(&d.url(&format!("topics/internal.{ext}?search=zebra&token={token}")));
        assert_eq!(titles(&f), [ZEBRA]);
        let f = feed(&d.url(&format!("topics/internal.{ext}?search=site:vice+amazon&token={token}")));
        assert_eq!(titles(&f), [ZEBRA]);
    }
    let bearer = format!("Bearer {token}");
    let r = get(&d.url("topics/internal.json?search=zeb*"), &[("Authorization", bearer.as_str())]);
    assert_eq!(r.status, 200);
    assert!(r.text().contains(ZEBRA));
    // Its page holds neither the token nor a search box that would drop it.
    let page = get(&d.url(&format!("topics/internal.rss?search=zebra&token={token}")), &[BROWSER]);
    assert_eq!(page.status, 200);
    assert!(page.text().contains(ZEBRA) && !page.text().contains(&token) && !page.text().contains("<form"));
}

#[test]
fn search_feeds_answer_conditional_requests_and_follow_new_clippings() {
    let site = site();
    let d = Daemon::start(&site);
    let url = d.url("feed.atom?search=moratorium");
    let first = get(&url, &[]);
    assert_eq!(first.status, 200);
    let etag = first.header("etag").unwrap().to_string();
    assert!(first.header("last-modified").is_some());
    assert_eq!(get(&url, &[("If-None-Match", &etag)]).status, 304);
    // The same search written another way is the same feed.
    assert_eq!(get(&d.url("feed.atom?search=MORATORIUM"), &[("If-None-Match", &etag)]).status, 304);
    site.put(
        "7.md",
        clip(
            "A moratorium on drones",
            "2022-01-01T00:00:00Z",
            "Skies.",
            "None.",
            ("Toy Times", "toytimes.example"),
            "Robotics",
        ),
    );
    let changed = poll("the search feed to change", || {
        let r = get(&url, &[("If-None-Match", &etag)]);
        (r.status == 200).then_some(r)
    });
    let f = feed_rs::parser::parse(&changed.body[..]).unwrap();
    assert_eq!(titles(&f), ["A moratorium on drones", EXTENDS, REKOGNITION]);
    // And a clipping deleted leaves it.
    std::fs::remove_file(site.root().join("7.md")).unwrap();
    poll("the deleted clipping to leave the search", || (titles(&feed(&url)) == [EXTENDS, REKOGNITION]).then_some(()));
}

#[test]
fn the_index_page_searches_and_the_results_page_gives_the_feed_in_every_format() {
    let site = site();
    let d = Daemon::start(&site);
    let index = get(&d.url("/"), &[]);
    let html = index.text();
    let form = html.split("<form").nth(1).and_then(|f| f.split("</form>").next()).expect("a form on the index");
    assert!(form.contains("action=\"http://feeds.test/cf/feed.rss\" method=\"get\""), "{form}");
    assert!(form.contains("name=\"search\""), "{form}");
    assert!(!html.contains("<script"), "{html}");
    let csp = index.header("content-security-policy").unwrap();
    assert!(csp.contains("form-action 'self'") && !csp.contains("script-src"), "{csp}");
    // What the browser asks for when the box is sent (GET, the field's name and value).
    let r = get(&d.url(&format!("feed.rss?search={}", encode("rekognition -site:vice"))), &[BROWSER]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let page = r.text();
    assert!(page.contains(EXTENDS) && !page.contains(REKOGNITION), "{page}");
    for ext in ["rss", "atom", "json"] {
        let url = format!("http://feeds.test/cf/feed.{ext}?search=rekognition+-site%3Avice");
        assert!(page.contains(&format!("<code class=\"url\">{url}</code>")), "{ext}: {page}");
        // Each address is the feed of those results.
        let local = d.url(&url.replace("http://feeds.test/cf/", ""));
        assert_eq!(titles(&feed(&local)), [EXTENDS], "{local}");
    }
    // The search again, filled in, keeping the other filters.
    let r = get(&d.url("topics/ai.atom?limit=1&search=police"), &[BROWSER]);
    let page = r.text();
    assert!(page.contains("action=\"http://feeds.test/cf/topics/ai.atom\""), "{page}");
    assert!(page.contains("<input type=\"hidden\" name=\"limit\" value=\"1\">"), "{page}");
    assert!(page.contains("name=\"search\" required maxlength=\"1000\" value=\"police\">"), "{page}");
}

#[test]
fn search_feeds_pass_every_validator() {
    let site = site();
    let d = Daemon::start(&site);
    let queries = [
        "feed.{}?search=amazon",
        "feed.{}?search=robo*+OR+drones&limit=2",
        "feed.{}?search=%22machine+learning%22+-title%3Atoy&since=2020-01-01",
        "feed.{}?search=nothing-matches-this",
        "topics/robotics.{}?search=cafe&exclude=toy",
        "providers/vice.example.{}?search=site%3Avice&q=amazon",
    ];
    let out = tempfile::tempdir().unwrap();
    let mut files: Vec<(std::path::PathBuf, &str)> = Vec::new();
    for (i, q) in queries.iter().enumerate() {
        for ext in ["rss", "atom", "json"] {
            let r = get(&d.url(&q.replace("{}", ext)), &[]);
            assert_eq!(r.status, 200, "{q} {ext}");
            let path = out.path().join(format!("{i}.{ext}"));
            std::fs::write(&path, &r.body).unwrap();
            files.push((path, ext));
        }
    }
    let Some(validate) = shared("tools/validate") else { return };
    let of = |ext: &str| files.iter().filter(|(_, e)| *e == ext).map(|(p, _)| p).collect::<Vec<_>>();
    let xml: Vec<_> = of("rss").into_iter().chain(of("atom")).collect();
    crate::corpus::python_checker(&validate, "feedparser_check.py", "feedparser", &xml);
    crate::corpus::python_checker(&validate, "jsonfeed_check.py", "json", &of("json"));
    crate::corpus::jing_all(&validate, &of("atom"));
}

#[test]
fn a_store_made_before_the_index_is_filled_after_start() {
    let site = site();
    let d = Daemon::start(&site);
    assert_eq!(found(&d, "feed", "search=laundry"), [LAUNDRY]);
    assert_eq!(d.stop().code(), Some(0));
    // The store as an older clipfeed left it: no index, no mark.
    let db = rusqlite::Connection::open(site.dir.path().join("data/clipfeed.db")).unwrap();
    db.execute_batch("DROP TABLE search_index; DROP TABLE search_docs; DELETE FROM meta WHERE key LIKE '%search%';")
        .unwrap();
    drop(db);
    let d = Daemon::start(&site);
    // `q` is answered at once (by a scan meanwhile); a search as soon as the index is complete.
    assert_eq!(found(&d, "feed", "q=robots"), [LAUNDRY]);
    poll("the index to be filled", || {
        let r = get(&d.url("feed.rss?search=laundry+OR+drones"), &[]);
        assert!(r.status == 200 || r.status == 503, "{}", r.status);
        (r.status == 200).then_some(())
    });
    assert_eq!(found(&d, "feed", "search=laundry+OR+drones"), [DRONES, LAUNDRY]);
    assert!(found(&d, "feed", "search=zebra").is_empty());
    assert!(d.log().contains("search index complete"), "{}", d.log());
}
