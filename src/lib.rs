//! finchgate: a multi-tenant admin platform for connecting payroll providers through Finch.
//!
//! Tenant admins run Finch Connect; finchgate's server-side callback exchanges the authorization
//! code at Finch's `POST /auth/token` with that tenant's credentials, stores the access token
//! envelope-encrypted, and writes a ledger of every exchange attempt. Operators triage failures.
//!
//! # Architecture map
//!
//! Layers, top to bottom; a module uses only those below it (and `domain`, `primitives`,
//! `clock`, `error` from anywhere).
//!
//! | module        | what it is for |
//! |---------------|----------------|
//! | [`cli`]       | the command line: clap arguments, one runner per command group (serve, demo, keys, tenant/operator, dev), exit codes |
//! | [`startup`]   | [`startup::Application::build`]: the wiring, a bound listener (port 0 works) |
//! | [`routes`]    | HTTP only: the one route table and one handler file per page; extract, authorize, call one function, render |
//! | [`web`]       | extractors (`CurrentUser`, `Operator`, `TenantAdmin`), CSRF, security headers, session data, `render`/`see_other` |
//! | [`state`]     | [`state::AppState`]: pool, settings, vault, password hasher, Finch client, clock — built once |
//! | [`api`]       | the tenant API's machinery: API keys, the bearer-key extractor and per-key rate limit, problem details, pagination, `Idempotency-Key`, the JSON shapes, the OpenAPI document |
//! | [`connect`]   | the Connect flows: start, callback (input, claim, store), managing a connection, the ledger rows, the reaper |
//! | [`credentials`] | a tenant's Finch credentials: input rules, seal/store/open, saving the settings form, "Test credentials" |
//! | [`console`]   | the operator console: filters, keyset pages, groups, trends, health, triage, CSV, seeding |
//! | [`onboarding`] | tenants, operators, one-time admin setup links, disabling users, password reset links, clearing two-factor (console and CLI) |
//! | [`keys`]      | master keys against the database: the boot-time key check, status, rotation, retirement |
//! | [`auth`]      | signing in (back-off, throttle, audit), two-factor (TOTP, recovery codes), the account's password and sessions, password hashing off the executor, the Postgres session store |
//! | [`finch`]     | the production Finch client (single-use-safe retry policy) and Finch's wire types |
//! | [`sandbox`]   | the Finch sandbox emulator, its own actix app (shares only wire types with [`finch`]) |
//! | [`db`]        | pool, scoped transactions, generated schema, embedded migrations, per-table queries |
//! | [`vault`]     | envelope encryption: versioned master keys, per-value data keys, row-bound AAD |
//! | [`config`]    | [`config::Settings`] from flags/env, validated at load; secrets are `SecretString` |
//! | [`telemetry`] | tracing subscriber (pretty/json), request ids, access log without query strings, metrics |
//! | [`error`]     | [`error::AppError`] → status + error page; the user's message apart from the logged cause |
//! | [`domain`]    | pure types and rules, no I/O: slug, email, redirect URIs, products, sandbox modes, password policy, failures, text |
//! | [`primitives`] | SHA-256, constant-time comparison, random tokens |
//! | [`clock`]     | the time source (injected, so tests can move it) |

pub mod api;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connect;
pub mod console;
pub mod credentials;
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
pub mod vault;
pub mod web;
