//! Measuring the grouping against a labelled set of pairs (`tests/data/stories/pairs.tsv`):
//! reading the shared clippings, grouping them, and pairwise precision and recall.
//!
//! Pairs are counted over stories (connected components), not over direct verdicts: two
//! clippings joined only through a chain count as joined, so chaining shows up as lost
//! precision. The labelled set lists every same-event pair we found, so a joined pair it does
//! not list as `same` counts as a false join, unless it is marked `unsure`.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::features::Features;
use super::group::{Member, group};
use super::judge::Params;

/// A pair's label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    Same,
    Different,
    Unsure,
}

/// One labelled pair: clippings named by path relative to the shared folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub label: Label,
    pub a: String,
    pub b: String,
    pub note: String,
}

/// Reads the tab-separated pairs file (`#` comments and blank lines skipped).
pub fn parse_pairs(text: &str) -> Result<Vec<Pair>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let [label, a, b, note] = cols[..] else {
            return Err(format!("line {}: expected 4 tab-separated columns, found {}", n + 1, cols.len()));
        };
        let label = match label {
            "same" => Label::Same,
            "different" => Label::Different,
            "unsure" => Label::Unsure,
            other => return Err(format!("line {}: unknown label {other:?}", n + 1)),
        };
        out.push(Pair { label, a: a.to_string(), b: b.to_string(), note: note.to_string() });
    }
    Ok(out)
}

/// One clipping of the evaluation set: its path relative to the shared folder, its item id and
/// its features.
#[derive(Debug, Clone)]
pub struct Named {
    pub name: String,
    pub item: String,
    pub features: Features,
}

/// Reads the seeds (`seeds/*`) and the corpus clippings (`corpus/**/_news/*`) under `shared`,
/// sorted by name. Files the parser rejects are skipped (none are, today).
pub fn read_shared(shared: &Path) -> std::io::Result<Vec<Named>> {
    read_dir(shared, |rel| {
        rel.starts_with("seeds/") || (rel.starts_with("corpus/") && rel.contains("/_news/") && rel.ends_with(".md"))
    })
}

