//! `GET/POST /login`, `POST /logout`, and `/` (which leads to the right home page).
//!
//! Failed sign-ins look the same whatever the reason (unknown email, wrong password, locked or
//! disabled account): same status, same body, and an argon2 verification every time (against a
//! dummy hash when there is no real one), so neither the page nor its timing tells them apart.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::password::Verification;
use crate::db::models::{audit, rate_limits, tenants, users};
use crate::db::{Scope, transaction};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::SessionData;

/// Failed attempts an account gets before back-off starts.
pub const FREE_ATTEMPTS: i32 = 5;
/// The longest an account is locked after repeated failures.
pub const MAX_LOCK: chrono::Duration = chrono::Duration::minutes(15);
/// Failed sign-ins one IP address may make per window before it is refused for the window.
pub const IP_FAILURE_LIMIT: i32 = 30;
pub const IP_WINDOW: chrono::Duration = chrono::Duration::minutes(15);

const GENERIC_FAILURE: &str =
    "That email and password did not match an active account. Check them and try again.";

#[derive(Template)]
#[template(path = "auth/login.html")]
struct LoginPage<'a> {
    csrf_token: &'a str,
    email: &'a str,
    error: Option<&'a str>,
}

fn render(
    status: StatusCode,
    csrf_token: &str,
    email: &str,
    error: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let body = LoginPage {
        csrf_token,
        email,
        error,
    }
    .render()
    .map_err(AppError::internal)?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body))
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, location))
        .finish()
}

/// Where a signed-in user lands.
async fn home_of(state: &AppState, user_id: Uuid) -> Result<Option<String>, AppError> {
    let mut conn = state.db.get().await?;
    let home = transaction(&mut conn, Scope::System, async |conn| {
        let Some(user) = users::find(conn, user_id).await? else {
            return Ok::<_, diesel::result::Error>(None);
        };
        if user.disabled_at.is_some() {
            return Ok(None);
        }
        if user.role == users::ROLE_OPERATOR {
            return Ok(Some("/ops/tenants".to_owned()));
        }
        let Some(tenant_id) = user.tenant_id else {
            return Ok(None);
        };
        Ok(tenants::find(conn, tenant_id)
            .await?
            .map(|t| format!("/t/{}/", t.slug)))
    })
    .await?;
    Ok(home)
}

