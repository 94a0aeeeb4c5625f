//! "Test credentials": asks Finch whether a client id and secret work, by creating the cheapest
//! thing that authenticates them (a one-minute Connect session), and says what happened in
//! words an admin can act on.

use secrecy::SecretString;
use uuid::Uuid;

use crate::config::Limits;
use crate::db::Scope;
use crate::db::models::tenants::Tenant;
use crate::db::models::users::ROLE_TENANT_ADMIN;
use crate::db::models::{audit, credentials, rate_limits};
use crate::domain::products;
use crate::domain::sandbox::SandboxSetting;
use crate::domain::text;
use crate::error::AppError;
use crate::finch::client::{Answer, AppCredentials, FinchClient, FinchError};
use crate::finch::wire::{CreateConnectSessionRequest, Product, SandboxMode};
use crate::state::AppState;

/// Lifetime of the Connect session a test creates: the shortest Finch allows.
pub const TEST_SESSION_MINUTES: u32 = 1;
/// Longest piece of Finch's error message repeated to the admin.
const MAX_FINCH_MESSAGE: usize = 300;

/// What "Test credentials" found out, in words an admin can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestOutcome {
    /// Finch created the (short-lived) Connect session.
    Accepted {
        status: u16,
        request_id: Option<String>,
    },
    /// 401 `invalid_client_error`: wrong client id or secret.
    Rejected { request_id: Option<String> },
    /// Another 4xx: Finch refused the request and said why.
    Refused {
        status: u16,
        message: String,
        request_id: Option<String>,
    },
    /// 5xx, a timeout, no connection, or an unreadable answer: nothing learnt about the credentials.
    Unavailable { request_id: Option<String> },
}

impl TestOutcome {
    pub fn from_result<T>(result: &Result<Answer<T>, FinchError>) -> Self {
        let error = match result {
            Ok(answer) => {
                return Self::Accepted {
                    status: answer.status,
                    request_id: answer.request_id.clone(),
                };
            }
            Err(error) => error,
        };
        let request_id = error.request_id().map(str::to_owned);
        match error {
            FinchError::Api { status, body, .. } if (400..500).contains(status) => {
                let name = body.as_ref().map(|b| b.name.as_str());
                if *status == 401 && name == Some("invalid_client_error") {
                    return Self::Rejected { request_id };
                }
                Self::Refused {
                    status: *status,
                    message: body
                        .as_ref()
                        .map(|b| text::excerpt(&b.message, MAX_FINCH_MESSAGE))
                        .filter(|m| !m.is_empty())
                        .unwrap_or_else(|| "no explanation was given".to_owned()),
                    request_id,
                }
            }
            _ => Self::Unavailable { request_id },
        }
    }

    pub fn is_success(&self) -> bool {
        matches!(self, Self::Accepted { .. })
    }

    /// A short, stable name for the audit log.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Accepted { .. } => "accepted",
            Self::Rejected { .. } => "rejected",
            Self::Refused { .. } => "refused",
            Self::Unavailable { .. } => "unavailable",
        }
    }

    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Accepted { request_id, .. }
            | Self::Rejected { request_id }
            | Self::Refused { request_id, .. }
            | Self::Unavailable { request_id } => request_id.as_deref(),
        }
    }

    pub fn finch_status(&self) -> Option<u16> {
        match self {
            Self::Accepted { status, .. } | Self::Refused { status, .. } => Some(*status),
            Self::Rejected { .. } => Some(401),
            Self::Unavailable { .. } => None,
        }
    }

    /// The sentence shown to the admin, with Finch's request id when there is one.
    pub fn message(&self) -> String {
        let text = match self {
            Self::Accepted { .. } => "Finch accepted these credentials.".to_owned(),
            Self::Rejected { .. } => {
                "Finch rejected the client ID or secret — check them in the Finch dashboard."
                    .to_owned()
            }
            Self::Refused {
                status, message, ..
            } => format!("Finch refused the test request (HTTP {status}): {message}"),
            Self::Unavailable { .. } => "Finch could not be reached — try again later.".to_owned(),
        };
        match self.request_id() {
            Some(id) => format!("{text} Finch request id: {id}."),
            None => text,
        }
    }
}

/// What a test asks Finch for: a Connect session for the tenant itself.
pub struct TestRequest<'a> {
    pub tenant_id: Uuid,
    pub tenant_name: &'a str,
    pub products: Vec<Product>,
    pub sandbox: Option<SandboxMode>,
}

/// Asks Finch to create a one-minute Connect session with these credentials: the cheapest call
/// that authenticates them. No redirect URI, so nothing depends on the whitelist.
pub async fn test(
    finch: &FinchClient,
    client_id: &str,
    secret: &SecretString,
    request: TestRequest<'_>,
) -> TestOutcome {
    let body = CreateConnectSessionRequest {
        customer_id: request.tenant_id.to_string(),
        customer_name: request.tenant_name.to_owned(),
        products: request.products,
        customer_email: None,
        redirect_uri: None,
        minutes_to_expire: Some(TEST_SESSION_MINUTES),
        sandbox: request.sandbox,
        manual: None,
        integration: None,
        recordkeeping: None,
    };
    let app = AppCredentials {
        client_id,
        client_secret: secret,
    };
    TestOutcome::from_result(&finch.create_connect_session(&app, &body).await)
}

/// Why there was nothing to test.
#[derive(Debug)]
pub enum NotTested {
    /// No credentials are saved yet.
    NothingSaved,
    /// The tenant's default products are not a usable selection (the sentence says why).
    Products(String),
    /// Tested [`Limits::CREDENTIAL_TESTS_PER_TENANT`] times in the window already.
    TooOften,
}

