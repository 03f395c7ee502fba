//! The writer: the one thread that owns the store. It turns "these paths changed" and "compare
//! everything" into store updates, re-renders exactly the feeds whose content those updates touch,
//! and publishes a new [`Site`] snapshot.
//!
//! This and `watch` are the only modules that touch the clippings on disk. Reads are `stat` plus
//! one bounded `read` per file; parsing runs in parallel (rayon) for large jobs; the store is
//! written in batched transactions.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use rayon::prelude::*;
use tracing::{debug, error, info, warn};

use crate::clip::{self, Limits};
use crate::config::Config;
use crate::feed::{self, Doc, FeedKey, FeedMeta, Format, Links, Outline, Page};
use crate::item::{self, Item, Source};
use crate::metrics::Metrics;
use crate::pages::{self, Listing};
use crate::site::{Deferred, FeedEntry, Rendered, Site};
use crate::store::{Batch, FeedState, FileId, FileStat, Rejection, Store};
use crate::systemd::{Heartbeat, beat_every};

/// Work for the writer.
#[derive(Debug)]
pub enum Job {
    /// These absolute paths (files or folders) may have changed, appeared or gone; the first
    /// event about them came at `since`.
    Touched { paths: Vec<PathBuf>, since: std::time::Instant },
    /// Compare every root with the store, as at start-up (after a watcher overflow or error).
    Rescan,
    /// Apply a new configuration (SIGHUP), then say so on `done`.
    Reload(Arc<Config>, std::sync::mpsc::Sender<()>),
    /// Finish what is queued and stop.
    Shutdown,
}

/// A file modified less than this long ago that does not parse is looked at again after this
/// long before it is rejected: it may still be being written.
const RECENT: Duration = Duration::from_secs(2);

/// Delays before a failed update is retried (as a rescan), doubling up to the maximum.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// How often feed tokens are read again from the store (`clipfeed token rotate` writes them).
const TOKENS_EVERY: Duration = Duration::from_secs(3);

/// Every private feed the configuration names.
pub fn private_feeds(cfg: &Config) -> Vec<FeedKey> {
    let topics = cfg.topics.list.iter().filter(|t| t.private).map(|t| FeedKey::Topic(t.slug.clone()));
    let providers = cfg.private_providers.iter().map(|d| FeedKey::Provider(d.clone()));
    topics.chain(providers).collect()
}

/// The token of every private feed, by path stem, sorted; a feed without one gets one. With
/// `rotate` (a path stem such as `topics/internal`), that feed gets a new token.
pub fn feed_tokens(store: &mut Store, cfg: &Config, rotate: Option<&str>) -> Result<Vec<(String, String)>> {
    let private: BTreeSet<String> = private_feeds(cfg).iter().map(FeedKey::path_stem).collect();
    if let Some(stem) = rotate
        && !private.contains(stem)
    {
        anyhow::bail!(
            "{stem} is not a private feed (private: {})",
            private.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let b = store.batch()?;
    let mut tokens = b.tokens()?;
    for stem in &private {
        if !tokens.contains_key(stem) || rotate == Some(stem.as_str()) {
            let token = new_token()?;
            b.set_token(stem, &token)?;
            tokens.insert(stem.clone(), token);
        }
    }
    b.commit()?;
    let mut out: Vec<(String, String)> = tokens.into_iter().filter(|(stem, _)| private.contains(stem)).collect();
    out.sort();
    Ok(out)
}

/// A new random token: 32 bytes from the kernel's generator, as hex.
pub fn new_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read /dev/urandom for a token")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Bumped when what [`FeedEntry::save`] writes changes meaning.
const SNAPSHOT_FORMAT: u32 = 2;
/// How often tombstones older than `tombstone_days` are dropped.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// How many item refreshes (or removals) go into one transaction.
const CHUNK: usize = 2000;
/// How many files a large batch reads and parses (in parallel) and records per transaction: the
/// bound on parsed clippings held in memory at once.
const PARSE_CHUNK: usize = 512;
/// At most this many rejections are listed in `/api/status` (the total is always given).
const STATUS_REJECTIONS: usize = 1000;

/// What reading one file gave.
#[derive(Debug)]
enum Change {
    Parsed { id: FileId, stat: FileStat, result: Result<Box<clip::Parsed>, String> },
    Removed(FileId),
}

/// A feed the site knows: its display name, live item count and rendered files.
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    count: u64,
    feed: Option<Arc<FeedEntry>>,
}

impl Entry {
    fn new() -> Entry {
        Entry { name: String::new(), count: 0, feed: None }
    }
}

/// The writer: the store, and everything else it works with, kept apart so that an open batch on
/// the store and the rest can be borrowed at the same time.
pub struct Ingest {
    store: Store,
    core: Core,
}

struct Core {
    cfg: Arc<Config>,
    /// Hands published feeds to the thread that packs them (see [`spawn_packer`]).
    packer: Option<std::sync::mpsc::Sender<Arc<FeedEntry>>>,
    links: Links,
    limits: Limits,
    catalog: BTreeMap<FeedKey, Entry>,
    site: Arc<ArcSwap<Site>>,
    ready: bool,
    /// Canonical forms of the roots, for deciding whether a symlink points inside one.
    canonical_roots: Vec<PathBuf>,
    /// Symlinked clippings by the canonical path of their target: a change to the target is a
    /// change to every link.
    symlinks: HashMap<PathBuf, BTreeSet<PathBuf>>,
    /// Feeds to render (kept across a failed update).
    dirty: BTreeSet<FeedKey>,
    /// Files rejected while they were still being written, to look at again (when, path).
    recheck: Vec<(std::time::Instant, PathBuf)>,
    /// Feed documents rendered and reconciles run since start, for `/api/status`.
    renders: u64,
    rescans: u64,
    metrics: Arc<Metrics>,
    heartbeat: Heartbeat,
    /// The rejections last read from the store, for republishing without a store round trip.
    rejections: Vec<Rejection>,
    /// The token of each private feed, by path stem.
    tokens: HashMap<String, String>,
    /// Feeds in which an item entered, changed or left since the last render.
    history: BTreeSet<FeedKey>,
    /// Per feed, bumped at each history change: the generation of cached views.
    generations: HashMap<FeedKey, u64>,
}

/// How an item changed: which feeds it was in, which it is in now, whether its content changed.
#[derive(Debug)]
struct Delta {
    id: String,
    published: DateTime<Utc>,
    before: BTreeSet<FeedKey>,
    after: BTreeSet<FeedKey>,
    changed: bool,
}

/// The current time at the precision feeds and HTTP dates carry.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap_or_default()
}

impl Ingest {
    /// Opens the writer over `store` and publishes every feed the store already holds, so a
    /// restart serves its previous content before the first reconcile finishes.
    pub fn start(
        cfg: Arc<Config>,
        store: Store,
        site: Arc<ArcSwap<Site>>,
        metrics: Arc<Metrics>,
        heartbeat: Heartbeat,
    ) -> Result<Ingest> {
        let canonical_roots = cfg.clippings.iter().map(|r| r.canonicalize().unwrap_or_else(|_| r.clone())).collect();
        let mut ingest = Ingest {
            core: Core {
                links: Links::new(&cfg.base_url),
                limits: Limits { max_file_bytes: cfg.max_file_bytes },
                catalog: BTreeMap::new(),
                site,
                ready: false,
                canonical_roots,
                symlinks: HashMap::new(),
                dirty: BTreeSet::new(),
                recheck: Vec::new(),
                renders: 0,
                rescans: 0,
                metrics,
                heartbeat,
                rejections: Vec::new(),
                tokens: HashMap::new(),
                history: BTreeSet::new(),
                generations: HashMap::new(),
                packer: spawn_packer(),
                cfg,
            },
            store,
        };
        ingest.load_catalog()?;
        ingest.restore_snapshot()?;
        ingest.reapply_topic_config()?;
        ingest.purge_tombstones()?;
        ingest.ensure_tokens()?;
        ingest.render()?;
        Ok(ingest)
    }

