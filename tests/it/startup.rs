//! Honest start-up: while a new store is first filled, every feed that will have items answers
//! 503 with `Retry-After` or a non-empty 200 (never a 404, never an empty 200), the status and
//! the index say how far along it is, and the log reports progress; roots that are not folders
//! are reported; metrics follow the Prometheus conventions (build info, `process_*`).

use std::time::{Duration, Instant};

use crate::support::{Daemon, Process, Site, get, poll, serve_command};

const PROVIDERS: [&str; 5] = ["alpha.example", "bravo.example", "charlie.example", "delta.example", "echo.example"];
const TOPICS: [&str; 4] = ["Robotics", "Energy", "Oceans", "Cities"];

/// Writes `n` small clippings (each with a provider and a topic) straight into the root, ten
/// folders of them, dated an hour back so none is taken for a file still being written.
fn generate(site: &Site, n: usize) {
    let root = site.root();
    for d in 0..10 {
        std::fs::create_dir_all(root.join(format!("d{d}"))).unwrap();
    }
    for i in 0..n {
        let domain = PROVIDERS[i % PROVIDERS.len()];
        let text = format!(
            "---\ntitle: \"Story number {i}\"\npublishedDateTime: 2025-{:02}-{:02}T{:02}:{:02}:00Z\nwebUrl: https://{domain}/s/{i}\nprovider:\n  name: {domain}\n  domain: {domain}\ntopics: [{}]\n---\nBody of story {i}.\n",
            1 + i % 12,
            1 + i % 28,
            i % 24,
            i % 60,
            TOPICS[i % TOPICS.len()],
        );
        std::fs::write(root.join(format!("d{}/c{i}.md", i % 10)), text).unwrap();
    }
}

/// What the poller saw of one feed.
#[derive(Default, Debug)]
struct Seen {
    unavailable: usize,
    full: usize,
}

/// Checks one response of a feed that exists at the end: a 503 with `Retry-After`, or a 200
/// whose document (read by feed-rs) has items.
fn judge(url: &str, seen: &mut Seen) -> bool {
    let r = get(url, &[]);
    match r.status {
        503 => {
            let retry: u64 = r.header("retry-after").and_then(|v| v.parse().ok()).expect("a 503 says when to retry");
            assert!(retry >= 1, "{url}: Retry-After {retry}");
            seen.unavailable += 1;
            false
        }
        200 => {
            let feed = feed_rs::parser::parse(&r.body[..]).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert!(!feed.entries.is_empty(), "{url}: an empty 200 during start-up");
            seen.full += 1;
            true
        }
        other => panic!("{url}: {other} during start-up: {}", String::from_utf8_lossy(&r.body)),
    }
}

/// The progress figures the status shows: (files read, items done), when indexing.
fn progress(status: &serde_json::Value) -> Option<(u64, u64, u64)> {
    let i = status.get("indexing").filter(|i| !i.is_null())?;
    let n = |k: &str| i[k].as_u64().unwrap_or_else(|| panic!("indexing.{k} in {i}"));
    Some((n("files_read"), n("items_done"), n("files_found")))
}

/// The "N of M" of the index's indexing note, if it shows one with figures.
fn index_progress(html: &str) -> Option<u64> {
    let note = html.split("Indexing: ").nth(1)?;
    note.split(" of ").next()?.trim().parse().ok()
}

