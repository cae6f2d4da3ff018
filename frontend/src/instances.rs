//! Issue 16: a gateway's instances on its page: where each one runs (worker, zone), its role and
//! term, whether it hears its partner, its endpoint and last report, a redundancy badge with the
//! reason when the gateway is not redundant, and what the standby does on a failover.

use isthmus_shared::api::{GatewayInstanceView, GatewayStatusView, NotRedundantReason, Redundancy};
use isthmus_shared::instances::InstanceRole;
use leptos::prelude::*;

use crate::api;
use crate::i18n::{Key, Lang, t, tf};
use crate::state::{POLL, ctx};
use crate::{diagram, human};

/// Why the gateway is not redundant, in `lang`.
pub fn reason_text(lang: Lang, reason: NotRedundantReason) -> &'static str {
    t(
        lang,
        match reason {
            NotRedundantReason::OneLiveWorker => Key::ReasonOneLiveWorker,
            NotRedundantReason::NotPlaced => Key::ReasonNotPlaced,
            NotRedundantReason::StandbyCannotBind => Key::ReasonStandbyCannotBind,
            NotRedundantReason::StandbyWorkerDown => Key::ReasonStandbyWorkerDown,
            NotRedundantReason::PartnerUnreachable => Key::ReasonPartnerUnreachable,
        },
    )
}

/// The redundancy badge's text: "redundant", or "not redundant" with the reason when the
/// server gave one.
pub fn redundancy_text(
    lang: Lang,
    redundancy: Redundancy,
    reason: Option<NotRedundantReason>,
) -> String {
    match (redundancy, reason) {
        (Redundancy::Redundant, _) => t(lang, Key::Redundant).to_owned(),
        (Redundancy::NotRedundant, None) => t(lang, Key::NotRedundant).to_owned(),
        (Redundancy::NotRedundant, Some(r)) => tf(
            lang,
            Key::NotRedundantBecause,
            &[("reason", reason_text(lang, r))],
        ),
    }
}

/// An instance's role in `lang`.
pub fn role_text(lang: Lang, role: InstanceRole) -> &'static str {
    t(
        lang,
        match role {
            InstanceRole::Active => Key::RoleActive,
            InstanceRole::Standby => Key::RoleStandby,
        },
    )
}

/// Whether the instance hears its partner, in `lang` (`None`: it has not reported yet).
pub fn partner_text(lang: Lang, alive: Option<bool>) -> &'static str {
    t(
        lang,
        match alive {
            Some(true) => Key::PartnerHeard,
            Some(false) => Key::PartnerNotHeard,
            None => Key::NotReported,
        },
    )
}

/// The one-line summary of which instance is active: the first reported active one.
pub fn active_summary(lang: Lang, instances: &[GatewayInstanceView]) -> Option<String> {
    let a = instances.iter().find(|i| i.role == InstanceRole::Active)?;
    Some(tf(
        lang,
        Key::ActiveSummary,
        &[("n", &a.instance.to_string()), ("worker", &a.worker)],
    ))
}

/// The instances of gateway `gateway` of the current tenant, refreshed with the topology and
/// every few seconds (a failover changes them without any change of the topology).
#[component]
pub fn GatewayInstances(gateway: String) -> impl IntoView {
    let c = ctx();
    let status = RwSignal::new(None::<GatewayStatusView>);
    let name = StoredValue::new(gateway);
    let fetch = move || {
        let Some(tn) = c.tenant.get_untracked() else {
            return;
        };
        let g = name.get_value();
        leptos::task::spawn_local(async move {
            if let Ok(v) = api::gateway_status(&tn, &g).await
                && status.with_untracked(|old| old.as_ref() != Some(&v))
            {
                status.set(Some(v));
            }
        });
    };
    Effect::new(move |_| {
        let _version = c.topology();
        fetch();
    });
    if let Ok(h) = set_interval_with_handle(fetch, POLL) {
        on_cleanup(move || h.clear());
    }
    view! {
        <section class="instances" aria-labelledby="instances-heading" data-testid="instances">
            <h3 id="instances-heading">{move || c.t(Key::Instances)}</h3>
            {move || {
                let lang = c.lang.get();
                match status.get() {
                    None => view! { <p class="muted">{t(lang, Key::Loading)}</p> }.into_any(),
                    Some(v) => view! { <InstancesBody lang=lang view=v /> }.into_any(),
                }
            }}
            <p class="muted small" data-testid="instances-help-standby">
                {move || c.t(Key::InstancesHelpStandby)}
            </p>
            <p class="muted small" data-testid="instances-help-failover">
                {move || c.t(Key::InstancesHelpFailover)}
            </p>
        </section>
    }
}