    /// Applies a new configuration (SIGHUP): topics, aliases, keywords, private feeds, limits,
    /// titles and links. The caller has kept the settings that need a restart. Returns whether
    /// the roots must be scanned again (the extensions or size limit changed what is a clipping).
    fn reload(&mut self, cfg: Arc<Config>) -> Result<bool> {
        let old = self.core.cfg.clone();
        let rescan = old.extensions != cfg.extensions || old.max_file_bytes != cfg.max_file_bytes;
        self.core.links = Links::new(&cfg.base_url);
        self.core.limits = Limits { max_file_bytes: cfg.max_file_bytes };
        self.core.cfg = cfg;
        let core = &mut self.core;
        for t in &core.cfg.topics.list {
            core.catalog.entry(FeedKey::Topic(t.slug.clone())).or_insert_with(Entry::new).name = t.name.clone();
        }
        if let Some(all) = core.catalog.get_mut(&FeedKey::All) {
            all.name = core.cfg.title.clone();
        }
        self.reapply_topic_config()?;
        self.ensure_tokens()?;
        let all: BTreeSet<FeedKey> = self.core.catalog.keys().cloned().collect();
        self.core.dirty.extend(all);
        self.render()?;
        Metrics::add(&self.core.metrics.reloads, 1);
        Ok(rescan)
    }

    /// Gives every private feed a token (kept in the store), and loads them.
    fn ensure_tokens(&mut self) -> Result<()> {
        self.core.tokens = feed_tokens(&mut self.store, &self.core.cfg, None)?.into_iter().collect();
        Ok(())
    }

    /// Reads the tokens again (`clipfeed token rotate` writes them); whether any changed.
    fn refresh_tokens(&mut self) -> Result<bool> {
        let before = self.core.tokens.clone();
        self.ensure_tokens()?;
        Ok(self.core.tokens != before)
    }

    /// Drops tombstones older than `tombstone_days` and marks their feeds for rendering.
    fn purge_tombstones(&mut self) -> Result<()> {
        let cutoff = now() - chrono::Duration::days(i64::from(self.core.cfg.tombstone_days));
        let b = self.store.batch()?;
        let feeds = b.purge_tombstones(cutoff)?;
        b.commit()?;
        self.core.dirty.extend(feeds.iter().filter_map(|stem| FeedKey::from_stem(stem)));
        Ok(())
    }

    fn load_catalog(&mut self) -> Result<()> {
        let b = self.store.batch()?;
        let core = &mut self.core;
        let counts = b.live_counts()?;
        let count = |key: &FeedKey| counts.get(&key.path_stem()).copied().unwrap_or(0);
        let all = Entry { name: core.cfg.title.clone(), count: count(&FeedKey::All), feed: None };
        core.catalog.insert(FeedKey::All, all);
        for (slug, name) in b.topics()? {
            let key = FeedKey::Topic(slug);
            core.catalog.insert(key.clone(), Entry { name, count: count(&key), feed: None });
        }
        for t in &core.cfg.topics.list {
            core.catalog.entry(FeedKey::Topic(t.slug.clone())).or_insert_with(Entry::new).name = t.name.clone();
        }
        for (domain, name) in b.providers()? {
            let key = FeedKey::Provider(domain);
            core.catalog.insert(key.clone(), Entry { name, count: count(&key), feed: None });
        }
        Ok(())
    }

    /// When the configured topics changed since the store was written, every item is merged
    /// again so names and aliases map to the right slugs.
    fn reapply_topic_config(&mut self) -> Result<()> {
        let fingerprint = format!("{:?} {:?}", self.core.cfg.topics.list, self.core.cfg.private_providers);
        let fingerprint = format!("{:032x}", xxhash_rust::xxh3::xxh3_128(fingerprint.as_bytes()));
        let b = self.store.batch()?;
        if b.meta("topics")?.as_deref() == Some(fingerprint.as_str()) {
            return Ok(());
        }
        let keys = b.live_item_keys()?;
        let t = now();
        let mut deltas = Vec::new();
        for key in &keys {
            self.core.heartbeat.beat();
            deltas.extend(self.core.refresh_item(&b, key, t)?);
        }
        self.core.log_deltas(&b, deltas, t)?;
        b.set_meta("topics", &fingerprint)?;
        b.commit()?;
        if !keys.is_empty() {
            info!(items = keys.len(), "topic configuration changed; items re-mapped");
        }
        Ok(())
    }

