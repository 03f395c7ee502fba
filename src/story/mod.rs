//! Stories: which clippings report the same news event. Owns the features a clipping is matched
//! by, its candidate keys, the pairwise verdict, story ids, and the incremental decisions the
//! writer applies. Pure: no IO, no clock, no store (except `eval`, the measuring harness, which
//! reads the shared test files).
//!
//! - `words`: word forms and the fixed lexicon that weighs them;
//! - `features`: [`Features`] of one clipping, from its own fields only;
//! - `judge`: the symmetric verdict [`same_event`] and its thresholds ([`Params`]);
//! - `group`: keys and the in-memory [`Index`], stories as connected components, [`Founder`]s
//!   and story ids, [`decide`] for a new clipping and [`split`] for a removed one;
//! - `blob`: the stored form of [`Features`];
//! - `eval`: pairwise precision and recall against `tests/data/stories/pairs.tsv`.
//!
//! Clippings of different visibility classes ([`Features::class`], set by `Features::in_class`
//! from the class `config::Visibility::class` gives) are never one story: the verdict says no
//! and their keys differ, so grouping is the same as grouping each class on its own.
//!
//! # Stored and applied by the writer
//!
//! `ingest/stories` applies the decisions in the transaction that changes the item, and
//! `store/stories` keeps the rows: `story_items` (each live item's story, that story's founder,
//! and its [`Features`] in their stored form, `Features::to_blob`), `story_keys` (one row per
//! `(key, day)` of `Features::stored_keys`; candidates are read by `Features::lookup_ranges`,
//! the same lookups as [`Index::candidates`]) and `story_redirects` (an id that ended in a merge,
//! or whose founder left, answers 301 to the story that took its members).
//!
//! For a new or changed clipping: its features; if they changed, it leaves its story first
//! (below); its candidates by key; [`decide`]. [`Decision::Start`]: it founds a story.
//! [`Decision::Join`]: it takes that story's founder. [`Decision::Merge`]: it and every member
//! of the `retired` stories take the founder `into`, and each retired id redirects to `into`'s.
//!
//! For a removed clipping: its keys and row go; the rest of its story is [`split`]; the part
//! holding the old founder keeps the id, the others take their founders' ids, and when the
//! founder itself left, the old id redirects to the oldest part. Nothing is recomputed over the
//! store.

mod blob;
pub(crate) mod eval;
mod features;
mod group;
mod judge;
mod words;

pub use features::{Features, url_key};
pub use group::{Candidate, Decision, Founder, Index, Key, Member, decide, group, split, window_days};
pub use judge::{Params, Why, judge, same_event, scores};

#[cfg(test)]
mod tests;
