//! Figure 5: key rotation re-wrap rate. 20,000 access tokens sealed under `k1` (10 tenants ×
//! 2,000 connections), then the product's rotation ([`finchgate::keys::rotate::rotate`], as
//! `finchgate keys rotate` runs it: default batch size, pool connection as the application role)
//! moves them to `k2`, back to `k1`, and to `k2` again. The figure is the median of the three
//! runs' `Report::rate()` (re-wrapped rows ÷ the run's wall time, start-up count included).

use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Bytea, Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl as _;
use finchgate::db::{Scope, transaction};
use finchgate::keys::rotate::{DEFAULT_BATCH_SIZE, Outcome, rotate};
use finchgate::vault::{Purpose, RowContext, Vault};
use uuid::Uuid;

use crate::db::BenchDb;
use crate::report::Row;
use crate::stack::random_master_key;
use crate::stats::Samples;

const TENANTS: i64 = 10;
const PER_TENANT: i64 = 2_000;
const ROWS: u64 = (TENANTS * PER_TENANT) as u64;
const TARGET: f64 = 5_000.0;

pub async fn run() -> anyhow::Result<Vec<Row>> {
    let db = BenchDb::create("rotation").await?;
    let result = measure(&db).await;
    db.drop_now().await;
    result
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

fn keyring(keys: &str, active: Option<&str>) -> anyhow::Result<Vault> {
    let keyring =
        finchgate::config::parse_keyring(Some(keys), active).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Vault::new(keyring))
}

async fn measure(db: &BenchDb) -> anyhow::Result<Vec<Row>> {
    let (k1, k2) = (random_master_key("k1"), random_master_key("k2"));
    let only_k1 = keyring(&k1, None)?;
    let both = format!("{k1},{k2}");
    let to_k2 = keyring(&both, Some("k2"))?;
    let to_k1 = keyring(&both, Some("k1"))?;
    let pool = finchgate::db::pool(&finchgate::config::DatabaseSettings {
        url: db.secret_url(),
        max_connections: 2,
    })?;
    let mut conn = pool.get().await?;
    transaction(&mut conn, Scope::System, async |conn| {
        finchgate::keys::register_and_check(conn, &only_k1).await
    })
    .await?;

    // Seeding in bulk, as the superuser (no row-level security in the way).
    let seeding = std::time::Instant::now();
    let mut admin = db.connect().await?;
    for t in 0..TENANTS {
        let tenant: IdRow = diesel::sql_query(
            "INSERT INTO tenants (slug, name, finch_sandbox) VALUES ($1, $1, 'none') RETURNING id",
        )
        .bind::<Text, _>(format!("rot{t}"))
        .get_result(&mut admin)
        .await?;
        let connections: Vec<IdRow> = diesel::sql_query(
            "INSERT INTO connections (tenant_id, finch_connection_id, provider_id)
             SELECT $1, 'conn-' || g, 'gusto' FROM generate_series(1, $2) AS g RETURNING id",
        )
        .bind::<SqlUuid, _>(tenant.id)
        .bind::<BigInt, _>(PER_TENANT)
        .load(&mut admin)
        .await?;
        let mut ids = Vec::with_capacity(connections.len());
        let mut envelopes = Vec::with_capacity(connections.len());
        for c in connections {
            let token = format!("tok-{}", Uuid::new_v4());
            let sealed = only_k1.seal(
                &RowContext::new(Purpose::AccessToken, tenant.id, c.id),
                token.as_bytes(),
            )?;
            ids.push(c.id);
            envelopes.push(sealed.envelope);
        }
        diesel::sql_query(
            "INSERT INTO connection_tokens (tenant_id, connection_id, kek_id, envelope)
             SELECT $1, v.c, 'k1', v.e FROM unnest($2::uuid[], $3::bytea[]) AS v(c, e)",
        )
        .bind::<SqlUuid, _>(tenant.id)
        .bind::<Array<SqlUuid>, _>(ids)
        .bind::<Array<Bytea>, _>(envelopes)
        .execute(&mut admin)
        .await?;
    }
    diesel::sql_query("VACUUM ANALYZE connection_tokens")
        .execute(&mut admin)
        .await?;
    drop(admin);
    eprintln!(
        "  seeded {ROWS} sealed tokens in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );
    transaction(&mut conn, Scope::System, async |conn| {
        finchgate::keys::register_and_check(conn, &to_k2).await
    })
    .await?;

    let mut rates = Vec::new();
    let mut details = Vec::new();
    for (name, vault) in [("k1→k2", &to_k2), ("k2→k1", &to_k1), ("k1→k2", &to_k2)] {
        let report = rotate(&mut conn, vault, DEFAULT_BATCH_SIZE, &mut ()).await?;
        anyhow::ensure!(
            report.outcome == Outcome::Finished
                && report.failures.is_empty()
                && report.rewrapped.total() == ROWS,
            "rotation {name} did not re-wrap every row: {report:?}"
        );
        eprintln!(
            "  {name}: {} rows in {:.2} s = {:.0} rows/s ({} batches)",
            report.rewrapped.total(),
            report.elapsed.as_secs_f64(),
            report.rate(),
            report.batches
        );
        rates.push(report.rate());
        details.push(format!("{name} {:.0}", report.rate()));
    }
    let rates = Samples::new(rates);
    let rate = rates.median();
    Ok(vec![Row {
        figure: "key rotation re-wrap (20,000 sealed rows)".to_owned(),
        value: Some(rate),
        unit: "rows/s".to_owned(),
        baseline: None,
        baseline_is: String::new(),
        ratio: Some(rate / TARGET),
        target: format!("≥ {TARGET:.0} rows/s"),
        meets: Some(rate >= TARGET),
        spread: format!(
            "median of 3 runs ({}), batch size {DEFAULT_BATCH_SIZE}; ratio is against the target",
            details.join(", ")
        ),
    }])
}
