//! Issue 17: the product's sans-IO IKEv2 and ESP code against a real strongSwan 5.9.8
//! (`strongswan_lab.rs`), in namespaces this test creates (root only; skipped otherwise).
//!
//! A small loop (`driver.rs`) stands in for the shell: one std UDP socket on the gateway's
//! one port (51820, as its `listen_port`) in the gateway's namespace, demultiplexed as the
//! gateway does (the non-ESP marker, our inbound SPIs, the keepalive, a bare IKEv2 header),
//! the real clock and the system's randomness drive `ike::exchange::{Initiator, Responder}`
//! and `esp::{Outbound, Inbound}`. As the gateway does (forced NAT-T), the Isthmus initiator
//! sends IKE_SA_INIT to the device's port 500 without the marker and everything after it, IKE
//! with the marker and ESP-in-UDP, to the floated port 4500; strongSwan initiates to the
//! gateway's port (`remote_port`, as the exported swanctl.conf has it).
//!
//! With `ISTHMUS_WRITE_CORPUS=1` every kind of datagram strongSwan sent is written once under
//! `worker/tests/corpus/{ike,esp}/` (the fuzz targets' seeds).

mod driver;
mod worker;

use std::time::{Duration, Instant};

use isthmus_shared::device_ipsec::IpsecDeviceConfig;
use isthmus_shared::model::{GatewayType, IpsecConnectionMode, IpsecParameters, QualifiedName};
use isthmus_worker::core::esp::Outbound;
use isthmus_worker::core::ike::crypto::{Aead, DhGroup, Prf};
use isthmus_worker::core::ike::exchange::Request;
use isthmus_worker::core::ike::proposal::IkeSuite;
use isthmus_worker::core::ike::wire::{ExchangeType, NotifyType};

use crate::strongswan_lab::{ChildSaInfo, GW_ADDR, GW_NET, SS_ADDR, SS_NET, StrongSwan, SwanPair};

use self::driver::*;

/// strongSwan agrees with the Isthmus side on the IKE SA and its CHILD SA: SPIs and suites.
fn assert_agrees(swan: &StrongSwan, gw: &mut Gw) {
    let (spi_i, spi_r, suite, child) = gw.established().expect("established");
    let (i, o, esp) = child.expect("a CHILD SA");
    let sa = gw.wait_swan_sa(swan, "the IKE SA with a CHILD SA", |s| {
        s.spi_i == spi_i && s.spi_r == spi_r && !s.installed().is_empty()
    });
    assert_eq!(sa.state, "ESTABLISHED");
    let (_, encr, bits) = swan_aead(suite.aead);
    assert_eq!(sa.encr_alg, encr);
    if bits > 0 {
        assert_eq!(sa.encr_keysize, bits);
    }
    assert_eq!(sa.prf_alg, swan_prf(suite.prf).1);
    assert_eq!(sa.dh_group, swan_group(suite.dh).1);
    let c = sa.installed()[0].clone();
    assert_eq!((c.spi_in, c.spi_out), (o, i), "strongSwan's in is our out");
    assert_eq!(c.encr_alg, swan_aead(esp.aead).1);
    assert!(c.encap, "ESP in UDP");
    assert_eq!(c.local_ts, vec![SS_NET]);
    assert_eq!(c.remote_ts, vec![GW_NET]);
    // libipsec routes the peer's selectors into its TUN device (table 220).
    let routes = swan
        .exec(&["ip", "route", "show", "table", "220"])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(routes.contains(GW_NET), "{routes}");
}