    /// Runs jobs until [`Job::Shutdown`] or until every sender is gone. Queued jobs are merged:
    /// one rescan covers every touched path, touched paths are de-duplicated. A job that fails
    /// (the store is locked or full, say) is followed by a rescan after a growing delay, so
    /// nothing it should have done is lost; a panic is contained the same way.
    pub fn run(mut self, jobs: Receiver<Job>) {
        use std::sync::mpsc::RecvTimeoutError;
        use std::time::Instant;
        let mut retry: Option<(Instant, Duration)> = None;
        let mut next_purge = Instant::now() + PURGE_EVERY;
        let mut next_tokens = Instant::now() + TOKENS_EVERY;
        loop {
            self.core.heartbeat.beat();
            let recheck_at = self.core.recheck.iter().map(|(at, _)| *at).min();
            let wake =
                [Some(next_purge), Some(next_tokens), retry.map(|(at, _)| at), recheck_at].into_iter().flatten().min();
            // Wake at least every beat_every(), so the watchdog knows the writer is alive.
            let wait = wake.map_or(beat_every(), |w| w.saturating_duration_since(Instant::now()).min(beat_every()));
            let mut touched: Vec<PathBuf> = Vec::new();
            let mut since: Option<Instant> = None;
            let mut reloads = Vec::new();
            let mut rescan = false;
            let mut stop = false;
            match jobs.recv_timeout(wait) {
                Ok(first) => {
                    for job in std::iter::once(first).chain(jobs.try_iter()) {
                        match job {
                            Job::Touched { paths, since: t } => {
                                touched.extend(paths);
                                since = Some(since.map_or(t, |s: Instant| s.min(t)));
                            }
                            Job::Reload(cfg, done) => reloads.push((cfg, done)),
                            Job::Rescan => rescan = true,
                            Job::Shutdown => stop = true,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            for (cfg, done) in reloads {
                match self.reload(cfg) {
                    Ok(needs_rescan) => rescan |= needs_rescan,
                    Err(e) => error!("applying the new configuration failed: {e:#}"),
                }
                let _ = done.send(());
            }
            let now = Instant::now();
            if retry.is_some_and(|(at, _)| at <= now) {
                rescan = true;
            }
            // Files that were rejected while still being written are looked at again.
            let (due, later): (Vec<_>, Vec<_>) =
                std::mem::take(&mut self.core.recheck).into_iter().partition(|(at, _)| *at <= now);
            self.core.recheck = later;
            touched.extend(due.into_iter().map(|(_, p)| p));
            if now >= next_purge {
                next_purge = now + PURGE_EVERY;
                if let Err(e) = self.purge_tombstones().and_then(|()| self.render()) {
                    error!("dropping old tombstones failed: {e:#}");
                }
            }
            if now >= next_tokens {
                next_tokens = now + TOKENS_EVERY;
                // `clipfeed token rotate` writes the store; the new token takes over here.
                match self.refresh_tokens() {
                    Ok(true) => self.core.publish(&self.core.rejections.clone()),
                    Ok(false) => {}
                    Err(e) => error!("reading feed tokens failed: {e:#}"),
                }
            }
            if rescan || !touched.is_empty() {
                let started = Instant::now();
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    if rescan { self.reconcile() } else { self.touched(touched) }
                }));
                self.core.metrics.ingest_seconds.observe(started.elapsed());
                let failure = match outcome {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(format!("{e:#}")),
                    Err(panic) => Some(panic_message(&*panic)),
                };
                if failure.is_none()
                    && let Some(since) = since
                {
                    self.core.metrics.watch_to_publish_seconds.observe(since.elapsed());
                }
                retry = match failure {
                    None => None,
                    Some(why) => {
                        let delay = retry.map_or(RETRY_FIRST, |(_, d)| (d * 2).min(RETRY_MAX));
                        error!(retry_in_s = delay.as_secs_f32(), "update failed, feeds keep their last content: {why}");
                        Some((Instant::now() + delay, delay))
                    }
                };
            }
            if stop {
                break;
            }
        }
        if retry.is_none() {
            self.save_snapshot();
        }
        debug!("writer stopped");
    }

    /// What the saved feeds must have been rendered under to be served as they are: this build,
    /// the configuration, and the links' base.
    fn snapshot_mark(&self) -> String {
        // The executable's size and time stand for the build: a rebuild with the same version
        // number may render differently.
        let exe = std::env::current_exe()
            .and_then(std::fs::metadata)
            .map(|m| format!("{} {:?}", m.len(), m.modified().ok()))
            .unwrap_or_default();
        // Settings that cannot change a feed's bytes are left out: a new port behind a fixed
        // `base_url` (or a new log level) must not cost a start its saved feeds.
        let mut cfg = (*self.core.cfg).clone();
        cfg.listen = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
        cfg.log.clear();
        cfg.metrics_token = None;
        let what = format!("{} {exe} {SNAPSHOT_FORMAT} {cfg:?} {}", env!("CARGO_PKG_VERSION"), self.core.links.base());
        format!("{:032x}", xxhash_rust::xxh3::xxh3_128(what.as_bytes()))
    }

    /// At a clean stop, saves every published feed, so the next start can serve them without
    /// rendering (a restart with 100,000 clippings would otherwise render every feed from the
    /// store before it could answer). Best effort: a failure only costs that start a render.
    fn save_snapshot(&mut self) {
        if !self.core.ready || !self.core.dirty.is_empty() {
            return;
        }
        let started = std::time::Instant::now();
        let mark = self.snapshot_mark();
        let catalog = &self.core.catalog;
        let feeds = catalog
            .iter()
            .filter_map(|(key, e)| e.feed.as_ref().map(|f| (key, f)))
            .map(|(key, f)| f.save().map(|(head, docs)| (key.path_stem(), head, docs)));
        let outcome = self.store.batch().and_then(|b| {
            let n = b.save_snapshot(feeds, &mark)?;
            b.commit()?;
            Ok(n)
        });
        match outcome {
            Ok(n) => {
                info!(feeds = n, ms = started.elapsed().as_millis() as u64, "published feeds saved for the next start")
            }
            Err(e) => warn!("cannot save the published feeds; the next start renders them: {e:#}"),
        }
    }

    /// Serves the feeds saved at the last clean stop, when they were rendered under the same
    /// build and configuration; the others are marked for rendering. The saved feeds are used
    /// once: the mark is dropped whatever happens next.
    fn restore_snapshot(&mut self) -> Result<()> {
        let mark = self.snapshot_mark();
        let b = self.store.batch()?;
        let mut restored = 0;
        let core = &mut self.core;
        b.take_snapshot(&mark, |head, docs| match FeedEntry::restore(&head, docs.into()) {
            Ok(entry) => {
                if let Some(e) = core.catalog.get_mut(&entry.key) {
                    core.generations.insert(entry.key.clone(), entry.generation);
                    e.feed = Some(Arc::new(entry));
                    restored += 1;
                }
            }
            Err(e) => warn!("a saved feed does not read back; rendering it: {e:#}"),
        })?;
        b.commit()?;
        let dirty: Vec<FeedKey> =
            self.core.catalog.iter().filter(|(_, e)| e.feed.is_none()).map(|(k, _)| k.clone()).collect();
        if restored > 0 {
            info!(feeds = restored, to_render = dirty.len(), "serving the feeds saved at the last stop");
        }
        self.core.dirty.extend(dirty);
        Ok(())
    }

    /// Compares every root with the store by (path, size, mtime): new and changed files are
    /// parsed, vanished ones removed, rejected ones tried again. A root that does not exist
    /// keeps its files (an unmounted disk must not empty every feed). Files under roots no longer
    /// configured are removed.
    pub fn reconcile(&mut self) -> Result<()> {
        let started = std::time::Instant::now();
        self.core.rescans += 1;
        Metrics::add(&self.core.metrics.rescans, 1);
        // What is left in `known` once the roots are walked is gone.
        let mut known = self.store.file_index()?;
        let core = &self.core;
        let mut files = 0usize;
        let mut to_load: Vec<(FileId, PathBuf)> = Vec::new();
        let mut available: HashSet<String> = HashSet::new();
        let mut links = HashMap::new();
        for root in &core.cfg.clippings {
            match std::fs::metadata(root) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    warn!(root = %root.display(), "clippings root is not a folder; its clippings keep serving");
                    continue;
                }
                Err(e) => {
                    warn!(root = %root.display(), "clippings root is not readable ({e}); its clippings keep serving");
                    continue;
                }
            }
            available.insert(root_key(root));
            for (id, abs, stat) in core.walk(root, &mut links)? {
                files += 1;
                let unchanged = known.remove(&id).is_some_and(|(was, rejected)| was == stat && !rejected);
                if !unchanged {
                    to_load.push((id, abs));
                }
            }
        }
        let configured: HashSet<String> = core.cfg.clippings.iter().map(|r| root_key(r)).collect();
        let gone: Vec<FileId> =
            known.into_keys().filter(|id| available.contains(&id.root) || !configured.contains(&id.root)).collect();
        let (removed, parsed) = (gone.len(), to_load.len());
        self.core.symlinks = links;
        self.finish_pending()?;
        self.ingest(gone, to_load)?;
        self.core.ready = true;
        self.render()?;
        let ms = started.elapsed().as_millis() as u64;
        release_freed_memory();
        info!(files, parsed, removed, ms, "clippings reconciled with the store");
        Ok(())
    }

    /// Handles paths reported by the watcher: each is looked at afresh, whatever the event was.
    pub fn touched(&mut self, mut paths: Vec<PathBuf>) -> Result<()> {
        let started = std::time::Instant::now();
        // A symlinked clipping changes when its target does.
        let linked: Vec<PathBuf> = paths.iter().flat_map(|p| self.core.links_to(p)).collect();
        paths.extend(linked);
        paths.sort();
        paths.dedup();
        let mut new_links = HashMap::new();
        let core = &self.core;
        let mut to_load: Vec<(FileId, PathBuf)> = Vec::new();
        let mut removed: BTreeSet<FileId> = BTreeSet::new();
        let mut rescan = false;
        {
            let b = self.store.batch()?;
            for abs in &paths {
                let Some(id) = core.locate(abs) else {
                    // A root itself (or a folder above one) appeared or vanished.
                    rescan |= core.cfg.clippings.iter().any(|r| r.starts_with(abs));
                    continue;
                };
                if id.path.split('/').any(|c| c.starts_with('.')) {
                    continue;
                }
                match std::fs::symlink_metadata(abs) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        // Gone: a file, or a folder with everything below it.
                        if b.file(&id)?.is_some() {
                            removed.insert(id.clone());
                        }
                        for path in b.files_under(&id.root, &id.path)? {
                            removed.insert(FileId { root: id.root.clone(), path });
                        }
                    }
                    Err(e) => warn!(path = %abs.display(), "cannot stat: {e}"),
                    Ok(m) if m.is_dir() => {
                        let found = core.walk(abs, &mut new_links)?;
                        let found_ids: HashSet<&FileId> = found.iter().map(|(id, _, _)| id).collect();
                        for path in b.files_under(&id.root, &id.path)? {
                            let fid = FileId { root: id.root.clone(), path };
                            if !found_ids.contains(&fid) {
                                removed.insert(fid);
                            }
                        }
                        to_load.extend(found.into_iter().map(|(id, abs, _)| (id, abs)));
                    }
                    Ok(m) => {
                        // Only regular files (or links to one inside a root): a FIFO or device
                        // named like a clipping would block or never end.
                        let target = if m.file_type().is_symlink() { core.symlink_target(abs) } else { None };
                        let regular = m.is_file() || target.is_some();
                        if regular && core.is_candidate(Path::new(&id.path)) {
                            if let Some(t) = target {
                                new_links.entry(t).or_insert_with(BTreeSet::new).insert(abs.clone());
                            }
                            to_load.push((id, abs.clone()));
                        } else if b.file(&id)?.is_some() {
                            removed.insert(id);
                        }
                    }
                }
            }
        }
        if rescan {
            return self.reconcile();
        }
        for (target, set) in new_links {
            self.core.symlinks.entry(target).or_default().extend(set);
        }
        self.ingest(removed.into_iter().collect(), to_load)?;
        let applied = started.elapsed();
        self.render()?;
        debug!(
            paths = paths.len(),
            apply_ms = applied.as_secs_f64() * 1e3,
            render_ms = (started.elapsed() - applied).as_secs_f64() * 1e3,
            "paths handled"
        );
        Ok(())
    }

    /// Looks at files afresh: records each one's parse (or its removal) and brings every item
    /// they name up to date. A small batch is one transaction. A large one (a cold start, a
    /// folder moved in) is parsed and recorded a chunk at a time, so memory stays bounded
    /// whatever its size, and its items are then refreshed oldest first, so the feed logs (and
    /// the archive pages) fill in date order. The `pending` table carries the items from the
    /// first phase to the second across a crash. The feeds whose content may have changed are
    /// added to `core.dirty` as each refresh commits.
    fn ingest(&mut self, removed: Vec<FileId>, to_load: Vec<(FileId, PathBuf)>) -> Result<()> {
        let t = now();
        if removed.len() + to_load.len() <= PARSE_CHUNK {
            let mut changes: Vec<Change> = removed.into_iter().map(Change::Removed).collect();
            changes.extend(self.core.load_all(to_load));
            return self.refresh_and_commit(t, |core, b| {
                let mut keys = HashMap::new();
                core.record(b, changes, t, &mut keys)?;
                Ok(by_date(keys))
            });
        }
        let mut keys: HashMap<String, DateTime<Utc>> = HashMap::new();
        let mut record = |this: &mut Self, changes: Vec<Change>| -> Result<()> {
            let b = this.store.batch()?;
            let mut chunk_keys = HashMap::new();
            this.core.record(&b, changes, t, &mut chunk_keys)?;
            for key in chunk_keys.keys() {
                b.add_pending(key)?;
            }
            b.commit()?;
            for (key, at) in chunk_keys {
                let e = keys.entry(key).or_insert(at);
                *e = (*e).min(at);
            }
            Ok(())
        };
        for chunk in removed.chunks(CHUNK) {
            record(self, chunk.iter().cloned().map(Change::Removed).collect())?;
        }
        let mut files = to_load.into_iter();
        loop {
            let chunk: Vec<(FileId, PathBuf)> = files.by_ref().take(PARSE_CHUNK).collect();
            if chunk.is_empty() {
                break;
            }
            let changes = self.core.load_all(chunk);
            record(self, changes)?;
        }
        self.refresh_pending(&by_date(keys), t)
    }

    /// Refreshes items left in the `pending` table (by a crash, or a failure between the two
    /// phases of a large batch).
    fn finish_pending(&mut self) -> Result<()> {
        let keys = self.store.batch()?.pending()?;
        if !keys.is_empty() {
            info!(items = keys.len(), "finishing the refresh of items an interrupted batch recorded");
            self.refresh_pending(&keys, now())?;
        }
        Ok(())
    }

    /// Refreshes pending items a chunk per transaction, in the order given.
    fn refresh_pending(&mut self, keys: &[String], t: DateTime<Utc>) -> Result<()> {
        for chunk in keys.chunks(CHUNK) {
            self.refresh_and_commit(t, |_, b| {
                for key in chunk {
                    b.clear_pending(key)?;
                }
                Ok(chunk.to_vec())
            })?;
        }
        Ok(())
    }

    /// In one transaction: `prepare` writes what it must and names the items to refresh, which
    /// are then brought up to date with their feed logs, and the whole commits. On failure the
    /// in-memory state (dirty feeds, counts) is put back as it was, as the transaction rolled back.
    fn refresh_and_commit(
        &mut self,
        t: DateTime<Utc>,
        prepare: impl FnOnce(&mut Core, &Batch<'_>) -> Result<Vec<String>>,
    ) -> Result<()> {
        let (dirty, history) = (self.core.dirty.clone(), self.core.history.clone());
        let core = &mut self.core;
        let outcome = self.store.batch().and_then(|b| {
            let keys = prepare(core, &b)?;
            let mut deltas = Vec::new();
            for key in &keys {
                core.heartbeat.beat();
                deltas.extend(core.refresh_item(&b, key, t)?);
            }
            core.log_deltas(&b, deltas, t)?;
            b.commit()
        });
        if let Err(e) = outcome {
            self.core.dirty = dirty;
            self.core.history = history;
            // The counts moved with the changes that were just rolled back.
            if let Ok(b) = self.store.batch()
                && let Ok(counts) = b.live_counts()
            {
                for (key, entry) in &mut self.core.catalog {
                    entry.count = counts.get(&key.path_stem()).copied().unwrap_or(0);
                }
            }
            return Err(e);
        }
        Ok(())
    }

    /// Renders the feeds whose content changed, records their change times, and publishes. On
    /// failure nothing is forgotten: the same feeds are rendered by the next successful call.
    fn render(&mut self) -> Result<()> {
        let t0 = std::time::Instant::now();
        let t = now();
        let b = self.store.batch()?;
        let mut rendered = BTreeMap::new();
        let dirty: Vec<FeedKey> = self.core.dirty.iter().cloned().collect();
        // What a feed shows is read from the store one feed after the other (one connection);
        // the documents are then made side by side, a group at a time, so that a large batch
        // does not hold every feed's items at once. In a large batch the next group is read
        // while the last one is rendered and packed (gzipped, original dropped), so neither
        // core waits and no more than two groups' originals exist at once. A small change is
        // one group, rendered at once and packed by the packer thread once it is published, so
        // the writer is free for the next change.
        let bulk = dirty.len() > RENDER_GROUP;
        let links = self.core.links.clone();
        let make = |prepared: Vec<Prepared>| -> Vec<(u64, Made)> {
            let done: Vec<(u64, Made)> = prepared.into_par_iter().map(|p| p.render(&links)).collect();
            if bulk {
                done.par_iter().for_each(|(_, made)| made.feed.pack());
            }
            done
        };
        let metrics = self.core.metrics.clone();
        let mut keep = |done: Vec<(u64, Made)>| {
            for (count, made) in done {
                metrics.render_seconds.observe(made.render_took);
                rendered.insert(made.feed.key.clone(), (count, made.feed));
            }
        };
        std::thread::scope(|scope| -> Result<()> {
            let mut in_flight: Option<std::thread::ScopedJoinHandle<'_, Vec<(u64, Made)>>> = None;
            for group in dirty.chunks(RENDER_GROUP) {
                let mut prepared = Vec::with_capacity(group.len());
                for key in group {
                    self.core.heartbeat.beat();
                    prepared.push(self.core.prepare_feed(&b, key, t)?);
                }
                if let Some(h) = in_flight.take() {
                    keep(h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
                }
                if bulk {
                    let make = &make;
                    in_flight = Some(scope.spawn(move || make(prepared)));
                } else {
                    keep(make(prepared));
                }
            }
            if let Some(h) = in_flight.take() {
                keep(h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
            }
            Ok(())
        })?;
        let feeds_done = std::time::Instant::now();
        let rejections = b.rejections()?;
        b.commit()?;
        self.core.rejections = rejections.clone();
        let committed = std::time::Instant::now();
        self.core.dirty.clear();
        self.core.history.clear();
        let rendered_count = rendered.len();
        let mut fresh = Vec::with_capacity(if bulk { 0 } else { rendered_count });
        for (key, (count, feed)) in rendered {
            let entry = self.core.catalog.entry(key).or_insert_with(Entry::new);
            entry.count = count;
            let feed = Arc::new(feed);
            if !bulk {
                fresh.push(feed.clone());
            }
            entry.feed = Some(feed);
        }
        self.core.publish(&rejections);
        for feed in fresh {
            match &self.core.packer {
                Some(packer) => {
                    if let Err(std::sync::mpsc::SendError(feed)) = packer.send(feed) {
                        feed.pack();
                    }
                }
                None => feed.pack(),
            }
        }
        debug!(
            feeds = rendered_count,
            feeds_ms = (feeds_done - t0).as_secs_f64() * 1e3,
            commit_ms = (committed - feeds_done).as_secs_f64() * 1e3,
            publish_ms = committed.elapsed().as_secs_f64() * 1e3,
            "rendered"
        );
        Ok(())
    }
}

impl Core {
    /// Whether a feed needs a token (and keeps its clippings out of public feeds).
    fn is_private(&self, key: &FeedKey) -> bool {
        match key {
            FeedKey::All => false,
            FeedKey::Topic(slug) => self.cfg.topics.get(slug).is_some_and(|t| t.private),
            FeedKey::Provider(domain) => self.cfg.private_providers.contains(domain),
        }
    }

    /// The file's id under the root containing `abs`; `None` outside every root, for a root
    /// itself, or for a name that is not UTF-8.
    fn locate(&self, abs: &Path) -> Option<FileId> {
        let root = self.cfg.clippings.iter().find(|r| abs.starts_with(r))?;
        let rel = abs.strip_prefix(root).ok()?;
        let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
        let Some(parts) = parts else {
            warn!(path = %abs.display(), "file name is not UTF-8; ignored");
            return None;
        };
        if parts.is_empty() {
            return None;
        }
        Some(FileId { root: root_key(root), path: parts.join("/") })
    }

    /// Whether a path relative to its root names a clipping file: no dot-file or dot-folder, no
    /// editor temporary, one of the configured extensions.
    fn is_candidate(&self, rel: &Path) -> bool {
        let Some(name) = rel.file_name().and_then(|n| n.to_str()) else { return false };
        !rel.components().any(|c| c.as_os_str().to_str().is_none_or(|s| s.starts_with('.')))
            && !is_editor_temp(name)
            && self.cfg.wants_extension(rel)
    }

    /// Where a symlink leads, when it is to be followed: to a regular file inside a root.
    fn symlink_target(&self, abs: &Path) -> Option<PathBuf> {
        let target = abs.canonicalize().ok()?;
        let inside = self.canonical_roots.iter().any(|r| target.starts_with(r));
        (inside && target.is_file()).then_some(target)
    }

    /// Symlinked clippings whose target is `abs` (which may no longer exist).
    fn links_to(&self, abs: &Path) -> Vec<PathBuf> {
        if self.symlinks.is_empty() {
            return Vec::new();
        }
        let canonical = abs.canonicalize().ok().or_else(|| {
            let parent = abs.parent()?.canonicalize().ok()?;
            Some(parent.join(abs.file_name()?))
        });
        canonical.and_then(|c| self.symlinks.get(&c)).map(|set| set.iter().cloned().collect()).unwrap_or_default()
    }

    /// Every clipping file below `dir` (inside a root) with its stat. Dot-folders are skipped;
    /// symlinked folders are not followed; symlinked files that are followed are added to `links`.
    fn walk(
        &self,
        dir: &Path,
        links: &mut HashMap<PathBuf, BTreeSet<PathBuf>>,
    ) -> Result<Vec<(FileId, PathBuf, FileStat)>> {
        let mut out = Vec::new();
        let walker = walkdir::WalkDir::new(dir)
            .follow_links(false)
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !e.file_name().to_str().is_some_and(|n| n.starts_with('.')));
        for entry in walker {
            self.heartbeat.beat();
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    warn!("cannot list {}: {e}", e.path().unwrap_or(dir).display());
                    continue;
                }
            };
            let ft = entry.file_type();
            if ft.is_dir() {
                continue;
            }
            let abs = entry.path();
            let Some(id) = self.locate(abs) else { continue };
            if !self.is_candidate(Path::new(&id.path)) {
                continue;
            }
            if ft.is_symlink() {
                let Some(target) = self.symlink_target(abs) else { continue };
                links.entry(target).or_default().insert(abs.to_path_buf());
            }
            match std::fs::metadata(abs) {
                Ok(m) if m.is_file() => out.push((id, abs.to_path_buf(), stat_of(&m))),
                Ok(_) => {}
                Err(e) => warn!(path = %abs.display(), "cannot stat: {e}"),
            }
        }
        Ok(out)
    }

    /// Records what reading files gave: a good parse, a rejection, or a removal. Notes in `keys`
    /// every item key involved, with the earliest clipping date seen for it (the order in which
    /// items are then refreshed).
    fn record(
        &mut self,
        b: &Batch<'_>,
        mut changes: Vec<Change>,
        t: DateTime<Utc>,
        keys: &mut HashMap<String, DateTime<Utc>>,
    ) -> Result<()> {
        let mut note = |key: String, at: Option<DateTime<Utc>>| {
            let at = at.unwrap_or(DateTime::<Utc>::MAX_UTC);
            let e = keys.entry(key).or_insert(at);
            *e = (*e).min(at);
        };
        // Removals first: a file renamed within the batch leaves before it arrives.
        changes.sort_by_key(|c| !matches!(c, Change::Removed(_)));
        for change in changes {
            self.heartbeat.beat();
            match change {
                Change::Parsed { id, stat, result: Ok(parsed) } => {
                    let key = item::key_for(&parsed.clipping, &id.path);
                    // A clipping without a URL is its path; the same path under two roots
                    // would silently make two files one item.
                    if parsed.clipping.url.is_none()
                        && let Some(other) = b.files_with_key(&key)?.into_iter().find(|f| f.root != id.root)
                    {
                        let reason = format!(
                            "{} under root {} has the same path and no webUrl either; give one of them a webUrl or another name",
                            other.path, other.root
                        );
                        warn!(root = %id.root, path = %id.path, %reason, "clipping rejected");
                        b.put_file_rejected(&id, stat, &reason, t)?;
                        continue;
                    }
                    if let Some(old) = b.file(&id)?.and_then(|r| r.item_key)
                        && old != key
                    {
                        note(old, None);
                    }
                    for w in &parsed.warnings {
                        warn!(root = %id.root, path = %id.path, "{w}");
                    }
                    b.put_file_ok(&id, stat, &key, &parsed.clipping)?;
                    note(key, parsed.clipping.published);
                }
                Change::Parsed { id, stat, result: Err(reason) } => {
                    // A file modified a moment ago may still be being written (a writer that
                    // appends in several opens): it gets RECENT to finish before a rejection
                    // is recorded, and its last good version keeps serving meanwhile.
                    let age_ns = t.timestamp_nanos_opt().unwrap_or(i64::MAX).saturating_sub(stat.mtime_ns);
                    if age_ns < RECENT.as_nanos() as i64 {
                        debug!(path = %id.path, %reason, "not yet a clipping; looking again shortly");
                        let abs = Path::new(&id.root).join(&id.path);
                        self.recheck.push((std::time::Instant::now() + RECENT, abs));
                        continue;
                    }
                    warn!(root = %id.root, path = %id.path, %reason, "clipping rejected");
                    b.put_file_rejected(&id, stat, &reason, t)?;
                }
                Change::Removed(id) => {
                    debug!(path = %id.path, "clipping file removed");
                    if let Some(old) = b.remove_file(&id)? {
                        note(old, None);
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads and parses files, in parallel when there are many.
    fn load_all(&self, files: Vec<(FileId, PathBuf)>) -> Vec<Change> {
        let limits = self.limits;
        let heartbeat = &self.heartbeat;
        let one = |(id, abs): (FileId, PathBuf)| {
            heartbeat.beat();
            load(id, &abs, limits)
        };
        if files.len() > 16 { files.into_par_iter().map(one).collect() } else { files.into_iter().map(one).collect() }
    }

    /// Recomputes the item for `key` from its files. Writes it when its content changed, or
    /// tombstones it when no file names it any more. Returns what changed, for the feed logs.
    fn refresh_item(&mut self, b: &Batch<'_>, key: &str, t: DateTime<Utc>) -> Result<Option<Delta>> {
        let sources = b.sources(key)?;
        let state = b.item_state(key)?;
        let live = state.as_ref().filter(|s| !s.deleted);
        let id = item::id_for(key);
        // The feeds the item is in are the feeds where it has an open slot.
        let before: BTreeSet<FeedKey> = b.open_feeds(&id)?.iter().filter_map(|s| FeedKey::from_stem(s)).collect();
        if sources.is_empty() {
            if live.is_none() {
                return Ok(None);
            }
            b.tombstone_item(key, t)?;
            return Ok(Some(Delta { id, published: t, before, after: BTreeSet::new(), changed: true }));
        }
        let first_seen = state.as_ref().map_or(t, |s| s.first_seen);
        let refs: Vec<Source<'_>> = sources.iter().map(|(p, c)| Source { rel_path: p, clipping: c }).collect();
        let data = item::merge(&refs, first_seen, &self.cfg.topics).context("merging the files of an item")?;
        let hash = data.hash();
        if live.is_some_and(|s| s.hash == hash) {
            return Ok(None);
        }
        // Only a change subscribers can see makes the item updated; a change to, say, its
        // quality alone is stored (filters use it) without touching its time or its slots.
        let shown = data.shown_hash();
        let edited = live.is_none_or(|s| s.shown != shown);
        let updated = match live {
            Some(s) if !edited => s.updated,
            Some(s) => s.updated.max(t),
            None => t,
        };
        let it = Item { id: id.clone(), updated, data };
        b.put_item(key, &it, first_seen, &hash, &shown)?;
        let mut after = BTreeSet::from([FeedKey::All]);
        for topic in &it.data.topics {
            b.put_topic(&topic.slug, &topic.name)?;
            let key = FeedKey::Topic(topic.slug.clone());
            self.catalog.entry(key.clone()).or_insert_with(Entry::new).name = topic.name.clone();
            after.insert(key);
        }
        if let Some(p) = &it.data.clip.provider
            && let Some(domain) = &p.domain
        {
            b.put_provider(domain, &p.name)?;
            let key = FeedKey::Provider(domain.clone());
            self.catalog.entry(key.clone()).or_insert_with(Entry::new).name = p.name.clone();
            after.insert(key);
        }
        // A clipping in a private feed stays out of every public one.
        if after.iter().any(|f| self.is_private(f)) {
            after.retain(|f| self.is_private(f));
        }
        Ok(Some(Delta { id, published: it.data.published, before, after, changed: edited }))
    }

    /// Writes item changes into the feed logs. An item entering a feed gets a slot at its end;
    /// an item leaving closes its slot (with a tombstone). An edited item keeps its slot while
    /// that is in the subscription document, and otherwise gets a new one at the end, so the
    /// edit reaches subscribers. New slots are given in date order, so a batch of old clippings
    /// lands in the archive oldest first. Marks the feeds for rendering and their history as
    /// changed.
    fn log_deltas(&mut self, b: &Batch<'_>, mut deltas: Vec<Delta>, t: DateTime<Utc>) -> Result<()> {
        deltas.sort_by(|x, y| x.published.cmp(&y.published).then_with(|| x.id.cmp(&y.id)));
        for d in &deltas {
            for f in d.before.difference(&d.after) {
                b.log_leave(f, &d.id, t)?;
                let e = self.catalog.entry(f.clone()).or_insert_with(Entry::new);
                e.count = e.count.saturating_sub(1);
            }
            for f in d.after.difference(&d.before) {
                self.catalog.entry(f.clone()).or_insert_with(Entry::new).count += 1;
            }
        }
        for d in &deltas {
            for f in &d.after {
                let enter = if !d.before.contains(f) {
                    true
                } else if d.changed {
                    let window = self.catalog.get(f).and_then(|e| e.feed.as_ref()).map_or(0, |e| e.window_start);
                    b.open_slot(f, &d.id)?.is_none_or(|pos| pos < window)
                } else {
                    false
                };
                if enter {
                    b.log_enter(f, &d.id, t)?;
                }
            }
            for f in d.before.union(&d.after) {
                self.dirty.insert(f.clone());
                self.history.insert(f.clone());
            }
        }
        Ok(())
    }

    /// Title and description of a feed.
    fn describe(&self, key: &FeedKey, name: &str) -> (String, String) {
        let site = &self.cfg.title;
        match key {
            FeedKey::All => (site.clone(), self.cfg.description.clone()),
            FeedKey::Topic(slug) => {
                let desc = self.cfg.topics.get(slug).and_then(|t| t.description.clone());
                (format!("{site}: {name}"), desc.unwrap_or_else(|| format!("News clippings about {name}")))
            }
            FeedKey::Provider(domain) if name == domain => {
                (format!("{site}: {name}"), format!("News clippings from {domain}"))
            }
            FeedKey::Provider(domain) => (format!("{site}: {name}"), format!("News clippings from {name} ({domain})")),
        }
    }

    /// Items per feed, and slots per archive page, for a feed. Pages are half a feed, so the
    /// subscription document (the last full page and the open one) never holds more than
    /// `items_per_feed` items.
    fn sizes(&self, key: &FeedKey) -> (usize, u64) {
        let n = match key {
            FeedKey::Topic(slug) => self.cfg.topics.get(slug).and_then(|t| t.items_per_feed),
            _ => None,
        }
        .unwrap_or(self.cfg.items_per_feed);
        (n, n.div_ceil(2) as u64)
    }

    /// Reads what one feed's subscription document shows and records its new state; the
    /// documents are then made by [`Prepared::render`]. Its time moves to `t` only when what it
    /// shows changed; its history time when anything in it changed.
    fn prepare_feed(&mut self, b: &Batch<'_>, key: &FeedKey, t: DateTime<Utc>) -> Result<Prepared> {
        let started = std::time::Instant::now();
        let entry = self.catalog.entry(key.clone()).or_insert_with(Entry::new);
        if entry.name.is_empty() {
            entry.name = match &key {
                FeedKey::All => self.cfg.title.clone(),
                FeedKey::Topic(s) => s.clone(),
                FeedKey::Provider(d) => d.clone(),
            };
        }
        let name = entry.name.clone();
        let count = entry.count;
        let (items_per_feed, page_size) = self.sizes(key);
        let len = b.log_len(key)?;
        // Archive pages are the full pages before the last full one; the subscription document
        // holds that one and the open page after it. When closed slots (deletions, clippings that
        // left) leave it fewer than a page of items, it reaches back a page at a time.
        let mut archive_pages = (len / page_size).saturating_sub(1);
        let mut open = b.open_slots(key, archive_pages * page_size, len)?;
        while open < page_size && archive_pages > 0 {
            archive_pages -= 1;
            open += b.open_slots(key, archive_pages * page_size, (archive_pages + 1) * page_size)?;
        }
        let window_start = archive_pages * page_size;
        let items = b.slot_items(key, window_start, len)?;
        let tombstones = b.tombstones(key, DateTime::UNIX_EPOCH)?;
        let (title, description) = self.describe(key, &name);
        let icon = match key {
            FeedKey::Provider(_) => items.iter().find_map(|i| i.data.clip.provider.as_ref()?.images.first().cloned()),
            _ => None,
        };
        let mut meta =
            FeedMeta { site_title: self.cfg.title.clone(), title, description, updated: t, key: key.clone(), icon };
        let page = Page::Current { newest_archive: archive_pages.checked_sub(1), page_size };
        let signature = signature(&meta, &page, &items, &tombstones, self.links.base());
        let meta_hash = {
            let m = format!("{}\0{}\0{}\0{}", meta.title, meta.description, meta.site_title, self.links.base());
            format!("{:032x}", xxhash_rust::xxh3::xxh3_128(m.as_bytes()))
        };
        let history_changed = self.history.contains(key);
        let state = match b.feed_state(key)? {
            Some(old) => {
                let (changed_at, ambiguous) = if old.signature == signature {
                    (old.changed_at, old.ambiguous)
                } else {
                    // Changed again within the second of the last change: same date, but flagged,
                    // so a client holding that date is not told the older version is current.
                    (old.changed_at.max(t), old.changed_at >= t)
                };
                let (history_at, history_ambiguous) = if history_changed {
                    (old.history_at.max(t), old.history_at >= t)
                } else {
                    (old.history_at, old.history_ambiguous)
                };
                // A new page size (items_per_feed changed) retires the old one with the pages it
                // had, so links to them keep their content.
                let mut retired = old.retired;
                if old.page_size != page_size && old.page_size > 0 && old.full_pages > 0 {
                    retired.insert(old.page_size, old.full_pages);
                }
                retired.remove(&page_size);
                // Strictly later, even within the same second: archive pages date themselves by it.
                // Title and address changes are rare, so this never runs ahead of the clock.
                let meta_at = if old.meta == meta_hash {
                    old.meta_at
                } else {
                    (old.meta_at + chrono::Duration::seconds(1)).max(t)
                };
                FeedState {
                    signature,
                    changed_at,
                    ambiguous,
                    history_at,
                    history_ambiguous,
                    page_size,
                    full_pages: len / page_size,
                    retired,
                    meta: meta_hash,
                    meta_at,
                }
            }
            // A feed rendered for the first time: its content is as new as its newest item.
            None => {
                let at = items.iter().map(|i| i.updated).max().unwrap_or(t);
                FeedState {
                    signature,
                    changed_at: at,
                    ambiguous: false,
                    history_at: at,
                    history_ambiguous: false,
                    page_size,
                    full_pages: len / page_size,
                    retired: Default::default(),
                    meta: meta_hash,
                    meta_at: at,
                }
            }
        };
        b.set_feed_state(key, &state)?;
        self.renders += 1;
        Metrics::add(&self.metrics.renders, 1);
        meta.updated = state.changed_at;
        let generation = self.generations.entry(key.clone()).or_insert(0);
        if history_changed {
            *generation += 1;
        }
        Ok(Prepared {
            started,
            count,
            meta,
            page,
            items,
            tombstones,
            state,
            items_per_feed,
            page_size,
            archive_pages,
            window_start,
            log_len: len,
            generation: *generation,
        })
    }

    /// Builds and swaps in a new site snapshot from the catalog.
    fn publish(&self, rejections: &[Rejection]) {
        let mut feeds = HashMap::with_capacity(self.catalog.len());
        let mut topics = Vec::new();
        let mut providers = Vec::new();
        let mut newest = DateTime::UNIX_EPOCH;
        for (key, entry) in &self.catalog {
            let Some(feed) = &entry.feed else { continue };
            newest = newest.max(feed.rss.last_modified);
            feeds.insert(key.path_stem(), feed.clone());
            if self.is_private(key) {
                continue;
            }
            let listing = Listing { key: key.clone(), name: entry.name.clone(), count: entry.count };
            match key {
                FeedKey::All => {}
                // Listed when they have clippings, or are configured; empty ones keep serving.
                FeedKey::Topic(slug) if entry.count > 0 || self.cfg.topics.get(slug).is_some() => topics.push(listing),
                FeedKey::Provider(_) if entry.count > 0 => providers.push(listing),
                _ => {}
            }
        }
        let by_name = |l: &Listing| (l.name.to_lowercase(), l.key.clone());
        topics.sort_by_cached_key(by_name);
        providers.sort_by_cached_key(by_name);
        let total = self.catalog.get(&FeedKey::All).map_or(0, |e| e.count);
        let (topic_count, provider_count) = (topics.len(), providers.len());
        let listed = Arc::new((topics, providers));
        let index = {
            let (title, description, links, listed) =
                (self.cfg.title.clone(), self.cfg.description.clone(), self.links.clone(), listed.clone());
            Deferred::new(move || {
                let page = pages::index(&title, &description, &links, total, &listed.0, &listed.1);
                Rendered::new(page.into_bytes(), newest, "text/html; charset=utf-8")
            })
        };
        let opml = {
            let (title, links) = (self.cfg.title.clone(), self.links.clone());
            Deferred::new(move || {
                let outline = |l: &Listing| Outline { key: l.key.clone(), title: l.name.clone() };
                let topics: Vec<Outline> = listed.0.iter().map(outline).collect();
                let providers: Vec<Outline> = listed.1.iter().map(outline).collect();
                Rendered::new(
                    feed::opml(&title, newest, &topics, &providers, &links),
                    newest,
                    "text/x-opml; charset=utf-8",
                )
            })
        };
        let status = serde_json::json!({
            "ready": self.ready,
            "clippings": total,
            "topics": topic_count,
            "providers": provider_count,
            "feeds": feeds.len(),
            "renders": self.renders,
            "rescans": self.rescans,
            "rejected_total": rejections.len(),
            "rejected": rejections.iter().take(STATUS_REJECTIONS).map(|r| serde_json::json!({
                "root": r.file.root,
                "path": r.file.path,
                "reason": r.reason,
                "since": r.at.to_rfc3339(),
            })).collect::<Vec<_>>(),
        });
        let site = Site {
            feeds,
            index,
            opml,
            status: bytes::Bytes::from(serde_json::to_vec_pretty(&status).expect("status serialises")),
            ready: self.ready,
            private: self.tokens.clone(),
        };
        Metrics::set(&self.metrics.clippings_live, total);
        Metrics::set(&self.metrics.files_rejected_now, rejections.len() as u64);
        Metrics::set(&self.metrics.files_pending, self.recheck.len() as u64);
        Metrics::set(&self.metrics.feeds, site.feeds.len() as u64);
        self.site.store(Arc::new(site));
    }
}

/// Starts the thread that packs published feeds (gzip made, original dropped), so that the
/// writer is free for the next change meanwhile. A feed replaced before its turn is skipped.
/// `None` if the thread cannot start: the writer then packs them itself.
fn spawn_packer() -> Option<std::sync::mpsc::Sender<Arc<FeedEntry>>> {
    let (tx, rx) = std::sync::mpsc::channel::<Arc<FeedEntry>>();
    let started = std::thread::Builder::new().name("clipfeed-pack".into()).spawn(move || {
        // Background work: the writer, the watcher and the HTTP workers go first. (Linux keeps
        // a nice value per thread.)
        // SAFETY: gettid and setpriority have no preconditions; a failure only leaves the nice
        // value as it was.
        #[cfg(target_os = "linux")]
        unsafe {
            libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10);
        }
        for feed in rx {
            if Arc::strong_count(&feed) > 1 {
                feed.pack();
            }
        }
    });
    started.ok().map(|_| tx)
}

/// How many feeds are read from the store before their documents are made in parallel.
const RENDER_GROUP: usize = 8;

/// What the store says a feed shows, read by [`Core::prepare_feed`]; making its documents needs
/// nothing else, so feeds are rendered side by side.
struct Prepared {
    started: std::time::Instant,
    count: u64,
    meta: FeedMeta,
    page: Page,
    items: Vec<Item>,
    tombstones: Vec<(String, DateTime<Utc>)>,
    state: FeedState,
    items_per_feed: usize,
    page_size: u64,
    archive_pages: u64,
    window_start: u64,
    log_len: u64,
    generation: u64,
}

/// A feed's new entry and the time it took from reading to rendered.
struct Made {
    feed: FeedEntry,
    render_took: Duration,
}

impl Prepared {
    /// The feed's documents in every format.
    fn render(self, links: &Links) -> (u64, Made) {
        let Prepared { started, count, meta, page, items, tombstones, state, .. } = &self;
        let doc = Doc { meta, page, items, tombstones };
        let render = |format: Format| {
            let mut r = Rendered::new(feed::render(format, &doc, links), meta.updated, format.content_type());
            r.ambiguous = state.ambiguous;
            r
        };
        let (rss, (atom, json)) =
            rayon::join(|| render(Format::Rss), || rayon::join(|| render(Format::Atom), || render(Format::Json)));
        let (count, render_took) = (*count, started.elapsed());
        let feed = FeedEntry {
            key: self.meta.key.clone(),
            rss,
            atom,
            json,
            items_per_feed: self.items_per_feed,
            page_size: self.page_size,
            archive_pages: self.archive_pages,
            window_start: self.window_start,
            log_len: self.log_len,
            meta_at: self.state.meta_at,
            retired_pages: self.state.retired.clone(),
            generation: self.generation,
            history_at: self.state.history_at,
            history_ambiguous: self.state.history_ambiguous,
            meta: self.meta,
        };
        (count, Made { feed, render_took })
    }
}

/// A hash over everything a subscription document shows except its own time.
fn signature(
    meta: &FeedMeta,
    page: &Page,
    items: &[Item],
    tombstones: &[(String, DateTime<Utc>)],
    base: &str,
) -> String {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let icon = meta.icon.as_ref().map(|i| format!("{i:?}")).unwrap_or_default();
    for s in [&meta.title, &meta.description, &meta.site_title, base, &icon, &format!("{page:?}")] {
        h.update(s.as_bytes());
        h.update(&[0]);
    }
    for it in items {
        h.update(it.id.as_bytes());
        h.update(&it.updated.timestamp().to_le_bytes());
        h.update(it.data.hash().as_bytes());
    }
    for (id, at) in tombstones {
        h.update(id.as_bytes());
        h.update(&at.timestamp().to_le_bytes());
    }
    format!("{:032x}", h.digest128())
}

/// Hands memory freed after a large job (a reconcile's file index, a batch's parses) back to the
/// system, so the resident size settles near what the published feeds need.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Item keys, oldest first (then by key, so the order is stable).
fn by_date(keys: HashMap<String, DateTime<Utc>>) -> Vec<String> {
    let mut v: Vec<(DateTime<Utc>, String)> = keys.into_iter().map(|(k, at)| (at, k)).collect();
    v.sort();
    v.into_iter().map(|(_, k)| k).collect()
}

/// The key a root is stored under.
fn root_key(root: &Path) -> String {
    root.to_string_lossy().into_owned()
}

fn stat_of(m: &std::fs::Metadata) -> FileStat {
    use std::os::unix::fs::MetadataExt;
    FileStat { size: m.len(), mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec() }
}

/// Editor and tool temporaries: vim swap files and its `4913` probe, `name~` backups, `.tmp`
/// files, Emacs `#name#` autosaves. Dotfiles are excluded separately.
pub fn is_editor_temp(name: &str) -> bool {
    name == "4913"
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".swo")
        || name.to_ascii_lowercase().ends_with(".tmp")
        || (name.starts_with('#') && name.ends_with('#'))
}

/// Reads a clipping file: regular files only (a FIFO or device is refused without blocking), at
/// most `max_file_bytes`. The outer error is an IO failure; the inner one means "too large".
pub fn read_clipping(abs: &Path, limits: Limits) -> std::io::Result<(FileStat, Result<Vec<u8>, clip::Error>)> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(abs)?;
    let meta = file.metadata()?;
    let stat = stat_of(&meta);
    if !meta.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"));
    }
    if meta.len() > limits.max_file_bytes {
        return Ok((stat, Err(clip::Error::TooLarge { size: meta.len(), max: limits.max_file_bytes })));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize + 1);
    file.take(limits.max_file_bytes + 1).read_to_end(&mut bytes)?;
    Ok((stat, Ok(bytes)))
}

