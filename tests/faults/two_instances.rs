//! Two instances (issue 6, item 4; DESIGN.md "Scale-out"): two servers on their own ports share
//! one database, one session secret and one keyring, as N instances behind a load balancer do.
//! Both sit behind one public URL (the whitelisted redirect URI is built on it); the test plays
//! the load balancer by sending each request to the instance it chooses, over real HTTP.
//!
//! A session created on one instance is valid on the other (the same cookie), a flow started on
//! one completes on the other (both ways), and signing out on one revokes the session on both.

use std::net::TcpListener;

use diesel::QueryableByName;
use diesel_async::RunQueryDsl as _;
use finchgate::vault::{Purpose, RowContext};
use secrecy::ExposeSecret as _;
use url::Url;
use uuid::Uuid;

use crate::fixture::{Answer, Deployment, Instance, Tenant, create_tenant};
use crate::helpers::{TestDatabase, approve_in_emulator, csrf_token_in};

/// The session cookie's name over plain http (the tests' loopback URLs).
fn cookie_name() -> &'static str {
    finchgate::startup::session_cookie_name(false)
}

/// A browser whose one cookie is handled by hand, so the test can send it to either instance
/// and keep a copy of it after signing out.
struct Browser {
    http: reqwest::Client,
    cookie: Option<String>,
}

impl Browser {
    fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Answer {
        let request = match &self.cookie {
            Some(cookie) => request.header("cookie", format!("{}={cookie}", cookie_name())),
            None => request,
        };
        let response = request.send().await;
        if let Ok(response) = &response {
            for set in response.headers().get_all("set-cookie") {
                let set = set.to_str().unwrap();
                let Some(rest) = set.strip_prefix(&format!("{}=", cookie_name())) else {
                    continue;
                };
                let value = rest.split(';').next().unwrap();
                self.cookie =
                    (!value.is_empty() && !set.contains("Max-Age=0")).then(|| value.to_owned());
            }
        }
        Answer::read(response).await
    }

    async fn get(&mut self, url: &str) -> Answer {
        let request = self.http.get(url);
        self.send(request).await
    }

    async fn post_form(&mut self, url: &str, form: &[(&str, &str)]) -> Answer {
        let request = self.http.post(url).form(form);
        self.send(request).await
    }
}

async fn sign_in(browser: &mut Browser, address: &str, tenant: &Tenant) {
    let page = browser.get(&format!("{address}/login")).await;
    let csrf = csrf_token_in(&page.body);
    let answer = browser
        .post_form(
            &format!("{address}/login"),
            &[
                ("email", &tenant.email),
                ("password", &tenant.password),
                ("csrf_token", &csrf),
            ],
        )
        .await;
    assert_eq!(answer.status, 303, "signed in on {address}");
}

/// Starts a redirect flow on `start_on`, approves it at the emulator, and sends the browser's
/// callback (the URL Finch redirected to, whose host is the public URL) to `finish_on`.
async fn flow_across(
    browser: &mut Browser,
    tenant: &Tenant,
    start_on: &str,
    finish_on: &str,
    customer: &str,
) -> Answer {
    let form = browser
        .get(&format!("{start_on}/t/{}/connect", tenant.slug))
        .await;
    assert_eq!(form.status, 200);
    let csrf = csrf_token_in(&form.body);
    let redirect_id = tenant.redirect_uri_id.to_string();
    let started = browser
        .post_form(
            &format!("{start_on}/t/{}/connect", tenant.slug),
            &[
                ("csrf_token", csrf.as_str()),
                ("product", "company"),
                ("customer_id", customer),
                ("customer_name", "Twin Customer"),
                ("sandbox", "finch"),
                ("flow", "redirect"),
                ("redirect_uri_id", redirect_id.as_str()),
            ],
        )
        .await;
    assert_eq!(started.status, 303, "the flow starts on {start_on}");
    let redirected_to = approve_in_emulator(started.location.as_deref().unwrap(), None).await;
    let mut at_instance = Url::parse(finish_on).unwrap();
    at_instance.set_path(redirected_to.path());
    at_instance.set_query(redirected_to.query());
    browser.get(at_instance.as_str()).await
}

