//! A document's body in one coding, copied once into a sealed memory file (`memfd`) so that HTTP's
//! fast path can send it with `sendfile`: the kernel then hands the file's pages to the socket
//! instead of copying the body out of our memory at every response (nginx's `sendfile` on its
//! static files, without a file on disk).
//!
//! Sealed against writing, growing and shrinking, the file holds exactly the bytes it was made
//! with for as long as anyone holds it: a response in flight keeps its own [`Arc`], so a document
//! replaced by a publish is never sent half old, half new. A file is made at a document's
//! [`ASKED`]th request (only documents that are asked for again and again get one), kept in the
//! document's [`Cell`], and closed when the last holder drops it: the document (replaced by a
//! publish), or the pool, which gives its place to a hotter document.
//!
//! Files and their bytes are bounded ([`MAX_FILES`], [`MAX_BYTES`]); the pool knows every file
//! and its document's cell. When a document that has been asked for [`ASKED`] more times finds
//! the bounds reached, the pool empties the cells of the files used least recently, among those
//! not used at all since the pool last looked (each file notes the pool's epoch at each use,
//! and each look begins a new epoch): a file in use keeps its place, and a document gets one
//! only from files colder than itself. A look costs one pass over at most twice [`MAX_FILES`]
//! entries, at most once per [`ASKED`] requests of a document without a file and once a second
//! in all (`LOOK_EVERY`: a file given away was unused that long). Wherever the
//! bounds or the kernel refuse, bodies are sent from memory as before. The bytes held (the
//! kernel's, outside the process's heap) are counted in [`held`].

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

/// The most sealed files held at once.
pub const MAX_FILES: usize = 128;

/// The most bytes held in sealed files at once.
pub const MAX_BYTES: usize = 8 << 20;

/// A document asks for a file at every this many requests without one, the first time at this
/// request: a document asked for once (a crawler, a reader's first visit) costs no file, one
/// that feed readers keep asking for does.
pub const ASKED: u32 = 8;

/// Where a document keeps its body's file in one coding, shared with the pool (which empties it).
pub type Cell = ArcSwapOption<Sealed>;

/// Files held and their bytes, against their bounds.
#[derive(Debug)]
struct Bounds {
    files: AtomicUsize,
    bytes: AtomicUsize,
    max_files: usize,
    max_bytes: usize,
}

impl Bounds {
    const fn new(max_files: usize, max_bytes: usize) -> Bounds {
        Bounds { files: AtomicUsize::new(0), bytes: AtomicUsize::new(0), max_files, max_bytes }
    }

    /// Takes one file of `len` bytes from the bounds, when they allow it.
    fn reserve(&self, len: usize) -> bool {
        if self.files.fetch_add(1, Ordering::Relaxed) >= self.max_files {
            self.files.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        if self.bytes.fetch_add(len, Ordering::Relaxed) + len > self.max_bytes {
            self.release(len);
            return false;
        }
        true
    }

    fn release(&self, len: usize) {
        self.files.fetch_sub(1, Ordering::Relaxed);
        self.bytes.fetch_sub(len, Ordering::Relaxed);
    }
}

/// A file the pool knows, and the cell of the document holding it.
struct Entry {
    file: Weak<Sealed>,
    cell: Weak<Cell>,
}

/// The files the pool knows, and when it last looked for room among them.
struct Entries {
    list: Vec<Entry>,
    looked: Option<Instant>,
}

/// Every sealed file of the process (or of a test), within its bounds (see the module header).
pub struct Pool {
    bounds: Bounds,
    entries: Mutex<Entries>,
    /// Begins anew at each look for room; a file notes it at each use.
    epoch: AtomicU32,
    /// The shortest time between two looks: a file given away has been unused at least this
    /// long, and files are made again at most once per look, however many documents want one.
    min_look: Duration,
}

/// The process's sealed files.
pub static POOL: Pool = Pool::new(MAX_FILES, MAX_BYTES, LOOK_EVERY);

/// The shortest time between two looks for room in the process's pool: a document asked for
/// less than once a second is cold beside one that feed readers keep asking for.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// A body in a sealed memory file (see the module header).
#[derive(Debug)]
pub struct Sealed {
    file: OwnedFd,
    len: usize,
    bounds: &'static Bounds,
    /// The pool's epoch at the file's last use.
    used: AtomicU32,
    epoch: &'static AtomicU32,
}

/// Sealed files held now, and the bytes in them.
pub fn held() -> (usize, usize) {
    POOL.held()
}

impl Pool {
    const fn new(max_files: usize, max_bytes: usize, min_look: Duration) -> Pool {
        Pool {
            bounds: Bounds::new(max_files, max_bytes),
            entries: Mutex::new(Entries { list: Vec::new(), looked: None }),
            epoch: AtomicU32::new(0),
            min_look,
        }
    }

