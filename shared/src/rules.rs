//! Rule identifiers.
//!
//! Every rule of the product has an id. The ids of the spec (`CONN-*`, `S2S-*`, `P2S-*`, `GW-*`,
//! `LIM-*`, `VM-*`, see `gateway-rules.md`) are kept verbatim; the sanity rules this crate adds
//! (`NAME-*`, `PFX-*`, `SUB-*`, `REF-*`, `VNET-*`, `KEY-*`, `ADDR-*`, `PORT-*`, `IPSEC-*`) follow the same
//! pattern.
//! A [`RuleId`] serialises as its id string (`"GW-7"`), so the portal and a later translation
//! can key on it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! rule_ids {
    ($( $(#[$doc:meta])* $variant:ident = $id:literal, $desc:literal; )*) => {
        /// The id of a gateway rule (spec rules and this crate's sanity rules).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum RuleId {
            $( $(#[$doc])* #[doc = $desc] $variant, )*
        }

        impl RuleId {
            /// Every rule, in declaration order (spec order, then sanity rules).
            pub const ALL: &'static [RuleId] = &[ $( RuleId::$variant, )* ];

            /// The id as written in the spec, e.g. `"GW-7"`.
            pub fn as_str(self) -> &'static str {
                match self { $( RuleId::$variant => $id, )* }
            }

            /// A one-sentence English description of the rule, for the UI.
            pub fn description(self) -> &'static str {
                match self { $( RuleId::$variant => $desc, )* }
            }
        }

        impl FromStr for RuleId {
            type Err = UnknownRuleId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $id => Ok(RuleId::$variant), )*
                    _ => Err(UnknownRuleId(s.chars().take(32).collect())),
                }
            }
        }
    };
}

