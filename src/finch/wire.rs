//! Serde types of Finch's wire format, shared by the production client and the sandbox emulator.
//!
//! Sources are summarised in `shared/finch-api.md`. Two rules shape these types:
//!
//! * Anything that holds a secret (an access token, a client secret, an authorization code) is a
//!   [`SecretString`] in the types the production client *deserializes into*, so it cannot be
//!   logged or serialized by accident. `SecretString` deliberately has no `Serialize`; a request
//!   that must carry a secret ([`TokenRequest`]) borrows the exposed values only for the moment
//!   it is encoded and redacts them in `Debug`.
//! * Response types parse leniently: Finch adds fields and enum values over time, and failing to
//!   parse a token response after the code was consumed would lose the connection. Unknown fields
//!   are ignored and the response enums carry an `Unknown` catch-all.

use std::fmt;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// The only Finch API version any source shows; sent as [`FINCH_API_VERSION_HEADER`].
pub const FINCH_API_VERSION: &str = "2020-09-17";
/// Request header naming the API version; required on every API call.
pub const FINCH_API_VERSION_HEADER: &str = "Finch-API-Version";
/// Response header carrying Finch's request id (log it; Finch support asks for it).
pub const FINCH_REQUEST_ID_HEADER: &str = "Finch-Request-Id";
/// `name` of the `window.postMessage` data Finch Connect sends to the embedding page.
pub const CONNECT_MESSAGE_NAME: &str = "finch-auth-message-v2";

pub use crate::domain::products::Product;
pub use crate::domain::sandbox::SandboxMode;
pub use crate::domain::string_enum::UnknownVariant;
use crate::domain::string_enum::string_enum;

/// Finch's error body: `{code, name, finch_code, message}`; 429 bodies add `statusCode`/`status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinchErrorBody {
    /// The HTTP status, repeated.
    pub code: u16,
    /// Broad, programmatic category, e.g. `invalid_grant_error`.
    pub name: String,
    /// Finer detail, e.g. `invalid_request`; `null` for many errors.
    #[serde(default)]
    pub finch_code: Option<String>,
    /// Human-readable explanation.
    #[serde(default)]
    pub message: String,
    /// Only on 429 responses.
    #[serde(
        rename = "statusCode",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub status_code: Option<u16>,
    /// Only on 429 responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

string_enum! {
    /// `integration.auth_method` of a Connect session, and `authentication_type` of a sandbox
    /// connection.
    AuthMethod {
        Assisted => "assisted",
        Credential => "credential",
        Oauth => "oauth",
        ApiToken => "api_token",
    }
}

string_enum! {
    /// A recordkeeper for the `recordkeeping` product.
    Recordkeeper {
        Voya => "voya",
        Empower => "empower",
        Fidelity => "fidelity",
        Transamerica => "transamerica",
    }
}

/// `client_type` of a token: which kind of Finch application issued it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientType {
    Development,
    Production,
    Sandbox,
    /// A value this build does not know yet.
    #[serde(other)]
    Unknown,
}

/// `connection_type`: an external provider, or Finch-generated sandbox data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionType {
    Finch,
    Provider,
    /// A value this build does not know yet.
    #[serde(other)]
    Unknown,
}

/// Status of a connection (and, with `disconnected`, of an entity) as reported by `/introspect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatusType {
    Pending,
    Processing,
    Connected,
    ErrorNoAccountSetup,
    ErrorPermissions,
    Reauth,
    Disconnected,
    /// A value this build does not know yet.
    #[serde(other)]
    Unknown,
}

/// Authentication method types as reported by `/introspect` (adds `api_credential`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthenticationMethodType {
    Assisted,
    Credential,
    ApiToken,
    ApiCredential,
    Oauth,
    /// A value this build does not know yet.
    #[serde(other)]
    Unknown,
}

impl From<AuthMethod> for AuthenticationMethodType {
    fn from(m: AuthMethod) -> Self {
        match m {
            AuthMethod::Assisted => Self::Assisted,
            AuthMethod::Credential => Self::Credential,
            AuthMethod::Oauth => Self::Oauth,
            AuthMethod::ApiToken => Self::ApiToken,
        }
    }
}

/// `integration` of a Connect session: skips provider selection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Integration {
    pub provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_method: Option<AuthMethod>,
}

/// `recordkeeping` of a Connect session (only with the `recordkeeping` product).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordkeepingConfig {
    pub recordkeeper: Recordkeeper,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<String>,
}

/// Body of `POST /connect/sessions` (HTTP Basic auth; response 201 [`ConnectSessionResponse`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateConnectSessionRequest {
    /// Your identifier for the customer, 1–255 characters; echoed in the token response.
    pub customer_id: String,
    /// 1–255 characters.
    pub customer_name: String,
    /// At least one.
    pub products: Vec<Product>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<String>,
    /// Needed for the redirect flow; omit for the embedded flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// 1…129 600; Finch's default changed over time, so set it explicitly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes_to_expire: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration: Option<Integration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recordkeeping: Option<RecordkeepingConfig>,
}

/// Body of `POST /connect/sessions/reauthenticate` (HTTP Basic auth; response 201).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReauthenticateSessionRequest {
    pub connection_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// Default 43 200 (30 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes_to_expire: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub products: Option<Vec<Product>>,
}

/// Response of both session endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectSessionResponse {
    pub session_id: String,
    /// `https://connect.tryfinch.com/authorize?session=<id>`.
    pub connect_url: String,
}

