//! The `websub:` section of the configuration: [`RawWebSub`] is the section as written (unknown
//! keys are errors), [`Settings`] the validated form the hub runs with. [`Settings::from_raw`] is
//! pure; the extra CA file it names is read when the hub starts.
//!
//! Every key, with its default (times in seconds unless the name says otherwise):
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `enabled` | `false` | run the hub at `/websub` (it makes outbound requests) |
//! | `hubs` | `[]` | external hubs to ping and advertise: a URL, or `{url, per_topic}` |
//! | `allow_callbacks` | `[]` | networks (`CIDR`) callbacks may resolve to although not public |
//! | `lease_min` / `lease_default` / `lease_max` | 300 / 864000 / 2592000 | lease bounds |
//! | `max_subscriptions` | 10000 | verified subscriptions in all |
//! | `max_per_host` | 1000 | verified subscriptions per callback host |
//! | `max_pending` / `max_pending_per_host` | 256 / 32 | requests waiting for verification |
//! | `deliveries` / `verifications` | 16 / 8 | outbound requests of each kind at once |
//! | `timeout` | 10 | one outbound request, from name lookup to the last byte read |
//! | `retries` / `retry_initial` | 6 / 5 | failed delivery: retries, and the first wait (doubling) |
//! | `coalesce_ms` | 250 | a topic is delivered at most once per window; the latest wins |
//! | `max_queued_bytes` | 33554432 | documents held for delivery, in all |
//! | `ca_file` | none | PEM certificates trusted beside the Web PKI roots |

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};
use serde::Deserialize;

use crate::config::Network;

/// The `websub:` section as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebSub {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub hubs: Vec<RawHub>,
    #[serde(default)]
    pub allow_callbacks: Vec<String>,
    #[serde(default = "defaults::lease_min")]
    pub lease_min: u64,
    #[serde(default = "defaults::lease_default")]
    pub lease_default: u64,
    #[serde(default = "defaults::lease_max")]
    pub lease_max: u64,
    #[serde(default = "defaults::max_subscriptions")]
    pub max_subscriptions: usize,
    #[serde(default = "defaults::max_per_host")]
    pub max_per_host: usize,
    #[serde(default = "defaults::max_pending")]
    pub max_pending: usize,
    #[serde(default = "defaults::max_pending_per_host")]
    pub max_pending_per_host: usize,
    #[serde(default = "defaults::deliveries")]
    pub deliveries: usize,
    #[serde(default = "defaults::verifications")]
    pub verifications: usize,
    #[serde(default = "defaults::timeout")]
    pub timeout: u64,
    #[serde(default = "defaults::retries")]
    pub retries: u32,
    #[serde(default = "defaults::retry_initial")]
    pub retry_initial: u64,
    #[serde(default = "defaults::coalesce_ms")]
    pub coalesce_ms: u64,
    #[serde(default = "defaults::max_queued_bytes")]
    pub max_queued_bytes: usize,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl Default for RawWebSub {
    fn default() -> Self {
        serde_json::from_value(serde_json::json!({})).expect("every key has a default")
    }
}

/// An external hub as written: its URL alone, or with how it takes publish pings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawHub {
    Url(String),
    Full(RawHubFull),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHubFull {
    pub url: String,
    /// One `hub.topic` per request instead of `hub.url` repeated.
    #[serde(default)]
    pub per_topic: bool,
}

mod defaults {
    pub fn lease_min() -> u64 {
        300
    }
    pub fn lease_default() -> u64 {
        10 * 86_400
    }
    pub fn lease_max() -> u64 {
        30 * 86_400
    }
    pub fn max_subscriptions() -> usize {
        10_000
    }
    pub fn max_per_host() -> usize {
        1_000
    }
    pub fn max_pending() -> usize {
        256
    }
    pub fn max_pending_per_host() -> usize {
        32
    }
    pub fn deliveries() -> usize {
        16
    }
    pub fn verifications() -> usize {
        8
    }
    pub fn timeout() -> u64 {
        10
    }
    pub fn retries() -> u32 {
        6
    }
    pub fn retry_initial() -> u64 {
        5
    }
    pub fn coalesce_ms() -> u64 {
        250
    }
    pub fn max_queued_bytes() -> usize {
        32 << 20
    }
}

