//! Feed items: what a subscriber sees as one entry. Owns identity (the key and the stable id made
//! from it), the merge of several files naming the same article into one item, and topic
//! resolution through the configured names and aliases.
//!
//! Pure: the store hands in the parsed clippings of every file with a key and the item's stored
//! first-seen time; this module returns the item. Nothing here depends on `base_url`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::clip::Clipping;
use crate::config::Topics;

/// Namespace of the version 5 UUIDs we mint for items and feeds. Never change it: every id a
/// subscriber has stored is derived from it.
const ID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6c1f_3d2a_9b4e_4f0a_8e57_2c0d_b1a9_7e33);

/// The identity of an article: its canonical URL, else the file's path relative to its root. A
/// link read from another key than `webUrl` or `originalUrl` (`url:`, `link:`, `webURL:`) is not
/// an identity: such keys were ignored before clipfeed read them, so a file stored then was
/// identified by its path, and must keep that id (no duplicate in any reader after an upgrade).
pub fn key_for(clipping: &Clipping, rel_path: &str) -> String {
    match &clipping.url {
        Some(url) if !clipping.link_only => format!("url:{url}"),
        _ => format!("path:{rel_path}"),
    }
}

/// The stable id for a key: a name-based (v5) UUID, so the same key always gives the same id,
/// across restarts, edits, renames and changes of `base_url`.
pub fn id_for(key: &str) -> String {
    uuid::Uuid::new_v5(&ID_NAMESPACE, key.as_bytes()).to_string()
}

/// The id as a URN, used as RSS guid and Atom id.
pub(crate) fn urn(id: &str) -> String {
    format!("urn:uuid:{id}")
}

/// A topic an item belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRef {
    pub slug: String,
    pub name: String,
}

/// The content of an item, as stored and rendered. Its hash decides whether an item changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemData {
    /// The clipping of the primary file; `topics` there is the union over all files.
    pub clip: Clipping,
    /// Resolved topics, unique by slug, in order of first mention.
    pub topics: Vec<TopicRef>,
    /// The clipping's date, or the first time clipfeed saw the item.
    pub published: DateTime<Utc>,
    /// Whether `published` came from the file (false: it is the first-seen time).
    pub dated: bool,
    /// What the item's other files (sharing its key with the primary) bring to its topics and
    /// privacy, in path order: empty for an item of one file (and then not written, so its
    /// JSON and hashes are as they were before this field).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<AlsoFrom>,
}

/// One of an item's other files, as far as its topics and privacy go: its news site, title and
/// excerpt. The item shows the primary file; these are kept so that the keywords in every file
/// place the item in their topics, and a file from a private news site makes the item private
/// (its news site's feed one of the item's), at the merge and at every remap alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlsoFrom {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excerpt: Option<String>,
}

impl ItemData {
    /// The provider's key, when the item has a provider with a usable domain.
    pub fn provider_domain(&self) -> Option<&str> {
        self.clip.provider.as_ref().and_then(|p| p.domain.as_deref())
    }

    /// The news sites of the item's other files ([`ItemData::also`]).
    pub fn also_domains(&self) -> impl Iterator<Item = &str> {
        self.also.iter().filter_map(|a| a.domain.as_deref())
    }

    /// A 128-bit hash (hex) of everything stored of the item.
    pub(crate) fn hash(&self) -> String {
        ItemData::hash_of_json(&self.json())
    }

