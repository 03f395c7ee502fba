//! Which feed: [`FeedKey`] names the feed of everything, of one topic or of one provider, and
//! its path stem (the URL path without extension, also the key it is stored and served under).
//! A module of its own, below `config` and `feed`, so the configuration can say which feeds are
//! private without depending on how feeds are written.

use crate::text;

/// Which feed: everything, one topic, or one provider.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FeedKey {
    All,
    Topic(String),
    Provider(String),
}

impl FeedKey {
    /// The URL path of the feed without its extension: `feed`, `topics/ai`, `providers/vice.com`.
    /// Also the key under which the feed is stored and served.
    pub fn path_stem(&self) -> String {
        match self {
            FeedKey::All => "feed".into(),
            FeedKey::Topic(slug) => format!("topics/{slug}"),
            FeedKey::Provider(domain) => format!("providers/{domain}"),
        }
    }

    /// The key of a path stem made by [`FeedKey::path_stem`].
    pub fn from_stem(stem: &str) -> Option<FeedKey> {
        match stem.split_once('/') {
            None if stem == "feed" => Some(FeedKey::All),
            Some(("topics", slug)) if text::is_slug(slug) => Some(FeedKey::Topic(slug.into())),
            Some(("providers", d)) if !d.is_empty() && !d.contains('/') => Some(FeedKey::Provider(d.into())),
            _ => None,
        }
    }
}
