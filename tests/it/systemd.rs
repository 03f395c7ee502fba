//! The systemd units in `systemd/` (hand install) and `packaging/` (the Debian package's service):
//! `systemd-analyze verify` accepts them without a single complaint, `systemd-analyze security
//! --offline=yes` rates each service 2.0 or lower, the system-call filter lets through what the
//! daemon uses, the units say what the daemon's notify and socket-activation code and its exit
//! statuses expect, and the packaged service differs from the hand-installed one only where it
//! must.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

/// The worst exposure `systemd-analyze security` may give the service (issue 5).
const MAX_EXPOSURE: f64 = 2.0;

/// The binary the unit starts, which does not exist on a build machine.
const INSTALLED_BINARY: &str = "/usr/local/bin/clipfeed";

/// The packaged service (the socket unit is the same file in both).
const PACKAGED_SERVICE: &str = "../packaging/clipfeed.service";
/// The binary the packaged unit starts.
const PACKAGED_BINARY: &str = "/usr/bin/clipfeed";

fn unit_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd").join(name)
}

fn unit_text(name: &str) -> String {
    std::fs::read_to_string(unit_path(name)).unwrap_or_else(|e| panic!("read systemd/{name}: {e}"))
}

/// Each service unit with the binary its ExecStart= runs.
pub const SERVICES: [(&str, &str); 2] = [("clipfeed.service", INSTALLED_BINARY), (PACKAGED_SERVICE, PACKAGED_BINARY)];

/// `(section, key, value)` for every setting, in order; comments and blank lines skipped.
fn settings(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
        } else if let Some((k, v)) = line.split_once('=') {
            out.push((section.clone(), k.trim().to_string(), v.trim().to_string()));
        } else {
            panic!("not a unit file line: {line:?}");
        }
    }
    out
}

/// Every value of `key` in `section`.
fn values<'a>(settings: &'a [(String, String, String)], section: &str, key: &str) -> Vec<&'a str> {
    settings.iter().filter(|(s, k, _)| s == section && k == key).map(|(_, _, v)| v.as_str()).collect()
}

/// Whether `systemd-analyze` can run; without it the test is skipped with a notice, unless CI
/// demands every validator.
fn have_analyzer() -> bool {
    if have("systemd-analyze") {
        return true;
    }
    assert!(!validators_required(), "systemd-analyze is required (CLIPFEED_REQUIRE_VALIDATORS=1) but not installed");
    eprintln!("NOTICE: systemd-analyze is not installed; skipping the systemd unit checks");
    false
}

fn analyze() -> Command {
    let mut cmd = Command::new("systemd-analyze");
    cmd.env("LC_ALL", "C").env("SYSTEMD_PAGER", "cat").env("SYSTEMD_COLORS", "0");
    cmd
}

/// Copies both units into `dir`, the service's ExecStart pointing at the binary under test
/// (the only change, so that `verify` finds an executable; it checks every other command, such
/// as ExecReload's /bin/kill, where the unit says). `edit` may change the service first.
fn stage_units(dir: &Path, edit: impl FnOnce(String) -> String) -> (PathBuf, PathBuf) {
    stage_service(dir, SERVICES[0], edit)
}

/// [`stage_units`] for one of [`SERVICES`].
fn stage_service(
    dir: &Path,
    (name, installed): (&str, &str),
    edit: impl FnOnce(String) -> String,
) -> (PathBuf, PathBuf) {
    let service = unit_text(name);
    let prefix = format!("ExecStart={installed} ");
    let starts: Vec<&str> = service.lines().filter(|l| l.starts_with("ExecStart=")).collect();
    assert!(
        starts.len() == 1 && starts[0].starts_with(&prefix),
        "{name} should have one ExecStart= running {installed}: {starts:?}"
    );
    let binary = env!("CARGO_BIN_EXE_clipfeed");
    assert!(!binary.contains('"') && !binary.contains('\\'), "cannot quote {binary:?} for a unit file");
    let service = service.replacen(&prefix, &format!("ExecStart=\"{binary}\" "), 1);
    let service_path = dir.join("clipfeed.service");
    let socket_path = dir.join("clipfeed.socket");
    std::fs::write(&service_path, edit(service)).unwrap();
    std::fs::write(&socket_path, unit_text("clipfeed.socket")).unwrap();
    (service_path, socket_path)
}

