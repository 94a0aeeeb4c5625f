//! Connect links (issue 14): a customer connects without an account, from `/c/{token}`.
//!
//! The admin creates links through the UI (as a person would); customers are other reqwest
//! clients with their own cookie stores (other browsers). The emulator counts every Connect
//! session created and every code exchanged, so "no Finch session" and "no exchange" are checked
//! on Finch's side.

use url::Url;

use crate::helpers::{ConnectSetup, TestApp, approve_in_emulator, html_unescape, spawn_app};

fn sessions_created(app: &TestApp) -> usize {
    app.sandbox.count("POST", "/connect/sessions")
        + app
            .sandbox
            .count("POST", "/connect/sessions/reauthenticate")
}

fn token_exchanges(app: &TestApp) -> usize {
    app.sandbox.count("POST", "/auth/token")
}

/// The link URL on the page answering a create (shown once).
fn link_url_in(html: &str) -> String {
    let marker = r#"id="link-url" readonly value=""#;
    let rest = html
        .split_once(marker)
        .unwrap_or_else(|| panic!("the page shows the new link: {html}"))
        .1;
    html_unescape(rest.split_once('"').unwrap().0)
}

/// Creates a link through the admin UI with `extra` fields; returns the response.
async fn post_link(
    app: &TestApp,
    admin: &reqwest::Client,
    setup: &ConnectSetup,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let csrf = app
        .csrf_of(admin, &format!("/t/{}/links", setup.slug))
        .await;
    let mut form: Vec<(&str, &str)> = vec![
        ("csrf_token", csrf.as_str()),
        ("customer_id", "cust-42"),
        ("customer_name", "Bolt Bikes"),
        ("product", "company"),
        ("product", "directory"),
        ("sandbox", "finch"),
    ];
    form.extend_from_slice(extra);
    admin
        .post(format!("{}/t/{}/links", app.address, setup.slug))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// A redirect-flow link (back to the tenant's own callback), with `extra` fields.
async fn create_link(app: &TestApp, setup: &ConnectSetup, extra: &[(&str, &str)]) -> String {
    let redirect = setup.redirect_uri_id.to_string();
    let mut fields = vec![("flow", "redirect"), ("redirect_uri_id", redirect.as_str())];
    fields.extend_from_slice(extra);
    let response = post_link(app, &app.client, setup, &fields).await;
    assert_eq!(response.status(), 200, "the link is created");
    link_url_in(&response.text().await.unwrap())
}

/// Whitelists `uri` as a return URI through the settings form.
async fn add_return_uri(app: &TestApp, setup: &ConnectSetup, uri: &str) {
    let csrf = app
        .csrf_of(&app.client, &format!("/t/{}/settings", setup.slug))
        .await;
    let response = app
        .client
        .post(format!(
            "{}/t/{}/settings/redirect-uris",
            app.address, setup.slug
        ))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("kind", "return"),
            ("uri", uri),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
}

/// Opens the link in `browser` and presses Continue; returns the answer to Continue.
async fn open_and_continue(
    app: &TestApp,
    browser: &reqwest::Client,
    link: &str,
) -> reqwest::Response {
    let page = browser.get(link).send().await.unwrap();
    assert_eq!(page.status(), 200, "the link's page opens");
    let html = page.text().await.unwrap();
    let csrf = crate::helpers::csrf_token_in(&html);
    let _ = app;
    browser
        .post(link)
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap()
}

/// Continue in `browser` (redirect flow) and approve in the emulator: the callback URL.
async fn continue_and_approve(app: &TestApp, browser: &reqwest::Client, link: &str) -> Url {
    let response = open_and_continue(app, browser, link).await;
    assert_eq!(response.status(), 303, "Continue opens Finch Connect");
    let to_finch = response.headers()["location"].to_str().unwrap().to_owned();
    approve_in_emulator(&to_finch, None).await
}

#[tokio::test]
async fn a_customer_connects_from_a_link_and_lands_on_the_return_uri_with_only_id_and_status() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    let back = "http://127.0.0.1:9/payroll/done?from=finchgate";
    add_return_uri(&app, &setup, back).await;
    let link = create_link(&app, &setup, &[("return_uri", back)]).await;
    assert!(link.starts_with(&format!("{}/c/", app.address)), "{link}");

    let customer = app.new_browser();
    let page = customer
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("acme") && page.contains("Bolt Bikes"),
        "names tenant and customer"
    );
    assert_eq!(
        sessions_created(&app),
        0,
        "opening the page creates no Finch session"
    );

    let callback = continue_and_approve(&app, &customer, &link).await;
    assert_eq!(sessions_created(&app), 1, "Continue creates it");
    let done = customer.get(callback).send().await.unwrap();
    assert_eq!(done.status(), 303);
    assert_eq!(done.headers()["referrer-policy"], "no-referrer");
    let location = Url::parse(done.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(location.path(), "/payroll/done");
    let keys: Vec<String> = location
        .query_pairs()
        .map(|(k, _)| k.into_owned())
        .collect();
    assert_eq!(
        keys,
        ["from", "connection_id", "status"],
        "nothing else: {location}"
    );
    let pairs: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(pairs["status"], "connected");
    let connection_id: uuid::Uuid = pairs["connection_id"].parse().unwrap();
    assert_eq!(token_exchanges(&app), 1);

    // The admin sees the completed link, pointing at the connection, with the link's customer.
    let list = app
        .get(&format!("/t/{}/links", setup.slug))
        .await
        .text()
        .await
        .unwrap();
    assert!(list.contains(r#"data-status="completed""#), "{list}");
    assert!(list.contains(&connection_id.to_string()));
    let customer_id = crate::helpers::count(
        &app.db,
        &format!(
            "SELECT count(*) AS n FROM connections WHERE id = '{connection_id}' AND customer_id = 'cust-42'"
        ),
    )
    .await;
    assert_eq!(customer_id, 1, "the connection is the link's customer's");
    let ledger = crate::helpers::count(
        &app.db,
        "SELECT count(*) AS n FROM exchange_attempts a JOIN connect_flows f ON f.id = a.flow_id
          WHERE f.link_id IS NOT NULL AND a.user_id IS NULL AND a.outcome = 'succeeded'",
    )
    .await;
    assert_eq!(ledger, 1, "the attempt is in the ledger like any other");
    let audit = crate::helpers::count(
        &app.db,
        "SELECT count(*) AS n FROM audit_events WHERE action = 'link.created'",
    )
    .await;
    assert_eq!(audit, 1);
    app.stop().await;
}

#[tokio::test]
async fn every_bad_token_gets_the_same_page_and_creates_no_finch_session() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    // Completed.
    let completed = create_link(&app, &setup, &[]).await;
    let customer = app.new_browser();
    let callback = continue_and_approve(&app, &customer, &completed).await;
    let done = customer.get(callback).send().await.unwrap();
    assert_eq!(done.headers()["location"], "/c/done?status=connected");
    // Revoked.
    let revoked = create_link(&app, &setup, &[]).await;
    let list = app
        .get(&format!("/t/{}/links", setup.slug))
        .await
        .text()
        .await
        .unwrap();
    let revoke_path = list
        .split("action=\"")
        .filter_map(|s| s.split_once('"').map(|(p, _)| p.to_owned()))
        .find(|p| p.ends_with("/revoke"))
        .unwrap();
    let csrf = crate::helpers::csrf_token_in(&list);
    let response = app
        .client
        .post(format!("{}{revoke_path}", app.address))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    // Expired: created with one day, then eight days pass.
    let expired = create_link(&app, &setup, &[("expires_in_days", "1")]).await;
    let guessed = format!("{}/c/{}", app.address, "A".repeat(43));
    let malformed = format!("{}/c/not-a-token", app.address);
    app.clock.advance(chrono::Duration::days(2));
    let sessions_before = sessions_created(&app);

    let stranger = app.new_browser();
    let csrf = app.csrf_of(&stranger, "/login").await;
    let mut pages = Vec::new();
    for link in [&completed, &revoked, &expired, &guessed, &malformed] {
        let get = stranger.get(link.as_str()).send().await.unwrap();
        assert_eq!(get.status(), 404, "{link}");
        pages.push(get.text().await.unwrap());
        let post = stranger
            .post(link.as_str())
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(post.status(), 404, "{link}");
        pages.push(post.text().await.unwrap());
    }
    assert!(pages[0].contains("This link no longer works"));
    assert!(pages.iter().all(|p| p == &pages[0]), "one page for all");
    assert_eq!(sessions_created(&app), sessions_before, "no Finch session");
    // The revoke is audited.
    let audit = crate::helpers::count(
        &app.db,
        "SELECT count(*) AS n FROM audit_events WHERE action = 'link.revoked'",
    )
    .await;
    assert_eq!(audit, 1);
    app.stop().await;
}

#[tokio::test]
async fn only_the_browser_that_pressed_continue_last_can_finish() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    let link = create_link(&app, &setup, &[]).await;
    let first = app.new_browser();
    let second = app.new_browser();
    let first_callback = continue_and_approve(&app, &first, &link).await;
    let second_callback = continue_and_approve(&app, &second, &link).await;

    // The first browser was superseded: refused, without an exchange.
    let refused = first.get(first_callback.clone()).send().await.unwrap();
    assert!(refused.status().is_client_error(), "{}", refused.status());
    assert_eq!(
        token_exchanges(&app),
        0,
        "no exchange for the superseded browser"
    );
    // The first browser cannot finish the second one's flow either (its cookie is not that one).
    let stolen = first.get(second_callback.clone()).send().await.unwrap();
    assert_eq!(stolen.status(), 403);
    assert_eq!(token_exchanges(&app), 0);
    // Nor can a browser without the cookie.
    let anonymous = app.new_browser();
    let sent_to_login = anonymous.get(second_callback.clone()).send().await.unwrap();
    assert_eq!(sent_to_login.status(), 303);
    assert_eq!(sent_to_login.headers()["location"], "/login");
    assert_eq!(token_exchanges(&app), 0);

    // The second browser finishes.
    let done = second.get(second_callback).send().await.unwrap();
    assert_eq!(done.status(), 303);
    assert_eq!(done.headers()["location"], "/c/done?status=connected");
    assert_eq!(token_exchanges(&app), 1);

    // Completed: it cannot start again, in any browser.
    let sessions = sessions_created(&app);
    let again = second.get(&link).send().await.unwrap();
    assert_eq!(again.status(), 404);
    let csrf = app.csrf_of(&second, "/login").await;
    let again = second
        .post(&link)
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
    assert_eq!(sessions_created(&app), sessions);
    // And the superseded browser still cannot finish anything.
    let late = first.get(first_callback).send().await.unwrap();
    assert!(late.status().is_client_error());
    assert_eq!(token_exchanges(&app), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_return_uri_not_on_the_whitelist_is_refused_at_creation() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    // A redirect URI is not a return URI: the kinds are apart.
    let redirect_uri = setup.redirect_uri.clone();
    for uri in [
        "https://evil.example/steal",
        redirect_uri.as_str(),
        "http://127.0.0.1:9/payroll/done/",
    ] {
        add_return_uri(&app, &setup, "http://127.0.0.1:9/payroll/done").await;
        let response = post_link(&app, &app.client, &setup, &[("return_uri", uri)]).await;
        assert_eq!(response.status(), 400, "{uri}");
        let html = response.text().await.unwrap();
        assert!(html.contains("not on this workspace"), "{html}");
    }
    assert_eq!(
        crate::helpers::count(&app.db, "SELECT count(*) AS n FROM connect_links").await,
        0
    );
    // Expiry: 1 to 30 days.
    for days in ["0", "31"] {
        let response = post_link(&app, &app.client, &setup, &[("expires_in_days", days)]).await;
        assert_eq!(response.status(), 400, "{days}");
    }
    app.stop().await;
}

#[tokio::test]
async fn an_admin_of_another_tenant_can_neither_see_nor_revoke_a_link() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    let link = create_link(&app, &setup, &[]).await;
    let (other, browser) = app.setup_connect_with_client("globex").await;
    let id = crate::helpers::count(&app.db, "SELECT count(*) AS n FROM connect_links").await;
    assert_eq!(id, 1);
    #[derive(diesel::QueryableByName)]
    struct IdRow {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: uuid::Uuid,
    }
    let link_id = {
        use diesel_async::RunQueryDsl as _;
        let mut conn = app.db.connect().await;
        diesel::sql_query("SELECT id FROM connect_links")
            .get_result::<IdRow>(&mut conn)
            .await
            .unwrap()
            .id
    };
    let list = browser
        .get(format!("{}/t/{}/links", app.address, other.slug))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!list.contains("Bolt Bikes") && !list.contains(&link_id.to_string()));
    let csrf = crate::helpers::csrf_token_in(&list);
    for path in [
        format!("/t/{}/links/{link_id}/revoke", other.slug),
        format!("/t/{}/links/{link_id}/revoke", setup.slug),
    ] {
        let response = browser
            .post(format!("{}{path}", app.address))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    let mine = browser
        .get(format!("{}/t/{}/links", app.address, setup.slug))
        .send()
        .await
        .unwrap();
    assert_eq!(mine.status(), 404);
    // The link still works.
    assert_eq!(
        app.new_browser().get(&link).send().await.unwrap().status(),
        200
    );
    app.stop().await;
}

