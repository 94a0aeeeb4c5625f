//! Faults under load (issue 6, item 3): 2,000 redirect-flow callbacks through the emulator, one
//! in five with a fault injected on `/auth/token` (latency, 5xx, hang, reset, malformed JSON, 429,
//! wrong customer_id), 24 browser sessions in flight, and the database restarted halfway.
//!
//! Afterwards (and after a reaper pass past the exchange deadline): every flow whose callback was
//! sent has exactly one ledger row, finished; every token the emulator issued is stored and opens
//! with the vault for its tenant and connection, or it is in the database nowhere and its flow did
//! not complete; no flow got more than one token; no response was a 500, a bare error or a dropped
//! connection; the server still answers and a fresh flow completes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use finchgate::sandbox::{Endpoint, Fault, FaultKind, ServerErrorStatus};
use finchgate::vault::{Purpose, RowContext};
use secrecy::{ExposeSecret as _, SecretString};
use url::Url;
use uuid::Uuid;

use crate::cluster::Cluster;
use crate::fixture::{
    Answer, Deployment, Instance, Tenant, browser, connect_csrf, create_tenant, login,
    start_redirect_flow,
};
use crate::helpers::approve_in_emulator;

/// Redirect-flow callbacks to drive.
const CALLBACKS: usize = 2_000;
/// Browser sessions (one tenant admin each) with a flow in flight at the same time.
const SESSIONS: usize = 24;
/// One callback in this many gets a fault.
const FAULT_EVERY: usize = 5;
/// How long the app waits for `/auth/token`: short, so that hangs cost little.
const FINCH_TIMEOUT: Duration = Duration::from_millis(1500);
/// A reload after a 503 (the database is restarting) comes this much later.
const RELOAD_AFTER: Duration = Duration::from_millis(300);
/// How long the database stays down when it is restarted: a restart or failover in production
/// takes seconds, long enough for requests to find no database at all.
const DATABASE_DOWN: Duration = Duration::from_secs(2);
/// A person gives up reloading after this many tries.
const MAX_RELOADS: usize = 100;

/// The fault for the `n`-th faulted callback: the seven kinds in turn, 5xx cycling 500/502/503.
fn fault_kind(n: usize) -> FaultKind {
    match n % 7 {
        0 => FaultKind::Latency { ms: 300 },
        1 => FaultKind::ServerError {
            status: [
                ServerErrorStatus::InternalServerError,
                ServerErrorStatus::BadGateway,
                ServerErrorStatus::ServiceUnavailable,
            ][(n / 7) % 3],
        },
        2 => FaultKind::Hang { seconds: 2 },
        3 => FaultKind::Reset,
        4 => FaultKind::MalformedJson,
        5 => FaultKind::RateLimit {
            retry_after_seconds: 1,
        },
        _ => FaultKind::WrongCustomerId,
    }
}

/// Everything the run observed, shared by the sessions.
#[derive(Default)]
struct Observed {
    /// Responses by request and status, e.g. `callback 303 attempts`.
    responses: BTreeMap<String, usize>,
    /// Responses that break the rule: a 500, a bare error, a dropped connection.
    problems: Vec<String>,
    /// SHA-256 of the state of every flow whose callback was sent at least once.
    attempted: Vec<Vec<u8>>,
    /// Callback requests sent, reloads included.
    callback_requests: usize,
    reloads: usize,
    /// Fault kinds injected.
    injected: BTreeMap<&'static str, usize>,
}

impl Observed {
    fn saw(&mut self, what: &str, answer: &Answer) {
        let landing = answer
            .location
            .as_deref()
            .map(|l| {
                if l.contains("/connections/") {
                    " connections"
                } else if l.contains("/attempts/") {
                    " attempts"
                } else if l.contains("/flows/") {
                    " in-progress"
                } else if l.contains("/authorize") || l.contains("/connect?") {
                    " finch-connect"
                } else {
                    " other"
                }
            })
            .unwrap_or("");
        *self
            .responses
            .entry(format!("{what} {}{landing}", answer.status))
            .or_default() += 1;
        if let Some(problem) = answer.problem() {
            self.problems.push(format!("{what}: {problem}"));
        }
        if answer.status == 303 && landing == " other" {
            self.problems.push(format!(
                "{what}: 303 to an unexpected place {:?}",
                answer.location
            ));
        }
    }
}

fn sha256(s: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, s.as_bytes())
        .as_ref()
        .to_vec()
}

struct Run {
    address: String,
    sandbox: finchgate::sandbox::Sandbox,
    next: AtomicUsize,
    sent: AtomicUsize,
    observed: Mutex<Observed>,
}

