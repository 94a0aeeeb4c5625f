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
}
