//! What finchgate keeps in a browser's server-side session, behind typed accessors.

use actix_session::Session;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::auth::session_store::{BROWSER_KEY, PUBLIC_ID_KEY, USER_ID_KEY};
use crate::error::AppError;
use crate::primitives::random_token;

const CSRF_KEY: &str = "csrf";
const BINDING_KEY: &str = "binding";
const AUTHENTICATED_AT_KEY: &str = "authenticated_at";
/// Half signed in: the password was right, the second step is due. Only these two entries (and
/// the CSRF token) are kept; the session has no user until the code is accepted.
const PENDING_USER_KEY: &str = "pending_user_id";
const PENDING_UNTIL_KEY: &str = "pending_until";

/// How long a half-signed-in session waits for its code.
pub const SECOND_STEP_WINDOW: chrono::Duration = chrono::Duration::minutes(5);

/// Typed access to the session entries.
pub struct SessionData<'a>(pub &'a Session);

impl SessionData<'_> {
    pub fn user_id(&self) -> Option<Uuid> {
        self.0.get::<Uuid>(USER_ID_KEY).ok().flatten()
    }

    /// The synchronizer token of this session, created on first use.
    pub fn csrf_token(&self) -> Result<String, AppError> {
        if let Some(token) = self.0.get::<String>(CSRF_KEY).ok().flatten() {
            return Ok(token);
        }
        let token = random_token()?;
        self.0
            .insert(CSRF_KEY, &token)
            .map_err(AppError::internal)?;
        Ok(token)
    }

    /// The token stored in the session, without creating one.
    pub fn existing_csrf_token(&self) -> Option<String> {
        self.0.get::<String>(CSRF_KEY).ok().flatten()
    }

    /// A random nonce that binds Connect flows to this browser session (stored hashed on the flow).
    pub fn flow_binding(&self) -> Result<String, AppError> {
        if let Some(binding) = self.0.get::<String>(BINDING_KEY).ok().flatten() {
            return Ok(binding);
        }
        let binding = random_token()?;
        self.0
            .insert(BINDING_KEY, &binding)
            .map_err(AppError::internal)?;
        Ok(binding)
    }

    /// This session's public id (what the account page names it by), when signed in.
    pub fn public_id(&self) -> Option<Uuid> {
        self.0.get::<Uuid>(PUBLIC_ID_KEY).ok().flatten()
    }

    /// Half signs in: a new session id holding only the user still to give a code, until
    /// [`SECOND_STEP_WINDOW`] from `now`, and a fresh CSRF token.
    pub fn begin_second_step(&self, user_id: Uuid, now: DateTime<Utc>) -> Result<(), AppError> {
        self.0.renew();
        self.0.clear();
        self.0
            .insert(PENDING_USER_KEY, user_id)
            .map_err(AppError::internal)?;
        self.0
            .insert(PENDING_UNTIL_KEY, now + SECOND_STEP_WINDOW)
            .map_err(AppError::internal)?;
        self.0
            .insert(CSRF_KEY, random_token()?)
            .map_err(AppError::internal)?;
        Ok(())
    }

    /// The user whose second step is due, unless the window has passed.
    pub fn pending_second_step(&self, now: DateTime<Utc>) -> Option<Uuid> {
        let until = self
            .0
            .get::<DateTime<Utc>>(PENDING_UNTIL_KEY)
            .ok()
            .flatten()?;
        (until > now)
            .then(|| self.0.get::<Uuid>(PENDING_USER_KEY).ok().flatten())
            .flatten()
    }

    /// Starts an authenticated session: a new session id (the old one is deleted from the store),
    /// a new public id, fresh CSRF token and flow binding. `browser` is the User-Agent summary.
    pub fn sign_in(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
        browser: &str,
    ) -> Result<(), AppError> {
        self.0.renew();
        self.0.clear();
        self.0
            .insert(USER_ID_KEY, user_id)
            .map_err(AppError::internal)?;
        self.0
            .insert(PUBLIC_ID_KEY, Uuid::new_v4())
            .map_err(AppError::internal)?;
        self.0
            .insert(BROWSER_KEY, browser)
            .map_err(AppError::internal)?;
        self.0
            .insert(AUTHENTICATED_AT_KEY, now)
            .map_err(AppError::internal)?;
        self.0
            .insert(CSRF_KEY, random_token()?)
            .map_err(AppError::internal)?;
        self.0
            .insert(BINDING_KEY, random_token()?)
            .map_err(AppError::internal)?;
        Ok(())
    }

    /// Ends the session: the row is deleted and the cookie cleared.
    pub fn sign_out(&self) {
        self.0.purge();
    }
}
