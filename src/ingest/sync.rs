//! Bringing the store in step with the disk: the full reconcile (start-up, rescans) compares
//! every root with the store by (path, size, mtime); the paths the watcher reports are each
//! looked at afresh, whatever the event was. Both end in [`Ingest::apply`] and a render.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::Result;
use tracing::{debug, error, info, warn};

use super::scan::{self, RootState, Survey, Symlinks};
use super::to_read::ToRead;
use super::{Core, Ingest};
use crate::config;
use crate::metrics::Metrics;
use crate::site::RootStatus;
use crate::store::{Batch, FileId, FileIndex, FileKey};

/// Each configured root, its state, and the clipping files found below it (`None` when the root
/// is not there to walk: its files are kept).
type Walked<'a> = Vec<(&'a PathBuf, RootState, Option<Survey>)>;

/// Surveys every configured root (see [`Ingest::reconcile`]).
fn walk_roots<'a>(
    cfg: &'a config::Config,
    scanner: &scan::Scanner,
    heartbeat: &crate::systemd::Heartbeat,
) -> (Walked<'a>, Symlinks) {
    let mut links = HashMap::new();
    let mut out = Vec::with_capacity(cfg.clippings.len());
    for root in &cfg.clippings {
        let state = scan::root_state(root);
        let found = match state {
            RootState::Ok => Some(scanner.survey(cfg, root, &mut links, heartbeat)),
            _ => None,
        };
        out.push((root, state, found));
    }
    (out, links)
}

/// What a reconcile found: the files to read (new, changed, or rejected last time), and the keys
/// of the store's files that are gone.
struct Compared {
    to_load: ToRead,
    gone: HashSet<FileKey>,
    /// Clipping files found under the roots.
    files: usize,
}

/// Compares the surveys of the roots with the store's index of files, both sorted by key, in
/// one merge. A file the store knows under a root that was not surveyed (missing, unreadable)
/// is kept, unless that root is no longer configured.
fn compare(cfg: &config::Config, index: &FileIndex, walked: &Walked<'_>) -> Compared {
    let mut matched = vec![false; index.files.len()];
    let mut out = Compared { to_load: ToRead::default(), gone: HashSet::new(), files: 0 };
    for (_, _, survey) in walked {
        let Some(survey) = survey else { continue };
        out.files += survey.seen.len();
        let mut wanted = vec![false; survey.seen.len()];
        let mut k = 0;
        for (seen, wanted) in survey.seen.iter().zip(&mut wanted) {
            while k < index.files.len() && index.files[k].key < seen.key {
                k += 1;
            }
            *wanted = match index.files.get(k) {
                Some(known) if known.key == seen.key => {
                    matched[k] = true;
                    // A file now over `max_file_bytes` (lowered by a reload) is read again, to be
                    // refused: the limit holds for what is stored as for what comes.
                    known.stat != seen.stat || known.rejected || seen.stat.size > cfg.max_file_bytes
                }
                _ => true,
            };
        }
        survey.named(&wanted, &mut out.to_load);
    }
    let surveyed: HashSet<String> =
        walked.iter().filter(|(_, _, s)| s.is_some()).map(|(root, _, _)| scan::root_key(root)).collect();
    let configured: HashSet<String> = cfg.clippings.iter().map(|r| scan::root_key(r)).collect();
    let leaves: Vec<bool> = index.roots.iter().map(|r| surveyed.contains(r) || !configured.contains(r)).collect();
    out.gone = index
        .files
        .iter()
        .zip(&matched)
        .filter(|(known, matched)| !**matched && leaves[known.root as usize])
        .map(|(known, _)| known.key)
        .collect();
    out
}

/// What the paths the watcher reported turned out to be.
#[derive(Default)]
struct Looked {
    to_load: ToRead,
    removed: BTreeSet<FileId>,
    links: Symlinks,
    /// A root itself (or a folder above one) appeared or vanished.
    rescan: bool,
}

