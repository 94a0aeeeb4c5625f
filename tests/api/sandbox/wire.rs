//! Headers every answer carries, 404s for unknown routes, the error body, and the
//! `Finch-API-Version` rule.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::{CLIENT_ID, CLIENT_SECRET, error_body, request_id, session_body, spawn};

#[tokio::test]
async fn every_response_carries_a_fresh_finch_request_id() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let responses = [
        app.http.get(app.url("/no/such/path")).send().await.unwrap(),
        app.http.get(app.url("/auth/token")).send().await.unwrap(),
        app.http.post(app.url("/auth/token")).send().await.unwrap(),
        app.basic(Method::POST, "/connect/sessions")
            .json(&session_body(None))
            .send()
            .await
            .unwrap(),
        app.open_page(&session.connect_url, &[]).await,
        app.http
            .get(app.url("/authorize?session=nope"))
            .send()
            .await
            .unwrap(),
        app.http.get(app.url("/connect.js")).send().await.unwrap(),
        app.http
            .get(app.url("/_sandbox/requests"))
            .send()
            .await
            .unwrap(),
    ];
    let mut ids: Vec<String> = responses.iter().map(request_id).collect();
    assert!(ids.iter().all(|id| !id.is_empty()));
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), responses.len(), "request ids must be unique");
}

#[tokio::test]
async fn an_unknown_path_or_method_is_a_finch_404() {
    let app = spawn().await;
    for (method, path) in [
        (Method::GET, "/employer/benefits"),
        (Method::DELETE, "/employer/directory"),
        (Method::GET, "/auth/token"),
        (Method::DELETE, "/connect/sessions"),
        (Method::PUT, "/authorize"),
    ] {
        let resp = app.api(method.clone(), path).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{method} {path}");
        let body = error_body(resp).await;
        assert_eq!(body.code, 404);
        assert_eq!(body.name, "not_found_error");
        assert!(body.message.contains(path), "{}", body.message);
    }
}

#[tokio::test]
async fn the_error_body_has_exactly_finchs_fields() {
    let app = spawn().await;
    let resp = app.exchange_code("nope", None).await;
    let json: Value = resp.json().await.unwrap();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["code", "finch_code", "message", "name"]);
    assert_eq!(json["finch_code"], Value::Null);
}

#[tokio::test]
async fn api_calls_without_finch_api_version_are_rejected() {
    let app = spawn().await;
    let resp = app
        .http
        .post(app.url("/connect/sessions"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .json(&session_body(None))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    request_id(&resp);
    let body = error_body(resp).await;
    assert_eq!(body.name, "bad_request");
    assert_eq!(body.finch_code.as_deref(), Some("invalid_request"));
    assert!(
        body.message.contains("Finch-API-Version"),
        "{}",
        body.message
    );

    for (method, path) in [
        (Method::POST, "/auth/token"),
        (Method::GET, "/introspect"),
        (Method::POST, "/disconnect"),
        (Method::POST, "/sandbox/connections"),
        (Method::POST, "/connect/sessions/reauthenticate"),
    ] {
        let resp = app
            .http
            .request(method, app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{path}");
    }

    let resp = app
        .http
        .get(app.url("/introspect"))
        .header("Finch-API-Version", "2099-01-01")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(error_body(resp).await.message.contains("2020-09-17"));
}

#[tokio::test]
async fn connect_pages_and_the_sdk_need_no_api_version() {
    let app = spawn().await;
    let session = app.redirect_session().await;
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
}
