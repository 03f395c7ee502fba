//! Configured topics: each topic's settings, and the table that maps a topic name or alias
//! (as clippings write it) to its slug.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use super::raw::RawTopic;
use crate::text;

/// Configured topics and the name → slug table built from their names and aliases.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Topics {
    pub(crate) list: Vec<TopicConfig>,
    /// Lowercased name or alias → slug.
    by_name: BTreeMap<String, String>,
}

/// A configured topic.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicConfig {
    pub(crate) slug: String,
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) aliases: Vec<String>,
    /// Overrides the global `items_per_feed` for this topic's feed.
    pub(crate) items_per_feed: Option<usize>,
    /// Clippings below this quality (or without one) are left out of the topic.
    pub(crate) min_quality: Option<i64>,
    /// Phrases, normalised by [`text::words`]: a clipping whose title or excerpt contains one
    /// joins the topic even when its front matter does not name it.
    pub(crate) keywords: Vec<String>,
    /// Leave out clippings marked `published: false`.
    pub(crate) hide_unpublished: bool,
    /// The topic's feeds need a token, and its clippings stay out of public feeds (see
    /// [`super::visibility::Visibility`]).
    pub(super) private: bool,
    /// `private: false` written out.
    pub(super) declared_public: bool,
}

impl TopicConfig {
    /// Whether a clipping with this quality and publication flag may be in the topic.
    pub(crate) fn admits(&self, quality: Option<i64>, unpublished: bool) -> bool {
        let quality_ok = self.min_quality.is_none_or(|min| quality.is_some_and(|q| q >= min));
        quality_ok && !(self.hide_unpublished && unpublished)
    }

    /// Whether normalised text (see [`text::words`]) contains one of the keywords.
    pub(crate) fn keyword_in(&self, words: &str) -> bool {
        self.keywords.iter().any(|k| words.contains(k.as_str()))
    }
}

impl Topics {
    /// The slug a topic name maps to: a configured name or alias (case-insensitive, white space
    /// collapsed), else the name's own slug. `None` when the name makes no slug.
    pub(crate) fn slug_for(&self, name: &str) -> Option<String> {
        let key = text::squash_ws(name).to_lowercase();
        if let Some(slug) = self.by_name.get(&key) {
            return Some(slug.clone());
        }
        let slug = text::slugify(name).ok()?;
        // A name whose own slug is a configured topic's slug belongs to that topic.
        Some(slug)
    }

    pub(crate) fn get(&self, slug: &str) -> Option<&TopicConfig> {
        self.list.iter().find(|t| t.slug == slug)
    }

    /// Whether any topic has keywords (so clippings' text must be matched at all).
    pub(crate) fn has_keywords(&self) -> bool {
        self.list.iter().any(|t| !t.keywords.is_empty())
    }
}

pub(super) fn build_topics(raw: Vec<RawTopic>) -> Result<Topics> {
    let mut list: Vec<TopicConfig> = Vec::new();
    let mut by_name = BTreeMap::new();
    for (i, t) in raw.into_iter().enumerate() {
        let name = text::plain_text(&t.name);
        if name.is_empty() {
            bail!("key 'topics[{i}].name': must not be empty");
        }
        let slug = match t.slug {
            Some(s) => {
                if !text::is_slug(&s) {
                    bail!("key 'topics[{i}].slug': {s:?} is not a slug (lowercase letters, digits and single hyphens)");
                }
                s
            }
            None => text::slugify(&name).map_err(|e| anyhow::anyhow!("key 'topics[{i}].name': {name:?} {e}"))?,
        };
        if list.iter().any(|o| o.slug == slug) {
            bail!("key 'topics[{i}].slug': {slug:?} is used by two topics");
        }
        let mut aliases = Vec::new();
        for a in &t.aliases {
            let a = text::plain_text(a);
            if a.is_empty() {
                bail!("key 'topics[{i}].aliases': an alias is empty");
            }
            aliases.push(a);
        }
        for n in std::iter::once(&name).chain(&aliases) {
            let key = n.to_lowercase();
            if let Some(other) = by_name.insert(key, slug.clone())
                && other != slug
            {
                bail!("key 'topics[{i}]': the name or alias {n:?} also belongs to topic {other:?}");
            }
        }
        let description = t.description.map(|d| text::plain_text(&d)).filter(|d| !d.is_empty());
        if let Some(n) = t.items_per_feed
            && !(1..=10_000).contains(&n)
        {
            bail!("key 'topics[{i}].items_per_feed': {n} is out of range (1 to 10000)");
        }
        let mut keywords = Vec::new();
        for k in &t.keywords {
            let w = text::words(k);
            if w.trim().is_empty() {
                bail!("key 'topics[{i}].keywords': {k:?} has no letters or digits");
            }
            keywords.push(w);
        }
        list.push(TopicConfig {
            slug,
            name,
            description,
            aliases,
            items_per_feed: t.items_per_feed.map(|n| n as usize),
            min_quality: t.min_quality,
            keywords,
            hide_unpublished: t.hide_unpublished,
            private: t.private == Some(true),
            declared_public: t.private == Some(false),
        });
    }
    Ok(Topics { list, by_name })
}