/// The validated section.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub enabled: bool,
    /// External hubs, in the order given.
    pub hubs: Vec<ExternalHub>,
    /// Networks a callback may resolve to although they are not public (tests allow loopback).
    pub allow_callbacks: Vec<Network>,
    /// A requested lease is clamped to `lease_min..=lease_max`; `lease_default` when none is.
    pub lease_min: Duration,
    pub lease_default: Duration,
    pub lease_max: Duration,
    /// Verified subscriptions in all, and per callback host: a request past either gets 429.
    pub max_subscriptions: usize,
    pub max_per_host: usize,
    /// Requests accepted and waiting for their verification, in all and per callback host.
    pub max_pending: usize,
    pub max_pending_per_host: usize,
    /// Content deliveries in flight at once, and verifications (and denials) at once.
    pub deliveries: usize,
    pub verifications: usize,
    /// One outbound request from name lookup to the last byte read.
    pub timeout: Duration,
    /// A failed delivery is tried again this many times, after `retry_initial`, then twice as
    /// long each time; then the subscription is dropped. Pings to external hubs likewise.
    pub retries: u32,
    pub retry_initial: Duration,
    /// A topic is delivered at most once per window: changes inside it go out together, as the
    /// latest document, when it ends.
    pub coalesce: Duration,
    /// Bytes of documents held for delivery at once; a publication past it is not delivered.
    pub max_queued_bytes: usize,
    /// PEM certificates trusted for https callbacks and hubs, beside the Web PKI roots.
    pub ca_file: Option<PathBuf>,
}

/// An external hub clipfeed pings after each change and advertises in its public feeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalHub {
    pub url: url::Url,
    /// Ping with one `hub.topic` per request, instead of a batch with `hub.url` repeated.
    pub per_topic: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings::from_raw(RawWebSub::default(), Path::new("/")).expect("the defaults are valid")
    }
}

impl Settings {
    /// Validates the section. `base_dir` is the configuration file's folder, against which a
    /// relative `ca_file` is taken. Errors name the key, as `websub.KEY`.
    pub fn from_raw(raw: RawWebSub, base_dir: &Path) -> Result<Settings> {
        let hubs = raw.hubs.into_iter().map(external_hub).collect::<Result<Vec<_>>>()?;
        let mut allow_callbacks = Vec::new();
        for net in &raw.allow_callbacks {
            match Network::parse(net) {
                Some(n) => allow_callbacks.push(n),
                None => bail!("key 'websub.allow_callbacks': {net:?} is not an address or network like 10.0.0.0/8"),
            }
        }
        if raw.lease_min == 0 || raw.lease_min > raw.lease_default || raw.lease_default > raw.lease_max {
            bail!(
                "keys 'websub.lease_min', 'lease_default', 'lease_max': need 0 < lease_min <= lease_default <= lease_max"
            );
        }
        if raw.lease_max > 365 * 86_400 {
            bail!("key 'websub.lease_max': at most a year (365 days); leases must expire");
        }
        for (key, value) in [
            ("max_subscriptions", raw.max_subscriptions),
            ("max_per_host", raw.max_per_host),
            ("max_pending", raw.max_pending),
            ("max_pending_per_host", raw.max_pending_per_host),
            ("deliveries", raw.deliveries),
            ("verifications", raw.verifications),
            ("timeout", raw.timeout as usize),
            ("max_queued_bytes", raw.max_queued_bytes),
        ] {
            if value == 0 {
                bail!("key 'websub.{key}': must be at least 1");
            }
        }
        if raw.retries > 20 || raw.retry_initial == 0 || raw.retry_initial > 3600 {
            bail!("keys 'websub.retries', 'retry_initial': need retries <= 20 and 1 <= retry_initial <= 3600");
        }
        if raw.timeout > 300 || raw.coalesce_ms > 60_000 {
            bail!("keys 'websub.timeout', 'coalesce_ms': at most 300 s and 60000 ms");
        }
        Ok(Settings {
            enabled: raw.enabled,
            hubs,
            allow_callbacks,
            lease_min: Duration::from_secs(raw.lease_min),
            lease_default: Duration::from_secs(raw.lease_default),
            lease_max: Duration::from_secs(raw.lease_max),
            max_subscriptions: raw.max_subscriptions,
            max_per_host: raw.max_per_host,
            max_pending: raw.max_pending,
            max_pending_per_host: raw.max_pending_per_host,
            deliveries: raw.deliveries,
            verifications: raw.verifications,
            timeout: Duration::from_secs(raw.timeout),
            retries: raw.retries,
            retry_initial: Duration::from_secs(raw.retry_initial),
            coalesce: Duration::from_millis(raw.coalesce_ms),
            max_queued_bytes: raw.max_queued_bytes,
            ca_file: raw.ca_file.map(|p| if p.is_absolute() { p } else { base_dir.join(p) }),
        })
    }

