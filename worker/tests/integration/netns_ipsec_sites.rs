//! Issue 17, interop end to end (continued, the rig is [`crate::netns_ipsec`]): a wrong
//! pre-shared key, transit between an IPsec site and a WireGuard site, and a PolicyBased
//! gateway whose selectors strongSwan narrows to. strongSwan is configured only from the
//! exported `swanctl.conf` and its own addresses; the WireGuard site only from its exported
//! wg-quick file. Root only; skipped with a message otherwise.
//!
//! ```text
//!  [host] 10.250.2.10 ── [gw: server, worker] 10.250.0.2 ── 10.250.0.1 [ss: charon, lo 10.250.1.1]
//!                                             10.250.3.1 ── 10.250.3.2 [wg: wireguard-go 10.250.4.1]
//! ```

use std::time::{Duration, Instant};

use isthmus_shared::device::p2s_client_config;
use isthmus_shared::model::{QualifiedName, Topology};

use crate::netns::{ping, run, wg_keypair};
use crate::netns_ipsec::{
    GATEWAY_ADDRESS, PSK, Rig, VNET_HOST, remote_ts, skip_reason, topology, uplink,
};
use crate::server_lab::wireguard_go_from_wg_quick;
use crate::strongswan_lab::{SS_HOST, SS_NET};

/// GW-4 with IPsec: the connection's shared key is changed on the server after strongSwan
/// loaded the export: the API shows `last_error` AUTHENTICATION_FAILED and reason
/// `key_mismatch` within 60 s, and no traffic passes.
#[test]
fn gw_4_ipsec_shared_key_changed_on_the_server_shows_authentication_failed_key_mismatch_and_passes_nothing()
 {
    const NAME: &str = "gw_4_ipsec_shared_key_changed_on_the_server_shows_authentication_failed_key_mismatch_and_passes_nothing";
    if let Some(why) = skip_reason() {
        println!("SKIPPED {NAME}: {why}");
        return;
    }
    let yaml = topology("RouteBased", "connection_mode: InitiatorOnly", "", "");
    let mut rig = Rig::new("iw", &yaml, &[]);
    let conf = rig.export("to-branch", "swanctl");
    rig.start_swan(&conf);
    rig.wait_up("to-branch", Duration::from_secs(30));
    rig.ping_both_ways();

    rig.server.put(
        "/tenants/acme/connections/to-branch/shared-key",
        r#"{"shared_key":"AnotherKey2026xyz"}"#,
    );
    let t = Instant::now();
    let row = rig.wait_api(
        "AUTHENTICATION_FAILED and key_mismatch",
        "to-branch",
        Duration::from_secs(60),
        |r| {
            r["state"] != "up"
                && r["reason"] == "key_mismatch"
                && r["ipsec"]["last_error"] == "AUTHENTICATION_FAILED"
        },
    );
    println!(
        "MEASURED key_mismatch shown {:?} after the key change: {row}",
        t.elapsed()
    );
    assert!(
        row["ipsec"]["last_error_unix"].is_u64(),
        "the error has a time: {row}"
    );
    assert!(
        !(0..3).any(|_| ping(&rig.host, None, SS_HOST)),
        "traffic passed with mismatched keys\n{}",
        rig.diag()
    );
    assert!(
        !rig.export("to-branch", "swanctl").contains(PSK),
        "the export now carries the new key"
    );
    println!("{NAME}: {:?}", rig.started.elapsed());
}

