//! finchgate: a multi-tenant admin platform for connecting payroll providers through Finch.
//!
//! Tenant admins run Finch Connect; finchgate's server-side callback exchanges the authorization
//! code at Finch's `POST /auth/token` with that tenant's credentials, stores the access token
//! envelope-encrypted, and writes a ledger of every exchange attempt. Operators triage failures.
//!
//! # Architecture map
//!
//! | module        | what it is for |
//! |---------------|----------------|
//! | [`cli`]       | clap subcommands (`serve`, `demo`, `migrate`, `sandbox`, `keys`, …) and dispatch |
//! | [`config`]    | [`config::Settings`] from flags/env, validated at load; secrets are `SecretString` |
//! | [`startup`]   | [`startup::Application::build`]: the wiring, a bound listener (port 0 works) |
//! | [`state`]     | [`state::AppState`]: pool, settings, clock — built once |
//! | [`telemetry`] | tracing subscriber (pretty/json), request ids, access log without query strings, metrics |
//! | [`error`]     | [`error::AppError`] → status + error page; the user's message apart from the logged cause |
//! | [`domain`]    | pure types and rules, no I/O |
//! | [`db`]        | pool, generated schema, embedded migrations, per-table queries |
//! | [`auth`]      | password hashing off the executor |
//! | [`keys`]      | master-key bookkeeping in the database: the boot-time key check |
//! | [`console`]   | the operator console's queries over the ledger: filters, keyset pages, groups, trends, health, CSV, seeding |
//! | [`onboarding`] | tenants, operators, one-time admin setup links, disabling users (console and CLI) |
//! | [`vault`]     | envelope encryption: versioned master keys, per-value data keys, row-bound AAD |
//! | [`finch`]     | Finch wire types (and, later, the production client) |
//! | [`tenancy`]   | a tenant's Finch configuration: credentials (validate, seal, open, test), sandbox mode |
//! | [`web`]       | extractors (`CurrentUser`, `Operator`, `TenantAdmin`), CSRF, security headers, session data |
//! | [`routes`]    | HTTP only: the one route table and one handler file per page |
//! | [`sandbox`]   | the Finch sandbox emulator, its own actix app |
//! | [`demo`]      | `finchgate demo`: an all-in-one local run with seeded data |

pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connect;
pub mod console;
pub mod db;
pub mod domain;
pub mod error;
pub mod finch;
pub mod keys;
pub mod onboarding;
pub mod primitives;
pub mod routes;
pub mod sandbox;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod tenancy;
pub mod vault;
pub mod web;