/// Reads every clipping file under `dir` (found and read by the daemon's own scanner, with the
/// built-in extensions) whose path relative to `dir` passes `take`, sorted by name.
pub fn read_dir(dir: &Path, take: impl Fn(&str) -> bool) -> std::io::Result<Vec<Named>> {
    let limits = crate::clip::Limits::default();
    let (files, problems) = crate::ingest::clipping_files(dir, &crate::config::Config::built_in());
    if let Some(problem) = problems.into_iter().next() {
        return Err(std::io::Error::other(problem));
    }
    let mut out = Vec::new();
    for (abs, rel) in files.into_iter().filter(|(_, rel)| take(rel)) {
        let Ok(bytes) = crate::ingest::read_clipping(&abs, limits)?.1 else { continue };
        let Ok(parsed) = crate::clip::parse(&bytes, limits) else { continue };
        let key = crate::item::key_for(&parsed.clipping, &rel);
        out.push(Named { item: crate::item::id_for(&key), features: Features::of(&parsed.clipping), name: rel });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The stories of a set: for each clipping, its story number.
pub fn stories(p: &Params, set: &[Named]) -> Vec<usize> {
    let members: Vec<Member<'_>> = set.iter().map(|n| Member { item: &n.item, features: &n.features }).collect();
    group(p, &members).0
}

/// Pairwise figures of one grouping against the labelled pairs.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Labelled `same` pairs whose clippings are both in the set.
    pub positives: usize,
    /// Labelled `different` pairs whose clippings are both in the set.
    pub negatives: usize,
    /// Joined pairs that are labelled `same`.
    pub true_joins: usize,
    /// Joined pairs, not counting `unsure` ones.
    pub joins: usize,
    /// `same` pairs left apart.
    pub missed: Vec<Pair>,
    /// `different` pairs joined.
    pub joined_negatives: Vec<Pair>,
    /// Joined pairs the set does not label.
    pub joined_unlisted: Vec<(String, String)>,
    /// Labelled pairs naming a clipping the set does not have.
    pub absent: usize,
    /// Number of stories and the size of the largest.
    pub stories: usize,
    pub largest: usize,
}

impl Report {
    pub fn precision(&self) -> f64 {
        if self.joins == 0 { 1.0 } else { self.true_joins as f64 / self.joins as f64 }
    }

    pub fn recall(&self) -> f64 {
        if self.positives == 0 { 1.0 } else { self.true_joins as f64 / self.positives as f64 }
    }
}

/// Compares a grouping (`story[i]` for `names[i]`) with the labelled pairs.
pub fn evaluate(names: &[String], story: &[usize], pairs: &[Pair]) -> Report {
    let index: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    let mut r = Report::default();
    let mut labelled: HashMap<(usize, usize), Label> = HashMap::new();
    for p in pairs {
        let (Some(&a), Some(&b)) = (index.get(p.a.as_str()), index.get(p.b.as_str())) else {
            r.absent += 1;
            continue;
        };
        labelled.insert((a.min(b), a.max(b)), p.label);
        let joined = story[a] == story[b];
        match p.label {
            Label::Same => {
                r.positives += 1;
                if !joined {
                    r.missed.push(p.clone());
                }
            }
            Label::Different => {
                r.negatives += 1;
                if joined {
                    r.joined_negatives.push(p.clone());
                }
            }
            Label::Unsure => {}
        }
    }
    let mut members: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, &s) in story.iter().enumerate() {
        members.entry(s).or_default().push(i);
    }
    r.stories = members.len();
    r.largest = members.values().map(Vec::len).max().unwrap_or(0);
    let mut seen = HashSet::new();
    for list in members.values() {
        for (k, &a) in list.iter().enumerate() {
            for &b in &list[..k] {
                let key = (a.min(b), a.max(b));
                if !seen.insert(key) {
                    continue;
                }
                match labelled.get(&key) {
                    Some(Label::Unsure) => {}
                    Some(Label::Same) => {
                        r.joins += 1;
                        r.true_joins += 1;
                    }
                    Some(Label::Different) => r.joins += 1,
                    None => {
                        r.joins += 1;
                        r.joined_unlisted.push((names[key.0].clone(), names[key.1].clone()));
                    }
                }
            }
        }
    }
    r.joined_unlisted.sort();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_file_format() {
        let text = "# comment\n\nsame\ta\tb\tone event\ndifferent\ta\tc\tnot\nunsure\tb\tc\t?\n";
        let pairs = parse_pairs(text).unwrap();
        assert_eq!(pairs.len(), 3);
        assert_eq!(pairs[0], Pair { label: Label::Same, a: "a".into(), b: "b".into(), note: "one event".into() });
        assert!(parse_pairs("same\ta\tb\n").unwrap_err().contains("line 1"));
        assert!(parse_pairs("maybe\ta\tb\tn\n").unwrap_err().contains("maybe"));
    }

    #[test]
    fn counts_over_stories() {
        let names: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let pairs = parse_pairs("same\ta\tb\tx\nsame\tc\td\tx\ndifferent\ta\tc\tx\nunsure\tb\tc\tx\n").unwrap();
        // a, b, c together (a-c joined through b); d alone.
        let r = evaluate(&names, &[0, 0, 0, 1], &pairs);
        assert_eq!((r.positives, r.negatives, r.true_joins, r.joins), (2, 1, 1, 2));
        assert_eq!(r.missed.len(), 1);
        assert_eq!(r.joined_negatives.len(), 1);
        assert!(r.joined_unlisted.is_empty(), "b-c is unsure: not counted");
        assert_eq!((r.precision(), r.recall()), (0.5, 0.5));
        assert_eq!((r.stories, r.largest), (2, 3));
    }
}
