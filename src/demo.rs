//! `finchgate demo`: everything on one machine with only PostgreSQL running.
//!
//! Creates the database if missing, migrates, keeps development keys and demo logins in a local
//! file (created once, reused after), seeds an operator and two tenants (each with an admin, its
//! own sandbox app credentials and a whitelisted redirect URI), starts the Finch sandbox emulator
//! in-process and the server, and prints the URL and the logins. Running it again reuses all of it.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::Path;

use base64::Engine as _;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use secrecy::{ExposeSecret as _, SecretBox, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::password::PasswordHasher;
use crate::cli::CliError;
use crate::cli::args::DemoArgs;
use crate::config::{ConfigError, DatabaseSettings, FinchSettings, Settings};
use crate::db::models::{credentials, redirect_uris, tenants, users};
use crate::sandbox::{Sandbox, SandboxApp, SandboxConfig};
use crate::vault::Vault;

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/finchgate";

/// What the demo keeps between runs. Development values only: anyone with this file can decrypt
/// the demo database and sign in as every demo user.
#[derive(Serialize, Deserialize)]
struct DevFile {
    warning: String,
    master_keys: String,
    session_secret: String,
    operator: Login,
    tenants: Vec<DemoTenant>,
}

#[derive(Serialize, Deserialize, Clone)]
struct Login {
    email: String,
    password: String,
}

#[derive(Serialize, Deserialize, Clone)]
struct DemoTenant {
    slug: String,
    name: String,
    admin: Login,
    finch_client_id: String,
    finch_client_secret: String,
}

const WARNING: &str =
    "DEVELOPMENT KEYS AND PASSWORDS for `finchgate demo` only. Never use them in production.";

pub async fn run(args: DemoArgs) -> Result<(), CliError> {
    let database = DatabaseSettings::parse(Some(&args.database_url))?;
    let bind = crate::config::parse_bind(
        "FINCHGATE_BIND",
        Some(&args.bind),
        crate::config::DEFAULT_BIND,
    )?;
    let sandbox_bind = crate::config::parse_bind(
        "FINCHGATE_SANDBOX_BIND",
        Some(&args.sandbox_bind),
        "127.0.0.1:8090",
    )?;

    create_database_if_missing(&database).await?;
    crate::db::migrations::run_pending(&database.url)
        .await
        .map_err(|e| ConfigError::new("DATABASE_URL", format!("{e:#}")))?;

    let dev = load_or_create_dev_file(&args.dev_file)?;
    tracing::warn!(file = %args.dev_file.display(), "{WARNING}");

    let sandbox_listener = TcpListener::bind(sandbox_bind).map_err(|e| {
        ConfigError::new(
            "FINCHGATE_SANDBOX_BIND",
            format!("cannot listen on {sandbox_bind}: {e}"),
        )
    })?;
    let app_listener = TcpListener::bind(bind)
        .map_err(|e| ConfigError::new("FINCHGATE_BIND", format!("cannot listen on {bind}: {e}")))?;
    let app_addr = app_listener.local_addr().map_err(anyhow::Error::from)?;
    let sandbox_addr = sandbox_listener.local_addr().map_err(anyhow::Error::from)?;
    let sandbox_url =
        url::Url::parse(&format!("http://{sandbox_addr}")).map_err(anyhow::Error::from)?;
    let public_url = url::Url::parse(&format!("http://{app_addr}")).map_err(anyhow::Error::from)?;

    let settings = Settings {
        database,
        bind: app_addr,
        public_url: public_url.clone(),
        keyring: crate::config::parse_keyring(Some(&dev.master_keys), None)?,
        session_secret: SecretBox::new(Box::new(
            base64::engine::general_purpose::STANDARD
                .decode(&dev.session_secret)
                .map_err(|_| {
                    ConfigError::new("FINCHGATE_DEV_FILE", "session_secret is not base64")
                })?,
        )),
        finch: FinchSettings::new(sandbox_url.clone(), sandbox_url.clone()),
    };

    let apps = dev
        .tenants
        .iter()
        .map(|t| SandboxApp {
            client_id: t.finch_client_id.clone(),
            client_secret: SecretString::from(t.finch_client_secret.clone()),
        })
        .collect();
    let sandbox = Sandbox::start(SandboxConfig {
        listener: sandbox_listener,
        public_url: None,
        apps,
        code_ttl: std::time::Duration::from_secs(600),
    })
    .await?;

    let pool = crate::db::pool(&settings.database)?;
    crate::cli::serve::check_keys(&pool, &settings).await?;
    let vault = Vault::new(settings.keyring.clone());
    seed(&pool, &vault, &dev, &public_url).await?;

    let app = crate::startup::Application::build_with_listener(
        settings,
        app_listener,
        pool,
        Default::default(),
    )?;
    print_banner(&public_url, &sandbox_url, &dev, &args.dev_file);
    let result = crate::cli::serve::run_until_signal(app).await;
    sandbox.stop().await;
    result
}

fn print_banner(public_url: &url::Url, sandbox_url: &url::Url, dev: &DevFile, file: &Path) {
    let base = public_url.as_str().trim_end_matches('/');
    println!();
    println!("finchgate demo is running: {base}/login");
    println!(
        "Finch sandbox emulator:     {}",
        sandbox_url.as_str().trim_end_matches('/')
    );
    println!();
    println!(
        "  operator        {}  /  {}",
        dev.operator.email, dev.operator.password
    );
    for tenant in &dev.tenants {
        println!(
            "  admin of {:<6} {}  /  {}",
            tenant.slug, tenant.admin.email, tenant.admin.password
        );
    }
    println!();
    println!(
        "Development keys and these logins are kept in {} — for development only.",
        file.display()
    );
    println!("Press Ctrl-C to stop.");
    drop(std::io::stdout().flush());
}

/// Connects to the server's `postgres` database and creates ours if it does not exist.
async fn create_database_if_missing(database: &DatabaseSettings) -> Result<(), CliError> {
    let name = database
        .database_name()
        .ok_or_else(|| ConfigError::new("DATABASE_URL", "the URL names no database"))?;
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(ConfigError::new(
            "DATABASE_URL",
            "the demo creates only databases named with letters, digits and _",
        )
        .into());
    }
    if AsyncPgConnection::establish(database.url.expose_secret())
        .await
        .is_ok()
    {
        return Ok(());
    }
    let maintenance = database.with_database("postgres");
    let mut conn = AsyncPgConnection::establish(maintenance.expose_secret())
        .await
        .map_err(|e| {
            ConfigError::new(
                "DATABASE_URL",
                format!("cannot connect to the PostgreSQL server: {e}"),
            )
        })?;
    #[derive(diesel::QueryableByName)]
    struct Exists {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        exists: bool,
    }
    let exists: Exists =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
            .bind::<diesel::sql_types::Text, _>(&name)
            .get_result(&mut conn)
            .await
            .map_err(anyhow::Error::from)?;
    if !exists.exists {
        diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .map_err(|e| {
                ConfigError::new(
                    "DATABASE_URL",
                    format!("cannot create database {name}: {e}"),
                )
            })?;
        println!("Created database {name}.");
    }
    Ok(())
}

