//! Connect links: a tenant asks one customer (an employer) to connect — or to reconnect a broken
//! connection — without a finchgate account.
//!
//! The tenant's side ([`create`], [`list`], [`get`], [`revoke`]) takes the tenant and an
//! [`Author`] (an admin, or later an API key) and returns plain [`LinkView`]s; the link's URL is
//! returned once, by [`create`]. The customer's side ([`open`], [`continue_flow`],
//! [`after_callback`]) is called by the public pages `/c/{token}` and by the tenant's callback:
//! "Continue" starts a Finch Connect session at that moment, bound to the browser that pressed it
//! (a later Continue supersedes the earlier flow), and the callback finishes the link's current
//! flow only.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::Actor;
use super::callback::Outcome;
use super::start::{self, FlowKind, StartRequest, Started};
use crate::db::Scope;
use crate::db::models::flows::{self, Transition};
use crate::db::models::links::{self, Link, NewLink};
use crate::db::models::{audit, connections, redirect_uris, tenants};
use crate::domain::failure;
use crate::error::AppError;
use crate::finch::wire::{Product, SandboxMode};
use crate::primitives::{looks_like_token, random_token, sha256};
use crate::state::AppState;

/// How long a link lives unless asked otherwise.
pub const DEFAULT_DAYS: i64 = 7;
/// The longest a link may live.
pub const MAX_DAYS: i64 = 30;
/// Most links a list returns.
pub const LIST_LIMIT: i64 = 200;

/// Who creates or revokes a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Author {
    /// A tenant admin (a user id).
    Admin(Uuid),
    /// A tenant API key (its id).
    ApiKey(Uuid),
}

impl Author {
    fn user_id(self) -> Option<Uuid> {
        match self {
            Self::Admin(id) => Some(id),
            Self::ApiKey(_) => None,
        }
    }

    fn key_id(self) -> Option<Uuid> {
        match self {
            Self::Admin(_) => None,
            Self::ApiKey(id) => Some(id),
        }
    }

    fn audit_event(self, action: &str) -> audit::Event<'_> {
        match self {
            Self::Admin(id) => audit::Event::new("tenant_admin", Some(id), action),
            Self::ApiKey(id) => audit::Event::new("api_key", None, action)
                .details(serde_json::json!({ "api_key": id })),
        }
    }
}

/// What a link is created with.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub customer_id: String,
    pub customer_name: String,
    pub products: Vec<Product>,
    pub sandbox: Option<SandboxMode>,
    pub flow: FlowKind,
    /// Must be on the tenant's whitelist as a return URI, byte for byte.
    pub return_uri: Option<String>,
    /// 1 to [`MAX_DAYS`]; default [`DEFAULT_DAYS`].
    pub expires_in_days: Option<i64>,
    /// A reconnect link for this connection (finchgate id): its customer and products are used.
    pub reconnect_connection_id: Option<Uuid>,
}

/// A link as the tenant (UI or API) sees it. Never its token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LinkView {
    pub id: Uuid,
    pub customer_id: String,
    pub customer_name: String,
    pub products: Vec<String>,
    pub sandbox: Option<String>,
    pub flow: String,
    pub return_uri: Option<String>,
    /// `open`, `opened`, `completed`, `failed`, `expired` or `revoked`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The connection it created (or reconnected), once completed.
    pub connection_id: Option<Uuid>,
    /// The last failed attempt (ledger row), when the status is `failed`.
    pub attempt_id: Option<Uuid>,
    /// The connection a reconnect link reconnects.
    pub reconnect_connection_id: Option<Uuid>,
}

impl LinkView {
    fn of(link: &Link, now: DateTime<Utc>) -> Self {
        Self {
            id: link.id,
            customer_id: link.customer_id.clone(),
            customer_name: link.customer_name.clone(),
            products: link.products.clone(),
            sandbox: link.sandbox.clone(),
            flow: link.flow.clone(),
            return_uri: link.return_uri.clone(),
            status: link.status(now).to_owned(),
            created_at: link.created_at,
            expires_at: link.expires_at,
            connection_id: link.connection_id,
            attempt_id: link.failed_attempt_id,
            reconnect_connection_id: link.reconnect_connection_id,
        }
    }
}

/// A new link and its URL, which is shown (or returned) this once and never again.
#[derive(Debug)]
pub struct Created {
    pub link: LinkView,
    pub url: String,
}

/// Why a link operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// No such link in this tenant (another tenant's is not found either).
    #[error("not found")]
    NotFound,
    /// The request names a field that cannot be used (an API answers 422 naming it).
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    App(#[from] AppError),
}

