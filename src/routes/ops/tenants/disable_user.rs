//! `POST /ops/tenants/{slug}/users/{id}/disable`: disable a tenant's user and end their sessions.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use uuid::Uuid;

use crate::db::models::tenants;
use crate::db::{Scope, transaction};
use crate::error::AppError;
use crate::onboarding::{self, Actor, OnboardingError};
use crate::state::AppState;
use crate::web::{Operator, flash, see_other};

pub async fn submit(
    operator: Operator,
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (slug, id) = path.into_inner();
    let user_id = Uuid::parse_str(&id).map_err(|_| AppError::NotFound)?;
    let actor = Actor::operator(operator.0.id, crate::web::client_ip(&req));
    let now = state.clock.now();
    let mut conn = state.db.get().await?;
    let tenant = transaction(&mut conn, Scope::Operator, async |conn| {
        tenants::find_by_slug(conn, &slug).await
    })
    .await?
    .ok_or(AppError::NotFound)?;
    // The system scope, because the user's sessions are reachable only there; the user is
    // still looked up within this tenant.
    let disabled = transaction(&mut conn, Scope::System, async |conn| {
        onboarding::disable_user(conn, tenant.id, user_id, &actor, now).await
    })
    .await;
    let message = match disabled {
        Ok(d) if d.newly_disabled => format!(
            "Disabled {}: they can no longer sign in; {} session(s) ended.",
            d.email, d.sessions_ended
        ),
        Ok(d) => format!("{} was already disabled.", d.email),
        Err(OnboardingError::UnknownUser) => return Err(AppError::NotFound),
        Err(e) => return Err(AppError::internal(e)),
    };
    flash(&session, "ok", message)?;
    Ok(see_other(format!("/ops/tenants/{}", tenant.slug)))
}
