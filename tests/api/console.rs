//! The operator console over the ledger: `/ops/exchanges` (filters, keyset pages, groups, trend),
//! the attempt page and triage, bulk resolve, the CSV export, tenants' health, and who may see it.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl as _;
use finchgate::sandbox::{Endpoint, Fault, FaultKind};
use secrecy::ExposeSecret as _;
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser, spawn_app};

// ---------------------------------------------------------------------------------------------
// helpers

/// An app and an operator signed in in a browser of their own.
async fn app_with_operator() -> (TestApp, reqwest::Client, TestUser) {
    let app = spawn_app().await;
    let operator = app.create_user("operator@finchgate.test", None).await;
    let browser = app.new_browser();
    assert_eq!(
        app.login_with(&browser, &operator.email, &operator.password)
            .await
            .status(),
        303
    );
    (app, browser, operator)
}

/// A ledger row to insert directly (as the superuser, like a finished attempt would be).
struct Row<'a> {
    tenant: Uuid,
    seconds_ago: i64,
    outcome: &'a str,
    category: Option<&'a str>,
    actor: Option<&'a str>,
    provider: &'a str,
    review: &'a str,
    message: &'a str,
    request_id: &'a str,
}

impl Default for Row<'_> {
    fn default() -> Self {
        Self {
            tenant: Uuid::nil(),
            seconds_ago: 60,
            outcome: "failed",
            category: Some("invalid_grant"),
            actor: Some("end_user"),
            provider: "gusto",
            review: "open",
            message: "The authorization code has expired.",
            request_id: "req_default",
        }
    }
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

async fn insert(app: &TestApp, row: Row<'_>) -> Uuid {
    let mut conn = app.db.connect().await;
    let inserted: Id = diesel::sql_query(
        "INSERT INTO exchange_attempts (tenant_id, stage, started_at, finished_at, latency_ms, \
           outcome, category, actor, finch_status, message, finch_request_id, provider_id, review_state) \
         VALUES ($1, 'exchange', now() - $2 * interval '1 second', now() - $2 * interval '1 second' + interval '120 ms', 120, \
           $3, $4, $5, 400, $6, $7, $8, $9) RETURNING id",
    )
    .bind::<SqlUuid, _>(row.tenant)
    .bind::<BigInt, _>(row.seconds_ago)
    .bind::<Text, _>(row.outcome)
    .bind::<Nullable<Text>, _>(row.category)
    .bind::<Nullable<Text>, _>(row.actor)
    .bind::<Text, _>(row.message)
    .bind::<Text, _>(row.request_id)
    .bind::<Text, _>(row.provider)
    .bind::<Text, _>(row.review)
    .get_result(&mut conn)
    .await
    .unwrap();
    inserted.id
}

