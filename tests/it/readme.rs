//! The README, tested. The bundled configuration (`config/clipfeed.yaml` over
//! `examples/clippings`, both copied into a temp folder, so nothing is written in the repository)
//! is started, and every example URL the README shows is fetched: each must answer as it says.
//! Every command it shows is run where that is safe; the others are listed in [`SKIPPED`] with
//! the reason, and a command that is in neither fails the test, so a new one cannot slip by.
//! What it says tools print (the `check` report, an error message, the package's name, the
//! units' exposure) is compared with what they print.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

/// Commands the README shows that this test does not run, each with the reason.
const SKIPPED: &[(&str, &str)] = &[
    (
        "cargo run --release -- serve --config config/clipfeed.yaml",
        "run here as the binary under test, `serve --config` on a copy",
    ),
    ("cargo test", "the suite this test belongs to"),
    ("bash .ci/run", "installs packages and runs the whole suite: it is CI"),
    ("bench/run_all.sh --sizes 10000", "a release build and benchmarks of many minutes"),
    ("packaging/build-deb.sh", "builds the Debian package; CI does (.ci/run, packaging/test-deb.sh)"),
    ("sudo apt install ./target/debian/clipfeed_0.1.0-1_amd64.deb", "installs a package; CI does"),
    (
        "sudo apt install -o Dpkg::Options::=--force-confold ./target/debian/clipfeed_0.1.0-1_amd64.deb",
        "installs a package",
    ),
    ("sudoedit /etc/clipfeed/clipfeed.yaml", "an editor"),
    ("cargo build --release --locked", "a release build; the test runs the binary cargo built for it"),
    ("sudo install -m 0755 target/release/clipfeed /usr/local/bin/clipfeed", "installs into the system"),
    ("sudo install -D -m 0644 config/clipfeed.yaml /etc/clipfeed/clipfeed.yaml", "installs into the system"),
    ("sudo install -m 0644 systemd/clipfeed.service /etc/systemd/system/", "installs into the system"),
    ("sudo mkdir -p /srv/clippings", "changes the system"),
    ("sudo rm /etc/systemd/system/clipfeed.service /etc/systemd/system/clipfeed.socket", "changes the system"),
    ("sudo rm /usr/local/bin/clipfeed", "changes the system"),
    ("sudo systemctl daemon-reload", "the host's systemd"),
    ("sudo systemctl enable --now clipfeed", "the host's systemd"),
    ("sudo systemctl disable --now clipfeed clipfeed.socket", "the host's systemd"),
    ("sudo systemctl restart clipfeed", "the host's systemd"),
    ("systemctl status clipfeed", "the host's systemd"),
];

/// The first path segments of clipfeed's routes: a code span starting with `/` and one of these
/// is an example URL (the others are file names: `/etc/…`, `/srv/…`).
const ROUTES: &[&str] =
    &["", "feed", "feeds", "topics", "providers", "clippings", "healthz", "readyz", "api", "metrics"];

/// The README split into what the tests read: paragraphs outside code blocks (lines joined), and
/// code blocks with their language.
struct Readme {
    text: String,
    paragraphs: Vec<String>,
    blocks: Vec<(String, Vec<String>)>,
}

impl Readme {
    fn read() -> Readme {
        let text = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
        let (mut paragraphs, mut blocks, mut current) = (Vec::new(), Vec::new(), String::new());
        let mut block: Option<(String, Vec<String>)> = None;
        for line in text.lines() {
            if let Some(lang) = line.strip_prefix("```") {
                match block.take() {
                    Some(b) => blocks.push(b),
                    None => block = Some((lang.trim().to_string(), Vec::new())),
                }
            } else if let Some((_, lines)) = block.as_mut() {
                lines.push(line.to_string());
            } else if line.trim().is_empty() {
                paragraphs.push(std::mem::take(&mut current));
            } else {
                current.push(' ');
                current.push_str(line.trim());
            }
        }
        assert!(block.is_none(), "README.md has an unclosed code block");
        paragraphs.push(current);
        Readme { text, paragraphs, blocks }
    }

