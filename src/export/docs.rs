//! Which documents the export holds, and which must be made again at a pass.
//!
//! A pass walks the published site: every public feed (as `config::Visibility` says) in every
//! format, its linked archive pages (`0..archive_pages` at its current page size, rendered by
//! `views` exactly as the daemon serves them), the index, the OPML list and the stylesheet.
//! Subscription documents, the index and the list are already made; a file is written only when
//! its hash or date differs from what the manifest records. An archive page is rendered again
//! only when what decides its bytes changed: the latest change of a slot in its range, the
//! feed's `meta_at` (title, description, links), whether a next page exists, and the
//! configuration. A linked page lies wholly before the subscription window, so its items change
//! only through slot changes (an edit re-slots an archived item at the head). Archive pages of
//! earlier page sizes, and pages inside the window, are not exported: nginx asks the daemon.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::tree::{Tree, Wanted};
use crate::budget::Budget;
use crate::config::Config;
use crate::feed::{FEED_XSL, Format, Links};
use crate::site::{Encoding, FeedEntry, Rendered, Site};
use crate::store::Reader;
use crate::views::{Shape, Views};

/// What one pass did.
#[derive(Debug, Clone, Default)]
pub struct Pass {
    /// Files written (each coding is a file).
    pub written: usize,
    /// Files removed (no longer exported).
    pub removed: usize,
    /// Files that were current.
    pub kept: usize,
    pub took: Duration,
}

/// Where archive pages come from: `views` renders them, `reader` says when their slots changed.
pub(crate) struct Sources {
    pub(crate) views: Views,
    pub(crate) reader: Reader,
}

/// What the export remembers between passes (in memory; a restart renders every page once and
/// writes those whose bytes differ).
#[derive(Default)]
pub(crate) struct Plan {
    /// Per archive page (path without extension): what decided its bytes when last made.
    pages: HashMap<String, String>,
    /// The configuration those were made under (`Config::feed_fingerprint`).
    config: String,
}

/// The files of one pass, and its counts.
struct Walk<'t> {
    tree: &'t mut Tree,
    keep: BTreeSet<String>,
    /// The archive pages of this pass (paths without extension).
    pages: HashSet<String>,
    pass: Pass,
}

impl Walk<'_> {
    /// Has a document in the tree at `path`, with its gzip and brotli forms when clipfeed
    /// compresses it.
    fn put(&mut self, path: &str, doc: &Rendered) -> Result<()> {
        let mtime = if doc.dated { doc.last_modified.timestamp() } else { 0 };
        let codings: &[(&str, Encoding)] = if doc.compressible() {
            &[("", Encoding::Identity), (".gz", Encoding::Gzip), (".br", Encoding::Brotli)]
        } else {
            &[("", Encoding::Identity)]
        };
        for (suffix, enc) in codings {
            let (file, hash) = (format!("{path}{suffix}"), format!("{}{suffix}", doc.hash));
            let served = format!("{}\t{}\t{}", doc.etag(*enc), doc.content_type, enc.header().unwrap_or("identity"));
            let want = Wanted { path: &file, hash: &hash, mtime, served: &served };
            if self.tree.current(&want) {
                self.pass.kept += 1;
            } else {
                // A copy makes the coding: the published document keeps only what it had.
                let bytes = doc.clone().body_in(*enc);
                self.tree.put(&want, &bytes)?;
                self.pass.written += 1;
            }
            self.keep.insert(file);
        }
        Ok(())
    }
}

impl Plan {
    /// Brings the tree up to date with `site`.
    pub(crate) fn run(&mut self, tree: &mut Tree, site: &Site, cfg: &Config, src: &Sources) -> Result<Pass> {
        let started = Instant::now();
        let fingerprint = cfg.feed_fingerprint();
        if self.config != fingerprint {
            self.pages.clear();
            self.config = fingerprint;
        }
        let mut walk = Walk { tree, keep: BTreeSet::new(), pages: HashSet::new(), pass: Pass::default() };
        let mut feeds: Vec<(&String, &std::sync::Arc<FeedEntry>)> = site.feeds.iter().collect();
        feeds.sort_by(|a, b| a.0.cmp(b.0));
        let visibility = cfg.visibility();
        for (stem, entry) in feeds {
            if visibility.is_private(&entry.key) {
                continue;
            }
            for format in Format::ALL {
                walk.put(&format!("{stem}.{}", format.extension()), entry.current(format))?;
            }
            self.archive_pages(&mut walk, entry, src)?;
        }
        walk.put("index.html", site.index.get())?;
        walk.put("feeds.opml", site.opml.get())?;
        let mut xsl = Rendered::new(FEED_XSL.as_bytes().to_vec(), chrono::DateTime::UNIX_EPOCH, "text/xsl");
        xsl.dated = false;
        walk.put("feed.xsl", &xsl)?;
        let Walk { tree, keep, pages, mut pass } = walk;
        pass.removed = tree.finish(&keep)?;
        self.pages.retain(|page, _| pages.contains(page));
        pass.took = started.elapsed();
        Ok(pass)
    }

    /// The feed's linked archive pages, each made again only when what decides it changed.
    fn archive_pages(&mut self, walk: &mut Walk<'_>, entry: &FeedEntry, src: &Sources) -> Result<()> {
        let budget = Budget::unlimited();
        let ps = entry.page_size;
        let full = entry.log_len / ps.max(1);
        for index in 0..entry.archive_pages {
            let slots = src.reader.slots_changed_at(
                &crate::config::FeedLog::of(&entry.key),
                index * ps,
                (index + 1) * ps,
                &budget,
            )?;
            let decided = format!("{slots:?} {} {}", entry.meta_at.timestamp(), index + 1 < full);
            let stem = Links::archive_path(&entry.key, ps, index, Format::Rss);
            let stem = stem.trim_end_matches(".rss").to_string();
            let files = |f: Format| format!("{stem}.{}", f.extension());
            walk.pages.insert(stem.clone());
            let listed = Format::ALL.iter().all(|f| walk.tree.lists(&files(*f)));
            if listed && self.pages.get(&stem) == Some(&decided) {
                for f in Format::ALL {
                    for suffix in ["", ".gz", ".br"] {
                        let file = format!("{}{suffix}", files(f));
                        if walk.tree.lists(&file) {
                            walk.pass.kept += 1;
                            walk.keep.insert(file);
                        }
                    }
                }
                continue;
            }
            for format in Format::ALL {
                if let Some(doc) = src.views.archive(entry, ps, index, Shape::Feed(format), &budget)? {
                    walk.put(&files(format), &doc)?;
                }
            }
            self.pages.insert(stem, decided);
        }
        Ok(())
    }
}
