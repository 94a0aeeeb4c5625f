//! Accounts (issue 13): the account page, password change, sessions, two-factor sign-in (TOTP
//! with replay protection and ±1 step, recovery codes, back-off), required enrolment for
//! operators and, by a tenant setting, for its admins; reset links and clearing two-factor
//! (console and CLI).

use diesel::QueryableByName;
use diesel_async::RunQueryDsl as _;
use finchgate::auth::totp::{STEP_SECONDS, TotpSecret};
use finchgate::clock::Clock as _;
use secrecy::ExposeSecret as _;

use crate::helpers::{TestApp, TestUser, count, csrf_token_in, spawn_app};

/// A tenant with one admin (not enrolled); keys registered so enrolment can seal.
async fn tenant_admin(app: &TestApp, slug: &str) -> (uuid::Uuid, TestUser) {
    app.register_keys().await;
    let tenant = app.create_tenant(slug).await;
    let admin = app
        .create_user(&format!("admin@{slug}.test"), Some(tenant))
        .await;
    (tenant, admin)
}

async fn get(app: &TestApp, client: &reqwest::Client, path: &str) -> reqwest::Response {
    client
        .get(format!("{}{path}", app.address))
        .send()
        .await
        .unwrap()
}

/// POSTs `fields` to `path` with the CSRF token of `client`'s session (read from `page`).
async fn post(
    app: &TestApp,
    client: &reqwest::Client,
    page: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let csrf = app.csrf_of(client, page).await;
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    form.push(("csrf_token", &csrf));
    client
        .post(format!("{}{path}", app.address))
        .form(&form)
        .send()
        .await
        .unwrap()
}

fn location(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
}

fn step_now(app: &TestApp) -> i64 {
    app.clock.now().timestamp().div_euclid(STEP_SECONDS)
}

/// Enrols `client`'s signed-in user through the pages; returns the secret and recovery codes.
async fn enrol(app: &TestApp, client: &reqwest::Client) -> (TotpSecret, Vec<String>) {
    let page = get(app, client, "/account/two-factor").await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("<svg"), "the QR code is inline SVG");
    let shown = crate::helpers::data_attribute(&page, "totp-secret").unwrap();
    let secret = crate::helpers::secret_from_base32(&shown);
    let code = app.code_now(&secret);
    let confirmed = post(
        app,
        client,
        "/account/two-factor",
        "/account/two-factor",
        &[("action", "confirm"), ("code", &code)],
    )
    .await;
    assert_eq!(confirmed.status(), 200);
    let codes = crate::helpers::recovery_codes_in(&confirmed.text().await.unwrap());
    assert_eq!(codes.len(), 10);
    (secret, codes)
}

#[derive(QueryableByName)]
struct Hits {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

async fn audited(app: &TestApp, action: &str) -> i64 {
    let mut conn = app.db.connect().await;
    diesel::sql_query("SELECT count(*) AS n FROM audit_events WHERE action = $1")
        .bind::<diesel::sql_types::Text, _>(action)
        .get_result::<Hits>(&mut conn)
        .await
        .unwrap()
        .n
}

#[tokio::test]
async fn the_account_page_lists_my_sessions_marks_this_one_and_never_shows_a_session_key() {
    let app = spawn_app().await;
    let (_, admin) = tenant_admin(&app, "acme").await;
    let laptop = app.new_browser();
    let phone = app.new_browser();
    app.login_with(&laptop, &admin.email, &admin.password).await;
    app.login_with(&phone, &admin.email, &admin.password).await;
    let page = get(&app, &laptop, "/account").await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains(&admin.email) && page.contains("Tenant admin"));
    assert_eq!(page.matches("(this session)").count(), 1);
    assert_eq!(
        page.matches("/account/sessions/").count(),
        2,
        "one other session + revoke-others"
    );
    assert!(
        page.contains("href=\"/account\""),
        "the nav links the account page"
    );
    assert_eq!(
        count(&app.db, "SELECT count(*) AS n FROM sessions").await,
        2
    );
    app.stop().await;
}

