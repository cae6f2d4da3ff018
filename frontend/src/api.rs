//! Every HTTP call the portal makes lives here.

use gloo_net::http::Request;
use isthmus_shared::api::{ErrorBody, Health};

/// `GET /api/v1/health`.
pub async fn health() -> Result<Health, String> {
    let resp = Request::get("/api/v1/health")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !resp.ok() {
        let status = resp.status();
        return Err(match resp.json::<ErrorBody>().await {
            Ok(body) => body.message,
            Err(_) => format!("HTTP {status}"),
        });
    }
    resp.json::<Health>().await.map_err(|e| e.to_string())
}
