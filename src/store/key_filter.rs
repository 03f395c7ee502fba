//! The keys of the story key mirror's entries let go (`store/bulk`): a Bloom filter grown in
//! stages with the build, so that a key it does not name is known to have every entry held.

/// The keys of entries let go: a Bloom filter grown in stages as keys come (each stage four
/// times the last's capacity, [`FILTER_BITS_PER_KEY`] bits a key and [`FILTER_HASHES`] bits
/// set), so that it is sized to the build whatever its size. A key it does not name has every
/// entry of its kind in the mirror; one it names by mistake costs a table read, never a wrong
/// answer.
#[derive(Debug)]
pub(super) struct KeyFilter {
    pub(super) stages: Vec<FilterStage>,
    /// The first stage's capacity in keys (smaller in tests).
    pub(super) first: usize,
    /// The most bytes its stages may take ([`FILTER_MAX_BYTES`]; smaller in tests).
    pub(super) max_bytes: usize,
    /// A stage more would have passed `max_bytes`: the stages are gone and every key is named
    /// (a table read each, never a wrong answer).
    pub(super) full: bool,
}

#[derive(Debug)]
pub(super) struct FilterStage {
    bits: Vec<u64>,
    keys: usize,
    capacity: usize,
}

/// Bits a key: 12 bits and 8 hashes name about 0.3% of the keys never put in a full stage
/// (measured: `store::bulk::tests::the_key_filter_names_few_keys_it_was_not_given`); with stages
/// growing fourfold, about 1% over a build of a million clippings (five stages).
const FILTER_BITS_PER_KEY: usize = 12;
const FILTER_HASHES: u64 = 8;
/// The first stage: 65,536 keys, 96 KiB.
pub(super) const FILTER_FIRST: usize = 1 << 16;
/// The most bytes one filter's stages take: 40 MiB. A build of a million clippings (about 12
/// million undated keys) needs five stages, 33 MB; a larger one finds its filter full, and its
/// lookups of keys let go go to the table.
const FILTER_MAX_BYTES: usize = 40 << 20;

impl Default for KeyFilter {
    fn default() -> Self {
        KeyFilter { stages: Vec::new(), first: FILTER_FIRST, max_bytes: FILTER_MAX_BYTES, full: false }
    }
}

impl FilterStage {
    /// The bits of `key` (a hash already in the store, mixed again since nothing makes every key
    /// so), by double hashing, each mapped onto the stage's bits by multiplication.
    fn bits_of(&self, key: u64) -> impl Iterator<Item = usize> {
        let mix = |mut h: u64| {
            h ^= h >> 33;
            h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
            h ^= h >> 33;
            h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
            h ^ (h >> 33)
        };
        let h1 = mix(key);
        let h2 = mix(key ^ 0x9e37_79b9_7f4a_7c15) | 1;
        let m = (self.bits.len() * 64) as u128;
        (0..FILTER_HASHES).map(move |i| ((u128::from(h1.wrapping_add(i.wrapping_mul(h2))) * m) >> 64) as usize)
    }

    fn names(&self, key: u64) -> bool {
        self.bits_of(key).all(|b| self.bits[b / 64] >> (b % 64) & 1 == 1)
    }
}

impl KeyFilter {
    pub(super) fn names(&self, key: u64) -> bool {
        self.full || self.stages.iter().any(|s| s.names(key))
    }

    pub(super) fn put(&mut self, key: u64) {
        if self.names(key) {
            return;
        }
        if self.stages.last().is_none_or(|s| s.keys >= s.capacity) {
            let capacity = self.stages.last().map_or(self.first, |s| s.capacity * 4);
            let words = (capacity * FILTER_BITS_PER_KEY).div_ceil(64);
            if self.bytes() + words * 8 > self.max_bytes {
                self.full = true;
                self.stages = Vec::new();
                return;
            }
            self.stages.push(FilterStage { bits: vec![0; words], keys: 0, capacity });
        }
        let stage = self.stages.last_mut().expect("made above");
        for b in stage.bits_of(key).collect::<Vec<_>>() {
            stage.bits[b / 64] |= 1 << (b % 64);
        }
        stage.keys += 1;
    }

    /// Bytes held.
    pub(super) fn bytes(&self) -> usize {
        self.stages.iter().map(|s| s.bits.len() * 8).sum()
    }
}