#[tokio::test]
async fn a_password_change_ends_the_other_sessions_and_a_wrong_current_password_is_refused() {
    let app = spawn_app().await;
    let (_, admin) = tenant_admin(&app, "acme").await;
    let laptop = app.new_browser();
    let phone = app.new_browser();
    app.login_with(&laptop, &admin.email, &admin.password).await;
    app.login_with(&phone, &admin.email, &admin.password).await;

    let wrong = post(
        &app,
        &laptop,
        "/account",
        "/account/password",
        &[
            ("current_password", "not my password"),
            ("new_password", "a fresh passphrase 2026"),
            ("new_password_confirm", "a fresh passphrase 2026"),
        ],
    )
    .await;
    assert_eq!(wrong.status(), 303);
    let page = get(&app, &laptop, "/account").await.text().await.unwrap();
    assert!(page.contains("The current password is not right"), "{page}");
    assert_eq!(
        get(&app, &phone, "/account").await.status(),
        200,
        "nothing ended"
    );
    assert_eq!(audited(&app, "account.password_changed").await, 0);

    let weak = post(
        &app,
        &laptop,
        "/account",
        "/account/password",
        &[
            ("current_password", &admin.password),
            ("new_password", "password"),
            ("new_password_confirm", "password"),
        ],
    )
    .await;
    assert_eq!(weak.status(), 303);
    assert!(
        get(&app, &laptop, "/account")
            .await
            .text()
            .await
            .unwrap()
            .contains("commonly used")
    );

    let changed = post(
        &app,
        &laptop,
        "/account",
        "/account/password",
        &[
            ("current_password", &admin.password),
            ("new_password", "a fresh passphrase 2026"),
            ("new_password_confirm", "a fresh passphrase 2026"),
        ],
    )
    .await;
    assert_eq!(changed.status(), 303);
    let page = get(&app, &laptop, "/account").await.text().await.unwrap();
    assert!(
        page.contains("Your password was changed. 1 other session(s) ended."),
        "{page}"
    );
    let phone_home = get(&app, &phone, "/account").await;
    assert_eq!(
        location(&phone_home).as_deref(),
        Some("/login"),
        "the other session ended"
    );
    assert_eq!(audited(&app, "account.password_changed").await, 1);
    let old = app
        .login_with(&app.new_browser(), &admin.email, &admin.password)
        .await;
    assert_eq!(old.status(), 401, "the old password no longer works");
    let new = app
        .login_with(&app.new_browser(), &admin.email, "a fresh passphrase 2026")
        .await;
    assert_eq!(new.status(), 303);
    app.stop().await;
}

#[derive(QueryableByName)]
struct PublicId {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    public_id: uuid::Uuid,
}

async fn public_ids_of(app: &TestApp, user: uuid::Uuid) -> Vec<uuid::Uuid> {
    let mut conn = app.db.connect().await;
    diesel::sql_query("SELECT public_id FROM sessions WHERE user_id = $1 ORDER BY public_id")
        .bind::<diesel::sql_types::Uuid, _>(user)
        .load::<PublicId>(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.public_id)
        .collect()
}

