//! One-time setup links for new tenant admins (`/invite/{token}`).
//!
//! A token is 32 random bytes, URL-safe base64 (43 characters). Only its SHA-256 is stored; the
//! link is shown once (the operator's page, or the CLI's standard output) and never logged or
//! kept anywhere else. A link works once, within [`VALIDITY`]; using it is one atomic
//! `UPDATE … WHERE used_at IS NULL AND expires_at > now RETURNING`. The user row exists from the
//! invitation on, without a password (so nobody can sign in as it) until the link is used.

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use secrecy::{ExposeSecret as _, SecretString};
use uuid::Uuid;

use super::{Actor, OnboardingError, or_taken};
use crate::db::models::{audit, invitations, tenants, users};
use crate::domain::Email;
use crate::primitives::{looks_like_token, random_token, sha256};

/// How long a setup link works.
pub const VALIDITY: chrono::Duration = chrono::Duration::hours(72);

/// A setup-link token. Its `Debug` output is redacted; expose it only to build the link.
#[derive(Debug)]
pub struct InviteToken(SecretString);

impl InviteToken {
    /// A fresh token from the system's CSPRNG.
    pub fn generate() -> Result<Self, OnboardingError> {
        let token = random_token().map_err(|_| OnboardingError::Random)?;
        Ok(Self(SecretString::from(token)))
    }

    /// SHA-256 of the token: what `invitations.token_hash` holds.
    pub fn hash(&self) -> Vec<u8> {
        sha256(self.0.expose_secret())
    }

    /// The link to send: `{public_url}/invite/{token}`.
    pub fn link(&self, public_url: &url::Url) -> SecretString {
        SecretString::from(format!(
            "{}/invite/{}",
            public_url.as_str().trim_end_matches('/'),
            self.0.expose_secret()
        ))
    }
}

/// A freshly issued invitation. The token is here and nowhere else.
#[derive(Debug)]
pub struct Issued {
    pub token: InviteToken,
    pub invitation_id: Uuid,
    pub user_id: Uuid,
    pub email: Email,
    pub expires_at: DateTime<Utc>,
    /// Whether the user row was created now (rather than reused from an earlier invitation).
    pub new_user: bool,
}

/// Invites an admin to a tenant (operator or system scope).
///
/// The user row is created without a password, or reused if an earlier invitation created it and
/// no password has been set yet; that earlier link stops working (one live link per person).
/// An email that belongs to anyone else, or that already has a password, is refused.
pub async fn issue(
    conn: &mut AsyncPgConnection,
    tenant: &tenants::Tenant,
    email: &Email,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Issued, OnboardingError> {
    let (user_id, new_user) = match users::find_by_email(conn, email.as_str()).await? {
        None => {
            let user = users::insert(
                conn,
                &users::NewUser {
                    email: email.as_str(),
                    password_hash: None,
                    role: users::ROLE_TENANT_ADMIN,
                    tenant_id: Some(tenant.id),
                },
            )
            .await
            .map_err(or_taken(|| OnboardingError::EmailTaken(email.to_string())))?;
            (user.id, true)
        }
        Some(user)
            if user.role != users::ROLE_TENANT_ADMIN || user.tenant_id != Some(tenant.id) =>
        {
            return Err(OnboardingError::EmailTaken(email.to_string()));
        }
        Some(user) if user.disabled_at.is_some() => {
            return Err(OnboardingError::Disabled(email.to_string()));
        }
        Some(user) if user.password_hash.is_some() => {
            return Err(OnboardingError::AlreadySetUp(email.to_string()));
        }
        Some(user) => (user.id, false),
    };
    let replaced = invitations::delete_unused_for_user(conn, tenant.id, user_id).await?;
    let token = InviteToken::generate()?;
    let hash = token.hash();
    let invitation = invitations::insert(
        conn,
        &invitations::NewInvitation {
            tenant_id: tenant.id,
            user_id,
            token_hash: &hash,
            created_by: actor.user_id,
            created_at: now,
            expires_at: now + VALIDITY,
        },
    )
    .await?;
    audit::record(
        conn,
        actor
            .event("invitation.created")
            .tenant(tenant.id)
            .target("user", user_id)
            .details(serde_json::json!({
                "invitation_id": invitation.id,
                "expires_at": invitation.expires_at,
                "new_user": new_user,
                "replaced_links": replaced,
            })),
    )
    .await?;
    Ok(Issued {
        token,
        invitation_id: invitation.id,
        user_id,
        email: email.clone(),
        expires_at: invitation.expires_at,
        new_user,
    })
}

/// The usable invitation a presented token names, without using it (system scope).
pub async fn lookup(
    conn: &mut AsyncPgConnection,
    token: &str,
    now: DateTime<Utc>,
) -> diesel::QueryResult<Option<invitations::Usable>> {
    if !looks_like_token(token) {
        return Ok(None);
    }
    invitations::find_usable(conn, &sha256(token), now).await
}

/// A used invitation: who is now signed in, and where they land.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub user_id: Uuid,
    pub tenant_slug: String,
}

/// Uses a setup link: claims it atomically, sets the user's first password (already hashed),
/// records the sign-in that follows, and audits it (system scope). Any reason the link cannot
/// be used is [`OnboardingError::InvalidLink`]; roll back the transaction on error so a claim
/// never outlives a failure after it.
pub async fn accept(
    conn: &mut AsyncPgConnection,
    token: &str,
    password_hash: &str,
    now: DateTime<Utc>,
    ip: Option<String>,
) -> Result<Accepted, OnboardingError> {
    if !looks_like_token(token) {
        return Err(OnboardingError::InvalidLink);
    }
    let Some(invitation) = invitations::claim(conn, &sha256(token), now).await? else {
        return Err(OnboardingError::InvalidLink);
    };
    let Some(tenant) = tenants::find(conn, invitation.tenant_id)
        .await?
        .filter(|t| t.status == "active")
    else {
        return Err(OnboardingError::InvalidLink);
    };
    if users::set_initial_password(conn, invitation.user_id, password_hash, now).await? != 1 {
        return Err(OnboardingError::InvalidLink);
    }
    audit::record(
        conn,
        audit::Event::new(
            "tenant_admin",
            Some(invitation.user_id),
            "invitation.accepted",
        )
        .tenant(tenant.id)
        .target("user", invitation.user_id)
        .details(serde_json::json!({ "invitation_id": invitation.id, "signed_in": true }))
        .ip(ip),
    )
    .await?;
    Ok(Accepted {
        user_id: invitation.user_id,
        tenant_slug: tenant.slug,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_43_url_safe_characters_and_tokens_differ() {
        let a = InviteToken::generate().unwrap();
        let b = InviteToken::generate().unwrap();
        assert!(looks_like_token(a.0.expose_secret()));
        assert_ne!(a.0.expose_secret(), b.0.expose_secret());
        assert_eq!(a.hash().len(), 32);
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn a_token_never_shows_in_debug_output() {
        let token = InviteToken::generate().unwrap();
        let issued_debug = format!("{token:?}");
        assert!(!issued_debug.contains(token.0.expose_secret()));
    }

    #[test]
    fn the_link_is_the_public_url_plus_the_token() {
        let token = InviteToken::generate().unwrap();
        for base in ["https://fg.example", "https://fg.example/"] {
            let url = url::Url::parse(base).unwrap();
            assert_eq!(
                token.link(&url).expose_secret(),
                format!("https://fg.example/invite/{}", token.0.expose_secret())
            );
        }
    }
}
