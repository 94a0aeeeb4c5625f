//! End to end in a real browser: headless Chromium driven through chromedriver (WebDriver, with
//! fantoccini) against the real server and the Finch emulator on loopback ports. Each scenario
//! saves screenshots under `target/e2e/`.
//!
//! The browsers move as people do: each opens `/login` (or a message with a setup link in it) and
//! reaches every other page by clicking a link or a button, Finch Connect included (finchgate's
//! button sends the browser there). [`browser::Browser`] refuses any other typed address.
//!
//! Needs the Debian packages `chromium` and `chromium-driver` (`.ci/run` installs them); without
//! them these tests fail, they do not skip. Scenarios run one at a time (a browser is two
//! processes and the machine may have two cores).
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test should fail loudly at the line that broke"
)]

#[path = "../api/helpers.rs"]
#[expect(
    dead_code,
    reason = "shared with the api tests; these tests use part of it"
)]
mod helpers;

mod browser;

use finchgate::sandbox::{Endpoint, Fault, FaultKind, SandboxApp};
use secrecy::SecretString;

use browser::{Browser, Driver};
use helpers::{TestApp, connection_id_from, spawn_app_with_vault};

/// One scenario at a time.
static ONE_BROWSER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A tenant with credentials and its callback whitelisted, its admin signed in in `browser`.
async fn connected_tenant_admin(app: &TestApp, driver: &Driver, scenario: &'static str) -> Browser {
    let setup = app.setup_connect(scenario).await;
    let browser = driver.browser(scenario, app).await;
    browser
        .sign_in(
            &format!("admin@{}.test", setup.slug),
            &admin_password(app, &setup.slug).await,
        )
        .await;
    browser
}

/// `setup_connect` creates the admin with a random password; give it a known one.
async fn admin_password(app: &TestApp, slug: &str) -> String {
    let password = format!("e2e password for {slug}");
    let hash = finchgate::auth::password::PasswordHasher::new(1)
        .hash(&SecretString::from(password.clone()))
        .await
        .unwrap();
    let mut conn = app.db.connect().await;
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query("UPDATE users SET password_hash = $1 WHERE email = $2")
            .bind::<diesel::sql_types::Text, _>(&hash)
            .bind::<diesel::sql_types::Text, _>(format!("admin@{slug}.test")),
        &mut conn,
    )
    .await
    .unwrap();
    password
}

/// Opens the connect form from the menu and starts a redirect flow; the browser ends on Finch's
/// authorize page.
async fn start_redirect_flow(browser: &Browser, app: &TestApp) {
    browser.click_link("Connect").await;
    browser.wait_for_text("id=\"connect-form\"").await;
    browser.click("#flow-redirect").await;
    browser.shot("connect-form").await;
    browser.click("#start-connect").await;
    browser.wait_for_text("Connect your payroll provider").await;
    assert!(
        browser
            .url()
            .await
            .starts_with(app.sandbox.base_url().as_str()),
        "at Finch Connect (the emulator)"
    );
    browser.shot("finch-connect").await;
}

