//! A longest-prefix-match table for IPv4 and IPv6.
//!
//! Built once, queried many times (forwarding tables are recomputed from the topology, never
//! edited in place). The prefixes of each family are flattened into a sorted array of disjoint
//! address ranges, each owned by the longest prefix covering it; a lookup is one binary search
//! over that array (`O(log n)`, cache-friendly, no pointer chasing). Building is a sort plus a
//! stack sweep over the nested prefixes (`O(n log n)`). [`LpmTable::insert`] exists for
//! convenience and rebuilds (`O(n)`); collect many prefixes with [`LpmTable::from_entries`].
//!
//! Prefixes are stored canonical (host bits cleared). When a prefix is given more than once,
//! [`LpmTable::from_entries`] keeps the first value and [`LpmTable::insert`] replaces it.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::prefix::net_order;

const NONE: u32 = u32::MAX;

trait Key: Copy + Ord + Default {
    fn add_one(self) -> Option<Self>;
    /// The top 16 bits, for the first-level index.
    fn bucket(self) -> usize;
}

impl Key for u32 {
    fn add_one(self) -> Option<Self> {
        self.checked_add(1)
    }
    #[inline]
    fn bucket(self) -> usize {
        (self >> 16) as usize
    }
}

impl Key for u128 {
    fn add_one(self) -> Option<Self> {
        self.checked_add(1)
    }
    #[inline]
    fn bucket(self) -> usize {
        (self >> 112) as usize
    }
}

/// Tables with at least this many ranges get a first-level index on the top 16 address bits
/// (256 KiB), which turns the binary search over the whole array into one over a bucket.
const INDEX_THRESHOLD: usize = 4096;
const BUCKETS: usize = 1 << 16;

#[derive(Debug, Clone, Default)]
struct Flat<K> {
    /// Start of every range, ascending; the range runs to the next start.
    starts: Vec<K>,
    /// Entry index owning the range, or `NONE`.
    slots: Vec<u32>,
    /// `top[b]`: the first range whose start is in bucket `b` or later (`BUCKETS + 1` entries),
    /// or empty for small tables.
    top: Vec<u32>,
}

impl<K: Key> Flat<K> {
    fn emit(&mut self, start: K, slot: u32) {
        if self.starts.last() == Some(&start) {
            self.starts.pop();
            self.slots.pop();
        }
        if self.slots.last() == Some(&slot) {
            return;
        }
        self.starts.push(start);
        self.slots.push(slot);
    }

    /// `items`: (first, last, entry index), sorted by first ascending, last descending, without
    /// duplicates; CIDR ranges are either nested or disjoint.
    fn build(items: &[(K, K, u32)]) -> Self {
        let mut f = Flat {
            starts: Vec::with_capacity(items.len() * 2 + 1),
            slots: Vec::new(),
            top: Vec::new(),
        };
        f.slots.reserve(items.len() * 2 + 1);
        f.emit(K::default(), NONE);
        let mut stack: Vec<(K, u32)> = Vec::new();
        for &(first, last, idx) in items {
            while let Some(&(top_last, _)) = stack.last() {
                if top_last >= first {
                    break;
                }
                stack.pop();
                let owner = stack.last().map_or(NONE, |&(_, i)| i);
                if let Some(next) = top_last.add_one() {
                    f.emit(next, owner);
                }
            }
            f.emit(first, idx);
            stack.push((last, idx));
        }
        while let Some((top_last, _)) = stack.pop() {
            let owner = stack.last().map_or(NONE, |&(_, i)| i);
            if let Some(next) = top_last.add_one() {
                f.emit(next, owner);
            }
        }
        f.starts.shrink_to_fit();
        f.slots.shrink_to_fit();
        if f.starts.len() >= INDEX_THRESHOLD && u32::try_from(f.starts.len()).is_ok() {
            let mut top = Vec::with_capacity(BUCKETS + 1);
            let mut i = 0usize;
            for b in 0..=BUCKETS {
                while i < f.starts.len() && f.starts[i].bucket() < b {
                    i += 1;
                }
                top.push(i as u32);
            }
            f.top = top;
        }
        f
    }

    #[inline]
    fn lookup(&self, addr: K) -> Option<u32> {
        let i = match (self.top.get(addr.bucket()), self.top.get(addr.bucket() + 1)) {
            (Some(&lo), Some(&hi)) => {
                let (lo, hi) = (lo as usize, hi as usize);
                lo + self
                    .starts
                    .get(lo..hi)
                    .map_or(0, |r| r.partition_point(|&s| s <= addr))
            }
            _ => self.starts.partition_point(|&s| s <= addr),
        };
        match self.slots.get(i.wrapping_sub(1)) {
            Some(&s) if s != NONE => Some(s),
            _ => None,
        }
    }
}

/// A longest-prefix-match table mapping prefixes to values.
#[derive(Debug, Clone)]
pub struct LpmTable<V> {
    /// Sorted by [`net_order`]; indices are what the flat arrays store.
    entries: Vec<(IpNet, V)>,
    v4: Flat<u32>,
    v6: Flat<u128>,
}

