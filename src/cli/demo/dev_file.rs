//! The demo's file of development keys and logins: created once with fresh random values, read
//! back on every later run.

use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::cli::CliError;
use crate::config::ConfigError;

/// What the demo keeps between runs. Development values only: anyone with this file can decrypt
/// the demo database and sign in as every demo user.
#[derive(Serialize, Deserialize)]
pub(super) struct DevFile {
    pub(super) warning: String,
    pub(super) master_keys: String,
    pub(super) session_secret: String,
    pub(super) operator: Login,
    pub(super) tenants: Vec<DemoTenant>,
}

#[derive(Serialize, Deserialize, Clone)]
pub(super) struct Login {
    pub(super) email: String,
    pub(super) password: String,
}

#[derive(Serialize, Deserialize, Clone)]
pub(super) struct DemoTenant {
    pub(super) slug: String,
    pub(super) name: String,
    pub(super) admin: Login,
    pub(super) finch_client_id: String,
    pub(super) finch_client_secret: String,
    /// An API key with every scope (`fgk_…`), so `curl` works at once; added to older files.
    #[serde(default)]
    pub(super) api_key: String,
}

pub(super) const WARNING: &str =
    "DEVELOPMENT KEYS AND PASSWORDS for `finchgate demo` only. Never use them in production.";

/// Reads the file at `path`, or creates it (readable by its owner only) if there is none.
pub(super) fn load_or_create(path: &Path) -> Result<DevFile, CliError> {
    if path.exists() {
        let raw = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(
                "FINCHGATE_DEV_FILE",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        let mut dev: DevFile = serde_json::from_str(&raw).map_err(|e| {
            ConfigError::new(
                "FINCHGATE_DEV_FILE",
                format!(
                    "{} is not a demo file ({e}); move it away to start afresh",
                    path.display()
                ),
            )
        })?;
        // A file from before API keys: give each tenant one and write it back.
        if dev.tenants.iter().any(|t| t.api_key.is_empty()) {
            for tenant in dev.tenants.iter_mut().filter(|t| t.api_key.is_empty()) {
                tenant.api_key = new_api_key()?;
            }
            let json = serde_json::to_string_pretty(&dev).map_err(anyhow::Error::from)?;
            let temporary = path.with_extension("json.new");
            drop(std::fs::remove_file(&temporary));
            write_private(&temporary, json.as_bytes())
                .and_then(|()| std::fs::rename(&temporary, path))
                .map_err(|e| {
                    ConfigError::new(
                        "FINCHGATE_DEV_FILE",
                        format!("cannot write {}: {e}", path.display()),
                    )
                })?;
        }
        return Ok(dev);
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
        api_key: new_api_key()?,
    })
}

/// A fresh API key for a demo tenant.
fn new_api_key() -> Result<String, CliError> {
    let minted = crate::api::keys::mint().map_err(anyhow::Error::from)?;
    Ok(secrecy::ExposeSecret::expose_secret(&minted.key).to_owned())
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
