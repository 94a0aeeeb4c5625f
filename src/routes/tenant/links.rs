//! `GET /t/{slug}/links` (the tenant's connect links and the form for a new one),
//! `POST /t/{slug}/links` (create; the link's URL is shown on the answer, once) and
//! `POST /t/{slug}/links/{id}/revoke`. A reconnect link is created from a connection's page (the
//! same POST with `reconnect_connection_id`).

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;
use std::str::FromStr as _;
use uuid::Uuid;

use super::connect::PRODUCTS;
use crate::connect::link::{self, Author, CreateRequest, LinkView};
use crate::connect::start::FlowKind;
use crate::db::models::redirect_uris::{self, RedirectUriRow};
use crate::error::AppError;
use crate::finch::wire::{Product, SandboxMode};
use crate::state::AppState;
use crate::web::{PageContext, TenantAdmin, flash, render, see_other};

#[derive(Template)]
#[template(path = "tenant/links.html")]
struct LinksPage {
    page: PageContext,
    slug: String,
    links: Vec<LinkView>,
    products: Vec<(&'static str, bool)>,
    redirect_uris: Vec<RedirectUriRow>,
    return_uris: Vec<RedirectUriRow>,
    sandbox: String,
    /// The URL of the link just created: shown this once.
    created: Option<String>,
    default_days: i64,
    max_days: i64,
}

impl LinksPage {
    fn when(&self, t: &chrono::DateTime<chrono::Utc>) -> String {
        t.format("%Y-%m-%d %H:%M UTC").to_string()
    }
}

async fn page(
    admin: &TenantAdmin,
    state: &AppState,
    session: &Session,
    created: Option<String>,
) -> Result<HttpResponse, AppError> {
    let tenant_id = admin.tenant.id;
    let (redirects, returns) = crate::db::run(&state.db, admin.scope(), async |conn| {
        let redirects = redirect_uris::list(conn, tenant_id).await?;
        let returns = redirect_uris::list_kind(conn, tenant_id, redirect_uris::KIND_RETURN).await?;
        Ok((redirects, returns))
    })
    .await?;
    let links = link::list(state, tenant_id).await?;
    let defaults = &admin.tenant.default_products;
    render(&LinksPage {
        page: PageContext::new(session, &admin.user, Some(&admin.tenant))?,
        slug: admin.tenant.slug.clone(),
        links,
        products: PRODUCTS
            .iter()
            .map(|p| (*p, defaults.iter().any(|d| d == p)))
            .collect(),
        redirect_uris: redirects,
        return_uris: returns,
        sandbox: admin.tenant.finch_sandbox.clone(),
        created,
        default_days: link::DEFAULT_DAYS,
        max_days: link::MAX_DAYS,
    })
}

pub async fn list(
    admin: TenantAdmin,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, AppError> {
    page(&admin, &state, &session, None).await
}

fn bad(message: &str) -> AppError {
    AppError::BadRequest(message.to_owned())
}

/// The submitted form (checkboxes repeat the `product` field). A reconnect link names only the
/// connection: its customer and products come from it.
fn parse(body: &[u8]) -> Result<CreateRequest, AppError> {
    let mut request = CreateRequest {
        customer_id: String::new(),
        customer_name: String::new(),
        products: Vec::new(),
        sandbox: None,
        flow: FlowKind::Embedded,
        return_uri: None,
        expires_in_days: None,
        reconnect_connection_id: None,
    };
    let mut redirect_uri_id = None;
    let mut flow = String::from("embedded");
    for (name, value) in url::form_urlencoded::parse(body) {
        match name.as_ref() {
            "product" => request.products.push(
                Product::from_str(&value)
                    .map_err(|_| AppError::BadRequest(format!("Unknown product {value:?}.")))?,
            ),
            "customer_id" => request.customer_id = value.trim().to_owned(),
            "customer_name" => request.customer_name = value.trim().to_owned(),
            "flow" => flow = value.into_owned(),
            "redirect_uri_id" if !value.is_empty() => {
                redirect_uri_id =
                    Some(Uuid::parse_str(&value).map_err(|_| {
                        bad("Choose a redirect URI from this workspace's whitelist.")
                    })?);
            }
            "return_uri" if !value.is_empty() => request.return_uri = Some(value.into_owned()),
            "expires_in_days" if !value.is_empty() => {
                request.expires_in_days = Some(
                    value
                        .parse()
                        .map_err(|_| bad("The expiry is a number of days."))?,
                );
            }
            "sandbox" => {
                request.sandbox = match value.as_ref() {
                    "" | "none" => None,
                    other => Some(
                        SandboxMode::from_str(other).map_err(|_| bad("Unknown sandbox mode."))?,
                    ),
                };
            }
            "reconnect_connection_id" if !value.is_empty() => {
                request.reconnect_connection_id =
                    Some(Uuid::parse_str(&value).map_err(|_| AppError::NotFound)?);
            }
            _ => {}
        }
    }
    if request.reconnect_connection_id.is_some() && request.products.is_empty() {
        request.products.push(Product::Company);
    }
    request.flow = match (flow.as_str(), redirect_uri_id) {
        ("redirect", Some(redirect_uri_id)) => FlowKind::Redirect { redirect_uri_id },
        ("redirect", None) => {
            return Err(bad(
                "The redirect flow needs a redirect URI from the whitelist.",
            ));
        }
        ("embedded", _) => FlowKind::Embedded,
        _ => return Err(bad("Choose the redirect or the embedded flow.")),
    };
    Ok(request)
}

pub async fn create(
    admin: TenantAdmin,
    state: web::Data<AppState>,
    session: Session,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let mut request = parse(&body)?;
    if let Some(id) = request.reconnect_connection_id {
        // The connection's own products, so that the reconnect asks for what it had.
        let connection = crate::connect::connection::find(&state, admin.actor(), id).await?;
        let products: Vec<Product> = connection
            .products
            .iter()
            .filter_map(|p| p.parse().ok())
            .collect();
        if !products.is_empty() {
            request.products = products;
        }
    }
    let author = Author::Admin(admin.user.id);
    let created = link::create(&state, admin.tenant.id, author, request).await?;
    page(&admin, &state, &session, Some(created.url)).await
}

pub async fn revoke(
    admin: TenantAdmin,
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let id = Uuid::parse_str(&path.1).map_err(|_| AppError::NotFound)?;
    let author = Author::Admin(admin.user.id);
    let revoked = link::revoke(&state, admin.tenant.id, author, id).await?;
    flash(
        &session,
        "ok",
        format!("The link for {} no longer works.", revoked.customer_name),
    )?;
    Ok(see_other(format!("/t/{}/links", admin.tenant.slug)))
}
