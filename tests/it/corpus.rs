//! The real corpus (`../shared/corpus`): `clipfeed check` accepts every clipping, and every feed
//! the daemon renders from it passes feed-rs, feedparser and (Atom) the RFC 4287 RELAX NG schema.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

fn corpus_roots() -> Option<Vec<PathBuf>> {
    let base = shared("corpus")?.join("everyday-cc-ai");
    Some(vec![base.join("_news"), base.join("_archive").join("_news")])
}

#[test]
fn check_accepts_every_corpus_clipping() {
    let Some(roots) = corpus_roots() else { return };
    let (status, out, err) = run(Command::new(env!("CARGO_BIN_EXE_clipfeed")).arg("check").args(&roots));
    let files = roots.iter().map(|r| std::fs::read_dir(r).unwrap().count()).sum::<usize>();
    assert!(status.success(), "check failed:\n{out}\n{err}");
    assert!(out.contains(&format!("{files} files: {files} ok, 0 rejected")), "{out}");
    assert_eq!(out.lines().filter(|l| l.starts_with("ok ")).count(), files);
}

#[test]
fn check_reports_bad_files_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.md"), "---\ntitle: Fine\n---\n").unwrap();
    std::fs::write(dir.path().join("bad.md"), "---\ntitle: [oops\n---\n").unwrap();
    std::fs::write(dir.path().join("ignored.json"), "{").unwrap();
    let (status, out, _) = run(Command::new(env!("CARGO_BIN_EXE_clipfeed")).arg("check").arg(dir.path()));
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("rejected") && l.contains("bad.md") && l.contains("front matter")),
        "{out}"
    );
    assert!(out.lines().any(|l| l.starts_with("ok") && l.contains("good.md")), "{out}");
    assert!(out.contains("2 files: 1 ok, 1 rejected"), "{out}");
}

/// The values of an attribute throughout a document (for OPML and HTML written by us).
fn attr_values(doc: &str, attr: &str) -> Vec<String> {
    let needle = format!("{attr}=\"");
    doc.split(needle.as_str()).skip(1).filter_map(|s| s.split('"').next()).map(|v| v.replace("&amp;", "&")).collect()
}

/// A port that was free a moment ago, so the configured base URL can be the real address (the
/// OPML's URLs must be fetchable by newsboat).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn every_feed_from_the_corpus_and_seeds_passes_every_validator() {
    let (Some(mut roots), Some(seeds)) = (corpus_roots(), shared("seeds")) else { return };
    roots.push(seeds);
    let validate = shared("tools/validate").expect("validators beside the corpus");
    let site = Site::new();
    let port = free_port();
    let roots_yaml: Vec<String> = roots.iter().map(|r| format!("{:?}", r.display().to_string())).collect();
    std::fs::write(
        site.config(),
        format!(
            "listen: 127.0.0.1:{port}\nbase_url: http://127.0.0.1:{port}/\nclippings: [{}]\nstore: data/c.db\nitems_per_feed: 40\n",
            roots_yaml.join(", ")
        ),
    )
    .unwrap();
    let d = Daemon::start(&site);
    let status = d.status();
    assert!(status["rejected"].as_array().unwrap().is_empty(), "{status}");
    assert!(status["clippings"].as_u64().unwrap() >= 195, "{status}");

    // The OPML lists every feed: the all-clippings feed, each topic, each provider.
    let opml = get(&d.url("feeds.opml"), &[]);
    assert_eq!(opml.status, 200);
    let xml_urls = attr_values(&opml.text(), "xmlUrl");
    let topics = status["topics"].as_u64().unwrap() as usize;
    let providers = status["providers"].as_u64().unwrap() as usize;
    assert_eq!(xml_urls.len(), 1 + topics + providers, "OPML lists every feed");

    // Every feed in every format, plus the all-feed's archive pages.
    let mut urls: Vec<String> = Vec::new();
    for u in &xml_urls {
        let stem = u.strip_suffix(".rss").expect("OPML points at RSS");
        urls.extend(["rss", "atom", "json"].map(|ext| format!("{stem}.{ext}")));
    }
    // The newest archive page's name is {size}-{index}: every page from 0 to it exists.
    let newest = feed_rs::parser::parse(&get(&d.url("feed.atom"), &[]).body[..])
        .unwrap()
        .links
        .iter()
        .find(|l| l.rel.as_deref() == Some("prev-archive"))
        .map(|l| l.href.rsplit('/').next().unwrap().trim_end_matches(".atom").to_string())
        .expect("200+ clippings with 40 per feed make archive pages");
    let (size, last) = newest.split_once('-').unwrap();
    for n in 0..=last.parse::<u64>().unwrap() {
        urls.extend(["rss", "atom", "json"].map(|ext| d.url(&format!("feed/archive/{size}-{n}.{ext}"))));
    }
    let out = tempfile::tempdir().unwrap();
    let mut files: Vec<(PathBuf, &str)> = Vec::new();
    for (i, u) in urls.iter().enumerate() {
        let r = get(u, &[]);
        assert_eq!(r.status, 200, "{u}");
        let f = feed_rs::parser::parse(&r.body[..]).unwrap_or_else(|e| panic!("feed-rs: {u}: {e}"));
        assert!(!f.entries.is_empty() || u.contains("/topics/"), "{u} is empty");
        let ext = u.rsplit('.').next().unwrap();
        let ext = match ext {
            "rss" => "rss",
            "atom" => "atom",
            _ => "json",
        };
        let path = out.path().join(format!("{i:04}.{ext}"));
        std::fs::write(&path, &r.body).unwrap();
        files.push((path, ext));
    }
    let of =
        |exts: &[&str]| -> Vec<&PathBuf> { files.iter().filter(|(_, e)| exts.contains(e)).map(|(p, _)| p).collect() };
    python_checker(&validate, "feedparser_check.py", "feedparser", &of(&["rss", "atom"]));
    python_checker(&validate, "jsonfeed_check.py", "json", &of(&["json"]));
    jing_all(&validate, &of(&["atom"]));
    opml_checker(&validate, &d.url("feeds.opml"));
    newsboat_through_opml(&opml.body, xml_urls.len());
}

