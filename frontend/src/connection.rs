//! A connection's page: live status, traffic chart, device configuration (download and QR
//! code; for IPsec `swanctl.conf` and the parameter sheet, and the IKE and CHILD SAs, in
//! `connection_ipsec`), and the shared key (reveal and replace, each behind a confirmation).

use std::time::Duration;

use isthmus_shared::model::{Change, SharedKey, TunnelProtocol};
use leptos::prelude::*;

use crate::api;
use crate::connection_ipsec::{IpsecDeviceCard, IpsecStatusCard};
use crate::diagram::{
    link_state, local_time, now_secs, reason_key, shown_reason, status_of, unix_local_time,
};
use crate::forms::{
    ConfirmDialog, Draft, Live, Problems, Resource, mode_key, problems_id, protocol_key,
};
use crate::human;
use crate::i18n::{Key, Lang, t, tf};
use crate::notices::GatewayNotices;
use crate::state::{Kind, Page, TPage, ctx};

/// How often the page samples the status endpoint.
const SAMPLE: Duration = Duration::from_secs(2);
const MAX_SAMPLES: usize = 90;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    t: f64,
    rx: f64,
    tx: f64,
}

/// One point of the chart: the rate (bytes per second) between two successive samples.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RatePoint {
    t: f64,
    rx: f64,
    tx: f64,
}

/// The rates between successive samples (a counter that went back, after a worker restart,
/// starts over and gives no point).
fn rates(samples: &[Sample]) -> Vec<RatePoint> {
    samples
        .windows(2)
        .filter_map(|w| {
            let (a, b) = (w[0], w[1]);
            Some(RatePoint {
                t: b.t,
                rx: human::rate(a.t, a.rx, b.t, b.rx)?,
                tx: human::rate(a.t, a.tx, b.t, b.tx)?,
            })
        })
        .collect()
}

