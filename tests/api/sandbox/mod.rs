//! The Finch sandbox emulator over real HTTP: every endpoint, every error case, every fault as a
//! client sees it. This file holds the harness (an emulator of its own per test, no app and no
//! database) and one file per endpoint group uses it.

mod connect_pages;
mod connections;
mod control;
mod data;
mod faults;
mod sessions;
mod token;
mod wire;

use std::net::TcpListener;
use std::time::Duration;

use finchgate::finch::wire::{FINCH_API_VERSION, FinchErrorBody, TokenResponse};
use finchgate::sandbox::{Sandbox, SandboxApp, SandboxConfig};
use reqwest::{Method, StatusCode, redirect};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use url::Url;

use crate::helpers::hidden_inputs;

const CLIENT_ID: &str = "client-a";
const CLIENT_SECRET: &str = "secret-a";
const OTHER_CLIENT_ID: &str = "client-b";
const OTHER_CLIENT_SECRET: &str = "secret-b";
const REDIRECT_URI: &str = "http://127.0.0.1:8080/t/acme/finch/callback?tenant=acme";
const SDK_HOST: &str = "http://localhost:3000";

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
            fields: hidden_inputs(&resp.text().await.unwrap()),
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
