//! `spawn_app()` and the per-test database.

use std::net::TcpListener;
use std::sync::Arc;

use base64::Engine as _;
use diesel::QueryableByName;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use finchgate::clock::OffsetClock;
use finchgate::config::{DatabaseSettings, FinchSettings, Settings};
use secrecy::{ExposeSecret as _, SecretBox, SecretString};
use url::Url;

/// The server used by the tests: `TEST_DATABASE_URL` (any database on it; the tests create their own).
pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn url_for(database: &str) -> String {
    let mut url = Url::parse(&server_url()).expect("TEST_DATABASE_URL is a URL");
    url.set_path(&format!("/{database}"));
    url.to_string()
}

async fn maintenance_connection() -> AsyncPgConnection {
    AsyncPgConnection::establish(&url_for("postgres"))
        .await
        .expect("the test PostgreSQL server is reachable (start it with pg_ctlcluster, see README)")
}

/// A database of its own for one test, dropped (forcefully) when the test ends.
pub struct TestDatabase {
    pub name: String,
    pub url: SecretString,
}

impl TestDatabase {
    /// A new database cloned from the migrated template.
    pub async fn migrated() -> Self {
        let template = ensure_template().await;
        let name = format!("finchgate_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = maintenance_connection().await;
        diesel::sql_query(format!("CREATE DATABASE {name} TEMPLATE {template}"))
            .execute(&mut conn)
            .await
            .expect("create the test database from the template");
        Self {
            url: SecretString::from(url_for(&name)),
            name,
        }
    }

    /// A new, empty database (no migrations).
    pub async fn empty() -> Self {
        let name = format!("finchgate_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = maintenance_connection().await;
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create an empty test database");
        Self {
            url: SecretString::from(url_for(&name)),
            name,
        }
    }

    pub async fn connect(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(self.url.expose_secret())
            .await
            .expect("connect to the test database")
    }

    /// Drops the database now (terminating its connections), e.g. to simulate losing it.
    pub async fn drop_now(&self) {
        drop_database(&self.name).await;
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside any runtime we may block on: use a thread with its own.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| rt.block_on(drop_database(&name)))
        })
        .join();
        drop(dropped);
    }
}

async fn drop_database(name: &str) {
    let mut conn = maintenance_connection().await;
    let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await;
}

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    exists: bool,
}

