//! The command line (clap derive) and what each subcommand does: `serve` runs the daemon,
//! `check` gives a verdict per clipping file, `render` prints one feed.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use arc_swap::ArcSwap;
use clap::{Parser, Subcommand, ValueEnum};

use crate::clip::{self, Limits};
use crate::config::Config;
use crate::feed::{FeedKey, Format};
use crate::ingest::{Ingest, clipping_files, read_clipping};
use crate::item;
use crate::site::Site;
use crate::store::Store;

/// Where `serve` and `render` look for the configuration when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "config/clipfeed.yaml";

/// Turns a folder of news clipping files into RSS and Atom feeds per topic and per news site.
#[derive(Debug, Parser)]
#[command(name = "clipfeed", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: watch the clippings folders and serve the feeds over HTTP (the default).
    Serve {
        /// Configuration file [default: config/clipfeed.yaml].
        #[arg(long, short, env = "CLIPFEED_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Parse clipping files and print a verdict for each; exits 1 if any is rejected.
    Check {
        /// Configuration file, for max_file_bytes, extensions and topic aliases [default: built-in defaults].
        #[arg(long, short, env = "CLIPFEED_CONFIG")]
        config: Option<PathBuf>,
        /// Files, or folders to search recursively.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Also print the warnings of accepted files.
        #[arg(long, short)]
        verbose: bool,
    },
    /// List the tokens of private feeds (creating missing ones), or give one feed a new token.
    Token {
        /// Configuration file [default: config/clipfeed.yaml].
        #[arg(long, short, env = "CLIPFEED_CONFIG")]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Bring the store up to date with the clippings folders and print one feed to standard output.
    Render {
        /// Configuration file [default: config/clipfeed.yaml].
        #[arg(long, short, env = "CLIPFEED_CONFIG")]
        config: Option<PathBuf>,
        /// The feed of this topic (slug).
        #[arg(long, group = "feed")]
        topic: Option<String>,
        /// The feed of this provider (domain).
        #[arg(long, group = "feed")]
        provider: Option<String>,
        /// The feed of all clippings.
        #[arg(long, group = "feed")]
        all: bool,
        #[arg(long, value_enum, default_value = "rss")]
        format: FormatArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Print every private feed with its token and subscription URL.
    List,
    /// Replace a private feed's token (the old one stops working within seconds).
    Rotate {
        /// The feed, as in its URL: topics/SLUG or providers/DOMAIN.
        feed: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Rss,
    Atom,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Rss => Format::Rss,
            FormatArg::Atom => Format::Atom,
        }
    }
}

fn load_config(path: Option<PathBuf>) -> Result<Config> {
    let path = path.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    if !path.exists() {
        bail!("no configuration file at {} (pass --config FILE)", path.display());
    }
    Config::load(&path)
}

/// Logs to standard error (the journal, under systemd), filtered by `RUST_LOG` when set, else by
/// `default`. Returns what changes the filter later (a reload with another `log`); with
/// `RUST_LOG` set, the environment keeps winning.
fn init_logging(default: &str) -> crate::daemon::LogFilter {
    use tracing_subscriber::prelude::*;
    let from_env = std::env::var_os("RUST_LOG").is_some();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(default))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi);
    // Under systemd the journal stamps every line itself (it sets JOURNAL_STREAM for a service
    // whose standard error goes to it), so a second time stamp would only be noise.
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if std::env::var_os("JOURNAL_STREAM").is_some() {
        registry.with(fmt.without_time()).try_init()
    } else {
        registry.with(fmt).try_init()
    };
    Box::new(move |directive: &str| {
        if from_env {
            return;
        }
        if let Ok(f) = tracing_subscriber::EnvFilter::try_new(directive) {
            let _ = handle.reload(f);
        }
    })
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command.unwrap_or(Command::Serve { config: None }) {
        Command::Serve { config } => {
            let path = config.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
            let cfg = load_config(Some(path.clone()))?;
            let log_filter = init_logging(&cfg.log);
            crate::daemon::serve(cfg, path, log_filter)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config, paths, verbose } => {
            let _ = init_logging("warn");
            let cfg = match config {
                Some(p) => Config::load(&p)?,
                None => Config::built_in(),
            };
            check(&cfg, &paths, verbose)
        }
        Command::Token { config, action } => {
            let _ = init_logging("warn");
            let cfg = load_config(config)?;
            let mut store = Store::open(&cfg.store)?;
            let rotate = match &action {
                TokenAction::List => None,
                TokenAction::Rotate { feed } => Some(feed.trim_matches('/').trim_end_matches(".rss").to_string()),
            };
            let tokens = crate::ingest::feed_tokens(&mut store, &cfg, rotate.as_deref())?;
            let mut out = std::io::stdout().lock();
            if tokens.is_empty() {
                writeln!(out, "no private feeds (mark topics or providers `private: true` in the configuration)")?;
            }
            for (stem, token) in &tokens {
                if rotate.as_deref().is_none_or(|r| r == stem) {
                    writeln!(out, "{stem}\t{token}\t{}", cfg.url(&format!("{stem}.rss?token={token}")))?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Render { config, topic, provider, all, format } => {
            let _ = init_logging("warn");
            let cfg = Arc::new(load_config(config)?);
            let key = match (topic, provider, all) {
                (Some(t), _, _) => FeedKey::Topic(t),
                (_, Some(p), _) => FeedKey::Provider(p.to_ascii_lowercase()),
                (_, _, true) => FeedKey::All,
                _ => bail!("say which feed: --topic SLUG, --provider DOMAIN or --all"),
            };
            let site = Arc::new(ArcSwap::from_pointee(Site::empty()));
            let store = Store::open(&cfg.store)?;
            let metrics = Arc::new(crate::metrics::Metrics::default());
            let beat = crate::systemd::Heartbeat::new("writer");
            let mut ingest = Ingest::start(cfg.clone(), store, site.clone(), metrics, beat)?;
            ingest.reconcile()?;
            let site = site.load();
            let Some(r) = site.feed(&key.path_stem(), format.into()) else {
                bail!("no such feed: {}", key.path_stem());
            };
            let mut out = std::io::stdout().lock();
            out.write_all(&r.plain()).context("cannot write to standard output")?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `clipfeed check`: one line per file, `ok` or `rejected`, and a summary.
fn check(cfg: &Config, paths: &[PathBuf], verbose: bool) -> Result<ExitCode> {
    let limits = Limits { max_file_bytes: cfg.max_file_bytes };

    // (file to read, path used as its identity when it has no URL)
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    for p in paths {
        if p.is_dir() {
            files.extend(clipping_files(p, cfg));
        } else {
            let name =
                p.file_name().map_or_else(|| p.to_string_lossy().into_owned(), |n| n.to_string_lossy().into_owned());
            files.push((p.clone(), name));
        }
    }

    let mut out = std::io::stdout().lock();
    let (mut good, mut bad) = (0usize, 0usize);
    let mut notes: Vec<(&str, clip::KeyNote)> = Vec::new();
    for (path, rel) in &files {
        let verdict = match read_clipping(path, limits) {
            Ok((_, Ok(bytes))) => clip::parse_file(&bytes, rel, limits).map_err(|e| e.to_string()),
            Ok((_, Err(too_large))) => Err(too_large.to_string()),
            Err(e) => Err(format!("cannot read: {e}")),
        };
        match verdict {
            Ok(parsed) => {
                good += 1;
                let c = &parsed.clipping;
                // The topics the item would be in: names, aliases, keywords and topic filters applied.
                let source = item::Source { rel_path: rel, clipping: c };
                let merged = item::merge(&[source], chrono::Utc::now(), &cfg.topics);
                let slugs: Vec<String> =
                    merged.map(|m| m.topics.into_iter().map(|t| t.slug).collect()).unwrap_or_default();
                let provider = c.provider.as_ref().and_then(|p| p.domain.as_deref()).unwrap_or("-");
                writeln!(
                    out,
                    "ok        {}  id={} topics={} provider={}",
                    path.display(),
                    item::id_for(&item::key_for(c, rel)),
                    if slugs.is_empty() { "-".to_string() } else { slugs.join(",") },
                    provider
                )?;
                if verbose {
                    for w in &parsed.warnings {
                        writeln!(out, "          warning: {w}")?;
                    }
                }
                notes.extend(parsed.key_notes.into_iter().map(|n| (rel.as_str(), n)));
            }
            Err(reason) => {
                bad += 1;
                writeln!(out, "rejected  {}: {reason}", path.display())?;
            }
        }
    }
    // Keys spelt close to known ones: once per key, with the number of files and an example.
    for w in clip::summarise_key_notes(notes.iter().map(|(rel, n)| (*rel, n))) {
        writeln!(out, "warning   {w}")?;
    }
    writeln!(out, "{} files: {good} ok, {bad} rejected", files.len())?;
    Ok(if bad > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
