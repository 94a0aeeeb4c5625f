//! The operator console's service layer: filters and cursors ([`filter`]), the queries over the
//! ledger across tenants ([`ledger`]), triage ([`review`]), tenants' health ([`health`]), the trend chart's geometry
//! ([`chart`]), the streamed CSV export ([`export`]) and the development seeder ([`seed`]).
//!
//! Routes under `/ops` call these inside `db::transaction(Scope::Operator, …)`; nothing here
//! renders HTML, and no query reads a token, client secret, code or state.

pub mod chart;
pub mod export;
pub mod filter;
pub mod health;
pub mod ledger;
pub mod review;
pub mod seed;
mod sql;
