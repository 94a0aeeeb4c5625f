//! Request parsing for the emulated API: JSON bodies checked field by field (so every 400 names
//! the field that is wrong, as Finch's messages do), and the Basic / Bearer credentials.

use std::ops::RangeInclusive;
use std::str::FromStr;

use actix_web::HttpRequest;
use actix_web::http::header;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::error::ApiError;
use crate::finch::wire::Product;

/// A JSON object body whose fields are read one at a time with named errors.
///
/// `null` counts as absent everywhere, since Finch's schemas mark optional fields nullable.
#[derive(Debug)]
pub(crate) struct JsonBody {
    fields: Map<String, Value>,
    /// Prefix for nested objects, e.g. `integration.`.
    prefix: String,
}

impl JsonBody {
    /// Requires `Content-Type: application/json` and a JSON object.
    pub(crate) fn parse(req: &HttpRequest, bytes: &[u8]) -> Result<Self, ApiError> {
        if !is_json(req) {
            return Err(ApiError::bad_request(
                "Content-Type must be application/json",
            ));
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(fields)) => Ok(Self {
                fields,
                prefix: String::new(),
            }),
            Ok(_) => Err(ApiError::bad_request(
                "the request body must be a JSON object",
            )),
            Err(e) => Err(ApiError::bad_request(format!(
                "the request body is not valid JSON: {e}"
            ))),
        }
    }

    fn get(&self, field: &str) -> Option<&Value> {
        self.fields.get(field).filter(|v| !v.is_null())
    }

    fn name(&self, field: &str) -> String {
        format!("{}{field}", self.prefix)
    }

    /// An optional field that must be a string when present.
    fn opt_str(&self, field: &str) -> Result<Option<&String>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::bad_request(format!(
                "{} must be a string",
                self.name(field)
            ))),
        }
    }

    /// An optional string whose length in characters lies in `len`.
    pub(crate) fn opt_string(
        &self,
        field: &str,
        len: RangeInclusive<usize>,
    ) -> Result<Option<String>, ApiError> {
        let Some(s) = self.opt_str(field)? else {
            return Ok(None);
        };
        let count = s.chars().count();
        if !len.contains(&count) {
            return Err(ApiError::bad_request(format!(
                "{} must be {} to {} characters long (got {count})",
                self.name(field),
                len.start(),
                len.end()
            )));
        }
        Ok(Some(s.clone()))
    }

    /// A required string whose length in characters lies in `len`.
    pub(crate) fn string(
        &self,
        field: &str,
        len: RangeInclusive<usize>,
    ) -> Result<String, ApiError> {
        self.opt_string(field, len)?
            .ok_or_else(|| ApiError::bad_request(format!("{} is required", self.name(field))))
    }

    /// An optional boolean.
    pub(crate) fn opt_bool(&self, field: &str) -> Result<Option<bool>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ApiError::bad_request(format!(
                "{} must be true or false",
                self.name(field)
            ))),
        }
    }

    /// An optional whole number in `range` (JSON `30` and `30.0` both count as whole).
    pub(crate) fn opt_whole_number(
        &self,
        field: &str,
        range: RangeInclusive<u32>,
    ) -> Result<Option<u32>, ApiError> {
        let Some(value) = self.get(field) else {
            return Ok(None);
        };
        let out_of_range = || {
            ApiError::bad_request(format!(
                "{} must be a whole number from {} to {}",
                self.name(field),
                range.start(),
                range.end()
            ))
        };
        let Some(n) = value.as_f64() else {
            return Err(out_of_range());
        };
        if n.fract() != 0.0 || n < f64::from(*range.start()) || n > f64::from(*range.end()) {
            return Err(out_of_range());
        }
        // In range and whole, so the conversion is exact.
        u32::try_from(n as u64)
            .map(Some)
            .map_err(|_| out_of_range())
    }

    /// An optional string enum value.
    pub(crate) fn opt_enum<T>(&self, field: &str) -> Result<Option<T>, ApiError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        let Some(s) = self.opt_str(field)? else {
            return Ok(None);
        };
        s.parse()
            .map(Some)
            .map_err(|e| ApiError::bad_request(format!("{}: {e}", self.name(field))))
    }

    /// An optional non-empty array of known products.
    pub(crate) fn opt_products(&self, field: &str) -> Result<Option<Vec<Product>>, ApiError> {
        let Some(value) = self.get(field) else {
            return Ok(None);
        };
        let Value::Array(items) = value else {
            return Err(ApiError::bad_request(format!(
                "{} must be an array of products",
                self.name(field)
            )));
        };
        if items.is_empty() {
            return Err(ApiError::bad_request(format!(
                "{} must name at least one product; expected any of: {}",
                self.name(field),
                Product::expected()
            )));
        }
        let mut products = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let Value::String(s) = item else {
                return Err(ApiError::bad_request(format!(
                    "{}[{i}] must be a string",
                    self.name(field)
                )));
            };
            let product = s
                .parse::<Product>()
                .map_err(|e| ApiError::bad_request(format!("{}[{i}]: {e}", self.name(field))))?;
            if !products.contains(&product) {
                products.push(product);
            }
        }
        Ok(Some(products))
    }

    /// A required array of 1 to `max` objects, each read with the same helpers.
    pub(crate) fn object_array(&self, field: &str, max: usize) -> Result<Vec<JsonBody>, ApiError> {
        let Some(Value::Array(items)) = self.get(field) else {
            return Err(ApiError::bad_request(format!(
                "{} is required: an array of objects",
                self.name(field)
            )));
        };
        if items.is_empty() || items.len() > max {
            return Err(ApiError::bad_request(format!(
                "{} must hold 1 to {max} items (got {})",
                self.name(field),
                items.len()
            )));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(fields) => Ok(JsonBody {
                    fields: fields.clone(),
                    prefix: format!("{}[{i}].", self.name(field)),
                }),
                _ => Err(ApiError::bad_request(format!(
                    "{}[{i}] must be an object",
                    self.name(field)
                ))),
            })
            .collect()
    }

    /// An optional array of strings.
    pub(crate) fn opt_strings(&self, field: &str) -> Result<Option<Vec<String>>, ApiError> {
        let Some(value) = self.get(field) else {
            return Ok(None);
        };
        let not_strings =
            || ApiError::bad_request(format!("{} must be an array of strings", self.name(field)));
        let Value::Array(items) = value else {
            return Err(not_strings());
        };
        items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(not_strings))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// An optional nested object, read with the same helpers.
    pub(crate) fn opt_object(&self, field: &str) -> Result<Option<JsonBody>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Object(fields)) => Ok(Some(JsonBody {
                fields: fields.clone(),
                prefix: format!("{}.", self.name(field)),
            })),
            Some(_) => Err(ApiError::bad_request(format!(
                "{} must be an object",
                self.name(field)
            ))),
        }
    }
}

