//! Words for story matching: splitting text into normalised word forms and weighing each form
//! with a fixed, built-in lexicon. Nothing here depends on what else is stored, so a clipping's
//! words (and everything made from them) never change as other clippings arrive.
//!
//! A word form is ASCII (`deunicode`), lowercase, with possessive `'s` dropped, dotted acronyms
//! joined (`A.I.` → `ai`), a light suffix stripping (`bans`, `banned`, `banning` → `ban`) and a
//! few spelling variants folded (`facial` → `face`, `one` → `1`). Each form is in one of three
//! classes: a stop word (ignored), a common word of news or of the technology beat (weighs
//! little), or anything else (weighs fully: names, rare words, most numbers).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

/// How much a word tells about which event a text reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    Stop,
    Common,
    Rare,
}

/// Function words and words that say nothing about an event (written plainly; stemmed on first
/// use).
const STOP: &str = "\
a about above after again against all also am among an and another any are around as at b be because \
become been before being below between both but by c can cannot could d did do does doing don dont \
down during e each eight even ever every f few five for four from further g get got h had has have \
he her here herself him himself his how however i if in into is it its itself j just k l let like m me \
might more most much must my n near neither nine no nor not now o of off often on once only or other \
our ourselves out over own p per q r rather really s said same say says see seven shall she should \
since six so some still such t than that the their them themselves then there these they thing this \
those though through to too u under until up upon us v very via vs w was way we well were what when \
where whether which while who whom whose why will with within without wo wont would x y yet you your \
yourself z amp nbsp http https www com html read click sign subscribe newsletter advertisement \
featured video photo used using image credit copyright reserved rights";

/// Words frequent in news writing and on the technology beat: they weigh little, so two texts
/// are not taken for one event just because both speak of "AI", a "market" or a "company".
const COMMON: &str = "\
1 2 3 10 according accuracy add advanced agency ai algorithm allow analysis analytics announce app \
apply application approach article artificial automate automatic available back base based begin \
best better big billion build business call capability case change chief city claim clear cloud \
company competition computer computing continue control country cover create current customer daily \
data day deal decision deep deliver demand deploy design detect develop developer device different \
digital drive early effect end engine enterprise environment example expect experience expert \
explore fact field find first focus follow forecast future general give global go good government \
great group grow growth help high highlight human idea impact important improve include increase \
industry information innovation insight intelligence introduce issue job key know language large \
last late later latest launch lead leader learn learning level life limit line list little live long \
look lot machine made major make manage many market mean method million ml model month move name \
natural need network neural new news next number offer office online open operate opportunity option \
organization part partner people perform performance person place plan platform play point possible \
power predict present problem process processing product program project provide provider public put \
question range rate real reason receive recent recently recognize recognition region release report \
require research researcher result reveal review risk robot role run scale science scientist \
security service set share show significant simple site small smart software solution source special \
start state step story strategy study support system take talk task team tech technical technology \
term test thanks time today tool top track train trend try turn type understand university update \
use user value visual vision want week work world year yesterday";

/// Spelling variants folded onto one form (after stemming).
const FOLD: &[(&str, &str)] = &[
    ("facial", "face"),
    ("fac", "face"),
    ("one", "1"),
    ("two", "2"),
    ("three", "3"),
    ("ten", "10"),
    ("leukaemia", "leukemia"),
];

/// The stemmed forms of [`STOP`] and [`COMMON`] (a stop word wins where both meet).
static LEXICON: LazyLock<HashMap<String, Class>> = LazyLock::new(|| {
    let mut map = HashMap::new();
    for w in COMMON.split_whitespace() {
        map.insert(stem(w), Class::Common);
    }
    for w in STOP.split_whitespace() {
        map.insert(stem(w), Class::Stop);
    }
    map
});

/// The class of a word form (as made by [`forms`]).
pub fn class(form: &str) -> Class {
    if let Some(&class) = LEXICON.get(form) {
        return class;
    }
    if form.bytes().all(|b| b.is_ascii_digit()) {
        // Years and small counts are everywhere; other numbers (prices, scores) are telling.
        let n: u64 = form.parse().unwrap_or(u64::MAX);
        return if n <= 31 || (1900..=2100).contains(&n) { Class::Common } else { Class::Rare };
    }
    Class::Rare
}

