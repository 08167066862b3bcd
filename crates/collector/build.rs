//! Embeds the results dashboard (www/dashboard, with its vendored uPlot) in the binary, so
//! `cohort collector` serves it with nothing beside the binary: writes `$OUT_DIR/dashboard.rs`,
//! a sorted table of (path, bytes) that `src/dashboard.rs` includes.

use std::fmt::Write;
use std::path::{Path, PathBuf};

fn files(dir: &Path, relative: &str, found: &mut Vec<(String, PathBuf)>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
        let name = entry.file_name().into_string().expect("dashboard file names are UTF-8");
        // Hidden files are never served (src/dashboard.rs refuses hidden paths).
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let served = if relative.is_empty() {
            name
        } else {
            format!("{relative}/{name}")
        };
        if path.is_dir() {
            files(&path, &served, found);
        } else {
            found.push((served, path));
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest.join("../../www/dashboard");
    let root = root
        .canonicalize()
        .unwrap_or_else(|e| panic!("the dashboard directory {}: {e}", root.display()));
    println!("cargo:rerun-if-changed={}", root.display());
    let mut found = Vec::new();
    files(&root, "", &mut found);
    found.sort();
    assert!(
        found.iter().any(|(path, _)| path == "index.html"),
        "{} has no index.html",
        root.display()
    );
    let mut table = String::from("/// Every dashboard file by its path under `/dashboard/`, sorted.\n");
    table.push_str("pub(crate) static EMBEDDED: &[(&str, &[u8])] = &[\n");
    for (served, path) in &found {
        // Writing to a String cannot fail.
        let _ = writeln!(
            table,
            "    ({served:?}, include_bytes!({:?})),",
            path.display().to_string()
        );
    }
    table.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("dashboard.rs");
    std::fs::write(&out, table).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
}
