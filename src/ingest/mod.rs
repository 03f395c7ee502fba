//! The writer: the one thread that owns the store. It turns "these paths changed" and "compare
//! everything" into store updates, re-renders exactly the feeds whose content those updates
//! touch, and publishes a new [`Site`] snapshot. One responsibility per file:
//!
//! - [`jobs`]: the job loop, its timers (retries, tombstone purges, token re-reads) and the
//!   containment of a failed or panicking job.
//! - [`sync`]: what changed on disk, by a full reconcile or for the paths the watcher reported.
//! - [`scan`]: the file system side: which paths are clippings, walking folders, following
//!   symlinks, reading one file. Shared with `clipfeed check`.
//! - [`apply`]: recording files, refreshing the items they name, and the feed-log deltas.
//! - [`window`]: the subscription window, page sizes and the feed-state transition (pure).
//! - [`render`]: reading what each dirty feed shows, rendering its documents, packing them.
//! - [`publish`]: the [`Site`] built from the catalog: feeds, index, OPML, status.
//! - [`catalog`]: the feeds the writer knows, with names, counts and published documents.
//! - [`snapshot`]: the published feeds saved at a clean stop and served at the next start.
//! - [`tokens`]: the tokens of private feeds.
//! - [`push`]: after a publish, the WebSub hub and the static export; the hubs feeds advertise.
//! - [`progress`]: how far a large batch is, logged and published while it runs.
//! - [`remap`]: a topic remap that keeps the old feeds serving until the new ones are complete.

mod apply;
mod bulk;
mod catalog;
mod cold;
mod jobs;
mod large;
mod membership;
mod progress;
mod publish;
mod push;
mod remap;
mod render;
mod scan;
mod snapshot;
mod stories;
mod story_log;
mod sync;
mod to_read;
mod tokens;
mod window;

/// The window arithmetic, shared with the story logs' documents (`views/story_log`).
pub(crate) use window::window as log_window;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};

use crate::clip::{KeyWarning, Limits};
use crate::config::Config;
use crate::feed::{FeedKey, Links};
use crate::metrics::Metrics;
use crate::site::Site;
use crate::store::{Rejection, Store};
use crate::systemd::Heartbeat;

pub(crate) use push::Push;
pub(crate) use scan::{clipping_files, read_clipping, root_state};
pub(crate) use tokens::{feed_tokens, loosening_refused, refuse_loosening};

use catalog::Catalog;
use scan::Scanner;

/// The writer: the store, and everything else it works with, kept apart so that an open batch on
/// the store and the rest can be borrowed at the same time.
pub struct Ingest {
    store: Store,
    core: Core,
    /// A topic remap has ended its transaction but not its hold on the store's checkpoints:
    /// the render that follows it ends that ([`Store::end_remap`]), rendered or not.
    remap_open: bool,
}

