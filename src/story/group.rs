//! Stories as connected components of the pairwise verdict, their ids, and the incremental
//! decisions the writer applies: a new clipping starts a story, joins one, or merges several;
//! a removed clipping may split its story.
//!
//! A story's id is a function of its members alone: it is made from its founder, the earliest
//! member (dated before undated, then by publication time, then by item id). So the same set of
//! clippings gives the same stories and ids in any arrival order, a story keeps its id as later
//! coverage joins, and of two merging stories the older id survives.

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

use super::features::{BANDS, Features};
use super::judge::{Params, judge};

/// Namespace of story ids (v5 UUIDs made from the founder's item id). Never change it.
const STORY_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x3b8e_51c2_77d4_4c0e_9a61_5f2b_08c4_d917);

/// Day value the index gives undated clippings (below every real day).
const UNDATED: i32 = i32::MIN;

/// The member a story is named after: the least by this order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Founder {
    /// Undated members sort after dated ones.
    undated: bool,
    published: i64,
    /// The founder's item id.
    pub item: String,
}

impl Founder {
    pub fn new(item: &str, published: Option<i64>) -> Founder {
        Founder { undated: published.is_none(), published: published.unwrap_or(0), item: item.to_string() }
    }

    /// The founder's publication time, if dated.
    pub fn published(&self) -> Option<i64> {
        (!self.undated).then_some(self.published)
    }

    /// The story's id: a UUID made from the founder's item id.
    pub fn story_id(&self) -> String {
        uuid::Uuid::new_v5(&STORY_NAMESPACE, format!("story:{}", self.item).as_bytes()).to_string()
    }
}

/// A key a clipping is indexed under. A windowed key is only looked up among clippings dated
/// near the probe's date (and undated ones); the others are looked up at any date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub value: u64,
    pub windowed: bool,
}

const TAG_URL: u64 = 0x0055_524c;
const TAG_BAND: u64 = 0x4241_4e44;
const TAG_PHRASE: u64 = 0x0050_4852;
const TAG_HEADLINE: u64 = 0x0048_4544;

fn tagged(tag: u64, v: u64) -> u64 {
    xxhash_rust::xxh3::xxh3_64(&[tag.to_le_bytes(), v.to_le_bytes()].concat())
}

