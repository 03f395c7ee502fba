//! The one integration test binary: every test here runs the real `clipfeed` binary (or its
//! library through `router()`) and checks the output with parsers we did not write.

mod browser;
mod cli;
mod corpus;
mod crash;
mod devtools;
mod export;
mod feeds;
mod files;
mod forgiving;
mod hostile_files;
mod hostile_http;
mod http;
mod operate;
mod oracle;
mod overload;
mod pages;
mod privacy;
mod privacy_matrix;
mod props;
mod readme;
mod remap;
mod restart;
mod search;
mod seeds;
mod service;
mod startup;
mod stories;
mod story_feeds;
mod support;
mod systemd;
mod tidy;
mod truth;
mod watch;
mod websub;
mod websub_flask;
