//! The static export and nginx in front of it: the daemon keeps the tree the same as what it
//! serves (bytes, dates, gzip forms), never writes a private feed into it, leaves an operator's
//! files alone; a real nginx with `deploy/nginx/clipfeed.conf` serves the same bytes with the
//! same Last-Modified and answers conditional requests with 304.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::support::*;
use crate::websub::clip;

const FEEDS: [&str; 7] = [
    "feed.rss",
    "feed.atom",
    "feed.json",
    "topics/robots.atom",
    "topics/energy.json",
    "providers/hub.example.rss",
    "feeds.opml",
];

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { out.extend(files_under(&p)) } else { out.push(p) }
    }
    out
}

/// Every file's content as clients get it (`.gz` and `.br` decompressed).
fn plain_contents(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    files_under(dir)
        .into_iter()
        .map(|p| {
            let raw = std::fs::read(&p).unwrap();
            let text = match p.extension().and_then(|e| e.to_str()) {
                Some("gz") => gunzip(&raw),
                Some("br") => {
                    let mut out = Vec::new();
                    brotli::Decompressor::new(&raw[..], 4096).read_to_end(&mut out).unwrap();
                    out
                }
                _ => raw,
            };
            (p, text)
        })
        .collect()
}

/// A daemon exporting to `<temp>/export`, with a private topic, once the export holds the
/// newest public item.
fn exporting() -> (Site, Daemon, PathBuf, String) {
    let site = Site::new();
    site.write_config("export: export\ntopics:\n  - name: Secret\n    private: true\n");
    site.put("a.md", clip(1, "Public robots item", "Robots"));
    site.put("b.md", clip(2, "Public energy item", "Energy"));
    site.put("s.md", clip(3, "Hidden secret item", "Secret"));
    let d = Daemon::start(&site);
    let dir = site.dir.path().join("export");
    // A pass writes file after file: wait until every one is current.
    poll("the export caught up", || {
        let current = FEEDS.iter().all(|f| std::fs::read(dir.join(f)).is_ok_and(|b| b == get(&d.url(f), &[]).body));
        let newest = std::fs::read_to_string(dir.join("feed.atom")).is_ok_and(|t| t.contains("Public energy"));
        (current && newest && dir.join(".clipfeed-export").exists()).then_some(())
    });
    let (_, out, _) = run(std::process::Command::new(env!("CARGO_BIN_EXE_clipfeed")).args([
        "token",
        "list",
        "--config",
        site.config().to_str().unwrap(),
    ]));
    let token = out.lines().find(|l| l.starts_with("topics/secret")).unwrap().split('\t').nth(1).unwrap().to_string();
    (site, d, dir, token)
}

