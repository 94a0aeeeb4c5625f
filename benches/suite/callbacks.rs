//! Figure 2: complete redirect-flow callbacks per second at 256 concurrent, the emulator adding
//! 50 ms to `/auth/token`, flows started and approved in advance (256 browsers, each with its
//! own session), against the bare handler of [`crate::baseline`] making the same call.
//!
//! Closed loop: 256 workers, each sending its browser's callbacks one after another. Rounds of
//! the baseline and of finchgate alternate, so both see the same machine; the figure is the
//! median round, the spread the other rounds and the latency percentiles.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use finchgate::sandbox::{Endpoint, Fault, FaultKind};

use crate::baseline::Baseline;
use crate::browser::{Browser, location};
use crate::report::Row;
use crate::stack::{BROWSERS, Stack};
use crate::stats::Samples;

const ROUNDS: usize = 3;
/// Callbacks per browser per round.
const PER_ROUND: usize = 4;
pub const TOKEN_LATENCY_MS: u64 = 50;

/// What one load run measured.
#[derive(Debug, Default)]
pub struct LoadResult {
    pub ok: usize,
    pub failed: usize,
    pub wall: Duration,
    pub latencies: Vec<Duration>,
    pub max_in_flight: usize,
    /// Failures by status (0: no response).
    pub failures: BTreeMap<u16, usize>,
}

impl LoadResult {
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.wall.as_secs_f64()
    }
}

/// Sends each worker's URLs one after another, every worker at once, all released together.
/// `success` judges a response by its status and `Location`.
pub async fn drive(
    workers: Vec<(Arc<Browser>, Vec<String>)>,
    success: fn(u16, Option<&str>) -> bool,
) -> LoadResult {
    let n = workers.len();
    let start = Arc::new(tokio::sync::Barrier::new(n + 1));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max_in_flight = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for (browser, urls) in workers {
        let start = start.clone();
        let in_flight = in_flight.clone();
        let max_in_flight = max_in_flight.clone();
        tasks.spawn(async move {
            let mut out = Vec::with_capacity(urls.len());
            start.wait().await;
            for url in urls {
                let sent = Instant::now();
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                max_in_flight.fetch_max(now, Ordering::SeqCst);
                let response = browser.get(&url).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                let verdict = match response {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let ok = success(status, location(&r).as_deref());
                        // Read the (empty) body so the connection goes back to the pool.
                        drop(r.bytes().await);
                        if ok { Ok(()) } else { Err(status) }
                    }
                    Err(_) => Err(0),
                };
                out.push((sent.elapsed(), verdict));
            }
            out
        });
    }
    start.wait().await;
    let began = Instant::now();
    let mut result = LoadResult::default();
    while let Some(done) = tasks.join_next().await {
        for (latency, verdict) in done.unwrap_or_default() {
            match verdict {
                Ok(()) => {
                    result.ok += 1;
                    result.latencies.push(latency);
                }
                Err(status) => {
                    result.failed += 1;
                    *result.failures.entry(status).or_default() += 1;
                }
            }
        }
    }
    result.wall = began.elapsed();
    result.max_in_flight = max_in_flight.load(Ordering::SeqCst);
    result
}

pub fn app_success(status: u16, location: Option<&str>) -> bool {
    status == 303 && location.is_some_and(|l| l.contains("/connections/"))
}

fn baseline_success(status: u16, location: Option<&str>) -> bool {
    status == 303 && location == Some("/done")
}

