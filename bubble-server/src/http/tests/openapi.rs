//! `/v1/openapi.json`: OpenAPI 3.1, every admin route and method in it, and
//! the error body it documents is the one refusals send.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::Value;

use super::{ADMIN, admin, app, send};
use crate::http::admin_routes;

const HTTP_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The document, read as a client would: without the admin secret.
async fn document() -> Value {
    let (router, _) = app().await;
    let request = Request::get("/v1/openapi.json")
        .body(Body::empty())
        .unwrap();
    let answer = send(&router, request).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    answer.json
}

/// A request path for a route template: each `{name}` filled with a value.
fn concrete(template: &str) -> String {
    template.replace('{', "x-").replace('}', "")
}

/// What `$ref` points to (`#/a/b`), or `None`.
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

/// Every `$ref` string in `node`.
fn refs(node: &Value, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| refs(item, out)),
        _ => {}
    }
}

/// The property names of an object schema.
fn properties(schema: &Value) -> BTreeSet<String> {
    schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("an object schema with properties: {schema}"))
        .keys()
        .cloned()
        .collect()
}

/// The names an object schema lists as required.
fn required(schema: &Value) -> BTreeSet<String> {
    schema["required"]
        .as_array()
        .unwrap_or_else(|| panic!("a schema with required fields: {schema}"))
        .iter()
        .filter_map(|field| field.as_str().map(str::to_owned))
        .collect()
}

