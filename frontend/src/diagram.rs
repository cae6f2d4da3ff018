//! The topology diagram (inline SVG), each connection coloured by its live status.

use isthmus_shared::model::{Connection, ConnectionKind, Topology};
use leptos::prelude::*;

use isthmus_shared::desired::{DownReason, TunnelState};

use crate::api::ConnectionStatus;
use crate::i18n::{Key, Lang};
use crate::state::{Page, TPage, ctx};

/// A connection's live state: the one its worker decided, or disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Up,
    Connecting,
    Idle,
    Down,
    Disabled,
}

impl LinkState {
    pub fn class(self) -> &'static str {
        match self {
            LinkState::Up => "up",
            LinkState::Connecting => "connecting",
            LinkState::Idle => "idle",
            LinkState::Down => "down",
            LinkState::Disabled => "disabled",
        }
    }

    pub fn key(self) -> Key {
        match self {
            LinkState::Up => Key::StateUp,
            LinkState::Connecting => Key::StateConnecting,
            LinkState::Idle => Key::StateIdle,
            LinkState::Down => Key::StateDown,
            LinkState::Disabled => Key::StateDisabled,
        }
    }
}

/// Why a tunnel is not up, for people.
pub fn reason_key(r: DownReason) -> Key {
    match r {
        DownReason::NoAnswer => Key::ReasonNoAnswer,
        DownReason::KeyMismatch => Key::ReasonKeyMismatch,
        DownReason::NotConnected => Key::ReasonNotConnected,
        DownReason::NoEndpoint => Key::ReasonNoEndpoint,
        DownReason::Disabled => Key::StateDisabled,
    }
}

/// The reason worth showing next to the state (none for a disabled connection: the state says
/// it).
pub fn shown_reason(state: LinkState, s: Option<&ConnectionStatus>) -> Option<DownReason> {
    s.and_then(|s| s.reason)
        .filter(|r| *r != DownReason::Disabled && state != LinkState::Disabled)
}

/// An RFC 3339 time in the viewer's local time zone, written the way `lang` writes dates.
pub fn local_time(lang: Lang, rfc3339: &str) -> Option<String> {
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_str(rfc3339));
    if d.get_time().is_nan() {
        return None;
    }
    let locale = match lang {
        Lang::En => "en-GB",
        Lang::Ja => "ja-JP",
    };
    Some(String::from(
        d.to_locale_string(locale, &wasm_bindgen::JsValue::UNDEFINED),
    ))
}

/// A Unix time (seconds) in the viewer's local time zone, for a tooltip.
pub fn unix_local_time(lang: Lang, unix: f64) -> String {
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(unix * 1000.0));
    let locale = match lang {
        Lang::En => "en-GB",
        Lang::Ja => "ja-JP",
    };
    String::from(d.to_locale_string(locale, &wasm_bindgen::JsValue::UNDEFINED))
}

/// Seconds since the Unix epoch of an RFC 3339 time, `None` when it does not parse.
pub fn unix_of(rfc3339: &str) -> Option<f64> {
    let ms = js_sys::Date::new(&wasm_bindgen::JsValue::from_str(rfc3339)).get_time();
    (!ms.is_nan()).then_some(ms / 1000.0)
}

/// "since …" in the viewer's local time and language, or `None` when the worker did not say.
pub fn since_text(lang: Lang, s: Option<&ConnectionStatus>) -> Option<String> {
    let local = local_time(lang, s?.since.as_deref()?)?;
    Some(match lang {
        Lang::En => format!("since {local}"),
        Lang::Ja => format!("{local} から"),
    })
}

pub fn now_secs() -> f64 {
    js_sys::Date::now() / 1000.0
}

pub fn status_of<'a>(
    c: &Connection,
    status: &'a [ConnectionStatus],
) -> Option<&'a ConnectionStatus> {
    status
        .iter()
        .filter(|s| s.connection == c.name && s.gateway == c.gateway)
        .max_by_key(|s| s.last_handshake_unix.unwrap_or(0))
}

/// The state the connection's worker reported (`up`, `connecting`, `down`, `idle`), or
/// `disabled`; `down` when no worker has reported it yet.
pub fn link_state(c: &Connection, status: &[ConnectionStatus]) -> LinkState {
    if !c.enabled {
        return LinkState::Disabled;
    }
    match status_of(c, status) {
        None => LinkState::Down,
        Some(s) => match (s.state, s.reason) {
            (_, Some(DownReason::Disabled)) => LinkState::Disabled,
            (TunnelState::Up, _) => LinkState::Up,
            (TunnelState::Connecting, _) => LinkState::Connecting,
            (TunnelState::Idle, _) => LinkState::Idle,
            (TunnelState::Down, _) => LinkState::Down,
        },
    }
}

