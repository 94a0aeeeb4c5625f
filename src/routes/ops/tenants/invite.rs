//! `POST /ops/tenants/{slug}/invite`: invite an admin; the one-time setup link is in this
//! response and nowhere else.
//!
//! The link is rendered straight into the answer to the POST (not flashed: flash messages live
//! in the session row, in plaintext). It is not logged, and only its hash is stored, so it cannot
//! be shown again: reloading the page re-submits the form and issues a new link, which replaces
//! the previous one.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret as _;
use serde::Deserialize;

use super::detail::{InviteResult, ShownLink, render};
use crate::db::models::tenants;
use crate::db::{Scope, transaction};
use crate::domain::Email;
use crate::error::AppError;
use crate::onboarding::{Actor, OnboardingError, invitation};
use crate::state::AppState;
use crate::web::Operator;

/// Every field defaults, so a malformed body never answers before the `Operator` check does.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct InviteForm {
    email: String,
}

pub async fn create(
    operator: Operator,
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    slug: web::Path<String>,
    form: web::Form<InviteForm>,
) -> Result<HttpResponse, AppError> {
    let slug = slug.into_inner();
    let refused = |message: String| InviteResult {
        email: &form.email,
        error: Some(message),
        link: None,
        reset: None,
    };
    let email = match Email::parse(&form.email) {
        Ok(email) => email,
        Err(e) => {
            let result = refused(e.to_string());
            return render(
                StatusCode::BAD_REQUEST,
                &operator,
                &state,
                &session,
                &slug,
                result,
            )
            .await;
        }
    };
    let actor = Actor::operator(operator.0.id, crate::web::client_ip(&req));
    let now = state.clock.now();
    let mut conn = state.db.get().await?;
    let issued = transaction(&mut conn, Scope::Operator, async |conn| {
        let Some(tenant) = tenants::find_by_slug(conn, &slug).await? else {
            return Err(OnboardingError::UnknownTenant(slug.clone()));
        };
        invitation::issue(conn, &tenant, &email, &actor, now).await
    })
    .await;
    drop(conn);
    match issued {
        Ok(issued) => {
            let link = issued.token.link(&state.settings.public_url);
            let result = InviteResult {
                email: "",
                error: None,
                link: Some(ShownLink {
                    url: link.expose_secret(),
                    email: issued.email.to_string(),
                    expires: issued.expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                }),
                reset: None,
            };
            render(StatusCode::OK, &operator, &state, &session, &slug, result).await
        }
        Err(OnboardingError::UnknownTenant(_)) => Err(AppError::NotFound),
        Err(e) if e.is_refusal() => {
            let result = refused(e.to_string());
            render(
                StatusCode::CONFLICT,
                &operator,
                &state,
                &session,
                &slug,
                result,
            )
            .await
        }
        Err(e) => Err(AppError::internal(e)),
    }
}
