//! The binary refuses bad configuration with one clear line and a non-zero exit code.

use std::process::Command;

use crate::helpers::{TestDatabase, random_master_keys};

const SESSION_SECRET: &str = "c2Vzc2lvbi1zZWNyZXQtZm9yLXRlc3RzLW9ubHktNjQtYnl0ZXMtbG9uZy0xMjM0NTY3ODkwMTIzNDU2Nzg5MDEyMzQ1Njc4OTA=";

fn finchgate(args: &[&str], env: &[(&str, &str)]) -> (i32, Vec<String>) {
    let output = Command::new(env!("CARGO_BIN_EXE_finchgate"))
        .args(args)
        .env_clear()
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .expect("run the finchgate binary");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    (output.status.code().unwrap_or(-1), lines)
}

fn assert_one_line_naming(result: (i32, Vec<String>), var: &str, words: &str) {
    let (code, lines) = result;
    assert_ne!(code, 0, "non-zero exit");
    assert_eq!(lines.len(), 1, "exactly one line: {lines:#?}");
    assert!(lines[0].starts_with("finchgate: "), "{}", lines[0]);
    assert!(lines[0].contains(var), "names {var}: {}", lines[0]);
    assert!(lines[0].contains(words), "says {words:?}: {}", lines[0]);
    assert!(!lines[0].contains("panicked"), "{}", lines[0]);
}

#[test]
fn serve_without_a_database_url_says_so() {
    assert_one_line_naming(finchgate(&["serve"], &[]), "DATABASE_URL", "is not set");
}

#[test]
fn serve_with_a_malformed_database_url_says_so() {
    assert_one_line_naming(
        finchgate(&["serve"], &[("DATABASE_URL", "not a url")]),
        "DATABASE_URL",
        "not a valid URL",
    );
}

#[test]
fn serve_with_a_malformed_master_key_says_so_without_echoing_it() {
    let result = finchgate(
        &["serve"],
        &[
            ("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/x"),
            ("FINCHGATE_MASTER_KEYS", "k1:c2hvcnQ="),
        ],
    );
    assert_one_line_naming(result.clone(), "FINCHGATE_MASTER_KEYS", "32 bytes");
    assert!(
        !result.1[0].contains("c2hvcnQ="),
        "key material is never echoed"
    );
    assert_eq!(result.0, 2);
}

#[test]
fn serve_with_a_plain_http_finch_url_says_so() {
    let keys = random_master_keys("k1");
    let result = finchgate(
        &["serve"],
        &[
            ("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/x"),
            ("FINCHGATE_MASTER_KEYS", &keys),
            ("FINCHGATE_SESSION_SECRET", SESSION_SECRET),
            ("FINCH_API_URL", "http://api.tryfinch.com"),
        ],
    );
    assert_one_line_naming(result, "FINCH_API_URL", "https");
}

#[test]
fn serve_with_a_short_session_secret_says_so() {
    let keys = random_master_keys("k1");
    let result = finchgate(
        &["serve"],
        &[
            ("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/x"),
            ("FINCHGATE_MASTER_KEYS", &keys),
            ("FINCHGATE_SESSION_SECRET", "dG9vIHNob3J0"),
        ],
    );
    assert_one_line_naming(result, "FINCHGATE_SESSION_SECRET", "at least 64 bytes");
}

#[test]
fn an_unknown_log_format_says_so() {
    assert_one_line_naming(
        finchgate(&["migrate"], &[("FINCHGATE_LOG_FORMAT", "xml")]),
        "FINCHGATE_LOG_FORMAT",
        "json",
    );
}

#[test]
fn serve_with_an_unreachable_database_says_so() {
    let keys = random_master_keys("k1");
    let result = finchgate(
        &["serve", "--bind", "127.0.0.1:0"],
        &[
            // Port 1 on loopback: nothing listens there.
            ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/finchgate"),
            ("FINCHGATE_MASTER_KEYS", &keys),
            ("FINCHGATE_SESSION_SECRET", SESSION_SECRET),
        ],
    );
    assert_one_line_naming(result, "DATABASE_URL", "unreachable");
}

