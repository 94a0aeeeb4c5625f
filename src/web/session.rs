//! What finchgate keeps in a browser's server-side session, behind typed accessors.

use actix_session::Session;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::auth::session_store::USER_ID_KEY;
use crate::error::AppError;
use crate::primitives::random_token;

const CSRF_KEY: &str = "csrf";
const BINDING_KEY: &str = "binding";
const AUTHENTICATED_AT_KEY: &str = "authenticated_at";

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

    /// Starts an authenticated session: a new session id (the old one is deleted from the store),
    /// fresh CSRF token and flow binding.
    pub fn sign_in(&self, user_id: Uuid, now: DateTime<Utc>) -> Result<(), AppError> {
        self.0.renew();
        self.0.clear();
        self.0
            .insert(USER_ID_KEY, user_id)
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
