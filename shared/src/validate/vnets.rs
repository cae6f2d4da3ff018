//! VNets: address space, subnets and route sources. The `GatewaySubnet` rules (GW-7) are all in
//! `gateways.rs`; the prefix lists go through `Validator::check_prefix_list` (PFX-1, PFX-3,
//! reserved ranges).
//!
//! Enforces: GW-11, NAME-1, NAME-2, PFX-1, PFX-2, SUB-1, SUB-2.

use super::path::FieldPath;
use super::{Validator, Violation, canonical_prefix_message, count_names, join, name_issue};
use crate::model::{Kind, RouteSourceKind};
use crate::prefix::nested_pairs;
use crate::rules::RuleId;
use ipnet::IpNet;

impl<'a> Validator<'a> {
    pub(super) fn check_vnets(&mut self) {
        let t = self.t;
        for v in &t.vnets {
            let base = FieldPath::new(Kind::Vnet, &v.tenant, &v.name);
            if v.region.trim().is_empty() {
                self.push(
                    Violation::new(
                        RuleId::Name2,
                        base.field("region"),
                        "the region is empty; give the region label the VNet runs in",
                    )
                    .case("region"),
                );
            }
            if v.address_space.is_empty() {
                self.push(
                    Violation::new(
                        RuleId::Pfx2,
                        base.field("address_space"),
                        format!(
                            "VNet {:?} has no address space; add at least one prefix",
                            v.name
                        ),
                    )
                    .case("vnet")
                    .param("vnet", &v.name),
                );
            }
            self.check_prefix_list(base, "address_space", &v.address_space);
            self.check_vnet_gateway_subnet(v);

            let names = count_names(v.subnets.iter().map(|s| s.name.as_str()));
            for s in &v.subnets {
                let sp = base.key("subnets", &s.name);
                if names(&s.name) > 1 {
                    self.push(
                        Violation::new(
                            RuleId::Name1,
                            sp,
                            format!("more than one subnet is named {:?}; rename one", s.name),
                        )
                        .case("subnet")
                        .param("name", &s.name),
                    );
                }
                if let Some(p) = name_issue(&s.name) {
                    let x = Violation::new(
                        RuleId::Name2,
                        sp,
                        format!("subnet name {:?}: {}", s.name, p.message),
                    );
                    self.push(p.apply(x, "subnet", &s.name));
                }
                if let Some(msg) = canonical_prefix_message(&s.prefix) {
                    self.push(
                        Violation::new(RuleId::Pfx1, sp.field("prefix"), msg)
                            .param("prefix", s.prefix)
                            .param("canonical", s.prefix.trunc()),
                    );
                }
                if !v.address_space.is_empty()
                    && !v
                        .address_space
                        .iter()
                        .any(|a| a.trunc().contains(&s.prefix.trunc()))
                {
                    self.push(
                        Violation::new(
                            RuleId::Sub1,
                            sp.field("prefix"),
                            format!(
                                "subnet {:?} ({}) is outside the VNet's address space ({}); pick a \
                                 prefix inside it or extend the address space",
                                s.name,
                                s.prefix,
                                join(&v.address_space)
                            ),
                        )
                        .param("subnet", &s.name)
                        .param("prefix", s.prefix)
                        .param("address_space", join(&v.address_space)),
                    );
                }
            }
            let mut items: Vec<(IpNet, usize)> = v
                .subnets
                .iter()
                .enumerate()
                .map(|(i, s)| (s.prefix.trunc(), i))
                .collect();
            for (a, b) in nested_pairs(&mut items) {
                let (sa, sb) = (&v.subnets[a], &v.subnets[b]);
                let (first, second) = if sa.name <= sb.name {
                    (sa, sb)
                } else {
                    (sb, sa)
                };
                self.push(
                    Violation::new(
                        RuleId::Sub2,
                        base.key("subnets", &second.name).field("prefix"),
                        format!(
                            "subnet {:?} ({}) overlaps subnet {:?} ({}); subnets of a VNet are \
                             disjoint: shrink or move one of them",
                            second.name, second.prefix, first.name, first.prefix
                        ),
                    )
                    .param("subnet", &second.name)
                    .param("prefix", second.prefix)
                    .param("other_subnet", &first.name)
                    .param("other_prefix", first.prefix)
                    .related(base.key("subnets", &first.name)),
                );
            }

            let rs_names = count_names(v.route_sources.iter().map(|r| r.name.as_str()));
            for r in &v.route_sources {
                let rp = base.key("route_sources", &r.name);
                if rs_names(&r.name) > 1 {
                    self.push(
                        Violation::new(
                            RuleId::Name1,
                            rp,
                            format!(
                                "more than one route source is named {:?}; rename one",
                                r.name
                            ),
                        )
                        .case("route_source")
                        .param("name", &r.name),
                    );
                }
                for (i, p) in r.prefixes.iter().enumerate() {
                    if let Some(msg) = canonical_prefix_message(p) {
                        self.push(
                            Violation::new(RuleId::Pfx1, rp.index("prefixes", i), msg)
                                .param("prefix", p)
                                .param("canonical", p.trunc()),
                        );
                    }
                }
                if let RouteSourceKind::Appliance { next_hop } = r.kind
                    && !v.contains(next_hop)
                {
                    self.push(
                        Violation::new(
                            RuleId::Gw11,
                            rp.field("kind").field("next_hop"),
                            format!(
                                "the appliance address {next_hop} is outside the VNet's address \
                                 space ({}); user-defined routes point at an appliance inside the VNet",
                                join(&v.address_space)
                            ),
                        )
                        .param("address", next_hop)
                        .param("address_space", join(&v.address_space)),
                    );
                }
            }
        }
    }
}
