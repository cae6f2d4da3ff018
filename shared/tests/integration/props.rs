//! Property tests: overlap, LPM, order independence of the validator and the routes, and
//! parsers that never panic. Every case runs for IPv4 and IPv6.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use isthmus_shared::builder::TopologyBuilder;
use isthmus_shared::desired::{DesiredStateMessage, StatusReportMessage};
use isthmus_shared::lpm::LpmTable;
use isthmus_shared::model::{
    Change, DeviceHost, GatewayType, QualifiedName, RootCertificate, Sku, Topology,
};
use isthmus_shared::psk::{PeerIdentity, derive_preshared_key, validate_shared_key};
use isthmus_shared::routes::effective_routes;
use isthmus_shared::rules::RuleId;
use isthmus_shared::validate::{
    name_problem, overlaps, validate, validate_applied, validate_change_in_place,
};
use proptest::prelude::*;
use rand_core::RngCore;

use crate::common::wgkey;
use crate::lpm::naive;
use crate::psk::TestRng;

fn v4_net() -> impl Strategy<Value = IpNet> {
    // Few distinct high bits so that overlaps are common.
    (0u32..8, any::<u32>(), 0u8..=32).prop_map(|(hi, lo, len)| {
        let addr = (hi << 29) | (lo >> 3);
        IpNet::V4(Ipv4Net::new(Ipv4Addr::from(addr), len).unwrap())
    })
}

fn v6_net() -> impl Strategy<Value = IpNet> {
    (0u128..8, any::<u128>(), 0u8..=128).prop_map(|(hi, lo, len)| {
        let addr = (hi << 125) | (lo >> 3);
        IpNet::V6(Ipv6Net::new(Ipv6Addr::from(addr), len).unwrap())
    })
}

fn any_net() -> impl Strategy<Value = IpNet> {
    prop_oneof![v4_net(), v6_net()]
}