impl From<diesel::result::Error> for LinkError {
    fn from(error: diesel::result::Error) -> Self {
        Self::App(error.into())
    }
}

impl From<crate::db::DbError> for LinkError {
    fn from(error: crate::db::DbError) -> Self {
        Self::App(error.into())
    }
}

impl From<LinkError> for AppError {
    fn from(error: LinkError) -> Self {
        match error {
            LinkError::NotFound => Self::NotFound,
            LinkError::Invalid { message, .. } => Self::BadRequest(message),
            LinkError::App(error) => error,
        }
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> LinkError {
    LinkError::Invalid {
        field,
        message: message.into(),
    }
}

fn check_text(field: &'static str, label: &str, value: &str) -> Result<(), LinkError> {
    if value.is_empty() || value.chars().count() > 255 || value.chars().any(char::is_control) {
        return Err(invalid(
            field,
            format!("{label} must be 1 to 255 printable characters."),
        ));
    }
    Ok(())
}

/// The URL of a link token: `{public_url}/c/{token}`.
pub fn url_of(state: &AppState, token: &str) -> String {
    format!(
        "{}/c/{token}",
        state.settings.public_url.as_str().trim_end_matches('/')
    )
}

/// Creates a link for one customer of `tenant_id`. The return URI must be one of the tenant's
/// whitelisted return URIs (exactly), the redirect URI (redirect flow) one of its redirect URIs.
pub async fn create(
    state: &AppState,
    tenant_id: Uuid,
    author: Author,
    request: CreateRequest,
) -> Result<Created, LinkError> {
    let now = state.clock.now();
    let days = request.expires_in_days.unwrap_or(DEFAULT_DAYS);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(invalid(
            "expires_in_days",
            format!("A link lives 1 to {MAX_DAYS} days."),
        ));
    }
    if request.products.is_empty() {
        return Err(invalid("products", "Choose at least one product."));
    }
    let mut products: Vec<String> = request
        .products
        .iter()
        .map(|p| p.as_str().to_owned())
        .collect();
    products.dedup();
    let token = random_token().map_err(AppError::from)?;
    let token_hash = sha256(&token);
    let scope = Scope::Tenant(tenant_id);
    let link = crate::db::run(&state.db, scope, async |conn| {
        let (mut customer_id, mut customer_name) =
            (request.customer_id.clone(), request.customer_name.clone());
        if let Some(connection_id) = request.reconnect_connection_id {
            let Some(connection) = connections::find(conn, tenant_id, connection_id).await? else {
                return Ok(Err(LinkError::NotFound));
            };
            if let Some(id) = connection.customer_id {
                customer_id = id;
            }
            if let Some(name) = connection.customer_name {
                customer_name = name;
            }
        }
        if let Err(error) = check_text("customer_id", "Customer ID", &customer_id)
            .and_then(|()| check_text("customer_name", "Customer name", &customer_name))
        {
            return Ok(Err(error));
        }
        let return_uri = match &request.return_uri {
            None => None,
            Some(uri) => {
                let whitelist =
                    redirect_uris::list_kind(conn, tenant_id, redirect_uris::KIND_RETURN).await?;
                match whitelist.into_iter().find(|u| &u.uri == uri) {
                    Some(entry) => Some(entry.uri),
                    None => {
                        return Ok(Err(invalid(
                            "return_uri",
                            "The return URI is not on this workspace's whitelist of return \
                             URIs (Settings). Add it there first, exactly as it will be used.",
                        )));
                    }
                }
            }
        };
        let redirect_uri_id = match request.flow {
            FlowKind::Embedded => None,
            FlowKind::Redirect { redirect_uri_id } => {
                let whitelist = redirect_uris::list(conn, tenant_id).await?;
                if !whitelist.iter().any(|u| u.id == redirect_uri_id) {
                    return Ok(Err(invalid(
                        "redirect_uri_id",
                        "Choose a redirect URI from this workspace's whitelist (Settings).",
                    )));
                }
                Some(redirect_uri_id)
            }
        };
        let link = links::insert(
            conn,
            &NewLink {
                id: Uuid::new_v4(),
                tenant_id,
                token_hash: &token_hash,
                customer_id: &customer_id,
                customer_name: &customer_name,
                products: &products,
                sandbox: request.sandbox.map(|s| s.as_str()),
                flow: if redirect_uri_id.is_some() {
                    "redirect"
                } else {
                    "embedded"
                },
                redirect_uri_id,
                return_uri: return_uri.as_deref(),
                reconnect_connection_id: request.reconnect_connection_id,
                created_by_user: author.user_id(),
                created_by_key: author.key_id(),
                created_at: now,
                expires_at: now + Duration::days(days),
            },
        )
        .await?;
        let details = serde_json::json!({
            "customer_id": link.customer_id,
            "expires_at": link.expires_at,
            "reconnect_connection_id": link.reconnect_connection_id,
            "return_uri": link.return_uri.is_some(),
        });
        let mut event = author
            .audit_event("link.created")
            .tenant(tenant_id)
            .target("connect_link", link.id);
        event.details = merge(event.details, details);
        audit::record(conn, event).await?;
        Ok(Ok(link))
    })
    .await??;
    Ok(Created {
        link: LinkView::of(&link, now),
        url: url_of(state, &token),
    })
}

fn merge(base: serde_json::Value, more: serde_json::Value) -> serde_json::Value {
    match (base, more) {
        (serde_json::Value::Object(mut a), serde_json::Value::Object(b)) => {
            a.extend(b);
            serde_json::Value::Object(a)
        }
        (serde_json::Value::Null, more) => more,
        (base, _) => base,
    }
}

/// The tenant's links, newest first (at most [`LIST_LIMIT`]).
pub async fn list(state: &AppState, tenant_id: Uuid) -> Result<Vec<LinkView>, LinkError> {
    let now = state.clock.now();
    let rows = crate::db::run(&state.db, Scope::Tenant(tenant_id), async |conn| {
        links::list(conn, tenant_id, LIST_LIMIT).await
    })
    .await?;
    Ok(rows.iter().map(|l| LinkView::of(l, now)).collect())
}

/// A page of the tenant's links (the API's list): newest first, narrowed by `filter`, at most
/// `limit` after the sort key `after`.
pub async fn page(
    state: &AppState,
    tenant_id: Uuid,
    filter: &links::Filter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<LinkView>, LinkError> {
    let now = state.clock.now();
    let rows = crate::db::run(&state.db, Scope::Tenant(tenant_id), async |conn| {
        links::page(conn, tenant_id, filter, now, after, limit).await
    })
    .await?;
    Ok(rows.iter().map(|l| LinkView::of(l, now)).collect())
}

/// One of the tenant's links.
pub async fn get(state: &AppState, tenant_id: Uuid, id: Uuid) -> Result<LinkView, LinkError> {
    let now = state.clock.now();
    crate::db::run(&state.db, Scope::Tenant(tenant_id), async |conn| {
        links::find(conn, tenant_id, id).await
    })
    .await?
    .map(|l| LinkView::of(&l, now))
    .ok_or(LinkError::NotFound)
}

/// Revokes one of the tenant's links: from now on its page says it no longer works, and a flow
/// it started cannot finish. Revoking a revoked or completed link changes nothing.
pub async fn revoke(
    state: &AppState,
    tenant_id: Uuid,
    author: Author,
    id: Uuid,
) -> Result<LinkView, LinkError> {
    let now = state.clock.now();
    let link = crate::db::run(&state.db, Scope::Tenant(tenant_id), async |conn| {
        let Some(link) = links::find_for_update(conn, tenant_id, id).await? else {
            return Ok(None);
        };
        if links::revoke(conn, tenant_id, id, author.user_id(), now).await? {
            if let Some(flow_id) = link.current_flow_id {
                let revoked = Transition::to("pending", "expired");
                flows::finish(conn, tenant_id, flow_id, revoked, now).await?;
            }
            audit::record(
                conn,
                author
                    .audit_event("link.revoked")
                    .tenant(tenant_id)
                    .target("connect_link", id),
            )
            .await?;
        }
        links::find(conn, tenant_id, id).await
    })
    .await?;
    link.map(|l| LinkView::of(&l, now))
        .ok_or(LinkError::NotFound)
}

/// A link as its public page shows it.
#[derive(Debug, Clone)]
pub struct Public {
    pub link: Link,
    pub tenant_name: String,
    pub tenant_slug: String,
}

/// The usable link a token names, or `None` — whether the token is malformed, unknown, expired,
/// revoked or completed: the customer sees one "this link no longer works" page for all.
async fn usable(state: &AppState, token: &str) -> Result<Option<Public>, AppError> {
    if !looks_like_token(token) {
        return Ok(None);
    }
    let hash = sha256(token);
    let now = state.clock.now();
    let found = crate::db::run(&state.db, Scope::System, async |conn| {
        let Some(link) = links::find_by_token_hash(conn, &hash).await? else {
            return Ok(None);
        };
        let tenant = tenants::find(conn, link.tenant_id).await?;
        Ok(tenant.map(|t| (link, t)))
    })
    .await?;
    Ok(found.and_then(|(link, tenant)| {
        (link.is_usable(now) && tenant.status == "active").then_some(Public {
            link,
            tenant_name: tenant.name,
            tenant_slug: tenant.slug,
        })
    }))
}

/// `GET /c/{token}`: the link, if it still works; the first view marks it opened.
pub async fn open(state: &AppState, token: &str) -> Result<Option<Public>, AppError> {
    let Some(public) = usable(state, token).await? else {
        return Ok(None);
    };
    let (tenant_id, id, now) = (public.link.tenant_id, public.link.id, state.clock.now());
    if public.link.opened_at.is_none() {
        crate::db::run(&state.db, Scope::Tenant(tenant_id), async |conn| {
            links::mark_opened(conn, tenant_id, id, now).await
        })
        .await?;
    }
    Ok(Some(public))
}

/// What "Continue" leads to.
pub enum Continued {
    /// The link no longer works: nothing was started.
    NoLongerWorks,
    /// Finch Connect was started for this browser: the flow's next step, and the tenant.
    Started {
        started: Started,
        tenant_slug: String,
        tenant_name: String,
    },
    /// The session could not be created (the attempt is in the ledger): where to send the
    /// browser.
    Finished(Finish),
}

/// `POST /c/{token}`: starts Finch Connect for the browser bound by `binding` (a fresh secret in
/// its link cookie). A later Continue supersedes this one: only the link's current flow may
/// finish.
pub async fn continue_flow(
    state: &AppState,
    token: &str,
    binding: &str,
) -> Result<Continued, AppError> {
    let Some(public) = usable(state, token).await? else {
        return Ok(Continued::NoLongerWorks);
    };
    let link = &public.link;
    let tenant_id = link.tenant_id;
    let scope = Scope::Tenant(tenant_id);
    let reauth = match link.reconnect_connection_id {
        None => None,
        Some(connection_id) => {
            let connection = crate::db::run(&state.db, scope, async |conn| {
                connections::find(conn, tenant_id, connection_id).await
            })
            .await?;
            match connection {
                Some(c) if c.status != "disconnected" => Some((c.id, c.finch_connection_id)),
                _ => return Ok(Continued::NoLongerWorks),
            }
        }
    };
    let request = StartRequest {
        products: link
            .products
            .iter()
            .filter_map(|p| p.parse().ok())
            .collect(),
        flow: match link.redirect_uri_id {
            Some(redirect_uri_id) if link.flow == "redirect" => {
                FlowKind::Redirect { redirect_uri_id }
            }
            _ => FlowKind::Embedded,
        },
        customer_id: link.customer_id.clone(),
        customer_name: link.customer_name.clone(),
        sandbox: link.sandbox.as_deref().and_then(|s| s.parse().ok()),
        reauth,
    };
    let actor = Actor::link(tenant_id, link.id);
    let started = start::start(state, actor, binding, request).await?;
    let flow_id = match &started {
        Started::Redirect { flow_id, .. } | Started::Embedded { flow_id, .. } => Some(*flow_id),
        Started::Failed { .. } => None,
    };
    let now = state.clock.now();
    let link_id = link.id;
    // The last Continue wins: the flow it started becomes the link's current one, and the flow
    // of an earlier Continue (another browser, or this one before) can no longer finish.
    let still_usable = crate::db::run(&state.db, scope, async |conn| {
        let Some(locked) = links::find_for_update(conn, tenant_id, link_id).await? else {
            return Ok(false);
        };
        if !locked.is_usable(now) {
            if let Some(flow_id) = flow_id {
                let gone = Transition::to("pending", "expired");
                flows::finish(conn, tenant_id, flow_id, gone, now).await?;
            }
            return Ok(false);
        }
        if let Some(flow_id) = flow_id {
            if let Some(previous) = locked.current_flow_id.filter(|p| *p != flow_id) {
                let superseded =
                    Transition::to("pending", "expired").category(failure::STATE_EXPIRED.category);
                flows::finish(conn, tenant_id, previous, superseded, now).await?;
            }
            links::set_current_flow(conn, tenant_id, link_id, flow_id).await?;
        }
        Ok(true)
    })
    .await?;
    if !still_usable {
        return Ok(Continued::NoLongerWorks);
    }
    if let Started::Failed { attempt_id } = started {
        crate::db::run(&state.db, scope, async |conn| {
            links::record_failure(conn, tenant_id, link_id, attempt_id).await
        })
        .await?;
        return Ok(Continued::Finished(Finish {
            return_uri: link.return_uri.clone(),
            connection_id: link.reconnect_connection_id,
            status: FinishStatus::Failed,
        }));
    }
    Ok(Continued::Started {
        started,
        tenant_slug: public.tenant_slug,
        tenant_name: public.tenant_name,
    })
}

/// Where a link's customer goes once the callback is done: the return URI (or finchgate's own
/// page), told only the connection and whether it connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    pub return_uri: Option<String>,
    pub connection_id: Option<Uuid>,
    pub status: FinishStatus,
}

/// How a link's attempt ended, as its customer (and the return URI) is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishStatus {
    Connected,
    Failed,
    /// Another request is still finishing it (a double submit): finchgate's page says so.
    InProgress,
}

