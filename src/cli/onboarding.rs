//! The bootstrap and recovery commands: `finchgate operator create`, `tenant create`, `tenant
//! invite`, `user reset`, `user clear-two-factor`.
//!
//! They need only the database (and, to print a link, the public URL): pending migrations run
//! first, like `finchgate migrate`; the work runs in the system scope and is audited with actor
//! kind `cli`. A refusal (bad input, a taken slug, a weak password) is one line on stderr.

use std::io::{IsTerminal as _, Read as _};

use secrecy::{ExposeSecret as _, SecretString};

use super::args::{
    OperatorCreateArgs, TenantCreateArgs, TenantInviteArgs, UserEmailArgs, UserResetArgs,
};
use super::{CliError, migrated_pool};
use crate::auth::password::PasswordHasher;
use crate::config::ConfigError;
use crate::db::models::tenants;
use crate::db::models::users;
use crate::db::{Scope, transaction};
use crate::domain::{Email, Slug, password_policy};
use crate::onboarding::{self, Actor, OnboardingError, invitation, recovery};

/// A refusal or failure as the one line the CLI prints.
fn refused(error: impl std::fmt::Display) -> CliError {
    CliError::Runtime(anyhow::anyhow!("{error}"))
}

/// Refusals and failures alike exit 1, in one line.
impl From<OnboardingError> for CliError {
    fn from(error: OnboardingError) -> Self {
        match error {
            OnboardingError::Database(e) => Self::Runtime(anyhow::anyhow!("database error: {e}")),
            other => refused(other),
        }
    }
}

pub(super) async fn operator_create(args: OperatorCreateArgs) -> Result<(), CliError> {
    let email = Email::parse(&args.email).map_err(refused)?;
    let password = if args.password_stdin {
        password_from_stdin()?
    } else {
        password_from_terminal()?
    };
    password_policy::check(password.expose_secret())
        .map_err(|e| refused(format!("the password was refused: {e}")))?;
    let pool = migrated_pool(&args.database).await?;
    let hash = PasswordHasher::new(1)
        .hash(&password)
        .await
        .map_err(|e| CliError::Runtime(e.into()))?;
    drop(password);
    let mut conn = pool.get().await?;
    let user = transaction(&mut conn, Scope::System, async |conn| {
        onboarding::create_operator(conn, &email, &hash, &Actor::cli()).await
    })
    .await?;
    println!("Created operator {} ({}).", user.email, user.id);
    Ok(())
}

/// Reads the password from standard input: everything up to end of input, less one trailing
/// line break (what `echo` or a here-string adds). Nothing else is trimmed.
fn password_from_stdin() -> Result<SecretString, CliError> {
    let mut raw = zeroize::Zeroizing::new(String::new());
    // One byte more than the policy allows (plus a CRLF) is enough to know it is too long.
    let limit = u64::try_from(password_policy::MAX_BYTES + 3).unwrap_or(u64::MAX);
    std::io::stdin()
        .take(limit)
        .read_to_string(&mut raw)
        .map_err(|e| refused(format!("cannot read the password from standard input: {e}")))?;
    let mut password: &str = &raw;
    if let Some(rest) = password.strip_suffix('\n') {
        password = rest.strip_suffix('\r').unwrap_or(rest);
    }
    if password.contains('\n') {
        return Err(refused(
            "the password on standard input has more than one line; give just the password",
        ));
    }
    Ok(SecretString::from(password.to_owned()))
}

/// Asks twice on the terminal, without echo.
fn password_from_terminal() -> Result<SecretString, CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(refused(
            "no terminal to ask for the password on; pipe it in and pass --password-stdin",
        ));
    }
    eprintln!("{}", password_policy::hint());
    let ask = |prompt: &str| {
        rpassword::prompt_password(prompt)
            .map(SecretString::from)
            .map_err(|e| refused(format!("cannot read the password from the terminal: {e}")))
    };
    let first = ask("Password for the new operator: ")?;
    let second = ask("The same password again: ")?;
    if first.expose_secret() != second.expose_secret() {
        return Err(refused("the two passwords differ; nothing was created"));
    }
    Ok(first)
}

