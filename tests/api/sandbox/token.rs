//! `POST /auth/token`: exchanging a code, once, in time, for the client and redirect URI it was
//! issued for.

use std::time::Duration;

use finchgate::finch::wire::{ClientType, ConnectionType, TokenResponse};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::{
    CLIENT_ID, CLIENT_SECRET, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET, REDIRECT_URI, error_body,
    session_body, spawn, spawn_with, token_body,
};
use crate::helpers::data_attribute;

#[tokio::test]
async fn a_redirect_code_exchanges_for_a_token_echoing_the_customer() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    let resp = app.exchange_code(&code, Some(REDIRECT_URI)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let json: Value = resp.json().await.unwrap();
    assert_eq!(json["token_type"], "bearer");
    assert_eq!(json["customer_id"], "tenant-acme");
    assert_eq!(json["customer_name"], "Acme Corp");
    assert_eq!(json["client_type"], "sandbox");
    assert_eq!(json["connection_type"], "provider");
    assert_eq!(json["provider_id"], "gusto");
    assert_eq!(
        json["products"],
        json!(["company", "directory", "individual"])
    );
    assert_eq!(json["entity_ids"].as_array().unwrap().len(), 1);
    for field in ["access_token", "connection_id", "account_id", "company_id"] {
        assert!(
            json[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field}"
        );
    }
    let token: TokenResponse = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(token.client_type, ClientType::Sandbox);
    let issued = app.sandbox.issued_tokens();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].connection_id, token.connection_id);
    assert_eq!(
        issued[0].access_token.expose_secret(),
        json["access_token"].as_str().unwrap()
    );
}

#[tokio::test]
async fn a_finch_sandbox_session_yields_a_finch_connection() {
    let app = spawn().await;
    let mut body = session_body(Some(REDIRECT_URI));
    body["sandbox"] = json!("finch");
    let session = app.new_session(body).await;
    let code = app.redirect_code(&session).await;
    let token: TokenResponse = app
        .exchange_code(&code, Some(REDIRECT_URI))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(token.connection_type, ConnectionType::Finch);
}

#[tokio::test]
async fn a_code_is_single_use() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    assert_eq!(
        app.exchange_code(&code, Some(REDIRECT_URI)).await.status(),
        StatusCode::OK
    );
    let resp = app.exchange_code(&code, Some(REDIRECT_URI)).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body = error_body(resp).await;
    assert_eq!(body.name, "invalid_grant_error");
    assert_eq!(body.finch_code, None);
    assert!(
        body.message.contains("already been used"),
        "{}",
        body.message
    );
    assert_eq!(app.sandbox.issued_tokens().len(), 1);
}

#[tokio::test]
async fn concurrent_exchanges_of_one_code_issue_exactly_one_token() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    let attempts = (0..8).map(|_| app.exchange_code(&code, Some(REDIRECT_URI)));
    let statuses: Vec<StatusCode> = futures_util::future::join_all(attempts)
        .await
        .iter()
        .map(reqwest::Response::status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(app.sandbox.issued_tokens().len(), 1);
}

#[tokio::test]
async fn a_code_expires_after_ten_minutes() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let fresh = app.redirect_code(&session).await;
    let session = app.redirect_session().await;
    let stale = app.redirect_code(&session).await;

    app.sandbox
        .set_clock_offset(chrono::Duration::minutes(9) + chrono::Duration::seconds(59));
    assert_eq!(
        app.exchange_code(&fresh, Some(REDIRECT_URI)).await.status(),
        StatusCode::OK
    );

    app.sandbox
        .set_clock_offset(chrono::Duration::minutes(10) + chrono::Duration::seconds(1));
    let resp = app.exchange_code(&stale, Some(REDIRECT_URI)).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body = error_body(resp).await;
    assert_eq!(body.name, "invalid_grant_error");
    assert!(
        body.message.contains("expired") && body.message.contains("10 minutes"),
        "{}",
        body.message
    );
}

#[tokio::test]
async fn the_code_lifetime_is_configurable() {
    let app = spawn_with(|c| c.code_ttl = Duration::from_secs(90)).await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    app.sandbox.set_clock_offset(chrono::Duration::seconds(91));
    let body = error_body(app.exchange_code(&code, Some(REDIRECT_URI)).await).await;
    assert!(body.message.contains("90 seconds"), "{}", body.message);
}

