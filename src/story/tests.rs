//! Tests of the grouping as a whole, on made-up clippings: every pair the verdict joins is
//! found by key lookup, incremental decisions in any arrival order give the same stories and
//! ids as grouping the whole set, and removals split stories as they should.

use proptest::prelude::*;

use super::group::components_of;
use super::*;
use crate::clip::{Clipping, Related};

/// Words of made-up events: each event's clippings draw on its own rare words.
const EVENTS: &[&[&str]] = &[
    &["zorvex", "acquires", "plimbo", "robotics", "startup", "oxford", "spinoff", "simulation"],
    &["kestrel", "bans", "drone", "deliveries", "lagos", "regulator", "airspace", "permit"],
    &["quilfen", "recalls", "insulin", "pumps", "firmware", "patients", "dosing", "fault"],
    &["marrowby", "council", "opens", "sensor", "data", "privacy", "safeguards", "residents"],
    &["tovani", "chip", "photonic", "matrix", "multiplier", "lightmatter", "wafer", "fab"],
];

const DAY: i64 = 86_400;

fn clipping(title: String, excerpt: String, published: Option<i64>, url: Option<String>) -> Clipping {
    Clipping {
        title,
        excerpt: Some(excerpt),
        published: published.and_then(|t| chrono::DateTime::from_timestamp(t, 0)),
        url,
        link_only: false,
        provider: None,
        topics: Vec::new(),
        images: Vec::new(),
        related: Vec::new(),
        quality: None,
        unpublished: false,
        kind: None,
        content_html: None,
    }
}

/// A mix of clippings: several per event (headlines and excerpts reworded from a shuffled pick
/// of the event's words), exact reprints, a copy under a second URL with a tracking parameter,
/// related links between events, undated ones, and unrelated ones.
fn made_up() -> Vec<(String, Features)> {
    let mut out = Vec::new();
    let base = 1_700_000_000;
    for (e, words) in EVENTS.iter().enumerate() {
        let when = base + (e as i64) * 3 * DAY;
        for k in 0..5usize {
            let pick = |n: usize, skip: usize| -> Vec<&str> { (0..n).map(|i| words[(i * 3 + skip + k) % 8]).collect() };
            // Headlines open alike (the event's first three words) and go on differently.
            let title = format!("{} {} the new {}", words[..3].join(" "), "announces", pick(2, 5).join(" "));
            let excerpt =
                format!("Reports say {} while officials {} today.", pick(6, 1).join(" "), pick(3, 2).join(" "));
            let published = if k == 4 { None } else { Some(when + (k as i64) * DAY / 3) };
            let mut c = clipping(title, excerpt, published, Some(format!("https://site{k}.example/e{e}/a{k}")));
            if k == 1 {
                c.related.push(Related {
                    title: "elsewhere".into(),
                    url: format!("https://site0.example/e{}/a0", (e + 1) % EVENTS.len()),
                    provider: None,
                    published: None,
                });
            }
            out.push((format!("e{e}-{k}"), Features::of(&c)));
            if k == 2 {
                // A reprint a month later, and the same article under a tracking URL.
                let mut reprint = c.clone();
                reprint.url = Some(format!("https://reprints.example/e{e}"));
                reprint.published = chrono::DateTime::from_timestamp(when + 30 * DAY, 0);
                out.push((format!("e{e}-reprint"), Features::of(&reprint)));
                let mut tracked = c.clone();
                tracked.url = Some(format!("https://site{k}.example/e{e}/a{k}?utm_source=feed"));
                out.push((format!("e{e}-tracked"), Features::of(&tracked)));
            }
        }
    }
    // A hub joined to three spokes that share too little with each other: arriving last, it
    // merges three stories at once.
    let spokes = [["velmora", "tidal", "turbine"], ["crestwick", "grid", "battery"], ["ondrel", "hydrogen", "ferry"]];
    let hub_title = "Velmora tidal turbine, Crestwick grid battery and Ondrel hydrogen ferry win the prize";
    let hub = clipping(hub_title.into(), hub_title.into(), Some(base + 40 * DAY), None);
    out.push(("hub".to_string(), Features::of(&hub)));
    for (n, w) in spokes.iter().enumerate() {
        let title = format!("{} {} {} wins the prize", w[0], w[1], w[2]);
        let excerpt = format!("The {} {} {} from {} won the prize.", w[1], w[2], "team", w[0]);
        let at = Some(base + 40 * DAY + (n as i64 + 1) * 3600);
        out.push((format!("spoke-{n}"), Features::of(&clipping(title, excerpt, at, None))));
    }
    for n in 0..6 {
        let title = format!("Weekly roundup number {n} of gadgets and apps");
        let excerpt = "A look at phones, laptops and the apps people used this week.".to_string();
        out.push((format!("noise-{n}"), Features::of(&clipping(title, excerpt, Some(base + n * DAY), None))));
    }
    out
}

