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
use crate::store::{FileId, FileKey, FileKeys, FileStat};
use crate::systemd::Heartbeat;

use super::to_read::ToRead;

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

/// Files handed to the thread pool at once by a survey: enough to keep both cores busy, few
/// enough that a folder of a million files is never held whole.
const SURVEY_CHUNK: usize = 4096;
/// Chunks a survey lets wait for the pool at most; past that the lister stats the next itself
/// (one in unit tests, whose folders are a few chunks, so that both ways are taken).
const SURVEY_QUEUED: usize = if cfg!(test) { 1 } else { 16 };

/// A clipping file a survey found: its key, stat, and the folder it is in (an index into
/// [`Survey::dirs`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct Seen {
    pub(super) key: FileKey,
    pub(super) stat: FileStat,
    dir: u32,
    /// The length of its path relative to the root (saturated), so that naming the files
    /// reserves their paths' buffer once (growing it by doubling held half as much again, about
    /// 90 MB at a million files, for a moment).
    rel_len: u16,
}

/// Every clipping file below a root, compact (no string per file): what a reconcile compares
/// with the store's [`crate::store::FileIndex`]. The same files as [`Scanner::walk`] finds.
#[derive(Debug)]
pub(super) struct Survey {
    root: PathBuf,
    keys: FileKeys,
    /// Sorted by key.
    pub(super) seen: Vec<Seen>,
    /// The folders walked, relative to the root ("" for the root itself, else ending in '/').
    dirs: Vec<String>,
}

impl Scanner {
    /// Surveys a root: each folder is listed on this thread while the pool stats its files
    /// (relative to the folder, with the type the listing gave: one system call a file), a chunk
    /// at a time, with a few chunks queued at most (`stat_or_queue`). Symlinked clippings that
    /// are followed are added to `links`.
    pub(super) fn survey(&self, cfg: &Config, root: &Path, links: &mut Symlinks, heartbeat: &Heartbeat) -> Survey {
        let keys = FileKeys::new(&root_key(root));
        let mut dirs = vec![String::new()];
        let found = std::sync::Mutex::new((Vec::new(), Symlinks::new()));
        let queued = std::sync::atomic::AtomicUsize::new(0);
        rayon::scope(|s| {
            let mut at = 0;
            while at < dirs.len() {
                heartbeat.beat();
                let prefix = dirs[at].clone();
                let Some((fd, listing)) = open_dir(&root.join(&prefix)) else {
                    at += 1;
                    continue;
                };
                let fd = std::sync::Arc::new(fd);
                let mut chunk = Vec::with_capacity(SURVEY_CHUNK);
                for entry in listing {
                    let Some((name, ft)) = listed(entry, root, &prefix) else { continue };
                    if ft.is_dir() {
                        if !config::is_hidden(&name) {
                            dirs.push(format!("{prefix}{name}/"));
                        }
                        continue;
                    }
                    let rel = format!("{prefix}{name}");
                    if cfg.is_clipping(Path::new(&rel)) {
                        chunk.push((rel, ft.is_symlink()));
                    }
                    if chunk.len() == SURVEY_CHUNK {
                        heartbeat.beat();
                        let chunk = std::mem::replace(&mut chunk, Vec::with_capacity(SURVEY_CHUNK));
                        self.stat_or_queue(s, &queued, (root, keys), (at as u32, &fd), chunk, &found);
                    }
                }
                self.stat_or_queue(s, &queued, (root, keys), (at as u32, &fd), chunk, &found);
                at += 1;
            }
        });
        let (mut seen, found_links) = found.into_inner().unwrap_or_else(|e| e.into_inner());
        for (target, set) in found_links {
            links.entry(target).or_default().extend(set);
        }
        seen.par_sort_unstable_by_key(|s: &Seen| s.key);
        Survey { root: root.to_path_buf(), keys, seen, dirs }
    }