/// "Test credentials" for `tenant`'s current credentials, by `user_id` from `ip`: asks Finch,
/// and records the outcome in the audit trail (with Finch's status and request id).
pub async fn run(
    state: &AppState,
    tenant: &Tenant,
    user_id: Uuid,
    ip: Option<String>,
) -> Result<Result<TestOutcome, NotTested>, AppError> {
    let tenant_id = tenant.id;
    let now = state.clock.now();
    // Each test asks Finch for a session with the tenant's credentials: counted per tenant.
    let key = format!("credentials-test:{tenant_id}");
    let (limit, window) = (Limits::CREDENTIAL_TESTS_PER_TENANT, Limits::WINDOW);
    let current = crate::db::run(&state.db, Scope::Tenant(tenant_id), async |conn| {
        if rate_limits::is_blocked(conn, &key, now).await? {
            return Ok(Err(NotTested::TooOften));
        }
        rate_limits::hit(conn, &key, now, window, limit).await?;
        credentials::current(conn, tenant_id).await.map(Ok)
    })
    .await?;
    let current = match current {
        Ok(current) => current,
        Err(not_tested) => return Ok(Err(not_tested)),
    };
    // No connection is held while Finch is asked.
    let Some(current) = current else {
        return Ok(Err(NotTested::NothingSaved));
    };
    let products = match products::parse(tenant.default_products.iter().map(String::as_str)) {
        Ok(products) => products,
        Err(problem) => return Ok(Err(NotTested::Products(problem.to_string()))),
    };
    let sandbox = SandboxSetting::parse(&tenant.finch_sandbox)
        .map_err(AppError::internal)?
        .to_wire();
    let secret = super::open_secret(&state.vault, &current).map_err(AppError::internal)?;
    let request = TestRequest {
        tenant_id,
        tenant_name: &tenant.name,
        products,
        sandbox,
    };
    let outcome = test(&state.finch, &current.client_id, &secret, request).await;
    drop(secret);
    if let TestOutcome::Unavailable { .. } = outcome {
        tracing::warn!(%tenant_id, "credentials test: Finch unavailable");
    }
    crate::db::run(&state.db, Scope::Tenant(tenant_id), async |conn| {
        let event = audit::Event::new(ROLE_TENANT_ADMIN, Some(user_id), "finch_credentials.tested")
            .tenant(tenant_id)
            .target("finch_credentials", current.id)
            .details(serde_json::json!({
                "outcome": outcome.label(),
                "credentials_version": current.version,
                "finch_status": outcome.finch_status(),
                "finch_request_id": outcome.request_id(),
            }))
            .ip(ip);
        audit::record(conn, event).await
    })
    .await?;
    Ok(Ok(outcome))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::finch::wire::FinchErrorBody;

    fn api_error(status: u16, name: &str, message: &str, request_id: Option<&str>) -> FinchError {
        FinchError::Api {
            status,
            body: Some(Box::new(FinchErrorBody {
                code: status,
                name: name.to_owned(),
                finch_code: None,
                message: message.to_owned(),
                status_code: None,
                status: None,
            })),
            request_id: request_id.map(str::to_owned),
            retry_after_seconds: None,
            latency: Duration::from_millis(5),
        }
    }

    fn outcome(error: FinchError) -> TestOutcome {
        TestOutcome::from_result::<()>(&Err(error))
    }

    #[test]
    fn test_outcomes_are_told_in_plain_words_with_the_request_id() {
        assert_eq!(
            TestOutcome::from_result(&Ok(Answer {
                value: (),
                status: 201,
                request_id: Some("req-1".into()),
                latency: Duration::from_millis(5),
            }))
            .message(),
            "Finch accepted these credentials. Finch request id: req-1."
        );
        assert_eq!(
            outcome(api_error(401, "invalid_client_error", "bad", Some("req-2"))).message(),
            "Finch rejected the client ID or secret — check them in the Finch dashboard. \
             Finch request id: req-2."
        );
        assert_eq!(
            outcome(api_error(
                400,
                "bad_request",
                "products: unknown\nvalue",
                None
            ))
            .message(),
            "Finch refused the test request (HTTP 400): products: unknown value"
        );
        assert_eq!(
            outcome(api_error(503, "server_error", "down", Some("req-3"))).message(),
            "Finch could not be reached — try again later. Finch request id: req-3."
        );
        assert_eq!(
            outcome(FinchError::Timeout {
                timeout: Duration::from_secs(30),
                latency: Duration::from_secs(30)
            })
            .message(),
            "Finch could not be reached — try again later."
        );
        assert_eq!(
            outcome(FinchError::Unreachable {
                detail: "refused".into(),
                attempts: 3
            })
            .label(),
            "unavailable"
        );
    }

    #[test]
    fn a_401_that_is_not_invalid_client_is_reported_with_finchs_message() {
        let outcome = outcome(api_error(
            401,
            "invalid_request_error",
            "missing header",
            None,
        ));
        assert_eq!(outcome.label(), "refused");
        assert!(outcome.message().contains("missing header"));
    }

    #[test]
    fn finchs_message_is_capped() {
        let long = "m".repeat(2000);
        let message = outcome(api_error(422, "unprocessable_request_error", &long, None)).message();
        assert!(message.chars().count() < MAX_FINCH_MESSAGE + 80);
        assert!(message.ends_with('…'));
    }
}
