//! The development seeder behind `finchgate dev seed-ledger`: fills the database with realistic
//! tenants, connections and ledger rows for demos and benchmarks — a mix of categories, actors,
//! providers, outcomes and review states over the last 30 days, a few tenants with broken
//! credentials. All in SQL (`INSERT … SELECT generate_series`), in batches, so a million rows take
//! seconds, not minutes.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Integer, Text, Timestamptz};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use secrecy::{ExposeSecret as _, SecretString};

use crate::db::{Scope, transaction};
use crate::domain::failure;

/// Seeded tenants are named `seed-0001`, `seed-0002`, …
pub const SLUG_PREFIX: &str = "seed-";

pub const PROVIDERS: &[&str] = &[
    "gusto",
    "adp_run",
    "paychex_flex",
    "bamboo_hr",
    "rippling",
    "quickbooks",
    "workday",
    "justworks",
    "paylocity",
    "trinet",
];

/// A kind of failure as it shows up in the ledger, with how common it is.
struct Kind {
    category: &'static str,
    weight: usize,
    stage: &'static str,
    finch_status: &'static str,
    error_name: &'static str,
    finch_code: &'static str,
    message: &'static str,
}

const KINDS: &[Kind] = &[
    Kind {
        category: "invalid_grant",
        weight: 26,
        stage: "exchange",
        finch_status: "400",
        error_name: "invalid_grant_error",
        finch_code: "invalid_grant",
        message: "The authorization code has expired or has already been used.",
    },
    Kind {
        category: "user_denied",
        weight: 16,
        stage: "callback",
        finch_status: "",
        error_name: "",
        finch_code: "",
        message: "access_denied: the employer did not grant access",
    },
    Kind {
        category: "state_expired",
        weight: 8,
        stage: "callback",
        finch_status: "",
        error_name: "",
        finch_code: "",
        message: "The Connect flow expired before the callback arrived.",
    },
    Kind {
        category: "invalid_client",
        weight: 6,
        stage: "exchange",
        finch_status: "401",
        error_name: "invalid_client_error",
        finch_code: "invalid_client",
        message: "Client authentication failed.",
    },
    Kind {
        category: "finch_server_error",
        weight: 8,
        stage: "exchange",
        finch_status: "502",
        error_name: "server_error",
        finch_code: "",
        message: "Bad gateway.",
    },
    Kind {
        category: "finch_timeout",
        weight: 7,
        stage: "exchange",
        finch_status: "",
        error_name: "",
        finch_code: "",
        message: "No answer from Finch within 30 s.",
    },
    Kind {
        category: "finch_rate_limited",
        weight: 7,
        stage: "exchange",
        finch_status: "429",
        error_name: "rate_limit_error",
        finch_code: "too_many_requests",
        message: "Rate limit exceeded; retry after 60 seconds.",
    },
    Kind {
        category: "finch_bad_request",
        weight: 6,
        stage: "exchange",
        finch_status: "400",
        error_name: "invalid_request_error",
        finch_code: "invalid_request",
        message: "redirect_uri does not match the one used to obtain the code.",
    },
    Kind {
        category: "finch_unreachable",
        weight: 4,
        stage: "exchange",
        finch_status: "",
        error_name: "",
        finch_code: "",
        message: "connect: connection refused (api.tryfinch.com)",
    },
    Kind {
        category: "finch_connection_lost",
        weight: 3,
        stage: "exchange",
        finch_status: "",
        error_name: "",
        finch_code: "",
        message: "connection reset by peer",
    },
    Kind {
        category: "token_not_persisted",
        weight: 2,
        stage: "exchange",
        finch_status: "200",
        error_name: "",
        finch_code: "",
        message: "database write failed after 3 tries",
    },
    Kind {
        category: "unknown_outcome",
        weight: 2,
        stage: "exchange",
        finch_status: "",
        error_name: "",
        finch_code: "",
        message: "process stopped during the exchange",
    },
    Kind {
        category: "customer_mismatch",
        weight: 2,
        stage: "exchange",
        finch_status: "200",
        error_name: "",
        finch_code: "",
        message: "customer_id in the token response differs from the flow's",
    },
    Kind {
        category: "credentials_missing",
        weight: 1,
        stage: "session",
        finch_status: "",
        error_name: "",
        finch_code: "",
        message: "no Finch credentials saved",
    },
];