#[component]
fn InstancesBody(lang: Lang, view: GatewayStatusView) -> impl IntoView {
    let redundant = view.redundancy == Redundancy::Redundant;
    let badge = redundancy_text(lang, view.redundancy, view.not_redundant_because);
    let summary = active_summary(lang, &view.instances);
    let mut instances = view.instances;
    instances.sort_by_key(|i| i.instance);
    let table = if instances.is_empty() {
        view! { <p class="muted">{t(lang, Key::NoInstances)}</p> }.into_any()
    } else {
        view! {
            <table aria-labelledby="instances-heading">
                <thead>
                    <tr>
                        <th scope="col">{t(lang, Key::InstanceNo)}</th>
                        <th scope="col">{t(lang, Key::Worker)}</th>
                        <th scope="col">{t(lang, Key::Zone)}</th>
                        <th scope="col">{t(lang, Key::Role)}</th>
                        <th scope="col" class="num">{t(lang, Key::Term)}</th>
                        <th scope="col">{t(lang, Key::Partner)}</th>
                        <th scope="col">{t(lang, Key::Endpoint)}</th>
                        <th scope="col">{t(lang, Key::LastReport)}</th>
                    </tr>
                </thead>
                <tbody>
                    {instances
                        .into_iter()
                        .map(|i| view! { <InstanceRow lang=lang i=i /> })
                        .collect_view()}
                </tbody>
            </table>
        }
        .into_any()
    };
    view! {
        <p>
            <strong>{t(lang, Key::Redundancy)} ": "</strong>
            <span
                class=if redundant { "status-ok" } else { "status-bad" }
                data-testid="redundancy"
                data-redundancy=if redundant { "redundant" } else { "not_redundant" }
                data-reason=view
                    .not_redundant_because
                    .and_then(|r| serde_json::to_value(r).ok())
                    .and_then(|v| v.as_str().map(str::to_owned))
            >
                {badge}
            </span>
        </p>
        {summary.map(|s| view! { <p data-testid="active-instance">{s}</p> })}
        {table}
    }
}