    /// Files held now, and their bytes.
    pub fn held(&self) -> (usize, usize) {
        (self.bounds.files.load(Ordering::Relaxed), self.bounds.bytes.load(Ordering::Relaxed))
    }

    /// `body` in a new sealed file, put in `cell` (the document's), room made for it from
    /// colder files when the bounds are reached; `None` when no room can be made or the kernel
    /// refuses.
    pub fn fill(&'static self, cell: &Arc<Cell>, body: &[u8]) -> Option<Arc<Sealed>> {
        if body.is_empty() {
            return None;
        }
        if !self.bounds.reserve(body.len()) {
            self.make_room(body.len());
            if !self.bounds.reserve(body.len()) {
                return None;
            }
        }
        let file = match seal(body) {
            Ok(fd) => Arc::new(Sealed {
                file: fd,
                len: body.len(),
                bounds: &self.bounds,
                used: AtomicU32::new(self.epoch.load(Ordering::Relaxed)),
                epoch: &self.epoch,
            }),
            Err(e) => {
                tracing::debug!("no sealed file for a body of {} bytes: {e}", body.len());
                self.bounds.release(body.len());
                return None;
            }
        };
        cell.store(Some(file.clone()));
        let list = &mut self.entries.lock().expect("sealed pool lock").list;
        // Entries of files already closed (their documents replaced) go; at most as many
        // as were held at the last push, so the list stays within twice the bound.
        list.retain(|e| e.file.strong_count() > 0);
        list.push(Entry { file: Arc::downgrade(&file), cell: Arc::downgrade(cell) });
        Some(file)
    }

