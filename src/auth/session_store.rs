//! actix-session's `SessionStore` on PostgreSQL: server-side sessions that can be revoked.
//!
//! A signed-in session's cookie carries a random 64-character key; the table stores only its
//! SHA-256, so a copy of the database holds no usable session. Idle expiry (`expires_at`, pushed
//! forward on activity) and the absolute cap (`created_at` + [`ABSOLUTE_TIMEOUT`]) are checked
//! against the injected clock on every load; a session of a disabled user no longer loads, and
//! disabling or logging out deletes rows outright. Deleted means deleted: a request still in
//! flight when its row goes ends with an empty anonymous session, never a new row.
//!
//! A visitor who is not signed in (the login form's CSRF token) gets no row at all: the state
//! travels in the cookie itself (`a.<expiry>.<base64url json>`), signed with the session secret
//! by actix-session, and expires after [`IDLE_TIMEOUT`] without a change. Only a sign-in, which
//! renews the session, writes a row.

use std::collections::HashMap;
use std::sync::Arc;

use actix_session::storage::{
    LoadError, SaveError, SessionKey, SessionStore, UpdateError, generate_session_key,
};
use chrono::{DateTime, Utc};
use diesel::{
    BoolExpressionMethods as _, ExpressionMethods as _, OptionalExtension as _, QueryDsl as _,
};
use diesel_async::RunQueryDsl as _;
use uuid::Uuid;

use crate::clock::Clock;
use crate::db::schema::sessions;
use crate::db::{Pool, Scope, transaction};
use crate::primitives::sha256;

/// Idle timeout: a session unused this long is gone.
pub const IDLE_TIMEOUT: chrono::Duration = chrono::Duration::minutes(30);
/// Absolute timeout: no session outlives this, however active.
pub const ABSOLUTE_TIMEOUT: chrono::Duration = chrono::Duration::hours(12);
/// A request moves the idle expiry only when it would move by more than this.
const TTL_EXTENSION_STEP: chrono::Duration = chrono::Duration::minutes(1);
/// The session-state entry that names the signed-in user (JSON-encoded, as actix-session stores values).
pub const USER_ID_KEY: &str = "user_id";
/// The session's random public id (a UUID): what the account page and its URLs name a session
/// by. The session key, and its hash, never leave the cookie and this table.
pub const PUBLIC_ID_KEY: &str = "session_public_id";
/// The browser a session was signed in from, summarised from its User-Agent.
pub const BROWSER_KEY: &str = "browser";

/// The PostgreSQL-backed session store.
#[derive(Clone)]
pub struct PgSessionStore {
    pool: Pool,
    clock: Arc<dyn Clock>,
}

impl PgSessionStore {
    pub fn new(pool: Pool, clock: Arc<dyn Clock>) -> Self {
        Self { pool, clock }
    }
}

/// How an anonymous session's key starts; a stored session's key (64 alphanumerics) never does.
const ANONYMOUS_PREFIX: &str = "a.";
/// Longest anonymous key: a cookie holds about 4 KB, and the signature takes its share.
const MAX_ANONYMOUS_KEY: usize = 3000;

