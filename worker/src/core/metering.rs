//! Drop counters, the status report, and LIM-6 metering.
//!
//! LIM-6: every VNet-to-VNet peer carries its region pair in the desired state; the core counts
//! each peer's *outer* bytes (the WireGuard messages it sends to and accepts from the peer, as
//! UDP payloads: data, handshakes, keepalives; without IP/UDP headers) because the encrypted
//! datagrams are what crosses regions. [`Core::status`] sums them per region pair over all peers
//! of all gateways. The sums never go backwards while the process runs: when a peer is removed,
//! its gateway replaced, or its pair changes, its counts move into a per-pair total of retired
//! peers. Same-region pairs are reported too (not billable); site-to-site and point-to-site
//! peers carry no pair and are not counted. The per-connection `rx_bytes`/`tx_bytes` stay inner
//! bytes (the IP packets through the tunnel).

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime};

use isthmus_shared::desired::{ConnectionStatus, GatewayStatus, RegionPairBytes, StatusReport};
use isthmus_shared::model::{QualifiedName, RegionPair};

use super::Core;
use super::peer::Peer;

/// The Unix seconds of `t`, `now` and `wall` being the same moment on the monotonic and the
/// wall clock; a moment to come (an SA's rekey) stays in the future.
pub fn unix_secs(now: Instant, wall: SystemTime, t: Instant) -> Option<u64> {
    let at = if t >= now {
        wall.checked_add(t.duration_since(now))?
    } else {
        wall.checked_sub(now.duration_since(t))?
    };
    at.duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// Packets dropped, by reason. Per gateway, plus worker-wide for packets no gateway owns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counters {
    /// Not a WireGuard message at all (wrong type or length).
    pub garbage: u64,
    /// A WireGuard message that failed its MAC, decryption, replay or timestamp checks.
    pub invalid: u64,
    /// A well-formed handshake from a key that is not a peer, or an unknown receiver index.
    pub unknown_peer: u64,
    /// A datagram to a port no gateway listens on.
    pub unknown_port: u64,
    /// Cryptokey routing: an inner packet whose source is outside the peer's allowed IPs.
    pub disallowed_source: u64,
    /// GW-1: a packet that matches no traffic selector of a policy-based tunnel.
    pub policy_mismatch: u64,
    /// No route, or a route that leaves the gateway some other way (GW-8).
    pub no_route: u64,
    /// A packet that would go back where it came from.
    pub loop_dropped: u64,
    /// LIM-4: over the gateway's bandwidth.
    pub rate_limited: u64,
    /// Larger than any IP packet.
    pub oversized: u64,
    /// Not an IPv4/IPv6 packet (from the TUN side).
    pub malformed: u64,
    /// A packet for a roaming peer whose address is not known yet.
    pub no_endpoint: u64,
    /// Larger than the tunnel MTU and not to be fragmented (IPv4 with DF, IPv6): dropped and
    /// answered with ICMP "fragmentation needed" / "packet too big" ([`mtu`](super::mtu)).
    #[serde(default)]
    pub too_big: u64,
    /// ICMP answers to `too_big` packets not sent: over the gateway's rate of
    /// [`mtu::ICMP_PER_SECOND`](super::mtu::ICMP_PER_SECOND) (not a packet drop).
    #[serde(default)]
    pub icmp_rate_limited: u64,
    /// Handshake messages answered with a cookie reply because the gateway is under load and
    /// they carried no valid MAC2 (WireGuard's cookie mechanism: no Diffie-Hellman for them).
    #[serde(default)]
    pub cookie_replies: u64,
    /// Handshake messages dropped unchecked: over the gateway's handshake budget of the tick
    /// ([`HANDSHAKES_PER_TICK`](super::HANDSHAKES_PER_TICK)), or, under load, over the
    /// Diffie-Hellman budget or one source address's share of it.
    #[serde(default)]
    pub handshakes_shed: u64,
    /// Datagrams the kernel dropped for a full receive queue of the gateway's port, as the
    /// shell last read them ([`Core::set_queue_overflows`]).
    #[serde(default)]
    pub queue_overflows: u64,
    /// Issue 16: datagrams on the port of a gateway whose instance here is the standby, and
    /// packets from the TUN device for it: a standby never answers, initiates or forwards.
    #[serde(default)]
    pub standby_dropped: u64,
    /// Issue 16: datagrams on the heartbeat socket that are no heartbeat, or name no gateway
    /// with an instance on this worker (worker-wide; an instance counts its own refusals).
    #[serde(default)]
    pub heartbeats_unmatched: u64,
    /// Issue 17: ESP datagrams too short or badly padded.
    #[serde(default)]
    pub esp_malformed: u64,
    /// Issue 17: ESP datagrams whose SPI names no CHILD SA of the gateway's (any more).
    #[serde(default)]
    pub esp_unknown_spi: u64,
    /// Issue 17: ESP datagrams whose integrity check failed (forged, corrupted, other keys).
    #[serde(default)]
    pub esp_integrity: u64,
    /// Issue 17: ESP datagrams replayed or left of the anti-replay window.
    #[serde(default)]
    pub esp_replay: u64,
    /// Issue 17: IKE messages that name no IPsec connection of the gateway (SPI or address).
    #[serde(default)]
    pub ike_unmatched: u64,
    /// Issue 17: packets for an IPsec tunnel without a CHILD SA (not up yet, or idled out).
    #[serde(default)]
    pub ipsec_no_sa: u64,
    /// Issue 17: IKE messages of an IPsec connection that its exchanges dropped, by kind
    /// ([`crate::core::ike::exchange::Counters`]): not parsing or lacking payloads, an SPI of
    /// no IKE SA, a failed integrity check, an old message ID, one ahead of the window, an
    /// exchange out of turn.
    #[serde(default)]
    pub ike_malformed: u64,
    #[serde(default)]
    pub ike_unknown_spi: u64,
    #[serde(default)]
    pub ike_integrity: u64,
    #[serde(default)]
    pub ike_replayed: u64,
    #[serde(default)]
    pub ike_out_of_window: u64,
    #[serde(default)]
    pub ike_unexpected: u64,
    /// Issue 17: IKE_SA_INITs answered with a cookie (not a drop: the work was not done).
    #[serde(default)]
    pub ike_cookies_sent: u64,
    /// Issue 17: IKE_SA_INITs dropped for too many half-open SAs.
    #[serde(default)]
    pub ike_half_open_full: u64,
}