async fn get(app: &TestApp, browser: &reqwest::Client, path: &str) -> (u16, String) {
    let response = browser
        .get(format!("{}{path}", app.address))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn post(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let csrf = app.csrf_of(browser, "/ops/tenants").await;
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    form.push(("csrf_token", &csrf));
    browser
        .post(format!("{}{path}", app.address))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// Decodes the character references askama writes (`&amp;`, `&#38;`, `&#x2f;`, …).
fn unescape(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';').filter(|e| *e <= 8) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            _ => entity
                .strip_prefix("#x")
                .map(|hex| u32::from_str_radix(hex, 16))
                .or_else(|| entity.strip_prefix('#').map(str::parse))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The attempts linked from a list page, in order.
fn ids_in(html: &str) -> Vec<Uuid> {
    let html = unescape(html);
    let mut ids = Vec::new();
    let mut rest = html.as_str();
    while let Some(at) = rest.find("<td><a href=\"/ops/exchanges/") {
        let start = at + "<td><a href=\"/ops/exchanges/".len();
        ids.push(Uuid::parse_str(&rest[start..start + 36]).unwrap());
        rest = &rest[start + 36..];
    }
    ids
}

fn next_link(html: &str) -> Option<String> {
    let html = unescape(html);
    let at = html.find("id=\"next-page\" href=\"")? + "id=\"next-page\" href=\"".len();
    let end = html[at..].find('"')? + at;
    Some(html[at..end].to_owned())
}

#[derive(QueryableByName, Debug)]
struct AuditRow {
    #[diesel(sql_type = Text)]
    action: String,
    #[diesel(sql_type = Nullable<Text>)]
    target_id: Option<String>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    actor_user_id: Option<Uuid>,
    #[diesel(sql_type = Text)]
    details: String,
}

async fn audit(app: &TestApp, prefix: &str) -> Vec<AuditRow> {
    let mut conn = app.db.connect().await;
    diesel::sql_query(
        "SELECT action, target_id, actor_user_id, details::text AS details FROM audit_events \
         WHERE action LIKE $1 || '%' ORDER BY occurred_at, id",
    )
    .bind::<Text, _>(prefix)
    .load(&mut conn)
    .await
    .unwrap()
}

#[derive(QueryableByName)]
struct ReviewState {
    #[diesel(sql_type = Text)]
    review_state: String,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    reviewed_by: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    review_note: Option<String>,
}

async fn review_of(app: &TestApp, id: Uuid) -> ReviewState {
    let mut conn = app.db.connect().await;
    diesel::sql_query(
        "SELECT review_state, reviewed_by, review_note FROM exchange_attempts WHERE id = $1",
    )
    .bind::<SqlUuid, _>(id)
    .get_result(&mut conn)
    .await
    .unwrap()
}

// ---------------------------------------------------------------------------------------------
// the list and its filters

#[tokio::test]
async fn the_list_shows_failures_newest_first_and_every_filter_narrows_it() {
    let (app, ops, _) = app_with_operator().await;
    let acme = app.create_tenant("acme").await;
    let globex = app.create_tenant("globex").await;
    let old_grant = insert(
        &app,
        Row {
            tenant: acme,
            seconds_ago: 3 * 86_400,
            request_id: "req_old_grant",
            ..Row::default()
        },
    )
    .await;
    let client = insert(
        &app,
        Row {
            tenant: globex,
            seconds_ago: 600,
            category: Some("invalid_client"),
            actor: Some("tenant_admin"),
            provider: "adp_run",
            review: "acknowledged",
            message: "Client authentication failed.",
            request_id: "req_bad_client",
            ..Row::default()
        },
    )
    .await;
    let server = insert(
        &app,
        Row {
            tenant: acme,
            seconds_ago: 300,
            category: Some("finch_server_error"),
            actor: Some("nobody"),
            provider: "paychex_flex",
            review: "resolved",
            message: "Bad gateway (50%_off)",
            request_id: "req_gateway",
            ..Row::default()
        },
    )
    .await;
    let success = insert(
        &app,
        Row {
            tenant: acme,
            seconds_ago: 100,
            outcome: "succeeded",
            category: None,
            actor: None,
            message: "",
            request_id: "req_success",
            ..Row::default()
        },
    )
    .await;

    let (status, page) = get(&app, &ops, "/ops/exchanges").await;
    assert_eq!(status, 200);
    assert_eq!(
        ids_in(&page),
        [server, client, old_grant],
        "failures only, newest first"
    );

    let two_days_ago = (chrono::Utc::now() - chrono::TimeDelta::days(2))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let cases: Vec<(String, Vec<Uuid>)> = vec![
        ("status=all".into(), vec![success, server, client, old_grant]),
        ("tenant=acme".into(), vec![server, old_grant]),
        ("status=all&tenant=acme".into(), vec![success, server, old_grant]),
        ("tenant=nobody-here".into(), vec![]),
        ("category=invalid_client".into(), vec![client]),
        ("actor=nobody".into(), vec![server]),
        ("provider=adp_run".into(), vec![client]),
        ("review=resolved".into(), vec![server]),
        ("review=open".into(), vec![old_grant]),
        (format!("from={two_days_ago}"), vec![server, client]),
        (format!("to={two_days_ago}"), vec![old_grant]),
        ("q=authentication".into(), vec![client]),
        ("q=REQ_GATEWAY".into(), vec![server]),
        ("q=50%25_off".into(), vec![server]),
        ("q=%25".into(), vec![server]),
        ("tenant=acme&category=finch_server_error&actor=nobody&provider=paychex_flex&review=resolved".into(), vec![server]),
    ];
    for (query, expected) in cases {
        let (status, page) = get(&app, &ops, &format!("/ops/exchanges?{query}")).await;
        assert_eq!(status, 200, "{query}");
        assert_eq!(ids_in(&page), expected, "{query}");
    }
    app.stop().await;
}

#[tokio::test]
async fn bad_filter_values_get_a_400_page_that_says_what_is_wrong() {
    let (app, ops, _) = app_with_operator().await;
    for (query, says) in [
        ("status=maybe", "Unknown status"),
        ("tenant=Not%20A%20Slug", "Not a tenant slug"),
        ("category=nope", "Unknown failure category"),
        ("actor=god", "Unknown actor"),
        ("provider=gusto%27%3B--", "Not a provider id"),
        ("review=done", "Unknown review state"),
        ("from=yesterday", "Not a time"),
        ("from=2026-11-02&to=2026-11-01", "ends before it starts"),
        ("cursor=not-a-cursor", "page link is damaged"),
        ("view=pie", "Unknown view"),
    ] {
        for path in ["/ops/exchanges", "/ops/exchanges.csv"] {
            let (status, page) = get(&app, &ops, &format!("{path}?{query}")).await;
            assert_eq!(status, 400, "{path}?{query}");
            assert!(
                page.contains(says),
                "{path}?{query} should say {says:?}: {page}"
            );
        }
    }
    let (status, _) = get(&app, &ops, "/ops/tenants?sort=random").await;
    assert_eq!(status, 400);
    app.stop().await;
}

#[tokio::test]
async fn keyset_pages_neither_repeat_nor_skip_rows_when_newer_attempts_arrive() {
    let (app, ops, _) = app_with_operator().await;
    let acme = app.create_tenant("acme").await;
    // 120 failures, two per second, so pages also break between rows of the same time.
    let mut conn = app.db.connect().await;
    let original: Vec<Id> = diesel::sql_query(
        "INSERT INTO exchange_attempts (tenant_id, stage, started_at, finished_at, outcome, category, actor) \
         SELECT $1, 'exchange', date_trunc('second', now()) - (g / 2) * interval '1 second', now(), \
                'failed', 'invalid_grant', 'end_user' \
         FROM generate_series(1, 120) g RETURNING id",
    )
    .bind::<SqlUuid, _>(acme)
    .load(&mut conn)
    .await
    .unwrap();
    let mut original: Vec<Uuid> = original.into_iter().map(|r| r.id).collect();
    original.sort();

    let (_, first) = get(&app, &ops, "/ops/exchanges?tenant=acme").await;
    let mut seen = ids_in(&first);
    assert_eq!(seen.len(), 50);
    let mut next = next_link(&first).expect("a next page");
    assert!(!next.contains("offset"), "keyset, not offset: {next}");
    // Newer failures arrive while the operator reads page 1.
    for i in 0..5 {
        insert(
            &app,
            Row {
                tenant: acme,
                seconds_ago: -i,
                request_id: "req_new",
                ..Row::default()
            },
        )
        .await;
    }
    loop {
        let (status, page) = get(&app, &ops, &next).await;
        assert_eq!(status, 200);
        seen.extend(ids_in(&page));
        match next_link(&page) {
            Some(link) => next = link,
            None => break,
        }
    }
    let count = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), count, "no row shown twice");
    assert_eq!(
        seen, original,
        "every original row shown once, none of the newer ones"
    );
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// the attempt page and triage

#[tokio::test]
async fn a_real_failed_exchange_shows_its_timeline_finch_error_and_what_the_admin_saw() {
    let (app, ops, _) = app_with_operator().await;
    let setup = app.setup_connect("acme").await;
    let url = app.redirect_callback_url(&app.client, &setup).await;
    app.sandbox.inject(
        Fault::new(FaultKind::ServerError {
            status: finchgate::sandbox::ServerErrorStatus::BadGateway,
        })
        .on(Endpoint::AuthToken),
    );
    let response = app.client.get(url.as_str()).send().await.unwrap();
    assert_eq!(response.status(), 303);

    let (_, list) = get(&app, &ops, "/ops/exchanges").await;
    let ids = ids_in(&list);
    assert_eq!(ids.len(), 1, "{list}");
    assert!(list.contains("finch_server_error"));
    let (status, page) = get(&app, &ops, &format!("/ops/exchanges/{}", ids[0])).await;
    assert_eq!(status, 200);
    for expected in [
        "Flow started",
        "Connect session created",
        "Callback received",
        "Exchange sent",
        "Finch answered",
        "HTTP 502",
        "Failed",
        "finch_server_error",
        "Finch-Request-Id",
        "Credentials version",
        "What the tenant admin was shown",
        "Finch had a problem",
        "Acknowledge",
    ] {
        assert!(
            page.contains(expected),
            "the page shows {expected:?}: {page}"
        );
    }
    let (missing, _) = get(&app, &ops, &format!("/ops/exchanges/{}", Uuid::new_v4())).await;
    assert_eq!(missing, 404);
    let (garbage, _) = get(&app, &ops, "/ops/exchanges/not-a-uuid").await;
    assert_eq!(garbage, 404);
    app.stop().await;
}

#[tokio::test]
async fn acknowledge_resolve_and_reopen_each_change_the_state_and_are_audited() {
    let (app, ops, operator) = app_with_operator().await;
    let acme = app.create_tenant("acme").await;
    let id = insert(
        &app,
        Row {
            tenant: acme,
            ..Row::default()
        },
    )
    .await;
    let path = format!("/ops/exchanges/{id}/review");

    let acked = post(
        &app,
        &ops,
        &path,
        &[("action", "acknowledge"), ("note", "")],
    )
    .await;
    assert_eq!(acked.status(), 303);
    assert_eq!(
        acked.headers()["location"].to_str().unwrap(),
        format!("/ops/exchanges/{id}")
    );
    let state = review_of(&app, id).await;
    assert_eq!(state.review_state, "acknowledged");
    assert_eq!(state.reviewed_by, Some(operator.id));

    let refused = post(&app, &ops, &path, &[("action", "resolve"), ("note", "  ")]).await;
    assert_eq!(refused.status(), 400, "resolving needs a note");
    assert_eq!(review_of(&app, id).await.review_state, "acknowledged");

    let resolved = post(
        &app,
        &ops,
        &path,
        &[("action", "resolve"), ("note", "Tenant rotated its secret")],
    )
    .await;
    assert_eq!(resolved.status(), 303);
    let state = review_of(&app, id).await;
    assert_eq!(state.review_state, "resolved");
    assert_eq!(
        state.review_note.as_deref(),
        Some("Tenant rotated its secret")
    );

    // The list says who and when.
    let (_, list) = get(&app, &ops, "/ops/exchanges").await;
    assert!(list.contains("operator@finchgate.test"), "{list}");
    assert!(list.contains(">resolved<"));

    // Acknowledging a resolved failure does nothing and says so.
    let again = post(&app, &ops, &path, &[("action", "acknowledge")]).await;
    assert_eq!(again.status(), 303);
    let (_, page) = get(&app, &ops, &format!("/ops/exchanges/{id}")).await;
    assert!(page.contains("Nothing changed"), "{page}");

    let reopened = post(&app, &ops, &path, &[("action", "reopen")]).await;
    assert_eq!(reopened.status(), 303);
    assert_eq!(review_of(&app, id).await.review_state, "open");

    let unknown = post(&app, &ops, &path, &[("action", "delete")]).await;
    assert_eq!(unknown.status(), 400);
    let missing = post(
        &app,
        &ops,
        &format!("/ops/exchanges/{}/review", Uuid::new_v4()),
        &[("action", "acknowledge")],
    )
    .await;
    assert_eq!(missing.status(), 404);

    let events = audit(&app, "exchange.").await;
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "exchange.acknowledged",
            "exchange.resolved",
            "exchange.reopened"
        ]
    );
    for event in &events {
        assert_eq!(event.target_id.as_deref(), Some(id.to_string().as_str()));
        assert_eq!(event.actor_user_id, Some(operator.id));
    }
    assert!(
        events[1].details.contains("\"from\": \"acknowledged\""),
        "{}",
        events[1].details
    );
    assert!(events[1].details.contains("Tenant rotated its secret"));

    // A success is not something to triage.
    let success = insert(
        &app,
        Row {
            tenant: acme,
            outcome: "succeeded",
            category: None,
            actor: None,
            ..Row::default()
        },
    )
    .await;
    let response = post(
        &app,
        &ops,
        &format!("/ops/exchanges/{success}/review"),
        &[("action", "acknowledge")],
    )
    .await;
    assert_eq!(response.status(), 303);
    assert_eq!(review_of(&app, success).await.reviewed_by, None);
    app.stop().await;
}

