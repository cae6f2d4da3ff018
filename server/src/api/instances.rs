//! Issue 16: workers and the instances of redundant gateways as people see them: `GET
//! /api/v1/workers`, drains (`POST /api/v1/workers/{name}/drain` and `/undrain`), the
//! instances and redundancy of a gateway's status, and their `/metrics` series.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use axum::extract::State;
use axum::http::StatusCode;
use isthmus_shared::api::{GatewayInstanceView, NotRedundantReason, Redundancy, WorkerSummary};
use isthmus_shared::instances::InstanceRole;
use sea_orm::{ConnectionTrait, EntityTrait};
use serde::Serialize;

use crate::auth::Principal;
use crate::db::entities::instance_status;
use crate::error::{ApiError, ApiJson, ApiPath};
use crate::state::AppState;
use crate::store::instances::{self, Key, Slots, Workers};

/// What the views are made of, read once.
pub struct Census {
    pub workers: Workers,
    pub slots: BTreeMap<Key, Slots>,
    reports: BTreeMap<(String, String, u8, String), instance_status::Model>,
    fallback: IpAddr,
}

impl Census {
    pub async fn of<C: ConnectionTrait>(db: &C, fallback: IpAddr) -> Result<Census, ApiError> {
        let reports = instance_status::Entity::find()
            .all(db)
            .await?
            .into_iter()
            .map(|r| {
                let i = u8::try_from(r.instance).unwrap_or(u8::MAX);
                (
                    (r.tenant.clone(), r.gateway.clone(), i, r.worker.clone()),
                    r,
                )
            })
            .collect();
        Ok(Census {
            workers: instances::workers(db, None).await?,
            slots: instances::slots_of(db).await?,
            reports,
            fallback,
        })
    }

    fn live(&self, worker: &str) -> bool {
        self.workers.get(worker).is_some_and(|w| w.live)
    }

    /// Gateway `key`'s instances (its endpoint's port `port`), whether it is redundant and why
    /// not.
    pub fn gateway(
        &self,
        key: &Key,
        port: Option<u16>,
    ) -> (
        Vec<GatewayInstanceView>,
        Redundancy,
        Option<NotRedundantReason>,
    ) {
        let Some(s) = self.slots.get(key) else {
            return (
                Vec::new(),
                Redundancy::NotRedundant,
                Some(NotRedundantReason::NotPlaced),
            );
        };
        let mut views = Vec::new();
        for i in 0u8..2 {
            let Some(w) = s.workers[usize::from(i)].as_deref() else {
                continue;
            };
            let report = self
                .reports
                .get(&(key.0.clone(), key.1.clone(), i, w.to_owned()));
            let designated = if !s.is_pair() || s.active == i {
                InstanceRole::Active
            } else {
                InstanceRole::Standby
            };
            // A report from before the server's current term tells an old role.
            let current = report.filter(|r| u64::try_from(r.term).unwrap_or(0) >= s.term);
            let role = match current.map(|r| r.role.as_str()) {
                Some("active") => InstanceRole::Active,
                Some("standby") => InstanceRole::Standby,
                _ => designated,
            };
            views.push(GatewayInstanceView {
                instance: i,
                worker: w.to_owned(),
                zone: self.workers.get(w).and_then(|x| x.zone.clone()),
                worker_live: self.live(w),
                role,
                term: current.map_or(s.term, |r| u64::try_from(r.term).unwrap_or(0)),
                partner_alive: report.filter(|_| s.is_pair()).map(|r| r.partner_alive),
                endpoint: port.map(|p| {
                    instances::endpoint_on(&self.workers, w, p, self.fallback).to_string()
                }),
                bind_error: report.and_then(|r| r.bind_error.clone()),
                reported_at: report.map(|r| {
                    chrono::DateTime::from_timestamp_millis(r.updated_at)
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_default()
                }),
            });
        }
        let reason = redundancy_reason(s, &views);
        let redundancy = if reason.is_none() {
            Redundancy::Redundant
        } else {
            Redundancy::NotRedundant
        };
        (views, redundancy, reason)
    }

    /// The summary of every known worker (`only_live`: of those whose lease is current), with
    /// the instances designated active and standby on it.
    pub fn summaries(&self, only_live: bool) -> Vec<WorkerEntry> {
        let mut counts: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
        for s in self.slots.values() {
            for i in 0u8..2 {
                if let Some(w) = s.workers[usize::from(i)].as_deref() {
                    let c = counts.entry(w).or_default();
                    if !s.is_pair() || s.active == i {
                        c.0 += 1;
                    } else {
                        c.1 += 1;
                    }
                }
            }
        }
        self.workers
            .iter()
            .filter(|(_, w)| w.live || !only_live)
            .map(|(name, w)| {
                let (active, standby) = counts.get(name.as_str()).copied().unwrap_or_default();
                WorkerEntry {
                    summary: WorkerSummary {
                        name: name.clone(),
                        version: w.version.clone(),
                        last_seen: chrono::DateTime::from_timestamp_millis(w.last_seen_at)
                            .map(|t| t.to_rfc3339())
                            .unwrap_or_default(),
                        zone: w.zone.clone(),
                        draining: w.draining,
                        active_instances: active,
                        standby_instances: standby,
                    },
                    live: w.live,
                    heartbeat_address: w.heartbeat.map(|a| a.to_string()),
                }
            })
            .collect()
    }

