//! The production client for Finch's API: Connect sessions, the code exchange, introspect, disconnect.
//!
//! Its retry policy is deliberately not an SDK's (SECURITY.md OA-8, RL-3): an authorization code
//! is single-use, so a request is retried only when it provably never reached Finch (the TCP/TLS
//! connection could not be opened), at most twice, with jitter. A timeout after sending, a reset,
//! a 5xx, a 429 or any 4xx is final. Redirects are never followed; https is required except for
//! loopback (the sandbox emulator). Secrets travel only in bodies and headers, never in URLs.

use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, HeaderMap, HeaderValue, RETRY_AFTER, USER_AGENT};
use ring::rand::SecureRandom as _;
use secrecy::{ExposeSecret as _, SecretString};
use serde::de::DeserializeOwned;
use url::Url;

use crate::config::FinchSettings;
use crate::finch::wire::{
    ConnectSessionResponse, CreateConnectSessionRequest, DisconnectResponse, FINCH_API_VERSION,
    FINCH_API_VERSION_HEADER, FINCH_REQUEST_ID_HEADER, FinchErrorBody, IntrospectResponse,
    ReauthenticateSessionRequest, TokenRequest, TokenResponse,
};

/// Attempts when the connection cannot even be opened (1 + 2 retries).
pub const MAX_CONNECT_ATTEMPTS: u32 = 3;

/// A tenant's Finch application credentials.
pub struct AppCredentials<'a> {
    pub client_id: &'a str,
    pub client_secret: &'a SecretString,
}

/// A successful answer and what to log about it.
#[derive(Debug)]
pub struct Answer<T> {
    pub value: T,
    pub status: u16,
    pub request_id: Option<String>,
    pub latency: Duration,
}

/// Why a call to Finch did not succeed. Only [`FinchError::Unreachable`] is known not to have
/// reached Finch; every other kind may have been processed.
#[derive(Debug, thiserror::Error)]
pub enum FinchError {
    /// Finch answered with an error status (and, usually, its error body).
    #[error("Finch answered {status}{}", .body.as_ref().map(|b| format!(" {}", b.name)).unwrap_or_default())]
    Api {
        status: u16,
        body: Option<Box<FinchErrorBody>>,
        request_id: Option<String>,
        retry_after_seconds: Option<u64>,
        latency: Duration,
    },
    /// The connection could not be opened, after every allowed attempt: nothing reached Finch.
    #[error("Finch could not be reached ({detail})")]
    Unreachable { detail: String, attempts: u32 },
    /// The request was sent but no complete answer came within the timeout.
    #[error("Finch did not answer within {} s", .timeout.as_secs())]
    Timeout {
        timeout: Duration,
        latency: Duration,
    },
    /// The request was sent, then the connection broke before a complete answer.
    #[error("the connection to Finch broke before a complete answer")]
    ConnectionLost { latency: Duration },
    /// Finch answered 2xx with a body that is not what its API documents.
    #[error("Finch's answer could not be read (status {status})")]
    Malformed {
        status: u16,
        request_id: Option<String>,
        latency: Duration,
    },
    /// Finch answered with a redirect, which is never followed.
    #[error("Finch answered with a redirect ({status}), which is not followed")]
    Redirected {
        status: u16,
        request_id: Option<String>,
        latency: Duration,
    },
}

