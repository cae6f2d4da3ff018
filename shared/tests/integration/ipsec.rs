//! Issue 17: the IPSEC-* rules and the IPsec peers of the desired state.

use isthmus_shared::builder::TopologyBuilder;
use isthmus_shared::desired::{
    GatewayDesired, GatewayInputs, Secret, SkippedPeer, gateway_desired,
};
use isthmus_shared::device_ipsec::{IpsecDeviceConfig, IpsecDeviceError, site_ipsec_config};
use isthmus_shared::model::{
    IkeProposal, IpsecCipher, IpsecConnectionMode, IpsecDhGroup, IpsecParameters, IpsecPolicy,
    IpsecPrf, QualifiedName, Topology, TunnelProtocol,
};
use isthmus_shared::rules::RuleId;
use isthmus_shared::validate::{is_ike_identity, validate};

use crate::common::{assert_error, assert_valid, build, hub, rules, spoke, wgkey};

fn ipsec_site(b: TopologyBuilder, site: &str, host: &str, prefix: &str) -> TopologyBuilder {
    let conn = format!("hub-{site}");
    b.site(site, host, &[prefix])
        .s2s(&conn, "hub-gw", site)
        .shared_key(&conn, "Secret123")
        .edit_connection(&conn, |c| c.protocol = TunnelProtocol::IPsec)
}

fn policy(ike: Option<u32>, child: Option<u32>, kb: Option<u64>) -> IpsecPolicy {
    IpsecPolicy {
        ike: IkeProposal {
            cipher: IpsecCipher::Aes128Gcm16,
            prf: IpsecPrf::HmacSha256,
            dh_group: IpsecDhGroup::Ecp256,
        },
        esp_cipher: IpsecCipher::Aes128Gcm16,
        ike_lifetime_secs: ike,
        child_lifetime_secs: child,
        child_lifetime_kilobytes: kb,
    }
}

#[test]
fn an_ipsec_site_to_site_connection_without_a_device_key_is_valid() {
    let t = build(ipsec_site(hub(), "branch", "203.0.113.1", "192.168.1.0/24"));
    assert_valid(&t);
}

#[test]
fn ipsec_1_a_vnet_to_vnet_connection_cannot_use_ipsec() {
    let t = build(
        spoke(hub(), "spoke", "10.1", "westeurope")
            .v2v_pair("hub-spoke", "hub-gw", "spoke-hub", "spoke-gw")
            .edit_connection("hub-spoke", |c| c.protocol = TunnelProtocol::IPsec),
    );
    let v = assert_error(&t, RuleId::Ipsec1);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].path, "tenants[acme].connections[hub-spoke].protocol");
    assert_eq!(v[0].params["connection"], "hub-spoke");
}

#[test]
fn ipsec_2_a_policy_or_a_connection_mode_needs_an_ipsec_connection() {
    let b = hub()
        .site("branch", "203.0.113.1", &["192.168.1.0/24"])
        .s2s("hub-branch", "hub-gw", "branch")
        .edit_connection("hub-branch", |c| {
            c.ipsec_policy = Some(policy(None, None, None));
            c.connection_mode = IpsecConnectionMode::InitiatorOnly;
        });
    let t = build(b.clone());
    let mut paths: Vec<String> = assert_error(&t, RuleId::Ipsec2)
        .into_iter()
        .map(|v| v.path)
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "tenants[acme].connections[hub-branch].connection_mode",
            "tenants[acme].connections[hub-branch].ipsec_policy",
        ]
    );
    // The same connection over IPsec is fine.
    let t = build(b.edit_connection("hub-branch", |c| c.protocol = TunnelProtocol::IPsec));
    assert!(!rules(&validate(&t)).contains(&RuleId::Ipsec2));
}

