//! Two-factor sign-in: enrolment (a secret sealed in the vault, confirmed with a code, ten
//! recovery codes shown once), the second sign-in step, turning it off, and who must enrol.
//!
//! Wrong codes count toward the same per-account back-off and per-IP throttle as wrong
//! passwords ([`crate::auth::login`]); a code is accepted once (the accepted time step is stored
//! and only a later one passes), with one step of clock skew either side.

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use secrecy::SecretString;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::auth::login::{IP_FAILURE_LIMIT, IP_WINDOW, lock_until};
use crate::auth::password::{PasswordHasher, Verification};
use crate::auth::totp::{self, TotpSecret};
use crate::db::models::{audit, keyring, rate_limits, two_factor, users};
use crate::db::{Pool, Scope, run};
use crate::error::AppError;
use crate::vault::{Purpose, RowContext, Vault};

/// The AAD identity of a user's TOTP secret: the user (and their tenant), so an envelope copied
/// to another user's row does not open.
pub fn row_context(user_id: Uuid, tenant_id: Option<Uuid>) -> RowContext {
    RowContext::new(
        Purpose::TotpSecret,
        tenant_id.unwrap_or_else(Uuid::nil),
        user_id,
    )
}

fn open(vault: &Vault, row: &two_factor::Totp) -> Result<TotpSecret, AppError> {
    let bytes = vault
        .open(
            &row_context(row.user_id, row.tenant_id),
            &row.secret_envelope,
        )
        .map_err(AppError::internal)?;
    Ok(TotpSecret::from_bytes(&bytes))
}

/// Whether this user may reach only their account pages until they enrol: an operator, or an
/// admin of a tenant that requires two-factor, without a confirmed secret. Call in system scope.
pub async fn must_enrol(
    conn: &mut AsyncPgConnection,
    user: &users::User,
) -> diesel::QueryResult<bool> {
    two_factor::must_enrol(conn, user.id).await
}

/// A pending enrolment as the page shows it.
pub struct Enrolment {
    pub secret_base32: Zeroizing<String>,
    pub qr_svg: String,
}

/// The user's pending secret, created (sealed and stored) when there is none. `None` when the
/// user is already enrolled.
pub async fn pending_enrolment(
    db: &Pool,
    vault: &Vault,
    user: &users::User,
    now: DateTime<Utc>,
) -> Result<Option<Enrolment>, AppError> {
    let existing = run(db, Scope::System, async |conn| {
        two_factor::find(conn, user.id).await
    })
    .await?;
    let secret = match existing {
        Some(row) if row.is_confirmed() => return Ok(None),
        Some(row) => open(vault, &row)?,
        None => {
            let secret = TotpSecret::generate()?;
            let sealed = vault
                .seal(&row_context(user.id, user.tenant_id), secret.as_bytes())
                .map_err(AppError::internal)?;
            let stored = run(db, Scope::System, async |conn| {
                let n = two_factor::put_pending(
                    conn,
                    user.id,
                    user.tenant_id,
                    sealed.kek_id.as_str(),
                    &sealed.envelope,
                    now,
                )
                .await?;
                keyring::count_wrap(conn, sealed.kek_id.as_str()).await?;
                Ok::<_, diesel::result::Error>(n)
            })
            .await?;
            if stored == 0 {
                return Ok(None);
            }
            secret
        }
    };
    let uri = secret.otpauth_uri(&user.email);
    let qr_svg = totp::qr_svg(&uri)
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("the QR code could not be built")))?;
    Ok(Some(Enrolment {
        secret_base32: secret.base32(),
        qr_svg,
    }))
}

/// Why a code was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeRefused {
    /// Wrong, expired, already used, or no such recovery code (never told apart).
    Wrong,
    /// The account is in back-off, or the address is throttled: nothing was checked.
    Throttled,
}

/// How a code was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    Totp,
    RecoveryCode,
}

impl Accepted {
    fn label(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::RecoveryCode => "recovery_code",
        }
    }
}

