//! Validation of a large topology: 2,000 VNets (each with a RouteBased gateway), 10,000 sites,
//! 10,000 site-to-site connections, 3,600 VNet-to-VNet halves (chains of 10 gateways, so transit
//! groups are checked for overlaps), 20,000 address prefixes. Target: under 50 ms.
//!
//! `cargo bench -p isthmus-shared --bench validate -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use isthmus_shared::model::{Change, QualifiedName, Topology};
use isthmus_shared::routes::gateway_routes;
use isthmus_shared::validate::validate;

const VNETS: usize = 2_000;
const SITES: usize = 10_000;

fn topology() -> Topology {
    isthmus_shared::builder::synthetic(VNETS, SITES)
}

fn bench(c: &mut Criterion) {
    let t = topology();
    let prefixes: usize = t.vnets.iter().map(|v| v.address_space.len()).sum::<usize>()
        + t.sites
            .iter()
            .map(|s| s.address_prefixes.len())
            .sum::<usize>();
    assert_eq!(t.vnets.len(), VNETS);
    assert_eq!(t.sites.len(), SITES);
    assert_eq!(prefixes, 20_000);
    let violations = validate(&t);
    assert!(violations.is_empty(), "{:?}", violations.first());

    let mut g = c.benchmark_group("validate");
    g.sample_size(20);
    g.bench_function("2000_vnets_10000_sites_20000_prefixes", |b| {
        b.iter(|| black_box(validate(&t)).len())
    });
    let change = Change::UpsertSite({
        let mut s = t.sites[0].clone();
        s.address_prefixes.push(
            "10.0.7.0/24"
                .parse()
                .unwrap_or_else(|_| s.address_prefixes[0]),
        );
        s
    });
    g.bench_function("validate_change_overlapping_site", |b| {
        b.iter(|| black_box(isthmus_shared::validate::validate_change(&t, &change)).len())
    });
    g.bench_function("gateway_routes_chain_of_10", |b| {
        b.iter(|| {
            black_box(gateway_routes(&t, &QualifiedName::new("acme", "gw5")))
                .map(|r| r.routes.len())
        })
    });
    g.finish();

    // The portal's live validation: 500 VNets, one pending change, as a form does it.
    let t500 = isthmus_shared::builder::synthetic(500, 500);
    let mut v = t500.vnets[0].clone();
    v.dns_servers.push([10, 0, 0, 4].into());
    let change = Change::UpsertVnet(v);
    let mut g = c.benchmark_group("live");
    g.bench_function("500_vnets_clone_apply_validate", |b| {
        b.iter(|| {
            let mut next = t500.clone();
            let _ = next.apply(&change);
            black_box(validate(&next)).len()
        })
    });
    let mut scratch = t500.clone();
    g.bench_function("500_vnets_in_place", |b| {
        b.iter(|| {
            black_box(isthmus_shared::validate::validate_change_in_place(
                &mut scratch,
                &change,
            ))
            .len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
