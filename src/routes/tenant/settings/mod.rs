//! `GET /t/{slug}/settings`: the tenant's Finch credentials, sandbox mode, default products and
//! redirect-URI whitelist. The actions live next to it, one file each.
//!
//! The client secret is write-only: the page shows `••••` and the last four characters kept at
//! save time, never the secret (SECURITY.md AC-4).

pub mod api_keys;
pub mod check_credentials;
pub mod finch;
pub mod redirect_uris;
pub mod two_factor;

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};

use crate::db::models::{audit, credentials, redirect_uris as uris, users};
use crate::domain::products;
use crate::domain::redirect_uri::callback_url;
use crate::domain::sandbox::SandboxSetting;
use crate::error::AppError;
use crate::finch::wire::Product;
use crate::state::AppState;
use crate::web::{PageContext, TenantAdmin, render, see_other};

/// The stored credentials as the page may show them.
struct SavedCredentials {
    client_id: String,
    secret_last4: String,
    version: i32,
    saved_at: DateTime<Utc>,
    saved_by: Option<String>,
}

struct Choice {
    value: &'static str,
    label: &'static str,
    checked: bool,
}

#[derive(Template)]
#[template(path = "tenant/settings.html")]
struct SettingsPage {
    page: PageContext,
    slug: String,
    saved: Option<SavedCredentials>,
    sandbox: Vec<Choice>,
    products: Vec<Choice>,
    redirect_uris: Vec<uris::RedirectUriRow>,
    return_uris: Vec<uris::RedirectUriRow>,
    callback_url: String,
    /// What the add form is pre-filled with: the callback URL unless it is already listed.
    suggested_uri: String,
    require_two_factor: bool,
}

pub async fn show(
    admin: TenantAdmin,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, AppError> {
    let tenant_id = admin.tenant.id;
    let (current, author, list, returns) = crate::db::run(&state.db, admin.scope(), async |conn| {
        let current = credentials::current(conn, tenant_id).await?;
        let author = match current.as_ref().and_then(|c| c.created_by) {
            Some(id) => users::find(conn, id).await?.map(|u| u.email),
            None => None,
        };
        let list = uris::list(conn, tenant_id).await?;
        let returns = uris::list_kind(conn, tenant_id, uris::KIND_RETURN).await?;
        Ok((current, author, list, returns))
    })
    .await?;

    let callback = callback_url(&state.settings.public_url, &admin.tenant.slug);
    let suggested_uri = if list.iter().any(|u| u.uri == callback) {
        String::new()
    } else {
        callback.clone()
    };
    let sandbox = SandboxSetting::parse(&admin.tenant.finch_sandbox).ok();
    let page = SettingsPage {
        page: PageContext::new(&session, &admin.user, Some(&admin.tenant))?,
        slug: admin.tenant.slug.clone(),
        saved: current.map(|c| SavedCredentials {
            client_id: c.client_id,
            secret_last4: c.secret_last4,
            version: c.version,
            saved_at: c.created_at,
            saved_by: author,
        }),
        sandbox: SandboxSetting::ALL
            .iter()
            .map(|s| Choice {
                value: s.as_str(),
                label: s.describe(),
                checked: sandbox == Some(*s),
            })
            .collect(),
        products: Product::ALL
            .iter()
            .map(|p| Choice {
                value: p.as_str(),
                label: products::describe(*p),
                checked: admin
                    .tenant
                    .default_products
                    .iter()
                    .any(|d| d == p.as_str()),
            })
            .collect(),
        redirect_uris: list,
        return_uris: returns,
        callback_url: callback,
        suggested_uri,
        require_two_factor: admin.tenant.require_two_factor,
    };
    render(&page)
}

/// `303` back to the settings page (POST → 303 → GET).
fn back_to_settings(admin: &TenantAdmin) -> HttpResponse {
    see_other(format!("/t/{}/settings", admin.tenant.slug))
}

/// An audit event by this admin about their tenant; `details` names fields, never values.
fn audit_event<'a>(
    admin: &TenantAdmin,
    req: &HttpRequest,
    action: &'a str,
    target: (&'a str, String),
    details: serde_json::Value,
) -> audit::Event<'a> {
    audit::Event::new(users::ROLE_TENANT_ADMIN, Some(admin.user.id), action)
        .tenant(admin.tenant.id)
        .target(target.0, target.1)
        .details(details)
        .ip(crate::web::client_ip(req))
}
