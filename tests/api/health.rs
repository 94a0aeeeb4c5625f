//! `/healthz`, `/readyz`, `/metrics`, the access log's request id, and error pages.

use crate::helpers::spawn_app;

#[tokio::test]
async fn healthz_answers_ok_with_a_request_id() {
    let app = spawn_app().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers().get("x-request-id").is_some(),
        "every response carries a request id"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    app.stop().await;
}

#[tokio::test]
async fn readyz_is_ready_when_the_database_is_migrated() {
    let app = spawn_app().await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    app.stop().await;
}

#[tokio::test]
async fn readyz_is_unavailable_with_a_reason_when_the_database_is_gone() {
    let app = spawn_app().await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    app.db.drop_now().await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    let reason = body["reason"].as_str().unwrap();
    assert!(
        reason.contains("database"),
        "the reason names the database: {reason}"
    );
    assert!(
        !reason.contains(&app.db.name) || !reason.contains("postgres://"),
        "no connection string: {reason}"
    );
    // The process keeps serving.
    assert_eq!(app.get("/healthz").await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn readyz_is_unavailable_when_a_migration_is_missing() {
    use diesel_async::RunQueryDsl as _;
    let app = spawn_app().await;
    let mut conn = app.db.connect().await;
    diesel::sql_query(
        "DELETE FROM __diesel_schema_migrations WHERE version = (SELECT max(version) FROM __diesel_schema_migrations)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    let reason = body["reason"].as_str().unwrap();
    assert!(
        reason.contains("not applied") && reason.contains("finchgate migrate"),
        "{reason}"
    );
    app.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_by_route_in_prometheus_format() {
    let app = spawn_app().await;
    app.get("/healthz").await;
    app.get("/no/such/page?code=secret-code&state=secret-state")
        .await;
    let response = app.metrics().await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let body = response.text().await.unwrap();
    assert!(
        body.contains("# TYPE http_requests_total counter"),
        "{body}"
    );
    assert!(body.contains(r#"route="/healthz""#), "{body}");
    assert!(
        body.contains("http_request_duration_seconds_bucket"),
        "{body}"
    );
    assert!(
        !body.contains("secret-code") && !body.contains("secret-state"),
        "no query strings in metrics"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_page_is_a_helpful_404_with_a_reference() {
    let app = spawn_app().await;
    let response = app.get("/definitely/not/here").await;
    assert_eq!(response.status(), 404);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.text().await.unwrap();
    assert!(body.contains("Not found"));
    assert!(
        body.contains(&request_id),
        "the page shows the correlation id"
    );
    app.stop().await;
}
