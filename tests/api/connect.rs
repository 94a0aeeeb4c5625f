//! Finch Connect end to end through the emulator, and the callback under attack and faults
//! (SECURITY.md T01–T07, T09, T11–T14, T16–T18). Every test counts the `/auth/token` calls the
//! emulator received and the ledger rows written.

use diesel::QueryableByName;
use diesel_async::RunQueryDsl as _;
use finchgate::sandbox::{Endpoint, Fault, FaultKind};
use finchgate::vault::{Purpose, RowContext};
use secrecy::ExposeSecret as _;
use uuid::Uuid;

use crate::helpers::{ConnectSetup, TestApp, connection_id_from, count, spawn_app, spawn_app_with};

#[derive(QueryableByName, Debug)]
struct LedgerRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    stage: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    outcome: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    category: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    state_missing: bool,
}

async fn ledger(app: &TestApp) -> Vec<LedgerRow> {
    let mut conn = app.db.connect().await;
    diesel::sql_query(
        "SELECT stage, outcome, category, state_missing FROM exchange_attempts ORDER BY started_at",
    )
    .load(&mut conn)
    .await
    .unwrap()
}

async fn flow_status(app: &TestApp) -> Vec<String> {
    #[derive(QueryableByName)]
    struct S {
        #[diesel(sql_type = diesel::sql_types::Text)]
        status: String,
    }
    let mut conn = app.db.connect().await;
    let rows: Vec<S> = diesel::sql_query("SELECT status FROM connect_flows ORDER BY created_at")
        .load(&mut conn)
        .await
        .unwrap();
    rows.into_iter().map(|r| r.status).collect()
}

fn token_calls(app: &TestApp) -> usize {
    app.sandbox.count("POST", "/auth/token")
}

async fn callback(_app: &TestApp, client: &reqwest::Client, url: &url::Url) -> reqwest::Response {
    client.get(url.as_str()).send().await.unwrap()
}

/// Checks the stored token: it opens for its tenant and connection, equals what Finch issued,
/// and does not open for any other tenant or connection.
async fn assert_token_stored(app: &TestApp, setup: &ConnectSetup, connection_id: Uuid) {
    #[derive(QueryableByName)]
    struct Env {
        #[diesel(sql_type = diesel::sql_types::Bytea)]
        envelope: Vec<u8>,
    }
    let mut conn = app.db.connect().await;
    let row: Env = diesel::sql_query(format!(
        "SELECT envelope FROM connection_tokens WHERE connection_id = '{connection_id}'"
    ))
    .get_result(&mut conn)
    .await
    .unwrap();
    let vault = app.vault();
    let opened = vault
        .open_string(
            &RowContext::new(Purpose::AccessToken, setup.tenant_id, connection_id),
            &row.envelope,
        )
        .unwrap();
    let issued = app.sandbox.issued_tokens();
    assert!(
        issued
            .iter()
            .any(|t| t.access_token.expose_secret() == opened.expose_secret()),
        "the token Finch issued"
    );
    assert!(
        vault
            .open(
                &RowContext::new(Purpose::AccessToken, Uuid::new_v4(), connection_id),
                &row.envelope
            )
            .is_err()
    );
    assert!(
        vault
            .open(
                &RowContext::new(Purpose::AccessToken, setup.tenant_id, Uuid::new_v4()),
                &row.envelope
            )
            .is_err()
    );
}

#[tokio::test]
async fn the_redirect_flow_connects_and_stores_a_token_only_its_tenant_and_connection_can_open() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    let url = app.redirect_callback_url(&app.client, &setup).await;
    assert!(
        url.as_str().starts_with(&setup.redirect_uri),
        "Finch sends the browser to the whitelisted URI"
    );
    let response = callback(&app, &app.client, &url).await;
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        !location.contains("code") && !location.contains("state"),
        "a clean URL: {location}"
    );
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let connection_id = connection_id_from(&location);
    let page = app
        .get(&format!("/t/acme/connections/{connection_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("gusto") && page.contains("active"));
    assert_token_stored(&app, &setup, connection_id).await;
    assert_eq!(token_calls(&app), 1);
    let rows = ledger(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].stage.as_str(), rows[0].outcome.as_deref()),
        ("exchange", Some("succeeded"))
    );
    assert_eq!(flow_status(&app).await, ["completed"]);
    app.stop().await;
}

