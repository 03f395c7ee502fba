//! Running clipfeed as an operator does (issue 14): where the configuration and the store are
//! found, exit statuses, the log under journald and as JSON, a store from a newer clipfeed, the
//! full `check --config`, and the completions and manual made from the command line.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

fn clipfeed() -> Command {
    Command::new(env!("CARGO_BIN_EXE_clipfeed"))
}

/// `clipfeed ARGS` in `cwd` with none of the variables that choose files or the log format.
fn bare(cwd: &Path) -> Command {
    let mut cmd = clipfeed();
    cmd.current_dir(cwd);
    for var in ["CLIPFEED_CONFIG", "CONFIGURATION_DIRECTORY", "STATE_DIRECTORY", "JOURNAL_STREAM", "RUST_LOG"] {
        cmd.env_remove(var);
    }
    cmd
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

const STORY: &str = "---\ntitle: Found by the operator\nwebUrl: https://ops.example/a\n---\nA body with <b>markup</b> and <script>gone()</script>.\n";

/// The `config ...` line of a full check: which file, found how.
fn config_line(out: &str) -> &str {
    out.lines().find(|l| l.starts_with("config ")).unwrap_or_else(|| panic!("no config line in:\n{out}"))
}

fn store_line(out: &str) -> &str {
    out.lines().find(|l| l.starts_with("store ")).unwrap_or_else(|| panic!("no store line in:\n{out}"))
}

#[test]
fn the_configuration_is_found_in_order_and_the_store_follows_the_state_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let (etc, state, work, other) =
        (tmp.path().join("etc"), tmp.path().join("state"), tmp.path().join("work"), tmp.path().join("other"));
    write(&etc.join("clipfeed.yaml"), "listen: 127.0.0.1:0\nclippings: [clips]\n");
    write(&etc.join("clips/a.md"), STORY);
    write(&other.join("mine.yaml"), "clippings: [/nonexistent-root]\nstore: db/explicit.db\n");
    write(&work.join("config/clipfeed.yaml"), "clippings: [../clips]\n");
    std::fs::create_dir_all(&state).unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();

    // $CONFIGURATION_DIRECTORY (systemd's ConfigurationDirectory=), with the store in
    // $STATE_DIRECTORY since the file has no `store` key.
    let (_, out, err) =
        run(bare(&empty).arg("check").env("CONFIGURATION_DIRECTORY", &etc).env("STATE_DIRECTORY", &state));
    assert!(
        config_line(&out)
            .contains(&format!("{}: ok (found by $CONFIGURATION_DIRECTORY)", etc.join("clipfeed.yaml").display())),
        "{out}{err}"
    );
    assert!(store_line(&out).starts_with(&format!("store     {}:", state.join("clipfeed.db").display())), "{out}");
    // Relative roots resolve from the configuration's folder, not the working directory.
    assert!(out.contains(&format!("ok        {}", etc.join("clips/a.md").display())), "{out}");
    // Without a state directory the store sits beside the configuration.
    let (_, out, _) = run(bare(&empty).arg("check").env("CONFIGURATION_DIRECTORY", &etc));
    assert!(store_line(&out).starts_with(&format!("store     {}:", etc.join("clipfeed.db").display())), "{out}");

    // $CLIPFEED_CONFIG beats it, and a `store` key beats $STATE_DIRECTORY; --config beats both.
    let env_cfg = other.join("mine.yaml");
    let (_, out, _) = run(bare(&empty)
        .arg("check")
        .env("CONFIGURATION_DIRECTORY", &etc)
        .env("STATE_DIRECTORY", &state)
        .env("CLIPFEED_CONFIG", &env_cfg));
    assert!(config_line(&out).ends_with("(found by $CLIPFEED_CONFIG)"), "{out}");
    assert!(store_line(&out).starts_with(&format!("store     {}:", other.join("db/explicit.db").display())), "{out}");
    let (_, out, _) =
        run(bare(&empty).args(["check", "--config"]).arg(etc.join("clipfeed.yaml")).env("CLIPFEED_CONFIG", &env_cfg));
    assert!(config_line(&out).ends_with("(found by --config)"), "{out}");

    // A checkout's ./config/clipfeed.yaml, also when $CONFIGURATION_DIRECTORY has no file.
    let (_, out, _) = run(bare(&work).arg("check").env("CONFIGURATION_DIRECTORY", &empty));
    assert!(config_line(&out).contains("config/clipfeed.yaml: ok (found by ./config)"), "{out}");

    // Nowhere: a configuration error, naming where it looked (unless this host has /etc's).
    let (status, out, err) = run(bare(&empty).arg("check"));
    if Path::new("/etc/clipfeed/clipfeed.yaml").is_file() {
        eprintln!("NOTICE: /etc/clipfeed/clipfeed.yaml exists here; checked that it is the last resort");
        assert!(config_line(&out).ends_with("(found by /etc/clipfeed)"), "{out}");
    } else {
        assert_eq!(status.code(), Some(78), "{out}{err}");
        assert!(err.contains("no configuration file found") && err.contains("/etc/clipfeed/clipfeed.yaml"), "{err}");
    }

    // The daemon finds the same file, says so in its log, and creates its store in the state
    // directory.
    let mut cmd = bare(&empty);
    cmd.arg("serve").env("CONFIGURATION_DIRECTORY", &etc).env("STATE_DIRECTORY", &state);
    let d = Daemon::spawn(cmd);
    let log = d.log();
    let named = log.lines().find(|l| l.contains("configuration") && l.contains("found_by=$CONFIGURATION_DIRECTORY"));
    assert!(named.is_some_and(|l| l.contains(&etc.join("clipfeed.yaml").display().to_string())), "{log}");
    assert_eq!(titles(&feed(&d.url("/feed.rss"))), ["Found by the operator"]);
    assert!(state.join("clipfeed.db").is_file() && !etc.join("clipfeed.db").exists());
    assert!(d.stop().success());
}

