//! `#/bench` (or `/bench`): times live validation in the browser on synthetic topologies built
//! with the shared builder. Playwright reads the numbers.

use std::time::Duration;

use isthmus_shared::builder::synthetic;
use isthmus_shared::model::{Change, Topology};
use isthmus_shared::validate::{validate, validate_change_in_place};
use leptos::prelude::*;

use crate::i18n::Key;
use crate::state::ctx;

fn now_ms() -> f64 {
    window()
        .performance()
        .map(|p| p.now())
        .unwrap_or_else(js_sys::Date::now)
}

/// 500 VNets (each with a GatewaySubnet and a RouteBased gateway) and 500 connected sites.
pub fn topology_500() -> Topology {
    synthetic(500, 500)
}

/// The shared crate's benchmark topology: 2,000 VNets, 10,000 sites, 20,000 prefixes.
pub fn topology_large() -> Topology {
    synthetic(2_000, 10_000)
}

/// One live validation as a form does it (`forms::Live`): apply the pending change to the
/// form's private copy of the topology, validate, undo the change.
fn live_validation(scratch: &mut Topology, change: &Change) -> usize {
    validate_change_in_place(scratch, change).len()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

#[derive(Debug, Clone, PartialEq)]
struct Results {
    /// The first live validation after the page loaded (WASM not yet optimised by the engine).
    small_first_ms: f64,
    /// Median of 21 live validations once the engine has optimised the code, as when a user
    /// types into a form a few seconds after the page opened.
    small_ms: f64,
    /// The slowest of those 21.
    small_max_ms: f64,
    small_violations: usize,
    large_ms: f64,
    large_violations: usize,
    large_vnets: usize,
    large_sites: usize,
}

async fn run() -> Results {
    let mut t = topology_500();
    let mut v = t.vnets[0].clone();
    v.dns_servers.push([10, 0, 0, 4].into());
    let change = Change::UpsertVnet(v);
    let start = now_ms();
    let mut small_violations = live_validation(&mut t, &change);
    let small_first_ms = now_ms() - start;
    // Browsers first run WASM from a quick baseline compile and swap in optimised code in the
    // background; give them the time a user takes to start typing.
    for _ in 0..20 {
        live_validation(&mut t, &change);
    }
    gloo_timers::future::sleep(Duration::from_millis(1000)).await;
    let mut small = Vec::new();
    for _ in 0..21 {
        let start = now_ms();
        small_violations = live_validation(&mut t, &change);
        small.push(now_ms() - start);
    }
    let small_max_ms = small.iter().copied().fold(0.0, f64::max);
    let big = topology_large();
    let mut large = Vec::new();
    let mut large_violations = 0;
    for _ in 0..3 {
        let start = now_ms();
        large_violations = validate(&big).len();
        large.push(now_ms() - start);
    }
    Results {
        small_first_ms,
        small_ms: median(small),
        small_max_ms,
        small_violations,
        large_ms: median(large),
        large_violations,
        large_vnets: big.vnets.len(),
        large_sites: big.sites.len(),
    }
}

#[component]
pub fn BenchPage() -> impl IntoView {
    let c = ctx();
    let results = RwSignal::new(None::<Results>);
    let running = RwSignal::new(false);
    let start = move || {
        running.set(true);
        results.set(None);
        leptos::task::spawn_local(async move {
            // Let the page paint first.
            gloo_timers::future::sleep(Duration::from_millis(50)).await;
            results.set(Some(run().await));
            running.set(false);
        });
    };
    start();
    view! {
        <section class="card" aria-labelledby="bench-heading">
            <h2 id="bench-heading">{move || c.t(Key::Bench)}</h2>
            <button on:click=move |_| start() disabled=move || running.get()>
                {move || c.t(Key::BenchRun)}
            </button>
            {move || {
                if running.get() {
                    return view! { <p class="muted" role="status">{c.t(Key::Loading)}</p> }.into_any();
                }
                results
                    .get()
                    .map(|r| {
                        view! {
                            <dl class="facts">
                                <dt>{c.t(Key::Bench500)}</dt>
                                <dd>
                                    <output data-testid="bench-500">{format!("{:.2}", r.small_ms)}</output>
                                    {format!(" ({} violations; first after load ", r.small_violations)}
                                    <output data-testid="bench-500-first">{format!("{:.2}", r.small_first_ms)}</output>
                                    {", slowest "}
                                    <output data-testid="bench-500-max">{format!("{:.2}", r.small_max_ms)}</output>
                                    {")"}
                                </dd>
                                <dt>{c.t(Key::BenchLarge)}</dt>
                                <dd>
                                    <output data-testid="bench-large">{format!("{:.2}", r.large_ms)}</output>
                                    {format!(
                                        " ({} VNets, {} sites, {} violations)",
                                        r.large_vnets,
                                        r.large_sites,
                                        r.large_violations,
                                    )}
                                </dd>
                            </dl>
                        }
                            .into_any()
                    })
                    .unwrap_or_else(|| ().into_any())
            }}
        </section>
    }
}
