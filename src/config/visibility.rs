//! Visibility: which feeds are private and which clippings are. The one place that decides it,
//! from the configuration alone: a topic marked `private: true`, a provider listed with
//! `private: true`. A private feed needs its token. A clipping that belongs to any private feed
//! is private: it appears only in the private feeds it belongs to. Every path that publishes or
//! serves something asks here rather than reading the settings itself.
//!
//! The rule for reads: what a reader of feed F may be shown is what has an open slot in F's own
//! feed log, which the writer builds through [`Visibility::restrict`] (so a public feed's log
//! never holds a private item). A read from the store names that log with a [`FeedLog`], the
//! only way the read-only store API takes a feed: [`FeedLog::of`] for a feed's views (archive
//! pages, filtered views, pages), [`FeedLog::public`] for what belongs to no feed (a clipping's
//! page). A configuration that would make a private feed public without saying so is refused
//! ([`Visibility::loosened`]).

use std::collections::BTreeSet;

use super::Config;
use crate::feed_key::FeedKey;

/// The feed log a read is confined to: the store's read-only queries take one of these, never a
/// bare feed, and return only items with an open slot in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedLog(FeedKey);

impl FeedLog {
    /// The log of the feed being viewed: its views show what it holds, nothing else.
    pub fn of(feed: &FeedKey) -> FeedLog {
        FeedLog(feed.clone())
    }

    /// The log of the feed of everything, which never holds a private item: what views tied to
    /// no feed (a clipping's page) may show.
    pub(crate) fn public() -> FeedLog {
        FeedLog(FeedKey::All)
    }

    /// The feed whose log this is.
    pub(crate) fn feed(&self) -> &FeedKey {
        &self.0
    }
}

/// The class ([`Visibility::class`]) of a clipping that is in no private feed.
pub(crate) const PUBLIC_CLASS: &str = "public";

/// The privacy rules of one configuration.
#[derive(Debug, Clone, Copy)]
pub struct Visibility<'a> {
    cfg: &'a Config,
}

impl Config {
    /// Which feeds and clippings this configuration makes private.
    pub(crate) fn visibility(&self) -> Visibility<'_> {
        Visibility { cfg: self }
    }
}

