//! What a token is good for afterwards: `/introspect`, `/disconnect`, reauthentication, and
//! `POST /sandbox/connections`.

use finchgate::finch::wire::{
    ClientType, ConnectionStatusType, ConnectionType, IntrospectResponse,
    SandboxConnectionResponse, TokenResponse,
};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::{
    CLIENT_ID, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET, REDIRECT_URI, embedded_query, error_body,
    spawn,
};
use crate::helpers::data_attribute;

#[tokio::test]
async fn introspect_describes_the_connection() {
    let app = spawn().await;
    let token = app.connect().await;
    let resp = app.introspect(&token.access_token).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let json: Value = resp.json().await.unwrap();
    assert_eq!(json["connection_status"]["status"], "connected");
    assert_eq!(json["authentication_methods"][0]["type"], "oauth");
    let body: IntrospectResponse = serde_json::from_value(json).unwrap();
    assert_eq!(body.connection_id, token.connection_id);
    assert_eq!(body.client_id, CLIENT_ID);
    assert_eq!(body.client_type, ClientType::Sandbox);
    assert_eq!(
        body.connection_status.status,
        ConnectionStatusType::Connected
    );
    assert_eq!(body.customer_id.as_deref(), Some("tenant-acme"));
    assert_eq!(body.customer_name.as_deref(), Some("Acme Corp"));
    assert_eq!(body.provider_id, "gusto");
    assert_eq!(body.products, ["company", "directory", "individual"]);
    assert_eq!(body.company_id, token.company_id);
    let entities = body.entities.unwrap();
    assert_eq!(entities.len(), 1);
    assert_eq!(entities[0].id, token.entity_ids[0]);
    assert!(body.authentication_methods.is_some());
    assert_ne!(
        body.id,
        token.access_token.expose_secret(),
        "the id is not the token"
    );
}

#[tokio::test]
async fn introspect_rejects_unknown_and_missing_tokens() {
    let app = spawn().await;
    let resp = app.introspect(&SecretString::from("not-a-token")).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body = error_body(resp).await;
    assert_eq!(body.name, "invalid_token_error");

    let resp = app.api(Method::GET, "/introspect").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_body(resp).await.name, "unauthorized_request_error");
}