/// The normalised word forms of `text`, in order, stop words included (near-duplicate detection
/// compares word runs; event matching skips the stop words).
pub fn forms(text: &str) -> Vec<String> {
    let ascii: Cow<'_, str> =
        if text.is_ascii() { Cow::Borrowed(text) } else { Cow::Owned(deunicode::deunicode(text)) };
    let mut out = Vec::new();
    let mut word = String::new();
    let bytes = ascii.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_alphanumeric() {
            word.push(b.to_ascii_lowercase() as char);
        } else if b == b'\'' && !word.is_empty() {
            // "Amazon's" → "amazon"; "won't" → "wont".
            let next = bytes.get(i + 1).copied().unwrap_or(b' ');
            let after = bytes.get(i + 2).copied().unwrap_or(b' ');
            if (next == b's' || next == b'S') && !after.is_ascii_alphanumeric() {
                i += 1;
            }
        } else if b == b'.' && word.len() == 1 && bytes.get(i + 1).is_some_and(u8::is_ascii_alphabetic) {
            // A dotted acronym: "A.I." and "U.S." become one word.
            if bytes.get(i + 2).is_some_and(|&c| c == b'.') {
                i += 1;
                word.push(bytes[i].to_ascii_lowercase() as char);
            } else {
                push_form(&mut out, &mut word);
            }
        } else if b == b'.'
            && word.bytes().all(|c| c.is_ascii_digit())
            && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
        {
            // A decimal number stays one word: "4.42".
            word.push('.');
        } else {
            push_form(&mut out, &mut word);
        }
        i += 1;
    }
    push_form(&mut out, &mut word);
    out
}

fn push_form(out: &mut Vec<String>, word: &mut String) {
    if !word.is_empty() {
        out.push(stem(word));
        word.clear();
    }
}

/// A light suffix stripping that maps the usual inflections of a word onto one form. Not a
/// linguistic stemmer: the forms only need to agree with each other.
pub fn stem(word: &str) -> String {
    let mut w: &str = word;
    if w.bytes().any(|b| b.is_ascii_digit()) {
        return w.to_string();
    }
    let mut owned;
    if w.len() > 4 && w.ends_with("ies") {
        owned = format!("{}y", &w[..w.len() - 3]);
        w = &owned;
    } else if w.len() > 3 && w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") && !w.ends_with("is") {
        w = &w[..w.len() - 1];
    }
    for suffix in ["ing", "ed"] {
        if w.len() >= suffix.len() + 3 && w.ends_with(suffix) {
            let stem = &w[..w.len() - suffix.len()];
            if stem.bytes().any(|b| b"aeiouy".contains(&b)) {
                w = stem;
                let b = w.as_bytes();
                let n = b.len();
                // "banned" → "bann" → "ban".
                if n >= 2 && b[n - 1] == b[n - 2] && !b"lsz".contains(&b[n - 1]) && !b"aeiou".contains(&b[n - 1]) {
                    w = &w[..n - 1];
                }
            }
            break;
        }
    }
    // Final e and y: "generate"/"generated", "study"/"studies" end alike.
    if w.len() > 3 && (w.ends_with('e') || w.ends_with('y')) {
        w = &w[..w.len() - 1];
    }
    owned = w.to_string();
    if let Some((_, to)) = FOLD.iter().find(|(from, _)| *from == owned) {
        owned = (*to).to_string();
    }
    owned
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(text: &str) -> Vec<String> {
        forms(text)
    }

    #[test]
    fn inflections_meet() {
        for group in [
            &["ban", "bans", "banned", "banning"][..],
            &["generate", "generated", "generates", "generating"],
            &["study", "studies"],
            &["remove", "removes", "removed"],
            &["face", "faces", "facial"],
        ] {
            let stems: Vec<String> = group.iter().map(|w| stem(w)).collect();
            assert!(stems.windows(2).all(|s| s[0] == s[1]), "{group:?} → {stems:?}");
        }
    }

    #[test]
    fn splitting() {
        assert_eq!(f("Amazon's A.I. ban"), ["amazon", "ai", "ban"]);
        assert_eq!(f("won't, U.S. 4.42 one-year"), ["wont", "us", "4.42", "1", "year"]);
        assert_eq!(f("Données «fiables»"), ["donne", "fiabl"]);
        assert_eq!(f(""), Vec::<String>::new());
    }

    #[test]
    fn classes() {
        assert_eq!(class(&stem("the")), Class::Stop);
        assert_eq!(class(&stem("artificial")), Class::Common);
        assert_eq!(class(&stem("intelligence")), Class::Common);
        assert_eq!(class("2020"), Class::Common);
        assert_eq!(class("185"), Class::Rare);
        assert_eq!(class(&stem("Rekognition")), Class::Rare);
        assert_eq!(class(&stem("moratorium")), Class::Rare);
    }
}
