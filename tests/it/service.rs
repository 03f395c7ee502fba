//! Running as a service, against the real binary: the systemd notify protocol (READY, WATCHDOG,
//! RELOADING/READY, STOPPING) on a socket the test owns, socket activation, configuration reload
//! on SIGHUP, health and readiness, metrics and who may read them, and private feeds.

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::sync::{Arc, Mutex};

use crate::support::*;

fn clip(key: &str, title: &str, more: &str) -> String {
    format!(
        "---\ntitle: \"{title}\"\npublishedDateTime: 2025-04-01T10:00:00Z\nwebUrl: https://service.example/{key}\n{more}---\n"
    )
}

/// A notify socket the test owns, collecting every datagram the daemon sends.
struct NotifySocket {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    messages: Arc<Mutex<Vec<String>>>,
}

impl NotifySocket {
    fn new() -> NotifySocket {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let sink = messages.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = sock.recv(&mut buf) {
                sink.lock().unwrap().push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        });
        NotifySocket { _dir: dir, path, messages }
    }

    fn all(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }

    fn count(&self, prefix: &str) -> usize {
        self.all().iter().filter(|m| m.starts_with(prefix)).count()
    }

    fn wait_for(&self, what: &str, prefix: &str, at_least: usize) {
        poll(what, || (self.count(prefix) >= at_least).then_some(()));
    }
}

fn serve(site: &Site) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clipfeed"));
    cmd.args(["serve", "--config"]).arg(site.config());
    cmd
}

#[test]
fn the_notify_protocol_from_ready_to_stopping() {
    let site = Site::new();
    site.put("a.md", clip("a", "Notified", "topics: [Service]\n"));
    let notify = NotifySocket::new();
    let mut cmd = serve(&site);
    cmd.env("NOTIFY_SOCKET", &notify.path).env("WATCHDOG_USEC", "400000");
    let d = Daemon::spawn(cmd);

    // READY=1 comes once the store is open and the socket bound: the daemon answers then.
    notify.wait_for("READY=1", "READY=1", 1);
    assert_eq!(get(&d.url("healthz"), &[]).status, 200);
    assert_eq!(get(&d.url("readyz"), &[]).status, 200);
    // Watchdog pings at half the period (0.2 s here), steadily: every thread beats well inside
    // the period, so the pings do not stop between beats.
    notify.wait_for("watchdog pings", "WATCHDOG=1", 12);

    // SIGHUP: RELOADING=1 with the monotonic time, then READY=1 again.
    d.signal(libc::SIGHUP);
    notify.wait_for("READY=1 after the reload", "READY=1", 2);
    let all = notify.all();
    let reloading = all.iter().position(|m| m.starts_with("RELOADING=1")).expect("RELOADING=1");
    let ready_again = all.iter().rposition(|m| m == "READY=1").unwrap();
    assert!(reloading < ready_again, "{all:?}");
    assert!(all[reloading].contains("\nMONOTONIC_USEC="), "{}", all[reloading]);

    // SIGTERM: STOPPING=1 and a clean exit.
    d.signal(libc::SIGTERM);
    let status = d.wait_exit();
    assert!(status.success(), "{status:?}");
    notify.wait_for("STOPPING=1", "STOPPING=1", 1);
    let log_free_of_errors = !notify.all().iter().any(|m| m.starts_with("ERRNO"));
    assert!(log_free_of_errors);
}

/// A cold build's compaction (minutes at a million clippings, most of it in SQLite's copy of the
/// file back, where no statement step runs) keeps the watchdog fed: the writer's heartbeat is
/// beaten meanwhile, so systemd does not take the service for hung. (The test hook holds the
/// compaction until the stop comes.)
#[test]
fn the_watchdog_is_fed_while_a_cold_build_compacts_the_store() {
    let site = Site::new();
    let root = site.root();
    for i in 0..1200 {
        std::fs::write(root.join(format!("c{i}.md")), clip(&format!("c{i}"), &format!("Clipping {i}"), "")).unwrap();
    }
    let notify = NotifySocket::new();
    let mut cmd = serve(&site);
    cmd.env("NOTIFY_SOCKET", &notify.path).env("WATCHDOG_USEC", "400000").env("CLIPFEED_TEST_HOLD_COMPACTION", "1");
    let mut d = Daemon::spawn(cmd);
    poll("the compaction under way", || (d.status()["compacting"] == true).then_some(()));
    // Pings at half the period (0.2 s) go on while the writer is held in the compaction.
    let pings = notify.count("WATCHDOG=1");
    notify.wait_for("pings during the compaction", "WATCHDOG=1", pings + 15);
    assert_eq!(d.status()["compacting"], true, "still compacting");
    assert!(!d.log().contains("not responding"), "{}", d.log());
    d.signal(libc::SIGTERM);
    let status = poll("the stop", || d.exited());
    assert!(status.success(), "{status:?}\n{}", d.log());
}

