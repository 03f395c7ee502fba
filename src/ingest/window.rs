//! The feed window: the arithmetic of subscription documents and archive pages over a feed's
//! append-only log, and how a feed's recorded state moves when it is rendered. Pure functions:
//! the store is reached only through the closure [`window`] is given, and the clock only
//! through the time passed in.
//!
//! A feed's log is cut into pages of `P = ceil(items_per_feed / 2)` slots. The subscription
//! document shows the open slots from the start of the last full page on (between `P` and
//! `2P - 1` slots); the full pages before it are the archive. When closed slots leave it fewer
//! than `P` open ones, its start moves back a page at a time. A feed's time moves only when its
//! signature (everything the document shows but its own time) changes.

use std::collections::BTreeMap;

use anyhow::Result;
use chrono::{DateTime, Utc};

use crate::feed::{FeedMeta, Page};
use crate::item::Item;
use crate::store::FeedState;

/// Slots per archive page for a feed of `items_per_feed` items: half a feed, rounded up, so the
/// subscription document (the last full page and the open one) never holds more than
/// `items_per_feed` items.
pub(super) fn page_size(items_per_feed: usize) -> u64 {
    items_per_feed.div_ceil(2) as u64
}

/// Where a feed's subscription document starts in its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    /// Full pages before the document: the archive pages it links to.
    pub(crate) archive_pages: u64,
    /// The first slot the document shows.
    pub(crate) start: u64,
}

/// The window of a log of `len` slots cut into pages of `page_size`; `open(from, to)` counts
/// the open slots in `from..to`. The document starts at the last full page, and moves back a
/// page at a time while it holds fewer than a page of open slots and there is a page before it.
pub(crate) fn window(len: u64, page_size: u64, mut open: impl FnMut(u64, u64) -> Result<u64>) -> Result<Window> {
    let mut archive_pages = (len / page_size).saturating_sub(1);
    let mut shown = open(archive_pages * page_size, len)?;
    while shown < page_size && archive_pages > 0 {
        archive_pages -= 1;
        shown += open(archive_pages * page_size, (archive_pages + 1) * page_size)?;
    }
    Ok(Window { archive_pages, start: archive_pages * page_size })
}

/// Whether an edited item that stays in a feed gets a new slot at the end of its log: when its
/// open slot lies before the subscription window (on an archive page, where subscribers would
/// not see the edit), or when it has none. Inside the window it keeps its slot, so repeated
/// saves of one file do not crowd out the rest.
pub(super) fn needs_new_slot(open_slot: Option<u64>, window_start: u64) -> bool {
    open_slot.is_none_or(|pos| pos < window_start)
}

/// A hash over everything a subscription document shows except its own time: of each item, what
/// feeds show of it ([`crate::item::ItemData::shown_hash`]), so a change to its quality or type
/// alone leaves the document, its date and its ETag as they were. Written `2:` and the hash;
/// stores written before hold [`legacy_signature`]s.
pub(super) fn signature(
    meta: &FeedMeta,
    page: &Page,
    items: &[Item],
    tombstones: &[(String, DateTime<Utc>)],
    base: &str,
) -> String {
    format!("2:{}", hashed(meta, page, items, tombstones, base, |d| d.shown_hash()))
}

/// The signature as stores written before [`signature`] hold it: over each item's whole data.
/// Asked only to tell whether such a store's feed changed, so an upgrade dates no feed anew.
pub(super) fn legacy_signature(
    meta: &FeedMeta,
    page: &Page,
    items: &[Item],
    tombstones: &[(String, DateTime<Utc>)],
    base: &str,
) -> String {
    hashed(meta, page, items, tombstones, base, |d| d.hash())
}

/// Whether `signature` was written before [`signature`]'s form.
pub(super) fn is_legacy(signature: &str) -> bool {
    !signature.starts_with("2:")
}

