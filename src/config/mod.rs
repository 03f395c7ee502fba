//! The YAML configuration: [`RawConfig`] is the file as written (unknown keys are errors),
//! [`Config`] the validated form the rest of the program uses (absolute paths, a parsed socket
//! address and base URL, a topic table). [`Config::parse`] is pure but for the store's default,
//! which follows `$STATE_DIRECTORY` ([`crate::locate`]); [`Config::load`] reads the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::text;

mod changes;
mod files;
mod network;
mod raw;
mod topics;
mod visibility;

pub use changes::Reloaded;
pub(crate) use files::is_hidden;
pub use network::Network;
pub use raw::{RawConfig, WatchMode};
pub use topics::Topics;
pub use visibility::FeedLog;
pub(crate) use visibility::PUBLIC_CLASS;

use topics::build_topics;

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    /// Absolute http(s) URL ending in `/`; the only source of absolute URLs in our output.
    pub(crate) base_url: url::Url,
    /// Whether `base_url` was given; when not, it is derived from the address actually bound.
    pub(crate) base_url_given: bool,
    /// Absolute, lexically normalised roots, in the order given, without duplicates.
    pub clippings: Vec<PathBuf>,
    /// Each root of `clippings` as the file writes it, for messages that must not show where
    /// the configuration's folder is.
    pub(crate) root_names: Vec<String>,
    pub(crate) store: PathBuf,
    pub(crate) title: String,
    pub(crate) description: String,
    pub(crate) items_per_feed: usize,
    pub(crate) max_file_bytes: u64,
    /// Lowercase, without dots.
    pub(crate) extensions: Vec<String>,
    pub(crate) topics: Topics,
    /// A tracing filter directive (`info`, `clipfeed=debug`); `RUST_LOG` wins when set.
    pub(crate) log: String,
    /// Text lines for people or JSON lines for log pipelines; needs a restart to change.
    pub(crate) log_format: crate::logging::LogFormat,
    /// `Cache-Control: max-age` of feeds and pages, in seconds.
    pub(crate) cache_max_age: u32,
    /// How long a deleted clipping's Atom tombstone stays in its feeds, in days.
    pub(crate) tombstone_days: u32,
    pub(crate) watch: WatchMode,
    /// Seconds between scans of roots that are polled.
    pub(crate) poll_interval: std::time::Duration,
    /// Providers whose feeds are private, by domain (see [`visibility::Visibility`]).
    private_providers: std::collections::BTreeSet<String>,
    /// Providers written with `private: false`, by domain.
    public_providers: std::collections::BTreeSet<String>,
    /// Networks allowed to read `/metrics`, and the bearer token it may also require.
    pub(crate) metrics_allow: Vec<Network>,
    pub(crate) metrics_token: Option<String>,
    /// Limits of the HTTP server; they need a restart to change.
    pub(crate) http: HttpLimits,
    /// The WebSub hub and the external hubs (`websub:`); they need a restart to change.
    pub(crate) websub: crate::websub::Settings,
    /// The static export kept up to date by the daemon (`export`, `export_group`).
    pub(crate) export: Option<crate::export::Target>,
}

/// What the HTTP server allows a client: how long it may take to send a request head, how long a
/// response may stall, how many connections may be open at once, how large a request head may
/// be, and how long a stop waits for requests in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLimits {
    /// A connection must deliver a complete request head within this time of opening, or of the
    /// end of its previous response; otherwise it is closed. This cuts off clients that send
    /// their headers a byte at a time, and is also how long an idle kept-alive connection stays.
    pub(crate) header_timeout: std::time::Duration,
    /// A response that cannot send a single byte for this long (the client stopped reading) is
    /// abandoned and its connection closed.
    pub(crate) send_timeout: std::time::Duration,
    /// Connections open at once. At the limit the server stops accepting until one closes; the
    /// waiting clients stay in the kernel's queue. Lowered at start-up to what the file
    /// descriptor limit allows.
    pub(crate) max_connections: usize,
    /// The largest request head (request line and header fields together); 431 beyond.
    pub(crate) max_head_bytes: usize,
    /// The most header fields in one request; 431 beyond.
    pub(crate) max_headers: usize,
    /// The longest request target (path and query); 414 beyond.
    pub(crate) max_url_bytes: usize,
    /// How long requests in flight may run on after a stop signal before their connections are
    /// closed.
    pub(crate) shutdown_grace: std::time::Duration,
    /// Connections open at once from one client address (an IPv6 client counts per /64), and
    /// requests in flight from one client behind a trusted proxy.
    pub(crate) max_connections_per_address: usize,
    /// How long a view made on request (archive page, filtered view, clipping page) may take,
    /// waiting for its turn included, before it is abandoned with a 503.
    pub(crate) view_timeout: std::time::Duration,
    /// Proxies whose `Forwarded` / `X-Forwarded-For` headers name the client.
    pub(crate) trusted_proxies: Vec<Network>,
}

