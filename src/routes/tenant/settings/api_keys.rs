//! `GET /t/{slug}/settings/api-keys` (list), `POST …/api-keys` (create: the key is in this
//! response and nowhere else) and `POST …/api-keys/{id}/revoke`.
//!
//! The new key is rendered straight into the answer to the POST, like a setup link: never
//! flashed (flash messages live in the session row), never logged, stored only as a hash.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::api::keys::{self, KeyError, NewKey};
use crate::db::models::api_keys;
use crate::domain::ApiScope;
use crate::error::AppError;
use crate::onboarding::Actor;
use crate::state::AppState;
use crate::web::{PageContext, TenantAdmin, flash, render_with, see_other};

struct KeyRow {
    id: Uuid,
    name: String,
    prefix: String,
    scopes: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    status: &'static str,
}

struct ScopeChoice {
    value: &'static str,
    label: &'static str,
    checked: bool,
}

/// A key just created: shown once.
struct ShownKey {
    name: String,
    key: String,
}

#[derive(Template)]
#[template(path = "tenant/api_keys.html")]
struct ApiKeysPage {
    page: PageContext,
    slug: String,
    keys: Vec<KeyRow>,
    scopes: Vec<ScopeChoice>,
    name: String,
    expires_in_days: String,
    error: Option<String>,
    created: Option<ShownKey>,
}

/// The form: repeated `scope` checkboxes, which actix's `Form` cannot read, so it is parsed here.
#[derive(Default)]
struct CreateForm {
    name: String,
    scopes: Vec<String>,
    expires_in_days: String,
}

fn parse(body: &[u8]) -> CreateForm {
    let mut form = CreateForm::default();
    for (name, value) in url::form_urlencoded::parse(body) {
        match &*name {
            "name" => form.name = value.into_owned(),
            "scope" => form.scopes.push(value.into_owned()),
            "expires_in_days" => form.expires_in_days = value.into_owned(),
            _ => {}
        }
    }
    form
}

async fn page(
    admin: &TenantAdmin,
    state: &AppState,
    session: &Session,
    status: StatusCode,
    form: &CreateForm,
    error: Option<String>,
    created: Option<ShownKey>,
) -> Result<HttpResponse, AppError> {
    let tenant_id = admin.tenant.id;
    let rows = crate::db::run(&state.db, admin.scope(), async |conn| {
        api_keys::list(conn, tenant_id).await
    })
    .await?;
    let now = state.clock.now();
    let page = ApiKeysPage {
        page: PageContext::new(session, &admin.user, Some(&admin.tenant))?,
        slug: admin.tenant.slug.clone(),
        keys: rows
            .into_iter()
            .map(|r| KeyRow {
                status: keys::status(&r, now),
                id: r.id,
                name: r.name,
                prefix: r.prefix,
                scopes: r.scopes.join(", "),
                created_at: r.created_at,
                expires_at: r.expires_at,
                last_used_at: r.last_used_at,
            })
            .collect(),
        scopes: ApiScope::ALL
            .iter()
            .map(|s| ScopeChoice {
                value: s.as_str(),
                label: s.describe(),
                checked: form.scopes.iter().any(|c| c == s.as_str()),
            })
            .collect(),
        name: form.name.clone(),
        expires_in_days: form.expires_in_days.clone(),
        error,
        created,
    };
    render_with(status, &page)
}

pub async fn list(
    admin: TenantAdmin,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, AppError> {
    let form = CreateForm {
        scopes: vec![ApiScope::ConnectionsRead.as_str().to_owned()],
        ..CreateForm::default()
    };
    page(&admin, &state, &session, StatusCode::OK, &form, None, None).await
}

pub async fn create(
    admin: TenantAdmin,
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let form = parse(&body);
    let expires = match form.expires_in_days.trim() {
        "" => Ok(None),
        days => days.parse::<i64>().map(Some).map_err(|_| KeyError::Expiry),
    };
    let new = expires
        .and_then(|days| NewKey::parse(&form.name, form.scopes.iter().map(String::as_str), days));
    let new = match new {
        Ok(new) => new,
        Err(error) => {
            let message = format!("The key was not created: {error}.");
            return page(
                &admin,
                &state,
                &session,
                StatusCode::BAD_REQUEST,
                &form,
                Some(message),
                None,
            )
            .await;
        }
    };
    let actor = Actor {
        kind: crate::db::models::users::ROLE_TENANT_ADMIN,
        user_id: Some(admin.user.id),
        ip: crate::web::client_ip(&req),
    };
    let (tenant_id, now) = (admin.tenant.id, state.clock.now());
    let mut conn = state.db.get().await?;
    let created = crate::db::transaction(&mut conn, admin.scope(), async |conn| {
        keys::create(conn, tenant_id, &new, &actor, now).await
    })
    .await
    .map_err(AppError::internal)?;
    drop(conn);
    let shown = ShownKey {
        name: created.row.name.clone(),
        key: keys::reveal(&created.key).to_owned(),
    };
    let blank = CreateForm {
        scopes: vec![ApiScope::ConnectionsRead.as_str().to_owned()],
        ..CreateForm::default()
    };
    page(
        &admin,
        &state,
        &session,
        StatusCode::OK,
        &blank,
        None,
        Some(shown),
    )
    .await
}

pub async fn revoke(
    admin: TenantAdmin,
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (_, id) = path.into_inner();
    let id = Uuid::parse_str(&id).map_err(|_| AppError::NotFound)?;
    let actor = Actor {
        kind: crate::db::models::users::ROLE_TENANT_ADMIN,
        user_id: Some(admin.user.id),
        ip: crate::web::client_ip(&req),
    };
    let (tenant_id, now) = (admin.tenant.id, state.clock.now());
    let mut conn = state.db.get().await?;
    let revoked = crate::db::transaction(&mut conn, admin.scope(), async |conn| {
        keys::revoke(conn, tenant_id, id, &actor, now).await
    })
    .await;
    drop(conn);
    match revoked {
        Ok(true) => flash(
            &session,
            "ok",
            "The API key was revoked; it no longer works.",
        )?,
        Ok(false) => flash(&session, "info", "That API key was already revoked.")?,
        Err(KeyError::UnknownKey) => return Err(AppError::NotFound),
        Err(error) => return Err(AppError::internal(error)),
    }
    Ok(see_other(format!(
        "/t/{}/settings/api-keys",
        admin.tenant.slug
    )))
}
