//! Issue 16 item 6: the desired state of one instance of an active-active gateway.
//!
//! As in Azure, a site-to-site connection to an active-active gateway is two tunnels, one from
//! each instance, each with its own gateway endpoint. The site device runs them as two
//! WireGuard interfaces with the same private key (one interface cannot route a prefix to two
//! peers): tunnel 1 listens on the site's `device_port` and peers with instance 0, tunnel 2
//! listens on `device_port + 1` ([`SECOND_TUNNEL_PORT_OFFSET`]) and peers with instance 1
//! (`crate::device::site_device_tunnel_config` writes both files). So instance 0's peer for the
//! site has the endpoint `device_host:device_port` and instance 1's `device_host:device_port+1`,
//! and both are flagged [`PeerDesired::on_every_instance`](super::PeerDesired::on_every_instance): the standby keeps its tunnel up
//! too. Everything else of the gateway (its VNet-side address and routes, VNet-to-VNet and
//! point-to-site peers, and traffic from the VNet into any tunnel) stays with the active
//! instance and fails over as for active-standby.

use super::{GatewayDesired, PeerKind};

/// The second tunnel of a site device listens this many ports above the site's device port.
pub const SECOND_TUNNEL_PORT_OFFSET: u16 = 1;

/// The endpoint of a site device's tunnel to instance `instance` of an active-active gateway,
/// from the site's endpoint (`host:port`, IPv6 in brackets): the same for instance 0, the port
/// plus [`SECOND_TUNNEL_PORT_OFFSET`] for instance 1. `None` when the endpoint does not end in
/// a port or the port has no successor (65535: the device cannot run tunnel 2).
pub fn tunnel_endpoint(site_endpoint: &str, instance: u8) -> Option<String> {
    let (host, port) = site_endpoint.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    if host.is_empty() || (host.contains(':') && !host.ends_with(']')) {
        return None;
    }
    let port = if instance == 0 {
        port
    } else {
        port.checked_add(SECOND_TUNNEL_PORT_OFFSET)?
    };
    Some(format!("{host}:{port}"))
}

/// The desired state of instance `instance` (0 or 1) of an active-active gateway, from the
/// gateway's desired state: every site-to-site peer runs on every instance, at the endpoint of
/// the device's tunnel to this instance ([`tunnel_endpoint`]; a peer whose endpoint has no
/// tunnel 2 keeps no endpoint on instance 1 and is reached only if the device initiates).
/// Nothing else changes.
pub fn active_active_instance(desired: &GatewayDesired, instance: u8) -> GatewayDesired {
    let mut out = desired.clone();
    for p in &mut out.peers {
        if !matches!(p.kind, PeerKind::SiteToSite { .. }) {
            continue;
        }
        p.on_every_instance = true;
        // Issue 17: an IPsec device answers both instances on its one IKE port (its tunnel 2
        // is a second IKE SA with instance 1's address, `device_ipsec`).
        if p.ipsec.is_some() {
            continue;
        }
        p.endpoint = p
            .endpoint
            .as_deref()
            .and_then(|e| tunnel_endpoint(e, instance));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{PeerDesired, Secret};
    use crate::model::{GatewayType, QualifiedName};

    fn peer(name: &str, kind: PeerKind, endpoint: Option<&str>) -> PeerDesired {
        PeerDesired {
            name: name.to_owned(),
            kind,
            public_key: format!("key-{name}"),
            preshared_key: None,
            endpoint: endpoint.map(str::to_owned),
            allowed_ips: vec!["192.168.1.0/24".parse().expect("prefix")],
            persistent_keepalive_secs: Some(25),
            policy_selectors: Vec::new(),
            idle_timeout_secs: None,
            region_pair: None,
            last_endpoint: None,
            on_every_instance: false,
            ipsec: None,
        }
    }

    fn gateway() -> GatewayDesired {
        let q = |n: &str| QualifiedName::new("acme", n);
        GatewayDesired {
            tenant: "acme".to_owned(),
            name: "hub-gw".to_owned(),
            gateway_type: GatewayType::RouteBased,
            private_key: Secret::new("k"),
            listen_port: 51820,
            public_endpoint: Some("198.51.100.1:51820".parse().expect("addr")),
            private_address: Some("10.0.255.4".parse().expect("addr")),
            tunnel_mtu: 1420,
            mss_clamp: true,
            peers: vec![
                peer(
                    "to-branch",
                    PeerKind::SiteToSite {
                        connection: q("to-branch"),
                        site: q("branch"),
                    },
                    Some("203.0.113.10:51900"),
                ),
                peer(
                    "to-v6",
                    PeerKind::SiteToSite {
                        connection: q("to-v6"),
                        site: q("v6"),
                    },
                    Some("[2001:db8::10]:65535"),
                ),
                peer(
                    "to-spoke",
                    PeerKind::VnetToVnet {
                        connection: q("to-spoke"),
                        remote_gateway: q("spoke-gw"),
                    },
                    Some("198.51.100.9:51821"),
                ),
                peer(
                    "laptop",
                    PeerKind::P2sClient {
                        gateway: q("hub-gw"),
                        client: "laptop".to_owned(),
                    },
                    None,
                ),
            ],
            routes: Vec::new(),
            bandwidth_limit_bps: 650_000_000,
            instance: None,
        }
    }

    #[test]
    fn instance_0_keeps_the_device_port_and_instance_1_takes_the_next_one() {
        let g = gateway();
        let zero = active_active_instance(&g, 0);
        let one = active_active_instance(&g, 1);
        assert_eq!(
            zero.peers[0].endpoint.as_deref(),
            Some("203.0.113.10:51900")
        );
        assert_eq!(one.peers[0].endpoint.as_deref(), Some("203.0.113.10:51901"));
        assert!(zero.peers[0].on_every_instance && one.peers[0].on_every_instance);
        assert_eq!(zero.peers[0].public_key, one.peers[0].public_key);
    }

    #[test]
    fn only_site_peers_run_on_every_instance_and_nothing_else_changes() {
        let g = gateway();
        for i in [0, 1] {
            let d = active_active_instance(&g, i);
            assert!(
                !d.peers[2].on_every_instance,
                "VNet-to-VNet stays active-only"
            );
            assert!(
                !d.peers[3].on_every_instance,
                "point-to-site stays active-only"
            );
            assert_eq!(d.peers[2], g.peers[2]);
            assert_eq!(d.peers[3], g.peers[3]);
            let mut same = d.clone();
            same.peers = g.peers.clone();
            assert_eq!(same, g, "addresses, routes and the rest are the gateway's");
        }
    }

    #[test]
    fn a_device_port_of_65535_has_no_second_tunnel_and_ipv6_keeps_its_brackets() {
        let one = active_active_instance(&gateway(), 1);
        assert_eq!(one.peers[1].endpoint, None);
        assert!(one.peers[1].on_every_instance);
        assert_eq!(
            tunnel_endpoint("[2001:db8::10]:51900", 1).as_deref(),
            Some("[2001:db8::10]:51901")
        );
        assert_eq!(
            tunnel_endpoint("branch.example.net:51900", 1).as_deref(),
            Some("branch.example.net:51901")
        );
        assert_eq!(tunnel_endpoint("2001:db8::10", 1), None);
        assert_eq!(tunnel_endpoint("no-port", 0), None);
    }
}
