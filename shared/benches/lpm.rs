//! Longest-prefix-match lookups per second on a 100,000-prefix table: `isthmus_shared::lpm`
//! against the `prefix-trie` crate, same prefixes, same probes, same run.
//!
//! `cargo bench -p isthmus-shared --bench lpm -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use isthmus_shared::lpm::LpmTable;
use prefix_trie::PrefixMap;

const PREFIXES: usize = 100_000;
const PROBES: usize = 10_000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Lengths shaped like an Internet table: mostly /24, then /22-/23, /16-/21, a few others.
fn v4_len(r: &mut Rng) -> u8 {
    match r.next() % 100 {
        0..=59 => 24,
        60..=74 => 22 + (r.next() % 2) as u8,
        75..=94 => 16 + (r.next() % 6) as u8,
        _ => 8 + (r.next() % 25) as u8,
    }
}

fn v6_len(r: &mut Rng) -> u8 {
    match r.next() % 100 {
        0..=49 => 48,
        50..=79 => 32 + (r.next() % 16) as u8,
        _ => 16 + (r.next() % 113) as u8,
    }
}

fn v4_prefixes(r: &mut Rng) -> Vec<Ipv4Net> {
    (0..PREFIXES)
        .map(|_| Ipv4Net::new(Ipv4Addr::from(r.next() as u32), v4_len(r)).map(|n| n.trunc()))
        .collect::<Result<_, _>>()
        .unwrap_or_default()
}

fn v6_prefixes(r: &mut Rng) -> Vec<Ipv6Net> {
    // Addresses under 2000::/3 like the real table.
    (0..PREFIXES)
        .map(|_| {
            let a = (u128::from(r.next()) << 64 | u128::from(r.next())) >> 3 | (1u128 << 125);
            Ipv6Net::new(Ipv6Addr::from(a), v6_len(r)).map(|n| n.trunc())
        })
        .collect::<Result<_, _>>()
        .unwrap_or_default()
}

fn bench(c: &mut Criterion) {
    let mut r = Rng(42);
    let v4 = v4_prefixes(&mut r);
    let v6 = v6_prefixes(&mut r);
    // Probes: half inside a known prefix, half random.
    let probes4: Vec<Ipv4Addr> = (0..PROBES)
        .map(|i| {
            if i % 2 == 0 {
                let p = v4[(r.next() as usize) % v4.len()];
                Ipv4Addr::from(u32::from(p.network()) | (r.next() as u32 & !u32::from(p.netmask())))
            } else {
                Ipv4Addr::from(r.next() as u32)
            }
        })
        .collect();
    let probes6: Vec<Ipv6Addr> = (0..PROBES)
        .map(|_| {
            let p = v6[(r.next() as usize) % v6.len()];
            Ipv6Addr::from(
                u128::from(p.network()) | (u128::from(r.next()) & !u128::from(p.netmask())),
            )
        })
        .collect();

    let ours4: LpmTable<u32> = v4
        .iter()
        .enumerate()
        .map(|(i, p)| (IpNet::V4(*p), i as u32))
        .collect();
    let ours6: LpmTable<u32> = v6
        .iter()
        .enumerate()
        .map(|(i, p)| (IpNet::V6(*p), i as u32))
        .collect();
    let mut trie4: PrefixMap<Ipv4Net, u32> = PrefixMap::new();
    for (i, p) in v4.iter().enumerate() {
        trie4.insert(*p, i as u32);
    }
    let mut trie6: PrefixMap<Ipv6Net, u32> = PrefixMap::new();
    for (i, p) in v6.iter().enumerate() {
        trie6.insert(*p, i as u32);
    }
    // Same answers before measuring anything.
    for a in &probes4 {
        let ours = ours4.lookup(IpAddr::V4(*a)).map(|(p, _)| p);
        let theirs = Ipv4Net::new(*a, 32)
            .ok()
            .and_then(|h| trie4.get_lpm(&h))
            .map(|(p, _)| IpNet::V4(p));
        assert_eq!(ours, theirs, "{a}");
    }
    for a in &probes6 {
        let ours = ours6.lookup(IpAddr::V6(*a)).map(|(p, _)| p);
        let theirs = Ipv6Net::new(*a, 128)
            .ok()
            .and_then(|h| trie6.get_lpm(&h))
            .map(|(p, _)| IpNet::V6(p));
        assert_eq!(ours, theirs, "{a}");
    }

    let mut g = c.benchmark_group("lpm_lookup_100k");
    g.throughput(Throughput::Elements(PROBES as u64));
    g.bench_function(BenchmarkId::new("isthmus_lpm", "v4"), |b| {
        b.iter(|| {
            let mut hits = 0u32;
            for a in &probes4 {
                if let Some((_, v)) = ours4.lookup(IpAddr::V4(*a)) {
                    hits = hits.wrapping_add(*v);
                }
            }
            black_box(hits)
        })
    });
    g.bench_function(BenchmarkId::new("prefix_trie", "v4"), |b| {
        b.iter(|| {
            let mut hits = 0u32;
            for a in &probes4 {
                if let Some((_, v)) = Ipv4Net::new(*a, 32).ok().and_then(|h| trie4.get_lpm(&h)) {
                    hits = hits.wrapping_add(*v);
                }
            }
            black_box(hits)
        })
    });
    g.bench_function(BenchmarkId::new("isthmus_lpm", "v6"), |b| {
        b.iter(|| {
            let mut hits = 0u32;
            for a in &probes6 {
                if let Some((_, v)) = ours6.lookup(IpAddr::V6(*a)) {
                    hits = hits.wrapping_add(*v);
                }
            }
            black_box(hits)
        })
    });
    g.bench_function(BenchmarkId::new("prefix_trie", "v6"), |b| {
        b.iter(|| {
            let mut hits = 0u32;
            for a in &probes6 {
                if let Some((_, v)) = Ipv6Net::new(*a, 128).ok().and_then(|h| trie6.get_lpm(&h)) {
                    hits = hits.wrapping_add(*v);
                }
            }
            black_box(hits)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("lpm_build_100k");
    g.sample_size(10);
    g.bench_function(BenchmarkId::new("isthmus_lpm", "v4"), |b| {
        b.iter(|| {
            let t: LpmTable<u32> = v4
                .iter()
                .enumerate()
                .map(|(i, p)| (IpNet::V4(*p), i as u32))
                .collect();
            black_box(t.len())
        })
    });
    g.bench_function(BenchmarkId::new("prefix_trie", "v4"), |b| {
        b.iter(|| {
            let mut t: PrefixMap<Ipv4Net, u32> = PrefixMap::new();
            for (i, p) in v4.iter().enumerate() {
                t.insert(*p, i as u32);
            }
            black_box(t.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
