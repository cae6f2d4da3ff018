//! The IPsec parts of a connection's page (issue 17): the device configuration downloads
//! (strongSwan `swanctl.conf` and the parameter sheet) and the IPsec status: the IKE SA (state,
//! proposal, SPIs, who initiated it, established and rekey times, rekeys), each CHILD SA (SPIs,
//! cipher, selectors, bytes and packets) and the last error, with what to check for it.

use isthmus_shared::desired::{IpsecStatus, SaState};
use leptos::prelude::*;

use crate::api;
use crate::diagram::{now_secs, unix_local_time};
use crate::human;
use crate::i18n::{Key, Lang, t};
use crate::notices::GatewayNotices;
use crate::state::ctx;

/// The label of an SA state.
pub fn sa_state_key(s: SaState) -> Key {
    match s {
        SaState::None => Key::SaStateNone,
        SaState::Connecting => Key::SaStateConnecting,
        SaState::Established => Key::SaStateEstablished,
        SaState::Rekeying => Key::SaStateRekeying,
        SaState::Deleting => Key::SaStateDeleting,
    }
}

/// What to check for a last error (an RFC 7296 notify name, or `TIMEOUT` / `DEAD_PEER`).
pub fn error_help(name: &str) -> Key {
    match name {
        "AUTHENTICATION_FAILED" => Key::ErrAuthFailed,
        "NO_PROPOSAL_CHOSEN" => Key::ErrNoProposal,
        "TS_UNACCEPTABLE" => Key::ErrTsUnacceptable,
        "TIMEOUT" | "DEAD_PEER" => Key::ErrUnreachable,
        _ => Key::ErrOther,
    }
}

/// A Unix time for people: "5 min ago" for the past (the local time as its title), the local
/// time for the future; empty for 0 (not known).
fn when(lang: Lang, unix: u64) -> (String, String) {
    if unix == 0 {
        return (String::new(), String::new());
    }
    let local = unix_local_time(lang, unix as f64);
    let ago = now_secs() - unix as f64;
    if ago >= 0.0 {
        (human::ago(lang, ago), local)
    } else {
        (local.clone(), local)
    }
}

fn ike_facts(lang: Lang, s: &IpsecStatus) -> AnyView {
    let est = when(lang, s.ike_established_unix.unwrap_or(0));
    let rekey = when(lang, s.ike_rekey_unix.unwrap_or(0));
    let role = if s.initiator {
        Key::Initiator
    } else {
        Key::Responder
    };
    let established = s.ike_state != SaState::None;
    view! {
        <h3>{t(lang, Key::IkeSa)}</h3>
        <dl class="facts" data-testid="ike-sa">
            <dt>{t(lang, Key::SaState)}</dt>
            <dd data-testid="ike-state">{t(lang, sa_state_key(s.ike_state))}</dd>
            <dt>{t(lang, Key::Proposal)}</dt>
            <dd>
                <code data-testid="ike-proposal">{s.ike_proposal.clone().unwrap_or_default()}</code>
            </dd>
            <dt>{t(lang, Key::IkeSpis)}</dt>
            <dd>
                <code data-testid="ike-spis">{s.ike_spis.clone().unwrap_or_default()}</code>
            </dd>
            <dt>{t(lang, Key::GatewayRole)}</dt>
            <dd data-testid="ike-role">{established.then(|| t(lang, role))}</dd>
            <dt>{t(lang, Key::EstablishedAt)}</dt>
            <dd title=est.1>{est.0}</dd>
            <dt>{t(lang, Key::RekeyAt)}</dt>
            <dd title=rekey.1>{rekey.0}</dd>
            <dt>{t(lang, Key::Rekeys)}</dt>
            <dd data-testid="ike-rekeys">{s.rekeys.to_string()}</dd>
        </dl>
    }
    .into_any()
}

fn children_list(lang: Lang, s: &IpsecStatus) -> AnyView {
    if s.children.is_empty() {
        return view! { <p class="muted">{t(lang, Key::NoChildSa)}</p> }.into_any();
    }
    let items = s
        .children
        .iter()
        .map(|ch| {
            let est = when(lang, ch.established_unix);
            let rekey = when(lang, ch.rekey_unix);
            let selectors = ch
                .selectors
                .iter()
                .map(|sel| view! { <code>{sel.clone()}</code><br /> })
                .collect_view();
            view! {
                <li data-testid="child-sa" style="border-top: 1px solid #ddd; padding: 0.5rem 0">
                    <dl class="facts">
                        <dt>{t(lang, Key::SaState)}</dt>
                        <dd>{t(lang, sa_state_key(ch.state))}</dd>
                        <dt>{t(lang, Key::InboundSpi)}</dt>
                        <dd><code>{ch.inbound_spi.clone()}</code></dd>
                        <dt>{t(lang, Key::OutboundSpi)}</dt>
                        <dd><code>{ch.outbound_spi.clone()}</code></dd>
                        <dt>{t(lang, Key::Cipher)}</dt>
                        <dd><code>{ch.cipher.clone()}</code></dd>
                        <dt>{t(lang, Key::Selectors)}</dt>
                        <dd>{selectors}</dd>
                        <dt>{t(lang, Key::BytesIn)}</dt>
                        <dd>{human::bytes(ch.rx_bytes as f64)}</dd>
                        <dt>{t(lang, Key::BytesOut)}</dt>
                        <dd>{human::bytes(ch.tx_bytes as f64)}</dd>
                        <dt>{t(lang, Key::PacketsIn)}</dt>
                        <dd>{ch.rx_packets.to_string()}</dd>
                        <dt>{t(lang, Key::PacketsOut)}</dt>
                        <dd>{ch.tx_packets.to_string()}</dd>
                        <dt>{t(lang, Key::EstablishedAt)}</dt>
                        <dd title=est.1>{est.0}</dd>
                        <dt>{t(lang, Key::RekeyAt)}</dt>
                        <dd title=rekey.1>{rekey.0}</dd>
                    </dl>
                </li>
            }
        })
        .collect_view();
    view! {
        <ul aria-labelledby="child-sa-heading" style="list-style: none; padding: 0; margin: 0">
            {items}
        </ul>
    }
    .into_any()
}