impl FinchError {
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Api { request_id, .. }
            | Self::Malformed { request_id, .. }
            | Self::Redirected { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. }
            | Self::Malformed { status, .. }
            | Self::Redirected { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn body(&self) -> Option<&FinchErrorBody> {
        match self {
            Self::Api { body, .. } => body.as_deref(),
            _ => None,
        }
    }

    pub fn latency(&self) -> Option<Duration> {
        match self {
            Self::Api { latency, .. }
            | Self::Timeout { latency, .. }
            | Self::ConnectionLost { latency }
            | Self::Malformed { latency, .. }
            | Self::Redirected { latency, .. } => Some(*latency),
            Self::Unreachable { .. } => None,
        }
    }
}

/// The Finch API client; cheap to clone (shares its connection pool).
#[derive(Clone)]
pub struct FinchClient {
    http: reqwest::Client,
    api: Url,
    timeout: Duration,
}

impl FinchClient {
    pub fn new(settings: &FinchSettings) -> anyhow::Result<Self> {
        let mut headers = HeaderMap::new();
        headers.insert(
            FINCH_API_VERSION_HEADER,
            HeaderValue::from_static(FINCH_API_VERSION),
        );
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("finchgate/", env!("CARGO_PKG_VERSION"))),
        );
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .https_only(settings.api_url.scheme() == "https")
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .build()?;
        Ok(Self {
            http,
            api: settings.api_url.clone(),
            timeout: settings.request_timeout,
        })
    }

    fn url(&self, path: &str) -> Result<Url, FinchError> {
        self.api.join(path).map_err(|e| FinchError::Unreachable {
            detail: format!("bad Finch URL: {e}"),
            attempts: 0,
        })
    }

    /// `POST /connect/sessions` with the tenant's credentials (HTTP Basic).
    pub async fn create_connect_session(
        &self,
        app: &AppCredentials<'_>,
        request: &CreateConnectSessionRequest,
    ) -> Result<Answer<ConnectSessionResponse>, FinchError> {
        self.post_as_app("connect/sessions", app, request).await
    }

    /// `POST /connect/sessions/reauthenticate` for an existing connection.
    pub async fn reauthenticate_session(
        &self,
        app: &AppCredentials<'_>,
        request: &ReauthenticateSessionRequest,
    ) -> Result<Answer<ConnectSessionResponse>, FinchError> {
        self.post_as_app("connect/sessions/reauthenticate", app, request)
            .await
    }

    /// A JSON POST authenticated with the application's credentials (HTTP Basic).
    async fn post_as_app<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        app: &AppCredentials<'_>,
        body: &B,
    ) -> Result<Answer<T>, FinchError> {
        let url = self.url(path)?;
        self.send(|| {
            self.http
                .post(url.clone())
                .basic_auth(app.client_id, Some(app.client_secret.expose_secret()))
                .json(body)
        })
        .await
    }

    /// `POST /auth/token`: credentials in the JSON body, no Authorization header.
    pub async fn exchange_code(
        &self,
        request: &TokenRequest<'_>,
    ) -> Result<Answer<TokenResponse>, FinchError> {
        let url = self.url("auth/token")?;
        self.send(|| self.http.post(url.clone()).json(request))
            .await
    }

    /// `GET /introspect` with the connection's token.
    pub async fn introspect(
        &self,
        token: &SecretString,
    ) -> Result<Answer<IntrospectResponse>, FinchError> {
        self.with_token(reqwest::Method::GET, "introspect", token)
            .await
    }

    /// `POST /disconnect` with the connection's token.
    pub async fn disconnect(
        &self,
        token: &SecretString,
    ) -> Result<Answer<DisconnectResponse>, FinchError> {
        self.with_token(reqwest::Method::POST, "disconnect", token)
            .await
    }

    /// A call authorized by a connection's access token (`Authorization: Bearer`).
    async fn with_token<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &SecretString,
    ) -> Result<Answer<T>, FinchError> {
        let url = self.url(path)?;
        self.send(|| {
            self.http
                .request(method.clone(), url.clone())
                .bearer_auth(token.expose_secret())
        })
        .await
    }

    /// Sends with the connect-only retry policy and reads the answer.
    async fn send<T: DeserializeOwned>(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Answer<T>, FinchError> {
        let mut attempt = 0;
        let (response, started) = loop {
            attempt += 1;
            let started = Instant::now();
            match build().send().await {
                Ok(response) => break (response, started),
                Err(error) if error.is_connect() && attempt < MAX_CONNECT_ATTEMPTS => {
                    tracing::warn!(attempt, error = %without_url(&error), "Finch unreachable, retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(error) if error.is_connect() => {
                    return Err(FinchError::Unreachable {
                        detail: without_url(&error),
                        attempts: attempt,
                    });
                }
                Err(error) if error.is_timeout() => {
                    return Err(FinchError::Timeout {
                        timeout: self.timeout,
                        latency: started.elapsed(),
                    });
                }
                Err(_) => {
                    return Err(FinchError::ConnectionLost {
                        latency: started.elapsed(),
                    });
                }
            }
        };
        let status = response.status().as_u16();
        let request_id = response
            .headers()
            .get(FINCH_REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(200).collect::<String>());
        let retry_after_seconds = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(error) if error.is_timeout() => {
                return Err(FinchError::Timeout {
                    timeout: self.timeout,
                    latency: started.elapsed(),
                });
            }
            Err(_) => {
                return Err(FinchError::ConnectionLost {
                    latency: started.elapsed(),
                });
            }
        };
        let latency = started.elapsed();
        if (300..400).contains(&status) {
            return Err(FinchError::Redirected {
                status,
                request_id,
                latency,
            });
        }
        if !(200..300).contains(&status) {
            let body = serde_json::from_slice::<FinchErrorBody>(&body)
                .ok()
                .map(Box::new);
            return Err(FinchError::Api {
                status,
                body,
                request_id,
                retry_after_seconds,
                latency,
            });
        }
        match serde_json::from_slice::<T>(&body) {
            Ok(value) => Ok(Answer {
                value,
                status,
                request_id,
                latency,
            }),
            Err(_) => Err(FinchError::Malformed {
                status,
                request_id,
                latency,
            }),
        }
    }
}

/// 200 ms, 400 ms, … with up to 50 % random jitter: connection failures are usually brief.
fn backoff(attempt: u32) -> Duration {
    let base = 200_u64.saturating_mul(1 << attempt.min(4).saturating_sub(1));
    let mut byte = [0u8; 1];
    let jitter = if ring::rand::SystemRandom::new().fill(&mut byte).is_ok() {
        u64::from(byte[0]) * base / 510
    } else {
        0
    };
    Duration::from_millis(base + jitter)
}

/// A reqwest error's description without its URL (paths carry no secrets, but keep logs lean).
fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), "<finch>");
    }
    text
}
