//! The code of a callback that arrived without a state, kept until the admin confirms which flow
//! it finishes: in an encrypted (AES-256-GCM, with the cookie key), HttpOnly, `SameSite=Strict`
//! cookie scoped to the tenant's confirmation page, for at most [`LIFETIME`]. Never in a page, a
//! URL after the callback, a log line or a row.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, CookieJar, Key, SameSite};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// As long as Finch's codes live.
pub const LIFETIME: chrono::Duration = chrono::Duration::minutes(10);

/// A code waiting for confirmation, and the flow it was offered to.
pub struct PendingCode {
    pub flow_id: Uuid,
    pub code: SecretString,
}

#[derive(Serialize, Deserialize)]
struct Sealed<'a> {
    flow: Uuid,
    code: &'a str,
    until: i64,
}

fn name(https: bool) -> &'static str {
    if https {
        "__Secure-finchgate_confirm"
    } else {
        "finchgate_confirm"
    }
}

/// The confirmation page of tenant `slug`, where the cookie is sent (and nowhere else).
pub fn path(slug: &str) -> String {
    format!("/t/{slug}/finch/confirm")
}

/// The encrypted cookie that carries `pending` to the confirmation page.
pub fn cookie(
    key: &Key,
    slug: &str,
    https: bool,
    pending: &PendingCode,
    now: DateTime<Utc>,
) -> Option<Cookie<'static>> {
    let value = serde_json::to_string(&Sealed {
        flow: pending.flow_id,
        code: pending.code.expose_secret(),
        until: (now + LIFETIME).timestamp(),
    })
    .ok()?;
    let mut jar = CookieJar::new();
    let cookie = Cookie::build(name(https), value)
        .path(path(slug))
        .http_only(true)
        .secure(https)
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::seconds(
            LIFETIME.num_seconds(),
        ))
        .finish();
    jar.private_mut(key).add(cookie);
    jar.delta().next().cloned()
}

/// The pending code the request carries, if its cookie opens and has not expired.
pub fn read(
    request: &HttpRequest,
    key: &Key,
    https: bool,
    now: DateTime<Utc>,
) -> Option<PendingCode> {
    let mut jar = CookieJar::new();
    jar.add_original(request.cookie(name(https))?);
    let opened = jar.private(key).get(name(https))?;
    let sealed: Sealed<'_> = serde_json::from_str(opened.value()).ok()?;
    (sealed.until > now.timestamp()).then(|| PendingCode {
        flow_id: sealed.flow,
        code: SecretString::from(sealed.code.to_owned()),
    })
}

/// The cookie that removes it (once used, or refused).
pub fn removal(slug: &str, https: bool) -> Cookie<'static> {
    let mut cookie = Cookie::build(name(https), "")
        .path(path(slug))
        .http_only(true)
        .secure(https)
        .same_site(SameSite::Strict)
        .finish();
    cookie.make_removal();
    cookie
}
