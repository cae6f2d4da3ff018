//! The OpenAPI document lists every route the router serves.

use axum::http::StatusCode;

use crate::support::*;

/// Every `(method, path)` the router declares, read from its source so a new route
/// without documentation fails this test.
fn declared_routes() -> Vec<(String, String)> {
    let src = include_str!("../../src/api/mod.rs");
    let flat: String = src.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = Vec::new();
    for part in flat.split(".route(").skip(1) {
        let Some(path) = part.split('"').nth(1) else {
            continue;
        };
        let handlers = part.split(".route(").next().unwrap_or("");
        let head = handlers.split(".fallback").next().unwrap_or(handlers);
        for method in ["get", "post", "put", "delete"] {
            if head.contains(&format!(" {method}("))
                || head.contains(&format!(".{method}("))
                || head.contains(&format!("({method}("))
            {
                out.push((method.to_owned(), path.to_owned()));
            }
        }
    }
    out
}

#[tokio::test]
async fn every_route_is_in_the_openapi_document() {
    let app = test_app().await;
    let r = send(&app, get("/api/v1/openapi.json")).await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = r.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let routes = declared_routes();
    assert!(
        routes.len() >= 25,
        "the route scanner found too few routes: {routes:?}"
    );
    let mut missing = Vec::new();
    for (method, path) in routes {
        if path == "/openapi.json" || path.starts_with("/api") {
            continue; // the document itself and the JSON 404 for unknown API paths
        }
        let full = if path == "/metrics" {
            path.clone()
        } else {
            format!("/api/v1{path}")
        };
        if doc["paths"][&full][&method].is_null() {
            missing.push(format!("{} {full}", method.to_uppercase()));
        }
    }
    assert!(
        missing.is_empty(),
        "routes missing from the OpenAPI document: {missing:?}"
    );
}
