//! Query filters on feed URLs (`?limit=10&q=robot&since=7d&search=…`): parsing and validation of
//! the query string into a [`Filter`], and the word matching `q` and `exclude` mean (the index
//! answers them, `crate::search` compiles them). Pure; the store applies the filter.

use chrono::{DateTime, Duration, Utc};

use crate::feed::FeedKey;
use crate::search::Search;
use crate::text;

/// The largest `limit` a filtered feed accepts.
pub const MAX_LIMIT: usize = 500;
/// At most this many words or phrases in `q` and `exclude` together, each at most this long:
/// every one is matched against every clipping the filter reaches.
pub const MAX_PHRASES: usize = 20;
pub const MAX_PHRASE: usize = 100;

/// A validated filter. Every field narrows the feed's whole history, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Filter {
    /// At most this many items (1..=500); the feed's `items_per_feed` when absent.
    pub(crate) limit: Option<usize>,
    /// Items with at least this quality; items without a quality do not pass.
    pub(crate) min_quality: Option<i64>,
    /// Items published at or after this time (an RFC 3339 time, or now minus a duration).
    pub(crate) since: Option<DateTime<Utc>>,
    /// `since` as given when it was a duration (`7d`): the window moves with the clock.
    pub(crate) since_relative: Option<String>,
    /// Words or phrases (normalised by [`text::words`]) that must all appear in title or excerpt.
    pub(crate) q: Vec<String>,
    /// Words or phrases none of which may appear.
    pub(crate) exclude: Vec<String>,
    /// Only items of this provider (on topic feeds and the all-feed).
    pub(crate) provider: Option<String>,
    /// Only items in this topic (on provider feeds and the all-feed).
    pub(crate) topic: Option<String>,
    /// A full-text search (`search=`, see `crate::search` for its syntax).
    pub(crate) search: Option<Search>,
    /// `group=story`: one item per story, of the stories with a clipping that passes the rest.
    pub(crate) by_story: bool,
}

/// A query parameter that cannot be used, with a message for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("query parameter '{param}': {message}")]
pub struct FilterError {
    pub(crate) param: String,
    pub(crate) message: String,
}

fn bad(param: &str, message: impl Into<String>) -> FilterError {
    FilterError { param: param.to_string(), message: message.into() }
}

impl Filter {
    /// Whether the filter changes anything (an empty query string gives the plain feed).
    pub(crate) fn is_empty(&self) -> bool {
        *self == Filter::default()
    }

    /// Whether the filter is `group=story` alone: the story-grouped subscription document, made
    /// from the feed's story log, with archive pages (any other filter makes a view on request).
    pub(crate) fn is_grouping_only(&self) -> bool {
        *self == Filter { by_story: true, ..Filter::default() }
    }

