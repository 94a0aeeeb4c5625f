//! The application state shared by every handler, built once at start-up.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Settings;
use crate::db::Pool;
use crate::vault::Vault;

/// What handlers reach through `web::Data<AppState>`.
pub struct AppState {
    pub db: Pool,
    pub settings: Arc<Settings>,
    pub vault: Arc<Vault>,
    pub hasher: crate::auth::password::PasswordHasher,
    pub finch: crate::finch::client::FinchClient,
    pub clock: Arc<dyn Clock>,
    /// The cookie key (from `FINCHGATE_SESSION_SECRET`): signs the session cookie, and encrypts
    /// the few cookies that must carry a secret (a stateless callback's code, until confirmed).
    pub cookie_key: actix_web::cookie::Key,
}
