//! Sign-in, sessions, CSRF, cookies and security headers (SECURITY.md T26, T28–T33, AU-*, SE-*).

use crate::helpers::{TestApp, spawn_app};

fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("finchgate_session=") || c.starts_with("__Host-finchgate="))
        .map(str::to_owned)
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
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

async fn tenant_admin(app: &TestApp) -> crate::helpers::TestUser {
    let tenant = app.create_tenant("acme").await;
    app.create_user("admin@acme.test", Some(tenant)).await
}

#[tokio::test]
async fn the_login_page_answers() {
    let app = spawn_app().await;
    let root = app.get("/").await;
    assert_eq!(root.status(), 303);
    assert_eq!(root.headers()["location"], "/login");
    let response = app.get("/login").await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(body.contains("<form method=\"post\" action=\"/login\">"));
    let css = app.get("/static/app.css").await;
    assert_eq!(css.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn signing_in_rotates_the_session_id_and_the_old_one_is_dead() {
    let app = spawn_app().await;
    let user = tenant_admin(&app).await;
    let browser = app.new_browser();
    let page = browser
        .get(format!("{}/login", app.address))
        .send()
        .await
        .unwrap();
    let before = cookie_value(&session_cookie(&page).expect("GET /login starts a pre-session"));
    let csrf = crate::helpers::csrf_token_in(&page.text().await.unwrap());
    let response = browser
        .post(format!("{}/login", app.address))
        .form(&[
            ("email", user.email.as_str()),
            ("password", user.password.as_str()),
            ("csrf_token", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/t/acme/");
    let after = cookie_value(&session_cookie(&response).expect("a new cookie on sign-in"));
    assert_ne!(before, after, "the session id changes on sign-in");
    assert_eq!(
        get_with_cookie(&app, "/t/acme/", &after).await.status(),
        200
    );
    let replay = get_with_cookie(&app, "/t/acme/", &before).await;
    assert_eq!(
        replay.status(),
        303,
        "the pre-login cookie is not a session"
    );
    assert_eq!(replay.headers()["location"], "/login");
    app.stop().await;
}

#[tokio::test]
async fn signing_out_revokes_the_session_on_the_server() {
    let app = spawn_app().await;
    let user = tenant_admin(&app).await;
    let response = app
        .login_with(&app.client, &user.email, &user.password)
        .await;
    let cookie = cookie_value(&session_cookie(&response).unwrap());
    let csrf = app.csrf_of(&app.client, "/t/acme/").await;
    let out = app
        .client
        .post(format!("{}/logout", app.address))
        .form(&[("csrf_token", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    assert_eq!(out.headers()["location"], "/login");
    assert_eq!(
        get_with_cookie(&app, "/t/acme/", &cookie).await.headers()["location"],
        "/login"
    );
    app.stop().await;
}

#[tokio::test]
async fn unknown_email_and_wrong_password_get_byte_identical_answers() {
    let app = spawn_app().await;
    let user = tenant_admin(&app).await;
    let browser = app.new_browser();
    let csrf = app.csrf_of(&browser, "/login").await;
    let mut bodies = Vec::new();
    for (email, password) in [
        (user.email.as_str(), "wrong password"),
        ("nobody@acme.test", "wrong password"),
    ] {
        // Same email field value so the echoed form is the same: compare the pages for two emails
        // that differ only in existence by posting the same visible input.
        let response = browser
            .post(format!("{}/login", app.address))
            .form(&[
                ("email", email),
                ("password", password),
                ("csrf_token", csrf.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        bodies.push(response.text().await.unwrap().replace(email, "EMAIL"));
    }
    assert_eq!(bodies[0], bodies[1]);
    assert!(bodies[0].contains("did not match an active account"));
    app.stop().await;
}

#[tokio::test]
async fn repeated_failures_back_off_the_account_and_it_recovers_after_the_window() {
    let app = spawn_app().await;
    let user = tenant_admin(&app).await;
    // Failures from many "browsers"; the counter is per account, not per session.
    for _ in 0..8 {
        let browser = app.new_browser();
        assert_eq!(
            app.login_with(&browser, &user.email, "not it")
                .await
                .status(),
            401
        );
    }
    // Locked now: even the right password is refused, with the same generic answer.
    let locked = app
        .login_with(&app.new_browser(), &user.email, &user.password)
        .await;
    assert_eq!(locked.status(), 401);
    assert!(
        locked
            .text()
            .await
            .unwrap()
            .contains("did not match an active account")
    );
    // After the back-off window the right password works again.
    app.clock.advance(chrono::Duration::minutes(16));
    assert_eq!(
        app.login_with(&app.new_browser(), &user.email, &user.password)
            .await
            .status(),
        303
    );
    app.stop().await;
}

#[tokio::test]
async fn t26_fifty_spoofed_forwarded_for_addresses_count_as_the_one_real_peer() {
    let app = spawn_app().await;
    let user = tenant_admin(&app).await;
    let mut statuses = Vec::new();
    for n in 0..50 {
        let browser = app.new_browser();
        let csrf = app.csrf_of(&browser, "/login").await;
        let response = browser
            .post(format!("{}/login", app.address))
            .header("X-Forwarded-For", format!("203.0.113.{n}"))
            .header("X-Real-IP", format!("198.51.100.{n}"))
            .form(&[
                ("email", user.email.as_str()),
                ("password", "guess"),
                ("csrf_token", csrf.as_str()),
            ])
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert!(
            !body.contains("203.0.113") && !body.contains(&user.password),
            "the answer echoes nothing"
        );
        statuses.push(status);
    }
    // The per-IP limit is keyed on the TCP peer, whatever the headers claim: after 30 failures
    // every further attempt is throttled, as it would be from one address.
    assert!(statuses[..30].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[30..].iter().all(|s| *s == 429), "{statuses:?}");
    #[derive(diesel::QueryableByName)]
    struct Ips {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        spoofed: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        real: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        throttled: i64,
    }
    let mut conn = app.db.connect().await;
    let ips: Ips = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query(
            "SELECT count(*) FILTER (WHERE ip::text LIKE '203.0.113.%' OR ip::text LIKE '198.51.100.%') AS spoofed,
                    count(*) FILTER (WHERE ip::text LIKE '127.0.0.1%') AS real,
                    count(*) FILTER (WHERE action = 'login.throttled') AS throttled
               FROM audit_events WHERE action LIKE 'login.%'",
        ),
        &mut conn,
    )
    .await
    .unwrap();
    assert_eq!(ips.spoofed, 0, "a spoofed address is never recorded");
    // Issue 13, defect 6: the 20 throttled attempts of the window are one audit event.
    assert_eq!(ips.real, 31, "every audited attempt has the real peer");
    assert_eq!(ips.throttled, 1, "the lockout is logged, once per window");
    // The account's own back-off engaged too; the victim signs in after the windows pass.
    app.clock.advance(chrono::Duration::minutes(16));
    assert_eq!(
        app.login_with(&app.new_browser(), &user.email, &user.password)
            .await
            .status(),
        303
    );
    app.stop().await;
}

#[tokio::test]
async fn an_idle_session_expires_after_thirty_minutes() {
    let app = spawn_app().await;
    let user = tenant_admin(&app).await;
    app.login(&user).await;
    app.clock.advance(chrono::Duration::minutes(29));
    assert_eq!(
        app.get("/t/acme/").await.status(),
        200,
        "activity within the idle window keeps it"
    );
    app.clock.advance(chrono::Duration::minutes(31));
    let response = app.get("/t/acme/").await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/login");
    app.stop().await;
}

#[tokio::test]
async fn activity_moves_the_idle_expiry_in_steps_of_a_minute_and_never_past_thirty_minutes() {
    let app = spawn_app().await;
    let user = tenant_admin(&app).await;
    app.login(&user).await;
    let expiry = async || {
        crate::helpers::count(
            &app.db,
            "SELECT extract(epoch FROM max(expires_at))::bigint AS n FROM sessions",
        )
        .await
    };
    // The first page after signing in settles the session's state (its CSRF token).
    assert_eq!(app.get("/t/acme/").await.status(), 200);
    let first = expiry().await;
    app.clock.advance(chrono::Duration::seconds(40));
    assert_eq!(app.get("/t/acme/").await.status(), 200);
    assert_eq!(
        expiry().await,
        first,
        "moved by under a minute: not written"
    );
    app.clock.advance(chrono::Duration::seconds(40));
    assert_eq!(app.get("/t/acme/").await.status(), 200);
    let now = finchgate::clock::Clock::now(&*app.clock).timestamp();
    let written = expiry().await;
    assert!(
        (written - (now + 30 * 60)).abs() <= 2,
        "moved by 80 s: written, now + 30 min ({written} vs {now})"
    );
    app.stop().await;
}

#[tokio::test]
async fn no_session_outlives_twelve_hours_however_active() {
    let app = spawn_app().await;
    let user = tenant_admin(&app).await;
    app.login(&user).await;
    for _ in 0..(12 * 3 - 1) {
        app.clock.advance(chrono::Duration::minutes(20));
        assert_eq!(app.get("/t/acme/").await.status(), 200);
    }
    app.clock.advance(chrono::Duration::minutes(20));
    assert_eq!(app.get("/t/acme/").await.headers()["location"], "/login");
    app.stop().await;
}

#[tokio::test]
async fn disabling_a_user_ends_their_live_sessions() {
    use diesel_async::RunQueryDsl as _;
    let app = spawn_app().await;
    let user = tenant_admin(&app).await;
    app.login(&user).await;
    assert_eq!(app.get("/t/acme/").await.status(), 200);
    let mut conn = app.db.connect().await;
    diesel::sql_query(format!(
        "UPDATE users SET disabled_at = now() WHERE id = '{}'",
        user.id
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(app.get("/t/acme/").await.headers()["location"], "/login");
    app.stop().await;
}

#[tokio::test]
async fn state_changing_requests_without_a_valid_csrf_token_are_refused() {
    let app = spawn_app().await;
    let user = tenant_admin(&app).await;
    app.login(&user).await;
    let csrf = app.csrf_of(&app.client, "/t/acme/").await;
    let logout = format!("{}/logout", app.address);
    // No token.
    assert_eq!(
        app.client
            .post(&logout)
            .form(&[("x", "y")])
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    // Another session's token.
    let other = app.new_browser();
    let foreign = app.csrf_of(&other, "/login").await;
    assert_eq!(
        app.client
            .post(&logout)
            .form(&[("csrf_token", &foreign)])
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    // A valid token sent cross-site, or from a foreign origin.
    let cross = app
        .client
        .post(&logout)
        .header("sec-fetch-site", "cross-site")
        .form(&[("csrf_token", &csrf)]);
    assert_eq!(cross.send().await.unwrap().status(), 403);
    let evil = app
        .client
        .post(&logout)
        .header("origin", "https://evil.example")
        .form(&[("csrf_token", &csrf)]);
    assert_eq!(evil.send().await.unwrap().status(), 403);
    // The header form works for scripted requests; the form field for forms.
    assert_eq!(
        app.get("/t/acme/").await.status(),
        200,
        "still signed in after the refusals"
    );
    let ok = app
        .client
        .post(&logout)
        .header("x-csrf-token", &csrf)
        .header("origin", &app.address)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    app.stop().await;
}

#[tokio::test]
async fn the_login_form_itself_needs_its_pre_session_token() {
    let app = spawn_app().await;
    let user = tenant_admin(&app).await;
    let response = app
        .new_browser()
        .post(format!("{}/login", app.address))
        .form(&[
            ("email", user.email.as_str()),
            ("password", user.password.as_str()),
            ("csrf_token", "forged"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    app.stop().await;
}

#[tokio::test]
async fn the_session_cookie_is_http_only_lax_host_only() {
    let app = spawn_app().await;
    let response = app.get("/login").await;
    let cookie = session_cookie(&response).unwrap();
    let lower = cookie.to_lowercase();
    assert!(lower.contains("httponly"), "{cookie}");
    assert!(lower.contains("samesite=lax"), "{cookie}");
    assert!(lower.contains("path=/"), "{cookie}");
    assert!(!lower.contains("domain="), "{cookie}");
    app.stop().await;
}

#[tokio::test]
async fn under_https_the_cookie_is_secure_and_host_prefixed() {
    let app = crate::helpers::spawn_app_with(|s| {
        s.public_url = url::Url::parse("https://finchgate.example").unwrap()
    })
    .await;
    let response = app.get("/login").await;
    let cookie = session_cookie(&response).unwrap();
    assert!(cookie.starts_with("__Host-finchgate="), "{cookie}");
    assert!(cookie.to_lowercase().contains("secure"), "{cookie}");
    let hsts = response.headers()["strict-transport-security"]
        .to_str()
        .unwrap();
    assert!(hsts.contains("max-age=31536000") && hsts.contains("includeSubDomains"));
    app.stop().await;
}

#[tokio::test]
async fn security_headers_are_on_every_kind_of_response() {
    let app = spawn_app().await;
    let ok = app.get("/login").await;
    let redirect = app.get("/").await;
    let missing = app.get("/nope").await;
    app.db.drop_now().await;
    let unavailable = app.get("/readyz").await;
    for (name, response) in [
        ("200", &ok),
        ("303", &redirect),
        ("404", &missing),
        ("503", &unavailable),
    ] {
        let h = response.headers();
        let csp = h
            .get("content-security-policy")
            .unwrap_or_else(|| panic!("{name}: no CSP in {h:?}"))
            .to_str()
            .unwrap();
        for directive in [
            "frame-ancestors 'none'",
            "object-src 'none'",
            "base-uri 'none'",
            "default-src 'self'",
        ] {
            assert!(csp.contains(directive), "{name}: {csp}");
        }
        assert_eq!(h["x-content-type-options"], "nosniff", "{name}");
        assert_eq!(h["referrer-policy"], "same-origin", "{name}");
        assert!(
            h.get("strict-transport-security").is_none(),
            "no HSTS over plain http ({name})"
        );
    }
    assert_eq!(ok.headers()["cache-control"], "no-store");
    app.stop().await;
}

#[tokio::test]
async fn a_weaker_stored_hash_is_upgraded_on_sign_in() {
    use argon2::password_hash::PasswordHasher as _;
    use diesel_async::RunQueryDsl as _;
    let app = spawn_app().await;
    let user = tenant_admin(&app).await;
    let weak = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(8192, 1, 1, None).unwrap(),
    )
    .hash_password(user.password.as_bytes())
    .unwrap()
    .to_string();
    let mut conn = app.db.connect().await;
    diesel::sql_query(format!(
        "UPDATE users SET password_hash = '{weak}' WHERE id = '{}'",
        user.id
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    app.login(&user).await;
    #[derive(diesel::QueryableByName)]
    struct Hash {
        #[diesel(sql_type = diesel::sql_types::Text)]
        password_hash: String,
    }
    let stored: Hash = diesel::sql_query(format!(
        "SELECT password_hash FROM users WHERE id = '{}'",
        user.id
    ))
    .get_result(&mut conn)
    .await
    .unwrap();
    assert!(
        stored
            .password_hash
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{}",
        stored.password_hash
    );
    // And the password still works.
    assert_eq!(
        app.login_with(&app.new_browser(), &user.email, &user.password)
            .await
            .status(),
        303
    );
    app.stop().await;
}

#[tokio::test]
async fn every_sign_in_success_and_failure_is_audited_without_the_password() {
    use diesel_async::RunQueryDsl as _;
    let app = spawn_app().await;
    let user = tenant_admin(&app).await;
    assert_eq!(
        app.login_with(&app.new_browser(), &user.email, "sentinel-wrong-password")
            .await
            .status(),
        401
    );
    app.login(&user).await;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        action: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        everything: String,
    }
    let mut conn = app.db.connect().await;
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT action, row_to_json(a)::text AS everything FROM audit_events a ORDER BY occurred_at",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let actions: Vec<&str> = rows.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["login.failed", "login.succeeded"]);
    for row in &rows {
        assert!(
            !row.everything.contains("sentinel-wrong-password")
                && !row.everything.contains(&user.password)
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn t32_a_500_page_has_the_security_headers_a_reference_and_no_internals() {
    let app = spawn_app().await;
    app.setup_connect("acme").await;
    // A query the application role may no longer run: an internal error on a signed-in page.
    let mut superuser = app.db.connect().await;
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query("REVOKE SELECT ON redirect_uris FROM finchgate_app"),
        &mut superuser,
    )
    .await
    .unwrap();
    let response = app.get("/t/acme/settings").await;
    assert_eq!(response.status(), 500);
    let h = response.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("object-src 'none'"));
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "same-origin");
    assert_eq!(h["cache-control"], "no-store");
    let request_id = h["x-request-id"].to_str().unwrap().to_owned();
    let body = response.text().await.unwrap();
    assert!(body.contains("Something went wrong on our side"), "{body}");
    assert!(
        body.contains(&request_id),
        "the reference is the request id"
    );
    for internal in [
        "permission denied",
        "redirect_uris",
        "diesel",
        "panicked",
        "src/",
    ] {
        assert!(!body.contains(internal), "{internal} leaked: {body}");
    }
    app.stop().await;
}