    /// The `/metrics` series of the instances of the gateways in `gateways` that `shown`
    /// allows: `isthmus_gateway_instance_active` and `isthmus_gateway_redundant`.
    pub fn metric_lines(
        &self,
        out: &mut String,
        gateways: &[(String, String, Option<u16>)],
        shown: &dyn Fn(&str) -> bool,
        label: fn(&str) -> String,
    ) {
        let views: Vec<_> = gateways
            .iter()
            .filter(|(t, _, _)| shown(t))
            .map(|(t, g, port)| (t, g, self.gateway(&(t.clone(), g.clone()), *port)))
            .collect();
        let metric = "isthmus_gateway_instance_active";
        let _ = writeln!(
            out,
            "# HELP {metric} Issue 16: 1 for the gateway's instance that is active (as its worker reported, or as designated), 0 for a standby."
        );
        let _ = writeln!(out, "# TYPE {metric} gauge");
        for (t, g, (instances, _, _)) in &views {
            for i in instances {
                let _ = writeln!(
                    out,
                    "{metric}{{tenant=\"{}\",gateway=\"{}\",instance=\"{}\",worker=\"{}\"}} {}",
                    label(t),
                    label(g),
                    i.instance,
                    label(&i.worker),
                    u8::from(i.role == InstanceRole::Active)
                );
            }
        }
        let metric = "isthmus_gateway_redundant";
        let _ = writeln!(
            out,
            "# HELP {metric} Issue 16: 1 while the gateway runs as two instances on two live workers, ready to fail over."
        );
        let _ = writeln!(out, "# TYPE {metric} gauge");
        for (t, g, (_, redundancy, _)) in &views {
            let _ = writeln!(
                out,
                "{metric}{{tenant=\"{}\",gateway=\"{}\"}} {}",
                label(t),
                label(g),
                u8::from(*redundancy == Redundancy::Redundant)
            );
        }
    }
}

/// Why a gateway with `slots` and these instance views is not redundant (`None`: it is).
fn redundancy_reason(s: &Slots, views: &[GatewayInstanceView]) -> Option<NotRedundantReason> {
    let live = |w: Option<&str>| {
        views
            .iter()
            .any(|v| Some(v.worker.as_str()) == w && v.worker_live)
    };
    let (active, standby) = (s.active_worker(), s.standby_worker());
    if !live(active) && !live(standby) {
        return Some(NotRedundantReason::NotPlaced);
    }
    if standby.is_none() {
        return Some(NotRedundantReason::OneLiveWorker);
    }
    if !live(active) || !live(standby) {
        return Some(NotRedundantReason::StandbyWorkerDown);
    }
    let sb = views
        .iter()
        .find(|v| Some(v.worker.as_str()) == standby && v.instance != s.active);
    if sb.is_some_and(|v| v.bind_error.is_some()) {
        return Some(NotRedundantReason::StandbyCannotBind);
    }
    if views.iter().any(|v| v.partner_alive == Some(false)) {
        return Some(NotRedundantReason::PartnerUnreachable);
    }
    None
}

/// One worker in `GET /api/v1/workers`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WorkerEntry {
    #[serde(flatten)]
    pub summary: WorkerSummary,
    /// Whether its lease is current.
    pub live: bool,
    /// Where it receives failover heartbeats (`None`: it takes no instance of a redundant
    /// gateway).
    pub heartbeat_address: Option<String>,
}

/// `GET /api/v1/workers`: every known worker (administrators).
#[utoipa::path(
    get, path = "/api/v1/workers", tag = "workers",
    responses(
        (status = 200, description = "Every worker that ever sent a heartbeat: zone, draining, live, and the gateway instances it runs (active and standby)", body = Vec<WorkerEntry>),
        crate::api::openapi::Unauthorized,
        (status = 403, description = "Administrators only", body = isthmus_shared::api::ErrorBody),
    )
)]
pub async fn list_workers(
    State(state): State<AppState>,
    who: Principal,
) -> Result<ApiJson<Vec<WorkerEntry>>, ApiError> {
    who.require_admin()?;
    let census = Census::of(state.db(), state.endpoint_pool().host).await?;
    Ok(ApiJson(census.summaries(false)))
}

/// `POST /api/v1/workers/{name}/drain`.
#[utoipa::path(
    post, path = "/api/v1/workers/{name}/drain", tag = "workers",
    params(("name" = String, Path, description = "Worker name")),
    responses(
        (status = 204, description = "Drained: the worker gets no new instances and hands its active ones over to their standbys (a gateway on it alone first gets a standby elsewhere, when a worker can take it)"),
        crate::api::openapi::BadRequest, crate::api::openapi::Unauthorized,
        (status = 403, description = "Administrators only", body = isthmus_shared::api::ErrorBody),
        (status = 404, description = "No such worker", body = isthmus_shared::api::ErrorBody),
    )
)]
pub async fn drain(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    who.require_admin()?;
    crate::store::workers::set_draining(&state, &who, &name, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/workers/{name}/undrain`.
#[utoipa::path(
    post, path = "/api/v1/workers/{name}/undrain", tag = "workers",
    params(("name" = String, Path, description = "Worker name")),
    responses(
        (status = 204, description = "Undrained: the worker may take instances again (nothing moves back)"),
        crate::api::openapi::BadRequest, crate::api::openapi::Unauthorized,
        (status = 403, description = "Administrators only", body = isthmus_shared::api::ErrorBody),
        (status = 404, description = "No such worker", body = isthmus_shared::api::ErrorBody),
    )
)]
pub async fn undrain(
    State(state): State<AppState>,
    who: Principal,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    who.require_admin()?;
    crate::store::workers::set_draining(&state, &who, &name, false).await?;
    Ok(StatusCode::NO_CONTENT)
}
