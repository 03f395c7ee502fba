//! Odd things on disk: dates no feed format can write, FIFOs, roots that are moved away and
//! recreated, the same path under two roots, symlinked clippings.

use std::process::Command;

use crate::support::*;

fn clipping(title: &str, extra: &str) -> String {
    format!("---\ntitle: \"{title}\"\n{extra}---\n")
}

fn has_title(d: &Daemon, title: &str) -> bool {
    entry_titled(&feed(&d.url("feed.atom")), title).is_some()
}

#[test]
fn an_unwritable_date_falls_back_and_the_daemon_goes_on() {
    let site = Site::new();
    let d = Daemon::start(&site);
    site.put("far.md", clipping("Far future", "publishedDateTime: \"+10000-01-01\"\nwebUrl: https://far.example/x\n"));
    site.put("old.md", clipping("Before year one", "publishedDateTime: \"-0001-01-01\"\n"));
    poll("both clippings", || (has_title(&d, "Far future") && has_title(&d, "Before year one")).then_some(()));
    site.put("later.md", clipping("Written afterwards", ""));
    poll("a later clipping", || has_title(&d, "Written afterwards").then_some(()));
    let status = d.stop();
    assert!(status.success(), "{status:?}");
    // And it starts again over the same store.
    let d = Daemon::start(&site);
    assert!(has_title(&d, "Far future"));
}

#[test]
fn a_fifo_named_like_a_clipping_blocks_nothing() {
    let site = Site::new();
    let d = Daemon::start(&site);
    let fifo = site.root().join("pipe.md");
    let (status, _, err) = run(Command::new("mkfifo").arg(&fifo));
    assert!(status.success(), "mkfifo: {err}");
    site.put("after.md", clipping("After the pipe", ""));
    poll("the clipping written after the FIFO", || has_title(&d, "After the pipe").then_some(()));
    let (status, out, _) = run(Command::new(env!("CARGO_BIN_EXE_clipfeed")).arg("check").arg(&fifo));
    assert_eq!(status.code(), Some(1));
    assert!(out.contains("not a regular file"), "{out}");
    assert!(d.stop().success());
}

#[test]
fn a_root_moved_away_and_recreated_is_watched_again() {
    let site = Site::new();
    site.put("first.md", clipping("First root content", "webUrl: https://first.example/1\n"));
    let d = Daemon::start(&site);
    assert!(has_title(&d, "First root content"));
    let old = site.dir.path().join("clippings.old");
    std::fs::rename(site.root(), &old).unwrap();
    std::fs::create_dir(site.root()).unwrap();
    site.put("second.md", clipping("Second root content", "webUrl: https://second.example/2\n"));
    poll("the recreated root's clipping", || has_title(&d, "Second root content").then_some(()));
    poll("the moved-away clipping to leave", || (!has_title(&d, "First root content")).then_some(()));
    // Edits in the moved-away folder are not mistaken for edits in the root.
    std::fs::write(old.join("first.md"), clipping("Edited in the old folder", "")).unwrap();
    site.put("third.md", clipping("Third, a barrier", ""));
    poll("the barrier", || has_title(&d, "Third, a barrier").then_some(()));
    assert!(!has_title(&d, "Edited in the old folder"));
    assert_eq!(d.status()["clippings"], 2);
}

#[test]
fn a_root_missing_at_start_is_picked_up_when_it_appears() {
    let site = Site::new();
    std::fs::remove_dir(site.root()).unwrap();
    let d = Daemon::start(&site);
    assert_eq!(d.status()["clippings"], 0);
    std::fs::create_dir(site.root()).unwrap();
    site.put("late.md", clipping("Arrived with its root", ""));
    poll("the late root's clipping", || has_title(&d, "Arrived with its root").then_some(()));
}