    /// Empties the cells of the files unused since the last look, least recently used first,
    /// until one more file of `len` bytes would fit (the files close once no response holds
    /// them), and begins a new epoch; nothing when the last look was less than `min_look` ago.
    fn make_room(&self, len: usize) {
        let victims: Vec<(Arc<Cell>, Arc<Sealed>)> = {
            let mut guard = self.entries.lock().expect("sealed pool lock");
            let at = Instant::now();
            if guard.looked.is_some_and(|t| at.duration_since(t) < self.min_look) {
                return;
            }
            guard.looked = Some(at);
            let now = self.epoch.fetch_add(1, Ordering::Relaxed);
            let entries = &mut guard.list;
            entries.retain(|e| e.file.strong_count() > 0);
            // (how many epochs unused, length, index)
            let mut idle: Vec<(u32, usize, usize)> = entries
                .iter()
                .enumerate()
                .filter_map(|(i, e)| {
                    let file = e.file.upgrade()?;
                    let used = file.used.load(Ordering::Relaxed);
                    (used != now).then(|| (now.wrapping_sub(used), file.len, i))
                })
                .collect();
            idle.sort_unstable_by_key(|v| std::cmp::Reverse(v.0));
            let (mut files, mut bytes) = self.held();
            let mut chosen = Vec::new();
            for (_, flen, i) in idle {
                if files < self.bounds.max_files && bytes + len <= self.bounds.max_bytes {
                    break;
                }
                files -= 1;
                bytes = bytes.saturating_sub(flen);
                chosen.push(i);
            }
            chosen.sort_unstable_by_key(|&i| std::cmp::Reverse(i));
            chosen
                .into_iter()
                .filter_map(|i| {
                    let e = entries.swap_remove(i);
                    Some((e.cell.upgrade()?, e.file.upgrade()?))
                })
                .collect()
        };
        // Outside the lock: a file whose last holder was its cell closes here. (A cell that
        // holds another file by now keeps it.)
        for (cell, file) in victims {
            cell.compare_and_swap(&Some(file), None);
        }
    }
}

impl Sealed {
    /// The file's descriptor, for `sendfile`.
    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// The body's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Notes a use: the file is not given away at the pool's next look.
    pub fn touch(&self) {
        let now = self.epoch.load(Ordering::Relaxed);
        if self.used.load(Ordering::Relaxed) != now {
            self.used.store(now, Ordering::Relaxed);
        }
    }
}

impl Drop for Sealed {
    fn drop(&mut self) {
        self.bounds.release(self.len);
    }
}

/// A new memory file holding `body`, sealed.
fn seal(body: &[u8]) -> std::io::Result<OwnedFd> {
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: the name is a NUL-terminated string that outlives the call.
    let fd = unsafe { libc::memfd_create(c"clipfeed-body".as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    file.write_all(body)?;
    let seals = libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
    // SAFETY: an `fcntl` on a descriptor we own, with an integer argument.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(file.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek};

    fn contents(s: &Sealed) -> Vec<u8> {
        // A second descriptor of the same file, through /proc, opened for reading.
        let mut f = File::open(format!("/proc/self/fd/{}", s.fd())).unwrap();
        f.rewind().unwrap();
        let mut out = Vec::new();
        f.read_to_end(&mut out).unwrap();
        out
    }

    fn cell() -> Arc<Cell> {
        Arc::new(Cell::empty())
    }

    #[test]
    fn a_sealed_file_holds_its_bytes_and_cannot_change() {
        static POOL: Pool = Pool::new(4, 1 << 20, Duration::ZERO);
        let body: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let doc = cell();
        let s = POOL.fill(&doc, &body).unwrap();
        assert!(Arc::ptr_eq(&s, &doc.load_full().unwrap()), "kept in the document's cell");
        assert_eq!(s.len(), body.len());
        assert_eq!(contents(&s), body);
        // Neither written, nor grown, nor cut, by any descriptor of it.
        let mut w = std::fs::OpenOptions::new().write(true).open(format!("/proc/self/fd/{}", s.fd())).unwrap();
        assert!(w.write_all(b"x").is_err());
        assert!(w.set_len(1).is_err());
        assert!(w.set_len(body.len() as u64 + 1).is_err());
        assert_eq!(contents(&s), body);
        assert!(POOL.fill(&cell(), b"").is_none());
    }

    #[test]
    fn the_bounds_are_kept_and_given_back() {
        static POOL: Pool = Pool::new(2, 100, Duration::ZERO);
        let (one, two) = (cell(), cell());
        POOL.fill(&one, &[b'a'; 60]).unwrap();
        assert!(POOL.fill(&cell(), &[b'b'; 41]).is_none(), "past the bytes, and both in use since the last look");
        POOL.fill(&two, &[b'c'; 40]).unwrap();
        assert_eq!(POOL.held(), (2, 100));
        // The document goes (a publish replaced it): its file closes with it.
        drop(one);
        assert_eq!(POOL.held(), (1, 40));
        let again = cell();
        let file = POOL.fill(&again, &[b'a'; 60]).expect("what a dropped file held is free again");
        assert_eq!(contents(&file), vec![b'a'; 60]);
        drop((two, again, file));
        assert_eq!(POOL.held(), (0, 0));
        assert!(POOL.entries.lock().unwrap().list.iter().all(|e| e.file.strong_count() == 0));
    }

    /// Once the bounds are reached, a document asked for again gets the place of the file used
    /// least recently among those unused since the pool last looked; files in use keep theirs.
    #[test]
    fn a_full_pool_gives_a_cold_files_place_to_a_hot_document() {
        static POOL: Pool = Pool::new(3, 1000, Duration::ZERO);
        let docs: Vec<Arc<Cell>> = (0..3).map(|_| cell()).collect();
        for (i, doc) in docs.iter().enumerate() {
            POOL.fill(doc, &[b'a' + i as u8; 100]).unwrap();
        }
        assert_eq!(POOL.held(), (3, 300));
        let hot = cell();
        // Every file was used since the last look (made in this epoch): no room yet.
        assert!(POOL.fill(&hot, &[b'h'; 200]).is_none());
        assert_eq!(POOL.held(), (3, 300));
        // Between two looks, documents 0 and 2 are asked for; document 1 is not.
        for i in [0, 2] {
            docs[i].load_full().unwrap().touch();
        }
        let file = POOL.fill(&hot, &[b'h'; 200]).expect("the cold file's place");
        assert_eq!(contents(&file), vec![b'h'; 200]);
        assert_eq!(POOL.held(), (3, 400), "document 1's file closed, the hot one's made");
        let held: Vec<bool> = docs.iter().map(|d| d.load().is_some()).collect();
        assert_eq!(held, [true, false, true]);
        // A response in flight keeps its file open after the pool took it from its document:
        // its place is free only once the response is done.
        let in_flight = docs[0].load_full().unwrap();
        docs[2].load_full().unwrap().touch();
        file.touch();
        let newcomer = cell();
        assert!(POOL.fill(&newcomer, &[b'n'; 100]).is_none(), "document 0's file is still being sent");
        assert!(docs[0].load().is_none() && docs[2].load().is_some() && hot.load().is_some());
        assert_eq!(POOL.held(), (3, 400));
        drop(in_flight);
        assert_eq!(POOL.held(), (2, 300));
        assert!(POOL.fill(&newcomer, &[b'n'; 100]).is_some());
        assert_eq!(POOL.held(), (3, 400));
    }

    /// Looks for room are at least `min_look` apart: a file is given away only after that long
    /// unused, and a crowd of documents without files makes files again at that pace at most.
    #[test]
    fn looks_for_room_are_spaced() {
        static POOL: Pool = Pool::new(1, 1000, Duration::from_secs(3600));
        let doc = cell();
        POOL.fill(&doc, &[b'a'; 10]).unwrap();
        let other = cell();
        // The first look: the file was made in this epoch, so it stays.
        assert!(POOL.fill(&other, &[b'b'; 10]).is_none());
        // Unused since, but the next look is an hour away.
        assert!(POOL.fill(&other, &[b'b'; 10]).is_none());
        assert!(doc.load().is_some() && other.load().is_none());
        assert_eq!(POOL.held(), (1, 10));
    }
}
