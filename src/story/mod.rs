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
//! Proposed tables, kept by the writer in the transaction that changes the items (`item` is the
//! item's integer key in the store):
//!
//! - `story_features(item INTEGER PRIMARY KEY, blob BLOB NOT NULL, founder_item TEXT NOT NULL,
//!   founder_published INTEGER)`: each live item's [`Features`] in their stored form
//!   (`Features::to_blob`, about half a kilobyte), so a candidate's features are read, not
//!   recomputed from its record; and the founder of its story, whose item id names the story
//!   ([`Founder::story_id`]). A merge rewrites the founder of the merged stories' members only.
//! - `story_keys(key INTEGER NOT NULL, day INTEGER NOT NULL, item INTEGER NOT NULL, PRIMARY KEY
//!   (key, day, item)) WITHOUT ROWID`: one row per [`Key`] of each item (`Features::keys`, about
//!   30); `day` is the publication day for a windowed key of a dated item, and `i32::MIN` for the
//!   other keys and for undated items. The candidates of a new clipping: for each of its keys,
//!   `key = ?` for a key that is not windowed or when the newcomer is undated; for a windowed key
//!   of a dated newcomer, `key = ? AND day BETWEEN ? AND ?` (its day ± [`window_days`]) and
//!   `key = ? AND day = i32::MIN`. Each is one index range.
//! - `stories(id TEXT PRIMARY KEY, founder_item TEXT NOT NULL, members INTEGER NOT NULL,
//!   updated INTEGER NOT NULL)`: the live stories, for story feeds and pages.
//! - `story_redirects(id TEXT PRIMARY KEY, into_id TEXT NOT NULL, at INTEGER NOT NULL)`: a story
//!   that ended in a merge, or whose founder left, answers 301 to the story that took its
//!   members and is a tombstone in story feeds. Redirects are followed to the end when read, and
//!   one whose id is live again (its founder came back) is deleted.
//!
//! # The writer's calls
//!
//! For a new or changed clipping: compute `Features::of(&clipping)`; if the item was stored
//! before, remove it first (below); look its candidates up by its keys; read their blobs
//! (`Features::from_blob`) and founders; call [`decide`] with them. [`Decision::Start`]: the
//! item founds a story. [`Decision::Join`]: it takes that story's founder. [`Decision::Merge`]:
//! it and every member of the `retired` stories take the founder `into`, and each retired
//! story's id redirects to `into`'s. Then insert its features and keys.
//!
//! For a removed clipping: delete its keys and features; read the rest of its story; [`split`]
//! them; give each part its founder (the part holding the old founder keeps the story id; if
//! the founder itself left, the old id redirects to the oldest part). Nothing is recomputed
//! over the store.

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