#[test]
fn ipsec_3_lifetimes_out_of_range_are_reported_each_and_the_bounds_are_accepted() {
    let b = ipsec_site(hub(), "branch", "203.0.113.1", "192.168.1.0/24");
    let bad = build(b.clone().edit_connection("hub-branch", |c| {
        c.ipsec_policy = Some(policy(Some(59), Some(172_801), Some(1_023)));
    }));
    let mut v = assert_error(&bad, RuleId::Ipsec3);
    v.sort_by(|a, b| a.path.cmp(&b.path));
    let paths: Vec<&str> = v.iter().map(|x| x.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "tenants[acme].connections[hub-branch].ipsec_policy.child_lifetime_kilobytes",
            "tenants[acme].connections[hub-branch].ipsec_policy.child_lifetime_secs",
            "tenants[acme].connections[hub-branch].ipsec_policy.ike_lifetime_secs",
        ]
    );
    assert_eq!(v[0].params["min"], "1024");
    assert_eq!(v[1].params["sa"], "CHILD");
    assert_eq!(v[2].params["value"], "59");
    let bounds = build(b.clone().edit_connection("hub-branch", |c| {
        c.ipsec_policy = Some(policy(Some(60), Some(172_800), Some(2_147_483_647)));
    }));
    assert_valid(&bounds);
    let too_many_kb = build(b.edit_connection("hub-branch", |c| {
        c.ipsec_policy = Some(policy(None, None, Some(2_147_483_648)));
    }));
    assert_eq!(assert_error(&too_many_kb, RuleId::Ipsec3).len(), 1);
}

#[test]
fn ipsec_4_an_ike_identity_is_an_ipv4_address_a_dns_name_or_user_at_name() {
    for ok in [
        "203.0.113.1",
        "vpn.example.com",
        "branch@vpn.example.com",
        "a.b",
    ] {
        assert!(is_ike_identity(ok), "{ok}");
    }
    let long = format!("{}.example", "a".repeat(250));
    for bad in [
        "",
        "vpn example.com",
        "2001:db8::1",
        "@example.com",
        "a@b@c",
        "user@203.0.113.1",
        "-bad.example",
        long.as_str(),
    ] {
        assert!(!is_ike_identity(bad), "{bad}");
    }
    let b = ipsec_site(hub(), "branch", "203.0.113.1", "192.168.1.0/24");
    for (id, case) in [
        (long.clone(), "too_long"),
        ("vpn\texample".to_owned(), "whitespace"),
        ("not_a_name".to_owned(), "invalid"),
    ] {
        let t = build(b.clone().edit_site("branch", |s| s.ike_identity = Some(id)));
        let v = assert_error(&t, RuleId::Ipsec4);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].path, "tenants[acme].sites[branch].ike_identity");
        assert_eq!(v[0].params["case"], case);
    }
    let t = build(b.edit_site("branch", |s| {
        s.ike_identity = Some("branch@vpn.example.com".to_owned())
    }));
    assert_valid(&t);
}

#[test]
fn ipsec_5_two_enabled_ipsec_connections_of_a_gateway_cannot_share_a_device_host() {
    let b = ipsec_site(hub(), "a", "203.0.113.1", "192.168.1.0/24");
    let b = ipsec_site(b, "b", "203.0.113.1", "192.168.2.0/24");
    let v = assert_error(&build(b.clone()), RuleId::Ipsec5);
    assert_eq!(v.len(), 2);
    let a = v
        .iter()
        .find(|x| x.path == "tenants[acme].connections[hub-a].kind.site")
        .expect("reported at hub-a");
    assert_eq!(a.related, ["tenants[acme].connections[hub-b]"]);
    assert_eq!(a.params["host"], "203.0.113.1");
    // A disabled one, or a WireGuard one, does not count.
    let disabled = build(b.clone().edit_connection("hub-b", |c| c.enabled = false));
    assert!(!rules(&validate(&disabled)).contains(&RuleId::Ipsec5));
    let wg = build(b.edit_connection("hub-b", |c| c.protocol = TunnelProtocol::WireGuard));
    assert!(!rules(&validate(&wg)).contains(&RuleId::Ipsec5));
}

