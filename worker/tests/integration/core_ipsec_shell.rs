//! Issue 17: the real worker process runs an IPsec connection: on loopback without a TUN
//! device, it binds its gateway port, sends IKE_SA_INIT (no non-ESP marker) to the site
//! device, and completes IKE_AUTH with a responder in this test (with the marker, NAT-T being
//! forced), which its status file then shows as an established IKE SA and CHILD SA.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use isthmus_shared::desired::{IpsecPeerDesired, Secret};
use isthmus_shared::model::{GatewayType, IpsecConnectionMode, IpsecParameters};
use isthmus_worker::core::ike::exchange::Responder;
use isthmus_worker::core::ipsec::config;

use crate::harness::*;
use crate::ike_exchange::Seeded;

#[test]
fn a_worker_with_an_ipsec_peer_initiates_ike_and_reports_the_sa_in_its_status_file() {
    let device = UdpSocket::bind("127.0.0.1:0").expect("bind the device");
    device
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let dev_addr = device.local_addr().expect("addr");
    let port = {
        let s = UdpSocket::bind("127.0.0.1:0").expect("a free port");
        s.local_addr().expect("addr").port()
    };
    let gw_addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], port));
    let ipsec = |local: &str| IpsecPeerDesired {
        psk: Secret::new("loopback psk".to_owned()),
        local_id: local.to_owned(),
        remote_id: Some("127.0.0.1".to_owned()),
        parameters: IpsecParameters::of(None, IpsecConnectionMode::InitiatorOnly),
    };
    let mut peer = s2s_peer("a", 2, dev_addr, &["10.2.0.0/16"]);
    peer.public_key = String::new();
    peer.preshared_key = None;
    peer.ipsec = Some(ipsec("127.0.0.1"));
    let g = gateway(
        "gw",
        1,
        port,
        vec![peer.clone()],
        vec![
            vnet_route("10.1.0.0/16"),
            route("10.2.0.0/16", s2s_hop("a")),
        ],
    );
    let dir = tempfile::tempdir().expect("dir");
    let desired = dir.path().join("desired.json");
    let status = dir.path().join("status.json");
    std::fs::write(
        &desired,
        serde_json::to_string(&isthmus_shared::desired::DesiredStateMessage::V1(state(
            1,
            vec![g],
        )))
        .expect("json"),
    )
    .expect("write");
    let _worker = KillOnDrop(
        std::process::Command::new(env!("CARGO_BIN_EXE_isthmus-worker"))
            .arg("--desired-state")
            .arg(&desired)
            .args([
                "--no-tun",
                "--bind-address",
                "127.0.0.1",
                "--status-interval",
                "1",
            ])
            .args(["--heartbeat-port", "0"])
            .arg("--status-file")
            .arg(&status)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("worker runs"),
    );
    // The device: the same connection seen from the other end.
    let mut mirrored = peer.clone();
    mirrored.endpoint = Some(gw_addr.to_string());
    let site = config::settings(&mirrored, &ipsec("127.0.0.1"), GatewayType::RouteBased)
        .expect("settings");
    let mut entropy = Seeded::new(5);
    let mut responder = Responder::new(site.ike, 8, &mut entropy).expect("responder");
    let mut buf = [0u8; 4096];
    let mut saw_init = false;
    let until = Instant::now() + Duration::from_secs(20);
    let mut up = false;
    while Instant::now() < until && !up {
        if let Ok((n, from)) = device.recv_from(&mut buf) {
            assert_eq!(from, gw_addr, "from the gateway's port");
            let d = &buf[..n];
            let (marked, msg) = if d.starts_with(&[0, 0, 0, 0]) {
                (true, &d[4..])
            } else {
                (false, d)
            };
            if !marked && msg.len() > 18 && msg[17] == 0x20 && msg[18] == 34 {
                saw_init = true;
            }
            if let Some(reply) = responder
                .handle(dev_addr, from, msg, &mut entropy, Instant::now())
                .expect("handled")
            {
                let out = if marked {
                    [&[0u8, 0, 0, 0][..], &reply].concat()
                } else {
                    reply
                };
                device.send_to(&out, from).expect("send");
            }
        }
        let s = crate::server_lab::read_status(&status);
        up = s["gateways"][0]["peers"][0]["ipsec"]["ike_state"] == "established"
            && s["gateways"][0]["peers"][0]["state"] == "up";
    }
    assert!(
        saw_init,
        "an IKE_SA_INIT without the marker came from the gateway port"
    );
    assert_eq!(responder.established(), 1);
    assert!(up, "{}", crate::server_lab::read_status(&status));
    let s = crate::server_lab::read_status(&status);
    let child = &s["gateways"][0]["peers"][0]["ipsec"]["children"][0];
    assert_eq!(child["cipher"], "aes256gcm16");
}
