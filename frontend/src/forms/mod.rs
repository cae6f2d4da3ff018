//! The create/edit forms of VNets, gateways, sites, connections and point-to-site, and their
//! live validation: the shared validator runs on the loaded topology plus the pending change as
//! the user types; every violation is mapped from its path to the field that caused it.
//!
//! `widgets` holds the fields and the submit, `shell` the page and the prologue every form
//! shares, and each form has its own file.

mod connection;
mod gateway;
mod ipsec;
mod p2s;
mod shell;
mod site;
mod vnet;
mod widgets;

use std::collections::BTreeSet;
use std::str::FromStr;

use isthmus_shared::model::{Change, Kind, Topology};
use isthmus_shared::rules::RuleId;
use isthmus_shared::validate::{
    FieldPath, Severity, Violation, validate, validate_change_in_place,
};
use leptos::prelude::*;

use crate::api::ApiError;
use crate::i18n::{Key, Lang, rule_text, t, tf, violation_text};
use crate::state::{Page, TPage, ctx};

pub use ipsec::{mode_key, protocol_key};
pub use shell::FormPage;

/// A list as the forms and tables show it: comma separated.
pub fn join<T: ToString>(v: &[T]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One problem shown beside a field: a rule violation, or an input that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub rule: Option<RuleId>,
    pub error: bool,
    /// English: the validator's message, or the text that does not parse.
    pub message: String,
    /// For an input that does not parse: what was expected.
    pub expect: Option<Key>,
    /// The violation itself, rendered in the portal's language.
    pub violation: Option<Violation>,
    /// Another resource of the tenant the violation is about: its page and its name.
    pub link: Option<(String, String)>,
}

impl Problem {
    /// `text` does not parse; `expect` says what would.
    pub fn input(text: impl Into<String>, expect: Key) -> Self {
        Self {
            rule: None,
            error: true,
            message: text.into(),
            expect: Some(expect),
            violation: None,
            link: None,
        }
    }

    /// A rule violation (its severity decides error or warning).
    pub fn of(v: &Violation) -> Self {
        Self {
            rule: Some(v.rule),
            error: v.severity == Severity::Error,
            message: v.message.clone(),
            expect: None,
            violation: Some(v.clone()),
            link: None,
        }
    }

    /// With a link to the resource of the current tenant the violation is about, when that is
    /// not `current` (the resource the form edits, if any).
    pub fn linked(mut self, tenant: &str, current: Option<&Resource>) -> Self {
        self.link = self
            .violation
            .as_ref()
            .and_then(|v| other_resource(v, tenant, current));
        self
    }
}

/// The first resource of `tenant` that one of the violation's paths names, other than
/// `current`: its page (a connection's own page, else the edit form) and its name.
pub fn other_resource(
    v: &Violation,
    tenant: &str,
    current: Option<&Resource>,
) -> Option<(String, String)> {
    std::iter::once(&v.path)
        .chain(v.related.iter())
        .filter_map(|p| FieldPath::parse(p))
        .filter_map(|p| p.resource())
        .find(|(kind, tn, name)| {
            *tn == tenant
                && !current.is_some_and(|r| r.kind == *kind && r.tenant == *tn && r.name == *name)
        })
        .map(|(kind, tn, name)| {
            let page = if kind == Kind::Connection {
                TPage::Connection(name.to_owned())
            } else {
                TPage::Edit(kind, name.to_owned())
            };
            (Page::Tenant(tn.to_owned(), page).href(), name.to_owned())
        })
}

/// A form's candidate: the change it would submit (if every input parses) and the inputs that
/// do not parse, by field key.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub change: Option<Change>,
    pub parse: Vec<(String, Problem)>,
}