#[test]
fn key_2_ignores_the_device_keys_of_sites_reached_over_ipsec() {
    // Two sites with one key: a conflict over WireGuard, none when one is reached over IPsec.
    let b = hub()
        .site("a", "203.0.113.1", &["192.168.1.0/24"])
        .site("b", "203.0.113.2", &["192.168.2.0/24"])
        .edit_site("a", |s| s.device_public_key = Some(wgkey(7)))
        .edit_site("b", |s| s.device_public_key = Some(wgkey(7)))
        .s2s("hub-a", "hub-gw", "a")
        .s2s("hub-b", "hub-gw", "b");
    assert_eq!(assert_error(&build(b.clone()), RuleId::Key2).len(), 2);
    let t = build(b.edit_connection("hub-b", |c| c.protocol = TunnelProtocol::IPsec));
    assert!(!rules(&validate(&t)).contains(&RuleId::Key2));
}

fn gw_inputs() -> GatewayInputs {
    GatewayInputs {
        private_key: Secret::new(wgkey(9)),
        listen_port: 51820,
    }
}

/// hub-gw at 198.51.100.1 with an IPsec branch (a custom policy, InitiatorOnly) and a
/// WireGuard site.
fn ipsec_topology() -> TopologyBuilder {
    let b = hub().edit_gateway("hub-gw", |g| {
        g.public_key = Some(wgkey(1));
        g.public_endpoint = Some("198.51.100.1:51820".parse().unwrap());
    });
    ipsec_site(b, "branch", "203.0.113.1", "192.168.1.0/24")
        .edit_connection("hub-branch", |c| {
            c.ipsec_policy = Some(policy(Some(3_600), Some(1_800), Some(4_096)));
            c.connection_mode = IpsecConnectionMode::InitiatorOnly;
        })
        .site("wg", "203.0.113.9", &["192.168.9.0/24"])
        .edit_site("wg", |s| s.device_public_key = Some(wgkey(3)))
        .s2s("hub-wg", "hub-gw", "wg")
        .shared_key("hub-wg", "WgKey1")
}

fn desired_of(t: &Topology) -> (GatewayDesired, Vec<SkippedPeer>) {
    gateway_desired(t, &QualifiedName::new("acme", "hub-gw"), &gw_inputs()).unwrap()
}

#[test]
fn an_ipsec_connection_becomes_a_peer_with_its_psk_identities_and_parameters_and_no_key() {
    let t = build(ipsec_topology());
    assert_valid(&t);
    let (d, skipped) = desired_of(&t);
    assert!(skipped.is_empty(), "{skipped:?}");
    let p = d.peers.iter().find(|p| p.name == "hub-branch").unwrap();
    assert_eq!(p.public_key, "");
    assert_eq!(p.preshared_key, None);
    assert_eq!(p.endpoint.as_deref(), Some("203.0.113.1:500"));
    assert_eq!(p.persistent_keepalive_secs, None);
    assert!(p.allowed_ips.contains(&"192.168.1.0/24".parse().unwrap()));
    let ipsec = p.ipsec.as_ref().unwrap();
    assert_eq!(ipsec.psk.expose(), "Secret123");
    assert_eq!(ipsec.local_id, "198.51.100.1");
    assert_eq!(ipsec.remote_id, None);
    let want = IpsecParameters::of(
        Some(&policy(Some(3_600), Some(1_800), Some(4_096))),
        IpsecConnectionMode::InitiatorOnly,
    );
    assert_eq!(ipsec.parameters, want);
    assert_eq!(ipsec.parameters.child_lifetime_secs, 1_800);
    // The WireGuard peer beside it is unchanged.
    let wg = d.peers.iter().find(|p| p.name == "hub-wg").unwrap();
    assert_eq!(wg.public_key, wgkey(3));
    assert!(wg.preshared_key.is_some() && wg.ipsec.is_none());
    assert_eq!(wg.endpoint.as_deref(), Some("203.0.113.9:51820"));
    assert_eq!(wg.persistent_keepalive_secs, Some(25));
}