#[test]
fn configuration_errors_exit_78_and_other_fatal_errors_keep_2() {
    let site = Site::new();
    site.write_config("items_per_feed: 0\n");
    for (command, rest) in [("serve", &[][..]), ("check", &[]), ("render", &["--all"]), ("token", &["list"])] {
        let args = (command, rest);
        let (status, _, err) = run(clipfeed().arg(command).arg("--config").arg(site.config()).args(rest));
        assert_eq!(status.code(), Some(78), "{args:?}: {err}");
        assert!(err.contains("items_per_feed"), "{args:?}: {err}");
    }
    // `token`'s --config also goes after its action.
    let (status, _, err) = run(clipfeed().args(["token", "list", "--config"]).arg(site.config()));
    assert_eq!(status.code(), Some(78), "{err}");
    let (status, _, err) = run(clipfeed().args(["serve", "--config"]).arg(site.dir.path().join("absent.yaml")));
    assert_eq!(status.code(), Some(78), "{err}");
    let (status, _, err) = run(clipfeed().arg("serve").env("CLIPFEED_CONFIG", site.dir.path().join("absent.yaml")));
    assert_eq!(status.code(), Some(78), "{err}");
    assert!(err.contains("absent.yaml"), "{err}");

    // A valid configuration whose port is taken: not the file's fault, a restart may help.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    std::fs::write(site.config(), format!("listen: 127.0.0.1:{port}\nclippings: [clippings]\nstore: data/c.db\n"))
        .unwrap();
    let (status, _, err) = run(clipfeed().args(["serve", "--config"]).arg(site.config()).env_remove("JOURNAL_STREAM"));
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("cannot listen"), "{err}");
}

