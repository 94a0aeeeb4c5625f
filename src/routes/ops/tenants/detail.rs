//! `GET /ops/tenants/{slug}`: one tenant's users and pending setup links, with the forms to invite
//! an admin, to disable a user, to issue a password reset link and to clear two-factor sign-in.
//! The invite and reset actions render this page too, once, with the link.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::console::health::{self, TenantHealth};
use crate::db::Scope;
use crate::db::models::{invitations, tenants, two_factor, users};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{Operator, PageContext, render_with};

/// One row of the users table.
struct MemberRow {
    id: Uuid,
    email: String,
    role: &'static str,
    status: &'static str,
    last_login: String,
    can_disable: bool,
    two_factor: bool,
}

impl From<users::Member> for MemberRow {
    fn from(m: users::Member) -> Self {
        let status = match (m.disabled_at.is_some(), m.has_password) {
            (true, _) => "disabled",
            (false, false) => "invited",
            (false, true) => "active",
        };
        Self {
            id: m.id,
            email: m.email,
            role: if m.role == users::ROLE_TENANT_ADMIN {
                "admin"
            } else {
                "operator"
            },
            status,
            last_login: m.last_login_at.map_or_else(|| "never".to_owned(), fmt_time),
            can_disable: m.disabled_at.is_none(),
            two_factor: false,
        }
    }
}

fn fmt_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The outcome of an invite to show on the page.
#[derive(Default)]
pub(super) struct InviteResult<'a> {
    /// The email field's value (kept after a refusal).
    pub email: &'a str,
    pub error: Option<String>,
    /// The one-time link, with whom and until when: shown in this response only.
    pub link: Option<ShownLink<'a>>,
    /// A one-time password reset link just issued: shown in this response only.
    pub reset: Option<ShownLink<'a>>,
}

pub(super) struct ShownLink<'a> {
    pub url: &'a str,
    pub email: String,
    pub expires: String,
}

#[derive(Template)]
#[template(path = "ops/tenant.html")]
struct TenantPage<'a> {
    page: PageContext,
    tenant: tenants::Tenant,
    health: Option<TenantHealth>,
    members: Vec<MemberRow>,
    pending: Vec<invitations::Pending>,
    invite: InviteResult<'a>,
}

impl TenantPage<'_> {
    fn when(&self, t: &DateTime<Utc>) -> String {
        fmt_time(*t)
    }
}

/// Renders the page of the tenant named `slug` (404 if there is none).
pub(super) async fn render(
    status: StatusCode,
    operator: &Operator,
    state: &AppState,
    session: &Session,
    slug: &str,
    invite: InviteResult<'_>,
) -> Result<HttpResponse, AppError> {
    let now = state.clock.now();
    let found = crate::db::run(&state.db, Scope::Operator, async |conn| {
        let Some(tenant) = tenants::find_by_slug(conn, slug).await? else {
            return Ok(None);
        };
        let members = users::list_for_tenant(conn, tenant.id).await?;
        let enrolled = two_factor::enrolled_in_tenant(conn, tenant.id).await?;
        let pending = invitations::list_pending(conn, tenant.id, now).await?;
        let health = health::list(conn, now, Some(tenant.id), health::Sort::Slug)
            .await?
            .pop();
        Ok(Some((tenant, members, enrolled, pending, health)))
    })
    .await?;
    let Some((tenant, members, enrolled, pending, health)) = found else {
        return Err(AppError::NotFound);
    };
    let page = TenantPage {
        page: PageContext::new(session, &operator.0, None)?,
        tenant,
        health,
        members: members
            .into_iter()
            .map(|m| {
                let two_factor = enrolled.contains(&m.id);
                MemberRow {
                    two_factor,
                    ..MemberRow::from(m)
                }
            })
            .collect(),
        pending,
        invite,
    };
    render_with(status, &page)
}

pub async fn show(
    operator: Operator,
    state: web::Data<AppState>,
    session: Session,
    slug: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    render(
        StatusCode::OK,
        &operator,
        &state,
        &session,
        &slug,
        InviteResult::default(),
    )
    .await
}
