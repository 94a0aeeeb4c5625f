//! Figure 6: peak resident memory of `finchgate serve` with 1,000 callbacks in flight, against its
//! idle resident memory.
//!
//! A fresh server (its own process, so the figure is the server's alone: not the emulator's, not
//! the load generator's). 250 admins sign in and start 4 redirect flows each; the emulator then
//! holds every `/auth/token` for 3 s, and the 1,000 callbacks are sent at once. Memory is read
//! from `/proc/<pid>/status`: idle = `VmRSS` before the burst (median of 5 reads over 1 s);
//! peak = `VmHWM` after it, the kernel's high-water mark, reset just before the burst by writing
//! `5` to `/proc/<pid>/clear_refs` (and, as a cross-check, the largest `VmRSS` read every 20 ms).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use finchgate::sandbox::{Endpoint, Fault, FaultKind};

use crate::browser::Browser;
use crate::callbacks::{app_success, drive};
use crate::report::Row;
use crate::stack::Stack;
use crate::stats::Samples;

const IN_FLIGHT: usize = 1_000;
const PER_BROWSER: usize = 4;
const HOLD_MS: u64 = 3_000;
const TARGET_MB: f64 = 150.0;

/// A `kB` field of `/proc/<pid>/status`, in MiB.
fn status_mib(pid: u32, field: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?;
    Ok(kib / 1024.0)
}

/// The glibc tunable that stops malloc from keeping argon2's 19 MiB blocks (docs/benchmarks.md).
pub const MMAP_THRESHOLD: (&str, &str) = ("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=131072");

/// The figure with glibc's malloc defaults, then the same with [`MMAP_THRESHOLD`] set.
pub async fn run() -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for malloc_env in [None, Some(MMAP_THRESHOLD)] {
        let stack = Stack::start("memory", IN_FLIGHT / PER_BROWSER, malloc_env).await?;
        let result = measure(&stack, malloc_env.is_some()).await;
        stack.stop().await;
        rows.push(result?);
    }
    Ok(rows)
}

async fn measure(stack: &Stack, tuned: bool) -> anyhow::Result<Row> {
    let pid = stack.pid;
    let at_boot = status_mib(pid, "VmRSS")?;
    let browsers = stack.signed_in_browsers(IN_FLIGHT / PER_BROWSER).await?;
    let urls = stack.prepare_callbacks(&browsers, PER_BROWSER).await?;
    let workers: Vec<(Arc<Browser>, Vec<String>)> = browsers
        .iter()
        .zip(urls)
        .flat_map(|((browser, _), urls)| urls.into_iter().map(|u| (browser.clone(), vec![u])))
        .collect();
    anyhow::ensure!(
        workers.len() == IN_FLIGHT,
        "prepared {} callbacks",
        workers.len()
    );
    stack.sandbox.inject(
        Fault::new(FaultKind::Latency { ms: HOLD_MS })
            .on(Endpoint::AuthToken)
            .times(0),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut idle = Vec::new();
    for _ in 0..5 {
        idle.push(status_mib(pid, "VmRSS")?);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let idle = Samples::new(idle).median();
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
        .context("reset the server's VmHWM (needs Linux ≥ 4.0)")?;

    let stop = Arc::new(AtomicBool::new(false));
    let sampled_kib = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, sampled_kib) = (stop.clone(), sampled_kib.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                if let Ok(mib) = status_mib(pid, "VmRSS") {
                    sampled_kib.fetch_max((mib * 1024.0) as u64, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let load = drive(workers, app_success).await;
    stop.store(true, Ordering::SeqCst);
    sampler.await?;
    stack.sandbox.clear_faults();
    let hwm = status_mib(pid, "VmHWM")?;
    let sampled = sampled_kib.load(Ordering::SeqCst) as f64 / 1024.0;
    let peak = hwm.max(sampled);
    let latencies = Samples::millis(&load.latencies);
    eprintln!(
        "  idle {idle:.1} MiB (at boot {at_boot:.1}); peak VmHWM {hwm:.1} MiB, largest sampled VmRSS {sampled:.1} MiB; {} ok, {} failed {:?}, {} in flight at most, burst {:.1} s",
        load.ok,
        load.failed,
        load.failures,
        load.max_in_flight,
        load.wall.as_secs_f64()
    );
    Ok(Row {
        figure: if tuned {
            "peak RSS with 1,000 callbacks in flight, malloc mmap_threshold=128 KiB".to_owned()
        } else {
            "peak RSS with 1,000 callbacks in flight".to_owned()
        },
        value: Some(peak),
        unit: "MiB".to_owned(),
        baseline: Some(idle),
        baseline_is: "idle RSS, same process".to_owned(),
        ratio: Some(peak / idle),
        target: format!("≤ {TARGET_MB:.0} MB"),
        meets: Some(peak * 1.048_576 <= TARGET_MB && load.failed == 0),
        spread: format!(
            "VmHWM {hwm:.1} MiB, largest VmRSS read {sampled:.1} MiB; idle {idle:.1} MiB (at boot {at_boot:.1}); {} of {IN_FLIGHT} completed ({} at once at most), emulator holding /auth/token {HOLD_MS} ms; callback p50 {:.0} / p99 {:.0} ms",
            load.ok,
            load.max_in_flight,
            latencies.median(),
            latencies.pct(99.0)
        ),
    })
}
