//! clipfeed: a daemon that turns a folder of news clipping files into RSS, Atom and JSON feeds,
//! one per topic and one per news site, served over HTTP. See ARCHITECTURE.md for the data flow
//! and the invariants; each module's header says what it owns.

pub mod cli;
pub mod clip;
pub mod config;
pub mod daemon;
pub mod feed;
pub mod feed_key;
pub mod filter;
pub mod http;
pub mod ingest;
pub mod item;
pub mod job;
pub mod lru;
pub mod metrics;
pub mod pages;
pub mod site;
pub mod store;
pub mod systemd;
pub mod text;
pub mod views;
pub mod watch;
pub mod yaml;
