//! The console's view of the ledger as a URL: filters parsed from the query string (bad values are
//! refused with a message, never passed on), the opaque keyset cursor, and the query string back.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Timelike as _, Utc};
use serde::Deserialize;
use uuid::Uuid;

use crate::domain::{Slug, failure};

/// Rows per page of the list.
pub const PAGE_SIZE: i64 = 50;
/// Longest free-text search accepted.
pub const MAX_TEXT: usize = 200;

pub const ACTORS: &[&str] = &["end_user", "tenant_admin", "operator", "nobody"];
pub const REVIEW_STATES: &[&str] = &["open", "acknowledged", "resolved"];

/// The earliest time the console accepts: 2000-01-01T00:00:00Z.
pub const EARLIEST: DateTime<Utc> = match DateTime::from_timestamp(946_684_800, 0) {
    Some(t) => t,
    None => DateTime::<Utc>::UNIX_EPOCH,
};
/// The latest time the console accepts: 2101-01-01T00:00:00Z (so `to=2100-12-31`, which means
/// the end of that day, is still in range).
pub const LATEST: DateTime<Utc> = match DateTime::from_timestamp(4_133_980_800, 0) {
    Some(t) => t,
    None => DateTime::<Utc>::UNIX_EPOCH,
};

/// The query string as sent: every field optional, empty means absent (forms send empty fields).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct RawFilter {
    pub status: String,
    pub tenant: String,
    pub category: String,
    pub actor: String,
    pub provider: String,
    pub review: String,
    pub from: String,
    pub to: String,
    pub q: String,
    pub cursor: String,
    pub view: String,
}

/// Which rows: failures (the default) or every attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Status {
    #[default]
    Failed,
    All,
}

/// Which part of the console page is shown for a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    /// The attempts, newest first, a page at a time.
    #[default]
    List,
    /// Failures grouped by (tenant, category).
    Groups,
    /// Attempts and failures over time (SVG).
    Trends,
}

/// A validated filter over the ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub status: Status,
    pub tenant: Option<String>,
    pub category: Option<&'static str>,
    pub actor: Option<&'static str>,
    pub provider: Option<String>,
    pub review: Option<&'static str>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub text: Option<String>,
}

/// A position in the list: the last row shown, by (started_at, id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub started_at: DateTime<Utc>,
    pub id: Uuid,
}

/// A filter, where to continue, and what to show.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub filter: Filter,
    pub cursor: Option<Cursor>,
    pub view: View,
}

/// Why a filter was refused, worded for the operator who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("Unknown status {0:?}: use \"failed\" or \"all\".")]
    Status(String),
    #[error("Not a tenant slug: {0}")]
    Tenant(String),
    #[error("Unknown failure category {0:?}.")]
    Category(String),
    #[error("Unknown actor {0:?}: use end_user, tenant_admin, operator or nobody.")]
    Actor(String),
    #[error("Not a provider id {0:?}: lower-case letters, digits, _ and -, at most 100.")]
    Provider(String),
    #[error("Unknown review state {0:?}: use open, acknowledged or resolved.")]
    Review(String),
    #[error(
        "Not a time: {param}={value:?}; use YYYY-MM-DD, YYYY-MM-DDTHH:MM or RFC 3339 (UTC unless stated)."
    )]
    Time { param: &'static str, value: String },
    #[error(
        "{param}={value:?} is outside the range the console accepts: from 2000-01-01 to 2100-12-31 (UTC)."
    )]
    OutOfRange { param: &'static str, value: String },
    #[error("The time range ends before it starts.")]
    Range,
    #[error("The search text is longer than {MAX_TEXT} characters.")]
    Text,
    #[error("This page link is damaged; start again from the first page.")]
    Cursor,
    #[error("Unknown view {0:?}: use list, groups or trends.")]
    View(String),
    #[error("The query string could not be read.")]
    Malformed,
}

impl Request {
    /// Parses a whole query string.
    pub fn from_query(query: &str) -> Result<Self, FilterError> {
        let raw: RawFilter = serde_urlencoded_from(query)?;
        Self::parse(&raw)
    }

