//! Every page can be reached by clicking from `/login` (issue 13, defect 2): a page that only a
//! typed address reaches is a page people cannot find. A crawler signs in as each role and follows
//! every link breadth-first; every GET route of the route table is either a page it must reach or
//! listed in [`NOT_BY_LINKS`] with the reason.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use diesel::QueryableByName;
use diesel_async::RunQueryDsl as _;
use url::Url;
use uuid::Uuid;

use crate::helpers::{TestApp, connection_id_from, decide_in_emulator, html_unescape, spawn_app};

#[tokio::test]
async fn defect_2_every_connection_is_linked_from_the_connections_list() {
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    let url = app.redirect_callback_url(&app.client, &setup).await;
    let done = app.client.get(url.as_str()).send().await.unwrap();
    assert_eq!(done.status(), 303, "the flow completes");
    let connection = connection_id_from(done.headers()["location"].to_str().unwrap());

    let list = app.get("/t/acme/").await;
    assert_eq!(list.status(), 200);
    let list = list.text().await.unwrap();
    assert!(list.contains("gusto"), "the connection is listed: {list}");
    let link = format!("href=\"/t/acme/connections/{connection}\"");
    assert!(
        list.contains(&link),
        "the connections list links to the connection ({link}): {list}"
    );
    app.stop().await;
}

/// GET routes of the route table that no link needs to reach, and why.
const NOT_BY_LINKS: &[(&str, &str)] = &[
    (
        "/ops",
        "a short address to type; it redirects to /ops/exchanges, which every operator page links",
    ),
    ("/ops/", "as /ops"),
    (
        "/invite/{token}",
        "a one-time setup link, delivered out of band to someone not signed in",
    ),
    (
        "/t/{slug}/finch/callback",
        "Finch Connect sends the browser there",
    ),
    (
        "/t/{slug}/finch/confirm",
        "the callback's redirect when Finch Connect came back without a state (issue 13, defect 5)",
    ),
    (
        "/t/{slug}/flows/{id}",
        "the callback's redirect while an exchange is still in progress; it moves on by itself",
    ),
    (
        "/login/two-factor",
        "the sign-in form's redirect for an account with two-factor sign-in (issue 13, accounts)",
    ),
    (
        "/reset/{token}",
        "a one-time password reset link, delivered out of band to someone not signed in",
    ),
    (
        "/c/{token}",
        "a connect link, sent by the tenant to a customer who has no account (issue 14)",
    ),
    (
        "/c/done",
        "where a connect link's callback sends a customer without a return URI",
    ),
    ("/healthz", "for load balancers"),
    ("/readyz", "for load balancers"),
    ("/metrics", "for the metrics scraper"),
    ("/static/{file}", "stylesheets and scripts the pages load"),
    // The tenant API (issue 14): called by a tenant's backend with an API key, not by a browser.
    (
        "/api/v1/connections",
        "the tenant API, for a backend with a key",
    ),
    (
        "/api/v1/connections/{id}",
        "the tenant API, for a backend with a key",
    ),
    (
        "/api/v1/attempts",
        "the tenant API, for a backend with a key",
    ),
    ("/api/v1/links", "the tenant API, for a backend with a key"),
    (
        "/api/v1/links/{id}",
        "the tenant API, for a backend with a key",
    ),
];

/// A page a role must reach by following links: its route in the route table, the address
/// (path, and query pairs the address must carry) of this test's object, and for an object the
/// list page that must link to it (reaching it some other way is not enough).
struct Expected {
    what: String,
    route: &'static str,
    path: String,
    query: Vec<(&'static str, String)>,
    listed_on: Option<String>,
}

fn page(what: impl Into<String>, route: &'static str, path: impl Into<String>) -> Expected {
    Expected {
        what: what.into(),
        route,
        path: path.into(),
        query: Vec::new(),
        listed_on: None,
    }
}

impl Expected {
    fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.query.push((name, value.into()));
        self
    }

    fn listed_on(mut self, path: impl Into<String>) -> Self {
        self.listed_on = Some(path.into());
        self
    }

    fn is(&self, url: &Url) -> bool {
        url.path() == self.path
            && self.query.iter().all(|(name, value)| {
                url.query_pairs()
                    .any(|(n, v)| n == *name && v == value.as_str())
            })
    }
}