#[test]
fn the_same_path_without_url_under_two_roots_is_reported() {
    let site = Site::new();
    std::fs::create_dir_all(site.dir.path().join("a")).unwrap();
    std::fs::create_dir_all(site.dir.path().join("b")).unwrap();
    std::fs::write(site.dir.path().join("a/note.md"), clipping("Note from A", "")).unwrap();
    std::fs::write(site.dir.path().join("b/note.md"), clipping("Note from B", "")).unwrap();
    std::fs::write(site.config(), "listen: 127.0.0.1:0\nclippings: [a, b]\nstore: data/c.db\n").unwrap();
    let d = Daemon::start(&site);
    let f = feed(&d.url("feed.atom"));
    assert_eq!(titles(&f), ["Note from A"], "the first root's file is served");
    let status = d.status();
    let rejected = status["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{status}");
    assert_eq!(rejected[0]["path"], "note.md");
    assert_eq!(rejected[0]["root"], "b", "the root as the configuration writes it");
    assert!(rejected[0]["reason"].as_str().unwrap().contains("same path"), "{status}");

    // The first root's file gains a URL: it is no longer its path, so its twin is read again.
    let with_url = clipping("Note from A", "webUrl: https://notes.example/a\n");
    std::fs::write(site.dir.path().join("a/note.md"), with_url).unwrap();
    let both = |d: &Daemon| {
        let mut t = titles(&feed(&d.url("feed.atom")));
        t.sort();
        t == ["Note from A", "Note from B"]
    };
    poll("the twin served once the clash is gone", || {
        (both(&d) && d.status()["rejected"].as_array().unwrap().is_empty()).then_some(())
    });
    // Without a URL again: the second file read is refused as before.
    std::fs::write(site.dir.path().join("a/note.md"), clipping("Note from A", "")).unwrap();
    std::fs::write(site.dir.path().join("b/note.md"), clipping("Note from B again", "")).unwrap();
    poll("the clash again", || (d.status()["rejected"].as_array().unwrap().len() == 1).then_some(()));
    // The first root's file goes: its twin is read again and served, and no longer refused.
    let refused = d.status()["rejected"][0]["root"].as_str().unwrap().to_string();
    let other = if refused == "a" { "b" } else { "a" };
    std::fs::remove_file(site.dir.path().join(other).join("note.md")).unwrap();
    poll("the twin served once the file it clashed with is gone", || {
        let served = titles(&feed(&d.url("feed.atom"))).len() == 1;
        (served && d.status()["rejected"].as_array().unwrap().is_empty()).then_some(())
    });
}

#[test]
fn a_symlinked_clipping_follows_its_target() {
    follows_its_target_in("store");
}

/// A dot-folder holds no clipping of its own, but it may hold a link's target: an edit there
/// still reaches the link.
#[test]
fn a_symlinked_clipping_follows_its_target_in_a_dot_folder() {
    follows_its_target_in(".store");
}

fn follows_its_target_in(folder: &str) {
    let site = Site::new();
    std::fs::create_dir_all(site.root().join(folder)).unwrap();
    let target = site.root().join(folder).join("target.txt-draft");
    std::fs::write(&target, clipping("Linked v1", "webUrl: https://linked.example/a\n")).unwrap();
    std::os::unix::fs::symlink(&target, site.root().join("link.md")).unwrap();
    // A link that leaves the root is not followed.
    let outside = site.dir.path().join("outside.md");
    std::fs::write(&outside, clipping("Outside the root", "")).unwrap();
    std::os::unix::fs::symlink(&outside, site.root().join("escape.md")).unwrap();
    let d = Daemon::start(&site);
    assert_eq!(titles(&feed(&d.url("feed.atom"))), ["Linked v1"]);

    std::fs::write(site.dir.path().join("v2"), clipping("Linked v2", "webUrl: https://linked.example/a\n")).unwrap();
    std::fs::rename(site.dir.path().join("v2"), &target).unwrap();
    poll("the link to show its target's new content", || has_title(&d, "Linked v2").then_some(()));
    std::fs::remove_file(&target).unwrap();
    poll("the link to go with its target", || feed(&d.url("feed.atom")).entries.is_empty().then_some(()));
}

/// A folder moved away and a file of its name made at once: the folder's clippings leave the
/// feeds (the watcher saw the move, then a file where the folder was).
#[test]
fn a_folder_replaced_by_a_file_of_its_name_takes_its_clippings_away() {
    let site = Site::new();
    std::fs::create_dir_all(site.root().join("news")).unwrap();
    std::fs::write(site.root().join("news/a.md"), clipping("Inside the folder", "webUrl: https://in.example/a\n"))
        .unwrap();
    std::fs::write(site.root().join("b.md"), clipping("Beside the folder", "webUrl: https://in.example/b\n")).unwrap();
    let d = Daemon::start(&site);
    poll("both clippings", || (titles(&feed(&d.url("feed.atom"))).len() == 2).then_some(()));
    std::fs::rename(site.root().join("news"), site.dir.path().join("news-away")).unwrap();
    std::fs::write(site.root().join("news"), "not a clipping folder any more").unwrap();
    poll("the moved folder's clipping gone", || {
        (titles(&feed(&d.url("feed.atom"))) == ["Beside the folder"]).then_some(())
    });
}