impl FinishStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::Failed => "failed",
            Self::InProgress => "in_progress",
        }
    }
}

impl Finish {
    /// `return_uri?connection_id=…&status=connected|failed` (the connection only when there is
    /// one), or `/c/done?status=…`. Never a code, a state or a token.
    pub fn location(&self) -> String {
        let status = self.status.as_str();
        let parsed = self
            .return_uri
            .as_deref()
            .filter(|_| self.status != FinishStatus::InProgress)
            .and_then(|u| url::Url::parse(u).ok());
        match parsed {
            Some(mut url) => {
                {
                    let mut query = url.query_pairs_mut();
                    if let Some(id) = self.connection_id {
                        query.append_pair("connection_id", &id.to_string());
                    }
                    query.append_pair("status", status);
                }
                url.to_string()
            }
            None => format!("/c/done?status={status}"),
        }
    }
}

/// Whether a flow of link `link_id` may still be finished by the callback: it is the link's
/// current flow (the last Continue) and the link still works.
pub async fn may_finish(
    state: &AppState,
    tenant_id: Uuid,
    link_id: Uuid,
    flow_id: Uuid,
) -> Result<bool, AppError> {
    let now = state.clock.now();
    let link = crate::db::run(&state.db, Scope::Tenant(tenant_id), async |conn| {
        links::find(conn, tenant_id, link_id).await
    })
    .await?;
    Ok(link.is_some_and(|l| l.current_flow_id == Some(flow_id) && l.is_usable(now)))
}

