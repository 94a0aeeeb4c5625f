//! The public pages of a connect link: `GET /c/{token}` (names the tenant and the customer),
//! `POST /c/{token}` ("Continue": starts Finch Connect for this browser and sets its link
//! cookie), and `GET /c/done` (you can close this page). A malformed, unknown, expired, revoked
//! or completed token gets one page, with one status, and nothing is asked of Finch.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, REFERRER_POLICY};
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::connect::link::{self, Continued};
use crate::connect::start::Started;
use crate::error::AppError;
use crate::primitives::random_token;
use crate::state::AppState;
use crate::web::{SessionData, link_cookie, render_with, see_other};

#[derive(Template)]
#[template(path = "links/gone.html")]
struct GonePage;

/// The one answer for every token that does not (or no longer) work.
fn gone() -> Result<HttpResponse, AppError> {
    no_referrer(render_with(StatusCode::NOT_FOUND, &GonePage)?)
}

/// The token is in the URL: a redirect from it must not carry it anywhere as a referrer. (The
/// pages themselves keep the default `same-origin`: under `no-referrer` browsers send
/// `Origin: null` on their same-origin POSTs, which the CSRF check refuses; `same-origin` never
/// sends the address to another site either.)
fn no_referrer(mut response: HttpResponse) -> Result<HttpResponse, AppError> {
    response
        .headers_mut()
        .insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    Ok(response)
}

/// The form posts back to the page's own URL (no `action`), so the token is not in the page.
#[derive(Template)]
#[template(path = "links/open.html")]
struct OpenPage<'a> {
    csrf_token: &'a str,
    tenant_name: &'a str,
    customer_name: &'a str,
    reconnect: bool,
}

pub async fn show(
    state: web::Data<AppState>,
    session: Session,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let Some(public) = link::open(&state, &token).await? else {
        return gone();
    };
    let csrf = SessionData(&session).csrf_token()?;
    render_with(
        StatusCode::OK,
        &OpenPage {
            csrf_token: &csrf,
            tenant_name: &public.tenant_name,
            customer_name: &public.link.customer_name,
            reconnect: public.link.reconnect_connection_id.is_some(),
        },
    )
}

#[derive(Template)]
#[template(path = "links/embedded.html")]
struct EmbeddedPage<'a> {
    tenant_name: &'a str,
    csrf_token: &'a str,
    session_id: &'a str,
    state: &'a str,
    connect_script: String,
    callback: String,
}

pub async fn continue_flow(
    state: web::Data<AppState>,
    session: Session,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let secret = random_token()?;
    let (started, slug, tenant_name) = match link::continue_flow(&state, &token, &secret).await? {
        Continued::NoLongerWorks => return gone(),
        Continued::Finished(finish) => return no_referrer(see_other(finish.location())),
        Continued::Started {
            started,
            tenant_slug,
            tenant_name,
        } => (started, tenant_slug, tenant_name),
    };
    let cookie = link_cookie::cookie(&slug, state.settings.is_https(), &secret);
    let mut response = match started {
        Started::Redirect { location, .. } => no_referrer(see_other(location))?,
        Started::Embedded {
            session_id,
            state: flow_state,
            ..
        } => {
            let connect = state
                .settings
                .finch
                .connect_url
                .as_str()
                .trim_end_matches('/')
                .to_owned();
            let csrf = SessionData(&session).csrf_token()?;
            render_with(
                StatusCode::OK,
                &EmbeddedPage {
                    tenant_name: &tenant_name,
                    csrf_token: &csrf,
                    session_id: &session_id,
                    state: &flow_state,
                    connect_script: format!("{connect}/connect.js"),
                    callback: format!("/t/{slug}/finch/callback"),
                },
            )?
        }
        // continue_flow answers a failed start with `Finished`.
        Started::Failed { .. } => return gone(),
    };
    response.add_cookie(&cookie).map_err(AppError::internal)?;
    Ok(response)
}

#[derive(Deserialize)]
pub struct DoneQuery {
    #[serde(default)]
    status: String,
}

#[derive(Template)]
#[template(path = "links/done.html")]
struct DonePage<'a> {
    status: &'a str,
}

pub async fn done(query: web::Query<DoneQuery>) -> Result<HttpResponse, AppError> {
    let status = match query.status.as_str() {
        "connected" => "connected",
        "in_progress" => "in_progress",
        _ => "failed",
    };
    render_with(StatusCode::OK, &DonePage { status })
}
