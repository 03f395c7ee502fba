//! Every way a file arrives or changes, against the real daemon: plain writes, temp-and-rename
//! (same and other folders), an editor's remove-then-create, truncate-and-rewrite, `cp`, folders
//! moved in and out, hard and symbolic links, touches, slow and chunked writers, bursts, polling,
//! and restarts. Feeds are read back with feed-rs after each step; waits poll with a deadline.

use std::io::Write;
use std::process::Command;

use crate::support::*;

fn clip(key: &str, title: &str, more: &str) -> String {
    format!(
        "---\ntitle: \"{title}\"\npublishedDateTime: 2025-03-01T10:00:00Z\nwebUrl: https://watch.example/{key}\n{more}---\n"
    )
}

fn all_titles(d: &Daemon) -> Vec<String> {
    let mut t = titles(&feed(&d.url("feed.atom?limit=500")));
    t.sort();
    t
}

fn wait_for_titles(d: &Daemon, what: &str, expect: &[&str]) {
    let mut expect: Vec<String> = expect.iter().map(|s| s.to_string()).collect();
    expect.sort();
    poll(what, || (all_titles(d) == expect).then_some(()));
}

fn etag(d: &Daemon, path: &str) -> String {
    get(&d.url(path), &[]).header("etag").expect("ETag").to_string()
}

#[test]
fn every_way_a_file_arrives() {
    let site = Site::new();
    let d = Daemon::start(&site);
    let root = site.root();
    let outside = site.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();

    // Plain create and write.
    let mut f = std::fs::File::create(root.join("plain.md")).unwrap();
    f.write_all(clip("plain", "Plain write", "").as_bytes()).unwrap();
    drop(f);
    wait_for_titles(&d, "a plain write", &["Plain write"]);

    // Temp file in the same folder (an ignored name), renamed into place.
    std::fs::write(root.join(".same.md.tmp"), clip("same", "Renamed in the same folder", "")).unwrap();
    std::fs::rename(root.join(".same.md.tmp"), root.join("same.md")).unwrap();
    // Temp file in another folder, renamed in.
    std::fs::write(outside.join("other.md"), clip("other", "Renamed from elsewhere", "")).unwrap();
    std::fs::rename(outside.join("other.md"), root.join("other.md")).unwrap();
    wait_for_titles(&d, "renames", &["Plain write", "Renamed in the same folder", "Renamed from elsewhere"]);

    // cp from outside.
    std::fs::write(outside.join("copied.md"), clip("copied", "Copied with cp", "")).unwrap();
    let (status, _, err) = run(Command::new("cp").arg(outside.join("copied.md")).arg(root.join("copied.md")));
    assert!(status.success(), "{err}");
    wait_for_titles(
        &d,
        "cp",
        &["Plain write", "Renamed in the same folder", "Renamed from elsewhere", "Copied with cp"],
    );

    // A hard link from outside, and a symbolic link to a file inside the root.
    std::fs::write(outside.join("hard.md"), clip("hard", "Hard linked", "")).unwrap();
    std::fs::hard_link(outside.join("hard.md"), root.join("hard.md")).unwrap();
    std::fs::create_dir_all(root.join("store")).unwrap();
    std::fs::write(root.join("store/real.txt-draft"), clip("sym", "Symbolically linked", "")).unwrap();
    std::os::unix::fs::symlink(root.join("store/real.txt-draft"), root.join("sym.md")).unwrap();
    wait_for_titles(
        &d,
        "links",
        &[
            "Plain write",
            "Renamed in the same folder",
            "Renamed from elsewhere",
            "Copied with cp",
            "Hard linked",
            "Symbolically linked",
        ],
    );

    // A whole folder moved in, then out again.
    let batch = outside.join("batch");
    std::fs::create_dir_all(batch.join("deeper")).unwrap();
    std::fs::write(batch.join("b1.md"), clip("b1", "Batch one", "")).unwrap();
    std::fs::write(batch.join("deeper/b2.md"), clip("b2", "Batch two", "")).unwrap();
    std::fs::rename(&batch, root.join("batch")).unwrap();
    poll("the moved-in folder", || {
        let t = all_titles(&d);
        (t.contains(&"Batch one".to_string()) && t.contains(&"Batch two".to_string())).then_some(())
    });
    std::fs::rename(root.join("batch"), outside.join("batch-back")).unwrap();
    poll("the moved-out folder", || (!all_titles(&d).iter().any(|t| t.starts_with("Batch"))).then_some(()));
    assert_eq!(all_titles(&d).len(), 6);
}