impl Ingest {
    /// Compares every root with the store by (path, size, mtime): new and changed files are
    /// parsed, vanished ones removed, rejected ones tried again. A root that does not exist
    /// keeps its files (an unmounted disk must not empty every feed). Files under roots no longer
    /// configured are removed.
    pub fn reconcile(&mut self) -> Result<()> {
        let started = std::time::Instant::now();
        self.core.rescans += 1;
        Metrics::add(&self.core.metrics.rescans, 1);
        // The roots are surveyed while the store's index of files is read (each is a pass over
        // every file); the two, sorted by key, are then merged.
        let core = &self.core;
        let store = &self.store;
        let (cfg, scanner, heartbeat) = (&core.cfg, &core.scanner, &core.heartbeat);
        let (index, walked) = std::thread::scope(|s| {
            let walker = s.spawn(move || {
                let walked = walk_roots(cfg, scanner, heartbeat);
                (walked, started.elapsed())
            });
            let index = store.file_index();
            (index.map(|i| (i, started.elapsed())), walker.join())
        });
        let (index, index_took) = index?;
        self.core.stop.check()?;
        let ((walked, links), walk_took) = walked.map_err(|_| anyhow::anyhow!("the walk of the roots panicked"))?;
        let Compared { to_load, gone, files } = compare(&core.cfg, &index, &walked);
        drop(index);
        let gone = self.store.files_by_key(&gone)?;
        let roots = walked
            .iter()
            .map(|(root, state, survey)| {
                let count = survey.as_ref().map_or(0, |s| s.seen.len() as u64);
                root_status(core.cfg.root_name(&scan::root_key(root)), state, count)
            })
            .collect();
        drop(walked);
        let (removed, parsed) = (gone.len(), to_load.len());
        self.core.scanner.symlinks = links;
        self.set_roots(roots);
        self.core.waiting = (removed + parsed) as u64;
        self.apply(gone, to_load, true)?;
        self.core.waiting = 0;
        let was_cold = self.core.cold;
        if was_cold {
            // Every feed now has what the roots give it: an empty one is empty, an unknown one
            // does not exist. Recorded, so the next start serves the stored feeds as they are;
            // and published in the same step as `ready`, so no reader sees ready-but-cold.
            let b = self.store.batch()?;
            b.set_meta(super::RECONCILED, &super::now().to_rfc3339())?;
            b.commit()?;
            self.core.cold = false;
        }
        self.core.ready = true;
        self.render()?;
        if was_cold {
            self.core.publish(&self.core.rejections);
        }
        // A cold build's file rewritten compactly once its feeds are out (readers are served
        // from the published documents and their own snapshots meanwhile).
        if self.store.batch()?.meta(super::large::COMPACT_DUE)?.is_some() {
            self.core.compacting = true;
            self.core.publish(&self.core.rejections);
            self.compact();
            self.core.compacting = false;
            self.core.publish(&self.core.rejections);
        }
        let ms = started.elapsed().as_millis() as u64;
        release_freed_memory();
        let (index_ms, walk_ms) = (index_took.as_millis() as u64, walk_took.as_millis() as u64);
        info!(files, parsed, removed, ms, index_ms, walk_ms, "clippings reconciled with the store");
        Ok(())
    }

    /// Handles paths reported by the watcher: each is looked at afresh, whatever the event was.
    pub(crate) fn touched(&mut self, mut paths: Vec<PathBuf>) -> Result<()> {
        let started = std::time::Instant::now();
        // A symlinked clipping changes when its target does.
        let linked: Vec<PathBuf> = paths.iter().flat_map(|p| self.core.scanner.links_to(p)).collect();
        paths.extend(linked);
        paths.sort();
        paths.dedup();
        let looked = {
            let b = self.store.batch()?;
            self.core.look_at(&b, &paths)?
        };
        if looked.rescan {
            return self.reconcile();
        }
        for (target, set) in looked.links {
            self.core.scanner.symlinks.entry(target).or_default().extend(set);
        }
        self.core.waiting = (looked.removed.len() + looked.to_load.len()) as u64;
        self.apply(looked.removed.into_iter().collect(), looked.to_load, false)?;
        self.core.waiting = 0;
        let applied = started.elapsed();
        self.render()?;
        debug!(
            paths = paths.len(),
            apply_ms = applied.as_secs_f64() * 1e3,
            render_ms = (started.elapsed() - applied).as_secs_f64() * 1e3,
            "paths handled"
        );
        Ok(())
    }
}

impl Ingest {
    /// Records what the reconcile found of each root, logging each root whose state changed: a
    /// root that is not a readable folder at ERROR (its clippings keep serving; a mistyped
    /// folder must not pass for an empty one), one that came back at INFO.
    fn set_roots(&mut self, roots: Vec<RootStatus>) {
        for now in &roots {
            let was = self.core.roots.iter().find(|r| r.path == now.path);
            if was.is_some_and(|w| w.state == now.state) {
                continue;
            }
            match &now.problem {
                Some(problem) => {
                    error!(root = %now.path, state = now.state, "clippings root {problem}; its clippings keep serving, and it is read once it is a folder")
                }
                None if was.is_some() => info!(root = %now.path, files = now.files, "clippings root is readable again"),
                None => {}
            }
        }
        self.core.metrics.set_roots(roots.iter().map(|r| r.state));
        self.core.roots = roots;
    }

    /// When the store was filled by a build that reads clipping files differently (another
    /// `clip::FORMAT_VERSION`), the next reconcile reads every file again, so that dates, aliases
    /// and key notes are as this build reads them. Ids do not change (see `item::key_for`).
    pub(super) fn reread_if_format_changed(&mut self) -> Result<()> {
        let b = self.store.batch()?;
        if b.meta("clip_format")?.as_deref() == Some(crate::clip::FORMAT_VERSION) {
            return Ok(());
        }
        let files = b.forget_file_stats()?;
        b.set_meta("clip_format", crate::clip::FORMAT_VERSION)?;
        b.commit()?;
        if files > 0 {
            info!(files, "this build reads clipping files differently; each is read again");
        }
        Ok(())
    }
}

