//! The Connect page (`/authorize`): approve and deny in the redirect and embedded flows, error
//! pages, and the SDK stand-in `connect.js`.

use reqwest::StatusCode;
use serde_json::json;

use super::{
    ConnectForm, REDIRECT_URI, SDK_HOST, embedded_query, query_param, request_id, session_body,
    spawn,
};
use crate::helpers::{data_attribute, hidden_inputs};

#[tokio::test]
async fn the_connect_page_lists_providers_and_carries_the_session_and_state() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let resp = app
        .open_page(&session.connect_url, &[("state", "a&b\"<c>".to_owned())])
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["referrer-policy"], "no-referrer");
    let html = resp.text().await.unwrap();
    for id in [
        "gusto",
        "adp_run",
        "paychex_flex",
        "bamboo_hr",
        "justworks",
        "rippling",
    ] {
        assert!(html.contains(&format!(r#"<option value="{id}""#)), "{id}");
    }
    assert!(html.contains(r#"id="provider""#));
    assert!(html.contains(r#"id="approve""#) && html.contains(r#"id="deny""#));
    assert!(html.contains("Acme Corp"));
    assert!(!html.contains("a&b\"<c>"), "the state must be escaped");
    let form = ConnectForm {
        fields: hidden_inputs(&html),
    };
    assert_eq!(form.get("session"), Some(session.session_id.as_str()));
    assert_eq!(form.get("state"), Some("a&b\"<c>"));
    assert!(form.get("form_token").is_some());
}

#[tokio::test]
async fn the_connect_page_preselects_the_integration_provider() {
    let app = spawn().await;
    let mut body = session_body(Some(REDIRECT_URI));
    body["integration"] = json!({"provider": "justworks"});
    let session = app.new_session(body).await;
    let html = app
        .open_page(&session.connect_url, &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(r#"<option value="justworks" selected>"#),
        "{html}"
    );
    assert_eq!(html.matches(" selected>").count(), 1);
}

#[tokio::test]
async fn an_unknown_or_missing_session_shows_an_error_page() {
    let app = spawn().await;
    let resp = app
        .http
        .get(app.url("/authorize?session=no-such-session"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    request_id(&resp);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(resp.text().await.unwrap().contains("does not exist"));

    let resp = app.http.get(app.url("/authorize")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_expired_session_shows_an_error_page() {
    let app = spawn().await;
    let session = app.redirect_session().await; // 30 minutes
    app.sandbox.set_clock_offset(chrono::Duration::minutes(31));
    let resp = app.open_page(&session.connect_url, &[]).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap().contains("expired"));
}

#[tokio::test]
async fn a_session_can_be_approved_only_once() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let form = app.connect_form(&session.connect_url, &[]).await;
    let again = ConnectForm {
        fields: form.fields.clone(),
    };
    assert_eq!(
        app.submit(form, "approve", "gusto").await.status(),
        StatusCode::SEE_OTHER
    );
    let resp = app.submit(again, "approve", "gusto").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("already been completed")
    );
    assert_eq!(
        app.open_page(&session.connect_url, &[]).await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn the_redirect_flow_needs_a_session_with_a_redirect_uri() {
    let app = spawn().await;
    let session = app.new_session(session_body(None)).await;
    let resp = app.open_page(&session.connect_url, &[]).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap().contains("redirect_uri"));
    // The same session works embedded.
    let form = app
        .connect_form(&session.connect_url, &embedded_query(None))
        .await;
    assert_eq!(form.get("app_type"), Some("spa"));
}

#[tokio::test]
async fn approving_redirects_with_the_code_and_state_keeping_the_uris_query() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let location = app
        .complete_redirect(&session, Some("opaque state/+="), "approve")
        .await;
    assert_eq!(location.host_str(), Some("127.0.0.1"));
    assert_eq!(location.path(), "/t/acme/finch/callback");
    assert_eq!(query_param(&location, "tenant").as_deref(), Some("acme"));
    assert_eq!(
        query_param(&location, "state").as_deref(),
        Some("opaque state/+=")
    );
    let code = query_param(&location, "code").unwrap();
    assert!(uuid::Uuid::parse_str(&code).is_ok());
}

#[tokio::test]
async fn approving_without_a_state_sends_none_back() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let location = app.complete_redirect(&session, None, "approve").await;
    assert!(query_param(&location, "code").is_some());
    assert!(query_param(&location, "state").is_none());
}

#[tokio::test]
async fn denying_redirects_with_access_denied_and_the_state() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let location = app.complete_redirect(&session, Some("s-1"), "deny").await;
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied")
    );
    assert!(query_param(&location, "error_description").is_some());
    assert_eq!(query_param(&location, "state").as_deref(), Some("s-1"));
    assert_eq!(query_param(&location, "tenant").as_deref(), Some("acme"));
    assert!(query_param(&location, "code").is_none());
    // A denial does not use the session up: the employer may still approve.
    let location = app
        .complete_redirect(&session, Some("s-1"), "approve")
        .await;
    assert!(query_param(&location, "code").is_some());
}

#[tokio::test]
async fn a_forged_or_incomplete_form_is_refused() {
    let app = spawn().await;
    let session = app.redirect_session().await;

    let mut form = app.connect_form(&session.connect_url, &[]).await;
    form.set("form_token", "forged");
    assert_eq!(
        app.submit(form, "approve", "gusto").await.status(),
        StatusCode::FORBIDDEN
    );

    let form = app.connect_form(&session.connect_url, &[]).await;
    assert_eq!(
        app.submit(form, "approve", "not_a_provider").await.status(),
        StatusCode::BAD_REQUEST
    );

    let form = app.connect_form(&session.connect_url, &[]).await;
    assert_eq!(
        app.submit(form, "maybe", "gusto").await.status(),
        StatusCode::BAD_REQUEST
    );

    // Nothing was approved along the way.
    let form = app.connect_form(&session.connect_url, &[]).await;
    assert_eq!(
        app.submit(form, "approve", "gusto").await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn embedded_approval_posts_a_success_message_to_the_sdk_host() {
    let app = spawn().await;
    let session = app.new_session(session_body(None)).await;
    let resp = app
        .open_page(&session.connect_url, &embedded_query(Some("st-9")))
        .await;
    assert_eq!(
        resp.headers()["content-security-policy"],
        format!("frame-ancestors {SDK_HOST}").as_str()
    );
    let html = resp.text().await.unwrap();
    assert!(html.contains(r#"id="close""#), "embedded pages offer Close");

    let html = app
        .complete_embedded(&session, Some("st-9"), "approve")
        .await;
    assert_eq!(data_attribute(&html, "kind").as_deref(), Some("success"));
    assert_eq!(data_attribute(&html, "state").as_deref(), Some("st-9"));
    assert_eq!(
        data_attribute(&html, "target-origin").as_deref(),
        Some(SDK_HOST)
    );
    assert!(html.contains("finch-auth-message-v2"));
    assert!(html.contains("postMessage"));
    let code = data_attribute(&html, "code").unwrap();
    assert!(uuid::Uuid::parse_str(&code).is_ok());
}

#[tokio::test]
async fn embedded_denial_posts_an_employer_connection_error() {
    let app = spawn().await;
    let session = app.new_session(session_body(None)).await;
    let html = app.complete_embedded(&session, None, "deny").await;
    assert_eq!(data_attribute(&html, "kind").as_deref(), Some("error"));
    assert_eq!(
        data_attribute(&html, "error-type").as_deref(),
        Some("employer_connection_error")
    );
    assert_eq!(
        data_attribute(&html, "should-close").as_deref(),
        Some("true")
    );
    assert!(data_attribute(&html, "error-message").is_some());
    assert!(data_attribute(&html, "code").is_none());
}

#[tokio::test]
async fn embedded_mode_needs_an_http_sdk_host_url() {
    let app = spawn().await;
    let session = app.new_session(session_body(None)).await;
    for bad in [None, Some("javascript:alert(1)"), Some("not a url")] {
        let mut q = vec![("app_type", "spa".to_owned())];
        if let Some(v) = bad {
            q.push(("sdk_host_url", v.to_owned()));
        }
        let resp = app.open_page(&session.connect_url, &q).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad:?}");
    }
}

#[tokio::test]
async fn an_embedded_error_page_tells_the_sdk() {
    let app = spawn().await;
    let url = app.url("/authorize?session=missing");
    let resp = app.open_page(&url, &embedded_query(None)).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let html = resp.text().await.unwrap();
    assert_eq!(data_attribute(&html, "kind").as_deref(), Some("error"));
    assert_eq!(
        data_attribute(&html, "error-type").as_deref(),
        Some("validation_error")
    );
}

#[tokio::test]
async fn the_connect_sdk_stand_in_is_served_as_javascript() {
    let app = spawn().await;
    let resp = app.http.get(app.url("/connect.js")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/javascript")
    );
    let js = resp.text().await.unwrap();
    for needle in [
        "window.FinchConnect",
        "initialize",
        "finch-auth-message-v2",
        "event.origin !== connectOrigin",
        "app_type",
        "sdk_host_url",
        "sandbox-1",
    ] {
        assert!(js.contains(needle), "{needle}");
    }
}
