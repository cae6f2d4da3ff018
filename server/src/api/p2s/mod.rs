//! Point-to-site remote access under `/api/v1/tenants/{tenant}/point-to-site/{gateway}/...`:
//! root certificates (P2S-3), revocation by thumbprint, client removal, and certificate-based
//! enrolment (a signed challenge, then an address from the pool and the client package).
//!
//! Every write goes through [`store::commit_with`], so the shared validator sees the whole
//! topology (P2S-1, P2S-2, P2S-3, ADDR-1 ...) and the address allocation reads and writes inside
//! the one serialised write transaction: concurrent enrolments never get the same address.
//!
//! [`roots`] holds the root certificates, [`revocation`] the revoked thumbprints and the removal
//! of one client, [`enrol`] the challenge and the enrolment; this module the lookups and errors
//! they share.

pub mod enrol;
pub mod revocation;
pub mod roots;

use isthmus_shared::model::{PointToSite, Topology};
use isthmus_shared::rules::RuleId;
use isthmus_shared::validate::{Severity, Violation};
use serde_json::{Value, json};

use crate::auth::now_ms;
use crate::error::ApiError;
use crate::p2s::CertError;
use crate::store;

fn now_unix() -> i64 {
    now_ms() / 1000
}

fn cert_error(e: CertError) -> ApiError {
    match e {
        CertError::TooLarge { .. } => ApiError::PayloadTooLarge(e.to_string()),
        e if e.is_malformed() => ApiError::BadRequest(e.to_string()),
        e => ApiError::Forbidden(e.to_string()),
    }
}

/// P2S-1 as the 422 every other write gives.
fn p2s_1(tenant: &str, gateway: &str) -> ApiError {
    ApiError::Unprocessable {
        message: "1 rule violation; nothing was saved: fix it and submit again".to_owned(),
        violations: vec![Violation {
            path: format!("tenants[{tenant}].gateways[{gateway}].gateway_type"),
            rule: RuleId::P2s1,
            severity: Severity::Error,
            message: format!(
                "point-to-site works only on RouteBased gateways, and {gateway:?} is PolicyBased; \
                 recreate the gateway as RouteBased"
            ),
            params: Default::default(),
            related: Vec::new(),
        }],
    }
}

/// The point-to-site configuration of `tenant/gateway`, or the error a user can act on.
fn p2s_of<'t>(t: &'t Topology, tenant: &str, gateway: &str) -> Result<&'t PointToSite, ApiError> {
    let gw = t.gateway(tenant, gateway).ok_or_else(|| {
        ApiError::NotFound(format!(
            "gateway `{gateway}` does not exist in tenant `{tenant}`"
        ))
    })?;
    if !gw.gateway_type.supports_point_to_site() {
        return Err(p2s_1(tenant, gateway));
    }
    t.point_to_site_of(tenant, gateway).ok_or_else(|| {
        ApiError::NotFound(format!(
            "gateway `{gateway}` has no point-to-site configuration; create one first with POST \
             /api/v1/tenants/{tenant}/point-to-site (it needs an address_pool)"
        ))
    })
}

fn written(resource: Value, committed: &store::Committed) -> Value {
    json!({
        "resource": resource,
        "version": committed.version,
        "warnings": committed.warnings,
    })
}
