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
//! # Storing it (the writer's side, a later step)
//!
//! Proposed tables, kept by the writer in the transaction that changes the items:
//!
//! - `story_features(item INTEGER PRIMARY KEY, published INTEGER, blob BLOB)`: each live item's
//!   [`Features`] in their stored form (`Features::to_blob`, about 0.5 KB), so a candidate's
//!   features are read, not recomputed from its record.
//! - `story_keys(key INTEGER, day INTEGER, item INTEGER, PRIMARY KEY (key, day, item)) WITHOUT
//!   ROWID`: one row per [`Key`] of each item (`Features::keys`); `day` is the publication day
//!   for windowed keys and NULL for the others and for undated items. Candidates of a new
//!   clipping: for each key of `Features::probe_keys`, `key = ? AND (day IS NULL OR day BETWEEN
//!   ? AND ?)` for windowed keys (day ± the window), `key = ?` for the others, at any date when
//!   the newcomer is undated. One index range per key.
//! - `story_of(item INTEGER PRIMARY KEY, story TEXT)` (or a column of `items`): each live item's
//!   story id, with `stories(id TEXT PRIMARY KEY, founder_item TEXT, founder_published INTEGER,
//!   members INTEGER, updated INTEGER)`: the founder decides the id (see [`Founder`]).
//! - `story_redirects(id TEXT PRIMARY KEY, into TEXT, at INTEGER)`: a story that ended in a
//!   merge, or whose founder left, answers 301 to the story that took its members and shows as
//!   a tombstone in story feeds. Redirects are followed to the end when read, and one that
//!   would point at itself (the id comes back) is deleted.
//!
//! The writer's steps for a new or changed clipping: compute its features; if it was stored
//! before, remove it first (below); look its candidates up by key; call [`decide`] with their
//! features and story founders; apply the decision (set its story; on a merge, move the retired
//! stories' items and write their redirects); insert its features and keys. For a removed
//! clipping: delete its keys and features, then [`split`] the rest of its story and give each
//! part its founder's story id. Nothing is recomputed over the store; a merge rewrites the
//! story column of the merged stories' members only.

mod blob;
pub mod eval;
mod features;
mod group;
mod judge;
mod words;

pub use features::{Features, url_key};
pub use group::{Candidate, Decision, Founder, Index, Key, Member, decide, group, split, window_days};
pub use judge::{Params, Why, judge, same_event, scores};

#[cfg(test)]
mod tests;
