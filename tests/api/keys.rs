//! Master keys: rotation (re-wrap, online, resumable), retirement, the boot check around both
//! (SECURITY.md T22, T23), and the `finchgate keys` commands.

use std::ops::ControlFlow;
use std::process::Command;
use std::sync::Arc;

use diesel::sql_types::{BigInt, Bytea, Text, Uuid as SqlUuid};
use diesel::{ExpressionMethods as _, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use finchgate::config::DatabaseSettings;
use finchgate::db::{Pool, Scope, transaction};
use finchgate::keys::rotate::{self, Observer, Outcome, Progress};
use finchgate::keys::{KeyCheckError, Table};
use finchgate::vault::{KekId, Keyring, Purpose, RowContext, Vault};
use uuid::Uuid;

use crate::helpers::{TestDatabase, random_master_keys};

/// A migrated database, a pool running as the application role, and two master keys.
struct Fixture {
    db: TestDatabase,
    pool: Pool,
    k1: String,
    k2: String,
}

impl Fixture {
    async fn new() -> Self {
        let db = TestDatabase::migrated().await;
        let pool = finchgate::db::pool(&DatabaseSettings {
            url: db.url.clone(),
            max_connections: 4,
        })
        .unwrap();
        Self {
            db,
            pool,
            k1: random_master_keys("k1"),
            k2: random_master_keys("k2"),
        }
    }

    fn vault(&self, spec: &str) -> Vault {
        Vault::new(finchgate::config::parse_keyring(Some(spec), None).unwrap())
    }

    /// k1 alone: where the data is sealed first.
    fn old(&self) -> Vault {
        self.vault(&self.k1)
    }

    /// k1 and k2, k2 active: the configuration during a rotation.
    fn both(&self) -> Vault {
        self.vault(&format!("{},{}", self.k1, self.k2))
    }

    /// k2 alone: after k1 is retired and removed.
    fn new_only(&self) -> Vault {
        self.vault(&self.k2)
    }

    fn url(&self) -> String {
        secrecy::ExposeSecret::expose_secret(&self.db.url).to_owned()
    }

    async fn boot_check(&self, vault: &Vault) -> Result<(), KeyCheckError> {
        let mut conn = self.pool.get().await.unwrap();
        transaction(&mut conn, Scope::System, async |conn| {
            finchgate::keys::register_and_check(conn, vault).await
        })
        .await
    }

    /// `tenants` tenants, each with current Finch credentials and `tokens` connections with a
    /// token, all sealed under `vault`'s active key the way the application stores them.
    async fn seed(&self, vault: &Vault, tenants: usize, tokens: usize) -> Vec<Secret> {
        let mut conn = self.pool.get().await.unwrap();
        let prefix = Uuid::new_v4().simple().to_string();
        transaction(&mut conn, Scope::System, async |conn| {
            let mut secrets = Vec::new();
            for t in 0..tenants {
                let slug = format!("t{}-{t}", &prefix[..8]);
                secrets.extend(seed_tenant(conn, vault, &slug, tokens).await);
            }
            Ok::<_, diesel::result::Error>(secrets)
        })
        .await
        .unwrap()
    }

    /// A two-factor secret for each of `tenants` admins (each in a tenant of their own) and
    /// `operators` operators (no tenant), sealed under `vault`'s active key the way enrolment
    /// stores them.
    async fn seed_totp(&self, vault: &Vault, tenants: usize, operators: usize) -> Vec<Secret> {
        use finchgate::db::models::{keyring, tenants as tenant_rows, two_factor, users};
        let mut conn = self.pool.get().await.unwrap();
        let prefix = Uuid::new_v4().simple().to_string();
        transaction(&mut conn, Scope::System, async |conn| {
            let mut secrets = Vec::new();
            for n in 0..tenants + operators {
                let tenant_id = if n < tenants {
                    let slug = format!("u{}-{n}", &prefix[..8]);
                    let tenant = tenant_rows::insert(
                        conn,
                        &tenant_rows::NewTenant {
                            slug: &slug,
                            name: &slug,
                            finch_sandbox: "none",
                        },
                    )
                    .await?;
                    Some(tenant.id)
                } else {
                    None
                };
                let email = format!("user{n}-{}@example.test", &prefix[..8]);
                let user = users::insert(
                    conn,
                    &users::NewUser {
                        email: &email,
                        password_hash: None,
                        role: if tenant_id.is_some() {
                            "tenant_admin"
                        } else {
                            "operator"
                        },
                        tenant_id,
                    },
                )
                .await?;
                let plaintext = format!("totp-secret-{}", user.id);
                let sealed = vault
                    .seal(
                        &finchgate::auth::two_factor::row_context(user.id, tenant_id),
                        plaintext.as_bytes(),
                    )
                    .unwrap();
                two_factor::put_pending(
                    conn,
                    user.id,
                    tenant_id,
                    sealed.kek_id.as_str(),
                    &sealed.envelope,
                    chrono::Utc::now(),
                )
                .await?;
                keyring::count_wrap(conn, sealed.kek_id.as_str()).await?;
                secrets.push(Secret {
                    table: Table::UserTotp,
                    row_id: user.id,
                    tenant_id: tenant_id.unwrap_or_else(Uuid::nil),
                    bound_id: user.id,
                    plaintext,
                });
            }
            Ok::<_, diesel::result::Error>(secrets)
        })
        .await
        .unwrap()
    }

    /// Every seeded secret opens with `vault`, and its key column matches its envelope.
    /// Returns how many rows are under `kek_id` in each table.
    async fn assert_all_open(&self, vault: &Vault, secrets: &[Secret]) {
        let mut conn = self.db.connect().await;
        for secret in secrets {
            let row = stored(&mut conn, secret).await;
            let opened = vault
                .open_string(
                    &RowContext::new(secret.purpose(), secret.tenant_id, secret.bound_id),
                    &row.envelope,
                )
                .unwrap_or_else(|e| {
                    panic!("{} row {} does not open: {e}", secret.table, secret.row_id)
                });
            assert_eq!(
                secrecy::ExposeSecret::expose_secret(&opened),
                secret.plaintext
            );
            assert_eq!(
                Vault::envelope_kek_id(&row.envelope).unwrap().as_str(),
                row.kek_id,
                "the key column names the envelope's key"
            );
        }
    }

    /// Rows per key across both tables.
    async fn rows_under(&self, kek_id: &str) -> u64 {
        let mut conn = self.db.connect().await;
        finchgate::keys::usage_by_table(&mut conn)
            .await
            .unwrap()
            .into_iter()
            .find(|u| u.kek_id == kek_id)
            .map_or(0, |u| u.rows.total())
    }

    async fn wrap_count(&self, kek_id: &str) -> i64 {
        let mut conn = self.db.connect().await;
        let row: CountRow = diesel::sql_query(
            "SELECT coalesce(sum(wrap_count), 0)::bigint AS n FROM keyring_wraps WHERE kek_id = $1",
        )
        .bind::<Text, _>(kek_id)
        .get_result(&mut conn)
        .await
        .unwrap();
        row.n
    }

    async fn rotate(
        &self,
        vault: &Vault,
        batch_size: u32,
        observer: &mut (impl Observer + ?Sized),
    ) -> rotate::Report {
        let mut conn = self.pool.get().await.unwrap();
        rotate::rotate(&mut conn, vault, batch_size, observer)
            .await
            .unwrap()
    }

    async fn retire(
        &self,
        vault: &Vault,
        id: &str,
    ) -> Result<finchgate::keys::retire::Retired, finchgate::keys::retire::RetireError> {
        let mut conn = self.pool.get().await.unwrap();
        finchgate::keys::retire::retire(&mut conn, vault, &KekId::parse(id).unwrap()).await
    }

    async fn sql(&self, sql: &str) {
        let mut conn = self.db.connect().await;
        diesel::sql_query(sql).execute(&mut conn).await.unwrap();
    }

    /// Runs `finchgate keys …` against this database.
    fn finchgate(&self, args: &[&str], master_keys: &str) -> Output {
        run(
            args,
            &[
                ("DATABASE_URL", self.url().as_str()),
                ("FINCHGATE_MASTER_KEYS", master_keys),
            ],
        )
    }
}

/// A secret the test stored, and where.
#[derive(Debug, Clone)]
struct Secret {
    table: Table,
    row_id: Uuid,
    tenant_id: Uuid,
    /// The id the envelope's AAD binds: the credentials row, the token's connection, or the
    /// TOTP secret's user (also its row id).
    bound_id: Uuid,
    plaintext: String,
}

impl Secret {
    fn purpose(&self) -> Purpose {
        match self.table {
            Table::FinchCredentials => Purpose::FinchClientSecret,
            Table::ConnectionTokens => Purpose::AccessToken,
            Table::UserTotp => Purpose::TotpSecret,
        }
    }
}

async fn seed_tenant(
    conn: &mut AsyncPgConnection,
    vault: &Vault,
    slug: &str,
    tokens: usize,
) -> Vec<Secret> {
    use finchgate::db::models::{credentials, keyring, tenants};
    use finchgate::db::schema::{connection_tokens, connections};
    let tenant = tenants::insert(
        conn,
        &tenants::NewTenant {
            slug,
            name: slug,
            finch_sandbox: "none",
        },
    )
    .await
    .unwrap();
    let mut secrets = Vec::new();
    let row_id = Uuid::new_v4();
    let plaintext = format!("client-secret-{row_id}");
    let sealed = vault
        .seal(
            &RowContext::new(Purpose::FinchClientSecret, tenant.id, row_id),
            plaintext.as_bytes(),
        )
        .unwrap();
    credentials::replace(
        conn,
        &credentials::NewCredentials {
            id: row_id,
            tenant_id: tenant.id,
            client_id: "client",
            secret_kek_id: sealed.kek_id.as_str(),
            secret_envelope: &sealed.envelope,
            secret_last4: "abcd",
            created_by: None,
        },
    )
    .await
    .unwrap();
    keyring::count_wrap(conn, sealed.kek_id.as_str())
        .await
        .unwrap();
    secrets.push(Secret {
        table: Table::FinchCredentials,
        row_id,
        tenant_id: tenant.id,
        bound_id: row_id,
        plaintext,
    });
    for n in 0..tokens {
        let connection_id = Uuid::new_v4();
        diesel::insert_into(connections::table)
            .values((
                connections::id.eq(connection_id),
                connections::tenant_id.eq(tenant.id),
                connections::finch_connection_id.eq(format!("conn-{n}-{connection_id}")),
                connections::provider_id.eq("gusto"),
            ))
            .execute(conn)
            .await
            .unwrap();
        let plaintext = format!("access-token-{connection_id}");
        let sealed = vault
            .seal(
                &RowContext::new(Purpose::AccessToken, tenant.id, connection_id),
                plaintext.as_bytes(),
            )
            .unwrap();
        let token_id: Uuid = diesel::insert_into(connection_tokens::table)
            .values((
                connection_tokens::tenant_id.eq(tenant.id),
                connection_tokens::connection_id.eq(connection_id),
                connection_tokens::kek_id.eq(sealed.kek_id.as_str()),
                connection_tokens::envelope.eq(&sealed.envelope),
            ))
            .returning(connection_tokens::id)
            .get_result(conn)
            .await
            .unwrap();
        keyring::count_wrap(conn, sealed.kek_id.as_str())
            .await
            .unwrap();
        secrets.push(Secret {
            table: Table::ConnectionTokens,
            row_id: token_id,
            tenant_id: tenant.id,
            bound_id: connection_id,
            plaintext,
        });
    }
    secrets
}

#[derive(QueryableByName)]
struct StoredRow {
    #[diesel(sql_type = Text)]
    kek_id: String,
    #[diesel(sql_type = Bytea)]
    envelope: Vec<u8>,
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn stored(conn: &mut AsyncPgConnection, secret: &Secret) -> StoredRow {
    let sql = match secret.table {
        Table::FinchCredentials => {
            "SELECT secret_kek_id AS kek_id, secret_envelope AS envelope FROM finch_credentials WHERE id = $1"
        }
        Table::ConnectionTokens => "SELECT kek_id, envelope FROM connection_tokens WHERE id = $1",
        Table::UserTotp => {
            "SELECT secret_kek_id AS kek_id, secret_envelope AS envelope FROM user_totp WHERE user_id = $1"
        }
    };
    diesel::sql_query(sql)
        .bind::<SqlUuid, _>(secret.row_id)
        .get_result(conn)
        .await
        .unwrap()
}

/// Flips the last byte (inside the value's GCM tag) of a stored envelope.
async fn corrupt(fixture: &Fixture, secret: &Secret) {
    let (table, column, id) = match secret.table {
        Table::FinchCredentials => ("finch_credentials", "secret_envelope", "id"),
        Table::ConnectionTokens => ("connection_tokens", "envelope", "id"),
        Table::UserTotp => ("user_totp", "secret_envelope", "user_id"),
    };
    fixture
        .sql(&format!(
            "UPDATE {table} SET {column} = set_byte({column}, length({column}) - 1,
                    get_byte({column}, length({column}) - 1) # 1)
              WHERE {id} = '{}'",
            secret.row_id
        ))
        .await;
}

/// Rolls back batch `crash_at` before it commits, as a crash there would.
struct CrashBefore {
    crash_at: u64,
}

impl Observer for CrashBefore {
    fn before_commit(&mut self, batch: u64) -> ControlFlow<()> {
        if batch == self.crash_at {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

/// Stops after `batches` committed batches.
struct StopAfter {
    batches: u64,
}

impl Observer for StopAfter {
    fn committed(&mut self, progress: &Progress) -> ControlFlow<()> {
        if progress.batches >= self.batches {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

#[tokio::test]
async fn rotation_survives_a_crash_mid_way_and_resumes_until_no_row_uses_the_old_key() {
    let f = Fixture::new().await;
    let old = f.old();
    f.boot_check(&old).await.unwrap();
    let secrets = f.seed(&old, 3, 4).await;
    assert_eq!(secrets.len(), 15);
    let both = f.both();
    f.boot_check(&both).await.unwrap();

    // Batch 1 (the 3 credentials and the first token) commits; batch 2 is written, then
    // "crashes" before its commit.
    let report = f.rotate(&both, 4, &mut CrashBefore { crash_at: 2 }).await;
    assert_eq!(report.outcome, Outcome::Stopped);
    assert_eq!(report.rewrapped.total(), 4);
    f.assert_all_open(&both, &secrets).await;
    assert_eq!(
        (f.rows_under("k1").await, f.rows_under("k2").await),
        (11, 4)
    );

    // A stop right after a commit (what `--max-batches` does) loses nothing either. The new
    // run walks the tables from the start: its first batch finds those rows done.
    let report = f.rotate(&both, 4, &mut StopAfter { batches: 2 }).await;
    assert_eq!(
        (report.outcome, report.rewrapped.total()),
        (Outcome::Stopped, 4)
    );
    f.assert_all_open(&both, &secrets).await;
    assert_eq!((f.rows_under("k1").await, f.rows_under("k2").await), (7, 8));

    // Resume: the rest moves, every row still opens, and each was wrapped once.
    let report = f.rotate(&both, 4, &mut ()).await;
    assert_eq!(report.outcome, Outcome::Finished);
    assert_eq!(report.rewrapped.total(), 7);
    assert!(report.failures.is_empty());
    assert_eq!(f.rows_under("k1").await, 0);
    assert_eq!(f.rows_under("k2").await, 15);
    f.assert_all_open(&both, &secrets).await;
    assert_eq!(f.wrap_count("k2").await, 15);
    assert_eq!(f.wrap_count("k1").await, 15, "the seeding wraps, untouched");

    // A run with nothing to do is harmless.
    let report = f.rotate(&both, 4, &mut ()).await;
    assert_eq!(
        (report.outcome, report.rewrapped.total()),
        (Outcome::Finished, 0)
    );

    // k1 can go: retired, then removed from the configuration; k2 alone opens everything.
    assert!(matches!(
        f.retire(&both, "k1").await.unwrap(),
        finchgate::keys::retire::Retired::Now(_)
    ));
    assert!(matches!(
        f.retire(&both, "k1").await.unwrap(),
        finchgate::keys::retire::Retired::Already(_)
    ));
    let new_only = f.new_only();
    f.boot_check(&new_only).await.unwrap();
    f.assert_all_open(&new_only, &secrets).await;
}

#[tokio::test]
async fn a_key_cannot_be_retired_while_rows_use_it_nor_while_it_is_active() {
    use finchgate::keys::retire::RetireError;
    let f = Fixture::new().await;
    let old = f.old();
    f.boot_check(&old).await.unwrap();
    f.seed(&old, 2, 3).await;
    let both = f.both();
    f.boot_check(&both).await.unwrap();

    let in_use = f.retire(&both, "k1").await.unwrap_err();
    assert!(
        matches!(&in_use, RetireError::InUse { rows, .. } if rows.finch_credentials == 2 && rows.connection_tokens == 6)
    );
    assert_eq!(
        in_use.to_string(),
        "refusing to retire key \"k1\": 2 finch_credentials row(s), 6 connection_tokens row(s) and 0 user_totp row(s) still use it; run `finchgate keys rotate` first"
    );
    assert!(matches!(
        f.retire(&both, "k2").await.unwrap_err(),
        RetireError::Active(_)
    ));
    assert!(matches!(
        f.retire(&both, "k9").await.unwrap_err(),
        RetireError::Unknown(_)
    ));
    let mut conn = f.db.connect().await;
    let retired: CountRow =
        diesel::sql_query("SELECT count(*) AS n FROM keyring WHERE retired_at IS NOT NULL")
            .get_result(&mut conn)
            .await
            .unwrap();
    assert_eq!(retired.n, 0, "a refusal changes nothing");
}

#[tokio::test]
async fn the_boot_check_refuses_a_retired_key_that_still_wraps_data_until_rotation_moves_it() {
    let f = Fixture::new().await;
    let old = f.old();
    f.boot_check(&old).await.unwrap();
    let secrets = f.seed(&old, 1, 2).await;
    let both = f.both();
    f.boot_check(&both).await.unwrap();
    // What a partial restore (rows from before the rotation, keyring from after) looks like.
    f.sql("UPDATE keyring SET retired_at = now() WHERE kek_id = 'k1'")
        .await;

    let refused = f.boot_check(&both).await.unwrap_err();
    assert!(
        matches!(&refused, KeyCheckError::RetiredInUse { id, rows: 3 } if id == "k1"),
        "{refused:?}"
    );
    assert!(refused.to_string().contains("keys rotate"), "{refused}");
    // Without k1 configured it is missing, which is refused as before.
    assert!(matches!(
        f.boot_check(&f.new_only()).await.unwrap_err(),
        KeyCheckError::Missing { rows: 3, .. }
    ));
    // Rotation tolerates it, and moves the rows off it.
    let mut conn = f.pool.get().await.unwrap();
    let check = transaction(&mut conn, Scope::System, async |conn| {
        finchgate::keys::register_and_verify(conn, &both).await
    })
    .await
    .unwrap();
    assert_eq!(check.retired_in_use, vec![("k1".to_owned(), 3)]);
    drop(conn);
    let report = f.rotate(&both, 500, &mut ()).await;
    assert_eq!(report.rewrapped.total(), 3);
    f.boot_check(&both).await.unwrap();
    f.boot_check(&f.new_only()).await.unwrap();
    f.assert_all_open(&f.new_only(), &secrets).await;
}

#[tokio::test]
async fn the_boot_check_refuses_a_retired_active_key() {
    let f = Fixture::new().await;
    let old = f.old();
    f.boot_check(&old).await.unwrap();
    f.sql("UPDATE keyring SET retired_at = now() WHERE kek_id = 'k1'")
        .await;
    let refused = f.boot_check(&old).await.unwrap_err();
    assert!(matches!(refused, KeyCheckError::RetiredActive(ref id) if id == "k1"));
}

#[tokio::test]
async fn nothing_new_can_be_wrapped_under_a_retired_key() {
    let f = Fixture::new().await;
    let both = f.both();
    f.boot_check(&both).await.unwrap();
    assert!(f.retire(&both, "k1").await.is_ok());
    // An instance started before the retirement, still configured with k1 active, tries to
    // store a secret: the wrap count refuses, and the transaction rolls back.
    let mut conn = f.pool.get().await.unwrap();
    let refused = transaction(&mut conn, Scope::System, async |conn| {
        finchgate::db::models::keyring::count_wrap(conn, "k1").await
    })
    .await
    .unwrap_err();
    assert!(refused.to_string().contains("retired"), "{refused}");
}

/// The guard does not depend on the order of a sealing transaction's statements: one that has
/// counted its wrap under k1 but not yet written its rows holds the retirement back until it
/// commits, and the retirement then counts those rows and refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retirement_waits_for_a_sealing_transaction_in_flight_and_counts_its_rows() {
    use finchgate::keys::retire::RetireError;
    let f = Arc::new(Fixture::new().await);
    let old = f.old();
    f.boot_check(&old).await.unwrap();
    f.boot_check(&f.both()).await.unwrap();

    let (counted_tx, counted_rx) = tokio::sync::oneshot::channel::<()>();
    let (go_on_tx, go_on_rx) = tokio::sync::oneshot::channel::<()>();
    let sealer = {
        let f = Arc::clone(&f);
        tokio::spawn(async move {
            let mut conn = f.pool.get().await.unwrap();
            let old = f.old();
            transaction(&mut conn, Scope::System, async |conn| {
                finchgate::db::models::keyring::count_wrap(conn, "k1").await?;
                counted_tx.send(()).unwrap();
                go_on_rx.await.unwrap();
                Ok::<_, diesel::result::Error>(seed_tenant(conn, &old, "racing", 2).await)
            })
            .await
            .unwrap()
        })
    };
    counted_rx.await.unwrap();
    let retirer = {
        let f = Arc::clone(&f);
        tokio::spawn(async move { f.retire(&f.both(), "k1").await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert!(
        !retirer.is_finished(),
        "the retirement must wait for the sealing transaction"
    );
    go_on_tx.send(()).unwrap();
    assert_eq!(sealer.await.unwrap().len(), 3);
    let refused = retirer.await.unwrap().unwrap_err();
    assert!(
        matches!(&refused, RetireError::InUse { rows, .. } if rows.finch_credentials == 1 && rows.connection_tokens == 2),
        "{refused:?}"
    );
    assert_eq!(
        f.wrap_count("k1").await,
        4,
        "1 counted up front + 3 by the seeding"
    );
}

/// Many sealing transactions at once all count, spread over the shards, and the sum is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_wraps_are_all_counted_across_the_shards() {
    let f = Arc::new(Fixture::new().await);
    f.boot_check(&f.old()).await.unwrap();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let f = Arc::clone(&f);
            tokio::spawn(async move {
                let mut conn = f.pool.get().await.unwrap();
                for _ in 0..50 {
                    transaction(&mut conn, Scope::System, async |conn| {
                        finchgate::db::models::keyring::count_wrap(conn, "k1").await
                    })
                    .await
                    .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(f.wrap_count("k1").await, 200);
    let mut conn = f.db.connect().await;
    let shards: CountRow =
        diesel::sql_query("SELECT count(*) AS n FROM keyring_wraps WHERE kek_id = 'k1'")
            .get_result(&mut conn)
            .await
            .unwrap();
    assert!(
        (2..=63).contains(&shards.n),
        "200 wraps land on many of the 63 sealing shards, not one: {}",
        shards.n
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_rotators_running_at_once_re_wrap_every_row_exactly_once() {
    let f = Fixture::new().await;
    let old = f.old();
    f.boot_check(&old).await.unwrap();
    let secrets = f.seed(&old, 6, 9).await;
    assert_eq!(secrets.len(), 60);
    let both = Arc::new(f.both());
    f.boot_check(&both).await.unwrap();

    let start = Arc::new(tokio::sync::Barrier::new(2));
    let rotator = |pool: Pool, vault: Arc<Vault>, start: Arc<tokio::sync::Barrier>| {
        tokio::spawn(async move {
            let mut conn = pool.get().await.unwrap();
            start.wait().await;
            rotate::rotate(&mut conn, &vault, 3, &mut ()).await.unwrap()
        })
    };
    let a = rotator(f.pool.clone(), both.clone(), start.clone());
    let b = rotator(f.pool.clone(), both.clone(), start);
    let (a, b) = (a.await.unwrap(), b.await.unwrap());

    assert_eq!(
        (a.outcome, b.outcome),
        (Outcome::Finished, Outcome::Finished)
    );
    assert_eq!(a.rewrapped.total() + b.rewrapped.total(), 60);
    assert_eq!(f.wrap_count("k2").await, 60, "one wrap per row, no more");
    assert_eq!(f.rows_under("k1").await, 0);
    f.assert_all_open(&both, &secrets).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_skips_a_row_another_transaction_holds_and_takes_it_once_released() {
    let f = Fixture::new().await;
    let old = f.old();
    f.boot_check(&old).await.unwrap();
    let secrets = f.seed(&old, 2, 5).await;
    let both = Arc::new(f.both());
    f.boot_check(&both).await.unwrap();
    let held = secrets
        .iter()
        .find(|s| s.table == Table::ConnectionTokens)
        .unwrap()
        .row_id;

    // A request (say, a reconnect replacing the token) holds the row.
    let mut request = f.db.connect().await;
    diesel::sql_query("BEGIN")
        .execute(&mut request)
        .await
        .unwrap();
    diesel::sql_query("SELECT 1 FROM connection_tokens WHERE id = $1 FOR UPDATE")
        .bind::<SqlUuid, _>(held)
        .execute(&mut request)
        .await
        .unwrap();
    let rotation = tokio::spawn({
        let (pool, vault) = (f.pool.clone(), both.clone());
        async move {
            let mut conn = pool.get().await.unwrap();
            rotate::rotate(&mut conn, &vault, 3, &mut ()).await.unwrap()
        }
    });
    // Everything else moves meanwhile: the rotation does not wait for the held row.
    let mut others_moved = false;
    for _ in 0..100 {
        if f.rows_under("k1").await == 1 {
            others_moved = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        others_moved,
        "all but the held row are re-wrapped while it is held"
    );
    assert!(
        !rotation.is_finished(),
        "the rotation waits for the held row"
    );
    diesel::sql_query("COMMIT")
        .execute(&mut request)
        .await
        .unwrap();

    let report = rotation.await.unwrap();
    assert_eq!(report.outcome, Outcome::Finished);
    assert_eq!(report.rewrapped.total(), 12);
    assert_eq!(f.rows_under("k1").await, 0);
    assert_eq!(f.wrap_count("k2").await, 12);
    f.assert_all_open(&both, &secrets).await;
}

#[tokio::test]
async fn a_row_that_fails_to_open_is_reported_skipped_and_keeps_its_key_in_use() {
    let f = Fixture::new().await;
    let old = f.old();
    f.boot_check(&old).await.unwrap();
    let secrets = f.seed(&old, 2, 3).await;
    let bad = secrets
        .iter()
        .find(|s| s.table == Table::ConnectionTokens)
        .unwrap()
        .clone();
    corrupt(&f, &bad).await;
    let both = f.both();
    f.boot_check(&both).await.unwrap();

    let report = f.rotate(&both, 2, &mut ()).await;
    assert_eq!(report.outcome, Outcome::Finished);
    assert_eq!(report.rewrapped.total(), 7);
    assert_eq!(report.failures.len(), 1);
    assert_eq!(
        (report.failures[0].table, report.failures[0].row_id),
        (Table::ConnectionTokens, bad.row_id)
    );
    assert_eq!(f.rows_under("k1").await, 1);
    let good: Vec<Secret> = secrets
        .into_iter()
        .filter(|s| s.row_id != bad.row_id)
        .collect();
    f.assert_all_open(&both, &good).await;
    assert!(f.retire(&both, "k1").await.is_err());
}

/// Two-factor secrets move with the rest, in the same batches, and open afterwards with the
/// identity they were sealed with: the user, and their tenant (or none, for an operator). A
/// secret copied onto another user's row does not open: it is reported and stays under k1.
#[tokio::test]
async fn rotation_re_wraps_two_factor_secrets_bound_to_their_user_and_tenant() {
    let f = Fixture::new().await;
    let old = f.old();
    f.boot_check(&old).await.unwrap();
    let mut secrets = f.seed(&old, 2, 2).await;
    let totp = f.seed_totp(&old, 3, 2).await;
    secrets.extend(totp.iter().cloned());
    assert_eq!(secrets.len(), 11);
    let both = f.both();
    f.boot_check(&both).await.unwrap();
    {
        let mut conn = f.db.connect().await;
        let usage = finchgate::keys::usage_by_table(&mut conn).await.unwrap();
        let k1 = usage.iter().find(|u| u.kek_id == "k1").unwrap();
        assert_eq!(
            (
                k1.rows.finch_credentials,
                k1.rows.connection_tokens,
                k1.rows.user_totp
            ),
            (2, 4, 5)
        );
    }

    // A crash mid-way first: nothing is lost, the resumed run finishes.
    let report = f.rotate(&both, 3, &mut CrashBefore { crash_at: 3 }).await;
    assert_eq!(report.outcome, Outcome::Stopped);
    f.assert_all_open(&both, &secrets).await;
    let report = f.rotate(&both, 3, &mut ()).await;
    assert_eq!(report.outcome, Outcome::Finished);
    assert!(report.failures.is_empty());
    assert_eq!(f.rows_under("k1").await, 0);
    assert_eq!(f.rows_under("k2").await, 11);
    f.assert_all_open(&both, &secrets).await;
    assert_eq!(f.wrap_count("k2").await, 11, "each row wrapped once");
    assert!(f.retire(&both, "k1").await.is_ok());
    f.assert_all_open(&f.new_only(), &secrets).await;

    // Under a fresh key k3, an operator's envelope copied onto another operator's row.
    let k3 = random_master_keys("k3");
    let three = f.vault(&format!("{},{k3}", f.k2));
    f.boot_check(&three).await.unwrap();
    let (a, b) = (&totp[3], &totp[4]);
    f.sql(&format!(
        "UPDATE user_totp SET secret_envelope = (SELECT secret_envelope FROM user_totp
                 WHERE user_id = '{}')
          WHERE user_id = '{}'",
        a.row_id, b.row_id
    ))
    .await;
    let report = f.rotate(&three, 4, &mut ()).await;
    assert_eq!(report.outcome, Outcome::Finished);
    assert_eq!(report.rewrapped.user_totp, 4);
    assert_eq!(report.failures.len(), 1);
    assert_eq!(
        (report.failures[0].table, report.failures[0].row_id),
        (Table::UserTotp, b.row_id)
    );
    assert_eq!(f.rows_under("k2").await, 1);
    assert!(f.retire(&three, "k2").await.is_err());
}

// ---- the command line ----

pub(crate) struct Output {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: Vec<String>,
}

/// Runs the `finchgate` binary with `args` and only the environment `env` (and `RUST_LOG=warn`).
pub(crate) fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_finchgate"))
        .args(args)
        .env_clear()
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .expect("run the finchgate binary");
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect(),
    }
}

#[test]
fn keys_generate_prints_a_key_the_keyring_accepts_and_says_how_to_install_it() {
    let out = run(&["keys", "generate", "--id", "k2027"], &[]);
    assert_eq!(out.code, 0, "{:?}", out.stderr);
    let line = out.stdout.trim();
    assert_eq!(out.stdout.lines().count(), 1);
    assert!(line.starts_with("k2027:"), "{line}");
    let ring = Keyring::parse(line, None).unwrap();
    assert_eq!(
        finchgate::vault::KeyProvider::active_id(&ring).as_str(),
        "k2027"
    );
    assert_eq!(out.stderr.len(), 1, "{:?}", out.stderr);
    assert!(out.stderr[0].contains("FINCHGATE_MASTER_KEYS"));
    assert!(out.stderr[0].contains("last listed key becomes active"));

    let default = run(&["keys", "generate"], &[]);
    let id = default.stdout.split(':').next().unwrap();
    let today = chrono::Utc::now().format("k%Y%m%d").to_string();
    assert_eq!(id, today);
    assert_ne!(default.stdout, out.stdout);

    let bad = run(&["keys", "generate", "--id", "not/valid"], &[]);
    assert_eq!(bad.code, 2);
    assert_eq!(bad.stderr.len(), 1, "{:?}", bad.stderr);
    assert!(bad.stderr[0].contains("--id"), "{:?}", bad.stderr);
    assert!(bad.stdout.is_empty());
}

/// The `keys status` line of `kek_id`, split into its columns.
pub(crate) fn status_line(stdout: &str, kek_id: &str) -> Vec<String> {
    let line = stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(kek_id))
        .unwrap_or_else(|| panic!("no line for {kek_id} in\n{stdout}"));
    // "2026-11-28 16:48 UTC" is three words; fold dates back into one column.
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut columns = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if words.get(i + 2) == Some(&"UTC") {
            columns.push(words[i..i + 3].join(" "));
            i += 3;
        } else {
            columns.push(words[i].to_owned());
            i += 1;
        }
    }
    columns
}

#[tokio::test]
async fn keys_status_shows_each_key_with_its_use_and_warns_past_2_to_the_31_wraps() {
    let f = Fixture::new().await;
    let old = f.old();
    f.boot_check(&old).await.unwrap();
    f.seed(&old, 2, 2).await;
    let both = format!("{},{}", f.k1, f.k2);

    let out = f.finchgate(&["keys", "status"], &both);
    assert_eq!(out.code, 0, "{:?}", out.stderr);
    let header: Vec<&str> = out
        .stdout
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "key",
            "configured",
            "active",
            "created",
            "retired",
            "wrap_count",
            "finch_credentials",
            "connection_tokens",
            "user_totp"
        ]
    );
    let k1 = status_line(&out.stdout, "k1");
    assert_eq!((k1[1].as_str(), k1[2].as_str()), ("yes", "no"));
    assert_eq!(&k1[4..], ["-", "6", "2", "4", "0"]);
    let k2 = status_line(&out.stdout, "k2");
    assert_eq!((k2[1].as_str(), k2[2].as_str()), ("yes", "yes"));
    assert_eq!(&k2[4..], ["-", "0", "0", "0", "0"]);
    assert!(
        out.stdout
            .contains("6 stored secret(s) are under keys other than the active key \"k2\"")
    );
    assert!(out.stderr.is_empty(), "{:?}", out.stderr);

    // `keys status` registers nothing (issue 13, defect 10): k2 is recorded by a boot check.
    f.boot_check(&f.both()).await.unwrap();
    // Spread over two shards, as concurrent sealing leaves it: `keys status` sums them.
    f.sql("INSERT INTO keyring_wraps VALUES ('k2', 5, 2147483000), ('k2', 6, 649)")
        .await;
    let out = f.finchgate(&["keys", "status"], &both);
    assert_eq!(out.code, 0);
    assert_eq!(out.stderr.len(), 1, "{:?}", out.stderr);
    assert!(
        out.stderr[0].contains("\"k2\" has wrapped 2147483649"),
        "{:?}",
        out.stderr
    );
    assert!(out.stderr[0].contains("rotate now"), "{:?}", out.stderr);
}

#[tokio::test]
async fn keys_rotate_dry_runs_stops_when_asked_and_then_finishes_with_exit_zero() {
    let f = Fixture::new().await;
    let old = f.old();
    f.boot_check(&old).await.unwrap();
    let secrets = f.seed(&old, 2, 4).await;
    let both = format!("{},{}", f.k1, f.k2);

    let dry = f.finchgate(&["keys", "rotate", "--dry-run"], &both);
    assert_eq!(dry.code, 0, "{:?}", dry.stderr);
    assert!(
        dry.stdout.contains(
            "10 row(s) would be re-wrapped to key \"k2\": 2 finch_credentials, 8 connection_tokens"
        ),
        "{}",
        dry.stdout
    );
    assert_eq!(f.rows_under("k1").await, 10, "a dry run changes nothing");

    let stopped = f.finchgate(
        &["keys", "rotate", "--batch-size", "3", "--max-batches", "1"],
        &both,
    );
    assert_eq!(stopped.code, 0, "{:?}", stopped.stderr);
    assert!(
        stopped.stdout.contains("Re-wrapped 3 row(s)"),
        "{}",
        stopped.stdout
    );
    assert!(
        stopped.stdout.contains("Stopped after 1 batch(es)"),
        "{}",
        stopped.stdout
    );
    assert_eq!(f.rows_under("k1").await, 7);

    let done = f.finchgate(&["keys", "rotate", "--batch-size", "3"], &both);
    assert_eq!(done.code, 0, "{:?}", done.stderr);
    assert!(
        done.stdout.contains("Re-wrapped 7 row(s) to key \"k2\""),
        "{}",
        done.stdout
    );
    assert!(done.stdout.contains("rows/s"), "{}", done.stdout);
    assert!(
        done.stdout.contains("Key \"k1\" wraps nothing: retire it"),
        "{}",
        done.stdout
    );
    assert_eq!(f.rows_under("k1").await, 0);
    f.assert_all_open(&f.both(), &secrets).await;

    let mut conn = f.db.connect().await;
    let events: CountRow = diesel::sql_query(
        "SELECT count(*) AS n FROM audit_events
          WHERE action = 'keys.rotated' AND actor_kind = 'cli' AND target_id = 'k2'",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!(events.n, 2, "one event per run that re-wrapped something");
    let total: CountRow = diesel::sql_query(
        "SELECT sum((details->'rewrapped'->>'finch_credentials')::bigint
                  + (details->'rewrapped'->>'connection_tokens')::bigint)::bigint AS n
           FROM audit_events WHERE action = 'keys.rotated'",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!(total.n, 10);
}

#[tokio::test]
async fn keys_rotate_exits_non_zero_and_names_each_row_that_fails_to_open_without_its_bytes() {
    let f = Fixture::new().await;
    let old = f.old();
    f.boot_check(&old).await.unwrap();
    let secrets = f.seed(&old, 2, 1).await;
    let bad = secrets
        .iter()
        .find(|s| s.table == Table::FinchCredentials)
        .unwrap()
        .clone();
    corrupt(&f, &bad).await;
    let envelope = stored(&mut f.db.connect().await, &bad).await.envelope;
    let both = format!("{},{}", f.k1, f.k2);

    let out = f.finchgate(&["keys", "rotate"], &both);
    assert_eq!(out.code, 1, "{:?}", out.stderr);
    let named: Vec<&String> = out
        .stderr
        .iter()
        .filter(|l| l.contains(&bad.row_id.to_string()))
        .collect();
    assert_eq!(named.len(), 1, "{:?}", out.stderr);
    assert!(named[0].contains("finch_credentials"), "{}", named[0]);
    assert!(named[0].contains("integrity check failed"), "{}", named[0]);
    let last = out.stderr.last().unwrap();
    assert!(
        last.contains("1 row(s) could not be re-wrapped"),
        "the last line has the count: {last}"
    );
    let hex: String = envelope.iter().map(|b| format!("{b:02x}")).collect();
    let all = out.stderr.join("\n") + &out.stdout;
    assert!(
        !all.contains(&hex[hex.len() - 32..]),
        "no ciphertext in the output"
    );
    assert!(out.stdout.contains("Re-wrapped 3 row(s)"), "{}", out.stdout);
}

#[tokio::test]
async fn keys_retire_refuses_in_one_line_naming_the_counts_then_retires_once_rotated() {
    let f = Fixture::new().await;
    let old = f.old();
    f.boot_check(&old).await.unwrap();
    f.seed(&old, 1, 3).await;
    let both = format!("{},{}", f.k1, f.k2);

    let refused = f.finchgate(&["keys", "retire", "k1"], &both);
    assert_eq!(refused.code, 2);
    assert_eq!(refused.stderr.len(), 1, "{:?}", refused.stderr);
    assert_eq!(
        refused.stderr[0],
        "finchgate: refusing to retire key \"k1\": 1 finch_credentials row(s), 3 connection_tokens row(s) and 0 user_totp row(s) still use it; run `finchgate keys rotate` first"
    );
    let active = f.finchgate(&["keys", "retire", "k2"], &both);
    assert_eq!(active.code, 2);
    assert_eq!(active.stderr.len(), 1, "{:?}", active.stderr);
    assert!(
        active.stderr[0].contains("it is the active key"),
        "{:?}",
        active.stderr
    );

    assert_eq!(f.finchgate(&["keys", "rotate"], &both).code, 0);
    let retired = f.finchgate(&["keys", "retire", "k1"], &both);
    assert_eq!(retired.code, 0, "{:?}", retired.stderr);
    assert!(
        retired
            .stdout
            .contains("may now be removed from FINCHGATE_MASTER_KEYS")
    );

    // With k1 gone from the configuration the key check (which `status` runs) passes.
    let status = f.finchgate(&["keys", "status"], &f.k2);
    assert_eq!(status.code, 0, "{:?}", status.stderr);
    let k1 = status_line(&status.stdout, "k1");
    assert_eq!((k1[1].as_str(), k1[2].as_str()), ("no", "no"));
    assert!(k1[4].ends_with("UTC"), "retired: {k1:?}");

    let mut conn = f.db.connect().await;
    let events: CountRow = diesel::sql_query(
        "SELECT count(*) AS n FROM audit_events
          WHERE action = 'keys.retired' AND actor_kind = 'cli' AND target_id = 'k1'",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!(events.n, 1);
}

#[tokio::test]
async fn serve_refuses_to_start_while_a_retired_key_still_wraps_data() {
    let f = Fixture::new().await;
    let old = f.old();
    f.boot_check(&old).await.unwrap();
    f.seed(&old, 1, 1).await;
    f.boot_check(&f.both()).await.unwrap();
    f.sql("UPDATE keyring SET retired_at = now() WHERE kek_id = 'k1'")
        .await;
    let both = format!("{},{}", f.k1, f.k2);
    let out = run(
        &["serve", "--bind", "127.0.0.1:0"],
        &[
            ("DATABASE_URL", f.url().as_str()),
            ("FINCHGATE_MASTER_KEYS", both.as_str()),
            (
                "FINCHGATE_SESSION_SECRET",
                "c2Vzc2lvbi1zZWNyZXQtZm9yLXRlc3RzLW9ubHktNjQtYnl0ZXMtbG9uZy0xMjM0NTY3ODkwMTIzNDU2Nzg5MDEyMzQ1Njc4OTA=",
            ),
        ],
    );
    assert_eq!(out.code, 2, "{:?}", out.stderr);
    assert_eq!(out.stderr.len(), 1, "{:?}", out.stderr);
    assert!(
        out.stderr[0]
            .contains("FINCHGATE_MASTER_KEYS: key \"k1\" is retired but 2 stored secret(s)"),
        "{:?}",
        out.stderr
    );
}
