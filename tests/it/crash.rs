//! Hard faults against the real daemon: SIGKILL at random moments while it ingests thousands of
//! files, a store folder it may not write, and a full disk. After each, the store passes SQLite's
//! `PRAGMA integrity_check`, and once the daemon has reconciled, its feeds equal those of a clean
//! run over the same files. Feeds are compared through the JSON feed (serde_json) and checked
//! with feed-rs; the store is opened with rusqlite, never through clipfeed's code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// The `base_url` that `Site::write_config` sets.
const BASE: &str = "http://feeds.test/cf/";
/// Large enough that every feed's subscription document holds all of its items.
const CONFIG: &str = "items_per_feed: 10000\n";

const TOPICS: [&str; 12] = [
    "Robots",
    "Climate",
    "Space",
    "Chips",
    "Health",
    "Energy",
    "Oceans",
    "Cities",
    "Courts",
    "Markets",
    "Farming",
    "Languages",
];
const PROVIDERS: [(&str, &str); 8] = [
    ("Daily Wire Service", "wire.example"),
    ("The Morning Post", "post.example"),
    ("Tech Weekly", "techweekly.example"),
    ("Science Letters", "letters.example"),
    ("Harbour Gazette", "harbour.example"),
    ("Valley Courier", "courier.example"),
    ("North Times", "north.example"),
    ("Open Radio", "radio.example"),
];

/// Clipping number `i` in its `edition`: a few topics, a provider, a unique date and URL. One in
/// 97 has no title, so the store also carries rejections through the crashes.
fn clipping(i: usize, edition: u32) -> String {
    let date = format!("2024-03-{:02}T{:02}:{:02}:00Z", 1 + i / 1440, (i / 60) % 24, i % 60);
    if i % 97 == 13 {
        return format!("---\npublishedDateTime: {date}\nwebUrl: https://wire.example/untitled/{i}\n---\n");
    }
    let (name, domain) = PROVIDERS[i % PROVIDERS.len()];
    let topics = [TOPICS[i % TOPICS.len()], TOPICS[(i * 7 + 3) % TOPICS.len()]];
    format!(
        "---\ntitle: \"{}\"\npublishedDateTime: {date}\nwebUrl: https://{domain}/story/{i}\nexcerpt: An excerpt of story {i}.\nprovider:\n  name: {name}\n  domain: {domain}\ntopics: [{}, {}]\n---\nBody of story {i}, edition {edition}.\n\nA second paragraph with *emphasis* and a [link](https://{domain}/more/{i}).\n",
        title(i, edition),
        topics[0],
        topics[1]
    )
}

fn title(i: usize, edition: u32) -> String {
    format!("Story {i} edition {edition}")
}

fn file_name(i: usize) -> String {
    format!("{:02}/clip-{i:05}.md", i % 16)
}

/// The clippings the test has written: number → edition.
struct Files {
    root: PathBuf,
    live: BTreeMap<usize, u32>,
    next: usize,
}

impl Files {
    fn write(&mut self, i: usize, edition: u32) {
        let path = self.root.join(file_name(i));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, clipping(i, edition)).unwrap();
        if i % 97 == 13 {
            // Dated back, so it is refused at once, not looked at again as a file still being
            // written: the rejections then do not depend on timing.
            let f = std::fs::File::options().write(true).open(&path).unwrap();
            f.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600)).unwrap();
        }
        self.live.insert(i, edition);
    }

    fn add(&mut self, n: usize) {
        for _ in 0..n {
            self.write(self.next, 1);
            self.next += 1;
        }
    }

    /// Edits `n` and deletes `d` clippings chosen by `rng`.
    fn churn(&mut self, rng: &mut Rng, n: usize, d: usize) {
        for _ in 0..n {
            let i = self.pick(rng);
            let e = self.live[&i] + 1;
            self.write(i, e);
        }
        for _ in 0..d {
            let i = self.pick(rng);
            std::fs::remove_file(self.root.join(file_name(i))).unwrap();
            self.live.remove(&i);
        }
    }

    fn pick(&self, rng: &mut Rng) -> usize {
        *self.live.keys().nth(rng.below(self.live.len() as u64) as usize).unwrap()
    }

    /// The titles the all-feed must show.
    fn titles(&self) -> BTreeSet<String> {
        self.live.iter().filter(|(i, _)| *i % 97 != 13).map(|(i, e)| title(*i, *e)).collect()
    }

    fn rejected(&self) -> BTreeSet<String> {
        self.live.keys().filter(|i| *i % 97 == 13).map(|i| file_name(*i)).collect()
    }
}

