//! Control characters refused once, at the edge, before the session store or any handler sees
//! the request: no NUL anywhere (PostgreSQL refuses it in text, so it used to be a 500, or a CSV
//! cut short), and no other control character either, except tabs and line breaks in the fields
//! that hold several lines (a review note). Password fields are hashed, never stored or searched
//! as text, and kept exactly as typed (domain::password_policy): there only NUL is refused.
//!
//! Looked at: the decoded query string, urlencoded forms and JSON bodies (the embedded callback),
//! read once and bounded ([`crate::web::body`]). The refusal is a 400 that names the field and the
//! character (JSON for a JSON request, as the embedded flow's script reads it); it never repeats
//! the value, which may be a secret.

use std::borrow::Cow;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse, ResponseError as _};

use crate::error::AppError;
use crate::web::body::{self, Kind};

/// Fields that hold several lines of text: tabs and line breaks are allowed there.
const MULTI_LINE_FIELDS: &[&str] = &["note"];

/// Where a refused character was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Query,
    Form,
    Json,
}

impl Place {
    fn noun(self) -> &'static str {
        match self {
            Self::Query => "query parameter",
            Self::Form => "form field",
            Self::Json => "field",
        }
    }
}

/// A character a field may not hold: which field (escaped, bounded), which character.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "The {} “{field}” contains {what}, which finchgate does not accept there. Remove it and try again.",
    .place.noun()
)]
pub struct Refused {
    pub place: Place,
    pub field: String,
    pub what: String,
}

/// The middleware: checks, then passes the request on, or answers 400.
pub async fn refuse_control_characters(
    mut request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let kind = body::kind(&request);
    // The API reads its JSON bodies itself (`api::ApiJson`: its own size cap answered with a 413,
    // and the same character check on every key and string); its refusals are problem details.
    let api = crate::api::is_api_path(request.path());
    if api && crate::api::extract::declared_too_large(request.headers()) {
        let problem = crate::api::Problem::payload_too_large(crate::api::extract::MAX_JSON_BYTES);
        let response = actix_web::ResponseError::error_response(&problem);
        return Ok(request.into_response(response).map_into_right_body());
    }
    let checked_kind = if api && kind == Some(Kind::Json) {
        None
    } else {
        kind
    };
    let verdict = match check(&mut request, checked_kind).await {
        Ok(()) => None,
        Err(Problem::Refused(refused)) => {
            tracing::info!(
                path = %crate::telemetry::loggable_path(request.path()),
                reason = %refused,
                "refused a request with a control character"
            );
            Some(AppError::BadRequest(refused.to_string()))
        }
        Err(Problem::Body(error)) => Some(error),
    };
    let Some(error) = verdict else {
        return next
            .call(request)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    if api {
        let problem = match error {
            AppError::BadRequest(message) => crate::api::Problem::validation(message, Vec::new()),
            other => crate::api::Problem::from(other),
        };
        let response = actix_web::ResponseError::error_response(&problem);
        return Ok(request.into_response(response).map_into_right_body());
    }
    let response = match (kind, &error) {
        (Some(Kind::Json), AppError::BadRequest(message)) => {
            HttpResponse::BadRequest().json(serde_json::json!({ "error": message }))
        }
        _ => error.error_response(),
    };
    Ok(request.into_response(response).map_into_right_body())
}

enum Problem {
    Refused(Refused),
    /// The body could not be read, or is too large.
    Body(AppError),
}

async fn check(request: &mut ServiceRequest, kind: Option<Kind>) -> Result<(), Problem> {
    check_pairs(
        Place::Query,
        url::form_urlencoded::parse(request.query_string().as_bytes()),
    )
    .map_err(Problem::Refused)?;
    let Some(kind) = kind else {
        return Ok(());
    };
    let body = body::buffered(request).await.map_err(Problem::Body)?;
    match kind {
        Kind::Form => {
            check_pairs(Place::Form, url::form_urlencoded::parse(&body)).map_err(Problem::Refused)
        }
        // Not JSON at all: the handler's own parser says so.
        Kind::Json => match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(value) => check_json("", &value).map_err(Problem::Refused),
            Err(_) => Ok(()),
        },
    }
}

/// Checks decoded `name=value` pairs.
pub fn check_pairs<'a>(
    place: Place,
    pairs: impl Iterator<Item = (Cow<'a, str>, Cow<'a, str>)>,
) -> Result<(), Refused> {
    for (name, value) in pairs {
        check_field(place, &name, &value)?;
    }
    Ok(())
}