/// Starts the daemon on `n` fresh clippings and polls three feeds, the status and the index
/// every 50 ms until every feed is served; checks every answer on the way.
fn cold_start(n: usize) {
    let site = Site::new();
    generate(&site, n);
    let d = Daemon::spawn_listening(serve_command(&[] as &[&str], &site.config()));
    let urls = [d.url("feed.rss"), d.url("topics/robotics.atom"), d.url("providers/charlie.example.json")];
    let mut seen: Vec<Seen> = urls.iter().map(|_| Seen::default()).collect();
    let (mut last, mut last_index, mut reports) = ((0, 0, 0), 0, 0);
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        assert!(Instant::now() < deadline, "not every feed was served in time:\n{}", d.log());
        // Ready (the first reconcile done) means every feed is served; asked first, so the feeds
        // can only be further along.
        let ready = get(&d.url("readyz"), &[]).status == 200;
        let all = urls.iter().zip(&mut seen).fold(true, |all, (url, s)| judge(url, s) & all);
        assert!(all || !ready, "ready, yet a feed was not served: {seen:?}");
        let status = d.status();
        if let Some(p) = progress(&status) {
            assert!(p.0 >= last.0 && p.1 >= last.1, "progress went back: {last:?} then {p:?}");
            assert!(p.0 <= p.2 && p.2 as usize <= n, "{p:?} of {n}");
            last = p;
            reports += 1;
        }
        let index = get(&d.url(""), &[]).text();
        if let Some(done) = index_progress(&index) {
            assert!(done >= last_index, "the index's count went back: {last_index} then {done}");
            last_index = done;
        }
        if all {
            assert_eq!(status["ready"], true, "every feed served before the status is ready? {status}");
            break;
        }
        std::thread::sleep(Duration::from_millis(50)); // the poll period under test
    }
    // Once ready, the status says so and the counts are whole.
    let status = poll("the first reconcile's end", || {
        let s = d.status();
        (s["ready"] == true && s["cold_start"] == false).then_some(s)
    });
    assert_eq!(status["clippings"], n as u64, "{status}");
    assert!(status["indexing"].is_null(), "{status}");
    assert!(seen.iter().all(|s| s.unavailable > 0), "the start was observed while indexing: {seen:?}");
    eprintln!("{n} files: {seen:?}, {reports} progress reports seen in the status");
    // The log: progress at info, and files named one by one only up to a bound.
    let log = d.log();
    let named = log.lines().filter(|l| l.contains("INFO") && l.contains("clipping read")).count();
    assert!(named <= 20, "{named} files named at info in one batch");
    assert!(log.contains(&format!("{n} clipping files read, 0 rejected")), "the batch is summarised:\n{log}");
    drop(d);

    // A restart serves the stored feeds at once, before its own reconcile.
    let d = Daemon::spawn_listening(serve_command(&[] as &[&str], &site.config()));
    for url in [d.url("feed.rss"), d.url("topics/robotics.atom"), d.url("providers/charlie.example.json")] {
        let r = get(&url, &[]);
        assert_eq!(r.status, 200, "{url} after a restart");
    }
    assert_eq!(d.status()["cold_start"], false);
}

#[test]
fn a_cold_start_answers_503_until_each_feed_has_items() {
    // Large enough for several chunks and progress reports in a debug build.
    cold_start(3000);
}

#[test]
#[ignore = "25,000 files take minutes in a debug build; .ci/run runs it in release"]
fn cold_start_of_25000_files() {
    cold_start(25_000);
}

#[test]
fn a_missing_root_is_reported_not_taken_for_an_empty_one() {
    let site = Site::new();
    generate(&site, 3);
    std::fs::write(site.dir.path().join("plain-file"), "not a folder").unwrap();
    site.write_config("clippings: [clippings, clipings, plain-file]\n");
    let text = std::fs::read_to_string(site.config()).unwrap().replace("clippings: [clippings]\n", "");
    std::fs::write(site.config(), text).unwrap();
    let d = Daemon::start(&site);
    let roots = d.status()["roots"].as_array().unwrap().clone();
    // Each root named as the configuration writes it, never by where it is.
    let state = |name: &str| {
        let r = roots.iter().find(|r| r["path"] == name).unwrap_or_else(|| panic!("{name}: {roots:?}"));
        (r["state"].as_str().unwrap().to_string(), r["files"].as_u64().unwrap())
    };
    assert_eq!(state("clippings"), ("ok".to_string(), 3));
    assert_eq!(state("clipings"), ("missing".to_string(), 0));
    assert_eq!(state("plain-file"), ("not a folder".to_string(), 0));
    // Ready (the good root serves), but the log says what is wrong at ERROR.
    assert_eq!(get(&d.url("readyz"), &[]).status, 200);
    let log = d.log();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR") && l.contains("clippings root")).collect();
    assert_eq!(errors.len(), 2, "{log}");
    let metrics = get(&d.url("metrics"), &[]).text();
    for line in [
        "clipfeed_roots{state=\"ok\"} 1",
        "clipfeed_roots{state=\"missing\"} 1",
        "clipfeed_roots{state=\"not a folder\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}:\n{metrics}");
    }
    // The missing root appears: read at the next rescan, and logged as readable.
    generate_into(&site.dir.path().join("clipings"), 2);
    d.signal(libc::SIGUSR1);
    poll("the new root's files", || (d.status()["clippings"] == 5).then_some(()));
    assert!(d.log().contains("clippings root is readable again"));
}

/// Two clippings with their own URLs in a new folder.
fn generate_into(dir: &std::path::Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        let text = format!("---\ntitle: \"Late {i}\"\nwebUrl: https://late.example/{i}\n---\n");
        std::fs::write(dir.join(format!("late{i}.md")), text).unwrap();
    }
}

/// A sample's value in a Prometheus text page.
fn value(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
}

