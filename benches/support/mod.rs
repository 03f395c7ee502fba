//! Data for the criterion benches, made at bench time and never committed: clippings from
//! `../shared/bench/gen_clippings.py` (written into a temp dir), the real example clippings read
//! from `../shared/seeds` and `../shared/corpus` when they are there, and a small deterministic
//! generator of seed-like clippings in Rust for when they are not. Also turns clippings into the
//! items the renderers take, and fills a store the way the daemon does.

#![allow(dead_code)] // each bench binary uses a different part

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use clipfeed::Heartbeat;
use clipfeed::Ingest;
use clipfeed::Metrics;
use clipfeed::Site;
use clipfeed::Store;
use clipfeed::{Clipping, Limits, parse_clipping};
use clipfeed::{Config, Topics};
use clipfeed::{Item, Source, item_id, item_key, merge_item};

/// One clipping file: its name and bytes.
pub struct File {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// `../shared` beside the repository, or where `CLIPFEED_SHARED` says (as for bench/*.py).
pub fn shared() -> PathBuf {
    match std::env::var_os("CLIPFEED_SHARED") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("shared"),
    }
}

/// Writes `n` generated clippings (seed 1) into `dir` with `gen_clippings.py`. False (with a
/// notice) when the generator or python3 is missing.
pub fn generate_into(n: usize, dir: &Path) -> bool {
    let script = shared().join("bench").join("gen_clippings.py");
    if !script.exists() {
        eprintln!("NOTICE: {} is missing; using the built-in synthetic clippings", script.display());
        return false;
    }
    let out = Command::new("python3").arg(&script).arg(n.to_string()).arg(dir).args(["--seed", "1"]).output();
    match out {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            eprintln!("NOTICE: gen_clippings.py failed ({}); using the built-in synthetic clippings", o.status);
            false
        }
        Err(e) => {
            eprintln!("NOTICE: cannot run python3 ({e}); using the built-in synthetic clippings");
            false
        }
    }
}

/// Every regular file below `dir`, sorted by path.
pub fn read_dir_files(dir: &Path) -> Vec<File> {
    let mut files: Vec<File> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter(|e| e.path().extension().is_some_and(|x| x == "md" || x == "txt" || x == "markdown"))
        .map(|e| File {
            name: e.path().strip_prefix(dir).unwrap_or(e.path()).display().to_string(),
            bytes: std::fs::read(e.path()).expect("reading a generated clipping"),
        })
        .collect();
    files.sort_by(|a, b| a.name.cmp(&b.name));
    files
}

/// `n` generated clippings: from `gen_clippings.py` when it can run, else the built-in ones.
/// The second value says which.
pub fn generated(n: usize) -> (Vec<File>, &'static str) {
    let dir = tempfile::tempdir().expect("temp dir");
    if generate_into(n, dir.path()) {
        (read_dir_files(dir.path()), "gen_clippings.py")
    } else {
        (synthetic(n), "built-in")
    }
}

/// The real clippings in `../shared/seeds` and `../shared/corpus` (third-party text, read where
/// it lies). Empty, with a notice, when they are absent.
pub fn real() -> Vec<File> {
    let mut files = Vec::new();
    for sub in ["seeds", "corpus"] {
        let dir = shared().join(sub);
        if dir.is_dir() {
            files.extend(read_dir_files(&dir).into_iter().filter(|f| !f.name.ends_with("README.md")));
        }
    }
    if files.is_empty() {
        eprintln!("NOTICE: no real clippings in {}; the seed benches are skipped", shared().display());
    }
    files
}

/// A small xorshift generator: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Index with weight 1/(rank+1): a few common values, a long tail.
    fn zipf(&mut self, n: usize) -> usize {
        let total: f64 = (1..=n).map(|r| 1.0 / r as f64).sum();
        let mut x = (self.next() % 1_000_000) as f64 / 1_000_000.0 * total;
        for r in 1..=n {
            x -= 1.0 / r as f64;
            if x <= 0.0 {
                return r - 1;
            }
        }
        n - 1
    }
}

const TOPICS: [&str; 12] = [
    "AI",
    "Machine Learning",
    "Computer Vision",
    "Natural Language Processing",
    "Deep Learning",
    "AWS AI",
    "Robotics",
    "Google AI",
    "Autonomous Vehicles",
    "AI Ethics",
    "Facial Recognition",
    "Chatbots",
];
const PROVIDERS: [(&str, &str); 10] = [
    ("VICE", "vice.com"),
    ("Wired", "wired.com"),
    ("Reuters", "reuters.com"),
    ("CNET", "cnet.com"),
    ("The Verge", "theverge.com"),
    ("Süddeutsche Zeitung", "sueddeutsche.de"),
    ("Ars Technica", "arstechnica.com"),
    ("日本経済新聞", "nikkei.com"),
    ("Forbes", "forbes.com"),
    ("CNBC", "cnbc.com"),
];
const WORDS: &str = "police facial recognition software ban company model language robot lab chip startup \
    privacy regulators researchers data cloud vision launches pauses expands after amid report";

