//! The export folder on disk: files written whole (to a temporary name beside the final one,
//! then renamed over it, so a web server never reads half a file), dated, given the export
//! group, and listed in a manifest (`.clipfeed-export`) with their hash, size and time. A file is
//! written only when its bytes or date changed. A file that is no longer exported is removed
//! only when the manifest lists it and it is still as clipfeed left it (same size and time); a
//! file an operator put there or replaced is never touched. Names starting with a dot are
//! clipfeed's own (the manifest, temporary files); the nginx configuration refuses them.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use tracing::warn;

use super::Target;

/// The manifest's name, in the export folder.
pub const MANIFEST: &str = ".clipfeed-export";
const MANIFEST_HEAD: &str = "# clipfeed export manifest (files clipfeed wrote and may remove): hash, size, mtime (= Last-Modified), ETag, Content-Type, Content-Encoding, path";

/// What the manifest records of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    hash: String,
    size: u64,
    mtime: i64,
    /// How clipfeed serves it: ETag, Content-Type and Content-Encoding, tab-separated.
    served: String,
}

/// One file to have in the tree.
pub struct Wanted<'a> {
    /// Relative, `/`-separated, made of names clipfeed chose (feed stems, page names).
    pub path: &'a str,
    /// Names the content (the document's hash, and the coding).
    pub hash: &'a str,
    pub mtime: i64,
    /// How clipfeed serves it: its ETag, Content-Type and Content-Encoding (`identity`),
    /// tab-separated; recorded in the manifest for tools that upload the tree (a CDN, object
    /// storage) with clipfeed's own headers.
    pub served: &'a str,
}

/// The export folder and what clipfeed wrote there.
pub struct Tree {
    dir: PathBuf,
    gid: Option<u32>,
    manifest: BTreeMap<String, Entry>,
    dirty: bool,
}

