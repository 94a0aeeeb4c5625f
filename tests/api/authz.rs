//! The authorization matrix (SECURITY.md T25): every route of the route table × {anonymous,
//! admin of A, admin of B, operator} × objects of A and B. Anonymous is sent to sign in, a
//! signed-in user outside their reach gets 404 (never 403: existence is not revealed), and a
//! refused request changes nothing. A route added to `src/routes/mod.rs` without a row here fails
//! `every_route_in_the_route_table_is_in_the_matrix`.

use std::collections::BTreeSet;

use diesel::QueryableByName;
use diesel_async::RunQueryDsl as _;
use reqwest::Method;
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app};

/// Who may use a route.
#[derive(Clone, Copy, Debug)]
enum Reach {
    /// Anyone: anonymous gets `anonymous`, a signed-in user `signed_in`.
    Public { anonymous: u16, signed_in: u16 },
    /// Admins of the tenant in `{slug}`; `status` is the owner's answer to the request below.
    Tenant { status: u16 },
    /// Operators; `status` is an operator's answer.
    Ops { status: u16 },
    /// Anyone signed in, on their own account; `status` is every signed-in user's answer.
    Account { status: u16 },
}

/// What a request carries besides the CSRF token.
#[derive(Clone, Copy, Debug)]
enum Body {
    None,
    /// A valid form for the route, built from the target's objects.
    Form(fn(&Objects) -> Vec<(&'static str, String)>),
    /// The embedded-flow JSON.
    Json,
    /// A query string (GET).
    Query(&'static str),
}

struct Row {
    method: Method,
    path: &'static str,
    reach: Reach,
    body: Body,
    /// Changes what later rows see: run last among the owner's requests.
    destructive: bool,
}

fn row(method: Method, path: &'static str, reach: Reach, body: Body) -> Row {
    Row {
        method,
        path,
        reach,
        body,
        destructive: false,
    }
}

fn destructive(mut row: Row) -> Row {
    row.destructive = true;
    row
}

fn matrix() -> Vec<Row> {
    use Body::{Form, Json, Query};
    use Reach::{Account, Ops, Public, Tenant};
    let get = || Method::GET;
    let post = || Method::POST;
    vec![
        row(
            get(),
            "/",
            Public {
                anonymous: 303,
                signed_in: 303,
            },
            Body::None,
        ),
        // A signed-in user is sent home.
        row(
            get(),
            "/login",
            Public {
                anonymous: 200,
                signed_in: 303,
            },
            Body::None,
        ),
        // Wrong password for a real account: the generic refusal, for everyone.
        row(
            post(),
            "/login",
            Public {
                anonymous: 401,
                signed_in: 401,
            },
            Form(|o| {
                vec![
                    ("email", o.admin_email.clone()),
                    ("password", "not-the-password".to_owned()),
                ]
            }),
        ),
        row(
            get(),
            "/invite/{token}",
            Public {
                anonymous: 404,
                signed_in: 404,
            },
            Body::None,
        ),
        row(
            post(),
            "/invite/{token}",
            Public {
                anonymous: 404,
                signed_in: 404,
            },
            Form(|_| {
                vec![
                    ("password", "a long enough passphrase 42".to_owned()),
                    ("password_confirm", "a long enough passphrase 42".to_owned()),
                ]
            }),
        ),
        row(
            get(),
            "/healthz",
            Public {
                anonymous: 200,
                signed_in: 200,
            },
            Body::None,
        ),
        row(
            get(),
            "/readyz",
            Public {
                anonymous: 200,
                signed_in: 200,
            },
            Body::None,
        ),
        // Served on the metrics listener only (FINCHGATE_METRICS_BIND), never the public one.
        row(
            get(),
            "/metrics",
            Public {
                anonymous: 404,
                signed_in: 404,
            },
            Body::None,
        ),
        row(
            get(),
            "/static/{file}",
            Public {
                anonymous: 200,
                signed_in: 200,
            },
            Body::None,
        ),
        row(get(), "/ops", Ops { status: 303 }, Body::None),
        row(get(), "/ops/", Ops { status: 303 }, Body::None),
        row(
            get(),
            "/ops/exchanges",
            Ops { status: 200 },
            Query("status=all&tenant=tenant-a"),
        ),
        row(
            get(),
            "/ops/exchanges.csv",
            Ops { status: 200 },
            Query("tenant=tenant-a"),
        ),
        row(
            get(),
            "/ops/exchanges/{attempt}",
            Ops { status: 200 },
            Body::None,
        ),
        row(
            post(),
            "/ops/exchanges/{attempt}/review",
            Ops { status: 303 },
            Form(|_| {
                vec![
                    ("action", "acknowledge".to_owned()),
                    ("note", String::new()),
                ]
            }),
        ),
        destructive(row(
            post(),
            "/ops/exchanges/resolve",
            Ops { status: 303 },
            Form(|o| {
                vec![
                    ("tenant", o.slug.clone()),
                    ("note", format!("resolved by {}", o.actor)),
                ]
            }),
        )),
        row(get(), "/ops/tenants", Ops { status: 200 }, Body::None),
        row(
            post(),
            "/ops/tenants",
            Ops { status: 303 },
            Form(|o| {
                vec![
                    ("slug", format!("made-by-{}", o.actor)),
                    ("name", "Made in the matrix".to_owned()),
                ]
            }),
        ),
        row(
            get(),
            "/ops/tenants/{slug}",
            Ops { status: 200 },
            Body::None,
        ),
        row(
            post(),
            "/ops/tenants/{slug}/invite",
            Ops { status: 200 },
            Form(|o| vec![("email", format!("invited-by-{}@{}.test", o.actor, o.slug))]),
        ),
        destructive(row(
            post(),
            "/ops/tenants/{slug}/users/{user}/disable",
            Ops { status: 303 },
            Body::None,
        )),
        row(get(), "/t/{slug}/", Tenant { status: 200 }, Body::None),
        row(
            get(),
            "/t/{slug}/connect",
            Tenant { status: 200 },
            Body::None,
        ),
        row(
            post(),
            "/t/{slug}/connect",
            Tenant { status: 303 },
            Form(|o| {
                vec![
                    ("product", "company".to_owned()),
                    ("flow", "redirect".to_owned()),
                    ("redirect_uri_id", o.redirect_uri.to_string()),
                    ("customer_id", o.slug.clone()),
                    ("customer_name", "Matrix".to_owned()),
                    ("sandbox", "finch".to_owned()),
                ]
            }),
        ),
        // A well-formed state that matches no flow: refused as unknown, after the tenant check.
        row(
            get(),
            "/t/{slug}/finch/callback",
            Tenant { status: 400 },
            Query(
                "code=ab12cd34ef56ab12cd34ef56ab12cd34&state=0000000000000000000000000000000000000000000",
            ),
        ),
        row(
            post(),
            "/t/{slug}/finch/callback",
            Tenant { status: 400 },
            Json,
        ),
        // No pending code in this browser: nothing to confirm.
        row(
            get(),
            "/t/{slug}/finch/confirm",
            Tenant { status: 400 },
            Body::None,
        ),
        row(
            post(),
            "/t/{slug}/finch/confirm",
            Tenant { status: 400 },
            Body::None,
        ),
        row(
            get(),
            "/t/{slug}/connections/{connection}",
            Tenant { status: 200 },
            Body::None,
        ),
        row(
            post(),
            "/t/{slug}/connections/{connection}/refresh",
            Tenant { status: 303 },
            Body::None,
        ),
        row(
            post(),
            "/t/{slug}/connections/{connection}/reconnect",
            Tenant { status: 303 },
            Form(|o| vec![("redirect_uri_id", o.redirect_uri.to_string())]),
        ),
        destructive(row(
            post(),
            "/t/{slug}/connections/{connection}/disconnect",
            Tenant { status: 303 },
            Body::None,
        )),
        row(
            get(),
            "/t/{slug}/attempts",
            Tenant { status: 200 },
            Body::None,
        ),
        row(
            get(),
            "/t/{slug}/attempts/{attempt}",
            Tenant { status: 200 },
            Body::None,
        ),
        row(
            get(),
            "/t/{slug}/flows/{flow}",
            Tenant { status: 303 },
            Body::None,
        ),
        row(
            get(),
            "/t/{slug}/settings",
            Tenant { status: 200 },
            Body::None,
        ),
        row(
            post(),
            "/t/{slug}/settings/finch",
            Tenant { status: 303 },
            Form(|o| {
                vec![
                    ("client_id", o.client_id.clone()),
                    ("client_secret", String::new()),
                    ("sandbox", "finch".to_owned()),
                    ("products", "company".to_owned()),
                ]
            }),
        ),
        row(
            post(),
            "/t/{slug}/settings/finch/test",
            Tenant { status: 303 },
            Body::None,
        ),
        row(
            post(),
            "/t/{slug}/settings/redirect-uris",
            Tenant { status: 303 },
            Form(|o| {
                vec![(
                    "uri",
                    format!("https://{}.example/finch/{}", o.slug, o.actor),
                )]
            }),
        ),
        destructive(row(
            post(),
            "/t/{slug}/settings/redirect-uris/{redirect_uri}/delete",
            Tenant { status: 303 },
            Body::None,
        )),
        // API keys (issue 14): the settings pages; the tenant API's own routes are in
        // tests/api/api_authz.rs (per key scope and tenant), its public document here.
        row(
            get(),
            "/t/{slug}/settings/api-keys",
            Tenant { status: 200 },
            Body::None,
        ),
        row(
            post(),
            "/t/{slug}/settings/api-keys",
            Tenant { status: 200 },
            Form(|o| {
                vec![
                    ("name", format!("made by {}", o.actor)),
                    ("scope", "connections:read".to_owned()),
                ]
            }),
        ),
        destructive(row(
            post(),
            "/t/{slug}/settings/api-keys/{api_key}/revoke",
            Tenant { status: 303 },
            Body::None,
        )),
        row(
            get(),
            "/api/v1/openapi.json",
            Public {
                anonymous: 200,
                signed_in: 200,
            },
            Body::None,
        ),
        // Accounts (issue 13): the account pages, the second sign-in step, reset links, and
        // the operator's and tenant's two-factor actions.
        // No second step is due in these sessions: back to the start.
        row(
            get(),
            "/login/two-factor",
            Public {
                anonymous: 303,
                signed_in: 303,
            },
            Body::None,
        ),
        row(
            post(),
            "/login/two-factor",
            Public {
                anonymous: 303,
                signed_in: 303,
            },
            Form(|_| vec![("code", "123456".to_owned())]),
        ),
        row(
            get(),
            "/reset/{token}",
            Public {
                anonymous: 404,
                signed_in: 404,
            },
            Body::None,
        ),
        row(
            post(),
            "/reset/{token}",
            Public {
                anonymous: 404,
                signed_in: 404,
            },
            Form(|_| {
                vec![
                    ("password", "a long enough passphrase 42".to_owned()),
                    ("password_confirm", "a long enough passphrase 42".to_owned()),
                ]
            }),
        ),
        row(get(), "/account", Account { status: 200 }, Body::None),
        // A wrong current password: refused with a flash, nothing changes.
        row(
            post(),
            "/account/password",
            Account { status: 303 },
            Form(|_| {
                vec![
                    ("current_password", "not the password".to_owned()),
                    ("new_password", "a long enough passphrase 42".to_owned()),
                    (
                        "new_password_confirm",
                        "a long enough passphrase 42".to_owned(),
                    ),
                ]
            }),
        ),
        // A session id that is nobody's (another user's is a 404 too: tests/api/account.rs).
        row(
            post(),
            "/account/sessions/{session}/revoke",
            Account { status: 404 },
            Body::None,
        ),
        row(
            post(),
            "/account/sessions/revoke-others",
            Account { status: 303 },
            Body::None,
        ),
        row(
            get(),
            "/account/two-factor",
            Account { status: 200 },
            Body::None,
        ),
        // A wrong code: the page again, with the refusal.
        row(
            post(),
            "/account/two-factor",
            Account { status: 400 },
            Form(|_| {
                vec![
                    ("action", "confirm".to_owned()),
                    ("code", "000000".to_owned()),
                ]
            }),
        ),
        row(
            post(),
            "/ops/tenants/{slug}/users/{user}/reset-link",
            Ops { status: 200 },
            Body::None,
        ),
        row(
            post(),
            "/ops/tenants/{slug}/users/{user}/clear-two-factor",
            Ops { status: 303 },
            Body::None,
        ),
        row(
            post(),
            "/t/{slug}/settings/two-factor",
            Tenant { status: 303 },
            Body::None,
        ),
        // Connect links (issue 14): the admin pages, and the public pages of a link. An unknown
        // token is the one "no longer works" page (404) for everyone, signed in or not.
        row(get(), "/t/{slug}/links", Tenant { status: 200 }, Body::None),
        row(
            post(),
            "/t/{slug}/links",
            Tenant { status: 200 },
            Form(|o| {
                vec![
                    ("customer_id", format!("matrix-{}", o.actor)),
                    ("customer_name", "Matrix".to_owned()),
                    ("product", "company".to_owned()),
                    ("flow", "embedded".to_owned()),
                ]
            }),
        ),
        destructive(row(
            post(),
            "/t/{slug}/links/{link}/revoke",
            Tenant { status: 303 },
            Body::None,
        )),
        row(
            get(),
            "/c/{token}",
            Public {
                anonymous: 404,
                signed_in: 404,
            },
            Body::None,
        ),
        row(
            post(),
            "/c/{token}",
            Public {
                anonymous: 404,
                signed_in: 404,
            },
            Body::None,
        ),
        row(
            get(),
            "/c/done",
            Public {
                anonymous: 200,
                signed_in: 200,
            },
            Body::None,
        ),
        // Last of all: it ends the session of whoever calls it.
        destructive(row(
            post(),
            "/logout",
            Public {
                anonymous: 303,
                signed_in: 303,
            },
            Body::None,
        )),
    ]
}

/// The `(METHOD, path)` pairs registered in `src/routes/mod.rs`, read from its source.
pub(crate) fn routes_in_the_route_table() -> BTreeSet<(String, String)> {
    let source = include_str!("../../src/routes/mod.rs");
    let text: String = source.split_whitespace().collect();
    text.split(".route(\"")
        .skip(1)
        .map(|rest| {
            let path = rest.split('"').next().unwrap().to_owned();
            let method = rest
                .split("web::")
                .nth(1)
                .unwrap()
                .split('(')
                .next()
                .unwrap()
                .to_uppercase();
            (method, path)
        })
        .collect()
}

/// A matrix path with the route table's own placeholder names.
fn as_route_pattern(path: &str) -> String {
    [
        "connection",
        "attempt",
        "flow",
        "user",
        "redirect_uri",
        "session",
        "link",
        "api_key",
    ]
    .iter()
    .fold(path.to_owned(), |p, name| {
        p.replace(&format!("{{{name}}}"), "{id}")
    })
}

#[test]
fn every_route_in_the_route_table_is_in_the_matrix() {
    let table = routes_in_the_route_table();
    assert!(table.len() > 20, "the route table was read: {table:?}");
    let matrix: BTreeSet<(String, String)> = matrix()
        .iter()
        .map(|r| (r.method.to_string(), as_route_pattern(r.path)))
        .chain(crate::api_authz::api_routes_in_the_matrix())
        .collect();
    let missing: Vec<_> = table.difference(&matrix).collect();
    let stale: Vec<_> = matrix.difference(&table).collect();
    assert!(
        missing.is_empty(),
        "routes without a row in the authorization matrix: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "matrix rows for routes that no longer exist: {stale:?}"
    );
}

/// One tenant's objects, as the paths and forms name them.
#[derive(Clone)]
struct Objects {
    /// Who sends the request (keeps created names apart).
    actor: &'static str,
    slug: String,
    connection: Uuid,
    attempt: Uuid,
    flow: Uuid,
    user: Uuid,
    redirect_uri: Uuid,
    api_key: Uuid,
    link: Uuid,
    client_id: String,
    admin_email: String,
}

impl Objects {
    fn fill(&self, path: &str) -> String {
        path.replace("{slug}", &self.slug)
            .replace("{connection}", &self.connection.to_string())
            .replace("{attempt}", &self.attempt.to_string())
            .replace("{flow}", &self.flow.to_string())
            .replace("{user}", &self.user.to_string())
            .replace("{api_key}", &self.api_key.to_string())
            .replace("{redirect_uri}", &self.redirect_uri.to_string())
            .replace("{link}", &self.link.to_string())
            .replace("{token}", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            .replace("{session}", &Uuid::nil().to_string())
            .replace("{file}", "app.css")
    }

    fn by(&self, actor: &'static str) -> Self {
        Self {
            actor,
            ..self.clone()
        }
    }

    /// `self`'s slug with `other`'s object ids: an object of another tenant under one's own name.
    fn with_ids_of(&self, other: &Self) -> Self {
        Self {
            connection: other.connection,
            attempt: other.attempt,
            api_key: other.api_key,
            flow: other.flow,
            user: other.user,
            redirect_uri: other.redirect_uri,
            link: other.link,
            ..self.clone()
        }
    }
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
}

async fn one_id(app: &TestApp, sql: &str, tenant: Uuid) -> Uuid {
    let mut conn = app.db.connect().await;
    diesel::sql_query(sql)
        .bind::<diesel::sql_types::Uuid, _>(tenant)
        .get_result::<IdRow>(&mut conn)
        .await
        .unwrap()
        .id
}

/// A tenant with an active connection made through the emulator, a finished attempt, a flow,
/// a spare user and a whitelisted redirect URI; its admin signed in in `browser`.
async fn tenant_with_objects(app: &TestApp, slug: &str, browser: &reqwest::Client) -> Objects {
    let setup = app.setup_connect_in(slug, browser).await;
    let url = app.redirect_callback_url(browser, &setup).await;
    let done = browser.get(url).send().await.unwrap();
    assert_eq!(done.status(), 303, "the flow completes");
    // A second flow the user denies: a failed attempt (the console's triage works on failures).
    let started = app.start_connect(browser, &setup, false).await;
    let to_finch = started.headers()["location"].to_str().unwrap().to_owned();
    let denied = crate::helpers::decide_in_emulator(&to_finch, None, "deny").await;
    assert_eq!(browser.get(denied).send().await.unwrap().status(), 303);
    let spare = app
        .create_user(&format!("spare@{slug}.test"), Some(setup.tenant_id))
        .await;
    // A connect link (issue 14), created as an admin does.
    let csrf = app.csrf_of(browser, &format!("/t/{slug}/links")).await;
    let created = browser
        .post(format!("{}/t/{slug}/links", app.address))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("customer_id", "matrix"),
            ("customer_name", "Matrix"),
            ("product", "company"),
            ("flow", "embedded"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200, "the link is created");
    let client_id: String = {
        #[derive(QueryableByName)]
        struct ClientId {
            #[diesel(sql_type = diesel::sql_types::Text)]
            client_id: String,
        }
        let mut conn = app.db.connect().await;
        diesel::sql_query(
            "SELECT c.client_id FROM finch_credentials c
               JOIN tenants t ON t.id = c.tenant_id AND t.credentials_version = c.version
              WHERE c.tenant_id = $1",
        )
        .bind::<diesel::sql_types::Uuid, _>(setup.tenant_id)
        .get_result::<ClientId>(&mut conn)
        .await
        .unwrap()
        .client_id
    };
    Objects {
        actor: "owner",
        slug: slug.to_owned(),
        connection: one_id(
            app,
            "SELECT id FROM connections WHERE tenant_id = $1",
            setup.tenant_id,
        )
        .await,
        attempt: one_id(
            app,
            "SELECT id FROM exchange_attempts WHERE tenant_id = $1",
            setup.tenant_id,
        )
        .await,
        flow: one_id(
            app,
            "SELECT id FROM connect_flows WHERE tenant_id = $1",
            setup.tenant_id,
        )
        .await,
        user: spare.id,
        redirect_uri: setup.redirect_uri_id,
        link: one_id(
            app,
            "SELECT id FROM connect_links WHERE tenant_id = $1",
            setup.tenant_id,
        )
        .await,
        api_key: {
            crate::api_support::key_for(
                app,
                setup.tenant_id,
                &[finchgate::domain::ApiScope::ConnectionsRead],
            )
            .await;
            one_id(
                app,
                "SELECT id FROM api_keys WHERE tenant_id = $1",
                setup.tenant_id,
            )
            .await
        },
        client_id,
        admin_email: format!("admin@{slug}.test"),
    }
}

/// A browser with its CSRF token (read from a page its session can see).
struct Browser {
    name: &'static str,
    client: reqwest::Client,
    csrf: String,
}

impl Browser {
    async fn send(&self, app: &TestApp, row: &Row, objects: &Objects) -> reqwest::Response {
        let url = format!("{}{}", app.address, objects.fill(row.path));
        let request = match row.body {
            Body::Query(query) => self.client.get(format!("{url}?{query}")),
            _ if row.method == Method::GET => self.client.get(url),
            Body::Json => self
                .client
                .post(url)
                .header("X-CSRF-Token", &self.csrf)
                .json(&serde_json::json!({
                    "code": "ab12cd34ef56ab12cd34ef56ab12cd34",
                    "state": "0000000000000000000000000000000000000000000",
                })),
            Body::Form(form) => {
                let mut fields = form(objects);
                fields.push(("csrf_token", self.csrf.clone()));
                self.client.post(url).form(&fields)
            }
            Body::None => self
                .client
                .post(url)
                .form(&[("csrf_token", self.csrf.as_str())]),
        };
        request.send().await.unwrap()
    }
}

/// What a refused request must look like for this browser.
fn assert_refused(browser: &Browser, row: &Row, objects: &Objects, response: &reqwest::Response) {
    let what = format!(
        "{} {} {} (as {})",
        browser.name,
        row.method,
        objects.fill(row.path),
        objects.actor
    );
    if browser.name == "anonymous" {
        assert_eq!(response.status(), 303, "{what}: sent to sign in");
        assert_eq!(response.headers()["location"], "/login", "{what}");
    } else {
        assert_eq!(response.status(), 404, "{what}: not found, never forbidden");
    }
}

#[derive(QueryableByName, PartialEq, Eq, Debug)]
struct Fingerprint {
    #[diesel(sql_type = diesel::sql_types::Text)]
    state: String,
}

/// Everything a refused request could have changed, as one comparable value.
async fn fingerprint(app: &TestApp) -> Fingerprint {
    let mut conn = app.db.connect().await;
    diesel::sql_query(
        "SELECT concat_ws(' | ',
            (SELECT string_agg(slug || ':' || status, ',' ORDER BY slug) FROM tenants),
            (SELECT string_agg(email || ':' || (disabled_at IS NULL), ',' ORDER BY email) FROM users),
            (SELECT count(*) FROM invitations),
            (SELECT string_agg(id::text || ':' || version || ':' || (secret_envelope IS NULL), ',' ORDER BY id) FROM finch_credentials),
            (SELECT string_agg(uri, ',' ORDER BY uri) FROM redirect_uris),
            (SELECT string_agg(id::text || ':' || status, ',' ORDER BY id) FROM connections),
            (SELECT count(*) FROM connection_tokens),
            (SELECT string_agg(status, ',' ORDER BY id) FROM connect_flows),
            (SELECT string_agg(id::text || ':' || review_state, ',' ORDER BY id) FROM exchange_attempts),
            (SELECT string_agg(id::text || ':' || (revoked_at IS NULL), ',' ORDER BY id) FROM connect_links),
            (SELECT string_agg(id::text || ':' || (revoked_at IS NULL), ',' ORDER BY id) FROM api_keys)
         ) AS state",
    )
    .get_result(&mut conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn every_route_answers_each_role_as_the_matrix_says_and_refusals_change_nothing() {
    let app = spawn_app().await;
    let admin_a = app.new_browser();
    let admin_b = app.new_browser();
    let a = tenant_with_objects(&app, "tenant-a", &admin_a).await;
    let b = tenant_with_objects(&app, "tenant-b", &admin_b).await;
    let operator = app.new_browser();
    let op_user = app.create_user("ops@platform.test", None).await;
    assert_eq!(
        app.login_with(&operator, &op_user.email, &op_user.password)
            .await
            .status(),
        303
    );
    let anonymous = app.new_browser();
    let browsers = [
        Browser {
            name: "anonymous",
            csrf: app.csrf_of(&anonymous, "/login").await,
            client: anonymous,
        },
        Browser {
            name: "admin of A",
            csrf: app.csrf_of(&admin_a, "/t/tenant-a/settings").await,
            client: admin_a,
        },
        Browser {
            name: "admin of B",
            csrf: app.csrf_of(&admin_b, "/t/tenant-b/settings").await,
            client: admin_b,
        },
        Browser {
            name: "operator",
            csrf: app.csrf_of(&operator, "/ops/tenants").await,
            client: operator,
        },
    ];
    let [anonymous, admin_a, admin_b, operator] = &browsers;
    let rows = matrix();
    let before = fingerprint(&app).await;
    let finch_calls_before = app.sandbox.requests().len();

    // Refusals first: none of them may change anything.
    let mut refused = 0;
    for row in rows.iter().filter(|r| r.path != "/logout") {
        let cases: Vec<(&Browser, Objects)> = match row.reach {
            Reach::Public { .. } => Vec::new(),
            Reach::Account { .. } => vec![(anonymous, a.by("anonymous"))],
            Reach::Tenant { .. } => {
                let mut cases = vec![
                    (anonymous, a.by("anonymous")),
                    (admin_b, a.by("admin of B")),
                    (operator, a.by("operator")),
                ];
                if row.path.contains("/{connection}")
                    || row.path.contains("/{attempt}")
                    || row.path.contains("/{flow}")
                    || row.path.contains("/{redirect_uri}")
                    || row.path.contains("/{api_key}")
                {
                    // B's object under A's own name, asked by A's admin.
                    cases.push((admin_a, a.with_ids_of(&b).by("admin of A")));
                }
                cases
            }
            Reach::Ops { .. } => {
                let mut cases = vec![
                    (anonymous, a.by("anonymous")),
                    (admin_a, a.by("admin of A")),
                    (admin_b, a.by("admin of B")),
                ];
                if row.path.contains("{user}") {
                    // B's user under A's slug.
                    cases.push((operator, a.with_ids_of(&b).by("operator")));
                }
                cases
            }
        };
        for (browser, objects) in cases {
            let response = browser.send(&app, row, &objects).await;
            assert_refused(browser, row, &objects, &response);
            refused += 1;
        }
    }
    assert_eq!(
        fingerprint(&app).await,
        before,
        "a refused request changed the database"
    );
    assert_eq!(
        app.sandbox.requests().len(),
        finch_calls_before,
        "a refused request reached Finch"
    );
    assert!(refused > 60, "{refused} refusals checked");

    // Then what each role may do, destructive rows last.
    let (mut safe, mut last): (Vec<&Row>, Vec<&Row>) = rows.iter().partition(|r| !r.destructive);
    safe.append(&mut last);
    for row in safe {
        let cases: Vec<(&Browser, Objects, u16)> = match row.reach {
            Reach::Public {
                anonymous,
                signed_in,
            } => browsers
                .iter()
                .map(|b| {
                    let status = if b.name == "anonymous" {
                        anonymous
                    } else {
                        signed_in
                    };
                    (b, a.by(b.name), status)
                })
                .collect(),
            Reach::Tenant { status } => vec![(admin_a, a.by("admin of A"), status)],
            Reach::Ops { status } => vec![(operator, a.by("operator"), status)],
            Reach::Account { status } => browsers
                .iter()
                .filter(|b| b.name != "anonymous")
                .map(|b| (b, a.by(b.name), status))
                .collect(),
        };
        for (browser, objects, status) in cases {
            let response = browser.send(&app, row, &objects).await;
            let location = response
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned());
            assert_eq!(
                response.status(),
                status,
                "{} {} {}: location {location:?}",
                browser.name,
                row.method,
                objects.fill(row.path)
            );
            if status == 303
                && row.path != "/logout"
                && row.path != "/"
                && row.path != "/login/two-factor"
            {
                assert_ne!(
                    location.as_deref(),
                    Some("/login"),
                    "{} {} {} was allowed, not sent to sign in",
                    browser.name,
                    row.method,
                    row.path
                );
            }
        }
    }
    app.stop().await;
}