#[component]
fn InstanceRow(lang: Lang, i: GatewayInstanceView) -> impl IntoView {
    let active = i.role == InstanceRole::Active;
    let reported = i.reported_at.clone();
    let ago = reported
        .as_deref()
        .and_then(diagram::unix_of)
        .map(|u| human::ago(lang, diagram::now_secs() - u))
        .unwrap_or_else(|| t(lang, Key::NotReported).to_owned());
    let title = reported
        .as_deref()
        .and_then(|r| diagram::local_time(lang, r))
        .unwrap_or_default();
    let bind_error = i.bind_error.clone().map(|e| {
        view! {
            <div class="status-bad" data-testid="bind-error">
                {t(lang, Key::CannotBind)}
                <details>
                    <summary>{t(lang, Key::Detail)}</summary>
                    {e}
                </details>
            </div>
        }
    });
    view! {
        <tr
            data-testid="instance-row"
            data-instance=i.instance.to_string()
            data-role=i.role.as_str()
            data-worker=i.worker.clone()
            class=if i.worker_live { "" } else { "inactive" }
        >
            <th scope="row">{i.instance.to_string()}</th>
            <td>
                {i.worker.clone()}
                {(!i.worker_live).then(|| format!(" {}", t(lang, Key::WorkerNotLive)))}
            </td>
            <td class="nowrap">
                {i.zone.clone().unwrap_or_else(|| t(lang, Key::NoneOption).to_owned())}
            </td>
            <td data-testid="role" class=if active { "status-ok" } else { "" }>
                {if active {
                    view! { <strong>{role_text(lang, i.role)}</strong> }.into_any()
                } else {
                    role_text(lang, i.role).into_any()
                }}
                {bind_error}
            </td>
            <td class="num" data-testid="term">{i.term.to_string()}</td>
            <td>{partner_text(lang, i.partner_alive)}</td>
            <td class="nowrap">
                {i.endpoint.clone().unwrap_or_else(|| t(lang, Key::Pending).to_owned())}
            </td>
            <td title=title>{ago}</td>
        </tr>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REASONS: [NotRedundantReason; 5] = [
        NotRedundantReason::OneLiveWorker,
        NotRedundantReason::NotPlaced,
        NotRedundantReason::StandbyCannotBind,
        NotRedundantReason::StandbyWorkerDown,
        NotRedundantReason::PartnerUnreachable,
    ];

    #[test]
    fn every_reason_has_its_own_sentence_in_both_languages() {
        for lang in [Lang::En, Lang::Ja] {
            let texts: std::collections::BTreeSet<_> =
                REASONS.iter().map(|r| reason_text(lang, *r)).collect();
            assert_eq!(texts.len(), REASONS.len(), "{lang:?}: {texts:?}");
        }
        for r in REASONS {
            let ja = redundancy_text(Lang::Ja, Redundancy::NotRedundant, Some(r));
            assert!(ja.starts_with("冗長化されていません: "), "{ja}");
            assert!(ja.ends_with(reason_text(Lang::Ja, r)), "{ja}");
            let en = redundancy_text(Lang::En, Redundancy::NotRedundant, Some(r));
            assert!(en.starts_with("not redundant: "), "{en}");
        }
        assert_eq!(
            redundancy_text(Lang::En, Redundancy::Redundant, None),
            "redundant"
        );
        assert_eq!(
            redundancy_text(Lang::Ja, Redundancy::NotRedundant, None),
            "冗長化されていません"
        );
    }

    fn instance(n: u8, worker: &str, role: InstanceRole) -> GatewayInstanceView {
        GatewayInstanceView {
            instance: n,
            worker: worker.to_owned(),
            zone: None,
            worker_live: true,
            role,
            term: 3,
            partner_alive: Some(true),
            endpoint: None,
            bind_error: None,
            reported_at: None,
        }
    }

    #[test]
    fn the_summary_names_the_active_instance_and_its_worker() {
        let list = [
            instance(0, "w-a", InstanceRole::Standby),
            instance(1, "w-b", InstanceRole::Active),
        ];
        assert_eq!(
            active_summary(Lang::En, &list).as_deref(),
            Some("Active: instance 1 on w-b")
        );
        assert_eq!(
            active_summary(Lang::Ja, &list).as_deref(),
            Some("アクティブ: w-b のインスタンス 1")
        );
        assert_eq!(active_summary(Lang::En, &list[..1]), None);
    }

    #[test]
    fn roles_and_partner_states_are_words_of_the_language() {
        assert_eq!(role_text(Lang::Ja, InstanceRole::Active), "アクティブ");
        assert_eq!(role_text(Lang::En, InstanceRole::Standby), "standby");
        assert_eq!(partner_text(Lang::Ja, Some(true)), "受信中");
        assert_eq!(partner_text(Lang::Ja, Some(false)), "受信なし");
        assert_eq!(partner_text(Lang::En, None), "not reported yet");
    }
}