pub async fn root(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, AppError> {
    if let Some(user_id) = SessionData(&session).user_id()
        && let Some(home) = home_of(&state, user_id).await?
    {
        return Ok(see_other(&home));
    }
    Ok(see_other("/login"))
}

pub async fn form(state: web::Data<AppState>, session: Session) -> Result<HttpResponse, AppError> {
    let data = SessionData(&session);
    if let Some(user_id) = data.user_id()
        && let Some(home) = home_of(&state, user_id).await?
    {
        return Ok(see_other(&home));
    }
    render(StatusCode::OK, &data.csrf_token()?, "", None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: SecretString,
}

enum Outcome {
    SignedIn {
        user_id: Uuid,
        rehash: bool,
    },
    Failed {
        user_id: Option<Uuid>,
        reason: &'static str,
    },
}

pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let email = form.email.trim().to_lowercase();
    let now = state.clock.now();
    let ip = req.peer_addr().map(|a| a.ip().to_string());
    let ip_key = ip.as_deref().map(|ip| format!("login-ip:{ip}"));
    let data = SessionData(&session);
    let csrf = data.csrf_token()?;
    let mut conn = state.db.get().await?;

    if let Some(key) = &ip_key {
        let blocked = transaction(&mut conn, Scope::System, async |conn| {
            rate_limits::is_blocked(conn, key, now).await
        })
        .await?;
        if blocked {
            audit_login(&state, None, "login.throttled", "ip_limit", ip.clone()).await?;
            return render(
                StatusCode::TOO_MANY_REQUESTS,
                &csrf,
                &email,
                Some(
                    "Too many failed sign-ins from your network. Wait 15 minutes, then try again.",
                ),
            );
        }
    }

    let user = transaction(&mut conn, Scope::System, async |conn| {
        users::find_by_email(conn, &email).await
    })
    .await?;
    drop(conn);
    let outcome = authenticate(&state, user.as_ref(), &form.password, now).await?;

    match outcome {
        Outcome::SignedIn { user_id, rehash } => {
            let new_hash = if rehash {
                Some(
                    state
                        .hasher
                        .hash(&form.password)
                        .await
                        .map_err(AppError::internal)?,
                )
            } else {
                None
            };
            let mut conn = state.db.get().await?;
            transaction(&mut conn, Scope::System, async |conn| {
                users::record_login(conn, user_id, now, new_hash.as_deref()).await?;
                audit::record(
                    conn,
                    audit::Event::new(
                        user.as_ref().map_or("anonymous", |u| u.role.as_str()),
                        Some(user_id),
                        "login.succeeded",
                    )
                    .tenant(user.as_ref().and_then(|u| u.tenant_id))
                    .target("user", user_id)
                    .details(serde_json::json!({ "password_rehashed": new_hash.is_some() }))
                    .ip(ip.clone()),
                )
                .await
            })
            .await?;
            data.sign_in(user_id, now)?;
            let home = home_of(&state, user_id)
                .await?
                .unwrap_or_else(|| "/login".to_owned());
            Ok(see_other(&home))
        }
        Outcome::Failed { user_id, reason } => {
            let mut conn = state.db.get().await?;
            transaction(&mut conn, Scope::System, async |conn| {
                if let (Some(id), Some(user)) = (user_id, user.as_ref()) {
                    let failures = user.failed_logins + 1;
                    users::record_failed_login(conn, id, lock_until(failures, now)).await?;
                }
                if let Some(key) = &ip_key {
                    rate_limits::hit(conn, key, now, IP_WINDOW, IP_FAILURE_LIMIT).await?;
                }
                Ok::<_, diesel::result::Error>(())
            })
            .await?;
            audit_login(&state, user_id, "login.failed", reason, ip).await?;
            render(
                StatusCode::UNAUTHORIZED,
                &csrf,
                &email,
                Some(GENERIC_FAILURE),
            )
        }
    }
}

/// Exponential back-off: after the free attempts, 1 s, 2 s, 4 s, … up to 15 minutes.
pub fn lock_until(failures: i32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let over = failures - FREE_ATTEMPTS;
    if over < 0 {
        return None;
    }
    let seconds = 1_i64
        .checked_shl(over.unsigned_abs().min(20))
        .unwrap_or(i64::MAX);
    Some(now + chrono::Duration::seconds(seconds).min(MAX_LOCK))
}

async fn authenticate(
    state: &AppState,
    user: Option<&users::User>,
    password: &SecretString,
    now: DateTime<Utc>,
) -> Result<Outcome, AppError> {
    let usable =
        user.filter(|u| u.disabled_at.is_none() && u.locked_until.is_none_or(|until| until <= now));
    // Always one argon2 verification: a dummy hash stands in when there is no usable account.
    let stored = usable.and_then(|u| u.password_hash.clone());
    let verdict = state
        .hasher
        .verify(password, stored)
        .await
        .map_err(AppError::internal)?;
    Ok(match (user, usable, verdict) {
        (_, Some(u), Verification::Valid { needs_rehash }) => Outcome::SignedIn {
            user_id: u.id,
            rehash: needs_rehash,
        },
        (None, _, _) => Outcome::Failed {
            user_id: None,
            reason: "unknown_user",
        },
        (Some(u), None, _) if u.disabled_at.is_some() => Outcome::Failed {
            user_id: Some(u.id),
            reason: "disabled",
        },
        (Some(u), None, _) => Outcome::Failed {
            user_id: Some(u.id),
            reason: "locked",
        },
        (Some(u), Some(_), Verification::Invalid) => Outcome::Failed {
            user_id: Some(u.id),
            reason: "wrong_password",
        },
    })
}

async fn audit_login(
    state: &AppState,
    user_id: Option<Uuid>,
    action: &'static str,
    reason: &'static str,
    ip: Option<String>,
) -> Result<(), AppError> {
    let mut conn = state.db.get().await?;
    transaction(&mut conn, Scope::System, async |conn| {
        let tenant_id = match user_id {
            Some(id) => users::find(conn, id).await?.and_then(|u| u.tenant_id),
            None => None,
        };
        audit::record(
            conn,
            audit::Event {
                target_type: user_id.map(|_| "user"),
                target_id: user_id.map(|id| id.to_string()),
                ..audit::Event::new("anonymous", user_id, action)
            }
            .tenant(tenant_id)
            .details(serde_json::json!({ "reason": reason }))
            .ip(ip),
        )
        .await
    })
    .await?;
    Ok(())
}

pub async fn logout(
    state: web::Data<AppState>,
    session: Session,
    user: Option<crate::web::CurrentUser>,
) -> Result<HttpResponse, AppError> {
    if let Some(user) = user {
        let mut conn = state.db.get().await?;
        transaction(&mut conn, Scope::System, async |conn| {
            audit::record(
                conn,
                audit::Event::new(
                    if user.is_operator() {
                        "operator"
                    } else {
                        "tenant_admin"
                    },
                    Some(user.id),
                    "logout",
                )
                .tenant(user.tenant_id)
                .target("user", user.id),
            )
            .await
        })
        .await?;
    }
    SessionData(&session).sign_out();
    Ok(see_other("/login"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_starts_after_the_free_attempts_and_doubles_up_to_fifteen_minutes() {
        let now = Utc::now();
        assert_eq!(lock_until(FREE_ATTEMPTS - 1, now), None);
        assert_eq!(
            lock_until(FREE_ATTEMPTS, now),
            Some(now + chrono::Duration::seconds(1))
        );
        assert_eq!(
            lock_until(FREE_ATTEMPTS + 3, now),
            Some(now + chrono::Duration::seconds(8))
        );
        assert_eq!(lock_until(FREE_ATTEMPTS + 40, now), Some(now + MAX_LOCK));
    }
}