/// Splits a comma/whitespace separated list and parses each item; failures go to `field`,
/// saying `expect`.
pub fn parse_list<T: FromStr>(
    text: &str,
    field: &str,
    expect: Key,
    parse: &mut Vec<(String, Problem)>,
) -> Vec<T> {
    text.split([',', ' ', '\n', '\t'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .filter_map(|s| match s.parse::<T>() {
            Ok(v) => Some(v),
            Err(_) => {
                parse.push((field.to_owned(), Problem::input(s, expect)));
                None
            }
        })
        .collect()
}

/// The resource a form edits, as the validator's paths name it (a point-to-site configuration
/// is named by its gateway).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub kind: Kind,
    pub tenant: String,
    pub name: String,
}

impl Resource {
    fn path(&self) -> FieldPath<'_> {
        FieldPath::new(self.kind, &self.tenant, &self.name)
    }
}

/// The field a violation belongs to, for a form editing `resource`: the first of the
/// violation's paths inside the resource decides; the resource itself is `name_field`, and
/// below it the field key (itself a path below the resource: `kind.site`, `subnets[a]`) with
/// the most steps that the path lies in.
fn assign(
    resource: &Resource,
    name_field: &str,
    fields: &[String],
    v: &Violation,
) -> Option<String> {
    let base = resource.path();
    let ours = std::iter::once(&v.path)
        .chain(v.related.iter())
        .filter_map(|p| FieldPath::parse(p))
        .find(|p| p.starts_with(&base))?;
    if ours.steps().is_empty() {
        return Some(name_field.to_owned());
    }
    let best = fields
        .iter()
        .filter_map(|f| {
            let full = format!("{base}.{f}");
            let field = FieldPath::parse(&full)?;
            ours.starts_with(&field).then(|| (field.steps().len(), f))
        })
        .max_by_key(|(steps, _)| *steps);
    Some(best.map_or_else(|| GENERAL.to_owned(), |(_, f)| f.clone()))
}

/// The key of problems that belong to no field.
pub const GENERAL: &str = "_";

/// Live validation state of one form. Problems are computed on every keystroke but shown
/// only where they help: nothing before the user changes the form (or submits it); then at
/// the fields the user touched and at the fields that already hold a value (a default, a
/// prefilled value), never "required" under a box nobody has reached yet. After a submit
/// (and on an edit form, at its filled fields) everything is shown.
#[derive(Clone, Copy)]
pub struct Live {
    pub problems: Memo<Vec<(String, Problem)>>,
    /// The violations of the server's last 422 answer, with the draft that was sent: they are
    /// shown until the user changes the form (live validation takes over then).
    server: RwSignal<Option<(Draft, Vec<Violation>)>>,
    draft: Memo<Draft>,
    touched: RwSignal<BTreeSet<String>>,
    submitted: RwSignal<bool>,
    editing: RwSignal<bool>,
}

impl Live {
    /// `resource`: what the form edits; `fields`: the form's field keys; `draft`: the
    /// candidate change.
    pub fn new(
        resource: Memo<Resource>,
        name_field: &'static str,
        fields: Memo<Vec<String>>,
        draft: Memo<Draft>,
    ) -> Self {
        let c = ctx();
        let server: RwSignal<Option<(Draft, Vec<Violation>)>> = RwSignal::new(None);
        // A private copy of the topology, made once per topology refresh; every keystroke
        // applies the draft to it in place, validates, and undoes the draft (no copy per
        // keystroke: copying 500 VNets costs as much as validating them).
        let scratch: StoredValue<Option<Topology>> = StoredValue::new(None);
        let baseline: Memo<BTreeSet<Violation>> = Memo::new(move |_| {
            let t = c.topology();
            let base = t
                .as_ref()
                .map(|t| validate(t).into_iter().collect())
                .unwrap_or_default();
            scratch.set_value(t);
            base
        });
        let live: Memo<Vec<Violation>> = Memo::new(move |_| {
            baseline.track();
            draft.with(|d| match &d.change {
                Some(ch) => scratch
                    .try_update_value(|t| t.as_mut().map(|t| validate_change_in_place(t, ch)))
                    .flatten()
                    .unwrap_or_default(),
                None => Vec::new(),
            })
        });
        let problems = Memo::new(move |_| {
            let r = resource.get();
            let fs = fields.get();
            let mut out: Vec<(String, Problem)> = draft.with(|d| d.parse.clone());
            let mut seen = BTreeSet::new();
            let server_v = server.with(|s| match s {
                Some((sent, v)) if draft.with(|d| d == sent) => v.clone(),
                _ => Vec::new(),
            });
            baseline.with(|base_set| {
                live.with(|lv| {
                    for v in lv.iter().chain(server_v.iter()) {
                        if !seen.insert((v.path.clone(), v.rule, v.message.clone())) {
                            continue;
                        }
                        let p = || Problem::of(v).linked(&r.tenant, Some(&r));
                        match assign(&r, name_field, &fs, v) {
                            Some(f) => out.push((f, p())),
                            None if v.is_error() && !base_set.contains(v) => {
                                out.push((GENERAL.to_owned(), p()))
                            }
                            None => {}
                        }
                    }
                })
            });
            out
        });
        Self {
            problems,
            server,
            draft,
            touched: RwSignal::new(BTreeSet::new()),
            submitted: RwSignal::new(false),
            editing: RwSignal::new(false),
        }
    }