/// What a tenant admin must reach: the tenant's pages, each connection and each attempt.
fn tenant_admin_pages(world: &World) -> Vec<Expected> {
    let slug = &world.slug;
    let mut pages = vec![
        page("the sign-in page", "/login", "/login"),
        page("the start page", "/", "/"),
        page("the connections list", "/t/{slug}/", format!("/t/{slug}/")),
        page(
            "the connect form",
            "/t/{slug}/connect",
            format!("/t/{slug}/connect"),
        ),
        page(
            "the settings",
            "/t/{slug}/settings",
            format!("/t/{slug}/settings"),
        ),
        page(
            "the attempts list",
            "/t/{slug}/attempts",
            format!("/t/{slug}/attempts"),
        ),
        page("the account page", "/account", "/account"),
        page(
            "two-factor sign-in",
            "/account/two-factor",
            "/account/two-factor",
        ),
        page(
            "the connect links",
            "/t/{slug}/links",
            format!("/t/{slug}/links"),
        ),
        page(
            "the API keys",
            "/t/{slug}/settings/api-keys",
            format!("/t/{slug}/settings/api-keys"),
        ),
        page(
            "the API's OpenAPI document",
            "/api/v1/openapi.json",
            "/api/v1/openapi.json",
        ),
    ];
    pages.extend(world.connections.iter().map(|id| {
        page(
            format!("connection {id}"),
            "/t/{slug}/connections/{id}",
            format!("/t/{slug}/connections/{id}"),
        )
        .listed_on(format!("/t/{slug}/"))
    }));
    pages.extend(world.attempts.iter().map(|id| {
        page(
            format!("attempt {id}"),
            "/t/{slug}/attempts/{id}",
            format!("/t/{slug}/attempts/{id}"),
        )
        .listed_on(format!("/t/{slug}/attempts"))
    }));
    pages
}

/// What an operator must reach: the console's views and filters, each exchange attempt, the
/// tenants and each tenant.
fn operator_pages(world: &World) -> Vec<Expected> {
    let slug = &world.slug;
    let mut pages = vec![
        page("the sign-in page", "/login", "/login"),
        page("the start page", "/", "/"),
        page("the failed exchanges", "/ops/exchanges", "/ops/exchanges"),
        page("all exchanges", "/ops/exchanges", "/ops/exchanges").with("status", "all"),
        page("the groups of failures", "/ops/exchanges", "/ops/exchanges").with("view", "groups"),
        page("the trends", "/ops/exchanges", "/ops/exchanges").with("view", "trends"),
        page(
            format!("the exchanges of {slug}"),
            "/ops/exchanges",
            "/ops/exchanges",
        )
        .with("tenant", slug),
        page(
            format!("the open failures of {slug}"),
            "/ops/exchanges",
            "/ops/exchanges",
        )
        .with("tenant", slug)
        .with("review", "open"),
        page("the CSV export", "/ops/exchanges.csv", "/ops/exchanges.csv"),
        page("the tenants", "/ops/tenants", "/ops/tenants"),
        page("the account page", "/account", "/account"),
        page(
            "two-factor sign-in",
            "/account/two-factor",
            "/account/two-factor",
        ),
    ];
    pages.extend(world.attempts.iter().map(|id| {
        page(
            format!("exchange {id}"),
            "/ops/exchanges/{id}",
            format!("/ops/exchanges/{id}"),
        )
        .listed_on("/ops/exchanges")
    }));
    pages.extend(world.tenants.iter().map(|t| {
        page(
            format!("tenant {t}"),
            "/ops/tenants/{slug}",
            format!("/ops/tenants/{t}"),
        )
        .listed_on("/ops/tenants")
    }));
    pages
}

