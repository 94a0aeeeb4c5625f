//! `GET /account`: who I am (email, role, tenant), my sessions (with "sign out" each and
//! "sign out everywhere else"), my two-factor state, and the password change form. The actions
//! live next to it, one file each. Reached from the "Account" link in every signed-in header.

pub mod password;
pub mod sessions;
pub mod two_factor;

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::auth::session_store::{self, SessionSummary};
use crate::db::Scope;
use crate::db::models::{tenants, two_factor as totp_rows, users};
use crate::domain::password_policy;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{CurrentUser, PageContext, SessionData, render};

/// One row of the sessions table.
struct SessionRow {
    public_id: Uuid,
    created: String,
    last_seen: String,
    browser: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "account/account.html")]
struct AccountPage {
    page: PageContext,
    email: String,
    role: &'static str,
    tenant: Option<String>,
    must_enrol: bool,
    enrolled: bool,
    recovery_codes_left: i64,
    sessions: Vec<SessionRow>,
    password_hint: String,
}

fn fmt_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The signed-in user's full row (the extractor carries only what every page needs).
pub(crate) async fn load_user(
    state: &AppState,
    user: &CurrentUser,
) -> Result<users::User, AppError> {
    crate::db::run(&state.db, Scope::System, async |conn| {
        users::find(conn, user.id).await
    })
    .await?
    .ok_or(AppError::LoginRequired)
}

/// This session's public id; a signed-in session always has one.
pub(crate) fn current_session(session: &Session) -> Result<Uuid, AppError> {
    SessionData(session)
        .public_id()
        .ok_or(AppError::LoginRequired)
}

pub async fn show(
    user: CurrentUser,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, AppError> {
    let current = current_session(&session)?;
    let now = state.clock.now();
    let (tenant, enrolled, left, list) = crate::db::run(&state.db, Scope::System, async |conn| {
        let tenant = match user.tenant_id {
            Some(id) => tenants::find(conn, id).await?,
            None => None,
        };
        let enrolled = totp_rows::is_enrolled(conn, user.id).await?;
        let left = totp_rows::unused_recovery_codes(conn, user.id).await?;
        let list = session_store::list_for_user(conn, user.id, now).await?;
        Ok::<_, diesel::result::Error>((tenant, enrolled, left, list))
    })
    .await?;
    let sessions = list
        .into_iter()
        .map(|s: SessionSummary| SessionRow {
            current: s.public_id == current,
            created: fmt_time(s.created_at),
            last_seen: fmt_time(s.last_seen()),
            browser: s
                .browser
                .clone()
                .unwrap_or_else(|| "Unknown browser".to_owned()),
            public_id: s.public_id,
        })
        .collect();
    let page = AccountPage {
        page: PageContext::new(&session, &user, tenant.as_ref())?,
        email: user.email.clone(),
        role: if user.is_operator() {
            "Operator"
        } else {
            "Tenant admin"
        },
        tenant: tenant.map(|t| format!("{} ({})", t.name, t.slug)),
        must_enrol: user.must_enrol,
        enrolled,
        recovery_codes_left: left,
        sessions,
        password_hint: password_policy::hint(),
    };
    render(&page)
}