impl Counters {
    pub(super) fn add(&mut self, o: &Counters) {
        self.garbage += o.garbage;
        self.invalid += o.invalid;
        self.unknown_peer += o.unknown_peer;
        self.unknown_port += o.unknown_port;
        self.disallowed_source += o.disallowed_source;
        self.policy_mismatch += o.policy_mismatch;
        self.no_route += o.no_route;
        self.loop_dropped += o.loop_dropped;
        self.rate_limited += o.rate_limited;
        self.oversized += o.oversized;
        self.malformed += o.malformed;
        self.no_endpoint += o.no_endpoint;
        self.too_big += o.too_big;
        self.icmp_rate_limited += o.icmp_rate_limited;
        self.cookie_replies += o.cookie_replies;
        self.handshakes_shed += o.handshakes_shed;
        self.queue_overflows += o.queue_overflows;
        self.standby_dropped += o.standby_dropped;
        self.heartbeats_unmatched += o.heartbeats_unmatched;
        self.esp_malformed += o.esp_malformed;
        self.esp_unknown_spi += o.esp_unknown_spi;
        self.esp_integrity += o.esp_integrity;
        self.esp_replay += o.esp_replay;
        self.ike_unmatched += o.ike_unmatched;
        self.ipsec_no_sa += o.ipsec_no_sa;
        self.ike_malformed += o.ike_malformed;
        self.ike_unknown_spi += o.ike_unknown_spi;
        self.ike_integrity += o.ike_integrity;
        self.ike_replayed += o.ike_replayed;
        self.ike_out_of_window += o.ike_out_of_window;
        self.ike_unexpected += o.ike_unexpected;
        self.ike_cookies_sent += o.ike_cookies_sent;
        self.ike_half_open_full += o.ike_half_open_full;
    }

