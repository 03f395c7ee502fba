//! Privacy and the operators' endpoints, by values: `/api/status` follows the `/metrics` rule
//! and quotes no file's value nor any absolute path; an unauthorised private feed answers like
//! a missing one; what the public sees does not move when only private clippings do; a reload
//! (or a start) never loosens privacy by accident.

use crate::support::{Daemon, Site, get, poll};

/// A clipping file with a title, a link and extra front-matter lines.
fn clip(key: &str, title: &str, more: &str) -> String {
    format!(
        "---\ntitle: \"{title}\"\npublishedDateTime: 2025-04-01T10:00:00Z\nwebUrl: https://news.example/{key}\n{more}---\nBody of {title}.\n"
    )
}

#[test]
fn status_is_for_operators_and_names_fields_not_values() {
    let site = Site::new();
    site.write_config("metrics:\n  token: an-operator-token-16\n");
    site.put("ok.md", clip("ok", "Fine clipping", ""));
    site.put(
        "hidden/board-minutes.md",
        clip("bad", "Refused", "quality: \"SECRET acme takeover at 40 dollars a share\"\n"),
    );
    let mut d = Daemon::start(&site);
    // Anyone may ask whether it is alive and ready; the status needs the operator's token.
    assert_eq!(get(&d.url("healthz"), &[]).status, 200);
    assert_eq!(get(&d.url("readyz"), &[]).status, 200);
    for headers in [vec![], vec![("Authorization", "Bearer not-the-operator-token")]] {
        let r = get(&d.url("api/status"), &headers);
        assert_eq!(r.status, 401, "{headers:?}");
        assert!(!r.text().contains("board-minutes") && !r.text().contains("SECRET"), "{}", r.text());
    }
    d.operator = Some("an-operator-token-16".into());
    let status = poll("the rejection in the status", || {
        let s = d.status();
        (s["rejected_total"] == 1).then_some(s)
    });
    let rejected = &status["rejected"][0];
    assert_eq!(rejected["path"], "hidden/board-minutes.md", "relative to its root");
    assert_eq!(rejected["root"], "clippings", "the root as the configuration writes it");
    let reason = rejected["reason"].as_str().unwrap();
    assert!(reason.contains("quality") && reason.contains("expected a number"), "{reason}");
    let text = status.to_string();
    assert!(!text.contains("SECRET") && !text.contains("acme") && !text.contains("40 dollars"), "{text}");
    let abs = site.dir.path().to_string_lossy().into_owned();
    assert!(!text.contains(&abs), "the status shows where the files are: {text}");
    assert!(!d.log().contains("SECRET acme"), "nor does the log quote the value");
    drop(d);

    // Another network only: loopback is refused the status as it is the metrics.
    site.write_config("metrics:\n  allow: [10.0.0.0/8]\n");
    let d = Daemon::start(&site);
    assert_eq!(get(&d.url("api/status"), &[]).status, 403);
    assert_eq!(get(&d.url("metrics"), &[]).status, 403);
    assert_eq!(get(&d.url("readyz"), &[]).status, 200);
}

/// The configuration of the privacy tests: a private topic with an alias and a keyword, a
/// private news site, and a public topic.
pub const PRIVATE_CONFIG: &str = "topics:\n  - name: Internal\n    aliases: [Staff Only]\n    keywords: [bluebird]\n    private: true\n  - name: Robotics\nproviders:\n  - domain: secret.example\n    private: true\n";

/// The tokens `clipfeed token list` prints, by feed stem.
pub fn tokens(site: &Site) -> std::collections::BTreeMap<String, String> {
    let (status, out, err) = crate::support::run(
        std::process::Command::new(env!("CARGO_BIN_EXE_clipfeed"))
            .arg("token")
            .arg("--config")
            .arg(site.config())
            .arg("list"),
    );
    assert!(status.success(), "{err}");
    out.lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(a, b)| (a.to_string(), b.split('\t').next().unwrap().to_string()))
        .collect()
}

