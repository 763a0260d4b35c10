//! The admin API as an OpenAPI 3.1 document, served at `/v1/openapi.json`.
//!
//! Generated from the handlers' `#[utoipa::path]` attributes and the request
//! and error types themselves; the tests check it lists every route of
//! [`super::admin_routes`] and that its error schema is what a refusal sends.

use axum::response::IntoResponse;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::api::{ErrorBody, ErrorDetail};

/// The admin API's document.
#[derive(OpenApi)]
#[openapi(
    // Version and license come from Cargo.toml.
    info(
        title = "bubble admin API",
        description = "Apps, tokens, groups, system pushes, presence and search \
                       (docs/admin-api.md). Every refusal is an `ErrorBody`."
    ),
    paths(
        super::create_app,
        super::get_app,
        super::issue_token,
        super::create_group,
        super::add_members,
        super::remove_members,
        super::list_members,
        super::system_push,
        super::presence,
        super::search,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&AdminAuth, &Refusals),
    tags((name = "admin", description = "Needs `Authorization: Bearer <admin secret>`"))
)]
pub struct AdminApi;

/// `GET /v1/openapi.json`: readable without the admin secret, like the
/// documentation it is.
pub async fn document() -> impl IntoResponse {
    axum::Json(AdminApi::openapi())
}

/// The `admin` security scheme the operations name: the bearer secret.
struct AdminAuth;

impl Modify for AdminAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The admin secret: `http.admin_secret`, or `<data_dir>/admin_secret`",
                    ))
                    .build(),
            ),
        );
    }
}

/// Adds the refusals every admin operation can answer, each with the one
/// error body, so no handler has to list them (docs/admin-api.md, "Errors").
struct Refusals;

impl Modify for Refusals {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let takes_ids = path.contains('{');
            for operation in [&mut item.get, &mut item.post, &mut item.delete]
                .into_iter()
                .flatten()
            {
                add_refusals(operation, takes_ids);
            }
        }
    }
}

fn add_refusals(operation: &mut Operation, takes_ids: bool) {
    let has_body = operation.request_body.is_some();
    let refusals = [
        (
            true,
            "400",
            "Bad input: a body, path or query parameter that does not parse, or input the engine refuses",
        ),
        (true, "401", "No or a wrong admin secret"),
        (takes_ids, "404", "No such app, group or user"),
        (
            true,
            "405",
            "A method the route does not serve (the `Allow` header lists those it does)",
        ),
        (has_body, "413", "A body over 2 MiB"),
        (
            has_body,
            "415",
            "A body without `Content-Type: application/json`",
        ),
        (true, "500", "A server bug"),
        (true, "503", "A backend is down or slow: retry"),
    ];
    for (applies, status, description) in refusals {
        if !applies || operation.responses.responses.contains_key(status) {
            continue;
        }
        let response = ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build();
        operation
            .responses
            .responses
            .insert(status.to_owned(), RefOr::T(response));
    }
}