const ROW: f64 = 80.0;
const BOX_H: f64 = 54.0;
const X_VNET: f64 = 10.0;
const X_GW: f64 = 250.0;
const X_RIGHT: f64 = 560.0;
const W: f64 = 200.0;
const W_GW: f64 = 170.0;

fn short(list: &[impl ToString]) -> String {
    let v: Vec<String> = list.iter().take(2).map(ToString::to_string).collect();
    let more = if list.len() > 2 { ", …" } else { "" };
    format!("{}{more}", v.join(", "))
}

struct Layout {
    /// (name, y) of gateways.
    gateways: Vec<(String, f64)>,
    /// (kind-qualified name, y) of nodes in the right column.
    right: Vec<(String, f64)>,
}

impl Layout {
    fn gw(&self, name: &str) -> Option<f64> {
        self.gateways
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, y)| *y)
    }
    fn right(&self, key: &str) -> Option<f64> {
        self.right.iter().find(|(n, _)| n == key).map(|(_, y)| *y)
    }
}

fn svg_view(t: &Topology, status: &[ConnectionStatus], title: String, tenant: &str) -> AnyView {
    let c = ctx();
    let mut vnets: Vec<_> = t.vnets.iter().collect();
    vnets.sort_by(|a, b| a.name.cmp(&b.name));
    let mut layout = Layout {
        gateways: Vec::new(),
        right: Vec::new(),
    };
    let mut nodes = Vec::new();
    for (i, v) in vnets.iter().enumerate() {
        let y = 20.0 + i as f64 * ROW;
        nodes.push(
            view! {
                <g class="node vnet">
                    <rect x=X_VNET y=y width=W height=BOX_H rx="6"></rect>
                    <text x=X_VNET + 8.0 y=y + 20.0 class="label">{v.name.clone()}</text>
                    <text x=X_VNET + 8.0 y=y + 40.0 class="sub">{short(&v.address_space)}</text>
                </g>
            }
            .into_any(),
        );
        if let Some(g) = t.gateway_of_vnet(&v.tenant, &v.name) {
            layout.gateways.push((g.name.clone(), y));
            nodes.push(
                view! {
                    <g class="node gateway">
                        <line x1=X_VNET + W y1=y + BOX_H / 2.0 x2=X_GW y2=y + BOX_H / 2.0 class="attach"></line>
                        <rect x=X_GW y=y width=W_GW height=BOX_H rx="6"></rect>
                        <text x=X_GW + 8.0 y=y + 20.0 class="label">{g.name.clone()}</text>
                        <text x=X_GW + 8.0 y=y + 40.0 class="sub">
                            {format!("{} {}", g.gateway_type, g.sku)}
                        </text>
                    </g>
                }
                    .into_any(),
            );
        }
    }
    // Right column: sites, then P2S pools, then remote gateways.
    let mut right_nodes = Vec::new();
    let mut sites: Vec<_> = t.sites.iter().collect();
    sites.sort_by(|a, b| a.name.cmp(&b.name));
    for s in sites {
        right_nodes.push((
            format!("site:{}", s.name),
            s.name.clone(),
            short(&s.address_prefixes),
            "site",
        ));
    }
    for p in &t.point_to_site {
        right_nodes.push((
            format!("p2s:{}", p.gateway),
            format!("{} ({})", c.t(Key::Pool), p.gateway),
            short(&p.address_pool),
            "pool",
        ));
    }
    for conn in &t.connections {
        if let ConnectionKind::VnetToVnet { remote_gateway } = &conn.kind {
            let local = remote_gateway.tenant.as_deref().is_none_or(|x| x == tenant);
            if !(local && layout.gw(&remote_gateway.name).is_some()) {
                let label = format!(
                    "{}/{}",
                    remote_gateway.tenant.as_deref().unwrap_or(tenant),
                    remote_gateway.name
                );
                let key = format!("remote:{label}");
                if !right_nodes.iter().any(|(k, ..)| *k == key) {
                    right_nodes.push((key, label, String::new(), "remote"));
                }
            }
        }
    }
    for (i, (key, label, sub, class)) in right_nodes.into_iter().enumerate() {
        let y = 20.0 + i as f64 * ROW;
        layout.right.push((key, y));
        let cls = format!("node {class}");
        nodes.push(
            view! {
                <g class=cls>
                    <rect x=X_RIGHT y=y width=W height=BOX_H rx="6"></rect>
                    <text x=X_RIGHT + 8.0 y=y + 20.0 class="label">{label}</text>
                    <text x=X_RIGHT + 8.0 y=y + 40.0 class="sub">{sub}</text>
                </g>
            }
            .into_any(),
        );
    }
    let mut links = Vec::new();
    for p in &t.point_to_site {
        if let (Some(gy), Some(py)) = (
            layout.gw(&p.gateway),
            layout.right(&format!("p2s:{}", p.gateway)),
        ) {
            links.push(
                view! {
                    <line
                        class="p2s-link"
                        x1=X_GW + W_GW
                        y1=gy + BOX_H / 2.0
                        x2=X_RIGHT
                        y2=py + BOX_H / 2.0
                    ></line>
                }
                .into_any(),
            );
        }
    }
    let mut conns: Vec<_> = t.connections.iter().collect();
    conns.sort_by(|a, b| a.name.cmp(&b.name));
    let mut bulging: u32 = 0;
    for conn in conns {
        let Some(gy) = layout.gw(&conn.gateway) else {
            continue;
        };
        let state = link_state(conn, status);
        let (x1, y1) = (X_GW + W_GW, gy + BOX_H / 2.0);
        let target = match &conn.kind {
            ConnectionKind::SiteToSite { site } => layout
                .right(&format!("site:{site}"))
                .map(|y| (X_RIGHT, y + BOX_H / 2.0)),
            ConnectionKind::VnetToVnet { remote_gateway } => {
                let local = remote_gateway.tenant.as_deref().is_none_or(|x| x == tenant);
                match layout.gw(&remote_gateway.name).filter(|_| local) {
                    Some(y) => Some((X_GW + W_GW, y + BOX_H / 2.0)),
                    None => layout
                        .right(&format!(
                            "remote:{}/{}",
                            remote_gateway.tenant.as_deref().unwrap_or(tenant),
                            remote_gateway.name
                        ))
                        .map(|y| (X_RIGHT, y + BOX_H / 2.0)),
                }
            }
        };
        let Some((x2, y2)) = target else {
            continue;
        };
        // Gateway-to-gateway links bulge to the right, each further out; their labels sit at
        // the curve's apex, one line apart, so the two halves of a pair never print over each
        // other.
        let (bulge, label_dy) = if (x2 - x1).abs() < 1.0 {
            let k = f64::from(bulging);
            bulging += 1;
            (90.0 + 12.0 * k, 16.0 * k)
        } else {
            (0.0, 0.0)
        };
        let (mx, my) = ((x1 + x2) / 2.0 + bulge, (y1 + y2) / 2.0);
        let d = format!("M {x1} {y1} Q {} {my} {x2} {y2}", mx + bulge);
        let cls = format!("conn state-{}", state.class());
        let state_text = c.t(state.key());
        let label = format!("{} ({state_text})", conn.name);
        links.push(
            view! {
                <g class=cls data-connection=conn.name.clone() data-state=state.class()>
                    <path d=d></path>
                    <text x=mx y=my - 6.0 + label_dy class="conn-label" text-anchor="middle">
                        {label}
                    </text>
                </g>
            }
            .into_any(),
        );
    }
    let rows = vnets.len().max(layout.right.len()).max(1);
    let height = 40.0 + rows as f64 * ROW;
    let view_box = format!("0 0 {} {height}", X_RIGHT + W + 10.0);
    view! {
        <svg
            class="diagram"
            role="img"
            aria-label=title
            viewBox=view_box
            width="100%"
        >
            {nodes}
            {links}
        </svg>
    }
    .into_any()
}