#[tokio::test]
async fn disconnect_revokes_every_token_of_the_connection() {
    let app = spawn().await;
    let token = app.connect().await;
    let resp = app.disconnect(&token.access_token).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"status": "success"})
    );

    let resp = app.introspect(&token.access_token).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_body(resp).await.name, "invalid_token_error");
    let resp = app.disconnect(&token.access_token).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(app.sandbox.issued_tokens().iter().all(|t| t.revoked));

    let resp = app.api(Method::POST, "/disconnect").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn disconnecting_one_connection_leaves_others_alone() {
    let app = spawn().await;
    let first = app.connect().await;
    let second = app.connect().await;
    assert_ne!(first.connection_id, second.connection_id);
    assert_eq!(
        app.disconnect(&first.access_token).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.introspect(&second.access_token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn reauthentication_keeps_the_connection_id_and_replaces_the_token() {
    let app = spawn().await;
    let original = app.connect().await;
    let session = app
        .reauth_session(
            json!({"connection_id": original.connection_id, "redirect_uri": REDIRECT_URI}),
        )
        .await;
    let html = app
        .open_page(&session.connect_url, &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("Reconnect"));
    assert_eq!(
        html.matches("<option ").count(),
        1,
        "only the connection's provider"
    );

    let code = app.redirect_code(&session).await;
    let resp = app.exchange_code(&code, Some(REDIRECT_URI)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let renewed: TokenResponse = resp.json().await.unwrap();
    assert_eq!(renewed.connection_id, original.connection_id);
    assert_eq!(renewed.customer_id.as_deref(), Some("tenant-acme"));
    assert_ne!(
        renewed.access_token.expose_secret(),
        original.access_token.expose_secret()
    );

    assert_eq!(
        app.introspect(&original.access_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.introspect(&renewed.access_token).await.status(),
        StatusCode::OK
    );
    let issued = app.sandbox.issued_tokens();
    assert_eq!(issued.len(), 2);
    assert!(issued[0].revoked && !issued[1].revoked);
}

#[tokio::test]
async fn reauthentication_works_in_the_embedded_flow_and_can_change_products() {
    let app = spawn().await;
    let original = app.connect().await;
    let session = app
        .reauth_session(
            json!({"connection_id": original.connection_id, "products": ["company", "payment"]}),
        )
        .await;
    let form = app
        .connect_form(&session.connect_url, &embedded_query(None))
        .await;
    let resp = app.submit(form, "approve", "gusto").await;
    let code = data_attribute(&resp.text().await.unwrap(), "code").unwrap();
    let renewed: TokenResponse = app.exchange_code(&code, None).await.json().await.unwrap();
    assert_eq!(renewed.connection_id, original.connection_id);
    assert_eq!(renewed.products, ["company", "payment"]);
}

#[tokio::test]
async fn reauthentication_needs_a_live_connection_of_the_same_app() {
    let app = spawn().await;
    let token = app.connect().await;

    let resp = app.reauthenticate(json!({})).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(
        error_body(resp)
            .await
            .message
            .contains("connection_id is required")
    );

    let resp = app
        .reauthenticate(json!({"connection_id": "no-such-connection"}))
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body = error_body(resp).await;
    assert_eq!(body.name, "not_found_error");
    assert_eq!(body.finch_code.as_deref(), Some("item_not_found"));

    let resp = app
        .api(Method::POST, "/connect/sessions/reauthenticate")
        .basic_auth(OTHER_CLIENT_ID, Some(OTHER_CLIENT_SECRET))
        .json(&json!({"connection_id": token.connection_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::NOT_FOUND,
        "another app's connection does not exist"
    );

    let resp = app
        .reauthenticate(json!({"connection_id": token.connection_id, "minutes_to_expire": 0}))
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    app.disconnect(&token.access_token).await;
    let resp = app
        .reauthenticate(json!({"connection_id": token.connection_id}))
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(error_body(resp).await.message.contains("disconnected"));
}

#[tokio::test]
async fn a_reauthentication_session_lasts_30_days_by_default() {
    let app = spawn().await;
    let token = app.connect().await;
    let url = app
        .reauth_session(json!({"connection_id": token.connection_id, "redirect_uri": REDIRECT_URI}))
        .await
        .connect_url;
    app.sandbox
        .set_clock_offset(chrono::Duration::minutes(43_200 - 1));
    assert_eq!(app.open_page(&url, &[]).await.status(), StatusCode::OK);
    app.sandbox
        .set_clock_offset(chrono::Duration::minutes(43_200));
    assert_eq!(
        app.open_page(&url, &[]).await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn a_reauthentication_code_for_a_since_disconnected_connection_is_rejected() {
    let app = spawn().await;
    let token = app.connect().await;
    let session = app
        .reauth_session(json!({"connection_id": token.connection_id, "redirect_uri": REDIRECT_URI}))
        .await;
    let code = app.redirect_code(&session).await;
    app.disconnect(&token.access_token).await;
    let resp = app.exchange_code(&code, Some(REDIRECT_URI)).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_body(resp).await.name, "invalid_grant_error");
}

#[tokio::test]
async fn sandbox_connections_issue_a_token_without_connect() {
    let app = spawn().await;
    let resp = app
        .basic(Method::POST, "/sandbox/connections")
        .json(&json!({"provider_id": "bamboo_hr", "employee_size": 40}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let json: Value = resp.json().await.unwrap();
    assert_eq!(json["token_type"], "bearer");
    assert_eq!(json["authentication_type"], "api_token");
    assert_eq!(
        json["products"],
        json!(["company", "directory", "individual", "employment"])
    );
    let conn: SandboxConnectionResponse = serde_json::from_value(json).unwrap();
    assert_eq!(conn.provider_id, "bamboo_hr");
    let resp = app.introspect(&conn.access_token).await;
    let body: IntrospectResponse = resp.json().await.unwrap();
    assert_eq!(body.connection_id, conn.connection_id);
    assert_eq!(body.connection_type, ConnectionType::Finch);

    let resp = app
        .basic(Method::POST, "/sandbox/connections")
        .json(&json!({
            "provider_id": "gusto",
            "authentication_type": "assisted",
            "products": ["payment"],
        }))
        .send()
        .await
        .unwrap();
    let json: Value = resp.json().await.unwrap();
    assert_eq!(json["authentication_type"], "assisted");
    assert_eq!(json["products"], json!(["payment"]));
}

#[tokio::test]
async fn sandbox_connection_validation_names_the_field() {
    let app = spawn().await;
    for (body, expected) in [
        (json!({}), "provider_id is required"),
        (json!({"provider_id": "nope"}), "provider_id `nope`"),
        (
            json!({"provider_id": "gusto", "authentication_type": "magic"}),
            "authentication_type",
        ),
        (
            json!({"provider_id": "gusto", "employee_size": 0}),
            "employee_size",
        ),
        (
            json!({"provider_id": "gusto", "products": ["x"]}),
            "products[0]",
        ),
    ] {
        let resp = app
            .basic(Method::POST, "/sandbox/connections")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
        let err = error_body(resp).await;
        assert!(err.message.contains(expected), "{body}: {}", err.message);
    }
}
