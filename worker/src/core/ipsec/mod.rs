//! Site-to-site IPsec tunnels in the core (issue 17): one more kind of tunnel beside
//! WireGuard, on the same gateway port, forwarding table, bucket and counters.
//!
//! - [`config`]: a peer's settings from its desired state ([`isthmus_shared::desired::IpsecPeerDesired`]).
//! - [`tunnel`]: the sans-IO driver of one connection (IKE SAs, CHILD SAs, timers).
//! - [`child`]: a CHILD SA's ESP halves and counters.
//! - `gateway.rs`: the glue with [`super::Core`]'s gateways: demultiplexing of the gateway
//!   port, ESP in and out, timers, the connection's state.
//!
//! Demultiplexing of a datagram on the gateway port (`gateway.rs`): four zero bytes (the
//! RFC 3948 non-ESP marker) → IKE after the marker; the first four bytes an inbound SPI the
//! gateway allocated → ESP; a single 0xff → NAT-T keepalive (ignored); otherwise WireGuard,
//! unless it is no WireGuard message and parses as an IKEv2 header → IKE without the marker.
//! The gateway never allocates an inbound SPI below 256 or of the form [1..=4, 0, 0, 0]
//! ([`SpiGuard`]); nor one whose first byte is 0 or 1, so the shell's socket steering keeps
//! ESP on the data queue.

pub mod child;
pub mod config;
mod events;
mod gateway;
mod timers;
pub mod tunnel;

use std::collections::BTreeMap;
use std::time::Instant;

use isthmus_shared::desired::{ChildSaStatus, IpsecStatus, SaState};

use super::ike::crypto::{Aead, CryptoError, DhGroup, Entropy, Prf};
use super::ike::proposal::IkeSuite;
use super::ike::wire::TrafficSelector;

pub use self::child::spi_allowed;
pub(super) use self::gateway::rebuild_maps;
pub use self::tunnel::{Link, Tunnel};

/// An entropy source that refuses: the core's until the shell gives it one
/// ([`super::Core::set_entropy`]); IPsec tunnels cannot start without randomness.
pub struct NoEntropy;

impl Entropy for NoEntropy {
    fn fill(&mut self, _: &mut [u8]) -> Result<(), CryptoError> {
        Err(CryptoError::Entropy)
    }
}

/// The caller's entropy, with every 4-byte draw (what the exchanges draw CHILD SA SPIs
/// with) redrawn until it is an SPI the gateway may allocate: not reserved, not shaped like a
/// WireGuard message header ([`spi_allowed`]) and not already one of the gateway's.
pub struct SpiGuard<'a> {
    pub inner: &'a mut dyn Entropy,
    pub taken: &'a BTreeMap<u32, u32>,
}

impl Entropy for SpiGuard<'_> {
    fn fill(&mut self, out: &mut [u8]) -> Result<(), CryptoError> {
        self.inner.fill(out)?;
        if let Ok(b) = <[u8; 4]>::try_from(&*out) {
            let mut v = u32::from_be_bytes(b);
            // Bounded: the odds of a refused value are tiny.
            for _ in 0..64 {
                if spi_allowed(v) && !self.taken.contains_key(&v) {
                    break;
                }
                self.inner.fill(out)?;
                let mut b = [0u8; 4];
                b.copy_from_slice(out);
                v = u32::from_be_bytes(b);
            }
        }
        Ok(())
    }
}

fn aead_keyword(a: Aead) -> &'static str {
    match a {
        Aead::AesGcm16_128 => "aes128gcm16",
        Aead::AesGcm16_256 => "aes256gcm16",
        Aead::ChaCha20Poly1305 => "chacha20poly1305",
    }
}

fn suite_keyword(s: IkeSuite) -> String {
    let prf = match s.prf {
        Prf::HmacSha256 => "prfsha256",
        Prf::HmacSha384 => "prfsha384",
    };
    let dh = match s.dh {
        DhGroup::Modp2048 => "modp2048",
        DhGroup::Ecp256 => "ecp256",
        DhGroup::Ecp384 => "ecp384",
        DhGroup::Curve25519 => "curve25519",
    };
    format!("{}-{prf}-{dh}", aead_keyword(s.aead))
}

