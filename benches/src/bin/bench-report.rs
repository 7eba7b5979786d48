//! Turns the last `cargo bench` run into the tables of `BENCHMARKS.md`.
//!
//! Reads criterion's `target/criterion/<group>/**/new/{benchmark,estimates}.json` and makes one
//! markdown table per group: median, and the ratio to the group's baseline (the function whose id
//! starts with `raw_`, `naive_`, `baseline_` or `direct_`; for the peer groups, tiercache itself). The custom
//! benches (interleaved L2, propagation, stampede, refresh) write their own tables to
//! `target/bench-results/`. Every table goes to `target/bench-report.md`, and each one replaces the
//! block between `<!-- bench:NAME -->` and `<!-- /bench -->` in `BENCHMARKS.md` (`run` is the date
//! and commit), so the prose stays hand-written and the figures always come from one run.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Deserialize)]
struct BenchmarkId {
    group_id: String,
    function_id: Option<String>,
    value_str: Option<String>,
}

#[derive(Deserialize)]
struct Estimates {
    median: Estimate,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
}

struct Row {
    function: String,
    parameter: String,
    median_ns: f64,
}

fn new_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "new") {
                out.push(path);
            } else {
                new_dirs(&path, out);
            }
        }
    }
}

fn human(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

fn is_baseline(group: &str, function: &str) -> bool {
    if group.starts_with("peers_") {
        return function == "tiercache";
    }
    ["raw_", "naive_", "baseline_", "direct_"]
        .iter()
        .any(|p| function.starts_with(p))
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    let mut dirs = Vec::new();
    new_dirs(&root.join("criterion"), &mut dirs);
    let mut groups: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for dir in dirs {
        let (Ok(id), Ok(est)) = (
            std::fs::read_to_string(dir.join("benchmark.json")),
            std::fs::read_to_string(dir.join("estimates.json")),
        ) else {
            continue;
        };
        let (Ok(id), Ok(est)) = (
            serde_json::from_str::<BenchmarkId>(&id),
            serde_json::from_str::<Estimates>(&est),
        ) else {
            continue;
        };
        groups.entry(id.group_id).or_default().push(Row {
            function: id.function_id.unwrap_or_default(),
            parameter: id.value_str.unwrap_or_default(),
            median_ns: est.median.point_estimate,
        });
    }
    let mut tables: BTreeMap<String, String> = BTreeMap::new();
    for (group, mut rows) in groups {
        let mut report = String::new();
        rows.sort_by(|a, b| {
            (a.parameter.len(), &a.parameter, &a.function).cmp(&(
                b.parameter.len(),
                &b.parameter,
                &b.function,
            ))
        });
        let ratio_to = if group.starts_with("peers_") {
            "ratio to tiercache"
        } else {
            "ratio to baseline"
        };
        writeln!(
            report,
            "| function | parameter | median | {ratio_to} |\n|---|---|---|---|"
        )
        .unwrap();
        for row in &rows {
            let baseline = rows
                .iter()
                .find(|b| b.parameter == row.parameter && is_baseline(&group, &b.function));
            let ratio =
                baseline.map_or_else(|| "–".to_owned(), |b| ratio(row.median_ns / b.median_ns));
            writeln!(
                report,
                "| {} | {} | {} | {ratio} |",
                row.function,
                if row.parameter.is_empty() {
                    "–"
                } else {
                    &row.parameter
                },
                human(row.median_ns)
            )
            .unwrap();
        }
        tables.insert(group, report);
    }
    if let Ok(entries) = std::fs::read_dir(root.join("bench-results")) {
        for file in entries.flatten().map(|e| e.path()) {
            let name = file.file_stem().unwrap().to_string_lossy().into_owned();
            tables.insert(name, std::fs::read_to_string(&file).unwrap_or_default());
        }
    }
    tables.insert("run".to_owned(), run_line());
    let mut report = String::new();
    for (name, table) in &tables {
        write!(report, "### `{name}`\n\n{}\n\n", table.trim_end()).unwrap();
    }
    let out = root.join("bench-report.md");
    std::fs::write(&out, &report).unwrap();
    println!("{report}");
    eprintln!("written to {}", out.display());
    let doc = root.join("../BENCHMARKS.md");
    let text = std::fs::read_to_string(&doc).unwrap();
    let (updated, missing) = splice(&text, &tables);
    std::fs::write(&doc, updated).unwrap();
    for name in missing {
        eprintln!(
            "BENCHMARKS.md block `{name}` kept its old figures: no result for it in this run"
        );
    }
}

/// Replaces every `<!-- bench:NAME -->` … `<!-- /bench -->` block whose table this run produced.
/// Returns the new text and the blocks left as they were.
fn splice(text: &str, tables: &BTreeMap<String, String>) -> (String, Vec<String>) {
    const OPEN: &str = "<!-- bench:";
    const CLOSE: &str = "<!-- /bench -->";
    let (mut out, mut missing, mut rest) = (String::new(), Vec::new(), text);
    while let Some(start) = rest.find(OPEN) {
        let Some(name_end) = rest[start..].find(" -->").map(|i| start + i) else {
            break;
        };
        let Some(close) = rest[name_end..].find(CLOSE).map(|i| name_end + i) else {
            break;
        };
        let name = &rest[start + OPEN.len()..name_end];
        out.push_str(&rest[..name_end + " -->".len()]);
        if let Some(table) = tables.get(name) {
            write!(out, "\n{}\n", table.trim_end()).unwrap();
        } else {
            out.push_str(&rest[name_end + " -->".len()..close]);
            missing.push(name.to_owned());
        }
        out.push_str(CLOSE);
        rest = &rest[close + CLOSE.len()..];
    }
    out.push_str(rest);
    (out, missing)
}

/// `1.34×`, or `1/6,000` for a cached read against the query it saves.
fn ratio(r: f64) -> String {
    if r >= 0.1 {
        return format!("{r:.2}×");
    }
    let inverse = format!("{:.0}", 1.0 / r);
    let digits: Vec<char> = inverse.chars().collect();
    let mut grouped = String::new();
    for (i, d) in digits.iter().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(*d);
    }
    format!("1/{grouped}")
}

/// When and from which commit these figures come.
fn run_line() -> String {
    let commit = std::process::Command::new("git")
        .args(["log", "-1", "--format=%h"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "unknown commit".to_owned(),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        );
    format!(
        "Run: {} UTC, commit `{commit}`.",
        chrono::Utc::now().format("%Y-%m-%d %H:%M")
    )
}
