//! The command line: the bundled configuration and examples are valid, `render` prints feeds
//! that parse, and errors exit non-zero with a message.

use std::path::Path;
use std::process::Command;

use crate::support::*;

fn clipfeed() -> Command {
    Command::new(env!("CARGO_BIN_EXE_clipfeed"))
}

#[test]
fn bundled_config_and_examples_are_valid() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = clipfeed::Config::load(&repo.join("config/clipfeed.yaml")).expect("bundled config loads");
    assert_eq!(cfg.clippings, vec![repo.join("examples/clippings")]);
    assert_eq!(cfg.listen.to_string(), "127.0.0.1:8080");
    let (status, out, err) =
        run(clipfeed().current_dir(repo).args(["check", "--config", "config/clipfeed.yaml", "examples/clippings"]));
    assert!(status.success(), "{out}\n{err}");
    let files = walk_count(&repo.join("examples/clippings"));
    assert!(files >= 12, "a dozen examples");
    assert!(out.contains(&format!("{files} files: {files} ok, 0 rejected")), "{out}");
    // One example has no front matter, several have a body.
    assert!(out.lines().any(|l| l.contains(".txt") && l.contains("topics=-")), "{out}");
}

fn walk_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| if p.is_dir() { walk_count(&p) } else { 1 })
        .sum()
}

#[test]
fn render_prints_one_feed() {
    let site = Site::new();
    site.put(
        "a.md",
        "---\ntitle: Rendered story\npublishedDateTime: 2025-01-02T03:04:05Z\nwebUrl: https://r.example/a\nprovider: {name: R, domain: r.example}\ntopics: [Deep Sea]\n---\n",
    );
    for (args, ext) in [
        (vec!["--topic", "deep-sea", "--format", "atom"], "atom"),
        (vec!["--provider", "R.example"], "rss"),
        (vec!["--all", "--format", "rss"], "rss"),
    ] {
        let (status, out, err) = run(clipfeed().arg("render").arg("--config").arg(site.config()).args(&args));
        assert!(status.success(), "{args:?}: {err}");
        let f = feed_rs::parser::parse(out.as_bytes()).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert_eq!(titles(&f), ["Rendered story"], "{args:?}");
        assert_eq!(f.feed_type == feed_rs::model::FeedType::Atom, ext == "atom");
    }
    let (status, _, err) = run(clipfeed().arg("render").arg("--config").arg(site.config()).args(["--topic", "nope"]));
    assert_eq!(status.code(), Some(2));
    assert!(err.contains("no such feed: topics/nope"), "{err}");
}

#[test]
fn bad_config_is_refused_with_the_key_named_and_exit_status_78() {
    let site = Site::new();
    site.write_config("items_per_feed: 0\n");
    let (status, _, err) = run(clipfeed().arg("serve").arg("--config").arg(site.config()));
    assert_eq!(status.code(), Some(78));
    assert!(err.contains("items_per_feed"), "{err}");
    site.write_config("colour: blue\n");
    let (status, _, err) = run(clipfeed().arg("serve").arg("--config").arg(site.config()));
    assert_eq!(status.code(), Some(78));
    assert!(err.contains("colour"), "{err}");
    let (status, _, err) = run(clipfeed().arg("serve").arg("--config").arg(site.dir.path().join("missing.yaml")));
    assert_eq!(status.code(), Some(78));
    assert!(err.contains("missing.yaml"), "{err}");
}
