//! The configuration file as written: [`RawConfig`] and its parts, with `deny_unknown_fields`
//! so a misspelt key is an error, and the default of every key.

use std::path::PathBuf;

use serde::Deserialize;

/// The configuration file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default = "defaults::listen")]
    pub(crate) listen: String,
    #[serde(default)]
    pub(crate) base_url: Option<String>,
    #[serde(default = "defaults::clippings")]
    pub(crate) clippings: Vec<PathBuf>,
    /// Absent: see [`crate::locate::default_store`].
    #[serde(default)]
    pub(crate) store: Option<PathBuf>,
    #[serde(default = "defaults::title")]
    pub(crate) title: String,
    #[serde(default)]
    pub(crate) description: Option<String>,
    #[serde(default = "defaults::items_per_feed")]
    pub(crate) items_per_feed: u32,
    #[serde(default = "defaults::max_file_bytes")]
    pub(crate) max_file_bytes: u64,
    #[serde(default = "defaults::extensions")]
    pub(crate) extensions: Vec<String>,
    #[serde(default)]
    pub(crate) topics: Vec<RawTopic>,
    #[serde(default)]
    pub(crate) log: Option<String>,
    #[serde(default)]
    pub(crate) log_format: crate::logging::LogFormat,
    #[serde(default = "defaults::cache_max_age")]
    pub(crate) cache_max_age: u32,
    #[serde(default = "defaults::tombstone_days")]
    pub(crate) tombstone_days: u32,
    #[serde(default)]
    pub(crate) watch: WatchMode,
    #[serde(default = "defaults::poll_interval")]
    pub(crate) poll_interval: u32,
    #[serde(default)]
    pub(crate) providers: Vec<RawProvider>,
    #[serde(default)]
    pub(crate) metrics: RawMetrics,
    #[serde(default)]
    pub(crate) http: RawHttp,
    #[serde(default)]
    pub(crate) websub: crate::websub::RawWebSub,
    /// The static export's folder (absent: no export).
    #[serde(default)]
    pub(crate) export: Option<PathBuf>,
    /// The group the exported files belong to (a web server's), by name or number.
    #[serde(default)]
    pub(crate) export_group: Option<String>,
}

/// A configured provider (news site).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub(crate) domain: String,
    /// `false` written out is a decision: it may make public a feed that was private (see
    /// [`super::visibility::Visibility::loosened`]).
    #[serde(default)]
    pub(crate) private: Option<bool>,
}

/// Who may read `/metrics`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    #[serde(default = "defaults::metrics_allow")]
    pub(crate) allow: Vec<String>,
    #[serde(default)]
    pub(crate) token: Option<String>,
}

impl Default for RawMetrics {
    fn default() -> Self {
        RawMetrics { allow: defaults::metrics_allow(), token: None }
    }
}

/// Limits of the HTTP server (see [`super::HttpLimits`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    #[serde(default = "defaults::header_timeout")]
    pub(crate) header_timeout: u32,
    #[serde(default = "defaults::send_timeout")]
    pub(crate) send_timeout: u32,
    #[serde(default = "defaults::max_connections")]
    pub(crate) max_connections: u32,
    #[serde(default = "defaults::max_head_bytes")]
    pub(crate) max_head_bytes: u32,
    #[serde(default = "defaults::max_headers")]
    pub(crate) max_headers: u32,
    #[serde(default = "defaults::max_url_bytes")]
    pub(crate) max_url_bytes: u32,
    #[serde(default = "defaults::shutdown_grace")]
    pub(crate) shutdown_grace: u32,
    #[serde(default = "defaults::max_connections_per_address")]
    pub(crate) max_connections_per_address: u32,
    #[serde(default = "defaults::view_timeout")]
    pub(crate) view_timeout: u32,
    #[serde(default)]
    pub(crate) trusted_proxies: Vec<String>,
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
            max_connections_per_address: defaults::max_connections_per_address(),
            view_timeout: defaults::view_timeout(),
            trusted_proxies: Vec::new(),
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
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) slug: Option<String>,
    #[serde(default)]
    pub(crate) description: Option<String>,
    #[serde(default)]
    pub(crate) aliases: Vec<String>,
    #[serde(default)]
    pub(crate) items_per_feed: Option<u32>,
    #[serde(default)]
    pub(crate) min_quality: Option<i64>,
    #[serde(default)]
    pub(crate) keywords: Vec<String>,
    #[serde(default)]
    pub(crate) hide_unpublished: bool,
    /// As for providers: `false` written out may make a private feed public.
    #[serde(default)]
    pub(crate) private: Option<bool>,
}

mod defaults {
    use std::path::PathBuf;
    pub(crate) fn listen() -> String {
        "127.0.0.1:8080".into()
    }
    pub(crate) fn clippings() -> Vec<PathBuf> {
        vec![PathBuf::from("clippings")]
    }
    pub(crate) fn title() -> String {
        "Clippings".into()
    }
    pub(crate) fn items_per_feed() -> u32 {
        50
    }
    pub(crate) fn max_file_bytes() -> u64 {
        1024 * 1024
    }
    pub(crate) fn extensions() -> Vec<String> {
        super::super::files::DEFAULT_EXTENSIONS.map(String::from).to_vec()
    }
    pub(crate) fn cache_max_age() -> u32 {
        60
    }
    pub(crate) fn tombstone_days() -> u32 {
        30
    }
    pub(crate) fn poll_interval() -> u32 {
        5
    }
    pub(crate) fn metrics_allow() -> Vec<String> {
        vec!["127.0.0.0/8".into(), "::1/128".into()]
    }
    pub(crate) fn header_timeout() -> u32 {
        10
    }
    pub(crate) fn send_timeout() -> u32 {
        30
    }
    pub(crate) fn max_connections() -> u32 {
        4096
    }
    pub(crate) fn max_head_bytes() -> u32 {
        32 * 1024
    }
    pub(crate) fn max_headers() -> u32 {
        100
    }
    pub(crate) fn max_url_bytes() -> u32 {
        8 * 1024
    }
    pub(crate) fn shutdown_grace() -> u32 {
        10
    }
    pub(crate) fn max_connections_per_address() -> u32 {
        256
    }
    pub(crate) fn view_timeout() -> u32 {
        5
    }
}