impl Config {
    /// Reads and validates the file at `path`; relative paths in it are resolved against the
    /// file's folder.
    ///
    /// Refused: a file with no setting at all (empty, or comments only: what an editor's save or
    /// a configuration tool's write caught half-way looks like, and which would otherwise mean
    /// every default, no private feed among them), and a file that changes while it is read (it
    /// is read twice and both must agree).
    pub fn load(path: &Path) -> Result<Config> {
        let read = || std::fs::read(path).with_context(|| format!("cannot read config file {}", path.display()));
        let (first, second) = (read()?, read()?);
        let text = settled_text(path, first, second)?;
        let abs = std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))?;
        let dir = abs.parent().unwrap_or(Path::new("/"));
        Config::parse(&text, dir).with_context(|| format!("invalid config file {}", path.display()))
    }

    /// Validates configuration text; relative paths are resolved against `base_dir`.
    pub(crate) fn parse(text: &str, base_dir: &Path) -> Result<Config> {
        let raw: RawConfig = if text.trim().is_empty() {
            serde_yaml::from_str("{}").expect("empty mapping")
        } else {
            let de = serde_yaml::Deserializer::from_str(text);
            serde_path_to_error::deserialize(de).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                if path == "." { anyhow::anyhow!("{inner}") } else { anyhow::anyhow!("key '{path}': {inner}") }
            })?
        };
        Config::from_raw(raw, base_dir)
    }

    fn from_raw(raw: RawConfig, base_dir: &Path) -> Result<Config> {
        let listen: SocketAddr = raw
            .listen
            .parse()
            .with_context(|| format!("key 'listen': {:?} is not an address like 127.0.0.1:8080", raw.listen))?;
        let base_url_given = raw.base_url.is_some();
        let base_url = base_url(raw.base_url.as_deref(), listen)?;
        let (clippings, root_names) = roots(&raw.clippings, base_dir)?;
        if !(1..=10_000).contains(&raw.items_per_feed) {
            bail!("key 'items_per_feed': {} is out of range (1 to 10000)", raw.items_per_feed);
        }
        if raw.max_file_bytes == 0 {
            bail!("key 'max_file_bytes': must be at least 1");
        }
        let extensions = extensions(&raw.extensions)?;
        let title = text::plain_text(&raw.title);
        if title.is_empty() {
            bail!("key 'title': must not be empty");
        }
        let description = raw
            .description
            .map(|d| text::plain_text(&d))
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| format!("{title}: news clippings by topic and by news site"));
        let topics = build_topics(raw.topics)?;
        let (private_providers, public_providers) = private_providers(&raw.providers)?;
        let (metrics_allow, metrics_token) = metrics_access(raw.metrics)?;
        if !(1..=3600).contains(&raw.poll_interval) {
            bail!("key 'poll_interval': {} is out of range (1 to 3600 seconds)", raw.poll_interval);
        }
        if raw.tombstone_days > 3650 {
            bail!("key 'tombstone_days': {} is out of range (0 to 3650)", raw.tombstone_days);
        }
        let http = http_limits(&raw.http)?;
        let websub = crate::websub::Settings::from_raw(raw.websub, base_dir)?;
        let export = crate::export::Target::from_config(raw.export.as_deref(), raw.export_group, base_dir)?;
        if let Some(t) = &export
            && let Some(root) = clippings.iter().find(|r| t.dir.starts_with(r) || r.starts_with(&t.dir))
        {
            bail!(
                "key 'export': {} and the clippings folder {} overlap; clipfeed never writes under a clippings folder",
                t.dir.display(),
                root.display()
            );
        }
        let log = raw.log.unwrap_or_else(|| "info".into());
        if tracing_subscriber::EnvFilter::try_new(&log).is_err() {
            bail!("key 'log': {log:?} is not a log filter such as \"info\" or \"clipfeed=debug\"");
        }
        Ok(Config {
            listen,
            base_url,
            base_url_given,
            clippings,
            root_names,
            store: match raw.store {
                Some(store) => normalize(&base_dir.join(store)),
                None => crate::locate::default_store(base_dir),
            },
            title,
            description,
            items_per_feed: raw.items_per_feed as usize,
            max_file_bytes: raw.max_file_bytes,
            extensions,
            topics,
            log,
            log_format: raw.log_format,
            cache_max_age: raw.cache_max_age,
            tombstone_days: raw.tombstone_days,
            watch: raw.watch,
            poll_interval: std::time::Duration::from_secs(u64::from(raw.poll_interval)),
            private_providers,
            public_providers,
            metrics_allow,
            metrics_token,
            http,
            websub,
            export,
        })
    }

    /// A root as the configuration writes it, from the key it is stored under (its absolute
    /// path); messages shown to others name roots this way, never by where they are.
    pub(crate) fn root_name(&self, stored: &str) -> &str {
        let found = self.clippings.iter().zip(&self.root_names).find(|(abs, _)| abs.to_string_lossy() == stored);
        found.map_or("(a root no longer configured)", |(_, name)| name.as_str())
    }

    /// The built-in defaults (`clipfeed check` without `--config`).
    pub(crate) fn built_in() -> Config {
        Config::parse("", Path::new(".")).expect("the defaults are valid")
    }

    /// A configuration for tests: one root, an in-memory friendly store path, port 0.
    pub fn for_test(root: &Path, store: &Path) -> Config {
        let text = format!(
            "listen: 127.0.0.1:0\nbase_url: http://feeds.test/\nclippings: [{:?}]\nstore: {:?}\n",
            root.display().to_string(),
            store.display().to_string()
        );
        Config::parse(&text, Path::new("/")).expect("test config")
    }

    /// Fills in the base URL from the address actually bound, when none was configured (so
    /// `listen: 127.0.0.1:0` gives links with the chosen port).
    pub(crate) fn bound_to(&mut self, addr: SocketAddr) {
        if self.base_url_given {
            return;
        }
        let ip = if addr.ip().is_unspecified() { "127.0.0.1".to_string() } else { addr.ip().to_string() };
        let host = if addr.is_ipv6() && !addr.ip().is_unspecified() { format!("[{ip}]") } else { ip };
        if let Ok(u) = url::Url::parse(&format!("http://{host}:{}/", addr.port())) {
            self.base_url = u;
        }
    }

    /// Absolute URL of a path below the base URL (`path` has no leading slash).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// The WebSub hubs a feed advertises: this daemon's hub at `/websub` when `websub.enabled`,
    /// then the external `websub.hubs`, which a private feed never names.
    pub(crate) fn advertised_hubs(&self, private: bool) -> Vec<String> {
        let own = self.url("websub");
        self.websub.advertised_hubs(&own, private).into_iter().map(String::from).collect()
    }
}

