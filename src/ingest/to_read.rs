//! The files a batch will read, held compactly whatever their number: each root's key and
//! folder once, and each file as its root's index and its path relative to that root, in one
//! shared buffer (about 30 bytes a file, where a `FileId` and a `PathBuf` a file took about 230:
//! 230 MB for a cold start over a million files). The pair is made again a chunk at a time, as
//! the files are read.

use std::path::{Path, PathBuf};

use crate::store::FileId;

/// Files to read, in the order they were named.
#[derive(Debug, Default)]
pub(crate) struct ToRead {
    bases: Vec<Base>,
    /// Every file's path relative to its root, one after the other.
    rels: String,
    /// Per file: the index of its base and where its path ends in `rels`.
    files: Vec<(u32, u32)>,
}

/// A root as files name it: its key, and the folder their paths are joined to (or, for a file
/// whose absolute path is not its root's folder joined to its relative path, that path whole).
#[derive(Debug, PartialEq)]
struct Base {
    key: String,
    dir: PathBuf,
    join: bool,
}

impl ToRead {
    pub(crate) fn len(&self) -> usize {
        self.files.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Names the file `rel` under the root of key `root`, found in the folder `dir`.
    pub(crate) fn push_under(&mut self, root: &str, dir: &Path, rel: &str) {
        let base = self.base(root, dir, true);
        self.add(base, rel);
    }

    /// Names the file `id`, at `abs`.
    pub(crate) fn push(&mut self, id: FileId, abs: PathBuf) {
        let depth = Path::new(&id.path).components().count();
        match abs.ancestors().nth(depth) {
            Some(dir) if depth > 0 && dir.join(&id.path) == abs => {
                let base = self.base(&id.root, dir, true);
                self.add(base, &id.path);
            }
            _ => {
                let base = self.base(&id.root, &abs, false);
                self.add(base, &id.path);
            }
        }
    }

    /// Makes room for `files` more files whose relative paths take `bytes` together.
    pub(crate) fn reserve(&mut self, files: usize, bytes: usize) {
        self.files.reserve(files);
        self.rels.reserve(bytes);
    }

    fn base(&mut self, key: &str, dir: &Path, join: bool) -> u32 {
        // Roots are few: a file whose path is not its root's folder joined comes alone.
        let found = if join { self.bases.iter().rposition(|b| b.join && b.key == key && b.dir == dir) } else { None };
        let at = found.unwrap_or_else(|| {
            self.bases.push(Base { key: key.to_string(), dir: dir.to_path_buf(), join });
            self.bases.len() - 1
        });
        u32::try_from(at).expect("fewer than 2^32 roots")
    }

    fn add(&mut self, base: u32, rel: &str) {
        self.rels.push_str(rel);
        let end = u32::try_from(self.rels.len()).expect("less than 4 GiB of paths in one batch");
        self.files.push((base, end));
    }

    /// The `i`th file as an id and an absolute path.
    fn get(&self, i: usize) -> (FileId, PathBuf) {
        let start = if i == 0 { 0 } else { self.files[i - 1].1 as usize };
        let (base, end) = self.files[i];
        let base = &self.bases[base as usize];
        let rel = &self.rels[start..end as usize];
        let abs = if base.join { base.dir.join(rel) } else { base.dir.clone() };
        (FileId { root: base.key.clone(), path: rel.to_string() }, abs)
    }

    /// Every file, as ids and absolute paths, `n` at a time.
    pub(crate) fn chunks(&self, n: usize) -> impl Iterator<Item = Vec<(FileId, PathBuf)>> + '_ {
        let n = n.max(1);
        (0..self.files.len())
            .step_by(n)
            .map(move |at| (at..(at + n).min(self.files.len())).map(|i| self.get(i)).collect())
    }

    /// Every file, as ids and absolute paths.
    pub(crate) fn to_pairs(&self) -> Vec<(FileId, PathBuf)> {
        (0..self.files.len()).map(|i| self.get(i)).collect()
    }
}

impl FromIterator<(FileId, PathBuf)> for ToRead {
    fn from_iter<I: IntoIterator<Item = (FileId, PathBuf)>>(iter: I) -> Self {
        let mut out = ToRead::default();
        out.extend(iter);
        out
    }
}

impl Extend<(FileId, PathBuf)> for ToRead {
    fn extend<I: IntoIterator<Item = (FileId, PathBuf)>>(&mut self, iter: I) {
        for (id, abs) in iter {
            self.push(id, abs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(root: &str, path: &str) -> FileId {
        FileId { root: root.into(), path: path.into() }
    }

    #[test]
    fn files_come_back_as_they_were_named_in_order_and_in_chunks() {
        let named = vec![
            (id("/r", "a.md"), PathBuf::from("/r/a.md")),
            (id("/r", "sub/deeper/b.md"), PathBuf::from("/r/sub/deeper/b.md")),
            (id("/other root", "é/c.txt"), PathBuf::from("/other root/é/c.txt")),
            // A path that is not its root joined to its relative path (a root named through a
            // link, say) comes back as it was given.
            (id("/r", "d.md"), PathBuf::from("/elsewhere/d.md")),
            (id("/r", ""), PathBuf::from("/r")),
            (id("/r", "e.md"), PathBuf::from("/r/e.md")),
        ];
        let held: ToRead = named.iter().cloned().collect();
        assert_eq!(held.len(), named.len());
        assert_eq!(held.to_pairs(), named);
        for n in [1, 2, 4, 6, 100] {
            let chunks: Vec<Vec<(FileId, PathBuf)>> = held.chunks(n).collect();
            assert!(chunks.iter().all(|c| !c.is_empty() && c.len() <= n), "chunks of at most {n}");
            assert_eq!(chunks.concat(), named, "in chunks of {n}");
        }
        // Each root's folder is kept once, however many files it has.
        assert_eq!(held.bases.iter().filter(|b| b.join && b.dir == Path::new("/r")).count(), 1);
    }

    #[test]
    fn files_named_under_a_root_are_that_root_joined() {
        let mut held = ToRead::default();
        assert!(held.is_empty());
        held.push_under("/srv/clips", Path::new("/srv/clips"), "2024/x.md");
        held.push_under("/srv/clips", Path::new("/srv/clips"), "y.md");
        assert_eq!(
            held.to_pairs(),
            vec![
                (id("/srv/clips", "2024/x.md"), PathBuf::from("/srv/clips/2024/x.md")),
                (id("/srv/clips", "y.md"), PathBuf::from("/srv/clips/y.md")),
            ]
        );
        assert_eq!(held.bases.len(), 1);
        assert_eq!(held.chunks(10).count(), 1);
        assert_eq!(ToRead::default().chunks(10).count(), 0);
    }
}