    /// An edit form: the problems of its filled fields are shown from the start.
    pub fn editing(self, editing: bool) -> Self {
        self.editing.set(editing);
        self
    }

    /// The user changed field `key`.
    pub fn touch(&self, key: &str) {
        if !self.touched.with_untracked(|t| t.contains(key)) {
            self.touched.update(|t| {
                t.insert(key.to_owned());
            });
        }
    }

    /// The user submitted the form: every problem is shown from now on.
    pub fn mark_submitted(&self) {
        self.submitted.set(true);
    }

    /// Back to a fresh form (after a successful submit that keeps the form).
    pub fn reset(&self) {
        self.submitted.set(false);
        self.touched.set(BTreeSet::new());
    }

    /// Whether the problems of field `key` (holding a value when `filled`) are shown.
    pub fn shown(&self, key: &str, filled: bool) -> bool {
        if self.submitted.get() {
            return true;
        }
        self.touched
            .with(|t| t.contains(key) || (filled && (!t.is_empty() || self.editing.get())))
    }

    /// Shows the violations of a refused submit beside the fields.
    pub fn set_server(&self, violations: Vec<Violation>) {
        let sent = self.draft.get_untracked();
        self.server.set(Some((sent, violations)));
    }

    pub fn has_parse_errors(&self) -> bool {
        self.problems
            .with_untracked(|p| p.iter().any(|(_, x)| x.rule.is_none()))
    }

    /// The problems shown at field `key` (see [`Live::shown`]).
    pub fn for_field(&self, key: &str, filled: bool) -> Vec<Problem> {
        if !self.shown(key, filled) {
            return Vec::new();
        }
        self.problems.with(|p| {
            p.iter()
                .filter(|(f, _)| f == key)
                .map(|(_, x)| x.clone())
                .collect()
        })
    }

    /// Whether field `key` shows an error (its `aria-invalid`).
    pub fn invalid(&self, key: &str, filled: bool) -> bool {
        self.shown(key, filled)
            && self
                .problems
                .with(|p| p.iter().any(|(f, x)| f == key && x.error))
    }
}

/// The dom id of a field's problem list.
pub fn problems_id(form: &str, key: &str) -> String {
    let clean: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("{form}-{clean}-problems")
}

/// The problems of one field (or of the form as a whole, with key [`GENERAL`]).
#[component]
pub fn Problems(
    live: Live,
    form: &'static str,
    #[prop(into)] field: Signal<String>,
    /// Whether the field holds a value (problems of an empty field wait until it is touched).
    #[prop(optional, into)]
    filled: Option<Signal<bool>>,
) -> impl IntoView {
    let key = field;
    let filled = filled.unwrap_or_else(|| Signal::derive(|| true));
    let c = ctx();
    view! {
        <ul
            class="problems"
            id=move || problems_id(form, &key.get())
            aria-live="polite"
            aria-label=move || c.t(Key::Problems)
        >
            {move || {
                let lang = c.lang.get();
                live.for_field(&key.get(), filled.get())
                    .into_iter()
                    .map(|p| view! { <ProblemItem problem=p lang=lang /> })
                    .collect_view()
            }}
        </ul>
    }
}

