//! Sessions that end stay ended, and visitors who never sign in leave nothing behind (issue 13,
//! defects 4 and 6).

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, count, spawn_app};

fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("finchgate_session="))
        .map(|c| c.split(';').next().unwrap().to_owned())
}

async fn get_with_cookie(app: &TestApp, path: &str, cookie: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}{path}", app.address))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

/// A POST whose body arrives in two parts, `pause` apart: the raw request on its own TCP
/// connection, and the response head once it comes.
struct SlowPost {
    stream: TcpStream,
    rest: Vec<u8>,
}

impl SlowPost {
    async fn start(app: &TestApp, path: &str, cookie: &str, csrf: &str, body: &str) -> Self {
        let host = app.address.trim_start_matches("http://");
        let mut stream = TcpStream::connect(host).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nX-CSRF-Token: {csrf}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            body.len()
        );
        let (first, rest) = body.as_bytes().split_at(body.len() / 2);
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(first).await.unwrap();
        stream.flush().await.unwrap();
        Self {
            stream,
            rest: rest.to_vec(),
        }
    }

    /// Sends the rest of the body and reads the whole response.
    async fn finish(mut self) -> String {
        self.stream.write_all(&self.rest).await.unwrap();
        self.response().await
    }

    async fn response(mut self) -> String {
        let mut response = Vec::new();
        self.stream.read_to_end(&mut response).await.unwrap();
        String::from_utf8_lossy(&response).into_owned()
    }
}

fn set_cookie_in(response: &str) -> Option<String> {
    response
        .lines()
        .filter_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("set-cookie")
                .then(|| value.trim().to_owned())
        })
        .find(|c| c.starts_with("finchgate_session="))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn defect_4_a_request_in_flight_while_signing_out_does_not_bring_the_session_back() {
    let app = spawn_app().await;
    let tenant = app.create_tenant("acme").await;
    let user = app.create_user("admin@acme.test", Some(tenant)).await;
    let signed_in = app
        .login_with(&app.client, &user.email, &user.password)
        .await;
    let cookie = session_cookie(&signed_in).expect("a session cookie at sign-in");
    let csrf = app.csrf_of(&app.client, "/t/acme/settings").await;

    // A form post whose body is still arriving (the session is already loaded)…
    let slow = SlowPost::start(
        &app,
        "/t/acme/settings/redirect-uris",
        &cookie,
        &csrf,
        "uri=https%3A%2F%2Fapp.acme.test%2Ffinch%2Fcallback",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // …while the same browser signs out in another tab.
    let out = app
        .client
        .post(format!("{}/logout", app.address))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let response = slow.finish().await;
    assert_eq!(
        count(
            &app.db,
            &format!(
                "SELECT count(*) AS n FROM sessions WHERE user_id = '{}'",
                user.id
            )
        )
        .await,
        0,
        "no session of the signed-out user exists again: {response}"
    );
    for cookie in [Some(cookie), set_cookie_in(&response)]
        .into_iter()
        .flatten()
    {
        let page = get_with_cookie(&app, "/t/acme/", &cookie).await;
        assert_eq!(page.status(), 303, "{cookie} opens nothing");
        assert_eq!(page.headers()["location"], "/login");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_request_body_that_stops_arriving_is_answered_408_in_bounded_time() {
    let app = spawn_app().await;
    let tenant = app.create_tenant("acme").await;
    let user = app.create_user("admin@acme.test", Some(tenant)).await;
    let signed_in = app
        .login_with(&app.client, &user.email, &user.password)
        .await;
    let cookie = session_cookie(&signed_in).unwrap();
    let csrf = app.csrf_of(&app.client, "/t/acme/settings").await;
    let started = Instant::now();
    let stalled = SlowPost::start(
        &app,
        "/t/acme/settings/redirect-uris",
        &cookie,
        &csrf,
        "uri=https%3A%2F%2Fapp.acme.test%2Fcb",
    )
    .await;
    let response = tokio::time::timeout(Duration::from_secs(30), stalled.response())
        .await
        .expect("the server gives up on the body");
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(started.elapsed() < Duration::from_secs(20));
    app.stop().await;
}

#[tokio::test]
async fn defect_6_anonymous_visitors_leave_no_rows_and_throttled_sign_ins_one_event_per_window() {
    let app = spawn_app().await;
    for _ in 0..50 {
        let page = app
            .new_browser()
            .get(format!("{}/login", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        assert!(
            session_cookie(&page).is_some(),
            "the login form still gets its pre-session"
        );
    }
    assert_eq!(
        count(&app.db, "SELECT count(*) AS n FROM sessions").await,
        0,
        "a page view of someone who is not signed in stores nothing"
    );

    // One address fails until it is throttled, then keeps knocking.
    let browser = app.new_browser();
    let mut throttled = 0;
    // 30 failures per address per window (IP_FAILURE_LIMIT), then 429.
    for _ in 0..70 {
        let response = app
            .login_with(&browser, "nobody@acme.test", "not-the-password")
            .await;
        if response.status() == 429 {
            throttled += 1;
        }
    }
    assert!(throttled >= 40, "{throttled} throttled");
    assert_eq!(
        count(
            &app.db,
            "SELECT count(*) AS n FROM audit_events WHERE action = 'login.throttled'"
        )
        .await,
        1,
        "the throttled attempts of one window are one event"
    );
    assert_eq!(
        count(&app.db, "SELECT count(*) AS n FROM sessions").await,
        0,
        "failed sign-ins store no session either"
    );
    app.stop().await;
}

#[tokio::test]
async fn records_past_their_retention_are_deleted_by_the_reaper_and_younger_ones_stay() {
    use diesel_async::RunQueryDsl as _;
    let app = spawn_app().await;
    let setup = app.setup_connect("acme").await;
    for _ in 0..2 {
        assert_eq!(
            app.start_connect(&app.client, &setup, false).await.status(),
            303
        );
    }
    let mut superuser = app.db.connect().await;
    for sql in [
        // One flow finished long ago, one yesterday.
        "UPDATE connect_flows SET status = 'expired', finished_at = now() - interval '91 days'
          WHERE id = (SELECT id FROM connect_flows ORDER BY created_at LIMIT 1)",
        "UPDATE connect_flows SET status = 'expired', finished_at = now() - interval '1 day'
          WHERE status = 'pending'",
        "INSERT INTO audit_events (occurred_at, actor_kind, action)
          VALUES (now() - interval '401 days', 'system', 'old.event'),
                 (now() - interval '399 days', 'system', 'kept.event')",
        "INSERT INTO rate_limits (key, window_start, hits)
          VALUES ('spent', now() - interval '2 days', 3), ('current', now(), 1)",
    ] {
        diesel::sql_query(sql)
            .execute(&mut superuser)
            .await
            .unwrap();
    }
    let reaped =
        finchgate::connect::reaper::reap(&app.pool, chrono::Utc::now(), &Default::default())
            .await
            .unwrap();
    assert_eq!(reaped.retention_deleted, 3, "{reaped:?}");
    assert_eq!(
        count(&app.db, "SELECT count(*) AS n FROM connect_flows").await,
        1
    );
    assert_eq!(
        count(
            &app.db,
            "SELECT count(*) AS n FROM audit_events WHERE action IN ('old.event', 'kept.event')"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &app.db,
            "SELECT count(*) AS n FROM rate_limits WHERE key IN ('spent', 'current')"
        )
        .await,
        1
    );
    app.stop().await;
}
