//! Authentication: signing in (back-off, throttle, audit), password hashing off the async
//! executor, and the PostgreSQL session store.

pub mod login;
pub mod password;
pub mod session_store;
