//! The results: one row per figure, printed as a table and written as JSON.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

/// One figure of the suite.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub figure: String,
    pub value: Option<f64>,
    pub unit: String,
    /// The same-run baseline, in the same unit (none for absolute targets).
    pub baseline: Option<f64>,
    /// What the baseline is.
    pub baseline_is: String,
    /// `value / baseline`, or the ratio the target is stated in.
    pub ratio: Option<f64>,
    pub target: String,
    pub meets: Option<bool>,
    /// Spread and context: percentiles, sample counts, errors.
    pub spread: String,
}

impl Row {
    /// A row that refers to a figure measured elsewhere.
    pub fn pointer(figure: &str, note: &str) -> Self {
        Self {
            figure: figure.to_owned(),
            value: None,
            unit: String::new(),
            baseline: None,
            baseline_is: String::new(),
            ratio: None,
            target: "p95 ≤ 25 ms, ≤ 3× the SQL alone".to_owned(),
            meets: None,
            spread: note.to_owned(),
        }
    }
}

/// `target/bench` (or `$CARGO_TARGET_DIR/bench`).
pub fn out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bench")
}

/// What the machine is, for the record.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub memory_mib: u64,
    pub kernel: String,
}

impl Machine {
    pub fn summary(&self) -> String {
        format!(
            "machine: {} cores ({}), {} MiB RAM, Linux {}",
            self.cores, self.cpu, self.memory_mib, self.kernel
        )
    }
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

pub fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_mib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned();
    Machine {
        cores: cores(),
        cpu,
        memory_mib,
        kernel,
    }
}

fn num(v: Option<f64>) -> String {
    match v {
        None => "—".to_owned(),
        Some(v) if !v.is_finite() => "—".to_owned(),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

/// Prints the table on stdout (Markdown, so it pastes into docs/benchmarks.md).
pub fn print_table(rows: &[Row]) {
    println!();
    println!("| figure | value | baseline | ratio | target | met? | spread |");
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        let value = match r.value {
            Some(_) => format!("{} {}", num(r.value), r.unit),
            None => "—".to_owned(),
        };
        let baseline = match r.baseline {
            Some(_) => format!("{} ({})", num(r.baseline), r.baseline_is),
            None if r.baseline_is.is_empty() => "—".to_owned(),
            None => r.baseline_is.clone(),
        };
        let met = match r.meets {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "—",
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.figure,
            value,
            baseline,
            num(r.ratio),
            r.target,
            met,
            r.spread
        );
    }
    println!();
}

#[derive(Serialize)]
struct Results<'a> {
    machine: Machine,
    elapsed_seconds: f64,
    figures: &'a [Row],
}

/// Writes the rows to `path`. The file is the array of figures the issue asks for; the machine
/// and run time go to `results.meta.json` beside it.
pub fn write_json(path: &Path, rows: &[Row], elapsed: Duration) -> anyhow::Result<()> {
    std::fs::write(path, serde_json::to_vec_pretty(rows)?)?;
    let meta = Results {
        machine: machine(),
        elapsed_seconds: elapsed.as_secs_f64(),
        figures: rows,
    };
    std::fs::write(
        path.with_file_name("results.meta.json"),
        serde_json::to_vec_pretty(&meta)?,
    )?;
    Ok(())
}
