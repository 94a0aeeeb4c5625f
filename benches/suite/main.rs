//! finchgate's benchmark suite: every figure of issue 7 (and issue 3's "100 concurrent logins"),
//! each against a baseline measured in the same run. `cargo bench --bench suite` runs it all,
//! prints a table and writes `target/bench/results.json`; `cargo bench --bench suite -- NAME…`
//! runs only the named parts (`vault`, `callbacks`, `logins`, `rotation`, `memory`).
//!
//! Method and results: docs/benchmarks.md. What runs where:
//!
//! | part | how |
//! |---|---|
//! | `vault` | criterion, in this process: `Vault::seal` + `Vault::open` vs ring AES-256-GCM alone |
//! | `callbacks` | `finchgate serve` (release binary) as a child process vs a bare actix handler (this binary, re-run as a child), the emulator in this process |
//! | `logins` | `/healthz` probed while 64 (then 100) concurrent sign-ins run against `finchgate serve` |
//! | `rotation` | `finchgate::keys::rotate::rotate` on 20,000 sealed rows, in this process |
//! | `memory` | a fresh `finchgate serve`: VmRSS idle, then VmHWM with 1,000 callbacks in flight |
//!
//! It needs PostgreSQL (`BENCH_DATABASE_URL`, else `TEST_DATABASE_URL`, else
//! `postgres://postgres@127.0.0.1:5432/postgres`) and creates and drops its own databases.

mod baseline;
mod browser;
mod callbacks;
mod db;
mod logins;
mod memory;
mod report;
mod rotation;
mod stack;
mod stats;
mod vault;

use std::process::ExitCode;
use std::time::Instant;

use report::Row;

const PARTS: [&str; 5] = ["vault", "callbacks", "logins", "rotation", "memory"];

fn main() -> ExitCode {
    if std::env::var(baseline::ROLE_VAR).as_deref() == Ok(baseline::ROLE) {
        return baseline::child_main();
    }
    // cargo passes `--bench`; anything else not starting with `-` names a part to run.
    let asked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if let Some(unknown) = asked.iter().find(|a| !PARTS.contains(&a.as_str())) {
        eprintln!(
            "unknown part `{unknown}`; the parts are: {}",
            PARTS.join(", ")
        );
        return ExitCode::from(2);
    }
    let wanted = |part: &str| asked.is_empty() || asked.iter().any(|a| a == part);
    match run(&wanted) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("benchmark suite failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the wanted parts; `Ok(false)` when some part failed to produce its figures.
fn run(wanted: &dyn Fn(&str) -> bool) -> anyhow::Result<bool> {
    let started = Instant::now();
    let out_dir = report::out_dir();
    std::fs::create_dir_all(&out_dir)?;
    let mut rows: Vec<Row> = Vec::new();
    let mut complete = true;
    let mut record = |part: &str, result: anyhow::Result<Vec<Row>>| match result {
        Ok(mut r) => rows.append(&mut r),
        Err(e) => {
            eprintln!("[{part}] failed: {e:#}");
            complete = false;
        }
    };
    eprintln!("{}", report::machine().summary());
    if wanted("vault") {
        eprintln!("[vault] criterion: envelope seal+open vs raw AES-256-GCM");
        record("vault", vault::run(&out_dir));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if wanted("callbacks") || wanted("logins") {
        record(
            "callbacks+logins",
            runtime.block_on(callbacks_and_logins(wanted)),
        );
    }
    if wanted("rotation") {
        eprintln!("[rotation] 20,000 sealed rows, three rotations");
        record("rotation", runtime.block_on(rotation::run()));
    }
    if wanted("memory") {
        eprintln!("[memory] 1,000 callbacks in flight against a fresh server");
        record("memory", runtime.block_on(memory::run()));
    }
    rows.push(Row::pointer(
        "console list page on 1,000,000 ledger rows",
        "see 'Console on 1,000,000 ledger rows'",
    ));
    report::print_table(&rows);
    let path = out_dir.join("results.json");
    report::write_json(&path, &rows, started.elapsed())?;
    eprintln!(
        "wrote {} in {:.0} s",
        path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(complete)
}

/// The callback and login figures share one server (they need the same tenants and admins).
async fn callbacks_and_logins(wanted: &dyn Fn(&str) -> bool) -> anyhow::Result<Vec<Row>> {
    let stack = stack::Stack::start("load", stack::BROWSERS, None).await?;
    let mut rows = Vec::new();
    let result = async {
        if wanted("callbacks") {
            eprintln!("[callbacks] 256 concurrent, emulator +50 ms on /auth/token");
            rows.extend(callbacks::run(&stack).await?);
        }
        if wanted("logins") {
            eprintln!("[logins] /healthz under 64 and 100 concurrent sign-ins");
            rows.extend(logins::run(&stack).await?);
        }
        anyhow::Ok(())
    }
    .await;
    stack.stop().await;
    result.map(|()| rows)
}