pub async fn run(stack: &Stack) -> anyhow::Result<Vec<Row>> {
    let browsers = stack.signed_in_browsers(BROWSERS).await?;
    anyhow::ensure!(browsers.len() == BROWSERS, "not enough admins");
    // One warm-up callback per browser, then the rounds.
    let per_browser = 1 + ROUNDS * PER_ROUND;
    let setup = Instant::now();
    let mut app_urls = stack.prepare_callbacks(&browsers, per_browser).await?;
    let baseline = Baseline::start(
        &stack.sandbox.base_url(),
        &stack.spare_app.0,
        &stack.spare_app.1,
    )
    .await?;
    let baseline_urls = baseline
        .callback_urls(&stack.http, BROWSERS * per_browser)
        .await?;
    eprintln!(
        "  {} flows started and approved in advance (and as many baseline codes) in {:.0} s",
        BROWSERS * per_browser,
        setup.elapsed().as_secs_f64()
    );
    let plain = Arc::new(Browser::new(&stack.http, &baseline.address));
    stack.sandbox.inject(
        Fault::new(FaultKind::Latency {
            ms: TOKEN_LATENCY_MS,
        })
        .on(Endpoint::AuthToken)
        .times(0),
    );
    let take = |urls: &mut Vec<Vec<String>>, n: usize| -> Vec<Vec<String>> {
        urls.iter_mut().map(|u| u.drain(..n).collect()).collect()
    };
    let mut baseline_per_worker: Vec<Vec<String>> = baseline_urls
        .chunks(per_browser)
        .map(<[String]>::to_vec)
        .collect();
    let app_workers = |urls: Vec<Vec<String>>| -> Vec<(Arc<Browser>, Vec<String>)> {
        browsers.iter().map(|(b, _)| b.clone()).zip(urls).collect()
    };
    let baseline_workers = |urls: Vec<Vec<String>>| -> Vec<(Arc<Browser>, Vec<String>)> {
        urls.into_iter().map(|u| (plain.clone(), u)).collect()
    };

    // Warm-up: every connection opened, every worker thread busy once.
    drive(
        baseline_workers(take(&mut baseline_per_worker, 1)),
        baseline_success,
    )
    .await;
    drive(app_workers(take(&mut app_urls, 1)), app_success).await;
    let mut app_rounds = Vec::new();
    let mut base_rounds = Vec::new();
    // The baseline touches no database, so these count finchgate's rounds alone (plus one read
    // per sample).
    let work_before = stack.db.work_done().await?;
    for round in 1..=ROUNDS {
        let b = drive(
            baseline_workers(take(&mut baseline_per_worker, PER_ROUND)),
            baseline_success,
        )
        .await;
        let a = drive(app_workers(take(&mut app_urls, PER_ROUND)), app_success).await;
        eprintln!(
            "  round {round}: baseline {:.0}/s (p99 {:.0} ms, {} failed), finchgate {:.0}/s (p99 {:.0} ms, {} failed {:?})",
            b.per_second(),
            Samples::millis(&b.latencies).pct(99.0),
            b.failed,
            a.per_second(),
            Samples::millis(&a.latencies).pct(99.0),
            a.failed,
            a.failures,
        );
        base_rounds.push(b);
        app_rounds.push(a);
    }
    let work_after = stack.db.work_done().await?;
    stack.sandbox.clear_faults();
    baseline.stop().await;
    let callbacks = (BROWSERS * PER_ROUND * ROUNDS) as f64;
    let commits_each = (work_after.commits - work_before.commits) as f64 / callbacks;
    let flushes_each = (work_after.wal_syncs - work_before.wal_syncs) as f64 / callbacks;
    eprintln!(
        "  per finchgate callback: {commits_each:.2} transactions, {flushes_each:.2} WAL flushes"
    );

    let rate =
        |rounds: &[LoadResult]| Samples::new(rounds.iter().map(LoadResult::per_second).collect());
    let pooled = |rounds: &[LoadResult]| {
        Samples::millis(
            &rounds
                .iter()
                .flat_map(|r| r.latencies.iter().copied())
                .collect::<Vec<_>>(),
        )
    };
    let (app_rate, base_rate) = (rate(&app_rounds), rate(&base_rounds));
    let (app_lat, base_lat) = (pooled(&app_rounds), pooled(&base_rounds));
    let failed: usize = app_rounds.iter().map(|r| r.failed).sum();
    let ratio = app_rate.median() / base_rate.median();
    let p99 = app_lat.pct(99.0);
    let p99_target = (TOKEN_LATENCY_MS + 25) as f64;
    Ok(vec![
        Row {
            figure: "redirect-flow callbacks/s at 256 concurrent, emulator +50 ms".to_owned(),
            value: Some(app_rate.median()),
            unit: "callbacks/s".to_owned(),
            baseline: Some(base_rate.median()),
            baseline_is: "bare actix handler, same emulator call, no DB".to_owned(),
            ratio: Some(ratio),
            target: "ratio ≥ 0.6".to_owned(),
            meets: Some(ratio >= 0.6 && failed == 0),
            spread: format!(
                "median of {ROUNDS} rounds of {} callbacks; finchgate {:.0}–{:.0}/s, baseline {:.0}–{:.0}/s; {failed} failed; per callback {commits_each:.1} transactions and {flushes_each:.2} WAL flushes",
                BROWSERS * PER_ROUND,
                app_rate.min(),
                app_rate.max(),
                base_rate.min(),
                base_rate.max(),
            ),
        },
        Row {
            figure: "callback latency p99 at 256 concurrent, emulator +50 ms".to_owned(),
            value: Some(p99),
            unit: "ms".to_owned(),
            baseline: Some(base_lat.pct(99.0)),
            baseline_is: "bare handler p99".to_owned(),
            ratio: Some(p99 / base_lat.pct(99.0)),
            target: format!("p99 ≤ {p99_target:.0} ms"),
            meets: Some(p99 <= p99_target),
            spread: format!(
                "finchgate p50 {:.0} / p95 {:.0} / p99 {:.0} ms; baseline p50 {:.0} / p95 {:.0} / p99 {:.0} ms ({} requests each)",
                app_lat.median(),
                app_lat.pct(95.0),
                p99,
                base_lat.median(),
                base_lat.pct(95.0),
                base_lat.pct(99.0),
                app_lat.len(),
            ),
        },
    ])
}
