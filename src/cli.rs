//! The command line (clap derive) and what each subcommand does: `serve` runs the daemon,
//! `check` checks clippings or a whole configuration, `render` prints one feed, `token` manages
//! private feeds' tokens, `completions` and `man` print what shells and `man` read, made from
//! these definitions.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use arc_swap::ArcSwap;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use crate::feed::{FeedKey, Format};
use crate::ingest::Ingest;
use crate::locate::{self, ConfigError};
use crate::logging;
use crate::site::Site;
use crate::store::Store;

/// Turns a folder of news clipping files into RSS and Atom feeds per topic and per news site.
#[derive(Debug, Parser)]
#[command(name = "clipfeed", version, about, after_long_help = help_notes())]
pub struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: watch the clippings folders and serve the feeds over HTTP (the default).
    Serve {
        /// Configuration file [default: the first found, see FILES in --help].
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Check clipping files, or with no paths everything the daemon would use (the
    /// configuration, each clippings folder, the store, every clipping); exits 1 on any error.
    Check {
        /// Configuration file, for the roots, store, limits, extensions and topics [default: the
        /// first found, see FILES in --help; none found: built-in defaults].
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Files, or folders to search recursively [default: the configuration's clippings folders].
        paths: Vec<PathBuf>,
        /// Also print the warnings of accepted files.
        #[arg(long, short)]
        verbose: bool,
    },
    /// List the tokens of private feeds (creating missing ones), or give one feed a new token.
    Token {
        /// Configuration file [default: the first found, see FILES in --help].
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Work on the store: `rebuild` makes it again from the clippings (stop the daemon first).
    Store {
        /// Configuration file [default: the first found, see FILES in --help].
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: StoreAction,
    },
    /// Bring the store up to date with the clippings folders and print one feed to standard output.
    Render {
        /// Configuration file [default: the first found, see FILES in --help].
        #[arg(long, short)]
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
    /// Write every public feed, its archive pages, the index, the OPML list and the stylesheet
    /// into a folder with the server's paths (and .gz/.br beside), for nginx or a CDN.
    Export {
        /// Configuration file [default: the first found, see FILES in --help].
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The folder to write [default: the configuration's `export`].
        #[arg(long = "out", value_name = "DIR")]
        out: Option<PathBuf>,
        /// The folder to write (the same as --out).
        #[arg(conflicts_with = "out", value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell) to standard output.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), or with --dir write one page per command into a folder.
    #[command(hide = true)]
    Man {
        /// Write clipfeed.1 and a page per subcommand (clipfeed-serve.1, ...) here.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum StoreAction {
    /// Move the store aside (FILE.corrupt-TIME when damaged, else FILE.old-TIME) and make it
    /// again from the clippings, keeping private-feed tokens and WebSub subscriptions when the
    /// old file can still be read. Run it while the daemon is stopped.
    Rebuild,
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

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command.unwrap_or(Command::Serve { config: None }) {
        Command::Serve { config } => {
            let (cfg, found) = locate::load(config.as_deref())?;
            let log_filter = logging::init_daemon(&cfg.log, cfg.log_format);
            let path = std::path::absolute(&found.path).unwrap_or(found.path.clone());
            tracing::info!(config = %path.display(), found_by = %found.source, "configuration");
            crate::daemon::serve(cfg, path, log_filter)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config, paths, verbose } => {
            logging::init_tool();
            // With files to check, a configuration is optional (built-in defaults without one);
            // with none, it says what to check.
            let loaded = match locate::locate(config.as_deref()) {
                Ok(found) => {
                    let cfg = crate::config::Config::load(&found.path).map_err(ConfigError::new)?;
                    Some((cfg, found))
                }
                Err(e) if paths.is_empty() => return Err(e.into()),
                Err(_) => None,
            };
            if let (Some((_, found)), false) = (&loaded, paths.is_empty()) {
                eprintln!("using the configuration {} (found by {})", found.path.display(), found.source);
            }
            crate::check::run(loaded.as_ref().map(|(c, f)| (c, f)), &paths, verbose)
        }
        Command::Token { config, action } => {
            logging::init_tool();
            let (cfg, _) = locate::load(config.as_deref())?;
            token(&cfg, &action)
        }
        Command::Store { config, action: StoreAction::Rebuild } => {
            logging::init_tool();
            let (cfg, _) = locate::load(config.as_deref())?;
            rebuild_store(Arc::new(cfg))
        }
        Command::Render { config, topic, provider, all, format } => {
            logging::init_tool();
            let key = match (topic, provider, all) {
                (Some(t), _, _) => FeedKey::Topic(t),
                (_, Some(p), _) => FeedKey::Provider(
                    crate::text::normalize_domain(&p)
                        .ok_or_else(|| anyhow::anyhow!("--provider {p:?} is not a domain"))?,
                ),
                (_, _, true) => FeedKey::All,
                _ => bail!("say which feed: --topic SLUG, --provider DOMAIN or --all"),
            };
            let (cfg, _) = locate::load(config.as_deref())?;
            render(Arc::new(cfg), &key, format.into())
        }
        Command::Export { config, out, dir } => {
            logging::init_tool();
            let (cfg, _) = locate::load(config.as_deref())?;
            export(Arc::new(cfg), out.or(dir))
        }
        Command::Completions { shell } => {
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut Cli::command(), "clipfeed", &mut out);
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { dir } => {
            match dir {
                Some(dir) => write_manual(&dir)?,
                None => {
                    let mut out = std::io::stdout().lock();
                    main_page(&built_command(), &mut out)?;
                    out.flush()?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `clipfeed token list|rotate`.
fn token(cfg: &crate::config::Config, action: &TokenAction) -> Result<ExitCode> {
    let mut store = Store::open(&cfg.store)?;
    let rotate = match action {
        TokenAction::List => None,
        TokenAction::Rotate { feed } => Some(feed.trim_matches('/').trim_end_matches(".rss").to_string()),
    };
    let tokens = crate::ingest::feed_tokens(&mut store, cfg, rotate.as_deref())?;
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

/// `clipfeed store rebuild`: the store moved aside and made again from the clippings, keeping
/// what they cannot give back.
fn rebuild_store(cfg: Arc<crate::config::Config>) -> Result<ExitCode> {
    let (store, done) = crate::store::rebuild(&cfg.store)?;
    let mut out = std::io::stdout().lock();
    if let Some(old) = &done.moved_to {
        let why = if done.corrupt { "it failed SQLite's check" } else { "it passed SQLite's check" };
        writeln!(out, "moved the old store aside to {} ({why})", old.display())?;
    }
    for (table, rows) in &done.kept {
        writeln!(out, "kept {rows} rows of {table}")?;
    }
    for lost in &done.lost {
        writeln!(out, "could not keep {lost}")?;
    }
    let site = Arc::new(ArcSwap::from_pointee(Site::empty()));
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let beat = crate::systemd::Heartbeat::new("writer");
    let mut ingest = Ingest::start(cfg.clone(), store, site, metrics, beat)?;
    ingest.reconcile()?;
    writeln!(out, "rebuilt the store {} from the clippings", cfg.store.display())?;
    out.flush()?;
    Ok(if done.lost.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `clipfeed render`: reconciles the store with the roots and prints one feed.
fn render(cfg: Arc<crate::config::Config>, key: &FeedKey, format: Format) -> Result<ExitCode> {
    let site = Arc::new(ArcSwap::from_pointee(Site::empty()));
    let store = Store::open(&cfg.store)?;
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let beat = crate::systemd::Heartbeat::new("writer");
    let mut ingest = Ingest::start(cfg.clone(), store, site.clone(), metrics, beat)?;
    ingest.reconcile()?;
    let site = site.load();
    let Some(r) = site.feed(&key.path_stem(), format) else {
        bail!("no such feed: {}", key.path_stem());
    };
    let mut out = std::io::stdout().lock();
    out.write_all(&r.plain()).context("cannot write to standard output")?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `clipfeed export`: reconciles the store with the roots and writes the export tree once.
fn export(cfg: Arc<crate::config::Config>, out: Option<PathBuf>) -> Result<ExitCode> {
    let group = cfg.export.as_ref().and_then(|t| t.group.clone());
    let target = match (out, &cfg.export) {
        (Some(dir), _) => crate::export::Target::at(&dir, group)?,
        (None, Some(t)) => t.clone(),
        (None, None) => bail!("say where to write: --out DIR (or `export:` in the configuration)"),
    };
    let site = Arc::new(ArcSwap::from_pointee(Site::empty()));
    let store = Store::open(&cfg.store)?;
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let beat = crate::systemd::Heartbeat::new("writer");
    let mut ingest = Ingest::start(cfg.clone(), store, site.clone(), metrics, beat)?;
    ingest.reconcile()?;
    drop(ingest);
    let pass = crate::export::once(&target, &site.load(), cfg)?;
    eprintln!(
        "exported to {}: {} files written, {} unchanged, {} removed",
        target.dir.display(),
        pass.written,
        pass.kept,
        pass.removed
    );
    Ok(ExitCode::SUCCESS)
}

/// What `--help` and the manual say beyond the options: sections of (term, text).
fn notes() -> Vec<(&'static str, Vec<(String, String)>)> {
    let pairs = |list: &[(&str, &str)]| list.iter().map(|(t, x)| (t.to_string(), x.to_string())).collect();
    vec![
        (
            "FILES",
            pairs(&[
                ("--config FILE", "The configuration file. Without it, the first of the following is used."),
                ("$CLIPFEED_CONFIG", "The configuration file, when the variable is set."),
                (
                    "$CONFIGURATION_DIRECTORY/clipfeed.yaml",
                    "When systemd sets the variable (ConfigurationDirectory=) and the file exists.",
                ),
                ("./config/clipfeed.yaml", "When it exists: a checkout of the source."),
                (locate::SYSTEM, "When it exists. The log names the file used and how it was found."),
                (
                    "$STATE_DIRECTORY/clipfeed.db",
                    "The store when the configuration has no store key and systemd sets the variable \
                     (StateDirectory=); otherwise clipfeed.db beside the configuration file. Relative \
                     paths in the configuration are resolved against its folder.",
                ),
            ]),
        ),
        (
            "ENVIRONMENT",
            pairs(&[
                ("RUST_LOG", "A log filter that replaces the configuration's log key."),
                (
                    "JOURNAL_STREAM",
                    "Set by systemd when standard error goes to the journal: each log line then \
                     starts with its syslog priority (<3> error, <4> warning, <6> info, <7> debug) \
                     and has no time stamp of its own.",
                ),
                ("LISTEN_FDS, LISTEN_PID", "A listening socket passed by systemd, served instead of listen."),
                ("NOTIFY_SOCKET, WATCHDOG_USEC", "systemd's readiness notification and watchdog."),
            ]),
        ),
        (
            "EXIT STATUS",
            vec![
                ("0".into(), "Success.".into()),
                ("1".into(), "check: a file was rejected, or a folder or the store failed its check.".into()),
                (
                    locate::EX_FAILURE.to_string(),
                    "A fatal error other than the configuration's, or a command-line usage error.".into(),
                ),
                (
                    locate::EX_CONFIG.to_string(),
                    "A configuration error (EX_CONFIG): no configuration file found, or one that \
                     cannot be read or is invalid. The systemd unit does not restart after it."
                        .into(),
                ),
            ],
        ),
    ]
}

/// The notes as text after `--help`.
fn help_notes() -> String {
    let mut text = String::new();
    for (section, items) in notes() {
        text.push_str(&format!("{section}:\n"));
        for (term, body) in items {
            text.push_str(&format!("  {term}\n"));
            let mut line = String::new();
            for word in body.split_whitespace() {
                if !line.is_empty() && line.len() + word.len() > 88 {
                    text.push_str(&format!("          {line}\n"));
                    line.clear();
                }
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(word);
            }
            text.push_str(&format!("          {line}\n"));
        }
        text.push('\n');
    }
    text.trim_end().to_string()
}

/// The command definition, built (subcommands named `clipfeed-serve` and so on), without the
/// `help` subcommand.
fn built_command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// The main manual page: clap's sections, then the notes as FILES, ENVIRONMENT and EXIT STATUS.
fn main_page(cmd: &clap::Command, out: &mut dyn Write) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    man.render_subcommands_section(out)?;
    let mut roff = roff::Roff::new();
    for (section, items) in notes() {
        roff.control("SH", [section]);
        for (term, body) in items {
            roff.control("TP", []).text([roff::bold(term)]).text([roff::roman(body)]);
        }
    }
    roff.to_writer(out)?;
    man.render_version_section(out)
}

/// Writes `clipfeed.1` and a page for every visible subcommand into `dir`.
fn write_manual(dir: &Path) -> Result<()> {
    fn pages(cmd: &clap::Command, dir: &Path) -> std::io::Result<()> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            clap_mangen::Man::new(sub.clone()).generate_to(dir)?;
            pages(sub, dir)?;
        }
        Ok(())
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let cmd = built_command();
    let mut file = std::fs::File::create(dir.join("clipfeed.1"))?;
    main_page(&cmd, &mut file)?;
    pages(&cmd, dir).with_context(|| format!("cannot write the manual into {}", dir.display()))
}