/// The migrated template database, named after a hash of the migration files, created once
/// (across test processes, under an advisory lock).
async fn ensure_template() -> String {
    let name = format!("finchgate_tpl_{}", migrations_fingerprint());
    let mut conn = maintenance_connection().await;
    diesel::sql_query("SELECT pg_advisory_lock(724137)")
        .execute(&mut conn)
        .await
        .expect("advisory lock");
    let exists: Exists =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
            .bind::<diesel::sql_types::Text, _>(&name)
            .get_result(&mut conn)
            .await
            .expect("look up the template");
    if !exists.exists {
        let building = format!("{name}_building");
        diesel::sql_query(format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
            .execute(&mut conn)
            .await
            .expect("drop stale template");
        diesel::sql_query(format!("CREATE DATABASE {building}"))
            .execute(&mut conn)
            .await
            .expect("create template");
        finchgate::db::migrations::run_pending(&SecretString::from(url_for(&building)))
            .await
            .expect("migrate the template database");
        diesel::sql_query(format!("ALTER DATABASE {building} RENAME TO {name}"))
            .execute(&mut conn)
            .await
            .expect("rename template");
    }
    diesel::sql_query("SELECT pg_advisory_unlock(724137)")
        .execute(&mut conn)
        .await
        .expect("advisory unlock");
    name
}

fn migrations_fingerprint() -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files: Vec<_> = walk(&dir);
    files.sort();
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for file in files {
        ctx.update(file.to_string_lossy().as_bytes());
        ctx.update(&std::fs::read(&file).expect("read a migration file"));
    }
    ctx.finish().as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)
        .expect("read migrations dir")
        .flatten()
    {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A random `id:base64` master key list, as `FINCHGATE_MASTER_KEYS` takes it.
pub fn random_master_keys(id: &str) -> String {
    format!(
        "{id}:{}",
        base64::engine::general_purpose::STANDARD.encode(random_bytes::<32>())
    )
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .expect("random bytes");
    bytes
}

/// The running application of one test.
pub struct TestApp {
    pub address: String,
    /// The metrics listener (`FINCHGATE_METRICS_BIND`), the only place `/metrics` is served.
    pub metrics_address: String,
    pub db: TestDatabase,
    pub pool: finchgate::db::Pool,
    pub clock: Arc<OffsetClock>,
    pub sandbox: finchgate::sandbox::Sandbox,
    pub client: reqwest::Client,
    pub keyring: Arc<finchgate::vault::Keyring>,
    server: actix_web::dev::ServerHandle,
}

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request the app")
    }

    /// The Prometheus exposition, from the metrics listener.
    pub async fn metrics(&self) -> reqwest::Response {
        self.client
            .get(format!("{}/metrics", self.metrics_address))
            .send()
            .await
            .expect("request the metrics listener")
    }

    /// Stops the app (gracefully: in-flight requests finish, within its 10 s shutdown timeout)
    /// and the emulator. A stop that takes longer fails the test naming the part that hung,
    /// instead of hanging the whole run.
    pub async fn stop(self) {
        const STOP_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);
        tokio::time::timeout(STOP_WITHIN, self.server.stop(true))
            .await
            .expect("the app stops within 30 s");
        tokio::time::timeout(STOP_WITHIN, self.sandbox.stop())
            .await
            .expect("the emulator stops within 30 s");
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], with a chance to adjust the settings first.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let db = TestDatabase::migrated().await;
    let sandbox = finchgate::sandbox::Sandbox::start(finchgate::sandbox::SandboxConfig {
        listener: TcpListener::bind("127.0.0.1:0").expect("bind the sandbox"),
        public_url: None,
        apps: Vec::new(),
        code_ttl: std::time::Duration::from_secs(600),
    })
    .await
    .expect("start the sandbox emulator");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the app");
    let port = listener.local_addr().expect("local addr").port();
    let address = format!("http://127.0.0.1:{port}");
    let settings = Settings {
        database: DatabaseSettings {
            url: db.url.clone(),
            max_connections: 8,
        },
        bind: listener.local_addr().expect("local addr"),
        metrics_bind: Some("127.0.0.1:0".parse().expect("an address")),
        public_url: Url::parse(&address).expect("url"),
        keyring: finchgate::config::parse_keyring(Some(&random_master_keys("test1")), None)
            .expect("keyring"),
        session_secret: SecretBox::new(Box::new(random_bytes::<64>().to_vec())),
        finch: FinchSettings::new(sandbox.base_url(), sandbox.base_url()),
        limits: Default::default(),
        retention: Default::default(),
    };
    let mut settings = settings;
    adjust(&mut settings);
    let keyring = settings.keyring.clone();
    let pool = finchgate::db::pool(&settings.database).expect("pool");
    let clock = Arc::new(OffsetClock::default());
    let app = finchgate::startup::Application::build_with_listener(
        settings,
        listener,
        pool.clone(),
        finchgate::startup::Overrides {
            clock: clock.clone(),
            workers: 2,
        },
    )
    .expect("build the application");
    let metrics_address = format!(
        "http://127.0.0.1:{}",
        app.metrics_port().expect("the tests serve metrics")
    );
    let server = app.handle();
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .expect("client");
    TestApp {
        address,
        metrics_address,
        keyring,
        db,
        pool,
        clock,
        sandbox,
        client,
        server,
    }
}

/// Pulls the hidden `csrf_token` value out of a page.
pub fn csrf_token_in(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("the page has a csrf_token field") + marker.len();
    let end = html[start..].find('"').expect("the value ends") + start;
    html[start..end].to_owned()
}

/// A user the tests can sign in as.
pub struct TestUser {
    pub id: uuid::Uuid,
    pub email: String,
    pub password: String,
}

