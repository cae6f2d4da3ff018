//! GW-3 / GW-10, the public side: the addresses devices reach this worker at, sent in every
//! heartbeat (the server allocates the endpoints of the gateways placed on this worker from
//! them). `--public-address` (several allowed, IPv4 and IPv6), else the addresses of the
//! interface that holds the default route.

use std::net::IpAddr;

use super::netlink::Netlink;

/// Why no other host can reach `a`, if that is so.
pub fn unreachable_reason(a: IpAddr) -> Option<&'static str> {
    match a {
        IpAddr::V4(v) if v.is_loopback() => Some("a loopback address"),
        IpAddr::V6(v) if v.is_loopback() => Some("a loopback address"),
        IpAddr::V4(v) if v.is_unspecified() => Some("the unspecified address"),
        IpAddr::V6(v) if v.is_unspecified() => Some("the unspecified address"),
        IpAddr::V4(v) if v.is_link_local() => Some("a link-local address"),
        IpAddr::V6(v) if v.segments().first().is_some_and(|s| s & 0xffc0 == 0xfe80) => {
            Some("a link-local address")
        }
        IpAddr::V4(v) if v.is_multicast() || v.is_broadcast() => Some("not a unicast address"),
        IpAddr::V6(v) if v.is_multicast() => Some("not a unicast address"),
        _ => None,
    }
}

/// The addresses to announce: `given` (checked: a WARN for one no other host can reach, or one
/// that is not an address of this host, which may be a NAT or DNAT address and is still sent),
/// else the usable addresses of the default-route interface(s), IPv4 first; none (with a WARN)
/// without a default route.
pub async fn public_addresses(given: &[IpAddr]) -> Vec<IpAddr> {
    let nl = Netlink::connect().ok();
    let host = match &nl {
        Some(nl) => nl.addresses().await.ok(),
        None => None,
    };
    if !given.is_empty() {
        for a in given {
            if let Some(why) = unreachable_reason(*a) {
                tracing::warn!(address = %a, "--public-address {a} is {why}: no other host can reach it, so devices cannot connect to this worker's gateways; set --public-address (ISTHMUS_PUBLIC_ADDRESS) to the address devices reach");
            } else if let Some(h) = &host
                && !h.iter().any(|(_, n, _)| n.addr() == *a)
            {
                tracing::warn!(address = %a, "--public-address {a} is not an address of this host: announced anyway (right for a NAT or DNAT address in front of the worker that forwards the gateways' UDP ports here; otherwise fix --public-address)");
            }
        }
        tracing::info!(addresses = %list(given), "devices must reach this worker at {} (the gateways' endpoints)", list(given));
        return given.to_vec();
    }
    let found = match (&nl, &host) {
        (Some(nl), Some(h)) => match nl.default_route_interfaces().await {
            Ok(ifs) => {
                let mut v: Vec<IpAddr> = h
                    .iter()
                    .filter(|(i, n, f)| {
                        ifs.contains(i)
                            && unreachable_reason(n.addr()).is_none()
                            && !f.intersects(
                                rtnetlink::packet_route::address::AddressFlags::Deprecated
                                    | rtnetlink::packet_route::address::AddressFlags::Tentative
                                    | rtnetlink::packet_route::address::AddressFlags::Dadfailed,
                            )
                    })
                    .map(|(_, n, _)| n.addr())
                    .collect();
                v.sort_by_key(|a| (a.is_ipv6(), *a));
                v.dedup();
                v
            }
            Err(_) => Vec::new(),
        },
        _ => Vec::new(),
    };
    if found.is_empty() {
        tracing::warn!(
            "no --public-address given and this host has no default route to take one from: the worker announces no public address, so devices cannot reach its gateways (their endpoints fall back to the server's --public-address); set --public-address (ISTHMUS_PUBLIC_ADDRESS) to the address devices reach"
        );
    } else {
        tracing::info!(addresses = %list(&found), "devices must reach this worker at {} (the default-route interface's addresses; change with --public-address)", list(&found));
    }
    found
}

fn list(a: &[IpAddr]) -> String {
    a.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gw_10_loopback_unspecified_and_link_local_public_addresses_are_unreachable() {
        for a in [
            "127.0.0.1",
            "::1",
            "0.0.0.0",
            "::",
            "169.254.1.1",
            "fe80::1",
            "224.0.0.1",
        ] {
            assert!(
                unreachable_reason(a.parse().expect("addr")).is_some(),
                "{a}"
            );
        }
        for a in ["203.0.113.7", "10.0.0.1", "2001:db8::1", "fd00::1"] {
            assert_eq!(unreachable_reason(a.parse().expect("addr")), None, "{a}");
        }
    }
}
