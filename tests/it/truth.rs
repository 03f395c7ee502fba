//! Every answer tells the truth: If-Modified-Since after two changes within one second, `updated`
//! meaning edited, and a failing store that shows in status and metrics.

use std::time::Duration;

use crate::support::*;

fn clip(key: &str, title: &str, date: &str) -> String {
    format!("---\ntitle: \"{title}\"\npublishedDateTime: {date}\nwebUrl: https://news.example/{key}\n---\n")
}

/// Writes `title` into `a.md` and waits until the feed of everything shows it; returns the
/// feed's `Last-Modified` then.
fn edit_and_wait(site: &Site, d: &Daemon, title: &str) -> String {
    site.put("a.md", clip("a", title, "2024-05-01T10:00:00Z"));
    poll(&format!("{title} in the feed"), || {
        let r = get(&d.url("feed.atom"), &[]);
        (r.status == 200 && r.text().contains(title)).then(|| r.header("last-modified").unwrap().to_string())
    })
}

/// Two versions of a feed within one second share a `Last-Modified`. Once the clock has passed
/// that second the feed's date moves to a later one: a client holding the shared date gets the
/// current version once, then `304 Not Modified` again. Before, the date stayed ambiguous (and
/// every If-Modified-Since poll got the whole feed) until the feed's next change.
#[test]
fn an_ambiguous_last_modified_settles_at_a_later_second() {
    let site = Site::new();
    site.put("a.md", clip("a", "Version zero", "2024-05-01T10:00:00Z"));
    let d = Daemon::start(&site);
    let url = d.url("feed.atom");
    let mut shared = None;
    for attempt in 0..10 {
        // Start right after a second boundary, so both edits fit in the second.
        let sub = chrono::Utc::now().timestamp_subsec_millis();
        std::thread::sleep(Duration::from_millis(u64::from(1000 - sub))); // wait for the second boundary
        let first = edit_and_wait(&site, &d, &format!("Version {attempt}a"));
        let second = edit_and_wait(&site, &d, &format!("Version {attempt}b"));
        if first == second {
            shared = Some((second, format!("Version {attempt}b")));
            break;
        }
    }
    let (lm, title) = shared.expect("two changes within one second");
    // A client that saw the first version and holds the shared date is never told it is current.
    let held = get(&url, &[("If-Modified-Since", &lm)]);
    let moved = poll("the shared date to settle at a later second", || {
        let r = get(&url, &[("If-Modified-Since", &lm)]);
        let now = r.header("last-modified").map(str::to_string);
        match r.status {
            200 if now.as_deref() != Some(lm.as_str()) => Some(r),
            200 => None,
            s => panic!("a change hidden: {s} for If-Modified-Since {lm}"),
        }
    });
    assert_eq!(held.status, 200, "the second version is not hidden behind the shared date");
    assert!(moved.text().contains(&title), "the full answer is the current version");
    let new_lm = moved.header("last-modified").unwrap().to_string();
    let parse = |s: &str| httpdate::parse_http_date(s).unwrap();
    assert!(parse(&new_lm) > parse(&lm), "{new_lm} is after {lm}");
    // Then 304s again, for the new date, and the content did not change.
    assert_eq!(get(&url, &[("If-Modified-Since", &new_lm)]).status, 304);
    let again = get(&url, &[]);
    assert_eq!(again.header("last-modified"), Some(new_lm.as_str()), "the date stays put");
    assert_eq!(again.header("etag"), moved.header("etag"));
}

/// `(published, updated)` of each Atom entry of a document, by title.
fn atom_dates(d: &Daemon, path: &str) -> std::collections::BTreeMap<String, (String, String)> {
    let f = feed(&d.url(path));
    f.entries
        .iter()
        .map(|e| {
            let title = e.title.as_ref().map(|t| t.content.clone()).unwrap_or_default();
            let published = e.published.map(|t| t.to_rfc3339()).unwrap_or_default();
            let updated = e.updated.map(|t| t.to_rfc3339()).unwrap_or_default();
            (title, (published, updated))
        })
        .collect()
}

/// `(date_published, date_modified)` of each JSON Feed item, by title.
fn json_dates(d: &Daemon, path: &str) -> std::collections::BTreeMap<String, (String, String)> {
    let r = get(&d.url(path), &[]);
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let when = |s: &serde_json::Value| chrono::DateTime::parse_from_rfc3339(s.as_str().unwrap()).unwrap().to_rfc3339();
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["title"].as_str().unwrap().to_string(), (when(&i["date_published"]), when(&i["date_modified"]))))
        .collect()
}

