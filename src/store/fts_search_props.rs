//! Property tests of `search=` against the real index: any input is a clean parse error or an
//! expression FTS5 accepts, and on random items the matches are exactly those a plain reference
//! evaluation of the documented meaning picks.

use super::*;

const SITES: [(&str, &str); 3] = [("Robot News", "robot.example"), ("Café Daily", "cafe.example"), ("S", "s.example")];
const TOPICS: [&str; 3] = ["ai", "machine-learning", "robot"];

/// A text's words as the tokenizer makes them, for the small alphabet these tests use.
fn tokens(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric() && c != '\u{E000}')
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase().replace('é', "e"))
        .collect()
}

fn term_matches(term: &crate::search::Term, doc: &IndexDoc) -> bool {
    use crate::search::Field;
    let cols: Vec<&str> = match term.field {
        None => vec![&doc.title, &doc.excerpt, &doc.body, &doc.site, &doc.topics],
        Some(Field::Title) => vec![&doc.title],
        Some(Field::Excerpt) => vec![&doc.excerpt],
        Some(Field::Body) => vec![&doc.body],
        Some(Field::Text) => vec![&doc.title, &doc.excerpt, &doc.body],
        Some(Field::Site) => vec![&doc.site],
        Some(Field::Topic) => vec![&doc.topics],
    };
    let want: Vec<String> = term.words.iter().map(|w| w.replace('é', "e")).collect();
    let last = want.len() - 1;
    cols.iter().any(|col| {
        let have = tokens(col);
        have.windows(want.len()).any(|win| {
            win.iter()
                .zip(&want)
                .enumerate()
                .all(|(i, (h, w))| if i == last && term.prefix { h.starts_with(w.as_str()) } else { h == w })
        })
    })
}

fn reference(s: &Search, doc: &IndexDoc) -> bool {
    s.all.iter().all(|g| g.iter().any(|t| term_matches(t, doc))) && !s.none.iter().any(|t| term_matches(t, doc))
}

const FIELDS: [&str; 9] = ["title:", "site:", "topic:", "body:", "text:", "excerpt:", "-", "-title:", ""];

fn query_strategy() -> impl Strategy<Value = String> {
    let word = || proptest::sample::select(&VOCAB[..]).prop_map(String::from);
    let piece = prop_oneof![
        6 => word(),
        2 => Just("OR".to_string()),
        2 => (proptest::sample::select(&FIELDS[..]), word()).prop_map(|(f, w)| format!("{f}{w}")),
        2 => (proptest::sample::select(&FIELDS[..]), word(), word()).prop_map(|(f, a, b)| format!("{f}\"{a} {b}\"")),
        1 => proptest::sample::select(&["mac*", "lea*", "rob*", "caf*", "\"machine lea\"*"][..]).prop_map(String::from),
        1 => proptest::sample::select(&["\"", "*", "-", ":"][..]).prop_map(String::from),
    ];
    proptest::collection::vec((piece, proptest::bool::weighted(0.8)), 1..8)
        .prop_map(|v| v.into_iter().map(|(p, space)| if space { format!("{p} ") } else { p }).collect())
}

fn nasty_strategy() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        proptest::sample::select(
            &[
                "\"", "*", "-", ":", "OR", "NOT", "AND", "NEAR(", ")", "(", "^", "{", "}", "+", " ", "\0", "title:",
                "\u{E000}", "é"
            ][..]
        )
        .prop_map(String::from),
        "[a-z]{1,4}",
        any::<String>(),
    ];
    proptest::collection::vec(piece, 0..20).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Whatever the input, it is a one-line error or runs in FTS5 (alone, and with `q`/`exclude`
    /// and a feed scope) without error.
    #[test]
    fn any_input_is_a_clean_error_or_a_valid_match(input in nasty_strategy(), q in "\\PC{0,12}") {
        let c = filled();
        match Search::parse(&input) {
            Err(e) => prop_assert!(!e.to_string().is_empty() && !e.to_string().contains('\n')),
            Ok(s) => {
                let m = s.to_match();
                prop_assert!(matching(&c, &m.expression(), "feed", &Bounds::default(), 5).is_ok(), "{}", m.expression());
                let enc: String = url::form_urlencoded::byte_serialize(q.as_bytes()).collect();
                if let Ok(f) = Filter::parse(&format!("q={enc}&exclude={enc}"), &FeedKey::All, Utc::now()) {
                    let all = m.and(words_match(&f)).within(&FeedKey::Topic("ai".into()));
                    prop_assert!(matching(&c, &all.expression(), "feed", &Bounds::default(), 5).is_ok(), "{}", all.expression());
                }
            }
        }
    }

    /// On random items, a search finds exactly the items the reference evaluation of its
    /// documented meaning picks, newest first.
    #[test]
    fn matches_follow_the_meaning(
        docs in proptest::collection::vec(
            (text_strategy(), text_strategy(), text_strategy(), 0..SITES.len(), proptest::sample::subsequence(&TOPICS[..], 0..3)),
            1..10,
        ),
        query in query_strategy(),
    ) {
        let Ok(s) = Search::parse(&query) else { return Ok(()) };
        let c = index();
        let items: Vec<Item> = docs.iter().enumerate().map(|(n, (title, excerpt, body, site, topics))| {
            let id = format!("i{n}");
            item(&Spec { id: &id, minutes: n as i64, title, excerpt, body, site: SITES[*site], topics })
        }).collect();
        for it in &items {
            add(&c, it).unwrap();
        }
        let got = found(&c, &s.to_match());
        let want: Vec<String> = items.iter().rev().filter(|it| reference(&s, &IndexDoc::of(it))).map(|it| it.id.clone()).collect();
        prop_assert_eq!(got, want, "search {:?} = {}", query, s.to_match().expression());
    }
}
