//! PFX-4 to PFX-8 and PORT-1: address ranges no VNet, site or point-to-site pool can use, and
//! the site device port.
//!
//! Enforces: PFX-4, PFX-5, PFX-6, PFX-7, PFX-8, PORT-1.
//!
//! A VNet's address space, a site's address prefixes and a point-to-site pool are unicast
//! ranges that hosts are reached at through tunnels. A whole address family (`0.0.0.0/0`,
//! `::/0`: a default route through a site is forced tunneling, GW-9), multicast, loopback,
//! link-local and the unspecified addresses never are; a prefix overlapping one of them is
//! refused with the range it overlaps and what to use instead.

use ipnet::IpNet;

use super::Violation;
use crate::rules::RuleId;

/// A range that no address list may overlap, with its rule and a name for the message.
struct Reserved {
    rule: RuleId,
    net: &'static str,
    what: &'static str,
    why: &'static str,
}

const RESERVED: &[Reserved] = &[
    Reserved {
        rule: RuleId::Pfx8,
        net: "0.0.0.0/8",
        what: "the unspecified range 0.0.0.0/8 (\"this network\")",
        why: "no host is reached at these addresses",
    },
    Reserved {
        rule: RuleId::Pfx8,
        net: "::/128",
        what: "the unspecified address ::",
        why: "no host is reached at it",
    },
    Reserved {
        rule: RuleId::Pfx6,
        net: "127.0.0.0/8",
        what: "the loopback range 127.0.0.0/8",
        why: "loopback addresses never leave a host",
    },
    Reserved {
        rule: RuleId::Pfx6,
        net: "::1/128",
        what: "the loopback address ::1",
        why: "loopback addresses never leave a host",
    },
    Reserved {
        rule: RuleId::Pfx7,
        net: "169.254.0.0/16",
        what: "the link-local range 169.254.0.0/16",
        why: "link-local addresses are not routed beyond one link",
    },
    Reserved {
        rule: RuleId::Pfx7,
        net: "fe80::/10",
        what: "the link-local range fe80::/10",
        why: "link-local addresses are not routed beyond one link",
    },
    Reserved {
        rule: RuleId::Pfx5,
        net: "224.0.0.0/4",
        what: "the multicast range 224.0.0.0/4",
        why: "multicast is not carried through tunnels",
    },
    Reserved {
        rule: RuleId::Pfx5,
        net: "ff00::/8",
        what: "the multicast range ff00::/8",
        why: "multicast is not carried through tunnels",
    },
];

/// What a list holds, for the message: (noun, example of a good prefix).
fn list_kind(field: &str) -> (&'static str, &'static str) {
    match field {
        "address_space" => ("a VNet address space", "10.1.0.0/16"),
        "address_prefixes" => ("a site's address prefixes", "192.168.50.0/24"),
        _ => ("a point-to-site address pool", "172.16.201.0/24"),
    }
}

/// PFX-4 to PFX-8 for one address list (`field` of `base`).
pub(super) fn check_list(
    base: &dyn std::fmt::Display,
    field: &str,
    list: &[IpNet],
) -> Vec<Violation> {
    let mut out = Vec::new();
    let (noun, example) = list_kind(field);
    for (i, p) in list.iter().enumerate() {
        let net = p.trunc();
        let path = || format!("{base}.{field}[{i}]");
        let private = if net.addr().is_ipv4() {
            format!("a private range such as {example} (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)")
        } else {
            "a unique local range such as fd00:1::/48 (fc00::/7) or your global prefix".to_owned()
        };
        if net.prefix_len() == 0 {
            let family = if net.addr().is_ipv4() { "IPv4" } else { "IPv6" };
            let site_hint = if field == "address_prefixes" {
                "; to send Internet-bound traffic through this site, set it as the gateway's \
                 forced-tunneling site (GW-9) instead"
            } else {
                ""
            };
            out.push(
                Violation::new(
                    RuleId::Pfx4,
                    path(),
                    format!(
                        "{p} is every {family} address, which cannot be {noun}: list only the \
                         ranges in use, e.g. {private}{site_hint}"
                    ),
                )
                .case(if site_hint.is_empty() {
                    "default"
                } else {
                    "default_site"
                })
                .param("prefix", p)
                .param("kind", "default")
                .param("family", family)
                .param("list", field)
                .param("example", example),
            );
            continue;
        }
        for r in RESERVED {
            let Ok(reserved) = r.net.parse::<IpNet>() else {
                continue;
            };
            if super::overlaps(&net, &reserved) {
                out.push(
                    Violation::new(
                        r.rule,
                        path(),
                        format!(
                            "{p} overlaps {}, and {why}, so it cannot be in {noun}: use {private}",
                            r.what,
                            why = r.why
                        ),
                    )
                    .param("prefix", p)
                    .param("reserved", r.net)
                    .param("family", if net.addr().is_ipv4() { "IPv4" } else { "IPv6" })
                    .param("list", field)
                    .param("example", example),
                );
            }
        }
    }
    out
}

/// PORT-1: a site's `device_port` of 0.
pub(super) fn check_device_port(
    base: &dyn std::fmt::Display,
    port: Option<u16>,
) -> Option<Violation> {
    (port == Some(0)).then(|| {
        Violation::new(
            RuleId::Port1,
            format!("{base}.device_port"),
            "the device port is 0, which no WireGuard device listens on: give the UDP port the \
             device's WireGuard listens on (1 to 65535, usually 51820), or leave it empty for \
             51820",
        )
        .param("port", 0)
    })
}
