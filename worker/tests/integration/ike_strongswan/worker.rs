//! The real `isthmus-worker` binary (no TUN device, IKE only) against strongSwan 5.9.8 with the
//! swanctl.conf the server exports, each side initiating once.

use std::time::{Duration, Instant};

use isthmus_shared::desired::{DesiredStateMessage, IpsecPeerDesired, Secret};
use isthmus_shared::model::{IpsecConnectionMode, IpsecParameters};

use super::driver::{GW_PORT, PSK, skip, ss};
use crate::harness::{KillOnDrop, gateway, route, s2s_hop, s2s_peer, state, vnet_route};
use crate::server_lab::read_status;
use crate::strongswan_lab::{GW_ADDR, GW_NET, SS_ADDR, SS_NET, StrongSwan, SwanPair};

/// The worker in the gateway's namespace with one IPsec connection to strongSwan; its status
/// file's path.
fn worker(pair: &SwanPair, mode: IpsecConnectionMode) -> (KillOnDrop, std::path::PathBuf) {
    let mut peer = s2s_peer("a", 2, ss(500), &[SS_NET]);
    peer.public_key = String::new();
    peer.preshared_key = None;
    peer.ipsec = Some(IpsecPeerDesired {
        psk: Secret::new(PSK.to_owned()),
        local_id: GW_ADDR.to_owned(),
        remote_id: Some(SS_ADDR.to_owned()),
        parameters: IpsecParameters::of(None, mode),
    });
    let g = gateway(
        "gw",
        1,
        GW_PORT,
        vec![peer],
        vec![vnet_route(GW_NET), route(SS_NET, s2s_hop("a"))],
    );
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
        .args([
            "--no-tun",
            "--bind-address",
            GW_ADDR,
            "--status-interval",
            "1",
        ])
        .args(["--heartbeat-port", "0", "--status-file"])
        .arg(&status)
        .env("RUST_LOG", "info")
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("worker runs");
    (KillOnDrop(child), status)
}

fn run(tag: &str, mode: IpsecConnectionMode) {
    let pair = SwanPair::new(tag);
    let mut conf = super::exported(mode);
    if !conf.contains("local_port") {
        let remote = format!("remote_port = {GW_PORT}\n");
        conf = conf.replace(&remote, &format!("{remote}        local_port = 4500\n"));
    }
    let (_worker, status) = worker(&pair, mode);
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
    let sa = swan.wait_sa("the SA", Duration::from_secs(5), |s| {
        s.state == "ESTABLISHED" && !s.installed().is_empty()
    });
    eprintln!("{mode:?}: worker {peer}\nstrongSwan {sa:?}");
    let gateway_initiated = mode == IpsecConnectionMode::InitiatorOnly;
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
    run("wi", IpsecConnectionMode::InitiatorOnly);
    run("wr", IpsecConnectionMode::ResponderOnly);
}
