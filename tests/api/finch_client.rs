//! The production Finch client against the emulator: its retry policy and its reading of failures
//! (SECURITY.md RL-3, T11–T14).

use std::net::TcpListener;
use std::time::Duration;

use finchgate::config::FinchSettings;
use finchgate::finch::client::{AppCredentials, FinchClient, FinchError};
use finchgate::finch::wire::{CreateConnectSessionRequest, Product, TokenRequest};
use finchgate::sandbox::{Endpoint, Fault, FaultKind, Sandbox, SandboxApp, SandboxConfig};
use secrecy::SecretString;

const CLIENT_ID: &str = "client-one";
const SECRET: &str = "secret-one";

async fn emulator_on(listener: TcpListener) -> Sandbox {
    let apps = SandboxApp::parse_list(&format!("{CLIENT_ID}:{SECRET}")).unwrap();
    Sandbox::start(SandboxConfig::new(listener, apps))
        .await
        .unwrap()
}

fn client_for(base: url::Url, timeout: Duration) -> FinchClient {
    let mut settings = FinchSettings::new(base.clone(), base);
    settings.request_timeout = timeout;
    settings.connect_timeout = Duration::from_secs(1);
    FinchClient::new(&settings).unwrap()
}

fn session_request(redirect_uri: &str) -> CreateConnectSessionRequest {
    CreateConnectSessionRequest {
        customer_id: "tenant-1".into(),
        customer_name: "Tenant One".into(),
        products: vec![Product::Company, Product::Directory],
        customer_email: None,
        redirect_uri: Some(redirect_uri.into()),
        minutes_to_expire: Some(30),
        sandbox: None,
        manual: None,
        integration: None,
        recordkeeping: None,
    }
}

/// Creates a session and approves it by plain HTTP; returns the code.
async fn code_from(sandbox: &Sandbox, client: &FinchClient, redirect_uri: &str) -> String {
    let secret = SecretString::from(SECRET);
    let app = AppCredentials {
        client_id: CLIENT_ID,
        client_secret: &secret,
    };
    let session = client
        .create_connect_session(&app, &session_request(redirect_uri))
        .await
        .unwrap();
    let location =
        crate::helpers::approve_in_emulator(&session.value.connect_url, Some("st")).await;
    let _ = sandbox;
    location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned()
}

#[tokio::test]
async fn a_session_is_created_with_basic_auth_and_bad_credentials_are_finchs_401() {
    let sandbox = emulator_on(TcpListener::bind("127.0.0.1:0").unwrap()).await;
    let client = client_for(sandbox.base_url(), Duration::from_secs(5));
    let secret = SecretString::from(SECRET);
    let ok = client
        .create_connect_session(
            &AppCredentials {
                client_id: CLIENT_ID,
                client_secret: &secret,
            },
            &session_request("https://a.example/cb"),
        )
        .await
        .unwrap();
    assert_eq!(ok.status, 201);
    assert!(ok.request_id.is_some());
    let wrong = SecretString::from("nope");
    let error = client
        .create_connect_session(
            &AppCredentials {
                client_id: CLIENT_ID,
                client_secret: &wrong,
            },
            &session_request("https://a.example/cb"),
        )
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(401));
    assert_eq!(error.body().unwrap().name, "invalid_client_error");
    assert!(error.request_id().is_some());
    sandbox.stop().await;
}

