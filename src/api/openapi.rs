//! The OpenAPI 3.1 document of `/api/v1`, generated from the handlers' `#[utoipa::path]` and the
//! types' `ToSchema` (served at `/api/v1/openapi.json`, printed by `finchgate openapi`).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::model::{
    AttemptList, AttemptOut, ConnectionList, ConnectionOut, LinkCreateIn, LinkCreated, LinkList,
    LinkOut,
};
use super::problem::ProblemBody;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "finchgate tenant API",
        version = "1",
        description = "Manage a tenant's Finch connections from its backend. Authenticate with `Authorization: Bearer fgk_…` (an API key made in the tenant's settings or with `finchgate api-key create`). Errors are RFC 9457 problem details."
    ),
    paths(
        crate::routes::api::connections::list,
        crate::routes::api::connections::show,
        crate::routes::api::connections::disconnect,
        crate::routes::api::attempts::list,
        crate::routes::api::links::create,
        crate::routes::api::links::list,
        crate::routes::api::links::show,
        crate::routes::api::links::revoke,
    ),
    components(schemas(
        ConnectionOut,
        ConnectionList,
        AttemptOut,
        AttemptList,
        LinkOut,
        LinkList,
        LinkCreated,
        LinkCreateIn,
        ProblemBody
    )),
    modifiers(&BearerKey),
    tags(
        (name = "connections", description = "The tenant's Finch connections"),
        (name = "attempts", description = "The tenant's ledger of exchange attempts"),
        (name = "links", description = "Connect links: a customer connects (or reconnects) without an account"),
    )
)]
pub struct ApiDoc;

/// Declares the `api_key` bearer scheme the paths' `security` names.
struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("fgk_<prefix>_<secret>")
                    .description(Some(
                        "A finchgate API key; its scopes decide what it may do.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as pretty JSON.
pub fn json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".to_owned())
}