/// A clipping never edited since clipfeed first saw it is updated at its published time, in Atom
/// and JSON Feed; an edit moves it to the edit time; a store rebuilt from the same files gives
/// the same values. Before, every clipping was updated at the time it was first seen.
#[test]
fn updated_is_the_published_time_until_an_edit() {
    let site = Site::new();
    site.put("a.md", clip("a", "Alpha", "2024-05-01T10:00:00Z"));
    site.put("b.md", clip("b", "Beta", "2024-05-02T11:30:00Z"));
    let d = Daemon::start(&site);
    let atom = atom_dates(&d, "feed.atom");
    assert_eq!(atom["Alpha"], ("2024-05-01T10:00:00+00:00".into(), "2024-05-01T10:00:00+00:00".into()));
    assert_eq!(atom["Beta"], ("2024-05-02T11:30:00+00:00".into(), "2024-05-02T11:30:00+00:00".into()));
    let json = json_dates(&d, "feed.json");
    assert_eq!(json["Alpha"], atom["Alpha"]);
    assert_eq!(json["Beta"], atom["Beta"]);

    // An edit (a new title) dates the clipping at the edit.
    let before_edit = chrono::Utc::now().timestamp();
    site.put("a.md", clip("a", "Alpha corrected", "2024-05-01T10:00:00Z"));
    let edited = poll("the edit", || atom_dates(&d, "feed.atom").get("Alpha corrected").cloned());
    assert_eq!(edited.0, "2024-05-01T10:00:00+00:00");
    let updated = chrono::DateTime::parse_from_rfc3339(&edited.1).unwrap().timestamp();
    assert!(updated >= before_edit, "updated {} is the edit time", edited.1);
    assert_eq!(json_dates(&d, "feed.json")["Alpha corrected"], edited);
    assert_eq!(atom_dates(&d, "feed.atom")["Beta"], atom["Beta"], "the other clipping is untouched");
    d.stop();

    // The store rebuilt from the same files: the same values for what was never edited.
    site.put("a.md", clip("a", "Alpha", "2024-05-01T10:00:00Z"));
    std::fs::remove_dir_all(site.dir.path().join("data")).unwrap();
    let d = Daemon::start(&site);
    let rebuilt = atom_dates(&d, "feed.atom");
    assert_eq!(rebuilt, atom, "a rebuilt store dates every clipping as the first one did");
    assert_eq!(json_dates(&d, "feed.json"), json);
}

