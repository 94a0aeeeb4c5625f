//! Helpers of the tenant API's tests: tenants with a connection, keys, and a client whose every
//! answer is validated against the served OpenAPI document (`/api/v1/openapi.json`).

use reqwest::Method;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{ConnectSetup, TestApp, connection_id_from};
use finchgate::domain::ApiScope;

/// A tenant with one active connection made through the emulator; its admin is signed in in
/// `browser`.
pub async fn connected_tenant(
    app: &TestApp,
    slug: &str,
    browser: &reqwest::Client,
) -> (ConnectSetup, Uuid) {
    let setup = app.setup_connect_in(slug, browser).await;
    let url = app.redirect_callback_url(browser, &setup).await;
    let done = browser.get(url).send().await.unwrap();
    assert_eq!(done.status(), 303, "the flow completes");
    let location = done.headers()["location"].to_str().unwrap().to_owned();
    (setup, connection_id_from(&location))
}

/// A new key of `tenant_id` with `scopes` (made by the library, as the CLI does).
pub async fn key_for(app: &TestApp, tenant_id: Uuid, scopes: &[ApiScope]) -> String {
    key_with(app, tenant_id, scopes, None).await
}

pub async fn key_with(
    app: &TestApp,
    tenant_id: Uuid,
    scopes: &[ApiScope],
    expires_in_days: Option<i64>,
) -> String {
    let new = finchgate::api::keys::NewKey::parse(
        "test key",
        scopes.iter().map(|s| s.as_str()),
        expires_in_days,
    )
    .unwrap();
    let mut conn = app.pool.get().await.unwrap();
    let created =
        finchgate::db::transaction(&mut conn, finchgate::db::Scope::System, async |conn| {
            finchgate::api::keys::create(
                conn,
                tenant_id,
                &new,
                &finchgate::onboarding::Actor::cli(),
                chrono::Utc::now(),
            )
            .await
        })
        .await
        .unwrap();
    secrecy::ExposeSecret::expose_secret(&created.key).to_owned()
}

/// An answer of the API, its body already checked against the OpenAPI document.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

/// A client of the API that validates every answer against the served document.
pub struct Api {
    pub address: String,
    pub client: reqwest::Client,
    pub document: Value,
}

impl Api {
    pub async fn new(app: &TestApp) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let response = client
            .get(format!("{}/api/v1/openapi.json", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let document: Value = response.json().await.unwrap();
        assert_eq!(document["openapi"], "3.1.0");
        Self {
            address: app.address.clone(),
            client,
            document,
        }
    }

    pub async fn get(&self, key: &str, path: &str) -> Answer {
        self.send(Method::GET, key, path, |r| r).await
    }

    pub async fn delete(&self, key: &str, path: &str) -> Answer {
        self.send(Method::DELETE, key, path, |r| r).await
    }

    /// Sends a request with `key` as bearer (none when empty), lets `adjust` add to it, and
    /// validates the answer.
    pub async fn send(
        &self,
        method: Method,
        key: &str,
        path: &str,
        adjust: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Answer {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.address));
        if !key.is_empty() {
            request = request.bearer_auth(key);
        }
        let response = adjust(request).send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let json: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!("{method} {path} answered {status} with non-JSON ({e}): {text}")
        });
        let answer = Answer {
            status,
            headers,
            text,
            json,
        };
        self.validate(&method, path, &answer);
        answer
    }

    /// Checks the answer against the document: problems (4xx/5xx) against `ProblemBody` with
    /// `application/problem+json`, success bodies against the operation's declared response.
    pub fn validate(&self, method: &Method, path: &str, answer: &Answer) {
        let content_type = answer.headers["content-type"].to_str().unwrap();
        let schema = if answer.status >= 400 {
            assert_eq!(content_type, "application/problem+json", "{method} {path}");
            assert_eq!(answer.json["status"], answer.status, "{method} {path}");
            assert_eq!(
                answer.json["type"],
                format!(
                    "urn:finchgate:problem:{}",
                    answer.json["code"].as_str().unwrap()
                )
            );
            serde_json::json!({ "$ref": "#/components/schemas/ProblemBody" })
        } else {
            assert!(
                content_type.starts_with("application/json"),
                "{method} {path}"
            );
            let operation = self
                .operation(method, path)
                .unwrap_or_else(|| panic!("{method} {path} is not in the OpenAPI document"));
            let response = &operation["responses"][answer.status.to_string()];
            assert!(
                response.is_object(),
                "{method} {path}: status {} is not documented",
                answer.status
            );
            response["content"]["application/json"]["schema"].clone()
        };
        let mut root = serde_json::json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.document["components"].clone(),
        });
        for (k, v) in schema.as_object().unwrap() {
            root[k] = v.clone();
        }
        let validator = jsonschema::validator_for(&root).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&answer.json)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {path} → {}: the body does not match the document: {errors:?}\n{}",
            answer.status,
            answer.text
        );
    }

    fn operation(&self, method: &Method, path: &str) -> Option<&Value> {
        let path = path.split('?').next().unwrap();
        let wanted: Vec<&str> = path.split('/').collect();
        let paths = self.document["paths"].as_object()?;
        paths.iter().find_map(|(template, item)| {
            let parts: Vec<&str> = template.split('/').collect();
            let matches = parts.len() == wanted.len()
                && parts
                    .iter()
                    .zip(&wanted)
                    .all(|(t, w)| t.starts_with('{') || t == w);
            matches
                .then(|| item.get(method.as_str().to_lowercase()))
                .flatten()
        })
    }
}

impl Api {
    /// POSTs `body` as JSON with `key`, plus an `Idempotency-Key` when given.
    pub async fn post_json(
        &self,
        key: &str,
        path: &str,
        idempotency_key: Option<&str>,
        body: &Value,
    ) -> Answer {
        let body = body.clone();
        self.send(Method::POST, key, path, |r| {
            let r = r.json(&body);
            match idempotency_key {
                Some(k) => r.header("Idempotency-Key", k),
                None => r,
            }
        })
        .await
    }
}

/// An embedded-flow link of `tenant_id` made through `POST /api/v1/links`: its id.
pub async fn api_link(app: &TestApp, tenant_id: Uuid) -> String {
    let api = Api::new(app).await;
    let key = key_for(app, tenant_id, &[ApiScope::LinksWrite]).await;
    let created = api
        .post_json(
            &key,
            "/api/v1/links",
            None,
            &serde_json::json!({
                "customer_id": "cust-matrix",
                "customer_name": "Matrix Ltd",
                "products": ["company"],
                "flow": "embedded",
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    created.json["id"].as_str().unwrap().to_owned()
}