fn members(set: &[(String, Features)]) -> Vec<Member<'_>> {
    set.iter().map(|(item, features)| Member { item, features }).collect()
}

#[test]
fn made_up_events_group_as_written() {
    let set = made_up();
    let (story, founders) = group(&Params::DEFAULT, &members(&set));
    let of = |name: &str| story[set.iter().position(|(n, _)| n == name).unwrap()];
    for e in 0..EVENTS.len() {
        let s = of(&format!("e{e}-0"));
        for k in ["1", "2", "3", "4", "reprint", "tracked"] {
            assert_eq!(of(&format!("e{e}-{k}")), s, "e{e}-{k} should join event {e}");
        }
        assert_eq!(founders[s].item, format!("e{e}-0"), "the earliest dated member founds the story");
    }
    let events: std::collections::HashSet<usize> = (0..EVENTS.len()).map(|e| of(&format!("e{e}-0"))).collect();
    assert_eq!(events.len(), EVENTS.len(), "related links alone join no events");
    for n in 0..6 {
        assert!(!events.contains(&of(&format!("noise-{n}"))));
    }
    let p = Params::DEFAULT;
    let get = |name: &str| &set.iter().find(|(n, _)| n == name).unwrap().1;
    for n in 0..3 {
        assert!(judge(&p, get("hub"), get(&format!("spoke-{n}"))).is_some(), "hub and spoke {n}");
        assert_eq!(of(&format!("spoke-{n}")), of("hub"));
    }
    assert!(judge(&p, get("spoke-0"), get("spoke-1")).is_none(), "spokes apart");
}

#[test]
fn key_lookup_finds_every_joined_pair() {
    let set = made_up();
    let p = Params::DEFAULT;
    let mut index = Index::default();
    for (n, (_, f)) in set.iter().enumerate() {
        index.insert(n as u32, f);
    }
    let mut joined = 0;
    for (i, (_, a)) in set.iter().enumerate() {
        let found = index.candidates(a, window_days(&p));
        for (j, (_, b)) in set.iter().enumerate() {
            if i != j && judge(&p, a, b).is_some() {
                joined += 1;
                assert!(found.contains(&(j as u32)), "{} → {} joined but not a candidate", set[i].0, set[j].0);
            }
        }
    }
    assert!(joined > 50, "the set exercises the verdict ({joined} joined pairs)");
    let (by_keys, _) = group(&p, &members(&set));
    let (brute, _) = components_of(&p, &members(&set));
    assert_eq!(by_keys, brute);
}

/// The writer's side, in memory: apply [`decide`] for each arrival.
#[derive(Default)]
struct Writer<'a> {
    index: Index,
    stored: Vec<(&'a str, &'a Features, Founder)>,
}

impl<'a> Writer<'a> {
    fn add(&mut self, item: &'a str, features: &'a Features) -> Decision {
        let found = self.index.candidates(features, window_days(&Params::DEFAULT));
        let candidates: Vec<Candidate<'_>> = found
            .iter()
            .map(|&n| {
                let (item, features, story) = &self.stored[n as usize];
                Candidate { item, features, story }
            })
            .collect();
        let decision = decide(&Params::DEFAULT, Member { item, features }, &candidates);
        if let Decision::Merge { into, retired } = &decision {
            for s in self.stored.iter_mut().filter(|s| retired.contains(&s.2)) {
                s.2 = into.clone();
            }
        }
        self.index.insert(self.stored.len() as u32, features);
        self.stored.push((item, features, decision.founder().clone()));
        decision
    }

    /// Each item's story id.
    fn ids(&self) -> std::collections::BTreeMap<&'a str, String> {
        self.stored.iter().map(|(item, _, f)| (*item, f.story_id())).collect()
    }
}

