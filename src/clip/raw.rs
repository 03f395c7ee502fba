//! Front matter as written: each top-level key is looked up in the key table (`keys`) and its
//! value kept under the field it gives, with the rank of its spelling, so that the strongest
//! spelling wins whatever the order of the keys in the file. The shapes accepted: text fields
//! take any scalar; list fields take a list or a single value (`topics: Robotics`); images and
//! related articles take a mapping or a bare URL.
//!
//! clipfeed's own keys spelt exactly are strict: a value of the wrong shape rejects the file,
//! naming the key. Every other spelling read (an alias such as `tags`, or `webURL`) is lenient:
//! a value of the wrong shape is set aside with a warning, since the key may mean something else
//! to the tool that wrote it.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeOwned, Deserializer, IgnoredAny, IntoDeserializer, MapAccess, SeqAccess, Visitor};

use super::keys::{self, Field, KeyNote, Meaning, Rank};

/// At most this many notes are kept per file: one file cannot flood the summary.
const MAX_NOTES: usize = 16;

/// The front matter, field by field.
#[derive(Default)]
pub(super) struct RawFront {
    pub title: Slot<Scalar>,
    pub excerpt: Slot<Scalar>,
    pub date: Slot<Scalar>,
    pub web_url: Slot<Scalar>,
    pub original_url: Slot<Scalar>,
    pub kind: Slot<Scalar>,
    pub quality: Slot<Score>,
    pub published: Slot<Flag>,
    pub provider: Slot<RawProvider>,
    pub author: Slot<Names>,
    pub topics: Slot<OneOrMany<Scalar>>,
    pub images: Slot<OneOrMany<Entry<RawImage>>>,
    pub related: Slot<OneOrMany<Entry<RawRelated>>>,
    /// Keys spelt close to one clipfeed reads.
    pub notes: Vec<KeyNote>,
}

/// One value given for a field.
pub(super) struct Given<T> {
    /// How its key was spelt (see [`Rank`]).
    pub rank: Rank,
    pub key: String,
    /// The value; an error (a one-line reason) when a leniently read key had the wrong shape.
    pub value: Result<T, String>,
}

/// The values given for one field; a null counts as no value.
pub(super) struct Slot<T> {
    given: Vec<Given<Option<T>>>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot { given: Vec::new() }
    }
}

impl<T> Slot<T> {
    /// Reads the value of `key` from `map`: strictly when it is clipfeed's key spelt exactly.
    fn read<'de, A: MapAccess<'de>>(&mut self, map: &mut A, key: String, rank: Rank) -> Result<(), A::Error>
    where
        T: DeserializeOwned,
    {
        if self.given.iter().any(|g| g.key == key) {
            return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
        }
        let value = if rank == 0 { Ok(map.next_value::<Option<T>>()?) } else { map.next_value::<Lenient<T>>()?.0 };
        self.given.push(Given { rank, key, value });
        Ok(())
    }

    /// The values given, strongest first (by rank, then key, so that the order of the keys in
    /// the file does not matter); nulls left out.
    pub(super) fn ranked(self) -> Vec<Given<T>> {
        let mut out: Vec<Given<T>> = self
            .given
            .into_iter()
            .filter_map(|g| match g.value {
                Ok(None) => None,
                Ok(Some(v)) => Some(Given { rank: g.rank, key: g.key, value: Ok(v) }),
                Err(e) => Some(Given { rank: g.rank, key: g.key, value: Err(e) }),
            })
            .collect();
        out.sort_by(|a, b| (a.rank, &a.key).cmp(&(b.rank, &b.key)));
        out
    }

    /// The strongest value of the right shape. The values of the wrong shape before it are
    /// warnings.
    pub(super) fn best(self, warnings: &mut Vec<String>) -> Option<Given<T>> {
        for g in self.ranked() {
            match g.value {
                Ok(_) => return Some(g),
                Err(e) => warnings.push(ignored(&g.key, &e)),
            }
        }
        None
    }
}

/// The warning for a leniently read key whose value has the wrong shape.
pub(super) fn ignored(key: &str, why: &str) -> String {
    format!("`{key}` ignored: {why}")
}

impl<'de> Deserialize<'de> for RawFront {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FrontVisitor)
    }
}

struct FrontVisitor;