#[test]
fn ipsec_peers_take_the_site_port_and_identity_and_several_need_no_distinct_keys() {
    let b = ipsec_site(ipsec_topology(), "second", "203.0.113.2", "192.168.2.0/24").edit_site(
        "second",
        |s| {
            s.device_port = Some(4500);
            s.ike_identity = Some("second@vpn.example".to_owned());
            // A WireGuard key on an IPsec site is fine and unused.
            s.device_public_key = Some(wgkey(3));
        },
    );
    let t = build(b);
    assert_valid(&t);
    let (d, skipped) = desired_of(&t);
    assert!(skipped.is_empty(), "{skipped:?}");
    let ipsec: Vec<_> = d.peers.iter().filter(|p| p.ipsec.is_some()).collect();
    assert_eq!(ipsec.len(), 2);
    let second = ipsec.iter().find(|p| p.name == "hub-second").unwrap();
    assert_eq!(second.endpoint.as_deref(), Some("203.0.113.2:4500"));
    assert_eq!(second.public_key, "");
    let id = second.ipsec.as_ref().unwrap();
    assert_eq!(id.remote_id.as_deref(), Some("second@vpn.example"));
    assert_eq!(
        id.parameters,
        IpsecParameters::of(None, IpsecConnectionMode::Default)
    );
}

#[test]
fn an_ipsec_peer_waits_for_the_gateway_endpoint_and_the_shared_key() {
    let no_endpoint = build(ipsec_topology().edit_gateway("hub-gw", |g| g.public_endpoint = None));
    let (d, skipped) = desired_of(&no_endpoint);
    assert!(d.peers.iter().all(|p| p.name != "hub-branch"));
    let s = skipped.iter().find(|s| s.name == "hub-branch").unwrap();
    assert!(s.reason.contains("public endpoint"), "{}", s.reason);
    let no_key = build(ipsec_topology().edit_connection("hub-branch", |c| c.shared_key = None));
    let (_, skipped) = desired_of(&no_key);
    let s = skipped.iter().find(|s| s.name == "hub-branch").unwrap();
    assert_eq!(s.reason, "no shared key yet");
}

#[test]
fn ipsec_5_the_desired_state_keeps_one_peer_per_device_address() {
    let t = build(ipsec_site(
        ipsec_topology(),
        "again",
        "203.0.113.1",
        "192.168.3.0/24",
    ));
    let (d, skipped) = desired_of(&t);
    assert_eq!(d.peers.iter().filter(|p| p.ipsec.is_some()).count(), 1);
    assert_eq!(skipped.len(), 1);
    assert!(
        skipped[0].reason.contains("IPSEC-5"),
        "{}",
        skipped[0].reason
    );
}

/// [`ipsec_topology`] with VNet `spoke` (10.1.0.0/16) and a VNet-to-VNet pair hub ↔ spoke.
fn with_spoke() -> TopologyBuilder {
    spoke(ipsec_topology(), "spoke", "10.1", "westeurope")
        .v2v_pair("hub-spoke", "hub-gw", "spoke-hub", "spoke-gw")
        .shared_key("hub-spoke", "PairKey1")
        .shared_key("spoke-hub", "PairKey1")
        .edit_gateway("spoke-gw", |g| {
            g.public_key = Some(wgkey(2));
            g.public_endpoint = Some("198.51.100.2:51820".parse().unwrap());
        })
}

fn export(t: &Topology, connection: &str, tunnel: u8) -> IpsecDeviceConfig {
    site_ipsec_config(t, &QualifiedName::new("acme", connection), tunnel).unwrap()
}

#[test]
fn the_swanctl_export_carries_the_gateway_the_identities_the_policy_and_the_selectors() {
    let t = build(with_spoke());
    assert_valid(&t);
    let conf = export(&t, "hub-branch", 1).to_swanctl();
    for line in [
        "connections {",
        "    hub-branch {",
        "        version = 2",
        "        remote_addrs = 198.51.100.1",
        "        remote_port = 51820",
        "        local_port = 4500",
        "        mobike = no",
        "        encap = yes",
        "        proposals = aes128gcm16-prfsha256-ecp256",
        "        rekey_time = 3240s",
        "        over_time = 360s",
        "        dpd_delay = 30s",
        "            auth = psk",
        "            id = 203.0.113.1",
        "            id = 198.51.100.1",
        "                local_ts = 192.168.1.0/24",
        // The VNet, the peered VNet and the other site (transit), as the WireGuard export.
        "                remote_ts = 10.0.0.0/16,10.1.0.0/16,192.168.9.0/24",
        "                esp_proposals = aes128gcm16",
        "                rekey_time = 1620s",
        "                life_time = 1800s",
        "                rekey_bytes = 3774873",
        "                life_bytes = 4194304",
        "                dpd_action = restart",
        // InitiatorOnly: the gateway starts, and starts again after a close.
        "                close_action = none",
        "                start_action = none",
        "    ike-hub-branch {",
        "        id-1 = 198.51.100.1",
        "        id-2 = 203.0.113.1",
        "        secret = \"Secret123\"",
    ] {
        assert!(conf.lines().any(|l| l == line), "no {line:?} in:\n{conf}");
    }
    assert!(!conf.contains("local_addrs"));
    // Braces balance.
    assert_eq!(conf.matches('{').count(), conf.matches('}').count());
}

