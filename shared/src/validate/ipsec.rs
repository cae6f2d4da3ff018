//! Issue 17, site-to-site over IPsec: which connections may use it (IPSEC-1, IPSEC-2), the SA
//! lifetimes of a custom policy (IPSEC-3), a site's IKE identity (IPSEC-4) and the device
//! addresses a gateway tells IPsec peers apart by (IPSEC-5).
//!
//! Enforces: IPSEC-1, IPSEC-2, IPSEC-3, IPSEC-4, IPSEC-5.

use std::collections::BTreeMap;

use super::path::FieldPath;
use super::{Validator, Violation};
use crate::model::{
    ConnectionKind, DeviceHost, IpsecPolicy, Kind, MAX_CHILD_LIFETIME_KILOBYTES,
    MAX_SA_LIFETIME_SECS, MIN_CHILD_LIFETIME_KILOBYTES, MIN_SA_LIFETIME_SECS, TunnelProtocol,
};
use crate::rules::RuleId;

/// IPSEC-4: the longest IKE identity.
pub const MAX_IKE_IDENTITY_LEN: usize = 255;

impl<'a> Validator<'a> {
    pub(super) fn check_ipsec(&mut self) {
        let t = self.t;
        // IPSEC-5: (gateway, device host) → the enabled IPsec connections going there.
        let mut by_host: BTreeMap<(usize, String), Vec<usize>> = BTreeMap::new();
        for (ci, c) in t.connections.iter().enumerate() {
            let base = FieldPath::new(Kind::Connection, &c.tenant, &c.name);
            let ipsec = c.protocol == TunnelProtocol::IPsec;
            if ipsec && matches!(c.kind, ConnectionKind::VnetToVnet { .. }) {
                self.push(
                    Violation::new(
                        RuleId::Ipsec1,
                        base.field("protocol"),
                        format!(
                            "connection \"{}\" is VNet-to-VNet; IPsec is only for site-to-site \
                             connections: set protocol to WireGuard (or leave it out)",
                            c.name
                        ),
                    )
                    .case("v2v")
                    .param("connection", &c.name),
                );
            }
            if !ipsec && c.ipsec_policy.is_some() {
                self.push(
                    Violation::new(
                        RuleId::Ipsec2,
                        base.field("ipsec_policy"),
                        format!(
                            "connection \"{}\" uses WireGuard, which has no IPsec/IKE policy: \
                             remove ipsec_policy, or set protocol to IPsec",
                            c.name
                        ),
                    )
                    .case("policy")
                    .param("connection", &c.name),
                );
            }
            if !ipsec && !c.connection_mode.is_default() {
                self.push(
                    Violation::new(
                        RuleId::Ipsec2,
                        base.field("connection_mode"),
                        format!(
                            "connection \"{}\" uses WireGuard, which has no connection mode: set \
                             connection_mode to Default (or leave it out), or set protocol to IPsec",
                            c.name
                        ),
                    )
                    .case("mode")
                    .param("connection", &c.name),
                );
            }
            if let Some(p) = &c.ipsec_policy {
                self.out.extend(lifetime_violations(base, p));
            }
            if ipsec
                && c.enabled
                && let (Some(g), Some(s)) = (self.own_gateway_of(ci), self.site_of(ci))
                && matches!(c.kind, ConnectionKind::SiteToSite { .. })
            {
                let host = t.sites[s].device_host.to_string();
                by_host.entry((g, host)).or_default().push(ci);
            }
        }
        for ((g, host), conns) in by_host {
            if conns.len() < 2 {
                continue;
            }
            let gw = &t.gateways[g];
            let paths: Vec<String> = conns
                .iter()
                .map(|&ci| {
                    let c = &t.connections[ci];
                    FieldPath::new(Kind::Connection, &c.tenant, &c.name).to_string()
                })
                .collect();
            for (i, &ci) in conns.iter().enumerate() {
                let c = &t.connections[ci];
                let others: Vec<&str> = conns
                    .iter()
                    .filter(|&&o| o != ci)
                    .map(|&o| t.connections[o].name.as_str())
                    .collect();
                let others = others.join("\", \"");
                let mut v = Violation::new(
                    RuleId::Ipsec5,
                    FieldPath::new(Kind::Connection, &c.tenant, &c.name)
                        .field("kind")
                        .field("site"),
                    format!(
                        "IPsec connections \"{}\" and \"{others}\" of gateway {} both go to the \
                         device at {host}; the gateway tells IPsec devices apart by address: keep \
                         one of them, disable the others, or use WireGuard for them",
                        c.name,
                        gw.qualified_name()
                    ),
                )
                .case("shared_host")
                .param("connection", &c.name)
                .param("others", &others)
                .param("gateway", gw.qualified_name())
                .param("host", &host);
                v.related = paths
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, p)| p.clone())
                    .collect();
                self.push(v);
            }
        }
        for s in &t.sites {
            if let Some(id) = &s.ike_identity
                && let Some(v) = ike_identity_violation(
                    FieldPath::new(Kind::Site, &s.tenant, &s.name).field("ike_identity"),
                    &s.name,
                    id,
                )
            {
                self.push(v);
            }
        }
    }
}