/// True when the request declares a JSON body (`application/json`, any parameters).
fn is_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// Client credentials from `Authorization: Basic base64(client_id:client_secret)`.
pub(crate) struct BasicCredentials {
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
}

/// Reads HTTP Basic credentials; `Ok(None)` when there is no `Authorization: Basic` header.
pub(crate) fn basic_credentials(req: &HttpRequest) -> Result<Option<BasicCredentials>, ApiError> {
    let Some(value) = authorization(req, "basic") else {
        return Ok(None);
    };
    let malformed =
        || ApiError::invalid_client("the Authorization header is not valid HTTP Basic credentials");
    let decoded = STANDARD.decode(value.trim()).map_err(|_| malformed())?;
    let text = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (client_id, client_secret) = text.split_once(':').ok_or_else(malformed)?;
    Ok(Some(BasicCredentials {
        client_id: client_id.to_owned(),
        client_secret: client_secret.to_owned(),
    }))
}

/// The access token from `Authorization: Bearer …`; a missing one is Finch's
/// `unauthorized_request_error`.
pub(crate) fn bearer_token(req: &HttpRequest) -> Result<String, ApiError> {
    authorization(req, "bearer")
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized_request(
                "an access token is required in the Authorization header (Bearer)",
            )
        })
}

/// The credentials part of `Authorization: <scheme> <credentials>` for a scheme (any case).
fn authorization<'a>(req: &'a HttpRequest, scheme: &str) -> Option<&'a str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (given, rest) = value.split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then_some(rest)
}

/// Compares secrets without an early exit, so response timing does not reveal how much of a
/// guessed secret was right (the emulator should not teach bad habits).
pub(crate) fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of a form or query parameter (first occurrence).
pub(crate) fn form_value(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty())
}

/// Decodes `application/x-www-form-urlencoded` (query strings and form bodies).
pub(crate) fn form_pairs(encoded: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(encoded).into_owned().collect()
}
