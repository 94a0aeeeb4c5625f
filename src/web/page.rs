//! The context every signed-in page shares (who is signed in, the tenant, the CSRF token, a
//! flash), and the two answers handlers give: a rendered page, or `303 See Other`.

use actix_session::Session;
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use askama::Template;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::web::{CurrentUser, SessionData};

const FLASH_KEY: &str = "flash";

/// A one-time message shown on the page after a POST → 303 → GET.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flash {
    /// `ok` or `error`
    pub kind: String,
    pub message: String,
}

/// What `base.html` needs for the header (navigation, sign-out form) and the flash.
pub struct PageContext {
    pub email: String,
    pub is_operator: bool,
    pub tenant_slug: Option<String>,
    pub tenant_name: Option<String>,
    pub csrf_token: String,
    pub flash: Option<Flash>,
}

impl PageContext {
    pub fn new(
        session: &Session,
        user: &CurrentUser,
        tenant: Option<&crate::db::models::tenants::Tenant>,
    ) -> Result<Self, AppError> {
        // Removed only when there is one: a removal marks the session changed, and a changed
        // session is written back to the database at the end of the request.
        let flash = if session.entries().contains_key(FLASH_KEY) {
            session.remove_as::<Flash>(FLASH_KEY).and_then(Result::ok)
        } else {
            None
        };
        Ok(Self {
            email: user.email.clone(),
            is_operator: user.is_operator(),
            tenant_slug: tenant.map(|t| t.slug.clone()),
            tenant_name: tenant.map(|t| t.name.clone()),
            csrf_token: SessionData(session).csrf_token()?,
            flash,
        })
    }
}

/// Leaves a message for the next page this session renders.
pub fn flash(session: &Session, kind: &str, message: impl Into<String>) -> Result<(), AppError> {
    session
        .insert(
            FLASH_KEY,
            Flash {
                kind: kind.to_owned(),
                message: message.into(),
            },
        )
        .map_err(AppError::internal)
}

/// `200` with the rendered page.
pub fn render(page: &impl Template) -> Result<HttpResponse, AppError> {
    render_with(StatusCode::OK, page)
}

/// The rendered page with `status`.
pub fn render_with(status: StatusCode, page: &impl Template) -> Result<HttpResponse, AppError> {
    let body = page.render().map_err(AppError::internal)?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body))
}

/// `303 See Other` to `location` (POST → 303 → GET, and every redirect of ours).
pub fn see_other(location: impl AsRef<str>) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, location.as_ref()))
        .finish()
}
