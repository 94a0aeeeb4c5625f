//! `GET /t/{slug}/finch/callback?code&state` (redirect flow) and `POST` with JSON `{code, state}`
//! (embedded flow, with `X-CSRF-Token`). Always answers with a clean URL: never a code or state.
//!
//! A redirect-flow callback without a state changes nothing (another site may have sent the
//! browser): its code waits in an encrypted cookie ([`crate::web::pending_code`]) and
//! `GET /t/{slug}/finch/confirm` asks the admin whether it finishes the session's one pending
//! flow; only the `POST` there (same-origin, CSRF-protected) exchanges it.

use actix_session::Session;
use actix_web::http::header::{HeaderValue, REFERRER_POLICY};
use actix_web::{FromRequest as _, HttpRequest, HttpResponse, ResponseError as _, web};
use askama::Template;
use chrono::{DateTime, Utc};

use crate::connect::callback::{self, CallbackInput, LinkCallback, Outcome};
use crate::db::Scope;
use crate::db::models::flows::Flow;
use crate::db::models::tenants;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::link_cookie;
use crate::web::pending_code::{self, PendingCode};
use crate::web::{PageContext, SessionData, TenantAdmin, render, see_other};

fn location(slug: &str, outcome: &Outcome) -> String {
    match outcome {
        Outcome::Connected { connection_id } => {
            format!("/t/{slug}/connections/{connection_id}?connected=1")
        }
        Outcome::Attempt { attempt_id } => format!("/t/{slug}/attempts/{attempt_id}"),
        Outcome::InProgress { flow_id } => format!("/t/{slug}/flows/{flow_id}"),
        Outcome::Confirm { .. } => pending_code::path(slug),
    }
}

