//! Cursor pagination: a page is `limit` rows after a cursor, newest first. The cursor is opaque to
//! clients (base64url of the last row's sort key); a cursor that does not decode is a 422.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::problem::Problem;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 100;

/// A sort key: when, then id (both descending).
pub type Key = (DateTime<Utc>, Uuid);

/// Encodes the sort key of a page's last row.
pub fn encode(key: Key) -> String {
    let raw = format!("{}|{}", key.0.timestamp_micros(), key.1);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// Decodes a cursor; anything else than one we made is refused.
pub fn decode(cursor: &str) -> Result<Key, Problem> {
    let invalid = || {
        Problem::validation(
            "The cursor is not one this API returned; pass `next_cursor` from the previous page unchanged.",
            vec!["cursor".to_owned()],
        )
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| invalid())?;
    let raw = std::str::from_utf8(&raw).map_err(|_| invalid())?;
    let (micros, id) = raw.split_once('|').ok_or_else(invalid)?;
    let micros: i64 = micros.parse().map_err(|_| invalid())?;
    let at = DateTime::<Utc>::from_timestamp_micros(micros).ok_or_else(invalid)?;
    let id = Uuid::parse_str(id).map_err(|_| invalid())?;
    Ok((at, id))
}

/// `?cursor=&limit=`, checked.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub after: Option<Key>,
    pub limit: i64,
}

impl PageRequest {
    pub fn parse(cursor: Option<&str>, limit: Option<i64>) -> Result<Self, Problem> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(Problem::validation(
                format!("`limit` must be 1 to {MAX_LIMIT}."),
                vec!["limit".to_owned()],
            ));
        }
        let after = cursor.filter(|c| !c.is_empty()).map(decode).transpose()?;
        Ok(Self { after, limit })
    }

    /// Splits one row more than the page off: its presence means there is a next page, whose
    /// cursor is the last row kept.
    pub fn finish<T>(&self, mut rows: Vec<T>, key: impl Fn(&T) -> Key) -> (Vec<T>, Option<String>) {
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more {
            rows.last().map(|r| encode(key(r)))
        } else {
            None
        };
        (rows, next)
    }
}

/// The query parameters every list takes.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// `next_cursor` of the previous page; omit for the first page.
    pub cursor: Option<String>,
    /// Rows per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_garbage_is_refused() {
        let key = (
            DateTime::<Utc>::from_timestamp_micros(1_700_000_000_123_456).unwrap_or_default(),
            Uuid::nil(),
        );
        assert_eq!(decode(&encode(key)).ok(), Some(key));
        assert!(decode("not a cursor").is_err());
        assert!(decode("").is_err());
    }
}
