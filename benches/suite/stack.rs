//! A running finchgate to benchmark: a fresh database, the Finch emulator in this process, and
//! `finchgate serve` (the release binary cargo built next to this bench) as a child process, so
//! its memory and CPU are its own. Seeded with tenants (credentials registered with the emulator,
//! callback URL whitelisted) and their admins.

use std::net::TcpListener;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use base64::Engine as _;
use finchgate::db::{Scope, transaction};
use finchgate::sandbox::{Sandbox, SandboxApp, SandboxConfig};
use finchgate::vault::{Keyring, Purpose, RowContext, Vault};
use futures_util::StreamExt as _;
use ring::rand::SecureRandom as _;
use secrecy::SecretString;
use uuid::Uuid;

use crate::browser::{Browser, approve_in_emulator, http_client, location};
use crate::db::BenchDb;

/// Browsers (tenant admins) of the load: one per concurrent callback.
pub const BROWSERS: usize = 256;
/// Tenants the admins are spread over.
pub const TENANTS: usize = 16;
const PASSWORD: &str = "bench-password-correct-horse-battery";

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The system RNG does not fail on Linux; a zero key would still benchmark the same work.
    ring::rand::SystemRandom::new().fill(&mut bytes).ok();
    bytes
}

/// `id:base64`, as `FINCHGATE_MASTER_KEYS` takes one key.
pub fn random_master_key(id: &str) -> String {
    format!(
        "{id}:{}",
        base64::engine::general_purpose::STANDARD.encode(random_bytes::<32>())
    )
}

/// A port that was free a moment ago (the child binds it itself).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A signed-in browser and its session's CSRF token.
pub type Signed = (Arc<Browser>, String);

/// One tenant admin of the stack.
pub struct Admin {
    pub email: String,
    pub slug: String,
    pub redirect_uri_id: Uuid,
}

pub struct Stack {
    pub sandbox: Sandbox,
    pub db: BenchDb,
    pub address: String,
    pub http: reqwest::Client,
    pub admins: Vec<Admin>,
    pub password: String,
    /// A spare emulator app, for the baseline handler.
    pub spare_app: (String, SecretString),
    child: tokio::process::Child,
    pub pid: u32,
}