/// What a response is, but for its date: status, headers and body.
fn answer(r: &crate::support::Reply) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let headers = r.headers.iter().filter(|(k, _)| *k != "date").map(|(k, v)| (k.clone(), v.clone())).collect();
    (r.status, headers, r.body.clone())
}

#[test]
fn an_unauthorised_private_feed_answers_as_a_missing_one() {
    let site = Site::new();
    site.write_config(PRIVATE_CONFIG);
    site.put("in.md", clip("in", "Internal memo", "topics: [Internal]\n"));
    site.put("sec.md", clip("sec", "Secret site news", "provider: {name: Secret, domain: secret.example}\n"));
    site.put("pub.md", clip("pub", "Robot news", "topics: [Robotics]\n"));
    let d = Daemon::start(&site);
    let token = tokens(&site)["topics/internal"].clone();
    poll("the token", || {
        (get(&d.url(&format!("topics/internal.atom?token={token}")), &[]).status == 200).then_some(())
    });
    let browser = ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8");
    for (private, missing) in
        [("topics/internal", "topics/no-such-topic"), ("providers/secret.example", "providers/missing.example")]
    {
        for rest in [
            ".atom",
            ".rss",
            ".json",
            ".atom?limit=5",
            ".json?q=memo",
            ".rss?since=2020-01-01&topic=internal",
            "/archive/50-0.atom",
            "/archive/50-0.atom?limit=1",
            ".atom?token=wrong",
        ] {
            for headers in [vec![], vec![browser], vec![("Authorization", "Bearer wrong")]] {
                for method in ["GET", "HEAD"] {
                    let p = crate::support::request(method, &d.url(&format!("{private}{rest}")), &headers);
                    let m = crate::support::request(method, &d.url(&format!("{missing}{rest}")), &headers);
                    assert_eq!(answer(&p), answer(&m), "{method} {private}{rest} {headers:?}");
                    assert_eq!(p.status, 404, "{method} {private}{rest}");
                    assert_eq!(p.header("cache-control"), Some("no-store"), "{method} {private}{rest}");
                }
            }
        }
    }
}