#[tokio::test]
async fn the_embedded_flow_connects_through_the_sdk_stand_in_without_a_redirect_uri() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    let page = app.start_connect(&app.client, &setup, true).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let attr = |name: &str| {
        let marker = format!("data-{name}=\"");
        let rest = html.split(&marker).nth(1).unwrap();
        rest.split('"').next().unwrap().to_owned()
    };
    let (session_id, state, csrf) = (attr("session-id"), attr("state"), attr("csrf"));
    assert!(
        html.contains("/connect.js"),
        "the page loads Finch's Connect SDK"
    );
    // What the SDK does in the iframe: open the authorize page in embedded mode and approve.
    let mut connect = app.sandbox.base_url().join("authorize").unwrap();
    connect
        .query_pairs_mut()
        .append_pair("session", &session_id)
        .append_pair("app_type", "spa")
        .append_pair("sdk_host_url", &app.address)
        .append_pair("mode", "employer")
        .append_pair("sdk_version", "sandbox-1");
    let result = crate::helpers::embedded_result_in_emulator(connect.as_str(), Some(&state)).await;
    let code = result
        .split("data-code=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let response = app
        .client
        .post(format!("{}/t/acme/finch/callback", app.address))
        .header("x-csrf-token", &csrf)
        .header("origin", &app.address)
        .json(&serde_json::json!({ "code": code, "state": state }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    let location = body["location"].as_str().unwrap();
    assert_token_stored(&app, &setup, connection_id_from(location)).await;
    assert_eq!(token_calls(&app), 1);
    // Without the CSRF header the same POST is refused (OA-10).
    let refused = app
        .client
        .post(format!("{}/t/acme/finch/callback", app.address))
        .json(&serde_json::json!({ "code": code, "state": state }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    app.stop().await;
}

#[tokio::test]
async fn t01_a_state_from_another_browser_session_is_refused_without_an_exchange() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    let url = app.redirect_callback_url(&app.client, &setup).await;
    // The same admin, signed in from another browser (another session), receives the victim's URL.
    let other = app.new_browser();
    let response = callback(&app, &other, &url).await;
    assert_eq!(
        response.status(),
        303,
        "an anonymous browser is sent to sign in first"
    );
    assert_eq!(token_calls(&app), 0);
    assert_eq!(
        flow_status(&app).await,
        ["pending"],
        "the flow is untouched"
    );
    assert!(ledger(&app).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn t01_a_signed_in_session_that_did_not_start_the_flow_gets_403_and_an_audit_event() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    let url = app.redirect_callback_url(&app.client, &setup).await;
    let second_admin = app
        .create_user("second@acme.test", Some(setup.tenant_id))
        .await;
    let other = app.new_browser();
    assert_eq!(
        app.login_with(&other, &second_admin.email, &second_admin.password)
            .await
            .status(),
        303
    );
    let response = callback(&app, &other, &url).await;
    assert_eq!(response.status(), 403);
    assert_eq!(token_calls(&app), 0);
    assert_eq!(flow_status(&app).await, ["pending"]);
    assert_eq!(count(&app.db, "SELECT count(*) AS n FROM audit_events WHERE action = 'callback.state_session_mismatch'").await, 1);
    // The right session still completes it afterwards.
    assert_eq!(callback(&app, &app.client, &url).await.status(), 303);
    assert_eq!(token_calls(&app), 1);
    app.stop().await;
}

#[tokio::test]
async fn t02_an_empty_or_oversized_or_absent_state_is_a_400_without_an_exchange() {
    let app = spawn_app().await;
    app.setup_connect("acme").await;
    let base = format!("{}/t/acme/finch/callback", app.address);
    let huge = "a".repeat(10 * 1024);
    for query in [
        vec![("code", "abc"), ("state", "")],
        vec![("code", "abc"), ("state", huge.as_str())],
        vec![("code", "abc")],
    ] {
        let response = app.client.get(&base).query(&query).send().await.unwrap();
        assert_eq!(response.status(), 400);
    }
    assert_eq!(token_calls(&app), 0);
    assert!(ledger(&app).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_missing_state_falls_back_to_the_sessions_single_pending_redirect_flow_once_confirmed() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    let mut url = app.redirect_callback_url(&app.client, &setup).await;
    let code = url
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    url.set_query(Some(&format!("code={code}")));
    let response = callback(&app, &app.client, &url).await;
    // DESIGN.md: a callback without a state waits for the admin's confirmation (issue 13).
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/t/acme/finch/confirm");
    assert_eq!(
        token_calls(&app),
        0,
        "nothing is exchanged before the confirmation"
    );
    let csrf = app.csrf_of(&app.client, "/t/acme/finch/confirm").await;
    let response = app
        .client
        .post(format!("{}/t/acme/finch/confirm", app.address))
        .form(&[("csrf_token", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert!(
        response.headers()["location"]
            .to_str()
            .unwrap()
            .contains("/connections/")
    );
    let rows = ledger(&app).await;
    assert!(
        rows[0].state_missing,
        "the ledger records that the state was missing"
    );
    app.stop().await;
}

#[tokio::test]
async fn t03_another_tenants_state_is_refused() {
    let app = spawn_app().await;
    let acme = app.setup_connect("acme").await;
    let url = app.redirect_callback_url(&app.client, &acme).await;
    // An admin of globex presents acme's flow on globex's callback path.
    let globex = app.setup_connect_with_client("globex").await;
    let mut foreign = url.clone();
    foreign.set_path("/t/globex/finch/callback");
    let response = callback(&app, &globex.1, &foreign).await;
    assert_eq!(response.status(), 403);
    assert_eq!(token_calls(&app), 0);
    app.stop().await;
}

#[tokio::test]
async fn t04_replaying_a_completed_callback_lands_on_the_same_connection_without_a_second_exchange()
{
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    let url = app.redirect_callback_url(&app.client, &setup).await;
    let first = callback(&app, &app.client, &url).await.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let second = callback(&app, &app.client, &url).await.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(connection_id_from(&first), connection_id_from(&second));
    assert_eq!(token_calls(&app), 1);
    assert_eq!(
        count(&app.db, "SELECT count(*) AS n FROM connections").await,
        1
    );
    assert_eq!(ledger(&app).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn t05_twenty_concurrent_callbacks_exchange_exactly_once() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    let url = app.redirect_callback_url(&app.client, &setup).await;
    let requests = (0..20).map(|_| {
        let client = app.client.clone();
        let url = url.clone();
        async move { client.get(url.as_str()).send().await.unwrap().status() }
    });
    let statuses = futures_util::future::join_all(requests).await;
    assert!(statuses.iter().all(|s| s.as_u16() == 303), "{statuses:?}");
    assert_eq!(token_calls(&app), 1);
    assert_eq!(
        count(&app.db, "SELECT count(*) AS n FROM connections").await,
        1
    );
    assert_eq!(
        count(&app.db, "SELECT count(*) AS n FROM connection_tokens").await,
        1
    );
    assert_eq!(ledger(&app).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn t06_a_callback_after_the_flows_lifetime_is_refused_as_expired() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    let url = app.redirect_callback_url(&app.client, &setup).await;
    app.clock.advance(chrono::Duration::minutes(29));
    app.get("/t/acme/").await; // keep the session alive
    app.clock.advance(chrono::Duration::minutes(2));
    let response = callback(&app, &app.client, &url).await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("expired"));
    assert_eq!(token_calls(&app), 0);
    assert_eq!(flow_status(&app).await, ["expired"]);
    app.stop().await;
}

#[tokio::test]
async fn t07_a_redirect_uri_not_in_the_whitelist_is_refused_before_finch_is_asked() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    let csrf = app.csrf_of(&app.client, "/t/acme/connect").await;
    for bad in [
        Uuid::new_v4().to_string(),
        "https://evil.example/cb".to_owned(),
        String::new(),
    ] {
        let response = app
            .client
            .post(format!("{}/t/acme/connect", app.address))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("product", "company"),
                ("flow", "redirect"),
                ("redirect_uri_id", &bad),
                ("customer_id", "acme"),
                ("customer_name", "Acme"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad}");
    }
    assert_eq!(app.sandbox.count("POST", "/connect/sessions"), 0);
    let _ = setup;
    app.stop().await;
}

#[tokio::test]
async fn t09_a_token_for_another_customer_is_discarded() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    let url = app.redirect_callback_url(&app.client, &setup).await;
    app.sandbox
        .inject(Fault::new(FaultKind::WrongCustomerId).on(Endpoint::AuthToken));
    let response = callback(&app, &app.client, &url).await;
    assert!(
        response.headers()["location"]
            .to_str()
            .unwrap()
            .contains("/attempts/")
    );
    assert_eq!(token_calls(&app), 1);
    assert_eq!(
        count(&app.db, "SELECT count(*) AS n FROM connection_tokens").await,
        0
    );
    assert_eq!(
        count(&app.db, "SELECT count(*) AS n FROM connections").await,
        0
    );
    let rows = ledger(&app).await;
    assert_eq!(rows[0].category.as_deref(), Some("customer_mismatch"));
    assert_eq!(flow_status(&app).await, ["failed"]);
    app.stop().await;
}

async fn fault_case(kind: FaultKind, expected_category: &str) {
    let app =
        spawn_app_with(|s| s.finch.request_timeout = std::time::Duration::from_millis(800)).await;
    let setup = app.setup_connect("acme").await;
    let url = app.redirect_callback_url(&app.client, &setup).await;
    app.sandbox.inject(Fault::new(kind).on(Endpoint::AuthToken));
    let response = callback(&app, &app.client, &url).await;
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.contains("/attempts/"), "{location}");
    let page = app.get(&location).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Connect again"),
        "the page offers the next step"
    );
    assert_eq!(token_calls(&app), 1, "never retried after sending");
    let rows = ledger(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].outcome.as_deref(), Some("failed"));
    assert_eq!(rows[0].category.as_deref(), Some(expected_category));
    assert_eq!(
        count(&app.db, "SELECT count(*) AS n FROM connection_tokens").await,
        0
    );
    app.stop().await;
}

#[tokio::test]
async fn t11_a_hanging_token_endpoint_times_out_once() {
    fault_case(FaultKind::Hang { seconds: 10 }, "finch_timeout").await;
}

#[tokio::test]
async fn t13_a_reset_after_sending_is_not_retried() {
    fault_case(FaultKind::Reset, "finch_connection_lost").await;
}

#[tokio::test]
async fn t13_a_502_is_not_retried() {
    fault_case(
        FaultKind::ServerError {
            status: finchgate::sandbox::ServerErrorStatus::BadGateway,
        },
        "finch_server_error",
    )
    .await;
}

#[tokio::test]
async fn malformed_json_and_429_are_classified() {
    fault_case(FaultKind::MalformedJson, "finch_malformed_response").await;
    fault_case(
        FaultKind::RateLimit {
            retry_after_seconds: 3,
        },
        "finch_rate_limited",
    )
    .await;
}

#[tokio::test]
async fn t14_an_invalid_grant_is_terminal_and_says_to_connect_again() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    let url = app.redirect_callback_url(&app.client, &setup).await;
    // The code expires inside Finch before the callback arrives.
    app.sandbox.set_clock_offset(chrono::Duration::minutes(11));
    let response = callback(&app, &app.client, &url).await;
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let html = app.get(&location).await.text().await.unwrap();
    assert!(html.contains("authorization code was not accepted"));
    let code = url
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    assert!(!html.contains(&code), "no code on the page");
    assert_eq!(token_calls(&app), 1);
    assert_eq!(
        ledger(&app).await[0].category.as_deref(),
        Some("invalid_grant")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_user_who_denies_access_gets_a_failed_attempt_and_no_exchange() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    let response = app.start_connect(&app.client, &setup, false).await;
    let connect_url = response.headers()["location"].to_str().unwrap().to_owned();
    let url = crate::helpers::decide_in_emulator(&connect_url, None, "deny").await;
    assert!(
        url.query_pairs()
            .any(|(k, v)| k == "error" && v == "access_denied")
    );
    let response = callback(&app, &app.client, &url).await;
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        app.get(&location)
            .await
            .text()
            .await
            .unwrap()
            .contains("cancelled")
    );
    assert_eq!(token_calls(&app), 0);
    assert_eq!(
        ledger(&app).await[0].category.as_deref(),
        Some("user_denied")
    );
    app.stop().await;
}

#[tokio::test]
async fn t16_a_token_that_cannot_be_stored_is_recorded_as_not_persisted_and_kept_nowhere() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    let url = app.redirect_callback_url(&app.client, &setup).await;
    let mut superuser = app.db.connect().await;
    diesel::sql_query("REVOKE INSERT ON connection_tokens FROM finchgate_app")
        .execute(&mut superuser)
        .await
        .unwrap();
    let response = callback(&app, &app.client, &url).await;
    assert!(
        response.headers()["location"]
            .to_str()
            .unwrap()
            .contains("/attempts/")
    );
    assert_eq!(
        token_calls(&app),
        1,
        "the write is retried, never the exchange"
    );
    assert_eq!(
        ledger(&app).await[0].outcome.as_deref(),
        Some("token_not_persisted")
    );
    assert_eq!(flow_status(&app).await, ["token_not_persisted"]);
    assert_eq!(
        count(&app.db, "SELECT count(*) AS n FROM connection_tokens").await,
        0
    );
    for issued in app.sandbox.issued_tokens() {
        crate::helpers::assert_nowhere_in_database(&app.db, issued.access_token.expose_secret())
            .await;
    }
    app.stop().await;
}

#[tokio::test]
async fn t16_a_write_that_fails_fewer_times_than_the_retries_still_stores_the_token() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    let url = app.redirect_callback_url(&app.client, &setup).await;
    let mut superuser = app.db.connect().await;
    // The first two token writes fail (the sequence does not roll back with them); the third of
    // the callback's three write attempts goes through.
    for statement in [
        "CREATE SEQUENCE injected_token_write_failures",
        "CREATE FUNCTION fail_first_token_writes() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
         BEGIN
             IF nextval('injected_token_write_failures') <= 2 THEN
                 RAISE EXCEPTION 'injected commit failure';
             END IF;
             RETURN NEW;
         END $$",
        "CREATE TRIGGER fail_first_token_writes BEFORE INSERT ON connection_tokens
         FOR EACH ROW EXECUTE FUNCTION fail_first_token_writes()",
    ] {
        diesel::sql_query(statement)
            .execute(&mut superuser)
            .await
            .unwrap();
    }
    let response = callback(&app, &app.client, &url).await;
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.contains("/connections/"), "{location}");
    assert_eq!(
        count(
            &app.db,
            "SELECT last_value AS n FROM injected_token_write_failures"
        )
        .await,
        3,
        "two failed writes, then the one that stored it"
    );
    assert_eq!(
        token_calls(&app),
        1,
        "the write is retried, never the exchange"
    );
    assert_eq!(
        count(&app.db, "SELECT count(*) AS n FROM connection_tokens").await,
        1
    );
    assert_token_stored(&app, &setup, connection_id_from(&location)).await;
    let rows = ledger(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].outcome.as_deref(), Some("succeeded"));
    assert_eq!(flow_status(&app).await, ["completed"]);
    app.stop().await;
}

