//! Bringing tenants and people aboard: creating tenants and operators, inviting tenant admins with
//! one-time setup links, disabling users.
//!
//! The operator console and the CLI share these flows. Each runs inside the caller's transaction
//! (the caller chooses the scope) and writes its own audit event, so the change and its record
//! commit together.

pub mod invitation;
pub mod recovery;

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use crate::db::models::{audit, invitations, tenants, users};
use crate::domain::{Email, Slug};

/// Longest tenant name (the `tenants.name` CHECK).
pub const MAX_TENANT_NAME_CHARS: usize = 200;

/// Who is acting, for the audit trail.
#[derive(Debug, Clone)]
pub struct Actor {
    /// `operator`, `tenant_admin` or `cli` (the `audit_events.actor_kind` values).
    pub kind: &'static str,
    pub user_id: Option<Uuid>,
    pub ip: Option<String>,
}

impl Actor {
    /// Someone running a `finchgate` command on the server.
    pub fn cli() -> Self {
        Self {
            kind: "cli",
            user_id: None,
            ip: None,
        }
    }

    /// An operator in the console.
    pub fn operator(user_id: Uuid, ip: Option<String>) -> Self {
        Self {
            kind: "operator",
            user_id: Some(user_id),
            ip,
        }
    }

    /// An audit event of `action` by this actor.
    pub fn event<'a>(&'a self, action: &'a str) -> audit::Event<'a> {
        audit::Event::new(self.kind, self.user_id, action).ip(self.ip.clone())
    }
}

/// Why an onboarding step did not happen. All but the last two are refusals worded for the
/// person who asked; [`OnboardingError::is_refusal`] tells them apart.
#[derive(Debug, thiserror::Error)]
pub enum OnboardingError {
    #[error("A tenant with the slug \"{0}\" already exists. Choose another slug.")]
    SlugTaken(String),
    #[error("Enter a tenant name of 1 to {MAX_TENANT_NAME_CHARS} characters, without line breaks.")]
    BadTenantName,
    #[error("There is no tenant with the slug \"{0}\".")]
    UnknownTenant(String),
    #[error(
        "{0} has already set a password and can sign in. A setup link is only for an admin who has not set one yet."
    )]
    AlreadySetUp(String),
    #[error(
        "{0} already belongs to another account (an operator or another tenant's admin). One email address is one account."
    )]
    EmailTaken(String),
    #[error("The account {0} is disabled, so it cannot be invited.")]
    Disabled(String),
    #[error("That user does not exist in this tenant.")]
    UnknownUser,
    #[error("This setup link is invalid, has expired or has already been used.")]
    InvalidLink,
    #[error("the system random number generator failed")]
    Random,
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

impl OnboardingError {
    /// Whether this is a refusal to show to the person (rather than a failure to log).
    pub fn is_refusal(&self) -> bool {
        !matches!(self, Self::Random | Self::Database(_))
    }
}

/// Maps an insert's error: a unique violation becomes the refusal `taken` (the unique index
/// decides, race-free), any other error stays a database error.
fn or_taken(
    taken: impl FnOnce() -> OnboardingError,
) -> impl FnOnce(diesel::result::Error) -> OnboardingError {
    move |error| match error {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        ) => taken(),
        other => other.into(),
    }
}

/// A tenant's display name: trimmed, 1–200 characters, no control characters.
pub fn parse_tenant_name(raw: &str) -> Result<String, OnboardingError> {
    let name = raw.trim();
    let count = name.chars().count();
    if count == 0 || count > MAX_TENANT_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(OnboardingError::BadTenantName);
    }
    Ok(name.to_owned())
}

/// Creates a tenant (operator or system scope). A taken slug is a refusal, race-free: the unique
/// index decides.
pub async fn create_tenant(
    conn: &mut AsyncPgConnection,
    slug: &Slug,
    name: &str,
    actor: &Actor,
) -> Result<tenants::Tenant, OnboardingError> {
    let tenant = tenants::insert(
        conn,
        &tenants::NewTenant {
            slug: slug.as_str(),
            name,
            // Real Finch; an operator switches a tenant to a sandbox explicitly.
            finch_sandbox: "none",
        },
    )
    .await
    .map_err(or_taken(|| OnboardingError::SlugTaken(slug.to_string())))?;
    audit::record(
        conn,
        actor
            .event("tenant.created")
            .tenant(tenant.id)
            .target("tenant", tenant.id)
            .details(serde_json::json!({ "slug": tenant.slug })),
    )
    .await?;
    Ok(tenant)
}

/// Creates an operator with an already hashed password (system scope).
pub async fn create_operator(
    conn: &mut AsyncPgConnection,
    email: &Email,
    password_hash: &str,
    actor: &Actor,
) -> Result<users::User, OnboardingError> {
    if users::find_by_email(conn, email.as_str()).await?.is_some() {
        return Err(OnboardingError::EmailTaken(email.to_string()));
    }
    let user = users::insert(
        conn,
        &users::NewUser {
            email: email.as_str(),
            password_hash: Some(password_hash),
            role: users::ROLE_OPERATOR,
            tenant_id: None,
        },
    )
    .await
    .map_err(or_taken(|| OnboardingError::EmailTaken(email.to_string())))?;
    audit::record(
        conn,
        actor.event("operator.created").target("user", user.id),
    )
    .await?;
    Ok(user)
}

/// What disabling a user did.
#[derive(Debug, Clone)]
pub struct Disabled {
    pub email: String,
    /// False when the user was already disabled (the call is idempotent).
    pub newly_disabled: bool,
    pub sessions_ended: usize,
    pub links_revoked: usize,
}

/// Disables a user of a tenant, deletes all their sessions and unused setup links, and records
/// it. Needs the system scope: sessions belong to no tenant and are reachable only there.
/// Repeating it on a disabled user ends any session left and records nothing new.
pub async fn disable_user(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    user_id: Uuid,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Disabled, OnboardingError> {
    let Some(member) = users::find_in_tenant(conn, tenant_id, user_id).await? else {
        return Err(OnboardingError::UnknownUser);
    };
    let newly_disabled = users::disable_in_tenant(conn, tenant_id, user_id, now).await? == 1;
    let sessions_ended = crate::auth::session_store::revoke_all_for_user(conn, user_id).await?;
    let links_revoked = invitations::delete_unused_for_user(conn, tenant_id, user_id).await?;
    if newly_disabled {
        audit::record(
            conn,
            actor
                .event("user.disabled")
                .tenant(tenant_id)
                .target("user", user_id)
                .details(serde_json::json!({
                    "sessions_ended": sessions_ended,
                    "setup_links_revoked": links_revoked,
                })),
        )
        .await?;
    }
    Ok(Disabled {
        email: member.email,
        newly_disabled,
        sessions_ended,
        links_revoked,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_names_are_trimmed_and_bounded() {
        assert_eq!(parse_tenant_name("  Acme Inc. ").unwrap(), "Acme Inc.");
        assert_eq!(parse_tenant_name("Ünïcødé GmbH").unwrap(), "Ünïcødé GmbH");
        assert!(parse_tenant_name("").is_err());
        assert!(parse_tenant_name("   ").is_err());
        assert!(parse_tenant_name("two\nlines").is_err());
        assert!(parse_tenant_name(&"n".repeat(200)).is_ok());
        assert!(parse_tenant_name(&"n".repeat(201)).is_err());
    }
}
