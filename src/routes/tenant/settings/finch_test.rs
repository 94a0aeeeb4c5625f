//! `POST /t/{slug}/settings/finch/test`: asks Finch whether the stored credentials work, by
//! creating a one-minute Connect session for the tenant, and says what happened in plain words.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};

use super::{audit_event, back_to_settings};
use crate::credentials::{self as creds, TestOutcome, TestRequest};
use crate::db::models::{audit, credentials};
use crate::db::transaction;
use crate::domain::products;
use crate::domain::sandbox::SandboxSetting;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{TenantAdmin, flash};

pub async fn run(
    admin: TenantAdmin,
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, AppError> {
    let tenant = &admin.tenant;
    let mut conn = state.db.get().await?;
    let current = transaction(&mut conn, admin.scope(), async |conn| {
        credentials::current(conn, tenant.id).await
    })
    .await?;
    // No connection is held while Finch is asked.
    drop(conn);
    let Some(current) = current else {
        flash(
            &session,
            "error",
            "There are no Finch credentials to test yet: save them first.",
        )?;
        return Ok(back_to_settings(&admin));
    };
    let products = match products::parse(tenant.default_products.iter().map(String::as_str)) {
        Ok(products) => products,
        Err(problem) => {
            flash(
                &session,
                "error",
                format!("The default products need fixing before a test: {problem}"),
            )?;
            return Ok(back_to_settings(&admin));
        }
    };
    let sandbox = SandboxSetting::parse(&tenant.finch_sandbox)
        .map_err(AppError::internal)?
        .to_wire();
    let secret = creds::open_secret(&state.vault, &current).map_err(AppError::internal)?;
    let outcome = creds::test(
        &state.finch,
        &current.client_id,
        &secret,
        TestRequest {
            tenant_id: tenant.id,
            tenant_name: &tenant.name,
            products,
            sandbox,
        },
    )
    .await;
    drop(secret);
    if let TestOutcome::Unavailable { .. } = outcome {
        tracing::warn!(tenant_id = %tenant.id, "credentials test: Finch unavailable");
    }

    let mut conn = state.db.get().await?;
    transaction(&mut conn, admin.scope(), async |conn| {
        audit::record(
            conn,
            audit_event(
                &admin,
                &req,
                "finch_credentials.tested",
                ("finch_credentials", current.id.to_string()),
                serde_json::json!({
                    "outcome": outcome.label(),
                    "credentials_version": current.version,
                    "finch_status": outcome.finch_status(),
                    "finch_request_id": outcome.request_id(),
                }),
            ),
        )
        .await
    })
    .await?;
    let kind = if outcome.is_success() { "ok" } else { "error" };
    flash(&session, kind, outcome.message())?;
    Ok(back_to_settings(&admin))
}
