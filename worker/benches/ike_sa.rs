//! IKE SA establishments per second on one core (issue 17): an in-memory initiator and
//! responder (`core::ike::exchange`) run the full IKE_SA_INIT + IKE_AUTH with a CHILD SA, per
//! DH group (AES-GCM-16-256, PRF HMAC-SHA2-256, AES-GCM-16-256 ESP), one thread, the system's
//! randomness. Prints per group the establishments per second with both sides' work on the
//! one core, and the responder's share alone (what a gateway answering sites spends).
//!
//!   cargo bench -p isthmus-worker --bench ike_sa [-- SECONDS_PER_GROUP]
//!
//! A benchmark, not a test. The target (issue 17): at least 500/s for the default group.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use isthmus_worker::core::ike::crypto::{Aead, DhGroup, Prf, Secret, SystemEntropy};
use isthmus_worker::core::ike::exchange::{Config, IkeEvent, Initiator, Responder};
use isthmus_worker::core::ike::proposal::{EspSuite, IkeSuite};
use isthmus_worker::core::ike::wire::{IdType, Identification, TrafficSelector};

fn id(s: &str) -> Identification {
    Identification {
        id_type: IdType::FQDN,
        data: s.as_bytes().to_vec(),
    }
}

fn ts(net: &str) -> Vec<TrafficSelector> {
    vec![TrafficSelector::from_net(net.parse().expect("prefix"))]
}

fn config(dh: DhGroup, local: &str, remote: &str, lts: &str, rts: &str) -> Config {
    Config {
        psk: Secret::from_slice(b"a bench's shared key"),
        local_id: id(local),
        remote_id: Some(id(remote)),
        ike: vec![IkeSuite {
            aead: Aead::AesGcm16_256,
            prf: Prf::HmacSha256,
            dh,
        }],
        esp: vec![EspSuite {
            aead: Aead::AesGcm16_256,
        }],
        local_ts: ts(lts),
        remote_ts: ts(rts),
        force_encapsulation: true,
    }
}

struct Rate {
    total: f64,
    responder: f64,
}

fn run(dh: DhGroup, budget: Duration) -> Rate {
    let site: SocketAddr = "192.0.2.10:500".parse().expect("addr");
    let gw: SocketAddr = "198.51.100.1:500".parse().expect("addr");
    let mut ie = SystemEntropy::default();
    let mut re = SystemEntropy::default();
    let site_config = config(dh, "site", "gw", "10.2.0.0/16", "10.1.0.0/16");
    let mut resp = Responder::new(
        config(dh, "gw", "site", "10.1.0.0/16", "10.2.0.0/16"),
        usize::MAX,
        &mut re,
    )
    .expect("responder");
    let mut n = 0u64;
    let mut in_responder = Duration::ZERO;
    let start = Instant::now();
    while start.elapsed() < budget {
        // A fresh responder now and then: its table does not grow without bound.
        if n % 4096 == 4095 {
            resp = Responder::new(
                config(dh, "gw", "site", "10.1.0.0/16", "10.2.0.0/16"),
                usize::MAX,
                &mut re,
            )
            .expect("responder");
        }
        let now = Instant::now();
        let (mut init, first) =
            Initiator::start(site_config.clone(), site, gw, &mut ie, now).expect("start");
        let mut req = Some(first);
        while let Some(r) = req.take() {
            let t = Instant::now();
            let answer = resp.handle(gw, site, &r, &mut re, now).expect("responder");
            in_responder += t.elapsed();
            let Some(answer) = answer else { break };
            req = init.handle(&answer, &mut ie, now).expect("initiator");
        }
        match init.poll_event() {
            Some(IkeEvent::Established { child: Some(_), .. }) => {}
            other => panic!("not established: {other:?}"),
        }
        while resp.poll_event().is_some() {}
        n += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    Rate {
        total: n as f64 / secs,
        responder: n as f64 / in_responder.as_secs_f64(),
    }
}

fn main() {
    let secs: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3.0);
    let budget = Duration::from_secs_f64(secs);
    for (name, dh) in [
        ("curve25519", DhGroup::Curve25519),
        ("ecp256", DhGroup::Ecp256),
        ("ecp384", DhGroup::Ecp384),
        ("modp2048", DhGroup::Modp2048),
    ] {
        let r = run(dh, budget);
        println!(
            "ike_sa {name:>10}: {:>8.0} IKE SAs/s (initiator + responder on one core), {:>8.0}/s responder alone",
            r.total, r.responder
        );
    }
}
