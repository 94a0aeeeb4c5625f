//! The API's JSON shapes (and their OpenAPI schemas). Never a Finch token, a client secret or an
//! API key: these types have no field that could hold one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::db::models::{attempts::Attempt, connections::Connection};

/// A connection's status in finchgate.
pub const CONNECTION_STATUSES: &[&str] = &[
    "active",
    "pending",
    "processing",
    "reauth_required",
    "error",
    "disconnected",
];

/// A Finch connection of the tenant.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConnectionOut {
    /// finchgate's id of the connection.
    pub id: Uuid,
    /// Finch's id of the connection.
    pub finch_connection_id: String,
    /// The tenant's id for its customer (set for connections made through a connect link).
    pub customer_id: Option<String>,
    pub customer_name: Option<String>,
    /// The payroll provider, as Finch names it (e.g. `gusto`).
    pub provider_id: String,
    pub company_id: Option<String>,
    /// Finch products the connection was granted.
    pub products: Vec<String>,
    /// One of: active, pending, processing, reauth_required, error, disconnected.
    pub status: String,
    pub status_message: Option<String>,
    pub connected_at: DateTime<Utc>,
    pub disconnected_at: Option<DateTime<Utc>>,
    pub last_status_check_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Connection> for ConnectionOut {
    fn from(c: Connection) -> Self {
        Self {
            id: c.id,
            finch_connection_id: c.finch_connection_id,
            customer_id: c.customer_id,
            customer_name: c.customer_name,
            provider_id: c.provider_id,
            company_id: c.company_id,
            products: c.products,
            status: c.status,
            status_message: c.status_message,
            connected_at: c.connected_at,
            disconnected_at: c.disconnected_at,
            last_status_check_at: c.last_status_check_at,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// A page of connections.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConnectionList {
    pub data: Vec<ConnectionOut>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// One exchange attempt of the tenant's ledger.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AttemptOut {
    pub id: Uuid,
    /// Where the attempt stopped (callback, exchange, store, …).
    pub stage: String,
    /// redirect or embedded.
    pub flow_kind: Option<String>,
    pub is_reauth: bool,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub latency_ms: Option<i32>,
    /// success, failure, unknown_outcome; `null` while running.
    pub outcome: Option<String>,
    /// The failure's category, when it failed.
    pub category: Option<String>,
    /// Who can fix a failure (user, tenant, provider, finch, finchgate).
    pub actor: Option<String>,
    /// Finch's HTTP status, when Finch answered.
    pub finch_status: Option<i16>,
    pub finch_code: Option<String>,
    pub finch_request_id: Option<String>,
    pub provider_id: Option<String>,
    /// The connection it made or refreshed.
    pub connection_id: Option<Uuid>,
    /// What the person in the flow was told.
    pub message: Option<String>,
}

impl From<Attempt> for AttemptOut {
    fn from(a: Attempt) -> Self {
        Self {
            id: a.id,
            stage: a.stage,
            flow_kind: a.flow_kind,
            is_reauth: a.is_reauth,
            started_at: a.started_at,
            finished_at: a.finished_at,
            latency_ms: a.latency_ms,
            outcome: a.outcome,
            category: a.category,
            actor: a.actor,
            finch_status: a.finch_status,
            finch_code: a.finch_code,
            finch_request_id: a.finch_request_id,
            provider_id: a.provider_id,
            connection_id: a.connection_id,
            message: a.shown_to_user,
        }
    }
}

/// A page of the ledger.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AttemptList {
    pub data: Vec<AttemptOut>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/connections` query parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConnectionListParams {
    /// `next_cursor` of the previous page; omit for the first page.
    pub cursor: Option<String>,
    /// Rows per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// Only this customer's connections.
    pub customer_id: Option<String>,
    /// Only connections in this status.
    pub status: Option<String>,
    /// Only connections to this provider (Finch's provider id).
    pub provider: Option<String>,
}

/// A connect link's status, as [`crate::db::models::links::Link::status`] derives it.
pub const LINK_STATUSES: &[&str] = &[
    "open",
    "opened",
    "completed",
    "failed",
    "expired",
    "revoked",
];

/// A connect link of the tenant. Never its token: the URL is returned once, by the create.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LinkOut {
    pub id: Uuid,
    /// The tenant's id for its customer.
    pub customer_id: String,
    pub customer_name: String,
    /// Finch products the customer is asked for.
    pub products: Vec<String>,
    /// `finch` or `provider` (Finch's sandbox), or `null` for production.
    pub sandbox: Option<String>,
    /// `redirect` or `embedded`.
    pub flow: String,
    /// Where the customer's browser goes after the callback (with `connection_id` and `status`).
    pub return_uri: Option<String>,
    /// One of: open, opened, completed, failed, expired, revoked.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The connection it made (or reconnected), once completed.
    pub connection_id: Option<Uuid>,
    /// The last failed exchange attempt (`/api/v1/attempts`), when the status is `failed`.
    pub attempt_id: Option<Uuid>,
    /// The connection a reconnect link reconnects.
    pub reconnect_connection_id: Option<Uuid>,
}

impl From<crate::connect::link::LinkView> for LinkOut {
    fn from(l: crate::connect::link::LinkView) -> Self {
        Self {
            id: l.id,
            customer_id: l.customer_id,
            customer_name: l.customer_name,
            products: l.products,
            sandbox: l.sandbox,
            flow: l.flow,
            return_uri: l.return_uri,
            status: l.status,
            created_at: l.created_at,
            expires_at: l.expires_at,
            connection_id: l.connection_id,
            attempt_id: l.attempt_id,
            reconnect_connection_id: l.reconnect_connection_id,
        }
    }
}

/// A new link and its URL `{public_url}/c/{token}`: send the URL to the customer. It is
/// returned this once (and by a replay of the same `Idempotency-Key` within 24 hours).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LinkCreated {
    #[serde(flatten)]
    pub link: LinkOut,
    /// The link to send to the customer. A secret: whoever has it can connect as the customer.
    pub url: String,
}

/// A page of links.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LinkList {
    pub data: Vec<LinkOut>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/links` query parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LinkListParams {
    /// `next_cursor` of the previous page; omit for the first page.
    pub cursor: Option<String>,
    /// Rows per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// Only this customer's links.
    pub customer_id: Option<String>,
    /// Only links in this status (open, opened, completed, failed, expired, revoked).
    pub status: Option<String>,
}

/// `POST /api/v1/links`: a link for one customer.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkCreateIn {
    /// The tenant's id for its customer (1 to 255 characters); the connection carries it.
    /// Optional for a reconnect link (the connection's is used).
    #[serde(default)]
    pub customer_id: Option<String>,
    /// Shown to the customer on the link's page. Optional for a reconnect link.
    #[serde(default)]
    pub customer_name: Option<String>,
    /// Finch products to ask for, e.g. `["company", "directory"]` (at least one).
    #[serde(default)]
    pub products: Vec<String>,
    /// `finch` or `provider` for Finch's sandbox; omit for production.
    #[serde(default)]
    pub sandbox: Option<String>,
    /// `redirect` (default: Finch Connect in the customer's tab) or `embedded` (in an iframe on
    /// finchgate's page).
    #[serde(default)]
    pub flow: Option<String>,
    /// Redirect flow: which of the tenant's whitelisted redirect URIs Finch returns to, exactly
    /// as whitelisted; default the first one whitelisted.
    #[serde(default)]
    pub redirect_uri: Option<String>,
    /// Where the customer's browser goes after the callback; must be on the tenant's whitelist
    /// of return URIs, exactly. Omit to leave the customer on finchgate's page.
    #[serde(default)]
    pub return_uri: Option<String>,
    /// 1 to 30 days (default 7).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 30)]
    pub expires_in_days: Option<i64>,
    /// Makes a reconnect link for this connection (finchgate's id): the customer fixes it.
    #[serde(default)]
    pub reconnect_connection_id: Option<Uuid>,
}