#[tokio::test]
async fn an_operator_sets_up_a_tenant_whose_admin_configures_finch() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let (app, _vault) = spawn_app_with_vault().await;
    let driver = Driver::start().await;
    let operator = app.create_user("ops@platform.test", None).await;
    let ops = driver.browser("setup-operator", &app).await;
    let code = app.code_now(&app.two_factor_secret_of(&operator.email).await.unwrap());
    ops.sign_in_with_code(&operator.email, &operator.password, &code)
        .await;

    // The operator creates the tenant and invites its first admin.
    ops.click_link("Tenants").await;
    ops.wait_for_url("/ops/tenants").await;
    ops.fill("#slug", "globex").await;
    ops.fill("#name", "Globex Corporation").await;
    ops.shot("create-tenant").await;
    ops.click("form[action='/ops/tenants'] button[type=submit]")
        .await;
    ops.wait_for_text("Globex Corporation").await;
    // Creating it shows its page; the operator finds it again from the list of tenants.
    ops.click_link("Tenants").await;
    ops.wait_for_text("<h1>Tenants</h1>").await;
    ops.click("a[href='/ops/tenants/globex']").await;
    ops.wait_for_url("/ops/tenants/globex").await;
    ops.fill("#email", "hank@globex.test").await;
    ops.click("form[action='/ops/tenants/globex/invite'] button[type=submit]")
        .await;
    ops.wait_for_text("setup-link").await;
    ops.shot("setup-link").await;
    let link = ops
        .value("#setup-link")
        .await
        .expect("the setup link is shown");
    assert!(link.contains("/invite/"), "{link}");

    // The operator sends the link; the admin clicks it in the message, in their own browser, and
    // sets a password.
    let admin = driver.browser("setup-admin", &app).await;
    admin
        .open_message("Your finchgate setup link, from the operators:", &link)
        .await;
    admin.click("#message-link").await;
    admin.wait_for_url("/invite/").await;
    admin
        .fill("#password", "correct horse battery staple 7")
        .await;
    admin
        .fill("#password_confirm", "correct horse battery staple 7")
        .await;
    admin.shot("set-password").await;
    admin.click("button[type=submit]").await;
    admin.wait_for_text("Sign out").await;

    // Finch credentials, checked with "Test credentials", and the callback URL.
    let secret = "globex-finch-secret-0123456789";
    app.sandbox.register_app(SandboxApp {
        client_id: "globex-client".to_owned(),
        client_secret: SecretString::from(secret.to_owned()),
    });
    admin.click_link("Settings").await;
    admin.wait_for_url("/t/globex/settings").await;
    admin.fill("#client_id", "globex-client").await;
    admin.fill("#client_secret", secret).await;
    admin.shot("credentials").await;
    admin
        .click("form[action='/t/globex/settings/finch'] button[type=submit]")
        .await;
    admin.wait_for_text("••••6789").await;
    admin
        .click("form[action='/t/globex/settings/finch/test'] button[type=submit]")
        .await;
    admin
        .wait_for_text("Finch accepted these credentials.")
        .await;
    admin.shot("credentials-tested").await;
    admin
        .click("form[action='/t/globex/settings/redirect-uris'] button[type=submit]")
        .await;
    let callback = format!("{}/t/globex/finch/callback", app.address);
    admin
        .wait_for_text(&format!("<code class=\"uri\">{callback}</code>"))
        .await;
    admin.shot("redirect-uri").await;
    let page = admin.page().await;
    assert!(!page.contains(secret), "the secret is never shown again");

    ops.close().await;
    admin.close().await;
    app.stop().await;
}

#[tokio::test]
async fn an_admin_connects_through_the_redirect_flow_then_refreshes_reconnects_and_disconnects() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let (app, _vault) = spawn_app_with_vault().await;
    let driver = Driver::start().await;
    let browser = connected_tenant_admin(&app, &driver, "redirect").await;

    start_redirect_flow(&browser, &app).await;
    browser.click("#approve").await;
    browser.wait_for_url("/connections/").await;
    browser.wait_for_text("active").await;
    let url = browser.url().await;
    assert!(
        !url.contains("code=") && !url.contains("state="),
        "a clean address after the callback: {url}"
    );
    browser.shot("connected").await;

    browser.click("#refresh").await;
    browser
        .wait_for_text("reports this connection as active")
        .await;
    browser.shot("refreshed").await;

    // Reconnect through the redirect flow.
    browser
        .select_index("select[name=redirect_uri_id]", 1)
        .await;
    browser.click("#reconnect").await;
    browser
        .wait_for_text("Reconnect your payroll provider")
        .await;
    browser.shot("reconnect-at-finch").await;
    browser.click("#approve").await;
    browser.wait_for_url("/connections/").await;
    browser.wait_for_text("active").await;
    browser.shot("reconnected").await;
    assert_eq!(app.sandbox.count("POST", "/auth/token"), 2);

    browser.click("#disconnect").await;
    browser.wait_for_text("disconnected").await;
    browser.shot("disconnected").await;
    assert_eq!(app.sandbox.count("POST", "/disconnect"), 1);

    browser.close().await;
    app.stop().await;
}

