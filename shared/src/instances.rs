//! Issue #16: the two instances of a redundant gateway, as the server describes them in a
//! gateway's desired state ([`InstanceDesired`]) and as a worker reports them ([`InstanceStatus`]).
//!
//! A redundant gateway runs as two instances, index 0 and 1, on different workers. The server
//! designates which one is active and issues a `term`, a number that increases on every placement
//! change. The instances then watch each other directly with authenticated UDP heartbeats (the
//! worker's `core::failover`): a standby that hears nothing from an active partner for
//! [`InstanceDesired::detection`] takes over with a higher term, and an active instance that
//! hears a partner active under a higher term steps down. A gateway without this block runs on one
//! instance and is not redundant.
//!
//! Only wire types and their checks: no I/O, no clock, no randomness.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The default time between two heartbeats of an instance: 200 ms.
pub const DEFAULT_INTERVAL_MS: u32 = 200;
/// The default number of heartbeat intervals a standby waits in silence before it takes over:
/// 5 × 200 ms = 1 s of detection. Four heartbeats in a row may be lost without a takeover (at 1 %
/// independent loss, once in 10^10 windows), a stall of the worker's single thread shorter than
/// a second does not cause one, and the remaining 2 s of the issue's 3 s unplanned-failover
/// budget are left for the handshakes to every peer and the VNet-side routes.
pub const DEFAULT_MISSES: u32 = 5;
/// The shortest heartbeat interval a desired state may ask for.
pub const MIN_INTERVAL_MS: u32 = 10;
/// The longest heartbeat interval a desired state may ask for.
pub const MAX_INTERVAL_MS: u32 = 10_000;
/// The fewest misses: at least two, so that one lost datagram never causes a takeover.
pub const MIN_MISSES: u32 = 2;
/// The most misses a desired state may ask for.
pub const MAX_MISSES: u32 = 100;
/// The length of a heartbeat key.
pub const KEY_LEN: usize = 32;

fn default_interval_ms() -> u32 {
    DEFAULT_INTERVAL_MS
}

fn default_misses() -> u32 {
    DEFAULT_MISSES
}

/// An instance's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum InstanceRole {
    /// Answers and initiates handshakes, carries the traffic, holds the VNet-side address.
    Active,
    /// Has the whole desired state loaded, sends only heartbeats.
    Standby,
}

impl InstanceRole {
    /// The role's name as serialised (`active`, `standby`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Standby => "standby",
        }
    }
}

impl fmt::Display for InstanceRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The 32-byte key that authenticates one gateway's heartbeats (HMAC-SHA256), the same for both
/// instances. Serialised as standard base64; `Debug` is redacted, so the messages carrying it
/// must only travel over authenticated, encrypted channels.
#[derive(Clone, PartialEq, Eq)]
pub struct HeartbeatKey([u8; KEY_LEN]);

impl HeartbeatKey {
    /// A key from its bytes (the server draws them from its random source).
    pub fn new(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The key's bytes.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Standard base64, as serialised.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// Parses standard base64 of exactly 32 bytes.
    pub fn from_base64(s: &str) -> Result<Self, InstanceError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map_err(|_| InstanceError::KeyNotBase64)?;
        let key: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| InstanceError::KeyLength(b.len()))?;
        Ok(Self(key))
    }
}

impl fmt::Debug for HeartbeatKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HeartbeatKey(<redacted>)")
    }
}

impl Serialize for HeartbeatKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_base64())
    }
}

impl<'de> Deserialize<'de> for HeartbeatKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::from_base64(&s).map_err(serde::de::Error::custom)
    }
}