    /// Hands a chunk to the pool, or, when [`SURVEY_QUEUED`] chunks already wait there, stats it
    /// on this thread: listing a folder outruns stat'ing its files, and a million files' paths
    /// queued took about 100 MB.
    fn stat_or_queue<'s>(
        &'s self,
        s: &rayon::Scope<'s>,
        queued: &'s std::sync::atomic::AtomicUsize,
        (root, keys): (&'s Path, FileKeys),
        (dir, fd): (u32, &std::sync::Arc<std::fs::File>),
        chunk: Vec<(String, bool)>,
        found: &'s std::sync::Mutex<(Vec<Seen>, Symlinks)>,
    ) {
        use std::sync::atomic::Ordering::SeqCst;
        if queued.load(SeqCst) >= SURVEY_QUEUED {
            return self.stat_chunk(root, keys, (dir, fd), chunk, found);
        }
        queued.fetch_add(1, SeqCst);
        let fd = fd.clone();
        s.spawn(move |_| {
            self.stat_chunk(root, keys, (dir, &fd), chunk, found);
            queued.fetch_sub(1, SeqCst);
        });
    }

    /// Stats one chunk of a folder's clipping files (paths relative to the root, whether each is
    /// a symlink) and adds what it found to `found`.
    fn stat_chunk(
        &self,
        root: &Path,
        keys: FileKeys,
        (dir, fd): (u32, &std::fs::File),
        chunk: Vec<(String, bool)>,
        found: &std::sync::Mutex<(Vec<Seen>, Symlinks)>,
    ) {
        let mut seen = Vec::with_capacity(chunk.len());
        let mut links = Symlinks::new();
        for (rel, symlink) in chunk {
            let stat = if symlink {
                let abs = root.join(&rel);
                let Some(target) = self.symlink_target(&abs) else { continue };
                let stat = std::fs::metadata(&abs).ok().filter(|m| m.is_file()).map(|m| stat_of(&m));
                links.entry(target).or_default().insert(abs);
                stat
            } else {
                let name = rel.rsplit('/').next().unwrap_or(&rel);
                regular_stat_at(fd, name).unwrap_or_else(|e| {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        warn!(path = %root.join(&rel).display(), "cannot stat: {e}");
                    }
                    None
                })
            };
            if let Some(stat) = stat {
                let rel_len = u16::try_from(rel.len()).unwrap_or(u16::MAX);
                seen.push(Seen { key: keys.of(rel.as_bytes()), stat, dir, rel_len });
            }
        }
        let mut found = found.lock().unwrap_or_else(|e| e.into_inner());
        found.0.extend(seen);
        for (target, set) in links {
            found.1.entry(target).or_default().extend(set);
        }
    }
}

impl Survey {
    /// The files of this survey that `wanted` marks (one flag per entry of [`Survey::seen`], in
    /// its order: a byte a file, where a set of their keys took about 35 bytes, more while it
    /// grew), named (id and absolute path): their folders are listed again, each listed file
    /// found in `seen` by its key (a file gone meanwhile is left out, one come meanwhile too).
    pub(super) fn named(&self, wanted: &[bool], out: &mut ToRead) {
        debug_assert_eq!(wanted.len(), self.seen.len());
        let marked = || self.seen.iter().zip(wanted).filter(|(_, w)| **w).map(|(s, _)| s);
        let dirs: BTreeSet<u32> = marked().map(|s| s.dir).collect();
        out.reserve(marked().count(), marked().map(|s| usize::from(s.rel_len)).sum());
        let root = root_key(&self.root);
        for dir in dirs {
            let prefix = &self.dirs[dir as usize];
            let Some((_, listing)) = open_dir(&self.root.join(prefix)) else { continue };
            for entry in listing {
                let Some((name, ft)) = listed(entry, &self.root, prefix) else { continue };
                let rel = format!("{prefix}{name}");
                if !ft.is_dir() && self.marked(wanted, self.keys.of(rel.as_bytes())) {
                    out.push_under(&root, &self.root, &rel);
                }
            }
        }
    }

    /// Whether the file of this key is one `wanted` marks.
    fn marked(&self, wanted: &[bool], key: FileKey) -> bool {
        position(&self.seen, key).is_some_and(|i| wanted[i])
    }

    /// A flag for each entry of [`Survey::seen`]: whether its key is in `keys`.
    #[cfg(test)]
    pub(super) fn marks(&self, keys: &std::collections::HashSet<FileKey>) -> Vec<bool> {
        self.seen.iter().map(|s| keys.contains(&s.key)).collect()
    }
}