#[tokio::test]
async fn an_admin_connects_through_the_embedded_flow() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let (app, _vault) = spawn_app_with_vault().await;
    let driver = Driver::start().await;
    let browser = connected_tenant_admin(&app, &driver, "embedded").await;

    browser.click_link("Connect").await;
    browser.wait_for_text("id=\"connect-form\"").await;
    browser.click("#flow-embedded").await;
    browser.click("#start-connect").await;
    browser.wait_for_text("embedded-connect").await;
    // Connect opens in an iframe served by the emulator (Finch's origin).
    browser.wait_for_text("<iframe").await;
    browser.shot("embedded-connect").await;
    browser.enter_frame("iframe").await;
    browser.wait_for_text("Connect your payroll provider").await;
    browser.click("#approve").await;
    browser.leave_frame().await;
    browser.wait_for_url("/connections/").await;
    browser.wait_for_text("active").await;
    browser.shot("connected").await;
    assert_eq!(app.sandbox.count("POST", "/auth/token"), 1);

    browser.close().await;
    app.stop().await;
}

#[tokio::test]
async fn a_denied_connection_and_a_failed_exchange_each_show_a_page_to_act_on() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let (app, _vault) = spawn_app_with_vault().await;
    let driver = Driver::start().await;
    let browser = connected_tenant_admin(&app, &driver, "failures").await;

    // The payroll administrator denies access at Finch.
    start_redirect_flow(&browser, &app).await;
    browser.click("#deny").await;
    browser.wait_for_text("The connection was cancelled").await;
    browser
        .wait_for_text("Start again when the payroll administrator is ready to approve.")
        .await;
    browser.shot("denied").await;
    assert_eq!(app.sandbox.count("POST", "/auth/token"), 0);

    // Finch fails the exchange with a server error.
    app.sandbox.inject(
        Fault::new(FaultKind::ServerError {
            status: Default::default(),
        })
        .on(Endpoint::AuthToken),
    );
    start_redirect_flow(&browser, &app).await;
    browser.click("#approve").await;
    browser.wait_for_text("Finch had a problem").await;
    browser.wait_for_text("Try again later").await;
    browser.shot("exchange-failed").await;
    assert_eq!(app.sandbox.count("POST", "/auth/token"), 1);
    browser.close().await;

    // An operator finds both failures in the console, filters, opens one and resolves it.
    let operator = app.create_user("ops@platform.test", None).await;
    let ops = driver.browser("failures-operator", &app).await;
    let code = app.code_now(&app.two_factor_secret_of(&operator.email).await.unwrap());
    ops.sign_in_with_code(&operator.email, &operator.password, &code)
        .await;
    ops.click_link("Exchanges").await;
    ops.wait_for_text("user_denied").await;
    ops.wait_for_text("finch_server_error").await;
    ops.shot("console").await;
    ops.fill("input[name=tenant]", "failures").await;
    ops.select_value("select[name=category]", "finch_server_error")
        .await;
    ops.click("form.filters button[type=submit]").await;
    ops.wait_for_url("category=finch_server_error").await;
    let rows = ops.texts("table.ledger tbody tr").await;
    assert_eq!(rows.len(), 1, "only the failed exchange matches");
    assert!(rows[0].contains("finch_server_error"));
    ops.shot("console-filtered").await;
    ops.click("table.ledger tbody tr td a").await;
    ops.wait_for_text("Finch had a problem").await;
    ops.shot("attempt").await;
    ops.fill("#note", "Finch had an outage; the tenant connected again.")
        .await;
    ops.click("button[name=action][value=resolve]").await;
    ops.wait_for_text("resolved").await;
    ops.shot("resolved").await;
    let mut conn = app.db.connect().await;
    #[derive(diesel::QueryableByName)]
    struct Review {
        #[diesel(sql_type = diesel::sql_types::Text)]
        review_state: String,
    }
    let states: Vec<Review> = diesel_async::RunQueryDsl::load(
        diesel::sql_query(
            "SELECT review_state FROM exchange_attempts WHERE category = 'finch_server_error'",
        ),
        &mut conn,
    )
    .await
    .unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].review_state, "resolved");
    ops.close().await;
    app.stop().await;
}

