//! Finch: the production API client and the wire types it shares with the sandbox emulator.
pub mod client;
pub mod wire;