fn hashed(
    meta: &FeedMeta,
    page: &Page,
    items: &[Item],
    tombstones: &[(String, DateTime<Utc>)],
    base: &str,
    item_hash: impl Fn(&crate::item::ItemData) -> String,
) -> String {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let icon = meta.icon.as_ref().map(|i| format!("{i:?}")).unwrap_or_default();
    for s in [&meta.title, &meta.description, &meta.site_title, base, &icon, &format!("{page:?}")] {
        h.update(s.as_bytes());
        h.update(&[0]);
    }
    for it in items {
        h.update(it.id.as_bytes());
        h.update(&it.updated.timestamp().to_le_bytes());
        h.update(item_hash(&it.data).as_bytes());
    }
    for (id, at) in tombstones {
        h.update(id.as_bytes());
        h.update(&at.timestamp().to_le_bytes());
    }
    format!("{:032x}", h.digest128())
}

/// A hash of what archive pages and filtered views show of the feed itself: its title,
/// description, the site's title and the links' base.
pub(super) fn meta_hash(meta: &FeedMeta, base: &str) -> String {
    let m = format!("{}\0{}\0{}\0{}", meta.title, meta.description, meta.site_title, base);
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(m.as_bytes()))
}

/// What a render saw of a feed, from which its new state follows.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    pub(super) signature: String,
    pub(super) meta: String,
    pub(super) page_size: u64,
    /// Slots in the log.
    pub(super) log_len: u64,
    /// An item entered, changed in or left the feed since its last render.
    pub(super) history_changed: bool,
    /// The newest `updated` among the items the document shows.
    pub(super) newest: Option<DateTime<Utc>>,
}

/// The feed's state after a render at `t` (second precision), given what was recorded before.
///
/// - A feed rendered for the first time is as new as its newest item (`t` when it has none).
///   (never later than `t`: an item dated in the future does not date the feed ahead of the clock).
/// - Its time (`changed_at`) moves to `t` only when its signature changed. A change within the
///   second of the last one keeps that second and marks it `ambiguous`, so a client holding that
///   date is not told the older version is current.
/// - An ambiguous time settles: rendered again once the clock has passed that second, an
///   unchanged feed moves to `t` and is no longer ambiguous, so clients holding the ambiguous
///   date get one full answer and then `304 Not Modified` again. Otherwise an unchanged feed
///   keeps its time as it was.
/// - Its history time moves the same way, when anything in its history changed.
/// - A new page size retires the old one with the full pages it had, so links to them keep
///   their content; going back to a retired size takes it out of the retired ones.
/// - `meta_at` moves when the title, description or links change, to a second strictly later
///   than it and the history time, even within the same second: archive pages date themselves
///   by it.
pub(super) fn next_state(old: Option<FeedState>, seen: Seen, t: DateTime<Utc>) -> FeedState {
    let full_pages = seen.log_len / seen.page_size;
    let Some(old) = old else {
        let at = seen.newest.map_or(t, |n| n.min(t));
        return FeedState {
            signature: seen.signature,
            changed_at: at,
            ambiguous: false,
            history_at: at,
            history_ambiguous: false,
            page_size: seen.page_size,
            full_pages,
            retired: BTreeMap::new(),
            meta: seen.meta,
            meta_at: at,
        };
    };
    let (changed_at, ambiguous) = advance((old.changed_at, old.ambiguous), old.signature != seen.signature, t);
    let (history_at, history_ambiguous) = advance((old.history_at, old.history_ambiguous), seen.history_changed, t);
    let mut retired = old.retired;
    if old.page_size != seen.page_size && old.page_size > 0 && old.full_pages > 0 {
        retired.insert(old.page_size, old.full_pages);
    }
    retired.remove(&seen.page_size);
    // Title and address changes are rare, so this runs at most a second ahead of the clock. It
    // passes the history time too: an archive page is dated by its slots as well, which may
    // share the second of this change.
    let meta_at = if old.meta == seen.meta {
        old.meta_at
    } else {
        (old.meta_at.max(old.history_at) + chrono::Duration::seconds(1)).max(t)
    };
    FeedState {
        signature: seen.signature,
        changed_at,
        ambiguous,
        history_at,
        history_ambiguous,
        page_size: seen.page_size,
        full_pages,
        retired,
        meta: seen.meta,
        meta_at,
    }
}

