//! The pairwise verdict: do two clippings report the same news event? Symmetric, and a function
//! of the two clippings' features alone.
//!
//! Paths to "yes", tried in order:
//! 1. the same article URL (normalised);
//! 2. a near copy: most of the min-hash signature of their word triples agrees (a reprint or a
//!    syndicated release) and the titles share a word that tells; at any distance in time;
//! 3. one lists the other as related, and their text agrees a little, within the time window;
//! 4. both dated within the time window, two phrase keys in common, and their words agree;
//! 5. one undated: three neighbouring title words in common and their words agree strongly.
//!
//! Two clippings of different visibility classes (`Features::class`) are never the same event
//! here, whatever their text: a story is shaped only by clippings its readers may all see.
//!
//! Every path but the first two needs a key in common, and those two share a URL or a min-hash
//! band by construction (see `Features::keys`), so a candidate lookup by key never misses a
//! pair this module would join.

use super::features::{Features, MINHASHES, Term};

/// The thresholds. [`Params::DEFAULT`] is what the daemon uses; the evaluation example sweeps
/// other values to show why these.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Widest gap between two dated clippings of one event, in seconds.
    pub window: i64,
    /// Least text similarity for two dated clippings.
    pub similar: f32,
    /// Least text similarity for a pair linked by a `related` entry.
    pub related: f32,
    /// Least text similarity when one of the two is undated.
    pub undated: f32,
    /// Least title similarity, for every path but the same URL and near copies...
    pub title: f32,
    /// ...unless the text similarity reaches this (headlines can differ wholly: "Far-right
    /// outfit uses A.I." and "Facebook removes fake accounts" can report one event).
    pub strong: f32,
    /// Weight of a common word against a rare one (1).
    pub common_weight: f32,
    /// Least number of phrases in common for two dated clippings (one suffices for a linked
    /// pair). One phrase in common is too weak a sign where texts share much vocabulary: it
    /// chains stories through a week of look-alike headlines.
    pub phrases: usize,
    /// Least number of agreeing min-hash values (of 12) for a near copy.
    pub copy: usize,
    /// Whether two clippings of one news site need a near copy (or the same URL) to join.
    pub same_site_copy_only: bool,
    /// Length in days of the fixed periods ("eras") dated clippings fall in; two dated
    /// clippings of different eras are never one event (0: no eras). This bounds how far in
    /// time a story can reach: without it, look-alike coverage chains day after day into one
    /// story of thousands of clippings. The price: an event that straddles an era boundary is
    /// two stories (precision is kept, some recall lost).
    pub era_days: i64,
}

impl Params {
    pub const DEFAULT: Params = Params {
        window: 7 * 86_400,
        similar: 0.27,
        related: 0.20,
        undated: 0.40,
        title: 0.10,
        strong: 0.45,
        common_weight: 0.35,
        phrases: 2,
        copy: 7,
        same_site_copy_only: true,
        era_days: 28,
    };
}

impl Default for Params {
    fn default() -> Self {
        Params::DEFAULT
    }
}

/// Why a pair was judged one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Why {
    SameUrl,
    NearCopy,
    Related,
    Similar,
    Undated,
}

/// Whether `a` and `b` report the same event, with the default thresholds.
pub fn same_event(a: &Features, b: &Features) -> bool {
    judge(&Params::DEFAULT, a, b).is_some()
}

/// The verdict on a pair and the path that gave it; `None` for "not the same event".
pub fn judge(p: &Params, a: &Features, b: &Features) -> Option<Why> {
    // Clippings of different visibility classes are never one story (see `Features::class`).
    if a.class != b.class {
        return None;
    }
    if a.url.is_some() && a.url == b.url {
        return Some(Why::SameUrl);
    }
    if other_eras(p, a, b) {
        return None;
    }
    if copy_agreement(a, b) >= p.copy.max(MINHASHES / 2 + 1) && shares_rare(&a.title, &b.title) {
        return Some(Why::NearCopy);
    }
    if (p.same_site_copy_only && a.provider.is_some() && a.provider == b.provider) || conflict(a, b) {
        return None;
    }
    let title = weighted_dice(p, &a.title, &b.title);
    let text = weighted_cosine(p, &a.text, &b.text);
    if title < p.title && text < p.strong {
        return None;
    }
    match (a.published, b.published) {
        (Some(x), Some(y)) if (x - y).abs() <= p.window => {
            if linked(a, b) && text >= p.related {
                Some(Why::Related)
            } else if text >= p.similar && shared_phrases(a, b) >= p.phrases.max(1) {
                Some(Why::Similar)
            } else {
                None
            }
        }
        (Some(_), Some(_)) => None,
        _ => (text >= p.undated && shares_headline(a, b)).then_some(Why::Undated),
    }
}

