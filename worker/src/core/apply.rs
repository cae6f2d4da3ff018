//! Hot reconfiguration: [`Core::apply`] turns a desired state into gateways and peers, keeping
//! the tunnels (and sessions) of peers whose keys and keepalive did not change.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use boringtun::noise::TunnResult;
use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::x25519::{PublicKey, StaticSecret};
use isthmus_shared::desired::{DesiredState, GatewayDesired, PeerDesired};
use isthmus_shared::lpm::LpmTable;
use isthmus_shared::model::QualifiedName;

use super::bucket::TokenBucket;
use super::forward::{ForwardingTable, PeerRef};
use super::metering::{Counters, retire_outer};
use super::mtu::IcmpLimiter;
use super::peer::{Gateway, Peer};
use super::state::Liveness;
use super::{Core, HANDSHAKE_RATE_LIMIT};

/// How [`Core::apply_with`] departs from the desired state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Test only: replaces the S2S-2 idle time (5 minutes in the desired state) of every
    /// policy-based tunnel, so a test can watch a tunnel idle out without waiting 5 minutes.
    pub idle_override: Option<Duration>,
}

/// Why part of a desired state was not applied (the rest was). Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("gateway {gateway}: the private key is not 32 bytes of base64; gateway skipped")]
    BadPrivateKey { gateway: QualifiedName },
    #[error("gateway {gateway}: port {port} is already used by gateway {other}; gateway skipped")]
    DuplicatePort {
        gateway: QualifiedName,
        port: u16,
        other: QualifiedName,
    },
    #[error(
        "gateway {gateway}, peer {peer:?}: the public key is not 32 bytes of base64; peer skipped"
    )]
    BadPublicKey {
        gateway: QualifiedName,
        peer: String,
    },
    #[error(
        "gateway {gateway}, peer {peer:?}: the preshared key is not 32 bytes of base64; peer skipped"
    )]
    BadPresharedKey {
        gateway: QualifiedName,
        peer: String,
    },
    #[error("gateway {gateway}: the instance block is refused: {error}; gateway skipped")]
    BadInstance {
        gateway: QualifiedName,
        error: super::failover::FailoverError,
    },
    #[error("gateway {gateway}, IPsec peer {peer:?}: {error}; peer skipped")]
    Ipsec {
        gateway: QualifiedName,
        peer: String,
        error: String,
    },
    #[error("gateway {gateway}, peer {peer:?}: same public key as peer {other:?}; peer skipped")]
    DuplicatePeer {
        gateway: QualifiedName,
        peer: String,
        other: String,
    },
}

fn decode32(s: &str) -> Option<[u8; 32]> {
    let v = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .ok()?;
    v.try_into().ok()
}

impl Core {
    pub(super) fn alloc_index(&mut self) -> u32 {
        let i = self.next_index;
        // Tunn indices are 24 bits (boringtun shifts them left by 8).
        self.next_index = (self.next_index % 0x00ff_ffff) + 1;
        i
    }

    /// Applies a desired state (hot reconfiguration). Gateways and peers not in `desired` are
    /// removed at once; a peer with the same public key and preshared key (and keepalive) on a
    /// gateway with the same private key keeps its tunnel and session. Parts that cannot be
    /// applied are skipped and returned; the rest is applied.
    pub fn apply(&mut self, desired: &DesiredState, now: Instant) -> Vec<ApplyError> {
        self.apply_with(desired, now, ApplyOptions::default())
    }