/// The base URL: as given (an absolute http(s) URL, without query or fragment, made to end in
/// `/`), or derived from the listening address.
fn base_url(given: Option<&str>, listen: SocketAddr) -> Result<url::Url> {
    let base_raw = given.map(str::to_string).unwrap_or_else(|| {
        let host = if listen.ip().is_unspecified() { "127.0.0.1".to_string() } else { listen.ip().to_string() };
        let host = if listen.is_ipv6() && !listen.ip().is_unspecified() { format!("[{host}]") } else { host };
        format!("http://{host}:{}/", listen.port())
    });
    let mut base_url =
        url::Url::parse(&base_raw).with_context(|| format!("key 'base_url': {base_raw:?} is not an absolute URL"))?;
    if !matches!(base_url.scheme(), "http" | "https") || base_url.host_str().is_none() {
        bail!("key 'base_url': {base_raw:?} must be an http or https URL");
    }
    if base_url.query().is_some() || base_url.fragment().is_some() {
        bail!("key 'base_url': {base_raw:?} must not have a query or fragment");
    }
    if !base_url.path().ends_with('/') {
        let p = format!("{}/", base_url.path());
        base_url.set_path(&p);
    }
    Ok(base_url)
}

/// The configuration text from two reads of the file, refused when they differ (the file was
/// being written), when it is not UTF-8, or when it sets nothing.
fn settled_text(path: &Path, first: Vec<u8>, second: Vec<u8>) -> Result<String> {
    if first != second {
        bail!("config file {} changed while it was read; refused (try again once it is written)", path.display());
    }
    let text = String::from_utf8(first).with_context(|| format!("config file {} is not UTF-8", path.display()))?;
    if !has_settings(&text) {
        bail!(
            "config file {} has no settings (it is empty or only comments); refused, since it would make every feed public",
            path.display()
        );
    }
    Ok(text)
}

