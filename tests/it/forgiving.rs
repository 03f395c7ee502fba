//! Forgiving, talkative parsing through the real binary: near-miss front-matter keys named once
//! per key in `clipfeed check`, in the log and in `/api/status`; a date in a file name read by a
//! feed reader; YAML errors at file lines; and ids that reading a new alias never changes, across
//! restarts and across an upgrade that reads stored files again.

use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

use crate::support::*;

fn clipfeed() -> Command {
    Command::new(env!("CARGO_BIN_EXE_clipfeed"))
}

/// A site with two files spelling `webUrl` as `webURL`, one with `topic:`, and clean ones.
fn misspelt_site() -> Site {
    let site = Site::new();
    site.put("b/two.md", "---\ntitle: Two\nwebURL: https://secret-value.example/two\n---\n");
    site.put("a/one.md", "---\ntitle: One\nwebURL: https://secret-value.example/one\ntopic: [Robotics]\n---\n");
    site.put("clean.md", "---\ntitle: Clean\nwebUrl: https://clean.example/\ncategory: news\nheat: 3\n---\n");
    site
}

const WEB_URL: &str = "unknown key `webURL` in front matter: did you mean `webUrl`? (read as `webUrl`)";
const TOPIC: &str = "unknown key `topic` in front matter: did you mean `topics`?";

#[test]
fn check_names_each_near_miss_key_once_with_a_count_and_an_example() {
    let site = misspelt_site();
    for verbose in [false, true] {
        let mut cmd = clipfeed();
        cmd.arg("check").arg("--config").arg(site.config());
        if verbose {
            cmd.arg("-v");
        }
        let (status, out, err) = run(cmd.arg(site.root()));
        assert!(status.success(), "{out}\n{err}");
        let warnings: Vec<&str> = out.lines().filter(|l| l.starts_with("warning")).collect();
        assert_eq!(
            warnings,
            [
                format!("warning   {TOPIC} (1 file, e.g. a/one.md)"),
                format!("warning   {WEB_URL} (2 files, e.g. a/one.md)")
            ],
            "verbose={verbose}\n{out}"
        );
        // The value is read (case only differs) but never quoted in a warning.
        assert!(!warnings.iter().any(|w| w.contains("secret-value")), "{out}");
        assert!(out.contains("3 files: 3 ok, 0 rejected"), "{out}");
    }
}

#[test]
fn check_gives_yaml_errors_at_file_lines_and_names_tabs() {
    let site = Site::new();
    site.put("tab.md", "---\ntitle: Tabbed\ntopics:\n\t- AI\n---\n");
    site.put("bad.md", "---\n# a comment\ntitle: x\n  bad: y\n---\n");
    let (status, out, _) = run(clipfeed().arg("check").arg("--config").arg(site.config()).arg(site.root()));
    assert_eq!(status.code(), Some(1), "{out}");
    let line =
        |name: &str| out.lines().find(|l| l.contains(name)).unwrap_or_else(|| panic!("{name}: {out}")).to_string();
    assert!(
        line("tab.md").ends_with("front matter: tab character in indentation at line 4: YAML allows spaces only"),
        "{out}"
    );
    assert!(line("bad.md").contains("at line 4 column 6"), "{out}");
}

#[test]
fn status_and_log_summarise_near_miss_keys_once_per_key() {
    let site = misspelt_site();
    let d = Daemon::start(&site);
    let warnings = |d: &Daemon| d.status()["warnings"].as_array().cloned().unwrap_or_default();
    let w = warnings(&d);
    assert_eq!(w.len(), 2, "{w:?}");
    assert_eq!(w[0]["key"], "topic");
    assert_eq!(w[0]["suggestion"], "topics");
    assert_eq!(w[0]["read"], false);
    assert_eq!((w[0]["files"].as_u64(), w[0]["example_path"].as_str()), (Some(1), Some("a/one.md")));
    assert_eq!((w[1]["key"].as_str(), w[1]["suggestion"].as_str()), (Some("webURL"), Some("webUrl")));
    assert_eq!((w[1]["files"].as_u64(), w[1]["read"].as_bool()), (Some(2), Some(true)));
    assert!(!serde_json::to_string(&w).unwrap().contains("secret-value"));
    // The link is read: the item links to it.
    let f = feed(&d.url("/feed.atom"));
    let two = entry_titled(&f, "Two").expect("Two is served");
    assert_eq!(two.links[0].href, "https://secret-value.example/two");

    // One more file with the same key: counted, not logged again.
    site.put("c/three.md", "---\ntitle: Three\nwebURL: https://x.example/3\n---\n");
    poll("three files with webURL", || (warnings(&d).get(1)?["files"].as_u64() == Some(3)).then_some(()));
    // Per file, the notes are at debug level only; the warning is one line per key.
    let logged = |d: &Daemon, what: &str| d.log().lines().filter(|l| l.contains(what) && l.contains("WARN")).count();
    assert_eq!(logged(&d, WEB_URL), 1, "{}", d.log());
    assert_eq!(logged(&d, TOPIC), 1, "{}", d.log());

    // Gone with the last file that carries it.
    std::fs::remove_file(site.root().join("a/one.md")).unwrap();
    poll("the topic warning to go", || (warnings(&d).len() == 1).then_some(()));
    d.stop();

    // The summary survives a restart (the files are not read again) and is logged once more.
    let d = Daemon::start(&site);
    let w = warnings(&d);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!((w[0]["files"].as_u64(), w[0]["example_path"].as_str()), (Some(2), Some("b/two.md")));
    poll("the warning to be logged", || (logged(&d, WEB_URL) == 1).then_some(()));
}