#[tokio::test]
async fn a_refused_first_connection_is_retried_and_the_code_exchanged_once() {
    // T12: the port refuses connections until the emulator starts listening a moment later.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let base = url::Url::parse(&format!("http://{addr}/")).unwrap();
    let warmup = emulator_on(listener).await;
    let warm_client = client_for(base.clone(), Duration::from_secs(5));
    let code = code_from(&warmup, &warm_client, "https://a.example/cb").await;
    // Keep the emulator's state (the code) but close the port, then reopen it after a delay.
    warmup.stop().await;
    let reopened = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        emulator_on(TcpListener::bind(addr).unwrap()).await
    });
    // A new client: the old one's pooled connection died with the first emulator.
    let client = client_for(base, Duration::from_secs(5));
    let secret = SECRET;
    let result = client
        .exchange_code(&TokenRequest {
            code: &code,
            client_id: CLIENT_ID,
            client_secret: secret,
            redirect_uri: Some("https://a.example/cb"),
        })
        .await;
    let fresh = reopened.await.unwrap();
    // A fresh emulator does not know the code: what matters is that the request reached it once,
    // after a refused connection, rather than failing or being sent twice.
    let error = result.unwrap_err();
    assert_eq!(
        error.status(),
        Some(400),
        "the retried request arrived: {error}"
    );
    assert_eq!(fresh.count("POST", "/auth/token"), 1);
    fresh.stop().await;
}

#[tokio::test]
async fn nothing_listening_is_unreachable_after_three_attempts() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = client_for(
        url::Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap(),
        Duration::from_secs(2),
    );
    let error = client
        .exchange_code(&TokenRequest {
            code: "c",
            client_id: CLIENT_ID,
            client_secret: SECRET,
            redirect_uri: None,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(error, FinchError::Unreachable { attempts: 3, .. }),
        "{error:?}"
    );
}

async fn exchange_with_fault(kind: FaultKind, timeout: Duration) -> (FinchError, usize) {
    let sandbox = emulator_on(TcpListener::bind("127.0.0.1:0").unwrap()).await;
    let client = client_for(sandbox.base_url(), timeout);
    let code = code_from(&sandbox, &client, "https://a.example/cb").await;
    sandbox.inject(Fault::new(kind).on(Endpoint::AuthToken));
    let error = client
        .exchange_code(&TokenRequest {
            code: &code,
            client_id: CLIENT_ID,
            client_secret: SECRET,
            redirect_uri: Some("https://a.example/cb"),
        })
        .await
        .unwrap_err();
    let calls = sandbox.count("POST", "/auth/token");
    sandbox.stop().await;
    (error, calls)
}

#[tokio::test]
async fn a_hang_past_the_timeout_is_a_timeout_and_never_retried() {
    let (error, calls) =
        exchange_with_fault(FaultKind::Hang { seconds: 10 }, Duration::from_millis(500)).await;
    assert!(matches!(error, FinchError::Timeout { .. }), "{error:?}");
    assert_eq!(calls, 1);
}

#[tokio::test]
async fn a_reset_after_sending_is_a_lost_connection_and_never_retried() {
    let (error, calls) = exchange_with_fault(FaultKind::Reset, Duration::from_secs(5)).await;
    assert!(
        matches!(error, FinchError::ConnectionLost { .. }),
        "{error:?}"
    );
    assert_eq!(calls, 1);
}

#[tokio::test]
async fn a_5xx_is_final_and_never_retried() {
    let (error, calls) = exchange_with_fault(
        FaultKind::ServerError {
            status: Default::default(),
        },
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(error.status(), Some(500));
    assert_eq!(calls, 1);
}

#[tokio::test]
async fn malformed_json_is_reported_as_malformed() {
    let (error, calls) =
        exchange_with_fault(FaultKind::MalformedJson, Duration::from_secs(5)).await;
    assert!(
        matches!(error, FinchError::Malformed { status: 200, .. }),
        "{error:?}"
    );
    assert_eq!(calls, 1);
}

#[tokio::test]
async fn a_429_carries_retry_after_and_is_not_retried() {
    let (error, calls) = exchange_with_fault(
        FaultKind::RateLimit {
            retry_after_seconds: 7,
        },
        Duration::from_secs(5),
    )
    .await;
    assert!(
        matches!(
            error,
            FinchError::Api {
                status: 429,
                retry_after_seconds: Some(7),
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(calls, 1);
}
