//! Injected faults as a client sees them: latency, 5xx, hangs, resets, bad JSON, rate limits, a
//! wrong customer id, and the control endpoint that queues them.

use std::time::{Duration, Instant};

use finchgate::finch::wire::{IntrospectResponse, TokenResponse};
use finchgate::sandbox::{Endpoint, Fault, FaultKind, ServerErrorStatus};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::{REDIRECT_URI, error_body, request_id, session_body, spawn, token_body};

#[tokio::test]
async fn a_latency_fault_delays_a_normal_response() {
    let app = spawn().await;
    app.sandbox
        .inject(Fault::new(FaultKind::Latency { ms: 400 }).on(Endpoint::ConnectSessions));
    let started = Instant::now();
    let resp = app.create_session(session_body(None)).await;
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(resp.status(), StatusCode::CREATED);
    let started = Instant::now();
    app.create_session(session_body(None)).await;
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "the fault was used up"
    );
}

#[tokio::test]
async fn a_server_error_fault_answers_5xx_after_consuming_the_code() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    app.sandbox.inject(
        Fault::new(FaultKind::ServerError {
            status: ServerErrorStatus::BadGateway,
        })
        .on(Endpoint::AuthToken),
    );
    let resp = app.exchange_code(&code, Some(REDIRECT_URI)).await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    request_id(&resp);
    let body = error_body(resp).await;
    assert_eq!(body.code, 502);
    assert_eq!(body.name, "bad_gateway_error");

    // Finch did the work: the token exists and the code is spent.
    assert_eq!(app.sandbox.issued_tokens().len(), 1);
    let resp = app.exchange_code(&code, Some(REDIRECT_URI)).await;
    assert!(error_body(resp).await.message.contains("already been used"));

    for (status, name) in [(500, "server_error"), (503, "server_error")] {
        app.inject(json!({"endpoint": "/introspect", "kind": "server_error", "status": status}))
            .await;
        let resp = app.introspect(&SecretString::from("x")).await;
        assert_eq!(resp.status().as_u16(), status);
        assert_eq!(error_body(resp).await.name, name);
    }
}

