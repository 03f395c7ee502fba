//! Test support: start the real `clipfeed` binary on port 0 over a temp folder, talk HTTP to it,
//! poll with deadlines, parse feeds with feed-rs (not our code), find the shared test data.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long any single wait in a test may take before it fails: generous, because CI machines
/// are shared and a debug build under load can be ten times slower than alone.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// `../shared` beside the repository (or where `CLIPFEED_SHARED` says, as for the benches), or
/// `None` (with a notice) when it is absent.
pub fn shared(sub: &str) -> Option<PathBuf> {
    let root = match std::env::var_os("CLIPFEED_SHARED") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("shared"),
    };
    let dir = root.join(sub);
    if dir.is_dir() {
        Some(dir)
    } else if std::env::var_os("CLIPFEED_REQUIRE_SHARED").is_some_and(|v| v == "1") {
        panic!("{} is required (CLIPFEED_REQUIRE_SHARED=1) but absent", dir.display());
    } else {
        eprintln!("NOTICE: {} is absent; skipping the part of this test that needs it", dir.display());
        None
    }
}

/// Whether CI demands every third-party validator (then a missing one fails instead of skipping).
pub fn validators_required() -> bool {
    std::env::var_os("CLIPFEED_REQUIRE_VALIDATORS").is_some_and(|v| v == "1")
}

/// Calls `f` until it returns `Some`, polling every 20 ms until `DEADLINE`.
#[track_caller]
pub fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {DEADLINE:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20)); // poll interval
    }
}

/// Waits until each of `paths` answers `304 Not Modified` to its own `Last-Modified`: a feed that
/// changed twice within one second (say, published empty at start and filled within that
/// second) is dated ambiguously until the clock has passed that second and its date settles at
/// a later one. Tests that compare validators over time start from settled dates.
pub fn wait_settled(d: &Daemon, paths: &[&str]) {
    poll("every feed date to settle", || {
        paths
            .iter()
            .all(|p| {
                let url = d.url(p);
                let r = get(&url, &[]);
                r.header("last-modified").is_some_and(|lm| get(&url, &[("If-Modified-Since", lm)]).status == 304)
            })
            .then_some(())
    });
}

/// A temp folder with a clippings root, a store path and a config file.
pub struct Site {
    pub dir: tempfile::TempDir,
}

impl Site {
    /// A site whose configuration listens on a port chosen now and uses it as its base URL, for
    /// clients (newsboat) that fetch feeds by the links the feeds carry.
    pub fn on_own_port() -> Site {
        let site = Site::new();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = format!(
            "listen: 127.0.0.1:{port}\nbase_url: http://127.0.0.1:{port}/\nclippings: [clippings]\nstore: data/c.db\n"
        );
        std::fs::write(site.config(), config).unwrap();
        site
    }

    pub fn new() -> Site {
        let site = Site { dir: tempfile::tempdir().expect("temp dir") };
        std::fs::create_dir_all(site.root()).unwrap();
        site.write_config("");
        site
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("clippings")
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("clipfeed.yaml")
    }

    /// Writes the config: port 0, the temp root and store, a fixed base URL, plus `extra` keys.
    pub fn write_config(&self, extra: &str) {
        let text = format!(
            "listen: 127.0.0.1:0\nbase_url: http://feeds.test/cf/\nclippings: [clippings]\nstore: data/clipfeed.db\ntitle: Test Clippings\n{extra}"
        );
        std::fs::write(self.config(), text).unwrap();
    }

    /// Writes a file under the root through a temp file and a rename, so the daemon never sees
    /// it half-written.
    pub fn put(&self, rel: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.root().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let tmp = self.dir.path().join(format!(".incoming-{}", rel.replace('/', "_")));
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        path
    }
}

/// The real binary, running.
pub struct Daemon {
    child: Child,
    pub base: String,
    /// The bearer token `/api/status` needs when the configuration sets `metrics.token`.
    pub operator: Option<String>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    pub fn start(site: &Site) -> Daemon {
        Daemon::start_config(&site.config())
    }

    pub fn start_config(config: &Path) -> Daemon {
        Daemon::start_wrapped(&[], config)
    }

    /// Starts the daemon through a wrapper command (which must `exec` it, keeping the PID), such
    /// as `unshare` with a shell that sets a limit first. The binary and its arguments follow
    /// `wrapper`.
    pub fn start_wrapped(wrapper: &[&str], config: &Path) -> Daemon {
        Daemon::spawn(serve_command(wrapper, config))
    }

    /// Runs a prepared `clipfeed serve` command (environment, wrappers, inherited descriptors
    /// set by the caller), waits for its address and for readiness.
    pub fn spawn(cmd: Command) -> Daemon {
        let d = Daemon::spawn_listening(cmd);
        d.wait_ready();
        d
    }