#[test]
fn a_date_in_the_file_name_dates_an_undated_clipping_in_the_feed() {
    let site = Site::new();
    site.put("2026-11-16-robots-fold-laundry.txt", "Robots learn to fold laundry at home\n\nA short body.\n");
    site.put("news/2025-01-02-undated.md", "---\ntitle: Undated front matter\n---\n");
    site.put("2024-05-06-dated.md", "---\ntitle: Dated inside\npublishedDateTime: 2023-07-08T09:10:11Z\n---\n");
    let d = Daemon::start(&site);
    let f = feed(&d.url("/feed.atom"));
    let date = |title: &str| entry_titled(&f, title).and_then(|e| e.published).map(|p| p.to_rfc3339());
    assert_eq!(date("Robots learn to fold laundry at home").as_deref(), Some("2026-11-16T00:00:00+00:00"));
    assert_eq!(date("Undated front matter").as_deref(), Some("2025-01-02T00:00:00+00:00"));
    assert_eq!(date("Dated inside").as_deref(), Some("2023-07-08T09:10:11+00:00"));
}

/// The Atom id and link of the only entry.
fn only_entry(d: &Daemon) -> (String, String) {
    let f = feed(&d.url("/feed.atom"));
    assert_eq!(f.entries.len(), 1, "{:?}", titles(&f));
    (f.entries[0].id.clone(), f.entries[0].links[0].href.clone())
}

#[test]
fn an_item_keeps_its_id_when_its_file_gains_or_loses_a_url_alias() {
    let site = Site::new();
    site.put("story.md", "---\ntitle: A story without a webUrl\n---\n");
    let d = Daemon::start(&site);
    let (id, link) = only_entry(&d);
    assert!(link.starts_with("http://feeds.test/cf/clippings/"), "{link}");
    d.stop();

    site.put("story.md", "---\ntitle: A story without a webUrl\nurl: https://alias.example/story\n---\n");
    let d = Daemon::start(&site);
    assert_eq!(only_entry(&d), (id.clone(), "https://alias.example/story".to_string()));
    // Seen by the watcher as well.
    site.put("story.md", "---\ntitle: A story without a webUrl\nlink: https://alias.example/other\n---\n");
    poll("the new link", || (only_entry(&d).1 == "https://alias.example/other").then_some(()));
    assert_eq!(only_entry(&d).0, id);
    d.stop();

    site.put("story.md", "---\ntitle: A story without a webUrl\n---\n");
    let d = Daemon::start(&site);
    assert_eq!(only_entry(&d).0, id);
}

/// Rewrites a file with text of the same length and puts its mtime back, so that its stat is
/// unchanged: as if the file had been stored by a build that read it differently.
fn rewrite_keeping_stat(path: &Path, text: &str) {
    let meta = std::fs::metadata(path).unwrap();
    assert_eq!(meta.len(), text.len() as u64, "same length");
    let mtime: SystemTime = meta.modified().unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::File::options().write(true).open(path).unwrap().set_modified(mtime).unwrap();
}

/// Marks the store as filled by a build with another clipping format.
fn mark_older_format(site: &Site) {
    let db = rusqlite::Connection::open(site.dir.path().join("data/clipfeed.db")).unwrap();
    db.execute("UPDATE meta SET value='0' WHERE key='clip_format'", []).unwrap();
}

