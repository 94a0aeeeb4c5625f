//! The Finch sandbox emulator over real HTTP: every endpoint, every error case, every fault as a
//! client sees it.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test should fail loudly at the first surprise"
)]

use std::net::TcpListener;
use std::time::{Duration, Instant};

use finchgate::finch::wire::{
    ClientType, ConnectionStatusType, ConnectionType, FINCH_API_VERSION, FinchErrorBody,
    IntrospectResponse, SandboxConnectionResponse, TokenResponse,
};
use finchgate::sandbox::{
    Endpoint, Fault, FaultKind, RecordedRequest, Sandbox, SandboxApp, SandboxConfig,
    ServerErrorStatus,
};
use reqwest::{Method, StatusCode, redirect};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use url::Url;

const CLIENT_ID: &str = "client-a";
const CLIENT_SECRET: &str = "secret-a";
const OTHER_CLIENT_ID: &str = "client-b";
const OTHER_CLIENT_SECRET: &str = "secret-b";
const REDIRECT_URI: &str = "http://127.0.0.1:8080/t/acme/finch/callback?tenant=acme";
const SDK_HOST: &str = "http://localhost:3000";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

struct TestSandbox {
    sandbox: Sandbox,
    http: reqwest::Client,
}

async fn spawn() -> TestSandbox {
    spawn_with(|_| {}).await
}

async fn spawn_with(adjust: impl FnOnce(&mut SandboxConfig)) -> TestSandbox {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let apps = SandboxApp::parse_list(&format!(
        "{CLIENT_ID}:{CLIENT_SECRET},{OTHER_CLIENT_ID}:{OTHER_CLIENT_SECRET}"
    ))
    .unwrap();
    let mut config = SandboxConfig::new(listener, apps);
    adjust(&mut config);
    let sandbox = Sandbox::start(config).await.unwrap();
    let http = reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    TestSandbox { sandbox, http }
}

/// What `POST /connect/sessions` answered.
struct NewSession {
    session_id: String,
    connect_url: Url,
}

/// The approve/deny form of the Connect page, as a browser would submit it.
struct ConnectForm {
    fields: Vec<(String, String)>,
}

impl ConnectForm {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn set(&mut self, name: &str, value: &str) {
        self.fields.retain(|(k, _)| k != name);
        self.fields.push((name.to_owned(), value.to_owned()));
    }
}

/// Embedded-flow parameters as the Connect SDK adds them.
fn embedded_query(state: Option<&str>) -> Vec<(&'static str, String)> {
    let mut q = vec![
        ("app_type", "spa".to_owned()),
        ("sdk_host_url", SDK_HOST.to_owned()),
        ("mode", "employer".to_owned()),
        ("sdk_version", "sandbox-1".to_owned()),
    ];
    if let Some(state) = state {
        q.push(("state", state.to_owned()));
    }
    q
}

/// The hidden inputs of a page (`<input type="hidden" name="…" value="…">`), unescaped.
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    const START: &str = r#"<input type="hidden" name=""#;
    html.split(START)
        .skip(1)
        .map(|rest| {
            let (name, rest) = rest.split_once('"').unwrap();
            let rest = rest.strip_prefix(r#" value=""#).unwrap();
            let (value, _) = rest.split_once('"').unwrap();
            (name.to_owned(), unescape(value))
        })
        .collect()
}

