//! Validation of a large topology: 2,000 VNets (each with a RouteBased gateway), 10,000 sites,
//! 10,000 site-to-site connections, 3,600 VNet-to-VNet halves (chains of 10 gateways, so transit
//! groups are checked for overlaps), 20,000 address prefixes. Target: under 50 ms.
//!
//! `cargo bench -p isthmus-shared --bench validate -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use isthmus_shared::builder::TopologyBuilder;
use isthmus_shared::model::{Change, GatewayType, QualifiedName, Sku, Topology};
use isthmus_shared::routes::gateway_routes;
use isthmus_shared::validate::validate;

const VNETS: usize = 2_000;
const SITES: usize = 10_000;

fn v4(n: u32, len: u8) -> String {
    let a = std::net::Ipv4Addr::from(n);
    format!("{a}/{len}")
}

fn topology() -> Topology {
    let mut b = TopologyBuilder::new("acme");
    for i in 0..VNETS {
        // 10.0.0.0/8 holds 4,096 /20s.
        let base = (10u32 << 24) | ((i as u32) << 12);
        let name = format!("vnet{i}");
        b = b
            .vnet(
                &name,
                if i % 2 == 0 { "westeurope" } else { "eastus" },
                &[&v4(base, 20)],
            )
            .gateway_subnet(&name, &v4(base | 0xf00, 27))
            .subnet(&name, "workloads", &v4(base, 24))
            .gateway(
                &format!("gw{i}"),
                &name,
                GatewayType::RouteBased,
                Sku::VpnGw4,
            );
        // Chains of 10 gateways: gw0-gw1-...-gw9, gw10-...
        if i % 10 != 0 {
            b = b.v2v_pair(
                &format!("v{}-{i}", i - 1),
                &format!("gw{}", i - 1),
                &format!("v{i}-{}", i - 1),
                &format!("gw{i}"),
            );
        }
    }
    for j in 0..SITES {
        // Sites: 18,000 /24s from 20.0.0.0 up (two prefixes for 8,000 sites, one for 2,000).
        let base = (20u32 << 24) + (2 * j as u32) * 256;
        let prefixes: Vec<String> = if j % 5 == 0 {
            vec![v4(base, 24)]
        } else {
            vec![v4(base, 24), v4(base + 256, 24)]
        };
        let refs: Vec<&str> = prefixes.iter().map(String::as_str).collect();
        let host = format!("198.{}.{}.{}", 18 + (j >> 16), (j >> 8) & 255, j & 255);
        b = b.site(&format!("site{j}"), &host, &refs).s2s(
            &format!("c{j}"),
            &format!("gw{}", j % VNETS),
            &format!("site{j}"),
        );
    }
    b.build().unwrap_or_default()
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
}

criterion_group!(benches, bench);
criterion_main!(benches);