    pub fn parse(raw: &RawFilter) -> Result<Self, FilterError> {
        let cursor = present(&raw.cursor).map(Cursor::decode).transpose()?;
        let view = match present(&raw.view) {
            None | Some("list") => View::List,
            Some("groups") => View::Groups,
            Some("trends") => View::Trends,
            Some(other) => return Err(FilterError::View(other.to_owned())),
        };
        Ok(Self {
            filter: Filter::parse(raw)?,
            cursor,
            view,
        })
    }
}

fn serde_urlencoded_from(query: &str) -> Result<RawFilter, FilterError> {
    actix_web::web::Query::<RawFilter>::from_query(query)
        .map(actix_web::web::Query::into_inner)
        .map_err(|_| FilterError::Malformed)
}

fn present(value: &str) -> Option<&str> {
    let value = value.trim();
    (!value.is_empty()).then_some(value)
}

fn one_of(value: &str, allowed: &[&'static str]) -> Option<&'static str> {
    allowed.iter().copied().find(|a| *a == value)
}

impl Filter {
    pub fn parse(raw: &RawFilter) -> Result<Self, FilterError> {
        let status = match present(&raw.status) {
            None | Some("failed") => Status::Failed,
            Some("all") => Status::All,
            Some(other) => return Err(FilterError::Status(other.to_owned())),
        };
        let tenant = present(&raw.tenant)
            .map(|s| {
                Slug::parse(s)
                    .map(|slug| slug.as_str().to_owned())
                    .map_err(|e| FilterError::Tenant(e.to_string()))
            })
            .transpose()?;
        let categories: Vec<&'static str> = failure::ALL.iter().map(|f| f.category).collect();
        let category = present(&raw.category)
            .map(|c| one_of(c, &categories).ok_or_else(|| FilterError::Category(c.to_owned())))
            .transpose()?;
        let actor = present(&raw.actor)
            .map(|a| one_of(a, ACTORS).ok_or_else(|| FilterError::Actor(a.to_owned())))
            .transpose()?;
        let provider = present(&raw.provider)
            .map(|p| {
                let ok = p.len() <= 100
                    && p.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'
                    });
                if ok {
                    Ok(p.to_owned())
                } else {
                    Err(FilterError::Provider(p.chars().take(40).collect()))
                }
            })
            .transpose()?;
        let review = present(&raw.review)
            .map(|r| one_of(r, REVIEW_STATES).ok_or_else(|| FilterError::Review(r.to_owned())))
            .transpose()?;
        let from = present(&raw.from)
            .map(|t| parse_time("from", t, false).and_then(|at| in_range("from", t, at)))
            .transpose()?;
        let to = present(&raw.to)
            .map(|t| parse_time("to", t, true).and_then(|at| in_range("to", t, at)))
            .transpose()?;
        if let (Some(from), Some(to)) = (from, to) {
            if to <= from {
                return Err(FilterError::Range);
            }
        }
        let text = present(&raw.q)
            .map(|q| {
                if q.chars().count() > MAX_TEXT {
                    Err(FilterError::Text)
                } else {
                    Ok(q.to_owned())
                }
            })
            .transpose()?;
        Ok(Self {
            status,
            tenant,
            category,
            actor,
            provider,
            review,
            from,
            to,
            text,
        })
    }

    /// Whether only failures can match (category, actor and review state exist on failures only).
    pub fn failures_only(&self) -> bool {
        self.status == Status::Failed
            || self.category.is_some()
            || self.actor.is_some()
            || self.review.is_some()
    }

    /// The filter as query-string pairs (absent fields left out), for links and forms.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if self.status == Status::All {
            pairs.push(("status", "all".to_owned()));
        }
        let mut push = |key: &'static str, value: Option<&str>| {
            if let Some(value) = value {
                pairs.push((key, value.to_owned()));
            }
        };
        push("tenant", self.tenant.as_deref());
        push("category", self.category);
        push("actor", self.actor);
        push("provider", self.provider.as_deref());
        push("review", self.review);
        let from = self.from.map(format_time);
        let to = self.to.map(format_time);
        push("from", from.as_deref());
        push("to", to.as_deref());
        push("q", self.text.as_deref());
        pairs
    }

    /// `key=value&…`, URL-encoded; empty for the default filter.
    pub fn query_string(&self) -> String {
        encode(&self.pairs())
    }

    /// The query string with one more pair (e.g. a view or a cursor).
    pub fn query_with(&self, key: &'static str, value: &str) -> String {
        let mut pairs = self.pairs();
        pairs.push((key, value.to_owned()));
        encode(&pairs)
    }

    /// The same filter for one tenant and category (a group's link).
    pub fn narrowed(&self, tenant: &str, category: Option<&str>) -> Self {
        let mut narrowed = self.clone();
        narrowed.tenant = Some(tenant.to_owned());
        let categories: Vec<&'static str> = failure::ALL.iter().map(|f| f.category).collect();
        narrowed.category = category.and_then(|c| one_of(c, &categories));
        narrowed
    }

    /// Whether this is the default view: failures of every tenant, nothing else set.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