impl Tree {
    /// Opens (creating) the folder and reads its manifest. Fails when the group is unknown.
    pub fn open(target: &Target) -> Result<Tree> {
        let gid = target.group.as_deref().map(resolve_group).transpose()?;
        let tree = Tree { dir: target.dir.clone(), gid, manifest: BTreeMap::new(), dirty: false };
        tree.make_dir(&tree.dir).with_context(|| format!("cannot create the export folder {}", tree.dir.display()))?;
        let manifest = match fs::read_to_string(tree.dir.join(MANIFEST)) {
            Ok(text) => parse_manifest(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", tree.dir.join(MANIFEST).display())),
        };
        Ok(Tree { manifest, ..tree })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the file is in the tree as described (then it need not be made again).
    pub fn current(&self, f: &Wanted<'_>) -> bool {
        self.manifest.get(f.path).is_some_and(|e| e.hash == f.hash && e.mtime == f.mtime)
    }

    /// Whether the manifest lists a file (written by clipfeed, under any hash).
    pub fn lists(&self, path: &str) -> bool {
        self.manifest.contains_key(path)
    }

    /// Writes a file (unless it is current); returns whether it was written.
    pub fn put(&mut self, f: &Wanted<'_>, bytes: &[u8]) -> Result<bool> {
        if self.current(f) {
            return Ok(false);
        }
        let path = self.path_of(f.path)?;
        let parent = path.parent().expect("a file below the folder");
        self.make_dir(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        let name = path.file_name().expect("a file name").to_string_lossy();
        let tmp = parent.join(format!(".{name}.{}.tmp", std::process::id()));
        let written = self.write_file(&tmp, bytes, f.mtime).and_then(|()| Ok(fs::rename(&tmp, &path)?));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e).with_context(|| format!("cannot write {}", path.display()));
        }
        let entry =
            Entry { hash: f.hash.to_string(), size: bytes.len() as u64, mtime: f.mtime, served: f.served.into() };
        self.manifest.insert(f.path.to_string(), entry);
        self.dirty = true;
        Ok(true)
    }

    fn write_file(&self, tmp: &Path, bytes: &[u8], mtime: i64) -> Result<()> {
        let mode = if self.gid.is_some() { 0o640 } else { 0o644 };
        let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(tmp)?;
        file.write_all(bytes)?;
        if let Some(gid) = self.gid {
            std::os::unix::fs::fchown(&file, None, Some(gid)).context("cannot give the file the export group")?;
        }
        // The mode again: the process umask narrowed the one given at creation.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.set_modified(time_of(mtime))?;
        Ok(())
    }

    /// Removes the files the manifest lists that are not in `keep`, if they are still as
    /// clipfeed wrote them; saves the manifest. Returns how many were removed.
    pub fn finish(&mut self, keep: &BTreeSet<String>) -> Result<usize> {
        let gone: Vec<String> = self.manifest.keys().filter(|p| !keep.contains(*p)).cloned().collect();
        let mut removed = 0;
        for rel in gone {
            let entry = self.manifest.remove(&rel).expect("listed");
            self.dirty = true;
            let Ok(path) = self.path_of(&rel) else { continue };
            match fs::symlink_metadata(&path) {
                Ok(m) if m.is_file() && m.len() == entry.size && m.mtime() == entry.mtime => {
                    fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
                    removed += 1;
                    self.remove_empty_dirs(&path);
                }
                Ok(_) => {
                    warn!(path = %path.display(), "export: left alone a file clipfeed no longer exports: it was changed by someone else")
                }
                Err(_) => {}
            }
        }
        if self.dirty {
            self.save_manifest()?;
        }
        Ok(removed)
    }

    /// Removes the folders above a removed file while they are empty (never the export folder).
    fn remove_empty_dirs(&self, file: &Path) {
        let mut dir = file.parent();
        while let Some(d) = dir.filter(|d| *d != self.dir && d.starts_with(&self.dir)) {
            if fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
    }

    fn save_manifest(&mut self) -> Result<()> {
        let mut text = String::from(MANIFEST_HEAD);
        text.push('\n');
        for (path, e) in &self.manifest {
            text.push_str(&format!("{}\t{}\t{}\t{}\t{path}\n", e.hash, e.size, e.mtime, e.served));
        }
        let tmp = self.dir.join(format!("{MANIFEST}.{}.tmp", std::process::id()));
        let mut file = File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, self.dir.join(MANIFEST)).context("cannot save the export manifest")?;
        self.dirty = false;
        Ok(())
    }

    /// The file a relative path names, refusing anything that could leave the folder.
    fn path_of(&self, rel: &str) -> Result<PathBuf> {
        let ok = !rel.is_empty()
            && rel.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != ".." && !seg.starts_with('.'))
            && !rel.contains(['\\', '\0']);
        if !ok {
            bail!("refusing the export path {rel:?}");
        }
        Ok(self.dir.join(rel))
    }

    /// Creates a folder and those above it, readable as the files are.
    fn make_dir(&self, dir: &Path) -> Result<()> {
        if dir.is_dir() {
            return Ok(());
        }
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.make_dir(parent)?;
        }
        // Set-group-id: what is created inside keeps the export group.
        let mode = if self.gid.is_some() { 0o2750 } else { 0o755 };
        match fs::DirBuilder::new().mode(mode).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        if let Some(gid) = self.gid {
            std::os::unix::fs::chown(dir, None, Some(gid)).context("cannot give the folder the export group")?;
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(mode))?;
        Ok(())
    }
}

fn time_of(secs: i64) -> SystemTime {
    if secs >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

fn parse_manifest(text: &str) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let parts: Vec<&str> = line.splitn(7, '\t').collect();
        let [hash, size, mtime, etag, content_type, encoding, path] = parts[..] else { continue };
        if let (Ok(size), Ok(mtime)) = (size.parse(), mtime.parse()) {
            let served = format!("{etag}\t{content_type}\t{encoding}");
            out.insert(path.to_string(), Entry { hash: hash.to_string(), size, mtime, served });
        }
    }
    out
}

