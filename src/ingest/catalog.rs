//! The catalog: every feed the writer knows (each topic and provider ever seen, and the feed of
//! everything), with its display name, its live item count and its published documents. Read
//! from the store at start; kept in step with it by the writer, after each commit.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::Result;

use crate::config::Config;
use crate::feed::FeedKey;
use crate::site::FeedEntry;
use crate::store::Batch;

/// A feed the site knows: its display name, live item count and rendered files.
#[derive(Debug, Clone, Default)]
pub(super) struct Entry {
    pub(super) name: String,
    pub(super) count: u64,
    pub(super) feed: Option<Arc<FeedEntry>>,
}

/// Every known feed, in feed order.
#[derive(Debug, Default)]
pub(super) struct Catalog {
    feeds: BTreeMap<FeedKey, Entry>,
}

impl Catalog {
    pub(super) fn new() -> Catalog {
        Catalog::default()
    }

    /// The feeds the store knows, named, with their live counts (`counts` when given, else counted
    /// in the store); configured topics are named as configured. No documents yet.
    pub(super) fn load(b: &Batch<'_>, cfg: &Config, counts: Option<HashMap<String, u64>>) -> Result<Catalog> {
        let counts = match counts {
            Some(counts) => counts,
            None => b.live_counts()?,
        };
        let count = |key: &FeedKey| counts.get(&key.path_stem()).copied().unwrap_or(0);
        let mut feeds = BTreeMap::new();
        feeds.insert(FeedKey::All, Entry { name: cfg.title.clone(), count: count(&FeedKey::All), feed: None });
        for (slug, name) in b.topics()? {
            let key = FeedKey::Topic(slug);
            feeds.insert(key.clone(), Entry { name, count: count(&key), feed: None });
        }
        let mut catalog = Catalog { feeds };
        catalog.name_configured_topics(cfg);
        for (domain, name) in b.providers()? {
            let key = FeedKey::Provider(domain);
            catalog.feeds.insert(key.clone(), Entry { name, count: count(&key), feed: None });
        }
        Ok(catalog)
    }

    fn name_configured_topics(&mut self, cfg: &Config) {
        for t in &cfg.topics.list {
            self.entry(FeedKey::Topic(t.slug.clone())).name = t.name.clone();
        }
    }

    /// Names the feeds as a (new) configuration says: its topics, and the feed of everything.
    pub(super) fn name_configured(&mut self, cfg: &Config) {
        self.name_configured_topics(cfg);
        if let Some(all) = self.feeds.get_mut(&FeedKey::All) {
            all.name = cfg.title.clone();
        }
    }

    /// The entry of a feed, created empty when new.
    pub(super) fn entry(&mut self, key: FeedKey) -> &mut Entry {
        self.feeds.entry(key).or_default()
    }

    pub(super) fn get(&self, key: &FeedKey) -> Option<&Entry> {
        self.feeds.get(key)
    }

    pub(super) fn get_mut(&mut self, key: &FeedKey) -> Option<&mut Entry> {
        self.feeds.get_mut(key)
    }

    pub(super) fn keys(&self) -> impl Iterator<Item = &FeedKey> {
        self.feeds.keys()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&FeedKey, &Entry)> {
        self.feeds.iter()
    }

    pub(super) fn len(&self) -> usize {
        self.feeds.len()
    }
}