#[test]
fn every_way_a_file_changes_keeps_its_id() {
    let site = Site::new();
    let root = site.root();
    site.put("doc.md", clip("doc", "Version 1", "excerpt: First\n"));
    let d = Daemon::start(&site);
    let id = feed(&d.url("feed.atom")).entries[0].id.clone();
    let check = |what: &str, title: &str| {
        let f = poll(what, || {
            let f = feed(&d.url("feed.atom"));
            (titles(&f) == [title]).then_some(f)
        });
        assert_eq!(f.entries[0].id, id, "{what}: the id stays");
    };

    // An editor's save: write a backup, remove the file, create it anew, remove the backup.
    std::fs::copy(root.join("doc.md"), root.join("doc.md~")).unwrap();
    std::fs::remove_file(root.join("doc.md")).unwrap();
    let mut f = std::fs::File::create(root.join("doc.md")).unwrap();
    f.write_all(clip("doc", "Version 2", "excerpt: Second\n").as_bytes()).unwrap();
    drop(f);
    std::fs::remove_file(root.join("doc.md~")).unwrap();
    check("remove-then-create", "Version 2");

    // vim's probe file 4913 and a swap file are ignored.
    std::fs::write(root.join("4913"), "").unwrap();
    std::fs::write(root.join(".doc.md.swp"), "binary swap").unwrap();

    // Truncate and rewrite in place, in two writes.
    let mut f = std::fs::OpenOptions::new().write(true).truncate(true).open(root.join("doc.md")).unwrap();
    let text = clip("doc", "Version 3", "excerpt: Third\n");
    let (a, b) = text.split_at(text.len() / 2);
    f.write_all(a.as_bytes()).unwrap();
    f.flush().unwrap();
    f.write_all(b.as_bytes()).unwrap();
    drop(f);
    check("truncate-and-rewrite", "Version 3");

    // A rename onto the file (atomic save).
    std::fs::write(site.dir.path().join("next"), clip("doc", "Version 4", "excerpt: Fourth\n")).unwrap();
    std::fs::rename(site.dir.path().join("next"), root.join("doc.md")).unwrap();
    check("rename onto it", "Version 4");
    let status = d.status();
    assert!(status["rejected"].as_array().unwrap().is_empty(), "{status}");

    // The edit shows in Atom `updated` and JSON `date_modified`, not in the publication date.
    let e = &feed(&d.url("feed.atom")).entries[0];
    assert!(e.updated.unwrap() > e.published.unwrap());
    let json: serde_json::Value = serde_json::from_slice(&get(&d.url("feed.json"), &[]).body).unwrap();
    assert_eq!(json["items"][0]["date_published"], "2025-03-01T10:00:00Z");
    assert_ne!(json["items"][0]["date_modified"], "2025-03-01T10:00:00Z");
}

#[test]
fn a_touch_or_a_rescan_changes_nothing() {
    let site = Site::new();
    for n in 0..5 {
        site.put(&format!("t{n}.md"), clip(&format!("t{n}"), &format!("Touched {n}"), ""));
    }
    let d = Daemon::start(&site);
    let urls = ["feed.rss", "feed.atom", "feed.json", "/"];
    wait_settled(&d, &urls[..3]);
    let tags: Vec<String> = urls.iter().map(|u| etag(&d, u)).collect();
    let renders = d.counter("renders");

    // Touch every file (a new mtime, the same bytes), then ask for a rescan. Whichever sees the
    // touches first, the watcher or the rescan, finds the content unchanged.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    for n in 0..5 {
        let p = site.root().join(format!("t{n}.md"));
        std::fs::File::options().write(true).open(&p).unwrap().set_modified(later).unwrap();
    }
    let rescans = d.counter("rescans");
    d.signal(libc::SIGUSR1);
    poll("the rescan", || (d.counter("rescans") > rescans).then_some(()));
    assert_eq!(d.counter("renders"), renders, "touches and a rescan that find nothing render nothing");
    assert_eq!(urls.iter().map(|u| etag(&d, u)).collect::<Vec<_>>(), tags, "no ETag changed");
}