/// LIM-5 / P2S-8 (transit): one RouteBased gateway with an IPsec site (strongSwan) and a
/// WireGuard site (wireguard-go from its exported wg-quick file): each exported configuration
/// routes the other site's prefix to the gateway, and the two sites' hosts ping each other
/// through it.
#[test]
fn lim_5_p2s_8_transit_between_a_strongswan_site_and_a_wireguard_go_site() {
    const NAME: &str = "lim_5_p2s_8_transit_between_a_strongswan_site_and_a_wireguard_go_site";
    if let Some(why) = skip_reason() {
        println!("SKIPPED {NAME}: {why}");
        return;
    }
    const WG_NET: &str = "10.250.4.0/24";
    const WG_HOST: &str = "10.250.4.1";
    let (wg_private, wg_public) = wg_keypair();
    let yaml = topology(
        "RouteBased",
        "connection_mode: InitiatorOnly",
        &format!(
            "  - {{tenant: acme, name: wgsite, device_host: 10.250.3.2, device_port: 51900,
     address_prefixes: [{WG_NET}], device_public_key: \"{wg_public}\"}}"
        ),
        "  - {tenant: acme, name: to-wg, gateway: hub-gw, kind: {type: SiteToSite, site: wgsite}}",
    );
    let mut rig = Rig::new("it", &yaml, &[]);
    let wg = uplink(&mut rig, "wg", 3);
    let id = rig.pair.lab.id.clone();

    let swanctl = rig.export("to-branch", "swanctl");
    let remote_ts = remote_ts(&swanctl);
    assert!(
        remote_ts.contains(WG_NET) && remote_ts.contains("10.250.2.0/24"),
        "the IPsec site's remote_ts names the VNet and the WireGuard site: {remote_ts}\n{swanctl}"
    );
    let wg_quick = rig.export("to-wg", "");
    let allowed = wg_quick
        .lines()
        .find(|l| l.trim_start().starts_with("AllowedIPs"))
        .unwrap_or_default()
        .to_owned();
    assert!(
        allowed.contains(SS_NET),
        "the WireGuard site's AllowedIPs name the IPsec site: {allowed}\n{wg_quick}"
    );
    rig.start_swan(&swanctl);
    let ifname = format!("wg{id}");
    wireguard_go_from_wg_quick(
        &mut rig.pair.lab,
        &wg,
        &ifname,
        &wg_quick,
        &wg_private,
        Some("51900"),
        &[&format!("{WG_HOST}/24")],
    );
    rig.wait_up("to-branch", Duration::from_secs(30));
    rig.ping_ok(&wg, Some(WG_HOST), GATEWAY_ADDRESS, 20);
    rig.ping_ok(&wg, Some(WG_HOST), SS_HOST, 10);
    rig.ping_ok(&rig.pair.ss, Some(SS_HOST), WG_HOST, 10);
    rig.ping_ok(&rig.host, None, WG_HOST, 5);
    let to_wg = rig.api("to-wg");
    assert_eq!(to_wg["state"], "up", "{to_wg}");
    println!("{NAME}: {:?}", rig.started.elapsed());
}