/// The writer's state besides the store. What a transaction changes here is applied only once
/// it has committed (see `apply::Effects`; a render updates the catalog after its commit), so a
/// job that fails or panics leaves it as it was.
struct Core {
    cfg: Arc<Config>,
    /// Hands published feeds to the thread that packs them (see [`render::spawn_packer`]).
    packer: Option<std::sync::mpsc::Sender<render::ToPack>>,
    links: Links,
    limits: Limits,
    catalog: Catalog,
    site: Arc<ArcSwap<Site>>,
    ready: bool,
    /// The store has never finished a reconcile (meta `reconciled`): feeds without items answer
    /// 503 until it has.
    cold: bool,
    /// The store is being rewritten compactly after a cold build (`large::COMPACT_DUE`), once
    /// its feeds are published.
    compacting: bool,
    /// The large batch under way, if any.
    progress: Option<progress::Progress>,
    /// The topic remap under way, if any.
    remap: Option<remap::Remapping>,
    /// Each configured root as the last reconcile found it.
    roots: Vec<crate::site::RootStatus>,
    /// Files named in the log in the current batch (the rest go to debug, summarised).
    named: apply::Named,
    /// Canonical roots and the symlinked clippings followed.
    scanner: Scanner,
    /// Feeds to render (kept across a failed update).
    dirty: BTreeSet<FeedKey>,
    /// Files rejected while they were still being written, to look at again (when, path).
    recheck: Vec<(Instant, PathBuf)>,
    /// Feed documents rendered and reconciles run since start, for `/api/status`.
    renders: u64,
    rescans: u64,
    metrics: Arc<Metrics>,
    heartbeat: Heartbeat,
    /// The rejections last read from the store, for republishing without a store round trip.
    rejections: Vec<Rejection>,
    /// The near-miss front-matter keys over every file, for `/api/status`; re-read from the
    /// store when `notes_changed`.
    key_warnings: Vec<KeyWarning>,
    notes_changed: bool,
    /// The token of each private feed, by path stem.
    tokens: HashMap<String, String>,
    /// Feeds in which an item entered, changed or left since the last render.
    history: BTreeSet<FeedKey>,
    /// Per feed, bumped at each history change: the generation of cached views.
    generations: HashMap<FeedKey, u64>,
    /// Feeds published with an ambiguous date (two versions within one second), and the
    /// second from which that date can settle at a later one (see `window::next_state`).
    unsettled: BTreeMap<FeedKey, DateTime<Utc>>,
    /// Set while feeds are rendered again only to settle an ambiguous date: their items are
    /// as subscribers already got them, so the hub is not told (a delivery would only hold the
    /// next real change back for the hub's coalescing window).
    settling: bool,
    /// Why the last update could not be written to the store, and why the store's file is not
    /// the one opened; `None` while all is well (see `jobs`).
    store_error: Option<String>,
    store_gone: Option<String>,
    /// Clipping files changed on disk that the last update was storing (0 once stored).
    waiting: u64,
    /// Where published changes go besides HTTP: the WebSub hub, the static export.
    push: Push,
    /// The index's latest stories; `None` until read (then read again when the all-feed changes).
    latest_stories: Option<Arc<Vec<crate::pages::StoryListing>>>,
    /// The listings of the latest stories, by story, with the fingerprint each was made at.
    story_listings: HashMap<String, (crate::store::StoryPrint, Option<crate::pages::StoryListing>)>,
    /// The items the last small changes' feeds showed (see [`render::ItemCache`]).
    items: render::ItemCache,
    /// Bytes of documents the next render may publish before packing them: set by a topic
    /// remap (to [`render::UNPACKED_BYTES`]), 0 otherwise.
    unpacked: usize,
    /// Raised when the daemon stops: a large batch ends at its next chunk.
    stop: crate::job::StopFlag,
}

/// The `meta` key set once the store has been reconciled with the roots for the first time.
const RECONCILED: &str = "reconciled";

#[cfg(test)]
thread_local! {
    /// Tests only: the writer's clock stopped at this time on this thread (two builds compared
    /// row by row give undated clippings the same first-seen time).
    static TEST_NOW: std::cell::Cell<Option<DateTime<Utc>>> = const { std::cell::Cell::new(None) };
}

/// The current time at the precision feeds and HTTP dates carry.
fn now() -> DateTime<Utc> {
    #[cfg(test)]
    if let Some(t) = TEST_NOW.get() {
        return t;
    }
    DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap_or_default()
}

impl Ingest {
    /// Opens the writer over `store` and publishes every feed the store already holds, so a
    /// restart serves its previous content before the first reconcile finishes.
    pub fn start(
        cfg: Arc<Config>,
        mut store: Store,
        site: Arc<ArcSwap<Site>>,
        metrics: Arc<Metrics>,
        heartbeat: Heartbeat,
    ) -> Result<Ingest> {
        let alive = heartbeat.clone();
        store.beat_while_working(move || alive.beat())?;
        let mut ingest = Ingest {
            core: Core {
                links: Links::new(&cfg.base_url),
                limits: Limits { max_file_bytes: cfg.max_file_bytes },
                catalog: Catalog::new(),
                site,
                ready: false,
                cold: true,
                compacting: false,
                progress: None,
                remap: None,
                roots: Vec::new(),
                named: apply::Named::default(),
                scanner: Scanner::new(&cfg),
                dirty: BTreeSet::new(),
                recheck: Vec::new(),
                renders: 0,
                rescans: 0,
                metrics,
                heartbeat,
                rejections: Vec::new(),
                key_warnings: Vec::new(),
                notes_changed: true,
                tokens: HashMap::new(),
                history: BTreeSet::new(),
                generations: HashMap::new(),
                unsettled: BTreeMap::new(),
                settling: false,
                store_error: None,
                store_gone: None,
                waiting: 0,
                push: Push::default(),
                latest_stories: None,
                story_listings: HashMap::new(),
                items: render::ItemCache::default(),
                unpacked: 0,
                stop: crate::job::StopFlag::default(),
                packer: render::spawn_packer(),
                cfg,
            },
            store,
            remap_open: false,
        };
        let started = Instant::now();
        ingest.core.cold = ingest.store.batch()?.meta(RECONCILED)?.is_none();
        ingest.reread_if_format_changed()?;
        ingest.load_catalog()?;
        let catalog_ms = started.elapsed().as_millis() as u64;
        ingest.restore_snapshot()?;
        let snapshot_ms = started.elapsed().as_millis() as u64;
        ingest.remap()?;
        ingest.merge_several_files_once()?;
        let regroup = ingest.story_log_refill_due()?;
        ingest.backfill_stories()?;
        ingest.backfill_story_log(regroup)?;
        ingest.migrate_story_class()?;
        ingest.purge_tombstones()?;
        ingest.ensure_tokens()?;
        let checks_ms = started.elapsed().as_millis() as u64;
        ingest.render()?;
        let ms = started.elapsed().as_millis() as u64;
        tracing::info!(catalog_ms, snapshot_ms, checks_ms, ms, "writer started");
        Ok(ingest)
    }