/// An edit to what feeds do not show (a clipping's `quality`, its `type`) is stored, and views
/// that choose by it follow at once, but the published documents stay byte for byte, with the
/// same ETag and `Last-Modified`: subscribers download nothing again.
#[test]
fn an_edit_to_quality_alone_changes_no_document_but_the_views_that_choose_by_it() {
    let site = Site::new();
    site.put(
        "q.md",
        clip("q", "Scored", "topics: [Scores]\nquality: 40\ntype: article\nprovider: {name: Q, domain: q.example}\n"),
    );
    site.put("o.md", clip("o", "Other", "topics: [Scores]\nquality: 90\n"));
    let d = Daemon::start(&site);
    let urls = [
        "feed.rss",
        "feed.atom",
        "feed.json",
        "topics/scores.rss",
        "topics/scores.atom",
        "topics/scores.json",
        "providers/q.example.rss",
        "providers/q.example.json",
    ];
    wait_settled(&d, &urls);
    let seen = |d: &Daemon| -> Vec<(Vec<u8>, Option<String>, Option<String>)> {
        urls.iter()
            .map(|u| {
                let r = get(&d.url(u), &[]);
                (r.body.clone(), r.header("etag").map(str::to_string), r.header("last-modified").map(str::to_string))
            })
            .collect()
    };
    let before = seen(&d);
    let view = "topics/scores.json?min_quality=50";
    assert!(!get(&d.url(view), &[]).text().contains("Scored"));
    // The clock past the documents' second, so that a date moved by the edit would show.
    let newest = before.iter().filter_map(|(_, _, lm)| httpdate::parse_http_date(lm.as_deref()?).ok()).max().unwrap();
    let past = newest + std::time::Duration::from_secs(1);
    poll("the clock past the feeds' dates", || (std::time::SystemTime::now() > past).then_some(()));
    site.put(
        "q.md",
        clip("q", "Scored", "topics: [Scores]\nquality: 75\ntype: video\nprovider: {name: Q, domain: q.example}\n"),
    );
    poll("the view to follow the new quality", || get(&d.url(view), &[]).text().contains("Scored").then_some(()));
    assert!(seen(&d) == before, "a document, ETag or Last-Modified moved");
}

#[test]
fn a_slow_writer_is_never_published_half_written() {
    let site = Site::new();
    let d = Daemon::start(&site);
    let full = clip("slow", "Written slowly", "excerpt: The whole excerpt arrives last\n")
        + "A body that arrives in pieces.\n\nSecond paragraph.\n";
    let chunks: Vec<&str> = full.as_bytes().chunks(20).map(|c| std::str::from_utf8(c).unwrap()).collect();

    // One open, many writes with pauses, one close.
    let mut f = std::fs::File::create(site.root().join("slow.md")).unwrap();
    for c in &chunks {
        f.write_all(c.as_bytes()).unwrap();
        f.flush().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(60)); // poll interval: a slow writer's pause
        let f = feed(&d.url("feed.atom"));
        assert!(f.entries.is_empty(), "published before the writer closed the file: {:?}", titles(&f));
        assert!(d.status()["rejected"].as_array().unwrap().is_empty(), "a rejection while still being written");
    }
    drop(f);
    let f = poll("the finished clipping", || {
        let f = feed(&d.url("feed.atom"));
        (!f.entries.is_empty()).then_some(f)
    });
    let e = &f.entries[0];
    assert_eq!(e.summary.as_ref().unwrap().content, "The whole excerpt arrives last");
    assert!(e.content.as_ref().unwrap().body.as_ref().unwrap().contains("Second paragraph."));

    // A writer that appends in several opens: what it leaves half-done is not a lasting
    // rejection, and the finished file is what serves.
    let appended = clip("appended", "Appended in pieces", "excerpt: Complete\n");
    let (a, b) = appended.split_at(appended.len() / 2);
    std::fs::write(site.root().join("appended.md"), a).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500)); // poll interval: the writer's pause
    std::fs::OpenOptions::new()
        .append(true)
        .open(site.root().join("appended.md"))
        .unwrap()
        .write_all(b.as_bytes())
        .unwrap();
    poll("the appended clipping", || all_titles(&d).contains(&"Appended in pieces".to_string()).then_some(()));
    poll("no rejection left", || d.status()["rejected"].as_array().unwrap().is_empty().then_some(()));
}

