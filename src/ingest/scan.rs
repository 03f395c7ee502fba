//! Scanning: the file system side of the writer, and the only code that opens clipping files.
//! Where a path lies under the roots (which files are clippings is the configuration's to say),
//! walking a folder, following symlinks (only to
//! regular files inside a root), and reading one clipping: a regular file opened with
//! `O_NONBLOCK` (a FIFO or device is refused without blocking), in one bounded read, with the
//! stat taken from the open file. `clipfeed check` walks and reads through the same functions.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Result;
use rayon::prelude::*;
use tracing::warn;

use crate::clip::{self, Limits};
use crate::config::{self, Config};
use crate::store::{FileId, FileStat};
use crate::systemd::Heartbeat;

/// Symlinked clippings by the canonical path of their target: a change to the target is a
/// change to every link.
pub(super) type Symlinks = HashMap<PathBuf, BTreeSet<PathBuf>>;

/// A clipping file found under a root: its id, absolute path and stat.
pub(super) type Found = (FileId, PathBuf, FileStat);

/// What reading one file gave.
#[derive(Debug)]
pub(super) enum Change {
    Parsed { id: FileId, stat: FileStat, result: Result<Box<clip::Parsed>, String> },
    Removed(FileId),
}

/// What the writer knows of the roots on disk: their canonical forms (to decide whether a
/// symlink points inside one) and the symlinked clippings it follows.
pub(super) struct Scanner {
    canonical_roots: Vec<PathBuf>,
    pub(super) symlinks: Symlinks,
}

impl Scanner {
    pub(super) fn new(cfg: &Config) -> Scanner {
        let canonical_roots = cfg.clippings.iter().map(|r| r.canonicalize().unwrap_or_else(|_| r.clone())).collect();
        Scanner { canonical_roots, symlinks: HashMap::new() }
    }

    /// Where a symlink leads, when it is to be followed: to a regular file inside a root.
    pub(super) fn symlink_target(&self, abs: &Path) -> Option<PathBuf> {
        let target = abs.canonicalize().ok()?;
        let inside = self.canonical_roots.iter().any(|r| target.starts_with(r));
        (inside && target.is_file()).then_some(target)
    }

    /// Symlinked clippings whose target is `abs` (which may no longer exist).
    pub(super) fn links_to(&self, abs: &Path) -> Vec<PathBuf> {
        if self.symlinks.is_empty() {
            return Vec::new();
        }
        let canonical = abs.canonicalize().ok().or_else(|| {
            let parent = abs.parent()?.canonicalize().ok()?;
            Some(parent.join(abs.file_name()?))
        });
        canonical.and_then(|c| self.symlinks.get(&c)).map(|set| set.iter().cloned().collect()).unwrap_or_default()
    }

    /// Every clipping file below `dir` (inside a root) with its stat. Dot-folders are skipped;
    /// symlinked folders are not followed; symlinked files that are followed are added to `links`.
    pub(super) fn walk(
        &self,
        cfg: &Config,
        dir: &Path,
        links: &mut Symlinks,
        heartbeat: &Heartbeat,
    ) -> Result<Vec<Found>> {
        let mut out = Vec::new();
        for entry in entries(dir) {
            heartbeat.beat();
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    warn!("cannot list {}: {e}", e.path().unwrap_or(dir).display());
                    continue;
                }
            };
            let ft = entry.file_type();
            if ft.is_dir() {
                continue;
            }
            let abs = entry.path();
            let Some(id) = locate(cfg, abs) else { continue };
            if !cfg.is_clipping(Path::new(&id.path)) {
                continue;
            }
            if ft.is_symlink() {
                let Some(target) = self.symlink_target(abs) else { continue };
                links.entry(target).or_default().insert(abs.to_path_buf());
            }
            match std::fs::metadata(abs) {
                Ok(m) if m.is_file() => out.push((id, abs.to_path_buf(), stat_of(&m))),
                Ok(_) => {}
                Err(e) => warn!(path = %abs.display(), "cannot stat: {e}"),
            }
        }
        Ok(out)
    }
}

/// Everything below `dir`, dot-folders (below `dir` itself) left out, symlinked folders not
/// followed.
fn entries(dir: &Path) -> impl Iterator<Item = walkdir::Result<walkdir::DirEntry>> {
    walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_str().is_some_and(config::is_hidden))
}

