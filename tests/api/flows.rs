//! Connect flows against what changes around them (issue 13): credentials saved mid-flow
//! (defect 1), callbacks without a state (defect 5), and the caps on pending flows (defect 9).

use diesel::QueryableByName;
use diesel_async::RunQueryDsl as _;
use secrecy::SecretString;

use crate::helpers::{TestApp, approve_in_emulator, count, spawn_app};

/// Saves new Finch credentials through the settings form, as the admin in `client`.
async fn save_credentials(app: &TestApp, client: &reqwest::Client, client_id: &str, secret: &str) {
    let csrf = app.csrf_of(client, "/t/acme/settings").await;
    let response = client
        .post(format!("{}/t/acme/settings/finch", app.address))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("client_id", client_id),
            ("client_secret", secret),
            ("sandbox", "finch"),
            ("products", "company"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
}

#[derive(QueryableByName, Debug, PartialEq)]
struct Version {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    version: i32,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    sealed: bool,
}

async fn credential_versions(app: &TestApp) -> Vec<Version> {
    let mut conn = app.db.connect().await;
    diesel::sql_query(
        "SELECT version, secret_envelope IS NOT NULL AS sealed FROM finch_credentials ORDER BY version",
    )
    .load(&mut conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn defect_1_a_flow_exchanges_with_the_credentials_it_started_with_after_new_ones_are_saved() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    // A redirect flow starts under credentials version 1 …
    let response = app.start_connect(&app.client, &setup, false).await;
    assert_eq!(response.status(), 303);
    let connect_url = response.headers()["location"].to_str().unwrap().to_owned();
    let callback = approve_in_emulator(&connect_url, None).await;
    // … the admin saves another Finch app's credentials (version 2) meanwhile …
    let (client_id, secret) = ("client-acme-second", "secret-of-the-second-app");
    app.sandbox.register_app(finchgate::sandbox::SandboxApp {
        client_id: client_id.into(),
        client_secret: SecretString::from(secret),
    });
    save_credentials(&app, &app.client, client_id, secret).await;
    assert_eq!(
        credential_versions(&app).await,
        [
            Version {
                version: 1,
                sealed: true
            },
            Version {
                version: 2,
                sealed: true
            },
        ],
        "version 1 stays sealed while a pending flow uses it"
    );
    // … and the flow finishes: its code belongs to version 1's client, so that is what is sent.
    let finished = app.client.get(callback.as_str()).send().await.unwrap();
    let location = finished.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.contains("/connections/"), "connected: {location}");
    assert_eq!(
        count(
            &app.db,
            "SELECT count(*) AS n FROM exchange_attempts WHERE outcome = 'succeeded' AND credentials_version = 1"
        )
        .await,
        1,
        "the ledger names the version used"
    );
    // No pending flow uses version 1 any more: the next housekeeping pass erases it.
    finchgate::connect::reaper::reap(&app.pool, chrono::Utc::now(), &Default::default())
        .await
        .unwrap();
    assert_eq!(
        credential_versions(&app).await,
        [
            Version {
                version: 1,
                sealed: false
            },
            Version {
                version: 2,
                sealed: true
            },
        ]
    );
    // Flows started now use version 2.
    let callback = app.redirect_callback_url(&app.client, &setup).await;
    let finished = app.client.get(callback.as_str()).send().await.unwrap();
    assert!(
        finished.headers()["location"]
            .to_str()
            .unwrap()
            .contains("/connections/")
    );
    assert_eq!(
        count(
            &app.db,
            "SELECT count(*) AS n FROM exchange_attempts WHERE outcome = 'succeeded' AND credentials_version = 2"
        )
        .await,
        1
    );
    app.stop().await;
}

fn token_calls(app: &TestApp) -> usize {
    app.sandbox.count("POST", "/auth/token")
}

async fn flow_statuses(app: &TestApp) -> Vec<String> {
    #[derive(QueryableByName)]
    struct S {
        #[diesel(sql_type = diesel::sql_types::Text)]
        status: String,
    }
    let mut conn = app.db.connect().await;
    diesel::sql_query("SELECT status FROM connect_flows ORDER BY created_at")
        .load::<S>(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.status)
        .collect()
}

#[tokio::test]
async fn defect_5_a_callback_without_state_changes_nothing_until_the_admin_confirms() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    let callback = app.redirect_callback_url(&app.client, &setup).await;
    let code = callback
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let base = format!("{}/t/acme/finch/callback", app.address);

    // Another site sends the signed-in admin's browser an error without a state …
    let forged = app
        .client
        .get(&base)
        .query(&[
            ("error", "access_denied"),
            ("error_description", "\u{202e}attacker text"),
        ])
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    assert_eq!(
        flow_statuses(&app).await,
        ["pending"],
        "the flow is untouched"
    );
    assert_eq!(
        count(&app.db, "SELECT count(*) AS n FROM exchange_attempts").await,
        0
    );
    crate::helpers::assert_nowhere_in_database(&app.db, "attacker text").await;

    // … or a code without a state: nothing is sent to Finch, nothing changes …
    let stateless = app
        .client
        .get(&base)
        .query(&[("code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(stateless.status(), 303);
    let confirm = stateless.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(confirm, "/t/acme/finch/confirm");
    assert_eq!(token_calls(&app), 0);
    assert_eq!(flow_statuses(&app).await, ["pending"]);

    // … until the admin, on finchgate's own page, confirms it finishes their pending flow.
    let page = app.get(&confirm).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Finish connecting?"), "{html}");
    assert!(!html.contains(&code), "the page does not carry the code");
    let csrf = crate::helpers::csrf_token_in(&html);
    let finished = app
        .client
        .post(format!("{}{confirm}", app.address))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(finished.status(), 303);
    assert!(
        finished.headers()["location"]
            .to_str()
            .unwrap()
            .contains("/connections/")
    );
    assert_eq!(token_calls(&app), 1);
    assert_eq!(
        count(
            &app.db,
            "SELECT count(*) AS n FROM exchange_attempts WHERE state_missing AND outcome = 'succeeded'"
        )
        .await,
        1,
        "the ledger records that the state was missing"
    );
    // The code went with the confirmation: confirming again has nothing to finish.
    let again = app
        .client
        .post(format!("{}{confirm}", app.address))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 400);
    assert_eq!(token_calls(&app), 1);
    app.stop().await;
}

#[tokio::test]
async fn defect_9_pending_flows_and_credential_tests_are_capped_with_a_clear_page() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    let mut refused = Vec::new();
    for _ in 0..40 {
        let response = app.start_connect(&app.client, &setup, false).await;
        match response.status().as_u16() {
            303 => {}
            429 => refused.push(response.text().await.unwrap()),
            other => panic!("starting a flow answered {other}"),
        }
    }
    let sessions = app.sandbox.count("POST", "/connect/sessions");
    let pending = count(
        &app.db,
        "SELECT count(*) AS n FROM connect_flows WHERE status = 'pending'",
    )
    .await;
    // The default cap: 10 open attempts per admin (FINCHGATE_PENDING_FLOWS_PER_ADMIN).
    assert_eq!(
        (pending, sessions),
        (10, 10),
        "one Finch session per admitted flow"
    );
    assert_eq!(refused.len(), 30);
    assert!(
        refused[0].contains("10 connection attempts open"),
        "the page says why and what to do: {}",
        refused[0]
    );

    // "Test credentials" asks Finch at most 10 times per 10 minutes per tenant.
    let mut flashes = Vec::new();
    for _ in 0..15 {
        let csrf = app.csrf_of(&app.client, "/t/acme/settings").await;
        let response = app
            .client
            .post(format!("{}/t/acme/settings/finch/test", app.address))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303);
        flashes.push(app.get("/t/acme/settings").await.text().await.unwrap());
    }
    assert_eq!(
        app.sandbox.count("POST", "/connect/sessions"),
        sessions + 10
    );
    assert!(
        flashes
            .last()
            .is_some_and(|page| page.contains("tested too often")),
        "the settings page says to wait"
    );
    app.stop().await;
}