    /// The flag the daemon raises when it stops, which a large batch checks between chunks.
    pub fn stop_flag(&self) -> crate::job::StopFlag {
        self.core.stop.clone()
    }

    /// Applies a new configuration (SIGHUP): topics, aliases, keywords, private feeds, limits,
    /// titles and links. The caller has kept the settings that need a restart. Returns whether
    /// the roots must be scanned again (what counts as a clipping changed).
    fn reload(&mut self, cfg: Arc<Config>) -> Result<bool> {
        let rescan = self.core.cfg.rescan_needed(&cfg);
        let shapes = self.core.feed_shapes();
        self.core.links = Links::new(&cfg.base_url);
        self.core.limits = Limits { max_file_bytes: cfg.max_file_bytes };
        self.core.cfg = cfg;
        self.core.catalog.name_configured(&self.core.cfg);
        // The old feeds keep serving until every new one is rendered (below, published at once);
        // what turns private leaves the public feeds first (see `remap`).
        self.remap()?;
        if !self.remap_open {
            // (A remap made the new configuration's tokens before it began, and its render must
            // follow it whatever: nothing may fail between the two.)
            self.ensure_tokens()?;
        }
        // Besides the feeds the remap moved items in: those whose title, description, page
        // size or links the new configuration changed.
        let reshaped = self.core.feed_shapes().into_iter().filter(|(k, s)| shapes.get(k) != Some(s));
        self.core.dirty.extend(reshaped.map(|(k, _)| k).collect::<Vec<_>>());
        self.render()?;
        Metrics::add(&self.core.metrics.reloads, 1);
        Ok(rescan)
    }

    /// Reads the feeds the store knows, with their names and live counts (those saved at the
    /// last clean stop when they still hold, see `snapshot`).
    fn load_catalog(&mut self) -> Result<()> {
        let counts = self.saved_counts()?;
        let b = self.store.batch()?;
        self.core.catalog = Catalog::load(&b, &self.core.cfg, counts)?;
        Ok(())
    }
}