/// Issue 17, interop: the Isthmus initiator establishes an IKE SA and a CHILD SA with a
/// strongSwan responder for every AEAD, PRF and DH group of the issue (and every ESP AEAD);
/// strongSwan reports the same SPIs and suites, an ICMP echo through the CHILD SA is answered
/// through it, and a Delete of ours removes the SA on strongSwan's side.
#[test]
fn isthmus_initiator_establishes_with_strongswan_for_every_cipher_prf_and_group() {
    if skip() {
        return;
    }
    let cases = [
        (
            Aead::AesGcm16_128,
            Prf::HmacSha256,
            DhGroup::Modp2048,
            Aead::AesGcm16_128,
        ),
        (
            Aead::AesGcm16_256,
            Prf::HmacSha384,
            DhGroup::Ecp256,
            Aead::AesGcm16_256,
        ),
        (
            Aead::ChaCha20Poly1305,
            Prf::HmacSha256,
            DhGroup::Ecp384,
            Aead::ChaCha20Poly1305,
        ),
        (
            Aead::AesGcm16_256,
            Prf::HmacSha256,
            DhGroup::Curve25519,
            Aead::AesGcm16_128,
        ),
        (
            Aead::ChaCha20Poly1305,
            Prf::HmacSha384,
            DhGroup::Curve25519,
            Aead::AesGcm16_256,
        ),
    ];
    let pair = SwanPair::new("si");
    let first = cases[0];
    let conf = |c: (Aead, Prf, DhGroup, Aead)| {
        let s = IkeSuite {
            aead: c.0,
            prf: c.1,
            dh: c.2,
        };
        SwanConf::new(&swan_proposal(s), swan_aead(c.3).0).render()
    };
    let swan = StrongSwan::start(&pair.ss, &pair.dir("ss"), &conf(first));
    for (n, c) in cases.into_iter().enumerate() {
        swan.reload(&conf(c));
        let suite = IkeSuite {
            aead: c.0,
            prf: c.1,
            dh: c.2,
        };
        eprintln!("case {n}: {}", swan_proposal(suite));
        let mut gw = Gw::initiate(&pair, gw_config(PSK, vec![suite], all_esp()));
        gw.until(&swan, Duration::from_secs(10), |e| {
            e.iter()
                .any(|e| matches!(e, Ev::Established { .. } | Ev::Failed { .. }))
        });
        let (_, _, got, child) = gw.established().expect("established, not refused");
        assert_eq!(got, suite);
        assert_eq!(child.map(|c| c.2.aead), Some(c.3));
        assert_agrees(&swan, &mut gw);
        let reply = gw.ping(&swan, n as u16 + 1);
        assert_eq!(reply[20], 0, "an echo reply");
        // strongSwan counts the echo both ways (nothing of IKE is outstanding: no loop needed).
        swan.wait_sa("the echo counted", Duration::from_secs(5), |s| {
            s.installed()
                .first()
                .is_some_and(|c| c.packets_in >= 1 && c.packets_out >= 1)
        });
        if n == 0 {
            isthmus_requests(&mut gw, &swan);
        }
        gw.request(Request::DeleteIke);
        gw.until(&swan, Duration::from_secs(5), |e| {
            e.iter()
                .any(|e| matches!(e, Ev::Deleted { by_peer: false }))
        });
        gw.wait_swan(&swan, "no SA left", Duration::from_secs(5), <[_]>::is_empty);
        gw.write_corpus();
    }
}

fn count(events: &[Ev], f: impl Fn(&Ev) -> bool) -> usize {
    events.iter().filter(|e| f(e)).count()
}

/// Waits for a CHILD SA rekey and the Delete of the old CHILD SA that follows it; returns the
/// new CHILD SA's (inbound, outbound) SPIs and checks strongSwan lists exactly that one.
fn rekeyed(gw: &mut Gw, swan: &StrongSwan, before: usize, timeout: Duration) -> (u32, u32) {
    gw.until(swan, timeout, |e| {
        count(e, |e| matches!(e, Ev::ChildRekeyed { .. })) > before
            && count(e, |e| matches!(e, Ev::ChildDeleted { .. })) > before
    });
    let (old, new_in, new_out) = gw
        .events
        .iter()
        .rev()
        .find_map(|e| match e {
            Ev::ChildRekeyed {
                old_inbound,
                inbound,
                outbound,
            } => Some((*old_inbound, *inbound, *outbound)),
            _ => None,
        })
        .expect("a rekey");
    assert!(gw.events.contains(&Ev::ChildDeleted { inbound: old }));
    assert_eq!(gw.inbound.len(), 1, "only the new CHILD SA is left inbound");
    // strongSwan lists the old CHILD SA as DELETED for a while; the new one is INSTALLED (or
    // REKEYING already, with a short rekey_time).
    let sa = gw.wait_swan_sa(swan, "the rekeyed CHILD SA", |s| {
        let live = |c: &&ChildSaInfo| c.state == "INSTALLED" || c.state == "REKEYING";
        let live: Vec<_> = s.children.iter().filter(live).collect();
        live.len() == 1 && (live[0].spi_in, live[0].spi_out) == (new_out, new_in)
    });
    assert_eq!(sa.state, "ESTABLISHED");
    (new_in, new_out)
}

