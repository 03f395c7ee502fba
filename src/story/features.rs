//! What story matching knows of one clipping ([`Features`]), computed from that clipping's own
//! fields, its compact stored form, and its candidate keys.
//!
//! A clipping's features never depend on other clippings, so the verdict on a pair depends on
//! the two clippings alone, whatever was stored before them.

use chrono::{DateTime, Utc};
use xxhash_rust::xxh3::xxh3_64;

use super::words::{self, Class};
use crate::clip::Clipping;
use crate::config::PUBLIC_CLASS;

/// Words of the title read (a title longer than this is not a headline).
const TITLE_WORDS: usize = 32;
/// Words of excerpt and body read for event matching (a lead, not the whole text).
const LEAD_WORDS: usize = 100;
/// Related articles read (the rest are not candidates).
const RELATED: usize = 16;
/// Words of excerpt and body read for near-copy detection.
const COPY_WORDS: usize = 400;
/// Fewest words a text needs before its word runs can show it is a copy of another.
const COPY_MIN_WORDS: usize = 8;
/// Number of min-hash values kept; they form [`BANDS`] bands of two.
pub const MINHASHES: usize = 12;
pub const BANDS: usize = MINHASHES / 2;
/// Most phrase keys a clipping gets from its text after the title.
const TEXT_PHRASES: usize = 12;

/// One word form, hashed, with its weight class in the top bit (1: rare, 0: common). Stop
/// words are never kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Term(pub u32);

impl Term {
    fn new(form: &str, class: Class) -> Term {
        let h = xxh3_64(form.as_bytes()) as u32 & 0x7fff_ffff;
        Term(if class == Class::Rare { h | 0x8000_0000 } else { h })
    }

    pub fn is_rare(self) -> bool {
        self.0 & 0x8000_0000 != 0
    }
}

/// A phrase key: two neighbouring words of the title or lead, at least one of them rare. The
/// low bit says whether the phrase is in the title.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Phrase(pub u64);

impl Phrase {
    pub fn in_title(self) -> bool {
        self.0 & 1 == 1
    }

    /// The phrase without its title bit.
    pub fn words(self) -> u64 {
        self.0 >> 1
    }
}

/// What story matching knows of one clipping. Sets are sorted and free of duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Features {
    /// Publication time (Unix seconds) when the clipping gives one.
    pub published: Option<i64>,
    /// Hash of the article URL, normalised for matching (scheme, `www.`, tracking parameters and
    /// trailing slash dropped).
    pub url: Option<u64>,
    /// Hashes of the related articles' URLs, normalised the same way.
    pub related: Vec<u64>,
    /// Hash of the news site's domain.
    pub provider: Option<u64>,
    /// Words of the title.
    pub title: Vec<Term>,
    /// Words of the title, excerpt and the start of the body.
    pub text: Vec<Term>,
    /// Phrase keys of the title and lead (a phrase in both is kept once, as a title phrase).
    pub phrases: Vec<Phrase>,
    /// Headline keys: three neighbouring words of the title, at least one of them rare. An
    /// undated clipping is only matched through these, looked up at any date, so they must be
    /// specific.
    pub headline: Vec<u64>,
    /// The first word of the title when it is rare: usually who does what the title says.
    pub actor: Option<Term>,
    /// Hashes of the numbers in the title ("part 2", "2019 release").
    pub numbers: Vec<u32>,
    /// Min-hash signature of the word triples of excerpt and body; empty when the text is too
    /// short to tell a copy.
    pub minhash: Vec<u32>,
    /// The clipping's visibility class (`config::Visibility::class`), hashed: 0 for public.
    /// Clippings of different classes are never one story: the verdict says no, and their
    /// keys differ (see `Features::keys`), so one is never even a candidate of the other.
    pub class: u64,
}

