//! UDP encapsulation of IKE and ESP on one port (RFC 3948, port 4500): a datagram that starts
//! with four zero bytes (the non-ESP marker, 2.2) carries an IKE message; a single 0xFF byte
//! is a NAT-keepalive (2.3); anything else is an ESP packet, whose SPI is never zero (2.1).

/// The non-ESP marker (RFC 3948 2.2).
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];
/// A NAT-keepalive's payload (RFC 3948 2.3).
pub const KEEPALIVE: [u8; 1] = [0xff];

/// What a datagram on the encapsulation port carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datagram<'a> {
    /// An IKE message, after the non-ESP marker.
    Ike(&'a [u8]),
    /// An ESP packet (from its SPI).
    Esp(&'a [u8]),
    Keepalive,
    /// Too short for either (ESP needs at least SPI and Sequence Number).
    Malformed,
}

/// Classifies a datagram received on the encapsulation port.
pub fn classify(datagram: &[u8]) -> Datagram<'_> {
    if datagram == KEEPALIVE {
        return Datagram::Keepalive;
    }
    match datagram.get(..4) {
        Some(m) if m == NON_ESP_MARKER => Datagram::Ike(datagram.get(4..).unwrap_or_default()),
        Some(_) if datagram.len() >= super::HEADER_LEN => Datagram::Esp(datagram),
        _ => Datagram::Malformed,
    }
}

/// An IKE message framed for the encapsulation port: the non-ESP marker, then the message.
pub fn frame_ike(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + message.len());
    out.extend_from_slice(&NON_ESP_MARKER);
    out.extend_from_slice(message);
    out
}
