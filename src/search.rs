//! Full-text search, the pure half: the `search=` syntax (words, `"phrases"`, `OR`, `-excluded`,
//! `prefix*`, `title:`-style fields) parsed into a [`Search`], and its compilation, and that of
//! the `q` and `exclude` filters, into FTS5 MATCH expressions. Also the index's own vocabulary:
//! how an item's words and feeds become the hidden columns the store indexes, so the documents
//! and the queries over them are spelt by one owner.
//!
//! Safety rule: every piece of user text reaches FTS5 as a double-quoted string made of letters,
//! digits and spaces only, so nothing a user types is ever read as FTS5 syntax (`NEAR`, `AND`,
//! `^`, `*`, `:`, parentheses, column names). Operators and column filters come from here alone.
//!
//! The index (see `store::fts`) has these columns, all under one tokenizer (`unicode61` folding
//! case and diacritics): `title`, `excerpt`, `body`, `site` (news site name and domain), `topics`
//! (names and slugs) for `search=`; `tw` and `xw`, the words of a title or excerpt that the
//! tokenizer would not split as `q` does, in the exact form `q` compares (see [`words_match`]);
//! `scope`, one token per feed the item is in, and flags.

use std::fmt;

use crate::feed::FeedKey;
use crate::filter::Filter;
use crate::text;

/// At most this many terms (words, phrases, prefixes, each side of an `OR`) in one search.
pub const MAX_TERMS: usize = 20;
/// Each term at most this many characters, as written (quotes and field name aside).
pub const MAX_TERM_CHARS: usize = 100;
/// The whole search at most this many characters.
pub const MAX_SEARCH_CHARS: usize = 1000;
/// A prefix (`robo*`) needs at least this many letters or digits before the `*`.
pub const MIN_PREFIX_CHARS: usize = 3;

/// The part of an item a term is restricted to. Without a field, a term matches any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    Title,
    Excerpt,
    Body,
    /// Title, excerpt or body: the clipping's own words, not its news site or topics.
    Text,
    /// The news site's name or domain.
    Site,
    /// A topic's name or slug.
    Topic,
}

impl Field {
    const ALL: [Field; 6] = [Field::Title, Field::Excerpt, Field::Body, Field::Text, Field::Site, Field::Topic];

    /// The name written before the colon.
    pub fn name(self) -> &'static str {
        match self {
            Field::Title => "title",
            Field::Excerpt => "excerpt",
            Field::Body => "body",
            Field::Text => "text",
            Field::Site => "site",
            Field::Topic => "topic",
        }
    }

    /// The FTS5 column filter a term in this field gets.
    fn columns(field: Option<Field>) -> &'static str {
        match field {
            None => "{title excerpt body site topics}",
            Some(Field::Title) => "{title}",
            Some(Field::Excerpt) => "{excerpt}",
            Some(Field::Body) => "{body}",
            Some(Field::Text) => "{title excerpt body}",
            Some(Field::Site) => "{site}",
            Some(Field::Topic) => "{topics}",
        }
    }
}

/// One word, phrase or prefix: its words (lowercase runs of letters and digits, as
/// [`text::words`] makes them), in order; all must appear next to each other.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Term {
    pub field: Option<Field>,
    pub words: Vec<String>,
    /// The last word is a prefix (`robo*` matches robot, robotics).
    pub prefix: bool,
}

/// A parsed search: every group must match (a group matches when any of its terms does), and no
/// excluded term may. Groups and terms are sorted and unique, so equal searches compare equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Search {
    pub all: Vec<Vec<Term>>,
    pub none: Vec<Term>,
}

/// Why a search cannot be used; its text is one line for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    #[error("no words to search for (give letters or digits)")]
    Empty,
    #[error("longer than {MAX_SEARCH_CHARS} characters")]
    TooLong,
    #[error("the quote at character {0} is never closed")]
    UnbalancedQuote(usize),
    #[error("more than {MAX_TERMS} terms")]
    TooManyTerms,
    #[error("{0:?} is longer than {MAX_TERM_CHARS} characters")]
    TermTooLong(String),
    #[error("{0:?}: a prefix needs at least {MIN_PREFIX_CHARS} letters or digits before the '*'")]
    PrefixTooShort(String),
    #[error("only excluded terms: give at least one word to search for")]
    OnlyExclusions,
    #[error(
        "unknown field '{0}:' (fields are title, excerpt, body, text, site and topic); to search for the words themselves, put them in quotes"
    )]
    UnknownField(String),
    #[error("'{0}:' needs a word or a phrase right after it")]
    EmptyField(String),
    #[error("OR needs a term on each side")]
    DanglingOr,
    #[error("an excluded term (-word) cannot be a side of OR")]
    ExcludedInOr,
}