/// Runs `systemd-analyze verify` on both staged units together (so the socket's Service= is
/// resolved against this service) and returns what it said about them. Lines about other units
/// (the host's targets, pulled in as dependencies) are the host's business and only reported.
fn verify(service: &Path, socket: &Path) -> (bool, Vec<String>) {
    // --man=no: `man` need not be installed; --generators=no: the host's generators are not ours.
    let (status, out, err) = run(analyze().args(["verify", "--man=no", "--generators=no"]).arg(service).arg(socket));
    let mut ours = Vec::new();
    for line in out.lines().chain(err.lines()).filter(|l| !l.trim().is_empty()) {
        if line.contains("clipfeed") {
            ours.push(line.to_string());
        } else {
            eprintln!("NOTICE: systemd-analyze verify, about another unit: {line}");
        }
    }
    (status.success(), ours)
}

#[test]
fn verify_accepts_both_units() {
    if !have_analyzer() {
        return;
    }
    for unit in SERVICES {
        let dir = tempfile::tempdir().unwrap();
        let (service, socket) = stage_service(dir.path(), unit, |s| s);
        let (ok, complaints) = verify(&service, &socket);
        assert!(ok && complaints.is_empty(), "systemd-analyze verify rejects {}:\n{}", unit.0, complaints.join("\n"));
    }

    // The check has teeth on this systemd: a misspelt key is only a warning (exit status 0), and
    // it must still be caught.
    let bad = tempfile::tempdir().unwrap();
    let (service, socket) = stage_units(bad.path(), |s| s.replacen("\nWatchdogSec=", "\nWatchdogSecs=", 1));
    let (_, complaints) = verify(&service, &socket);
    assert!(
        complaints.iter().any(|l| l.contains("WatchdogSecs")),
        "a misspelt key went unnoticed by the verify check: {complaints:?}"
    );
}

/// The "Overall exposure level for clipfeed.service: 0.9 SAFE" figure.
fn exposure(report: &str) -> Option<f64> {
    let line = report.lines().find(|l| l.contains("Overall exposure level for clipfeed.service:"))?;
    line.rsplit_once("clipfeed.service:")?.1.split_whitespace().next()?.parse().ok()
}

/// `systemd-analyze security --offline=yes` of one of [`SERVICES`]: its overall exposure level
/// and the word that goes with it (`0.9`, `SAFE`). `None`, with a notice, without the analyzer.
pub fn security_rating(name: &str) -> Option<(f64, String)> {
    if !have_analyzer() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("clipfeed.service");
    std::fs::copy(unit_path(name), &unit).unwrap();
    let (_, out, err) = run(analyze().args(["security", "--offline=yes", "--no-pager"]).arg(&unit));
    let level = exposure(&out).unwrap_or_else(|| panic!("no overall exposure level in:\n{out}\n{err}"));
    let line = out.lines().find(|l| l.contains("Overall exposure level for clipfeed.service:")).unwrap();
    let word = line.rsplit_once("clipfeed.service:").unwrap().1.split_whitespace().nth(1).unwrap_or("").to_string();
    Some((level, word))
}

#[test]
fn security_exposure_is_low() {
    if !have_analyzer() {
        return;
    }
    for (name, _) in SERVICES {
        // Under its installed name, which the report quotes.
        let dir = tempfile::tempdir().unwrap();
        let unit = dir.path().join("clipfeed.service");
        std::fs::copy(unit_path(name), &unit).unwrap();
        // --threshold is in tenths: exit non-zero above 2.0, on top of the parsed figure below.
        let threshold = format!("--threshold={}", (MAX_EXPOSURE * 10.0).round() as u32);
        let (status, out, err) =
            run(analyze().args(["security", "--offline=yes", "--no-pager", &threshold]).arg(&unit));
        let level = exposure(&out).unwrap_or_else(|| panic!("no overall exposure level in:\n{out}\n{err}"));
        eprintln!("systemd-analyze security --offline=yes: {name} exposure {level}");
        assert!(level <= MAX_EXPOSURE, "{name}: exposure {level} is above {MAX_EXPOSURE:.1}:\n{out}");
        assert!(status.success(), "systemd-analyze security failed on {name} ({status}):\n{out}\n{err}");
        // Offline mode parses the file itself: a setting it could not parse weakens the unit silently.
        let complaints: Vec<&str> = err.lines().filter(|l| l.contains("clipfeed")).collect();
        assert!(complaints.is_empty(), "systemd-analyze security complains about {name}:\n{}", complaints.join("\n"));
    }
}