#[component]
pub fn ProblemItem(problem: Problem, lang: Lang) -> impl IntoView {
    let class = if problem.error {
        "problem problem-error"
    } else {
        "problem problem-warning"
    };
    let link = problem.link.clone().map(|(href, name)| {
        view! {
            " "
            <a class="problem-link" href=href>{tf(lang, Key::OpenResource, &[("name", &name)])}</a>
        }
    });
    match problem.rule {
        Some(rule) => {
            let warn = (!problem.error).then(|| format!(" ({})", t(lang, Key::Warning)));
            let text = problem_text(lang, &problem);
            let general = Some(rule_text(lang, rule)).filter(|g| lang != Lang::En && *g != text);
            view! {
                <li class=class data-rule=rule.as_str()>
                    <code class="rule-id">{rule.as_str()}</code>
                    {warn}
                    " "
                    <span class="problem-text">{text}</span>
                    {link}
                    {general.map(|g| view! { <small class="rule-text">{g}</small> })}
                    {(lang != Lang::En)
                        .then(|| {
                            view! {
                                <details>
                                    <summary>{t(lang, Key::Detail)}</summary>
                                    <span lang="en">{problem.message.clone()}</span>
                                </details>
                            }
                        })}
                </li>
            }
            .into_any()
        }
        None => view! { <li class=class>{problem_text(lang, &problem)}</li> }.into_any(),
    }
}

/// What a problem says in `lang`: a violation's detail, or what an unparsable input should be.
pub fn problem_text(lang: Lang, p: &Problem) -> String {
    match (&p.violation, p.expect) {
        (Some(v), _) => violation_text(lang, v),
        (None, Some(expect)) if p.message.is_empty() => t(lang, expect).to_owned(),
        (None, Some(expect)) => tf(
            lang,
            Key::ParseProblem,
            &[("text", &p.message), ("expect", t(lang, expect))],
        ),
        (None, None) => match (lang, p.rule) {
            (Lang::Ja, Some(rule)) => rule_text(lang, rule).to_owned(),
            _ => p.message.clone(),
        },
    }
}

/// What a refused request says, in `lang`: for a 422 that nothing was saved and how many
/// problems to fix; otherwise the status (the server's English message stays as detail).
pub fn refusal_summary(lang: Lang, e: &ApiError) -> String {
    match e.status {
        422 => format!(
            "{} {}",
            t(lang, Key::SaveFailed),
            tf(
                lang,
                Key::SaveRefusedCount,
                &[("n", &e.violations.len().max(1).to_string())]
            )
        ),
        0 => t(lang, Key::ServerUnreachable).to_owned(),
        _ if lang == Lang::En => e.message.clone(),
        status => tf(lang, Key::RequestFailed, &[("status", &status.to_string())]),
    }
}

/// A refused request as an alert: its summary, the server's English message behind a
/// disclosure (in Japanese), and with `violations` each violation (linked to the resource of
/// `tenant` it is about, other than `current`).
#[component]
pub fn Refusal(
    error: ApiError,
    #[prop(optional)] violations: bool,
    #[prop(optional)] current: Option<Resource>,
) -> impl IntoView {
    let c = ctx();
    move || {
        let lang = c.lang.get();
        let tn = c.tenant_name();
        let detail =
            (lang != Lang::En && error.status != 422 && !error.message.is_empty()).then(|| {
                view! {
                    <details>
                        <summary>{t(lang, Key::Detail)}</summary>
                        <span lang="en">{error.message.clone()}</span>
                    </details>
                }
            });
        let list = violations.then(|| {
            error
                .violations
                .iter()
                .map(|v| {
                    let p = Problem::of(v).linked(&tn, current.as_ref());
                    view! { <ProblemItem problem=p lang=lang /> }
                })
                .collect_view()
        });
        view! {
            <div role="alert" class="status-bad refusal">
                <p>{refusal_summary(lang, &error)}</p>
                {detail}
                {list.map(|l| view! { <ul class="problems">{l}</ul> })}
            </div>
        }
    }
}