    /// Issue 17: what an IPsec connection's exchanges dropped (or answered with a cookie)
    /// since they were last asked, into the gateway's counts.
    pub(super) fn add_ike(&mut self, d: &crate::core::ike::exchange::Counters) {
        self.ike_malformed += d.malformed;
        self.ike_unknown_spi += d.unknown_spi;
        self.ike_integrity += d.integrity_failed;
        self.ike_replayed += d.replayed;
        self.ike_out_of_window += d.out_of_window;
        self.ike_unexpected += d.unexpected;
        self.ike_cookies_sent += d.cookies_sent;
        self.ike_half_open_full += d.half_open_full;
    }

    /// Issue 17: the IPsec drops by kind, as the status report carries them.
    pub fn ipsec_drops(&self) -> isthmus_shared::desired::IpsecDrops {
        isthmus_shared::desired::IpsecDrops {
            esp_malformed: self.esp_malformed,
            esp_unknown_spi: self.esp_unknown_spi,
            esp_integrity: self.esp_integrity,
            esp_replay: self.esp_replay,
            ike_malformed: self.ike_malformed,
            ike_unknown_spi: self.ike_unknown_spi,
            ike_integrity: self.ike_integrity,
            ike_replayed: self.ike_replayed,
            ike_out_of_window: self.ike_out_of_window,
            ike_unexpected: self.ike_unexpected,
            ike_unmatched: self.ike_unmatched,
            cookies_sent: self.ike_cookies_sent,
            half_open_full: self.ike_half_open_full,
        }
    }

    /// Issue 17: the ESP and IKE datagrams dropped (reported in `bad_datagrams`).
    pub fn ipsec_bad(&self) -> u64 {
        self.ipsec_drops().dropped()
    }

    /// The figures the status report carries for a gateway (`/metrics` shows them).
    pub fn drops(&self) -> isthmus_shared::desired::GatewayDrops {
        isthmus_shared::desired::GatewayDrops {
            cookie_replies: self.cookie_replies,
            handshakes_shed: self.handshakes_shed,
            rate_limited: self.rate_limited,
            bad_datagrams: self.garbage + self.invalid + self.oversized + self.ipsec_bad(),
            queue_overflows: self.queue_overflows,
            ipsec: Some(self.ipsec_drops()).filter(|d| !d.is_zero()),
        }
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        let mut t = Counters::default();
        t.add(self);
        t.garbage
            + t.invalid
            + t.unknown_peer
            + t.unknown_port
            + t.disallowed_source
            + t.policy_mismatch
            + t.no_route
            + t.loop_dropped
            + t.rate_limited
            + t.oversized
            + t.malformed
            + t.no_endpoint
            + t.too_big
            + t.handshakes_shed
            + t.queue_overflows
            + t.standby_dropped
            + t.heartbeats_unmatched
            + t.ipsec_bad()
            + t.ipsec_no_sa
    }
}

// enforces: LIM-6
/// LIM-6: moves a peer's outer byte counts into the totals of retired peers (the peer is going
/// away or changing its region pair), so the per-pair sums never go backwards.
pub(super) fn retire_outer(retired: &mut BTreeMap<RegionPair, (u64, u64)>, peer: &mut Peer) {
    if let Some(pair) = &peer.region_pair
        && (peer.outer_rx, peer.outer_tx) != (0, 0)
    {
        let e = retired.entry(pair.clone()).or_default();
        e.0 += peer.outer_rx;
        e.1 += peer.outer_tx;
    }
    peer.outer_rx = 0;
    peer.outer_tx = 0;
}

