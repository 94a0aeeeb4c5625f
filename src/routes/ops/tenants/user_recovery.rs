//! `POST /ops/tenants/{slug}/users/{id}/reset-link` (issue a one-time password reset link, shown
//! once in this response; the user's sessions end) and `POST …/clear-two-factor` (remove the
//! user's two-factor sign-in). Both audited; the user is looked up within the tenant.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret as _;
use uuid::Uuid;

use super::detail::{InviteResult, ShownLink, render};
use crate::db::models::{tenants, users};
use crate::db::{Scope, transaction};
use crate::error::AppError;
use crate::onboarding::{Actor, OnboardingError, recovery};
use crate::state::AppState;
use crate::web::{Operator, flash, see_other};

/// The tenant named `slug` and its user `id` (404 for anything else).
async fn tenant_user(
    state: &AppState,
    slug: &str,
    id: &str,
) -> Result<(tenants::Tenant, users::User), AppError> {
    let user_id = Uuid::parse_str(id).map_err(|_| AppError::NotFound)?;
    let found = crate::db::run(&state.db, Scope::Operator, async |conn| {
        let Some(tenant) = tenants::find_by_slug(conn, slug).await? else {
            return Ok(None);
        };
        let user = users::find(conn, user_id)
            .await?
            .filter(|u| u.tenant_id == Some(tenant.id));
        Ok::<_, diesel::result::Error>(user.map(|u| (tenant, u)))
    })
    .await?;
    found.ok_or(AppError::NotFound)
}

pub async fn reset_link(
    operator: Operator,
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (slug, id) = path.into_inner();
    let (tenant, user) = tenant_user(&state, &slug, &id).await?;
    let actor = Actor::operator(operator.0.id, crate::web::client_ip(&req));
    let now = state.clock.now();
    let mut conn = state.db.get().await?;
    let issued = transaction(&mut conn, Scope::System, async |conn| {
        recovery::issue(conn, &user, &actor, now).await
    })
    .await;
    drop(conn);
    match issued {
        Ok(issued) => {
            let link = issued.link(&state.settings.public_url);
            let result = InviteResult {
                reset: Some(ShownLink {
                    url: link.expose_secret(),
                    email: issued.email.clone(),
                    expires: issued.expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                }),
                ..InviteResult::default()
            };
            render(
                StatusCode::OK,
                &operator,
                &state,
                &session,
                &tenant.slug,
                result,
            )
            .await
        }
        Err(OnboardingError::Disabled(_)) => Err(AppError::Conflict(
            "This user is disabled, so no reset link can be issued.".to_owned(),
        )),
        Err(e) => Err(AppError::internal(e)),
    }
}

pub async fn clear_two_factor(
    operator: Operator,
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (slug, id) = path.into_inner();
    let (tenant, user) = tenant_user(&state, &slug, &id).await?;
    let actor = Actor::operator(operator.0.id, crate::web::client_ip(&req));
    let mut conn = state.db.get().await?;
    let had = transaction(&mut conn, Scope::Operator, async |conn| {
        recovery::clear_two_factor(conn, &user, &actor).await
    })
    .await
    .map_err(AppError::internal)?;
    let message = if had {
        format!("Cleared two-factor sign-in of {}.", user.email)
    } else {
        format!("{} had no two-factor sign-in.", user.email)
    };
    flash(&session, "ok", message)?;
    Ok(see_other(format!("/ops/tenants/{}", tenant.slug)))
}