impl Features {
    /// The keys to index this clipping under, and to look its candidates up by: its URL, its
    /// related URLs and its min-hash bands (not windowed); its headline keys; and, when it is
    /// dated, its phrases. Any pair the verdict joins shares one: an undated clipping joins
    /// only through a headline key (or the URL and copy paths). Each key is its class's: two
    /// clippings of different visibility classes share none.
    pub fn keys(&self) -> Vec<Key> {
        let mut keys = Vec::with_capacity(1 + self.related.len() + BANDS + self.phrases.len() + self.headline.len());
        let exact = |value| Key { value, windowed: false };
        keys.extend(self.url.iter().chain(&self.related).map(|&u| exact(tagged(TAG_URL, u))));
        if self.minhash.len() == 2 * BANDS {
            for (i, band) in self.minhash.chunks(2).enumerate() {
                let v = (i as u64) << 56 ^ u64::from(band[0]) << 24 ^ u64::from(band[1]);
                keys.push(exact(tagged(TAG_BAND, v)));
            }
        }
        let windowed = |value| Key { value, windowed: true };
        keys.extend(self.headline.iter().map(|&h| windowed(tagged(TAG_HEADLINE, h))));
        if self.published.is_some() {
            keys.extend(self.phrases.iter().map(|p| windowed(tagged(TAG_PHRASE, p.words()))));
        }
        // A private class is mixed into every key, so clippings of other classes never share
        // one (public keys are as they were before classes existed).
        if self.class != 0 {
            for k in &mut keys {
                k.value = xxhash_rust::xxh3::xxh3_64(&[k.value.to_le_bytes(), self.class.to_le_bytes()].concat());
            }
        }
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// The (key, day) entries this clipping is stored under: the day is its publication day
    /// for a windowed key of a dated clipping, and the undated marker otherwise.
    pub fn stored_keys(&self) -> Vec<(u64, i32)> {
        let day = self.day().unwrap_or(UNDATED);
        let mut out: Vec<(u64, i32)> =
            self.keys().into_iter().map(|k| (k.value, if k.windowed { day } else { UNDATED })).collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The (key, first day, last day) ranges its candidates are found in: the same lookups as
    /// [`Index::candidates`].
    pub fn lookup_ranges(&self, window_days: i32) -> Vec<(u64, i32, i32)> {
        let day = self.day();
        let mut out = Vec::new();
        for k in self.keys() {
            match (k.windowed, day) {
                (false, _) | (true, None) => out.push((k.value, UNDATED, i32::MAX)),
                (true, Some(d)) => {
                    out.push((k.value, UNDATED, UNDATED));
                    out.push((k.value, d - window_days - 1, d + window_days + 1));
                }
            }
        }
        out
    }
}

/// An in-memory key index over clippings numbered by the caller: the same lookups the store's
/// key table answers, for grouping a whole set at once, for tests and for benchmarks.
#[derive(Default)]
pub struct Index {
    entries: BTreeSet<(u64, i32, u32)>,
}

impl Index {
    pub fn insert(&mut self, n: u32, f: &Features) {
        let day = f.day().unwrap_or(UNDATED);
        for k in f.keys() {
            self.entries.insert((k.value, if k.windowed { day } else { UNDATED }, n));
        }
    }

    pub fn remove(&mut self, n: u32, f: &Features) {
        let day = f.day().unwrap_or(UNDATED);
        for k in f.keys() {
            self.entries.remove(&(k.value, if k.windowed { day } else { UNDATED }, n));
        }
    }

    /// The clippings sharing a key with `f` (windowed keys: dated within `window_days` + 1 of
    /// it, or undated), sorted, without duplicates.
    pub fn candidates(&self, f: &Features, window_days: i32) -> Vec<u32> {
        let mut out = Vec::new();
        let day = f.day();
        for k in f.keys() {
            let ranges: [(i32, i32); 2] = match (k.windowed, day) {
                (false, _) | (true, None) => [(UNDATED, i32::MAX), (1, 0)],
                (true, Some(d)) => [(UNDATED, UNDATED), (d - window_days - 1, d + window_days + 1)],
            };
            for (lo, hi) in ranges.into_iter().filter(|(lo, hi)| lo <= hi) {
                let range = (Bound::Included((k.value, lo, 0)), Bound::Included((k.value, hi, u32::MAX)));
                out.extend(self.entries.range(range).map(|&(_, _, n)| n));
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Window of the index lookups for `p`, in whole days.
pub fn window_days(p: &Params) -> i32 {
    (p.window.div_euclid(86_400) + 1) as i32
}

/// One clipping as the grouping sees it: its item id and features.
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    pub item: &'a str,
    pub features: &'a Features,
}

impl Member<'_> {
    pub fn founder(&self) -> Founder {
        Founder::new(self.item, self.features.published)
    }
}

/// Groups a whole set: for each clipping, the number of its story, and each story's founder
/// (stories numbered by founder order). Used for rebuilds, tests and the evaluation.
pub fn group(p: &Params, members: &[Member<'_>]) -> (Vec<usize>, Vec<Founder>) {
    let mut parent: Vec<usize> = (0..members.len()).collect();
    let mut index = Index::default();
    for (n, m) in members.iter().enumerate() {
        for c in index.candidates(m.features, window_days(p)) {
            if judge(p, m.features, members[c as usize].features).is_some() {
                union(&mut parent, n, c as usize);
            }
        }
        index.insert(n as u32, m.features);
    }
    components(members, &mut parent)
}

/// Connected components of `members` under the verdict, by brute force over all pairs: the
/// reference the key lookups are tested against.
#[cfg(test)]
pub fn components_of(p: &Params, members: &[Member<'_>]) -> (Vec<usize>, Vec<Founder>) {
    let mut parent: Vec<usize> = (0..members.len()).collect();
    for i in 0..members.len() {
        for j in 0..i {
            if judge(p, members[i].features, members[j].features).is_some() {
                union(&mut parent, i, j);
            }
        }
    }
    components(members, &mut parent)
}

fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

fn union(parent: &mut [usize], a: usize, b: usize) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra != rb {
        parent[ra.max(rb)] = ra.min(rb);
    }
}

fn components(members: &[Member<'_>], parent: &mut [usize]) -> (Vec<usize>, Vec<Founder>) {
    let mut founder_of_root: HashMap<usize, Founder> = HashMap::new();
    for (n, m) in members.iter().enumerate() {
        let root = find(parent, n);
        let f = m.founder();
        founder_of_root.entry(root).and_modify(|cur| *cur = cur.clone().min(f.clone())).or_insert(f);
    }
    let mut founders: Vec<Founder> = founder_of_root.values().cloned().collect();
    founders.sort();
    let number: HashMap<&Founder, usize> = founders.iter().enumerate().map(|(i, f)| (f, i)).collect();
    let story = (0..members.len()).map(|n| number[&founder_of_root[&find(parent, n)]]).collect();
    (story, founders)
}

/// A stored clipping found by key lookup: its item id, its features and its story's founder.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub item: &'a str,
    pub features: &'a Features,
    pub story: &'a Founder,
}

/// What the writer does with a new clipping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No stored clipping reports its event: it founds a story of its own.
    Start(Founder),
    /// It joins this story, whose founder (and id) stay.
    Join(Founder),
    /// The stories founded by `retired` end, merged into the story founded by `into` (their
    /// ids redirect to its id). `into` is the newcomer itself when it is older than them all.
    Merge { into: Founder, retired: Vec<Founder> },
}

impl Decision {
    /// The founder of the story the new clipping is in afterwards.
    pub fn founder(&self) -> &Founder {
        match self {
            Decision::Start(f) | Decision::Join(f) | Decision::Merge { into: f, .. } => f,
        }
    }
}

/// Decides where a new clipping goes, from the stored clippings sharing a key with it (see
/// [`Features::keys`]): the stories of those it matches are joined, and the result is
/// the story of their earliest member overall.
pub fn decide(p: &Params, new: Member<'_>, candidates: &[Candidate<'_>]) -> Decision {
    let matched: BTreeSet<&Founder> =
        candidates.iter().filter(|c| judge(p, new.features, c.features).is_some()).map(|c| c.story).collect();
    let me = new.founder();
    let Some(&oldest) = matched.first() else {
        return Decision::Start(me);
    };
    if matched.len() == 1 && *oldest < me {
        return Decision::Join(oldest.clone());
    }
    let into = if *oldest < me { oldest.clone() } else { me };
    let retired = matched.into_iter().filter(|f| **f != into).cloned().collect();
    Decision::Merge { into, retired }
}

/// The stories left when a member leaves one: the remaining members (`rest`) regrouped, as
/// (founder, indices into `rest`), oldest founder first. The part holding the old founder keeps
/// the story's id; when the founder itself left, the oldest part takes over under its own id.
pub fn split(p: &Params, rest: &[Member<'_>]) -> Vec<(Founder, Vec<usize>)> {
    let (story, founders) = group(p, rest);
    let mut parts: Vec<(Founder, Vec<usize>)> = founders.into_iter().map(|f| (f, Vec::new())).collect();
    for (n, s) in story.into_iter().enumerate() {
        parts[s].1.push(n);
    }
    parts
}