impl Core {
    /// Drop counters of the whole worker.
    pub fn counters(&self) -> Counters {
        let mut c = self.counters;
        for g in self.gateways.values() {
            c.add(&g.counters);
        }
        c
    }

    /// What the kernel dropped for a full receive queue of `port` (all its sockets, since they
    /// were opened): the shell reads it from the host and hands it in before a status report.
    pub fn set_queue_overflows(&mut self, port: u16, dropped: u64) {
        if let Some(g) = self
            .by_port
            .get(&port)
            .and_then(|k| self.gateways.get_mut(k))
        {
            g.counters.queue_overflows = dropped;
        }
    }

    /// Drop counters of one gateway.
    pub fn gateway_counters(&self, gateway: &QualifiedName) -> Option<Counters> {
        self.gateways.get(gateway).map(|g| g.counters)
    }

    /// The status report: `now` and `wall` are the same moment on the monotonic and the wall
    /// clock (handshake times are converted to Unix seconds through them).
    pub fn status(&self, now: Instant, wall: SystemTime) -> StatusReport {
        let unix = |t: Instant| unix_secs(now, wall, t);
        StatusReport {
            version: self.version,
            gateways: self
                .gateways
                .values()
                .map(|g| GatewayStatus {
                    tenant: g.key.tenant.clone(),
                    name: g.key.name.clone(),
                    connections: g
                        .peers
                        .values()
                        .map(|p| {
                            let (state, reason, since) = p.live.current();
                            ConnectionStatus {
                                name: p.name.clone(),
                                last_handshake_unix: p.last_handshake.and_then(unix),
                                rx_bytes: p.rx_bytes,
                                tx_bytes: p.tx_bytes,
                                // Issue 17: an IPsec tunnel's is where its IKE SA sends
                                // (the device's 4500 after the float), not the IKE endpoint.
                                endpoint: p
                                    .ipsec
                                    .as_ref()
                                    .and_then(|t| t.device_endpoint())
                                    .or(p.endpoint)
                                    .map(|e| e.to_string()),
                                state,
                                since_unix: unix(since),
                                reason,
                                ipsec: p.ipsec.as_ref().map(|t| t.status(&unix)),
                            }
                        })
                        .collect(),
                    route_conflicts: Vec::new(),
                    drops: Some(g.counters.drops()),
                    instance: g.failover.as_ref().map(|f| f.status(now)),
                    bind_error: None,
                })
                .collect(),
            region_pairs: self.region_pairs(),
        }
    }

    /// LIM-6: outer bytes per region pair since the core was created, over all VNet-to-VNet
    /// peers of all gateways (current and removed), sorted by pair.
    pub fn region_pairs(&self) -> Vec<RegionPairBytes> {
        let mut sums = self.retired_pairs.clone();
        for p in self.gateways.values().flat_map(|g| g.peers.values()) {
            if let Some(pair) = &p.region_pair {
                let e = sums.entry(pair.clone()).or_default();
                e.0 += p.outer_rx;
                e.1 += p.outer_tx;
            }
        }
        sums.into_iter()
            .map(|(pair, (rx_bytes, tx_bytes))| RegionPairBytes {
                a: pair.a,
                b: pair.b,
                rx_bytes,
                tx_bytes,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn unix_seconds_of_past_and_future_moments() {
        let past = Instant::now();
        let now = past + Duration::from_secs(300);
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(unix_secs(now, wall, now), Some(1_000_000));
        assert_eq!(unix_secs(now, wall, past), Some(999_700));
        // A rekey due in an hour is an hour ahead, not now.
        assert_eq!(
            unix_secs(now, wall, now + Duration::from_secs(3_600)),
            Some(1_003_600)
        );
    }
}