/// Forwards TCP connections from `listener` to `target` (counting them) until its task is
/// aborted; aborting closes the port and every forwarded connection.
async fn tcp_proxy(
    listener: std::net::TcpListener,
    target: std::net::SocketAddr,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    listener.set_nonblocking(true).unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let mut connections = tokio::task::JoinSet::new();
    while let Ok((mut inbound, _)) = listener.accept().await {
        accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        connections.spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

#[tokio::test]
async fn t12_a_refused_connection_to_finch_is_retried_and_the_flow_completes() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    // Finch's API is reached through a proxy the test can take down and bring back.
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_addr = proxy.local_addr().unwrap();
    let app = spawn_app_with(|settings| {
        settings.finch.api_url = url::Url::parse(&format!("http://{proxy_addr}/")).unwrap();
    })
    .await;
    let emulator: std::net::SocketAddr = ([127, 0, 0, 1], app.sandbox.port()).into();
    let before = Arc::new(AtomicUsize::new(0));
    let first = tokio::spawn(tcp_proxy(proxy, emulator, before.clone()));
    let setup = app.setup_connect("acme").await;
    let url = app.redirect_callback_url(&app.client, &setup).await;
    assert!(
        AtomicUsize::load(&before, Ordering::SeqCst) >= 1,
        "the Connect session went through the proxy"
    );
    // Down: the port refuses connections; pooled connections are closed.
    first.abort();
    let _ = first.await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // Back up a moment after the callback's first connection attempt was refused.
    let after = Arc::new(AtomicUsize::new(0));
    let counter = after.clone();
    let second = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(120)).await;
        tcp_proxy(
            std::net::TcpListener::bind(proxy_addr).unwrap(),
            emulator,
            counter,
        )
        .await;
    });
    let response = callback(&app, &app.client, &url).await;
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(response.status(), 303);
    assert!(
        location.contains("/connections/"),
        "the flow completed: {location}"
    );
    assert_eq!(
        AtomicUsize::load(&after, Ordering::SeqCst),
        1,
        "one connection reached Finch after the refusal"
    );
    assert_eq!(token_calls(&app), 1, "one request received");
    let rows = ledger(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].outcome.as_deref(), Some("succeeded"));
    assert_eq!(flow_status(&app).await, ["completed"]);
    second.abort();
    app.stop().await;
}

