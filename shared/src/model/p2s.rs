//! Point-to-site configurations and their clients.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// A root certificate of a point-to-site configuration (P2S-3); opaque here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RootCertificate {
    pub name: String,
    /// A thumbprint or a PEM string; not interpreted by this crate.
    pub data: String,
}

/// A point-to-site client: one computer with a WireGuard key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct P2sClient {
    pub name: String,
    /// The client's WireGuard public key (base64).
    pub public_key: String,
    /// The client's address, inside the pool (ADDR-1).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub address: IpAddr,
    /// The thumbprint of the client certificate it was authorised with (P2S-3); a client whose
    /// thumbprint is revoked gets no peer.
    #[serde(default)]
    pub certificate_thumbprint: Option<String>,
}

/// The point-to-site configuration of one gateway (at most one per gateway).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PointToSite {
    pub tenant: String,
    /// The gateway (same tenant); also the configuration's name.
    pub gateway: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub address_pool: Vec<IpNet>,
    /// P2S-6: other VNets (same tenant) the clients are configured for at once; each is reached
    /// through its own RouteBased gateway, which also gets the clients as peers.
    #[serde(default)]
    pub additional_vnets: Vec<String>,
    /// P2S-3: at most 20.
    #[serde(default)]
    pub root_certificates: Vec<RootCertificate>,
    #[serde(default)]
    pub revoked_thumbprints: Vec<String>,
    #[serde(default)]
    pub clients: Vec<P2sClient>,
}

impl PointToSite {
    /// Whether `client` is authorised (its certificate is not revoked).
    pub fn is_authorised(&self, client: &P2sClient) -> bool {
        match &client.certificate_thumbprint {
            Some(t) => !self
                .revoked_thumbprints
                .iter()
                .any(|r| r.eq_ignore_ascii_case(t)),
            None => true,
        }
    }
}
