//! Front-matter keys: the one table of what each top-level key means to clipfeed. Its own keys,
//! the keys other tools (Jekyll, Hugo, ...) write for the same things, the keys the clipping
//! format carries that clipfeed leaves alone, and the note a near miss gets ("did you mean").
//! Also the summary of those notes over many files, which `clipfeed check`, the log and
//! `/api/status` all print.
//!
//! Rules, in order, for a key `k`:
//! 1. `k` is one of clipfeed's keys or an alias: read.
//! 2. `k` is one of the keys the format carries and clipfeed does not use: silent.
//! 3. `k` differs from a read key only in case (`webURL`): read as that key, and noted.
//! 4. `k` is a few edits away from a read key (`topic`, `publishDateTime`): noted, not read.
//! 5. Anything else: silent (other tools' own keys, such as `layout`).

use std::collections::BTreeMap;

use serde::Serialize;

/// What a key is read into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    Title,
    Excerpt,
    Date,
    WebUrl,
    OriginalUrl,
    Kind,
    Quality,
    Published,
    Provider,
    Author,
    Topics,
    Images,
    Related,
}

/// clipfeed's own keys. Only `webUrl` and `originalUrl`, spelt exactly so, make an identity.
const OWN: [(&str, Field); 12] = [
    ("title", Field::Title),
    ("excerpt", Field::Excerpt),
    ("publishedDateTime", Field::Date),
    ("webUrl", Field::WebUrl),
    ("originalUrl", Field::OriginalUrl),
    ("type", Field::Kind),
    ("quality", Field::Quality),
    ("published", Field::Published),
    ("provider", Field::Provider),
    ("topics", Field::Topics),
    ("images", Field::Images),
    ("related", Field::Related),
];

/// Keys other tools write for the same things, in order of precedence within a field. The
/// README's format section lists them; keep the two in step.
const ALIASES: [(&str, Field); 12] = [
    ("date", Field::Date),
    ("publishDate", Field::Date),
    ("pubDate", Field::Date),
    ("link", Field::WebUrl),
    ("url", Field::WebUrl),
    ("summary", Field::Excerpt),
    ("description", Field::Excerpt),
    ("tags", Field::Topics),
    ("categories", Field::Topics),
    ("image", Field::Images),
    ("author", Field::Author),
    ("authors", Field::Author),
];

/// Keys the clipping format carries that clipfeed does not use (every top-level key seen in the
/// shared corpus, plus `actions` from its README): known, never read, never noted.
const CARRIED: [&str; 7] = ["category", "secured", "heat", "ampWebUrl", "cdnAmpWebUrl", "featuredContent", "actions"];

/// How a key was written, ranked: the lower, the stronger when several keys give one field.
/// 0 is clipfeed's key spelt exactly; 1 the same key in another case; then each alias in table
/// order, exact before another case.
pub(super) type Rank = u8;

/// What one key means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Meaning {
    /// Read into `field`; `note` when it is spelt in another case than the key it stands for.
    Read { field: Field, rank: Rank, note: Option<KeyNote> },
    /// Close to a key clipfeed reads, and not read.
    NearMiss(KeyNote),
    /// Known and unused, or unknown and far from every key: left alone without a word.
    Silent,
}

/// A front-matter key spelt close to one clipfeed reads. Holds key names only, never values.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct KeyNote {
    /// The key as written.
    pub key: String,
    /// The known key it is closest to.
    pub suggestion: String,
    /// Whether the value is read as `suggestion` (a difference in case only).
    pub read: bool,
}

impl std::fmt::Display for KeyNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown key `{}` in front matter: did you mean `{}`?", self.key, self.suggestion)?;
        if self.read {
            write!(f, " (read as `{}`)", self.suggestion)?;
        }
        Ok(())
    }
}

/// What one key means to clipfeed (see the module's rules).
pub(super) fn meaning(key: &str) -> Meaning {
    if let Some((_, field, rank)) = read_keys().find(|(k, ..)| *k == key) {
        return Meaning::Read { field, rank, note: None };
    }
    if CARRIED.iter().any(|c| c.eq_ignore_ascii_case(key)) {
        return Meaning::Silent;
    }
    if let Some((k, field, rank)) = read_keys().find(|(k, ..)| k.eq_ignore_ascii_case(key)) {
        let note = KeyNote { key: key.to_string(), suggestion: k.to_string(), read: true };
        return Meaning::Read { field, rank: rank + 1, note: Some(note) };
    }
    match nearest(key) {
        Some(k) => Meaning::NearMiss(KeyNote { key: key.to_string(), suggestion: k.to_string(), read: false }),
        None => Meaning::Silent,
    }
}