/// A lexed piece of a search: `OR`, or one term as written.
#[derive(Debug)]
enum Piece {
    Or,
    Term { negated: bool, field: Option<Field>, raw: String, prefix: bool },
}

impl Search {
    /// Parses a search as a user wrote it (already URL-decoded).
    pub fn parse(input: &str) -> Result<Search, SearchError> {
        if input.chars().count() > MAX_SEARCH_CHARS {
            return Err(SearchError::TooLong);
        }
        let pieces = lex(input)?;
        let mut all: Vec<Vec<Term>> = Vec::new();
        let mut none: Vec<Term> = Vec::new();
        let (mut count, mut or_pending, mut last_negated) = (0, false, false);
        for piece in pieces {
            let (negated, field, raw, prefix) = match piece {
                Piece::Or if or_pending || (all.is_empty() && none.is_empty()) => return Err(SearchError::DanglingOr),
                Piece::Or if last_negated => return Err(SearchError::ExcludedInOr),
                Piece::Or => {
                    or_pending = true;
                    continue;
                }
                Piece::Term { negated, field, raw, prefix } => (negated, field, raw, prefix),
            };
            if or_pending && negated {
                return Err(SearchError::ExcludedInOr);
            }
            let Some(term) = term(field, &raw, prefix)? else {
                // Nothing searchable in it (punctuation alone): it drops out.
                last_negated = false;
                continue;
            };
            count += 1;
            if count > MAX_TERMS {
                return Err(SearchError::TooManyTerms);
            }
            match (negated, or_pending, all.last_mut()) {
                (true, _, _) => none.push(term),
                (false, true, Some(group)) => group.push(term),
                (false, _, _) => all.push(vec![term]),
            }
            (or_pending, last_negated) = (false, negated);
        }
        if or_pending {
            return Err(SearchError::DanglingOr);
        }
        if all.is_empty() {
            return Err(if none.is_empty() { SearchError::Empty } else { SearchError::OnlyExclusions });
        }
        for group in &mut all {
            group.sort();
            group.dedup();
        }
        all.sort();
        all.dedup();
        none.sort();
        none.dedup();
        Ok(Search { all, none })
    }

    /// The FTS5 form: every group is a conjunct, every excluded term a negation.
    pub fn to_match(&self) -> Match {
        let must = self
            .all
            .iter()
            .map(|g| match g.as_slice() {
                [one] => one.fts(),
                many => format!("({})", many.iter().map(Term::fts).collect::<Vec<_>>().join(" OR ")),
            })
            .collect();
        Match { must, must_not: self.none.iter().map(Term::fts).collect() }
    }
}

/// The canonical text of a search, which parses back to the same [`Search`].
impl fmt::Display for Search {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| {
            let s = if first { "" } else { " " };
            first = false;
            f.write_str(s)
        };
        for group in &self.all {
            sep(f)?;
            for (i, t) in group.iter().enumerate() {
                write!(f, "{}{t}", if i > 0 { " OR " } else { "" })?;
            }
        }
        for t in &self.none {
            sep(f)?;
            write!(f, "-{t}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(field) = self.field {
            write!(f, "{}:", field.name())?;
        }
        match self.words.as_slice() {
            [one] => f.write_str(one)?,
            many => write!(f, "\"{}\"", many.join(" "))?,
        }
        if self.prefix {
            f.write_str("*")?;
        }
        Ok(())
    }
}

impl Term {
    fn fts(&self) -> String {
        let star = if self.prefix { " *" } else { "" };
        format!("{} : {}{star}", Field::columns(self.field), quote(&self.words.join(" ")))
    }
}

