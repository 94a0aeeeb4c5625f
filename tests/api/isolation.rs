//! Row-level security: the database's own wall between tenants (defence in depth).

use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use finchgate::config::DatabaseSettings;
use finchgate::db::{Scope, transaction};
use uuid::Uuid;

use crate::helpers::TestDatabase;

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[tokio::test]
async fn every_table_with_a_tenant_id_forces_row_level_security_with_a_policy() {
    let db = TestDatabase::migrated().await;
    let mut conn = db.connect().await;
    let unprotected: Vec<Name> = diesel::sql_query(
        "SELECT c.relname::text AS name
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'public' AND c.relkind = 'r'
            AND (EXISTS (SELECT 1 FROM information_schema.columns col
                          WHERE col.table_schema = 'public' AND col.table_name = c.relname
                            AND col.column_name = 'tenant_id') OR c.relname = 'tenants')
            AND NOT (c.relrowsecurity AND c.relforcerowsecurity
                     AND EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid))",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let names: Vec<String> = unprotected.into_iter().map(|n| n.name).collect();
    assert!(
        names.is_empty(),
        "tables with tenant_id but without forced RLS + policy: {names:?}"
    );
}

async fn app_pool(db: &TestDatabase) -> finchgate::db::Pool {
    finchgate::db::pool(&DatabaseSettings {
        url: db.url.clone(),
        max_connections: 2,
    })
    .unwrap()
}

async fn insert_tenant(conn: &mut AsyncPgConnection, slug: &str) -> Uuid {
    transaction(conn, Scope::System, async |conn| {
        finchgate::db::models::tenants::insert(
            conn,
            &finchgate::db::models::tenants::NewTenant {
                slug,
                name: slug,
                finch_sandbox: "none",
            },
        )
        .await
        .map(|t| t.id)
    })
    .await
    .unwrap()
}

async fn count(conn: &mut AsyncPgConnection, scope: Option<Scope>, table: &str) -> i64 {
    let sql = format!("SELECT count(*) AS n FROM {table}");
    match scope {
        Some(scope) => transaction(conn, scope, async |conn| {
            diesel::sql_query(&sql)
                .get_result::<Count>(conn)
                .await
                .map(|c| c.n)
        })
        .await
        .unwrap(),
        None => {
            diesel::sql_query(&sql)
                .get_result::<Count>(conn)
                .await
                .unwrap()
                .n
        }
    }
}

#[tokio::test]
async fn the_app_role_sees_only_the_tenant_in_scope_and_nothing_without_one() {
    let db = TestDatabase::migrated().await;
    let pool = app_pool(&db).await;
    let mut conn = pool.get().await.unwrap();
    let a = insert_tenant(&mut conn, "tenant-a").await;
    let b = insert_tenant(&mut conn, "tenant-b").await;
    for (tenant, uri) in [(a, "https://a.example/cb"), (b, "https://b.example/cb")] {
        transaction(&mut conn, Scope::Tenant(tenant), async |conn| {
            finchgate::db::models::redirect_uris::add(conn, tenant, uri, None).await
        })
        .await
        .unwrap();
    }
    // A query that "forgot" its tenant filter still returns only the scope's rows.
    assert_eq!(
        count(&mut conn, Some(Scope::Tenant(a)), "redirect_uris").await,
        1
    );
    assert_eq!(count(&mut conn, Some(Scope::Tenant(a)), "tenants").await, 1);
    assert_eq!(
        count(&mut conn, Some(Scope::Operator), "redirect_uris").await,
        2
    );
    assert_eq!(count(&mut conn, Some(Scope::System), "tenants").await, 2);
    // Without a scope (or after the transaction that set it), nothing at all.
    assert_eq!(count(&mut conn, None, "redirect_uris").await, 0);
    assert_eq!(count(&mut conn, None, "tenants").await, 0);
    // Listing through the tenant-scoped query in the wrong scope finds nothing either.
    let listed = transaction(&mut conn, Scope::Tenant(a), async |conn| {
        finchgate::db::models::redirect_uris::list(conn, b).await
    })
    .await
    .unwrap();
    assert!(listed.is_empty());
}

#[tokio::test]
async fn a_cross_tenant_insert_is_refused_by_the_policy() {
    let db = TestDatabase::migrated().await;
    let pool = app_pool(&db).await;
    let mut conn = pool.get().await.unwrap();
    let a = insert_tenant(&mut conn, "tenant-a").await;
    let b = insert_tenant(&mut conn, "tenant-b").await;
    let result = transaction(&mut conn, Scope::Tenant(a), async |conn| {
        finchgate::db::models::redirect_uris::add(conn, b, "https://evil.example/cb", None).await
    })
    .await;
    let error = result.unwrap_err().to_string();
    assert!(error.contains("row-level security"), "{error}");
    assert_eq!(
        count(&mut conn, Some(Scope::System), "redirect_uris").await,
        0
    );
}

#[tokio::test]
async fn the_operator_scope_cannot_read_access_tokens_at_all() {
    let db = TestDatabase::migrated().await;
    let mut superuser = db.connect().await;
    diesel::sql_query(
        "WITH t AS (INSERT INTO tenants (slug, name) VALUES ('acme', 'Acme') RETURNING id),
              k AS (INSERT INTO keyring (kek_id, check_value) VALUES ('k1', '\\x00') RETURNING kek_id),
              c AS (INSERT INTO connections (tenant_id, finch_connection_id, provider_id)
                    SELECT id, 'conn-1', 'gusto' FROM t RETURNING id, tenant_id)
         INSERT INTO connection_tokens (tenant_id, connection_id, kek_id, envelope)
         SELECT c.tenant_id, c.id, k.kek_id, '\\x01' FROM c, k",
    )
    .execute(&mut superuser)
    .await
    .unwrap();
    let pool = app_pool(&db).await;
    let mut conn = pool.get().await.unwrap();
    assert_eq!(
        count(&mut conn, Some(Scope::Operator), "connection_tokens").await,
        0
    );
    assert_eq!(
        count(&mut conn, Some(Scope::Operator), "connections").await,
        1
    );
    assert_eq!(
        count(&mut conn, Some(Scope::System), "connection_tokens").await,
        1
    );
}

#[tokio::test]
async fn pool_connections_run_as_a_role_without_superuser_or_bypassrls() {
    #[derive(QueryableByName)]
    struct Role {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        rolsuper: bool,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        rolbypassrls: bool,
    }
    let db = TestDatabase::migrated().await;
    let pool = app_pool(&db).await;
    let mut conn = pool.get().await.unwrap();
    let role: Role = diesel::sql_query(
        "SELECT current_user::text AS name, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!(role.name, "finchgate_app");
    assert!(!role.rolsuper && !role.rolbypassrls);
}
