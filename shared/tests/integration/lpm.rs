//! The longest-prefix-match table against a naive linear scan (see also `props.rs`).

use ipnet::IpNet;
use isthmus_shared::lpm::LpmTable;

pub fn naive<V>(entries: &[(IpNet, V)], addr: std::net::IpAddr) -> Option<(IpNet, &V)> {
    // First value wins for a repeated prefix, like `LpmTable::from_entries`.
    let mut best: Option<(IpNet, &V)> = None;
    for (p, v) in entries {
        let p = p.trunc();
        if p.contains(&addr) && best.is_none_or(|(b, _)| p.prefix_len() > b.prefix_len()) {
            best = Some((p, v));
        }
    }
    best
}

#[test]
fn lpm_handles_duplicates_defaults_and_both_families() {
    let entries: Vec<(IpNet, u32)> = [
        ("0.0.0.0/0", 1),
        ("10.0.0.0/8", 2),
        ("10.0.0.0/8", 3),
        ("10.0.0.0/32", 4),
        ("10.255.255.255/32", 5),
        ("::/0", 6),
        ("::/128", 7),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", 8),
    ]
    .iter()
    .map(|(p, v)| (p.parse().unwrap(), *v))
    .collect();
    let t: LpmTable<u32> = entries.iter().cloned().collect();
    assert_eq!(t.len(), 7);
    for a in [
        "0.0.0.0",
        "10.0.0.0",
        "10.0.0.1",
        "10.255.255.255",
        "11.0.0.0",
        "255.255.255.255",
        "::",
        "::1",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe",
    ] {
        let addr = a.parse().unwrap();
        assert_eq!(t.lookup(addr), naive(&entries, addr), "{a}");
    }
}

/// Large tables use the first-level index: compare with the naive scan there too (v4 and v6).
#[test]
fn lpm_large_tables_match_the_naive_scan() {
    use crate::psk::TestRng;
    use rand_core::RngCore;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let mut r = TestRng(5);
    let mut entries: Vec<(IpNet, u32)> = Vec::new();
    for i in 0..4000u32 {
        let len4 = 8 + (r.next_u32() % 25) as u8;
        let a4 = Ipv4Addr::from(r.next_u32() & 0x3fff_ffff);
        entries.push((IpNet::V4(ipnet::Ipv4Net::new(a4, len4).unwrap()), i));
        let len6 = 16 + (r.next_u32() % 100) as u8;
        let a6 = Ipv6Addr::from((u128::from(r.next_u64()) << 64 | u128::from(r.next_u64())) >> 4);
        entries.push((IpNet::V6(ipnet::Ipv6Net::new(a6, len6).unwrap()), i));
    }
    let t: LpmTable<u32> = entries.iter().cloned().collect();
    for k in 0..2_000usize {
        let (p, _) = entries[k % entries.len()];
        let addr = match p.trunc() {
            IpNet::V4(n) => IpAddr::V4(Ipv4Addr::from(
                u32::from(n.network()) | (r.next_u32() & !u32::from(n.netmask())),
            )),
            IpNet::V6(n) => IpAddr::V6(Ipv6Addr::from(
                u128::from(n.network()) | (u128::from(r.next_u64()) & !u128::from(n.netmask())),
            )),
        };
        assert_eq!(t.lookup(addr), naive(&entries, addr), "{addr}");
        let random = IpAddr::V4(Ipv4Addr::from(r.next_u32()));
        assert_eq!(t.lookup(random), naive(&entries, random), "{random}");
    }
}

#[test]
fn synthetic_benchmark_topology_is_valid_and_sized() {
    let t = isthmus_shared::builder::synthetic(50, 200);
    assert_eq!(t.vnets.len(), 50);
    assert_eq!(t.sites.len(), 200);
    let errors: Vec<_> = isthmus_shared::validate::validate(&t)
        .into_iter()
        .filter(|v| v.is_error())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}