/// The keys of a JSON object.
fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("a JSON object: {value}"))
        .keys()
        .cloned()
        .collect()
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_needs_no_admin_secret() {
    let doc = document().await;
    let version = doc["openapi"].as_str().expect("an `openapi` version");
    assert!(version.starts_with("3.1."), "OpenAPI {version}, not 3.1");
    assert!(doc["info"]["title"].is_string(), "{}", doc["info"]);
    assert!(doc["info"]["version"].is_string(), "{}", doc["info"]);
    assert_eq!(
        doc["components"]["securitySchemes"]["admin"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn every_admin_route_and_each_of_its_methods_is_in_the_document() {
    let doc = document().await;
    let (router, _) = app().await;
    let documented: BTreeSet<String> = keys(&doc["paths"]);
    let routed: BTreeSet<String> = admin_routes()
        .into_iter()
        .map(|(path, _)| path.to_owned())
        .collect();
    assert_eq!(
        routed, documented,
        "the router's admin routes and the document's paths differ: \
         add a #[utoipa::path] to the handler and list it in openapi::AdminApi"
    );
    for path in &routed {
        // The router's 405 lists, in `Allow`, the methods it serves there.
        let probe = admin("PATCH", &concrete(path), None);
        let answer = send(&router, probe).await;
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
        let served: BTreeSet<String> = answer.headers[header::ALLOW]
            .to_str()
            .unwrap()
            .split(',')
            .map(|m| m.trim().to_lowercase())
            .filter(|m| m != "head") // axum's, for every GET
            .collect();
        let item = &doc["paths"][path];
        let operations: BTreeSet<String> = HTTP_METHODS
            .iter()
            .filter(|m| item.get(**m).is_some())
            .map(|m| m.to_string())
            .collect();
        assert_eq!(served, operations, "{path}: routed vs documented methods");
    }
}

#[tokio::test]
async fn every_operation_has_responses_and_parameters_and_every_ref_resolves() {
    let doc = document().await;
    let paths = doc["paths"].as_object().expect("paths");
    assert!(!paths.is_empty());
    for (path, item) in paths {
        let operations: Vec<(&str, &Value)> = HTTP_METHODS
            .iter()
            .filter_map(|m| item.get(*m).map(|op| (*m, op)))
            .collect();
        assert!(!operations.is_empty(), "{path} has no operation");
        let templated: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for (method, op) in operations {
            let responses = op["responses"].as_object().expect("responses");
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path}: no success response"
            );
            for (status, response) in responses {
                assert!(
                    response["description"].is_string(),
                    "{method} {path} {status}: a response needs a description"
                );
            }
            let in_path: BTreeSet<&str> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path" && p["required"] == true)
                        .filter_map(|p| p["name"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(templated, in_path, "{method} {path}: path parameters");
            assert_eq!(op["security"][0]["admin"], Value::Array(vec![]));
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty(), "the document shares its schemas by $ref");
    for reference in all {
        assert!(
            resolve(&doc, &reference).is_some(),
            "{reference} resolves to nothing"
        );
    }
}

#[tokio::test]
async fn the_documented_error_body_is_the_one_refusals_send() {
    let doc = document().await;
    let schemas = &doc["components"]["schemas"];
    let body_fields = properties(&schemas["ErrorBody"]);
    let error_ref = schemas["ErrorBody"]["properties"]["error"]["$ref"]
        .as_str()
        .expect("`error` is a shared schema");
    let detail = resolve(&doc, error_ref).expect("ErrorDetail");
    let detail_fields = properties(detail);
    assert_eq!(required(&schemas["ErrorBody"]), body_fields, "always sent");
    assert_eq!(required(detail), detail_fields, "always sent");

    // Every refusal the document lists points to that schema.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in HTTP_METHODS.iter().filter_map(|m| item.get(*m)) {
            for (status, response) in method["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{path} {status}"
                    );
                }
            }
        }
    }

    let (router, _) = app().await;
    let wrong_secret = Request::get("/v1/admin/apps/demo")
        .header(header::AUTHORIZATION, format!("Bearer not-{ADMIN}"))
        .body(Body::empty())
        .unwrap();
    let refusals = [
        (wrong_secret, StatusCode::UNAUTHORIZED),
        (
            admin("GET", "/v1/admin/apps/no-such-app", None),
            StatusCode::NOT_FOUND,
        ),
        (
            admin("POST", "/v1/admin/apps", Some("{\"id\":")),
            StatusCode::BAD_REQUEST,
        ),
        (
            admin("PATCH", "/v1/admin/apps", None),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ];
    for (request, status) in refusals {
        let what = format!("{} {}", request.method(), request.uri());
        let answer = send(&router, request).await;
        assert_eq!(answer.status, status, "{what}: {}", answer.json);
        assert_eq!(keys(&answer.json), body_fields, "{what}: {}", answer.json);
        assert_eq!(
            keys(&answer.json["error"]),
            detail_fields,
            "{what}: {}",
            answer.json
        );
        for field in &detail_fields {
            assert_eq!(detail["properties"][field]["type"], "string");
            assert!(answer.json["error"][field].is_string(), "{what}: {field}");
        }
    }
}

/// The fields the document lists for a response: its schema's properties.
fn documented_fields(doc: &Value, path: &str, method: &str, status: &str) -> BTreeSet<String> {
    let response = &doc["paths"][path][method]["responses"][status];
    let reference = response["content"]["application/json"]["schema"]["$ref"]
        .as_str()
        .unwrap_or_else(|| panic!("{method} {path} {status} has no schema: {response}"));
    properties(resolve(doc, reference).expect("the schema resolves"))
}

#[tokio::test]
async fn success_bodies_have_exactly_the_fields_their_schemas_list() {
    let doc = document().await;
    let (router, _) = app().await;
    let members = "/v1/admin/apps/{app}/groups/{group}/members";
    let calls = [
        (
            "post",
            "/v1/admin/apps",
            "/v1/admin/apps",
            r#"{"id":"shop"}"#,
            "201",
        ),
        (
            "get",
            "/v1/admin/apps/{app}",
            "/v1/admin/apps/demo",
            "",
            "200",
        ),
        (
            "post",
            "/v1/admin/apps/{app}/tokens",
            "/v1/admin/apps/demo/tokens",
            r#"{"user":"alice"}"#,
            "200",
        ),
        (
            "post",
            "/v1/admin/apps/{app}/groups",
            "/v1/admin/apps/demo/groups",
            r#"{"id":"vip","owner":"alice","members":["bob"]}"#,
            "201",
        ),
        (
            "post",
            members,
            "/v1/admin/apps/demo/groups/vip/members",
            r#"{"users":["carol"]}"#,
            "200",
        ),
        (
            "get",
            members,
            "/v1/admin/apps/demo/groups/vip/members",
            "",
            "200",
        ),
        (
            "delete",
            members,
            "/v1/admin/apps/demo/groups/vip/members",
            r#"{"users":["carol"]}"#,
            "200",
        ),
        (
            "post",
            "/v1/admin/apps/{app}/push",
            "/v1/admin/apps/demo/push",
            r#"{"target":"user","id":"alice","text":"hi"}"#,
            "200",
        ),
        (
            "get",
            "/v1/admin/apps/{app}/presence",
            "/v1/admin/apps/demo/presence?users=alice",
            "",
            "200",
        ),
        (
            "get",
            "/v1/admin/apps/{app}/users/{user}/search",
            "/v1/admin/apps/demo/users/alice/search?q=hi",
            "",
            "200",
        ),
    ];
    for (method, template, uri, body, status) in calls {
        let body = (!body.is_empty()).then_some(body);
        let answer = send(&router, admin(&method.to_uppercase(), uri, body)).await;
        assert_eq!(
            answer.status.as_str(),
            status,
            "{method} {uri}: {}",
            answer.json
        );
        assert_eq!(
            keys(&answer.json),
            documented_fields(&doc, template, method, status),
            "{method} {uri}: {}",
            answer.json
        );
    }
}
