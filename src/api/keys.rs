//! API keys: minting (`fgk_<prefix>_<secret>`), creating, listing, revoking (audited) and
//! authenticating a presented key.
//!
//! The prefix (16 hex characters, 64 random bits) is a public lookup id; the secret is 32 random
//! bytes (256 bits). Only SHA-256 of the secret is stored: a slow password hash protects guessable
//! secrets, and a uniformly random 256-bit secret cannot be guessed, so one fast hash keeps a
//! stolen table useless while every API request stays cheap. Comparison is constant-time, and an
//! unknown prefix or a malformed key is hashed and compared against a dummy all the same, so every
//! refusal costs the same work.

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use secrecy::{ExposeSecret as _, SecretString};
use uuid::Uuid;

use crate::db::models::{api_keys, audit};
use crate::domain::ApiScope;
use crate::onboarding::Actor;
use crate::primitives::{self, RandomError};

/// What every key starts with.
pub const KEY_PREFIX: &str = "fgk_";
/// Hex characters of the public prefix.
const PREFIX_CHARS: usize = 16;
/// Longest accepted name.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest accepted lifetime.
pub const MAX_EXPIRY_DAYS: i64 = 3650;

/// A freshly minted key: shown once, then only its hash exists.
pub struct MintedKey {
    pub prefix: String,
    pub secret_hash: Vec<u8>,
    /// The whole key, `fgk_<prefix>_<secret>`.
    pub key: SecretString,
}

/// Mints a new key from the system's CSPRNG.
pub fn mint() -> Result<MintedKey, RandomError> {
    let prefix_bytes = primitives::random_bytes::<8>()?;
    let prefix: String = prefix_bytes.iter().map(|b| format!("{b:02x}")).collect();
    let secret = zeroize::Zeroizing::new(primitives::random_token()?);
    let secret_hash = primitives::sha256(secret.as_bytes());
    let key = SecretString::from(format!("{KEY_PREFIX}{prefix}_{}", secret.as_str()));
    Ok(MintedKey {
        prefix,
        secret_hash,
        key,
    })
}

/// A presented key split into its parts; `None` when it does not have the shape of a key.
pub fn split(presented: &str) -> Option<(&str, &str)> {
    let rest = presented.strip_prefix(KEY_PREFIX)?;
    if rest.len() != PREFIX_CHARS + 1 + primitives::TOKEN_CHARS
        || !rest.is_char_boundary(PREFIX_CHARS)
    {
        return None;
    }
    let (prefix, rest) = rest.split_at(PREFIX_CHARS);
    let secret = rest.strip_prefix('_')?;
    let prefix_ok = prefix
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (prefix_ok && primitives::looks_like_token(secret)).then_some((prefix, secret))
}

/// The caller an accepted key stands for.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: Uuid,
    pub tenant_id: Uuid,
    pub scopes: Vec<ApiScope>,
}

impl Caller {
    pub fn has(&self, scope: ApiScope) -> bool {
        self.scopes.contains(&scope)
    }
}

/// Compared when no stored hash is there, so an unknown prefix does the same work.
const DUMMY_HASH: [u8; 32] = [0x5a; 32];

/// Checks a presented key: `Some` only for a well-formed, known, unrevoked, unexpired key whose
/// secret matches, of an active tenant. Every other case is `None`, after the same hash and
/// comparison. Runs in the system scope (the tenant is not known before the key is).
pub async fn authenticate(
    conn: &mut AsyncPgConnection,
    presented: &str,
    now: DateTime<Utc>,
) -> diesel::QueryResult<Option<Caller>> {
    // A malformed key is looked up too (under a prefix no key has), so that every refusal
    // costs one query, one hash and one comparison.
    let (prefix, secret) = split(presented).unwrap_or(("", presented));
    let row = api_keys::find_by_prefix(conn, prefix).await?;
    let computed = primitives::sha256(secret.as_bytes());
    let expected = row.as_ref().map_or(&DUMMY_HASH[..], |r| &r.secret_hash[..]);
    let matches = primitives::constant_time_eq(&computed, expected);
    let Some(row) = row.filter(|_| matches) else {
        return Ok(None);
    };
    if row.revoked_at.is_some() || row.expires_at.is_some_and(|at| at <= now) {
        return Ok(None);
    }
    let active = crate::db::models::tenants::find(conn, row.tenant_id)
        .await?
        .is_some_and(|t| t.status == "active");
    if !active {
        return Ok(None);
    }
    api_keys::touch(conn, row.id, now).await?;
    Ok(Some(Caller {
        key_id: row.id,
        tenant_id: row.tenant_id,
        scopes: row.scopes.iter().filter_map(|s| s.parse().ok()).collect(),
    }))
}