#[test]
fn private_changes_leave_what_the_public_sees_as_it_was() {
    let site = Site::new();
    site.write_config(PRIVATE_CONFIG);
    site.put("pub.md", clip("pub", "Robot news", "topics: [Robotics]\n"));
    site.put("turns.md", clip("turns", "Turncoat headline", "topics: [Robotics]\nexcerpt: Turncoat excerpt\n"));
    let mut d = Daemon::start(&site);
    d.operator = None;
    let public =
        ["feed.atom", "feed.rss", "feed.json", "topics/robotics.atom", "topics/robotics.json", "", "feeds.opml"];
    type Seen = (String, Option<String>, Option<String>, Vec<u8>);
    let snapshot = |d: &Daemon| -> Vec<Seen> {
        public
            .iter()
            .map(|p| {
                let r = get(&d.url(p), &[]);
                assert_eq!(r.status, 200, "{p}");
                (p.to_string(), r.header("etag").map(String::from), r.header("last-modified").map(String::from), r.body)
            })
            .collect()
    };
    let count = |d: &Daemon| d.status()["clippings"].as_u64().unwrap();
    let before = snapshot(&d);
    let (clippings, renders) = (count(&d), d.counter("renders"));
    // Into the next second, so that a date taken from a private change would show.
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let second = now();
    poll("the next second", || (now() > second).then_some(()));
    // Private clippings arrive (by topic, by alias, by keyword, by news site): once the writer
    // has rendered them, nothing public has moved.
    site.put("a.md", clip("a", "Private by topic", "topics: [Internal, Robotics]\n"));
    site.put("b.md", clip("b", "Private by alias", "topics: [Staff Only]\n"));
    site.put("c.md", clip("c", "Private by keyword bluebird", "topics: [Robotics]\n"));
    site.put("e.md", clip("e", "Private by site", "topics: [Robotics]\nprovider: {name: S, domain: secret.example}\n"));
    let tokens = tokens(&site);
    let token = tokens["topics/internal"].clone();
    let secret = &tokens["providers/secret.example"];
    poll("the private clippings", || {
        let f = get(&d.url(&format!("topics/internal.json?token={token}")), &[]).text();
        let s = get(&d.url(&format!("providers/secret.example.json?token={secret}")), &[]).text();
        let all = f.contains("Private by topic") && f.contains("Private by alias") && f.contains("Private by keyword");
        (all && s.contains("Private by site")).then_some(())
    });
    assert!(d.counter("renders") > renders);
    for (a, b) in before.iter().zip(snapshot(&d)) {
        assert_eq!((&a.1, &a.2), (&b.1, &b.2), "{}: validators moved for private clippings", a.0);
        assert!(a.3 == b.3, "{}: bytes moved for private clippings:\n{}", a.0, String::from_utf8_lossy(&b.3));
    }
    assert_eq!(count(&d), clippings);

    // A public clipping turns private: public feeds keep a tombstone with its id only.
    site.put(
        "turns.md",
        clip("turns", "Turncoat headline", "topics: [Robotics, Internal]\nexcerpt: Turncoat excerpt\n"),
    );
    poll("the clipping to leave the public feed", || {
        let atom = get(&d.url("feed.atom"), &[]).text();
        (!atom.contains("Turncoat")).then_some(atom)
    });
    for p in ["feed.atom", "topics/robotics.atom", "feed.rss", "feed.json", "topics/robotics.json", ""] {
        let text = get(&d.url(p), &[]).text();
        assert!(!text.contains("Turncoat") && !text.contains("news.example/turns"), "{p}:\n{text}");
    }
    let atom = get(&d.url("topics/robotics.atom"), &[]).text();
    assert!(atom.contains("at:deleted-entry"), "a tombstone:\n{atom}");
    assert!(get(&d.url(&format!("topics/internal.atom?token={token}")), &[]).text().contains("Turncoat headline"));
}

/// How many log lines contain `what`.
fn count(d: &Daemon, what: &str) -> usize {
    d.log().lines().filter(|l| l.contains(what)).count()
}

/// Writes `text` as the whole configuration file, sends SIGHUP and waits for the verdict;
/// whether the reload was accepted. A refusal must leave one log line saying why.
fn reload(site: &Site, d: &Daemon, text: &str) -> bool {
    let (done, refused) = (count(d, "configuration reloaded"), count(d, "configuration reload refused"));
    std::fs::write(site.config(), text).unwrap();
    d.signal(libc::SIGHUP);
    poll("the reload's verdict", || {
        let (now_done, now_refused) = (count(d, "configuration reloaded"), count(d, "configuration reload refused"));
        (now_done > done || now_refused > refused).then_some(now_done > done)
    })
}

/// The configuration `Site::write_config` writes, with `extra`.
fn config_text(extra: &str) -> String {
    format!(
        "listen: 127.0.0.1:0\nbase_url: http://feeds.test/cf/\nclippings: [clippings]\nstore: data/clipfeed.db\ntitle: Test Clippings\n{extra}"
    )
}

/// Private feeds are still private: missing without the token, absent from every public place.
fn still_private(d: &Daemon) {
    for p in ["topics/internal.atom", "topics/internal.json?limit=5", "providers/secret.example.rss"] {
        assert_eq!(get(&d.url(p), &[]).status, 404, "{p}");
    }
    for p in ["feed.atom", "feed.json?q=memo", "feed.rss?topic=internal", "", "feeds.opml"] {
        let text = get(&d.url(p), &[]).text();
        assert!(!text.contains("Internal memo") && !text.contains("Secret site news"), "{p}:\n{text}");
        assert!(!text.contains("topics/internal") && !text.contains("secret.example"), "{p}:\n{text}");
    }
}

