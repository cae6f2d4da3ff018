//! Issue 17: site-to-site over IPsec (IKEv2, RFC 7296; ESP in UDP, RFC 3948).
//!
//! A site-to-site [`super::Connection`] has a [`TunnelProtocol`]: WireGuard (the default) or
//! IPsec. An IPsec connection authenticates with its shared key as the IKEv2 pre-shared key
//! (GW-4/GW-5 unchanged), may name the site device's IKE identity
//! ([`super::LocalSite::ike_identity`]) and may carry a custom [`IpsecPolicy`] (one proposal
//! and the SA lifetimes, as Azure's "custom IPsec/IKE policy"); without one the gateway offers
//! and accepts [`DEFAULT_IKE_PROPOSALS`] and [`DEFAULT_ESP_CIPHERS`]. IKEv1 is obsolete and not
//! offered.
//!
//! Values are spelled as strongSwan's `swanctl.conf` spells them (`aes256gcm16`,
//! `prfsha384`, `ecp384`), so a policy reads the same in the YAML, the API and the exported
//! device configuration.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The tunnel protocol of a site-to-site connection.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TunnelProtocol {
    #[default]
    WireGuard,
    /// IKEv2 with ESP in UDP.
    IPsec,
}

impl TunnelProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WireGuard => "WireGuard",
            Self::IPsec => "IPsec",
        }
    }

    pub fn is_wireguard(&self) -> bool {
        matches!(self, Self::WireGuard)
    }
}

impl fmt::Display for TunnelProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An AEAD cipher for IKE and ESP (RFC 4106 / RFC 5282 with a 16-byte ICV, RFC 7634).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum IpsecCipher {
    #[serde(rename = "aes128gcm16")]
    Aes128Gcm16,
    #[serde(rename = "aes256gcm16")]
    Aes256Gcm16,
    #[serde(rename = "chacha20poly1305")]
    ChaCha20Poly1305,
}

/// A pseudo-random function of the IKE SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum IpsecPrf {
    #[serde(rename = "prfsha256")]
    HmacSha256,
    #[serde(rename = "prfsha384")]
    HmacSha384,
}

/// A Diffie-Hellman group of the IKE SA (IANA numbers 14, 19, 20, 31).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum IpsecDhGroup {
    #[serde(rename = "modp2048")]
    Modp2048,
    #[serde(rename = "ecp256")]
    Ecp256,
    #[serde(rename = "ecp384")]
    Ecp384,
    #[serde(rename = "curve25519")]
    Curve25519,
}

macro_rules! keyword {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            /// Every value, in the gateway's order of preference.
            pub const ALL: &'static [$t] = &[$(<$t>::$v),*];
            /// The `swanctl.conf` keyword (also the YAML and JSON spelling).
            pub fn keyword(self) -> &'static str {
                match self { $(<$t>::$v => $s),* }
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.keyword())
            }
        }
    };
}

keyword!(IpsecCipher { Aes256Gcm16 => "aes256gcm16", Aes128Gcm16 => "aes128gcm16", ChaCha20Poly1305 => "chacha20poly1305" });
keyword!(IpsecPrf { HmacSha384 => "prfsha384", HmacSha256 => "prfsha256" });
keyword!(IpsecDhGroup { Ecp384 => "ecp384", Ecp256 => "ecp256", Curve25519 => "curve25519", Modp2048 => "modp2048" });

impl IpsecDhGroup {
    /// The IANA transform ID (RFC 7296 3.3.2, "Transform Type 4").
    pub fn iana(self) -> u16 {
        match self {
            Self::Modp2048 => 14,
            Self::Ecp256 => 19,
            Self::Ecp384 => 20,
            Self::Curve25519 => 31,
        }
    }
}

/// One IKE SA proposal: cipher, PRF and DH group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IkeProposal {
    pub cipher: IpsecCipher,
    pub prf: IpsecPrf,
    pub dh_group: IpsecDhGroup,
}

impl IkeProposal {
    /// As a `swanctl.conf` proposal: `aes256gcm16-prfsha384-ecp384`.
    pub fn keyword(&self) -> String {
        format!("{}-{}-{}", self.cipher, self.prf, self.dh_group)
    }
}

/// What a gateway offers for the IKE SA without a custom policy, in order of preference:
/// Curve25519 first, the cheapest group to compute (P-384 costs about 20 times as much with
/// the RustCrypto curves here; `worker/benches/ike_sa.rs`), P-384 for devices that insist on it.
pub const DEFAULT_IKE_PROPOSALS: &[IkeProposal] = &[
    IkeProposal {
        cipher: IpsecCipher::Aes256Gcm16,
        prf: IpsecPrf::HmacSha256,
        dh_group: IpsecDhGroup::Curve25519,
    },
    IkeProposal {
        cipher: IpsecCipher::Aes256Gcm16,
        prf: IpsecPrf::HmacSha384,
        dh_group: IpsecDhGroup::Ecp384,
    },
    IkeProposal {
        cipher: IpsecCipher::ChaCha20Poly1305,
        prf: IpsecPrf::HmacSha256,
        dh_group: IpsecDhGroup::Curve25519,
    },
    IkeProposal {
        cipher: IpsecCipher::Aes128Gcm16,
        prf: IpsecPrf::HmacSha256,
        dh_group: IpsecDhGroup::Ecp256,
    },
    IkeProposal {
        cipher: IpsecCipher::Aes256Gcm16,
        prf: IpsecPrf::HmacSha256,
        dh_group: IpsecDhGroup::Modp2048,
    },
];

