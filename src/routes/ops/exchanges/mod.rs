//! `GET /ops/exchanges`: exchange attempts across tenants — the list (keyset pages), the groups
//! (`view=groups`) or the trend chart (`view=trends`) for the filter in the query string;
//! `GET /ops/exchanges.csv`: the filtered list as a streamed CSV; `GET /ops/`: to the list.

pub mod detail;
pub mod review;

use actix_session::Session;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};

use crate::console::chart::{self, Chart};
use crate::console::export;
use crate::console::filter::{self, Filter, FilterError, Request, View};
use crate::console::ledger::{self, GroupRow, ListRow};
use crate::db::{Scope, transaction};
use crate::domain::failure;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{Operator, PageContext, render, see_other};

/// The console's start: the failures list.
pub async fn root(_operator: Operator) -> HttpResponse {
    see_other("/ops/exchanges")
}

/// A bad filter is the operator's typo: a 400 page that says which value and why.
pub(super) fn bad_filter(error: FilterError) -> AppError {
    AppError::BadRequest(format!(
        "{error} Fix the filter (or clear it) and try again."
    ))
}

/// The filter form's current values.
struct FormValues {
    status: &'static str,
    tenant: String,
    category: &'static str,
    actor: &'static str,
    provider: String,
    review: &'static str,
    from: String,
    to: String,
    q: String,
}

impl FormValues {
    fn of(filter: &Filter) -> Self {
        Self {
            status: if filter.status == filter::Status::All {
                "all"
            } else {
                "failed"
            },
            tenant: filter.tenant.clone().unwrap_or_default(),
            category: filter.category.unwrap_or_default(),
            actor: filter.actor.unwrap_or_default(),
            provider: filter.provider.clone().unwrap_or_default(),
            review: filter.review.unwrap_or_default(),
            from: filter.from.map(filter::format_time).unwrap_or_default(),
            to: filter.to.map(filter::format_time).unwrap_or_default(),
            q: filter.text.clone().unwrap_or_default(),
        }
    }
}

/// A group with the link to its failures.
struct GroupView {
    group: GroupRow,
    href: String,
}

#[derive(Template)]
#[template(path = "ops/exchanges.html")]
struct ExchangesPage {
    page: PageContext,
    view: &'static str,
    form: FormValues,
    filtered: bool,
    rows: Vec<ListRow>,
    next: Option<String>,
    paged: bool,
    groups: Vec<GroupView>,
    chart: Option<Chart>,
    categories: Vec<&'static str>,
    actors: &'static [&'static str],
    review_states: &'static [&'static str],
    list_href: String,
    groups_href: String,
    trends_href: String,
    csv_href: String,
    /// The filter as hidden fields of the bulk-resolve form.
    hidden: Vec<(&'static str, String)>,
    as_of: String,
}

impl ExchangesPage {
    fn when(&self, t: &DateTime<Utc>) -> String {
        t.format("%Y-%m-%d %H:%M:%S").to_string()
    }

    fn selected(&self, current: &str, value: &str) -> &'static str {
        if current == value { "selected" } else { "" }
    }

    fn tab(&self, view: &str) -> &'static str {
        if self.view == view { "current" } else { "" }
    }
}

pub async fn list(
    operator: Operator,
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, AppError> {
    let Request {
        filter,
        cursor,
        view,
    } = Request::from_query(req.query_string()).map_err(bad_filter)?;
    let now = state.clock.now();
    let window = chart::window(filter.from, filter.to, now);
    let mut conn = state.db.get().await?;
    let (mut rows, groups, trend) = transaction(&mut conn, Scope::Operator, async |conn| {
        Ok::<_, diesel::result::Error>(match view {
            View::List => (
                ledger::page(conn, &filter, cursor, filter::PAGE_SIZE + 1).await?,
                Vec::new(),
                None,
            ),
            View::Groups => (Vec::new(), ledger::groups(conn, &filter, 100).await?, None),
            View::Trends => {
                let (from, to, bucket) = window;
                let rows = ledger::trend(conn, &filter, from, to, bucket).await?;
                (
                    Vec::new(),
                    Vec::new(),
                    Some(chart::build(&rows, from, to, bucket)),
                )
            }
        })
    })
    .await?;
    drop(conn);
    let has_more = i64::try_from(rows.len()).unwrap_or(i64::MAX) > filter::PAGE_SIZE;
    rows.truncate(usize::try_from(filter::PAGE_SIZE).unwrap_or(50));
    let next = has_more.then(|| rows.last()).flatten().map(|last| {
        format!(
            "/ops/exchanges?{}",
            filter.query_with("cursor", &last.cursor().encode())
        )
    });
    let query = filter.query_string();
    let page = ExchangesPage {
        page: PageContext::new(&session, &operator.0, None)?,
        view: match view {
            View::List => "list",
            View::Groups => "groups",
            View::Trends => "trends",
        },
        form: FormValues::of(&filter),
        filtered: !filter.is_default(),
        rows,
        next,
        paged: cursor.is_some(),
        groups: groups
            .into_iter()
            .map(|group| GroupView {
                href: format!(
                    "/ops/exchanges?{}",
                    filter
                        .narrowed(&group.tenant_slug, group.category.as_deref())
                        .query_string()
                ),
                group,
            })
            .collect(),
        chart: trend,
        categories: failure::ALL.iter().map(|f| f.category).collect(),
        actors: filter::ACTORS,
        review_states: filter::REVIEW_STATES,
        list_href: format!("/ops/exchanges?{query}"),
        groups_href: format!("/ops/exchanges?{}", filter.query_with("view", "groups")),
        trends_href: format!("/ops/exchanges?{}", filter.query_with("view", "trends")),
        csv_href: format!("/ops/exchanges.csv?{query}"),
        hidden: filter.pairs(),
        as_of: filter::format_time(now),
    };
    let mut response = render(&page)?;
    response.headers_mut().insert(
        CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// The filtered list as CSV, streamed in keyset batches (the cursor and view are ignored: the
/// export is the whole filtered set).
pub async fn csv(
    _operator: Operator,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let Request { filter, .. } = Request::from_query(req.query_string()).map_err(bad_filter)?;
    let name = format!(
        "finchgate-exchanges-{}.csv",
        state.clock.now().format("%Y%m%dT%H%M%SZ")
    );
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((CACHE_CONTROL, "no-store"))
        .insert_header((
            CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .streaming(export::stream(state.db.clone(), filter)))
}