/// Builds a term from its text as written; `None` when it has no letters or digits.
fn term(field: Option<Field>, raw: &str, prefix: bool) -> Result<Option<Term>, SearchError> {
    if raw.chars().count() > MAX_TERM_CHARS {
        return Err(SearchError::TermTooLong(raw.to_string()));
    }
    // Twice: lowercasing can make characters that are no letters (`İ` gives `i` and a combining
    // dot), and the canonical text must give the same words again.
    let words: Vec<String> = text::words(&text::words(raw)).split_whitespace().map(str::to_string).collect();
    let Some(last) = words.last() else {
        return Ok(None);
    };
    if prefix && last.chars().count() < MIN_PREFIX_CHARS {
        return Err(SearchError::PrefixTooShort(format!("{raw}*")));
    }
    Ok(Some(Term { field, words, prefix }))
}

/// Splits a search into pieces: `OR` (upper case, standing alone), and terms, each with its
/// leading `-`, its `field:` and a trailing `*`. White space and control characters separate.
fn lex(input: &str) -> Result<Vec<Piece>, SearchError> {
    let chars: Vec<char> = input.chars().collect();
    let is_gap = |c: char| c.is_whitespace() || c.is_control();
    let mut pieces = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if is_gap(chars[i]) {
            i += 1;
            continue;
        }
        let end_of_bare =
            |from: usize| (from..chars.len()).find(|&j| is_gap(chars[j]) || chars[j] == '"').unwrap_or(chars.len());
        let stop = end_of_bare(i);
        if chars[i..stop] == ['O', 'R'] && chars.get(stop) != Some(&'"') {
            pieces.push(Piece::Or);
            i = stop;
            continue;
        }
        let negated = chars[i] == '-' && chars.get(i + 1).is_some_and(|&c| !is_gap(c));
        if negated {
            i += 1;
        }
        let field = field_at(&chars[i..])?;
        if let Some((field, len)) = field {
            i += len;
            if chars.get(i).is_none_or(|&c| is_gap(c)) {
                return Err(SearchError::EmptyField(field.name().to_string()));
            }
        }
        // A phrase is a prefix when a star follows its closing quote, a word when it ends in one.
        let (raw, prefix, next) = if chars[i] == '"' {
            let close = (i + 1..chars.len()).find(|&j| chars[j] == '"').ok_or(SearchError::UnbalancedQuote(i + 1))?;
            let stars = chars[close + 1..].iter().take_while(|&&c| c == '*').count();
            (chars[i + 1..close].iter().collect::<String>(), stars > 0, close + 1 + stars)
        } else {
            let stop = end_of_bare(i);
            let word: String = chars[i..stop].iter().collect();
            let trimmed = word.trim_end_matches('*');
            (trimmed.to_string(), trimmed.len() < word.len(), stop)
        };
        pieces.push(Piece::Term { negated, field: field.map(|f| f.0), raw, prefix });
        i = next;
    }
    Ok(pieces)
}

/// A field name and its colon at the start of `chars` (ASCII letters only, any case): the field
/// and the number of characters it takes. A colon after anything else is part of a word.
fn field_at(chars: &[char]) -> Result<Option<(Field, usize)>, SearchError> {
    let letters = chars.iter().take_while(|c| c.is_ascii_alphabetic()).count();
    if letters == 0 || chars.get(letters) != Some(&':') {
        return Ok(None);
    }
    let name: String = chars[..letters].iter().collect::<String>().to_ascii_lowercase();
    match Field::ALL.into_iter().find(|f| f.name() == name) {
        Some(f) => Ok(Some((f, letters + 1))),
        None => Err(SearchError::UnknownField(name)),
    }
}

/// An FTS5 string: the text in double quotes, any double quote in it doubled. Inside such a
/// string FTS5 sees no operator, only text for its tokenizer.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A compiled full-text condition: FTS5 expressions that must all match, and ones none of which
/// may. Built only from [`Search::to_match`], [`words_match`] and the feed scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Match {
    must: Vec<String>,
    must_not: Vec<String>,
}

impl Match {
    /// Whether it narrows nothing.
    pub fn is_empty(&self) -> bool {
        self.must.is_empty() && self.must_not.is_empty()
    }

    /// Both conditions.
    pub fn and(mut self, other: Match) -> Match {
        self.must.extend(other.must);
        self.must_not.extend(other.must_not);
        self
    }