/// Where `key` is in `seen` (sorted by key). The keys are hashes, spread evenly, so the search
/// starts where the key's first half puts it and widens from there: a cache miss or two a file,
/// where a binary search over a million entries took about twenty.
fn position(seen: &[Seen], key: FileKey) -> Option<usize> {
    let n = seen.len();
    if n == 0 {
        return None;
    }
    let guess = (((u128::from(key.0)) * n as u128) >> 64) as usize;
    let mut reach = 16;
    loop {
        let (lo, hi) = (guess.saturating_sub(reach), guess.saturating_add(reach).min(n));
        if (lo == 0 || seen[lo].key <= key) && (hi == n || seen[hi - 1].key >= key) {
            return seen[lo..hi].binary_search_by_key(&key, |s| s.key).ok().map(|i| lo + i);
        }
        reach *= 2;
    }
}

/// A folder opened (for stats relative to it) and listed; `None`, with a warning, when it
/// cannot be.
fn open_dir(abs: &Path) -> Option<(std::fs::File, std::fs::ReadDir)> {
    match std::fs::File::open(abs).and_then(|fd| Ok((fd, std::fs::read_dir(abs)?))) {
        Ok(out) => Some(out),
        Err(e) => {
            warn!("cannot list {}: {e}", abs.display());
            None
        }
    }
}

/// One entry of a folder's listing: its name and type (from the listing itself where the file
/// system gives it); `None`, with a warning, for an entry that cannot be read or a name that is
/// not UTF-8.
fn listed(entry: std::io::Result<std::fs::DirEntry>, root: &Path, prefix: &str) -> Option<(String, std::fs::FileType)> {
    let entry = entry.map_err(|e| warn!("cannot list {}: {e}", root.join(prefix).display())).ok()?;
    let ft = entry.file_type().map_err(|e| warn!(path = %entry.path().display(), "cannot stat: {e}")).ok()?;
    match entry.file_name().into_string() {
        Ok(name) => Some((name, ft)),
        Err(_) => {
            warn!(path = %entry.path().display(), "file name is not UTF-8; ignored");
            None
        }
    }
}