#[tokio::test]
async fn the_embedded_flow_works_from_a_link() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    let response = post_link(&app, &app.client, &setup, &[("flow", "embedded")]).await;
    let link = link_url_in(&response.text().await.unwrap());
    let customer = app.new_browser();
    let page = open_and_continue(&app, &customer, &link).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let attr = |name: &str| crate::helpers::data_attribute(&html, name).unwrap();
    let (session_id, state, csrf, callback) = (
        attr("session-id"),
        attr("state"),
        attr("csrf"),
        attr("callback"),
    );
    let mut connect = app.sandbox.base_url().join("authorize").unwrap();
    connect
        .query_pairs_mut()
        .append_pair("session", &session_id)
        .append_pair("app_type", "spa")
        .append_pair("sdk_host_url", &app.address)
        .append_pair("mode", "employer")
        .append_pair("sdk_version", "sandbox-1");
    let result = crate::helpers::embedded_result_in_emulator(connect.as_str(), Some(&state)).await;
    let code = crate::helpers::data_attribute(&result, "code").unwrap();
    let answer = customer
        .post(format!("{}{callback}", app.address))
        .header("x-csrf-token", &csrf)
        .header("origin", &app.address)
        .json(&serde_json::json!({ "code": code, "state": state }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["location"], "/c/done?status=connected");
    assert_eq!(token_exchanges(&app), 1);
    let done = customer
        .get(format!("{}/c/done?status=connected", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    assert!(
        done.text()
            .await
            .unwrap()
            .contains("You can close this page")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_reconnect_link_reauthenticates_the_connection_it_names() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    let url = app.redirect_callback_url(&app.client, &setup).await;
    let done = app.client.get(url).send().await.unwrap();
    let connection_id =
        crate::helpers::connection_id_from(done.headers()["location"].to_str().unwrap());
    let page = app
        .get(&format!("/t/{}/connections/{connection_id}", setup.slug))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Ask the customer to reconnect"));
    let csrf = crate::helpers::csrf_token_in(&page);
    let id = connection_id.to_string();
    let response = app
        .client
        .post(format!("{}/t/{}/links", app.address, setup.slug))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("reconnect_connection_id", id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let link = link_url_in(&response.text().await.unwrap());
    let customer = app.new_browser();
    let embedded = open_and_continue(&app, &customer, &link).await;
    assert_eq!(embedded.status(), 200, "an embedded reconnect by default");
    assert_eq!(
        app.sandbox
            .count("POST", "/connect/sessions/reauthenticate"),
        1,
        "Finch's reauthenticate session"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_link_revoked_while_its_customer_is_at_finch_cannot_finish() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    let link = create_link(&app, &setup, &[]).await;
    let customer = app.new_browser();
    let callback = continue_and_approve(&app, &customer, &link).await;

    let list = app
        .get(&format!("/t/{}/links", setup.slug))
        .await
        .text()
        .await
        .unwrap();
    assert!(list.contains(r#"data-status="opened""#), "{list}");
    let revoke_path = list
        .split("action=\"")
        .filter_map(|s| s.split_once('"').map(|(p, _)| p.to_owned()))
        .find(|p| p.ends_with("/revoke"))
        .unwrap();
    let csrf = crate::helpers::csrf_token_in(&list);
    let revoked = app
        .client
        .post(format!("{}{revoke_path}", app.address))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 303);

    let refused = customer.get(callback).send().await.unwrap();
    assert!(refused.status().is_client_error(), "{}", refused.status());
    assert_eq!(
        token_exchanges(&app),
        0,
        "nothing exchanged for a revoked link"
    );
    let list = app
        .get(&format!("/t/{}/links", setup.slug))
        .await
        .text()
        .await
        .unwrap();
    assert!(list.contains(r#"data-status="revoked""#), "{list}");
    app.stop().await;
}

#[tokio::test]
async fn a_link_customer_coming_back_without_a_state_is_told_what_to_do_and_nothing_is_exchanged() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    let link = create_link(&app, &setup, &[]).await;
    let customer = app.new_browser();
    let mut callback = continue_and_approve(&app, &customer, &link).await;
    let pairs: Vec<(String, String)> = callback
        .query_pairs()
        .into_owned()
        .filter(|(k, _)| k != "state")
        .collect();
    callback.query_pairs_mut().clear().extend_pairs(pairs);
    let response = customer.get(callback).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Open the link you were sent again")
    );
    assert_eq!(token_exchanges(&app), 0);
    app.stop().await;
}