/// What a reader of every feed sees: per feed (from the OPML, plus the all-feed), the items'
/// (id, title, date), sorted; and the rejected paths.
#[derive(Debug, PartialEq)]
struct Snapshot {
    feeds: BTreeMap<String, Vec<(String, String, String)>>,
    rejected: BTreeSet<String>,
}

fn snapshot(base: &str) -> Snapshot {
    let url = |p: &str| format!("{base}{p}");
    let opml = get(&url("feeds.opml"), &[]).text();
    let mut stems = vec!["feed".to_string()];
    for part in opml.split("xmlUrl=\"").skip(1) {
        let u = &part[..part.find('"').unwrap()];
        let rel = u.strip_prefix(BASE).unwrap_or_else(|| panic!("{u}"));
        stems.push(rel.rsplit_once('.').unwrap().0.to_string());
    }
    let mut feeds = BTreeMap::new();
    for stem in stems {
        let r = get(&url(&format!("{stem}.json")), &[]);
        assert_eq!(r.status, 200, "{stem}.json");
        feed_rs::parser::parse(&r.body[..]).unwrap_or_else(|e| panic!("feed-rs cannot parse {stem}.json: {e}"));
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        let mut items: Vec<(String, String, String)> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|it| {
                let s = |k: &str| it[k].as_str().unwrap_or_else(|| panic!("{stem}: item without {k}")).to_string();
                (s("id"), s("title"), s("date_published"))
            })
            .collect();
        items.sort();
        feeds.insert(stem, items);
    }
    let status: Value = serde_json::from_slice(&get(&url("api/status"), &[]).body).unwrap();
    let rejected =
        status["rejected"].as_array().unwrap().iter().map(|r| r["path"].as_str().unwrap().to_string()).collect();
    Snapshot { feeds, rejected }
}

/// Starts the daemon and waits until it has listened and reconciled.
fn start_ready(config: &Path) -> (Process, String) {
    let mut p = Process::start(config);
    let base = p.base();
    poll("the first reconcile", || {
        let r = get(&format!("{base}api/status"), &[]);
        (r.status == 200 && serde_json::from_slice::<Value>(&r.body).unwrap()["ready"] == true).then_some(())
    });
    (p, base)
}

#[track_caller]
fn assert_sound(db: &Path, when: &str) {
    if db.exists() {
        let check = integrity_check(db);
        assert_eq!(check, "ok", "{when}: integrity_check of {}", db.display());
    }
}

