//! The portal's shared state (session, tenant, topology, live status) and its hash router.

use std::time::Duration;

use isthmus_shared::api::{Me, TenantInfo};
pub use isthmus_shared::model::Kind;
use isthmus_shared::model::Topology;
use leptos::prelude::*;

use crate::api::{self, ConnectionStatus};
use crate::i18n::{self, Key, Lang};

/// How often the tenant's topology and status are refreshed.
pub const POLL: Duration = Duration::from_secs(3);

const TENANT_KEY: &str = "isthmus.tenant";

/// A page of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TPage {
    Diagram,
    Routes,
    List(Kind),
    New(Kind),
    Edit(Kind, String),
    Connection(String),
}

/// Where the portal is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    Home,
    Bench,
    Tenant(String, TPage),
}

fn enc(s: &str) -> String {
    String::from(js_sys::encode_uri_component(s))
}

fn dec(s: &str) -> String {
    js_sys::decode_uri_component(s)
        .map(String::from)
        .unwrap_or_else(|_| s.to_owned())
}

impl Page {
    pub fn href(&self) -> String {
        match self {
            Page::Home => "#/".to_owned(),
            Page::Bench => "#/bench".to_owned(),
            Page::Tenant(t, tp) => {
                let t = enc(t);
                match tp {
                    TPage::Diagram => format!("#/t/{t}/diagram"),
                    TPage::Routes => format!("#/t/{t}/routes"),
                    TPage::List(k) => format!("#/t/{t}/{}", k.path_segment()),
                    TPage::New(k) => format!("#/t/{t}/{}/new", k.path_segment()),
                    TPage::Edit(k, n) => format!("#/t/{t}/{}/{}/edit", k.path_segment(), enc(n)),
                    TPage::Connection(n) => format!("#/t/{t}/connections/{}", enc(n)),
                }
            }
        }
    }

    fn parse(hash: &str, path: &str) -> Page {
        let h = hash.trim_start_matches('#');
        if h.is_empty() || h == "/" {
            return if path.trim_end_matches('/') == "/bench" {
                Page::Bench
            } else {
                Page::Home
            };
        }
        let parts: Vec<&str> = h.trim_matches('/').split('/').collect();
        match parts.as_slice() {
            ["bench"] => Page::Bench,
            ["t", t] | ["t", t, "diagram"] => Page::Tenant(dec(t), TPage::Diagram),
            ["t", t, "routes"] => Page::Tenant(dec(t), TPage::Routes),
            ["t", t, k] => match Kind::from_path_segment(k) {
                Some(k) => Page::Tenant(dec(t), TPage::List(k)),
                None => Page::Home,
            },
            ["t", t, k, "new"] => match Kind::from_path_segment(k) {
                Some(k) => Page::Tenant(dec(t), TPage::New(k)),
                None => Page::Home,
            },
            ["t", t, "connections", n] => Page::Tenant(dec(t), TPage::Connection(dec(n))),
            ["t", t, k, n] | ["t", t, k, n, "edit"] => match Kind::from_path_segment(k) {
                Some(k) => Page::Tenant(dec(t), TPage::Edit(k, dec(n))),
                None => Page::Home,
            },
            _ => Page::Home,
        }
    }
}

pub fn current_hash() -> String {
    let h = window().location().hash().unwrap_or_default();
    if h.is_empty() { "#/".to_owned() } else { h }
}

fn current_page() -> Page {
    let loc = window().location();
    Page::parse(
        &loc.hash().unwrap_or_default(),
        &loc.pathname().unwrap_or_default(),
    )
}

pub fn navigate(page: &Page) {
    let _ = window()
        .location()
        .set_hash(page.href().trim_start_matches('#'));
}

/// Everything the pages share.
#[derive(Clone, Copy)]
pub struct Ctx {
    pub lang: RwSignal<Lang>,
    pub page: RwSignal<Page>,
    /// Whether `me` has been asked for.
    pub checked: RwSignal<bool>,
    pub me: RwSignal<Option<Me>>,
    pub tenants: RwSignal<Vec<TenantInfo>>,
    pub tenant: RwSignal<Option<String>>,
    /// The current tenant's topology, with the tenant it belongs to.
    pub topo: RwSignal<Option<(String, Topology)>>,
    pub status: RwSignal<Vec<ConnectionStatus>>,
    /// Bumped on every page change (the path router listens to `hashchange`).
    pub hash: RwSignal<String>,
}

pub fn ctx() -> Ctx {
    expect_context::<Ctx>()
}

impl Ctx {
    pub fn create() -> Self {
        Self {
            lang: RwSignal::new(i18n::initial_lang()),
            page: RwSignal::new(current_page()),
            checked: RwSignal::new(false),
            me: RwSignal::new(None),
            tenants: RwSignal::new(Vec::new()),
            tenant: RwSignal::new(None),
            topo: RwSignal::new(None),
            status: RwSignal::new(Vec::new()),
            hash: RwSignal::new(current_hash()),
        }
    }