#[tokio::test]
async fn revoking_another_users_session_is_a_404_and_mine_end_one_by_one_or_all_at_once() {
    let app = spawn_app().await;
    let (tenant, admin) = tenant_admin(&app, "acme").await;
    let other = app.create_user("other@acme.test", Some(tenant)).await;
    let mine = app.new_browser();
    let mine_too = app.new_browser();
    let mine_three = app.new_browser();
    let theirs = app.new_browser();
    for browser in [&mine, &mine_too, &mine_three] {
        app.login_with(browser, &admin.email, &admin.password).await;
    }
    app.login_with(&theirs, &other.email, &other.password).await;
    let their_session = public_ids_of(&app, other.id).await[0];

    let refused = post(
        &app,
        &mine,
        "/account",
        &format!("/account/sessions/{their_session}/revoke"),
        &[],
    )
    .await;
    assert_eq!(refused.status(), 404);
    assert_eq!(public_ids_of(&app, other.id).await, [their_session]);
    assert_eq!(get(&app, &theirs, "/account").await.status(), 200);
    for bad in ["not-a-uuid", "00000000-0000-0000-0000-000000000000"] {
        let response = post(
            &app,
            &mine,
            "/account",
            &format!("/account/sessions/{bad}/revoke"),
            &[],
        )
        .await;
        assert_eq!(response.status(), 404, "{bad}");
    }

    // One of mine: the page's own button.
    let page = get(&app, &mine, "/account").await.text().await.unwrap();
    let action = page
        .split("action=\"/account/sessions/")
        .nth(1)
        .and_then(|rest| rest.split_once("/revoke\""))
        .map(|(id, _)| id.to_owned())
        .unwrap();
    let ended = post(
        &app,
        &mine,
        "/account",
        &format!("/account/sessions/{action}/revoke"),
        &[],
    )
    .await;
    assert_eq!(ended.status(), 303);
    assert_eq!(public_ids_of(&app, admin.id).await.len(), 2);
    let ended = post(
        &app,
        &mine,
        "/account",
        "/account/sessions/revoke-others",
        &[],
    )
    .await;
    assert_eq!(ended.status(), 303);
    assert_eq!(
        public_ids_of(&app, admin.id).await.len(),
        1,
        "only this session is left"
    );
    assert_eq!(get(&app, &mine, "/account").await.status(), 200);
    assert_eq!(
        location(&get(&app, &mine_too, "/account").await).as_deref(),
        Some("/login")
    );
    assert_eq!(
        location(&get(&app, &mine_three, "/account").await).as_deref(),
        Some("/login")
    );
    assert_eq!(
        get(&app, &theirs, "/account").await.status(),
        200,
        "theirs untouched"
    );
    assert_eq!(audited(&app, "account.sessions_ended").await, 2);
    app.stop().await;
}

#[tokio::test]
async fn a_totp_code_is_accepted_once_within_one_step_of_skew() {
    let app = spawn_app().await;
    let (_, admin) = tenant_admin(&app, "acme").await;
    let browser = app.new_browser();
    app.login_with(&browser, &admin.email, &admin.password)
        .await;
    let (secret, _) = enrol(&app, &browser).await;
    let sign_in_with = async |code: &str| {
        let client = app.new_browser();
        let first = app
            .login_password_only(&client, &admin.email, &admin.password)
            .await;
        assert_eq!(location(&first).as_deref(), Some("/login/two-factor"));
        let second = app.submit_second_step(&client, code).await;
        second.status().as_u16()
    };
    // Each block starts at the beginning of a fresh step (the clock moved on to it), so real
    // time does not cross a step boundary within it.
    let step = align_to_a_fresh_step(&app);
    let now = secret.code_at_step(step).unwrap();
    assert_eq!(sign_in_with(&now).await, 303);
    assert_eq!(sign_in_with(&now).await, 401, "a replay in the same step");
    // Two steps away either side: refused.
    assert_eq!(
        sign_in_with(&secret.code_at_step(step - 2).unwrap()).await,
        401
    );
    assert_eq!(
        sign_in_with(&secret.code_at_step(step + 2).unwrap()).await,
        401
    );
    // One step ahead: accepted, once.
    let ahead = secret.code_at_step(step + 1).unwrap();
    assert_eq!(sign_in_with(&ahead).await, 303, "one step ahead");
    assert_eq!(sign_in_with(&ahead).await, 401, "the same code twice");
    // One step behind: accepted (well after the last accepted step).
    app.clock
        .advance(chrono::Duration::seconds(3 * STEP_SECONDS));
    let step = align_to_a_fresh_step(&app);
    let behind = secret.code_at_step(step - 1).unwrap();
    assert_eq!(sign_in_with(&behind).await, 303, "one step behind");
    // An older code than the last accepted one is refused even within the skew.
    let older = secret.code_at_step(step - 2).unwrap();
    assert_eq!(sign_in_with(&older).await, 401);
    app.stop().await;
}

/// Moves the app's clock to the start of the next TOTP step; returns that step.
fn align_to_a_fresh_step(app: &TestApp) -> i64 {
    let now = app.clock.now().timestamp();
    let into = now.rem_euclid(STEP_SECONDS);
    app.clock
        .advance(chrono::Duration::seconds(STEP_SECONDS - into));
    step_now(app)
}