/// Whether configuration text sets anything: a line that is neither blank, a comment, nor a YAML
/// document marker.
fn has_settings(text: &str) -> bool {
    text.lines().map(str::trim).any(|l| !l.is_empty() && !l.starts_with('#') && l != "---" && l != "...")
}

/// The roots: absolute, lexically normalised, without duplicates, none inside another; and each
/// as written.
fn roots(raw: &[PathBuf], base_dir: &Path) -> Result<(Vec<PathBuf>, Vec<String>)> {
    if raw.is_empty() {
        bail!("key 'clippings': give at least one folder to watch");
    }
    let mut clippings: Vec<PathBuf> = Vec::new();
    let mut names = Vec::new();
    for p in raw {
        let abs = normalize(&base_dir.join(p));
        if !clippings.contains(&abs) {
            clippings.push(abs);
            names.push(p.display().to_string());
        }
    }
    for (i, a) in clippings.iter().enumerate() {
        for b in &clippings[i + 1..] {
            if a.starts_with(b) || b.starts_with(a) {
                bail!(
                    "key 'clippings': {} and {} overlap; give folders that do not contain each other",
                    a.display(),
                    b.display()
                );
            }
        }
    }
    Ok((clippings, names))
}

/// The extensions: lowercase, without dots, without duplicates, at least one.
fn extensions(raw: &[String]) -> Result<Vec<String>> {
    let mut extensions = Vec::new();
    for e in raw {
        let e = e.trim().trim_start_matches('.').to_ascii_lowercase();
        if e.is_empty() || e.contains(['/', '\\', '.']) || e.contains(char::is_whitespace) {
            bail!("key 'extensions': {e:?} is not a file extension");
        }
        if !extensions.contains(&e) {
            extensions.push(e);
        }
    }
    if extensions.is_empty() {
        bail!("key 'extensions': give at least one extension");
    }
    Ok(extensions)
}

/// The domains of the providers marked private.
/// The providers written `private: true`, and those written `private: false`, by domain.
type ProviderPrivacy = (std::collections::BTreeSet<String>, std::collections::BTreeSet<String>);

fn private_providers(raw: &[raw::RawProvider]) -> Result<ProviderPrivacy> {
    let (mut private, mut public) = ProviderPrivacy::default();
    for (i, p) in raw.iter().enumerate() {
        let Some(domain) = text::normalize_domain(&p.domain) else {
            bail!("key 'providers[{i}].domain': {:?} is not a domain", p.domain);
        };
        match p.private {
            Some(true) => private.insert(domain),
            Some(false) => public.insert(domain),
            None => false,
        };
    }
    Ok((private, public))
}

/// Who may read `/metrics`: the networks, and the bearer token if any.
fn metrics_access(raw: raw::RawMetrics) -> Result<(Vec<Network>, Option<String>)> {
    let allow = networks("metrics.allow", &raw.allow)?;
    let token = match raw.token {
        Some(t) if t.trim().len() < 16 => bail!("key 'metrics.token': use at least 16 characters"),
        other => other.map(|t| t.trim().to_string()),
    };
    Ok((allow, token))
}

/// The networks of a list key, or an error naming the entry that is not one.
fn networks(key: &str, list: &[String]) -> Result<Vec<Network>> {
    let parse = |(i, n): (usize, &String)| {
        Network::parse(n).with_context(|| format!("key '{key}[{i}]': {n:?} is not a network like 127.0.0.0/8"))
    };
    list.iter().enumerate().map(parse).collect()
}

