//! clipfeed: a daemon that turns a folder of news clipping files into RSS, Atom and JSON feeds,
//! one per topic and one per news site, served over HTTP. See ARCHITECTURE.md for the data flow
//! and the invariants; each module's header says what it owns.
//!
//! Every module is private to the crate. What is exported below is what the binary, the
//! integration tests, the benches and the fuzz targets use, and nothing else.

mod budget;
mod check;
mod cli;
mod clip;
mod config;
mod daemon;
mod export;
mod feed;
mod feed_key;
mod filter;
mod http;
mod ingest;
mod item;
mod job;
mod locate;
mod logging;
mod lru;
mod metrics;
mod pages;
mod process;
mod reach;
mod search;
mod site;
mod store;
mod story;
mod systemd;
mod text;
mod views;
mod watch;
mod websub;
mod yaml;

// The binary.
pub use cli::{Cli, run};
pub use locate::exit_status;
pub use logging::fatal as log_fatal;
// The sans-IO core: parsing, merging, rendering (tests, benches and fuzz targets drive it).
pub use clip::{Clipping, Image, Limits, parse as parse_clipping, split_front_matter};
pub use config::{Config, FeedLog, Topics};
pub use feed::{Doc, FeedMeta, Format, Links, Page, render as render_feed};
pub use feed_key::FeedKey;
pub use item::{Item, Source, id_for as item_id, key_for as item_key, merge as merge_item};
pub use text::is_xml_char;
pub use yaml::parse as parse_yaml;
// The HTTP fast path's reading of a request head, checked against hyper's (the fuzz target).
pub use http::check_fast_head;
// The writer, the store and the published site (the benches fill a store as the daemon does).
pub use budget::Budget;
pub use ingest::Ingest;
pub use metrics::Metrics;
pub use site::{Encoding, Rendered, Site};
pub use store::{Reader, Store};
pub use systemd::Heartbeat;

/// The story-grouping engine (`story`; the writer applies it in `ingest/stories`): its public
/// face for the evaluation example (`cargo run --example story_eval`), the benches and the
/// integration tests.
pub mod stories {
    /// Measuring a grouping against labelled pairs.
    pub mod eval {
        pub use crate::story::eval::{
            Label, Named, Pair, Report, evaluate, parse_pairs, read_dir, read_shared, stories,
        };
    }
    pub use crate::story::{
        Candidate, Decision, Features, Founder, Index, Key, Member, Params, Why, decide, group, judge, same_event,
        scores, split, url_key, window_days,
    };
}

/// The search index (`search`, `store::fts`): its public face for the search bench
/// (`cargo bench --bench search`).
pub mod searching {
    pub use crate::filter::Filter;
    pub use crate::search::{Match, Search, filter_match, words_match};
    /// The index's SQL.
    pub mod fts {
        pub use crate::store::fts::{Bounds, SCHEMA, matching, put};
    }
    pub use crate::text::words;
}
