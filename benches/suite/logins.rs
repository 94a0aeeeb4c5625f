//! Figure 3 (and issue 3's last point): `/healthz` latency while 64, then 100, concurrent sign-ins
//! run, against `/healthz` with no load; and sign-ins per second against the machine's ceiling,
//! cores ÷ the time of one argon2id verification (measured here, on this machine).
//!
//! Each sign-in is what a browser does: `GET /login` (a new session and its CSRF token), then
//! `POST /login` with the admin's email and password (one argon2id verification, the session
//! renewed, the user row and an audit event written). A prober sends `GET /healthz` every 10 ms
//! from its own HTTP client.

use std::time::{Duration, Instant};

use finchgate::auth::password::PasswordHasher;
use secrecy::SecretString;

use crate::browser::Browser;
use crate::report::{Row, cores};
use crate::stack::Stack;
use crate::stats::Samples;

const WINDOW: Duration = Duration::from_secs(10);
const PROBE_EVERY: Duration = Duration::from_millis(10);
const HEALTHZ_TARGET_MS: f64 = 20.0;
/// "Near cores ÷ one argon2 time": the share of that ceiling we call near.
const NEAR: f64 = 0.7;

/// `GET /healthz` every 10 ms for `window`; the latencies.
async fn probe(address: &str, window: Duration) -> anyhow::Result<Vec<Duration>> {
    let http = crate::browser::http_client()?;
    let url = format!("{address}/healthz");
    let deadline = Instant::now() + window;
    let mut latencies = Vec::new();
    while Instant::now() < deadline {
        let sent = Instant::now();
        let response = http.get(&url).send().await?;
        anyhow::ensure!(
            response.status().is_success(),
            "/healthz answered {}",
            response.status()
        );
        drop(response.bytes().await?);
        latencies.push(sent.elapsed());
        tokio::time::sleep(PROBE_EVERY.saturating_sub(sent.elapsed())).await;
    }
    Ok(latencies)
}

struct Logins {
    ok: usize,
    failed: usize,
    wall: Duration,
    latencies: Vec<Duration>,
}

/// `n` workers signing in over and over (each as its own admin, a new session each time) for
/// `window`.
async fn sign_ins(stack: &Stack, n: usize, window: Duration) -> Logins {
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    let deadline = started + window;
    for admin in &stack.admins[..n] {
        let browser = Browser::new(&stack.http, &stack.address);
        let email = admin.email.clone();
        let password = stack.password.clone();
        tasks.spawn(async move {
            let mut out = Vec::new();
            while Instant::now() < deadline {
                browser.clear();
                let sent = Instant::now();
                let ok = browser.login(&email, &password).await.unwrap_or(false);
                out.push((sent.elapsed(), ok));
            }
            out
        });
    }
    let mut result = Logins {
        ok: 0,
        failed: 0,
        wall: Duration::ZERO,
        latencies: Vec::new(),
    };
    while let Some(done) = tasks.join_next().await {
        for (latency, ok) in done.unwrap_or_default() {
            if ok {
                result.ok += 1;
                result.latencies.push(latency);
            } else {
                result.failed += 1;
            }
        }
    }
    result.wall = started.elapsed();
    result
}

/// One argon2id verification at the product's parameters, on one core: the median of 15.
async fn one_hash() -> anyhow::Result<Samples> {
    let hasher = PasswordHasher::new(1);
    let password = SecretString::from("bench-password-correct-horse-battery");
    let phc = hasher.hash(&password).await?;
    let mut times = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        hasher.verify(&password, Some(phc.clone())).await?;
        times.push(t.elapsed());
    }
    Ok(Samples::millis(&times))
}

pub async fn run(stack: &Stack) -> anyhow::Result<Vec<Row>> {
    let hash = one_hash().await?;
    let ceiling = cores() as f64 / (hash.median() / 1e3);
    eprintln!(
        "  one argon2id verification: p50 {:.1} ms (p5 {:.1}, p95 {:.1}); ceiling {} cores ÷ that = {ceiling:.0} sign-ins/s",
        hash.median(),
        hash.pct(5.0),
        hash.pct(95.0),
        cores()
    );
    let idle = Samples::millis(&probe(&stack.address, WINDOW).await?);
    let mut rows = Vec::new();
    for n in [64, 100] {
        let address = stack.address.clone();
        let prober = tokio::spawn(async move { probe(&address, WINDOW).await });
        let logins = sign_ins(stack, n, WINDOW).await;
        let loaded = Samples::millis(&prober.await??);
        let rate = logins.ok as f64 / logins.wall.as_secs_f64();
        let login_lat = Samples::millis(&logins.latencies);
        eprintln!(
            "  {n} concurrent sign-ins: {rate:.1}/s ({} ok, {} failed, sign-in p50 {:.0} ms); /healthz p50 {:.2} / p99 {:.2} ms loaded, p50 {:.2} / p99 {:.2} ms idle",
            logins.ok,
            logins.failed,
            login_lat.median(),
            loaded.median(),
            loaded.pct(99.0),
            idle.median(),
            idle.pct(99.0)
        );
        let p99 = loaded.pct(99.0);
        rows.push(Row {
            figure: format!("/healthz p99 during {n} concurrent sign-ins"),
            value: Some(p99),
            unit: "ms".to_owned(),
            baseline: Some(idle.pct(99.0)),
            baseline_is: "/healthz p99 idle".to_owned(),
            ratio: Some(p99 / idle.pct(99.0)),
            target: format!("≤ {HEALTHZ_TARGET_MS:.0} ms"),
            meets: Some(p99 <= HEALTHZ_TARGET_MS),
            spread: format!(
                "loaded p50 {:.2} / p95 {:.2} / p99 {:.2} / max {:.1} ms ({} probes); idle p50 {:.2} / p95 {:.2} / p99 {:.2} ms ({} probes)",
                loaded.median(),
                loaded.pct(95.0),
                p99,
                loaded.max(),
                loaded.len(),
                idle.median(),
                idle.pct(95.0),
                idle.pct(99.0),
                idle.len()
            ),
        });
        let ratio = rate / ceiling;
        rows.push(Row {
            figure: format!("sign-ins/s at {n} concurrent"),
            value: Some(rate),
            unit: "sign-ins/s".to_owned(),
            baseline: Some(ceiling),
            baseline_is: "cores ÷ one argon2id verification".to_owned(),
            ratio: Some(ratio),
            target: format!("near the ceiling (ratio ≥ {NEAR})"),
            meets: Some(ratio >= NEAR && logins.failed == 0),
            spread: format!(
                "{} sign-ins in {:.1} s, {} failed; sign-in p50 {:.0} / p99 {:.0} ms; one verification p50 {:.1} ms (p5 {:.1}, p95 {:.1}) × {} cores",
                logins.ok,
                logins.wall.as_secs_f64(),
                logins.failed,
                login_lat.median(),
                login_lat.pct(99.0),
                hash.median(),
                hash.pct(5.0),
                hash.pct(95.0),
                cores()
            ),
        });
    }
    Ok(rows)
}
