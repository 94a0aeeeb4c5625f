//! `POST /sandbox/connections`: a Finch sandbox connection and token without going through
//! Connect.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::{SharedData, authenticate_basic};
use crate::finch::wire::{AuthMethod, Product, SandboxConnectionRequest};
use crate::sandbox::error::ApiError;
use crate::sandbox::input::JsonBody;
use crate::sandbox::providers;

/// Products of a sandbox connection when the request names none.
const DEFAULT_PRODUCTS: [Product; 4] = [
    Product::Company,
    Product::Directory,
    Product::Individual,
    Product::Employment,
];

/// Finch's default `employee_size` of a sandbox connection.
const DEFAULT_EMPLOYEE_SIZE: u32 = 20;

/// The response; private because the wire type holds the token as a `SecretString`.
#[derive(Serialize)]
struct SandboxConnectionBody<'a> {
    access_token: &'a str,
    token_type: &'static str,
    connection_id: &'a str,
    entity_id: &'a str,
    account_id: &'a str,
    company_id: &'a str,
    authentication_type: AuthMethod,
    products: &'a [Product],
    provider_id: &'a str,
}

pub(crate) async fn create(
    req: HttpRequest,
    body: web::Bytes,
    shared: SharedData,
) -> Result<HttpResponse, ApiError> {
    let client_id = authenticate_basic(&req, &shared)?;
    let body = JsonBody::parse(&req, &body)?;
    let request = SandboxConnectionRequest {
        provider_id: body.string("provider_id", 1..=255)?,
        authentication_type: body.opt_enum::<AuthMethod>("authentication_type")?,
        employee_size: body.opt_whole_number("employee_size", 1..=10_000)?,
        products: body.opt_products("products")?,
    };
    let provider = providers::find(&request.provider_id).ok_or_else(|| {
        ApiError::bad_request(format!(
            "provider_id `{}` is not a provider of this sandbox; expected one of: {}",
            request.provider_id,
            providers::known_ids()
        ))
    })?;
    let auth_method = request.authentication_type.unwrap_or(provider.default_auth);
    let products = request
        .products
        .unwrap_or_else(|| DEFAULT_PRODUCTS.to_vec());
    let size = request.employee_size.unwrap_or(DEFAULT_EMPLOYEE_SIZE);
    let grant = shared.with(|s| {
        s.create_sandbox_connection(&client_id, provider.id, auth_method, products, size)
    });
    let c = &grant.connection;
    Ok(HttpResponse::Ok().json(SandboxConnectionBody {
        access_token: &grant.access_token,
        token_type: "bearer",
        connection_id: &c.id,
        entity_id: &c.entity_id,
        account_id: &c.account_id,
        company_id: &c.company_id,
        authentication_type: c.auth_method,
        products: &c.products,
        provider_id: &c.provider_id,
    }))
}