    /// The item's JSON, which its record stores (deflated) and its hash is taken of.
    pub(crate) fn json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("item data serialises")
    }

    /// [`ItemData::hash`] from the item's JSON ([`ItemData::json`]), for a caller that stores
    /// that JSON too and so makes it once.
    pub(crate) fn hash_of_json(json: &[u8]) -> String {
        format!("{:032x}", xxhash_rust::xxh3::xxh3_128(json))
    }

    /// A 128-bit hash (hex) of what feeds show of the item. Fields used only for choosing (its
    /// quality, `published: false`, topic names as written, its type) are left out: a change to
    /// them alone is not an edit subscribers see.
    pub(crate) fn shown_hash(&self) -> String {
        let c = &self.clip;
        let shown = (
            &c.title,
            &c.excerpt,
            &c.url,
            &c.provider,
            &c.images,
            &c.related,
            &c.content_html,
            &self.topics,
            self.published,
        );
        let json = serde_json::to_vec(&shown).expect("item data serialises");
        format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&json))
    }

    /// [`ItemData::shown_hash`] from the item's JSON ([`ItemData::json`]) instead of its
    /// fields: the JSON the hash is taken of is made of the stored JSON's own values, cut out
    /// and put in order, where serialising the fields again (its related articles most of all)
    /// took a changed item's plan in a remap about as long as making its JSON. `None` when
    /// `json` is not shaped as `ItemData::json` makes it (then ask [`ItemData::shown_hash`]).
    pub(crate) fn shown_hash_of_json(json: &[u8]) -> Option<String> {
        let (clip, item) = stored_fields(json)?;
        fn field<'a>(fields: &[Field<'a>], key: &str) -> Option<&'a [u8]> {
            fields.iter().find(|f| f.0 == key.as_bytes()).map(|f| f.1)
        }
        // The order and the stand-ins for what the record leaves out are `shown_hash`'s tuple's:
        // `None` is `null`, an empty list `[]`.
        let parts: [(&[Field<'_>], &str, &[u8]); 9] = [
            (&clip, "title", b""),
            (&clip, "excerpt", b"null"),
            (&clip, "url", b"null"),
            (&clip, "provider", b"null"),
            (&clip, "images", b"[]"),
            (&clip, "related", b"[]"),
            (&clip, "content_html", b"null"),
            (&item, "topics", b""),
            (&item, "published", b""),
        ];
        let mut shown = Vec::with_capacity(json.len());
        for (i, (fields, key, absent)) in parts.into_iter().enumerate() {
            shown.push(if i == 0 { b'[' } else { b',' });
            match field(fields, key) {
                Some(value) => shown.extend_from_slice(value),
                None if absent.is_empty() => return None,
                None => shown.extend_from_slice(absent),
            }
        }
        shown.push(b']');
        Some(format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&shown)))
    }
}

/// An object's fields as (key, value) slices of `json` (compact JSON as serde_json writes it:
/// no white space, keys without escapes), for the item's JSON: the clipping's fields and the
/// item's own. `None` for anything else.
type Fields<'a> = Vec<Field<'a>>;

/// A field of an object: its key and its value, as slices of the JSON.
type Field<'a> = (&'a [u8], &'a [u8]);

/// The fields of the item's JSON ([`ItemData::json`]) and of its clipping, as slices of it.
fn stored_fields(json: &[u8]) -> Option<(Fields<'_>, Fields<'_>)> {
    let (item, rest) = object_fields(json)?;
    if !rest.is_empty() {
        return None;
    }
    let clip = item.iter().find(|f| f.0 == b"clip")?.1;
    let (clip, rest) = object_fields(clip)?;
    rest.is_empty().then_some((clip, item))
}

/// The fields of the object `json` starts with, and what follows it.
fn object_fields(json: &[u8]) -> Option<(Fields<'_>, &[u8])> {
    let mut rest = json.strip_prefix(b"{")?;
    let mut fields = Vec::new();
    if let Some(after) = rest.strip_prefix(b"}") {
        return Some((fields, after));
    }
    loop {
        let key = rest.strip_prefix(b"\"")?;
        let end = key.iter().position(|&b| b == b'"' || b == b'\\')?;
        if key[end] != b'"' {
            return None;
        }
        let value = key[end + 1..].strip_prefix(b":")?;
        let len = value_len(value)?;
        fields.push((&key[..end], &value[..len]));
        match value[len..].split_first()? {
            (b',', after) => rest = after,
            (b'}', after) => return Some((fields, after)),
            _ => return None,
        }
    }
}