    /// Parses a query string for a feed. Unknown parameters, repeated single-valued ones and bad
    /// values are errors naming the parameter. `now` resolves durations such as `since=7d` (to
    /// the minute, so equal queries within a minute share a cache entry).
    pub fn parse(query: &str, feed: &FeedKey, now: DateTime<Utc>) -> Result<Filter, FilterError> {
        let mut f = Filter::default();
        let mut seen: Vec<String> = Vec::new();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            let (k, v) = (k.as_ref(), v.trim());
            let single = !matches!(k, "q" | "exclude");
            if single && seen.iter().any(|s| s == k) {
                return Err(bad(k, "given more than once"));
            }
            seen.push(k.to_string());
            match k {
                "limit" => {
                    let n: usize = v.parse().map_err(|_| bad(k, format!("{v:?} is not a whole number")))?;
                    if !(1..=MAX_LIMIT).contains(&n) {
                        return Err(bad(k, format!("{n} is out of range (1 to {MAX_LIMIT})")));
                    }
                    f.limit = Some(n);
                }
                "min_quality" => {
                    f.min_quality = Some(v.parse().map_err(|_| bad(k, format!("{v:?} is not a whole number")))?);
                }
                "since" => {
                    // A '+' in a time zone offset arrives as a space when the client did not
                    // encode it as %2B.
                    let v = &plus_offset(v);
                    f.since = Some(parse_since(v, now).map_err(|m| bad(k, m))?);
                    f.since_relative = crate::clip::parse_date(v).is_none().then(|| v.to_string());
                }
                "q" | "exclude" => {
                    let phrases = phrases(v);
                    if phrases.is_empty() && !v.is_empty() {
                        return Err(bad(k, format!("{v:?} has no letters or digits")));
                    }
                    // Phrases carry a space at each end for whole-word matching; those do not
                    // count towards the limit.
                    if let Some(long) = phrases.iter().find(|p| p.trim().chars().count() > MAX_PHRASE) {
                        return Err(bad(k, format!("{:?} is longer than {MAX_PHRASE} characters", long.trim())));
                    }
                    if k == "q" {
                        f.q.extend(phrases)
                    } else {
                        f.exclude.extend(phrases)
                    }
                    if f.q.len() + f.exclude.len() > MAX_PHRASES {
                        return Err(bad(
                            k,
                            format!("more than {MAX_PHRASES} words or phrases in q and exclude together"),
                        ));
                    }
                }
                "provider" => {
                    if matches!(feed, FeedKey::Provider(_)) {
                        return Err(bad(k, "applies to topic feeds and the all-clippings feed, not to provider feeds"));
                    }
                    let d = text::normalize_domain(v).ok_or_else(|| bad(k, format!("{v:?} is not a domain")))?;
                    f.provider = Some(d);
                }
                "search" if v.is_empty() => {}
                "search" => f.search = Some(Search::parse(v).map_err(|e| bad(k, e.to_string()))?),
                "topic" => {
                    if matches!(feed, FeedKey::Topic(_)) {
                        return Err(bad(k, "applies to provider feeds and the all-clippings feed, not to topic feeds"));
                    }
                    if !text::is_slug(v) {
                        return Err(bad(k, format!("{v:?} is not a topic slug (like computer-vision)")));
                    }
                    f.topic = Some(v.to_string());
                }
                "group" => {
                    if v != "story" {
                        return Err(bad(k, format!("{v:?} is not a grouping; the one there is is group=story")));
                    }
                    f.by_story = true;
                }
                _ => {
                    return Err(bad(
                        k,
                        "unknown; the filters are limit, min_quality, since, q, exclude, search, provider (topic and all feeds), topic (provider and all feeds) and group=story",
                    ));
                }
            }
        }
        f.q.sort();
        f.q.dedup();
        f.exclude.sort();
        f.exclude.dedup();
        Ok(f)
    }

    /// Whether the search index answers this filter: it searches words (`q`, `exclude`,
    /// `search`). The others are bounds any feed's indexes answer.
    pub(crate) fn searches(&self) -> bool {
        self.search.is_some() || !self.q.is_empty() || !self.exclude.is_empty()
    }

    /// Whether an item's normalised title-and-excerpt text (see [`text::words`]) passes `q` and
    /// `exclude`.
    pub(crate) fn matches_words(&self, words: &str) -> bool {
        self.q.iter().all(|p| words.contains(p.as_str())) && !self.exclude.iter().any(|p| words.contains(p.as_str()))
    }

    /// The filter as a canonical query string (for self links): parameters in a fixed order,
    /// phrases comma-separated, `since` as an RFC 3339 time.
    pub(crate) fn to_query(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(n) = self.limit {
            q.append_pair("limit", &n.to_string());
        }
        if let Some(m) = self.min_quality {
            q.append_pair("min_quality", &m.to_string());
        }
        match (&self.since_relative, self.since) {
            (Some(raw), _) => {
                q.append_pair("since", raw);
            }
            (None, Some(s)) => {
                q.append_pair("since", &s.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            }
            (None, None) => {}
        }
        let join = |v: &[String]| v.iter().map(|p| p.trim()).collect::<Vec<_>>().join(",");
        if !self.q.is_empty() {
            q.append_pair("q", &join(&self.q));
        }
        if !self.exclude.is_empty() {
            q.append_pair("exclude", &join(&self.exclude));
        }
        if let Some(p) = &self.provider {
            q.append_pair("provider", p);
        }
        if let Some(t) = &self.topic {
            q.append_pair("topic", t);
        }
        if let Some(s) = &self.search {
            q.append_pair("search", &s.to_string());
        }
        if self.by_story {
            q.append_pair("group", "story");
        }
        q.finish()
    }

    /// A canonical text form, for cache keys.
    pub(crate) fn cache_key(&self) -> String {
        format!(
            "l={:?};m={:?};s={:?};r={:?};q={:?};x={:?};p={:?};t={:?};f={:?};g={}",
            self.limit,
            self.min_quality,
            self.since.map(|d| d.timestamp()),
            self.since_relative,
            self.q,
            self.exclude,
            self.provider,
            self.topic,
            self.search.as_ref().map(Search::to_string),
            self.by_story
        )
    }
}

/// Comma-separated phrases, or space-separated words when there is no comma; normalised.
fn phrases(v: &str) -> Vec<String> {
    let parts: Vec<&str> = if v.contains(',') { v.split(',').collect() } else { v.split_whitespace().collect() };
    parts.into_iter().map(text::words).filter(|w| !w.trim().is_empty()).collect()
}

