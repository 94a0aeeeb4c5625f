//! A tenant's Finch application credentials: input rules, sealed storage, opening, and the
//! "Test credentials" check against Finch.
//!
//! The client secret is write-only (SECURITY.md AC-4): it is sealed through the vault, bound to
//! its own `finch_credentials` row, and only its last four characters are kept in the clear for
//! display. Saving a new secret stores a new version and erases the previous envelope
//! ([`credentials::replace`]).
//!
//! A blank secret in the settings form means "keep the current one" — allowed only while a
//! secret is stored and the client id stays the same, because a secret belongs to exactly one
//! client id at Finch.

use secrecy::{ExposeSecret as _, SecretString};
use uuid::Uuid;

use crate::db::models::credentials::{self, Credentials, NewCredentials};
use crate::db::models::keyring;
use crate::finch::client::{Answer, AppCredentials, FinchClient, FinchError};
use crate::finch::wire::{CreateConnectSessionRequest, Product, SandboxMode};
use crate::vault::{Purpose, RowContext, Vault, VaultError};

/// Longest client id (the column allows as much).
pub const MAX_CLIENT_ID_LEN: usize = 255;
/// Longest client secret accepted.
pub const MAX_CLIENT_SECRET_LEN: usize = 1024;
/// A secret shorter than this shows no characters at all: four of a short secret are too much.
pub const MIN_LEN_TO_SHOW_LAST4: usize = 16;
/// Lifetime of the Connect session a test creates: the shortest Finch allows.
pub const TEST_SESSION_MINUTES: u32 = 1;
/// Longest piece of Finch's error message repeated to the admin.
const MAX_FINCH_MESSAGE: usize = 300;

/// Why submitted credentials cannot be saved. `Display` is a sentence for the admin and never
/// contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("Enter the client ID from the Finch dashboard.")]
    ClientIdMissing,
    #[error("The client ID is {len} characters long; the limit is {MAX_CLIENT_ID_LEN}.")]
    ClientIdTooLong { len: usize },
    #[error(
        "The client ID contains a control character (such as a tab or line break); paste it again without one."
    )]
    ClientIdControl,
    #[error("Enter the client secret from the Finch dashboard.")]
    SecretMissing,
    #[error("The client secret is {len} characters long; the limit is {MAX_CLIENT_SECRET_LEN}.")]
    SecretTooLong { len: usize },
    #[error(
        "The client secret contains a control character (such as a tab or line break); paste it again without one."
    )]
    SecretControl,
    #[error(
        "The client secret starts or ends with a space; paste it again without the surrounding spaces."
    )]
    SecretSurroundingWhitespace,
    #[error(
        "Enter the client secret that belongs to the new client ID: the stored secret belongs to the current one."
    )]
    SecretRequiredForNewClientId,
}

/// Trims surrounding whitespace (an identifier shown back to the admin) and checks the rules.
pub fn parse_client_id(raw: &str) -> Result<String, InputError> {
    let id = raw.trim();
    if id.is_empty() {
        return Err(InputError::ClientIdMissing);
    }
    let len = id.chars().count();
    if len > MAX_CLIENT_ID_LEN {
        return Err(InputError::ClientIdTooLong { len });
    }
    if id.chars().any(char::is_control) {
        return Err(InputError::ClientIdControl);
    }
    Ok(id.to_owned())
}

/// A submitted secret field: `None` when left blank. The secret is never trimmed (it is never
/// shown back, so a silent change could not be noticed); surrounding spaces are refused instead.
pub fn parse_client_secret(raw: SecretString) -> Result<Option<SecretString>, InputError> {
    let secret = raw.expose_secret();
    if secret.is_empty() {
        return Ok(None);
    }
    let len = secret.chars().count();
    if len > MAX_CLIENT_SECRET_LEN {
        return Err(InputError::SecretTooLong { len });
    }
    if secret.chars().any(char::is_control) {
        return Err(InputError::SecretControl);
    }
    if secret.starts_with(char::is_whitespace) || secret.ends_with(char::is_whitespace) {
        return Err(InputError::SecretSurroundingWhitespace);
    }
    Ok(Some(raw))
}

/// What saving the form does to the credentials.
#[derive(Debug)]
pub enum Change {
    /// Blank secret, same client id: the current version stays.
    Keep,
    /// A new version with this client id and secret.
    NewVersion {
        client_id_changed: bool,
        secret: SecretString,
    },
}

/// Decides between keeping the current credentials and storing a new version.
pub fn plan(
    current: Option<&Credentials>,
    client_id: &str,
    secret: Option<SecretString>,
) -> Result<Change, InputError> {
    let client_id_changed = current.is_none_or(|c| c.client_id != client_id);
    match (secret, current) {
        (Some(secret), _) => Ok(Change::NewVersion {
            client_id_changed,
            secret,
        }),
        (None, None) => Err(InputError::SecretMissing),
        (None, Some(_)) if client_id_changed => Err(InputError::SecretRequiredForNewClientId),
        (None, Some(_)) => Ok(Change::Keep),
    }
}

/// The characters shown after `••••`: the last four, or none for a short secret.
pub fn last_four(secret: &SecretString) -> String {
    let secret = secret.expose_secret();
    let len = secret.chars().count();
    if len < MIN_LEN_TO_SHOW_LAST4 {
        return String::new();
    }
    secret.chars().skip(len - 4).collect()
}

