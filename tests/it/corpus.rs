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

/// Every feed URL the index links to.
fn feed_urls(index: &str) -> Vec<String> {
    let mut urls: Vec<String> = index
        .split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|u| u.ends_with(".rss") || u.ends_with(".atom"))
        .map(String::from)
        .collect();
    urls.sort();
    urls.dedup();
    urls
}

#[test]
fn every_feed_from_the_corpus_passes_third_party_parsers() {
    let Some(roots) = corpus_roots() else { return };
    let site = Site::new();
    let roots_yaml: Vec<String> = roots.iter().map(|r| format!("{:?}", r.display().to_string())).collect();
    std::fs::write(
        site.config(),
        format!(
            "listen: 127.0.0.1:0\nbase_url: http://feeds.test/\nclippings: [{}]\nstore: data/c.db\n",
            roots_yaml.join(", ")
        ),
    )
    .unwrap();
    let d = Daemon::start(&site);
    let status = d.status();
    assert!(status["rejected"].as_array().unwrap().is_empty(), "{status}");
    assert!(status["clippings"].as_u64().unwrap() >= 190, "{status}");

    let index = get(&d.url("/"), &[]).text();
    let urls = feed_urls(&index);
    let topics = status["topics"].as_u64().unwrap() as usize;
    let providers = status["providers"].as_u64().unwrap() as usize;
    assert_eq!(urls.len(), 2 * (1 + topics + providers), "index links every feed in both formats");

    let out = tempfile::tempdir().unwrap();
    let mut files: Vec<(PathBuf, bool)> = Vec::new();
    for (i, u) in urls.iter().enumerate() {
        let local = d.url(u.trim_start_matches("http://feeds.test/"));
        let r = get(&local, &[]);
        assert_eq!(r.status, 200, "{local}");
        let f = feed_rs::parser::parse(&r.body[..]).unwrap_or_else(|e| panic!("feed-rs: {u}: {e}"));
        assert!(!f.entries.is_empty() || u.contains("/topics/"), "{u} is empty");
        let atom = u.ends_with(".atom");
        let path = out.path().join(format!("{i:04}.{}", if atom { "atom" } else { "rss" }));
        std::fs::write(&path, &r.body).unwrap();
        files.push((path, atom));
    }

    let validate = shared("tools/validate").expect("validators beside the corpus");
    feedparser_all(&validate, &files);
    jing_all(&validate, &files);
}

fn feedparser_all(validate: &Path, files: &[(PathBuf, bool)]) {
    let has_feedparser = Command::new("python3").args(["-c", "import feedparser"]).status().is_ok_and(|s| s.success());
    if !has_feedparser {
        assert!(!validators_required(), "feedparser is required but not installed");
        eprintln!("NOTICE: python3 feedparser is not installed; skipping the feedparser check");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/feedparser_many.py");
    let (status, out, err) = run(Command::new("python3")
        .arg(script)
        .arg(validate.join("feedparser_check.py"))
        .args(files.iter().map(|(p, _)| p)));
    assert!(status.success(), "feedparser rejected feeds:\n{out}\n{err}");
    assert!(out.contains(&format!("{} feeds checked with feedparser, 0 failed", files.len())), "{out}");
}

fn jing_all(validate: &Path, files: &[(PathBuf, bool)]) {
    if !have("jing") {
        assert!(!validators_required(), "jing is required but not installed");
        eprintln!("NOTICE: jing is not installed; skipping the Atom RELAX NG check");
        return;
    }
    let atom: Vec<&PathBuf> = files.iter().filter(|(_, a)| *a).map(|(p, _)| p).collect();
    let (status, out, err) = run(Command::new("jing").arg("-c").arg(validate.join("atom.rnc")).args(&atom));
    assert!(status.success(), "jing found errors in Atom feeds:\n{out}\n{err}");
}
