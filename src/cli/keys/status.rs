//! `finchgate keys status`: the table of keys, what to do next, and wrap-count warnings.

use chrono::{DateTime, Utc};

use super::{Registration, open, read_only, say, warn};
use crate::cli::CliError;
use crate::cli::args::KeyringArgs;
use crate::db::{Scope, transaction};
use crate::keys::Table;
use crate::keys::status::{self, KeyStatus};

/// Prints the table and what to do next on stdout, wrap-count warnings on stderr. Writes nothing:
/// the key check runs without registering new keys, and the listing in a read-only transaction.
pub(super) async fn run(args: &KeyringArgs) -> Result<(), CliError> {
    let opened = open(args, Registration::ReadOnly).await?;
    let vault = &opened.vault;
    let mut conn = opened.pool.get().await?;
    let rows = transaction(&mut conn, Scope::System, async |conn| {
        read_only(conn).await?;
        status::list(conn, vault).await
    })
    .await?;
    say(format_args!("{}", render_status(&rows).trim_end()));
    for row in rows.iter().filter(|r| !r.is_registered()) {
        say(format_args!(
            "Key \"{}\": configured, not yet registered (registered at the next start of `serve`).",
            row.kek_id
        ));
    }
    let active = vault.active_kek_id().as_str();
    let elsewhere: u64 = rows
        .iter()
        .filter(|r| !r.active)
        .map(|r| r.rows.total())
        .sum();
    if elsewhere > 0 {
        say(format_args!(
            "{elsewhere} stored secret(s) are under keys other than the active key \"{active}\": run `finchgate keys rotate`."
        ));
    } else {
        say(format_args!(
            "Every stored secret is under the active key \"{active}\"."
        ));
    }
    print_retirable(&rows);
    for row in &rows {
        if let Some(message) = wrap_count_warning(row) {
            warn(&message);
        }
    }
    Ok(())
}

/// Says how to retire each key that may be.
pub(super) fn print_retirable(rows: &[KeyStatus]) {
    for row in rows {
        if row.is_retirable() {
            say(format_args!(
                "Key \"{}\" wraps nothing: retire it with `finchgate keys retire {}`.",
                row.kek_id, row.kek_id
            ));
        }
    }
}

/// The warning for a key past [`crate::keys::WRAP_COUNT_WARNING`] wraps, if it is.
fn wrap_count_warning(row: &KeyStatus) -> Option<String> {
    if !row.is_due_for_rotation() {
        return None;
    }
    let what = if row.active {
        "rotate now: append a new key (`finchgate keys generate`) and run `finchgate keys rotate`"
    } else {
        "it is no longer active, so it wraps nothing new; rotate its rows away and retire it"
    };
    Some(format!(
        "key \"{}\" has wrapped {} data keys, past 2^31 (half the 2^32 random-nonce bound of NIST SP 800-38D); {what}",
        row.kek_id, row.wrap_count
    ))
}

/// The `keys status` table, one key per line, columns padded to fit.
fn render_status(rows: &[KeyStatus]) -> String {
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_owned();
    let time = |t: &DateTime<Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    let mut table: Vec<[String; 9]> = vec![[
        "key".into(),
        "configured".into(),
        "active".into(),
        "created".into(),
        "retired".into(),
        "wrap_count".into(),
        Table::FinchCredentials.name().into(),
        Table::ConnectionTokens.name().into(),
        Table::UserTotp.name().into(),
    ]];
    for row in rows {
        table.push([
            row.kek_id.clone(),
            yes_no(row.configured),
            yes_no(row.active),
            row.created_at.as_ref().map_or_else(|| "-".into(), time),
            row.retired_at.as_ref().map_or_else(|| "-".into(), time),
            row.wrap_count.to_string(),
            row.rows.finch_credentials.to_string(),
            row.rows.connection_tokens.to_string(),
            row.rows.user_totp.to_string(),
        ]);
    }
    let mut widths = [0usize; 9];
    for line in &table {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in &table {
        let cells: Vec<String> = line
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{PerTable, WRAP_COUNT_WARNING};

    fn row(kek_id: &str, active: bool, wrap_count: i64) -> KeyStatus {
        KeyStatus {
            kek_id: kek_id.into(),
            configured: true,
            active,
            created_at: DateTime::from_timestamp(1_800_000_000, 0),
            retired_at: None,
            wrap_count,
            rows: PerTable {
                finch_credentials: 12,
                connection_tokens: 3456,
                user_totp: 2,
            },
        }
    }

    #[test]
    fn the_status_table_has_a_header_and_aligned_columns() {
        let mut old = row("k2026-old", false, 3468);
        old.configured = false;
        old.retired_at = DateTime::from_timestamp(1_800_086_400, 0);
        let table = render_status(&[old, row("k2", true, 7)]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(
            lines[0].starts_with("key        configured  active  created"),
            "{table}"
        );
        assert!(
            lines[1].starts_with(
                "k2026-old  no          no      2027-01-15 08:00 UTC  2027-01-16 08:00 UTC  3468"
            ),
            "{table}"
        );
        assert!(
            lines[2].starts_with("k2         yes         yes"),
            "{table}"
        );
        let column = |line: &str| line.find("3456");
        assert_eq!(
            column(lines[1]),
            column(lines[2]),
            "columns line up:\n{table}"
        );
        assert!(lines.iter().all(|l| !l.ends_with(' ')));
    }

    #[test]
    fn a_key_is_due_for_rotation_only_past_2_to_the_31_wraps() {
        assert_eq!(
            wrap_count_warning(&row("k1", true, WRAP_COUNT_WARNING)),
            None
        );
        let active = wrap_count_warning(&row("k1", true, WRAP_COUNT_WARNING + 1));
        assert!(active.is_some_and(|m| m.contains("rotate now") && m.contains("2147483649")));
        let inactive = wrap_count_warning(&row("k0", false, WRAP_COUNT_WARNING + 1));
        assert!(inactive.is_some_and(|m| m.contains("no longer active")));
    }
}