fn last_error(lang: Lang, s: &IpsecStatus) -> Option<AnyView> {
    let name = s.last_error.clone()?;
    let at = when(lang, s.last_error_unix.unwrap_or(0));
    let help = t(lang, error_help(&name));
    Some(
        view! {
            <h3>{t(lang, Key::LastError)}</h3>
            <p role="status" class="status-bad">
                <code data-testid="ipsec-last-error">{name}</code>
                " "
                <span class="muted" title=at.1>{at.0}</span>
            </p>
            <p data-testid="ipsec-error-help">{help}</p>
        }
        .into_any(),
    )
}

/// The device configuration card of an IPsec connection: `swanctl.conf` and the parameter
/// sheet, both served as attachments; on an active-active gateway also tunnel 2's, once the
/// gateway runs on two instances.
#[component]
pub fn IpsecDeviceCard(name: String) -> impl IntoView {
    let c = ctx();
    let tn = c.tenant.get_untracked().unwrap_or_default();
    let url = |format: &str, tunnel: u8| api::device_config_format_url(&tn, &name, format, tunnel);
    let (swanctl, sheet) = (url("swanctl", 1), url("sheet", 1));
    let (swanctl2, sheet2) = (url("swanctl", 2), url("sheet", 2));
    let (file, file2) = (
        format!("{name}.swanctl.conf"),
        format!("{name}-tunnel2.swanctl.conf"),
    );
    let (sheet_file, sheet_file2) = (format!("{name}.txt"), format!("{name}-tunnel2.txt"));
    let conn_name = name.clone();
    let gateway = Signal::derive(move || {
        c.topology().and_then(|t| {
            t.connection(&c.tenant_name(), &conn_name)
                .map(|x| x.gateway.clone())
        })
    });
    // As for WireGuard (issue 16 item 6): `Some(second instance running)` on an active-active
    // gateway.
    let conn_name = name.clone();
    let tunnels = Signal::derive(move || {
        let t = c.topology()?;
        let x = t.connection(&c.tenant_name(), &conn_name)?;
        let g = t.gateway(&x.tenant, &x.gateway)?;
        g.active_active.then_some(g.secondary_endpoint.is_some())
    });
    view! {
        <section class="card" aria-labelledby="device-heading">
            <h2 id="device-heading">{move || c.t(Key::DeviceConfig)}</h2>
            <GatewayNotices gateway=gateway />
            <p>
                <a class="button" href=swanctl download=file data-testid="download-swanctl">
                    {move || c.t(Key::DownloadSwanctl)}
                </a>
                " "
                <a class="button" href=sheet download=sheet_file data-testid="download-sheet">
                    {move || c.t(Key::DownloadSheet)}
                </a>
            </p>
            {move || {
                (tunnels.get() == Some(true))
                    .then(|| {
                        view! {
                            <p>
                                <a class="button" href=swanctl2.clone() download=file2.clone()>
                                    {c.t(Key::DownloadSwanctl2)}
                                </a>
                                " "
                                <a class="button" href=sheet2.clone() download=sheet_file2.clone()>
                                    {c.t(Key::DownloadSheet2)}
                                </a>
                            </p>
                        }
                    })
            }}
            {move || {
                tunnels
                    .get()
                    .map(|two| {
                        view! {
                            <p class="muted">{c.t(Key::IpsecActiveActiveHelp)}</p>
                            {(!two).then(|| view! { <p class="muted">{c.t(Key::TunnelTwoPending)}</p> })}
                        }
                    })
            }}
            <p class="muted">{move || c.t(Key::IpsecDeviceHelp)}</p>
        </section>
    }
}

/// The IPsec status card of a connection; `status` is what its worker last reported.
#[component]
pub fn IpsecStatusCard(#[prop(into)] status: Signal<Option<IpsecStatus>>) -> impl IntoView {
    let c = ctx();
    view! {
        <section class="card" aria-labelledby="ipsec-heading" data-testid="ipsec-status">
            <h2 id="ipsec-heading">{move || c.t(Key::IpsecStatus)}</h2>
            {move || {
                let lang = c.lang.get();
                match status.get() {
                    None => view! { <p class="muted">{t(lang, Key::NoIkeSa)}</p> }.into_any(),
                    Some(s) => {
                        view! {
                            {ike_facts(lang, &s)}
                            <h3 id="child-sa-heading">{t(lang, Key::ChildSas)}</h3>
                            {children_list(lang, &s)}
                            {last_error(lang, &s)}
                        }
                            .into_any()
                    }
                }
            }}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_says_what_to_check() {
        assert_eq!(error_help("AUTHENTICATION_FAILED"), Key::ErrAuthFailed);
        assert_eq!(error_help("NO_PROPOSAL_CHOSEN"), Key::ErrNoProposal);
        assert_eq!(error_help("TS_UNACCEPTABLE"), Key::ErrTsUnacceptable);
        assert_eq!(error_help("TIMEOUT"), Key::ErrUnreachable);
        assert_eq!(error_help("DEAD_PEER"), Key::ErrUnreachable);
        assert_eq!(error_help("INVALID_SYNTAX"), Key::ErrOther);
    }
}