/// Reads one file and parses it.
fn load(id: FileId, abs: &Path, limits: Limits) -> Change {
    match read_clipping(abs, limits) {
        Ok((stat, bytes)) => {
            let result = bytes.and_then(|b| clip::parse(&b, limits)).map(Box::new).map_err(|e| e.to_string());
            Change::Parsed { id, stat, result }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Change::Removed(id),
        Err(e) => {
            let stat = std::fs::symlink_metadata(abs).map(|m| stat_of(&m)).unwrap_or(FileStat { size: 0, mtime_ns: 0 });
            Change::Parsed { id, stat, result: Err(format!("cannot read: {e}")) }
        }
    }
}

/// The text of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let msg = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
    format!("internal error (panic): {}", msg.unwrap_or_else(|| "unknown".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingest(dir: &Path) -> Ingest {
        let root = dir.join("root");
        std::fs::create_dir_all(&root).unwrap();
        let cfg = Arc::new(Config::for_test(&root, &dir.join("store.db")));
        let site = Arc::new(ArcSwap::from_pointee(Site::empty()));
        let store = Store::open(&dir.join("store.db")).unwrap();
        let metrics = Arc::new(Metrics::default());
        let mut ingest = Ingest::start(cfg, store, site, metrics, Heartbeat::new("writer")).unwrap();
        ingest.reconcile().unwrap();
        ingest
    }

    fn all_rss(ingest: &Ingest) -> Rendered {
        ingest.core.site.load().feed("feed", Format::Rss).unwrap().clone()
    }

    #[test]
    fn two_changes_in_one_second_make_the_date_ambiguous() {
        let dir = tempfile::tempdir().unwrap();
        let mut ingest = ingest(dir.path());
        let path = dir.path().join("root/a.md");
        for attempt in 0..10 {
            std::fs::write(&path, format!("---\ntitle: Version {attempt}a\n---\n")).unwrap();
            ingest.touched(vec![path.clone()]).unwrap();
            let first = all_rss(&ingest);
            std::fs::write(&path, format!("---\ntitle: Version {attempt}b\n---\n")).unwrap();
            ingest.touched(vec![path.clone()]).unwrap();
            let second = all_rss(&ingest);
            assert_ne!(first.hash, second.hash);
            assert!(second.last_modified >= first.last_modified);
            if second.last_modified == first.last_modified {
                assert!(second.ambiguous, "two versions share a Last-Modified");
                return;
            }
            // The second boundary fell between the two writes; try again.
        }
        panic!("never managed two changes within one second");
    }

    #[test]
    fn unchanged_content_keeps_the_etag() {
        let dir = tempfile::tempdir().unwrap();
        let mut ingest = ingest(dir.path());
        let path = dir.path().join("root/a.md");
        std::fs::write(&path, "---\ntitle: Stable\nsecured: one\n---\n").unwrap();
        ingest.touched(vec![path.clone()]).unwrap();
        let before = all_rss(&ingest);
        // Touched, rewritten with a field that is never published, rescanned: no new version.
        std::fs::write(&path, "---\ntitle: Stable\nsecured: two\n---\n").unwrap();
        ingest.touched(vec![path.clone()]).unwrap();
        ingest.reconcile().unwrap();
        let after = all_rss(&ingest);
        assert_eq!(before.hash, after.hash);
        assert_eq!(before.last_modified, after.last_modified);
    }

    #[test]
    fn editor_temporaries() {
        for name in ["4913", "a.md~", ".a.md.swp", "a.swx", "x.TMP", "#a.md#"] {
            assert!(is_editor_temp(name), "{name}");
        }
        for name in ["a.md", "a.txt", "4914", "#a.md"] {
            assert!(!is_editor_temp(name), "{name}");
        }
    }
}