#[test]
fn a_reload_never_loosens_privacy_by_accident() {
    let site = Site::new();
    site.write_config(PRIVATE_CONFIG);
    site.put("in.md", clip("in", "Internal memo", "topics: [Internal, Robotics]\n"));
    site.put("sec.md", clip("sec", "Secret site news", "provider: {name: Secret, domain: secret.example}\n"));
    site.put("pub.md", clip("pub", "Robot news", "topics: [Robotics]\n"));
    let d = Daemon::start(&site);
    let token = tokens(&site)["topics/internal"].clone();
    poll("the token", || {
        (get(&d.url(&format!("topics/internal.atom?token={token}")), &[]).status == 200).then_some(())
    });
    still_private(&d);
    // Empty, comments only, and a file that parses but drops the private topics: all refused.
    let without_private = config_text("topics:\n  - name: Robotics\n");
    for text in ["", "\n\n", "# being rewritten\n# by a tool\n", "---\n", &without_private] {
        assert!(!reload(&site, &d, text), "{text:?} was accepted");
        still_private(&d);
        assert_eq!(get(&d.url(&format!("topics/internal.atom?token={token}")), &[]).status, 200);
    }
    let refusals: Vec<String> =
        d.log().lines().filter(|l| l.contains("configuration reload refused")).map(String::from).collect();
    assert_eq!(refusals.len(), 5, "one line per refusal");
    assert!(refusals[0].contains("no settings"), "{}", refusals[0]);
    assert!(
        refusals[4].contains("topics/internal") && refusals[4].contains("providers/secret.example"),
        "{}",
        refusals[4]
    );
    assert!(refusals[4].contains("private: false"), "{}", refusals[4]);

    // Written out as `private: false`, the provider's feed is made public on purpose.
    let open_provider =
        config_text(&PRIVATE_CONFIG.replace("secret.example\n    private: true", "secret.example\n    private: false"));
    assert!(reload(&site, &d, &open_provider), "private: false was refused:\n{}", d.log());
    poll("the provider's feed to be public", || {
        (get(&d.url("providers/secret.example.atom"), &[]).status == 200).then_some(())
    });
    poll("its clipping in the feed of everything", || {
        get(&d.url("feed.atom"), &[]).text().contains("Secret site news").then_some(())
    });
    assert_eq!(get(&d.url("topics/internal.atom"), &[]).status, 404, "the topic stays private");
    assert!(!tokens(&site).contains_key("providers/secret.example"), "its token is gone");
}

#[test]
fn a_start_with_an_empty_config_or_one_that_loosens_privacy_exits_78() {
    let site = Site::new();
    site.write_config(PRIVATE_CONFIG);
    site.put("in.md", clip("in", "Internal memo", "topics: [Internal]\n"));
    assert!(tokens(&site).contains_key("topics/internal"), "the private topic has a token in the store");
    let exit = |text: &str| {
        std::fs::write(site.config(), text).unwrap();
        let mut cmd = crate::support::serve_command(&[] as &[&str], &site.config());
        let mut child = cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap();
        let status = poll("clipfeed to refuse the configuration", || child.try_wait().unwrap());
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        (status.code(), err)
    };
    for text in ["", "# all commented out\n", "\n---\n"] {
        let (code, err) = exit(text);
        assert_eq!(code, Some(78), "{text:?}: {err}");
        assert!(err.contains("no settings"), "{err}");
    }
    let (code, err) =
        exit(&config_text("topics:\n  - name: Robotics\nproviders:\n  - domain: secret.example\n    private: true\n"));
    assert_eq!(code, Some(78), "{err}");
    assert!(err.contains("topics/internal") && err.contains("private: false"), "{err}");
    // Said on purpose, the start goes on.
    site.write_config(
        "topics:\n  - name: Internal\n    private: false\nproviders:\n  - domain: secret.example\n    private: true\n",
    );
    let d = Daemon::start(&site);
    assert!(get(&d.url("topics/internal.atom"), &[]).text().contains("Internal memo"));
}