impl Visibility<'_> {
    /// Whether a feed needs a token. The feed of everything never does.
    pub(crate) fn is_private(&self, feed: &FeedKey) -> bool {
        match feed {
            FeedKey::All => false,
            FeedKey::Topic(slug) => self.cfg.topics.get(slug).is_some_and(|t| t.private),
            FeedKey::Provider(domain) => self.cfg.private_providers.contains(domain),
        }
    }

    /// Every private feed the configuration names: topics in their order, then providers.
    pub(crate) fn private_feeds(&self) -> Vec<FeedKey> {
        let topics = self.cfg.topics.list.iter().filter(|t| t.private).map(|t| FeedKey::Topic(t.slug.clone()));
        let providers = self.cfg.private_providers.iter().map(|d| FeedKey::Provider(d.clone()));
        topics.chain(providers).collect()
    }

    /// Whether the configuration writes `private: false` for this feed: a decision to make it
    /// public even if it was private before.
    pub(crate) fn declared_public(&self, feed: &FeedKey) -> bool {
        match feed {
            FeedKey::All => false,
            FeedKey::Topic(slug) => self.cfg.topics.get(slug).is_some_and(|t| t.declared_public),
            FeedKey::Provider(domain) => self.cfg.public_providers.contains(domain),
        }
    }

    /// The feeds private today (path stems: those with a token in the store, or private under
    /// the running configuration) that this configuration would make public without saying so
    /// (`private: false`). A configuration that loosens privacy this way is refused, at start
    /// and at reload, so a half-written or mistaken file cannot open a private feed.
    pub(crate) fn loosened<'s>(&self, private_today: impl IntoIterator<Item = &'s str>) -> Vec<String> {
        let mut out: Vec<String> = private_today
            .into_iter()
            .filter(|stem| {
                FeedKey::from_stem(stem).is_some_and(|key| !self.is_private(&key) && !self.declared_public(&key))
            })
            .map(String::from)
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The visibility class of a clipping that belongs to `feeds` (the feeds it belongs to, or
    /// those [`Visibility::restrict`] left it: the answer is the same): [`PUBLIC_CLASS`] when
    /// none of them is private, else the exact set of private feeds it belongs to. Clippings are
    /// grouped into stories only with clippings of their own class, so a story shown to one
    /// audience is never shaped (named, merged, split) by a clipping that audience may not see.
    pub(crate) fn class(&self, feeds: &BTreeSet<FeedKey>) -> String {
        let private: Vec<String> = feeds.iter().filter(|f| self.is_private(f)).map(FeedKey::path_stem).collect();
        if private.is_empty() { PUBLIC_CLASS.to_string() } else { format!("private {}", private.join(" ")) }
    }

    /// Narrows the feeds a clipping belongs to down to those it may appear in: all of them when
    /// none is private, else only the private ones.
    pub(crate) fn restrict(&self, feeds: &mut BTreeSet<FeedKey>) {
        if feeds.iter().any(|f| self.is_private(f)) {
            feeds.retain(|f| self.is_private(f));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config() -> Config {
        let text = "topics:\n  - name: Internal\n    aliases: [Staff Only]\n    private: true\n  - name: Robotics\nproviders:\n  - domain: Secret.Example\n    private: true\n  - domain: public.example\n";
        Config::parse(text, Path::new("/")).unwrap()
    }

    #[test]
    fn private_feeds_are_the_topics_and_providers_marked_so() {
        let cfg = config();
        let v = cfg.visibility();
        let internal = FeedKey::Topic("internal".into());
        let secret = FeedKey::Provider("secret.example".into());
        assert_eq!(v.private_feeds(), [internal.clone(), secret.clone()]);
        assert!(v.is_private(&internal) && v.is_private(&secret));
        for public in [
            FeedKey::All,
            FeedKey::Topic("robotics".into()),
            FeedKey::Topic("unconfigured".into()),
            FeedKey::Provider("public.example".into()),
            FeedKey::Provider("other.example".into()),
        ] {
            assert!(!v.is_private(&public), "{public:?}");
        }
    }

    #[test]
    fn a_clipping_in_any_private_feed_is_private_and_stays_in_those_only() {
        let cfg = config();
        let v = cfg.visibility();
        let kept = |feeds: &[FeedKey]| {
            let mut set: BTreeSet<FeedKey> = feeds.iter().cloned().collect();
            v.restrict(&mut set);
            set
        };
        let robotics = FeedKey::Topic("robotics".into());
        let by_site = kept(&[FeedKey::All, robotics.clone(), FeedKey::Provider("secret.example".into())]);
        assert_eq!(by_site, BTreeSet::from([FeedKey::Provider("secret.example".into())]));
        let public = [FeedKey::All, robotics.clone(), FeedKey::Provider("public.example".into())];
        assert_eq!(kept(&public).len(), 3);
        let mut feeds = BTreeSet::from([
            FeedKey::All,
            FeedKey::Topic("robotics".into()),
            FeedKey::Topic("internal".into()),
            FeedKey::Provider("public.example".into()),
        ]);
        v.restrict(&mut feeds);
        assert_eq!(feeds, BTreeSet::from([FeedKey::Topic("internal".into())]));
        let mut public = BTreeSet::from([FeedKey::All, FeedKey::Topic("robotics".into())]);
        v.restrict(&mut public);
        assert_eq!(public.len(), 2, "a public clipping keeps every feed");
        let mut both = BTreeSet::from([
            FeedKey::All,
            FeedKey::Provider("secret.example".into()),
            FeedKey::Topic("internal".into()),
        ]);
        v.restrict(&mut both);
        assert_eq!(both.len(), 2, "each private feed it belongs to");
    }

    #[test]
    fn a_clippings_class_is_public_or_its_exact_private_feeds() {
        let cfg = Config::parse(
            "topics:\n  - name: X\n    private: true\n  - name: Y\n    private: true\n  - name: Z\nproviders:\n  - domain: s.example\n    private: true\n",
            Path::new("/"),
        )
        .unwrap();
        let v = cfg.visibility();
        let class = |stems: &[&str]| {
            let mut feeds: BTreeSet<FeedKey> = stems.iter().map(|s| FeedKey::from_stem(s).unwrap()).collect();
            let whole = v.class(&feeds);
            v.restrict(&mut feeds);
            assert_eq!(v.class(&feeds), whole, "restricted or not, the same class");
            whole
        };
        assert_eq!(class(&["feed", "topics/z", "providers/p.example"]), PUBLIC_CLASS);
        assert_eq!(class(&["feed"]), PUBLIC_CLASS);
        let x = class(&["feed", "topics/x", "topics/z"]);
        let y = class(&["feed", "topics/y"]);
        let xy = class(&["feed", "topics/x", "topics/y"]);
        let xs = class(&["feed", "topics/x", "providers/s.example"]);
        let all = [PUBLIC_CLASS.to_string(), x.clone(), y, xy, xs];
        let distinct: BTreeSet<&String> = all.iter().collect();
        assert_eq!(distinct.len(), all.len(), "{all:?}");
        assert_eq!(class(&["topics/x"]), x, "only the private feeds count");
    }

    #[test]
    fn only_private_false_written_out_makes_a_private_feed_public() {
        let today = ["topics/internal", "providers/secret.example", "topics/robotics"];
        let parse = |text: &str| Config::parse(text, Path::new("/")).unwrap();
        // The same rules loosen nothing but robotics, which has a token and is not private here:
        // that must be said.
        let same = config();
        assert_eq!(same.visibility().loosened(today), ["topics/robotics"]);
        let all_defaults = parse("title: T\n");
        assert_eq!(
            all_defaults.visibility().loosened(today),
            ["providers/secret.example", "topics/internal", "topics/robotics"]
        );
        let said = parse(
            "topics:\n  - name: Internal\n    private: false\n  - name: Robotics\n    private: true\nproviders:\n  - domain: secret.example\n    private: false\n",
        );
        assert!(said.visibility().loosened(today).is_empty());
        assert!(said.visibility().declared_public(&FeedKey::Topic("internal".into())));
        assert!(!said.visibility().declared_public(&FeedKey::Topic("robotics".into())));
    }
}
