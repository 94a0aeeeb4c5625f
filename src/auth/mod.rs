//! Authentication: signing in (back-off, throttle, audit), password hashing off the async
//! executor, the PostgreSQL session store, two-factor sign-in (TOTP and recovery codes) and the
//! account's own changes (password, sessions).

pub mod account;
pub mod login;
pub mod password;
pub mod session_store;
pub mod totp;
pub mod two_factor;