#[tokio::test]
async fn migrate_applies_everything_and_then_nothing() {
    let db = TestDatabase::empty().await;
    let url = secrecy::ExposeSecret::expose_secret(&db.url).to_owned();
    let first = Command::new(env!("CARGO_BIN_EXE_finchgate"))
        .args(["migrate"])
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).starts_with("Applied "));
    let second = Command::new(env!("CARGO_BIN_EXE_finchgate"))
        .args(["migrate"])
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(second.status.success());
    assert_eq!(
        String::from_utf8_lossy(&second.stdout).trim(),
        "The database is up to date."
    );
}

fn serve_env<'a>(db_url: &'a str, keys: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("DATABASE_URL", db_url),
        ("FINCHGATE_MASTER_KEYS", keys),
        ("FINCHGATE_SESSION_SECRET", SESSION_SECRET),
    ]
}

async fn register_keys(db: &TestDatabase, keys: &str) -> finchgate::vault::Vault {
    let keyring = finchgate::config::parse_keyring(Some(keys), None).unwrap();
    let vault = finchgate::vault::Vault::new(keyring);
    let mut conn = db.connect().await;
    finchgate::keys::register_and_check(&mut conn, &vault)
        .await
        .unwrap();
    vault
}

#[tokio::test]
async fn serve_refuses_a_different_key_under_a_known_id() {
    let db = TestDatabase::migrated().await;
    register_keys(&db, &random_master_keys("k1")).await;
    let url = secrecy::ExposeSecret::expose_secret(&db.url).to_owned();
    let other = random_master_keys("k1");
    let result = finchgate(
        &["serve", "--bind", "127.0.0.1:0"],
        &serve_env(&url, &other),
    );
    assert_one_line_naming(result.clone(), "FINCHGATE_MASTER_KEYS", "does not open");
    assert_eq!(result.0, 2);
}

#[tokio::test]
async fn serve_refuses_to_start_when_stored_secrets_use_a_key_that_is_not_configured() {
    use diesel_async::RunQueryDsl as _;
    let db = TestDatabase::migrated().await;
    let old = random_master_keys("old");
    let vault = register_keys(&db, &old).await;
    let mut conn = db.connect().await;
    let tenant = finchgate::db::models::tenants::insert(
        &mut conn,
        &finchgate::db::models::tenants::NewTenant {
            slug: "acme",
            name: "Acme",
            finch_sandbox: "none",
        },
    )
    .await
    .unwrap();
    let row = uuid::Uuid::new_v4();
    let sealed = vault
        .seal(
            &finchgate::vault::RowContext::new(
                finchgate::vault::Purpose::FinchClientSecret,
                tenant.id,
                row,
            ),
            b"s3cret",
        )
        .unwrap();
    diesel::sql_query("BEGIN").execute(&mut conn).await.unwrap();
    finchgate::db::models::credentials::replace(
        &mut conn,
        &finchgate::db::models::credentials::NewCredentials {
            id: row,
            tenant_id: tenant.id,
            client_id: "client",
            secret_kek_id: sealed.kek_id.as_str(),
            secret_envelope: &sealed.envelope,
            secret_last4: "cret",
            created_by: None,
        },
    )
    .await
    .unwrap();
    diesel::sql_query("COMMIT")
        .execute(&mut conn)
        .await
        .unwrap();

    let url = secrecy::ExposeSecret::expose_secret(&db.url).to_owned();
    let new = random_master_keys("new");
    let result = finchgate(&["serve", "--bind", "127.0.0.1:0"], &serve_env(&url, &new));
    assert_one_line_naming(
        result,
        "FINCHGATE_MASTER_KEYS",
        "\"old\" is missing but 1 stored secret",
    );
}

#[tokio::test]
async fn serve_starts_answers_and_stops_cleanly_on_sigterm() {
    let db = TestDatabase::migrated().await;
    let url = secrecy::ExposeSecret::expose_secret(&db.url).to_owned();
    let keys = random_master_keys("k1");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_finchgate"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env_clear()
        .env("RUST_LOG", "warn")
        .envs(serve_env(&url, &keys))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let mut healthy = false;
    for _ in 0..100 {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
        {
            healthy = r.status() == 200;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(healthy, "the server answered /healthz");
    let ready = client
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(std::time::Duration::from_secs(15), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "a clean shutdown exits 0, got {status}");
}