    /// Runs a prepared `clipfeed serve` command and returns as soon as it listens, without
    /// waiting for the first reconcile.
    pub fn spawn_listening(cmd: Command) -> Daemon {
        let (mut child, log, rx) = launch(cmd);
        let base = match rx.recv_timeout(DEADLINE) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("clipfeed did not start listening; log:\n{}", log.lock().unwrap().join("\n"));
            }
        };
        Daemon { child, base, operator: None, log }
    }

    /// Waits for the process to exit (after a signal sent by the test).
    pub fn wait_exit(mut self) -> ExitStatus {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "clipfeed did not exit");
            std::thread::sleep(Duration::from_millis(20)); // poll interval
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path.trim_start_matches('/'))
    }

    /// Waits until the first reconcile is done (`/readyz`, which anyone may read).
    pub fn wait_ready(&self) {
        poll("the daemon to be ready", || (get(&self.url("/readyz"), &[]).status == 200).then_some(()));
    }

    /// `/api/status`, read as an operator (from loopback, with `operator` as bearer token).
    pub fn status(&self) -> serde_json::Value {
        let bearer = self.operator.as_ref().map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer.iter().map(|b| ("Authorization", b.as_str())).collect();
        let r = get(&self.url("/api/status"), &headers);
        assert_eq!(r.status, 200, "/api/status: {}", r.text());
        serde_json::from_slice(&r.body).expect("status is JSON")
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Sends a signal to the daemon.
    pub fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// A number from `/api/status` (such as `renders` or `rescans`).
    pub fn counter(&self, name: &str) -> u64 {
        self.status()[name].as_u64().unwrap_or_else(|| panic!("status has no counter {name}"))
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The daemon's peak resident memory so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        peak_rss_kib(self.child.id())
    }

    /// Whether it has exited (by itself).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// SIGTERM, then wait for the exit.
    pub fn stop(mut self) -> ExitStatus {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                if !status.success() {
                    // For the test that fails on it: what the daemon said (its last lines may
                    // still be on their way).
                    eprintln!("clipfeed stopped with {status}; its log:\n{}", self.log());
                }
                return status;
            }
            assert!(Instant::now() < deadline, "clipfeed did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20)); // poll interval
        }
    }
}

/// Starts `clipfeed serve` and collects its log; the receiver gets the URL it listens on.
fn launch(mut cmd: Command) -> (Child, Arc<Mutex<Vec<String>>>, Receiver<String>) {
    let mut child = cmd
        .env("RUST_LOG", "clipfeed=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start clipfeed");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(i) = line.find("listening on http://") {
                let url = line[i + "listening on ".len()..].trim().to_string();
                let _ = tx.send(url);
            }
            sink.lock().unwrap().push(line);
        }
    });
    (child, log, rx)
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response.
pub struct Reply {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }
}

/// An HTTP client whose every request may take up to `DEADLINE` (a loaded machine running a
/// debug build answers a large view in seconds).
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(DEADLINE)).build().new_agent()
}

pub fn request(method: &str, url: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut res = agent().run(req.body(()).unwrap()).unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = res.status().as_u16();
    let headers = res
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_ascii_lowercase(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = if method == "HEAD" { Vec::new() } else { res.body_mut().read_to_vec().unwrap() };
    Reply { status, headers, body }
}

pub fn get(url: &str, headers: &[(&str, &str)]) -> Reply {
    request("GET", url, headers)
}

/// Fetches and parses a feed with feed-rs; panics unless it is a 200 that parses.
#[track_caller]
pub fn feed(url: &str) -> feed_rs::model::Feed {
    let r = get(url, &[]);
    assert_eq!(r.status, 200, "GET {url}");
    feed_rs::parser::parse(&r.body[..]).unwrap_or_else(|e| panic!("feed-rs cannot parse {url}: {e}\n{}", r.text()))
}

/// The entry with this title, if any.
pub fn entry_titled<'a>(f: &'a feed_rs::model::Feed, title: &str) -> Option<&'a feed_rs::model::Entry> {
    f.entries.iter().find(|e| e.title.as_ref().is_some_and(|t| t.content == title))
}

pub fn titles(f: &feed_rs::model::Feed) -> Vec<String> {
    f.entries.iter().filter_map(|e| e.title.as_ref().map(|t| t.content.clone())).collect()
}

/// A test-side slug of an ASCII topic name ("AWS AI" → "aws-ai"), independent of the daemon's.
pub fn ascii_slug(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join("-")
}