/// Body of `POST /auth/token`, borrowed from the caller for the moment it is encoded.
///
/// It borrows rather than owns so the exposed secrets live no longer than the request; `Debug`
/// redacts the code and the secret.
#[derive(Clone, Copy, Serialize)]
pub struct TokenRequest<'a> {
    pub code: &'a str,
    pub client_id: &'a str,
    pub client_secret: &'a str,
    /// Redirect flow only: the exact URI the session was created with. Omit for embedded codes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<&'a str>,
}

impl fmt::Debug for TokenRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRequest")
            .field("code", &"[REDACTED]")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}

/// Response of `POST /auth/token` (200).
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    pub access_token: SecretString,
    /// `"bearer"`; absent in old schema revisions.
    #[serde(default)]
    pub token_type: Option<String>,
    pub connection_id: String,
    pub client_type: ClientType,
    pub connection_type: ConnectionType,
    /// Added 2025-10; absent from older responses.
    #[serde(default)]
    pub entity_ids: Vec<String>,
    /// Strings rather than [`Product`]: a product this build does not know must not make a
    /// consumed code's response unparseable.
    #[serde(default)]
    pub products: Vec<String>,
    pub provider_id: String,
    /// Deprecated: use `connection_id`.
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub company_id: Option<String>,
    /// The `customer_id` given when the Connect session was created.
    #[serde(default)]
    pub customer_id: Option<String>,
    #[serde(default)]
    pub customer_name: Option<String>,
}

/// `connection_status` of `/introspect` and of its authentication methods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionStatus {
    pub status: ConnectionStatusType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_sync: Option<String>,
}

/// One entry of `authentication_methods` in `/introspect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthenticationMethod {
    #[serde(rename = "type")]
    pub kind: AuthenticationMethodType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_status: Option<ConnectionStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub products: Option<Vec<String>>,
}

/// One entry of `entities` in `/introspect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entity {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub source_id: Option<String>,
    pub status: ConnectionStatusType,
}

/// Response of `GET /introspect` (Bearer). Holds no secret, so both sides share it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntrospectResponse {
    /// Finch's id of the token being introspected (not the token).
    pub id: String,
    pub client_id: String,
    pub client_type: ClientType,
    pub connection_id: String,
    pub connection_status: ConnectionStatus,
    pub connection_type: ConnectionType,
    #[serde(default)]
    pub products: Vec<String>,
    pub provider_id: String,
    /// Deprecated: use `connection_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_methods: Option<Vec<AuthenticationMethod>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entities: Option<Vec<Entity>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual: Option<bool>,
    /// Deprecated: use `provider_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payroll_provider_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// Response of `POST /disconnect`: `{"status": "success"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisconnectResponse {
    pub status: String,
}

/// Body of `POST /sandbox/connections` (HTTP Basic auth): a sandbox connection without Connect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxConnectionRequest {
    pub provider_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_type: Option<AuthMethod>,
    /// Default 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub products: Option<Vec<Product>>,
}

/// Response of `POST /sandbox/connections`.
#[derive(Debug, Clone, Deserialize)]
pub struct SandboxConnectionResponse {
    pub access_token: SecretString,
    #[serde(default)]
    pub token_type: Option<String>,
    pub connection_id: String,
    pub entity_id: String,
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub company_id: Option<String>,
    pub authentication_type: AuthenticationMethodType,
    #[serde(default)]
    pub products: Vec<String>,
    pub provider_id: String,
}

#[cfg(test)]
mod tests {

    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn products_round_trip_and_reject_unknown_values() {
        for p in Product::ALL {
            assert_eq!(p.as_str().parse::<Product>().unwrap(), *p);
        }
        let err = "payroll".parse::<Product>().unwrap_err().to_string();
        assert!(
            err.contains("`payroll`") && err.contains("pay_statement"),
            "{err}"
        );
    }

    #[test]
    fn a_token_response_tolerates_unknown_fields_and_values() {
        let body = r#"{"access_token":"t-1","connection_id":"c","client_type":"staging",
            "connection_type":"provider","provider_id":"gusto","products":["company","new_thing"],
            "brand_new_field":1}"#;
        let parsed: TokenResponse = serde_json::from_str(body).unwrap();
        assert_eq!(parsed.access_token.expose_secret(), "t-1");
        assert_eq!(parsed.client_type, ClientType::Unknown);
        assert!(parsed.entity_ids.is_empty());
        assert!(!format!("{parsed:?}").contains("t-1"));
    }

    #[test]
    fn a_token_request_redacts_secrets_in_debug_but_sends_them() {
        let req = TokenRequest {
            code: "the-code",
            client_id: "id",
            client_secret: "the-secret",
            redirect_uri: None,
        };
        let debug = format!("{req:?}");
        assert!(!debug.contains("the-code") && !debug.contains("the-secret"));
        let json = serde_json::to_value(req).unwrap();
        assert_eq!(json["client_secret"], "the-secret");
        assert!(json.get("redirect_uri").is_none());
    }

    #[test]
    fn the_error_body_keeps_a_null_finch_code() {
        let body = FinchErrorBody {
            code: 400,
            name: "invalid_grant_error".into(),
            finch_code: None,
            message: "m".into(),
            status_code: None,
            status: None,
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"code":400,"name":"invalid_grant_error","finch_code":null,"message":"m"}"#
        );
    }
}