#[tokio::test]
async fn a_hang_fault_times_the_client_out_though_the_token_was_issued() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    app.sandbox
        .inject(Fault::new(FaultKind::Hang { seconds: 30 }).on(Endpoint::AuthToken));
    let started = Instant::now();
    let err = app
        .api(Method::POST, "/auth/token")
        .timeout(Duration::from_millis(500))
        .json(&token_body(&code, Some(REDIRECT_URI)))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(app.sandbox.issued_tokens().len(), 1);
    let hung = app
        .sandbox
        .requests()
        .into_iter()
        .find(|r| r.path == "/auth/token")
        .unwrap();
    assert_eq!(hung.status, None);
    assert_eq!(hung.fault.as_deref(), Some("hang"));

    // Stopping does not wait for the hang.
    let started = Instant::now();
    app.sandbox.stop().await;
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_reset_fault_drops_the_connection_without_a_response() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    app.inject(json!({"endpoint": "/auth/token", "kind": "reset"}))
        .await;
    let err = app
        .api(Method::POST, "/auth/token")
        .json(&token_body(&code, Some(REDIRECT_URI)))
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_connect(), "the request reached the server: {err:?}");
    assert!(!err.is_timeout(), "{err:?}");
    assert!(err.status().is_none());

    assert_eq!(
        app.sandbox.issued_tokens().len(),
        1,
        "the exchange happened"
    );
    let reset = app
        .sandbox
        .requests()
        .into_iter()
        .find(|r| r.path == "/auth/token")
        .unwrap();
    assert_eq!(reset.status, None);
    assert_eq!(reset.fault.as_deref(), Some("reset"));
    // The server is fine afterwards.
    assert_eq!(
        app.exchange_code(&code, Some(REDIRECT_URI)).await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn a_malformed_json_fault_answers_200_with_a_truncated_body() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    app.inject(json!({"endpoint": "/auth/token", "kind": "malformed_json"}))
        .await;
    let resp = app.exchange_code(&code, Some(REDIRECT_URI)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let text = resp.text().await.unwrap();
    assert!(text.starts_with('{') && text.len() > 10);
    assert!(serde_json::from_str::<Value>(&text).is_err());
    assert_eq!(app.sandbox.issued_tokens().len(), 1);
}

#[tokio::test]
async fn a_rate_limit_fault_answers_429_with_retry_after_and_keeps_the_code() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    app.inject(json!({"endpoint": "/auth/token", "kind": "rate_limit", "retry_after_seconds": 7}))
        .await;
    let resp = app.exchange_code(&code, Some(REDIRECT_URI)).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "7");
    let json: Value = resp.json().await.unwrap();
    assert_eq!(json["code"], 429);
    assert_eq!(json["statusCode"], 429);
    assert_eq!(json["status"], 429);
    assert_eq!(json["name"], "rate_limit_exceeded_error");
    assert_eq!(json["finch_code"], "finch_application_rl");
    assert!(app.sandbox.issued_tokens().is_empty());
    assert_eq!(
        app.exchange_code(&code, Some(REDIRECT_URI)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_wrong_customer_id_fault_changes_only_the_customer_id() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    app.sandbox.inject(Fault::new(FaultKind::WrongCustomerId));
    // Not consumed by the session endpoint: it has no customer_id to get wrong.
    app.redirect_session().await;
    let resp = app.exchange_code(&code, Some(REDIRECT_URI)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let token: TokenResponse = resp.json().await.unwrap();
    let customer_id = token.customer_id.unwrap();
    assert_ne!(customer_id, "tenant-acme");
    assert!(!customer_id.is_empty());
    assert_eq!(token.customer_name.as_deref(), Some("Acme Corp"));
    assert!(app.sandbox.faults().is_empty());
    // The code is spent and the token is real.
    let issued = app.sandbox.issued_tokens();
    assert_eq!(
        issued[0].access_token.expose_secret(),
        token.access_token.expose_secret()
    );
    let body: IntrospectResponse = app
        .introspect(&token.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body.customer_id.as_deref(), Some("tenant-acme"));
}

#[tokio::test]
async fn faults_apply_in_fifo_order_to_their_endpoint_and_run_out() {
    let app = spawn().await;
    app.sandbox.inject(
        Fault::new(FaultKind::ServerError {
            status: ServerErrorStatus::ServiceUnavailable,
        })
        .on(Endpoint::ConnectSessions)
        .times(2),
    );
    app.sandbox.inject(Fault::new(FaultKind::RateLimit {
        retry_after_seconds: 1,
    }));
    // The first matching fault wins: twice 503 on sessions, then the any-endpoint 429.
    assert_eq!(
        app.create_session(session_body(None)).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(app.sandbox.faults()[0].times, 1);
    assert_eq!(
        app.create_session(session_body(None)).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        app.create_session(session_body(None)).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        app.create_session(session_body(None)).await.status(),
        StatusCode::CREATED
    );
    assert!(app.sandbox.faults().is_empty());

    // A fault aimed elsewhere leaves other endpoints alone; times 0 lasts until cleared.
    app.inject(json!({"endpoint": "/introspect", "kind": "rate_limit", "times": 0}))
        .await;
    assert_eq!(
        app.create_session(session_body(None)).await.status(),
        StatusCode::CREATED
    );
    for _ in 0..3 {
        let resp = app.introspect(&SecretString::from("x")).await;
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    app.sandbox.clear_faults();
    assert_eq!(
        app.introspect(&SecretString::from("x")).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn faults_never_touch_connect_pages_or_unversioned_calls() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    app.inject(json!({"kind": "server_error"})).await;
    assert_eq!(
        app.open_page(&session.connect_url, &[]).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.http
            .get(app.url("/connect.js"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let resp = app.http.post(app.url("/auth/token")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.sandbox.faults().len(), 1, "still queued");
}

#[tokio::test]
async fn the_fault_control_endpoint_validates_lists_and_clears() {
    let app = spawn().await;
    for (bad, expected) in [
        (json!({"kind": "explode"}), "unknown variant"),
        (
            json!({"kind": "server_error", "status": 418}),
            "500, 502 or 503",
        ),
        (json!({"kind": "latency"}), "ms"),
        (
            json!({"kind": "reset", "endpoint": "/nope"}),
            "unknown variant",
        ),
        (
            json!({"kind": "wrong_customer_id", "endpoint": "/connect/sessions"}),
            "only applies",
        ),
    ] {
        let resp = app.inject(bad.clone()).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
        let body = error_body(resp).await;
        assert!(body.message.contains(expected), "{bad}: {}", body.message);
    }
    let resp = app
        .inject(json!({"endpoint": "/auth/token", "kind": "latency", "ms": 5, "times": 3}))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    app.inject(json!({"kind": "hang"})).await;

    let listed: Value = app
        .http
        .get(app.url("/_sandbox/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed,
        json!([
            {"endpoint": "/auth/token", "kind": "latency", "ms": 5, "times": 3},
            {"kind": "hang", "seconds": 30, "times": 1},
        ])
    );
    let resp = app
        .http
        .delete(app.url("/_sandbox/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"cleared": 2}));
    assert!(app.sandbox.faults().is_empty());
}