fn encode(pairs: &[(&'static str, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
        .finish()
}

/// `YYYY-MM-DDTHH:MM:SSZ`, the canonical form in links.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `at`, parsed from `raw` for parameter `param`, if it lies between [`EARLIEST`] and [`LATEST`]:
/// what the console and PostgreSQL can compute with (a year of -262143 overflowed the chart).
pub fn in_range(
    param: &'static str,
    raw: &str,
    at: DateTime<Utc>,
) -> Result<DateTime<Utc>, FilterError> {
    if (EARLIEST..=LATEST).contains(&at) {
        Ok(at)
    } else {
        Err(FilterError::OutOfRange {
            param,
            value: raw.chars().take(40).collect(),
        })
    }
}

/// A time in UTC, to the second: RFC 3339, `YYYY-MM-DDTHH:MM[:SS]` (as a datetime-local field
/// sends it) or a date. A date as the end of a range means the end of that day (the range's end
/// is exclusive). Fractions of a second are dropped, so that a filter reads back from its own
/// links ([`format_time`]) unchanged.
fn parse_time(
    param: &'static str,
    raw: &str,
    end_of_range: bool,
) -> Result<DateTime<Utc>, FilterError> {
    let bad = || FilterError::Time {
        param,
        value: raw.chars().take(40).collect(),
    };
    parse_time_exactly(raw, end_of_range)
        .and_then(|t| t.with_nanosecond(0))
        .ok_or_else(bad)
}

fn parse_time_exactly(raw: &str, end_of_range: bool) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(raw, format) {
            return Some(t.and_utc());
        }
    }
    let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok()?;
    let start = date.and_hms_opt(0, 0, 0)?.and_utc();
    if end_of_range {
        start.checked_add_signed(TimeDelta::days(1))
    } else {
        Some(start)
    }
}