    /// The hubs a feed advertises (`rel="hub"`), given this hub's own URL: this hub when it is
    /// enabled, then the external ones, which a private feed never names (it must not be fetched
    /// by them).
    pub fn advertised_hubs<'a>(&'a self, own: &'a str, private: bool) -> Vec<&'a str> {
        let external = self.hubs.iter().filter(|_| !private).map(|h| h.url.as_str());
        std::iter::once(own).filter(|_| self.enabled).chain(external).collect()
    }

    /// Whether anything of the hub runs: its own subscriptions, or pings to external hubs.
    pub fn active(&self) -> bool {
        self.enabled || !self.hubs.is_empty()
    }

    /// The lease granted for a request of `asked` seconds (none: the default).
    pub fn lease_for(&self, asked: Option<u64>) -> Duration {
        match asked {
            None => self.lease_default,
            Some(s) => Duration::from_secs(s).clamp(self.lease_min, self.lease_max),
        }
    }
}

fn external_hub(raw: RawHub) -> Result<ExternalHub> {
    let (text, per_topic) = match raw {
        RawHub::Url(u) => (u, false),
        RawHub::Full(f) => (f.url, f.per_topic),
    };
    let url = url::Url::parse(&text).map_err(|e| anyhow::anyhow!("key 'websub.hubs': {text:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        bail!("key 'websub.hubs': {text:?} must be an http or https URL");
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        bail!("key 'websub.hubs': {text:?} must have no user name, password or fragment");
    }
    Ok(ExternalHub { url, per_topic })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Settings> {
        let raw: RawWebSub = serde_yaml::from_str(yaml)?;
        Settings::from_raw(raw, Path::new("/etc/clipfeed"))
    }

    #[test]
    fn defaults_are_off_and_bounded() {
        let s = Settings::default();
        assert!(!s.enabled);
        assert!(s.hubs.is_empty() && s.allow_callbacks.is_empty());
        assert_eq!(s.lease_default, Duration::from_secs(864_000));
        assert_eq!(s.lease_for(Some(1)), Duration::from_secs(300));
        assert_eq!(s.lease_for(Some(u64::MAX)), Duration::from_secs(2_592_000));
        assert_eq!(s.lease_for(Some(4000)), Duration::from_secs(4000));
        assert_eq!(s.lease_for(None), Duration::from_secs(864_000));
        assert_eq!((s.deliveries, s.verifications, s.retries), (16, 8, 6));
        assert_eq!(s, parse("{}").unwrap());
    }

    #[test]
    fn hubs_networks_and_paths() {
        let s = parse(
            "enabled: true\nhubs:\n  - https://hub.example/\n  - {url: 'http://other.example/ping', per_topic: true}\n\
             allow_callbacks: [127.0.0.0/8, '::1']\nca_file: certs/ca.pem\n",
        )
        .unwrap();
        assert!(s.enabled);
        assert_eq!(s.hubs.len(), 2);
        assert!(!s.hubs[0].per_topic && s.hubs[1].per_topic);
        assert_eq!(s.hubs[1].url.as_str(), "http://other.example/ping");
        assert!(s.allow_callbacks[0].contains("127.9.9.9".parse().unwrap()));
        assert!(s.allow_callbacks[1].contains("::1".parse().unwrap()));
        assert_eq!(s.ca_file.as_deref(), Some(Path::new("/etc/clipfeed/certs/ca.pem")));
        assert_eq!(
            s.advertised_hubs("http://me/websub", false),
            ["http://me/websub", "https://hub.example/", "http://other.example/ping"]
        );
        assert_eq!(s.advertised_hubs("http://me/websub", true), ["http://me/websub"]);
        let off = Settings { enabled: false, ..s };
        assert_eq!(
            off.advertised_hubs("http://me/websub", false),
            ["https://hub.example/", "http://other.example/ping"]
        );
        assert!(off.advertised_hubs("http://me/websub", true).is_empty());
        assert!(off.active() && !Settings::default().active());
    }

    #[test]
    fn errors_name_the_key() {
        for (yaml, key) in [
            ("hubs: [ftp://x/]", "websub.hubs"),
            ("hubs: ['https://u:p@x/']", "websub.hubs"),
            ("allow_callbacks: [10.0.0.0/33]", "websub.allow_callbacks"),
            ("lease_min: 0", "websub.lease_min"),
            ("lease_default: 10\nlease_min: 20", "lease_default"),
            ("lease_max: 100000000", "websub.lease_max"),
            ("deliveries: 0", "websub.deliveries"),
            ("retries: 100", "websub.retries"),
        ] {
            let err = format!("{:#}", parse(yaml).unwrap_err());
            assert!(err.contains(key), "{yaml}: {err}");
        }
        assert!(parse("leases: 3").is_err(), "unknown keys are errors");
    }
}