#[derive(QueryableByName)]
struct Stored {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    tenant_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Bytea)]
    envelope: Vec<u8>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    flow_status: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    attempts: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_sessions_flows_and_logout() {
    let db = TestDatabase::migrated().await;
    let sandbox = finchgate::sandbox::Sandbox::start(finchgate::sandbox::SandboxConfig::new(
        TcpListener::bind("127.0.0.1:0").unwrap(),
        Vec::new(),
    ))
    .await
    .unwrap();
    let first = TcpListener::bind("127.0.0.1:0").unwrap();
    let second = TcpListener::bind("127.0.0.1:0").unwrap();
    // The load balancer's address is the public URL; here it is the first instance's.
    let public = format!("http://127.0.0.1:{}", first.local_addr().unwrap().port());
    let deployment = Deployment::new(
        db.url.clone(),
        Url::parse(&public).unwrap(),
        sandbox.base_url(),
    );
    let one = Instance::start(&deployment, first);
    let two = Instance::start(&deployment, second);
    assert_ne!(one.address, two.address);
    let tenant = create_tenant(&deployment, &one.pool, &sandbox, "twins").await;
    let home = |address: &str| format!("{address}/t/{}/", tenant.slug);

    // A session created on instance 1 is valid on instance 2: the same cookie.
    let mut browser = Browser::new();
    sign_in(&mut browser, &one.address, &tenant).await;
    let cookie = browser.cookie.clone().expect("a session cookie");
    assert_eq!(browser.get(&home(&two.address)).await.status, 200);
    assert_eq!(
        browser.cookie.as_deref(),
        Some(cookie.as_str()),
        "no new session"
    );
    assert_eq!(browser.get(&home(&one.address)).await.status, 200);

    // A flow started on one instance completes on the other, both ways.
    for (start_on, finish_on, customer) in [
        (&one.address, &two.address, "twin-a"),
        (&two.address, &one.address, "twin-b"),
    ] {
        let done = flow_across(&mut browser, &tenant, start_on, finish_on, customer).await;
        assert_eq!(done.status, 303, "{}", done.body);
        let location = done.location.unwrap();
        assert!(location.contains("/connections/"), "connected: {location}");
        assert_eq!(
            browser.get(&format!("{start_on}{location}")).await.status,
            200,
            "the result shows on the instance the flow started on"
        );
        let connection_id = crate::helpers::connection_id_from(&location);
        let mut conn = db.connect().await;
        let stored: Stored = diesel::sql_query(format!(
            "SELECT t.tenant_id, t.envelope, f.status AS flow_status,
                    (SELECT count(*) FROM exchange_attempts a WHERE a.flow_id = f.id
                       AND a.outcome = 'succeeded') AS attempts
               FROM connection_tokens t JOIN connect_flows f ON f.connection_id = t.connection_id
              WHERE t.connection_id = '{connection_id}'"
        ))
        .get_result(&mut conn)
        .await
        .unwrap();
        assert_eq!(stored.flow_status, "completed");
        assert_eq!(stored.attempts, 1);
        let token = deployment
            .vault()
            .open_string(
                &RowContext::new(Purpose::AccessToken, stored.tenant_id, connection_id),
                &stored.envelope,
            )
            .expect("the token opens");
        assert!(
            sandbox
                .issued_tokens()
                .iter()
                .any(|t| t.access_token.expose_secret() == token.expose_secret())
        );
    }
    assert_eq!(
        sandbox.count("POST", "/auth/token"),
        2,
        "one exchange per flow"
    );

    // Signing out on instance 2 revokes the session on both.
    let page = browser.get(&home(&two.address)).await;
    let csrf = csrf_token_in(&page.body);
    let out = browser
        .post_form(&format!("{}/logout", two.address), &[("csrf_token", &csrf)])
        .await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location.as_deref(), Some("/login"));
    for address in [&one.address, &two.address] {
        let mut replay = Browser::new();
        replay.cookie = Some(cookie.clone());
        let answer = replay.get(&home(address)).await;
        assert_eq!(
            (answer.status, answer.location.as_deref()),
            (303, Some("/login")),
            "the old cookie is signed out on {address}"
        );
    }

    one.stop().await;
    two.stop().await;
    sandbox.stop().await;
}