/// A group's id, from a number or a name in the group database.
fn resolve_group(group: &str) -> Result<u32> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    let name = std::ffi::CString::new(group).context("a group name with a NUL byte")?;
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call: the name is NUL-terminated, `grp` and `buf`
    // outlive it and `buf.len()` is its size; the result is read only through `grp`'s gid.
    let rc = unsafe { libc::getgrnam_r(name.as_ptr(), &mut grp, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() {
        bail!("key 'export_group': no group named {group:?} on this system");
    }
    Ok(grp.gr_gid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &str = "\"h1\"\tapplication/rss+xml; charset=utf-8\tidentity";

    fn target(dir: &Path) -> Target {
        Target { dir: dir.join("out"), group: None }
    }

    #[test]
    fn files_are_written_once_dated_and_removed_only_as_written() {
        let tmp = tempfile::tempdir().unwrap();
        let mut tree = Tree::open(&target(tmp.path())).unwrap();
        let f = Wanted { path: "topics/ai.rss", hash: "h1", mtime: 1_700_000_000, served: S };
        assert!(tree.put(&f, b"<rss/>").unwrap());
        assert!(!tree.put(&f, b"<rss/>").unwrap(), "unchanged: not written again");
        let path = tmp.path().join("out/topics/ai.rss");
        let meta = fs::metadata(&path).unwrap();
        assert_eq!((meta.mtime(), meta.mode() & 0o777), (1_700_000_000, 0o644));
        let g = Wanted { path: "feed.rss", hash: "h2", mtime: 5, served: S };
        tree.put(&g, b"x").unwrap();
        // An operator's own file, and one of ours they replaced.
        fs::write(tmp.path().join("out/robots.txt"), "mine").unwrap();
        fs::write(tmp.path().join("out/feed.rss"), "replaced by hand").unwrap();
        tree.finish(&BTreeSet::from(["topics/ai.rss".to_string(), "feed.rss".to_string()])).unwrap();
        let manifest = fs::read_to_string(tmp.path().join("out").join(MANIFEST)).unwrap();
        assert!(
            manifest
                .contains("h1\t6\t1700000000\t\"h1\"\tapplication/rss+xml; charset=utf-8\tidentity\ttopics/ai.rss\n"),
            "{manifest}"
        );
        // Reopened from the manifest: nothing is kept now.
        let mut tree = Tree::open(&target(tmp.path())).unwrap();
        assert!(tree.current(&f));
        assert_eq!(tree.finish(&BTreeSet::new()).unwrap(), 1);
        assert!(!path.exists() && !tmp.path().join("out/topics").exists(), "file and empty folder gone");
        assert_eq!(fs::read_to_string(tmp.path().join("out/robots.txt")).unwrap(), "mine");
        assert_eq!(fs::read_to_string(tmp.path().join("out/feed.rss")).unwrap(), "replaced by hand");
        let left: Vec<_> = fs::read_dir(tmp.path().join("out")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 3, "the two files and the manifest, no temporary file: {left:?}");
    }

    #[test]
    fn paths_that_could_leave_the_folder_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let mut tree = Tree::open(&target(tmp.path())).unwrap();
        for bad in ["../x", "a/../../x", "/etc/x", ".clipfeed-export", "a//b", "a\\b", ""] {
            assert!(tree.put(&Wanted { path: bad, hash: "h", mtime: 0, served: S }, b"x").is_err(), "{bad}");
        }
    }

    #[test]
    fn a_group_is_given_to_files_and_folders() {
        let tmp = tempfile::tempdir().unwrap();
        // Our own primary group: always allowed.
        let gid = unsafe { libc::getegid() };
        let t = Target { dir: tmp.path().join("out"), group: Some(gid.to_string()) };
        let mut tree = Tree::open(&t).unwrap();
        tree.put(&Wanted { path: "topics/a.rss", hash: "h", mtime: 0, served: S }, b"x").unwrap();
        let f = fs::metadata(tmp.path().join("out/topics/a.rss")).unwrap();
        let d = fs::metadata(tmp.path().join("out/topics")).unwrap();
        assert_eq!((f.gid(), f.mode() & 0o777), (gid, 0o640));
        assert_eq!((d.gid(), d.mode() & 0o7777), (gid, 0o2750));
        assert!(Tree::open(&Target { group: Some("no-such-group-here".into()), ..t }).is_err());
    }
}
