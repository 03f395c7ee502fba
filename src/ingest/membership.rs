//! Which feeds an item is in, and the names it gives them: the one place where an item's
//! topics, news site and other files meet `Visibility` (a clipping in a private feed stays out
//! of every public one, and names no public feed). The cold build, the remap and the one-by-one
//! refresh all ask here.

use std::collections::BTreeSet;

use anyhow::Result;

use super::apply::Effects;
use crate::feed::FeedKey;
use crate::store::Batch;

/// Writes the names an item gives its topics and news site: only for the feeds it is in
/// (`feeds`, as `Visibility` left them). A feed's name is its title, its entry on the index
/// page and in the OPML, so a private clipping may name only the private feeds it is in; a
/// public topic or site it was kept out of never takes a name from it.
pub(super) fn put_names(
    b: &Batch<'_>,
    data: &crate::item::ItemData,
    feeds: &BTreeSet<FeedKey>,
    fx: &mut Effects,
) -> Result<()> {
    for (key, name) in names_in(data, feeds) {
        match &key {
            FeedKey::Topic(slug) => b.put_topic(slug, &name)?,
            FeedKey::Provider(domain) => b.put_provider(domain, &name)?,
            FeedKey::All => continue,
        }
        fx.names.insert(key, name);
    }
    Ok(())
}

/// The names an item in `feeds` gives them: its topics' and its news site's, for those of them
/// it is in.
fn names_in(data: &crate::item::ItemData, feeds: &BTreeSet<FeedKey>) -> Vec<(FeedKey, String)> {
    let topics = data.topics.iter().map(|t| (FeedKey::Topic(t.slug.clone()), t.name.clone()));
    let site = data.clip.provider.as_ref().and_then(|p| Some((FeedKey::Provider(p.domain.clone()?), p.name.clone())));
    topics.chain(site).filter(|(key, _)| feeds.contains(key)).collect()
}

/// The feeds an item appears in under `cfg`'s rules: everything, its topics, its news site,
/// narrowed by `Visibility` (a clipping in a private feed stays out of every public one).
pub(super) fn feeds_of(cfg: &crate::config::Config, data: &crate::item::ItemData) -> BTreeSet<FeedKey> {
    feeds_for(cfg, &data.topics, data.provider_domain(), data.also_domains())
}

/// [`feeds_of`] an item with `topics` from the news site `domain`, whose other files (sharing
/// its key) come from the news sites `also`: the feed of a private one among those is one of
/// the item's, so that a file from a private site never shows through a public file of the same
/// article (a public site of another file is not: the item shows its primary file's).
pub(super) fn feeds_for<'a>(
    cfg: &crate::config::Config,
    topics: &[crate::item::TopicRef],
    domain: Option<&str>,
    also: impl Iterator<Item = &'a str>,
) -> BTreeSet<FeedKey> {
    let visibility = cfg.visibility();
    let mut feeds = BTreeSet::from([FeedKey::All]);
    feeds.extend(topics.iter().map(|t| FeedKey::Topic(t.slug.clone())));
    if let Some(domain) = domain {
        feeds.insert(FeedKey::Provider(domain.to_string()));
    }
    for other in also {
        let site = FeedKey::Provider(other.to_string());
        if visibility.is_private(&site) {
            feeds.insert(site);
        }
    }
    visibility.restrict(&mut feeds);
    feeds
}