/// What the server puts in a redundant gateway's desired state for one of its instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct InstanceDesired {
    /// This instance's index: 0 or 1.
    pub instance: u8,
    /// The index of the instance the server designates active at `term`.
    pub active: u8,
    /// The server's term: it increases on every placement change, and is always above every
    /// term a worker has reported (an instance ignores a desired state whose term is not above
    /// its own).
    pub term: u64,
    /// Where the partner instance's worker receives heartbeats.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub partner: SocketAddr,
    /// The key both instances authenticate their heartbeats with (base64 of 32 bytes).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub key: HeartbeatKey,
    /// Milliseconds between two heartbeats ([`DEFAULT_INTERVAL_MS`]).
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u32,
    /// Silent intervals before a standby takes over ([`DEFAULT_MISSES`]).
    #[serde(default = "default_misses")]
    pub misses: u32,
    /// A planned drain of this instance's worker: if this instance is active, it hands over to
    /// the partner (the partner takes over, then this one stands by), in one heartbeat round
    /// trip. Ignored by a standby.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub handover: bool,
}

impl InstanceDesired {
    /// The role the server designates for this instance.
    pub fn role(&self) -> InstanceRole {
        if self.instance == self.active {
            InstanceRole::Active
        } else {
            InstanceRole::Standby
        }
    }

    /// The partner's index.
    pub fn partner_instance(&self) -> u8 {
        1 - self.instance.min(1)
    }

    /// Time between two heartbeats.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(u64::from(self.interval_ms))
    }

    /// The silence after which a standby takes over: `misses` × `interval`.
    pub fn detection(&self) -> Duration {
        self.interval() * self.misses
    }

    /// Checks the indices and the timing bounds.
    pub fn check(&self) -> Result<(), InstanceError> {
        if self.instance > 1 {
            return Err(InstanceError::Index(self.instance));
        }
        if self.active > 1 {
            return Err(InstanceError::Index(self.active));
        }
        if !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&self.interval_ms) {
            return Err(InstanceError::Interval(self.interval_ms));
        }
        if !(MIN_MISSES..=MAX_MISSES).contains(&self.misses) {
            return Err(InstanceError::Misses(self.misses));
        }
        Ok(())
    }
}

/// Counts of heartbeats an instance refused; each changed nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeartbeatRejects {
    /// Not a heartbeat: too short, wrong magic or version, bad lengths or flags.
    #[serde(default)]
    pub malformed: u64,
    /// A well-formed heartbeat whose MAC does not verify under the gateway's key.
    #[serde(default)]
    pub forged: u64,
    /// Authentic but old: a sequence number not above the last one of its boot, or another
    /// boot whose echo is not newer than the current boot's (an earlier run of the partner).
    #[serde(default)]
    pub replayed: u64,
    /// Authentic, from a run of the partner that has not yet echoed one of this run's
    /// heartbeats (the partner just restarted, or an old heartbeat is replayed to an instance
    /// that just restarted): ignored until it does, one heartbeat round trip.
    #[serde(default)]
    pub unconfirmed: u64,
    /// A heartbeat of another gateway.
    #[serde(default)]
    pub other_gateway: u64,
    /// A heartbeat claiming to come from this very instance (reflected back, or misconfigured).
    #[serde(default)]
    pub reflected: u64,
}

impl HeartbeatRejects {
    /// All refused heartbeats.
    pub fn total(&self) -> u64 {
        self.malformed
            .saturating_add(self.forged)
            .saturating_add(self.replayed)
            .saturating_add(self.unconfirmed)
            .saturating_add(self.other_gateway)
            .saturating_add(self.reflected)
    }
}

/// What a worker reports about one instance it runs. A gateway's status without it runs on one
/// instance (`not redundant`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct InstanceStatus {
    /// The instance's index.
    pub instance: u8,
    pub role: InstanceRole,
    /// The term the instance holds its role under (the server records the highest it hears).
    pub term: u64,
    /// Whether a valid heartbeat of the partner arrived within the detection time.
    #[serde(default)]
    pub partner_alive: bool,
    /// Heartbeats accepted from the partner since the worker started.
    #[serde(default)]
    pub heartbeats_accepted: u64,
    /// Heartbeats refused since the worker started.
    #[serde(default)]
    pub rejected: HeartbeatRejects,
}

