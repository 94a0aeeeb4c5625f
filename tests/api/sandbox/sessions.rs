//! `POST /connect/sessions`: credentials, validation, the connect URL and the default lifetime.

use finchgate::finch::wire::FINCH_API_VERSION;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use url::Url;

use super::{
    CLIENT_ID, CLIENT_SECRET, OTHER_CLIENT_SECRET, REDIRECT_URI, error_body, query_param,
    session_body, spawn, spawn_with,
};

#[tokio::test]
async fn creating_a_session_returns_201_with_a_connect_url() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    assert_eq!(session.connect_url.path(), "/authorize");
    assert_eq!(
        query_param(&session.connect_url, "session").as_deref(),
        Some(session.session_id.as_str())
    );
    assert!(
        session
            .connect_url
            .as_str()
            .starts_with(app.sandbox.base_url().as_str())
    );
    assert!(uuid::Uuid::parse_str(&session.session_id).is_ok());
}

#[tokio::test]
async fn the_connect_url_uses_the_public_url() {
    let public: Url = "https://sandbox.finch.test/emulator".parse().unwrap();
    let app = spawn_with(|c| c.public_url = Some(public)).await;
    assert_eq!(
        app.sandbox.base_url().as_str(),
        "https://sandbox.finch.test/emulator/"
    );
    let resp = app
        .http
        .post(format!(
            "http://127.0.0.1:{}/connect/sessions",
            app.sandbox.port()
        ))
        .header("Finch-API-Version", FINCH_API_VERSION)
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .json(&session_body(None))
        .send()
        .await
        .unwrap();
    let json: Value = resp.json().await.unwrap();
    let connect_url = json["connect_url"].as_str().unwrap();
    assert!(
        connect_url.starts_with("https://sandbox.finch.test/emulator/authorize?session="),
        "{connect_url}"
    );
}

#[tokio::test]
async fn session_endpoints_require_valid_basic_credentials() {
    let app = spawn().await;
    for path in [
        "/connect/sessions",
        "/connect/sessions/reauthenticate",
        "/sandbox/connections",
    ] {
        let cases = [
            app.api(Method::POST, path),
            app.api(Method::POST, path)
                .basic_auth(CLIENT_ID, Some("wrong")),
            app.api(Method::POST, path)
                .basic_auth("unknown", Some(CLIENT_SECRET)),
            app.api(Method::POST, path)
                .basic_auth(CLIENT_ID, Some(OTHER_CLIENT_SECRET)),
            app.api(Method::POST, path)
                .header("Authorization", "Basic !!!not-base64"),
            app.api(Method::POST, path).bearer_auth("some-token"),
        ];
        for case in cases {
            let resp = case.json(&session_body(None)).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path}");
            let body = error_body(resp).await;
            assert_eq!(body.name, "invalid_client_error");
            assert_eq!(body.code, 401);
        }
    }
}

#[tokio::test]
async fn session_validation_names_the_offending_field() {
    let app = spawn().await;
    let valid = || json!({"customer_id": "a", "customer_name": "A", "products": ["company"]});
    let with = |field: &str, value: Value| {
        let mut body = valid();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = valid();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let cases = [
        (without("customer_id"), "customer_id is required"),
        (
            with("customer_id", json!("")),
            "customer_id must be 1 to 255",
        ),
        (
            with("customer_id", json!(7)),
            "customer_id must be a string",
        ),
        (
            with("customer_name", json!("x".repeat(256))),
            "customer_name must be 1 to 255",
        ),
        (without("products"), "products is required"),
        (
            with("products", json!([])),
            "products must name at least one",
        ),
        (with("products", json!(["payroll"])), "products[0]"),
        (
            with("products", json!("company")),
            "products must be an array",
        ),
        (with("minutes_to_expire", json!(0)), "minutes_to_expire"),
        (
            with("minutes_to_expire", json!(129_601)),
            "minutes_to_expire",
        ),
        (with("minutes_to_expire", json!(1.5)), "minutes_to_expire"),
        (with("sandbox", json!("yes")), "sandbox"),
        (
            with("integration", json!({"provider": "nope"})),
            "integration.provider",
        ),
        (
            with("integration", json!({})),
            "integration.provider is required",
        ),
        (
            with(
                "integration",
                json!({"provider": "gusto", "auth_method": "magic"}),
            ),
            "integration.auth_method",
        ),
        (
            with("redirect_uri", json!("http://example.com/cb")),
            "redirect_uri",
        ),
        (with("redirect_uri", json!("/relative")), "redirect_uri"),
        (
            with("redirect_uri", json!("https://x.test/cb#frag")),
            "redirect_uri",
        ),
        (with("customer_email", json!("nope")), "customer_email"),
        (with("manual", json!("yes")), "manual"),
        (
            with("recordkeeping", json!({"recordkeeper": "voya"})),
            "recordkeeping can only be given",
        ),
        (
            json!({"customer_id": "a", "customer_name": "A", "products": ["recordkeeping"],
                   "recordkeeping": {}}),
            "recordkeeping.recordkeeper is required",
        ),
        (json!(["not", "an", "object"]), "JSON object"),
    ];
    for (body, expected) in cases {
        let resp = app.create_session(body.clone()).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
        let err = error_body(resp).await;
        assert_eq!(err.name, "bad_request");
        assert_eq!(err.finch_code.as_deref(), Some("invalid_request"));
        assert!(err.message.contains(expected), "{body} → {}", err.message);
    }

    let resp = app
        .basic(Method::POST, "/connect/sessions")
        .header("Content-Type", "text/plain")
        .body(session_body(None).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(error_body(resp).await.message.contains("application/json"));
}

#[tokio::test]
async fn a_session_accepts_every_documented_optional_field() {
    let app = spawn().await;
    let resp = app
        .create_session(json!({
            "customer_id": "c".repeat(255),
            "customer_name": "Acme",
            "customer_email": "hr@acme.test",
            "products": ["company", "directory", "individual", "employment", "payment",
                         "pay_statement", "benefits", "documents", "ssn", "recordkeeping"],
            "redirect_uri": "https://app.acme.test/callback",
            "minutes_to_expire": 129_600,
            "sandbox": "provider",
            "manual": false,
            "integration": {"provider": "rippling", "auth_method": "oauth"},
            "recordkeeping": {"recordkeeper": "fidelity", "plan_id": "p-1"},
            "an_unknown_field": true,
        }))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = app
        .create_session(
            json!({"customer_id": "a", "customer_name": "A", "products": ["company"],
                               "sandbox": null, "redirect_uri": null, "integration": null}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_new_session_lasts_90_days_by_default() {
    let app = spawn().await;
    let mut body = session_body(Some(REDIRECT_URI));
    body.as_object_mut().unwrap().remove("minutes_to_expire");
    let session = app.new_session(body).await;
    app.sandbox
        .set_clock_offset(chrono::Duration::minutes(129_600 - 1));
    assert_eq!(
        app.open_page(&session.connect_url, &[]).await.status(),
        StatusCode::OK
    );
    app.sandbox
        .set_clock_offset(chrono::Duration::minutes(129_600));
    assert_eq!(
        app.open_page(&session.connect_url, &[]).await.status(),
        StatusCode::BAD_REQUEST
    );
}
