//! Signing in: the password check, the per-account back-off, the per-IP throttle, and the audit
//! trail of every attempt (SECURITY.md AU-1 … AU-3).
//!
//! Failed sign-ins look the same whatever the reason (unknown email, wrong password, locked or
//! disabled account): the caller gets one [`SignIn::Failed`], and an argon2 verification runs
//! every time (against a dummy hash when there is no real one), so neither the page nor its
//! timing tells them apart.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use uuid::Uuid;

use crate::auth::password::{PasswordHasher, Verification};
use crate::db::models::{audit, rate_limits, tenants, two_factor, users};
use crate::db::{Pool, Scope, run};
use crate::error::AppError;

/// Failed attempts an account gets before back-off starts.
pub const FREE_ATTEMPTS: i32 = 5;
/// The longest an account is locked after repeated failures.
pub const MAX_LOCK: chrono::Duration = chrono::Duration::minutes(15);
/// Failed sign-ins one IP address may make per window before it is refused for the window.
pub const IP_FAILURE_LIMIT: i32 = 30;
pub const IP_WINDOW: chrono::Duration = chrono::Duration::minutes(15);

/// Exponential back-off: after the free attempts, 1 s, 2 s, 4 s, … up to 15 minutes.
pub fn lock_until(failures: i32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let over = failures - FREE_ATTEMPTS;
    if over < 0 {
        return None;
    }
    let seconds = 1_i64
        .checked_shl(over.unsigned_abs().min(20))
        .unwrap_or(i64::MAX);
    Some(now + chrono::Duration::seconds(seconds).min(MAX_LOCK))
}

/// How a sign-in attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignIn {
    /// The password matched an active account.
    Succeeded { user_id: Uuid },
    /// The password matched an account enrolled in two-factor sign-in: a code must follow. The
    /// account's failure count is left as it is, so wrong codes keep adding to it.
    SecondStep { user_id: Uuid },
    /// No match, for whatever reason (never told apart).
    Failed,
    /// Too many failures from this IP address: refused without checking anything.
    Throttled,
}

enum Verdict {
    Valid {
        user_id: Uuid,
        rehash: bool,
    },
    Invalid {
        user_id: Option<Uuid>,
        reason: &'static str,
    },
}

/// What someone typed to sign in, and from where.
pub struct Attempt<'a> {
    pub email: &'a str,
    pub password: &'a SecretString,
    pub ip: Option<String>,
}

/// Checks `email` and `password` from client address `ip` at `now`, and records the attempt: the login
/// (and a stronger hash when the stored one is weaker than today's parameters), or the failure
/// counted against the account and the address.
pub async fn sign_in(
    db: &Pool,
    hasher: &PasswordHasher,
    attempt: Attempt<'_>,
    now: DateTime<Utc>,
) -> Result<SignIn, AppError> {
    let Attempt {
        email,
        password,
        ip,
    } = attempt;
    let ip_key = ip.as_deref().map(|ip| format!("login-ip:{ip}"));
    let mut conn = db.get().await?;
    if let Some(key) = &ip_key {
        let blocked = crate::db::transaction(&mut conn, Scope::System, async |conn| {
            rate_limits::is_blocked(conn, key, now).await
        })
        .await?;
        if blocked {
            drop(conn);
            // One audit event per address and window (its first refusal); the rest are only
            // counted, on one row, so a flood of refusals grows nothing.
            metrics::counter!("finchgate_login_throttled_total").increment(1);
            let refused = format!("login-ip-refused:{}", ip.as_deref().unwrap_or_default());
            let nth = run(db, Scope::System, async |conn| {
                rate_limits::hit(conn, &refused, now, IP_WINDOW, i32::MAX).await
            })
            .await?;
            if nth == 1 {
                audit_failure(db, None, "login.throttled", "ip_limit", ip).await?;
            }
            return Ok(SignIn::Throttled);
        }
    }
    let user = crate::db::transaction(&mut conn, Scope::System, async |conn| {
        users::find_by_email(conn, email).await
    })
    .await?;
    drop(conn);

    match verify(hasher, user.as_ref(), password, now).await? {
        Verdict::Valid { user_id, rehash } => {
            let new_hash = match rehash {
                true => Some(hasher.hash(password).await.map_err(AppError::internal)?),
                false => None,
            };
            let kind = user.as_ref().map_or("anonymous", |u| u.role.as_str());
            let tenant_id = user.as_ref().and_then(|u| u.tenant_id);
            let enrolled = run(db, Scope::System, async |conn| {
                two_factor::is_enrolled(conn, user_id).await
            })
            .await?;
            if enrolled {
                run(db, Scope::System, async |conn| {
                    if let Some(hash) = new_hash.as_deref() {
                        users::set_password_hash(conn, user_id, hash, now).await?;
                    }
                    audit::record(
                        conn,
                        audit::Event::new(kind, Some(user_id), "login.password_accepted")
                            .tenant(tenant_id)
                            .target("user", user_id)
                            .details(serde_json::json!({ "next": "two_factor" }))
                            .ip(ip.clone()),
                    )
                    .await
                })
                .await?;
                return Ok(SignIn::SecondStep { user_id });
            }
            run(db, Scope::System, async |conn| {
                users::record_login(conn, user_id, now, new_hash.as_deref()).await?;
                audit::record(
                    conn,
                    audit::Event::new(kind, Some(user_id), "login.succeeded")
                        .tenant(tenant_id)
                        .target("user", user_id)
                        .details(serde_json::json!({ "password_rehashed": new_hash.is_some() }))
                        .ip(ip.clone()),
                )
                .await
            })
            .await?;
            Ok(SignIn::Succeeded { user_id })
        }
        Verdict::Invalid { user_id, reason } => {
            run(db, Scope::System, async |conn| {
                if let (Some(id), Some(user)) = (user_id, user.as_ref()) {
                    let failures = user.failed_logins + 1;
                    users::record_failed_login(conn, id, lock_until(failures, now)).await?;
                }
                if let Some(key) = &ip_key {
                    rate_limits::hit(conn, key, now, IP_WINDOW, IP_FAILURE_LIMIT).await?;
                }
                Ok(())
            })
            .await?;
            audit_failure(db, user_id, "login.failed", reason, ip).await?;
            Ok(SignIn::Failed)
        }
    }
}