#[test]
fn sigkill_during_ingest_loses_nothing_and_corrupts_nothing() {
    const INITIAL: usize = 1200;
    const ROUNDS: usize = 20;
    let mut rng = Rng::from_env("CLIPFEED_CRASH_SEED");
    let site = Site::new();
    site.write_config(CONFIG);
    let db = site.dir.path().join("data/clipfeed.db");
    let mut files = Files { root: site.root(), live: BTreeMap::new(), next: 0 };
    files.add(INITIAL);

    // A quarter of the kills land while it opens the store and publishes what it holds (before
    // it listens), the rest while it reconciles: `window` after it starts listening shrinks when
    // a kill comes after the reconcile has finished.
    let mut to_listen = Duration::from_millis(1000);
    let mut window = Duration::from_millis(2000);
    let mut phases: BTreeMap<&str, usize> = BTreeMap::new();
    let mut resumed = 0;
    for round in 0..ROUNDS {
        if round > 0 {
            files.churn(&mut rng, 40, 10);
            files.add(80);
        }
        let early = rng.below(4) == 0;
        let started = Instant::now();
        let mut p = Process::start(&site.config());
        // Files that arrive while it starts go through the watcher (or the reconcile).
        if round % 2 == 1 {
            files.add(30);
        }
        let delay = if early {
            Duration::from_millis(rng.below(to_listen.as_millis() as u64))
        } else {
            p.base();
            to_listen = started.elapsed();
            to_listen + Duration::from_millis(rng.below(window.as_millis() as u64))
        };
        std::thread::sleep(delay.saturating_sub(started.elapsed())); // the random kill point
        let log = p.log();
        if let Some(status) = p.exited() {
            panic!("round {round}: the daemon exited by itself ({status}):\n{log}");
        }
        let phase = if !log.contains("listening on") {
            "before listening"
        } else if !log.contains("clippings reconciled") {
            "during the reconcile"
        } else {
            window = window * 3 / 4;
            "after the reconcile"
        };
        if log.contains("finishing the refresh of items an interrupted batch recorded") {
            resumed += 1;
        }
        p.kill();
        *phases.entry(phase).or_default() += 1;
        eprintln!("round {round}: killed after {delay:?} {phase}; {} files", files.live.len());
        assert_sound(&db, &format!("after kill {round} ({phase}, {delay:?})"));
    }
    eprintln!("kills: {phases:?}; restarts that resumed an interrupted batch: {resumed}");

    // Restarted, it reconciles and serves every clipping.
    let (p, base) = start_ready(&site.config());
    let crashed = snapshot(&base);
    let p_log = p.log();
    drop(p);
    let want = files.titles();
    let all: BTreeSet<String> = crashed.feeds["feed"].iter().map(|(_, t, _)| t.clone()).collect();
    assert_eq!(all.len(), crashed.feeds["feed"].len(), "each clipping once in the all-feed");
    assert_eq!(
        all,
        want,
        "missing: {:?}, extra: {:?}\n{p_log}",
        want.difference(&all).take(10).collect::<Vec<_>>(),
        all.difference(&want).take(10).collect::<Vec<_>>()
    );
    assert_eq!(crashed.rejected, files.rejected());
    assert_sound(&db, "after the last restart");

    // A clean run over the same files, in a fresh state folder, shows the same feeds.
    let clean_dir = tempfile::tempdir().unwrap();
    let clean_config = clean_dir.path().join("clipfeed.yaml");
    std::fs::write(
        &clean_config,
        format!(
            "listen: 127.0.0.1:0\nbase_url: {BASE}\nclippings: [{}]\nstore: {}\ntitle: Test Clippings\n{CONFIG}",
            site.root().display(),
            clean_dir.path().join("data/clipfeed.db").display()
        ),
    )
    .unwrap();
    let (clean_p, clean_base) = start_ready(&clean_config);
    let clean = snapshot(&clean_base);
    drop(clean_p);
    assert_eq!(crashed.feeds.keys().collect::<Vec<_>>(), clean.feeds.keys().collect::<Vec<_>>(), "the same feeds");
    for (stem, items) in &clean.feeds {
        assert!(&crashed.feeds[stem] == items, "{stem} differs from the clean run's");
    }
    assert_eq!(crashed, clean);
}

/// A clipping with a body of about `kib` KiB.
fn bulky(i: usize, kib: usize) -> String {
    let para = format!("Paragraph of the long story {i}, which goes on and on for the sake of size. ");
    format!("{}\n{}\n", clipping(i, 1).trim_end(), para.repeat(kib * 1024 / para.len()))
}

/// Runs `cmd` until it exits (at most `DEADLINE`); its status and standard error.
fn run_to_exit(mut cmd: Command) -> (std::process::ExitStatus, String) {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let status = poll("clipfeed to exit", || child.try_wait().unwrap());
    (status, reader.join().unwrap())
}