/// The system calls of one `systemd-analyze syscall-filter` group, nested groups expanded.
fn syscall_group(group: &str, seen: &mut BTreeSet<String>) -> BTreeSet<String> {
    let mut calls = BTreeSet::new();
    if !seen.insert(group.to_string()) {
        return calls;
    }
    let (status, out, err) = run(analyze().args(["syscall-filter", "--no-pager", group]));
    assert!(status.success(), "systemd-analyze syscall-filter {group}: {err}");
    for word in out.lines().skip(1).map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        if word.starts_with('@') {
            calls.extend(syscall_group(word, seen));
        } else {
            calls.insert(word.to_string());
        }
    }
    assert!(!calls.is_empty(), "systemd-analyze knows no system calls in {group}");
    calls
}

/// The system calls the daemon makes: straces of start-up (binding its own socket, and
/// socket-activated with `$NOTIFY_SOCKET` and `$WATCHDOG_USEC` set), requests for pages, feeds
/// and metrics, a new and a removed clipping, SIGHUP, SIGUSR1 and SIGTERM; plus fdatasync,
/// connect and sendmsg, which SQLite and sd_notify may use in other configurations, and kill for
/// ExecReload's /bin/kill. fchown is left out: SQLite calls it only as root, and the unit never
/// runs the daemon as root.
const DAEMON_SYSCALLS: &[&str] = &[
    "accept4",
    "access",
    "arch_prctl",
    "bind",
    "brk",
    "clone3",
    "close",
    "connect",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "eventfd2",
    "execve",
    "exit",
    "exit_group",
    "fcntl",
    "fdatasync",
    "fsync",
    "ftruncate",
    "futex",
    "getcwd",
    "getdents64",
    "geteuid",
    "getpid",
    "getrandom",
    "getsockname",
    "getsockopt",
    "gettid",
    "inotify_add_watch",
    "inotify_init1",
    "inotify_rm_watch",
    "ioctl",
    "kill",
    "listen",
    "lseek",
    "madvise",
    "mkdir",
    "mmap",
    "mprotect",
    "munmap",
    "newfstatat",
    "openat",
    "poll",
    "prctl",
    "pread64",
    "prlimit64",
    "pwrite64",
    "read",
    "readlink",
    "recvfrom",
    "rseq",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sched_getaffinity",
    "sendmsg",
    "sendto",
    "set_robust_list",
    "set_tid_address",
    "setsockopt",
    "shutdown",
    "sigaltstack",
    "socket",
    "socketpair",
    "statx",
    "unlink",
    "write",
    "writev",
];

#[test]
fn syscall_filter_allows_what_the_daemon_uses() {
    if !have_analyzer() {
        return;
    }
    // The packaged service has the same filter (packaged_service_differs_only_in_identity_and_path).
    let unit = settings(&unit_text("clipfeed.service"));
    let (mut allowed, mut denied) = (BTreeSet::new(), BTreeSet::new());
    for value in values(&unit, "Service", "SystemCallFilter") {
        let (deny, list) = match value.strip_prefix('~') {
            Some(rest) => (true, rest),
            None => (false, value),
        };
        for item in list.split_whitespace() {
            let calls = if item.starts_with('@') {
                syscall_group(item, &mut BTreeSet::new())
            } else {
                [item.to_string()].into()
            };
            if deny { denied.extend(calls) } else { allowed.extend(calls) }
        }
    }
    assert!(!allowed.is_empty(), "the service has no SystemCallFilter= allow list");
    let blocked: Vec<&&str> =
        DAEMON_SYSCALLS.iter().filter(|c| !allowed.contains(**c) || denied.contains(**c)).collect();
    assert!(blocked.is_empty(), "SystemCallFilter= blocks system calls the daemon makes: {blocked:?}");
}