/// The value of `data-<name>="…"` in a page, unescaped.
fn data_attribute(html: &str, name: &str) -> Option<String> {
    let marker = format!(r#"data-{name}=""#);
    let rest = html.split_once(&marker)?.1;
    Some(unescape(rest.split_once('"')?.0))
}

/// Undoes askama's HTML escaping (decimal character references).
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("&#") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after.find(';').unwrap();
        let code: u32 = after[..end].parse().unwrap();
        out.push(char::from_u32(code).unwrap());
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn error_body(resp: reqwest::Response) -> FinchErrorBody {
    resp.json().await.unwrap()
}

impl TestSandbox {
    fn url(&self, path: &str) -> Url {
        self.sandbox
            .base_url()
            .join(path.trim_start_matches('/'))
            .unwrap()
    }

    /// A request to a Finch API endpoint with the version header Finch requires.
    fn api(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .header("Finch-API-Version", FINCH_API_VERSION)
    }

    fn basic(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.api(method, path)
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
    }

    async fn create_session(&self, body: Value) -> reqwest::Response {
        self.basic(Method::POST, "/connect/sessions")
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn new_session(&self, body: Value) -> NewSession {
        created_session(self.create_session(body).await).await
    }

    async fn reauth_session(&self, body: Value) -> NewSession {
        created_session(self.reauthenticate(body).await).await
    }

    async fn redirect_session(&self) -> NewSession {
        self.new_session(session_body(Some(REDIRECT_URI))).await
    }

    /// GETs the Connect page (with extra query parameters) and returns its response.
    async fn open_page(&self, connect_url: &Url, extra: &[(&str, String)]) -> reqwest::Response {
        let mut url = connect_url.clone();
        for (k, v) in extra {
            url.query_pairs_mut().append_pair(k, v);
        }
        self.http.get(url).send().await.unwrap()
    }

    /// Opens the Connect page and reads its form.
    async fn connect_form(&self, connect_url: &Url, extra: &[(&str, String)]) -> ConnectForm {
        let resp = self.open_page(connect_url, extra).await;
        assert_eq!(resp.status(), StatusCode::OK);
        ConnectForm {
            fields: hidden_fields(&resp.text().await.unwrap()),
        }
    }

    /// Submits the form with a decision and provider, as pressing the button would.
    async fn submit(
        &self,
        mut form: ConnectForm,
        decision: &str,
        provider: &str,
    ) -> reqwest::Response {
        form.set("decision", decision);
        form.set("provider", provider);
        self.http
            .post(self.url("/authorize"))
            .form(&form.fields)
            .send()
            .await
            .unwrap()
    }

    /// Completes the redirect flow by plain HTTP and returns where the browser is sent.
    async fn complete_redirect(
        &self,
        session: &NewSession,
        state: Option<&str>,
        decision: &str,
    ) -> Url {
        let extra: Vec<(&str, String)> =
            state.map(|s| ("state", s.to_owned())).into_iter().collect();
        let form = self.connect_form(&session.connect_url, &extra).await;
        let resp = self.submit(form, decision, "gusto").await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        resp.headers()["location"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Completes the redirect flow and returns the code.
    async fn redirect_code(&self, session: &NewSession) -> String {
        let location = self.complete_redirect(session, Some("st"), "approve").await;
        query_param(&location, "code").unwrap()
    }

    /// Completes the embedded flow by plain HTTP and returns the result page's HTML.
    async fn complete_embedded(
        &self,
        session: &NewSession,
        state: Option<&str>,
        decision: &str,
    ) -> String {
        let form = self
            .connect_form(&session.connect_url, &embedded_query(state))
            .await;
        let resp = self.submit(form, decision, "adp_run").await;
        assert_eq!(resp.status(), StatusCode::OK);
        resp.text().await.unwrap()
    }

    async fn exchange(&self, body: Value) -> reqwest::Response {
        self.api(Method::POST, "/auth/token")
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn exchange_code(&self, code: &str, redirect_uri: Option<&str>) -> reqwest::Response {
        self.exchange(token_body(code, redirect_uri)).await
    }

    /// A connection made through the redirect flow.
    async fn connect(&self) -> TokenResponse {
        let session = self.redirect_session().await;
        let code = self.redirect_code(&session).await;
        let resp = self.exchange_code(&code, Some(REDIRECT_URI)).await;
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.unwrap()
    }

    async fn introspect(&self, token: &SecretString) -> reqwest::Response {
        self.api(Method::GET, "/introspect")
            .bearer_auth(token.expose_secret())
            .send()
            .await
            .unwrap()
    }

    async fn disconnect(&self, token: &SecretString) -> reqwest::Response {
        self.api(Method::POST, "/disconnect")
            .bearer_auth(token.expose_secret())
            .send()
            .await
            .unwrap()
    }

    async fn reauthenticate(&self, body: Value) -> reqwest::Response {
        self.basic(Method::POST, "/connect/sessions/reauthenticate")
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn inject(&self, fault: Value) -> reqwest::Response {
        self.http
            .post(self.url("/_sandbox/faults"))
            .json(&fault)
            .send()
            .await
            .unwrap()
    }
}

/// Reads a 201 answer of either session endpoint.
async fn created_session(resp: reqwest::Response) -> NewSession {
    assert_eq!(resp.status(), StatusCode::CREATED);
    let json: Value = resp.json().await.unwrap();
    NewSession {
        session_id: json["session_id"].as_str().unwrap().to_owned(),
        connect_url: json["connect_url"].as_str().unwrap().parse().unwrap(),
    }
}

fn session_body(redirect_uri: Option<&str>) -> Value {
    let mut body = json!({
        "customer_id": "tenant-acme",
        "customer_name": "Acme Corp",
        "products": ["company", "directory", "individual"],
        "minutes_to_expire": 30,
    });
    if let Some(uri) = redirect_uri {
        body["redirect_uri"] = json!(uri);
    }
    body
}

fn token_body(code: &str, redirect_uri: Option<&str>) -> Value {
    let mut body = json!({
        "code": code,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    });
    if let Some(uri) = redirect_uri {
        body["redirect_uri"] = json!(uri);
    }
    body
}

fn request_id(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("finch-request-id")
        .expect("Finch-Request-Id header")
        .to_str()
        .unwrap()
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// Headers, routing, API version
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_response_carries_a_fresh_finch_request_id() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let responses = [
        app.http.get(app.url("/no/such/path")).send().await.unwrap(),
        app.http.get(app.url("/auth/token")).send().await.unwrap(),
        app.http.post(app.url("/auth/token")).send().await.unwrap(),
        app.basic(Method::POST, "/connect/sessions")
            .json(&session_body(None))
            .send()
            .await
            .unwrap(),
        app.open_page(&session.connect_url, &[]).await,
        app.http
            .get(app.url("/authorize?session=nope"))
            .send()
            .await
            .unwrap(),
        app.http.get(app.url("/connect.js")).send().await.unwrap(),
        app.http
            .get(app.url("/_sandbox/requests"))
            .send()
            .await
            .unwrap(),
    ];
    let mut ids: Vec<String> = responses.iter().map(request_id).collect();
    assert!(ids.iter().all(|id| !id.is_empty()));
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), responses.len(), "request ids must be unique");
}

#[tokio::test]
async fn an_unknown_path_or_method_is_a_finch_404() {
    let app = spawn().await;
    for (method, path) in [
        (Method::GET, "/employer/directory"),
        (Method::GET, "/auth/token"),
        (Method::DELETE, "/connect/sessions"),
        (Method::PUT, "/authorize"),
    ] {
        let resp = app.api(method.clone(), path).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{method} {path}");
        let body = error_body(resp).await;
        assert_eq!(body.code, 404);
        assert_eq!(body.name, "not_found_error");
        assert!(body.message.contains(path), "{}", body.message);
    }
}

#[tokio::test]
async fn the_error_body_has_exactly_finchs_fields() {
    let app = spawn().await;
    let resp = app.exchange_code("nope", None).await;
    let json: Value = resp.json().await.unwrap();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["code", "finch_code", "message", "name"]);
    assert_eq!(json["finch_code"], Value::Null);
}

#[tokio::test]
async fn api_calls_without_finch_api_version_are_rejected() {
    let app = spawn().await;
    let resp = app
        .http
        .post(app.url("/connect/sessions"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .json(&session_body(None))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    request_id(&resp);
    let body = error_body(resp).await;
    assert_eq!(body.name, "bad_request");
    assert_eq!(body.finch_code.as_deref(), Some("invalid_request"));
    assert!(
        body.message.contains("Finch-API-Version"),
        "{}",
        body.message
    );

    for (method, path) in [
        (Method::POST, "/auth/token"),
        (Method::GET, "/introspect"),
        (Method::POST, "/disconnect"),
        (Method::POST, "/sandbox/connections"),
        (Method::POST, "/connect/sessions/reauthenticate"),
    ] {
        let resp = app
            .http
            .request(method, app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{path}");
    }

    let resp = app
        .http
        .get(app.url("/introspect"))
        .header("Finch-API-Version", "2099-01-01")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(error_body(resp).await.message.contains("2020-09-17"));
}

#[tokio::test]
async fn connect_pages_and_the_sdk_need_no_api_version() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    assert_eq!(
        app.open_page(&session.connect_url, &[]).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.http
            .get(app.url("/connect.js"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

// ---------------------------------------------------------------------------------------------
// Connect sessions
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn creating_a_session_returns_201_with_a_connect_url() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    assert_eq!(session.connect_url.path(), "/authorize");
    assert_eq!(
        query_param(&session.connect_url, "session").as_deref(),
        Some(session.session_id.as_str())
    );
    assert!(
        session
            .connect_url
            .as_str()
            .starts_with(app.sandbox.base_url().as_str())
    );
    assert!(uuid::Uuid::parse_str(&session.session_id).is_ok());
}

#[tokio::test]
async fn the_connect_url_uses_the_public_url() {
    let public: Url = "https://sandbox.finch.test/emulator".parse().unwrap();
    let app = spawn_with(|c| c.public_url = Some(public)).await;
    assert_eq!(
        app.sandbox.base_url().as_str(),
        "https://sandbox.finch.test/emulator/"
    );
    let resp = app
        .http
        .post(format!(
            "http://127.0.0.1:{}/connect/sessions",
            app.sandbox.port()
        ))
        .header("Finch-API-Version", FINCH_API_VERSION)
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .json(&session_body(None))
        .send()
        .await
        .unwrap();
    let json: Value = resp.json().await.unwrap();
    let connect_url = json["connect_url"].as_str().unwrap();
    assert!(
        connect_url.starts_with("https://sandbox.finch.test/emulator/authorize?session="),
        "{connect_url}"
    );
}

#[tokio::test]
async fn session_endpoints_require_valid_basic_credentials() {
    let app = spawn().await;
    for path in [
        "/connect/sessions",
        "/connect/sessions/reauthenticate",
        "/sandbox/connections",
    ] {
        let cases = [
            app.api(Method::POST, path),
            app.api(Method::POST, path)
                .basic_auth(CLIENT_ID, Some("wrong")),
            app.api(Method::POST, path)
                .basic_auth("unknown", Some(CLIENT_SECRET)),
            app.api(Method::POST, path)
                .basic_auth(CLIENT_ID, Some(OTHER_CLIENT_SECRET)),
            app.api(Method::POST, path)
                .header("Authorization", "Basic !!!not-base64"),
            app.api(Method::POST, path).bearer_auth("some-token"),
        ];
        for case in cases {
            let resp = case.json(&session_body(None)).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path}");
            let body = error_body(resp).await;
            assert_eq!(body.name, "invalid_client_error");
            assert_eq!(body.code, 401);
        }
    }
}

#[tokio::test]
async fn session_validation_names_the_offending_field() {
    let app = spawn().await;
    let valid = || json!({"customer_id": "a", "customer_name": "A", "products": ["company"]});
    let with = |field: &str, value: Value| {
        let mut body = valid();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = valid();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let cases = [
        (without("customer_id"), "customer_id is required"),
        (
            with("customer_id", json!("")),
            "customer_id must be 1 to 255",
        ),
        (
            with("customer_id", json!(7)),
            "customer_id must be a string",
        ),
        (
            with("customer_name", json!("x".repeat(256))),
            "customer_name must be 1 to 255",
        ),
        (without("products"), "products is required"),
        (
            with("products", json!([])),
            "products must name at least one",
        ),
        (with("products", json!(["payroll"])), "products[0]"),
        (
            with("products", json!("company")),
            "products must be an array",
        ),
        (with("minutes_to_expire", json!(0)), "minutes_to_expire"),
        (
            with("minutes_to_expire", json!(129_601)),
            "minutes_to_expire",
        ),
        (with("minutes_to_expire", json!(1.5)), "minutes_to_expire"),
        (with("sandbox", json!("yes")), "sandbox"),
        (
            with("integration", json!({"provider": "nope"})),
            "integration.provider",
        ),
        (
            with("integration", json!({})),
            "integration.provider is required",
        ),
        (
            with(
                "integration",
                json!({"provider": "gusto", "auth_method": "magic"}),
            ),
            "integration.auth_method",
        ),
        (
            with("redirect_uri", json!("http://example.com/cb")),
            "redirect_uri",
        ),
        (with("redirect_uri", json!("/relative")), "redirect_uri"),
        (
            with("redirect_uri", json!("https://x.test/cb#frag")),
            "redirect_uri",
        ),
        (with("customer_email", json!("nope")), "customer_email"),
        (with("manual", json!("yes")), "manual"),
        (
            with("recordkeeping", json!({"recordkeeper": "voya"})),
            "recordkeeping can only be given",
        ),
        (
            json!({"customer_id": "a", "customer_name": "A", "products": ["recordkeeping"],
                   "recordkeeping": {}}),
            "recordkeeping.recordkeeper is required",
        ),
        (json!(["not", "an", "object"]), "JSON object"),
    ];
    for (body, expected) in cases {
        let resp = app.create_session(body.clone()).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
        let err = error_body(resp).await;
        assert_eq!(err.name, "bad_request");
        assert_eq!(err.finch_code.as_deref(), Some("invalid_request"));
        assert!(err.message.contains(expected), "{body} → {}", err.message);
    }

    let resp = app
        .basic(Method::POST, "/connect/sessions")
        .header("Content-Type", "text/plain")
        .body(session_body(None).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(error_body(resp).await.message.contains("application/json"));
}

#[tokio::test]
async fn a_session_accepts_every_documented_optional_field() {
    let app = spawn().await;
    let resp = app
        .create_session(json!({
            "customer_id": "c".repeat(255),
            "customer_name": "Acme",
            "customer_email": "hr@acme.test",
            "products": ["company", "directory", "individual", "employment", "payment",
                         "pay_statement", "benefits", "documents", "ssn", "recordkeeping"],
            "redirect_uri": "https://app.acme.test/callback",
            "minutes_to_expire": 129_600,
            "sandbox": "provider",
            "manual": false,
            "integration": {"provider": "rippling", "auth_method": "oauth"},
            "recordkeeping": {"recordkeeper": "fidelity", "plan_id": "p-1"},
            "an_unknown_field": true,
        }))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = app
        .create_session(
            json!({"customer_id": "a", "customer_name": "A", "products": ["company"],
                               "sandbox": null, "redirect_uri": null, "integration": null}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_new_session_lasts_90_days_by_default() {
    let app = spawn().await;
    let mut body = session_body(Some(REDIRECT_URI));
    body.as_object_mut().unwrap().remove("minutes_to_expire");
    let session = app.new_session(body).await;
    app.sandbox
        .set_clock_offset(chrono::Duration::minutes(129_600 - 1));
    assert_eq!(
        app.open_page(&session.connect_url, &[]).await.status(),
        StatusCode::OK
    );
    app.sandbox
        .set_clock_offset(chrono::Duration::minutes(129_600));
    assert_eq!(
        app.open_page(&session.connect_url, &[]).await.status(),
        StatusCode::BAD_REQUEST
    );
}

// ---------------------------------------------------------------------------------------------
// The Connect page
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_connect_page_lists_providers_and_carries_the_session_and_state() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let resp = app
        .open_page(&session.connect_url, &[("state", "a&b\"<c>".to_owned())])
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["referrer-policy"], "no-referrer");
    let html = resp.text().await.unwrap();
    for id in [
        "gusto",
        "adp_run",
        "paychex_flex",
        "bamboo_hr",
        "justworks",
        "rippling",
    ] {
        assert!(html.contains(&format!(r#"<option value="{id}""#)), "{id}");
    }
    assert!(html.contains(r#"id="provider""#));
    assert!(html.contains(r#"id="approve""#) && html.contains(r#"id="deny""#));
    assert!(html.contains("Acme Corp"));
    assert!(!html.contains("a&b\"<c>"), "the state must be escaped");
    let form = ConnectForm {
        fields: hidden_fields(&html),
    };
    assert_eq!(form.get("session"), Some(session.session_id.as_str()));
    assert_eq!(form.get("state"), Some("a&b\"<c>"));
    assert!(form.get("form_token").is_some());
}

#[tokio::test]
async fn the_connect_page_preselects_the_integration_provider() {
    let app = spawn().await;
    let mut body = session_body(Some(REDIRECT_URI));
    body["integration"] = json!({"provider": "justworks"});
    let session = app.new_session(body).await;
    let html = app
        .open_page(&session.connect_url, &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(r#"<option value="justworks" selected>"#),
        "{html}"
    );
    assert_eq!(html.matches(" selected>").count(), 1);
}

#[tokio::test]
async fn an_unknown_or_missing_session_shows_an_error_page() {
    let app = spawn().await;
    let resp = app
        .http
        .get(app.url("/authorize?session=no-such-session"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    request_id(&resp);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(resp.text().await.unwrap().contains("does not exist"));

    let resp = app.http.get(app.url("/authorize")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_expired_session_shows_an_error_page() {
    let app = spawn().await;
    let session = app.redirect_session().await; // 30 minutes
    app.sandbox.set_clock_offset(chrono::Duration::minutes(31));
    let resp = app.open_page(&session.connect_url, &[]).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap().contains("expired"));
}

#[tokio::test]
async fn a_session_can_be_approved_only_once() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let form = app.connect_form(&session.connect_url, &[]).await;
    let again = ConnectForm {
        fields: form.fields.clone(),
    };
    assert_eq!(
        app.submit(form, "approve", "gusto").await.status(),
        StatusCode::SEE_OTHER
    );
    let resp = app.submit(again, "approve", "gusto").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("already been completed")
    );
    assert_eq!(
        app.open_page(&session.connect_url, &[]).await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn the_redirect_flow_needs_a_session_with_a_redirect_uri() {
    let app = spawn().await;
    let session = app.new_session(session_body(None)).await;
    let resp = app.open_page(&session.connect_url, &[]).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap().contains("redirect_uri"));
    // The same session works embedded.
    let form = app
        .connect_form(&session.connect_url, &embedded_query(None))
        .await;
    assert_eq!(form.get("app_type"), Some("spa"));
}

#[tokio::test]
async fn approving_redirects_with_the_code_and_state_keeping_the_uris_query() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let location = app
        .complete_redirect(&session, Some("opaque state/+="), "approve")
        .await;
    assert_eq!(location.host_str(), Some("127.0.0.1"));
    assert_eq!(location.path(), "/t/acme/finch/callback");
    assert_eq!(query_param(&location, "tenant").as_deref(), Some("acme"));
    assert_eq!(
        query_param(&location, "state").as_deref(),
        Some("opaque state/+=")
    );
    let code = query_param(&location, "code").unwrap();
    assert!(uuid::Uuid::parse_str(&code).is_ok());
}

#[tokio::test]
async fn approving_without_a_state_sends_none_back() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let location = app.complete_redirect(&session, None, "approve").await;
    assert!(query_param(&location, "code").is_some());
    assert!(query_param(&location, "state").is_none());
}

#[tokio::test]
async fn denying_redirects_with_access_denied_and_the_state() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let location = app.complete_redirect(&session, Some("s-1"), "deny").await;
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied")
    );
    assert!(query_param(&location, "error_description").is_some());
    assert_eq!(query_param(&location, "state").as_deref(), Some("s-1"));
    assert_eq!(query_param(&location, "tenant").as_deref(), Some("acme"));
    assert!(query_param(&location, "code").is_none());
    // A denial does not use the session up: the employer may still approve.
    let location = app
        .complete_redirect(&session, Some("s-1"), "approve")
        .await;
    assert!(query_param(&location, "code").is_some());
}

#[tokio::test]
async fn a_forged_or_incomplete_form_is_refused() {
    let app = spawn().await;
    let session = app.redirect_session().await;

    let mut form = app.connect_form(&session.connect_url, &[]).await;
    form.set("form_token", "forged");
    assert_eq!(
        app.submit(form, "approve", "gusto").await.status(),
        StatusCode::FORBIDDEN
    );

    let form = app.connect_form(&session.connect_url, &[]).await;
    assert_eq!(
        app.submit(form, "approve", "not_a_provider").await.status(),
        StatusCode::BAD_REQUEST
    );

    let form = app.connect_form(&session.connect_url, &[]).await;
    assert_eq!(
        app.submit(form, "maybe", "gusto").await.status(),
        StatusCode::BAD_REQUEST
    );

    // Nothing was approved along the way.
    let form = app.connect_form(&session.connect_url, &[]).await;
    assert_eq!(
        app.submit(form, "approve", "gusto").await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn embedded_approval_posts_a_success_message_to_the_sdk_host() {
    let app = spawn().await;
    let session = app.new_session(session_body(None)).await;
    let resp = app
        .open_page(&session.connect_url, &embedded_query(Some("st-9")))
        .await;
    assert_eq!(
        resp.headers()["content-security-policy"],
        format!("frame-ancestors {SDK_HOST}").as_str()
    );
    let html = resp.text().await.unwrap();
    assert!(html.contains(r#"id="close""#), "embedded pages offer Close");

    let html = app
        .complete_embedded(&session, Some("st-9"), "approve")
        .await;
    assert_eq!(data_attribute(&html, "kind").as_deref(), Some("success"));
    assert_eq!(data_attribute(&html, "state").as_deref(), Some("st-9"));
    assert_eq!(
        data_attribute(&html, "target-origin").as_deref(),
        Some(SDK_HOST)
    );
    assert!(html.contains("finch-auth-message-v2"));
    assert!(html.contains("postMessage"));
    let code = data_attribute(&html, "code").unwrap();
    assert!(uuid::Uuid::parse_str(&code).is_ok());
}

#[tokio::test]
async fn embedded_denial_posts_an_employer_connection_error() {
    let app = spawn().await;
    let session = app.new_session(session_body(None)).await;
    let html = app.complete_embedded(&session, None, "deny").await;
    assert_eq!(data_attribute(&html, "kind").as_deref(), Some("error"));
    assert_eq!(
        data_attribute(&html, "error-type").as_deref(),
        Some("employer_connection_error")
    );
    assert_eq!(
        data_attribute(&html, "should-close").as_deref(),
        Some("true")
    );
    assert!(data_attribute(&html, "error-message").is_some());
    assert!(data_attribute(&html, "code").is_none());
}

#[tokio::test]
async fn embedded_mode_needs_an_http_sdk_host_url() {
    let app = spawn().await;
    let session = app.new_session(session_body(None)).await;
    for bad in [None, Some("javascript:alert(1)"), Some("not a url")] {
        let mut q = vec![("app_type", "spa".to_owned())];
        if let Some(v) = bad {
            q.push(("sdk_host_url", v.to_owned()));
        }
        let resp = app.open_page(&session.connect_url, &q).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad:?}");
    }
}

#[tokio::test]
async fn an_embedded_error_page_tells_the_sdk() {
    let app = spawn().await;
    let url = app.url("/authorize?session=missing");
    let resp = app.open_page(&url, &embedded_query(None)).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let html = resp.text().await.unwrap();
    assert_eq!(data_attribute(&html, "kind").as_deref(), Some("error"));
    assert_eq!(
        data_attribute(&html, "error-type").as_deref(),
        Some("validation_error")
    );
}

#[tokio::test]
async fn the_connect_sdk_stand_in_is_served_as_javascript() {
    let app = spawn().await;
    let resp = app.http.get(app.url("/connect.js")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/javascript")
    );
    let js = resp.text().await.unwrap();
    for needle in [
        "window.FinchConnect",
        "initialize",
        "finch-auth-message-v2",
        "event.origin !== connectOrigin",
        "app_type",
        "sdk_host_url",
        "sandbox-1",
    ] {
        assert!(js.contains(needle), "{needle}");
    }
}

// ---------------------------------------------------------------------------------------------
// POST /auth/token
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_redirect_code_exchanges_for_a_token_echoing_the_customer() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    let resp = app.exchange_code(&code, Some(REDIRECT_URI)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let json: Value = resp.json().await.unwrap();
    assert_eq!(json["token_type"], "bearer");
    assert_eq!(json["customer_id"], "tenant-acme");
    assert_eq!(json["customer_name"], "Acme Corp");
    assert_eq!(json["client_type"], "sandbox");
    assert_eq!(json["connection_type"], "provider");
    assert_eq!(json["provider_id"], "gusto");
    assert_eq!(
        json["products"],
        json!(["company", "directory", "individual"])
    );
    assert_eq!(json["entity_ids"].as_array().unwrap().len(), 1);
    for field in ["access_token", "connection_id", "account_id", "company_id"] {
        assert!(
            json[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field}"
        );
    }
    let token: TokenResponse = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(token.client_type, ClientType::Sandbox);
    let issued = app.sandbox.issued_tokens();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].connection_id, token.connection_id);
    assert_eq!(
        issued[0].access_token.expose_secret(),
        json["access_token"].as_str().unwrap()
    );
}

#[tokio::test]
async fn a_finch_sandbox_session_yields_a_finch_connection() {
    let app = spawn().await;
    let mut body = session_body(Some(REDIRECT_URI));
    body["sandbox"] = json!("finch");
    let session = app.new_session(body).await;
    let code = app.redirect_code(&session).await;
    let token: TokenResponse = app
        .exchange_code(&code, Some(REDIRECT_URI))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(token.connection_type, ConnectionType::Finch);
}

#[tokio::test]
async fn a_code_is_single_use() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    assert_eq!(
        app.exchange_code(&code, Some(REDIRECT_URI)).await.status(),
        StatusCode::OK
    );
    let resp = app.exchange_code(&code, Some(REDIRECT_URI)).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body = error_body(resp).await;
    assert_eq!(body.name, "invalid_grant_error");
    assert_eq!(body.finch_code, None);
    assert!(
        body.message.contains("already been used"),
        "{}",
        body.message
    );
    assert_eq!(app.sandbox.issued_tokens().len(), 1);
}

#[tokio::test]
async fn concurrent_exchanges_of_one_code_issue_exactly_one_token() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    let attempts = (0..8).map(|_| app.exchange_code(&code, Some(REDIRECT_URI)));
    let statuses: Vec<StatusCode> = futures_util::future::join_all(attempts)
        .await
        .iter()
        .map(reqwest::Response::status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(app.sandbox.issued_tokens().len(), 1);
}

#[tokio::test]
async fn a_code_expires_after_ten_minutes() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let fresh = app.redirect_code(&session).await;
    let session = app.redirect_session().await;
    let stale = app.redirect_code(&session).await;

    app.sandbox
        .set_clock_offset(chrono::Duration::minutes(9) + chrono::Duration::seconds(59));
    assert_eq!(
        app.exchange_code(&fresh, Some(REDIRECT_URI)).await.status(),
        StatusCode::OK
    );

    app.sandbox
        .set_clock_offset(chrono::Duration::minutes(10) + chrono::Duration::seconds(1));
    let resp = app.exchange_code(&stale, Some(REDIRECT_URI)).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body = error_body(resp).await;
    assert_eq!(body.name, "invalid_grant_error");
    assert!(
        body.message.contains("expired") && body.message.contains("10 minutes"),
        "{}",
        body.message
    );
}

#[tokio::test]
async fn the_code_lifetime_is_configurable() {
    let app = spawn_with(|c| c.code_ttl = Duration::from_secs(90)).await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    app.sandbox.set_clock_offset(chrono::Duration::seconds(91));
    let body = error_body(app.exchange_code(&code, Some(REDIRECT_URI)).await).await;
    assert!(body.message.contains("90 seconds"), "{}", body.message);
}

#[tokio::test]
async fn a_redirect_code_needs_the_identical_redirect_uri() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    let cases = [
        (None, "redirect_uri is required"),
        (
            Some("http://127.0.0.1:8080/t/acme/finch/callback"),
            "does not match",
        ),
        (
            Some("http://127.0.0.1:8080/t/acme/finch/callback/?tenant=acme"),
            "does not match",
        ),
        (
            Some("HTTP://127.0.0.1:8080/t/acme/finch/callback?tenant=acme"),
            "does not match",
        ),
    ];
    for (uri, expected) in cases {
        let resp = app.exchange_code(&code, uri).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{uri:?}");
        let body = error_body(resp).await;
        assert_eq!(body.name, "invalid_grant_error");
        assert!(body.message.contains(expected), "{uri:?}: {}", body.message);
    }
    // The rejected attempts did not burn the code.
    assert_eq!(
        app.exchange_code(&code, Some(REDIRECT_URI)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_embedded_code_must_be_exchanged_without_redirect_uri() {
    let app = spawn().await;
    // Even a session that has a redirect_uri, completed in the embedded flow.
    let session = app.redirect_session().await;
    let html = app.complete_embedded(&session, None, "approve").await;
    let code = data_attribute(&html, "code").unwrap();
    let resp = app.exchange_code(&code, Some(REDIRECT_URI)).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body = error_body(resp).await;
    assert_eq!(body.name, "invalid_grant_error");
    assert!(body.message.contains("embedded"), "{}", body.message);
    let resp = app.exchange_code(&code, None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let token: TokenResponse = resp.json().await.unwrap();
    assert_eq!(token.provider_id, "adp_run");
}

#[tokio::test]
async fn a_code_only_works_for_the_client_it_was_issued_to() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    let resp = app
        .exchange(json!({"code": code, "client_id": OTHER_CLIENT_ID,
                         "client_secret": OTHER_CLIENT_SECRET, "redirect_uri": REDIRECT_URI}))
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body = error_body(resp).await;
    assert_eq!(body.name, "invalid_grant_error");
    assert!(
        body.message.contains("different client"),
        "{}",
        body.message
    );
}

#[tokio::test]
async fn an_unknown_or_missing_code_is_rejected() {
    let app = spawn().await;
    let resp = app.exchange_code("no-such-code", None).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body = error_body(resp).await;
    assert_eq!(body.name, "invalid_grant_error");
    assert!(body.message.contains("invalid"));

    let resp = app
        .exchange(json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}))
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body = error_body(resp).await;
    assert_eq!(body.name, "bad_request");
    assert!(body.message.contains("code is required"));
}

#[tokio::test]
async fn the_token_endpoint_rejects_bad_client_credentials() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    let cases = [
        json!({"code": code, "client_id": CLIENT_ID, "client_secret": "wrong"}),
        json!({"code": code, "client_id": "unknown", "client_secret": CLIENT_SECRET}),
        json!({"code": code, "client_id": CLIENT_ID}),
        json!({"code": code, "client_secret": CLIENT_SECRET}),
        json!({"code": code}),
    ];
    for body in cases {
        let resp = app.exchange(body.clone()).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(error_body(resp).await.name, "invalid_client_error");
    }
    // Wrong credentials never burn the code.
    assert_eq!(
        app.exchange_code(&code, Some(REDIRECT_URI)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_token_endpoint_accepts_basic_auth_when_the_body_has_no_credentials() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    let resp = app
        .api(Method::POST, "/auth/token")
        .basic_auth(CLIENT_ID, Some("wrong"))
        .json(&json!({"code": code, "redirect_uri": REDIRECT_URI}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = app
        .api(Method::POST, "/auth/token")
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .json(&json!({"code": code, "redirect_uri": REDIRECT_URI}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn body_credentials_win_over_basic_auth() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    let resp = app
        .api(Method::POST, "/auth/token")
        .basic_auth(OTHER_CLIENT_ID, Some(OTHER_CLIENT_SECRET))
        .json(&token_body(&code, Some(REDIRECT_URI)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_token_endpoint_requires_json() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    let resp = app
        .api(Method::POST, "/auth/token")
        .form(&[
            ("code", code.as_str()),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("redirect_uri", REDIRECT_URI),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body = error_body(resp).await;
    assert_eq!(body.name, "bad_request");
    assert!(body.message.contains("application/json"));

    let resp = app
        .api(Method::POST, "/auth/token")
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(error_body(resp).await.message.contains("not valid JSON"));
}

// ---------------------------------------------------------------------------------------------
// Introspect, disconnect, reauthenticate
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn introspect_describes_the_connection() {
    let app = spawn().await;
    let token = app.connect().await;
    let resp = app.introspect(&token.access_token).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let json: Value = resp.json().await.unwrap();
    assert_eq!(json["connection_status"]["status"], "connected");
    assert_eq!(json["authentication_methods"][0]["type"], "oauth");
    let body: IntrospectResponse = serde_json::from_value(json).unwrap();
    assert_eq!(body.connection_id, token.connection_id);
    assert_eq!(body.client_id, CLIENT_ID);
    assert_eq!(body.client_type, ClientType::Sandbox);
    assert_eq!(
        body.connection_status.status,
        ConnectionStatusType::Connected
    );
    assert_eq!(body.customer_id.as_deref(), Some("tenant-acme"));
    assert_eq!(body.customer_name.as_deref(), Some("Acme Corp"));
    assert_eq!(body.provider_id, "gusto");
    assert_eq!(body.products, ["company", "directory", "individual"]);
    assert_eq!(body.company_id, token.company_id);
    let entities = body.entities.unwrap();
    assert_eq!(entities.len(), 1);
    assert_eq!(entities[0].id, token.entity_ids[0]);
    assert!(body.authentication_methods.is_some());
    assert_ne!(
        body.id,
        token.access_token.expose_secret(),
        "the id is not the token"
    );
}

#[tokio::test]
async fn introspect_rejects_unknown_and_missing_tokens() {
    let app = spawn().await;
    let resp = app.introspect(&SecretString::from("not-a-token")).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body = error_body(resp).await;
    assert_eq!(body.name, "invalid_token_error");

    let resp = app.api(Method::GET, "/introspect").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_body(resp).await.name, "unauthorized_request_error");
}

#[tokio::test]
async fn disconnect_revokes_every_token_of_the_connection() {
    let app = spawn().await;
    let token = app.connect().await;
    let resp = app.disconnect(&token.access_token).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"status": "success"})
    );

    let resp = app.introspect(&token.access_token).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_body(resp).await.name, "invalid_token_error");
    let resp = app.disconnect(&token.access_token).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(app.sandbox.issued_tokens().iter().all(|t| t.revoked));

    let resp = app.api(Method::POST, "/disconnect").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn disconnecting_one_connection_leaves_others_alone() {
    let app = spawn().await;
    let first = app.connect().await;
    let second = app.connect().await;
    assert_ne!(first.connection_id, second.connection_id);
    assert_eq!(
        app.disconnect(&first.access_token).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.introspect(&second.access_token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn reauthentication_keeps_the_connection_id_and_replaces_the_token() {
    let app = spawn().await;
    let original = app.connect().await;
    let session = app
        .reauth_session(
            json!({"connection_id": original.connection_id, "redirect_uri": REDIRECT_URI}),
        )
        .await;
    let html = app
        .open_page(&session.connect_url, &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("Reconnect"));
    assert_eq!(
        html.matches("<option ").count(),
        1,
        "only the connection's provider"
    );

    let code = app.redirect_code(&session).await;
    let resp = app.exchange_code(&code, Some(REDIRECT_URI)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let renewed: TokenResponse = resp.json().await.unwrap();
    assert_eq!(renewed.connection_id, original.connection_id);
    assert_eq!(renewed.customer_id.as_deref(), Some("tenant-acme"));
    assert_ne!(
        renewed.access_token.expose_secret(),
        original.access_token.expose_secret()
    );

    assert_eq!(
        app.introspect(&original.access_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.introspect(&renewed.access_token).await.status(),
        StatusCode::OK
    );
    let issued = app.sandbox.issued_tokens();
    assert_eq!(issued.len(), 2);
    assert!(issued[0].revoked && !issued[1].revoked);
}

#[tokio::test]
async fn reauthentication_works_in_the_embedded_flow_and_can_change_products() {
    let app = spawn().await;
    let original = app.connect().await;
    let session = app
        .reauth_session(
            json!({"connection_id": original.connection_id, "products": ["company", "payment"]}),
        )
        .await;
    let form = app
        .connect_form(&session.connect_url, &embedded_query(None))
        .await;
    let resp = app.submit(form, "approve", "gusto").await;
    let code = data_attribute(&resp.text().await.unwrap(), "code").unwrap();
    let renewed: TokenResponse = app.exchange_code(&code, None).await.json().await.unwrap();
    assert_eq!(renewed.connection_id, original.connection_id);
    assert_eq!(renewed.products, ["company", "payment"]);
}

#[tokio::test]
async fn reauthentication_needs_a_live_connection_of_the_same_app() {
    let app = spawn().await;
    let token = app.connect().await;

    let resp = app.reauthenticate(json!({})).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(
        error_body(resp)
            .await
            .message
            .contains("connection_id is required")
    );

    let resp = app
        .reauthenticate(json!({"connection_id": "no-such-connection"}))
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body = error_body(resp).await;
    assert_eq!(body.name, "not_found_error");
    assert_eq!(body.finch_code.as_deref(), Some("item_not_found"));

    let resp = app
        .api(Method::POST, "/connect/sessions/reauthenticate")
        .basic_auth(OTHER_CLIENT_ID, Some(OTHER_CLIENT_SECRET))
        .json(&json!({"connection_id": token.connection_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::NOT_FOUND,
        "another app's connection does not exist"
    );

    let resp = app
        .reauthenticate(json!({"connection_id": token.connection_id, "minutes_to_expire": 0}))
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    app.disconnect(&token.access_token).await;
    let resp = app
        .reauthenticate(json!({"connection_id": token.connection_id}))
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(error_body(resp).await.message.contains("disconnected"));
}

#[tokio::test]
async fn a_reauthentication_session_lasts_30_days_by_default() {
    let app = spawn().await;
    let token = app.connect().await;
    let url = app
        .reauth_session(json!({"connection_id": token.connection_id, "redirect_uri": REDIRECT_URI}))
        .await
        .connect_url;
    app.sandbox
        .set_clock_offset(chrono::Duration::minutes(43_200 - 1));
    assert_eq!(app.open_page(&url, &[]).await.status(), StatusCode::OK);
    app.sandbox
        .set_clock_offset(chrono::Duration::minutes(43_200));
    assert_eq!(
        app.open_page(&url, &[]).await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn a_reauthentication_code_for_a_since_disconnected_connection_is_rejected() {
    let app = spawn().await;
    let token = app.connect().await;
    let session = app
        .reauth_session(json!({"connection_id": token.connection_id, "redirect_uri": REDIRECT_URI}))
        .await;
    let code = app.redirect_code(&session).await;
    app.disconnect(&token.access_token).await;
    let resp = app.exchange_code(&code, Some(REDIRECT_URI)).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_body(resp).await.name, "invalid_grant_error");
}

// ---------------------------------------------------------------------------------------------
// POST /sandbox/connections
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn sandbox_connections_issue_a_token_without_connect() {
    let app = spawn().await;
    let resp = app
        .basic(Method::POST, "/sandbox/connections")
        .json(&json!({"provider_id": "bamboo_hr", "employee_size": 40}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let json: Value = resp.json().await.unwrap();
    assert_eq!(json["token_type"], "bearer");
    assert_eq!(json["authentication_type"], "api_token");
    assert_eq!(
        json["products"],
        json!(["company", "directory", "individual", "employment"])
    );
    let conn: SandboxConnectionResponse = serde_json::from_value(json).unwrap();
    assert_eq!(conn.provider_id, "bamboo_hr");
    let resp = app.introspect(&conn.access_token).await;
    let body: IntrospectResponse = resp.json().await.unwrap();
    assert_eq!(body.connection_id, conn.connection_id);
    assert_eq!(body.connection_type, ConnectionType::Finch);

    let resp = app
        .basic(Method::POST, "/sandbox/connections")
        .json(&json!({
            "provider_id": "gusto",
            "authentication_type": "assisted",
            "products": ["payment"],
        }))
        .send()
        .await
        .unwrap();
    let json: Value = resp.json().await.unwrap();
    assert_eq!(json["authentication_type"], "assisted");
    assert_eq!(json["products"], json!(["payment"]));
}

#[tokio::test]
async fn sandbox_connection_validation_names_the_field() {
    let app = spawn().await;
    for (body, expected) in [
        (json!({}), "provider_id is required"),
        (json!({"provider_id": "nope"}), "provider_id `nope`"),
        (
            json!({"provider_id": "gusto", "authentication_type": "magic"}),
            "authentication_type",
        ),
        (
            json!({"provider_id": "gusto", "employee_size": 0}),
            "employee_size",
        ),
        (
            json!({"provider_id": "gusto", "products": ["x"]}),
            "products[0]",
        ),
    ] {
        let resp = app
            .basic(Method::POST, "/sandbox/connections")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
        let err = error_body(resp).await;
        assert!(err.message.contains(expected), "{body}: {}", err.message);
    }
}

// ---------------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_latency_fault_delays_a_normal_response() {
    let app = spawn().await;
    app.sandbox
        .inject(Fault::new(FaultKind::Latency { ms: 400 }).on(Endpoint::ConnectSessions));
    let started = Instant::now();
    let resp = app.create_session(session_body(None)).await;
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(resp.status(), StatusCode::CREATED);
    let started = Instant::now();
    app.create_session(session_body(None)).await;
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "the fault was used up"
    );
}

#[tokio::test]
async fn a_server_error_fault_answers_5xx_after_consuming_the_code() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    app.sandbox.inject(
        Fault::new(FaultKind::ServerError {
            status: ServerErrorStatus::BadGateway,
        })
        .on(Endpoint::AuthToken),
    );
    let resp = app.exchange_code(&code, Some(REDIRECT_URI)).await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    request_id(&resp);
    let body = error_body(resp).await;
    assert_eq!(body.code, 502);
    assert_eq!(body.name, "bad_gateway_error");

    // Finch did the work: the token exists and the code is spent.
    assert_eq!(app.sandbox.issued_tokens().len(), 1);
    let resp = app.exchange_code(&code, Some(REDIRECT_URI)).await;
    assert!(error_body(resp).await.message.contains("already been used"));

    for (status, name) in [(500, "server_error"), (503, "server_error")] {
        app.inject(json!({"endpoint": "/introspect", "kind": "server_error", "status": status}))
            .await;
        let resp = app.introspect(&SecretString::from("x")).await;
        assert_eq!(resp.status().as_u16(), status);
        assert_eq!(error_body(resp).await.name, name);
    }
}

#[tokio::test]
async fn a_hang_fault_times_the_client_out_though_the_token_was_issued() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    app.sandbox
        .inject(Fault::new(FaultKind::Hang { seconds: 30 }).on(Endpoint::AuthToken));
    let started = Instant::now();
    let err = app
        .api(Method::POST, "/auth/token")
        .timeout(Duration::from_millis(500))
        .json(&token_body(&code, Some(REDIRECT_URI)))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(app.sandbox.issued_tokens().len(), 1);
    let hung = app
        .sandbox
        .requests()
        .into_iter()
        .find(|r| r.path == "/auth/token")
        .unwrap();
    assert_eq!(hung.status, None);
    assert_eq!(hung.fault.as_deref(), Some("hang"));

    // Stopping does not wait for the hang.
    let started = Instant::now();
    app.sandbox.stop().await;
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_reset_fault_drops_the_connection_without_a_response() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    app.inject(json!({"endpoint": "/auth/token", "kind": "reset"}))
        .await;
    let err = app
        .api(Method::POST, "/auth/token")
        .json(&token_body(&code, Some(REDIRECT_URI)))
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_connect(), "the request reached the server: {err:?}");
    assert!(!err.is_timeout(), "{err:?}");
    assert!(err.status().is_none());

    assert_eq!(
        app.sandbox.issued_tokens().len(),
        1,
        "the exchange happened"
    );
    let reset = app
        .sandbox
        .requests()
        .into_iter()
        .find(|r| r.path == "/auth/token")
        .unwrap();
    assert_eq!(reset.status, None);
    assert_eq!(reset.fault.as_deref(), Some("reset"));
    // The server is fine afterwards.
    assert_eq!(
        app.exchange_code(&code, Some(REDIRECT_URI)).await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn a_malformed_json_fault_answers_200_with_a_truncated_body() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    app.inject(json!({"endpoint": "/auth/token", "kind": "malformed_json"}))
        .await;
    let resp = app.exchange_code(&code, Some(REDIRECT_URI)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let text = resp.text().await.unwrap();
    assert!(text.starts_with('{') && text.len() > 10);
    assert!(serde_json::from_str::<Value>(&text).is_err());
    assert_eq!(app.sandbox.issued_tokens().len(), 1);
}

#[tokio::test]
async fn a_rate_limit_fault_answers_429_with_retry_after_and_keeps_the_code() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    app.inject(json!({"endpoint": "/auth/token", "kind": "rate_limit", "retry_after_seconds": 7}))
        .await;
    let resp = app.exchange_code(&code, Some(REDIRECT_URI)).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "7");
    let json: Value = resp.json().await.unwrap();
    assert_eq!(json["code"], 429);
    assert_eq!(json["statusCode"], 429);
    assert_eq!(json["status"], 429);
    assert_eq!(json["name"], "rate_limit_exceeded_error");
    assert_eq!(json["finch_code"], "finch_application_rl");
    assert!(app.sandbox.issued_tokens().is_empty());
    assert_eq!(
        app.exchange_code(&code, Some(REDIRECT_URI)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_wrong_customer_id_fault_changes_only_the_customer_id() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    app.sandbox.inject(Fault::new(FaultKind::WrongCustomerId));
    // Not consumed by the session endpoint: it has no customer_id to get wrong.
    app.redirect_session().await;
    let resp = app.exchange_code(&code, Some(REDIRECT_URI)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let token: TokenResponse = resp.json().await.unwrap();
    let customer_id = token.customer_id.unwrap();
    assert_ne!(customer_id, "tenant-acme");
    assert!(!customer_id.is_empty());
    assert_eq!(token.customer_name.as_deref(), Some("Acme Corp"));
    assert!(app.sandbox.faults().is_empty());
    // The code is spent and the token is real.
    let issued = app.sandbox.issued_tokens();
    assert_eq!(
        issued[0].access_token.expose_secret(),
        token.access_token.expose_secret()
    );
    let body: IntrospectResponse = app
        .introspect(&token.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body.customer_id.as_deref(), Some("tenant-acme"));
}

#[tokio::test]
async fn faults_apply_in_fifo_order_to_their_endpoint_and_run_out() {
    let app = spawn().await;
    app.sandbox.inject(
        Fault::new(FaultKind::ServerError {
            status: ServerErrorStatus::ServiceUnavailable,
        })
        .on(Endpoint::ConnectSessions)
        .times(2),
    );
    app.sandbox.inject(Fault::new(FaultKind::RateLimit {
        retry_after_seconds: 1,
    }));
    // The first matching fault wins: twice 503 on sessions, then the any-endpoint 429.
    assert_eq!(
        app.create_session(session_body(None)).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(app.sandbox.faults()[0].times, 1);
    assert_eq!(
        app.create_session(session_body(None)).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        app.create_session(session_body(None)).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        app.create_session(session_body(None)).await.status(),
        StatusCode::CREATED
    );
    assert!(app.sandbox.faults().is_empty());

    // A fault aimed elsewhere leaves other endpoints alone; times 0 lasts until cleared.
    app.inject(json!({"endpoint": "/introspect", "kind": "rate_limit", "times": 0}))
        .await;
    assert_eq!(
        app.create_session(session_body(None)).await.status(),
        StatusCode::CREATED
    );
    for _ in 0..3 {
        let resp = app.introspect(&SecretString::from("x")).await;
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    app.sandbox.clear_faults();
    assert_eq!(
        app.introspect(&SecretString::from("x")).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn faults_never_touch_connect_pages_or_unversioned_calls() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    app.inject(json!({"kind": "server_error"})).await;
    assert_eq!(
        app.open_page(&session.connect_url, &[]).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.http
            .get(app.url("/connect.js"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let resp = app.http.post(app.url("/auth/token")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.sandbox.faults().len(), 1, "still queued");
}

#[tokio::test]
async fn the_fault_control_endpoint_validates_lists_and_clears() {
    let app = spawn().await;
    for (bad, expected) in [
        (json!({"kind": "explode"}), "unknown variant"),
        (
            json!({"kind": "server_error", "status": 418}),
            "500, 502 or 503",
        ),
        (json!({"kind": "latency"}), "ms"),
        (
            json!({"kind": "reset", "endpoint": "/nope"}),
            "unknown variant",
        ),
        (
            json!({"kind": "wrong_customer_id", "endpoint": "/connect/sessions"}),
            "only applies",
        ),
    ] {
        let resp = app.inject(bad.clone()).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
        let body = error_body(resp).await;
        assert!(body.message.contains(expected), "{bad}: {}", body.message);
    }
    let resp = app
        .inject(json!({"endpoint": "/auth/token", "kind": "latency", "ms": 5, "times": 3}))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    app.inject(json!({"kind": "hang"})).await;

    let listed: Value = app
        .http
        .get(app.url("/_sandbox/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed,
        json!([
            {"endpoint": "/auth/token", "kind": "latency", "ms": 5, "times": 3},
            {"kind": "hang", "seconds": 30, "times": 1},
        ])
    );
    let resp = app
        .http
        .delete(app.url("/_sandbox/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"cleared": 2}));
    assert!(app.sandbox.faults().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Control endpoints, recording, lifecycle
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn requests_are_recorded_without_their_query() {
    let app = spawn().await;
    let session = app.redirect_session().await;
    let code = app.redirect_code(&session).await;
    app.exchange_code(&code, Some(REDIRECT_URI)).await;
    app.exchange_code(&code, Some(REDIRECT_URI)).await;

    assert_eq!(app.sandbox.count("POST", "/auth/token"), 2);
    assert_eq!(app.sandbox.count("post", "/connect/sessions"), 1);
    assert_eq!(app.sandbox.count("GET", "/authorize"), 1);
    let requests = app.sandbox.requests();
    let statuses: Vec<Option<u16>> = requests
        .iter()
        .filter(|r| r.path == "/auth/token")
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [Some(200), Some(400)]);
    assert!(
        requests
            .iter()
            .all(|r| !r.path.contains('?') && r.fault.is_none())
    );

    let over_http: Vec<RecordedRequest> = app
        .http
        .get(app.url("/_sandbox/requests?x=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(over_http[..requests.len()], requests[..]);
    let raw = serde_json::to_string(&over_http).unwrap();
    assert!(!raw.contains(&code), "the log never holds a code");
}

#[tokio::test]
async fn apps_can_be_registered_at_run_time() {
    let app = spawn().await;
    let late = |secret: &str| {
        app.api(Method::POST, "/connect/sessions")
            .basic_auth("late-app", Some(secret))
            .json(&session_body(None))
    };
    assert_eq!(
        late("s3").send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    let resp = app
        .http
        .post(app.url("/_sandbox/apps"))
        .json(&json!({"client_id": "late-app", "client_secret": "s3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(
        late("s3").send().await.unwrap().status(),
        StatusCode::CREATED
    );

    app.sandbox.register_app(SandboxApp {
        client_id: "late-app".to_owned(),
        client_secret: SecretString::from("s4"),
    });
    assert_eq!(
        late("s3").send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        late("s4").send().await.unwrap().status(),
        StatusCode::CREATED
    );

    let resp = app
        .http
        .post(app.url("/_sandbox/apps"))
        .json(&json!({"client_id": "", "client_secret": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn stopping_the_sandbox_is_prompt_and_closes_its_port() {
    let app = spawn().await;
    let port = app.sandbox.port();
    // Leaves an idle keep-alive connection in the client's pool.
    app.redirect_session().await;
    let started = Instant::now();
    app.sandbox.stop().await;
    assert!(started.elapsed() < Duration::from_secs(3));
    // A new client, so the check is about the port and not about a pooled connection.
    let err = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/connect.js"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
}