#[test]
fn the_export_without_a_policy_offers_the_defaults_and_starts_the_tunnel() {
    let t = build(
        ipsec_topology()
            .edit_connection("hub-branch", |c| {
                c.ipsec_policy = None;
                c.connection_mode = IpsecConnectionMode::Default;
            })
            .edit_site("branch", |s| {
                s.ike_identity = Some("branch@vpn.example".to_owned())
            }),
    );
    let x = export(&t, "hub-branch", 1);
    let conf = x.to_swanctl();
    assert!(conf.contains(
        "proposals = aes256gcm16-prfsha256-curve25519,aes256gcm16-prfsha384-ecp384,\
         chacha20poly1305-prfsha256-curve25519,aes128gcm16-prfsha256-ecp256,\
         aes256gcm16-prfsha256-modp2048\n"
    ));
    assert!(conf.contains("esp_proposals = aes256gcm16,aes128gcm16,chacha20poly1305\n"));
    assert!(conf.contains("        rekey_time = 25920s\n"));
    assert!(conf.contains("life_time = 3600s\n"));
    assert!(conf.contains("start_action = start\n"));
    // Mode Default: the device does not restart on the gateway's Delete of a duplicate.
    assert!(conf.contains("close_action = none\n"));
    assert!(conf.contains("id = branch@vpn.example\n"));
    assert!(conf.contains("id-2 = branch@vpn.example\n"));
    assert!(!conf.contains("rekey_bytes"));
    let sheet = x.to_sheet();
    for want in [
        "Gateway address                 198.51.100.1",
        "Gateway port (IKE and ESP)      UDP 51820",
        "Gateway IKE identity            198.51.100.1",
        "Device IKE identity             branch@vpn.example",
        "Device IKE port                 UDP 500",
        "Pre-shared key                  Secret123",
        "IKE proposals                   aes256gcm16-prfsha256-curve25519,",
        "IKE SA lifetime                 28800 s",
        "CHILD SA lifetime               3600 s",
        "CHILD SA data lifetime          none",
        "Local traffic selectors (device)192.168.1.0/24",
        "Dead peer detection             every 30 s",
        "NAT traversal                   always",
        "IKE version                     IKEv2",
    ] {
        assert!(sheet.contains(want), "no {want:?} in:\n{sheet}");
    }
}

#[test]
fn the_ipsec_export_refuses_wireguard_connections_and_a_gateway_without_an_address() {
    let t = build(ipsec_topology());
    let wg = site_ipsec_config(&t, &QualifiedName::new("acme", "hub-wg"), 1);
    assert!(matches!(wg, Err(IpsecDeviceError::NotIpsec(_))));
    let t = build(ipsec_topology().edit_gateway("hub-gw", |g| g.public_endpoint = None));
    let none = site_ipsec_config(&t, &QualifiedName::new("acme", "hub-branch"), 1);
    assert!(matches!(none, Err(IpsecDeviceError::NoGatewayAddress(_))));
}