/// The traffic chart: receive and send rates (bit/s) over the sampled window, the axis labels
/// left of the plot (they never cross the lines) and the legend below it, in HTML.
fn chart(lang: Lang, samples: &[Sample]) -> AnyView {
    const W: f64 = 480.0;
    const H: f64 = 150.0;
    const LEFT: f64 = 78.0;
    const TOP: f64 = 10.0;
    const BOTTOM: f64 = 22.0;
    let points = rates(samples);
    let (t0, t1) = match (points.first(), points.last()) {
        (Some(a), Some(b)) => (a.t, b.t.max(a.t + 1.0)),
        _ => (0.0, 1.0),
    };
    let peak = points
        .iter()
        .map(|p| p.rx.max(p.tx))
        .fold(0.0_f64, f64::max);
    // The axis ends at a round number of bit/s.
    let max = human::nice_ceiling(peak * 8.0) / 8.0;
    let plot_h = H - TOP - BOTTOM;
    let pts = |f: fn(&RatePoint) -> f64| {
        points
            .iter()
            .map(|p| {
                let x = LEFT + (p.t - t0) / (t1 - t0) * (W - LEFT - 8.0);
                let y = TOP + plot_h - f(p) / max * plot_h;
                format!("{x:.1},{y:.1}")
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let rx = pts(|p| p.rx);
    let tx = pts(|p| p.tx);
    let minutes = ((t1 - t0) / 60.0).ceil().max(1.0);
    let window = tf(lang, Key::ChartWindow, &[("n", &format!("{minutes:.0}"))]);
    let last = points.last().copied();
    let empty = points.is_empty();
    view! {
        <svg
            class="chart"
            role="img"
            aria-label=t(lang, Key::ChartLabel)
            data-peak=format!("{peak:.1}")
            viewBox=format!("0 0 {W} {H}")
            width="100%"
        >
            <line x1=LEFT y1=TOP + plot_h x2=W - 8.0 y2=TOP + plot_h class="axis"></line>
            <line x1=LEFT y1=TOP x2=LEFT y2=TOP + plot_h class="axis"></line>
            <line x1=LEFT y1=TOP x2=W - 8.0 y2=TOP class="grid"></line>
            <text x=LEFT - 6.0 y=TOP + 4.0 class="sub" text-anchor="end" data-testid="chart-max">
                {human::bit_rate(max)}
            </text>
            <text x=LEFT - 6.0 y=TOP + plot_h + 4.0 class="sub" text-anchor="end">"0"</text>
            <text x=LEFT y=H - 6.0 class="sub">{window}</text>
            <polyline points=rx class="series-rx"></polyline>
            <polyline points=tx class="series-tx"></polyline>
        </svg>
        <ul class="legend chart-legend">
            <li>
                <span class="swatch series-rx-swatch" aria-hidden="true"></span>
                {t(lang, Key::ChartRx)}
                " "
                <span data-testid="rate-rx">{last.map(|p| human::bit_rate(p.rx))}</span>
            </li>
            <li>
                <span class="swatch series-tx-swatch" aria-hidden="true"></span>
                {t(lang, Key::ChartTx)}
                " "
                <span data-testid="rate-tx">{last.map(|p| human::bit_rate(p.tx))}</span>
            </li>
        </ul>
        {empty.then(|| view! { <p class="muted">{t(lang, Key::ChartWaiting)}</p> })}
    }
    .into_any()
}

/// Bytes for people: B, kB, MB, GB (powers of 1,000).
pub fn format_bytes(b: f64) -> String {
    human::bytes(b)
}

fn qr_svg(text: &str) -> Result<String, String> {
    let code = qrcode::QrCode::new(text.as_bytes()).map_err(|e| e.to_string())?;
    Ok(code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(240, 240)
        .build())
}

#[component]
pub fn ConnectionPage(name: String) -> impl IntoView {
    let c = ctx();
    let name = StoredValue::new(name);
    let samples = RwSignal::new(Vec::<Sample>::new());
    let sample = move || {
        let Some(tn) = c.tenant.get_untracked() else {
            return;
        };
        leptos::task::spawn_local(async move {
            if let Ok(list) = api::status(&tn).await {
                let n = name.get_value();
                if let Some(s) = list.iter().find(|s| s.connection == n) {
                    let smp = Sample {
                        t: now_secs(),
                        rx: s.rx_bytes as f64,
                        tx: s.tx_bytes as f64,
                    };
                    samples.update(|v| {
                        v.push(smp);
                        if v.len() > MAX_SAMPLES {
                            v.remove(0);
                        }
                    });
                }
                if c.status.with_untracked(|old| *old != list) {
                    c.status.set(list);
                }
            }
        });
    };
    sample();
    if let Ok(h) = set_interval_with_handle(sample, SAMPLE) {
        on_cleanup(move || h.clear());
    }
    let conn = move || {
        let n = name.get_value();
        c.topology()
            .and_then(|t| t.connection(&c.tenant_name(), &n).cloned())
    };
    let protocol = Memo::new(move |_| conn().map(|x| x.protocol));
    let ipsec_status = Memo::new(move |_| {
        let x = conn()?;
        c.status
            .with(|st| status_of(&x, st).and_then(|s| s.ipsec.clone()))
    });
    view! {
        <section class="card" aria-labelledby="conn-heading">
            <h2 id="conn-heading">{move || c.t(Key::Connections)} ": " {name.get_value()}</h2>
            {move || {
                if !c.loaded() {
                    return view! { <p class="muted">{c.t(Key::Loading)}</p> }.into_any();
                }
                let Some(x) = conn() else {
                    return view! { <p role="alert">{c.t(Key::NotFound)}</p> }.into_any();
                };
                let st = c.status.get();
                let now = now_secs();
                let state = link_state(&x, &st);
                let s = status_of(&x, &st).cloned();
                let lang = c.lang.get();
                let reason = shown_reason(state, s.as_ref())
                    .map(|r| format!("({})", c.t(reason_key(r))))
                    .unwrap_or_default();
                let since = s
                    .as_ref()
                    .and_then(|s| s.since.as_deref())
                    .and_then(|t| local_time(lang, t))
                    .unwrap_or_default();
                let hs = s
                    .as_ref()
                    .and_then(|s| s.last_handshake_unix)
                    .filter(|h| *h > 0)
                    .map(|h| (human::ago(lang, now - h as f64), unix_local_time(lang, h as f64)))
                    .unwrap_or_else(|| (c.t(Key::Never).to_owned(), String::new()));
                let kind = match &x.kind {
                    isthmus_shared::model::ConnectionKind::SiteToSite { site } => {
                        format!("{} → {site}", c.t(Key::SiteToSite))
                    }
                    isthmus_shared::model::ConnectionKind::VnetToVnet { remote_gateway } => {
                        format!("{} → {}", c.t(Key::VnetToVnet), remote_gateway.name)
                    }
                };
                let rx = s.as_ref().map(|s| s.rx_bytes).unwrap_or(0);
                let tx = s.as_ref().map(|s| s.tx_bytes).unwrap_or(0);
                let exact = |b: i64| format!("{b} B ({})", c.t(Key::DecimalUnits));
                let ipsec = (x.protocol == TunnelProtocol::IPsec).then(|| {
                    view! {
                        <dt>{c.t(Key::ConnectionMode)}</dt>
                        <dd data-testid="conn-mode">{c.t(mode_key(x.connection_mode))}</dd>
                    }
                });
                let cls = format!("state-text state-{}", state.class());
                let edit = Page::Tenant(c.tenant_name(), TPage::Edit(Kind::Connection, x.name.clone()))
                    .href();
                view! {
                    <dl class="facts">
                        <dt>{c.t(Key::Gateway)}</dt>
                        <dd>{x.gateway.clone()}</dd>
                        <dt>{c.t(Key::ConnectionKind)}</dt>
                        <dd>{kind}</dd>
                        <dt>{c.t(Key::Protocol)}</dt>
                        <dd data-testid="conn-protocol">{c.t(protocol_key(x.protocol))}</dd>
                        {ipsec}
                        <dt>{c.t(Key::Status)}</dt>
                        <dd>
                            <span class=cls data-testid="conn-state">{c.t(state.key())}</span>
                            " "
                            <span data-testid="conn-reason">{reason}</span>
                        </dd>
                        <dt>{c.t(Key::Since)}</dt>
                        <dd data-testid="conn-since">{since}</dd>
                        <dt>{c.t(Key::LastHandshake)}</dt>
                        <dd data-testid="conn-handshake" title=hs.1>{hs.0}</dd>
                        <dt>{c.t(Key::Endpoint)}</dt>
                        <dd>{s.as_ref().and_then(|s| s.endpoint.clone()).unwrap_or_default()}</dd>
                        <dt>{c.t(Key::Worker)}</dt>
                        <dd>{s.as_ref().map(|s| s.worker.clone()).unwrap_or_default()}</dd>
                        <dt>{c.t(Key::BytesIn)}</dt>
                        <dd data-testid="conn-rx" title=exact(rx)>{human::bytes(rx as f64)}</dd>
                        <dt>{c.t(Key::BytesOut)}</dt>
                        <dd data-testid="conn-tx" title=exact(tx)>{human::bytes(tx as f64)}</dd>
                    </dl>
                    <p><a href=edit>{c.t(Key::Edit)}</a></p>
                }
                    .into_any()
            }}
        </section>
        <section class="card" aria-labelledby="traffic-heading">
            <h2 id="traffic-heading">{move || c.t(Key::Traffic)}</h2>
            {move || {
                let lang = c.lang.get();
                samples.with(|s| chart(lang, s))
            }}
        </section>
        {move || {
            if protocol.get() == Some(TunnelProtocol::IPsec) {
                view! {
                    <IpsecStatusCard status=ipsec_status />
                    <IpsecDeviceCard name=name.get_value() />
                }
                    .into_any()
            } else {
                view! { <DeviceConfigCard name=name.get_value() /> }.into_any()
            }
        }}
        <SharedKeyCard name=name.get_value() />
    }
}

#[component]
fn DeviceConfigCard(name: String) -> impl IntoView {
    let c = ctx();
    let qr = RwSignal::new(None::<Result<String, String>>);
    let tn = c.tenant.get_untracked().unwrap_or_default();
    let href = api::device_config_url(&tn, &name);
    let file = format!("{name}.conf");
    let href2 = api::device_config_tunnel2_url(&tn, &name);
    let file2 = isthmus_shared::device::ActiveActiveTunnel::file_name(&name, 2);
    let n = name.clone();
    let show_qr = move |_| {
        let tn = tn.clone();
        let n = n.clone();
        leptos::task::spawn_local(async move {
            let r = match api::device_config(&tn, &n).await {
                Ok(text) => qr_svg(&text),
                Err(e) => Err(e.message),
            };
            qr.set(Some(r));
        });
    };
    let conn_name = name.clone();
    let gateway = Signal::derive(move || {
        c.topology().and_then(|t| {
            t.connection(&c.tenant_name(), &conn_name)
                .map(|x| x.gateway.clone())
        })
    });
    // Issue 16 item 6: a site connection to an active-active gateway is two tunnels; the
    // second exists while the gateway runs on two instances.
    let conn_name = name.clone();
    let tunnels = Signal::derive(move || {
        let t = c.topology()?;
        let x = t.connection(&c.tenant_name(), &conn_name)?;
        x.site()?;
        let g = t.gateway(&x.tenant, &x.gateway)?;
        g.active_active.then_some(g.secondary_endpoint.is_some())
    });

    view! {
        <section class="card" aria-labelledby="device-heading">
            <h2 id="device-heading">{move || c.t(Key::DeviceConfig)}</h2>
            <GatewayNotices gateway=gateway />
            <p>
                <a class="button" href=href download=file data-testid="download-tunnel-1">
                    {move || {
                        c.t(if tunnels.get().is_some() { Key::DownloadTunnel1 } else { Key::Download })
                    }}
                </a>
                {move || {
                    (tunnels.get() == Some(true))
                        .then(|| {
                            view! {
                                " "
                                <a
                                    class="button"
                                    href=href2.clone()
                                    download=file2.clone()
                                    data-testid="download-tunnel-2"
                                >
                                    {c.t(Key::DownloadTunnel2)}
                                </a>
                            }
                        })
                }}
                " "
                <button on:click=show_qr>{move || c.t(Key::ShowQr)}</button>
            </p>
            {move || {
                tunnels
                    .get()
                    .map(|two| {
                        view! {
                            <p class="muted" data-testid="active-active-help">
                                {c.t(Key::ActiveActiveHelp)}
                            </p>
                            {(!two).then(|| view! { <p class="muted">{c.t(Key::TunnelTwoPending)}</p> })}
                        }
                    })
            }}
            {move || {
                qr.get()
                    .map(|r| match r {
                        Ok(svg) => {
                            view! {
                                <div
                                    class="qr"
                                    role="img"
                                    aria-label=c.t(Key::QrCode)
                                    inner_html=svg
                                ></div>
                            }
                                .into_any()
                        }
                        Err(e) => view! { <p role="alert" class="status-bad">{e}</p> }.into_any(),
                    })
            }}
        </section>
    }
}

#[component]
fn SharedKeyCard(name: String) -> impl IntoView {
    let c = ctx();
    let name = StoredValue::new(name);
    let revealed = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    let done = RwSignal::new(false);
    let reveal_open = RwSignal::new(false);
    let replace_open = RwSignal::new(false);
    let new_key = RwSignal::new(String::new());
    let draft = Memo::new(move |_| {
        let change = c
            .topology()
            .and_then(|t| t.connection(&c.tenant_name(), &name.get_value()).cloned())
            .map(|mut x| {
                x.shared_key = Some(SharedKey::new(new_key.get()));
                Change::UpsertConnection(x)
            });
        Draft {
            change,
            parse: Vec::new(),
        }
    });
    let resource = Memo::new(move |_| Resource {
        kind: Kind::Connection,
        tenant: c.tenant_name(),
        name: name.get_value(),
    });
    let fields = Memo::new(|_| vec!["shared_key".to_owned()]);
    let live = Live::new(resource, "name", fields, draft);
    let reveal = Callback::new(move |()| {
        let tn = c.tenant_name();
        leptos::task::spawn_local(async move {
            match api::shared_key(&tn, &name.get_value()).await {
                Ok(k) => {
                    error.set(None);
                    revealed.set(Some(k));
                }
                Err(e) => error.set(Some(e.message)),
            }
        });
    });
    let replace = Callback::new(move |()| {
        let tn = c.tenant_name();
        let key = new_key.get_untracked();
        leptos::task::spawn_local(async move {
            match api::set_shared_key(&tn, &name.get_value(), key).await {
                Ok(()) => {
                    error.set(None);
                    live.set_server(Vec::new());
                    revealed.set(None);
                    done.set(true);
                    new_key.set(String::new());
                    live.reset();
                }
                Err(e) => {
                    live.set_server(e.violations.clone());
                    error.set(Some(e.message));
                }
            }
        });
    });
    view! {
        <section class="card" aria-labelledby="key-heading">
            <h2 id="key-heading">{move || c.t(Key::SharedKey)}</h2>
            <p>
                <button on:click=move |_| reveal_open.set(true)>{move || c.t(Key::RevealKey)}</button>
            </p>
            {move || {
                revealed
                    .get()
                    .map(|k| {
                        view! {
                            <p>
                                <code data-testid="shared-key">{k}</code>
                            </p>
                        }
                    })
            }}
            <form
                class="inline-form"
                novalidate
                on:submit=move |ev| {
                    ev.prevent_default();
                    done.set(false);
                    live.mark_submitted();
                    replace_open.set(true);
                }
            >
                <label for="f-shared_key">{move || c.t(Key::NewSharedKey)}</label>
                <input
                    id="f-shared_key"
                    autocomplete="off"
                    aria-describedby=problems_id("form", "shared_key")
                    aria-invalid=move || live.invalid("shared_key", !new_key.with(String::is_empty)).to_string()
                    prop:value=move || new_key.get()
                    on:input=move |ev| {
                        new_key.set(event_target_value(&ev));
                        live.touch("shared_key");
                    }
                />
                <button type="submit">{move || c.t(Key::ReplaceKey)}</button>
            </form>
            <Problems
                live=live
                form="form"
                field="shared_key".to_owned()
                filled=Signal::derive(move || !new_key.with(String::is_empty))
            />
            {move || {
                done.get().then(|| view! { <p role="status" class="status-ok">{c.t(Key::KeyReplaced)}</p> })
            }}
            {move || error.get().map(|e| view! { <p role="alert" class="status-bad">{e}</p> })}
            <ConfirmDialog
                open=reveal_open
                message=Signal::derive(move || c.t(Key::ConfirmReveal).to_owned())
                on_confirm=reveal
            />
            <ConfirmDialog
                open=replace_open
                message=Signal::derive(move || c.t(Key::ConfirmReplace).to_owned())
                on_confirm=replace
            />
        </section>
    }
}