/// Whether the account or the address is in back-off right now.
async fn throttled(
    db: &Pool,
    user: &users::User,
    ip_key: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, AppError> {
    if user.locked_until.is_some_and(|until| until > now) {
        return Ok(true);
    }
    let Some(key) = ip_key else { return Ok(false) };
    Ok(run(db, Scope::System, async |conn| {
        rate_limits::is_blocked(conn, key, now).await
    })
    .await?)
}

/// Counts a wrong code like a wrong password, and audits it.
async fn count_failure(
    db: &Pool,
    user: &users::User,
    ip: Option<String>,
    ip_key: Option<&str>,
    action: &'static str,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    run(db, Scope::System, async |conn| {
        let failures = users::find(conn, user.id)
            .await?
            .map_or(user.failed_logins, |u| u.failed_logins)
            + 1;
        users::record_failed_login(conn, user.id, lock_until(failures, now)).await?;
        if let Some(key) = ip_key {
            rate_limits::hit(conn, key, now, IP_WINDOW, IP_FAILURE_LIMIT).await?;
        }
        audit::record(
            conn,
            audit::Event::new(user_kind(user), Some(user.id), action)
                .tenant(user.tenant_id)
                .target("user", user.id)
                .details(serde_json::json!({ "reason": "wrong_code" }))
                .ip(ip),
        )
        .await
    })
    .await?;
    Ok(())
}

/// The audit actor kind of a user.
pub fn user_kind(user: &users::User) -> &'static str {
    if user.role == users::ROLE_OPERATOR {
        "operator"
    } else {
        "tenant_admin"
    }
}

/// Checks a TOTP code against the user's secret (pending or confirmed) and, when it matches a
/// step later than the last accepted one, records that step (confirming a pending secret).
async fn accept_totp(
    db: &Pool,
    vault: &Vault,
    user: &users::User,
    code: &str,
    now: DateTime<Utc>,
) -> Result<bool, AppError> {
    let Some(row) = run(db, Scope::System, async |conn| {
        two_factor::find(conn, user.id).await
    })
    .await?
    else {
        return Ok(false);
    };
    let secret = open(vault, &row)?;
    let Some(step) = secret.matching_step(code, now.timestamp()) else {
        return Ok(false);
    };
    Ok(run(db, Scope::System, async |conn| {
        two_factor::accept_step(conn, user.id, step, now).await
    })
    .await?)
}

/// What a person typed at a code prompt, and from where.
pub struct CodeAttempt<'a> {
    pub user: &'a users::User,
    pub input: &'a str,
    pub ip: Option<String>,
    /// Whether a recovery code is accepted here (the sign-in step), or only a TOTP code.
    pub allow_recovery: bool,
    /// The audit action of a wrong code.
    pub failure_action: &'static str,
}

/// Checks a code (TOTP, or a recovery code when allowed) under the back-off and throttle, counts
/// a wrong one, and clears the failure count on success. The caller audits the success.
pub async fn check_code(
    db: &Pool,
    vault: &Vault,
    attempt: CodeAttempt<'_>,
    now: DateTime<Utc>,
) -> Result<Result<Accepted, CodeRefused>, AppError> {
    let CodeAttempt {
        user,
        input,
        ip,
        allow_recovery,
        failure_action,
    } = attempt;
    let ip_key = ip.as_deref().map(|ip| format!("login-ip:{ip}"));
    if throttled(db, user, ip_key.as_deref(), now).await? {
        return Ok(Err(CodeRefused::Throttled));
    }
    let accepted = if totp::looks_like_totp_code(input) {
        accept_totp(db, vault, user, input, now)
            .await?
            .then_some(Accepted::Totp)
    } else if allow_recovery && let Some(hash) = totp::recovery_code_hash(input) {
        run(db, Scope::System, async |conn| {
            two_factor::use_recovery_code(conn, user.id, &hash, now).await
        })
        .await?
        .then_some(Accepted::RecoveryCode)
    } else {
        None
    };
    match accepted {
        Some(how) => {
            run(db, Scope::System, async |conn| {
                users::clear_failed_logins(conn, user.id).await
            })
            .await?;
            Ok(Ok(how))
        }
        None => {
            count_failure(db, user, ip, ip_key.as_deref(), failure_action, now).await?;
            Ok(Err(CodeRefused::Wrong))
        }
    }
}

/// Completes a sign-in's second step: records the sign-in and audits it with how it was done.
/// Returns how many recovery codes are left.
pub async fn record_second_step(
    db: &Pool,
    user: &users::User,
    how: Accepted,
    ip: Option<String>,
    now: DateTime<Utc>,
) -> Result<i64, AppError> {
    let left = run(db, Scope::System, async |conn| {
        users::record_login(conn, user.id, now, None).await?;
        audit::record(
            conn,
            audit::Event::new(user_kind(user), Some(user.id), "login.succeeded")
                .tenant(user.tenant_id)
                .target("user", user.id)
                .details(serde_json::json!({ "two_factor": how.label() }))
                .ip(ip.clone()),
        )
        .await?;
        two_factor::unused_recovery_codes(conn, user.id).await
    })
    .await?;
    Ok(left)
}