/// Runs a command and returns (status, stdout, stderr).
pub fn run(cmd: &mut Command) -> (ExitStatus, String, String) {
    let out = cmd.output().expect("run command");
    (out.status, String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Whether a program is on PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {program}")).output().is_ok_and(|o| o.status.success())
}

// ---------------------------------------------------------------------------------------------
// Faults: processes killed at any moment, memory, the store's integrity, mounts, privileges
// ---------------------------------------------------------------------------------------------

/// A `clipfeed serve` that is not waited for: it can be killed at any moment, even before it
/// listens (crash tests).
pub struct Process {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    listening: Receiver<String>,
    base: Option<String>,
}

impl Process {
    pub fn start(config: &Path) -> Process {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_clipfeed"));
        cmd.args(["serve", "--config"]).arg(config);
        Process::start_command(cmd)
    }

    /// Runs a prepared `clipfeed serve` command (wrappers, environment set by the caller).
    pub fn start_command(cmd: Command) -> Process {
        let (child, log, listening) = launch(cmd);
        Process { child, log, listening, base: None }
    }

    /// The URL it listens on, once it does (waiting at most `DEADLINE`).
    pub fn base(&mut self) -> String {
        if self.base.is_none() {
            match self.listening.recv_timeout(DEADLINE) {
                Ok(url) => self.base = Some(url),
                Err(_) => panic!("clipfeed did not start listening; log:\n{}", self.log()),
            }
        }
        self.base.clone().unwrap()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Sends a signal to the process.
    pub fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// Whether it has exited; once it has, with everything it wrote to its log read (the
    /// reader thread has met the end of the pipe, or `DEADLINE` has passed).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.try_wait().expect("try_wait")?;
        let deadline = Instant::now() + DEADLINE;
        loop {
            match self.listening.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(url) => self.base = Some(url),
                Err(_) => return Some(status),
            }
        }
    }

    /// SIGKILL, then reap.
    pub fn kill(mut self) -> ExitStatus {
        let _ = self.child.kill();
        self.child.wait().expect("reap clipfeed")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Peak resident memory (`VmHWM` in `/proc/PID/status`) of a process, in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM line");
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("VmHWM in kB")
}

/// The characters of `s` that XML 1.0 forbids (outside its `Char` production). The test's own
/// rule, independent of the daemon's.
pub fn xml_forbidden(s: &str) -> Vec<char> {
    s.chars()
        .filter(|&c| {
            !matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
        })
        .collect()
}

/// `PRAGMA integrity_check` of an SQLite file, through a read-only connection: `ok` when sound.
pub fn integrity_check(db: &Path) -> String {
    use rusqlite::{Connection, OpenFlags};
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .unwrap_or_else(|e| panic!("open {} read-only: {e}", db.display()));
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    let mut stmt = conn.prepare("PRAGMA integrity_check").unwrap();
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
    rows.map(|r| r.unwrap()).collect::<Vec<_>>().join("\n")
}

/// A small deterministic random number generator (SplitMix64): a test prints its seed, and the
/// same seed replays the same run.
pub struct Rng(u64);

impl Rng {
    /// Seeded from the environment variable `var` when set, else from the clock; prints the seed
    /// and how to replay it.
    pub fn from_env(var: &str) -> Rng {
        let seed = match std::env::var(var) {
            Ok(v) => v.parse().unwrap_or_else(|_| panic!("{var} must be a number")),
            Err(_) => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64,
        };
        eprintln!("random seed {seed} (replay with {var}={seed})");
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// A tmpfs mounted over a folder for the life of the value (disk-full and read-only stores).
pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it, such as `4m`) on `dir`, or prints
    /// a NOTICE and gives `None` when this process may not mount.
    pub fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let (status, _, err) =
            run(Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755"), "tmpfs"]).arg(dir));
        if status.success() {
            Some(Tmpfs { dir: dir.to_path_buf() })
        } else {
            eprintln!("NOTICE: cannot mount a tmpfs ({}); skipping the part of this test that needs one", err.trim());
            None
        }
    }

    /// Remounts with other options (`ro`, `rw`).
    pub fn remount(&self, opts: &str) {
        let (status, _, err) = run(Command::new("mount").args(["-o", &format!("remount,{opts}")]).arg(&self.dir));
        assert!(status.success(), "remount {opts} {}: {err}", self.dir.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let (status, _, _) = run(Command::new("umount").arg(&self.dir));
        if !status.success() {
            // Still busy (a daemon that a failing test has not reaped yet): detach it now, the
            // kernel frees it when the last user goes.
            let _ = run(Command::new("umount").arg("-l").arg(&self.dir));
        }
    }
}

/// The command prefix that runs the daemon as an unprivileged user, so that file permissions
/// apply to it: nothing when the tests do not run as root, `setpriv` to `nobody` (65534) when
/// they do. `None`, with a NOTICE, when root cannot drop privileges here.
pub fn unprivileged() -> Option<Vec<String>> {
    if unsafe { libc::geteuid() } != 0 {
        return Some(Vec::new());
    }
    if !have("setpriv") {
        eprintln!("NOTICE: running as root without setpriv; skipping the test of unreadable files");
        return None;
    }
    let wrapper: Vec<String> =
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"].iter().map(|s| s.to_string()).collect();
    let (status, _, err) = run(Command::new(&wrapper[0]).args(&wrapper[1..]).arg("true"));
    if status.success() {
        Some(wrapper)
    } else {
        eprintln!("NOTICE: setpriv cannot drop to uid 65534 ({}); skipping the test of unreadable files", err.trim());
        None
    }
}

/// `clipfeed serve --config CONFIG`, run through `wrapper` (a command that `exec`s what follows
/// it, keeping the PID) when one is given.
pub fn serve_command(wrapper: &[impl AsRef<std::ffi::OsStr>], config: &Path) -> Command {
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(env!("CARGO_BIN_EXE_clipfeed"));
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_clipfeed")),
    };
    cmd.args(["serve", "--config"]).arg(config);
    cmd
}