#[component]
pub fn DiagramPage() -> impl IntoView {
    let c = ctx();
    // Re-render the ages every few seconds even when nothing changed.
    let now = RwSignal::new(now_secs());
    if let Ok(h) = set_interval_with_handle(move || now.set(now_secs()), crate::state::POLL) {
        on_cleanup(move || h.clear());
    }
    view! {
        <section class="card" aria-labelledby="diagram-heading">
            <h2 id="diagram-heading">{move || c.t(Key::Diagram)}</h2>
            <ul class="legend" aria-label=move || c.t(Key::Legend)>
                {[LinkState::Up, LinkState::Connecting, LinkState::Idle, LinkState::Down, LinkState::Disabled]
                    .into_iter()
                    .map(|s| {
                        let cls = format!("swatch state-{}", s.class());
                        view! {
                            <li>
                                <span class=cls aria-hidden="true"></span>
                                {move || c.t(s.key())}
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
            {move || match c.topology() {
                None => view! { <p class="muted">{c.t(Key::Loading)}</p> }.into_any(),
                Some(t) if !t.vnets.iter().any(|v| v.tenant == c.tenant_name()) => {
                    let href = Page::Tenant(c.tenant_name(), TPage::New(crate::state::Kind::Vnet)).href();
                    view! {
                        <p class="empty-hint" data-testid="empty-diagram">
                            {c.t(Key::EmptyDiagram)}
                            " "
                            <a href=href>{c.t(Key::CreateOne)}</a>
                        </p>
                    }
                        .into_any()
                }
                Some(t) => {
                    let st = c.status.get();
                    let n = now.get();
                    let tn = c.tenant_name();
                    let svg = svg_view(&t, &st, c.t(Key::Diagram).to_owned(), &tn);
                    let mut conns = t.connections.clone();
                    conns.sort_by(|a, b| a.name.cmp(&b.name));
                    view! {
                        {svg}
                        <h3 id="conn-status-heading">{c.t(Key::Connections)}</h3>
                        <table aria-labelledby="conn-status-heading">
                            <thead>
                                <tr>
                                    <th scope="col">{c.t(Key::Name)}</th>
                                    <th scope="col">{c.t(Key::Gateway)}</th>
                                    <th scope="col">{c.t(Key::Status)}</th>
                                    <th scope="col">{c.t(Key::LastHandshake)}</th>
                                </tr>
                            </thead>
                            <tbody>
                                {conns
                                    .iter()
                                    .map(|conn| {
                                        let s = link_state(conn, &st);
                                        let row = status_of(conn, &st);
                                        let lang = c.lang.get();
                                        let detail = shown_reason(s, row)
                                            .map(|r| c.t(reason_key(r)).to_owned())
                                            .into_iter()
                                            .chain(since_text(lang, row))
                                            .collect::<Vec<_>>()
                                            .join(", ");
                                        let hs = row
                                            .and_then(|x| x.last_handshake_unix)
                                            .filter(|h| *h > 0)
                                            .map(|h| (crate::human::ago(lang, n - h as f64), unix_local_time(lang, h as f64)))
                                            .unwrap_or_else(|| (c.t(Key::Never).to_owned(), String::new()));
                                        let href = Page::Tenant(tn.clone(), TPage::Connection(conn.name.clone())).href();
                                        let cls = format!("state-text state-{}", s.class());
                                        view! {
                                            <tr>
                                                <th scope="row"><a href=href>{conn.name.clone()}</a></th>
                                                <td>{conn.gateway.clone()}</td>
                                                <td>
                                                    <span class=cls>{c.t(s.key())}</span>
                                                    " "
                                                    <span class="muted state-detail">{detail}</span>
                                                </td>
                                                <td title=hs.1>{hs.0}</td>
                                            </tr>
                                        }
                                    })
                                    .collect_view()}
                            </tbody>
                        </table>
                    }
                        .into_any()
                }
            }}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(enabled: bool) -> Connection {
        serde_json::from_value(serde_json::json!({
            "tenant": "acme", "name": "hub-branch", "gateway": "hub-gw",
            "kind": {"type": "SiteToSite", "site": "branch"}, "enabled": enabled
        }))
        .expect("connection")
    }

    fn status(state: TunnelState, reason: Option<DownReason>) -> Vec<ConnectionStatus> {
        vec![ConnectionStatus {
            gateway: "hub-gw".into(),
            connection: "hub-branch".into(),
            worker: "w".into(),
            // A handshake long ago: the portal no longer decides from its age.
            last_handshake_unix: Some(1),
            rx_bytes: 0,
            tx_bytes: 0,
            endpoint: None,
            reported_at: String::new(),
            state,
            since: None,
            reason,
            ipsec: None,
        }]
    }

    #[test]
    fn link_state_is_the_workers_state_or_disabled() {
        let up = status(TunnelState::Up, None);
        assert_eq!(link_state(&conn(true), &up), LinkState::Up);
        assert_eq!(
            link_state(&conn(true), &status(TunnelState::Connecting, None)),
            LinkState::Connecting
        );
        assert_eq!(
            link_state(&conn(true), &status(TunnelState::Idle, None)),
            LinkState::Idle
        );
        let down = status(TunnelState::Down, Some(DownReason::NoAnswer));
        assert_eq!(link_state(&conn(true), &down), LinkState::Down);
        assert_eq!(
            shown_reason(LinkState::Down, down.first()),
            Some(DownReason::NoAnswer)
        );
        assert_eq!(link_state(&conn(true), &[]), LinkState::Down);
        assert_eq!(link_state(&conn(false), &up), LinkState::Disabled);
        let disabled = status(TunnelState::Down, Some(DownReason::Disabled));
        assert_eq!(link_state(&conn(true), &disabled), LinkState::Disabled);
        assert_eq!(shown_reason(LinkState::Disabled, disabled.first()), None);
    }
}