/// Every key clipfeed reads, with its field and rank: its own keys rank 0 (each gives a field
/// of its own), aliases 2, 4, 6... in table order.
fn read_keys() -> impl Iterator<Item = (&'static str, Field, Rank)> {
    let own = OWN.iter().map(|&(k, f)| (k, f, 0));
    own.chain(ALIASES.iter().zip((2..).step_by(2)).map(|(&(k, f), rank)| (k, f, rank)))
}

/// The read key closest to `key` within the edits its length allows, when no carried key is at
/// least as close. Ties go to the earlier key in the tables (clipfeed's own first).
fn nearest(key: &str) -> Option<&'static str> {
    // A note repeats the key in logs and terminals: keys with control or other odd characters
    // are left alone rather than echoed.
    if !key.chars().all(|c| c.is_alphanumeric() || c.is_ascii_punctuation() || c == ' ') {
        return None;
    }
    let lower = key.to_ascii_lowercase();
    let limit = match lower.chars().count() {
        0..=2 => return None,
        3..=5 => 1,
        6..=10 => 2,
        _ => 3,
    };
    let best = read_keys()
        .map(|(k, ..)| k)
        .filter_map(|k| edits(&lower, &k.to_ascii_lowercase(), limit).map(|d| (d, k)))
        .min_by_key(|&(d, _)| d)?;
    let carried_closer = CARRIED.iter().any(|c| edits(&lower, &c.to_ascii_lowercase(), best.0).is_some());
    (!carried_closer).then_some(best.1)
}

/// The optimal string alignment distance between `a` and `b` (insertions, deletions,
/// substitutions and swaps of neighbours), when it is at most `limit`.
fn edits(a: &str, b: &str, limit: usize) -> Option<usize> {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > limit {
        return None;
    }
    // Three rows of the dynamic programme: two back, one back, this one.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (prev[j] + 1).min(row[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(before[j - 2] + 1);
            }
        }
        before = std::mem::replace(&mut prev, row);
    }
    let d = prev[b.len()];
    (d <= limit).then_some(d)
}

/// One near-miss key over many files: how many files carry it and the first of them by path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyWarning {
    pub key: String,
    pub suggestion: String,
    /// Whether the value is read as `suggestion` (a difference in case only).
    pub read: bool,
    /// Files carrying the key.
    pub files: usize,
    /// The first of them, by path relative to its root.
    pub example_path: String,
}

impl KeyWarning {
    /// The note this warning summarises.
    pub(crate) fn note(&self) -> KeyNote {
        KeyNote { key: self.key.clone(), suggestion: self.suggestion.clone(), read: self.read }
    }
}

impl std::fmt::Display for KeyWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let files = if self.files == 1 { "1 file".to_string() } else { format!("{} files", self.files) };
        write!(f, "{} ({files}, e.g. {})", self.note(), self.example_path)
    }
}