/// The weighted kinds as parallel arrays (one entry per unit of weight), bound as parameters.
struct Weighted {
    category: Vec<String>,
    actor: Vec<String>,
    stage: Vec<String>,
    finch_status: Vec<String>,
    error_name: Vec<String>,
    finch_code: Vec<String>,
    message: Vec<String>,
    shown: Vec<String>,
}

fn weighted() -> Weighted {
    let mut w = Weighted {
        category: Vec::new(),
        actor: Vec::new(),
        stage: Vec::new(),
        finch_status: Vec::new(),
        error_name: Vec::new(),
        finch_code: Vec::new(),
        message: Vec::new(),
        shown: Vec::new(),
    };
    for kind in KINDS {
        let Some(f) = failure::by_category(kind.category) else {
            continue;
        };
        for _ in 0..kind.weight {
            w.category.push(kind.category.to_owned());
            w.actor.push(f.actor.as_str().to_owned());
            w.stage.push(kind.stage.to_owned());
            w.finch_status.push(kind.finch_status.to_owned());
            w.error_name.push(kind.error_name.to_owned());
            w.finch_code.push(kind.finch_code.to_owned());
            w.message.push(kind.message.to_owned());
            w.shown.push(format!("{} — {}", f.title, f.next_step));
        }
    }
    w
}

const TENANTS_SQL: &str = "INSERT INTO tenants (slug, name, finch_sandbox) \
     SELECT $1 || lpad(g::text, 4, '0'), 'Seed Tenant ' || lpad(g::text, 4, '0'), 'finch' \
     FROM generate_series(1, $2) g ON CONFLICT (slug) DO NOTHING";

const CONNECTIONS_SQL: &str = "INSERT INTO connections (tenant_id, finch_connection_id, provider_id, \
       customer_id, customer_name, products, status, connected_at) \
     SELECT t.id, 'seed-' || t.slug || '-' || g, ($2::text[])[1 + abs(hashtext(t.slug || g)) % cardinality($2::text[])], \
       t.slug || '-customer-' || g, 'Customer ' || g, '{company,directory}', \
       CASE abs(hashtext(t.slug || g || 's')) % 10 WHEN 0 THEN 'reauth_required' WHEN 1 THEN 'disconnected' ELSE 'active' END, \
       now() - (abs(hashtext(t.slug || g)) % 90) * interval '1 day' \
     FROM tenants t, LATERAL generate_series(1, 1 + abs(hashtext(t.slug)) % 6) g \
     WHERE t.slug LIKE $1 || '%' \
     ON CONFLICT (tenant_id, finch_connection_id) DO NOTHING";

