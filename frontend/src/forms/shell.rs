//! The page that holds a resource form, and the prologue the five forms share
//! ([`ResourceForm`]): read the context, look up the resource being edited (or say it is not
//! found), the resource's path for live validation, the submit state and the submit handler.

use isthmus_shared::model::{Change, Topology};
use leptos::prelude::*;
use serde::Serialize;

use super::connection::ConnectionForm;
use super::gateway::GatewayForm;
use super::p2s::P2sForm;
use super::site::SiteForm;
use super::vnet::VnetForm;
use super::widgets::{Submit, submit};
use super::{Draft, Live, Resource};
use crate::i18n::{Key, KindText};
use crate::state::{Ctx, Kind, Page, TPage, ctx};

/// The create or edit page of one kind.
#[component]
pub fn FormPage(kind: Kind, name: Option<String>) -> impl IntoView {
    let c = ctx();
    let heading = if name.is_some() {
        kind.edit_key()
    } else {
        kind.new_key()
    };
    let name = StoredValue::new(name);
    view! {
        <section class="card" aria-labelledby="form-heading">
            <h2 id="form-heading">
                {move || c.t(heading)}
                {move || name.get_value().map(|n| format!(": {n}"))}
            </h2>
            <Show
                when=move || c.loaded()
                fallback=move || view! { <p class="muted">{move || c.t(Key::Loading)}</p> }
            >
                {move || untrack(|| {
                    let n = name.get_value();
                    match kind {
                        Kind::Vnet => view! { <VnetForm existing=n /> }.into_any(),
                        Kind::Gateway => view! { <GatewayForm existing=n /> }.into_any(),
                        Kind::Site => view! { <SiteForm existing=n /> }.into_any(),
                        Kind::Connection => view! { <ConnectionForm existing=n /> }.into_any(),
                        Kind::PointToSite => view! { <P2sForm existing=n /> }.into_any(),
                    }
                })}
            </Show>
        </section>
    }
}

/// What every resource form starts from: the context, the current tenant and its topology, and
/// the resource being edited (`None` when creating one).
pub(super) struct ResourceForm<T> {
    pub c: Ctx,
    pub kind: Kind,
    pub tenant: String,
    pub topo: Topology,
    pub old: Option<T>,
    pub editing: bool,
}

/// A form's live validation, its submit state and its submit handler.
pub(super) struct Wired<S> {
    pub live: Live,
    pub state: RwSignal<Submit>,
    pub on_submit: S,
}

/// Shown instead of a form whose resource does not exist (any more).
pub(super) fn not_found() -> AnyView {
    let c = ctx();
    view! { <p role="alert">{c.t(Key::NotFound)}</p> }.into_any()
}

impl<T> ResourceForm<T> {
    /// Reads the context and looks up `existing` with `find(topology, tenant, name)`; `None` when
    /// a resource to edit is named but not there (show [`not_found`]).
    pub fn open(
        kind: Kind,
        existing: Option<&str>,
        find: impl FnOnce(&Topology, &str, &str) -> Option<T>,
    ) -> Option<Self> {
        let c = ctx();
        let tenant = c.tenant_name();
        let topo = c.topology().unwrap_or_default();
        let old = existing.and_then(|n| find(&topo, &tenant, n));
        if existing.is_some() && old.is_none() {
            return None;
        }
        Some(Self {
            c,
            kind,
            tenant,
            topo,
            old,
            editing: existing.is_some(),
        })
    }

    /// Live validation of `draft` and its submit. `key` gives the resource's name
    /// (the field `name_field`), `fields` the form's field keys; `body` takes the draft's change
    /// apart into the resource's name and the body to send, and `then` is the page shown after
    /// a save, given the name.
    pub fn wire<B: Serialize + 'static>(
        &self,
        key: impl Fn() -> String + Send + Sync + 'static,
        name_field: &'static str,
        fields: Memo<Vec<String>>,
        draft: Memo<Draft>,
        body: fn(Change) -> Option<(String, B)>,
        then: fn(String) -> TPage,
    ) -> Wired<impl Fn(leptos::ev::SubmitEvent) + Copy + 'static> {
        let (c, kind, editing) = (self.c, self.kind, self.editing);
        let tenant = self.tenant.clone();
        let resource = Memo::new(move |_| Resource {
            kind,
            tenant: tenant.clone(),
            name: key(),
        });
        let live = Live::new(resource, name_field, fields, draft).editing(editing);
        let state = RwSignal::new(Submit::Idle);
        let on_submit = move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            match draft.get_untracked().change.and_then(body) {
                Some((name, b)) => {
                    let existing = editing.then(|| name.clone());
                    let page = Page::Tenant(c.tenant_name(), then(name));
                    submit(kind, existing, b, live, state, page);
                }
                None => {
                    live.mark_submitted();
                    state.set(Submit::Failed(None));
                }
            }
        };
        Wired {
            live,
            state,
            on_submit,
        }
    }
}