/// `clipfeed serve` started as systemd starts a socket-activated service: `fd` becomes fd 3,
/// `LISTEN_FDS=1`, and `LISTEN_PID` the service's pid (a shell learns its pid, `$$`, which `exec`
/// hands on to clipfeed).
fn activated(site: &Site, fd: std::os::fd::RawFd) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_clipfeed"))
        .args(["serve", "--config"])
        .arg(site.config());
    // SAFETY: dup2 is async-signal-safe; the closure runs in the child between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto itself keeps close-on-exec, so then clear the flag instead.
            let ok = if fd == 3 { libc::fcntl(3, libc::F_SETFD, 0) } else { libc::dup2(fd, 3) };
            if ok < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

#[test]
fn a_socket_passed_by_systemd_is_used() {
    use std::os::fd::AsRawFd;
    let site = Site::new();
    site.put("a.md", clip("a", "Activated", ""));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let d = Daemon::spawn(activated(&site, listener.as_raw_fd()));
    assert!(d.base.ends_with(&format!(":{port}/")), "listening on the passed socket: {}", d.base);
    assert_eq!(titles(&feed(&d.url("feed.atom"))), ["Activated"]);
    assert!(d.log().contains("passed by systemd"));
    drop(listener);
}

#[test]
fn a_unix_socket_passed_by_systemd_fails_the_start_with_a_clear_error() {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    let site = Site::new();
    let dir = tempfile::tempdir().unwrap();
    let listener = std::os::unix::net::UnixListener::bind(dir.path().join("clipfeed.sock")).unwrap();
    let mut cmd = activated(&site, listener.as_raw_fd());
    cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let status = poll("clipfeed to exit", || child.try_wait().unwrap());
    let mut log = String::new();
    child.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(log.contains("fd 3 from systemd is a Unix socket"), "{log}");
    assert!(log.contains("ListenStream="), "the error says what to change: {log}");
    assert!(!log.contains("listening on"), "{log}");
}

#[test]
fn sighup_reloads_the_configuration_without_dropping_connections() {
    let site = Site::new();
    site.write_config("cache_max_age: 60\ntopics:\n  - name: Service\n    description: Before the reload\n");
    site.put("a.md", clip("a", "Reloaded", "topics: [Service]\n"));
    let d = Daemon::start(&site);
    let before = feed(&d.url("topics/service.atom"));
    assert_eq!(before.description.as_ref().unwrap().content, "Before the reload");
    assert_eq!(get(&d.url("feed.atom"), &[]).header("cache-control"), Some("public, max-age=60"));

    // A kept-alive connection stays usable across the reload.
    let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
    assert_eq!(agent.get(&d.url("feed.rss")).call().unwrap().status(), 200);

    site.write_config(
        "cache_max_age: 300\ntopics:\n  - name: Service\n    description: After the reload\n    aliases: [Operations]\n",
    );
    let reloads = poll_count(&d, "configuration reloaded");
    d.signal(libc::SIGHUP);
    poll("the reload", || (poll_count(&d, "configuration reloaded") > reloads).then_some(()));
    let after = feed(&d.url("topics/service.atom"));
    assert_eq!(after.description.as_ref().unwrap().content, "After the reload");
    assert_eq!(get(&d.url("feed.atom"), &[]).header("cache-control"), Some("public, max-age=300"));
    assert_eq!(agent.get(&d.url("feed.rss")).call().unwrap().status(), 200, "the kept-alive connection works");
    // The new alias maps a new clipping's topic.
    site.put("b.md", clip("b", "Via the alias", "topics: [Operations]\n"));
    poll("the aliased clipping", || {
        entry_titled(&feed(&d.url("topics/service.atom")), "Via the alias").is_some().then_some(())
    });

    // An invalid file is refused; the running configuration stays.
    std::fs::write(site.config(), "items_per_feed: 0\n").unwrap();
    d.signal(libc::SIGHUP);
    poll("the refusal in the log", || d.log().contains("configuration reload refused").then_some(()));
    assert!(d.log().contains("items_per_feed"), "the refusal names the key");
    assert_eq!(feed(&d.url("topics/service.atom")).description.as_ref().unwrap().content, "After the reload");

    // A new listen address needs a restart, and says so.
    std::fs::write(
        site.config(),
        "listen: 127.0.0.1:1\nbase_url: http://feeds.test/cf/\nclippings: [clippings]\nstore: data/clipfeed.db\ncache_max_age: 300\n",
    )
    .unwrap();
    let reloads = poll_count(&d, "configuration reloaded");
    d.signal(libc::SIGHUP);
    poll("the second reload", || (poll_count(&d, "configuration reloaded") > reloads).then_some(()));
    assert!(d.log().contains("take effect only after a restart"), "{}", d.log());
    assert_eq!(get(&d.url("healthz"), &[]).status, 200, "still serving on the old address");
}

