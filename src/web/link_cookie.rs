//! The cookie that binds a connect link's flow to the browser that pressed "Continue": a fresh
//! 256-bit secret (the flow stores only its SHA-256), HttpOnly, `SameSite=Lax` (it must travel on
//! Finch's top-level redirect back to the callback), sent only to the tenant's callback path,
//! for as long as a Connect session lives. A later Continue (in any browser) starts a new flow
//! with a new secret, so an older cookie can no longer finish anything.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite};

use crate::connect::FLOW_MINUTES;
use crate::primitives::looks_like_token;

fn name(https: bool) -> &'static str {
    if https {
        "__Secure-finchgate_link"
    } else {
        "finchgate_link"
    }
}

/// The tenant's callback path, where the cookie is sent (and nowhere else).
fn path(slug: &str) -> String {
    format!("/t/{slug}/finch/callback")
}

/// The cookie carrying `secret` to tenant `slug`'s callback.
pub fn cookie(slug: &str, https: bool, secret: &str) -> Cookie<'static> {
    Cookie::build(name(https), secret.to_owned())
        .path(path(slug))
        .http_only(true)
        .secure(https)
        .same_site(SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::minutes(i64::from(
            FLOW_MINUTES,
        )))
        .finish()
}

/// The secret the request's link cookie carries, if it has one of the right shape.
pub fn read(request: &HttpRequest, https: bool) -> Option<String> {
    let cookie = request.cookie(name(https))?;
    let value = cookie.value();
    looks_like_token(value).then(|| value.to_owned())
}

/// The cookie that removes it (the flow is finished).
pub fn removal(slug: &str, https: bool) -> Cookie<'static> {
    let mut cookie = Cookie::build(name(https), "")
        .path(path(slug))
        .http_only(true)
        .secure(https)
        .same_site(SameSite::Lax)
        .finish();
    cookie.make_removal();
    cookie
}
