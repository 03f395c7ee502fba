//! A small least-recently-used cache bounded by entries and by bytes, for the documents kept
//! on the side of the published site (views, inflated feeds). Eviction scans for the oldest
//! entry: the caches hold at most about a thousand entries.

use std::collections::HashMap;
use std::hash::Hash;

pub struct Lru<K, V> {
    map: HashMap<K, Entry<V>>,
    bytes: usize,
    clock: u64,
    max_entries: usize,
    max_bytes: usize,
}

struct Entry<V> {
    value: V,
    last_used: u64,
    /// What the entry was counted as when it came in.
    size: usize,
}

impl<K: Eq + Hash + Clone, V: Clone> Lru<K, V> {
    pub(crate) fn new(max_entries: usize, max_bytes: usize) -> Lru<K, V> {
        Lru { map: HashMap::new(), bytes: 0, clock: 0, max_entries, max_bytes }
    }

    pub(crate) fn get(&mut self, key: &K) -> Option<V> {
        self.clock += 1;
        let clock = self.clock;
        self.map.get_mut(key).map(|e| {
            e.last_used = clock;
            e.value.clone()
        })
    }

    /// Keeps `value`, counted as `size` bytes, dropping the least recently used entries to make
    /// room. A value larger than a quarter of the byte bound is not kept.
    pub(crate) fn insert(&mut self, key: K, value: V, size: usize) {
        if size > self.max_bytes / 4 {
            return;
        }
        while !self.map.is_empty() && (self.map.len() >= self.max_entries || self.bytes + size > self.max_bytes) {
            let oldest = self.map.iter().min_by_key(|(_, e)| e.last_used).map(|(k, _)| k.clone()).expect("non-empty");
            if let Some(e) = self.map.remove(&oldest) {
                self.bytes -= e.size;
            }
        }
        self.clock += 1;
        self.bytes += size;
        if let Some(old) = self.map.insert(key, Entry { value, last_used: self.clock, size }) {
            self.bytes -= old.size;
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Bytes counted for the entries held.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}