    /// Every inline code span, with the paragraph's text split around it: (before, span, after).
    fn spans(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for p in &self.paragraphs {
            let parts: Vec<&str> = p.split('`').collect();
            for i in (1..parts.len()).step_by(2) {
                out.push((parts[i - 1].to_string(), parts[i].to_string(), parts.get(i + 1).unwrap_or(&"").to_string()));
            }
        }
        out
    }

    /// Every example URL: a code span that is a path of one of clipfeed's routes, with no
    /// placeholder (`{slug}`, `…`).
    fn example_urls(&self) -> BTreeSet<String> {
        self.spans()
            .into_iter()
            .map(|(_, s, _)| s.strip_prefix("GET ").unwrap_or(&s).to_string())
            .filter(|s| {
                let first = s.get(1..).unwrap_or("").split(['/', '?', '.']).next().unwrap_or("");
                s.starts_with('/')
                    && !s.contains(char::is_whitespace)
                    && !s.contains(['{', '}', '…'])
                    && ROUTES.contains(&first)
            })
            .collect()
    }

    /// Every command: lines of `sh` blocks (comments dropped), `$ ` lines of `text` blocks, and
    /// code spans that run clipfeed. `sudo` before clipfeed is dropped (the test runs as itself).
    fn commands(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for (lang, lines) in &self.blocks {
            for line in lines {
                let line = match lang.as_str() {
                    "sh" => line.split(" #").next().unwrap_or("").trim(),
                    "text" => match line.strip_prefix("$ ") {
                        Some(command) => command.trim(),
                        None => continue,
                    },
                    _ => continue,
                };
                if !line.is_empty() && !line.starts_with('#') {
                    out.insert(line.to_string());
                }
            }
        }
        for (_, span, _) in self.spans() {
            if ["clipfeed ", "sudo clipfeed ", "sudo -u clipfeed clipfeed "].iter().any(|p| span.starts_with(p)) {
                out.insert(span);
            }
        }
        out.into_iter()
            .map(|c| {
                let bare = c.strip_prefix("sudo -u clipfeed ").or_else(|| c.strip_prefix("sudo ")).unwrap_or(&c);
                if bare.starts_with("clipfeed ") { bare.to_string() } else { c }
            })
            .collect()
    }