impl Features {
    /// The features of one parsed clipping.
    pub fn of(c: &Clipping) -> Features {
        let body = c.content_html.as_deref().map(|h| crate::text::plain_text(head(h))).unwrap_or_default();
        let mut title = words::forms(head(&c.title));
        title.truncate(TITLE_WORDS);
        let excerpt = c.excerpt.as_deref().map(|e| words::forms(head(e))).unwrap_or_default();
        let mut body = words::forms(&body);
        // A plain-text clipping's excerpt is its first paragraph, which the body repeats.
        if !excerpt.is_empty() && body.starts_with(&excerpt) {
            body.drain(..excerpt.len());
        }
        let lead: Vec<&str> = excerpt.iter().chain(body.iter()).take(LEAD_WORDS).map(String::as_str).collect();
        let title_refs: Vec<&str> = title.iter().map(String::as_str).collect();

        let title_terms = terms(&title_refs);
        let mut text = terms(&lead);
        text.extend_from_slice(&title_terms);
        text.sort_unstable();
        text.dedup();

        let title_phrases = phrases_of(&title_refs, usize::MAX, true);
        let mut phrases = title_phrases.clone();
        phrases.extend(
            phrases_of(&lead, TEXT_PHRASES, false)
                .into_iter()
                .filter(|p| !title_phrases.iter().any(|t| t.words() == p.words())),
        );
        phrases.sort_unstable();
        phrases.dedup();
        let headline = headline_of(&title_refs);
        let actor = title_refs
            .iter()
            .find(|f| words::class(f) != Class::Stop)
            .filter(|f| words::class(f) == Class::Rare)
            .map(|f| Term::new(f, Class::Rare));
        let mut numbers: Vec<u32> = title_refs
            .iter()
            .filter(|f| f.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
            .map(|f| xxh3_64(f.as_bytes()) as u32)
            .collect();
        numbers.sort_unstable();
        numbers.dedup();

        let copy: Vec<&str> = excerpt.iter().chain(body.iter()).take(COPY_WORDS).map(String::as_str).collect();
        let mut related: Vec<u64> = c.related.iter().take(RELATED).map(|r| url_key(&r.url)).collect();
        related.sort_unstable();
        related.dedup();
        Features {
            published: c.published.map(|d: DateTime<Utc>| d.timestamp()),
            url: c.url.as_deref().map(url_key),
            related,
            provider: c.provider.as_ref().and_then(|p| p.domain.as_deref()).map(|d| xxh3_64(d.as_bytes())),
            title: title_terms,
            text,
            phrases,
            headline,
            actor,
            numbers,
            minhash: minhash(&copy),
            class: 0,
        }
    }

    /// These features in visibility class `class` (the string `config::Visibility::class`
    /// gives; the public class is 0, any other class a non-zero hash of it).
    pub fn in_class(mut self, class: &str) -> Features {
        self.class = if class == PUBLIC_CLASS { 0 } else { xxh3_64(class.as_bytes()) | 1 };
        self
    }

    /// The day number (days since 1970-01-01, UTC) of the publication time.
    pub fn day(&self) -> Option<i32> {
        self.published.map(|t| t.div_euclid(86_400) as i32)
    }
}

/// The start of a field: far more text than the words read from it, so a huge field costs no
/// more than a long one.
fn head(s: &str) -> &str {
    const MAX: usize = 16 * 1024;
    if s.len() <= MAX {
        return s;
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn terms(forms: &[&str]) -> Vec<Term> {
    let mut out: Vec<Term> = forms
        .iter()
        .filter_map(|f| match words::class(f) {
            Class::Stop => None,
            class => Some(Term::new(f, class)),
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Neighbouring pairs of non-stop words (stop words between them skipped), keeping pairs with
/// at least one rare word, up to `max`. The pair is unordered: "police use" and "use by police"
/// meet.
fn phrases_of(forms: &[&str], max: usize, title: bool) -> Vec<Phrase> {
    let kept: Vec<(&str, Class)> =
        forms.iter().map(|f| (*f, words::class(f))).filter(|(_, c)| *c != Class::Stop).collect();
    let mut out = Vec::new();
    for pair in kept.windows(2) {
        if out.len() >= max {
            break;
        }
        let ((a, ca), (b, cb)) = (pair[0], pair[1]);
        if a == b || (ca != Class::Rare && cb != Class::Rare) {
            continue;
        }
        let (x, y) = if a < b { (a, b) } else { (b, a) };
        let mut buf = Vec::with_capacity(x.len() + y.len() + 1);
        buf.extend_from_slice(x.as_bytes());
        buf.push(b' ');
        buf.extend_from_slice(y.as_bytes());
        out.push(Phrase((xxh3_64(&buf) << 1) | u64::from(title)));
    }
    out
}

/// Hashes of the neighbouring triples of non-stop title words that hold a rare word.
fn headline_of(title: &[&str]) -> Vec<u64> {
    let kept: Vec<(&str, Class)> =
        title.iter().map(|f| (*f, words::class(f))).filter(|(_, c)| *c != Class::Stop).collect();
    let mut out: Vec<u64> = kept
        .windows(3)
        .filter(|w| w.iter().any(|(_, c)| *c == Class::Rare))
        .map(|w| xxh3_64(format!("{} {} {}", w[0].0, w[1].0, w[2].0).as_bytes()))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Min-hash of the word triples: for each of [`MINHASHES`] seeded mixes of the triples'
/// hashes, the least value.
fn minhash(forms: &[&str]) -> Vec<u32> {
    if forms.len() < COPY_MIN_WORDS {
        return Vec::new();
    }
    let words: Vec<u64> = forms.iter().map(|f| xxh3_64(f.as_bytes())).collect();
    let mut mins = vec![u32::MAX; MINHASHES];
    for t in words.windows(3) {
        let h = mix(t[0] ^ t[1].rotate_left(21) ^ t[2].rotate_left(42));
        for (m, seed) in mins.iter_mut().zip(SEEDS) {
            *m = (*m).min((mix(h ^ seed) >> 32) as u32);
        }
    }
    mins
}

const SEEDS: [u64; MINHASHES] = [
    0x9e37_79b9_7f4a_7c15,
    0xbf58_476d_1ce4_e5b9,
    0x94d0_49bb_1331_11eb,
    0x2545_f491_4f6c_dd1d,
    0xd6e8_feb8_6659_fd93,
    0xa076_1d64_78bd_642f,
    0xe703_7ed1_a0b4_28db,
    0x8ebc_6af0_9c88_c6e3,
    0x5899_65cc_7537_4cc3,
    0x1d8e_4e27_c47d_124f,
    0xc2b2_ae3d_27d4_eb4f,
    0x1656_67b1_9e37_79f9,
];

/// SplitMix64's finaliser: a fixed, well-mixing permutation of u64.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Query parameters that only say where a reader came from.
fn is_tracking(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("utm_")
        || matches!(
            n.as_str(),
            "source"
                | "ref"
                | "referrer"
                | "fbclid"
                | "gclid"
                | "mc_cid"
                | "mc_eid"
                | "cmpid"
                | "ocid"
                | "smid"
                | "amp"
        )
}

/// Hash of a URL normalised for matching: host without `www.`, path without a trailing slash,
/// query without tracking parameters; scheme and fragment dropped.
pub fn url_key(raw: &str) -> u64 {
    let Ok(url) = url::Url::parse(raw) else {
        return xxh3_64(raw.as_bytes());
    };
    let host = url.host_str().unwrap_or("");
    let host = host.strip_prefix("www.").unwrap_or(host);
    let path = url.path().trim_end_matches('/');
    let mut out = format!("{host}{path}");
    let kept: Vec<(String, String)> =
        url.query_pairs().filter(|(k, _)| !is_tracking(k)).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    if !kept.is_empty() {
        out.push('?');
        for (k, v) in kept {
            out.push_str(&k);
            out.push('=');
            out.push_str(&v);
            out.push('&');
        }
    }
    xxh3_64(out.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(title: &str, excerpt: &str) -> Clipping {
        let text = format!("---\ntitle: \"{title}\"\nexcerpt: \"{excerpt}\"\n---\n");
        crate::clip::parse(text.as_bytes(), crate::clip::Limits::default()).unwrap().clipping
    }

    #[test]
    fn url_keys_ignore_what_does_not_name_the_article() {
        let k = url_key("https://medium.com/a/post-1");
        assert_eq!(k, url_key("http://www.medium.com/a/post-1/"));
        assert_eq!(k, url_key("https://medium.com/a/post-1?source=topic_page&utm_medium=x"));
        assert_ne!(k, url_key("https://medium.com/a/post-2"));
        assert_ne!(url_key("https://x.com/a?id=1"), url_key("https://x.com/a?id=2"));
    }

    #[test]
    fn phrases_need_a_rare_word() {
        let f = Features::of(&clip("Amazon bans police use of Rekognition", ""));
        // amazon+ban, ban+police, police+use, use+rekognition: each has a rare word.
        assert_eq!(f.phrases.len(), 4, "{f:?}");
        assert!(f.phrases.iter().all(|p| p.in_title()));
        assert!(f.actor.is_some_and(|t| t.is_rare()));
        assert_eq!(f.minhash.len(), 0, "a title alone is too short to tell a copy");
    }

    #[test]
    fn copies_have_equal_signatures() {
        let e = "the quick brown fox jumps over the lazy dog near the river bank at dawn";
        let a = Features::of(&clip("One", e));
        let b = Features::of(&clip("Two", e));
        assert_eq!(a.minhash.len(), MINHASHES);
        assert_eq!(a.minhash, b.minhash);
        assert_ne!(a.title, b.title);
    }
}