#[tokio::test]
async fn bulk_resolve_resolves_exactly_the_filtered_failures_with_one_audit_event() {
    let (app, ops, operator) = app_with_operator().await;
    let acme = app.create_tenant("acme").await;
    let globex = app.create_tenant("globex").await;
    let mut matching = Vec::new();
    for _ in 0..3 {
        matching.push(
            insert(
                &app,
                Row {
                    tenant: acme,
                    category: Some("invalid_client"),
                    actor: Some("tenant_admin"),
                    ..Row::default()
                },
            )
            .await,
        );
    }
    matching.push(
        insert(
            &app,
            Row {
                tenant: acme,
                category: Some("invalid_client"),
                actor: Some("tenant_admin"),
                review: "acknowledged",
                ..Row::default()
            },
        )
        .await,
    );
    let other_category = insert(
        &app,
        Row {
            tenant: acme,
            ..Row::default()
        },
    )
    .await;
    let other_tenant = insert(
        &app,
        Row {
            tenant: globex,
            category: Some("invalid_client"),
            actor: Some("tenant_admin"),
            ..Row::default()
        },
    )
    .await;
    let success = insert(
        &app,
        Row {
            tenant: acme,
            outcome: "succeeded",
            category: None,
            actor: None,
            ..Row::default()
        },
    )
    .await;

    let (_, page) = get(
        &app,
        &ops,
        "/ops/exchanges?tenant=acme&category=invalid_client",
    )
    .await;
    let as_of = {
        let at = page.find("name=\"as_of\" value=\"").unwrap() + "name=\"as_of\" value=\"".len();
        unescape(&page[at..at + 40])
            .split('"')
            .next()
            .unwrap()
            .to_owned()
    };
    // A failure that arrives after the page was shown is not resolved with it.
    let later = insert(
        &app,
        Row {
            tenant: acme,
            seconds_ago: -30,
            category: Some("invalid_client"),
            actor: Some("tenant_admin"),
            ..Row::default()
        },
    )
    .await;

    let missing_note = post(
        &app,
        &ops,
        "/ops/exchanges/resolve",
        &[
            ("tenant", "acme"),
            ("category", "invalid_client"),
            ("note", ""),
        ],
    )
    .await;
    assert_eq!(missing_note.status(), 400);
    let bad = post(
        &app,
        &ops,
        "/ops/exchanges/resolve",
        &[("category", "nope"), ("note", "x")],
    )
    .await;
    assert_eq!(bad.status(), 400);

    let response = post(
        &app,
        &ops,
        "/ops/exchanges/resolve",
        &[
            ("tenant", "acme"),
            ("category", "invalid_client"),
            ("as_of", &as_of),
            ("note", "Credentials fixed"),
        ],
    )
    .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"].to_str().unwrap(),
        "/ops/exchanges?tenant=acme&category=invalid_client"
    );
    for id in &matching {
        assert_eq!(review_of(&app, *id).await.review_state, "resolved");
    }
    for id in [other_category, other_tenant, success, later] {
        assert_eq!(
            review_of(&app, id).await.review_state,
            "open",
            "{id} untouched"
        );
    }
    let (_, page) = get(
        &app,
        &ops,
        "/ops/exchanges?tenant=acme&category=invalid_client",
    )
    .await;
    assert!(page.contains("Resolved 4 failure(s)"), "{page}");
    let events = audit(&app, "exchange.bulk_resolved").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor_user_id, Some(operator.id));
    assert!(
        events[0].details.contains("\"count\": 4"),
        "{}",
        events[0].details
    );
    assert!(
        events[0]
            .details
            .contains("tenant=acme&category=invalid_client")
    );
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// groups, trend, CSV

