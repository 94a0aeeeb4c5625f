//! The tenant API's authorization matrix (issue 14): every `/api/v1` route × {no key, a key of
//! the owner without the route's scope, a key of another tenant with every scope, the owner's key
//! with the scope}. No key is a 401, a missing scope a 403 naming it, another tenant's object a
//! 404; refusals change nothing and send nothing to Finch. Rows here count for
//! `every_route_in_the_route_table_is_in_the_matrix` (tests/api/authz.rs).

use std::collections::BTreeSet;

use finchgate::domain::ApiScope;
use reqwest::Method;

use crate::api_support::{Api, api_link, connected_tenant, key_for};
use crate::helpers::{count, spawn_app};

/// One API route: what it needs, and what the owner gets.
struct ApiRow {
    method: Method,
    path: &'static str,
    scope: ApiScope,
    /// The owner's answer with the scope.
    status: u16,
    /// Names one object (`{connection}`): another tenant's key gets a 404.
    object: bool,
    /// Changes the object: run last.
    destructive: bool,
    /// Another scope that grants the route too (the "lacking" key lacks both).
    or_scope: Option<ApiScope>,
    /// The JSON body sent (a POST).
    body: Option<serde_json::Value>,
}

impl ApiRow {
    fn or_scope(mut self, scope: ApiScope) -> Self {
        self.or_scope = Some(scope);
        self
    }

    fn body(mut self, body: serde_json::Value) -> Self {
        self.body = Some(body);
        self
    }

    /// The route's pattern in the route table.
    fn pattern(&self) -> String {
        self.path
            .replace("{connection}", "{id}")
            .replace("{link}", "{id}")
    }
}

fn api_matrix() -> Vec<ApiRow> {
    let row = |method, path, scope, status, object, destructive| ApiRow {
        method,
        path,
        scope,
        status,
        object,
        destructive,
        or_scope: None,
        body: None,
    };
    use ApiScope::{ConnectionsRead, ConnectionsWrite, LinksWrite};
    vec![
        row(
            Method::GET,
            "/api/v1/connections",
            ConnectionsRead,
            200,
            false,
            false,
        ),
        row(
            Method::GET,
            "/api/v1/connections/{connection}",
            ConnectionsRead,
            200,
            true,
            false,
        ),
        row(
            Method::GET,
            "/api/v1/attempts",
            ConnectionsRead,
            200,
            false,
            false,
        ),
        row(
            Method::DELETE,
            "/api/v1/connections/{connection}",
            ConnectionsWrite,
            200,
            true,
            true,
        ),
        // Connect links by API (issue 14): reading with connections:read or links:write.
        row(Method::POST, "/api/v1/links", LinksWrite, 201, false, false).body(serde_json::json!({
            "customer_id": "matrix",
            "customer_name": "Matrix Ltd",
            "products": ["company"],
            "flow": "embedded",
        })),
        row(
            Method::GET,
            "/api/v1/links",
            ConnectionsRead,
            200,
            false,
            false,
        )
        .or_scope(LinksWrite),
        row(
            Method::GET,
            "/api/v1/links/{link}",
            ConnectionsRead,
            200,
            true,
            false,
        )
        .or_scope(LinksWrite),
        row(
            Method::DELETE,
            "/api/v1/links/{link}",
            LinksWrite,
            200,
            true,
            true,
        ),
    ]
}

/// The `(METHOD, route pattern)` pairs of this matrix, for the route-table completeness test.
pub(crate) fn api_routes_in_the_matrix() -> BTreeSet<(String, String)> {
    api_matrix()
        .iter()
        .map(|r| (r.method.to_string(), r.pattern()))
        .collect()
}

#[tokio::test]
async fn every_api_route_answers_each_key_as_the_matrix_says_and_refusals_change_nothing() {
    let app = spawn_app().await;
    let (a, a_connection) = connected_tenant(&app, "tenant-a", &app.new_browser()).await;
    let (b, _) = connected_tenant(&app, "tenant-b", &app.new_browser()).await;
    let api = Api::new(&app).await;
    let every_scope = ApiScope::ALL;
    let b_key = key_for(&app, b.tenant_id, every_scope).await;
    let a_link = api_link(&app, a.tenant_id).await;
    let fill = |path: &str| {
        path.replace("{connection}", &a_connection.to_string())
            .replace("{link}", &a_link)
    };
    let state = async || {
        (
            count(
                &app.db,
                "SELECT count(*) AS n FROM connections WHERE status = 'active'",
            )
            .await,
            count(&app.db, "SELECT count(*) AS n FROM connection_tokens").await,
            app.sandbox.requests().len(),
            count(
                &app.db,
                &format!(
                    "SELECT count(*) AS n FROM connect_links WHERE tenant_id = '{}' AND revoked_at IS NULL",
                    a.tenant_id
                ),
            )
            .await,
        )
    };
    let before = state().await;
    let mut refusals = 0;
    for row in api_matrix() {
        let path = fill(row.path);
        let body = row.body.clone();
        let with_body = |r: reqwest::RequestBuilder| match body.clone() {
            Some(b) => r.json(&b),
            None => r,
        };
        let anonymous = api.send(row.method.clone(), "", &path, with_body).await;
        assert_eq!(anonymous.status, 401, "{} {path} without a key", row.method);
        // The owner's key with every scope but this one.
        let others: Vec<ApiScope> = every_scope
            .iter()
            .copied()
            .filter(|s| *s != row.scope && Some(*s) != row.or_scope)
            .collect();
        let lacking = key_for(&app, a.tenant_id, &others).await;
        let forbidden = api
            .send(row.method.clone(), &lacking, &path, with_body)
            .await;
        assert_eq!(
            forbidden.status, 403,
            "{} {path} without {}",
            row.method, row.scope
        );
        assert_eq!(forbidden.json["scope"], row.scope.as_str());
        let foreign = api.send(row.method.clone(), &b_key, &path, with_body).await;
        if row.object {
            assert_eq!(
                foreign.status, 404,
                "{} {path} with tenant B's key",
                row.method
            );
        } else {
            assert_eq!(foreign.status, row.status, "{} {path}", row.method);
            assert!(
                !foreign.text.contains(&a_connection.to_string())
                    && !foreign.text.contains(&a_link),
                "B sees none of A's rows"
            );
        }
        refusals += 3;
    }
    assert_eq!(
        state().await,
        before,
        "a refused request changed something or reached Finch"
    );
    assert!(refusals >= 12);

    let (mut safe, mut last): (Vec<ApiRow>, Vec<ApiRow>) =
        api_matrix().into_iter().partition(|r| !r.destructive);
    safe.append(&mut last);
    for row in safe {
        let key = key_for(&app, a.tenant_id, &[row.scope]).await;
        let body = row.body.clone();
        let answer = api
            .send(row.method.clone(), &key, &fill(row.path), |r| match body {
                Some(b) => r.json(&b),
                None => r,
            })
            .await;
        if let Some(other) = row.or_scope {
            let key = key_for(&app, a.tenant_id, &[other]).await;
            let also = api.get(&key, &fill(row.path)).await;
            assert_eq!(
                also.status, row.status,
                "{} {} with {other}",
                row.method, row.path
            );
        }
        assert_eq!(
            answer.status, row.status,
            "{} {}: {}",
            row.method, row.path, answer.text
        );
    }
    app.stop().await;
}
