//! `POST /connect/sessions` and `POST /connect/sessions/reauthenticate`: Connect sessions.

use actix_web::{HttpRequest, HttpResponse, web};
use url::{Host, Url};

use super::{SharedData, authenticate_basic};
use crate::finch::wire::{
    AuthMethod, ConnectSessionResponse, ConnectionType, CreateConnectSessionRequest, Integration,
    Product, ReauthenticateSessionRequest, Recordkeeper, RecordkeepingConfig, SandboxMode,
};
use crate::sandbox::error::ApiError;
use crate::sandbox::input::JsonBody;
use crate::sandbox::providers;
use crate::sandbox::state::{Session, Shared};

/// Longest session Finch allows: 90 days, also the default for new sessions.
const MAX_MINUTES_TO_EXPIRE: u32 = 129_600;
/// Default lifetime of a reauthentication session: 30 days.
const REAUTH_DEFAULT_MINUTES: u32 = 43_200;

pub(crate) async fn create(
    req: HttpRequest,
    body: web::Bytes,
    shared: SharedData,
) -> Result<HttpResponse, ApiError> {
    let client_id = authenticate_basic(&req, &shared)?;
    let request = parse_create(&JsonBody::parse(&req, &body)?)?;
    let minutes = request.minutes_to_expire.unwrap_or(MAX_MINUTES_TO_EXPIRE);
    let session = Session {
        id: String::new(),
        client_id,
        customer_id: Some(request.customer_id),
        customer_name: Some(request.customer_name),
        customer_email: request.customer_email,
        products: request.products,
        redirect_uri: request.redirect_uri,
        connection_type: match request.sandbox {
            Some(SandboxMode::Finch) => ConnectionType::Finch,
            _ => ConnectionType::Provider,
        },
        manual: request.manual.unwrap_or(false),
        provider: request.integration.as_ref().map(|i| i.provider.clone()),
        auth_method: request.integration.and_then(|i| i.auth_method),
        reauth_connection_id: None,
        expires_at: shared.now() + chrono::Duration::minutes(i64::from(minutes)),
        form_token: String::new(),
        completed: false,
    };
    let session_id = shared.with(|s| s.add_session(session));
    created(&shared, session_id)
}

pub(crate) async fn reauthenticate(
    req: HttpRequest,
    body: web::Bytes,
    shared: SharedData,
) -> Result<HttpResponse, ApiError> {
    let client_id = authenticate_basic(&req, &shared)?;
    let request = parse_reauthenticate(&JsonBody::parse(&req, &body)?)?;
    let minutes = request.minutes_to_expire.unwrap_or(REAUTH_DEFAULT_MINUTES);
    let session_id = shared.with(|s| {
        let expires_at = s.now() + chrono::Duration::minutes(i64::from(minutes));
        let connection = s
            .connection_of(&client_id, &request.connection_id)
            .ok_or_else(|| {
                ApiError::item_not_found(format!(
                    "no connection {} exists for this application",
                    request.connection_id
                ))
            })?;
        if connection.disconnected {
            return Err(ApiError::bad_request(format!(
                "connection {} has been disconnected and cannot be reauthenticated; \
                 create a new Connect session instead",
                connection.id
            )));
        }
        let session = Session {
            id: String::new(),
            client_id: client_id.clone(),
            customer_id: connection.customer_id.clone(),
            customer_name: connection.customer_name.clone(),
            customer_email: connection.customer_email.clone(),
            products: request
                .products
                .clone()
                .unwrap_or_else(|| connection.products.clone()),
            redirect_uri: request.redirect_uri.clone(),
            connection_type: connection.connection_type,
            manual: connection.manual,
            provider: Some(connection.provider_id.clone()),
            auth_method: Some(connection.auth_method),
            reauth_connection_id: Some(connection.id.clone()),
            expires_at,
            form_token: String::new(),
            completed: false,
        };
        Ok(s.add_session(session))
    })?;
    created(&shared, session_id)
}