#[tokio::test]
async fn t35_an_admin_whose_callbacks_keep_being_refused_is_throttled_before_any_lookup() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    let genuine = app.redirect_callback_url(&app.client, &setup).await;
    let mut statuses = Vec::new();
    for n in 0..25 {
        // Well-formed guesses: a code and a state that match no flow.
        let guess = format!(
            "{}/t/acme/finch/callback?code=guess{n:027}&state={:043}",
            app.address, n
        );
        statuses.push(app.get(&guess[app.address.len()..]).await.status().as_u16());
    }
    let limit = finchgate::connect::callback::REFUSED_CALLBACK_LIMIT as usize;
    assert!(statuses[..limit].iter().all(|s| *s == 400), "{statuses:?}");
    assert!(statuses[limit..].iter().all(|s| *s == 429), "{statuses:?}");
    // While throttled even the genuine callback waits, untouched.
    assert_eq!(callback(&app, &app.client, &genuine).await.status(), 429);
    assert_eq!(
        token_calls(&app),
        0,
        "no guess and no throttled callback reached Finch"
    );
    assert_eq!(flow_status(&app).await, ["pending"]);
    assert!(
        ledger(&app).await.is_empty(),
        "guesses write no ledger rows"
    );
    // After the window the genuine callback completes.
    app.clock.advance(
        finchgate::connect::callback::REFUSED_CALLBACK_WINDOW + chrono::Duration::seconds(1),
    );
    let response = callback(&app, &app.client, &genuine).await;
    assert_eq!(response.status(), 303);
    assert!(
        response.headers()["location"]
            .to_str()
            .unwrap()
            .contains("/connections/")
    );
    assert_eq!(token_calls(&app), 1);
    app.stop().await;
}