/// Whether python3 can import a module; when it cannot, the check is skipped (or fails in CI).
fn python_has(module: &str) -> bool {
    let ok = Command::new("python3").args(["-c", &format!("import {module}")]).status().is_ok_and(|s| s.success());
    if !ok {
        assert!(!validators_required(), "python3 module {module} is required but not installed");
        eprintln!("NOTICE: python3 module {module} is not installed; skipping the check that needs it");
    }
    ok
}

pub(crate) fn python_checker(validate: &Path, checker: &str, module: &str, files: &[&PathBuf]) {
    if !python_has(module) {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/check_many.py");
    let (status, out, err) = run(Command::new("python3").arg(script).arg(validate.join(checker)).args(files));
    assert!(status.success(), "{checker} rejected documents:\n{out}\n{err}");
    assert!(out.contains(&format!("{} files checked with {checker}, 0 failed", files.len())), "{out}");
}

pub(crate) fn jing_all(validate: &Path, files: &[&PathBuf]) {
    if !have("jing") {
        assert!(!validators_required(), "jing is required but not installed");
        eprintln!("NOTICE: jing is not installed; skipping the Atom RELAX NG check");
        return;
    }
    let (status, out, err) = run(Command::new("jing").arg("-c").arg(validate.join("atom.rnc")).args(files));
    assert!(status.success(), "jing found errors in Atom feeds:\n{out}\n{err}");
}

fn opml_checker(validate: &Path, url: &str) {
    if !python_has("listparser") || !have("newsboat") {
        assert!(!validators_required(), "listparser and newsboat are required");
        return;
    }
    let (status, out, err) = run(Command::new("python3").arg(validate.join("opml_check.py")).arg(url));
    assert!(status.success(), "opml_check:\n{out}\n{err}");
    assert!(out.contains("RESULT: VALID") || out.contains("0 error(s)"), "{out}");
}

/// A newsboat user imports the OPML, reloads everything, reloads again: no error is logged, every
/// feed was fetched, and the second reload brings no new item (ids are stable).
fn newsboat_through_opml(opml: &[u8], feeds: usize) {
    if !have("newsboat") {
        assert!(!validators_required(), "newsboat is required but not installed");
        eprintln!("NOTICE: newsboat is not installed; skipping the subscribe-through-OPML check");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::create_dir(p("home")).unwrap();
    std::fs::write(p("feeds.opml"), opml).unwrap();
    std::fs::write(p("urls"), "").unwrap();
    let log = p("error.log");
    std::fs::write(p("config"), format!("error-log \"{}\"\ndownload-timeout 30\nreload-threads 4\n", log.display()))
        .unwrap();
    let newsboat = |args: &[&str]| {
        let (status, out, err) = run(Command::new("timeout")
            .arg("300")
            .arg("newsboat")
            .env("HOME", p("home"))
            .env("no_proxy", "127.0.0.1")
            .arg("-u")
            .arg(p("urls"))
            .arg("-c")
            .arg(p("cache.db"))
            .arg("-C")
            .arg(p("config"))
            .args(args));
        assert!(status.success(), "newsboat {args:?}: {out}\n{err}");
    };
    newsboat(&["-i", p("feeds.opml").to_str().unwrap()]);
    let subscribed = std::fs::read_to_string(p("urls")).unwrap();
    assert_eq!(subscribed.lines().filter(|l| l.starts_with("http")).count(), feeds, "{subscribed}");
    let count = || -> (i64, i64) {
        let db = rusqlite::Connection::open(p("cache.db")).unwrap();
        let items = db.query_row("SELECT count(*) FROM rss_item", [], |r| r.get(0)).unwrap();
        let fetched = db.query_row("SELECT count(*) FROM rss_feed WHERE title <> ''", [], |r| r.get(0)).unwrap();
        (items, fetched)
    };
    newsboat(&["-x", "reload"]);
    let (first, fetched) = count();
    assert!(first > 0);
    assert_eq!(fetched as usize, feeds, "newsboat fetched every feed (and stored its title)");
    newsboat(&["-x", "reload"]);
    assert_eq!(count().0, first, "the second reload brought new items");
    let errors = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(errors.trim().is_empty(), "newsboat logged errors:\n{errors}");
}