/// The length of the JSON value `json` starts with (a string, an object or array, or a bare
/// number or literal), found by its quotes and brackets alone.
fn value_len(json: &[u8]) -> Option<usize> {
    let (mut depth, mut in_str, mut i) = (0usize, false, 0);
    while i < json.len() {
        let b = json[i];
        if in_str {
            match b {
                b'\\' => i += 1,
                b'"' => {
                    in_str = false;
                    if depth == 0 {
                        return Some(i + 1);
                    }
                }
                _ => {}
            }
        } else {
            match b {
                b'"' => in_str = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth == 0 => return (i > 0).then_some(i),
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i + 1);
                    }
                }
                b',' if depth == 0 => return (i > 0).then_some(i),
                _ => {}
            }
        }
        i += 1;
    }
    // A bare value at the very end (no object holds it).
    (depth == 0 && !in_str && i > 0).then_some(i)
}

/// An item as the renderers see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The UUID string (without `urn:uuid:`).
    pub id: String,
    /// When the item was last edited: its published time (first-seen time when it has no date)
    /// until clipfeed sees its content change, then the time of that change.
    pub updated: DateTime<Utc>,
    pub data: ItemData,
}

/// One file's contribution to an item.
pub struct Source<'a> {
    /// Path relative to its root, `/`-separated; the tie-breaker between files.
    pub rel_path: &'a str,
    pub clipping: &'a Clipping,
}

/// Merges the files that share a key into one item. The primary file, whose title, excerpt, date
/// and provider the item shows, is the one with the earliest date, then the smallest path; topics
/// are the union over all files. `None` when `sources` is empty.
pub fn merge(sources: &[Source<'_>], first_seen: DateTime<Utc>, topics: &Topics) -> Option<ItemData> {
    let primary = sources.iter().min_by(|a, b| {
        let da = a.clipping.published.unwrap_or(first_seen);
        let db = b.clipping.published.unwrap_or(first_seen);
        da.cmp(&db).then_with(|| a.rel_path.cmp(b.rel_path))
    })?;
    let mut ordered: Vec<&Source<'_>> = sources.iter().collect();
    ordered.sort_by(|a, b| a.rel_path.cmp(b.rel_path));
    // Primary's topics first, then the others' in path order.
    let mut names: Vec<String> = primary.clipping.topics.clone();
    for s in &ordered {
        for t in &s.clipping.topics {
            if !names.contains(t) {
                names.push(t.clone());
            }
        }
    }
    let mut clip = primary.clipping.clone();
    clip.topics = names;
    let also: Vec<AlsoFrom> = ordered
        .iter()
        .filter(|s| !std::ptr::eq(**s, primary))
        .map(|s| AlsoFrom {
            domain: s.clipping.provider.as_ref().and_then(|p| p.domain.clone()),
            title: s.clipping.title.clone(),
            excerpt: s.clipping.excerpt.clone(),
        })
        .collect();
    let texts = keyword_texts(&also);
    let excerpt = clip.excerpt.as_deref();
    let resolved = resolve(&clip.topics, &clip.title, excerpt, &texts, clip.quality, clip.unpublished, topics);
    Some(ItemData {
        published: clip.published.unwrap_or(first_seen),
        dated: clip.published.is_some(),
        topics: resolved,
        clip,
        also,
    })
}

/// An item's topics under `topics`, from its stored data alone: the names written in its files
/// (`clip.topics`, the union [`merge`] keeps), through the configured names and aliases, then the
/// keywords in its title and excerpt and in its other files' ([`ItemData::also`]), each topic's
/// admission rules applied. All a merge's topics depend on is in the item's data, so a topic
/// remap resolves an item from its stored record ([`TopicInputs::resolve`]) without merging its
/// files again.
#[cfg(test)]
pub fn resolve_topics(data: &ItemData, topics: &Topics) -> Vec<TopicRef> {
    let c = &data.clip;
    let texts = keyword_texts(&data.also);
    resolve(&c.topics, &c.title, c.excerpt.as_deref(), &texts, c.quality, c.unpublished, topics)
}

/// The titles and excerpts of an item's other files, where its topics' keywords are looked for.
fn keyword_texts(also: &[AlsoFrom]) -> Vec<(&str, Option<&str>)> {
    also.iter().map(|a| (a.title.as_str(), a.excerpt.as_deref())).collect()
}

/// An item's topics from the fields it reads: the names written in its files, its title and
/// excerpt and its other files' (`others`: keywords), its quality and `published: false` (admission rules).
fn resolve(
    names: &[String],
    title: &str,
    excerpt: Option<&str>,
    others: &[(&str, Option<&str>)],
    quality: Option<i64>,
    unpublished: bool,
    topics: &Topics,
) -> Vec<TopicRef> {
    let mut refs: Vec<TopicRef> = Vec::new();
    let mut add = |slug: String, name: &str| {
        if refs.iter().any(|r| r.slug == slug) {
            return;
        }
        match topics.get(&slug) {
            // A configured topic may leave out low-quality or unpublished clippings.
            Some(t) if !t.admits(quality, unpublished) => {}
            Some(t) => refs.push(TopicRef { slug, name: t.name.clone() }),
            None => refs.push(TopicRef { slug, name: name.to_string() }),
        }
    };
    for name in names {
        if let Some(slug) = topics.slug_for(name) {
            add(slug, name);
        }
    }
    if topics.has_keywords() {
        let mut fields = vec![title, excerpt.unwrap_or("")];
        fields.extend(others.iter().flat_map(|(t, e)| [*t, e.unwrap_or("")]));
        let text = crate::text::words_of(&fields);
        for t in &topics.list {
            if t.keyword_in(&text) {
                add(t.slug.clone(), &t.name);
            }
        }
    }
    refs
}

/// What an item's topics and feeds depend on, read from its stored data ([`ItemData`]'s
/// serialised form) without the rest: its body, links, images and related articles are skipped
/// by the decoder, not decoded. A topic remap reads every live item's record for these, and
/// the whole record only for the items whose topics change.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TopicInputs {
    clip: ClipInputs,
    /// What the item's other files bring ([`ItemData::also`]).
    #[serde(default)]
    also: Vec<AlsoFrom>,
    /// Its topics as stored (resolved under the rules it was written under).
    pub topics: Vec<TopicRef>,
    pub published: DateTime<Utc>,
}

