//! NAT detection (RFC 7296 2.23): IKE_SA_INIT carries NAT_DETECTION_SOURCE_IP and
//! NAT_DETECTION_DESTINATION_IP, SHA-1 digests of the header's SPIs and the address and port
//! the message is sent from and to. A side whose own address does not match the peer's
//! DESTINATION digest is behind a NAT; a peer none of whose SOURCE digests matches the
//! address the message came from is. Either way ESP and IKE move to UDP encapsulation on port
//! 4500 (RFC 3948). A side that wants encapsulation regardless (Isthmus: NAT-T always on)
//! sends a SOURCE digest that cannot match (2.23, "pretend to be behind a NAT").

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::wire::{Notify, NotifyType, Payload};

/// What NAT detection found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Nat {
    /// Our address is translated on the way to the peer.
    pub local_behind: bool,
    /// The peer's address is translated (or the peer asks for encapsulation).
    pub peer_behind: bool,
}

impl Nat {
    /// Whether IKE (after IKE_SA_INIT) and ESP go over UDP port 4500 (2.23, RFC 3948).
    pub fn encapsulate(self) -> bool {
        self.local_behind || self.peer_behind
    }
}

/// SHA-1(SPIi | SPIr | IP address | port) (2.23; SHA-1 as the RFC fixes it, not for
/// secrecy).
pub fn digest(spi_i: u64, spi_r: u64, addr: SocketAddr) -> Vec<u8> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(&spi_i.to_be_bytes());
    ctx.update(&spi_r.to_be_bytes());
    match addr.ip() {
        IpAddr::V4(a) => ctx.update(&a.octets()),
        IpAddr::V6(a) => ctx.update(&a.octets()),
    }
    ctx.update(&addr.port().to_be_bytes());
    ctx.finish().as_ref().to_vec()
}

/// The two notifications of a message sent from `local` to `remote` with these SPIs;
/// `force`: a SOURCE digest that matches no address, so the peer encapsulates.
pub fn notifies(
    spi_i: u64,
    spi_r: u64,
    local: SocketAddr,
    remote: SocketAddr,
    force: bool,
) -> [Payload; 2] {
    let source = if force {
        // No packet comes from port 0 of the unspecified address.
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
    } else {
        local
    };
    [
        Payload::Notify(Notify::new(
            NotifyType::NAT_DETECTION_SOURCE_IP,
            digest(spi_i, spi_r, source),
        )),
        Payload::Notify(Notify::new(
            NotifyType::NAT_DETECTION_DESTINATION_IP,
            digest(spi_i, spi_r, remote),
        )),
    ]
}

/// What the NAT detection notifications of a message received at `local` from `remote` say;
/// None when it has none (the peer does not do NAT traversal).
pub fn detect(
    payloads: &[Payload],
    spi_i: u64,
    spi_r: u64,
    local: SocketAddr,
    remote: SocketAddr,
) -> Option<Nat> {
    let mut sources = Vec::new();
    let mut destination = None;
    for p in payloads {
        match p {
            Payload::Notify(n) if n.kind == NotifyType::NAT_DETECTION_SOURCE_IP => {
                sources.push(n.data.as_slice());
            }
            Payload::Notify(n) if n.kind == NotifyType::NAT_DETECTION_DESTINATION_IP => {
                destination = Some(n.data.as_slice());
            }
            _ => {}
        }
    }
    let destination = destination?;
    if sources.is_empty() {
        return None;
    }
    let from = digest(spi_i, spi_r, remote);
    let to = digest(spi_i, spi_r, local);
    Some(Nat {
        local_behind: destination != to.as_slice(),
        peer_behind: !sources.contains(&from.as_slice()),
    })
}