    /// The synopsis of the command line: the `text` block's lines that start with `clipfeed `.
    fn synopsis(&self) -> Vec<String> {
        let block = self.blocks.iter().filter(|(lang, _)| lang == "text");
        block.flat_map(|(_, lines)| lines.iter().filter(|l| l.starts_with("clipfeed ")).cloned()).collect()
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A copy of the bundled configuration and examples, laid out as in the repository (so its
/// relative paths hold, the store going to the copy's `data/`), listening on a free port with
/// the default `base_url` (that port). Returns the folder and the configuration's path.
fn bundled() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("examples"), &dir.path().join("examples"));
    let text = std::fs::read_to_string(repo().join("config/clipfeed.yaml")).unwrap();
    for line in ["listen: 127.0.0.1:8080\n", "base_url: http://127.0.0.1:8080/\n", "store: ../data/clipfeed.db\n"] {
        assert!(text.contains(line), "config/clipfeed.yaml no longer has {line:?}; update this test");
    }
    let text = text
        .replace("listen: 127.0.0.1:8080\n", "listen: 127.0.0.1:0\n")
        .replace("base_url: http://127.0.0.1:8080/\n", "");
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    let config = dir.path().join("config/clipfeed.yaml");
    std::fs::write(&config, text).unwrap();
    (dir, config)
}

/// Runs the binary under test in an empty folder, so that a command without `--config` can
/// never find the repository's own configuration (and create its store).
fn clipfeed(args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let cwd = tempfile::tempdir().unwrap();
    run(Command::new(env!("CARGO_BIN_EXE_clipfeed")).args(args).current_dir(cwd.path()))
}

#[test]
fn every_example_url_answers() {
    let readme = Readme::read();
    let (_dir, config) = bundled();
    let d = Daemon::start_config(&config);
    let urls = readme.example_urls();
    for must in ["/", "/feed.atom", "/feeds.opml", "/api/status", "/feed.rss?limit=10"] {
        assert!(urls.contains(must), "the README example {must} was not found: {urls:?}");
    }
    let browser = ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8");
    for path in &urls {
        let r = get(&d.url(path), &[]);
        assert!((200..400).contains(&r.status), "{path} answers {}: {}", r.status, String::from_utf8_lossy(&r.body));
        assert!(!r.body.is_empty(), "{path} is empty");
        // A search example finds something in the bundled examples.
        if path.contains("search=") {
            let f = feed_rs::parser::parse(&r.body[..]).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert!(!f.entries.is_empty(), "the README's search {path} finds nothing in the examples");
        }
        // Each feed URL is also a page for a browser.
        let feed = path.starts_with("/feed.") || path.starts_with("/feed/") || path.starts_with("/topics/");
        if (feed || path.starts_with("/providers/")) && !path.ends_with(".xsl") {
            let page = get(&d.url(path), &[browser]);
            assert_eq!(page.status, 200, "{path} for a browser");
            assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"), "{path} for a browser");
        }
    }
    eprintln!("README example URLs fetched: {}", urls.len());

    // "The daemon's first log line names the file and how it was found (`configuration config=…
    // found_by=--config`)".
    let shown = readme.spans().into_iter().map(|(_, s, _)| s).find(|s| s.starts_with("configuration config="));
    let shown = shown.expect("the README shows the configuration log line");
    let line = shown.replace("/etc/clipfeed/clipfeed.yaml", config.to_str().unwrap());
    let log = d.log();
    let first = log.lines().next().unwrap_or("");
    assert!(
        first.ends_with(&line) || first.contains(&format!("{line} ")),
        "the first log line is not `{line}`:\n{log}"
    );
}

#[test]
fn error_messages_are_the_ones_it_quotes() {
    let readme = Readme::read();
    let (_dir, config) = bundled();
    let d = Daemon::start_config(&config);
    // "`?limit=0` gets `query parameter 'limit': …`"
    let quoted: Vec<(String, String)> = readme
        .spans()
        .windows(2)
        .filter(|w| w[0].1.starts_with('?') && w[0].2.trim() == "gets")
        .map(|w| (w[0].1.clone(), w[1].1.clone()))
        .collect();
    assert!(!quoted.is_empty(), "the README quotes no error message for a query");
    for (query, message) in quoted {
        let r = get(&d.url(&format!("/feed.rss{query}")), &[]);
        assert_eq!(r.status, 400, "{query}");
        assert_eq!(r.text().trim_end(), message, "{query}");
    }
}

/// Runs one command of the README (clipfeed's, with `FILE` and the packaged configuration's
/// path standing for `config`, `STEM` for `topics/internal`, a redirection to a file dropped;
/// a command shown without `--config` is given `config`, as the one it would find), and checks
/// that it succeeds. Returns its standard output.
fn run_shown(command: &str, config: &Path) -> String {
    let config = config.to_str().unwrap();
    let command = command.split(" > ").next().unwrap();
    let mut args: Vec<String> = command
        .split_whitespace()
        .skip(1)
        .map(|w| match w {
            "FILE" | "/etc/clipfeed/clipfeed.yaml" => config.to_string(),
            "STEM" => "topics/internal".to_string(),
            w => w.to_string(),
        })
        .collect();
    let configured = ["serve", "check", "render", "token"].contains(&args.first().map_or("", String::as_str));
    if configured && !args.iter().any(|a| a == "--config") && !args.iter().any(|a| a == "--help") {
        args.splice(1..1, ["--config".to_string(), config.to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (status, out, err) = clipfeed(&args);
    assert!(status.success(), "`{command}` (as clipfeed {args:?}) failed ({status}):\n{out}\n{err}");
    out
}

#[test]
fn every_command_runs_or_is_listed_as_skipped() {
    let readme = Readme::read();
    let (dir, config) = bundled();
    // The bundled configuration with its commented-out private topic switched on, for `token`.
    let private = dir.path().join("config/private.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    let switched =
        text.replace("  # - name: Internal\n  #   private: true\n", "  - name: Internal\n    private: true\n");
    assert_ne!(switched, text, "config/clipfeed.yaml no longer shows a private topic; update this test");
    std::fs::write(&private, switched).unwrap();

    let skipped: BTreeSet<&str> = SKIPPED.iter().map(|(c, _)| *c).collect();
    let mut ran = Vec::new();
    for command in readme.commands() {
        if skipped.contains(command.as_str()) {
            continue;
        }
        assert!(command.starts_with("clipfeed "), "the README shows `{command}`: run it here or list it in SKIPPED");
        if command.contains(" COMMAND ") {
            for sub in ["serve", "check", "render", "token", "completions"] {
                run_shown(&command.replace("COMMAND", sub), &config);
            }
        } else if command.starts_with("clipfeed token") {
            let before = run_shown("clipfeed token --config FILE list", &private);
            let out = run_shown(&command, &private);
            let after = run_shown("clipfeed token --config FILE list", &private);
            assert!(after.contains("topics/internal"), "`clipfeed token list` lists the private topic:\n{after}");
            if command.contains("rotate") {
                assert_ne!(before, after, "`{command}` gave no new token:\n{out}");
            }
        } else {
            let out = run_shown(&command, &config);
            if command.starts_with("clipfeed completions") {
                assert!(out.contains("clipfeed"), "`{command}` printed no completions:\n{out}");
            }
        }
        ran.push(command);
    }
    assert!(ran.iter().any(|c| c.starts_with("clipfeed check --config")), "{ran:?}");
    for (command, _) in SKIPPED {
        assert!(readme.commands().contains(*command), "SKIPPED lists `{command}`, which the README no longer shows");
    }
    eprintln!("README commands run: {ran:#?}");
}

#[test]
fn the_synopsis_matches_the_help() {
    let readme = Readme::read();
    let synopsis = readme.synopsis();
    assert!(synopsis.len() >= 5, "{synopsis:?}");
    for line in synopsis {
        // The description, after the last wide gap, is prose.
        let syntax = match line.rsplit_once("  ") {
            Some((syntax, text)) if !text.trim_start().starts_with(['[', '(', '-']) => syntax,
            _ => line.as_str(),
        };
        let words: Vec<&str> =
            syntax.split(|c: char| c.is_whitespace() || "[]()|".contains(c)).filter(|w| !w.is_empty()).collect();
        let sub = words[1];
        if sub == "completions" {
            for shell in ["bash", "zsh", "fish"] {
                let (status, out, _) = clipfeed(&["completions", shell]);
                assert!(status.success() && out.contains("clipfeed"), "clipfeed completions {shell}");
            }
            continue;
        }
        let (status, help, err) = clipfeed(&[sub, "--help"]);
        assert!(status.success(), "clipfeed {sub} --help: {err}");
        for option in words.iter().filter(|w| w.starts_with('-')) {
            assert!(
                help.contains(option),
                "the README shows `{option}` for `clipfeed {sub}`; its help does not:\n{help}"
            );
        }
        // Sub-subcommands (`token list`, `token rotate`).
        for word in words.iter().skip(2).filter(|w| w.chars().all(|c| c.is_ascii_lowercase())) {
            assert!(help.contains(word), "the README shows `clipfeed {sub} {word}`; its help does not:\n{help}");
        }
    }
}

/// The report the README shows for `clipfeed check --config /etc/clipfeed/clipfeed.yaml`, made
/// here with the same clipping in a folder standing for `/srv/clippings`: the same lines, the
/// same id, topics and news site.
#[test]
fn the_check_report_is_the_one_it_shows() {
    let readme = Readme::read();
    let (_, lines) = readme
        .blocks
        .iter()
        .find(|(lang, lines)| lang == "text" && lines.iter().any(|l| l.starts_with("$ clipfeed check --config")))
        .expect("the README shows a check report");
    let dir = tempfile::tempdir().unwrap();
    let (etc, srv, var) = (dir.path().join("etc"), dir.path().join("srv/clippings"), dir.path().join("var"));
    for d in [&etc, &srv, &var] {
        std::fs::create_dir_all(d).unwrap();
    }
    let config = etc.join("clipfeed.yaml");
    let store = var.join("clipfeed.db");
    std::fs::write(&config, format!("clippings: [{}]\nstore: {}\n", srv.display(), store.display())).unwrap();
    for line in lines.iter().filter(|l| l.starts_with("ok ")) {
        let shown = line.split_whitespace().nth(1).unwrap();
        let name = shown.strip_prefix("/srv/clippings/").expect("a clipping in /srv/clippings");
        std::fs::copy(repo().join("examples/clippings").join(name), srv.join(name))
            .expect("the clipping is an example");
    }
    // The store as the daemon leaves it.
    let (status, _, err) = clipfeed(&["render", "--config", config.to_str().unwrap(), "--all"]);
    assert!(status.success(), "render: {err}");
    let (status, out, err) = clipfeed(&["check", "--config", config.to_str().unwrap()]);
    assert!(status.success(), "check: {out}\n{err}");
    let expected: Vec<String> = lines
        .iter()
        .filter(|l| !l.starts_with("$ "))
        .map(|l| {
            l.replace("/etc/clipfeed/clipfeed.yaml", config.to_str().unwrap())
                .replace("/var/lib/clipfeed/clipfeed.db", store.to_str().unwrap())
                .replace("/srv/clippings", srv.to_str().unwrap())
        })
        .collect();
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(got, expected, "clipfeed check prints:\n{out}");
}

/// The package's file name carries this version; the units' exposure is what the analyzer says.
#[test]
fn what_it_says_tools_print_is_what_they_print() {
    let readme = Readme::read();
    let deb = format!("clipfeed_{}-1_amd64.deb", env!("CARGO_PKG_VERSION"));
    // Package files named with a version (`clipfeed_NEW.deb` is a placeholder).
    let shown: BTreeSet<&str> = readme
        .text
        .split(['/', ' ', '`'])
        .filter(|w| {
            w.starts_with("clipfeed_") && w.ends_with(".deb") && w[9..].starts_with(|c: char| c.is_ascii_digit())
        })
        .collect();
    assert!(!shown.is_empty());
    assert_eq!(shown, BTreeSet::from([deb.as_str()]), "the package names the README shows");

    // "`systemd-analyze security` rates it 0.9, "SAFE"" and "the same 0.9 exposure".
    let prose = readme.paragraphs.join(" ");
    let rated = prose.split("`systemd-analyze security` rates it ").nth(1).expect("the README rates the unit");
    let (level, word) = rated.split_once(", \"").expect("a level and a word");
    let word = word.split('"').next().unwrap();
    let same = prose
        .split("with the same ")
        .skip(1)
        .find_map(|t| {
            let mut words = t.split(' ');
            let level = words.next()?;
            words.next()?.starts_with("exposure").then_some(level)
        })
        .expect("the packaged unit's level");
    assert_eq!(same, level, "the README gives the packaged unit another level");
    for (name, _) in crate::systemd::SERVICES {
        let Some((actual, actual_word)) = crate::systemd::security_rating(name) else { return };
        eprintln!("systemd-analyze security: {name}: {actual} {actual_word} (the README: {level} {word})");
        assert_eq!(format!("{actual:.1}"), level, "{name}: systemd-analyze security rates it {actual} {actual_word}");
        assert_eq!(actual_word, word, "{name}");
    }
}