/// Confirms a pending enrolment with a code; on success stores ten new recovery codes (hashed)
/// and returns them, to be shown once.
pub async fn confirm(
    db: &Pool,
    vault: &Vault,
    user: &users::User,
    code: &str,
    ip: Option<String>,
    now: DateTime<Utc>,
) -> Result<Result<Vec<Zeroizing<String>>, CodeRefused>, AppError> {
    let attempt = CodeAttempt {
        user,
        input: code,
        ip: ip.clone(),
        allow_recovery: false,
        failure_action: "two_factor.confirm_failed",
    };
    if let Err(refused) = check_code(db, vault, attempt, now).await? {
        return Ok(Err(refused));
    }
    let codes = (0..totp::RECOVERY_CODES)
        .map(|_| totp::new_recovery_code())
        .collect::<Result<Vec<_>, _>>()?;
    let hashes: Vec<Vec<u8>> = codes
        .iter()
        .filter_map(|c| totp::recovery_code_hash(c))
        .collect();
    run(db, Scope::System, async |conn| {
        two_factor::replace_recovery_codes(conn, user.id, user.tenant_id, &hashes, now).await?;
        audit::record(
            conn,
            audit::Event::new(user_kind(user), Some(user.id), "two_factor.enabled")
                .tenant(user.tenant_id)
                .target("user", user.id)
                .details(serde_json::json!({ "recovery_codes": hashes.len() }))
                .ip(ip.clone()),
        )
        .await
    })
    .await?;
    Ok(Ok(codes))
}

/// Why turning two-factor off was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisableRefused {
    WrongPassword,
    Code(CodeRefused),
}

/// What turning two-factor off takes: the password, a current code, and where it came from.
pub struct DisableProof<'a> {
    pub password: &'a SecretString,
    pub code: &'a str,
    pub ip: Option<String>,
}

/// Turns two-factor off for the user: needs their password and a current code.
pub async fn disable(
    db: &Pool,
    vault: &Vault,
    hasher: &PasswordHasher,
    user: &users::User,
    proof: DisableProof<'_>,
    now: DateTime<Utc>,
) -> Result<Result<(), DisableRefused>, AppError> {
    let DisableProof { password, code, ip } = proof;
    if !password_matches(db, hasher, user, password, ip.clone(), now).await? {
        return Ok(Err(DisableRefused::WrongPassword));
    }
    let attempt = CodeAttempt {
        user,
        input: code,
        ip: ip.clone(),
        allow_recovery: false,
        failure_action: "two_factor.disable_failed",
    };
    if let Err(refused) = check_code(db, vault, attempt, now).await? {
        return Ok(Err(DisableRefused::Code(refused)));
    }
    run(db, Scope::System, async |conn| {
        two_factor::remove(conn, user.id).await?;
        audit::record(
            conn,
            audit::Event::new(user_kind(user), Some(user.id), "two_factor.disabled")
                .tenant(user.tenant_id)
                .target("user", user.id)
                .ip(ip.clone()),
        )
        .await
    })
    .await?;
    Ok(Ok(()))
}

/// Checks a signed-in user's current password (for changes to their account). A wrong one
/// counts toward the account's back-off like a wrong sign-in, and is refused while it lasts.
pub async fn password_matches(
    db: &Pool,
    hasher: &PasswordHasher,
    user: &users::User,
    password: &SecretString,
    ip: Option<String>,
    now: DateTime<Utc>,
) -> Result<bool, AppError> {
    let locked = user.locked_until.is_some_and(|until| until > now);
    let stored = if locked {
        None
    } else {
        user.password_hash.clone()
    };
    let verdict = hasher
        .verify(password, stored)
        .await
        .map_err(AppError::internal)?;
    if !locked && matches!(verdict, Verification::Valid { .. }) {
        return Ok(true);
    }
    run(db, Scope::System, async |conn| {
        users::record_failed_login(conn, user.id, lock_until(user.failed_logins + 1, now)).await?;
        audit::record(
            conn,
            audit::Event::new(
                user_kind(user),
                Some(user.id),
                "account.password_check_failed",
            )
            .tenant(user.tenant_id)
            .target("user", user.id)
            .ip(ip),
        )
        .await
    })
    .await?;
    Ok(false)
}
