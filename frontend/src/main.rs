//! The Isthmus portal: Leptos CSR, talking to `/api/v1`.

mod api;
mod i18n;

use std::time::Duration;

use i18n::{Key, Lang, t};
use isthmus_shared::api::Health;
use leptos::prelude::*;

/// How often the dashboard refreshes from the server.
const REFRESH: Duration = Duration::from_secs(2);

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

#[component]
fn App() -> impl IntoView {
    let lang = RwSignal::new(i18n::initial_lang());
    Effect::new(move |_| {
        let l = lang.get();
        i18n::remember(l);
        if let Some(html) = document().document_element() {
            let _ = html.set_attribute("lang", l.code());
        }
    });
    let health: RwSignal<Option<Result<Health, String>>> = RwSignal::new(None);
    let refresh = move || {
        leptos::task::spawn_local(async move {
            health.set(Some(api::health().await));
        });
    };
    refresh();
    let _ = set_interval_with_handle(refresh, REFRESH);

    view! {
        <header>
            <h1>{move || t(lang.get(), Key::Title)}</h1>
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
        </header>
        <main>
            <HealthCard lang=lang health=health />
        </main>
    }
}

#[component]
fn HealthCard(
    lang: RwSignal<Lang>,
    health: RwSignal<Option<Result<Health, String>>>,
) -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="health-heading">
            <h2 id="health-heading">{move || t(lang.get(), Key::Health)}</h2>
            {move || {
                let l = lang.get();
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

#[component]
fn HealthFacts(lang: Lang, health: Health) -> impl IntoView {
    let workers = health.workers.clone();
    view! {
        <dl class="facts">
            <dt>{t(lang, Key::Status)}</dt>
            <dd class="status-ok" data-testid="health-status">{health.status.clone()}</dd>
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
                                        <td>{w.last_seen}</td>
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
