//! The CSV export of a filtered ledger view: the list's columns, streamed in keyset batches (each
//! its own short transaction on a pooled connection), cells made safe for spreadsheets.

use actix_web::web::Bytes;
use futures_util::Stream;

use super::filter::{Cursor, Filter};
use super::ledger::{self, ListRow};
use crate::db::{Pool, Scope, transaction};

/// Rows fetched per batch.
pub const BATCH: i64 = 1000;

pub const HEADER: &[&str] = &[
    "id",
    "started_at",
    "tenant",
    "stage",
    "outcome",
    "category",
    "actor",
    "provider",
    "finch_status",
    "finch_error_name",
    "finch_code",
    "message",
    "finch_request_id",
    "latency_ms",
    "review_state",
    "reviewed_by",
    "reviewed_at",
];

/// One CSV cell: a leading `=`, `+`, `-`, `@`, tab or carriage return (a formula to a
/// spreadsheet) gets a `'` in front; cells with a comma, quote or line break are quoted.
pub fn cell(value: &str) -> String {
    let guarded = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

fn line(cells: &[String]) -> String {
    let mut out = cells.iter().map(|c| cell(c)).collect::<Vec<_>>().join(",");
    out.push_str("\r\n");
    out
}

fn opt<T: ToString>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn header_line() -> String {
    line(&HEADER.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>())
}

pub fn row_line(row: &ListRow) -> String {
    line(&[
        row.id.to_string(),
        time(row.started_at),
        row.tenant_slug.clone(),
        row.stage.clone(),
        opt(row.outcome.as_deref()),
        opt(row.category.as_deref()),
        opt(row.actor.as_deref()),
        opt(row.provider_id.as_deref()),
        opt(row.finch_status),
        opt(row.finch_error_name.as_deref()),
        opt(row.finch_code.as_deref()),
        opt(row.message.as_deref()),
        opt(row.finch_request_id.as_deref()),
        opt(row.latency_ms),
        row.review_state.clone(),
        opt(row.reviewer.as_deref()),
        opt(row.reviewed_at.map(time)),
    ])
}

enum Next {
    Header,
    After(Option<Cursor>),
    Done,
}

/// The export as a stream of chunks: the header, then one chunk per batch.
pub fn stream(pool: Pool, filter: Filter) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::unfold(Next::Header, move |next| {
        let pool = pool.clone();
        let filter = filter.clone();
        async move {
            match next {
                Next::Done => None,
                Next::Header => Some((Ok(Bytes::from(header_line())), Next::After(None))),
                Next::After(after) => match batch(&pool, &filter, after).await {
                    Ok(rows) if rows.is_empty() => None,
                    Ok(rows) => {
                        let next = if i64::try_from(rows.len()).unwrap_or(i64::MAX) < BATCH {
                            Next::Done
                        } else {
                            Next::After(rows.last().map(ListRow::cursor))
                        };
                        let chunk: String = rows.iter().map(row_line).collect();
                        Some((Ok(Bytes::from(chunk)), next))
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "CSV export stopped");
                        Some((Err(std::io::Error::other("the export stopped")), Next::Done))
                    }
                },
            }
        }
    })
}

async fn batch(
    pool: &Pool,
    filter: &Filter,
    after: Option<Cursor>,
) -> Result<Vec<ListRow>, crate::db::DbError> {
    let mut conn = pool.get().await?;
    let rows = transaction(&mut conn, Scope::Operator, async |conn| {
        ledger::page(conn, filter, after, BATCH).await
    })
    .await?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused_and_separators_quoted() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("+1"), "'+1");
        assert_eq!(cell("-2"), "'-2");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell(""), "");
    }
}
