//! finchgate's integration tests: the real application on port 0, a fresh PostgreSQL database per
//! test (cloned from a migrated template), and the Finch sandbox emulator in-process.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test should fail loudly at the line that broke"
)]

mod account;
mod api_authz;
mod api_keys;
mod api_links;
mod api_support;
mod api_v1;
mod auth;
mod authz;
mod config;
mod connect;
mod console;
mod finch_client;
mod flows;
mod hardening;
mod health;
mod helpers;
mod isolation;
mod keys;
mod links;
mod migrations;
mod navigation;
mod ops;
mod sandbox;
mod sessions;
mod settings;
mod vault;