#[test]
fn a_burst_of_twenty_thousand_files_all_arrive() {
    const N: usize = 20_000;
    let site = Site::new();
    let d = Daemon::start(&site);
    let root = site.root();
    for n in 0..N {
        let text = format!(
            "---\ntitle: Burst {n}\npublishedDateTime: 2025-01-01T00:00:00Z\nwebUrl: https://burst.example/{n}\ntopics: [Burst]\n---\n"
        );
        std::fs::write(root.join(format!("b{n:05}.md")), text).unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    loop {
        let status = d.status();
        if status["clippings"].as_u64() == Some(N as u64) {
            assert!(status["rejected"].as_array().unwrap().is_empty());
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not all {N} arrived: {status}");
        std::thread::sleep(std::time::Duration::from_millis(200)); // poll interval
    }
    let f = feed(&d.url("topics/burst.atom?limit=500"));
    assert_eq!(f.entries.len(), 500);
    // A rescan finds nothing new and renders nothing. The burst's last feeds settle their
    // Last-Modified at the next second (a render each, within a second of their last change):
    // the count is read once it has stood still for longer than that.
    let mut renders = d.counter("renders");
    let mut still_since = std::time::Instant::now();
    while still_since.elapsed() < std::time::Duration::from_millis(1500) {
        std::thread::sleep(std::time::Duration::from_millis(100)); // poll interval
        let now = d.counter("renders");
        if now != renders {
            (renders, still_since) = (now, std::time::Instant::now());
        }
        assert!(std::time::Instant::now() < deadline, "renders never stopped: {now}");
    }
    let rescans = d.counter("rescans");
    d.signal(libc::SIGUSR1);
    poll("the rescan", || (d.counter("rescans") > rescans).then_some(()));
    assert_eq!(d.counter("renders"), renders);
}

#[test]
fn polled_roots_see_changes_too() {
    let site = Site::new();
    site.write_config("watch: poll\npoll_interval: 1\n");
    site.put("p1.md", clip("p1", "Polled one", ""));
    let d = Daemon::start(&site);
    wait_for_titles(&d, "the first scan", &["Polled one"]);
    site.put("p2.md", clip("p2", "Polled two", ""));
    std::fs::remove_file(site.root().join("p1.md")).unwrap();
    wait_for_titles(&d, "the next scan", &["Polled two"]);
    assert!(d.log().contains("watch: poll"), "the log says the root is scanned on a timer");
}

#[test]
fn changes_while_stopped_are_found_at_start() {
    let site = Site::new();
    site.put("keep.md", clip("keep", "Kept", ""));
    site.put("edit.md", clip("edit", "Before the stop", ""));
    site.put("gone.md", clip("gone", "Deleted while stopped", ""));
    site.put("undated.txt", "Science\n\nA plain text clipping with no date at all\n\nIts body.\n");
    let d = Daemon::start(&site);
    let undated =
        entry_titled(&feed(&d.url("feed.atom")), "A plain text clipping with no date at all").unwrap().published;
    let kept_id = entry_titled(&feed(&d.url("feed.atom")), "Kept").unwrap().id.clone();
    assert!(d.stop().success());

    site.put("edit.md", clip("edit", "After the stop", ""));
    std::fs::remove_file(site.root().join("gone.md")).unwrap();
    site.put("new.md", clip("new", "Added while stopped", ""));
    let d = Daemon::start(&site);
    wait_for_titles(
        &d,
        "the start-up reconcile",
        &["A plain text clipping with no date at all", "Added while stopped", "After the stop", "Kept"],
    );
    let f = feed(&d.url("feed.atom"));
    assert_eq!(entry_titled(&f, "Kept").unwrap().id, kept_id);
    assert_eq!(
        entry_titled(&f, "A plain text clipping with no date at all").unwrap().published,
        undated,
        "an undated clipping keeps its first-seen date across restarts"
    );
}

/// What newsboat, a real reader, sees: no new items after a restart, after touching every file,
/// after a rescan, or after an edit to an excerpt.
#[test]
fn newsboat_sees_nothing_new_after_restarts_touches_rescans_and_edits() {
    if !have("newsboat") {
        assert!(!validators_required(), "newsboat is required but not installed");
        eprintln!("NOTICE: newsboat is not installed; skipping");
        return;
    }
    // newsboat fetches the feeds by their own URLs, so the base URL is the real address.
    let site = Site::on_own_port();
    for n in 0..8 {
        let topic = if n % 2 == 0 { "Even" } else { "Odd" };
        site.put(
            &format!("n{n}.md"),
            clip(&format!("n{n}"), &format!("Reader item {n}"), &format!("excerpt: Original {n}\ntopics: [{topic}]\n")),
        );
    }
    let mut d = Daemon::start(&site);
    let urls: Vec<String> =
        ["feed.rss", "feed.atom", "topics/even.rss", "topics/odd.atom"].iter().map(|u| d.url(u)).collect();
    let reader = Newsboat::new(&urls);
    let first = reader.reload();
    assert!(first > 0);

    // A restart.
    assert!(d.stop().success());
    d = Daemon::start(&site);
    assert_eq!(reader.reload(), first, "new items after a restart");

    // Touch every file, then a rescan.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3);
    for n in 0..8 {
        std::fs::File::options()
            .write(true)
            .open(site.root().join(format!("n{n}.md")))
            .unwrap()
            .set_modified(later)
            .unwrap();
    }
    let rescans = d.counter("rescans");
    d.signal(libc::SIGUSR1);
    poll("the rescan", || (d.counter("rescans") > rescans).then_some(()));
    assert_eq!(reader.reload(), first, "new items after touching every file and a rescan");

    // Edit an excerpt.
    site.put("n3.md", clip("n3", "Reader item 3", "excerpt: Edited excerpt\ntopics: [Odd]\n"));
    poll("the edit", || {
        let f = feed(&d.url("feed.atom"));
        entry_titled(&f, "Reader item 3")
            .and_then(|e| e.summary.as_ref())
            .is_some_and(|s| s.content == "Edited excerpt")
            .then_some(())
    });
    assert_eq!(reader.reload(), first, "new items after an edit");
    reader.assert_no_errors();
}

/// A newsboat profile (HOME, urls, config, cache) subscribed to some URLs.
pub(crate) struct Newsboat {
    dir: tempfile::TempDir,
}

impl Newsboat {
    pub(crate) fn new(urls: &[String]) -> Newsboat {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("home")).unwrap();
        std::fs::write(dir.path().join("urls"), urls.join("\n") + "\n").unwrap();
        let log = dir.path().join("error.log");
        std::fs::write(dir.path().join("config"), format!("error-log \"{}\"\ndownload-timeout 30\n", log.display()))
            .unwrap();
        Newsboat { dir }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// Reloads every feed; returns how many items newsboat has stored in all.
    pub(crate) fn reload(&self) -> i64 {
        let (status, out, err) = run(Command::new("timeout")
            .args(["120", "newsboat", "-x", "reload"])
            .env("HOME", self.path("home"))
            .env("no_proxy", "127.0.0.1")
            .arg("-u")
            .arg(self.path("urls"))
            .arg("-c")
            .arg(self.path("cache.db"))
            .arg("-C")
            .arg(self.path("config")));
        assert!(status.success(), "newsboat: {out}\n{err}");
        rusqlite::Connection::open(self.path("cache.db"))
            .unwrap()
            .query_row("SELECT count(*) FROM rss_item", [], |r| r.get(0))
            .unwrap()
    }

    /// Stops and starts the daemon, then has it rescan (SIGUSR1) and reload (SIGHUP): after
    /// each, newsboat must hold exactly `first` items, and it logged no error. Returns the
    /// daemon started again.
    pub(crate) fn sees_nothing_new_after_restart_rescan_and_reload(
        &self,
        site: &Site,
        d: Daemon,
        first: i64,
    ) -> Daemon {
        assert!(d.stop().success());
        let d = Daemon::start(site);
        assert_eq!(self.reload(), first, "new items after a restart");
        let rescans = d.counter("rescans");
        d.signal(libc::SIGUSR1);
        poll("the rescan", || (d.counter("rescans") > rescans).then_some(()));
        assert_eq!(self.reload(), first, "new items after a rescan");
        let reloads = d.log().matches("configuration reloaded").count();
        d.signal(libc::SIGHUP);
        poll("the reload", || (d.log().matches("configuration reloaded").count() > reloads).then_some(()));
        assert_eq!(self.reload(), first, "new items after a reload");
        self.assert_no_errors();
        d
    }

    pub(crate) fn assert_no_errors(&self) {
        let errors = std::fs::read_to_string(self.path("error.log")).unwrap_or_default();
        assert!(errors.trim().is_empty(), "newsboat logged errors:\n{errors}");
    }
}

/// Shrinks the kernel's inotify event queue for instances created while it lives (the daemon's),
/// and restores the system's value when dropped. Needs root; `None` otherwise.
struct SmallEventQueue {
    old: String,
}

const MAX_QUEUED: &str = "/proc/sys/fs/inotify/max_queued_events";

impl SmallEventQueue {
    fn set(events: u32) -> Option<SmallEventQueue> {
        let old = std::fs::read_to_string(MAX_QUEUED).ok()?;
        std::fs::write(MAX_QUEUED, events.to_string()).ok()?;
        Some(SmallEventQueue { old })
    }
}

impl Drop for SmallEventQueue {
    fn drop(&mut self) {
        let _ = std::fs::write(MAX_QUEUED, self.old.trim());
    }
}

#[test]
fn an_event_queue_overflow_ends_in_a_rescan() {
    let site = Site::new();
    // The queue size is fixed when an inotify instance is created: shrink it for the daemon's
    // start only, then give the system its value back.
    let Some(small) = SmallEventQueue::set(32) else {
        eprintln!("NOTICE: cannot change {MAX_QUEUED} (not root); skipping the forced overflow");
        return;
    };
    let d = Daemon::start(&site);
    drop(small);
    for n in 0..3000 {
        let text = format!("---\ntitle: Flood {n}\nwebUrl: https://flood.example/{n}\n---\n");
        std::fs::write(site.root().join(format!("f{n:04}.md")), text).unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while d.status()["clippings"].as_u64() != Some(3000) {
        assert!(std::time::Instant::now() < deadline, "not all arrived: {}", d.status());
        std::thread::sleep(std::time::Duration::from_millis(100)); // poll interval
    }
    assert!(d.log().contains("event queue overflowed"), "the overflow was noticed and logged");
}

/// The real watch limit: in a user namespace of its own, the daemon may hold only a few inotify
/// watches (`/proc/sys/user/max_inotify_watches`, per namespace, so nothing else on the machine is
/// affected). It says which limit was hit and how to raise it, then scans the root on a timer.
#[test]
fn the_watch_limit_falls_back_to_scanning() {
    let probe =
        Command::new("unshare").args(["-Ur", "sh", "-c", "echo 3 > /proc/sys/user/max_inotify_watches"]).status();
    if !probe.is_ok_and(|s| s.success()) {
        assert!(!validators_required(), "unshare -Ur is needed to set a per-namespace watch limit");
        eprintln!("NOTICE: cannot create a user namespace with its own inotify limit; skipping");
        return;
    }
    let site = Site::new();
    site.write_config("poll_interval: 1\n");
    for n in 0..6 {
        site.put(&format!("folder{n}/c{n}.md"), clip(&format!("c{n}"), &format!("Deep {n}"), ""));
    }
    let limited = ["unshare", "-Ur", "sh", "-c", "echo 3 > /proc/sys/user/max_inotify_watches && exec \"$0\" \"$@\""];
    let d = Daemon::start_wrapped(&limited, &site.config());
    assert_eq!(d.status()["clippings"], 6);
    let log = d.log();
    assert!(log.contains("fs.inotify.max_user_watches") && log.contains("sysctl"), "one clear error:\n{log}");
    assert_eq!(log.matches("refused more inotify watches").count(), 1, "logged once:\n{log}");
    // Changes deep in the tree, which no watch covers, arrive by the timed scans.
    site.put("folder5/later.md", clip("later", "Found by a scan", ""));
    std::fs::remove_file(site.root().join("folder0/c0.md")).unwrap();
    poll("the scan to find the changes", || {
        let t = all_titles(&d);
        (t.contains(&"Found by a scan".to_string()) && !t.contains(&"Deep 0".to_string())).then_some(())
    });
}

/// A folder the daemon cannot read at start (mode 000, or 0o600: listed but not searched) is
/// watched as soon as its mode lets it (a change of mode is an event in its parent's watch):
/// the clippings it held appear, and so do those written into it, and into a folder below it,
/// afterwards. Run as root, the daemon drops to an unprivileged user (`unprivileged`), since
/// root reads whatever the mode says.
#[test]
fn a_folder_unreadable_at_start_is_watched_once_its_mode_allows() {
    use std::os::unix::fs::PermissionsExt;
    let Some(wrapper) = unprivileged() else { return };
    let site = Site::new();
    let root = site.root();
    let mode = |p: &std::path::Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    // The unprivileged daemon must reach the config, the root and a store folder of its own.
    mode(site.dir.path(), 0o755);
    let data = site.dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::os::unix::fs::chown(&data, Some(65534), Some(65534)).unwrap_or_else(|_| mode(&data, 0o777));
    site.put("open.md", clip("open", "In an open folder", ""));
    site.put("locked/early.md", clip("early", "There before the lock", ""));
    site.put("locked/deep/early.md", clip("deep-early", "Deep before the lock", ""));
    site.put("unsearchable/early.md", clip("unsearchable", "In a folder listed but not searched", ""));
    std::fs::create_dir(root.join("unsearchable/deep")).unwrap();
    for p in ["", "open.md", "locked", "locked/deep", "locked/early.md", "locked/deep/early.md", "unsearchable"] {
        mode(&root.join(p), if p.ends_with(".md") { 0o644 } else { 0o755 });
    }
    mode(&root.join("unsearchable/early.md"), 0o644);
    mode(&root.join("unsearchable/deep"), 0o755);
    mode(&root.join("locked"), 0o000);
    mode(&root.join("unsearchable"), 0o644);
    let args: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let d = Daemon::start_wrapped(&args, &site.config());
    // The first reconcile is over (ready), and could read neither folder.
    wait_for_titles(&d, "the open folder's clipping alone", &["In an open folder"]);

    mode(&root.join("locked"), 0o755);
    mode(&root.join("unsearchable"), 0o755);
    wait_for_titles(
        &d,
        "the folders' clippings once readable",
        &["In an open folder", "There before the lock", "Deep before the lock", "In a folder listed but not searched"],
    );
    // Written after: seen only if the folders (and those below them) are watched now.
    site.put("locked/later.md", clip("later", "Written after the chmod", ""));
    site.put("locked/deep/later.md", clip("deep-later", "Written deep after the chmod", ""));
    site.put("unsearchable/deep/later.md", clip("unsearchable-later", "Written below the searchable folder", ""));
    wait_for_titles(
        &d,
        "clippings written into the folders after the chmod",
        &[
            "In an open folder",
            "There before the lock",
            "Deep before the lock",
            "In a folder listed but not searched",
            "Written after the chmod",
            "Written deep after the chmod",
            "Written below the searchable folder",
        ],
    );
}
