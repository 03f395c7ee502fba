//! What a change of configuration means, key by key: which keys need a restart (a reload keeps
//! their running values), which change what is a clipping (the roots are scanned again), which
//! change how clippings map to feeds (every item is merged again), and which can change a feed's
//! bytes (saved feeds are served again only under the same fingerprint).

use super::Config;

/// A configuration read again at SIGHUP, made ready to apply.
#[derive(Debug)]
pub struct Reloaded {
    /// The new configuration with the keys that need a restart at their running values.
    pub(crate) config: Config,
    /// The keys that changed but need a restart, as the configuration file names them.
    pub(crate) need_restart: Vec<&'static str>,
}

fn xxh3_hex(text: &str) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(text.as_bytes()))
}

impl Config {
    /// `new` as it can be applied to a running daemon: the listening address, the store, the
    /// roots, the watch mode and the HTTP limits keep their running values (they need a
    /// restart), and so does a base URL derived from the address bound.
    pub(crate) fn reloaded(&self, mut new: Config) -> Reloaded {
        let mut need_restart = Vec::new();
        if new.listen != self.listen {
            need_restart.push("listen");
        }
        if new.store != self.store {
            need_restart.push("store");
        }
        if new.clippings != self.clippings {
            need_restart.push("clippings");
        }
        if new.watch != self.watch || new.poll_interval != self.poll_interval {
            need_restart.push("watch/poll_interval");
        }
        if new.http != self.http {
            need_restart.push("http");
        }
        if new.log_format != self.log_format {
            need_restart.push("log_format");
        }
        if new.websub != self.websub {
            need_restart.push("websub");
        }
        if new.export != self.export {
            need_restart.push("export/export_group");
        }
        new.listen = self.listen;
        new.store = self.store.clone();
        new.clippings = self.clippings.clone();
        new.watch = self.watch;
        new.poll_interval = self.poll_interval;
        new.http = self.http.clone();
        new.log_format = self.log_format;
        new.websub = self.websub.clone();
        new.export = self.export.clone();
        if !new.base_url_given {
            new.base_url = self.base_url.clone();
        }
        Reloaded { config: new, need_restart }
    }

    /// Whether moving to `new` changes which files are clippings, or which of them are read,
    /// so the roots must be scanned again.
    pub(crate) fn rescan_needed(&self, new: &Config) -> bool {
        self.extensions != new.extensions || self.max_file_bytes != new.max_file_bytes
    }

    /// A hash of what decides which feeds a clipping is in: the topics (names, aliases,
    /// keywords, filters, privacy) and the private providers. When it changes, every item is
    /// merged again.
    pub(crate) fn topic_fingerprint(&self) -> String {
        xxh3_hex(&format!("{:?} {:?}", self.topics.list, self.private_providers))
    }

    /// A hash of every key that can change a feed's bytes. The listening address (behind a
    /// fixed `base_url`), the log filter and format and the metrics token cannot, so a new port or log
    /// level does not cost a start its saved feeds.
    pub(crate) fn feed_fingerprint(&self) -> String {
        let mut cfg = self.clone();
        cfg.listen = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
        cfg.log.clear();
        cfg.log_format = Default::default();
        cfg.metrics_token = None;
        xxh3_hex(&format!("{cfg:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(text: &str) -> Config {
        Config::parse(text, Path::new("/etc/clipfeed")).unwrap()
    }

    #[test]
    fn a_reload_keeps_what_needs_a_restart_and_names_it() {
        let running = parse("listen: 127.0.0.1:8080\nclippings: [a]\ntitle: Old\n");
        let r = running.reloaded(parse(
            "listen: 127.0.0.1:9090\nclippings: [b]\nstore: x.db\nwatch: poll\nhttp:\n  max_connections: 7\ntitle: New\n",
        ));
        assert_eq!(r.need_restart, ["listen", "store", "clippings", "watch/poll_interval", "http"]);
        assert_eq!(r.config.listen, running.listen);
        assert_eq!((&r.config.clippings, &r.config.store), (&running.clippings, &running.store));
        assert_eq!((r.config.watch, &r.config.http), (running.watch, &running.http));
        assert_eq!(r.config.title, "New", "the rest takes effect");
        assert_eq!(r.config.base_url, running.base_url, "a derived base URL stays with the bound address");
        let given = running.reloaded(parse("base_url: https://feeds.example/\n"));
        assert_eq!(given.config.base_url.as_str(), "https://feeds.example/");
        assert!(running.reloaded(running.clone()).need_restart.is_empty());
    }

    #[test]
    fn what_each_change_means() {
        let base = parse("");
        assert!(base.rescan_needed(&parse("extensions: [md]\n")));
        assert!(base.rescan_needed(&parse("max_file_bytes: 10\n")));
        assert!(!base.rescan_needed(&parse("title: Other\n")));

        let topics = base.topic_fingerprint();
        assert_ne!(parse("topics:\n  - name: A\n").topic_fingerprint(), topics);
        assert_ne!(parse("providers:\n  - domain: a.example\n    private: true\n").topic_fingerprint(), topics);
        assert_eq!(parse("title: Other\n").topic_fingerprint(), topics);

        let fixed = "base_url: https://feeds.example/\n";
        assert_eq!(
            parse(&format!("{fixed}listen: 127.0.0.1:9999\n")).feed_fingerprint(),
            parse(fixed).feed_fingerprint(),
            "a new port behind a fixed base URL"
        );
        let feeds = base.feed_fingerprint();
        assert_eq!(parse("log: debug\nmetrics:\n  token: sixteen-chars-long\n").feed_fingerprint(), feeds);
        assert_ne!(parse("title: Other\n").feed_fingerprint(), feeds);
        assert_ne!(parse("items_per_feed: 7\n").feed_fingerprint(), feeds);
    }
}
