//! A document's body in one coding, copied once into a sealed memory file (`memfd`) so that HTTP's
//! fast path can send it with `sendfile`: the kernel then hands the file's pages to the socket
//! instead of copying the body out of our memory at every response (nginx's `sendfile` on its
//! static files, without a file on disk).
//!
//! Sealed against writing, growing and shrinking, the file holds exactly the bytes it was made
//! with for as long as anyone holds it: a response in flight keeps its own [`Arc`], so a document
//! replaced by a publish is never sent half old, half new. A file is made at a document's
//! [`ASKED`]th request (only documents that are asked for again and again get one) and closed
//! when the last holder drops it, with the document. Files and their bytes are bounded ([`MAX_FILES`], [`MAX_BYTES`]):
//! beyond, and wherever the kernel refuses, bodies are sent from memory as before. The bytes held
//! (the kernel's, outside the process's heap) are counted in [`held`].

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The most sealed files held at once.
pub const MAX_FILES: usize = 128;

/// The most bytes held in sealed files at once.
pub const MAX_BYTES: usize = 8 << 20;

/// A document's body gets a file at this request for it, not before: a document asked for once
/// (a crawler, a reader's first visit) costs no file, one that feed readers keep asking for does.
pub const ASKED: u32 = 8;

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

/// The process's sealed files.
static HELD: Bounds = Bounds::new(MAX_FILES, MAX_BYTES);

/// A body in a sealed memory file (see the module header).
#[derive(Debug)]
pub struct Sealed {
    file: OwnedFd,
    len: usize,
    bounds: &'static Bounds,
}

/// Sealed files held now, and the bytes in them.
pub fn held() -> (usize, usize) {
    (HELD.files.load(Ordering::Relaxed), HELD.bytes.load(Ordering::Relaxed))
}

impl Sealed {
    /// `body` in a new sealed file; `None` when the bounds are reached or the kernel refuses.
    pub fn new(body: &[u8]) -> Option<Sealed> {
        Sealed::within(body, &HELD)
    }

    fn within(body: &[u8], bounds: &'static Bounds) -> Option<Sealed> {
        if body.is_empty() || !bounds.reserve(body.len()) {
            return None;
        }
        match seal(body) {
            Ok(file) => Some(Sealed { file, len: body.len(), bounds }),
            Err(e) => {
                tracing::debug!("no sealed file for a body of {} bytes: {e}", body.len());
                bounds.release(body.len());
                None
            }
        }
    }

    /// The file's descriptor, for `sendfile`.
    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// The body's length in bytes.
    pub fn len(&self) -> usize {
        self.len
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

    #[test]
    fn a_sealed_file_holds_its_bytes_and_cannot_change() {
        let body: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let s = Sealed::new(&body).unwrap();
        assert_eq!(s.len(), body.len());
        assert_eq!(contents(&s), body);
        // Neither written, nor grown, nor cut, by any descriptor of it.
        let mut w = std::fs::OpenOptions::new().write(true).open(format!("/proc/self/fd/{}", s.fd())).unwrap();
        assert!(w.write_all(b"x").is_err());
        assert!(w.set_len(1).is_err());
        assert!(w.set_len(body.len() as u64 + 1).is_err());
        assert_eq!(contents(&s), body);
        assert!(Sealed::new(b"").is_none());
    }

    #[test]
    fn the_bounds_are_kept_and_given_back() {
        static BOUNDS: Bounds = Bounds::new(2, 100);
        let take = |n: usize| Sealed::within(&vec![b'a'; n], &BOUNDS);
        let one = take(60).unwrap();
        assert!(take(41).is_none(), "past the bytes");
        let two = take(40).unwrap();
        assert!(take(1).is_none(), "past the files");
        assert_eq!((BOUNDS.files.load(Ordering::Relaxed), BOUNDS.bytes.load(Ordering::Relaxed)), (2, 100));
        drop(one);
        let again = take(60).expect("what a dropped file held is free again");
        assert_eq!(contents(&again), vec![b'a'; 60]);
        drop((two, again));
        assert_eq!((BOUNDS.files.load(Ordering::Relaxed), BOUNDS.bytes.load(Ordering::Relaxed)), (0, 0));
    }
}