#[test]
fn every_get_route_is_a_page_the_crawler_must_reach_or_says_why_not() {
    let world = World {
        slug: "acme".to_owned(),
        tenants: vec!["acme".to_owned()],
        connections: vec![Uuid::nil()],
        attempts: vec![Uuid::nil()],
    };
    let covered: BTreeSet<&str> = tenant_admin_pages(&world)
        .iter()
        .chain(operator_pages(&world).iter())
        .map(|p| p.route)
        .chain(NOT_BY_LINKS.iter().map(|(route, _)| *route))
        .collect();
    let table: BTreeSet<String> = crate::authz::routes_in_the_route_table()
        .into_iter()
        .filter(|(method, _)| method == "GET")
        .map(|(_, path)| path)
        .collect();
    assert!(table.len() > 15, "the route table was read: {table:?}");
    let missing: Vec<_> = table
        .iter()
        .filter(|r| !covered.contains(r.as_str()))
        .collect();
    let stale: Vec<_> = covered.iter().filter(|r| !table.contains(**r)).collect();
    assert!(
        missing.is_empty(),
        "GET routes neither crawled nor in NOT_BY_LINKS: {missing:?}"
    );
    assert!(stale.is_empty(), "routes that no longer exist: {stale:?}");
}

/// The objects the crawl must find.
struct World {
    slug: String,
    tenants: Vec<String>,
    connections: Vec<Uuid>,
    attempts: Vec<Uuid>,
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
}