#[tokio::test]
async fn an_admin_opens_a_connection_from_the_list_and_refreshes_it() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let (app, _vault) = spawn_app_with_vault().await;
    let driver = Driver::start().await;
    // A connection made earlier (through the emulator, outside this browser).
    let setup = app.setup_connect("listed").await;
    let url = app.redirect_callback_url(&app.client, &setup).await;
    let done = app.client.get(url.as_str()).send().await.unwrap();
    assert_eq!(done.status(), 303, "the flow completes");
    let connection = connection_id_from(done.headers()["location"].to_str().unwrap());

    let browser = driver.browser("listed", &app).await;
    browser
        .sign_in(
            "admin@listed.test",
            &admin_password(&app, &setup.slug).await,
        )
        .await;
    browser.wait_for_text("gusto").await;
    browser.shot("connections").await;
    browser
        .click(&format!("a[href='/t/listed/connections/{connection}']"))
        .await;
    browser
        .wait_for_url(&format!("/t/listed/connections/{connection}"))
        .await;
    browser.wait_for_text("Refresh status").await;
    browser.shot("connection").await;

    browser.click("#refresh").await;
    browser
        .wait_for_text("Finch reports this connection as active.")
        .await;
    assert_eq!(
        browser.texts("p.flash.ok").await,
        ["Finch reports this connection as active."],
        "the flash names the status"
    );
    browser.shot("refreshed").await;

    // And back to the list, by the link on the connection's page.
    browser.click("p.status a").await;
    browser.wait_for_text("Connected since").await;
    assert!(browser.url().await.ends_with("/t/listed/"));
    browser.close().await;
    app.stop().await;
}

#[tokio::test]
async fn an_operator_enrols_in_two_factor_and_signs_in_with_a_code_then_a_recovery_code() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let (app, _vault) = spawn_app_with_vault().await;
    let driver = Driver::start().await;
    let operator = app
        .create_user_without_two_factor("ops@enrol.test", None)
        .await;
    let ops = driver.browser("two-factor-operator", &app).await;
    ops.sign_in(&operator.email, &operator.password).await;

    // Not enrolled: the account page asks for it, and the console is out of reach.
    ops.wait_for_text("Set up two-factor sign-in before you continue")
        .await;
    ops.shot("must-enrol").await;
    ops.click_link("Set up two-factor sign-in").await;
    ops.wait_for_text("Add finchgate to your authenticator app")
        .await;
    assert!(
        ops.page().await.contains("<svg"),
        "the QR code is inline SVG"
    );
    ops.shot("enrol").await;
    let shown = ops.value("#totp-secret").await.expect("the key is shown");
    let secret = helpers::secret_from_base32(&shown);
    ops.fill("#code", &app.code_now(&secret)).await;
    ops.click("form[action='/account/two-factor'] button[type=submit]")
        .await;
    ops.wait_for_text("Your recovery codes").await;
    ops.shot("recovery-codes").await;
    let codes = ops.texts("code.recovery-code").await;
    assert_eq!(codes.len(), 10, "ten recovery codes, shown once");

    // Enrolled: the console opens.
    ops.click_link("Tenants").await;
    ops.wait_for_url("/ops/tenants").await;
    ops.click("form.signout button[type=submit]").await;
    ops.wait_for_text("Sign in").await;

    // Sign in with a code (the next step's: the one used to confirm is spent).
    let step = {
        use finchgate::clock::Clock as _;
        app.clock
            .now()
            .timestamp()
            .div_euclid(finchgate::auth::totp::STEP_SECONDS)
    };
    let next = secret.code_at_step(step + 1).unwrap();
    ops.sign_in_with_code(&operator.email, &operator.password, &next)
        .await;
    ops.click("form.signout button[type=submit]").await;
    ops.wait_for_text("Sign in").await;

    // Then with a recovery code, which works once.
    ops.sign_in_with_code(&operator.email, &operator.password, &codes[0])
        .await;
    ops.wait_for_text("recovery code(s) left").await;
    ops.shot("recovery-code-used").await;
    ops.click("form.signout button[type=submit]").await;
    ops.wait_for_text("Sign in").await;
    ops.open_login().await;
    ops.fill("#email", &operator.email).await;
    ops.fill("#password", &operator.password).await;
    ops.click("form[action='/login'] button[type=submit]").await;
    ops.wait_for_text("Enter your code").await;
    ops.fill("#code", &codes[0]).await;
    ops.click("form[action='/login/two-factor'] button[type=submit]")
        .await;
    ops.wait_for_text("That code did not work").await;
    ops.shot("recovery-code-refused").await;
    ops.close().await;
    app.stop().await;
}