#[tokio::test]
async fn failures_are_grouped_by_tenant_and_category_and_charted_over_time() {
    let (app, ops, _) = app_with_operator().await;
    let acme = app.create_tenant("acme").await;
    let globex = app.create_tenant("globex").await;
    for i in 0..5 {
        insert(
            &app,
            Row {
                tenant: acme,
                seconds_ago: 60 + i,
                category: Some("invalid_client"),
                actor: Some("tenant_admin"),
                ..Row::default()
            },
        )
        .await;
    }
    insert(
        &app,
        Row {
            tenant: globex,
            seconds_ago: 7200,
            ..Row::default()
        },
    )
    .await;
    insert(
        &app,
        Row {
            tenant: globex,
            seconds_ago: 30,
            outcome: "succeeded",
            category: None,
            actor: None,
            ..Row::default()
        },
    )
    .await;

    let (status, page) = get(&app, &ops, "/ops/exchanges?view=groups").await;
    assert_eq!(status, 200);
    let page = &page[page
        .find("<table class=\"groups\">")
        .expect("the groups table")..];
    let acme_row = page.find("invalid_client").expect("the acme group");
    let globex_row = page.find(">invalid_grant<").expect("the globex group");
    assert!(acme_row < globex_row, "largest group first");
    assert!(page.contains("<td>5</td>"), "{page}");
    let (_, page) = get(&app, &ops, "/ops/exchanges?view=groups&tenant=globex").await;
    let page = &page[page
        .find("<table class=\"groups\">")
        .expect("the groups table")..];
    assert!(!page.contains("invalid_client"));
    assert!(page.contains(">invalid_grant<"));

    let (status, page) = get(&app, &ops, "/ops/exchanges?view=trends&from=2000-01-01").await;
    assert_eq!(status, 200);
    assert!(page.contains("<svg"), "{page}");
    assert!(page.contains("per day"));
    let (_, page) = get(
        &app,
        &ops,
        &format!(
            "/ops/exchanges?view=trends&from={}",
            (chrono::Utc::now() - chrono::TimeDelta::hours(6)).format("%Y-%m-%dT%H:%M")
        ),
    )
    .await;
    assert!(page.contains("per hour"));
    assert!(page.contains("7 finished attempts, 6 failed"), "{page}");
    assert!(!page.contains("<script"), "no JavaScript");
    app.stop().await;
}

