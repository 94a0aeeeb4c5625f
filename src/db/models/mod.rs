//! Row types and queries, one file per table; tenant-owned queries take the tenant id.

pub mod api_keys;
pub mod attempts;
pub mod audit;
pub mod connections;
pub mod credentials;
pub mod flows;
pub mod idempotency_keys;
pub mod invitations;
pub mod keyring;
pub mod links;
pub mod password_resets;
pub mod rate_limits;
pub mod redirect_uris;
pub mod tenants;
pub mod tokens;
pub mod two_factor;
pub mod users;