fn poll_count(d: &Daemon, needle: &str) -> usize {
    d.log().matches(needle).count()
}

#[test]
fn metrics_are_served_to_allowed_networks_only() {
    let site = Site::new();
    site.put("a.md", clip("a", "Measured", "topics: [Service]\n"));
    let d = Daemon::start(&site);
    get(&d.url("feed.atom"), &[]);
    let etag = get(&d.url("feed.atom"), &[]).header("etag").unwrap().to_string();
    get(&d.url("feed.atom"), &[("If-None-Match", &etag)]);
    let m = get(&d.url("metrics"), &[]);
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let text = m.text();
    for name in [
        "clipfeed_clippings{state=\"live\"} 1",
        "clipfeed_rejections_total",
        "clipfeed_files_parsed_total",
        "clipfeed_renders_total",
        "clipfeed_render_seconds_bucket",
        "clipfeed_ingest_seconds_count",
        "clipfeed_watch_to_publish_seconds_bucket",
        "clipfeed_http_requests_total{route=\"feed\",status=\"200\"}",
        "clipfeed_http_requests_total{route=\"feed\",status=\"304\"} 1",
        "clipfeed_http_response_bytes_total{route=\"feed\"}",
    ] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    drop(d);

    // Another network only: loopback is refused.
    site.write_config("metrics:\n  allow: [10.0.0.0/8]\n");
    let d = Daemon::start(&site);
    assert_eq!(get(&d.url("metrics"), &[]).status, 403);
    drop(d);

    // With a token.
    site.write_config("metrics:\n  token: a-sixteen-char-secret\n");
    let d = Daemon::start(&site);
    assert_eq!(get(&d.url("metrics"), &[]).status, 401);
    assert_eq!(get(&d.url("metrics"), &[("Authorization", "Bearer wrong-token-value")]).status, 401);
    assert_eq!(get(&d.url("metrics"), &[("Authorization", "Bearer a-sixteen-char-secret")]).status, 200);
    assert!(!d.log().contains("a-sixteen-char-secret"), "the token never reaches the log");
}