/// `2024-01-03T00:00:00 02:00` (a `+` decoded as a space) → `2024-01-03T00:00:00+02:00`.
fn plus_offset(v: &str) -> std::borrow::Cow<'_, str> {
    match v.rsplit_once(' ') {
        Some((time, zone)) if time.contains('T') && zone.len() == 5 && zone.as_bytes()[2] == b':' => {
            std::borrow::Cow::Owned(format!("{time}+{zone}"))
        }
        _ => std::borrow::Cow::Borrowed(v),
    }
}

/// `since`: an RFC 3339 time or date, or a duration back from now (`30m`, `12h`, `7d`, `2w`).
fn parse_since(v: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if let Some(d) = crate::clip::parse_date(v) {
        return Ok(d);
    }
    let (num, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
    let n: i64 = num.parse().map_err(|_| format!("{v:?} is neither an RFC 3339 time nor a duration like 7d"))?;
    let minutes = match unit {
        "m" => n,
        "h" => n.saturating_mul(60),
        "d" => n.saturating_mul(60 * 24),
        "w" => n.saturating_mul(60 * 24 * 7),
        _ => return Err(format!("{v:?}: a duration needs a unit: m, h, d or w (as in 7d)")),
    };
    if minutes > 60 * 24 * 366 * 100 {
        return Err(format!("{v:?} reaches back more than a century"));
    }
    let minute_now = DateTime::from_timestamp(now.timestamp() / 60 * 60, 0).unwrap_or(now);
    Ok(minute_now - Duration::minutes(minutes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-22T10:30:45Z".parse().unwrap()
    }

    fn parse(q: &str) -> Result<Filter, FilterError> {
        Filter::parse(q, &FeedKey::Topic("ai".into()), now())
    }

    #[track_caller]
    fn bad_param(q: &str, feed: FeedKey) -> String {
        let e = Filter::parse(q, &feed, now()).expect_err(q);
        assert!(e.to_string().contains(&format!("'{}'", e.param)));
        e.param
    }

    #[test]
    fn good_filters() {
        assert!(parse("").unwrap().is_empty());
        let f = parse("limit=10&min_quality=40&q=robot+arm&exclude=crypto,web3&provider=Vice.com").unwrap();
        assert_eq!(f.limit, Some(10));
        assert_eq!(f.min_quality, Some(40));
        assert_eq!(f.q, [" arm ", " robot "]);
        assert_eq!(f.exclude, [" crypto ", " web3 "]);
        assert_eq!(f.provider.as_deref(), Some("vice.com"));
        let f = parse("q=machine learning,deep&q=x").unwrap();
        assert_eq!(f.q, [" deep ", " machine learning ", " x "]);
        assert!(parse("q=").unwrap().is_empty());
        let f = Filter::parse("topic=computer-vision", &FeedKey::Provider("vice.com".into()), now()).unwrap();
        assert_eq!(f.topic.as_deref(), Some("computer-vision"));
        let f = parse("group=story&limit=3").unwrap();
        assert!(f.by_story && !f.is_empty());
        assert_eq!(f.to_query(), "limit=3&group=story");
        assert_ne!(f.cache_key(), parse("limit=3").unwrap().cache_key());
        assert!(parse("group=site").unwrap_err().to_string().contains("group=story"));
    }

    #[test]
    fn relative_windows_are_marked() {
        let f = parse("since=7d").unwrap();
        assert_eq!(f.since_relative.as_deref(), Some("7d"));
        assert_eq!(f.to_query(), "since=7d", "the self link keeps the moving window");
        assert!(parse("since=2026-01-01").unwrap().since_relative.is_none());
        assert!(parse("limit=3").unwrap().since_relative.is_none());
        // The same instant, asked for as a window and as a date, are different views.
        let fixed = parse(&format!("since={}", f.since.unwrap().to_rfc3339())).unwrap();
        assert_eq!(fixed.since, f.since);
        assert_ne!(fixed.cache_key(), f.cache_key());
        // An unencoded '+' in an offset.
        let f = parse("since=2024-01-03T00:00:00+02:00").unwrap();
        assert_eq!(f.since.unwrap().to_rfc3339(), "2024-01-02T22:00:00+00:00");
    }

    #[test]
    fn since_forms() {
        let s = |v: &str| parse(&format!("since={v}")).unwrap().since.unwrap().to_rfc3339();
        assert_eq!(s("2026-01-02T03:04:05Z"), "2026-01-02T03:04:05+00:00");
        assert_eq!(s("2026-01-02"), "2026-01-02T00:00:00+00:00");
        assert_eq!(s("7d"), "2026-11-15T10:30:00+00:00");
        assert_eq!(s("12h"), "2026-11-21T22:30:00+00:00");
        assert_eq!(s("30m"), "2026-11-22T10:00:00+00:00");
        assert_eq!(s("2w"), "2026-11-08T10:30:00+00:00");
    }

    #[test]
    fn bad_filters_name_the_parameter() {
        let t = || FeedKey::Topic("ai".into());
        assert_eq!(bad_param("limit=0", t()), "limit");
        assert_eq!(bad_param("limit=501", t()), "limit");
        assert_eq!(bad_param("limit=ten", t()), "limit");
        assert_eq!(bad_param("limit=5&limit=6", t()), "limit");
        assert_eq!(bad_param("min_quality=high", t()), "min_quality");
        assert_eq!(bad_param("since=yesterday", t()), "since");
        assert_eq!(bad_param("since=7y", t()), "since");
        assert_eq!(bad_param("since=99999999999d", t()), "since");
        assert_eq!(bad_param("q=%21%21%21", t()), "q");
        assert_eq!(bad_param("provider=a..b", t()), "provider");
        assert_eq!(bad_param("topic=ai", t()), "topic");
        assert_eq!(bad_param("provider=vice.com", FeedKey::Provider("x.com".into())), "provider");
        assert_eq!(bad_param("topic=Not A Slug", FeedKey::All), "topic");
        assert_eq!(bad_param("colour=red", t()), "colour");
        let many = (0..21).map(|i| format!("w{i}")).collect::<Vec<_>>().join("+");
        assert_eq!(bad_param(&format!("q={many}"), t()), "q");
        assert_eq!(bad_param(&format!("exclude={}", "x".repeat(101)), t()), "exclude");
        // The limit is the phrase as written: exactly 100 characters pass.
        assert_eq!(parse(&format!("exclude={}", "x".repeat(100))).unwrap().exclude.len(), 1);
        assert_eq!(parse(&format!("q={}", "é".repeat(100))).unwrap().q.len(), 1);
    }

    #[test]
    fn canonical_query_round_trips() {
        let f = parse("exclude=web3&q=machine learning,deep&limit=5&since=2026-01-01&provider=vice.com").unwrap();
        let q = f.to_query();
        assert_eq!(
            q,
            "limit=5&since=2026-01-01T00%3A00%3A00Z&q=deep%2Cmachine+learning&exclude=web3&provider=vice.com"
        );
        assert_eq!(parse(&q).unwrap(), f);
    }

    #[test]
    fn search_is_a_filter_of_its_own() {
        // Parsed, spelt canonically (terms sorted, lower case) in the self link and the cache key,
        // so two spellings of one search are one feed; it parses back to itself.
        let a = parse("search=Robot*+-Toy+%22Machine+Learning%22&limit=5").unwrap();
        let b = parse("limit=5&search=%22machine+learning%22+robot*+-toy").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.cache_key(), b.cache_key());
        assert!(a.searches() && a.q.is_empty());
        let q = a.to_query();
        assert_eq!(q, "limit=5&search=%22machine+learning%22+robot*+-toy");
        assert_eq!(parse(&q).unwrap(), a);
        assert_ne!(a.cache_key(), parse("search=robot*&limit=5").unwrap().cache_key());
        // An empty search box is no search; `q` and `exclude` search too, the others do not.
        assert!(!parse("search=").unwrap().searches());
        assert_eq!(parse("search=").unwrap(), parse("").unwrap());
        assert!(parse("q=robot").unwrap().searches() && parse("exclude=robot").unwrap().searches());
        assert!(!parse("limit=3&since=7d&min_quality=2").unwrap().searches());
        // A bad search names the parameter and says why, on one line.
        let e = parse("search=ro*").unwrap_err();
        assert_eq!(e.param, "search");
        assert!(e.message.contains("at least 3") && !e.message.contains('\n'), "{}", e.message);
        assert_eq!(bad_param("search=%22open", FeedKey::All), "search");
        assert_eq!(bad_param("search=a&search=b", FeedKey::All), "search");
    }

    #[test]
    fn word_matching() {
        let f = parse("q=robot&exclude=toy").unwrap();
        assert!(f.matches_words(&text::words("A robot that folds laundry")));
        assert!(!f.matches_words(&text::words("Robotics news")));
        assert!(!f.matches_words(&text::words("A toy robot")));
    }
}
