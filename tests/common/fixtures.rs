//! Loading the golden fixtures that scripts/capture-*.js recorded from the
//! reference, shared by the golden tests.

#![allow(dead_code)]

use std::fs;
use std::path::PathBuf;

use serde_json::Value;

/// `tests/fixtures/<kind>`.
pub fn dir(kind: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(kind)
}

pub fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex length");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Every `*.json` under `tests/fixtures/<kind>` but `skip`, parsed and
/// sorted by name; at least one must exist.
pub fn load(kind: &str, skip: &[&str]) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let entries = fs::read_dir(dir(kind)).unwrap_or_else(|_| panic!("tests/fixtures/{kind} missing; run scripts/capture-{kind}.js"));
    for e in entries {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".json") || skip.contains(&name.as_str()) {
            continue;
        }
        let v: Value = serde_json::from_str(&fs::read_to_string(&p).unwrap()).unwrap();
        out.push((name, v));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no {kind} fixtures");
    out
}
