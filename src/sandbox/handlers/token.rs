//! `POST /auth/token`: exchanges an authorization code for an access token.

use actix_web::http::header::{self, CacheControl, CacheDirective};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::SharedData;
use crate::finch::wire::{ClientType, ConnectionType, Product};
use crate::sandbox::error::ApiError;
use crate::sandbox::input::{JsonBody, basic_credentials};
use crate::sandbox::state::Grant;

/// The token response. Private and `Serialize`-only: the wire type the production client reads
/// holds the token as a `SecretString`, which deliberately cannot be serialized.
#[derive(Serialize)]
struct TokenBody<'a> {
    access_token: &'a str,
    token_type: &'static str,
    connection_id: &'a str,
    customer_id: Option<&'a str>,
    customer_name: Option<&'a str>,
    account_id: &'a str,
    company_id: &'a str,
    provider_id: &'a str,
    client_type: ClientType,
    connection_type: ConnectionType,
    products: &'a [Product],
    entity_ids: [&'a str; 1],
}

impl<'a> From<&'a Grant> for TokenBody<'a> {
    fn from(g: &'a Grant) -> Self {
        let c = &g.connection;
        TokenBody {
            access_token: &g.access_token,
            token_type: "bearer",
            connection_id: &c.id,
            customer_id: c.customer_id.as_deref(),
            customer_name: c.customer_name.as_deref(),
            account_id: &c.account_id,
            company_id: &c.company_id,
            provider_id: &c.provider_id,
            client_type: ClientType::Sandbox,
            connection_type: c.connection_type,
            products: &c.products,
            entity_ids: [&c.entity_id],
        }
    }
}

pub(crate) async fn exchange(
    req: HttpRequest,
    body: web::Bytes,
    shared: SharedData,
) -> Result<HttpResponse, ApiError> {
    let body = JsonBody::parse(&req, &body)?;
    let (client_id, client_secret) = client_credentials(&req, &body)?;
    let code = body
        .opt_string("code", 0..=512)?
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad_request("code is required"))?;
    let redirect_uri = body.opt_string("redirect_uri", 0..=2048)?;
    let ttl = shared.code_ttl();
    let grant = shared.with(|s| {
        s.authenticate(&client_id, &client_secret)?;
        s.exchange(&client_id, &code, redirect_uri.as_deref(), ttl)
    })?;
    Ok(HttpResponse::Ok()
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(TokenBody::from(&grant)))
}

/// Finch reads the client credentials from the JSON body; when the body has neither, HTTP Basic
/// is accepted too (older SDKs send both, and body credentials win).
fn client_credentials(req: &HttpRequest, body: &JsonBody) -> Result<(String, String), ApiError> {
    let id = body.opt_string("client_id", 0..=255)?;
    let secret = body.opt_string("client_secret", 0..=1024)?;
    match (id, secret) {
        (Some(id), Some(secret)) => Ok((id, secret)),
        (None, None) => basic_credentials(req)?
            .map(|c| (c.client_id, c.client_secret))
            .ok_or_else(|| {
                ApiError::invalid_client(
                    "client_id and client_secret are required in the request body",
                )
            }),
        (Some(_), None) => Err(ApiError::invalid_client("client_secret is required")),
        (None, Some(_)) => Err(ApiError::invalid_client("client_id is required")),
    }
}