#[test]
fn a_reload_that_tightens_privacy_leaves_no_view_made_under_the_old_rules() {
    let site = Site::new();
    let rules = format!("{PRIVATE_CONFIG}items_per_feed: 5\n");
    site.write_config(&rules);
    for i in 0..12 {
        site.put(&format!("r{i}.md"), clip(&format!("r{i}"), &format!("Robot news {i}"), "topics: [Robotics]\n"));
    }
    site.put("other.md", clip("other", "Other news", "topics: [Gardening]\n"));
    let d = Daemon::start(&site);
    let atom = get(&d.url("feed.atom"), &[]).text();
    let archive = atom.split("href=\"http://feeds.test/cf/").find_map(|s| {
        let (href, rest) = s.split_once('"')?;
        rest.starts_with(" rel=\"prev-archive\"").then(|| href.to_string())
    });
    let archive = archive.unwrap_or_else(|| panic!("no archive page:\n{atom}"));
    let views = [
        "feed.atom?q=robot",
        "feed.json?limit=3",
        "feed.rss?topic=robotics",
        "feed.atom?since=2020-01-01",
        "topics/gardening.atom?q=news",
        "feed.atom",
        &archive,
        "",
    ];
    let browser = ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8");
    // Each view is made (and cached) under the old rules, as a feed and as a page.
    for v in views {
        for headers in [vec![], vec![browser]] {
            let r = get(&d.url(v), &headers);
            assert_eq!(r.status, 200, "{v}");
            if v.starts_with("feed") {
                assert!(r.text().contains("Robot news"), "{v}: {}", r.text());
            }
        }
    }
    let tightened = config_text(&rules.replace("  - name: Robotics\n", "  - name: Robotics\n    private: true\n"));
    assert!(reload(&site, &d, &tightened), "{}", d.log());
    poll("the robotics feed to be private", || (get(&d.url("topics/robotics.atom"), &[]).status == 404).then_some(()));
    for v in views {
        for headers in [vec![], vec![browser]] {
            let r = get(&d.url(v), &headers);
            assert!(!r.text().contains("Robot news"), "{v} {headers:?} was made under the old rules:\n{}", r.text());
        }
    }
    let token = tokens(&site)["topics/robotics"].clone();
    assert!(get(&d.url(&format!("topics/robotics.atom?q=robot&token={token}")), &[]).text().contains("Robot news 11"));
}

