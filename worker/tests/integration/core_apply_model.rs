//! A reference model of sequences of `Core::apply` (in the manner of firezone's
//! `tests/{reference,sut,transition}.rs`): after each desired state, a peer keeps its tunnel
//! (and so its counters) exactly when its gateway's private key, its public key, its preshared
//! key and its keepalive are unchanged; the listen ports are the desired gateways' ports; and
//! the LIM-6 metered bytes never decrease.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use isthmus_shared::desired::{DesiredState, PeerDesired, Secret};
use isthmus_shared::model::region_pair;
use isthmus_worker::core::Core;
use isthmus_worker::core::packet::ipv4_udp;
use proptest::prelude::*;

use crate::harness::*;

/// One peer slot of a gateway: which of two keys, PSKs, keepalives and region pairs it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PeerSpec {
    key: u8,
    psk: u8,
    keepalive: bool,
    pair: u8,
}

/// One gateway: its private key (of two), its port (of two) and up to three peers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GatewaySpec {
    key: u8,
    port: u8,
    peers: [Option<PeerSpec>; 3],
}

type Spec = [Option<GatewaySpec>; 2];

fn peer_spec() -> impl Strategy<Value = Option<PeerSpec>> {
    proptest::option::of((0u8..2, 0u8..3, any::<bool>(), 0u8..3).prop_map(
        |(key, psk, keepalive, pair)| PeerSpec {
            key,
            psk,
            keepalive,
            pair,
        },
    ))
}

fn gateway_spec() -> impl Strategy<Value = Option<GatewaySpec>> {
    proptest::option::of(
        (0u8..2, 0u8..2, [peer_spec(), peer_spec(), peer_spec()])
            .prop_map(|(key, port, peers)| GatewaySpec { key, port, peers }),
    )
}

fn spec() -> impl Strategy<Value = Spec> {
    [gateway_spec(), gateway_spec()]
}

fn gw_name(g: usize) -> String {
    format!("gw{g}")
}

fn gw_seed(g: usize, s: &GatewaySpec) -> u8 {
    // Distinct per gateway and key choice.
    10 * (g as u8 + 1) + s.key
}

fn port(g: usize, s: &GatewaySpec) -> u16 {
    GW_PORT + 2 * g as u16 + u16::from(s.port)
}

/// The peer's key seed: distinct per gateway, slot and key choice.
fn peer_seed(g: usize, i: usize, p: &PeerSpec) -> u8 {
    100 + 20 * g as u8 + 2 * i as u8 + p.key
}

fn peer_net(g: usize, i: usize) -> String {
    format!("10.{}.0.0/16", 20 + 10 * g + i)
}

fn desired(version: u64, spec: &Spec) -> DesiredState {
    let mut gateways = Vec::new();
    for (g, s) in spec.iter().enumerate() {
        let Some(s) = s else { continue };
        let own = format!("10.{}.0.0/16", 1 + g);
        let mut routes = vec![vnet_route(&own)];
        let mut peers: Vec<PeerDesired> = Vec::new();
        for (i, p) in s.peers.iter().enumerate() {
            let Some(p) = p else { continue };
            let name = format!("p{i}");
            let mut d = s2s_peer(
                &name,
                peer_seed(g, i, p),
                site_addr(10 + 3 * g as u8 + i as u8),
                &[&peer_net(g, i)],
            );
            d.preshared_key = match p.psk {
                0 => None,
                k => Some(Secret::new(b64(&[k; 32]))),
            };
            d.persistent_keepalive_secs = p.keepalive.then_some(25);
            d.region_pair = match p.pair {
                0 => None,
                1 => Some(region_pair("westeurope", "eastus")),
                _ => Some(region_pair("westeurope", "westeurope")),
            };
            routes.push(route(&peer_net(g, i), s2s_hop(&name)));
            peers.push(d);
        }
        gateways.push(gateway(
            &gw_name(g),
            gw_seed(g, s),
            port(g, s),
            peers,
            routes,
        ));
    }
    state(version, gateways)
}

/// What identifies a peer's tunnel: (gateway key, peer key, PSK, keepalive).
type Identity = (u8, u8, u8, bool);

fn identities(spec: &Spec) -> BTreeMap<(usize, usize), Identity> {
    let mut m = BTreeMap::new();
    for (g, s) in spec.iter().enumerate() {
        let Some(s) = s else { continue };
        for (i, p) in s.peers.iter().enumerate() {
            if let Some(p) = p {
                m.insert(
                    (g, i),
                    (gw_seed(g, s), peer_seed(g, i, p), p.psk, p.keepalive),
                );
            }
        }
    }
    m
}

/// Sends one packet from the gateway's VNet to every peer of `spec` (its tunnel counts it).
fn traffic(core: &mut Core, spec: &Spec, now: Instant) {
    for (g, s) in spec.iter().enumerate() {
        let Some(s) = s else { continue };
        for (i, p) in s.peers.iter().enumerate() {
            if p.is_none() {
                continue;
            }
            let src = Ipv4Addr::new(10, 1 + g as u8, 0, 1);
            let dst = Ipv4Addr::new(10, (20 + 10 * g + i) as u8, 0, 1);
            core.handle_tun(&ipv4_udp(src, dst, 1000, 2000, b"model"), now);
        }
    }
    while core.poll_transmit().is_some() {}
    while core.poll_event().is_some() {}
}

fn tx_bytes(core: &Core, g: usize, i: usize) -> Option<u64> {
    core.peer(&qn(&gw_name(g)), &format!("p{i}"))
        .map(|p| p.tx_bytes)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn apply_sequences_keep_sessions_exactly_when_keys_are_unchanged(
        specs in proptest::collection::vec(spec(), 1..6),
    ) {
        let t0 = Instant::now();
        let mut core = Core::new();
        let mut before: BTreeMap<(usize, usize), Identity> = BTreeMap::new();
        let mut sent: BTreeMap<(usize, usize), u64> = BTreeMap::new();
        let mut metered: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
        for (step, s) in specs.iter().enumerate() {
            let now = t0 + Duration::from_secs(step as u64);
            let d = desired(step as u64 + 1, s);
            prop_assert!(core.apply(&d, now).is_empty());
            let ports: BTreeSet<u16> = d.gateways.iter().map(|g| g.listen_port).collect();
            prop_assert_eq!(core.listen_ports(), ports);
            let after = identities(s);
            for (slot, id) in &after {
                let kept = before.get(slot) == Some(id);
                let want = if kept { sent.get(slot).copied() } else { Some(0) };
                prop_assert_eq!(
                    tx_bytes(&core, slot.0, slot.1), want,
                    "step {}, gateway {}, peer {}: kept {}", step, slot.0, slot.1, kept
                );
            }
            traffic(&mut core, s, now);
            sent = after
                .keys()
                .filter_map(|&(g, i)| Some(((g, i), tx_bytes(&core, g, i)?)))
                .collect();
            // A pair is listed while a peer has it or once bytes were counted for it.
            let now_metered: BTreeMap<(String, String), (u64, u64)> = core
                .region_pairs()
                .into_iter()
                .map(|p| ((p.a, p.b), (p.rx_bytes, p.tx_bytes)))
                .collect();
            for (pair, was) in &metered {
                let is = now_metered.get(pair).copied().unwrap_or_default();
                prop_assert!(
                    is.0 >= was.0 && is.1 >= was.1,
                    "metered bytes of {:?} decreased: {:?} -> {:?}", pair, was, is
                );
            }
            metered.extend(now_metered);
            before = after;
        }
    }
}
