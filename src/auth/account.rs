//! A signed-in user's own account: changing the password (the other sessions end) and ending
//! other sessions. Two-factor enrolment is [`crate::auth::two_factor`].

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret as _, SecretString};
use uuid::Uuid;

use crate::auth::password::PasswordHasher;
use crate::auth::session_store;
use crate::auth::two_factor::{password_matches, user_kind};
use crate::db::models::{audit, users};
use crate::db::{Pool, Scope, run};
use crate::domain::password_policy;
use crate::error::AppError;

/// Why a password change was refused, worded for the person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeRefused {
    #[error("The current password is not right. Type the password you signed in with.")]
    WrongCurrent,
    #[error("The two new passwords differ. Type the same password in both fields.")]
    Mismatch,
    #[error("{0}")]
    Policy(password_policy::PolicyError),
}

/// A password change as typed.
pub struct PasswordChange<'a> {
    pub current: &'a SecretString,
    pub new: &'a SecretString,
    pub confirm: &'a SecretString,
}

/// Changes the user's password (same policy as at invitation), ends every other session of
/// theirs, and audits it. Returns how many sessions ended.
pub async fn change_password(
    db: &Pool,
    hasher: &PasswordHasher,
    user: &users::User,
    change: PasswordChange<'_>,
    keep_session: Uuid,
    ip: Option<String>,
    now: DateTime<Utc>,
) -> Result<Result<usize, ChangeRefused>, AppError> {
    if change.new.expose_secret() != change.confirm.expose_secret() {
        return Ok(Err(ChangeRefused::Mismatch));
    }
    if let Err(e) = password_policy::check(change.new.expose_secret()) {
        return Ok(Err(ChangeRefused::Policy(e)));
    }
    if !password_matches(db, hasher, user, change.current, ip.clone(), now).await? {
        return Ok(Err(ChangeRefused::WrongCurrent));
    }
    let hash = hasher.hash(change.new).await.map_err(AppError::internal)?;
    let ended = run(db, Scope::System, async |conn| {
        if users::set_password(conn, user.id, &hash, now).await? != 1 {
            return Err(diesel::result::Error::NotFound);
        }
        let ended = session_store::revoke_others(conn, user.id, keep_session).await?;
        audit::record(
            conn,
            audit::Event::new(user_kind(user), Some(user.id), "account.password_changed")
                .tenant(user.tenant_id)
                .target("user", user.id)
                .details(serde_json::json!({ "other_sessions_ended": ended }))
                .ip(ip.clone()),
        )
        .await?;
        Ok(ended)
    })
    .await?;
    Ok(Ok(ended))
}

/// Ends one of the user's other sessions (by public id) or, with `None`, all of them; audited.
/// Returns how many ended (0 for an id that is not one of the user's other sessions).
pub async fn end_sessions(
    db: &Pool,
    user: &users::User,
    which: Option<Uuid>,
    keep_session: Uuid,
    ip: Option<String>,
) -> Result<usize, AppError> {
    let ended = run(db, Scope::System, async |conn| {
        let ended = match which {
            Some(id) => session_store::revoke_one(conn, user.id, id, keep_session).await?,
            None => session_store::revoke_others(conn, user.id, keep_session).await?,
        };
        if ended > 0 {
            audit::record(
                conn,
                audit::Event::new(user_kind(user), Some(user.id), "account.sessions_ended")
                    .tenant(user.tenant_id)
                    .target("user", user.id)
                    .details(serde_json::json!({
                        "ended": ended,
                        "which": if which.is_some() { "one" } else { "all_others" },
                    }))
                    .ip(ip.clone()),
            )
            .await?;
        }
        Ok::<_, diesel::result::Error>(ended)
    })
    .await?;
    Ok(ended)
}