#[test]
fn a_store_folder_it_may_not_write_is_a_clear_error_and_no_damage() {
    use std::os::unix::fs::PermissionsExt;
    // Root writes anywhere: the daemon then runs as `nobody`, so the folder's mode applies.
    let Some(wrapper) = unprivileged() else { return };
    let mode = |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    let site = Site::new();
    site.write_config(CONFIG);
    mode(site.dir.path(), 0o755);
    let data = site.dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    if !wrapper.is_empty() {
        std::os::unix::fs::chown(&data, Some(65534), Some(65534)).unwrap();
    }
    let db = data.join("clipfeed.db");
    let mut files = Files { root: site.root(), live: BTreeMap::new(), next: 0 };
    files.add(60);

    // No store yet, and none can be made: it exits non-zero, naming the store and the cause.
    mode(&data, 0o555);
    let (status, err) = run_to_exit(serve_command(&wrapper, &site.config()));
    assert!(!status.success(), "{status}\n{err}");
    assert!(err.contains(&db.display().to_string()) || err.contains("data/clipfeed.db"), "names the store:\n{err}");
    assert!(
        err.to_lowercase().contains("unable to open") || err.contains("ermission denied") || err.contains("read-only"),
        "{err}"
    );
    assert!(!db.exists() || integrity_check(&db) == "ok");

    // A store written, then its folder made read-only (555), and then its files too (444).
    mode(&data, 0o755);
    let args: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let d = Daemon::start_wrapped(&args, &site.config());
    let before = snapshot(&d.base);
    assert_eq!(before.feeds["feed"].len(), files.titles().len());
    assert!(d.stop().success());
    assert_sound(&db, "after a clean stop");
    for files_too in [false, true] {
        mode(&data, 0o555);
        if files_too {
            for e in std::fs::read_dir(&data).unwrap() {
                mode(&e.unwrap().path(), 0o444);
            }
        }
        let mut p = Process::start_command(serve_command(&wrapper, &site.config()));
        let outcome = poll("it to exit or listen", || match p.exited() {
            Some(status) => Some(Err(status)),
            None => p.log().contains("listening on").then_some(Ok(())),
        });
        let what = if files_too { "store files and folder read-only" } else { "store folder read-only" };
        match outcome {
            Err(status) => {
                let log = p.log();
                assert!(!status.success(), "{log}");
                assert!(log.contains("data/clipfeed.db"), "the error names the store:\n{log}");
                eprintln!("{what}: exited with {status}: {}", log.lines().last().unwrap_or(""));
            }
            Ok(()) => {
                // Serving: the feeds it had, and an error in the log if it could not write.
                let base = p.base();
                poll("the first reconcile to end", || {
                    let log = p.log();
                    (log.contains("clippings reconciled") || log.contains("update failed")).then_some(())
                });
                let now = snapshot(&base);
                let log = p.log();
                assert!(now == before, "{what}: it serves what it had: {now:?}\n{log}");
                let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
                eprintln!("{what}: kept serving the old feeds; errors: {errors:?}");
                p.kill();
            }
        }
        for e in std::fs::read_dir(&data).unwrap() {
            mode(&e.unwrap().path(), 0o644);
        }
        mode(&data, 0o755);
        assert_sound(&db, what);
    }
    let d = Daemon::start_wrapped(&args, &site.config());
    assert_eq!(snapshot(&d.base), before, "writable again, it serves the same feeds");
}