/// Days added before dividing into eras: era boundaries fall on days 14 mod 28 since 1970 (so,
/// for one, the seeds' June 2020 event sits mid-era; any choice puts some boundary somewhere).
const ERA_OFFSET_DAYS: i64 = 14;

/// The era of a dated clipping.
pub fn era(p: &Params, f: &Features) -> Option<i64> {
    let day = f.published?.div_euclid(86_400);
    (p.era_days > 0).then(|| (day + ERA_OFFSET_DAYS).div_euclid(p.era_days))
}

/// Whether both are dated, in different eras.
fn other_eras(p: &Params, a: &Features, b: &Features) -> bool {
    matches!((era(p, a), era(p, b)), (Some(x), Some(y)) if x != y)
}

/// Signs of two different events despite similar words: titles that name different numbers
/// ("part 1" and "part 2", "2019 release" and "2020 release"), or titles led by different rare
/// words neither text mentions (two companies announcing the same kind of thing).
fn conflict(a: &Features, b: &Features) -> bool {
    let numbers = !a.numbers.is_empty() && !b.numbers.is_empty() && !a.numbers.iter().any(|n| b.numbers.contains(n));
    let actors = match (a.actor, b.actor) {
        (Some(x), Some(y)) => x != y && b.text.binary_search(&x).is_err() && a.text.binary_search(&y).is_err(),
        _ => false,
    };
    numbers || actors
}

/// How many min-hash values agree (0 when either text is too short).
pub fn copy_agreement(a: &Features, b: &Features) -> usize {
    if a.minhash.len() != MINHASHES || b.minhash.len() != MINHASHES {
        return 0;
    }
    a.minhash.iter().zip(&b.minhash).filter(|(x, y)| x == y).count()
}

/// Whether one lists the other's URL among its related articles.
fn linked(a: &Features, b: &Features) -> bool {
    let lists = |x: &Features, y: &Features| y.url.is_some_and(|u| x.related.binary_search(&u).is_ok());
    lists(a, b) || lists(b, a)
}

/// Whether the two titles share three neighbouring words (a headline key).
fn shares_headline(a: &Features, b: &Features) -> bool {
    a.headline.iter().any(|h| b.headline.binary_search(h).is_ok())
}

fn shares_rare(a: &[Term], b: &[Term]) -> bool {
    let mut shared = false;
    intersect(a, b, |t| shared |= t.is_rare());
    shared
}

fn weight(p: &Params, t: Term) -> f32 {
    if t.is_rare() { 1.0 } else { p.common_weight }
}

fn total(p: &Params, set: &[Term]) -> f32 {
    set.iter().map(|&t| weight(p, t)).sum()
}

fn shared_weight(p: &Params, a: &[Term], b: &[Term]) -> f32 {
    let mut w = 0.0;
    intersect(a, b, |t| w += weight(p, t));
    w
}

/// 2·shared / (|a| + |b|), words weighted.
fn weighted_dice(p: &Params, a: &[Term], b: &[Term]) -> f32 {
    let sum = total(p, a) + total(p, b);
    if sum == 0.0 { 0.0 } else { 2.0 * shared_weight(p, a, b) / sum }
}

/// shared / sqrt(|a|·|b|), words weighted.
fn weighted_cosine(p: &Params, a: &[Term], b: &[Term]) -> f32 {
    let prod = total(p, a) * total(p, b);
    if prod == 0.0 { 0.0 } else { shared_weight(p, a, b) / prod.sqrt() }
}

/// Calls `f` for each term in both sorted sets.
fn intersect(a: &[Term], b: &[Term], mut f: impl FnMut(Term)) {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                f(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
}

/// The similarity figures of a pair, for the evaluation's diagnostics: title similarity, text
/// similarity, agreeing min-hash values, phrases in common.
pub fn scores(p: &Params, a: &Features, b: &Features) -> (f32, f32, usize, usize) {
    let t = weighted_dice(p, &a.title, &b.title);
    (t, weighted_cosine(p, &a.text, &b.text), copy_agreement(a, b), shared_phrases(a, b))
}

/// How many phrase keys the two have in common.
fn shared_phrases(a: &Features, b: &Features) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.phrases.len() && j < b.phrases.len() {
        match a.phrases[i].words().cmp(&b.phrases[j].words()) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}
