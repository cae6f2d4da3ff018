//! P2S-4: the point-to-site TCP transport, for clients whose UDP is blocked. WireGuard
//! datagrams travel inside TLS on TCP (port 443 by default, so the flow looks like HTTPS to
//! firewalls and proxies), each as one frame: a big-endian `u16` length, then the datagram.
//!
//! The exchange, after the TLS handshake:
//! 1. the client sends a [`Hello`] ([`HELLO_LEN`] bytes: [`HELLO_MAGIC`], then the gateway's
//!    UDP port as a big-endian `u16`, then two zero bytes);
//! 2. the worker answers with one [`HelloReply`] byte;
//! 3. both sides send frames until either closes.
//!
//! TLS is there to pass firewalls, not for security: WireGuard authenticates and encrypts end
//! to end, so the client does not verify the worker's certificate (a man in the middle sees
//! only WireGuard messages it can neither read nor forge). Both ends accept only frames that
//! have the shape of a WireGuard message ([`is_wireguard_message`]) and count the others.
//! Pure: no I/O; the worker's relay and `isthmus-client connect` do the sockets.

/// The default TCP port of the transport (HTTPS's).
pub const DEFAULT_TCP_PORT: u16 = 443;

/// The first four bytes a client sends.
pub const HELLO_MAGIC: [u8; 4] = *b"IWG1";

/// The length of the client's hello.
pub const HELLO_LEN: usize = 8;

/// The largest frame payload (the `u16` length field's range).
pub const MAX_FRAME: usize = u16::MAX as usize;

/// The wg-quick comment key under which a client package names a peer's TCP endpoint.
pub const TCP_ENDPOINT_KEY: &str = "TcpEndpoint";

/// The client's first message: which gateway (by its UDP port on the worker) to reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    pub gateway_port: u16,
}

/// Why a hello is not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HelloError {
    #[error(
        "the peer did not start with the Isthmus TCP transport hello (`IWG1`): it is not an \
         isthmus-client, or a proxy changed the stream"
    )]
    BadMagic,
    #[error("the hello's reserved bytes are not zero: a newer, unknown protocol version")]
    Reserved,
}

impl Hello {
    pub fn encode(&self) -> [u8; HELLO_LEN] {
        let p = self.gateway_port.to_be_bytes();
        let m = HELLO_MAGIC;
        [m[0], m[1], m[2], m[3], p[0], p[1], 0, 0]
    }

    pub fn decode(b: &[u8; HELLO_LEN]) -> Result<Self, HelloError> {
        if b[..4] != HELLO_MAGIC {
            return Err(HelloError::BadMagic);
        }
        if b[6..] != [0, 0] {
            return Err(HelloError::Reserved);
        }
        Ok(Self {
            gateway_port: u16::from_be_bytes([b[4], b[5]]),
        })
    }
}

/// The worker's one-byte answer to a [`Hello`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelloReply {
    /// Frames may flow.
    Accepted,
    /// No gateway with point-to-site clients listens on that UDP port on this worker.
    UnknownGateway,
}

impl HelloReply {
    pub fn to_byte(self) -> u8 {
        match self {
            Self::Accepted => 0,
            Self::UnknownGateway => 1,
        }
    }

    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Self::Accepted),
            1 => Some(Self::UnknownGateway),
            _ => None,
        }
    }
}

/// The length header of a frame carrying `payload_len` bytes, or `None` when it does not fit
/// in one frame.
pub fn frame_header(payload_len: usize) -> Option<[u8; 2]> {
    u16::try_from(payload_len).ok().map(u16::to_be_bytes)
}

/// Appends one frame carrying `payload` to `out`; `false` (and nothing appended) when it does
/// not fit in one. The sending half of the codec both ends use.
pub fn push_frame(out: &mut Vec<u8>, payload: &[u8]) -> bool {
    match frame_header(payload.len()) {
        Some(h) => {
            out.extend_from_slice(&h);
            out.extend_from_slice(payload);
            true
        }
        None => false,
    }
}

/// The receiving half of the codec: bytes read from the stream go in ([`FrameDecoder::buffer`]
/// and [`FrameDecoder::filled`]), whole frames come out ([`FrameDecoder::next_frame`]).
#[derive(Debug, Clone, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Where the first unread byte of `buf` is.
    start: usize,
    /// How many bytes of `buf` hold data.
    end: usize,
}

impl FrameDecoder {
    /// The most bytes [`FrameDecoder::buffer`] asks for at once.
    const READ: usize = 16 * 1024;

    pub fn new() -> Self {
        Self::default()
    }

    /// Room for the next read from the stream (never empty); tell [`FrameDecoder::filled`]
    /// how many bytes went in.
    pub fn buffer(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 && self.buf.len() - self.end < Self::READ {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < Self::READ {
            self.buf.resize(self.end + Self::READ, 0);
        }
        &mut self.buf[self.end..]
    }

    /// `n` bytes were read into [`FrameDecoder::buffer`].
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// The payload of the next whole frame, if one has arrived.
    pub fn next_frame(&mut self) -> Option<&[u8]> {
        let data = self.buf.get(self.start..self.end)?;
        let (&[hi, lo], rest) = data.split_first_chunk::<2>()?;
        let n = usize::from(u16::from_be_bytes([hi, lo]));
        if rest.len() < n {
            return None;
        }
        let from = self.start + 2;
        self.start = from + n;
        self.buf.get(from..from + n)
    }

    /// Whether bytes of a frame not yet whole are buffered (the stream ended inside a frame).
    pub fn is_partial(&self) -> bool {
        self.start != self.end
    }
}

/// Whether `msg` has the shape of a WireGuard message (type byte and reserved zeros, and the
/// exact or minimum size of its type). Anything else is not relayed.
pub fn is_wireguard_message(msg: &[u8]) -> bool {
    let Some(([t, 0, 0, 0], _)) = msg.split_first_chunk::<4>() else {
        return false;
    };
    match t {
        // Handshake initiation, response, cookie reply.
        1 => msg.len() == 148,
        2 => msg.len() == 92,
        3 => msg.len() == 64,
        // Transport data: header 16, then the payload and its 16-byte tag. The payload should
        // be padded to 16 bytes, but boringtun (the worker's own WireGuard) does not pad.
        4 => msg.len() >= 32,
        _ => false,
    }
}
