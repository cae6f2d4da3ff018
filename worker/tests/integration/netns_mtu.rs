//! Real network: a site whose WireGuard interface is left at MTU 1500 (the default of many
//! devices; `wireguard-go` here) behind the worker's gateway, with no tuning anywhere. The
//! gateway's tunnels carry 1420-byte packets: a 1472-byte ping with DF from the site gets an ICMP
//! "fragmentation needed" naming MTU 1420 from the gateway's own address (its ICMPv6 "packet too
//! big" for IPv6), and 20 MB TCP transfers from the site to a VNet host and, through transit, to
//! a second site complete with SHA-256 checked, IPv4 and IPv6 (the gateway clamps the MSS of
//! SYNs to fit its tunnels). The worker installs its own VNet-side address and routes; the test
//! adds nothing on the worker's side. Root only (skipped with a message otherwise).
//!
//! ```text
//!  site a (MTU 1500) 10.230.2.1  fd00:230:2::1 ── 10.254.0.2 ─┐
//!                                                            gw: worker [TUN 10.230.1.228] ── vnet host 10.230.1.10
//!  site b (MTU 1420) 10.230.3.1  fd00:230:3::1 ── 10.254.1.2 ─┘   VNet NIC 10.230.1.1      fd00:230:1::10
//! ```

use std::process::{Command, Stdio};
use std::time::Duration;

use isthmus_shared::desired::{DesiredStateMessage, Secret};

use crate::harness::*;
use crate::netns::{Lab, ping, run, skip_reason, tcp_transfer_bytes, wg_keypair};
use crate::server_lab::vnet_host;

/// 20 MB.
const BYTES: usize = 20 * 1000 * 1000;

