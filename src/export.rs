//! The static export: every public feed in every format, their linked archive pages, the index,
//! the OPML list and the stylesheet, written into a folder with the same paths as the server
//! (`feed.rss`, `topics/ai.atom`, `topics/ai/archive/25-3.json`, `index.html` for `/`,
//! `feeds.opml`, `feed.xsl`), each with its gzip (and brotli) form beside it (`.gz`, `.br`)
//! when clipfeed would compress it, so nginx's `gzip_static` or a CDN serves the same bytes
//! clipfeed serves. Each file's modification time is its document's `Last-Modified`.
//!
//! It owns the keys `export` (the folder) and `export_group` (the group that may read it).
//! `clipfeed export` writes the tree once; with `export:` in the configuration the daemon keeps
//! it up to date on a thread of its own (`clipfeed-export`), woken by the writer after each
//! publish ([`Kick`]), so a slow disk never delays a change.
//!
//! What is written follows the visibility rule through the documents themselves: the
//! subscription documents the writer published (a public feed's log never holds a private item)
//! and the archive pages `views` renders from the same log. A private feed is never written,
//! and the index and OPML list only public feeds. See `tree` for how files are written and
//! removed, `docs` for which documents and when an archive page must be made again.

mod docs;
mod tree;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

use anyhow::{Context, Result, bail};
use arc_swap::ArcSwap;
use tracing::{debug, error, info};

use crate::config::Config;
use crate::site::Site;
use crate::store::Reader;
use crate::views::Views;

pub use docs::Pass;

/// Where the export goes and who may read it: the validated `export` and `export_group` keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Absolute.
    pub(crate) dir: PathBuf,
    /// The group the files are given (name or number), readable by it: a web server's.
    pub(crate) group: Option<String>,
}

impl Target {
    /// The export target the configuration names, if any; `base_dir` resolves a relative folder.
    pub(crate) fn from_config(dir: Option<&Path>, group: Option<String>, base_dir: &Path) -> Result<Option<Target>> {
        let group = group.map(|g| g.trim().to_string());
        if let Some(g) = &group
            && (g.is_empty() || !g.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
        {
            bail!("key 'export_group': {g:?} is not a group name or number");
        }
        let Some(dir) = dir else {
            if group.is_some() {
                bail!("key 'export_group': set only with 'export' (the folder)");
            }
            return Ok(None);
        };
        if dir.as_os_str().is_empty() {
            bail!("key 'export': give a folder");
        }
        Ok(Some(Target { dir: lexical(&base_dir.join(dir)), group }))
    }

    /// The same target written elsewhere (`clipfeed export --out`).
    pub(crate) fn at(dir: &Path, group: Option<String>) -> Result<Target> {
        let dir = std::path::absolute(dir).with_context(|| format!("cannot resolve {}", dir.display()))?;
        Ok(Target { dir: lexical(&dir), group })
    }
}

/// `.` and `..` resolved without touching the file system.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Wakes the export thread: a pass runs after each kick, over the site published then. Kicks
/// that arrive during a pass make one more pass.
#[derive(Clone)]
pub struct Kick(SyncSender<()>);

impl Kick {
    /// Never waits: a kick already waiting covers this one.
    pub(crate) fn kick(&self) {
        match self.0.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
        }
    }
}

/// Writes the whole tree once, from the published `site` (the `clipfeed export` command).
pub fn once(target: &Target, site: &Site, cfg: Arc<Config>) -> Result<Pass> {
    let src = sources(Arc::new(ArcSwap::new(cfg.clone())))?;
    let mut tree = tree::Tree::open(target)?;
    docs::Plan::default().run(&mut tree, site, &cfg, &src)
}

/// Read connections of the export's own, so it never takes the HTTP views' turns or cache.
fn sources(config: Arc<ArcSwap<Config>>) -> Result<docs::Sources> {
    let store = config.load().store.clone();
    Ok(docs::Sources { views: Views::open(&store, config)?, reader: Reader::open(&store, 1)? })
}

/// Starts the thread that keeps `target` up to date with what `site` publishes; the first pass
/// runs at the first kick.
pub(crate) fn spawn(target: Target, site: Arc<ArcSwap<Site>>, config: Arc<ArcSwap<Config>>) -> Result<Kick> {
    let src = sources(config.clone())?;
    let tree = tree::Tree::open(&target)?;
    info!(folder = %target.dir.display(), "keeping the static export up to date");
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("clipfeed-export".into())
        .spawn(move || run(rx, tree, site, config, src))
        .context("cannot start the export thread")?;
    Ok(Kick(tx))
}

fn run(
    kicks: Receiver<()>,
    mut tree: tree::Tree,
    site: Arc<ArcSwap<Site>>,
    config: Arc<ArcSwap<Config>>,
    src: docs::Sources,
) {
    let mut plan = docs::Plan::default();
    while kicks.recv().is_ok() {
        let (site, cfg) = (site.load_full(), config.load_full());
        match plan.run(&mut tree, &site, &cfg, &src) {
            Ok(pass) => debug!(
                written = pass.written,
                removed = pass.removed,
                kept = pass.kept,
                ms = pass.took.as_secs_f64() * 1e3,
                "export updated"
            ),
            Err(e) => {
                error!(folder = %tree.dir().display(), "the static export failed; it is tried again at the next change: {e:#}");
                plan = docs::Plan::default();
            }
        }
    }
}