#[tokio::test]
async fn the_half_signed_in_session_reaches_nothing_but_the_second_step() {
    let app = spawn_app().await;
    let (_, admin) = tenant_admin(&app, "acme").await;
    let browser = app.new_browser();
    app.login_with(&browser, &admin.email, &admin.password)
        .await;
    let (secret, _) = enrol(&app, &browser).await;
    let half = app.new_browser();
    let response = app
        .login_password_only(&half, &admin.email, &admin.password)
        .await;
    assert_eq!(location(&response).as_deref(), Some("/login/two-factor"));
    for path in ["/account", "/t/acme/", "/t/acme/settings", "/ops/tenants"] {
        assert_eq!(
            location(&get(&app, &half, path).await).as_deref(),
            Some("/login"),
            "{path}"
        );
    }
    let csrf = app.csrf_of(&half, "/login/two-factor").await;
    // The window closes after a few minutes.
    app.clock.advance(chrono::Duration::minutes(6));
    let code = app.code_now(&secret);
    let late = half
        .post(format!("{}/login/two-factor", app.address))
        .form(&[("code", code.as_str()), ("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&late).as_deref(), Some("/login"));
    app.stop().await;
}

#[tokio::test]
async fn a_recovery_code_works_once() {
    let app = spawn_app().await;
    let (_, admin) = tenant_admin(&app, "acme").await;
    let browser = app.new_browser();
    app.login_with(&browser, &admin.email, &admin.password)
        .await;
    let (_, codes) = enrol(&app, &browser).await;
    assert_eq!(
        count(
            &app.db,
            "SELECT count(*) AS n FROM recovery_codes WHERE used_at IS NULL"
        )
        .await,
        10
    );
    let first = app.new_browser();
    app.login_password_only(&first, &admin.email, &admin.password)
        .await;
    let signed_in = app
        .submit_second_step(&first, &codes[3].to_uppercase())
        .await;
    assert_eq!(
        signed_in.status(),
        303,
        "a recovery code signs in (any case)"
    );
    let page = get(&app, &first, "/t/acme/").await.text().await.unwrap();
    assert!(page.contains("9 recovery code(s) left"), "{page}");
    let again = app.new_browser();
    app.login_password_only(&again, &admin.email, &admin.password)
        .await;
    assert_eq!(
        app.submit_second_step(&again, &codes[3]).await.status(),
        401,
        "used up"
    );
    assert_eq!(
        app.submit_second_step(&again, &codes[4]).await.status(),
        303
    );
    app.stop().await;
}

#[tokio::test]
async fn wrong_codes_count_toward_the_same_back_off_as_wrong_passwords() {
    let app = spawn_app().await;
    let (_, admin) = tenant_admin(&app, "acme").await;
    let browser = app.new_browser();
    app.login_with(&browser, &admin.email, &admin.password)
        .await;
    let (secret, _) = enrol(&app, &browser).await;
    let attacker = app.new_browser();
    app.login_password_only(&attacker, &admin.email, &admin.password)
        .await;
    for _ in 0..finchgate::auth::login::FREE_ATTEMPTS {
        assert_eq!(
            app.submit_second_step(&attacker, "000000").await.status(),
            401
        );
    }
    // Now locked: even the right code is refused, and a correct password does not reset it.
    let right = secret.code_at_step(step_now(&app) + 1).unwrap();
    assert_eq!(
        app.submit_second_step(&attacker, &right).await.status(),
        429
    );
    let locked = app
        .login_password_only(&app.new_browser(), &admin.email, &admin.password)
        .await;
    assert_eq!(locked.status(), 401, "the password step is in back-off too");
    assert!(audited(&app, "login.failed").await >= 5);
    // After the back-off, the right code works.
    app.clock.advance(chrono::Duration::seconds(STEP_SECONDS));
    let later = app.new_browser();
    app.login_password_only(&later, &admin.email, &admin.password)
        .await;
    let code = app.code_now(&secret);
    assert_eq!(app.submit_second_step(&later, &code).await.status(), 303);
    app.stop().await;
}

#[tokio::test]
async fn an_operator_without_two_factor_reaches_only_the_account_pages() {
    let app = spawn_app().await;
    app.register_keys().await;
    let operator = app
        .create_user_without_two_factor("ops@platform.test", None)
        .await;
    let browser = app.new_browser();
    let signed_in = app
        .login_with(&browser, &operator.email, &operator.password)
        .await;
    assert_eq!(location(&signed_in).as_deref(), Some("/account"));
    for path in ["/ops/tenants", "/ops/exchanges", "/ops"] {
        assert_eq!(
            location(&get(&app, &browser, path).await).as_deref(),
            Some("/account"),
            "{path}"
        );
    }
    let created = post(
        &app,
        &browser,
        "/account",
        "/ops/tenants",
        &[("slug", "nope"), ("name", "Nope")],
    )
    .await;
    assert_eq!(location(&created).as_deref(), Some("/account"));
    assert_eq!(count(&app.db, "SELECT count(*) AS n FROM tenants").await, 0);
    let page = get(&app, &browser, "/account").await.text().await.unwrap();
    assert!(page.contains("Set up two-factor sign-in before you continue"));
    enrol(&app, &browser).await;
    assert_eq!(get(&app, &browser, "/ops/tenants").await.status(), 200);
    // Operators cannot turn it off.
    let off = post(
        &app,
        &browser,
        "/account/two-factor",
        "/account/two-factor",
        &[
            ("action", "disable"),
            ("password", &operator.password),
            ("code", "123456"),
        ],
    )
    .await;
    assert_eq!(off.status(), 400);
    app.stop().await;
}

#[tokio::test]
async fn the_tenant_setting_requires_two_factor_of_its_admins_and_is_audited() {
    let app = spawn_app().await;
    let (tenant, admin) = tenant_admin(&app, "acme").await;
    let colleague = app.create_user("colleague@acme.test", Some(tenant)).await;
    let browser = app.new_browser();
    app.login_with(&browser, &admin.email, &admin.password)
        .await;
    // Not before the admin has it themselves.
    let early = post(
        &app,
        &browser,
        "/t/acme/settings",
        "/t/acme/settings/two-factor",
        &[("required", "on")],
    )
    .await;
    assert_eq!(early.status(), 303);
    assert_eq!(
        count(
            &app.db,
            "SELECT count(*) AS n FROM tenants WHERE require_two_factor"
        )
        .await,
        0
    );
    enrol(&app, &browser).await;
    let on = post(
        &app,
        &browser,
        "/t/acme/settings",
        "/t/acme/settings/two-factor",
        &[("required", "on")],
    )
    .await;
    assert_eq!(on.status(), 303);
    assert_eq!(
        count(
            &app.db,
            "SELECT count(*) AS n FROM tenants WHERE require_two_factor"
        )
        .await,
        1
    );
    assert_eq!(
        audited(&app, "tenant.two_factor_requirement_changed").await,
        1
    );
    let page = get(&app, &browser, "/t/acme/settings")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("name=\"required\" value=\"on\" checked"));

    let other = app.new_browser();
    let signed_in = app
        .login_with(&other, &colleague.email, &colleague.password)
        .await;
    assert_eq!(location(&signed_in).as_deref(), Some("/account"));
    assert_eq!(
        location(&get(&app, &other, "/t/acme/").await).as_deref(),
        Some("/account")
    );
    assert_eq!(get(&app, &other, "/account/two-factor").await.status(), 200);
    enrol(&app, &other).await;
    assert_eq!(get(&app, &other, "/t/acme/").await.status(), 200);

    let off = post(
        &app,
        &browser,
        "/t/acme/settings",
        "/t/acme/settings/two-factor",
        &[],
    )
    .await;
    assert_eq!(off.status(), 303);
    assert_eq!(
        audited(&app, "tenant.two_factor_requirement_changed").await,
        2
    );
    app.stop().await;
}

#[tokio::test]
async fn an_admin_turns_two_factor_off_with_password_and_code() {
    let app = spawn_app().await;
    let (_, admin) = tenant_admin(&app, "acme").await;
    let browser = app.new_browser();
    app.login_with(&browser, &admin.email, &admin.password)
        .await;
    let (secret, _) = enrol(&app, &browser).await;
    app.clock.advance(chrono::Duration::seconds(STEP_SECONDS));
    let code = app.code_now(&secret);
    let wrong = post(
        &app,
        &browser,
        "/account/two-factor",
        "/account/two-factor",
        &[
            ("action", "disable"),
            ("password", "nope nope nope"),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(wrong.status(), 400);
    let off = post(
        &app,
        &browser,
        "/account/two-factor",
        "/account/two-factor",
        &[
            ("action", "disable"),
            ("password", &admin.password),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(off.status(), 303);
    assert_eq!(
        count(&app.db, "SELECT count(*) AS n FROM user_totp").await,
        0
    );
    assert_eq!(
        count(&app.db, "SELECT count(*) AS n FROM recovery_codes").await,
        0
    );
    assert_eq!(audited(&app, "two_factor.disabled").await, 1);
    let plain = app
        .login_password_only(&app.new_browser(), &admin.email, &admin.password)
        .await;
    assert_eq!(location(&plain).as_deref(), Some("/t/acme/"));
    app.stop().await;
}

/// The one-time link an operator's console page shows.
fn reset_link_in(html: &str) -> String {
    html.split_once("id=\"reset-link\"")
        .and_then(|(_, rest)| rest.split_once("value=\""))
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(link, _)| crate::helpers::html_unescape(link))
        .expect("the reset link is shown")
}

#[tokio::test]
async fn a_reset_link_ends_the_sessions_works_once_and_expires() {
    let app = spawn_app().await;
    let (_, admin) = tenant_admin(&app, "acme").await;
    let operator = app.create_user("ops@platform.test", None).await;
    let console = app.new_browser();
    app.login_with(&console, &operator.email, &operator.password)
        .await;
    let victim = app.new_browser();
    app.login_with(&victim, &admin.email, &admin.password).await;

    let tenant_page = get(&app, &console, "/ops/tenants/acme")
        .await
        .text()
        .await
        .unwrap();
    assert!(tenant_page.contains(&format!("/ops/tenants/acme/users/{}/reset-link", admin.id)));
    let issued = post(
        &app,
        &console,
        "/ops/tenants/acme",
        &format!("/ops/tenants/acme/users/{}/reset-link", admin.id),
        &[],
    )
    .await;
    assert_eq!(issued.status(), 200);
    let link = reset_link_in(&issued.text().await.unwrap());
    assert!(
        link.starts_with(&format!("{}/reset/", app.address)),
        "{link}"
    );
    assert_eq!(
        location(&get(&app, &victim, "/account").await).as_deref(),
        Some("/login"),
        "sessions ended"
    );
    assert_eq!(audited(&app, "password_reset.issued").await, 1);
    let token = link.rsplit('/').next().unwrap().to_owned();
    crate::helpers::assert_nowhere_in_database(&app.db, &token).await;

    let path = format!("/reset/{token}");
    let browser = app.new_browser();
    assert_eq!(get(&app, &browser, &path).await.status(), 200);
    let used = post(
        &app,
        &browser,
        &path,
        &path,
        &[
            ("password", "reset passphrase 2026"),
            ("password_confirm", "reset passphrase 2026"),
        ],
    )
    .await;
    assert_eq!(used.status(), 200);
    assert_eq!(get(&app, &browser, &path).await.status(), 404, "single use");
    let again = browser
        .post(format!("{}{path}", app.address))
        .form(&[
            ("password", "another passphrase 99"),
            ("password_confirm", "another passphrase 99"),
            (
                "csrf_token",
                &csrf_token_in(&get(&app, &browser, "/login").await.text().await.unwrap()),
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
    let signed_in = app
        .login_with(&app.new_browser(), &admin.email, "reset passphrase 2026")
        .await;
    assert_eq!(signed_in.status(), 303);
    assert_eq!(audited(&app, "password_reset.used").await, 1);

    // An expired link is refused.
    let issued = post(
        &app,
        &console,
        "/ops/tenants/acme",
        &format!("/ops/tenants/acme/users/{}/reset-link", admin.id),
        &[],
    )
    .await;
    let link = reset_link_in(&issued.text().await.unwrap());
    let token = link.rsplit('/').next().unwrap().to_owned();
    app.clock.advance(chrono::Duration::hours(25));
    assert_eq!(
        get(&app, &app.new_browser(), &format!("/reset/{token}"))
            .await
            .status(),
        404
    );
    app.stop().await;
}

#[tokio::test]
async fn clearing_a_users_two_factor_is_an_audited_operator_action() {
    let app = spawn_app().await;
    let (_, admin) = tenant_admin(&app, "acme").await;
    let browser = app.new_browser();
    app.login_with(&browser, &admin.email, &admin.password)
        .await;
    enrol(&app, &browser).await;
    let operator = app.create_user("ops@platform.test", None).await;
    let console = app.new_browser();
    app.login_with(&console, &operator.email, &operator.password)
        .await;
    let page = get(&app, &console, "/ops/tenants/acme")
        .await
        .text()
        .await
        .unwrap();
    let action = format!("/ops/tenants/acme/users/{}/clear-two-factor", admin.id);
    assert!(page.contains(&action));
    let cleared = post(&app, &console, "/ops/tenants/acme", &action, &[]).await;
    assert_eq!(cleared.status(), 303);
    assert_eq!(
        count(
            &app.db,
            "SELECT count(*) AS n FROM user_totp WHERE tenant_id IS NOT NULL"
        )
        .await,
        0
    );
    assert_eq!(audited(&app, "two_factor.cleared").await, 1);
    let plain = app
        .login_password_only(&app.new_browser(), &admin.email, &admin.password)
        .await;
    assert_eq!(
        location(&plain).as_deref(),
        Some("/t/acme/"),
        "no second step any more"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_cli_issues_reset_links_and_clears_two_factor() {
    let app = spawn_app().await;
    let (_, admin) = tenant_admin(&app, "acme").await;
    app.enrol_two_factor(admin.id, None).await;
    let url = app.db.url.expose_secret().to_owned();
    let browser = app.new_browser();
    app.login_with(&browser, &admin.email, &admin.password)
        .await;
    let reset = crate::ops::finchgate(
        &["user", "reset", "--email", "Admin@Acme.test"],
        &[
            ("DATABASE_URL", url.as_str()),
            ("FINCHGATE_PUBLIC_URL", app.address.as_str()),
        ],
        None,
    )
    .await;
    assert_eq!(reset.code, 0, "{:#?}", reset.stderr_lines);
    let lines: Vec<&str> = reset.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "just the link on stdout");
    assert!(lines[0].starts_with(&format!("{}/reset/", app.address)));
    assert_eq!(
        location(&get(&app, &browser, "/account").await).as_deref(),
        Some("/login")
    );
    let token = lines[0].rsplit('/').next().unwrap();
    assert!(reset.stderr_lines.iter().all(|l| !l.contains(token)));
    assert_eq!(
        get(&app, &app.new_browser(), &format!("/reset/{token}"))
            .await
            .status(),
        200
    );

    let cleared = crate::ops::finchgate(
        &["user", "clear-two-factor", "--email", "admin@acme.test"],
        &[("DATABASE_URL", url.as_str())],
        None,
    )
    .await;
    assert_eq!(cleared.code, 0, "{:#?}", cleared.stderr_lines);
    assert!(cleared.stdout.contains("Cleared two-factor sign-in"));
    assert_eq!(
        count(&app.db, "SELECT count(*) AS n FROM user_totp").await,
        0
    );
    assert_eq!(audited(&app, "two_factor.cleared").await, 1);
    let unknown = crate::ops::finchgate(
        &["user", "reset", "--email", "nobody@acme.test"],
        &[
            ("DATABASE_URL", url.as_str()),
            ("FINCHGATE_PUBLIC_URL", app.address.as_str()),
        ],
        None,
    )
    .await;
    assert_ne!(unknown.code, 0);
    app.stop().await;
}

/// `keys rotate` re-wraps two-factor secrets like the other envelopes (an admin's, bound to their
/// tenant, and an operator's, bound to no tenant), `keys status` counts them, `keys retire`
/// refuses the old key while one still seals a secret and retires it once rotated, and both
/// people still sign in with a code from the authenticator they enrolled before the rotation.
#[tokio::test]
async fn key_rotation_re_wraps_two_factor_secrets_and_their_owners_still_sign_in_with_a_code() {
    let k1 = crate::helpers::random_master_keys("k1");
    let k2 = crate::helpers::random_master_keys("k2");
    let both = format!("{k1},{k2}");
    // The server keeps k1 active throughout (it seals under k1, opens under either); the CLI
    // runs with k2 active, as an operator rotating to a newly appended key would.
    let app = crate::helpers::spawn_app_with(|settings| {
        settings.keyring = finchgate::config::parse_keyring(Some(&both), Some("k1")).unwrap();
    })
    .await;
    let (_, admin) = tenant_admin(&app, "acme").await;
    let browser = app.new_browser();
    app.login_with(&browser, &admin.email, &admin.password)
        .await;
    let (secret, _) = enrol(&app, &browser).await;
    let operator = app.create_user("ops@finchgate.test", None).await;
    let under = async |kek_id: &str| {
        count(
            &app.db,
            &format!("SELECT count(*) AS n FROM user_totp WHERE secret_kek_id = '{kek_id}'"),
        )
        .await
    };
    assert_eq!((under("k1").await, under("k2").await), (2, 0));
    let url = app.db.url.expose_secret().to_owned();
    let keys = async |args: &[&str]| {
        crate::ops::finchgate(
            args,
            &[
                ("DATABASE_URL", url.as_str()),
                ("FINCHGATE_MASTER_KEYS", both.as_str()),
            ],
            None,
        )
        .await
    };

    let status = keys(&["keys", "status"]).await;
    assert_eq!(status.code, 0, "{:#?}", status.stderr_lines);
    let header: Vec<&str> = status
        .stdout
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(header.last(), Some(&"user_totp"), "{}", status.stdout);
    assert_eq!(
        crate::keys::status_line(&status.stdout, "k1")
            .last()
            .map(String::as_str),
        Some("2"),
        "{}",
        status.stdout
    );
    assert!(
        status
            .stdout
            .contains("2 stored secret(s) are under keys other than the active key \"k2\""),
        "{}",
        status.stdout
    );

    let refused = keys(&["keys", "retire", "k1"]).await;
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr_lines.iter().any(|l| l
            == "finchgate: refusing to retire key \"k1\": 0 finch_credentials row(s), 0 connection_tokens row(s) and 2 user_totp row(s) still use it; run `finchgate keys rotate` first"),
        "{:#?}",
        refused.stderr_lines
    );

    let rotated = keys(&["keys", "rotate"]).await;
    assert_eq!(rotated.code, 0, "{:#?}", rotated.stderr_lines);
    assert!(
        rotated.stdout.contains("Re-wrapped 2 row(s) to key \"k2\"")
            && rotated.stdout.contains("2 user_totp"),
        "{}",
        rotated.stdout
    );
    assert_eq!((under("k1").await, under("k2").await), (0, 2));
    assert_eq!(
        count(
            &app.db,
            "SELECT count(*) AS n FROM audit_events
              WHERE action = 'keys.rotated' AND (details->'rewrapped'->>'user_totp')::bigint = 2"
        )
        .await,
        1
    );
    let status = keys(&["keys", "status"]).await;
    assert_eq!(
        crate::keys::status_line(&status.stdout, "k2")
            .last()
            .map(String::as_str),
        Some("2"),
        "{}",
        status.stdout
    );

    // The admin signs in with a code from the authenticator enrolled under k1; the operator too
    // (a secret bound to no tenant).
    let client = app.new_browser();
    let first = app
        .login_password_only(&client, &admin.email, &admin.password)
        .await;
    assert_eq!(location(&first).as_deref(), Some("/login/two-factor"));
    let step = align_to_a_fresh_step(&app);
    let second = app
        .submit_second_step(&client, &secret.code_at_step(step).unwrap())
        .await;
    assert_eq!(second.status(), 303, "the admin signs in with a code");
    assert_eq!(get(&app, &client, "/account").await.status(), 200);
    let ops = app.new_browser();
    let signed_in = app
        .login_with(&ops, &operator.email, &operator.password)
        .await;
    assert_eq!(signed_in.status(), 303, "the operator signs in with a code");
    assert_eq!(get(&app, &ops, "/account").await.status(), 200);

    let retired = keys(&["keys", "retire", "k1"]).await;
    assert_eq!(retired.code, 0, "{:#?}", retired.stderr_lines);
    assert_eq!(
        count(
            &app.db,
            "SELECT count(*) AS n FROM keyring WHERE kek_id = 'k1' AND retired_at IS NOT NULL"
        )
        .await,
        1
    );
    app.stop().await;
}
