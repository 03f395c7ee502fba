//! Syntax tests for `search=`: each operator parsed to its [`Search`] and compiled to its FTS5
//! text, the errors, the canonical form, and the index vocabulary. What the compiled expressions
//! match in a real FTS5 table is tested in `store::fts`.

use super::*;
use proptest::prelude::*;

fn t(field: Option<Field>, words: &[&str], prefix: bool) -> Term {
    Term { field, words: words.iter().map(|w| w.to_string()).collect(), prefix }
}

fn w(words: &[&str]) -> Term {
    t(None, words, false)
}

#[track_caller]
fn parse(s: &str) -> Search {
    Search::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

#[track_caller]
fn err(s: &str) -> SearchError {
    let e = Search::parse(s).expect_err(s);
    assert!(!e.to_string().contains('\n'), "{e}");
    e
}

#[test]
fn words_must_all_match() {
    let s = parse("Robot  ARM");
    assert_eq!(s.all, [vec![w(&["arm"])], vec![w(&["robot"])]]);
    assert!(s.none.is_empty());
    assert_eq!(
        s.to_match().expression(),
        r#"({title excerpt body site topics} : "arm") AND ({title excerpt body site topics} : "robot")"#
    );
    // A word with punctuation inside is its words in order, as for `q`.
    assert_eq!(parse("robot-arm").all, [vec![w(&["robot", "arm"])]]);
    assert_eq!(parse("Don't").all, [vec![w(&["don", "t"])]]);
    // Diacritics and case are kept here; the index's tokenizer folds them on both sides.
    assert_eq!(parse("CAFÉ").all, [vec![w(&["café"])]]);
    // Repeats collapse, order does not matter.
    assert_eq!(parse("b a b"), parse("a b"));
}

#[test]
fn exact_phrases() {
    let s = parse(r#""machine learning" robots"#);
    assert_eq!(s.all, [vec![w(&["machine", "learning"])], vec![w(&["robots"])]]);
    assert_eq!(
        s.to_match().expression(),
        r#"({title excerpt body site topics} : "machine learning") AND ({title excerpt body site topics} : "robots")"#
    );
    // Operators and fields inside quotes are words.
    assert_eq!(parse(r#""title: a OR -b*""#).all, [vec![w(&["title", "a", "or", "b"])]]);
    // A phrase ends at its closing quote even without a space after it.
    assert_eq!(parse(r#""a b"c"#).all, [vec![w(&["a", "b"])], vec![w(&["c"])]]);
}

#[test]
fn or_joins_its_neighbours() {
    let s = parse("rekognition amazon OR aws police");
    assert_eq!(s.all, [vec![w(&["amazon"]), w(&["aws"])], vec![w(&["police"])], vec![w(&["rekognition"])]]);
    assert_eq!(
        s.to_match().expression(),
        "(({title excerpt body site topics} : \"amazon\" OR {title excerpt body site topics} : \"aws\")) AND \
         ({title excerpt body site topics} : \"police\") AND ({title excerpt body site topics} : \"rekognition\")"
    );
    assert_eq!(parse("a OR b OR \"c d\"").all, [vec![w(&["a"]), w(&["b"]), w(&["c", "d"])]]);
    // Only upper-case OR standing alone is the operator.
    assert_eq!(parse("cats or dogs").all.len(), 3);
    assert_eq!(parse("ORACLE").all, [vec![w(&["oracle"])]]);
    assert_eq!(err("OR a"), SearchError::DanglingOr);
    assert_eq!(err("a OR"), SearchError::DanglingOr);
    assert_eq!(err("a OR OR b"), SearchError::DanglingOr);
    assert_eq!(err("a OR -b"), SearchError::ExcludedInOr);
    assert_eq!(err("-a OR b"), SearchError::ExcludedInOr);
}

#[test]
fn exclusions() {
    let s = parse(r#"robots -warehouse -"web 3" -site:example.com"#);
    assert_eq!(s.all, [vec![w(&["robots"])]]);
    assert_eq!(s.none, [w(&["warehouse"]), w(&["web", "3"]), t(Some(Field::Site), &["example", "com"], false)]);
    assert_eq!(
        s.to_match().expression(),
        "(({title excerpt body site topics} : \"robots\")) NOT (({title excerpt body site topics} : \"warehouse\") OR \
         ({title excerpt body site topics} : \"web 3\") OR ({site} : \"example com\"))"
    );
    // A hyphen inside a word or alone is no exclusion.
    assert_eq!(parse("e-mail").all, [vec![w(&["e", "mail"])]]);
    assert_eq!(parse("a - b").all.len(), 2);
    assert_eq!(err("-a -b"), SearchError::OnlyExclusions);
}

#[test]
fn prefixes() {
    let s = parse("robo*");
    assert_eq!(s.all, [vec![t(None, &["robo"], true)]]);
    assert_eq!(s.to_match().expression(), r#"({title excerpt body site topics} : "robo" *)"#);
    assert_eq!(parse(r#""machine lear"*"#).all, [vec![t(None, &["machine", "lear"], true)]]);
    assert_eq!(parse("title:rek*").all, [vec![t(Some(Field::Title), &["rek"], true)]]);
    assert_eq!(parse("abc**").all, [vec![t(None, &["abc"], true)]]);
    assert!(matches!(err("ro*"), SearchError::PrefixTooShort(_)));
    assert!(matches!(err("robot-a*"), SearchError::PrefixTooShort(_)));
    assert!(matches!(err(r#""a b"*"#), SearchError::PrefixTooShort(_)));
    // Three letters of any script count.
    assert_eq!(parse("été*").all, [vec![t(None, &["été"], true)]]);
    // A star inside quotes or inside a word is punctuation.
    assert_eq!(parse(r#""robo*""#).all, [vec![w(&["robo"])]]);
    assert_eq!(parse("a*b").all, [vec![w(&["a", "b"])]]);
    assert_eq!(err("***"), SearchError::Empty);
}

#[test]
fn fields() {
    let cases = [
        ("title:robots", Field::Title, "{title}"),
        ("excerpt:robots", Field::Excerpt, "{excerpt}"),
        ("body:robots", Field::Body, "{body}"),
        ("text:robots", Field::Text, "{title excerpt body}"),
        ("site:robots", Field::Site, "{site}"),
        ("topic:robots", Field::Topic, "{topics}"),
        ("TITLE:Robots", Field::Title, "{title}"),
    ];
    for (input, field, columns) in cases {
        let s = parse(input);
        assert_eq!(s.all, [vec![t(Some(field), &["robots"], false)]], "{input}");
        assert_eq!(s.to_match().expression(), format!("({columns} : \"robots\")"));
    }
    assert_eq!(parse(r#"site:"daily dot""#).all, [vec![t(Some(Field::Site), &["daily", "dot"], false)]]);
    assert_eq!(parse("-topic:crypto x").none, [t(Some(Field::Topic), &["crypto"], false)]);
    assert_eq!(err("author:smith"), SearchError::UnknownField("author".into()));
    assert_eq!(err("re:Invent"), SearchError::UnknownField("re".into()));
    assert_eq!(parse(r#""re:Invent""#).all, [vec![w(&["re", "invent"])]]);
    assert_eq!(err("title: robots"), SearchError::EmptyField("title".into()));
    assert_eq!(err("robots site:"), SearchError::EmptyField("site".into()));
    // A colon after anything but letters is punctuation.
    assert_eq!(parse("10:30").all, [vec![w(&["10", "30"])]]);
    assert_eq!(err("a:b"), SearchError::UnknownField("a".into()));
}

#[test]
fn errors() {
    assert_eq!(err(""), SearchError::Empty);
    assert_eq!(err("  \t "), SearchError::Empty);
    assert_eq!(err("!!! ... --"), SearchError::Empty);
    assert_eq!(err(r#"robots "machine learning"#), SearchError::UnbalancedQuote(8));
    assert_eq!(err(r#"""#), SearchError::UnbalancedQuote(1));
    let many = (0..=MAX_TERMS).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ");
    assert_eq!(err(&many), SearchError::TooManyTerms);
    let ok = (0..MAX_TERMS).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" OR ");
    assert_eq!(parse(&ok).all[0].len(), MAX_TERMS, "sides of OR count as terms, up to the bound");
    assert!(matches!(err(&"x".repeat(MAX_TERM_CHARS + 1)), SearchError::TermTooLong(_)));
    assert_eq!(parse(&"é".repeat(MAX_TERM_CHARS)).all.len(), 1);
    assert_eq!(err(&"a ".repeat(MAX_SEARCH_CHARS / 2 + 1)), SearchError::TooLong);
    let messages = [
        (r#"a "b"#, "the quote at character 3 is never closed"),
        ("ro*", "\"ro*\": a prefix needs at least 3 letters or digits before the '*'"),
        ("-a", "only excluded terms: give at least one word to search for"),
        (
            "foo:bar",
            "unknown field 'foo:' (fields are title, excerpt, body, text, site and topic); to search for the words themselves, put them in quotes",
        ),
        ("a OR", "OR needs a term on each side"),
    ];
    for (input, message) in messages {
        assert_eq!(err(input).to_string(), message);
    }
}

#[test]
fn canonical_text_parses_back() {
    let s = parse(r#"b OR title:"x yes"* -site:vice a"#);
    assert_eq!(s.to_string(), r#"a b OR title:"x yes"* -site:vice"#);
    assert_eq!(parse(&s.to_string()), s);
    let turkish = parse("İstanbul");
    assert_eq!(parse(&turkish.to_string()), turkish);
}

/// The expression with every FTS5 string taken out: what is left must be our own syntax.
fn outside_strings(expr: &str) -> String {
    let mut out = String::new();
    let mut in_string = false;
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        match (in_string, c) {
            (false, '"') => in_string = true,
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
            }
            (true, '"') => {
                in_string = false;
                out.push_str(" S ");
            }
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    assert!(!in_string, "unterminated string in {expr}");
    out
}

/// Whether the expression is made of our syntax around quoted strings, each of which holds only
/// letters, digits and spaces.
#[track_caller]
fn assert_inert(expr: &str) {
    let ours = ["{title", "excerpt", "body", "site", "topics}", "{title}", "{excerpt}", "{body}", "{site}", "{topics}"];
    let ours2 = ["{tw", "xw}", "{scope}", "{title excerpt body}", "AND", "OR", "NOT", "S", ":", "*", "(", ")"];
    let spaced = outside_strings(expr).replace('(', " ( ").replace(')', " ) ");
    for piece in spaced.split_whitespace() {
        assert!(ours.contains(&piece) || ours2.contains(&piece), "{piece:?} in {expr}");
    }
    for (i, s) in expr.split('"').enumerate() {
        if i % 2 == 1 {
            assert!(s.chars().all(|c| c.is_alphanumeric() || c == ' '), "{s:?} in {expr}");
        }
    }
}

#[test]
fn fts5_syntax_in_a_search_is_text() {
    let inputs = [
        "NEAR(a b, 3)",
        "a AND b",
        "a NOT b",
        "^start",
        r#""a" + "b""#,
        "{title body}:x",
        "title : x",
        "(a OR b)",
        "a\0b",
        "x\u{1}y\u{7f}z",
        "\u{202e}evil\u{200b}",
        "東京 ロボット",
        r#"a "" b"#,
        "a\"\"b\"",
        "rowid:1",
    ];
    for input in inputs {
        match Search::parse(input) {
            Ok(s) => assert_inert(&s.to_match().expression()),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
    assert_eq!(parse("a AND b").all, [vec![w(&["a"])], vec![w(&["and"])], vec![w(&["b"])]]);
    assert_eq!(parse("NEAR(a b, 3)").all, [vec![w(&["3"])], vec![w(&["b"])], vec![w(&["near", "a"])]]);
    assert_eq!(parse("a\0b").all, [vec![w(&["a"])], vec![w(&["b"])]], "control characters separate");
    assert_eq!(err("rowid:1"), SearchError::UnknownField("rowid".into()));
}

#[test]
fn q_and_exclude_compile_to_the_exact_columns() {
    let f = Filter {
        q: vec![text::words("machine learning"), text::words("Café")],
        exclude: vec![text::words("zzz")],
        ..Filter::default()
    };
    let m = words_match(&f);
    let ascii = |p: &str, exact: &str| {
        format!(
            "(({{title}} : \"{p}\") NOT {{scope}} : \"xt\") OR (({{excerpt}} : \"{p}\") NOT {{scope}} : \"xx\") OR ({{tw xw}} : \"{exact}\")"
        )
    };
    assert_eq!(
        m.expression(),
        format!(
            "(({}) AND ({{tw xw}} : \"zz636166c3a9\")) NOT (({}))",
            ascii("machine learning", "machine learning"),
            ascii("zzz", "zz7a7a7a")
        )
    );
    let only_exclude = Filter { exclude: vec![text::words("web3")], ..Filter::default() };
    assert_eq!(
        words_match(&only_exclude).expression(),
        format!("({{scope}} : \"all\") NOT (({}))", ascii("web3", "web3"))
    );
    assert!(words_match(&Filter::default()).is_empty());
    let scoped = Match::default().within(&FeedKey::Topic("ai".into())).within(&FeedKey::Provider("a.b".into()));
    assert_eq!(scoped.expression(), "({scope} : \"t6169\") AND ({scope} : \"p612e62\")");
    assert_eq!(Match::default().within(&FeedKey::All).expression(), "{scope} : \"all\"");
}

#[test]
fn exact_tokens() {
    assert_eq!(exact_token("robot"), "robot");
    assert_eq!(exact_token("3d"), "3d");
    assert_eq!(exact_token("café"), "zz636166c3a9");
    assert_eq!(exact_token("zz"), "zz7a7a");
    assert_eq!(exact_words("A Café, the ZZ top!"), "a zz636166c3a9 the zz7a7a top");
}

#[test]
fn body_text_drops_tags_and_decodes() {
    assert_eq!(
        body_text("<p>Robots &amp; arms</p><p>x&lt;y<br/>z</p>").split_whitespace().collect::<Vec<_>>(),
        ["Robots", "&", "arms", "x<y", "z"]
    );
    assert_eq!(body_text("a<b"), "a ");
}

#[test]
fn index_doc_of_an_item() {
    let clip = crate::clip::parse(
        b"---\ntitle: Robots arrive\nexcerpt: In Paris.\nprovider:\n  name: The Wire\n  domain: wire.example\n---\nSome *body* text.\n",
        crate::clip::Limits::default(),
    )
    .unwrap()
    .clipping;
    let topics = vec![
        crate::item::TopicRef { slug: "ai".into(), name: "AI".into() },
        crate::item::TopicRef { slug: "aws-ai".into(), name: "AWS AI".into() },
    ];
    let item = crate::item::Item {
        id: "id".into(),
        updated: chrono::Utc::now(),
        data: crate::item::ItemData { clip, topics, published: chrono::Utc::now(), dated: true, also: Vec::new() },
    };
    let d = IndexDoc::of(&item);
    assert_eq!(d.title, "Robots arrive");
    assert_eq!((d.tw.as_str(), d.xw.as_str()), ("", ""), "plain text needs no exact copy");
    assert_eq!(d.body.split_whitespace().collect::<Vec<_>>(), ["Some", "body", "text."]);
    assert_eq!(d.site, "The Wire wire.example");
    assert_eq!(d.topics, "AI ai \u{E000} AWS AI aws-ai");
    assert_eq!(d.scope, "all t6169 t6177732d6169 p776972652e6578616d706c65");
    let mut item = item;
    item.data.clip.title = "Le Café’s “robots” — ZZ".into();
    item.data.clip.excerpt = Some("Déjà vu".into());
    let d = IndexDoc::of(&item);
    assert_eq!(d.tw, "le zz636166c3a9 s robots zz7a7a");
    assert_eq!(d.xw, "zz64c3a96ac3a0 vu");
    assert!(d.scope.ends_with(" xt xx"), "{}", d.scope);
}

#[test]
fn plain_text_is_ascii_and_common_punctuation() {
    assert!(is_plain("Robots, again: “quoted” — it’s 5 € … «ok» ¿no? 3×4"));
    assert!(!is_plain("Café"));
    assert!(!is_plain("a²"), "a superscript digit is a word character");
    assert!(!is_plain("x\u{E000}y"));
    assert!(!is_plain("e\u{301}"));
    assert!(!is_plain("東京"));
}

/// Inputs that look like search syntax gone wrong.
fn nasty() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("\"".to_string()),
        Just("*".to_string()),
        Just("-".to_string()),
        Just(":".to_string()),
        Just(" OR ".to_string()),
        Just(" NOT ".to_string()),
        Just("NEAR(".to_string()),
        Just(")".to_string()),
        Just("^".to_string()),
        Just("title:".to_string()),
        Just("site:".to_string()),
        Just("{body}".to_string()),
        Just(" ".to_string()),
        Just("\0".to_string()),
        "[a-zé]{1,5}",
        "\\PC{1,3}",
        any::<char>().prop_map(String::from),
    ];
    proptest::collection::vec(piece, 0..30).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn any_input_is_a_clean_error_or_inert_fts5(input in nasty()) {
        match Search::parse(&input) {
            Ok(s) => {
                assert_inert(&s.to_match().expression());
                prop_assert_eq!(Search::parse(&s.to_string()), Ok(s));
            }
            Err(e) => prop_assert!(!e.to_string().is_empty() && !e.to_string().contains('\n')),
        }
    }

    #[test]
    fn exact_tokens_are_one_to_one(a in "\\PC{1,6}", b in "\\PC{1,6}") {
        let (a, b) = (a.to_lowercase(), b.to_lowercase());
        prop_assert_eq!(a == b, exact_token(&a) == exact_token(&b));
    }
}
