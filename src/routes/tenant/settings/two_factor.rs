//! `POST /t/{slug}/settings/two-factor`: "require two-factor for this tenant's admins". While it
//! is on, an admin without two-factor sign-in reaches only their account pages until they enrol.
//! Turning it on needs the admin's own enrolment first (so nobody locks themselves out by
//! surprise); every change is audited.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::{audit_event, back_to_settings};
use crate::db::Scope;
use crate::db::models::{audit, tenants, two_factor};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{TenantAdmin, flash};

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RequireForm {
    /// `on` when the box is ticked; absent otherwise.
    required: Option<String>,
}

pub async fn save(
    admin: TenantAdmin,
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<RequireForm>,
) -> Result<HttpResponse, AppError> {
    let required = form.required.as_deref() == Some("on");
    let user_id = admin.user.id;
    let enrolled = crate::db::run(&state.db, Scope::System, async |conn| {
        two_factor::is_enrolled(conn, user_id).await
    })
    .await?;
    if required && !enrolled {
        flash(
            &session,
            "error",
            "Set up two-factor sign-in for yourself first (Account), then require it for every admin.",
        )?;
        return Ok(back_to_settings(&admin));
    }
    let tenant_id = admin.tenant.id;
    let now = state.clock.now();
    let changed = crate::db::run(&state.db, admin.scope(), async |conn| {
        let changed = tenants::set_require_two_factor(conn, tenant_id, required, now).await?;
        if changed > 0 {
            audit::record(
                conn,
                audit_event(
                    &admin,
                    &req,
                    "tenant.two_factor_requirement_changed",
                    ("tenant", tenant_id.to_string()),
                    serde_json::json!({ "require_two_factor": required }),
                ),
            )
            .await?;
        }
        Ok::<_, diesel::result::Error>(changed)
    })
    .await?;
    let message = match (changed > 0, required) {
        (true, true) => "Two-factor sign-in is now required for every admin of this tenant.",
        (true, false) => "Two-factor sign-in is no longer required for this tenant's admins.",
        (false, _) => "Nothing changed.",
    };
    flash(&session, "ok", message)?;
    Ok(back_to_settings(&admin))
}
