//! The heartbeat datagram: its layout, its HMAC-SHA256 (ring), and a parser of untrusted bytes
//! that returns errors and never panics.
//!
//! Layout (integers big-endian):
//!
//! | bytes        | field                                                                 |
//! |--------------|-----------------------------------------------------------------------|
//! | 0..4         | magic `ISHB`                                                          |
//! | 4            | version, 1                                                            |
//! | 5            | flags: bit 0 active, bit 1 handover request, bit 2 handover ack; the other bits must be 0 |
//! | 6            | the sender's instance index (0 or 1)                                  |
//! | 7            | tenant length T (1..=255)                                             |
//! | 8            | gateway name length N (1..=255)                                       |
//! | 9..17        | term                                                                  |
//! | 17..25       | sequence number                                                       |
//! | 25..41       | boot id                                                               |
//! | 41..57       | echo: the boot id of the partner's latest heartbeat received          |
//! | 57..65       | echo: its sequence number (0: none received yet)                      |
//! | 65..65+T     | tenant (UTF-8)                                                        |
//! | ..+N         | gateway name (UTF-8)                                                  |
//! | last 32      | HMAC-SHA256 under the gateway's key of every byte before it           |
//!
//! No timestamp travels: the receiver judges silence by its own monotonic clock only. The echo
//! orders the partner's runs without clocks (see the module above): a heartbeat from a boot id the
//! receiver does not know yet counts only once it echoes the receiver's own current boot id.
//! Sequence numbers start at 1.

use std::fmt;

use isthmus_shared::instances::{HeartbeatKey, InstanceRole};
use isthmus_shared::model::QualifiedName;
use ring::hmac;

/// The first four bytes of every heartbeat.
pub const MAGIC: [u8; 4] = *b"ISHB";
/// The layout's version.
pub const VERSION: u8 = 1;
/// The length of the MAC at the end.
pub const MAC_LEN: usize = 32;
/// The length of a boot id.
pub const BOOT_ID_LEN: usize = 16;
/// Bytes before the tenant.
const HEADER_LEN: usize = 65;
/// The shortest heartbeat: one-byte tenant and name.
pub const MIN_LEN: usize = HEADER_LEN + 2 + MAC_LEN;
/// The longest heartbeat.
pub const MAX_LEN: usize = HEADER_LEN + 2 * 255 + MAC_LEN;

const FLAG_ACTIVE: u8 = 1;
const FLAG_HANDOVER: u8 = 2;
const FLAG_ACK: u8 = 4;
const KNOWN_FLAGS: u8 = FLAG_ACTIVE | FLAG_HANDOVER | FLAG_ACK;

/// A per-run random identifier of an instance, supplied by the caller (the core has no
/// randomness of its own): a restarted instance starts a new sequence under a new boot id.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BootId(pub [u8; BOOT_ID_LEN]);

impl fmt::Debug for BootId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0[..4] {
            write!(f, "{b:02x}")?;
        }
        f.write_str("…")
    }
}

/// One heartbeat's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    pub gateway: QualifiedName,
    /// The sender's instance index.
    pub instance: u8,
    pub term: u64,
    pub role: InstanceRole,
    pub boot: BootId,
    pub seq: u64,
    /// The (active) sender asks its partner to take over: a planned drain.
    pub handover: bool,
    /// The (new active) sender took over because its partner asked.
    pub handover_ack: bool,
    /// The boot id and sequence number of the latest heartbeat the sender received from its
    /// partner (`None` before the first).
    pub echo: Option<(BootId, u64)>,
}

/// Why bytes are not an acceptable heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("{0} bytes is not a heartbeat's length")]
    Length(usize),
    #[error("not a heartbeat (magic)")]
    Magic,
    #[error("heartbeat version {0} is unknown")]
    Version(u8),
    #[error("unknown heartbeat flags {0:#04x}")]
    Flags(u8),
    #[error("instance index {0} is neither 0 nor 1")]
    Instance(u8),
    #[error("the gateway's name is empty or not UTF-8")]
    Name,
    #[error("the MAC does not verify")]
    Mac,
    #[error("a tenant or gateway name longer than 255 bytes cannot be sent")]
    NameTooLong,
}

/// A heartbeat whose structure is valid but whose MAC is not yet checked: enough to find the
/// gateway (and so the key) it claims to be for.
#[derive(Debug, Clone, Copy)]
pub struct Unverified<'a> {
    bytes: &'a [u8],
    tenant: &'a str,
    name: &'a str,
}

