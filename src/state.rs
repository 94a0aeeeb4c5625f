//! The application state shared by every handler, built once in [`crate::startup`].

use std::sync::Arc;

use chrono::{DateTime, Utc};

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

/// The time source. Production uses the system clock; tests inject one they can move.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that tests move forward explicitly (offset from the wall clock, so databases agree).
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset_seconds: std::sync::atomic::AtomicI64,
}

impl OffsetClock {
    pub fn advance(&self, by: chrono::Duration) {
        self.offset_seconds
            .fetch_add(by.num_seconds(), std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
            + chrono::Duration::seconds(
                self.offset_seconds
                    .load(std::sync::atomic::Ordering::SeqCst),
            )
    }
}