impl Core {
    /// Decides from the file system what each path is now: gone (a file, or a folder with
    /// everything the store has below it), a folder to walk, or a file to read.
    fn look_at(&self, b: &Batch<'_>, paths: &[PathBuf]) -> Result<Looked> {
        let mut out = Looked::default();
        for abs in paths {
            let Some(id) = scan::locate(&self.cfg, abs) else {
                out.rescan |= self.cfg.clippings.iter().any(|r| r.starts_with(abs));
                continue;
            };
            if id.path.split('/').any(config::is_hidden) {
                continue;
            }
            match std::fs::symlink_metadata(abs) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if b.file(&id)?.is_some() {
                        out.removed.insert(id.clone());
                    }
                    for path in b.files_under(&id.root, &id.path)? {
                        out.removed.insert(FileId { root: id.root.clone(), path });
                    }
                }
                Err(e) => warn!(path = %abs.display(), "cannot stat: {e}"),
                Ok(m) if m.is_dir() => {
                    let found = self.scanner.walk(&self.cfg, abs, &mut out.links, &self.heartbeat)?;
                    let found_ids: HashSet<&FileId> = found.iter().map(|(id, _, _)| id).collect();
                    for path in b.files_under(&id.root, &id.path)? {
                        let fid = FileId { root: id.root.clone(), path };
                        if !found_ids.contains(&fid) {
                            out.removed.insert(fid);
                        }
                    }
                    out.to_load.extend(found.into_iter().map(|(id, abs, _)| (id, abs)));
                }
                Ok(m) => {
                    // Only regular files (or links to one inside a root): a FIFO or device
                    // named like a clipping would block or never end.
                    let target = if m.file_type().is_symlink() { self.scanner.symlink_target(abs) } else { None };
                    let regular = m.is_file() || target.is_some();
                    // A folder replaced by a file of its name (moved away, then the file made
                    // at once): what the store had below the folder is gone. (Not for a root
                    // itself: a root that is not a folder keeps its files, as a missing one does.)
                    if !id.path.is_empty() {
                        for path in b.files_under(&id.root, &id.path)? {
                            out.removed.insert(FileId { root: id.root.clone(), path });
                        }
                    }
                    if regular && self.cfg.is_clipping(Path::new(&id.path)) {
                        if let Some(t) = target {
                            out.links.entry(t).or_default().insert(abs.clone());
                        }
                        out.to_load.push(id, abs.clone());
                    } else if b.file(&id)?.is_some() {
                        out.removed.insert(id);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// A root's line in `/api/status`, named as the configuration writes it (never where it is).
fn root_status(name: &str, state: &RootState, files: u64) -> RootStatus {
    RootStatus { files, path: name.to_string(), state: state.label(), problem: state.problem() }
}

/// Hands memory freed after a large job (a reconcile's file index, a batch's parses) back to the
/// system, so the resident size settles near what the published feeds need.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// Not a test: makes a store that knows every clipping file under `CLIPFEED_SCALE_ROOT` by
    /// its stat alone (no parse, no item), at `CLIPFEED_SCALE_STORE`, in seconds rather than the
    /// hour a cold ingest of 1,000,000 files takes. A start on it (`bench/scale.py --store`)
    /// measures what a restart's reconcile costs with that many files: the survey of the roots,
    /// the store's index of files, their comparison (and not what depends on the items).
    #[test]
    #[ignore = "makes a store for a measurement; see its comment"]
    fn a_store_of_many_files() {
        let (Ok(root), Ok(db)) = (std::env::var("CLIPFEED_SCALE_ROOT"), std::env::var("CLIPFEED_SCALE_STORE")) else {
            panic!("set CLIPFEED_SCALE_ROOT and CLIPFEED_SCALE_STORE");
        };
        let (root, db) = (PathBuf::from(root), PathBuf::from(db));
        let cfg = config::Config::for_test(&root, &db);
        let scanner = scan::Scanner::new(&cfg);
        let beat = crate::systemd::Heartbeat::new("test");
        let survey = scanner.survey(&cfg, &root, &mut Symlinks::new(), &beat);
        let wanted = vec![true; survey.seen.len()];
        let stats: HashMap<FileKey, crate::store::FileStat> = survey.seen.iter().map(|s| (s.key, s.stat)).collect();
        let keys = crate::store::FileKeys::new(&scan::root_key(&root));
        let mut store = Store::open(&db).unwrap();
        let b = store.batch().unwrap();
        let mut n = 0;
        let mut named = ToRead::default();
        survey.named(&wanted, &mut named);
        for (id, _) in named.to_pairs() {
            b.put_file_stat(&id, stats[&keys.of(id.path.as_bytes())]).unwrap();
            n += 1;
        }
        // Read by this build: a start must not read every file again.
        b.set_meta("clip_format", crate::clip::FORMAT_VERSION).unwrap();
        b.commit().unwrap();
        println!("{n} files recorded in {}", db.display());
    }
}