async fn ids(app: &TestApp, sql: &str, tenant: Uuid) -> Vec<Uuid> {
    let mut conn = app.db.connect().await;
    diesel::sql_query(sql)
        .bind::<diesel::sql_types::Uuid, _>(tenant)
        .load::<IdRow>(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect()
}

/// Tenant `acme` with a connection, a successful and a failed (denied) attempt and two admins;
/// tenant `globex`, empty. Returns the world and the email and password of an admin of `acme`.
async fn world(app: &TestApp) -> (World, String, String) {
    let setup = app.setup_connect("acme").await;
    let url = app.redirect_callback_url(&app.client, &setup).await;
    let done = app.client.get(url.as_str()).send().await.unwrap();
    assert_eq!(done.status(), 303, "the flow completes");
    let started = app.start_connect(&app.client, &setup, false).await;
    let to_finch = started.headers()["location"].to_str().unwrap().to_owned();
    let denied = decide_in_emulator(&to_finch, None, "deny").await;
    assert_eq!(app.client.get(denied).send().await.unwrap().status(), 303);
    app.create_tenant("globex").await;
    // The crawl signs in as a second admin: setup_connect keeps its admin's password to itself.
    let admin = app
        .create_user("crawler@acme.test", Some(setup.tenant_id))
        .await;
    let world = World {
        slug: setup.slug.clone(),
        tenants: vec!["acme".to_owned(), "globex".to_owned()],
        connections: ids(
            app,
            "SELECT id FROM connections WHERE tenant_id = $1",
            setup.tenant_id,
        )
        .await,
        attempts: ids(
            app,
            "SELECT id FROM exchange_attempts WHERE tenant_id = $1",
            setup.tenant_id,
        )
        .await,
    };
    assert_eq!(world.connections.len(), 1, "one connection");
    assert_eq!(world.attempts.len(), 2, "a successful and a failed attempt");
    (world, admin.email, admin.password)
}

/// What a crawl found: every address fetched, with its status and the first page that linked it,
/// and for every address the pages that link to it (a redirect counts as a link).
struct Crawl {
    fetched: BTreeMap<Url, (u16, Url)>,
    linked_from: BTreeMap<Url, BTreeSet<Url>>,
}

impl Crawl {
    fn reached(&self) -> impl Iterator<Item = &Url> {
        self.fetched
            .iter()
            .filter(|(_, (status, _))| *status == 200 || *status == 303)
            .map(|(url, _)| url)
    }

    fn broken(&self) -> Vec<String> {
        self.fetched
            .iter()
            .filter(|(_, (status, _))| *status != 200 && *status != 303)
            .map(|(url, (status, from))| format!("{url} answered {status} (linked from {from})"))
            .collect()
    }
}

/// The `href`s of a page's `<a>` elements, unescaped.
fn links_in(html: &str) -> Vec<String> {
    html.split("<a ")
        .skip(1)
        .filter_map(|rest| {
            let tag = format!(" {}", rest.split('>').next()?);
            let value = tag.split(" href=\"").nth(1)?.split('"').next()?;
            Some(html_unescape(value))
        })
        .collect()
}

/// Signs in with a fresh browser through the sign-in form and follows every same-origin link
/// (and redirect) breadth-first from where sign-in lands. Forms are not followed.
async fn crawl(app: &TestApp, email: &str, password: &str) -> Crawl {
    let browser = app.new_browser();
    let base = Url::parse(&app.address).unwrap();
    let signed_in = app.login_with(&browser, email, password).await;
    assert_eq!(signed_in.status(), 303, "{email} signs in");
    let login = base.join("/login").unwrap();
    let landing = base
        .join(signed_in.headers()["location"].to_str().unwrap())
        .unwrap();
    // Signing in fetched the form: the walk starts there, on a typed address.
    let mut fetched = BTreeMap::from([(login.clone(), (200, login.clone()))]);
    let mut linked_from: BTreeMap<Url, BTreeSet<Url>> =
        BTreeMap::from([(landing.clone(), BTreeSet::from([login.clone()]))]);
    let mut queue = VecDeque::from([(landing.clone(), login.clone())]);
    let mut queued = BTreeSet::from([login, landing.clone()]);
    while let Some((url, from)) = queue.pop_front() {
        assert!(fetched.len() < 500, "the crawl stays small: {fetched:?}");
        let response = browser.get(url.clone()).send().await.unwrap();
        let status = response.status().as_u16();
        let mut next = Vec::new();
        if response.status().is_redirection() {
            next.push(response.headers()["location"].to_str().unwrap().to_owned());
        } else if response
            .headers()
            .get("content-type")
            .is_some_and(|t| t.to_str().unwrap_or_default().starts_with("text/html"))
        {
            next = links_in(&response.text().await.unwrap());
        }
        for href in next {
            let Ok(mut target) = url.join(&href) else {
                panic!("{url} links to {href:?}, not an address");
            };
            target.set_fragment(None);
            if target.origin() != base.origin() {
                continue;
            }
            linked_from
                .entry(target.clone())
                .or_default()
                .insert(url.clone());
            if queued.insert(target.clone()) {
                queue.push_back((target, url.clone()));
            }
        }
        fetched.insert(url, (status, from));
    }
    Crawl {
        fetched,
        linked_from,
    }
}

/// Fails naming every expected page the crawl did not reach, and every link that led nowhere.
fn assert_reached(role: &str, crawl: &Crawl, expected: &[Expected]) {
    let broken = crawl.broken();
    assert!(broken.is_empty(), "{role}: broken links: {broken:#?}");
    let missing: Vec<String> = expected
        .iter()
        .filter(|page| !crawl.reached().any(|url| page.is(url)))
        .map(|page| format!("{} ({}{:?})", page.what, page.path, page.query))
        .collect();
    let reached: Vec<&str> = crawl.reached().map(Url::as_str).collect();
    assert!(
        missing.is_empty(),
        "{role}: pages no link leads to: {missing:#?}\nreached: {reached:#?}"
    );
    let unlisted: Vec<String> = expected
        .iter()
        .filter_map(|page| {
            let list = page.listed_on.as_deref()?;
            let listed = crawl.linked_from.iter().any(|(url, sources)| {
                page.is(url) && sources.iter().any(|source| source.path() == list)
            });
            (!listed).then(|| format!("{} is not linked from {list}", page.what))
        })
        .collect();
    assert!(
        unlisted.is_empty(),
        "{role}: objects missing from their list: {unlisted:#?}"
    );
}

#[tokio::test]
async fn every_page_is_reachable_by_links_from_the_login_page() {
    let app = spawn_app().await;
    let (world, admin_email, admin_password) = world(&app).await;
    let operator = app.create_user("ops@platform.test", None).await;

    let admin = crawl(&app, &admin_email, &admin_password).await;
    assert_reached("tenant admin", &admin, &tenant_admin_pages(&world));
    assert!(
        admin.reached().all(|url| !url.path().starts_with("/ops")),
        "a tenant admin is never led to the console"
    );

    let ops = crawl(&app, &operator.email, &operator.password).await;
    assert_reached("operator", &ops, &operator_pages(&world));
    assert!(
        ops.reached().all(|url| !url.path().starts_with("/t/")),
        "an operator is never led to a tenant's pages"
    );
    app.stop().await;
}
