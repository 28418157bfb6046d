//! Fails when a committed vector file in `conformance/vectors/` differs from
//! what its generator produces. To rewrite them after an intended change:
//!
//! ```sh
//! DISTSOC_WRITE_VECTORS=1 cargo test -p distsoc-conformance --test vectors_fresh
//! ```
//! (or `distsoc vectors generate`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use distsoc_conformance::vectors::{generate_all, VectorFile};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

fn render(v: &VectorFile) -> String {
    let mut text = serde_json::to_string_pretty(v).unwrap();
    text.push('\n');
    text
}

#[test]
fn committed_vectors_equal_generators() {
    let write = std::env::var_os("DISTSOC_WRITE_VECTORS").is_some();
    let mut stale = Vec::new();
    for v in generate_all() {
        let path = dir().join(&v.file);
        let want = render(&v);
        if write {
            std::fs::write(&path, &want).unwrap();
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(have) if have == want => {}
            _ => stale.push(v.file.clone()),
        }
    }
    assert!(
        stale.is_empty(),
        "stale vector files {stale:?}: run DISTSOC_WRITE_VECTORS=1 cargo test -p distsoc-conformance --test vectors_fresh"
    );
}

#[test]
fn record_ids_are_unique_and_records_complete() {
    for v in generate_all() {
        let mut ids = std::collections::HashSet::new();
        for r in &v.records {
            assert!(
                ids.insert(r.id.clone()),
                "{}: duplicate id {}",
                v.file,
                r.id
            );
            assert!(!r.comment.is_empty(), "{}: {} has no comment", v.file, r.id);
            if !r.valid {
                assert!(
                    r.expected.contains_key("error"),
                    "{}: invalid {} names no error",
                    v.file,
                    r.id
                );
            }
        }
    }
}
