//! clipfeed: a daemon that turns a folder of news clipping files into RSS, Atom and JSON feeds,
//! one per topic and one per news site, served over HTTP. See ARCHITECTURE.md for the data flow
//! and the invariants; each module's header says what it owns.

pub mod budget;
pub mod check;
pub mod cli;
pub mod clip;
pub mod config;
pub mod daemon;
pub mod feed;
pub mod filter;
pub mod http;
pub mod ingest;
pub mod item;
pub mod locate;
pub mod logging;
pub mod lru;
pub mod metrics;
pub mod pages;
pub mod search;
pub mod site;
pub mod store;
pub mod systemd;
pub mod text;
pub mod views;
pub mod watch;
// Not yet wired into the daemon, the HTTP layer and the writer (issue 16): drop the allow then.
#[allow(dead_code, unused_imports)]
pub(crate) mod websub;
pub mod yaml;