#[test]
fn the_export_is_what_the_daemon_serves_and_never_private() {
    let (site, d, dir, token) = exporting();
    for f in FEEDS {
        let r = get(&d.url(f), &[]);
        let file = std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(
            file == r.body,
            "{f}: the file differs from the served document:\n{}\n---\n{}",
            String::from_utf8_lossy(&file),
            r.text()
        );
        assert_eq!(gunzip(&std::fs::read(dir.join(format!("{f}.gz"))).unwrap()), r.body, "{f}.gz");
        let mtime = std::fs::metadata(dir.join(f)).unwrap().modified().unwrap();
        assert_eq!(Some(httpdate::fmt_http_date(mtime).as_str()), r.header("last-modified"), "{f}");
    }
    assert_eq!(std::fs::read(dir.join("index.html")).unwrap(), get(&d.url(""), &[]).body);
    // The manifest records how clipfeed serves each file (for uploads to a CDN).
    let manifest = std::fs::read_to_string(dir.join(".clipfeed-export")).unwrap();
    for f in ["feed.atom", "topics/robots.atom.gz"] {
        let cols: Vec<&str> = manifest.lines().find(|l| l.ends_with(&format!("\t{f}"))).unwrap().split('\t').collect();
        let gz = f.ends_with(".gz");
        let r = get(&d.url(f.trim_end_matches(".gz")), if gz { &[("accept-encoding", "gzip")] } else { &[] });
        assert_eq!(cols[3], r.header("etag").unwrap(), "{f}");
        assert_eq!(cols[4], r.header("content-type").unwrap(), "{f}");
        assert_eq!(cols[5], if gz { "gzip" } else { "identity" }, "{f}");
    }
    assert!(!dir.join("topics/secret.atom").exists());
    let secret = get(&d.url(&format!("topics/secret.atom?token={token}")), &[]);
    assert!(secret.text().contains("Hidden secret item"), "the private feed is served with its token");
    for (path, text) in plain_contents(&dir) {
        let text = String::from_utf8_lossy(&text);
        assert!(!text.contains("Hidden secret") && !text.contains(&token), "{} holds a private value", path.display());
    }

    // Incremental: a change rewrites what changed; an operator's file is never removed.
    std::fs::write(dir.join("robots.txt"), "User-agent: *\n").unwrap();
    site.put("c.md", clip(4, "Another robots item", "Robots"));
    poll("the change exported", || {
        let file = std::fs::read(dir.join("topics/robots.rss")).ok()?;
        let text = String::from_utf8_lossy(&file).contains("Another robots item");
        (text && file == get(&d.url("topics/robots.rss"), &[]).body).then_some(())
    });
    assert_eq!(std::fs::read_to_string(dir.join("robots.txt")).unwrap(), "User-agent: *\n");
    assert!(d.stop().success());

    // The one-shot command writes the same public tree elsewhere, and nothing private.
    let once = site.dir.path().join("once");
    let (status, _, err) = run(std::process::Command::new(env!("CARGO_BIN_EXE_clipfeed")).args([
        "export",
        "--config",
        site.config().to_str().unwrap(),
        "--out",
        once.to_str().unwrap(),
    ]));
    assert!(status.success(), "{err}");
    for f in FEEDS {
        assert!(once.join(f).is_file() && once.join(format!("{f}.gz")).is_file(), "{f}");
    }
    assert!(String::from_utf8_lossy(&std::fs::read(once.join("feed.rss")).unwrap()).contains("Public robots item"));
    for (path, text) in plain_contents(&once) {
        assert!(!String::from_utf8_lossy(&text).contains("Hidden secret"), "{}", path.display());
    }
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// nginx from the system with deploy/nginx/clipfeed.conf, in a temp prefix.
struct Nginx {
    child: std::process::Child,
    base: String,
    _prefix: tempfile::TempDir,
}

impl Nginx {
    fn start(export: &Path, upstream: &str) -> Option<Nginx> {
        let bin = ["/usr/sbin/nginx", "/usr/bin/nginx"].into_iter().find(|p| Path::new(p).exists());
        let Some(bin) = bin else {
            assert!(!validators_required(), "nginx is required (CLIPFEED_REQUIRE_VALIDATORS=1) but absent");
            eprintln!("NOTICE: nginx is absent; skipping the nginx test");
            return None;
        };
        let prefix = tempfile::tempdir().unwrap();
        let port = free_port();
        let site = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/nginx/clipfeed.conf"))
            .unwrap()
            .replace("server 127.0.0.1:8080;", &format!("server {upstream};"))
            .replace("listen 80;", &format!("listen 127.0.0.1:{port};"))
            .replace("root /var/lib/clipfeed/export;", &format!("root {};", export.display()));
        std::fs::write(prefix.path().join("clipfeed.conf"), site).unwrap();
        let p = prefix.path().display();
        let root = std::process::Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
        let user = if root { "user root;\n" } else { "" };
        let main = format!(
            "{user}daemon off;\nmaster_process off;\nworker_processes 1;\npid {p}/nginx.pid;\nerror_log {p}/error.log;\nevents {{ worker_connections 64; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {p}/body;\n  proxy_temp_path {p}/proxy;\n  fastcgi_temp_path {p}/fastcgi;\n  uwsgi_temp_path {p}/uwsgi;\n  scgi_temp_path {p}/scgi;\n  include {p}/clipfeed.conf;\n}}\n"
        );
        std::fs::write(prefix.path().join("nginx.conf"), main).unwrap();
        let child = std::process::Command::new(bin)
            .args(["-p", &p.to_string(), "-c", &format!("{p}/nginx.conf")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}/");
        let n = Nginx { child, base, _prefix: prefix };
        poll("nginx listening", || std::net::TcpStream::connect(("127.0.0.1", port)).ok());
        Some(n)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn nginx_serves_the_export_with_the_same_bytes_and_validators() {
    let (_site, d, dir, token) = exporting();
    let upstream = d.base.trim_start_matches("http://").trim_end_matches('/').to_string();
    let Some(nginx) = Nginx::start(&dir, &upstream) else { return };
    let through = |path: &str, headers: &[(&str, &str)]| get(&format!("{}{path}", nginx.base), headers);
    for f in FEEDS {
        let (direct, proxied) = (get(&d.url(f), &[]), through(f, &[]));
        assert_eq!((proxied.status, &proxied.body), (200, &direct.body), "{f}");
        for h in ["content-type", "last-modified", "cache-control"] {
            assert_eq!(proxied.header(h), direct.header(h), "{f}: {h}");
        }
        let gz = through(f, &[("accept-encoding", "gzip")]);
        assert_eq!(gz.header("content-encoding"), Some("gzip"), "{f}");
        assert_eq!(gz.body, get(&d.url(f), &[("accept-encoding", "gzip")]).body, "{f}: the same gzip bytes");
        let etag = proxied.header("etag").unwrap();
        assert_eq!(through(f, &[("if-none-match", etag)]).status, 304, "{f}");
        let since = direct.header("last-modified").unwrap();
        assert_eq!(through(f, &[("if-modified-since", since)]).status, 304, "{f}");
    }
    // What only the daemon answers goes through: filters, private feeds, the status.
    let filtered = "topics/robots.atom?q=robots";
    assert_eq!(through(filtered, &[]).body, get(&d.url(filtered), &[]).body);
    let private = format!("topics/secret.atom?token={token}");
    assert!(through(&private, &[]).text().contains("Hidden secret item"));
    assert_eq!(through("topics/secret.atom", &[]).status, 404);
    assert_eq!(through(".clipfeed-export", &[]).status, 404);
    assert_eq!(through("api/status", &[]).status, 200);
}
