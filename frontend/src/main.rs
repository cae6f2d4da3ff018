//! The Isthmus portal: Leptos CSR, talking to `/api/v1`.

mod api;
mod bench;
mod connection;
mod connection_ipsec;
mod diagram;
mod effective_routes;
mod forms;
mod human;
mod i18n;
mod instances;
mod list;
mod notices;
mod state;
mod workers;

use std::time::Duration;

use i18n::{Key, Lang, t};
use isthmus_shared::api::{Health, RegionPairMeterView};
use leptos::prelude::*;
use state::{Ctx, Kind, Page, TPage};

/// How often the dashboard refreshes from the server.
const REFRESH: Duration = Duration::from_secs(2);

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

#[component]
fn App() -> impl IntoView {
    let ctx = Ctx::create();
    provide_context(ctx);
    let lang = ctx.lang;
    Effect::new(move |_| {
        let l = lang.get();
        i18n::remember(l);
        if let Some(html) = document().document_element() {
            let _ = html.set_attribute("lang", l.code());
        }
    });
    ctx.start();

    view! {
        <header>
            <h1>{move || t(lang.get(), Key::Title)}</h1>
            <div class="header-tools">
                <TenantSwitcher />
                <label>
                    <span class="sr-only">{move || t(lang.get(), Key::Language)}</span>
                    <select
                        aria-label=move || t(lang.get(), Key::Language)
                        on:change=move |ev| {
                            lang.set(if event_target_value(&ev) == "ja" { Lang::Ja } else { Lang::En });
                        }
                        prop:value=move || lang.get().code()
                    >
                        <option value="en">"English"</option>
                        <option value="ja">"日本語"</option>
                    </select>
                </label>
                <Show when=move || ctx.me.with(Option::is_some)>
                    <span class="muted-light">
                        {move || t(lang.get(), Key::SignedInAs)} " "
                        {move || ctx.me.with(|m| m.as_ref().map(|m| m.username.clone()))}
                    </span>
                    <button on:click=move |_| ctx.logout()>{move || t(lang.get(), Key::LogOut)}</button>
                </Show>
            </div>
        </header>
        <Show when=move || ctx.me.with(Option::is_some)>
            <Nav />
        </Show>
        <main id="main">
            {move || {
                let page = ctx.page.get();
                if let Page::Bench = page {
                    return view! { <bench::BenchPage /> }.into_any();
                }
                if !ctx.checked.get() {
                    return view! { <p class="muted">{move || ctx.t(Key::Loading)}</p> }.into_any();
                }
                if ctx.me.with(Option::is_none) {
                    return view! { <Login /> }.into_any();
                }
                match page {
                    Page::Home | Page::Bench => view! { <Dashboard /> }.into_any(),
                    Page::Tenant(_, tp) => untrack(|| tenant_page(tp)),
                }
            }}
        </main>
    }
}

fn tenant_page(tp: TPage) -> AnyView {
    match tp {
        TPage::Diagram => view! { <diagram::DiagramPage /> }.into_any(),
        TPage::Routes => view! { <effective_routes::RoutesPage /> }.into_any(),
        TPage::List(kind) => view! { <list::ListPage kind=kind /> }.into_any(),
        TPage::New(kind) => view! { <forms::FormPage kind=kind name=None /> }.into_any(),
        TPage::Edit(kind, name) => {
            view! { <forms::FormPage kind=kind name=Some(name) /> }.into_any()
        }
        TPage::Connection(name) => view! { <connection::ConnectionPage name=name /> }.into_any(),
    }
}

#[component]
fn Nav() -> impl IntoView {
    let ctx = state::ctx();
    let link = move |href: String, key: Key| {
        let current = href.clone();
        view! {
            <li>
                <a
                    href=href
                    aria-current=move || (ctx.hash.get() == current).then_some("page")
                >
                    {move || ctx.t(key)}
                </a>
            </li>
        }
    };
    view! {
        <nav aria-label=move || ctx.t(Key::MainNav)>
            <ul>
                {link("#/".to_owned(), Key::Dashboard)}
                {move || {
                    ctx.tenant
                        .get()
                        .map(|tn| {
                            let p = |tp: TPage| Page::Tenant(tn.clone(), tp).href();
                            view! {
                                {link(p(TPage::Diagram), Key::Diagram)}
                                {link(p(TPage::List(Kind::Vnet)), Key::Vnets)}
                                {link(p(TPage::List(Kind::Gateway)), Key::Gateways)}
                                {link(p(TPage::List(Kind::Site)), Key::Sites)}
                                {link(p(TPage::List(Kind::Connection)), Key::Connections)}
                                {link(p(TPage::List(Kind::PointToSite)), Key::PointToSite)}
                                {link(p(TPage::Routes), Key::Routes)}
                            }
                        })
                }}
            </ul>
        </nav>
    }
}

