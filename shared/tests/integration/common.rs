//! Helpers shared by the integration tests.

use base64::Engine as _;
use isthmus_shared::builder::TopologyBuilder;
use isthmus_shared::model::{GatewayType, Sku, Topology};
use isthmus_shared::rules::RuleId;
use isthmus_shared::validate::{Severity, Violation, validate};

/// A WireGuard-shaped public key: 32 bytes of `n`, base64.
pub fn wgkey(n: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([n; 32])
}

/// Tenant `acme` with VNet `hub` (10.0.0.0/16, westeurope, GatewaySubnet 10.0.255.0/27) and a
/// RouteBased VpnGw1 gateway `hub-gw`.
pub fn hub() -> TopologyBuilder {
    TopologyBuilder::new("acme")
        .vnet("hub", "westeurope", &["10.0.0.0/16"])
        .gateway_subnet("hub", "10.0.255.0/27")
        .subnet("hub", "workloads", "10.0.1.0/24")
        .gateway("hub-gw", "hub", GatewayType::RouteBased, Sku::VpnGw1)
}

/// [`hub`] with a gateway of the given type and SKU.
pub fn hub_with(gateway_type: GatewayType, sku: Sku) -> TopologyBuilder {
    hub().edit_gateway("hub-gw", |g| {
        g.gateway_type = gateway_type;
        g.sku = sku;
    })
}

/// Adds VNet `name` with gateway `{name}-gw` (RouteBased VpnGw1) and a GatewaySubnet at the
/// top of `space` (a /16 given as its first two octets, e.g. "10.1").
pub fn spoke(b: TopologyBuilder, name: &str, octets: &str, region: &str) -> TopologyBuilder {
    b.vnet(name, region, &[&format!("{octets}.0.0/16")])
        .gateway_subnet(name, &format!("{octets}.255.0/27"))
        .gateway(
            &format!("{name}-gw"),
            name,
            GatewayType::RouteBased,
            Sku::VpnGw1,
        )
}

pub fn build(b: TopologyBuilder) -> Topology {
    b.build().expect("builder input parses")
}

pub fn rules(v: &[Violation]) -> Vec<RuleId> {
    v.iter().map(|x| x.rule).collect()
}

/// Asserts the topology has no violation at all.
#[track_caller]
pub fn assert_valid(t: &Topology) {
    let v = validate(t);
    assert!(v.is_empty(), "expected no violations, got:\n{}", pretty(&v));
}

/// Asserts an error of `rule` is reported and returns those violations.
#[track_caller]
pub fn assert_error(t: &Topology, rule: RuleId) -> Vec<Violation> {
    let all = validate(t);
    let hits: Vec<Violation> = all
        .iter()
        .filter(|v| v.rule == rule && v.severity == Severity::Error)
        .cloned()
        .collect();
    assert!(
        !hits.is_empty(),
        "expected an error of {rule}, got:\n{}",
        pretty(&all)
    );
    hits
}

/// Asserts a warning of `rule` is reported (and no error of it).
#[track_caller]
pub fn assert_warning(t: &Topology, rule: RuleId) -> Vec<Violation> {
    let all = validate(t);
    let hits: Vec<Violation> = all.iter().filter(|v| v.rule == rule).cloned().collect();
    assert!(
        !hits.is_empty() && hits.iter().all(|v| v.severity == Severity::Warning),
        "expected only warnings of {rule}, got:\n{}",
        pretty(&all)
    );
    hits
}

pub fn pretty(v: &[Violation]) -> String {
    v.iter()
        .map(|x| format!("  {} {:?} {}: {}", x.rule, x.severity, x.path, x.message))
        .collect::<Vec<_>>()
        .join("\n")
}
