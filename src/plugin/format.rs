//! Output for people: durations in two units (`3h12m`) and tables with
//! aligned columns.

use chrono::Duration;

/// A duration in its two most significant units: `2d3h`, `3h12m`, `4m05s`
/// becomes `4m5s`, `45s`. Zero and negative durations read `0s`.
pub fn short_duration(d: Duration) -> String {
    let secs = d.num_seconds();
    if secs <= 0 {
        return "0s".into();
    }
    let (days, hours, minutes, seconds) = (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60, secs % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, m) if seconds == 0 => format!("{m}m"),
        (0, 0, m) => format!("{m}m{seconds}s"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h{m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d{h}h"),
    }
}

/// The time left until `until`, or `expired` when it has passed.
pub fn time_left(until: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> String {
    if until <= now {
        "expired".into()
    } else {
        short_duration(until - now)
    }
}

/// A table with a header row and columns padded to the widest cell, as
/// kubectl prints them (upper-case headers, three spaces between columns).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these column headers.
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| h.to_uppercase()).collect(),
            rows: vec![],
        }
    }

    /// Adds a row; missing cells are blank, extra cells are dropped.
    pub fn row(&mut self, cells: Vec<String>) {
        let mut cells = cells;
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    /// The rendered table, one line per row, each ending in a newline.
    /// Cells are printed on one line: line breaks become spaces.
    pub fn render(&self) -> String {
        let clean = |s: &str| s.replace(['\n', '\r', '\t'], " ");
        let all: Vec<Vec<String>> = std::iter::once(&self.header)
            .chain(&self.rows)
            .map(|r| r.iter().map(|c| clean(c)).collect())
            .collect();
        let mut widths = vec![0; self.header.len()];
        for row in &all {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in &all {
            let last = row.len().saturating_sub(1);
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                line.push_str(cell);
                if i < last {
                    let pad = widths[i] - cell.chars().count() + 3;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Aligned `key: value` lines, for one object's details.
pub fn fields(pairs: &[(&str, String)], indent: usize) -> String {
    let width = pairs.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in pairs {
        let pad = width - k.chars().count();
        out.push_str(&format!(
            "{:indent$}{k}:{:pad$} {}\n",
            "",
            "",
            v.replace('\n', " "),
            indent = indent,
            pad = pad
        ));
    }
    out
}

/// What a role grants, for the approver: the summary, the namespaces, then
/// verbs by resource with the dangerous ones marked `!`.
pub fn permissions(p: &crate::api::Permissions, namespaces: &[String], indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mut out = format!("{pad}{}\n", p.summary);
    if !namespaces.is_empty() {
        out.push_str(&format!("{pad}in each of: {}\n", namespaces.join(", ")));
    }
    let mut t = Table::new(&["", "resource", "verbs"]);
    for r in &p.resources {
        t.row(vec![
            if r.dangerous { "!".into() } else { String::new() },
            r.resource.clone(),
            r.verbs.join(","),
        ]);
    }
    for line in t.render().lines() {
        out.push_str(&format!("{pad}{line}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn durations_read_in_two_units() {
        let s = Duration::seconds;
        assert_eq!(short_duration(s(0)), "0s");
        assert_eq!(short_duration(s(-5)), "0s");
        assert_eq!(short_duration(s(45)), "45s");
        assert_eq!(short_duration(s(60)), "1m");
        assert_eq!(short_duration(s(245)), "4m5s");
        assert_eq!(short_duration(s(3600)), "1h");
        assert_eq!(short_duration(s(3 * 3600 + 12 * 60 + 59)), "3h12m");
        assert_eq!(short_duration(s(86_400)), "1d");
        assert_eq!(short_duration(s(2 * 86_400 + 3 * 3600 + 7)), "2d3h");
        assert_eq!(short_duration(s(90 * 86_400)), "90d");
    }

    #[test]
    fn time_left_says_expired_once_past() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        assert_eq!(time_left(now + Duration::minutes(192), now), "3h12m");
        assert_eq!(time_left(now, now), "expired");
        assert_eq!(time_left(now - Duration::hours(1), now), "expired");
    }

    #[test]
    fn tables_align_columns_and_trim_line_ends() {
        let mut t = Table::new(&["name", "role", "left"]);
        t.row(vec!["dave-app-user-x1".into(), "app/user".into(), "3h12m".into()]);
        t.row(vec!["a".into(), "manager\nnow".into()]);
        assert_eq!(
            t.render(),
            "NAME               ROLE          LEFT\n\
             dave-app-user-x1   app/user      3h12m\n\
             a                  manager now\n"
        );
    }

    #[test]
    fn fields_align_their_values() {
        assert_eq!(
            fields(&[("subject", "user dave".into()), ("quorum", "2".into())], 2),
            "  subject: user dave\n  quorum:  2\n"
        );
    }
}