impl<'de> Visitor<'de> for FrontVisitor {
    type Value = RawFront;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping of keys to values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawFront, A::Error> {
        let mut raw = RawFront::default();
        while let Some(Key(key)) = map.next_key::<Key>()? {
            let meaning = key.as_deref().map_or(Meaning::Silent, keys::meaning);
            match (meaning, key) {
                (Meaning::Read { field, rank, note }, Some(key)) => {
                    raw.note(note);
                    raw.read(field, &mut map, key, rank)?;
                }
                (Meaning::NearMiss(note), _) => {
                    raw.note(Some(note));
                    map.next_value::<IgnoredAny>()?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(raw)
    }
}

impl RawFront {
    fn note(&mut self, note: Option<KeyNote>) {
        if self.notes.len() < MAX_NOTES {
            self.notes.extend(note);
        }
    }

    fn read<'de, A: MapAccess<'de>>(
        &mut self,
        field: Field,
        map: &mut A,
        key: String,
        rank: Rank,
    ) -> Result<(), A::Error> {
        match field {
            Field::Title => self.title.read(map, key, rank),
            Field::Excerpt => self.excerpt.read(map, key, rank),
            Field::Date => self.date.read(map, key, rank),
            Field::WebUrl => self.web_url.read(map, key, rank),
            Field::OriginalUrl => self.original_url.read(map, key, rank),
            Field::Kind => self.kind.read(map, key, rank),
            Field::Quality => self.quality.read(map, key, rank),
            Field::Published => self.published.read(map, key, rank),
            Field::Provider => self.provider.read(map, key, rank),
            Field::Author => self.author.read(map, key, rank),
            Field::Topics => self.topics.read(map, key, rank),
            Field::Images => self.images.read(map, key, rank),
            Field::Related => self.related.read(map, key, rank),
        }
    }
}

/// A mapping key: any scalar, as text. A complex key (a list or mapping) is `None`.
struct Key(Option<String>);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(Key(Some(v.to_string())))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Key, E> {
                Ok(Key(Some(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Key, E> {
                Ok(Key(Some(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Key, E> {
                Ok(Key(Some(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Key, E> {
                Ok(Key(Some(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Key, E> {
                Ok(Key(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Key, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Key(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Key, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Key(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A value read leniently: through a generic YAML value, so that the wrong shape is a reason to
/// set it aside rather than an error for the whole document.
struct Lenient<T>(Result<Option<T>, String>);

impl<'de, T: DeserializeOwned> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_yaml::Value::deserialize(d)?;
        Ok(Lenient(Option::<T>::deserialize(value).map_err(|e| e.to_string())))
    }
}

/// A yes or no: a boolean, or one of YAML 1.1's words for one (`yes`, `no`, `on`, `off`, `y`,
/// `n`, `true`, `false`, any case), which Jekyll and other YAML 1.1 readers take as booleans and
/// YAML 1.2 reads as text.
pub(super) struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("true or false")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Flag, E> {
                Ok(Flag(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Flag, E> {
                match v.to_ascii_lowercase().as_str() {
                    "yes" | "y" | "on" | "true" => Ok(Flag(true)),
                    "no" | "n" | "off" | "false" => Ok(Flag(false)),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A number read as a whole number: an integer as it is, a finite decimal (`72.5`) rounded to
/// the nearest (half away from zero), clamped to the range of `i64`. Text, booleans and
/// non-finite numbers are of the wrong shape.
pub(super) struct Score(pub i64);

impl<'de> Deserialize<'de> for Score {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Score;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Score, E> {
                Ok(Score(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Score, E> {
                Ok(Score(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Score, E> {
                if !v.is_finite() {
                    return Err(E::invalid_value(de::Unexpected::Float(v), &self));
                }
                // `as` saturates at the ends of the range.
                Ok(Score(v.round() as i64))
            }
        }
        d.deserialize_any(V)
    }
}

/// A YAML scalar read as text: strings, numbers and booleans all count; null is empty.
pub(super) struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(String::new()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A list, or a single value standing for a list of one.
pub(super) struct OneOrMany<T>(pub Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(OneOrManyVisitor(PhantomData))
    }
}

struct OneOrManyVisitor<T>(PhantomData<T>);

impl<T> OneOrManyVisitor<T> {
    fn one<'de, D: Deserializer<'de>>(d: D) -> Result<OneOrMany<T>, D::Error>
    where
        T: Deserialize<'de>,
    {
        Ok(OneOrMany(vec![T::deserialize(d)?]))
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for OneOrManyVisitor<T> {
    type Value = OneOrMany<T>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list or a single value")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element::<T>()? {
            out.push(v);
        }
        Ok(OneOrMany(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Self::one(MapAccessDeserializer::new(map))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Self::one(v.into_deserializer())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Self::one(v.into_deserializer())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Self::one(v.into_deserializer())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Self::one(v.into_deserializer())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Self::one(v.into_deserializer())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Self::one(v.into_deserializer())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(OneOrMany(Vec::new()))
    }
}

/// Names given as text, a list, or mappings with a `name` (`author`, `authors`).
pub(super) struct Names(pub Vec<String>);

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde_yaml::Value;
        fn name(v: &Value) -> Option<String> {
            match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Mapping(m) => m.get("name").and_then(name),
                _ => None,
            }
        }
        let names = match Value::deserialize(d)? {
            Value::Sequence(items) => items.iter().filter_map(name).collect(),
            other => name(&other).into_iter().collect(),
        };
        Ok(Names(names))
    }
}

/// `provider`: the news site.
#[derive(Deserialize, Default)]
pub(super) struct RawProvider {
    pub name: Option<Scalar>,
    pub domain: Option<Scalar>,
    pub images: Option<OneOrMany<Entry<RawImage>>>,
}

/// An image: a mapping, or its URL alone.
#[derive(Deserialize, Default)]
pub(super) struct RawImage {
    pub url: Option<Scalar>,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// A related article: a mapping, or its URL alone.
#[derive(Deserialize, Default)]
pub(super) struct RawRelated {
    pub title: Option<Scalar>,
    #[serde(rename = "webUrl")]
    pub web_url: Option<Scalar>,
    #[serde(rename = "publishedDateTime")]
    pub published: Option<Scalar>,
    pub provider: Option<RawProvider>,
}

/// A mapping type that a bare URL can stand for.
pub(super) trait FromUrl {
    fn from_url(url: String) -> Self;
}

impl FromUrl for RawImage {
    fn from_url(url: String) -> Self {
        RawImage { url: Some(Scalar(url)), ..Default::default() }
    }
}

impl FromUrl for RawRelated {
    fn from_url(url: String) -> Self {
        RawRelated { web_url: Some(Scalar(url)), ..Default::default() }
    }
}

/// A list entry written as a mapping, or as its URL alone.
pub(super) struct Entry<T>(pub T);

impl<'de, T: Deserialize<'de> + FromUrl> Deserialize<'de> for Entry<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de> + FromUrl> Visitor<'de> for V<T> {
            type Value = Entry<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping or a URL")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Entry<T>, E> {
                Ok(Entry(T::from_url(v.to_string())))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Entry<T>, A::Error> {
                Ok(Entry(T::deserialize(MapAccessDeserializer::new(map))?))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}