/// What a private clipping writes reaches no public feed through the feeds' names, nor
/// through a public file of the same article: a private clipping from a public news site, or
/// in a public topic, names neither (the site's and the topic's titles, the index, the OPML
/// keep the public clippings' names: at a cold start, after an edit and a deletion, after a
/// restart); and an article filed twice, once by a private news site or with a private
/// keyword, is private (in that site's or topic's feed only) with every topic it is filed
/// under, at a cold start and once a file comes in.
#[test]
fn a_private_clipping_names_no_public_feed_nor_shows_through_a_public_copy() {
    let site = Site::new();
    site.write_config(PRIVATE_CONFIG);
    let from = |name: &str, domain: &str| format!("provider: {{name: \"{name}\", domain: {domain}}}\n");
    site.put(
        "pub1.md",
        clip("pub1", "Public one", &format!("topics: [Robotics, Drones]\n{}", from("Pub Daily", "pub.example"))),
    );
    site.put("pub2.md", clip("pub2", "Public two", &format!("topics: [Drones]\n{}", from("Pub Daily", "pub.example"))));
    // Private by topic, from the public site, with a public topic under another spelling.
    let private = |body: &str| {
        clip(
            "priv",
            "Private note",
            &format!("topics: [Internal, dRoNeS]\n{}{body}", from("Pub Daily Zebraprov", "pub.example")),
        )
    };
    site.put("priv.md", private(""));
    // One article, two files: the public one first (the item shows it), a private site's later.
    let dated = |key: &str, title: &str, day: u32, more: &str| {
        format!(
            "---\ntitle: \"{title}\"\npublishedDateTime: 2025-04-{day:02}T10:00:00Z\nwebUrl: https://news.example/{key}\n{more}---\nBody.\n"
        )
    };
    site.put(
        "dupa.md",
        dated("dup", "Shared article", 1, &format!("topics: [Drones]\n{}", from("Pub Daily", "pub.example"))),
    );
    site.put(
        "dupb.md",
        dated("dup", "Shared article again", 2, &format!("topics: [Zebradup]\n{}", from("S", "secret.example"))),
    );
    let mut d = Daemon::start(&site);
    d.operator = None;
    let tokens = tokens(&site);
    let (internal, secret) = (tokens["topics/internal"].clone(), tokens["providers/secret.example"].clone());
    let public = [
        "",
        "feeds.opml",
        "feed.atom",
        "feed.rss",
        "feed.json",
        "topics/drones.atom",
        "topics/drones.rss",
        "topics/drones.json",
        "topics/robotics.json",
        "providers/pub.example.atom",
        "providers/pub.example.rss",
        "providers/pub.example.json",
    ];
    let clean = |d: &Daemon, when: &str| {
        for p in public {
            let r = get(&d.url(p), &[]);
            assert_eq!(r.status, 200, "{when}: {p}");
            let text = r.text().to_lowercase();
            for marker in ["zebraprov", "zebradup", "kwdup", "bluebird"] {
                assert!(!text.contains(marker), "{when}: {p} shows {marker}:\n{}", r.text());
            }
            if p.starts_with("providers/") || p == "feeds.opml" {
                assert!(text.contains("pub daily"), "{when}: {p} names the site as its public clippings do");
            }
            assert!(!r.text().contains("dRoNeS"), "{when}: {p} names the topic as a private clipping does");
        }
        for p in ["topics/zebradup.json", "topics/zebradup.atom", "topics/kwdupsecret.json"] {
            assert_eq!(get(&d.url(p), &[]).status, 404, "{when}: {p}");
        }
    };
    let private_feed = |d: &Daemon, p: &str, token: &str| get(&d.url(&format!("{p}?token={token}")), &[]).text();
    poll("the private clippings in their feeds", || {
        let s = private_feed(&d, "providers/secret.example.json", &secret);
        let i = private_feed(&d, "topics/internal.json", &internal);
        (s.contains("Shared article") && i.contains("Private note")).then_some(())
    });
    clean(&d, "at the cold start");
    let shared = private_feed(&d, "providers/secret.example.json", &secret);
    assert!(shared.contains("Zebradup") && shared.contains("Drones"), "the article's topics, privately:\n{shared}");

    // Changes come: the private clipping edited, a public one of its site gone (its feeds
    // rendered again), and an article filed twice, once with the private topic's keyword.
    site.put("priv.md", private("excerpt: Edited\n"));
    std::fs::remove_file(site.root().join("pub2.md")).unwrap();
    site.put("dupc.md", dated("kw", "Public article", 1, "topics: [Robotics]\n"));
    site.put("dupd.md", dated("kw", "Private copy on bluebird", 3, "topics: [Kwdupsecret]\n"));
    poll("the changes", || {
        let i = private_feed(&d, "topics/internal.json", &internal);
        let gone = !get(&d.url("providers/pub.example.json"), &[]).text().contains("Public two");
        (i.contains("Edited") && i.contains("Public article") && i.contains("Kwdupsecret") && gone).then_some(())
    });
    clean(&d, "after the changes");
    drop(d);
    let mut d = Daemon::start(&site);
    d.operator = None;
    clean(&d, "after a restart");
}

