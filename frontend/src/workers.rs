//! Issue 16, for administrators: every known worker with its zone, whether it is live and
//! draining, its active and standby gateway instances, and Drain / Undrain (confirmed with what
//! a drain does).

use std::time::Duration;

use leptos::prelude::*;

use crate::api::{self, ApiError, WorkerEntry};
use crate::forms::{ConfirmDialog, Refusal};
use crate::i18n::{Key, Lang, t, tf};
use crate::state::ctx;
use crate::{diagram, human};

/// The confirmation of a drain (`drain`) or an undrain of worker `name`, in `lang`.
pub fn confirm_text(lang: Lang, name: &str, drain: bool) -> String {
    let key = if drain {
        Key::ConfirmDrain
    } else {
        Key::ConfirmUndrain
    };
    tf(lang, key, &[("name", name)])
}

/// The workers view of the dashboard (administrators only: the server says 403 to others).
#[component]
pub fn WorkersCard(refresh: Duration) -> impl IntoView {
    let c = ctx();
    let list = RwSignal::new(None::<Result<Vec<WorkerEntry>, String>>);
    let fetch = move || {
        leptos::task::spawn_local(async move {
            let got = api::workers().await.map_err(|e| e.message);
            if list.with_untracked(|old| old.as_ref() != Some(&got)) {
                list.set(Some(got));
            }
        });
    };
    fetch();
    if let Ok(h) = set_interval_with_handle(fetch, refresh) {
        on_cleanup(move || h.clear());
    }
    // The worker a confirmation is open for, and whether it drains (true) or undrains.
    let pending = RwSignal::new(None::<(String, bool)>);
    let open = RwSignal::new(false);
    let error = RwSignal::new(None::<ApiError>);
    let confirm = Callback::new(move |()| {
        let Some((name, drain)) = pending.get_untracked() else {
            return;
        };
        leptos::task::spawn_local(async move {
            match api::set_draining(&name, drain).await {
                Ok(()) => error.set(None),
                Err(e) => error.set(Some(e)),
            }
            fetch();
        });
    });
    let ask = Callback::new(move |(name, drain): (String, bool)| {
        pending.set(Some((name, drain)));
        open.set(true);
    });
    view! {
        <section class="card" aria-labelledby="workers-admin-heading" data-testid="workers-admin">
            <h2 id="workers-admin-heading">{move || c.t(Key::WorkersAdmin)}</h2>
            {move || error.get().map(|e| view! { <Refusal error=e /> })}
            {move || {
                let lang = c.lang.get();
                match list.get() {
                    None => view! { <p class="muted">{t(lang, Key::Loading)}</p> }.into_any(),
                    Some(Err(e)) => view! { <p role="alert" class="status-bad">{e}</p> }.into_any(),
                    Some(Ok(ws)) if ws.is_empty() => {
                        view! { <p class="muted">{t(lang, Key::NoKnownWorkers)}</p> }.into_any()
                    }
                    Some(Ok(ws)) => {
                        let rows = ws
                            .into_iter()
                            .map(|w| view! { <WorkerRow lang=lang w=w ask=ask /> })
                            .collect_view();
                        view! {
                            <table aria-labelledby="workers-admin-heading">
                                <thead>
                                    <tr>
                                        <th scope="col">{t(lang, Key::WorkerName)}</th>
                                        <th scope="col">{t(lang, Key::Zone)}</th>
                                        <th scope="col">{t(lang, Key::WorkerLive)}</th>
                                        <th scope="col">{t(lang, Key::WorkerDraining)}</th>
                                        <th scope="col" class="num">{t(lang, Key::ActiveInstances)}</th>
                                        <th scope="col" class="num">{t(lang, Key::StandbyInstances)}</th>
                                        <th scope="col">{t(lang, Key::LastSeen)}</th>
                                        <th scope="col">{t(lang, Key::Actions)}</th>
                                    </tr>
                                </thead>
                                <tbody>{rows}</tbody>
                            </table>
                        }
                            .into_any()
                    }
                }
            }}
            <ConfirmDialog
                open=open
                message=Signal::derive(move || {
                    pending
                        .get()
                        .map(|(n, d)| confirm_text(c.lang.get(), &n, d))
                        .unwrap_or_default()
                })
                on_confirm=confirm
            />
        </section>
    }
}

#[component]
fn WorkerRow(lang: Lang, w: WorkerEntry, ask: Callback<(String, bool)>) -> impl IntoView {
    let live = w.live;
    let w = w.summary;
    let yes_no = |b: bool| t(lang, if b { Key::Yes } else { Key::No });
    let drain = !w.draining;
    let label = format!(
        "{} {}",
        t(lang, if drain { Key::Drain } else { Key::Undrain }),
        w.name
    );
    let name = w.name.clone();
    let seen = diagram::unix_of(&w.last_seen)
        .map(|u| human::ago(lang, diagram::now_secs() - u))
        .unwrap_or_else(|| w.last_seen.clone());
    view! {
        <tr
            data-testid="worker-row"
            data-worker=w.name.clone()
            data-draining=w.draining.to_string()
            class=if live { "" } else { "inactive" }
        >
            <th scope="row">{w.name.clone()}</th>
            <td class="nowrap">
                {w.zone.clone().unwrap_or_else(|| t(lang, Key::NoneOption).to_owned())}
            </td>
            <td class="nowrap" data-testid="worker-live">{yes_no(live)}</td>
            <td data-testid="worker-draining">{yes_no(w.draining)}</td>
            <td class="num" data-testid="worker-active">{w.active_instances.to_string()}</td>
            <td class="num" data-testid="worker-standby">{w.standby_instances.to_string()}</td>
            <td title=diagram::local_time(lang, &w.last_seen).unwrap_or_default()>{seen}</td>
            <td class="actions">
                <button
                    class=if drain { "danger" } else { "" }
                    aria-label=label
                    on:click=move |_| ask.run((name.clone(), drain))
                >
                    {t(lang, if drain { Key::Drain } else { Key::Undrain })}
                </button>
            </td>
        </tr>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drain_confirmation_says_what_happens_in_both_languages() {
        let en = confirm_text(Lang::En, "w-a", true);
        assert!(en.contains("w-a") && en.contains("standby"), "{en}");
        assert!(
            en.contains("can be stopped") && en.contains("nothing moves back"),
            "{en}"
        );
        let ja = confirm_text(Lang::Ja, "w-a", true);
        assert!(ja.contains("w-a") && ja.contains("スタンバイ"), "{ja}");
        assert!(
            ja.contains("停止できます") && ja.contains("戻りません"),
            "{ja}"
        );
        let un = confirm_text(Lang::Ja, "w-a", false);
        assert!(
            un.contains("ドレインを解除") && un.contains("戻りません"),
            "{un}"
        );
    }

    #[test]
    fn a_worker_entry_reads_the_summary_and_whether_it_is_live() {
        let list: Vec<WorkerEntry> = serde_json::from_value(serde_json::json!([{
            "name": "w-a", "version": "0", "last_seen": "2026-01-01T00:00:00Z",
            "zone": "zone-a", "draining": true, "active_instances": 0, "standby_instances": 2,
            "live": false, "heartbeat_address": "127.0.0.1:51899"
        }]))
        .expect("workers");
        assert!(!list[0].live);
        assert_eq!(list[0].summary.zone.as_deref(), Some("zone-a"));
        assert!(list[0].summary.draining);
        assert_eq!(list[0].summary.standby_instances, 2);
    }
}