/// `303` to `location`, telling the browser not to send the callback URL anywhere.
fn clean_redirect(location: String) -> HttpResponse {
    let mut response = see_other(location);
    response
        .headers_mut()
        .insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// What a link's customer is told when Finch Connect came back without the flow's state (or
/// with one finchgate does not know): nothing was done.
const LINK_NOT_FINISHED: &str = "Finch Connect came back without what finchgate needs to finish \
    this connection, so nothing was done. Open the link you were sent again and press Continue.";

/// A callback from a browser with a link cookie: a connect link's customer finishing the
/// link's flow (no admin session), or — when the state names no link's flow — the admin path's
/// input, given back.
async fn link_callback(
    req: &HttpRequest,
    state: &AppState,
    input: CallbackInput,
) -> Result<Result<String, CallbackInput>, AppError> {
    let Some(secret) = link_cookie::read(req, state.settings.is_https()) else {
        return Ok(Err(input));
    };
    let slug = req.match_info().get("slug").unwrap_or_default().to_owned();
    let tenant = crate::db::run(&state.db, Scope::System, async |conn| {
        tenants::find_by_slug(conn, &slug).await
    })
    .await?
    .filter(|t| t.status == "active")
    .ok_or(AppError::NotFound)?;
    match callback::handle_link(state, tenant.id, &secret, input).await? {
        LinkCallback::Done(finish) => Ok(Ok(finish.location())),
        LinkCallback::NotALink(input) => Ok(Err(input)),
    }
}

pub async fn redirect_flow(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<CallbackInput>,
) -> Result<HttpResponse, AppError> {
    let input = match link_callback(&req, &state, query.into_inner()).await? {
        Ok(location) => {
            let slug = req.match_info().get("slug").unwrap_or_default();
            let mut response = clean_redirect(location);
            let removal = link_cookie::removal(slug, state.settings.is_https());
            response
                .add_removal_cookie(&removal)
                .map_err(AppError::internal)?;
            return Ok(response);
        }
        Err(input) => input,
    };
    let admin = match TenantAdmin::extract(&req).await {
        Ok(admin) => admin,
        // A link's customer (no account) whose callback names no flow of the link: there is
        // nothing to sign in to, so say what to do instead of sending them to the login page.
        Err(_) if link_cookie::read(&req, state.settings.is_https()).is_some() => {
            return Err(AppError::BadRequest(LINK_NOT_FINISHED.into()));
        }
        Err(error) => return Err(error),
    };
    let binding = SessionData(&session).flow_binding()?;
    let outcome = callback::handle(&state, admin.actor().into(), &binding, input).await?;
    let slug = &admin.tenant.slug;
    let mut response = clean_redirect(location(slug, &outcome));
    if let Outcome::Confirm { flow_id, code } = outcome {
        let pending = PendingCode { flow_id, code };
        let https = state.settings.is_https();
        let cookie =
            pending_code::cookie(&state.cookie_key, slug, https, &pending, state.clock.now())
                .ok_or_else(|| {
                    AppError::internal(anyhow::anyhow!("the pending code does not fit a cookie"))
                })?;
        response.add_cookie(&cookie).map_err(AppError::internal)?;
    }
    Ok(response)
}

pub async fn embedded_flow(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    body: web::Json<CallbackInput>,
) -> Result<HttpResponse, AppError> {
    let input = match link_callback(&req, &state, body.into_inner()).await {
        Ok(Ok(location)) => {
            let slug = req.match_info().get("slug").unwrap_or_default();
            let removal = link_cookie::removal(slug, state.settings.is_https());
            let mut response = HttpResponse::Ok().json(serde_json::json!({ "location": location }));
            response
                .add_removal_cookie(&removal)
                .map_err(AppError::internal)?;
            return Ok(response);
        }
        Ok(Err(input)) => input,
        Err(error) => return Ok(json_error(&error)),
    };
    let admin = TenantAdmin::extract(&req).await?;
    let outcome = match SessionData(&session).flow_binding() {
        Ok(binding) => callback::handle(&state, admin.actor().into(), &binding, input).await,
        Err(error) => Err(error),
    };
    let outcome = match outcome {
        // The embedded flow always has its state: a code without one is not ours to offer.
        Ok(Outcome::Confirm { .. }) => Err(AppError::BadRequest(
            "This connection cannot be finished without its state. Start a new connection.".into(),
        )),
        other => other,
    };
    Ok(match outcome {
        Ok(outcome) => HttpResponse::Ok()
            .json(serde_json::json!({ "location": location(&admin.tenant.slug, &outcome) })),
        Err(error) => json_error(&error),
    })
}

/// The embedded flow's error answer: JSON with a message a person can act on.
fn json_error(error: &AppError) -> HttpResponse {
    let status = error.status_code();
    let message = match error {
        AppError::BadRequest(m) | AppError::Forbidden(m) | AppError::Unavailable(m) => m.clone(),
        _ => "Something went wrong on our side. Try again.".to_owned(),
    };
    HttpResponse::build(status).json(serde_json::json!({ "error": message }))
}

/// Nothing (left) to confirm: start again.
fn nothing_to_confirm() -> AppError {
    AppError::BadRequest(
        "There is no connection waiting to be finished here (it was finished, or it expired). \
         Start a new connection."
            .into(),
    )
}

#[derive(Template)]
#[template(path = "tenant/confirm.html")]
struct ConfirmPage {
    page: PageContext,
    flow: Flow,
}

impl ConfirmPage {
    fn when(&self, t: &DateTime<Utc>) -> String {
        t.format("%Y-%m-%d %H:%M UTC").to_string()
    }
}

pub async fn confirm_form(
    admin: TenantAdmin,
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, AppError> {
    let https = state.settings.is_https();
    let pending = pending_code::read(&req, &state.cookie_key, https, state.clock.now())
        .ok_or_else(nothing_to_confirm)?;
    let binding = SessionData(&session).flow_binding()?;
    let flow =
        callback::confirmable(&state, admin.actor().into(), &binding, pending.flow_id).await?;
    let mut response = render(&ConfirmPage {
        page: PageContext::new(&session, &admin.user, Some(&admin.tenant))?,
        flow,
    })?;
    response
        .headers_mut()
        .insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    Ok(response)
}

pub async fn confirm(
    admin: TenantAdmin,
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, AppError> {
    let https = state.settings.is_https();
    let pending = pending_code::read(&req, &state.cookie_key, https, state.clock.now())
        .ok_or_else(nothing_to_confirm)?;
    let binding = SessionData(&session).flow_binding()?;
    let PendingCode { flow_id, code } = pending;
    let outcome = callback::confirm(&state, admin.actor().into(), &binding, flow_id, code).await?;
    let mut response = clean_redirect(location(&admin.tenant.slug, &outcome));
    response
        .add_removal_cookie(&pending_code::removal(&admin.tenant.slug, https))
        .map_err(AppError::internal)?;
    Ok(response)
}