/// A reload that makes the news site of an article's second file private (or adds a private
/// keyword found only in that file) takes the article out of every public feed: the remap reads
/// what the item's other files bring from its record, without merging the files again.
#[test]
fn a_reload_that_makes_a_second_files_site_or_keyword_private_takes_the_article_private() {
    let site = Site::new();
    site.write_config(PRIVATE_CONFIG);
    let dated = |key: &str, title: &str, day: u32, more: &str| {
        format!(
            "---\ntitle: \"{title}\"\npublishedDateTime: 2025-04-{day:02}T10:00:00Z\nwebUrl: https://news.example/{key}\n{more}---\nBody.\n"
        )
    };
    site.put(
        "a1.md",
        dated("one", "First headline", 1, "topics: [Drones]\nprovider: {name: P, domain: pub.example}\n"),
    );
    site.put(
        "a2.md",
        dated("one", "First copy", 2, "topics: [Robotics]\nprovider: {name: O, domain: other.example}\n"),
    );
    site.put("b1.md", dated("two", "Second headline", 1, "topics: [Drones]\n"));
    site.put("b2.md", dated("two", "Second copy about kestrel", 2, "topics: [Robotics]\n"));
    site.put("c.md", dated("three", "Third headline", 1, "topics: [Drones]\n"));
    let mut d = Daemon::start(&site);
    d.operator = None;
    let public = ["feed.json", "feed.atom", "topics/drones.json", "topics/robotics.rss", "providers/pub.example.json"];
    let shows = |d: &Daemon, what: &str| public.iter().filter(|p| get(&d.url(p), &[]).text().contains(what)).count();
    assert_eq!((shows(&d, "First headline"), shows(&d, "Second headline")), (5, 4));
    let tightened = format!(
        "{}  - domain: other.example\n    private: true\n",
        PRIVATE_CONFIG.replace("keywords: [bluebird]", "keywords: [bluebird, kestrel]")
    );
    assert!(reload(&site, &d, &config_text(&tightened)));
    for p in public {
        let text = get(&d.url(p), &[]).text();
        assert!(!text.contains("First headline") && !text.contains("Second headline"), "{p}:\n{text}");
    }
    assert_eq!(shows(&d, "Third headline"), 3, "the article of one public file stays");
    let tokens = tokens(&site);
    let other = get(&d.url(&format!("providers/other.example.json?token={}", tokens["providers/other.example"])), &[]);
    assert!(other.text().contains("First headline"), "{}", other.text());
    let internal = get(&d.url(&format!("topics/internal.json?token={}", tokens["topics/internal"])), &[]);
    assert!(internal.text().contains("Second headline"), "{}", internal.text());
}

/// A clipping that writes its news site as an address (`https://Secret.Example/news`) is from
/// that site: in its private feed, and in no public one. Before, such a domain was read as no
/// news site at all, and a private site's clipping written so went public.
#[test]
fn a_private_sites_clipping_with_its_domain_written_as_an_address_stays_private() {
    let site = Site::new();
    site.write_config(PRIVATE_CONFIG);
    site.put("pub.md", clip("pub", "Robot news", "topics: [Robotics]\n"));
    let written = [
        "\"https://Secret.Example/news\"",
        "\"http://secret.example:8080\"",
        "secret.example/",
        "\"secret.example:8080/news\"",
        "//secret.example",
    ];
    // A domain that is no host name refuses the file, rather than publish it with no news site.
    site.put(
        "garbled.md",
        clip("garbled", "Garbled secret", "provider: {name: Hidden, domain: \"secret example!\"}\n"),
    );
    for (i, domain) in written.iter().enumerate() {
        let more = format!("topics: [Robotics]\nprovider: {{name: Hidden, domain: {domain}}}\n");
        site.put(&format!("sec{i}.md"), clip(&format!("sec{i}"), &format!("Addressed secret {i}"), &more));
    }
    let mut d = Daemon::start(&site);
    d.operator = None;
    let token = tokens(&site)["providers/secret.example"].clone();
    let private = poll("the private site's feed", || {
        let r = get(&d.url(&format!("providers/secret.example.json?token={token}")), &[]);
        (r.status == 200 && (0..written.len()).all(|i| r.text().contains(&format!("Addressed secret {i}"))))
            .then(|| r.text())
    });
    // (A file refused is looked at again a moment later, in case it was still being written.)
    let status = poll("the refusal", || {
        let s = d.status();
        (s["rejected_total"] == 1).then_some(s)
    });
    let rejected = status["rejected"].as_array().unwrap();
    assert_eq!(rejected[0]["path"], "garbled.md");
    assert!(rejected[0]["reason"].as_str().unwrap().contains("provider.domain"), "{status}");
    assert!(!status.to_string().contains("secret example!"), "the value is not quoted: {status}");
    assert!(private.contains("Hidden"), "the site's name, privately:\n{private}");
    for p in ["", "feeds.opml", "feed.atom", "feed.rss", "feed.json", "topics/robotics.json", "topics/robotics.rss"] {
        let r = get(&d.url(p), &[]);
        assert_eq!(r.status, 200, "{p}");
        assert!(r.text().contains("Robot news") || p.is_empty() || p == "feeds.opml", "{p}:\n{}", r.text());
        let text = r.text();
        assert!(!text.contains("secret") && !text.contains("Hidden"), "{p}:\n{text}");
    }
}