#[test]
fn an_upgrade_reads_stored_files_again_and_keeps_their_ids() {
    let site = Site::new();
    // Before the upgrade, `url:` and `date:` meant nothing: the padding comment stands for them.
    let before = "---\ntitle: Stored before the upgrade\n#############################################\n---\n";
    let after = "---\ntitle: Stored before the upgrade\nurl: https://alias.example/u\ndate: 2021-03-04\n---\n";
    assert_eq!(before.len(), after.len());
    let path = site.put("2020-01-01-upgrade.md", before);
    let d = Daemon::start(&site);
    let (id, _) = only_entry(&d);
    d.stop();

    // Same stat, same format: not read again (this is what the format mark is for).
    rewrite_keeping_stat(&path, after);
    let d = Daemon::start(&site);
    let f = feed(&d.url("/feed.atom"));
    assert_eq!(f.entries[0].published.map(|p| p.to_rfc3339()).as_deref(), Some("2020-01-01T00:00:00+00:00"));
    d.stop();

    mark_older_format(&site);
    let d = Daemon::start(&site);
    let f = feed(&d.url("/feed.atom"));
    assert_eq!(f.entries.len(), 1);
    assert_eq!(f.entries[0].id, id, "the id of a stored clipping never changes");
    assert_eq!(f.entries[0].links[0].href, "https://alias.example/u");
    assert_eq!(f.entries[0].published.map(|p| p.to_rfc3339()).as_deref(), Some("2021-03-04T00:00:00+00:00"));
}

#[test]
fn every_key_of_the_shared_corpus_and_seeds_is_known_and_silent() {
    let dirs: Vec<_> = ["corpus", "seeds"].into_iter().filter_map(shared).collect();
    if dirs.is_empty() {
        return;
    }
    let (_, out, err) = run(clipfeed().arg("check").args(&dirs));
    assert!(out.lines().any(|l| l.starts_with("ok ")), "{out}\n{err}");
    let warnings: Vec<&str> = out.lines().filter(|l| l.starts_with("warning")).collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
}

#[test]
fn jekyll_and_hugo_keys_reach_the_feeds() {
    let site = Site::new();
    site.put(
        "_posts/hugo.md",
        "---\nTitle: Seedlings counted from the air\ndate: 2026-09-22T17:05:00Z\ntags: Robotics\ncategories: [Climate Tech]\nlink: https://fieldnote.example.net/seedlings\nsummary: Drones <em>count</em> seedlings.\nauthor: Ada Field\nlayout: post\n---\nBody.\n",
    );
    let d = Daemon::start(&site);
    let f = feed(&d.url("/topics/robotics.atom"));
    let e = entry_titled(&f, "Seedlings counted from the air").expect("in the topic named by `tags`");
    assert_eq!(e.published.map(|p| p.to_rfc3339()).as_deref(), Some("2026-09-22T17:05:00+00:00"));
    assert_eq!(e.links[0].href, "https://fieldnote.example.net/seedlings");
    assert_eq!(e.summary.as_ref().map(|s| s.content.as_str()), Some("Drones count seedlings."));
    assert_eq!(e.authors.first().and_then(|a| a.name.as_deref()), Some("Ada Field"));
    assert_eq!(titles(&feed(&d.url("/topics/climate-tech.rss"))), ["Seedlings counted from the air"]);
    // `Title` is read, and named once as a near miss.
    let w = d.status()["warnings"].as_array().cloned().unwrap_or_default();
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!((w[0]["key"].as_str(), w[0]["suggestion"].as_str()), (Some("Title"), Some("title")));
}

#[test]
fn many_near_miss_keys_are_capped_per_file_and_in_the_log() {
    let site = Site::new();
    // 20 near misses per file, of which 16 per file are kept: 32 keys in all.
    for (file, stem) in [("a.md", "topics"), ("b.md", "excerpt")] {
        let keys: String = ('a'..='t').map(|c| format!("{stem}{c}: x\n")).collect();
        site.put(file, format!("---\ntitle: Many keys\n{keys}---\n"));
    }
    let d = Daemon::start(&site);
    let w = d.status()["warnings"].as_array().cloned().unwrap_or_default();
    assert_eq!(w.len(), 32, "{w:?}");
    let log = d.log();
    let lines = log.lines().filter(|l| l.contains("WARN") && l.contains("in front matter: did you mean")).count();
    assert_eq!(lines, 20, "{log}");
    assert!(log.contains("12 more front-matter keys spelt close to known ones; see /api/status"), "{log}");
}