impl<V> Default for LpmTable<V> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            v4: Flat::default(),
            v6: Flat::default(),
        }
    }
}

impl<V> LpmTable<V> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a table; for a prefix given twice the first value wins.
    pub fn from_entries(entries: impl IntoIterator<Item = (IpNet, V)>) -> Self {
        let mut entries: Vec<(usize, IpNet, V)> = entries
            .into_iter()
            .enumerate()
            .map(|(i, (p, v))| (i, p.trunc(), v))
            .collect();
        entries.sort_by(|a, b| net_order(&a.1, &b.1).then(a.0.cmp(&b.0)));
        entries.dedup_by(|later, earlier| later.1 == earlier.1);
        let mut t = Self {
            entries: entries.into_iter().map(|(_, p, v)| (p, v)).collect(),
            v4: Flat::default(),
            v6: Flat::default(),
        };
        t.rebuild();
        t
    }

    fn rebuild(&mut self) {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (i, (p, _)) in self.entries.iter().enumerate() {
            let idx = u32::try_from(i).unwrap_or(NONE - 1);
            match p {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()), idx)),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.broadcast()), idx)),
            }
        }
        // `entries` is sorted by (network, prefix length): first ascending, and for equal firsts
        // the shorter (larger) prefix first, i.e. last descending.
        self.v4 = Flat::build(&v4);
        self.v6 = Flat::build(&v6);
    }

    /// Inserts or replaces `prefix`; returns the previous value. Rebuilds the table (`O(n)`).
    pub fn insert(&mut self, prefix: IpNet, value: V) -> Option<V> {
        let prefix = prefix.trunc();
        let old = match self
            .entries
            .binary_search_by(|(p, _)| net_order(p, &prefix))
        {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (prefix, value));
                None
            }
        };
        if old.is_none() {
            self.rebuild();
        }
        old
    }

    /// The longest prefix containing `addr`, with its value.
    pub fn lookup(&self, addr: IpAddr) -> Option<(IpNet, &V)> {
        let slot = match addr {
            IpAddr::V4(a) => self.v4.lookup(u32::from(a)),
            IpAddr::V6(a) => self.v6.lookup(u128::from(a)),
        }?;
        self.entries.get(slot as usize).map(|(p, v)| (*p, v))
    }

    /// The value stored for exactly `prefix` (canonicalised).
    pub fn get(&self, prefix: &IpNet) -> Option<&V> {
        let prefix = prefix.trunc();
        self.entries
            .binary_search_by(|(p, _)| net_order(p, &prefix))
            .ok()
            .and_then(|i| self.entries.get(i))
            .map(|(_, v)| v)
    }

    /// The number of prefixes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every (prefix, value), IPv4 first, by network address then prefix length.
    pub fn iter(&self) -> impl Iterator<Item = (&IpNet, &V)> {
        self.entries.iter().map(|(p, v)| (p, v))
    }
}

impl<V> FromIterator<(IpNet, V)> for LpmTable<V> {
    fn from_iter<I: IntoIterator<Item = (IpNet, V)>>(iter: I) -> Self {
        Self::from_entries(iter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn nested_and_edges() {
        let t: LpmTable<&str> = [
            (n("0.0.0.0/0"), "default"),
            (n("10.0.0.0/8"), "ten"),
            (n("10.1.0.0/16"), "ten-one"),
            (n("10.1.2.0/24"), "leaf"),
            (n("255.255.255.255/32"), "top"),
            (n("::/0"), "v6default"),
            (n("2001:db8::/32"), "doc"),
        ]
        .into_iter()
        .collect();
        let l = |a: &str| t.lookup(a.parse().unwrap()).map(|(_, v)| *v);
        assert_eq!(l("10.1.2.3"), Some("leaf"));
        assert_eq!(l("10.1.3.3"), Some("ten-one"));
        assert_eq!(l("10.2.0.0"), Some("ten"));
        assert_eq!(l("11.0.0.0"), Some("default"));
        assert_eq!(l("255.255.255.255"), Some("top"));
        assert_eq!(l("255.255.255.254"), Some("default"));
        assert_eq!(l("2001:db8::1"), Some("doc"));
        assert_eq!(l("2001:db9::1"), Some("v6default"));
        assert_eq!(t.get(&n("10.1.0.0/16")), Some(&"ten-one"));
    }

    #[test]
    fn empty_and_insert() {
        let mut t = LpmTable::new();
        assert!(t.lookup("1.2.3.4".parse().unwrap()).is_none());
        assert_eq!(t.insert(n("1.2.3.0/24"), 1), None);
        assert_eq!(t.insert(n("1.2.3.9/24"), 2), Some(1));
        assert_eq!(
            t.lookup("1.2.3.4".parse().unwrap()).map(|(_, v)| *v),
            Some(2)
        );
        assert!(t.lookup("1.2.4.4".parse().unwrap()).is_none());
    }
}