/// One batch of ledger rows. Every 25th tenant has broken credentials (most attempts fail with
/// invalid_client); elsewhere about 12 % fail, with the weighted mix of categories. Failures
/// older than two days are mostly resolved, as a team that triages would leave them.
const LEDGER_SQL: &str = "INSERT INTO exchange_attempts (tenant_id, stage, flow_kind, credentials_version, \
       callback_received_at, started_at, exchange_sent_at, answered_at, finished_at, latency_ms, \
       outcome, category, actor, finch_status, finch_error_name, finch_code, message, shown_to_user, \
       finch_request_id, provider_id, review_state, reviewed_at, review_note) \
     SELECT ten.ids[s.ti], \
       CASE WHEN s.failed THEN ($1::text[])[s.ki] ELSE 'exchange' END, \
       CASE WHEN s.r_kind < 0.7 THEN 'redirect' ELSE 'embedded' END, \
       1, s.st, s.st, s.st + interval '3 ms', s.st + s.lat * interval '1 ms', \
       s.st + (s.lat + 4) * interval '1 ms', s.lat, \
       CASE WHEN NOT s.failed THEN 'succeeded' \
            WHEN ($2::text[])[s.ki] IN ('token_not_persisted', 'unknown_outcome') THEN ($2::text[])[s.ki] \
            ELSE 'failed' END, \
       CASE WHEN s.failed THEN ($2::text[])[s.ki] END, \
       CASE WHEN s.failed THEN ($3::text[])[s.ki] END, \
       CASE WHEN NOT s.failed THEN 200 ELSE nullif(($4::text[])[s.ki], '')::smallint END, \
       CASE WHEN s.failed THEN nullif(($5::text[])[s.ki], '') END, \
       CASE WHEN s.failed THEN nullif(($6::text[])[s.ki], '') END, \
       CASE WHEN s.failed THEN ($7::text[])[s.ki] END, \
       CASE WHEN s.failed THEN ($8::text[])[s.ki] END, \
       'req_' || substr(md5(s.i::text || $9), 1, 24), \
       ($10::text[])[1 + (s.ti * 7 + s.i % 3) % cardinality($10::text[])], \
       CASE WHEN NOT s.failed THEN 'open' \
            WHEN s.st < $11 - interval '2 days' AND s.r_rev < 0.8 THEN 'resolved' \
            WHEN s.r_rev > 0.9 THEN 'acknowledged' ELSE 'open' END, \
       CASE WHEN NOT s.failed THEN NULL \
            WHEN s.st < $11 - interval '2 days' AND s.r_rev < 0.8 THEN s.st + interval '1 day' \
            WHEN s.r_rev > 0.9 THEN least(s.st + interval '1 hour', $11) END, \
       CASE WHEN s.failed AND s.st < $11 - interval '2 days' AND s.r_rev < 0.8 \
            THEN 'Seeded: handled with the tenant' END \
     FROM (SELECT x.*, \
             CASE WHEN x.ti % 25 = 0 THEN x.r_out < 0.85 ELSE x.r_out < 0.12 END AS failed, \
             CASE WHEN x.ti % 25 = 0 THEN $12 ELSE 1 + floor(x.r_cat * $13)::int END AS ki, \
             CASE WHEN x.ti % 25 = 0 THEN 30 ELSE (80 + x.r_lat * 1500)::int END AS lat \
           FROM (SELECT g.i, 1 + floor(power(random(), 1.3) * $16)::int AS ti, \
                   $11 - random() * interval '30 days' AS st, random() AS r_out, random() AS r_cat, \
                   random() AS r_lat, random() AS r_kind, random() AS r_rev \
                 FROM generate_series($14::bigint, $15::bigint) AS g(i)) x) s, \
          (SELECT array_agg(id ORDER BY slug) AS ids FROM tenants WHERE slug LIKE $17 || '%') ten";

/// How much to seed.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Tenants `seed-0001` … (those that exist are kept).
    pub tenants: u32,
    /// Ledger rows to add.
    pub rows: u64,
    /// Rows per INSERT (one transaction each).
    pub batch_size: u32,
}

impl Plan {
    fn tenants(&self) -> Result<i32, SeedError> {
        i32::try_from(self.tenants).map_err(|_| SeedError::TooManyTenants(self.tenants))
    }
}

/// Why seeding stopped.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("cannot seed {0} tenants: too many")]
    TooManyTenants(u32),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    /// The connection as the tables' owner, for [`refresh_statistics`], could not open.
    #[error("database: {0}")]
    Connect(diesel::ConnectionError),
}

