//! The tenant API (`/api/v1`, issue 14): keys, scopes, tenant isolation, problem details,
//! pagination, rate limits, idempotency. Every answer is validated against the served OpenAPI
//! document (`api_support::Api`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use finchgate::api::idempotency::{self, Answer, Outcome, Owner};
use finchgate::domain::ApiScope;
use reqwest::Method;
use uuid::Uuid;

use crate::api_support::{Api, connected_tenant, key_for, key_with};
use crate::helpers::{count, spawn_app, spawn_app_with};

const READ: &[ApiScope] = &[ApiScope::ConnectionsRead];
const READ_WRITE: &[ApiScope] = &[ApiScope::ConnectionsRead, ApiScope::ConnectionsWrite];

async fn connection_status(app: &crate::helpers::TestApp, id: Uuid) -> String {
    #[derive(diesel::QueryableByName)]
    struct Status {
        #[diesel(sql_type = diesel::sql_types::Text)]
        status: String,
    }
    use diesel_async::RunQueryDsl as _;
    let mut conn = app.db.connect().await;
    diesel::sql_query("SELECT status FROM connections WHERE id = $1")
        .bind::<diesel::sql_types::Uuid, _>(id)
        .get_result::<Status>(&mut conn)
        .await
        .unwrap()
        .status
}