#[tokio::test]
async fn a_redirect_code_needs_the_identical_redirect_uri() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    let cases = [
        (None, "redirect_uri is required"),
        (
            Some("http://127.0.0.1:8080/t/acme/finch/callback"),
            "does not match",
        ),
        (
            Some("http://127.0.0.1:8080/t/acme/finch/callback/?tenant=acme"),
            "does not match",
        ),
        (
            Some("HTTP://127.0.0.1:8080/t/acme/finch/callback?tenant=acme"),
            "does not match",
        ),
    ];
    for (uri, expected) in cases {
        let resp = app.exchange_code(&code, uri).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{uri:?}");
        let body = error_body(resp).await;
        assert_eq!(body.name, "invalid_grant_error");
        assert!(body.message.contains(expected), "{uri:?}: {}", body.message);
    }
    // The rejected attempts did not burn the code.
    assert_eq!(
        app.exchange_code(&code, Some(REDIRECT_URI)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_embedded_code_must_be_exchanged_without_redirect_uri() {
    let app = spawn().await;
    // Even a session that has a redirect_uri, completed in the embedded flow.
    let session = app.redirect_session().await;
    let html = app.complete_embedded(&session, None, "approve").await;
    let code = data_attribute(&html, "code").unwrap();
    let resp = app.exchange_code(&code, Some(REDIRECT_URI)).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body = error_body(resp).await;
    assert_eq!(body.name, "invalid_grant_error");
    assert!(body.message.contains("embedded"), "{}", body.message);
    let resp = app.exchange_code(&code, None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let token: TokenResponse = resp.json().await.unwrap();
    assert_eq!(token.provider_id, "adp_run");
}

#[tokio::test]
async fn a_code_only_works_for_the_client_it_was_issued_to() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    let resp = app
        .exchange(json!({"code": code, "client_id": OTHER_CLIENT_ID,
                         "client_secret": OTHER_CLIENT_SECRET, "redirect_uri": REDIRECT_URI}))
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body = error_body(resp).await;
    assert_eq!(body.name, "invalid_grant_error");
    assert!(
        body.message.contains("different client"),
        "{}",
        body.message
    );
}

#[tokio::test]
async fn an_unknown_or_missing_code_is_rejected() {
    let app = spawn().await;
    let resp = app.exchange_code("no-such-code", None).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body = error_body(resp).await;
    assert_eq!(body.name, "invalid_grant_error");
    assert!(body.message.contains("invalid"));

    let resp = app
        .exchange(json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}))
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body = error_body(resp).await;
    assert_eq!(body.name, "bad_request");
    assert!(body.message.contains("code is required"));
}

#[tokio::test]
async fn the_token_endpoint_rejects_bad_client_credentials() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    let cases = [
        json!({"code": code, "client_id": CLIENT_ID, "client_secret": "wrong"}),
        json!({"code": code, "client_id": "unknown", "client_secret": CLIENT_SECRET}),
        json!({"code": code, "client_id": CLIENT_ID}),
        json!({"code": code, "client_secret": CLIENT_SECRET}),
        json!({"code": code}),
    ];
    for body in cases {
        let resp = app.exchange(body.clone()).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(error_body(resp).await.name, "invalid_client_error");
    }
    // Wrong credentials never burn the code.
    assert_eq!(
        app.exchange_code(&code, Some(REDIRECT_URI)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_token_endpoint_accepts_basic_auth_when_the_body_has_no_credentials() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    let resp = app
        .api(Method::POST, "/auth/token")
        .basic_auth(CLIENT_ID, Some("wrong"))
        .json(&json!({"code": code, "redirect_uri": REDIRECT_URI}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = app
        .api(Method::POST, "/auth/token")
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .json(&json!({"code": code, "redirect_uri": REDIRECT_URI}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn body_credentials_win_over_basic_auth() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    let resp = app
        .api(Method::POST, "/auth/token")
        .basic_auth(OTHER_CLIENT_ID, Some(OTHER_CLIENT_SECRET))
        .json(&token_body(&code, Some(REDIRECT_URI)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_token_endpoint_requires_json() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    let resp = app
        .api(Method::POST, "/auth/token")
        .form(&[
            ("code", code.as_str()),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("redirect_uri", REDIRECT_URI),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body = error_body(resp).await;
    assert_eq!(body.name, "bad_request");
    assert!(body.message.contains("application/json"));

    let resp = app
        .api(Method::POST, "/auth/token")
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(error_body(resp).await.message.contains("not valid JSON"));
}