    /// Also only items in this feed (all live items for the all-clippings feed).
    pub fn within(mut self, feed: &FeedKey) -> Match {
        if let Some(token) = scope_token(feed) {
            self.must.push(format!("{{scope}} : {}", quote(&token)));
        }
        self
    }

    /// The whole MATCH expression. An FTS5 query needs something to match before a `NOT`; with
    /// only exclusions that is the token every indexed item carries.
    pub fn expression(&self) -> String {
        let must = if self.must.is_empty() {
            format!("{{scope}} : {}", quote(SCOPE_ALL))
        } else {
            self.must.iter().map(|m| format!("({m})")).collect::<Vec<_>>().join(" AND ")
        };
        if self.must_not.is_empty() {
            return must;
        }
        let not = self.must_not.iter().map(|m| format!("({m})")).collect::<Vec<_>>().join(" OR ");
        format!("({must}) NOT ({not})")
    }
}

/// Everything of a filter the index answers on `feed`: `q` and `exclude`, `search=`, the feed's
/// scope, and `provider=` and `topic=` as scopes (equal to what the items table says, since the
/// scope tokens come from the same item). The scope only narrows the candidates: which items a
/// reader of `feed` may see is its log's to say (see `store::fts::matching`). The bounds
/// (`since`, `min_quality`) go to the store apart.
pub fn filter_match(filter: &Filter, feed: &FeedKey) -> Match {
    let mut m = words_match(filter).within(feed);
    if let Some(search) = &filter.search {
        m = m.and(search.to_match());
    }
    if let Some(p) = &filter.provider {
        m = m.within(&FeedKey::Provider(p.clone()));
    }
    if let Some(t) = &filter.topic {
        m = m.within(&FeedKey::Topic(t.clone()));
    }
    m
}

/// A search asked of a store whose index is still being filled (see `store::fts::backfill`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the search index is still being built; try again shortly")]
pub struct NotReady;

/// `q` and `exclude` of a filter: each phrase must (must not) appear, as whole words in order,
/// within the title or within the excerpt, exactly as `Filter::matches_words` decides.
///
/// Where a title (excerpt) is plain (`is_plain`), the tokenizer's words in the `title` (`excerpt`)
/// column are the very words `q` compares, so a phrase of ASCII words is matched there. Where it
/// is not (`Café`: the tokenizer folds it to `cafe`), the item carries the `scope` token
/// `UNPLAIN_TITLE` (`UNPLAIN_EXCERPT`), which turns that column off for `q`, and its words in
/// exact form in `tw` (`xw`) instead (see `exact_words`). Other phrases can only match there.
pub fn words_match(filter: &Filter) -> Match {
    let phrase = |p: &String| {
        let words = text::words(p);
        let words: Vec<&str> = words.split_whitespace().collect();
        if words.is_empty() {
            return None;
        }
        let exact: Vec<_> = words.iter().map(|w| exact_token(w)).collect();
        let exact = format!("{{tw xw}} : {}", quote(&exact.join(" ")));
        if !words.iter().all(|w| w.bytes().all(|b| b.is_ascii_alphanumeric())) {
            return Some(exact);
        }
        let plain = quote(&words.join(" "));
        Some(format!(
            "(({{title}} : {plain}) NOT {{scope}} : {}) OR (({{excerpt}} : {plain}) NOT {{scope}} : {}) OR ({exact})",
            quote(UNPLAIN_TITLE),
            quote(UNPLAIN_EXCERPT)
        ))
    };
    Match {
        must: filter.q.iter().filter_map(phrase).collect(),
        must_not: filter.exclude.iter().filter_map(phrase).collect(),
    }
}

/// The `scope` token of an item whose title is not [plain](is_plain) (its words are in `tw`).
pub const UNPLAIN_TITLE: &str = "xt";
/// The `scope` token of an item whose excerpt is not [plain](is_plain) (its words are in `xw`).
pub const UNPLAIN_EXCERPT: &str = "xx";