#[component]
fn TenantSwitcher() -> impl IntoView {
    let ctx = state::ctx();
    view! {
        <Show when=move || ctx.me.with(Option::is_some) && !ctx.tenants.with(Vec::is_empty)>
            <label>
                <span class="sr-only">{move || ctx.t(Key::Tenant)}</span>
                <select
                    aria-label=move || ctx.t(Key::Tenant)
                    on:change=move |ev| {
                        let name = event_target_value(&ev);
                        ctx.switch_tenant(name);
                    }
                    prop:value=move || ctx.tenant.get().unwrap_or_default()
                >
                    {move || {
                        ctx.tenants
                            .get()
                            .into_iter()
                            .map(|ti| {
                                let n = ti.name.clone();
                                let sel = ctx.tenant.get().as_deref() == Some(n.as_str());
                                view! {
                                    <option value=n.clone() selected=sel>
                                        {n.clone()}
                                    </option>
                                }
                            })
                            .collect_view()
                    }}
                </select>
            </label>
        </Show>
    }
}

#[component]
fn Login() -> impl IntoView {
    let ctx = state::ctx();
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        busy.set(true);
        leptos::task::spawn_local(async move {
            match api::login(username.get_untracked(), password.get_untracked()).await {
                Ok(me) => {
                    error.set(None);
                    ctx.logged_in(me).await;
                }
                Err(e) => error.set(Some(e.message)),
            }
            busy.set(false);
        });
    };
    view! {
        <section class="card narrow" aria-labelledby="login-heading">
            <h2 id="login-heading">{move || ctx.t(Key::SignIn)}</h2>
            <form on:submit=submit>
                <div class="field">
                    <label for="login-username">{move || ctx.t(Key::Username)}</label>
                    <input
                        id="login-username"
                        name="username"
                        autocomplete="username"
                        required
                        prop:value=move || username.get()
                        on:input=move |ev| username.set(event_target_value(&ev))
                    />
                </div>
                <div class="field">
                    <label for="login-password">{move || ctx.t(Key::Password)}</label>
                    <input
                        id="login-password"
                        name="password"
                        type="password"
                        autocomplete="current-password"
                        required
                        prop:value=move || password.get()
                        on:input=move |ev| password.set(event_target_value(&ev))
                    />
                </div>
                {move || {
                    error
                        .get()
                        .map(|e| {
                            view! {
                                <p role="alert" class="status-bad">
                                    {move || ctx.t(Key::LoginFailed)} ": " {e}
                                </p>
                            }
                        })
                }}
                <button type="submit" disabled=move || busy.get()>
                    {move || ctx.t(Key::LogIn)}
                </button>
            </form>
        </section>
    }
}

#[component]
fn Dashboard() -> impl IntoView {
    let ctx = state::ctx();
    let health: RwSignal<Option<Result<Health, String>>> = RwSignal::new(None);
    let meters: RwSignal<Option<Result<Vec<RegionPairMeterView>, String>>> = RwSignal::new(None);
    let is_admin = move || ctx.me.with(|m| m.as_ref().is_some_and(|m| m.is_admin));
    let refresh = move || {
        leptos::task::spawn_local(async move {
            health.set(Some(api::health().await.map_err(|e| e.message)));
            // LIM-6 metering is for administrators only (the server says 403 to others).
            if is_admin() {
                meters.set(Some(api::region_pairs().await.map_err(|e| e.message)));
            }
        });
    };
    refresh();
    if let Ok(h) = set_interval_with_handle(refresh, REFRESH) {
        on_cleanup(move || h.clear());
    }
    view! {
        <HealthCard health=health />
        <Show when=is_admin>
            <workers::WorkersCard refresh=REFRESH />
            <MeteringCard meters=meters />
        </Show>
        <TenantsCard />
    }
}