/// Over the real corpus, imported at once, no two entries of one Atom feed share an `updated`
/// unless they share their `published` too (the W3C validator's `DuplicateUpdated`), and every
/// entry is updated at its published time.
#[test]
fn an_import_dates_no_entry_updated_at_import() {
    let Some(base) = shared("corpus") else { return };
    let base = base.join("everyday-cc-ai");
    let roots = [base.join("_news"), base.join("_archive").join("_news")];
    let site = Site::new();
    let roots_yaml: Vec<String> = roots.iter().map(|r| format!("{:?}", r.display().to_string())).collect();
    std::fs::write(
        site.config(),
        format!(
            "listen: 127.0.0.1:0\nbase_url: http://feeds.test/cf/\nclippings: [{}]\nstore: data/c.db\nitems_per_feed: 50\n",
            roots_yaml.join(", ")
        ),
    )
    .unwrap();
    let d = Daemon::start(&site);
    let opml = get(&d.url("feeds.opml"), &[]).text();
    let paths: Vec<String> = opml
        .split("xmlUrl=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter_map(|u| u.strip_prefix("http://feeds.test/cf/"))
        .map(|p| p.replace(".rss", ".atom").replace(".xml", ".atom"))
        .collect();
    assert!(paths.len() > 3, "the corpus has topic and provider feeds: {paths:?}");
    let mut entries = 0;
    for path in paths.iter().filter(|p| p.ends_with(".atom")) {
        let dates = atom_dates(&d, path);
        let mut by_updated: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for (title, (published, updated)) in &dates {
            assert_eq!(published, updated, "{path}: {title} was never edited");
            by_updated.entry(updated.as_str()).or_default().push(published.as_str());
        }
        for (updated, published) in by_updated {
            assert!(published.windows(2).all(|w| w[0] == w[1]), "{path}: entries share updated {updated} by import");
        }
        entries += dates.len();
    }
    assert!(entries > 50, "entries over every feed were looked at ({entries})");
}

/// The store's file, as the test site configures it.
fn store_file(site: &Site) -> std::path::PathBuf {
    site.dir.path().join("data/clipfeed.db")
}

/// A value of `/metrics` (a line `name value`).
fn metric(d: &Daemon, name: &str) -> f64 {
    let text = get(&d.url("metrics"), &[]).text();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

/// A clipping large enough to need new pages in the store.
fn big_clip(key: &str, title: &str) -> String {
    let body = format!("{} ", title).repeat(2000);
    format!("{}{body}\n", clip(key, title, "2024-06-01T09:00:00Z"))
}

/// While the store cannot take writes (a full disk, simulated by SQLite's page limit through
/// the test hook), status says so naming the file and the files waiting, `clipfeed_store_ok` is
/// 0 and the errors are counted, the last feeds keep serving; once there is room the waiting
/// clippings are stored and published within seconds.
#[test]
fn a_full_store_shows_in_status_and_metrics_and_recovers() {
    let site = Site::new();
    site.put("a.md", clip("a", "Before the disk filled", "2024-05-01T10:00:00Z"));
    let pages = site.dir.path().join("pages");
    let mut cmd = serve_command(&[] as &[&str], &site.config());
    cmd.env("CLIPFEED_TEST_STORE_PAGES", &pages);
    let d = Daemon::spawn(cmd);
    assert_eq!(metric(&d, "clipfeed_store_ok"), 1.0);
    assert_eq!(d.status()["store_ok"], true);
    // The disk is full: the store may not grow by one page.
    std::fs::write(&pages, "1").unwrap();
    for n in 0..5 {
        site.put(&format!("big{n}.md"), big_clip(&format!("big{n}"), &format!("Waiting {n}")));
    }
    let status = poll("the store failure in status", || {
        let s = d.status();
        (s["store_ok"] == false && s["files_waiting"].as_u64().unwrap_or(0) > 0).then_some(s)
    });
    let why = status["store_error"].as_str().expect("store_error names the failure");
    let file = store_file(&site).display().to_string();
    assert!(why.contains(&file), "store_error names the store file {file}: {why}");
    assert!(why.contains("full"), "store_error says why: {why}");
    assert_eq!(metric(&d, "clipfeed_store_ok"), 0.0);
    assert!(metric(&d, "clipfeed_store_errors_total") >= 1.0);
    assert!(metric(&d, "clipfeed_clippings{state=\"pending\"}") >= 1.0, "the waiting files are pending");
    assert!(d.log().contains(&file), "the log names the store file");
    // The node keeps serving its last feeds, and stays ready (see README, Operations).
    let r = get(&d.url("feed.atom"), &[]);
    assert_eq!(r.status, 200);
    assert!(r.text().contains("Before the disk filled") && !r.text().contains("Waiting 0"));
    assert_eq!(get(&d.url("readyz"), &[]).status, 200);
    // Room again: every waiting clipping is stored and published, and status says all is well.
    std::fs::remove_file(&pages).unwrap();
    let s = poll("recovery", || {
        let s = d.status();
        (s["store_ok"] == true).then_some(s)
    });
    assert!(s["store_error"].is_null(), "{s}");
    assert_eq!(s["files_waiting"], 0);
    assert_eq!(metric(&d, "clipfeed_store_ok"), 1.0);
    let titles = titles(&feed(&d.url("feed.atom")));
    for n in 0..5 {
        assert!(titles.contains(&format!("Waiting {n}")), "Waiting {n} published after recovery: {titles:?}");
    }
}

/// A store file deleted, then replaced, under the running daemon is noticed within seconds,
/// logged as an error naming the file, counted and shown in status; the feeds keep serving.
#[test]
fn a_store_file_deleted_or_replaced_under_the_daemon_is_noticed() {
    let site = Site::new();
    site.put("a.md", clip("a", "Still served", "2024-05-01T10:00:00Z"));
    let d = Daemon::start(&site);
    let file = store_file(&site);
    let name = file.display().to_string();
    std::fs::remove_file(&file).unwrap();
    let s = poll("the deleted store in status", || {
        let s = d.status();
        (s["store_ok"] == false).then_some(s)
    });
    let why = s["store_error"].as_str().unwrap();
    assert!(why.contains(&name) && why.contains("gone"), "{why}");
    assert_eq!(metric(&d, "clipfeed_store_ok"), 0.0);
    assert!(metric(&d, "clipfeed_store_errors_total") >= 1.0);
    assert!(d.log().lines().any(|l| l.contains("ERROR") && l.contains(&name)), "logged as an error:\n{}", d.log());
    let r = get(&d.url("feed.atom"), &[]);
    assert!(r.status == 200 && r.text().contains("Still served"));
    // Another file at the path is not the store the daemon writes either.
    std::fs::write(&file, b"not the store").unwrap();
    poll("the replaced store in status", || {
        let s = d.status();
        s["store_error"].as_str().is_some_and(|w| w.contains("replaced") && w.contains(&name)).then_some(())
    });
    assert_eq!(d.status()["store_ok"], false);
}

fn clipfeed(args: &[&str], site: &Site) -> (std::process::ExitStatus, String, String) {
    run(std::process::Command::new(env!("CARGO_BIN_EXE_clipfeed")).args(args).arg("--config").arg(site.config()))
}

/// The token of a private topic, from `clipfeed token list`.
fn token_of(site: &Site, stem: &str) -> String {
    let (status, out, err) = clipfeed(&["token", "list"], site);
    assert!(status.success(), "{err}");
    let line = out.lines().find(|l| l.starts_with(&format!("{stem}\t"))).unwrap_or_else(|| panic!("{out}"));
    line.split('\t').nth(1).unwrap().to_string()
}

/// The files beside the store whose names start with the store's and carry `infix`.
fn set_aside(site: &Site, infix: &str) -> Vec<String> {
    std::fs::read_dir(site.dir.path().join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("clipfeed.db.") && n.contains(infix) && !n.ends_with("-wal") && !n.ends_with("-shm"))
        .collect()
}

/// `clipfeed store rebuild` keeps the private-feed tokens of a store it can read; a store that is
/// not a store at all stops the start with an error naming the file and that command, which
/// moves it aside as `<file>.corrupt-<time>` and rebuilds it from the clippings.
#[test]
fn store_rebuild_keeps_tokens_and_a_corrupt_store_names_its_file() {
    let site = Site::new();
    site.write_config("topics:\n  - name: Internal\n    private: true\n");
    site.put("a.md", clip("a", "Public news", "2024-05-01T10:00:00Z"));
    site.put("m.md", "---\ntitle: Memo\ntopics: [Internal]\nwebUrl: https://news.example/m\n---\n");
    let gone = "---\ntitle: Gone soon\ntopics: [Kites]\nwebUrl: https://news.example/g\nprovider: {name: Gone Daily, domain: gone.example}\n---\n";
    site.put("g.md", gone);
    let d = Daemon::start(&site);
    let token = token_of(&site, "topics/internal");
    // The last clipping of a topic and of a news site goes: their feeds stay, empty, with its
    // tombstone.
    std::fs::remove_file(site.root().join("g.md")).unwrap();
    let emptied =
        ["topics/kites.atom", "topics/kites.json", "providers/gone.example.atom", "providers/gone.example.rss"];
    let as_emptied = |d: &Daemon| {
        for p in emptied {
            let r = get(&d.url(p), &[]);
            assert_eq!(r.status, 200, "{p}");
            assert!(!r.text().contains("Gone soon"), "{p}");
        }
        let atom = get(&d.url("topics/kites.atom"), &[]).text();
        assert!(atom.contains("deleted-entry"), "the tombstone:\n{atom}");
        assert!(get(&d.url("providers/gone.example.json"), &[]).text().contains("Gone Daily"), "its name");
    };
    poll("the emptied feeds", || (!get(&d.url("topics/kites.atom"), &[]).text().contains("Gone soon")).then_some(()));
    as_emptied(&d);
    d.stop();

    // A readable store: rebuilt, the token, the tombstones and the emptied feeds kept.
    let (status, out, err) = clipfeed(&["store", "rebuild"], &site);
    assert!(status.success(), "{out}\n{err}");
    assert!(out.contains("kept 1 rows of tokens"), "{out}");
    assert!(out.contains("rows of tombstones") && !out.contains("kept 0 rows of tombstones"), "{out}");
    assert_eq!(set_aside(&site, ".old-").len(), 1, "{out}");
    assert_eq!(token_of(&site, "topics/internal"), token, "the token survives the rebuild");
    let d = Daemon::start(&site);
    let private = get(&d.url(&format!("topics/internal.atom?token={token}")), &[]);
    assert!(private.status == 200 && private.text().contains("Memo"));
    as_emptied(&d);
    d.stop();

    // Not a store at all: the start stops, naming the file and the command.
    let file = store_file(&site);
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
    std::fs::write(&file, vec![0x5a; 8192]).unwrap();
    let (status, _, err) = clipfeed(&["serve"], &site);
    assert!(!status.success());
    assert!(err.contains(&file.display().to_string()) && err.contains("clipfeed store rebuild"), "{err}");
    let (status, out, err) = clipfeed(&["store", "rebuild"], &site);
    assert_eq!(set_aside(&site, ".corrupt-").len(), 1, "{out}\n{err}");
    assert!(!status.success(), "the tokens could not be kept, and the exit status says so:\n{out}");
    assert!(out.contains("could not keep tokens"), "{out}");
    let d = Daemon::start(&site);
    assert!(titles(&feed(&d.url("feed.atom"))).contains(&"Public news".to_string()));
}
