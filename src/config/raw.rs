//! The configuration file as written: [`RawConfig`] and its parts, with `deny_unknown_fields`
//! so a misspelt key is an error, and the default of every key.

use std::path::PathBuf;

use serde::Deserialize;

/// The configuration file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default = "defaults::listen")]
    pub listen: String,
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default = "defaults::clippings")]
    pub clippings: Vec<PathBuf>,
    #[serde(default = "defaults::store")]
    pub store: PathBuf,
    #[serde(default = "defaults::title")]
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default = "defaults::items_per_feed")]
    pub items_per_feed: u32,
    #[serde(default = "defaults::max_file_bytes")]
    pub max_file_bytes: u64,
    #[serde(default = "defaults::extensions")]
    pub extensions: Vec<String>,
    #[serde(default)]
    pub topics: Vec<RawTopic>,
    #[serde(default)]
    pub log: Option<String>,
    #[serde(default = "defaults::cache_max_age")]
    pub cache_max_age: u32,
    #[serde(default = "defaults::tombstone_days")]
    pub tombstone_days: u32,
    #[serde(default)]
    pub watch: WatchMode,
    #[serde(default = "defaults::poll_interval")]
    pub poll_interval: u32,
    #[serde(default)]
    pub providers: Vec<RawProvider>,
    #[serde(default)]
    pub metrics: RawMetrics,
    #[serde(default)]
    pub http: RawHttp,
}

/// A configured provider (news site).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub domain: String,
    #[serde(default)]
    pub private: bool,
}

/// Who may read `/metrics`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    #[serde(default = "defaults::metrics_allow")]
    pub allow: Vec<String>,
    #[serde(default)]
    pub token: Option<String>,
}

impl Default for RawMetrics {
    fn default() -> Self {
        RawMetrics { allow: defaults::metrics_allow(), token: None }
    }
}

/// Limits of the HTTP server (see [`HttpLimits`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    #[serde(default = "defaults::header_timeout")]
    pub header_timeout: u32,
    #[serde(default = "defaults::send_timeout")]
    pub send_timeout: u32,
    #[serde(default = "defaults::max_connections")]
    pub max_connections: u32,
    #[serde(default = "defaults::max_head_bytes")]
    pub max_head_bytes: u32,
    #[serde(default = "defaults::max_headers")]
    pub max_headers: u32,
    #[serde(default = "defaults::max_url_bytes")]
    pub max_url_bytes: u32,
    #[serde(default = "defaults::shutdown_grace")]
    pub shutdown_grace: u32,
}

impl Default for RawHttp {
    fn default() -> Self {
        RawHttp {
            header_timeout: defaults::header_timeout(),
            send_timeout: defaults::send_timeout(),
            max_connections: defaults::max_connections(),
            max_head_bytes: defaults::max_head_bytes(),
            max_headers: defaults::max_headers(),
            max_url_bytes: defaults::max_url_bytes(),
            shutdown_grace: defaults::shutdown_grace(),
        }
    }
}

/// How changes under the roots are noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchMode {
    /// inotify; a root the system refuses to watch (the watch limit) is scanned every
    /// `poll_interval` instead.
    #[default]
    Auto,
    /// Scan every root every `poll_interval` (for file systems without change events, such as
    /// some network mounts).
    Poll,
}

/// One configured topic.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTopic {
    pub name: String,
    #[serde(default)]
    pub slug: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub items_per_feed: Option<u32>,
    #[serde(default)]
    pub min_quality: Option<i64>,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub hide_unpublished: bool,
    #[serde(default)]
    pub private: bool,
}

mod defaults {
    use std::path::PathBuf;
    pub fn listen() -> String {
        "127.0.0.1:8080".into()
    }
    pub fn clippings() -> Vec<PathBuf> {
        vec![PathBuf::from("clippings")]
    }
    pub fn store() -> PathBuf {
        PathBuf::from("clipfeed.db")
    }
    pub fn title() -> String {
        "Clippings".into()
    }
    pub fn items_per_feed() -> u32 {
        50
    }
    pub fn max_file_bytes() -> u64 {
        1024 * 1024
    }
    pub fn extensions() -> Vec<String> {
        super::super::files::DEFAULT_EXTENSIONS.map(String::from).to_vec()
    }
    pub fn cache_max_age() -> u32 {
        60
    }
    pub fn tombstone_days() -> u32 {
        30
    }
    pub fn poll_interval() -> u32 {
        5
    }
    pub fn metrics_allow() -> Vec<String> {
        vec!["127.0.0.0/8".into(), "::1/128".into()]
    }
    pub fn header_timeout() -> u32 {
        10
    }
    pub fn send_timeout() -> u32 {
        30
    }
    pub fn max_connections() -> u32 {
        4096
    }
    pub fn max_head_bytes() -> u32 {
        32 * 1024
    }
    pub fn max_headers() -> u32 {
        100
    }
    pub fn max_url_bytes() -> u32 {
        8 * 1024
    }
    pub fn shutdown_grace() -> u32 {
        10
    }
}