/// Checks every key and string of a JSON value; a nested field is named by its path (`a.b`).
pub fn check_json(path: &str, value: &serde_json::Value) -> Result<(), Refused> {
    use serde_json::Value;
    match value {
        Value::String(text) => check_field(Place::Json, path, text),
        Value::Array(items) => items.iter().try_for_each(|item| check_json(path, item)),
        Value::Object(map) => map.iter().try_for_each(|(key, item)| {
            let field = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            check_field(Place::Json, &field, "")?;
            check_json(&field, item)
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

fn check_field(place: Place, name: &str, value: &str) -> Result<(), Refused> {
    let refused = |c: char| Refused {
        place,
        field: printable(name),
        what: describe(c),
    };
    // A field's name is never more than one line, whatever the field.
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(refused(c));
    }
    let last = name.rsplit('.').next().unwrap_or(name);
    let allowed: fn(char) -> bool = if last.contains("password") {
        |c| c != '\0'
    } else if MULTI_LINE_FIELDS.contains(&last) {
        |c| !c.is_control() || matches!(c, '\t' | '\n' | '\r')
    } else {
        |c| !c.is_control()
    };
    match value.chars().find(|c| !allowed(*c)) {
        Some(c) => Err(refused(c)),
        None => Ok(()),
    }
}

/// A field name as a message may quote it: escaped, at most 40 characters.
fn printable(name: &str) -> String {
    name.chars()
        .flat_map(char::escape_default)
        .take(40)
        .collect()
}

fn describe(c: char) -> String {
    let code = u32::from(c);
    match c {
        '\0' => format!("a NUL character (U+{code:04X})"),
        '\t' => format!("a tab (U+{code:04X})"),
        '\n' | '\r' => format!("a line break (U+{code:04X})"),
        _ => format!("a control character (U+{code:04X})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(raw: &str) -> Result<(), Refused> {
        check_pairs(Place::Form, url::form_urlencoded::parse(raw.as_bytes()))
    }

    #[test]
    fn nul_is_refused_in_every_field_with_the_field_named() {
        for raw in ["email=a%00", "note=a%00b", "password=x%00y", "q=%00"] {
            let refused = form(raw).expect_err(raw);
            assert_eq!(refused.what, "a NUL character (U+0000)", "{raw}");
            assert_eq!(Some(refused.field.as_str()), raw.split('=').next());
        }
        assert_eq!(
            form("email=a%00").map_err(|e| e.to_string()),
            Err(
                "The form field “email” contains a NUL character (U+0000), which finchgate \
                 does not accept there. Remove it and try again."
                    .to_owned()
            )
        );
    }

    #[test]
    fn line_breaks_are_allowed_only_in_multi_line_fields_and_passwords_keep_theirs() {
        assert_eq!(form("note=line%0D%0Aline%09tab"), Ok(()));
        assert_eq!(form("action=resolve&note=two%0Alines"), Ok(()));
        assert_eq!(form("password=tab%09and%1Bescape"), Ok(()));
        assert_eq!(form("name=Acme+%C3%A9+Co."), Ok(()));
        for (raw, field, what) in [
            ("name=a%0Ab", "name", "a line break (U+000A)"),
            ("q=%09", "q", "a tab (U+0009)"),
            ("note=bell%07", "note", "a control character (U+0007)"),
            ("email=%C2%85x", "email", "a control character (U+0085)"),
            ("a%0Ab=1", "a\\nb", "a line break (U+000A)"),
        ] {
            let refused = form(raw).expect_err(raw);
            assert_eq!(
                (refused.field.as_str(), refused.what.as_str()),
                (field, what)
            );
        }
    }

    #[test]
    fn json_strings_and_keys_are_checked_at_any_depth() {
        let ok = serde_json::json!({ "code": "abc", "state": "def", "n": 1, "list": ["x"] });
        assert_eq!(check_json("", &ok), Ok(()));
        let nested = serde_json::json!({ "outer": { "error_description": ["fine", "bad\u{0}"] } });
        let refused = check_json("", &nested).expect_err("NUL");
        assert_eq!(refused.field, "outer.error_description");
        assert_eq!(refused.place, Place::Json);
        let key = serde_json::json!({ "a\u{1b}": "x" });
        assert!(check_json("", &key).is_err());
    }
}
