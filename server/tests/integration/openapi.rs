//! The OpenAPI document is a contract a client can be generated from: every route is in it,
//! every body has the schema of its Rust type, and every status an operation answers is
//! documented. (Schemathesis checks the same against the running server in `scripts/test.sh`.)

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::support::*;

const METHODS: [&str; 4] = ["get", "post", "put", "delete"];

async fn document(app: &TestApp) -> Value {
    let r = send(app, get("/api/v1/openapi.json")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.content_type.starts_with("application/json"));
    let doc = r.json();
    assert!(doc["openapi"].as_str().expect("version").starts_with("3."));
    doc
}

/// Every `(method, path, operation)` of the document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            if let Some(op) = item.get(m) {
                out.push((m.to_owned(), path.clone(), op.clone()));
            }
        }
    }
    out
}

/// `path` with every `{param}` replaced by a value of its type.
fn concrete(path: &str, tenant: &str) -> String {
    path.replace("{tenant}", tenant)
        .replace("{id}", "424242")
        .replace("{thumbprint}", &"ab".repeat(32))
        .split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                "nothing-here"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn is_error_body(schema: &Value) -> bool {
    schema["$ref"] == "#/components/schemas/ErrorBody"
}

/// The router serves every documented operation (no route answers the JSON 404 of unknown API
/// paths or 405), and the document lists the whole surface: every kind of the topology with its
/// own operations, the worker protocol, accounts, point-to-site and `/metrics`.
#[tokio::test]
async fn openapi_every_route_is_documented_and_served() {
    let app = test_app().await;
    let doc = document(&app).await;
    let ops = operations(&doc);
    for kind in ["vnets", "gateways", "sites", "connections", "point-to-site"] {
        for (m, p) in [
            ("get", format!("/api/v1/tenants/{{tenant}}/{kind}")),
            ("post", format!("/api/v1/tenants/{{tenant}}/{kind}")),
            ("get", format!("/api/v1/tenants/{{tenant}}/{kind}/{{name}}")),
            ("put", format!("/api/v1/tenants/{{tenant}}/{kind}/{{name}}")),
            (
                "delete",
                format!("/api/v1/tenants/{{tenant}}/{kind}/{{name}}"),
            ),
        ] {
            assert!(
                ops.iter().any(|(om, op, _)| *om == m && *op == p),
                "{m} {p} is not documented"
            );
        }
    }
    assert!(ops.len() >= 60, "only {} operations documented", ops.len());
    for (method, path, _) in &ops {
        let mut b = Request::builder()
            .method(method.to_uppercase().as_str())
            .uri(concrete(path, "t"));
        if method == "post" || method == "put" {
            b = b.header("content-type", "application/json");
        }
        let r = send(&app, b.body(Body::from("{}")).expect("request")).await;
        assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert!(
            !String::from_utf8_lossy(&r.body).contains("no API route"),
            "{method} {path} is documented but not served"
        );
    }
    // And nothing under /api/v1 is served that the document does not list.
    for path in [
        "/api/v1/tenants/t/widgets",
        "/api/v1/tenants/t/vnets/v/extra",
    ] {
        let r = send(&app, get(path)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }
}

/// Every request body and every response body has a schema generated from the Rust type, errors
/// the `ErrorBody` schema, and each schema describes what the server really sends.
#[tokio::test]
async fn openapi_every_body_has_the_schema_of_its_type() {
    let app = test_app().await;
    let doc = document(&app).await;
    let schemas = &doc["components"]["schemas"];
    let mut problems = Vec::new();
    let mut ids = std::collections::BTreeSet::new();
    for (method, path, op) in operations(&doc) {
        let id = op["operationId"].as_str().unwrap_or_default().to_owned();
        if !ids.insert(id.clone()) {
            problems.push(format!("{method} {path}: operationId `{id}` is not unique"));
        }
        if let Some(body) = op.get("requestBody") {
            let schema = &body["content"]["application/json"]["schema"];
            if schema.get("$ref").is_none() {
                problems.push(format!(
                    "{method} {path}: request body has no schema: {schema}"
                ));
            }
        }
        for (status, resp) in op["responses"].as_object().expect("responses") {
            let code: u16 = status.parse().expect("status code");
            let content = resp.get("content").and_then(Value::as_object);
            match (code, content) {
                (204, None) => {}
                (204, Some(_)) => problems.push(format!("{method} {path}: 204 with a body")),
                (_, None) => problems.push(format!("{method} {path}: {code} has no body schema")),
                (_, Some(c)) => {
                    let (ctype, media) = c.iter().next().expect("a media type");
                    let schema = &media["schema"];
                    if code >= 400 && !is_error_body(schema) {
                        problems.push(format!("{method} {path}: {code} is not an ErrorBody"));
                    }
                    if code < 300
                        && ctype == "application/json"
                        && schema.get("$ref").is_none()
                        && schema["items"].get("$ref").is_none()
                        && path != "/api/v1/openapi.json"
                    {
                        problems.push(format!("{method} {path}: {code} schema is {schema}"));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");

    // The rule ids are the validator's own.
    let rules = schemas["RuleId"]["enum"].as_array().expect("RuleId enum");
    assert!(rules.contains(&json!("GW-7")) && rules.contains(&json!("LIM-3")));
    let violation = &schemas["Violation"]["properties"];
    for field in ["path", "rule", "severity", "message"] {
        assert!(!violation[field].is_null(), "Violation lacks {field}");
    }
    assert!(!schemas["ErrorBody"]["properties"]["violations"].is_null());

    // A real VNet, as the server stores and returns it, has exactly the fields of the schema.
    let admin = login(&app, "admin", ADMIN_PASSWORD).await;
    let r = send(
        &app,
        req(
            "POST",
            "/api/v1/tenants",
            &admin,
            Some(json!({"name": "t"})),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = send(
        &app,
        req(
            "POST",
            "/api/v1/tenants/t/vnets",
            &admin,
            Some(json!({"name": "v", "region": "r", "address_space": ["10.1.0.0/16"]})),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    let written = r.json();
    let created = &doc["paths"]["/api/v1/tenants/{tenant}/vnets"]["post"]["responses"]["201"];
    let written_ref = created["content"]["application/json"]["schema"]["$ref"]
        .as_str()
        .expect("201 schema ref");
    let written_schema = &schemas[written_ref.rsplit('/').next().expect("name")];
    for key in written.as_object().expect("object").keys() {
        assert!(
            !written_schema["properties"][key].is_null(),
            "the 201 has `{key}`, its schema does not"
        );
    }
    let vnet = &schemas["Vnet"];
    assert_eq!(vnet["additionalProperties"], json!(false));
    for key in written["resource"].as_object().expect("resource").keys() {
        assert!(
            !vnet["properties"][key].is_null(),
            "a stored VNet has `{key}`, the Vnet schema does not"
        );
    }
    for required in vnet["required"].as_array().expect("required") {
        assert!(
            !written["resource"][required.as_str().expect("name")].is_null(),
            "the Vnet schema requires {required}, the server does not send it"
        );
    }
}

/// What each operation really answers to an administrator, for a body that is not declared
/// as JSON and for a tenant that does not exist, is among the statuses it documents; and
/// the statuses every operation of its kind can answer are listed.
#[tokio::test]
async fn openapi_documents_every_status_an_operation_answers() {
    let app = test_app().await;
    let doc = document(&app).await;
    let admin = login(&app, "admin", ADMIN_PASSWORD).await;
    let Cred::Cookie(cookie) = &admin else {
        panic!("login gives a cookie")
    };
    let mut problems = Vec::new();
    for (method, path, op) in operations(&doc) {
        let documented = |code: u16| !op["responses"][code.to_string()].is_null();
        let secured = op["security"].as_array().is_none_or(|s| {
            s.iter()
                .any(|x| x.as_object().is_some_and(|o| !o.is_empty()))
        });
        if op.get("requestBody").is_some() {
            for code in [400, 413, 415] {
                if !documented(code) {
                    problems.push(format!("{method} {path}: JSON body but no {code}"));
                }
            }
        }
        if path.contains("{tenant}") && !path.starts_with("/api/v1/placements") && !documented(404)
        {
            problems.push(format!("{method} {path}: tenant-scoped but no 404"));
        }
        if secured && !path.starts_with("/metrics") && !documented(401) {
            problems.push(format!("{method} {path}: needs a credential but no 401"));
        }
        if path == "/api/v1/auth/logout" {
            continue; // would end the session the probes below use
        }
        // Probes: a body sent as text, and an unknown tenant.
        let uri = concrete(&path, "no-such-tenant");
        let mut b = Request::builder()
            .method(method.to_uppercase().as_str())
            .uri(&uri)
            .header("cookie", cookie.as_str());
        if op.get("requestBody").is_some() {
            b = b.header("content-type", "text/plain");
        }
        let r = send(&app, b.body(Body::from("{}")).expect("request")).await;
        if !documented(r.status.as_u16()) {
            problems.push(format!(
                "{method} {uri} answered {} (undocumented): {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