/// One warning per distinct note, from `(path relative to its root, note)` pairs: the number of
/// files (a path counts once per note) and the smallest path. Ordered by key.
pub fn summarise<'a>(notes: impl IntoIterator<Item = (&'a str, &'a KeyNote)>) -> Vec<KeyWarning> {
    let mut by_note: BTreeMap<&KeyNote, (std::collections::BTreeSet<&str>, usize)> = BTreeMap::new();
    for (path, note) in notes {
        let entry = by_note.entry(note).or_default();
        entry.0.insert(path);
        entry.1 = entry.0.len();
    }
    by_note
        .into_iter()
        .map(|(note, (paths, files))| KeyWarning {
            key: note.key.clone(),
            suggestion: note.suggestion.clone(),
            read: note.read,
            files,
            example_path: paths.first().map(|p| p.to_string()).unwrap_or_default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meaning_of_each_kind_of_key() {
        let read = |k: &str| match meaning(k) {
            Meaning::Read { field, rank, note } => Some((field, rank, note.map(|n| n.suggestion))),
            _ => None,
        };
        let near = |k: &str| match meaning(k) {
            Meaning::NearMiss(n) => Some(n.suggestion),
            _ => None,
        };
        // (key, read as, rank, suggestion when noted)
        let cases: &[(&str, Field, Rank, Option<&str>)] = &[
            ("title", Field::Title, 0, None),
            ("webUrl", Field::WebUrl, 0, None),
            ("publishedDateTime", Field::Date, 0, None),
            ("webURL", Field::WebUrl, 1, Some("webUrl")),
            ("WEBURL", Field::WebUrl, 1, Some("webUrl")),
            ("publishedDatetime", Field::Date, 1, Some("publishedDateTime")),
            ("Title", Field::Title, 1, Some("title")),
            ("date", Field::Date, 2, None),
            ("Date", Field::Date, 3, Some("date")),
            ("publishDate", Field::Date, 4, None),
            ("link", Field::WebUrl, 8, None),
            ("url", Field::WebUrl, 10, None),
            ("tags", Field::Topics, 16, None),
            ("categories", Field::Topics, 18, None),
            ("summary", Field::Excerpt, 12, None),
            ("author", Field::Author, 22, None),
        ];
        for &(key, field, rank, note) in cases {
            assert_eq!(read(key), Some((field, rank, note.map(String::from))), "{key}");
        }
        for (key, suggestion) in [
            ("topic", "topics"),
            ("publishDateTime", "publishedDateTime"),
            ("publishedDate", "publishDate"),
            ("publishedDateTme", "publishedDateTime"),
            ("web_url", "webUrl"),
            ("titel", "title"),
            ("excerp", "excerpt"),
            ("orignalUrl", "originalUrl"),
            ("tag", "tags"),
            ("imgaes", "images"),
        ] {
            assert_eq!(near(key).as_deref(), Some(suggestion), "{key}");
        }
    }

    #[test]
    fn carried_and_foreign_keys_are_silent() {
        let corpus = ["category", "secured", "heat", "ampWebUrl", "cdnAmpWebUrl", "featuredContent", "Category"];
        let foreign = [
            "layout",
            "permalink",
            "draft",
            "slug",
            "lastmod",
            "weight",
            "keywords",
            "aliases",
            "series",
            "toc",
            "comments",
            "lang",
            "math",
            "hidden",
            "subtitle",
            "updated",
            "modified",
            "id",
            "name",
            "source",
            "via",
            "cover",
            "thumbnail",
            "menu",
            "x",
            "",
            "excerpt_separator",
            "linkTitle",
            "expiryDate",
            "sitemap",
            "redirect_from",
            "headless",
            "outputs",
            "resources",
            "markup",
            "translationKey",
            "featured_image",
            "canonical_url",
            "isCJKLanguage",
            "cascade",
            "secure",
            "heats",
            // Odd characters are never echoed in a note.
            "web\nUrl",
            "titl\u{1b}",
            "topic\u{2028}",
        ];
        for key in corpus.iter().chain(&foreign) {
            assert_eq!(meaning(key), Meaning::Silent, "{key:?}");
        }
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edits("topic", "topics", 3), Some(1));
        assert_eq!(edits("titel", "title", 3), Some(1));
        assert_eq!(edits("abc", "abc", 0), Some(0));
        assert_eq!(edits("abc", "xyz", 2), None);
        assert_eq!(edits("", "ab", 2), Some(2));
        assert_eq!(edits("a-very-long-key-name", "url", 3), None);
    }

    #[test]
    fn warnings_are_summarised_per_key() {
        let web = KeyNote { key: "webURL".into(), suggestion: "webUrl".into(), read: true };
        let topic = KeyNote { key: "topic".into(), suggestion: "topics".into(), read: false };
        let s = summarise([("b/x.md", &web), ("a/y.md", &web), ("a/y.md", &web), ("c.md", &topic)]);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].key.as_str(), s[0].files, s[0].example_path.as_str()), ("topic", 1, "c.md"));
        assert_eq!((s[1].key.as_str(), s[1].files, s[1].example_path.as_str()), ("webURL", 2, "a/y.md"));
        assert_eq!(
            s[1].to_string(),
            "unknown key `webURL` in front matter: did you mean `webUrl`? (read as `webUrl`) (2 files, e.g. a/y.md)"
        );
        assert_eq!(s[0].to_string(), "unknown key `topic` in front matter: did you mean `topics`? (1 file, e.g. c.md)");
    }
}
