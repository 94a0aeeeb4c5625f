//! The database goes away while Finch is answering: the token that arrives must be stored once
//! the database is back (the write is retried, never the exchange), not dropped.

use std::sync::Arc;
use std::time::Duration;

use diesel::QueryableByName;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use finchgate::sandbox::{Endpoint, Fault, FaultKind};
use finchgate::vault::{Purpose, RowContext};
use secrecy::{ExposeSecret as _, SecretString};
use url::Url;
use uuid::Uuid;

use crate::cluster::Cluster;
use crate::fixture::{
    Answer, Deployment, Instance, browser, connect_csrf, create_tenant, login, start_redirect_flow,
};
use crate::helpers::approve_in_emulator;

#[derive(QueryableByName)]
struct Stored {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    tenant_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Bytea)]
    envelope: Vec<u8>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    flow_status: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    outcome: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_arrives_while_the_database_is_down_is_stored_when_it_is_back() {
    let cluster = Arc::new(tokio::task::spawn_blocking(Cluster::start).await.unwrap());
    {
        let mut conn = AsyncPgConnection::establish(&cluster.url("postgres"))
            .await
            .unwrap();
        diesel::sql_query("CREATE DATABASE finchgate_restart")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let database_url = SecretString::from(cluster.url("finchgate_restart"));
    finchgate::db::migrations::run_pending(&database_url)
        .await
        .unwrap();
    let sandbox = finchgate::sandbox::Sandbox::start(finchgate::sandbox::SandboxConfig::new(
        std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
        Vec::new(),
    ))
    .await
    .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let deployment = Deployment::new(
        database_url.clone(),
        Url::parse(&address).unwrap(),
        sandbox.base_url(),
    );
    let instance = Instance::start(&deployment, listener);
    let tenant = create_tenant(&deployment, &instance.pool, &sandbox, "restart").await;
    let client = browser();
    assert_eq!(
        login(&client, &address, &tenant.email, &tenant.password)
            .await
            .status(),
        303
    );
    let csrf = connect_csrf(&client, &address, &tenant).await.unwrap();
    let started = start_redirect_flow(&client, &address, &tenant, &csrf, "restart").await;
    let callback = approve_in_emulator(started.location.as_deref().unwrap(), None).await;

    // Finch takes a while to answer; meanwhile the database stops, and comes back 3 s later.
    sandbox.inject(
        Fault::new(FaultKind::Latency { ms: 1500 })
            .on(Endpoint::AuthToken)
            .times(1),
    );
    let sent = tokio::spawn({
        let client = client.clone();
        async move { Answer::read(client.get(callback.as_str()).send().await).await }
    });
    while !sandbox
        .requests()
        .iter()
        .any(|r| r.path == "/auth/token" && r.fault.as_deref() == Some("latency"))
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let outage = tokio::task::spawn_blocking({
        let cluster = cluster.clone();
        move || cluster.restart(Duration::from_secs(3))
    });
    let answer = sent.await.unwrap();
    outage.await.unwrap();

    assert_eq!(sandbox.issued_tokens().len(), 1, "Finch issued the token");
    assert_eq!(answer.status, 303, "{}", answer.body);
    let location = answer.location.unwrap();
    assert!(location.contains("/connections/"), "connected: {location}");
    let connection_id = crate::helpers::connection_id_from(&location);
    let mut conn = AsyncPgConnection::establish(database_url.expose_secret())
        .await
        .unwrap();
    let stored: Stored = diesel::sql_query(format!(
        "SELECT t.tenant_id, t.envelope, f.status AS flow_status, a.outcome
           FROM connection_tokens t
           JOIN connect_flows f ON f.connection_id = t.connection_id
           JOIN exchange_attempts a ON a.flow_id = f.id
          WHERE t.connection_id = '{connection_id}'"
    ))
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        (stored.flow_status.as_str(), stored.outcome.as_str()),
        ("completed", "succeeded")
    );
    let token = deployment
        .vault()
        .open_string(
            &RowContext::new(Purpose::AccessToken, stored.tenant_id, connection_id),
            &stored.envelope,
        )
        .unwrap();
    assert_eq!(
        token.expose_secret(),
        sandbox.issued_tokens()[0].access_token.expose_secret()
    );
    assert_eq!(
        sandbox.count("POST", "/auth/token"),
        1,
        "never exchanged twice"
    );

    instance.stop().await;
    sandbox.stop().await;
}