/// Storing or opening credentials failed.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("sealing or opening the client secret failed: {0}")]
    Vault(#[from] VaultError),
    #[error("this credentials version has no secret any more (it was replaced)")]
    Erased,
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

/// Seals `secret` for a new credentials row of `tenant_id`, stores it as the new current
/// version (erasing the previous envelope) and counts the key wrap. Returns the new version.
/// Call inside a transaction whose scope covers the tenant.
pub async fn store(
    conn: &mut diesel_async::AsyncPgConnection,
    vault: &Vault,
    tenant_id: Uuid,
    client_id: &str,
    secret: &SecretString,
    created_by: Option<Uuid>,
) -> Result<i32, CredentialsError> {
    let row_id = Uuid::new_v4();
    let sealed = vault.seal(
        &row_context(tenant_id, row_id),
        secret.expose_secret().as_bytes(),
    )?;
    let version = credentials::replace(
        conn,
        &NewCredentials {
            id: row_id,
            tenant_id,
            client_id,
            secret_kek_id: sealed.kek_id.as_str(),
            secret_envelope: &sealed.envelope,
            secret_last4: &last_four(secret),
            created_by,
        },
    )
    .await?;
    keyring::count_wrap(conn, sealed.kek_id.as_str()).await?;
    Ok(version)
}

/// Opens the client secret of a credentials row.
pub fn open_secret(vault: &Vault, row: &Credentials) -> Result<SecretString, CredentialsError> {
    let envelope = row
        .secret_envelope
        .as_deref()
        .ok_or(CredentialsError::Erased)?;
    Ok(vault.open_string(&row_context(row.tenant_id, row.id), envelope)?)
}

/// The AAD identity of a client secret: its own credentials row, so an envelope copied to
/// another row (or tenant) does not open.
pub fn row_context(tenant_id: Uuid, row_id: Uuid) -> RowContext {
    RowContext::new(Purpose::FinchClientSecret, tenant_id, row_id)
}

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
                        .map(|b| sanitize(&b.message))
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

/// Finch's message as data: no control characters, bounded length.
fn sanitize(message: &str) -> String {
    let mut clean: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_FINCH_MESSAGE)
        .collect();
    if message.chars().count() > MAX_FINCH_MESSAGE {
        clean.push('…');
    }
    clean.trim().to_owned()
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::finch::wire::FinchErrorBody;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s)
    }

    #[test]
    fn client_ids_are_trimmed_and_checked() {
        assert_eq!(parse_client_id("  abc-123 "), Ok("abc-123".to_owned()));
        assert_eq!(parse_client_id("   "), Err(InputError::ClientIdMissing));
        assert_eq!(
            parse_client_id(&"a".repeat(256)),
            Err(InputError::ClientIdTooLong { len: 256 })
        );
        assert!(parse_client_id(&"a".repeat(255)).is_ok());
        assert_eq!(parse_client_id("ab\tc"), Err(InputError::ClientIdControl));
        assert_eq!(parse_client_id("a\u{0}b"), Err(InputError::ClientIdControl));
    }

    #[test]
    fn secrets_are_checked_but_never_changed() {
        assert!(matches!(parse_client_secret(secret("")), Ok(None)));
        let kept = parse_client_secret(secret("s3cr3t with inner space"))
            .ok()
            .flatten()
            .map(|s| s.expose_secret().to_owned());
        assert_eq!(kept.as_deref(), Some("s3cr3t with inner space"));
        for (raw, expected) in [
            ("x".repeat(1025), InputError::SecretTooLong { len: 1025 }),
            ("abc\ndef".to_owned(), InputError::SecretControl),
            ("abc\u{1b}def".to_owned(), InputError::SecretControl),
            (
                " abcdef".to_owned(),
                InputError::SecretSurroundingWhitespace,
            ),
            (
                "abcdef ".to_owned(),
                InputError::SecretSurroundingWhitespace,
            ),
        ] {
            assert_eq!(parse_client_secret(secret(&raw)).err(), Some(expected));
        }
        assert!(parse_client_secret(secret(&"x".repeat(1024))).is_ok());
    }

    #[test]
    fn no_input_error_message_contains_what_was_typed() {
        let typed = "abc\ndef-VERY-SECRET";
        let error = parse_client_secret(secret(typed))
            .err()
            .map(|e| e.to_string());
        assert!(error.is_some_and(|m| !m.contains("VERY-SECRET")));
    }

    fn stored(client_id: &str) -> Credentials {
        Credentials {
            id: Uuid::new_v4(),
            tenant_id: Uuid::new_v4(),
            version: 1,
            client_id: client_id.to_owned(),
            secret_kek_id: Some("k1".into()),
            secret_envelope: Some(vec![1]),
            secret_last4: "wxyz".into(),
            created_by: None,
            created_at: chrono::Utc::now(),
            replaced_at: None,
        }
    }

    #[test]
    fn a_blank_secret_keeps_the_current_one_only_for_the_same_client_id() {
        let current = stored("id-1");
        assert!(matches!(
            plan(Some(&current), "id-1", None),
            Ok(Change::Keep)
        ));
        assert_eq!(
            plan(Some(&current), "id-2", None).err(),
            Some(InputError::SecretRequiredForNewClientId)
        );
        assert_eq!(
            plan(None, "id-1", None).err(),
            Some(InputError::SecretMissing)
        );
        assert!(matches!(
            plan(Some(&current), "id-1", Some(secret("new"))),
            Ok(Change::NewVersion {
                client_id_changed: false,
                ..
            })
        ));
        assert!(matches!(
            plan(None, "id-1", Some(secret("new"))),
            Ok(Change::NewVersion {
                client_id_changed: true,
                ..
            })
        ));
    }

    #[test]
    fn only_the_last_four_characters_of_a_long_secret_are_shown() {
        assert_eq!(last_four(&secret("0123456789abcdef")), "cdef");
        assert_eq!(last_four(&secret("ßßßßßßßßßßßß€1üx")), "€1üx");
        assert_eq!(last_four(&secret("0123456789abcde")), "");
        assert_eq!(last_four(&secret("abc")), "");
    }

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