impl Stack {
    /// A seeded database, the emulator, and `finchgate serve`, ready (`/healthz` answers).
    /// `malloc_env`: extra environment for the server (glibc malloc tunables), if any.
    pub async fn start(
        label: &str,
        admins: usize,
        malloc_env: Option<(&str, &str)>,
    ) -> anyhow::Result<Self> {
        let sandbox = Sandbox::start(SandboxConfig::new(
            TcpListener::bind("127.0.0.1:0")?,
            Vec::new(),
        ))
        .await?;
        let db = BenchDb::create(label).await?;
        let port = free_port()?;
        let address = format!("http://127.0.0.1:{port}");
        let master_keys = random_master_key("bench1");
        let keyring: Arc<Keyring> = finchgate::config::parse_keyring(Some(&master_keys), None)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let admins = seed(&db, &sandbox, &keyring, &address, admins).await?;
        let spare_app = (
            format!("bench-baseline-{}", Uuid::new_v4().simple()),
            SecretString::from(format!("secret-{}", Uuid::new_v4().simple())),
        );
        sandbox.register_app(SandboxApp {
            client_id: spare_app.0.clone(),
            client_secret: spare_app.1.clone(),
        });

        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_finchgate"));
        // The server runs with glibc's malloc defaults unless a figure asks otherwise.
        command.env_remove("GLIBC_TUNABLES");
        if let Some((name, value)) = malloc_env {
            command.env(name, value);
        }
        let child = command
            .arg("serve")
            .env("DATABASE_URL", &db.url)
            .env("FINCHGATE_BIND", format!("127.0.0.1:{port}"))
            .env("FINCHGATE_MASTER_KEYS", &master_keys)
            .env(
                "FINCHGATE_SESSION_SECRET",
                base64::engine::general_purpose::STANDARD.encode(random_bytes::<64>()),
            )
            .env("FINCH_API_URL", sandbox.base_url().as_str())
            .env("FINCH_CONNECT_URL", sandbox.base_url().as_str())
            .env("FINCHGATE_LOG_FORMAT", "json")
            // Each admin prepares its flows in a burst, far faster than a person: the caps on
            // open and started flows (issue 13) are not what the benchmark measures.
            .env("FINCHGATE_PENDING_FLOWS_PER_ADMIN", "1000")
            .env("FINCHGATE_PENDING_FLOWS_PER_TENANT", "100000")
            // Warnings and errors only: an access-log line per request would measure the log sink.
            .env("RUST_LOG", "warn")
            .env_remove("FINCHGATE_PUBLIC_URL")
            .env_remove("FINCHGATE_ACTIVE_KEY_ID")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("start `finchgate serve`")?;
        let pid = child.id().context("the server exited at once")?;
        let http = http_client()?;
        let stack = Self {
            sandbox,
            db,
            address,
            http,
            admins,
            password: PASSWORD.to_owned(),
            spare_app,
            child,
            pid,
        };
        stack.wait_ready().await?;
        Ok(stack)
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let up = self
                .http
                .get(format!("{}/healthz", self.address))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if up {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "`finchgate serve` did not answer /healthz within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the server, the emulator, and drops the database.
    pub async fn stop(mut self) {
        // SIGTERM first (graceful), by pid: the server is our own child.
        let termed = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()
            .is_ok_and(|s| s.success());
        let exited = termed
            && tokio::time::timeout(Duration::from_secs(15), self.child.wait())
                .await
                .is_ok();
        if !exited {
            drop(self.child.kill().await);
        }
        self.sandbox.stop().await;
        self.db.drop_now().await;
    }

    /// `n` browsers, signed in as the first `n` admins (`n` ≤ admins), each with its CSRF token
    /// for the connect form.
    pub async fn signed_in_browsers(&self, n: usize) -> anyhow::Result<Vec<Signed>> {
        let admins = &self.admins[..n.min(self.admins.len())];
        let results: Vec<anyhow::Result<Signed>> =
            futures_util::stream::iter(admins.iter().map(|admin| async move {
                let browser = Browser::new(&self.http, &self.address);
                anyhow::ensure!(
                    browser.login(&admin.email, &self.password).await?,
                    "sign-in of {} failed",
                    admin.email
                );
                let csrf = browser.csrf(&format!("/t/{}/connect", admin.slug)).await?;
                Ok((Arc::new(browser), csrf))
            }))
            .buffered(16)
            .collect()
            .await;
        results.into_iter().collect()
    }

    /// Starts a redirect flow as `admin` in `browser` and approves it in the emulator: returns
    /// the callback URL (with `code` and `state`) the browser would be sent to.
    pub async fn callback_url(
        &self,
        browser: &Browser,
        csrf: &str,
        admin: &Admin,
    ) -> anyhow::Result<String> {
        let redirect_id = admin.redirect_uri_id.to_string();
        let response = browser
            .post_form(
                &format!("/t/{}/connect", admin.slug),
                &[
                    ("csrf_token", csrf),
                    ("product", "company"),
                    ("product", "directory"),
                    ("customer_id", &admin.slug),
                    ("customer_name", "Bench Customer"),
                    ("sandbox", "finch"),
                    ("flow", "redirect"),
                    ("redirect_uri_id", &redirect_id),
                ],
            )
            .await?;
        anyhow::ensure!(
            response.status() == reqwest::StatusCode::SEE_OTHER,
            "starting a flow answered {}",
            response.status()
        );
        let connect_url = location(&response).context("no Location to Finch Connect")?;
        approve_in_emulator(&self.http, &connect_url).await
    }

    /// `per_browser` callback URLs for each browser, flows started in advance (concurrently).
    pub async fn prepare_callbacks(
        &self,
        browsers: &[Signed],
        per_browser: usize,
    ) -> anyhow::Result<Vec<Vec<String>>> {
        let jobs = browsers
            .iter()
            .enumerate()
            .map(|(i, (browser, csrf))| async move {
                let mut urls = Vec::with_capacity(per_browser);
                for _ in 0..per_browser {
                    urls.push(self.callback_url(browser, csrf, &self.admins[i]).await?);
                }
                anyhow::Ok(urls)
            });
        let results: Vec<anyhow::Result<Vec<String>>> = futures_util::stream::iter(jobs)
            .buffered(32)
            .collect()
            .await;
        results.into_iter().collect()
    }
}

/// Tenants with credentials and a whitelisted callback URL, and `admins` admins spread over them
/// (all with one password, hashed once: the hash is what sign-in verifies, not how it was made).
async fn seed(
    db: &BenchDb,
    sandbox: &Sandbox,
    keyring: &Arc<Keyring>,
    address: &str,
    admins: usize,
) -> anyhow::Result<Vec<Admin>> {
    use finchgate::db::models::{credentials, redirect_uris, tenants, users};
    let pool = finchgate::db::pool(&finchgate::config::DatabaseSettings {
        url: db.secret_url(),
        max_connections: 2,
    })?;
    let vault = Vault::new(keyring.clone());
    let hash = finchgate::auth::password::PasswordHasher::new(1)
        .hash(&SecretString::from(PASSWORD))
        .await?;
    let mut conn = pool.get().await?;
    transaction(&mut conn, Scope::System, async |conn| {
        finchgate::keys::register_and_check(conn, &vault).await
    })
    .await?;
    let mut tenants_seeded = Vec::new();
    for t in 0..TENANTS {
        let slug = format!("bench{t}");
        let client_id = format!("client-{slug}-{}", Uuid::new_v4().simple());
        let secret = format!("secret-{}", Uuid::new_v4().simple());
        sandbox.register_app(SandboxApp {
            client_id: client_id.clone(),
            client_secret: SecretString::from(secret.clone()),
        });
        let redirect_uri = format!("{address}/t/{slug}/finch/callback");
        let seeded = transaction(&mut conn, Scope::System, async |conn| {
            let tenant = tenants::insert(
                conn,
                &tenants::NewTenant {
                    slug: &slug,
                    name: &slug,
                    finch_sandbox: "finch",
                },
            )
            .await?;
            let row_id = Uuid::new_v4();
            let sealed = vault
                .seal(
                    &RowContext::new(Purpose::FinchClientSecret, tenant.id, row_id),
                    secret.as_bytes(),
                )
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            credentials::replace(
                conn,
                &credentials::NewCredentials {
                    id: row_id,
                    tenant_id: tenant.id,
                    client_id: &client_id,
                    secret_kek_id: sealed.kek_id.as_str(),
                    secret_envelope: &sealed.envelope,
                    secret_last4: &secret[secret.len() - 4..],
                    created_by: None,
                },
            )
            .await?;
            let uri_id = redirect_uris::add(conn, tenant.id, &redirect_uri, None)
                .await?
                .context("the redirect URI was already there")?;
            anyhow::Ok((tenant.id, slug.clone(), uri_id))
        })
        .await?;
        tenants_seeded.push(seeded);
    }
    let mut out = Vec::with_capacity(admins);
    transaction(&mut conn, Scope::System, async |conn| {
        for i in 0..admins {
            let (tenant_id, slug, uri_id) = &tenants_seeded[i % TENANTS];
            let email = format!("admin{i}@{slug}.bench");
            users::insert(
                conn,
                &users::NewUser {
                    email: &email,
                    password_hash: Some(&hash),
                    role: "tenant_admin",
                    tenant_id: Some(*tenant_id),
                },
            )
            .await?;
            out.push(Admin {
                email,
                slug: slug.clone(),
                redirect_uri_id: *uri_id,
            });
        }
        anyhow::Ok(())
    })
    .await?;
    Ok(out)
}