#[test]
fn a_store_from_a_newer_clipfeed_is_refused_and_left_as_it_was() {
    let site = Site::new();
    site.put("a.md", STORY);
    let (status, _, err) = run(clipfeed().args(["render", "--all", "--config"]).arg(site.config()));
    assert!(status.success(), "{err}");
    let db = site.dir.path().join("data/clipfeed.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let current: i64 = conn
        .query_row("SELECT value FROM meta WHERE key='schema'", [], |r| r.get::<_, String>(0))
        .unwrap()
        .parse()
        .unwrap();
    let newer = current + 1;
    conn.execute("UPDATE meta SET value=?1 WHERE key='schema'", [newer.to_string()]).unwrap();
    let before: i64 = conn.query_row("SELECT COUNT(*) FROM items", [], |r| r.get(0)).unwrap();
    drop(conn);

    let (status, _, err) = run(clipfeed().args(["serve", "--config"]).arg(site.config()).env_remove("JOURNAL_STREAM"));
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("newer clipfeed") && err.contains(&format!("schema version {newer}")), "{err}");
    assert!(err.contains(&format!("understands up to {current}")), "{err}");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let kept: String = conn.query_row("SELECT value FROM meta WHERE key='schema'", [], |r| r.get(0)).unwrap();
    let after: i64 = conn.query_row("SELECT COUNT(*) FROM items", [], |r| r.get(0)).unwrap();
    assert_eq!((kept, after), (newer.to_string(), before), "the store was changed");

    let (status, out, _) = run(clipfeed().args(["check", "--config"]).arg(site.config()));
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(out.lines().any(|l| l.starts_with("error     store") && l.contains("newer clipfeed")), "{out}");
}

#[test]
fn check_with_a_configuration_checks_roots_store_and_every_clipping() {
    let site = Site::new();
    site.put("good.md", STORY);
    let (status, out, err) = run(clipfeed().args(["check", "--config"]).arg(site.config()));
    assert!(status.success(), "{out}{err}");
    assert!(out.lines().any(|l| l.starts_with("ok ") && l.ends_with("provider=-") && l.contains("good.md")), "{out}");
    assert!(store_line(&out).contains("created at the first start"), "{out}");
    assert!(out.contains("1 files: 1 ok, 0 rejected"), "{out}");

    // Once the store exists its schema is read (without leaving journal files behind).
    let (status, _, err) = run(clipfeed().args(["render", "--all", "--config"]).arg(site.config()));
    assert!(status.success(), "{err}");
    let listing = || {
        let mut names: Vec<String> = std::fs::read_dir(site.dir.path().join("data"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let before = listing();
    // Every connection closed before it exits (the checkpoint thread's too): the WAL copied in
    // and gone, so the database file, which `check` reads alone, is the whole store.
    assert_eq!(before, ["clipfeed.db"], "render left the store as more than its database");
    let (status, out, _) = run(clipfeed().args(["check", "--config"]).arg(site.config()));
    assert!(status.success() && store_line(&out).contains("ok (schema version"), "{out}");
    assert_eq!(listing(), before, "check left files beside the store");

    // A rejected clipping, and a mistyped root: both fail the check.
    site.put("bad.md", "---\ntitle: [unclosed\n---\n");
    std::fs::write(site.config(), "clippings: [clippings, clipings]\nstore: data/clipfeed.db\n").unwrap();
    let (status, out, _) = run(clipfeed().args(["check", "--config"]).arg(site.config()));
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(out.lines().any(|l| l.starts_with("rejected") && l.contains("bad.md")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("error     root") && l.contains("clipings: does not exist")), "{out}");
    assert!(out.contains("2 files: 1 ok, 1 rejected") && out.contains("\n1 error\n"), "{out}");
}

/// Runs the daemon with standard error going to a file; returns the file's text once the daemon
/// has been ready and stopped. `journal` makes `JOURNAL_STREAM` name that file, as systemd does
/// for the journal's stream; `rust_log` sets `RUST_LOG`.
fn serve_to_file(config: &Path, journal: Option<bool>, rust_log: Option<&str>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("stderr");
    let file = std::fs::File::create(&log_path).unwrap();
    let meta = file.metadata().unwrap();
    let mut cmd = bare(dir.path());
    cmd.args(["serve", "--config"]).arg(config).stdin(Stdio::null()).stdout(Stdio::null()).stderr(file);
    match journal {
        Some(true) => cmd.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino())),
        // Inherited from a service but not this process's standard error: must be ignored.
        Some(false) => cmd.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino() + 1)),
        None => &mut cmd,
    };
    if let Some(filter) = rust_log {
        cmd.env("RUST_LOG", filter);
    }
    let mut child = KillOnDrop(cmd.spawn().expect("start clipfeed"));
    let base = poll("the daemon to listen", || {
        let text = std::fs::read_to_string(&log_path).unwrap();
        let at = text.find("listening on http://")?;
        let url: String =
            text[at + "listening on ".len()..].chars().take_while(|c| !c.is_whitespace() && *c != '"').collect();
        Some(url)
    });
    poll("readiness", || (get(&format!("{base}readyz"), &[]).status == 200).then_some(()));
    unsafe {
        libc::kill(child.0.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + DEADLINE;
    while child.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "clipfeed did not stop");
        std::thread::sleep(Duration::from_millis(20)); // poll interval
    }
    std::fs::read_to_string(&log_path).unwrap()
}