/// 201 `{session_id, connect_url}` with `connect_url = {base}/authorize?session={id}`.
fn created(shared: &Shared, session_id: String) -> Result<HttpResponse, ApiError> {
    let mut connect_url = shared.base_url().join("authorize").map_err(|e| {
        tracing::error!(error = %e, "cannot build the connect_url");
        ApiError::server_error(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR)
    })?;
    connect_url
        .query_pairs_mut()
        .append_pair("session", &session_id);
    Ok(HttpResponse::Created().json(ConnectSessionResponse {
        session_id,
        connect_url: connect_url.into(),
    }))
}

/// Validates a create-session body field by field (finch-api.md §1.1).
fn parse_create(body: &JsonBody) -> Result<CreateConnectSessionRequest, ApiError> {
    let customer_id = body.string("customer_id", 1..=255)?;
    let customer_name = body.string("customer_name", 1..=255)?;
    let products = body
        .opt_products("products")?
        .ok_or_else(|| ApiError::bad_request("products is required"))?;
    let customer_email = body.opt_string("customer_email", 3..=320)?;
    if let Some(email) = &customer_email
        && !email.contains('@')
    {
        return Err(ApiError::bad_request(
            "customer_email must be an email address",
        ));
    }
    let redirect_uri = parse_redirect_uri(body)?;
    let minutes_to_expire =
        body.opt_whole_number("minutes_to_expire", 1..=MAX_MINUTES_TO_EXPIRE)?;
    let sandbox = body.opt_enum::<SandboxMode>("sandbox")?;
    let manual = body.opt_bool("manual")?;
    let integration = match body.opt_object("integration")? {
        None => None,
        Some(obj) => {
            let provider = obj.string("provider", 1..=255)?;
            if providers::find(&provider).is_none() {
                return Err(ApiError::bad_request(format!(
                    "integration.provider `{provider}` is not a provider of this sandbox; \
                     expected one of: {}",
                    providers::known_ids()
                )));
            }
            Some(Integration {
                provider,
                auth_method: obj.opt_enum::<AuthMethod>("auth_method")?,
            })
        }
    };
    let recordkeeping = match body.opt_object("recordkeeping")? {
        None => None,
        Some(_) if !products.contains(&Product::Recordkeeping) => {
            return Err(ApiError::bad_request(
                "recordkeeping can only be given when products includes recordkeeping",
            ));
        }
        Some(obj) => Some(RecordkeepingConfig {
            recordkeeper: obj
                .opt_enum::<Recordkeeper>("recordkeeper")?
                .ok_or_else(|| ApiError::bad_request("recordkeeping.recordkeeper is required"))?,
            plan_id: obj.opt_string("plan_id", 1..=255)?,
        }),
    };
    Ok(CreateConnectSessionRequest {
        customer_id,
        customer_name,
        products,
        customer_email,
        redirect_uri,
        minutes_to_expire,
        sandbox,
        manual,
        integration,
        recordkeeping,
    })
}

/// Validates a reauthenticate body (finch-api.md §1.1).
fn parse_reauthenticate(body: &JsonBody) -> Result<ReauthenticateSessionRequest, ApiError> {
    Ok(ReauthenticateSessionRequest {
        connection_id: body.string("connection_id", 1..=255)?,
        redirect_uri: parse_redirect_uri(body)?,
        minutes_to_expire: body.opt_whole_number("minutes_to_expire", 1..=MAX_MINUTES_TO_EXPIRE)?,
        products: body.opt_products("products")?,
    })
}

/// An optional `redirect_uri`: absolute, `https` (or `http` on a loopback host, as Finch allows
/// for local development), without a fragment.
fn parse_redirect_uri(body: &JsonBody) -> Result<Option<String>, ApiError> {
    let Some(raw) = body.opt_string("redirect_uri", 1..=2048)? else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::bad_request(
            "redirect_uri must be an absolute https URL without a fragment \
             (http is allowed for localhost and loopback addresses)",
        )
    };
    let url = Url::parse(&raw).map_err(|_| invalid())?;
    let loopback = match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
    if !scheme_ok || url.fragment().is_some() || url.host().is_none() {
        return Err(invalid());
    }
    // Keep the caller's exact string: the token exchange compares byte for byte.
    Ok(Some(raw))
}