/// `ping` with don't-fragment and a payload of `size` bytes; its whole output (it fails).
fn df_ping(ns: &str, from: &str, to: &str, size: usize) -> String {
    let out = Command::new("ip")
        .args([
            "netns", "exec", ns, "ping", "-M", "do", "-c", "3", "-i", "0.3",
        ])
        .args(["-W", "1", "-s", &size.to_string(), "-I", from, to])
        .output()
        .expect("ping runs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ping6(ns: &str, from: &str, to: &str) -> bool {
    Command::new("ip")
        .args([
            "netns", "exec", ns, "ping", "-6", "-c", "1", "-W", "1", "-I", from, to,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn mtu_site_left_at_1500_gets_fragmentation_needed_and_20_mb_tcp_passes_to_the_vnet_and_through_transit_v4_v6()
 {
    const NAME: &str = "mtu_site_left_at_1500_gets_fragmentation_needed_and_20_mb_tcp_passes_to_the_vnet_and_through_transit_v4_v6";
    if let Some(why) = skip_reason() {
        println!("SKIPPED {NAME}: {why}");
        return;
    }
    let mut lab = Lab::new("m");
    let id = lab.id.clone();
    let gw = lab.netns("gw");
    let site_a = lab.netns("sa");
    let site_b = lab.netns("sb");
    let host = lab.netns("host");
    lab.link(
        (&gw, &format!("va{id}"), "10.254.0.1/30"),
        (&site_a, &format!("va{id}"), "10.254.0.2/30"),
    );
    lab.link(
        (&gw, &format!("vb{id}"), "10.254.1.1/30"),
        (&site_b, &format!("vb{id}"), "10.254.1.2/30"),
    );
    // The VNet: the worker host's NIC in it (10.230.1.1) and a host (10.230.1.10), both
    // families; the host's router is the worker host (what a user sets on their VNet router).
    vnet_host(&mut lab, &gw, &host, "10.230.1.10/24", "10.230.1.1/24");
    let (gh, hh) = (format!("gh{id}"), format!("hh{id}"));
    run(&[
        "ip",
        "-n",
        &gw,
        "addr",
        "add",
        "fd00:230:1::1/64",
        "dev",
        &gh,
        "nodad",
    ]);
    run(&[
        "ip",
        "-n",
        &host,
        "addr",
        "add",
        "fd00:230:1::10/64",
        "dev",
        &hh,
        "nodad",
    ]);
    run(&[
        "ip",
        "-n",
        &host,
        "-6",
        "route",
        "add",
        "default",
        "via",
        "fd00:230:1::1",
    ]);
    run(&[
        "ip",
        "netns",
        "exec",
        &gw,
        "sysctl",
        "-qw",
        "net.ipv6.conf.all.forwarding=1",
    ]);

    let (gw_private, gw_public) = wg_keypair();
    let (a_private, a_public) = wg_keypair();
    let (b_private, b_public) = wg_keypair();
    let psk = run(&["wg", "genpsk"]);

    // The gateway, as the server would describe it: VNet 10.230.1.0/24 + fd00:230:1::/64
    // (GatewaySubnet 10.230.1.224/27, so the gateway's own address is 10.230.1.228), site a
    // and site b, transit between them (LIM-5).
    let peer = |name: &str, public: &str, endpoint: &str, prefixes: &[&str]| {
        let mut p = s2s_peer(name, 0, endpoint.parse().expect("endpoint"), prefixes);
        p.public_key = public.to_owned();
        p.preshared_key = Some(Secret::new(psk.clone()));
        p.persistent_keepalive_secs = Some(25);
        p
    };
    let mut g = gateway(
        "gw",
        0,
        51820,
        vec![
            peer(
                "a",
                &a_public,
                "10.254.0.2:51900",
                &["10.230.2.0/24", "fd00:230:2::/64"],
            ),
            peer(
                "b",
                &b_public,
                "10.254.1.2:51900",
                &["10.230.3.0/24", "fd00:230:3::/64"],
            ),
        ],
        vec![
            vnet_route("10.230.1.0/24"),
            vnet_route("fd00:230:1::/64"),
            route("10.230.2.0/24", s2s_hop("a")),
            route("fd00:230:2::/64", s2s_hop("a")),
            route("10.230.3.0/24", s2s_hop("b")),
            route("fd00:230:3::/64", s2s_hop("b")),
        ],
    );
    g.private_key = Secret::new(gw_private);
    g.private_address = Some("10.230.1.228".parse().expect("address"));
    let json = serde_json::to_string(&DesiredStateMessage::V1(state(1, vec![g]))).expect("json");
    let desired = lab.write("desired.json", &json);
    let tun = format!("it{id}");
    lab.worker(&gw, &desired, &["--tun-name", &tun]);
    // The worker's own routes onto its TUN (read only: the test adds none).
    lab.wait_for(
        "the worker's routes for both sites",
        Duration::from_secs(20),
        || {
            // Read only, and quietly: the TUN device may not exist yet.
            let show = |family: &str| {
                Command::new("ip")
                    .args(["-n", &gw, family, "route", "show", "dev", &tun])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default()
            };
            let (v4, v6) = (show("-4"), show("-6"));
            v4.contains("10.230.2.0/24")
                && v4.contains("10.230.3.0/24")
                && v6.contains("fd00:230:2::/64")
                && v6.contains("fd00:230:3::/64")
        },
    );

    // The sites, as their owners configure them; site a keeps the interface at 1500.
    let site = |lab: &mut Lab, ns: &str, ifname: &str, private: &str, v4: &str, v6: &str| {
        let key = lab.write(&format!("{ifname}.key"), private);
        let pskf = lab.write(&format!("{ifname}.psk"), &psk);
        let (key, pskf) = (key.display().to_string(), pskf.display().to_string());
        let endpoint = if ns == site_a {
            "10.254.0.1:51820"
        } else {
            "10.254.1.1:51820"
        };
        let allowed = "10.230.1.0/24,fd00:230:1::/64,10.230.2.0/24,fd00:230:2::/64,10.230.3.0/24,fd00:230:3::/64";
        lab.wireguard_go(
            ns,
            ifname,
            &[
                "private-key",
                &key,
                "listen-port",
                "51900",
                "peer",
                &gw_public,
                "preshared-key",
                &pskf,
                "endpoint",
                endpoint,
                "persistent-keepalive",
                "25",
                "allowed-ips",
                allowed,
            ],
            v4,
            &[],
        );
        run(&["ip", "-n", ns, "addr", "add", v6, "dev", ifname, "nodad"]);
        for prefix in allowed.split(',') {
            let own = (v4.starts_with("10.230.2") && prefix.contains(":2::"))
                || (v4.starts_with("10.230.2") && prefix == "10.230.2.0/24")
                || (v4.starts_with("10.230.3") && prefix.contains(":3::"))
                || (v4.starts_with("10.230.3") && prefix == "10.230.3.0/24");
            if !own {
                run(&["ip", "-n", ns, "route", "replace", prefix, "dev", ifname]);
            }
        }
    };
    let (wa, wb) = (format!("wa{id}"), format!("wb{id}"));
    site(
        &mut lab,
        &site_a,
        &wa,
        &a_private,
        "10.230.2.1/24",
        "fd00:230:2::1/64",
    );
    run(&["ip", "-n", &site_a, "link", "set", &wa, "mtu", "1500"]);
    site(
        &mut lab,
        &site_b,
        &wb,
        &b_private,
        "10.230.3.1/24",
        "fd00:230:3::1/64",
    );

    assert!(
        (0..20).any(|_| ping(&site_a, Some("10.230.2.1"), "10.230.1.10")),
        "site a → VNet host ping failed\n{}",
        lab.logs()
    );
    assert!(
        (0..10).any(|_| ping(&site_b, Some("10.230.3.1"), "10.230.1.10")),
        "site b → VNet host ping failed\n{}",
        lab.logs()
    );
    assert!(
        (0..10).any(|_| ping6(&site_a, "fd00:230:2::1", "fd00:230:1::10")),
        "site a → VNet host IPv6 ping failed\n{}",
        lab.logs()
    );

    // Path-MTU discovery through the gateway: the site learns 1420 from the gateway itself.
    let v4 = df_ping(&site_a, "10.230.2.1", "10.230.1.10", 1472);
    assert!(
        v4.contains("mtu = 1420") || v4.contains("mtu=1420"),
        "no ICMP fragmentation-needed with MTU 1420 for a 1500-byte DF packet:\n{v4}\n{}",
        lab.logs()
    );
    assert!(
        v4.contains("From 10.230.1.228"),
        "the ICMP error should come from the gateway's own address in GatewaySubnet:\n{v4}"
    );
    let v4_transit = df_ping(&site_a, "10.230.2.1", "10.230.3.1", 1472);
    assert!(
        v4_transit.contains("mtu = 1420") || v4_transit.contains("mtu=1420"),
        "transit: no fragmentation-needed with MTU 1420:\n{v4_transit}"
    );
    let v6 = df_ping(&site_a, "fd00:230:2::1", "fd00:230:1::10", 1452);
    assert!(
        v6.contains("mtu=1420") || v6.contains("mtu = 1420"),
        "no ICMPv6 packet-too-big with MTU 1420 for a 1500-byte packet:\n{v6}\n{}",
        lab.logs()
    );

    // Bulk TCP from the site left at 1500: to the VNet and, through transit, to site b.
    tcp_transfer_bytes(&host, "10.230.1.10", &site_a, "10.230.2.1", BYTES);
    tcp_transfer_bytes(&site_b, "10.230.3.1", &site_a, "10.230.2.1", BYTES);
    tcp_transfer_bytes(&host, "fd00:230:1::10", &site_a, "fd00:230:2::1", BYTES);
    tcp_transfer_bytes(&site_b, "fd00:230:3::1", &site_a, "fd00:230:2::1", BYTES);
    // And back from the VNet to the site.
    tcp_transfer_bytes(&site_a, "10.230.2.1", &host, "10.230.1.10", BYTES);
}
