//! The trend chart's geometry: buckets (gaps filled with zeros) scaled into an SVG viewBox. The
//! template draws it; no JavaScript.

use chrono::{DateTime, DurationRound as _, TimeDelta, Utc};

use super::ledger::{Bucket, TrendRow};

pub const WIDTH: f64 = 960.0;
pub const HEIGHT: f64 = 240.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;
/// The most buckets drawn; a longer window is cut to its most recent part.
pub const MAX_BUCKETS: i64 = 400;

/// The window and bucket width for a filter's time range: hourly up to three days, else daily.
///
/// The filter keeps times within 2000–2100 (`filter::EARLIEST..=LATEST`); the arithmetic here is
/// checked all the same, so a time at the edge of what chrono represents cannot panic.
pub fn window(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, DateTime<Utc>, Bucket) {
    let before = |t: DateTime<Utc>, d: TimeDelta| {
        t.checked_sub_signed(d).unwrap_or(DateTime::<Utc>::MIN_UTC)
    };
    let to = to.unwrap_or(now);
    let from = from.unwrap_or_else(|| before(to, TimeDelta::days(14)));
    let bucket = if to.signed_duration_since(from) <= TimeDelta::days(3) {
        Bucket::Hour
    } else {
        Bucket::Day
    };
    let span = step(bucket)
        .checked_mul(i32::try_from(MAX_BUCKETS).unwrap_or(i32::MAX))
        .unwrap_or(TimeDelta::MAX);
    (from.max(before(to, span)), to, bucket)
}

fn step(bucket: Bucket) -> TimeDelta {
    match bucket {
        Bucket::Hour => TimeDelta::hours(1),
        Bucket::Day => TimeDelta::days(1),
    }
}

/// One bucket's two bars (attempts behind, failures in front), in viewBox units.
pub struct Bar {
    pub x: String,
    pub width: String,
    pub attempts_y: String,
    pub attempts_height: String,
    pub failures_y: String,
    pub failures_height: String,
    /// Tooltip: "2026-11-28 14:00 UTC: 12 attempts, 3 failed".
    pub title: String,
}

pub struct Tick {
    pub x: String,
    pub label: String,
}

pub struct GridLine {
    pub y: String,
    pub label: String,
}

pub struct Chart {
    pub width: f64,
    pub height: f64,
    pub bars: Vec<Bar>,
    pub ticks: Vec<Tick>,
    pub grid: Vec<GridLine>,
    pub per: &'static str,
    pub attempts: i64,
    pub failures: i64,
    pub baseline: String,
    pub left: String,
    pub right: String,
}

fn num(v: f64) -> String {
    format!("{v:.1}")
}

#[expect(
    clippy::cast_precision_loss,
    reason = "bucket counts are far below 2^52; pixels are rounded anyway"
)]
pub fn build(rows: &[TrendRow], from: DateTime<Utc>, to: DateTime<Utc>, bucket: Bucket) -> Chart {
    let step = step(bucket);
    let start = from.duration_trunc(step).unwrap_or(from);
    let mut buckets: Vec<(DateTime<Utc>, i64, i64)> = Vec::new();
    let mut t = start;
    while t < to && buckets.len() < MAX_BUCKETS as usize + 1 {
        buckets.push((t, 0, 0));
        match t.checked_add_signed(step) {
            Some(next) => t = next,
            None => break,
        }
    }
    for row in rows {
        if let Some(b) = buckets.iter_mut().find(|b| b.0 == row.bucket) {
            b.1 = row.attempts;
            b.2 = row.failures;
        }
    }
    let max = buckets.iter().map(|b| b.1).max().unwrap_or(0).max(1);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let n = buckets.len().max(1) as f64;
    let slot = plot_w / n;
    let bar_w = (slot * 0.8).max(0.5);
    let y_of = |v: i64| TOP + plot_h - plot_h * (v as f64) / (max as f64);
    let label_format = match bucket {
        Bucket::Hour => "%m-%d %H:00",
        Bucket::Day => "%Y-%m-%d",
    };
    let every = (buckets.len() / 8).max(1);
    let mut bars = Vec::new();
    let mut ticks = Vec::new();
    for (i, (t, attempts, failures)) in buckets.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar_w) / 2.0;
        bars.push(Bar {
            x: num(x),
            width: num(bar_w),
            attempts_y: num(y_of(*attempts)),
            attempts_height: num(TOP + plot_h - y_of(*attempts)),
            failures_y: num(y_of(*failures)),
            failures_height: num(TOP + plot_h - y_of(*failures)),
            title: format!(
                "{}: {attempts} attempts, {failures} failed",
                t.format(match bucket {
                    Bucket::Hour => "%Y-%m-%d %H:00 UTC",
                    Bucket::Day => "%Y-%m-%d",
                })
            ),
        });
        if i % every == 0 {
            ticks.push(Tick {
                x: num(x + bar_w / 2.0),
                label: t.format(label_format).to_string(),
            });
        }
    }
    let grid = [0, max / 2, max]
        .into_iter()
        .map(|v| GridLine {
            y: num(y_of(v)),
            label: v.to_string(),
        })
        .collect();
    Chart {
        width: WIDTH,
        height: HEIGHT,
        bars,
        ticks,
        grid,
        per: match bucket {
            Bucket::Hour => "hour",
            Bucket::Day => "day",
        },
        attempts: rows.iter().map(|r| r.attempts).sum(),
        failures: rows.iter().map(|r| r.failures).sum(),
        baseline: num(TOP + plot_h),
        left: num(LEFT),
        right: num(WIDTH - RIGHT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_become_zero_buckets_and_bars_fit_the_plot() {
        let from = DateTime::parse_from_rfc3339("2026-11-28T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let to = from + TimeDelta::hours(6);
        let rows = vec![TrendRow {
            bucket: from + TimeDelta::hours(2),
            attempts: 10,
            failures: 4,
        }];
        let chart = build(&rows, from, to, Bucket::Hour);
        assert_eq!(chart.bars.len(), 6);
        assert_eq!(chart.bars[0].attempts_height, "0.0");
        assert_eq!(chart.bars[2].attempts_y, num(TOP));
        assert!(chart.bars[2].title.contains("10 attempts, 4 failed"));
        assert_eq!((chart.attempts, chart.failures), (10, 4));
    }

    #[test]
    fn short_ranges_are_hourly_and_long_ones_daily() {
        let now = Utc::now();
        assert_eq!(
            window(Some(now - TimeDelta::days(2)), None, now).2,
            Bucket::Hour
        );
        assert_eq!(window(None, None, now).2, Bucket::Day);
        let (from, _, _) = window(Some(now - TimeDelta::days(5000)), None, now);
        assert!(now - from <= TimeDelta::days(MAX_BUCKETS));
    }

    #[test]
    fn times_at_the_ends_of_what_chrono_represents_do_not_overflow() {
        let (from, to, _) = window(None, Some(DateTime::<Utc>::MIN_UTC), Utc::now());
        assert_eq!(
            (from, to),
            (DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MIN_UTC)
        );
        let (from, to, bucket) = window(None, None, DateTime::<Utc>::MAX_UTC);
        assert!(from < to);
        let chart = build(&[], from, to, bucket);
        assert!(
            (14..=15).contains(&chart.bars.len()),
            "{}",
            chart.bars.len()
        );
        let chart = build(
            &[],
            DateTime::<Utc>::MAX_UTC - TimeDelta::hours(2),
            DateTime::<Utc>::MAX_UTC,
            Bucket::Day,
        );
        assert!(chart.bars.len() <= 1);
    }
}