/// What a gateway offers for ESP (its CHILD SAs) without a custom policy, in order of
/// preference.
pub const DEFAULT_ESP_CIPHERS: &[IpsecCipher] = &[
    IpsecCipher::Aes256Gcm16,
    IpsecCipher::Aes128Gcm16,
    IpsecCipher::ChaCha20Poly1305,
];

/// The IKE SA lifetime without a custom policy (Azure's default: 8 hours).
pub const DEFAULT_IKE_LIFETIME_SECS: u32 = 28_800;
/// The CHILD SA lifetime without a custom policy (1 hour).
pub const DEFAULT_CHILD_LIFETIME_SECS: u32 = 3_600;
/// The shortest SA lifetime a policy may ask for (IPSEC-3).
pub const MIN_SA_LIFETIME_SECS: u32 = 60;
/// The longest SA lifetime a policy may ask for (IPSEC-3, 48 hours).
pub const MAX_SA_LIFETIME_SECS: u32 = 172_800;
/// The smallest CHILD SA data volume before a rekey (IPSEC-3, Azure's minimum: 1,024 KB).
pub const MIN_CHILD_LIFETIME_KILOBYTES: u64 = 1_024;
/// The largest CHILD SA data volume (IPSEC-3).
pub const MAX_CHILD_LIFETIME_KILOBYTES: u64 = 2_147_483_647;
/// The site device's IKE port when a site does not give one.
pub const DEFAULT_IKE_PORT: u16 = 500;
/// Dead peer detection: an INFORMATIONAL request after this many seconds without a message
/// from the peer.
pub const DPD_INTERVAL_SECS: u32 = 30;

/// Who starts the IKE SA (Azure's "connection mode").
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum IpsecConnectionMode {
    /// The gateway initiates and answers.
    #[default]
    Default,
    /// The gateway initiates; the device is not expected to.
    InitiatorOnly,
    /// The gateway only answers the device.
    ResponderOnly,
}

impl IpsecConnectionMode {
    pub fn is_default(&self) -> bool {
        matches!(self, Self::Default)
    }
}

/// A custom IPsec/IKE policy of one connection: exactly one proposal for each SA and the SA
/// lifetimes (IPSEC-2, IPSEC-3). `None` on a connection: the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IpsecPolicy {
    pub ike: IkeProposal,
    pub esp_cipher: IpsecCipher,
    /// Seconds; [`DEFAULT_IKE_LIFETIME_SECS`] when not given.
    #[serde(default)]
    pub ike_lifetime_secs: Option<u32>,
    /// Seconds; [`DEFAULT_CHILD_LIFETIME_SECS`] when not given.
    #[serde(default)]
    pub child_lifetime_secs: Option<u32>,
    /// Kilobytes through a CHILD SA before it is rekeyed; no limit when not given.
    #[serde(default)]
    pub child_lifetime_kilobytes: Option<u64>,
}

/// The IPsec settings of a connection as the gateway runs them: the proposals and lifetimes of
/// its policy, or the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IpsecParameters {
    pub ike_proposals: Vec<IkeProposal>,
    pub esp_ciphers: Vec<IpsecCipher>,
    pub ike_lifetime_secs: u32,
    pub child_lifetime_secs: u32,
    #[serde(default)]
    pub child_lifetime_kilobytes: Option<u64>,
    pub dpd_interval_secs: u32,
    #[serde(default)]
    pub mode: IpsecConnectionMode,
}

impl IpsecParameters {
    /// What a connection with `policy` (or none) runs.
    pub fn of(policy: Option<&IpsecPolicy>, mode: IpsecConnectionMode) -> Self {
        match policy {
            None => Self {
                ike_proposals: DEFAULT_IKE_PROPOSALS.to_vec(),
                esp_ciphers: DEFAULT_ESP_CIPHERS.to_vec(),
                ike_lifetime_secs: DEFAULT_IKE_LIFETIME_SECS,
                child_lifetime_secs: DEFAULT_CHILD_LIFETIME_SECS,
                child_lifetime_kilobytes: None,
                dpd_interval_secs: DPD_INTERVAL_SECS,
                mode,
            },
            Some(p) => Self {
                ike_proposals: vec![p.ike],
                esp_ciphers: vec![p.esp_cipher],
                ike_lifetime_secs: p.ike_lifetime_secs.unwrap_or(DEFAULT_IKE_LIFETIME_SECS),
                child_lifetime_secs: p.child_lifetime_secs.unwrap_or(DEFAULT_CHILD_LIFETIME_SECS),
                child_lifetime_kilobytes: p.child_lifetime_kilobytes,
                dpd_interval_secs: DPD_INTERVAL_SECS,
                mode,
            },
        }
    }
}