#[tokio::test]
async fn a_key_lists_and_reads_only_its_own_tenants_connections_and_ledger() {
    let app = spawn_app().await;
    let (a, a_connection) = connected_tenant(&app, "tenant-a", &app.new_browser()).await;
    let (_b, b_connection) = connected_tenant(&app, "tenant-b", &app.new_browser()).await;
    let api = Api::new(&app).await;
    let key = key_for(&app, a.tenant_id, READ).await;

    let list = api.get(&key, "/api/v1/connections").await;
    assert_eq!(list.status, 200, "{}", list.text);
    let ids: Vec<&str> = list.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![a_connection.to_string()]);
    assert!(list.json["next_cursor"].is_null());
    assert_eq!(list.json["data"][0]["status"], "active");

    let one = api
        .get(&key, &format!("/api/v1/connections/{a_connection}"))
        .await;
    assert_eq!(one.status, 200);
    assert_eq!(one.json["id"], a_connection.to_string());

    // B's connection through A's key: not found, like one that does not exist.
    let other = api
        .get(&key, &format!("/api/v1/connections/{b_connection}"))
        .await;
    let missing = api
        .get(&key, &format!("/api/v1/connections/{}", Uuid::new_v4()))
        .await;
    let garbage = api.get(&key, "/api/v1/connections/not-a-uuid").await;
    assert_eq!(other.status, 404);
    assert_eq!(other.text, missing.text);
    assert_eq!(other.text, garbage.text);
    assert_eq!(other.json["code"], "not_found");

    let attempts = api.get(&key, "/api/v1/attempts").await;
    assert_eq!(attempts.status, 200);
    let rows = attempts.json["data"].as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r["connection_id"] == a_connection.to_string()
        || r["connection_id"].is_null()));

    // Nothing secret in any answer.
    for answer in [&list, &one, &attempts] {
        for word in ["access_token", "client_secret", "fgk_", "envelope"] {
            assert!(!answer.text.contains(word), "{word} in {}", answer.text);
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn a_key_of_another_tenant_cannot_disconnect_its_connection_and_finch_hears_nothing() {
    let app = spawn_app().await;
    let (a, _) = connected_tenant(&app, "tenant-a", &app.new_browser()).await;
    let (_b, b_connection) = connected_tenant(&app, "tenant-b", &app.new_browser()).await;
    let api = Api::new(&app).await;
    let key = key_for(&app, a.tenant_id, READ_WRITE).await;
    let finch_calls = app.sandbox.requests().len();
    let tokens = count(&app.db, "SELECT count(*) AS n FROM connection_tokens").await;

    let refused = api
        .delete(&key, &format!("/api/v1/connections/{b_connection}"))
        .await;
    assert_eq!(refused.status, 404);
    assert_eq!(refused.json["code"], "not_found");
    assert_eq!(connection_status(&app, b_connection).await, "active");
    assert_eq!(
        count(&app.db, "SELECT count(*) AS n FROM connection_tokens").await,
        tokens
    );
    assert_eq!(
        app.sandbox.requests().len(),
        finch_calls,
        "nothing was sent to Finch"
    );
    app.stop().await;
}

#[tokio::test]
async fn deleting_a_connection_disconnects_it_at_finch_shreds_its_token_and_is_audited() {
    let app = spawn_app().await;
    let (a, connection) = connected_tenant(&app, "tenant-a", &app.new_browser()).await;
    let api = Api::new(&app).await;
    let key = key_for(&app, a.tenant_id, READ_WRITE).await;

    let gone = api
        .delete(&key, &format!("/api/v1/connections/{connection}"))
        .await;
    assert_eq!(gone.status, 200, "{}", gone.text);
    assert_eq!(gone.json["status"], "disconnected");
    assert!(gone.json["disconnected_at"].is_string());
    assert_eq!(app.sandbox.count("POST", "/disconnect"), 1);
    assert_eq!(
        count(&app.db, "SELECT count(*) AS n FROM connection_tokens").await,
        0
    );
    assert_eq!(
        count(
            &app.db,
            "SELECT count(*) AS n FROM audit_events WHERE action = 'connection.disconnected' AND actor_kind = 'api_key'"
        )
        .await,
        1
    );

    // Again: the same answer, and Finch is not asked twice.
    let again = api
        .delete(&key, &format!("/api/v1/connections/{connection}"))
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json["status"], "disconnected");
    assert_eq!(app.sandbox.count("POST", "/disconnect"), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_key_without_the_scope_gets_a_403_naming_it_and_nothing_changes() {
    let app = spawn_app().await;
    let (a, connection) = connected_tenant(&app, "tenant-a", &app.new_browser()).await;
    let api = Api::new(&app).await;
    let links_only = key_for(&app, a.tenant_id, &[ApiScope::LinksWrite]).await;
    let read_only = key_for(&app, a.tenant_id, READ).await;

    let list = api.get(&links_only, "/api/v1/connections").await;
    assert_eq!(list.status, 403);
    assert_eq!(list.json["code"], "forbidden_scope");
    assert_eq!(list.json["scope"], "connections:read");
    assert!(
        list.json["detail"]
            .as_str()
            .unwrap()
            .contains("connections:read")
    );
    let attempts = api.get(&links_only, "/api/v1/attempts").await;
    assert_eq!(attempts.json["scope"], "connections:read");

    let delete = api
        .delete(&read_only, &format!("/api/v1/connections/{connection}"))
        .await;
    assert_eq!(delete.status, 403);
    assert_eq!(delete.json["scope"], "connections:write");
    assert_eq!(connection_status(&app, connection).await, "active");
    assert_eq!(app.sandbox.count("POST", "/disconnect"), 0);
    app.stop().await;
}

#[tokio::test]
async fn revoked_expired_malformed_unknown_and_wrong_secret_keys_all_get_the_same_401() {
    let app = spawn_app().await;
    let tenant = app.create_tenant("tenant-a").await;
    let api = Api::new(&app).await;
    let good = key_for(&app, tenant, READ).await;
    let revoked = key_for(&app, tenant, READ).await;
    let expiring = key_with(&app, tenant, READ, Some(1)).await;
    {
        let (prefix, _) = finchgate::api::keys::split(&revoked).unwrap();
        let mut conn = app.pool.get().await.unwrap();
        finchgate::db::transaction(&mut conn, finchgate::db::Scope::System, async |conn| {
            let row = finchgate::db::models::api_keys::find_by_prefix(conn, prefix)
                .await?
                .unwrap();
            finchgate::db::models::api_keys::revoke(conn, tenant, row.id, chrono::Utc::now())
                .await
                .map(drop)
        })
        .await
        .unwrap();
    }
    assert_eq!(api.get(&good, "/api/v1/connections").await.status, 200);
    assert_eq!(api.get(&expiring, "/api/v1/connections").await.status, 200);
    app.clock.advance(chrono::Duration::days(2));

    let (prefix, secret) = finchgate::api::keys::split(&good).unwrap();
    let wrong_secret = format!("fgk_{prefix}_{}", "A".repeat(secret.len()));
    let unknown_prefix = format!("fgk_{}_{secret}", "0".repeat(prefix.len()));
    let cases = [
        ("revoked", revoked.clone()),
        ("expired", expiring.clone()),
        ("malformed", "fgk_not-a-key".to_owned()),
        ("another key's prefix with a wrong secret", wrong_secret),
        ("unknown prefix", unknown_prefix),
        ("not a bearer", String::new()),
    ];
    let mut answers = Vec::new();
    for (what, key) in &cases {
        let answer = api.get(key, "/api/v1/connections").await;
        assert_eq!(answer.status, 401, "{what}");
        answers.push((what, answer));
    }
    let basic = api
        .send(Method::GET, "", "/api/v1/connections", |r| {
            r.header("Authorization", format!("Basic {good}"))
        })
        .await;
    answers.push((&"basic auth", basic));
    let (_, first) = &answers[0];
    assert_eq!(first.json["code"], "unauthorized");
    for (what, answer) in &answers {
        assert_eq!(answer.status, 401, "{what}");
        assert_eq!(answer.text, first.text, "{what}: the same body");
        for header in ["content-type", "www-authenticate", "cache-control"] {
            assert_eq!(
                answer.headers.get(header),
                first.headers.get(header),
                "{what}: {header}"
            );
        }
        assert!(answer.headers.get("retry-after").is_none());
    }
    // The good key still works (the clock moved, nothing else).
    assert_eq!(api.get(&good, "/api/v1/connections").await.status, 200);
    app.stop().await;
}

#[tokio::test]
async fn a_key_over_its_rate_limit_gets_429_with_retry_after_and_other_keys_do_not() {
    let app = spawn_app_with(|s| s.limits.api_requests_per_minute = 3).await;
    let tenant = app.create_tenant("tenant-a").await;
    let api = Api::new(&app).await;
    let busy = key_for(&app, tenant, READ).await;
    let calm = key_for(&app, tenant, READ).await;
    for _ in 0..3 {
        assert_eq!(api.get(&busy, "/api/v1/connections").await.status, 200);
    }
    let limited = api.get(&busy, "/api/v1/connections").await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.json["code"], "rate_limited");
    let retry_after: i64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(api.get(&calm, "/api/v1/connections").await.status, 200);
    // The next window is a new minute.
    app.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(api.get(&busy, "/api/v1/connections").await.status, 200);
    app.stop().await;
}

#[tokio::test]
async fn unknown_parameters_bad_cursors_and_limits_are_422s_naming_them_and_large_bodies_413() {
    let app = spawn_app().await;
    let tenant = app.create_tenant("tenant-a").await;
    let api = Api::new(&app).await;
    let key = key_for(&app, tenant, READ_WRITE).await;
    let cases = [
        ("/api/v1/connections?colour=red", "colour"),
        ("/api/v1/attempts?customer_id=x", "customer_id"),
        ("/api/v1/connections?cursor=not-ours", "cursor"),
        ("/api/v1/connections?limit=0", "limit"),
        ("/api/v1/connections?limit=101", "limit"),
        ("/api/v1/attempts?limit=-1", "limit"),
        ("/api/v1/connections?status=sleeping", "status"),
    ];
    for (path, field) in cases {
        let answer = api.get(&key, path).await;
        assert_eq!(answer.status, 422, "{path}: {}", answer.text);
        assert_eq!(answer.json["code"], "validation_failed", "{path}");
        assert_eq!(answer.json["fields"], serde_json::json!([field]), "{path}");
    }
    let nul = api.get(&key, "/api/v1/connections?customer_id=a%00b").await;
    assert_eq!(nul.status, 422, "{}", nul.text);

    let big = "x".repeat(100 * 1024);
    let too_large = api
        .send(
            Method::DELETE,
            &key,
            &format!("/api/v1/connections/{}", Uuid::new_v4()),
            |r| {
                r.header("content-type", "application/json")
                    .body(format!("{{\"pad\":\"{big}\"}}"))
            },
        )
        .await;
    assert_eq!(too_large.status, 413);
    assert_eq!(too_large.json["code"], "payload_too_large");

    let unknown_route = api.get(&key, "/api/v1/nothing-here").await;
    assert_eq!(unknown_route.status, 404);
    assert_eq!(unknown_route.json["code"], "not_found");
    app.stop().await;
}

#[tokio::test]
async fn pagination_walks_every_connection_once_newest_first_and_filters_apply() {
    let app = spawn_app().await;
    let tenant = app.create_tenant("tenant-a").await;
    let api = Api::new(&app).await;
    let key = key_for(&app, tenant, READ).await;
    // 23 connections, several created in the same instant (the id breaks the tie).
    let instant = chrono::Utc::now() - chrono::Duration::hours(1);
    let mut conn = app.pool.get().await.unwrap();
    finchgate::db::transaction(&mut conn, finchgate::db::Scope::System, async |conn| {
        for i in 0..23 {
            let finch_id = format!("finch-{i}");
            let customer = format!("customer-{}", i % 3);
            let provider = if i % 2 == 0 { "gusto" } else { "adp_run" };
            finchgate::db::models::connections::upsert(
                conn,
                &finchgate::db::models::connections::Upsert {
                    tenant_id: tenant,
                    finch_connection_id: &finch_id,
                    provider_id: provider,
                    company_id: None,
                    customer_id: Some(&customer),
                    customer_name: None,
                    products: &["company".to_owned()],
                    entity_ids: &[],
                    client_type: None,
                    connection_type: None,
                    now: instant,
                },
            )
            .await?;
        }
        diesel_async::RunQueryDsl::execute(
            diesel::sql_query(
                "UPDATE connections SET created_at = $1 - (((substring(finch_connection_id from 7))::int / 4) || ' minutes')::interval",
            )
            .bind::<diesel::sql_types::Timestamptz, _>(instant),
            conn,
        )
        .await
    })
    .await
    .unwrap();
    drop(conn);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/connections?limit=5&cursor={c}"),
            None => "/api/v1/connections?limit=5".to_owned(),
        };
        let page = api.get(&key, &path).await;
        assert_eq!(page.status, 200, "{}", page.text);
        pages += 1;
        for row in page.json["data"].as_array().unwrap() {
            seen.push((
                row["created_at"].as_str().unwrap().to_owned(),
                row["id"].as_str().unwrap().to_owned(),
            ));
        }
        match page.json["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 5);
    assert_eq!(seen.len(), 23);
    let unique: std::collections::BTreeSet<_> = seen.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(unique.len(), 23, "no row twice");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| {
        let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap();
        at(&b.0).cmp(&at(&a.0)).then(b.1.cmp(&a.1))
    });
    assert_eq!(seen, sorted, "newest first, then by id");

    let customer = api
        .get(&key, "/api/v1/connections?customer_id=customer-1&limit=100")
        .await;
    let rows = customer.json["data"].as_array().unwrap();
    assert_eq!(rows.len(), 8);
    assert!(rows.iter().all(|r| r["customer_id"] == "customer-1"));
    let gusto = api
        .get(
            &key,
            "/api/v1/connections?provider=gusto&status=active&limit=100",
        )
        .await;
    assert_eq!(gusto.json["data"].as_array().unwrap().len(), 12);
    let none = api
        .get(&key, "/api/v1/connections?status=disconnected")
        .await;
    assert_eq!(none.json["data"].as_array().unwrap().len(), 0);
    app.stop().await;
}

#[tokio::test]
async fn the_ledger_pages_with_the_same_cursor_rules() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let (a, _) = connected_tenant(&app, "tenant-a", &browser).await;
    // A second flow, denied: a second ledger row.
    let setup = a;
    let started = app.start_connect(&browser, &setup, false).await;
    let to_finch = started.headers()["location"].to_str().unwrap().to_owned();
    let denied = crate::helpers::decide_in_emulator(&to_finch, None, "deny").await;
    assert_eq!(browser.get(denied).send().await.unwrap().status(), 303);
    let api = Api::new(&app).await;
    let key = key_for(&app, setup.tenant_id, READ).await;
    let total = count(&app.db, "SELECT count(*) AS n FROM exchange_attempts").await;
    assert!(total >= 2);
    let mut seen = std::collections::BTreeSet::new();
    let mut path = "/api/v1/attempts?limit=1".to_owned();
    loop {
        let page = api.get(&key, &path).await;
        assert_eq!(page.status, 200, "{}", page.text);
        assert_eq!(page.json["data"].as_array().unwrap().len(), 1);
        assert!(seen.insert(page.json["data"][0]["id"].as_str().unwrap().to_owned()));
        match page.json["next_cursor"].as_str() {
            Some(next) => path = format!("/api/v1/attempts?limit=1&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(i64::try_from(seen.len()).unwrap(), total);
    app.stop().await;
}

#[tokio::test]
async fn the_openapi_document_is_public_and_the_same_as_the_cli_prints() {
    let app = spawn_app().await;
    let api = Api::new(&app).await;
    for path in [
        "/api/v1/connections",
        "/api/v1/connections/{id}",
        "/api/v1/attempts",
    ] {
        assert!(api.document["paths"][path].is_object(), "{path}");
    }
    assert!(api.document["components"]["securitySchemes"]["api_key"].is_object());
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_finchgate"))
        .arg("openapi")
        .env_clear()
        .output()
        .await
        .unwrap();
    assert!(output.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed, api.document);
    app.stop().await;
}

/// The idempotency layer on its own (no POST endpoint uses it before connect links land):
/// against the real database, with concurrent callers.
mod idempotency_layer {
    use super::*;

    async fn owner(app: &crate::helpers::TestApp) -> Owner {
        let tenant_id = app.create_tenant("tenant-a").await;
        let key = key_for(app, tenant_id, READ).await;
        let (prefix, _) = finchgate::api::keys::split(&key).unwrap();
        let mut conn = app.pool.get().await.unwrap();
        let row =
            finchgate::db::transaction(&mut conn, finchgate::db::Scope::System, async |conn| {
                finchgate::db::models::api_keys::find_by_prefix(conn, prefix).await
            })
            .await
            .unwrap()
            .unwrap();
        Owner {
            tenant_id,
            api_key_id: row.id,
        }
    }

    fn created(n: usize) -> Answer {
        Answer {
            status: 201,
            body: format!("{{\"created\":{n}}}"),
        }
    }

    #[tokio::test]
    async fn twenty_concurrent_identical_requests_have_one_effect_and_all_get_its_answer() {
        let app = spawn_app().await;
        let owner = owner(&app).await;
        let effects = Arc::new(AtomicUsize::new(0));
        let hash = idempotency::request_hash("POST", "/api/v1/links", br#"{"customer_id":"c1"}"#);
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (pool, effects, hash) = (app.pool.clone(), effects.clone(), hash.clone());
            tasks.push(tokio::spawn(async move {
                idempotency::once(
                    &pool,
                    owner,
                    Some("key-1"),
                    &hash,
                    chrono::Utc::now(),
                    async || {
                        let n = effects.fetch_add(1, Ordering::SeqCst) + 1;
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        Ok(created(n))
                    },
                )
                .await
            }));
        }
        let mut fresh = 0;
        for task in tasks {
            let outcome = task.await.unwrap().expect("every twin gets the answer");
            assert_eq!(outcome.answer(), &created(1));
            if matches!(outcome, Outcome::Fresh(_)) {
                fresh += 1;
            }
        }
        assert_eq!(effects.load(Ordering::SeqCst), 1, "one effect");
        assert_eq!(fresh, 1);
        app.stop().await;
    }

    #[tokio::test]
    async fn a_replay_returns_the_first_answer_and_another_body_under_the_same_key_is_a_422() {
        let app = spawn_app().await;
        let owner = owner(&app).await;
        let first = idempotency::request_hash("POST", "/api/v1/links", b"{\"a\":1}");
        let other = idempotency::request_hash("POST", "/api/v1/links", b"{\"a\":2}");
        let now = chrono::Utc::now();
        let run = |hash: Vec<u8>, n: usize| {
            let pool = app.pool.clone();
            async move {
                idempotency::once(&pool, owner, Some("k"), &hash, now, async || Ok(created(n)))
                    .await
            }
        };
        assert_eq!(
            run(first.clone(), 1).await.unwrap(),
            Outcome::Fresh(created(1))
        );
        assert_eq!(
            run(first.clone(), 2).await.unwrap(),
            Outcome::Replayed(created(1))
        );
        let conflict = run(other, 3).await.unwrap_err();
        assert_eq!(conflict.status.as_u16(), 422);
        assert_eq!(conflict.code, "idempotency_conflict");
        // Without a key, the work simply runs.
        let plain = idempotency::once(&app.pool, owner, None, &first, now, async || Ok(created(4)))
            .await
            .unwrap();
        assert_eq!(plain, Outcome::Fresh(created(4)));
        // After 24 hours the key is free again.
        let later = now + chrono::Duration::hours(25);
        let again = idempotency::once(&app.pool, owner, Some("k"), &first, later, async || {
            Ok(created(5))
        })
        .await
        .unwrap();
        assert_eq!(again, Outcome::Fresh(created(5)));
        app.stop().await;
    }

    #[tokio::test]
    async fn a_failed_request_releases_its_key_so_a_retry_runs() {
        let app = spawn_app().await;
        let owner = owner(&app).await;
        let hash = idempotency::request_hash("POST", "/api/v1/links", b"{}");
        let now = chrono::Utc::now();
        let failed = idempotency::once(&app.pool, owner, Some("k"), &hash, now, async || {
            Err(finchgate::api::Problem::bad_request("no"))
        })
        .await;
        assert!(failed.is_err());
        let retried = idempotency::once(&app.pool, owner, Some("k"), &hash, now, async || {
            Ok(created(1))
        })
        .await
        .unwrap();
        assert_eq!(retried, Outcome::Fresh(created(1)));
        assert_eq!(
            count(&app.db, "SELECT count(*) AS n FROM idempotency_keys").await,
            1
        );
        // The reaper purges answers after 24 hours.
        finchgate::connect::reaper::reap(
            &app.pool,
            now + chrono::Duration::hours(25),
            &Default::default(),
        )
        .await
        .unwrap();
        assert_eq!(
            count(&app.db, "SELECT count(*) AS n FROM idempotency_keys").await,
            0
        );
        app.stop().await;
    }
}