impl TestApp {
    /// A client with its own cookie jar (another browser).
    pub fn new_browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .build()
            .expect("client")
    }

    pub async fn create_tenant(&self, slug: &str) -> uuid::Uuid {
        let mut conn = self.pool.get().await.unwrap();
        finchgate::db::transaction(&mut conn, finchgate::db::Scope::System, async |conn| {
            finchgate::db::models::tenants::insert(
                conn,
                &finchgate::db::models::tenants::NewTenant {
                    slug,
                    name: slug,
                    finch_sandbox: "finch",
                },
            )
            .await
            .map(|t| t.id)
        })
        .await
        .unwrap()
    }

    pub async fn create_user(&self, email: &str, tenant_id: Option<uuid::Uuid>) -> TestUser {
        let user = self.create_user_without_two_factor(email, tenant_id).await;
        if tenant_id.is_none() {
            // Operators must use two-factor sign-in: every test operator is enrolled, and
            // `login_with` gives the second step's code.
            self.enrol_two_factor(user.id, None).await;
        }
        user
    }

    /// Registers the app's master keys (as `serve` does at boot), so pages that seal work.
    pub async fn register_keys(&self) {
        let vault = self.vault();
        let mut conn = self.pool.get().await.unwrap();
        finchgate::db::transaction(&mut conn, finchgate::db::Scope::System, async |conn| {
            finchgate::keys::register_and_check(conn, &vault).await
        })
        .await
        .expect("register the test master keys");
    }

    /// A user as `create_user` makes one, without two-factor sign-in even for an operator.
    pub async fn create_user_without_two_factor(
        &self,
        email: &str,
        tenant_id: Option<uuid::Uuid>,
    ) -> TestUser {
        let password = format!("pw-{}", uuid::Uuid::new_v4());
        let hash = finchgate::auth::password::PasswordHasher::new(2)
            .hash(&SecretString::from(password.clone()))
            .await
            .unwrap();
        let role = if tenant_id.is_some() {
            "tenant_admin"
        } else {
            "operator"
        };
        let mut conn = self.pool.get().await.unwrap();
        let user =
            finchgate::db::transaction(&mut conn, finchgate::db::Scope::System, async |conn| {
                finchgate::db::models::users::insert(
                    conn,
                    &finchgate::db::models::users::NewUser {
                        email,
                        password_hash: Some(&hash),
                        role,
                        tenant_id,
                    },
                )
                .await
            })
            .await
            .unwrap();
        TestUser {
            id: user.id,
            email: email.to_owned(),
            password,
        }
    }

    /// Enrols a user in two-factor sign-in directly (as the enrolment page would) and returns
    /// the secret.
    pub async fn enrol_two_factor(
        &self,
        user_id: uuid::Uuid,
        tenant_id: Option<uuid::Uuid>,
    ) -> finchgate::auth::totp::TotpSecret {
        use diesel_async::RunQueryDsl as _;
        let vault = self.vault();
        let secret = finchgate::auth::totp::TotpSecret::generate().unwrap();
        let sealed = vault
            .seal(
                &finchgate::auth::two_factor::row_context(user_id, tenant_id),
                secret.as_bytes(),
            )
            .unwrap();
        let mut conn = self.pool.get().await.unwrap();
        finchgate::db::transaction(&mut conn, finchgate::db::Scope::System, async |conn| {
            finchgate::keys::register_and_check(conn, &vault)
                .await
                .expect("register the test master keys");
            finchgate::db::models::two_factor::put_pending(
                conn,
                user_id,
                tenant_id,
                sealed.kek_id.as_str(),
                &sealed.envelope,
                chrono::Utc::now(),
            )
            .await?;
            diesel::sql_query("UPDATE user_totp SET confirmed_at = now() WHERE user_id = $1")
                .bind::<diesel::sql_types::Uuid, _>(user_id)
                .execute(conn)
                .await
        })
        .await
        .unwrap();
        secret
    }

    /// The two-factor secret of the user with this email (opened with the app's keys), if any.
    pub async fn two_factor_secret_of(
        &self,
        email: &str,
    ) -> Option<finchgate::auth::totp::TotpSecret> {
        let vault = self.vault();
        let mut conn = self.pool.get().await.unwrap();
        let row =
            finchgate::db::transaction(&mut conn, finchgate::db::Scope::System, async |conn| {
                let Some(user) = finchgate::db::models::users::find_by_email(conn, email).await?
                else {
                    return Ok(None);
                };
                finchgate::db::models::two_factor::find(conn, user.id).await
            })
            .await
            .unwrap()?;
        let bytes = vault
            .open(
                &finchgate::auth::two_factor::row_context(row.user_id, row.tenant_id),
                &row.secret_envelope,
            )
            .unwrap();
        Some(finchgate::auth::totp::TotpSecret::from_bytes(&bytes))
    }

    /// The code of `secret` for the app's clock now.
    pub fn code_now(&self, secret: &finchgate::auth::totp::TotpSecret) -> String {
        use finchgate::clock::Clock as _;
        let step = self
            .clock
            .now()
            .timestamp()
            .div_euclid(finchgate::auth::totp::STEP_SECONDS);
        secret.code_at_step(step).unwrap()
    }

    /// POST /login only (no second step): the password step's response.
    pub async fn login_password_only(
        &self,
        client: &reqwest::Client,
        email: &str,
        password: &str,
    ) -> reqwest::Response {
        let csrf = self.csrf_of(client, "/login").await;
        client
            .post(format!("{}/login", self.address))
            .form(&[
                ("email", email),
                ("password", password),
                ("csrf_token", csrf.as_str()),
            ])
            .send()
            .await
            .unwrap()
    }

    /// Submits `code` at the second sign-in step with `client`'s half-signed-in session.
    pub async fn submit_second_step(
        &self,
        client: &reqwest::Client,
        code: &str,
    ) -> reqwest::Response {
        let csrf = self.csrf_of(client, "/login/two-factor").await;
        client
            .post(format!("{}/login/two-factor", self.address))
            .form(&[("code", code), ("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap()
    }

    /// GET /login then POST the form with `client`'s cookies; returns the POST's response. An
    /// account enrolled in two-factor sign-in gets its second step done too (with a code of its
    /// secret; the last accepted step is forgotten first, so signing in twice within 30 s works),
    /// and the response is the second step's.
    pub async fn login_with(
        &self,
        client: &reqwest::Client,
        email: &str,
        password: &str,
    ) -> reqwest::Response {
        let response = self.login_password_only(client, email, password).await;
        let second_step = response
            .headers()
            .get("location")
            .is_some_and(|l| l == "/login/two-factor");
        if !second_step {
            return response;
        }
        let secret = self
            .two_factor_secret_of(email)
            .await
            .expect("an account asked for a second step has a secret");
        {
            use diesel_async::RunQueryDsl as _;
            let mut conn = self.db.connect().await;
            diesel::sql_query(
                "UPDATE user_totp SET last_step = NULL WHERE user_id = (SELECT id FROM users WHERE lower(email) = lower($1))",
            )
            .bind::<diesel::sql_types::Text, _>(email)
            .execute(&mut conn)
            .await
            .unwrap();
        }
        let code = self.code_now(&secret);
        self.submit_second_step(client, &code).await
    }

    /// Signs in with the app's default client; panics unless it lands on a home page.
    pub async fn login(&self, user: &TestUser) {
        let response = self
            .login_with(&self.client, &user.email, &user.password)
            .await;
        assert_eq!(response.status(), 303, "sign-in succeeds");
    }

    /// The CSRF token of `client`'s session, read from a page that carries one.
    pub async fn csrf_of(&self, client: &reqwest::Client, path: &str) -> String {
        let page = client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        csrf_token_in(&page)
    }
}

/// Opens a Finch Connect URL of the emulator, approves with provider `gusto`, and returns where
/// the browser would be sent (the redirect URI with `code` and `state`).
pub async fn approve_in_emulator(connect_url: &str, state: Option<&str>) -> Url {
    decide_in_emulator(connect_url, state, "approve").await
}

/// Like [`approve_in_emulator`], with `decision` = `approve` or `deny`.
pub async fn decide_in_emulator(connect_url: &str, state: Option<&str>, decision: &str) -> Url {
    let response = submit_authorize(connect_url, state, decision).await;
    assert!(
        response.status().is_redirection(),
        "the emulator redirects: {}",
        response.status()
    );
    Url::parse(response.headers()["location"].to_str().unwrap()).unwrap()
}

/// Opens the emulator's authorize page and submits it with `decision` and provider `gusto`, as a
/// person clicking the button would.
async fn submit_authorize(
    connect_url: &str,
    state: Option<&str>,
    decision: &str,
) -> reqwest::Response {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut url = Url::parse(connect_url).unwrap();
    if let Some(state) = state {
        url.query_pairs_mut().append_pair("state", state);
    }
    let page = http
        .get(url.clone())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut fields = hidden_inputs(&page);
    fields.retain(|(k, _)| k != "decision" && k != "provider");
    fields.push(("decision".into(), decision.into()));
    fields.push(("provider".into(), "gusto".into()));
    http.post(url.join("authorize").unwrap())
        .form(&fields)
        .send()
        .await
        .unwrap()
}

/// The hidden inputs of a page (`<input type="hidden" name="…" value="…">`), unescaped.
pub fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    const START: &str = r#"<input type="hidden" name=""#;
    html.split(START)
        .skip(1)
        .map(|rest| {
            let (name, rest) = rest.split_once('"').unwrap();
            let rest = rest.strip_prefix(r#" value=""#).unwrap();
            let (value, _) = rest.split_once('"').unwrap();
            (name.to_owned(), html_unescape(value))
        })
        .collect()
}

/// Undoes the escaping askama applies to text and attribute values.
pub fn html_unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("&#") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after.find(';').unwrap();
        out.push(char::from_u32(after[..end].parse().unwrap()).unwrap());
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out.replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

/// The value of `data-<name>="…"` in a page, unescaped.
pub fn data_attribute(html: &str, name: &str) -> Option<String> {
    let marker = format!(r#"data-{name}=""#);
    let rest = html.split_once(&marker)?.1;
    Some(html_unescape(rest.split_once('"')?.0))
}

/// A tenant ready to connect: admin signed in with `app.client`, Finch credentials registered with
/// the emulator and stored through the vault, the tenant's own callback URL whitelisted.
pub struct ConnectSetup {
    pub tenant_id: uuid::Uuid,
    pub slug: String,
    pub redirect_uri_id: uuid::Uuid,
    pub redirect_uri: String,
}

impl TestApp {
    pub fn vault(&self) -> finchgate::vault::Vault {
        finchgate::vault::Vault::new(self.keyring.clone())
    }

    /// A tenant with Finch credentials (registered at the emulator) and its callback URL
    /// whitelisted; its admin is signed in with the app's default client.
    pub async fn setup_connect(&self, slug: &str) -> ConnectSetup {
        self.setup_connect_in(slug, &self.client).await
    }

    /// Like [`TestApp::setup_connect`], with the admin signed in in `browser`.
    pub async fn setup_connect_in(&self, slug: &str, browser: &reqwest::Client) -> ConnectSetup {
        let tenant_id = self.create_tenant(slug).await;
        let admin = self
            .create_user(&format!("admin@{slug}.test"), Some(tenant_id))
            .await;
        let client_id = format!("client-{slug}-{}", uuid::Uuid::new_v4().simple());
        let secret = format!("secret-{}", uuid::Uuid::new_v4().simple());
        self.sandbox.register_app(finchgate::sandbox::SandboxApp {
            client_id: client_id.clone(),
            client_secret: SecretString::from(secret.clone()),
        });
        let vault = finchgate::vault::Vault::new(self.keyring.clone());
        let redirect_uri = finchgate::domain::redirect_uri::callback_url(
            &Url::parse(&self.address).expect("the app's address is a URL"),
            slug,
        );
        let mut conn = self.pool.get().await.unwrap();
        let redirect_uri_id =
            finchgate::db::transaction(&mut conn, finchgate::db::Scope::System, async |conn| {
                finchgate::keys::register_and_check(conn, &vault)
                    .await
                    .expect("register the test master keys");
                finchgate::credentials::store(
                    conn,
                    &vault,
                    tenant_id,
                    &client_id,
                    &SecretString::from(secret.clone()),
                    None,
                )
                .await
                .expect("store the tenant's credentials");
                finchgate::db::models::redirect_uris::add(conn, tenant_id, &redirect_uri, None)
                    .await?;
                let list = finchgate::db::models::redirect_uris::list(conn, tenant_id).await?;
                Ok::<_, diesel::result::Error>(list[0].id)
            })
            .await
            .unwrap();
        let signed_in = self
            .login_with(browser, &admin.email, &admin.password)
            .await;
        assert_eq!(signed_in.status(), 303, "the tenant admin signs in");
        ConnectSetup {
            tenant_id,
            slug: slug.to_owned(),
            redirect_uri_id,
            redirect_uri,
        }
    }

    /// POSTs the connect form (redirect flow unless `embedded`) and returns the response.
    pub async fn start_connect(
        &self,
        client: &reqwest::Client,
        setup: &ConnectSetup,
        embedded: bool,
    ) -> reqwest::Response {
        let csrf = self
            .csrf_of(client, &format!("/t/{}/connect", setup.slug))
            .await;
        let redirect_id = setup.redirect_uri_id.to_string();
        let mut form = vec![
            ("csrf_token", csrf.as_str()),
            ("product", "company"),
            ("product", "directory"),
            ("customer_id", setup.slug.as_str()),
            ("customer_name", "Test Customer"),
            ("sandbox", "finch"),
        ];
        if embedded {
            form.push(("flow", "embedded"));
        } else {
            form.push(("flow", "redirect"));
            form.push(("redirect_uri_id", redirect_id.as_str()));
        }
        client
            .post(format!("{}/t/{}/connect", self.address, setup.slug))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// Starts a redirect flow and approves it in the emulator: returns the callback URL
    /// (with `code` and `state`) the browser would be sent to.
    pub async fn redirect_callback_url(
        &self,
        client: &reqwest::Client,
        setup: &ConnectSetup,
    ) -> Url {
        let response = self.start_connect(client, setup, false).await;
        assert_eq!(response.status(), 303, "start redirects to Finch Connect");
        let connect_url = response.headers()["location"].to_str().unwrap().to_owned();
        approve_in_emulator(&connect_url, None).await
    }
}

/// Completes the emulator's authorize page in embedded mode; returns the result page's HTML.
pub async fn embedded_result_in_emulator(connect_url: &str, state: Option<&str>) -> String {
    let response = submit_authorize(connect_url, state, "approve").await;
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

impl TestApp {
    /// Another tenant set up for connecting, with its admin signed in in a browser of its own.
    pub async fn setup_connect_with_client(&self, slug: &str) -> (ConnectSetup, reqwest::Client) {
        let browser = self.new_browser();
        let tenant_id = self.create_tenant(slug).await;
        let admin = self
            .create_user(&format!("admin@{slug}.test"), Some(tenant_id))
            .await;
        assert_eq!(
            self.login_with(&browser, &admin.email, &admin.password)
                .await
                .status(),
            303
        );
        let setup = ConnectSetup {
            tenant_id,
            slug: slug.to_owned(),
            redirect_uri_id: uuid::Uuid::nil(),
            redirect_uri: String::new(),
        };
        (setup, browser)
    }
}

/// A running app whose master keys are registered in `keyring` (as `serve` does at boot), and
/// its vault: for tests that store or open secrets.
pub async fn spawn_app_with_vault() -> (TestApp, finchgate::vault::Vault) {
    let mut keyring = None;
    let app = spawn_app_with(|settings| keyring = Some(settings.keyring.clone())).await;
    let vault = finchgate::vault::Vault::new(keyring.expect("the settings carry a keyring"));
    let mut conn = app.pool.get().await.unwrap();
    finchgate::db::transaction(&mut conn, finchgate::db::Scope::System, async |conn| {
        finchgate::keys::register_and_check(conn, &vault).await
    })
    .await
    .expect("register the test master keys");
    (app, vault)
}

#[derive(QueryableByName)]
struct ColumnInfo {
    #[diesel(sql_type = diesel::sql_types::Text)]
    table_schema: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    table_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    column_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    data_type: String,
}

#[derive(QueryableByName)]
struct FormHits {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    plaintext: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    base64: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    base64url: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    hex: i64,
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Every place in the database (`schema.table.column (form)`) holding `needle` as plaintext,
/// base64 (standard or URL-safe, unpadded), or hex: every column of every table, read as a
/// superuser (row-level security does not hide anything); bytea columns are searched as bytes,
/// all others as their text form (case-insensitively, so hex of either case is found).
pub async fn find_in_database(db: &TestDatabase, needle: &str) -> Vec<String> {
    assert!(
        needle.len() >= 8,
        "a needle this short would match by chance: {needle:?}"
    );
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let forms = [
        needle.to_owned(),
        STANDARD_NO_PAD.encode(needle),
        URL_SAFE_NO_PAD.encode(needle),
        needle.bytes().map(|b| format!("{b:02x}")).collect(),
    ];
    let mut conn = db.connect().await;
    let columns: Vec<ColumnInfo> = diesel::sql_query(
        "SELECT c.table_schema::text AS table_schema, c.table_name::text AS table_name,
                c.column_name::text AS column_name, c.data_type::text AS data_type
           FROM information_schema.columns c
           JOIN information_schema.tables t USING (table_schema, table_name)
          WHERE t.table_type = 'BASE TABLE'
            AND c.table_schema NOT IN ('pg_catalog', 'information_schema')
          ORDER BY 1, 2, 3",
    )
    .load(&mut conn)
    .await
    .expect("list the database's columns");
    assert!(columns.len() > 20, "the scan sees the schema");
    let mut found = Vec::new();
    for column in columns {
        let table = format!(
            "{}.{}",
            quote_ident(&column.table_schema),
            quote_ident(&column.table_name)
        );
        let col = quote_ident(&column.column_name);
        let bytea = column.data_type == "bytea";
        let hit = |n: usize| {
            let condition = if bytea {
                format!("position(${n}::bytea in {col}) > 0")
            } else {
                format!("strpos(lower({col}::text), lower(${n}::text)) > 0")
            };
            format!("count(*) FILTER (WHERE {condition})")
        };
        let query = format!(
            "SELECT {} AS plaintext, {} AS base64, {} AS base64url, {} AS hex FROM {table}",
            hit(1),
            hit(2),
            hit(3),
            hit(4)
        );
        let query = diesel::sql_query(query);
        let hits: FormHits = if bytea {
            query
                .bind::<diesel::sql_types::Bytea, _>(forms[0].as_bytes())
                .bind::<diesel::sql_types::Bytea, _>(forms[1].as_bytes())
                .bind::<diesel::sql_types::Bytea, _>(forms[2].as_bytes())
                .bind::<diesel::sql_types::Bytea, _>(forms[3].as_bytes())
                .get_result(&mut conn)
                .await
        } else {
            query
                .bind::<diesel::sql_types::Text, _>(&forms[0])
                .bind::<diesel::sql_types::Text, _>(&forms[1])
                .bind::<diesel::sql_types::Text, _>(&forms[2])
                .bind::<diesel::sql_types::Text, _>(&forms[3])
                .get_result(&mut conn)
                .await
        }
        .unwrap_or_else(|e| panic!("scan {table}.{col}: {e}"));
        for (form, n) in [
            ("plaintext", hits.plaintext),
            ("base64", hits.base64),
            ("base64url", hits.base64url),
            ("hex", hits.hex),
        ] {
            if n > 0 {
                found.push(format!("{table}.{col} ({form}, {n} rows)"));
            }
        }
    }
    found
}

/// Fails unless `needle` is stored nowhere in the database, in any of the forms
/// [`find_in_database`] looks for.
pub async fn assert_nowhere_in_database(db: &TestDatabase, needle: &str) {
    let found = find_in_database(db, needle).await;
    assert!(found.is_empty(), "found in the database: {found:?}");
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Runs `sql` (selecting one bigint named `n`) as the superuser, past row-level security.
pub async fn count(db: &TestDatabase, sql: &str) -> i64 {
    let mut conn = db.connect().await;
    diesel::sql_query(sql)
        .get_result::<Count>(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .n
}

/// The connection id in a `Location` such as `/t/acme/connections/{id}?connected=1`.
pub fn connection_id_from(location: &str) -> uuid::Uuid {
    let rest = location
        .split("/connections/")
        .nth(1)
        .unwrap_or_else(|| panic!("no connection in {location}"));
    uuid::Uuid::parse_str(rest.split('?').next().unwrap_or_default()).expect("a connection id")
}

/// A TOTP secret from the base32 text a page shows.
pub fn secret_from_base32(text: &str) -> finchgate::auth::totp::TotpSecret {
    let bytes = totp_rs::Secret::Encoded(text.to_owned())
        .to_bytes()
        .expect("the page shows base32");
    finchgate::auth::totp::TotpSecret::from_bytes(&bytes)
}

/// The recovery codes a page shows (`<code class="recovery-code">…</code>`).
pub fn recovery_codes_in(html: &str) -> Vec<String> {
    html.split("<code class=\"recovery-code\">")
        .skip(1)
        .filter_map(|rest| rest.split_once("</code>").map(|(code, _)| code.to_owned()))
        .collect()
}
