//! Replays every saved fuzz input in `fuzz/regressions/<target>/` through the
//! same harness the fuzz target runs (`fuzz/src/lib.rs`, included below), so a
//! crash found by `cargo fuzz` becomes a named, ordinary regression test. The
//! golden frame vectors are replayed through the harness too.
// Reads its vector files: the sans-IO lint (protocol/clippy.toml) does not apply to tests.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

#[path = "../../fuzz/src/lib.rs"]
#[allow(dead_code, unreachable_pub, missing_docs)]
mod harness;

/// The harness of each fuzz target that has a regression directory.
fn harness_for(target: &str) -> Option<fn(&[u8])> {
    harness::harness(target)
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .filter(|p| {
            !p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("README")
        })
        .collect();
    files.sort();
    files
}

#[test]
fn replay_fuzz_regressions() {
    let root = repo().join("fuzz/regressions");
    let mut failures = Vec::new();
    let mut replayed = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let target = dir.file_name().unwrap().to_string_lossy().into_owned();
        let harness = harness_for(&target).unwrap_or_else(|| {
            panic!("no harness for fuzz/regressions/{target}: add it to harness_for")
        });
        for file in files(&dir) {
            let data = std::fs::read(&file).unwrap();
            replayed += 1;
            if catch_unwind(AssertUnwindSafe(|| harness(&data))).is_err() {
                failures.push(format!(
                    "{target}/{}",
                    file.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "fuzz regressions fail again: {failures:?}"
    );
    assert!(
        replayed > 0,
        "no regression inputs found under {}",
        root.display()
    );
}

#[test]
fn frame_vectors_pass_the_fuzz_harness() {
    let path = repo().join("conformance/vectors/frames.json");
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for record in file["records"].as_array().unwrap() {
        let bytes = hex::decode(record["input"]["frame"].as_str().unwrap()).unwrap();
        harness::frame_decoder(&bytes);
    }
}
