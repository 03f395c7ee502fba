//! The stored form of [`Features`]: a small versioned little-endian blob. A blob of another
//! version or a damaged one reads as `None`, and the writer computes the features again from
//! the item's record.

use super::features::{Features, Phrase, Term};

const VERSION: u8 = 1;

impl Features {
    /// The features as stored.
    pub fn to_blob(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            32 + 8 * self.related.len()
                + 4 * (self.title.len() + self.text.len() + self.minhash.len())
                + 8 * self.phrases.len(),
        );
        out.push(VERSION);
        let flags = u8::from(self.published.is_some())
            | u8::from(self.url.is_some()) << 1
            | u8::from(self.provider.is_some()) << 2
            | u8::from(self.actor.is_some()) << 3
            | u8::from(self.class != 0) << 4;
        out.push(flags);
        for v in [self.published.map(|p| p as u64), self.url, self.provider].into_iter().flatten() {
            out.extend_from_slice(&v.to_le_bytes());
        }
        if let Some(a) = self.actor {
            out.extend_from_slice(&a.0.to_le_bytes());
        }
        put_list(&mut out, self.related.iter().map(|v| v.to_le_bytes()));
        put_list(&mut out, self.title.iter().map(|t| t.0.to_le_bytes()));
        put_list(&mut out, self.text.iter().map(|t| t.0.to_le_bytes()));
        put_list(&mut out, self.phrases.iter().map(|p| p.0.to_le_bytes()));
        put_list(&mut out, self.headline.iter().map(|v| v.to_le_bytes()));
        put_list(&mut out, self.numbers.iter().map(|v| v.to_le_bytes()));
        put_list(&mut out, self.minhash.iter().map(|v| v.to_le_bytes()));
        // A private class last, and only when there is one: a public clipping's blob is the
        // same as before classes existed.
        if self.class != 0 {
            out.extend_from_slice(&self.class.to_le_bytes());
        }
        out
    }

    /// Reads a stored blob; `None` when it is of another version or damaged.
    pub fn from_blob(bytes: &[u8]) -> Option<Features> {
        let mut r = Reader { bytes, pos: 0 };
        if r.take(1)?[0] != VERSION {
            return None;
        }
        let flags = r.take(1)?[0];
        let mut opt = |bit: u8| if flags & bit != 0 { r.u64().map(Some) } else { Some(None) };
        let published = opt(1)?.map(|v| v as i64);
        let url = opt(2)?;
        let provider = opt(4)?;
        let actor = if flags & 8 != 0 { Some(Term(u32::from_le_bytes(r.take(4)?.try_into().ok()?))) } else { None };
        let f = Features {
            actor,
            published,
            url,
            provider,
            related: r.list(|b| Some(u64::from_le_bytes(b.try_into().ok()?)))?,
            title: r.list(|b| Some(Term(u32::from_le_bytes(b.try_into().ok()?))))?,
            text: r.list(|b| Some(Term(u32::from_le_bytes(b.try_into().ok()?))))?,
            phrases: r.list(|b| Some(Phrase(u64::from_le_bytes(b.try_into().ok()?))))?,
            headline: r.list(|b| Some(u64::from_le_bytes(b.try_into().ok()?)))?,
            numbers: r.list(|b| Some(u32::from_le_bytes(b.try_into().ok()?)))?,
            minhash: r.list(|b| Some(u32::from_le_bytes(b.try_into().ok()?)))?,
            class: if flags & 16 != 0 { r.u64().filter(|&c| c != 0)? } else { 0 },
        };
        (r.pos == bytes.len()).then_some(f)
    }
}

fn put_list<const N: usize>(out: &mut Vec<u8>, items: impl ExactSizeIterator<Item = [u8; N]>) {
    let n = u16::try_from(items.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&n.to_le_bytes());
    for item in items.take(usize::from(n)) {
        out.extend_from_slice(&item);
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    /// A u16 count, then that many items of the size `T` is stored in.
    fn list<T>(&mut self, read: impl Fn(&[u8]) -> Option<T>) -> Option<Vec<T>> {
        let n = usize::from(u16::from_le_bytes(self.take(2)?.try_into().ok()?));
        let size = std::mem::size_of::<T>();
        (0..n).map(|_| read(self.take(size)?)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let f = Features {
            published: Some(-5),
            url: Some(7),
            related: vec![1, 2],
            provider: None,
            title: vec![Term(3), Term(0x8000_0001)],
            text: vec![Term(9)],
            phrases: vec![Phrase(11)],
            headline: vec![12, 13],
            actor: Some(Term(0x8000_0005)),
            numbers: vec![6],
            minhash: vec![4; 12],
            class: 0,
        };
        // A public clipping's blob has no class: the same bytes as before classes existed.
        let public = f.to_blob();
        let f = Features { class: 0x55, ..f };
        let blob = f.to_blob();
        assert_eq!(blob.len(), public.len() + 8);
        assert_eq!(Features::from_blob(&public), Some(Features { class: 0, ..f.clone() }));
        assert_eq!(Features::from_blob(&blob), Some(f.clone()));
        assert_eq!(Features::from_blob(&Features::default().to_blob()), Some(Features::default()));
        for cut in 0..blob.len() {
            assert_eq!(Features::from_blob(&blob[..cut]), None, "cut at {cut}");
        }
        let mut longer = blob.clone();
        longer.push(0);
        assert_eq!(Features::from_blob(&longer), None);
        let mut other = blob;
        other[0] = 2;
        assert_eq!(Features::from_blob(&other), None);
    }
}