/// A private feed's items link to their articles, never to a page here (pages are public-only
/// and would answer 404 even with the token): an item without a URL links nowhere. A public
/// feed's items keep their pages.
#[test]
fn a_private_feeds_items_link_to_no_page_that_would_answer_404() {
    let site = Site::new();
    site.write_config(PRIVATE_CONFIG);
    site.put("linked.md", clip("linked", "Linked memo", "topics: [Internal]\n"));
    site.put("bare.md", "---\ntitle: Bare memo\ntopics: [Internal]\n---\nNo link.\n");
    site.put("bodiless.md", "---\ntitle: Bodiless memo\nexcerpt: Only an excerpt\ntopics: [Internal]\n---\n");
    site.put("pub.md", "---\ntitle: Public bare\ntopics: [Robotics]\n---\nNo link.\n");
    let d = Daemon::start(&site);
    let token = tokens(&site)["topics/internal"].clone();
    let private = |ext: &str, accept: &str| {
        let r = get(&d.url(&format!("topics/internal.{ext}&token={token}")), &[("Accept", accept)]);
        assert_eq!(r.status, 200, "{ext} {accept}");
        r.text()
    };
    poll("the private feed", || private("json?", "*/*").contains("Bodiless memo").then_some(()));
    let html = "text/html";
    for group in ["?", "?group=story"] {
        for (ext, accept) in [("rss", "*/*"), ("atom", "*/*"), ("json", "*/*"), ("atom", html), ("json", html)] {
            let text = private(&format!("{ext}{group}"), accept);
            let what = format!("{ext}{group} {accept}");
            assert!(text.contains("Bare memo") && text.contains("https://news.example/linked"), "{what}:\n{text}");
            assert!(!text.contains("/clippings/") && !text.contains("/stories/"), "{what} links here:\n{text}");
        }
        // Every Atom entry has an alternate link or content (RFC 4287, 4.1.1).
        let atom = feed_rs::parser::parse(private(&format!("atom{group}"), "*/*").as_bytes()).unwrap();
        for e in &atom.entries {
            let title = e.title.as_ref().map(|t| t.content.clone()).unwrap_or_default();
            let alternate = e.links.iter().any(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"));
            assert!(alternate || e.content.is_some(), "{group}: {title}");
        }
    }
    let atom = private("atom?", "*/*");
    assert!(atom.contains("<content type=\"text\">Only an excerpt</content>"), "{atom}");
    let json: serde_json::Value = serde_json::from_str(&private("json?", "*/*")).unwrap();
    for item in json["items"].as_array().unwrap() {
        let want = (item["title"] == "Linked memo").then_some("https://news.example/linked");
        assert_eq!(item["url"].as_str(), want, "{item}");
    }
    // A public feed's item without a URL links to its page, which answers.
    let public = get(&d.url("topics/robotics.json"), &[]).text();
    let json: serde_json::Value = serde_json::from_str(&public).unwrap();
    let page = json["items"][0]["url"].as_str().unwrap().replace("http://feeds.test/cf/", "");
    assert!(page.starts_with("clippings/"), "{public}");
    assert_eq!(get(&d.url(&page), &[]).status, 200);
}