/// The key that carries `state` itself until `expires_at`, or `None` when it is too large for a
/// cookie (then the state is stored like a signed-in one).
fn anonymous_key(state: &HashMap<String, String>, expires_at: DateTime<Utc>) -> Option<SessionKey> {
    use base64::Engine as _;
    let json = serde_json::to_vec(state).ok()?;
    let key = format!(
        "{ANONYMOUS_PREFIX}{}.{}",
        expires_at.timestamp(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    );
    (key.len() <= MAX_ANONYMOUS_KEY)
        .then(|| SessionKey::try_from(key).ok())
        .flatten()
}

/// The state an anonymous key carries, unless it expired by `now`.
fn anonymous_state(key: &str, now: DateTime<Utc>) -> Option<HashMap<String, String>> {
    use base64::Engine as _;
    let (expires, encoded) = key.strip_prefix(ANONYMOUS_PREFIX)?.split_once('.')?;
    let expires = DateTime::from_timestamp(expires.parse().ok()?, 0)?;
    if expires <= now {
        return None;
    }
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()?;
    serde_json::from_slice(&json).ok()
}

fn is_anonymous(key: &SessionKey) -> bool {
    key.as_ref().starts_with(ANONYMOUS_PREFIX)
}

fn user_id_of(state: &HashMap<String, String>) -> Option<Uuid> {
    state
        .get(USER_ID_KEY)
        .and_then(|raw| serde_json::from_str::<Uuid>(raw).ok())
}

fn public_id_of(state: &HashMap<String, String>) -> Uuid {
    state
        .get(PUBLIC_ID_KEY)
        .and_then(|raw| serde_json::from_str::<Uuid>(raw).ok())
        .unwrap_or_else(Uuid::new_v4)
}

fn browser_of(state: &HashMap<String, String>) -> Option<String> {
    state
        .get(BROWSER_KEY)
        .and_then(|raw| serde_json::from_str::<String>(raw).ok())
        .map(|b| b.chars().take(100).collect())
}

fn ttl_seconds(ttl: &actix_web::cookie::time::Duration) -> chrono::Duration {
    chrono::Duration::seconds(ttl.whole_seconds().max(1))
}

#[derive(diesel::QueryableByName)]
struct Row {
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    state: serde_json::Value,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    expires_at: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
    disabled_at: Option<DateTime<Utc>>,
}

impl SessionStore for PgSessionStore {
    async fn load(
        &self,
        session_key: &SessionKey,
    ) -> Result<Option<HashMap<String, String>>, LoadError> {
        let now = self.clock.now();
        if is_anonymous(session_key) {
            return Ok(anonymous_state(session_key.as_ref(), now));
        }
        let hash = sha256(session_key.as_ref());
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|e| LoadError::Other(e.into()))?;
        let row: Option<Row> = transaction(&mut conn, Scope::System, async |conn| {
            diesel::sql_query(
                "SELECT s.state, s.created_at, s.expires_at, u.disabled_at
                   FROM sessions s LEFT JOIN users u ON u.id = s.user_id
                  WHERE s.key_hash = $1",
            )
            .bind::<diesel::sql_types::Bytea, _>(&hash)
            .get_result::<Row>(conn)
            .await
            .optional()
        })
        .await
        .map_err(|e| LoadError::Other(e.into()))?;
        let Some(Row {
            state,
            created_at,
            expires_at,
            disabled_at,
        }) = row
        else {
            return Ok(None);
        };
        let user_disabled = disabled_at.is_some();
        if expires_at <= now || created_at + ABSOLUTE_TIMEOUT <= now || user_disabled {
            transaction(&mut conn, Scope::System, async |conn| {
                diesel::delete(sessions::table.filter(sessions::key_hash.eq(&hash)))
                    .execute(conn)
                    .await
            })
            .await
            .map_err(|e| LoadError::Other(e.into()))?;
            return Ok(None);
        }
        let state: HashMap<String, String> =
            serde_json::from_value(state).map_err(|e| LoadError::Deserialization(e.into()))?;
        Ok(Some(state))
    }

    async fn save(
        &self,
        session_state: HashMap<String, String>,
        ttl: &actix_web::cookie::time::Duration,
    ) -> Result<SessionKey, SaveError> {
        let now = self.clock.now();
        let user_id = user_id_of(&session_state);
        if user_id.is_none()
            && let Some(key) = anonymous_key(&session_state, now + IDLE_TIMEOUT)
        {
            return Ok(key);
        }
        let key = generate_session_key();
        let hash = sha256(key.as_ref());
        let state =
            serde_json::to_value(&session_state).map_err(|e| SaveError::Serialization(e.into()))?;
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|e| SaveError::Other(e.into()))?;
        transaction(&mut conn, Scope::System, async |conn| {
            diesel::insert_into(sessions::table)
                .values((
                    sessions::key_hash.eq(&hash),
                    sessions::user_id.eq(user_id),
                    sessions::state.eq(&state),
                    sessions::created_at.eq(now),
                    sessions::expires_at.eq(now + ttl_seconds(ttl)),
                    sessions::public_id.eq(public_id_of(&session_state)),
                    sessions::user_agent.eq(browser_of(&session_state)),
                ))
                .execute(conn)
                .await
        })
        .await
        .map_err(|e| SaveError::Other(e.into()))?;
        Ok(key)
    }

    async fn update(
        &self,
        session_key: SessionKey,
        session_state: HashMap<String, String>,
        ttl: &actix_web::cookie::time::Duration,
    ) -> Result<SessionKey, UpdateError> {
        let user_id = user_id_of(&session_state);
        if is_anonymous(&session_key) || user_id.is_none() {
            // Not (or no longer) signed in: nothing to keep in the table.
            if !is_anonymous(&session_key) {
                self.delete(&session_key)
                    .await
                    .map_err(UpdateError::Other)?;
            }
            return self.save(session_state, ttl).await.map_err(|e| match e {
                SaveError::Serialization(e) => UpdateError::Serialization(e),
                SaveError::Other(e) => UpdateError::Other(e),
            });
        }
        let hash = sha256(session_key.as_ref());
        let now = self.clock.now();
        let state = serde_json::to_value(&session_state)
            .map_err(|e| UpdateError::Serialization(e.into()))?;
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|e| UpdateError::Other(e.into()))?;
        let updated = transaction(&mut conn, Scope::System, async |conn| {
            diesel::update(sessions::table.filter(sessions::key_hash.eq(&hash)))
                .set((
                    sessions::state.eq(&state),
                    sessions::user_id.eq(user_id),
                    sessions::expires_at.eq(now + ttl_seconds(ttl)),
                ))
                .execute(conn)
                .await
        })
        .await
        .map_err(|e| UpdateError::Other(e.into()))?;
        if updated == 0 {
            // The row is gone (signed out, revoked, expired) while this request was in flight:
            // deleted means deleted. The browser gets an empty anonymous session, nothing of the
            // old one (not its user, not its age), and no row.
            return anonymous_key(&HashMap::new(), now + IDLE_TIMEOUT).ok_or_else(|| {
                UpdateError::Other(anyhow::anyhow!("an empty session does not fit a cookie"))
            });
        }
        Ok(session_key)
    }

    async fn update_ttl(
        &self,
        session_key: &SessionKey,
        ttl: &actix_web::cookie::time::Duration,
    ) -> Result<(), anyhow::Error> {
        if is_anonymous(session_key) {
            // Its expiry travels in the key, renewed whenever its state changes.
            return Ok(());
        }
        let hash = sha256(session_key.as_ref());
        let expires = self.clock.now() + ttl_seconds(ttl);
        let mut conn = self.pool.get().await?;
        transaction(&mut conn, Scope::System, async |conn| {
            // Skipped when the expiry moved within the last minute: a busy session then costs a
            // read, not a durable write, per request (docs/benchmarks.md). The idle timeout can
            // so end up to a minute early, never late.
            diesel::update(
                sessions::table
                    .filter(sessions::key_hash.eq(&hash))
                    .filter(sessions::expires_at.lt(expires - TTL_EXTENSION_STEP)),
            )
            .set(sessions::expires_at.eq(expires))
            .execute(conn)
            .await
        })
        .await?;
        Ok(())
    }

    async fn delete(&self, session_key: &SessionKey) -> Result<(), anyhow::Error> {
        if is_anonymous(session_key) {
            return Ok(());
        }
        let hash = sha256(session_key.as_ref());
        let mut conn = self.pool.get().await?;
        transaction(&mut conn, Scope::System, async |conn| {
            diesel::delete(sessions::table.filter(sessions::key_hash.eq(&hash)))
                .execute(conn)
                .await
        })
        .await?;
        Ok(())
    }
}