/// A date and whether it is ambiguous, after a render at `t` that `changed` what it dates or not:
/// a change moves it to `t` (ambiguous when it stays in its second); an ambiguous date the clock
/// has passed settles at `t`.
fn advance((at, ambiguous): (DateTime<Utc>, bool), changed: bool, t: DateTime<Utc>) -> (DateTime<Utc>, bool) {
    if changed {
        (at.max(t), at >= t)
    } else if ambiguous && t > at {
        (t, false)
    } else {
        (at, ambiguous)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::FeedKey;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    /// The window over a log whose slots are open where `open` says.
    fn window_of(open: &[bool], page_size: u64) -> Window {
        let count = |from: u64, to: u64| Ok(open[from as usize..to as usize].iter().filter(|o| **o).count() as u64);
        window(open.len() as u64, page_size, count).unwrap()
    }

    #[test]
    fn pages_are_half_a_feed_rounded_up() {
        assert_eq!([1, 2, 5, 50, 51].map(page_size), [1, 1, 3, 25, 26]);
    }

    #[test]
    fn the_document_starts_at_the_last_full_page() {
        let p = 5;
        // Fewer than two pages: everything is in the document, nothing is archived.
        for len in [0, 1, 4, 5, 9] {
            assert_eq!(window_of(&vec![true; len], p), Window { archive_pages: 0, start: 0 }, "{len} slots");
        }
        // From two full pages on, the full pages before the last full one are the archive.
        assert_eq!(window_of(&[true; 10], p), Window { archive_pages: 1, start: 5 });
        assert_eq!(window_of(&[true; 14], p), Window { archive_pages: 1, start: 5 });
        assert_eq!(window_of(&[true; 28], p), Window { archive_pages: 4, start: 20 });
    }

    #[test]
    fn closed_slots_move_the_start_back_a_page_at_a_time() {
        let p = 3;
        // 12 slots, the last page's three closed: the document (from 9) shows nothing open, so
        // it reaches back to 6, which gives three.
        let mut open = vec![true; 12];
        open[9..].fill(false);
        assert_eq!(window_of(&open, p), Window { archive_pages: 2, start: 6 });
        // With pages 2 and 3 mostly closed, it keeps going back until a page's worth is open.
        open[6..8].fill(false);
        open[4] = false;
        assert_eq!(window_of(&open, p), Window { archive_pages: 1, start: 3 });
        // Everything closed: back to the first page, with no archive left.
        assert_eq!(window_of(&[false; 12], p), Window { archive_pages: 0, start: 0 });
    }

    #[test]
    fn every_log_gives_a_window_within_the_promised_bounds() {
        // Every pattern of open and closed slots up to 10 slots, for pages of 1 to 4.
        for p in 1..=4u64 {
            for len in 0..=10usize {
                for mask in 0..(1u32 << len) {
                    let open: Vec<bool> = (0..len).map(|i| mask & (1 << i) != 0).collect();
                    let w = window_of(&open, p);
                    let count = |from: u64, to: u64| open[from as usize..to as usize].iter().filter(|o| **o).count();
                    let shown = count(w.start, len as u64) as u64;
                    assert_eq!(w.start, w.archive_pages * p, "starts on a page boundary");
                    assert!(w.start + p <= len as u64 || w.start == 0, "archive pages are full pages");
                    assert!(shown < 2 * p, "never more than 2P - 1 open slots ({open:?}, P={p})");
                    assert!(
                        shown >= p.min(count(0, len as u64) as u64) || w.start == 0,
                        "at least a page when there is one"
                    );
                    if w.archive_pages > 0 {
                        // It did not go back further than it had to.
                        assert!(count(w.start + p, len as u64) < p as usize || w.start + 2 * p > len as u64);
                    }
                }
            }
        }
    }

    #[test]
    fn an_edit_keeps_its_slot_inside_the_window_only() {
        assert!(!needs_new_slot(Some(10), 10), "first slot of the document");
        assert!(!needs_new_slot(Some(14), 10));
        assert!(needs_new_slot(Some(9), 10), "on an archive page");
        assert!(needs_new_slot(None, 10), "no open slot");
    }

    fn meta(title: &str) -> FeedMeta {
        FeedMeta {
            site_title: "Site".into(),
            title: title.into(),
            description: "About".into(),
            updated: at(0),
            key: FeedKey::All,
            icon: None,
        }
    }

    #[test]
    fn the_signature_covers_what_the_document_shows_but_its_time() {
        let page = Page::Current { newest_archive: None, page_size: 5 };
        let base = signature(&meta("A"), &page, &[], &[], "http://x/");
        let later = FeedMeta { updated: at(99), ..meta("A") };
        assert_eq!(signature(&later, &page, &[], &[], "http://x/"), base, "its own time is left out");
        assert_ne!(signature(&meta("B"), &page, &[], &[], "http://x/"), base, "title");
        assert_ne!(signature(&meta("A"), &page, &[], &[], "http://y/"), base, "links");
        let archived = Page::Current { newest_archive: Some(0), page_size: 5 };
        assert_ne!(signature(&meta("A"), &archived, &[], &[], "http://x/"), base, "archive link");
        let gone = [("id".to_string(), at(1))];
        assert_ne!(signature(&meta("A"), &page, &[], &gone, "http://x/"), base, "tombstones");
        assert_ne!(meta_hash(&meta("A"), "http://x/"), meta_hash(&meta("B"), "http://x/"));
        assert_eq!(meta_hash(&later, "http://x/"), meta_hash(&meta("A"), "http://x/"));
    }

    #[test]
    fn an_items_quality_or_type_alone_leaves_the_signature_and_the_legacy_form_is_told_apart() {
        let item = |more: &str| {
            let text = format!("---\ntitle: T\nwebUrl: https://x.example/a\n{more}---\n");
            let clip = crate::clip::parse(text.as_bytes(), Default::default()).unwrap().clipping;
            let data =
                crate::item::ItemData { clip, topics: Vec::new(), published: at(0), dated: true, also: Vec::new() };
            Item { id: "i".into(), updated: at(0), data }
        };
        let page = Page::Current { newest_archive: None, page_size: 5 };
        let sig = |more: &str| signature(&meta("A"), &page, &[item(more)], &[], "http://x/");
        let legacy = |more: &str| legacy_signature(&meta("A"), &page, &[item(more)], &[], "http://x/");
        assert_eq!(sig("quality: 40\ntype: article\n"), sig("quality: 90\ntype: video\n"));
        assert_ne!(sig("quality: 40\n"), sig("quality: 40\nexcerpt: E\n"), "an edit readers see");
        assert_ne!(legacy("quality: 40\n"), legacy("quality: 90\n"), "the old form covered everything");
        assert!(!is_legacy(&sig("")) && is_legacy(&legacy("")));
    }

    fn seen(signature: &str) -> Seen {
        Seen {
            signature: signature.into(),
            meta: "m".into(),
            page_size: 5,
            log_len: 12,
            history_changed: false,
            newest: Some(at(-50)),
        }
    }

    #[test]
    fn a_first_render_is_as_new_as_its_newest_item() {
        let s = next_state(None, seen("a"), at(0));
        assert_eq!((s.changed_at, s.history_at, s.meta_at), (at(-50), at(-50), at(-50)));
        assert!(!s.ambiguous && !s.history_ambiguous && s.retired.is_empty());
        assert_eq!((s.page_size, s.full_pages), (5, 2));
        let ahead = next_state(None, Seen { newest: Some(at(99)), ..seen("a") }, at(0));
        assert_eq!(ahead.changed_at, at(0), "never ahead of the clock");
        let empty = next_state(None, Seen { newest: None, ..seen("a") }, at(0));
        assert_eq!(empty.changed_at, at(0), "an empty feed is as new as its first render");
    }

    #[test]
    fn the_time_moves_only_when_the_signature_changes() {
        let first = next_state(None, seen("a"), at(0));
        let same = next_state(Some(first.clone()), seen("a"), at(10));
        assert_eq!((same.changed_at, same.ambiguous), (first.changed_at, false));
        let changed = next_state(Some(first), seen("b"), at(10));
        assert_eq!((changed.changed_at, changed.ambiguous), (at(10), false));
        // Again within that second: same date, flagged; then unchanged, the flag stays.
        let again = next_state(Some(changed), seen("c"), at(10));
        assert_eq!((again.changed_at, again.ambiguous), (at(10), true));
        let quiet = next_state(Some(again.clone()), seen("c"), at(10));
        assert_eq!((quiet.changed_at, quiet.ambiguous), (at(10), true), "still within its second");
        // Rendered again once the clock has passed that second, unchanged: the date settles
        // at a later second, no longer ambiguous, and stays there.
        let settled = next_state(Some(quiet), seen("c"), at(11));
        assert_eq!((settled.changed_at, settled.ambiguous), (at(11), false));
        let still = next_state(Some(settled), seen("c"), at(15));
        assert_eq!((still.changed_at, still.ambiguous), (at(11), false));
        // The next change, a second later, moves it.
        let next = next_state(Some(again), seen("d"), at(12));
        assert_eq!((next.changed_at, next.ambiguous), (at(12), false));
        // A clock that went back never moves the date backwards.
        let back = next_state(Some(next), seen("e"), at(5));
        assert_eq!((back.changed_at, back.ambiguous), (at(12), true));
    }

    #[test]
    fn the_history_time_moves_with_any_change_in_the_history() {
        let first = next_state(None, seen("a"), at(0));
        let busy = Seen { history_changed: true, ..seen("a") };
        let s = next_state(Some(first.clone()), busy.clone(), at(10));
        assert_eq!((s.history_at, s.history_ambiguous, s.changed_at), (at(10), false, first.changed_at));
        let s = next_state(Some(s), busy, at(10));
        assert_eq!((s.history_at, s.history_ambiguous), (at(10), true));
        let s = next_state(Some(s), seen("a"), at(10));
        assert_eq!((s.history_at, s.history_ambiguous), (at(10), true), "kept within its second");
        let s = next_state(Some(s), seen("a"), at(20));
        assert_eq!((s.history_at, s.history_ambiguous, s.changed_at), (at(20), false, first.changed_at), "settled");
    }

    #[test]
    fn a_new_page_size_retires_the_old_pages() {
        let first = next_state(None, seen("a"), at(0));
        let smaller = next_state(Some(first), Seen { page_size: 3, ..seen("a") }, at(1));
        assert_eq!(smaller.retired, BTreeMap::from([(5, 2)]));
        assert_eq!((smaller.page_size, smaller.full_pages), (3, 4));
        let other = next_state(Some(smaller), Seen { page_size: 4, ..seen("a") }, at(2));
        assert_eq!(other.retired, BTreeMap::from([(5, 2), (3, 4)]));
        let back = next_state(Some(other), seen("a"), at(3));
        assert_eq!(back.retired, BTreeMap::from([(3, 4), (4, 3)]), "the size in use is not retired");
        // A size with no full page leaves nothing to keep.
        let empty = next_state(None, Seen { log_len: 2, ..seen("a") }, at(0));
        let resized = next_state(Some(empty), Seen { page_size: 1, log_len: 2, ..seen("a") }, at(1));
        assert!(resized.retired.is_empty());
    }

    #[test]
    fn meta_time_is_strictly_increasing() {
        let first = next_state(None, seen("a"), at(0));
        let kept = next_state(Some(first.clone()), seen("a"), at(100));
        assert_eq!(kept.meta_at, first.meta_at);
        let renamed = next_state(Some(kept), Seen { meta: "n".into(), ..seen("a") }, at(100));
        assert_eq!(renamed.meta_at, at(100));
        let again = next_state(Some(renamed), Seen { meta: "o".into(), ..seen("a") }, at(100));
        assert_eq!(again.meta_at, at(101), "a second change within the second still moves it");
    }
}