/// Whether two prefixes share an address, computed from first/last addresses.
fn naive_overlap(a: &IpNet, b: &IpNet) -> bool {
    match (a.trunc(), b.trunc()) {
        (IpNet::V4(x), IpNet::V4(y)) => {
            x.network() <= y.broadcast() && y.network() <= x.broadcast()
        }
        (IpNet::V6(x), IpNet::V6(y)) => {
            x.network() <= y.broadcast() && y.network() <= x.broadcast()
        }
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn lim_3_overlap_is_symmetric_v4(a in v4_net(), b in v4_net()) {
        prop_assert_eq!(overlaps(&a, &b), overlaps(&b, &a));
        prop_assert_eq!(overlaps(&a, &b), naive_overlap(&a, &b));
    }

    #[test]
    fn lim_3_overlap_is_symmetric_v6(a in v6_net(), b in v6_net()) {
        prop_assert_eq!(overlaps(&a, &b), overlaps(&b, &a));
        prop_assert_eq!(overlaps(&a, &b), naive_overlap(&a, &b));
    }

    #[test]
    fn lim_3_containment_implies_overlap(a in any_net(), b in any_net()) {
        if a.trunc().contains(&b.trunc()) {
            prop_assert!(overlaps(&a, &b));
        }
        prop_assert!(overlaps(&a, &a));
        let other_family = if a.addr().is_ipv4() {
            IpNet::V6(Ipv6Net::new(Ipv6Addr::UNSPECIFIED, 0).unwrap())
        } else {
            IpNet::V4(Ipv4Net::new(Ipv4Addr::UNSPECIFIED, 0).unwrap())
        };
        prop_assert!(!overlaps(&a, &other_family));
    }

    #[test]
    fn lpm_equals_naive_scan_v4(entries in prop::collection::vec((v4_net(), any::<u16>()), 0..200), probes in prop::collection::vec(any::<u32>(), 0..64)) {
        check_lpm(&entries, probes.iter().map(|&p| IpAddr::V4(Ipv4Addr::from(p))));
    }

    #[test]
    fn lpm_equals_naive_scan_v6(entries in prop::collection::vec((v6_net(), any::<u16>()), 0..200), probes in prop::collection::vec(any::<u128>(), 0..64)) {
        check_lpm(&entries, probes.iter().map(|&p| IpAddr::V6(Ipv6Addr::from(p))));
    }

    #[test]
    fn lpm_equals_naive_scan_mixed(entries in prop::collection::vec((any_net(), any::<u16>()), 0..100)) {
        check_lpm(&entries, std::iter::empty());
    }

    #[test]
    fn parsing_never_panics(s in ".{0,300}") {
        let _ = s.parse::<DeviceHost>();
        let _ = validate_shared_key(&s);
        let _ = s.parse::<RuleId>();
        let _ = name_problem(&s);
        let _ = Topology::from_json(&s);
        let _ = serde_json::from_str::<DesiredStateMessage>(&s);
        let _ = serde_json::from_str::<StatusReportMessage>(&s);
        let _ = serde_json::from_str::<Change>(&s);
        let a = PeerIdentity::Gateway { tenant: s.clone(), name: "x".into() };
        let b = PeerIdentity::Site { tenant: "t".into(), name: s.clone() };
        let _ = derive_preshared_key(&s, &a, &b);
    }

    #[test]
    fn parsing_mutated_json_never_panics(seed in any::<u64>(), flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let t = random_topology(seed, seed % 2 == 0);
        let mut bytes = serde_json::to_vec(&t).unwrap();
        for (pos, b) in flips {
            let i = pos % bytes.len();
            bytes[i] = b;
        }
        if let Ok(s) = std::str::from_utf8(&bytes)
            && let Ok(parsed) = Topology::from_json(s)
        {
            let _ = validate(&parsed);
            let _ = effective_routes(&parsed);
        }
    }

    #[test]
    fn json_round_trips(seed in any::<u64>()) {
        let t = random_topology(seed, seed % 3 == 0);
        let json = serde_json::to_string(&t).unwrap();
        prop_assert_eq!(Topology::from_json(&json).unwrap(), t);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn validator_result_is_independent_of_resource_order_v4(seed in any::<u64>(), shuffle in any::<u64>()) {
        check_order_independence(seed, shuffle, false)?;
    }

    #[test]
    fn validator_result_is_independent_of_resource_order_v6(seed in any::<u64>(), shuffle in any::<u64>()) {
        check_order_independence(seed, shuffle, true)?;
    }

    /// The form's in-place check equals the copying one, and leaves the topology as it was.
    #[test]
    fn validate_change_in_place_equals_validate_change(seed in any::<u64>(), other in any::<u64>(), pick in any::<usize>(), v6 in any::<bool>()) {
        let t = random_topology(seed, v6);
        let u = random_topology(other, v6);
        let mut changes: Vec<Change> = Vec::new();
        changes.extend(u.tenants.iter().cloned().map(Change::UpsertTenant));
        changes.extend(u.tenants.iter().map(|x| Change::DeleteTenant(x.name.clone())));
        changes.extend(u.vnets.iter().cloned().map(Change::UpsertVnet));
        changes.extend(t.vnets.iter().map(|x| Change::DeleteVnet(QualifiedName::new(&x.tenant, &x.name))));
        changes.extend(u.gateways.iter().cloned().map(Change::UpsertGateway));
        changes.extend(u.gateways.iter().map(|x| Change::DeleteGateway(QualifiedName::new(&x.tenant, &x.name))));
        changes.extend(u.sites.iter().cloned().map(Change::UpsertSite));
        changes.extend(t.sites.iter().map(|x| Change::DeleteSite(QualifiedName::new(&x.tenant, &x.name))));
        changes.extend(u.connections.iter().cloned().map(Change::UpsertConnection));
        changes.extend(t.connections.iter().map(|x| Change::DeleteConnection(QualifiedName::new(&x.tenant, &x.name))));
        changes.extend(u.point_to_site.iter().cloned().map(Change::UpsertPointToSite));
        changes.extend(u.point_to_site.iter().map(|x| Change::DeletePointToSite(QualifiedName::new(&x.tenant, &x.gateway))));
        prop_assume!(!changes.is_empty());
        let change = &changes[pick % changes.len()];
        let mut scratch = t.clone();
        let in_place = validate_change_in_place(&mut scratch, change);
        prop_assert_eq!(&scratch, &t);
        // Reference: apply to a copy and validate the copy.
        let mut copy = t.clone();
        match copy.apply(change) {
            Ok(()) => prop_assert_eq!(in_place, validate_applied(&copy, std::slice::from_ref(change))),
            Err(_) => {
                prop_assert_eq!(in_place.len(), 1);
                prop_assert_eq!(in_place[0].rule, RuleId::Ref1);
                prop_assert_eq!(&copy, &t);
            }
        }
    }
}

fn check_lpm(entries: &[(IpNet, u16)], probes: impl Iterator<Item = IpAddr>) {
    let table: LpmTable<u16> = entries.iter().cloned().collect();
    // Probe the edges of every prefix too.
    let mut all: Vec<IpAddr> = probes.collect();
    for (p, _) in entries {
        let t = p.trunc();
        all.push(t.network());
        all.push(t.broadcast());
        match t {
            IpNet::V4(n) => {
                all.push(IpAddr::V4(Ipv4Addr::from(
                    u32::from(n.network()).wrapping_sub(1),
                )));
                all.push(IpAddr::V4(Ipv4Addr::from(
                    u32::from(n.broadcast()).wrapping_add(1),
                )));
            }
            IpNet::V6(n) => {
                all.push(IpAddr::V6(Ipv6Addr::from(
                    u128::from(n.network()).wrapping_sub(1),
                )));
                all.push(IpAddr::V6(Ipv6Addr::from(
                    u128::from(n.broadcast()).wrapping_add(1),
                )));
            }
        }
    }
    for a in all {
        assert_eq!(table.lookup(a), naive(entries, a), "lookup {a}");
    }
}

fn check_order_independence(seed: u64, shuffle: u64, v6: bool) -> Result<(), TestCaseError> {
    let t = random_topology(seed, v6);
    let mut s = t.clone();
    let mut rng = TestRng(shuffle);
    shuffle_vec(&mut s.tenants, &mut rng);
    shuffle_vec(&mut s.vnets, &mut rng);
    shuffle_vec(&mut s.gateways, &mut rng);
    shuffle_vec(&mut s.sites, &mut rng);
    shuffle_vec(&mut s.connections, &mut rng);
    shuffle_vec(&mut s.point_to_site, &mut rng);
    for v in &mut s.vnets {
        shuffle_vec(&mut v.subnets, &mut rng);
    }
    for p in &mut s.point_to_site {
        shuffle_vec(&mut p.clients, &mut rng);
    }
    let (a, b) = (validate(&t), validate(&s));
    prop_assert_eq!(&a, &b);
    prop_assert_eq!(effective_routes(&t), effective_routes(&s));
    // And the result is sorted and free of duplicates.
    let mut sorted = a.clone();
    sorted.sort();
    sorted.dedup();
    prop_assert_eq!(a, sorted);
    Ok(())
}

fn shuffle_vec<T>(v: &mut [T], rng: &mut TestRng) {
    for i in (1..v.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

/// A random, often invalid, topology: few names and a small address space, so that duplicates,
/// dangling references, overlaps and every rule come up.
pub fn random_topology(seed: u64, v6: bool) -> Topology {
    let mut r = TestRng(seed);
    let mut n = |m: u64| (r.next_u64() % m) as usize;
    let tenants = ["acme", "globex"];
    let mut b = TopologyBuilder::new("acme").tenant("globex");
    let prefix = |a: usize, len: usize, host: bool| {
        if v6 {
            format!(
                "2001:db8:{a:x}::{}/{}",
                if host { "1" } else { "" },
                44 + len
            )
        } else {
            format!("10.{a}.0.{}/{}", if host { 1 } else { 0 }, 12 + len)
        }
    };
    let gw_subnet = |a: usize, len: usize| {
        if v6 {
            format!("2001:db8:{a:x}:ff::/{}", 60 + len)
        } else {
            format!("10.{a}.255.0/{}", 26 + len)
        }
    };
    let nv = 1 + n(5);
    for i in 0..nv {
        let tenant = tenants[n(2)];
        b = b.tenant(tenant).vnet(
            &format!("v{}", n(nv as u64 + 1)),
            ["eu", "us"][n(2)],
            &[&prefix(n(8), n(6), n(10) == 0)],
        );
        let name = b.topology().vnets.last().map(|v| v.name.clone()).unwrap();
        if n(4) != 0 {
            b = b.gateway_subnet(&name, &gw_subnet(i, n(6)));
        }
        if n(3) != 0 {
            b = b.gateway(
                &format!("g{}", n(nv as u64 + 1)),
                &name,
                if n(4) == 0 {
                    GatewayType::PolicyBased
                } else {
                    GatewayType::RouteBased
                },
                Sku::ALL[n(8)],
            );
        }
        if n(6) == 0 {
            b = b.private_circuit(&name, "er", &[&prefix(n(8), n(6), false)]);
        }
    }
    let ns = n(5);
    for i in 0..ns {
        let tenant = tenants[n(2)];
        let host = [
            "203.0.113.1",
            "192.168.0.1",
            "2001:db8::1",
            "vpn.example.com",
        ][n(4)];
        b = b.tenant(tenant).site(
            &format!("s{i}"),
            host,
            &[&prefix(n(8), n(6) + 2, n(10) == 0)],
        );
        if n(2) == 0 {
            b = b.edit_site(&format!("s{i}"), |s| {
                s.device_public_key = Some(wgkey((i % 3) as u8))
            });
        }
    }
    let nc = n(8);
    for i in 0..nc {
        let tenant = tenants[n(2)];
        b = b.tenant(tenant);
        let gw = format!("g{}", n(nv as u64 + 1));
        let name = format!("c{}", if n(8) == 0 { 0 } else { i });
        b = if n(2) == 0 {
            b.s2s(&name, &gw, &format!("s{}", n(ns as u64 + 1)))
        } else {
            let remote_tenant = if n(3) == 0 { Some(tenants[n(2)]) } else { None };
            b.v2v(&name, &gw, remote_tenant, &format!("g{}", n(nv as u64 + 1)))
        };
        if n(2) == 0 {
            b = b.shared_key(&name, ["abc", "abd", "bad-key", ""][n(4)]);
        }
        if n(5) == 0 {
            b = b.edit_connection(&name, |c| c.enabled = false);
        }
        if n(6) == 0 {
            let (l, rm) = (prefix(n(8), n(6), false), prefix(n(8), n(6), false));
            b = b.selector(&name, &l, &rm);
        }
    }
    if n(3) == 0
        && let Some(g) = b
            .topology()
            .gateways
            .first()
            .map(|g| (g.tenant.clone(), g.name.clone()))
    {
        b = b
            .tenant(&g.0)
            .edit_gateway(&g.1, |g| g.forced_tunneling_site = Some("s0".into()));
    }
    let np = n(3);
    for _ in 0..np {
        let tenant = tenants[n(2)];
        let gw = format!("g{}", n(nv as u64 + 1));
        let pool = prefix(n(8), n(6) + 4, false);
        b = b.tenant(tenant).p2s(&gw, &[&pool]);
        let extra = format!("v{}", n(nv as u64 + 1));
        let roots = n(23);
        b = b.edit_p2s(&gw, |p| {
            p.additional_vnets.push(extra);
            p.root_certificates = (0..roots)
                .map(|i| RootCertificate {
                    name: format!("r{i}"),
                    data: String::new(),
                })
                .collect();
        });
        let base: IpNet = pool.parse().unwrap();
        for k in 0..n(4) {
            let addr = base.hosts().nth(k % 3).unwrap_or(base.network());
            b = b.p2s_client(
                &gw,
                &format!("cl{k}"),
                &wgkey(10 + (k % 2) as u8),
                &addr.to_string(),
            );
        }
    }
    b.build().unwrap()
}
