//! The emulator's control side: recorded requests, apps registered at run time, and stopping.

use std::time::{Duration, Instant};

use finchgate::sandbox::{RecordedRequest, SandboxApp};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::json;

use super::{REDIRECT_URI, session_body, spawn};

#[tokio::test]
async fn requests_are_recorded_without_their_query() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    app.exchange_code(&code, Some(REDIRECT_URI)).await;
    app.exchange_code(&code, Some(REDIRECT_URI)).await;

    assert_eq!(app.sandbox.count("POST", "/auth/token"), 2);
    assert_eq!(app.sandbox.count("post", "/connect/sessions"), 1);
    assert_eq!(app.sandbox.count("GET", "/authorize"), 1);
    let requests = app.sandbox.requests();
    let statuses: Vec<Option<u16>> = requests
        .iter()
        .filter(|r| r.path == "/auth/token")
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [Some(200), Some(400)]);
    assert!(
        requests
            .iter()
            .all(|r| !r.path.contains('?') && r.fault.is_none())
    );

    let over_http: Vec<RecordedRequest> = app
        .http
        .get(app.url("/_sandbox/requests?x=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(over_http[..requests.len()], requests[..]);
    let raw = serde_json::to_string(&over_http).unwrap();
    assert!(!raw.contains(&code), "the log never holds a code");
}

#[tokio::test]
async fn apps_can_be_registered_at_run_time() {
    let app = spawn().await;
    let late = |secret: &str| {
        app.api(Method::POST, "/connect/sessions")
            .basic_auth("late-app", Some(secret))
            .json(&session_body(None))
    };
    assert_eq!(
        late("s3").send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    let resp = app
        .http
        .post(app.url("/_sandbox/apps"))
        .json(&json!({"client_id": "late-app", "client_secret": "s3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(
        late("s3").send().await.unwrap().status(),
        StatusCode::CREATED
    );

    app.sandbox.register_app(SandboxApp {
        client_id: "late-app".to_owned(),
        client_secret: SecretString::from("s4"),
    });
    assert_eq!(
        late("s3").send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        late("s4").send().await.unwrap().status(),
        StatusCode::CREATED
    );

    let resp = app
        .http
        .post(app.url("/_sandbox/apps"))
        .json(&json!({"client_id": "", "client_secret": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn stopping_the_sandbox_is_prompt_and_closes_its_port() {
    let app = spawn().await;
    let port = app.sandbox.port();
    // Leaves an idle keep-alive connection in the client's pool.
    app.redirect_session().await;
    let started = Instant::now();
    app.sandbox.stop().await;
    assert!(started.elapsed() < Duration::from_secs(3));
    // A new client, so the check is about the port and not about a pooled connection.
    let err = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/connect.js"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
}
