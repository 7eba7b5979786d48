//! The core's modules stand in layers (docs/ARCHITECTURE.md, "The code, layer by layer"): each one
//! names only modules of layers below its own. This test reads the sources and fails on a `crate::`
//! path that points up or sideways, so the order cannot erode one convenient import at a time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layers from the ground up; the modules of one layer do not name each other.
const LAYERS: &[&[&str]] = &[
    &[
        "backoff",
        "breaker",
        "decode_guard",
        "fetched",
        "l1",
        "loader",
        "message",
        "metrics",
        "wall_clock",
    ],
    &["coherence"],
    &["config"],
    &["codec", "error", "options"],
    &["keys", "spans"],
    &["l2"],
    &["fuzzing", "node"],
    &["bus", "proptests"],
    &["admin"],
    &["ops"],
    &["lock"],
    &["read"],
    &["cache"],
    &["builder", "replace"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The top-level module a source file belongs to (`node/flights.rs` → `node`).
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("walked from src");
    let first = relative
        .components()
        .next()
        .expect("a file under src has a first component");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_owned()
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The modules a file's code names as `crate::<module>`: comments and the unit-test module at the
/// end of a file are left out (tests may reach across layers).
fn named_modules(source: &str) -> Vec<String> {
    let code = source.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
    let mut named = Vec::new();
    for line in code.lines() {
        let line = line.trim_start();
        if line.starts_with("//") {
            continue;
        }
        let line = line.split(" // ").next().unwrap_or(line);
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let module: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if !module.is_empty() {
                named.push(module);
            }
        }
    }
    named
}

#[test]
fn every_module_names_only_modules_of_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut upward: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut unplaced = Vec::new();
    for file in &files {
        let module = module_of(&src, file);
        if module == "lib" {
            continue;
        }
        let Some(own) = layer_of(&module) else {
            unplaced.push(module);
            continue;
        };
        let source = std::fs::read_to_string(file).expect("a source file is readable");
        for named in named_modules(&source) {
            if named == module {
                continue;
            }
            match layer_of(&named) {
                Some(layer) if layer < own => {}
                _ => upward
                    .entry(format!(
                        "{}",
                        file.strip_prefix(&src).unwrap_or(file).display()
                    ))
                    .or_default()
                    .push(named),
            }
        }
    }
    assert!(
        unplaced.is_empty(),
        "modules with no layer in LAYERS (place them, and in docs/ARCHITECTURE.md): {unplaced:?}"
    );
    assert!(
        upward.is_empty(),
        "these files name modules of their own layer or above: {upward:#?}"
    );
}

#[test]
fn the_check_sees_a_path_that_points_up() {
    let source = "use crate::cache::Cache; // the facade\n// crate::builder in a comment\n";
    assert_eq!(named_modules(source), vec!["cache".to_owned()]);
}