/// The fields of a [`Clipping`] that [`TopicInputs`] reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct ClipInputs {
    title: String,
    #[serde(default)]
    excerpt: Option<String>,
    #[serde(default)]
    provider: Option<ProviderDomain>,
    #[serde(default)]
    topics: Vec<String>,
    #[serde(default)]
    quality: Option<i64>,
    #[serde(default)]
    unpublished: bool,
}

/// The domain of a clipping's provider, alone.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct ProviderDomain {
    #[serde(default)]
    domain: Option<String>,
}

impl TopicInputs {
    /// The item's topics under `topics`: what [`merge`] gave it under those rules.
    pub fn resolve(&self, topics: &Topics) -> Vec<TopicRef> {
        let c = &self.clip;
        let texts = keyword_texts(&self.also);
        resolve(&c.topics, &c.title, c.excerpt.as_deref(), &texts, c.quality, c.unpublished, topics)
    }

    /// [`ItemData::also_domains`].
    pub fn also_domains(&self) -> impl Iterator<Item = &str> {
        self.also.iter().filter_map(|a| a.domain.as_deref())
    }

    /// [`ItemData::provider_domain`].
    pub fn provider_domain(&self) -> Option<&str> {
        self.clip.provider.as_ref().and_then(|p| p.domain.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clip::{Limits, parse};
    use std::path::Path;

    fn clip(yaml: &str) -> Clipping {
        parse(format!("---\n{yaml}\n---\n").as_bytes(), Limits::default()).unwrap().clipping
    }

    fn t0() -> DateTime<Utc> {
        "2024-01-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = id_for("url:https://example.com/a");
        assert_eq!(a, id_for("url:https://example.com/a"));
        assert_ne!(a, id_for("url:https://example.com/b"));
        // Pinned: a subscriber's stored ids must never change with a new release.
        assert_eq!(urn(&a), format!("urn:uuid:{a}"));
        assert_eq!(uuid::Uuid::parse_str(&a).unwrap().get_version_num(), 5);
    }

    #[test]
    fn key_prefers_url() {
        let with = clip("title: T\nwebUrl: https://Example.com/x#y");
        assert_eq!(key_for(&with, "a/b.md"), "url:https://example.com/x");
        let without = clip("title: T");
        assert_eq!(key_for(&without, "a/b.md"), "path:a/b.md");
    }

    /// An item's other files bring their keywords and news sites: kept in its data
    /// (`also`), so that the record a remap reads resolves the same topics, and names the sites
    /// whose privacy the item's feeds follow. An item of one file has none, and its JSON is as
    /// it was before `also` (no field written).
    #[test]
    fn the_other_files_of_an_item_bring_their_keywords_and_news_sites() {
        let a = clip(
            "title: Plain\npublishedDateTime: 2020-01-01\ntopics: [Drones]\nprovider: {name: P, domain: pub.example}",
        );
        let b = clip(
            "title: All about bluebird\nexcerpt: More\npublishedDateTime: 2020-01-02\ntopics: [Zebra]\nprovider: {name: S, domain: secret.example}",
        );
        let cfg = "topics:\n  - name: Internal\n    keywords: [bluebird]\n    private: true\n";
        let topics = crate::config::Config::parse(cfg, Path::new("/")).unwrap().topics;
        let item = merge(
            &[Source { rel_path: "b.md", clipping: &b }, Source { rel_path: "a.md", clipping: &a }],
            t0(),
            &topics,
        )
        .unwrap();
        assert_eq!((item.clip.title.as_str(), item.provider_domain()), ("Plain", Some("pub.example")));
        let slugs: Vec<_> = item.topics.iter().map(|t| t.slug.as_str()).collect();
        assert_eq!(slugs, ["drones", "zebra", "internal"]);
        assert_eq!(
            item.also,
            [AlsoFrom {
                domain: Some("secret.example".into()),
                title: "All about bluebird".into(),
                excerpt: Some("More".into())
            }]
        );
        assert_eq!(item.also_domains().collect::<Vec<_>>(), ["secret.example"]);
        let inputs: TopicInputs = serde_json::from_slice(&item.json()).unwrap();
        assert_eq!(inputs.resolve(&topics), item.topics, "the record resolves what the merge did");
        assert_eq!(inputs.also_domains().collect::<Vec<_>>(), ["secret.example"]);
        assert_eq!(resolve_topics(&item, &topics), item.topics);
        let back: ItemData = serde_json::from_slice(&item.json()).unwrap();
        assert_eq!(back, item);
        let one = merge(&[Source { rel_path: "a.md", clipping: &a }], t0(), &topics).unwrap();
        assert!(one.also.is_empty());
        assert!(!String::from_utf8(one.json()).unwrap().contains("also"), "no field for an item of one file");
        assert_eq!(one.topics.iter().map(|t| t.slug.as_str()).collect::<Vec<_>>(), ["drones"]);
    }

    #[test]
    fn merge_unions_topics_and_picks_earliest() {
        let a = clip("title: Later\npublishedDateTime: 2020-01-02\ntopics: [AI, Robots]");
        let b = clip("title: Earlier\npublishedDateTime: 2020-01-01\ntopics: [Vision, AI]");
        let topics =
            crate::config::Config::parse("topics:\n  - name: Computer Vision\n    aliases: [Vision]\n", Path::new("/"))
                .unwrap()
                .topics;
        let item = merge(
            &[Source { rel_path: "a.md", clipping: &a }, Source { rel_path: "b.md", clipping: &b }],
            t0(),
            &topics,
        )
        .unwrap();
        assert_eq!(item.clip.title, "Earlier");
        let slugs: Vec<_> = item.topics.iter().map(|t| t.slug.as_str()).collect();
        assert_eq!(slugs, ["computer-vision", "ai", "robots"]);
        assert_eq!(item.topics[0].name, "Computer Vision");
        // Order of the inputs does not matter.
        let again = merge(
            &[Source { rel_path: "b.md", clipping: &b }, Source { rel_path: "a.md", clipping: &a }],
            t0(),
            &topics,
        )
        .unwrap();
        assert_eq!(item, again);
        assert_eq!(item.hash(), again.hash());
        // Quality is stored, not shown: it changes the hash but not what subscribers see.
        let mut rated = item.clone();
        rated.clip.quality = Some(99);
        assert_ne!(rated.hash(), item.hash());
        assert_eq!(rated.shown_hash(), item.shown_hash());
        rated.clip.title.push('!');
        assert_ne!(rated.shown_hash(), item.shown_hash());
    }

    #[test]
    fn topic_keywords_and_filters() {
        let topics = crate::config::Config::parse(
            "topics:\n  - name: Robots\n    keywords: [humanoid]\n  - name: Vetted\n    min_quality: 50\n  - name: Public\n    hide_unpublished: true\n",
            Path::new("/"),
        )
        .unwrap()
        .topics;
        let slugs = |yaml: &str| {
            let c = clip(yaml);
            let item = merge(&[Source { rel_path: "a.md", clipping: &c }], t0(), &topics).unwrap();
            item.topics.into_iter().map(|t| t.slug).collect::<Vec<_>>()
        };
        assert_eq!(slugs("title: A humanoid walks\ntopics: [Other]"), ["other", "robots"]);
        assert_eq!(slugs("title: T\nexcerpt: The HUMANOID era"), ["robots"]);
        assert_eq!(slugs("title: Humanoids everywhere"), Vec::<String>::new());
        assert_eq!(slugs("title: T\nquality: 60\ntopics: [Vetted]"), ["vetted"]);
        assert_eq!(slugs("title: T\nquality: 40\ntopics: [Vetted]"), Vec::<String>::new());
        assert_eq!(slugs("title: T\ntopics: [Vetted]"), Vec::<String>::new());
        assert_eq!(slugs("title: T\npublished: false\ntopics: [Public, Other]"), ["other"]);
        assert_eq!(slugs("title: T\npublished: true\ntopics: [Public]"), ["public"]);
    }

    #[test]
    fn topic_inputs_read_from_stored_data_resolve_as_the_whole_clipping_does() {
        let rules = crate::config::Config::parse(
            "topics:\n  - name: Robots\n    keywords: [humanoid]\n    aliases: [Droids]\n  - name: Vetted\n    min_quality: 50\n  - name: Public\n    hide_unpublished: true\n",
            Path::new("/"),
        )
        .unwrap()
        .topics;
        for yaml in [
            "title: A humanoid walks\ntopics: [Other, Droids]",
            "title: T\nexcerpt: The HUMANOID era\nprovider:\n  name: N\n  domain: n.example",
            "title: T\nquality: 60\ntopics: [Vetted]\nprovider:\n  name: No domain",
            "title: T\nquality: 40\ntopics: [Vetted, Robots]\npublished: false",
            "title: T\npublished: false\ntopics: [Public, Other]\nwebUrl: https://a.example/x\n---\nA *body* \"quoted\"\n",
            "title: \"Esc\\u00e9 \\\"q\\\"\"\ntopics: [Public]\nrelated:\n  - title: R\n    webUrl: https://r.example/\n",
        ] {
            let c = clip(yaml);
            for stored_under in [&Topics::default(), &rules] {
                let data = merge(&[Source { rel_path: "a.md", clipping: &c }], t0(), stored_under).unwrap();
                let json = serde_json::to_vec(&data).unwrap();
                let inputs: TopicInputs = serde_json::from_slice(&json).unwrap();
                assert_eq!((&inputs.topics, inputs.published), (&data.topics, data.published), "{yaml}");
                assert_eq!(inputs.provider_domain(), data.provider_domain(), "{yaml}");
                for rules in [&Topics::default(), &rules] {
                    assert_eq!(inputs.resolve(rules), resolve_topics(&data, rules), "{yaml}");
                }
            }
        }
    }

    #[test]
    fn the_shown_hash_from_the_items_json_is_the_one_from_its_fields() {
        use crate::clip::{Image, Provider, Related};
        // Strings that look like the JSON around them, in every field the shown hash reads.
        let tricky = |s: &str| format!("{s} \"q\" \\ }}],{{\"x\":[\"{s}\\\"]\" é \u{1F600}");
        let image = Image { url: tricky("https://i.example/a"), width: Some(5), height: None };
        let full = Clipping {
            title: tricky("T"),
            excerpt: Some(tricky("E")),
            published: Some(t0()),
            url: Some(tricky("https://n.example/a")),
            link_only: true,
            provider: Some(Provider {
                name: tricky("N"),
                domain: Some("n.example".into()),
                images: vec![image.clone()],
            }),
            topics: vec![tricky("AI"), "Robots".into()],
            images: vec![image.clone(), image],
            related: vec![Related {
                title: tricky("R"),
                url: "https://r.example/".into(),
                provider: Some(tricky("P")),
                published: Some(t0()),
            }],
            quality: Some(-7),
            unpublished: true,
            kind: Some(tricky("video")),
            content_html: Some(format!("<p>{}</p>", tricky("B"))),
        };
        let bare = Clipping {
            excerpt: None,
            published: None,
            url: None,
            link_only: false,
            provider: None,
            topics: vec![],
            images: vec![],
            related: vec![],
            quality: None,
            unpublished: false,
            kind: None,
            content_html: None,
            ..full.clone()
        };
        let mut clips = vec![full.clone(), bare.clone()];
        // Each field alone set, then alone left out.
        for i in 0..12 {
            let (mut one, mut all_but) = (bare.clone(), full.clone());
            match i {
                0 => (one.excerpt, all_but.excerpt) = (full.excerpt.clone(), None),
                1 => (one.published, all_but.published) = (full.published, None),
                2 => (one.url, all_but.url) = (full.url.clone(), None),
                3 => (one.link_only, all_but.link_only) = (true, false),
                4 => (one.provider, all_but.provider) = (full.provider.clone(), None),
                5 => (one.topics, all_but.topics) = (full.topics.clone(), vec![]),
                6 => (one.images, all_but.images) = (full.images.clone(), vec![]),
                7 => (one.related, all_but.related) = (full.related.clone(), vec![]),
                8 => (one.quality, all_but.quality) = (full.quality, None),
                9 => (one.unpublished, all_but.unpublished) = (true, false),
                10 => (one.kind, all_but.kind) = (full.kind.clone(), None),
                _ => (one.content_html, all_but.content_html) = (full.content_html.clone(), None),
            }
            clips.extend([one, all_but]);
        }
        for yaml in ["title: A humanoid walks\ntopics: [Other]", "title: T\n---\nA *body*\n"] {
            clips.push(clip(yaml));
        }
        let rules = crate::config::Config::parse("topics:\n  - name: Robots\n    aliases: [AI]\n", Path::new("/"))
            .unwrap()
            .topics;
        for c in &clips {
            for (topics, dated) in [(&Topics::default(), false), (&rules, true)] {
                let mut data = merge(&[Source { rel_path: "a.md", clipping: c }], t0(), topics).unwrap();
                data.dated = dated;
                let json = data.json();
                assert_eq!(ItemData::shown_hash_of_json(&json), Some(data.shown_hash()), "{c:?}");
                // Anything else is no item's JSON: never a hash, never a panic.
                for cut in 0..json.len() {
                    assert_eq!(ItemData::shown_hash_of_json(&json[..cut]), None, "{cut}");
                }
                let mut longer = json.clone();
                longer.push(b' ');
                assert_eq!(ItemData::shown_hash_of_json(&longer), None);
            }
        }
        for other in [&b"[]"[..], b"{}", b"{\"clip\":1}", b"{\"clip\":{}}", b"\"x\"", b"{\"clip\":{\"title\":\"t\"}}"] {
            assert_eq!(ItemData::shown_hash_of_json(other), None);
        }
    }

    #[test]
    fn undated_items_use_first_seen() {
        let a = clip("title: T");
        let item = merge(&[Source { rel_path: "a.md", clipping: &a }], t0(), &Topics::default()).unwrap();
        assert_eq!(item.published, t0());
        assert!(!item.dated);
        assert!(merge(&[], t0(), &Topics::default()).is_none());
    }
}