    pub fn t(&self, key: Key) -> &'static str {
        i18n::t(self.lang.get(), key)
    }

    /// The current tenant's name (empty when none).
    pub fn tenant_name(&self) -> String {
        self.tenant.get().unwrap_or_default()
    }

    /// The topology if it is the current tenant's.
    pub fn topology(&self) -> Option<Topology> {
        let tn = self.tenant.get()?;
        self.topo
            .with(|t| t.as_ref().filter(|(n, _)| *n == tn).map(|(_, t)| t.clone()))
    }

    /// Whether the current tenant's topology is loaded.
    pub fn loaded(&self) -> bool {
        let tn = self.tenant.get();
        self.topo.with(|t| {
            t.as_ref()
                .map(|(n, _)| Some(n.clone()) == tn)
                .unwrap_or(false)
        })
    }

    pub fn start(self) {
        let on_hash = move || {
            let page = current_page();
            if let Page::Tenant(t, _) = &page
                && self.tenant.get_untracked().as_deref() != Some(t)
            {
                self.set_tenant(t.clone());
            }
            self.hash.set(current_hash());
            if self.page.get_untracked() != page {
                self.page.set(page);
            }
        };
        on_hash();
        // The app lives as long as the page: the listener is never removed.
        let _listener = window_event_listener(leptos::ev::hashchange, move |_| on_hash());
        leptos::task::spawn_local(async move {
            if let Ok(me) = api::me().await {
                self.logged_in(me).await;
            }
            self.checked.set(true);
        });
        if let Ok(h) = set_interval_with_handle(move || self.poll(), POLL) {
            on_cleanup(move || h.clear());
        }
    }

    fn set_tenant(&self, name: String) {
        if let Some(s) = i18n::storage() {
            let _ = s.set_item(TENANT_KEY, &name);
        }
        self.tenant.set(Some(name));
        self.status.set(Vec::new());
        self.poll();
    }

    pub fn switch_tenant(&self, name: String) {
        let tp = match self.page.get_untracked() {
            Page::Tenant(_, TPage::List(k) | TPage::New(k) | TPage::Edit(k, _)) => TPage::List(k),
            Page::Tenant(_, TPage::Routes) => TPage::Routes,
            _ => TPage::Diagram,
        };
        self.set_tenant(name.clone());
        navigate(&Page::Tenant(name, tp));
    }

    pub async fn logged_in(&self, me: Me) {
        self.me.set(Some(me));
        self.checked.set(true);
        self.reload_tenants().await;
        if self.tenant.get_untracked().is_none() {
            let remembered = i18n::storage().and_then(|s| s.get_item(TENANT_KEY).ok().flatten());
            let list = self.tenants.get_untracked();
            let pick = remembered
                .filter(|r| list.iter().any(|t| &t.name == r))
                .or_else(|| list.first().map(|t| t.name.clone()));
            if let Some(p) = pick {
                self.set_tenant(p);
            }
        } else {
            self.poll();
        }
    }

    pub async fn reload_tenants(&self) {
        if let Ok(list) = api::tenants().await {
            self.tenants.set(list);
        }
    }

    pub fn logout(&self) {
        let this = *self;
        leptos::task::spawn_local(async move {
            let _ = api::logout().await;
            this.me.set(None);
            this.tenants.set(Vec::new());
            this.tenant.set(None);
            this.topo.set(None);
            this.status.set(Vec::new());
            navigate(&Page::Home);
        });
    }

    /// Refreshes the topology and the status of the current tenant.
    pub fn poll(&self) {
        let this = *self;
        if this.me.with_untracked(Option::is_none) {
            return;
        }
        let Some(tn) = this.tenant.get_untracked() else {
            return;
        };
        leptos::task::spawn_local(async move {
            this.refresh_topology(&tn).await;
            if let Ok(s) = api::status(&tn).await
                && this.tenant.get_untracked().as_deref() == Some(&tn)
                && this.status.with_untracked(|old| *old != s)
            {
                this.status.set(s);
            }
        });
    }

    pub async fn refresh_topology(&self, tn: &str) {
        match api::topology(tn).await {
            Ok(t) => {
                if self.tenant.get_untracked().as_deref() == Some(tn)
                    && self.topo.with_untracked(|old| {
                        old.as_ref().map(|(n, o)| (n.as_str(), o)) != Some((tn, &t))
                    })
                {
                    self.topo.set(Some((tn.to_owned(), t)));
                }
            }
            Err(e) if e.is_unauthorized() => {
                self.me.set(None);
            }
            Err(_) => {}
        }
    }
}
