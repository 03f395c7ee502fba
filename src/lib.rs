//! clipfeed: a daemon that turns a folder of news clipping files into RSS, Atom and JSON feeds,
//! one per topic and one per news site, served over HTTP. See ARCHITECTURE.md for the data flow
//! and the invariants; each module's header says what it owns.
//!
//! Every module is private to the crate. What is exported below is what the binary, the
//! integration tests, the benches and the fuzz targets use, and nothing else.

mod cli;
mod clip;
mod config;
mod daemon;
mod feed;
mod feed_key;
mod filter;
mod http;
mod ingest;
mod item;
mod job;
mod lru;
mod metrics;
mod pages;
mod site;
mod store;
mod systemd;
mod text;
mod views;
mod watch;
mod yaml;

// The binary.
pub use cli::{Cli, run};
// The sans-IO core: parsing, merging, rendering (tests, benches and fuzz targets drive it).
pub use clip::{Clipping, Image, Limits, parse as parse_clipping, split_front_matter};
pub use config::{Config, Topics};
pub use feed::{Doc, FeedMeta, Format, Links, Page, render as render_feed};
pub use feed_key::FeedKey;
pub use item::{Item, Source, id_for as item_id, key_for as item_key, merge as merge_item};
pub use text::is_xml_char;
pub use yaml::parse as parse_yaml;
// The writer, the store and the published site (the benches fill a store as the daemon does).
pub use ingest::Ingest;
pub use metrics::Metrics;
pub use site::{Encoding, Rendered, Site};
pub use store::{Reader, Store};
pub use systemd::Heartbeat;