/// Deletes every session of a user (logout everywhere, disabling the user). Call in system scope.
pub async fn revoke_all_for_user(
    conn: &mut diesel_async::AsyncPgConnection,
    user_id: Uuid,
) -> diesel::QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id)))
        .execute(conn)
        .await
}

/// A signed-in session as its owner sees it on the account page.
#[derive(Debug, Clone, diesel::Queryable)]
pub struct SessionSummary {
    pub public_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub browser: Option<String>,
}

impl SessionSummary {
    /// When it was last used: the idle expiry moves forward on activity (within a minute).
    pub fn last_seen(&self) -> DateTime<Utc> {
        (self.expires_at - IDLE_TIMEOUT).max(self.created_at)
    }
}

/// The user's live sessions, newest first. Call in system scope.
pub async fn list_for_user(
    conn: &mut diesel_async::AsyncPgConnection,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> diesel::QueryResult<Vec<SessionSummary>> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::expires_at.gt(now))
        .filter(sessions::created_at.gt(now - ABSOLUTE_TIMEOUT))
        .order(sessions::created_at.desc())
        .select((
            sessions::public_id,
            sessions::created_at,
            sessions::expires_at,
            sessions::user_agent,
        ))
        .load(conn)
        .await
}

/// Deletes one session of the user by its public id, never `keep` (the caller's own). Another
/// user's session id matches nothing. Call in system scope.
pub async fn revoke_one(
    conn: &mut diesel_async::AsyncPgConnection,
    user_id: Uuid,
    public_id: Uuid,
    keep: Uuid,
) -> diesel::QueryResult<usize> {
    diesel::delete(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::public_id.eq(public_id))
            .filter(sessions::public_id.ne(keep)),
    )
    .execute(conn)
    .await
}

/// Deletes every session of the user but `keep` (the caller's own). Call in system scope.
pub async fn revoke_others(
    conn: &mut diesel_async::AsyncPgConnection,
    user_id: Uuid,
    keep: Uuid,
) -> diesel::QueryResult<usize> {
    diesel::delete(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::public_id.ne(keep)),
    )
    .execute(conn)
    .await
}

/// Deletes expired sessions (idle or past the absolute cap). Call in system scope.
pub async fn purge_expired(
    conn: &mut diesel_async::AsyncPgConnection,
    now: DateTime<Utc>,
) -> diesel::QueryResult<usize> {
    diesel::delete(
        sessions::table.filter(
            sessions::expires_at
                .le(now)
                .or(sessions::created_at.le(now - ABSOLUTE_TIMEOUT)),
        ),
    )
    .execute(conn)
    .await
}