/// IPSEC-3: every lifetime of `p` out of range, at `base.ipsec_policy.<field>`.
fn lifetime_violations(base: FieldPath<'_>, p: &IpsecPolicy) -> Vec<Violation> {
    let mut out = Vec::new();
    let secs = [
        ("ike_lifetime_secs", "IKE", p.ike_lifetime_secs),
        ("child_lifetime_secs", "CHILD", p.child_lifetime_secs),
    ];
    let range = MIN_SA_LIFETIME_SECS..=MAX_SA_LIFETIME_SECS;
    for (field, sa, value) in secs {
        if let Some(x) = value
            && !range.contains(&x)
        {
            out.push(
                Violation::new(
                    RuleId::Ipsec3,
                    base.field("ipsec_policy").field(field),
                    format!(
                        "the {sa} SA lifetime is {x} seconds; give {MIN_SA_LIFETIME_SECS} to \
                         {MAX_SA_LIFETIME_SECS} seconds, or leave it out for the default"
                    ),
                )
                .case("seconds")
                .param("sa", sa)
                .param("value", x)
                .param("min", MIN_SA_LIFETIME_SECS)
                .param("max", MAX_SA_LIFETIME_SECS),
            );
        }
    }
    if let Some(kb) = p.child_lifetime_kilobytes
        && !(MIN_CHILD_LIFETIME_KILOBYTES..=MAX_CHILD_LIFETIME_KILOBYTES).contains(&kb)
    {
        out.push(
            Violation::new(
                RuleId::Ipsec3,
                base.field("ipsec_policy").field("child_lifetime_kilobytes"),
                format!(
                    "the CHILD SA data lifetime is {kb} KB; give {MIN_CHILD_LIFETIME_KILOBYTES} \
                     to {MAX_CHILD_LIFETIME_KILOBYTES} KB, or leave it out for no data limit"
                ),
            )
            .case("kilobytes")
            .param("value", kb)
            .param("min", MIN_CHILD_LIFETIME_KILOBYTES)
            .param("max", MAX_CHILD_LIFETIME_KILOBYTES),
        );
    }
    out
}

/// IPSEC-4: whether `id` is an IKE identity the gateway can match: an IPv4 address, a DNS
/// name (the labels of [`DeviceHost`] names) or `user@name`.
pub fn is_ike_identity(id: &str) -> bool {
    if id.chars().count() > MAX_IKE_IDENTITY_LEN || id.chars().any(char::is_whitespace) {
        return false;
    }
    let host = match id.split_once('@') {
        Some((user, host)) => {
            if user.is_empty() || host.contains('@') {
                return false;
            }
            host
        }
        None => id,
    };
    match host.parse::<DeviceHost>() {
        Ok(DeviceHost::Ipv4(_)) => id == host,
        Ok(DeviceHost::Name(_)) => true,
        Ok(DeviceHost::Ipv6(_)) | Err(_) => false,
    }
}

fn ike_identity_violation(path: FieldPath<'_>, site: &str, id: &str) -> Option<Violation> {
    let len = id.chars().count();
    let v = if len > MAX_IKE_IDENTITY_LEN {
        Violation::new(
            RuleId::Ipsec4,
            path,
            format!(
                "the IKE identity of site \"{site}\" is {len} characters long; at most \
                 {MAX_IKE_IDENTITY_LEN} are allowed"
            ),
        )
        .case("too_long")
        .param("len", len)
        .param("max", MAX_IKE_IDENTITY_LEN)
    } else if id.chars().any(char::is_whitespace) {
        Violation::new(
            RuleId::Ipsec4,
            path,
            format!(
                "the IKE identity of site \"{site}\" contains a space; give the identity the \
                 device presents (an IPv4 address, a DNS name or user@name) without spaces"
            ),
        )
        .case("whitespace")
    } else if !is_ike_identity(id) {
        Violation::new(
            RuleId::Ipsec4,
            path,
            format!(
                "the IKE identity \"{id}\" of site \"{site}\" is not an IPv4 address, a DNS name \
                 or user@name; give the identity the device presents, or leave it out to use the \
                 device address"
            ),
        )
        .case("invalid")
        .param("identity", id)
    } else {
        return None;
    };
    Some(v.param("site", site))
}