/// The tenant's own page a connect link returns to: a tiny loopback server answering every
/// request with one page. Returns its base URL.
async fn tenant_return_page() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
                let mut buffer = [0u8; 4096];
                let _ = socket.read(&mut buffer).await;
                let body = "<!doctype html><title>Tenant</title><h1>Back at the tenant's app</h1>";
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://{address}/payroll/connected")
}

#[tokio::test]
async fn a_customer_connects_from_a_link_without_an_account_and_lands_on_the_tenants_page() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let (app, _vault) = spawn_app_with_vault().await;
    let driver = Driver::start().await;
    let admin = connected_tenant_admin(&app, &driver, "links").await;
    let return_uri = tenant_return_page().await;

    // The admin whitelists the tenant's page as a return URI, then creates a link.
    admin.click_link("Settings").await;
    admin.fill("#return-uri", &return_uri).await;
    admin.click("#add-return-uri").await;
    admin.wait_for_text("to the whitelist").await;
    admin.click("#nav-links").await;
    admin.wait_for_text("id=\"link-form\"").await;
    admin.fill("#customer_id", "cust-e2e").await;
    admin.fill("#customer_name", "Bolt Bikes").await;
    admin.select_value("#return_uri", &return_uri).await;
    admin.shot("link-form").await;
    admin.click("#create-link").await;
    admin.wait_for_text("id=\"link-created\"").await;
    admin.shot("link-created").await;
    let link = admin.value("#link-url").await.unwrap();

    // The customer, in a browser of its own and signed in nowhere, opens the link from a message.
    let customer = driver.browser("links-customer", &app).await;
    customer
        .open_message("Bolt Bikes: please connect your payroll provider", &link)
        .await;
    customer.click("#message-link").await;
    customer.wait_for_text("Bolt Bikes").await;
    customer.shot("link-page").await;
    customer.click("#link-continue").await;
    customer
        .wait_for_text("Connect your payroll provider")
        .await;
    assert!(
        customer
            .url()
            .await
            .starts_with(app.sandbox.base_url().as_str()),
        "at Finch Connect (the emulator)"
    );
    customer.click("#approve").await;
    customer.wait_for_url("connection_id=").await;
    customer.wait_for_text("Back at the tenant").await;
    customer.shot("back-at-the-tenant").await;
    let landed = url::Url::parse(&customer.url().await).unwrap();
    assert!(landed.as_str().starts_with(&return_uri), "{landed}");
    let keys: Vec<String> = landed.query_pairs().map(|(k, _)| k.into_owned()).collect();
    assert_eq!(keys, ["connection_id", "status"], "{landed}");
    let connection_id = landed
        .query_pairs()
        .find(|(k, _)| k == "connection_id")
        .unwrap()
        .1
        .into_owned();

    // The admin sees the completed link and, from it, the connection.
    admin.click("#nav-links").await;
    admin.wait_for_text("data-status=\"completed\"").await;
    admin.shot("link-completed").await;
    admin.click_link("connection").await;
    admin.wait_for_url(&connection_id).await;
    admin.wait_for_text("active").await;
    admin.wait_for_text("Bolt Bikes").await;
    admin.shot("the-connection").await;

    customer.close().await;
    admin.close().await;
    app.stop().await;
}

