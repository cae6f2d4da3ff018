//! The widgets the resource forms are made of (a labelled field with its problems, the submit
//! row) and the submit itself.

use leptos::prelude::*;
use serde::Serialize;

use super::{GENERAL, Live, Problems, Refusal, problems_id};
use crate::api::{self, ApiError};
use crate::i18n::Key;
use crate::state::{Kind, Page, TPage, ctx, navigate};

/// Submit state of a form.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Submit {
    Idle,
    Busy,
    /// Refused by the server, or (`None`) not sent: some inputs do not parse.
    Failed(Option<ApiError>),
}

/// Sends a form's resource; on a 422 the server's violations join the live ones.
pub(super) fn submit<B: Serialize + 'static>(
    kind: Kind,
    existing: Option<String>,
    body: B,
    live: Live,
    state: RwSignal<Submit>,
    then: Page,
) {
    let c = ctx();
    live.mark_submitted();
    if live.has_parse_errors() {
        state.set(Submit::Failed(None));
        return;
    }
    state.set(Submit::Busy);
    let tn = c.tenant.get_untracked().unwrap_or_default();
    leptos::task::spawn_local(async move {
        match api::save(&tn, kind.path_segment(), existing.as_deref(), &body).await {
            Ok(_) => {
                live.set_server(Vec::new());
                state.set(Submit::Idle);
                c.refresh_topology(&tn).await;
                navigate(&then);
            }
            Err(e) => {
                live.set_server(e.violations.clone());
                state.set(Submit::Failed(Some(e)));
            }
        }
    });
}
#[component]
pub(super) fn SubmitRow(live: Live, state: RwSignal<Submit>, cancel: String) -> impl IntoView {
    let c = ctx();
    view! {
        <div class="general-problems">
            <Problems live=live form="form" field=GENERAL.to_owned() />
        </div>
        {move || match state.get() {
            Submit::Failed(Some(e)) => Some(view! { <Refusal error=e /> }.into_any()),
            Submit::Failed(None) => {
                Some(view! { <p role="alert" class="status-bad">{c.t(Key::FixInputs)}</p> }.into_any())
            }
            _ => None,
        }}
        <div class="buttons">
            <button type="submit" disabled=move || state.get() == Submit::Busy>
                {move || {
                    if state.get() == Submit::Busy { c.t(Key::Saving) } else { c.t(Key::Save) }
                }}
            </button>
            <a class="button secondary" href=cancel>
                {move || c.t(Key::Cancel)}
            </a>
        </div>
    }
}

/// A labelled text input (or textarea) with its problems.
#[component]
pub(super) fn Field(
    live: Live,
    field: &'static str,
    label: Key,
    value: RwSignal<String>,
    #[prop(optional)] readonly: bool,
    #[prop(optional)] multiline: bool,
    #[prop(optional)] hint: Option<Key>,
) -> impl IntoView {
    let c = ctx();
    let key = field;
    let id = format!("f-{}", key.replace('.', "-"));
    let pid = problems_id("form", key);
    let hid = format!("{id}-hint");
    let described = if hint.is_some() {
        format!("{pid} {hid}")
    } else {
        pid.clone()
    };
    let filled = Signal::derive(move || !value.with(|v| v.trim().is_empty()));
    let input = if multiline {
        view! {
            <textarea
                id=id.clone()
                rows="3"
                aria-describedby=described
                aria-invalid=move || live.invalid(key, filled.get()).to_string()
                prop:value=move || value.get()
                on:input=move |ev| {
                    value.set(event_target_value(&ev));
                    live.touch(key);
                }
            ></textarea>
        }
        .into_any()
    } else {
        view! {
            <input
                id=id.clone()
                readonly=readonly
                aria-describedby=described
                aria-invalid=move || live.invalid(key, filled.get()).to_string()
                prop:value=move || value.get()
                on:input=move |ev| {
                    value.set(event_target_value(&ev));
                    live.touch(key);
                }
            />
        }
        .into_any()
    };
    view! {
        <div class="field">
            <label for=id>{move || c.t(label)}</label>
            {input}
            {hint.map(|h| view! { <small id=hid class="muted">{move || c.t(h)}</small> })}
            <Problems live=live form="form" field=key.to_owned() filled=filled />
        </div>
    }
}

/// A labelled select with its problems.
#[component]
pub(super) fn SelectField(
    live: Live,
    field: &'static str,
    label: Key,
    value: RwSignal<String>,
    #[prop(into)] options: Signal<Vec<(String, String)>>,
    #[prop(optional)] disabled: bool,
    #[prop(optional)] hint: Option<Key>,
) -> impl IntoView {
    let c = ctx();
    let key = field;
    let id = format!("f-{}", key.replace('.', "-"));
    let pid = problems_id("form", key);
    let hid = format!("{id}-hint");
    let described = if hint.is_some() {
        format!("{pid} {hid}")
    } else {
        pid
    };
    let filled = Signal::derive(move || !value.with(String::is_empty));
    view! {
        <div class="field">
            <label for=id.clone()>{move || c.t(label)}</label>
            <select
                id=id
                disabled=disabled
                aria-describedby=described
                aria-invalid=move || live.invalid(key, filled.get()).to_string()
                on:change=move |ev| {
                    value.set(event_target_value(&ev));
                    live.touch(key);
                }
                prop:value=move || value.get()
            >
                {move || {
                    let cur = value.get();
                    options
                        .get()
                        .into_iter()
                        .map(|(v, l)| {
                            let sel = v == cur;
                            view! {
                                <option value=v selected=sel>
                                    {l}
                                </option>
                            }
                        })
                        .collect_view()
                }}
            </select>
            {hint.map(|h| view! { <small id=hid class="muted">{move || c.t(h)}</small> })}
            <Problems live=live form="form" field=key.to_owned() filled=filled />
        </div>
    }
}

#[component]
pub(super) fn CheckField(
    live: Live,
    field: &'static str,
    label: Key,
    value: RwSignal<bool>,
    #[prop(optional)] hint: Option<Key>,
) -> impl IntoView {
    let c = ctx();
    let key = field;
    let id = format!("f-{key}");
    let pid = problems_id("form", key);
    let hid = format!("{id}-hint");
    let described = if hint.is_some() {
        format!("{pid} {hid}")
    } else {
        pid
    };
    view! {
        <div class="field check">
            <input
                type="checkbox"
                id=id.clone()
                aria-describedby=described
                prop:checked=move || value.get()
                on:change=move |ev| {
                    value.set(event_target_checked(&ev));
                    live.touch(key);
                }
            />
            <label for=id>{move || c.t(label)}</label>
            {hint.map(|h| view! { <small id=hid class="muted">{move || c.t(h)}</small> })}
            <Problems live=live form="form" field=key.to_owned() />
        </div>
    }
}

pub(super) fn fields(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|k| (*k).to_owned()).collect()
}

pub(super) fn list_page(kind: Kind) -> String {
    Page::Tenant(ctx().tenant_name(), TPage::List(kind)).href()
}

/// A select option whose value is its label.
pub(super) fn opt(v: &str) -> (String, String) {
    (v.to_owned(), v.to_owned())
}