/// The clipping files below `dir` for `clipfeed check`, sorted: each with its path relative to
/// `dir`, which stands for its identity when it has no URL; and the entries that could not be
/// read, as messages.
pub(crate) fn clipping_files(dir: &Path, cfg: &Config) -> (Vec<(PathBuf, String)>, Vec<String>) {
    let (mut found, mut problems) = (Vec::new(), Vec::new());
    for entry in entries(dir) {
        match entry {
            Ok(e) if !e.file_type().is_dir() => {
                let rel = e.path().strip_prefix(dir).unwrap_or(e.path()).to_path_buf();
                if cfg.is_clipping(&rel) {
                    found.push((e.into_path(), rel.to_string_lossy().replace('\\', "/")));
                }
            }
            Ok(_) => {}
            Err(e) => problems.push(e.to_string()),
        }
    }
    found.sort();
    (found, problems)
}

/// The file's id under the root containing `abs`; `None` outside every root, for a root
/// itself, or for a name that is not UTF-8.
pub(super) fn locate(cfg: &Config, abs: &Path) -> Option<FileId> {
    let root = cfg.clippings.iter().find(|r| abs.starts_with(r))?;
    let rel = abs.strip_prefix(root).ok()?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    let Some(parts) = parts else {
        warn!(path = %abs.display(), "file name is not UTF-8; ignored");
        return None;
    };
    if parts.is_empty() {
        return None;
    }
    Some(FileId { root: root_key(root), path: parts.join("/") })
}

/// What a configured root is on disk. The one judgement of a root: the writer's reconcile, its
/// status and `clipfeed check` all ask here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RootState {
    /// A folder this process can list.
    Ok,
    Missing,
    NotAFolder,
    /// It exists but cannot be listed (or stat'ed); why.
    Unreadable(String),
}

impl RootState {
    /// The state's name in `/api/status`.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            RootState::Ok => "ok",
            RootState::Missing => "missing",
            RootState::NotAFolder => "not a folder",
            RootState::Unreadable(_) => "unreadable",
        }
    }

    /// What is wrong, in words, or `None` for a good root.
    pub(crate) fn problem(&self) -> Option<String> {
        match self {
            RootState::Ok => None,
            RootState::Missing => Some("does not exist".into()),
            RootState::NotAFolder => Some("is not a folder".into()),
            RootState::Unreadable(why) => Some(format!("cannot be read: {why}")),
        }
    }
}

/// Looks at a configured root: a folder this process can list, or what it is instead.
pub(crate) fn root_state(root: &Path) -> RootState {
    match std::fs::metadata(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => RootState::Missing,
        Err(e) => RootState::Unreadable(e.to_string()),
        Ok(m) if !m.is_dir() => RootState::NotAFolder,
        Ok(_) => match std::fs::read_dir(root) {
            Ok(_) => RootState::Ok,
            Err(e) => RootState::Unreadable(e.to_string()),
        },
    }
}

/// The key a root is stored under.
pub(super) fn root_key(root: &Path) -> String {
    root.to_string_lossy().into_owned()
}

pub(super) fn stat_of(m: &std::fs::Metadata) -> FileStat {
    use std::os::unix::fs::MetadataExt;
    FileStat { size: m.len(), mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec() }
}

/// Reads a clipping file: regular files only (a FIFO or device is refused without blocking), at
/// most `max_file_bytes`. The outer error is an IO failure; the inner one means "too large".
pub(crate) fn read_clipping(abs: &Path, limits: Limits) -> std::io::Result<(FileStat, Result<Vec<u8>, clip::Error>)> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(abs)?;
    let meta = file.metadata()?;
    let stat = stat_of(&meta);
    if !meta.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"));
    }
    if meta.len() > limits.max_file_bytes {
        return Ok((stat, Err(clip::Error::TooLarge { size: meta.len(), max: limits.max_file_bytes })));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize + 1);
    file.take(limits.max_file_bytes + 1).read_to_end(&mut bytes)?;
    Ok((stat, Ok(bytes)))
}

/// Reads one file and parses it.
fn load(id: FileId, abs: &Path, limits: Limits) -> Change {
    match read_clipping(abs, limits) {
        Ok((stat, bytes)) => {
            let result =
                bytes.and_then(|b| clip::parse_file(&b, &id.path, limits)).map(Box::new).map_err(|e| e.to_string());
            Change::Parsed { id, stat, result }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Change::Removed(id),
        Err(e) => {
            let stat = std::fs::symlink_metadata(abs).map(|m| stat_of(&m)).unwrap_or(FileStat { size: 0, mtime_ns: 0 });
            Change::Parsed { id, stat, result: Err(format!("cannot read: {e}")) }
        }
    }
}

/// Reads and parses files, in parallel when there are many.
pub(super) fn load_all(files: Vec<(FileId, PathBuf)>, limits: Limits, heartbeat: &Heartbeat) -> Vec<Change> {
    let one = |(id, abs): (FileId, PathBuf)| {
        heartbeat.beat();
        load(id, &abs, limits)
    };
    if files.len() > 16 { files.into_par_iter().map(one).collect() } else { files.into_iter().map(one).collect() }
}