/// Records the callback's outcome on link `link_id` and says where its customer goes.
pub async fn after_callback(
    state: &AppState,
    tenant_id: Uuid,
    link_id: Uuid,
    outcome: &Outcome,
) -> Result<Finish, AppError> {
    let now = state.clock.now();
    let link = crate::db::run(&state.db, Scope::Tenant(tenant_id), async |conn| {
        match outcome {
            Outcome::Connected { connection_id } => {
                links::complete(conn, tenant_id, link_id, *connection_id, now).await?;
            }
            Outcome::Attempt { attempt_id } => {
                links::record_failure(conn, tenant_id, link_id, *attempt_id).await?;
            }
            Outcome::InProgress { .. } | Outcome::Confirm { .. } => {}
        }
        links::find(conn, tenant_id, link_id).await
    })
    .await?
    .ok_or(AppError::NotFound)?;
    Ok(match outcome {
        Outcome::Connected { connection_id } => Finish {
            return_uri: link.return_uri,
            connection_id: Some(*connection_id),
            status: FinishStatus::Connected,
        },
        Outcome::InProgress { .. } => Finish {
            return_uri: link.return_uri,
            connection_id: None,
            status: FinishStatus::InProgress,
        },
        Outcome::Attempt { .. } | Outcome::Confirm { .. } => Finish {
            return_uri: link.return_uri,
            connection_id: link.reconnect_connection_id,
            status: FinishStatus::Failed,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finish(return_uri: Option<&str>, connection: Option<Uuid>, status: FinishStatus) -> String {
        Finish {
            return_uri: return_uri.map(str::to_owned),
            connection_id: connection,
            status,
        }
        .location()
    }

    #[test]
    fn the_return_uri_gets_only_the_connection_and_the_status() {
        let id = Uuid::nil();
        assert_eq!(
            finish(
                Some("https://app.example/back"),
                Some(id),
                FinishStatus::Connected
            ),
            format!("https://app.example/back?connection_id={id}&status=connected")
        );
        assert_eq!(
            finish(
                Some("https://app.example/back?x=1"),
                None,
                FinishStatus::Failed
            ),
            "https://app.example/back?x=1&status=failed"
        );
    }

    #[test]
    fn without_a_return_uri_or_while_in_progress_the_customer_stays_on_finchgate() {
        assert_eq!(
            finish(None, Some(Uuid::nil()), FinishStatus::Connected),
            "/c/done?status=connected"
        );
        assert_eq!(
            finish(
                Some("https://app.example/back"),
                None,
                FinishStatus::InProgress
            ),
            "/c/done?status=in_progress"
        );
    }
}