#[test]
fn tunnel_2_of_an_active_active_gateway_goes_to_the_second_instance_with_the_same_identity() {
    let t = build(ipsec_topology().edit_gateway("hub-gw", |g| {
        g.sku = isthmus_shared::model::Sku::VpnGw2;
        g.active_active = true;
        g.secondary_endpoint = Some("198.51.100.7:51820".parse().unwrap());
    }));
    let x = export(&t, "hub-branch", 2);
    let conf = x.to_swanctl();
    assert!(conf.contains("    hub-branch-tunnel2 {\n"));
    assert!(conf.contains("remote_addrs = 198.51.100.7\n"));
    assert!(conf.contains("        id-1 = 198.51.100.1\n"));
    assert_eq!(x.file_name(), "hub-branch-tunnel2.swanctl.conf");
    assert_eq!(
        export(&t, "hub-branch", 1).gateway_endpoint.to_string(),
        "198.51.100.1:51820"
    );
}

#[test]
fn both_instances_of_an_active_active_gateway_initiate_to_the_devices_one_ike_port() {
    let t = build(ipsec_topology());
    let (d, _) = desired_of(&t);
    for instance in [0, 1] {
        let x = isthmus_shared::desired::active_active_instance(&d, instance);
        let ipsec = x.peers.iter().find(|p| p.name == "hub-branch").unwrap();
        assert_eq!(ipsec.endpoint.as_deref(), Some("203.0.113.1:500"));
        assert!(ipsec.on_every_instance);
        let wg = x.peers.iter().find(|p| p.name == "hub-wg").unwrap();
        let port = if instance == 0 { 51820 } else { 51821 };
        assert_eq!(wg.endpoint, Some(format!("203.0.113.9:{port}")));
    }
}

/// LIM-5 / P2S-8 with IPsec: hub-gw has the IPsec branch (192.168.1.0/24), a WireGuard site,
/// a VNet-to-VNet tunnel to spoke-gw and a point-to-site pool. Every other tunnel's
/// configuration carries the branch's prefix to the hub, and the branch's CHILD SA selectors
/// carry every other tunnel's prefixes, so transit needs nothing written by hand.
#[test]
fn lim_5_p2s_8_the_ipsec_site_s_prefix_reaches_every_other_tunnel_and_its_selectors_name_them() {
    let t = build(with_spoke().p2s("hub-gw", &["172.16.50.0/24"]).p2s_client(
        "hub-gw",
        "laptop",
        &wgkey(7),
        "172.16.50.10",
    ));
    assert_valid(&t);
    let branch: ipnet::IpNet = "192.168.1.0/24".parse().unwrap();
    // The hub routes the branch's prefix into its IPsec connection.
    let (hub, _) = desired_of(&t);
    let to_branch = hub.routes.iter().find(|r| r.prefix == branch).unwrap();
    assert!(
        format!("{:?}", to_branch.next_hop).contains("hub-branch"),
        "{to_branch:?}"
    );
    // The spoke sends the branch's prefix through its VNet-to-VNet tunnel to the hub.
    let (spoke, _) =
        gateway_desired(&t, &QualifiedName::new("acme", "spoke-gw"), &gw_inputs()).unwrap();
    let v2v = spoke.peers.iter().find(|p| p.name == "spoke-hub").unwrap();
    assert!(v2v.allowed_ips.contains(&branch), "{:?}", v2v.allowed_ips);
    assert!(spoke.routes.iter().any(|r| r.prefix == branch));
    // The client's and the WireGuard site's configurations route it to the hub.
    let client = isthmus_shared::device::p2s_client_config(
        &t,
        &QualifiedName::new("acme", "hub-gw"),
        "laptop",
    )
    .unwrap();
    assert!(client.peers[0].allowed_ips.contains(&branch), "{client:?}");
    let wg = isthmus_shared::device::site_device_config(&t, &QualifiedName::new("acme", "hub-wg"))
        .unwrap();
    assert!(wg.peers[0].allowed_ips.contains(&branch));
    // The branch's selectors name the VNet, the spoke, the WireGuard site and the pool.
    let e = export(&t, "hub-branch", 1);
    let names: Vec<String> = e.remote_ts.iter().map(ToString::to_string).collect();
    assert_eq!(
        names,
        [
            "10.0.0.0/16",
            "10.1.0.0/16",
            "172.16.50.0/24",
            "192.168.9.0/24"
        ],
        "{}",
        e.to_swanctl()
    );
}
