//! Finch's data API on the emulator, over real HTTP: each endpoint's shape, paging, determinism,
//! product scopes, tokens, Finch's per-application rate limits, jobs, and faults.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use finchgate::sandbox::{Endpoint, Fault, FaultKind, RateLimits, ServerErrorStatus};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{
    CLIENT_ID, CLIENT_SECRET, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET, TestSandbox, error_body,
    request_id, spawn,
};

const ALL_PRODUCTS: [&str; 6] = [
    "company",
    "directory",
    "individual",
    "employment",
    "payment",
    "pay_statement",
];

/// A sandbox connection's token.
struct Conn {
    token: String,
    company_id: String,
}

impl TestSandbox {
    async fn data_connection_of(
        &self,
        app: (&str, &str),
        products: &[&str],
        employee_size: u32,
    ) -> Conn {
        let resp = self
            .api(Method::POST, "/sandbox/connections")
            .basic_auth(app.0, Some(app.1))
            .json(&json!({
                "provider_id": "gusto",
                "products": products,
                "employee_size": employee_size,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.unwrap();
        Conn {
            token: body["access_token"].as_str().unwrap().to_owned(),
            company_id: body["company_id"].as_str().unwrap().to_owned(),
        }
    }

    async fn data_connection(&self, products: &[&str], employee_size: u32) -> Conn {
        self.data_connection_of((CLIENT_ID, CLIENT_SECRET), products, employee_size)
            .await
    }

    async fn get_data(&self, conn: &Conn, path_and_query: &str) -> reqwest::Response {
        self.api(Method::GET, path_and_query)
            .bearer_auth(&conn.token)
            .send()
            .await
            .unwrap()
    }

    async fn post_data(&self, conn: &Conn, path: &str, body: Value) -> reqwest::Response {
        self.api(Method::POST, path)
            .bearer_auth(&conn.token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn ok_json(&self, resp: reqwest::Response) -> Value {
        assert_eq!(resp.status(), StatusCode::OK);
        request_id(&resp);
        resp.json().await.unwrap()
    }

    /// Walks the whole directory with pages of `limit`; returns every id in order.
    async fn walk_directory(&self, conn: &Conn, limit: usize) -> Vec<String> {
        let mut ids = Vec::new();
        let mut offset = 0;
        loop {
            let page = self
                .ok_json(
                    self.get_data(
                        conn,
                        &format!("/employer/directory?limit={limit}&offset={offset}"),
                    )
                    .await,
                )
                .await;
            let people = page["individuals"].as_array().unwrap();
            assert_eq!(page["paging"]["offset"], offset);
            ids.extend(people.iter().map(|p| p["id"].as_str().unwrap().to_owned()));
            offset += people.len();
            if people.is_empty() || offset >= page["paging"]["count"].as_u64().unwrap() as usize {
                return ids;
            }
        }
    }
}

fn unlimited(app: &TestSandbox) {
    app.sandbox.set_rate_limits(RateLimits::uniform(0));
}

#[tokio::test]
async fn the_company_answers_in_finchs_shape_and_the_same_every_time() {
    let app = spawn().await;
    let conn = app.data_connection(&ALL_PRODUCTS, 20).await;
    let company = app
        .ok_json(app.get_data(&conn, "/employer/company").await)
        .await;
    assert_eq!(company["id"], conn.company_id.as_str());
    assert!(company["legal_name"].as_str().unwrap().len() > 3);
    let ein = company["ein"].as_str().unwrap();
    assert!(ein.len() == 10 && ein.as_bytes()[2] == b'-', "{ein}");
    assert!(!company["departments"].as_array().unwrap().is_empty());
    assert!(company["locations"][0]["city"].is_string());
    assert_eq!(company["accounts"][0]["account_type"], "checking");
    assert_eq!(company["entity"]["type"], "corporation");
    let again = app
        .ok_json(app.get_data(&conn, "/employer/company").await)
        .await;
    assert_eq!(company, again);

    let other = app.data_connection(&ALL_PRODUCTS, 20).await;
    let other_company = app
        .ok_json(app.get_data(&other, "/employer/company").await)
        .await;
    assert_ne!(company["id"], other_company["id"]);
}

#[tokio::test]
async fn paging_walks_every_person_once_and_reads_are_repeatable() {
    let app = spawn().await;
    unlimited(&app);
    let conn = app.data_connection(&ALL_PRODUCTS, 230).await;
    let ids = app.walk_directory(&conn, 50).await;
    assert_eq!(ids.len(), 230);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 230, "a duplicate");
    assert_eq!(
        app.walk_directory(&conn, 70).await,
        ids,
        "another page size"
    );

    // The default page is 100; an offset past the end is an empty page with the count.
    let page = app
        .ok_json(app.get_data(&conn, "/employer/directory").await)
        .await;
    assert_eq!(page["individuals"].as_array().unwrap().len(), 100);
    assert_eq!(page["paging"], json!({"count": 230, "offset": 0}));
    let first = &page["individuals"][0];
    assert!(first["manager"].is_null(), "the first person tops the tree");
    assert!(first["first_name"].is_string() && first["last_name"].is_string());
    assert!(first["department"]["name"].is_string());
    assert!(first["is_active"].is_boolean());
    let managers: HashSet<&str> = page["individuals"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["manager"]["id"].as_str())
        .collect();
    assert!(managers.iter().all(|m| ids.iter().any(|i| i == m)));
    let past = app
        .ok_json(app.get_data(&conn, "/employer/directory?offset=500").await)
        .await;
    assert_eq!(past["individuals"], json!([]));
    assert_eq!(past["paging"]["count"], 230);

    for bad in ["limit=-1", "limit=abc", "limit=10001", "offset=x"] {
        let resp = app
            .get_data(&conn, &format!("/employer/directory?{bad}"))
            .await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(error_body(resp).await.name, "bad_request");
    }
}

#[tokio::test]
async fn a_company_of_thousands_pages_fast() {
    let app = spawn().await;
    unlimited(&app);
    let conn = app.data_connection(&ALL_PRODUCTS, 4000).await;
    let started = Instant::now();
    let ids = app.walk_directory(&conn, 500).await;
    let elapsed = started.elapsed();
    assert_eq!(ids.len(), 4000);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 4000);
    println!("4000 people in 8 pages: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[tokio::test]
async fn individuals_and_employments_answer_per_item_with_errors_for_unknown_ids() {
    let app = spawn().await;
    let conn = app.data_connection(&ALL_PRODUCTS, 30).await;
    let ids = app.walk_directory(&conn, 100).await;
    let other = app.data_connection(&ALL_PRODUCTS, 30).await;
    let foreign_page = app
        .ok_json(app.get_data(&other, "/employer/directory?limit=1").await)
        .await;
    let foreign = foreign_page["individuals"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let wanted = [
        ids[0].as_str(),
        ids[7].as_str(),
        "not-an-id",
        foreign.as_str(),
    ];
    let requests: Vec<Value> = wanted
        .iter()
        .map(|id| json!({"individual_id": id}))
        .collect();

    let body = app
        .ok_json(
            app.post_data(
                &conn,
                "/employer/individual",
                json!({"requests": requests, "options": {"include": ["ssn"]}}),
            )
            .await,
        )
        .await;
    let responses = body["responses"].as_array().unwrap();
    assert_eq!(responses.len(), 4);
    for (answer, id) in responses.iter().zip(wanted) {
        assert_eq!(answer["individual_id"], id);
    }
    for found in &responses[..2] {
        assert_eq!(found["code"], 200);
        assert_eq!(found["body"]["id"], found["individual_id"]);
        assert!(found["body"]["emails"][0]["data"].is_string());
        assert!(found["body"]["dob"].is_string());
        assert!(found["body"]["ssn"].is_null(), "no ssn product");
    }
    for missing in &responses[2..] {
        assert_eq!(missing["code"], 404);
        assert_eq!(missing["body"]["name"], "not_found_error");
        assert_eq!(missing["body"]["finch_code"], "individual_not_found");
        assert_eq!(missing["body"]["code"], 404);
    }

    let body = app
        .ok_json(
            app.post_data(&conn, "/employer/employment", json!({"requests": requests}))
                .await,
        )
        .await;
    let responses = body["responses"].as_array().unwrap();
    let first = &responses[0]["body"];
    assert_eq!(first["title"], "Chief Executive Officer");
    assert!(first["manager"].is_null());
    assert_eq!(first["employment"]["type"], "employee");
    assert!(first["income"]["amount"].as_i64().unwrap() > 0);
    assert_eq!(first["income"]["currency"], "usd");
    assert!(first["start_date"].is_string());
    assert_eq!(responses[1]["body"]["manager"]["id"], ids[1].as_str());
    assert_eq!(responses[3]["code"], 404);

    // The same request twice: the same answer.
    let again = app
        .ok_json(
            app.post_data(&conn, "/employer/employment", json!({"requests": requests}))
                .await,
        )
        .await;
    assert_eq!(body, again);

    for bad in [
        json!({}),
        json!({"requests": []}),
        json!({"requests": [{}]}),
    ] {
        let resp = app.post_data(&conn, "/employer/individual", bad).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn the_ssn_needs_its_own_product() {
    let app = spawn().await;
    let conn = app
        .data_connection(&["directory", "individual", "ssn"], 5)
        .await;
    let ids = app.walk_directory(&conn, 10).await;
    let body = app
        .ok_json(
            app.post_data(
                &conn,
                "/employer/individual",
                json!({"requests": [{"individual_id": ids[0]}], "options": {"include": ["ssn"]}}),
            )
            .await,
        )
        .await;
    let ssn = body["responses"][0]["body"]["ssn"].as_str().unwrap();
    assert_eq!(ssn.len(), 11, "{ssn}");
}

#[tokio::test]
async fn payments_need_dates_and_their_pay_statements_add_up() {
    let app = spawn().await;
    let conn = app.data_connection(&ALL_PRODUCTS, 60).await;
    let resp = app.get_data(&conn, "/employer/payment").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(error_body(resp).await.message.contains("start_date"));
    let resp = app
        .get_data(
            &conn,
            "/employer/payment?start_date=2026-13-01&end_date=2026-12-01",
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    let payments = app
        .ok_json(
            app.get_data(
                &conn,
                "/employer/payment?start_date=2000-01-01&end_date=2100-01-01",
            )
            .await,
        )
        .await;
    let payments = payments.as_array().unwrap();
    assert!((12..=14).contains(&payments.len()), "{}", payments.len());
    let dates: Vec<&str> = payments
        .iter()
        .map(|p| p["pay_date"].as_str().unwrap())
        .collect();
    assert!(dates.windows(2).all(|w| w[0] < w[1]), "{dates:?}");
    let latest = payments.last().unwrap();
    assert_eq!(latest["pay_frequencies"], json!(["bi_weekly"]));
    assert!(latest["pay_period"]["start_date"].is_string());

    // A narrower window lists fewer runs.
    let narrow = app
        .ok_json(
            app.get_data(
                &conn,
                &format!(
                    "/employer/payment?start_date={}&end_date={}",
                    dates[dates.len() - 2],
                    dates[dates.len() - 1]
                ),
            )
            .await,
        )
        .await;
    assert_eq!(narrow.as_array().unwrap().len(), 2);

    // Page through the latest run's statements 25 at a time.
    let payment_id = latest["id"].as_str().unwrap();
    let mut statements = Vec::new();
    loop {
        let body = app
            .ok_json(
                app.post_data(
                    &conn,
                    "/employer/pay-statement",
                    json!({"requests": [{"payment_id": payment_id, "limit": 25, "offset": statements.len()}]}),
                )
                .await,
            )
            .await;
        let answer = &body["responses"][0];
        assert_eq!(answer["payment_id"], payment_id);
        assert_eq!(answer["code"], 200);
        let page = answer["body"]["pay_statements"].as_array().unwrap().clone();
        let count = answer["body"]["paging"]["count"].as_u64().unwrap() as usize;
        statements.extend(page.iter().cloned());
        if page.is_empty() || statements.len() >= count {
            break;
        }
    }
    assert_eq!(
        statements.len(),
        latest["individual_ids"].as_array().unwrap().len()
    );
    let sum = |field: &str| -> i64 {
        statements
            .iter()
            .map(|s| s[field]["amount"].as_i64().unwrap())
            .sum()
    };
    assert_eq!(
        sum("gross_pay"),
        latest["gross_pay"]["amount"].as_i64().unwrap()
    );
    assert_eq!(
        sum("net_pay"),
        latest["net_pay"]["amount"].as_i64().unwrap()
    );
    for s in &statements {
        let gross = s["gross_pay"]["amount"].as_i64().unwrap();
        let taxes: i64 = s["taxes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["employer"] == false)
            .map(|t| t["amount"].as_i64().unwrap())
            .sum();
        let deductions: i64 = s["employee_deductions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["amount"].as_i64().unwrap())
            .sum();
        assert_eq!(
            s["net_pay"]["amount"].as_i64().unwrap(),
            gross - taxes - deductions
        );
    }

    let body = app
        .ok_json(
            app.post_data(
                &conn,
                "/employer/pay-statement",
                json!({"requests": [{"payment_id": "00000000-0000-4000-8000-000000000000"}]}),
            )
            .await,
        )
        .await;
    assert_eq!(body["responses"][0]["code"], 404);
    assert_eq!(
        body["responses"][0]["body"]["finch_code"],
        "payment_not_found"
    );
}

#[tokio::test]
async fn a_product_not_granted_is_finchs_insufficient_scope_error() {
    let app = spawn().await;
    let conn = app.data_connection(&["company"], 10).await;
    app.ok_json(app.get_data(&conn, "/employer/company").await)
        .await;
    let refused = [
        app.get_data(&conn, "/employer/directory").await,
        app.post_data(
            &conn,
            "/employer/individual",
            json!({"requests": [{"individual_id": "x"}]}),
        )
        .await,
        app.post_data(
            &conn,
            "/employer/employment",
            json!({"requests": [{"individual_id": "x"}]}),
        )
        .await,
        app.get_data(
            &conn,
            "/employer/payment?start_date=2026-01-01&end_date=2026-02-01",
        )
        .await,
        app.post_data(
            &conn,
            "/employer/pay-statement",
            json!({"requests": [{"payment_id": "x"}]}),
        )
        .await,
    ];
    for resp in refused {
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        request_id(&resp);
        let body = error_body(resp).await;
        assert_eq!(body.code, 403);
        assert_eq!(body.name, "insufficient_scope_error");
    }
}

#[tokio::test]
async fn a_bad_missing_or_revoked_token_is_a_401() {
    let app = spawn().await;
    let conn = app.data_connection(&ALL_PRODUCTS, 10).await;
    let bad = Conn {
        token: "not-a-token".to_owned(),
        company_id: String::new(),
    };
    let resp = app.get_data(&bad, "/employer/company").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_body(resp).await.name, "invalid_token_error");
    let resp = app
        .api(Method::GET, "/employer/directory")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_body(resp).await.name, "unauthorized_request_error");

    let resp = app
        .api(Method::POST, "/disconnect")
        .bearer_auth(&conn.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = app.get_data(&conn, "/employer/company").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_body(resp).await.name, "invalid_token_error");
    let resp = app.get_data(&conn, "/jobs/automated").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn finchs_rate_limit_answers_its_429_body_per_application_and_can_be_raised() {
    let app = spawn().await;
    let conn = app.data_connection(&ALL_PRODUCTS, 10).await;
    let second = app.data_connection(&ALL_PRODUCTS, 10).await;
    // Payment is 12 a minute per application, whichever connection asks.
    let path = "/employer/payment?start_date=2026-01-01&end_date=2026-02-01";
    for i in 0..12 {
        let c = if i % 2 == 0 { &conn } else { &second };
        assert_eq!(app.get_data(c, path).await.status(), StatusCode::OK, "{i}");
    }
    let resp = app.get_data(&conn, path).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    request_id(&resp);
    let body: Value = resp.json().await.unwrap();
    for (k, v) in [
        ("code", json!(429)),
        ("message", json!("Too many requests for token")),
        ("name", json!("rate_limit_exceeded_error")),
        ("finch_code", json!("finch_application_rl")),
    ] {
        assert_eq!(body[k], v, "{k}");
    }
    // Other endpoints and other applications have their own budgets.
    assert_eq!(
        app.get_data(&conn, "/employer/company").await.status(),
        StatusCode::OK
    );
    let other_app = app
        .data_connection_of((OTHER_CLIENT_ID, OTHER_CLIENT_SECRET), &ALL_PRODUCTS, 10)
        .await;
    assert_eq!(
        app.get_data(&other_app, path).await.status(),
        StatusCode::OK
    );

    // The window rolls: a minute later the application may call again.
    app.sandbox.set_clock_offset(chrono::Duration::seconds(61));
    assert_eq!(app.get_data(&conn, path).await.status(), StatusCode::OK);

    // The control endpoint shows and changes the limits.
    let limits: Value = app
        .http
        .get(app.url("/_sandbox/limits"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(limits["payment"], 12);
    assert_eq!(limits["directory"], 20);
    let resp = app
        .http
        .post(app.url("/_sandbox/limits"))
        .json(&json!({"payment": 0, "directory": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let limits: Value = resp.json().await.unwrap();
    assert_eq!(
        (limits["payment"].clone(), limits["company"].clone()),
        (json!(0), json!(20))
    );
    for _ in 0..30 {
        assert_eq!(app.get_data(&conn, path).await.status(), StatusCode::OK);
    }
    for _ in 0..2 {
        assert_eq!(
            app.get_data(&conn, "/employer/directory").await.status(),
            StatusCode::OK
        );
    }
    assert_eq!(
        app.get_data(&conn, "/employer/directory").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let resp = app
        .http
        .post(app.url("/_sandbox/limits"))
        .json(&json!({"directory": "many"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = app
        .http
        .post(app.url("/_sandbox/limits"))
        .json(&json!({"default": true}))
        .send()
        .await
        .unwrap();
    let limits: Value = resp.json().await.unwrap();
    assert_eq!(limits["payment"], 12);
}

#[tokio::test]
async fn one_job_runs_at_a_time_and_one_refresh_is_allowed_an_hour() {
    let app = spawn().await;
    let conn = app.data_connection(&ALL_PRODUCTS, 10).await;
    let start = json!({"type": "data_sync_all"});
    let created = app
        .ok_json(app.post_data(&conn, "/jobs/automated", start.clone()).await)
        .await;
    let job_id = created["job_id"].as_str().unwrap().to_owned();
    assert_eq!(created["allowed_refreshes"], 1);
    assert_eq!(created["remaining_refreshes"], 0);
    assert!(created["job_url"].as_str().unwrap().ends_with(&job_id));
    let again = app
        .ok_json(app.post_data(&conn, "/jobs/automated", start.clone()).await)
        .await;
    assert_eq!(again["job_id"], job_id.as_str(), "the running job");

    let status = app
        .ok_json(
            app.get_data(&conn, &format!("/jobs/automated/{job_id}"))
                .await,
        )
        .await;
    assert_eq!(status["status"], "pending");
    assert_eq!(status["type"], "data_sync_all");
    assert!(status["completed_at"].is_null());
    app.sandbox.set_clock_offset(chrono::Duration::seconds(3));
    let status = app
        .ok_json(
            app.get_data(&conn, &format!("/jobs/automated/{job_id}"))
                .await,
        )
        .await;
    assert_eq!(status["status"], "complete");
    assert!(status["completed_at"].is_string());

    let list = app
        .ok_json(app.get_data(&conn, "/jobs/automated").await)
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        list["meta"]["quotas"]["data_sync_all"]["remaining_refreshes"],
        0
    );

    let refused = app.post_data(&conn, "/jobs/automated", start.clone()).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["x-should-retry"], "false");
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3500..=3600).contains(&wait), "{wait}");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["remaining_refreshes"], 0);
    assert!(body["retry_at"].is_string());

    app.sandbox
        .set_clock_offset(chrono::Duration::seconds(3605));
    let next = app
        .ok_json(app.post_data(&conn, "/jobs/automated", start).await)
        .await;
    assert_ne!(next["job_id"], job_id.as_str());

    // Another connection's job does not exist for this one.
    let other = app.data_connection(&ALL_PRODUCTS, 10).await;
    let resp = app
        .get_data(&other, &format!("/jobs/automated/{job_id}"))
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = app
        .post_data(&conn, "/jobs/automated", json!({"type": "bogus"}))
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn providers_are_listed_without_a_token() {
    let app = spawn().await;
    let resp = app.api(Method::GET, "/providers").send().await.unwrap();
    let providers = app.ok_json(resp).await;
    let gusto = providers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "gusto")
        .unwrap();
    assert_eq!(gusto["display_name"], "Gusto");
    assert!(
        gusto["products"]
            .as_array()
            .unwrap()
            .contains(&json!("directory"))
    );
    assert_eq!(gusto["authentication_methods"][0]["type"], "oauth");
}

#[tokio::test]
async fn faults_apply_to_the_data_endpoints_and_requests_are_recorded() {
    let app = spawn().await;
    let conn = app.data_connection(&ALL_PRODUCTS, 10).await;

    app.sandbox.inject(
        Fault::new(FaultKind::ServerError {
            status: ServerErrorStatus::BadGateway,
        })
        .on(Endpoint::Directory),
    );
    let resp = app.get_data(&conn, "/employer/directory").await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(error_body(resp).await.name, "bad_gateway_error");

    app.sandbox
        .inject(Fault::new(FaultKind::Latency { ms: 300 }).on(Endpoint::Company));
    let started = Instant::now();
    app.ok_json(app.get_data(&conn, "/employer/company").await)
        .await;
    assert!(started.elapsed() >= Duration::from_millis(300));

    app.sandbox
        .inject(Fault::new(FaultKind::Reset).on(Endpoint::PayStatement));
    let err = app
        .api(Method::POST, "/employer/pay-statement")
        .bearer_auth(&conn.token)
        .json(&json!({"requests": [{"payment_id": "x"}]}))
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_timeout(), "{err:?}");

    app.sandbox
        .inject(Fault::new(FaultKind::Hang { seconds: 30 }).on(Endpoint::JobStatus));
    let err = app
        .api(Method::GET, "/jobs/automated/some-job")
        .bearer_auth(&conn.token)
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");

    // A 64 MB body arrives whole and is valid JSON; the emulator streams it.
    app.inject(json!({"endpoint": "/employer/directory", "kind": "big_body", "megabytes": 64}))
        .await;
    let resp = app.get_data(&conn, "/employer/directory").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.bytes().await.unwrap();
    assert!(body.len() >= 64 * 1024 * 1024, "{}", body.len());
    assert!(body.starts_with(b"{\"padding\":\"") && body.ends_with(b"\"}"));

    app.inject(json!({"endpoint": "/employer/company", "kind": "html_body", "status": 502}))
        .await;
    let resp = app.get_data(&conn, "/employer/company").await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );

    app.inject(json!({"endpoint": "/employer/company", "kind": "redirect"}))
        .await;
    let resp = app.get_data(&conn, "/employer/company").await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert!(
        resp.headers()["location"]
            .to_str()
            .unwrap()
            .contains("/_sandbox/")
    );

    app.inject(json!({"endpoint": "/providers", "kind": "set_cookie"}))
        .await;
    let resp = app.api(Method::GET, "/providers").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().get("set-cookie").is_some());

    app.inject(json!({"endpoint": "/jobs/automated", "kind": "rate_limit"}))
        .await;
    let resp = app.get_data(&conn, "/jobs/automated").await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);

    // Every data request reached the record, with its status and fault.
    let recorded = app.sandbox.requests();
    let directory: Vec<_> = recorded
        .iter()
        .filter(|r| r.path == "/employer/directory")
        .collect();
    assert_eq!(directory.len(), 2);
    assert_eq!(directory[0].status, Some(502));
    assert_eq!(directory[0].fault.as_deref(), Some("server_error"));
    assert_eq!(directory[1].fault.as_deref(), Some("big_body"));
    assert_eq!(app.sandbox.count("POST", "/employer/pay-statement"), 1);
    assert!(
        recorded
            .iter()
            .any(|r| r.path == "/employer/pay-statement" && r.status.is_none())
    );
}

#[tokio::test]
async fn a_data_request_is_recorded_with_its_connection_query_and_headers_but_no_token() {
    let app = spawn().await;
    let conn = app.data_connection(&ALL_PRODUCTS, 10).await;
    let resp = app
        .api(Method::GET, "/employer/directory?limit=5&offset=2")
        .bearer_auth(&conn.token)
        .header("cookie", "session=from-the-caller")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let connection_id = app
        .sandbox
        .issued_tokens()
        .into_iter()
        .find(|t| {
            use secrecy::ExposeSecret;
            t.access_token.expose_secret() == conn.token
        })
        .unwrap()
        .connection_id;
    let recorded = app.sandbox.requests();
    let r = recorded
        .iter()
        .find(|r| r.path == "/employer/directory")
        .unwrap();
    assert_eq!(r.query.as_deref(), Some("limit=5&offset=2"));
    assert_eq!(r.connection_id.as_deref(), Some(connection_id.as_str()));
    let header = |name: &str| {
        r.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("authorization").as_deref(), Some("Bearer"));
    assert_eq!(header("cookie").as_deref(), Some("session=from-the-caller"));
    assert_eq!(header("finch-api-version").as_deref(), Some("2020-09-17"));
    let json = serde_json::to_string(&recorded).unwrap();
    assert!(!json.contains(&conn.token), "a token in the record");

    // Elsewhere the query is not kept (it can carry states and codes).
    app.http
        .get(app.url("/authorize?session=s&state=secret-state"))
        .send()
        .await
        .unwrap();
    let recorded = app.sandbox.requests();
    let page = recorded.iter().find(|r| r.path == "/authorize").unwrap();
    assert!(page.query.is_none());
}