#[test]
fn a_full_disk_is_a_clear_error_and_no_damage() {
    use std::os::unix::process::CommandExt;
    let site = Site::new();
    site.write_config(CONFIG);
    let data = site.dir.path().join("data");
    let db = data.join("clipfeed.db");
    let mut files = Files { root: site.root(), live: BTreeMap::new(), next: 0 };
    files.add(100);
    // A 3 MiB tmpfs when this process may mount one (root); else a 3 MiB limit on the size of
    // any file the daemon writes (RLIMIT_FSIZE, with SIGXFSZ ignored so writes fail with EFBIG).
    const LIMIT: u64 = 3 * 1024 * 1024;
    let forced = std::env::var_os("CLIPFEED_TEST_FSIZE").is_some();
    let tmpfs = if forced { None } else { Tmpfs::mount(&data, "3m") };
    let mut cmd = serve_command(&[] as &[&str], &site.config());
    if tmpfs.is_none() {
        eprintln!("disk full simulated with RLIMIT_FSIZE ({LIMIT} bytes)");
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let lim = libc::rlimit { rlim_cur: LIMIT, rlim_max: LIMIT };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    } else {
        eprintln!("disk full simulated with a 3 MiB tmpfs");
    }
    let mut d = Daemon::spawn(cmd);
    let before = snapshot(&d.base);
    assert_eq!(before.feeds["feed"].len(), files.titles().len());

    // Far more than fits.
    for _ in 0..500 {
        let i = files.next;
        files.next += 1;
        let path = files.root.join(file_name(i));
        std::fs::write(&path, bulky(i, 6)).unwrap();
        files.live.insert(i, 1);
    }
    let failed = poll("the store to fill up", || {
        if let Some(status) = d.exited() {
            return Some(Err(status));
        }
        d.log().lines().find(|l| l.contains("update failed")).map(|l| Ok(l.to_string()))
    });
    match failed {
        Ok(line) => {
            eprintln!("full: {line}");
            assert!(line.contains("full") || line.contains("File too large") || line.contains("I/O"), "{line}");
            // Still serving: every feed parses, and holds what it had and at most what exists.
            let now = snapshot(&d.base);
            let had: BTreeSet<_> = before.feeds["feed"].iter().map(|(_, t, _)| t.clone()).collect();
            let has: BTreeSet<_> = now.feeds["feed"].iter().map(|(_, t, _)| t.clone()).collect();
            assert!(had.is_subset(&has) && has.is_subset(&files.titles()));
            assert!(d.stop().success(), "it stops cleanly");
        }
        Err(status) => {
            let log = d.log();
            assert!(!status.success(), "{log}");
            eprintln!("full: exited with {status}: {}", log.lines().last().unwrap_or(""));
        }
    }
    assert_sound(&db, "after the disk filled up");

    // With room again, a restart serves every clipping.
    if let Some(t) = &tmpfs {
        t.remount("size=256m");
    }
    let (p, base) = start_ready(&site.config());
    let all: BTreeSet<_> = snapshot(&base).feeds["feed"].iter().map(|(_, t, _)| t.clone()).collect();
    assert_eq!(all, files.titles());
    drop(p);
    assert_sound(&db, "after the restart with room");
}

#[test]
fn a_panic_in_a_job_leaves_no_half_state() {
    if !cfg!(debug_assertions) {
        eprintln!("NOTICE: the panic hook exists in debug builds only; skipped");
        return;
    }
    let site = Site::new();
    site.write_config("topics:\n  - name: Robots\n");
    let clip = |key: &str, title: &str| {
        format!(
            "---\ntitle: {title}\nwebUrl: https://panic.example/{key}\ntopics: [Robots]\nprovider:\n  name: Panic News\n  domain: panic.example\n---\nText.\n"
        )
    };
    site.put("a.md", clip("a", "First"));
    site.put("b.md", clip("b", "Second"));
    let mut cmd = serve_command(&[] as &[&str], &site.config());
    cmd.env("CLIPFEED_TEST_PANIC_ON", "explode");
    let d = Daemon::spawn(cmd);
    assert_eq!(d.status()["clippings"], 2);

    // The job that records this clipping panics once, just before its commit; the rescan that
    // follows records it.
    site.put("explode.md", clip("explode", "Third"));
    poll("the panic", || d.log().contains("injected panic").then_some(()));
    let all = poll("the clipping after the retry", || {
        let f = feed(&d.url("feed.atom"));
        entry_titled(&f, "Third").is_some().then_some(f)
    });
    let mut seen = titles(&all);
    seen.sort();
    assert_eq!(seen, ["First", "Second", "Third"], "every clipping once");
    for stem in ["topics/robots", "providers/panic.example"] {
        assert_eq!(titles(&feed(&d.url(&format!("{stem}.atom")))).len(), 3, "{stem}");
    }
    // The counts the writer keeps in memory agree with the store.
    let status = d.status();
    assert_eq!(status["clippings"], 3, "{status}");
    let metrics = get(&d.url("metrics"), &[]).text();
    assert!(metrics.contains("clipfeed_clippings{state=\"live\"} 3"), "{metrics}");
    let index = get(&d.url(""), &[]).text();
    for row in ["topics-robots", "providers-panic.example"] {
        let line = index.lines().find(|l| l.contains(&format!("<tr id=\"{row}\">"))).expect(row);
        assert!(line.contains("<td class=\"n\">3</td>"), "the index counts 3 clippings: {line}");
    }
    drop(d);
}