impl<'a> Unverified<'a> {
    /// The tenant the heartbeat claims.
    pub fn tenant(&self) -> &'a str {
        self.tenant
    }

    /// The gateway name the heartbeat claims.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// Whether it claims to be for `gateway` (unauthenticated until [`Self::verify`]).
    pub fn is_for(&self, gateway: &QualifiedName) -> bool {
        self.tenant == gateway.tenant && self.name == gateway.name
    }

    /// Checks the MAC in constant time and returns the contents.
    pub fn verify(&self, key: &hmac::Key) -> Result<Heartbeat, WireError> {
        let (body, mac) = self.bytes.split_at(self.bytes.len() - MAC_LEN);
        hmac::verify(key, body, mac).map_err(|_| WireError::Mac)?;
        let flags = body[5];
        let role = if flags & FLAG_ACTIVE != 0 {
            InstanceRole::Active
        } else {
            InstanceRole::Standby
        };
        Ok(Heartbeat {
            gateway: QualifiedName::new(self.tenant, self.name),
            instance: body[6],
            term: be_u64(&body[9..17]),
            role,
            boot: BootId(array16(&body[25..41])),
            seq: be_u64(&body[17..25]),
            handover: flags & FLAG_HANDOVER != 0,
            handover_ack: flags & FLAG_ACK != 0,
            echo: match be_u64(&body[57..65]) {
                0 => None,
                seq => Some((BootId(array16(&body[41..57])), seq)),
            },
        })
    }
}

fn be_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

fn array16(b: &[u8]) -> [u8; BOOT_ID_LEN] {
    let mut a = [0u8; BOOT_ID_LEN];
    a.copy_from_slice(&b[..BOOT_ID_LEN]);
    a
}

/// The HMAC key of a gateway's heartbeats.
pub fn mac_key(key: &HeartbeatKey) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, key.expose())
}

/// Parses the structure of untrusted bytes (lengths, magic, version, flags, index, names). Never
/// panics; the MAC is checked by [`Unverified::verify`].
pub fn parse(bytes: &[u8]) -> Result<Unverified<'_>, WireError> {
    if !(MIN_LEN..=MAX_LEN).contains(&bytes.len()) {
        return Err(WireError::Length(bytes.len()));
    }
    if bytes[..4] != MAGIC {
        return Err(WireError::Magic);
    }
    if bytes[4] != VERSION {
        return Err(WireError::Version(bytes[4]));
    }
    let flags = bytes[5];
    if flags & !KNOWN_FLAGS != 0 {
        return Err(WireError::Flags(flags));
    }
    if bytes[6] > 1 {
        return Err(WireError::Instance(bytes[6]));
    }
    let (t, n) = (usize::from(bytes[7]), usize::from(bytes[8]));
    if t == 0 || n == 0 {
        return Err(WireError::Name);
    }
    if bytes.len() != HEADER_LEN + t + n + MAC_LEN {
        return Err(WireError::Length(bytes.len()));
    }
    let tenant =
        std::str::from_utf8(&bytes[HEADER_LEN..HEADER_LEN + t]).map_err(|_| WireError::Name)?;
    let name = std::str::from_utf8(&bytes[HEADER_LEN + t..HEADER_LEN + t + n])
        .map_err(|_| WireError::Name)?;
    Ok(Unverified {
        bytes,
        tenant,
        name,
    })
}

/// Encodes and authenticates a heartbeat.
pub fn encode(hb: &Heartbeat, key: &hmac::Key) -> Result<Vec<u8>, WireError> {
    let tenant = hb.gateway.tenant.as_bytes();
    let name = hb.gateway.name.as_bytes();
    let t = u8::try_from(tenant.len()).map_err(|_| WireError::NameTooLong)?;
    let n = u8::try_from(name.len()).map_err(|_| WireError::NameTooLong)?;
    if t == 0 || n == 0 {
        return Err(WireError::Name);
    }
    if hb.instance > 1 {
        return Err(WireError::Instance(hb.instance));
    }
    let mut flags = 0;
    if hb.role == InstanceRole::Active {
        flags |= FLAG_ACTIVE;
    }
    if hb.handover {
        flags |= FLAG_HANDOVER;
    }
    if hb.handover_ack {
        flags |= FLAG_ACK;
    }
    let mut out = Vec::with_capacity(HEADER_LEN + tenant.len() + name.len() + MAC_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[VERSION, flags, hb.instance, t, n]);
    out.extend_from_slice(&hb.term.to_be_bytes());
    out.extend_from_slice(&hb.seq.to_be_bytes());
    out.extend_from_slice(&hb.boot.0);
    let (echo_boot, echo_seq) = hb.echo.unwrap_or((BootId([0; BOOT_ID_LEN]), 0));
    out.extend_from_slice(&echo_boot.0);
    out.extend_from_slice(&echo_seq.to_be_bytes());
    out.extend_from_slice(tenant);
    out.extend_from_slice(name);
    let tag = hmac::sign(key, &out);
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}