#[tokio::test]
async fn t17_the_reaper_marks_an_abandoned_exchange_as_unknown_outcome_without_exchanging() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    let _ = app.redirect_callback_url(&app.client, &setup).await;
    let mut superuser = app.db.connect().await;
    // A process claimed the flow and wrote the ledger row, then died.
    diesel::sql_query(
        "WITH f AS (UPDATE connect_flows SET status = 'exchanging', claimed_at = now() - interval '10 minutes' RETURNING id, tenant_id)
         INSERT INTO exchange_attempts (tenant_id, flow_id, stage, started_at) SELECT tenant_id, id, 'exchange', now() - interval '10 minutes' FROM f",
    )
    .execute(&mut superuser)
    .await
    .unwrap();
    let reaped =
        finchgate::connect::reaper::reap(&app.pool, chrono::Utc::now(), &Default::default())
            .await
            .unwrap();
    assert_eq!(reaped.unknown_outcome, 1);
    assert_eq!(flow_status(&app).await, ["unknown_outcome"]);
    assert_eq!(
        ledger(&app).await[0].outcome.as_deref(),
        Some("unknown_outcome")
    );
    assert_eq!(token_calls(&app), 0);
    app.stop().await;
}

#[tokio::test]
async fn t18_when_the_ledger_cannot_be_written_nothing_is_sent_to_finch() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    let url = app.redirect_callback_url(&app.client, &setup).await;
    let mut superuser = app.db.connect().await;
    diesel::sql_query("REVOKE INSERT ON exchange_attempts FROM finchgate_app")
        .execute(&mut superuser)
        .await
        .unwrap();
    let response = callback(&app, &app.client, &url).await;
    assert_eq!(response.status(), 503);
    assert_eq!(token_calls(&app), 0);
    assert_eq!(
        flow_status(&app).await,
        ["pending"],
        "the claim was rolled back with the ledger row"
    );
    diesel::sql_query("GRANT INSERT ON exchange_attempts TO finchgate_app")
        .execute(&mut superuser)
        .await
        .unwrap();
    assert_eq!(
        callback(&app, &app.client, &url).await.status(),
        303,
        "the unused code still works"
    );
    assert_eq!(token_calls(&app), 1);
    app.stop().await;
}

