//! Turns the last `cargo bench` run into the tables of `BENCHMARKS.md`.
//!
//! Reads criterion's `target/criterion/<group>/**/new/{benchmark,estimates}.json` and writes one
//! markdown table per group: median, and the ratio to the group's baseline (the function whose id
//! starts with `raw_`, `naive_` or `baseline_`; for the peer groups, tiercache itself). The custom
//! benches (interleaved L2, propagation, stampede, refresh) write their own tables to
//! `target/bench-results/`; they are appended unchanged. Output: `target/bench-report.md`.
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
    ["raw_", "naive_", "baseline_"]
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
    let mut report = String::new();
    for (group, mut rows) in groups {
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
            "### `{group}`\n\n| function | parameter | median | {ratio_to} |\n|---|---|---|---|"
        )
        .unwrap();
        for row in &rows {
            let baseline = rows
                .iter()
                .find(|b| b.parameter == row.parameter && is_baseline(&group, &b.function));
            let ratio = baseline.map_or_else(
                || "–".to_owned(),
                |b| format!("{:.2}×", row.median_ns / b.median_ns),
            );
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
        report.push('\n');
    }
    if let Ok(entries) = std::fs::read_dir(root.join("bench-results")) {
        let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        for file in files {
            let name = file.file_stem().unwrap().to_string_lossy().into_owned();
            let body = std::fs::read_to_string(&file).unwrap_or_default();
            write!(report, "### `{name}`\n\n{body}\n").unwrap();
        }
    }
    let out = root.join("bench-report.md");
    std::fs::write(&out, &report).unwrap();
    println!("{report}");
    eprintln!("written to {}", out.display());
}