/// The IKE SA's SPIs after its last rekey; strongSwan lists exactly that IKE SA, with the
/// CHILD SA `child` (our inbound, outbound SPIs) moved onto it.
fn ike_rekeyed(gw: &mut Gw, swan: &StrongSwan, child: (u32, u32)) -> (u64, u64) {
    gw.until(swan, Duration::from_secs(10), |e| {
        e.iter().any(|e| matches!(e, Ev::IkeRekeyed { .. }))
    });
    let spis = gw
        .events
        .iter()
        .rev()
        .find_map(|e| match e {
            Ev::IkeRekeyed { spi_i, spi_r } => Some((*spi_i, *spi_r)),
            _ => None,
        })
        .expect("a rekey");
    let sas = gw.wait_swan(
        swan,
        "one IKE SA, the rekeyed one",
        Duration::from_secs(5),
        |sas| {
            sas.len() == 1
                && (sas[0].spi_i, sas[0].spi_r) == spis
                && sas[0]
                    .installed()
                    .first()
                    .is_some_and(|c| (c.spi_in, c.spi_out) == (child.1, child.0))
        },
    );
    assert_eq!(sas[0].state, "ESTABLISHED");
    spis
}

/// The Isthmus initiator's own requests on an established SA, answered by strongSwan: a CHILD
/// SA rekey and the Delete of the old one, dead peer detection, an IKE SA rekey; ESP goes on
/// through the new SAs.
fn isthmus_requests(gw: &mut Gw, swan: &StrongSwan) {
    let (_, _, _, child) = gw.established().expect("established");
    let (old_in, ..) = child.expect("a CHILD SA");
    gw.request(Request::RekeyChild(old_in));
    gw.until(swan, Duration::from_secs(5), |e| {
        e.iter().any(|e| matches!(e, Ev::ChildRekeyed { .. }))
    });
    gw.request(Request::DeleteChild(old_in));
    let (new_in, new_out) = rekeyed(gw, swan, 0, Duration::from_secs(5));
    gw.ping(swan, 100);
    assert_eq!(gw.last_esp_spi, Some(new_in));

    let answered = |g: &Gw| {
        g.responses
            .iter()
            .filter(|e| **e == ExchangeType::INFORMATIONAL)
            .count()
    };
    let before = answered(gw);
    gw.request(Request::Dpd);
    let until = Instant::now() + Duration::from_secs(5);
    while answered(gw) == before {
        assert!(Instant::now() < until, "strongSwan did not answer our DPD");
        if !gw.poll() {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    gw.request(Request::RekeyIke);
    ike_rekeyed(gw, swan, (new_in, new_out));
    gw.ping(swan, 101);
    assert_eq!(
        gw.last_esp_spi,
        Some(new_in),
        "the CHILD SA moved, keys unchanged"
    );
}

/// Issue 17, interop: a strongSwan initiator (`swanctl --initiate`, a combined proposal as
/// strongSwan's defaults are) establishes with the Isthmus responder on the gateway's one port
/// (from strongSwan's 4500, with the non-ESP marker); ESP carries an echo both ways; strongSwan's
/// CHILD SA rekey (`swanctl --rekey`) is answered and the old CHILD SA deleted, and ESP goes on
/// through the new one; strongSwan's IKE SA rekey is answered, the CHILD SA moves onto the new
/// IKE SA and ESP goes on; strongSwan's dead peer detection is answered and the SA stays; strongSwan's Delete removes it here.
#[test]
fn strongswan_initiator_establishes_rekeys_and_probes_the_isthmus_responder() {
    if skip() {
        return;
    }
    let pair = SwanPair::new("sr");
    let mut conf = SwanConf::new(
        "aes128gcm16-aes256gcm16-chacha20poly1305-prfsha384-prfsha256-ecp256-curve25519-modp2048",
        "chacha20poly1305-aes256gcm16",
    );
    conf.dpd_delay = "2s";
    let swan = StrongSwan::start(&pair.ss, &pair.dir("ss"), &conf.render());
    let mut gw = Gw::respond(&pair, gw_config(PSK, all_ike(), all_esp()));
    std::thread::scope(|s| {
        let h = s.spawn(|| swan.initiate("net", 10));
        gw.until(&swan, Duration::from_secs(12), |e| {
            e.iter()
                .any(|e| matches!(e, Ev::Established { .. } | Ev::Failed { .. }))
        });
        let out = h.join().expect("swanctl thread");
        assert!(out.is_ok(), "{out:?}\n{}", swan.log());
    });
    let (_, _, suite, child) = gw.established().expect("established");
    // The suite of strongSwan's KE group (its first group), no INVALID_KE_PAYLOAD round trip.
    assert_eq!(suite.dh, DhGroup::Ecp256);
    let esp = child.map(|c| c.2.aead);
    assert!(
        matches!(esp, Some(Aead::ChaCha20Poly1305 | Aead::AesGcm16_256)),
        "one of strongSwan's ESP AEADs: {esp:?}"
    );
    assert_agrees(&swan, &mut gw);
    let sa = swan.sas().into_iter().next().expect("the SA");
    assert!(sa.initiator);
    // strongSwan initiates to the gateway's one port, from its 4500 with the non-ESP marker
    // (RFC 3948 2.2; a remote port other than 500), and stays there.
    assert_eq!((sa.local_port, sa.remote_port), (4500, GW_PORT));
    gw.ping(&swan, 1);

    swan.rekey_child("net").expect("swanctl --rekey");
    let (new_in, new_out) = rekeyed(&mut gw, &swan, 0, Duration::from_secs(10));
    assert_eq!(gw.outbound.as_ref().map(Outbound::seq), Some(0));
    gw.ping(&swan, 2);
    assert_eq!(
        gw.last_esp_spi,
        Some(new_in),
        "the reply came through the new SA"
    );

    // strongSwan rekeys the IKE SA (CREATE_CHILD_SA with a KE, RFC 7296 1.3.2).
    swan.swanctl(&["--rekey", "--ike", "gw"])
        .expect("swanctl --rekey --ike");
    ike_rekeyed(&mut gw, &swan, (new_in, new_out));
    gw.ping(&swan, 3);

    // Dead peer detection: strongSwan probes after 2 s without a message from us.
    let informational = |g: &Gw| {
        g.requests
            .iter()
            .filter(|e| **e == ExchangeType::INFORMATIONAL)
            .count()
    };
    let before = informational(&gw);
    gw.run_for(Duration::from_secs(5));
    assert!(informational(&gw) > before, "no DPD from strongSwan");
    assert!(swan.log().contains("DPD"), "{}", swan.log());
    let sa = swan.sas().into_iter().next().expect("the SA after DPD");
    assert_eq!(sa.state, "ESTABLISHED");

    std::thread::scope(|s| {
        let h = s.spawn(|| swan.terminate("gw"));
        gw.until(&swan, Duration::from_secs(8), |e| {
            e.contains(&Ev::Deleted { by_peer: true })
        });
        assert!(h.join().expect("swanctl thread").is_ok());
    });
    swan.wait_sas("no SA left", Duration::from_secs(5), <[_]>::is_empty);
    gw.write_corpus();
}

/// Issue 17, interop: strongSwan rekeys the CHILD SA of an Isthmus initiator on its own, at
/// its short `rekey_time`; the old CHILD SA is deleted and ESP goes on through the new one.
#[test]
fn strongswan_rekeys_the_child_sa_of_an_isthmus_initiator_at_its_rekey_time() {
    if skip() {
        return;
    }
    let pair = SwanPair::new("sk");
    let mut conf = SwanConf::new("aes256gcm16-prfsha256-curve25519", "aes256gcm16");
    conf.rekey_time = "4s";
    conf.life_time = "30s";
    let swan = StrongSwan::start(&pair.ss, &pair.dir("ss"), &conf.render());
    let suite = IkeSuite {
        aead: Aead::AesGcm16_256,
        prf: Prf::HmacSha256,
        dh: DhGroup::Curve25519,
    };
    let mut gw = Gw::initiate(&pair, gw_config(PSK, vec![suite], all_esp()));
    gw.until(&swan, Duration::from_secs(10), |e| {
        e.iter().any(|e| matches!(e, Ev::Established { .. }))
    });
    assert_agrees(&swan, &mut gw);
    gw.ping(&swan, 1);
    let first = rekeyed(&mut gw, &swan, 0, Duration::from_secs(10));
    gw.ping(&swan, 2);
    let second = rekeyed(&mut gw, &swan, 1, Duration::from_secs(10));
    assert_ne!(first, second);
    gw.ping(&swan, 3);
    gw.write_corpus();
}

/// Issue 17, interop: a wrong PSK is refused with AUTHENTICATION_FAILED both ways: strongSwan
/// refuses the Isthmus initiator (the Isthmus side reports the peer's notify), and the
/// Isthmus responder refuses strongSwan (reported as ours; `swanctl --initiate` fails).
#[test]
fn a_wrong_psk_is_refused_with_authentication_failed_in_both_directions() {
    if skip() {
        return;
    }
    let pair = SwanPair::new("sp");
    let conf = SwanConf::new("aes256gcm16-prfsha256-ecp256", "aes256gcm16");
    let swan = StrongSwan::start(&pair.ss, &pair.dir("ss"), &conf.render());
    let suite = IkeSuite {
        aead: Aead::AesGcm16_256,
        prf: Prf::HmacSha256,
        dh: DhGroup::Ecp256,
    };
    {
        let mut gw = Gw::initiate(&pair, gw_config("not the key", vec![suite], all_esp()));
        gw.tag = "wrong-psk-";
        gw.until(&swan, Duration::from_secs(10), |e| {
            e.iter()
                .any(|e| matches!(e, Ev::Established { .. } | Ev::Failed { .. }))
        });
        assert_eq!(
            gw.events,
            vec![Ev::Failed {
                notify: NotifyType::AUTHENTICATION_FAILED,
                by_peer: true
            }]
        );
        gw.wait_swan(
            &swan,
            "strongSwan drops the SA",
            Duration::from_secs(5),
            <[_]>::is_empty,
        );
        gw.write_corpus();
    }
    let mut gw = Gw::respond(&pair, gw_config("not the key", all_ike(), all_esp()));
    std::thread::scope(|s| {
        let h = s.spawn(|| swan.initiate("net", 10));
        gw.until(&swan, Duration::from_secs(12), |e| {
            e.iter()
                .any(|e| matches!(e, Ev::Established { .. } | Ev::Failed { .. }))
        });
        let out = h.join().expect("swanctl thread");
        assert!(out.is_err(), "{out:?}");
    });
    assert_eq!(
        gw.events,
        vec![Ev::Failed {
            notify: NotifyType::AUTHENTICATION_FAILED,
            by_peer: false
        }]
    );
    assert!(
        swan.log().contains("AUTHENTICATION_FAILED"),
        "{}",
        swan.log()
    );
}

/// Issue 17, what a device's swanctl.conf needs: strongSwan 5.9.8 initiating from its port 500
/// to a gateway port other than 500 floats BOTH ports to 4500 after IKE_SA_INIT (its
/// `float_ports` switches the remote port whenever either port is 500, unlike RFC 7296 2.23's
/// "stays as is"), so its IKE_AUTH misses a gateway that listens on one port; with
/// `local_port = 4500` (the other tests) it keeps the gateway's port.
#[test]
fn strongswan_from_port_500_floats_a_gateway_port_other_than_500_to_4500() {
    if skip() {
        return;
    }
    let pair = SwanPair::new("sf");
    let mut conf = SwanConf::new("aes256gcm16-prfsha256-curve25519", "aes256gcm16");
    conf.local_port = None;
    let swan = StrongSwan::start(&pair.ss, &pair.dir("ss"), &conf.render());
    let mut gw = Gw::respond(&pair, gw_config(PSK, all_ike(), all_esp()));
    std::thread::scope(|s| {
        let h = s.spawn(|| swan.initiate("net", 3));
        let until = Instant::now() + Duration::from_secs(5);
        let wanted = format!("to {GW_ADDR}[4500]");
        while !swan.log().contains(&wanted) {
            assert!(Instant::now() < until, "{}", swan.log());
            if !gw.poll() {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        assert_eq!(gw.requests, vec![ExchangeType::IKE_SA_INIT]);
        assert!(
            swan.log()
                .contains(&format!("from {SS_ADDR}[500] to {GW_ADDR}[{GW_PORT}]")),
            "IKE_SA_INIT went to the gateway's port"
        );
        assert!(h.join().expect("swanctl thread").is_err());
    });
    assert!(gw.established().is_none());
}

/// The device configuration the server exports (`isthmus_shared::device_ipsec`) for the lab's
/// addresses: IPsec connection `hub-branch`, the default IPsec parameters.
pub(crate) fn exported(mode: IpsecConnectionMode) -> String {
    IpsecDeviceConfig {
        connection: QualifiedName::new("t", "hub-branch"),
        site: QualifiedName::new("t", "branch"),
        gateway: QualifiedName::new("t", "hub"),
        gateway_type: GatewayType::RouteBased,
        tunnel: 1,
        gateway_endpoint: gw_addr(GW_PORT),
        gateway_id: GW_ADDR.to_owned(),
        device_id: SS_ADDR.to_owned(),
        device_host: SS_ADDR.to_owned(),
        device_ike_port: 500,
        psk: PSK.to_owned(),
        parameters: IpsecParameters::of(None, mode),
        local_ts: vec![SS_NET.parse().expect("prefix")],
        remote_ts: vec![GW_NET.parse().expect("prefix")],
    }
    .to_swanctl()
}

/// Issue 17, the exported device configuration: strongSwan 5.9.8 loads the swanctl.conf the
/// server exports as it is, and a gateway initiating to the device (mode InitiatorOnly, the
/// default parameters, every suite offered) establishes through it with a working CHILD SA.
#[test]
fn the_exported_swanctl_conf_works_as_is_when_the_gateway_initiates() {
    if skip() {
        return;
    }
    let pair = SwanPair::new("sx");
    let conf = exported(IpsecConnectionMode::InitiatorOnly);
    assert!(conf.contains("start_action = none"), "{conf}");
    let swan = StrongSwan::start(&pair.ss, &pair.dir("ss"), &conf);
    let mut gw = Gw::initiate(&pair, gw_config(PSK, all_ike(), all_esp()));
    gw.until(&swan, Duration::from_secs(10), |e| {
        e.iter()
            .any(|e| matches!(e, Ev::Established { .. } | Ev::Failed { .. }))
    });
    assert_agrees(&swan, &mut gw);
    let sa = swan.sas().into_iter().next().expect("the SA");
    assert_eq!(sa.name, "hub-branch");
    assert_eq!(sa.installed()[0].name, "hub-branch");
    gw.ping(&swan, 1);
}

/// Issue 17, the exported device configuration when the device initiates (mode Default:
/// `start_action = start`, charon starts the tunnel when it loads the file): the Isthmus
/// responder on the gateway's one port establishes with it. strongSwan 5.9.8 needs
/// `local_port = 4500` for that (see
/// `strongswan_from_port_500_floats_a_gateway_port_other_than_500_to_4500`), which the export
/// writes for every gateway port other than 500.
#[test]
fn the_exported_swanctl_conf_with_local_port_4500_reaches_the_gateways_one_port() {
    if skip() {
        return;
    }
    let pair = SwanPair::new("sy");
    let conf = exported(IpsecConnectionMode::Default);
    assert!(conf.contains("start_action = start"), "{conf}");
    assert!(conf.contains("        local_port = 4500\n"), "{conf}");
    let mut gw = Gw::respond(&pair, gw_config(PSK, all_ike(), all_esp()));
    let swan = StrongSwan::start(&pair.ss, &pair.dir("ss"), &conf);
    gw.until(&swan, Duration::from_secs(10), |e| {
        e.iter()
            .any(|e| matches!(e, Ev::Established { .. } | Ev::Failed { .. }))
    });
    assert_agrees(&swan, &mut gw);
    let sa = swan.sas().into_iter().next().expect("the SA");
    assert!(sa.initiator, "the device started it");
    assert_eq!(sa.remote_port, GW_PORT);
    gw.ping(&swan, 1);
}

/// Issue 17, interop, perfect forward secrecy (RFC 7296 1.3.1): strongSwan's `esp_proposals`
/// name a DH group (`aes256gcm16-curve25519`; the IKE SA uses ECP-256, so the group shows
/// only on the CHILD SA). The first CHILD SA (IKE_AUTH, no KE: 1.2) is accepted, and
/// strongSwan's `swanctl --rekey --child` (CREATE_CHILD_SA with a KE) is answered with a KE
/// of that group, the rekeyed CHILD SA carrying ESP both ways; with the device initiating
/// and with the Isthmus side initiating.
#[test]
fn strongswan_rekeys_the_child_sa_with_pfs_and_the_rekeyed_sa_carries_esp() {
    if skip() {
        return;
    }
    let pair = SwanPair::new("sz");
    let conf = SwanConf::new("aes256gcm16-prfsha256-ecp256", "aes256gcm16-curve25519");
    let swan = StrongSwan::start(&pair.ss, &pair.dir("ss"), &conf.render());
    let pfs = |swan: &StrongSwan, round: usize| {
        let log = swan.log();
        let answered = log
            .lines()
            .filter(|l| l.contains("parsed CREATE_CHILD_SA response") && l.contains(" KE "))
            .count();
        assert!(answered >= round, "no KE in our answer:\n{log}");
        let listed = swan.swanctl(&["--list-sas"]).unwrap_or_default();
        assert!(listed.contains("CURVE_25519"), "{listed}");
    };
    // The device initiates.
    let mut gw = Gw::respond(&pair, gw_config(PSK, all_ike(), all_esp()));
    std::thread::scope(|s| {
        let h = s.spawn(|| swan.initiate("net", 10));
        gw.until(&swan, Duration::from_secs(12), |e| {
            e.iter()
                .any(|e| matches!(e, Ev::Established { .. } | Ev::Failed { .. }))
        });
        let out = h.join().expect("swanctl thread");
        assert!(out.is_ok(), "{out:?}\n{}", swan.log());
    });
    assert_agrees(&swan, &mut gw);
    gw.ping(&swan, 1);
    swan.rekey_child("net").expect("swanctl --rekey");
    let (new_in, _) = rekeyed(&mut gw, &swan, 0, Duration::from_secs(10));
    gw.ping(&swan, 2);
    assert_eq!(gw.last_esp_spi, Some(new_in), "through the rekeyed SA");
    pfs(&swan, 1);
    std::thread::scope(|s| {
        let h = s.spawn(|| swan.terminate("gw"));
        gw.until(&swan, Duration::from_secs(8), |e| {
            e.contains(&Ev::Deleted { by_peer: true })
        });
        assert!(h.join().expect("swanctl thread").is_ok());
    });
    drop(gw);
    swan.wait_sas("no SA left", Duration::from_secs(5), <[_]>::is_empty);

    // The Isthmus side initiates (its IKE_AUTH offers no DH; strongSwan accepts as 1.2 says).
    // A KE is answered in a group of the connection's IKE suites: every suite is offered,
    // strongSwan picks ECP-256 for the IKE SA, Curve25519 is one of them.
    let mut gw = Gw::initiate(&pair, gw_config(PSK, all_ike(), all_esp()));
    gw.until(&swan, Duration::from_secs(10), |e| {
        e.iter()
            .any(|e| matches!(e, Ev::Established { .. } | Ev::Failed { .. }))
    });
    assert_agrees(&swan, &mut gw);
    gw.ping(&swan, 3);
    swan.rekey_child("net").expect("swanctl --rekey");
    let (new_in, _) = rekeyed(&mut gw, &swan, 0, Duration::from_secs(10));
    gw.ping(&swan, 4);
    assert_eq!(gw.last_esp_spi, Some(new_in), "through the rekeyed SA");
    pfs(&swan, 2);
}
