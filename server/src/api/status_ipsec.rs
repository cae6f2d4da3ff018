//! Issue 17: the IPsec part of a connection's status view and of `/metrics`.

use std::fmt::Write as _;

use isthmus_shared::api::ConnectionStatus;
use isthmus_shared::desired::{DownReason, GatewayDrops, IpsecStatus, SaState, TunnelState};

use super::status::label;

/// The RFC 7296 notify a device answers a wrong pre-shared key with.
const AUTHENTICATION_FAILED: &str = "AUTHENTICATION_FAILED";

/// Why an IPsec tunnel is not up, when its worker gave no reason but its IPsec status tells:
/// `key_mismatch` after AUTHENTICATION_FAILED (the two ends hold different pre-shared keys).
pub(super) fn reason_of(state: TunnelState, ipsec: Option<&IpsecStatus>) -> Option<DownReason> {
    let ipsec = ipsec?;
    (state != TunnelState::Up && ipsec.last_error.as_deref() == Some(AUTHENTICATION_FAILED))
        .then_some(DownReason::KeyMismatch)
}

fn established(s: SaState) -> bool {
    matches!(s, SaState::Established | SaState::Rekeying)
}

/// The per-connection IPsec series of the connections in `views` (tenant, view) that carry an
/// IPsec status, labelled like the other per-connection series.
pub(super) fn write_metrics<'a>(
    out: &mut String,
    views: impl Iterator<Item = (&'a str, &'a ConnectionStatus)> + Clone,
) {
    type Value = fn(&IpsecStatus) -> u64;
    let series: [(&str, &str, &str, Value); 3] = [
        (
            "isthmus_ipsec_ike_sa_established",
            "1 when the IPsec connection's IKE SA is established (or being rekeyed), else 0.",
            "gauge",
            |s| u64::from(established(s.ike_state)),
        ),
        (
            "isthmus_ipsec_child_sas",
            "CHILD SAs (ESP SA pairs) of the IPsec connection that are established or being rekeyed.",
            "gauge",
            |s| s.children.iter().filter(|c| established(c.state)).count() as u64,
        ),
        (
            "isthmus_ipsec_rekeys_total",
            "IKE SA and CHILD SA rekeys of the IPsec connection since its worker started.",
            "counter",
            |s| s.rekeys,
        ),
    ];
    for (metric, help, kind, value) in series {
        let _ = writeln!(out, "# HELP {metric} {help}");
        let _ = writeln!(out, "# TYPE {metric} {kind}");
        for (t, v) in views.clone() {
            let Some(s) = &v.ipsec else { continue };
            let _ = writeln!(
                out,
                "{metric}{{tenant=\"{}\",gateway=\"{}\",connection=\"{}\"}} {}",
                label(t),
                label(&v.gateway),
                label(&v.connection),
                value(s)
            );
        }
    }
}

/// Issue 17 (Bad input): `isthmus_ipsec_drops_total{tenant,gateway,kind}`, the IKE and ESP
/// datagrams each gateway of `drops` (tenant, gateway, counters as its worker last reported
/// them) dropped by kind; a gateway whose worker reported no IPsec drops has no series.
pub(super) fn write_drop_metrics<'a>(
    out: &mut String,
    drops: impl Iterator<Item = (&'a str, &'a str, &'a GatewayDrops)>,
) {
    let metric = "isthmus_ipsec_drops_total";
    let _ = writeln!(
        out,
        "# HELP {metric} IKE and ESP datagrams of the gateway's IPsec connections it dropped, by kind (esp_malformed, esp_unknown_spi, esp_integrity, esp_replay, ike_malformed, ike_unknown_spi, ike_integrity, ike_replayed, ike_out_of_window, ike_unexpected, ike_unmatched, half_open_full; cookies_sent: IKE_SA_INITs answered with a cookie), as its worker last reported them."
    );
    let _ = writeln!(out, "# TYPE {metric} counter");
    for (t, g, d) in drops {
        let Some(ipsec) = &d.ipsec else { continue };
        for (kind, v) in ipsec.kinds() {
            let _ = writeln!(
                out,
                "{metric}{{tenant=\"{}\",gateway=\"{}\",kind=\"{kind}\"}} {v}",
                label(t),
                label(g)
            );
        }
    }
}