fn batch_ids(set: &[(String, Features)]) -> std::collections::BTreeMap<&str, String> {
    let (story, founders) = group(&Params::DEFAULT, &members(set));
    set.iter().zip(story).map(|((item, _), s)| (item.as_str(), founders[s].story_id())).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any arrival order of any subset gives the stories and ids of grouping that subset at once.
    #[test]
    fn arrival_order_does_not_matter(order in Just((0..made_up().len()).collect::<Vec<_>>()).prop_shuffle(), keep in 10usize..45) {
        let all = made_up();
        let kept: Vec<usize> = order.iter().copied().filter(|&i| i < keep.min(all.len())).collect();
        let mut writer = Writer::default();
        for &i in &kept {
            writer.add(&all[i].0, &all[i].1);
        }
        let mut subset: Vec<(String, Features)> = kept.iter().map(|&i| all[i].clone()).collect();
        subset.sort_by(|a, b| a.0.cmp(&b.0));
        prop_assert_eq!(writer.ids(), batch_ids(&subset));
    }
}

#[test]
fn a_story_keeps_its_id_as_coverage_joins() {
    let set = made_up();
    let get = |name: &str| set.iter().find(|(n, _)| n == name).unwrap();
    let mut writer = Writer::default();
    let (first, f0) = get("e1-0");
    assert_eq!(writer.add(first, f0), Decision::Start(Founder::new(first, f0.published)));
    let id = Founder::new(first, f0.published).story_id();
    for later in ["e1-1", "e1-2", "e1-4", "e1-reprint"] {
        let (item, f) = get(later);
        let d = writer.add(item, f);
        assert!(matches!(d, Decision::Join(_)), "{later}: {d:?}");
        assert_eq!(d.founder().story_id(), id);
    }
}

#[test]
fn an_older_newcomer_takes_over_and_merges() {
    let set = made_up();
    let get = |name: &str| set.iter().find(|(n, _)| n == name).unwrap();
    let mut writer = Writer::default();
    let (a, fa) = get("e2-3");
    let (b, fb) = get("e2-0");
    writer.add(a, fa);
    let d = writer.add(b, fb);
    let (old, new) = (Founder::new(a, fa.published), Founder::new(b, fb.published));
    assert_eq!(d, Decision::Merge { into: new.clone(), retired: vec![old] });
    assert!(writer.ids().values().all(|id| *id == new.story_id()));
}

#[test]
fn removing_a_bridge_splits_and_the_founders_part_keeps_the_id() {
    // a–b–c joined only through b (a and c share too little), d separate.
    let p = Params::DEFAULT;
    let base = 1_700_000_000;
    let mk = |t: &str, e: &str, at: i64| Features::of(&clipping(t.into(), e.into(), Some(base + at), None));
    let a = mk("Zorvex acquires Plimbo robotics", "Zorvex bought the Oxford spinoff Plimbo for its simulators.", 0);
    let b = mk(
        "Zorvex acquires Plimbo, plans Lagos drone lab",
        "Zorvex bought the Oxford spinoff Plimbo and will open a drone lab in Lagos with Kestrel.",
        3600,
    );
    let c = mk("Kestrel and Zorvex plan Lagos drone lab", "The drone lab in Lagos will be run with Kestrel.", 7200);
    assert!(judge(&p, &a, &b).is_some() && judge(&p, &b, &c).is_some(), "the bridge joins both sides");
    assert!(judge(&p, &a, &c).is_none(), "the ends do not join directly");
    let all =
        [Member { item: "a", features: &a }, Member { item: "b", features: &b }, Member { item: "c", features: &c }];
    let (story, _) = group(&p, &all);
    assert!(story.iter().all(|&s| s == story[0]));
    let parts = split(&p, &[all[0], all[2]]);
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0], (Founder::new("a", a.published), vec![0]), "the founder's part comes first");
    assert_eq!(parts[1], (Founder::new("c", c.published), vec![1]));
}

#[test]
fn founders_order_dated_before_undated_then_time_then_id() {
    let undated = Founder::new("a", None);
    let late = Founder::new("z", Some(10));
    let early_b = Founder::new("b", Some(5));
    let early_c = Founder::new("c", Some(5));
    let mut v = vec![undated.clone(), late.clone(), early_c.clone(), early_b.clone()];
    v.sort();
    assert_eq!(v, [early_b, early_c, late, undated]);
    assert_ne!(Founder::new("a", None).story_id(), Founder::new("b", None).story_id());
    assert_eq!(Founder::new("a", Some(1)).story_id(), Founder::new("a", None).story_id(), "the id names the item");
}