/// Whether the tokenizer splits a text into exactly the words [`text::words`] makes: true when
/// every character is ASCII, or common punctuation, spaces and symbols (Latin-1's, the General
/// Punctuation and currency blocks), which both take as separators. Most titles and excerpts are
/// plain, and need no second, exact copy of their words in the index.
pub fn is_plain(s: &str) -> bool {
    s.chars().all(|c| {
        c.is_ascii()
            || (matches!(c, '\u{A0}'..='\u{BF}' | '\u{D7}' | '\u{F7}' | '\u{2000}'..='\u{206F}' | '\u{20A0}'..='\u{20CF}')
                && !c.is_alphanumeric())
    })
}

/// The token every indexed item has in `scope`.
pub const SCOPE_ALL: &str = "all";

/// The `scope` token of a feed (`None` for the all-clippings feed: [`SCOPE_ALL`]): `t` or `p`
/// and the slug or domain in hex, one token whatever the tokenizer does with `-` and `.`.
pub fn scope_token(feed: &FeedKey) -> Option<String> {
    match feed {
        FeedKey::All => None,
        FeedKey::Topic(slug) => Some(format!("t{}", hex(slug))),
        FeedKey::Provider(domain) => Some(format!("p{}", hex(domain))),
    }
}

/// A word of [`text::words`] as the `tw`/`xw` columns hold it. Lowercase ASCII letters and
/// digits, which the tokenizer neither splits nor folds, stay as they are; any other word (and
/// one starting with `zz`, to keep the mapping one-to-one) becomes `zz` and its UTF-8 in hex, so
/// `café` and `cafe` stay different words there, as they are for `q`.
pub fn exact_token(word: &str) -> std::borrow::Cow<'_, str> {
    if !word.is_empty() && !word.starts_with("zz") && word.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        std::borrow::Cow::Borrowed(word)
    } else {
        std::borrow::Cow::Owned(format!("zz{}", hex(word)))
    }
}

/// A text's words for the `tw`/`xw` columns: [`text::words`], each through [`exact_token`].
pub fn exact_words(s: &str) -> String {
    text::words(s).split_whitespace().map(exact_token).collect::<Vec<_>>().join(" ")
}

/// What the index holds of an item, column by column (see the module header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDoc {
    pub title: String,
    pub excerpt: String,
    pub body: String,
    pub site: String,
    pub topics: String,
    pub tw: String,
    pub xw: String,
    pub scope: String,
}

impl IndexDoc {
    /// The index's columns for an item. Topics are kept apart by a private-use character, which
    /// the tokenizer keeps as a word and no search can spell, so no phrase spans two topics.
    pub fn of(item: &crate::item::Item) -> IndexDoc {
        let d = &item.data;
        let c = &d.clip;
        let excerpt = c.excerpt.clone().unwrap_or_default();
        let site = c
            .provider
            .as_ref()
            .map(|p| format!("{} {}", p.name, p.domain.as_deref().unwrap_or("")))
            .unwrap_or_default();
        let topics = d.topics.iter().map(|t| format!("{} {}", t.name, t.slug)).collect::<Vec<_>>().join(" \u{E000} ");
        let mut scope = vec![SCOPE_ALL.to_string()];
        scope.extend(d.topics.iter().filter_map(|t| scope_token(&FeedKey::Topic(t.slug.clone()))));
        scope.extend(d.provider_domain().and_then(|p| scope_token(&FeedKey::Provider(p.to_string()))));
        let exact = |text: &str, flag: &str, scope: &mut Vec<String>| {
            if is_plain(text) {
                return String::new();
            }
            scope.push(flag.to_string());
            exact_words(text)
        };
        IndexDoc {
            tw: exact(&c.title, UNPLAIN_TITLE, &mut scope),
            xw: exact(&excerpt, UNPLAIN_EXCERPT, &mut scope),
            title: c.title.clone(),
            excerpt,
            body: c.content_html.as_deref().map(body_text).unwrap_or_default(),
            site,
            topics,
            scope: scope.join(" "),
        }
    }
}

/// The words of a body's sanitised HTML: tags dropped (each leaves a space, so `a<br>b` stays two
/// words), entities decoded. The HTML is clean (every `<` in text is `&lt;`), so a `<` opens a tag.
pub fn body_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        out.push(' ');
        rest = rest[open..].find('>').map_or("", |close| &rest[open + close + 1..]);
    }
    out.push_str(rest);
    html_escape::decode_html_entities(&out).into_owned()
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod tests;