struct KillOnDrop(Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A site whose configuration asks for debug lines, with a clipping body that goes through the
/// HTML sanitiser (html5ever logs every token at debug).
fn debug_site(extra: &str) -> Site {
    let site = Site::new();
    site.write_config(&format!("log: debug\n{extra}"));
    site.put("a.md", STORY);
    site
}

#[test]
fn under_journald_every_line_carries_its_priority_and_third_party_debug_stays_out() {
    let site = debug_site("");
    let text = serve_to_file(&site.config(), Some(true), None);
    let mut priorities = std::collections::BTreeSet::new();
    for line in text.lines() {
        let (priority, rest) = line
            .strip_prefix('<')
            .and_then(|l| l.split_once('>'))
            .unwrap_or_else(|| panic!("a line without a priority prefix: {line:?}\n{text}"));
        let level = rest.split_whitespace().next().unwrap_or("");
        let expected = match level {
            "ERROR" => "3",
            "WARN" => "4",
            "INFO" => "6",
            "DEBUG" | "TRACE" => "7",
            other => panic!("no level word after the prefix ({other:?}): {line:?}"),
        };
        assert_eq!(priority, expected, "{line:?}");
        // The journal stamps lines itself: none of our own.
        assert!(!rest.starts_with(|c: char| c.is_ascii_digit()), "a time stamp under journald: {line:?}");
        priorities.insert(priority.to_string());
    }
    assert!(priorities.contains("6") && priorities.contains("7"), "info and debug lines expected:\n{text}");
    assert!(text.contains("clipfeed::"), "{text}");
    assert!(!text.contains("html5ever") && !text.contains("markup5ever"), "third-party debug lines:\n{text}");

    // RUST_LOG is taken as written: asking for everyone's debug lines gets them (which shows the
    // default above held them back), still with prefixes.
    let text = serve_to_file(&debug_site("").config(), Some(true), Some("debug"));
    assert!(text.lines().any(|l| l.starts_with("<7>") && l.contains("html5ever")), "{text}");

    // JOURNAL_STREAM naming another stream (inherited from a service, output redirected): plain lines.
    let text = serve_to_file(&debug_site("").config(), Some(false), None);
    assert!(text.lines().all(|l| !l.starts_with('<')), "{text}");
    assert!(text.lines().any(|l| l.starts_with(|c: char| c.is_ascii_digit())), "time stamps expected:\n{text}");
}

#[test]
fn log_format_json_writes_one_object_per_line() {
    for journal in [None, Some(true)] {
        let site = debug_site("log_format: json\n");
        let text = serve_to_file(&site.config(), journal, None);
        let mut messages = Vec::new();
        for line in text.lines() {
            let json = if journal.is_some() { line.get(3..).expect("prefix") } else { line };
            let v: serde_json::Value =
                serde_json::from_str(json).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
            assert!(v["level"].is_string() && v["target"].is_string() && v["timestamp"].is_string(), "{line}");
            messages.push(v);
        }
        let named = messages.iter().find(|v| v["message"] == "configuration").expect("the configuration line");
        assert_eq!(named["config"], site.config().display().to_string());
        assert_eq!(named["found_by"], "--config");
        assert!(messages.iter().any(|v| v["level"] == "DEBUG"), "{text}");
        assert!(!text.contains("html5ever"), "{text}");
    }
}

#[test]
fn completions_and_manual_come_from_the_command_line() {
    let (status, bash, _) = run(clipfeed().args(["completions", "bash"]));
    assert!(status.success());
    // Loaded into bash, it completes the subcommands.
    if have("bash") {
        let script = "source /dev/stdin; COMP_WORDS=(clipfeed ch); COMP_CWORD=1; _clipfeed clipfeed ch clipfeed; echo \"${COMPREPLY[@]}\"";
        let mut child =
            Command::new("bash").args(["-c", script]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), bash.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "check", "bash completion of `clipfeed ch`");
    }
    for shell in ["zsh", "fish"] {
        let (status, out, _) = run(clipfeed().args(["completions", shell]));
        assert!(status.success() && out.contains("serve") && out.contains("config"), "{shell}: {out}");
    }
    let (status, _, err) = run(clipfeed().args(["completions", "tcsh"]));
    assert_eq!(status.code(), Some(2), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let (status, _, err) = run(clipfeed().args(["man", "--dir"]).arg(dir.path()));
    assert!(status.success(), "{err}");
    let mut pages: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    pages.sort();
    for page in ["clipfeed.1", "clipfeed-serve.1", "clipfeed-check.1", "clipfeed-token.1", "clipfeed-completions.1"] {
        assert!(pages.contains(&page.to_string()), "{page} missing from {pages:?}");
    }
    assert!(!pages.iter().any(|p| p.contains("-man") || p.contains("-help")), "{pages:?}");
    let main = std::fs::read_to_string(dir.path().join("clipfeed.1")).unwrap();
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH FILES", ".SH ENVIRONMENT", ".SH \"EXIT STATUS\""] {
        assert!(main.contains(section), "{section} missing:\n{main}");
    }
    assert!(main.contains("/etc/clipfeed/clipfeed.yaml") && main.contains("\\fB78\\fR"), "{main}");
    // groff, when present, formats every page without a warning.
    if have("groff") {
        for page in &pages {
            let (status, _, err) =
                run(Command::new("groff").args(["-man", "-Tutf8", "-ww", "-z"]).arg(dir.path().join(page)));
            assert!(status.success() && err.trim().is_empty(), "groff on {page}: {err}");
        }
    }
    let (_, stdout_page, _) = run(clipfeed().arg("man"));
    assert_eq!(stdout_page, main, "`clipfeed man` prints the main page");
}

#[test]
fn the_packaged_configuration_is_valid_and_names_server_paths() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/clipfeed.yaml");
    let tmp = tempfile::tempdir().unwrap();
    let (status, out, err) = run(bare(tmp.path()).args(["check", "--config"]).arg(&config));
    assert!(config_line(&out).ends_with(": ok (found by --config)"), "{out}{err}");
    // Absolute paths: the file is read from /etc/clipfeed, whose folder must not matter.
    assert!(store_line(&out).starts_with("store     /var/lib/clipfeed/clipfeed.db:"), "{out}");
    if Path::new("/srv/clippings").is_dir() {
        assert!(!out.contains("error     root"), "{out}");
    } else {
        assert_eq!(status.code(), Some(1), "{out}");
        assert!(out.contains("error     root /srv/clippings: does not exist"), "{out}");
    }
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.lines().any(|l| l.trim() == "- /srv/clippings"), "{text}");
}
