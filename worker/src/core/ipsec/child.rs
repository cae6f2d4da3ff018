//! The CHILD SAs of one IPsec connection: the ESP halves keyed by the exchanges, and what
//! went through them.

use std::time::Instant;

use crate::core::esp::replay::ReplayError;
use crate::core::esp::{self, EspError, Inbound, Outbound};
use crate::core::ike::exchange::ChildSa;
use crate::core::ike::proposal::EspSuite;
use crate::core::ike::wire::TrafficSelector;

/// An IKE SA, by its SPIs (initiator's, responder's).
pub type IkeId = (u64, u64);

/// Why an ESP datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EspDrop {
    /// Too short, bad padding.
    Malformed,
    /// No CHILD SA of the gateway has this SPI.
    UnknownSpi,
    /// The ICV did not verify (a forgery, a corrupted datagram, another key).
    Integrity,
    /// A sequence number seen before or left of the window.
    Replay,
    /// A dummy packet (RFC 4303 2.6): nothing to forward, not an error.
    Dummy,
}

impl From<EspError> for EspDrop {
    fn from(e: EspError) -> Self {
        match e {
            EspError::WrongSpi => Self::UnknownSpi,
            EspError::Integrity | EspError::Crypto(_) => Self::Integrity,
            EspError::Replay(ReplayError::Replayed | ReplayError::TooOld) => Self::Replay,
            EspError::Dummy => Self::Dummy,
            _ => Self::Malformed,
        }
    }
}

/// One CHILD SA: both ESP halves and their counters.
pub struct Child {
    pub ike: IkeId,
    pub suite: EspSuite,
    pub inbound_spi: u32,
    pub outbound_spi: u32,
    pub local_ts: Vec<TrafficSelector>,
    pub remote_ts: Vec<TrafficSelector>,
    pub out: Outbound,
    pub inb: Inbound,
    pub established: Instant,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub tx_packets: u64,
    /// Our CREATE_CHILD_SA rekey of it is outstanding.
    pub rekeying: bool,
    /// A newer CHILD SA replaced it: it carries nothing out and still opens what comes in
    /// until it is deleted (no packet lost in a rekey).
    pub replaced: bool,
    /// We started its rekey, so we delete it (RFC 7296 2.8); not sent yet.
    pub delete_due: bool,
    /// Our Delete of it is sent.
    pub deleting: bool,
    /// When it was first seen due for a rekey.
    pub due_since: Option<Instant>,
}

impl Child {
    pub fn new(ike: IkeId, c: &ChildSa, now: Instant) -> Result<Self, EspError> {
        Ok(Self {
            ike,
            suite: c.suite,
            inbound_spi: c.inbound_spi,
            outbound_spi: c.outbound_spi,
            local_ts: c.local_ts.clone(),
            remote_ts: c.remote_ts.clone(),
            out: Outbound::new(c.suite.aead, c.outbound_spi, &c.outbound_key)?,
            inb: Inbound::new(c.suite.aead, c.inbound_spi, &c.inbound_key)?,
            established: now,
            rx_bytes: 0,
            tx_bytes: 0,
            rx_packets: 0,
            tx_packets: 0,
            rekeying: false,
            replaced: false,
            delete_due: false,
            deleting: false,
            due_since: None,
        })
    }

    /// Whether packets to the peer may go out on it.
    pub fn carries(&self) -> bool {
        !self.replaced && !self.deleting && !self.delete_due
    }

    /// Seals `inner` into `out` (an ESP packet: the UDP payload, RFC 3948).
    pub fn seal(&mut self, inner: &[u8], out: &mut Vec<u8>) -> Result<(), EspError> {
        let next = if inner.first().is_some_and(|b| b >> 4 == 6) {
            esp::NEXT_IPV6
        } else {
            esp::NEXT_IPV4
        };
        self.out.seal(inner, next, out)?;
        self.tx_bytes += inner.len() as u64;
        self.tx_packets += 1;
        Ok(())
    }

    /// Opens an ESP packet in place; the inner packet's range.
    pub fn open(&mut self, packet: &mut [u8]) -> Result<std::ops::Range<usize>, EspDrop> {
        let opened = self.inb.open(packet).map_err(EspDrop::from)?;
        self.rx_bytes += opened.inner.len() as u64;
        self.rx_packets += 1;
        Ok(opened.inner)
    }

    /// Bytes through it in its busier direction (what a lifetime in bytes counts).
    pub fn bytes(&self) -> u64 {
        self.rx_bytes.max(self.tx_bytes)
    }
}

/// Whether an inbound SPI may be allocated by this gateway: not reserved (< 256, RFC 4303
/// 2.1), not the first four bytes of a WireGuard message (type 1-4, then three zero bytes),
/// which the gateway's port demultiplexes as WireGuard, and not starting with a byte of 0 or
/// 1, which the shell's socket steering sends to the queue of untrusted datagrams (the
/// non-ESP marker, WireGuard initiations).
pub fn spi_allowed(spi: u32) -> bool {
    let b = spi.to_be_bytes();
    b[0] >= 2 && !(matches!(b[0], 2..=4) && b[1..] == [0, 0, 0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spis_that_look_like_wireguard_or_are_reserved_are_refused() {
        for s in [
            0u32,
            1,
            255,
            0x0100_0000,
            0x0200_0000,
            0x0300_0000,
            0x0400_0000,
        ] {
            assert!(!spi_allowed(s), "{s:#x}");
        }
        // The untrusted queue's first bytes (0: the non-ESP marker; 1: initiations).
        for s in [256u32, 0x00ff_ffff, 0x0100_0001, 0x01ff_ffff] {
            assert!(!spi_allowed(s), "{s:#x}");
        }
        for s in [0x0200_0001u32, 0x0500_0000, 0xc1a2_b3d4] {
            assert!(spi_allowed(s), "{s:#x}");
        }
    }
}
