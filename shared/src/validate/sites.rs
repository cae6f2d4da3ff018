//! Local network sites: address prefixes (through `Validator::check_prefix_list`), the device's
//! host (CONN-4), public key (KEY-1 through `Validator::check_key`) and port (PORT-1 in
//! `reserved.rs`).
//!
//! Enforces: CONN-4, PFX-2.

use super::path::FieldPath;
use super::{Validator, Violation, reserved};
use crate::model::{DeviceHost, Kind};
use crate::rules::RuleId;
use std::net::Ipv4Addr;

impl<'a> Validator<'a> {
    pub(super) fn check_sites(&mut self) {
        for s in &self.t.sites {
            let base = FieldPath::new(Kind::Site, &s.tenant, &s.name);
            if s.address_prefixes.is_empty() {
                self.push(
                    Violation::new(
                        RuleId::Pfx2,
                        base.field("address_prefixes"),
                        format!(
                            "site {:?} has no address prefixes; add the on-premises ranges to route \
                             through the tunnel",
                            s.name
                        ),
                    )
                    .case("site")
                    .param("site", &s.name),
                );
            }
            self.check_prefix_list(base, "address_prefixes", &s.address_prefixes);
            let hp = base.field("device_host");
            match &s.device_host {
                DeviceHost::Ipv6(a) => self.push(
                    Violation::new(
                        RuleId::Conn4,
                        hp,
                        format!(
                            "the device address {a} is IPv6; a site-to-site device needs a public \
                             IPv4 address (or a DNS name resolving to one)"
                        ),
                    )
                    .case("ipv6")
                    .param("host", a),
                ),
                DeviceHost::Ipv4(a) => {
                    if let Some((code, problem)) = ipv4_unusable(*a) {
                        self.push(
                            Violation::new(
                                RuleId::Conn4,
                                hp,
                                format!(
                                    "the device address {a} is {problem}; a site-to-site device \
                                     needs a public IPv4 address"
                                ),
                            )
                            .case("unusable")
                            .param("host", a)
                            .param("problem", code),
                        );
                    } else if let Some((code, kind)) = ipv4_non_public(*a) {
                        self.push(
                            Violation::new(
                                RuleId::Conn4,
                                hp,
                                format!(
                                    "the device address {a} is {kind}; the tunnel only comes up if \
                                     the gateway can reach it (give the device's public IPv4 address)"
                                ),
                            )
                            .warning()
                            .case("non_public")
                            .param("host", a)
                            .param("problem", code),
                        );
                    }
                }
                DeviceHost::Name(_) => {}
            }
            if let Some(k) = &s.device_public_key {
                self.check_key(base.field("device_public_key"), "device public key", k);
            }
            if let Some(v) = reserved::check_device_port(&base, s.device_port) {
                self.push(v);
            }
        }
    }
}

/// (the `problem` param, the English phrase; `messages` has the same phrase as a term).
fn ipv4_unusable(a: Ipv4Addr) -> Option<(&'static str, &'static str)> {
    if a.is_unspecified() {
        Some(("unspecified", "unspecified (0.0.0.0)"))
    } else if a.is_broadcast() {
        Some(("broadcast", "the broadcast address"))
    } else if a.is_multicast() {
        Some(("multicast", "a multicast address"))
    } else if a.octets()[0] == 0 {
        Some(("this_network", "in 0.0.0.0/8 (\"this network\")"))
    } else {
        None
    }
}

fn ipv4_non_public(a: Ipv4Addr) -> Option<(&'static str, &'static str)> {
    let o = a.octets();
    if a.is_loopback() {
        Some(("loopback", "a loopback address"))
    } else if a.is_private() {
        Some(("private", "a private (RFC 1918) address"))
    } else if a.is_link_local() {
        Some(("link_local", "a link-local address"))
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some(("cgnat", "a carrier-grade NAT (100.64.0.0/10) address"))
    } else {
        None
    }
}
