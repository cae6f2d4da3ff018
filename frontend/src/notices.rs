//! A gateway's notices: the GW-10 warning for an endpoint no device can reach (saying which
//! option sets the real address), and the routes its worker's host refused. Shown on the
//! gateway's page and list and where a device configuration is downloaded.

use isthmus_shared::api::GatewayStatusView;
use isthmus_shared::validate::Violation;
use leptos::prelude::*;

use crate::api;
use crate::i18n::{Key, Lang, t};
use crate::state::ctx;

/// The GW-10 warning in `lang`, from the violation's parameters.
pub fn endpoint_warning_text(lang: Lang, v: &Violation) -> String {
    let kind = v.params.get("kind").map(String::as_str).unwrap_or_default();
    let kind = match kind {
        "loopback" => t(lang, Key::KindLoopback),
        "unspecified" => t(lang, Key::KindUnspecified),
        "link-local" => t(lang, Key::KindLinkLocal),
        other => other,
    };
    let endpoint = v
        .params
        .get("endpoint")
        .map(String::as_str)
        .unwrap_or_default();
    t(lang, Key::EndpointWarning)
        .replace("{endpoint}", endpoint)
        .replace("{kind}", kind)
}

/// One GW-10 warning, as a visible alert.
#[component]
pub fn EndpointWarning(
    violation: Violation,
    /// The gateway's name, where several gateways are shown.
    #[prop(optional)]
    name: Option<String>,
) -> impl IntoView {
    let c = ctx();
    let prefix = name.map(|n| format!("{n}: ")).unwrap_or_default();
    view! {
        <p role="alert" class="notice-warning" data-testid="endpoint-warning">
            {move || format!("{prefix}{}", endpoint_warning_text(c.lang.get(), &violation))}
        </p>
    }
}

/// The notices of gateway `gateway` as the server states them (fetched again whenever the
/// topology is reloaded).
#[component]
pub fn GatewayNotices(gateway: Signal<Option<String>>) -> impl IntoView {
    let c = ctx();
    let status = RwSignal::new(None::<GatewayStatusView>);
    Effect::new(move |_| {
        let _version = c.topology();
        let (Some(tn), Some(g)) = (c.tenant.get(), gateway.get()) else {
            status.set(None);
            return;
        };
        leptos::task::spawn_local(async move {
            status.set(api::gateway_status(&tn, &g).await.ok());
        });
    });
    move || {
        let v = status.get()?;
        let lang = c.lang.get();
        let warnings = v
            .warnings
            .into_iter()
            .map(|w| view! { <EndpointWarning violation=w /> })
            .collect_view();
        let conflicts = (!v.route_conflicts.is_empty()).then(|| {
            view! {
                <div role="alert" class="notice-warning" data-testid="route-conflicts">
                    <p>{t(lang, Key::RouteConflicts)}</p>
                    <ul>
                        {v
                            .route_conflicts
                            .iter()
                            .map(|r| {
                                let text = t(lang, Key::RouteConflictText)
                                    .replace("{prefix}", &r.prefix.to_string())
                                    .replace("{existing}", &r.existing);
                                view! { <li>{text}</li> }
                            })
                            .collect_view()}
                    </ul>
                </div>
            }
        });
        Some(view! { {warnings} {conflicts} })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gw_10_warning_names_the_endpoint_the_kind_and_the_option_in_both_languages() {
        let mut g: isthmus_shared::model::Gateway = serde_json::from_value(serde_json::json!({
            "tenant": "acme", "name": "hub-gw", "vnet": "hub",
            "gateway_type": "RouteBased", "sku": "VpnGw1",
            "public_endpoint": "127.0.0.1:51820"
        }))
        .expect("gateway");
        let v = isthmus_shared::validate::public_endpoint_warning(&g).expect("a warning");
        let en = endpoint_warning_text(Lang::En, &v);
        assert!(
            en.contains("127.0.0.1:51820") && en.contains("loopback"),
            "{en}"
        );
        assert!(en.contains("isthmus-worker --public-address"), "{en}");
        let ja = endpoint_warning_text(Lang::Ja, &v);
        assert!(
            ja.contains("ループバック") && ja.contains("127.0.0.1:51820"),
            "{ja}"
        );
        assert!(ja.contains("isthmus-worker --public-address"), "{ja}");
        g.public_endpoint = Some("[fe80::1]:51820".parse().expect("addr"));
        let v = isthmus_shared::validate::public_endpoint_warning(&g).expect("a warning");
        assert!(endpoint_warning_text(Lang::Ja, &v).contains("リンクローカル"));
        g.public_endpoint = Some("198.51.100.7:51820".parse().expect("addr"));
        assert!(isthmus_shared::validate::public_endpoint_warning(&g).is_none());
    }
}
