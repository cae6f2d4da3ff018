//! Name indexes shared by the validator and the route computation (crate-internal).
//!
//! Lookups by `(tenant, name)` are hash maps with a small deterministic hasher (the Fx hash of
//! rustc: no process randomness, and several times faster than SipHash on short names). They are
//! only ever probed, never iterated, so nothing computed from them depends on hash order. Fx is
//! not collision-resistant: a tenant who crafts colliding names only slows the validation of
//! its own resources, which the server bounds by quotas.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The Fx hash (as in `rustc-hash` 1.x).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// `(tenant, name)`.
pub(crate) type Key<'a> = (&'a str, &'a str);

/// A map from `(tenant, name)`; probe it, never iterate it.
pub(crate) type NameMap<'a, V> = HashMap<Key<'a>, V, BuildHasherDefault<FxHasher>>;

/// The indices of one key: almost always one, so no allocation then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Slot {
    One(usize),
    Many(Vec<usize>),
}

impl Slot {
    fn push(&mut self, i: usize) {
        match self {
            Slot::One(first) => *self = Slot::Many(vec![*first, i]),
            Slot::Many(v) => v.push(i),
        }
    }

    pub(crate) fn as_slice(&self) -> &[usize] {
        match self {
            Slot::One(i) => std::slice::from_ref(i),
            Slot::Many(v) => v,
        }
    }
}

/// Every index of each key.
pub(crate) fn index_all<'a, T>(
    items: &'a [T],
    key: impl Fn(&'a T) -> Key<'a>,
) -> NameMap<'a, Slot> {
    index_with_dups(items, key).0
}

/// Every index of each key, and for every item whether its key is shared with another item.
pub(crate) fn index_with_dups<'a, T>(
    items: &'a [T],
    key: impl Fn(&'a T) -> Key<'a>,
) -> (NameMap<'a, Slot>, Vec<bool>) {
    let mut m: NameMap<'a, Slot> = NameMap::default();
    m.reserve(items.len());
    let mut dup = vec![false; items.len()];
    for (i, x) in items.iter().enumerate() {
        m.entry(key(x))
            .and_modify(|s| {
                if let Slot::One(first) = s {
                    dup[*first] = true;
                }
                dup[i] = true;
                s.push(i);
            })
            .or_insert(Slot::One(i));
    }
    (m, dup)
}

/// The index of each key that occurs exactly once (duplicates map to `None`).
pub(crate) fn index_unique<'a, T>(
    items: &'a [T],
    key: impl Fn(&'a T) -> Key<'a>,
) -> NameMap<'a, Option<usize>> {
    let mut m: NameMap<'a, Option<usize>> = NameMap::default();
    m.reserve(items.len());
    for (i, x) in items.iter().enumerate() {
        m.entry(key(x)).and_modify(|e| *e = None).or_insert(Some(i));
    }
    m
}

/// Keys that occur exactly once, with their index. Probe it, never iterate it.
#[derive(Debug, Clone, Default)]
pub(crate) struct UniqueIndex<'a>(NameMap<'a, Option<usize>>);

impl<'a> UniqueIndex<'a> {
    pub(crate) fn new<T>(items: &'a [T], key: impl Fn(&'a T) -> Key<'a>) -> Self {
        Self(index_unique(items, key))
    }

    /// The index of the unique resource named `key`.
    pub(crate) fn get<'k>(&'k self, key: &Key<'k>) -> Option<&'k usize> {
        // Covariance: shorten the map's key lifetime to the probe's.
        let m: &'k NameMap<'k, Option<usize>> = &self.0;
        m.get(key).and_then(Option::as_ref)
    }
}