/// A selector as a prefix when it is one, else as `start-end`.
fn ts_text(t: &TrafficSelector) -> String {
    let full = |bits: u32| ipnet::IpNet::new(t.start, bits as u8).ok();
    let max = if t.start.is_ipv4() { 32 } else { 128 };
    for bits in 0..=max {
        if let Some(n) = full(bits)
            && n.network() == t.start
            && n.broadcast() == t.end
        {
            return n.to_string();
        }
    }
    format!("{}-{}", t.start, t.end)
}

impl Tunnel {
    /// The connection's IPsec status; `unix` turns a moment into Unix seconds.
    pub fn status(&self, unix: &dyn Fn(Instant) -> Option<u64>) -> IpsecStatus {
        let primary = self.primary_info();
        let ike_state = if primary.is_some() {
            SaState::Established
        } else if self.connecting() {
            SaState::Connecting
        } else {
            SaState::None
        };
        // A CHILD SA of an IKE SA being deleted (replaced, or the loser of a duplicate) goes
        // with it: deleting, though its IKE SA's Delete may wait for an answer a device that
        // restarted never sends.
        let retiring = |c: &child::Child| self.sas.iter().any(|s| s.id == c.ike && s.retiring);
        let children = self
            .children
            .iter()
            .map(|c| ChildSaStatus {
                inbound_spi: format!("{:08x}", c.inbound_spi),
                outbound_spi: format!("{:08x}", c.outbound_spi),
                state: if c.deleting || c.delete_due || retiring(c) {
                    SaState::Deleting
                } else if c.rekeying || c.replaced {
                    SaState::Rekeying
                } else {
                    SaState::Established
                },
                cipher: aead_keyword(c.suite.aead).to_owned(),
                selectors: c
                    .local_ts
                    .iter()
                    .flat_map(|l| {
                        c.remote_ts
                            .iter()
                            .map(move |r| format!("{} === {}", ts_text(l), ts_text(r)))
                    })
                    .collect(),
                established_unix: unix(c.established).unwrap_or_default(),
                rekey_unix: unix(self.child_rekey_at(c)).unwrap_or_default(),
                rx_bytes: c.rx_bytes,
                tx_bytes: c.tx_bytes,
                rx_packets: c.rx_packets,
                tx_packets: c.tx_packets,
            })
            .collect();
        IpsecStatus {
            ike_state,
            ike_spis: primary.map(|p| format!("{:016x}_{:016x}", p.0.0, p.0.1)),
            ike_proposal: primary.map(|p| suite_keyword(p.1)),
            initiator: primary.is_some_and(|p| p.2),
            ike_established_unix: primary.and_then(|p| unix(p.3)),
            ike_rekey_unix: primary.and_then(|p| unix(p.4)),
            children,
            rekeys: self.rekeys,
            last_error: self.last_error.as_ref().map(|e| e.0.clone()),
            last_error_unix: self.last_error.as_ref().and_then(|e| unix(e.1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_read_as_prefixes() {
        let t = TrafficSelector::from_net("10.1.0.0/16".parse().expect("net"));
        assert_eq!(ts_text(&t), "10.1.0.0/16");
        assert_eq!(ts_text(&TrafficSelector::any(false)), "0.0.0.0/0");
        assert_eq!(ts_text(&TrafficSelector::any(true)), "::/0");
    }

    struct Counting(u32);
    impl Entropy for Counting {
        fn fill(&mut self, out: &mut [u8]) -> Result<(), CryptoError> {
            // 0x01000000 first (a WireGuard-shaped SPI), then 0x00000005, then 0x12345678.
            let v: u32 = match self.0 {
                0 => 0x0100_0000,
                1 => 5,
                _ => 0x1234_5678,
            };
            self.0 += 1;
            for (i, b) in out.iter_mut().enumerate() {
                *b = v.to_be_bytes()[i % 4];
            }
            Ok(())
        }
    }

    #[test]
    fn the_spi_guard_redraws_spis_the_gateway_must_not_allocate() {
        let mut inner = Counting(0);
        let taken = BTreeMap::new();
        let mut g = SpiGuard {
            inner: &mut inner,
            taken: &taken,
        };
        let mut b = [0u8; 4];
        g.fill(&mut b).expect("fill");
        assert_eq!(u32::from_be_bytes(b), 0x1234_5678);
        // Other sizes pass through.
        let mut inner = Counting(0);
        let mut g = SpiGuard {
            inner: &mut inner,
            taken: &taken,
        };
        let mut n = [0u8; 8];
        g.fill(&mut n).expect("fill");
        assert_eq!(n[0], 1);
    }
}