fn load_or_create_dev_file(path: &Path) -> Result<DevFile, CliError> {
    if path.exists() {
        let raw = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(
                "FINCHGATE_DEV_FILE",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        return serde_json::from_str(&raw).map_err(|e| {
            ConfigError::new(
                "FINCHGATE_DEV_FILE",
                format!(
                    "{} is not a demo file ({e}); move it away to start afresh",
                    path.display()
                ),
            )
            .into()
        });
    }
    let dev = DevFile {
        warning: WARNING.to_owned(),
        master_keys: format!(
            "dev1:{}",
            base64::engine::general_purpose::STANDARD.encode(
                crate::primitives::random_bytes::<32>()
                    .map_err(anyhow::Error::from)?
                    .as_ref()
            )
        ),
        session_secret: base64::engine::general_purpose::STANDARD.encode(
            crate::primitives::random_bytes::<64>()
                .map_err(anyhow::Error::from)?
                .as_ref(),
        ),
        operator: Login {
            email: "operator@finchgate.test".into(),
            password: random_password()?,
        },
        tenants: vec![
            demo_tenant("acme", "Acme Payroll Co.")?,
            demo_tenant("globex", "Globex Corporation")?,
        ],
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| {
            ConfigError::new(
                "FINCHGATE_DEV_FILE",
                format!("cannot create {}: {e}", parent.display()),
            )
        })?;
    }
    let json = serde_json::to_string_pretty(&dev).map_err(anyhow::Error::from)?;
    write_private(path, json.as_bytes()).map_err(|e| {
        ConfigError::new(
            "FINCHGATE_DEV_FILE",
            format!("cannot write {}: {e}", path.display()),
        )
    })?;
    println!(
        "Created {} with development keys and demo logins.",
        path.display()
    );
    Ok(dev)
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

fn demo_tenant(slug: &str, name: &str) -> Result<DemoTenant, CliError> {
    Ok(DemoTenant {
        slug: slug.to_owned(),
        name: name.to_owned(),
        admin: Login {
            email: format!("admin@{slug}.test"),
            password: random_password()?,
        },
        finch_client_id: Uuid::new_v4().to_string(),
        finch_client_secret: format!(
            "sandbox-secret-{}",
            hex(crate::primitives::random_bytes::<16>()
                .map_err(anyhow::Error::from)?
                .as_ref())
        ),
    })
}

/// 16 characters from an unambiguous alphabet (~90 bits).
fn random_password() -> Result<String, CliError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzACDEFGHJKLMNPQRTUVWXY34679";
    Ok(crate::primitives::random_bytes::<16>()
        .map_err(anyhow::Error::from)?
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates what is missing; leaves what exists.
async fn seed(
    pool: &crate::db::Pool,
    vault: &Vault,
    dev: &DevFile,
    public_url: &url::Url,
) -> Result<(), CliError> {
    let mut conn = pool
        .get()
        .await
        .map_err(|e| anyhow::anyhow!(crate::db::describe_pool_error(&e)))?;
    crate::db::transaction(&mut conn, crate::db::Scope::System, async |conn| {
        seed_in(conn, vault, dev, public_url).await
    })
    .await
}

async fn seed_in(
    conn: &mut AsyncPgConnection,
    vault: &Vault,
    dev: &DevFile,
    public_url: &url::Url,
) -> Result<(), CliError> {
    let hasher = PasswordHasher::for_this_machine();
    if users::find_by_email(conn, &dev.operator.email)
        .await
        .map_err(anyhow::Error::from)?
        .is_none()
    {
        let hash = hasher
            .hash(&SecretString::from(dev.operator.password.clone()))
            .await
            .map_err(anyhow::Error::from)?;
        users::insert(
            conn,
            &users::NewUser {
                email: &dev.operator.email,
                password_hash: Some(&hash),
                role: users::ROLE_OPERATOR,
                tenant_id: None,
            },
        )
        .await
        .map_err(anyhow::Error::from)?;
    }
    for demo in &dev.tenants {
        let tenant = match tenants::find_by_slug(conn, &demo.slug)
            .await
            .map_err(anyhow::Error::from)?
        {
            Some(tenant) => tenant,
            None => tenants::insert(
                conn,
                &tenants::NewTenant {
                    slug: &demo.slug,
                    name: &demo.name,
                    finch_sandbox: "finch",
                },
            )
            .await
            .map_err(anyhow::Error::from)?,
        };
        if users::find_by_email(conn, &demo.admin.email)
            .await
            .map_err(anyhow::Error::from)?
            .is_none()
        {
            let hash = hasher
                .hash(&SecretString::from(demo.admin.password.clone()))
                .await
                .map_err(anyhow::Error::from)?;
            users::insert(
                conn,
                &users::NewUser {
                    email: &demo.admin.email,
                    password_hash: Some(&hash),
                    role: users::ROLE_TENANT_ADMIN,
                    tenant_id: Some(tenant.id),
                },
            )
            .await
            .map_err(anyhow::Error::from)?;
        }
        let current = credentials::current(conn, tenant.id)
            .await
            .map_err(anyhow::Error::from)?;
        if current.is_none_or(|c| c.client_id != demo.finch_client_id) {
            crate::tenancy::credentials::store(
                conn,
                vault,
                tenant.id,
                &demo.finch_client_id,
                &SecretString::from(demo.finch_client_secret.clone()),
                None,
            )
            .await
            .map_err(anyhow::Error::from)?;
        }
        let callback = crate::tenancy::callback_url(public_url, &demo.slug);
        redirect_uris::add(conn, tenant.id, &callback, None)
            .await
            .map_err(anyhow::Error::from)?;
    }
    Ok(())
}