/// The value of an unlabelled sample in a Prometheus text page.
fn sample(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[test]
fn file_counters_count_parsed_rejected_and_removed_files() {
    let site = Site::new();
    for (name, title) in [("a.md", "Alpha"), ("b.md", "Beta"), ("c.md", "Gamma")] {
        site.put(name, clip(name, title, ""));
    }
    // Rejected files, dated an hour back so they are not taken for files still being written.
    let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for name in ["bad1.md", "bad2.md"] {
        let path = site.put(name, "---\ntitle: [unclosed\n---\n");
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(an_hour_ago).unwrap();
    }
    let d = Daemon::start(&site);
    let counters = || {
        let text = get(&d.url("metrics"), &[]).text();
        let value = |name| sample(&text, name).unwrap_or_else(|| panic!("{name} missing:\n{text}"));
        (
            value("clipfeed_files_parsed_total"),
            value("clipfeed_rejections_total"),
            value("clipfeed_files_removed_total"),
        )
    };
    poll("the start-up counts", || (counters().1 == 2).then_some(()));
    assert_eq!(counters(), (5, 2, 0), "5 files parsed at start, 2 of them rejected");

    // One good and one rejected file go: two removed, nothing parsed.
    std::fs::remove_file(site.root().join("a.md")).unwrap();
    std::fs::remove_file(site.root().join("bad1.md")).unwrap();
    poll("two removals", || (counters().2 == 2).then_some(()));
    assert_eq!(counters(), (5, 2, 2));
    assert_eq!(d.status()["clippings"], 2);

    // A new file and an edit: two more parsed.
    site.put("d.md", clip("d.md", "Delta", ""));
    poll("the new file", || (counters().0 == 6).then_some(()));
    site.put("b.md", clip("b.md", "Beta, edited", ""));
    poll("the edit", || (counters().0 == 7).then_some(()));
    assert_eq!(counters(), (7, 2, 2));
}

#[test]
fn private_feeds_need_their_token() {
    let site = Site::new();
    site.write_config(
        "topics:\n  - name: Internal\n    private: true\nproviders:\n  - domain: secret.example\n    private: true\n",
    );
    site.put("in.md", clip("in", "Internal memo", "topics: [Internal, Public Stuff]\n"));
    site.put("sec.md", clip("sec", "From the secret site", "provider: {name: Secret, domain: secret.example}\n"));
    site.put("pub.md", clip("pub", "Public news", "topics: [Public Stuff]\n"));
    let d = Daemon::start(&site);

    let tokens = |action: &[&str]| -> Vec<(String, String)> {
        let (status, out, err) = run(Command::new(env!("CARGO_BIN_EXE_clipfeed"))
            .arg("token")
            .arg("--config")
            .arg(site.config())
            .args(action));
        assert!(status.success(), "{err}");
        out.lines().map(|l| l.split('\t').collect::<Vec<_>>()).map(|f| (f[0].to_string(), f[1].to_string())).collect()
    };
    let listed = tokens(&["list"]);
    let stems: Vec<&str> = listed.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(stems, ["providers/secret.example", "topics/internal"]);
    let internal = listed.iter().find(|(s, _)| s == "topics/internal").unwrap().1.clone();

    // 404 (as if missing) without a token or with a wrong one; 200 with it, by query or bearer.
    poll("the daemon to know the tokens", || {
        (get(&d.url(&format!("topics/internal.rss?token={internal}")), &[]).status == 200).then_some(())
    });
    for (url, headers) in [
        ("topics/internal.rss".to_string(), vec![]),
        ("topics/internal.atom?token=nope".to_string(), vec![]),
        ("topics/internal.json".to_string(), vec![("Authorization", "Bearer nope")]),
        ("providers/secret.example.rss".to_string(), vec![]),
        ("topics/internal.rss?q=memo".to_string(), vec![]),
    ] {
        let r = get(&d.url(&url), &headers);
        assert_eq!(r.status, 404, "{url}");
        assert_eq!(r.header("cache-control"), Some("no-store"), "{url}");
    }
    let auth = format!("Bearer {internal}");
    let f = feed_rs::parser::parse(&get(&d.url("topics/internal.atom"), &[("Authorization", &auth)]).body[..]).unwrap();
    assert_eq!(titles(&f), ["Internal memo"]);
    let filtered = get(&d.url(&format!("topics/internal.rss?q=memo&token={internal}")), &[]);
    assert_eq!(filtered.status, 200);

    // Private clippings stay out of public feeds; private feeds out of the index and the OPML.
    assert_eq!(titles(&feed(&d.url("feed.atom"))), ["Public news"]);
    assert_eq!(titles(&feed(&d.url("topics/public-stuff.atom"))), ["Public news"]);
    for page in ["/", "feeds.opml"] {
        let text = get(&d.url(page), &[]).text();
        assert!(!text.contains("internal") && !text.contains("secret.example"), "{page} lists a private feed");
    }
    // Tokens never reach the log.
    assert!(!d.log().contains(&internal));

    // Rotation: the old token stops working, the new one works.
    let rotated = tokens(&["rotate", "topics/internal"]);
    assert_eq!(rotated.len(), 1);
    let fresh = rotated[0].1.clone();
    assert_ne!(fresh, internal);
    poll("the old token to stop working", || {
        (get(&d.url(&format!("topics/internal.rss?token={internal}")), &[]).status == 404).then_some(())
    });
    assert_eq!(get(&d.url(&format!("topics/internal.rss?token={fresh}")), &[]).status, 200);
    // A feed that is not private cannot be rotated.
    let (status, _, err) = run(Command::new(env!("CARGO_BIN_EXE_clipfeed"))
        .args(["token", "--config"])
        .arg(site.config())
        .args(["rotate", "topics/public-stuff"]));
    assert!(!status.success());
    assert!(err.contains("not a private feed"), "{err}");
}