/// P2S-8 / LIM-5 (transit) with IPsec: a point-to-site client (wireguard-go, from the
/// product's client configuration) and the strongSwan site on one gateway. The site's
/// exported `remote_ts` names the client pool, the client's AllowedIPs name the site, and the
/// client and strongSwan's protected host ping each other through the gateway.
#[test]
fn p2s_8_lim_5_a_wireguard_go_point_to_site_client_and_a_strongswan_site_reach_each_other() {
    const NAME: &str =
        "p2s_8_lim_5_a_wireguard_go_point_to_site_client_and_a_strongswan_site_reach_each_other";
    if let Some(why) = skip_reason() {
        println!("SKIPPED {NAME}: {why}");
        return;
    }
    const POOL: &str = "172.16.250.0/24";
    const CLIENT: &str = "172.16.250.10";
    let (client_private, client_public) = wg_keypair();
    let yaml = topology(
        "RouteBased",
        "connection_mode: InitiatorOnly",
        "",
        &format!(
            "point_to_site:
  - {{tenant: acme, gateway: hub-gw, address_pool: [{POOL}],
     clients: [{{name: laptop, public_key: \"{client_public}\", address: {CLIENT}}}]}}"
        ),
    );
    let mut rig = Rig::new("iq", &yaml, &[]);
    let cl = uplink(&mut rig, "cl", 5);
    let id = rig.pair.lab.id.clone();
    let swanctl = rig.export("to-branch", "swanctl");
    let remote_ts = remote_ts(&swanctl);
    assert!(
        remote_ts.contains(POOL),
        "the IPsec site's remote_ts names the client pool: {remote_ts}\n{swanctl}"
    );
    let topology: Topology =
        serde_json::from_value(rig.server.get("/tenants/acme/topology")).expect("topology JSON");
    let wg_quick = p2s_client_config(&topology, &QualifiedName::new("acme", "hub-gw"), "laptop")
        .expect("the client's configuration")
        .to_wg_quick();
    assert!(
        wg_quick.contains(SS_NET),
        "the client's AllowedIPs name the IPsec site:\n{wg_quick}"
    );
    rig.start_swan(&swanctl);
    wireguard_go_from_wg_quick(
        &mut rig.pair.lab,
        &cl,
        &format!("wq{id}"),
        &wg_quick,
        &client_private,
        None,
        &[],
    );
    rig.wait_up("to-branch", Duration::from_secs(30));
    rig.ping_ok(&cl, Some(CLIENT), VNET_HOST, 20);
    rig.ping_ok(&cl, Some(CLIENT), SS_HOST, 10);
    rig.ping_ok(&rig.pair.ss, Some(SS_HOST), CLIENT, 10);
    let row = rig.api("to-branch");
    // strongSwan narrowed the gateway's 0.0.0.0/0 to its remote_ts, the pool among them.
    let selectors = row["ipsec"]["children"][0]["selectors"].to_string();
    assert!(
        selectors.contains(POOL),
        "the CHILD SA's selectors carry the pool: {row}"
    );
    println!("{NAME}: {:?}", rig.started.elapsed());
}

/// GW-1 / S2S-2: a PolicyBased gateway with one traffic selector (10.250.2.0/26 ===
/// 10.250.1.0/25). The export's `local_ts` is the site's prefix (10.250.1.0/24, wider than the
/// selector) and its `remote_ts` the selector's local side; the gateway initiates with its
/// selectors and strongSwan, as responder, narrows its wider `local_ts` to 10.250.1.0/25 (RFC
/// 7296 2.9). The CHILD SA carries exactly the selector's traffic: the VNet host and
/// strongSwan's 10.250.1.1 ping each other; the gateway sends nothing into the tunnel for the
/// site's 10.250.1.200 (outside the selector) nor from the VNet's 10.250.2.100.
#[test]
fn gw_1_s2s_2_policy_based_ipsec_gateway_carries_exactly_its_selectors_which_strongswan_narrows_to()
{
    const NAME: &str = "gw_1_s2s_2_policy_based_ipsec_gateway_carries_exactly_its_selectors_which_strongswan_narrows_to";
    if let Some(why) = skip_reason() {
        println!("SKIPPED {NAME}: {why}");
        return;
    }
    let yaml = topology(
        "PolicyBased",
        "connection_mode: InitiatorOnly,
     traffic_selectors: [{local: 10.250.2.0/26, remote: 10.250.1.0/25}]",
        "",
        "",
    );
    let mut rig = Rig::new("ip", &yaml, &[]);
    let conf = rig.export("to-branch", "swanctl");
    for want in ["local_ts = 10.250.1.0/24", "remote_ts = 10.250.2.0/26"] {
        assert!(conf.contains(want), "no {want:?} in the export:\n{conf}");
    }
    // strongSwan's and the VNet host's own second addresses, outside the selector.
    run(&[
        "ip",
        "-n",
        &rig.pair.ss,
        "addr",
        "add",
        "10.250.1.200/32",
        "dev",
        "lo",
    ]);
    let host = rig.host.clone();
    let host_if = format!("hh{}", rig.pair.lab.id);
    run(&[
        "ip",
        "-n",
        &host,
        "addr",
        "add",
        "10.250.2.100/25",
        "dev",
        &host_if,
    ]);
    rig.start_swan(&conf);
    // A policy-based tunnel may wait for traffic (S2S-2): some brings it up.
    let _ = ping(&host, Some(VNET_HOST), SS_HOST);
    let row = rig.wait_up("to-branch", Duration::from_secs(30));
    assert_eq!(row["ipsec"]["initiator"], true, "{row}");
    assert_eq!(
        row["ipsec"]["children"][0]["selectors"],
        serde_json::json!(["10.250.2.0/26 === 10.250.1.0/25"]),
        "{row}"
    );
    let sa = rig
        .swan()
        .wait_sa("the CHILD SA", Duration::from_secs(5), |s| {
            s.state == "ESTABLISHED" && !s.installed().is_empty()
        });
    let c = sa.installed()[0].clone();
    assert_eq!(
        (c.local_ts.clone(), c.remote_ts.clone()),
        (
            vec!["10.250.1.0/25".to_owned()],
            vec!["10.250.2.0/26".to_owned()]
        ),
        "strongSwan narrowed its 10.250.1.0/24 to the gateway's selector: {c:?}"
    );
    rig.ping_ok(&host, Some(VNET_HOST), SS_HOST, 10);
    rig.ping_ok(&rig.pair.ss, Some(SS_HOST), VNET_HOST, 10);

    let packets_in = |rig: &Rig| {
        rig.swan()
            .sas()
            .iter()
            .flat_map(|s| s.children.clone())
            .map(|c| c.packets_in)
            .sum::<u64>()
    };
    let before = packets_in(&rig);
    for (from, to) in [(VNET_HOST, "10.250.1.200"), ("10.250.2.100", SS_HOST)] {
        assert!(
            !(0..3).any(|_| ping(&host, Some(from), to)),
            "{from} -> {to} is outside the selector and must not pass\n{}",
            rig.diag()
        );
    }
    let after = packets_in(&rig);
    assert_eq!(
        after,
        before,
        "the gateway sent ESP for traffic outside its selector\n{}",
        rig.diag()
    );
    // The selector's traffic still passes, and strongSwan counts it (the check above means
    // something).
    rig.ping_ok(&host, Some(VNET_HOST), SS_HOST, 5);
    assert!(packets_in(&rig) > after, "{}", rig.diag());
    println!("{NAME}: {:?}", rig.started.elapsed());
}

/// S2S-1, dead peer detection with a real device: mode InitiatorOnly (`start_action = none`:
/// the restarted charon waits), charon killed (SIGKILL) and started again from the same file;
/// the gateway's DPD (an INFORMATIONAL 30 s after the peer's last message, then 5
/// retransmissions 1, 2, 4, 8, 16 s apart and 32 s more: about 93 s) declares the peer dead,
/// initiates again, and the tunnel is up with a new IKE SA within 120 s.
#[test]
fn s2s_1_ipsec_gateway_detects_a_dead_strongswan_and_initiates_again_within_120_s() {
    const NAME: &str =
        "s2s_1_ipsec_gateway_detects_a_dead_strongswan_and_initiates_again_within_120_s";
    if let Some(why) = skip_reason() {
        println!("SKIPPED {NAME}: {why}");
        return;
    }
    let yaml = topology("RouteBased", "connection_mode: InitiatorOnly", "", "");
    let (rig, before, killed) = Rig::with_restarted_swan("id", &yaml);
    let after = rig.wait_api(
        "a new IKE SA the gateway initiated, up",
        "to-branch",
        Duration::from_secs(120),
        |r| {
            r["state"] == "up"
                && r["ipsec"]["initiator"] == true
                && r["ipsec"]["ike_spis"] != before["ipsec"]["ike_spis"]
                && r["ipsec"]["children"].as_array().map(Vec::len) == Some(1)
        },
    );
    println!(
        "MEASURED up again {:?} after the kill: {}",
        killed.elapsed(),
        after["ipsec"]["ike_spis"]
    );
    let sa = rig
        .swan()
        .wait_sa("the new IKE SA", Duration::from_secs(5), |s| {
            s.state == "ESTABLISHED" && !s.installed().is_empty()
        });
    assert!(!sa.initiator, "the gateway initiated again: {sa:?}");
    rig.ping_both_ways();
    println!("{NAME}: {:?}", rig.started.elapsed());
}