#[test]
fn units_match_the_daemon_protocol() {
    let service = settings(&unit_text("clipfeed.service"));
    let one = |key: &str| -> &str {
        let v = values(&service, "Service", key);
        assert_eq!(v.len(), 1, "clipfeed.service: expected one {key}=, found {v:?}");
        v[0]
    };
    // The daemon speaks sd_notify: READY=1, WATCHDOG=1, RELOADING=1/READY=1 after SIGHUP.
    assert_eq!(one("Type"), "notify");
    assert_eq!(one("NotifyAccess"), "main");
    assert!(!one("WatchdogSec").is_empty());
    assert_eq!(one("ExecReload"), "/bin/kill -HUP $MAINPID");
    assert_eq!(one("ExecStart"), format!("{INSTALLED_BINARY} serve --config /etc/clipfeed/clipfeed.yaml"));
    assert_eq!(one("Restart"), "on-failure");
    // No restart after a configuration error: the value is the status the binary exits with
    // when its configuration is missing.
    let (status, _, err) =
        run(Command::new(env!("CARGO_BIN_EXE_clipfeed")).args(["serve", "--config", "/nonexistent/clipfeed.yaml"]));
    assert_eq!(one("RestartPreventExitStatus"), status.code().expect("an exit status").to_string(), "{err}");
    assert_eq!(one("DynamicUser"), "yes");
    assert_eq!(one("StateDirectory"), "clipfeed");
    assert_eq!(one("ConfigurationDirectory"), "clipfeed");
    assert_eq!(one("ReadOnlyPaths"), "/srv/clippings");
    // The service also runs alone: nothing may tie it to the socket unit.
    for (section, key, value) in &service {
        assert!(
            !(section == "Unit" && value.contains("clipfeed.socket")) && key != "Sockets",
            "clipfeed.service must not depend on the socket unit: {key}={value}"
        );
    }

    let socket = settings(&unit_text("clipfeed.socket"));
    // The daemon takes exactly one inherited listening socket (LISTEN_FDS=1), not one per client.
    let listen: Vec<_> = socket.iter().filter(|(s, k, _)| s == "Socket" && k.starts_with("Listen")).collect();
    assert_eq!(listen.len(), 1, "clipfeed.socket must listen on exactly one socket: {listen:?}");
    assert_eq!((listen[0].1.as_str(), listen[0].2.as_str()), ("ListenStream", "127.0.0.1:8080"));
    assert!(
        values(&socket, "Socket", "Accept").iter().all(|v| *v == "no"),
        "Accept=yes would start one daemon per client"
    );
    assert_eq!(values(&socket, "Socket", "Service"), ["clipfeed.service"]);
    // The service's IP access list does not cover a socket passed in: both units need their own.
    for (name, unit) in [("clipfeed.service", &service), ("clipfeed.socket", &socket)] {
        let section = if name.ends_with("socket") { "Socket" } else { "Service" };
        assert_eq!(values(unit, section, "IPAddressDeny"), ["any"], "{name}");
        assert_eq!(values(unit, section, "IPAddressAllow"), ["localhost"], "{name}");
    }
}

#[test]
fn packaged_service_differs_only_in_identity_and_path() {
    let hand = settings(&unit_text("clipfeed.service"));
    let packaged = settings(&unit_text(PACKAGED_SERVICE));
    // What must differ, and how: the binary's place, a fixed user and group instead of a dynamic
    // one, and a state folder and files the group may read.
    let differences = [
        (
            "ExecStart",
            Some("/usr/local/bin/clipfeed serve --config /etc/clipfeed/clipfeed.yaml"),
            Some("/usr/bin/clipfeed serve --config /etc/clipfeed/clipfeed.yaml"),
        ),
        ("DynamicUser", Some("yes"), None),
        ("User", None, Some("clipfeed")),
        ("Group", None, Some("clipfeed")),
        ("StateDirectoryMode", Some("0700"), Some("0750")),
        ("UMask", Some("0077"), Some("0027")),
    ];
    for (key, in_hand, in_package) in differences {
        assert_eq!(
            values(&hand, "Service", key),
            in_hand.into_iter().collect::<Vec<_>>(),
            "systemd/clipfeed.service {key}="
        );
        assert_eq!(
            values(&packaged, "Service", key),
            in_package.into_iter().collect::<Vec<_>>(),
            "packaging/clipfeed.service {key}="
        );
    }
    let rest = |unit: &[(String, String, String)]| -> Vec<(String, String, String)> {
        unit.iter().filter(|(_, k, _)| !differences.iter().any(|(d, _, _)| d == k)).cloned().collect()
    };
    assert_eq!(rest(&packaged), rest(&hand), "the packaged service differs from systemd/clipfeed.service elsewhere");
    // DynamicUser=yes implied these; without it they must be set explicitly (they are, in both).
    for key in ["ProtectSystem", "ProtectHome", "PrivateTmp", "RemoveIPC", "NoNewPrivileges", "RestrictSUIDSGID"] {
        assert_eq!(values(&packaged, "Service", key).len(), 1, "packaging/clipfeed.service lacks {key}=");
    }
    // The user the unit names is the one the package creates.
    let sysusers = std::fs::read_to_string(unit_path("../packaging/clipfeed.sysusers")).unwrap();
    let entry: Vec<&str> =
        sysusers.lines().find(|l| l.starts_with("u ")).expect("a user line").split_whitespace().collect();
    assert_eq!(entry[1], "clipfeed");
    assert!(sysusers.contains("/var/lib/clipfeed"), "{sysusers}");
}