/// One browser session: start a flow, approve it at the emulator, send the callback (reloading
/// while the answer is a 503), until the callbacks are all used up.
async fn session(run: Arc<Run>, tenant: Tenant) {
    let client = browser();
    let signed_in = login(&client, &run.address, &tenant.email, &tenant.password).await;
    assert_eq!(
        signed_in.status(),
        303,
        "the admin of {} signs in",
        tenant.slug
    );
    loop {
        let i = run.next.fetch_add(1, Ordering::SeqCst);
        if i >= CALLBACKS {
            return;
        }
        let callback = start_and_approve(&run, &client, &tenant, i).await;
        if i % FAULT_EVERY == 0 {
            let kind = fault_kind(i / FAULT_EVERY);
            run.sandbox
                .inject(Fault::new(kind).on(Endpoint::AuthToken).times(1));
            *run.observed
                .lock()
                .unwrap()
                .injected
                .entry(kind.name())
                .or_default() += 1;
        }
        let state = callback
            .query_pairs()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
            .expect("the callback carries the state");
        run.observed.lock().unwrap().attempted.push(sha256(&state));
        run.sent.fetch_add(1, Ordering::SeqCst);
        for reload in 0..MAX_RELOADS {
            let answer = Answer::read(client.get(callback.as_str()).send().await).await;
            let retry = answer.status == 503 || answer.status == 500;
            {
                let mut observed = run.observed.lock().unwrap();
                observed.callback_requests += 1;
                if reload > 0 {
                    observed.reloads += 1;
                }
                observed.saw("callback", &answer);
            }
            if !retry {
                break;
            }
            tokio::time::sleep(RELOAD_AFTER).await;
        }
    }
}

/// Starts flow `i` (retrying while the server answers 503) and approves it at the emulator:
/// the callback URL the browser is sent to.
async fn start_and_approve(run: &Run, client: &reqwest::Client, tenant: &Tenant, i: usize) -> Url {
    for _ in 0..MAX_RELOADS {
        let csrf = match connect_csrf(client, &run.address, tenant).await {
            Ok(csrf) => csrf,
            Err(answer) => {
                run.observed.lock().unwrap().saw("connect-form", &answer);
                tokio::time::sleep(RELOAD_AFTER).await;
                continue;
            }
        };
        let answer =
            start_redirect_flow(client, &run.address, tenant, &csrf, &format!("cust-{i}")).await;
        run.observed.lock().unwrap().saw("start", &answer);
        match answer.location {
            Some(connect_url) if answer.status == 303 => {
                return approve_in_emulator(&connect_url, None).await;
            }
            _ => tokio::time::sleep(RELOAD_AFTER).await,
        }
    }
    panic!("flow {i} of {} could not be started", tenant.slug);
}

#[derive(QueryableByName, Debug)]
struct FlowRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    tenant_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Bytea)]
    state_hash: Vec<u8>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    status: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    failure_category: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
    claimed_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Uuid>)]
    connection_id: Option<Uuid>,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    rows: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    finished: i64,
}

#[derive(QueryableByName)]
struct OutcomeCount {
    #[diesel(sql_type = diesel::sql_types::Text)]
    outcome: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    category: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct TokenRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    tenant_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    connection_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Bytea)]
    envelope: Vec<u8>,
}

#[derive(QueryableByName)]
struct Text {
    #[diesel(sql_type = diesel::sql_types::Text)]
    text: String,
}

/// Every row of every table in the public schema, as text, lowercased (bytea shows as hex).
async fn database_as_text(conn: &mut AsyncPgConnection) -> String {
    let tables: Vec<Text> = diesel::sql_query(
        "SELECT quote_ident(tablename)::text AS text FROM pg_tables WHERE schemaname = 'public'",
    )
    .load(conn)
    .await
    .unwrap();
    assert!(tables.len() > 10, "the dump sees the schema");
    let mut all = String::new();
    for table in tables {
        let rows: Vec<Text> = diesel::sql_query(format!(
            "SELECT t::text AS text FROM public.{} t",
            table.text
        ))
        .load(conn)
        .await
        .unwrap();
        for row in rows {
            all.push_str(&row.text.to_lowercase());
            all.push('\n');
        }
    }
    all
}