/// Creates the seeded tenants that are missing, and connections for each (in one transaction).
pub async fn seed_tenants(conn: &mut AsyncPgConnection, plan: &Plan) -> Result<(), SeedError> {
    let tenants = plan.tenants()?;
    let providers = providers();
    transaction(conn, Scope::System, async |conn| {
        diesel::sql_query(TENANTS_SQL)
            .bind::<Text, _>(SLUG_PREFIX)
            .bind::<Integer, _>(tenants)
            .execute(conn)
            .await?;
        diesel::sql_query(CONNECTIONS_SQL)
            .bind::<Text, _>(SLUG_PREFIX)
            .bind::<Array<Text>, _>(&providers)
            .execute(conn)
            .await
    })
    .await?;
    Ok(())
}

/// Adds `plan.rows` ledger rows over the seeded tenants, one transaction per batch, and reports
/// the rows written so far after each.
pub async fn seed_ledger(
    conn: &mut AsyncPgConnection,
    plan: &Plan,
    mut progress: impl FnMut(u64),
) -> Result<(), SeedError> {
    let tenants = plan.tenants()?;
    let providers = providers();
    let w = weighted();
    let invalid_client = w
        .category
        .iter()
        .position(|c| c == failure::INVALID_CLIENT.category)
        .map_or(1, |i| i + 1);
    let invalid_client = i32::try_from(invalid_client).unwrap_or(1);
    let kinds = i32::try_from(w.category.len()).unwrap_or(1);
    let salt = uuid::Uuid::new_v4().simple().to_string();
    let now: DateTime<Utc> = Utc::now();
    let total = plan.rows;
    let mut done: u64 = 0;
    while done < total {
        let n = (total - done).min(u64::from(plan.batch_size));
        let first = i64::try_from(done + 1).unwrap_or(i64::MAX);
        let last = i64::try_from(done + n).unwrap_or(i64::MAX);
        transaction(conn, Scope::System, async |conn| {
            diesel::sql_query(LEDGER_SQL)
                .bind::<Array<Text>, _>(&w.stage)
                .bind::<Array<Text>, _>(&w.category)
                .bind::<Array<Text>, _>(&w.actor)
                .bind::<Array<Text>, _>(&w.finch_status)
                .bind::<Array<Text>, _>(&w.error_name)
                .bind::<Array<Text>, _>(&w.finch_code)
                .bind::<Array<Text>, _>(&w.message)
                .bind::<Array<Text>, _>(&w.shown)
                .bind::<Text, _>(&salt)
                .bind::<Array<Text>, _>(&providers)
                .bind::<Timestamptz, _>(now)
                .bind::<Integer, _>(invalid_client)
                .bind::<Integer, _>(kinds)
                .bind::<BigInt, _>(first)
                .bind::<BigInt, _>(last)
                .bind::<Integer, _>(tenants)
                .bind::<Text, _>(SLUG_PREFIX)
                .execute(conn)
                .await
        })
        .await?;
        done += n;
        progress(done);
    }
    Ok(())
}

/// Fresh statistics and visibility map, so the planner sees the new sizes at once and index-only
/// scans need no heap visits. Connects as the tables' owner (the pool's role may not vacuum).
pub async fn refresh_statistics(database_url: &SecretString) -> Result<(), SeedError> {
    let mut owner = AsyncPgConnection::establish(database_url.expose_secret())
        .await
        .map_err(SeedError::Connect)?;
    diesel::sql_query("VACUUM (ANALYZE) tenants, connections, exchange_attempts")
        .execute(&mut owner)
        .await?;
    Ok(())
}

fn providers() -> Vec<String> {
    PROVIDERS.iter().map(|p| (*p).to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seeded_category_is_a_real_one() {
        for kind in KINDS {
            assert!(
                failure::by_category(kind.category).is_some(),
                "{}",
                kind.category
            );
        }
        let w = weighted();
        assert_eq!(
            w.category.len(),
            KINDS.iter().map(|k| k.weight).sum::<usize>()
        );
    }
}
