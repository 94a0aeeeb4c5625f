//! The demo's rows: an operator and, per demo tenant, the tenant, its admin, its sandbox app
//! credentials and its callback URL. Creates what is missing; leaves what exists.

use diesel_async::AsyncPgConnection;
use secrecy::SecretString;
use uuid::Uuid;

use super::dev_file::{DevFile, Login};
use crate::auth::password::PasswordHasher;
use crate::cli::CliError;
use crate::db::Scope;
use crate::db::models::{credentials, redirect_uris, tenants, users};
use crate::vault::Vault;

/// Seeds what `dev` describes, in one transaction.
pub(super) async fn seed(
    pool: &crate::db::Pool,
    vault: &Vault,
    dev: &DevFile,
    public_url: &url::Url,
) -> Result<(), CliError> {
    let mut conn = pool.get().await?;
    crate::db::transaction(&mut conn, Scope::System, async |conn| {
        Ok::<_, CliError>(seed_in(conn, vault, dev, public_url).await?)
    })
    .await
}

async fn seed_in(
    conn: &mut AsyncPgConnection,
    vault: &Vault,
    dev: &DevFile,
    public_url: &url::Url,
) -> anyhow::Result<()> {
    let hasher = PasswordHasher::for_this_machine();
    ensure_user(conn, &hasher, &dev.operator, users::ROLE_OPERATOR, None).await?;
    for demo in &dev.tenants {
        let tenant = match tenants::find_by_slug(conn, &demo.slug).await? {
            Some(tenant) => tenant,
            None => {
                tenants::insert(
                    conn,
                    &tenants::NewTenant {
                        slug: &demo.slug,
                        name: &demo.name,
                        finch_sandbox: "finch",
                    },
                )
                .await?
            }
        };
        ensure_user(
            conn,
            &hasher,
            &demo.admin,
            users::ROLE_TENANT_ADMIN,
            Some(tenant.id),
        )
        .await?;
        let current = credentials::current(conn, tenant.id).await?;
        if current.is_none_or(|c| c.client_id != demo.finch_client_id) {
            crate::credentials::store(
                conn,
                vault,
                tenant.id,
                &demo.finch_client_id,
                &SecretString::from(demo.finch_client_secret.clone()),
                None,
            )
            .await?;
        }
        let callback = crate::domain::redirect_uri::callback_url(public_url, &demo.slug);
        redirect_uris::add(conn, tenant.id, &callback, None).await?;
        crate::api::keys::adopt(
            conn,
            tenant.id,
            "demo key (development only)",
            &demo.api_key,
            crate::domain::ApiScope::ALL,
        )
        .await?;
    }
    Ok(())
}

/// Creates the user of `login` unless a user with its email exists.
async fn ensure_user(
    conn: &mut AsyncPgConnection,
    hasher: &PasswordHasher,
    login: &Login,
    role: &str,
    tenant_id: Option<Uuid>,
) -> anyhow::Result<()> {
    if users::find_by_email(conn, &login.email).await?.is_some() {
        return Ok(());
    }
    let hash = hasher
        .hash(&SecretString::from(login.password.clone()))
        .await?;
    users::insert(
        conn,
        &users::NewUser {
            email: &login.email,
            password_hash: Some(&hash),
            role,
            tenant_id,
        },
    )
    .await?;
    Ok(())
}
