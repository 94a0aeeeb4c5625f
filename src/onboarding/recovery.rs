//! Account recovery without email: an operator issues a one-time password reset link for a user
//! (`/reset/{token}`, 24 hours), or clears a user's two-factor sign-in. Both are audited; issuing
//! a link ends the user's sessions at once.
//!
//! Tokens are like setup links ([`super::invitation`]): 32 random bytes, URL-safe base64, only
//! the SHA-256 stored, shown once. Using a link sets the password and signs nobody in: the
//! person then signs in as usual, with their second factor if they have one.

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use secrecy::{ExposeSecret as _, SecretString};
use uuid::Uuid;

use super::{Actor, OnboardingError};
use crate::db::models::{audit, password_resets, two_factor, users};
use crate::primitives::{looks_like_token, random_token, sha256};

/// How long a reset link works.
pub const VALIDITY: chrono::Duration = chrono::Duration::hours(24);

/// A freshly issued reset link. The token is here and nowhere else.
pub struct IssuedReset {
    token: SecretString,
    pub email: String,
    pub expires_at: DateTime<Utc>,
    pub sessions_ended: usize,
}

impl std::fmt::Debug for IssuedReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedReset")
            .field("email", &self.email)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl IssuedReset {
    /// The link to hand over: `{public_url}/reset/{token}`.
    pub fn link(&self, public_url: &url::Url) -> SecretString {
        SecretString::from(format!(
            "{}/reset/{}",
            public_url.as_str().trim_end_matches('/'),
            self.token.expose_secret()
        ))
    }
}

/// Issues a reset link for `user` (replacing an unused one), ends all of the user's sessions, and
/// audits it. Call in system scope (sessions are reachable only there).
pub async fn issue(
    conn: &mut AsyncPgConnection,
    user: &users::User,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<IssuedReset, OnboardingError> {
    if user.disabled_at.is_some() {
        return Err(OnboardingError::Disabled(user.email.clone()));
    }
    let replaced = password_resets::delete_unused_for_user(conn, user.id).await?;
    let token = SecretString::from(random_token().map_err(|_| OnboardingError::Random)?);
    let reset = password_resets::insert(
        conn,
        &password_resets::NewPasswordReset {
            user_id: user.id,
            tenant_id: user.tenant_id,
            token_hash: &sha256(token.expose_secret()),
            created_by: actor.user_id,
            created_at: now,
            expires_at: now + VALIDITY,
        },
    )
    .await?;
    let sessions_ended = crate::auth::session_store::revoke_all_for_user(conn, user.id).await?;
    audit::record(
        conn,
        actor
            .event("password_reset.issued")
            .tenant(user.tenant_id)
            .target("user", user.id)
            .details(serde_json::json!({
                "reset_id": reset.id,
                "expires_at": reset.expires_at,
                "replaced_links": replaced,
                "sessions_ended": sessions_ended,
            })),
    )
    .await?;
    Ok(IssuedReset {
        token,
        email: user.email.clone(),
        expires_at: reset.expires_at,
        sessions_ended,
    })
}

/// The email of the account a usable link is for (system scope), without using it.
pub async fn lookup(
    conn: &mut AsyncPgConnection,
    token: &str,
    now: DateTime<Utc>,
) -> diesel::QueryResult<Option<String>> {
    if !looks_like_token(token) {
        return Ok(None);
    }
    password_resets::find_usable(conn, &sha256(token), now).await
}

/// Uses a reset link: claims it atomically, sets the new password (already hashed), ends any
/// session the user has, and audits it (system scope). Any reason the link cannot be used is
/// [`OnboardingError::InvalidLink`]; roll back on error.
pub async fn accept(
    conn: &mut AsyncPgConnection,
    token: &str,
    password_hash: &str,
    now: DateTime<Utc>,
    ip: Option<String>,
) -> Result<Uuid, OnboardingError> {
    if !looks_like_token(token) {
        return Err(OnboardingError::InvalidLink);
    }
    let Some(reset) = password_resets::claim(conn, &sha256(token), now).await? else {
        return Err(OnboardingError::InvalidLink);
    };
    if users::set_password(conn, reset.user_id, password_hash, now).await? != 1 {
        return Err(OnboardingError::InvalidLink);
    }
    let sessions_ended =
        crate::auth::session_store::revoke_all_for_user(conn, reset.user_id).await?;
    audit::record(
        conn,
        audit::Event::new("anonymous", Some(reset.user_id), "password_reset.used")
            .tenant(reset.tenant_id)
            .target("user", reset.user_id)
            .details(serde_json::json!({ "reset_id": reset.id, "sessions_ended": sessions_ended }))
            .ip(ip),
    )
    .await?;
    Ok(reset.user_id)
}

/// Removes a user's two-factor secret and recovery codes, and audits it. Returns whether they
/// had one. The user's sessions stay; an operator (or an admin of a tenant that requires it)
/// must enrol again at their next request.
pub async fn clear_two_factor(
    conn: &mut AsyncPgConnection,
    user: &users::User,
    actor: &Actor,
) -> Result<bool, OnboardingError> {
    let had = two_factor::remove(conn, user.id).await?;
    audit::record(
        conn,
        actor
            .event("two_factor.cleared")
            .tenant(user.tenant_id)
            .target("user", user.id)
            .details(serde_json::json!({ "was_enrolled": had })),
    )
    .await?;
    Ok(had)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_is_the_public_url_plus_the_token_and_debug_hides_it() {
        let issued = IssuedReset {
            token: SecretString::from("T".repeat(43)),
            email: "a@b.test".to_owned(),
            expires_at: Utc::now(),
            sessions_ended: 0,
        };
        let url = url::Url::parse("https://fg.example/").unwrap();
        assert_eq!(
            issued.link(&url).expose_secret(),
            format!("https://fg.example/reset/{}", "T".repeat(43))
        );
        assert!(!format!("{issued:?}").contains("TTTT"));
    }
}