#[tokio::test]
async fn the_csv_export_streams_the_filtered_set_with_formulas_defused() {
    let (app, ops, _) = app_with_operator().await;
    let acme = app.create_tenant("acme").await;
    let globex = app.create_tenant("globex").await;
    insert(
        &app,
        Row {
            tenant: acme,
            seconds_ago: 10,
            message: "=HYPERLINK(\"http://evil\",\"x\")",
            request_id: "@req_at",
            ..Row::default()
        },
    )
    .await;
    insert(
        &app,
        Row {
            tenant: acme,
            seconds_ago: 20,
            message: "-2+3, said Finch",
            request_id: "+req_plus",
            ..Row::default()
        },
    )
    .await;
    insert(
        &app,
        Row {
            tenant: globex,
            seconds_ago: 30,
            request_id: "req_globex",
            ..Row::default()
        },
    )
    .await;
    let mut conn = app.db.connect().await;
    diesel::sql_query(
        "INSERT INTO exchange_attempts (tenant_id, stage, started_at, finished_at, outcome, category, actor) \
         SELECT $1, 'exchange', now() - (1000 + g) * interval '1 second', now(), 'failed', 'invalid_grant', 'end_user' \
         FROM generate_series(1, 1100) g",
    )
    .bind::<SqlUuid, _>(globex)
    .execute(&mut conn)
    .await
    .unwrap();

    let response = ops
        .get(format!("{}/ops/exchanges.csv?tenant=acme", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=")
    );
    let body = response.text().await.unwrap();
    let lines: Vec<&str> = body.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines[0],
        "id,started_at,tenant,stage,outcome,category,actor,provider,finch_status,finch_error_name,finch_code,message,finch_request_id,latency_ms,review_state,reviewed_by,reviewed_at"
    );
    assert_eq!(lines.len(), 3, "{body}");
    assert!(
        lines[1].contains(",acme,exchange,failed,invalid_grant,end_user,gusto,400,,,"),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].contains(",\"'=HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\",'@req_at,120,open,,"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains(",\"'-2+3, said Finch\",'+req_plus,"),
        "{}",
        lines[2]
    );

    // More rows than one batch: all of them, each once, newest first.
    let (_, body) = get(&app, &ops, "/ops/exchanges.csv?tenant=globex").await;
    let rows: Vec<&str> = body
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .skip(1)
        .collect();
    assert_eq!(rows.len(), 1101);
    assert!(rows[0].contains("req_globex"));
    let mut ids: Vec<&str> = rows.iter().map(|r| &r[..36]).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 1101);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// tenants' health