/// The HTTP server's limits, each within its range.
fn http_limits(h: &raw::RawHttp) -> Result<HttpLimits> {
    let ranges = [
        ("http.header_timeout", h.header_timeout, 1, 3600),
        ("http.send_timeout", h.send_timeout, 1, 3600),
        ("http.shutdown_grace", h.shutdown_grace, 1, 3600),
        ("http.max_connections", h.max_connections, 1, 1_000_000),
        ("http.max_head_bytes", h.max_head_bytes, 1024, 1 << 20),
        ("http.max_headers", h.max_headers, 8, 1000),
        ("http.max_url_bytes", h.max_url_bytes, 64, 1 << 20),
        ("http.max_connections_per_address", h.max_connections_per_address, 1, 1_000_000),
        ("http.view_timeout", h.view_timeout, 1, 3600),
    ];
    for (key, value, min, max) in ranges {
        if !(min..=max).contains(&value) {
            bail!("key '{key}': {value} is out of range ({min} to {max})");
        }
    }
    let secs = |s: u32| std::time::Duration::from_secs(u64::from(s));
    Ok(HttpLimits {
        header_timeout: secs(h.header_timeout),
        send_timeout: secs(h.send_timeout),
        max_connections: h.max_connections as usize,
        max_head_bytes: h.max_head_bytes as usize,
        max_headers: h.max_headers as usize,
        max_url_bytes: h.max_url_bytes as usize,
        shutdown_grace: secs(h.shutdown_grace),
        max_connections_per_address: h.max_connections_per_address as usize,
        view_timeout: secs(h.view_timeout),
        trusted_proxies: networks("http.trusted_proxies", &h.trusted_proxies)?,
    })
}

