//! `finchgate api-key create | list | revoke`: a tenant's API keys from the server's shell.
//!
//! `create` prints the key alone on standard output (easy to capture) and the explanation on
//! standard error; the key is never stored or printed again. Audited with actor kind `cli`.

use super::args::{ApiKeyCreateArgs, ApiKeyListArgs, ApiKeyRevokeArgs};
use super::{CliError, migrated_pool};
use crate::api::keys::{self, KeyError, NewKey};
use crate::db::models::{api_keys, tenants};
use crate::db::{Scope, transaction};
use crate::onboarding::Actor;

fn refused(error: impl std::fmt::Display) -> CliError {
    CliError::Refused(error.to_string())
}

impl From<KeyError> for CliError {
    fn from(error: KeyError) -> Self {
        match error {
            KeyError::Database(e) => Self::Runtime(anyhow::anyhow!("database error: {e}")),
            KeyError::Random(e) => Self::Runtime(e.into()),
            other => refused(other),
        }
    }
}

/// The tenant with this slug, or a refusal naming it.
async fn tenant_of(
    conn: &mut diesel_async::AsyncPgConnection,
    slug: &str,
) -> Result<tenants::Tenant, KeyError> {
    tenants::find_by_slug(conn, slug)
        .await?
        .ok_or_else(|| KeyError::UnknownTenant(slug.to_owned()))
}

pub(super) async fn create(args: ApiKeyCreateArgs) -> Result<(), CliError> {
    // `--scope a b` and `--scope "a b"` alike.
    let scopes: Vec<&str> = args
        .scopes
        .iter()
        .flat_map(|s| s.split([' ', ',']))
        .filter(|s| !s.is_empty())
        .collect();
    let new = NewKey::parse(&args.name, scopes, args.expires_in_days)
        .map_err(|e| refused(format!("the key was not created: {e}")))?;
    let pool = migrated_pool(&args.database).await?;
    let mut conn = pool.get().await?;
    let now = chrono::Utc::now();
    let created = transaction(&mut conn, Scope::System, async |conn| {
        let tenant = tenant_of(conn, &args.tenant).await?;
        keys::create(conn, tenant.id, &new, &Actor::cli(), now).await
    })
    .await?;
    println!("{}", keys::reveal(&created.key));
    eprintln!(
        "Created API key \"{}\" ({}) for tenant {} with scopes {}{}. It is shown only now: store it in your backend's secret store.",
        created.row.name,
        created.row.id,
        args.tenant,
        created.row.scopes.join(", "),
        created
            .row
            .expires_at
            .map(|at| format!(", expiring {}", at.format("%Y-%m-%d %H:%M UTC")))
            .unwrap_or_default()
    );
    Ok(())
}

pub(super) async fn list(args: ApiKeyListArgs) -> Result<(), CliError> {
    let pool = migrated_pool(&args.database).await?;
    let mut conn = pool.get().await?;
    let rows = transaction(&mut conn, Scope::System, async |conn| {
        let tenant = tenant_of(conn, &args.tenant).await?;
        Ok::<_, KeyError>(api_keys::list(conn, tenant.id).await?)
    })
    .await?;
    let now = chrono::Utc::now();
    let when = |at: Option<chrono::DateTime<chrono::Utc>>| {
        at.map_or_else(
            || "-".to_owned(),
            |at| at.format("%Y-%m-%dT%H:%MZ").to_string(),
        )
    };
    println!("id\tname\tprefix\tscopes\tstatus\tcreated\texpires\tlast_used");
    for row in rows {
        println!(
            "{}\t{}\tfgk_{}\t{}\t{}\t{}\t{}\t{}",
            row.id,
            row.name,
            row.prefix,
            row.scopes.join(","),
            keys::status(&row, now),
            when(Some(row.created_at)),
            when(row.expires_at),
            when(row.last_used_at),
        );
    }
    Ok(())
}

pub(super) async fn revoke(args: ApiKeyRevokeArgs) -> Result<(), CliError> {
    let id = uuid::Uuid::parse_str(args.id.trim())
        .map_err(|_| refused("--id: not a key id (see `finchgate api-key list`)"))?;
    let pool = migrated_pool(&args.database).await?;
    let mut conn = pool.get().await?;
    let now = chrono::Utc::now();
    let revoked = transaction(&mut conn, Scope::System, async |conn| {
        let tenant = tenant_of(conn, &args.tenant).await?;
        keys::revoke(conn, tenant.id, id, &Actor::cli(), now).await
    })
    .await?;
    if revoked {
        println!("Revoked API key {id}.");
    } else {
        println!("API key {id} was already revoked.");
    }
    Ok(())
}