#[tokio::test]
async fn refresh_reconnect_and_disconnect_manage_the_connection() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    let url = app.redirect_callback_url(&app.client, &setup).await;
    let location = callback(&app, &app.client, &url).await.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let id = connection_id_from(&location);
    let page = format!("/t/acme/connections/{id}");
    let post = |action: &'static str, extra: Vec<(&'static str, String)>| {
        let app = &app;
        let page = page.clone();
        async move {
            let csrf = app.csrf_of(&app.client, &page).await;
            let mut form = vec![("csrf_token", csrf)];
            form.extend(extra);
            app.client
                .post(format!("{}{page}/{action}", app.address))
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(post("refresh", vec![]).await.status(), 303);
    assert!(
        app.get(&page)
            .await
            .text()
            .await
            .unwrap()
            .contains("reports this connection as active")
    );
    assert_eq!(app.sandbox.count("GET", "/introspect"), 1);
    // Reconnect through the redirect flow: the new token replaces the old one.
    let reconnect = post(
        "reconnect",
        vec![("redirect_uri_id", setup.redirect_uri_id.to_string())],
    )
    .await;
    assert_eq!(reconnect.status(), 303);
    let connect_url = reconnect.headers()["location"].to_str().unwrap().to_owned();
    let back = crate::helpers::approve_in_emulator(&connect_url, None).await;
    let again = callback(&app, &app.client, &back).await.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(connection_id_from(&again), id, "the same connection");
    assert_eq!(
        count(&app.db, "SELECT count(*) AS n FROM connection_tokens").await,
        1
    );
    assert_token_stored(&app, &setup, id).await;
    // A failure at Finch changes nothing.
    app.sandbox.inject(
        Fault::new(FaultKind::ServerError {
            status: Default::default(),
        })
        .on(Endpoint::Disconnect),
    );
    assert_eq!(post("disconnect", vec![]).await.status(), 303);
    assert!(
        app.get(&page)
            .await
            .text()
            .await
            .unwrap()
            .contains("Nothing was changed")
    );
    assert_eq!(
        count(&app.db, "SELECT count(*) AS n FROM connection_tokens").await,
        1
    );
    // Finch did disconnect (the emulator processes, then fails the answer): the retry finds the
    // token unknown at Finch, so the token is deleted and the connection marked disconnected.
    assert_eq!(post("disconnect", vec![]).await.status(), 303);
    assert_eq!(
        count(&app.db, "SELECT count(*) AS n FROM connection_tokens").await,
        0
    );
    assert!(
        app.get(&page)
            .await
            .text()
            .await
            .unwrap()
            .contains("disconnected")
    );
    app.stop().await;
}

#[tokio::test]
async fn exchange_attempts_are_counted_by_outcome_and_category_with_their_latency() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    let url = app.redirect_callback_url(&app.client, &setup).await;
    assert_eq!(callback(&app, &app.client, &url).await.status(), 303);
    // A second flow whose exchange fails at Finch with a 5xx.
    let again = app.redirect_callback_url(&app.client, &setup).await;
    app.sandbox.inject(
        Fault::new(FaultKind::ServerError {
            status: Default::default(),
        })
        .on(Endpoint::AuthToken),
    );
    assert_eq!(callback(&app, &app.client, &again).await.status(), 303);
    let body = app.metrics().await.text().await.unwrap();
    let line = |needle: &str| {
        body.lines()
            .find(|l| l.starts_with("finchgate_exchange_attempts_total") && l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle} in {body}"))
            .to_owned()
    };
    // The recorder is process-wide (other tests count too): each series exists and is counted.
    let succeeded = line(r#"outcome="succeeded""#);
    assert!(succeeded.contains(r#"category="none""#), "{succeeded}");
    let failed = line(r#"outcome="failed""#);
    assert!(failed.contains("category=\""), "{failed}");
    assert!(
        body.contains("finchgate_exchange_duration_seconds_bucket"),
        "latency histogram: {body}"
    );
    assert!(
        body.contains("finchgate_open_flows"),
        "open flows gauge: {body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn every_failure_category_has_a_page_a_person_can_act_on() {
    for failure in finchgate::domain::failure::ALL {
        assert!(failure.next_step.ends_with('.'), "{}", failure.category);
    }
    // The attempt page renders any category stored on a ledger row.
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    let mut superuser = app.db.connect().await;
    for failure in finchgate::domain::failure::ALL {
        let id = Uuid::new_v4();
        diesel::sql_query(format!(
            "INSERT INTO exchange_attempts (id, tenant_id, stage, finished_at, outcome, category, actor)
             VALUES ('{id}', '{}', 'exchange', now(), 'failed', '{}', '{}')",
            setup.tenant_id,
            failure.category,
            failure.actor.as_str()
        ))
        .execute(&mut superuser)
        .await
        .unwrap();
        let html = app
            .get(&format!("/t/acme/attempts/{id}"))
            .await
            .text()
            .await
            .unwrap();
        assert!(
            html.contains(&askama_escape(failure.title)),
            "{}",
            failure.category
        );
        assert!(html.contains("Connect again"), "{}", failure.category);
    }
    app.stop().await;
}

fn askama_escape(s: &str) -> String {
    s.replace('&', "&#38;")
        .replace('\'', "&#39;")
        .replace('"', "&#34;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
}
