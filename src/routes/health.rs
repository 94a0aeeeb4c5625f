//! `/healthz` (the process is up), `/readyz` (database reachable, migrations current), `/metrics`
//! (on the metrics listener only).

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::db;
use crate::state::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

#[derive(Serialize)]
struct Readiness {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

const READY_TIMEOUT: Duration = Duration::from_secs(3);

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let verdict = match tokio::time::timeout(READY_TIMEOUT, check(&state.db)).await {
        Ok(verdict) => verdict,
        Err(_) => Err(format!(
            "the database did not answer within {} s",
            READY_TIMEOUT.as_secs()
        )),
    };
    match verdict {
        Ok(()) => HttpResponse::Ok().json(Readiness {
            status: "ready",
            reason: None,
        }),
        Err(reason) => {
            tracing::warn!(%reason, "not ready");
            HttpResponse::ServiceUnavailable().json(Readiness {
                status: "unavailable",
                reason: Some(reason),
            })
        }
    }
}

async fn check(pool: &db::Pool) -> Result<(), String> {
    let mut conn = pool.get().await.map_err(|e| {
        format!(
            "the database is unreachable: {}",
            db::describe_pool_error(&e)
        )
    })?;
    let missing = db::migrations::missing_versions(&mut conn)
        .await
        .map_err(|e| format!("cannot read the applied migrations: {e}"))?;
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} migration(s) not applied: {}; run `finchgate migrate`",
            missing.len(),
            missing.join(", ")
        ))
    }
}

pub async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(crate::telemetry::metrics_handle().render())
}