/// Lexical normalisation: removes `.` and resolves `..` without touching the filesystem (roots may
/// not exist yet, and symlinked roots must keep the path the user gave).
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(text, Path::new("/etc/clipfeed"))
    }

    fn err(text: &str) -> String {
        format!("{:#}", parse(text).expect_err("should fail"))
    }

    #[test]
    fn defaults_and_paths() {
        let c = parse("clippings: [../examples/clippings, /abs/dir]\nstore: ../data/c.db\n").unwrap();
        assert_eq!(c.clippings, vec![PathBuf::from("/etc/examples/clippings"), PathBuf::from("/abs/dir")]);
        assert_eq!(c.store, PathBuf::from("/etc/data/c.db"));
        assert_eq!(c.base_url.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(c.items_per_feed, 50);
        assert_eq!(c.max_file_bytes, 1 << 20);
        assert_eq!(c.extensions, vec!["md", "markdown", "txt"]);
        assert_eq!(parse("").unwrap().title, "Clippings");
    }

    #[test]
    fn default_base_url_follows_the_bound_port() {
        let mut c = parse("listen: 127.0.0.1:0\n").unwrap();
        c.bound_to("127.0.0.1:43557".parse().unwrap());
        assert_eq!(c.base_url.as_str(), "http://127.0.0.1:43557/");
        let mut c = parse("listen: 0.0.0.0:0\n").unwrap();
        c.bound_to("0.0.0.0:8081".parse().unwrap());
        assert_eq!(c.base_url.as_str(), "http://127.0.0.1:8081/");
        let mut c = parse("listen: 127.0.0.1:0\nbase_url: https://feeds.example/\n").unwrap();
        c.bound_to("127.0.0.1:43557".parse().unwrap());
        assert_eq!(c.base_url.as_str(), "https://feeds.example/");
    }

    #[test]
    fn base_url_gets_a_trailing_slash() {
        let c = parse("base_url: https://example.com/feeds\n").unwrap();
        assert_eq!(c.base_url.as_str(), "https://example.com/feeds/");
        assert_eq!(c.url("feed.rss"), "https://example.com/feeds/feed.rss");
    }

    #[test]
    fn errors_name_the_key() {
        assert!(err("lsten: 1\n").contains("lsten"));
        assert!(err("items_per_feed: 0\n").contains("items_per_feed"));
        assert!(err("items_per_feed: 10001\n").contains("items_per_feed"));
        assert!(err("items_per_feed: lots\n").contains("items_per_feed"));
        assert!(err("listen: nowhere\n").contains("listen"));
        assert!(err("base_url: ftp://x/\n").contains("base_url"));
        assert!(err("base_url: not a url\n").contains("base_url"));
        assert!(err("extensions: []\n").contains("extensions"));
        assert!(err("clippings: []\n").contains("clippings"));
        assert!(err("topics:\n  - name: A\n    colour: red\n").contains("colour"));
        assert!(err("topics:\n  - name: A\n    slug: Bad Slug\n").contains("topics[0].slug"));
        assert!(err("topics:\n  - name: A\n  - name: a\n").contains("topics[1]"));
        assert!(err("clippings: [a, a/b]\n").contains("overlap"));
        assert!(err("log: \"[[[\"\n").contains("log"));
    }

    #[test]
    fn topic_aliases() {
        let c =
            parse("topics:\n  - name: AWS AI\n    aliases: [Amazon AI]\n  - name: Vision\n    slug: computer-vision\n")
                .unwrap();
        assert_eq!(c.topics.slug_for("amazon  ai").as_deref(), Some("aws-ai"));
        assert_eq!(c.topics.slug_for("AWS AI").as_deref(), Some("aws-ai"));
        assert_eq!(c.topics.slug_for("vision").as_deref(), Some("computer-vision"));
        assert_eq!(c.topics.slug_for("Robots").as_deref(), Some("robots"));
        assert_eq!(c.topics.slug_for("../x"), None);
        assert_eq!(c.topics.get("aws-ai").unwrap().name, "AWS AI");
    }

    #[test]
    fn per_topic_settings() {
        let c = parse("topics:\n  - name: Robots\n    items_per_feed: 5\n    min_quality: 10\n    keywords: [\"Humanoid\", \"robot arm\"]\n    hide_unpublished: true\n").unwrap();
        let t = c.topics.get("robots").unwrap();
        assert_eq!(t.items_per_feed, Some(5));
        assert!(t.admits(Some(10), false));
        assert!(!t.admits(Some(9), false));
        assert!(!t.admits(None, false), "no quality is below any threshold");
        assert!(!t.admits(Some(50), true));
        assert!(t.keyword_in(&text::words("A new Robot-Arm, built cheaply")));
        assert!(t.keyword_in(&text::words("Humanoids? No: a humanoid")));
        assert!(!t.keyword_in(&text::words("Humanoids only")));
        assert!(c.topics.has_keywords());
        assert!(err("topics:\n  - name: A\n    items_per_feed: 0\n").contains("topics[0].items_per_feed"));
        assert!(err("topics:\n  - name: A\n    keywords: [\"!!\"]\n").contains("topics[0].keywords"));
        assert!(err("tombstone_days: 99999\n").contains("tombstone_days"));
        assert!(err("watch: sometimes\n").contains("watch"));
        assert!(err("poll_interval: 0\n").contains("poll_interval"));
        let c = parse("watch: poll\npoll_interval: 2\n").unwrap();
        assert_eq!((c.watch, c.poll_interval.as_secs()), (WatchMode::Poll, 2));
        assert_eq!(parse("").unwrap().cache_max_age, 60);
    }

    #[test]
    fn http_limits() {
        let d = parse("").unwrap().http;
        assert_eq!((d.header_timeout.as_secs(), d.send_timeout.as_secs(), d.max_connections), (10, 30, 4096));
        let c = parse("http:\n  header_timeout: 2\n  send_timeout: 3\n  max_connections: 50\n").unwrap().http;
        assert_eq!((c.header_timeout.as_secs(), c.send_timeout.as_secs(), c.max_connections), (2, 3, 50));
        assert!(err("http:\n  header_timeout: 0\n").contains("http.header_timeout"));
        assert!(err("http:\n  send_timeout: 3601\n").contains("http.send_timeout"));
        assert!(err("http:\n  max_connections: 0\n").contains("http.max_connections"));
        assert!(err("http:\n  keepalive: 5\n").contains("keepalive"));
        assert_eq!(
            (d.max_head_bytes, d.max_headers, d.max_url_bytes, d.shutdown_grace.as_secs()),
            (32768, 100, 8192, 10)
        );
        let c = parse("http:\n  max_head_bytes: 4096\n  max_headers: 20\n  max_url_bytes: 100\n  shutdown_grace: 2\n")
            .unwrap()
            .http;
        assert_eq!((c.max_head_bytes, c.max_headers, c.max_url_bytes, c.shutdown_grace.as_secs()), (4096, 20, 100, 2));
        assert!(err("http:\n  max_head_bytes: 100\n").contains("http.max_head_bytes"));
        assert!(err("http:\n  max_headers: 1001\n").contains("http.max_headers"));
        assert!(err("http:\n  max_url_bytes: 0\n").contains("http.max_url_bytes"));
        assert!(err("http:\n  shutdown_grace: 0\n").contains("http.shutdown_grace"));
        assert_eq!(d.max_connections_per_address, 256);
        assert_eq!(d.view_timeout, std::time::Duration::from_secs(5));
        assert!(d.trusted_proxies.is_empty());
        let c = parse(
            "http:\n  max_connections_per_address: 8\n  view_timeout: 2\n  trusted_proxies: [10.0.0.0/8, \"::1\"]\n",
        )
        .unwrap()
        .http;
        assert_eq!((c.max_connections_per_address, c.view_timeout.as_secs()), (8, 2));
        assert!(c.trusted_proxies[0].contains("10.9.8.7".parse().unwrap()));
        assert!(c.trusted_proxies[1].contains("::1".parse().unwrap()));
        assert!(err("http:\n  max_connections_per_address: 0\n").contains("http.max_connections_per_address"));
        assert!(err("http:\n  view_timeout: 0\n").contains("http.view_timeout"));
        assert!(err("http:\n  trusted_proxies: [nope]\n").contains("http.trusted_proxies[0]"));
    }

    #[test]
    fn private_feeds_and_metrics_access() {
        let c = parse(
            "topics:\n  - name: Internal\n    private: true\nproviders:\n  - domain: Secret.Example\n    private: true\nmetrics:\n  allow: [10.0.0.0/8, \"::1\"]\n  token: a-long-enough-token\n",
        )
        .unwrap();
        assert!(c.topics.get("internal").unwrap().private);
        assert!(c.visibility().is_private(&crate::feed_key::FeedKey::Provider("secret.example".into())));
        assert!(c.metrics_allow[0].contains("10.1.2.3".parse().unwrap()));
        assert!(!c.metrics_allow[0].contains("11.1.2.3".parse().unwrap()));
        assert!(c.metrics_allow[1].contains("::1".parse().unwrap()));
        assert_eq!(c.metrics_token.as_deref(), Some("a-long-enough-token"));
        let d = parse("").unwrap();
        assert!(d.metrics_allow.iter().any(|n| n.contains("127.0.0.1".parse().unwrap())));
        assert!(d.metrics_allow.iter().any(|n| n.contains("::ffff:127.0.0.1".parse().unwrap())), "mapped IPv4");
        assert!(!d.metrics_allow.iter().any(|n| n.contains("192.168.1.1".parse().unwrap())));
        assert!(err("metrics:\n  allow: [nonsense]\n").contains("metrics.allow[0]"));
        assert!(err("metrics:\n  token: short\n").contains("metrics.token"));
        assert!(err("providers:\n  - domain: \"a..b\"\n").contains("providers[0].domain"));
        assert!(Network::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        assert!(Network::parse("10.0.0.0/33").is_none());
    }

    #[test]
    fn extensions_are_normalised() {
        let c = parse("extensions: [\".MD\", txt]\n").unwrap();
        assert_eq!(c.extensions, ["md", "txt"]);
    }

    #[test]
    fn a_file_read_twice_must_agree_and_set_something() {
        let p = Path::new("/etc/clipfeed.yaml");
        let full = b"title: News\ntopics:\n  - name: Internal\n    private: true\n".to_vec();
        let half = b"title: News\ntopics:\n".to_vec();
        let e = settled_text(p, half, full.clone()).unwrap_err().to_string();
        assert!(e.contains("changed while it was read"), "{e}");
        assert_eq!(settled_text(p, full.clone(), full.clone()).unwrap().as_bytes(), &full[..]);
        for empty in ["", "\n  \n", "# all\n  # comments\n", "---\n# x\n...\n"] {
            let e = settled_text(p, empty.into(), empty.into()).unwrap_err().to_string();
            assert!(e.contains("no settings"), "{empty:?}: {e}");
        }
        assert!(settled_text(p, vec![0xff], vec![0xff]).is_err());
    }
}