#[test]
fn metrics_follow_the_conventions() {
    let site = Site::new();
    generate(&site, 2);
    let d = Daemon::start(&site);
    let text = get(&d.url("metrics"), &[]).text();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(value(&text, &format!("clipfeed_build_info{{version=\"{version}\"}}")), 1.0);
    // Open descriptors: what /proc shows for the process, give or take the scrape's own.
    let fds = std::fs::read_dir(format!("/proc/{}/fd", d.pid())).unwrap().count() as f64;
    let open = value(&text, "process_open_fds");
    assert!(open > 3.0 && (open - fds).abs() <= 8.0, "process_open_fds {open}, /proc shows {fds}");
    assert!(value(&text, "process_max_fds") >= open);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let started = value(&text, "process_start_time_seconds");
    assert!(started <= now + 1.0 && started > now - 120.0, "started {started}, now {now}");
    let rss = value(&text, "process_resident_memory_bytes");
    assert!(rss > 1e6 && value(&text, "process_virtual_memory_bytes") >= rss, "rss {rss}");
    assert!(value(&text, "process_cpu_seconds_total") > 0.0);
    // Labelled counters are there at 0 before anything is counted under their labels; no ratio.
    assert_eq!(value(&text, "clipfeed_http_requests_total{route=\"archive\",status=\"404\"}"), 0.0);
    assert_eq!(value(&text, "clipfeed_http_response_bytes_total{route=\"opml\"}"), 0.0);
    assert!(!text.contains("_ratio"), "no since-start ratios:\n{text}");
    // Every metric has its HELP and TYPE.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap();
        let family = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
        assert!(text.contains(&format!("# TYPE {family} ")) || text.contains(&format!("# TYPE {name} ")), "{line}");
    }
}

/// A reload or a rescan asked for while the daemon starts, from its first log line on (before
/// the store is open, the socket bound or anything is ready), is answered once it is ready: the
/// signal's default action never ends the process half-started. A stop then ends it cleanly.
#[test]
fn signals_sent_while_starting_are_answered_once_ready() {
    for (sig, answer) in [
        (libc::SIGHUP, "configuration reloaded"),
        (libc::SIGUSR1, "SIGUSR1: rescanning every root"),
        (libc::SIGTERM, "stopping"),
    ] {
        let site = Site::new();
        generate(&site, 20);
        let mut p = Process::start(&site.config());
        poll("the daemon's first log line", || p.log().contains("starting").then_some(()));
        p.signal(sig);
        poll(answer, || p.log().contains(answer).then_some(()));
        if sig == libc::SIGTERM {
            let status = poll("the stop", || p.exited());
            assert!(status.success(), "a stop asked for while starting is a clean stop: {status:?}\n{}", p.log());
            continue;
        }
        let base = p.base();
        poll("ready", || (get(&format!("{base}readyz"), &[]).status == 200).then_some(()));
        assert!(p.exited().is_none(), "{answer}: the daemon ended\n{}", p.log());
        let feed = get(&format!("{base}feed.json"), &[]);
        assert_eq!(feed.status, 200, "{answer}: the feed of everything: {}", feed.text());
        let items = serde_json::from_slice::<serde_json::Value>(&feed.body).unwrap()["items"].as_array().unwrap().len();
        assert_eq!(items, 20, "{answer}: every clipping served");
    }
}

/// Stops the daemon (SIGTERM) once `at` holds of its log during a cold build (at debug level,
/// it names each file recorded and each chunk of items refreshed), and checks that it was a
/// clean stop that cut the build short before its end.
fn stop_cold_build_when(site: &Site, at: impl Fn(&str) -> bool) {
    let mut p = Process::start(&site.config());
    poll("the cold build's progress", || at(&p.log()).then_some(()));
    p.signal(libc::SIGTERM);
    let status = poll("the stop", || p.exited());
    let log = p.log();
    assert!(status.success(), "a stop during a cold build is a clean stop: {status:?}\n{log}");
    assert!(log.contains("cut short at a chunk's end"), "the build was cut short, not waited for:\n{log}");
    assert!(!log.contains("clippings reconciled"), "the build ended before the stop:\n{log}");
}