#[tokio::test]
async fn an_admin_changes_the_password_and_the_other_browsers_session_ends() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let (app, _vault) = spawn_app_with_vault().await;
    let driver = Driver::start().await;
    let setup = app.setup_connect("passwords").await;
    let password = admin_password(&app, &setup.slug).await;
    let email = format!("admin@{}.test", setup.slug);
    let laptop = driver.browser("password-laptop", &app).await;
    laptop.sign_in(&email, &password).await;
    let phone = driver.browser("password-phone", &app).await;
    phone.sign_in(&email, &password).await;

    laptop.click_link("Account").await;
    laptop.wait_for_text("Your sessions").await;
    assert!(laptop.page().await.contains("(this session)"));
    laptop.shot("account").await;
    let new_password = "a brand new passphrase for e2e";
    laptop.fill("#current_password", &password).await;
    laptop.fill("#new_password", new_password).await;
    laptop.fill("#new_password_confirm", new_password).await;
    laptop
        .click("form[action='/account/password'] button[type=submit]")
        .await;
    laptop.wait_for_text("Your password was changed").await;
    laptop.shot("password-changed").await;

    // The other browser's next click lands on the sign-in page.
    phone.click_link("Attempts").await;
    phone.wait_for_url("/login").await;
    phone.shot("signed-out").await;
    phone.sign_in(&email, new_password).await;
    phone.close().await;
    laptop.close().await;
    app.stop().await;
}

#[tokio::test]
async fn a_customer_connects_from_an_embedded_link_and_gets_the_close_this_page_page() {
    let _one = ONE_BROWSER_AT_A_TIME.lock().await;
    let (app, _vault) = spawn_app_with_vault().await;
    let driver = Driver::start().await;
    let admin = connected_tenant_admin(&app, &driver, "linkembed").await;

    admin.click("#nav-links").await;
    admin.wait_for_text("id=\"link-form\"").await;
    admin.fill("#customer_id", "cust-embedded").await;
    admin.fill("#customer_name", "Cog Works").await;
    admin.click("#link-flow-embedded").await;
    admin.click("#create-link").await;
    admin.wait_for_text("id=\"link-created\"").await;
    let link = admin.value("#link-url").await.unwrap();

    let customer = driver.browser("linkembed-customer", &app).await;
    customer
        .open_message("Cog Works: please connect your payroll provider", &link)
        .await;
    customer.click("#message-link").await;
    customer.wait_for_text("Cog Works").await;
    customer.click("#link-continue").await;
    customer.wait_for_text("<iframe").await;
    customer.shot("embedded-from-link").await;
    customer.enter_frame("iframe").await;
    customer
        .wait_for_text("Connect your payroll provider")
        .await;
    customer.click("#approve").await;
    customer.leave_frame().await;
    customer.wait_for_url("/c/done").await;
    customer.wait_for_text("You can close this page").await;
    customer.shot("done").await;
    assert_eq!(app.sandbox.count("POST", "/auth/token"), 1);

    admin.click("#nav-links").await;
    admin.wait_for_text("data-status=\"completed\"").await;

    customer.close().await;
    admin.close().await;
    app.stop().await;
}