#[cfg(test)]
#[path = "bulk_tests.rs"]
mod bulk_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::Format;
    use crate::site::{self, Rendered};
    use std::path::Path;

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
    fn a_start_after_a_clean_stop_takes_the_saved_counts_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let mut first = ingest(dir.path());
        for (name, topics) in [("a.md", "[ai]"), ("b.md", "[ai, ml]"), ("c.md", "[ml]")] {
            std::fs::write(root.join(name), format!("---\ntitle: {name}\ntopics: {topics}\n---\n")).unwrap();
        }
        first.reconcile().unwrap();
        let counts = |i: &Ingest| -> Vec<(String, u64)> {
            i.core.catalog.iter().map(|(k, e)| (k.path_stem(), e.count)).collect()
        };
        let before = counts(&first);
        assert!(before.contains(&("topics/ai".to_string(), 2)), "{before:?}");
        first.save_snapshot();
        let cfg = first.core.cfg.clone();
        drop(first);
        let start = |cfg: &Arc<Config>| {
            let store = Store::open(&dir.path().join("store.db")).unwrap();
            let site = Arc::new(ArcSwap::from_pointee(Site::empty()));
            Ingest::start(cfg.clone(), store, site, Arc::new(Metrics::default()), Heartbeat::new("writer")).unwrap()
        };
        let mut second = start(&cfg);
        assert_eq!(counts(&second), before);
        // Used once: the start dropped the mark, so what is saved no longer holds.
        assert_eq!(second.saved_counts().unwrap(), None);
        // Saved counts that no longer match the store are never used without the mark: a start
        // with none counts in the store.
        let b = second.store.batch().unwrap();
        b.set_meta("snapshot_counts", r#"{"topics/ai": 99}"#).unwrap();
        b.commit().unwrap();
        drop(second);
        assert_eq!(counts(&start(&cfg)), before);
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

    /// Twelve clippings, each from its own news site, all about Deep Learning: with the feed of
    /// everything and the topic's, more feeds than a render group, so they render as a batch.
    fn twelve_sites(dir: &Path) -> Ingest {
        let mut ingest = ingest(dir);
        for i in 0..12 {
            let text = format!(
                "---\ntitle: Report {i} on neural networks\nexcerpt: {}\nprovider:\n  name: Site {i}\n  domain: s{i}.example\ntopics: [Deep Learning]\n---\n",
                "A long excerpt that makes every document worth packing. ".repeat(12)
            );
            std::fs::write(dir.join(format!("root/c{i}.md")), text).unwrap();
        }
        ingest.reconcile().unwrap();
        ingest
    }

    /// Every feed document published, by feed and format.
    fn documents(ingest: &Ingest) -> Vec<(String, Rendered)> {
        let site = ingest.core.site.load_full();
        let mut docs: Vec<(String, Rendered)> = site
            .feeds
            .iter()
            .flat_map(|(stem, f)| [&f.rss, &f.atom, &f.json].map(|d| (stem.clone(), d.clone())))
            .collect();
        docs.sort_by(|a, b| a.0.cmp(&b.0));
        docs
    }

    /// A feed handed to the packer, with the original of each of its documents (RSS, Atom,
    /// JSON) held unpacked when it was handed over (`None`: packed already, or too small to pack).
    type Handed = (Arc<site::FeedEntry>, [Option<Vec<u8>>; 3]);

    /// The feeds the packer was handed, in the order given, and whether each came in a batch.
    fn handed(rx: &std::sync::mpsc::Receiver<render::ToPack>) -> Vec<(Handed, bool)> {
        rx.try_iter()
            .flat_map(|job| match job {
                render::ToPack::Batch(feeds) => feeds.into_iter().map(|f| (f, true)).collect(),
                render::ToPack::Settle(feed, _) => vec![(feed, false)],
            })
            .map(|(feed, batch)| {
                let feed = feed.upgrade().expect("the published feed is alive");
                let plain = [&feed.rss, &feed.atom, &feed.json]
                    .map(|d| (d.compressible() && !d.packed()).then(|| d.plain().to_vec()));
                ((feed, plain), batch)
            })
            .collect()
    }

    #[test]
    fn the_render_after_a_remap_publishes_before_packing_and_the_packer_keeps_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut ingest = twelve_sites(dir.path());
        let before = documents(&ingest);
        assert!(before.len() > 3 * render::RENDER_GROUP, "{} documents", before.len());
        assert!(before.iter().filter(|(_, d)| d.compressible()).count() > before.len() / 2);
        // A large batch that follows no remap packs as it renders.
        for (stem, d) in &before {
            assert_eq!(d.packed(), d.compressible(), "{stem} is packed once published");
        }
        let (tx, rx) = std::sync::mpsc::channel();
        ingest.core.packer = Some(tx);
        let backstop = ingest.store.wal_autocheckpoint();
        let text = format!(
            "listen: 127.0.0.1:0\nbase_url: http://feeds.test/\nclippings: [{:?}]\nstore: {:?}\ntopics:\n  - name: Machine Learning\n    aliases: [Deep Learning]\n",
            dir.path().join("root").display().to_string(),
            dir.path().join("store.db").display().to_string()
        );
        ingest.reload(Arc::new(Config::parse(&text, Path::new("/")).unwrap())).unwrap();
        // The remap ended with its render: the commits' own checkpoint is back.
        assert!(!ingest.remap_open);
        assert_eq!(ingest.store.wal_autocheckpoint(), backstop);
        // The remap moved every clipping: every feed is published again, before it is packed,
        // and handed to the packer.
        let site = ingest.core.site.load_full();
        assert!(site.feeds.contains_key("topics/machine-learning"));
        assert!(String::from_utf8(site.feeds["feed"].rss.plain().to_vec()).unwrap().contains("Machine Learning"));
        let handed = handed(&rx);
        assert_eq!(handed.len(), site.feeds.len(), "every feed rendered is handed to the packer");
        assert!(handed.iter().all(|(_, batch)| *batch), "as one batch, packed at once");
        // A request for gzip before the packer came made it; packing keeps that one.
        let asked = site.feeds["feed"].rss.body_in(site::Encoding::Gzip);
        // A stop before the packer came saves them packed (the snapshot is what the next start
        // holds).
        ingest.save_snapshot();
        assert_eq!(site.feeds["feed"].rss.body_in(site::Encoding::Gzip).as_ptr(), asked.as_ptr());
        for ((feed, plain), _) in &handed {
            for (d, plain) in [&feed.rss, &feed.atom, &feed.json].into_iter().zip(plain) {
                if !d.compressible() {
                    continue;
                }
                let plain = plain.as_ref().unwrap_or_else(|| panic!("{:?} was published unpacked", feed.key));
                // Packed, the document answers the same bytes, in gzip too.
                assert!(d.packed(), "{:?}", feed.key);
                assert_eq!(&d.plain()[..], &plain[..]);
                let mut inflated = Vec::new();
                use std::io::Read;
                flate2::read::GzDecoder::new(&d.body_in(site::Encoding::Gzip)[..]).read_to_end(&mut inflated).unwrap();
                assert_eq!(inflated, *plain);
            }
        }
        // Each saved document: (original, gzip, brotli), each a length (u32::MAX: none) and bytes.
        let conn = rusqlite::Connection::open(dir.path().join("store.db")).unwrap();
        let blobs: Vec<Vec<u8>> = conn
            .prepare("SELECT docs FROM snapshot")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(blobs.len(), site.feeds.len());
        for blob in blobs {
            let (mut at, mut parts) = (0, Vec::new());
            while at < blob.len() {
                let n = u32::from_le_bytes(blob[at..at + 4].try_into().unwrap());
                at += 4;
                parts.push((n != u32::MAX).then_some(n as usize));
                at += parts.last().unwrap().unwrap_or(0);
            }
            for doc in parts.chunks(3) {
                assert!(doc[0].is_none_or(|n| n < 512), "an original worth packing saved: {doc:?}");
            }
        }
        // The next large render (nothing remapped) packs as it renders again.
        ingest.core.dirty.extend(site.feeds.values().map(|f| f.key.clone()).collect::<Vec<_>>());
        ingest.render().unwrap();
        assert!(documents(&ingest).iter().all(|(_, d)| d.packed() == d.compressible()));
    }

    #[test]
    fn the_documents_published_before_packing_are_bounded_by_their_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut ingest = twelve_sites(dir.path());
        let site = ingest.core.site.load_full();
        let size = |f: &site::FeedEntry| f.rss.len() + f.atom.len() + f.json.len();
        let largest = site.feeds.values().map(|f| size(f)).max().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        ingest.core.packer = Some(tx);
        // Room for the largest feed's documents, not for all of them.
        ingest.core.unpacked = largest;
        ingest.core.dirty.extend(site.feeds.values().map(|f| f.key.clone()).collect::<Vec<_>>());
        ingest.render().unwrap();
        let handed = handed(&rx);
        assert_eq!(handed.len(), site.feeds.len());
        let held: Vec<usize> =
            handed.iter().filter(|((_, p), _)| p.iter().any(Option::is_some)).map(|((f, _), _)| size(f)).collect();
        assert!(!held.is_empty(), "a feed fits the room");
        assert!(held.iter().sum::<usize>() <= largest, "{held:?} within {largest}");
        assert!(held.len() < site.feeds.len(), "the rest is packed as it is rendered");
        assert_eq!(ingest.core.unpacked, 0, "the room is the next render's alone");
    }

    #[test]
    fn a_remap_holds_the_stores_checkpoints_until_its_render_has_published() {
        let dir = tempfile::tempdir().unwrap();
        let mut ingest = twelve_sites(dir.path());
        let backstop = ingest.store.wal_autocheckpoint();
        assert!(backstop > 0);
        let mut cfg = (*ingest.core.cfg).clone();
        cfg.topics =
            Config::parse("topics:\n  - name: Vision\n    aliases: [Deep Learning]\n", Path::new("/")).unwrap().topics;
        ingest.core.cfg = Arc::new(cfg);
        ingest.remap().unwrap();
        assert!(ingest.remap_open);
        assert_eq!(ingest.store.wal_autocheckpoint(), 0, "held from the remap to its render");
        assert_eq!(ingest.core.unpacked, render::UNPACKED_BYTES);
        ingest.render().unwrap();
        assert!(!ingest.remap_open);
        assert_eq!(ingest.store.wal_autocheckpoint(), backstop, "given back once the feeds are out");
        assert_eq!(ingest.core.unpacked, 0);
        assert!(ingest.core.site.load().feeds.contains_key("topics/vision"));
    }
}