/// A stop asked for during a cold build (SIGTERM: systemd kills a stop that takes longer than
/// `TimeoutStopSec`) ends it at its next chunk with a clean status, whether the files are being
/// read or the items refreshed; what it stored is kept, and the next start finishes the build:
/// every clipping served once, the feed of everything newest first.
#[test]
fn a_stop_during_a_cold_build_ends_it_at_a_chunk_and_the_next_start_finishes_it() {
    let n = 8000;
    let site = Site::new();
    generate(&site, n);
    // While the files are read (two chunks of 512 recorded, no item refreshed yet) ...
    let refreshed = "a chunk of items refreshed";
    stop_cold_build_when(&site, |log| log.matches("clipping read").count() >= 1024 && !log.contains(refreshed));
    // ... and, at the next start, while the items are refreshed (the first of four chunks).
    stop_cold_build_when(&site, |log| log.contains(refreshed));
    let d = Daemon::spawn_listening(serve_command(&[] as &[&str], &site.config()));
    let status = poll("the build finished", || {
        let s = d.status();
        (s["ready"] == true && s["cold_start"] == false).then_some(s)
    });
    assert_eq!(status["clippings"], n as u64, "every clipping stored once: {status}");
    let feed = get(&d.url("feed.json"), &[]);
    assert_eq!(feed.status, 200);
    let feed: serde_json::Value = serde_json::from_slice(&feed.body).unwrap();
    let items = feed["items"].as_array().unwrap();
    assert!(!items.is_empty());
    let dates: Vec<&str> = items.iter().map(|i| i["date_published"].as_str().unwrap()).collect();
    assert!(dates.windows(2).all(|w| w[0] >= w[1]), "the feed of everything newest first: {dates:?}");
    let mut ids: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), items.len(), "no item twice");
    // The feed's window is the newest clippings of the corpus: the items the cuts left pending
    // were refreshed in date order at the next starts, like the rest (feed-log positions, and
    // so windows and archive pages, follow dates).
    let mut all: Vec<String> = (0..n).map(|i| generated_date(i).to_string()).collect();
    all.sort_unstable_by(|a, b| b.cmp(a));
    let served: Vec<String> = dates.iter().map(|d| d.replace("+00:00", "Z")).collect();
    assert_eq!(served, all[..served.len()], "the newest clippings, newest first");
}

/// The `publishedDateTime` of `generate`'s clipping `i`.
fn generated_date(i: usize) -> String {
    format!("2025-{:02}-{:02}T{:02}:{:02}:00Z", 1 + i % 12, 1 + i % 28, i % 24, i % 60)
}

/// A cold build publishes its feeds before it rewrites the store compactly (a `VACUUM`: minutes
/// at a million clippings), and a stop interrupts that rewrite: the daemon ends at once with a
/// clean status, and the next start compacts. Meanwhile every feed is served whole and the
/// status says so. (The test hook holds the compaction until the stop comes.)
#[test]
fn a_cold_build_serves_its_feeds_while_the_store_is_compacted_and_a_stop_interrupts_it() {
    let n = 1200;
    let site = Site::new();
    generate(&site, n);
    let mut cmd = serve_command(&[] as &[&str], &site.config());
    cmd.env("CLIPFEED_TEST_HOLD_COMPACTION", "1");
    let mut d = Daemon::spawn_listening(cmd);
    let status = poll("the compaction under way", || {
        let s = d.status();
        (s["compacting"] == true).then_some(s)
    });
    assert_eq!((status["ready"].clone(), status["cold_start"].clone()), (true.into(), false.into()), "{status}");
    assert_eq!(status["clippings"], n as u64, "{status}");
    let feed = get(&d.url("feed.json"), &[]);
    assert_eq!(feed.status, 200, "{}", feed.text());
    let feed: serde_json::Value = serde_json::from_slice(&feed.body).unwrap();
    assert!(!feed["items"].as_array().unwrap().is_empty());
    let before = d.url("providers/alpha.example.rss");
    let provider = get(&before, &[]);
    assert_eq!(provider.status, 200);
    assert!(provider.text().matches("<item>").count() >= 20, "a full page: {}", provider.text());
    d.signal(libc::SIGTERM);
    let status = poll("the stop", || d.exited());
    let log = d.log();
    assert!(status.success(), "a stop during the compaction is a clean stop: {status:?}\n{log}");
    assert!(log.contains("compaction is left to the next start") && !log.contains("store compacted"), "{log}");
    // The next start compacts, and serves the same.
    let d = Daemon::spawn_listening(serve_command(&[] as &[&str], &site.config()));
    poll("the compaction done", || d.log().contains("store compacted").then_some(()));
    let status = poll("the status after it", || {
        let s = d.status();
        (s["compacting"] == false && s["ready"] == true).then_some(s)
    });
    assert_eq!(status["clippings"], n as u64, "{status}");
    assert_eq!(get(&d.url("providers/alpha.example.rss"), &[]).text(), provider.text(), "the same document");
    let log = d.log();
    assert_eq!(log.matches("store compacted").count(), 1, "{log}");
}