#[tokio::test]
async fn the_tenants_page_shows_health_worst_first_and_create_still_works() {
    let (app, ops, _) = app_with_operator().await;
    let healthy = app.create_tenant("healthy").await;
    let broken = app.create_tenant("broken").await;
    app.create_tenant("quiet").await;
    for i in 0..4 {
        insert(
            &app,
            Row {
                tenant: healthy,
                seconds_ago: 100 + i,
                outcome: "succeeded",
                category: None,
                actor: None,
                ..Row::default()
            },
        )
        .await;
    }
    insert(
        &app,
        Row {
            tenant: healthy,
            seconds_ago: 3 * 86_400,
            ..Row::default()
        },
    )
    .await;
    insert(
        &app,
        Row {
            tenant: broken,
            seconds_ago: 200,
            category: Some("invalid_client"),
            actor: Some("tenant_admin"),
            ..Row::default()
        },
    )
    .await;
    insert(
        &app,
        Row {
            tenant: broken,
            seconds_ago: 300,
            category: Some("invalid_client"),
            actor: Some("tenant_admin"),
            review: "resolved",
            ..Row::default()
        },
    )
    .await;
    insert(
        &app,
        Row {
            tenant: broken,
            seconds_ago: 10 * 86_400,
            outcome: "succeeded",
            category: None,
            actor: None,
            ..Row::default()
        },
    )
    .await;
    let mut conn = app.db.connect().await;
    diesel::sql_query(
        "INSERT INTO connections (tenant_id, finch_connection_id, provider_id, status) VALUES \
         ($1, 'c1', 'gusto', 'active'), ($1, 'c2', 'gusto', 'reauth_required'), ($2, 'c3', 'gusto', 'active')",
    )
    .bind::<SqlUuid, _>(broken)
    .bind::<SqlUuid, _>(healthy)
    .execute(&mut conn)
    .await
    .unwrap();

    let (status, page) = get(&app, &ops, "/ops/tenants").await;
    assert_eq!(status, 200);
    let broken_at = page.find("href=\"/ops/tenants/broken\"").unwrap();
    let healthy_at = page.find("href=\"/ops/tenants/healthy\"").unwrap();
    let quiet_at = page.find("href=\"/ops/tenants/quiet\"").unwrap();
    assert!(
        broken_at < healthy_at && healthy_at < quiet_at,
        "worst first, no attempts last"
    );
    assert!(page.contains("100.0 % (2 of 2)"), "{page}");
    assert!(page.contains("0.0 % (0 of 4)"));
    assert!(page.contains("20.0 % (1 of 5)"), "7 days");
    assert!(page.contains("1 active · 1 reauth required"));
    assert!(page.contains("no attempts"));
    let (_, by_slug) = get(&app, &ops, "/ops/tenants?sort=slug").await;
    assert!(
        by_slug.find("/ops/tenants/broken\"").unwrap()
            < by_slug.find("/ops/tenants/healthy\"").unwrap()
    );
    assert!(
        by_slug.find("/ops/tenants/healthy\"").unwrap()
            < by_slug.find("/ops/tenants/quiet\"").unwrap()
    );

    let (status, page) = get(&app, &ops, "/ops/tenants/broken").await;
    assert_eq!(status, 200);
    assert!(page.contains("Last successful exchange"), "{page}");
    assert!(page.contains("100.0 % (2 of 2)"));
    assert!(
        page.contains("Invite an admin"),
        "the tenant page keeps its forms"
    );

    let created = post(
        &app,
        &ops,
        "/ops/tenants",
        &[("slug", "newco"), ("name", "New Co")],
    )
    .await;
    assert_eq!(created.status(), 303);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// who may see the console, and what it never shows

#[tokio::test]
async fn a_tenant_admin_reaches_no_console_route_and_anonymous_visitors_are_sent_to_sign_in() {
    let app = spawn_app().await;
    let acme = app.create_tenant("acme").await;
    let admin = app.create_user("admin@acme.test", Some(acme)).await;
    let id = insert(
        &app,
        Row {
            tenant: acme,
            ..Row::default()
        },
    )
    .await;
    let gets = [
        "/ops".to_owned(),
        "/ops/".to_owned(),
        "/ops/exchanges".to_owned(),
        "/ops/exchanges?view=groups".to_owned(),
        "/ops/exchanges?view=trends".to_owned(),
        "/ops/exchanges?category=nope".to_owned(),
        "/ops/exchanges.csv".to_owned(),
        format!("/ops/exchanges/{id}"),
        "/ops/tenants".to_owned(),
        "/ops/tenants/acme".to_owned(),
    ];
    let posts = [
        format!("/ops/exchanges/{id}/review"),
        "/ops/exchanges/resolve".to_owned(),
    ];
    let anonymous = app.new_browser();
    for path in &gets {
        let response = anonymous
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303, "anonymous GET {path}");
        assert_eq!(
            response.headers()["location"],
            "/login",
            "anonymous GET {path}"
        );
    }

    app.login(&admin).await;
    let csrf = app.csrf_of(&app.client, "/t/acme/").await;
    for path in &gets {
        assert_eq!(app.get(path).await.status(), 404, "tenant admin GET {path}");
    }
    for path in &posts {
        let response = app
            .client
            .post(format!("{}{path}", app.address))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("action", "resolve"),
                ("note", "mine now"),
                ("tenant", "acme"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "tenant admin POST {path}");
    }
    assert_eq!(review_of(&app, id).await.review_state, "open");
    assert!(audit(&app, "exchange.").await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn no_token_client_secret_code_or_state_appears_in_any_console_page_or_export() {
    let (app, ops, _) = app_with_operator().await;
    let setup = app.setup_connect("acme").await;
    // A real success (a token is stored) and a real failure.
    let url = app.redirect_callback_url(&app.client, &setup).await;
    let response = app.client.get(url.as_str()).send().await.unwrap();
    assert_eq!(response.status(), 303);
    let failed_url = app.redirect_callback_url(&app.client, &setup).await;
    app.sandbox.inject(
        Fault::new(FaultKind::RateLimit {
            retry_after_seconds: 3,
        })
        .on(Endpoint::AuthToken),
    );
    app.client.get(failed_url.as_str()).send().await.unwrap();

    #[derive(QueryableByName)]
    struct Sealed {
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
        #[diesel(sql_type = diesel::sql_types::Bytea)]
        secret_envelope: Vec<u8>,
    }
    let mut conn = app.db.connect().await;
    let sealed: Sealed = diesel::sql_query("SELECT id, secret_envelope FROM finch_credentials")
        .get_result(&mut conn)
        .await
        .unwrap();
    let secret = app
        .vault()
        .open_string(
            &finchgate::vault::RowContext::new(
                finchgate::vault::Purpose::FinchClientSecret,
                setup.tenant_id,
                sealed.id,
            ),
            &sealed.secret_envelope,
        )
        .unwrap();
    let mut sentinels: Vec<String> = vec![secret.expose_secret().to_owned()];
    sentinels.extend(
        app.sandbox
            .issued_tokens()
            .iter()
            .map(|t| t.access_token.expose_secret().to_owned()),
    );
    for callback in [&url, &failed_url] {
        for (key, value) in callback.query_pairs() {
            if key == "code" || key == "state" {
                sentinels.push(value.into_owned());
            }
        }
    }
    assert!(
        sentinels.len() >= 5,
        "secret, token, two codes, two states: {}",
        sentinels.len()
    );

    let (_, list) = get(&app, &ops, "/ops/exchanges?status=all").await;
    let ids = ids_in(&list);
    assert_eq!(ids.len(), 2, "{list}");
    let mut paths = vec![
        "/ops/exchanges".to_owned(),
        "/ops/exchanges?status=all".to_owned(),
        "/ops/exchanges?view=groups".to_owned(),
        "/ops/exchanges?view=trends".to_owned(),
        "/ops/exchanges.csv?status=all".to_owned(),
        "/ops/tenants".to_owned(),
        "/ops/tenants/acme".to_owned(),
    ];
    paths.extend(ids.iter().map(|id| format!("/ops/exchanges/{id}")));
    for path in &paths {
        let (status, body) = get(&app, &ops, path).await;
        assert_eq!(status, 200, "{path}");
        for sentinel in &sentinels {
            assert!(
                !body.contains(sentinel.as_str()),
                "{path} shows a secret value"
            );
        }
    }
    app.stop().await;
}