/// LIM-6: outer VNet-to-VNet bytes per region pair, as the workers report them; only
/// cross-region pairs are billed.
#[component]
fn MeteringCard(
    meters: RwSignal<Option<Result<Vec<RegionPairMeterView>, String>>>,
) -> impl IntoView {
    let ctx = state::ctx();
    view! {
        <section class="card" aria-labelledby="metering-heading">
            <h2 id="metering-heading">{move || ctx.t(Key::Metering)}</h2>
            {move || {
                let l = ctx.lang.get();
                match meters.get() {
                    None => view! { <p class="muted">{t(l, Key::Loading)}</p> }.into_any(),
                    Some(Err(e)) => view! { <p role="alert" class="status-bad">{e}</p> }.into_any(),
                    Some(Ok(list)) if list.is_empty() => {
                        view! { <p class="muted">{t(l, Key::NoMetering)}</p> }.into_any()
                    }
                    Some(Ok(list)) => view! { <MeteringTable lang=l meters=list /> }.into_any(),
                }
            }}
        </section>
    }
}

#[component]
fn MeteringTable(lang: Lang, meters: Vec<RegionPairMeterView>) -> impl IntoView {
    view! {
        <table aria-labelledby="metering-heading">
            <thead>
                <tr>
                    <th scope="col">{t(lang, Key::RegionPair)}</th>
                    <th scope="col">{t(lang, Key::Billable)}</th>
                    <th scope="col" class="num">{t(lang, Key::SentBytes)}</th>
                    <th scope="col" class="num">{t(lang, Key::ReceivedBytes)}</th>
                    <th scope="col" class="num">{t(lang, Key::BilledBytes)}</th>
                </tr>
            </thead>
            <tbody>
                {meters
                    .into_iter()
                    .map(|m| {
                        let pair = if m.a == m.b {
                            m.a.clone()
                        } else {
                            format!("{} ↔ {}", m.a, m.b)
                        };
                        view! {
                            <tr data-pair=format!("{}|{}", m.a, m.b)>
                                <td>{pair}</td>
                                <td>{t(lang, if m.billable { Key::YesWord } else { Key::NoWord })}</td>
                                <td class="num">{connection::format_bytes(m.tx_bytes as f64)}</td>
                                <td class="num">{connection::format_bytes(m.rx_bytes as f64)}</td>
                                <td class="num" data-testid="billed">
                                    {connection::format_bytes(m.billed_bytes as f64)}
                                </td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
        <p class="muted small">{t(lang, Key::DecimalUnits)}</p>
    }
}

#[component]
fn TenantsCard() -> impl IntoView {
    let ctx = state::ctx();
    let name = RwSignal::new(String::new());
    let error = RwSignal::new(None::<api::ApiError>);
    // NAME-2, checked as the user types (nothing is shown before).
    let touched = RwSignal::new(false);
    let name_problem = Memo::new(move |_| {
        let n = name.get();
        (touched.get() && !n.is_empty())
            .then(|| isthmus_shared::validate::name_problem(n.trim()))
            .flatten()
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let n = name.get_untracked().trim().to_owned();
        touched.set(true);
        if name_problem.get_untracked().is_some() {
            return;
        }
        leptos::task::spawn_local(async move {
            match api::create_tenant(n.clone()).await {
                Ok(_) => {
                    error.set(None);
                    name.set(String::new());
                    ctx.reload_tenants().await;
                    ctx.switch_tenant(n);
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    view! {
        <section class="card" aria-labelledby="tenants-heading">
            <h2 id="tenants-heading">{move || ctx.t(Key::Tenants)}</h2>
            {move || {
                let list = ctx.tenants.get();
                if list.is_empty() {
                    view! { <p class="muted">{move || ctx.t(Key::NoTenants)}</p> }.into_any()
                } else {
                    view! {
                        <ul class="tenant-list">
                            {list
                                .into_iter()
                                .map(|ti| {
                                    let href = Page::Tenant(ti.name.clone(), TPage::Diagram).href();
                                    view! {
                                        <li>
                                            <a href=href>{ti.name.clone()}</a>
                                            " (" {role_word(ctx.lang.get(), &ti.role)} ")"
                                        </li>
                                    }
                                })
                                .collect_view()}
                        </ul>
                    }
                        .into_any()
                }
            }}
            <form on:submit=submit class="inline-form">
                <label for="new-tenant">{move || ctx.t(Key::TenantName)}</label>
                <input
                    id="new-tenant"
                    required
                    aria-describedby="new-tenant-problems"
                    aria-invalid=move || name_problem.with(Option::is_some).to_string()
                    prop:value=move || name.get()
                    on:input=move |ev| {
                        name.set(event_target_value(&ev));
                        touched.set(true);
                        error.set(None);
                    }
                />
                <button type="submit">{move || ctx.t(Key::CreateTenant)}</button>
            </form>
            <ul class="problems" id="new-tenant-problems" aria-live="polite">
                {move || {
                    name_problem
                        .get()
                        .map(|m| {
                            let p = forms::Problem {
                                rule: Some(isthmus_shared::rules::RuleId::Name2),
                                error: true,
                                message: m,
                                expect: None,
                                violation: None,
                                link: None,
                            };
                            view! { <forms::ProblemItem problem=p lang=ctx.lang.get() /> }
                        })
                }}
            </ul>
            {move || error.get().map(|e| view! { <forms::Refusal error=e /> })}
        </section>
    }
}

#[component]
fn HealthCard(health: RwSignal<Option<Result<Health, String>>>) -> impl IntoView {
    let ctx = state::ctx();
    view! {
        <section class="card" aria-labelledby="health-heading">
            <h2 id="health-heading">{move || ctx.t(Key::Health)}</h2>
            {move || {
                let l = ctx.lang.get();
                match health.get() {
                    None => view! { <p class="muted">{t(l, Key::Loading)}</p> }.into_any(),
                    Some(Err(e)) => {
                        view! {
                            <p role="alert" class="status-bad">
                                {t(l, Key::ServerUnreachable)} ": " {e}
                            </p>
                        }
                            .into_any()
                    }
                    Some(Ok(h)) => view! { <HealthFacts lang=l health=h /> }.into_any(),
                }
            }}
        </section>
    }
}

/// The service status for people (the server says `ok` when its database answers).
fn health_word(lang: Lang, status: &str) -> String {
    match status {
        "ok" => t(lang, Key::HealthOk).to_owned(),
        _ => format!("{} ({status})", t(lang, Key::HealthDegraded)),
    }
}

/// A tenant role for people.
fn role_word(lang: Lang, role: &str) -> String {
    match role {
        "owner" => t(lang, Key::RoleOwner).to_owned(),
        "reader" => t(lang, Key::RoleReader).to_owned(),
        "admin" | "administrator" => t(lang, Key::RoleAdmin).to_owned(),
        other => other.to_owned(),
    }
}

#[component]
fn HealthFacts(lang: Lang, health: Health) -> impl IntoView {
    let workers = health.workers.clone();
    view! {
        <dl class="facts">
            <dt>{t(lang, Key::Status)}</dt>
            <dd
                class=if health.status == "ok" { "status-ok" } else { "status-bad" }
                data-testid="health-status"
                data-status=health.status.clone()
            >
                {health_word(lang, &health.status)}
            </dd>
            <dt>{t(lang, Key::Version)}</dt>
            <dd data-testid="health-version">{health.version.clone()}</dd>
            <dt>{t(lang, Key::Database)}</dt>
            <dd data-testid="health-database">{health.database.as_str()}</dd>
        </dl>
        <h3 id="workers-heading">{t(lang, Key::Workers)}</h3>
        {if workers.is_empty() {
            view! { <p class="muted">{t(lang, Key::NoWorkers)}</p> }.into_any()
        } else {
            view! {
                <table aria-labelledby="workers-heading">
                    <thead>
                        <tr>
                            <th scope="col">{t(lang, Key::WorkerName)}</th>
                            <th scope="col">{t(lang, Key::Version)}</th>
                            <th scope="col">{t(lang, Key::LastSeen)}</th>
                        </tr>
                    </thead>
                    <tbody>
                        {workers
                            .into_iter()
                            .map(|w| {
                                view! {
                                    <tr>
                                        <td>{w.name}</td>
                                        <td>{w.version}</td>
                                        <td title=diagram::local_time(lang, &w.last_seen)
                                            .unwrap_or_else(|| w.last_seen.clone())>
                                            {diagram::unix_of(&w.last_seen)
                                                .map(|u| human::ago(lang, diagram::now_secs() - u))
                                                .unwrap_or_else(|| w.last_seen.clone())}
                                        </td>
                                    </tr>
                                }
                            })
                            .collect_view()}
                    </tbody>
                </table>
            }
                .into_any()
        }}
    }
}