rule_ids! {
    Conn1 = "CONN-1", "VNets can be connected across regions; there is no region restriction.";
    Conn2 = "CONN-2", "VNets of different tenants can be connected: each owner creates its half and both halves carry the same shared key.";
    Conn3 = "CONN-3", "A VNet can connect to several sites and VNets only through a RouteBased gateway.";
    Conn4 = "CONN-4", "Site-to-site needs a VPN device reachable at a public IPv4 address (or a host name); point-to-site needs no device.";
    Conn5 = "CONN-5", "Site-to-site and point-to-site coexist on one VNet only when its gateway is RouteBased.";
    S2s1 = "S2S-1", "Any device implementing the standard protocol (WireGuard) works; the product gives the exact parameters it must meet.";
    S2s2 = "S2S-2", "A PolicyBased tunnel is torn down after 5 minutes without traffic and comes back on demand; RouteBased tunnels never idle out.";
    S2s3 = "S2S-3", "A software VPN running on a server is a valid site device.";
    P2s1 = "P2S-1", "Point-to-site works only on RouteBased gateways.";
    P2s2 = "P2S-2", "The number of point-to-site clients per gateway is limited by its SKU (128 for the 2015 SKUs).";
    P2s3 = "P2S-3", "Point-to-site clients are authorised through uploaded root certificates; at most 20 root certificates.";
    P2s4 = "P2S-4", "Point-to-site works through proxies and firewalls (the gateway can listen on a firewall-friendly port).";
    P2s5 = "P2S-5", "A WireGuard client roams and reconnects by itself; no DDNS is needed.";
    P2s6 = "P2S-6", "A client configured for several VNets needs their prefixes disjoint, and its address pool must not overlap any VNet it reaches.";
    P2s7 = "P2S-7", "Throughput is bounded by encryption cost and the Internet path; the bandwidth figure is a cap, not a promise.";
    P2s8 = "P2S-8", "A point-to-site client reaches the VNets and sites connected to its gateway by other tunnels.";
    Gw1 = "GW-1", "A PolicyBased gateway sends packets into a tunnel according to traffic selectors (site prefix, VNet prefix).";
    Gw2 = "GW-2", "A RouteBased gateway sends packets into tunnels according to its forwarding table; selectors are any-to-any.";
    Gw3 = "GW-3", "A gateway's public endpoint is allocated when the gateway is created and is unique to it.";
    Gw4 = "GW-4", "Tunnels are authenticated with a shared key, unique per connection by default and replaceable; both halves of a tunnel use the same key.";
    Gw5 = "GW-5", "A shared key is 1 to 128 characters, ASCII letters and digits only.";
    Gw6 = "GW-6", "Multi-site and VNet-to-VNet need RouteBased gateways, on both ends for VNet-to-VNet.";
    Gw7 = "GW-7", "A VNet with a gateway needs a subnet named GatewaySubnet of at least /29 (IPv4) or /64 (IPv6), reserved for the gateway.";
    Gw8 = "GW-8", "Only traffic to connected prefixes goes through the gateway; traffic to the VNet stays inside; the rest goes to the Internet.";
    Gw9 = "GW-9", "Forced tunneling makes a site connected to the gateway the default route for Internet-bound traffic.";
    Gw10 = "GW-10", "The gateway is multi-homed: a private address in GatewaySubnet and a public endpoint; management needs certificates.";
    Gw11 = "GW-11", "A user may run their own VPN appliance in the VNet with user-defined routes.";
    Lim1 = "LIM-1", "Connections per gateway (site-to-site plus VNet-to-VNet) are limited by the SKU: Basic/Standard 10, HighPerformance 30.";
    Lim2 = "LIM-2", "No redundant tunnels between one gateway and one site, except two on an active-active gateway whose SKU supports it.";
    Lim3 = "LIM-3", "Address spaces that reach each other (directly or through transit), and point-to-site pools, must not overlap.";
    Lim4 = "LIM-4", "All tunnels of a gateway, point-to-site included, share the gateway's bandwidth.";
    Lim5 = "LIM-5", "Transit routes through gateways are computed from the topology, never written by hand.";
    Lim6 = "LIM-6", "VNet-to-VNet traffic is metered per region pair (billed only across regions).";
    Lim7 = "LIM-7", "A VNet may have other, non-VPN route sources (a private circuit) next to its gateway.";
    Vm1 = "VM-1", "A VM is reached from outside by its public address; its private address only over a tunnel.";
    Vm2 = "VM-2", "The product shows, for a source and a destination, which way a packet goes and why (next hop).";
    Name1 = "NAME-1", "Names are unique per kind within a tenant (subnets within a VNet, clients and certificates within a configuration).";
    Name2 = "NAME-2", "Names are 1 to 80 characters: ASCII letters, digits, '-', '_' and '.', starting with a letter or digit.";
    Pfx1 = "PFX-1", "Prefixes are canonical: no host bits set after the prefix length.";
    Pfx2 = "PFX-2", "A VNet needs an address space, a site address prefixes and a point-to-site configuration an address pool.";
    Pfx3 = "PFX-3", "The prefixes of one list (an address space, a site's prefixes, a pool) do not overlap each other.";
    Pfx4 = "PFX-4", "An address space, a site's prefixes or a pool is never a whole address family (0.0.0.0/0, ::/0); a default route through a site is forced tunneling (GW-9).";
    Pfx5 = "PFX-5", "An address space, a site's prefixes or a pool does not overlap multicast space (224.0.0.0/4, ff00::/8).";
    Pfx6 = "PFX-6", "An address space, a site's prefixes or a pool does not overlap loopback space (127.0.0.0/8, ::1/128).";
    Pfx7 = "PFX-7", "An address space, a site's prefixes or a pool does not overlap link-local space (169.254.0.0/16, fe80::/10).";
    Pfx8 = "PFX-8", "An address space, a site's prefixes or a pool does not overlap the unspecified addresses (0.0.0.0/8, ::/128).";
    Sub1 = "SUB-1", "Every subnet lies inside its VNet's address space.";
    Sub2 = "SUB-2", "Subnets of one VNet do not overlap each other.";
    Ref1 = "REF-1", "Every reference (tenant, VNet, gateway, site, connection) names an existing resource.";
    Ref2 = "REF-2", "A VNet-to-VNet connection joins two different gateways, and at most one connection joins a gateway to a given remote gateway.";
    Vnet1 = "VNET-1", "A VNet has at most one gateway.";
    Key1 = "KEY-1", "WireGuard public keys are 32 bytes in standard base64 (44 characters).";
    Key2 = "KEY-2", "The peers of one gateway have distinct public keys (WireGuard identifies a peer by its key).";
    Addr1 = "ADDR-1", "A point-to-site client's address lies inside the pool and is not used by another client.";
    Port1 = "PORT-1", "A site device's WireGuard port is 1 to 65535 (51820 when not given).";
    Ipsec1 = "IPSEC-1", "IPsec (IKEv2) is for site-to-site connections only; VNet-to-VNet and point-to-site tunnels use WireGuard.";
    Ipsec2 = "IPSEC-2", "A custom IPsec/IKE policy and a connection mode other than Default are only for IPsec connections.";
    Ipsec3 = "IPSEC-3", "IKE and CHILD SA lifetimes are 60 to 172800 seconds; a CHILD SA data lifetime is 1024 to 2147483647 kilobytes.";
    Ipsec4 = "IPSEC-4", "A site's IKE identity is an IPv4 address, a DNS name or user@name, at most 255 characters without spaces.";
    Ipsec5 = "IPSEC-5", "Two enabled IPsec connections of one gateway do not go to the same device address (the gateway knows a device's first IKE message by its address).";
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a known rule id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown rule id {0:?}")]
pub struct UnknownRuleId(pub String);

impl Serialize for RuleId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RuleId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for &rule in RuleId::ALL {
            assert_eq!(rule.as_str().parse::<RuleId>(), Ok(rule));
            assert!(!rule.description().is_empty());
            let json = serde_json::to_string(&rule).unwrap();
            assert_eq!(json, format!("\"{}\"", rule.as_str()));
        }
    }
}