/// Why an instance block or its key is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstanceError {
    #[error("instance index {0} is neither 0 nor 1")]
    Index(u8),
    #[error("heartbeat interval {0} ms is outside {MIN_INTERVAL_MS}..={MAX_INTERVAL_MS} ms")]
    Interval(u32),
    #[error("misses {0} is outside {MIN_MISSES}..={MAX_MISSES}")]
    Misses(u32),
    #[error("the heartbeat key is not base64")]
    KeyNotBase64,
    #[error("the heartbeat key has {0} bytes instead of {KEY_LEN}")]
    KeyLength(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> InstanceDesired {
        InstanceDesired {
            instance: 1,
            active: 0,
            term: 7,
            partner: "192.0.2.10:51900".parse().expect("addr"),
            key: HeartbeatKey::new([7; KEY_LEN]),
            interval_ms: DEFAULT_INTERVAL_MS,
            misses: DEFAULT_MISSES,
            handover: false,
        }
    }

    #[test]
    fn desired_round_trips_and_defaults_the_timing() {
        let d = sample();
        let json = serde_json::to_string(&d).expect("json");
        assert!(json.contains(&d.key.to_base64()), "{json}");
        let back: InstanceDesired = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, d);
        let minimal = format!(
            r#"{{"instance":0,"active":0,"term":1,"partner":"[2001:db8::1]:51900","key":"{}"}}"#,
            d.key.to_base64()
        );
        let m: InstanceDesired = serde_json::from_str(&minimal).expect("parse");
        assert_eq!(m.interval_ms, 200);
        assert_eq!(m.misses, 5);
        assert_eq!(m.detection(), Duration::from_secs(1));
        assert_eq!(m.role(), InstanceRole::Active);
        assert_eq!(m.partner_instance(), 1);
        assert_eq!(m.check(), Ok(()));
        assert_eq!(d.role(), InstanceRole::Standby);
    }

    #[test]
    fn keys_of_the_wrong_length_or_alphabet_are_refused() {
        let short = base64::engine::general_purpose::STANDARD.encode([1u8; 31]);
        assert_eq!(
            HeartbeatKey::from_base64(&short),
            Err(InstanceError::KeyLength(31))
        );
        assert_eq!(
            HeartbeatKey::from_base64("not base64!"),
            Err(InstanceError::KeyNotBase64)
        );
        let json = serde_json::to_string(&sample())
            .expect("json")
            .replace(&sample().key.to_base64(), &short);
        assert!(serde_json::from_str::<InstanceDesired>(&json).is_err());
        assert_eq!(
            format!("{:?}", sample().key),
            "HeartbeatKey(<redacted>)",
            "Debug never shows the key"
        );
    }

    #[test]
    fn check_refuses_bad_indices_and_timing() {
        let mut d = sample();
        d.instance = 2;
        assert_eq!(d.check(), Err(InstanceError::Index(2)));
        let mut d = sample();
        d.active = 3;
        assert_eq!(d.check(), Err(InstanceError::Index(3)));
        let mut d = sample();
        d.interval_ms = 0;
        assert_eq!(d.check(), Err(InstanceError::Interval(0)));
        let mut d = sample();
        d.misses = 1;
        assert_eq!(d.check(), Err(InstanceError::Misses(1)));
    }

    #[test]
    fn status_round_trips_and_older_reports_parse() {
        let s = InstanceStatus {
            instance: 0,
            role: InstanceRole::Active,
            term: 3,
            partner_alive: true,
            heartbeats_accepted: 10,
            rejected: HeartbeatRejects {
                forged: 2,
                ..HeartbeatRejects::default()
            },
        };
        let json = serde_json::to_string(&s).expect("json");
        assert!(json.contains(r#""role":"active""#), "{json}");
        assert_eq!(
            serde_json::from_str::<InstanceStatus>(&json).expect("parse"),
            s
        );
        let old: InstanceStatus =
            serde_json::from_str(r#"{"instance":1,"role":"standby","term":2}"#).expect("parse");
        assert_eq!(old.role, InstanceRole::Standby);
        assert!(!old.partner_alive);
        assert_eq!(old.rejected.total(), 0);
    }
}
