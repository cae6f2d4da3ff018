//! The real `isthmus-worker` binary (no TUN device, IKE only) against strongSwan 5.9.8 with the
//! swanctl.conf the server exports, each side initiating once.

use std::time::{Duration, Instant};

use isthmus_shared::desired::{DesiredStateMessage, IpsecPeerDesired, Secret};
use isthmus_shared::model::{IpsecConnectionMode, IpsecParameters};

use super::driver::{GW_PORT, PSK, skip, ss};
use crate::harness::{KillOnDrop, gateway, route, s2s_hop, s2s_peer, state, vnet_route};
use crate::netns::ping;
use crate::server_lab::read_status;
use crate::strongswan_lab::{GW_ADDR, GW_NET, SS_ADDR, SS_HOST, SS_NET, StrongSwan, SwanPair};

/// The gateway's address on its TUN device: GatewaySubnet 10.250.2.224/27 + 4 (GW-10).
const GATEWAY_ADDRESS: &str = "10.250.2.228";

/// The worker in the gateway's namespace with one IPsec connection to strongSwan, with a TUN
/// device named `tun` or without one; its status file's path.
fn worker(
    pair: &SwanPair,
    mode: IpsecConnectionMode,
    tun: Option<&str>,
) -> (KillOnDrop, std::path::PathBuf) {
    let mut peer = s2s_peer("a", 2, ss(500), &[SS_NET]);
    peer.public_key = String::new();
    peer.preshared_key = None;
    peer.ipsec = Some(IpsecPeerDesired {
        psk: Secret::new(PSK.to_owned()),
        local_id: GW_ADDR.to_owned(),
        remote_id: Some(SS_ADDR.to_owned()),
        parameters: IpsecParameters::of(None, mode),
    });
    let mut g = gateway(
        "gw",
        1,
        GW_PORT,
        vec![peer],
        vec![vnet_route(GW_NET), route(SS_NET, s2s_hop("a"))],
    );
    g.private_address = Some(GATEWAY_ADDRESS.parse().expect("address"));
    let desired = pair.lab.dir.path().join("desired.json");
    let status = pair.lab.dir.path().join("status.json");
    let msg = DesiredStateMessage::V1(state(1, vec![g]));
    std::fs::write(&desired, serde_json::to_string(&msg).expect("json")).expect("desired");
    let log = std::fs::File::create(pair.lab.dir.path().join("worker.log")).expect("log");
    let child = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &pair.gw,
            env!("CARGO_BIN_EXE_isthmus-worker"),
        ])
        .arg("--desired-state")
        .arg(&desired)
        .args(match tun {
            Some(name) => vec!["--tun-name", name],
            None => vec!["--no-tun"],
        })
        .args(["--bind-address", GW_ADDR, "--status-interval", "1"])
        .args(["--heartbeat-port", "0", "--status-file"])
        .arg(&status)
        .env("RUST_LOG", "info")
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("worker runs");
    (KillOnDrop(child), status)
}

/// Both sides up with `mode`; with a TUN device, ESP carries pings between strongSwan's
/// protected host and the gateway's address both ways.
fn run(tag: &str, mode: IpsecConnectionMode, tun: bool) {
    let pair = SwanPair::new(tag);
    let conf = super::exported(mode);
    assert!(conf.contains("local_port = 4500"), "{conf}");
    let tun_name = format!("t{}", pair.lab.id);
    if tun {
        crate::server_lab::forwarding(&pair.gw);
    }
    let (_worker, status) = worker(&pair, mode, tun.then_some(tun_name.as_str()));
    let swan = StrongSwan::start(&pair.ss, &pair.dir("ss"), &conf);
    let until = Instant::now() + Duration::from_secs(20);
    let peer = loop {
        let s = read_status(&status);
        let p = s["gateways"][0]["peers"][0].clone();
        if p["ipsec"]["ike_state"] == "established" && p["state"] == "up" {
            break p;
        }
        assert!(
            Instant::now() < until,
            "{mode:?}: not up: {p}\nworker:\n{}\nstrongSwan:\n{}",
            std::fs::read_to_string(pair.lab.dir.path().join("worker.log")).unwrap_or_default(),
            swan.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut peer = peer;
    if mode == IpsecConnectionMode::Default {
        // Both ends initiated: wait until the duplicate is gone, then for the worker's next
        // status (every second).
        swan.wait_sas("one IKE SA", Duration::from_secs(10), |sas| sas.len() == 1);
        std::thread::sleep(Duration::from_millis(2500));
        peer = read_status(&status)["gateways"][0]["peers"][0].clone();
    }
    let sa = swan.wait_sa("the SA", Duration::from_secs(5), |s| {
        s.state == "ESTABLISHED" && !s.installed().is_empty()
    });
    eprintln!("{mode:?}: worker {peer}\nstrongSwan {sa:?}");
    // Mode Default: both ends initiate and one IKE SA stays (the lowest SPIs), either's.
    let gateway_initiated = match mode {
        IpsecConnectionMode::InitiatorOnly => true,
        IpsecConnectionMode::ResponderOnly => false,
        IpsecConnectionMode::Default => !sa.initiator,
    };
    assert_eq!(sa.initiator, !gateway_initiated);
    assert_eq!(peer["ipsec"]["initiator"], gateway_initiated);
    let c = &sa.installed()[0];
    let child = &peer["ipsec"]["children"][0];
    let spi = |v: &serde_json::Value| {
        let s = v.as_str().unwrap_or_default().trim_start_matches("0x");
        u32::from_str_radix(s, 16).unwrap_or_default()
    };
    assert_eq!(
        (spi(&child["inbound_spi"]), spi(&child["outbound_spi"])),
        (c.spi_out, c.spi_in),
        "{child}"
    );
    assert_eq!(sa.remote_port, GW_PORT, "strongSwan talks to the one port");
    if tun {
        let from_site = (0..10).any(|_| ping(&pair.ss, Some(SS_HOST), GATEWAY_ADDRESS));
        assert!(
            from_site,
            "site -> gateway ping through ESP\n{}",
            swan.list_sas()
        );
        let to_site = (0..10).any(|_| ping(&pair.gw, Some(GATEWAY_ADDRESS), SS_HOST));
        assert!(
            to_site,
            "gateway -> site ping through ESP\n{}",
            swan.list_sas()
        );
        let sa = swan.sas().into_iter().next().expect("the SA");
        let c = &sa.installed()[0];
        assert!(c.packets_in >= 2 && c.packets_out >= 2, "{c:?}");
    }
}

/// Issue 17: the real worker initiates (mode InitiatorOnly) to strongSwan with the exported
/// configuration, and strongSwan (mode ResponderOnly, `start_action = start`) initiates to the
/// worker's one port: both establish an IKE SA and a CHILD SA that the worker's status file
/// and strongSwan's listing agree on.
#[test]
fn the_real_worker_and_strongswan_establish_each_way_with_the_exported_configuration() {
    if skip() {
        return;
    }
    run("wi", IpsecConnectionMode::InitiatorOnly, false);
    run("wr", IpsecConnectionMode::ResponderOnly, false);
}

/// Issue 17: ESP through the real worker: with its TUN device, pings between strongSwan's
/// protected host and the gateway's own address go through the CHILD SA both ways (mode
/// Default: either side may initiate).
#[test]
fn the_real_worker_carries_esp_with_strongswan_through_its_tun_device() {
    if skip() {
        return;
    }
    run("wt", IpsecConnectionMode::Default, true);
}
