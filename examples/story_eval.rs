//! Pairwise precision and recall of the story grouping on the shared seeds and corpus, against
//! the labelled pairs in `tests/data/stories/pairs.tsv`.
//!
//!     cargo run --example story_eval            # the figures, misses and false joins
//!     cargo run --example story_eval -- --pairs # also each labelled pair's scores
//!     cargo run --example story_eval -- --sweep # the figures over a grid of thresholds
//!     cargo run --example story_eval -- --set similar=0.25 --set window=3  # other thresholds
//!     cargo run --example story_eval -- --dir DIR --set era=0  # without eras (chaining)
//!     cargo run --example story_eval -- --dir DIR  # group the clippings in DIR: story sizes
//!
//! The shared folder is `../shared` beside the repository, or `CLIPFEED_SHARED`.

use std::path::{Path, PathBuf};

use clipfeed::stories::eval::{self, Label, Named, Pair, Report};
use clipfeed::stories::{Params, judge, scores};

fn shared() -> PathBuf {
    match std::env::var_os("CLIPFEED_SHARED") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("shared"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(dir) = args.windows(2).find(|w| w[0] == "--dir").map(|w| PathBuf::from(&w[1])) {
        group_dir(&dir, &overrides(&args));
        return;
    }
    let dir = shared();
    if !dir.join("corpus").is_dir() {
        println!("NOTICE: {} has no corpus; nothing to measure", dir.display());
        return;
    }
    let set = eval::read_shared(&dir).expect("reading the shared clippings");
    let pairs_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/stories/pairs.tsv");
    let pairs = eval::parse_pairs(&std::fs::read_to_string(pairs_file).expect("reading pairs.tsv")).expect("pairs.tsv");
    let names: Vec<String> = set.iter().map(|n| n.name.clone()).collect();

    if args.iter().any(|a| a == "--sweep") {
        sweep(&set, &names, &pairs);
        return;
    }
    if args.iter().any(|a| a == "--stories") {
        let story = eval::stories(&overrides(&args), &set);
        for s in 0..set.len() {
            let members: Vec<&str> = (0..set.len()).filter(|&i| story[i] == s).map(|i| short(&set[i].name)).collect();
            if members.len() > 1 {
                println!("story of {}: {}", members.len(), members.join(" | "));
            }
        }
        return;
    }
    let p = overrides(&args);
    let report = eval::evaluate(&names, &eval::stories(&p, &set), &pairs);
    print_report(&report, set.len());
    if args.iter().any(|a| a == "--pairs") {
        print_pairs(&p, &set, &pairs);
    }
}

/// Groups every clipping file in `dir` and prints the story sizes, and the largest story's
/// members with the paths that joined them.
fn group_dir(dir: &Path, p: &Params) {
    let started = std::time::Instant::now();
    let set = eval::read_dir(dir, |rel| rel.ends_with(".md") || rel.ends_with(".txt")).expect("reading the folder");
    let story = eval::stories(p, &set);
    let mut sizes: std::collections::BTreeMap<usize, usize> = std::collections::BTreeMap::new();
    let mut members: std::collections::HashMap<usize, Vec<usize>> = std::collections::HashMap::new();
    for (i, &s) in story.iter().enumerate() {
        members.entry(s).or_default().push(i);
    }
    for m in members.values() {
        *sizes.entry(m.len()).or_default() += 1;
    }
    println!(
        "{} clippings, {} stories in {:.1} s; stories by size: {sizes:?}",
        set.len(),
        members.len(),
        started.elapsed().as_secs_f64()
    );
    let Some(largest) = members.values().max_by_key(|m| m.len()) else { return };
    let mut why: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for (k, &a) in largest.iter().enumerate() {
        for &b in &largest[..k] {
            if let Some(w) = judge(p, &set[a].features, &set[b].features) {
                *why.entry(format!("{w:?}")).or_default() += 1;
            }
        }
    }
    println!("largest story: {} members, direct joins by path: {why:?}", largest.len());
    for &i in largest.iter().take(40) {
        println!("  {}", set[i].name);
    }
}

/// `Params::DEFAULT` with the `--set name=value` arguments applied (window in days).
fn overrides(args: &[String]) -> Params {
    let mut p = Params::DEFAULT;
    for pair in args.windows(2).filter(|w| w[0] == "--set").map(|w| &w[1]) {
        let (name, value) = pair.split_once('=').expect("--set name=value");
        let v: f64 = value.parse().expect("a number");
        match name {
            "window" => p.window = (v * 86_400.0) as i64,
            "similar" => p.similar = v as f32,
            "related" => p.related = v as f32,
            "undated" => p.undated = v as f32,
            "title" => p.title = v as f32,
            "strong" => p.strong = v as f32,
            "common" => p.common_weight = v as f32,
            "copy" => p.copy = v as usize,
            "phrases" => p.phrases = v as usize,
            "same_site" => p.same_site_copy_only = v != 0.0,
            "era" => p.era_days = v as i64,
            other => panic!("unknown threshold {other}"),
        }
    }
    println!("{p:?}");
    p
}

fn print_report(r: &Report, clippings: usize) {
    println!(
        "{clippings} clippings, {} stories (largest {}); labelled: {} same, {} different",
        r.stories, r.largest, r.positives, r.negatives
    );
    println!(
        "pairwise precision {:.3} ({} of {} joined pairs), recall {:.3} ({} of {} same-event pairs)",
        r.precision(),
        r.true_joins,
        r.joins,
        r.recall(),
        r.true_joins,
        r.positives
    );
    if r.absent > 0 {
        println!("NOTICE: {} labelled pairs name a clipping that is not there", r.absent);
    }
    for p in &r.joined_negatives {
        println!("  joined, labelled different: {} | {} ({})", short(&p.a), short(&p.b), p.note);
    }
    for (a, b) in &r.joined_unlisted {
        println!("  joined, not labelled: {} | {}", short(a), short(b));
    }
    for p in &r.missed {
        println!("  missed: {} | {}", short(&p.a), short(&p.b));
    }
}

/// Each labelled pair's title and text similarity, min-hash agreement and direct verdict.
fn print_pairs(p: &Params, set: &[Named], pairs: &[Pair]) {
    let find = |name: &str| set.iter().find(|n| n.name == name);
    println!("label      title  text  copy phr  verdict   pair");
    for pair in pairs {
        let (Some(a), Some(b)) = (find(&pair.a), find(&pair.b)) else { continue };
        let (t, x, c, ph) = scores(p, &a.features, &b.features);
        let verdict = judge(p, &a.features, &b.features).map_or("-".to_string(), |w| format!("{w:?}"));
        let label = match pair.label {
            Label::Same => "same",
            Label::Different => "different",
            Label::Unsure => "unsure",
        };
        println!("{label:<10} {t:5.2} {x:5.2} {c:5} {ph:3}  {verdict:<9} {} | {}", short(&pair.a), short(&pair.b));
    }
}

fn short(name: &str) -> &str {
    let base = name.rsplit('/').next().unwrap_or(name);
    &base[..base.len().min(60)]
}

/// Precision and recall as each threshold moves alone, the others at their defaults.
fn sweep(set: &[Named], names: &[String], pairs: &[Pair]) {
    type Set = fn(&mut Params, f32);
    let axes: [(&str, &[f32], Set); 8] = [
        ("window (days)", &[1.0, 2.0, 3.0, 5.0, 7.0, 10.0, 14.0], |p, v| p.window = (v * 86_400.0) as i64),
        ("similar", &[0.20, 0.25, 0.27, 0.28, 0.30, 0.32, 0.35, 0.40], |p, v| p.similar = v),
        ("related", &[0.10, 0.15, 0.20, 0.25, 0.30], |p, v| p.related = v),
        ("undated", &[0.30, 0.35, 0.40, 0.45, 0.50], |p, v| p.undated = v),
        ("title", &[0.0, 0.05, 0.10, 0.15, 0.20, 0.30], |p, v| p.title = v),
        ("strong", &[0.35, 0.40, 0.45, 0.50, 0.55, 1.0], |p, v| p.strong = v),
        ("phrases", &[1.0, 2.0, 3.0], |p, v| p.phrases = v as usize),
        ("common", &[0.0, 0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 1.0], |p, v| p.common_weight = v),
    ];
    println!("{:<14} {:>6} | precision recall stories largest", "threshold", "value");
    for (name, values, set_value) in axes {
        for &v in values {
            let mut p = Params::DEFAULT;
            set_value(&mut p, v);
            let r = eval::evaluate(names, &eval::stories(&p, set), pairs);
            let mark = if p == Params::DEFAULT { " (default)" } else { "" };
            println!(
                "{name:<14} {v:6.2} | {:9.3} {:6.3} {:7} {:7}{mark}",
                r.precision(),
                r.recall(),
                r.stories,
                r.largest
            );
        }
    }
}