/// One argon2 verification whatever the account's state: a dummy hash stands in when there is
/// no usable account.
async fn verify(
    hasher: &PasswordHasher,
    user: Option<&users::User>,
    password: &SecretString,
    now: DateTime<Utc>,
) -> Result<Verdict, AppError> {
    let usable =
        user.filter(|u| u.disabled_at.is_none() && u.locked_until.is_none_or(|until| until <= now));
    let stored = usable.and_then(|u| u.password_hash.clone());
    let verdict = hasher
        .verify(password, stored)
        .await
        .map_err(AppError::internal)?;
    let invalid = |user_id, reason| Verdict::Invalid { user_id, reason };
    Ok(match (user, usable, verdict) {
        (_, Some(u), Verification::Valid { needs_rehash }) => Verdict::Valid {
            user_id: u.id,
            rehash: needs_rehash,
        },
        (None, _, _) => invalid(None, "unknown_user"),
        (Some(u), None, _) if u.disabled_at.is_some() => invalid(Some(u.id), "disabled"),
        (Some(u), None, _) => invalid(Some(u.id), "locked"),
        (Some(u), Some(_), Verification::Invalid) => invalid(Some(u.id), "wrong_password"),
    })
}

async fn audit_failure(
    db: &Pool,
    user_id: Option<Uuid>,
    action: &'static str,
    reason: &'static str,
    ip: Option<String>,
) -> Result<(), AppError> {
    run(db, Scope::System, async |conn| {
        let tenant_id = match user_id {
            Some(id) => users::find(conn, id).await?.and_then(|u| u.tenant_id),
            None => None,
        };
        audit::record(
            conn,
            audit::Event {
                target_type: user_id.map(|_| "user"),
                target_id: user_id.map(|id| id.to_string()),
                ..audit::Event::new("anonymous", user_id, action)
            }
            .tenant(tenant_id)
            .details(serde_json::json!({ "reason": reason }))
            .ip(ip),
        )
        .await
    })
    .await?;
    Ok(())
}

/// Records that a signed-in user signed out.
pub async fn record_sign_out(
    db: &Pool,
    user_id: Uuid,
    kind: &str,
    tenant_id: Option<Uuid>,
) -> Result<(), AppError> {
    run(db, Scope::System, async |conn| {
        audit::record(
            conn,
            audit::Event::new(kind, Some(user_id), "logout")
                .tenant(tenant_id)
                .target("user", user_id),
        )
        .await
    })
    .await?;
    Ok(())
}

/// Where a signed-in user lands: the console for operators, their tenant's home for admins;
/// `None` for a disabled or vanished account.
pub async fn home_of(db: &Pool, user_id: Uuid) -> Result<Option<String>, AppError> {
    let home = run(db, Scope::System, async |conn| {
        let Some(user) = users::find(conn, user_id).await? else {
            return Ok(None);
        };
        if user.disabled_at.is_some() {
            return Ok(None);
        }
        if crate::auth::two_factor::must_enrol(conn, &user).await? {
            return Ok(Some("/account".to_owned()));
        }
        if user.role == users::ROLE_OPERATOR {
            return Ok(Some("/ops/tenants".to_owned()));
        }
        let Some(tenant_id) = user.tenant_id else {
            return Ok(None);
        };
        Ok(tenants::find(conn, tenant_id)
            .await?
            .map(|t| format!("/t/{}/", t.slug)))
    })
    .await?;
    Ok(home)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_starts_after_the_free_attempts_and_doubles_up_to_fifteen_minutes() {
        let now = Utc::now();
        assert_eq!(lock_until(FREE_ATTEMPTS - 1, now), None);
        assert_eq!(
            lock_until(FREE_ATTEMPTS, now),
            Some(now + chrono::Duration::seconds(1))
        );
        assert_eq!(
            lock_until(FREE_ATTEMPTS + 3, now),
            Some(now + chrono::Duration::seconds(8))
        );
        assert_eq!(lock_until(FREE_ATTEMPTS + 40, now), Some(now + MAX_LOCK));
    }
}
