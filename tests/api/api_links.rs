//! Connect links by API (issue 14): `POST/GET /api/v1/links`, `GET/DELETE /api/v1/links/{id}`,
//! `Idempotency-Key` over HTTP, refusals, and the end-to-end API test of the "Done when":
//! a key made by the CLI, a link made by the API and completed through the emulator, the
//! connection found by `customer_id` and disconnected — every answer validated against
//! `/api/v1/openapi.json` (the `Api` client does it).

use finchgate::domain::ApiScope;
use serde_json::{Value, json};

use crate::api_keys::finchgate;
use crate::api_support::{Api, api_link, key_for};
use crate::helpers::{TestApp, approve_in_emulator, count, csrf_token_in, spawn_app};

fn embedded(customer_id: &str) -> Value {
    json!({
        "customer_id": customer_id,
        "customer_name": "Bolt Bikes",
        "products": ["company", "directory"],
        "sandbox": "finch",
        "flow": "embedded",
    })
}

async fn links_of(app: &TestApp, customer_id: &str) -> i64 {
    count(
        &app.db,
        &format!("SELECT count(*) AS n FROM connect_links WHERE customer_id = '{customer_id}'"),
    )
    .await
}

#[tokio::test]
async fn idempotency_keys_replay_the_first_answer_refuse_another_body_and_make_one_link_under_a_race()
 {
    let app = spawn_app().await;
    let tenant = app.create_tenant("acme").await;
    let api = Api::new(&app).await;
    let key = key_for(&app, tenant, &[ApiScope::LinksWrite]).await;

    let first = api
        .post_json(&key, "/api/v1/links", Some("order-1"), &embedded("cust-1"))
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let url = first.json["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/c/", app.address)), "{url}");
    assert_eq!(first.json["status"], "open");
    assert_eq!(first.json["flow"], "embedded");

    let replay = api
        .post_json(&key, "/api/v1/links", Some("order-1"), &embedded("cust-1"))
        .await;
    assert_eq!(replay.status, 201);
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    assert_eq!(replay.json, first.json, "the first answer, as it was");
    assert_eq!(links_of(&app, "cust-1").await, 1);

    let other = api
        .post_json(&key, "/api/v1/links", Some("order-1"), &embedded("cust-2"))
        .await;
    assert_eq!(other.status, 422, "{}", other.text);
    assert_eq!(other.json["code"], "idempotency_conflict");
    assert_eq!(links_of(&app, "cust-2").await, 0);

    // Without a key, each POST makes a link.
    for _ in 0..2 {
        let made = api
            .post_json(&key, "/api/v1/links", None, &embedded("cust-3"))
            .await;
        assert_eq!(made.status, 201);
    }
    assert_eq!(links_of(&app, "cust-3").await, 2);

    // 20 concurrent identical POSTs: one link, one answer.
    let race = embedded("cust-race");
    let answers = futures_util::future::join_all(
        (0..20).map(|_| api.post_json(&key, "/api/v1/links", Some("race-1"), &race)),
    )
    .await;
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|a| {
            assert_eq!(a.status, 201, "{}", a.text);
            a.json["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "every twin got the same link");
    assert_eq!(links_of(&app, "cust-race").await, 1, "exactly one row");
    let replayed = answers
        .iter()
        .filter(|a| a.headers.get("idempotent-replayed").is_some())
        .count();
    assert_eq!(replayed, 19);
    // The stored answers hold the link URLs sealed, never in clear.
    let stored = count(
        &app.db,
        "SELECT count(*) AS n FROM idempotency_keys WHERE response_body LIKE 'sealed:%'",
    )
    .await;
    assert_eq!(stored, 2);
    let clear = count(
        &app.db,
        "SELECT count(*) AS n FROM idempotency_keys WHERE response_body LIKE '%/c/%'",
    )
    .await;
    assert_eq!(clear, 0);
    app.stop().await;
}

#[tokio::test]
async fn refused_bodies_are_422s_naming_the_field_and_make_nothing() {
    let app = spawn_app().await;
    let tenant = app.create_tenant("acme").await;
    let api = Api::new(&app).await;
    let key = key_for(&app, tenant, &[ApiScope::LinksWrite]).await;
    let with = |field: &str, value: Value| {
        let mut body = embedded("cust-bad");
        body[field] = value;
        body
    };
    let cases = [
        (
            with("return_uri", json!("https://evil.example/steal")),
            "return_uri",
        ),
        (with("colour", json!("red")), "colour"),
        (with("expires_in_days", json!(31)), "expires_in_days"),
        (with("products", json!(["payroll-everything"])), "products"),
        (with("products", json!([])), "products"),
        (with("flow", json!("popup")), "flow"),
        (with("sandbox", json!("moon")), "sandbox"),
        (with("customer_id", json!("")), "customer_id"),
        // A redirect link needs a whitelisted redirect URI; this tenant has none.
        (with("flow", json!("redirect")), "redirect_uri"),
    ];
    for (body, field) in cases {
        let answer = api
            .post_json(&key, "/api/v1/links", Some("same-key"), &body)
            .await;
        assert_eq!(answer.status, 422, "{field}: {}", answer.text);
        assert_eq!(answer.json["fields"], json!([field]), "{}", answer.text);
        assert!(
            !answer.text.contains("evil.example"),
            "the value is not repeated"
        );
    }
    // A refusal is not stored: the same Idempotency-Key still works for a good body.
    let good = api
        .post_json(
            &key,
            "/api/v1/links",
            Some("same-key"),
            &embedded("cust-ok"),
        )
        .await;
    assert_eq!(good.status, 201, "{}", good.text);
    assert_eq!(links_of(&app, "cust-bad").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn another_tenants_key_finds_no_link_and_a_key_without_the_scope_is_told_which() {
    let app = spawn_app().await;
    let a = app.create_tenant("tenant-a").await;
    let b = app.create_tenant("tenant-b").await;
    let api = Api::new(&app).await;
    let a_link = api_link(&app, a).await;
    let b_key = key_for(&app, b, ApiScope::ALL).await;
    let path = format!("/api/v1/links/{a_link}");

    assert_eq!(api.get(&b_key, &path).await.status, 404);
    assert_eq!(api.delete(&b_key, &path).await.status, 404);
    let listed = api.get(&b_key, "/api/v1/links").await;
    assert_eq!(listed.json["data"], json!([]));
    let revoked = count(
        &app.db,
        "SELECT count(*) AS n FROM connect_links WHERE revoked_at IS NOT NULL",
    )
    .await;
    assert_eq!(revoked, 0, "nothing changed");

    let reader = key_for(&app, a, &[ApiScope::ConnectionsRead]).await;
    let refused = api
        .post_json(&reader, "/api/v1/links", None, &embedded("cust-x"))
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.json["scope"], "links:write");
    assert_eq!(
        api.delete(&reader, &path).await.json["scope"],
        "links:write"
    );
    assert_eq!(api.get(&reader, &path).await.status, 200, "reading is fine");
    let neither = key_for(&app, a, &[ApiScope::ConnectionsWrite]).await;
    let refused = api.get(&neither, "/api/v1/links").await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.json["scope"], "connections:read");
    assert_eq!(links_of(&app, "cust-x").await, 0);

    // The owner revokes with links:write; the audit names the key.
    let writer = key_for(&app, a, &[ApiScope::LinksWrite]).await;
    let gone = api.delete(&writer, &path).await;
    assert_eq!(gone.status, 200);
    assert_eq!(gone.json["status"], "revoked");
    assert!(
        gone.json.get("url").is_none(),
        "the URL is never returned again"
    );
    let audited = count(
        &app.db,
        "SELECT count(*) AS n FROM audit_events WHERE action IN ('link.created', 'link.revoked')
          AND actor_kind = 'api_key' AND actor_user_id IS NULL AND details ? 'api_key'",
    )
    .await;
    assert_eq!(audited, 2, "made and revoked by a key, audited as the key");
    let attributed = count(
        &app.db,
        "SELECT count(*) AS n FROM connect_links l JOIN api_keys k ON k.id = l.created_by_key",
    )
    .await;
    assert_eq!(attributed, 1);
    app.stop().await;
}

#[tokio::test]
async fn the_list_pages_with_a_cursor_and_filters_by_status_and_customer() {
    let app = spawn_app().await;
    let tenant = app.create_tenant("acme").await;
    let api = Api::new(&app).await;
    let key = key_for(&app, tenant, &[ApiScope::LinksWrite]).await;
    let mut ids = Vec::new();
    for customer in ["c-1", "c-2", "c-2"] {
        let made = api
            .post_json(&key, "/api/v1/links", None, &embedded(customer))
            .await;
        ids.push(made.json["id"].as_str().unwrap().to_owned());
    }
    let first = api.get(&key, "/api/v1/links?limit=2").await;
    assert_eq!(first.json["data"].as_array().unwrap().len(), 2);
    let cursor = first.json["next_cursor"].as_str().unwrap().to_owned();
    let second = api
        .get(&key, &format!("/api/v1/links?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(second.json["data"].as_array().unwrap().len(), 1);
    assert_eq!(second.json["next_cursor"], Value::Null);
    assert_eq!(second.json["data"][0]["id"], ids[0], "oldest last");

    let c2 = api.get(&key, "/api/v1/links?customer_id=c-2").await;
    assert_eq!(c2.json["data"].as_array().unwrap().len(), 2);
    api.delete(&key, &format!("/api/v1/links/{}", ids[1])).await;
    let revoked = api.get(&key, "/api/v1/links?status=revoked").await;
    assert_eq!(revoked.json["data"].as_array().unwrap().len(), 1);
    assert_eq!(revoked.json["data"][0]["id"], ids[1]);
    let open = api.get(&key, "/api/v1/links?status=open").await;
    assert_eq!(open.json["data"].as_array().unwrap().len(), 2);
    let bad = api.get(&key, "/api/v1/links?status=nope").await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.json["fields"], json!(["status"]));
    app.stop().await;
}

/// Issue 14, "Done when": the API end to end, with a real HTTP client.
#[tokio::test]
async fn end_to_end_a_backend_links_a_customer_finds_the_connection_and_disconnects_it() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    let api = Api::new(&app).await;

    // A key made by the CLI (a process), printed once.
    let made = finchgate(
        &app,
        &[
            "api-key",
            "create",
            "--tenant",
            "acme",
            "--name",
            "backend",
            "--scope",
            "connections:read",
            "connections:write",
            "links:write",
        ],
    )
    .await;
    assert_eq!(made.code, 0, "{}", made.stderr);
    let key = made.stdout.trim().to_owned();

    // The backend makes a link (redirect flow to the tenant's whitelisted callback).
    let created = api
        .post_json(
            &key,
            "/api/v1/links",
            Some("onboard-cust-77"),
            &json!({
                "customer_id": "cust-77",
                "customer_name": "Bolt Bikes",
                "products": ["company", "directory"],
                "sandbox": "finch",
                "redirect_uri": setup.redirect_uri,
                "expires_in_days": 3,
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json["flow"], "redirect");
    assert_eq!(
        created.headers["cache-control"], "no-store",
        "the URL is not cached"
    );
    let link_id = created.json["id"].as_str().unwrap().to_owned();
    let url = created.json["url"].as_str().unwrap().to_owned();

    // The customer (another browser) opens it, continues, approves at Finch, comes back.
    let customer = app.new_browser();
    let page = customer.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csrf = csrf_token_in(&page.text().await.unwrap());
    let opened = api.get(&key, &format!("/api/v1/links/{link_id}")).await;
    assert_eq!(opened.json["status"], "opened");
    let go = customer
        .post(&url)
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(go.status(), 303, "Continue opens Finch Connect");
    let to_finch = go.headers()["location"].to_str().unwrap().to_owned();
    let callback = approve_in_emulator(&to_finch, None).await;
    let done = customer.get(callback).send().await.unwrap();
    assert_eq!(done.status(), 303);
    assert_eq!(
        done.headers()["location"].to_str().unwrap(),
        "/c/done?status=connected"
    );

    // The backend finds the connection by its customer id, reads it, disconnects it.
    let found = api
        .get(&key, "/api/v1/connections?customer_id=cust-77")
        .await;
    assert_eq!(found.status, 200);
    let data = found.json["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{}", found.text);
    let connection_id = data[0]["id"].as_str().unwrap().to_owned();
    let one = api
        .get(&key, &format!("/api/v1/connections/{connection_id}"))
        .await;
    assert_eq!(one.json["status"], "active");
    assert_eq!(one.json["customer_name"], "Bolt Bikes");

    let link = api.get(&key, &format!("/api/v1/links/{link_id}")).await;
    assert_eq!(link.json["status"], "completed");
    assert_eq!(link.json["connection_id"], connection_id.as_str());
    assert!(link.json.get("url").is_none());

    let disconnects = app.sandbox.count("POST", "/disconnect");
    let gone = api
        .delete(&key, &format!("/api/v1/connections/{connection_id}"))
        .await;
    assert_eq!(gone.status, 200, "{}", gone.text);
    assert_eq!(gone.json["status"], "disconnected");
    assert_eq!(
        app.sandbox.count("POST", "/disconnect"),
        disconnects + 1,
        "disconnected at Finch"
    );
    let after = api
        .get(
            &key,
            "/api/v1/connections?customer_id=cust-77&status=active",
        )
        .await;
    assert_eq!(after.json["data"], json!([]));

    // The link stays completed, pointing at the (now disconnected) connection.
    let link = api.get(&key, &format!("/api/v1/links/{link_id}")).await;
    assert_eq!(link.json["status"], "completed");
    assert_eq!(link.json["connection_id"], connection_id.as_str());
    // Revoking a completed link changes nothing.
    let revoke = api.delete(&key, &format!("/api/v1/links/{link_id}")).await;
    assert_eq!(revoke.json["status"], "completed");
    app.stop().await;
}