/// Whether `token` appears in the dump as plaintext, base64 (either alphabet) or hex.
fn appears_in(dump: &str, token: &str) -> bool {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    [
        token.to_owned(),
        STANDARD_NO_PAD.encode(token),
        URL_SAFE_NO_PAD.encode(token),
        token.bytes().map(|b| format!("{b:02x}")).collect(),
    ]
    .iter()
    .any(|form| dump.contains(&form.to_lowercase()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_callbacks_survive_injected_faults_and_a_database_restart() {
    let began = Instant::now();
    let cluster = Arc::new(
        tokio::task::spawn_blocking(Cluster::start)
            .await
            .expect("start the private cluster"),
    );
    {
        let mut conn = AsyncPgConnection::establish(&cluster.url("postgres"))
            .await
            .expect("the private cluster is up");
        diesel::sql_query("CREATE DATABASE finchgate_faults")
            .execute(&mut conn)
            .await
            .expect("create the database");
    }
    let database_url = SecretString::from(cluster.url("finchgate_faults"));
    finchgate::db::migrations::run_pending(&database_url)
        .await
        .expect("migrate");

    let sandbox = finchgate::sandbox::Sandbox::start(finchgate::sandbox::SandboxConfig::new(
        std::net::TcpListener::bind("127.0.0.1:0").expect("bind the emulator"),
        Vec::new(),
    ))
    .await
    .expect("start the emulator");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the app");
    let address = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let mut deployment = Deployment::new(
        database_url.clone(),
        Url::parse(&address).unwrap(),
        sandbox.base_url(),
    );
    deployment.request_timeout = FINCH_TIMEOUT;
    deployment.max_connections = 16;
    let instance = Instance::start(&deployment, listener);
    let slugs: Vec<String> = (0..SESSIONS).map(|n| format!("load-{n}")).collect();
    let tenants: Vec<Tenant> = futures_util::StreamExt::collect(futures_util::StreamExt::buffered(
        futures_util::stream::iter(
            slugs
                .iter()
                .map(|slug| create_tenant(&deployment, &instance.pool, &sandbox, slug)),
        ),
        4,
    ))
    .await;
    let fresh_tenant = create_tenant(&deployment, &instance.pool, &sandbox, "after-the-run").await;
    let setup_done = began.elapsed();

    // The run: SESSIONS browsers, and the database restarted once half the callbacks are sent.
    let run = Arc::new(Run {
        address: address.clone(),
        sandbox,
        next: AtomicUsize::new(0),
        sent: AtomicUsize::new(0),
        observed: Mutex::new(Observed::default()),
    });
    let restart = {
        let run = run.clone();
        let cluster = cluster.clone();
        tokio::spawn(async move {
            while AtomicUsize::load(&run.sent, Ordering::SeqCst) < CALLBACKS / 2 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let at = AtomicUsize::load(&run.sent, Ordering::SeqCst);
            let started = Instant::now();
            tokio::task::spawn_blocking(move || cluster.restart(DATABASE_DOWN))
                .await
                .expect("restart the database");
            (at, started.elapsed())
        })
    };
    let sessions: Vec<_> = tenants
        .into_iter()
        .map(|tenant| tokio::spawn(session(run.clone(), tenant)))
        .collect();
    for s in sessions {
        s.await.expect("a browser session ran to the end");
    }
    let (restarted_at, restart_took) = restart.await.expect("the restart ran");
    let run_took = began.elapsed() - setup_done;

    // Whatever a crash or the restart left `exchanging` is settled by the reaper, as in production.
    let remaining_faults = run.sandbox.faults();
    run.sandbox.clear_faults();
    let reaped = finchgate::connect::reaper::reap(
        &instance.pool,
        Utc::now() + finchgate::connect::reaper::EXCHANGE_DEADLINE + chrono::Duration::minutes(1),
        &Default::default(),
    )
    .await
    .expect("a reaper pass");

    // The server kept serving: /healthz, and a fresh flow completes.
    let health = reqwest::get(format!("{address}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200, "/healthz after the run");
    let client = browser();
    assert_eq!(
        login(
            &client,
            &address,
            &fresh_tenant.email,
            &fresh_tenant.password
        )
        .await
        .status(),
        303
    );
    let csrf = connect_csrf(&client, &address, &fresh_tenant)
        .await
        .expect("the connect form after the run");
    let started = start_redirect_flow(&client, &address, &fresh_tenant, &csrf, "fresh").await;
    assert_eq!(started.status, 303, "a flow starts after the run");
    let callback = approve_in_emulator(started.location.as_deref().unwrap(), None).await;
    let fresh = Answer::read(client.get(callback.as_str()).send().await).await;
    assert_eq!(fresh.status, 303);
    assert!(
        fresh
            .location
            .as_deref()
            .is_some_and(|l| l.contains("/connections/")),
        "a fresh flow after the run connects: {:?}",
        fresh.location
    );

    // The books.
    let observed = std::mem::take(&mut *run.observed.lock().unwrap());
    let mut conn = AsyncPgConnection::establish(database_url.expose_secret())
        .await
        .unwrap();
    let flows: Vec<FlowRow> = diesel::sql_query(
        "SELECT f.id, f.tenant_id, f.state_hash, f.status, f.failure_category, f.claimed_at,
                f.connection_id,
                (SELECT count(*) FROM exchange_attempts a WHERE a.flow_id = f.id) AS rows,
                (SELECT count(*) FROM exchange_attempts a
                  WHERE a.flow_id = f.id AND a.finished_at IS NOT NULL) AS finished
           FROM connect_flows f",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let by_state: HashMap<&[u8], &FlowRow> =
        flows.iter().map(|f| (f.state_hash.as_slice(), f)).collect();

    // 1. Exactly one finished ledger row per attempted callback; no open row anywhere.
    assert_eq!(
        observed.attempted.len(),
        CALLBACKS,
        "every callback was sent"
    );
    let mut ledger_problems = Vec::new();
    for hash in &observed.attempted {
        match by_state.get(hash.as_slice()) {
            None => ledger_problems.push("a callback's flow is missing".to_owned()),
            Some(f) if f.rows != 1 || f.finished != 1 => ledger_problems.push(format!(
                "flow {} ({}): {} ledger rows, {} finished",
                f.id, f.status, f.rows, f.finished
            )),
            Some(_) => {}
        }
    }
    let open_rows: Vec<Text> = diesel::sql_query(
        "SELECT id::text AS text FROM exchange_attempts WHERE finished_at IS NULL",
    )
    .load(&mut conn)
    .await
    .unwrap();

    // 2. Every issued token: stored and opening for its tenant and connection, or nowhere in
    // the database and its flow not completed. No flow got two tokens.
    let stored: Vec<TokenRow> =
        diesel::sql_query("SELECT tenant_id, connection_id, envelope FROM connection_tokens")
            .load(&mut conn)
            .await
            .unwrap();
    let vault = deployment.vault();
    let mut stored_tokens = HashSet::new();
    for row in &stored {
        let opened = vault
            .open_string(
                &RowContext::new(Purpose::AccessToken, row.tenant_id, row.connection_id),
                &row.envelope,
            )
            .unwrap_or_else(|e| panic!("the token of {} opens: {e}", row.connection_id));
        stored_tokens.insert(opened.expose_secret().to_owned());
    }
    let dump = database_as_text(&mut conn).await;
    let tenant_of_client: HashMap<String, Uuid> = {
        #[derive(QueryableByName)]
        struct ClientTenant {
            #[diesel(sql_type = diesel::sql_types::Text)]
            client_id: String,
            #[diesel(sql_type = diesel::sql_types::Uuid)]
            tenant_id: Uuid,
        }
        let rows: Vec<ClientTenant> =
            diesel::sql_query("SELECT client_id, tenant_id FROM finch_credentials")
                .load(&mut conn)
                .await
                .unwrap();
        rows.into_iter()
            .map(|r| (r.client_id, r.tenant_id))
            .collect()
    };
    let mut claimed_by_tenant: HashMap<Uuid, Vec<&FlowRow>> = HashMap::new();
    for f in flows.iter().filter(|f| f.claimed_at.is_some()) {
        claimed_by_tenant.entry(f.tenant_id).or_default().push(f);
    }
    for list in claimed_by_tenant.values_mut() {
        list.sort_by_key(|f| f.claimed_at);
    }
    let issued = run.sandbox.issued_tokens();
    let mut token_problems = Vec::new();
    let mut tokens_per_flow: HashMap<Uuid, usize> = HashMap::new();
    let mut unstored_by_status: BTreeMap<String, usize> = BTreeMap::new();
    for token in &issued {
        let secret = token.access_token.expose_secret();
        // The flow that was exchanging when the token was issued: a session runs one flow at a
        // time, so per tenant the claim times order the flows.
        let flow = tenant_of_client
            .get(&token.client_id)
            .and_then(|t| claimed_by_tenant.get(t))
            .and_then(|list| {
                list.iter()
                    .rev()
                    .find(|f| f.claimed_at.is_some_and(|c| c <= token.issued_at))
            });
        let Some(flow) = flow else {
            token_problems.push(format!("token of {} matches no flow", token.connection_id));
            continue;
        };
        *tokens_per_flow.entry(flow.id).or_default() += 1;
        if stored_tokens.contains(secret) {
            if flow.status != "completed" {
                token_problems.push(format!("stored token, flow {} is {}", flow.id, flow.status));
            }
            continue;
        }
        if appears_in(&dump, secret) {
            token_problems.push(format!(
                "an unstored token (flow {}) is in the database in the clear",
                flow.id
            ));
        }
        if matches!(flow.status.as_str(), "completed" | "pending" | "exchanging") {
            token_problems.push(format!(
                "token not stored but flow {} is {}",
                flow.id, flow.status
            ));
        }
        *unstored_by_status
            .entry(format!(
                "{}/{}",
                flow.status,
                flow.failure_category.as_deref().unwrap_or("-")
            ))
            .or_default() += 1;
    }
    for token in &stored_tokens {
        if !issued
            .iter()
            .any(|t| t.access_token.expose_secret() == token)
        {
            token_problems.push("a stored token was never issued".to_owned());
        }
    }
    let twice: Vec<_> = tokens_per_flow.iter().filter(|(_, n)| **n > 1).collect();
    let completed = flows.iter().filter(|f| f.status == "completed").count();
    let completed_with_token = flows
        .iter()
        .filter(|f| f.status == "completed")
        .filter(|f| {
            f.connection_id
                .is_some_and(|c| stored.iter().any(|t| t.connection_id == c))
        })
        .count();

    let outcomes: Vec<OutcomeCount> = diesel::sql_query(
        "SELECT outcome, coalesce(category, '-') AS category, count(*) AS n
           FROM exchange_attempts GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let token_calls = run.sandbox.count("POST", "/auth/token");
    let applied: BTreeMap<String, usize> = run
        .sandbox
        .requests()
        .iter()
        .filter(|r| r.path == "/auth/token")
        .filter_map(|r| r.fault.clone())
        .fold(BTreeMap::new(), |mut m, k| {
            *m.entry(k).or_default() += 1;
            m
        });

    eprintln!("── fault run ─────────────────────────────────────────────");
    eprintln!(
        "callbacks: {} flows, {} callback requests ({} reloads), {SESSIONS} sessions in flight",
        observed.attempted.len(),
        observed.callback_requests,
        observed.reloads
    );
    eprintln!(
        "faults injected on /auth/token: {} {:?}",
        observed.injected.values().sum::<usize>(),
        observed.injected
    );
    eprintln!(
        "faults that acted: {applied:?}; left unused: {}",
        remaining_faults.len()
    );
    eprintln!(
        "database restarted after {restarted_at} callbacks; down for {restart_took:.1?} (stop, {DATABASE_DOWN:?}, start)"
    );
    eprintln!(
        "/auth/token requests: {token_calls}; tokens issued: {}",
        issued.len()
    );
    eprintln!(
        "tokens stored: {} (all open with the vault); unstored by flow status: {unstored_by_status:?}",
        stored_tokens.len()
    );
    eprintln!("reaper: {reaped:?}");
    eprintln!("ledger outcomes:");
    for o in &outcomes {
        eprintln!("  {:<22} {:<28} {}", o.outcome, o.category, o.n);
    }
    eprintln!("responses:");
    for (what, n) in &observed.responses {
        eprintln!("  {what:<40} {n}");
    }
    eprintln!(
        "problems: {} responses, {} ledger, {} open rows, {} tokens, {} flows with two tokens",
        observed.problems.len(),
        ledger_problems.len(),
        open_rows.len(),
        token_problems.len(),
        twice.len()
    );
    eprintln!(
        "elapsed: setup {setup_done:.1?}, run {run_took:.1?}, total {:.1?}",
        began.elapsed()
    );

    assert!(
        observed.problems.is_empty(),
        "responses that are 500s, bare errors or dropped connections: {:#?}",
        &observed.problems[..observed.problems.len().min(20)]
    );
    assert!(ledger_problems.is_empty(), "{ledger_problems:#?}");
    assert!(open_rows.is_empty(), "ledger rows never finished");
    assert!(token_problems.is_empty(), "{token_problems:#?}");
    assert!(twice.is_empty(), "flows that got two tokens: {twice:?}");
    assert_eq!(
        completed, completed_with_token,
        "every completed flow has its token"
    );
    assert_eq!(
        stored_tokens.len(),
        completed,
        "one stored token per completed flow"
    );
    assert!(
        observed.injected.values().sum::<usize>() >= CALLBACKS / FAULT_EVERY,
        "about a fifth of the callbacks met a fault"
    );
    assert_eq!(
        observed.injected.len(),
        7,
        "every kind of fault was injected"
    );

    let Run { sandbox, .. } = Arc::into_inner(run).expect("the run is over");
    instance.stop().await;
    sandbox.stop().await;
    drop(cluster);
}