/// Why a key was not created.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the name must be 1 to {MAX_NAME_CHARS} characters")]
    Name,
    #[error("{0}")]
    Scopes(String),
    #[error("the lifetime must be 1 to {MAX_EXPIRY_DAYS} days")]
    Expiry,
    #[error("no such tenant: {0}")]
    UnknownTenant(String),
    #[error("no such key")]
    UnknownKey,
    #[error(transparent)]
    Random(#[from] RandomError),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// What a new key is made of, checked.
pub struct NewKey {
    pub name: String,
    pub scopes: Vec<ApiScope>,
    pub expires_in_days: Option<i64>,
}

impl NewKey {
    /// Checks the form or command-line values.
    pub fn parse<'a>(
        name: &str,
        scopes: impl IntoIterator<Item = &'a str>,
        expires_in_days: Option<i64>,
    ) -> Result<Self, KeyError> {
        let name = name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(KeyError::Name);
        }
        let scopes = crate::domain::api_scope::parse_list(scopes).map_err(KeyError::Scopes)?;
        if expires_in_days.is_some_and(|d| !(1..=MAX_EXPIRY_DAYS).contains(&d)) {
            return Err(KeyError::Expiry);
        }
        Ok(Self {
            name: name.to_owned(),
            scopes,
            expires_in_days,
        })
    }
}

/// A created key: its row and the key itself, to show once.
pub struct Created {
    pub row: api_keys::ApiKeyRow,
    pub key: SecretString,
}

/// Creates a key for `tenant_id` (audited as `api_key.created`, with its name and scopes).
pub async fn create(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    new: &NewKey,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Created, KeyError> {
    let minted = mint()?;
    let scopes: Vec<String> = new.scopes.iter().map(|s| s.as_str().to_owned()).collect();
    let row = api_keys::insert(
        conn,
        &api_keys::NewApiKey {
            tenant_id,
            name: &new.name,
            scopes: &scopes,
            prefix: &minted.prefix,
            secret_hash: &minted.secret_hash,
            created_by: actor.user_id,
            created_at: now,
            expires_at: new.expires_in_days.map(|d| now + chrono::Duration::days(d)),
        },
    )
    .await?;
    audit::record(
        conn,
        audit::Event::new(actor.kind, actor.user_id, "api_key.created")
            .tenant(tenant_id)
            .target("api_key", row.id)
            .details(serde_json::json!({
                "name": row.name,
                "prefix": row.prefix,
                "scopes": row.scopes,
                "expires_at": row.expires_at,
            }))
            .ip(actor.ip.clone()),
    )
    .await?;
    Ok(Created {
        row,
        key: minted.key,
    })
}

/// Stores a key minted elsewhere (the demo's, kept in its development file) unless its prefix
/// is already known. Not audited: development only.
pub async fn adopt(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    name: &str,
    key: &str,
    scopes: &[ApiScope],
) -> diesel::QueryResult<()> {
    let Some((prefix, secret)) = split(key) else {
        return Ok(());
    };
    if api_keys::find_by_prefix(conn, prefix).await?.is_some() {
        return Ok(());
    }
    let scopes: Vec<String> = scopes.iter().map(|s| s.as_str().to_owned()).collect();
    api_keys::insert(
        conn,
        &api_keys::NewApiKey {
            tenant_id,
            name,
            scopes: &scopes,
            prefix,
            secret_hash: &primitives::sha256(secret.as_bytes()),
            created_by: None,
            created_at: chrono::Utc::now(),
            expires_at: None,
        },
    )
    .await
    .map(drop)
}

/// Revokes the tenant's key `id` (audited when this call revoked it).
pub async fn revoke(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    id: Uuid,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<bool, KeyError> {
    let revoked = api_keys::revoke(conn, tenant_id, id, now)
        .await?
        .ok_or(KeyError::UnknownKey)?;
    if revoked {
        audit::record(
            conn,
            audit::Event::new(actor.kind, actor.user_id, "api_key.revoked")
                .tenant(tenant_id)
                .target("api_key", id)
                .ip(actor.ip.clone()),
        )
        .await?;
    }
    Ok(revoked)
}

/// A key's state for lists: `active`, `expired` or `revoked`.
pub fn status(row: &api_keys::ApiKeyRow, now: DateTime<Utc>) -> &'static str {
    if row.revoked_at.is_some() {
        "revoked"
    } else if row.expires_at.is_some_and(|at| at <= now) {
        "expired"
    } else {
        "active"
    }
}

/// The key as it is printed (only ever right after creation).
pub fn reveal(key: &SecretString) -> &str {
    key.expose_secret()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_key_splits_into_its_prefix_and_a_secret_matching_its_hash()
    -> Result<(), RandomError> {
        let minted = mint()?;
        let key = minted.key.expose_secret();
        assert!(key.starts_with("fgk_"));
        let Some((prefix, secret)) = split(key) else {
            panic!("a minted key has the shape of a key");
        };
        assert_eq!(prefix, minted.prefix);
        assert_eq!(primitives::sha256(secret), minted.secret_hash);
        Ok(())
    }

    #[test]
    fn malformed_keys_do_not_split() {
        assert!(split("").is_none());
        assert!(split("fgk_").is_none());
        assert!(split(&format!("fgk_{}_{}", "g".repeat(16), "A".repeat(43))).is_none());
        assert!(split(&format!("fgk_{}-{}", "a".repeat(16), "A".repeat(43))).is_none());
        assert!(split(&format!("fgx_{}_{}", "a".repeat(16), "A".repeat(43))).is_none());
        assert!(split(&format!("fgk_{}_{}", "a".repeat(16), "A".repeat(42))).is_none());
        assert!(split(&format!("fgk_{}_{}é", "a".repeat(16), "A".repeat(41))).is_none());
        assert!(split(&format!("fgk_{}_{}", "a".repeat(16), "A".repeat(43))).is_some());
    }
}