fn sentence(rng: &mut Rng, words: usize) -> String {
    let vocabulary: Vec<&str> = WORDS.split_whitespace().collect();
    (0..words).map(|_| vocabulary[rng.below(vocabulary.len())]).collect::<Vec<_>>().join(" ")
}

/// `n` clippings in the seed files' layout (quoted strings, provider with a logo, topics, one
/// image, 0 to 6 related articles), deterministic.
pub fn synthetic(n: usize) -> Vec<File> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..n)
        .map(|i| {
            let (pname, domain) = PROVIDERS[rng.zipf(PROVIDERS.len())];
            let title = format!("{} number {i}", sentence(&mut rng, 9));
            let day = 1 + rng.below(28);
            let month = 1 + rng.below(12);
            let mut t = String::with_capacity(6000);
            t.push_str("---\ncategory: news\n");
            t.push_str(&format!("title: \"{title}\"\nexcerpt: \"{} ...\"\n", sentence(&mut rng, 30)));
            t.push_str(&format!("publishedDateTime: 2020-{month:02}-{day:02}T{:02}:{:02}:00Z\n", i % 24, i % 60));
            t.push_str(&format!("webUrl: \"https://www.{domain}/story/{i}-synthetic\"\n"));
            t.push_str(&format!("ampWebUrl: \"https://www.{domain}/amp/story/{i}-synthetic\"\n"));
            t.push_str(&format!("type: article\nquality: {}\nheat: -1\npublished: false\n\n", rng.below(120)));
            t.push_str(&format!(
                "provider:\n  name: \"{pname}\"\n  domain: {domain}\n  images:\n    - url: \"https://img.example/{domain}-50x50.jpg\"\n      width: 50\n      height: 50\n\n"
            ));
            t.push_str("topics:\n");
            let mut chosen: Vec<&str> = Vec::new();
            for _ in 0..1 + rng.below(3) {
                let topic = TOPICS[rng.zipf(TOPICS.len())];
                if !chosen.contains(&topic) {
                    chosen.push(topic);
                    t.push_str(&format!("  - {topic}\n"));
                }
            }
            t.push_str(&format!(
                "\nimages:\n  - url: \"https://media.example/photos/{i}.jpg\"\n    width: 2400\n    height: 1600\n    isCached: true\n    title: \"{title}\"\n"
            ));
            let related = rng.below(7);
            if related > 0 {
                t.push_str("\nrelated:\n");
            }
            for r in 0..related {
                let (rp, rd) = PROVIDERS[rng.below(PROVIDERS.len())];
                t.push_str(&format!(
                    "  - title: \"{}\"\n    excerpt: \"{}\"\n    publishedDateTime: 2020-{month:02}-{day:02}T12:00:00Z\n    webUrl: \"https://www.{rd}/related/{i}/{r}\"\n    type: article\n    provider:\n      name: \"{rp}\"\n      domain: {rd}\n    quality: {}\n",
                    sentence(&mut rng, 8),
                    sentence(&mut rng, 25),
                    rng.below(120)
                ));
            }
            t.push_str("secured: \"synthetic\"\n---\n");
            File { name: format!("2020-{month:02}-{day:02}-synthetic-{i}.md"), bytes: t.into_bytes() }
        })
        .collect()
}

/// The clippings of the files that parse.
pub fn parse_all(files: &[File]) -> Vec<(String, Clipping)> {
    files
        .iter()
        .filter_map(|f| Some((f.name.clone(), parse_clipping(&f.bytes, Limits::default()).ok()?.clipping)))
        .collect()
}

/// Items as the daemon makes them (one file per item, no configured topics), newest first.
pub fn items(clippings: &[(String, Clipping)]) -> Vec<Item> {
    let first_seen: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().expect("date");
    let topics = Topics::default();
    let mut items: Vec<Item> = clippings
        .iter()
        .filter_map(|(path, c)| {
            let data = merge_item(&[Source { rel_path: path, clipping: c }], first_seen, &topics)?;
            let key = item_key(c, path);
            Some(Item { id: item_id(&key), updated: first_seen, data })
        })
        .collect();
    items.sort_by(|a, b| b.data.published.cmp(&a.data.published).then_with(|| a.id.cmp(&b.id)));
    items
}

/// A store filled from the clippings in `root` by the daemon's own start-up path (open, first
/// reconcile, render), closed again. Returns the config used.
pub fn ingest(root: &Path, store_path: &Path) -> Arc<Config> {
    let cfg = Arc::new(Config::for_test(root, store_path));
    let store = Store::open(store_path).expect("opening the store");
    let site = Arc::new(ArcSwap::from_pointee(Site::empty()));
    let mut ingest = Ingest::start(cfg.clone(), store, site, Arc::new(Metrics::default()), Heartbeat::new("bench"))
        .expect("starting the writer");
    ingest.reconcile().expect("first reconcile");
    cfg
}

/// Writes files into `dir` (for the ingest and store benches).
pub fn write_files(dir: &Path, files: &[File]) {
    for f in files {
        let p = dir.join(&f.name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("creating a folder");
        }
        std::fs::write(p, &f.bytes).expect("writing a clipping");
    }
}