impl Cursor {
    /// Opaque to the browser: base64url of `microseconds.uuid`.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "{}.{}",
            self.started_at.timestamp_micros(),
            self.id.simple()
        ))
    }

    pub fn decode(raw: &str) -> Result<Self, FilterError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(raw)
            .map_err(|_| FilterError::Cursor)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| FilterError::Cursor)?;
        let (micros, id) = text.split_once('.').ok_or(FilterError::Cursor)?;
        let micros: i64 = micros.parse().map_err(|_| FilterError::Cursor)?;
        let started_at = DateTime::from_timestamp_micros(micros)
            .filter(|t| (EARLIEST..=LATEST).contains(t))
            .ok_or(FilterError::Cursor)?;
        Ok(Self {
            started_at,
            id: Uuid::parse_str(id).map_err(|_| FilterError::Cursor)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn raw(pairs: &[(&str, &str)]) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    }

    #[test]
    fn an_empty_query_means_failures_of_every_tenant() {
        let request = Request::from_query("").unwrap();
        assert_eq!(request.filter, Filter::default());
        assert!(request.filter.failures_only());
        assert_eq!(request.view, View::List);
        assert!(request.cursor.is_none());
    }

    #[test]
    fn a_filter_survives_the_round_trip_through_its_query_string() {
        let query = raw(&[
            ("status", "all"),
            ("tenant", "acme"),
            ("category", "invalid_client"),
            ("actor", "tenant_admin"),
            ("provider", "gusto"),
            ("review", "open"),
            ("from", "2026-11-01"),
            ("to", "2026-11-02T10:30"),
            ("q", "req_123 & more"),
        ]);
        let filter = Request::from_query(&query).unwrap().filter;
        assert_eq!(filter.tenant.as_deref(), Some("acme"));
        assert_eq!(
            filter.to.map(format_time).as_deref(),
            Some("2026-11-02T10:30:00Z")
        );
        let again = Request::from_query(&filter.query_string()).unwrap().filter;
        assert_eq!(again, filter);
    }

    #[test]
    fn a_date_as_the_end_of_a_range_includes_that_day() {
        let filter = Request::from_query("to=2026-11-02").unwrap().filter;
        assert_eq!(
            filter.to.map(format_time).as_deref(),
            Some("2026-11-03T00:00:00Z")
        );
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        for (query, error) in [
            ("status=maybe", FilterError::Status("maybe".into())),
            ("category=nope", FilterError::Category("nope".into())),
            ("actor=god", FilterError::Actor("god".into())),
            ("review=done", FilterError::Review("done".into())),
            (
                "provider=Gusto%27--",
                FilterError::Provider("Gusto'--".into()),
            ),
            (
                "from=yesterday",
                FilterError::Time {
                    param: "from",
                    value: "yesterday".into(),
                },
            ),
            ("from=2026-11-02&to=2026-11-01", FilterError::Range),
            ("cursor=%%%", FilterError::Cursor),
            ("status=all&status=failed", FilterError::Malformed),
            ("cursor=abc", FilterError::Cursor),
            ("view=pie", FilterError::View("pie".into())),
        ] {
            assert_eq!(Request::from_query(query).unwrap_err(), error, "{query}");
        }
        assert!(matches!(
            Request::from_query("tenant=Not%20A%20Slug").unwrap_err(),
            FilterError::Tenant(_)
        ));
        let long = "x".repeat(MAX_TEXT + 1);
        assert_eq!(
            Request::from_query(&format!("q={long}")).unwrap_err(),
            FilterError::Text
        );
    }

    #[test]
    fn times_outside_2000_to_2100_are_refused_naming_the_parameter() {
        for (query, param, value) in [
            ("to=-262143-01-05", "to", "-262143-01-05"),
            ("from=1999-12-31T23:59:59Z", "from", "1999-12-31T23:59:59Z"),
            ("from=%2B262142-12-31", "from", "+262142-12-31"),
            ("to=2101-01-01T00:00:01Z", "to", "2101-01-01T00:00:01Z"),
        ] {
            let error = Request::from_query(query).unwrap_err();
            assert_eq!(
                error,
                FilterError::OutOfRange {
                    param,
                    value: value.into()
                },
                "{query}"
            );
            assert!(
                error.to_string().starts_with(&format!("{param}=")),
                "{error}"
            );
        }
        let edges = Request::from_query("from=2000-01-01&to=2100-12-31").unwrap();
        assert_eq!(edges.filter.from, Some(EARLIEST));
        assert_eq!(edges.filter.to, Some(LATEST));
        let out = Cursor {
            started_at: DateTime::from_timestamp(-1, 0).unwrap(),
            id: Uuid::nil(),
        };
        assert_eq!(Cursor::decode(&out.encode()), Err(FilterError::Cursor));
    }

    #[test]
    fn times_are_kept_to_the_second_so_links_read_back_the_same() {
        let filter = Request::from_query("from=2026-11-02T10:30:15.999%2B01:00")
            .unwrap()
            .filter;
        assert_eq!(
            filter.from.map(format_time).as_deref(),
            Some("2026-11-02T09:30:15Z")
        );
    }

    /// A time as an operator (or an attacker) might type it: a date of any year chrono can hold,
    /// a datetime-local value around the accepted range, RFC 3339 with a fraction and an offset.
    fn time() -> impl Strategy<Value = String> {
        prop_oneof![
            (-262_000i32..262_000, 1u32..13, 1u32..29).prop_map(|(y, m, d)| if y > 9999 {
                format!("+{y}-{m:02}-{d:02}")
            } else {
                format!("{y:04}-{m:02}-{d:02}")
            }),
            (1990i32..2110, 1u32..13, 1u32..29, 0u32..24, 0u32..60)
                .prop_map(|(y, m, d, h, mi)| format!("{y}-{m:02}-{d:02}T{h:02}:{mi:02}")),
            (1990i32..2110, 0u32..1_000_000_000, -14i32..15).prop_map(|(y, ns, off)| {
                let zone = if off == 0 {
                    "Z".to_owned()
                } else {
                    format!("{off:+03}:00")
                };
                format!("{y}-06-30T23:59:59.{ns:09}{zone}")
            }),
        ]
    }

    /// A query string of the console's own parameters (each present or not, mostly valid), plus
    /// one pair of arbitrary text.
    fn console_query() -> impl Strategy<Value = String> {
        use proptest::option::of;
        use proptest::sample::select;
        let cursor = any::<i64>()
            .prop_map(|n| URL_SAFE_NO_PAD.encode(format!("{n}.{}", Uuid::nil().simple())));
        (
            of(select(vec!["all", "failed"])),
            of(time()),
            of(time()),
            of(any::<String>()),
            of(select(vec!["list", "groups", "trends"])),
            of(cursor),
            of((any::<String>(), any::<String>())),
        )
            .prop_map(|(status, from, to, q, view, cursor, extra)| {
                let mut pairs: Vec<(String, String)> = Vec::new();
                let mut push = |key: &str, value: Option<String>| {
                    if let Some(value) = value {
                        pairs.push((key.to_owned(), value));
                    }
                };
                push("status", status.map(str::to_owned));
                push("from", from);
                push("to", to);
                push("q", q);
                push("view", view.map(str::to_owned));
                push("cursor", cursor);
                pairs.extend(extra);
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(pairs)
                    .finish()
            })
    }

    proptest! {
        #[test]
        fn any_query_string_is_parsed_or_refused_and_what_parses_is_a_sane_window(
            query in prop_oneof![console_query(), any::<String>()],
            now_secs in EARLIEST.timestamp()..LATEST.timestamp(),
        ) {
            let Ok(request) = Request::from_query(&query) else {
                return Ok(());
            };
            let filter = &request.filter;
            for t in [filter.from, filter.to].into_iter().flatten() {
                prop_assert!((EARLIEST..=LATEST).contains(&t), "{t} from {query:?}");
            }
            if let (Some(from), Some(to)) = (filter.from, filter.to) {
                prop_assert!(from < to, "{query:?}");
            }
            let again = Request::from_query(&filter.query_string());
            prop_assert_eq!(again.map(|r| r.filter), Ok(filter.clone()), "{}", query);
            let now = DateTime::from_timestamp(now_secs, 0).unwrap_or(EARLIEST);
            let (from, to, bucket) = crate::console::chart::window(filter.from, filter.to, now);
            prop_assert!(
                from < to || (filter.from.is_some() && filter.to.is_none()),
                "{from} .. {to} from {query:?}"
            );
            let chart = crate::console::chart::build(&[], from, to, bucket);
            prop_assert!(chart.bars.len() <= crate::console::chart::MAX_BUCKETS as usize + 1);
        }
    }

    #[test]
    fn a_cursor_is_opaque_and_round_trips() {
        let cursor = Cursor {
            started_at: DateTime::from_timestamp_micros(1_764_300_000_123_456).unwrap(),
            id: Uuid::new_v4(),
        };
        let encoded = cursor.encode();
        assert!(!encoded.contains(&cursor.id.to_string()));
        assert_eq!(Cursor::decode(&encoded).unwrap(), cursor);
    }
}