    /// [`Core::apply`] with [`ApplyOptions`].
    pub fn apply_with(
        &mut self,
        desired: &DesiredState,
        now: Instant,
        options: ApplyOptions,
    ) -> Vec<ApplyError> {
        let mut errors = Vec::new();
        let mut old = std::mem::take(&mut self.gateways);
        let mut new: BTreeMap<QualifiedName, Gateway> = BTreeMap::new();
        let mut ports: BTreeMap<u16, QualifiedName> = BTreeMap::new();
        for g in &desired.gateways {
            let key = QualifiedName::new(&g.tenant, &g.name);
            if let Some(other) = ports.get(&g.listen_port) {
                errors.push(ApplyError::DuplicatePort {
                    gateway: key,
                    port: g.listen_port,
                    other: other.clone(),
                });
                continue;
            }
            let Some(sk) = decode32(g.private_key.expose()) else {
                errors.push(ApplyError::BadPrivateKey { gateway: key });
                continue;
            };
            let mut fresh = false;
            let mut gw = match old.remove(&key) {
                Some(o) if o.private_key.to_bytes() == sk => o,
                replaced => {
                    if let Some(mut o) = replaced {
                        for p in o.peers.values_mut() {
                            retire_outer(&mut self.retired_pairs, p);
                        }
                    }
                    let private_key = StaticSecret::from(sk);
                    let public_key = PublicKey::from(&private_key);
                    fresh = true;
                    Gateway {
                        key: key.clone(),
                        gateway_type: g.gateway_type,
                        listen_port: g.listen_port,
                        rate_limiter: Arc::new(RateLimiter::new(&public_key, HANDSHAKE_RATE_LIMIT)),
                        private_key,
                        public_key,
                        peers: BTreeMap::new(),
                        by_public: BTreeMap::new(),
                        forwarding: ForwardingTable::default(),
                        bucket: TokenBucket::new(g.bandwidth_limit_bps),
                        counters: Counters::default(),
                        last_rl_reset: now,
                        handshakes_this_second: 0,
                        budget: Default::default(),
                        by_endpoint: BTreeMap::new(),
                        mtu: usize::from(g.tunnel_mtu),
                        mss_clamp: g.mss_clamp,
                        private_v4: None,
                        private_v6: None,
                        icmp: IcmpLimiter::default(),
                        icmp_buf: Vec::new(),
                        peer_silence: self.peer_silence,
                        failover: None,
                        handover_wanted: false,
                        probation_until: None,
                        serves_on_standby: false,
                        acted_active: true,
                        esp_in: BTreeMap::new(),
                        ike_in: BTreeMap::new(),
                        ipsec_by_ip: BTreeMap::new(),
                    }
                }
            };
            if let Err(error) = self.apply_instance(&mut gw, g, fresh, now) {
                for p in gw.peers.values_mut() {
                    retire_outer(&mut self.retired_pairs, p);
                }
                errors.push(ApplyError::BadInstance {
                    gateway: key,
                    error,
                });
                continue;
            }
            if fresh {
                // A new gateway starts in its role: nothing to undo.
                gw.acted_active = !gw.is_standby();
            }
            let gw = self.reconfigure(gw, g, now, options, &mut errors);
            ports.insert(g.listen_port, key.clone());
            new.insert(key, gw);
        }
        for (key, mut g) in old {
            for p in g.peers.values_mut() {
                self.close_ipsec(g.listen_port, p, now);
                retire_outer(&mut self.retired_pairs, p);
            }
            tracing::info!(gateway = %key, "gateway removed");
        }
        self.gateways = new;
        self.by_port = ports;
        self.tun_owner = self
            .gateways
            .iter()
            .flat_map(|(k, g)| g.forwarding.vnet_prefixes().iter().map(|p| (*p, k.clone())))
            .collect();
        self.redundant = self
            .gateways
            .iter()
            .filter(|(_, g)| g.failover.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        self.settle(now);
        self.version = desired.version;
        if self.next_tick.is_none() {
            self.next_tick = Some(now);
        }
        errors
    }

    fn reconfigure(
        &mut self,
        mut gw: Gateway,
        g: &GatewayDesired,
        now: Instant,
        options: ApplyOptions,
        errors: &mut Vec<ApplyError>,
    ) -> Gateway {
        gw.gateway_type = g.gateway_type;
        gw.listen_port = g.listen_port;
        gw.mtu = usize::from(g.tunnel_mtu);
        gw.mss_clamp = g.mss_clamp;
        gw.private_v4 = g.private_address.filter(IpAddr::is_ipv4);
        gw.private_v6 = g.private_address.filter(IpAddr::is_ipv6);
        gw.peer_silence = self.peer_silence;
        if gw.bucket.bits_per_second() != g.bandwidth_limit_bps / 8 * 8 {
            gw.bucket = TokenBucket::new(g.bandwidth_limit_bps);
        }
        let mut old_peers = std::mem::take(&mut gw.peers);
        let old_by_public = std::mem::take(&mut gw.by_public);
        let mut refs: BTreeMap<PeerRef, u32> = BTreeMap::new();
        // Issue 17: IPsec peers are found again by name (they have no public key).
        let old_ipsec: BTreeMap<String, u32> = old_peers
            .values()
            .filter(|p| p.ipsec.is_some())
            .map(|p| (p.name.clone(), p.id))
            .collect();
        for p in &g.peers {
            if let Some(ipsec) = &p.ipsec {
                let old = old_ipsec.get(&p.name).and_then(|id| old_peers.remove(id));
                let idle = p.idle_timeout_secs.map(|s| {
                    options
                        .idle_override
                        .unwrap_or(Duration::from_secs(u64::from(s)))
                });
                match self.ipsec_peer(&gw, g, p, ipsec, old, idle, now) {
                    Ok(peer) => {
                        refs.insert(PeerRef::of_peer(p), peer.id);
                        gw.peers.insert(peer.id, peer);
                    }
                    Err(error) => errors.push(ApplyError::Ipsec {
                        gateway: gw.key.clone(),
                        peer: p.name.clone(),
                        error,
                    }),
                }
                continue;
            }
            let Some(pk) = decode32(&p.public_key) else {
                errors.push(ApplyError::BadPublicKey {
                    gateway: gw.key.clone(),
                    peer: p.name.clone(),
                });
                continue;
            };
            let psk = match &p.preshared_key {
                None => None,
                Some(s) => match decode32(s.expose()) {
                    Some(k) => Some(k),
                    None => {
                        errors.push(ApplyError::BadPresharedKey {
                            gateway: gw.key.clone(),
                            peer: p.name.clone(),
                        });
                        continue;
                    }
                },
            };
            if let Some(other) = gw.by_public.get(&pk).and_then(|id| gw.peers.get(id)) {
                errors.push(ApplyError::DuplicatePeer {
                    gateway: gw.key.clone(),
                    peer: p.name.clone(),
                    other: other.name.clone(),
                });
                continue;
            }
            let kept = match old_by_public.get(&pk).and_then(|id| old_peers.remove(id)) {
                Some(o) if o.psk == psk && o.keepalive == p.persistent_keepalive_secs => Some(o),
                Some(mut replaced) => {
                    // A new tunnel replaces it: its metered bytes stay counted (LIM-6).
                    retire_outer(&mut self.retired_pairs, &mut replaced);
                    None
                }
                None => None,
            };
            let peer = match kept {
                Some(mut o) => {
                    if o.region_pair != p.region_pair {
                        retire_outer(&mut self.retired_pairs, &mut o);
                    }
                    let moved = o.endpoint;
                    update_peer(&mut o, p, options);
                    // A tunnel that must stay up whose endpoint the server moved (its remote
                    // gateway failed over, issue 16) handshakes there at once rather than
                    // at boringtun's next retry, 5 s later.
                    if o.endpoint != moved
                        && o.keepalive.is_some()
                        && !gw.is_standby()
                        && let (Some(dst), Some(tunn)) = (o.endpoint, o.tunn.as_mut())
                        && let TunnResult::WriteToNetwork(pkt) =
                            tunn.format_handshake_initiation(&mut self.buf, true)
                    {
                        o.outer_tx += pkt.len() as u64;
                        o.live.sent(pkt, now);
                        self.out.transmit(g.listen_port, dst, pkt);
                    }
                    o
                }
                None => {
                    let id = self.alloc_index();
                    // A peer with no endpoint (a roaming client) gets its tunnel when it
                    // handshakes; one we can reach gets it now.
                    let tunn = p
                        .endpoint
                        .is_some()
                        .then(|| gw.new_tunn(pk, psk, p.persistent_keepalive_secs, id));
                    let mut peer = Peer {
                        id,
                        name: p.name.clone(),
                        public_key: pk,
                        psk,
                        keepalive: p.persistent_keepalive_secs,
                        tunn,
                        idled: false,
                        endpoint: None,
                        configured_endpoint: None,
                        last_endpoint: None,
                        on_every_instance: false,
                        endpoint_unresolved: false,
                        allowed: LpmTable::new(),
                        selectors: Vec::new(),
                        idle_timeout: None,
                        last_traffic: now,
                        last_handshake: None,
                        rx_bytes: 0,
                        tx_bytes: 0,
                        region_pair: None,
                        outer_rx: 0,
                        outer_tx: 0,
                        live: Liveness::new(now),
                        takeover: None,
                        ipsec: None,
                    };
                    update_peer(&mut peer, p, options);
                    // Tunnels that must stay up (a keepalive is set) start their handshake now;
                    // a standby's wait until it takes over (issue 16), but for those that run
                    // on every instance (item 6).
                    if (!gw.is_standby() || peer.on_every_instance)
                        && let (Some(_), Some(dst), Some(tunn)) =
                            (peer.keepalive, peer.endpoint, peer.tunn.as_mut())
                        && let TunnResult::WriteToNetwork(pkt) =
                            tunn.format_handshake_initiation(&mut self.buf, false)
                    {
                        peer.outer_tx += pkt.len() as u64;
                        peer.live.sent(pkt, now);
                        self.out.transmit(g.listen_port, dst, pkt);
                    }
                    peer.refresh(&gw.key, self.peer_silence, now, &mut self.out);
                    peer
                }
            };
            refs.insert(PeerRef::of_peer(p), peer.id);
            gw.by_public.insert(pk, peer.id);
            gw.peers.insert(peer.id, peer);
        }
        for (_, mut p) in old_peers {
            self.close_ipsec(gw.listen_port, &mut p, now);
            retire_outer(&mut self.retired_pairs, &mut p);
            tracing::info!(gateway = %gw.key, peer = %p.name, "peer removed");
        }
        gw.forwarding = ForwardingTable::build(&g.routes, &refs);
        gw.serves_on_standby = gw.peers.values().any(|p| p.on_every_instance);
        gw.by_endpoint = gw
            .peers
            .values()
            .filter(|p| p.ipsec.is_none())
            .filter_map(|p| Some((p.endpoint?, p.id)))
            .collect();
        super::ipsec::rebuild_maps(&mut gw);
        gw
    }
}

fn update_peer(peer: &mut Peer, p: &PeerDesired, options: ApplyOptions) {
    peer.name = p.name.clone();
    peer.region_pair = p.region_pair.clone();
    peer.on_every_instance = p.on_every_instance;
    // A loopback endpoint is the old worker's TCP relay (P2S-4): meaningless on this host.
    peer.last_endpoint = p
        .last_endpoint
        .as_deref()
        .and_then(|e| e.parse::<SocketAddr>().ok())
        .filter(|a| !a.ip().is_loopback() && !a.ip().is_unspecified());
    peer.allowed = p.allowed_ips.iter().map(|n| (*n, ())).collect();
    peer.selectors = p.policy_selectors.clone();
    peer.idle_timeout = p.idle_timeout_secs.map(|s| {
        options
            .idle_override
            .unwrap_or(Duration::from_secs(u64::from(s)))
    });
    if peer.configured_endpoint != p.endpoint {
        peer.configured_endpoint = p.endpoint.clone();
        let parsed = p.endpoint.as_deref().map(str::parse::<SocketAddr>);
        peer.endpoint_unresolved = matches!(parsed, Some(Err(_)));
        match parsed {
            Some(Ok(a)) => peer.endpoint = Some(a),
            Some(Err(_)) => {
                tracing::warn!(peer = %p.name, endpoint = ?p.endpoint, "peer endpoint is not an address:port (host names must be resolved by the shell); waiting for the peer to connect");
            }
            None => {}
        }
    }
}