/// The stat of `name` in the folder `dir`, not following a symlink: `None` when it is not a
/// regular file (any more).
fn regular_stat_at(dir: &std::fs::File, name: &str) -> std::io::Result<Option<FileStat>> {
    use std::os::fd::AsRawFd;
    let name = std::ffi::CString::new(name).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `dir` is an open folder, `name` is NUL-terminated, and `st` is written by the call
    // before it is read (only when the call succeeds).
    let st = unsafe {
        if libc::fstatat(dir.as_raw_fd(), name.as_ptr(), st.as_mut_ptr(), libc::AT_SYMLINK_NOFOLLOW) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        st.assume_init()
    };
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Ok(None);
    }
    Ok(Some(FileStat { size: st.st_size as u64, mtime_ns: st.st_mtime * 1_000_000_000 + st.st_mtime_nsec }))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A root with clippings at two depths, a dot folder, a non-clipping, a symlinked clipping
    /// and a symlinked folder.
    fn tree(dir: &Path) -> (Config, PathBuf) {
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
        std::fs::create_dir_all(root.join(".hidden")).unwrap();
        std::fs::create_dir_all(dir.join("outside")).unwrap();
        std::fs::write(root.join("a.md"), "---\ntitle: A\n---\n").unwrap();
        std::fs::write(root.join("sub/b.md"), "---\ntitle: Bee\n---\n").unwrap();
        std::fs::write(root.join("sub/deeper/c.txt"), "plain").unwrap();
        std::fs::write(root.join("sub/notes.json"), "{}").unwrap();
        std::fs::write(root.join(".hidden/d.md"), "x").unwrap();
        std::fs::write(dir.join("outside/e.md"), "x").unwrap();
        std::os::unix::fs::symlink(root.join("a.md"), root.join("sub/link.md")).unwrap();
        std::os::unix::fs::symlink(dir.join("outside"), root.join("linked")).unwrap();
        (Config::for_test(&root, &dir.join("store.db")), root)
    }

    #[test]
    fn a_survey_finds_what_the_walk_finds_with_the_same_stats() {
        let dir = tempfile::tempdir().unwrap();
        let (cfg, root) = tree(dir.path());
        let scanner = Scanner::new(&cfg);
        let beat = Heartbeat::new("test");
        let mut walk_links = Symlinks::new();
        let walked = scanner.walk(&cfg, &root, &mut walk_links, &beat).unwrap();
        let mut survey_links = Symlinks::new();
        let survey = scanner.survey(&cfg, &root, &mut survey_links, &beat);
        let keys = FileKeys::new(&root_key(&root));
        let mut from_walk: Vec<(FileKey, FileStat)> =
            walked.iter().map(|(id, _, stat)| (keys.of(id.path.as_bytes()), *stat)).collect();
        from_walk.sort_by_key(|(key, _)| *key);
        let from_survey: Vec<(FileKey, FileStat)> = survey.seen.iter().map(|s| (s.key, s.stat)).collect();
        assert_eq!(from_survey, from_walk);
        assert_eq!(from_survey.len(), 4, "a.md, sub/b.md, sub/deeper/c.txt, sub/link.md");
        assert_eq!(survey_links, walk_links);
        assert_eq!(survey_links.len(), 1);
        // Named again by key: ids and absolute paths as the walk gives them.
        let wanted = vec![true; survey.seen.len()];
        let mut held = ToRead::default();
        survey.named(&wanted, &mut held);
        let mut named = held.to_pairs();
        named.sort();
        let mut expected: Vec<(FileId, PathBuf)> = walked.into_iter().map(|(id, abs, _)| (id, abs)).collect();
        expected.sort();
        assert_eq!(named, expected);
        let paths: Vec<&str> = named.iter().map(|(id, _)| id.path.as_str()).collect();
        assert_eq!(paths, ["a.md", "sub/b.md", "sub/deeper/c.txt", "sub/link.md"]);
    }

    #[test]
    fn a_key_is_found_where_it_is_and_nowhere_else() {
        let keys = FileKeys::new("/r");
        let stat = FileStat { size: 1, mtime_ns: 2 };
        for n in [0, 1, 2, 3, 40, 1000, 5003] {
            let mut seen: Vec<Seen> =
                (0..n).map(|i| Seen { key: keys.of(format!("{i}.md").as_bytes()), stat, dir: 0, rel_len: 4 }).collect();
            // Keys bunched at both ends as well as spread, so the search must widen both ways.
            seen.extend([(0, 5), (0, 9), (u64::MAX, 1), (u64::MAX, 3)].map(|key| Seen {
                key,
                stat,
                dir: 0,
                rel_len: 4,
            }));
            seen.sort_unstable_by_key(|s| s.key);
            for (i, s) in seen.iter().enumerate() {
                assert_eq!(position(&seen, s.key), Some(i), "n {n}, entry {i}");
            }
            for absent in [(0, 0), (0, 6), (u64::MAX, 2), (u64::MAX, u64::MAX), keys.of(b"absent.md")] {
                assert_eq!(position(&seen, absent), None, "n {n}, {absent:?}");
            }
        }
        assert_eq!(position(&[], (1, 1)), None);
    }

    #[test]
    fn a_survey_of_a_large_folder_stats_every_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        let n = SURVEY_CHUNK * 2 + 7;
        for i in 0..n {
            std::fs::write(root.join(format!("{i}.md")), "x".repeat(i % 13)).unwrap();
        }
        let cfg = Config::for_test(&root, &dir.path().join("store.db"));
        let survey = Scanner::new(&cfg).survey(&cfg, &root, &mut Symlinks::new(), &Heartbeat::new("test"));
        assert_eq!(survey.seen.len(), n);
        assert!(survey.seen.windows(2).all(|w| w[0].key < w[1].key), "sorted by key, no duplicates");
        let keys = FileKeys::new(&root_key(&root));
        let of_17 = survey.seen.iter().find(|s| s.key == keys.of(b"17.md")).expect("17.md found");
        assert_eq!(of_17.stat.size, 17 % 13);
        let wanted = survey.marks(&[keys.of(b"17.md"), keys.of(b"8000.md")].into());
        let mut held = ToRead::default();
        survey.named(&wanted, &mut held);
        let named: BTreeSet<String> = held.to_pairs().into_iter().map(|(id, _)| id.path).collect();
        assert_eq!(named, BTreeSet::from(["17.md".to_string(), "8000.md".to_string()]));
    }
}