/// A modal confirmation dialog.
#[component]
pub fn ConfirmDialog(
    open: RwSignal<bool>,
    #[prop(into)] message: Signal<String>,
    on_confirm: Callback<()>,
    #[prop(optional)] children: Option<ChildrenFn>,
) -> impl IntoView {
    let c = ctx();
    let children = StoredValue::new(children);
    view! {
        <Show when=move || open.get()>
            <div class="backdrop">
                <div
                    role="dialog"
                    aria-modal="true"
                    aria-labelledby="confirm-title"
                    class="dialog card"
                    on:keydown=move |ev| {
                        if ev.key() == "Escape" {
                            open.set(false);
                        }
                    }
                >
                    <h2 id="confirm-title">{move || c.t(Key::Confirm)}</h2>
                    <p>{move || message.get()}</p>
                    {move || children.with_value(|c| c.as_ref().map(|c| c()))}
                    <div class="buttons">
                        <button
                            class="danger"
                            autofocus
                            on:click=move |_| {
                                open.set(false);
                                on_confirm.run(());
                            }
                        >
                            {move || c.t(Key::Confirm)}
                        </button>
                        <button on:click=move |_| open.set(false)>{move || c.t(Key::Cancel)}</button>
                    </div>
                </div>
            </div>
        </Show>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn violation(path: &str, related: &[&str]) -> Violation {
        serde_json::from_value(serde_json::json!({
            "path": path,
            "rule": "GW-7",
            "severity": "Error",
            "message": "m",
            "related": related,
        }))
        .expect("a violation")
    }

    /// Each violation goes to the deepest field key its path lies in, the resource itself to
    /// the name field, anything else of the resource to the general list, and a violation of
    /// another resource nowhere.
    #[test]
    fn violations_are_placed_by_their_typed_path() {
        let hub = Resource {
            kind: Kind::Vnet,
            tenant: "acme".to_owned(),
            name: "hub".to_owned(),
        };
        let fields: Vec<String> = ["name", "subnets", "subnets[GatewaySubnet]", "kind.site"]
            .map(str::to_owned)
            .to_vec();
        let place =
            |path: &str, related: &[&str]| assign(&hub, "name", &fields, &violation(path, related));
        let at = |f: &str| Some(f.to_owned());
        assert_eq!(place("tenants[acme].vnets[hub]", &[]), at("name"));
        assert_eq!(
            place(
                "tenants[acme].vnets[hub].subnets[GatewaySubnet].prefix",
                &[]
            ),
            at("subnets[GatewaySubnet]")
        );
        assert_eq!(
            place("tenants[acme].vnets[hub].subnets[a]", &[]),
            at("subnets")
        );
        assert_eq!(
            place("tenants[acme].vnets[hub].kind.site", &[]),
            at("kind.site")
        );
        assert_eq!(place("tenants[acme].vnets[hub].kind", &[]), at(GENERAL));
        assert_eq!(place("tenants[acme].vnets[hub].region", &[]), at(GENERAL));
        assert_eq!(place("tenants[acme].vnets[hubx]", &[]), None);
        assert_eq!(place("tenants[acme].gateways[hub]", &[]), None);
        assert_eq!(place("tenants[other].vnets[hub]", &[]), None);
        assert_eq!(place("change", &[]), None);
        assert_eq!(
            place(
                "tenants[acme].vnets[spoke].address_space[0]",
                &["tenants[acme].vnets[hub].subnets[GatewaySubnet]"]
            ),
            at("subnets[GatewaySubnet]")
        );
    }
}
