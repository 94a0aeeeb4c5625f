//! `POST /ops/exchanges/resolve`: resolve every open or acknowledged failure of the filtered set
//! (as the operator saw it: failures newer than the page are left alone), with one note and one
//! audit event carrying the count and the filter.

use actix_session::Session;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::exchange::parse_note;
use super::exchanges::bad_filter;
use crate::console::filter::{Filter, FilterError, RawFilter};
use crate::console::ledger;
use crate::db::models::audit;
use crate::db::{Scope, transaction};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{Operator, flash};

/// The filter's fields, the note and the time the page was rendered.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ResolveForm {
    #[serde(flatten)]
    filter: RawFilter,
    note: String,
    as_of: String,
}

pub async fn submit(
    operator: Operator,
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<ResolveForm>,
) -> Result<HttpResponse, AppError> {
    let filter = Filter::parse(&form.filter).map_err(bad_filter)?;
    let note = parse_note(&form.note, true)?.unwrap_or_default();
    let now = state.clock.now();
    let as_of = match form.as_of.trim() {
        "" => now,
        raw => DateTime::parse_from_rfc3339(raw)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| bad_filter(FilterError::Time(raw.chars().take(40).collect())))?,
    };
    let reviewer = operator.0.id;
    let query = filter.query_string();
    let ip = super::tenants::client_ip(&req);
    let mut conn = state.db.get().await?;
    let count = transaction(&mut conn, Scope::Operator, async |conn| {
        let count = ledger::resolve_all(conn, &filter, as_of, reviewer, &note, now).await?;
        audit::record(
            conn,
            // Many rows, so a kind of target and no one id.
            audit::Event {
                target_type: Some("exchange_attempt"),
                ..audit::Event::new("operator", Some(reviewer), "exchange.bulk_resolved")
            }
            .details(serde_json::json!({
                "count": count,
                "filter": query,
                "as_of": as_of,
                "note": note,
            }))
            .ip(ip.clone()),
        )
        .await?;
        Ok::<_, diesel::result::Error>(count)
    })
    .await?;
    flash(
        &session,
        "ok",
        format!("Resolved {count} failure(s) matching the filter."),
    )?;
    Ok(HttpResponse::SeeOther()
        .insert_header((LOCATION, format!("/ops/exchanges?{query}")))
        .finish())
}
