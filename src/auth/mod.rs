//! Authentication primitives: password hashing off the async executor.

pub mod password;
pub mod session_store;