pub(super) async fn tenant_create(args: TenantCreateArgs) -> Result<(), CliError> {
    let slug = Slug::parse(&args.slug).map_err(|e| refused(format!("--slug: {e}")))?;
    let name =
        onboarding::parse_tenant_name(&args.name).map_err(|e| refused(format!("--name: {e}")))?;
    let pool = migrated_pool(&args.database).await?;
    let mut conn = pool.get().await?;
    let tenant = transaction(&mut conn, Scope::System, async |conn| {
        onboarding::create_tenant(conn, &slug, &name, &Actor::cli()).await
    })
    .await?;
    println!(
        "Created tenant {} (\"{}\", {}). Invite its first admin with: finchgate tenant invite --tenant {} --email …",
        tenant.slug, tenant.name, tenant.id, tenant.slug
    );
    Ok(())
}

/// The public URL a printed link is built on; required.
fn public_url_of(raw: Option<&str>, what: &str) -> Result<url::Url, CliError> {
    match raw.map(str::trim) {
        Some(raw) if !raw.is_empty() => {
            Ok(crate::config::parse_base_url("FINCHGATE_PUBLIC_URL", raw)?)
        }
        _ => Err(ConfigError::new(
            "FINCHGATE_PUBLIC_URL",
            format!("is not set; the {what} needs the URL browsers use to reach finchgate (e.g. https://finchgate.example.com)"),
        )
        .into()),
    }
}

/// The user with this email, or a refusal naming it.
async fn user_by_email(
    conn: &mut diesel_async::AsyncPgConnection,
    email: &Email,
) -> Result<users::User, CliError> {
    transaction(conn, Scope::System, async |conn| {
        users::find_by_email(conn, email.as_str()).await
    })
    .await?
    .ok_or_else(|| refused(format!("there is no user with the email {email}")))
}

pub(super) async fn user_reset(args: UserResetArgs) -> Result<(), CliError> {
    let public_url = public_url_of(args.public_url.as_deref(), "reset link")?;
    let email = Email::parse(&args.email).map_err(|e| refused(format!("--email: {e}")))?;
    let pool = migrated_pool(&args.database).await?;
    let mut conn = pool.get().await?;
    let user = user_by_email(&mut conn, &email).await?;
    let now = chrono::Utc::now();
    let issued = transaction(&mut conn, Scope::System, async |conn| {
        recovery::issue(conn, &user, &Actor::cli(), now).await
    })
    .await?;
    // The link alone on standard output (easy to capture); the explanation on standard error.
    println!("{}", issued.link(&public_url).expose_secret());
    eprintln!(
        "One-time password reset link for {}: it works once, until {} UTC; {} session(s) ended. Send it over a trusted channel; it is not stored and cannot be shown again.",
        issued.email,
        issued.expires_at.format("%Y-%m-%d %H:%M"),
        issued.sessions_ended
    );
    Ok(())
}

pub(super) async fn user_clear_two_factor(args: UserEmailArgs) -> Result<(), CliError> {
    let email = Email::parse(&args.email).map_err(|e| refused(format!("--email: {e}")))?;
    let pool = migrated_pool(&args.database).await?;
    let mut conn = pool.get().await?;
    let user = user_by_email(&mut conn, &email).await?;
    let had = transaction(&mut conn, Scope::System, async |conn| {
        recovery::clear_two_factor(conn, &user, &Actor::cli()).await
    })
    .await?;
    if had {
        println!("Cleared two-factor sign-in of {}.", user.email);
    } else {
        println!(
            "{} had no two-factor sign-in (recorded anyway).",
            user.email
        );
    }
    Ok(())
}

pub(super) async fn tenant_invite(args: TenantInviteArgs) -> Result<(), CliError> {
    let public_url = public_url_of(args.public_url.as_deref(), "setup link")?;
    let slug = Slug::parse(&args.tenant).map_err(|e| refused(format!("--tenant: {e}")))?;
    let email = Email::parse(&args.email).map_err(|e| refused(format!("--email: {e}")))?;
    let pool = migrated_pool(&args.database).await?;
    let mut conn = pool.get().await?;
    let now = chrono::Utc::now();
    let issued = transaction(&mut conn, Scope::System, async |conn| {
        let Some(tenant) = tenants::find_by_slug(conn, slug.as_str()).await? else {
            return Err(OnboardingError::UnknownTenant(slug.to_string()));
        };
        invitation::issue(conn, &tenant, &email, &Actor::cli(), now).await
    })
    .await?;
    // The link alone on standard output (easy to capture); the explanation on standard error.
    println!("{}", issued.token.link(&public_url).expose_secret());
    eprintln!(
        "One-time setup link for {} in tenant {}: it works once, until {} UTC. Send it over a trusted channel; it is not stored and cannot be shown again.",
        issued.email,
        slug,
        issued.expires_at.format("%Y-%m-%d %H:%M")
    );
    Ok(())
}
